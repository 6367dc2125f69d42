//! Every guardrail refuses what it should, names itself, and lets the rest through. The
//! transactions are real EIP-1559 transactions with ABI-encoded calldata, checked and signed
//! through `GuardedSigner`, the executor's only path to a signature.

use alloy::primitives::{Address, Bytes, U256, address};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use kairos_chain::Error;
use kairos_chain::abi::{IERC20, ISwapRouter, IUniswapV2Router02};
use kairos_chain::guard::{ChainQuote, Guard, GuardedSigner, Policy, Signed};
use kairos_chain::tx::TxFields;

const ROUTER: Address = address!("0x7a250d5630B4cF539739dF2C5dAcb4c659F2488D");
const V3_ROUTER: Address = address!("0xE592427A0AEce92De3Edee1F18E0157C05861564");
const USDC: Address = address!("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48");
const WETH: Address = address!("0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2");
const FRIEND: Address = address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
const STRANGER: Address = address!("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC");
const DAY: i64 = 20_000;

fn policy() -> Policy {
    toml::from_str(&format!(
        r#"
        chain_id = 1
        max_fee_per_gas_gwei = 100
        max_priority_fee_gwei = 3
        max_slippage_bps = 50
        allowed_contracts = ["{ROUTER}", "{V3_ROUTER}"]
        allowed_recipients = ["{FRIEND}"]
        native = {{ max_per_tx = "1", max_per_day = "2.5" }}
        [[tokens]]
        address = "{USDC}"
        symbol = "USDC"
        decimals = 6
        max_per_tx = "1000"
        max_per_day = "1500"
        [[tokens]]
        address = "{WETH}"
        symbol = "WETH"
        decimals = 18
        "#
    ))
    .unwrap()
}

fn wallet(p: Policy) -> GuardedSigner {
    GuardedSigner::new(PrivateKeySigner::random(), Guard::new(p).unwrap())
}

fn tx(to: Address, value: U256, input: Vec<u8>) -> TxFields {
    TxFields {
        chain_id: 1,
        nonce: 0,
        to,
        value,
        gas_limit: 200_000,
        max_fee_per_gas: 50_000_000_000,
        max_priority_fee_per_gas: 2_000_000_000,
        input: Bytes::from(input),
    }
}

fn eth(x: u64) -> U256 {
    U256::from(x) * U256::from(10u64).pow(U256::from(17)) // tenths of an ether
}

fn usdc(x: u64) -> U256 {
    U256::from(x * 1_000_000)
}

fn v2_swap(amount_in: U256, min_out: U256, to: Address, deadline: u64) -> Vec<u8> {
    IUniswapV2Router02::swapExactTokensForTokensCall {
        amountIn: amount_in,
        amountOutMin: min_out,
        path: vec![USDC, WETH],
        to,
        deadline: U256::from(deadline),
    }
    .abi_encode()
}

fn refused(
    w: &mut GuardedSigner,
    t: TxFields,
    quote: Option<&ChainQuote>,
) -> (&'static str, String) {
    match w.sign(t.build().unwrap(), quote, DAY) {
        Err(Error::Refused { rule, detail }) => (rule, detail),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn signed(w: &mut GuardedSigner, t: TxFields, quote: Option<&ChainQuote>) {
    match w.sign(t.build().unwrap(), quote, DAY) {
        Ok(Signed::Tx(..)) => {}
        other => panic!("expected a signature, got {other:?}"),
    }
}

#[test]
fn each_rule_refuses_and_names_itself() {
    let mut w = wallet(policy());
    let me = w.address();
    let q = usdc(1) / U256::from(4000u64) * U256::from(1_000_000_000_000u64); // WETH out
    // Only the executor makes a chain quote: offline, every swap is unquoted (the bounds
    // against a quote are tested in the guard's own unit tests and against anvil).
    let quote: Option<&ChainQuote> = None;
    let swap_min = |q: U256| q * U256::from(9_960u64) / U256::from(10_000u64); // 40 bps
    let cases: Vec<(TxFields, Option<&ChainQuote>, &str, &str)> = vec![
        (TxFields { chain_id: 5, ..tx(FRIEND, eth(1), vec![]) }, None, "chain_id", "chain 5"),
        (
            TxFields { max_fee_per_gas: 101_000_000_000, ..tx(FRIEND, eth(1), vec![]) },
            None,
            "max_fee_per_gas_gwei",
            "101 gwei",
        ),
        (
            TxFields { max_priority_fee_per_gas: 4_000_000_000, ..tx(FRIEND, eth(1), vec![]) },
            None,
            "max_priority_fee_gwei",
            "4 gwei",
        ),
        (tx(STRANGER, eth(1), vec![]), None, "allowed_recipients", "not an allowed recipient"),
        (tx(FRIEND, eth(11), vec![]), None, "native", "per-transaction cap"),
        (
            tx(STRANGER, U256::ZERO, vec![0xde, 0xad, 0xbe, 0xef]),
            None,
            "allowed_contracts",
            "not an allowed contract",
        ),
        (tx(ROUTER, U256::ZERO, vec![0xde, 0xad, 0xbe, 0xef]), None, "known_calls", "0xdeadbeef"),
        (
            tx(
                USDC,
                U256::ZERO,
                IERC20::transferCall { to: STRANGER, amount: usdc(1) }.abi_encode(),
            ),
            None,
            "allowed_recipients",
            "not an allowed recipient",
        ),
        (
            tx(
                USDC,
                U256::ZERO,
                IERC20::transferCall { to: FRIEND, amount: usdc(1001) }.abi_encode(),
            ),
            None,
            "tokens",
            "above the per-transaction cap",
        ),
        (
            tx(
                USDC,
                U256::ZERO,
                IERC20::approveCall { spender: ROUTER, amount: U256::MAX }.abi_encode(),
            ),
            None,
            "unlimited_approvals",
            "approve exact amounts",
        ),
        (
            tx(
                USDC,
                U256::ZERO,
                IERC20::approveCall { spender: STRANGER, amount: usdc(1) }.abi_encode(),
            ),
            None,
            "allowed_contracts",
            "not an allowed contract",
        ),
        (
            tx(
                USDC,
                U256::ZERO,
                IERC20::approveCall { spender: ROUTER, amount: usdc(1001) }.abi_encode(),
            ),
            None,
            "unlimited_approvals",
            "above its bound 1000000000",
        ),
        (
            // WETH has no caps in this policy: no approval of it is bounded, so none is allowed.
            tx(
                WETH,
                U256::ZERO,
                IERC20::approveCall { spender: ROUTER, amount: U256::MAX - U256::from(1) }
                    .abi_encode(),
            ),
            None,
            "unlimited_approvals",
            "has no approval bound",
        ),
        (
            tx(ROUTER, U256::ZERO, v2_swap(usdc(100), swap_min(q), me, 1_900_000_000)),
            None,
            "max_slippage_bps",
            "without a quote",
        ),
        (
            tx(ROUTER, U256::ZERO, v2_swap(usdc(100), swap_min(q), me, 0)),
            quote,
            "max_slippage_bps",
            "without a deadline",
        ),
        (
            tx(ROUTER, U256::ZERO, v2_swap(usdc(100), swap_min(q), STRANGER, 1_900_000_000)),
            quote,
            "allowed_recipients",
            "not an allowed recipient",
        ),
        (
            tx(
                V3_ROUTER,
                U256::ZERO,
                ISwapRouter::exactInputSingleCall {
                    params: ISwapRouter::ExactInputSingleParams {
                        tokenIn: USDC,
                        tokenOut: STRANGER,
                        fee: alloy::primitives::aliases::U24::from(500u32),
                        recipient: me,
                        deadline: U256::from(1_900_000_000u64),
                        amountIn: usdc(10),
                        amountOutMinimum: U256::from(1u64),
                        sqrtPriceLimitX96: Default::default(),
                    },
                }
                .abi_encode(),
            ),
            quote,
            "tokens",
            "not in the policy",
        ),
    ];
    for (t, q, rule, needle) in cases {
        let (got_rule, detail) = refused(&mut w, t.clone(), q);
        assert_eq!(got_rule, rule, "{t:?}: {detail}");
        assert!(detail.contains(needle), "{rule}: {detail:?} lacks {needle:?}");
        let msg = Error::Refused { rule: got_rule, detail }.to_string();
        assert!(msg.starts_with(&format!("refused by guardrail `{rule}`")), "{msg}");
    }
    // Nothing refused was booked.
    assert_eq!(w.guard().spent(USDC, DAY), U256::ZERO);
    assert_eq!(w.guard().spent(Address::ZERO, DAY), U256::ZERO);

    // And what is within every rule is signed.
    signed(&mut w, tx(FRIEND, eth(5), vec![]), None);
    signed(&mut w, tx(me, eth(5), vec![]), None);
    signed(
        &mut w,
        tx(
            USDC,
            U256::ZERO,
            IERC20::approveCall { spender: ROUTER, amount: usdc(100) }.abi_encode(),
        ),
        None,
    );
    // Approvals are bounded, not spends: the swap that uses one is.
    assert_eq!(w.guard().spent(USDC, DAY), U256::ZERO);
    assert_eq!(w.guard().spent(Address::ZERO, DAY), eth(10));

    // Without a slippage rule, a swap needs no quote; its input is capped and booked.
    let mut free = wallet(Policy { max_slippage_bps: None, ..policy() });
    let me = free.address();
    let (rule, detail) = refused(
        &mut free,
        tx(ROUTER, U256::ZERO, v2_swap(usdc(1200), swap_min(q), me, 1_900_000_000)),
        None,
    );
    assert_eq!(rule, "tokens", "{detail}");
    assert!(detail.contains("per-transaction cap"), "{detail}");
    signed(
        &mut free,
        tx(ROUTER, U256::ZERO, v2_swap(usdc(100), swap_min(q), me, 1_900_000_000)),
        None,
    );
    assert_eq!(free.guard().spent(USDC, DAY), usdc(100));
}

#[test]
fn daily_caps_accumulate_and_reset_the_next_day() {
    let mut w = wallet(policy());
    for _ in 0..2 {
        signed(&mut w, tx(FRIEND, eth(10), vec![]), None); // 1 ether each, cap 2.5 a day
    }
    let (rule, detail) = refused(&mut w, tx(FRIEND, eth(10), vec![]), None);
    assert_eq!(rule, "native");
    assert!(detail.contains("daily cap"), "{detail}");
    // Half an ether still fits today.
    signed(&mut w, tx(FRIEND, eth(5), vec![]), None);
    // Tomorrow is a new day.
    let next = w.sign(tx(FRIEND, eth(10), vec![]).build().unwrap(), None, DAY + 1).unwrap();
    assert!(matches!(next, Signed::Tx(..)));
    // A journal restores today's spend after a restart.
    let mut restarted = wallet(policy());
    restarted.restore_spends(&[(Address::ZERO, eth(25))], DAY);
    assert_eq!(refused(&mut restarted, tx(FRIEND, eth(1), vec![]), None).0, "native");
}

#[test]
fn dry_run_checks_but_never_signs() {
    let mut p = policy();
    p.dry_run = true;
    let mut w = wallet(p);
    assert_eq!(refused(&mut w, tx(STRANGER, eth(1), vec![]), None).0, "allowed_recipients");
    match w.sign(tx(FRIEND, eth(1), vec![]).build().unwrap(), None, DAY).unwrap() {
        Signed::DryRun(a) => assert!(a.summary.contains("send"), "{}", a.summary),
        Signed::Tx(..) => panic!("a dry run signed"),
    }
    assert_eq!(w.guard().spent(Address::ZERO, DAY), U256::ZERO);
}

#[test]
fn unknown_policy_keys_and_bad_amounts_are_errors() {
    let err = toml::from_str::<Policy>("max_slipage_bps = 5").unwrap_err().to_string();
    assert!(err.contains("max_slipage_bps"), "{err}");
    let p: Policy = toml::from_str("native = { max_per_tx = \"lots\" }").unwrap();
    let err = Guard::new(p).unwrap_err().to_string();
    assert!(err.contains("lots"), "{err}");
}
