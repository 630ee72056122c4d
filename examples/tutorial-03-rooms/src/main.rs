//! Tutorial, chapter 3: state and rooms.
//!
//! The server remembers names (`State<Names>`), runs the built-in chat
//! inside its own protocol (the `Chat(ChatMessage)` variant), and
//! broadcasts a message of its own to a room (`Wave`).
//!
//! Run: `cargo run -p example-tutorial-03-rooms` (127.0.0.1:7878);
//! `cargo test -p example-tutorial-03-rooms` plays clients against it.
//! The chapter: `book/src/tutorial/03-rooms.md`.

// ANCHOR: imports
use std::collections::HashMap;
use std::sync::Mutex;

use gamewire::ChatMessage;
use gamewire::chat::ChatError;
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
    /// Wave at everyone in a room you are in.
    #[gamewire(direction = to_server)]
    Wave {
        /// The room.
        room_id: u32,
    },
    /// Someone waved; every member of the room gets it, the waver included.
    #[gamewire(direction = to_client)]
    Waved {
        /// The room.
        room_id: u32,
        /// Who waved.
        user_id: u32,
        /// Their name.
        name: String,
    },
    /// The built-in chat: join, leave and list rooms, and talk in them.
    Chat(ChatMessage),
}
// ANCHOR_END: protocol

// ANCHOR: names
/// Who is called what: one value for the whole server, which handlers
/// take as `State<Names>`.
#[derive(Debug, Default)]
pub struct Names {
    by_user: Mutex<HashMap<u32, String>>,
}

impl Names {
    /// Gives `user_id` the name `name`, unless another player uses it.
    /// `online` are the users connected now: the names of the others are
    /// free again.
    ///
    /// # Errors
    ///
    /// The name is taken.
    pub fn set(&self, user_id: u32, name: &str, online: &[u32]) -> anyhow::Result<()> {
        let mut by_user = self.by_user.lock().unwrap();
        by_user.retain(|user, _| online.contains(user));
        if by_user
            .iter()
            .any(|(&user, n)| user != user_id && n == name)
        {
            anyhow::bail!("the name `{name}` is taken");
        }
        by_user.insert(user_id, name.to_owned());
        Ok(())
    }

    /// The name of `user_id`, or `user N` before it chose one.
    pub fn name_of(&self, user_id: u32) -> String {
        let by_user = self.by_user.lock().unwrap();
        match by_user.get(&user_id) {
            Some(name) => name.clone(),
            None => format!("user {user_id}"),
        }
    }
}
// ANCHOR_END: names

/// Every `Ping` gets a `Pong` with the same number.
#[handler(GameMessage::Ping)]
async fn ping(ping: Ping) -> Pong {
    Pong { nonce: ping.nonce }
}

// ANCHOR: set_name
/// Checks the name and remembers it.
#[handler(GameMessage::SetName)]
async fn set_name(
    request: SetName,
    session: Session,
    names: State<Names>,
) -> anyhow::Result<NameSet> {
    let name = check_name(&request.name)?;
    let online = session.connections().user_ids();
    names.set(session.user_id(), &name, &online)?;
    Ok(NameSet {
        user_id: session.user_id(),
        name,
    })
}
// ANCHOR_END: set_name

// ANCHOR: wave
/// Tells every member of the room who waved.
#[handler(GameMessage::Wave)]
async fn wave(
    wave: Wave,
    UserId(user_id): UserId,
    rooms: RoomConnectionService,
    names: State<Names>,
) -> anyhow::Result<()> {
    if !rooms.is_member(wave.room_id, user_id) {
        anyhow::bail!("you are not in room {}", wave.room_id);
    }
    let waved = GameMessage::Waved {
        room_id: wave.room_id,
        user_id,
        name: names.name_of(user_id),
    };
    rooms.broadcast_to_room(wave.room_id, &waved, None)?;
    Ok(())
}
// ANCHOR_END: wave

// ANCHOR: chat
/// The chat variant goes to the built-in chat system.
#[handler(GameMessage::Chat)]
async fn chat(
    msg: ChatMessage,
    chat: ChatRoomMessageHandler,
    session: Session,
) -> Result<Option<GameMessage>, ChatError> {
    chat.handle(&session, msg)
}
// ANCHOR_END: chat

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

// ANCHOR: server
/// The server, with the names every handler shares.
pub fn server(config: TcpServerConfig) -> TcpGameService {
    TcpGameService::with_config(config).with_state(Names::default())
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
