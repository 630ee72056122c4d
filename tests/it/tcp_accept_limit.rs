//! At `max_connections`, the next connection is refused with a reason.

use gamewire::ChatMessage;
use gamewire::client::{Client, ClientError};
use gamewire::wire::CloseCode;

use crate::support::*;

#[tokio::test]
async fn connection_over_the_limit_is_refused_with_a_reason() {
    let service = chat_server(gamewire::TcpServerConfig {
        max_connections: 2,
        ..test_config()
    });
    let address = start(&service).await;
    let mut first = Client::<ChatMessage>::connect(address).await.unwrap();
    let mut second = Client::<ChatMessage>::connect(address).await.unwrap();

    match Client::<ChatMessage>::connect(address).await {
        Err(ClientError::Closed(close)) => {
            assert_eq!(close.code, CloseCode::ServerFull.as_u16());
            assert_eq!(close.reason, "the server is full (2 connections)");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        service
            .connection_service()
            .connection_stats()
            .connections_refused,
        1
    );

    for client in [&mut first, &mut second] {
        let rooms = within(client.request(&ChatMessage::ListRooms, |_| true))
            .await
            .unwrap();
        assert!(matches!(rooms, ChatMessage::RoomList { .. }));
    }

    // A freed slot is usable again.
    first.close().await;
    eventually("the slot to free up", || {
        service.connection_service().connection_count() == 1
    })
    .await;
    let mut third = None;
    for _ in 0..100 {
        match Client::<ChatMessage>::connect(address).await {
            Ok(client) => {
                third = Some(client);
                break;
            }
            // The session's task may still be finishing; try again.
            Err(ClientError::Closed(_)) => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            Err(other) => panic!("{other}"),
        }
    }
    assert!(third.is_some(), "a slot freed by a disconnect is reused");
    service.shutdown().await;
}
