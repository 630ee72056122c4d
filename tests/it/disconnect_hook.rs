//! `on_disconnect` hooks see every session that ends, with its rooms and
//! the reason the server gave, if any.

use std::sync::{Arc, Mutex};

use gamewire::client::Client;
use gamewire::wire::CloseCode;
use gamewire::{ChatMessage, Disconnect};

use crate::support::*;

#[tokio::test]
async fn hooks_see_who_left_which_rooms_and_why() {
    let seen: Arc<Mutex<Vec<Disconnect>>> = Arc::default();
    let service = chat_server(test_config()).on_disconnect({
        let seen = Arc::clone(&seen);
        move |gone| seen.lock().unwrap().push(gone.clone())
    });
    let address = start(&service).await;

    let mut leaver = Client::<ChatMessage>::connect(address).await.unwrap();
    for room_id in [4, 5] {
        let joined = within(leaver.request(&ChatMessage::JoinRoom { room_id }, |m| {
            matches!(m, ChatMessage::RoomJoined { .. })
        }))
        .await;
        joined.unwrap();
    }
    let leaver_id = leaver.user_id();
    leaver.close().await;
    eventually("the hook to see the client leave", || {
        seen.lock().unwrap().len() == 1
    })
    .await;
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0].user_id, leaver_id);
        assert_eq!(seen[0].rooms, vec![4, 5]);
        assert_eq!(seen[0].reason, None, "the client went away by itself");
    }

    let kicked = Client::<ChatMessage>::connect(address).await.unwrap();
    assert!(
        service
            .connection_service()
            .disconnect(kicked.user_id(), "cheating")
    );
    eventually("the hook to see the kick", || {
        seen.lock().unwrap().len() == 2
    })
    .await;
    {
        let seen = seen.lock().unwrap();
        let reason = seen[1].reason.as_ref().expect("the server closed it");
        assert_eq!(
            (reason.code, reason.reason.as_str()),
            (CloseCode::Kicked.as_u16(), "cheating")
        );
        assert!(seen[1].rooms.is_empty());
    }
    service.shutdown().await;
}

#[tokio::test]
async fn a_panicking_hook_harms_no_one() {
    let service = chat_server(test_config()).on_disconnect(|_| panic!("a test panic in a hook"));
    let address = start(&service).await;
    let first = Client::<ChatMessage>::connect(address).await.unwrap();
    first.close().await;
    eventually("the first session to end", || {
        service.connection_service().connection_count() == 0
    })
    .await;
    let mut second = Client::<ChatMessage>::connect(address).await.unwrap();
    let rooms = within(second.request(&ChatMessage::ListRooms, |_| true))
        .await
        .unwrap();
    assert!(matches!(rooms, ChatMessage::RoomList { .. }));
    service.shutdown().await;
}
