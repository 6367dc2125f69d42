//! Uniswap V3 against a real anvil node with the V3 factory, pool, position manager,
//! `SwapRouter` and `QuoterV2` deployed from their npm packages: quote from the quoter, approve
//! the exact amount, `exactInputSingle` with a slippage bound and a deadline through the
//! executor, and the pool's `Swap` event read back by the feed as a trade.

use std::time::Duration;

use crate::common::{Anvil, dev_provider, e18, uniswap_v3};
use alloy::primitives::U256;
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use kairos_chain::abi::IERC20;
use kairos_chain::dex;
use kairos_chain::executor::{Executor, ExecutorConfig, Request};
use kairos_chain::feed::{DexFeed, Pool, PoolKind};
use kairos_chain::guard::{Guard, GuardedSigner, Policy};
use kairos_chain::journal::Journal;
use kairos_strategies::{InstrumentId, MarketEvent, Side};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(kairos_no_anvil, ignore = "needs anvil: run scripts/chain/setup.sh")]
async fn v3_exact_input_single_with_quoter_and_feed() {
    let Some(anvil) = Anvil::start(&["--disable-code-size-limit"]) else { return };
    let uni = uniswap_v3(&anvil.url, e18(1_000_000)).await;
    let dev = dev_provider(&anvil.url);
    let trader = PrivateKeySigner::random();
    let me = trader.address();
    crate::common::fund(&anvil.url, me, e18(1), Some((uni.token0, e18(1_000)))).await;

    let policy: Policy = toml::from_str(&format!(
        r#"
        chain_id = 31337
        max_slippage_bps = 30
        allowed_contracts = ["{router}"]
        [[tokens]]
        address = "{t0}"
        symbol = "T0"
        decimals = 18
        max_per_tx = "500"
        [[tokens]]
        address = "{t1}"
        symbol = "T1"
        decimals = 18
        "#,
        router = uni.router,
        t0 = uni.token0,
        t1 = uni.token1
    ))
    .unwrap();
    let cfg = ExecutorConfig {
        chain_id: 31337,
        poll: Duration::from_millis(20),
        timeout: Duration::from_secs(30),
        v3_quoter: Some(uni.quoter),
        ..ExecutorConfig::default()
    };
    let wallet = GuardedSigner::new(trader, Guard::new(policy).unwrap());
    let exec = Executor::new(&anvil.url, None, wallet, Journal::open(":memory:").unwrap(), cfg)
        .await
        .unwrap();

    let amount_in = e18(100);
    let approve = IERC20::approveCall { spender: uni.router, amount: amount_in }.abi_encode();
    exec.send(Request { to: uni.token0, input: approve.into(), ..Request::default() })
        .await
        .unwrap();

    let quote = dex::v3_quote(exec.provider(), uni.quoter, uni.token0, uni.token1, 3000, amount_in)
        .await
        .unwrap();
    // At price 1 with a 0.3% fee and deep liquidity, just under 99.7.
    assert!(
        quote < e18(100) * U256::from(997u64) / U256::from(1000u64) && quote > e18(99),
        "{quote}"
    );

    let head = exec.provider().get_block_by_number(Default::default()).await.unwrap().unwrap();
    let from_block = head.header.number + 1;
    let swap = |min: U256| Request {
        to: uni.router,
        input: dex::v3_exact_input_single(
            uni.token0,
            uni.token1,
            3000,
            me,
            head.header.timestamp + 300,
            amount_in,
            min,
        ),
        ..Request::default()
    };
    // 1% under the quote is over the 30 bps guardrail; asking for more than the pool gives
    // reverts in simulation ("Too little received").
    let err = exec.send(swap(dex::min_out(quote, 100))).await.unwrap_err().to_string();
    assert!(err.contains("max_slippage_bps"), "{err}");
    let err = exec.send(swap(quote + U256::from(1))).await.unwrap_err().to_string();
    assert!(err.contains("Too little received"), "{err}");

    let out = exec.send(swap(dex::min_out(quote, 30))).await.unwrap();
    assert!(out.receipt.status());
    assert_eq!(IERC20::new(uni.token1, exec.provider()).balanceOf(me).call().await.unwrap(), quote);
    assert_eq!(
        IERC20::new(uni.token0, exec.provider()).balanceOf(me).call().await.unwrap(),
        e18(900)
    );

    // The feed sees the swap: a sale of token0 at the swap's own price.
    let pool = Pool {
        address: uni.pool,
        kind: PoolKind::V3,
        instrument: InstrumentId(0),
        base_is_token0: true,
        decimals0: 18,
        decimals1: 18,
    };
    let mut feed = DexFeed::new(dev.clone(), vec![pool], from_block, 0);
    let events = feed.poll().await.unwrap();
    let trades: Vec<_> = events
        .iter()
        .filter_map(|e| if let MarketEvent::Trade(t) = e { Some(*t) } else { None })
        .collect();
    assert_eq!(trades.len(), 1, "{events:?}");
    let t = trades[0];
    assert_eq!(t.aggressor, Side::Sell);
    assert!((t.size - 100.0).abs() < 1e-9);
    let q = quote.to_string().parse::<f64>().unwrap() / 1e18;
    assert!((t.price - q / 100.0).abs() < 1e-12, "{t:?} vs {q}");
}
