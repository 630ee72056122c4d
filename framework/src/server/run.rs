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
    /// The operator's HTTP listener, when `metrics_bind_address` is set.
    #[cfg(feature = "ops")]
    pub(crate) metrics: Option<TcpListener>,
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
        shared
            .monitor
            .describe_variants(M::PROTOCOL.variants.iter().map(|variant| variant.name));
        match shared.local_addr.get() {
            Some(address) => {
                tracing::info!(protocol = M::PROTOCOL.name, %address, "gamewire server listening")
            }
            None => tracing::info!(protocol = M::PROTOCOL.name, "gamewire server listening"),
        }
        if let Some(address) = shared.local_ws_addr.get() {
            tracing::info!(%address, "WebSocket clients at ws://{address}/");
        }
        if let Some(adapter) = shared.connections.adapter() {
            let node = shared.rooms.local_node(shared.stopped.clone());
            adapter.start(node).await?;
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
        #[cfg(feature = "ops")]
        if let Some(metrics) = listeners.metrics {
            let sources = crate::ops::Sources {
                monitor: shared.monitor.clone(),
                connections: shared.connections.clone(),
                rooms: shared.rooms.clone(),
                pool: shared.pool.clone(),
                scheduler: shared.scheduler.clone(),
            };
            // Not tracked: it stops with the shutdown signal, and a scrape
            // in flight must not hold up the drain.
            let token = runtime.config.admin_token.clone();
            tokio::spawn(crate::ops::serve(
                metrics,
                sources,
                token,
                shared.shutdown.clone(),
            ));
        }
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
        if let Some(adapter) = shared.connections.adapter() {
            adapter.stop().await;
        }
        Ok(())
    })
}

/// The checks `serve` makes before accepting, without serving.
pub(crate) fn check<M: Message, C: Codec>(blueprint: &Blueprint) -> Result<(), BuildError> {
    Runtime::<M, C>::build(blueprint).map(drop)
}
