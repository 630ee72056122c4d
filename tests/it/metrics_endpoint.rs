//! `/metrics` on the operator's listener: Prometheus text, every metric
//! named `gamewire_*`, figures that move with the traffic and counters
//! that never go backwards.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use gamewire::client::Client;
use gamewire::{ChatMessage, TcpServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// One scrape: the samples, by name with labels.
async fn scrape(address: SocketAddr) -> BTreeMap<String, f64> {
    let mut socket = TcpStream::connect(address).await.unwrap();
    let request = "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    within(socket.read_to_string(&mut response)).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    body.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (name, value) = line.rsplit_once(' ').unwrap();
            assert!(name.starts_with("gamewire_"), "{line}");
            (name.to_owned(), value.parse().unwrap())
        })
        .collect()
}

fn get(samples: &BTreeMap<String, f64>, name: &str) -> f64 {
    *samples
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {:#?}", samples.keys().collect::<Vec<_>>()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_figures_move_and_never_go_backwards() {
    let service = chat_server(TcpServerConfig {
        metrics_bind_address: Some("127.0.0.1:0".into()),
        ..test_config()
    });
    let address = start(&service).await;
    eventually("the metrics listener", || {
        service.local_metrics_addr().is_some()
    })
    .await;
    let metrics = service.local_metrics_addr().unwrap();
    let before = scrape(metrics).await;
    assert_eq!(get(&before, "gamewire_connections"), 0.0);

    let mut alice = Client::<ChatMessage>::connect(address).await.unwrap();
    let mut bob = Client::<ChatMessage>::connect(address).await.unwrap();
    for client in [&mut alice, &mut bob] {
        client
            .send(&ChatMessage::JoinRoom { room_id: 5 })
            .await
            .unwrap();
        within(client.next_message()).await.unwrap();
    }
    alice
        .send(&ChatMessage::LeaveRoom { room_id: 99 })
        .await
        .unwrap();
    // Bob's arrival comes first, then the error frame.
    while within(alice.next_message()).await.is_ok() {}
    let during = scrape(metrics).await;
    assert_eq!(get(&during, "gamewire_connections"), 2.0);
    assert_eq!(get(&during, "gamewire_connections_opened_total"), 2.0);
    assert_eq!(get(&during, "gamewire_rooms"), 1.0);
    assert_eq!(get(&during, "gamewire_room_members"), 2.0);
    assert_eq!(
        get(
            &during,
            "gamewire_error_frames_total{code=\"handler_failed\"}"
        ),
        1.0
    );
    assert_eq!(get(&during, "gamewire_messages_received_total"), 3.0);
    assert!(
        get(&during, "gamewire_frames_received_total") >= 5.0,
        "hellos and messages"
    );
    assert!(get(&during, "gamewire_bytes_sent_total") > 0.0);
    assert_eq!(
        get(
            &during,
            "gamewire_handler_duration_seconds_count{variant=\"JoinRoom\"}"
        ),
        2.0
    );
    let le_inf = "gamewire_handler_duration_seconds_bucket{variant=\"JoinRoom\",le=\"+Inf\"}";
    assert_eq!(
        get(&during, le_inf),
        2.0,
        "the +Inf bucket holds every call"
    );
    let le_1s = "gamewire_handler_duration_seconds_bucket{variant=\"JoinRoom\",le=\"1\"}";
    assert_eq!(
        get(&during, le_1s),
        2.0,
        "buckets are cumulative: two joins under a second"
    );

    bob.close().await;
    eventually("bob's session to end", || {
        service
            .connection_service()
            .connection_stats()
            .current_connections
            == 1
    })
    .await;
    let after = scrape(metrics).await;
    assert_eq!(
        get(
            &after,
            "gamewire_connections_closed_total{code=\"client_closed\"}"
        ),
        1.0
    );
    assert_eq!(get(&after, "gamewire_room_members"), 1.0);
    for scrape in [&during, &after] {
        for (name, value) in scrape.iter().filter(|(name, _)| name.contains("_total")) {
            let earlier = before.get(name).copied().unwrap_or(0.0);
            assert!(*value >= earlier, "{name} went from {earlier} to {value}");
        }
    }
    for (name, value) in after.iter().filter(|(name, _)| name.contains("_total")) {
        assert!(
            *value >= during.get(name).copied().unwrap_or(0.0),
            "{name} went backwards"
        );
    }
    service.shutdown().await;
}

/// The pool's and the scheduler's figures are there when they are on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_and_the_scheduler_report_when_on() {
    let service = chat_server(TcpServerConfig {
        metrics_bind_address: Some("127.0.0.1:0".into()),
        enable_enhanced_memory_pool: true,
        enable_async_scheduler: true,
        ..test_config()
    });
    let address = start(&service).await;
    eventually("the metrics listener", || {
        service.local_metrics_addr().is_some()
    })
    .await;
    let mut client = Client::<ChatMessage>::connect(address).await.unwrap();
    client.send(&ChatMessage::ListRooms).await.unwrap();
    within(client.next_message()).await.unwrap();
    let samples = scrape(service.local_metrics_addr().unwrap()).await;
    assert!(
        get(&samples, "gamewire_pool_hits_total") + get(&samples, "gamewire_pool_misses_total")
            > 0.0
    );
    for priority in ["critical", "normal", "background"] {
        get(
            &samples,
            &format!("gamewire_scheduler_jobs_queued{{priority=\"{priority}\"}}"),
        );
    }
    service.shutdown().await;
}
