//! [`BarRun`]: several closed bars of one instrument handed to a strategy in one call, the
//! backtest engine's fast path for strategies that trade on bars.

use crate::{Bar, Context};

/// Consecutive closed bars of one instrument, oldest first, handed to
/// [`Strategy::on_bars`](crate::Strategy::on_bars) in one call while no order is working.
///
/// The strategy reads the bars with [`BarRun::bars`] and ends the run in one of two ways:
///
/// - [`BarRun::consume`]`(n)`: it has handled the first `n` bars and needed nothing from the
///   context for any of them;
/// - [`BarRun::act_at`]`(i)`: it has handled bars `0..i` without the context and needs it at
///   bar `i`; it gets the context exactly as [`Strategy::on_bar`](crate::Strategy::on_bar)
///   would for that bar (the clock at the bar's time, the instrument marked at its close), and
///   the run ends after bar `i`.
///
/// Doing neither hands the bars back: the runtime feeds them to `on_bar` one at a time.
pub struct BarRun<'a> {
    bars: &'a [Bar],
    ctx: &'a mut Context,
    consumed: usize,
    acted: bool,
}

impl<'a> BarRun<'a> {
    /// Runtime: a run over `bars`, all of one instrument and all later than the context's
    /// clock, with the context as it was after the bar before them.
    #[inline]
    pub fn new(ctx: &'a mut Context, bars: &'a [Bar]) -> Self {
        Self { bars, ctx, consumed: 0, acted: false }
    }

    /// The bars, oldest first; every one has closed.
    #[inline(always)]
    pub fn bars(&self) -> &'a [Bar] {
        self.bars
    }

    /// The strategy has handled the first `n` bars (at most all of them) without the context.
    #[inline]
    pub fn consume(&mut self, n: usize) {
        if !self.acted {
            self.consumed = n.min(self.bars.len());
        }
    }

    /// The strategy has handled bars `0..i` and needs the context at bar `i` (the last bar when
    /// `i` is past the end): the clock is moved to the bar's time and the instrument marked at
    /// its close, as for `on_bar`. The run ends after bar `i`; calling this again returns the
    /// same context without moving it.
    #[inline]
    pub fn act_at(&mut self, i: usize) -> &mut Context {
        if !self.acted
            && let Some(last) = self.bars.len().checked_sub(1)
        {
            let bar = &self.bars[i.min(last)];
            self.ctx.set_now(bar.ts);
            self.ctx.portfolio_mut().mark(bar.instrument, bar.close);
            self.consumed = i.min(last) + 1;
            self.acted = true;
        }
        self.ctx
    }

    /// Runtime: how many bars the strategy handled (0: it handed them back).
    #[inline]
    pub fn consumed(&self) -> usize {
        self.consumed
    }

    /// Runtime: whether the strategy took the context at the last bar it handled.
    #[inline]
    pub fn acted(&self) -> bool {
        self.acted
    }
}

impl std::fmt::Debug for BarRun<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BarRun")
            .field("bars", &self.bars.len())
            .field("consumed", &self.consumed)
            .field("acted", &self.acted)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Instrument, InstrumentId, OrderSize, Timestamp};

    fn bars() -> Vec<Bar> {
        (0..4)
            .map(|i| Bar {
                ts: Timestamp(60 * (i + 1)),
                instrument: InstrumentId(0),
                open: 100.0 + i as f64,
                high: 102.0 + i as f64,
                low: 99.0 + i as f64,
                close: 101.0 + i as f64,
                volume: 1.0,
            })
            .collect()
    }

    fn ctx() -> Context {
        Context::new(vec![Instrument::new("BTC-USD", "test")], 1_000.0)
    }

    #[test]
    fn act_at_gives_the_context_of_that_bar_and_ends_the_run() {
        let (bars, mut ctx) = (bars(), ctx());
        let mut run = BarRun::new(&mut ctx, &bars);
        let c = run.act_at(2);
        assert_eq!(c.now(), Timestamp(180));
        assert_eq!(c.portfolio().position(InstrumentId(0)).last_price(), 103.0);
        c.buy(InstrumentId(0), OrderSize::Units(1.0)).unwrap();
        // A second call does not move the clock, and consume cannot undo the action.
        assert_eq!(run.act_at(3).now(), Timestamp(180));
        run.consume(4);
        assert_eq!((run.consumed(), run.acted()), (3, true));
        assert_eq!(ctx.open_orders()[0].submitted, Timestamp(180));
    }

    #[test]
    fn out_of_range_indices_are_clamped_and_an_empty_run_acts_nowhere() {
        let (bars, mut ctx) = (bars(), ctx());
        let mut run = BarRun::new(&mut ctx, &bars);
        run.consume(99);
        assert_eq!((run.consumed(), run.acted()), (4, false));
        assert_eq!(run.act_at(99).now(), Timestamp(240));
        assert_eq!(run.consumed(), 4);
        let mut empty = BarRun::new(&mut ctx, &[]);
        assert_eq!(empty.act_at(0).now(), Timestamp(240));
        assert_eq!((empty.consumed(), empty.acted()), (0, false));
    }
}
