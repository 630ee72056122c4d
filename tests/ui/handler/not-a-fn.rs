use gamewire::prelude::*;

#[message]
pub enum GameMessage {
    Ping { nonce: u64 },
}

#[handler(GameMessage::Ping)]
struct PingHandler;

fn main() {}
