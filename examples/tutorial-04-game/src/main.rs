//! Tutorial, chapter 4: a tiny turn-based game.
//!
//! Tic-tac-toe in the rooms of chapter 3: two players in a room start a
//! game, take turns, and every member of the room sees the board. Moves
//! against the rules come back as error frames; the rules themselves live
//! in `game.rs`, apart from the networking. `play.rs` is a terminal client.
//!
//! Run the server: `cargo run -p example-tutorial-04-game` (127.0.0.1:7878).
//! Play: `cargo run -p example-tutorial-04-game -- play` in two more
//! terminals. `cargo test -p example-tutorial-04-game` plays whole games.
//! The chapter: `book/src/tutorial/04-game.md`.

// ANCHOR: imports
use std::collections::HashMap;
use std::sync::Mutex;

use gamewire::ChatMessage;
use gamewire::chat::ChatError;
use gamewire::prelude::*;

use crate::game::{Outcome, TicTacToe};

pub mod game;
// ANCHOR_END: imports
// ANCHOR: play_mod
pub mod play;
// ANCHOR_END: play_mod

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
    // ANCHOR: game_variants
    /// Start a game of tic-tac-toe with the other player in a room of two.
    /// You play X and move first.
    #[gamewire(direction = to_server)]
    StartGame {
        /// The room.
        room_id: u32,
    },
    /// Mark a cell with your X or O.
    #[gamewire(direction = to_server)]
    Place {
        /// The room of the game.
        room_id: u32,
        /// 0 (top left) to 8 (bottom right), row by row.
        cell: u8,
    },
    /// The board of a game that goes on, after each move; sent to every
    /// member of the room.
    #[gamewire(direction = to_client)]
    Board {
        /// The room of the game.
        room_id: u32,
        /// Nine characters, `X`, `O` or `.`, row by row.
        cells: String,
        /// Who plays X.
        x: u32,
        /// Who plays O.
        o: u32,
        /// Who moves next.
        next: u32,
    },
    /// The game ended; sent to every member of the room.
    #[gamewire(direction = to_client)]
    GameOver {
        /// The room of the game.
        room_id: u32,
        /// The final board.
        cells: String,
        /// Who won; `None` for a draw.
        winner: Option<u32>,
    },
    // ANCHOR_END: game_variants
}

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

/// Every `Ping` gets a `Pong` with the same number.
#[handler(GameMessage::Ping)]
async fn ping(ping: Ping) -> Pong {
    Pong { nonce: ping.nonce }
}

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

/// The chat variant goes to the built-in chat system.
#[handler(GameMessage::Chat)]
async fn chat(
    msg: ChatMessage,
    chat: ChatRoomMessageHandler,
    session: Session,
) -> Result<Option<GameMessage>, ChatError> {
    chat.handle(&session, msg)
}

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

// ANCHOR: games
/// The game of each room, by room id. A room has at most one game.
#[derive(Debug, Default)]
pub struct Games {
    by_room: Mutex<HashMap<u32, TicTacToe>>,
}
// ANCHOR_END: games

// ANCHOR: start_game
/// Starts a game between the sender and the other member of the room.
#[handler(GameMessage::StartGame)]
async fn start_game(
    start: StartGame,
    UserId(user_id): UserId,
    rooms: RoomConnectionService,
    games: State<Games>,
) -> anyhow::Result<()> {
    let room_id = start.room_id;
    let (_, members) = rooms.get_room_status(room_id);
    if !members.contains(&user_id) {
        anyhow::bail!("you are not in room {room_id}");
    }
    let [first, second] = members[..] else {
        anyhow::bail!(
            "tic-tac-toe needs two players in room {room_id}, not {}",
            members.len()
        );
    };
    let opponent = if first == user_id { second } else { first };

    let board = {
        let mut by_room = games.by_room.lock().unwrap();
        if let Some(game) = by_room.get(&room_id) {
            // A game whose players are both still here is not over.
            if game.players().iter().all(|p| members.contains(p)) {
                anyhow::bail!("a game is already running in room {room_id}");
            }
        }
        let game = TicTacToe::new(user_id, opponent);
        let board = board_message(room_id, &game);
        by_room.insert(room_id, game);
        board
    }; // the lock is released here, before anything is sent

    rooms.broadcast_to_room(room_id, &board, None)?;
    Ok(())
}
// ANCHOR_END: start_game

// ANCHOR: place
/// Plays one move and shows the room the result.
#[handler(GameMessage::Place)]
async fn place(
    place: Place,
    UserId(user_id): UserId,
    rooms: RoomConnectionService,
    games: State<Games>,
) -> anyhow::Result<()> {
    let room_id = place.room_id;
    let (_, members) = rooms.get_room_status(room_id);

    let update = {
        let mut by_room = games.by_room.lock().unwrap();
        let Some(game) = by_room.get_mut(&room_id) else {
            anyhow::bail!("there is no game in room {room_id}; send StartGame first");
        };
        if !game.players().iter().all(|p| members.contains(p)) {
            by_room.remove(&room_id);
            anyhow::bail!("a player left room {room_id}, so the game is over");
        }
        // A move against the rules is a `MoveError`; `?` sends it back.
        let update = match game.place(user_id, place.cell)? {
            Outcome::Next(_) => board_message(room_id, game),
            Outcome::Won(winner) => game_over(room_id, game, Some(winner)),
            Outcome::Draw => game_over(room_id, game, None),
        };
        if matches!(update, GameMessage::GameOver { .. }) {
            by_room.remove(&room_id);
        }
        update
    };

    rooms.broadcast_to_room(room_id, &update, None)?;
    Ok(())
}
// ANCHOR_END: place

// ANCHOR: messages
/// The `Board` message of a game that goes on.
fn board_message(room_id: u32, game: &TicTacToe) -> GameMessage {
    let [x, o] = game.players();
    GameMessage::Board {
        room_id,
        cells: game.cells(),
        x,
        o,
        next: game.next(),
    }
}

/// The `GameOver` message of a game that ended.
fn game_over(room_id: u32, game: &TicTacToe, winner: Option<u32>) -> GameMessage {
    GameMessage::GameOver {
        room_id,
        cells: game.cells(),
        winner,
    }
}
// ANCHOR_END: messages

// ANCHOR: server
/// The server, with the names and the games every handler shares.
pub fn server(config: TcpServerConfig) -> TcpGameService {
    TcpGameService::with_config(config)
        .with_state(Names::default())
        .with_state(Games::default())
}
// ANCHOR_END: server

// ANCHOR: main
/// `play [ADDRESS]` runs the terminal client; anything else, the server.
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("play") {
        let address = args
            .next()
            .unwrap_or_else(|| format!("127.0.0.1:{}", gamewire::DEFAULT_PORT));
        return play::play(&address).await;
    }

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
