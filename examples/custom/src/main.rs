//! The original architecture guide's recipes on gamewire: a new message pair
//! (`CustomCommand` → `CustomResponse`), a new service reached from a handler
//! through state (`MyCustomService`), the `LoggingMiddleware`, a middleware of
//! its own, and the built-in chat inside a game protocol.
//!
//! Run: `cargo run -p example-custom` (listens on 127.0.0.1:7879).

use std::collections::HashMap;

use gamewire::chat::ChatError;
use gamewire::prelude::*;
use gamewire::{ChatMessage, MiddlewareError, Reply};
use tokio::sync::RwLock;

// ANCHOR: protocol
/// The game's protocol: the guide's messages, plus the built-in chat.
#[message]
#[derive(Debug, Clone, PartialEq)]
pub enum GameMessage {
    /// Liveness check from a client.
    #[gamewire(direction = to_server)]
    Ping {
        /// Echoed in the pong.
        nonce: u64,
    },
    /// Answer to `Ping`.
    #[gamewire(direction = to_client)]
    Pong {
        /// The ping's nonce.
        nonce: u64,
    },
    /// A command with free-form parameters.
    #[gamewire(direction = to_server)]
    CustomCommand {
        /// `ping`, `set` or `get`.
        command_type: String,
        /// `key` and `value` for `set`, `key` for `get`.
        parameters: HashMap<String, String>,
        /// When the client sent it, in milliseconds since the Unix epoch.
        timestamp: u64,
    },
    /// Answer to `CustomCommand`.
    #[gamewire(direction = to_client)]
    CustomResponse {
        /// The command answered (`pong` for `ping`).
        command_type: String,
        /// Whether the command worked.
        success: bool,
        /// What the command returned.
        data: Option<String>,
        /// Why the command failed.
        error_message: Option<String>,
    },
    /// The built-in chat system, next to the game's own messages.
    Chat(ChatMessage),
}
// ANCHOR_END: protocol

// ANCHOR: service
/// The guide's example service: a keyed data store with a size limit.
#[derive(Debug)]
pub struct MyCustomService {
    data_store: RwLock<HashMap<String, String>>,
    config: CustomServiceConfig,
}

/// Settings of [`MyCustomService`].
#[derive(Debug, Clone)]
pub struct CustomServiceConfig {
    /// Keys kept at most.
    pub cache_size: usize,
}

impl MyCustomService {
    /// An empty store.
    pub fn new(config: CustomServiceConfig) -> Self {
        MyCustomService {
            data_store: RwLock::new(HashMap::new()),
            config,
        }
    }

    /// Stores `value` under `key`.
    pub async fn process_data(&self, key: &str, value: &str) -> anyhow::Result<()> {
        let mut store = self.data_store.write().await;
        if store.len() >= self.config.cache_size && !store.contains_key(key) {
            anyhow::bail!("the store is full ({} keys)", self.config.cache_size);
        }
        store.insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    /// The value under `key`.
    pub async fn get_data(&self, key: &str) -> Option<String> {
        self.data_store.read().await.get(key).cloned()
    }
}
// ANCHOR_END: service

// ANCHOR: custom_handler
/// `ping` answers `pong`; `set`/`get` use the data store; anything else is
/// an unknown command.
#[handler(GameMessage::CustomCommand)]
async fn custom_command(
    cmd: CustomCommand,
    store: State<MyCustomService>,
) -> anyhow::Result<CustomResponse> {
    let param = |name: &str| cmd.parameters.get(name).map(String::as_str).unwrap_or("");
    let data = match cmd.command_type.as_str() {
        "ping" => Some("pong".to_owned()),
        "set" => {
            store.process_data(param("key"), param("value")).await?;
            None
        }
        "get" => store.get_data(param("key")).await,
        _ => {
            return Ok(CustomResponse {
                command_type: cmd.command_type,
                success: false,
                data: None,
                error_message: Some("Unknown command".to_owned()),
            });
        }
    };
    let command_type = match cmd.command_type.as_str() {
        "ping" => "pong".to_owned(),
        _ => cmd.command_type,
    };
    Ok(CustomResponse {
        command_type,
        success: true,
        data,
        error_message: None,
    })
}
// ANCHOR_END: custom_handler

/// Every ping gets its pong.
#[handler(GameMessage::Ping)]
async fn ping(ping: Ping) -> Pong {
    Pong { nonce: ping.nonce }
}

// ANCHOR: chat_handler
/// The chat variant goes to the built-in chat system.
#[handler(GameMessage::Chat)]
async fn chat(
    msg: ChatMessage,
    chat: ChatRoomMessageHandler,
    session: Session,
) -> Result<Option<GameMessage>, ChatError> {
    chat.handle(&session, msg)
}
// ANCHOR_END: chat_handler

// ANCHOR: middleware
/// Drops commands without a name before any handler sees them.
#[derive(Debug, Default)]
pub struct RejectNamelessCommands;

#[middleware(order = 10)]
#[gamewire::async_trait]
impl MessageMiddleware<GameMessage> for RejectNamelessCommands {
    async fn before_process(
        &self,
        _user_id: u32,
        message: &mut GameMessage,
    ) -> Result<bool, MiddlewareError> {
        Ok(
            !matches!(message, GameMessage::CustomCommand { command_type, .. } if command_type.is_empty()),
        )
    }

    async fn after_process(
        &self,
        _user_id: u32,
        _message: &GameMessage,
        _result: &Reply<GameMessage>,
    ) -> Result<(), MiddlewareError> {
        Ok(())
    }
}
// ANCHOR_END: middleware

// ANCHOR: server
/// The server: the store as state, and the guide's logging middleware
/// first in the chain.
pub fn server(config: TcpServerConfig) -> TcpGameService {
    TcpGameService::with_config(config)
        .with_state(MyCustomService::new(CustomServiceConfig {
            cache_size: 1000,
        }))
        .middleware::<GameMessage>(0, LoggingMiddleware::new(true))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = TcpServerConfig {
        bind_address: "127.0.0.1:7879".to_owned(),
        ..Default::default()
    };
    server(config).start().await?;
    Ok(())
}
// ANCHOR_END: server

#[cfg(test)]
mod tests;
