use std::collections::HashMap;

use gamewire::client::{Client, ClientError};
use tokio::net::TcpListener;

use super::*;

async fn start() -> (TcpGameService, Client<GameMessage>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let service = server(TcpServerConfig::default());
    let running = service.clone();
    tokio::spawn(async move { running.serve(listener).await.unwrap() });
    (service, Client::connect(address).await.unwrap())
}

fn command(name: &str, params: &[(&str, &str)]) -> GameMessage {
    GameMessage::CustomCommand {
        command_type: name.to_owned(),
        parameters: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>(),
        timestamp: 0,
    }
}

#[tokio::test]
async fn ping_command_answers_pong() {
    let (service, mut client) = start().await;
    client.send(&command("ping", &[])).await.unwrap();
    assert_eq!(
        client.next_message().await.unwrap(),
        GameMessage::CustomResponse {
            command_type: "pong".into(),
            success: true,
            data: Some("pong".into()),
            error_message: None,
        }
    );
    service.shutdown().await;
}

#[tokio::test]
async fn unknown_command_is_reported() {
    let (service, mut client) = start().await;
    client.send(&command("dance", &[])).await.unwrap();
    match client.next_message().await.unwrap() {
        GameMessage::CustomResponse {
            success,
            error_message,
            ..
        } => {
            assert!(!success);
            assert_eq!(error_message.as_deref(), Some("Unknown command"));
        }
        other => panic!("expected a response, got {other:?}"),
    }
    service.shutdown().await;
}

#[tokio::test]
async fn the_store_keeps_values_between_commands() {
    let (service, mut client) = start().await;
    client
        .send(&command("set", &[("key", "level"), ("value", "7")]))
        .await
        .unwrap();
    client.next_message().await.unwrap();
    client
        .send(&command("get", &[("key", "level")]))
        .await
        .unwrap();
    match client.next_message().await.unwrap() {
        GameMessage::CustomResponse { data, .. } => assert_eq!(data.as_deref(), Some("7")),
        other => panic!("expected a response, got {other:?}"),
    }
    service.shutdown().await;
}

#[tokio::test]
async fn nameless_commands_are_dropped_by_the_middleware() {
    let (service, mut client) = start().await;
    client.send(&command("", &[])).await.unwrap();
    // The middleware stops the nameless command; the ping behind it is
    // answered first, which proves nothing came back for the command.
    client.send(&GameMessage::Ping { nonce: 9 }).await.unwrap();
    assert_eq!(
        client.next_message().await.unwrap(),
        GameMessage::Pong { nonce: 9 }
    );
    service.shutdown().await;
}

#[tokio::test]
async fn chat_runs_inside_the_game_protocol() {
    let (service, mut client) = start().await;
    client
        .send(&GameMessage::Chat(ChatMessage::JoinRoom { room_id: 3 }))
        .await
        .unwrap();
    let joined = client.next_message().await.unwrap();
    assert_eq!(
        joined,
        GameMessage::Chat(ChatMessage::RoomJoined {
            room_id: 3,
            users: vec![client.user_id()]
        })
    );
    client
        .send(&GameMessage::Chat(ChatMessage::SendChat {
            room_id: 4,
            text: "hi".into(),
        }))
        .await
        .unwrap();
    match client.next_message().await {
        Err(ClientError::Server(error)) => {
            assert!(error.message.contains("not in room 4"), "{error:?}")
        }
        other => panic!("expected an error frame, got {other:?}"),
    }
    service.shutdown().await;
}
