use gamewire::prelude::*;

#[message]
pub enum GameMessage {
    Ping { nonce: u64 },
    Pong { nonce: u64 },
}

#[handler(GameMessage::Pign)]
async fn ping(_: Ping) {}

fn main() {}
