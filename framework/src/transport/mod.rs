//! Transports: how whole frames travel between a client and the server.
//!
//! The session never sees a socket. It reads whole frame payloads from a
//! [`FrameRead`], and its writer hands encoded frames to a [`FrameWrite`];
//! what a frame looks like on the wire in between is the transport's
//! business. Four traits make a transport:
//!
//! - [`Listen`] accepts connections ([`tokio::net::TcpListener`] for TCP);
//! - [`Transport`] is one accepted connection: [`Transport::open`] finishes
//!   whatever the transport itself must do before frames flow (nothing for
//!   TCP; the HTTP upgrade for WebSocket), within the handshake's deadline,
//!   and splits the connection into its two directions;
//! - [`FrameRead`] yields one whole payload at a time;
//! - [`FrameWrite`] takes frames into its write buffer and writes them in
//!   as few syscalls as it can.
//!
//! Two shapes fit. A byte stream (`tcp.rs`) frames each payload with the
//! 4-byte length prefix that [`EncodedFrame::with_prefix`] already holds,
//! and splits incoming bytes at those prefixes. A message transport (a
//! WebSocket: one binary message per frame) writes
//! [`EncodedFrame::payload_slice`] as one message and reads one payload per
//! message. Adding a transport is an addition: implement these traits in a
//! file of this module and start an accept loop on its listener where the
//! server runs (`server/run.rs`); nothing in the session, the queue or the
//! writer changes.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;

use crate::pool::EnhancedMemoryPool;
use crate::wire::{CloseFrame, EncodedFrame};

mod tcp;
#[cfg(feature = "websocket")]
mod websocket;

pub(crate) use tcp::bind;
#[cfg(feature = "websocket")]
pub(crate) use websocket::WsListener;

/// What every connection's reader and writer are given: their limits, and
/// where their buffers come from.
#[derive(Debug, Clone)]
pub(crate) struct TransportSettings {
    /// Largest payload accepted from the client until the session raises
    /// it ([`FrameRead::set_max_frame_len`]): the handshake's limit.
    pub(crate) max_frame_len: usize,
    /// The largest it will ever be raised to: the session's own limit.
    #[cfg_attr(
        not(feature = "websocket"),
        expect(dead_code, reason = "read by WebSocket")
    )]
    pub(crate) max_session_frame_len: usize,
    /// What a plain HTTP `GET /` gets, on transports that speak HTTP.
    #[cfg_attr(
        not(feature = "websocket"),
        expect(dead_code, reason = "read by WebSocket")
    )]
    pub(crate) web_page: Option<std::sync::Arc<str>>,
    /// Size of a read buffer, taken per read burst.
    pub(crate) read_buffer_size: usize,
    /// Where buffers come from when `enable_enhanced_memory_pool` is on.
    pub(crate) pool: Option<EnhancedMemoryPool>,
}

/// Accepts connections of one transport.
pub(crate) trait Listen: Send + Sync + 'static {
    /// An accepted connection.
    type Conn: Transport;

    /// Waits for the next connection. An error is about that one
    /// connection (or a lack of file descriptors); the caller goes on.
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Conn, SocketAddr)>> + Send;
}

/// One accepted connection, before frames flow.
pub(crate) trait Transport: Send + 'static {
    /// Reads whole frames from the client.
    type Reader: FrameRead;
    /// Writes frames to the client.
    type Writer: FrameWrite;

    /// The transport's name, for logs.
    const NAME: &'static str;

    /// Finishes the transport's own opening and splits the connection.
    /// The caller bounds it with the handshake's deadline.
    fn open(
        self,
        settings: &TransportSettings,
    ) -> impl Future<Output = io::Result<(Self::Reader, Self::Writer)>> + Send;
}

/// A whole frame that arrived.
#[derive(Debug)]
pub(crate) struct Inbound {
    /// The payload, without any framing.
    pub(crate) payload: Bytes,
    /// When its bytes were read: the start of its time queued.
    pub(crate) read_at: Instant,
}

/// Why no frame could be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// The client announced a frame longer than the limit; nothing of
    /// that size was allocated.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The client sent something the transport does not carry (a
    /// WebSocket text message).
    #[error("{0}")]
    #[cfg_attr(
        not(feature = "websocket"),
        expect(dead_code, reason = "made by WebSocket")
    )]
    Unsupported(&'static str),
    /// The connection failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The reading direction of a connection.
///
/// `Sync` because the session borrows it, with the rest of its state, while
/// a frame is handled on another thread's poll.
pub(crate) trait FrameRead: Send + Sync + 'static {
    /// The next whole frame; `Ok(None)` once the client closed its side.
    ///
    /// A reader holds no buffer while no bytes are waiting, so that an
    /// idle connection costs none. Cancel safe: bytes read stay buffered
    /// for the next call.
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Inbound>, ReadError>>;

    /// Whether part of a frame has arrived and the rest has not; asked
    /// after `poll_frame` returned `Pending`, to hold the frame to its
    /// deadline.
    fn frame_started(&self) -> bool;

    /// Sets the largest payload accepted from now on: the session raises
    /// the handshake's limit once the client is known.
    fn set_max_frame_len(&mut self, max_frame_len: usize);

    /// Reads what arrives and drops it, whole frames or not: the bytes
    /// read, `Ok(0)` once the client closed its side. A server that closes
    /// a connection reads on a while, because a socket closed with unread
    /// bytes resets the connection, and a reset can destroy the close frame
    /// before the client reads it. The default reads nothing.
    fn poll_discard(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let _ = cx;
        Poll::Ready(Ok(0))
    }
}

/// The writing direction of a connection.
pub(crate) trait FrameWrite: Send + 'static {
    /// Takes `frame` into the write buffer, or gives it back when the
    /// buffer has no room for it: flush, then offer it again. An empty
    /// buffer always takes a frame. Called only between flushes.
    fn feed(&mut self, frame: EncodedFrame) -> Result<(), EncodedFrame>;

    /// Writes everything fed. Cancel safe: what was written stays written,
    /// and the next call writes the rest.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Ready when the transport has bytes of its own to write while no
    /// frame is queued (a WebSocket's answer to a client's ping or close):
    /// the idle writer then flushes. Never ready by default.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let _ = cx;
        Poll::Pending
    }

    /// Ends the connection after what was flushed. `close` is the reason
    /// the server closes it, if it does, for transports that carry one in
    /// their own terms (a WebSocket close frame); the gamewire close frame
    /// itself was written before, as a frame.
    fn poll_shutdown(
        &mut self,
        cx: &mut Context<'_>,
        close: Option<&CloseFrame>,
    ) -> Poll<io::Result<()>>;
}
