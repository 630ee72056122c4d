//! Tutorial, chapter 1: a chat server in one line.
//!
//! The smallest gamewire server: no protocol and no handler of its own, so
//! it serves the built-in chat. Run it with
//! `cargo run -p example-tutorial-01-hello` (it listens on 127.0.0.1:7878),
//! then talk to it with `cargo run -p example-chat-client` in two more
//! terminals. `cargo test -p example-tutorial-01-hello` runs two Rust
//! clients against it. The chapter: `book/src/tutorial/01-hello.md`.

// ANCHOR: imports
use gamewire::{TcpGameService, TcpServerConfig};
// ANCHOR_END: imports

// ANCHOR: server
/// The server: gamewire's built-in chat, with `config`.
pub fn server(config: TcpServerConfig) -> TcpGameService {
    TcpGameService::with_config(config)
}
// ANCHOR_END: server

// ANCHOR: main
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Print gamewire's log lines; `RUST_LOG=debug` shows more.
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // Logs go to stderr, in colour only on a terminal.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    server(TcpServerConfig::default()).start().await?;
    Ok(())
}
// ANCHOR_END: main

// ANCHOR: tests_mod
#[cfg(test)]
mod tests;
// ANCHOR_END: tests_mod
