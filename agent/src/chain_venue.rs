//! On-chain execution behind the engine's execution trait: a strategy's order on a DEX
//! instrument (a `[[dex]]` pool) becomes a guarded swap by `kairos-chain`'s executor, and its
//! lifecycle comes back as order events: accepted when the transaction is broadcast, filled
//! (with what the pool gave, read from the receipt's `Transfer` logs) when it is confirmed,
//! rejected when the guardrails, the simulation or the chain refuse it.
//!
//! [`ChainVenue`] runs on the engine's thread: it sizes the order, journals it in the agent's
//! journal (venue `uniswap`, client id from the journal's counter) and hands it to
//! [`run_chain`], the task that quotes it from the pool's reserves, approves the router for
//! exactly the amount if needed, and sends `swapExactTokensForTokens` with the slippage bound
//! and deadline through the executor, which journals every transaction in the wallet's journal
//! before it is broadcast and holds the wallet's guardrails (contracts, tokens, caps, slippage
//! against its own quote). One swap at a time: the wallet has one nonce sequence.
//!
//! A swap is a market order: a sell spends exactly its quantity of the base token; a buy spends
//! its quantity times the reference price (the mid, else the last price) of the quote token,
//! and its fill is what the pool gave. Limit and stop orders are refused. Uniswap V2 pools only.
//! A transaction whose outcome stays unknown is tracked until it ends; an agent stopped in the
//! meantime refuses to start until `kairos tx status --pending` has settled it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use kairos_chain::abi::{IERC20, IUniswapV2Pair};
use kairos_chain::alloy::primitives::{Address, U256};
use kairos_chain::alloy::providers::Provider;
use kairos_chain::alloy::sol_types::{SolCall, SolEvent};
use kairos_chain::dex;
use kairos_chain::executor::{Executor, Request};
use kairos_engine::{Execution, Reports};
use kairos_strategies::{
    Command, Context, Fill, Fixed, InstrumentId, Order, OrderEvent, OrderId, OrderKind,
    OrderStatus, OrderUpdate, RejectRule, Rejection, Side,
};
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::journal::{Journal, JournalFill};
use crate::live::VenueReport;
use crate::now_ms;

/// The journal's name for swaps.
pub const UNISWAP: &str = "uniswap";

/// `[chain]`: on-chain execution of the `[[dex]]` instruments by `kairos run`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChainSpec {
    /// The wallet file (`examples/wallet.toml`: node, key, journal, guardrails), relative to
    /// the config file.
    pub wallet: PathBuf,
    /// File whose first line is the key's password [default: the environment's
    /// `KAIROS_KEYSTORE_PASSWORD`].
    pub password_file: Option<PathBuf>,
    /// Accept at most this much less than the pool's quote, basis points [default: 50].
    #[serde(default = "default_slippage")]
    pub slippage_bps: u32,
    /// A swap is void after this many seconds [default: 120].
    #[serde(default = "default_deadline")]
    pub deadline_s: u64,
    /// The Uniswap V2 `Router02` to swap through, by `[[dex]]` symbol.
    pub routers: BTreeMap<String, String>,
}

fn default_slippage() -> u32 {
    50
}

fn default_deadline() -> u64 {
    120
}

impl ChainSpec {
    /// Checks the section against the `[[dex]]` pools.
    pub fn check(&self, dex: &[crate::paper::DexSpec]) -> anyhow::Result<()> {
        if self.slippage_bps == 0 || self.slippage_bps > 10_000 {
            anyhow::bail!("[chain] slippage_bps = {} is not within 1..=10000", self.slippage_bps);
        }
        if self.deadline_s == 0 {
            anyhow::bail!("[chain] deadline_s = 0: give the seconds a swap stays valid");
        }
        if self.routers.is_empty() {
            anyhow::bail!(
                "[chain] routers is empty: name the router of each [[dex]] pool to trade"
            );
        }
        for (symbol, router) in &self.routers {
            let Some(d) = dex.iter().find(|d| &d.symbol == symbol) else {
                anyhow::bail!("[chain.routers] {symbol}: no [[dex]] pool has this symbol");
            };
            if d.kind != "v2" {
                anyhow::bail!(
                    "[chain.routers] {symbol}: the pool is Uniswap {}; the agent swaps on V2 pools (use `kairos swap` for V3)",
                    d.kind
                );
            }
            router
                .parse::<Address>()
                .map_err(|e| anyhow::anyhow!("[chain.routers] {symbol}: router `{router}`: {e}"))?;
        }
        Ok(())
    }
}

/// A pool the agent swaps on, as read from the chain at start.
#[derive(Debug, Clone)]
pub struct PoolRoute {
    /// The instrument's symbol.
    pub symbol: String,
    /// The pair contract.
    pub pair: Address,
    /// The router.
    pub router: Address,
    /// The base token and its decimals.
    pub base: (Address, u8),
    /// The quote token and its decimals.
    pub quote: (Address, u8),
    /// Whether the base token is the pair's token0 (its reserves come in that order).
    pub base_is_token0: bool,
}

/// What the engine's side asks the chain task for.
#[derive(Debug, Clone)]
pub struct SwapRequest {
    /// The strategy's order.
    pub order: OrderId,
    /// Its client id in the agent's journal.
    pub client_id: String,
    /// The pool's symbol.
    pub symbol: String,
    /// Buy or sell the base token.
    pub side: Side,
    /// Base quantity.
    pub qty: Fixed,
    /// The price a buy's spend is sized on (quote per base).
    pub reference: f64,
}

#[derive(Debug)]
struct ChainOrder {
    client_id: String,
    instrument: InstrumentId,
    side: Side,
}

/// The engine's execution client for swaps (see the module comment).
pub struct ChainVenue {
    journal: Journal,
    prefix: String,
    routed: Vec<bool>,
    tx: Option<mpsc::UnboundedSender<SwapRequest>>,
    orders: BTreeMap<OrderId, ChainOrder>,
    rejected: u64,
}

impl std::fmt::Debug for ChainVenue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainVenue").field("orders", &self.orders.len()).finish()
    }
}

impl ChainVenue {
    /// A client journalling into `journal` with client ids `{prefix}-{n}`; `routed[k]` says
    /// whether instrument `k` is swapped on chain.
    pub fn new(
        journal: Journal,
        prefix: &str,
        routed: Vec<bool>,
        tx: mpsc::UnboundedSender<SwapRequest>,
    ) -> Self {
        Self {
            journal,
            prefix: prefix.into(),
            routed,
            tx: Some(tx),
            orders: BTreeMap::new(),
            rejected: 0,
        }
    }

    /// Whether `instrument`'s orders go on chain.
    pub fn routes(&self, instrument: InstrumentId) -> bool {
        self.routed.get(instrument.index()).copied().unwrap_or(false)
    }

    /// Whether `order` is one of this client's.
    pub fn knows(&self, order: OrderId) -> bool {
        self.orders.contains_key(&order)
    }

    /// The agent's journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Refuses new orders from now on; the task ends after what it was asked for.
    pub fn close(&mut self) {
        self.tx = None;
    }

    fn reject(&mut self, ctx: &mut Context, order: &Order, reason: String, out: &mut Reports) {
        self.rejected += 1;
        tracing::info!(order = order.id.0, "swap refused before sending: {reason}");
        let update = OrderUpdate::Rejected(Rejection::new(RejectRule::Venue, reason));
        let e = OrderEvent {
            order: order.id,
            instrument: order.request.instrument,
            ts: ctx.now(),
            update,
        };
        out.order(ctx, e);
    }

    fn submit(&mut self, ctx: &mut Context, order: &Order, out: &mut Reports) {
        let r = &order.request;
        if self.tx.is_none() {
            return self.reject(ctx, order, "not sent: the agent is stopping".into(), out);
        }
        if !matches!(r.kind, OrderKind::Market) {
            return self.reject(
                ctx,
                order,
                "a swap is a market order (bounded by [chain] slippage_bps): send a market order"
                    .into(),
                out,
            );
        }
        let inst = ctx.instrument(r.instrument).clone();
        // A market order: sized on the mid, else the last mark.
        let Some(reference) = crate::live::reference_price(ctx, r) else {
            return self.reject(ctx, order, format!("no price for {} yet", inst.symbol), out);
        };
        let qty = crate::live::requested_units(ctx, r, reference);
        let Some(qty) = inst.venue_quantity(qty) else {
            let why = format!("the size rounds to zero lots of {}", inst.lot_size);
            return self.reject(ctx, order, why, out);
        };
        let side = if r.side == Side::Buy { "BUY" } else { "SELL" };
        let client_id = match self.journal.intend(
            &self.prefix,
            UNISWAP,
            &inst.symbol,
            side,
            "MARKET",
            &qty.to_string(),
            None,
            now_ms(),
        ) {
            Ok(id) => id,
            Err(e) => return self.reject(ctx, order, format!("not sent: {e}"), out),
        };
        self.orders.insert(
            order.id,
            ChainOrder { client_id: client_id.clone(), instrument: r.instrument, side: r.side },
        );
        let req = SwapRequest {
            order: order.id,
            client_id,
            symbol: inst.symbol.clone(),
            side: r.side,
            qty,
            reference,
        };
        if self.tx.as_ref().is_none_or(|tx| tx.send(req).is_err()) {
            tracing::error!("the chain task is gone: the swap stays an intent for the next start");
        }
    }

    /// Journals a report of the chain task and books it for the strategy (through
    /// `Engine::from_venue`).
    pub fn apply(&mut self, ctx: &mut Context, report: VenueReport, out: &mut Reports) {
        let order = report.order();
        let Some(o) = self.orders.get(&order) else {
            tracing::warn!(order = order.0, "a swap report for an unknown order: {report:?}");
            return;
        };
        let (cid, instrument, side) = (o.client_id.clone(), o.instrument, o.side);
        let now = ctx.now();
        let journal_err = |e: crate::journal::JournalError| tracing::error!("journal: {e}");
        match report {
            VenueReport::Accepted { venue_order_id, .. } => {
                let _ = self
                    .journal
                    .update(&cid, Some(venue_order_id), "BROADCAST", "0", false)
                    .map_err(journal_err);
                out.accepted(ctx, order, instrument, now);
            }
            VenueReport::Fill { trade_id, time_ms, qty, price, commission, .. } => {
                let fill = JournalFill {
                    venue: UNISWAP.into(),
                    symbol: ctx.instrument(instrument).symbol.clone(),
                    trade_id,
                    venue_order_id: trade_id,
                    client_id: Some(cid.clone()),
                    side: if side == Side::Buy { "BUY" } else { "SELL" }.into(),
                    qty: qty.to_string(),
                    price: price.to_string(),
                    commission: commission.to_string(),
                    time_ms,
                };
                let _ = self.journal.record_fill(&fill).map_err(journal_err);
                let _ = self
                    .journal
                    .update(&cid, Some(trade_id), "FILLED", &qty.to_string(), true)
                    .map_err(journal_err);
                let f = Fill {
                    order,
                    instrument,
                    ts: now,
                    side,
                    quantity: qty.to_f64(),
                    price: price.to_f64(),
                    commission: commission.to_f64(),
                };
                out.fill(ctx, f);
                out.finished(ctx, order, instrument, now, OrderStatus::Filled, || {
                    OrderUpdate::Filled
                });
                self.orders.remove(&order);
            }
            VenueReport::Rejected { reason, .. } => {
                self.rejected += 1;
                let _ = self.journal.update(&cid, None, "REJECTED", "0", true).map_err(journal_err);
                let update = OrderUpdate::Rejected(Rejection::new(RejectRule::Venue, reason));
                out.order(ctx, OrderEvent { order, instrument, ts: now, update });
                self.orders.remove(&order);
            }
            VenueReport::Done { .. } | VenueReport::CancelRejected { .. } => {}
        }
    }
}

impl Execution for ChainVenue {
    fn command(&mut self, ctx: &mut Context, command: &Command, out: &mut Reports) {
        match command {
            Command::Submit(order) => self.submit(ctx, order, out),
            Command::Cancel { order, instrument } => {
                let update = OrderUpdate::CancelRejected(Rejection::new(
                    RejectRule::NotWorking,
                    "a swap cannot be cancelled once sent",
                ));
                crate::live::tell(ctx, out, *order, *instrument, update);
            }
            Command::Modify { order, instrument, .. } => {
                let update = OrderUpdate::ModifyRejected(Rejection::new(
                    RejectRule::BadModification,
                    "a swap cannot be modified",
                ));
                crate::live::tell(ctx, out, *order, *instrument, update);
            }
        }
    }

    fn has_working(&self) -> bool {
        !self.orders.is_empty()
    }

    fn working(&self) -> usize {
        self.orders.len()
    }

    fn rejected(&self) -> u64 {
        self.rejected
    }
}

/// Reads each routed pool's tokens and their decimals from the chain.
pub async fn routes(
    exec: &Executor,
    spec: &ChainSpec,
    dex: &[crate::paper::DexSpec],
) -> anyhow::Result<Vec<PoolRoute>> {
    let p = exec.provider();
    let mut out = Vec::new();
    for (symbol, router) in &spec.routers {
        let d = dex.iter().find(|d| &d.symbol == symbol).expect("checked with the config");
        let pair: Address = d.address.parse()?;
        let pool = IUniswapV2Pair::new(pair, p);
        let t0 =
            pool.token0().call().await.map_err(|e| anyhow::anyhow!("{symbol}: token0(): {e}"))?;
        let t1 =
            pool.token1().call().await.map_err(|e| anyhow::anyhow!("{symbol}: token1(): {e}"))?;
        let (base, quote) = if d.base_is_token0 { (t0, t1) } else { (t1, t0) };
        let dec = |t: Address| async move {
            IERC20::new(t, p)
                .decimals()
                .call()
                .await
                .map_err(|e| anyhow::anyhow!("{symbol}: decimals() of {t}: {e}"))
        };
        out.push(PoolRoute {
            symbol: symbol.clone(),
            pair,
            router: router.parse()?,
            base: (base, dec(base).await?),
            quote: (quote, dec(quote).await?),
            base_is_token0: d.base_is_token0,
        });
    }
    Ok(out)
}

fn units(v: f64, decimals: u8) -> Option<U256> {
    let text = format!("{v:.*}", decimals as usize);
    kairos_chain::tx::parse_amount("amount", &text, decimals).ok().filter(|a| !a.is_zero())
}

fn whole(v: U256, decimals: u8) -> f64 {
    kairos_chain::alloy::primitives::utils::format_units(v, decimals)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Why a swap did not fill.
enum NoFill {
    /// Refused or failed: nothing of it is on chain.
    Refused(String),
    /// Broadcast and still not settled: the order stays working (never sent again), and the
    /// next start refuses to trade until it is settled.
    Unknown(String),
}

/// What the wallet `me` paid of `sell` and got of `buy` in a receipt, from its ERC-20
/// `Transfer` logs, in whole tokens.
fn amounts(
    receipt: &kairos_chain::alloy::rpc::types::TransactionReceipt,
    me: Address,
    (sell, sell_dec): (Address, u8),
    (buy, buy_dec): (Address, u8),
) -> (f64, f64) {
    let (mut paid, mut got) = (U256::ZERO, U256::ZERO);
    for l in receipt.inner.logs() {
        let Ok(t) = IERC20::Transfer::decode_log(&l.inner) else { continue };
        if l.address() == sell && t.from == me {
            paid += t.value;
        }
        if l.address() == buy && t.to == me {
            got += t.value;
        }
    }
    (whole(paid, sell_dec), whole(got, buy_dec))
}

/// The fill of a confirmed swap: base quantity and price.
fn fill_of(side: Side, paid: f64, got: f64) -> Option<(Fixed, Fixed)> {
    let (qty, price) = match side {
        Side::Sell => (paid, got / paid),
        Side::Buy => (got, paid / got),
    };
    Some((Fixed::from_f64(qty)?, Fixed::from_f64(price)?))
        .filter(|(q, p)| q.units() > 0 && p.units() > 0)
}

/// The chain task: one swap at a time, reported to `tx`, until `rx` closes.
pub async fn run_chain(
    exec: Executor,
    pools: Vec<PoolRoute>,
    spec: ChainSpec,
    mut rx: mpsc::UnboundedReceiver<SwapRequest>,
    tx: mpsc::UnboundedSender<VenueReport>,
) {
    while let Some(req) = rx.recv().await {
        let Some(pool) = pools.iter().find(|p| p.symbol == req.symbol) else {
            let reason = format!("no route for {}", req.symbol);
            let _ = tx.send(VenueReport::Rejected { order: req.order, reason });
            continue;
        };
        match swap(&exec, pool, &spec, &req, &tx).await {
            Ok(()) => {}
            Err(NoFill::Refused(reason)) => {
                tracing::warn!(client_id = %req.client_id, "swap refused: {reason}");
                let _ = tx.send(VenueReport::Rejected { order: req.order, reason });
            }
            Err(NoFill::Unknown(why)) => {
                tracing::error!(client_id = %req.client_id, "swap outcome unknown: {why}");
            }
        }
    }
}

async fn swap(
    exec: &Executor,
    pool: &PoolRoute,
    spec: &ChainSpec,
    req: &SwapRequest,
    tx: &mpsc::UnboundedSender<VenueReport>,
) -> Result<(), NoFill> {
    let refused = |what: &str, e: &dyn std::fmt::Display| NoFill::Refused(format!("{what}: {e}"));
    match exec.resumable() {
        Ok(pending) if !pending.is_empty() => {
            return Err(NoFill::Refused(format!(
                "an earlier transaction of the wallet is unsettled ({}): settle it with `kairos tx status --pending`",
                pending[0].latest().hash
            )));
        }
        Ok(_) => {}
        Err(e) => return Err(refused("the wallet's journal", &e)),
    }
    let me = exec.address();
    let p = exec.provider();
    let ((sell, sell_dec), (buy, buy_dec)) = match req.side {
        Side::Sell => (pool.base, pool.quote),
        Side::Buy => (pool.quote, pool.base),
    };
    let spend = match req.side {
        Side::Sell => req.qty.to_f64(),
        Side::Buy => req.qty.to_f64() * req.reference,
    };
    let Some(amount_in) = units(spend, sell_dec) else {
        return Err(NoFill::Refused(format!("{spend} is not an amount to swap")));
    };
    let held =
        IERC20::new(sell, p).balanceOf(me).call().await.map_err(|e| refused("balanceOf", &e))?;
    if held < amount_in {
        return Err(NoFill::Refused(format!(
            "the wallet holds {} of {sell}, less than the {} this swap spends",
            whole(held, sell_dec),
            whole(amount_in, sell_dec)
        )));
    }
    let pair = IUniswapV2Pair::new(pool.pair, p);
    let r = pair.getReserves().call().await.map_err(|e| refused("getReserves", &e))?;
    let (r0, r1) = (U256::from(r.reserve0), U256::from(r.reserve1));
    let sells_token0 = (req.side == Side::Sell) == pool.base_is_token0;
    let (reserve_in, reserve_out) = if sells_token0 { (r0, r1) } else { (r1, r0) };
    let quote = dex::v2_amount_out(amount_in, reserve_in, reserve_out)
        .ok_or_else(|| NoFill::Refused("the pool is empty".into()))?;
    let min = dex::min_out(quote, spec.slippage_bps);
    let allowance = IERC20::new(sell, p)
        .allowance(me, pool.router)
        .call()
        .await
        .map_err(|e| refused("allowance", &e))?;
    if allowance < amount_in {
        let input = IERC20::approveCall { spender: pool.router, amount: amount_in }.abi_encode();
        let approve = Request { to: sell, input: input.into(), ..Request::default() };
        exec.send(approve).await.map_err(|e| refused("approving the router", &e))?;
    }
    let head = p
        .get_block_by_number(Default::default())
        .await
        .map_err(|e| refused("the latest block", &e))?
        .ok_or_else(|| NoFill::Refused("no latest block".into()))?;
    let deadline = head.header.timestamp + spec.deadline_s;
    let input = dex::v2_swap_exact_tokens(amount_in, min, vec![sell, buy], me, deadline);
    let order = req.order;
    let swap = Request { to: pool.router, input, ..Request::default() };
    // Labelled with the agent's client id: a restart finds the transaction of a swap whose
    // link the crash kept from the agent's journal.
    let label = format!("agent {}", req.client_id);
    let sent = exec
        .send_labelled(swap, Some(&label), |sub| {
            if let Some(o) = sub.order {
                let _ = tx.send(VenueReport::Accepted { order, venue_order_id: o as u64 });
            }
        })
        .await;
    let out = match sent {
        Ok(out) => out,
        Err(e @ kairos_chain::Error::Unsettled { .. }) => {
            // Broadcast, outcome unknown: never a second swap; follow it to its end.
            tracing::error!(client_id = %req.client_id, "{e}; tracking it");
            match track(exec).await {
                Ok(out) => out,
                Err(Tracked::Ended(why)) => return Err(NoFill::Refused(why)),
                Err(Tracked::Unknown(why)) => return Err(NoFill::Unknown(why)),
            }
        }
        Err(e) => return Err(refused("the swap", &e)),
    };
    let (paid, got) = amounts(&out.receipt, me, (sell, sell_dec), (buy, buy_dec));
    let Some((qty, price)) = fill_of(req.side, paid, got) else {
        tracing::error!(hash = %out.hash, "a confirmed swap whose amounts do not read: {paid} for {got}");
        return Err(NoFill::Unknown(format!(
            "swap {} confirmed, but its amounts do not read",
            out.hash
        )));
    };
    let trade_id = out.order.map_or(0, |o| o as u64);
    tracing::info!(hash = %out.hash, %qty, %price, "swap confirmed");
    let _ = tx.send(VenueReport::Fill {
        order,
        trade_id,
        time_ms: now_ms(),
        qty,
        price,
        commission: Fixed::ZERO,
    });
    Ok(())
}

/// How tracking ended without a confirmation.
enum Tracked {
    /// The transaction ended without being mined, or reverted.
    Ended(String),
    /// Still not settled.
    Unknown(String),
}

/// Follows the wallet's unsettled transaction (there is one at most: no swap starts while one
/// is unsettled) to its end.
async fn track(exec: &Executor) -> Result<kairos_chain::executor::Outcome, Tracked> {
    for _ in 0..10 {
        let pending = exec.resumable().map_err(|e| Tracked::Unknown(e.to_string()))?;
        let Some(sub) = pending.into_iter().next() else {
            return Err(Tracked::Unknown("the transaction left the wallet's journal".into()));
        };
        match exec.wait(sub).await {
            Ok(out) => return Ok(out),
            Err(kairos_chain::Error::Unsettled { .. }) => {}
            Err(e) => return Err(Tracked::Ended(e.to_string())),
        }
    }
    Err(Tracked::Unknown(
        "still unsettled after ten waits: run `kairos tx status --pending`".into(),
    ))
}

/// Settles the agent journal's swaps that an earlier session left unsettled, from the wallet's
/// journal and the chain, before any strategy starts; an error (the agent refuses to trade)
/// names what cannot be settled.
pub async fn reconcile(
    journal: &Journal,
    exec: &Executor,
    pools: &[PoolRoute],
) -> anyhow::Result<usize> {
    if let Some(first) = exec.resumable()?.first() {
        anyhow::bail!(
            "cannot reconcile with the chain, refusing to trade: transaction {} of {} (order {}) is unsettled; run `kairos tx status --wallet FILE --pending` to track it to its end",
            first.latest().hash,
            exec.address(),
            first.order.map_or("?".into(), |o| o.to_string())
        );
    }
    let mut settled = 0;
    for o in journal.unsettled(UNISWAP)? {
        let refuse = |why: &str| {
            anyhow::anyhow!(
                "cannot reconcile with the chain, refusing to trade: swap {} ({} {} {}) {why}",
                o.client_id,
                o.side,
                o.qty,
                o.symbol
            )
        };
        // The same client id in an older journal's session is not this swap: only an order
        // made after it was journalled here.
        let label = format!("agent {}", o.client_id);
        let labelled = exec.journal().order_labelled(exec.address(), &label, o.created_ms)?;
        let Some(chain_order) = o.venue_order_id.map(|v| v as i64).or(labelled) else {
            // Journalled here, then the crash: the executor journals a swap, labelled with
            // the client id, before it signs it; with no such order it was never sent.
            journal.update(&o.client_id, None, "NOT_SENT", "0", true)?;
            settled += 1;
            continue;
        };
        let mine = exec.journal().order_events(chain_order)?;
        let confirmed = mine.iter().rev().find(|e| e.state == "confirmed").and_then(|e| e.hash);
        let Some(hash) = confirmed else {
            if mine.iter().any(|e| matches!(e.state.as_str(), "reverted" | "refused" | "dropped")) {
                journal.update(&o.client_id, None, "REJECTED", "0", true)?;
                settled += 1;
                continue;
            }
            return Err(refuse(&format!(
                "is linked to wallet order {chain_order}, which did not end"
            )));
        };
        let pool = pools
            .iter()
            .find(|p| p.symbol == o.symbol)
            .ok_or_else(|| refuse("is on a pool no longer routed"))?;
        let receipt = exec
            .provider()
            .get_transaction_receipt(hash)
            .await
            .map_err(|e| {
                refuse(&format!("confirmed in {hash}, whose receipt cannot be read: {e}"))
            })?
            .ok_or_else(|| refuse(&format!("confirmed in {hash}, which the node does not know")))?;
        let side = if o.side == "BUY" { Side::Buy } else { Side::Sell };
        let (sell, buy) = match side {
            Side::Sell => (pool.base, pool.quote),
            Side::Buy => (pool.quote, pool.base),
        };
        let (paid, got) = amounts(&receipt, exec.address(), sell, buy);
        let (qty, price) = fill_of(side, paid, got)
            .ok_or_else(|| refuse(&format!("confirmed in {hash}, whose amounts do not read")))?;
        journal.record_fill(&JournalFill {
            venue: UNISWAP.into(),
            symbol: o.symbol.clone(),
            trade_id: chain_order as u64,
            venue_order_id: chain_order as u64,
            client_id: Some(o.client_id.clone()),
            side: o.side.clone(),
            qty: qty.to_string(),
            price: price.to_string(),
            commission: "0".into(),
            time_ms: now_ms(),
        })?;
        journal.update(&o.client_id, None, "FILLED", &qty.to_string(), true)?;
        tracing::info!(client_id = %o.client_id, %hash, "a swap of an earlier session was confirmed: booked");
        settled += 1;
    }
    Ok(settled)
}
