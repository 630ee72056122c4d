//! `/admin` on the operator's listener: its API refuses a missing or wrong
//! bearer token, lists sessions and rooms, and kicks a user (close code 9);
//! the page itself is driven in headless Chromium, which also takes the
//! book's screenshot.

use std::net::SocketAddr;

use gamewire::client::{Client, Incoming};
use gamewire::wire::CloseCode;
use gamewire::{ChatMessage, TcpServerConfig};
use gamewire_tests::node::{Node, chromium};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

const TOKEN: &str = "correct-horse-battery-staple";

/// One HTTP request; the status line and the body.
async fn http(
    address: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (String, String) {
    let mut socket = TcpStream::connect(address).await.unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    within(socket.read_to_string(&mut response)).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

async fn admin_server() -> (gamewire::TcpGameService, SocketAddr, SocketAddr) {
    let service = chat_server(TcpServerConfig {
        metrics_bind_address: Some("127.0.0.1:0".into()),
        admin_token: Some(TOKEN.into()),
        ..test_config()
    });
    let address = start(&service).await;
    eventually("the metrics listener", || {
        service.local_metrics_addr().is_some()
    })
    .await;
    let admin = service.local_metrics_addr().unwrap();
    (service, address, admin)
}

async fn joined(address: SocketAddr, room_id: u32) -> Client<ChatMessage> {
    let mut client = Client::<ChatMessage>::connect(address).await.unwrap();
    client
        .send(&ChatMessage::JoinRoom { room_id })
        .await
        .unwrap();
    within(client.next_message()).await.unwrap();
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_needs_the_token_lists_and_kicks() {
    let (service, address, admin) = admin_server().await;
    let mut alice = joined(address, 3).await;
    let _bob = joined(address, 3).await;

    let (status, _) = http(admin, "GET", "/admin/api/state", None).await;
    assert_eq!(status, "HTTP/1.1 401 Unauthorized");
    let (status, _) = http(
        admin,
        "GET",
        "/admin/api/state",
        Some("correct-horse-battery-stapl"),
    )
    .await;
    assert_eq!(status, "HTTP/1.1 401 Unauthorized");
    let (status, _) = http(admin, "POST", "/admin/api/kick/1", Some("wrong")).await;
    assert_eq!(status, "HTTP/1.1 401 Unauthorized");
    assert!(service.connection_service().is_connected(alice.user_id()));

    let (status, body) = http(admin, "GET", "/admin/api/state", Some(TOKEN)).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.contains("\"connections\":2"), "{body}");
    assert!(
        body.contains("\"rooms\":[{\"room_id\":3,\"members\":[1,2]}]"),
        "{body}"
    );
    assert!(
        body.contains(&format!(
            "\"user_id\":{},\"peer\":\"127.0.0.1:",
            alice.user_id()
        )),
        "{body}"
    );

    let (status, _) = http(
        admin,
        "POST",
        &format!("/admin/api/kick/{}", alice.user_id()),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, "HTTP/1.1 204 No Content");
    let closed = loop {
        match within(alice.recv()).await {
            Some(Incoming::Closed(close)) => break close,
            Some(_) => continue,
            None => panic!("no close frame"),
        }
    };
    assert_eq!(closed.code, CloseCode::Kicked.as_u16());
    let (status, _) = http(admin, "POST", "/admin/api/kick/999", Some(TOKEN)).await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");

    let (status, body) = http(admin, "GET", "/admin", None).await;
    assert_eq!(status, "HTTP/1.1 200 OK", "the page holds no secret");
    assert!(body.contains("gamewire admin"));
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_there_is_no_admin_page() {
    let service = chat_server(TcpServerConfig {
        metrics_bind_address: Some("127.0.0.1:0".into()),
        ..test_config()
    });
    start(&service).await;
    eventually("the metrics listener", || {
        service.local_metrics_addr().is_some()
    })
    .await;
    let admin = service.local_metrics_addr().unwrap();
    let (status, _) = http(admin, "GET", "/admin/api/state", Some(TOKEN)).await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let short = TcpServerConfig {
        admin_token: Some("short".into()),
        ..test_config()
    };
    assert!(
        short
            .validate()
            .unwrap_err()
            .to_string()
            .contains("at least 16")
    );
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_lists_and_kicks_in_chromium() {
    let Some(node) = Node::find() else { return };
    let Some(chromium) = chromium() else { return };
    let (service, address, admin) = admin_server().await;
    let _alice = joined(address, 3).await;
    let bob = joined(address, 3).await;
    let _carol = joined(address, 8).await;
    let mut env = vec![
        ("GAMEWIRE_ADMIN_URL", format!("http://{admin}/admin")),
        ("GAMEWIRE_ADMIN_TOKEN", TOKEN.to_owned()),
        ("GAMEWIRE_KICK", bob.user_id().to_string()),
        ("GAMEWIRE_CHROMIUM", chromium.display().to_string()),
    ];
    if let Ok(path) = std::env::var("GAMEWIRE_SCREENSHOT") {
        env.push(("GAMEWIRE_SCREENSHOT", path));
    }
    node.run(
        &["--test", "--test-reporter=spec", "test/admin.e2e.mjs"],
        &env,
    )
    .await;
    assert!(!service.connection_service().is_connected(bob.user_id()));
    service.shutdown().await;
}
