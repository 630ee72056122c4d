//! The server: binding, accepting, sessions and graceful shutdown.
//!
//! [`TcpGameService`] is the facade users call. Starting it picks the
//! protocol (the one `#[message]` enum with handlers, or the built-in chat),
//! builds the message service (which checks the registrations), then
//! accepts connections. Each connection gets a reader task (this module's
//! session loop: handshake, then decode → dispatch → reply) and a writer
//! task (see [`connection`](crate::connection)).

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::{AnonymousAuthenticator, Authenticator};
use crate::chat::{ChatMessage, ChatRoomMessageHandler};
use crate::config::{ConfigError, TcpServerConfig};
use crate::connection::ConnectionService;
use crate::dispatch::BuildError;
use crate::heartbeat::HeartbeatService;
use crate::middleware::{MessageMiddleware, OrderedMiddleware};
use crate::monitor::{PerformanceMonitor, ServerStats};
use crate::pool::EnhancedMemoryPool;
use crate::protocol::{Message, ProtocolRegistration};
use crate::room::{RoomConnectionService, RoomStatus};
use crate::scheduler::{AsyncTaskScheduler, SchedulerError};
use crate::session::StateMap;

mod serve;

pub(crate) use serve::{check_protocol, serve_protocol};

/// The future of a whole server run for one protocol.
pub(crate) type ServeFuture = Pin<Box<dyn Future<Output = Result<(), ServerError>> + Send>>;

/// Runs a server for one protocol; monomorphized per `#[message]` enum.
pub(crate) type ServeFn = fn(TcpGameService, TcpListener) -> ServeFuture;

/// Checks the registrations of one protocol against a server's state.
pub(crate) type CheckFn = fn(&TcpGameService) -> Result<(), BuildError>;

/// The entry points of the protocol a server runs.
#[derive(Clone, Copy)]
struct ProtocolFns {
    serve: ServeFn,
    check: CheckFn,
}

impl ProtocolFns {
    fn of<M: Message>() -> Self {
        ProtocolFns {
            serve: serve_protocol::<M>,
            check: check_protocol::<M>,
        }
    }
}

/// The server could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A configuration value is out of range.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The handlers, middleware or state do not fit together.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The address could not be bound.
    #[error("could not bind {address}: {source}")]
    Bind {
        /// The address from the configuration.
        address: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// `start` or `serve` was called on a server that already ran.
    #[error("this server has already been started; create a new `TcpGameService`")]
    AlreadyStarted,
}

/// A hook run when a session ends.
pub(crate) type DisconnectHook = Arc<dyn Fn(&Disconnect) + Send + Sync>;

/// A session that ended, as [`TcpGameService::on_disconnect`] hooks see it.
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
    pub reason: Option<crate::wire::CloseFrame>,
    /// Time from the handshake to the end.
    pub connected_for: std::time::Duration,
}

/// What every clone of one server shares.
#[derive(Debug)]
struct Shared {
    connections: ConnectionService,
    rooms: RoomConnectionService,
    chat: ChatRoomMessageHandler,
    heartbeat: Arc<HeartbeatService>,
    /// Cancelled by `shutdown()`: stop accepting, close sessions gracefully.
    shutdown: CancellationToken,
    /// Cancelled when the drain time is over: drop whatever is left.
    force: CancellationToken,
    /// Cancelled when the serve loop has returned.
    stopped: CancellationToken,
    started: AtomicBool,
    local_addr: OnceLock<SocketAddr>,
    /// Sockets accepted and not yet finished, handshakes included.
    active: AtomicUsize,
    /// Read buffers, when `enable_enhanced_memory_pool` is on.
    pool: Option<EnhancedMemoryPool>,
    monitor: PerformanceMonitor,
    /// The task scheduler, when `enable_async_scheduler` is on.
    scheduler: Option<AsyncTaskScheduler>,
}

/// The game server: configuration, services and lifecycle.
///
/// Configure it with the builder methods, then [`start`](Self::start) it.
/// It is cheap to clone, and every clone controls the same server, so keep
/// one to call [`shutdown`](Self::shutdown) or read statistics while
/// another runs.
///
/// # Examples
///
/// ```no_run
/// use gamewire::TcpGameService;
///
/// #[tokio::main]
/// async fn main() -> Result<(), gamewire::ServerError> {
///     // The built-in chat server on 127.0.0.1:7878.
///     TcpGameService::with_default_config().start().await
/// }
/// ```
#[derive(Clone)]
pub struct TcpGameService {
    config: Arc<TcpServerConfig>,
    state: StateMap,
    /// `OrderedMiddleware<M>` values, with `M`'s name, for the protocol
    /// chosen at start.
    middleware: Vec<(&'static str, Arc<dyn Any + Send + Sync>)>,
    authenticator: Arc<dyn Authenticator>,
    disconnect_hooks: Vec<DisconnectHook>,
    protocol: Option<ProtocolFns>,
    shared: Arc<Shared>,
}

impl fmt::Debug for TcpGameService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpGameService")
            .field("config", &self.config)
            .field("local_addr", &self.local_addr())
            .finish_non_exhaustive()
    }
}

impl TcpGameService {
    /// A server with [`TcpServerConfig::default`]: 127.0.0.1:7878.
    pub fn with_default_config() -> Self {
        Self::with_config(TcpServerConfig::default())
    }

    /// A server with `config`.
    pub fn with_config(config: TcpServerConfig) -> Self {
        let connections = ConnectionService::new(config.slow_consumer_policy);
        let rooms = RoomConnectionService::new(connections.clone());
        let heartbeat = Arc::new(HeartbeatService::new(
            config.heartbeat_interval,
            config.heartbeat_timeout,
            connections.clone(),
        ));
        TcpGameService {
            state: StateMap::default(),
            middleware: Vec::new(),
            authenticator: Arc::new(AnonymousAuthenticator::new()),
            disconnect_hooks: Vec::new(),
            protocol: None,
            shared: Arc::new(Shared {
                chat: ChatRoomMessageHandler::new(rooms.clone(), connections.clone()),
                connections,
                rooms,
                heartbeat,
                shutdown: CancellationToken::new(),
                force: CancellationToken::new(),
                stopped: CancellationToken::new(),
                started: AtomicBool::new(false),
                local_addr: OnceLock::new(),
                active: AtomicUsize::new(0),
                pool: config
                    .enable_enhanced_memory_pool
                    .then(|| EnhancedMemoryPool::new(config.memory_pool.clone())),
                monitor: PerformanceMonitor::new(),
                scheduler: config
                    .enable_async_scheduler
                    .then(|| AsyncTaskScheduler::new(config.scheduler.clone())),
            }),
            config: Arc::new(config),
        }
    }

    /// Makes `value` available to handlers as `State<T>` and through
    /// [`Session::state`](crate::Session::state).
    pub fn with_state<T: Send + Sync + 'static>(self, value: T) -> Self {
        self.with_shared_state(Arc::new(value))
    }

    /// Like [`with_state`](Self::with_state), for a value you keep a
    /// handle to.
    pub fn with_shared_state<T: Send + Sync + 'static>(mut self, value: Arc<T>) -> Self {
        self.state.insert(value);
        self
    }

    /// Adds a middleware for protocol `M` at `order` (ascending runs
    /// first). See [`MessageMiddleware`] for the rules.
    pub fn middleware<M: Message>(
        mut self,
        order: i32,
        middleware: impl MessageMiddleware<M>,
    ) -> Self {
        let ordered = OrderedMiddleware::<M> {
            order,
            name: short_type_name(&middleware).to_owned(),
            middleware: Arc::new(middleware),
            location: None,
        };
        self.middleware.push((M::PROTOCOL.name, Arc::new(ordered)));
        self
    }

    /// Calls `hook` whenever a session ends, after it left its rooms: to
    /// clean up per-player state of your own. Hooks run on the ending
    /// session's task, in the order added; keep them short (spawn a task
    /// for slow work). A panicking hook is logged and does not affect the
    /// server.
    ///
    /// # Examples
    ///
    /// ```
    /// use gamewire::TcpGameService;
    ///
    /// let _server = TcpGameService::with_default_config().on_disconnect(|gone| {
    ///     println!("user {} left rooms {:?} ({:?})", gone.user_id, gone.rooms, gone.reason);
    /// });
    /// ```
    pub fn on_disconnect(mut self, hook: impl Fn(&Disconnect) + Send + Sync + 'static) -> Self {
        self.disconnect_hooks.push(Arc::new(hook));
        self
    }

    /// Replaces the [`AnonymousAuthenticator`].
    pub fn authenticator(mut self, authenticator: impl Authenticator) -> Self {
        self.authenticator = Arc::new(authenticator);
        self
    }

    /// Serves protocol `M`, for a binary that links several `#[message]`
    /// enums with handlers.
    pub fn protocol<M: Message>(mut self) -> Self {
        self.protocol = Some(ProtocolFns::of::<M>());
        self
    }

    /// The configuration.
    pub fn config(&self) -> &TcpServerConfig {
        &self.config
    }

    /// The address the server listens on, once it does.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.shared.local_addr.get().copied()
    }

    /// The connection registry.
    pub fn connection_service(&self) -> &ConnectionService {
        &self.shared.connections
    }

    /// The rooms.
    pub fn room_service(&self) -> &RoomConnectionService {
        &self.shared.rooms
    }

    /// The built-in chat system.
    pub fn chat(&self) -> &ChatRoomMessageHandler {
        &self.shared.chat
    }

    /// The heartbeat.
    pub fn heartbeat_service(&self) -> &HeartbeatService {
        &self.shared.heartbeat
    }

    /// The memory pool, when `enable_enhanced_memory_pool` is on.
    pub fn memory_pool(&self) -> Option<&EnhancedMemoryPool> {
        self.shared.pool.as_ref()
    }

    /// A buffer of at least `size` bytes from the memory pool; `None` when
    /// the pool is off or `size` is over 64 KiB.
    pub fn allocate_buffer(&self, size: usize) -> Option<crate::pool::PooledBuffer> {
        self.shared.pool.as_ref()?.allocate_buffer(size)
    }

    /// Returns a buffer to the pool, as dropping it does.
    pub fn deallocate_buffer(&self, buffer: crate::pool::PooledBuffer) {
        drop(buffer);
    }

    /// The memory pool's report, when the pool is on.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it never waits.
    pub async fn get_memory_pool_status(&self) -> Option<String> {
        self.shared.pool.as_ref().map(EnhancedMemoryPool::report)
    }

    /// The performance monitor.
    pub fn performance_monitor(&self) -> &PerformanceMonitor {
        &self.shared.monitor
    }

    /// Connections, message and byte rates, latency percentiles, and which
    /// performance services are on.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it never waits.
    pub async fn get_server_stats(&self) -> ServerStats {
        ServerStats::collect(
            &self.shared.monitor,
            self.shared.connections.connection_stats(),
            self.shared.pool.is_some(),
            self.shared.scheduler.is_some(),
            self.config.enable_performance_monitor,
        )
    }

    /// The task scheduler, when `enable_async_scheduler` is on.
    pub fn scheduler(&self) -> Option<&AsyncTaskScheduler> {
        self.shared.scheduler.as_ref()
    }

    /// Runs `job` on the scheduler as critical (`true`) or normal work.
    ///
    /// # Errors
    ///
    /// [`SchedulerError::Disabled`] when the server runs without a
    /// scheduler (`enable_async_scheduler` is off), or the scheduler's own
    /// errors.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it never waits.
    pub async fn schedule_message_processing(
        &self,
        job: impl Future<Output = ()> + Send + 'static,
        critical: bool,
    ) -> Result<(), SchedulerError> {
        let scheduler = self
            .shared
            .scheduler
            .as_ref()
            .ok_or(SchedulerError::Disabled)?;
        scheduler.schedule_message_processing(job, critical).await
    }

    /// Runs `job` on the scheduler as background work.
    ///
    /// # Errors
    ///
    /// As [`schedule_message_processing`](Self::schedule_message_processing).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it never waits.
    pub async fn schedule_background_cleanup(
        &self,
        job: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), SchedulerError> {
        let scheduler = self
            .shared
            .scheduler
            .as_ref()
            .ok_or(SchedulerError::Disabled)?;
        scheduler.schedule_background_cleanup(job).await
    }

    /// The scheduler's report, when the scheduler is on.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it never waits.
    pub async fn get_scheduler_performance_report(&self) -> Option<String> {
        self.shared
            .scheduler
            .as_ref()
            .map(AsyncTaskScheduler::get_scheduler_performance_report)
    }

    /// Sessions connected now.
    pub async fn get_connection_count(&self) -> usize {
        self.shared.connections.connection_count()
    }

    /// `(user_count, users)` of a room.
    pub fn get_room_status(&self, room_id: u32) -> (usize, Vec<u32>) {
        self.shared.rooms.get_room_status(room_id)
    }

    /// The status of every room.
    pub fn get_all_rooms_status(&self) -> Vec<RoomStatus> {
        self.shared.rooms.get_all_rooms_status()
    }

    /// Removes empty rooms; returns how many.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it never waits.
    pub async fn cleanup_empty_rooms(&self) -> usize {
        self.shared.rooms.cleanup_empty_rooms().await
    }

    /// Checks the configuration and registrations without binding: the
    /// same checks `start` makes first.
    ///
    /// # Errors
    ///
    /// Every problem found, in one error.
    pub fn check(&self) -> Result<(), ServerError> {
        self.config.validate()?;
        let protocol = self.select_protocol()?;
        (protocol.check)(self)?;
        Ok(())
    }

    /// Binds `bind_address` and serves until [`shutdown`](Self::shutdown)
    /// or Ctrl-C, then shuts down gracefully.
    ///
    /// # Errors
    ///
    /// A configuration or registration problem (before binding), or a bind
    /// failure.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops accepting and drops every connection
    /// without a close frame; call `shutdown` for a graceful stop.
    pub async fn start(&self) -> Result<(), ServerError> {
        self.check()?;
        let address = self.config.bind_address.clone();
        let listener = TcpListener::bind(&address)
            .await
            .map_err(|source| ServerError::Bind { address, source })?;
        let on_ctrl_c = self.clone();
        let ctrl_c = tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!("Ctrl-C: shutting down");
                on_ctrl_c.shared.shutdown.cancel();
            }
        });
        let served = self.serve(listener).await;
        ctrl_c.abort();
        served
    }

    /// Serves on a listener you bound, such as `127.0.0.1:0` in tests,
    /// until [`shutdown`](Self::shutdown).
    ///
    /// # Errors
    ///
    /// A configuration or registration problem, found before the first
    /// accept.
    ///
    /// # Cancel safety
    ///
    /// As [`start`](Self::start).
    pub async fn serve(&self, listener: TcpListener) -> Result<(), ServerError> {
        self.config.validate()?;
        let protocol = self.select_protocol()?;
        if self.shared.started.swap(true, Ordering::SeqCst) {
            return Err(ServerError::AlreadyStarted);
        }
        if let Ok(address) = listener.local_addr() {
            let _ = self.shared.local_addr.set(address);
        }
        let result = (protocol.serve)(self.clone(), listener).await;
        self.shared.stopped.cancel();
        result
    }

    /// Stops accepting, delivers what is already queued to every client,
    /// sends each a close frame (`Shutdown`) and waits, at most
    /// `drain_timeout`, for the connections to finish.
    ///
    /// Sockets still in their handshake get the same close frame at once.
    /// What outlasts `drain_timeout` is stopped: writers stop writing, and
    /// a handler still running is dropped at its next `.await` (one that
    /// blocks its thread cannot be stopped). Every session still ends as
    /// usual: it leaves its rooms and `on_disconnect` hooks run.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the shutdown goes on; only the waiting stops.
    pub async fn shutdown(&self) {
        self.shared.shutdown.cancel();
        if self.shared.started.load(Ordering::SeqCst) {
            self.shared.stopped.cancelled().await;
        }
    }

    /// Picks the protocol to serve: the one chosen with `protocol::<M>()`,
    /// else the only non-built-in protocol with handlers, else the chat.
    fn select_protocol(&self) -> Result<ProtocolFns, BuildError> {
        if let Some(protocol) = self.protocol {
            return Ok(protocol);
        }
        let with_handlers: Vec<&ProtocolRegistration> = inventory::iter::<ProtocolRegistration>
            .into_iter()
            .filter(|reg| !reg.builtin)
            .filter(|reg| {
                inventory::iter::<crate::handler::HandlerRegistration>
                    .into_iter()
                    .any(|h| (h.protocol)() == (reg.type_id)())
            })
            .collect();
        match with_handlers.as_slice() {
            [] => Ok(ProtocolFns::of::<ChatMessage>()),
            [only] => Ok(ProtocolFns {
                serve: only.serve,
                check: only.check,
            }),
            many => Err(BuildError::new(vec![format!(
                "several protocols have handlers ({}); choose one with `TcpGameService::protocol::<YourMessage>()`",
                many.iter()
                    .map(|reg| format!("`{}` at {}", reg.info.name, reg.location))
                    .collect::<Vec<_>>()
                    .join(", ")
            )])),
        }
    }
}

fn short_type_name<T>(_: &T) -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}
