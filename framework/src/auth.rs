//! Authentication: turning a handshake into a user id.
//!
//! The server asks its [`Authenticator`] for the user id of every new
//! connection, passing the client's [`Hello`] (which carries a token). The
//! default, [`AnonymousAuthenticator`], hands out sequential ids.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::wire::Hello;

/// The handshake was refused.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason}")]
pub struct AuthError {
    reason: String,
}

impl AuthError {
    /// A refusal; `reason` is sent to the client in the close frame.
    pub fn new(reason: impl Into<String>) -> Self {
        AuthError {
            reason: reason.into(),
        }
    }
}

/// Decides who a new connection is.
///
/// # Examples
///
/// ```
/// use std::net::SocketAddr;
/// use gamewire::{AuthError, Authenticator};
/// use gamewire::wire::Hello;
///
/// /// Accepts tokens of the form `user-<id>`.
/// struct TokenAuth;
///
/// #[gamewire::async_trait]
/// impl Authenticator for TokenAuth {
///     async fn authenticate(&self, hello: &Hello, _peer: SocketAddr) -> Result<u32, AuthError> {
///         hello.token.strip_prefix("user-")
///             .and_then(|id| id.parse().ok())
///             .ok_or_else(|| AuthError::new("expected a token `user-<id>`"))
///     }
/// }
///
/// let _server = gamewire::TcpGameService::with_default_config().authenticator(TokenAuth);
/// ```
#[async_trait::async_trait]
pub trait Authenticator: Send + Sync + 'static {
    /// The user id of the connection that sent `hello`.
    ///
    /// # Errors
    ///
    /// An [`AuthError`] refuses the connection; its text goes to the client.
    async fn authenticate(&self, hello: &Hello, peer: SocketAddr) -> Result<u32, AuthError>;
}

/// Gives every connection the next id, starting at 1, ignoring the token.
#[derive(Debug)]
pub struct AnonymousAuthenticator {
    next: AtomicU32,
}

impl AnonymousAuthenticator {
    /// Ids start at 1.
    pub fn new() -> Self {
        AnonymousAuthenticator {
            next: AtomicU32::new(1),
        }
    }
}

impl Default for AnonymousAuthenticator {
    fn default() -> Self {
        AnonymousAuthenticator::new()
    }
}

#[async_trait::async_trait]
impl Authenticator for AnonymousAuthenticator {
    async fn authenticate(&self, _hello: &Hello, _peer: SocketAddr) -> Result<u32, AuthError> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        if id == 0 {
            // Wrapped around after four billion sessions; 0 is never an id.
            return Err(AuthError::new("no anonymous user ids left"));
        }
        Ok(id)
    }
}
