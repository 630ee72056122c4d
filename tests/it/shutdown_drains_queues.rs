//! Graceful shutdown delivers every frame already queued, then a close frame.

use gamewire::client::{Client, Incoming};
use gamewire::wire::CloseCode;

use crate::support::*;

const QUEUED: u32 = 500;

#[tokio::test]
async fn shutdown_delivers_queued_frames_then_closes() {
    let config = gamewire::TcpServerConfig {
        outbound_queue_capacity: QUEUED as usize + 8,
        ..test_config()
    };
    let service = test_server(config);
    let address = start(&service).await;
    let mut client = Client::<TestMessage>::connect(address).await.unwrap();

    let connections = service.connection_service();
    for n in 0..QUEUED {
        let message = TestMessage::Counted { n: u64::from(n) };
        connections
            .send_to_user(client.user_id(), &message)
            .await
            .unwrap();
    }
    let stopping = service.clone();
    let shutdown = tokio::spawn(async move { stopping.shutdown().await });

    for n in 0..QUEUED {
        match within(client.recv()).await {
            Some(Incoming::Message(TestMessage::Counted { n: got })) => {
                assert_eq!(got, u64::from(n))
            }
            other => panic!("frame {n}: expected Counted, got {other:?}"),
        }
    }
    match within(client.recv()).await {
        Some(Incoming::Closed(close)) => {
            assert_eq!(close.code, CloseCode::Shutdown.as_u16());
            assert_eq!(close.reason, "the server is shutting down");
        }
        other => panic!("expected the close frame, got {other:?}"),
    }
    within(shutdown).await.unwrap();
    // The listener is gone.
    assert!(tokio::net::TcpStream::connect(address).await.is_err());
}

/// Past the drain time, shutdown stops what is still running: a socket that
/// never finished its handshake, a handler that never returns. Each session
/// still ends properly (it leaves the registry), and shutdown returns.
#[tokio::test]
async fn shutdown_stops_what_outlasts_the_drain_time() {
    let config = gamewire::TcpServerConfig {
        drain_timeout: std::time::Duration::from_millis(200),
        // Far longer than the test's bound: shutdown must not wait for it.
        handshake_timeout: std::time::Duration::from_secs(3600),
        ..test_config()
    };
    let service = test_server(config);
    let address = start(&service).await;
    let mut silent = RawClient::connect(address).await;
    let mut stalled = Client::<TestMessage>::connect(address).await.unwrap();
    let mut idle = Client::<TestMessage>::connect(address).await.unwrap();
    stalled.send(&TestMessage::Stall).await.unwrap();
    let connections = service.connection_service();
    eventually("two sessions", || connections.connection_count() == 2).await;

    within(service.shutdown()).await;

    // The socket still in its handshake is told why it is closed.
    let close = within(silent.read_close::<TestMessage>()).await;
    assert_eq!(
        close.map(|close| close.code),
        Some(CloseCode::Shutdown.as_u16())
    );
    match within(idle.recv()).await {
        Some(Incoming::Closed(close)) => assert_eq!(close.code, CloseCode::Shutdown.as_u16()),
        other => panic!("expected the close frame, got {other:?}"),
    }
    // The stalled session was stopped mid-handler and still cleaned up.
    assert_eq!(connections.connection_count(), 0);
    loop {
        match within(stalled.recv()).await {
            Some(Incoming::Closed(_)) | None => break,
            Some(_) => continue,
        }
    }
}
