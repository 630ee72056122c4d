//! The heartbeat disconnects a silent peer and keeps a live one.

use std::time::Duration;

use gamewire::ChatMessage;
use gamewire::client::Client;
use gamewire::wire::{CloseCode, Frame};

use crate::support::*;

#[tokio::test]
async fn silent_peer_is_reaped_and_leaves_its_rooms() {
    let config = gamewire::TcpServerConfig {
        heartbeat_interval: Duration::from_millis(50),
        heartbeat_timeout: Duration::from_millis(300),
        ..test_config()
    };
    let service = chat_server(config);
    let address = start(&service).await;

    // The Rust client answers pings by itself, so it stays.
    let mut live = Client::<ChatMessage>::connect(address).await.unwrap();
    // The raw peer joins a room, then never sends anything again.
    let (mut silent, welcome) = RawClient::handshake::<ChatMessage>(address).await;
    assert_eq!(welcome.heartbeat_timeout_ms, 300);
    silent
        .send(&Frame::App(ChatMessage::JoinRoom { room_id: 1 }))
        .await;

    let mut pings = 0;
    let close = loop {
        match silent
            .read::<ChatMessage>()
            .await
            .expect("the server closes with a reason")
        {
            Frame::Ping { .. } => pings += 1,
            Frame::Close(close) => break close,
            _ => {}
        }
    };
    assert!(pings >= 1, "the server pinged before giving up");
    assert_eq!(close.code, CloseCode::HeartbeatTimeout.as_u16());
    assert!(silent.read::<ChatMessage>().await.is_none());

    eventually("the silent peer to leave its room", || {
        service.get_room_status(1).0 == 0
    })
    .await;
    assert_eq!(service.heartbeat_service().timed_out_count(), 1);
    assert_eq!(
        service
            .connection_service()
            .connection_stats()
            .heartbeat_timeouts,
        1
    );

    // Long past the timeout, the live client is still served.
    let rooms = within(live.request(&ChatMessage::ListRooms, |_| true))
        .await
        .unwrap();
    assert!(matches!(rooms, ChatMessage::RoomList { .. }));
    assert_eq!(service.get_connection_count().await, 1);
    service.shutdown().await;
}
