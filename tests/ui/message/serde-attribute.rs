use gamewire::prelude::*;

#[message]
pub enum GameMessage {
    Ping {
        #[serde(rename = "n")]
        nonce: u64,
    },
}

fn main() {}
