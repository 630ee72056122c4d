//! A user who disconnects leaves every room; empty rooms are cleaned up.

use gamewire::ChatMessage;
use gamewire::client::Client;

use crate::support::*;

async fn join(client: &mut Client<ChatMessage>, room_id: u32) {
    let joined = within(client.request(&ChatMessage::JoinRoom { room_id }, |m| {
        matches!(m, ChatMessage::RoomJoined { .. })
    }))
    .await;
    joined.unwrap();
}

#[tokio::test]
async fn disconnecting_leaves_every_room_and_tells_the_members() {
    let service = chat_server(test_config());
    let address = start(&service).await;
    let mut alice = Client::<ChatMessage>::connect(address).await.unwrap();
    let mut bob = Client::<ChatMessage>::connect(address).await.unwrap();
    for room in [1, 2, 3] {
        join(&mut alice, room).await;
    }
    join(&mut bob, 2).await;
    let alice_id = alice.user_id();
    assert_eq!(
        service.get_room_status(2),
        (2, vec![alice_id, bob.user_id()])
    );

    alice.close().await;
    assert_eq!(
        within(bob.next_message()).await.unwrap(),
        ChatMessage::UserLeft {
            room_id: 2,
            user_id: alice_id
        }
    );
    eventually("alice to leave every room", || {
        service.room_service().rooms_of(alice_id).is_empty()
            && service.get_room_status(1).0 == 0
            && service.get_room_status(3).0 == 0
    })
    .await;
    assert_eq!(service.get_room_status(2), (1, vec![bob.user_id()]));
    assert_eq!(service.get_connection_count().await, 1);

    // Rooms 1 and 3 are empty now; room 2 still has Bob.
    assert_eq!(service.cleanup_empty_rooms().await, 2);
    assert_eq!(service.cleanup_empty_rooms().await, 0);
    let rooms: Vec<u32> = service
        .get_all_rooms_status()
        .iter()
        .map(|s| s.room_id)
        .collect();
    assert_eq!(rooms, vec![2]);
    service.shutdown().await;
}

#[tokio::test]
async fn leaving_a_room_tells_the_others_and_the_leaver() {
    let service = chat_server(test_config());
    let address = start(&service).await;
    let mut alice = Client::<ChatMessage>::connect(address).await.unwrap();
    let mut bob = Client::<ChatMessage>::connect(address).await.unwrap();
    join(&mut alice, 9).await;
    join(&mut bob, 9).await;
    assert!(matches!(
        within(alice.next_message()).await.unwrap(),
        ChatMessage::UserJoined { .. }
    ));
    bob.send(&ChatMessage::LeaveRoom { room_id: 9 })
        .await
        .unwrap();
    assert_eq!(
        within(bob.next_message()).await.unwrap(),
        ChatMessage::RoomLeft { room_id: 9 }
    );
    assert_eq!(
        within(alice.next_message()).await.unwrap(),
        ChatMessage::UserLeft {
            room_id: 9,
            user_id: bob.user_id()
        }
    );
    // Leaving again is an error frame, and the connection lives on.
    bob.send(&ChatMessage::LeaveRoom { room_id: 9 })
        .await
        .unwrap();
    let error = within(bob.next_message()).await.unwrap_err().to_string();
    assert!(error.contains("not in room 9"), "{error}");
    service.shutdown().await;
}
