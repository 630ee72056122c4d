//! SIGTERM, what systemd, Docker and Kubernetes stop a server with, drains
//! as Ctrl-C does: everything queued is delivered, then a close frame with
//! code 1 (`Shutdown`), and the process exits cleanly.

use gamewire::client::Client;
use gamewire::wire::{CloseCode, Frame};

use crate::support::*;

const TEST: &str = "shutdown_on_sigterm::sigterm_drains_like_ctrl_c";
const BLOBS: u32 = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_like_ctrl_c() {
    if is_child(TEST) {
        return serve_until_a_signal().await;
    }
    let (mut child, address) = spawn_child(TEST).await;
    let (mut sleeper, welcome) = RawClient::handshake::<TestMessage>(address).await;
    let mut flooder = Client::<TestMessage>::connect(address).await.unwrap();
    let flood = TestMessage::Flood {
        target: welcome.user_id,
        count: BLOBS,
        size: 1024,
    };
    flooder.send(&flood).await.unwrap();
    // Handlers run in order: once this is answered, the blobs are queued.
    within(flooder.request(&TestMessage::Count, |_| true))
        .await
        .unwrap();
    let pid = child.id().expect("the child runs").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());

    let mut blobs = 0;
    let close = loop {
        match sleeper.read::<TestMessage>().await {
            Some(Frame::App(TestMessage::Blob { .. })) => blobs += 1,
            Some(Frame::Ping { .. } | Frame::App(_)) => {}
            Some(Frame::Close(close)) => break close,
            other => panic!("after {blobs} blobs: {other:?}"),
        }
    };
    assert_eq!(blobs, BLOBS, "every queued blob arrives before the close");
    assert_eq!(close.code, CloseCode::Shutdown.as_u16(), "{close:?}");
    let status = within(child.wait()).await.unwrap();
    assert!(status.success(), "the child exited with {status}");
}

/// The child: a server started with `start()`, which watches for Ctrl-C
/// and SIGTERM.
async fn serve_until_a_signal() {
    let service = test_server(test_config());
    let running = service.clone();
    let serving = tokio::spawn(async move { running.start().await });
    eventually("the server to listen", || service.local_addr().is_some()).await;
    announce(service.local_addr().unwrap());
    within(serving).await.unwrap().expect("a graceful stop");
}
