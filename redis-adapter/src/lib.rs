//! Redis for gamewire servers that span several machines.
//!
//! [`RedisAdapter`] makes a server one node of a cluster whose nodes share
//! a Redis: the members of one room may sit on different nodes, and
//! `send_to_user` reaches a user on any of them. It is one line:
//!
//! ```no_run
//! use gamewire::TcpGameService;
//! use gamewire_redis::RedisAdapter;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! TcpGameService::with_default_config()
//!     .adapter(RedisAdapter::connect("redis://127.0.0.1:6379/").await?)
//!     .start()
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! Its user ids come from [`RedisAuthenticator`], which draws them from one
//! counter in Redis, so that every node gives out ids no other node gives
//! (the default [`AnonymousAuthenticator`] counts per process).
//!
//! [`AnonymousAuthenticator`]: gamewire::AnonymousAuthenticator

use std::net::SocketAddr;

use gamewire::wire::Hello;
use gamewire::{AuthError, Authenticator};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;

mod adapter;
mod inbox;

/// Takes a lock, poisoned or not: every critical section of this crate
/// leaves its data whole, so a panic elsewhere does not spoil it.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub use adapter::{DEFAULT_BACKLOG, DEFAULT_LEASE, DEFAULT_PREFIX, DEFAULT_QUEUE, RedisAdapter};

/// The key of the counter, unless [`RedisAuthenticator::with_key`] names
/// another (one per game sharing a Redis).
pub const DEFAULT_KEY: &str = "gamewire:next_user_id";

/// Why Redis could not be used.
#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub struct RedisError(#[from] redis::RedisError);

/// Gives every connection, on every node that shares the Redis, the next
/// id of one counter (`INCR`), starting at 1; the token is ignored, as by
/// [`gamewire::AnonymousAuthenticator`].
///
/// The connection to Redis reconnects by itself (redis' connection
/// manager); while Redis is down, hellos are refused with a reason. No id
/// is given twice while Redis keeps the counter; `RedisAdapter`'s own
/// authenticator also skips ids held in the cluster, for a Redis that
/// restarted empty.
#[derive(Clone)]
pub struct RedisAuthenticator {
    redis: ConnectionManager,
    key: String,
}

impl std::fmt::Debug for RedisAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAuthenticator")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl RedisAuthenticator {
    /// Connects to the Redis at `url` (`redis://host:port/`).
    ///
    /// # Errors
    ///
    /// When the URL is not one, or Redis cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, RedisError> {
        let client = redis::Client::open(url)?;
        let redis = ConnectionManager::new(client).await?;
        Ok(RedisAuthenticator {
            redis,
            key: DEFAULT_KEY.to_owned(),
        })
    }

    /// The same, counting in `key` instead of [`DEFAULT_KEY`].
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        self
    }
}

#[gamewire::async_trait]
impl Authenticator for RedisAuthenticator {
    async fn authenticate(&self, _hello: &Hello, peer: SocketAddr) -> Result<u32, AuthError> {
        let mut redis = self.redis.clone();
        let next: u64 = redis.incr(&self.key, 1).await.map_err(|error| {
            tracing::warn!(%peer, %error, "no user id from redis");
            AuthError::new("the server cannot give out user ids now; try again")
        })?;
        u32::try_from(next).map_err(|_| AuthError::new("the server has given out every user id"))
    }
}
