//! Rooms: named groups of sessions that receive the same messages.
//!
//! A room is a `u32` id and a member list. A broadcast to a room encodes
//! the message once and queues the same bytes for every member. A user who
//! disconnects leaves every room; a room whose last member left stays until
//! [`RoomConnectionService::cleanup_empty_rooms`] (which the server also
//! runs every `room_cleanup_interval`). Rooms are bounded: in number
//! (`max_rooms`), per session (`max_rooms_per_session`) and in members
//! (`max_room_members`), so that no client can make the server hold more,
//! and leaving every room at once costs a bounded time.
//!
//! On a node of a cluster (see [`crate::cluster`]), a room also holds a
//! replica of its members on other nodes: they count in its status, its
//! size and the room listing, and a broadcast to a room with such members
//! is handed to the adapter once, for the other nodes to deliver.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, OnceLock, RwLock};

use crate::cluster::{ClusterError, ClusterFrame, LocalNode, NodeId, Receiver};
use crate::config::TcpServerConfig;
use crate::connection::{Connection, ConnectionService, SendError};
use crate::protocol::{Message, VariantInfo};
use crate::wire::EncodedFrame;

/// A room operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RoomError {
    /// The user is not connected.
    #[error("user {0} is not connected")]
    UnknownUser(u32),
    /// The room does not exist.
    #[error("room {0} does not exist")]
    UnknownRoom(u32),
    /// The user is not a member of the room.
    #[error("user {user_id} is not in room {room_id}")]
    NotInRoom {
        /// The room.
        room_id: u32,
        /// The user.
        user_id: u32,
    },
    /// Creating the room would pass `max_rooms`.
    #[error("the server has as many rooms as it may ({0}); join one that exists")]
    TooManyRooms(usize),
    /// The user is in `max_rooms_per_session` rooms already.
    #[error("you are in {0} rooms, the most one may be in; leave one first")]
    TooManyMemberships(usize),
    /// The room has `max_room_members` members.
    #[error("room {room_id} is full ({max} members)")]
    RoomFull {
        /// The room.
        room_id: u32,
        /// Its limit.
        max: usize,
    },
    /// The message could not be encoded.
    #[error(transparent)]
    Send(#[from] SendError),
    /// The message reached the members on this node, not those on other
    /// nodes.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// The bounds of the rooms of one server.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RoomLimits {
    rooms: usize,
    per_session: usize,
    members: usize,
}

impl RoomLimits {
    pub(crate) fn of(config: &TcpServerConfig) -> Self {
        RoomLimits {
            rooms: config.max_rooms,
            per_session: config.max_rooms_per_session,
            members: config.max_room_members,
        }
    }
}

/// One room's members, in the order they joined.
#[derive(Debug, Default)]
struct Room {
    members: Vec<Arc<Connection>>,
    /// Its members on other nodes, `(user, node)`, in the order this node
    /// learnt of them.
    remote: Vec<(u32, NodeId)>,
}

impl Room {
    fn size(&self) -> usize {
        self.members.len() + self.remote.len()
    }

    fn users(&self) -> Vec<u32> {
        let local = self.members.iter().map(|m| m.user_id);
        local
            .chain(self.remote.iter().map(|&(user, _)| user))
            .collect()
    }

    fn is_empty(&self) -> bool {
        self.members.is_empty() && self.remote.is_empty()
    }

    /// Adds a member of another node, unless it is there already.
    fn add_remote(&mut self, user_id: u32, node: NodeId) {
        if !self.remote.iter().any(|&(user, _)| user == user_id) {
            self.remote.push((user_id, node));
        }
    }
}

/// Tells a room's members on this node that a user of another node left
/// it: set by the chat, run when that node is gone without a word.
type Departure = fn(&RoomConnectionService, u32, u32);

#[derive(Debug, Default)]
struct Rooms {
    rooms: HashMap<u32, Room>,
    /// The rooms each user is in, so leaving all of them is cheap.
    memberships: HashMap<u32, Vec<u32>>,
}

/// The status of one room, as [`RoomConnectionService::get_all_rooms_status`]
/// reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoomStatus {
    /// The room's id.
    pub room_id: u32,
    /// Members now, on every node.
    pub user_count: usize,
    /// The members' user ids: those on this node in the order they joined,
    /// then those on other nodes.
    pub users: Vec<u32>,
}

/// Rooms of connected sessions: join, leave, membership and broadcast.
///
/// Cheap to clone; every clone is the same set of rooms. Locks are held
/// only for map updates and for queueing a broadcast's bytes, never across
/// an `.await`.
#[derive(Debug, Clone)]
pub struct RoomConnectionService {
    rooms: Arc<RwLock<Rooms>>,
    connections: ConnectionService,
    limits: RoomLimits,
    departure: Arc<OnceLock<Departure>>,
}

impl RoomConnectionService {
    pub(crate) fn new(connections: ConnectionService, limits: RoomLimits) -> Self {
        RoomConnectionService {
            rooms: Arc::default(),
            connections,
            limits,
            departure: Arc::default(),
        }
    }

    /// Sets how this node's members are told of a departure from another
    /// node; the first call wins.
    pub(crate) fn on_departure(&self, notify: Departure) {
        let _ = self.departure.set(notify);
    }

    /// This node as the cluster's adapter sees it.
    pub(crate) fn local_node(&self, stopped: tokio_util::sync::CancellationToken) -> LocalNode {
        LocalNode::new(Arc::new(self.clone()), stopped)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Rooms> {
        self.rooms.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Rooms> {
        self.rooms.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `user_id` to `room_id`, creating the room if needed. Returns
    /// `false` when the user was already a member.
    ///
    /// # Errors
    ///
    /// [`RoomError::UnknownUser`] when the user is not connected;
    /// [`RoomError::TooManyRooms`], [`RoomError::TooManyMemberships`] or
    /// [`RoomError::RoomFull`] when the join would pass `max_rooms`,
    /// `max_rooms_per_session` or `max_room_members`.
    pub fn join_room(&self, room_id: u32, user_id: u32) -> Result<bool, RoomError> {
        let connection = self
            .connections
            .get(user_id)
            .ok_or(RoomError::UnknownUser(user_id))?;
        let limits = self.limits;
        let mut rooms = self.write();
        let rooms = &mut *rooms;
        let is_member = |room: &Room| room.members.iter().any(|m| m.user_id == user_id);
        if rooms.rooms.get(&room_id).is_some_and(is_member) {
            return Ok(false);
        }
        if rooms.memberships.get(&user_id).map_or(0, Vec::len) >= limits.per_session {
            return Err(RoomError::TooManyMemberships(limits.per_session));
        }
        // Rooms known only from the other nodes' members are theirs to
        // bound: counted here, they would let another node's clients fill
        // this node's table.
        let own_rooms = |rooms: &HashMap<u32, Room>| {
            rooms
                .values()
                .filter(|room| !room.members.is_empty() || room.remote.is_empty())
                .count()
        };
        let full = rooms.rooms.len() >= limits.rooms && own_rooms(&rooms.rooms) >= limits.rooms;
        let room = match rooms.rooms.entry(room_id) {
            Entry::Occupied(room) => room.into_mut(),
            Entry::Vacant(_) if full => {
                return Err(RoomError::TooManyRooms(limits.rooms));
            }
            Entry::Vacant(vacant) => vacant.insert(Room::default()),
        };
        if room.size() >= limits.members {
            let max = limits.members;
            return Err(RoomError::RoomFull { room_id, max });
        }
        room.members.push(connection);
        rooms.memberships.entry(user_id).or_default().push(room_id);
        if let Some(adapter) = self.connections.adapter() {
            adapter.room_joined(room_id, user_id);
        }
        Ok(true)
    }

    /// Removes `user_id` from `room_id`. Returns whether it was a member.
    /// The room stays, even when empty, until cleaned up.
    pub fn leave_room(&self, room_id: u32, user_id: u32) -> bool {
        let mut rooms = self.write();
        let Some(room) = rooms.rooms.get_mut(&room_id) else {
            return false;
        };
        let before = room.members.len();
        room.members.retain(|m| m.user_id != user_id);
        let was_member = room.members.len() != before;
        if was_member && let Some(list) = rooms.memberships.get_mut(&user_id) {
            list.retain(|&r| r != room_id);
            if list.is_empty() {
                rooms.memberships.remove(&user_id);
            }
        }
        if was_member && let Some(adapter) = self.connections.adapter() {
            adapter.room_left(room_id, user_id);
        }
        was_member
    }

    /// Removes `user_id` from every room; returns the rooms it left.
    pub fn leave_all_rooms(&self, user_id: u32) -> Vec<u32> {
        let mut rooms = self.write();
        let left = rooms.memberships.remove(&user_id).unwrap_or_default();
        for room_id in &left {
            if let Some(room) = rooms.rooms.get_mut(room_id) {
                room.members.retain(|m| m.user_id != user_id);
            }
        }
        if let Some(adapter) = self.connections.adapter() {
            for &room_id in &left {
                adapter.room_left(room_id, user_id);
            }
        }
        left
    }

    /// Whether `user_id` is a member of `room_id`.
    pub fn is_member(&self, room_id: u32, user_id: u32) -> bool {
        self.read()
            .memberships
            .get(&user_id)
            .is_some_and(|rooms| rooms.contains(&room_id))
    }

    /// The rooms `user_id` is in, in the order joined.
    pub fn rooms_of(&self, user_id: u32) -> Vec<u32> {
        self.read()
            .memberships
            .get(&user_id)
            .cloned()
            .unwrap_or_default()
    }

    /// `(user_count, users)` of a room, on every node: those on this node
    /// in the order they joined, then those on other nodes; `(0, [])` for a
    /// room that does not exist.
    pub fn get_room_status(&self, room_id: u32) -> (usize, Vec<u32>) {
        let rooms = self.read();
        match rooms.rooms.get(&room_id) {
            Some(room) => (room.size(), room.users()),
            None => (0, Vec::new()),
        }
    }

    /// The status of every room, by ascending id.
    pub fn get_all_rooms_status(&self) -> Vec<RoomStatus> {
        let rooms = self.read();
        let mut all: Vec<RoomStatus> = rooms
            .rooms
            .iter()
            .map(|(&room_id, room)| RoomStatus {
                room_id,
                user_count: room.size(),
                users: room.users(),
            })
            .collect();
        all.sort_unstable_by_key(|status| status.room_id);
        all
    }

    /// The `limit` rooms of lowest id, each with its member count, by
    /// ascending id: a listing whose cost does not grow with the members.
    pub fn room_counts(&self, limit: usize) -> Vec<(u32, usize)> {
        let rooms = self.read();
        let mut counts: Vec<(u32, usize)> = rooms
            .rooms
            .iter()
            .map(|(&room_id, room)| (room_id, room.size()))
            .collect();
        if counts.len() > limit {
            counts.select_nth_unstable_by_key(limit, |&(room_id, _)| room_id);
            counts.truncate(limit);
        }
        counts.sort_unstable_by_key(|&(room_id, _)| room_id);
        counts
    }

    /// Number of rooms, empty ones included.
    pub fn room_count(&self) -> usize {
        self.read().rooms.len()
    }

    /// Memberships of this node's users in all rooms: a user in two rooms
    /// counts twice.
    pub fn member_count(&self) -> usize {
        self.read()
            .rooms
            .values()
            .map(|room| room.members.len())
            .sum()
    }

    /// Removes every room without members; returns how many were removed.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it never waits.
    pub async fn cleanup_empty_rooms(&self) -> usize {
        let mut rooms = self.write();
        let before = rooms.rooms.len();
        rooms.rooms.retain(|_, room| !room.is_empty());
        before - rooms.rooms.len()
    }

    /// Sends `message` to every member of `room_id` except `except`,
    /// encoding it once. Returns how many members it was queued for.
    ///
    /// # Errors
    ///
    /// [`RoomError::UnknownRoom`] for a room that does not exist, or an
    /// encoding error. A member whose queue is full is handled by the
    /// slow-consumer policy and not counted.
    pub fn broadcast_to_room<M: Message>(
        &self,
        room_id: u32,
        message: &M,
        except: Option<u32>,
    ) -> Result<usize, RoomError> {
        let frame = self.connections.encode(message)?;
        self.broadcast_frame(room_id, frame, message.variant(), None, except)
    }

    /// Like [`broadcast_to_room`](Self::broadcast_to_room), for a message
    /// `sender` said: when it reaches this node's members but cannot reach
    /// the other nodes' (on a node of a cluster whose link is down), the
    /// sender gets an error frame (code 8, `NotDelivered`) saying so, if
    /// the adapter only finds out later.
    ///
    /// # Errors
    ///
    /// As [`broadcast_to_room`](Self::broadcast_to_room), and
    /// [`RoomError::Cluster`] when the message reached this node's members
    /// only.
    pub fn broadcast_from<M: Message>(
        &self,
        room_id: u32,
        sender: u32,
        message: &M,
    ) -> Result<usize, RoomError> {
        let frame = self.connections.encode(message)?;
        self.broadcast_frame(room_id, frame, message.variant(), Some(sender), None)
    }

    /// Sends `message` to the members of `room_id` on this node only.
    pub(crate) fn broadcast_local<M: Message>(&self, room_id: u32, message: &M) -> usize {
        let Ok(frame) = self.connections.encode(message) else {
            return 0;
        };
        let rooms = self.read();
        rooms.rooms.get(&room_id).map_or(0, |room| {
            deliver(&room.members, &frame, message.variant(), None)
        })
    }

    /// Queues an already encoded frame for the members of a room on this
    /// node, and hands it to the adapter when the room has members on
    /// other nodes.
    fn broadcast_frame(
        &self,
        room_id: u32,
        frame: EncodedFrame,
        variant: &'static VariantInfo,
        sender: Option<u32>,
        except: Option<u32>,
    ) -> Result<usize, RoomError> {
        let (queued, remote) = {
            let rooms = self.read();
            let room = rooms
                .rooms
                .get(&room_id)
                .ok_or(RoomError::UnknownRoom(room_id))?;
            let queued = deliver(&room.members, &frame, variant, except);
            (queued, !room.remote.is_empty())
        };
        if remote && let Some(adapter) = self.connections.adapter() {
            let message = ClusterFrame::new(&frame, variant.id, sender, except);
            adapter.publish(room_id, message)?;
        }
        Ok(queued)
    }

    /// Tells each remote member of `node` that left the replica, to this
    /// node's members of its room.
    fn notify_departures(&self, departed: Vec<(u32, u32)>) {
        if let Some(notify) = self.departure.get() {
            for (room_id, user_id) in departed {
                notify(self, room_id, user_id);
            }
        }
    }
}

/// Queues `frame` for `members` but `except`; returns how many took it.
fn deliver(
    members: &[Arc<Connection>],
    frame: &EncodedFrame,
    variant: &'static VariantInfo,
    except: Option<u32>,
) -> usize {
    members
        .iter()
        .filter(|m| Some(m.user_id) != except)
        // Members whose client lacks the variant (an earlier protocol
        // revision) are skipped.
        .filter(|m| m.send_variant(frame.clone(), variant).is_ok())
        .count()
}

/// What the other nodes send, applied to this node's rooms.
impl Receiver for RoomConnectionService {
    fn deliver_to_room(&self, room_id: u32, message: &ClusterFrame) -> usize {
        let Some(variant) = self.connections.remote_variant(message) else {
            return 0;
        };
        let frame = message.frame();
        let rooms = self.read();
        rooms.rooms.get(&room_id).map_or(0, |room| {
            deliver(&room.members, &frame, variant, message.except())
        })
    }

    fn deliver_to_user(&self, user_id: u32, message: &ClusterFrame) -> bool {
        self.connections.deliver_remote(user_id, message)
    }

    fn report_undelivered(&self, sender: u32, why: &str) {
        self.connections.report_undelivered([sender], why);
    }

    fn report_missed(&self, room_id: u32, why: &str) {
        let members: Vec<u32> = match self.read().rooms.get(&room_id) {
            Some(room) => room.members.iter().map(|m| m.user_id).collect(),
            None => return,
        };
        self.connections.report_undelivered(members, why);
    }

    fn remote_joined(&self, node: NodeId, room_id: u32, user_id: u32) {
        let mut rooms = self.write();
        rooms
            .rooms
            .entry(room_id)
            .or_default()
            .add_remote(user_id, node);
    }

    fn remote_left(&self, node: NodeId, room_id: u32, user_id: u32) {
        let mut rooms = self.write();
        if let Some(room) = rooms.rooms.get_mut(&room_id) {
            room.remote
                .retain(|&(user, of)| (user, of) != (user_id, node));
        }
    }

    fn replace_node(&self, node: NodeId, members: &[(u32, u32)]) {
        let mut rooms = self.write();
        for room in rooms.rooms.values_mut() {
            room.remote.retain(|&(_, of)| of != node);
        }
        for &(room_id, user_id) in members {
            rooms
                .rooms
                .entry(room_id)
                .or_default()
                .add_remote(user_id, node);
        }
    }

    fn node_gone(&self, node: NodeId) {
        let mut departed = Vec::new();
        {
            let mut rooms = self.write();
            for (&room_id, room) in &mut rooms.rooms {
                room.remote.retain(|&(user_id, of)| {
                    if of == node {
                        departed.push((room_id, user_id));
                    }
                    of != node
                });
            }
        }
        departed.sort_unstable();
        self.notify_departures(departed);
    }

    fn local_members(&self) -> Vec<(u32, u32)> {
        let rooms = self.read();
        let mut members: Vec<(u32, u32)> = rooms
            .memberships
            .iter()
            .flat_map(|(&user_id, list)| list.iter().map(move |&room_id| (room_id, user_id)))
            .collect();
        members.sort_unstable();
        members
    }

    fn local_users(&self) -> Vec<u32> {
        self.connections.user_ids()
    }

    fn has_user(&self, user_id: u32) -> bool {
        self.connections.get(user_id).is_some()
    }

    fn has_local_members(&self, room_id: u32) -> bool {
        self.read()
            .rooms
            .get(&room_id)
            .is_some_and(|room| !room.members.is_empty())
    }
}
