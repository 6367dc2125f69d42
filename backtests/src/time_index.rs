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
