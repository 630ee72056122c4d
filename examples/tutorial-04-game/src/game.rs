//! The rules of tic-tac-toe, and nothing else: no sockets, no gamewire.
//! Keeping the rules apart from the server keeps both easy to read and to
//! test.

// ANCHOR: rules
use std::fmt;

/// One game of tic-tac-toe between two users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicTacToe {
    /// `players[0]` plays X and moves first; `players[1]` plays O.
    players: [u32; 2],
    /// For each cell, 0 (top left) to 8 (bottom right): the index in
    /// `players` of whoever marked it.
    cells: [Option<usize>; 9],
    /// The index in `players` of whoever moves next.
    turn: usize,
    /// Whether someone won or the board is full.
    over: bool,
}

/// What a move led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The game goes on; this user moves next.
    Next(u32),
    /// This user has three in a row.
    Won(u32),
    /// The board is full and nobody won.
    Draw,
}

/// A move against the rules. Its text is what the player sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveError {
    /// The sender is not one of the two players.
    NotPlaying,
    /// The other player moves next.
    NotYourTurn,
    /// There is no such cell.
    OffBoard(u8),
    /// The cell is already marked.
    Taken(u8),
    /// The game has ended.
    Over,
}

impl fmt::Display for MoveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MoveError::NotPlaying => write!(f, "you are not playing this game"),
            MoveError::NotYourTurn => write!(f, "it is not your turn"),
            // Players number the cells 1 to 9; the wire, 0 to 8.
            MoveError::OffBoard(cell) => {
                write!(
                    f,
                    "there is no cell {}; cells are 1 to 9",
                    u16::from(*cell) + 1
                )
            }
            MoveError::Taken(cell) => write!(f, "cell {} is taken", u16::from(*cell) + 1),
            MoveError::Over => write!(f, "the game is over"),
        }
    }
}

impl std::error::Error for MoveError {}
// ANCHOR_END: rules

// ANCHOR: accessors
impl TicTacToe {
    /// A new game: `x` moves first, then `o`.
    pub fn new(x: u32, o: u32) -> Self {
        TicTacToe {
            players: [x, o],
            cells: [None; 9],
            turn: 0,
            over: false,
        }
    }

    /// The players: X, then O.
    pub fn players(&self) -> [u32; 2] {
        self.players
    }

    /// Who moves next.
    pub fn next(&self) -> u32 {
        self.players[self.turn]
    }

    /// The board as nine characters, `X`, `O` or `.`, row by row.
    pub fn cells(&self) -> String {
        self.cells
            .iter()
            .map(|cell| match cell {
                Some(0) => 'X',
                Some(_) => 'O',
                None => '.',
            })
            .collect()
    }
}
// ANCHOR_END: accessors

// ANCHOR: place_rule
/// The rows, columns and diagonals.
const LINES: [[usize; 3]; 8] = [
    [0, 1, 2],
    [3, 4, 5],
    [6, 7, 8],
    [0, 3, 6],
    [1, 4, 7],
    [2, 5, 8],
    [0, 4, 8],
    [2, 4, 6],
];

impl TicTacToe {
    /// `user_id` marks `cell`.
    ///
    /// # Errors
    ///
    /// A [`MoveError`] when the move breaks a rule; the game is unchanged.
    pub fn place(&mut self, user_id: u32, cell: u8) -> Result<Outcome, MoveError> {
        let player = self
            .players
            .iter()
            .position(|&p| p == user_id)
            .ok_or(MoveError::NotPlaying)?;
        if self.over {
            return Err(MoveError::Over);
        }
        if player != self.turn {
            return Err(MoveError::NotYourTurn);
        }
        let slot = self
            .cells
            .get_mut(usize::from(cell))
            .ok_or(MoveError::OffBoard(cell))?;
        if slot.is_some() {
            return Err(MoveError::Taken(cell));
        }
        *slot = Some(player);
        let won = LINES
            .iter()
            .any(|line| line.iter().all(|&c| self.cells[c] == Some(player)));
        if won {
            self.over = true;
            return Ok(Outcome::Won(user_id));
        }
        if self.cells.iter().all(Option::is_some) {
            self.over = true;
            return Ok(Outcome::Draw);
        }
        self.turn = 1 - self.turn;
        Ok(Outcome::Next(self.next()))
    }
}
// ANCHOR_END: place_rule
