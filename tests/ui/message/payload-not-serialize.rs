use gamewire::prelude::*;

pub struct Position {
    pub x: f32,
}

#[message]
pub enum GameMessage {
    Move { to: Position },
}

fn main() {}
