//! The built-in chat server on defaults: rooms to join, leave, list and talk in.
//!
//! Run: `cargo run -p example-chat` (listens on 127.0.0.1:7878), then talk to
//! it with `cargo run -p example-chat-client` in another terminal or two.
//! `RUST_LOG=debug` shows every session starting and ending.

use gamewire::{TcpGameService, TcpServerConfig};

// ANCHOR: server
/// The chat server: no protocol or handler of its own, so gamewire serves
/// its built-in `ChatMessage` protocol.
pub fn server(config: TcpServerConfig) -> TcpGameService {
    TcpGameService::with_config(config)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    server(TcpServerConfig::default()).start().await?;
    Ok(())
}
// ANCHOR_END: server

#[cfg(test)]
mod tests;
