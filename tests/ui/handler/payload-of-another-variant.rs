use gamewire::prelude::*;

#[message]
pub enum GameMessage {
    Ping { nonce: u64 },
    Pong { nonce: u64 },
}

#[handler(GameMessage::Ping)]
async fn ping(_: Pong) {}

fn main() {}
