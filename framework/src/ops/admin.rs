//! `/admin`: a page for operators, and the JSON it reads, behind the
//! bearer token of `admin_token`.
//!
//! The page itself holds nothing secret (it asks for the token and keeps it
//! in the browser's session storage); every request of its API carries the
//! token in an `Authorization: Bearer` header, compared in constant time.
//! Without `admin_token` the routes are not there at all.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;

use super::metrics::Sources;
use crate::monitor::ServerStats;

/// At most this many sessions and rooms in one answer: the page is for
/// looking, and a server with 100,000 sessions must not build a 20 MB
/// answer for it.
const LISTED: usize = 1000;

/// What the admin routes share.
#[derive(Debug)]
pub(super) struct Admin {
    pub(super) token: String,
    pub(super) sources: Sources,
}

/// The page.
pub(super) async fn page() -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Html(include_str!("admin.html")),
    )
}

/// Whether `headers` carry the token.
fn authorized(admin: &Admin, headers: &HeaderMap) -> bool {
    let offered = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or("");
    constant_time_eq(offered.as_bytes(), admin.token.as_bytes())
}

/// Compares without stopping at the first difference, so the time taken
/// does not tell how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

fn refused() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "a bearer token is needed: the server's admin_token\n",
    )
        .into_response()
}

/// One session, as the page lists it.
#[derive(Debug, Serialize)]
struct SessionView {
    user_id: u32,
    peer: String,
    connected_seconds: u64,
    frames_in: u64,
    frames_out: u64,
    bytes_in: u64,
    bytes_out: u64,
    queued_bytes: usize,
    rooms: Vec<u32>,
}

/// One room.
#[derive(Debug, Serialize)]
struct RoomView {
    room_id: u32,
    members: Vec<u32>,
}

/// Everything the page shows.
#[derive(Debug, Serialize)]
struct StateView {
    uptime_seconds: u64,
    connections: usize,
    messages_per_second: u64,
    bytes_in_per_second: u64,
    bytes_out_per_second: u64,
    handler_p99_ms: f64,
    sessions: Vec<SessionView>,
    /// Sessions beyond the first [`LISTED`], not listed.
    sessions_not_listed: usize,
    rooms: Vec<RoomView>,
    rooms_not_listed: usize,
}

/// `GET /admin/api/state`.
pub(super) async fn state(State(admin): State<Arc<Admin>>, headers: HeaderMap) -> Response {
    if !authorized(&admin, &headers) {
        return refused();
    }
    let Sources {
        monitor,
        connections,
        rooms,
        pool,
        scheduler,
    } = &admin.sources;
    let stats = ServerStats::collect(
        monitor,
        connections.connection_stats(),
        pool.is_some(),
        scheduler.is_some(),
        monitor.records_latencies(),
    );
    let mut user_ids = connections.user_ids();
    user_ids.sort_unstable();
    let sessions_not_listed = user_ids.len().saturating_sub(LISTED);
    let sessions = user_ids
        .into_iter()
        .take(LISTED)
        .filter_map(|user_id| {
            let info = connections.get_connection_info(user_id)?;
            Some(SessionView {
                user_id,
                peer: info.peer_addr.to_string(),
                connected_seconds: info.connected_for.as_secs(),
                frames_in: info.frames_in,
                frames_out: info.frames_out,
                bytes_in: info.bytes_in,
                bytes_out: info.bytes_out,
                queued_bytes: info.queued_bytes,
                rooms: rooms.rooms_of(user_id),
            })
        })
        .collect();
    let all_rooms = rooms.get_all_rooms_status();
    let rooms_not_listed = all_rooms.len().saturating_sub(LISTED);
    let rooms = all_rooms
        .into_iter()
        .take(LISTED)
        .map(|room| RoomView {
            room_id: room.room_id,
            members: room.users,
        })
        .collect();
    Json(StateView {
        uptime_seconds: stats.uptime.as_secs(),
        connections: stats.connection_count,
        messages_per_second: stats.messages_per_second,
        bytes_in_per_second: stats.bytes_in_per_second,
        bytes_out_per_second: stats.bytes_out_per_second,
        handler_p99_ms: stats.handler_latency.p99_us / 1000.0,
        sessions,
        sessions_not_listed,
        rooms,
        rooms_not_listed,
    })
    .into_response()
}

/// `POST /admin/api/kick/{user_id}`: closes the user's connection with
/// close code 9 (`Kicked`).
pub(super) async fn kick(
    State(admin): State<Arc<Admin>>,
    Path(user_id): Path<u32>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&admin, &headers) {
        return refused();
    }
    if admin
        .sources
        .connections
        .disconnect(user_id, "kicked by an operator")
    {
        tracing::info!(user_id, "kicked from /admin");
        StatusCode::NO_CONTENT.into_response()
    } else {
        (StatusCode::NOT_FOUND, "no such user is connected\n").into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"s3cret-token", b"s3cret-token"));
        assert!(!constant_time_eq(b"s3cret-tokem", b"s3cret-token"));
        assert!(!constant_time_eq(b"s3cret", b"s3cret-token"));
        assert!(!constant_time_eq(b"", b"s3cret-token"));
    }
}
