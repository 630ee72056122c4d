//! Counts by a small label, for the operator's metrics: sessions closed by
//! close code, error frames by error code, refusals by reason, and handler
//! times by variant. Each is a fixed array of atomics, counted where the
//! event happens and read on a scrape.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// One count per label, the label being an index below `N`.
#[derive(Debug)]
pub(crate) struct Tally<const N: usize>([AtomicU64; N]);

impl<const N: usize> Default for Tally<N> {
    fn default() -> Self {
        Tally(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl<const N: usize> Tally<N> {
    /// Counts one under `index`; an index past the end counts nowhere.
    pub(crate) fn add(&self, index: usize) {
        if let Some(count) = self.0.get(index) {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counts, by index.
    pub(crate) fn counts(&self) -> [u64; N] {
        std::array::from_fn(|i| self.0[i].load(Ordering::Relaxed))
    }
}

/// The upper bounds, in seconds, of the handler-time buckets: from 10 µs
/// (a handler that only replies) to a second (one that waits on a store).
pub(crate) const HANDLER_BUCKETS: [f64; 14] = [
    0.000_01, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 1.0,
];

/// Handler times of one variant: a count per bucket (not cumulative), and
/// the sum and count of every time.
#[derive(Debug, Default)]
struct VariantTimes {
    buckets: Tally<{ HANDLER_BUCKETS.len() }>,
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

/// What [`HandlerTimes::snapshot`] gives for one variant.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct VariantHistogram {
    pub(crate) variant: &'static str,
    /// Counts between each bound of [`HANDLER_BUCKETS`] and the one
    /// before, not cumulative (the encoder sums them); times past the last
    /// bound are in `count` alone.
    pub(crate) buckets: [u64; HANDLER_BUCKETS.len()],
    pub(crate) sum_seconds: f64,
    pub(crate) count: u64,
}

/// Handler times by variant of the protocol being served.
#[derive(Debug)]
pub(crate) struct HandlerTimes {
    variants: Vec<(&'static str, VariantTimes)>,
}

impl HandlerTimes {
    pub(crate) fn new(names: impl IntoIterator<Item = &'static str>) -> Self {
        HandlerTimes {
            variants: names
                .into_iter()
                .map(|name| (name, VariantTimes::default()))
                .collect(),
        }
    }

    /// Records a handler time of the variant at `index`.
    pub(crate) fn record(&self, index: usize, time: Duration) {
        let Some((_, times)) = self.variants.get(index) else {
            return;
        };
        let seconds = time.as_secs_f64();
        let bucket = HANDLER_BUCKETS.partition_point(|&bound| bound < seconds);
        // Past the last bound: counted in the sum and count only (+Inf).
        times.buckets.add(bucket);
        let nanos = u64::try_from(time.as_nanos()).unwrap_or(u64::MAX);
        times.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        times.count.fetch_add(1, Ordering::Relaxed);
    }

    /// The histograms of the variants that were handled at least once.
    pub(crate) fn snapshot(&self) -> Vec<VariantHistogram> {
        self.variants
            .iter()
            .filter_map(|(variant, times)| {
                let count = times.count.load(Ordering::Relaxed);
                (count > 0).then(|| VariantHistogram {
                    variant,
                    buckets: times.buckets.counts(),
                    sum_seconds: times.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
                    count,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_fall_in_their_buckets() {
        let times = HandlerTimes::new(["Move", "Chat"]);
        times.record(0, Duration::from_micros(5));
        times.record(0, Duration::from_micros(700));
        times.record(0, Duration::from_secs(3));
        times.record(7, Duration::from_micros(5));
        let snapshot = times.snapshot();
        assert_eq!(snapshot.len(), 1, "Chat was never handled");
        let moved = &snapshot[0];
        assert_eq!(moved.variant, "Move");
        assert_eq!(moved.count, 3);
        assert_eq!(moved.buckets[0], 1, "5 µs is under 10 µs");
        assert_eq!(moved.buckets[5], 1, "700 µs is between 500 µs and 1 ms");
        assert_eq!(
            moved.buckets.iter().sum::<u64>(),
            2,
            "3 s is past every bound"
        );
        assert!((moved.sum_seconds - 3.000_705).abs() < 1e-9);
    }
}
