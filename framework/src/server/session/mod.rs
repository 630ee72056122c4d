//! One connection's session: the handshake, the read loop, the handling
//! of each frame, and the end.
//!
//! [`SessionDriver`] knows its connection only through the transport
//! traits and its frames only through the codec. It runs on the task the
//! accept loop spawned; its writer runs on a task of its own. This file
//! has the read loop, the handling of one frame and the end of a session;
//! `handshake.rs` has its start.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::Poll;

use super::runtime::{Runtime, Slot};
use crate::codec::Codec;
use crate::connection::Connection;
use crate::dispatch::Outcome;
use crate::monitor::Event;
use crate::protocol::Message;
use crate::session::{Disconnect, Session};
use crate::transport::{FrameRead, Inbound, ReadError, Transport};
use crate::wire::{CloseCode, EncodedFrame, ErrorCode, ErrorFrame, Frame, LENGTH_PREFIX_LEN};

mod handshake;

/// What handling one frame leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Read the next frame.
    Read,
    /// The session is over: the client said goodbye, or a close was asked.
    End,
}

/// A session past its handshake: its connection, its reader, and the
/// state of its protocol errors. Dropping it ends the session (it leaves
/// its rooms, the hooks run), however the task ends.
pub(super) struct SessionDriver<M: Message, C: Codec, R: FrameRead> {
    runtime: Arc<Runtime<M, C>>,
    session: Session,
    reader: R,
    /// Protocol errors so far; the session closes at `max_protocol_errors`.
    errors: AtomicU32,
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
    slot: Slot,
    transport: T,
    peer: SocketAddr,
) -> impl Future<Output = ()> + Send + 'static {
    let open = Box::pin(SessionDriver::open(runtime, transport, peer));
    async move {
        let _slot = slot;
        let Some(driver) = open.await else {
            return;
        };
        driver.run().await;
    }
}

impl<M: Message, C: Codec, R: FrameRead> SessionDriver<M, C, R> {
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
        async move { self.read_loop().await }
    }

    /// Reads and handles frames until the session ends.
    async fn read_loop(&mut self) {
        {
            loop {
                let frame = match self.next_frame().await {
                    Some(Ok(Some(frame))) => frame,
                    // The client went away, or the connection is closing.
                    None | Some(Ok(None)) => return,
                    Some(Err(error @ ReadError::TooLarge { .. })) => {
                        let reason = error.to_string();
                        self.connection()
                            .close(CloseCode::FrameTooLarge, &reason, false);
                        return;
                    }
                    Some(Err(ReadError::Io(error))) => {
                        tracing::debug!(user_id = self.session.user_id(), %error, "read failed");
                        return;
                    }
                };
                self.connection().touch_at(frame.read_at);
                // Boxed: the state of handling one frame lives only while it
                // is handled, so an idle session's task does not carry it. A
                // forced shutdown stops a handler that outlasts the drain
                // time; it watches the connection's own signal, not the
                // server-wide token whose lock every session would share,
                // and only once the handler has had to wait: a frame handled
                // in one poll never registers a waiter.
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
                    return;
                }
            }
        }
    }

    /// The next frame, or `None` once the connection is closing.
    ///
    /// The reader is asked first; only when it has nothing does the wait
    /// register for the close signal, so frames already buffered are
    /// handled without touching the signal's lock.
    async fn next_frame(&mut self) -> Option<Result<Option<Inbound>, ReadError>> {
        let SessionDriver {
            session, reader, ..
        } = self;
        let connection = session.connection();
        // Created before looking, so a close in between wakes us.
        let closing = connection.closing().notified();
        let mut closing = std::pin::pin!(closing);
        poll_fn(|cx| {
            if let Poll::Ready(read) = reader.poll_frame(cx) {
                return Poll::Ready(Some(read));
            }
            if closing.as_mut().poll(cx).is_ready() || connection.is_closing() {
                return Poll::Ready(None);
            }
            Poll::Pending
        })
        .await
    }

    /// Handles one frame: decodes it, answers system frames, and runs a
    /// message through the message service, then sends what its outcome
    /// says.
    async fn handle_frame(&self, frame: Inbound) -> Next {
        let connection = self.connection();
        connection.record_in(frame.payload.len() + LENGTH_PREFIX_LEN);
        let (message, stamp) = match C::decode::<Frame<M>>(&frame.payload) {
            Ok(Frame::App(message)) => (message, None),
            Ok(Frame::Stamped {
                sent_at_us,
                message,
            }) => (message, Some(sent_at_us)),
            Ok(Frame::Ping { nonce }) => {
                self.send_system(&Frame::Pong { nonce }, true);
                return Next::Read;
            }
            Ok(Frame::Pong { .. }) => return Next::Read,
            Ok(Frame::Close(_)) => return Next::End,
            Ok(Frame::Hello(_) | Frame::Welcome(_) | Frame::Error(_)) => {
                let message =
                    "only messages, pings, pongs and close frames are expected after the handshake";
                return self.protocol_error(ErrorCode::UnexpectedFrame, message.into());
            }
            Err(error) => return self.protocol_error(ErrorCode::Undecodable, error.to_string()),
        };
        let variant = message.variant();
        if !variant.direction.client_sends() {
            let name = M::PROTOCOL.name;
            let message = format!(
                "`{name}::{}` is sent by the server, not by clients",
                variant.name
            );
            return self.protocol_error(ErrorCode::NotAllowed, message);
        }
        connection.record_message();
        let outcome = self
            .runtime
            .messages
            .process(&self.session, message, frame.read_at, stamp);
        match outcome.await {
            Outcome::Reply(reply) => {
                let sent = EncodedFrame::encode::<C, _>(&Frame::App(&reply))
                    .map_err(crate::SendError::from)
                    .and_then(|bytes| connection.send_frame(bytes, reply.variant().droppable));
                if let Err(error) = sent {
                    tracing::debug!(user_id = connection.user_id, %error, "reply not sent");
                }
            }
            Outcome::Done | Outcome::Stopped => {}
            Outcome::Failed(error) => self.send_error(error.code, error.to_string()),
        }
        Next::Read
    }

    /// Answers a bad frame with an error frame; closes the connection after
    /// `max_protocol_errors` of them.
    fn protocol_error(&self, code: ErrorCode, message: String) -> Next {
        let connection = self.connection();
        self.runtime.shared.monitor.count(Event::ProtocolError);
        let errors = self.errors.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::debug!(user_id = connection.user_id, %message, "protocol error");
        self.send_error(code, message);
        if errors < self.runtime.config.max_protocol_errors {
            return Next::Read;
        }
        let reason = format!("{errors} protocol errors");
        connection.close(CloseCode::TooManyErrors, &reason, true);
        Next::End
    }

    fn send_error(&self, code: ErrorCode, message: String) {
        let code = code.as_u16();
        self.send_system(&Frame::Error(ErrorFrame { code, message }), false);
    }

    fn send_system(&self, frame: &Frame<()>, droppable: bool) {
        if let Ok(bytes) = EncodedFrame::encode::<C, _>(frame) {
            let _ = self.connection().send_frame(bytes, droppable);
        }
    }
}

/// Ends the session however its task ends: the read loop returning, a
/// forced shutdown dropping it mid-handler, or a panic unwinding the task.
/// It unregisters, leaves every room, lets the writer finish, and runs
/// the `on_disconnect` hooks.
impl<M: Message, C: Codec, R: FrameRead> Drop for SessionDriver<M, C, R> {
    fn drop(&mut self) {
        let connection = self.connection();
        let user_id = connection.user_id;
        let shared = &self.runtime.shared;
        shared.connections.unregister(connection);
        let rooms = shared.rooms.leave_all_rooms(user_id);
        // The reason is read before the quiet close, which sets none.
        let reason = connection.close_reason().0.cloned();
        connection.close_quietly();
        tracing::debug!(user_id, "session ended");
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
