//! `sma_cross`: the moving-average crossover.

use super::{Mode, go, size_spec, state_for};
use crate::indicators::{Cross, CrossEvent, Indicator, SmaPair};
use crate::{
    Bar, BarRun, Context, InstrumentId, ParamSpec, Params, Result, Strategy, StrategyInfo,
};

/// On a golden cross (fast SMA of closes crosses above the slow one) close any short and go
/// long; on a death cross close any long and, in long-short mode, go short.
///
/// With `fast=10 slow=20 mode=long_short` this is backtesting.py's canonical `SmaCross`
/// (`position.close(); buy()` / `position.close(); sell()`), and trades identically.
#[derive(Debug, Clone)]
pub struct SmaCross {
    fast: usize,
    slow: usize,
    mode: Mode,
    size: f64,
    states: Vec<State>,
}

#[derive(Debug, Clone)]
struct State {
    smas: SmaPair,
    cross: Cross,
}

impl SmaCross {
    /// A crossover of SMA(`fast`) and SMA(`slow`), `fast < slow`.
    pub fn new(fast: usize, slow: usize, mode: Mode, size: f64) -> Self {
        Self { fast, slow, mode, size, states: Vec::new() }
    }

    #[inline(always)]
    fn state(&mut self, id: InstrumentId) -> &mut State {
        // The hit path is spelled out here rather than left to `state_for`: measured A/B on the
        // 10M-bar bench, routing every bar through `state_for` costs about 5% of throughput.
        if id.index() < self.states.len() {
            return &mut self.states[id.index()];
        }
        let (fast, slow) = (self.fast, self.slow);
        state_for(&mut self.states, id, || State {
            smas: SmaPair::new(fast.min(slow), slow.max(fast)),
            cross: Cross::new(),
        })
    }
}

impl Strategy for SmaCross {
    fn warmup_bars(&self) -> usize {
        self.slow.max(self.fast) - 1
    }

    #[inline(always)]
    fn on_bar(&mut self, ctx: &mut Context, bar: &Bar) {
        let (mode, size) = (self.mode, self.size);
        let st = self.state(bar.instrument);
        let Some((f, s)) = st.smas.update(bar.close) else { return };
        match st.cross.update(f, s) {
            Some(CrossEvent::Above) => go(ctx, bar.instrument, true, mode, size),
            Some(CrossEvent::Below) => go(ctx, bar.instrument, false, mode, size),
            None => {}
        }
    }

    /// The same as `on_bar` for each bar, with the averages and the crossing state held in
    /// registers until a crossing, where the run stops and the strategy trades.
    fn on_bars(&mut self, run: &mut BarRun<'_>) {
        let bars = run.bars();
        let Some(first) = bars.first() else { return };
        let id = first.instrument;
        let (mode, size) = (self.mode, self.size);
        let st = self.state(id);
        let mut cross = st.cross;
        let mut event = None;
        let taken = st.smas.scan(bars.iter().map(|b| b.close), |f, s| {
            event = cross.update(f, s);
            event.is_some()
        });
        st.cross = cross;
        match event {
            Some(e) => go(run.act_at(taken - 1), id, e == CrossEvent::Above, mode, size),
            None => run.consume(taken),
        }
    }
}

fn build(p: &Params) -> Result<Box<dyn Strategy>> {
    let (fast, slow) = (p.usize("fast")?, p.usize("slow")?);
    if fast >= slow {
        return Err(p.invalid("fast", format!("fast ({fast}) must be less than slow ({slow})")));
    }
    Ok(Box::new(SmaCross::new(fast, slow, Mode::from_params(p)?, p.float("size")?)))
}

pub(crate) fn info() -> StrategyInfo {
    StrategyInfo {
        name: "sma_cross",
        description: "golden cross: go long; death cross: close the long (and go short in long_short mode)",
        params: vec![
            ParamSpec::int("fast", 10, 1, 100_000, "fast SMA period (bars)"),
            ParamSpec::int("slow", 20, 2, 100_000, "slow SMA period (bars)"),
            Mode::spec(),
            size_spec(),
        ],
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Instrument, InstrumentId, Timestamp};

    fn bars(closes: &[f64]) -> Vec<Bar> {
        closes
            .iter()
            .enumerate()
            .map(|(i, &c)| Bar {
                ts: Timestamp(60 * (i as i64 + 1)),
                instrument: InstrumentId(0),
                open: c,
                high: c,
                low: c,
                close: c,
                volume: 1.0,
            })
            .collect()
    }

    #[test]
    fn on_bars_takes_a_quiet_run_whole_and_stops_at_a_crossing() {
        let mut ctx = Context::new(vec![Instrument::new("X", "test")], 1_000.0);
        let mut s = SmaCross::new(2, 3, Mode::LongShort, 1.0);
        // Falling: the averages never cross.
        let quiet = bars(&[10.0, 9.0, 8.0, 7.0, 6.0]);
        let mut run = BarRun::new(&mut ctx, &quiet);
        s.on_bars(&mut run);
        assert_eq!((run.consumed(), run.acted()), (5, false));
        assert!(ctx.open_orders().is_empty());
        // Then a jump: SMA(2) crosses above SMA(3) on the second bar of the run.
        let turn = bars(&[6.5, 9.0, 12.0]);
        let mut run = BarRun::new(&mut ctx, &turn);
        s.on_bars(&mut run);
        assert_eq!((run.consumed(), run.acted()), (2, true));
        assert_eq!(ctx.open_orders().len(), 1);
        assert_eq!(ctx.open_orders()[0].submitted, turn[1].ts);
    }
}
