// ANCHOR: imports
use std::net::SocketAddr;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use gamewire::client::{Client, ClientError};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use super::*;
use crate::game::MoveError;
// ANCHOR_END: imports

/// Serves `server` on a free port of 127.0.0.1, in the background.
async fn start() -> (TcpGameService, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let service = server(TcpServerConfig::default());
    let running = service.clone();
    tokio::spawn(async move { running.serve(listener).await.unwrap() });
    (service, address)
}

// ANCHOR: join
/// Connects a player and puts it in `room_id`; the members already there
/// read the notice that it joined.
async fn join(
    address: SocketAddr,
    room_id: u32,
    others: &mut [&mut Client<GameMessage>],
) -> Client<GameMessage> {
    let mut player = Client::<GameMessage>::connect(address).await.unwrap();
    let join = GameMessage::Chat(ChatMessage::JoinRoom { room_id });
    player.send(&join).await.unwrap();
    player.next_message().await.unwrap(); // RoomJoined
    for other in others {
        other.next_message().await.unwrap(); // UserJoined
    }
    player
}
// ANCHOR_END: join

/// Sends `message` and returns the error frame's text that must answer it.
async fn expect_error(client: &mut Client<GameMessage>, message: GameMessage) -> String {
    client.send(&message).await.unwrap();
    match client.next_message().await {
        Err(ClientError::Server(error)) => error.message,
        other => panic!("expected an error frame, got {other:?}"),
    }
}

#[test]
fn the_server_is_complete() {
    server(TcpServerConfig::default()).check().unwrap();
}

// ANCHOR: rules_test
#[test]
fn three_in_a_row_wins() {
    let mut game = TicTacToe::new(1, 2);
    assert_eq!(game.place(2, 0), Err(MoveError::NotYourTurn));
    assert_eq!(game.place(1, 0), Ok(Outcome::Next(2)));
    assert_eq!(game.place(2, 0), Err(MoveError::Taken(0)));
    assert_eq!(game.place(2, 9), Err(MoveError::OffBoard(9)));
    assert_eq!(game.place(3, 4), Err(MoveError::NotPlaying));
    for (user, cell) in [(2, 3), (1, 1), (2, 4)] {
        game.place(user, cell).unwrap();
    }
    assert_eq!(game.place(1, 2), Ok(Outcome::Won(1)));
    assert_eq!(game.cells(), "XXXOO....");
    assert_eq!(game.place(2, 5), Err(MoveError::Over));
}
// ANCHOR_END: rules_test

#[test]
fn a_full_board_without_a_line_is_a_draw() {
    let mut game = TicTacToe::new(1, 2);
    // X O X / X O O / O X X
    let moves = [
        (1, 0),
        (2, 1),
        (1, 2),
        (2, 4),
        (1, 3),
        (2, 5),
        (1, 7),
        (2, 6),
    ];
    for (user, cell) in moves {
        assert!(matches!(game.place(user, cell), Ok(Outcome::Next(_))));
    }
    assert_eq!(game.place(1, 8), Ok(Outcome::Draw));
}

// ANCHOR: game_test
#[tokio::test]
async fn two_players_play_a_game_and_the_room_sees_it() {
    let (service, address) = start().await;
    let mut ann = join(address, 1, &mut []).await;
    let mut bob = join(address, 1, &mut [&mut ann]).await;
    let (a, b) = (ann.user_id(), bob.user_id());

    // Ann starts: she plays X and moves first. Both see the empty board.
    ann.send(&GameMessage::StartGame { room_id: 1 })
        .await
        .unwrap();
    let board = GameMessage::Board {
        room_id: 1,
        cells: ".........".into(),
        x: a,
        o: b,
        next: a,
    };
    assert_eq!(ann.next_message().await.unwrap(), board);
    assert_eq!(bob.next_message().await.unwrap(), board);

    // Moves against the rules are error frames for the one who made them.
    let early = GameMessage::Place {
        room_id: 1,
        cell: 4,
    };
    assert_eq!(expect_error(&mut bob, early).await, "it is not your turn");

    // X takes the top row while O plays the middle one. After each move
    // both players see the board; it is the next player's turn.
    for (cell, next) in [(0, b), (3, a), (1, b), (4, a)] {
        let mover = if next == b { &ann } else { &bob };
        mover
            .send(&GameMessage::Place { room_id: 1, cell })
            .await
            .unwrap();
        for player in [&mut ann, &mut bob] {
            match player.next_message().await.unwrap() {
                GameMessage::Board { next: n, .. } => assert_eq!(n, next),
                other => panic!("expected the board, got {other:?}"),
            }
        }
    }
    let taken = GameMessage::Place {
        room_id: 1,
        cell: 4,
    };
    // Cell 4 on the wire is the one players type as 5.
    assert_eq!(expect_error(&mut ann, taken).await, "cell 5 is taken");

    ann.send(&GameMessage::Place {
        room_id: 1,
        cell: 2,
    })
    .await
    .unwrap();
    let over = GameMessage::GameOver {
        room_id: 1,
        cells: "XXXOO....".into(),
        winner: Some(a),
    };
    assert_eq!(ann.next_message().await.unwrap(), over);
    assert_eq!(bob.next_message().await.unwrap(), over);

    service.shutdown().await;
}
// ANCHOR_END: game_test

#[tokio::test]
async fn a_game_needs_two_players_and_a_start() {
    let (service, address) = start().await;
    let mut ann = join(address, 1, &mut []).await;

    let start = GameMessage::StartGame { room_id: 1 };
    let error = expect_error(&mut ann, start.clone()).await;
    assert_eq!(error, "tic-tac-toe needs two players in room 1, not 1");
    let place = GameMessage::Place {
        room_id: 1,
        cell: 0,
    };
    let error = expect_error(&mut ann, place).await;
    assert!(error.starts_with("there is no game in room 1"), "{error}");
    let error = expect_error(&mut ann, GameMessage::StartGame { room_id: 2 }).await;
    assert_eq!(error, "you are not in room 2");

    // With a second player the game starts, and cannot start twice.
    let mut bob = join(address, 1, &mut [&mut ann]).await;
    ann.send(&start).await.unwrap();
    ann.next_message().await.unwrap(); // the board
    bob.next_message().await.unwrap(); // the board
    let error = expect_error(&mut bob, start).await;
    assert_eq!(error, "a game is already running in room 1");

    service.shutdown().await;
}

// ANCHOR: terminal_test
/// What the terminal client printed so far, shared with the test.
#[derive(Clone, Default)]
struct Screen(Arc<StdMutex<Vec<u8>>>);

impl std::io::Write for Screen {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Screen {
    /// Waits until `needle` was printed; fails after a generous bound.
    async fn wait_for(&self, needle: &str) {
        let found = tokio::time::timeout(Duration::from_secs(10), async {
            while !String::from_utf8_lossy(&self.0.lock().unwrap()).contains(needle) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        let screen = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        assert!(found.is_ok(), "never printed {needle:?}; screen:\n{screen}");
    }
}

#[tokio::test]
async fn the_terminal_client_plays() {
    let (service, address) = start().await;
    let mut bob = join(address, 1, &mut []).await;
    let ann = Client::<GameMessage>::connect(address).await.unwrap();
    let (mut keyboard, input) = tokio::io::duplex(1024);
    let screen = Screen::default();
    let playing = tokio::spawn(play::run(
        ann,
        tokio::io::BufReader::new(input),
        screen.clone(),
    ));

    keyboard.write_all(b"/join 1\n/start\n").await.unwrap();
    screen.wait_for("your turn: type 1 to 9").await;
    bob.next_message().await.unwrap(); // UserJoined
    bob.next_message().await.unwrap(); // the board
    // Ann (X) types 5, 9 and 1: the diagonal. Bob (O) takes cells 1 and 2.
    for (line, answer) in [("5\n", Some(1)), ("9\n", Some(2)), ("1\n", None)] {
        keyboard.write_all(line.as_bytes()).await.unwrap();
        bob.next_message().await.unwrap(); // Ann's move
        if let Some(cell) = answer {
            let place = GameMessage::Place { room_id: 1, cell };
            bob.send(&place).await.unwrap();
            bob.next_message().await.unwrap(); // Bob's move
        }
    }
    screen.wait_for("game over: you won!").await;
    keyboard.write_all(b"/quit\n").await.unwrap();
    playing.await.unwrap().unwrap();

    service.shutdown().await;
}
// ANCHOR_END: terminal_test

#[test]
fn typed_lines_parse() {
    use play::{Command, parse_command};
    assert_eq!(parse_command("5"), Ok(Command::Place(4)));
    assert_eq!(parse_command("/join 3"), Ok(Command::Join(3)));
    assert_eq!(parse_command("/name ann"), Ok(Command::Name("ann".into())));
    assert_eq!(parse_command("10"), Ok(Command::Say("10".into())));
    assert!(parse_command("/join x").is_err());
    assert_eq!(
        play::grid("X.O......"),
        " X | 2 | O \n---+---+---\n 4 | 5 | 6 \n---+---+---\n 7 | 8 | 9 "
    );
}
