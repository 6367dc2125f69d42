//! `kairos tx send`, `kairos swap` and `kairos tx status`: transactions through the full
//! lifecycle (simulation, guardrails, nonce, journal, broadcast, confirmations), configured by
//! a wallet file (`examples/wallet.toml` documents every key).
//!
//! A command prints a transaction's hash and journal order as soon as it is broadcast, and
//! its exit status says whether running it again is safe (see [`EXIT_CODES`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use kairos_chain::abi::IERC20;
use kairos_chain::alloy::primitives::utils::format_units;
use kairos_chain::alloy::primitives::{Address, U256};
use kairos_chain::alloy::providers::Provider;
use kairos_chain::alloy::sol_types::SolCall;
use kairos_chain::dex;
use kairos_chain::executor::{self, Executor, ExecutorConfig, Outcome, Request, Submitted};
use kairos_chain::guard::{Guard, GuardedSigner, Policy};
use kairos_chain::journal::Journal;
use kairos_chain::keys::{self, KeyDir};
use kairos_chain::tx;
use serde::Deserialize;

use crate::wallet::PasswordArg;

/// Exit status: broadcast, but the outcome is not known yet. Do not send the order again; run
/// `kairos tx status --pending`.
pub const EXIT_UNSETTLED: u8 = 3;
/// Exit status: refused because an earlier transaction of the wallet is unsettled.
pub const EXIT_PENDING: u8 = 4;

/// What the exit statuses of `tx send`, `swap` and `tx status` mean (their `--help`).
pub const EXIT_CODES: &str = "\
Exit status:
  0  done: every transaction of this command is final (confirmed; `tx status` also counts
     reverted and superseded ones, which it reports)
  1  failed, and nothing of this command is pending on chain (refused, reverted, bad input)
  2  the command line is wrong
  3  BROADCAST, OUTCOME NOT KNOWN YET (timed out, or stopped by Ctrl-C or SIGTERM): do not
     send it again; run `kairos tx status --wallet FILE --pending`, which tracks it to its end
  4  refused: an earlier transaction of this wallet is unsettled (see `kairos tx status
     --pending`, or pass --allow-pending)";

/// The exit status for an error of these commands.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<PendingRefusal>().is_some() {
        return EXIT_PENDING;
    }
    if e.downcast_ref::<Interrupted>().is_some() {
        return EXIT_UNSETTLED;
    }
    match e.downcast_ref::<kairos_chain::Error>() {
        Some(kairos_chain::Error::Unsettled { .. }) => EXIT_UNSETTLED,
        _ => 1,
    }
}

/// An earlier transaction of the wallet is not final.
#[derive(Debug)]
pub struct PendingRefusal(String);

impl std::fmt::Display for PendingRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PendingRefusal {}

/// The wallet file.
#[derive(Deserialize)]
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
    /// DEX contracts the executor reads quotes from.
    #[serde(default)]
    pub dex: Dex,
    /// The guardrails.
    pub guardrails: Policy,
}

/// `[dex]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dex {
    /// Uniswap V3 `QuoterV2`, which quotes V3 swaps for the slippage guardrail.
    pub v3_quoter: Option<Address>,
}

/// Endpoint URLs often carry a provider's API key: only scheme, host and port are shown.
impl std::fmt::Debug for WalletFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalletFile")
            .field("rpc_url", &executor::redact(&self.rpc_url))
            .field("private_relay", &self.private_relay.as_deref().map(executor::redact))
            .field("chain_id", &self.chain_id)
            .field("keystore", &self.keystore)
            .field("keystore_dir", &self.keystore_dir)
            .field("journal", &self.journal)
            .field("lifecycle", &self.lifecycle)
            .field("dex", &self.dex)
            .field("guardrails", &self.guardrails)
            .finish()
    }
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
        let cap = w.lifecycle.max_fee_cap_gwei;
        if !cap.is_finite() || cap <= 0.0 {
            bail!("{}: lifecycle.max_fee_cap_gwei must be a positive number", path.display());
        }
        for (key, v) in [
            ("guardrails.max_fee_per_gas_gwei", w.guardrails.max_fee_per_gas_gwei),
            ("guardrails.max_priority_fee_gwei", w.guardrails.max_priority_fee_gwei),
        ] {
            if let Some(v) = v
                && (!v.is_finite() || v < 0.0)
            {
                bail!("{}: {key} must be a non-negative number", path.display());
            }
        }
        if let Some(guard) = w.guardrails.max_fee_per_gas_gwei
            && cap > guard
        {
            bail!(
                "{}: lifecycle.max_fee_cap_gwei ({cap}) is above guardrails.max_fee_per_gas_gwei \
                 ({guard}): the guard would refuse those fee bumps; set it to {guard} or less",
                path.display()
            );
        }
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

    fn config(&self, v3_quoter: Option<Address>) -> ExecutorConfig {
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
            v3_quoter: v3_quoter.or(self.dex.v3_quoter),
            ..ExecutorConfig::default()
        }
    }

    /// The key file the wallet names.
    fn key_path(&self) -> Result<PathBuf> {
        Ok(KeyDir::new(self.keystore_dir.clone().unwrap_or_else(KeyDir::default_dir))
            .resolve("keystore", &self.keystore)?)
    }

    async fn executor(
        &self,
        password: &PasswordArg,
        v3_quoter: Option<Address>,
    ) -> Result<Executor> {
        let path = self.key_path()?;
        let signer = keys::unlock_file(&path, &password.read(false)?)?;
        let guard = Guard::new(self.guardrails.clone())?;
        let journal = Journal::open(&self.journal)?;
        Ok(Executor::new(
            &self.rpc_url,
            self.private_relay.as_deref(),
            GuardedSigner::new(signer, guard),
            journal,
            self.config(v3_quoter),
        )
        .await?)
    }
}

impl WalletFile {
    /// The executor of a headless agent: the key's password from `password_file`, else the
    /// environment's `KAIROS_KEYSTORE_PASSWORD` (never a prompt).
    pub async fn agent_executor(&self, password_file: Option<PathBuf>) -> Result<Executor> {
        self.executor(&PasswordArg::from_file(password_file), None).await
    }
}

/// Refuses a new order while an earlier transaction of the wallet is unsettled.
fn refuse_if_pending(exec: &Executor, allow: bool) -> Result<()> {
    let pending = exec.resumable()?;
    let Some(first) = pending.first() else { return Ok(()) };
    if allow {
        say!("note: {} earlier transaction(s) still unsettled (--allow-pending)", pending.len());
        return Ok(());
    }
    Err(PendingRefusal(format!(
        "an earlier transaction of {} is unsettled: {} (order {}, nonce {}){}. Sending another \
         order now could repeat it. Run `kairos tx status --wallet FILE --pending` to track it \
         to its end, or pass --allow-pending",
        exec.address(),
        first.latest().hash,
        first.order.map_or("?".into(), |o| o.to_string()),
        first.nonce,
        if pending.len() > 1 { format!(" and {} more", pending.len() - 1) } else { String::new() }
    ))
    .into())
}

/// Says on stderr, as soon as it is broadcast, which transaction is in flight.
fn announce(what: &str, sub: &Submitted, confirmations: u64) {
    say!(
        "{what}: broadcast {} (journal order {}, nonce {}); waiting for {confirmations} \
         confirmation(s). If this command is interrupted, do not send again: run \
         `kairos tx status --pending`",
        sub.latest().hash,
        sub.order.map_or("?".into(), |o| o.to_string()),
        sub.nonce
    );
}

/// Sends `req`, announcing each broadcast.
async fn send_announced(exec: &Executor, what: &str, req: Request) -> Result<Outcome> {
    let c = exec.config().confirmations;
    Ok(exec.send_notify(req, |sub| announce(what, sub, c)).await?)
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
    /// Send even while an earlier transaction of the wallet is unsettled.
    #[arg(long)]
    allow_pending: bool,
}

/// `kairos tx status`
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["pending", "hash"])))]
pub struct StatusArgs {
    /// The wallet file (see examples/wallet.toml).
    #[arg(long, env = "KAIROS_WALLET")]
    wallet: PathBuf,
    #[command(flatten)]
    password: PasswordArg,
    /// Track every unsettled transaction of the wallet to its end.
    #[arg(long)]
    pending: bool,
    /// One transaction: its journal history, its state on chain, and tracking to its end if
    /// it is unsettled.
    hash: Option<String>,
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
    /// Swap even while an earlier transaction of the wallet is unsettled.
    #[arg(long)]
    allow_pending: bool,
}

#[derive(Debug, Clone, Copy)]
enum Venue {
    V2 { factory: Address },
    V3 { fee: u32, quoter: Address },
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?)
}

/// Runs an on-chain command's work unless SIGINT (Ctrl-C) or SIGTERM comes first. The work is
/// then dropped at its next await: the journal is written between awaits, so it holds what a
/// crash at that point would leave, and what was broadcast has an unknown outcome (exit
/// status 3, as for a timeout).
fn run_interruptible<T>(work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    runtime()?.block_on(async {
        #[cfg(unix)]
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        #[cfg(unix)]
        let terminated = term.recv();
        #[cfg(not(unix))]
        let terminated = std::future::pending::<Option<()>>();
        tokio::select! {
            r = work => r,
            _ = tokio::signal::ctrl_c() => Err(Interrupted("SIGINT").into()),
            _ = terminated => Err(Interrupted("SIGTERM").into()),
        }
    })
}

/// An on-chain command stopped by a signal.
#[derive(Debug)]
pub struct Interrupted(&'static str);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "interrupted by {}: the outcome of anything this command broadcast is not known yet. \
             Do not send it again: run `kairos tx status --wallet FILE --pending`, which tracks \
             it to its end",
            self.0
        )
    }
}

impl std::error::Error for Interrupted {}

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
    };
    run_interruptible(async {
        let exec = w.executor(&a.password, None).await?;
        refuse_if_pending(&exec, a.allow_pending)?;
        let out = send_announced(&exec, "send", req).await?;
        println!(
            "{}",
            serde_json::json!({
                "order": out.order,
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
    let v3_quoter = match venue {
        Venue::V3 { quoter, .. } => Some(quoter),
        Venue::V2 { .. } => None,
    };
    run_interruptible(async {
        let exec = w.executor(&a.password, v3_quoter).await?;
        refuse_if_pending(&exec, a.allow_pending)?;
        let me = exec.address();
        let p = exec.provider();
        let decimals = |t: Address| async move {
            IERC20::new(t, p).decimals().call().await.with_context(|| format!("decimals() of {t}"))
        };
        let (dec_in, dec_out) = (decimals(sell).await?, decimals(buy).await?);
        let amount_in = tx::parse_amount("--amount", &a.amount, dec_in)?;
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
            let approve = Request { to: sell, input: input.into(), ..Request::default() };
            let out = send_announced(&exec, "approve", approve).await?;
            say!("approved exactly {} for the router in {}", a.amount, out.hash);
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
        // The executor quotes the swap from the chain itself for the slippage guardrail; the
        // quote above only sets the minimum output.
        let out =
            send_announced(&exec, "swap", Request { to: router, input, ..Request::default() })
                .await?;
        let after = IERC20::new(buy, p).balanceOf(me).call().await?;
        let fmt = |v: U256| format_units(v, dec_out).unwrap_or_else(|_| v.to_string());
        println!(
            "{}",
            serde_json::json!({
                "order": out.order,
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

/// Prints the journal's history of `hash` (an error when the journal does not hold it).
fn print_history(
    journal: &Journal,
    hash: kairos_chain::alloy::primitives::B256,
) -> Result<Vec<kairos_chain::journal::TxEvent>> {
    let events = journal.hash_events(hash)?;
    if events.is_empty() {
        bail!("{hash} is not in the journal {}", journal.path().display());
    }
    for e in &events {
        say!("journal: {} {} {}", e.state, e.nonce.map_or("-".into(), |n| n.to_string()), e.detail);
    }
    Ok(events)
}

/// `tx status HASH` for a transaction with nothing left to track: its journal history, and one
/// JSON line with its last state there and its receipt on chain.
async fn settled_status(
    journal: &Journal,
    rpc: &kairos_chain::alloy::providers::RootProvider,
    hash: kairos_chain::alloy::primitives::B256,
) -> Result<()> {
    let events = print_history(journal, hash)?;
    let receipt = rpc.get_transaction_receipt(hash).await?;
    println!(
        "{}",
        serde_json::json!({
            "order": events.iter().find_map(|e| e.order),
            "hash": hash.to_string(),
            "state": events.last().map(|e| e.state.clone()),
            "on_chain": receipt.as_ref().map(|r| if r.status() { "success" } else { "reverted" }),
            "block": receipt.and_then(|r| r.block_number),
        })
    );
    Ok(())
}

/// Runs `kairos tx status`: every unsettled transaction (or the one named) tracked to its end
/// from the journal and the chain. Prints one JSON line per transaction.
pub fn status(a: StatusArgs) -> Result<()> {
    let w = WalletFile::load(&a.wallet)?;
    let wanted = a.hash.as_deref().map(|h| {
        h.trim()
            .parse::<kairos_chain::alloy::primitives::B256>()
            .with_context(|| format!("{h:?} is not a transaction hash (0x and 64 hex digits)"))
    });
    let wanted = wanted.transpose()?;
    run_interruptible(async {
        // Without the key first: the key file declares its address, and with nothing of it to
        // track (nothing unsettled, or the hash asked for settled) no password is asked for.
        // Only tracking, which may re-sign a fee bump, unlocks the key, and then the key's own
        // address is the one used.
        if let Some(address) = keys::declared_address(&w.key_path()?) {
            let journal = Journal::open(&w.journal)?;
            let unsettled = journal.unsettled(address)?;
            let tracked = |h| unsettled.iter().any(|u| u.versions.iter().any(|v: &_| v.hash == h));
            match wanted {
                None if unsettled.is_empty() => {
                    say!("no unsettled transactions for {address}");
                    return Ok(());
                }
                Some(hash) if !tracked(hash) => {
                    let rpc = executor::provider(&w.rpc_url)?;
                    return settled_status(&journal, &rpc, hash).await;
                }
                // The journal is held by one handle at a time: closed before the executor's.
                _ => drop(journal),
            }
        }
        let exec = w.executor(&a.password, None).await?;
        let mut todo = exec.resumable()?;
        if let Some(hash) = wanted {
            todo.retain(|s| s.hashes().contains(&hash));
            if todo.is_empty() {
                return settled_status(exec.journal(), exec.provider(), hash).await;
            }
            print_history(exec.journal(), hash)?;
        } else if todo.is_empty() {
            say!("no unsettled transactions for {}", exec.address());
            return Ok(());
        }
        let mut unknown = None;
        for sub in todo {
            let (order, nonce, hash) = (sub.order, sub.nonce, sub.latest().hash);
            say!(
                "tracking {hash} (journal order {}, nonce {nonce})",
                order.map_or("?".into(), |o| o.to_string())
            );
            let line = |state: &str, hash: String, block: Option<u64>, detail: String| {
                println!(
                    "{}",
                    serde_json::json!({"order": order, "nonce": nonce, "hash": hash, "state": state, "block": block, "detail": detail})
                );
            };
            match exec.wait(sub).await {
                Ok(out) => {
                    line("confirmed", out.hash.to_string(), out.receipt.block_number, String::new())
                }
                Err(e @ kairos_chain::Error::Reverted { .. }) => {
                    line("reverted", hash.to_string(), None, e.to_string())
                }
                Err(e @ kairos_chain::Error::Superseded { .. }) => {
                    line("superseded", hash.to_string(), None, e.to_string())
                }
                Err(e @ kairos_chain::Error::Unsettled { .. }) => {
                    line("unsettled", hash.to_string(), None, e.to_string());
                    unknown = Some(e);
                }
                Err(e) => return Err(e.into()),
            }
        }
        match unknown {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> String {
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/wallet.toml"))
            .unwrap()
    }

    #[test]
    fn debug_hides_the_endpoint_credentials_and_caps_are_consistent() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("w.toml");
        let text = example().replace(
            "rpc_url = \"http://127.0.0.1:8545\"",
            "rpc_url = \"https://eth.example/v2/SECRETKEY123?key=SECRETKEY123\"",
        );
        std::fs::write(&path, &text).unwrap();
        let w = WalletFile::load(&path).unwrap();
        let dbg = format!("{w:?}");
        assert!(!dbg.contains("SECRETKEY123") && dbg.contains("https://eth.example"), "{dbg}");
        std::fs::write(&path, text.replace("max_fee_cap_gwei = 100", "max_fee_cap_gwei = 500"))
            .unwrap();
        let err = WalletFile::load(&path).unwrap_err().to_string();
        assert!(err.contains("lifecycle.max_fee_cap_gwei (500) is above"), "{err}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Mutated wallet files load or fail with an error, never a panic.
        #[test]
        fn mutated_wallet_files_never_panic(
            edits in proptest::collection::vec((0usize..4000, proptest::num::u8::ANY), 1..5)
        ) {
            let mut bytes = example().into_bytes();
            for (at, b) in edits {
                let i = at % bytes.len();
                bytes[i] = b;
            }
            let tmp = tempfile::tempdir().unwrap();
            let path = tmp.path().join("w.toml");
            std::fs::write(&path, &bytes).unwrap();
            if let Ok(w) = WalletFile::load(&path) {
                let _ = Guard::new(w.guardrails.clone());
                let _ = w.config(None);
            }
        }
    }
}
