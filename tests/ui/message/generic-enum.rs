use gamewire::prelude::*;

#[message]
pub enum GameMessage<T> {
    Ping { nonce: T },
}

fn main() {}
