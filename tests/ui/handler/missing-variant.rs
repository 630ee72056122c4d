use gamewire::prelude::*;

#[message]
pub enum GameMessage {
    Ping { nonce: u64 },
}

#[handler]
async fn ping(_: Ping) {}

fn main() {}
