//! Wallet guardrails: the limits a transaction must pass before it is signed.
//!
//! The guard reads the transaction itself (its chain, recipient, value, fees and decoded
//! calldata), not a description of it supplied by a strategy, so no strategy or model reply can
//! word its way around a rule. [`GuardedSigner`] is the only path from a transaction to a
//! signature in the executor: it checks, signs, and books the spend against the daily caps.
//!
//! Rules (each refusal names one, as spelled in the policy file):
//! - `chain_id`: the transaction is for the policy's chain;
//! - `max_fee_per_gas_gwei`, `max_priority_fee_gwei`: fee caps;
//! - `allowed_contracts`: calls go only to listed contracts (routers, tokens);
//! - `allowed_recipients`: value and swap outputs go only to listed addresses (the wallet itself
//!   always counts as allowed);
//! - `tokens`: only listed tokens move, each within `max_per_tx` and `max_per_day`; `native`
//!   caps ether the same way;
//! - `unlimited_approvals`: unless the policy allows more, an approval is bounded by the
//!   token's `max_approval` (or else its `max_per_tx`), and a token with neither bound cannot
//!   be approved at all;
//! - `max_slippage_bps`: a swap's minimum output is within this of the quote the executor
//!   read from the chain for that very calldata ([`ChainQuote`], which only the executor can
//!   make: no caller can hand the guard a quote of its own), and every swap has a deadline;
//! - `known_calls`: calldata the guard cannot decode is refused;
//! - `dry_run`: everything is checked, nothing is signed.

use std::collections::BTreeMap;

use alloy::consensus::TxEip1559;
use alloy::primitives::{Address, TxKind, U256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use serde::Deserialize;

use crate::abi::{IERC20, ISwapRouter, IUniswapV2Router02};
use crate::tx::{SignedTx, sign};
use crate::{Error, Result};

/// Caps for one asset, in whole units (`"1.5"` ether, `"2500"` USDC).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Caps {
    /// Most that one transaction may spend.
    pub max_per_tx: Option<String>,
    /// Most that all transactions of one UTC day may spend together.
    pub max_per_day: Option<String>,
}

/// A token the wallet may move.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenPolicy {
    /// The ERC-20 contract.
    pub address: Address,
    /// A name for messages.
    pub symbol: String,
    /// The token's decimals (amounts in caps are in whole tokens).
    pub decimals: u8,
    /// Spend caps.
    #[serde(flatten)]
    pub caps: Caps,
    /// Largest approval of this token, in whole tokens (default: `max_per_tx`).
    #[serde(default)]
    pub max_approval: Option<String>,
}

/// The wallet policy, usually read from the `[guardrails]` table of the agent's config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Check everything, sign nothing.
    pub dry_run: bool,
    /// The only chain transactions may be for.
    pub chain_id: Option<u64>,
    /// Cap on `maxFeePerGas`, gwei.
    pub max_fee_per_gas_gwei: Option<f64>,
    /// Cap on `maxPriorityFeePerGas`, gwei.
    pub max_priority_fee_gwei: Option<f64>,
    /// Largest allowed gap between a swap's quote and its minimum output, basis points.
    pub max_slippage_bps: Option<u32>,
    /// Contracts that may be called.
    pub allowed_contracts: Vec<Address>,
    /// Addresses that may receive ether, tokens or swap outputs.
    pub allowed_recipients: Vec<Address>,
    /// Ether caps.
    pub native: Caps,
    /// Tokens that may be moved, with their caps.
    pub tokens: Vec<TokenPolicy>,
    /// Allow approvals above a token's `max_approval` / `max_per_tx` (including "unlimited").
    pub unlimited_approvals: bool,
}

/// A swap's expected output, read from the chain by the executor for the swap's own calldata
/// in its simulation step (Uniswap V2 `getAmountsOut` along the path, V3 `QuoterV2`). Only this
/// crate makes one, so the slippage rule can be loosened by no caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainQuote {
    amount_out: U256,
    block: u64,
}

impl ChainQuote {
    pub(crate) fn new(amount_out: U256, block: u64) -> Self {
        Self { amount_out, block }
    }

    /// The output the chain quoted.
    pub fn amount_out(&self) -> U256 {
        self.amount_out
    }

    /// The block it was read at.
    pub fn block(&self) -> u64 {
        self.block
    }
}

/// What a checked transaction spends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// Per asset (`Address::ZERO` for ether), the amount spent.
    pub spends: Vec<(Address, U256)>,
    /// A one-line account of what the transaction does.
    pub summary: String,
}

/// What the signed transaction is, or why nothing was signed.
#[derive(Debug, Clone)]
pub enum Signed {
    /// Signed and booked against the daily caps.
    Tx(Box<SignedTx>, Approval),
    /// Passed every rule; not signed because the policy is a dry run.
    DryRun(Approval),
}

/// Applies a [`Policy`] and keeps the day's spend per asset.
#[derive(Debug, Clone)]
pub struct Guard {
    policy: Policy,
    native_caps: (Option<U256>, Option<U256>),
    token_caps: BTreeMap<Address, TokenCaps>,
    spent: BTreeMap<(Address, i64), U256>,
}

#[derive(Debug, Clone)]
struct TokenCaps {
    symbol: String,
    per_tx: Option<U256>,
    per_day: Option<U256>,
    approval: Option<U256>,
}

fn refuse(rule: &'static str, detail: impl Into<String>) -> Error {
    Error::Refused { rule, detail: detail.into() }
}

fn units(rule: &'static str, s: &Option<String>, decimals: u8) -> Result<Option<U256>> {
    s.as_ref()
        .map(|v| {
            crate::tx::parse_amount("amount", v, decimals)
                .map_err(|e| refuse(rule, format!("the policy's amount {v:?} is invalid ({e})")))
        })
        .transpose()
}

fn gwei_to_wei(g: f64) -> u128 {
    (g * 1e9).round() as u128
}

impl Guard {
    /// Validates `policy` (amounts must parse) and starts with nothing spent.
    pub fn new(policy: Policy) -> Result<Self> {
        let native_caps = (
            units("native", &policy.native.max_per_tx, 18)?,
            units("native", &policy.native.max_per_day, 18)?,
        );
        let mut token_caps = BTreeMap::new();
        for t in &policy.tokens {
            let per_tx = units("tokens", &t.caps.max_per_tx, t.decimals)?;
            token_caps.insert(
                t.address,
                TokenCaps {
                    symbol: t.symbol.clone(),
                    per_tx,
                    per_day: units("tokens", &t.caps.max_per_day, t.decimals)?,
                    approval: units("tokens", &t.max_approval, t.decimals)?.or(per_tx),
                },
            );
        }
        Ok(Self { policy, native_caps, token_caps, spent: BTreeMap::new() })
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The `max_fee_per_gas_gwei` cap in wei (fee bumps stay under it).
    pub fn max_fee_per_gas(&self) -> Option<u128> {
        self.policy.max_fee_per_gas_gwei.map(gwei_to_wei)
    }

    /// The `max_priority_fee_gwei` cap in wei.
    pub fn max_priority_fee(&self) -> Option<u128> {
        self.policy.max_priority_fee_gwei.map(gwei_to_wei)
    }

    /// Amount of `asset` (`Address::ZERO` for ether) spent on UTC day `day` (days since the
    /// epoch).
    pub fn spent(&self, asset: Address, day: i64) -> U256 {
        self.spent.get(&(asset, day)).copied().unwrap_or_default()
    }

    /// Books spends (restoring a journal, or after a signature).
    pub fn book(&mut self, spends: &[(Address, U256)], day: i64) {
        for (asset, amount) in spends {
            let e = self.spent.entry((*asset, day)).or_default();
            *e = e.saturating_add(*amount);
        }
    }

    /// Checks `tx` from `from` on UTC day `day`. `quote` is the output the executor read from
    /// the chain for a swap (required for swaps when `max_slippage_bps` is set).
    pub fn check(
        &self,
        from: Address,
        tx: &TxEip1559,
        quote: Option<&ChainQuote>,
        day: i64,
    ) -> Result<Approval> {
        let approval = self.check_rules(from, tx, quote)?;
        for (asset, amount) in &approval.spends {
            self.within_caps(*asset, *amount, U256::ZERO, day)?;
        }
        Ok(approval)
    }

    /// Every rule but the spend caps.
    fn check_rules(
        &self,
        from: Address,
        tx: &TxEip1559,
        quote: Option<&ChainQuote>,
    ) -> Result<Approval> {
        let p = &self.policy;
        if let Some(chain) = p.chain_id
            && tx.chain_id != chain
        {
            return Err(refuse(
                "chain_id",
                format!("chain {} is not the policy's chain {chain}", tx.chain_id),
            ));
        }
        for (rule, what, fee, cap) in [
            ("max_fee_per_gas_gwei", "max fee", tx.max_fee_per_gas, p.max_fee_per_gas_gwei),
            (
                "max_priority_fee_gwei",
                "priority fee",
                tx.max_priority_fee_per_gas,
                p.max_priority_fee_gwei,
            ),
        ] {
            if let Some(cap) = cap
                && fee > gwei_to_wei(cap)
            {
                let gwei = fee as f64 / 1e9;
                return Err(refuse(
                    rule,
                    format!("{what} {gwei} gwei is above the cap {cap} gwei"),
                ));
            }
        }
        let TxKind::Call(to) = tx.to else {
            return Err(refuse("allowed_contracts", "contract creation is not allowed"));
        };
        let mut spends = Vec::new();
        if !tx.value.is_zero() {
            spends.push((Address::ZERO, tx.value));
        }
        let data = tx.input.as_ref();
        let summary = if data.is_empty() {
            self.recipient(from, to)?;
            format!("send {} wei to {to}", tx.value)
        } else {
            self.contract(to)?;
            self.call(from, to, data, quote, &mut spends)?
        };
        Ok(Approval { spends, summary })
    }

    /// As [`Guard::check`] for a replacement of a booked transaction: its own spend is not
    /// counted against the daily caps a second time.
    pub fn check_replacement(
        &self,
        from: Address,
        tx: &TxEip1559,
        quote: Option<&ChainQuote>,
        day: i64,
    ) -> Result<Approval> {
        let approval = self.check_rules(from, tx, quote)?;
        for (asset, amount) in &approval.spends {
            self.within_caps(*asset, *amount, *amount, day)?;
        }
        Ok(approval)
    }

    fn recipient(&self, from: Address, to: Address) -> Result<()> {
        if to == from || self.policy.allowed_recipients.contains(&to) {
            Ok(())
        } else {
            Err(refuse("allowed_recipients", format!("{to} is not an allowed recipient")))
        }
    }

    fn contract(&self, to: Address) -> Result<()> {
        if self.policy.allowed_contracts.contains(&to) || self.token_caps.contains_key(&to) {
            Ok(())
        } else {
            Err(refuse("allowed_contracts", format!("{to} is not an allowed contract")))
        }
    }

    fn token(&self, token: Address) -> Result<&str> {
        self.token_caps
            .get(&token)
            .map(|t| t.symbol.as_str())
            .ok_or_else(|| refuse("tokens", format!("token {token} is not in the policy")))
    }

    fn slippage(&self, min_out: U256, quote: Option<&ChainQuote>, deadline: U256) -> Result<()> {
        if deadline.is_zero() {
            return Err(refuse("max_slippage_bps", "a swap without a deadline"));
        }
        let Some(bps) = self.policy.max_slippage_bps else { return Ok(()) };
        let Some(quote) = quote.map(ChainQuote::amount_out) else {
            return Err(refuse(
                "max_slippage_bps",
                "a swap without a quote from the chain to bound it",
            ));
        };
        // min_out >= quote * (1 - bps/10_000), in integers.
        let floor = quote * U256::from(10_000u32.saturating_sub(bps)) / U256::from(10_000u32);
        if min_out < floor {
            return Err(refuse(
                "max_slippage_bps",
                format!(
                    "minimum output {min_out} is below {floor} ({bps} bps under the quote {quote})"
                ),
            ));
        }
        Ok(())
    }

    fn call(
        &self,
        from: Address,
        to: Address,
        data: &[u8],
        quote: Option<&ChainQuote>,
        spends: &mut Vec<(Address, U256)>,
    ) -> Result<String> {
        let selector: [u8; 4] = data.get(..4).and_then(|s| s.try_into().ok()).unwrap_or_default();
        let decode_err = |e: alloy::sol_types::Error| {
            refuse("known_calls", format!("calldata to {to} does not decode: {e}"))
        };
        match selector {
            IERC20::transferCall::SELECTOR => {
                let c = IERC20::transferCall::abi_decode(data).map_err(decode_err)?;
                let sym = self.token(to)?;
                self.recipient(from, c.to)?;
                spends.push((to, c.amount));
                Ok(format!("transfer {} {sym} to {}", c.amount, c.to))
            }
            IERC20::approveCall::SELECTOR => {
                let c = IERC20::approveCall::abi_decode(data).map_err(decode_err)?;
                let sym = self.token(to)?.to_owned();
                if !self.policy.allowed_contracts.contains(&c.spender) {
                    return Err(refuse(
                        "allowed_contracts",
                        format!("approval to {}, not an allowed contract", c.spender),
                    ));
                }
                if !self.policy.unlimited_approvals {
                    match self.token_caps[&to].approval {
                        None => {
                            return Err(refuse(
                                "unlimited_approvals",
                                format!(
                                    "{sym} has no approval bound (set its max_approval or \
                                     max_per_tx); approve exact amounts"
                                ),
                            ));
                        }
                        Some(bound) if c.amount > bound => {
                            return Err(refuse(
                                "unlimited_approvals",
                                format!(
                                    "approval of {} base units of {sym} is above its bound {bound}; \
                                     approve exact amounts",
                                    c.amount
                                ),
                            ));
                        }
                        Some(_) => {}
                    }
                }
                Ok(format!("approve {} {sym} for {}", c.amount, c.spender))
            }
            IUniswapV2Router02::swapExactTokensForTokensCall::SELECTOR
            | IUniswapV2Router02::swapExactTokensForETHCall::SELECTOR => {
                let (amount_in, min_out, path, recipient, deadline) =
                    if selector == IUniswapV2Router02::swapExactTokensForTokensCall::SELECTOR {
                        let c = IUniswapV2Router02::swapExactTokensForTokensCall::abi_decode(data)
                            .map_err(decode_err)?;
                        (c.amountIn, c.amountOutMin, c.path, c.to, c.deadline)
                    } else {
                        let c = IUniswapV2Router02::swapExactTokensForETHCall::abi_decode(data)
                            .map_err(decode_err)?;
                        (c.amountIn, c.amountOutMin, c.path, c.to, c.deadline)
                    };
                self.v2_path(
                    &path,
                    selector == IUniswapV2Router02::swapExactTokensForTokensCall::SELECTOR,
                )?;
                self.recipient(from, recipient)?;
                self.slippage(min_out, quote, deadline)?;
                spends.push((path[0], amount_in));
                Ok(format!("swap {amount_in} of {} on {to} for at least {min_out}", path[0]))
            }
            IUniswapV2Router02::swapExactETHForTokensCall::SELECTOR => {
                let c = IUniswapV2Router02::swapExactETHForTokensCall::abi_decode(data)
                    .map_err(decode_err)?;
                if let Some(last) = c.path.last() {
                    self.token(*last)?;
                }
                self.recipient(from, c.to)?;
                self.slippage(c.amountOutMin, quote, c.deadline)?;
                Ok(format!("swap ether on {to} for at least {}", c.amountOutMin))
            }
            ISwapRouter::exactInputSingleCall::SELECTOR => {
                let c = ISwapRouter::exactInputSingleCall::abi_decode(data).map_err(decode_err)?;
                let p = c.params;
                self.token(p.tokenIn)?;
                self.token(p.tokenOut)?;
                self.recipient(from, p.recipient)?;
                self.slippage(p.amountOutMinimum, quote, p.deadline)?;
                spends.push((p.tokenIn, p.amountIn));
                Ok(format!(
                    "swap {} of {} for at least {} of {}",
                    p.amountIn, p.tokenIn, p.amountOutMinimum, p.tokenOut
                ))
            }
            other => Err(refuse(
                "known_calls",
                format!(
                    "call 0x{} to {to} is not a call the guard knows",
                    alloy::primitives::hex::encode(other)
                ),
            )),
        }
    }

    /// Every token on a V2 path is in the policy (the last one may be WETH for an ETH output).
    fn v2_path(&self, path: &[Address], last_is_token: bool) -> Result<()> {
        if path.len() < 2 {
            return Err(refuse("known_calls", format!("a swap path of {} tokens", path.len())));
        }
        let n = if last_is_token { path.len() } else { path.len() - 1 };
        for t in &path[..n] {
            self.token(*t)?;
        }
        Ok(())
    }

    /// Checks `amount` of `asset` against its caps; `booked` of it is already in today's spend
    /// (a replacement of a booked transaction), so it is not counted twice.
    fn within_caps(&self, asset: Address, amount: U256, booked: U256, day: i64) -> Result<()> {
        let (name, rule, per_tx, per_day) = if asset == Address::ZERO {
            ("wei of ether".to_string(), "native", self.native_caps.0, self.native_caps.1)
        } else {
            let t = &self.token_caps[&asset];
            (format!("base units of {}", t.symbol), "tokens", t.per_tx, t.per_day)
        };
        if let Some(cap) = per_tx
            && amount > cap
        {
            return Err(refuse(
                rule,
                format!("{amount} {name} is above the per-transaction cap {cap}"),
            ));
        }
        if let Some(cap) = per_day {
            let total = self.spent(asset, day).saturating_sub(booked).saturating_add(amount);
            if total > cap {
                return Err(refuse(
                    rule,
                    format!(
                        "{amount} {name} would bring today's spend to {total}, above the daily cap {cap}"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A signer that signs only what its [`Guard`] approves. The signer is private to it.
pub struct GuardedSigner {
    signer: PrivateKeySigner,
    guard: Guard,
}

impl std::fmt::Debug for GuardedSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedSigner")
            .field("address", &self.signer.address())
            .finish_non_exhaustive()
    }
}

impl GuardedSigner {
    /// Puts `signer` behind `guard`.
    pub fn new(signer: PrivateKeySigner, guard: Guard) -> Self {
        Self { signer, guard }
    }

    /// The wallet's address.
    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// The guard (to read spend totals).
    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// Books spends restored from a journal.
    pub fn restore_spends(&mut self, spends: &[(Address, U256)], day: i64) {
        self.guard.book(spends, day);
    }

    /// Signs a fee-bumped replacement of a transaction already signed and booked: every rule
    /// is checked again (the new fees against the caps), but the spend is not booked twice.
    pub fn sign_replacement(
        &mut self,
        tx: TxEip1559,
        quote: Option<&ChainQuote>,
        day: i64,
    ) -> Result<Signed> {
        let approval = self.guard.check_replacement(self.signer.address(), &tx, quote, day)?;
        if self.guard.policy.dry_run {
            return Ok(Signed::DryRun(approval));
        }
        let signed = sign(&self.signer, tx)?;
        Ok(Signed::Tx(Box::new(signed), approval))
    }

    /// Checks `tx`; in a dry run returns the approval, otherwise signs and books the spend.
    /// Every refusal is logged with its rule.
    pub fn sign(&mut self, tx: TxEip1559, quote: Option<&ChainQuote>, day: i64) -> Result<Signed> {
        let approval = match self.guard.check(self.signer.address(), &tx, quote, day) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, nonce = tx.nonce, "transaction refused");
                return Err(e);
            }
        };
        if self.guard.policy.dry_run {
            tracing::info!(summary = %approval.summary, "dry run: approved, not signed");
            return Ok(Signed::DryRun(approval));
        }
        let signed = sign(&self.signer, tx)?;
        self.guard.book(&approval.spends, day);
        tracing::info!(hash = %signed.hash, summary = %approval.summary, "signed");
        Ok(Signed::Tx(Box::new(signed), approval))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{Bytes, address};

    const ROUTER: Address = address!("0x7a250d5630B4cF539739dF2C5dAcb4c659F2488D");
    const A: Address = address!("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48");
    const B: Address = address!("0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2");

    fn swap(from: Address, min_out: u64) -> TxEip1559 {
        let input = IUniswapV2Router02::swapExactTokensForTokensCall {
            amountIn: U256::from(1_000u64),
            amountOutMin: U256::from(min_out),
            path: vec![A, B],
            to: from,
            deadline: U256::from(1_900_000_000u64),
        }
        .abi_encode();
        TxEip1559 {
            chain_id: 1,
            to: TxKind::Call(ROUTER),
            gas_limit: 200_000,
            input: Bytes::from(input),
            ..TxEip1559::default()
        }
    }

    #[test]
    fn the_slippage_bound_is_the_chain_quote() {
        let policy: Policy = toml::from_str(&format!(
            "max_slippage_bps = 50\nallowed_contracts = [\"{ROUTER}\"]\n\
             [[tokens]]\naddress = \"{A}\"\nsymbol = \"A\"\ndecimals = 0\n\
             [[tokens]]\naddress = \"{B}\"\nsymbol = \"B\"\ndecimals = 0\n"
        ))
        .unwrap();
        let guard = Guard::new(policy).unwrap();
        let me = Address::repeat_byte(1);
        let quote = ChainQuote::new(U256::from(10_000u64), 7);
        // 50 bps under 10,000 is 9,950.
        guard.check(me, &swap(me, 9_950), Some(&quote), 0).unwrap();
        let err = guard.check(me, &swap(me, 9_949), Some(&quote), 0).unwrap_err().to_string();
        assert!(err.contains("`max_slippage_bps`") && err.contains("below 9950"), "{err}");
        let err = guard.check(me, &swap(me, 9_950), None, 0).unwrap_err().to_string();
        assert!(err.contains("without a quote"), "{err}");
        assert_eq!((quote.amount_out(), quote.block()), (U256::from(10_000u64), 7));
    }

    const POLICY: &str = r#"
chain_id = 1
max_fee_per_gas_gwei = 100
max_priority_fee_gwei = 3
max_slippage_bps = 50
allowed_contracts = ["0x7a250d5630B4cF539739dF2C5dAcb4c659F2488D"]
allowed_recipients = []
native = { max_per_tx = "0.5", max_per_day = "2" }
[[tokens]]
address = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
symbol = "USDC"
decimals = 6
max_per_tx = "1000"
max_approval = "1000"
"#;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Mutated policy files parse to an error or to a policy the guard takes or refuses
        /// by name, never a panic.
        #[test]
        fn mutated_policies_never_panic(
            edits in proptest::collection::vec((0usize..1000, proptest::num::u8::ANY), 1..5)
        ) {
            let mut bytes = POLICY.as_bytes().to_vec();
            for (at, b) in edits {
                let i = at % bytes.len();
                bytes[i] = b;
            }
            if let Ok(p) = toml::from_str::<Policy>(&String::from_utf8_lossy(&bytes)) {
                let _ = Guard::new(p);
            }
        }

        /// Any amount text and any decimals.
        #[test]
        fn any_amount_is_parsed_or_refused(amount in ".{0,90}", decimals in proptest::num::u8::ANY) {
            let p = Policy {
                tokens: vec![TokenPolicy {
                    address: A,
                    symbol: "A".into(),
                    decimals,
                    caps: Caps { max_per_tx: Some(amount.clone()), max_per_day: None },
                    max_approval: Some(amount),
                }],
                ..Policy::default()
            };
            let _ = Guard::new(p);
        }
    }
}
