//! What a server is made of: the services every clone of a
//! [`TcpGameService`](super::TcpGameService) shares, how it was
//! configured, and what the sessions of one run share.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admission::{Admission, AdmissionLimits};
use crate::auth::Authenticator;
use crate::chat::ChatRoomMessageHandler;
use crate::codec::Codec;
use crate::config::TcpServerConfig;
use crate::connection::ConnectionService;
use crate::dispatch::{BuildError, MessageService, Provided};
use crate::heartbeat::HeartbeatService;
use crate::middleware::OrderedMiddleware;
use crate::monitor::PerformanceMonitor;
use crate::pool::EnhancedMemoryPool;
use crate::protocol::Message;
use crate::room::{RoomConnectionService, RoomLimits};
use crate::scheduler::AsyncTaskScheduler;
use crate::session::{DisconnectHook, Services, StateMap};
use crate::transport::TransportSettings;

/// The services and the lifecycle that every clone of one server shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) connections: ConnectionService,
    pub(crate) rooms: RoomConnectionService,
    pub(crate) chat: ChatRoomMessageHandler,
    pub(crate) heartbeat: Arc<HeartbeatService>,
    /// Every figure the server keeps.
    pub(crate) monitor: PerformanceMonitor,
    /// Buffers, when `enable_enhanced_memory_pool` is on.
    pub(crate) pool: Option<EnhancedMemoryPool>,
    /// The task scheduler, when `enable_async_scheduler` is on.
    pub(crate) scheduler: Option<AsyncTaskScheduler>,
    /// Cancelled by `shutdown()`: stop accepting, close sessions gracefully.
    pub(crate) shutdown: CancellationToken,
    /// Cancelled when the drain time is over: drop whatever is left.
    pub(crate) force: CancellationToken,
    /// Cancelled when the serve loop has returned.
    pub(crate) stopped: CancellationToken,
    pub(crate) started: AtomicBool,
    pub(crate) local_addr: OnceLock<SocketAddr>,
    /// Where the WebSocket listener listens, when there is one.
    pub(crate) local_ws_addr: OnceLock<SocketAddr>,
    /// Where the metrics listener listens, when there is one.
    pub(crate) local_metrics_addr: OnceLock<SocketAddr>,
    /// The sockets held: in all, per address, in their handshake.
    pub(crate) admission: Arc<Admission>,
}

impl Shared {
    pub(crate) fn new(config: &TcpServerConfig) -> Self {
        let monitor = PerformanceMonitor::recording_latencies(config.enable_performance_monitor);
        let connections = ConnectionService::new(config, monitor.clone());
        let rooms = RoomConnectionService::new(connections.clone(), RoomLimits::of(config));
        Shared {
            chat: ChatRoomMessageHandler::new(rooms.clone(), connections.clone()),
            heartbeat: Arc::new(HeartbeatService::new(
                config.heartbeat_interval,
                config.heartbeat_timeout,
                connections.clone(),
            )),
            connections,
            rooms,
            monitor,
            pool: config
                .enable_enhanced_memory_pool
                .then(|| EnhancedMemoryPool::new(config.memory_pool.clone())),
            scheduler: config
                .enable_async_scheduler
                .then(|| AsyncTaskScheduler::new(config.scheduler.clone())),
            shutdown: CancellationToken::new(),
            force: CancellationToken::new(),
            stopped: CancellationToken::new(),
            started: AtomicBool::new(false),
            local_addr: OnceLock::new(),
            local_ws_addr: OnceLock::new(),
            local_metrics_addr: OnceLock::new(),
            admission: Arc::new(Admission::new(AdmissionLimits {
                connections: config.max_connections,
                per_ip: config.max_connections_per_ip,
                handshakes: config.max_pending_handshakes,
            })),
        }
    }
}

/// How a server was configured: what a run of any protocol is built from.
#[derive(Clone)]
pub(crate) struct Blueprint {
    pub(crate) config: Arc<TcpServerConfig>,
    pub(crate) state: StateMap,
    /// `OrderedMiddleware<M>` values, with `M`'s name, for the protocol
    /// chosen at start.
    pub(crate) middleware: Vec<(&'static str, Arc<dyn Any + Send + Sync>)>,
    pub(crate) authenticator: Arc<dyn Authenticator>,
    /// Whether the authenticator was chosen, not the default.
    pub(crate) authenticator_chosen: bool,
    /// Run in order when a session ends; the chat's comes first.
    pub(crate) disconnect_hooks: Vec<DisconnectHook>,
    /// What a plain HTTP `GET /` on the WebSocket port gets.
    pub(crate) web_page: Option<Arc<str>>,
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for Blueprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Blueprint")
            .field("config", &self.config)
            .field("middleware", &self.middleware.len())
            .field("disconnect_hooks", &self.disconnect_hooks.len())
            .finish_non_exhaustive()
    }
}

/// Everything the sessions of one run of protocol `M`, encoded with `C`,
/// share.
pub(crate) struct Runtime<M: Message, C: Codec> {
    pub(crate) config: Arc<TcpServerConfig>,
    pub(crate) services: Arc<Services>,
    pub(crate) messages: MessageService<M>,
    pub(crate) authenticator: Arc<dyn Authenticator>,
    pub(crate) disconnect_hooks: Vec<DisconnectHook>,
    pub(crate) transport: TransportSettings,
    /// Every task of the run: sessions, writers, the heartbeat.
    pub(crate) tracker: TaskTracker,
    pub(crate) shared: Arc<Shared>,
    codec: PhantomData<fn() -> C>,
}

impl<M: Message, C: Codec> fmt::Debug for Runtime<M, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("protocol", &M::PROTOCOL.name)
            .field("codec", &C::NAME)
            .field("messages", &self.messages)
            .finish_non_exhaustive()
    }
}

impl<M: Message, C: Codec> Runtime<M, C> {
    /// Builds the run, checking everything the compiler could not: the
    /// handlers, middleware and state against each other.
    ///
    /// # Errors
    ///
    /// Every problem found, in one error.
    pub(crate) fn build(blueprint: &Blueprint) -> Result<Self, BuildError> {
        let mut problems = Vec::new();
        let mut middleware = Vec::new();
        for (protocol, any) in &blueprint.middleware {
            match Arc::clone(any).downcast::<OrderedMiddleware<M>>() {
                Ok(ordered) => middleware.push((*ordered).clone()),
                Err(_) => problems.push(format!(
                    "a middleware was added for protocol `{protocol}`, but the server speaks `{}`",
                    M::PROTOCOL.name
                )),
            }
        }
        let shared = Arc::clone(&blueprint.shared);
        let provided = Provided {
            state: &blueprint.state,
            scheduler: shared.scheduler.is_some(),
        };
        let messages =
            MessageService::build(provided, middleware, problems, shared.monitor.clone())?;
        let config = Arc::clone(&blueprint.config);
        Ok(Runtime {
            services: Arc::new(Services {
                connections: shared.connections.clone(),
                rooms: shared.rooms.clone(),
                scheduler: shared.scheduler.clone(),
                state: blueprint.state.clone(),
            }),
            messages,
            authenticator: Arc::clone(&blueprint.authenticator),
            disconnect_hooks: blueprint.disconnect_hooks.clone(),
            transport: TransportSettings {
                // Until the handshake is done; the session raises it then.
                max_frame_len: config.max_handshake_frame_len.min(config.max_frame_len),
                max_session_frame_len: config.max_frame_len,
                web_page: blueprint.web_page.clone(),
                read_buffer_size: config.read_buffer_size,
                pool: shared.pool.clone(),
            },
            tracker: TaskTracker::new(),
            config,
            shared,
            codec: PhantomData,
        })
    }
}
