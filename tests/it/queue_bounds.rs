//! Outbound queues are bounded in bytes and in time: a client that reads
//! nothing costs at most `outbound_queue_bytes`, one whose writes stay
//! blocked is closed after `write_timeout`, a closing writer keeps its
//! connection's place and ends within `drain_timeout`, and a client that
//! pipelines more requests than its queue holds gets every reply.

use std::time::Duration;

use gamewire::TcpServerConfig;
use gamewire::client::Client;
use gamewire::wire::{CloseCode, CloseFrame, Frame};
use tokio::io::AsyncWriteExt;

use crate::support::*;

/// 256 KiB: a few frames of the floods below.
const QUEUE_BYTES: usize = 256 * 1024;

fn blobs(target: u32, count: u32) -> TestMessage {
    TestMessage::Flood {
        target,
        count,
        size: 32 * 1024,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_reader_costs_at_most_its_queue_bytes() {
    let service = test_server(TcpServerConfig {
        outbound_queue_bytes: QUEUE_BYTES,
        ..test_config()
    });
    let address = start(&service).await;
    let (mut sleeper, welcome) = RawClient::handshake::<TestMessage>(address).await;
    let flooder = Client::<TestMessage>::connect(address).await.unwrap();
    let connections = service.connection_service();
    // 64 MiB of blobs, far more than loopback socket buffers hold.
    flooder.send(&blobs(welcome.user_id, 2000)).await.unwrap();
    let mut largest = 0;
    eventually("the silent reader to be closed as a slow consumer", || {
        if let Some(info) = connections.get_connection_info(welcome.user_id) {
            largest = largest.max(info.queued_bytes);
        }
        connections.connection_stats().slow_consumer_disconnects == 1
    })
    .await;
    assert!(largest <= QUEUE_BYTES, "the queue held {largest} bytes");
    if let Some(close) = sleeper.read_close::<TestMessage>().await {
        assert_eq!(close.code, CloseCode::SlowConsumer.as_u16());
    }
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_write_ends_after_the_write_timeout() {
    let service = test_server(TcpServerConfig {
        // Room for the whole flood: only the blocked write can end it.
        outbound_queue_bytes: 64 * 1024 * 1024,
        write_timeout: Duration::from_millis(300),
        ..test_config()
    });
    let address = start(&service).await;
    let (_sleeper, welcome) = RawClient::handshake::<TestMessage>(address).await;
    let flooder = Client::<TestMessage>::connect(address).await.unwrap();
    // 32 MiB: more than loopback's socket buffers take.
    flooder.send(&blobs(welcome.user_id, 1000)).await.unwrap();
    let connections = service.connection_service();
    eventually("the stalled reader to be closed", || {
        !connections.is_connected(welcome.user_id)
    })
    .await;
    assert_eq!(connections.connection_stats().slow_consumer_disconnects, 1);
    service.shutdown().await;
}

/// A client that said goodbye with much still queued for it: its writer
/// keeps the connection's place while it delivers, and gives up after
/// `drain_timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closing_writer_keeps_its_place_until_its_drain_time_is_up() {
    let service = test_server(TcpServerConfig {
        max_connections: 2,
        outbound_queue_bytes: 64 * 1024 * 1024,
        write_timeout: Duration::from_secs(60),
        drain_timeout: Duration::from_secs(2),
        ..test_config()
    });
    let address = start(&service).await;
    let (mut leaver, welcome) = RawClient::handshake::<TestMessage>(address).await;
    // 32 MiB for the leaver, who reads none of it, then its goodbye.
    leaver.send(&Frame::App(blobs(welcome.user_id, 1000))).await;
    let goodbye = Frame::<()>::Close(CloseFrame {
        code: 0,
        reason: "bye".into(),
    });
    leaver.send(&goodbye).await;
    let connections = service.connection_service();
    eventually("the leaver's session to end", || {
        !connections.is_connected(welcome.user_id)
    })
    .await;
    // Its writer still holds a place: with one more client, the server is full.
    let _other = Client::<TestMessage>::connect(address).await.unwrap();
    let mut refused = RawClient::connect(address).await;
    let close = refused
        .read_close::<TestMessage>()
        .await
        .expect("a refusal");
    assert_eq!(close.code, CloseCode::ServerFull.as_u16(), "{close:?}");
    // Within its drain time (and a generous margin), the place is free.
    let mut admitted = false;
    for _ in 0..200 {
        if Client::<TestMessage>::connect(address).await.is_ok() {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(admitted, "the closing writer never gave its place back");
    drop(leaver);
    service.shutdown().await;
}

/// 1,500 requests in one write, replies 16 times the queue's bound: the
/// session stops reading while the queue is half full, and the client,
/// reading as fast as it can, gets every reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelining_client_gets_every_reply() {
    let service = test_server(TcpServerConfig {
        outbound_queue_bytes: 16 * 1024,
        ..test_config()
    });
    let address = start(&service).await;
    let (mut raw, _) = RawClient::handshake::<TestMessage>(address).await;
    let text = "x".repeat(100);
    let mut burst = Vec::new();
    for _ in 0..1500 {
        let echo = Frame::App(TestMessage::Echo { text: text.clone() });
        burst.extend_from_slice(&gamewire::wire::encode_frame(&echo).unwrap());
    }
    raw.socket.write_all(&burst).await.unwrap();
    let mut replies = 0;
    while replies < 1500 {
        match raw.read::<TestMessage>().await {
            Some(Frame::App(TestMessage::Echoed { text: echoed })) => {
                assert_eq!(echoed, text);
                replies += 1;
            }
            Some(Frame::Ping { .. }) => {}
            other => panic!("after {replies} replies: {other:?}"),
        }
    }
    let stats = service.connection_service().connection_stats();
    assert_eq!(stats.slow_consumer_disconnects, 0);
    service.shutdown().await;
}

/// Thirty clients in one room, each sending a hundred lines at once and
/// reading as fast as it can: 3,000 lines for every member, in bursts.
/// None is closed, and each gets every line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_room_closes_no_one_who_reads() {
    const MEMBERS: usize = 30;
    const LINES: usize = 100;
    let service = chat_server(test_config());
    let address = start(&service).await;
    let mut members = Vec::new();
    for _ in 0..MEMBERS {
        let mut client = gamewire::client::Client::<gamewire::ChatMessage>::connect(address)
            .await
            .unwrap();
        let joined = client.request(&gamewire::ChatMessage::JoinRoom { room_id: 1 }, |m| {
            matches!(m, gamewire::ChatMessage::RoomJoined { .. })
        });
        within(joined).await.unwrap();
        members.push(client);
    }
    for member in &members {
        let sender = member.sender();
        tokio::spawn(async move {
            for n in 0..LINES {
                let text = format!("line {n}");
                let say = gamewire::ChatMessage::SendChat { room_id: 1, text };
                sender.send(&say).await.unwrap();
            }
        });
    }
    for member in &mut members {
        let mut lines = 0;
        while lines < MEMBERS * LINES {
            match within(member.next_message()).await.unwrap() {
                gamewire::ChatMessage::ChatBroadcast { .. } => lines += 1,
                _ => continue,
            }
        }
    }
    let stats = service.connection_service().connection_stats();
    assert_eq!(stats.slow_consumer_disconnects, 0);
    assert_eq!(stats.current_connections, MEMBERS);
    service.shutdown().await;
}
