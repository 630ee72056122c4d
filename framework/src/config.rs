//! Server configuration.
//!
//! [`TcpServerConfig`] gathers every limit and interval the server uses.
//! Its `Default` is what a newcomer runs: loopback on port 7878, limits that
//! suit a laptop. Tests shrink the intervals and limits.

use std::time::Duration;

use crate::codec::MAX_FRAME_LEN_LIMIT;

/// The default port of [`TcpServerConfig::default`], also used by the
/// examples and the chat client.
pub const DEFAULT_PORT: u16 = 7878;

/// Everything the server can be tuned with.
///
/// Build it with struct-update syntax, as the original guide does:
///
/// ```
/// use gamewire::TcpServerConfig;
///
/// let config = TcpServerConfig {
///     bind_address: "0.0.0.0:8080".to_string(),
///     max_connections: 10_000,
///     ..Default::default()
/// };
/// assert_eq!(config.max_frame_len, 64 * 1024);
/// ```
#[derive(Debug, Clone)]
pub struct TcpServerConfig {
    /// Address [`TcpGameService::start`](crate::TcpGameService::start) binds,
    /// such as `"127.0.0.1:7878"`.
    pub bind_address: String,
    /// Sessions served at once; the next connection gets a close frame
    /// (`ServerFull`) and is counted as refused.
    pub max_connections: usize,
    /// Largest frame payload, in bytes, accepted from a client. A longer
    /// length prefix closes that connection (`FrameTooLarge`) before any
    /// buffer of that size is allocated. At most [`MAX_FRAME_LEN_LIMIT`].
    pub max_frame_len: usize,
    /// Frames that may wait in one connection's outbound queue. A full
    /// queue means the client reads slower than it is sent to; see
    /// [`slow_consumer_policy`](Self::slow_consumer_policy).
    pub outbound_queue_capacity: usize,
    /// What happens when a connection's outbound queue is full.
    pub slow_consumer_policy: SlowConsumerPolicy,
    /// How often the server pings each client. The clients are pinged in
    /// slices spread over the interval, not all at once.
    pub heartbeat_interval: Duration,
    /// A client silent (no frame at all) for longer than this is
    /// disconnected (`HeartbeatTimeout`) and leaves every room.
    pub heartbeat_timeout: Duration,
    /// Time a new connection has to send its handshake.
    pub handshake_timeout: Duration,
    /// On shutdown, time given to deliver what is already queued before
    /// connections are dropped; handlers still running then are dropped at
    /// their next `.await`.
    pub drain_timeout: Duration,
    /// Undecodable or unknown messages tolerated from one connection before
    /// it is closed (`TooManyErrors`). Each one gets an error frame.
    pub max_protocol_errors: u32,
    /// Initial capacity of a connection's read buffer; it grows up to one
    /// frame when a larger frame arrives.
    pub read_buffer_size: usize,
    /// How often empty rooms are removed in the background; `None` leaves
    /// it to [`RoomConnectionService::cleanup_empty_rooms`](crate::RoomConnectionService::cleanup_empty_rooms).
    pub room_cleanup_interval: Option<Duration>,
    /// Take read and write buffers from an
    /// [`EnhancedMemoryPool`](crate::EnhancedMemoryPool) instead of the
    /// allocator. Either way a connection holds a buffer only while it has
    /// bytes to parse or to write.
    ///
    /// Off by default, because the `pool` benchmark finds no win on this
    /// path: taking, filling and returning a 4 KiB buffer costs about 40 ns
    /// from the pool and 21 to 46 ns from glibc's allocator (it varies from
    /// run to run), with one thread or two. Turn it on where your allocator
    /// is slower or fragments.
    pub enable_enhanced_memory_pool: bool,
    /// Limits of the memory pool.
    pub memory_pool: crate::pool::MemoryPoolConfig,
    /// Record handler and queue times in the
    /// [`PerformanceMonitor`](crate::PerformanceMonitor) (two clock reads
    /// per message).
    pub enable_performance_monitor: bool,
    /// Run an [`AsyncTaskScheduler`](crate::AsyncTaskScheduler) that
    /// handlers and the application reach through
    /// [`TcpGameService::schedule_message_processing`](crate::TcpGameService::schedule_message_processing)
    /// and the `AsyncTaskScheduler` handler parameter. Handlers themselves
    /// always run on their session's task.
    pub enable_async_scheduler: bool,
    /// Workers, queue sizes and fairness of the scheduler.
    pub scheduler: crate::scheduler::SchedulerConfig,
}

impl Default for TcpServerConfig {
    fn default() -> Self {
        TcpServerConfig {
            bind_address: format!("127.0.0.1:{DEFAULT_PORT}"),
            max_connections: 10_000,
            max_frame_len: 64 * 1024,
            outbound_queue_capacity: 1024,
            slow_consumer_policy: SlowConsumerPolicy::Disconnect,
            heartbeat_interval: Duration::from_secs(10),
            heartbeat_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(5),
            max_protocol_errors: 16,
            read_buffer_size: 4 * 1024,
            room_cleanup_interval: Some(Duration::from_secs(60)),
            enable_enhanced_memory_pool: false,
            memory_pool: crate::pool::MemoryPoolConfig::default(),
            enable_performance_monitor: true,
            enable_async_scheduler: false,
            scheduler: crate::scheduler::SchedulerConfig::default(),
        }
    }
}

impl TcpServerConfig {
    /// Checks the values against each other.
    ///
    /// # Errors
    ///
    /// Returns the first value out of range, with the rule it breaks.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_frame_len == 0 || self.max_frame_len > MAX_FRAME_LEN_LIMIT {
            return Err(ConfigError::new(format!(
                "`max_frame_len` must be between 1 and {MAX_FRAME_LEN_LIMIT}, not {}",
                self.max_frame_len
            )));
        }
        if self.outbound_queue_capacity == 0 {
            return Err(ConfigError::new(
                "`outbound_queue_capacity` must be at least 1",
            ));
        }
        if self.max_connections == 0 {
            return Err(ConfigError::new("`max_connections` must be at least 1"));
        }
        if self.heartbeat_interval.is_zero() || self.heartbeat_timeout < self.heartbeat_interval {
            return Err(ConfigError::new(
                "`heartbeat_interval` must be non-zero and at most `heartbeat_timeout`",
            ));
        }
        Ok(())
    }
}

/// What the server does with a message for a client whose outbound queue
/// is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SlowConsumerPolicy {
    /// Drop messages of variants marked `#[gamewire(droppable)]`; for any
    /// other message, disconnect the client with the reason `SlowConsumer`.
    #[default]
    Disconnect,
    /// Drop the message, whatever its variant, and keep the client.
    Drop,
}

/// A configuration value out of range.
#[derive(Debug, thiserror::Error)]
#[error("invalid gamewire configuration: {message}")]
pub struct ConfigError {
    message: String,
}

impl ConfigError {
    fn new(message: impl Into<String>) -> Self {
        ConfigError {
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        TcpServerConfig::default().validate().unwrap();
    }

    #[test]
    fn oversized_frame_limit_is_rejected() {
        let config = TcpServerConfig {
            max_frame_len: MAX_FRAME_LEN_LIMIT + 1,
            ..Default::default()
        };
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("`max_frame_len`"), "{error}");
    }

    #[test]
    fn heartbeat_timeout_shorter_than_interval_is_rejected() {
        let config = TcpServerConfig {
            heartbeat_interval: Duration::from_secs(5),
            heartbeat_timeout: Duration::from_secs(1),
            ..Default::default()
        };
        assert!(config.validate().is_err());
    }
}
