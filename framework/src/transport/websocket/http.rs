//! The HTTP before a WebSocket: the request head, read within a bound, and
//! the answer: the upgrade (RFC 6455 section 4.2), the server's page for a
//! plain `GET /`, or an error status.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::wire::WEBSOCKET_SUBPROTOCOL as SUBPROTOCOL;

/// The largest HTTP request head read before the upgrade.
pub(super) const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// Reads up to the blank line that ends an HTTP request head; what the
/// client sent behind it comes along.
pub(super) async fn read_request_head(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
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
pub(super) enum Route {
    /// A WebSocket on `/`.
    Upgrade,
    /// The page.
    Page,
    /// Anything else.
    NotFound,
    /// An upgrade this server cannot accept, and why.
    BadUpgrade(&'static str),
}

/// A parsed request head.
#[derive(Debug)]
pub(super) struct HttpRequest {
    pub(super) route: Route,
    /// Bytes of the head: what follows is the client's first frames.
    pub(super) head_len: usize,
    key: Vec<u8>,
    offers_subprotocol: bool,
}

impl HttpRequest {
    /// The answer that makes the connection a WebSocket: the key's
    /// accept value, and `gamewire.v1` when the client offered it (the
    /// browser requires the echo).
    pub(super) fn switching_protocols(&self) -> String {
        let protocol = if self.offers_subprotocol {
            format!("sec-websocket-protocol: {SUBPROTOCOL}\r\n")
        } else {
            String::new()
        };
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {}\r\n{protocol}\r\n",
            derive_accept_key(&self.key)
        )
    }
}

/// Parses a request head.
pub(super) fn parse_request(head: &[u8]) -> io::Result<HttpRequest> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(head).map_err(io::Error::other)? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => {
            return Err(io::Error::other("an incomplete HTTP request head"));
        }
    };
    let headers: &[httparse::Header<'_>] = request.headers;
    let header = |name: &'static str| {
        headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .filter_map(|h| std::str::from_utf8(h.value).ok())
    };
    let has_token = |name: &'static str, token: &str| {
        header(name)
            .flat_map(|value| value.split(','))
            .any(|value| value.trim().eq_ignore_ascii_case(token))
    };
    let path = request.path.unwrap_or("");
    let root = path == "/" || path.starts_with("/?");
    let upgrade = has_token("upgrade", "websocket");
    let key = header("sec-websocket-key").next().unwrap_or("").trim();
    let route = match (request.method, root, upgrade) {
        (Some("GET"), true, true) => {
            if !has_token("connection", "upgrade") {
                Route::BadUpgrade("an upgrade without `Connection: Upgrade`")
            } else if !has_token("sec-websocket-version", "13") {
                Route::BadUpgrade("a WebSocket version other than 13")
            } else if key.is_empty() {
                Route::BadUpgrade("an upgrade without `Sec-WebSocket-Key`")
            } else {
                Route::Upgrade
            }
        }
        (Some("GET"), true, false) => Route::Page,
        _ => Route::NotFound,
    };
    Ok(HttpRequest {
        route,
        head_len,
        key: key.as_bytes().to_vec(),
        offers_subprotocol: has_token("sec-websocket-protocol", SUBPROTOCOL),
    })
}

/// The answer to a request that does not become a WebSocket.
#[derive(Debug)]
pub(super) enum Status<'a> {
    /// The page, or a 404 that names the endpoint when there is none.
    Page(Option<&'a str>),
    NotFound,
    BadRequest(&'static str),
}

/// Answers a request that does not become a WebSocket, then closes.
pub(super) async fn respond(stream: &mut TcpStream, status: Status<'_>) -> io::Result<()> {
    const ENDPOINT: &str = "a gamewire WebSocket endpoint: connect to ws://this-host/\n";
    let (status, kind, extra, body) = match status {
        Status::Page(Some(page)) => ("200 OK", "text/html; charset=utf-8", "", page),
        Status::Page(None) | Status::NotFound => {
            ("404 Not Found", "text/plain; charset=utf-8", "", ENDPOINT)
        }
        Status::BadRequest(why) => (
            "400 Bad Request",
            "text/plain; charset=utf-8",
            "sec-websocket-version: 13\r\n",
            why,
        ),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\ncache-control: no-store\r\n{extra}connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPGRADE: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: chat, gamewire.v1\r\n\r\n";

    fn route(head: &[u8]) -> Route {
        parse_request(head).unwrap().route
    }

    #[test]
    fn requests_are_routed() {
        assert_eq!(route(UPGRADE), Route::Upgrade);
        assert_eq!(
            route(b"GET /?room=1 HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Page
        );
        let other = b"GET /admin HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n";
        assert_eq!(route(other), Route::NotFound);
        assert_eq!(
            route(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::NotFound
        );
        assert!(parse_request(b"\x00\x01garbage\r\n\r\n").is_err());
    }

    #[test]
    fn an_upgrade_needs_its_headers() {
        let text = std::str::from_utf8(UPGRADE).unwrap();
        let without = |line: &str| text.replace(line, "").into_bytes();
        for line in [
            "Connection: keep-alive, Upgrade\r\n",
            "Sec-WebSocket-Version: 13\r\n",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        ] {
            assert!(
                matches!(route(&without(line)), Route::BadUpgrade(_)),
                "{line}"
            );
        }
    }

    #[test]
    fn the_answer_accepts_the_key_and_selects_the_subprotocol() {
        let mut head = UPGRADE.to_vec();
        head.extend_from_slice(&[0x82, 0x80]);
        let request = parse_request(&head).unwrap();
        assert_eq!(request.head_len, UPGRADE.len());
        let answer = request.switching_protocols();
        // The example of RFC 6455, section 1.3.
        assert!(answer.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(answer.contains("sec-websocket-protocol: gamewire.v1\r\n"));
        let plain = std::str::from_utf8(UPGRADE)
            .unwrap()
            .replace("Sec-WebSocket-Protocol: chat, gamewire.v1\r\n", "");
        let answer = parse_request(plain.as_bytes())
            .unwrap()
            .switching_protocols();
        assert!(!answer.contains("sec-websocket-protocol"));
    }
}
