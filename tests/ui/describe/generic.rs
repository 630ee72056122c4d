// A generated client gives each type name one layout, so a generic type
// cannot describe itself; describe a concrete wrapper instead.
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, gamewire::Describe)]
pub struct Tagged<T> {
    pub tag: u8,
    pub value: T,
}

fn main() {}
