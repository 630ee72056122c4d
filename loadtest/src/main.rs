//! Load generator for gamewire chat servers, with a hand-written tokio
//! baseline to compare against.
//!
//! Clients join rooms of `--room-size` and chat. Every member of a room
//! receives every line, so each line should be delivered `room-size` times:
//! the tool counts deliveries, measures each line's round trip (send to
//! its own broadcast) in an HDR histogram, and reports
//! `lost = sent × room-size − delivered` for every run.
//!
//! ```text
//! # a soak: 2,000 connections coming and going for ten minutes, 1 % of
//! # their frames malformed; memory slope, panics, lost lines:
//! cargo run --release -p gamewire-loadtest -- soak --duration 600s
//! # gamewire and the baseline side by side, one command:
//! cargo run --release -p gamewire-loadtest -- compare --clients 1000 --room-size 10 --duration 10s
//! # a server you started yourself:
//! cargo run --release -p gamewire-loadtest -- run --address 127.0.0.1:7878 --clients 100
//! ```
//!
//! Modes: closed loop (default: unthrottled, `--in-flight` unanswered lines
//! per client), open loop (`--rate` lines per second per client, at
//! spread-out phases), idle (`--idle`: clients join and
//! stay; the figure is server memory per connection).
//!
//! Each client is one socket. A process may open only so many files
//! (`ulimit -n`; 20,000 on the project's machines), and the server is a
//! second process with its own limit; `--source-ips N` spreads clients over
//! 127.0.0.1 … 127.0.0.N so the ephemeral ports of one source address do
//! not run out first.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use hdrhistogram::Histogram;
use tokio::io::AsyncBufReadExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

mod baseline;
mod cluster;
mod load;
mod procfs;
mod redis;
mod report;
mod soak;
mod syscalls;

use load::{ClientCounters, Pace, RunControl};
use report::Figures;

#[derive(Debug, Parser)]
#[command(about = "Load a gamewire chat server, or compare it with a hand-written tokio baseline")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load a server that is already running.
    Run {
        /// The server's address; for the nodes of a cluster, several,
        /// comma-separated: client i connects to the (i mod n)-th, so each
        /// room has members on every node.
        #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:7878")]
        address: Vec<SocketAddr>,
        /// The server's process id, to measure its memory and CPU.
        #[arg(long)]
        server_pid: Option<u32>,
        #[command(flatten)]
        workload: Workload,
        #[command(flatten)]
        verdict: Verdict,
    },
    /// Serve the chat: `gamewire` (the framework) or `baseline` (hand-written tokio).
    Serve {
        /// Which server.
        #[arg(long, value_enum)]
        kind: ServerKind,
        /// Where to listen; the actual address is printed.
        #[arg(long, default_value = "127.0.0.1:0")]
        address: SocketAddr,
        /// Frames each connection's outbound queue holds.
        #[arg(long, default_value_t = DEFAULT_QUEUE)]
        queue: usize,
        /// Join the cluster of the nodes on this Redis (gamewire only).
        #[arg(long, value_name = "URL")]
        redis: Option<String>,
    },
    /// Run the original guide's `run_message_processing_benchmark` (one
    /// client per room, one line in flight each, in this process).
    Bench {
        /// Lines each client sends.
        #[arg(long, default_value_t = 1000)]
        messages: usize,
        /// Clients.
        #[arg(long, default_value_t = 100)]
        connections: usize,
        /// Time limit.
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        duration: Duration,
    },
    /// Soak a gamewire server: connections that come and go for a long
    /// time, 1 % of their frames malformed. Prints the server's memory
    /// slope, its panics and the lines lost; exits non-zero unless all is
    /// clean.
    Soak {
        /// A server already running; by default the tool starts one.
        #[arg(long)]
        address: Option<SocketAddr>,
        /// That server's process id, to measure its memory.
        #[arg(long, requires = "address")]
        server_pid: Option<u32>,
        /// Connections at once.
        #[arg(long, default_value_t = 2000)]
        connections: usize,
        /// Members per room.
        #[arg(long, default_value_t = 10)]
        room_size: usize,
        /// How long the soak lasts, e.g. 600s.
        #[arg(long, default_value = "60s", value_parser = parse_duration)]
        duration: Duration,
        /// Lines per second per connection.
        #[arg(long, default_value_t = 2.0)]
        rate: f64,
        /// Shortest life of a connection before it says goodbye and
        /// connects again.
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        min_life: Duration,
        /// Longest life of a connection.
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        max_life: Duration,
        /// Share of frames malformed on purpose.
        #[arg(long, default_value_t = 0.01)]
        malformed: f64,
        /// Write the figures as JSON to this file.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// Start each server as a child process, load both with the same
    /// workload, and print gamewire ÷ baseline for every figure.
    Compare {
        #[command(flatten)]
        workload: Workload,
        #[command(flatten)]
        verdict: Verdict,
        /// Rounds of both servers, alternating which goes first; with more
        /// than one, the last table gives each ratio's median.
        #[arg(long, default_value_t = 1)]
        rounds: usize,
    },
    /// Start a `redis-server` and gamewire nodes as child processes and
    /// load three setups with the same workload: one node in-process (no
    /// adapter), one node through Redis, and `--nodes` through Redis, with
    /// the clients spread over them. Prints each setup's figures, the
    /// Redis commands per room message, and each ÷ the in-process node.
    Cluster {
        #[command(flatten)]
        workload: Workload,
        /// Nodes of the largest setup.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Rounds of the three setups, in a rotating order; with more than
        /// one, the last table gives each ratio's median.
        #[arg(long, default_value_t = 1)]
        rounds: usize,
    },
}

/// Where the machine-readable result goes, and what makes a run fail.
#[derive(Debug, Clone, Args)]
struct Verdict {
    /// Write the figures as JSON to this file (standard output stays for
    /// people).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Fail (exit code 1) when more lines than this were lost.
    #[arg(long, default_value_t = 0, value_name = "LINES")]
    max_lost: u64,
    /// Fail when the round trip's p99 is above this, e.g. 5ms.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    max_p99: Option<Duration>,
    /// Fail when fewer messages than this were delivered a second.
    #[arg(long, value_name = "RATE")]
    min_delivered: Option<f64>,
}

impl Verdict {
    /// The thresholds `figures` breaks, as sentences.
    fn broken(&self, figures: &report::Figures) -> Vec<String> {
        let mut broken = Vec::new();
        if figures.lost > self.max_lost {
            broken.push(format!(
                "{} lines lost, more than --max-lost {}",
                report::thousands(figures.lost),
                self.max_lost
            ));
        }
        if figures.failed_clients > 0 {
            broken.push(format!(
                "{} clients lost their connection",
                figures.failed_clients
            ));
        }
        if let Some(max) = self.max_p99
            && figures.p99_ms > max.as_secs_f64() * 1000.0
        {
            broken.push(format!(
                "p99 {} is over --max-p99 {}",
                report::millis(figures.p99_ms),
                report::millis(max.as_secs_f64() * 1000.0)
            ));
        }
        if let Some(min) = self.min_delivered
            && figures.delivered_per_second < min
        {
            broken.push(format!(
                "{} delivered a second, fewer than --min-delivered {}",
                report::per_second(figures.delivered_per_second),
                report::per_second(min)
            ));
        }
        broken
    }
}

/// Outbound queue of both servers under load: the load generator shares
/// the machine, so a client can fall behind for a moment; a short queue
/// would turn that into a disconnect (gamewire) or drops (baseline).
const DEFAULT_QUEUE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ServerKind {
    Gamewire,
    Baseline,
}

impl ServerKind {
    fn name(self) -> &'static str {
        match self {
            ServerKind::Gamewire => "gamewire",
            ServerKind::Baseline => "baseline",
        }
    }
}

/// What the clients do.
#[derive(Debug, Clone, Args)]
struct Workload {
    /// Clients, one connection each; a multiple of --room-size.
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Members per room.
    #[arg(long, default_value_t = 10)]
    room_size: usize,
    /// How long the clients chat (or idle), e.g. 10s or 500ms.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Closed loop: own lines each client may have unanswered.
    #[arg(long, default_value_t = 4)]
    in_flight: usize,
    /// Open loop: lines per second per client (instead of --in-flight).
    #[arg(long)]
    rate: Option<f64>,
    /// Idle: clients join their room and send nothing.
    #[arg(long)]
    idle: bool,
    /// Bytes of chat text per line.
    #[arg(long, default_value_t = 32)]
    text_size: usize,
    /// Spread clients over 127.0.0.1 … 127.0.0.N.
    #[arg(long, default_value_t = 1)]
    source_ips: u8,
    /// Connect over WebSocket (`--address` is then the server's WebSocket
    /// listener) instead of TCP. Not for `compare`: the baseline speaks TCP.
    #[arg(long)]
    websocket: bool,
    /// Write a latency chart (SVG) here.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Load before the measured window begins, so neither server (nor the
    /// load generator) is measured cold; nothing from it is reported but
    /// losses.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
}

impl Workload {
    fn pace(&self) -> Pace {
        match (self.idle, self.rate) {
            (true, _) => Pace::Idle,
            (false, Some(rate)) => Pace::Open {
                every: Duration::from_secs_f64(1.0 / rate.max(1e-3)),
            },
            (false, None) => Pace::Closed {
                in_flight: self.in_flight.max(1),
            },
        }
    }

    fn check(&self) -> anyhow::Result<()> {
        if self.room_size == 0 || !self.clients.is_multiple_of(self.room_size) {
            bail!("--clients must be a multiple of --room-size, so every room is full");
        }
        if self.source_ips == 0 {
            bail!("--source-ips must be at least 1");
        }
        Ok(())
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let parsed = if let Some(ms) = text.strip_suffix("ms") {
        ms.parse()
            .map(Duration::from_millis)
            .map_err(|e| e.to_string())
    } else {
        let secs = text.strip_suffix('s').unwrap_or(text);
        secs.parse::<f64>()
            .map_err(|e| e.to_string())
            .and_then(|s| Duration::try_from_secs_f64(s).map_err(|e| e.to_string()))
    };
    parsed.map_err(|e| format!("`{text}` is not a duration like 10s or 500ms: {e}"))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve {
                kind,
                address,
                queue,
                redis,
            } => serve(kind, address, queue, redis.as_deref()).await,
            Command::Run {
                address,
                server_pid,
                workload,
                verdict,
            } => {
                workload.check()?;
                let pids: Vec<u32> = server_pid.into_iter().collect();
                let (figures, histogram) = run(&address, &pids, None, &workload, "server").await?;
                figures.print();
                if let Some(path) = &workload.svg {
                    std::fs::write(path, report::latency_svg(&[("server", &histogram)]))?;
                    println!("latency chart: {}", path.display());
                }
                if let Some(path) = &verdict.json {
                    std::fs::write(path, figures.json() + "\n")
                        .with_context(|| format!("cannot write {}", path.display()))?;
                }
                let broken = verdict.broken(&figures);
                if broken.is_empty() {
                    Ok(())
                } else {
                    bail!("the run failed its thresholds: {}", broken.join("; "))
                }
            }
            Command::Compare {
                workload,
                verdict,
                rounds,
            } => compare(&workload, &verdict, rounds).await,
            Command::Cluster {
                workload,
                nodes,
                rounds,
            } => cluster::cluster(&workload, nodes, rounds).await,
            Command::Soak {
                address,
                server_pid,
                connections,
                room_size,
                duration,
                rate,
                min_life,
                max_life,
                malformed,
                json,
            } => {
                let plan = soak::SoakPlan {
                    connections,
                    room_size: room_size.max(1),
                    duration,
                    rate,
                    lifetime: (min_life, max_life.max(min_life)),
                    malformed,
                    json,
                };
                let clean = match address {
                    Some(address) => {
                        let pid = server_pid.context("--address needs --server-pid")?;
                        soak::soak(address, pid, None, plan).await?
                    }
                    None => {
                        let (mut child, address) =
                            spawn_server_with(ServerKind::Gamewire, true, &[]).await?;
                        let stderr = child.stderr.take();
                        let pid = child.id().context("the server exited")?;
                        let clean = soak::soak(address, pid, stderr, plan).await?;
                        let _ = child.kill().await;
                        clean
                    }
                };
                if !clean {
                    bail!("the soak was not clean (see above)");
                }
                Ok(())
            }
            Command::Bench {
                messages,
                connections,
                duration,
            } => {
                let result = gamewire::bench::run_message_processing_benchmark(
                    messages,
                    connections,
                    duration,
                )
                .await?;
                println!("Messages/sec: {:.0}", result.messages_per_second);
                println!("Average latency: {:.3}ms", result.avg_latency_ms);
                println!(
                    "p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms; {} of {} lines back",
                    result.p50_latency_ms,
                    result.p99_latency_ms,
                    result.p999_latency_ms,
                    result.messages_received,
                    result.messages_sent
                );
                Ok(())
            }
        }
    })
}

async fn serve(
    kind: ServerKind,
    address: SocketAddr,
    queue: usize,
    redis: Option<&str>,
) -> anyhow::Result<()> {
    if redis.is_some() && kind == ServerKind::Baseline {
        bail!("--redis is for gamewire nodes; the baseline has no cluster");
    }
    let listener = tokio::net::TcpListener::bind(address).await?;
    println!("listening on {}", listener.local_addr()?);
    match kind {
        ServerKind::Gamewire => {
            // The defaults, but for what a load generator is that clients
            // on the open internet are not: thousands of clients from one
            // to four addresses, connecting at once, each sending as fast
            // as its round trips allow.
            let config = gamewire::TcpServerConfig {
                bind_address: address.to_string(),
                max_connections: 1_000_000,
                max_connections_per_ip: 1_000_000,
                max_pending_handshakes: 1_000_000,
                message_rate: 1_000_000,
                outbound_queue_capacity: queue,
                ..Default::default()
            };
            let mut service =
                gamewire::TcpGameService::with_config(config).protocol::<gamewire::ChatMessage>();
            if let Some(url) = redis {
                let adapter = gamewire_redis::RedisAdapter::connect(url)
                    .await
                    .with_context(|| format!("cannot reach Redis at {url}"))?;
                service = service.adapter(adapter);
            }
            service.serve(listener).await?;
        }
        ServerKind::Baseline => baseline::serve(listener, queue).await,
    }
    Ok(())
}

/// Starts `serve --kind` as a child process; returns it and its address.
async fn spawn_server(kind: ServerKind) -> anyhow::Result<(tokio::process::Child, SocketAddr)> {
    spawn_server_with(kind, false, &[]).await
}

/// As [`spawn_server`], with the child's standard error piped to the
/// caller when `pipe_stderr`, and `extra` arguments after `serve`'s own.
async fn spawn_server_with(
    kind: ServerKind,
    pipe_stderr: bool,
    extra: &[&str],
) -> anyhow::Result<(tokio::process::Child, SocketAddr)> {
    let stderr = if pipe_stderr {
        std::process::Stdio::piped()
    } else {
        std::process::Stdio::inherit()
    };
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args(["serve", "--kind", kind.name()])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .context("the server did not start in 30 s")??
        .context("the server exited")?;
    let address = line
        .strip_prefix("listening on ")
        .context("unexpected server output")?
        .parse()?;
    Ok((child, address))
}

async fn compare(workload: &Workload, verdict: &Verdict, rounds: usize) -> anyhow::Result<()> {
    workload.check()?;
    if workload.websocket {
        bail!(
            "the baseline speaks TCP only: load one server over WebSocket with `run --websocket`"
        );
    }
    let rounds = rounds.max(1);
    let mut results = Vec::with_capacity(rounds);
    let mut merged = [
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?,
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?,
    ];
    for round in 0..rounds {
        // Alternating who goes first cancels what going first costs (or
        // gains) on a machine that is warming up or busy.
        let order = if round % 2 == 0 {
            [ServerKind::Gamewire, ServerKind::Baseline]
        } else {
            [ServerKind::Baseline, ServerKind::Gamewire]
        };
        let mut pair = [None, None];
        for kind in order {
            match rounds {
                1 => println!("\n== {} ==", kind.name()),
                _ => println!("\n== round {} of {rounds}: {} ==", round + 1, kind.name()),
            }
            let (mut child, address) = spawn_server(kind).await?;
            let pid = child.id();
            let pids: Vec<u32> = pid.into_iter().collect();
            let (figures, histogram) = run(&[address], &pids, None, workload, kind.name()).await?;
            child.kill().await?;
            figures.print();
            let slot = kind as usize;
            merged[slot].add(&histogram)?;
            pair[slot] = Some(figures);
        }
        let [Some(gamewire), Some(baseline)] = pair else {
            unreachable!("each round runs both servers");
        };
        if rounds > 1 {
            let _ = report::print_ratios(&gamewire, &baseline);
        }
        results.push((gamewire, baseline));
    }
    if let Some(path) = &workload.svg {
        let series = [("gamewire", &merged[0]), ("baseline", &merged[1])];
        std::fs::write(path, report::latency_svg(&series))?;
        println!("latency chart: {}", path.display());
    }
    let json = match results.as_slice() {
        [(gamewire, baseline)] => report::print_ratios(gamewire, baseline),
        rounds => report::print_median_ratios(rounds),
    };
    if let Some(path) = &verdict.json {
        std::fs::write(path, json + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let broken: Vec<String> = results
        .iter()
        .flat_map(|(gamewire, _)| verdict.broken(gamewire))
        .collect();
    if broken.is_empty() {
        Ok(())
    } else {
        bail!("gamewire failed the thresholds: {}", broken.join("; "))
    }
}

/// Connects the clients, spread over `addresses`, runs the workload,
/// drains, and measures; `pids` are the server processes (their memory and
/// CPU are summed), `redis` the one their cluster shares.
async fn run(
    addresses: &[SocketAddr],
    pids: &[u32],
    redis: Option<&redis::RedisChild>,
    workload: &Workload,
    label: &str,
) -> anyhow::Result<(Figures, Histogram<u64>)> {
    let sum_rss = || summed(pids, procfs::rss_bytes);
    let sum_cpu = || summed(pids, procfs::cpu_time);
    let redis_cpu = || {
        redis
            .and_then(redis::RedisChild::pid)
            .and_then(procfs::cpu_time)
    };
    let rss_before = sum_rss();
    let control = Arc::new(RunControl {
        epoch: Instant::now(),
        start: CancellationToken::new(),
        stopped: AtomicUsize::new(0),
        measure_from_us: AtomicU64::new(0),
        stop_sending: CancellationToken::new(),
        finish: CancellationToken::new(),
    });
    let counters: Vec<Arc<ClientCounters>> =
        (0..workload.clients).map(|_| Arc::default()).collect();
    // Each client is driven from the moment it joins, so it answers the
    // server's pings while the others connect (19,000 can take a while);
    // it sends once the run starts.
    let tasks = connect_all(addresses, workload, &counters, &control).await?;
    // Let the server settle the joins before reading its memory.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_after = sum_rss();
    control.start.cancel();
    let total = |which: fn(&ClientCounters) -> u64| counters.iter().map(|c| which(c)).sum::<u64>();
    let delivered = |c: &ClientCounters| c.delivered.load(Ordering::Relaxed);
    let sent = |c: &ClientCounters| c.sent.load(Ordering::Relaxed);

    if !workload.idle && !workload.warmup.is_zero() {
        println!("warming up for {:?}", workload.warmup);
        tokio::time::sleep(workload.warmup).await;
        let measured_from = control.epoch.elapsed().as_micros() as u64;
        control
            .measure_from_us
            .store(measured_from, Ordering::Relaxed);
    }
    let delivered_before = total(delivered);
    let sent_before = total(sent);
    let cpu_before = sum_cpu();
    let redis_cpu_before = redis_cpu();
    let redis_before = match redis {
        Some(redis) => Some(redis.calls().await?),
        None => None,
    };

    // Count the server's send syscalls over the run, when perf can (and
    // the server is one process).
    let sends = match (pids, workload.idle) {
        (&[pid], false) => Some(tokio::spawn(syscalls::count_sends(pid, workload.duration))),
        _ => None,
    };
    let start = Instant::now();
    let mut bar = Progress::new(workload.duration, (sent_before, delivered_before));
    while start.elapsed() < workload.duration {
        tokio::time::sleep(Duration::from_secs(1).min(workload.duration)).await;
        let (sent, delivered) = (total(sent), total(delivered));
        let on_the_way = (sent * workload.room_size as u64).saturating_sub(delivered);
        bar.show(start.elapsed(), sent, delivered, on_the_way);
    }
    bar.finish();
    control.stop_sending.cancel();
    let elapsed = start.elapsed();
    // CPU time spent over the run, in cores.
    let cores = |before: Option<Duration>, after: Option<Duration>| {
        Some((after? - before?).as_secs_f64() / elapsed.as_secs_f64())
    };
    let delivered_in_run = total(delivered) - delivered_before;
    let cpu_after = sum_cpu();
    let redis_cpu_after = redis_cpu();

    // Every client must have seen the stop before the lines are counted:
    // one that was about to send when it came would otherwise add a line
    // after the count, and it would look lost.
    let everyone = counters.len();
    let stopped = tokio::time::timeout(Duration::from_secs(10), async {
        while control.stopped.load(Ordering::Acquire) < everyone {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    if stopped.is_err() {
        eprintln!("some clients did not stop sending within 10 s");
    }

    // Wait for what is still on its way: until every line is delivered
    // room-size times, or nothing arrived for two seconds.
    let expected = |sent: u64| sent * workload.room_size as u64;
    let mut quiet_since = Instant::now();
    let mut seen = total(delivered);
    while total(delivered) < expected(total(sent)) && quiet_since.elapsed() < Duration::from_secs(2)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = total(delivered);
        if now != seen {
            seen = now;
            quiet_since = Instant::now();
        }
    }
    // What Redis did for the lines of the window (all of them are on
    // their way or delivered by now).
    let redis_work = match (redis, &redis_before) {
        (Some(redis), Some(before)) => {
            Some(redis::RedisWork::between(before, &redis.calls().await?))
        }
        _ => None,
    };
    let lines_in_window = total(sent) - sent_before;
    control.finish.cancel();
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut deliveries = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut failed = 0;
    for task in tasks {
        let problem = match tokio::time::timeout(Duration::from_secs(10), task).await {
            Ok(Ok(Ok(result))) => {
                histogram.add(&result.round_trips)?;
                deliveries.add(&result.deliveries)?;
                continue;
            }
            Ok(Ok(Err(error))) => format!("{error:#}"),
            Ok(Err(error)) => error.to_string(),
            Err(_) => "did not finish in 10 s".to_owned(),
        };
        if failed == 0 {
            eprintln!("a client failed: {problem}");
        }
        failed += 1;
    }
    if failed > 1 {
        eprintln!("{failed} clients failed in all");
    }

    let send_syscalls = match sends {
        Some(task) => task.await.ok().flatten(),
        None => None,
    };
    let sent = total(sent);
    let delivered = total(delivered);
    let mut figures = Figures {
        server: label.to_owned(),
        clients: workload.clients,
        room_size: workload.room_size,
        seconds: elapsed.as_secs_f64(),
        sent,
        delivered,
        lost: expected(sent).saturating_sub(delivered),
        failed_clients: failed,
        delivered_per_second: delivered_in_run as f64 / elapsed.as_secs_f64(),
        rss_per_connection: match (rss_before, rss_after) {
            (Some(before), Some(after)) => {
                Some(after.saturating_sub(before) as f64 / workload.clients as f64)
            }
            _ => None,
        },
        send_syscalls_per_delivered: send_syscalls
            .map(|calls| calls as f64 / delivered_in_run.max(1) as f64),
        server_cpu: cores(cpu_before, cpu_after),
        redis_cpu: cores(redis_cpu_before, redis_cpu_after),
        redis_publish_per_line: redis_work
            .map(|work| work.publish as f64 / lines_in_window.max(1) as f64),
        redis_commands_per_line: redis_work
            .map(|work| work.commands as f64 / lines_in_window.max(1) as f64),
        ..Default::default()
    };
    figures.set_latency(&histogram);
    figures.set_delivery(&deliveries);
    Ok((figures, histogram))
}

/// A figure of the server's processes, summed; `None` when there are none,
/// or one cannot be read.
fn summed<T: std::iter::Sum<T>>(pids: &[u32], read: fn(u32) -> Option<T>) -> Option<T> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&pid| read(pid)).sum()
}

/// How long a client may take to connect, handshake and join its room.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Connects every client, a few hundred at a time, and starts driving each
/// as soon as it has joined; returns their tasks.
async fn connect_all(
    addresses: &[SocketAddr],
    workload: &Workload,
    counters: &[Arc<ClientCounters>],
    control: &Arc<RunControl>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<anyhow::Result<load::ClientResult>>>> {
    let connecting = Arc::new(Semaphore::new(256));
    let mut tasks = Vec::with_capacity(workload.clients);
    for (index, counter) in counters.iter().enumerate() {
        let room = (index / workload.room_size) as u32 + 1;
        let address = addresses[index % addresses.len()];
        let source = (workload.source_ips > 1).then(|| {
            Ipv4Addr::new(
                127,
                0,
                0,
                1 + (index % usize::from(workload.source_ips)) as u8,
            )
        });
        let permit = Arc::clone(&connecting).acquire_owned().await?;
        let (joined_tx, joined_rx) = tokio::sync::oneshot::channel();
        let (pace, text_size) = (workload.pace(), workload.text_size);
        let websocket = workload.websocket;
        let phase = index as f64 / workload.clients as f64;
        let (counter, control) = (Arc::clone(counter), Arc::clone(control));
        let task = tokio::spawn(async move {
            // Bounded, so a server that never answers fails the run
            // instead of hanging it.
            let joined = tokio::time::timeout(
                JOIN_TIMEOUT,
                load::connect(address, source, room, websocket),
            )
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("not in its room after {JOIN_TIMEOUT:?}")));
            drop(permit);
            let client = match joined {
                Ok(client) => client,
                Err(error) => {
                    // Reported through `joined`, which ends the run.
                    let _ = joined_tx.send(Err(error));
                    anyhow::bail!("could not join");
                }
            };
            let _ = joined_tx.send(Ok(()));
            load::drive(client, pace, phase, text_size, counter, control).await
        });
        tasks.push((task, joined_rx));
    }
    let mut driving = Vec::with_capacity(workload.clients);
    for (index, (task, joined)) in tasks.into_iter().enumerate() {
        joined
            .await
            .context("a client task ended before joining")?
            .with_context(|| format!("client {index} could not join"))?;
        driving.push(task);
    }
    println!(
        "{} clients joined {} rooms",
        driving.len(),
        workload.clients / workload.room_size
    );
    Ok(driving)
}

/// The live line of a run: a bar, then per-second rates and what is still
/// on its way. Redrawn in place on a terminal; a line a second otherwise
/// (a log file, a pipe).
struct Progress {
    duration: Duration,
    in_place: bool,
    last: (u64, u64),
}

impl Progress {
    /// `counted`: lines sent and delivered before the window began.
    fn new(duration: Duration, counted: (u64, u64)) -> Self {
        use std::io::IsTerminal as _;
        Progress {
            duration,
            in_place: std::io::stdout().is_terminal(),
            last: counted,
        }
    }

    fn show(&mut self, elapsed: Duration, sent: u64, delivered: u64, on_the_way: u64) {
        use std::io::Write as _;
        const WIDTH: usize = 30;
        let done = (elapsed.as_secs_f64() / self.duration.as_secs_f64()).min(1.0);
        let filled = (done * WIDTH as f64) as usize;
        let line = format!(
            "[{}{}] {:>5.1}s  sent {:>9}/s  delivered {:>10}/s  {:>11} in all  {:>8} on the way",
            "#".repeat(filled),
            ".".repeat(WIDTH - filled),
            elapsed.as_secs_f64(),
            sent - self.last.0,
            delivered - self.last.1,
            delivered,
            on_the_way,
        );
        self.last = (sent, delivered);
        if self.in_place {
            print!("\r{line}");
            let _ = std::io::stdout().flush();
        } else {
            println!("{line}");
        }
    }

    fn finish(self) {
        if self.in_place {
            println!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn rooms_must_be_full() {
        let cli = Cli::try_parse_from([
            "loadtest",
            "compare",
            "--clients",
            "15",
            "--room-size",
            "10",
        ])
        .unwrap();
        let Command::Compare {
            workload, rounds, ..
        } = cli.command
        else {
            panic!("parsed as another command")
        };
        assert_eq!(rounds, 1, "one round unless asked");
        assert!(
            workload
                .check()
                .unwrap_err()
                .to_string()
                .contains("multiple of --room-size")
        );
    }

    #[test]
    fn thresholds_decide_the_exit_code() {
        let cli = Cli::try_parse_from([
            "gamewire-loadtest",
            "run",
            "--max-p99",
            "5ms",
            "--min-delivered",
            "1000",
            "--json",
            "out.json",
        ])
        .unwrap();
        let Command::Run { verdict, .. } = cli.command else {
            panic!("a run");
        };
        let mut figures = report::Figures {
            p99_ms: 4.0,
            delivered_per_second: 5000.0,
            ..Default::default()
        };
        assert!(verdict.broken(&figures).is_empty());
        figures.lost = 1;
        figures.p99_ms = 7.5;
        let broken = verdict.broken(&figures);
        assert_eq!(broken.len(), 2, "{broken:?}");
        assert!(
            broken[0].contains("1 lines lost, more than --max-lost 0"),
            "{broken:?}"
        );
        assert!(
            broken[1].contains("p99 7.5 ms is over --max-p99 5.0 ms"),
            "{broken:?}"
        );
        assert_eq!(
            verdict.json.as_deref(),
            Some(std::path::Path::new("out.json"))
        );
    }

    /// A short real run against both servers in this process: every line
    /// is delivered to every member, nothing is lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn both_servers_deliver_every_line() {
        let workload = Workload {
            clients: 20,
            room_size: 5,
            duration: Duration::from_millis(300),
            in_flight: 2,
            rate: None,
            idle: false,
            text_size: 32,
            source_ips: 1,
            websocket: false,
            svg: None,
            // Without one, every line sent is a round trip recorded.
            warmup: Duration::ZERO,
        };
        for kind in [ServerKind::Gamewire, ServerKind::Baseline] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            let server = tokio::spawn(async move {
                match kind {
                    ServerKind::Gamewire => {
                        let _ = gamewire::TcpGameService::with_default_config()
                            .protocol::<gamewire::ChatMessage>()
                            .serve(listener)
                            .await;
                    }
                    ServerKind::Baseline => baseline::serve(listener, DEFAULT_QUEUE).await,
                }
            });
            let (figures, histogram) = run(&[address], &[], None, &workload, kind.name())
                .await
                .unwrap();
            assert!(figures.sent > 0, "{kind:?} sent nothing");
            assert_eq!(figures.lost, 0, "{kind:?}: {}", figures.json());
            assert_eq!(figures.delivered, figures.sent * 5);
            assert_eq!(histogram.len(), figures.sent, "a round trip per line");
            server.abort();
        }
    }

    /// The same over WebSocket, with the load generator's own framing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn websocket_clients_get_every_line() {
        let workload = Workload {
            clients: 20,
            room_size: 5,
            duration: Duration::from_millis(300),
            in_flight: 2,
            rate: None,
            idle: false,
            text_size: 200,
            source_ips: 1,
            websocket: true,
            svg: None,
            warmup: Duration::ZERO,
        };
        let service = gamewire::TcpGameService::with_config(gamewire::TcpServerConfig {
            ws_bind_address: Some("127.0.0.1:0".into()),
            ..gamewire::TcpServerConfig::default()
        })
        .protocol::<gamewire::ChatMessage>();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let serving = service.clone();
        let server = tokio::spawn(async move { serving.serve(listener).await });
        let address = loop {
            if let Some(address) = service.local_ws_addr() {
                break address;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let (figures, histogram) = run(&[address], &[], None, &workload, "gamewire")
            .await
            .unwrap();
        assert!(figures.sent > 0, "sent nothing");
        assert_eq!(figures.lost, 0, "{}", figures.json());
        assert_eq!(figures.delivered, figures.sent * 5);
        assert_eq!(histogram.len(), figures.sent, "a round trip per line");
        server.abort();
    }
}
