//! `kairos tx send` and `kairos swap`: transactions through the full lifecycle (simulation,
//! guardrails, nonce, journal, broadcast, confirmations), configured by a wallet file
//! (`examples/wallet.toml` documents every key).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use kairos_chain::abi::IERC20;
use kairos_chain::alloy::primitives::utils::{format_units, parse_units};
use kairos_chain::alloy::primitives::{Address, U256};
use kairos_chain::alloy::providers::Provider;
use kairos_chain::alloy::sol_types::SolCall;
use kairos_chain::dex;
use kairos_chain::executor::{Executor, ExecutorConfig, Request};
use kairos_chain::guard::{Guard, GuardedSigner, Policy};
use kairos_chain::journal::Journal;
use kairos_chain::keys::{self, KeyDir};
use kairos_chain::tx;
use serde::Deserialize;

use crate::wallet::PasswordArg;

/// The wallet file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalletFile {
    /// JSON-RPC endpoint of the node.
    pub rpc_url: String,
    /// Optional private relay that receives the broadcasts instead of `rpc_url`.
    #[serde(default)]
    pub private_relay: Option<String>,
    /// The chain the wallet acts on (checked against the node).
    pub chain_id: u64,
    /// The key: a key file, or an address in `keystore_dir`.
    pub keystore: String,
    /// Keystore folder for an address in `keystore`.
    #[serde(default)]
    pub keystore_dir: Option<PathBuf>,
    /// The transaction journal (SQLite); relative paths are from the wallet file's folder.
    pub journal: PathBuf,
    /// Lifecycle settings.
    #[serde(default)]
    pub lifecycle: Lifecycle,
    /// The guardrails.
    pub guardrails: Policy,
}

/// `[lifecycle]`
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Lifecycle {
    /// Confirmations before a transaction is final.
    pub confirmations: u64,
    /// Seconds without a receipt before a fee bump.
    pub stuck_after_secs: u64,
    /// Fee increase per bump, percent (10 or more).
    pub bump_percent: u32,
    /// Most bumps per transaction.
    pub max_bumps: u32,
    /// No bump raises the max fee above this, gwei.
    pub max_fee_cap_gwei: f64,
    /// Seconds to wait for confirmation before giving up.
    pub timeout_secs: u64,
    /// Milliseconds between receipt polls.
    pub poll_ms: u64,
}

impl Default for Lifecycle {
    fn default() -> Self {
        let d = ExecutorConfig::default();
        Self {
            confirmations: d.confirmations,
            stuck_after_secs: d.stuck_after.as_secs(),
            bump_percent: d.bump_percent,
            max_bumps: d.max_bumps,
            max_fee_cap_gwei: d.max_fee_cap as f64 / 1e9,
            timeout_secs: d.timeout.as_secs(),
            poll_ms: d.poll.as_millis() as u64,
        }
    }
}

impl WalletFile {
    /// Reads and checks a wallet file.
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut w: Self = toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
        if w.lifecycle.bump_percent < 10 {
            bail!(
                "{}: lifecycle.bump_percent must be at least 10 (nodes refuse smaller replacements)",
                path.display()
            );
        }
        if let Some(c) = w.guardrails.chain_id
            && c != w.chain_id
        {
            bail!(
                "{}: guardrails.chain_id {c} differs from chain_id {}",
                path.display(),
                w.chain_id
            );
        }
        w.guardrails.chain_id = Some(w.chain_id);
        if w.journal.is_relative()
            && let Some(dir) = path.parent()
        {
            w.journal = dir.join(&w.journal);
        }
        Ok(w)
    }

    fn config(&self) -> ExecutorConfig {
        let l = &self.lifecycle;
        ExecutorConfig {
            chain_id: self.chain_id,
            confirmations: l.confirmations,
            poll: Duration::from_millis(l.poll_ms.max(10)),
            stuck_after: Duration::from_secs(l.stuck_after_secs),
            bump_percent: l.bump_percent,
            max_bumps: l.max_bumps,
            max_fee_cap: (l.max_fee_cap_gwei * 1e9) as u128,
            timeout: Duration::from_secs(l.timeout_secs),
            ..ExecutorConfig::default()
        }
    }

    async fn executor(&self, password: &PasswordArg) -> Result<Executor> {
        let path = KeyDir::new(self.keystore_dir.clone().unwrap_or_else(KeyDir::default_dir))
            .resolve("keystore", &self.keystore)?;
        let signer = keys::unlock_file(&path, &password.read(false)?)?;
        let guard = Guard::new(self.guardrails.clone())?;
        let journal = Journal::open(&self.journal)?;
        Ok(Executor::new(
            &self.rpc_url,
            self.private_relay.as_deref(),
            GuardedSigner::new(signer, guard),
            journal,
            self.config(),
        )
        .await?)
    }
}

/// `kairos tx send`
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The wallet file (see examples/wallet.toml).
    #[arg(long, env = "KAIROS_WALLET")]
    wallet: PathBuf,
    #[command(flatten)]
    password: PasswordArg,
    /// Recipient or contract.
    #[arg(long)]
    to: String,
    /// Wei to send.
    #[arg(long, default_value = "0")]
    value: String,
    /// Calldata as hex.
    #[arg(long, default_value = "")]
    data: String,
    /// Gas limit (estimated when absent).
    #[arg(long)]
    gas: Option<String>,
    /// maxFeePerGas in wei (with --priority-fee; estimated when absent).
    #[arg(long, requires = "priority_fee")]
    max_fee: Option<String>,
    /// maxPriorityFeePerGas in wei.
    #[arg(long, requires = "max_fee")]
    priority_fee: Option<String>,
}

/// `kairos swap`
#[derive(Debug, Args)]
pub struct SwapArgs {
    /// The wallet file (see examples/wallet.toml).
    #[arg(long, env = "KAIROS_WALLET")]
    wallet: PathBuf,
    #[command(flatten)]
    password: PasswordArg,
    /// The router: Uniswap V2's `Router02`, or V3's `SwapRouter` with `--v3-fee`.
    #[arg(long)]
    router: String,
    /// Uniswap V2 factory, to quote from the pool's reserves.
    #[arg(long, required_unless_present = "v3_fee")]
    factory: Option<String>,
    /// Swap on Uniswap V3 through the pool of this fee tier (500, 3000, 10000), quoted by
    /// `--quoter`.
    #[arg(long, requires = "quoter", conflicts_with = "factory")]
    v3_fee: Option<u32>,
    /// Uniswap V3 `QuoterV2`.
    #[arg(long, requires = "v3_fee")]
    quoter: Option<String>,
    /// Token to sell.
    #[arg(long)]
    sell: String,
    /// Token to buy.
    #[arg(long)]
    buy: String,
    /// Amount to sell, in whole tokens (`12.5`).
    #[arg(long)]
    amount: String,
    /// Accept at most this much less than the quote, basis points.
    #[arg(long, default_value_t = 50)]
    slippage_bps: u32,
    /// The swap is void after this many seconds.
    #[arg(long, default_value_t = 300)]
    deadline_secs: u64,
}

#[derive(Debug, Clone, Copy)]
enum Venue {
    V2 { factory: Address },
    V3 { fee: u32, quoter: Address },
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?)
}

/// Runs `kairos tx send`.
pub fn send(a: SendArgs) -> Result<()> {
    let w = WalletFile::load(&a.wallet)?;
    let req = Request {
        to: tx::parse_address("--to", &a.to)?,
        value: tx::parse_u256("--value", &a.value)?,
        input: tx::parse_bytes("--data", &a.data)?,
        gas_limit: a.gas.as_deref().map(|g| tx::parse_int("--gas", g)).transpose()?,
        fees: match (&a.max_fee, &a.priority_fee) {
            (Some(m), Some(p)) => {
                Some((tx::parse_int("--max-fee", m)?, tx::parse_int("--priority-fee", p)?))
            }
            _ => None,
        },
        quote: None,
    };
    runtime()?.block_on(async {
        let exec = w.executor(&a.password).await?;
        let out = exec.send(req).await?;
        println!(
            "{}",
            serde_json::json!({
                "hash": out.hash.to_string(),
                "block": out.receipt.block_number,
                "gas_used": out.receipt.gas_used,
                "fee_bumps": out.bumps,
            })
        );
        Ok(())
    })
}

/// Runs `kairos swap`: quote (V2 reserves or the V3 quoter), approve the exact amount if needed, swap with the
/// slippage bound and deadline, report what was received.
pub fn swap(a: SwapArgs) -> Result<()> {
    let w = WalletFile::load(&a.wallet)?;
    let router = tx::parse_address("--router", &a.router)?;
    let venue = match (&a.factory, a.v3_fee, &a.quoter) {
        (Some(f), None, None) => Venue::V2 { factory: tx::parse_address("--factory", f)? },
        (None, Some(fee), Some(q)) => Venue::V3 { fee, quoter: tx::parse_address("--quoter", q)? },
        _ => bail!("give --factory (Uniswap V2) or --v3-fee with --quoter (Uniswap V3)"),
    };
    let sell = tx::parse_address("--sell", &a.sell)?;
    let buy = tx::parse_address("--buy", &a.buy)?;
    runtime()?.block_on(async {
        let exec = w.executor(&a.password).await?;
        let me = exec.address();
        let p = exec.provider();
        let decimals = |t: Address| async move {
            IERC20::new(t, p).decimals().call().await.with_context(|| format!("decimals() of {t}"))
        };
        let (dec_in, dec_out) = (decimals(sell).await?, decimals(buy).await?);
        let amount_in = parse_units(&a.amount, dec_in)
            .with_context(|| format!("--amount {:?} for a token of {dec_in} decimals", a.amount))?
            .get_absolute();
        let quote = match venue {
            Venue::V2 { factory } => {
                let reserves = dex::v2_reserves(p, factory, sell, buy).await?;
                dex::v2_amount_out(amount_in, reserves.reserve_in, reserves.reserve_out)
                    .context("the pool is empty or the amount is zero")?
            }
            Venue::V3 { fee, quoter } => {
                dex::v3_quote(p, quoter, sell, buy, fee, amount_in).await?
            }
        };
        let min = dex::min_out(quote, a.slippage_bps);
        let allowance = IERC20::new(sell, p).allowance(me, router).call().await?;
        if allowance < amount_in {
            let input = IERC20::approveCall { spender: router, amount: amount_in }.abi_encode();
            let out =
                exec.send(Request { to: sell, input: input.into(), ..Request::default() }).await?;
            eprintln!("approved exactly {} for the router in {}", a.amount, out.hash);
        }
        let before = IERC20::new(buy, p).balanceOf(me).call().await?;
        let head = p.get_block_by_number(Default::default()).await?.context("no latest block")?;
        let deadline = head.header.timestamp + a.deadline_secs;
        let input = match venue {
            Venue::V2 { .. } => {
                dex::v2_swap_exact_tokens(amount_in, min, vec![sell, buy], me, deadline)
            }
            Venue::V3 { fee, .. } => {
                dex::v3_exact_input_single(sell, buy, fee, me, deadline, amount_in, min)
            }
        };
        let out = exec
            .send(Request { to: router, input, quote: Some(quote), ..Request::default() })
            .await?;
        let after = IERC20::new(buy, p).balanceOf(me).call().await?;
        let fmt = |v: U256| format_units(v, dec_out).unwrap_or_else(|_| v.to_string());
        println!(
            "{}",
            serde_json::json!({
                "hash": out.hash.to_string(),
                "block": out.receipt.block_number,
                "sold": a.amount,
                "quote": fmt(quote),
                "min_out": fmt(min),
                "received": fmt(after.saturating_sub(before)),
                "fee_bumps": out.bumps,
            })
        );
        Ok(())
    })
}
