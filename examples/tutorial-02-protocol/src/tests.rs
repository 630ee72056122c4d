// ANCHOR: imports
use std::net::SocketAddr;

use gamewire::client::{Client, ClientError};
use tokio::net::TcpListener;

use super::*;
// ANCHOR_END: imports

/// Serves `server` on a free port of 127.0.0.1, in the background.
async fn start() -> (TcpGameService, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let service = server(TcpServerConfig::default());
    let running = service.clone();
    tokio::spawn(async move { running.serve(listener).await.unwrap() });
    (service, address)
}

// ANCHOR: check_test
/// The same checks `start` makes before it binds: every variant clients
/// send has a handler, every `State<T>` a handler takes was provided.
#[test]
fn the_server_is_complete() {
    server(TcpServerConfig::default()).check().unwrap();
}
// ANCHOR_END: check_test

// ANCHOR: ping_test
#[tokio::test]
async fn a_ping_gets_its_pong() {
    let (service, address) = start().await;
    let mut client = Client::<GameMessage>::connect(address).await.unwrap();

    client.send(&GameMessage::Ping { nonce: 42 }).await.unwrap();
    let reply = client.next_message().await.unwrap();
    assert_eq!(reply, GameMessage::Pong { nonce: 42 });

    service.shutdown().await;
}
// ANCHOR_END: ping_test

// ANCHOR: name_tests
#[tokio::test]
async fn a_good_name_is_accepted_trimmed() {
    let (service, address) = start().await;
    let mut client = Client::<GameMessage>::connect(address).await.unwrap();

    let request = GameMessage::SetName {
        name: "  ann ".into(),
    };
    client.send(&request).await.unwrap();
    let reply = client.next_message().await.unwrap();
    assert_eq!(
        reply,
        GameMessage::NameSet {
            user_id: client.user_id(),
            name: "ann".into()
        }
    );

    service.shutdown().await;
}

#[tokio::test]
async fn a_bad_name_is_an_error_frame_and_the_connection_lives_on() {
    let (service, address) = start().await;
    let mut client = Client::<GameMessage>::connect(address).await.unwrap();

    let request = GameMessage::SetName { name: "   ".into() };
    client.send(&request).await.unwrap();
    match client.next_message().await {
        Err(ClientError::Server(error)) => {
            assert_eq!(error.message, "a name cannot be empty");
        }
        other => panic!("expected an error frame, got {other:?}"),
    }

    // The error was about one message; the connection is fine.
    client.send(&GameMessage::Ping { nonce: 7 }).await.unwrap();
    let reply = client.next_message().await.unwrap();
    assert_eq!(reply, GameMessage::Pong { nonce: 7 });

    service.shutdown().await;
}
// ANCHOR_END: name_tests

// ANCHOR: direction_test
#[tokio::test]
async fn clients_may_not_send_what_only_the_server_sends() {
    let (service, address) = start().await;
    let mut client = Client::<GameMessage>::connect(address).await.unwrap();

    client.send(&GameMessage::Pong { nonce: 1 }).await.unwrap();
    let error = client.next_message().await.unwrap_err();
    assert!(
        error.to_string().contains("is sent by the server"),
        "{error}"
    );

    service.shutdown().await;
}
// ANCHOR_END: direction_test

#[test]
fn names_are_checked() {
    assert_eq!(check_name(" bob ").unwrap(), "bob");
    assert!(check_name("").is_err());
    assert!(check_name("abcdefghijklmnopq").is_err());
    assert_eq!(
        check_name("ééééééééééééééééé".get(..32).unwrap())
            .unwrap()
            .chars()
            .count(),
        16
    );
}
