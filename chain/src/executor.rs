//! The transaction lifecycle: simulate, take a nonce, sign behind the guardrails, journal,
//! broadcast, track to N confirmations, bump when stuck, notice reorgs and drops.
//!
//! One [`Executor`] owns one address's nonces. Submissions from many tasks are serialised
//! from nonce to broadcast (the part that must be ordered; it takes a few milliseconds), so
//! concurrent sends get consecutive nonces with no gap and no duplicate. Any error that may
//! mean the node's view differs from ours re-synchronises the nonce from the pending count.
//!
//! Node answers are classified, not trusted blindly:
//! - "already known" means the node has this exact transaction: success;
//! - "nonce too low" may mean this very transaction was already mined (a lost response):
//!   the receipt decides, otherwise the nonce is re-synchronised and the order re-signed;
//! - "replacement transaction underpriced" means another transaction holds the nonce:
//!   re-synchronise and re-sign;
//! - HTTP 429 and transport failures are retried with the same signed bytes (a transaction is
//!   idempotent by hash), so a lost response never becomes a second order.

use std::future::IntoFuture;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use alloy::consensus::TxEip1559;
use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::{Provider, RootProvider};
use alloy::rpc::types::{BlockOverrides, TransactionReceipt, TransactionRequest};
use alloy::transports::{RpcError, TransportErrorKind};

use crate::guard::{GuardedSigner, Signed};
use crate::journal::{Journal, TxState};
use crate::tx::{SignedTx, TxFields};
use crate::{Error, Result};

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
    /// No bump raises `maxFeePerGas` above this (wei).
    pub max_fee_cap: u128,
    /// Give up waiting after this long.
    pub timeout: Duration,
    /// Retries of one broadcast on rate limits and transport errors.
    pub broadcast_retries: u32,
    /// Extra gas over the estimate, percent (for state that changes between the estimate and
    /// inclusion; timestamp-dependent costs are in the estimate, see [`Executor::simulate`]).
    pub gas_margin_percent: u64,
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
        }
    }
}

/// What to send: a call or transfer; the executor fills nonce, gas and fees.
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
    /// For swaps: the output the executor read from the chain, which bounds slippage.
    pub quote: Option<U256>,
}

/// A broadcast transaction being tracked.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// Its nonce.
    pub nonce: u64,
    /// Every hash signed for this nonce (the original and its fee bumps), newest last.
    pub hashes: Vec<B256>,
    /// The newest signed version.
    pub latest: SignedTx,
    quote: Option<U256>,
}

/// How a transaction ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The hash that was included.
    pub hash: B256,
    /// Its receipt.
    pub receipt: TransactionReceipt,
    /// Fee bumps it took.
    pub bumps: u32,
}

enum Fault {
    AlreadyKnown,
    NonceTooLow,
    Underpriced,
    Retry(String),
    Fatal(String),
}

fn classify(e: &RpcError<TransportErrorKind>) -> Fault {
    match e {
        RpcError::ErrorResp(p) => {
            let m = p.message.to_lowercase();
            if m.contains("already known")
                || m.contains("already imported")
                || m.contains("known transaction")
            {
                Fault::AlreadyKnown
            } else if m.contains("nonce too low") || m.contains("nonce is too low") {
                Fault::NonceTooLow
            } else if m.contains("underpriced") {
                Fault::Underpriced
            } else if p.code == 429 || m.contains("rate limit") {
                Fault::Retry(p.message.to_string())
            } else {
                Fault::Fatal(format!("{} (code {})", p.message, p.code))
            }
        }
        RpcError::Transport(kind) => match kind {
            TransportErrorKind::HttpError(h) if h.status == 429 || h.status >= 500 => {
                Fault::Retry(format!("HTTP {}", h.status))
            }
            TransportErrorKind::HttpError(h) => Fault::Fatal(format!("HTTP {}", h.status)),
            other => Fault::Retry(other.to_string()),
        },
        // A response that did not parse (cut off) may hide a success: retry the same bytes.
        RpcError::DeserError { .. } | RpcError::NullResp => Fault::Retry(e.to_string()),
        other => Fault::Fatal(other.to_string()),
    }
}

/// Whether a node's error answer says the call reverted (rather than, say, that a parameter
/// was not understood).
fn is_revert(e: &RpcError<TransportErrorKind>) -> bool {
    let RpcError::ErrorResp(p) = e else { return false };
    p.code == 3 || p.as_revert_data().is_some() || p.message.to_lowercase().contains("revert")
}

/// The decoded reason of a revert in an `eth_call`/`eth_estimateGas` error.
pub fn revert_reason(e: &RpcError<TransportErrorKind>) -> String {
    if let RpcError::ErrorResp(p) = e {
        if let Some(r) = p.as_decoded_error::<alloy::sol_types::Revert>() {
            return r.reason;
        }
        if let Some(data) = p.as_revert_data() {
            if data.is_empty() {
                return format!("{} (no reason given)", p.message);
            }
            return format!("{} (revert data {data})", p.message);
        }
        return p.message.to_string();
    }
    e.to_string()
}

fn today() -> i64 {
    chrono::Utc::now().timestamp().div_euclid(86_400)
}

/// Sends transactions of one address through the full lifecycle.
pub struct Executor {
    rpc: RootProvider,
    send_rpc: Option<RootProvider>,
    endpoint: String,
    wallet: Mutex<GuardedSigner>,
    address: Address,
    next_nonce: tokio::sync::Mutex<Option<u64>>,
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
fn redact(url: &str) -> String {
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

fn provider(url: &str) -> Result<RootProvider> {
    let parsed = url
        .parse()
        .map_err(|e| Error::Rpc { endpoint: redact(url), reason: format!("not a URL ({e})") })?;
    Ok(RootProvider::new_http(parsed))
}

impl Executor {
    /// An executor for `wallet` against the node at `rpc_url`; `private_relay` (optional)
    /// receives the broadcasts instead. Checks the node's chain id, restores the day's spend
    /// from the journal and rebroadcasts signed transactions the journal holds unsettled
    /// (after a crash: the same bytes, never a second order).
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
            next_nonce: tokio::sync::Mutex::new(None),
            journal,
            cfg,
        };
        for u in me.journal.unsettled(address)? {
            tracing::info!(nonce = u.nonce, hash = %u.hash, "resuming a journalled transaction");
            if let Err(e) = me.broadcast_raw(&u.raw, u.hash).await {
                tracing::warn!(error = %e.reason(), hash = %u.hash, "could not rebroadcast after restart");
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

    fn rpc_err(&self, e: impl std::fmt::Display) -> Error {
        Error::Rpc { endpoint: self.endpoint.clone(), reason: e.to_string() }
    }

    /// Simulates `req` against the node's current state: a revert is an error with its decoded
    /// reason, and nothing is signed or sent. Returns the gas estimate: the larger of the
    /// estimates in the latest block's context and in the next block's.
    ///
    /// Both are needed because gas can depend on the block timestamp. A Uniswap V2 pair
    /// writes its price accumulators only when the timestamp has moved since its last update,
    /// and a V3 pool its oracle observation. An estimate made against the latest block, in
    /// which the pool was last touched, leaves that write out; the swap then lands in a later
    /// block and runs out of gas. The first time for a pair, the write is a zero-to-nonzero
    /// store of two slots: 45,324 gas, +49% on a V2 swap, far over any percentage margin.
    /// Chains whose next block may keep the timestamp (anvil, some L2s) are covered by the
    /// latest-block estimate. A node that does not take block overrides (`eth_estimateGas`'s
    /// fourth parameter; geth, reth and anvil do) gets the latest-block estimate alone.
    pub async fn simulate(&self, req: &Request) -> Result<u64> {
        let call = TransactionRequest::default()
            .from(self.address)
            .to(req.to)
            .value(req.value)
            .input(req.input.clone().into());
        let reverted = |e: RpcError<TransportErrorKind>| match e {
            RpcError::ErrorResp(_) => {
                Error::Reverted { reason: format!("in simulation: {}", revert_reason(&e)) }
            }
            other => self.rpc_err(other),
        };
        let next_block = async {
            let latest = self
                .rpc
                .get_block_by_number(BlockNumberOrTag::Latest)
                .await
                .map_err(|e| self.rpc_err(e))?
                .ok_or_else(|| self.rpc_err("the node has no latest block"))?;
            let next = BlockOverrides {
                number: Some(U256::from(latest.header.number + 1)),
                time: Some(latest.header.timestamp + 1),
                ..BlockOverrides::default()
            };
            Ok::<_, Error>(self.rpc.estimate_gas(call.clone()).with_block_overrides(next).await)
        };
        let (simulated, at_latest, at_next) = tokio::join!(
            self.rpc.call(call.clone()).into_future(),
            self.rpc.estimate_gas(call.clone()).into_future(),
            next_block
        );
        simulated.map_err(reverted)?;
        let at_latest = at_latest.map_err(reverted)?;
        match at_next? {
            Ok(gas) => Ok(gas.max(at_latest)),
            // It would revert in the next block (a deadline that is about to pass, say): it
            // will not be mined any earlier than that.
            Err(e) if is_revert(&e) => Err(reverted(e)),
            Err(RpcError::ErrorResp(e)) => {
                tracing::debug!(error = %e, "no next-block gas estimate (block overrides refused)");
                Ok(at_latest)
            }
            Err(other) => Err(self.rpc_err(other)),
        }
    }

    async fn pending_nonce(&self) -> Result<u64> {
        self.rpc.get_transaction_count(self.address).pending().await.map_err(|e| self.rpc_err(e))
    }

    /// Simulates, signs (behind the guardrails) and broadcasts `req`. Does not wait for it.
    pub async fn submit(&self, req: Request) -> Result<Submitted> {
        let estimate = match self.simulate(&req).await {
            Ok(g) => g,
            Err(e) => {
                self.journal.record(
                    self.address,
                    None,
                    None,
                    TxState::Refused,
                    &e.to_string(),
                    None,
                )?;
                return Err(e);
            }
        };
        let gas_limit =
            req.gas_limit.unwrap_or(estimate * (100 + self.cfg.gas_margin_percent) / 100);
        let (max_fee, prio) = match req.fees {
            Some(f) => f,
            None => {
                let est = self.rpc.estimate_eip1559_fees().await.map_err(|e| self.rpc_err(e))?;
                (est.max_fee_per_gas, est.max_priority_fee_per_gas)
            }
        };
        let mut nonce_slot = self.next_nonce.lock().await;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let nonce = match *nonce_slot {
                Some(n) => n,
                None => {
                    let n = self.pending_nonce().await?;
                    *nonce_slot = Some(n);
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
            // The spend is booked once; a re-signed retry of the same order is not a new spend.
            let signed = self.sign(fields.build()?, req.quote, attempts == 1)?;
            match self.broadcast_raw(&signed.raw, signed.hash).await {
                Ok(()) => {
                    *nonce_slot = Some(nonce + 1);
                    self.journal.set_next_nonce(self.address, nonce + 1)?;
                    return Ok(Submitted {
                        nonce,
                        hashes: vec![signed.hash],
                        latest: signed,
                        quote: req.quote,
                    });
                }
                Err(Resync(reason)) if attempts < 4 => {
                    tracing::warn!(nonce, %reason, "re-synchronising the nonce");
                    self.journal.record(
                        self.address,
                        Some(nonce),
                        Some(signed.hash),
                        TxState::Dropped,
                        &reason,
                        None,
                    )?;
                    *nonce_slot = None;
                }
                Err(Resync(reason)) | Err(Failed(reason)) => {
                    *nonce_slot = None;
                    self.journal.record(
                        self.address,
                        Some(nonce),
                        Some(signed.hash),
                        TxState::Dropped,
                        &reason,
                        None,
                    )?;
                    return Err(
                        self.rpc_err(format!("broadcast of nonce {nonce} failed: {reason}"))
                    );
                }
            }
        }
    }

    /// Signs through the guard and journals the signed bytes before anything is sent.
    fn sign(&self, tx: TxEip1559, quote: Option<U256>, book: bool) -> Result<SignedTx> {
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
                self.journal.record(
                    self.address,
                    Some(nonce),
                    Some(signed.hash),
                    TxState::Signed,
                    &detail,
                    Some(&signed.raw),
                )?;
                if book {
                    for (asset, amount) in &approval.spends {
                        self.journal.add_spend(today(), *asset, *amount)?;
                    }
                }
                Ok(*signed)
            }
            Ok(Signed::DryRun(approval)) => {
                self.journal.record(
                    self.address,
                    Some(nonce),
                    None,
                    TxState::Refused,
                    &format!("dry run: {}", approval.summary),
                    None,
                )?;
                Err(Error::Refused {
                    rule: "dry_run",
                    detail: format!("approved but not signed: {}", approval.summary),
                })
            }
            Err(e) => {
                self.journal.record(
                    self.address,
                    Some(nonce),
                    None,
                    TxState::Refused,
                    &e.to_string(),
                    None,
                )?;
                Err(e)
            }
        }
    }

    /// Broadcasts signed bytes, retrying the same bytes on rate limits and transport errors.
    async fn broadcast_raw(
        &self,
        raw: &[u8],
        hash: B256,
    ) -> std::result::Result<(), BroadcastError> {
        let target = self.send_rpc.as_ref().unwrap_or(&self.rpc);
        let mut delay = Duration::from_millis(50);
        for attempt in 0..=self.cfg.broadcast_retries {
            let result = target.send_raw_transaction(raw).await;
            let fault = match &result {
                Ok(_) => None,
                Err(e) => Some(classify(e)),
            };
            match fault {
                None | Some(Fault::AlreadyKnown) => {
                    let note = if fault.is_some() { "the node already had it" } else { "" };
                    let _ = self.journal.record(
                        self.address,
                        None,
                        Some(hash),
                        TxState::Broadcast,
                        note,
                        None,
                    );
                    return Ok(());
                }
                Some(Fault::NonceTooLow) => {
                    // Mined already (our earlier attempt's response was lost)? The receipt says.
                    if let Ok(Some(_)) = self.rpc.get_transaction_receipt(hash).await {
                        let _ = self.journal.record(
                            self.address,
                            None,
                            Some(hash),
                            TxState::Broadcast,
                            "already mined",
                            None,
                        );
                        return Ok(());
                    }
                    return Err(Resync("nonce too low".into()));
                }
                Some(Fault::Underpriced) => {
                    return Err(Resync(
                        "replacement transaction underpriced: the nonce is taken".into(),
                    ));
                }
                Some(Fault::Retry(reason)) => {
                    tracing::debug!(attempt, %reason, %hash, "broadcast failed; retrying the same bytes");
                    if attempt == self.cfg.broadcast_retries {
                        return Err(Failed(format!("{reason} (after {attempt} retries)")));
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Some(Fault::Fatal(reason)) => return Err(Failed(reason)),
            }
        }
        Err(Failed("retries exhausted".into()))
    }

    /// Waits for `sub` to be included with the configured confirmations, bumping its fees when
    /// it is stuck, re-checking the inclusion block for reorgs, and rebroadcasting it if the
    /// node drops it.
    pub async fn wait(&self, mut sub: Submitted) -> Result<Outcome> {
        let started = Instant::now();
        let mut last_send = Instant::now();
        let mut bumps = 0;
        // The block a receipt was last seen in, until the transaction is final.
        let mut seen: Option<u64> = None;
        // Since when the nonce has been used with no receipt of ours to show for it.
        let mut orphaned_since: Option<Instant> = None;
        loop {
            if started.elapsed() > self.cfg.timeout {
                return Err(Error::Transaction(format!(
                    "nonce {} not confirmed within {:?} ({} fee bumps)",
                    sub.nonce, self.cfg.timeout, bumps
                )));
            }
            if let Some((hash, receipt)) = self.find_receipt(&sub.hashes).await? {
                orphaned_since = None;
                let included = receipt.block_number.unwrap_or_default();
                seen = Some(included);
                let head = self.rpc.get_block_number().await.map_err(|e| self.rpc_err(e))?;
                if head + 1 >= included + self.cfg.confirmations {
                    // Re-check that the block we were included in is still canonical.
                    let block = self
                        .rpc
                        .get_block_by_number(included.into())
                        .await
                        .map_err(|e| self.rpc_err(e))?;
                    if block.map(|b| b.header.hash) != receipt.block_hash {
                        self.journal.record(
                            self.address,
                            Some(sub.nonce),
                            Some(hash),
                            TxState::Reorged,
                            &format!("block {included} was reorganised away"),
                            None,
                        )?;
                        seen = None;
                        tokio::time::sleep(self.cfg.poll).await;
                        continue;
                    }
                    for h in sub.hashes.iter().filter(|h| **h != hash) {
                        self.journal.record(
                            self.address,
                            Some(sub.nonce),
                            Some(*h),
                            TxState::Replaced,
                            &format!("nonce {} was taken by {hash}", sub.nonce),
                            None,
                        )?;
                    }
                    let state =
                        if receipt.status() { TxState::Confirmed } else { TxState::Reverted };
                    self.journal.record(
                        self.address,
                        Some(sub.nonce),
                        Some(hash),
                        state,
                        &format!("block {included}, gas used {}", receipt.gas_used),
                        None,
                    )?;
                    if !receipt.status() {
                        // Fee bumps keep the gas limit, so every version has the latest's.
                        let limit = sub.latest.tx.gas_limit;
                        let used = receipt.gas_used;
                        // An inner call that runs out of gas takes what it was given, all but
                        // 1/64 of what was left; the outer frame then reverts with the rest.
                        let oog = if used >= limit - limit / 64 {
                            ", within 1/64 of it: most likely out of gas"
                        } else {
                            ""
                        };
                        return Err(Error::Reverted {
                            reason: format!(
                                "on chain in block {included} (transaction {hash}): gas used \
                                 {used} of its {limit} limit{oog}"
                            ),
                        });
                    }
                    return Ok(Outcome { hash, receipt, bumps });
                }
            } else if let Some(block) = seen.take() {
                // A receipt we saw is gone: its block was reorganised away. The same signed
                // bytes go back to the node (no new order); tracking goes on.
                self.journal.record(
                    self.address,
                    Some(sub.nonce),
                    Some(sub.latest.hash),
                    TxState::Reorged,
                    &format!(
                        "its receipt in block {block} vanished: reorganised away; rebroadcast"
                    ),
                    None,
                )?;
                if let Err(e) = self.broadcast_raw(&sub.latest.raw, sub.latest.hash).await {
                    tracing::warn!(error = %e.reason(), "rebroadcast after a reorg failed");
                }
                last_send = Instant::now();
            } else if self.nonce_consumed(sub.nonce).await? {
                // The nonce is used but by none of ours (after a last look for a receipt). A
                // node can count the nonce a moment before it serves the receipt of the block
                // that used it (seen with anvil under load: one of ours, declared dropped), so
                // the condition must last a few polls before the order is given up.
                let since = *orphaned_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= self.cfg.poll * 4
                    && self.find_receipt(&sub.hashes).await?.is_none()
                {
                    for h in &sub.hashes {
                        self.journal.record(
                            self.address,
                            Some(sub.nonce),
                            Some(*h),
                            TxState::Dropped,
                            "the nonce was used by another transaction",
                            None,
                        )?;
                    }
                    *self.next_nonce.lock().await = None;
                    return Err(Error::Transaction(format!(
                        "nonce {} was used by another transaction; this one was dropped",
                        sub.nonce
                    )));
                }
            } else if self.send_rpc.is_none()
                // A private relay's transactions are not in the public pool until mined; and a
                // transaction just sent gets a few polls to show up.
                && last_send.elapsed() >= self.cfg.poll * 4
                && self
                .rpc
                .get_transaction_by_hash(sub.latest.hash)
                .await
                .map_err(|e| self.rpc_err(e))?
                .is_none()
            {
                // Neither mined nor in the node's pool: dropped. Send the same bytes again.
                tracing::warn!(hash = %sub.latest.hash, "the node dropped the transaction; rebroadcasting");
                self.journal.record(
                    self.address,
                    Some(sub.nonce),
                    Some(sub.latest.hash),
                    TxState::Broadcast,
                    "the node had dropped it: rebroadcast",
                    None,
                )?;
                if let Err(e) = self.broadcast_raw(&sub.latest.raw, sub.latest.hash).await {
                    tracing::warn!(error = %e.reason(), "rebroadcast failed");
                }
                last_send = Instant::now();
            } else if last_send.elapsed() >= self.cfg.stuck_after {
                last_send = Instant::now();
                if bumps < self.cfg.max_bumps
                    && let Some(next) = self.bumped(&sub.latest.tx)
                {
                    bumps += 1;
                    let signed = self.sign(next, sub.quote, false)?;
                    tracing::info!(
                        nonce = sub.nonce,
                        bump = bumps,
                        max_fee = signed.tx.max_fee_per_gas,
                        "stuck; replacing with higher fees"
                    );
                    match self.broadcast_raw(&signed.raw, signed.hash).await {
                        Ok(()) => {
                            sub.hashes.push(signed.hash);
                            sub.latest = signed;
                        }
                        Err(e) => tracing::warn!(error = %e.reason(), "fee bump not accepted"),
                    }
                }
            }
            tokio::time::sleep(self.cfg.poll).await;
        }
    }

    /// Submits and waits.
    pub async fn send(&self, req: Request) -> Result<Outcome> {
        let sub = self.submit(req).await?;
        self.wait(sub).await
    }

    async fn find_receipt(&self, hashes: &[B256]) -> Result<Option<(B256, TransactionReceipt)>> {
        for h in hashes.iter().rev() {
            if let Some(r) =
                self.rpc.get_transaction_receipt(*h).await.map_err(|e| self.rpc_err(e))?
            {
                return Ok(Some((*h, r)));
            }
        }
        Ok(None)
    }

    async fn nonce_consumed(&self, nonce: u64) -> Result<bool> {
        let mined = self
            .rpc
            .get_transaction_count(self.address)
            .latest()
            .await
            .map_err(|e| self.rpc_err(e))?;
        Ok(mined > nonce)
    }

    /// The replacement fees: both raised by at least `bump_percent` (min 10%), capped.
    fn bumped(&self, tx: &TxEip1559) -> Option<TxEip1559> {
        let pct = u128::from(self.cfg.bump_percent.max(10));
        let up = |v: u128| (v * (100 + pct)).div_ceil(100).max(v + 1);
        let max_fee = up(tx.max_fee_per_gas);
        if max_fee > self.cfg.max_fee_cap {
            tracing::warn!(
                max_fee,
                cap = self.cfg.max_fee_cap,
                "fee bump would pass the cap; not bumping"
            );
            return None;
        }
        Some(TxEip1559 {
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: up(tx.max_priority_fee_per_gas),
            ..tx.clone()
        })
    }
}

enum BroadcastError {
    /// The nonce is not what we thought: re-synchronise and re-sign.
    Resync(String),
    /// Failed for good.
    Failed(String),
}
use BroadcastError::{Failed, Resync};

impl BroadcastError {
    fn reason(&self) -> &str {
        match self {
            Resync(r) | Failed(r) => r,
        }
    }
}
