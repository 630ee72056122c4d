//! Rooms are bounded in number, per session and in members, each answered
//! with an error frame; a room listing names at most 1,000 rooms.

use gamewire::client::{Client, ClientError};
use gamewire::wire::{ErrorCode, Frame};
use gamewire::{ChatMessage, TcpServerConfig};
use tokio::io::AsyncWriteExt;

use crate::support::*;

async fn join(client: &mut Client<ChatMessage>, room_id: u32) -> Result<ChatMessage, ClientError> {
    within(client.request(&ChatMessage::JoinRoom { room_id }, |m| {
        matches!(m, ChatMessage::RoomJoined { .. })
    }))
    .await
}

/// The error frame of a refused join.
fn refusal(result: Result<ChatMessage, ClientError>) -> String {
    match result {
        Err(ClientError::Server(error)) => {
            assert_eq!(error.code, ErrorCode::HandlerFailed.as_u16());
            error.message
        }
        other => panic!("expected an error frame, got {other:?}"),
    }
}

#[tokio::test]
async fn joins_past_a_bound_get_an_error_frame() {
    let service = chat_server(TcpServerConfig {
        max_rooms: 3,
        max_rooms_per_session: 2,
        max_room_members: 2,
        ..test_config()
    });
    let address = start(&service).await;
    let mut ann = Client::<ChatMessage>::connect(address).await.unwrap();
    let mut bob = Client::<ChatMessage>::connect(address).await.unwrap();
    let mut cat = Client::<ChatMessage>::connect(address).await.unwrap();

    join(&mut ann, 1).await.unwrap();
    join(&mut ann, 2).await.unwrap();
    let third = refusal(join(&mut ann, 3).await);
    assert_eq!(
        third,
        "you are in 2 rooms, the most one may be in; leave one first"
    );

    join(&mut bob, 1).await.unwrap();
    let full = refusal(join(&mut cat, 1).await);
    assert_eq!(full, "room 1 is full (2 members)");

    join(&mut bob, 3).await.unwrap();
    let too_many = refusal(join(&mut cat, 4).await);
    assert_eq!(
        too_many,
        "the server has as many rooms as it may (3); join one that exists"
    );
    // Refusals create nothing.
    assert_eq!(service.room_service().room_count(), 3);
    // Every one is still served.
    for client in [&mut ann, &mut bob, &mut cat] {
        let list = within(client.request(&ChatMessage::ListRooms, |m| {
            matches!(m, ChatMessage::RoomList { .. })
        }))
        .await;
        assert!(list.is_ok(), "{list:?}");
    }
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_list_names_the_thousand_rooms_of_lowest_id() {
    let service = chat_server(TcpServerConfig {
        max_rooms_per_session: 2000,
        ..test_config()
    });
    let address = start(&service).await;
    let (mut raw, _) = RawClient::handshake::<ChatMessage>(address).await;
    // 1,200 joins in one write, highest ids first, then the listing.
    let mut burst = Vec::new();
    for room_id in (1..=1200).rev() {
        let join = Frame::App(ChatMessage::JoinRoom { room_id });
        burst.extend_from_slice(&gamewire::wire::encode_frame(&join).unwrap());
    }
    let list = Frame::App(ChatMessage::ListRooms);
    burst.extend_from_slice(&gamewire::wire::encode_frame(&list).unwrap());
    raw.socket.write_all(&burst).await.unwrap();
    let rooms = loop {
        match raw.read::<ChatMessage>().await.expect("the stream goes on") {
            Frame::App(ChatMessage::RoomList { rooms }) => break rooms,
            Frame::App(ChatMessage::RoomJoined { .. }) | Frame::Ping { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    let ids: Vec<u32> = rooms.iter().map(|room| room.room_id).collect();
    assert_eq!(ids, (1..=1000).collect::<Vec<u32>>());
    assert!(rooms.iter().all(|room| room.user_count == 1));
    assert_eq!(service.room_service().room_count(), 1200);
    service.shutdown().await;
}
