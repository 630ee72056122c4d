//! One run of a server: the protocol and codec chosen, its background
//! tasks started, its listeners accepting until shutdown, then the drain.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::net::TcpListener;

use super::accept::{accept_loop, drain};
use super::error::ServerError;
use super::runtime::{Blueprint, Runtime};
use crate::codec::Codec;
use crate::dispatch::BuildError;
use crate::protocol::Message;

/// The future of a whole server run.
pub(crate) type ServeFuture = Pin<Box<dyn Future<Output = Result<(), ServerError>> + Send>>;

/// What a run accepts on.
#[derive(Debug)]
pub(crate) struct Listeners {
    pub(crate) tcp: TcpListener,
    /// WebSocket clients, when `ws_bind_address` is set.
    #[cfg(feature = "websocket")]
    pub(crate) ws: Option<TcpListener>,
}

/// Serves protocol `M`, encoded with `C`, on `listeners` until shutdown.
pub(crate) fn serve<M: Message, C: Codec>(
    blueprint: Blueprint,
    listeners: Listeners,
) -> ServeFuture {
    Box::pin(async move {
        let runtime = Arc::new(Runtime::<M, C>::build(&blueprint)?);
        let shared = &runtime.shared;
        shared.connections.serve::<M, C>();
        match shared.local_addr.get() {
            Some(address) => {
                tracing::info!(protocol = M::PROTOCOL.name, %address, "gamewire server listening")
            }
            None => tracing::info!(protocol = M::PROTOCOL.name, "gamewire server listening"),
        }
        runtime
            .tracker
            .spawn(Arc::clone(&shared.heartbeat).run::<C>(
                shared.rooms.clone(),
                runtime.config.room_cleanup_interval,
                shared.shutdown.clone(),
            ));
        let connections = shared.connections.clone();
        runtime.tracker.spawn(shared.monitor.clone().sample_rates(
            move || connections.connection_stats(),
            shared.shutdown.clone(),
        ));
        let tcp = accept_loop(&runtime, &listeners.tcp);
        #[cfg(feature = "websocket")]
        if let Some(ws) = listeners.ws {
            let ws = crate::transport::WsListener(ws);
            tokio::join!(tcp, accept_loop(&runtime, &ws));
        } else {
            tcp.await;
        }
        #[cfg(not(feature = "websocket"))]
        tcp.await;
        drain(&runtime).await;
        Ok(())
    })
}

/// The checks `serve` makes before accepting, without serving.
pub(crate) fn check<M: Message, C: Codec>(blueprint: &Blueprint) -> Result<(), BuildError> {
    Runtime::<M, C>::build(blueprint).map(drop)
}
