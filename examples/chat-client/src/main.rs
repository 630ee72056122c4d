//! An interactive terminal client for the chat server, built on
//! `gamewire::client`.
//!
//! Run the server (`cargo run -p example-chat`), then
//! `cargo run -p example-chat-client` (or `-- HOST:PORT`). Type `/join 1`,
//! then plain lines to chat in the room you joined last; `/leave 1`,
//! `/rooms`, `/help` and `/quit` do what they say.

use std::io::Write;

use gamewire::ChatMessage;
use gamewire::client::{Client, Incoming};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};

/// What one typed line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `/join N`
    Join(u32),
    /// `/leave N`
    Leave(u32),
    /// `/rooms`
    Rooms,
    /// A plain line: say it in the current room.
    Say(String),
    /// `/help`
    Help,
    /// `/quit`
    Quit,
}

const HELP: &str =
    "commands: /join N, /leave N, /rooms, /quit; anything else is said in the room you joined last";

// ANCHOR: parse
/// Parses one typed line.
pub fn parse_command(line: &str) -> Result<Command, String> {
    let line = line.trim();
    let Some(rest) = line.strip_prefix('/') else {
        return Ok(Command::Say(line.to_owned()));
    };
    let mut words = rest.split_whitespace();
    let name = words.next().unwrap_or("");
    let room = |arg: Option<&str>| {
        arg.and_then(|n| n.parse::<u32>().ok())
            .ok_or_else(|| format!("/{name} needs a room number, like /{name} 1"))
    };
    match name {
        "join" => room(words.next()).map(Command::Join),
        "leave" => room(words.next()).map(Command::Leave),
        "rooms" => Ok(Command::Rooms),
        "help" => Ok(Command::Help),
        "quit" | "exit" => Ok(Command::Quit),
        _ => Err(format!("unknown command /{name}; {HELP}")),
    }
}
// ANCHOR_END: parse

/// How a received message is shown.
pub fn render(message: &ChatMessage) -> String {
    match message {
        ChatMessage::RoomJoined { room_id, users } => {
            format!("* joined room {room_id} (members: {users:?})")
        }
        ChatMessage::RoomLeft { room_id } => format!("* left room {room_id}"),
        ChatMessage::UserJoined { room_id, user_id } => {
            format!("* user {user_id} joined room {room_id}")
        }
        ChatMessage::UserLeft { room_id, user_id } => {
            format!("* user {user_id} left room {room_id}")
        }
        ChatMessage::ChatBroadcast {
            room_id,
            sender,
            text,
            ..
        } => {
            format!("[room {room_id}] user {sender}: {text}")
        }
        ChatMessage::RoomList { rooms } if rooms.is_empty() => "* no rooms".to_owned(),
        ChatMessage::RoomList { rooms } => rooms
            .iter()
            .map(|r| format!("* room {}: {} users", r.room_id, r.user_count))
            .collect::<Vec<_>>()
            .join("\n"),
        other => format!("* {other:?}"),
    }
}

/// Runs the client: typed lines from `input`, everything shown on `output`,
/// until `/quit`, the end of input, or the server closing.
pub async fn run(
    mut client: Client<ChatMessage>,
    input: impl AsyncBufRead + Unpin,
    mut output: impl Write,
) -> anyhow::Result<()> {
    writeln!(output, "connected as user {}; {HELP}", client.user_id())?;
    let mut lines = input.lines();
    let mut room: Option<u32> = None;
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line? else { break };
                if line.trim().is_empty() {
                    continue;
                }
                let message = match parse_command(&line) {
                    Ok(Command::Quit) => break,
                    Ok(Command::Help) => { writeln!(output, "{HELP}")?; continue; }
                    Ok(Command::Join(id)) => { room = Some(id); ChatMessage::JoinRoom { room_id: id } }
                    Ok(Command::Leave(id)) => {
                        if room == Some(id) { room = None; }
                        ChatMessage::LeaveRoom { room_id: id }
                    }
                    Ok(Command::Rooms) => ChatMessage::ListRooms,
                    Ok(Command::Say(text)) => match room {
                        Some(room_id) => ChatMessage::SendChat { room_id, text },
                        None => { writeln!(output, "join a room first: /join 1")?; continue; }
                    },
                    Err(error) => { writeln!(output, "{error}")?; continue; }
                };
                client.send(&message).await?;
            }
            incoming = client.recv() => match incoming {
                Some(Incoming::Message(message)) => writeln!(output, "{}", render(&message))?,
                Some(Incoming::Error(error)) => writeln!(output, "! {}", error.message)?,
                Some(Incoming::Closed(close)) => {
                    writeln!(output, "! the server closed the connection: {}", close.reason)?;
                    break;
                }
                None => { writeln!(output, "! disconnected")?; break; }
            },
        }
        output.flush()?;
    }
    client.close().await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| format!("127.0.0.1:{}", gamewire::DEFAULT_PORT));
    let client = Client::<ChatMessage>::connect(&address).await?;
    run(
        client,
        BufReader::new(tokio::io::stdin()),
        std::io::stdout(),
    )
    .await
}

#[cfg(test)]
mod tests;
