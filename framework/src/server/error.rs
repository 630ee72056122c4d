//! Why a server could not run.

use crate::config::ConfigError;
use crate::dispatch::BuildError;

/// The server could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A configuration value is out of range.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The handlers, middleware or state do not fit together.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The address could not be bound; the source says why.
    #[error("could not bind {address}")]
    Bind {
        /// The address from the configuration.
        address: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The cluster's adapter could not join the cluster.
    #[error("could not join the cluster")]
    Cluster(#[from] crate::cluster::ClusterError),
    /// `start` or `serve` was called on a server that already ran.
    #[error("this server has already been started; create a new `TcpGameService`")]
    AlreadyStarted,
}
