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
