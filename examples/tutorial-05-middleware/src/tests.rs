// ANCHOR: imports
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use gamewire::client::{Client, ClientError};
use tokio::net::TcpListener;

use super::*;
// ANCHOR_END: imports

// ANCHOR: start
/// Serves `server` on a free port of 127.0.0.1, in the background.
/// Returns a handle to the server (for `shutdown` and statistics) and the
/// address to connect to.
async fn start() -> (TcpGameService, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let service = server(TcpServerConfig::default());
    let running = service.clone();
    tokio::spawn(async move { running.serve(listener).await.unwrap() });
    (service, address)
}
// ANCHOR_END: start

// ANCHOR: within
/// Awaits `future`; a server that never answers fails the test after a
/// generous bound instead of hanging it. This bounds a wait, it does not
/// measure speed.
async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .expect("no answer within 10 s")
}
// ANCHOR_END: within

// ANCHOR: player
/// A connected player who chose `name` and is in room `room_id`.
async fn player(address: SocketAddr, name: &str, room_id: u32) -> Client<GameMessage> {
    let mut client = within(Client::<GameMessage>::connect(address))
        .await
        .unwrap();
    let set_name = GameMessage::SetName { name: name.into() };
    within(client.request(&set_name, |m| matches!(m, GameMessage::NameSet { .. })))
        .await
        .unwrap();
    join(&mut client, room_id).await;
    client
}

/// Joins `room_id`; whatever arrives before the answer is kept for later.
async fn join(client: &mut Client<GameMessage>, room_id: u32) {
    let join = GameMessage::Chat(ChatMessage::JoinRoom { room_id });
    let joined = |m: &GameMessage| matches!(m, GameMessage::Chat(ChatMessage::RoomJoined { .. }));
    within(client.request(&join, joined)).await.unwrap();
}

/// The next message that is not a chat notice (someone joined or left).
async fn next_game_message(client: &mut Client<GameMessage>) -> Result<GameMessage, ClientError> {
    loop {
        match within(client.next_message()).await? {
            GameMessage::Chat(ChatMessage::UserJoined { .. } | ChatMessage::UserLeft { .. }) => {}
            other => return Ok(other),
        }
    }
}
// ANCHOR_END: player

// ANCHOR: check_test
/// Every variant clients send has a handler, every `State<T>` a handler
/// takes was provided, no two middlewares share an order: the checks
/// `start` makes, without a socket.
#[test]
fn the_server_is_complete() {
    server(TcpServerConfig::default()).check().unwrap();
}
// ANCHOR_END: check_test

// ANCHOR: clean_chat_test
#[tokio::test]
async fn blank_chat_lines_are_dropped_and_the_others_trimmed() {
    let (service, address) = start().await;
    let mut ann = player(address, "ann", 1).await;

    for text in ["   ", "  good luck  "] {
        let line = GameMessage::Chat(ChatMessage::SendChat {
            room_id: 1,
            text: text.into(),
        });
        ann.send(&line).await.unwrap();
    }
    // One connection's messages are handled in order, so had the blank
    // line been answered, that answer would come first.
    match next_game_message(&mut ann).await.unwrap() {
        GameMessage::Chat(ChatMessage::ChatBroadcast { text, .. }) => {
            assert_eq!(text, "good luck");
        }
        other => panic!("expected the chat line, got {other:?}"),
    }

    service.shutdown().await;
}
// ANCHOR_END: clean_chat_test

// ANCHOR: names_required_test
#[tokio::test]
async fn a_game_needs_players_with_names() {
    let (service, address) = start().await;
    let mut ann = within(Client::<GameMessage>::connect(address))
        .await
        .unwrap();
    join(&mut ann, 1).await;
    let mut bob = player(address, "bob", 1).await;

    // NamesRequired answers for the handler, with an error frame.
    let start_game = GameMessage::StartGame { room_id: 1 };
    ann.send(&start_game).await.unwrap();
    match next_game_message(&mut ann).await {
        Err(ClientError::Server(error)) => {
            assert_eq!(error.message, "choose a name before you play: send SetName");
        }
        other => panic!("expected an error frame, got {other:?}"),
    }
    let stats = service.connection_service().connection_stats();
    assert_eq!(stats.handler_errors, 1);

    // With a name, the game starts.
    let set_name = GameMessage::SetName { name: "ann".into() };
    within(ann.request(&set_name, |m| matches!(m, GameMessage::NameSet { .. })))
        .await
        .unwrap();
    ann.send(&start_game).await.unwrap();
    for client in [&mut ann, &mut bob] {
        let board = next_game_message(client).await.unwrap();
        assert!(matches!(board, GameMessage::Board { .. }), "{board:?}");
    }

    service.shutdown().await;
}
// ANCHOR_END: names_required_test
