//! Load generator for a gamewire chat server.
//!
//! Clients join rooms of `--room-size` and chat as fast as a window of
//! `--in-flight` unanswered lines per client allows (closed loop: a line is
//! answered when its own broadcast comes back). Every member of a room
//! receives every line, so each line sent should be delivered `room-size`
//! times; the tool counts deliveries, measures each line's round trip
//! (send to own broadcast), and after the run reports
//! `lost = sent × room-size − delivered`.
//!
//! Run the server and the load in two terminals:
//!
//! ```text
//! cargo run --release -p example-chat
//! cargo run --release -p gamewire-loadtest -- --clients 100 --room-size 10 --duration 10s
//! ```
//!
//! Each client is one TCP connection: keep `--clients` well below the
//! process's open-file limit (`ulimit -n`; at most 20,000 on the project's
//! machines), counting the server's sockets too when it runs on the same
//! machine.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use gamewire::ChatMessage;
use gamewire::client::Client;
use tokio::sync::Barrier;

/// What to run, from the command line.
#[derive(Debug, Clone)]
struct Options {
    address: String,
    clients: usize,
    room_size: usize,
    duration: Duration,
    in_flight: usize,
    text_size: usize,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> anyhow::Result<Self> {
        let mut options = Options {
            address: format!("127.0.0.1:{}", gamewire::DEFAULT_PORT),
            clients: 100,
            room_size: 10,
            duration: Duration::from_secs(10),
            in_flight: 4,
            text_size: 32,
        };
        while let Some(flag) = args.next() {
            if flag == "--help" || flag == "-h" {
                println!("{}", usage());
                std::process::exit(0);
            }
            let value = args
                .next()
                .with_context(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--address" => options.address = value,
                "--clients" => options.clients = value.parse()?,
                "--room-size" => options.room_size = value.parse()?,
                "--duration" => options.duration = parse_duration(&value)?,
                "--in-flight" => options.in_flight = value.parse()?,
                "--text-size" => options.text_size = value.parse()?,
                _ => bail!("unknown option {flag}\n{}", usage()),
            }
        }
        if options.room_size == 0 || !options.clients.is_multiple_of(options.room_size) {
            bail!("--clients must be a multiple of --room-size, so every room is full");
        }
        if options.in_flight == 0 {
            bail!("--in-flight must be at least 1");
        }
        Ok(options)
    }
}

fn usage() -> &'static str {
    "usage: gamewire-loadtest [--address HOST:PORT] [--clients N] [--room-size N] \
     [--duration 10s|500ms] [--in-flight N] [--text-size BYTES]"
}

fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    if let Some(ms) = text.strip_suffix("ms") {
        return Ok(Duration::from_millis(ms.parse()?));
    }
    let secs = text.strip_suffix('s').unwrap_or(text);
    Ok(Duration::from_secs_f64(secs.parse()?))
}

/// Counters shared by every client task.
#[derive(Debug, Default)]
struct Totals {
    sent: AtomicU64,
    delivered: AtomicU64,
}

/// What one client measured.
struct ClientReport {
    round_trips_us: Vec<u64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse(std::env::args().skip(1))?;
    println!(
        "{} clients in rooms of {} against {}, {:?}, {} in flight per client",
        options.clients, options.room_size, options.address, options.duration, options.in_flight
    );
    let totals = Arc::new(Totals::default());
    let sending = Arc::new(AtomicBool::new(true));
    let ready = Arc::new(Barrier::new(options.clients + 1));
    let epoch = Instant::now();
    let mut tasks = Vec::with_capacity(options.clients);
    for index in 0..options.clients {
        let client = Client::<ChatMessage>::connect(&options.address)
            .await
            .with_context(|| format!("client {index} could not connect"))?;
        let room = (index / options.room_size) as u32 + 1;
        tasks.push(tokio::spawn(run_client(
            client,
            room,
            options.clone(),
            Arc::clone(&totals),
            Arc::clone(&sending),
            Arc::clone(&ready),
            epoch,
        )));
    }
    ready.wait().await;
    let start = Instant::now();
    let mut last = 0;
    while start.elapsed() < options.duration {
        tokio::time::sleep(Duration::from_secs(1).min(options.duration)).await;
        let delivered = totals.delivered.load(Ordering::Relaxed);
        println!(
            "  {:>5.1}s  delivered {:>10}  ({:.0}/s in the last second)",
            start.elapsed().as_secs_f64(),
            delivered,
            (delivered - last) as f64
        );
        last = delivered;
    }
    sending.store(false, Ordering::Relaxed);
    let elapsed = start.elapsed();
    // The rate counts what arrived within the run; the loss count, below,
    // also waits for what was still on its way.
    let delivered_in_run = totals.delivered.load(Ordering::Relaxed);
    let mut round_trips = Vec::new();
    for task in tasks {
        round_trips.extend(task.await??.round_trips_us);
    }
    report(&options, &totals, delivered_in_run, elapsed, round_trips);
    Ok(())
}

async fn run_client(
    mut client: Client<ChatMessage>,
    room_id: u32,
    options: Options,
    totals: Arc<Totals>,
    sending: Arc<AtomicBool>,
    ready: Arc<Barrier>,
    epoch: Instant,
) -> anyhow::Result<ClientReport> {
    let me = client.user_id();
    let joined = client
        .request(&ChatMessage::JoinRoom { room_id }, |m| {
            matches!(m, ChatMessage::RoomJoined { .. })
        })
        .await?;
    drop(joined);
    ready.wait().await;
    let padding = "x".repeat(options.text_size.saturating_sub(20));
    let mut in_flight = 0;
    let mut round_trips_us = Vec::new();
    loop {
        while sending.load(Ordering::Relaxed) && in_flight < options.in_flight {
            let stamp = epoch.elapsed().as_micros();
            let text = format!("{stamp:020}{padding}");
            client
                .send(&ChatMessage::SendChat { room_id, text })
                .await?;
            totals.sent.fetch_add(1, Ordering::Relaxed);
            in_flight += 1;
        }
        if !sending.load(Ordering::Relaxed) && in_flight == 0 {
            break;
        }
        let message =
            match tokio::time::timeout(Duration::from_secs(5), client.next_message()).await {
                Ok(message) => message?,
                // Nothing for 5 s: what is still in flight is lost.
                Err(_) => break,
            };
        if let ChatMessage::ChatBroadcast { sender, text, .. } = message {
            totals.delivered.fetch_add(1, Ordering::Relaxed);
            if sender == me {
                in_flight -= 1;
                let stamp: u128 = text[..20].parse()?;
                round_trips_us.push((epoch.elapsed().as_micros() - stamp) as u64);
            }
        }
    }
    // Lines of the others may still be arriving; take them for a moment.
    let quiet = Duration::from_millis(500);
    while let Ok(Ok(message)) = tokio::time::timeout(quiet, client.next_message()).await {
        if matches!(message, ChatMessage::ChatBroadcast { .. }) {
            totals.delivered.fetch_add(1, Ordering::Relaxed);
        }
    }
    client.close().await;
    Ok(ClientReport { round_trips_us })
}

fn report(
    options: &Options,
    totals: &Totals,
    delivered_in_run: u64,
    elapsed: Duration,
    mut round_trips: Vec<u64>,
) {
    let sent = totals.sent.load(Ordering::Relaxed);
    let delivered = totals.delivered.load(Ordering::Relaxed);
    let expected = sent * options.room_size as u64;
    let lost = expected.saturating_sub(delivered);
    round_trips.sort_unstable();
    let pct = |p: f64| -> f64 {
        if round_trips.is_empty() {
            return 0.0;
        }
        let i = ((round_trips.len() as f64 * p).ceil() as usize).clamp(1, round_trips.len()) - 1;
        round_trips[i] as f64 / 1000.0
    };
    let secs = elapsed.as_secs_f64();
    let rate = delivered_in_run as f64 / secs;
    println!("sent       {sent} lines");
    println!("delivered  {delivered} messages; {rate:.0}/s during the run");
    println!("lost       {lost} (sent × room size − delivered)");
    println!(
        "round trip p50 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms",
        pct(0.50),
        pct(0.99),
        pct(0.999),
        pct(1.0)
    );
    println!(
        "{{\"clients\":{},\"room_size\":{},\"in_flight\":{},\"seconds\":{secs:.3},\"sent\":{sent},\"delivered\":{delivered},\"lost\":{lost},\"delivered_per_second\":{:.0},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"p999_ms\":{:.3}}}",
        options.clients,
        options.room_size,
        options.in_flight,
        rate,
        pct(0.50),
        pct(0.99),
        pct(0.999)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> anyhow::Result<Options> {
        Options::parse(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn options_parse() {
        let options = parse(&[
            "--clients",
            "1000",
            "--room-size",
            "100",
            "--duration",
            "500ms",
        ])
        .unwrap();
        assert_eq!((options.clients, options.room_size), (1000, 100));
        assert_eq!(options.duration, Duration::from_millis(500));
        assert_eq!(
            parse(&["--duration", "2.5s"]).unwrap().duration,
            Duration::from_millis(2500)
        );
    }

    #[test]
    fn rooms_must_be_full() {
        let error = parse(&["--clients", "15", "--room-size", "10"]).unwrap_err();
        assert!(error.to_string().contains("multiple of --room-size"));
        assert!(parse(&["--bogus", "1"]).is_err());
        assert!(parse(&["--clients"]).is_err());
    }
}
