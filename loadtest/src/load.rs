//! The load clients: lean chat clients that count what they receive.
//!
//! Each client is one socket with a reader and a writer task. The writer
//! sends `SendChat` lines whose text starts with the send time (16 hex
//! digits of microseconds since the run's epoch); the reader parses just
//! enough of each `ChatBroadcast` to count it and, for the client's own
//! lines, record the round trip in an HDR histogram. Pings are answered,
//! so idle clients stay connected. A client speaks TCP (length-prefixed
//! frames) or WebSocket (one binary message per frame payload).
//!
//! Over WebSocket the client is as lean as over TCP: it upgrades with one
//! request, reads the server's frames by their headers (a server never
//! masks), and masks its own with a zero key, which the server unmasks
//! like any other. The load generator shares the machine with the server,
//! so what it spends is not spent serving.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use gamewire::wire::{self, ENVELOPE_VERSION, Frame, Hello};
use gamewire::{ChatMessage, Message};
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_util::sync::CancellationToken;

/// How clients send.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Pace {
    /// Unthrottled, with at most this many own lines unanswered.
    Closed { in_flight: usize },
    /// A line every `every`, whatever comes back.
    Open { every: Duration },
    /// Nothing: clients only join and stay.
    Idle,
}

/// Counters of one client, read by the progress display.
#[derive(Debug, Default)]
pub(crate) struct ClientCounters {
    pub(crate) sent: AtomicU64,
    pub(crate) delivered: AtomicU64,
}

/// A connected client that joined its room.
pub(crate) struct LoadClient {
    pub(crate) user_id: u32,
    room_id: u32,
    reader: LinkReader,
    writer: LinkWriter,
}

/// The reading half of a client's connection, with what was read and is
/// not yet a whole frame.
enum LinkReader {
    Tcp(OwnedReadHalf, BytesMut),
    Ws(OwnedReadHalf, BytesMut),
}

/// The writing half of a client's connection.
enum LinkWriter {
    Tcp(OwnedWriteHalf),
    /// With a buffer for the framed messages.
    Ws(OwnedWriteHalf, BytesMut),
}

impl LinkReader {
    /// Reads, and hands every whole frame payload to `each`; `false` once
    /// the connection is over.
    async fn read(
        &mut self,
        mut each: impl FnMut(&[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<bool> {
        // Read, then hand over every payload now whole: none is left
        // waiting in `buf` for a read that may never come (the last member
        // of a quiet room gets nothing after its `RoomJoined`).
        match self {
            LinkReader::Tcp(reader, buf) => {
                if reader.read_buf(buf).await? == 0 {
                    return Ok(false);
                }
                while let Some(payload) = next_payload(buf) {
                    each(&payload)?;
                }
                Ok(true)
            }
            LinkReader::Ws(reader, buf) => {
                if reader.read_buf(buf).await? == 0 {
                    return Ok(false);
                }
                while let Some((opcode, payload)) = next_message(buf)? {
                    match opcode {
                        OP_BINARY => each(&payload)?,
                        OP_CLOSE => return Ok(false),
                        // The server sends no WebSocket pings of its own.
                        _ => {}
                    }
                }
                Ok(true)
            }
        }
    }
}

const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;

/// The next whole message the server sent in `buf`: its opcode and
/// payload. The server sends each message as one unmasked frame.
fn next_message(buf: &mut BytesMut) -> anyhow::Result<Option<(u8, BytesMut)>> {
    if buf.len() < 2 {
        return Ok(None);
    }
    if buf[0] & 0x80 == 0 || buf[1] & 0x80 != 0 {
        bail!("a fragmented or masked frame from the server");
    }
    let (header, len) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (4, usize::from(u16::from_be_bytes([buf[2], buf[3]]))),
        127 if buf.len() >= 10 => {
            let mut len = [0u8; 8];
            len.copy_from_slice(&buf[2..10]);
            (10, usize::try_from(u64::from_be_bytes(len))?)
        }
        126 | 127 => return Ok(None),
        short => (2, usize::from(short)),
    };
    if buf.len() < header + len {
        buf.reserve(header + len - buf.len());
        return Ok(None);
    }
    let opcode = buf[0] & 0x0f;
    buf.advance(header);
    Ok(Some((opcode, buf.split_to(len))))
}

/// Appends a client frame: FIN, the opcode, the mask bit and a zero key.
fn put_message(out: &mut BytesMut, opcode: u8, payload: &[u8]) {
    out.put_u8(0x80 | opcode);
    match payload.len() {
        len @ 0..=125 => out.put_u8(0x80 | len as u8),
        len @ 126..=0xffff => {
            out.put_u8(0x80 | 126);
            out.put_u16(len as u16);
        }
        len => {
            out.put_u8(0x80 | 127);
            out.put_u64(len as u64);
        }
    }
    out.put_u32(0);
    out.put_slice(payload);
}

impl LinkWriter {
    /// Sends `frames`, whole length-prefixed frames back to back: as they
    /// are on TCP, one binary message each on WebSocket.
    async fn send(&mut self, frames: &mut BytesMut) -> anyhow::Result<()> {
        match self {
            LinkWriter::Tcp(writer) => writer.write_all(frames).await?,
            LinkWriter::Ws(writer, out) => {
                let mut all = &frames[..];
                while all.len() >= 4 {
                    let len = u32::from_be_bytes([all[0], all[1], all[2], all[3]]) as usize;
                    put_message(out, OP_BINARY, &all[4..4 + len]);
                    all = &all[4 + len..];
                }
                writer.write_all(out).await?;
                out.clear();
            }
        }
        frames.clear();
        Ok(())
    }

    async fn shutdown(&mut self) {
        match self {
            LinkWriter::Tcp(writer) => {
                let _ = writer.shutdown().await;
            }
            LinkWriter::Ws(writer, out) => {
                out.clear();
                put_message(out, OP_CLOSE, &1000u16.to_be_bytes());
                let _ = writer.write_all(out).await;
                let _ = writer.shutdown().await;
            }
        }
    }
}

/// Upgrades `stream` to a WebSocket on `/`, offering `gamewire.v1`;
/// returns what the server sent behind its answer.
async fn upgrade(stream: &mut TcpStream, server: SocketAddr) -> anyhow::Result<BytesMut> {
    const KEY: &str = "Z2FtZXdpcmUgbG9hZHRlc3Q=";
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {server}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n\
         Sec-WebSocket-Protocol: {}\r\n\r\n",
        wire::WEBSOCKET_SUBPROTOCOL
    );
    stream.write_all(request.as_bytes()).await?;
    let mut buf = BytesMut::with_capacity(4096);
    let end = loop {
        if stream.read_buf(&mut buf).await? == 0 {
            bail!("the server closed the connection during the upgrade");
        }
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        if buf.len() > 8192 {
            bail!("an HTTP answer over 8 KiB");
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let accept = format!(
        "sec-websocket-accept: {}",
        derive_accept_key(KEY.as_bytes())
    );
    if !head.starts_with("http/1.1 101") || !head.contains(&accept.to_ascii_lowercase()) {
        bail!(
            "the upgrade was refused: {}",
            head.lines().next().unwrap_or("")
        );
    }
    buf.advance(end);
    Ok(buf)
}

/// Connects from `source` (for spreading over 127.0.0.x addresses), over
/// WebSocket when `websocket`, handshakes and joins `room_id`.
pub(crate) async fn connect(
    server: SocketAddr,
    source: Option<Ipv4Addr>,
    room_id: u32,
    websocket: bool,
) -> anyhow::Result<LoadClient> {
    let socket = TcpSocket::new_v4()?;
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(IpAddr::V4(ip), 0))?;
    }
    let mut stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    let (mut reader, mut writer) = if websocket {
        let buf = upgrade(&mut stream, server).await?;
        let (reader, writer) = stream.into_split();
        let out = BytesMut::with_capacity(4096);
        (LinkReader::Ws(reader, buf), LinkWriter::Ws(writer, out))
    } else {
        let (reader, writer) = stream.into_split();
        let buf = BytesMut::with_capacity(4096);
        (LinkReader::Tcp(reader, buf), LinkWriter::Tcp(writer))
    };
    let hello = Frame::<()>::Hello(Hello {
        version: ENVELOPE_VERSION,
        protocol: ChatMessage::PROTOCOL.name.to_owned(),
        fingerprint: ChatMessage::PROTOCOL.fingerprint,
        token: String::new(),
    });
    let mut out = BytesMut::new();
    out.extend_from_slice(&wire::encode_frame(&hello)?);
    let join = Frame::App(ChatMessage::JoinRoom { room_id });
    out.extend_from_slice(&wire::encode_frame(&join)?);
    writer.send(&mut out).await?;
    let mut user_id = None;
    let mut joined = false;
    while !joined {
        let open = reader
            .read(|payload| {
                match wire::decode_payload::<Frame<ChatMessage>>(payload)? {
                    Frame::Welcome(welcome) => user_id = Some(welcome.user_id),
                    Frame::App(ChatMessage::RoomJoined { .. }) => joined = true,
                    Frame::Close(close) => bail!("refused: {}", close.reason),
                    _ => {}
                }
                Ok(())
            })
            .await?;
        if !open && !joined {
            bail!("the server closed the connection during the handshake");
        }
    }
    let user_id = user_id.context("joined before the welcome")?;
    Ok(LoadClient {
        user_id,
        room_id,
        reader,
        writer,
    })
}

/// The next complete payload in `buf`.
fn next_payload(buf: &mut BytesMut) -> Option<BytesMut> {
    if buf.len() < 4 {
        return None;
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if buf.len() < 4 + len {
        buf.reserve(4 + len - buf.len());
        return None;
    }
    buf.advance(4);
    Some(buf.split_to(len))
}

/// Reads one varint (bincode standard) off the front of `bytes`.
fn varint(bytes: &mut &[u8]) -> Option<u64> {
    let (&first, rest) = bytes.split_first()?;
    *bytes = rest;
    let size = match first {
        0xfb => 2,
        0xfc => 4,
        0xfd => 8,
        small => return Some(u64::from(small)),
    };
    if bytes.len() < size {
        return None;
    }
    let mut value = [0u8; 8];
    value[..size].copy_from_slice(&bytes[..size]);
    *bytes = &bytes[size..];
    Some(u64::from_le_bytes(value))
}

/// What a received payload is, as far as the load cares.
enum Seen {
    /// A chat line: its sender and its send stamp (microseconds).
    Line {
        sender: u32,
        stamp: Option<u64>,
    },
    Ping(u64),
    Other,
}

fn classify(payload: &[u8]) -> Seen {
    let mut rest = payload;
    match varint(&mut rest) {
        // Frame::Ping
        Some(2) => varint(&mut rest).map_or(Seen::Other, Seen::Ping),
        // Frame::App, then ChatBroadcast (8): room, sender, text.
        Some(6) if varint(&mut rest) == Some(8) => {
            let _room = varint(&mut rest);
            let Some(sender) = varint(&mut rest) else {
                return Seen::Other;
            };
            let _len = varint(&mut rest);
            let stamp = rest
                .get(..16)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u64::from_str_radix(hex, 16).ok());
            Seen::Line {
                sender: sender as u32,
                stamp,
            }
        }
        _ => Seen::Other,
    }
}

/// The encoded `SendChat` frame for a line stamped `stamp`.
fn line(room_id: u32, stamp: u64, padding: &str) -> Bytes {
    let text = format!("{stamp:016x}{padding}");
    wire::encode_frame(&Frame::App(ChatMessage::SendChat { room_id, text }))
        .expect("a line encodes")
}

/// What a client measured.
pub(crate) struct ClientResult {
    /// From sending each of its own lines to receiving it back.
    pub(crate) round_trips: Histogram<u64>,
    /// From the sending of each line it received, its own and the other
    /// members', to its receipt: in a cluster, what crossing nodes costs
    /// (the load generator's one clock stamps and reads them all).
    pub(crate) deliveries: Histogram<u64>,
}

/// Shared switches of one run.
pub(crate) struct RunControl {
    pub(crate) epoch: Instant,
    /// Cancelled when every client has joined: until then a client only
    /// answers pings.
    pub(crate) start: CancellationToken,
    /// Clients that have seen `stop_sending` and will send no more lines.
    pub(crate) stopped: AtomicUsize,
    /// Microseconds after `epoch` when the measured window began: lines
    /// sent before it (the warm-up) are delivered and counted, but their
    /// round trips are not recorded.
    pub(crate) measure_from_us: AtomicU64,
    /// Cancelled when senders must stop.
    pub(crate) stop_sending: CancellationToken,
    /// Cancelled when clients must disconnect, after the drain.
    pub(crate) finish: CancellationToken,
}

/// Drives one client until the run is finished. `phase`, from 0 to 1, is
/// where in the sending period an open-loop client starts.
pub(crate) async fn drive(
    client: LoadClient,
    pace: Pace,
    phase: f64,
    text_size: usize,
    counters: Arc<ClientCounters>,
    control: Arc<RunControl>,
) -> anyhow::Result<ClientResult> {
    let LoadClient {
        user_id,
        room_id,
        reader,
        mut writer,
    } = client;
    // Counted as stopped however it ends, a failure included.
    let mut stop = StopAck {
        stopped: &control.stopped,
        done: false,
    };
    let window = Arc::new(Semaphore::new(match pace {
        Pace::Closed { in_flight } => in_flight,
        _ => 0,
    }));
    let (pongs_tx, mut pongs) = mpsc::channel::<Bytes>(8);
    let reading = tokio::spawn(read_side(
        reader,
        user_id,
        Arc::clone(&window),
        pongs_tx,
        Arc::clone(&counters),
        Arc::clone(&control),
    ));
    // Until every client has joined, only answer the server's pings.
    loop {
        tokio::select! {
            biased;
            () = control.start.cancelled() => break,
            Some(pong) = pongs.recv() => {
                let mut pong = BytesMut::from(&pong[..]);
                writer.send(&mut pong).await?;
            }
        }
    }
    let padding = "x".repeat(text_size.saturating_sub(16));
    let mut out = BytesMut::new();
    let mut ticks = match pace {
        // Clients start at spread-out phases of the period, as independent
        // players would; in step, they would send in bursts.
        Pace::Open { every } => Some(tokio::time::interval_at(
            tokio::time::Instant::now() + every.mul_f64(phase),
            every,
        )),
        _ => None,
    };
    loop {
        let sending = !control.stop_sending.is_cancelled();
        if !sending {
            // No line is sent after this (the selects below look at the
            // stop first).
            stop.acknowledge();
        }
        match (pace, sending) {
            (Pace::Closed { .. }, true) => {
                tokio::select! {
                    biased;
                    () = control.stop_sending.cancelled() => {}
                    permit = window.acquire() => {
                        permit?.forget();
                        let mut lines = 1;
                        // Send every line the window allows in one write.
                        while let Ok(permit) = window.try_acquire() {
                            permit.forget();
                            lines += 1;
                        }
                        let stamp = control.epoch.elapsed().as_micros() as u64;
                        for _ in 0..lines {
                            out.put(line(room_id, stamp, &padding));
                        }
                        counters.sent.fetch_add(lines, Ordering::Relaxed);
                    }
                    Some(pong) = pongs.recv() => out.put(pong),
                }
            }
            (Pace::Open { .. }, true) => {
                let ticks = ticks.as_mut().expect("open loop has a ticker");
                tokio::select! {
                    biased;
                    () = control.stop_sending.cancelled() => {}
                    _ = ticks.tick() => {
                        // Stamped when sent. The tick itself fires up to a
                        // timer tick (1 ms) after its deadline; stamping the
                        // deadline would add that to every round trip. The
                        // sender never waits for replies, so a slow server
                        // cannot delay it (no coordinated omission).
                        let stamp = control.epoch.elapsed().as_micros() as u64;
                        out.put(line(room_id, stamp, &padding));
                        counters.sent.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(pong) = pongs.recv() => out.put(pong),
                }
            }
            // Idle, or done sending: answer pings until the end.
            _ => {
                tokio::select! {
                    Some(pong) = pongs.recv() => out.put(pong),
                    // An idle client acknowledges the stop too.
                    () = control.stop_sending.cancelled(), if !stop.done => {}
                    () = control.finish.cancelled() => break,
                }
            }
        }
        if !out.is_empty() {
            writer.send(&mut out).await?;
        }
    }
    writer.shutdown().await;
    reading.await?
}

/// Counts a client into `RunControl::stopped` once: when it sees the stop,
/// or when it ends early (a failed client sends nothing more either).
struct StopAck<'a> {
    stopped: &'a AtomicUsize,
    done: bool,
}

impl StopAck<'_> {
    fn acknowledge(&mut self) {
        if !self.done {
            self.stopped.fetch_add(1, Ordering::Release);
            self.done = true;
        }
    }
}

impl Drop for StopAck<'_> {
    fn drop(&mut self) {
        self.acknowledge();
    }
}

async fn read_side(
    mut reader: LinkReader,
    user_id: u32,
    window: Arc<Semaphore>,
    pongs: mpsc::Sender<Bytes>,
    counters: Arc<ClientCounters>,
    control: Arc<RunControl>,
) -> anyhow::Result<ClientResult> {
    let mut round_trips = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut deliveries = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    loop {
        let open = reader.read(|payload| {
            match classify(payload) {
                Seen::Line { sender, stamp } => {
                    counters.delivered.fetch_add(1, Ordering::Relaxed);
                    let measured = control.measure_from_us.load(Ordering::Relaxed);
                    let took = stamp.filter(|&stamp| stamp >= measured).map(|stamp| {
                        let now = control.epoch.elapsed().as_micros() as u64;
                        now.saturating_sub(stamp).max(1)
                    });
                    if let Some(took) = took {
                        deliveries.saturating_record(took);
                    }
                    if sender == user_id {
                        window.add_permits(1);
                        if let Some(took) = took {
                            round_trips.saturating_record(took);
                        }
                    }
                }
                Seen::Ping(nonce) => {
                    let pong = wire::encode_frame(&Frame::<()>::Pong { nonce })?;
                    let _ = pongs.try_send(pong);
                }
                Seen::Other => {}
            }
            Ok(())
        });
        // The run ends with the writer's shutdown; the server then closes.
        if !open.await? {
            break;
        }
    }
    Ok(ClientResult {
        round_trips,
        deliveries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_follow_bincode_standard() {
        for value in [0u64, 250, 251, 65_535, 65_536, u64::from(u32::MAX) + 1] {
            let bytes = bincode_varint(value);
            let mut slice = &bytes[..];
            assert_eq!(varint(&mut slice), Some(value));
            assert!(slice.is_empty());
        }
    }

    fn bincode_varint(value: u64) -> Vec<u8> {
        // Encode through the real codec: a Ping carries one u64 varint.
        let frame = wire::encode_frame(&Frame::<()>::Ping { nonce: value }).unwrap();
        frame[5..].to_vec()
    }

    #[test]
    fn broadcast_lines_are_classified() {
        let text = format!("{:016x}padding", 1234);
        let message = ChatMessage::ChatBroadcast {
            room_id: 3,
            sender: 300,
            text,
            timestamp_ms: 1,
        };
        let frame = wire::encode_frame(&Frame::App(message)).unwrap();
        match classify(&frame[4..]) {
            Seen::Line { sender, stamp } => assert_eq!((sender, stamp), (300, Some(1234))),
            _ => panic!("not classified as a line"),
        }
        let ping = wire::encode_frame(&Frame::<()>::Ping { nonce: 9 }).unwrap();
        assert!(matches!(classify(&ping[4..]), Seen::Ping(9)));
    }
}
