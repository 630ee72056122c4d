//! gamewire: a declarative framework for real-time TCP game servers.
//!
//! Declare the protocol once, as an enum marked [`#[message]`](macro@message);
//! write plain `async fn`s marked [`#[handler]`](macro@handler); start a
//! [`TcpGameService`]. The macros register everything, so defining a handler
//! is enough for it to be dispatched, and protocol mistakes are compile
//! errors.
//!
//! ```no_run
//! use gamewire::prelude::*;
//!
//! #[message]
//! pub enum GameMessage {
//!     #[gamewire(direction = to_server)]
//!     Ping { nonce: u64 },
//!     #[gamewire(direction = to_client)]
//!     Pong { nonce: u64 },
//! }
//!
//! #[handler(GameMessage::Ping)]
//! async fn ping(ping: Ping) -> Pong {
//!     Pong { nonce: ping.nonce }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), gamewire::ServerError> {
//!     TcpGameService::with_default_config().start().await
//! }
//! ```
//!
//! The path of one message:
//!
//! ```text
//! transport (TCP, WebSocket) ─► session: handshake, read loop ─► codec ─► middleware chain ─► dispatch ─► #[handler] fn
//!                                                                                              │
//! transport ◄─ writer ◄─ outbound queue (bounded) ◄─ ConnectionService / RoomConnectionService ◄┘
//! ```
//!
//! The session knows its connection only through the transport traits and
//! its bytes only through the [`Codec`](codec::Codec) trait. The book's
//! architecture chapter maps every module of this crate to its job.
//!
//! Without a protocol of your own, the server runs the built-in chat
//! ([`ChatMessage`]): rooms to join, leave, list and talk in.
#![doc(test(attr(deny(warnings))))]

// The macros name `::gamewire::__private`; this makes that path work inside
// this crate too, where the built-in chat protocol uses them.
extern crate self as gamewire;

mod admission;
mod auth;
pub mod bench;
pub mod chat;
pub mod client;
pub mod cluster;
pub mod codec;
mod config;
mod connection;
mod describe;
mod dispatch;
mod handler;
mod heartbeat;
mod lock;
mod middleware;
mod monitor;
#[cfg(feature = "ops")]
mod ops;
mod pool;
mod protocol;
mod room;
mod scheduler;
mod server;
mod session;
pub mod simd;
mod transport;
pub mod wire;

pub use async_trait::async_trait;
pub use gamewire_macros::{Describe, handler, message, middleware, payload};

/// A protocol's description for clients in other languages: every variant
/// with its id, direction and fields, and every type its fields use, as
/// bincode lays them out. A generator (`gamewire-codegen` writes a
/// TypeScript client) reads a [`ProtocolSchema`](schema::ProtocolSchema).
///
/// `#[message]` describes the protocol; a field's type describes itself
/// through [`Describe`]: the standard types do, and a type
/// of your own does with `#[derive(gamewire::Describe)]`.
///
/// ```
/// use gamewire::ChatMessage;
/// use gamewire::schema::{ProtocolSchema, WireShape};
///
/// let schema = ProtocolSchema::of::<ChatMessage>();
/// assert_eq!(schema.name, "ChatMessage");
/// let list = schema.variants.iter().find(|v| v.name == "RoomList").unwrap();
/// assert_eq!(
///     list.fields.shapes().next(),
///     Some(&WireShape::Seq(Box::new(WireShape::Named("RoomSummary".into()))))
/// );
/// assert!(schema.types.contains_key("RoomSummary"));
/// assert!(schema.undescribed().is_empty());
/// ```
pub mod schema {
    pub use crate::describe::{Describe, EnumVariant, Fields, Registry, TypeDef, WireShape};
    pub use crate::lock::{LockError, check_lock};
    pub use crate::protocol::{LockFile, ProtocolSchema, VariantSchema};
    pub use crate::server::linked;
}

pub use crate::auth::{AnonymousAuthenticator, AuthError, Authenticator};
pub use crate::chat::{ChatMessage, ChatRoomMessageHandler};
pub use crate::codec::MAX_FRAME_LEN_LIMIT;
pub use crate::config::{
    CLOSE_LINGER_BYTES, ConfigError, DEFAULT_PORT, SlowConsumerPolicy, TcpServerConfig,
};
pub use crate::connection::{ConnectionInfo, ConnectionService, SendError};
pub use crate::describe::Describe;
pub use crate::dispatch::BuildError;
pub use crate::handler::{
    FromSession, HandlerContext, HandlerError, IntoReply, Rejection, Reply, Requirement,
};
pub use crate::heartbeat::HeartbeatService;
pub use crate::middleware::{LoggingMiddleware, MessageMiddleware, MiddlewareError};
pub use crate::monitor::{ConnectionStats, LatencySummary, PerformanceMonitor, ServerStats};
pub use crate::pool::{EnhancedMemoryPool, MemoryPoolConfig, MemoryPoolStats, PooledBuffer};
pub use crate::protocol::{Direction, Message, ProtocolInfo, Revision, VariantInfo};
pub use crate::room::{RoomConnectionService, RoomError, RoomStatus};
pub use crate::scheduler::{
    AsyncTaskScheduler, PriorityStats, SchedulerConfig, SchedulerError, SchedulerStats,
    TaskPriority,
};
pub use crate::server::{ServerError, TcpGameService, shutdown_signal};
pub use crate::session::{Disconnect, Session, State, UserId};

/// The names most servers need, in one `use`.
pub mod prelude {
    pub use crate::{
        ChatRoomMessageHandler, ConnectionService, LoggingMiddleware, Message, MessageMiddleware,
        RoomConnectionService, Session, State, TcpGameService, TcpServerConfig, UserId, handler,
        message, middleware, payload,
    };
}

/// What the macros' expansions name. Not public API: it changes without
/// notice.
#[doc(hidden)]
pub mod __private {
    pub use ::inventory;
    pub use ::serde;
    pub use ::std;

    pub use crate::describe::{
        Describe, DescribeProbe, EnumVariant, Fields, Registry, TypeDef, ViaDescribe, ViaName,
        WireShape,
    };
    pub use crate::handler::{
        FromSession, HandlerContext, HandlerFuture, HandlerRegistration, IntoReply,
        PayloadOfHandledVariant, Rejection, Reply, Requirement, TypedHandler, payload_matches,
    };
    pub use crate::middleware::{MessageMiddleware, MiddlewareRegistration, TypedMiddleware};
    pub use crate::protocol::{
        Direction, Location, LockFile, Message, MessageField, ProtocolInfo, Revision, VariantInfo,
        fnv1a64, variant_index,
    };
    pub use crate::server::ProtocolRegistration;

    /// `TypeId::of::<T>` as a function pointer for the registrations.
    pub fn type_id<T: 'static>() -> ::std::any::TypeId {
        ::std::any::TypeId::of::<T>()
    }
}
