//! The on-chain feed against real Uniswap V2 pool events on anvil: swaps in both directions
//! become trades at the swap's own price with the right aggressor, reserve updates become
//! quotes around the pool's mid, each event once, in chain order.

use crate::common::{Anvil, dev_address, dev_provider, e18, uniswap_v2};
use alloy::primitives::U256;
use alloy::providers::Provider;
use kairos_chain::abi::{IUniswapV2Factory, IUniswapV2Pair, IUniswapV2Router02};
use kairos_chain::feed::{DexFeed, Pool, PoolKind};
use kairos_strategies::{InstrumentId, MarketEvent, Side};

/// The dev account sells `amount` of `path[0]` along `path`, with a fixed gas limit: alloy's
/// estimate has no margin, and a swap in a later second than the pool's last block also
/// writes the price accumulators (45 k gas more the first time; the executor's own estimate
/// covers that).
async fn dev_swap(
    dev: &impl Provider,
    router: alloy::primitives::Address,
    amount: U256,
    path: Vec<alloy::primitives::Address>,
) -> alloy::rpc::types::TransactionReceipt {
    IUniswapV2Router02::new(router, dev)
        .swapExactTokensForTokens(amount, U256::ZERO, path, dev_address(), U256::from(u64::MAX))
        .gas(300_000)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap()
}

/// The A/B pair as a feed pool: base A, quoted in B (both 18 decimals; about 2 B per A).
async fn pool_a_in_b(dev: &impl Provider, uni: &crate::common::UniswapV2) -> Pool {
    let pair = IUniswapV2Factory::new(uni.factory, dev)
        .getPair(uni.token_a, uni.token_b)
        .call()
        .await
        .unwrap();
    let token0 = IUniswapV2Pair::new(pair, dev).token0().call().await.unwrap();
    Pool {
        address: pair,
        kind: PoolKind::V2,
        instrument: InstrumentId(3),
        base_is_token0: token0 == uni.token_a,
        decimals0: 18,
        decimals1: 18,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(kairos_no_anvil, ignore = "needs anvil: run scripts/chain/setup.sh")]
async fn v2_swaps_and_syncs_become_trades_and_quotes() {
    let Some(anvil) = Anvil::start(&[]) else { return };
    let uni = uniswap_v2(&anvil.url, e18(1_000_000), e18(2_000_000)).await;
    let dev = dev_provider(&anvil.url);
    let pool = pool_a_in_b(&dev, &uni).await;
    let start = dev.get_block_number().await.unwrap() + 1;
    let mut feed = DexFeed::new(dev.clone(), vec![pool], start, 0);
    assert!(feed.poll().await.unwrap().is_empty(), "nothing happened yet");

    // Sell 1,000 A for B, then buy A with 500 B.
    let sell = dev_swap(&dev, uni.router, e18(1_000), vec![uni.token_a, uni.token_b]).await;
    let buy = dev_swap(&dev, uni.router, e18(500), vec![uni.token_b, uni.token_a]).await;
    assert!(sell.status() && buy.status());

    let events = feed.poll().await.unwrap();
    assert!(feed.poll().await.unwrap().is_empty(), "each event once");
    // Per swap: Sync (the pair updates reserves first) then Swap.
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match e {
            MarketEvent::Quote(_) => "quote",
            MarketEvent::Trade(_) => "trade",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["quote", "trade", "quote", "trade"]);

    // The sell: 1,000 A in, out what the V2 formula gives.
    let out1 =
        kairos_chain::dex::v2_amount_out(e18(1_000), e18(1_000_000), e18(2_000_000)).unwrap();
    let f = |v: U256| v.to_string().parse::<f64>().unwrap() / 1e18;
    let MarketEvent::Trade(t) = events[1] else { panic!() };
    assert_eq!(t.aggressor, Side::Sell);
    assert_eq!(t.instrument, InstrumentId(3));
    assert!((t.size - 1_000.0).abs() < 1e-9, "{t:?}");
    assert!((t.price - f(out1) / 1_000.0).abs() < 1e-9, "{t:?}");
    let MarketEvent::Quote(q) = events[0] else { panic!() };
    let mid = (2_000_000.0 - f(out1)) / 1_001_000.0;
    assert!((q.mid() - mid * (0.997 + 1.0 / 0.997) / 2.0).abs() < 1e-9 && q.bid < q.ask, "{q:?}");

    // The buy: 500 B in, A out; the price paid is above the previous trade's.
    let MarketEvent::Trade(t2) = events[3] else { panic!() };
    assert_eq!(t2.aggressor, Side::Buy);
    let a_out =
        kairos_chain::dex::v2_amount_out(e18(500), e18(2_000_000) - out1, e18(1_001_000)).unwrap();
    assert!((t2.size - f(a_out)).abs() < 1e-9, "{t2:?}");
    assert!((t2.price - 500.0 / f(a_out)).abs() < 1e-9);
    assert!(t2.price > t.price);
    // Timestamps are the blocks' own.
    let b = dev.get_block_by_number(buy.block_number.unwrap().into()).await.unwrap().unwrap();
    assert_eq!(t2.ts.nanos(), b.header.timestamp as i64 * 1_000_000_000);
}

/// A node that caps `eth_getLogs` at 3 blocks (hosted nodes cap at 1k to 10k): a feed that
/// fell 20 blocks behind reads them in chunks, halving its chunk on the refusal, and gets
/// every event once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(kairos_no_anvil, ignore = "needs anvil: run scripts/chain/setup.sh")]
async fn a_capped_log_range_is_read_in_chunks() {
    let Some(anvil) = Anvil::start(&[]) else { return };
    let uni = uniswap_v2(&anvil.url, e18(1_000_000), e18(2_000_000)).await;
    let dev = dev_provider(&anvil.url);
    let pool = pool_a_in_b(&dev, &uni).await;
    let start = dev.get_block_number().await.unwrap() + 1;
    let mut swaps = Vec::new();
    for _ in 0..2 {
        let r = dev_swap(&dev, uni.router, e18(100), vec![uni.token_a, uni.token_b]).await;
        swaps.push(r.block_number.unwrap());
        let _: serde_json::Value = dev.raw_request("anvil_mine".into(), (10u64,)).await.unwrap();
    }
    let proxy =
        crate::common::proxy::start(anvil.url.clone(), vec![crate::common::proxy::Fault::Pass])
            .await;
    proxy.limit_log_range(3);
    let through = alloy::providers::RootProvider::<alloy::network::Ethereum>::new_http(
        proxy.url.parse().unwrap(),
    );
    let mut feed = DexFeed::new(through, vec![pool], start, 0).with_max_range(64);
    let events = feed.poll().await.unwrap();
    assert_eq!(events.len(), 4, "two swaps, each a Sync and a Swap: {events:?}");
    assert!(feed.max_range() <= 3, "the chunk shrank to what the node takes");
    let head = dev.get_block_number().await.unwrap();
    assert_eq!(feed.next_block(), head + 1, "read to the head");
    assert!(feed.poll().await.unwrap().is_empty(), "each event once");
    assert!(swaps[1] >= start + 10);
}
