//! WebSocket: one binary message per frame payload, at `ws://HOST:PORT/`.
//!
//! A connection starts as HTTP. The transport reads the request head
//! itself (at most [`http::MAX_REQUEST_HEAD`] bytes, within the handshake's
//! deadline): an upgrade to a WebSocket on `/` becomes a session; a plain
//! `GET /` is answered with the server's web page when it has one, and any
//! other request with an error status, and neither becomes a session. The
//! upgrade selects the subprotocol `gamewire.v1` when the client offers it
//! (browsers require the echo); a client that offers none is accepted too.
//!
//! Each binary message is one frame's payload, without the length prefix,
//! both ways. A text message is refused: the session closes with
//! `Unsupported`. When the server closes a connection, the gamewire close
//! frame goes first as a binary message, then a WebSocket close frame whose
//! code is 4000 plus the gamewire close code and whose reason is the same
//! text (cut to the 123 bytes a close frame holds).
//!
//! The upgrade is answered here, and the connection's two directions are
//! the socket's two halves: the reading half goes to tungstenite, which
//! unmasks, joins fragments and answers pings; the writing half to
//! [`writer::WsWriter`], which frames the server's messages itself.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::protocol::{Message, Role, WebSocketConfig};

use super::{FrameRead, Inbound, Listen, ReadError, Transport, TransportSettings};

mod http;
mod writer;

use http::{Route, Status, parse_request, read_request_head, respond};
use writer::Control;
pub(crate) use writer::WsWriter;

/// A listener of WebSocket connections.
#[derive(Debug)]
pub(crate) struct WsListener(pub(crate) TcpListener);

/// An accepted connection that has not upgraded yet.
#[derive(Debug)]
pub(crate) struct WsConn(TcpStream);

impl Listen for WsListener {
    type Conn = WsConn;

    async fn accept(&self) -> io::Result<(WsConn, SocketAddr)> {
        let (stream, peer) = self.0.accept().await?;
        Ok((WsConn(stream), peer))
    }
}

impl Transport for WsConn {
    type Reader = WsReader;
    type Writer = WsWriter;

    const NAME: &'static str = "websocket";

    fn open(
        self,
        settings: &TransportSettings,
    ) -> impl Future<Output = io::Result<(WsReader, WsWriter)>> + Send {
        let settings = settings.clone();
        async move {
            let WsConn(mut stream) = self;
            stream.set_nodelay(true)?;
            let head = read_request_head(&mut stream).await?;
            let request = parse_request(&head)?;
            match request.route {
                Route::Upgrade => {}
                Route::Page => {
                    respond(&mut stream, Status::Page(settings.web_page.as_deref())).await?;
                    return Err(io::Error::other("an HTTP request, answered"));
                }
                Route::NotFound => {
                    respond(&mut stream, Status::NotFound).await?;
                    return Err(io::Error::other("an HTTP request for another path"));
                }
                Route::BadUpgrade(why) => {
                    respond(&mut stream, Status::BadRequest(why)).await?;
                    return Err(io::Error::other(why));
                }
            }
            stream
                .write_all(request.switching_protocols().as_bytes())
                .await?;
            let config = WebSocketConfig::default()
                // Allocated at once for every connection: keep it small.
                .read_buffer_size(settings.read_buffer_size)
                .max_message_size(Some(settings.max_session_frame_len))
                .max_frame_size(Some(settings.max_session_frame_len));
            let (read, write) = stream.into_split();
            let control = Arc::new(Control::default());
            let read_side = ReadSide {
                socket: read,
                control: Arc::clone(&control),
            };
            // Frames the client sent behind its request are read first.
            let early = head[request.head_len..].to_vec();
            let stream =
                WebSocketStream::from_partially_read(read_side, early, Role::Server, Some(config))
                    .await;
            let reader = WsReader {
                stream,
                max_frame_len: settings.max_frame_len,
            };
            Ok((reader, WsWriter::new(write, settings.pool.clone(), control)))
        }
    }
}

/// What the reading side's WebSocket layer reads from and answers into:
/// the socket's reading half, and the writer's [`Control`].
#[derive(Debug)]
pub(crate) struct ReadSide {
    socket: OwnedReadHalf,
    control: Arc<Control>,
}

impl AsyncRead for ReadSide {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_read(cx, buf)
    }
}

impl AsyncWrite for ReadSide {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // tungstenite hands over whole frames: all of them are taken.
        Poll::Ready(self.control.push(buf).map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The writer ends the stream.
        Poll::Ready(Ok(()))
    }
}

/// The reading half of a WebSocket connection.
#[derive(Debug)]
pub(crate) struct WsReader {
    stream: WebSocketStream<ReadSide>,
    max_frame_len: usize,
}

impl FrameRead for WsReader {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Inbound>, ReadError>> {
        loop {
            let message = match ready!(self.stream.poll_next_unpin(cx)) {
                None | Some(Ok(Message::Close(_))) => return Poll::Ready(Ok(None)),
                Some(Ok(message)) => message,
                Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
                    let (len, max) = (size, max_size);
                    return Poll::Ready(Err(ReadError::TooLarge { len, max }));
                }
                Some(Err(error)) => {
                    return Poll::Ready(Err(ReadError::Io(io::Error::other(error))));
                }
            };
            match message {
                Message::Binary(payload) if payload.len() > self.max_frame_len => {
                    let (len, max) = (payload.len(), self.max_frame_len);
                    return Poll::Ready(Err(ReadError::TooLarge { len, max }));
                }
                Message::Binary(payload) => {
                    let read_at = Instant::now();
                    return Poll::Ready(Ok(Some(Inbound { payload, read_at })));
                }
                Message::Text(_) => {
                    let why = "a text message; gamewire frames are binary messages";
                    return Poll::Ready(Err(ReadError::Unsupported(why)));
                }
                // Pings are answered by the WebSocket layer itself.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) | Message::Close(_) => {}
            }
        }
    }

    fn frame_started(&self) -> bool {
        // The WebSocket layer hands out whole messages only; a message that
        // trickles in is bounded by `max_frame_len` and the heartbeat.
        false
    }

    fn set_max_frame_len(&mut self, max_frame_len: usize) {
        // The WebSocket layer was opened with the session's own limit; the
        // handshake's smaller one is held here.
        self.max_frame_len = max_frame_len;
    }

    fn poll_discard(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        match ready!(self.stream.poll_next_unpin(cx)) {
            None | Some(Ok(Message::Close(_))) => Poll::Ready(Ok(0)),
            Some(Ok(message)) => Poll::Ready(Ok(message.len().max(1))),
            Some(Err(error)) => Poll::Ready(Err(io::Error::other(error))),
        }
    }
}
