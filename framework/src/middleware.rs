//! Middleware: code that runs around every handler call.
//!
//! A middleware implements [`MessageMiddleware`], the trait of the original
//! architecture guide. The chain runs in ascending `order`:
//!
//! ```text
//!  message ─► before_process (order 0) ─► before_process (order 10) ─► handler
//!                                                                         │
//!  reply   ◄─ after_process  (order 0) ◄─ after_process  (order 10) ◄─────┘
//! ```
//!
//! Rules a middleware follows:
//!
//! 1. `before_process` may rewrite the message; returning `Ok(false)` stops
//!    the chain: no later middleware and no handler runs, and nothing is
//!    replied.
//! 2. `before_process` returning `Err` stops the chain too and sends the
//!    sender an error frame with the error's text.
//! 3. `after_process` runs, in reverse order, for every middleware whose
//!    `before_process` ran, once the handler ran or a `before_process`
//!    failed. It sees the message as the handler received it and the
//!    handler's result. When a middleware returned `Ok(false)`, no
//!    `after_process` runs.
//! 4. An error from `after_process` is logged; the reply is still sent.
//! 5. Middleware runs on the session's task: keep it short, and never block.
//! 6. A panic anywhere in the chain is caught like a handler's: the rest of
//!    the chain is skipped, the sender gets a `HandlerPanicked` error frame,
//!    the panic is logged and counted, and the session goes on.
//!
//! Register a middleware on the server with
//! [`TcpGameService::middleware`](crate::TcpGameService::middleware), or
//! declare it once with `#[middleware(order = N)]` on its
//! `impl MessageMiddleware<YourProtocol> for YourType` block (the type must
//! implement `Default`). Two middlewares may not share an order.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;

use crate::handler::{HandlerError, Reply};
use crate::protocol::{Location, Message};

/// The error type middleware returns.
pub type MiddlewareError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Code that runs before and after every handler call.
///
/// # Examples
///
/// ```
/// use gamewire::prelude::*;
/// use gamewire::{ChatMessage, MiddlewareError, Reply};
///
/// /// Drops chat lines that are empty after trimming.
/// struct NoEmptyChat;
///
/// #[gamewire::async_trait]
/// impl MessageMiddleware<ChatMessage> for NoEmptyChat {
///     async fn before_process(&self, _user: u32, msg: &mut ChatMessage) -> Result<bool, MiddlewareError> {
///         Ok(!matches!(msg, ChatMessage::SendChat { text, .. } if text.trim().is_empty()))
///     }
///
///     async fn after_process(&self, _user: u32, _msg: &ChatMessage, _result: &Reply<ChatMessage>) -> Result<(), MiddlewareError> {
///         Ok(())
///     }
/// }
///
/// let _server = TcpGameService::with_default_config().middleware::<ChatMessage>(5, NoEmptyChat);
/// ```
#[async_trait::async_trait]
pub trait MessageMiddleware<M: Message>: Send + Sync + 'static {
    /// Runs before the handler; `Ok(false)` stops processing.
    ///
    /// # Errors
    ///
    /// An error stops processing and becomes an error frame to the sender.
    async fn before_process(&self, user_id: u32, message: &mut M) -> Result<bool, MiddlewareError>;

    /// Runs after the handler with its result.
    ///
    /// # Errors
    ///
    /// An error is logged; it does not change the reply.
    async fn after_process(
        &self,
        user_id: u32,
        message: &M,
        result: &Reply<M>,
    ) -> Result<(), MiddlewareError>;
}

/// The guide's logging middleware: every message and every result, through
/// `tracing`.
///
/// At info level it names each message's variant and the reply's; the
/// contents (a player's chat text, say) are logged at debug level only. A
/// handler's error is routine in a game (a refused move) and the client
/// gets an error frame for it, so it is logged at info, not as a failure of
/// the server; panics are logged at error level by the server itself.
#[derive(Debug, Clone)]
pub struct LoggingMiddleware {
    enabled: bool,
}

impl LoggingMiddleware {
    /// A logging middleware that logs when `enabled`.
    pub fn new(enabled: bool) -> Self {
        LoggingMiddleware { enabled }
    }
}

impl Default for LoggingMiddleware {
    fn default() -> Self {
        LoggingMiddleware::new(true)
    }
}

#[async_trait::async_trait]
impl<M: Message> MessageMiddleware<M> for LoggingMiddleware {
    async fn before_process(&self, user_id: u32, message: &mut M) -> Result<bool, MiddlewareError> {
        if self.enabled {
            tracing::info!(
                user_id,
                variant = message.variant().name,
                "processing message"
            );
            tracing::debug!(user_id, msg = ?message, "message contents");
        }
        Ok(true)
    }

    async fn after_process(
        &self,
        user_id: u32,
        _message: &M,
        result: &Reply<M>,
    ) -> Result<(), MiddlewareError> {
        if self.enabled {
            match result {
                Ok(Some(response)) => {
                    tracing::info!(user_id, reply = response.variant().name, "replying");
                    tracing::debug!(user_id, ?response, "reply contents");
                }
                Ok(None) => tracing::info!(user_id, "handled, no reply"),
                Err(error) => tracing::info!(
                    user_id,
                    %error,
                    "the handler refused the message; the client got an error frame"
                ),
            }
        }
        Ok(())
    }
}

/// A middleware with its place in the chain.
pub(crate) struct OrderedMiddleware<M: Message> {
    pub(crate) order: i32,
    pub(crate) name: String,
    pub(crate) middleware: Arc<dyn MessageMiddleware<M>>,
    pub(crate) location: Option<Location>,
}

impl<M: Message> Clone for OrderedMiddleware<M> {
    fn clone(&self) -> Self {
        OrderedMiddleware {
            order: self.order,
            name: self.name.clone(),
            middleware: Arc::clone(&self.middleware),
            location: self.location,
        }
    }
}

impl<M: Message> fmt::Debug for OrderedMiddleware<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrderedMiddleware")
            .field("order", &self.order)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A typed middleware factory behind the `dyn Any` of a
/// [`MiddlewareRegistration`].
#[doc(hidden)]
#[derive(Debug)]
pub struct TypedMiddleware<M: 'static> {
    /// Builds the middleware (`Default::default()` of the annotated type).
    pub make: fn() -> Arc<dyn MessageMiddleware<M>>,
}

/// One `#[middleware]` impl, as submitted to [`inventory`].
#[doc(hidden)]
#[derive(Debug)]
pub struct MiddlewareRegistration {
    /// The protocol's [`TypeId`].
    pub protocol: fn() -> TypeId,
    /// Place in the chain, ascending.
    pub order: i32,
    /// The middleware type's name.
    pub name: &'static str,
    /// A [`TypedMiddleware<M>`] for the protocol `M`.
    pub factory: &'static (dyn Any + Send + Sync),
    /// Where the impl is.
    pub location: Location,
}

inventory::collect!(MiddlewareRegistration);

impl MiddlewareRegistration {
    pub(crate) fn typed<M: Message>(&self) -> Option<OrderedMiddleware<M>> {
        let factory = self.factory.downcast_ref::<TypedMiddleware<M>>()?;
        Some(OrderedMiddleware {
            order: self.order,
            name: self.name.to_owned(),
            middleware: (factory.make)(),
            location: Some(self.location),
        })
    }
}

/// Runs `before_process` of every middleware; returns how many ran and
/// whether to go on.
pub(crate) async fn run_before<M: Message>(
    chain: &[OrderedMiddleware<M>],
    user_id: u32,
    message: &mut M,
) -> (usize, Result<bool, HandlerError>) {
    for (ran, link) in chain.iter().enumerate() {
        match link.middleware.before_process(user_id, message).await {
            Ok(true) => {}
            Ok(false) => return (ran + 1, Ok(false)),
            Err(error) => return (ran + 1, Err(HandlerError::new(error))),
        }
    }
    (chain.len(), Ok(true))
}

/// Runs `after_process` of the first `ran` middlewares, innermost first.
pub(crate) async fn run_after<M: Message>(
    chain: &[OrderedMiddleware<M>],
    user_id: u32,
    message: &M,
    result: &Reply<M>,
) {
    for link in chain.iter().rev() {
        if let Err(error) = link
            .middleware
            .after_process(user_id, message, result)
            .await
        {
            tracing::warn!(middleware = %link.name, %error, "after_process failed");
        }
    }
}
