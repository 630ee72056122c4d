//! `run_message_processing_benchmark`: the original guide's benchmark, over
//! real loopback sockets.
//!
//! It starts a chat server on `127.0.0.1:0` in this process, connects
//! `connections` clients, gives each its own room, and has every client
//! send `messages` chat lines one after another, each waiting for its
//! broadcast to come back. The result is the server's message rate and the
//! round-trip latency percentiles. For load with many clients per room, open
//! loop, memory and a comparison with a hand-written tokio server, use the
//! `gamewire-loadtest` binary.
//!
//! # Examples
//!
//! ```no_run
//! use std::time::Duration;
//! use gamewire::bench::run_message_processing_benchmark;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), gamewire::bench::BenchmarkError> {
//! let result = run_message_processing_benchmark(1000, 100, Duration::from_secs(30)).await?;
//! println!("Messages/sec: {:.0}", result.messages_per_second);
//! println!("Average latency: {:.3}ms", result.avg_latency_ms);
//! # Ok(())
//! # }
//! ```

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::net::TcpListener;

use crate::chat::ChatMessage;
use crate::client::{Client, ClientError};
use crate::config::TcpServerConfig;
use crate::server::{ServerError, TcpGameService};

/// What one benchmark run measured.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BenchmarkResult {
    /// Round trips completed per second, all clients together.
    pub messages_per_second: f64,
    /// Mean round trip, in milliseconds.
    pub avg_latency_ms: f64,
    /// Median round trip, in milliseconds.
    pub p50_latency_ms: f64,
    /// 99th percentile round trip, in milliseconds.
    pub p99_latency_ms: f64,
    /// 99.9th percentile round trip, in milliseconds.
    pub p999_latency_ms: f64,
    /// Slowest round trip, in milliseconds.
    pub max_latency_ms: f64,
    /// Lines sent by all clients.
    pub messages_sent: u64,
    /// Lines that came back before the time limit; a line still on its way
    /// when `duration` ran out is sent but not received.
    pub messages_received: u64,
    /// Clients used.
    pub connections: usize,
    /// Time the clients ran.
    pub elapsed: Duration,
}

/// The benchmark could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchmarkError {
    /// The loopback listener could not be bound.
    #[error("could not bind a loopback port")]
    Bind(#[from] std::io::Error),
    /// The server refused to start.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// A client failed.
    #[error("a benchmark client failed")]
    Client(#[from] ClientError),
    /// A client task panicked.
    #[error("a benchmark client task failed")]
    Task(#[from] tokio::task::JoinError),
}

/// Runs `connections` clients that each send up to `messages` chat lines,
/// one at a time, through a chat server started for the occasion, for at
/// most `duration`.
///
/// # Errors
///
/// When the server cannot start or a client fails.
///
/// # Cancel safety
///
/// Not cancel safe: dropping the future leaves the server running until
/// the runtime stops.
pub async fn run_message_processing_benchmark(
    messages: usize,
    connections: usize,
    duration: Duration,
) -> Result<BenchmarkResult, BenchmarkError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let server = TcpGameService::with_config(TcpServerConfig {
        max_connections: connections + 16,
        ..Default::default()
    })
    .protocol::<ChatMessage>();
    server.check()?;
    let serving = {
        let server = server.clone();
        tokio::spawn(async move { server.serve(listener).await })
    };

    let mut clients = Vec::with_capacity(connections);
    for room_id in 0..connections as u32 {
        let mut client = Client::<ChatMessage>::connect(address).await?;
        client
            .request(&ChatMessage::JoinRoom { room_id }, |m| {
                matches!(m, ChatMessage::RoomJoined { .. })
            })
            .await?;
        clients.push((room_id, client));
    }

    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|(room_id, client)| tokio::spawn(one_client(client, room_id, messages, deadline)))
        .collect();
    let mut latencies = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
        .expect("static histogram bounds are valid");
    let mut sent = 0;
    for task in tasks {
        let (client_sent, client_latencies) = task.await??;
        sent += client_sent;
        let _ = latencies.add(&client_latencies);
    }
    let elapsed = start.elapsed();
    server.shutdown().await;
    let _ = serving.await;

    let ms = |micros: u64| micros as f64 / 1000.0;
    Ok(BenchmarkResult {
        messages_per_second: latencies.len() as f64 / elapsed.as_secs_f64().max(1e-9),
        avg_latency_ms: latencies.mean() / 1000.0,
        p50_latency_ms: ms(latencies.value_at_quantile(0.50)),
        p99_latency_ms: ms(latencies.value_at_quantile(0.99)),
        p999_latency_ms: ms(latencies.value_at_quantile(0.999)),
        max_latency_ms: ms(latencies.max()),
        messages_sent: sent,
        messages_received: latencies.len(),
        connections,
        elapsed,
    })
}

/// One client's loop: send a line, wait for it to come back, repeat.
async fn one_client(
    mut client: Client<ChatMessage>,
    room_id: u32,
    messages: usize,
    deadline: Instant,
) -> Result<(u64, Histogram<u64>), ClientError> {
    let mut latencies = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
        .expect("static histogram bounds are valid");
    let mut sent = 0;
    for n in 0..messages {
        if Instant::now() >= deadline {
            break;
        }
        let line = ChatMessage::SendChat {
            room_id,
            text: format!("benchmark line {n}"),
        };
        let started = Instant::now();
        sent += 1;
        let echoed = client.request(&line, |m| matches!(m, ChatMessage::ChatBroadcast { .. }));
        // The time limit holds even for a line that never comes back.
        match tokio::time::timeout_at(deadline.into(), echoed).await {
            Ok(echoed) => echoed?,
            Err(_) => break,
        };
        latencies.saturating_record((started.elapsed().as_micros() as u64).max(1));
    }
    client.close().await;
    Ok((sent, latencies))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_message_comes_back() {
        let result = run_message_processing_benchmark(25, 4, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(result.messages_sent, 100);
        assert_eq!(result.messages_received, 100);
        assert_eq!(result.connections, 4);
        assert!(result.p50_latency_ms <= result.p99_latency_ms);
        assert!(result.p99_latency_ms <= result.max_latency_ms);
        assert!(result.messages_per_second > 0.0);
    }
}
