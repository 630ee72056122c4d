//! Latency histograms: sharded for recording, merged for reading.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

const SHARDS: usize = 16;
/// Longest latency recorded exactly, in nanoseconds (60 s); longer ones are
/// clamped to it.
const MAX_NANOS: u64 = 60_000_000_000;

/// Latency percentiles of one histogram, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct LatencySummary {
    /// Samples recorded.
    pub count: u64,
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest sample.
    pub max_us: f64,
}

impl LatencySummary {
    /// The percentiles of a histogram of nanoseconds.
    pub(crate) fn of_nanos(histogram: &Histogram<u64>) -> Self {
        let us = |nanos: u64| nanos as f64 / 1000.0;
        LatencySummary {
            count: histogram.len(),
            p50_us: us(histogram.value_at_quantile(0.50)),
            p99_us: us(histogram.value_at_quantile(0.99)),
            p999_us: us(histogram.value_at_quantile(0.999)),
            max_us: us(histogram.max()),
        }
    }
}

impl fmt::Display for LatencySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs ({} samples)",
            self.p50_us, self.p99_us, self.p999_us, self.max_us, self.count
        )
    }
}

/// A latency histogram split into independently locked shards, so that
/// sessions on different threads rarely record under the same lock.
pub(super) struct ShardedHistogram {
    shards: Vec<Mutex<Histogram<u64>>>,
}

fn empty() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_NANOS, 2).expect("static histogram bounds are valid")
}

impl ShardedHistogram {
    pub(super) fn new() -> Self {
        ShardedHistogram {
            shards: (0..SHARDS).map(|_| Mutex::new(empty())).collect(),
        }
    }

    pub(super) fn record(&self, key: u32, elapsed: Duration) {
        let nanos = (elapsed.as_nanos() as u64).clamp(1, MAX_NANOS);
        let mut shard = self.shards[key as usize % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        shard.saturating_record(nanos);
    }

    pub(super) fn count(&self) -> u64 {
        self.shards
            .iter()
            .map(|shard| shard.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    pub(super) fn summary(&self) -> LatencySummary {
        let mut merged = empty();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            let _ = merged.add(&*shard);
        }
        LatencySummary::of_nanos(&merged)
    }
}
