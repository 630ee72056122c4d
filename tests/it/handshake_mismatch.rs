//! A client built against another protocol is refused with a clear reason.

use gamewire::ChatMessage;
use gamewire::client::{Client, ClientError};
use gamewire::wire::{CloseCode, Frame, Hello};

use crate::support::*;

#[tokio::test]
async fn a_different_fingerprint_is_refused_clearly() {
    let service = chat_server(test_config());
    let address = start(&service).await;
    match Client::<TestMessage>::connect(address).await {
        Err(ClientError::Closed(close)) => {
            assert_eq!(close.code, CloseCode::ProtocolMismatch.as_u16());
            assert!(
                close
                    .reason
                    .starts_with("protocol mismatch: the server speaks `ChatMessage`"),
                "{}",
                close.reason
            );
            assert!(
                close.reason.contains("the client `TestMessage`"),
                "{}",
                close.reason
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // The right protocol is welcome.
    Client::<ChatMessage>::connect(address).await.unwrap();
    service.shutdown().await;
}

#[tokio::test]
async fn an_unknown_envelope_version_is_refused() {
    let service = chat_server(test_config());
    let address = start(&service).await;
    let mut raw = RawClient::connect(address).await;
    raw.send(&Frame::<()>::Hello(Hello {
        version: 99,
        ..hello::<ChatMessage>()
    }))
    .await;
    let close = raw
        .read_close::<ChatMessage>()
        .await
        .expect("a close frame");
    assert_eq!(close.code, CloseCode::ProtocolMismatch.as_u16());
    assert!(
        close.reason.contains("envelope version 99"),
        "{}",
        close.reason
    );
    service.shutdown().await;
}

#[tokio::test]
async fn a_message_before_the_hello_is_refused() {
    let service = chat_server(test_config());
    let address = start(&service).await;
    let mut raw = RawClient::connect(address).await;
    raw.send(&Frame::App(ChatMessage::ListRooms)).await;
    let close = raw
        .read_close::<ChatMessage>()
        .await
        .expect("a close frame");
    assert_eq!(close.code, CloseCode::HandshakeFailed.as_u16());
    assert_eq!(close.reason, "the first frame must be a hello");
    service.shutdown().await;
}
