//! Clocks: where "now" comes from when no event says.

use kairos_strategies::Timestamp;

/// The source of time between events.
///
/// Event times always come from the events themselves (exchange time), in every mode, so a
/// replay reproduces what live saw. The clock only decides when timers fire while no event
/// arrives: never on its own in a historical run (the next event's time moves time on), at the
/// wall-clock time in a live one.
pub trait Clock {
    /// The time now, or `None` when time moves only with events.
    fn now(&self) -> Option<Timestamp>;
}

/// Time moves only with the events (backtests and replays).
#[derive(Debug, Clone, Copy, Default)]
pub struct HistoricalClock;

impl Clock for HistoricalClock {
    #[inline]
    fn now(&self) -> Option<Timestamp> {
        None
    }
}

/// The system's UTC wall clock (paper and live trading).
#[derive(Debug, Clone, Copy, Default)]
pub struct LiveClock;

impl Clock for LiveClock {
    fn now(&self) -> Option<Timestamp> {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?;
        i64::try_from(d.as_nanos()).ok().map(Timestamp)
    }
}
