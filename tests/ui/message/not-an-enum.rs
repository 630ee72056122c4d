use gamewire::prelude::*;

#[message]
pub struct Ping {
    nonce: u64,
}

fn main() {}
