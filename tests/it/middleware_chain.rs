//! Middleware: declared order, `before_process` can stop dispatch, and
//! `after_process` sees the result.

use std::sync::{Arc, Mutex};

use gamewire::prelude::*;
use gamewire::{MiddlewareError, Reply};

use crate::support::*;

/// A protocol of its own, so its middleware touches no other test.
#[message]
#[derive(Debug, Clone, PartialEq)]
pub enum MwMessage {
    #[gamewire(direction = to_server)]
    Op { n: i32 },
    #[gamewire(direction = to_client)]
    Done { n: i32 },
}

#[handler(MwMessage::Op)]
async fn op(op: Op) -> anyhow::Result<Done> {
    anyhow::ensure!(op.n != 26, "unlucky number");
    Ok(Done { n: op.n })
}

/// Registered by the macro at order 2: stops negative numbers, and
/// doubles the rest, so the handler sees what middleware made of the message.
#[derive(Debug, Default)]
struct Gate;

#[middleware(order = 2)]
#[gamewire::async_trait]
impl MessageMiddleware<MwMessage> for Gate {
    async fn before_process(
        &self,
        _: u32,
        message: &mut MwMessage,
    ) -> Result<bool, MiddlewareError> {
        match message {
            MwMessage::Op { n } if *n < 0 => Ok(false),
            MwMessage::Op { n } => {
                *n *= 2;
                Ok(true)
            }
            _ => Ok(true),
        }
    }

    async fn after_process(
        &self,
        _: u32,
        _: &MwMessage,
        _: &Reply<MwMessage>,
    ) -> Result<(), MiddlewareError> {
        Ok(())
    }
}

/// Registered on the builder: writes what it sees to a log.
struct Recorder {
    name: &'static str,
    log: Arc<Mutex<Vec<String>>>,
}

#[gamewire::async_trait]
impl MessageMiddleware<MwMessage> for Recorder {
    async fn before_process(
        &self,
        _: u32,
        message: &mut MwMessage,
    ) -> Result<bool, MiddlewareError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("{} before {message:?}", self.name));
        Ok(true)
    }

    async fn after_process(
        &self,
        _: u32,
        message: &MwMessage,
        result: &Reply<MwMessage>,
    ) -> Result<(), MiddlewareError> {
        let result = match result {
            Ok(reply) => format!("{reply:?}"),
            Err(error) => format!("error: {error}"),
        };
        self.log
            .lock()
            .unwrap()
            .push(format!("{} after {message:?} -> {result}", self.name));
        Ok(())
    }
}

#[tokio::test]
async fn middleware_runs_in_order_and_can_stop_dispatch() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let service = TcpGameService::with_config(test_config())
        .protocol::<MwMessage>()
        .middleware::<MwMessage>(
            3,
            Recorder {
                name: "inner",
                log: Arc::clone(&log),
            },
        )
        .middleware::<MwMessage>(
            1,
            Recorder {
                name: "outer",
                log: Arc::clone(&log),
            },
        );
    let address = start(&service).await;
    let mut client = gamewire::client::Client::<MwMessage>::connect(address)
        .await
        .unwrap();

    let done = within(client.request(&MwMessage::Op { n: 5 }, |_| true))
        .await
        .unwrap();
    assert_eq!(done, MwMessage::Done { n: 10 });
    assert_eq!(
        std::mem::take(&mut *log.lock().unwrap()),
        [
            "outer before Op { n: 5 }",
            "inner before Op { n: 10 }",
            "inner after Op { n: 10 } -> Some(Done { n: 10 })",
            "outer after Op { n: 10 } -> Some(Done { n: 10 })",
        ]
    );

    // The gate stops a negative number: no handler, no reply, no after_process.
    client.send(&MwMessage::Op { n: -1 }).await.unwrap();
    let done = within(client.request(&MwMessage::Op { n: 1 }, |_| true))
        .await
        .unwrap();
    assert_eq!(
        done,
        MwMessage::Done { n: 2 },
        "nothing came back for the stopped message"
    );
    let log_now = std::mem::take(&mut *log.lock().unwrap());
    assert_eq!(log_now[0], "outer before Op { n: -1 }");
    assert_eq!(
        log_now[1], "outer before Op { n: 1 }",
        "the chain stopped at the gate"
    );

    // after_process sees a handler's error (13, doubled to 26, is refused).
    let error = within(client.request(&MwMessage::Op { n: 13 }, |_| true))
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "server error (code 4): unlucky number");
    assert_eq!(
        log.lock().unwrap().as_slice(),
        [
            "outer before Op { n: 13 }",
            "inner before Op { n: 26 }",
            "inner after Op { n: 26 } -> error: unlucky number",
            "outer after Op { n: 26 } -> error: unlucky number",
        ]
    );
    service.shutdown().await;
}

/// Panics on large numbers: a bug in a middleware.
struct Panicky;

#[gamewire::async_trait]
impl MessageMiddleware<MwMessage> for Panicky {
    async fn before_process(
        &self,
        _: u32,
        message: &mut MwMessage,
    ) -> Result<bool, MiddlewareError> {
        match message {
            MwMessage::Op { n } if *n > 100 => panic!("a test panic in middleware"),
            _ => Ok(true),
        }
    }

    async fn after_process(
        &self,
        _: u32,
        _: &MwMessage,
        _: &Reply<MwMessage>,
    ) -> Result<(), MiddlewareError> {
        Ok(())
    }
}

/// A panicking middleware is contained like a panicking handler: an error
/// frame for that message, and the session lives on and ends cleanly.
#[tokio::test]
async fn middleware_panic_is_contained() {
    let service = TcpGameService::with_config(test_config())
        .protocol::<MwMessage>()
        .middleware::<MwMessage>(5, Panicky);
    let address = start(&service).await;
    let mut client = gamewire::client::Client::<MwMessage>::connect(address)
        .await
        .unwrap();

    // The gate doubles 60 to 120, which the next middleware cannot take.
    let error = within(client.request(&MwMessage::Op { n: 60 }, |_| true))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "server error (code 5): a middleware for `Op` failed"
    );
    let done = within(client.request(&MwMessage::Op { n: 1 }, |_| true))
        .await
        .unwrap();
    assert_eq!(done, MwMessage::Done { n: 2 });
    let connections = service.connection_service();
    assert_eq!(connections.connection_stats().handler_panics, 1);

    drop(client);
    eventually("the session to end", || connections.connection_count() == 0).await;
    service.shutdown().await;
}

#[tokio::test]
async fn clashing_orders_are_refused_before_binding() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let service = TcpGameService::with_config(test_config())
        .protocol::<MwMessage>()
        .middleware::<MwMessage>(2, Recorder { name: "clash", log });
    let error = service.check().unwrap_err().to_string();
    assert!(error.contains("share the order 2"), "{error}");
    assert!(
        error.contains("`Gate` at tests/it/middleware_chain.rs"),
        "{error}"
    );
}
