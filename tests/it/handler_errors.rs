//! Handler errors become error frames; a handler panic harms no one else.

use gamewire::client::{Client, ClientError};
use gamewire::wire::ErrorCode;

use crate::support::*;

#[tokio::test]
async fn handler_error_becomes_an_error_frame() {
    let service = test_server(test_config());
    let address = start(&service).await;
    let mut client = Client::<TestMessage>::connect(address).await.unwrap();
    client
        .send(&TestMessage::Fail {
            reason: "no such item".into(),
        })
        .await
        .unwrap();
    match within(client.next_message()).await {
        Err(ClientError::Server(error)) => {
            assert_eq!(error.code, ErrorCode::HandlerFailed.as_u16());
            assert_eq!(error.message, "no such item");
        }
        other => panic!("expected an error frame, got {other:?}"),
    }
    // The connection lives on.
    let reply = within(client.request(&TestMessage::Count, |_| true))
        .await
        .unwrap();
    assert_eq!(reply, TestMessage::Counted { n: 1 });
    assert_eq!(
        service
            .connection_service()
            .connection_stats()
            .handler_errors,
        1
    );
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_panic_leaves_server_and_others_working() {
    let service = test_server(test_config());
    let address = start(&service).await;
    let mut victim = Client::<TestMessage>::connect(address).await.unwrap();
    let mut other = Client::<TestMessage>::connect(address).await.unwrap();

    victim.send(&TestMessage::Explode).await.unwrap();
    match within(victim.next_message()).await {
        Err(ClientError::Server(error)) => {
            assert_eq!(error.code, ErrorCode::HandlerPanicked.as_u16());
            assert!(error.message.contains("Explode"), "{}", error.message);
        }
        other => panic!("expected an error frame, got {other:?}"),
    }
    for client in [&mut victim, &mut other] {
        let reply = within(client.request(
            &TestMessage::Echo {
                text: "alive".into(),
            },
            |_| true,
        ))
        .await;
        assert_eq!(
            reply.unwrap(),
            TestMessage::Echoed {
                text: "alive".into()
            }
        );
    }
    // New connections are still accepted.
    Client::<TestMessage>::connect(address).await.unwrap();
    assert_eq!(
        service
            .connection_service()
            .connection_stats()
            .handler_panics,
        1
    );
    service.shutdown().await;
}

/// A `HandlerError` is a `std::error::Error`: `?` takes it into `anyhow`,
/// and a report walks its causes, each said once.
#[test]
fn handler_errors_are_std_errors() {
    use anyhow::Context as _;
    use gamewire::HandlerError;

    fn forward(error: HandlerError) -> anyhow::Result<()> {
        Err(error)?
    }
    let io = std::io::Error::other("disk full");
    let cause = anyhow::Error::new(io).context("saving the match");
    let error = HandlerError::new(Box::<dyn std::error::Error + Send + Sync>::from(cause));
    let report = format!("{:#}", forward(error).context("turn 7").unwrap_err());
    assert_eq!(report, "turn 7: saving the match: disk full");
}

/// A reply too large to be a frame is not dropped in silence: the sender
/// gets an error frame saying so, and the session goes on.
#[tokio::test]
async fn a_reply_that_cannot_be_sent_is_an_error_frame() {
    let service = test_server(test_config());
    let address = start(&service).await;
    let mut client = Client::<TestMessage>::connect(address).await.unwrap();
    client.send(&TestMessage::Oversize).await.unwrap();
    match within(client.next_message()).await {
        Err(ClientError::Server(error)) => {
            assert_eq!(error.code, ErrorCode::HandlerFailed.as_u16());
            assert_eq!(
                error.message,
                "the reply could not be sent: could not encode frame: the frame exceeds the 16 MiB limit"
            );
        }
        other => panic!("expected an error frame, got {other:?}"),
    }
    let reply = within(client.request(&TestMessage::Count, |_| true)).await;
    assert_eq!(reply.unwrap(), TestMessage::Counted { n: 1 });
    service.shutdown().await;
}
