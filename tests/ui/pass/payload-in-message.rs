//! A struct of the user's own inside a message, with no serde dependency
//! of its own: `#[payload]` derives through gamewire's serde.

use gamewire::prelude::*;
use gamewire::wire::{self, Frame};

#[payload]
#[derive(PartialEq)]
pub struct Position {
    pub x: i32,
    pub y: i32,
}

#[payload]
#[derive(Debug, Clone, PartialEq)]
pub enum Facing {
    North,
    South,
}

#[message]
#[derive(PartialEq)]
pub enum GameMessage {
    Move { to: Position, facing: Facing },
}

fn main() {
    let sent = GameMessage::Move { to: Position { x: 3, y: -4 }, facing: Facing::South };
    let bytes = wire::encode_frame(&Frame::App(&sent)).unwrap();
    let back: Frame<GameMessage> = wire::decode_payload(&bytes[4..]).unwrap();
    assert_eq!(back, Frame::App(sent));
}
