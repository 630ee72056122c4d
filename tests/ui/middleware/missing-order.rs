use gamewire::prelude::*;
use gamewire::{MiddlewareError, Reply};

#[message]
pub enum GameMessage {
    #[gamewire(unhandled)]
    Ping { nonce: u64 },
}

#[derive(Default)]
struct Audit;

#[middleware]
#[gamewire::async_trait]
impl MessageMiddleware<GameMessage> for Audit {
    async fn before_process(&self, _: u32, _: &mut GameMessage) -> Result<bool, MiddlewareError> {
        Ok(true)
    }
    async fn after_process(&self, _: u32, _: &GameMessage, _: &Reply<GameMessage>) -> Result<(), MiddlewareError> {
        Ok(())
    }
}

fn main() {}
