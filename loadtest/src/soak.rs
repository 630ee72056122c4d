//! The soak: many connections for a long time, coming and going, a few of
//! their frames malformed; what the server's memory does, whether it
//! panics, and whether an acknowledged line is ever lost.
//!
//! Each of `--connections` slots connects, joins a room, chats at a steady
//! rate and, after a random lifetime, stops sending, waits for the echoes
//! of its lines (the server sends every line to every member, the sender
//! included: an echo is the acknowledgement) and disconnects, then
//! connects again. A line the server acknowledged by echoing it is counted
//! as delivered; a line sent but never echoed before a graceful goodbye is
//! lost. One frame in a hundred is malformed on purpose; each must get an
//! error frame, and none may hurt anyone else.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use gamewire::ChatMessage;
use gamewire::client::{Client, Incoming};
use tokio::io::AsyncBufReadExt;

use crate::procfs;

/// What the soak is told to do.
#[derive(Debug, Clone)]
pub(crate) struct SoakPlan {
    pub(crate) connections: usize,
    pub(crate) room_size: usize,
    pub(crate) duration: Duration,
    /// Lines per second per connection.
    pub(crate) rate: f64,
    /// Shortest and longest life of one connection.
    pub(crate) lifetime: (Duration, Duration),
    /// Share of frames that are malformed on purpose.
    pub(crate) malformed: f64,
    /// Where to write the figures as JSON.
    pub(crate) json: Option<std::path::PathBuf>,
}

/// What every slot counts.
#[derive(Debug, Default)]
struct Tally {
    sessions: AtomicU64,
    sent: AtomicU64,
    acknowledged: AtomicU64,
    lost: AtomicU64,
    malformed: AtomicU64,
    errors: AtomicU64,
    failed_connects: AtomicU64,
    unexpected_closes: AtomicU64,
}

/// A small, seeded generator (xorshift64*): enough for lifetimes and the
/// choice of malformed frames, with no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A frame that decodes to nothing the server accepts: each gets an error
/// frame (code 1, `Undecodable`, or 2, `NotAllowed`), and the session goes on.
fn malformed_frame(rng: &mut Rng) -> Bytes {
    let payload: Vec<u8> = match rng.next() % 4 {
        // An envelope tag that does not exist.
        0 => vec![99, 1, 2, 3],
        // A chat variant id that does not exist.
        1 => vec![6, 77],
        // A chat line whose text is cut short.
        2 => vec![6, 2, 1, 40, b'h', b'i'],
        // A line the server sends, not clients (`RoomLeft`).
        _ => vec![6, 5, 1],
    };
    let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&payload);
    Bytes::from(frame)
}

/// One slot: connections one after the other until `deadline`.
async fn slot(
    index: usize,
    server: SocketAddr,
    plan: Arc<SoakPlan>,
    deadline: Instant,
    tally: Arc<Tally>,
) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (index as u64 + 1));
    let room_id = (index / plan.room_size) as u32;
    while Instant::now() < deadline {
        let (shortest, longest) = plan.lifetime;
        let life = shortest + (longest - shortest).mul_f64(rng.unit());
        let until = (Instant::now() + life).min(deadline);
        if let Err(error) = session(server, room_id, &plan, until, &mut rng, &tally).await {
            tracing_free_log(index, &error);
            tally.failed_connects.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The soak prints its own failures: the load tool logs nothing else.
fn tracing_free_log(index: usize, error: &anyhow::Error) {
    eprintln!("slot {index}: {error:#}");
}

/// One connection's life: join, chat until `until`, say goodbye once every
/// line sent has come back (or 10 s have passed).
async fn session(
    server: SocketAddr,
    room_id: u32,
    plan: &SoakPlan,
    until: Instant,
    rng: &mut Rng,
    tally: &Tally,
) -> anyhow::Result<()> {
    let mut client = Client::<ChatMessage>::connect(server).await?;
    tally.sessions.fetch_add(1, Ordering::Relaxed);
    let me = client.user_id();
    client
        .request(&ChatMessage::JoinRoom { room_id }, |m| {
            matches!(m, ChatMessage::RoomJoined { .. })
        })
        .await?;
    let sender = client.sender();
    let every = Duration::from_secs_f64(1.0 / plan.rate.max(1e-3));
    let mut ticks = tokio::time::interval(every);
    let mut counts = Counts::default();
    let mut closed = false;
    // Chat until the lifetime is over.
    while Instant::now() < until && !closed {
        tokio::select! {
            _ = ticks.tick() => {
                if rng.unit() < plan.malformed {
                    sender.send_frame(malformed_frame(rng)).await?;
                    counts.malformed += 1;
                    tally.malformed.fetch_add(1, Ordering::Relaxed);
                } else {
                    let text = format!("soak {me} {}", counts.sent);
                    sender.send(&ChatMessage::SendChat { room_id, text }).await?;
                    counts.sent += 1;
                    tally.sent.fetch_add(1, Ordering::Relaxed);
                }
            }
            incoming = client.recv() => {
                closed = !count(incoming, me, &mut counts, tally);
            }
        }
    }
    // Stop sending; wait for every echo and error frame on its way.
    let drain = tokio::time::Instant::now() + Duration::from_secs(10);
    while !counts.settled() && !closed {
        match tokio::time::timeout_at(drain, client.recv()).await {
            Ok(incoming) => closed = !count(incoming, me, &mut counts, tally),
            Err(_) => break,
        }
    }
    let lost = counts.sent - counts.echoed.min(counts.sent);
    tally.lost.fetch_add(lost, Ordering::Relaxed);
    if closed {
        tally.unexpected_closes.fetch_add(1, Ordering::Relaxed);
    }
    client.close().await;
    Ok(())
}

/// What one connection sent and got back.
#[derive(Debug, Default)]
struct Counts {
    sent: u64,
    echoed: u64,
    malformed: u64,
    errors: u64,
}

impl Counts {
    /// Whether everything sent has been answered.
    fn settled(&self) -> bool {
        self.echoed >= self.sent && self.errors >= self.malformed
    }
}

/// Counts one thing received; `false` when the connection is over.
fn count(
    incoming: Option<Incoming<ChatMessage>>,
    me: u32,
    counts: &mut Counts,
    tally: &Tally,
) -> bool {
    match incoming {
        Some(Incoming::Message(ChatMessage::ChatBroadcast { sender, .. })) if sender == me => {
            counts.echoed += 1;
            tally.acknowledged.fetch_add(1, Ordering::Relaxed);
            true
        }
        Some(Incoming::Error(_)) => {
            counts.errors += 1;
            tally.errors.fetch_add(1, Ordering::Relaxed);
            true
        }
        Some(Incoming::Closed(close)) => {
            eprintln!("closed by the server: {} ({})", close.reason, close.code);
            false
        }
        None => false,
        Some(_) => true,
    }
}

/// The server's memory over the soak.
struct RssSeries {
    /// (seconds since the start, bytes).
    samples: Vec<(f64, u64)>,
}

impl RssSeries {
    /// The slope of a least-squares line through the second half of the
    /// samples, in KiB per minute: the first half is the server warming
    /// up (allocator arenas, buffers, the rooms filling).
    fn slope_kib_per_minute(&self) -> f64 {
        let half = &self.samples[self.samples.len() / 2..];
        let n = half.len() as f64;
        if n < 2.0 {
            return 0.0;
        }
        let mean_t = half.iter().map(|(t, _)| t).sum::<f64>() / n;
        let mean_b = half.iter().map(|&(_, b)| b as f64).sum::<f64>() / n;
        let (mut num, mut den) = (0.0, 0.0);
        for &(t, b) in half {
            num += (t - mean_t) * (b as f64 - mean_b);
            den += (t - mean_t) * (t - mean_t);
        }
        if den == 0.0 {
            return 0.0;
        }
        num / den * 60.0 / 1024.0
    }
}

/// Runs the soak against the server of process `pid` at `server`, whose
/// standard error is `stderr` (for counting panics).
pub(crate) async fn soak(
    server: SocketAddr,
    pid: u32,
    stderr: Option<tokio::process::ChildStderr>,
    plan: SoakPlan,
) -> anyhow::Result<bool> {
    let panics = Arc::new(AtomicU64::new(0));
    if let Some(stderr) = stderr {
        let panics = Arc::clone(&panics);
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("panicked") {
                    panics.fetch_add(1, Ordering::Relaxed);
                    eprintln!("server: {line}");
                }
            }
        });
    }
    let plan = Arc::new(plan);
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let deadline = started + plan.duration;
    let mut slots = Vec::new();
    for index in 0..plan.connections {
        let (plan, tally) = (Arc::clone(&plan), Arc::clone(&tally));
        slots.push(tokio::spawn(slot(index, server, plan, deadline, tally)));
        // Connect 100 at a time, as a crowd arrives.
        if index % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let mut rss = RssSeries {
        samples: Vec::new(),
    };
    let mut second = tokio::time::interval(Duration::from_secs(1));
    while Instant::now() < deadline {
        second.tick().await;
        let bytes = procfs::rss_bytes(pid).context("the server is gone")?;
        rss.samples.push((started.elapsed().as_secs_f64(), bytes));
        let t = &tally;
        eprint!(
            "\r{:>5.0} s  sessions {:>6}  lines sent {:>8}  acknowledged {:>8}  server RSS {:>7} KiB ",
            started.elapsed().as_secs_f64(),
            t.sessions.load(Ordering::Relaxed),
            t.sent.load(Ordering::Relaxed),
            t.acknowledged.load(Ordering::Relaxed),
            bytes / 1024
        );
    }
    eprintln!();
    for slot in slots {
        slot.await?;
    }
    let t = &tally;
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let first = rss.samples.first().map_or(0, |s| s.1);
    let last = rss.samples.last().map_or(0, |s| s.1);
    let peak = rss.samples.iter().map(|s| s.1).max().unwrap_or(0);
    let slope = rss.slope_kib_per_minute();
    let alive = procfs::rss_bytes(pid).is_some();
    println!(
        "soak of {:.0} s, {} connections at a time, rooms of {}, {} lines/s each, {:.1} % malformed",
        plan.duration.as_secs_f64(),
        plan.connections,
        plan.room_size,
        plan.rate,
        plan.malformed * 100.0
    );
    let count = |counter: &AtomicU64| crate::report::thousands(load(counter));
    println!("sessions                    {:>12}", count(&t.sessions));
    println!("lines sent                  {:>12}", count(&t.sent));
    println!("lines acknowledged          {:>12}", count(&t.acknowledged));
    println!("lines lost                  {:>12}", count(&t.lost));
    println!("malformed frames sent       {:>12}", count(&t.malformed));
    println!("error frames received       {:>12}", count(&t.errors));
    println!(
        "connects that failed        {:>12}",
        load(&t.failed_connects)
    );
    println!(
        "sessions closed by server   {:>12}",
        load(&t.unexpected_closes)
    );
    println!("server panics               {:>12}", load(&panics));
    println!("server alive at the end     {:>12}", alive);
    println!(
        "server RSS (KiB)            {:>12} first, {} peak, {} last",
        first / 1024,
        peak / 1024,
        last / 1024
    );
    println!("RSS slope, second half      {:>12.1} KiB/min", slope);
    let json = format!(
        "{{\"seconds\":{:.0},\"connections\":{},\"sessions\":{},\"sent\":{},\"acknowledged\":{},\"lost\":{},\"malformed\":{},\"errors\":{},\"failed_connects\":{},\"closed_by_server\":{},\"panics\":{},\"alive\":{},\"rss_first\":{},\"rss_peak\":{},\"rss_last\":{},\"rss_slope_kib_per_min\":{:.1}}}",
        plan.duration.as_secs_f64(),
        plan.connections,
        load(&t.sessions),
        load(&t.sent),
        load(&t.acknowledged),
        load(&t.lost),
        load(&t.malformed),
        load(&t.errors),
        load(&t.failed_connects),
        load(&t.unexpected_closes),
        load(&panics),
        alive,
        first,
        peak,
        last,
        slope
    );
    if let Some(path) = &plan.json {
        std::fs::write(path, json + "\n")?;
    }
    let clean = load(&t.lost) == 0
        && load(&panics) == 0
        && alive
        && load(&t.unexpected_closes) == 0
        && load(&t.errors) == load(&t.malformed);
    Ok(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slope_of_a_line_is_its_rate() {
        // 1 KiB more every second: 60 KiB a minute.
        let samples = (0..20)
            .map(|s| (f64::from(s), 10_000 + 1024 * s as u64))
            .collect();
        let slope = RssSeries { samples }.slope_kib_per_minute();
        assert!((slope - 60.0).abs() < 1e-6, "{slope}");
    }

    #[test]
    fn malformed_frames_are_framed() {
        let mut rng = Rng(7);
        for _ in 0..16 {
            let frame = malformed_frame(&mut rng);
            let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
            assert_eq!(len, frame.len() - 4);
            let decoded =
                gamewire::wire::decode_payload::<gamewire::wire::Frame<ChatMessage>>(&frame[4..]);
            let refused = decoded.is_err()
                || matches!(
                    decoded,
                    Ok(gamewire::wire::Frame::App(ChatMessage::RoomLeft { .. }))
                );
            assert!(refused, "{decoded:?}");
        }
    }
}
