//! `send_to_user` reaches exactly one user; an unknown user is a typed error.

use gamewire::SendError;
use gamewire::client::Client;

use crate::support::*;

#[tokio::test]
async fn send_to_user_reaches_only_that_user() {
    let service = test_server(test_config());
    let address = start(&service).await;
    let mut alice = Client::<TestMessage>::connect(address).await.unwrap();
    let mut bob = Client::<TestMessage>::connect(address).await.unwrap();
    let mut carol = Client::<TestMessage>::connect(address).await.unwrap();

    let note = TestMessage::Echoed {
        text: "for bob".into(),
    };
    service
        .connection_service()
        .send_to_user(bob.user_id(), &note)
        .await
        .unwrap();
    assert_eq!(within(bob.next_message()).await.unwrap(), note);

    // Alice and Carol got nothing: their next message is their own echo.
    for client in [&mut alice, &mut carol] {
        let reply =
            within(client.request(&TestMessage::Echo { text: "me".into() }, |_| true)).await;
        assert_eq!(reply.unwrap(), TestMessage::Echoed { text: "me".into() });
    }

    // From a handler, through the session.
    alice
        .send(&TestMessage::Whisper {
            to: carol.user_id(),
            text: "psst".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        within(carol.next_message()).await.unwrap(),
        TestMessage::Whispered {
            from: alice.user_id(),
            text: "psst".into()
        }
    );
    service.shutdown().await;
}

#[tokio::test]
async fn unknown_user_is_a_typed_error() {
    let service = test_server(test_config());
    let address = start(&service).await;
    let mut alice = Client::<TestMessage>::connect(address).await.unwrap();
    let error = service
        .connection_service()
        .send_to_user(
            999_999,
            &TestMessage::Echoed {
                text: "nobody".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, SendError::UnknownUser(999_999)),
        "{error:?}"
    );

    // A handler's error for an unknown user reaches the sender as an error frame.
    alice
        .send(&TestMessage::Whisper {
            to: 999_999,
            text: "hello?".into(),
        })
        .await
        .unwrap();
    let error = within(alice.next_message()).await.unwrap_err().to_string();
    assert!(error.contains("user 999999 is not connected"), "{error}");
    service.shutdown().await;
}

#[tokio::test]
async fn messages_of_another_protocol_are_refused() {
    let service = test_server(test_config());
    let address = start(&service).await;
    let alice = Client::<TestMessage>::connect(address).await.unwrap();
    let error = service
        .connection_service()
        .send_to_user(alice.user_id(), &gamewire::ChatMessage::ListRooms)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            SendError::WrongProtocol {
                served: "TestMessage",
                sent: "ChatMessage"
            }
        ),
        "{error:?}"
    );
    service.shutdown().await;
}

/// `broadcast` reaches every connected user once, from outside any handler.
#[tokio::test]
async fn broadcast_reaches_every_user() {
    let service = test_server(test_config());
    let address = start(&service).await;
    let mut clients = Vec::new();
    for _ in 0..5 {
        clients.push(Client::<TestMessage>::connect(address).await.unwrap());
    }
    let news = TestMessage::Echoed {
        text: "server restarts in 5 minutes".into(),
    };
    let reached = service.connection_service().broadcast(&news).await.unwrap();
    assert_eq!(reached, 5);
    for client in &mut clients {
        assert_eq!(within(client.next_message()).await.unwrap(), news);
        // Exactly once: the next message is the client's own echo.
        let echo = TestMessage::Echo { text: "me".into() };
        let reply = within(client.request(&echo, |_| true)).await;
        assert_eq!(reply.unwrap(), TestMessage::Echoed { text: "me".into() });
    }
    service.shutdown().await;
}
