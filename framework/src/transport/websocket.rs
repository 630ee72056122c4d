//! WebSocket: one binary message per frame payload, at `ws://HOST:PORT/`.
//!
//! A connection starts as HTTP. The transport reads the request head
//! itself (at most [`MAX_REQUEST_HEAD`] bytes, within the handshake's
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

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame as WsCloseFrame;
use tokio_tungstenite::tungstenite::protocol::{Message, WebSocketConfig};

use super::tcp::WRITE_BATCH;
use super::{FrameRead, FrameWrite, Inbound, Listen, ReadError, Transport, TransportSettings};
use crate::wire::{
    CloseFrame, EncodedFrame, WEBSOCKET_SUBPROTOCOL as SUBPROTOCOL, websocket_close_code,
};

/// The largest HTTP request head read before the upgrade.
const MAX_REQUEST_HEAD: usize = 8 * 1024;

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

type Ws = WebSocketStream<Prefixed>;

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
            match route(&head)? {
                Route::Upgrade => {}
                Route::Page => {
                    let page = settings.web_page.as_deref();
                    respond(&mut stream, page).await?;
                    return Err(io::Error::other("an HTTP request, answered"));
                }
                Route::NotFound => {
                    respond(&mut stream, None).await?;
                    return Err(io::Error::other("an HTTP request for another path"));
                }
            }
            let config = WebSocketConfig::default()
                // Allocated at once for every connection: keep it small.
                .read_buffer_size(settings.read_buffer_size)
                .write_buffer_size(WRITE_BATCH)
                .max_message_size(Some(settings.max_session_frame_len))
                .max_frame_size(Some(settings.max_session_frame_len));
            let prefixed = Prefixed {
                head: Some(head),
                stream,
            };
            let ws = tokio_tungstenite::accept_hdr_async_with_config(
                prefixed,
                select_subprotocol,
                Some(config),
            )
            .await
            .map_err(io::Error::other)?;
            let (sink, stream) = ws.split();
            let reader = WsReader {
                stream,
                max_frame_len: settings.max_frame_len,
            };
            let writer = WsWriter {
                sink,
                pending: VecDeque::new(),
                pending_bytes: 0,
                closing: false,
            };
            Ok((reader, writer))
        }
    }
}

/// Echoes `gamewire.v1` when the client offers it.
#[expect(
    clippy::result_large_err,
    reason = "the signature of tungstenite's handshake callback"
)]
fn select_subprotocol(
    request: &Request,
    mut response: Response,
) -> Result<Response, ErrorResponse> {
    let offered = request
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|protocol| protocol.trim() == SUBPROTOCOL);
    if offered {
        response.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
    }
    Ok(response)
}

/// Reads up to the blank line that ends an HTTP request head.
async fn read_request_head(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&chunk[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(head);
        }
        if head.len() > MAX_REQUEST_HEAD {
            return Err(io::Error::other("an HTTP request head over 8 KiB"));
        }
    }
}

/// What an HTTP request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Upgrade,
    Page,
    NotFound,
}

fn route(head: &[u8]) -> io::Result<Route> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    let parsed = request.parse(head).map_err(io::Error::other)?;
    if parsed.is_partial() {
        return Err(io::Error::other("an incomplete HTTP request head"));
    }
    let path = request.path.unwrap_or("");
    let root = path == "/" || path.starts_with("/?");
    let upgrade = request.headers.iter().any(|header| {
        header.name.eq_ignore_ascii_case("upgrade")
            && std::str::from_utf8(header.value)
                .is_ok_and(|value| value.trim().eq_ignore_ascii_case("websocket"))
    });
    Ok(match (request.method, root, upgrade) {
        (Some("GET"), true, true) => Route::Upgrade,
        (Some("GET"), true, false) => Route::Page,
        _ => Route::NotFound,
    })
}

/// Answers a plain HTTP request: the page, or 404, then closes.
async fn respond(stream: &mut TcpStream, page: Option<&str>) -> io::Result<()> {
    let (status, kind, body) = match page {
        Some(page) => ("200 OK", "text/html; charset=utf-8", page),
        None => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "a gamewire WebSocket endpoint: connect to ws://this-host/\n",
        ),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

/// A stream whose first bytes were read already: they are read again,
/// then the stream.
#[derive(Debug)]
pub(crate) struct Prefixed {
    head: Option<Vec<u8>>,
    stream: TcpStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(head) = self.head.as_mut() {
            let n = head.len().min(buf.remaining());
            buf.put_slice(&head[..n]);
            head.drain(..n);
            if head.is_empty() {
                self.head = None;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The reading half of a WebSocket connection.
#[derive(Debug)]
pub(crate) struct WsReader {
    stream: SplitStream<Ws>,
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
}

/// The writing half of a WebSocket connection.
#[derive(Debug)]
pub(crate) struct WsWriter {
    sink: SplitSink<Ws, Message>,
    /// Payloads fed and not yet handed to the WebSocket layer.
    pending: VecDeque<Bytes>,
    pending_bytes: usize,
    /// Whether the WebSocket close frame was handed over.
    closing: bool,
}

impl FrameWrite for WsWriter {
    fn feed(&mut self, frame: EncodedFrame) -> Result<(), EncodedFrame> {
        let payload = frame.payload();
        if !self.pending.is_empty() && self.pending_bytes + payload.len() > WRITE_BATCH {
            return Err(frame);
        }
        self.pending_bytes += payload.len();
        self.pending.push_back(payload);
        Ok(())
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            ready!(self.sink.poll_ready_unpin(cx)).map_err(io::Error::other)?;
            let payload = self.pending.pop_front().expect("not empty");
            self.pending_bytes -= payload.len();
            self.sink
                .start_send_unpin(Message::Binary(payload))
                .map_err(io::Error::other)?;
        }
        self.sink.poll_flush_unpin(cx).map_err(io::Error::other)
    }

    fn poll_shutdown(
        &mut self,
        cx: &mut Context<'_>,
        close: Option<&CloseFrame>,
    ) -> Poll<io::Result<()>> {
        if !self.closing {
            ready!(self.sink.poll_ready_unpin(cx)).map_err(io::Error::other)?;
            let frame = close.map(|close| WsCloseFrame {
                code: websocket_close_code(close.code).into(),
                reason: cut(&close.reason, 123).to_owned().into(),
            });
            self.sink
                .start_send_unpin(Message::Close(frame))
                .map_err(io::Error::other)?;
            self.closing = true;
        }
        match ready!(self.sink.poll_close_unpin(cx)) {
            Ok(()) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Poll::Ready(Ok(())),
            Err(error) => Poll::Ready(Err(io::Error::other(error))),
        }
    }
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_routed() {
        let upgrade =
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
        assert_eq!(route(upgrade).unwrap(), Route::Upgrade);
        let page = b"GET /?room=1 HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(route(page).unwrap(), Route::Page);
        let other = b"GET /admin HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n";
        assert_eq!(route(other).unwrap(), Route::NotFound);
        let post = b"POST / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(route(post).unwrap(), Route::NotFound);
        assert!(route(b"\x00\x01garbage\r\n\r\n").is_err());
    }

    #[test]
    fn close_reasons_fit_a_close_frame() {
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("short", 123), "short");
        assert_eq!(websocket_close_code(5), 4005);
    }
}
