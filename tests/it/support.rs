//! Shared helpers: a test protocol with handlers, server start-up, raw
//! sockets, and waiting with a generous bound.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use gamewire::prelude::*;
use gamewire::wire::{self, ENVELOPE_VERSION, Frame, FrameSplitter, Hello};
use gamewire::{ConnectionService, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A protocol that exercises every path of the server.
#[message]
#[derive(Debug, Clone, PartialEq)]
pub enum TestMessage {
    /// Answered with `Echoed`.
    #[gamewire(direction = to_server)]
    Echo { text: String },
    #[gamewire(direction = to_client)]
    Echoed { text: String },
    /// The handler returns an error with this text.
    #[gamewire(direction = to_server)]
    Fail { reason: String },
    /// The handler panics.
    #[gamewire(direction = to_server)]
    Explode,
    /// The server sends `count` blobs of `size` bytes to `target`.
    #[gamewire(direction = to_server)]
    Flood { target: u32, count: u32, size: u32 },
    #[gamewire(direction = to_client)]
    Blob { bytes: Vec<u8> },
    /// Sends `Whispered` to another user.
    #[gamewire(direction = to_server)]
    Whisper { to: u32, text: String },
    #[gamewire(direction = to_client)]
    Whispered { from: u32, text: String },
    /// Counts with a `State<Counter>`.
    #[gamewire(direction = to_server)]
    Count,
    #[gamewire(direction = to_client)]
    Counted { n: u64 },
    /// The handler never finishes.
    #[gamewire(direction = to_server)]
    Stall,
    /// The server sends `count` ticks of `size` bytes to `target`.
    #[gamewire(direction = to_server)]
    FloodTicks { target: u32, count: u32, size: u32 },
    /// Droppable: a full queue drops it rather than disconnecting.
    #[gamewire(direction = to_client, droppable)]
    Tick { bytes: Vec<u8> },
    /// Answered with a `Blob` larger than any frame may be.
    #[gamewire(direction = to_server)]
    Oversize,
}

/// State for `Count`.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

#[handler(TestMessage::Echo)]
async fn echo(echo: Echo) -> Echoed {
    Echoed { text: echo.text }
}

#[handler(TestMessage::Fail)]
async fn fail(fail: Fail) -> anyhow::Result<()> {
    anyhow::bail!("{}", fail.reason)
}

#[handler(TestMessage::Explode)]
async fn explode(_: Explode) {
    panic!("boom (a test panic; the server must survive it)");
}

#[handler(TestMessage::Flood)]
async fn flood(flood: Flood, connections: ConnectionService) {
    let blob = TestMessage::Blob {
        bytes: vec![7; flood.size as usize],
    };
    for _ in 0..flood.count {
        if connections.send_to_user(flood.target, &blob).await.is_err() {
            break;
        }
    }
}

#[handler(TestMessage::Whisper)]
async fn whisper(whisper: Whisper, session: Session) -> Result<(), gamewire::SendError> {
    let message = TestMessage::Whispered {
        from: session.user_id(),
        text: whisper.text,
    };
    session
        .connections()
        .send_to_user(whisper.to, &message)
        .await
}

#[handler(TestMessage::Count)]
async fn count(_: Count, counter: State<Counter>) -> Counted {
    Counted {
        n: counter.0.0.fetch_add(1, Ordering::Relaxed) + 1,
    }
}

#[handler(TestMessage::FloodTicks)]
async fn flood_ticks(flood: FloodTicks, connections: ConnectionService) {
    let tick = TestMessage::Tick {
        bytes: vec![7; flood.size as usize],
    };
    for _ in 0..flood.count {
        // A dropped tick is not an error: that is what droppable means.
        let _ = connections.send_to_user(flood.target, &tick).await;
    }
}

#[handler(TestMessage::Oversize)]
async fn oversize(_: Oversize) -> TestMessage {
    TestMessage::Blob {
        bytes: vec![0; 17 << 20],
    }
}

#[handler(TestMessage::Stall)]
async fn stall(_: Stall) {
    std::future::pending::<()>().await;
}

/// A config with small limits and short intervals for tests.
pub fn test_config() -> TcpServerConfig {
    TcpServerConfig {
        bind_address: "127.0.0.1:0".to_owned(),
        max_connections: 64,
        // Long enough that a test slowed down by a busy machine is never
        // reaped by accident; heartbeat tests set their own.
        heartbeat_interval: Duration::from_secs(30),
        heartbeat_timeout: Duration::from_secs(120),
        drain_timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

/// Serves `service` on 127.0.0.1:0 in the background; returns its address.
pub async fn start(service: &TcpGameService) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let running = service.clone();
    tokio::spawn(async move { running.serve(listener).await.expect("server failed") });
    address
}

/// A `TestMessage` server with a `Counter`.
pub fn test_server(config: TcpServerConfig) -> TcpGameService {
    TcpGameService::with_config(config)
        .protocol::<TestMessage>()
        .with_state(Counter::default())
}

/// A chat server.
pub fn chat_server(config: TcpServerConfig) -> TcpGameService {
    TcpGameService::with_config(config).protocol::<gamewire::ChatMessage>()
}

/// Awaits `future`, failing the test after a generous bound.
pub async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), future)
        .await
        .expect("timed out waiting (20 s)")
}

/// Polls `condition` until it holds, failing after a generous bound.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let waited = tokio::time::timeout(Duration::from_secs(20), async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting for {what}");
}

/// A socket that speaks the protocol by hand, for what a well-behaved
/// client never does.
pub struct RawClient {
    pub socket: TcpStream,
    buf: BytesMut,
}

impl RawClient {
    /// Connects without a handshake.
    pub async fn connect(address: SocketAddr) -> Self {
        RawClient {
            socket: TcpStream::connect(address).await.unwrap(),
            buf: BytesMut::new(),
        }
    }

    /// Connects and sends the hello of protocol `M`; returns the welcome.
    pub async fn handshake<M: Message>(address: SocketAddr) -> (Self, wire::Welcome) {
        let mut raw = Self::connect(address).await;
        raw.send(&Frame::<()>::Hello(hello::<M>())).await;
        match raw.read::<M>().await {
            Some(Frame::Welcome(welcome)) => (raw, welcome),
            other => panic!("expected a welcome, got {other:?}"),
        }
    }

    pub async fn send<T: serde::Serialize>(&mut self, frame: &T) {
        self.socket
            .write_all(&wire::encode_frame(frame).unwrap())
            .await
            .unwrap();
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.socket.write_all(bytes).await.unwrap();
    }

    /// The next frame, or `None` at the end of the stream.
    pub async fn read<M: Message>(&mut self) -> Option<Frame<M>> {
        let splitter = FrameSplitter::new(gamewire::MAX_FRAME_LEN_LIMIT);
        loop {
            if let Some(payload) = splitter.split(&mut self.buf).unwrap() {
                return Some(wire::decode_payload(&payload).unwrap());
            }
            match within(self.socket.read_buf(&mut self.buf)).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Reads until a close frame, skipping pings and other frames; `None`
    /// when the stream ends without one.
    pub async fn read_close<M: Message>(&mut self) -> Option<wire::CloseFrame> {
        loop {
            match self.read::<M>().await? {
                Frame::Close(close) => return Some(close),
                _ => continue,
            }
        }
    }
}

/// The hello a client of protocol `M` sends.
pub fn hello<M: Message>() -> Hello {
    Hello {
        version: ENVELOPE_VERSION,
        protocol: M::PROTOCOL.name.to_owned(),
        fingerprint: M::PROTOCOL.fingerprint,
        token: String::new(),
    }
}

/// Whether `tool` is on the PATH; see [`gamewire_tests::tools`].
pub fn tool_available(tool: &str, package: &str) -> bool {
    gamewire_tests::tools::available(tool, &format!("Debian package `{package}`"))
}

/// The environment variable that makes this test binary a child serving
/// for one test: the test's path is its value.
const CHILD: &str = "GAMEWIRE_CHILD";

/// Whether this process is the child started by [`spawn_child`] for
/// `test` (the test's full path, as `--exact` takes it).
pub fn is_child(test: &str) -> bool {
    std::env::var(CHILD).as_deref() == Ok(test)
}

/// In the child: tells the parent where the server listens.
pub fn announce(address: SocketAddr) {
    println!("listening on {address}");
}

/// Starts this test binary again, running `test` alone as the child (see
/// [`is_child`]), and waits for the address it announces. For what needs a
/// process of its own: a signal, or the memory of one server.
pub async fn spawn_child(test: &str) -> (tokio::process::Child, SocketAddr) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, test)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the test binary starts again");
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let address = within(async {
        while let Some(line) = lines.next_line().await.unwrap() {
            // libtest prints `test NAME ... ` before the test's own output,
            // on the same line.
            if let Some((_, address)) = line.split_once("listening on ") {
                return address.trim().parse().unwrap();
            }
        }
        panic!("the child ended without announcing its address");
    })
    .await;
    // Keep reading, so that the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, address)
}

/// The resident memory of process `pid`, in bytes, from `/proc`.
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("VmRSS in /proc/PID/status");
    kib * 1024
}
