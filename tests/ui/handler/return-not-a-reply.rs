use gamewire::prelude::*;

#[message]
pub enum GameMessage {
    Ping { nonce: u64 },
}

#[handler(GameMessage::Ping)]
async fn ping(ping: Ping) -> u64 {
    ping.nonce
}

fn main() {}
