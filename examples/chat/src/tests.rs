use gamewire::ChatMessage;
use gamewire::client::Client;
use tokio::net::TcpListener;

use super::*;

#[tokio::test]
async fn two_players_join_a_room_and_chat() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let service = server(TcpServerConfig::default());
    let running = service.clone();
    let serving = tokio::spawn(async move { running.serve(listener).await });

    let mut alice = Client::<ChatMessage>::connect(address).await.unwrap();
    let mut bob = Client::<ChatMessage>::connect(address).await.unwrap();
    alice
        .send(&ChatMessage::JoinRoom { room_id: 1 })
        .await
        .unwrap();
    assert!(matches!(
        alice.next_message().await.unwrap(),
        ChatMessage::RoomJoined { room_id: 1, .. }
    ));
    bob.send(&ChatMessage::JoinRoom { room_id: 1 })
        .await
        .unwrap();
    assert!(matches!(
        bob.next_message().await.unwrap(),
        ChatMessage::RoomJoined { room_id: 1, .. }
    ));
    assert_eq!(
        alice.next_message().await.unwrap(),
        ChatMessage::UserJoined {
            room_id: 1,
            user_id: bob.user_id()
        }
    );

    bob.send(&ChatMessage::SendChat {
        room_id: 1,
        text: "hi".into(),
    })
    .await
    .unwrap();
    for client in [&mut alice, &mut bob] {
        match client.next_message().await.unwrap() {
            ChatMessage::ChatBroadcast {
                room_id,
                sender,
                text,
                ..
            } => {
                assert_eq!((room_id, text.as_str()), (1, "hi"));
                assert_ne!(sender, 0);
            }
            other => panic!("expected the chat line, got {other:?}"),
        }
    }
    assert_eq!(service.get_room_status(1).0, 2);

    service.shutdown().await;
    serving.await.unwrap().unwrap();
}
