//! Two nodes sharing one Redis give out user ids no other node gives: a
//! real `redis-server` on its own port, two servers, clients on both.
//!
//! Needs Debian's `redis-server`; without it the test says it was skipped,
//! and under CI (`CI` set) it fails.

use std::net::SocketAddr;
use std::time::Duration;

use gamewire::client::Client;
use gamewire::{ChatMessage, TcpGameService};
use gamewire_redis::RedisAuthenticator;
use gamewire_tests::redis::RedisServer;
use tokio::net::TcpListener;

async fn redis() -> Option<RedisServer> {
    RedisServer::start().await
}

async fn node(url: &str) -> (TcpGameService, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let service = TcpGameService::with_default_config()
        .protocol::<ChatMessage>()
        .authenticator(RedisAuthenticator::connect(url).await.unwrap());
    let serving = service.clone();
    tokio::spawn(async move { serving.serve(listener).await });
    (service, address)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_never_give_out_one_id_twice() {
    let Some(redis) = redis().await else { return };
    let (a, a_address) = node(&redis.url()).await;
    let (b, b_address) = node(&redis.url()).await;
    let mut ids = Vec::new();
    let mut clients = Vec::new();
    for i in 0..10 {
        let address = if i % 2 == 0 { a_address } else { b_address };
        let client = Client::<ChatMessage>::connect(address).await.unwrap();
        ids.push(client.user_id());
        clients.push(client);
    }
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=10).collect::<Vec<u32>>(), "{ids:?}");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_a_hello_is_refused_with_a_reason() {
    let Some(redis) = redis().await else { return };
    let (service, address) = node(&redis.url()).await;
    drop(redis); // kill_on_drop: Redis is gone
    tokio::time::sleep(Duration::from_millis(200)).await;
    match Client::<ChatMessage>::connect(address).await {
        Err(gamewire::client::ClientError::Closed(close)) => {
            assert!(
                close.reason.contains("cannot give out user ids"),
                "{close:?}"
            );
        }
        other => panic!("expected a refusal, got {:?}", other.map(|c| c.user_id())),
    }
    service.shutdown().await;
}
