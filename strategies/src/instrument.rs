//! Tradable instruments.

use serde::{Deserialize, Serialize};

use crate::{Error, Fixed, Result, Side};

/// A small dense handle to an instrument, valid within one run (a backtest, a live session).
///
/// Events carry this handle instead of a symbol string so the hot path copies four bytes; the
/// [`Context`](crate::Context) maps it back to the full [`Instrument`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct InstrumentId(pub u32);

impl InstrumentId {
    /// The index of this instrument in its run's instrument table.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// What can be traded, and in which increments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instrument {
    /// Symbol as the venue spells it, for example `BTCUSDT` or `EURUSD`.
    pub symbol: String,
    /// Venue name, for example `binance`, `sim` or `file`.
    pub venue: String,
    /// Base asset (what is bought), for example `BTC`.
    pub base: String,
    /// Quote asset (what prices are in), for example `USDT`.
    pub quote: String,
    /// Smallest price increment.
    pub tick_size: f64,
    /// Smallest quantity increment; order sizes are whole multiples of it.
    pub lot_size: f64,
}

impl Instrument {
    /// An instrument with tick and lot size 1 and base/quote guessed from the symbol
    /// (`BTCUSDT` gives `BTC`/`USDT`, `EURUSD` gives `EUR`/`USD`).
    pub fn new(symbol: impl Into<String>, venue: impl Into<String>) -> Self {
        let symbol = symbol.into();
        let (base, quote) = split_symbol(&symbol);
        Self { symbol, venue: venue.into(), base, quote, tick_size: 1e-8, lot_size: 1.0 }
    }

    /// Sets the lot size.
    pub fn with_lot_size(mut self, lot_size: f64) -> Self {
        self.lot_size = lot_size;
        self
    }

    /// Sets the tick size.
    pub fn with_tick_size(mut self, tick_size: f64) -> Self {
        self.tick_size = tick_size;
        self
    }

    /// Checks that sizes are finite and positive.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: &str| {
            Err(Error::InvalidInstrument { symbol: self.symbol.clone(), reason: reason.into() })
        };
        if self.symbol.is_empty() {
            return bad("empty symbol");
        }
        if !(self.tick_size.is_finite() && self.tick_size > 0.0) {
            return bad(&format!("tick size {} is not a positive number", self.tick_size));
        }
        if !(self.lot_size.is_finite() && self.lot_size > 0.0) {
            return bad(&format!("lot size {} is not a positive number", self.lot_size));
        }
        Ok(())
    }

    /// Rounds a quantity down to whole lots (towards zero).
    pub fn round_lots_down(&self, qty: f64) -> f64 {
        (qty / self.lot_size).trunc() * self.lot_size
    }

    /// A price as a venue takes it: a whole number of ticks, exact, rounded so the order is
    /// never worse than asked (buys down, sells up). A float within 10^-8 of a tick is that
    /// tick, so `61800.30000000001` with tick 0.1 is `61800.3`. `None` for a price that is
    /// not a positive number or rounds to zero.
    pub fn venue_price(&self, price: f64, side: Side) -> Option<Fixed> {
        let tick = Fixed::from_f64(self.tick_size).filter(|t| !t.is_zero())?;
        let p = Fixed::from_f64(price)?;
        let p = match side {
            Side::Buy => p.floor_to(tick),
            Side::Sell => p.ceil_to(tick)?,
        };
        (!p.is_zero()).then_some(p)
    }

    /// A quantity as a venue takes it: rounded down to whole lots, exact. `None` when that
    /// is zero or the quantity is not a positive number.
    pub fn venue_quantity(&self, qty: f64) -> Option<Fixed> {
        let lot = Fixed::from_f64(self.lot_size).filter(|l| !l.is_zero())?;
        let q = Fixed::from_f64(qty)?.floor_to(lot);
        (!q.is_zero()).then_some(q)
    }
}

fn split_symbol(symbol: &str) -> (String, String) {
    let s = symbol.to_ascii_uppercase();
    for sep in ['/', '-', '_'] {
        if let Some((b, q)) = s.split_once(sep) {
            return (b.to_string(), q.to_string());
        }
    }
    for quote in ["USDT", "USDC", "BUSD", "USD", "EUR", "BTC", "ETH"] {
        if s.len() > quote.len() && s.ends_with(quote) {
            return (s[..s.len() - quote.len()].to_string(), quote.to_string());
        }
    }
    (s, String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbol_split() {
        let i = Instrument::new("BTCUSDT", "binance");
        assert_eq!((i.base.as_str(), i.quote.as_str()), ("BTC", "USDT"));
        let i = Instrument::new("eth/btc", "x");
        assert_eq!((i.base.as_str(), i.quote.as_str()), ("ETH", "BTC"));
    }

    #[test]
    fn validation_names_the_problem() {
        let e = Instrument::new("X", "v").with_lot_size(0.0).validate().unwrap_err();
        assert!(e.to_string().contains("lot size 0"), "{e}");
    }

    #[test]
    fn venue_prices_are_whole_ticks_written_exactly() {
        let i = Instrument::new("BTCUSDT", "binance").with_tick_size(0.1).with_lot_size(0.001);
        assert_eq!(i.venue_price(61800.30000000001, Side::Buy).unwrap().to_string(), "61800.3");
        assert_eq!(i.venue_price(61800.30000000001, Side::Sell).unwrap().to_string(), "61800.3");
        assert_eq!(i.venue_price(61800.34, Side::Buy).unwrap().to_string(), "61800.3");
        assert_eq!(i.venue_price(61800.34, Side::Sell).unwrap().to_string(), "61800.4");
        assert_eq!(i.venue_price(0.1 + 0.2, Side::Buy).unwrap().to_string(), "0.3");
        assert_eq!(i.venue_quantity(0.0129999).unwrap().to_string(), "0.012");
        assert_eq!(i.venue_quantity(0.3 - 0.1).unwrap().to_string(), "0.2");
        assert!(i.venue_quantity(0.0009).is_none());
        assert!(i.venue_price(f64::NAN, Side::Buy).is_none());
        assert!(i.venue_price(-1.0, Side::Sell).is_none());
        assert!(i.venue_price(0.04, Side::Buy).is_none(), "rounds to zero ticks");
    }

    #[test]
    fn lots_round_down() {
        let i = Instrument::new("X", "v").with_lot_size(0.01);
        assert!((i.round_lots_down(1.239) - 1.23).abs() < 1e-12);
    }
}
