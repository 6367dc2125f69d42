//! `book_imbalance`: a passive strategy that leans on the order book.

use super::state_for;
use crate::{
    BookUpdate, Context, InstrumentId, OrderEvent, OrderId, OrderRequest, OrderSize, OrderUpdate,
    ParamSpec, Params, Result, Side, Strategy, StrategyInfo, Timestamp,
};

/// Reads the top `levels` of the book after every change: the imbalance
/// `(bid size - ask size) / (bid size + ask size)` says which side is heavier. When it is
/// above `threshold` and the position is below `max_position`, it rests a buy of `size` at the
/// best bid (joining the queue); below `-threshold` and above `-max_position`, a sell at the
/// best ask. It keeps at most one order per side and cancels one whose price is no longer the
/// best on its side or whose signal has gone. Nothing is sent before `start_ms` (exchange
/// time, ms since the epoch; 0 = at once).
///
/// It exists to exercise the whole order lifecycle on a live or recorded book: resting
/// orders, queue position, partial fills, cancels that race fills.
#[derive(Debug, Clone)]
pub struct BookImbalance {
    levels: usize,
    threshold: f64,
    size: f64,
    max_position: f64,
    start: Timestamp,
    states: Vec<State>,
}

#[derive(Debug, Clone, Default)]
struct State {
    /// The working order on each side, with its price, and whether a cancel is on its way.
    bid: Option<(OrderId, f64, bool)>,
    ask: Option<(OrderId, f64, bool)>,
}

impl BookImbalance {
    /// The strategy with these settings.
    pub fn new(
        levels: usize,
        threshold: f64,
        size: f64,
        max_position: f64,
        start: Timestamp,
    ) -> Self {
        Self { levels: levels.max(1), threshold, size, max_position, start, states: Vec::new() }
    }

    fn side(&mut self, ctx: &mut Context, id: InstrumentId, side: Side, want: Option<f64>) {
        let st = state_for(&mut self.states, id, State::default);
        let slot = match side {
            Side::Buy => &mut st.bid,
            Side::Sell => &mut st.ask,
        };
        match (*slot, want) {
            (Some((order, price, false)), w) if w != Some(price) => {
                if ctx.cancel(order) {
                    *slot = Some((order, price, true));
                } else {
                    *slot = None;
                }
            }
            (None, Some(price)) => {
                let r = OrderRequest::limit(id, side, OrderSize::Units(self.size), price);
                if let Ok(order) = ctx.submit(r) {
                    *slot = Some((order, price, false));
                }
            }
            _ => {}
        }
    }
}

impl Strategy for BookImbalance {
    fn on_book(&mut self, ctx: &mut Context, update: &BookUpdate<'_>) {
        let id = update.instrument;
        if ctx.now() < self.start || !ctx.tradable(id) {
            return;
        }
        let book = ctx.book(id);
        let (Some((bid, _)), Some((ask, _))) = (book.best_bid(), book.best_ask()) else { return };
        let sum = |it: &mut dyn Iterator<Item = (crate::Fixed, crate::Fixed)>| -> f64 {
            it.take(self.levels).map(|(_, q)| q.to_f64()).sum()
        };
        let b = sum(&mut book.bids());
        let a = sum(&mut book.asks());
        if b + a <= 0.0 {
            return;
        }
        let imbalance = (b - a) / (b + a);
        let pos = ctx.position(id);
        let buy = (imbalance > self.threshold && pos + self.size <= self.max_position + 1e-12)
            .then_some(bid.to_f64());
        let sell = (imbalance < -self.threshold && pos - self.size >= -self.max_position - 1e-12)
            .then_some(ask.to_f64());
        self.side(ctx, id, Side::Buy, buy);
        self.side(ctx, id, Side::Sell, sell);
    }

    fn on_order(&mut self, _ctx: &mut Context, event: &OrderEvent) {
        let done = matches!(
            event.update,
            OrderUpdate::Filled
                | OrderUpdate::Cancelled
                | OrderUpdate::Rejected(_)
                | OrderUpdate::Expired
                | OrderUpdate::CancelRejected(_)
        );
        if !done {
            return;
        }
        let st = state_for(&mut self.states, event.instrument, State::default);
        for slot in [&mut st.bid, &mut st.ask] {
            if slot.is_some_and(|(o, _, _)| o == event.order) {
                *slot = None;
            }
        }
    }
}

fn build(p: &Params) -> Result<Box<dyn Strategy>> {
    Ok(Box::new(BookImbalance::new(
        p.usize("levels")?,
        p.float("threshold")?,
        p.float("size")?,
        p.float("max_position")?,
        Timestamp::from_millis(p.int("start_ms")?),
    )))
}

pub(crate) fn info() -> StrategyInfo {
    StrategyInfo {
        name: "book_imbalance",
        description: "rest a buy at the best bid when the book's bid side is heavier, a sell at the best ask when the ask side is",
        params: vec![
            ParamSpec::int("levels", 5, 1, 1000, "book levels per side summed"),
            ParamSpec::float("threshold", 0.3, 0.0, 1.0, "imbalance needed to quote"),
            ParamSpec::float("size", 0.001, 1e-8, 1e9, "order size in units"),
            ParamSpec::float(
                "max_position",
                0.01,
                0.0,
                1e12,
                "largest position either way, in units",
            ),
            ParamSpec::int(
                "start_ms",
                0,
                0,
                4_102_444_800_000,
                "no orders before this exchange time (ms since the epoch)",
            ),
        ],
        build,
    }
}
