use gamewire::prelude::*;

#[message]
pub enum GameMessage {
    Ping { nonce: u64 },
}

#[handler(GameMessage::Ping)]
async fn ping<T>(_: Ping) {}

fn main() {}
