//! `PerformanceMonitor`: live counters, rates and latency histograms.
//!
//! The monitor records two latencies per message in HDR histograms: the
//! **handler time** (the handler's future, from first poll to its reply)
//! and the **queue time** (from the moment the frame's bytes were read off
//! the socket to the moment its handler started: time spent behind the
//! frames read with it). A sampler turns the connection counters into
//! per-second rates once a second. [`TcpGameService::get_server_stats`]
//! reads it all at once.
//!
//! Histograms are sharded by user id, so sessions on different threads
//! rarely record under the same lock; a read merges the shards.
//!
//! [`TcpGameService::get_server_stats`]: crate::TcpGameService::get_server_stats

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::connection::ConnectionStats;

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

/// A latency histogram split into independently locked shards.
struct ShardedHistogram {
    shards: Vec<Mutex<Histogram<u64>>>,
}

impl ShardedHistogram {
    fn new() -> Self {
        ShardedHistogram {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(
                        Histogram::new_with_bounds(1, MAX_NANOS, 2)
                            .expect("static histogram bounds are valid"),
                    )
                })
                .collect(),
        }
    }

    fn record(&self, key: u32, elapsed: Duration) {
        let nanos = (elapsed.as_nanos() as u64).clamp(1, MAX_NANOS);
        let mut shard = self.shards[key as usize % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        shard.saturating_record(nanos);
    }

    fn count(&self) -> u64 {
        self.shards
            .iter()
            .map(|shard| shard.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    fn summary(&self) -> LatencySummary {
        let mut merged = Histogram::<u64>::new_with_bounds(1, MAX_NANOS, 2)
            .expect("static histogram bounds are valid");
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            let _ = merged.add(&*shard);
        }
        LatencySummary::of_nanos(&merged)
    }
}

/// Per-second rates, updated by the sampler.
#[derive(Debug, Default)]
struct Rates {
    messages: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

struct Inner {
    handler_time: ShardedHistogram,
    queue_time: ShardedHistogram,
    end_to_end: ShardedHistogram,
    rates: Rates,
    started: Instant,
}

/// Counters and latency histograms of a running server.
///
/// Cheap to clone; every clone is the same monitor.
#[derive(Clone)]
pub struct PerformanceMonitor {
    inner: Arc<Inner>,
}

impl fmt::Debug for PerformanceMonitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerformanceMonitor")
            .field("messages", &self.messages_processed())
            .finish_non_exhaustive()
    }
}

impl Default for PerformanceMonitor {
    fn default() -> Self {
        PerformanceMonitor::new()
    }
}

impl PerformanceMonitor {
    /// An empty monitor.
    pub fn new() -> Self {
        PerformanceMonitor {
            inner: Arc::new(Inner {
                handler_time: ShardedHistogram::new(),
                queue_time: ShardedHistogram::new(),
                end_to_end: ShardedHistogram::new(),
                rates: Rates::default(),
                started: Instant::now(),
            }),
        }
    }

    /// Records one handled message: its time queued and its handler time.
    pub fn record_message(&self, user_id: u32, queued: Duration, handler: Duration) {
        self.inner.queue_time.record(user_id, queued);
        self.inner.handler_time.record(user_id, handler);
    }

    /// Records the end-to-end time of a message the client stamped
    /// ([`Frame::Stamped`](crate::wire::Frame::Stamped)): from its send time
    /// to the end of its handler. Meaningful when client and server clocks
    /// agree (the same machine, or synchronized clocks).
    pub fn record_end_to_end(&self, user_id: u32, elapsed: Duration) {
        self.inner.end_to_end.record(user_id, elapsed);
    }

    /// Percentiles of the end-to-end time of stamped messages.
    pub fn end_to_end_latency(&self) -> LatencySummary {
        self.inner.end_to_end.summary()
    }

    /// Messages whose handler time this monitor recorded.
    ///
    /// The count comes from the handler-time histogram, not from a shared
    /// counter that every session would write to. It stays at 0 when the
    /// server runs with `enable_performance_monitor` off; the server's own
    /// count, which does not depend on it, is
    /// [`ServerStats::messages_processed`].
    pub fn messages_processed(&self) -> u64 {
        self.inner.handler_time.count()
    }

    /// Percentiles of the handler time.
    pub fn handler_latency(&self) -> LatencySummary {
        self.inner.handler_time.summary()
    }

    /// Percentiles of the time messages waited before their handler ran.
    pub fn queue_latency(&self) -> LatencySummary {
        self.inner.queue_time.summary()
    }

    /// Time since the monitor was created.
    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    /// Updates the per-second rates from counter deltas over `period`.
    pub(crate) fn set_rates(&self, period: Duration, messages: u64, bytes_in: u64, bytes_out: u64) {
        let per_second = |delta: u64| (delta as f64 / period.as_secs_f64().max(1e-9)) as u64;
        let rates = &self.inner.rates;
        rates
            .messages
            .store(per_second(messages), Ordering::Relaxed);
        rates
            .bytes_in
            .store(per_second(bytes_in), Ordering::Relaxed);
        rates
            .bytes_out
            .store(per_second(bytes_out), Ordering::Relaxed);
    }

    fn rate(&self, which: fn(&Rates) -> &AtomicU64) -> u64 {
        which(&self.inner.rates).load(Ordering::Relaxed)
    }
}

/// Everything `get_server_stats` reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Sessions connected now.
    pub connection_count: usize,
    /// Messages handled since start.
    pub messages_processed: u64,
    /// Messages handled in the last second.
    pub messages_per_second: u64,
    /// Bytes received in the last second.
    pub bytes_in_per_second: u64,
    /// Bytes written in the last second.
    pub bytes_out_per_second: u64,
    /// Handler time percentiles.
    pub handler_latency: LatencySummary,
    /// Time-queued percentiles.
    pub queue_latency: LatencySummary,
    /// Client stamp to end of handler, for stamped messages.
    pub end_to_end_latency: LatencySummary,
    /// Whether read buffers come from the memory pool.
    pub enhanced_memory_pool_enabled: bool,
    /// Whether the task scheduler runs.
    pub async_scheduler_enabled: bool,
    /// Whether latencies are recorded (`enable_performance_monitor`).
    pub performance_monitor_enabled: bool,
    /// The connection counters.
    pub connections: ConnectionStats,
    /// Time since the server was created.
    pub uptime: Duration,
}

impl ServerStats {
    pub(crate) fn collect(
        monitor: &PerformanceMonitor,
        connections: ConnectionStats,
        enhanced_memory_pool_enabled: bool,
        async_scheduler_enabled: bool,
        performance_monitor_enabled: bool,
    ) -> Self {
        ServerStats {
            connection_count: connections.current_connections,
            messages_processed: connections.messages_in,
            messages_per_second: monitor.rate(|r| &r.messages),
            bytes_in_per_second: monitor.rate(|r| &r.bytes_in),
            bytes_out_per_second: monitor.rate(|r| &r.bytes_out),
            handler_latency: monitor.handler_latency(),
            queue_latency: monitor.queue_latency(),
            end_to_end_latency: monitor.end_to_end_latency(),
            enhanced_memory_pool_enabled,
            async_scheduler_enabled,
            performance_monitor_enabled,
            connections,
            uptime: monitor.uptime(),
        }
    }
}

impl fmt::Display for ServerStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on = |b: bool| if b { "on" } else { "off" };
        writeln!(f, "connections:   {}", self.connection_count)?;
        writeln!(
            f,
            "messages:      {} ({} /s)",
            self.messages_processed, self.messages_per_second
        )?;
        writeln!(
            f,
            "bytes:         {} /s in, {} /s out",
            self.bytes_in_per_second, self.bytes_out_per_second
        )?;
        writeln!(f, "handler time:  {}", self.handler_latency)?;
        writeln!(f, "time queued:   {}", self.queue_latency)?;
        writeln!(f, "end to end:    {}", self.end_to_end_latency)?;
        write!(
            f,
            "memory pool:   {}, scheduler: {}, monitor: {}",
            on(self.enhanced_memory_pool_enabled),
            on(self.async_scheduler_enabled),
            on(self.performance_monitor_enabled)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_recorded_samples() {
        let monitor = PerformanceMonitor::new();
        for micros in 1..=1000u64 {
            monitor.record_message(
                micros as u32,
                Duration::from_micros(1),
                Duration::from_micros(micros),
            );
        }
        let handler = monitor.handler_latency();
        assert_eq!(handler.count, 1000);
        // Two significant digits: within 1% of the exact value.
        assert!((handler.p50_us - 500.0).abs() <= 5.0, "{handler}");
        assert!((handler.p99_us - 990.0).abs() <= 10.0, "{handler}");
        assert!((handler.max_us - 1000.0).abs() <= 10.0, "{handler}");
        assert_eq!(monitor.messages_processed(), 1000);
    }

    #[test]
    fn rates_are_per_second() {
        let monitor = PerformanceMonitor::new();
        monitor.set_rates(Duration::from_millis(500), 100, 1000, 4000);
        assert_eq!(monitor.rate(|r| &r.messages), 200);
        assert_eq!(monitor.rate(|r| &r.bytes_out), 8000);
    }
}
