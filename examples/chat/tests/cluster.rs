//! The chat example as a cluster: two processes started as the README
//! says (`--redis URL`, each on its own ports), a room with a member on
//! each, and `kill -9` of one of them, after which the other tells its
//! members that the dead node's users left, within the documented bound
//! (the default lease, 10 s, and a third of it: 13.3 s).
//!
//! Needs Debian's `redis-server`; without it the test says it was
//! skipped, and under CI (`CI` set) it fails.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use gamewire::ChatMessage;
use gamewire::client::{Client, Incoming};
use gamewire_tests::redis::RedisServer;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The bound the book gives for the default lease: 10 s + 10 s / 3.
const BOUND: Duration = Duration::from_millis(13_334);

/// How long anything else may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(20);

/// Starts a chat node on `redis`, on free ports, and returns it with the
/// address of its TCP listener, read from its log.
async fn node(redis: &str) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_example-chat"))
        .args(["--bind", "127.0.0.1:0", "--ws-bind", "127.0.0.1:0"])
        .args(["--redis", redis])
        .env_remove("GAMEWIRE_CONFIG")
        .env_remove("GAMEWIRE_METRICS_BIND")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the chat server starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let address = tokio::time::timeout(PATIENCE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("gamewire server listening")
                && let Some(rest) = line.split("address=").nth(1)
            {
                let address = rest.split_whitespace().next().unwrap();
                return address.parse::<SocketAddr>().unwrap();
            }
        }
        panic!("the chat server exited before it listened");
    })
    .await
    .expect("the chat server listens in time");
    // The rest of its log is read and dropped, so that it never blocks
    // on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, address)
}

/// The next chat message matching `wanted`, skipping others.
async fn expect(
    client: &mut Client<ChatMessage>,
    wanted: impl Fn(&ChatMessage) -> bool,
) -> ChatMessage {
    tokio::time::timeout(PATIENCE, async {
        loop {
            match client.recv().await.expect("the connection is open") {
                Incoming::Message(message) if wanted(&message) => return message,
                _ => {}
            }
        }
    })
    .await
    .expect("the message in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_chat_processes_share_a_room_and_outlive_a_kill() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let (_survivor, address_a) = node(&redis.url()).await;
    let (mut doomed, address_b) = node(&redis.url()).await;
    let mut alice = Client::<ChatMessage>::connect(address_a).await.unwrap();
    let mut bob = Client::<ChatMessage>::connect(address_b).await.unwrap();
    assert_ne!(alice.user_id(), bob.user_id(), "ids are the cluster's");

    alice
        .send(&ChatMessage::JoinRoom { room_id: 5 })
        .await
        .unwrap();
    expect(&mut alice, |m| matches!(m, ChatMessage::RoomJoined { .. })).await;
    // Bob's node learns of Alice's membership through Redis: he joins
    // once RoomJoined names her.
    let deadline = Instant::now() + PATIENCE;
    loop {
        bob.send(&ChatMessage::JoinRoom { room_id: 5 })
            .await
            .unwrap();
        let ChatMessage::RoomJoined { users, .. } =
            expect(&mut bob, |m| matches!(m, ChatMessage::RoomJoined { .. })).await
        else {
            unreachable!()
        };
        if users.contains(&alice.user_id()) {
            break;
        }
        assert!(Instant::now() < deadline, "bob's node never saw alice");
        bob.send(&ChatMessage::LeaveRoom { room_id: 5 })
            .await
            .unwrap();
        expect(&mut bob, |m| matches!(m, ChatMessage::RoomLeft { .. })).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let joined = expect(
        &mut alice,
        |m| matches!(m, ChatMessage::UserJoined { user_id, .. } if *user_id == bob.user_id()),
    )
    .await;
    assert_eq!(
        joined,
        ChatMessage::UserJoined {
            room_id: 5,
            user_id: bob.user_id()
        }
    );

    let text = "hello from the other process".to_owned();
    bob.send(&ChatMessage::SendChat {
        room_id: 5,
        text: text.clone(),
    })
    .await
    .unwrap();
    let heard = expect(&mut alice, |m| {
        matches!(m, ChatMessage::ChatBroadcast { .. })
    })
    .await;
    let ChatMessage::ChatBroadcast {
        sender, text: got, ..
    } = heard
    else {
        unreachable!()
    };
    assert_eq!((sender, got), (bob.user_id(), text));

    // SIGKILL: no goodbye reaches Redis; the lease runs out.
    let killed = Instant::now();
    doomed.kill().await.unwrap();
    let left = expect(&mut alice, |m| matches!(m, ChatMessage::UserLeft { .. })).await;
    let took = killed.elapsed();
    assert_eq!(
        left,
        ChatMessage::UserLeft {
            room_id: 5,
            user_id: bob.user_id()
        }
    );
    // The documented bound, with two seconds for a busy machine.
    assert!(
        took <= BOUND + Duration::from_secs(2),
        "UserLeft came {took:?} after the kill"
    );

    // The survivor goes on serving.
    let mut carol = Client::<ChatMessage>::connect(address_a).await.unwrap();
    carol
        .send(&ChatMessage::JoinRoom { room_id: 5 })
        .await
        .unwrap();
    let ChatMessage::RoomJoined { users, .. } =
        expect(&mut carol, |m| matches!(m, ChatMessage::RoomJoined { .. })).await
    else {
        unreachable!()
    };
    let mut users = users;
    users.sort_unstable();
    let mut expected = vec![alice.user_id(), carol.user_id()];
    expected.sort_unstable();
    assert_eq!(
        users, expected,
        "the dead node's user is gone from the room"
    );
}
