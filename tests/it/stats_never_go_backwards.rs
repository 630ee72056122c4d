//! The server's counters never go backwards, even while sessions end and
//! their writers finish, and the per-second rates never wrap. (Before,
//! a session's counts left the totals between its unregistering and the
//! end of its writer: the sampler's subtraction wrapped.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gamewire::ConnectionStats;
use gamewire::client::Client;

use crate::support::*;

/// The monotonic counters of a snapshot.
fn counters(stats: &ConnectionStats) -> [u64; 6] {
    [
        stats.total_connections,
        stats.messages_in,
        stats.frames_in,
        stats.bytes_in,
        stats.frames_out,
        stats.bytes_out,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_only_grow_while_sessions_come_and_go() {
    let service = test_server(test_config());
    let address = start(&service).await;
    let churning = Arc::new(AtomicBool::new(true));
    let churn = tokio::spawn({
        let churning = Arc::clone(&churning);
        async move {
            // Sessions of an echo and a goodbye, 8 at a time, for 2.5 s
            // (the rate sampler ticks every second), at most 2,000 rounds.
            let started = std::time::Instant::now();
            let mut rounds = 0u64;
            for round in 0..2000 {
                if started.elapsed() > Duration::from_millis(2500) {
                    break;
                }
                rounds += 1;
                let mut clients = Vec::new();
                for _ in 0..8 {
                    clients.push(Client::<TestMessage>::connect(address).await.unwrap());
                }
                for client in &mut clients {
                    let text = format!("round {round}");
                    let echo = TestMessage::Echo { text };
                    within(client.request(&echo, |_| true)).await.unwrap();
                }
                for client in clients {
                    client.close().await;
                }
            }
            churning.store(false, Ordering::SeqCst);
            rounds
        }
    });
    let connections = service.connection_service();
    let mut last = counters(&connections.connection_stats());
    let mut samples = 0u64;
    while churning.load(Ordering::SeqCst) {
        let now = counters(&connections.connection_stats());
        for (i, (now, last)) in now.iter().zip(&last).enumerate() {
            assert!(now >= last, "counter {i} went from {last} to {now}");
        }
        let stats = service.get_server_stats().await;
        // A wrapped subtraction shows up as a rate near 2^64.
        assert!(stats.messages_per_second < 1 << 40, "{stats}");
        assert!(stats.bytes_out_per_second < 1 << 40, "{stats}");
        last = now;
        samples += 1;
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let rounds = within(churn).await.unwrap();
    assert!(samples > 10, "only {samples} samples were taken");
    assert_eq!(counters(&connections.connection_stats())[0], rounds * 8);
    service.shutdown().await;
}
