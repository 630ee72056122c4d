//! The built-in chat server on defaults: rooms to join, leave, list and talk in.
//!
//! Run: `cargo run -p example-chat` (TCP on 127.0.0.1:7878, WebSocket on
//! 127.0.0.1:7880), then talk to it with `cargo run -p example-chat-client`
//! in another terminal or two, or open http://127.0.0.1:7880/ in a browser. `--bind ADDR` and `--ws-bind ADDR` (or
//! `GAMEWIRE_BIND` and `GAMEWIRE_WS_BIND`) move the listeners; `--help`
//! says more. `RUST_LOG=debug` shows every session starting and ending.

use clap::Parser;
use gamewire::{TcpGameService, TcpServerConfig};

/// The default address of the WebSocket listener.
pub const DEFAULT_WS_BIND: &str = "127.0.0.1:7880";

/// Where the chat server listens.
#[derive(Debug, Parser)]
#[command(about = "The gamewire chat server: TCP and WebSocket clients in one set of rooms")]
struct Args {
    /// The TCP listener's address.
    #[arg(long, env = "GAMEWIRE_BIND", default_value = "127.0.0.1:7878")]
    bind: String,
    /// The WebSocket listener's address (browsers connect to ws://ADDR/).
    #[arg(long, env = "GAMEWIRE_WS_BIND", default_value = DEFAULT_WS_BIND)]
    ws_bind: String,
}

// ANCHOR: server
/// The chat server: no protocol or handler of its own, so gamewire serves
/// its built-in `ChatMessage` protocol, and the browser demo on the
/// WebSocket port's plain HTTP.
pub fn server(config: TcpServerConfig) -> TcpGameService {
    TcpGameService::with_config(config).web_page(demo_page())
}

/// The browser demo: `web/index.html` with the generated chat client
/// (`clients/typescript/src/chat.ts`, compiled to `web/chat.js` by `npm run
/// build:demo`) in its script.
pub fn demo_page() -> String {
    include_str!("../web/index.html")
        .replace("/*gamewire-chat-client*/", include_str!("../web/chat.js"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let config = TcpServerConfig {
        bind_address: args.bind,
        ws_bind_address: Some(args.ws_bind),
        ..TcpServerConfig::default()
    };
    server(config).start().await?;
    Ok(())
}
// ANCHOR_END: server

#[cfg(test)]
mod tests;
