//! An interactive terminal client for the chat server, built on
//! `gamewire::client`.
//!
//! Run the server (`cargo run -p example-chat`), then
//! `cargo run -p example-chat-client` (or `-- HOST:PORT`). Type `/join 1`,
//! then plain lines to chat in the room you joined last; `/leave 1`,
//! `/rooms`, `/help` and `/quit` do what they say.
//!
//! On a terminal the line being typed is edited with rustyline, and what
//! arrives is printed above it, so it never breaks into the line; the
//! client exits as soon as the server closes. Piped input works too.

use std::io::Write;

use gamewire::ChatMessage;
use gamewire::client::{Client, Incoming};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use tokio::sync::mpsc;

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

const HELP: &str = "commands: /join N, /leave N, /rooms, /help, /quit; anything else is said in the room you joined last";

// ANCHOR: parse
/// Parses one typed line.
pub fn parse_command(line: &str) -> Result<Command, String> {
    let line = line.trim();
    let Some(rest) = line.strip_prefix('/') else {
        return Ok(Command::Say(line.to_owned()));
    };
    let mut words = rest.split_whitespace();
    let name = words.next().unwrap_or("");
    let room = |arg: Option<&str>| match arg.map(str::parse::<u32>) {
        Some(Ok(room)) => Ok(room),
        Some(Err(_)) if arg.is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())) => {
            Err(format!("room numbers go from 0 to {}", u32::MAX))
        }
        _ => Err(format!("/{name} needs a room number, like /{name} 1")),
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
            .map(|r| {
                let members = if r.user_count == 1 {
                    "member"
                } else {
                    "members"
                };
                format!("* room {}: {} {members}", r.room_id, r.user_count)
            })
            .collect::<Vec<_>>()
            .join("\n"),
        other => format!("* {other:?}"),
    }
}

/// Runs the client: typed lines from `input`, everything shown on `output`,
/// until `/quit`, the end of input, or the server closing.
pub async fn run(
    client: Client<ChatMessage>,
    input: impl AsyncBufRead + Unpin + Send + 'static,
    mut output: impl Write,
) -> anyhow::Result<()> {
    let (lines, typed) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut input = input.lines();
        while let Ok(Some(line)) = input.next_line().await {
            if lines.send(line).await.is_err() {
                break;
            }
        }
    });
    converse(client, typed, |text| {
        writeln!(output, "{text}")?;
        output.flush()
    })
    .await
}

/// The conversation: each typed line from `typed` becomes a message, each
/// message from the server a line given to `show`, until `/quit`, the end
/// of the typed lines, or the server closing.
pub async fn converse(
    mut client: Client<ChatMessage>,
    mut typed: mpsc::Receiver<String>,
    mut show: impl FnMut(&str) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    show(&format!("connected as user {}; {HELP}", client.user_id()))?;
    let mut room: Option<u32> = None;
    loop {
        tokio::select! {
            line = typed.recv() => {
                let Some(line) = line else { break };
                if line.trim().is_empty() {
                    continue;
                }
                let message = match parse_command(&line) {
                    Ok(Command::Quit) => break,
                    Ok(Command::Help) => { show(HELP)?; continue; }
                    Ok(Command::Join(id)) => { room = Some(id); ChatMessage::JoinRoom { room_id: id } }
                    Ok(Command::Leave(id)) => {
                        if room == Some(id) { room = None; }
                        ChatMessage::LeaveRoom { room_id: id }
                    }
                    Ok(Command::Rooms) => ChatMessage::ListRooms,
                    Ok(Command::Say(text)) => match room {
                        Some(room_id) => ChatMessage::SendChat { room_id, text },
                        None => { show("join a room first: /join 1")?; continue; }
                    },
                    Err(error) => { show(&error)?; continue; }
                };
                client.send(&message).await?;
            }
            incoming = client.recv() => match incoming {
                Some(Incoming::Message(message)) => show(&render(&message))?,
                Some(Incoming::Error(error)) => show(&format!("! {}", error.message))?,
                Some(Incoming::Closed(close)) => {
                    show(&format!("! the server closed the connection: {}", close.reason))?;
                    break;
                }
                None => { show("! disconnected")?; break; }
            },
        }
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
    let mut terminal = example_terminal::open("> ")?;
    let lines = terminal.lines();
    let result = converse(client, lines, |text| terminal.print(text)).await;
    terminal.exit(result)
}

#[cfg(test)]
mod tests;
