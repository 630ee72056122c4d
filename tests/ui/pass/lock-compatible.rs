//! Compatible with its lock: `Leave` retired (its id kept), `Say` now sent
//! both ways, `Jump` appended with a new id.

use gamewire::prelude::*;

#[message(lock = "../lock/game.lock")]
pub enum Game {
    #[gamewire(direction = to_server)]
    Move { x: i32, y: i32 },
    #[gamewire(direction = to_client)]
    Moved { user: u32, x: i32, y: i32 },
    #[gamewire(retired)]
    Leave,
    Say(String),
    #[gamewire(direction = to_server)]
    Jump { height: u8 },
}

fn main() {}
