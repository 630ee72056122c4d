//! One server run: accepting, sessions (handshake, read loop, dispatch)
//! and the graceful drain.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Disconnect, DisconnectHook, ServeFuture, Shared, TcpGameService};
use crate::auth::Authenticator;
use crate::config::TcpServerConfig;
use crate::connection::{Connection, run_writer};
use crate::dispatch::{BuildError, MessageService};
use crate::middleware::OrderedMiddleware;
use crate::pool::PooledBuffer;
use crate::protocol::Message;
use crate::session::{Services, Session};
use crate::wire::{
    self, CloseCode, CloseFrame, DecodeError, ENVELOPE_VERSION, ErrorCode, ErrorFrame, Frame,
    FrameSplitter, Hello, Welcome,
};

/// Everything a session of protocol `M` needs.
struct Runtime<M: Message> {
    config: Arc<TcpServerConfig>,
    services: Arc<Services>,
    messages: MessageService<M>,
    authenticator: Arc<dyn Authenticator>,
    disconnect_hooks: Vec<DisconnectHook>,
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
        match service.local_addr() {
            Some(address) => {
                tracing::info!(protocol = M::PROTOCOL.name, %address, "gamewire server listening")
            }
            None => tracing::info!(protocol = M::PROTOCOL.name, "gamewire server listening"),
        }
        runtime.tracker.spawn(Arc::clone(&shared.heartbeat).run(
            shared.rooms.clone(),
            runtime.config.room_cleanup_interval,
            shared.shutdown.clone(),
        ));
        runtime.tracker.spawn(sample_rates(
            shared.monitor.clone(),
            shared.connections.clone(),
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
        scheduler: shared.scheduler.clone(),
        state: service.state.clone(),
    });
    Ok(Runtime {
        messages: MessageService::build(
            &services.state,
            middleware,
            problems,
            service
                .config
                .enable_performance_monitor
                .then(|| shared.monitor.clone()),
        )?,
        config: Arc::clone(&service.config),
        services,
        authenticator: Arc::clone(&service.authenticator),
        disconnect_hooks: service.disconnect_hooks.clone(),
        force: shared.force.clone(),
        tracker: TaskTracker::new(),
        shared,
    })
}

/// Turns the counters into per-second rates, once a second.
async fn sample_rates(
    monitor: crate::monitor::PerformanceMonitor,
    connections: crate::connection::ConnectionService,
    shutdown: CancellationToken,
) {
    let period = std::time::Duration::from_secs(1);
    let mut ticks = tokio::time::interval(period);
    let mut last = (0, 0, 0);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let stats = connections.connection_stats();
        let now = (stats.messages_in, stats.bytes_in, stats.bytes_out);
        monitor.set_rates(period, now.0 - last.0, now.1 - last.1, now.2 - last.2);
        last = now;
    }
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
        // Spawned as it is: a wrapping `async move { session.await }` would
        // hold the session's future twice (rust-lang/rust#62958).
        runtime
            .tracker
            .spawn(run_session(Arc::clone(runtime), socket, peer));
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
        for connection in runtime.shared.connections.all() {
            connection.force();
        }
        runtime.tracker.wait().await;
    }
    if let Some(scheduler) = &runtime.shared.scheduler {
        scheduler.shutdown();
    }
    tracing::info!("gamewire server stopped");
}

/// Decrements the active-socket count however the session ends.
struct ActiveGuard<M: Message>(Arc<Runtime<M>>);

impl<M: Message> Drop for ActiveGuard<M> {
    fn drop(&mut self) {
        self.0.shared.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A connection's whole life: the handshake, then the read loop until it
/// ends.
///
/// Not an `async fn`: the future of one would keep its arguments twice (as
/// captures and as locals) for the life of the connection
/// (rust-lang/rust#62958). Here the socket and the peer address go into
/// the handshake's boxed future, which is freed once the session runs.
fn run_session<M: Message>(
    runtime: Arc<Runtime<M>>,
    socket: TcpStream,
    peer: SocketAddr,
) -> impl Future<Output = ()> + Send + 'static {
    let active = ActiveGuard(Arc::clone(&runtime));
    let open = Box::pin(open_session(Arc::clone(&runtime), socket, peer));
    async move {
        let _active = active;
        let Some(Opened {
            connection,
            mut reader,
            pending,
        }) = open.await
        else {
            return;
        };
        // From here on the session ends through this guard, however it
        // ends: the read loop returning, a forced shutdown dropping it
        // mid-handler, or a panic unwinding the task.
        let _end = SessionEnd {
            runtime: &runtime,
            connection: &connection,
        };
        let session = Session::new(Arc::clone(&connection), Arc::clone(&runtime.services));
        if runtime.shared.shutdown.is_cancelled() {
            // Registered after the drain closed every session it saw.
            connection.close(CloseCode::Shutdown, "the server is shutting down", true);
        }
        let splitter = FrameSplitter::new(runtime.config.max_frame_len);
        read_loop(&runtime, &session, &mut reader, pending, splitter).await;
    }
}

/// A session that passed its handshake.
struct Opened {
    connection: Arc<Connection>,
    reader: OwnedReadHalf,
    /// Bytes the client sent right behind its hello.
    pending: Option<PooledBuffer>,
}

/// The handshake: reads the hello, registers the connection and starts its
/// writer; or tells the client why not and returns `None`.
async fn open_session<M: Message>(
    runtime: Arc<Runtime<M>>,
    socket: TcpStream,
    peer: SocketAddr,
) -> Option<Opened> {
    let _ = socket.set_nodelay(true);
    let (mut reader, mut writer) = socket.into_split();
    let splitter = FrameSplitter::new(runtime.config.max_frame_len);
    let mut buf = BytesMut::with_capacity(256);
    // A shutdown that begins mid-handshake (a slow client, a slow
    // authenticator) closes the socket with the shutdown reason rather than
    // holding up the drain.
    let opened = tokio::select! {
        biased;
        () = runtime.shared.shutdown.cancelled() => Err(CloseFrame {
            code: CloseCode::Shutdown.as_u16(),
            reason: "the server is shutting down".into(),
        }),
        opened = handshake(&runtime, &mut reader, &mut buf, splitter, peer) => opened,
    };
    let connection = match opened {
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
            return None;
        }
    };
    runtime.tracker.spawn(run_writer(
        Arc::clone(&connection),
        writer,
        runtime.shared.pool.clone(),
        runtime.force.clone(),
    ));
    let pending = (!buf.is_empty()).then(|| {
        let mut pending = read_buffer(&runtime);
        pending.extend_from_slice(&buf);
        pending
    });
    Some(Opened {
        connection,
        reader,
        pending,
    })
}

/// Runs [`end_session`] when dropped.
struct SessionEnd<'a, M: Message> {
    runtime: &'a Runtime<M>,
    connection: &'a Arc<Connection>,
}

impl<M: Message> Drop for SessionEnd<'_, M> {
    fn drop(&mut self) {
        end_session(self.runtime, self.connection);
    }
}

/// Reads the hello, authenticates, registers the connection and queues the
/// welcome. On failure, returns the close frame to send.
async fn handshake<M: Message>(
    runtime: &Runtime<M>,
    reader: &mut tokio::net::tcp::OwnedReadHalf,
    buf: &mut BytesMut,
    splitter: FrameSplitter,
    peer: SocketAddr,
) -> Result<Arc<Connection>, CloseFrame> {
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
    .map_err(|(code, reason)| fail(code, reason))?;
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
    let connection = connections.open(user_id, peer, runtime.config.outbound_queue_capacity);
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
    Ok(connection)
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

/// Reads until one whole frame is buffered; used for the handshake. On
/// failure, the close code and reason to send.
async fn read_frame(
    reader: &mut tokio::net::tcp::OwnedReadHalf,
    buf: &mut BytesMut,
    splitter: FrameSplitter,
) -> Result<BytesMut, (CloseCode, String)> {
    let failed = |reason: String| (CloseCode::HandshakeFailed, reason);
    loop {
        match splitter.split(buf) {
            Ok(Some(payload)) => return Ok(payload),
            Ok(None) => {}
            // The same code as an oversized frame later in the session.
            Err(error) => return Err((CloseCode::FrameTooLarge, error.to_string())),
        }
        match reader.read_buf(buf).await {
            Ok(0) => return Err(failed("connection closed during the handshake".into())),
            Ok(_) => {}
            Err(error) => return Err(failed(error.to_string())),
        }
    }
}

/// A buffer for one burst of reads: from the pool when it is on.
fn read_buffer<M: Message>(runtime: &Runtime<M>) -> PooledBuffer {
    let size = runtime.config.read_buffer_size;
    runtime
        .shared
        .pool
        .as_ref()
        .and_then(|pool| pool.allocate_buffer(size))
        .unwrap_or_else(|| PooledBuffer::unpooled(size))
}

/// Reads and handles frames until the connection ends.
///
/// A buffer is held only while there are bytes to parse: the loop waits for
/// the socket to be readable with no buffer at all, takes one for the
/// read, and gives it back as soon as every complete frame in it has been
/// handled. An idle connection therefore holds no read buffer.
///
/// Not an `async fn`, for the reason given at [`run_session`].
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn would store its arguments twice (rust-lang/rust#62958)"
)]
fn read_loop<'a, M: Message>(
    runtime: &'a Runtime<M>,
    session: &'a Session,
    reader: &'a mut OwnedReadHalf,
    mut buffer: Option<PooledBuffer>,
    splitter: FrameSplitter,
) -> impl Future<Output = ()> + Send + 'a {
    async move {
        let connection = session.connection();
        let mut errors = 0u32;
        let mut read_at = std::time::Instant::now();
        loop {
            if let Some(buf) = buffer.as_mut() {
                loop {
                    match splitter.split(buf) {
                        Ok(Some(payload)) => {
                            // Boxed: the state of handling one frame lives only
                            // while it is handled, so an idle session's task
                            // does not carry it. A forced shutdown stops a
                            // handler that outlasts the drain time; it watches
                            // the connection's own signal, not the server-wide
                            // token whose lock every session would share, and
                            // only once the handler has had to wait: a frame
                            // handled in one poll never registers a waiter.
                            let handled = Box::pin(async {
                                tokio::select! {
                                    biased;
                                    go_on = handle_frame(runtime, session, &payload, &mut errors, read_at) => go_on,
                                    () = connection.closing().forced() => false,
                                }
                            });
                            if !handled.await {
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
                if buf.is_empty() {
                    buffer = None;
                }
            }
            if !readable_or_closing(connection, reader).await {
                return;
            }
            let buf = buffer.get_or_insert_with(|| read_buffer(runtime));
            match read_once(reader, buf).await {
                Some(Ok(0)) | Some(Err(_)) => return,
                Some(Ok(_)) => {
                    read_at = std::time::Instant::now();
                    connection.touch();
                }
                // The readiness was stale; back to waiting.
                None => {}
            }
        }
    }
}

/// One read into `buf`, or `None` when the socket has nothing after all.
///
/// Through `AsyncRead` rather than `try_read_buf`: a read shorter than the
/// room in `buf` tells tokio the socket is drained, so the next wait goes
/// straight to sleep. `try_read_buf` learns that only from one more read
/// that fails with `WouldBlock`, a wasted syscall per burst (measured with
/// `strace -c`: 8,778 `recvfrom` calls, 4,389 of them failing, against
/// 3,997 for the baseline, at 1,000 lines/s).
async fn read_once(
    reader: &mut OwnedReadHalf,
    buf: &mut PooledBuffer,
) -> Option<std::io::Result<usize>> {
    std::future::poll_fn(|cx| {
        let read = std::pin::pin!(reader.read_buf(&mut **buf));
        match read.poll(cx) {
            std::task::Poll::Ready(result) => std::task::Poll::Ready(Some(result)),
            std::task::Poll::Pending => std::task::Poll::Ready(None),
        }
    })
    .await
}

/// Waits until the socket has bytes (`true`) or the connection is closing
/// or broken (`false`).
///
/// Polled by hand rather than with `select!` over `readable()` and
/// `closing().cancelled()`: those two futures would cost some 200 bytes in
/// every idle session's task, and a socket's read readiness needs no
/// waiter of its own (`poll_read_ready` uses the socket's one read waker).
async fn readable_or_closing(connection: &Connection, reader: &OwnedReadHalf) -> bool {
    let closing = connection.closing().notified();
    let mut closing = std::pin::pin!(closing);
    // Registered before looking, so a close in between wakes us.
    closing.as_mut().enable();
    if connection.is_closing() {
        return false;
    }
    std::future::poll_fn(|cx| {
        if closing.as_mut().poll(cx).is_ready() {
            return std::task::Poll::Ready(false);
        }
        reader
            .as_ref()
            .poll_read_ready(cx)
            .map(|ready| ready.is_ok())
    })
    .await
}

/// Handles one frame; `false` ends the session.
async fn handle_frame<M: Message>(
    runtime: &Runtime<M>,
    session: &Session,
    payload: &[u8],
    errors: &mut u32,
    read_at: std::time::Instant,
) -> bool {
    let connection = session.connection();
    connection.record_in(payload.len() + wire::LENGTH_PREFIX_LEN);
    let (message, stamp) = match wire::decode_payload::<Frame<M>>(payload) {
        Ok(Frame::App(message)) => (message, None),
        Ok(Frame::Stamped {
            sent_at_us,
            message,
        }) => (message, Some(sent_at_us)),
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
    connection
        .counters
        .messages_in
        .fetch_add(1, Ordering::Relaxed);
    let outcome = runtime.messages.process(session, message, read_at).await;
    if let (Some(sent_at_us), Some(monitor)) = (stamp, runtime.messages.monitor()) {
        let micros = wire::unix_micros().saturating_sub(sent_at_us);
        monitor.record_end_to_end(session.user_id(), std::time::Duration::from_micros(micros));
    }
    match outcome {
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
                // Debug, not warn: a refused move is routine in a game, and
                // the sender already got the error frame; the count is in
                // the connection stats.
                tracing::debug!(user_id = session.user_id(), %error, "handler error");
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
    let rooms = shared.rooms.leave_all_rooms(user_id);
    for &room_id in &rooms {
        if let Some(notice) = connection
            .leave_notice
            .get()
            .and_then(|f| f(room_id, user_id))
        {
            let _ = shared.rooms.broadcast_frame(room_id, notice, false, None);
        }
    }
    // The reason is read before the quiet close, which sets none.
    let reason = connection.close_reason().0.cloned();
    connection.close_quietly();
    tracing::debug!(user_id, "session ended");
    if runtime.disconnect_hooks.is_empty() {
        return;
    }
    let gone = Disconnect {
        user_id,
        peer_addr: connection.peer_addr,
        rooms,
        reason,
        connected_for: connection.connected_at.elapsed(),
    };
    for hook in &runtime.disconnect_hooks {
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(&gone)));
        if ran.is_err() {
            tracing::error!(user_id, "an on_disconnect hook panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every idle connection costs its two task futures; keep them small.
    /// (Debug-build sizes; the bounds leave room for compiler changes.)
    #[tokio::test]
    async fn session_futures_stay_small() {
        let service = TcpGameService::with_default_config().protocol::<crate::ChatMessage>();
        let runtime = Arc::new(build_runtime::<crate::ChatMessage>(&service).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (socket, peer) = listener.accept().await.unwrap();
        let session = run_session(Arc::clone(&runtime), socket, peer);
        let size = std::mem::size_of_val(&session);
        assert!(size <= 400, "the reader task's future grew to {size} bytes");
        let (_read, write) = client.into_split();
        let connection = runtime.shared.connections.open(1, peer, 1024);
        let writer = run_writer(connection, write, None, CancellationToken::new());
        let size = std::mem::size_of_val(&writer);
        assert!(size <= 512, "the writer task's future grew to {size} bytes");
    }
}
