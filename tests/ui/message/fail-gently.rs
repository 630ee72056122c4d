//! One bad attribute is one error: the enum, its payload types and their
//! impls are still emitted, so the handler and the uses below compile.
use gamewire::prelude::*;

#[message]
pub enum GameMessage {
    #[gamewire(direction = to_sever)]
    Ping { nonce: u64 },
    Pong { nonce: u64 },
}

#[handler(GameMessage::Ping)]
async fn ping(ping: Ping, _session: Session) -> Pong {
    Pong { nonce: ping.nonce }
}

fn main() {
    let _ = TcpGameService::with_default_config().protocol::<GameMessage>();
    let _ = format!("{:?}", GameMessage::from(Ping { nonce: 1 }).clone());
}
