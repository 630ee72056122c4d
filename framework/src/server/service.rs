//! [`TcpGameService`]: the facade users build, start and stop.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::net::TcpListener;

use super::error::ServerError;
use super::protocols::{self, ProtocolEntry};
use super::run::Listeners;
use super::runtime::{Blueprint, Shared};
use crate::auth::{AnonymousAuthenticator, Authenticator};
use crate::cluster::Adapter;
use crate::config::TcpServerConfig;
use crate::middleware::{MessageMiddleware, OrderedMiddleware};
use crate::protocol::Message;
use crate::session::{Disconnect, StateMap};

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
    pub(super) blueprint: Blueprint,
    /// The protocol chosen with [`protocol`](Self::protocol), if any.
    protocol: Option<ProtocolEntry>,
}

impl fmt::Debug for TcpGameService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpGameService")
            .field("config", &self.blueprint.config)
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
        let shared = Arc::new(Shared::new(&config));
        let chat = shared.chat.clone();
        let mut state = StateMap::default();
        // The chat's handler parameter reads the server's chat from here.
        state.insert(Arc::new(chat.clone()));
        TcpGameService {
            blueprint: Blueprint {
                config: Arc::new(config),
                state,
                middleware: Vec::new(),
                authenticator: Arc::new(AnonymousAuthenticator::new()),
                authenticator_chosen: false,
                disconnect_hooks: vec![Arc::new(chat.disconnect_hook())],
                web_page: None,
                shared,
            },
            protocol: None,
        }
    }

    pub(super) fn shared(&self) -> &Shared {
        &self.blueprint.shared
    }

    /// Makes `value` available to handlers as `State<T>` and through
    /// [`Session::state`](crate::Session::state).
    pub fn with_state<T: Send + Sync + 'static>(self, value: T) -> Self {
        self.with_shared_state(Arc::new(value))
    }

    /// Like [`with_state`](Self::with_state), for a value you keep a
    /// handle to.
    pub fn with_shared_state<T: Send + Sync + 'static>(mut self, value: Arc<T>) -> Self {
        self.blueprint.state.insert(value);
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
        self.blueprint
            .middleware
            .push((M::PROTOCOL.name, Arc::new(ordered)));
        self
    }

    /// Calls `hook` whenever a session ends, after it left its rooms: to
    /// clean up per-player state of your own. Hooks run on the ending
    /// session's task, in the order added, after the built-in chat's own
    /// (which tells the rooms' members `UserLeft`); keep them short (spawn
    /// a task for slow work). A panicking hook is logged and does not
    /// affect the server.
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
        self.blueprint.disconnect_hooks.push(Arc::new(hook));
        self
    }

    /// Replaces the [`AnonymousAuthenticator`] (and an adapter's).
    pub fn authenticator(mut self, authenticator: impl Authenticator) -> Self {
        self.blueprint.authenticator = Arc::new(authenticator);
        self.blueprint.authenticator_chosen = true;
        self
    }

    /// Makes this server a node of a cluster: its rooms, presence and
    /// `send_to_user` reach the other nodes through `adapter` (such as
    /// `gamewire_redis::RedisAdapter`). Without one, the server is alone
    /// and pays nothing for it. Handlers do not change.
    ///
    /// Unless an authenticator is set, the adapter's is used, whose user
    /// ids are unique across the cluster. The adapter joins the cluster
    /// when the server starts; a second call is ignored.
    pub fn adapter(mut self, adapter: impl Adapter) -> Self {
        let adapter: Arc<dyn Adapter> = Arc::new(adapter);
        if !self.blueprint.authenticator_chosen
            && let Some(authenticator) = adapter.authenticator()
        {
            self.blueprint.authenticator = authenticator;
        }
        self.shared().connections.set_adapter(adapter);
        self
    }

    /// Serves protocol `M`, for a binary that links several `#[message]`
    /// enums with handlers.
    pub fn protocol<M: Message>(mut self) -> Self {
        self.protocol = Some(ProtocolEntry::of::<M>());
        self
    }

    /// The page a plain HTTP `GET /` on the WebSocket port gets (the
    /// WebSocket endpoint is the same URL): a browser game's page, with its
    /// client. Without one, such a request gets a 404 that names the
    /// endpoint.
    pub fn web_page(mut self, html: impl Into<Arc<str>>) -> Self {
        self.blueprint.web_page = Some(html.into());
        self
    }

    /// The configuration.
    pub fn config(&self) -> &TcpServerConfig {
        &self.blueprint.config
    }

    /// The address the server listens on, once it does.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.shared().local_addr.get().copied()
    }

    /// The address the WebSocket listener listens on, once it does (when
    /// `ws_bind_address` is set).
    pub fn local_ws_addr(&self) -> Option<SocketAddr> {
        self.shared().local_ws_addr.get().copied()
    }

    /// The address the metrics listener listens on, once it does (when
    /// `metrics_bind_address` is set, with the `ops` feature).
    pub fn local_metrics_addr(&self) -> Option<SocketAddr> {
        self.shared().local_metrics_addr.get().copied()
    }

    /// Checks the configuration and registrations without binding: the
    /// same checks `start` makes first.
    ///
    /// # Errors
    ///
    /// Every problem found, in one error.
    pub fn check(&self) -> Result<(), ServerError> {
        self.blueprint.config.validate()?;
        let protocol = protocols::select(self.protocol)?;
        (protocol.check)(&self.blueprint)?;
        Ok(())
    }

    /// Binds `bind_address` and serves until [`shutdown`](Self::shutdown),
    /// Ctrl-C or SIGTERM (what systemd, Docker and Kubernetes send), then
    /// shuts down gracefully: see [`shutdown`](Self::shutdown).
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
        self.start_with_graceful_shutdown(shutdown_signal()).await
    }

    /// Binds `bind_address` and serves until [`shutdown`](Self::shutdown)
    /// or until `signal` completes, then shuts down gracefully: for
    /// programs that decide themselves when to stop (axum's
    /// `with_graceful_shutdown` shape). Ctrl-C and SIGTERM are not watched
    /// unless `signal` does ([`shutdown_signal`] is what
    /// [`start`](Self::start) watches).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use gamewire::TcpGameService;
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), gamewire::ServerError> {
    ///     let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    ///     // … hand `stop` to whatever decides when the server stops …
    ///     # drop(stop);
    ///     TcpGameService::with_default_config()
    ///         .start_with_graceful_shutdown(async move {
    ///             let _ = stopped.await;
    ///         })
    ///         .await
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start).
    ///
    /// # Cancel safety
    ///
    /// As [`start`](Self::start).
    pub async fn start_with_graceful_shutdown(
        &self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        self.check()?;
        let config = &self.blueprint.config;
        let address = config.bind_address.clone();
        let listener = crate::transport::bind(&address, config.listen_backlog)
            .await
            .map_err(|source| ServerError::Bind { address, source })?;
        self.serve_with_graceful_shutdown(listener, signal).await
    }

    /// Serves on a listener you bound until [`shutdown`](Self::shutdown)
    /// or until `signal` completes, then shuts down gracefully.
    ///
    /// # Errors
    ///
    /// As [`serve`](Self::serve).
    ///
    /// # Cancel safety
    ///
    /// As [`start`](Self::start).
    pub async fn serve_with_graceful_shutdown(
        &self,
        listener: TcpListener,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let shutdown = self.shared().shutdown.clone();
        let watcher = tokio::spawn(async move {
            signal.await;
            shutdown.cancel();
        });
        let served = self.serve(listener).await;
        watcher.abort();
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
        self.blueprint.config.validate()?;
        let protocol = protocols::select(self.protocol)?;
        let shared = self.shared();
        if shared.started.swap(true, Ordering::SeqCst) {
            return Err(ServerError::AlreadyStarted);
        }
        if let Ok(address) = listener.local_addr() {
            let _ = shared.local_addr.set(address);
        }
        let listeners = Listeners {
            tcp: listener,
            #[cfg(feature = "websocket")]
            ws: self.bind_websocket().await?,
            #[cfg(feature = "ops")]
            metrics: self.bind_metrics().await?,
        };
        // Cancelled however the run ends, this future dropped included:
        // what watches it (a cluster adapter's tasks) stops with it.
        let _stopped = shared.stopped.clone().drop_guard();
        (protocol.serve)(self.blueprint.clone(), listeners).await
    }

    /// Binds `ws_bind_address`, when it is set.
    #[cfg(feature = "websocket")]
    async fn bind_websocket(&self) -> Result<Option<TcpListener>, ServerError> {
        let config = &self.blueprint.config;
        let Some(address) = config.ws_bind_address.clone() else {
            return Ok(None);
        };
        let listener = crate::transport::bind(&address, config.listen_backlog)
            .await
            .map_err(|source| ServerError::Bind { address, source })?;
        if let Ok(address) = listener.local_addr() {
            let _ = self.shared().local_ws_addr.set(address);
        }
        Ok(Some(listener))
    }

    /// Binds `metrics_bind_address`, when it is set.
    #[cfg(feature = "ops")]
    async fn bind_metrics(&self) -> Result<Option<TcpListener>, ServerError> {
        let Some(address) = self.blueprint.config.metrics_bind_address.clone() else {
            return Ok(None);
        };
        let listener = TcpListener::bind(&address)
            .await
            .map_err(|source| ServerError::Bind { address, source })?;
        if let Some(address) = crate::ops::local_addr(&listener) {
            let _ = self.shared().local_metrics_addr.set(address);
        }
        Ok(Some(listener))
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
        let shared = self.shared();
        shared.shutdown.cancel();
        if shared.started.load(Ordering::SeqCst) {
            shared.stopped.cancelled().await;
        }
    }
}

fn short_type_name<T>(_: &T) -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}

/// Completes on Ctrl-C (SIGINT) or, on Unix, SIGTERM: the signals a
/// terminal, systemd, Docker and Kubernetes stop a server with.
/// [`TcpGameService::start`] shuts down gracefully on it.
///
/// # Cancel safety
///
/// Cancel safe.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No handler could be installed: never fire rather than at once.
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}
