//! The [`Context`]: what a strategy reads and how it trades.

use crate::{
    Error, Instrument, InstrumentId, Order, OrderId, OrderKind, OrderRequest, OrderSize, Portfolio,
    Result, Side, Timestamp,
};

/// A strategy's window on its run: the clock, the instruments, the portfolio and the working
/// orders, and the only way it submits or cancels orders.
///
/// The same type is handed to a strategy by the backtest engine, the paper runtime and the live
/// runtime; only who processes the orders differs.
///
/// # Runtime interface
///
/// The methods under "runtime" ([`Context::new`], [`Context::set_now`],
/// [`Context::portfolio_mut`], [`Context::take_orders`] ...) are for execution runtimes. A
/// strategy never needs them: it reads through the accessors and trades through
/// [`Context::submit`] and its shorthands.
#[derive(Debug, Clone)]
pub struct Context {
    now: Timestamp,
    instruments: Vec<Instrument>,
    portfolio: Portfolio,
    orders: Vec<Order>,
    next_order_id: u64,
}

impl Context {
    // ---- strategy interface -------------------------------------------------------------

    /// The current time: the label of the event being handled.
    #[inline]
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// The run's instruments, indexed by [`InstrumentId`].
    pub fn instruments(&self) -> &[Instrument] {
        &self.instruments
    }

    /// One instrument.
    ///
    /// # Panics
    /// If `id` does not come from this run.
    pub fn instrument(&self, id: InstrumentId) -> &Instrument {
        &self.instruments[id.index()]
    }

    /// Finds an instrument by symbol.
    pub fn instrument_id(&self, symbol: &str) -> Option<InstrumentId> {
        self.instruments.iter().position(|i| i.symbol == symbol).map(|i| InstrumentId(i as u32))
    }

    /// The account.
    #[inline]
    pub fn portfolio(&self) -> &Portfolio {
        &self.portfolio
    }

    /// Net signed position in `instrument`.
    #[inline]
    pub fn position(&self, instrument: InstrumentId) -> f64 {
        self.portfolio.position(instrument).quantity()
    }

    /// Account equity at the latest marks.
    pub fn equity(&self) -> f64 {
        self.portfolio.equity()
    }

    /// Working orders, oldest first.
    pub fn open_orders(&self) -> &[Order] {
        &self.orders
    }

    /// Submits an order. It is checked here (finite positive sizes and prices, a known
    /// instrument) and works until it fills or is cancelled.
    pub fn submit(&mut self, request: OrderRequest) -> Result<OrderId> {
        self.check(&request)?;
        let id = OrderId(self.next_order_id);
        self.next_order_id += 1;
        self.orders.push(Order { id, submitted: self.now, request });
        Ok(id)
    }

    /// Submits a market buy.
    pub fn buy(&mut self, instrument: InstrumentId, size: OrderSize) -> Result<OrderId> {
        self.submit(OrderRequest::market(instrument, Side::Buy, size))
    }

    /// Submits a market sell.
    pub fn sell(&mut self, instrument: InstrumentId, size: OrderSize) -> Result<OrderId> {
        self.submit(OrderRequest::market(instrument, Side::Sell, size))
    }

    /// Submits a market order that flattens the position in `instrument` when it fills.
    /// Returns `None` when the position is already flat.
    pub fn close_position(&mut self, instrument: InstrumentId) -> Option<OrderId> {
        let qty = self.position(instrument);
        if qty == 0.0 {
            return None;
        }
        let side = if qty > 0.0 { Side::Sell } else { Side::Buy };
        self.submit(OrderRequest::market(instrument, side, OrderSize::ClosePosition)).ok()
    }

    /// Cancels a working order; `false` if it is no longer working.
    pub fn cancel(&mut self, id: OrderId) -> bool {
        match self.orders.iter().position(|o| o.id == id) {
            Some(i) => {
                self.orders.remove(i);
                true
            }
            None => false,
        }
    }

    /// Cancels every working order in `instrument`; returns how many.
    pub fn cancel_all(&mut self, instrument: InstrumentId) -> usize {
        let before = self.orders.len();
        self.orders.retain(|o| o.request.instrument != instrument);
        before - self.orders.len()
    }

    fn check(&self, r: &OrderRequest) -> Result<()> {
        let bad = |reason: String| Err(Error::InvalidOrder { reason });
        if r.instrument.index() >= self.instruments.len() {
            return bad(format!("unknown instrument id {}", r.instrument.0));
        }
        match r.size {
            OrderSize::Units(q) if !(q.is_finite() && q > 0.0) => {
                return bad(format!("size {q} is not a positive number of units"));
            }
            OrderSize::EquityFraction(f) if !(f.is_finite() && f > 0.0 && f <= 1.0) => {
                return bad(format!("equity fraction {f} is outside (0, 1]"));
            }
            _ => {}
        }
        match r.kind {
            OrderKind::Limit { price } | OrderKind::Stop { price }
                if !(price.is_finite() && price > 0.0) =>
            {
                bad(format!("price {price} is not a positive number"))
            }
            _ => Ok(()),
        }
    }

    // ---- runtime interface --------------------------------------------------------------

    /// Runtime: a context for `instruments` with `cash` in the account.
    pub fn new(instruments: Vec<Instrument>, cash: f64) -> Self {
        let portfolio = Portfolio::new(cash, instruments.len());
        Self {
            now: Timestamp(i64::MIN),
            instruments,
            portfolio,
            orders: Vec::new(),
            next_order_id: 1,
        }
    }

    /// Runtime: advances the clock.
    #[inline]
    pub fn set_now(&mut self, now: Timestamp) {
        self.now = now;
    }

    /// Runtime: the account, to mark prices and book fills.
    #[inline]
    pub fn portfolio_mut(&mut self) -> &mut Portfolio {
        &mut self.portfolio
    }

    /// Runtime: whether any order is working (a cheap check for the hot path).
    #[inline]
    pub fn has_orders(&self) -> bool {
        !self.orders.is_empty()
    }

    /// Runtime: takes the working orders out to match them; hand the ones still working back
    /// with [`Context::restore_orders`].
    #[inline]
    pub fn take_orders(&mut self) -> Vec<Order> {
        std::mem::take(&mut self.orders)
    }

    /// Runtime: puts back orders taken with [`Context::take_orders`] that are still working,
    /// ahead of any submitted in between, so submission order is kept.
    #[inline]
    pub fn restore_orders(&mut self, mut working: Vec<Order>) {
        if !self.orders.is_empty() {
            working.append(&mut self.orders);
        }
        self.orders = working;
    }

    /// Runtime: removes every working order (the run ended).
    pub fn clear_orders(&mut self) -> Vec<Order> {
        std::mem::take(&mut self.orders)
    }
}
