//! Rooms: named groups of sessions that receive the same messages.
//!
//! A room is a `u32` id and a member list. A broadcast to a room encodes
//! the message once and queues the same bytes for every member. A user who
//! disconnects leaves every room; a room whose last member left stays until
//! [`RoomConnectionService::cleanup_empty_rooms`] (which the server also
//! runs every `room_cleanup_interval`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::connection::{Connection, ConnectionService, SendError};
use crate::protocol::Message;
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
    /// The message could not be encoded.
    #[error(transparent)]
    Send(#[from] SendError),
}

/// One room's members, in the order they joined.
#[derive(Debug, Default)]
struct Room {
    members: Vec<Arc<Connection>>,
}

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
    /// Members now.
    pub user_count: usize,
    /// The members' user ids, in the order they joined.
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
}

impl RoomConnectionService {
    pub(crate) fn new(connections: ConnectionService) -> Self {
        RoomConnectionService {
            rooms: Arc::default(),
            connections,
        }
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
    /// [`RoomError::UnknownUser`] when the user is not connected.
    pub fn join_room(&self, room_id: u32, user_id: u32) -> Result<bool, RoomError> {
        let connection = self
            .connections
            .get(user_id)
            .ok_or(RoomError::UnknownUser(user_id))?;
        let mut rooms = self.write();
        let room = rooms.rooms.entry(room_id).or_default();
        if room.members.iter().any(|m| m.user_id == user_id) {
            return Ok(false);
        }
        room.members.push(connection);
        rooms.memberships.entry(user_id).or_default().push(room_id);
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

    /// `(user_count, users)` of a room; `(0, [])` for a room that does not
    /// exist.
    pub fn get_room_status(&self, room_id: u32) -> (usize, Vec<u32>) {
        let rooms = self.read();
        match rooms.rooms.get(&room_id) {
            Some(room) => (
                room.members.len(),
                room.members.iter().map(|m| m.user_id).collect(),
            ),
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
                user_count: room.members.len(),
                users: room.members.iter().map(|m| m.user_id).collect(),
            })
            .collect();
        all.sort_unstable_by_key(|status| status.room_id);
        all
    }

    /// Number of rooms, empty ones included.
    pub fn room_count(&self) -> usize {
        self.read().rooms.len()
    }

    /// Removes every room without members; returns how many were removed.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it never waits.
    pub async fn cleanup_empty_rooms(&self) -> usize {
        let mut rooms = self.write();
        let before = rooms.rooms.len();
        rooms.rooms.retain(|_, room| !room.members.is_empty());
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
        self.broadcast_frame(room_id, frame, message.variant().droppable, except)
    }

    /// Queues an already encoded frame for the members of a room.
    fn broadcast_frame(
        &self,
        room_id: u32,
        frame: EncodedFrame,
        droppable: bool,
        except: Option<u32>,
    ) -> Result<usize, RoomError> {
        let rooms = self.read();
        let room = rooms
            .rooms
            .get(&room_id)
            .ok_or(RoomError::UnknownRoom(room_id))?;
        Ok(room
            .members
            .iter()
            .filter(|m| Some(m.user_id) != except)
            .filter(|m| m.send_frame(frame.clone(), droppable).is_ok())
            .count())
    }
}
