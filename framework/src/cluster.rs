//! The adapter seam: rooms, presence and delivery to a user across the
//! nodes of a cluster.
//!
//! A server is one node. Alone, its rooms are the whole truth and nothing
//! here runs: the in-process default is no adapter at all, so a single
//! node pays nothing for the seam. With an [`Adapter`] (such as
//! `gamewire-redis`'s), every node keeps its own members as before and a
//! replica of the other nodes' members, and the adapter carries between
//! nodes what the rooms cannot do alone:
//!
//! - the membership events of this node's users ([`Adapter::room_joined`],
//!   [`Adapter::room_left`], [`Adapter::user_connected`],
//!   [`Adapter::user_disconnected`]), which the other nodes apply to their
//!   replica through [`LocalNode`];
//! - a room message, once, when the room has members on other nodes
//!   ([`Adapter::publish`]): encoded once, as a [`ClusterFrame`], and
//!   delivered by each receiving node to its own members, as a broadcast
//!   is delivered locally;
//! - a message to a user of another node ([`Adapter::send_to_user`]).
//!
//! Handlers do not change: [`RoomConnectionService`] and
//! [`ConnectionService`] call the adapter themselves.
//!
//! [`RoomConnectionService`]: crate::RoomConnectionService
//! [`ConnectionService`]: crate::ConnectionService

use std::fmt;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use tokio_util::sync::CancellationToken;

use crate::auth::Authenticator;
use crate::wire::EncodedFrame;

/// The id of a node of a cluster, given by its adapter.
pub type NodeId = u64;

/// What crossing to another node can fail with.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The shared service (Redis) cannot be reached now; the message
    /// reached the members on this node only.
    #[error("the other nodes cannot be reached now ({0}); only members on this node got it")]
    Unavailable(String),
    /// More messages wait for the other nodes than the adapter holds.
    #[error("too many messages wait for the other nodes; only members on this node got it")]
    Busy,
    /// Bytes from another node that are not a [`ClusterFrame`].
    #[error("a malformed message from another node: {0}")]
    Malformed(&'static str),
    /// The user is connected to no node.
    #[error("user {0} is not connected to any node")]
    UnknownUser(u32),
}

/// Carries rooms, presence and messages between the nodes of a cluster.
///
/// Installed with
/// [`TcpGameService::adapter`](crate::TcpGameService::adapter). The
/// synchronous methods are called on the session's task, under no lock:
/// they queue work for the adapter's own tasks and return at once. The
/// adapter must keep the events of one node in the order it was given
/// them, so that every node sees each sender's messages in the order
/// sent.
#[crate::async_trait]
pub trait Adapter: Send + Sync + fmt::Debug + 'static {
    /// Starts the adapter's tasks for a run of the server, before it
    /// accepts connections: `node` is how they hand this node what the
    /// others send, and says when the server has stopped.
    ///
    /// # Errors
    ///
    /// When the cluster cannot be joined; the server then does not start.
    async fn start(&self, node: LocalNode) -> Result<(), ClusterError>;

    /// A user completed the handshake on this node.
    fn user_connected(&self, user_id: u32);

    /// A user's session on this node ended (after it left its rooms).
    fn user_disconnected(&self, user_id: u32);

    /// A user of this node joined a room. Members on other nodes must be
    /// able to reach it once their replica shows it.
    fn room_joined(&self, room_id: u32, user_id: u32);

    /// A user of this node left a room.
    fn room_left(&self, room_id: u32, user_id: u32);

    /// Carries a room message to the other nodes with members in the
    /// room, which deliver it with [`LocalNode::deliver_to_room`].
    ///
    /// # Errors
    ///
    /// When it cannot be queued; a failure found later is reported to the
    /// sender with [`LocalNode::report_undelivered`].
    fn publish(&self, room_id: u32, message: ClusterFrame) -> Result<(), ClusterError>;

    /// Carries a message to a user connected to another node, which
    /// delivers it with [`LocalNode::deliver_to_user`].
    ///
    /// # Errors
    ///
    /// [`ClusterError::UnknownUser`] when the user is on no node, another
    /// [`ClusterError`] when it cannot be carried.
    async fn send_to_user(&self, user_id: u32, message: ClusterFrame) -> Result<(), ClusterError>;

    /// Leaves the cluster, once the server has drained: what the ending
    /// sessions did is said, then the other nodes are told this node is
    /// gone, so that its members leave their rooms at once rather than
    /// when its lease runs out. The server's run ends when it returns; it
    /// must return in a bounded time, Redis or not.
    async fn stop(&self) {}

    /// What the adapter has done so far, for the operator's metrics
    /// (`gamewire_cluster_*`); `None` for an adapter that does not say.
    fn stats(&self) -> Option<ClusterStats> {
        None
    }

    /// The authenticator the server uses when none is set: one whose user
    /// ids are unique across the cluster.
    fn authenticator(&self) -> Option<Arc<dyn Authenticator>> {
        None
    }
}

/// What an [`Adapter`] has done so far: the cluster as an operator sees it
/// from one node.
///
/// Counters count from the server's start. Build one from
/// `ClusterStats::default()` and set the fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterStats {
    /// Whether the shared service (Redis) answers now.
    pub up: bool,
    /// The other nodes this node knows of now.
    pub nodes: u64,
    /// Room messages handed to the other nodes.
    pub published: u64,
    /// Messages from other nodes delivered here: to rooms and to users.
    pub received: u64,
    /// Messages from other nodes dropped because this node fell behind.
    pub dropped: u64,
    /// Room messages that reached this node's members only: the other
    /// nodes could not be reached, or too many messages waited for them.
    pub undelivered: u64,
    /// Times the connection to the shared service was lost.
    pub disconnects: u64,
}

/// Length of a [`ClusterFrame`]'s header.
const HEADER_LEN: usize = 1 + 4 + 4 + 4;

/// Version of the header, first byte of a [`ClusterFrame`].
const VERSION: u8 = 1;

/// A message as it travels between nodes: the frame clients get, encoded
/// once by the sending node, and what its receivers need to deliver it.
///
/// Its bytes are a 13-byte header (a version byte `1`, then big-endian
/// `u32`s: the variant's id, the sender's user id, the user id the
/// message skips; 0 for none) and the length-prefixed frame.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterFrame(Bytes);

impl fmt::Debug for ClusterFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterFrame")
            .field("variant_id", &self.variant_id())
            .field("sender", &self.sender())
            .field("except", &self.except())
            .field("len", &self.0.len())
            .finish()
    }
}

impl ClusterFrame {
    pub(crate) fn new(
        frame: &EncodedFrame,
        variant_id: u32,
        sender: Option<u32>,
        except: Option<u32>,
    ) -> Self {
        let frame = frame.with_prefix();
        let mut bytes = BytesMut::with_capacity(HEADER_LEN + frame.len());
        bytes.put_u8(VERSION);
        bytes.put_u32(variant_id);
        bytes.put_u32(sender.unwrap_or(0));
        bytes.put_u32(except.unwrap_or(0));
        bytes.put_slice(frame);
        ClusterFrame(bytes.freeze())
    }

    /// Reads the bytes another node sent.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Malformed`] when they are not a cluster frame of
    /// this version with a whole frame in it.
    pub fn from_bytes(bytes: Bytes) -> Result<Self, ClusterError> {
        if bytes.len() < HEADER_LEN + 4 {
            return Err(ClusterError::Malformed("too short"));
        }
        if bytes[0] != VERSION {
            return Err(ClusterError::Malformed("unknown version"));
        }
        let declared = u32::from_be_bytes(bytes[HEADER_LEN..HEADER_LEN + 4].try_into().unwrap());
        if declared as usize != bytes.len() - HEADER_LEN - 4 {
            return Err(ClusterError::Malformed(
                "the frame's length is not its prefix",
            ));
        }
        Ok(ClusterFrame(bytes))
    }

    /// The bytes to carry.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    fn field(&self, at: usize) -> u32 {
        u32::from_be_bytes(self.0[at..at + 4].try_into().unwrap())
    }

    /// The id of the message's variant.
    pub fn variant_id(&self) -> u32 {
        self.field(1)
    }

    /// Who sent it, when a user did.
    pub fn sender(&self) -> Option<u32> {
        Some(self.field(5)).filter(|&id| id != 0)
    }

    /// The member it is not for, if any.
    pub fn except(&self) -> Option<u32> {
        Some(self.field(9)).filter(|&id| id != 0)
    }

    /// The frame clients get, with its length prefix.
    pub(crate) fn frame(&self) -> EncodedFrame {
        EncodedFrame::from_prefixed(self.0.slice(HEADER_LEN..))
    }
}

/// What a node does with what the others send: implemented by the rooms,
/// which reach the node's connections.
pub(crate) trait Receiver: Send + Sync + fmt::Debug + 'static {
    fn deliver_to_room(&self, room_id: u32, message: &ClusterFrame) -> usize;
    fn deliver_to_user(&self, user_id: u32, message: &ClusterFrame) -> bool;
    fn report_undelivered(&self, sender: u32, why: &str);
    fn report_missed(&self, room_id: u32, why: &str);
    fn remote_joined(&self, node: NodeId, room_id: u32, user_id: u32);
    fn remote_left(&self, node: NodeId, room_id: u32, user_id: u32);
    fn replace_node(&self, node: NodeId, members: &[(u32, u32)]);
    fn node_gone(&self, node: NodeId);
    fn local_members(&self) -> Vec<(u32, u32)>;
    fn local_users(&self) -> Vec<u32>;
    fn has_local_members(&self, room_id: u32) -> bool;
    fn has_user(&self, user_id: u32) -> bool;
}

/// This node, as its [`Adapter`] sees it: where it delivers what the other
/// nodes send, and where it keeps its replica of their members up to date.
///
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct LocalNode {
    receiver: Arc<dyn Receiver>,
    stopped: CancellationToken,
}

impl LocalNode {
    pub(crate) fn new(receiver: Arc<dyn Receiver>, stopped: CancellationToken) -> Self {
        LocalNode { receiver, stopped }
    }

    /// Delivers a room message from another node to this node's members
    /// of the room; returns how many it was queued for.
    pub fn deliver_to_room(&self, room_id: u32, message: &ClusterFrame) -> usize {
        self.receiver.deliver_to_room(room_id, message)
    }

    /// Delivers a message from another node to a user of this node;
    /// returns whether it was queued (the user may have left since).
    pub fn deliver_to_user(&self, user_id: u32, message: &ClusterFrame) -> bool {
        self.receiver.deliver_to_user(user_id, message)
    }

    /// Tells the sender of `message`, when it is a user of this node, that
    /// the message did not reach the other nodes: it gets an error frame
    /// (code 8, `NotDelivered`) that says `why`.
    pub fn report_undelivered(&self, message: &ClusterFrame, why: &str) {
        if let Some(sender) = message.sender() {
            self.receiver.report_undelivered(sender, why);
        }
    }

    /// Tells this node's members of a room that messages said in it on
    /// other nodes did not reach them (the adapter had to drop them): each
    /// gets an error frame (code 8, `NotDelivered`) that says `why`.
    pub fn report_missed(&self, room_id: u32, why: &str) {
        self.receiver.report_missed(room_id, why);
    }

    /// Another node's user joined a room.
    pub fn remote_joined(&self, node: NodeId, room_id: u32, user_id: u32) {
        self.receiver.remote_joined(node, room_id, user_id);
    }

    /// Another node's user left a room (the notices were that node's to
    /// send).
    pub fn remote_left(&self, node: NodeId, room_id: u32, user_id: u32) {
        self.receiver.remote_left(node, room_id, user_id);
    }

    /// Replaces what the replica holds of `node` with `members`, `(room,
    /// user)` pairs: after a reconnection, when events may have been lost.
    /// Nobody is notified.
    pub fn replace_node(&self, node: NodeId, members: &[(u32, u32)]) {
        self.receiver.replace_node(node, members);
    }

    /// `node` is gone without a word (its lease ran out): its members leave
    /// the replica, and this node's members of their rooms get the
    /// `UserLeft` notices the node could not send.
    pub fn node_gone(&self, node: NodeId) {
        self.receiver.node_gone(node);
    }

    /// This node's memberships, `(room, user)`: what it announces again
    /// after a reconnection.
    pub fn local_members(&self) -> Vec<(u32, u32)> {
        self.receiver.local_members()
    }

    /// This node's users, in ascending order.
    pub fn local_users(&self) -> Vec<u32> {
        self.receiver.local_users()
    }

    /// Whether a user with this id is connected to this node now.
    pub fn has_user(&self, user_id: u32) -> bool {
        self.receiver.has_user(user_id)
    }

    /// Whether a room has members on this node now: whether the node must
    /// hear what the others say in it.
    pub fn has_local_members(&self, room_id: u32) -> bool {
        self.receiver.has_local_members(room_id)
    }

    /// Cancelled once the server has stopped: the adapter leaves the
    /// cluster then.
    pub fn stopped(&self) -> CancellationToken {
        self.stopped.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Bincode;
    use crate::wire::Frame;

    #[test]
    fn a_cluster_frame_keeps_its_fields_and_its_frame() {
        let frame = EncodedFrame::encode::<Bincode, _>(&Frame::App(7u32)).unwrap();
        let message = ClusterFrame::new(&frame, 9, Some(42), None);
        let read = ClusterFrame::from_bytes(message.as_bytes().clone()).unwrap();
        assert_eq!(read.variant_id(), 9);
        assert_eq!(read.sender(), Some(42));
        assert_eq!(read.except(), None);
        assert_eq!(read.frame().with_prefix(), frame.with_prefix());
    }

    #[test]
    fn malformed_bytes_are_refused() {
        let frame = EncodedFrame::encode::<Bincode, _>(&Frame::App(7u32)).unwrap();
        let good = ClusterFrame::new(&frame, 1, None, Some(3))
            .as_bytes()
            .clone();
        for bad in [
            good.slice(..5),
            good.slice(..good.len() - 1),
            Bytes::from([&[2u8][..], &good[1..]].concat()),
        ] {
            assert!(ClusterFrame::from_bytes(bad).is_err());
        }
    }
}
