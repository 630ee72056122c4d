//! A custom authenticator decides the user id from the hello's token, and
//! its refusal reaches the client as the close reason.

use std::net::SocketAddr;

use gamewire::client::{Client, ClientConfig, ClientError};
use gamewire::wire::{CloseCode, Hello};
use gamewire::{AuthError, Authenticator, ChatMessage};

use crate::support::*;

/// Accepts tokens `player-<id>`.
struct PlayerTokens;

#[gamewire::async_trait]
impl Authenticator for PlayerTokens {
    async fn authenticate(&self, hello: &Hello, _peer: SocketAddr) -> Result<u32, AuthError> {
        hello
            .token
            .strip_prefix("player-")
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| AuthError::new("unknown token; log in again"))
    }
}

#[tokio::test]
async fn tokens_become_user_ids_and_refusals_are_explained() {
    let service = chat_server(test_config()).authenticator(PlayerTokens);
    let address = start(&service).await;

    let alice = Client::<ChatMessage>::connect_with(address, ClientConfig::with_token("player-42"))
        .await
        .unwrap();
    assert_eq!(alice.user_id(), 42);
    assert!(service.connection_service().is_connected(42));

    match Client::<ChatMessage>::connect_with(address, ClientConfig::with_token("guest")).await {
        Err(ClientError::Closed(close)) => {
            assert_eq!(close.code, CloseCode::HandshakeFailed.as_u16());
            assert_eq!(close.reason, "unknown token; log in again");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    // The same user twice: the second connection is refused, the first kept.
    match Client::<ChatMessage>::connect_with(address, ClientConfig::with_token("player-42")).await
    {
        Err(ClientError::Closed(close)) => {
            assert_eq!(close.reason, "user 42 is already connected");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(service.connection_service().user_ids(), vec![42]);
    service.shutdown().await;
}
