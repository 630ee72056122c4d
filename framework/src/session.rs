//! The session: who sent a message, and the server as a handler sees it.
//!
//! [`Session`] is the handler parameter that knows the sender's user id and
//! reaches every service: replying, sending to others, rooms, and the state
//! registered with [`TcpGameService::with_state`](crate::TcpGameService::with_state),
//! which handlers also take directly as [`State<T>`]. When a session ends,
//! the hooks added with
//! [`TcpGameService::on_disconnect`](crate::TcpGameService::on_disconnect)
//! see it as a [`Disconnect`].

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;

use crate::connection::{Connection, ConnectionService, SendError};
use crate::handler::{FromSession, HandlerContext, Rejection, Requirement};
use crate::protocol::Message;
use crate::room::RoomConnectionService;
use crate::scheduler::AsyncTaskScheduler;
use crate::wire::{CloseCode, CloseFrame};

/// A hook run when a session ends.
pub(crate) type DisconnectHook = Arc<dyn Fn(&Disconnect) + Send + Sync>;

/// A session that ended, as
/// [`TcpGameService::on_disconnect`](crate::TcpGameService::on_disconnect)
/// hooks see it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Disconnect {
    /// The session's user id.
    pub user_id: u32,
    /// The client's address.
    pub peer_addr: SocketAddr,
    /// The rooms the user was in, and has left.
    pub rooms: Vec<u32>,
    /// Why the server closed the connection; `None` when the client went
    /// away (closed its socket or sent a close frame).
    pub reason: Option<CloseFrame>,
    /// Time from the handshake to the end.
    pub connected_for: std::time::Duration,
}

/// Values registered with `with_state`, by type.
#[derive(Clone, Default)]
pub(crate) struct StateMap {
    values: HashMap<TypeId, Arc<dyn Any + Send + Sync>, BuildHasherDefault<TypeIdHasher>>,
}

/// Hashes a [`TypeId`], which is a hash already, by passing it through:
/// extractors look state up on every message, and SipHash of a `TypeId`
/// costs more than the rest of the lookup.
#[derive(Default)]
struct TypeIdHasher(u64);

impl Hasher for TypeIdHasher {
    fn write(&mut self, bytes: &[u8]) {
        // `TypeId` writes one `u64`; anything else still hashes, slowly.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl StateMap {
    pub(crate) fn insert<T: Send + Sync + 'static>(&mut self, value: Arc<T>) {
        self.values.insert(TypeId::of::<T>(), value);
    }

    pub(crate) fn get<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        let value = self.values.get(&TypeId::of::<T>())?;
        Arc::clone(value).downcast::<T>().ok()
    }

    pub(crate) fn contains(&self, type_id: TypeId) -> bool {
        self.values.contains_key(&type_id)
    }
}

impl fmt::Debug for StateMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateMap")
            .field("len", &self.values.len())
            .finish()
    }
}

/// What every session of one server shares.
#[derive(Debug)]
pub(crate) struct Services {
    pub(crate) connections: ConnectionService,
    pub(crate) rooms: RoomConnectionService,
    pub(crate) scheduler: Option<AsyncTaskScheduler>,
    pub(crate) state: StateMap,
}

/// The sender of the message being handled, and the server's services.
///
/// Cheap to clone (two reference counts).
#[derive(Clone)]
pub struct Session {
    connection: Arc<Connection>,
    services: Arc<Services>,
}

impl Session {
    pub(crate) fn new(connection: Arc<Connection>, services: Arc<Services>) -> Self {
        Session {
            connection,
            services,
        }
    }

    pub(crate) fn connection(&self) -> &Arc<Connection> {
        &self.connection
    }

    /// The sender's user id, as assigned by the server's authenticator.
    pub fn user_id(&self) -> u32 {
        self.connection.user_id
    }

    /// The sender's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.connection.peer_addr
    }

    /// Sends a message to the sender, besides any reply the handler returns.
    ///
    /// # Errors
    ///
    /// As [`ConnectionService::send_to_user`].
    pub fn send<M: Message>(&self, message: &M) -> Result<(), SendError> {
        let frame = self.services.connections.encode(message)?;
        self.connection.send_variant(frame, message.variant())
    }

    /// Closes the sender's connection after what is queued for it, with a
    /// close frame carrying `reason`.
    pub fn disconnect(&self, reason: &str) {
        self.connection.close(CloseCode::Kicked, reason, true);
    }

    /// The connection registry.
    pub fn connections(&self) -> &ConnectionService {
        &self.services.connections
    }

    /// The rooms.
    pub fn rooms(&self) -> &RoomConnectionService {
        &self.services.rooms
    }

    /// The task scheduler, when the server runs one.
    pub fn scheduler(&self) -> Option<&AsyncTaskScheduler> {
        self.services.scheduler.as_ref()
    }

    /// A value registered with `with_state`, if there is one of type `T`.
    pub fn state<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.services.state.get::<T>()
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("user_id", &self.user_id())
            .field("peer_addr", &self.peer_addr())
            .finish_non_exhaustive()
    }
}

impl<M: Message> FromSession<M> for Session {
    fn from_session(cx: &mut HandlerContext<M>) -> Result<Self, Rejection> {
        Ok(cx.session().clone())
    }
}

/// The sender's user id, as a handler parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserId(pub u32);

impl<M: Message> FromSession<M> for UserId {
    fn from_session(cx: &mut HandlerContext<M>) -> Result<Self, Rejection> {
        Ok(UserId(cx.session().user_id()))
    }
}

impl<M: Message> FromSession<M> for ConnectionService {
    fn from_session(cx: &mut HandlerContext<M>) -> Result<Self, Rejection> {
        Ok(cx.session().connections().clone())
    }
}

impl<M: Message> FromSession<M> for RoomConnectionService {
    fn from_session(cx: &mut HandlerContext<M>) -> Result<Self, Rejection> {
        Ok(cx.session().rooms().clone())
    }
}

impl<M: Message> FromSession<M> for AsyncTaskScheduler {
    fn requirement() -> Option<Requirement> {
        Some(Requirement::Scheduler)
    }

    fn from_session(cx: &mut HandlerContext<M>) -> Result<Self, Rejection> {
        cx.session()
            .scheduler()
            .cloned()
            .ok_or(Rejection::SchedulerOff)
    }
}

/// Shared state registered with
/// [`TcpGameService::with_state`](crate::TcpGameService::with_state), as a
/// handler parameter.
///
/// The server checks before it binds that every `State<T>` some handler
/// asks for was provided.
///
/// # Examples
///
/// ```
/// use gamewire::prelude::*;
///
/// #[message]
/// pub enum GameMessage {
///     #[gamewire(direction = to_server)]
///     Score { points: u32 },
/// }
///
/// #[derive(Default)]
/// pub struct Scores {
///     total: std::sync::atomic::AtomicU64,
/// }
///
/// #[handler(GameMessage::Score)]
/// async fn score(score: Score, scores: State<Scores>) {
///     scores.total.fetch_add(u64::from(score.points), std::sync::atomic::Ordering::Relaxed);
/// }
///
/// # fn main() {
/// let server = TcpGameService::with_default_config()
///     .protocol::<GameMessage>()
///     .with_state(Scores::default());
/// server.check().expect("every State<T> a handler takes was provided");
/// # }
/// ```
pub struct State<T>(pub Arc<T>);

impl<T> Deref for State<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> Clone for State<T> {
    fn clone(&self) -> Self {
        State(Arc::clone(&self.0))
    }
}

impl<T: fmt::Debug> fmt::Debug for State<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("State").field(&self.0).finish()
    }
}

impl<M: Message, T: Send + Sync + 'static> FromSession<M> for State<T> {
    fn requirement() -> Option<Requirement> {
        Some(Requirement::State {
            type_id: TypeId::of::<T>(),
            type_name: std::any::type_name::<T>(),
        })
    }

    fn from_session(cx: &mut HandlerContext<M>) -> Result<Self, Rejection> {
        cx.session()
            .state::<T>()
            .map(State)
            .ok_or(Rejection::MissingState(std::any::type_name::<T>()))
    }
}
