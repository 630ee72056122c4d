use gamewire::prelude::*;

#[message]
pub enum GameMessage {
    #[gamewire(idd = 1)]
    Ping { nonce: u64 },
}

fn main() {}
