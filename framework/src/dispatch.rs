//! The message service: middleware chain, then the generated dispatch.
//!
//! [`MessageService`] is built once per server from the handlers and
//! middleware registered for its protocol. Building it is where every
//! problem the compiler could not see is found (a variant with two
//! handlers across crates, a `State<T>` nobody provided, a handler taking
//! the scheduler of a server without one, a client-to-server variant
//! without a handler, two middlewares with one order), all of them
//! reported together with their source locations.
//!
//! Processing one message gives a typed [`Outcome`]: the session decodes
//! the frame before and sends what the outcome says after. The service
//! records what it measures (handler and queue times, handler errors and
//! panics) in the [`PerformanceMonitor`].

use std::any::TypeId;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use crate::handler::{
    CatchUnwind, HandlerContext, HandlerError, HandlerFn, HandlerRegistration, Reply, Requirement,
    panic_message,
};
use crate::middleware::{self, MiddlewareRegistration, OrderedMiddleware};
use crate::monitor::{Event, PerformanceMonitor};
use crate::protocol::{Direction, Location, Message};
use crate::session::{Session, StateMap};
use crate::wire::ErrorCode;

/// The server cannot start: every problem found, one per line.
#[derive(Debug, thiserror::Error)]
#[error("the gamewire server cannot start:{}", render(.problems))]
pub struct BuildError {
    problems: Vec<String>,
}

fn render(problems: &[String]) -> String {
    problems.iter().map(|p| format!("\n  - {p}")).collect()
}

impl BuildError {
    pub(crate) fn new(problems: Vec<String>) -> Self {
        BuildError { problems }
    }

    /// The problems, one sentence each.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }
}

/// What processing one message came to.
#[derive(Debug)]
pub(crate) enum Outcome<M> {
    /// The handler's reply, for the sender.
    Reply(M),
    /// The handler ran and has nothing to send.
    Done,
    /// A middleware stopped the message; nothing is sent.
    Stopped,
    /// The message failed (no handler, a handler or middleware error or
    /// panic): the sender gets an error frame with this code and text.
    Failed(HandlerError),
}

impl<M> Outcome<M> {
    fn of(reply: Reply<M>) -> Self {
        match reply {
            Ok(Some(reply)) => Outcome::Reply(reply),
            Ok(None) => Outcome::Done,
            Err(error) => Outcome::Failed(error),
        }
    }
}

/// What the server provides, for the checks made when it is built.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Provided<'a> {
    pub(crate) state: &'a StateMap,
    pub(crate) scheduler: bool,
}

/// Middleware → dispatch → handler, for protocol `M`.
pub(crate) struct MessageService<M: Message> {
    /// Indexed by variant declaration index.
    handlers: Box<[Option<HandlerFn<M>>]>,
    middleware: Arc<[OrderedMiddleware<M>]>,
    /// Where latencies and handler errors are counted.
    monitor: PerformanceMonitor,
}

impl<M: Message> fmt::Debug for MessageService<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageService")
            .field("protocol", &M::PROTOCOL.name)
            .field("handlers", &self.handlers.iter().flatten().count())
            .field("middleware", &self.middleware)
            .finish()
    }
}

impl<M: Message> MessageService<M> {
    /// Collects the handlers and middleware of `M`, checking everything the
    /// compiler could not.
    pub(crate) fn build(
        provided: Provided<'_>,
        mut extra_middleware: Vec<OrderedMiddleware<M>>,
        mut problems: Vec<String>,
        monitor: PerformanceMonitor,
    ) -> Result<Self, BuildError> {
        let protocol = M::PROTOCOL;
        let mut registered: Vec<Option<&'static HandlerRegistration>> =
            vec![None; protocol.variants.len()];
        let mut handlers: Vec<&'static HandlerRegistration> =
            inventory::iter::<HandlerRegistration>
                .into_iter()
                .filter(|reg| (reg.protocol)() == TypeId::of::<M>())
                .collect();
        // inventory's order is unspecified; sort so reports are stable.
        handlers.sort_by_key(|reg| (reg.variant, reg.location.file, reg.location.line));
        for reg in handlers {
            let Some(slot) = registered.get_mut(reg.variant) else {
                continue;
            };
            if let Some(first) = slot {
                problems.push(format!(
                    "two handlers for `{}::{}`: `{}` at {} and `{}` at {}",
                    protocol.name,
                    reg.variant_name,
                    first.name,
                    first.location,
                    reg.name,
                    reg.location
                ));
                continue;
            }
            *slot = Some(reg);
            for requirement in reg.requirements.iter().filter_map(|req| req()) {
                if let Some(problem) = unmet(provided, requirement) {
                    problems.push(format!(
                        "handler `{}` at {} {problem}",
                        reg.name, reg.location
                    ));
                }
            }
        }
        for (variant, reg) in protocol.variants.iter().zip(&registered) {
            if reg.is_none() && variant.direction == Direction::ToServer && !variant.unhandled {
                problems.push(format!(
                    "no handler for `{0}::{1}` (declared at {2}), which clients send; write a `#[handler({0}::{1})]` fn, or mark the variant `#[gamewire(unhandled)]`",
                    protocol.name, variant.name, variant.location
                ));
            }
        }

        extra_middleware.extend(
            inventory::iter::<MiddlewareRegistration>
                .into_iter()
                .filter_map(MiddlewareRegistration::typed::<M>),
        );
        extra_middleware.sort_by_key(|m| m.order);
        for pair in extra_middleware.windows(2) {
            if pair[0].order == pair[1].order {
                problems.push(format!(
                    "middlewares `{}`{} and `{}`{} share the order {}; give each its own",
                    pair[0].name,
                    at(pair[0].location),
                    pair[1].name,
                    at(pair[1].location),
                    pair[0].order
                ));
            }
        }

        if !problems.is_empty() {
            return Err(BuildError::new(problems));
        }
        Ok(MessageService {
            handlers: registered
                .into_iter()
                .map(|reg| reg.and_then(|reg| reg.typed::<M>()))
                .collect(),
            middleware: extra_middleware.into(),
            monitor,
        })
    }

    /// Runs one message from `session`, read off the socket at `read_at`,
    /// through the middleware chain and its handler. `stamp` is the
    /// client's send time of a stamped message, in microseconds since the
    /// Unix epoch.
    pub(crate) async fn process(
        &self,
        session: &Session,
        message: M,
        read_at: Instant,
        stamp: Option<u64>,
    ) -> Outcome<M> {
        let outcome = self.run(session, message, read_at).await;
        if let (Some(sent_at_us), true) = (stamp, self.monitor.records_latencies()) {
            let micros = crate::wire::unix_micros().saturating_sub(sent_at_us);
            let elapsed = std::time::Duration::from_micros(micros);
            self.monitor.record_end_to_end(session.user_id(), elapsed);
        }
        if let Outcome::Failed(error) = &outcome {
            if error.code == ErrorCode::HandlerPanicked {
                self.monitor.count(Event::HandlerPanic);
            } else {
                self.monitor.count(Event::HandlerError);
                // Debug, not warn: a refused move is routine in a game, and
                // the sender gets the error frame; the count is in the stats.
                tracing::debug!(user_id = session.user_id(), %error, "handler error");
            }
        }
        outcome
    }

    async fn run(&self, session: &Session, message: M, read_at: Instant) -> Outcome<M> {
        if self.middleware.is_empty() {
            return Outcome::of(self.call(session, message, read_at).await);
        }
        // Boxed: sessions without middleware, the common case, then carry
        // none of the chain's state in their task. A panicking middleware
        // is contained like a panicking handler: it is a bug in one
        // message's path, not a reason to end the session.
        let variant = message.variant().name;
        let chain = Box::pin(self.process_with_middleware(session, message, read_at));
        match CatchUnwind(chain).await {
            Ok(Some(reply)) => Outcome::of(reply),
            Ok(None) => Outcome::Stopped,
            Err(panic) => Outcome::Failed(panicked(session, variant, &*panic, "a middleware")),
        }
    }

    async fn process_with_middleware(
        &self,
        session: &Session,
        mut message: M,
        read_at: Instant,
    ) -> Option<Reply<M>> {
        let user_id = session.user_id();
        let (ran, go_on) = middleware::run_before(&self.middleware, user_id, &mut message).await;
        let chain = &self.middleware[..ran];
        match go_on {
            Ok(true) => {
                // after_process sees the message the handler got; the handler
                // consumes its copy.
                let seen = message.clone();
                let result = self.call(session, message, read_at).await;
                middleware::run_after(chain, user_id, &seen, &result).await;
                Some(result)
            }
            Ok(false) => None,
            Err(error) => {
                let result = Err(error);
                middleware::run_after(chain, user_id, &message, &result).await;
                Some(result)
            }
        }
    }

    async fn call(&self, session: &Session, message: M, read_at: Instant) -> Reply<M> {
        let variant = message.variant();
        let Some(handler) = self.handlers[message.variant_index()] else {
            return Err(HandlerError::with_code(
                ErrorCode::NoHandler,
                format!("no handler for `{}::{}`", M::PROTOCOL.name, variant.name),
            ));
        };
        let index = message.variant_index();
        let cx = HandlerContext::new(message, session.clone());
        let timed = self.monitor.records_latencies();
        let started = timed.then(Instant::now);
        let outcome = CatchUnwind(handler(cx)).await;
        if let Some(started) = started {
            let queued = started.saturating_duration_since(read_at);
            let handled = started.elapsed();
            self.monitor
                .record_message(session.user_id(), queued, handled);
            self.monitor.record_variant(index, handled);
        }
        match outcome {
            Ok(reply) => reply,
            Err(panic) => Err(panicked(session, variant.name, &*panic, "the handler")),
        }
    }
}

/// Logs a panic on `variant`'s path and turns it into the error the client
/// gets; `culprit` says what panicked.
fn panicked(
    session: &Session,
    variant: &str,
    panic: &(dyn std::any::Any + Send),
    culprit: &str,
) -> HandlerError {
    tracing::error!(
        user_id = session.user_id(),
        variant,
        panic = panic_message(panic),
        "{culprit} panicked"
    );
    HandlerError::with_code(
        ErrorCode::HandlerPanicked,
        format!("{culprit} for `{variant}` failed"),
    )
}

/// What is missing for `requirement`, as the end of a sentence that starts
/// with the handler's name; `None` when the server provides it.
fn unmet(provided: Provided<'_>, requirement: Requirement) -> Option<String> {
    match requirement {
        Requirement::State {
            type_id,
            type_name,
        } if !provided.state.contains(type_id) => Some(format!(
            "takes `State<{type_name}>`, but no such state was provided; add it with `TcpGameService::with_state`"
        )),
        Requirement::Scheduler if !provided.scheduler => Some(
            "takes `AsyncTaskScheduler`, but the server runs no scheduler; set `enable_async_scheduler: true` in its `TcpServerConfig`"
                .to_owned(),
        ),
        _ => None,
    }
}

fn at(location: Option<Location>) -> String {
    location.map(|l| format!(" at {l}")).unwrap_or_default()
}
