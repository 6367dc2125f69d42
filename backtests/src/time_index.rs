//! The time axis of an equity curve, stored as runs of evenly spaced timestamps.
//!
//! Bar data is almost always regular (one bar a minute, an hour, a day), with the odd gap. A
//! run of `len` times `start, start + step, ...` takes 24 bytes however long it is, so a
//! 10-million-bar backtest records its time axis in a handful of runs instead of 80 MB, and
//! appending a time that continues the current run is one compare.

use kairos_strategies::Timestamp;

/// A sequence of timestamps, run-length coded: appending the next time of an evenly spaced
/// run costs no memory. Indexing is `O(log runs)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimeIndex {
    runs: Vec<Run>,
    len: usize,
    /// The time that would continue the last run.
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

impl TimeIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `t`.
    #[inline(always)]
    pub fn push(&mut self, t: Timestamp) {
        if t.0 == self.next
            && let Some(run) = self.runs.last_mut()
        {
            run.len += 1;
            self.next = t.0.wrapping_add(run.step);
            self.len += 1;
        } else {
            self.push_slow(t);
        }
    }

    /// Appends the time of every item of `items` (read by `time`), as many [`TimeIndex::push`]
    /// calls would: while the times continue the current run, each costs one compare and one
    /// add, and the run's length is written once.
    pub fn extend_by<T>(&mut self, items: &[T], time: impl Fn(&T) -> Timestamp) {
        let mut i = 0;
        while i < items.len() {
            if let Some(run) = self.runs.last_mut()
                && run.len >= 2
            {
                let (step, first) = (run.step, i);
                let mut next = self.next;
                // Four at a time while all four continue the run, then one at a time.
                let (s2, s3, s4) =
                    (step.wrapping_mul(2), step.wrapping_mul(3), step.wrapping_mul(4));
                while let Some([a, b, c, d]) = items.get(i..i + 4) {
                    let off = (time(a).0 ^ next)
                        | (time(b).0 ^ next.wrapping_add(step))
                        | (time(c).0 ^ next.wrapping_add(s2))
                        | (time(d).0 ^ next.wrapping_add(s3));
                    if off != 0 {
                        break;
                    }
                    next = next.wrapping_add(s4);
                    i += 4;
                }
                while i < items.len() && time(&items[i]).0 == next {
                    next = next.wrapping_add(step);
                    i += 1;
                }
                run.len += i - first;
                self.len += i - first;
                self.next = next;
                if i == items.len() {
                    break;
                }
            }
            self.push(time(&items[i]));
            i += 1;
        }
    }

    #[cold]
    #[inline(never)]
    fn push_slow(&mut self, t: Timestamp) {
        match self.runs.last_mut() {
            // A run of one takes its step from the second time.
            Some(run) if run.len == 1 => {
                run.step = t.0.wrapping_sub(run.start);
                run.len = 2;
                self.next = t.0.wrapping_add(run.step);
            }
            _ => {
                self.runs.push(Run { first: self.len, start: t.0, step: 0, len: 1 });
                self.next = t.0;
            }
        }
        self.len += 1;
    }

    /// Number of timestamps.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `i`-th timestamp.
    pub fn get(&self, i: usize) -> Option<Timestamp> {
        if i >= self.len {
            return None;
        }
        let r = self.runs.partition_point(|r| r.first <= i) - 1;
        let run = &self.runs[r];
        Some(run.at(i - run.first))
    }

    /// The first timestamp.
    pub fn first(&self) -> Option<Timestamp> {
        self.get(0)
    }

    /// The last timestamp.
    pub fn last(&self) -> Option<Timestamp> {
        self.len.checked_sub(1).and_then(|i| self.get(i))
    }

    /// The timestamps in order.
    pub fn iter(&self) -> impl Iterator<Item = Timestamp> + '_ {
        self.runs.iter().flat_map(|run| (0..run.len).map(|k| run.at(k)))
    }

    /// The timestamps as a vector.
    pub fn to_vec(&self) -> Vec<Timestamp> {
        let mut out = Vec::with_capacity(self.len);
        out.extend(self.iter());
        out
    }

    /// How many evenly spaced runs the times form.
    pub fn runs(&self) -> usize {
        self.runs.len()
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
        self.len == other.len() && self.iter().zip(other).all(|(a, b)| a == *b)
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

    proptest! {
        #[test]
        fn extend_by_matches_push_on_runs(
            steps in proptest::collection::vec((1i64..4, 0usize..50), 1..8),
        ) {
            // Long regular runs with gaps between them: what bar data looks like.
            let mut times = Vec::new();
            let mut t = 0i64;
            for (step, n) in steps {
                for _ in 0..n {
                    times.push(Timestamp(t));
                    t += step;
                }
                t += 1000;
            }
            let pushed: TimeIndex = times.iter().copied().collect();
            let mut ext = TimeIndex::new();
            ext.extend_by(&times, |t| *t);
            prop_assert_eq!(ext, pushed);
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
            // `extend_by` builds the same index as pushing one at a time, from any start.
            let split = times.len() / 3;
            let mut ext: TimeIndex = times[..split].iter().copied().collect();
            ext.extend_by(&times[split..], |t| *t);
            prop_assert_eq!(&ext, &index);
            let mut whole = TimeIndex::new();
            whole.extend_by(&times, |t| *t);
            prop_assert_eq!(&whole, &index);
        }
    }
}
