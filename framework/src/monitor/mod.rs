//! `PerformanceMonitor`: the one owner of the server's figures.
//!
//! The monitor holds every counter (connections, frames, bytes, errors),
//! the per-second rates a sampler derives from them once a second, and two
//! latency histograms per message: the
//! **handler time** (the handler's future, from first poll to its reply)
//! and the **queue time** (from the moment the frame's bytes were read off
//! the socket to the moment its handler started: time spent behind the
//! frames read with it). Other modules change figures only through its
//! methods. [`TcpGameService::get_server_stats`] reads it all at once.
//!
//! [`TcpGameService::get_server_stats`]: crate::TcpGameService::get_server_stats

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

mod counters;
mod histogram;
mod tallies;

pub use counters::ConnectionStats;
use counters::ServerCounters;
pub(crate) use counters::{Event, SessionCounters};
pub use histogram::LatencySummary;
use histogram::ShardedHistogram;
#[cfg_attr(
    not(feature = "ops"),
    expect(unused_imports, reason = "read by the metrics")
)]
pub(crate) use tallies::{HANDLER_BUCKETS, VariantHistogram};
use tallies::{HandlerTimes, Tally};

/// Close codes counted: 0 for a session that ended without a close frame
/// (the client closed, or the connection was lost), then 1 to 12.
pub(crate) const CLOSE_CODES: usize = 13;
/// Error codes counted: 1 to 8 (0 is unused).
pub(crate) const ERROR_CODES: usize = 9;

/// Per-second rates, updated by the sampler.
#[derive(Debug, Default)]
struct Rates {
    messages: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

struct Inner {
    counters: ServerCounters,
    /// Whether handler and queue times are recorded
    /// (`enable_performance_monitor`); the counters always are.
    latencies: bool,
    handler_time: ShardedHistogram,
    queue_time: ShardedHistogram,
    end_to_end: ShardedHistogram,
    /// Handler times by variant, once the protocol served is known.
    handler_times: std::sync::OnceLock<HandlerTimes>,
    /// Sessions that ended, by close code.
    closes: Tally<CLOSE_CODES>,
    /// Error frames sent, by error code.
    error_frames: Tally<ERROR_CODES>,
    /// Connections refused: at `max_connections`, at
    /// `max_connections_per_ip`, at `max_pending_handshakes`.
    refusals: Tally<3>,
    rates: Rates,
    started: Instant,
}

/// Counters, rates and latency histograms of a running server.
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
        Self::recording_latencies(true)
    }

    /// An empty monitor that records handler and queue times only when
    /// `latencies` is set.
    pub(crate) fn recording_latencies(latencies: bool) -> Self {
        PerformanceMonitor {
            inner: Arc::new(Inner {
                counters: ServerCounters::default(),
                latencies,
                handler_time: ShardedHistogram::new(),
                queue_time: ShardedHistogram::new(),
                end_to_end: ShardedHistogram::new(),
                handler_times: std::sync::OnceLock::new(),
                closes: Tally::default(),
                error_frames: Tally::default(),
                refusals: Tally::default(),
                rates: Rates::default(),
                started: Instant::now(),
            }),
        }
    }

    /// Whether handler and queue times are recorded: two clock reads per
    /// message, skipped when `enable_performance_monitor` is off.
    pub(crate) fn records_latencies(&self) -> bool {
        self.inner.latencies
    }

    /// Counts one `event`.
    pub(crate) fn count(&self, event: Event) {
        self.inner.counters.count(event);
    }

    /// How many `event`s were counted.
    pub(crate) fn total(&self, event: Event) -> u64 {
        self.inner.counters.total(event)
    }

    /// Moves a session's counts into the server totals. Called while the
    /// registry's write lock is held, as the session leaves it, and once
    /// more when its writer has finished.
    pub(crate) fn fold(&self, session: &SessionCounters) {
        self.inner.counters.fold(session);
    }

    /// The server-wide counters plus those of the `live` sessions. Called
    /// under the registry's read lock, so no session is folded meanwhile
    /// and the figures never go backwards.
    pub(crate) fn connection_stats<'a>(
        &self,
        current_connections: usize,
        live: impl Iterator<Item = &'a SessionCounters>,
    ) -> ConnectionStats {
        self.inner.counters.snapshot(current_connections, live)
    }

    /// Names the variants of the protocol served, for handler times by
    /// variant. The first call wins: a server serves one protocol.
    pub(crate) fn describe_variants(&self, names: impl IntoIterator<Item = &'static str>) {
        let _ = self.inner.handler_times.set(HandlerTimes::new(names));
    }

    /// Records the handler time of the variant at `index`.
    pub(crate) fn record_variant(&self, index: usize, handler: Duration) {
        if let Some(times) = self.inner.handler_times.get() {
            times.record(index, handler);
        }
    }

    /// Handler times by variant, for the variants handled so far.
    #[cfg_attr(
        not(feature = "ops"),
        expect(dead_code, reason = "read by the metrics")
    )]
    pub(crate) fn variant_histograms(&self) -> Vec<VariantHistogram> {
        self.inner
            .handler_times
            .get()
            .map(HandlerTimes::snapshot)
            .unwrap_or_default()
    }

    /// Counts a session that ended, by its close code (`None`: no close
    /// frame).
    pub(crate) fn count_close(&self, code: Option<u16>) {
        self.inner.closes.add(code.map_or(0, usize::from));
    }

    /// Counts an error frame sent.
    pub(crate) fn count_error_frame(&self, code: u16) {
        self.inner.error_frames.add(usize::from(code));
    }

    /// Counts a refused connection by the bound it met (0: the server's,
    /// 1: the address's, 2: the handshakes').
    pub(crate) fn count_refusal(&self, bound: usize) {
        self.inner.refusals.add(bound);
        self.count(Event::ConnectionRefused);
    }

    /// Sessions ended, by close code (index 0: without a close frame).
    #[cfg_attr(
        not(feature = "ops"),
        expect(dead_code, reason = "read by the metrics")
    )]
    pub(crate) fn closes(&self) -> [u64; CLOSE_CODES] {
        self.inner.closes.counts()
    }

    /// Error frames sent, by error code.
    #[cfg_attr(
        not(feature = "ops"),
        expect(dead_code, reason = "read by the metrics")
    )]
    pub(crate) fn error_frames(&self) -> [u64; ERROR_CODES] {
        self.inner.error_frames.counts()
    }

    /// Refusals, by bound: the server's, the address's, the handshakes'.
    #[cfg_attr(
        not(feature = "ops"),
        expect(dead_code, reason = "read by the metrics")
    )]
    pub(crate) fn refusals(&self) -> [u64; 3] {
        self.inner.refusals.counts()
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

    /// Turns the counters into per-second rates once a second, until
    /// `shutdown`. `stats` reads the server-wide counters.
    pub(crate) async fn sample_rates(
        self,
        stats: impl Fn() -> ConnectionStats,
        shutdown: CancellationToken,
    ) {
        let period = Duration::from_secs(1);
        let mut ticks = tokio::time::interval(period);
        let mut last = Throughput::of(&stats());
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            let now = Throughput::of(&stats());
            self.set_rates(period, now.since(last));
            last = now;
        }
    }

    fn set_rates(&self, period: Duration, delta: Throughput) {
        let per_second = |delta: u64| (delta as f64 / period.as_secs_f64().max(1e-9)) as u64;
        let rates = &self.inner.rates;
        let store = |rate: &AtomicU64, delta| rate.store(per_second(delta), Ordering::Relaxed);
        store(&rates.messages, delta.messages);
        store(&rates.bytes_in, delta.bytes_in);
        store(&rates.bytes_out, delta.bytes_out);
    }

    fn rate(&self, which: fn(&Rates) -> &AtomicU64) -> u64 {
        which(&self.inner.rates).load(Ordering::Relaxed)
    }
}

/// The counters the rates are derived from.
#[derive(Debug, Clone, Copy)]
struct Throughput {
    messages: u64,
    bytes_in: u64,
    bytes_out: u64,
}

impl Throughput {
    fn of(stats: &ConnectionStats) -> Self {
        Throughput {
            messages: stats.messages_in,
            bytes_in: stats.bytes_in,
            bytes_out: stats.bytes_out,
        }
    }

    /// What happened since `earlier`. The counters never go backwards;
    /// saturating keeps a rate at 0 rather than wrapping should one ever do.
    fn since(self, earlier: Throughput) -> Throughput {
        Throughput {
            messages: self.messages.saturating_sub(earlier.messages),
            bytes_in: self.bytes_in.saturating_sub(earlier.bytes_in),
            bytes_out: self.bytes_out.saturating_sub(earlier.bytes_out),
        }
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
        let delta = Throughput {
            messages: 100,
            bytes_in: 1000,
            bytes_out: 4000,
        };
        monitor.set_rates(Duration::from_millis(500), delta);
        assert_eq!(monitor.rate(|r| &r.messages), 200);
        assert_eq!(monitor.rate(|r| &r.bytes_out), 8000);
    }
}
