use gamewire::prelude::*;
use gamewire::{MiddlewareError, Reply};

#[message]
pub enum GameMessage {
    Ping { nonce: u64 },
}

#[derive(Default)]
struct RateLimit;

#[derive(Default)]
struct Profanity;

#[middleware(order = 10)]
#[gamewire::async_trait]
impl MessageMiddleware<GameMessage> for RateLimit {
    async fn before_process(&self, _: u32, _: &mut GameMessage) -> Result<bool, MiddlewareError> {
        Ok(true)
    }
    async fn after_process(&self, _: u32, _: &GameMessage, _: &Reply<GameMessage>) -> Result<(), MiddlewareError> {
        Ok(())
    }
}

#[middleware(order = 10)]
#[gamewire::async_trait]
impl MessageMiddleware<GameMessage> for Profanity {
    async fn before_process(&self, _: u32, _: &mut GameMessage) -> Result<bool, MiddlewareError> {
        Ok(true)
    }
    async fn after_process(&self, _: u32, _: &GameMessage, _: &Reply<GameMessage>) -> Result<(), MiddlewareError> {
        Ok(())
    }
}

fn main() {}
