use gamewire::prelude::*;
use gamewire::{MiddlewareError, Reply};

#[message]
pub enum GameMessage {
    #[gamewire(unhandled)]
    Ping { nonce: u64 },
}

struct RateLimit {
    per_second: u32,
}

#[middleware(order = 1)]
#[gamewire::async_trait]
impl MessageMiddleware<GameMessage> for RateLimit {
    async fn before_process(&self, _: u32, _: &mut GameMessage) -> Result<bool, MiddlewareError> {
        Ok(self.per_second > 0)
    }
    async fn after_process(&self, _: u32, _: &GameMessage, _: &Reply<GameMessage>) -> Result<(), MiddlewareError> {
        Ok(())
    }
}

fn main() {}
