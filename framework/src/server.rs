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

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{AnonymousAuthenticator, Authenticator};
use crate::chat::{ChatMessage, ChatRoomMessageHandler};
use crate::config::{ConfigError, TcpServerConfig};
use crate::connection::{Connection, ConnectionService, run_writer};
use crate::dispatch::{BuildError, MessageService};
use crate::heartbeat::HeartbeatService;
use crate::middleware::{MessageMiddleware, OrderedMiddleware};
use crate::protocol::{Message, ProtocolRegistration};
use crate::room::{RoomConnectionService, RoomStatus};
use crate::session::{Services, Session, StateMap};
use crate::wire::{
    self, CloseCode, CloseFrame, DecodeError, ENVELOPE_VERSION, ErrorCode, ErrorFrame, Frame,
    FrameSplitter, Hello, Welcome,
};

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
            }),
            config: Arc::new(config),
        }
    }

    /// Makes `value` available to handlers as `State<T>` and through
    /// [`Session::state`].
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

/// Everything a session of protocol `M` needs.
struct Runtime<M: Message> {
    config: Arc<TcpServerConfig>,
    services: Arc<Services>,
    messages: MessageService<M>,
    authenticator: Arc<dyn Authenticator>,
    force: CancellationToken,
    tracker: TaskTracker,
    shared: Arc<Shared>,
}

/// Serves protocol `M` on `listener` until shutdown.
pub(crate) fn serve_protocol<M: Message>(
    service: TcpGameService,
    listener: TcpListener,
) -> ServeFuture {
    Box::pin(async move {
        let runtime = Arc::new(build_runtime::<M>(&service)?);
        let shared = &runtime.shared;
        shared.connections.set_protocol::<M>();
        tracing::info!(
            protocol = M::PROTOCOL.name,
            address = ?service.local_addr(),
            "gamewire server listening"
        );
        runtime.tracker.spawn(Arc::clone(&shared.heartbeat).run(
            shared.rooms.clone(),
            runtime.config.room_cleanup_interval,
            shared.shutdown.clone(),
        ));
        accept_loop(&runtime, &listener).await;
        drop(listener);
        drain(&runtime).await;
        Ok(())
    })
}

/// The checks of [`build_runtime`], for [`TcpGameService::check`].
pub(crate) fn check_protocol<M: Message>(service: &TcpGameService) -> Result<(), BuildError> {
    build_runtime::<M>(service).map(drop)
}

fn build_runtime<M: Message>(service: &TcpGameService) -> Result<Runtime<M>, BuildError> {
    let mut problems = Vec::new();
    let mut middleware = Vec::new();
    for (protocol, any) in &service.middleware {
        match Arc::clone(any).downcast::<OrderedMiddleware<M>>() {
            Ok(ordered) => middleware.push((*ordered).clone()),
            Err(_) => problems.push(format!(
                "a middleware was added for protocol `{protocol}`, but the server speaks `{}`",
                M::PROTOCOL.name
            )),
        }
    }
    let shared = Arc::clone(&service.shared);
    let services = Arc::new(Services {
        connections: shared.connections.clone(),
        rooms: shared.rooms.clone(),
        chat: shared.chat.clone(),
        state: service.state.clone(),
    });
    Ok(Runtime {
        messages: MessageService::build(&services.state, middleware, problems)?,
        config: Arc::clone(&service.config),
        services,
        authenticator: Arc::clone(&service.authenticator),
        force: shared.force.clone(),
        tracker: TaskTracker::new(),
        shared,
    })
}

async fn accept_loop<M: Message>(runtime: &Arc<Runtime<M>>, listener: &TcpListener) {
    let shared = &runtime.shared;
    loop {
        let accepted = tokio::select! {
            () = shared.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (socket, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors or a connection reset before
                // accept: wait a moment rather than spin.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                continue;
            }
        };
        if shared.active.fetch_add(1, Ordering::SeqCst) >= runtime.config.max_connections {
            shared.active.fetch_sub(1, Ordering::SeqCst);
            shared
                .connections
                .counters()
                .refused
                .fetch_add(1, Ordering::Relaxed);
            tracing::info!(%peer, "refusing connection: server full");
            runtime
                .tracker
                .spawn(refuse(socket, runtime.config.max_connections));
            continue;
        }
        let session = run_session(Arc::clone(runtime), socket, peer);
        runtime.tracker.spawn(async move {
            session.await;
        });
    }
}

/// Tells a connection over `max_connections` why it is closed.
async fn refuse(mut socket: TcpStream, max: usize) {
    let close = CloseFrame {
        code: CloseCode::ServerFull.as_u16(),
        reason: format!("the server is full ({max} connections)"),
    };
    if let Ok(bytes) = wire::encode_frame(&Frame::<()>::Close(close)) {
        let write = async {
            socket.write_all(&bytes).await?;
            socket.shutdown().await
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), write).await;
    }
}

/// Closes every session gracefully, then waits for them within the drain time.
async fn drain<M: Message>(runtime: &Runtime<M>) {
    for connection in runtime.shared.connections.all() {
        connection.close(CloseCode::Shutdown, "the server is shutting down", true);
    }
    runtime.tracker.close();
    if tokio::time::timeout(runtime.config.drain_timeout, runtime.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("drain timeout: dropping the remaining connections");
        runtime.force.cancel();
        runtime.tracker.wait().await;
    }
    tracing::info!("gamewire server stopped");
}

/// Decrements the active-socket count however the session ends.
struct ActiveGuard<'a>(&'a AtomicUsize);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn run_session<M: Message>(runtime: Arc<Runtime<M>>, socket: TcpStream, peer: SocketAddr) {
    let _active = ActiveGuard(&runtime.shared.active);
    let _ = socket.set_nodelay(true);
    let (mut reader, mut writer) = socket.into_split();
    let splitter = FrameSplitter::new(runtime.config.max_frame_len);
    let mut buf = BytesMut::with_capacity(runtime.config.read_buffer_size);

    let connection = match handshake(&runtime, &mut reader, &mut buf, splitter, peer).await {
        Ok(connection) => connection,
        Err(close) => {
            tracing::debug!(%peer, reason = %close.reason, "handshake failed");
            if let Ok(bytes) = wire::encode_frame(&Frame::<()>::Close(close)) {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
                    writer.write_all(&bytes).await?;
                    writer.shutdown().await
                })
                .await;
            }
            return;
        }
    };
    let (connection, rx) = connection;
    runtime.tracker.spawn(run_writer(
        Arc::clone(&connection),
        rx,
        writer,
        runtime.force.clone(),
    ));
    let session = Session::new(Arc::clone(&connection), Arc::clone(&runtime.services));
    read_loop(&runtime, &session, &mut reader, &mut buf, splitter).await;
    end_session(&runtime, &connection);
}

type Opened = (Arc<Connection>, tokio::sync::mpsc::Receiver<bytes::Bytes>);

/// Reads the hello, authenticates, registers the connection and queues the
/// welcome. On failure, returns the close frame to send.
async fn handshake<M: Message>(
    runtime: &Runtime<M>,
    reader: &mut tokio::net::tcp::OwnedReadHalf,
    buf: &mut BytesMut,
    splitter: FrameSplitter,
    peer: SocketAddr,
) -> Result<Opened, CloseFrame> {
    let fail = |code: CloseCode, reason: String| CloseFrame {
        code: code.as_u16(),
        reason,
    };
    let first = tokio::time::timeout(
        runtime.config.handshake_timeout,
        read_frame(reader, buf, splitter),
    )
    .await
    .map_err(|_| fail(CloseCode::HandshakeFailed, "no handshake in time".into()))?
    .map_err(|error| fail(CloseCode::HandshakeFailed, error))?;
    let hello = match wire::decode_payload::<Frame<M>>(&first) {
        Ok(Frame::Hello(hello)) => hello,
        Ok(_) => {
            return Err(fail(
                CloseCode::HandshakeFailed,
                "the first frame must be a hello".into(),
            ));
        }
        Err(error) => {
            return Err(fail(
                CloseCode::HandshakeFailed,
                format!("the first frame is not a hello: {error}"),
            ));
        }
    };
    check_hello::<M>(&hello).map_err(|reason| fail(CloseCode::ProtocolMismatch, reason))?;
    let user_id = runtime
        .authenticator
        .authenticate(&hello, peer)
        .await
        .map_err(|error| fail(CloseCode::HandshakeFailed, error.to_string()))?;
    let connections = &runtime.shared.connections;
    let (connection, rx) = connections.open(user_id, peer, runtime.config.outbound_queue_capacity);
    connection.record_in(first.len() + wire::LENGTH_PREFIX_LEN);
    if !connections.register(&connection) {
        return Err(fail(
            CloseCode::HandshakeFailed,
            format!("user {user_id} is already connected"),
        ));
    }
    let config = &runtime.config;
    let welcome = Frame::<()>::Welcome(Welcome {
        user_id,
        heartbeat_interval_ms: millis_u32(config.heartbeat_interval),
        heartbeat_timeout_ms: millis_u32(config.heartbeat_timeout),
        max_frame_len: config.max_frame_len as u32,
    });
    let welcome = wire::encode_frame(&welcome).expect("a welcome always encodes");
    // The queue is empty, so this cannot fail.
    let _ = connection.send_frame(welcome, false);
    tracing::debug!(user_id, %peer, "session started");
    Ok((connection, rx))
}

fn check_hello<M: Message>(hello: &Hello) -> Result<(), String> {
    let protocol = M::PROTOCOL;
    if hello.version != ENVELOPE_VERSION {
        return Err(format!(
            "envelope version {} is not supported; the server speaks version {ENVELOPE_VERSION}",
            hello.version
        ));
    }
    if hello.fingerprint != protocol.fingerprint {
        return Err(format!(
            "protocol mismatch: the server speaks `{}` (fingerprint {:#018x}), the client `{}` (fingerprint {:#018x}); rebuild the client against the server's protocol",
            protocol.name, protocol.fingerprint, hello.protocol, hello.fingerprint
        ));
    }
    Ok(())
}

fn millis_u32(duration: std::time::Duration) -> u32 {
    duration.as_millis().try_into().unwrap_or(u32::MAX)
}

/// Reads until one whole frame is buffered; used for the handshake.
async fn read_frame(
    reader: &mut tokio::net::tcp::OwnedReadHalf,
    buf: &mut BytesMut,
    splitter: FrameSplitter,
) -> Result<BytesMut, String> {
    loop {
        if let Some(payload) = splitter.split(buf).map_err(|e| e.to_string())? {
            return Ok(payload);
        }
        match reader.read_buf(buf).await {
            Ok(0) => return Err("connection closed during the handshake".into()),
            Ok(_) => {}
            Err(error) => return Err(error.to_string()),
        }
    }
}

async fn read_loop<M: Message>(
    runtime: &Runtime<M>,
    session: &Session,
    reader: &mut tokio::net::tcp::OwnedReadHalf,
    buf: &mut BytesMut,
    splitter: FrameSplitter,
) {
    let connection = session.connection();
    let mut errors = 0u32;
    loop {
        loop {
            match splitter.split(buf) {
                Ok(Some(payload)) => {
                    if !handle_frame(runtime, session, &payload, &mut errors).await {
                        return;
                    }
                }
                Ok(None) => break,
                Err(error @ DecodeError::TooLarge { .. }) => {
                    connection.close(CloseCode::FrameTooLarge, &error.to_string(), false);
                    return;
                }
                Err(_) => unreachable!("the splitter only reports oversized frames"),
            }
            if connection.is_closing() {
                return;
            }
        }
        tokio::select! {
            biased;
            () = connection.closing().cancelled() => return,
            read = reader.read_buf(buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
        }
    }
}

/// Handles one frame; `false` ends the session.
async fn handle_frame<M: Message>(
    runtime: &Runtime<M>,
    session: &Session,
    payload: &[u8],
    errors: &mut u32,
) -> bool {
    let connection = session.connection();
    connection.record_in(payload.len() + wire::LENGTH_PREFIX_LEN);
    connection.touch();
    let message = match wire::decode_payload::<Frame<M>>(payload) {
        Ok(Frame::App(message)) => message,
        Ok(Frame::Ping { nonce }) => {
            if let Ok(pong) = wire::encode_frame(&Frame::<()>::Pong { nonce }) {
                let _ = connection.send_frame(pong, true);
            }
            return true;
        }
        Ok(Frame::Pong { .. }) => return true,
        Ok(Frame::Close(_)) => return false,
        Ok(Frame::Hello(_) | Frame::Welcome(_) | Frame::Error(_)) => {
            return protocol_error(
                runtime,
                connection,
                errors,
                ErrorCode::UnexpectedFrame,
                "only messages, pings, pongs and close frames are expected after the handshake"
                    .into(),
            );
        }
        Err(error) => {
            return protocol_error(
                runtime,
                connection,
                errors,
                ErrorCode::Undecodable,
                error.to_string(),
            );
        }
    };
    let variant = message.variant();
    if !variant.direction.client_sends() {
        return protocol_error(
            runtime,
            connection,
            errors,
            ErrorCode::NotAllowed,
            format!(
                "`{}::{}` is sent by the server, not by clients",
                M::PROTOCOL.name,
                variant.name
            ),
        );
    }
    match runtime.messages.process(session, message).await {
        None | Some(Ok(None)) => {}
        Some(Ok(Some(reply))) => {
            if let Err(error) = session.send(&reply) {
                tracing::debug!(user_id = session.user_id(), %error, "reply not sent");
            }
        }
        Some(Err(error)) => {
            let counters = runtime.shared.connections.counters();
            if error.code == ErrorCode::HandlerPanicked {
                counters.handler_panics.fetch_add(1, Ordering::Relaxed);
            } else {
                counters.handler_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(user_id = session.user_id(), %error, "handler error");
            }
            send_error(connection, error.code, error.to_string());
        }
    }
    true
}

/// Answers a bad frame with an error frame; closes the connection after
/// `max_protocol_errors` of them. `false` ends the session.
fn protocol_error<M: Message>(
    runtime: &Runtime<M>,
    connection: &Connection,
    errors: &mut u32,
    code: ErrorCode,
    message: String,
) -> bool {
    runtime
        .shared
        .connections
        .counters()
        .protocol_errors
        .fetch_add(1, Ordering::Relaxed);
    *errors += 1;
    tracing::debug!(user_id = connection.user_id, %message, "protocol error");
    send_error(connection, code, message);
    if *errors >= runtime.config.max_protocol_errors {
        connection.close(
            CloseCode::TooManyErrors,
            &format!("{errors} protocol errors"),
            true,
        );
        return false;
    }
    true
}

fn send_error(connection: &Connection, code: ErrorCode, message: String) {
    let frame = Frame::<()>::Error(ErrorFrame {
        code: code.as_u16(),
        message,
    });
    if let Ok(bytes) = wire::encode_frame(&frame) {
        let _ = connection.send_frame(bytes, false);
    }
}

/// Leaves every room (telling the members, when the chat set a notice),
/// unregisters, and lets the writer finish.
fn end_session<M: Message>(runtime: &Runtime<M>, connection: &Arc<Connection>) {
    let user_id = connection.user_id;
    let shared = &runtime.shared;
    shared.connections.unregister(connection);
    for room_id in shared.rooms.leave_all_rooms(user_id) {
        if let Some(notice) = connection
            .leave_notice
            .get()
            .and_then(|f| f(room_id, user_id))
        {
            let _ = shared.rooms.broadcast_frame(room_id, notice, false, None);
        }
    }
    connection.close_quietly();
    tracing::debug!(user_id, "session ended");
}
