//! Handlers: plain `async fn`s whose parameters are extracted by type.
//!
//! `#[handler(Protocol::Variant)]` turns an `async fn` into an entry of the
//! dispatch table. Each parameter's type implements [`FromSession`]: the
//! variant's payload (the one parameter that takes the message by value),
//! [`Session`], [`State<T>`](crate::State), or the service handles. The
//! return type implements [`IntoReply`]: a message is sent back to the
//! sender, `()` sends nothing, and an `Err` becomes an error frame.

use std::any::{Any, TypeId};
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::protocol::{Location, Message};
use crate::session::Session;

/// The reply a handler produced: a message for the sender, nothing, or an
/// error that becomes an error frame.
pub type Reply<M> = Result<Option<M>, HandlerError>;

/// An error returned by a handler.
///
/// Any error converts into it, `anyhow::Error` included, so a handler may
/// return `anyhow::Result<_>`, `Result<_, std::io::Error>` or
/// `Result<_, String>`. Its `Display` text is sent to the client in the
/// error frame.
#[derive(Debug)]
pub struct HandlerError {
    inner: Box<dyn StdError + Send + Sync + 'static>,
    pub(crate) code: crate::wire::ErrorCode,
}

impl HandlerError {
    /// Wraps any error.
    pub fn new(error: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        HandlerError {
            inner: error.into(),
            code: crate::wire::ErrorCode::HandlerFailed,
        }
    }

    pub(crate) fn with_code(code: crate::wire::ErrorCode, message: impl Into<String>) -> Self {
        HandlerError {
            inner: message.into().into(),
            code,
        }
    }

    /// The underlying error.
    pub fn get_ref(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.inner
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

/// The error's own text is its `Display`; `source` continues with the
/// wrapped error's cause, so a report (`anyhow`'s `{:#}`, say) prints each
/// cause once.
impl StdError for HandlerError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner.source()
    }
}

impl From<Rejection> for HandlerError {
    fn from(rejection: Rejection) -> Self {
        HandlerError::with_code(crate::wire::ErrorCode::HandlerFailed, rejection.to_string())
    }
}

/// Why a parameter could not be extracted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The payload parameter was asked for twice, or for a different
    /// variant than the one that arrived.
    #[error("the handler's payload parameter does not match the message `{0}`")]
    PayloadMismatch(&'static str),
    /// `State<T>` was asked for but the server was not given a `T`.
    #[error("state `{0}` was not provided; add it with `TcpGameService::with_state`")]
    MissingState(&'static str),
    /// An extractor of your own refused, with this text for the sender.
    #[error("{0}")]
    Custom(String),
    /// `AsyncTaskScheduler` was asked for but the server runs none.
    #[error("the server runs no scheduler; set `enable_async_scheduler: true`")]
    SchedulerOff,
}

/// The input of one handler call: the message and the sender's session.
///
/// An extractor (a [`FromSession`] implementation) reads what it needs
/// from here: most only look at the [`session`](Self::session); the payload
/// types `#[message]` generates take the message itself.
#[derive(Debug)]
pub struct HandlerContext<M> {
    message: Option<M>,
    session: Session,
}

impl<M: Message> HandlerContext<M> {
    pub(crate) fn new(message: M, session: Session) -> Self {
        HandlerContext {
            message: Some(message),
            session,
        }
    }

    /// The sender's session.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Moves the message out; the payload extractor calls this once.
    ///
    /// # Errors
    ///
    /// [`Rejection::PayloadMismatch`] when the message was already taken.
    pub fn take_message(&mut self) -> Result<M, Rejection> {
        self.message
            .take()
            .ok_or(Rejection::PayloadMismatch(M::PROTOCOL.name))
    }
}

/// A type that can be a parameter of a `#[handler]` fn.
///
/// Implemented by the payload types `#[message]` generates, by [`Session`],
/// [`State<T>`](crate::State), [`UserId`](crate::UserId) and the service
/// handles. Implement it for your own types to add an extractor.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a handler parameter",
    label = "cannot be extracted",
    note = "parameters are the variant's payload, `Session`, `UserId`, `State<T>`, the service handles, or a type implementing `FromSession<{M}>`; see book/src/reference/macros.md"
)]
pub trait FromSession<M>: Sized {
    /// For a payload type: the declaration index of its variant. `#[handler]`
    /// uses it to reject, at compile time, a payload of another variant.
    const PAYLOAD_OF: Option<usize> = None;

    /// What the server must provide for this extractor to succeed, checked
    /// when the server starts.
    fn requirement() -> Option<Requirement> {
        None
    }

    /// Extracts the value for one call.
    ///
    /// # Errors
    ///
    /// A [`Rejection`] becomes an error frame to the sender.
    fn from_session(cx: &mut HandlerContext<M>) -> Result<Self, Rejection>;
}

/// Something an extractor needs from the server, checked when the server
/// is built, before it binds.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Requirement {
    /// A value added with
    /// [`TcpGameService::with_state`](crate::TcpGameService::with_state).
    State {
        /// The state type's id.
        type_id: TypeId,
        /// The state type's name, for the error report.
        type_name: &'static str,
    },
    /// The task scheduler (`enable_async_scheduler: true`).
    Scheduler,
}

/// What a `#[handler]` fn may return.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned from a handler for `{M}`",
    label = "not a reply",
    note = "a handler returns `()`, a `{M}` (or one of its payload types), an `Option` of those, or a `Result` of those with any error type; see book/src/reference/macros.md"
)]
pub trait IntoReply<M> {
    /// Converts the handler's output into the reply to send.
    fn into_reply(self) -> Reply<M>;
}

// Not offered as the fix when a handler returns something else: the
// trait's note already lists what a handler may return.
#[diagnostic::do_not_recommend]
impl<M> IntoReply<M> for () {
    fn into_reply(self) -> Reply<M> {
        Ok(None)
    }
}

impl<M: Message> IntoReply<M> for M {
    fn into_reply(self) -> Reply<M> {
        Ok(Some(self))
    }
}

impl<M, T: IntoReply<M>> IntoReply<M> for Option<T> {
    fn into_reply(self) -> Reply<M> {
        match self {
            Some(reply) => reply.into_reply(),
            None => Ok(None),
        }
    }
}

impl<M, T, E> IntoReply<M> for Result<T, E>
where
    T: IntoReply<M>,
    E: Into<Box<dyn StdError + Send + Sync + 'static>>,
{
    fn into_reply(self) -> Reply<M> {
        match self {
            Ok(reply) => reply.into_reply(),
            Err(error) => Err(HandlerError::new(error)),
        }
    }
}

/// The boxed future a handler trampoline returns.
#[doc(hidden)]
pub type HandlerFuture<M> = Pin<Box<dyn Future<Output = Reply<M>> + Send + 'static>>;

/// A handler trampoline, typed by its protocol.
#[doc(hidden)]
pub(crate) type HandlerFn<M> = fn(HandlerContext<M>) -> HandlerFuture<M>;

/// A typed handler behind the `dyn Any` of a [`HandlerRegistration`].
#[doc(hidden)]
#[derive(Debug)]
pub struct TypedHandler<M: 'static> {
    /// The generated trampoline.
    pub call: HandlerFn<M>,
}

/// One `#[handler]` fn, as submitted to [`inventory`].
#[doc(hidden)]
#[derive(Debug)]
pub struct HandlerRegistration {
    /// The protocol's [`TypeId`].
    pub protocol: fn() -> TypeId,
    /// Declaration index of the handled variant.
    pub variant: usize,
    /// The handled variant's name.
    pub variant_name: &'static str,
    /// The fn's name.
    pub name: &'static str,
    /// A [`TypedHandler<M>`] for the protocol `M`.
    pub handler: &'static (dyn Any + Send + Sync),
    /// What each parameter needs from the server.
    pub requirements: &'static [fn() -> Option<Requirement>],
    /// Where the fn is.
    pub location: Location,
}

inventory::collect!(HandlerRegistration);

impl HandlerRegistration {
    /// The trampoline, when this registration is for protocol `M`.
    pub(crate) fn typed<M: Message>(&self) -> Option<HandlerFn<M>> {
        self.handler
            .downcast_ref::<TypedHandler<M>>()
            .map(|typed| typed.call)
    }
}

/// Whether a parameter whose [`FromSession::PAYLOAD_OF`] is `payload_of`
/// may be taken by the handler of the variant at declaration index
/// `variant` (`usize::MAX` for an unknown variant, reported elsewhere).
#[doc(hidden)]
pub const fn payload_matches(payload_of: Option<usize>, variant: usize) -> bool {
    match payload_of {
        Some(index) => variant == usize::MAX || index == variant,
        None => true,
    }
}

/// `#[handler]` names `<Param as PayloadOfHandledVariant<M, { payload_matches(..) }>>::CHECK`
/// for each parameter, so a payload of another variant is a compile error
/// at that parameter's type.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is the payload of another variant of `{M}`, not of the variant this handler names",
    label = "the payload of another variant",
    note = "a `#[handler(Enum::Variant)]` fn takes the payload of `Variant`: the struct named after it, or the type a newtype variant wraps; see book/src/reference/macros.md"
)]
pub trait PayloadOfHandledVariant<M, const MATCHES: bool> {
    /// Named by the generated check.
    const CHECK: () = ();
}

#[diagnostic::do_not_recommend]
impl<T: ?Sized, M> PayloadOfHandledVariant<M, true> for T {}

/// Runs a future and turns a panic into an error, so one bad message
/// cannot take its session, or the server, down.
pub(crate) struct CatchUnwind<F: ?Sized>(pub(crate) Pin<Box<F>>);

impl<F: Future + ?Sized> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let future = &mut self.0;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Ok(std::task::Poll::Ready(output)) => std::task::Poll::Ready(Ok(output)),
            Err(panic) => std::task::Poll::Ready(Err(panic)),
        }
    }
}

/// The text of a panic payload, for logs and the error frame.
pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> &str {
    if let Some(text) = panic.downcast_ref::<&'static str>() {
        text
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text
    } else {
        "panicked"
    }
}
