//! A session's own limits: a frame must arrive whole in time, and a client
//! over its message rate gets error frames, then a close.

use std::time::Duration;

use gamewire::TcpServerConfig;
use gamewire::client::Client;
use gamewire::wire::{CloseCode, ErrorCode, Frame};
use tokio::io::AsyncWriteExt;

use crate::support::*;

/// Two bytes of a ten-byte frame, then nothing: the session is closed when
/// the frame's time is up, and the bytes that came are no sign of life.
#[tokio::test]
async fn a_frame_that_stalls_is_closed_when_its_time_is_up() {
    let service = test_server(TcpServerConfig {
        frame_timeout: Duration::from_millis(300),
        ..test_config()
    });
    let address = start(&service).await;
    let mut bystander = Client::<TestMessage>::connect(address).await.unwrap();
    let (mut raw, _) = RawClient::handshake::<TestMessage>(address).await;
    raw.send_bytes(&[0, 0, 0, 10, 6]).await;
    let close = raw.read_close::<TestMessage>().await.expect("a close");
    assert_eq!(close.code, CloseCode::FrameTimeout.as_u16(), "{close:?}");
    assert!(close.reason.contains("300ms"), "{}", close.reason);
    // Whole frames, slowly, are fine: only a started frame has a deadline.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let reply = within(bystander.request(&TestMessage::Count, |_| true)).await;
    assert_eq!(reply.unwrap(), TestMessage::Counted { n: 1 });
    service.shutdown().await;
}

/// Twenty messages in one write against a burst of ten: ten are answered,
/// the rest refused with `RateLimited` error frames until the third
/// refusal closes the connection. Time refills the bucket.
#[tokio::test]
async fn a_client_over_its_rate_is_refused_then_closed() {
    let service = test_server(TcpServerConfig {
        message_rate: 5,
        message_burst: 10,
        max_protocol_errors: 3,
        ..test_config()
    });
    let address = start(&service).await;
    let (mut raw, _) = RawClient::handshake::<TestMessage>(address).await;
    let mut burst = Vec::new();
    for _ in 0..20 {
        let count = Frame::App(TestMessage::Count);
        burst.extend_from_slice(&gamewire::wire::encode_frame(&count).unwrap());
    }
    raw.socket.write_all(&burst).await.unwrap();
    let (mut answered, mut refused) = (0, 0);
    let close = loop {
        match raw.read::<TestMessage>().await.expect("the stream goes on") {
            Frame::App(TestMessage::Counted { .. }) => answered += 1,
            Frame::Error(error) => {
                assert_eq!(error.code, ErrorCode::RateLimited.as_u16());
                assert!(error.message.contains("more than 5 messages a second"));
                refused += 1;
            }
            Frame::Close(close) => break close,
            Frame::Ping { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(close.code, CloseCode::RateLimited.as_u16(), "{close:?}");
    // The bucket refills while the burst is read: a message or two more
    // may get through, never fewer than the burst.
    assert!((10..=12).contains(&answered), "{answered} answered");
    assert_eq!(refused, 3);
    let stats = service.connection_service().connection_stats();
    assert_eq!(stats.rate_limited, 3);

    // A client that keeps to the rate is never refused.
    let mut polite = Client::<TestMessage>::connect(address).await.unwrap();
    for n in 1..=12 {
        let reply = within(polite.request(&TestMessage::Count, |_| true)).await;
        assert!(
            matches!(reply, Ok(TestMessage::Counted { .. })),
            "{n}: {reply:?}"
        );
        if n > 8 {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    service.shutdown().await;
}

/// A thousand requests in one write delay another client's request by at
/// most a few budgets of `frames_per_wakeup`, not by the thousand: on one
/// thread, the busy session yields to the other between budgets.
#[tokio::test]
async fn a_burst_does_not_hold_up_the_others() {
    /// How many of the burst's frames the server had read when the other
    /// client's reply arrived.
    async fn burst_read_before_the_reply(frames_per_wakeup: usize) -> u64 {
        let service = test_server(TcpServerConfig {
            frames_per_wakeup,
            ..test_config()
        });
        let address = start(&service).await;
        let (mut busy, busy_welcome) = RawClient::handshake::<TestMessage>(address).await;
        let (mut other, _) = RawClient::handshake::<TestMessage>(address).await;
        let mut burst = Vec::new();
        for _ in 0..1000 {
            let count = Frame::App(TestMessage::Count);
            burst.extend_from_slice(&gamewire::wire::encode_frame(&count).unwrap());
        }
        // Both writes reach the kernel before the server runs again: on a
        // current-thread runtime it runs only when this task waits.
        busy.socket.write_all(&burst).await.unwrap();
        other
            .send(&Frame::App(TestMessage::Echo { text: "me?".into() }))
            .await;
        loop {
            match other.read::<TestMessage>().await.expect("a reply") {
                Frame::App(TestMessage::Echoed { .. }) => break,
                _ => continue,
            }
        }
        let read = service
            .connection_service()
            .get_connection_info(busy_welcome.user_id)
            .expect("connected")
            .frames_in;
        drop(busy);
        service.shutdown().await;
        read
    }
    let budgeted = burst_read_before_the_reply(8).await;
    assert!(
        budgeted <= 8 * 8,
        "{budgeted} frames of the burst went first"
    );
    // Without a budget worth the name, the whole burst goes first.
    let unbudgeted = burst_read_before_the_reply(100_000).await;
    assert!(unbudgeted > 1000, "{unbudgeted}");
}

/// A connection the server closes is read on until the client closes its
/// side (for at most `close_linger`): a client that keeps sending while
/// its close frame travels gets the frame and a clean end of the stream,
/// and its writes are not answered with a reset, which on a real network
/// can destroy the close frame in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_connection_lingers_until_the_client_closes() {
    use tokio::io::AsyncReadExt;
    use tokio::sync::oneshot;

    let service = test_server(TcpServerConfig {
        message_rate: 5,
        message_burst: 8,
        max_protocol_errors: 4,
        ..test_config()
    });
    let address = start(&service).await;
    let (raw, _) = RawClient::handshake::<TestMessage>(address).await;
    let count = gamewire::wire::encode_frame(&Frame::App(TestMessage::Count)).unwrap();
    let (mut read, mut write) = raw.socket.into_split();
    let (stop, mut stopped) = oneshot::channel::<()>();
    // A frame every 2 ms, over the rate, until told to stop; then the
    // client closes its side.
    let sending = tokio::spawn(async move {
        let result = loop {
            if stopped.try_recv().is_ok() {
                break Ok(());
            }
            if let Err(error) = write.write_all(&count).await {
                break Err(error);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        let _ = write.shutdown().await;
        result
    });
    let mut buf = bytes::BytesMut::new();
    let splitter = gamewire::wire::FrameSplitter::new(gamewire::MAX_FRAME_LEN_LIMIT);
    let close = loop {
        if let Some(payload) = splitter.split(&mut buf).unwrap() {
            match gamewire::wire::decode_payload::<Frame<TestMessage>>(&payload).unwrap() {
                Frame::Close(close) => break close,
                _ => continue,
            }
        }
        let n = within(read.read_buf(&mut buf)).await.unwrap();
        assert!(n > 0, "the stream ended without a close frame");
    };
    assert_eq!(close.code, CloseCode::RateLimited.as_u16(), "{close:?}");
    // The client goes on sending for a while after the close frame.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = stop.send(());
    let sent = within(sending).await.unwrap();
    assert!(sent.is_ok(), "a write failed: {sent:?}");
    let mut rest = Vec::new();
    let end = within(read.read_to_end(&mut rest)).await;
    assert!(
        end.is_ok(),
        "the stream ended with {end:?}, not a clean close"
    );
    service.shutdown().await;
}

/// The linger is bounded: a client that keeps sending after its close is
/// cut off once `close_linger` is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_linger_ends_when_its_time_is_up() {
    let service = test_server(TcpServerConfig {
        message_rate: 5,
        message_burst: 8,
        max_protocol_errors: 4,
        close_linger: Duration::from_millis(300),
        ..test_config()
    });
    let address = start(&service).await;
    let (mut raw, _) = RawClient::handshake::<TestMessage>(address).await;
    let count = gamewire::wire::encode_frame(&Frame::App(TestMessage::Count)).unwrap();
    let started = std::time::Instant::now();
    // Sends for ever, reading nothing: the writes fail once the server
    // has let the socket go.
    let failed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if raw.socket.write_all(&count).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    assert!(failed.is_ok(), "the server was still reading after 10 s");
    assert!(started.elapsed() >= Duration::from_millis(300));
    service.shutdown().await;
}
