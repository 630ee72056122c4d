//! The built-in chat system: rooms you join, leave, list and talk in.
//!
//! [`ChatMessage`] is a complete protocol, served with no user code: a
//! binary whose only `#[message]` enum is this one (or that has none of its
//! own) runs it on `TcpGameService::with_default_config()`. A game protocol
//! includes the chat next to its own variants with a newtype variant and
//! one handler that forwards to [`ChatRoomMessageHandler::handle`]:
//!
//! ```
//! use gamewire::prelude::*;
//! use gamewire::ChatMessage;
//! use gamewire::chat::ChatError;
//!
//! #[message]
//! pub enum GameMessage {
//!     Chat(ChatMessage),
//!     Move { x: i32, y: i32 },
//! }
//!
//! #[handler(GameMessage::Chat)]
//! async fn chat(msg: ChatMessage, chat: ChatRoomMessageHandler, session: Session)
//!     -> Result<Option<GameMessage>, ChatError> {
//!     chat.handle(&session, msg)
//! }
//! # fn main() {}
//! ```
//!
//! Every chat line is stamped by the server with its sender and the time,
//! and delivered to every member of the room, the sender included, in the
//! order the server received it. On a node of a cluster, the members on
//! other nodes get it too, each sender's lines in the order said.
//!
//! The chat is built on the extension points any game has: its handlers
//! are `#[handler]` fns, [`ChatRoomMessageHandler`] is an extractor
//! ([`FromSession`]) that reads the server's instance from its state, and
//! the `UserLeft` notice of a member who disconnects is sent by an
//! `on_disconnect` hook.

use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::connection::{ConnectionService, SendError};
use crate::handler::{FromSession, HandlerContext, Rejection};
use crate::protocol::Message;
use crate::room::{RoomConnectionService, RoomError, RoomStatus};
use crate::session::{Disconnect, Session};
use crate::{handler, message};

/// Longest chat line accepted, in bytes of UTF-8.
pub const MAX_CHAT_TEXT_LEN: usize = 4096;

/// Most rooms a `RoomList` names: those of lowest id. What one `ListRooms`
/// costs the server stays bounded however many rooms exist.
pub const MAX_ROOM_LIST_LEN: usize = 1000;

/// The built-in chat protocol.
///
/// Variant ids are the declaration order, `0` to `9`, and are part of the
/// documented wire protocol.
#[message(builtin, lock = "../protocols/ChatMessage.lock")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatMessage {
    /// Join a room, creating it if needed. Answered by `RoomJoined`; the
    /// other members get `UserJoined`.
    #[gamewire(direction = to_server)]
    JoinRoom {
        /// The room.
        room_id: u32,
    },
    /// Leave a room. Answered by `RoomLeft`; the other members get
    /// `UserLeft`.
    #[gamewire(direction = to_server)]
    LeaveRoom {
        /// The room.
        room_id: u32,
    },
    /// Say something in a room you are in. Every member, the sender
    /// included, gets a `ChatBroadcast`.
    #[gamewire(direction = to_server)]
    SendChat {
        /// The room.
        room_id: u32,
        /// The line, at most [`MAX_CHAT_TEXT_LEN`] bytes.
        text: String,
    },
    /// Ask for the list of rooms. Answered by `RoomList`.
    #[gamewire(direction = to_server)]
    ListRooms,
    /// You joined a room; its members now, you included.
    #[gamewire(direction = to_client)]
    RoomJoined {
        /// The room.
        room_id: u32,
        /// Its members, in the order they joined.
        users: Vec<u32>,
    },
    /// You left a room.
    #[gamewire(direction = to_client)]
    RoomLeft {
        /// The room.
        room_id: u32,
    },
    /// Someone joined a room you are in.
    #[gamewire(direction = to_client)]
    UserJoined {
        /// The room.
        room_id: u32,
        /// Who joined.
        user_id: u32,
    },
    /// Someone left a room you are in, or disconnected.
    #[gamewire(direction = to_client)]
    UserLeft {
        /// The room.
        room_id: u32,
        /// Who left.
        user_id: u32,
    },
    /// A chat line in a room you are in.
    #[gamewire(direction = to_client)]
    ChatBroadcast {
        /// The room.
        room_id: u32,
        /// Who said it.
        sender: u32,
        /// What was said.
        text: String,
        /// When the server received it, in milliseconds since the Unix epoch.
        timestamp_ms: u64,
    },
    /// The rooms that exist, by ascending id: at most
    /// [`MAX_ROOM_LIST_LEN`], those of lowest id.
    #[gamewire(direction = to_client)]
    RoomList {
        /// One entry per room.
        rooms: Vec<RoomSummary>,
    },
}

/// One room in a [`ChatMessage::RoomList`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, gamewire::Describe)]
pub struct RoomSummary {
    /// The room's id.
    pub room_id: u32,
    /// Members now.
    pub user_count: u32,
}

/// A chat request was refused; the sender gets an error frame with this text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChatError {
    /// `SendChat` or `LeaveRoom` for a room the sender is not in.
    #[error("you are not in room {0}")]
    NotInRoom(u32),
    /// A chat line over [`MAX_CHAT_TEXT_LEN`].
    #[error("chat text is {0} bytes; the limit is {MAX_CHAT_TEXT_LEN}")]
    TextTooLong(usize),
    /// A server-to-client message was sent to the server.
    #[error("`{0}` is sent by the server, not by clients")]
    ServerOnly(&'static str),
    /// A room operation failed.
    #[error(transparent)]
    Room(#[from] RoomError),
    /// A message could not be queued.
    #[error(transparent)]
    Send(#[from] SendError),
}

/// Tells the members of a room that a user left it, in the protocol the
/// chat runs under.
type LeaveNotice = fn(&RoomConnectionService, u32, u32);

/// The chat room system: joins, leaves, chat lines and room listings on
/// top of [`RoomConnectionService`].
///
/// Cheap to clone; every clone is the same chat. A handler takes it as a
/// parameter; the server exposes it as
/// [`TcpGameService::chat`](crate::TcpGameService::chat).
#[derive(Debug, Clone)]
pub struct ChatRoomMessageHandler {
    rooms: RoomConnectionService,
    connections: ConnectionService,
    /// Set by the first join: how to encode `UserLeft` when a member
    /// disconnects.
    leave_notice: Arc<OnceLock<LeaveNotice>>,
}

impl ChatRoomMessageHandler {
    pub(crate) fn new(rooms: RoomConnectionService, connections: ConnectionService) -> Self {
        ChatRoomMessageHandler {
            rooms,
            connections,
            leave_notice: Arc::default(),
        }
    }

    /// The hook the server runs when a session ends: the members of every
    /// room the user was in get `UserLeft`.
    pub(crate) fn disconnect_hook(&self) -> impl Fn(&Disconnect) + Send + Sync + 'static {
        let chat = self.clone();
        move |gone| {
            if let Some(notify) = chat.leave_notice.get() {
                for &room_id in &gone.rooms {
                    notify(&chat.rooms, room_id, gone.user_id);
                }
            }
        }
    }

    /// Handles one chat request from `session`, for a server whose protocol
    /// `M` carries [`ChatMessage`] (or is it).
    ///
    /// # Errors
    ///
    /// A [`ChatError`] for a refused request; the handler returning it makes
    /// the sender get an error frame.
    pub fn handle<M>(&self, session: &Session, message: ChatMessage) -> Result<Option<M>, ChatError>
    where
        M: Message + From<ChatMessage>,
    {
        let reply = match message {
            ChatMessage::JoinRoom { room_id } => self.join::<M>(session, room_id)?,
            ChatMessage::LeaveRoom { room_id } => self.leave::<M>(session, room_id)?,
            ChatMessage::SendChat { room_id, text } => {
                self.say::<M>(session, room_id, text)?;
                return Ok(None);
            }
            ChatMessage::ListRooms => self.list_rooms(),
            other => return Err(ChatError::ServerOnly(other.variant().name)),
        };
        Ok(Some(M::from(reply)))
    }

    /// Adds the sender to a room and tells the other members.
    ///
    /// # Errors
    ///
    /// When the sender is no longer connected, or the notice cannot be encoded.
    pub fn join<M>(&self, session: &Session, room_id: u32) -> Result<ChatMessage, ChatError>
    where
        M: Message + From<ChatMessage>,
    {
        let user_id = session.user_id();
        if self.rooms.join_room(room_id, user_id)? {
            let _ = self.leave_notice.set(notify_user_left::<M>);
            self.rooms.on_departure(notify_departure::<M>);
            let notice = M::from(ChatMessage::UserJoined { room_id, user_id });
            self.notify(room_id, &notice, Some(user_id))?;
        }
        let (_, users) = self.rooms.get_room_status(room_id);
        Ok(ChatMessage::RoomJoined { room_id, users })
    }

    /// Removes the sender from a room and tells the remaining members.
    ///
    /// # Errors
    ///
    /// [`ChatError::NotInRoom`] when the sender is not a member.
    pub fn leave<M>(&self, session: &Session, room_id: u32) -> Result<ChatMessage, ChatError>
    where
        M: Message + From<ChatMessage>,
    {
        let user_id = session.user_id();
        if !self.rooms.leave_room(room_id, user_id) {
            return Err(ChatError::NotInRoom(room_id));
        }
        let notice = M::from(ChatMessage::UserLeft { room_id, user_id });
        self.notify(room_id, &notice, None)?;
        Ok(ChatMessage::RoomLeft { room_id })
    }

    /// Sends a join or leave notice. One that reached this node's members
    /// only (the other nodes of a cluster could not be reached) does not
    /// undo the change it tells of: the other nodes still learn of the
    /// membership from the cluster's presence, without the notice.
    fn notify<M: Message>(
        &self,
        room_id: u32,
        notice: &M,
        except: Option<u32>,
    ) -> Result<(), ChatError> {
        match self.rooms.broadcast_to_room(room_id, notice, except) {
            Ok(_) => Ok(()),
            Err(RoomError::Cluster(error)) => {
                tracing::debug!(room_id, %error, "a room notice reached this node only");
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Stamps a chat line with its sender and the time and delivers it to
    /// every member of the room. Returns how many members it was queued for.
    ///
    /// # Errors
    ///
    /// [`ChatError::NotInRoom`] when the sender is not a member,
    /// [`ChatError::TextTooLong`] for a line over the limit.
    pub fn say<M>(&self, session: &Session, room_id: u32, text: String) -> Result<usize, ChatError>
    where
        M: Message + From<ChatMessage>,
    {
        if text.len() > MAX_CHAT_TEXT_LEN {
            return Err(ChatError::TextTooLong(text.len()));
        }
        let sender = session.user_id();
        if !self.rooms.is_member(room_id, sender) {
            return Err(ChatError::NotInRoom(room_id));
        }
        let line = M::from(ChatMessage::ChatBroadcast {
            room_id,
            sender,
            text,
            timestamp_ms: unix_millis(),
        });
        Ok(self.rooms.broadcast_from(room_id, sender, &line)?)
    }

    /// The `RoomList` answer: the rooms of lowest id (at most
    /// [`MAX_ROOM_LIST_LEN`]) and their member counts.
    pub fn list_rooms(&self) -> ChatMessage {
        let rooms = self
            .rooms
            .room_counts(MAX_ROOM_LIST_LEN)
            .into_iter()
            .map(|(room_id, user_count)| RoomSummary {
                room_id,
                user_count: user_count as u32,
            })
            .collect();
        ChatMessage::RoomList { rooms }
    }

    /// `(user_count, users)` of a room.
    pub fn get_room_status(&self, room_id: u32) -> (usize, Vec<u32>) {
        self.rooms.get_room_status(room_id)
    }

    /// The status of every room.
    pub fn get_all_rooms_status(&self) -> Vec<RoomStatus> {
        self.rooms.get_all_rooms_status()
    }

    /// Removes empty rooms; returns how many.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it never waits.
    pub async fn cleanup_empty_rooms(&self) -> usize {
        self.rooms.cleanup_empty_rooms().await
    }

    /// Number of users connected.
    pub fn connected_users(&self) -> usize {
        self.connections.connection_count()
    }
}

/// Sends the `UserLeft` notice in protocol `M`, for a session that ended.
fn notify_user_left<M: Message + From<ChatMessage>>(
    rooms: &RoomConnectionService,
    room_id: u32,
    user_id: u32,
) {
    let notice = M::from(ChatMessage::UserLeft { room_id, user_id });
    // A room removed since (it was empty) has nobody to tell.
    let _ = rooms.broadcast_to_room(room_id, &notice, None);
}

/// Tells this node's members of a room that a user of another node, gone
/// without a word, left it.
fn notify_departure<M: Message + From<ChatMessage>>(
    rooms: &RoomConnectionService,
    room_id: u32,
    user_id: u32,
) {
    let notice = M::from(ChatMessage::UserLeft { room_id, user_id });
    rooms.broadcast_local(room_id, &notice);
}

/// The server's chat, as a handler parameter; the server puts it in its
/// state when it is created.
impl<M: Message> FromSession<M> for ChatRoomMessageHandler {
    fn from_session(cx: &mut HandlerContext<M>) -> Result<Self, Rejection> {
        cx.session()
            .state::<ChatRoomMessageHandler>()
            .map(|chat| (*chat).clone())
            .ok_or(Rejection::MissingState("ChatRoomMessageHandler"))
    }
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

// The built-in protocol's handlers: one per client-to-server variant.

#[handler(ChatMessage::JoinRoom)]
async fn join_room(
    join: JoinRoom,
    chat: ChatRoomMessageHandler,
    session: Session,
) -> Result<ChatMessage, ChatError> {
    chat.join::<ChatMessage>(&session, join.room_id)
}

#[handler(ChatMessage::LeaveRoom)]
async fn leave_room(
    leave: LeaveRoom,
    chat: ChatRoomMessageHandler,
    session: Session,
) -> Result<ChatMessage, ChatError> {
    chat.leave::<ChatMessage>(&session, leave.room_id)
}

#[handler(ChatMessage::SendChat)]
async fn send_chat(
    line: SendChat,
    chat: ChatRoomMessageHandler,
    session: Session,
) -> Result<(), ChatError> {
    chat.say::<ChatMessage>(&session, line.room_id, line.text)
        .map(drop)
}

#[handler(ChatMessage::ListRooms)]
async fn list_rooms(_: ListRooms, chat: ChatRoomMessageHandler) -> ChatMessage {
    chat.list_rooms()
}
