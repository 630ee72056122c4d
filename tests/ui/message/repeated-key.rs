use gamewire::prelude::*;

#[message]
pub enum GameMessage {
    #[gamewire(id = 1, id = 2)]
    Ping { nonce: u64 },
}

fn main() {}
