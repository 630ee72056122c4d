use gamewire::prelude::*;

#[message]
pub enum GameMessage {
    #[gamewire(id = "ping")]
    Ping { nonce: u64 },
}

fn main() {}
