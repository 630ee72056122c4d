//! A terminal client for the game, built on `gamewire::client`:
//! `cargo run -p example-tutorial-04-game -- play [ADDRESS]`.
//!
//! It speaks the server's own `GameMessage`, so a protocol change on one
//! side is a compile error or a handshake refusal, never garbage.

// ANCHOR: imports
use std::io::Write;

use gamewire::ChatMessage;
use gamewire::client::{Client, Incoming};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use tokio::sync::mpsc;

use crate::GameMessage;
// ANCHOR_END: imports

// ANCHOR: commands
const HELP: &str = "commands: /name NAME, /join ROOM, /start, /wave, /help, /quit; \
                    1 to 9 marks a cell; anything else is said in your room";

/// What one typed line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `/name NAME`
    Name(String),
    /// `/join ROOM`
    Join(u32),
    /// `/start`
    Start,
    /// `/wave`
    Wave,
    /// `1` to `9`: mark that cell (cells 0 to 8 on the wire).
    Place(u8),
    /// Anything else: say it in the room.
    Say(String),
    /// `/help`
    Help,
    /// `/quit`
    Quit,
}

/// Parses one typed line.
///
/// # Errors
///
/// An unknown command, or `/join` without a room number.
pub fn parse_command(line: &str) -> Result<Command, String> {
    let line = line.trim();
    if let Ok(cell @ 1..=9) = line.parse::<u8>() {
        return Ok(Command::Place(cell - 1));
    }
    let Some(rest) = line.strip_prefix('/') else {
        return Ok(Command::Say(line.to_owned()));
    };
    let (name, argument) = rest.split_once(' ').unwrap_or((rest, ""));
    match name {
        "name" => Ok(Command::Name(argument.to_owned())),
        "join" => argument
            .trim()
            .parse()
            .map(Command::Join)
            .map_err(|_| "/join needs a room number, like /join 1".to_owned()),
        "start" => Ok(Command::Start),
        "wave" => Ok(Command::Wave),
        "help" => Ok(Command::Help),
        "quit" | "exit" => Ok(Command::Quit),
        _ => Err(format!("unknown command /{name}; {HELP}")),
    }
}
// ANCHOR_END: commands

// ANCHOR: render
/// The board as a grid; free cells show the number that marks them.
pub fn grid(cells: &str) -> String {
    let marks: Vec<String> = cells
        .chars()
        .enumerate()
        .map(|(i, c)| match c {
            '.' => (i + 1).to_string(),
            mark => mark.to_string(),
        })
        .collect();
    marks
        .chunks(3)
        .map(|row| format!(" {} ", row.join(" | ")))
        .collect::<Vec<_>>()
        .join("\n---+---+---\n")
}

/// How a received message is shown to user `me`.
pub fn render(message: &GameMessage, me: u32) -> String {
    let who = |user: u32| {
        if user == me {
            "you".to_owned()
        } else {
            format!("user {user}")
        }
    };
    match message {
        GameMessage::Board {
            cells, x, o, next, ..
        } => {
            let turn = if *next == me {
                "your turn: type 1 to 9".to_owned()
            } else {
                format!("waiting for {}", who(*next))
            };
            let sides = format!("X: {}, O: {}", who(*x), who(*o));
            format!("{}\n{sides}; {turn}", grid(cells))
        }
        GameMessage::GameOver { cells, winner, .. } => {
            let result = match winner {
                Some(user) if *user == me => "you won!".to_owned(),
                Some(user) => format!("{} won", who(*user)),
                None => "a draw".to_owned(),
            };
            format!("{}\ngame over: {result}", grid(cells))
        }
        GameMessage::NameSet { name, .. } => format!("* you are now {name}"),
        GameMessage::Waved { name, room_id, .. } => format!("* {name} waves in room {room_id}"),
        GameMessage::Chat(ChatMessage::ChatBroadcast { sender, text, .. }) => {
            format!("{}: {text}", who(*sender))
        }
        GameMessage::Chat(ChatMessage::RoomJoined { room_id, users }) => {
            format!("* you joined room {room_id}; members: {users:?}")
        }
        GameMessage::Chat(ChatMessage::UserJoined { user_id, .. }) => {
            format!("* {} joined", who(*user_id))
        }
        GameMessage::Chat(ChatMessage::UserLeft { user_id, .. }) => {
            format!("* {} left", who(*user_id))
        }
        other => format!("* {other:?}"),
    }
}
// ANCHOR_END: render

// ANCHOR: play
/// Connects to `address` and plays from the terminal, until `/quit`, the
/// end of input or the server closing; then the process ends.
///
/// # Errors
///
/// The server cannot be reached or refuses the handshake.
pub async fn play(address: &str) -> anyhow::Result<()> {
    let client = Client::<GameMessage>::connect(address).await?;
    let mut terminal = example_terminal::open("> ")?;
    let lines = terminal.lines();
    let result = converse(client, lines, |text| terminal.print(text)).await;
    terminal.exit(result)
}
// ANCHOR_END: play

/// Runs the client on lines read from `input`, writing to `output`: what
/// the tests drive.
///
/// # Errors
///
/// Writing `output` failed, or the connection broke.
pub async fn run(
    client: Client<GameMessage>,
    input: impl AsyncBufRead + Unpin + Send + 'static,
    mut output: impl Write,
) -> anyhow::Result<()> {
    let (send, lines) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut input = input.lines();
        while let Ok(Some(line)) = input.next_line().await {
            if send.send(line).await.is_err() {
                break;
            }
        }
    });
    converse(client, lines, |text| {
        writeln!(output, "{text}")?;
        output.flush()
    })
    .await
}

// ANCHOR: run
/// The game from the player's side: each typed line from `lines` becomes a
/// message, each message from the server a line given to `show`, until
/// `/quit`, the end of input, or the server closing.
///
/// # Errors
///
/// `show` failed, or the connection broke.
pub async fn converse(
    mut client: Client<GameMessage>,
    mut lines: mpsc::Receiver<String>,
    mut show: impl FnMut(&str) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let me = client.user_id();
    show(&format!("connected as user {me}; {HELP}"))?;
    let mut room: Option<u32> = None;
    loop {
        tokio::select! {
            line = lines.recv() => {
                let Some(line) = line else { break };
                if line.trim().is_empty() {
                    continue;
                }
                let message = match (parse_command(&line), room) {
                    (Ok(Command::Quit), _) => break,
                    (Ok(Command::Help), _) => { show(HELP)?; continue; }
                    (Err(error), _) => { show(&error)?; continue; }
                    (Ok(Command::Name(name)), _) => GameMessage::SetName { name },
                    (Ok(Command::Join(room_id)), _) => {
                        room = Some(room_id);
                        GameMessage::Chat(ChatMessage::JoinRoom { room_id })
                    }
                    (Ok(_), None) => { show("join a room first: /join 1")?; continue; }
                    (Ok(Command::Start), Some(room_id)) => GameMessage::StartGame { room_id },
                    (Ok(Command::Wave), Some(room_id)) => GameMessage::Wave { room_id },
                    (Ok(Command::Place(cell)), Some(room_id)) => GameMessage::Place { room_id, cell },
                    (Ok(Command::Say(text)), Some(room_id)) => {
                        GameMessage::Chat(ChatMessage::SendChat { room_id, text })
                    }
                };
                client.send(&message).await?;
            }
            incoming = client.recv() => match incoming {
                Some(Incoming::Message(message)) => show(&render(&message, me))?,
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
// ANCHOR_END: run
