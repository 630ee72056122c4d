use gamewire::prelude::*;

#[message]
pub enum GameMessage {
    #[gamewire(id = -1)]
    Ping { nonce: u64 },
}

fn main() {}
