use gamewire::prelude::*;

#[payload]
fn position() -> (i32, i32) {
    (0, 0)
}

fn main() {}
