use gamewire::prelude::*;

#[message(lock = "game.lock")]
pub enum Game {
    #[gamewire(id = 7, direction = to_server)]
    Move { x: i32, y: i32 },
    #[gamewire(id = 1, direction = to_client)]
    Moved { user: u32, x: i32, y: i32 },
    #[gamewire(direction = to_server)]
    Leave,
    #[gamewire(direction = to_server)]
    Say(String),
}

fn main() {}
