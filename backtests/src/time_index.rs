//! The time axis of an equity curve, stored as runs of evenly spaced timestamps.
//!
//! Bar data is almost always regular (one bar a minute, an hour, a day), with the odd gap. A
//! run of `len` times `start, start + step, ...` takes 24 bytes however long it is, so a
//! 10-million-bar backtest records its time axis in a handful of runs instead of 80 MB, and
//! appending a time that continues the current run is one compare.

use kairos_strategies::Timestamp;

/// A sequence of timestamps, run-length coded: appending the next time of an evenly spaced
/// run costs no memory. Indexing is `O(log runs)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeIndex {
    /// The runs before the open one.
    closed: Vec<Run>,
    /// The run being appended to (`len` 0 while the index is empty), kept out of the vector so
    /// that continuing it touches no heap memory.
    open: Run,
    /// The time that would continue the open run.
    next: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    /// Index of the run's first time in the whole sequence.
    first: usize,
    start: i64,
    step: i64,
    len: usize,
}

impl Run {
    fn at(&self, k: usize) -> Timestamp {
        Timestamp(self.start.wrapping_add(self.step.wrapping_mul(k as i64)))
    }
}

impl Default for TimeIndex {
    fn default() -> Self {
        // An empty open run that starts where `next` points, with no step: the first push,
        // whatever its time, either takes the fast path as exactly this run's first time or
        // starts a run of its own.
        Self {
            closed: Vec::new(),
            open: Run { first: 0, start: i64::MIN, step: 0, len: 0 },
            next: i64::MIN,
        }
    }
}

impl TimeIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `t`.
    #[inline(always)]
    pub fn push(&mut self, t: Timestamp) {
        if t.0 == self.next {
            self.open.len += 1;
            self.next = t.0.wrapping_add(self.open.step);
        } else {
            self.push_slow(t);
        }
    }

    #[cold]
    #[inline(never)]
    fn push_slow(&mut self, t: Timestamp) {
        let open = &mut self.open;
        if open.len == 1 {
            // A run of one takes its step from the second time.
            open.step = t.0.wrapping_sub(open.start);
            open.len = 2;
        } else {
            let first = open.first + open.len;
            if open.len > 0 {
                self.closed.push(*open);
            }
            *open = Run { first, start: t.0, step: 0, len: 1 };
        }
        self.next = t.0.wrapping_add(self.open.step);
    }

    /// Number of timestamps.
    pub fn len(&self) -> usize {
        self.open.first + self.open.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`-th timestamp.
    pub fn get(&self, i: usize) -> Option<Timestamp> {
        if i >= self.len() {
            return None;
        }
        if i >= self.open.first {
            return Some(self.open.at(i - self.open.first));
        }
        let r = self.closed.partition_point(|r| r.first <= i) - 1;
        let run = &self.closed[r];
        Some(run.at(i - run.first))
    }

    /// The first timestamp.
    pub fn first(&self) -> Option<Timestamp> {
        self.get(0)
    }

    /// The last timestamp.
    pub fn last(&self) -> Option<Timestamp> {
        self.len().checked_sub(1).and_then(|i| self.get(i))
    }

    /// The timestamps in order.
    pub fn iter(&self) -> impl Iterator<Item = Timestamp> + '_ {
        self.closed
            .iter()
            .chain(std::iter::once(&self.open))
            .flat_map(|run| (0..run.len).map(|k| run.at(k)))
    }

    /// The timestamps as a vector.
    pub fn to_vec(&self) -> Vec<Timestamp> {
        let mut out = Vec::with_capacity(self.len());
        out.extend(self.iter());
        out
    }

    /// The times cut where the day (`t.div_euclid(day)`) changes: `f(day, last, count)` for
    /// each stretch of `count` consecutive times on one day, ending at index `last`, in order.
    /// A stretch never spans two runs (two calls may name the same day). One step per day
    /// of an evenly spaced run, not per time.
    pub fn days(&self, day: i64, mut f: impl FnMut(i64, usize, usize)) {
        for run in self.closed.iter().chain(std::iter::once(&self.open)) {
            if run.step <= 0 {
                for k in 0..run.len {
                    f(run.at(k).0.div_euclid(day), run.first + k, 1);
                }
                continue;
            }
            let mut k = 0usize;
            while k < run.len {
                let t = i128::from(run.at(k).0);
                let d = t.div_euclid(i128::from(day));
                // The first k' whose time is on a later day.
                let next = (d + 1) * i128::from(day);
                let ahead = (next - t + i128::from(run.step) - 1) / i128::from(run.step);
                let end = (k as i128 + ahead).min(run.len as i128) as usize;
                f(d as i64, run.first + end - 1, end - k);
                k = end;
            }
        }
    }

    /// How many times are before `t` (or, with `inclusive`, at or before it): the index
    /// `slice::partition_point` gives on the times in order, found by arithmetic within a run.
    pub fn count_before(&self, t: Timestamp, inclusive: bool) -> usize {
        let before = |x: Timestamp| if inclusive { x <= t } else { x < t };
        // The last run whose first time is before `t`: every earlier run is wholly before it
        // (times rise), every later one wholly after.
        let n_closed = self.closed.partition_point(|r| before(r.at(0)));
        let run = if self.open.len > 0 && before(self.open.at(0)) {
            &self.open
        } else if n_closed > 0 {
            &self.closed[n_closed - 1]
        } else {
            return 0;
        };
        if run.step <= 0 {
            let k = (0..run.len).take_while(|&k| before(run.at(k))).count();
            return run.first + k;
        }
        // Within the run: the count of k with start + k*step before t.
        let (start, step, t) = (i128::from(run.start), i128::from(run.step), i128::from(t.0));
        let k = if inclusive {
            (t - start).div_euclid(step) + 1
        } else {
            (t - start + step - 1).div_euclid(step)
        };
        run.first + k.clamp(0, run.len as i128) as usize
    }

    /// How many evenly spaced runs the times form.
    pub fn runs(&self) -> usize {
        self.closed.len() + usize::from(self.open.len > 0)
    }
}

impl FromIterator<Timestamp> for TimeIndex {
    fn from_iter<I: IntoIterator<Item = Timestamp>>(iter: I) -> Self {
        let mut index = Self::new();
        for t in iter {
            index.push(t);
        }
        index
    }
}

impl PartialEq<[Timestamp]> for TimeIndex {
    fn eq(&self, other: &[Timestamp]) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a == *b)
    }
}

impl PartialEq<Vec<Timestamp>> for TimeIndex {
    fn eq(&self, other: &Vec<Timestamp>) -> bool {
        self == other.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(v: &[i64]) -> Vec<Timestamp> {
        v.iter().map(|&t| Timestamp(t)).collect()
    }

    #[test]
    fn regular_times_take_one_run() {
        let times: Vec<_> = (0..1000).map(|i| Timestamp(60 * i + 7)).collect();
        let index: TimeIndex = times.iter().copied().collect();
        assert_eq!(index.runs(), 1);
        assert_eq!(index.to_vec(), times);
        assert_eq!(index.get(999), Some(Timestamp(60 * 999 + 7)));
        assert_eq!(index.get(1000), None);
        assert_eq!(index.last(), Some(Timestamp(60 * 999 + 7)));
    }

    #[test]
    fn gaps_start_new_runs() {
        let times = ts(&[0, 60, 120, 300, 360, 420, 421, 1000]);
        let index: TimeIndex = times.iter().copied().collect();
        assert_eq!(index, times);
        assert_eq!(index.runs(), 3);
        assert!(TimeIndex::new().is_empty());
        assert_eq!(TimeIndex::new().first(), None);
    }

    #[test]
    fn extreme_times_round_trip() {
        // i64::MIN is where an empty index's open run points: it must start the run, not
        // continue a run that does not exist.
        for times in [
            ts(&[i64::MIN, i64::MIN, 5]),
            ts(&[i64::MIN, 0, i64::MAX]),
            ts(&[7, i64::MIN, i64::MIN]),
            ts(&[i64::MAX, i64::MIN]),
        ] {
            let index: TimeIndex = times.iter().copied().collect();
            assert_eq!(index, times);
            assert_eq!(index.len(), times.len());
            assert_eq!(index.last(), times.last().copied());
        }
    }

    proptest! {
        #[test]
        fn days_and_partition_points_agree_with_the_times(
            v in proptest::collection::vec(1i64..40, 0..200),
            start in -500i64..500,
            day in 1i64..50,
            probe in -600i64..9000,
        ) {
            let mut t = start;
            // Steps of 1 and multiples of 3 plus 1: runs of several lengths, and gaps.
            let times: Vec<Timestamp> = v.iter().map(|d| { t += if d % 2 == 0 { 1 } else { d / 3 * 3 + 1 }; Timestamp(t) }).collect();
            let idx: TimeIndex = times.iter().copied().collect();
            let mut want: Vec<(i64, usize, usize)> = Vec::new();
            for (i, t) in times.iter().enumerate() {
                want.push((t.0.div_euclid(day), i, 1));
            }
            let mut got = Vec::new();
            idx.days(day, |d, last, count| got.push((d, last, count)));
            // Expanded back to one entry per time: each stretch's times are its day's.
            let mut expanded = Vec::new();
            for (d, last, count) in got {
                for i in last + 1 - count..=last {
                    expanded.push((d, i, 1));
                }
            }
            prop_assert_eq!(expanded, want);
            prop_assert_eq!(
                idx.count_before(Timestamp(probe), false),
                times.partition_point(|x| x.0 < probe)
            );
            prop_assert_eq!(
                idx.count_before(Timestamp(probe), true),
                times.partition_point(|x| x.0 <= probe)
            );
        }

        #[test]
        fn round_trips_any_sequence(v in proptest::collection::vec(-5i64..5, 0..200), big in any::<i64>()) {
            // Small steps (often repeating) and one arbitrary value, to reach runs, gaps,
            // duplicates, descending steps and wrap-around.
            let mut times = ts(&v);
            times.insert(times.len() / 2, Timestamp(big));
            let index: TimeIndex = times.iter().copied().collect();
            prop_assert_eq!(index.len(), times.len());
            prop_assert_eq!(index.to_vec(), times.clone());
            prop_assert_eq!(index.iter().collect::<Vec<_>>(), times.clone());
            for (i, t) in times.iter().enumerate() {
                prop_assert_eq!(index.get(i), Some(*t));
            }
        }
    }
}
