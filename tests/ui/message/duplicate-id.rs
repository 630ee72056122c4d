use gamewire::prelude::*;

#[message]
pub enum GameMessage {
    #[gamewire(id = 7)]
    Move { x: i32 },
    #[gamewire(id = 7)]
    Jump,
}

fn main() {}
