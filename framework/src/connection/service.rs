//! [`ConnectionService`]: the registry of sessions, sending to them, and
//! their statistics.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use super::{CloseSignal, Connection, Limits, SendError, Shared};
use crate::admission::Ticket;
use crate::cluster::{Adapter, ClusterError, ClusterFrame};
use crate::codec::{Codec, EncodeError};
use crate::config::TcpServerConfig;
use crate::monitor::{ConnectionStats, Event, PerformanceMonitor, SessionCounters};
use crate::protocol::{Message, VariantInfo};
use crate::wire::{CloseCode, EncodedFrame, ErrorCode, ErrorFrame, Frame};

/// The protocol a running server speaks, and how its messages are encoded.
#[derive(Debug, Clone, Copy)]
struct Served {
    protocol: TypeId,
    name: &'static str,
    /// Encodes `Frame::App(message)` for a message of `protocol`, given as
    /// `&dyn Any`: the registry is not generic, the server's codec and
    /// protocol are chosen when it starts.
    encode: fn(&dyn Any) -> Result<EncodedFrame, EncodeError>,
    /// Encodes an error frame with the server's codec.
    error: fn(&ErrorFrame) -> Result<EncodedFrame, EncodeError>,
    /// The protocol's variants, to find one by id in a message from
    /// another node.
    variants: &'static [VariantInfo],
}

fn encode_error<C: Codec>(error: &ErrorFrame) -> Result<EncodedFrame, EncodeError> {
    EncodedFrame::encode::<C, _>(&Frame::<()>::Error(error.clone()))
}

fn encode_app<M: Message, C: Codec>(message: &dyn Any) -> Result<EncodedFrame, EncodeError> {
    let message = message
        .downcast_ref::<M>()
        .expect("the message's protocol was checked");
    EncodedFrame::encode::<C, _>(&Frame::App(message))
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
    shared: Arc<Shared>,
    served: Arc<OnceLock<Served>>,
    /// The other nodes, when the server is one of a cluster.
    adapter: Arc<OnceLock<Arc<dyn Adapter>>>,
}

impl ConnectionService {
    pub(crate) fn new(config: &TcpServerConfig, monitor: PerformanceMonitor) -> Self {
        ConnectionService {
            sessions: Arc::default(),
            shared: Arc::new(Shared {
                monitor,
                epoch: Instant::now(),
                limits: Limits::of(config),
            }),
            served: Arc::default(),
            adapter: Arc::default(),
        }
    }

    /// Makes this server a node of the cluster `adapter` joins; the first
    /// call wins.
    pub(crate) fn set_adapter(&self, adapter: Arc<dyn Adapter>) -> bool {
        self.adapter.set(adapter).is_ok()
    }

    /// The cluster's adapter, when the server is a node of one.
    pub(crate) fn adapter(&self) -> Option<&Arc<dyn Adapter>> {
        self.adapter.get()
    }

    fn read(&self) -> RwLockReadGuard<'_, HashMap<u32, Arc<Connection>>> {
        self.sessions.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<u32, Arc<Connection>>> {
        self.sessions.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the protocol and codec of the running server; the first call
    /// wins.
    pub(crate) fn serve<M: Message, C: Codec>(&self) {
        let _ = self.served.set(Served {
            protocol: TypeId::of::<M>(),
            name: M::PROTOCOL.name,
            encode: encode_app::<M, C>,
            error: encode_error::<C>,
            variants: M::PROTOCOL.variants,
        });
    }

    /// The monitor the counters go to.
    pub(crate) fn monitor(&self) -> &PerformanceMonitor {
        &self.shared.monitor
    }

    /// Creates a connection and its queue, holding `ticket` for as long as
    /// it lives; the caller registers it once the handshake succeeds and
    /// runs its writer.
    pub(crate) fn open(
        &self,
        user_id: u32,
        peer_addr: SocketAddr,
        ticket: Option<Ticket>,
    ) -> Arc<Connection> {
        let connection = Arc::new(Connection {
            user_id,
            peer_addr,
            connected_at: Instant::now(),
            queue: Default::default(),
            closing: CloseSignal::default(),
            close_reason: OnceLock::new(),
            last_seen_ms: AtomicU64::new(0),
            counters: SessionCounters::default(),
            shared: Arc::clone(&self.shared),
            _ticket: ticket,
            revision: AtomicU32::new(u32::MAX),
        });
        connection.touch();
        connection
    }

    /// Adds a connection; `false` when its user id is already connected.
    pub(crate) fn register(&self, connection: &Arc<Connection>) -> bool {
        let mut sessions = self.write();
        if sessions.contains_key(&connection.user_id) {
            return false;
        }
        sessions.insert(connection.user_id, Arc::clone(connection));
        self.shared.monitor.count(Event::SessionOpened);
        drop(sessions);
        if let Some(adapter) = self.adapter() {
            adapter.user_connected(connection.user_id);
        }
        true
    }

    /// Removes a connection whose session ended and moves its counts into
    /// the server totals, under the write lock so that no reader of the
    /// statistics sees them twice or not at all. What its writer counts
    /// later is moved by [`Connection::finish_counting`].
    pub(crate) fn unregister(&self, connection: &Arc<Connection>) {
        let mut sessions = self.write();
        if sessions
            .get(&connection.user_id)
            .is_some_and(|c| Arc::ptr_eq(c, connection))
        {
            sessions.remove(&connection.user_id);
            if let Some(adapter) = self.adapter() {
                adapter.user_disconnected(connection.user_id);
            }
        }
        self.shared.monitor.fold(&connection.counters);
    }

    pub(crate) fn get(&self, user_id: u32) -> Option<Arc<Connection>> {
        self.read().get(&user_id).cloned()
    }

    /// The connections whose user id is `slice` modulo `slices`: one of
    /// `slices` parts of the registry, each connection in exactly one.
    pub(crate) fn slice(&self, slice: u32, slices: u32) -> Vec<Arc<Connection>> {
        self.read()
            .iter()
            .filter(|(user_id, _)| **user_id % slices == slice)
            .map(|(_, connection)| Arc::clone(connection))
            .collect()
    }

    pub(crate) fn all(&self) -> Vec<Arc<Connection>> {
        self.read().values().cloned().collect()
    }

    /// Encodes `message` as an application frame, checking it is of the
    /// protocol being served.
    pub(crate) fn encode<M: Message>(&self, message: &M) -> Result<EncodedFrame, SendError> {
        let served = self.served.get().ok_or(SendError::NotRunning)?;
        if served.protocol != TypeId::of::<M>() {
            return Err(SendError::WrongProtocol {
                served: served.name,
                sent: M::PROTOCOL.name,
            });
        }
        Ok((served.encode)(message)?)
    }

    /// The variant of the served protocol that a message from another
    /// node carries; `None` (and a warning) for one this node lacks.
    pub(crate) fn remote_variant(&self, message: &ClusterFrame) -> Option<&'static VariantInfo> {
        let id = message.variant_id();
        let variant = self
            .served
            .get()
            .and_then(|served| served.variants.iter().find(|variant| variant.id == id));
        if variant.is_none() {
            tracing::warn!(
                variant_id = id,
                "a message from another node names a variant this node does not have"
            );
        }
        variant
    }

    /// Delivers a message from another node to a user of this node.
    pub(crate) fn deliver_remote(&self, user_id: u32, message: &ClusterFrame) -> bool {
        let (Some(connection), Some(variant)) = (self.get(user_id), self.remote_variant(message))
        else {
            return false;
        };
        connection.send_variant(message.frame(), variant).is_ok()
    }

    /// Sends each of `users` connected here an error frame (code 8,
    /// `NotDelivered`) saying `why`, encoded once.
    pub(crate) fn report_undelivered(&self, users: impl IntoIterator<Item = u32>, why: &str) {
        let Some(served) = self.served.get() else {
            return;
        };
        let code = ErrorCode::NotDelivered.as_u16();
        let error = ErrorFrame {
            code,
            message: why.to_owned(),
        };
        let Ok(frame) = (served.error)(&error) else {
            return;
        };
        for connection in users.into_iter().filter_map(|user_id| self.get(user_id)) {
            self.shared.monitor.count_error_frame(code);
            let _ = connection.send_frame(frame.clone(), false);
        }
    }

    /// Number of sessions that completed the handshake and are connected.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it never waits.
    pub async fn get_connection_count(&self) -> usize {
        self.connection_count()
    }

    /// Same as [`get_connection_count`](Self::get_connection_count), for
    /// code that is not async.
    pub fn connection_count(&self) -> usize {
        self.read().len()
    }

    /// Whether `user_id` is connected.
    pub fn is_connected(&self, user_id: u32) -> bool {
        self.get(user_id).is_some()
    }

    /// The user ids connected now, in ascending order.
    pub fn user_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.read().keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Sends `message` to one user, on this node or, when the server is a
    /// node of a cluster, on any node.
    ///
    /// To a user of this node, the message is queued, not written: this
    /// never waits on the network. To a user of another node, it waits
    /// until the cluster's adapter has handed the message on.
    ///
    /// # Errors
    ///
    /// [`SendError::UnknownUser`] when no such user is connected (to any
    /// node), [`SendError::Cluster`] when another node cannot be reached,
    /// [`SendError::UnknownToClient`] when the user's client speaks an
    /// earlier protocol revision that lacks the variant; the queue errors
    /// of [`SendError`] when the user's queue is full or closed.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the message is queued entirely or not at all.
    pub async fn send_to_user<M: Message>(
        &self,
        user_id: u32,
        message: &M,
    ) -> Result<(), SendError> {
        let Some(connection) = self.get(user_id) else {
            let adapter = self.adapter().ok_or(SendError::UnknownUser(user_id))?;
            let frame = self.encode(message)?;
            let message = ClusterFrame::new(&frame, message.variant().id, None, None);
            return adapter
                .send_to_user(user_id, message)
                .await
                .map_err(|error| match error {
                    ClusterError::UnknownUser(user_id) => SendError::UnknownUser(user_id),
                    error => SendError::Cluster(error),
                });
        };
        let frame = self.encode(message)?;
        connection.send_variant(frame, message.variant())
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
        if self.connection_count() == 0 {
            return Ok(0);
        }
        let frame = self.encode(message)?;
        let variant = message.variant();
        // A client of an earlier protocol revision that lacks the variant
        // is skipped.
        Ok(self
            .read()
            .values()
            .filter(|c| c.send_variant(frame.clone(), variant).is_ok())
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
        let counted = connection.counters.totals();
        Some(ConnectionInfo {
            user_id,
            peer_addr: connection.peer_addr,
            connected_for: connection.connected_at.elapsed(),
            frames_in: counted.frames_in,
            bytes_in: counted.bytes_in,
            frames_out: counted.frames_out,
            bytes_out: counted.bytes_out,
            frames_dropped: counted.frames_dropped,
            queued_frames: connection.queue.len(),
            queued_bytes: connection.queue.bytes(),
        })
    }

    /// Statistics of all connections since the server was created.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it never waits.
    pub async fn get_connection_stats(&self) -> ConnectionStats {
        self.connection_stats()
    }

    /// Same as [`get_connection_stats`](Self::get_connection_stats), for
    /// code that is not async. The figures never go backwards.
    pub fn connection_stats(&self) -> ConnectionStats {
        // Read under the lock that `unregister` folds under.
        let sessions = self.read();
        self.shared
            .monitor
            .connection_stats(sessions.len(), sessions.values().map(|c| &c.counters))
    }
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
    /// What those frames count, 64 bytes of bookkeeping each included;
    /// never more than `outbound_queue_bytes` (but for one frame of any
    /// size in an empty queue).
    pub queued_bytes: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> ConnectionService {
        ConnectionService::new(&TcpServerConfig::default(), PerformanceMonitor::new())
    }

    /// The heartbeat's slices cut the registry into parts that hold every
    /// connection exactly once.
    #[test]
    fn slices_partition_the_registry() {
        let connections = registry();
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        for user_id in 1..=50 {
            assert!(connections.register(&connections.open(user_id, peer, None)));
        }
        let mut seen: Vec<u32> = (0..7)
            .flat_map(|slice| connections.slice(slice, 7))
            .map(|connection| connection.user_id)
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (1..=50).collect::<Vec<_>>());
        assert!(connections.slice(3, 7).iter().all(|c| c.user_id % 7 == 3));
    }

    /// A session's traffic stays in the totals when it leaves the registry
    /// and while its writer still counts.
    #[test]
    fn statistics_never_go_backwards() {
        let connections = registry();
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let connection = connections.open(1, peer, None);
        assert!(connections.register(&connection));
        connection.record_in(100);
        connection.record_out(1, 50);
        let before = connections.connection_stats();
        connections.unregister(&connection);
        let after = connections.connection_stats();
        assert_eq!((after.bytes_in, after.bytes_out), (100, 50));
        assert_eq!(after.current_connections, before.current_connections - 1);
        connection.record_out(1, 7);
        connection.finish_counting();
        assert_eq!(connections.connection_stats().bytes_out, 57);
    }

    #[test]
    fn nothing_is_encoded_before_the_server_runs() {
        let connections = registry();
        let error = connections
            .encode(&crate::ChatMessage::ListRooms)
            .unwrap_err();
        assert!(matches!(error, SendError::NotRunning), "{error}");
        connections.serve::<crate::ChatMessage, crate::codec::Bincode>();
        assert!(connections.encode(&crate::ChatMessage::ListRooms).is_ok());
    }
}
