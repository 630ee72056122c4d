//! `#[message]` implements `Debug` and `Clone` itself (so a bad field type
//! is one error); they must behave exactly like the derives, and the
//! user's other derives, `Copy` included, must keep working.

use gamewire::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Cell(u8, u8);

#[message]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum GameMessage {
    Move { x: i32, r#y: i32 },
    Pair(u32, bool),
    Place(Cell),
    Leave,
}

fn main() {
    let messages = [
        (GameMessage::Move { x: 1, y: -2 }, "Move { x: 1, y: -2 }"),
        (GameMessage::Pair(7, true), "Pair(7, true)"),
        (GameMessage::Place(Cell(3, 4)), "Place(Cell(3, 4))"),
        (GameMessage::Leave, "Leave"),
    ];
    for (message, debug) in messages {
        assert_eq!(format!("{message:?}"), debug);
        let copy = message;
        assert_eq!(copy.clone(), message);
    }
    assert_eq!(format!("{:#?}", Pair(7, true)), "Pair(\n    7,\n    true,\n)");
    assert_eq!(format!("{:?}", Move { x: 1, y: 2 }.clone()), "Move { x: 1, y: 2 }");
    assert_eq!(format!("{:?}", Leave), "Leave");
}
