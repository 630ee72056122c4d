use gamewire::prelude::*;

#[message]
pub enum GameMessage {
    Ping = 3,
    Pong,
}

fn main() {}
