//! The server's figures as Prometheus metrics, every one named
//! `gamewire_*`.
//!
//! Nothing is counted twice: the metrics are read from the
//! [`PerformanceMonitor`](crate::PerformanceMonitor), the registries of
//! connections and rooms, the pool and the scheduler at each scrape, by a
//! prometheus-client [`Collector`]. Counters are the monitor's, which never
//! go backwards.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::cluster::ClusterStats;
use crate::connection::ConnectionService;
use crate::monitor::{HANDLER_BUCKETS, PerformanceMonitor};
use crate::pool::EnhancedMemoryPool;
use crate::room::RoomConnectionService;
use crate::scheduler::{AsyncTaskScheduler, TaskPriority};
use crate::wire::{CloseCode, ErrorCode};

/// What the metrics are read from.
#[derive(Debug, Clone)]
pub(crate) struct Sources {
    pub(crate) monitor: PerformanceMonitor,
    pub(crate) connections: ConnectionService,
    pub(crate) rooms: RoomConnectionService,
    pub(crate) pool: Option<EnhancedMemoryPool>,
    pub(crate) scheduler: Option<AsyncTaskScheduler>,
}

/// A registry whose one collector reads `sources`.
pub(super) fn registry(sources: Sources) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(GamewireCollector(sources)));
    registry
}

#[derive(Debug)]
struct GamewireCollector(Sources);

type Result = std::result::Result<(), std::fmt::Error>;

fn counter(encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: u64) -> Result {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: i64) -> Result {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// The `gamewire_cluster_*` metrics of a node of a cluster.
fn encode_cluster(e: &mut DescriptorEncoder<'_>, cluster: &ClusterStats) -> Result {
    gauge(
        e,
        "gamewire_cluster_up",
        "1 while the cluster's shared service (Redis) answers, else 0.",
        i64::from(cluster.up),
    )?;
    gauge(
        e,
        "gamewire_cluster_nodes",
        "The other nodes of the cluster this node knows of.",
        i64::try_from(cluster.nodes).unwrap_or(i64::MAX),
    )?;
    counter(
        e,
        "gamewire_cluster_published",
        "Room messages handed to the other nodes.",
        cluster.published,
    )?;
    counter(
        e,
        "gamewire_cluster_received",
        "Messages from other nodes delivered here.",
        cluster.received,
    )?;
    counter(
        e,
        "gamewire_cluster_dropped",
        "Messages from other nodes dropped because this node fell behind.",
        cluster.dropped,
    )?;
    counter(
        e,
        "gamewire_cluster_undelivered",
        "Room messages that reached this node's members only.",
        cluster.undelivered,
    )?;
    counter(
        e,
        "gamewire_cluster_disconnects",
        "Times the connection to the cluster's shared service was lost.",
        cluster.disconnects,
    )
}

/// A counter with one label, a sample per `(label value, count)`.
fn counters<'a>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    label: &'static str,
    samples: impl IntoIterator<Item = (&'a str, u64)>,
) -> Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value, count) in samples {
        let labels = [(label, value)];
        ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// The snake_case name of a close code's variant, `client_closed` for a
/// session that ended without one.
fn close_label(code: usize) -> String {
    match u16::try_from(code).ok().and_then(CloseCode::from_u16) {
        Some(code) => snake(&format!("{code:?}")),
        None if code == 0 => "client_closed".to_owned(),
        None => code.to_string(),
    }
}

fn error_label(code: usize) -> String {
    match u16::try_from(code).ok().and_then(ErrorCode::from_u16) {
        Some(code) => snake(&format!("{code:?}")),
        None => code.to_string(),
    }
}

fn snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}

impl Collector for GamewireCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result {
        let Sources {
            monitor,
            connections,
            rooms,
            pool,
            scheduler,
        } = &self.0;
        let e = &mut encoder;
        let stats = connections.connection_stats();
        let signed = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);

        gauge(
            e,
            "gamewire_connections",
            "Sessions connected now.",
            signed(stats.current_connections),
        )?;
        counter(
            e,
            "gamewire_connections_opened",
            "Sessions that completed the handshake.",
            stats.total_connections,
        )?;
        let refusals = monitor.refusals();
        counters(
            e,
            "gamewire_connections_refused",
            "Connections refused before the handshake, by the bound they met.",
            "reason",
            [
                ("max_connections", refusals[0]),
                ("max_connections_per_ip", refusals[1]),
                ("max_pending_handshakes", refusals[2]),
            ],
        )?;
        let closes = monitor.closes();
        let close_labels: Vec<String> = (0..closes.len()).map(close_label).collect();
        counters(
            e,
            "gamewire_connections_closed",
            "Connections that ended after admission, by close code (client_closed: without a close frame).",
            "code",
            close_labels.iter().map(String::as_str).zip(closes),
        )?;
        counter(
            e,
            "gamewire_frames_received",
            "Frames received, handshakes and pongs included.",
            stats.frames_in,
        )?;
        counter(
            e,
            "gamewire_bytes_received",
            "Bytes received, length prefixes included.",
            stats.bytes_in,
        )?;
        counter(
            e,
            "gamewire_messages_received",
            "Messages of the protocol dispatched.",
            stats.messages_in,
        )?;
        counter(
            e,
            "gamewire_frames_sent",
            "Frames written to clients.",
            stats.frames_out,
        )?;
        counter(
            e,
            "gamewire_bytes_sent",
            "Bytes written to clients.",
            stats.bytes_out,
        )?;
        counter(
            e,
            "gamewire_frames_dropped",
            "Frames dropped for a full queue.",
            stats.frames_dropped,
        )?;
        counter(
            e,
            "gamewire_slow_consumers",
            "Clients disconnected for a full queue or a blocked write.",
            stats.slow_consumer_disconnects,
        )?;
        counter(
            e,
            "gamewire_heartbeat_timeouts",
            "Clients disconnected by the heartbeat.",
            stats.heartbeat_timeouts,
        )?;
        counter(
            e,
            "gamewire_handler_errors",
            "Handler calls that returned an error.",
            stats.handler_errors,
        )?;
        counter(
            e,
            "gamewire_handler_panics",
            "Handler calls that panicked.",
            stats.handler_panics,
        )?;
        let errors = monitor.error_frames();
        let error_labels: Vec<String> = (1..errors.len()).map(error_label).collect();
        counters(
            e,
            "gamewire_error_frames",
            "Error frames sent, by error code.",
            "code",
            error_labels
                .iter()
                .map(String::as_str)
                .zip(errors[1..].iter().copied()),
        )?;
        gauge(
            e,
            "gamewire_rooms",
            "Rooms that exist now, empty ones included.",
            signed(rooms.room_count()),
        )?;
        gauge(
            e,
            "gamewire_room_members",
            "Memberships of rooms now: a user in two rooms counts twice.",
            signed(rooms.member_count()),
        )?;

        let histograms = monitor.variant_histograms();
        let mut family = e.encode_descriptor(
            "gamewire_handler_duration_seconds",
            "Handler time by variant (when enable_performance_monitor is on).",
            None,
            MetricType::Histogram,
        )?;
        for histogram in &histograms {
            let labels = [("variant", histogram.variant)];
            let buckets: Vec<(f64, u64)> = HANDLER_BUCKETS
                .iter()
                .copied()
                .zip(histogram.buckets)
                .collect();
            family
                .encode_family(&labels)?
                .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                    histogram.sum_seconds,
                    histogram.count,
                    &buckets,
                    None,
                )?;
        }

        if let Some(cluster) = connections.adapter().and_then(|adapter| adapter.stats()) {
            encode_cluster(e, &cluster)?;
        }
        if let Some(pool) = pool {
            let stats = pool.stats();
            counter(
                e,
                "gamewire_pool_hits",
                "Buffers served by reuse.",
                stats.hits,
            )?;
            counter(
                e,
                "gamewire_pool_misses",
                "Buffers that had to be allocated.",
                stats.misses,
            )?;
            gauge(
                e,
                "gamewire_pool_in_use",
                "Buffers handed out now.",
                i64::try_from(stats.in_use).unwrap_or(i64::MAX),
            )?;
            gauge(
                e,
                "gamewire_pool_retained_bytes",
                "Bytes of free buffers kept.",
                signed(stats.retained_bytes),
            )?;
        }
        if let Some(scheduler) = scheduler {
            let stats = scheduler.stats();
            let priorities = [
                TaskPriority::Critical,
                TaskPriority::Normal,
                TaskPriority::Background,
            ];
            let names: Vec<String> = priorities
                .iter()
                .map(|p| snake(&format!("{p:?}")))
                .collect();
            let of = |f: fn(&crate::scheduler::PriorityStats) -> u64| {
                names
                    .iter()
                    .map(String::as_str)
                    .zip(priorities.iter().map(|&p| f(stats.priority(p))))
                    .collect::<Vec<_>>()
            };
            counters(
                e,
                "gamewire_scheduler_jobs_completed",
                "Jobs that finished, by priority.",
                "priority",
                of(|p| p.completed),
            )?;
            counters(
                e,
                "gamewire_scheduler_jobs_rejected",
                "Jobs refused for a full queue, by priority.",
                "priority",
                of(|p| p.rejected),
            )?;
            counters(
                e,
                "gamewire_scheduler_jobs_panicked",
                "Jobs that panicked, by priority.",
                "priority",
                of(|p| p.panicked),
            )?;
            let mut queued = e.encode_descriptor(
                "gamewire_scheduler_jobs_queued",
                "Jobs waiting now, by priority.",
                None,
                MetricType::Gauge,
            )?;
            for (name, &priority) in names.iter().zip(&priorities) {
                let labels = [("priority", name.as_str())];
                ConstGauge::new(signed(stats.priority(priority).queued))
                    .encode(queued.encode_family(&labels)?)?;
            }
        }
        let uptime = monitor.uptime().as_secs_f64();
        let metric = ConstGauge::new(uptime);
        metric.encode(e.encode_descriptor(
            "gamewire_uptime_seconds",
            "Time since the server was created.",
            None,
            MetricType::Gauge,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_snake_case_names() {
        assert_eq!(close_label(0), "client_closed");
        assert_eq!(close_label(5), "slow_consumer");
        assert_eq!(close_label(12), "unsupported");
        assert_eq!(error_label(7), "rate_limited");
    }
}
