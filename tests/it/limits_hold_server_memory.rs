//! Under the attacks that once drove a server to hundreds of MB, its
//! resident memory stays within the documented per-connection budget.
//!
//! The server runs in a process of its own, so that its memory is its
//! own; the attacks, each from the finding it reproduces at a smaller
//! scale:
//!
//! 1. a client in many rooms stops reading and asks for the room list
//!    2,000 times (finding 2: replies piled up in its queue);
//! 2. a client asks to create 300,000 rooms (finding 4: each was made);
//! 3. four clients say goodbye with their queues full (finding 3: their
//!    writers held what was queued for an hour);
//! 4. fifty clients each send most of a large frame, then stall (finding
//!    9: a partial frame was held for ever).

use std::time::Duration;

use gamewire::client::Client;
use gamewire::wire::{CloseFrame, Frame};
use gamewire::{ChatMessage, TcpServerConfig};
use tokio::io::AsyncWriteExt;

use crate::support::*;

const TEST: &str = "limits_hold_server_memory::server_memory_stays_within_its_budget";
const QUEUE_BYTES: usize = 256 * 1024;
const FRAME_LEN: usize = 64 * 1024;

fn child_config() -> TcpServerConfig {
    TcpServerConfig {
        max_connections: 128,
        outbound_queue_bytes: QUEUE_BYTES,
        max_frame_len: FRAME_LEN,
        frame_timeout: Duration::from_secs(1),
        drain_timeout: Duration::from_secs(1),
        ..test_config()
    }
}

/// Encodes `messages` as one burst of frames.
fn burst(messages: impl IntoIterator<Item = ChatMessage>) -> Vec<u8> {
    let mut bytes = Vec::new();
    for message in messages {
        let frame = gamewire::wire::encode_frame(&Frame::App(message)).unwrap();
        bytes.extend_from_slice(&frame);
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_memory_stays_within_its_budget() {
    if is_child(TEST) {
        let service = chat_server(child_config());
        let address = start(&service).await;
        announce(address);
        // Served until the parent kills this process.
        std::future::pending::<()>().await;
    }
    let (child, address) = spawn_child(TEST).await;
    let pid = child.id().unwrap();

    // Twenty members of fifty rooms each: a thousand rooms to list.
    let mut members = Vec::new();
    for member in 0..20u32 {
        let mut client = Client::<ChatMessage>::connect(address).await.unwrap();
        let joins = (0..50).map(|n| ChatMessage::JoinRoom {
            room_id: member * 50 + n,
        });
        for join in joins {
            client.send(&join).await.unwrap();
        }
        within(client.request(&ChatMessage::ListRooms, |m| {
            matches!(m, ChatMessage::RoomList { .. })
        }))
        .await
        .unwrap();
        members.push(client);
    }
    let baseline = rss_bytes(pid);
    let mut peak = baseline;
    let mut sample = || peak = peak.max(rss_bytes(pid));

    // 1. In 60 rooms, reading nothing, 2,000 room lists of ~6 KB each.
    let (mut lister, _) = RawClient::handshake::<ChatMessage>(address).await;
    let joins = (0..60).map(|room_id| ChatMessage::JoinRoom { room_id });
    let lists = std::iter::repeat_n(ChatMessage::ListRooms, 2000);
    lister
        .socket
        .write_all(&burst(joins.chain(lists)))
        .await
        .unwrap();

    sample();

    // 2. 300,000 rooms asked for by one client, in one write (the server
    // may close it before it is all written).
    let (mut builder, _) = RawClient::handshake::<ChatMessage>(address).await;
    let rooms = (100_000..400_000).map(|room_id| ChatMessage::JoinRoom { room_id });
    let _ = builder.socket.write_all(&burst(rooms)).await;
    sample();

    // 3. Four clients in a busy room, reading nothing, say goodbye.
    let mut leavers = Vec::new();
    for _ in 0..4 {
        let (mut leaver, _) = RawClient::handshake::<ChatMessage>(address).await;
        leaver
            .socket
            .write_all(&burst([ChatMessage::JoinRoom { room_id: 7 }]))
            .await
            .unwrap();
        leavers.push(leaver);
    }
    let mut talker = Client::<ChatMessage>::connect(address).await.unwrap();
    within(talker.request(&ChatMessage::JoinRoom { room_id: 7 }, |m| {
        matches!(m, ChatMessage::RoomJoined { .. })
    }))
    .await
    .unwrap();
    let line = "x".repeat(4000);
    for _ in 0..400 {
        let say = ChatMessage::SendChat {
            room_id: 7,
            text: line.clone(),
        };
        talker.send(&say).await.unwrap();
    }
    for leaver in &mut leavers {
        let goodbye = Frame::<()>::Close(CloseFrame {
            code: 0,
            reason: "bye".into(),
        });
        leaver.send(&goodbye).await;
    }
    sample();

    // 4. Fifty clients send 60 KB of a 64 KB frame, then stall.
    let mut stalled = Vec::new();
    for _ in 0..50 {
        let (mut raw, _) = RawClient::handshake::<ChatMessage>(address).await;
        let mut partial = (FRAME_LEN as u32).to_be_bytes().to_vec();
        partial.resize(4 + 60 * 1024, 0);
        raw.send_bytes(&partial).await;
        stalled.push(raw);
        sample();
    }

    // Watch for three seconds: every stalled frame's time is up by then,
    // and the goodbyes' drain time.
    for _ in 0..60 {
        sample();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let attackers = 1 + 1 + 4 + 50;
    let per_connection = QUEUE_BYTES + FRAME_LEN + 16 * 1024;
    let budget = attackers * per_connection as u64 + 16 * 1024 * 1024;
    let grew = peak.saturating_sub(baseline);
    eprintln!(
        "server RSS: {} KiB at rest, peak {} KiB under attack (+{} KiB; budget {} KiB)",
        baseline / 1024,
        peak / 1024,
        grew / 1024,
        budget / 1024
    );
    assert!(
        grew <= budget,
        "RSS grew by {grew} bytes, over the budget of {budget}"
    );
    drop((members, lister, builder, leavers, stalled, talker));
}
