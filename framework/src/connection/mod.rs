//! Connections: the registry of sessions, their outbound queues, and stats.
//!
//! Every session owns one bounded outbound queue of encoded frames
//! ([`Bytes`], so a broadcast shares one buffer among all recipients) and
//! one writer task that drains it with vectored writes: everything queued
//! goes out in as few syscalls as the socket allows. When a queue is full
//! the [`SlowConsumerPolicy`] decides: drop the frame, or disconnect the
//! client. Either way the server's memory stays bounded by
//! `outbound_queue_capacity` frames per connection.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::config::SlowConsumerPolicy;
use crate::protocol::Message;
use crate::wire::{self, CloseCode, CloseFrame, EncodeError, Frame};

mod queue;
mod writer;

use queue::{OutboundQueue, PushError};

pub(crate) use writer::run_writer;

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
    /// The message is of another protocol than the one the server speaks.
    #[error("the server speaks `{served}`, not `{sent}`")]
    WrongProtocol {
        /// The served protocol.
        served: &'static str,
        /// The protocol of the message.
        sent: &'static str,
    },
    /// The message could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
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

    pub(crate) fn cancel(&self) {
        self.raise(Self::CLOSING);
    }

    /// Stops the session now (it also counts as closing).
    pub(crate) fn force(&self) {
        self.raise(Self::FORCED);
    }

    fn raise(&self, level: u8) {
        self.level.fetch_max(level, Ordering::AcqRel);
        self.notify.notify_waiters();
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.level.load(Ordering::Acquire) >= Self::CLOSING
    }

    /// A waiter woken by the next [`cancel`](Self::cancel) or
    /// [`force`](Self::force); enable it, then check
    /// [`is_cancelled`](Self::is_cancelled), to miss none.
    pub(crate) fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }

    /// Completes once [`cancel`](Self::cancel) or [`force`](Self::force)
    /// was called.
    pub(crate) async fn cancelled(&self) {
        self.reached(Self::CLOSING).await;
    }

    /// Completes once [`force`](Self::force) was called.
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

/// Counters of one connection.
#[derive(Debug, Default)]
pub(crate) struct ConnectionCounters {
    pub(crate) messages_in: AtomicU64,
    pub(crate) frames_in: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) frames_out: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) frames_dropped: AtomicU64,
}

/// Encodes a "user left room" notice in the protocol the chat runs under;
/// set by the chat system, used when a session ends.
pub(crate) type LeaveNoticeFn = fn(room_id: u32, user_id: u32) -> Option<Bytes>;

/// One live session, shared by its reader, its writer, the registry and
/// the rooms it is in.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) user_id: u32,
    pub(crate) peer_addr: SocketAddr,
    pub(crate) connected_at: Instant,
    /// The outbound queue; the writer task owns the receiving end.
    queue: OutboundQueue,
    /// Cancelled when the connection must close; `close_reason` says why.
    closing: CloseSignal,
    close_reason: OnceLock<(CloseFrame, bool)>,
    /// Milliseconds since the server's epoch when a frame last arrived.
    last_seen_ms: AtomicU64,
    pub(crate) counters: ConnectionCounters,
    pub(crate) leave_notice: OnceLock<LeaveNoticeFn>,
    shared: Arc<ConnectionsShared>,
}

impl Connection {
    /// Queues an encoded frame, applying the slow-consumer policy when the
    /// queue is full.
    pub(crate) fn send_frame(&self, frame: Bytes, droppable: bool) -> Result<(), SendError> {
        match self.queue.push(frame) {
            Ok(()) => Ok(()),
            Err(PushError::Closed) => Err(SendError::Disconnected(self.user_id)),
            Err(PushError::Full) => {
                if droppable || self.shared.policy == SlowConsumerPolicy::Drop {
                    self.counters.frames_dropped.fetch_add(1, Ordering::Relaxed);
                    self.shared
                        .stats
                        .frames_dropped
                        .fetch_add(1, Ordering::Relaxed);
                    Err(SendError::Dropped(self.user_id))
                } else {
                    if self.close(CloseCode::SlowConsumer, "outbound queue full", false) {
                        self.shared
                            .stats
                            .slow_consumers
                            .fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(user_id = self.user_id, "disconnecting slow consumer");
                    }
                    Err(SendError::SlowConsumer(self.user_id))
                }
            }
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

    pub(crate) fn touch(&self) {
        let now = self.shared.epoch.elapsed().as_millis() as u64;
        self.last_seen_ms.store(now, Ordering::Relaxed);
    }

    pub(crate) fn silent_for(&self) -> Duration {
        let now = self.shared.epoch.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_seen_ms.load(Ordering::Relaxed)))
    }

    /// Counts a received frame. Only this connection's counters are
    /// touched: server-wide totals are summed when asked for, so sessions
    /// on different cores never write to one cache line per message.
    pub(crate) fn record_in(&self, bytes: usize) {
        self.counters.frames_in.fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes_in
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Counts frames written to the socket.
    pub(crate) fn record_out(&self, frames: u64, bytes: u64) {
        self.counters
            .frames_out
            .fetch_add(frames, Ordering::Relaxed);
        self.counters.bytes_out.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Adds this connection's counters to the server totals; called when
    /// its writer has finished and nothing more will be counted.
    pub(crate) fn finish_counting(&self) {
        let (mine, total) = (&self.counters, &self.shared.stats);
        let fold = |from: &AtomicU64, into: &AtomicU64| {
            into.fetch_add(from.swap(0, Ordering::Relaxed), Ordering::Relaxed);
        };
        fold(&mine.messages_in, &total.messages_in);
        fold(&mine.frames_in, &total.frames_in);
        fold(&mine.bytes_in, &total.bytes_in);
        fold(&mine.frames_out, &total.frames_out);
        fold(&mine.bytes_out, &total.bytes_out);
    }

    /// The closing reason, and whether queued frames are delivered first
    /// (yes unless the reason forbids waiting on the client).
    pub(crate) fn close_reason(&self) -> (Option<&CloseFrame>, bool) {
        match self.close_reason.get() {
            Some((frame, drain)) => (Some(frame), *drain),
            None => (None, true),
        }
    }
}

/// Global counters, shared by every connection. The frame and byte totals
/// hold the counts of connections that ended; live ones are summed in.
#[derive(Debug, Default)]
pub(crate) struct GlobalCounters {
    pub(crate) total_connections: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) messages_in: AtomicU64,
    pub(crate) frames_in: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) frames_out: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) frames_dropped: AtomicU64,
    pub(crate) slow_consumers: AtomicU64,
    pub(crate) heartbeat_timeouts: AtomicU64,
    pub(crate) protocol_errors: AtomicU64,
    pub(crate) handler_errors: AtomicU64,
    pub(crate) handler_panics: AtomicU64,
}

#[derive(Debug)]
pub(crate) struct ConnectionsShared {
    pub(crate) stats: GlobalCounters,
    pub(crate) epoch: Instant,
    policy: SlowConsumerPolicy,
}

/// The registry of connected sessions: lookups, `send_to_user`, broadcast
/// and statistics.
///
/// Cheap to clone; every clone is the same registry. Get it from
/// [`TcpGameService::connection_service`](crate::TcpGameService::connection_service)
/// or as a handler parameter.
#[derive(Debug, Clone)]
pub struct ConnectionService {
    sessions: Arc<RwLock<HashMap<u32, Arc<Connection>>>>,
    shared: Arc<ConnectionsShared>,
    /// The protocol being served, set when the server starts.
    protocol: Arc<OnceLock<(std::any::TypeId, &'static str)>>,
}

impl ConnectionService {
    pub(crate) fn new(policy: SlowConsumerPolicy) -> Self {
        ConnectionService {
            sessions: Arc::default(),
            shared: Arc::new(ConnectionsShared {
                stats: GlobalCounters::default(),
                epoch: Instant::now(),
                policy,
            }),
            protocol: Arc::default(),
        }
    }

    pub(crate) fn set_protocol<M: Message>(&self) {
        let _ = self
            .protocol
            .set((std::any::TypeId::of::<M>(), M::PROTOCOL.name));
    }

    pub(crate) fn counters(&self) -> &GlobalCounters {
        &self.shared.stats
    }

    /// Creates a connection and its queue; the caller registers it once the
    /// handshake succeeds and runs its writer.
    pub(crate) fn open(
        &self,
        user_id: u32,
        peer_addr: SocketAddr,
        capacity: usize,
    ) -> Arc<Connection> {
        let connection = Arc::new(Connection {
            user_id,
            peer_addr,
            connected_at: Instant::now(),
            queue: OutboundQueue::new(capacity),
            closing: CloseSignal::default(),
            close_reason: OnceLock::new(),
            last_seen_ms: AtomicU64::new(0),
            counters: ConnectionCounters::default(),
            leave_notice: OnceLock::new(),
            shared: Arc::clone(&self.shared),
        });
        connection.touch();
        connection
    }

    /// Adds a connection; `false` when its user id is already connected.
    pub(crate) fn register(&self, connection: &Arc<Connection>) -> bool {
        let mut sessions = self.sessions.write().unwrap_or_else(|e| e.into_inner());
        if sessions.contains_key(&connection.user_id) {
            return false;
        }
        sessions.insert(connection.user_id, Arc::clone(connection));
        self.shared
            .stats
            .total_connections
            .fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Removes a connection whose session ended, folding its counters into
    /// the server totals. The writer may still count the frames it drains;
    /// those are folded in by [`Connection::finish_counting`].
    pub(crate) fn unregister(&self, connection: &Arc<Connection>) {
        let mut sessions = self.sessions.write().unwrap_or_else(|e| e.into_inner());
        if sessions
            .get(&connection.user_id)
            .is_some_and(|c| Arc::ptr_eq(c, connection))
        {
            sessions.remove(&connection.user_id);
        }
    }

    pub(crate) fn get(&self, user_id: u32) -> Option<Arc<Connection>> {
        let sessions = self.sessions.read().unwrap_or_else(|e| e.into_inner());
        sessions.get(&user_id).cloned()
    }

    /// The connections whose user id is `slice` modulo `slices`: one of
    /// `slices` parts of the registry, each connection in exactly one.
    pub(crate) fn slice(&self, slice: u32, slices: u32) -> Vec<Arc<Connection>> {
        let sessions = self.sessions.read().unwrap_or_else(|e| e.into_inner());
        sessions
            .iter()
            .filter(|(user_id, _)| **user_id % slices == slice)
            .map(|(_, connection)| Arc::clone(connection))
            .collect()
    }

    pub(crate) fn all(&self) -> Vec<Arc<Connection>> {
        let sessions = self.sessions.read().unwrap_or_else(|e| e.into_inner());
        sessions.values().cloned().collect()
    }

    /// Encodes `message` as an application frame, checking it is of the
    /// protocol being served.
    pub(crate) fn encode<M: Message>(&self, message: &M) -> Result<Bytes, SendError> {
        if let Some(&(served, name)) = self.protocol.get()
            && served != std::any::TypeId::of::<M>()
        {
            return Err(SendError::WrongProtocol {
                served: name,
                sent: M::PROTOCOL.name,
            });
        }
        Ok(wire::encode_frame(&Frame::App(message))?)
    }

    /// Number of sessions that completed the handshake and are connected.
    pub async fn get_connection_count(&self) -> usize {
        self.connection_count()
    }

    /// Same as [`get_connection_count`](Self::get_connection_count), for
    /// code that is not async.
    pub fn connection_count(&self) -> usize {
        self.sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Whether `user_id` is connected.
    pub fn is_connected(&self, user_id: u32) -> bool {
        self.get(user_id).is_some()
    }

    /// The user ids connected now, in ascending order.
    pub fn user_ids(&self) -> Vec<u32> {
        let sessions = self.sessions.read().unwrap_or_else(|e| e.into_inner());
        let mut ids: Vec<u32> = sessions.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Sends `message` to one user.
    ///
    /// The message is queued, not written: this never waits on the network.
    ///
    /// # Errors
    ///
    /// [`SendError::UnknownUser`] when no such user is connected; the queue
    /// errors of [`SendError`] when the user's queue is full or closed.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the message is queued entirely or not at all.
    pub async fn send_to_user<M: Message>(
        &self,
        user_id: u32,
        message: &M,
    ) -> Result<(), SendError> {
        let connection = self.get(user_id).ok_or(SendError::UnknownUser(user_id))?;
        let frame = self.encode(message)?;
        connection.send_frame(frame, message.variant().droppable)
    }

    /// Sends `message` to every connected user, encoding it once. Returns
    /// how many queues accepted it.
    ///
    /// # Errors
    ///
    /// Only when the message cannot be encoded; per-user queue errors are
    /// handled by the slow-consumer policy and counted.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it never waits.
    pub async fn broadcast<M: Message>(&self, message: &M) -> Result<usize, SendError> {
        let frame = self.encode(message)?;
        let droppable = message.variant().droppable;
        let sessions = self.sessions.read().unwrap_or_else(|e| e.into_inner());
        Ok(sessions
            .values()
            .filter(|c| c.send_frame(frame.clone(), droppable).is_ok())
            .count())
    }

    /// Closes a user's connection with a close frame carrying `reason`,
    /// after what is already queued for it. Returns whether the user was
    /// connected.
    pub fn disconnect(&self, user_id: u32, reason: &str) -> bool {
        match self.get(user_id) {
            Some(connection) => {
                connection.close(CloseCode::Kicked, reason, true);
                true
            }
            None => false,
        }
    }

    /// Statistics of one connection.
    pub fn get_connection_info(&self, user_id: u32) -> Option<ConnectionInfo> {
        let connection = self.get(user_id)?;
        let counters = &connection.counters;
        Some(ConnectionInfo {
            user_id,
            peer_addr: connection.peer_addr,
            connected_for: connection.connected_at.elapsed(),
            frames_in: counters.frames_in.load(Ordering::Relaxed),
            bytes_in: counters.bytes_in.load(Ordering::Relaxed),
            frames_out: counters.frames_out.load(Ordering::Relaxed),
            bytes_out: counters.bytes_out.load(Ordering::Relaxed),
            frames_dropped: counters.frames_dropped.load(Ordering::Relaxed),
            queued_frames: connection.queue.len(),
        })
    }

    /// Statistics of all connections since the server was created.
    pub async fn get_connection_stats(&self) -> ConnectionStats {
        self.connection_stats()
    }

    /// Same as [`get_connection_stats`](Self::get_connection_stats), for
    /// code that is not async.
    pub fn connection_stats(&self) -> ConnectionStats {
        let s = &self.shared.stats;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let sessions = self.sessions.read().unwrap_or_else(|e| e.into_inner());
        let live = |which: fn(&ConnectionCounters) -> &AtomicU64| {
            sessions
                .values()
                .map(|c| load(which(&c.counters)))
                .sum::<u64>()
        };
        ConnectionStats {
            current_connections: sessions.len(),
            total_connections: load(&s.total_connections),
            connections_refused: load(&s.refused),
            messages_in: load(&s.messages_in) + live(|c| &c.messages_in),
            frames_in: load(&s.frames_in) + live(|c| &c.frames_in),
            bytes_in: load(&s.bytes_in) + live(|c| &c.bytes_in),
            frames_out: load(&s.frames_out) + live(|c| &c.frames_out),
            bytes_out: load(&s.bytes_out) + live(|c| &c.bytes_out),
            frames_dropped: load(&s.frames_dropped),
            slow_consumer_disconnects: load(&s.slow_consumers),
            heartbeat_timeouts: load(&s.heartbeat_timeouts),
            protocol_errors: load(&s.protocol_errors),
            handler_errors: load(&s.handler_errors),
            handler_panics: load(&s.handler_panics),
        }
    }
}

/// A snapshot of the server-wide connection counters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ConnectionStats {
    /// Sessions connected now.
    pub current_connections: usize,
    /// Sessions that completed the handshake since start.
    pub total_connections: u64,
    /// Connections refused at `max_connections`.
    pub connections_refused: u64,
    /// Messages of the protocol received and dispatched (to the middleware
    /// chain and the handler), whether or not a handler ran.
    pub messages_in: u64,
    /// Frames received, handshakes and pongs included.
    pub frames_in: u64,
    /// Bytes received, length prefixes included.
    pub bytes_in: u64,
    /// Frames written to sockets.
    pub frames_out: u64,
    /// Bytes written to sockets.
    pub bytes_out: u64,
    /// Frames dropped because a queue was full.
    pub frames_dropped: u64,
    /// Clients disconnected for a full queue.
    pub slow_consumer_disconnects: u64,
    /// Clients disconnected by the heartbeat.
    pub heartbeat_timeouts: u64,
    /// Undecodable, unknown or misplaced frames received.
    pub protocol_errors: u64,
    /// Handler calls that returned an error.
    pub handler_errors: u64,
    /// Handler calls that panicked.
    pub handler_panics: u64,
}

/// A snapshot of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// The session's user id.
    pub user_id: u32,
    /// The client's address.
    pub peer_addr: SocketAddr,
    /// Time since the handshake.
    pub connected_for: Duration,
    /// Frames received.
    pub frames_in: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Frames written.
    pub frames_out: u64,
    /// Bytes written.
    pub bytes_out: u64,
    /// Frames dropped for a full queue.
    pub frames_dropped: u64,
    /// Frames in the outbound queue now, waiting for the writer; never more
    /// than `outbound_queue_capacity`.
    pub queued_frames: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The heartbeat's slices cut the registry into parts that hold every
    /// connection exactly once.
    #[test]
    fn slices_partition_the_registry() {
        let connections = ConnectionService::new(SlowConsumerPolicy::Disconnect);
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        for user_id in 1..=50 {
            assert!(connections.register(&connections.open(user_id, peer, 4)));
        }
        let mut seen: Vec<u32> = (0..7)
            .flat_map(|slice| connections.slice(slice, 7))
            .map(|connection| connection.user_id)
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (1..=50).collect::<Vec<_>>());
        assert!(connections.slice(3, 7).iter().all(|c| c.user_id % 7 == 3));
    }
}
