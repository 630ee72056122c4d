//! Many clients in several rooms: every member gets every line exactly
//! once, in each sender's order; non-members get nothing.

use std::collections::HashMap;

use gamewire::ChatMessage;
use gamewire::client::Client;

use crate::support::*;

const ROOMS: u32 = 3;
const PER_ROOM: usize = 4;
const LINES: usize = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_get_every_line_once_in_sender_order() {
    let service = chat_server(test_config());
    let address = start(&service).await;

    let mut clients: Vec<(u32, Client<ChatMessage>)> = Vec::new();
    for room in 1..=ROOMS {
        for _ in 0..PER_ROOM {
            let mut client = Client::<ChatMessage>::connect(address).await.unwrap();
            client
                .send(&ChatMessage::JoinRoom { room_id: room })
                .await
                .unwrap();
            let joined = within(client.request(&ChatMessage::ListRooms, |m| {
                matches!(m, ChatMessage::RoomList { .. })
            }))
            .await;
            joined.unwrap();
            clients.push((room, client));
        }
    }
    let mut all_joined = clients;
    for (room, client) in &all_joined {
        let sender = client.sender();
        let room = *room;
        let user = client.user_id();
        tokio::spawn(async move {
            for n in 0..LINES {
                let text = format!("{user}:{n}");
                sender
                    .send(&ChatMessage::SendChat {
                        room_id: room,
                        text,
                    })
                    .await
                    .unwrap();
            }
        });
    }

    for (room, client) in &mut all_joined {
        let mut next_from: HashMap<u32, usize> = HashMap::new();
        let mut received = 0;
        while received < PER_ROOM * LINES {
            match within(client.next_message()).await.unwrap() {
                // Notices of members who joined after this client.
                ChatMessage::UserJoined { room_id, .. }
                | ChatMessage::RoomJoined { room_id, .. } => {
                    assert_eq!(room_id, *room)
                }
                ChatMessage::ChatBroadcast {
                    room_id,
                    sender,
                    text,
                    ..
                } => {
                    assert_eq!(room_id, *room, "a line from another room arrived");
                    let expected = next_from.entry(sender).or_default();
                    assert_eq!(
                        text,
                        format!("{sender}:{expected}"),
                        "out of order or duplicated"
                    );
                    *expected += 1;
                    received += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(
            next_from.len(),
            PER_ROOM,
            "lines from every member of the room"
        );
        assert!(next_from.values().all(|&n| n == LINES));
    }
    // Nothing more arrives: each line came exactly once.
    for (_, client) in &mut all_joined {
        client.send(&ChatMessage::ListRooms).await.unwrap();
        assert!(matches!(
            within(client.next_message()).await.unwrap(),
            ChatMessage::RoomList { .. }
        ));
    }
    service.shutdown().await;
}
