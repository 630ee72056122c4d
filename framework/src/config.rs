//! Server configuration.
//!
//! [`TcpServerConfig`] gathers every limit and interval the server uses.
//! Its `Default` is what a newcomer runs: loopback on port 7878, limits that
//! suit a laptop. Tests shrink the intervals and limits. It deserializes
//! (from a TOML file, say) with every field optional and durations in
//! human form (`"10s"`, `"1m 30s"`, `"250ms"`).

use std::time::Duration;

use serde::Deserialize;

use crate::codec::MAX_FRAME_LEN_LIMIT;

/// The default port of [`TcpServerConfig::default`], also used by the
/// examples and the chat client.
pub const DEFAULT_PORT: u16 = 7878;

/// What a closing connection reads and drops at most while it lingers
/// ([`TcpServerConfig::close_linger`]).
pub const CLOSE_LINGER_BYTES: usize = 1024 * 1024;

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
///
/// Or from a file, with serde: a field left out keeps its default, a
/// duration is written as humans write it, and a misspelt field is an
/// error rather than a silent default. In TOML:
///
/// ```toml
/// bind_address = "0.0.0.0:7878"
/// max_connections = 50_000
/// heartbeat_timeout = "1m"
/// room_cleanup_interval = "never"
/// slow_consumer_policy = "drop"
///
/// [scheduler]
/// workers = 4
/// ```
///
/// New fields only ever come with a default, so a configuration written
/// with `..Default::default()`, as above, or loaded from a file keeps
/// building and loading as the server grows.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TcpServerConfig {
    /// Address [`TcpGameService::start`](crate::TcpGameService::start) binds,
    /// such as `"127.0.0.1:7878"`.
    pub bind_address: String,
    /// Address of the WebSocket listener, such as `"127.0.0.1:7880"`; `None`
    /// (the default) serves TCP alone. Browsers connect to `ws://ADDRESS/`;
    /// a plain HTTP `GET /` there gets the page set with
    /// [`TcpGameService::web_page`](crate::TcpGameService::web_page). Needs
    /// the `websocket` feature (on by default).
    pub ws_bind_address: Option<String>,
    /// Address of the operator's HTTP listener, such as
    /// `"127.0.0.1:9100"`: Prometheus metrics at `/metrics`. `None` (the
    /// default) opens none. Needs the `ops` feature. Bind it to a private
    /// address: it is for your monitoring, not for players.
    pub metrics_bind_address: Option<String>,
    /// The bearer token of the admin page at `/admin` on the metrics
    /// listener (live connections, rooms, rates, kicking a user); `None`
    /// (the default) serves no admin page. At least 16 characters: it is
    /// all that stands between the network and kicking your players.
    pub admin_token: Option<String>,
    /// Connections pending in the kernel before `accept` takes them: the
    /// listen backlog. A burst of connects beyond it waits for the
    /// client's SYN retry, a second or more.
    pub listen_backlog: u32,
    /// Sockets the server holds at once, handshakes included; the next
    /// connection gets a close frame (`ServerFull`) and is counted as
    /// refused.
    pub max_connections: usize,
    /// Sockets one IP address may hold at once, handshakes included.
    /// Behind a proxy every client has the proxy's address: raise it to
    /// `max_connections` there, and limit per client at the proxy.
    pub max_connections_per_ip: usize,
    /// Sockets still in their handshake at once. Silent sockets hold one
    /// place each for at most `handshake_timeout`; beyond this many, new
    /// connections are refused (`ServerFull`) instead of taking places
    /// meant for players.
    pub max_pending_handshakes: usize,
    /// Largest frame payload, in bytes, accepted from a client. A longer
    /// length prefix closes that connection (`FrameTooLarge`) before any
    /// buffer of that size is allocated. At most [`MAX_FRAME_LEN_LIMIT`].
    pub max_frame_len: usize,
    /// Largest frame payload accepted before the handshake is done (the
    /// hello and its token): an anonymous client is held to less than a
    /// player. A value over `max_frame_len` counts as `max_frame_len`.
    pub max_handshake_frame_len: usize,
    /// Time a frame has to arrive whole once its first byte has; a client
    /// that starts a frame and stalls is closed (`FrameTimeout`). Only
    /// whole frames count as a sign of life for the heartbeat.
    #[serde(with = "human")]
    pub frame_timeout: Duration,
    /// Bytes that may wait in one connection's outbound queue, each frame
    /// counted with 64 bytes of bookkeeping (an empty queue takes one frame
    /// of any size). Past it, the client is a slow consumer (see
    /// [`slow_consumer_policy`](Self::slow_consumer_policy)).
    /// A session whose queue holds more than half of it is not read from
    /// until it drains below a quarter, so replies to a client's own
    /// requests never overflow it: a client that pipelines requests waits,
    /// it is not closed.
    pub outbound_queue_bytes: usize,
    /// Frames that may wait in one connection's outbound queue, a second
    /// bound besides [`outbound_queue_bytes`](Self::outbound_queue_bytes),
    /// which with its 64 bytes per frame usually binds first.
    pub outbound_queue_capacity: usize,
    /// What happens when a connection's outbound queue is full.
    pub slow_consumer_policy: SlowConsumerPolicy,
    /// Time one write may stay blocked on a client that takes no bytes;
    /// then the client is a slow consumer (`SlowConsumer`), whatever the
    /// policy.
    #[serde(with = "human")]
    pub write_timeout: Duration,
    /// How often the server pings each client. The clients are pinged in
    /// slices spread over the interval, not all at once.
    #[serde(with = "human")]
    pub heartbeat_interval: Duration,
    /// A client that sent no whole frame for longer than this is
    /// disconnected (`HeartbeatTimeout`) and leaves every room, at the
    /// next heartbeat: between this and this plus `heartbeat_interval`
    /// (30 to 40 s by default).
    #[serde(with = "human")]
    pub heartbeat_timeout: Duration,
    /// Time a new connection has to send its handshake.
    #[serde(with = "human")]
    pub handshake_timeout: Duration,
    /// Time given to deliver what is already queued for a connection that
    /// closes gracefully (a shutdown, a kick, a client that said goodbye)
    /// before it is dropped; on shutdown, handlers still running then are
    /// dropped at their next `.await`.
    #[serde(with = "human")]
    pub drain_timeout: Duration,
    /// Time a connection the server closes keeps reading, and dropping,
    /// what the client still sends (at most [`CLOSE_LINGER_BYTES`]), so
    /// that its close frame reaches the client: a socket closed with
    /// unread bytes resets the connection, and the reset can destroy the
    /// close frame before the client reads it. Zero closes at once.
    #[serde(with = "human")]
    pub close_linger: Duration,
    /// Undecodable or unknown messages tolerated from one connection before
    /// it is closed (`TooManyErrors`). Each one gets an error frame.
    pub max_protocol_errors: u32,
    /// Messages one connection may send per second, sustained. Messages
    /// beyond it and the burst are answered with an error frame
    /// (`RateLimited`) instead of being handled, and after
    /// `max_protocol_errors` of those the connection is closed
    /// (`RateLimited`). Pings and pongs are not counted.
    pub message_rate: u32,
    /// Messages one connection may send at once, above the sustained rate:
    /// a client may pipeline this many requests in one write.
    pub message_burst: u32,
    /// Frames a session handles in a row before it lets the other
    /// sessions of its thread run: one client's burst delays the others by
    /// at most this many frames.
    pub frames_per_wakeup: usize,
    /// Initial capacity of a connection's read buffer; it grows up to one
    /// frame when a larger frame arrives.
    pub read_buffer_size: usize,
    /// Rooms that may exist at once; a join that would create one more is
    /// refused. On a node of a cluster, rooms known only from the other
    /// nodes' members do not count: they are bounded there.
    pub max_rooms: usize,
    /// Rooms one session may be in at once.
    pub max_rooms_per_session: usize,
    /// Members one room may have.
    pub max_room_members: usize,
    /// How often empty rooms are removed in the background; `None` leaves
    /// it to [`RoomConnectionService::cleanup_empty_rooms`](crate::RoomConnectionService::cleanup_empty_rooms).
    #[serde(with = "human::or_never")]
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
            ws_bind_address: None,
            metrics_bind_address: None,
            admin_token: None,
            listen_backlog: 1024,
            max_connections: 10_000,
            max_connections_per_ip: 1024,
            max_pending_handshakes: 1024,
            max_frame_len: 64 * 1024,
            max_handshake_frame_len: 4 * 1024,
            frame_timeout: Duration::from_secs(10),
            outbound_queue_bytes: 1024 * 1024,
            outbound_queue_capacity: 16 * 1024,
            slow_consumer_policy: SlowConsumerPolicy::Disconnect,
            write_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(10),
            heartbeat_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(5),
            close_linger: Duration::from_secs(1),
            max_protocol_errors: 16,
            message_rate: 500,
            message_burst: 4096,
            frames_per_wakeup: 32,
            read_buffer_size: 4 * 1024,
            max_rooms: 10_000,
            max_rooms_per_session: 64,
            max_room_members: 1024,
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
        let at_least_one = [
            ("outbound_queue_bytes", self.outbound_queue_bytes),
            ("outbound_queue_capacity", self.outbound_queue_capacity),
            ("max_handshake_frame_len", self.max_handshake_frame_len),
            ("max_connections", self.max_connections),
            ("max_connections_per_ip", self.max_connections_per_ip),
            ("max_pending_handshakes", self.max_pending_handshakes),
            ("frames_per_wakeup", self.frames_per_wakeup),
            ("max_rooms", self.max_rooms),
            ("max_rooms_per_session", self.max_rooms_per_session),
            ("max_room_members", self.max_room_members),
            ("listen_backlog", self.listen_backlog as usize),
            ("message_rate", self.message_rate as usize),
            ("message_burst", self.message_burst as usize),
        ];
        if let Some((name, _)) = at_least_one.iter().find(|(_, value)| *value == 0) {
            return Err(ConfigError::new(format!("`{name}` must be at least 1")));
        }
        let nonzero = [
            ("frame_timeout", self.frame_timeout),
            ("write_timeout", self.write_timeout),
            ("handshake_timeout", self.handshake_timeout),
        ];
        if let Some((name, _)) = nonzero.iter().find(|(_, value)| value.is_zero()) {
            return Err(ConfigError::new(format!(
                "`{name}` must be longer than zero"
            )));
        }
        if cfg!(not(feature = "ops")) && self.metrics_bind_address.is_some() {
            return Err(ConfigError::new(
                "`metrics_bind_address` needs gamewire's `ops` feature",
            ));
        }
        if self
            .admin_token
            .as_ref()
            .is_some_and(|token| token.len() < 16)
        {
            return Err(ConfigError::new(
                "`admin_token` must be at least 16 characters long",
            ));
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
/// is full. In a configuration file: `"disconnect"` or `"drop"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
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

/// Durations as humans write them: `"10s"`, `"1m 30s"`, `"250ms"`.
mod human {
    use std::time::Duration;

    use serde::Deserialize;
    use serde::de::{Deserializer, Error};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(from: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(from)?;
        humantime::parse_duration(&text).map_err(|error| {
            D::Error::custom(format!(
                "`{text}` is not a duration ({error}); write it as \"10s\", \"1m 30s\" or \"250ms\""
            ))
        })
    }

    /// A duration, or `"never"`.
    pub(super) mod or_never {
        use std::time::Duration;

        use serde::de::Deserializer;

        pub(in super::super) fn deserialize<'de, D: Deserializer<'de>>(
            from: D,
        ) -> Result<Option<Duration>, D::Error> {
            let text = <String as serde::Deserialize>::deserialize(from)?;
            if text == "never" {
                return Ok(None);
            }
            let value = serde::de::value::StrDeserializer::<D::Error>::new(&text);
            super::deserialize(value).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_sets_what_it_names_and_keeps_the_rest() {
        let config: TcpServerConfig = toml::from_str(
            r#"
            bind_address = "0.0.0.0:7878"
            max_connections = 50_000
            heartbeat_timeout = "1m 30s"
            close_linger = "250ms"
            room_cleanup_interval = "never"
            slow_consumer_policy = "drop"

            [scheduler]
            workers = 4
            "#,
        )
        .unwrap();
        assert_eq!(config.bind_address, "0.0.0.0:7878");
        assert_eq!(config.max_connections, 50_000);
        assert_eq!(config.heartbeat_timeout, Duration::from_secs(90));
        assert_eq!(config.close_linger, Duration::from_millis(250));
        assert_eq!(config.room_cleanup_interval, None);
        assert_eq!(config.slow_consumer_policy, SlowConsumerPolicy::Drop);
        assert_eq!(config.scheduler.workers, 4);
        let defaults = TcpServerConfig::default();
        assert_eq!(config.max_frame_len, defaults.max_frame_len);
        assert_eq!(
            config.scheduler.queue_capacity,
            defaults.scheduler.queue_capacity
        );
        config.validate().unwrap();
    }

    #[test]
    fn a_file_s_mistakes_are_named() {
        let typo = toml::from_str::<TcpServerConfig>("max_conections = 5").unwrap_err();
        assert!(
            typo.to_string().contains("unknown field `max_conections`"),
            "{typo}"
        );
        let duration = toml::from_str::<TcpServerConfig>("frame_timeout = \"10\"").unwrap_err();
        assert!(
            duration.to_string().contains("`10` is not a duration"),
            "{duration}"
        );
    }

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
