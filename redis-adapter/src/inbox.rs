//! What the other nodes sent, between the connection that reads it and
//! the task that delivers it, bounded in bytes.
//!
//! The `redis` crate reads a subscription as fast as Redis sends and
//! holds what it read in a channel without a bound, so the node itself
//! must not fall behind: the pump moves each message out of that channel
//! at once (a move, far cheaper than the parse that put it there) into
//! this inbox, and the deliverer empties it. When the deliverer falls
//! behind by more than the backlog, room and direct messages are dropped
//! and counted, so that the members who missed them can be told; presence
//! events, small and needed to keep the replica true, are kept up to four
//! times the backlog, beyond which they too are dropped, with everything
//! still queued (older than the replica about to be read again from
//! Redis, which replaces what they would have said).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use tokio::sync::Notify;

use crate::lock;

/// How far presence events may exceed the backlog before they too are
/// dropped.
const PRESENCE_FACTOR: usize = 4;

/// Most rooms whose dropped messages are counted one by one until the
/// deliverer looks; drops in more rooms are only counted in all.
const MAX_DROPPED_ROOMS: usize = 4096;

/// What a message from another node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A membership or node event.
    Presence,
    /// A message to one user of this node.
    Direct,
    /// A message to a room with members on this node.
    Room(u32),
}

/// What was dropped since the deliverer last looked.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Dropped {
    /// Room messages, per room.
    pub(crate) rooms: HashMap<u32, u64>,
    /// Room messages in rooms beyond [`MAX_DROPPED_ROOMS`].
    pub(crate) other_rooms: u64,
    /// Messages to single users.
    pub(crate) direct: u64,
    /// Whether a presence event was dropped: the replica must be read
    /// again.
    pub(crate) presence: bool,
}

impl Dropped {
    fn count(&mut self, kind: Kind) {
        match kind {
            Kind::Presence => self.presence = true,
            Kind::Direct => self.direct += 1,
            Kind::Room(room_id) => {
                if self.rooms.len() < MAX_DROPPED_ROOMS || self.rooms.contains_key(&room_id) {
                    *self.rooms.entry(room_id).or_default() += 1;
                } else {
                    self.other_rooms += 1;
                }
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.rooms.is_empty() && self.other_rooms == 0 && self.direct == 0 && !self.presence
    }
}

#[derive(Default)]
struct State {
    queue: VecDeque<(redis::Msg, Kind, usize)>,
    bytes: usize,
    dropped: Dropped,
}

/// The bounded queue between the pump and the deliverer.
pub(crate) struct Inbox {
    state: Mutex<State>,
    /// Wakes the deliverer.
    ready: Notify,
    /// Wakes whoever waits for the inbox to be empty.
    drained: Notify,
    backlog: usize,
}

impl Inbox {
    /// An inbox that holds at most `backlog` bytes of room and direct
    /// messages.
    pub(crate) fn new(backlog: usize) -> Self {
        Inbox {
            state: Mutex::default(),
            ready: Notify::new(),
            drained: Notify::new(),
            backlog,
        }
    }

    /// Queues `message`, or drops and counts it when the backlog is full;
    /// returns whether it was queued.
    pub(crate) fn push(&self, kind: Kind, message: redis::Msg) -> bool {
        let len = message.get_payload_bytes().len() + message.get_channel_name().len();
        let mut state = lock(&self.state);
        let limit = match kind {
            Kind::Presence => self.backlog.saturating_mul(PRESENCE_FACTOR),
            Kind::Direct | Kind::Room(_) => self.backlog,
        };
        if state.bytes + len > limit {
            state.dropped.count(kind);
            if kind == Kind::Presence {
                // Applied after the replica is read again, they would undo
                // what it says.
                let queued = std::mem::take(&mut state.queue);
                for (_, kind, _) in queued {
                    state.dropped.count(kind);
                }
                state.bytes = 0;
            }
            drop(state);
            // The deliverer reports drops, even when nothing else comes.
            self.ready.notify_one();
            return false;
        }
        state.bytes += len;
        state.queue.push_back((message, kind, len));
        drop(state);
        self.ready.notify_one();
        true
    }

    /// The next message and what it is, waiting for one; `None` when
    /// something was dropped since the last call, to be taken with
    /// [`take_dropped`](Self::take_dropped).
    pub(crate) async fn pop(&self) -> Option<(redis::Msg, Kind)> {
        loop {
            {
                let mut state = lock(&self.state);
                if !state.dropped.is_empty() {
                    return None;
                }
                if let Some((message, kind, len)) = state.queue.pop_front() {
                    state.bytes -= len;
                    return Some((message, kind));
                }
            }
            self.drained.notify_waiters();
            self.ready.notified().await;
        }
    }

    /// What was dropped since the last call.
    pub(crate) fn take_dropped(&self) -> Dropped {
        std::mem::take(&mut lock(&self.state).dropped)
    }

    /// Waits until the deliverer has taken every message queued.
    pub(crate) async fn drained(&self) {
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if lock(&self.state).queue.is_empty() {
                return;
            }
            drained.await;
        }
    }

    /// Bytes held now.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        lock(&self.state).bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message on `channel`, as the `redis` crate hands it over.
    fn message(channel: &str, payload: &[u8]) -> redis::Msg {
        let value = redis::Value::Array(vec![
            redis::Value::BulkString(b"message".to_vec()),
            redis::Value::BulkString(channel.as_bytes().to_vec()),
            redis::Value::BulkString(payload.to_vec()),
        ]);
        redis::Msg::from_value(&value).expect("a pub/sub message")
    }

    #[tokio::test]
    async fn the_backlog_bounds_room_messages_and_counts_the_drops() {
        // Room messages of 1 + 100 bytes: three fit in 310 bytes.
        let inbox = Inbox::new(310);
        let line = [7u8; 100];
        for _ in 0..5 {
            inbox.push(Kind::Room(4), message("r", &line));
        }
        assert_eq!(inbox.bytes(), 303);
        // Presence may go on beyond the backlog, up to four times it.
        assert!(inbox.push(Kind::Presence, message("p", b"J 2 4 9")));
        assert!(!inbox.push(Kind::Direct, message("t", &line)));
        // The drops come first, then the messages kept, in order.
        assert!(inbox.pop().await.is_none());
        let dropped = inbox.take_dropped();
        assert_eq!(dropped.rooms, HashMap::from([(4, 2)]));
        assert_eq!((dropped.direct, dropped.presence), (1, false));
        for _ in 0..3 {
            assert_eq!(inbox.pop().await.unwrap().0.get_channel_name(), "r");
        }
        assert_eq!(inbox.pop().await.unwrap().0.get_channel_name(), "p");
        assert_eq!(inbox.bytes(), 0);
        inbox.drained().await;
    }

    #[tokio::test]
    async fn presence_beyond_four_backlogs_drops_all_queued_for_a_reread() {
        let inbox = Inbox::new(10);
        assert!(inbox.push(Kind::Room(3), message("r", b"line")));
        let event = message("p", b"J 2 4 9");
        let mut kept = 0;
        while inbox.push(Kind::Presence, event.clone()) {
            kept += 1;
        }
        assert_eq!(kept, 4, "5 bytes of the line, then 8 bytes each, within 40");
        // What was queued is older than the replica about to be read.
        assert_eq!(inbox.bytes(), 0);
        assert!(inbox.pop().await.is_none());
        let dropped = inbox.take_dropped();
        assert!(dropped.presence);
        assert_eq!(dropped.rooms, HashMap::from([(3, 1)]));
        // What comes after the drop is newer: it is kept.
        assert!(inbox.push(Kind::Presence, event));
        assert_eq!(inbox.pop().await.unwrap().0.get_channel_name(), "p");
    }
}
