//! The transaction lifecycle: simulate (and quote swaps from the chain), take a nonce, sign
//! behind the guardrails, journal, broadcast, track to N confirmations, bump when stuck,
//! notice reorgs and drops.
//!
//! One [`Executor`] owns one address's nonces. Submissions from many tasks are serialised
//! from nonce to broadcast (the part that must be ordered; it takes a few milliseconds), so
//! concurrent sends get consecutive nonces with no gap and no duplicate.
//!
//! The rule that keeps a crash or a lost answer from becoming a second order: once signed
//! bytes may have reached a node, the order is never signed again at another nonce until the
//! chain shows that nonce used by a different transaction. A node's answer is therefore
//! classified ([`broadcast`]) as accepted, refused outright (nothing can have left: re-sign
//! safely), or unclear ("nonce too low" may be this very transaction, mined through another
//! path; a lost response may hide a success): an unclear broadcast is tracked like an accepted
//! one, and tracking ([`track`]) decides from the chain.
//!
//! - [`simulate`]: the `eth_call`, the gas estimates and the swap quote, at one block;
//! - [`broadcast`]: sending signed bytes and classifying the answer;
//! - [`track`]: the state machine that follows a transaction to its end.

mod broadcast;
mod simulate;
mod track;

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use alloy::consensus::{TxEip1559, TxEnvelope};
use alloy::eips::eip2718::Decodable2718;
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::{Provider, RootProvider};
use alloy::rpc::types::TransactionReceipt;

use crate::guard::{ChainQuote, GuardedSigner, Signed};
use crate::hooks::halt_at;
use crate::journal::{Entry, Journal, TxState};
use crate::tx::{SignedTx, TxFields};
use crate::{Error, Result};

pub use broadcast::{Answer, classify_message};
pub use simulate::{Simulation, revert_reason};

use broadcast::Sent;

/// Lifecycle settings.
#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    /// The chain id (checked against the node at start).
    pub chain_id: u64,
    /// Confirmations before a transaction counts as final.
    pub confirmations: u64,
    /// How often to poll for receipts.
    pub poll: Duration,
    /// Without a receipt for this long, a transaction is stuck and gets a fee bump.
    pub stuck_after: Duration,
    /// Fee increase per bump, percent (at least 10: nodes refuse smaller replacements).
    pub bump_percent: u32,
    /// Most bumps per transaction.
    pub max_bumps: u32,
    /// No bump raises `maxFeePerGas` above this (wei), nor above the guard's
    /// `max_fee_per_gas_gwei`.
    pub max_fee_cap: u128,
    /// Stop tracking after this long; the outcome is then [`Error::Unsettled`].
    pub timeout: Duration,
    /// Retries of one broadcast on rate limits and transport errors.
    pub broadcast_retries: u32,
    /// Extra gas over the estimate, percent (for state that changes between the estimate and
    /// inclusion; timestamp-dependent costs are in the estimate, see [`Executor::simulate`]).
    pub gas_margin_percent: u64,
    /// Uniswap V3 `QuoterV2`, which quotes V3 swaps for the slippage guardrail.
    pub v3_quoter: Option<Address>,
    /// Polls for which the nonce must show as used, with no version of ours known to the node,
    /// before the order counts as superseded by another transaction (a node can count a nonce
    /// before it serves the receipt or the transaction that used it).
    pub orphan_polls: u32,
    /// Longest wait between polls while the node's answers fail (the wait doubles from `poll`).
    pub max_backoff: Duration,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        Self {
            chain_id: 1,
            confirmations: 1,
            poll: Duration::from_millis(250),
            stuck_after: Duration::from_secs(60),
            bump_percent: 12,
            max_bumps: 5,
            max_fee_cap: 500_000_000_000,
            timeout: Duration::from_secs(600),
            broadcast_retries: 8,
            gas_margin_percent: 20,
            v3_quoter: None,
            orphan_polls: 8,
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// What to send: a call or transfer; the executor fills nonce, gas and fees, and quotes a
/// swap from the chain itself.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Recipient or contract.
    pub to: Address,
    /// Wei.
    pub value: U256,
    /// Calldata.
    pub input: Bytes,
    /// Gas limit; estimated (plus the margin) when absent.
    pub gas_limit: Option<u64>,
    /// `(maxFeePerGas, maxPriorityFeePerGas)`; from the node's estimate when absent.
    pub fees: Option<(u128, u128)>,
}

/// A broadcast transaction being tracked.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// Its order in the journal.
    pub order: Option<i64>,
    /// Its nonce.
    pub nonce: u64,
    /// Every version signed for this nonce that may be mined (the original and its fee bumps),
    /// newest last.
    pub versions: Vec<SignedTx>,
    /// The chain's latest block when it was simulated: from here the chain is searched for the
    /// transaction that used its nonce, should another one have (0 when resumed from a journal:
    /// the search then looks back [`RESUME_LOOKBACK`] blocks).
    pub block: u64,
}

/// How far back from the head a resumed transaction's nonce is searched for.
pub const RESUME_LOOKBACK: u64 = 1024;

impl Submitted {
    /// The versions' hashes, newest last.
    pub fn hashes(&self) -> Vec<B256> {
        self.versions.iter().map(|v| v.hash).collect()
    }

    /// The newest version.
    pub fn latest(&self) -> &SignedTx {
        self.versions.last().expect("a submitted transaction has a version")
    }
}

/// How a transaction ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Its order in the journal.
    pub order: Option<i64>,
    /// The hash that was included.
    pub hash: B256,
    /// Its receipt.
    pub receipt: TransactionReceipt,
    /// Fee bumps it took.
    pub bumps: u32,
}

fn today() -> i64 {
    chrono::Utc::now().timestamp().div_euclid(86_400)
}

/// The nonce owner's state.
#[derive(Debug, Default)]
struct Nonces {
    /// The next nonce to use; `None` re-synchronises from the node.
    next: Option<u64>,
    /// Nonces with a transaction of ours that may still be mined: a re-synchronisation never
    /// goes below them (a node that has not seen one yet would hand its nonce out again).
    live: BTreeSet<u64>,
}

/// Sends transactions of one address through the full lifecycle.
pub struct Executor {
    rpc: RootProvider,
    send_rpc: Option<RootProvider>,
    endpoint: String,
    wallet: Mutex<GuardedSigner>,
    address: Address,
    nonces: tokio::sync::Mutex<Nonces>,
    journal: Journal,
    cfg: ExecutorConfig,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("endpoint", &self.endpoint)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// An endpoint without credentials, for messages: `scheme://host[:port]`.
pub fn redact(url: &str) -> String {
    match url.parse::<alloy::transports::http::reqwest::Url>() {
        Ok(u) => format!(
            "{}://{}{}",
            u.scheme(),
            u.host_str().unwrap_or("?"),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "<invalid url>".into(),
    }
}

/// An HTTP client of the node at `url` (for reading the chain without an executor); a URL
/// that does not parse is an error naming it, credentials redacted.
pub fn provider(url: &str) -> Result<RootProvider> {
    let parsed = url
        .parse()
        .map_err(|e| Error::Rpc { endpoint: redact(url), reason: format!("not a URL ({e})") })?;
    Ok(RootProvider::new_http(parsed))
}

/// A signed transaction back from its EIP-2718 bytes (as the journal keeps them).
fn decode_signed(raw: &[u8], from: Address) -> Result<SignedTx> {
    let bad = |why: String| Error::Transaction(format!("journalled bytes: {why}"));
    match TxEnvelope::decode_2718(&mut &raw[..]).map_err(|e| bad(e.to_string()))? {
        TxEnvelope::Eip1559(signed) => Ok(SignedTx {
            raw: Bytes::copy_from_slice(raw),
            hash: *signed.hash(),
            from,
            tx: signed.tx().clone(),
        }),
        other => Err(bad(format!("a type {} transaction, not EIP-1559", other.tx_type() as u8))),
    }
}

impl Executor {
    /// An executor for `wallet` against the node at `rpc_url`; `private_relay` (optional)
    /// receives the broadcasts instead. Checks the node's chain id, restores the day's spend
    /// from the journal and rebroadcasts the signed transactions the journal holds unsettled
    /// (after a crash: the same bytes, never a second order). [`Executor::resumable`] hands
    /// them back for tracking.
    pub async fn new(
        rpc_url: &str,
        private_relay: Option<&str>,
        mut wallet: GuardedSigner,
        journal: Journal,
        cfg: ExecutorConfig,
    ) -> Result<Self> {
        let rpc = provider(rpc_url)?;
        let send_rpc = private_relay.map(provider).transpose()?;
        let endpoint = redact(rpc_url);
        let chain = rpc
            .get_chain_id()
            .await
            .map_err(|e| Error::Rpc { endpoint: endpoint.clone(), reason: e.to_string() })?;
        if chain != cfg.chain_id {
            return Err(Error::Rpc {
                endpoint,
                reason: format!(
                    "the node is on chain {chain}, the executor is configured for {}",
                    cfg.chain_id
                ),
            });
        }
        let address = wallet.address();
        wallet.restore_spends(&journal.spends(today())?, today());
        let me = Self {
            rpc,
            send_rpc,
            endpoint,
            wallet: Mutex::new(wallet),
            address,
            nonces: tokio::sync::Mutex::new(Nonces::default()),
            journal,
            cfg,
        };
        // Bytes the journal holds but that do not decode are named by `resumable` (and so by
        // `kairos tx status` and the pending check); they do not stop the executor.
        let resumable = me.resumable().unwrap_or_else(|e| {
            tracing::error!(error = %e, "an unsettled transaction in the journal cannot be resumed");
            Vec::new()
        });
        for sub in resumable {
            me.nonces.lock().await.live.insert(sub.nonce);
            let latest = sub.latest();
            tracing::info!(nonce = sub.nonce, hash = %latest.hash, "resuming a journalled transaction");
            match me.broadcast(&latest.raw).await {
                Sent::Accepted(note) | Sent::Unclear(note) => me.journal_tx(
                    &sub,
                    latest.hash,
                    TxState::Broadcast,
                    &format!("resumed: {note}"),
                )?,
                Sent::Refused { reason, .. } => {
                    tracing::warn!(%reason, hash = %latest.hash, "could not rebroadcast after restart")
                }
            }
        }
        Ok(me)
    }

    /// The sending address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The node.
    pub fn provider(&self) -> &RootProvider {
        &self.rpc
    }

    /// The settings.
    pub fn config(&self) -> &ExecutorConfig {
        &self.cfg
    }

    fn rpc_err(&self, e: impl std::fmt::Display) -> Error {
        Error::Rpc { endpoint: self.endpoint.clone(), reason: e.to_string() }
    }

    /// The transactions the journal holds unsettled, ready for [`Executor::wait`].
    pub fn resumable(&self) -> Result<Vec<Submitted>> {
        self.journal
            .unsettled(self.address)?
            .into_iter()
            .map(|u| {
                let versions = u
                    .versions
                    .iter()
                    .map(|v| decode_signed(&v.raw, self.address))
                    .collect::<Result<Vec<_>>>()?;
                Ok(Submitted { order: u.order, nonce: u.nonce, versions, block: 0 })
            })
            .collect()
    }

    /// Journals a state change of this sender (one without signed bytes).
    fn record(
        &self,
        order: Option<i64>,
        nonce: Option<u64>,
        hash: Option<B256>,
        state: TxState,
        detail: &str,
    ) -> Result<()> {
        let sender = self.address;
        let entry = Entry { order, sender, nonce, hash, state, detail, raw: None };
        self.journal.record(entry).map(|_| ())
    }

    fn journal_tx(&self, sub: &Submitted, hash: B256, state: TxState, detail: &str) -> Result<()> {
        self.record(sub.order, Some(sub.nonce), Some(hash), state, detail)
    }

    async fn pending_nonce(&self) -> Result<u64> {
        self.rpc.get_transaction_count(self.address).pending().await.map_err(|e| self.rpc_err(e))
    }

    /// Simulates, signs (behind the guardrails) and broadcasts `req` as a new order. Does not
    /// wait for it. An error means nothing of it can be mined, except [`Error::Unsettled`].
    pub async fn submit(&self, req: Request) -> Result<Submitted> {
        self.submit_labelled(req, None).await
    }

    /// As [`Executor::submit`], with the order's journal summary starting `{label}: `: the
    /// caller's own id for it, written with the order itself, so that a caller that crashed
    /// finds its order again ([`Journal::order_labelled`]).
    pub async fn submit_labelled(&self, req: Request, label: Option<&str>) -> Result<Submitted> {
        let summary = format!(
            "to {} value {} data {} bytes (selector 0x{})",
            req.to,
            req.value,
            req.input.len(),
            alloy::primitives::hex::encode(req.input.get(..4).unwrap_or_default())
        );
        let summary = match label {
            Some(l) => format!("{l}: {summary}"),
            None => summary,
        };
        let order = self.journal.new_order(self.address, &summary)?;
        self.submit_order(order, &req, true).await
    }

    /// One order's transaction at a fresh nonce. `book`: its spend counts against the daily
    /// caps (the first signature of an order, and any re-signature after a version that may
    /// have reached a node).
    async fn submit_order(&self, order: i64, req: &Request, mut book: bool) -> Result<Submitted> {
        let refused = |e: Error| -> Result<Submitted> {
            self.record(Some(order), None, None, TxState::Refused, &e.to_string())?;
            Err(e)
        };
        let sim = match self.simulate(req).await {
            Ok(s) => s,
            Err(e) => return refused(e),
        };
        let gas_limit =
            req.gas_limit.unwrap_or(sim.gas * (100 + self.cfg.gas_margin_percent) / 100);
        let (max_fee, prio) = match req.fees {
            Some(f) => f,
            None => {
                let est = self.rpc.estimate_eip1559_fees().await.map_err(|e| self.rpc_err(e))?;
                (est.max_fee_per_gas, est.max_priority_fee_per_gas)
            }
        };
        let mut nonces = self.nonces.lock().await;
        for attempt in 1..=4 {
            let nonce = match nonces.next {
                Some(n) => n,
                None => {
                    let floor = nonces.live.last().map_or(0, |n| n + 1);
                    let n = self.pending_nonce().await?.max(floor);
                    nonces.next = Some(n);
                    n
                }
            };
            let fields = TxFields {
                chain_id: self.cfg.chain_id,
                nonce,
                to: req.to,
                value: req.value,
                gas_limit,
                max_fee_per_gas: max_fee,
                max_priority_fee_per_gas: prio,
                input: req.input.clone(),
            };
            let tx = match fields.build() {
                Ok(tx) => tx,
                Err(e) => return refused(e),
            };
            let signed = self.sign(Some(order), tx, sim.quote.as_ref(), book)?;
            halt_at("signed");
            let sub =
                Submitted { order: Some(order), nonce, versions: vec![signed], block: sim.block };
            let hash = sub.latest().hash;
            match self.broadcast(&sub.latest().raw).await {
                Sent::Accepted(note) | Sent::Unclear(note) => {
                    self.journal_tx(&sub, hash, TxState::Broadcast, &note)?;
                    nonces.next = Some(nonce + 1);
                    nonces.live.insert(nonce);
                    self.journal.set_next_nonce(self.address, nonce + 1)?;
                    return Ok(sub);
                }
                Sent::Refused { reason, resync } => {
                    // Refused outright by the node on every try: these bytes are nowhere.
                    self.journal_tx(&sub, hash, TxState::Dropped, &reason)?;
                    nonces.next = None;
                    if !resync || attempt == 4 {
                        return Err(self.rpc_err(format!(
                            "broadcast of nonce {nonce} refused: {reason} (nothing was sent)"
                        )));
                    }
                    tracing::warn!(nonce, %reason, "re-synchronising the nonce and signing again");
                    // The booked spend stands for the re-signed version: the refused one can
                    // never be mined.
                    book = false;
                }
            }
        }
        unreachable!("the loop returns on its last attempt")
    }

    /// Signs through the guard and journals the signed bytes before anything is sent.
    fn sign(
        &self,
        order: Option<i64>,
        tx: TxEip1559,
        quote: Option<&ChainQuote>,
        book: bool,
    ) -> Result<SignedTx> {
        let nonce = tx.nonce;
        let result = {
            let mut w = self.wallet.lock().unwrap_or_else(|p| p.into_inner());
            if book { w.sign(tx, quote, today()) } else { w.sign_replacement(tx, quote, today()) }
        };
        match result {
            Ok(Signed::Tx(signed, approval)) => {
                let detail = format!(
                    "{}; max fee {} wei, priority {} wei, gas {}",
                    approval.summary,
                    signed.tx.max_fee_per_gas,
                    signed.tx.max_priority_fee_per_gas,
                    signed.tx.gas_limit
                );
                let spends: &[(Address, U256)] = if book { &approval.spends } else { &[] };
                let entry = Entry {
                    order,
                    sender: self.address,
                    nonce: Some(nonce),
                    hash: Some(signed.hash),
                    state: TxState::Signed,
                    detail: &detail,
                    raw: Some(&signed.raw),
                };
                self.journal.record_with_spends(entry, today(), spends)?;
                Ok(*signed)
            }
            Ok(Signed::DryRun(approval)) => {
                let detail = format!("dry run: {}", approval.summary);
                self.record(order, Some(nonce), None, TxState::Refused, &detail)?;
                Err(Error::Refused {
                    rule: "dry_run",
                    detail: format!("approved but not signed: {}", approval.summary),
                })
            }
            Err(e) => {
                self.record(order, Some(nonce), None, TxState::Refused, &e.to_string())?;
                Err(e)
            }
        }
    }

    /// Submits and waits. When the chain shows the order's nonce used by another transaction
    /// and none of its versions mined, the order is signed again at a new nonce (at most
    /// twice; each time its spend is booked again).
    pub async fn send(&self, req: Request) -> Result<Outcome> {
        self.send_notify(req, |_| {}).await
    }

    /// As [`Executor::send`], calling `broadcast` with each transaction as soon as it is
    /// broadcast (to tell an operator its hash before the wait).
    pub async fn send_notify(
        &self,
        req: Request,
        broadcast: impl FnMut(&Submitted),
    ) -> Result<Outcome> {
        self.send_labelled(req, None, broadcast).await
    }

    /// As [`Executor::send_notify`], the order labelled as by [`Executor::submit_labelled`].
    pub async fn send_labelled(
        &self,
        req: Request,
        label: Option<&str>,
        mut broadcast: impl FnMut(&Submitted),
    ) -> Result<Outcome> {
        let mut sub = self.submit_labelled(req.clone(), label).await?;
        let mut resigned = 0;
        loop {
            broadcast(&sub);
            halt_at("broadcast");
            match self.wait(sub).await {
                Err(Error::Superseded { order: Some(order), nonce, .. }) if resigned < 2 => {
                    resigned += 1;
                    tracing::warn!(
                        order,
                        nonce,
                        "nonce used by another transaction; signing the order again"
                    );
                    sub = self.submit_order(order, &req, true).await?;
                }
                other => return other,
            }
        }
    }
}
