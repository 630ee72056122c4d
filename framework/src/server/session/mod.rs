//! One connection's session: the handshake, the read loop, the handling
//! of each frame, and the end.
//!
//! [`SessionDriver`] knows its connection only through the transport
//! traits and its frames only through the codec. It runs on the task the
//! accept loop spawned; its writer runs on a task of its own. This file
//! has the read loop, its limits and the end of a session; `handshake.rs`
//! has its start, and `frame.rs` the handling of one frame.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::task::Poll;
use std::time::Instant;

use tokio::time::Sleep;
use tracing::Instrument;

use super::runtime::Runtime;
use crate::admission::{HandshakeTicket, Ticket};
use crate::codec::Codec;
use crate::config::CLOSE_LINGER_BYTES;
use crate::connection::Connection;
use crate::monitor::Event;
use crate::protocol::Message;
use crate::session::{Disconnect, Session};
use crate::transport::{FrameRead, Inbound, ReadError, Transport};
use crate::wire::{CloseCode, ErrorCode};

mod frame;
mod handshake;

/// What handling one frame leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Read the next frame.
    Read,
    /// The session is over: the client said goodbye, or a close was asked.
    End,
}

/// What waiting for the next frame gave.
#[derive(Debug)]
enum Read {
    /// A whole frame.
    Frame(Inbound),
    /// The client closed its side.
    Closed,
    /// The connection is closing.
    Closing,
    /// The reader failed, or the frame was too large.
    Failed(ReadError),
    /// A frame began and did not end within `frame_timeout`.
    FrameTimedOut,
}

/// The message rate's token bucket, refilled from the frames' read times,
/// so that it reads no clock of its own.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(burst: u32) -> Self {
        Bucket {
            tokens: f64::from(burst),
            at: Instant::now(),
        }
    }

    /// Adds what the time since the last refill earned, up to `burst`.
    fn refill(&mut self, now: Instant, rate: u32, burst: u32) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * f64::from(rate)).min(f64::from(burst));
        self.at = self.at.max(now);
    }

    /// Takes a token; `false` when none is left.
    fn take(&mut self) -> bool {
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

/// A session past its handshake: its connection, its reader, and the
/// state of its limits. Dropping it ends the session (it leaves its rooms,
/// the hooks run), however the task ends.
pub(super) struct SessionDriver<M: Message, C: Codec, R: FrameRead> {
    runtime: Arc<Runtime<M, C>>,
    session: Session,
    reader: R,
    /// Protocol errors so far; the session closes at `max_protocol_errors`.
    errors: AtomicU32,
    /// Frames refused for the message rate so far; the session closes at
    /// `max_protocol_errors`.
    rate_refusals: u32,
    bucket: Bucket,
    /// Set while a frame has begun and not ended: when it must have.
    /// Boxed, so that a session whose frames arrive whole carries no timer.
    frame_deadline: Option<Pin<Box<Sleep>>>,
    /// Whether [`end`](Self::end) ran.
    ended: bool,
}

/// Whether the client may still be sending when the read loop ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    /// It closed its side, or the connection failed.
    Gone,
    /// The server closes the connection: what it still sends is read and
    /// dropped for a while ([`SessionDriver::linger`]).
    MaySend,
}

/// A connection's whole life: the handshake, then the read loop until it
/// ends.
///
/// Not an `async fn`: the future of one would keep its arguments twice (as
/// captures and as locals) for the life of the connection
/// (rust-lang/rust#62958). Here the transport and the peer address go into
/// the handshake's boxed future, which is freed once the session runs.
pub(super) fn run_session<M: Message, C: Codec, T: Transport>(
    runtime: Arc<Runtime<M, C>>,
    tickets: (Ticket, HandshakeTicket),
    transport: T,
    peer: SocketAddr,
) -> impl Future<Output = ()> + Send + 'static {
    // One span for the whole session, its writer included: what a handler
    // logs carries the session it runs for.
    let span = tracing::info_span!(
        "session",
        user_id = tracing::field::Empty,
        %peer,
        protocol = M::PROTOCOL.name,
        transport = T::NAME,
    );
    let open = Box::pin(SessionDriver::open(runtime, tickets, transport, peer));
    async move {
        let Some(driver) = open.await else {
            return;
        };
        driver.run().await;
    }
    .instrument(span)
}

impl<M: Message, C: Codec, R: FrameRead> SessionDriver<M, C, R> {
    fn new(runtime: Arc<Runtime<M, C>>, session: Session, reader: R) -> Self {
        let bucket = Bucket::full(runtime.config.message_burst);
        SessionDriver {
            runtime,
            session,
            reader,
            errors: AtomicU32::new(0),
            rate_refusals: 0,
            bucket,
            frame_deadline: None,
            ended: false,
        }
    }

    fn connection(&self) -> &Arc<Connection> {
        self.session.connection()
    }

    /// Reads and handles frames until the session ends, then ends it.
    ///
    /// Not an `async fn`, for the reason given at [`run_session`].
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn would store its arguments twice (rust-lang/rust#62958)"
    )]
    fn run(mut self) -> impl Future<Output = ()> + Send + 'static {
        async move {
            let client = self.read_loop().await;
            self.end();
            if client == Client::MaySend {
                Box::pin(self.linger()).await;
            }
        }
    }

    /// While the writer delivers the close, reads and drops what the
    /// client still sends, until it closes its side, `close_linger` is
    /// over, `CLOSE_LINGER_BYTES` were dropped or the server is forced to
    /// stop: the socket is not closed with unread bytes, which would reset
    /// the connection under the close frame.
    async fn linger(&mut self) {
        let linger = self.runtime.config.close_linger;
        let connection = Arc::clone(self.connection());
        let reader = &mut self.reader;
        let drop_what_arrives = async {
            let mut dropped = 0;
            while dropped < CLOSE_LINGER_BYTES {
                match poll_fn(|cx| reader.poll_discard(cx)).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => dropped += n,
                }
            }
        };
        tokio::select! {
            () = drop_what_arrives => {}
            () = tokio::time::sleep(linger) => {}
            () = connection.closing().forced() => {}
        }
    }

    /// Reads and handles frames until the session ends.
    ///
    /// A client whose outbound queue backs up is read no further until it
    /// drains, and a session that handled `frames_per_wakeup` frames in a
    /// row yields to the others of its thread.
    async fn read_loop(&mut self) -> Client {
        let budget = self.runtime.config.frames_per_wakeup;
        let mut streak = 0;
        loop {
            if self.connection().backlogged() {
                self.connection().drained().await;
                streak = 0;
            }
            if streak >= budget {
                tokio::task::yield_now().await;
                streak = 0;
            }
            let (read, waited) = self.next_frame().await;
            if waited {
                streak = 0;
            }
            let frame = match read {
                Read::Frame(frame) => frame,
                Read::Closed => return Client::Gone,
                Read::Closing => return Client::MaySend,
                Read::Failed(error @ ReadError::TooLarge { .. }) => {
                    let reason = error.to_string();
                    self.connection()
                        .close(CloseCode::FrameTooLarge, &reason, false);
                    return Client::MaySend;
                }
                Read::Failed(ReadError::Unsupported(why)) => {
                    let reason = format!("unsupported: {why}");
                    self.connection()
                        .close(CloseCode::Unsupported, &reason, false);
                    return Client::MaySend;
                }
                Read::Failed(ReadError::Io(error)) => {
                    tracing::debug!(user_id = self.session.user_id(), %error, "read failed");
                    return Client::Gone;
                }
                Read::FrameTimedOut => {
                    let reason = format!(
                        "a frame took longer than {:?} to arrive",
                        self.runtime.config.frame_timeout
                    );
                    self.connection()
                        .close(CloseCode::FrameTimeout, &reason, false);
                    return Client::MaySend;
                }
            };
            streak += 1;
            if !self.within_rate(&frame) {
                if self.refuse_for_rate() == Next::End {
                    return Client::MaySend;
                }
                continue;
            }
            // Boxed: the state of handling one frame lives only while it
            // is handled, so an idle session's task does not carry it. A
            // forced shutdown stops a handler that outlasts the drain time;
            // it watches the connection's own signal, not the server-wide
            // token whose lock every session would share, and only once the
            // handler has had to wait: a frame handled in one poll never
            // registers a waiter.
            let this = &*self;
            let next = Box::pin(async move {
                tokio::select! {
                    biased;
                    next = this.handle_frame(frame) => next,
                    () = this.connection().closing().forced() => Next::End,
                }
            })
            .await;
            if next == Next::End || self.connection().is_closing() {
                return Client::MaySend;
            }
        }
    }

    /// The next frame, and whether the session had to wait for it.
    ///
    /// The reader is asked first; only when it has nothing does the wait
    /// register for the close signal (and, while a frame is half there,
    /// for its deadline), so frames already buffered are handled without
    /// touching the signal's lock or the timer.
    async fn next_frame(&mut self) -> (Read, bool) {
        let SessionDriver {
            session,
            reader,
            frame_deadline,
            runtime,
            ..
        } = self;
        let connection = session.connection();
        let frame_timeout = runtime.config.frame_timeout;
        // Created before looking, so a close in between wakes us.
        let closing = connection.closing().notified();
        let mut closing = std::pin::pin!(closing);
        let mut waited = false;
        let read = poll_fn(|cx| {
            match reader.poll_frame(cx) {
                Poll::Ready(Ok(Some(frame))) => {
                    *frame_deadline = None;
                    return Poll::Ready(Read::Frame(frame));
                }
                Poll::Ready(Ok(None)) => return Poll::Ready(Read::Closed),
                Poll::Ready(Err(error)) => return Poll::Ready(Read::Failed(error)),
                Poll::Pending => {}
            }
            if closing.as_mut().poll(cx).is_ready() || connection.is_closing() {
                return Poll::Ready(Read::Closing);
            }
            if reader.frame_started() {
                let deadline = frame_deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(frame_timeout)));
                if deadline.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Read::FrameTimedOut);
                }
            } else {
                *frame_deadline = None;
            }
            waited = true;
            Poll::Pending
        })
        .await;
        (read, waited)
    }

    /// Notes `frame` as a sign of life and takes a token of the message
    /// rate for it. Frames of one read share its time: for them, neither
    /// the clock arithmetic nor the refill is done again.
    fn within_rate(&mut self, frame: &Inbound) -> bool {
        let config = &self.runtime.config;
        if frame.read_at != self.bucket.at {
            self.session.connection().touch_at(frame.read_at);
            self.bucket
                .refill(frame.read_at, config.message_rate, config.message_burst);
        }
        self.bucket.take()
    }

    /// Refuses a frame over the message rate with an error frame; closes
    /// the connection after `max_protocol_errors` of them.
    fn refuse_for_rate(&mut self) -> Next {
        let config = &self.runtime.config;
        self.rate_refusals += 1;
        self.runtime.shared.monitor.count(Event::RateLimited);
        let message = format!(
            "more than {} messages a second (bursts of {}); this one was not handled",
            config.message_rate, config.message_burst
        );
        self.send_error(ErrorCode::RateLimited, message);
        if self.rate_refusals < config.max_protocol_errors {
            return Next::Read;
        }
        let reason = format!("{} messages over the rate", self.rate_refusals);
        self.connection()
            .close(CloseCode::RateLimited, &reason, true);
        Next::End
    }
}

/// Ends the session however its task ends: the read loop returning, a
/// forced shutdown dropping it mid-handler, or a panic unwinding the task.
/// It unregisters, leaves every room, lets the writer finish, and runs
/// the `on_disconnect` hooks; after the read loop, before the linger.
impl<M: Message, C: Codec, R: FrameRead> Drop for SessionDriver<M, C, R> {
    fn drop(&mut self) {
        if !self.ended {
            self.end();
        }
    }
}

impl<M: Message, C: Codec, R: FrameRead> SessionDriver<M, C, R> {
    /// Ends the session: see the `Drop` impl, which runs it unless the
    /// read loop did, before lingering.
    fn end(&mut self) {
        self.ended = true;
        let connection = self.connection();
        let user_id = connection.user_id;
        let shared = &self.runtime.shared;
        shared.connections.unregister(connection);
        let rooms = shared.rooms.leave_all_rooms(user_id);
        // The reason is read before the quiet close, which sets none.
        let reason = connection.close_reason().0.cloned();
        connection.close_quietly();
        self.runtime
            .shared
            .monitor
            .count_close(reason.as_ref().map(|close| close.code));
        match &reason {
            Some(close) => tracing::info!(
                close_code = close.code,
                reason = %close.reason,
                "session ended"
            ),
            None => {
                tracing::info!("session ended: the client closed the connection, or it was lost")
            }
        }
        let gone = Disconnect {
            user_id,
            peer_addr: connection.peer_addr,
            rooms,
            reason,
            connected_for: connection.connected_at.elapsed(),
        };
        for hook in &self.runtime.disconnect_hooks {
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(&gone)));
            if ran.is_err() {
                tracing::error!(user_id, "an on_disconnect hook panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests;
