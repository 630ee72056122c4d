//! Tutorial, chapter 2: your own protocol.
//!
//! A `#[message]` enum declares what clients and the server say to each
//! other; two `#[handler]` functions answer the clients. One handler
//! replies with a payload struct, the other returns `anyhow::Result`, whose
//! errors reach the client as error frames.
//!
//! Run: `cargo run -p example-tutorial-02-protocol` (127.0.0.1:7878);
//! `cargo test -p example-tutorial-02-protocol` plays clients against it.
//! The chapter: `book/src/tutorial/02-protocol.md`.

// ANCHOR: imports
use gamewire::prelude::*;
// ANCHOR_END: imports

// ANCHOR: protocol
/// Everything the clients and this server say to each other.
#[message]
#[derive(Debug, Clone, PartialEq)]
pub enum GameMessage {
    /// Are you there? Answered by `Pong`.
    #[gamewire(direction = to_server)]
    Ping {
        /// Any number; the `Pong` carries it back.
        nonce: u64,
    },
    /// The answer to a `Ping`.
    #[gamewire(direction = to_client)]
    Pong {
        /// The ping's number.
        nonce: u64,
    },
    /// Choose the name the other players see. Answered by `NameSet`.
    #[gamewire(direction = to_server)]
    SetName {
        /// 1 to 16 characters; spaces around it are trimmed.
        name: String,
    },
    /// The name was accepted.
    #[gamewire(direction = to_client)]
    NameSet {
        /// Who you are on this server.
        user_id: u32,
        /// Your name, as the others will see it.
        name: String,
    },
}
// ANCHOR_END: protocol

// ANCHOR: ping
/// Every `Ping` gets a `Pong` with the same number.
#[handler(GameMessage::Ping)]
async fn ping(ping: Ping) -> Pong {
    Pong { nonce: ping.nonce }
}
// ANCHOR_END: ping

// ANCHOR: set_name
/// Checks the name; the reply says who the sender is.
#[handler(GameMessage::SetName)]
async fn set_name(request: SetName, session: Session) -> anyhow::Result<NameSet> {
    let name = check_name(&request.name)?;
    Ok(NameSet {
        user_id: session.user_id(),
        name,
    })
}
// ANCHOR_END: set_name

// ANCHOR: check_name
/// The longest name, in characters.
pub const MAX_NAME_LEN: usize = 16;

/// Trims `name` and checks it is 1 to [`MAX_NAME_LEN`] characters.
///
/// # Errors
///
/// An empty or overlong name; the text is what the client sees.
pub fn check_name(name: &str) -> anyhow::Result<String> {
    let name = name.trim();
    if name.is_empty() {
        anyhow::bail!("a name cannot be empty");
    }
    let length = name.chars().count();
    if length > MAX_NAME_LEN {
        anyhow::bail!("a name has at most {MAX_NAME_LEN} characters; this one has {length}");
    }
    Ok(name.to_owned())
}
// ANCHOR_END: check_name

// ANCHOR: server
/// The server. Nothing here names the protocol: gamewire serves the one
/// `#[message]` enum that has handlers.
pub fn server(config: TcpServerConfig) -> TcpGameService {
    TcpGameService::with_config(config)
}
// ANCHOR_END: server

#[tokio::main]
async fn main() -> anyhow::Result<()> {
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

// ANCHOR: tests_mod
#[cfg(test)]
mod tests;
// ANCHOR_END: tests_mod
