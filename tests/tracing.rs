//! What an operator reads: a span per session (user id, peer, protocol,
//! transport) around everything it logs, a span per handler call with the
//! variant's name (debug level, target `gamewire::handler`), and the
//! session's start and end at info level with the close reason.
//!
//! A test binary of its own: tracing caches per call site, for all
//! threads, whether anyone wants its lines, and a subscriber set for one
//! test's thread races the threads of other tests that meet the same call
//! sites first (they would cache "nobody").

// Test helpers are `pub` for the test modules, not for anyone else.
#![allow(unreachable_pub, missing_docs)]

#[path = "it/support.rs"]
#[allow(dead_code)]
mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use gamewire::client::Client;
use gamewire::prelude::*;
use tracing_subscriber::fmt::MakeWriter;

use crate::support::*;

#[message]
pub enum Traced {
    #[gamewire(direction = to_server)]
    Say { text: String },
    #[gamewire(direction = to_server)]
    Leave,
}

#[handler(Traced::Say)]
async fn say(message: Say) {
    tracing::info!(text = %message.text, "a handler speaks");
}

#[handler(Traced::Leave)]
async fn leave(session: Session) {
    session.disconnect("goodbye");
}

/// Lines written by the subscriber, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

// A current-thread runtime: the subscriber set for this thread sees every
// task of the server.
#[tokio::test]
async fn a_handler_s_log_line_carries_its_session_and_variant() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        // The handler span is at debug level, under its own target.
        .with_env_filter("info,gamewire::handler=debug")
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let service = TcpGameService::with_config(test_config()).protocol::<Traced>();
    let address = start(&service).await;
    let client = Client::<Traced>::connect(address).await.unwrap();
    let user = client.user_id();
    client
        .send(&Traced::Say {
            text: "hello".into(),
        })
        .await
        .unwrap();
    client.send(&Traced::Leave).await.unwrap();
    eventually("the session to end", || {
        captured.text().contains("session ended")
    })
    .await;
    service.shutdown().await;

    let text = captured.text();
    // The peer is the client's own address, on 127.0.0.1; the user id is
    // recorded once the hello is accepted, so it comes last.
    let session = "session{peer=127.0.0.1:";
    let fields = format!("protocol=\"Traced\" transport=\"tcp\" user_id={user}}}");
    let line = |needle: &str| {
        text.lines()
            .find(|line| line.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"))
            .to_owned()
    };
    let started = line("session started");
    assert!(
        started.contains(session) && started.contains(&fields),
        "{started}"
    );
    let spoke = line("a handler speaks");
    assert!(spoke.contains(session), "{spoke}");
    assert!(
        spoke.contains(&format!("{fields}:handler{{variant=\"Say\"}}")),
        "{spoke}"
    );
    assert!(spoke.contains(" INFO "), "{spoke}");
    let ended = line("session ended");
    assert!(
        ended.contains(session) && ended.contains(&fields),
        "{ended}"
    );
    assert!(ended.contains("close_code=9 reason=goodbye"), "{ended}");
}
