//! `start()` binds the configured address (port 0 picks a free one, which
//! `local_addr()` then tells), serves, and returns once shut down.

use gamewire::client::Client;

use crate::support::*;

#[tokio::test]
async fn start_binds_and_reports_its_address() {
    let service = test_server(test_config());
    assert_eq!(service.local_addr(), None, "not bound yet");
    let running = service.clone();
    let serving = tokio::spawn(async move { running.start().await });
    eventually("the server to bind", || service.local_addr().is_some()).await;
    let address = service.local_addr().unwrap();
    assert!(
        address.ip().is_loopback() && address.port() != 0,
        "{address}"
    );

    let mut client = Client::<TestMessage>::connect(address).await.unwrap();
    let echo = TestMessage::Echo { text: "hi".into() };
    let reply = within(client.request(&echo, |_| true)).await;
    assert_eq!(reply.unwrap(), TestMessage::Echoed { text: "hi".into() });

    service.shutdown().await;
    within(serving)
        .await
        .unwrap()
        .expect("start returns Ok after a shutdown");
}

#[tokio::test]
async fn start_reports_an_address_it_cannot_bind() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let service = test_server(gamewire::TcpServerConfig {
        bind_address: taken.local_addr().unwrap().to_string(),
        ..test_config()
    });
    let error = within(service.start()).await.unwrap_err();
    assert!(
        matches!(error, gamewire::ServerError::Bind { .. }),
        "{error}"
    );
    // The cause is the source, said once: a report that walks the chain
    // (anyhow's `{:#}`) reads "could not bind ADDRESS: Address already in use".
    let cause = std::error::Error::source(&error)
        .expect("the OS error is the source")
        .to_string();
    assert!(!error.to_string().contains(&cause), "{error}");
    let report = format!("{:#}", anyhow::Error::from(error));
    assert_eq!(report.matches(&cause).count(), 1, "{report}");
}
