//! The server's counters: per session while it lives, server-wide after.
//!
//! A session counts its own frames and bytes in [`SessionCounters`], so
//! sessions on different cores never write to one cache line per message.
//! Server-wide figures are the totals of sessions that ended
//! ([`ServerCounters`]) plus the live sessions' counters, summed when asked
//! for. A session's counts move into the totals ([`ServerCounters::fold`])
//! while the registry's write lock keeps readers out, and readers sum
//! under its read lock, so a figure never goes backwards.

use std::sync::atomic::{AtomicU64, Ordering};

/// Something the server counts once per occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// A session completed its handshake.
    SessionOpened,
    /// A connection was refused at `max_connections`.
    ConnectionRefused,
    /// A frame was dropped because a queue was full.
    FrameDropped,
    /// A client was disconnected for a full queue.
    SlowConsumer,
    /// A client was disconnected by the heartbeat.
    HeartbeatTimeout,
    /// An undecodable, unknown or misplaced frame arrived.
    ProtocolError,
    /// A handler or middleware returned an error.
    HandlerError,
    /// A handler or middleware panicked.
    HandlerPanic,
    /// A frame over the client's message rate was refused.
    RateLimited,
}

/// Counters of one session, owned by its connection.
#[derive(Debug, Default)]
pub(crate) struct SessionCounters {
    messages_in: AtomicU64,
    frames_in: AtomicU64,
    bytes_in: AtomicU64,
    frames_out: AtomicU64,
    bytes_out: AtomicU64,
    frames_dropped: AtomicU64,
}

/// What [`SessionCounters`] hold now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SessionTotals {
    pub(crate) messages_in: u64,
    pub(crate) frames_in: u64,
    pub(crate) bytes_in: u64,
    pub(crate) frames_out: u64,
    pub(crate) bytes_out: u64,
    pub(crate) frames_dropped: u64,
}

impl SessionCounters {
    /// A frame of `bytes` bytes (prefix included) arrived.
    pub(crate) fn frame_in(&self, bytes: usize) {
        self.frames_in.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// A message of the protocol went to dispatch.
    pub(crate) fn message_in(&self) {
        self.messages_in.fetch_add(1, Ordering::Relaxed);
    }

    /// `frames` frames of `bytes` bytes in all were written.
    pub(crate) fn frames_out(&self, frames: u64, bytes: u64) {
        self.frames_out.fetch_add(frames, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A frame for this session was dropped.
    pub(crate) fn frame_dropped(&self) {
        self.frames_dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn totals(&self) -> SessionTotals {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        SessionTotals {
            messages_in: load(&self.messages_in),
            frames_in: load(&self.frames_in),
            bytes_in: load(&self.bytes_in),
            frames_out: load(&self.frames_out),
            bytes_out: load(&self.bytes_out),
            frames_dropped: load(&self.frames_dropped),
        }
    }
}

/// Server-wide counters: the events, and the traffic of sessions that ended.
#[derive(Debug, Default)]
pub(crate) struct ServerCounters {
    sessions_opened: AtomicU64,
    refused: AtomicU64,
    frames_dropped: AtomicU64,
    slow_consumers: AtomicU64,
    heartbeat_timeouts: AtomicU64,
    protocol_errors: AtomicU64,
    handler_errors: AtomicU64,
    handler_panics: AtomicU64,
    rate_limited: AtomicU64,
    /// Traffic folded in from sessions that ended.
    messages_in: AtomicU64,
    frames_in: AtomicU64,
    bytes_in: AtomicU64,
    frames_out: AtomicU64,
    bytes_out: AtomicU64,
}

impl ServerCounters {
    fn of(&self, event: Event) -> &AtomicU64 {
        match event {
            Event::SessionOpened => &self.sessions_opened,
            Event::ConnectionRefused => &self.refused,
            Event::FrameDropped => &self.frames_dropped,
            Event::SlowConsumer => &self.slow_consumers,
            Event::HeartbeatTimeout => &self.heartbeat_timeouts,
            Event::ProtocolError => &self.protocol_errors,
            Event::HandlerError => &self.handler_errors,
            Event::HandlerPanic => &self.handler_panics,
            Event::RateLimited => &self.rate_limited,
        }
    }

    pub(super) fn count(&self, event: Event) {
        self.of(event).fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn total(&self, event: Event) -> u64 {
        self.of(event).load(Ordering::Relaxed)
    }

    /// Moves what `session` counted into the totals, leaving it at zero.
    pub(super) fn fold(&self, session: &SessionCounters) {
        let fold = |from: &AtomicU64, into: &AtomicU64| {
            into.fetch_add(from.swap(0, Ordering::Relaxed), Ordering::Relaxed);
        };
        fold(&session.messages_in, &self.messages_in);
        fold(&session.frames_in, &self.frames_in);
        fold(&session.bytes_in, &self.bytes_in);
        fold(&session.frames_out, &self.frames_out);
        fold(&session.bytes_out, &self.bytes_out);
    }

    /// The snapshot users see: these totals plus the `live` sessions'.
    pub(super) fn snapshot<'a>(
        &self,
        current_connections: usize,
        live: impl Iterator<Item = &'a SessionCounters>,
    ) -> ConnectionStats {
        let mut traffic = SessionTotals::default();
        for session in live {
            let t = session.totals();
            traffic.messages_in += t.messages_in;
            traffic.frames_in += t.frames_in;
            traffic.bytes_in += t.bytes_in;
            traffic.frames_out += t.frames_out;
            traffic.bytes_out += t.bytes_out;
        }
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ConnectionStats {
            current_connections,
            total_connections: load(&self.sessions_opened),
            connections_refused: load(&self.refused),
            messages_in: load(&self.messages_in) + traffic.messages_in,
            frames_in: load(&self.frames_in) + traffic.frames_in,
            bytes_in: load(&self.bytes_in) + traffic.bytes_in,
            frames_out: load(&self.frames_out) + traffic.frames_out,
            bytes_out: load(&self.bytes_out) + traffic.bytes_out,
            frames_dropped: load(&self.frames_dropped),
            slow_consumer_disconnects: load(&self.slow_consumers),
            heartbeat_timeouts: load(&self.heartbeat_timeouts),
            protocol_errors: load(&self.protocol_errors),
            handler_errors: load(&self.handler_errors),
            handler_panics: load(&self.handler_panics),
            rate_limited: load(&self.rate_limited),
        }
    }
}

/// A snapshot of the server-wide connection counters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ConnectionStats {
    /// Sessions connected now.
    pub current_connections: usize,
    /// Sessions that completed the handshake since start.
    pub total_connections: u64,
    /// Connections refused at `max_connections`.
    pub connections_refused: u64,
    /// Messages of the protocol received and dispatched (to the middleware
    /// chain and the handler), whether or not a handler ran.
    pub messages_in: u64,
    /// Frames received, handshakes and pongs included.
    pub frames_in: u64,
    /// Bytes received, length prefixes included.
    pub bytes_in: u64,
    /// Frames written to sockets.
    pub frames_out: u64,
    /// Bytes written to sockets.
    pub bytes_out: u64,
    /// Frames dropped because a queue was full.
    pub frames_dropped: u64,
    /// Clients disconnected for a full queue.
    pub slow_consumer_disconnects: u64,
    /// Clients disconnected by the heartbeat.
    pub heartbeat_timeouts: u64,
    /// Undecodable, unknown or misplaced frames received.
    pub protocol_errors: u64,
    /// Handler calls that returned an error.
    pub handler_errors: u64,
    /// Handler calls that panicked.
    pub handler_panics: u64,
    /// Frames refused because the client was over its message rate.
    pub rate_limited: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_moves_a_session_into_the_totals() {
        let server = ServerCounters::default();
        let session = SessionCounters::default();
        session.frame_in(10);
        session.message_in();
        session.frames_out(2, 30);
        let live = server.snapshot(1, std::iter::once(&session));
        server.fold(&session);
        let ended = server.snapshot(0, std::iter::empty());
        assert_eq!(live.bytes_in, 10);
        assert_eq!((ended.messages_in, ended.frames_in), (1, 1));
        assert_eq!((ended.frames_out, ended.bytes_out), (2, 30));
        assert_eq!(session.totals().bytes_in, 0, "folding empties the session");
        // What a writer counts after the fold reaches the totals at the next fold.
        session.frames_out(1, 5);
        server.fold(&session);
        assert_eq!(server.snapshot(0, std::iter::empty()).bytes_out, 35);
    }
}
