//! Load-testing a gamewire server with bots of your own.
//!
//! The `gamewire-loadtest` binary loads the built-in chat. For your own
//! game, write a bot: an async fn over a [`Bot`](bots::Bot), which is a typed client
//! of your protocol that counts what it sends and receives and times its
//! requests. [`bots::main`] runs N of them against your server with the
//! command line of the load tester and prints the same kind of figures:
//!
//! ```no_run
//! use gamewire::ChatMessage;
//! use gamewire_loadtest::bots::{self, Bot};
//!
//! async fn chatter(mut bot: Bot<ChatMessage>) -> anyhow::Result<()> {
//!     let room_id = (bot.index() / 10) as u32;
//!     bot.request(&ChatMessage::JoinRoom { room_id }, |m| {
//!         matches!(m, ChatMessage::RoomJoined { .. })
//!     })
//!     .await?;
//!     let me = bot.user_id();
//!     while bot.running() {
//!         let line = ChatMessage::SendChat { room_id, text: "gg".into() };
//!         bot.request(&line, |m| {
//!             matches!(m, ChatMessage::ChatBroadcast { sender, .. } if *sender == me)
//!         })
//!         .await?;
//!     }
//!     Ok(())
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     bots::main(chatter)
//! }
//! ```
//!
//! `cargo run --release --example my_bots -- --bots 1000 --duration 30s
//! --max-p99 20ms --json result.json` then loads the server at
//! `--address` (127.0.0.1:7878 by default).

pub mod bots;
pub mod format;
