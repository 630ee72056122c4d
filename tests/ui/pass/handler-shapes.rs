//! Handler shapes that must keep compiling: every extractor, every reply.

use gamewire::prelude::*;
use gamewire::{ChatMessage, ConnectionService};

#[message]
#[derive(Debug, Clone, PartialEq)]
pub enum GameMessage {
    #[gamewire(id = 10, direction = to_server)]
    Move { x: i32, y: i32 },
    #[gamewire(direction = to_client)]
    Moved { x: i32, y: i32 },
    Pair(u32, String),
    Chat(ChatMessage),
    #[gamewire(unhandled)]
    Quit,
}

pub struct Scores;

#[handler(GameMessage::Move)]
async fn move_to(m: Move, _session: Session, _user: UserId, _scores: State<Scores>) -> Moved {
    Moved { x: m.x, y: m.y }
}

#[handler(GameMessage::Pair)]
async fn pair(_: Pair, _c: ConnectionService) -> anyhow::Result<Option<GameMessage>> {
    Ok(None)
}

#[handler(GameMessage::Chat)]
async fn chat(msg: ChatMessage, chat: ChatRoomMessageHandler, session: Session)
    -> Result<Option<GameMessage>, gamewire::chat::ChatError> {
    chat.handle(&session, msg)
}

fn main() {
    let _ = TcpGameService::with_default_config().with_state(Scores);
}
