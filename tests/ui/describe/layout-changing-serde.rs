// `#[serde(flatten)]` and `#[serde(skip)]` change the bytes bincode writes,
// so a description from the fields alone would be wrong; renames are fine.
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Stats {
    pub hp: u32,
}

#[derive(Serialize, Deserialize, gamewire::Describe)]
#[serde(rename_all = "camelCase")]
pub struct Player {
    #[serde(rename = "playerName")]
    pub name: String,
    #[serde(flatten)]
    pub stats: Stats,
    #[serde(skip)]
    pub cached: u64,
}

fn main() {}
