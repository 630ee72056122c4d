//! Oversized, garbage and unknown frames affect only the connection that
//! sent them.

use gamewire::client::Client;
use gamewire::wire::{CloseCode, ErrorCode, Frame};
use gamewire::{Message, TcpServerConfig};

use crate::support::*;

fn small_frames() -> TcpServerConfig {
    TcpServerConfig {
        max_frame_len: 1024,
        max_protocol_errors: 3,
        ..test_config()
    }
}

async fn still_echoes(client: &mut Client<TestMessage>) {
    let reply = within(client.request(&TestMessage::Echo { text: "ok?".into() }, |_| true)).await;
    assert_eq!(reply.unwrap(), TestMessage::Echoed { text: "ok?".into() });
}

/// Reads up to the close frame, which must say the frame was too large.
async fn expect_frame_too_large(raw: &mut RawClient) {
    let close = raw
        .read_close::<TestMessage>()
        .await
        .expect("a close frame");
    assert_eq!(close.code, CloseCode::FrameTooLarge.as_u16());
    assert!(
        close.reason.contains("exceeds the limit of 1024 bytes"),
        "{}",
        close.reason
    );
}

#[tokio::test]
async fn oversized_length_prefix_closes_only_that_connection() {
    let service = test_server(small_frames());
    let address = start(&service).await;
    let mut bystander = Client::<TestMessage>::connect(address).await.unwrap();
    let (mut raw, _) = RawClient::handshake::<TestMessage>(address).await;

    // Announce 4 GiB; the server must refuse without waiting for (or
    // allocating) the payload.
    raw.send_bytes(&u32::MAX.to_be_bytes()).await;
    expect_frame_too_large(&mut raw).await;
    assert!(
        raw.read::<TestMessage>().await.is_none(),
        "the connection is closed"
    );

    still_echoes(&mut bystander).await;
    service.shutdown().await;
}

/// The same limit and the same close code hold for the very first frame,
/// before any handshake.
#[tokio::test]
async fn oversized_first_frame_closes_with_frame_too_large() {
    let service = test_server(small_frames());
    let address = start(&service).await;
    let mut raw = RawClient::connect(address).await;
    raw.send_bytes(&2048u32.to_be_bytes()).await;
    expect_frame_too_large(&mut raw).await;
    service.shutdown().await;
}

#[tokio::test]
async fn garbage_gets_error_frames_then_a_close() {
    let service = test_server(small_frames());
    let address = start(&service).await;
    let mut bystander = Client::<TestMessage>::connect(address).await.unwrap();
    let (mut raw, _) = RawClient::handshake::<TestMessage>(address).await;

    // A well-framed payload that is not an envelope (variant 200).
    raw.send_bytes(&[0, 0, 0, 3, 200, 1, 2]).await;
    match raw.read::<TestMessage>().await {
        Some(Frame::Error(error)) => assert_eq!(error.code, ErrorCode::Undecodable.as_u16()),
        other => panic!("expected an error frame, got {other:?}"),
    }
    // The connection still works after one bad frame.
    raw.send(&Frame::App(TestMessage::Echo {
        text: "still here".into(),
    }))
    .await;
    assert_eq!(
        raw.read::<TestMessage>().await,
        Some(Frame::App(TestMessage::Echoed {
            text: "still here".into()
        }))
    );
    // Two more bad frames reach `max_protocol_errors` (3): errors, then a close.
    raw.send_bytes(&[0, 0, 0, 1, 99, 0, 0, 0, 1, 98]).await;
    let mut errors = 0;
    let close = loop {
        match raw.read::<TestMessage>().await {
            Some(Frame::Error(_)) => errors += 1,
            Some(Frame::Close(close)) => break close,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(errors, 2);
    assert_eq!(close.code, CloseCode::TooManyErrors.as_u16());

    still_echoes(&mut bystander).await;
    assert_eq!(
        service
            .connection_service()
            .connection_stats()
            .protocol_errors,
        3
    );
    service.shutdown().await;
}

#[tokio::test]
async fn unknown_variant_id_gets_an_error_frame() {
    let service = test_server(small_frames());
    let address = start(&service).await;
    let (mut raw, _) = RawClient::handshake::<TestMessage>(address).await;
    let unknown = TestMessage::PROTOCOL.variants.len() as u8 + 40;
    // Envelope variant 6 (application message), then a variant id no one declared.
    raw.send_bytes(&[0, 0, 0, 2, 6, unknown]).await;
    match raw.read::<TestMessage>().await {
        Some(Frame::Error(error)) => {
            assert_eq!(error.code, ErrorCode::Undecodable.as_u16());
            assert!(error.message.contains("variant"), "{}", error.message);
        }
        other => panic!("expected an error frame, got {other:?}"),
    }
    service.shutdown().await;
}

#[tokio::test]
async fn server_to_client_variants_are_refused_from_clients() {
    let service = test_server(small_frames());
    let address = start(&service).await;
    let mut client = Client::<TestMessage>::connect(address).await.unwrap();
    client
        .send(&TestMessage::Echoed {
            text: "not mine to send".into(),
        })
        .await
        .unwrap();
    let error = within(client.next_message()).await.unwrap_err().to_string();
    assert!(
        error.contains("`TestMessage::Echoed` is sent by the server"),
        "{error}"
    );
    still_echoes(&mut client).await;
    service.shutdown().await;
}
