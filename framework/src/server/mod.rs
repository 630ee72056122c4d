//! The server: from a listener to sessions, and the facade that runs it.
//!
//! [`TcpGameService`] is what users build, start and stop. Starting it
//! picks the protocol (the one `#[message]` enum with handlers, or the
//! built-in chat), builds the message service (which checks the
//! registrations), then accepts connections, each into a session that
//! knows its transport and codec only through their traits.
//!
//! - `service.rs`: [`TcpGameService`]: builder, start, serve, shutdown;
//! - `handles.rs`: the service handles and the original guide's calls;
//! - `protocols.rs`: the protocols linked in, and which one to serve;
//! - `runtime.rs`: what every clone of a server shares, how it was
//!   configured, and what the sessions of one run share;
//! - `run.rs`: one run: background tasks, accepting, draining;
//! - `accept.rs`: the listener loop, admission within `max_connections`,
//!   refusal and the graceful drain;
//! - `session.rs`: one connection's handshake, read loop, frames and end;
//! - `error.rs`: [`ServerError`].

mod accept;
mod error;
mod handles;
mod protocols;
mod run;
mod runtime;
mod service;
mod session;

pub use error::ServerError;
pub use protocols::{ProtocolRegistration, linked};
pub use service::{TcpGameService, shutdown_signal};
