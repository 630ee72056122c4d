//! Accepting: the listener loop, admission within `max_connections`, the
//! refusal of what does not fit, and the graceful drain at shutdown.

use std::sync::Arc;
use std::time::Duration;

use super::runtime::Runtime;
use super::session::run_session;
use crate::admission::Refusal;
use crate::codec::Codec;
use crate::connection::write_close;
use crate::protocol::Message;
use crate::transport::{Listen, Transport};
use crate::wire::{CloseCode, CloseFrame};

/// Time allowed to tell a refused connection why.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);

/// Accepts connections on `listener` until shutdown, each into a session
/// task, or refuses them when the server is full.
pub(super) async fn accept_loop<M: Message, C: Codec, L: Listen>(
    runtime: &Arc<Runtime<M, C>>,
    listener: &L,
) {
    let shared = &runtime.shared;
    loop {
        let accepted = tokio::select! {
            () = shared.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (transport, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors or a connection reset before
                // accept: wait a moment rather than spin.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let (ticket, handshake) = match shared.admission.admit(peer.ip()) {
            Ok(tickets) => tickets,
            Err(refusal) => {
                shared.monitor.count_refusal(refusal.index());
                tracing::info!(%peer, ?refusal, "refusing connection");
                let refused = refuse::<M, C, L::Conn>(Arc::clone(runtime), transport, refusal);
                runtime.tracker.spawn(refused);
                continue;
            }
        };
        // Spawned as it is: a wrapping `async move { session.await }` would
        // hold the session's future twice (rust-lang/rust#62958).
        let tickets = (ticket, handshake);
        runtime
            .tracker
            .spawn(run_session(Arc::clone(runtime), tickets, transport, peer));
    }
}

/// Tells a connection admission refused why it is closed.
async fn refuse<M: Message, C: Codec, T: Transport>(
    runtime: Arc<Runtime<M, C>>,
    transport: T,
    refusal: Refusal,
) {
    let close = CloseFrame {
        code: CloseCode::ServerFull.as_u16(),
        reason: refusal.reason(runtime.shared.admission.limits()),
    };
    let told = async {
        let (_reader, mut writer) = transport.open(&runtime.transport).await?;
        write_close::<T::Writer, C>(&mut writer, Some(&close)).await
    };
    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, told).await;
}

/// Closes every session gracefully, then waits for them within the drain
/// time; what outlasts it is forced to stop.
pub(super) async fn drain<M: Message, C: Codec>(runtime: &Runtime<M, C>) {
    let shared = &runtime.shared;
    for connection in shared.connections.all() {
        connection.close(CloseCode::Shutdown, "the server is shutting down", true);
    }
    runtime.tracker.close();
    let drained = tokio::time::timeout(runtime.config.drain_timeout, runtime.tracker.wait());
    if drained.await.is_err() {
        tracing::warn!("drain timeout: dropping the remaining connections");
        shared.force.cancel();
        for connection in shared.connections.all() {
            connection.force();
        }
        runtime.tracker.wait().await;
    }
    if let Some(scheduler) = &shared.scheduler {
        scheduler.shutdown();
    }
    tracing::info!("gamewire server stopped");
}
