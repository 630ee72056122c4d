// ANCHOR: imports
use std::net::SocketAddr;

use gamewire::ChatMessage;
use gamewire::client::Client;
use tokio::net::TcpListener;

use super::*;
// ANCHOR_END: imports

// ANCHOR: start
/// Serves `server` on a free port of 127.0.0.1, in the background.
async fn start() -> (TcpGameService, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let service = server(TcpServerConfig::default());
    let running = service.clone();
    tokio::spawn(async move { running.serve(listener).await.unwrap() });
    (service, address)
}
// ANCHOR_END: start

// ANCHOR: chat_test
#[tokio::test]
async fn two_players_chat_in_a_room() {
    let (service, address) = start().await;
    let mut ann = Client::<ChatMessage>::connect(address).await.unwrap();
    let mut bob = Client::<ChatMessage>::connect(address).await.unwrap();
    let (ann_id, bob_id) = (ann.user_id(), bob.user_id());

    // Ann joins room 1 and is alone in it.
    ann.send(&ChatMessage::JoinRoom { room_id: 1 })
        .await
        .unwrap();
    let joined = ann.next_message().await.unwrap();
    assert_eq!(
        joined,
        ChatMessage::RoomJoined {
            room_id: 1,
            users: vec![ann_id]
        }
    );

    // Bob joins: he gets the member list, Ann is told.
    bob.send(&ChatMessage::JoinRoom { room_id: 1 })
        .await
        .unwrap();
    let joined = bob.next_message().await.unwrap();
    assert_eq!(
        joined,
        ChatMessage::RoomJoined {
            room_id: 1,
            users: vec![ann_id, bob_id]
        }
    );
    let notice = ann.next_message().await.unwrap();
    assert_eq!(
        notice,
        ChatMessage::UserJoined {
            room_id: 1,
            user_id: bob_id
        }
    );

    // Ann says hello; both of them receive the line, stamped with her id.
    let hello = ChatMessage::SendChat {
        room_id: 1,
        text: "hello".into(),
    };
    ann.send(&hello).await.unwrap();
    for client in [&mut ann, &mut bob] {
        match client.next_message().await.unwrap() {
            ChatMessage::ChatBroadcast { sender, text, .. } => {
                assert_eq!((sender, text.as_str()), (ann_id, "hello"));
            }
            other => panic!("expected the chat line, got {other:?}"),
        }
    }

    service.shutdown().await;
}
// ANCHOR_END: chat_test

// ANCHOR: error_test
#[tokio::test]
async fn talking_outside_a_room_is_an_error() {
    let (service, address) = start().await;
    let mut ann = Client::<ChatMessage>::connect(address).await.unwrap();

    let stray = ChatMessage::SendChat {
        room_id: 9,
        text: "anyone?".into(),
    };
    ann.send(&stray).await.unwrap();
    let error = ann.next_message().await.unwrap_err();
    assert!(
        error.to_string().contains("you are not in room 9"),
        "{error}"
    );

    service.shutdown().await;
}
// ANCHOR_END: error_test
