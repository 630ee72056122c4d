// ANCHOR: imports
use std::net::SocketAddr;
use std::time::Duration;

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

// ANCHOR: expect_error
/// Sends `message` and returns the error frame's text that must answer it.
async fn expect_error(client: &mut Client<GameMessage>, message: GameMessage) -> String {
    client.send(&message).await.unwrap();
    match client.next_message().await {
        Err(ClientError::Server(error)) => error.message,
        other => panic!("expected an error frame, got {other:?}"),
    }
}
// ANCHOR_END: expect_error

#[test]
fn the_server_is_complete() {
    server(TcpServerConfig::default()).check().unwrap();
}

// ANCHOR: names_test
#[tokio::test]
async fn names_are_remembered_and_unique() {
    let (service, address) = start().await;
    let mut ann = Client::<GameMessage>::connect(address).await.unwrap();
    let mut bob = Client::<GameMessage>::connect(address).await.unwrap();

    let ann_name = GameMessage::SetName { name: "ann".into() };
    ann.send(&ann_name).await.unwrap();
    assert!(matches!(
        ann.next_message().await.unwrap(),
        GameMessage::NameSet { .. }
    ));

    // Bob may not take Ann's name...
    let error = expect_error(&mut bob, ann_name.clone()).await;
    assert_eq!(error, "the name `ann` is taken");

    // ...until she has left.
    ann.close().await;
    let connections = service.connection_service().clone();
    let left = tokio::time::timeout(Duration::from_secs(10), async {
        while connections.connection_count() > 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    left.await.expect("the server saw Ann leave");
    bob.send(&ann_name).await.unwrap();
    assert_eq!(
        bob.next_message().await.unwrap(),
        GameMessage::NameSet {
            user_id: bob.user_id(),
            name: "ann".into()
        }
    );

    service.shutdown().await;
}
// ANCHOR_END: names_test

// ANCHOR: room_test
#[tokio::test]
async fn a_wave_reaches_the_whole_room() {
    let (service, address) = start().await;
    let mut ann = Client::<GameMessage>::connect(address).await.unwrap();
    let mut bob = Client::<GameMessage>::connect(address).await.unwrap();
    let ann_id = ann.user_id();

    // The chat, inside our protocol: both join room 1.
    let join = GameMessage::Chat(ChatMessage::JoinRoom { room_id: 1 });
    ann.send(&join).await.unwrap();
    ann.next_message().await.unwrap(); // RoomJoined
    bob.send(&join).await.unwrap();
    bob.next_message().await.unwrap(); // RoomJoined
    ann.next_message().await.unwrap(); // UserJoined: Bob

    ann.send(&GameMessage::SetName { name: "ann".into() })
        .await
        .unwrap();
    ann.next_message().await.unwrap(); // NameSet
    ann.send(&GameMessage::Wave { room_id: 1 }).await.unwrap();
    let waved = GameMessage::Waved {
        room_id: 1,
        user_id: ann_id,
        name: "ann".into(),
    };
    assert_eq!(ann.next_message().await.unwrap(), waved);
    assert_eq!(bob.next_message().await.unwrap(), waved);

    // Only members may wave at a room.
    let error = expect_error(&mut bob, GameMessage::Wave { room_id: 2 }).await;
    assert_eq!(error, "you are not in room 2");

    service.shutdown().await;
}
// ANCHOR_END: room_test

// ANCHOR: chat_test
#[tokio::test]
async fn the_chat_runs_inside_the_game_protocol() {
    let (service, address) = start().await;
    let mut ann = Client::<GameMessage>::connect(address).await.unwrap();

    let join = GameMessage::Chat(ChatMessage::JoinRoom { room_id: 3 });
    ann.send(&join).await.unwrap();
    assert_eq!(
        ann.next_message().await.unwrap(),
        GameMessage::Chat(ChatMessage::RoomJoined {
            room_id: 3,
            users: vec![ann.user_id()]
        })
    );
    let line = GameMessage::Chat(ChatMessage::SendChat {
        room_id: 3,
        text: "gg".into(),
    });
    ann.send(&line).await.unwrap();
    match ann.next_message().await.unwrap() {
        GameMessage::Chat(ChatMessage::ChatBroadcast { text, .. }) => assert_eq!(text, "gg"),
        other => panic!("expected the chat line, got {other:?}"),
    }
    assert_eq!(service.get_room_status(3), (1, vec![ann.user_id()]));

    service.shutdown().await;
}
// ANCHOR_END: chat_test
