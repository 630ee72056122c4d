//! Admission: a cap per IP address, a cap on sockets still in their
//! handshake, a smaller frame limit before the hello is accepted, and the
//! listen backlog asked of the kernel.

use std::time::Duration;

use gamewire::TcpServerConfig;
use gamewire::client::Client;
use gamewire::wire::{CloseCode, Frame, Hello};

use crate::support::*;

/// Expects `raw` to be refused with `ServerFull` and a reason mentioning
/// `because`.
async fn expect_refused(raw: &mut RawClient, because: &str) {
    let close = raw
        .read_close::<TestMessage>()
        .await
        .expect("a close frame");
    assert_eq!(close.code, CloseCode::ServerFull.as_u16(), "{close:?}");
    assert!(close.reason.contains(because), "{}", close.reason);
}

#[tokio::test]
async fn one_address_holds_at_most_its_share() {
    let service = test_server(TcpServerConfig {
        max_connections_per_ip: 2,
        ..test_config()
    });
    let address = start(&service).await;
    let first = Client::<TestMessage>::connect(address).await.unwrap();
    let _second = Client::<TestMessage>::connect(address).await.unwrap();
    let mut third = RawClient::connect(address).await;
    expect_refused(&mut third, "too many connections from your address (2)").await;
    assert_eq!(
        service
            .connection_service()
            .connection_stats()
            .connections_refused,
        1
    );
    // A place given back is a place to take.
    first.close().await;
    let mut again = None;
    for _ in 0..200 {
        match Client::<TestMessage>::connect(address).await {
            Ok(client) => {
                again = Some(client);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    assert!(again.is_some(), "the freed place was never given again");
    service.shutdown().await;
}

#[tokio::test]
async fn silent_sockets_hold_only_the_handshake_places() {
    let service = test_server(TcpServerConfig {
        max_pending_handshakes: 2,
        handshake_timeout: Duration::from_millis(500),
        ..test_config()
    });
    let address = start(&service).await;
    let mut silent: Vec<RawClient> = Vec::new();
    for _ in 0..2 {
        silent.push(RawClient::connect(address).await);
    }
    // The kernel hands connections to `accept` in the order they were
    // made, so the two silent ones hold their places before the third.
    let mut third = RawClient::connect(address).await;
    expect_refused(&mut third, "in their handshake (2)").await;
    // The silent ones are closed when their handshake time is up, and
    // their places go to those who speak.
    for raw in &mut silent {
        let close = raw.read_close::<TestMessage>().await.expect("a close");
        assert_eq!(close.code, CloseCode::HandshakeFailed.as_u16());
    }
    let client = within(Client::<TestMessage>::connect(address)).await;
    assert!(client.is_ok(), "{client:?}");
    service.shutdown().await;
}

#[tokio::test]
async fn the_hello_is_held_to_the_handshake_limit() {
    let service = test_server(test_config());
    let address = start(&service).await;
    let mut raw = RawClient::connect(address).await;
    let hello = Hello {
        token: "t".repeat(10_000),
        ..hello::<TestMessage>()
    };
    raw.send(&Frame::<()>::Hello(hello)).await;
    let close = raw.read_close::<TestMessage>().await.expect("a close");
    assert_eq!(close.code, CloseCode::FrameTooLarge.as_u16());
    assert!(
        close.reason.contains("limit of 4096 bytes"),
        "{}",
        close.reason
    );
    // After the handshake, the session's own limit (64 KiB) applies.
    let mut client = Client::<TestMessage>::connect(address).await.unwrap();
    let text = "x".repeat(10_000);
    let reply = within(client.request(&TestMessage::Echo { text: text.clone() }, |_| true)).await;
    assert_eq!(reply.unwrap(), TestMessage::Echoed { text });
    service.shutdown().await;
}

/// `start` asks the kernel for `listen_backlog`, as `ss` reports it (the
/// Send-Q of a listening socket); `TcpListener::bind` would ask for 128.
#[tokio::test]
async fn start_asks_for_the_configured_backlog() {
    if !tool_available("ss", "iproute2") {
        return;
    }
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let service = test_server(TcpServerConfig {
        bind_address: format!("127.0.0.1:{port}"),
        listen_backlog: 777,
        ..test_config()
    });
    let running = service.clone();
    let serving = tokio::spawn(async move { running.start().await });
    eventually("the server to listen", || service.local_addr().is_some()).await;
    let output = std::process::Command::new("ss")
        .args(["-ltnH", &format!("sport = :{port}")])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&output.stdout);
    let send_q: Vec<&str> = listing
        .lines()
        .filter_map(|line| line.split_whitespace().nth(2))
        .collect();
    assert_eq!(send_q, ["777"], "ss said: {listing}");
    service.shutdown().await;
    within(serving).await.unwrap().unwrap();
}
