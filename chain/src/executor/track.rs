//! Following a broadcast transaction to its end: a state machine polled at the configured
//! interval.
//!
//! ```text
//!            receipt seen                      enough confirmations, block canonical
//! Pending ─────────────────────▶ Included ─────────────────────────────────▶ final
//!   ▲ │ nonce used, no receipt       │ receipt gone / block replaced
//!   │ ▼                              ▼
//!   │ NonceUsed ──────────────▶ Pending (rebroadcast the same bytes)
//!   │   │ after `orphan_polls` polls with no version of ours known to the node, the block
//!   │   │ that used the nonce shows a transaction that is not ours
//!   │   ▼
//!   │ superseded: the order was not executed
//!   └─ in Pending: dropped from the pool → rebroadcast; stuck → fee bump (new version)
//! ```
//!
//! What ends tracking: a final receipt (confirmed or reverted), proof that another
//! transaction used the nonce, or the timeout, which is [`Error::Unsettled`]: the outcome is
//! not known, and the caller must not send the order again. A failed read from the node ends
//! nothing: the poll is retried with a doubling wait up to `max_backoff`.

use std::time::Instant;

use alloy::consensus::TxEip1559;
use alloy::primitives::B256;
use alloy::providers::Provider;
use alloy::rpc::types::TransactionReceipt;

use super::broadcast::Sent;
use super::{Executor, Outcome, Request, Submitted};
use crate::hooks::halt_at;
use crate::journal::TxState;
use crate::{Error, Result};

/// Where a tracked transaction stands.
#[derive(Debug, Clone)]
enum State {
    /// Broadcast; no receipt of any version seen.
    Pending,
    /// A version's receipt was seen in `block`; waiting for confirmations.
    Included { hash: B256, block: u64 },
    /// The nonce shows as used on chain, with no receipt of ours, for `polls` polls.
    NonceUsed { polls: u32 },
}

/// What one poll decided.
enum Next {
    Stay,
    Go(State),
    Done(Box<Result<Outcome>>),
}

struct Tracker<'a> {
    exec: &'a Executor,
    sub: Submitted,
    state: State,
    bumps: u32,
    /// False once a bump was impossible or refused: tracking goes on without bumps.
    bumping: bool,
    last_send: Instant,
}

impl Executor {
    /// Waits for `sub` to be final with the configured confirmations, bumping its fees when it
    /// is stuck, re-checking the inclusion block for reorgs, and rebroadcasting it if the node
    /// drops it. Ends in the outcome, in [`Error::Reverted`] (on chain), in
    /// [`Error::Superseded`] (another transaction used the nonce), or, after the timeout, in
    /// [`Error::Unsettled`].
    pub async fn wait(&self, sub: Submitted) -> Result<Outcome> {
        let nonce = sub.nonce;
        let tracker = Tracker {
            exec: self,
            sub,
            state: State::Pending,
            bumps: 0,
            bumping: true,
            last_send: Instant::now(),
        };
        let result = tracker.run().await;
        if !matches!(result, Err(Error::Unsettled { .. })) {
            self.nonces.lock().await.live.remove(&nonce);
        }
        result
    }
}

impl Tracker<'_> {
    async fn run(mut self) -> Result<Outcome> {
        let cfg = &self.exec.cfg;
        let started = Instant::now();
        let mut failures = 0u32;
        let mut last_error = None::<String>;
        loop {
            if started.elapsed() > cfg.timeout {
                let reason = match &last_error {
                    Some(e) => format!("not final within {:?} (last error: {e})", cfg.timeout),
                    None => format!("not final within {:?} ({:?})", cfg.timeout, self.state),
                };
                return Err(Error::Unsettled {
                    order: self.sub.order,
                    nonce: self.sub.nonce,
                    hash: self.sub.latest().hash,
                    reason,
                });
            }
            let wait = match self.poll().await {
                Ok(Next::Done(result)) => return *result,
                Ok(next) => {
                    if let Next::Go(state) = next {
                        tracing::debug!(nonce = self.sub.nonce, ?state, "tracking");
                        self.state = state;
                    }
                    failures = 0;
                    cfg.poll
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(nonce = self.sub.nonce, failures, error = %e, "reading the chain failed; retrying");
                    last_error = Some(e.to_string());
                    cfg.poll
                        .saturating_mul(1 << failures.min(16))
                        .min(cfg.max_backoff.max(cfg.poll))
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    async fn poll(&mut self) -> Result<Next> {
        match self.state.clone() {
            State::Pending => self.pending().await,
            State::Included { hash, block } => self.included(hash, block).await,
            State::NonceUsed { polls } => self.nonce_used(polls).await,
        }
    }

    fn journal(&self, hash: B256, state: TxState, detail: &str) -> Result<()> {
        self.exec.journal_tx(&self.sub, hash, state, detail)
    }

    async fn pending(&mut self) -> Result<Next> {
        let exec = self.exec;
        if let Some((hash, receipt)) = self.find_receipt().await? {
            halt_at("receipt");
            return Ok(Next::Go(State::Included { hash, block: block_of(&receipt) }));
        }
        if exec.nonce_used(self.sub.nonce).await? {
            return Ok(Next::Go(State::NonceUsed { polls: 0 }));
        }
        // A private relay's transactions are not in the public pool until mined; and a
        // transaction just sent gets a few polls to show up.
        if exec.send_rpc.is_none()
            && self.last_send.elapsed() >= exec.cfg.poll * 4
            && exec
                .rpc
                .get_transaction_by_hash(self.sub.latest().hash)
                .await
                .map_err(|e| exec.rpc_err(e))?
                .is_none()
        {
            tracing::warn!(hash = %self.sub.latest().hash, "the node dropped the transaction; rebroadcasting");
            let latest = self.sub.latest().clone();
            self.resend(&latest, "the node had dropped it: rebroadcast").await?;
            return Ok(Next::Stay);
        }
        if self.bumping && self.last_send.elapsed() >= exec.cfg.stuck_after {
            self.bump().await?;
        }
        Ok(Next::Stay)
    }

    async fn included(&mut self, hash: B256, block: u64) -> Result<Next> {
        let exec = self.exec;
        let Some((now_hash, receipt)) = self.find_receipt().await? else {
            // A receipt we saw is gone: its block was reorganised away. The same signed bytes
            // go back to the node (no new order); tracking goes on.
            let version = self.sub.versions.iter().find(|v| v.hash == hash).cloned();
            let version = version.unwrap_or_else(|| self.sub.latest().clone());
            self.journal(
                hash,
                TxState::Reorged,
                &format!("its receipt in block {block} vanished: reorganised away; rebroadcast"),
            )?;
            self.resend(&version, "rebroadcast after a reorg").await?;
            return Ok(Next::Go(State::Pending));
        };
        if now_hash != hash || block_of(&receipt) != block {
            return Ok(Next::Go(State::Included { hash: now_hash, block: block_of(&receipt) }));
        }
        let head = exec.rpc.get_block_number().await.map_err(|e| exec.rpc_err(e))?;
        if head + 1 < block + exec.cfg.confirmations {
            return Ok(Next::Stay);
        }
        // Re-check that the block we were included in is still canonical.
        let canonical = exec
            .rpc
            .get_block_by_number(block.into())
            .await
            .map_err(|e| exec.rpc_err(e))?
            .map(|b| b.header.hash);
        if canonical != receipt.block_hash {
            self.journal(hash, TxState::Reorged, &format!("block {block} was reorganised away"))?;
            return Ok(Next::Go(State::Pending));
        }
        Ok(Next::Done(Box::new(self.settle(hash, receipt))))
    }

    async fn nonce_used(&mut self, polls: u32) -> Result<Next> {
        let exec = self.exec;
        if let Some((hash, receipt)) = self.find_receipt().await? {
            halt_at("receipt");
            return Ok(Next::Go(State::Included { hash, block: block_of(&receipt) }));
        }
        // A node can count the nonce, or serve the transaction, a moment before it serves the
        // receipt (seen with anvil under load, and with load-balanced providers whose backends
        // lag each other): a version of ours that the node knows in a block is ours, mined.
        for h in self.sub.hashes().iter().rev() {
            let tx = exec.rpc.get_transaction_by_hash(*h).await.map_err(|e| exec.rpc_err(e))?;
            if tx.is_some_and(|t| t.block_number.is_some()) {
                return Ok(Next::Go(State::NonceUsed { polls: 0 }));
            }
        }
        if polls + 1 < exec.cfg.orphan_polls {
            return Ok(Next::Go(State::NonceUsed { polls: polls + 1 }));
        }
        // The proof: the transaction the chain shows with this nonce is not one of ours.
        let taker = match exec.nonce_taker(self.sub.nonce, self.sub.block).await? {
            Some(h) if !self.sub.hashes().contains(&h) => h,
            // Ours (its receipt lags), or the chain cannot say yet: keep looking.
            _ => return Ok(Next::Go(State::NonceUsed { polls: 0 })),
        };
        let why = format!("the nonce was used by another transaction, {taker}");
        for h in self.sub.hashes() {
            self.journal(h, TxState::Dropped, &why)?;
        }
        exec.nonces.lock().await.next = None;
        Ok(Next::Done(Box::new(Err(Error::Superseded {
            order: self.sub.order,
            nonce: self.sub.nonce,
            hash: self.sub.latest().hash,
        }))))
    }

    /// Journals the final state of every version and returns the outcome.
    fn settle(&self, hash: B256, receipt: TransactionReceipt) -> Result<Outcome> {
        let nonce = self.sub.nonce;
        let block = block_of(&receipt);
        for h in self.sub.hashes().into_iter().filter(|h| *h != hash) {
            self.journal(h, TxState::Replaced, &format!("nonce {nonce} was taken by {hash}"))?;
        }
        let state = if receipt.status() { TxState::Confirmed } else { TxState::Reverted };
        self.journal(hash, state, &format!("block {block}, gas used {}", receipt.gas_used))?;
        if !receipt.status() {
            // Fee bumps keep the gas limit, so every version has the latest's.
            let limit = self.sub.latest().tx.gas_limit;
            let used = receipt.gas_used;
            // An inner call that runs out of gas takes what it was given, all but 1/64 of
            // what was left; the outer frame then reverts with the rest.
            let oog = if used >= limit - limit / 64 {
                ", within 1/64 of it: most likely out of gas"
            } else {
                ""
            };
            return Err(Error::Reverted {
                reason: format!(
                    "on chain in block {block} (transaction {hash}): gas used {used} of its \
                     {limit} limit{oog}"
                ),
            });
        }
        Ok(Outcome { order: self.sub.order, hash, receipt, bumps: self.bumps })
    }

    async fn find_receipt(&self) -> Result<Option<(B256, TransactionReceipt)>> {
        let exec = self.exec;
        for h in self.sub.hashes().iter().rev() {
            if let Some(r) =
                exec.rpc.get_transaction_receipt(*h).await.map_err(|e| exec.rpc_err(e))?
            {
                return Ok(Some((*h, r)));
            }
        }
        Ok(None)
    }

    /// Sends a version's bytes again and journals it.
    async fn resend(&mut self, version: &crate::tx::SignedTx, why: &str) -> Result<()> {
        self.last_send = Instant::now();
        match self.exec.broadcast(&version.raw).await {
            Sent::Accepted(note) | Sent::Unclear(note) => {
                self.journal(version.hash, TxState::Broadcast, &format!("{why} {note}"))
            }
            Sent::Refused { reason, .. } => {
                tracing::warn!(%reason, hash = %version.hash, "{why}: refused");
                Ok(())
            }
        }
    }

    /// Replaces the stuck transaction with one paying more, within both fee caps and through
    /// the guard; a bump that cannot be made or is refused ends bumping, not tracking.
    async fn bump(&mut self) -> Result<()> {
        let exec = self.exec;
        self.last_send = Instant::now();
        if self.bumps >= exec.cfg.max_bumps {
            self.bumping = false;
            return Ok(());
        }
        let Some(next) = self.bumped(&self.sub.latest().tx) else {
            self.bumping = false;
            return Ok(());
        };
        // A swap's bound is checked again against the chain's quote now.
        let req = Request {
            to: self.sub.latest().tx.to.to().copied().unwrap_or_default(),
            value: next.value,
            input: next.input.clone(),
            ..Request::default()
        };
        let head = exec.rpc.get_block_number().await.map_err(|e| exec.rpc_err(e))?;
        let quote = exec.quote(&req, head).await?;
        let signed = match exec.sign(self.sub.order, next, quote.as_ref(), false) {
            Ok(s) => s,
            Err(e @ Error::Refused { .. }) => {
                tracing::warn!(nonce = self.sub.nonce, error = %e, "fee bump refused; tracking without bumps");
                self.bumping = false;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        tracing::info!(
            nonce = self.sub.nonce,
            bump = self.bumps + 1,
            max_fee = signed.tx.max_fee_per_gas,
            "stuck; replacing with higher fees"
        );
        match exec.broadcast(&signed.raw).await {
            Sent::Accepted(note) | Sent::Unclear(note) => {
                self.bumps += 1;
                self.journal(
                    signed.hash,
                    TxState::Broadcast,
                    &format!("fee bump {} {note}", self.bumps),
                )?;
                self.sub.versions.push(signed);
            }
            Sent::Refused { reason, .. } => {
                tracing::warn!(%reason, "fee bump not accepted");
                self.journal(
                    signed.hash,
                    TxState::Dropped,
                    &format!("fee bump not accepted: {reason}"),
                )?;
            }
        }
        Ok(())
    }

    /// The replacement fees: both raised by at least `bump_percent` (min 10%, as nodes require
    /// of a replacement), or `None` when that passes the lifecycle's cap or the guard's.
    fn bumped(&self, tx: &TxEip1559) -> Option<TxEip1559> {
        let exec = self.exec;
        let (guard_fee, guard_prio) = {
            let w = exec.wallet.lock().unwrap_or_else(|p| p.into_inner());
            (w.guard().max_fee_per_gas(), w.guard().max_priority_fee())
        };
        let fee_cap = guard_fee.map_or(exec.cfg.max_fee_cap, |g| g.min(exec.cfg.max_fee_cap));
        let pct = u128::from(exec.cfg.bump_percent.max(10));
        let up = |v: u128| (v * (100 + pct)).div_ceil(100).max(v + 1);
        let (max_fee, prio) = (up(tx.max_fee_per_gas), up(tx.max_priority_fee_per_gas));
        if max_fee > fee_cap || guard_prio.is_some_and(|cap| prio > cap) {
            tracing::warn!(
                max_fee,
                fee_cap,
                prio,
                ?guard_prio,
                "a fee bump would pass a cap; not bumping"
            );
            return None;
        }
        Some(TxEip1559 { max_fee_per_gas: max_fee, max_priority_fee_per_gas: prio, ..tx.clone() })
    }
}

impl Executor {
    /// The hash of the sender's transaction that used `nonce`, read from the block in which
    /// the sender's count passed it (bisected from block `from`), or `None` when the chain
    /// cannot say: a node without that block's state, a block not served yet, a nonce used
    /// before `from`.
    async fn nonce_taker(&self, nonce: u64, from: u64) -> Result<Option<B256>> {
        use alloy::network::TransactionResponse;
        let head = self.rpc.get_block_number().await.map_err(|e| self.rpc_err(e))?;
        let from = if from == 0 { head.saturating_sub(super::RESUME_LOOKBACK) } else { from };
        let count = |block: u64| async move {
            self.rpc.get_transaction_count(self.address).number(block).await
        };
        let (mut lo, mut hi) = (from.min(head), head);
        match (count(lo).await, count(hi).await) {
            (Ok(a), Ok(b)) if a <= nonce && b > nonce => {}
            (a, b) => {
                tracing::debug!(nonce, lo, hi, ?a, ?b, "cannot place the nonce's use in a block");
                return Ok(None);
            }
        }
        // count(lo) <= nonce < count(hi): the first block past the nonce is in (lo, hi].
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            match count(mid).await {
                Ok(c) if c > nonce => hi = mid,
                Ok(_) => lo = mid,
                Err(e) => {
                    tracing::debug!(nonce, mid, error = %e, "no state at that block");
                    return Ok(None);
                }
            }
        }
        let Ok(Some(block)) = self.rpc.get_block_by_number(hi.into()).full().await else {
            return Ok(None);
        };
        Ok(block
            .transactions
            .txns()
            .find(|t| t.from() == self.address && alloy::consensus::Transaction::nonce(*t) == nonce)
            .map(|t| t.tx_hash()))
    }

    /// Whether the chain's latest state counts `nonce` as used.
    async fn nonce_used(&self, nonce: u64) -> Result<bool> {
        let mined = self
            .rpc
            .get_transaction_count(self.address)
            .latest()
            .await
            .map_err(|e| self.rpc_err(e))?;
        Ok(mined > nonce)
    }
}

fn block_of(r: &TransactionReceipt) -> u64 {
    r.block_number.unwrap_or_default()
}
