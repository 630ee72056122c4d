//! Compatible upgrades: a server at revision 2 of a locked protocol
//! accepts a client built against revision 1, answers it, and never sends
//! it a variant of revision 2; a client of another protocol is refused.

use gamewire::client::{Client, ClientError};
use gamewire::prelude::*;
use gamewire::wire::{CloseCode, ErrorCode};

use crate::support::*;

/// The server's protocol: revision 2, as its lock records.
pub mod now {
    use gamewire::prelude::*;

    #[message(lock = "protocol_revisions.lock")]
    #[derive(PartialEq)]
    pub enum Game {
        #[gamewire(direction = to_server)]
        Move { x: i32, y: i32 },
        #[gamewire(direction = to_client)]
        Moved { x: i32, y: i32 },
        #[gamewire(direction = to_server)]
        Shout { text: String },
        #[gamewire(direction = to_client)]
        Shouted { text: String },
        #[gamewire(direction = to_server)]
        Jump { height: u8 },
        #[gamewire(direction = to_client)]
        Jumped { height: u8 },
    }
}

/// What clients built against revision 1 know.
pub mod released {
    use gamewire::prelude::*;

    #[message]
    #[derive(PartialEq)]
    pub enum Game {
        #[gamewire(direction = to_server, unhandled)]
        Move { x: i32, y: i32 },
        #[gamewire(direction = to_client)]
        Moved { x: i32, y: i32 },
        #[gamewire(direction = to_server, unhandled)]
        Shout { text: String },
        #[gamewire(direction = to_client)]
        Shouted { text: String },
    }
}

/// A protocol of the same name that changed a released variant.
pub mod forked {
    use gamewire::prelude::*;

    #[message]
    pub enum Game {
        #[gamewire(direction = to_server, unhandled)]
        Move { x: i64, y: i64 },
    }
}

#[handler(now::Game::Move)]
async fn moved(m: now::Move) -> now::Moved {
    now::Moved { x: m.x, y: m.y }
}

/// A shout goes to everyone: as `Shouted`, which every revision knows,
/// then as `Jumped`, which only revision 2 knows.
#[handler(now::Game::Shout)]
async fn shout(s: now::Shout, connections: ConnectionService) -> anyhow::Result<()> {
    connections
        .broadcast(&now::Game::Shouted { text: s.text })
        .await?;
    connections
        .broadcast(&now::Game::Jumped { height: 1 })
        .await?;
    Ok(())
}

#[handler(now::Game::Jump)]
async fn jump(j: now::Jump) -> now::Jumped {
    now::Jumped { height: j.height }
}

#[test]
fn the_lock_gives_each_variant_its_revision() {
    use gamewire::Message;
    let info = <now::Game as Message>::PROTOCOL;
    assert_eq!(info.revision, 2);
    let since: Vec<(&str, u32)> = info.variants.iter().map(|v| (v.name, v.since)).collect();
    assert_eq!(
        since,
        [
            ("Move", 1),
            ("Moved", 1),
            ("Shout", 1),
            ("Shouted", 1),
            ("Jump", 2),
            ("Jumped", 2)
        ]
    );
    let released = <released::Game as Message>::PROTOCOL.fingerprint;
    assert_eq!(
        info.revision_of(released),
        Some(1),
        "revision 1 is what released clients send"
    );
    assert_eq!(info.revision_of(info.fingerprint), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_revision_1_talks_to_a_server_of_revision_2() {
    let service = TcpGameService::with_config(test_config()).protocol::<now::Game>();
    let address = start(&service).await;
    let mut old = Client::<released::Game>::connect(address).await.unwrap();
    let mut new = Client::<now::Game>::connect(address).await.unwrap();

    // A reply of revision 1 reaches the old client.
    let reply = within(old.request(&released::Game::Move { x: 1, y: 2 }, |_| true))
        .await
        .unwrap();
    assert_eq!(reply, released::Game::Moved { x: 1, y: 2 });

    // A broadcast of both revisions: the old client gets only what it knows.
    new.send(&now::Game::Shout { text: "hi".into() })
        .await
        .unwrap();
    assert_eq!(
        within(new.next_message()).await.unwrap(),
        now::Game::Shouted { text: "hi".into() }
    );
    assert_eq!(
        within(new.next_message()).await.unwrap(),
        now::Game::Jumped { height: 1 }
    );
    assert_eq!(
        within(old.next_message()).await.unwrap(),
        released::Game::Shouted { text: "hi".into() }
    );
    // Nothing undecodable follows: the next thing the old client gets is
    // the reply to its next request.
    let reply = within(old.request(&released::Game::Move { x: 3, y: 4 }, |_| true))
        .await
        .unwrap();
    assert_eq!(reply, released::Game::Moved { x: 3, y: 4 });

    // A room with both: a revision-2 message reaches the new member only,
    // a revision-1 message both.
    let rooms = service.room_service();
    rooms.join_room(9, old.user_id()).unwrap();
    rooms.join_room(9, new.user_id()).unwrap();
    assert_eq!(
        rooms
            .broadcast_to_room(9, &now::Game::Jumped { height: 4 }, None)
            .unwrap(),
        1
    );
    assert_eq!(
        rooms
            .broadcast_to_room(
                9,
                &now::Game::Shouted {
                    text: "room".into()
                },
                None
            )
            .unwrap(),
        2
    );
    assert_eq!(
        within(old.next_message()).await.unwrap(),
        released::Game::Shouted {
            text: "room".into()
        }
    );
    assert_eq!(
        within(new.next_message()).await.unwrap(),
        now::Game::Jumped { height: 4 }
    );

    // send_to_user of a revision-2 variant to the old client is a typed
    // error for the sender.
    let refused = service
        .connection_service()
        .send_to_user(old.user_id(), &now::Game::Jumped { height: 2 })
        .await;
    assert!(
        matches!(
            refused,
            Err(gamewire::SendError::UnknownToClient {
                revision: 1,
                variant: "Jumped",
                ..
            })
        ),
        "{refused:?}"
    );
    service.shutdown().await;
}

#[tokio::test]
async fn a_reply_the_client_cannot_read_is_an_error_frame() {
    let service = TcpGameService::with_config(test_config()).protocol::<now::Game>();
    let address = start(&service).await;
    // A revision-1 client that sends `Jump` by its raw id (4) gets an error
    // frame rather than a `Jumped` it could not decode.
    let mut raw = RawClient::connect(address).await;
    raw.send(&gamewire::wire::Frame::<()>::Hello(
        hello::<released::Game>(),
    ))
    .await;
    assert!(matches!(
        raw.read::<released::Game>().await,
        Some(gamewire::wire::Frame::Welcome(_))
    ));
    let jump =
        gamewire::wire::encode_frame(&gamewire::wire::Frame::App(now::Game::Jump { height: 3 }))
            .unwrap();
    raw.send_bytes(&jump).await;
    match raw.read::<released::Game>().await {
        Some(gamewire::wire::Frame::Error(error)) => {
            assert_eq!(error.code, ErrorCode::HandlerFailed.as_u16());
            assert!(error.message.contains("revision 1"), "{}", error.message);
        }
        other => panic!("expected an error frame, got {other:?}"),
    }
    service.shutdown().await;
}

#[tokio::test]
async fn a_client_of_another_protocol_is_still_refused() {
    let service = TcpGameService::with_config(test_config()).protocol::<now::Game>();
    let address = start(&service).await;
    match Client::<forked::Game>::connect(address).await {
        Err(ClientError::Closed(close)) => {
            assert_eq!(close.code, CloseCode::ProtocolMismatch.as_u16());
        }
        other => panic!("expected a refusal, got {:?}", other.map(|c| c.user_id())),
    }
    service.shutdown().await;
}

/// The chat's lock holds the types its fields carry, as they are.
// ANCHOR: check_lock
#[test]
fn the_chat_matches_its_lock() {
    gamewire::schema::check_lock::<gamewire::ChatMessage>().unwrap();
}
// ANCHOR_END: check_lock

/// A protocol whose released type gained a field since its lock.
pub mod stale {
    use gamewire::prelude::*;

    #[payload]
    pub struct Spot {
        pub x: i32,
        pub y: i32,
        pub z: i32,
    }

    #[message(lock = "protocol_lock_types.lock")]
    pub enum Map {
        #[gamewire(direction = to_server, unhandled)]
        Go(Spot),
    }
}

/// What the macro cannot see, the test-time check does: a field added to a
/// released struct. (Never run this one with `GAMEWIRE_UPDATE_LOCKS` set:
/// it would write the change into its lock.)
#[test]
fn a_changed_type_fails_the_lock_check() {
    let error = gamewire::schema::check_lock::<stale::Map>().unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("the type `Spot` that `Map` carries changed from `{x:i32,y:i32}` to `{x:i32,y:i32,z:i32}`"),
        "{text}"
    );
    assert_eq!(
        gamewire::schema::check_lock::<released::Game>(),
        Err(gamewire::schema::LockError::NotLocked("Game"))
    );
}

/// A protocol that retired a variant older clients may still send.
pub mod retiring {
    use gamewire::prelude::*;

    #[message]
    pub enum Arcade {
        #[gamewire(retired)]
        Coin,
        #[gamewire(direction = to_server, unhandled)]
        Play,
    }
}

#[tokio::test]
async fn a_retired_variant_is_answered_not_handled() {
    let service = TcpGameService::with_config(test_config()).protocol::<retiring::Arcade>();
    let address = start(&service).await;
    let mut client = Client::<retiring::Arcade>::connect(address).await.unwrap();
    client.send(&retiring::Arcade::Coin).await.unwrap();
    match within(client.next_message()).await {
        Err(ClientError::Server(error)) => {
            assert_eq!(error.code, ErrorCode::NotAllowed.as_u16());
            assert_eq!(
                error.message,
                "`Arcade::Coin` is retired: this server no longer handles it"
            );
        }
        other => panic!("expected an error frame, got {other:?}"),
    }
    assert_eq!(
        service
            .connection_service()
            .connection_stats()
            .protocol_errors,
        0
    );
    service.shutdown().await;
}
