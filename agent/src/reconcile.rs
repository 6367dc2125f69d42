//! Reconciliation with a venue before any strategy starts: the journal's unsettled orders are
//! looked up by client order id, the fills since the last one journalled are read, the venue's
//! open orders and balances are compared with the journal. When something cannot be settled
//! (the venue does not answer, it holds an open order the journal does not know, the account
//! traded outside this agent), the agent refuses to trade and says why: a missing report does
//! not mean flat.
//!
//! An order journalled as an intent may have reached the venue just before a crash. It is
//! looked up only once its signed request can no longer be accepted (`recvWindow` after the
//! time it was journalled with, plus a second), so "not found" then means it was never sent,
//! and it is closed as `NOT_SENT` instead of being sent again.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::binance_rest::{BinanceRest, RestError};
use crate::journal::{Journal, JournalFill, OrderState};
use crate::now_ms;

/// What reconciliation did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Reconciliation {
    /// Orders whose state changed: `(client id, the venue's status)`.
    pub settled: Vec<(String, String)>,
    /// Fills found at the venue and journalled now.
    pub new_fills: usize,
    /// Our orders still working at the venue.
    pub working: usize,
    /// Balances, `(asset, free, locked)`.
    pub balances: Vec<(String, String, String)>,
}

/// Why the agent may not trade.
#[derive(Debug, thiserror::Error)]
#[error("cannot reconcile with {venue}, refusing to trade: {}", problems.join("; "))]
pub struct ReconcileError {
    /// The venue.
    pub venue: String,
    /// Each problem, in words.
    pub problems: Vec<String>,
}

/// Reconciles `journal` with the Binance account behind `rest` for `symbols` (see the module
/// comment). `venue` is the journal's name for it.
pub async fn reconcile_binance(
    journal: &Journal,
    rest: &mut BinanceRest,
    venue: &str,
    symbols: &[&str],
) -> Result<Reconciliation, ReconcileError> {
    let fail = |problems: Vec<String>| ReconcileError { venue: venue.to_string(), problems };
    let rest_fail = |what: &str, e: RestError| fail(vec![format!("{what}: {e}")]);
    let journal_fail = |e: crate::journal::JournalError| fail(vec![e.to_string()]);
    let mut out = Reconciliation::default();
    rest.sync_time().await.map_err(|e| rest_fail("server time", e))?;

    // Intents wait until their request can no longer be accepted.
    let unsettled = journal.unsettled(venue).map_err(journal_fail)?;
    let window = rest.recv_window_ms as i64 + 1_000;
    if let Some(latest) =
        unsettled.iter().filter(|o| o.state == OrderState::Intent).map(|o| o.created_ms).max()
    {
        let wait = latest + window - now_ms();
        if wait > 0 {
            tracing::info!(
                wait_ms = wait,
                "waiting for the last unsent order's recvWindow to pass"
            );
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
    }
    let mut problems = Vec::new();
    for o in &unsettled {
        match rest.query_order(&o.symbol, &o.client_id).await {
            Ok(Some(r)) => {
                let status = r.status.clone();
                journal
                    .update(
                        &o.client_id,
                        Some(r.order_id),
                        &status,
                        &r.executed_qty.to_string(),
                        r.is_final(),
                    )
                    .map_err(journal_fail)?;
                if o.status.as_deref() != Some(status.as_str()) {
                    out.settled.push((o.client_id.clone(), status));
                }
            }
            Ok(None) if o.state == OrderState::Intent => {
                journal.update(&o.client_id, None, "NOT_SENT", "0", true).map_err(journal_fail)?;
                out.settled.push((o.client_id.clone(), "NOT_SENT".into()));
            }
            Ok(None) => problems.push(format!(
                "{} ({} {} {}) was working and the venue does not know it",
                o.client_id, o.side, o.qty, o.symbol
            )),
            Err(e) => return Err(rest_fail(&format!("looking up {}", o.client_id), e)),
        }
    }

    // Fills since the last one journalled, matched to our orders by the venue's order id.
    let orders = journal.orders().map_err(journal_fail)?;
    let by_venue_id: BTreeMap<u64, &str> = orders
        .iter()
        .filter(|o| o.venue == venue)
        .filter_map(|o| o.venue_order_id.map(|id| (id, o.client_id.as_str())))
        .collect();
    let first_order_ms = orders.iter().filter(|o| o.venue == venue).map(|o| o.created_ms).min();
    for symbol in symbols {
        let Some(since_ms) = first_order_ms else { break };
        let mut from = journal.last_trade_id(venue, symbol).map_err(journal_fail)?.map(|t| t + 1);
        loop {
            let trades = rest
                .my_trades(symbol, from)
                .await
                .map_err(|e| rest_fail(&format!("{symbol} trades"), e))?;
            let n = trades.len();
            for t in &trades {
                match by_venue_id.get(&t.order_id) {
                    Some(cid) => {
                        let fill = JournalFill {
                            venue: venue.into(),
                            symbol: t.symbol.clone(),
                            trade_id: t.id,
                            venue_order_id: t.order_id,
                            client_id: Some(cid.to_string()),
                            side: if t.is_buyer { "BUY" } else { "SELL" }.into(),
                            qty: t.qty.to_string(),
                            price: t.price.to_string(),
                            commission: t.commission.to_string(),
                            time_ms: t.time,
                        };
                        if journal.record_fill(&fill).map_err(journal_fail)? {
                            out.new_fills += 1;
                        }
                    }
                    None if t.time >= since_ms => problems.push(format!(
                        "{symbol} trade {} (order {}) is not from this agent: the account traded outside it",
                        t.id, t.order_id
                    )),
                    None => {}
                }
            }
            match trades.last() {
                Some(last) if n == 1000 => from = Some(last.id + 1),
                _ => break,
            }
        }
    }

    // Open orders the journal does not know.
    for symbol in symbols {
        let open = rest
            .open_orders(symbol)
            .await
            .map_err(|e| rest_fail(&format!("{symbol} open orders"), e))?;
        for r in &open {
            match orders.iter().find(|o| o.client_id == r.client_order_id) {
                Some(_) => out.working += 1,
                None => problems.push(format!(
                    "open order {} ({} {} {} at {}) is not in the journal",
                    r.client_order_id, r.side, r.orig_qty, r.symbol, r.price
                )),
            }
        }
    }

    let balances = rest.balances().await.map_err(|e| rest_fail("balances", e))?;
    for b in &balances {
        journal
            .set_balance(venue, &b.asset, &b.free.to_string(), &b.locked.to_string())
            .map_err(journal_fail)?;
        out.balances.push((b.asset.clone(), b.free.to_string(), b.locked.to_string()));
    }
    if !problems.is_empty() {
        let _ = journal.event("refused", &problems.join("; "));
        return Err(fail(problems));
    }
    let _ = journal.event(
        "reconciled",
        &format!(
            "{} settled, {} new fills, {} working",
            out.settled.len(),
            out.new_fills,
            out.working
        ),
    );
    Ok(out)
}
