//! The handshake: from an accepted transport to a registered session.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use super::SessionDriver;
use crate::admission::{HandshakeTicket, Ticket};
use crate::codec::Codec;
use crate::connection::{Connection, run_writer, write_close};
use crate::protocol::Message;
use crate::server::runtime::Runtime;
use crate::session::Session;
use crate::transport::{FrameRead, ReadError, Transport};
use crate::wire::{
    CloseCode, CloseFrame, ENVELOPE_VERSION, EncodedFrame, Frame, Hello, LENGTH_PREFIX_LEN, Welcome,
};

/// Time allowed to tell a client why its handshake failed.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

impl<M: Message, C: Codec, R: FrameRead> SessionDriver<M, C, R> {
    /// The handshake: opens the transport, reads the hello, registers the
    /// connection and starts its writer; or tells the client why not and
    /// returns `None`. The whole of it has `handshake_timeout`, and a
    /// shutdown that begins meanwhile ends it with the shutdown reason.
    pub(super) async fn open<T: Transport<Reader = R>>(
        runtime: Arc<Runtime<M, C>>,
        (ticket, handshake): (Ticket, HandshakeTicket),
        transport: T,
        peer: SocketAddr,
    ) -> Option<Self> {
        let deadline = tokio::time::Instant::now() + runtime.config.handshake_timeout;
        let opened = tokio::time::timeout_at(deadline, transport.open(&runtime.transport)).await;
        let Ok(Ok((mut reader, mut writer))) = opened else {
            tracing::debug!(%peer, transport = T::NAME, "the transport did not open");
            return None;
        };
        let shared = &runtime.shared;
        let hello = tokio::select! {
            biased;
            () = shared.shutdown.cancelled() => Err(close(CloseCode::Shutdown, "the server is shutting down")),
            hello = tokio::time::timeout_at(deadline, Self::hello(&runtime, &mut reader, peer, ticket)) => {
                hello.unwrap_or_else(|_| Err(close(CloseCode::HandshakeFailed, "no handshake in time")))
            }
        };
        // The handshake is over, whichever way: its place is free.
        drop(handshake);
        let connection = match hello {
            Ok(connection) => connection,
            Err(refusal) => {
                tracing::debug!(%peer, reason = %refusal.reason, "handshake failed");
                shared.monitor.count_close(Some(refusal.code));
                let told = write_close::<T::Writer, C>(&mut writer, Some(&refusal));
                let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, told).await;
                return None;
            }
        };
        let writing =
            run_writer::<T::Writer, C>(Arc::clone(&connection), writer, shared.force.clone());
        runtime.tracker.spawn(writing.in_current_span());
        if shared.shutdown.is_cancelled() {
            // Registered after the drain closed every session it saw.
            connection.close(CloseCode::Shutdown, "the server is shutting down", true);
        }
        reader.set_max_frame_len(runtime.config.max_frame_len);
        let session = Session::new(connection, Arc::clone(&runtime.services));
        Some(SessionDriver::new(runtime, session, reader))
    }

    /// Reads the hello, authenticates, registers the connection and queues
    /// the welcome. On failure, the close frame to send.
    async fn hello(
        runtime: &Runtime<M, C>,
        reader: &mut R,
        peer: SocketAddr,
        ticket: Ticket,
    ) -> Result<Arc<Connection>, CloseFrame> {
        let first = match poll_fn(|cx| reader.poll_frame(cx)).await {
            Ok(Some(first)) => first,
            Ok(None) => return Err(handshake_failed("connection closed during the handshake")),
            // The same code as an oversized frame later in the session.
            Err(error @ ReadError::TooLarge { .. }) => {
                return Err(close(CloseCode::FrameTooLarge, &error.to_string()));
            }
            Err(error) => return Err(handshake_failed(&error.to_string())),
        };
        let hello = match C::decode::<Frame<M>>(&first.payload) {
            Ok(Frame::Hello(hello)) => hello,
            Ok(_) => return Err(handshake_failed("the first frame must be a hello")),
            Err(error) => {
                let reason = format!("the first frame is not a hello: {error}");
                return Err(handshake_failed(&reason));
            }
        };
        let revision = check_hello::<M>(&hello)
            .map_err(|reason| close(CloseCode::ProtocolMismatch, &reason))?;
        let user_id = runtime
            .authenticator
            .authenticate(&hello, peer)
            .await
            .map_err(|error| handshake_failed(&error.to_string()))?;
        let config = &runtime.config;
        let connections = &runtime.shared.connections;
        let connection = connections.open(user_id, peer, Some(ticket));
        connection.set_revision(revision);
        connection.record_in(first.payload.len() + LENGTH_PREFIX_LEN);
        if !connections.register(&connection) {
            let reason = format!("user {user_id} is already connected");
            return Err(handshake_failed(&reason));
        }
        let welcome = Frame::<()>::Welcome(Welcome {
            user_id,
            heartbeat_interval_ms: millis_u32(config.heartbeat_interval),
            heartbeat_timeout_ms: millis_u32(config.heartbeat_timeout),
            max_frame_len: config.max_frame_len as u32,
        });
        let welcome = EncodedFrame::encode::<C, _>(&welcome).expect("a welcome always encodes");
        // The queue is empty, so this cannot fail.
        let _ = connection.send_frame(welcome, false);
        tracing::Span::current().record("user_id", user_id);
        tracing::info!("session started");
        Ok(connection)
    }
}

fn close(code: CloseCode, reason: &str) -> CloseFrame {
    CloseFrame {
        code: code.as_u16(),
        reason: reason.to_owned(),
    }
}

fn handshake_failed(reason: &str) -> CloseFrame {
    close(CloseCode::HandshakeFailed, reason)
}

/// Checks the hello against protocol `M`; the revision of the protocol the
/// client speaks: this one, or an earlier one its lock records.
fn check_hello<M: Message>(hello: &Hello) -> Result<u32, String> {
    let protocol = M::PROTOCOL;
    if hello.version != ENVELOPE_VERSION {
        return Err(format!(
            "envelope version {} is not supported; the server speaks version {ENVELOPE_VERSION}",
            hello.version
        ));
    }
    protocol.revision_of(hello.fingerprint).ok_or_else(|| {
        format!(
            "protocol mismatch: the server speaks `{}` (fingerprint {:#018x}), the client `{}` (fingerprint {:#018x}); rebuild the client against the server's protocol",
            protocol.name, protocol.fingerprint, hello.protocol, hello.fingerprint
        )
    })
}

fn millis_u32(duration: Duration) -> u32 {
    duration.as_millis().try_into().unwrap_or(u32::MAX)
}
