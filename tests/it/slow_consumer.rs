//! A client that never reads cannot make the server's memory grow: its
//! queue is bounded, and the policy drops or disconnects.

use gamewire::client::Client;
use gamewire::wire::{CloseCode, Frame};
use gamewire::{SlowConsumerPolicy, TcpServerConfig};

use crate::support::*;

const QUEUE: usize = 8;
/// 2000 frames of 32 KiB: 64 MiB, far more than loopback socket buffers
/// hold, so the queue must fill.
const FLOOD: TestMessage = TestMessage::Flood {
    target: 0,
    count: 2000,
    size: 32 * 1024,
};

fn flood_for(target: u32) -> TestMessage {
    match FLOOD {
        TestMessage::Flood { count, size, .. } => TestMessage::Flood {
            target,
            count,
            size,
        },
        _ => unreachable!(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_is_disconnected_by_default() {
    let config = TcpServerConfig {
        outbound_queue_capacity: QUEUE,
        ..test_config()
    };
    let service = test_server(config);
    let address = start(&service).await;
    let (mut sleeper, welcome) = RawClient::handshake::<TestMessage>(address).await;
    let mut flooder = Client::<TestMessage>::connect(address).await.unwrap();

    flooder.send(&flood_for(welcome.user_id)).await.unwrap();
    eventually("the slow consumer to be disconnected", || {
        service
            .connection_service()
            .connection_stats()
            .slow_consumer_disconnects
            == 1
    })
    .await;
    // The server gives the close frame a short time to get through a full
    // socket; whether it made it or not, the stream ends.
    if let Some(close) = sleeper.read_close::<TestMessage>().await {
        assert_eq!(close.code, CloseCode::SlowConsumer.as_u16());
    }
    eventually("the slow consumer to be gone", || {
        !service.connection_service().is_connected(welcome.user_id)
    })
    .await;

    let reply = within(flooder.request(
        &TestMessage::Echo {
            text: "fine".into(),
        },
        |_| true,
    ))
    .await;
    assert_eq!(
        reply.unwrap(),
        TestMessage::Echoed {
            text: "fine".into()
        }
    );
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_policy_keeps_the_client_and_counts_drops() {
    let config = TcpServerConfig {
        outbound_queue_capacity: QUEUE,
        slow_consumer_policy: SlowConsumerPolicy::Drop,
        ..test_config()
    };
    let service = test_server(config);
    let address = start(&service).await;
    let (mut sleeper, welcome) = RawClient::handshake::<TestMessage>(address).await;
    let mut flooder = Client::<TestMessage>::connect(address).await.unwrap();

    flooder.send(&flood_for(welcome.user_id)).await.unwrap();
    // A session's handlers run in order: once this is answered, the flood
    // is over.
    within(flooder.request(&TestMessage::Count, |_| true))
        .await
        .unwrap();
    let info = service
        .connection_service()
        .get_connection_info(welcome.user_id)
        .expect("still connected");
    assert!(info.frames_dropped > 0);

    // The sleeper wakes up, reads what was kept, and is served normally.
    // Under this policy any frame that meets a full queue is dropped, a
    // reply too, so it asks again after each frame it reads until an answer
    // gets through (what is left of the flood is a few dozen frames).
    loop {
        sleeper
            .send(&Frame::App(TestMessage::Echo {
                text: "awake".into(),
            }))
            .await;
        match sleeper
            .read::<TestMessage>()
            .await
            .expect("still connected")
        {
            Frame::App(TestMessage::Echoed { text }) => {
                assert_eq!(text, "awake");
                break;
            }
            Frame::App(TestMessage::Blob { .. }) | Frame::Ping { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        service
            .connection_service()
            .connection_stats()
            .slow_consumer_disconnects,
        0
    );
    service.shutdown().await;
}

/// Under the default policy (disconnect), frames of a `droppable` variant
/// are dropped instead: the client stays, and its queue never holds more
/// than its bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn droppable_frames_are_dropped_not_disconnected() {
    let config = TcpServerConfig {
        outbound_queue_capacity: QUEUE,
        ..test_config()
    };
    let service = test_server(config);
    let address = start(&service).await;
    let (_sleeper, welcome) = RawClient::handshake::<TestMessage>(address).await;
    let mut flooder = Client::<TestMessage>::connect(address).await.unwrap();

    flooder
        .send(&TestMessage::FloodTicks {
            target: welcome.user_id,
            count: 2000,
            size: 32 * 1024,
        })
        .await
        .unwrap();
    // A session's handlers run in order: once this is answered, the flood
    // is over.
    within(flooder.request(&TestMessage::Count, |_| true))
        .await
        .unwrap();

    let connections = service.connection_service();
    let info = connections
        .get_connection_info(welcome.user_id)
        .expect("the sleeper is still connected");
    assert!(info.frames_dropped > 0, "{info:?}");
    assert!(info.queued_frames <= QUEUE, "{info:?}");
    assert_eq!(connections.connection_stats().slow_consumer_disconnects, 0);
    service.shutdown().await;
}
