//! The full flow against a real anvil node with Uniswap V2 deployed by the test: fund a fresh
//! wallet, approve an exact amount, quote from the pool's reserves, swap with a slippage bound
//! and a deadline through the executor (simulation, guardrails, nonce, journal, broadcast,
//! confirmation), and read the balances back.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::common::proxy::{self, Fault};
use crate::common::{Anvil, UniswapV2, e18, uniswap_v2};
use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use kairos_chain::Error;
use kairos_chain::abi::{IERC20, IUniswapV2Router02};
use kairos_chain::dex;
use kairos_chain::executor::{Executor, ExecutorConfig, Request};
use kairos_chain::guard::{Guard, GuardedSigner, Policy};
use kairos_chain::journal::Journal;

fn config() -> ExecutorConfig {
    ExecutorConfig {
        chain_id: 31337,
        confirmations: 1,
        poll: Duration::from_millis(20),
        timeout: Duration::from_secs(30),
        ..ExecutorConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(kairos_no_anvil, ignore = "needs anvil: run scripts/chain/setup.sh")]
async fn fund_approve_swap_confirm_read_balances() {
    let Some(anvil) = Anvil::start(&[]) else { return };
    let uni = uniswap_v2(&anvil.url, e18(1_000_000), e18(2_000_000)).await;

    // A fresh wallet, funded with gas money and 10,000 A.
    let trader = PrivateKeySigner::random();
    let me = trader.address();
    crate::common::fund(&anvil.url, me, e18(5), Some((uni.token_a, e18(10_000)))).await;

    // Approve exactly what the swap needs.
    let amount_in = e18(1_000);
    let (exec, _tmp) = approved_executor(&anvil.url, &uni, trader, amount_in).await;
    let allowance =
        IERC20::new(uni.token_a, exec.provider()).allowance(me, uni.router).call().await.unwrap();
    assert_eq!(allowance, amount_in, "an exact approval, not an unlimited one");

    // Quote from reserves; the router's own getAmountsOut agrees.
    let reserves =
        dex::v2_reserves(exec.provider(), uni.factory, uni.token_a, uni.token_b).await.unwrap();
    let quote = dex::v2_amount_out(amount_in, reserves.reserve_in, reserves.reserve_out).unwrap();
    let router_view = IUniswapV2Router02::new(uni.router, exec.provider())
        .getAmountsOut(amount_in, vec![uni.token_a, uni.token_b])
        .call()
        .await
        .unwrap();
    assert_eq!(router_view[1], quote);

    let block = exec.provider().get_block_by_number(Default::default()).await.unwrap().unwrap();
    let deadline = block.header.timestamp + 300;
    let swap = |min: U256| Request {
        to: uni.router,
        input: dex::v2_swap_exact_tokens(
            amount_in,
            min,
            vec![uni.token_a, uni.token_b],
            me,
            deadline,
        ),
        ..Request::default()
    };

    // Asking for more than the pool gives: the simulation reverts with the router's reason,
    // and nothing is signed or sent.
    let nonce_before = exec.provider().get_transaction_count(me).pending().await.unwrap();
    let err = exec.send(swap(quote + U256::from(1))).await.unwrap_err();
    match &err {
        Error::Reverted { reason } => {
            assert!(reason.contains("INSUFFICIENT_OUTPUT_AMOUNT"), "{reason}")
        }
        other => panic!("expected a revert, got {other}"),
    }
    // Accepting 2% less than the quote: over the 50 bps guardrail. The quote is the
    // executor's own, read from the router for this calldata: a caller has no way to hand it
    // one (the old `Request.quote` let a caller pass `quote = min_out` and loosen the bound).
    let err = exec.send(swap(dex::min_out(quote, 200))).await.unwrap_err();
    assert!(matches!(err, Error::Refused { rule: "max_slippage_bps", .. }), "{err}");
    assert!(err.to_string().contains(&format!("the quote {quote}")), "{err}");
    // Any minimum at all, however low, is bounded by the chain's quote.
    let err = exec.send(swap(U256::from(1))).await.unwrap_err();
    assert!(matches!(err, Error::Refused { rule: "max_slippage_bps", .. }), "{err}");
    assert_eq!(exec.provider().get_transaction_count(me).pending().await.unwrap(), nonce_before);

    // The real swap, bounded at 0.5% under the quote.
    let min = dex::min_out(quote, 50);
    let out = exec.send(swap(min)).await.unwrap();
    assert!(out.receipt.status());
    assert_eq!(out.bumps, 0);

    let a = IERC20::new(uni.token_a, exec.provider()).balanceOf(me).call().await.unwrap();
    let b = IERC20::new(uni.token_b, exec.provider()).balanceOf(me).call().await.unwrap();
    assert_eq!(a, e18(9_000));
    assert_eq!(b, quote, "nothing else traded, so the fill is the quote exactly");
    assert!(b >= min);

    // Every state change is in the journal: two confirmed, the refusals recorded.
    let events = exec.journal().events(me).unwrap();
    let count = |s: &str| events.iter().filter(|e| e.state == s).count();
    assert_eq!(count("confirmed"), 2, "{events:#?}");
    assert_eq!(count("signed"), 2);
    assert_eq!(count("refused"), 3);
    assert!(events.iter().any(|e| e.detail.contains("INSUFFICIENT_OUTPUT_AMOUNT")));
    assert_eq!(exec.journal().spends(chrono_day()).unwrap(), vec![(uni.token_a, amount_in)]);
    assert!(exec.journal().unsettled(me).unwrap().is_empty());
    let _: Address = uni.weth;
}

/// An executor for `trader` behind [`policy`], with a journal in a temporary folder (kept
/// while the folder lives), that has approved the router for exactly `amount` of A.
async fn approved_executor(
    url: &str,
    uni: &UniswapV2,
    trader: PrivateKeySigner,
    amount: U256,
) -> (Executor, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let journal = Journal::open(tmp.path().join("journal.sqlite")).unwrap();
    let wallet = GuardedSigner::new(trader, Guard::new(policy(uni)).unwrap());
    let exec = Executor::new(url, None, wallet, journal, config()).await.unwrap();
    let approve = IERC20::approveCall { spender: uni.router, amount }.abi_encode();
    let out = exec
        .send(Request { to: uni.token_a, input: approve.into(), ..Request::default() })
        .await
        .unwrap();
    assert!(out.receipt.status());
    (exec, tmp)
}

/// The test wallet's guardrails: the router is the one contract it may call, at most 2,000 A
/// per transaction and 5,000 a day, 50 bps of slippage.
fn policy(uni: &UniswapV2) -> Policy {
    toml::from_str(&format!(
        r#"
        chain_id = 31337
        max_fee_per_gas_gwei = 50
        max_slippage_bps = 50
        allowed_contracts = ["{router}"]
        [[tokens]]
        address = "{a}"
        symbol = "A"
        decimals = 18
        max_per_tx = "2000"
        max_per_day = "5000"
        [[tokens]]
        address = "{b}"
        symbol = "B"
        decimals = 18
        "#,
        router = uni.router,
        a = uni.token_a,
        b = uni.token_b
    ))
    .unwrap()
}

alloy::sol! {
    #[sol(rpc)]
    interface IPairOracle {
        function price0CumulativeLast() external view returns (uint256);
    }
}

/// A V2 swap estimated against the latest block, in which the pool got its liquidity, that
/// lands in a block 12 seconds later (the proxy moves anvil's clock just before the
/// broadcast). The pair then writes its price accumulators for the first time, a zero-to-
/// nonzero store of two slots that an estimate in the pool's own block leaves out: 45 k gas
/// over a 93 k estimate, more than the 20% margin. `refuse_block_overrides` makes the node
/// one that does not take block overrides in `eth_estimateGas`.
///
/// Returns the swap's outcome, whether the pair's accumulator was written, and the quote.
async fn swap_in_a_later_block(
    refuse_block_overrides: bool,
) -> Option<(Result<U256, Error>, bool)> {
    let anvil = Anvil::start(&[])?;
    // Every setup block gets the same timestamp, so the pool's last update is in the latest
    // block whatever the wall clock does.
    let dev = crate::common::dev_provider(&anvil.url);
    let _: serde_json::Value =
        dev.raw_request("anvil_setBlockTimestampInterval".into(), (0,)).await.unwrap();
    let uni = uniswap_v2(&anvil.url, e18(1_000_000), e18(2_000_000)).await;
    let trader = PrivateKeySigner::random();
    let me = trader.address();
    crate::common::fund(&anvil.url, me, e18(5), Some((uni.token_a, e18(10_000)))).await;

    // The approval passes through as is; the swap lands 12 s later.
    let proxy = proxy::start(anvil.url.clone(), vec![Fault::Pass, Fault::LaterBlock(12)]).await;
    proxy.refuse_block_overrides.store(refuse_block_overrides, Ordering::SeqCst);
    let amount_in = e18(1_000);
    let (exec, _tmp) = approved_executor(&proxy.url, &uni, trader, amount_in).await;

    let reserves =
        dex::v2_reserves(exec.provider(), uni.factory, uni.token_a, uni.token_b).await.unwrap();
    let oracle = IPairOracle::new(reserves.pair, exec.provider());
    assert_eq!(oracle.price0CumulativeLast().call().await.unwrap(), U256::ZERO);
    let quote = dex::v2_amount_out(amount_in, reserves.reserve_in, reserves.reserve_out).unwrap();
    let input = dex::v2_swap_exact_tokens(
        amount_in,
        dex::min_out(quote, 50),
        vec![uni.token_a, uni.token_b],
        me,
        u64::MAX,
    );
    let out = exec.send(Request { to: uni.router, input, ..Request::default() }).await;
    assert_eq!(proxy.faults_injected.load(Ordering::SeqCst), 1, "the swap landed later");
    let written = oracle.price0CumulativeLast().call().await.unwrap() > U256::ZERO;
    let received = IERC20::new(uni.token_b, exec.provider()).balanceOf(me).call().await.unwrap();
    Some((
        out.map(|o| {
            assert!(o.receipt.status());
            assert_eq!(received, quote);
            received
        }),
        written,
    ))
}

/// The executor's next-block estimate has the gas for the pool's oracle write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(kairos_no_anvil, ignore = "needs anvil: run scripts/chain/setup.sh")]
async fn a_swap_that_lands_in_a_later_block_has_the_gas_for_the_pool_oracle() {
    let Some((out, written)) = swap_in_a_later_block(false).await else { return };
    out.unwrap();
    assert!(written, "the accumulators were written in the swap's block: the case did arise");
}

/// A node that refuses block overrides: sends still work on the latest-block estimate (the
/// approval), and a swap that then runs out of gas says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(kairos_no_anvil, ignore = "needs anvil: run scripts/chain/setup.sh")]
async fn without_block_overrides_the_latest_block_estimate_is_used() {
    let Some((out, written)) = swap_in_a_later_block(true).await else { return };
    let err = out.unwrap_err().to_string();
    assert!(err.starts_with("reverted on chain in block"), "{err}");
    assert!(err.ends_with("most likely out of gas"), "{err}");
    assert!(!written, "a reverted swap leaves the pair as it was");
}

fn chrono_day() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
        / 86_400
}
