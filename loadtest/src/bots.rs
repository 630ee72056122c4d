//! Bots: N typed clients of a protocol, each running your async fn for a
//! while, and the figures of the whole run.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use gamewire::Message;
use gamewire::client::{Client, ClientError, Incoming};
use hdrhistogram::Histogram;
use tokio_util::sync::CancellationToken;

use crate::format::{millis, per_second, thousands};

/// What every bot counts, shared.
#[derive(Debug, Default)]
struct Tally {
    sent: AtomicU64,
    received: AtomicU64,
    error_frames: AtomicU64,
}

/// One bot's connection and its view of the run: a typed client that
/// counts what it sends and receives, and times its requests.
#[derive(Debug)]
pub struct Bot<M: Message> {
    client: Client<M>,
    index: usize,
    stop: CancellationToken,
    tally: Arc<Tally>,
    round_trips: Histogram<u64>,
    /// Where the round trips go when the bot is dropped, however its fn
    /// ends.
    done: Option<tokio::sync::oneshot::Sender<Histogram<u64>>>,
}

impl<M: Message> Drop for Bot<M> {
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            let _ = done.send(std::mem::replace(
                &mut self.round_trips,
                Histogram::new(3).expect("3 significant digits"),
            ));
        }
    }
}

impl<M: Message> Bot<M> {
    /// Which bot this is, from 0: for spreading bots over rooms.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The user id the server gave this bot.
    pub fn user_id(&self) -> u32 {
        self.client.user_id()
    }

    /// Whether the run goes on: a bot's loop runs while this holds, then
    /// returns.
    pub fn running(&self) -> bool {
        !self.stop.is_cancelled()
    }

    /// Sends a message.
    ///
    /// # Errors
    ///
    /// When the connection is gone.
    pub async fn send(&mut self, message: &M) -> Result<(), ClientError> {
        self.client.send(message).await?;
        self.tally.sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The next message; `None` once the run is over.
    ///
    /// # Errors
    ///
    /// An error frame, a close frame or a lost connection.
    pub async fn next_message(&mut self) -> Result<Option<M>, ClientError> {
        let stop = self.stop.clone();
        tokio::select! {
            () = stop.cancelled() => Ok(None),
            incoming = self.client.recv() => self.count(incoming).map(Some),
        }
    }

    /// Sends `message` and waits for the first message `is_reply` accepts,
    /// recording the time between as a round trip. Messages in between
    /// (a busy room's lines) are counted and dropped.
    ///
    /// # Errors
    ///
    /// An error frame, a close frame or a lost connection.
    pub async fn request(
        &mut self,
        message: &M,
        is_reply: impl Fn(&M) -> bool,
    ) -> Result<M, ClientError> {
        let sent = Instant::now();
        self.send(message).await?;
        loop {
            let incoming = self.client.recv().await;
            let message = self.count(incoming)?;
            if is_reply(&message) {
                let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                let _ = self.round_trips.record(micros.max(1));
                return Ok(message);
            }
        }
    }

    /// Waits `time`, or less if the run ends first.
    pub async fn pause(&self, time: Duration) {
        tokio::select! {
            () = self.stop.cancelled() => {}
            () = tokio::time::sleep(time) => {}
        }
    }

    fn count(&self, incoming: Option<Incoming<M>>) -> Result<M, ClientError> {
        match incoming {
            Some(Incoming::Message(message)) => {
                self.tally.received.fetch_add(1, Ordering::Relaxed);
                Ok(message)
            }
            Some(Incoming::Error(error)) => {
                self.tally.error_frames.fetch_add(1, Ordering::Relaxed);
                Err(ClientError::Server(error))
            }
            Some(Incoming::Closed(close)) => Err(ClientError::Closed(close)),
            None => Err(ClientError::Disconnected),
        }
    }
}

/// What a run does.
#[derive(Debug, Clone, Parser)]
#[command(about = "Runs bots against a gamewire server and prints what they measured")]
pub struct Plan {
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:7878")]
    pub address: String,
    /// Bots, one connection each.
    #[arg(long, default_value_t = 100)]
    pub bots: usize,
    /// How long the bots run, e.g. 10s or 500ms.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Write the figures as JSON to this file (standard output stays for
    /// people).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Fail (exit code 1) when more bots than this failed.
    #[arg(long, default_value_t = 0)]
    pub max_failed: usize,
    /// Fail when the p99 of the bots' requests is above this, e.g. 5ms.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub max_p99: Option<Duration>,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// Bots started.
    pub bots: usize,
    /// Bots whose connection failed or whose fn returned an error, with
    /// the first few errors.
    pub failed: usize,
    /// The first errors, as text.
    pub errors: Vec<String>,
    /// How long the bots ran.
    pub seconds: f64,
    /// Messages the bots sent.
    pub sent: u64,
    /// Messages the bots received.
    pub received: u64,
    /// Error frames the bots received.
    pub error_frames: u64,
    /// Round trips of [`Bot::request`], in microseconds.
    pub round_trips: Histogram<u64>,
}

impl Report {
    fn percentile_ms(&self, quantile: f64) -> f64 {
        self.round_trips.value_at_quantile(quantile) as f64 / 1000.0
    }

    /// The figures as JSON.
    pub fn json(&self) -> String {
        format!(
            "{{\"bots\":{},\"failed\":{},\"seconds\":{:.3},\"sent\":{},\"received\":{},\"error_frames\":{},\"requests\":{},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"p999_ms\":{:.3},\"max_ms\":{:.3}}}",
            self.bots,
            self.failed,
            self.seconds,
            self.sent,
            self.received,
            self.error_frames,
            self.round_trips.len(),
            self.percentile_ms(0.5),
            self.percentile_ms(0.99),
            self.percentile_ms(0.999),
            self.round_trips.max() as f64 / 1000.0,
        )
    }

    /// The thresholds of `plan` this run breaks, as sentences.
    pub fn broken(&self, plan: &Plan) -> Vec<String> {
        let mut broken = Vec::new();
        if self.failed > plan.max_failed {
            broken.push(format!(
                "{} bots failed, more than --max-failed {}",
                self.failed, plan.max_failed
            ));
        }
        if let Some(max) = plan.max_p99
            && self.percentile_ms(0.99) > max.as_secs_f64() * 1000.0
        {
            broken.push(format!(
                "p99 {} is over --max-p99 {}",
                millis(self.percentile_ms(0.99)),
                millis(max.as_secs_f64() * 1000.0)
            ));
        }
        broken
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rate = |n: u64| per_second(n as f64 / self.seconds.max(1e-9));
        writeln!(
            f,
            "bots          {} ({} failed)",
            thousands(self.bots as u64),
            self.failed
        )?;
        writeln!(
            f,
            "sent          {} messages, {} a second",
            thousands(self.sent),
            rate(self.sent)
        )?;
        writeln!(
            f,
            "received      {} messages, {} a second",
            thousands(self.received),
            rate(self.received)
        )?;
        writeln!(f, "error frames  {}", thousands(self.error_frames))?;
        write!(
            f,
            "requests      {}: p50 {}, p99 {}, p99.9 {}, max {}",
            thousands(self.round_trips.len()),
            millis(self.percentile_ms(0.5)),
            millis(self.percentile_ms(0.99)),
            millis(self.percentile_ms(0.999)),
            millis(self.round_trips.max() as f64 / 1000.0)
        )?;
        for error in &self.errors {
            write!(f, "\nfailed bot:   {error}")?;
        }
        Ok(())
    }
}

/// Runs `plan.bots` bots of protocol `M`, each running `bot` on its own
/// connection until `plan.duration` is over (a bot whose fn returns early
/// is done early); returns what they measured.
///
/// # Errors
///
/// None yet: a bot that cannot connect or fails is counted in the report.
pub async fn run<M, F, Fut>(plan: &Plan, bot: F) -> anyhow::Result<Report>
where
    M: Message,
    F: Fn(Bot<M>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let stop = CancellationToken::new();
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(plan.bots);
    for index in 0..plan.bots {
        let (bot, stop, tally, address) = (
            bot.clone(),
            stop.clone(),
            Arc::clone(&tally),
            plan.address.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let client = Client::<M>::connect(address.as_str()).await?;
            let (done, recorded) = tokio::sync::oneshot::channel();
            let me = Bot {
                client,
                index,
                stop,
                tally,
                round_trips: Histogram::new_with_bounds(1, 60_000_000, 3)?,
                done: Some(done),
            };
            bot(me).await?;
            Ok::<_, anyhow::Error>(
                recorded
                    .await
                    .unwrap_or_else(|_| Histogram::new(3).expect("3 significant digits")),
            )
        }));
    }
    tokio::time::sleep(plan.duration).await;
    stop.cancel();
    let seconds = started.elapsed().as_secs_f64();
    let mut round_trips = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let (mut failed, mut errors) = (0, Vec::new());
    for task in tasks {
        match tokio::time::timeout(Duration::from_secs(10), task).await {
            Ok(Ok(Ok(histogram))) => round_trips.add(&histogram)?,
            Ok(Ok(Err(error))) => {
                failed += 1;
                if errors.len() < 5 {
                    errors.push(format!("{error:#}"));
                }
            }
            _ => {
                failed += 1;
                if errors.len() < 5 {
                    errors.push("did not end within 10 s of the run's end".to_owned());
                }
            }
        }
    }
    Ok(Report {
        bots: plan.bots,
        failed,
        errors,
        seconds,
        sent: tally.sent.load(Ordering::Relaxed),
        received: tally.received.load(Ordering::Relaxed),
        error_frames: tally.error_frames.load(Ordering::Relaxed),
        round_trips,
    })
}

/// The command line of a load test of your bots: parses a [`Plan`] from
/// the arguments (`--help` lists them), runs the bots, prints the report,
/// writes `--json`, and exits with code 1 when a threshold is broken.
pub fn main<M, F, Fut>(bot: F) -> ExitCode
where
    M: Message,
    F: Fn(Bot<M>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let plan = Plan::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: no Tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let report = match runtime.block_on(run::<M, F, Fut>(&plan, bot)) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    println!("{report}");
    if let Some(path) = &plan.json
        && let Err(error) = std::fs::write(path, report.json() + "\n")
    {
        eprintln!("error: cannot write {}: {error}", path.display());
        return ExitCode::FAILURE;
    }
    let broken = report.broken(&plan);
    if broken.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("the run failed its thresholds: {}", broken.join("; "));
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use gamewire::{ChatMessage, TcpGameService};

    use super::*;

    /// A chat server on 127.0.0.1:0, and its address.
    async fn chat_server() -> (TcpGameService, std::net::SocketAddr) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let service = TcpGameService::with_default_config().protocol::<ChatMessage>();
        let serving = service.clone();
        tokio::spawn(async move { serving.serve(listener).await });
        (service, address)
    }

    async fn chatter(mut bot: Bot<ChatMessage>) -> anyhow::Result<()> {
        let room_id = (bot.index() / 5) as u32;
        bot.request(&ChatMessage::JoinRoom { room_id }, |m| {
            matches!(m, ChatMessage::RoomJoined { .. })
        })
        .await?;
        let me = bot.user_id();
        while bot.running() {
            let line = ChatMessage::SendChat {
                room_id,
                text: "gg".into(),
            };
            bot.request(
                &line,
                |m| matches!(m, ChatMessage::ChatBroadcast { sender, .. } if *sender == me),
            )
            .await?;
            bot.pause(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bots_run_their_fn_and_are_measured() {
        let (service, address) = chat_server().await;
        let plan = Plan::parse_from([
            "bots",
            "--address",
            &address.to_string(),
            "--bots",
            "20",
            "--duration",
            "300ms",
        ]);
        let report = run(&plan, chatter).await.unwrap();
        assert_eq!(report.failed, 0, "{report}");
        assert!(report.round_trips.len() > 20, "{report}");
        assert_eq!(
            report.sent,
            report.round_trips.len(),
            "every request was answered"
        );
        assert!(
            report.received >= report.sent,
            "each line comes back to the room: {report}"
        );
        assert!(report.broken(&plan).is_empty());
        assert!(report.json().starts_with("{\"bots\":20,\"failed\":0,"));
        service.shutdown().await;
    }

    /// A bot that fails is counted, with its error.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_bot_is_counted() {
        let (service, address) = chat_server().await;
        let plan = Plan::parse_from([
            "bots",
            "--address",
            &address.to_string(),
            "--bots",
            "3",
            "--duration",
            "100ms",
        ]);
        let report = run(&plan, |mut bot: Bot<ChatMessage>| async move {
            // Leaving a room one is not in is an error frame.
            bot.request(&ChatMessage::LeaveRoom { room_id: 9 }, |_| true)
                .await?;
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(report.failed, 3);
        assert_eq!(report.error_frames, 3);
        assert!(report.errors[0].contains("not in room 9"), "{report}");
        assert_eq!(report.broken(&plan).len(), 1);
        service.shutdown().await;
    }
}
