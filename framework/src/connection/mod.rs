//! Connections: one live session's shared handle, the registry of all of
//! them, their outbound queues and their writers.
//!
//! Every session owns one outbound queue of encoded frames (shared bytes,
//! so a broadcast encodes once for all its recipients), bounded in bytes,
//! and one writer task that drains it: everything queued is handed to the
//! transport, which writes it in as few syscalls as it can. When a queue is
//! full the [`SlowConsumerPolicy`] decides: drop the frame, or disconnect
//! the client; a write blocked for `write_timeout` disconnects it too.
//! Either way the server's memory stays bounded by `outbound_queue_bytes`
//! per connection, and a session whose queue backs up stops reading its
//! client until the queue drains.
//!
//! - this file: `Connection`, what a session's reader, writer, the
//!   registry and the rooms share, its `CloseSignal`, and [`SendError`];
//! - `service.rs`: [`ConnectionService`], the registry: lookups,
//!   `send_to_user`, broadcast and statistics;
//! - `queue.rs`: the outbound queue;
//! - `writer.rs`: the writer task, and the one function that writes a
//!   close frame.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::admission::Ticket;
use crate::codec::EncodeError;
use crate::config::{SlowConsumerPolicy, TcpServerConfig};
use crate::monitor::{Event, PerformanceMonitor, SessionCounters};
use crate::protocol::VariantInfo;
use crate::wire::{CloseCode, CloseFrame, EncodedFrame};

mod queue;
mod service;
mod writer;

use queue::{OutboundQueue, PushError, QueueBounds};

pub use service::{ConnectionInfo, ConnectionService};
pub(crate) use writer::{run_writer, write_close};

/// A message could not be sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// No session with this user id is connected.
    #[error("user {0} is not connected")]
    UnknownUser(u32),
    /// The session is closing or closed.
    #[error("user {0} is disconnected")]
    Disconnected(u32),
    /// The outbound queue was full and the message was dropped.
    #[error("the outbound queue of user {0} is full; the message was dropped")]
    Dropped(u32),
    /// The outbound queue was full and the client is being disconnected.
    #[error("the outbound queue of user {0} is full; disconnecting a slow consumer")]
    SlowConsumer(u32),
    /// The client speaks an earlier revision of the protocol, which lacks
    /// this variant: it would not understand it, so it is not sent.
    #[error("user {user_id} speaks revision {revision} of the protocol, which has no `{variant}`")]
    UnknownToClient {
        /// The user.
        user_id: u32,
        /// The variant.
        variant: &'static str,
        /// The revision the user's client speaks.
        revision: u32,
    },
    /// The message is of another protocol than the one the server speaks.
    #[error("the server speaks `{served}`, not `{sent}`")]
    WrongProtocol {
        /// The served protocol.
        served: &'static str,
        /// The protocol of the message.
        sent: &'static str,
    },
    /// The server has not started, so it speaks no protocol yet.
    #[error("the server is not running")]
    NotRunning,
    /// The message could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The user is on another node of the cluster, which cannot be
    /// reached now.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
}

/// Set when a connection must close, and again when it must stop at once;
/// its reader and writer wait on it.
///
/// A level and a `Notify`, kept inline in the connection: unlike a
/// cancellation token it costs no allocation per connection, and unlike
/// the server-wide token its waiters never share a lock with other
/// connections' tasks.
#[derive(Debug, Default)]
pub(crate) struct CloseSignal {
    level: std::sync::atomic::AtomicU8,
    notify: tokio::sync::Notify,
}

impl CloseSignal {
    /// The connection is closing: deliver what the close allows, then stop.
    const CLOSING: u8 = 1;
    /// A forced shutdown: stop now, even in the middle of a handler.
    const FORCED: u8 = 2;

    fn cancel(&self) {
        self.raise(Self::CLOSING);
    }

    /// Stops the session now (it also counts as closing).
    fn force(&self) {
        self.raise(Self::FORCED);
    }

    fn raise(&self, level: u8) {
        self.level.fetch_max(level, Ordering::AcqRel);
        self.notify.notify_waiters();
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.level.load(Ordering::Acquire) >= Self::CLOSING
    }

    /// A waiter woken by the next close or force; enable it, then check
    /// [`is_cancelled`](Self::is_cancelled), to miss none.
    pub(crate) fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }

    /// Completes once the connection is closing (or forced).
    pub(crate) async fn cancelled(&self) {
        self.reached(Self::CLOSING).await;
    }

    /// Completes once the connection is forced to stop.
    pub(crate) async fn forced(&self) {
        self.reached(Self::FORCED).await;
    }

    async fn reached(&self, level: u8) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Register before looking, so a raise in between wakes us.
            notified.as_mut().enable();
            if self.level.load(Ordering::Acquire) >= level {
                return;
            }
            notified.await;
        }
    }
}

/// The bounds of every connection of one server.
#[derive(Debug, Clone, Copy)]
struct Limits {
    queue: QueueBounds,
    policy: SlowConsumerPolicy,
    /// A write blocked this long makes the client a slow consumer.
    write_timeout: Duration,
    /// Time a graceful close has to deliver what is queued.
    drain_timeout: Duration,
}

impl Limits {
    fn of(config: &TcpServerConfig) -> Self {
        Limits {
            queue: QueueBounds {
                bytes: config.outbound_queue_bytes,
                frames: config.outbound_queue_capacity,
            },
            policy: config.slow_consumer_policy,
            write_timeout: config.write_timeout,
            drain_timeout: config.drain_timeout,
        }
    }
}

/// What every connection of one registry shares.
#[derive(Debug)]
struct Shared {
    /// Where the counters go.
    monitor: PerformanceMonitor,
    /// The clock of `last_seen_ms`.
    epoch: Instant,
    limits: Limits,
}

/// One live session, shared by its reader, its writer, the registry and
/// the rooms it is in.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) user_id: u32,
    pub(crate) peer_addr: SocketAddr,
    pub(crate) connected_at: Instant,
    /// The outbound queue; the writer task owns the receiving end.
    queue: OutboundQueue,
    /// Raised when the connection must close; `close_reason` says why.
    closing: CloseSignal,
    close_reason: OnceLock<(CloseFrame, bool)>,
    /// Milliseconds since the registry's epoch when a frame last arrived.
    last_seen_ms: AtomicU64,
    counters: SessionCounters,
    shared: Arc<Shared>,
    /// The connection's places among all and its address's, held until
    /// both its session and its writer are done with it.
    _ticket: Option<Ticket>,
    /// The protocol revision the client speaks; `u32::MAX` (every variant)
    /// until the hello says.
    revision: AtomicU32,
}

impl Connection {
    /// Records the protocol revision the client's hello named.
    pub(crate) fn set_revision(&self, revision: u32) {
        self.revision.store(revision, Ordering::Relaxed);
    }

    /// Queues an encoded message of `variant`, unless the client's protocol
    /// revision is older than the variant.
    pub(crate) fn send_variant(
        &self,
        frame: EncodedFrame,
        variant: &'static VariantInfo,
    ) -> Result<(), SendError> {
        let revision = self.revision.load(Ordering::Relaxed);
        if variant.since > revision {
            return Err(SendError::UnknownToClient {
                user_id: self.user_id,
                variant: variant.name,
                revision,
            });
        }
        self.send_frame(frame, variant.droppable)
    }

    /// Queues an encoded frame, applying the slow-consumer policy when the
    /// queue is full.
    pub(crate) fn send_frame(&self, frame: EncodedFrame, droppable: bool) -> Result<(), SendError> {
        match self.queue.push(frame, self.shared.limits.queue) {
            Ok(()) => Ok(()),
            Err(PushError::Closed) => Err(SendError::Disconnected(self.user_id)),
            Err(PushError::Full) => {
                if droppable || self.shared.limits.policy == SlowConsumerPolicy::Drop {
                    self.counters.frame_dropped();
                    self.shared.monitor.count(Event::FrameDropped);
                    Err(SendError::Dropped(self.user_id))
                } else {
                    if self.close(CloseCode::SlowConsumer, "outbound queue full", false) {
                        self.shared.monitor.count(Event::SlowConsumer);
                        tracing::warn!(user_id = self.user_id, "disconnecting slow consumer");
                    }
                    Err(SendError::SlowConsumer(self.user_id))
                }
            }
        }
    }

    /// Whether the queue holds more than half of what it may: the session
    /// then reads no further until [`drained`](Self::drained).
    pub(crate) fn backlogged(&self) -> bool {
        self.queue.bytes() > self.shared.limits.queue.bytes / 2
    }

    /// Waits until the queue holds a quarter of what it may, or the
    /// connection closes.
    pub(crate) async fn drained(&self) {
        self.queue.drained(self.shared.limits.queue.bytes / 4).await;
    }

    /// Counts a slow consumer closed for a write that took no bytes for
    /// `write_timeout`.
    pub(crate) fn write_timed_out(&self) {
        let limit = self.shared.limits.write_timeout;
        let reason = format!("no bytes taken for {limit:?}");
        if self.close(CloseCode::SlowConsumer, &reason, false) {
            self.shared.monitor.count(Event::SlowConsumer);
            tracing::warn!(user_id = self.user_id, "disconnecting slow consumer");
        }
    }

    /// Asks the connection to close with `code`; with `drain`, what is
    /// already queued is delivered first. Returns whether this call was the
    /// first to ask.
    pub(crate) fn close(&self, code: CloseCode, reason: &str, drain: bool) -> bool {
        let frame = CloseFrame {
            code: code.as_u16(),
            reason: reason.to_owned(),
        };
        let first = self.close_reason.set((frame, drain)).is_ok();
        self.closing.cancel();
        self.queue.interrupt();
        first
    }

    /// Stops the connection without a close frame, after what is queued:
    /// used when the client itself went away.
    pub(crate) fn close_quietly(&self) {
        self.closing.cancel();
        self.queue.interrupt();
    }

    /// Stops the session at once: the drain time of a shutdown is over.
    pub(crate) fn force(&self) {
        self.closing.force();
        self.queue.interrupt();
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing.is_cancelled()
    }

    pub(crate) fn closing(&self) -> &CloseSignal {
        &self.closing
    }

    /// The closing reason, and whether queued frames are delivered first
    /// (yes unless the reason forbids waiting on the client).
    pub(crate) fn close_reason(&self) -> (Option<&CloseFrame>, bool) {
        match self.close_reason.get() {
            Some((frame, drain)) => (Some(frame), *drain),
            None => (None, true),
        }
    }

    /// Notes a sign of life from the client, now.
    pub(crate) fn touch(&self) {
        self.touch_at(Instant::now());
    }

    /// Notes a sign of life from the client at `when`: the time its bytes
    /// were read, which the reader took anyway, so no clock is read per
    /// frame.
    pub(crate) fn touch_at(&self, when: Instant) {
        let at = when.saturating_duration_since(self.shared.epoch);
        self.last_seen_ms
            .store(at.as_millis() as u64, Ordering::Relaxed);
    }

    pub(crate) fn silent_for(&self) -> Duration {
        let now = self.shared.epoch.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_seen_ms.load(Ordering::Relaxed)))
    }

    /// Counts a received frame of `bytes` bytes, prefix included.
    pub(crate) fn record_in(&self, bytes: usize) {
        self.counters.frame_in(bytes);
    }

    /// Counts a message of the protocol going to dispatch.
    pub(crate) fn record_message(&self) {
        self.counters.message_in();
    }

    /// Counts frames handed to the transport.
    pub(crate) fn record_out(&self, frames: u64, bytes: u64) {
        self.counters.frames_out(frames, bytes);
    }

    /// Moves what is still counted here into the server totals; called when
    /// the writer has finished and nothing more will be counted.
    pub(crate) fn finish_counting(&self) {
        self.shared.monitor.fold(&self.counters);
    }
}
