//! The operator's HTTP listener (feature `ops`, at `metrics_bind_address`):
//! Prometheus metrics at `/metrics`, and with `admin_token` the admin page
//! at `/admin`.
//!
//! It is a listener apart from the players' so that it can sit on a private
//! address; it serves a few requests a minute, so an HTTP framework (axum)
//! is worth its weight here and nowhere near the game's hot path.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

mod admin;
mod listener;
mod metrics;

pub(crate) use metrics::Sources;

/// Serves `/metrics`, and `/admin` when there is an `admin_token`, on
/// `listener` until `shutdown`.
pub(crate) async fn serve(
    listener: TcpListener,
    sources: Sources,
    admin_token: Option<String>,
    shutdown: CancellationToken,
) {
    let address = listener.local_addr().ok();
    let registry = std::sync::Arc::new(metrics::registry(sources.clone()));
    let mut app = Router::new()
        .route("/metrics", get(scrape))
        .with_state(registry);
    if let Some(token) = admin_token {
        if let Some(address) = address {
            tracing::info!(%address, "admin page at http://{address}/admin");
        }
        let admin = std::sync::Arc::new(admin::Admin { token, sources });
        app = app.merge(
            Router::new()
                .route("/admin", get(admin::page))
                .route("/admin/api/state", get(admin::state))
                .route(
                    "/admin/api/kick/{user_id}",
                    axum::routing::post(admin::kick),
                )
                .with_state(admin),
        );
    }
    if let Some(address) = address {
        tracing::info!(%address, "metrics at http://{address}/metrics");
    }
    let listener = listener::Bounded::new(
        listener,
        listener::MAX_CONNECTIONS,
        listener::CONNECTION_LIFETIME,
    );
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(error) = served {
        tracing::warn!(%error, "the metrics listener failed");
    }
}

/// One scrape: every figure, read now, in Prometheus' text format.
async fn scrape(
    State(registry): State<std::sync::Arc<prometheus_client::registry::Registry>>,
) -> impl IntoResponse {
    let mut text = String::new();
    match prometheus_client::encoding::prometheus_text::encode(&mut text, &registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Where the listener listens, for the service's accessor.
pub(crate) fn local_addr(listener: &TcpListener) -> Option<SocketAddr> {
    listener.local_addr().ok()
}
