//! The outbound queue of one connection: bounded in bytes, and free when
//! empty.
//!
//! A `VecDeque` behind a mutex, with a `Notify` to wake the writer. Unlike
//! a channel it allocates nothing until the first frame and gives its
//! memory back whenever the writer empties it, so an idle connection's
//! queue costs a few words whatever its bounds. It counts its bytes (each
//! frame with [`FRAME_OVERHEAD`] for its slot and its share of the
//! buffer's bookkeeping), so that the session can stop reading a client
//! whose queue backs up, and wait for it to drain.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

use crate::wire::EncodedFrame;

/// Bytes a queued frame counts besides its own: its slot in the queue and
/// its share of the shared buffer's bookkeeping.
pub(crate) const FRAME_OVERHEAD: usize = 64;

/// How much a queue may hold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueBounds {
    /// Frames, counted with their overhead.
    pub(crate) bytes: usize,
    /// Frames.
    pub(crate) frames: usize,
}

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The queue is at one of its bounds.
    Full,
    /// The writer is gone.
    Closed,
}

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<EncodedFrame>,
    /// What the queued frames and those the writer took and has not
    /// written count, overhead included.
    bytes: usize,
    closed: bool,
    /// The connection is closing: a waiting [`OutboundQueue::wait`]
    /// returns.
    interrupted: bool,
    /// A reader waits for the bytes to fall to this many.
    drain_to: Option<usize>,
}

/// Frames waiting for the writer.
///
/// The writer takes everything queued at once ([`take_all`](Self::take_all)),
/// one lock a batch rather than a frame, and gives the frames' bytes back
/// once it has written them ([`release`](Self::release)): until then they
/// still count against the queue's bound.
#[derive(Debug, Default)]
pub(crate) struct OutboundQueue {
    state: Mutex<State>,
    /// Wakes the writer.
    ready: Notify,
    /// Wakes a reader waiting for the queue to drain.
    drained: Notify,
    /// `State::bytes`, readable without the lock.
    bytes: AtomicUsize,
}

/// What a frame counts against the queue's bound.
pub(crate) fn cost(frame: &EncodedFrame) -> usize {
    frame.len() + FRAME_OVERHEAD
}

impl OutboundQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a frame without waiting, within `bounds`; an empty queue
    /// takes a frame of any size.
    pub(crate) fn push(&self, frame: EncodedFrame, bounds: QueueBounds) -> Result<(), PushError> {
        let mut state = self.lock();
        if state.closed {
            return Err(PushError::Closed);
        }
        let cost = cost(&frame);
        let full = state.frames.len() >= bounds.frames || state.bytes + cost > bounds.bytes;
        if full && state.bytes > 0 {
            return Err(PushError::Full);
        }
        state.frames.push_back(frame);
        state.bytes += cost;
        self.bytes.store(state.bytes, Ordering::Relaxed);
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// Frames waiting now.
    pub(crate) fn len(&self) -> usize {
        self.lock().frames.len()
    }

    /// What the frames waiting now, and those taken and not yet written,
    /// count, overhead included.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Takes every frame queued now. The queue keeps no memory: an idle
    /// connection holds none.
    pub(crate) fn take_all(&self) -> VecDeque<EncodedFrame> {
        std::mem::take(&mut self.lock().frames)
    }

    /// Gives back the bytes of frames taken and written: `bytes` is the sum
    /// of their [`cost`]s.
    pub(crate) fn release(&self, bytes: usize) {
        let mut state = self.lock();
        state.bytes -= bytes;
        self.bytes.store(state.bytes, Ordering::Relaxed);
        let drained = state.drain_to.is_some_and(|low| state.bytes <= low);
        if drained {
            state.drain_to = None;
        }
        drop(state);
        if drained {
            self.drained.notify_waiters();
        }
    }

    /// Waits until frames are queued (`true`), or the queue is closed and
    /// empty or [`interrupt`](Self::interrupt)ed (`false`).
    ///
    /// Cancel safe.
    pub(crate) async fn wait(&self) -> bool {
        loop {
            let notified = self.ready.notified();
            tokio::pin!(notified);
            // Register before looking, so a push in between wakes us.
            notified.as_mut().enable();
            {
                // One lock for the three questions: this runs on every
                // wake of every writer.
                let state = self.lock();
                if state.interrupted {
                    return false;
                }
                if !state.frames.is_empty() {
                    return true;
                }
                if state.closed {
                    return false;
                }
            }
            notified.await;
        }
    }

    /// Waits until the queue counts `low` bytes or fewer, or the
    /// connection closes.
    ///
    /// Cancel safe.
    pub(crate) async fn drained(&self, low: usize) {
        loop {
            let notified = self.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut state = self.lock();
                if state.bytes <= low || state.interrupted || state.closed {
                    state.drain_to = None;
                    return;
                }
                state.drain_to = Some(low);
            }
            notified.await;
        }
    }

    /// Makes [`wait`](Self::wait) return `false` from now on, so the
    /// writer waits on the queue alone and still learns of a close; the
    /// frames stay, for [`take_all`](Self::take_all).
    pub(crate) fn interrupt(&self) {
        self.lock().interrupted = true;
        self.ready.notify_one();
        self.drained.notify_waiters();
    }

    /// Refuses further frames; those queued can still be taken.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
        self.drained.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    const UNBOUNDED: QueueBounds = QueueBounds {
        bytes: usize::MAX,
        frames: usize::MAX,
    };

    fn frame(bytes: &'static [u8]) -> EncodedFrame {
        EncodedFrame::from_wire(Bytes::from_static(bytes))
    }

    #[test]
    fn bounded_and_closable() {
        let queue = OutboundQueue::default();
        let bounds = QueueBounds {
            bytes: usize::MAX,
            frames: 2,
        };
        queue.push(frame(b"a"), bounds).unwrap();
        queue.push(frame(b"b"), bounds).unwrap();
        assert_eq!(queue.push(frame(b"c"), bounds), Err(PushError::Full));
        queue.close();
        assert_eq!(queue.push(frame(b"d"), bounds), Err(PushError::Closed));
        assert_eq!(queue.take_all(), [frame(b"a"), frame(b"b")]);
        assert!(queue.take_all().is_empty());
    }

    #[test]
    fn an_empty_queue_holds_no_memory() {
        let queue = OutboundQueue::default();
        for _ in 0..100 {
            queue.push(frame(b"frame"), UNBOUNDED).unwrap();
        }
        let taken = queue.take_all();
        assert_eq!(taken.len(), 100);
        assert_eq!(queue.lock().frames.capacity(), 0);
        // The bytes count until the writer says they are written.
        assert_eq!(queue.bytes(), 100 * cost(&frame(b"frame")));
        queue.release(taken.iter().map(cost).sum());
        assert_eq!(queue.bytes(), 0);
    }

    #[tokio::test]
    async fn wait_wakes_on_a_push() {
        let queue = std::sync::Arc::new(OutboundQueue::default());
        let waiting = tokio::spawn({
            let queue = std::sync::Arc::clone(&queue);
            async move { queue.wait().await }
        });
        tokio::task::yield_now().await;
        queue.push(frame(b"late"), UNBOUNDED).unwrap();
        assert!(waiting.await.unwrap());
        assert_eq!(queue.take_all(), [frame(b"late")]);
        queue.close();
        assert!(!queue.wait().await, "closed and empty");
    }

    /// Producers on several threads, one consumer that drains as the
    /// writer does (`take_all` until empty, then `wait().await`): every
    /// frame arrives, none waits for a later push to be noticed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 3)]
    async fn no_push_goes_unnoticed() {
        const PRODUCERS: usize = 3;
        const EACH: usize = 5_000;
        let queue = std::sync::Arc::new(OutboundQueue::default());
        let consumer = tokio::spawn({
            let queue = std::sync::Arc::clone(&queue);
            async move {
                let mut got = 0;
                loop {
                    let taken = queue.take_all();
                    got += taken.len();
                    queue.release(taken.iter().map(cost).sum());
                    if got == PRODUCERS * EACH {
                        return got;
                    }
                    // A lost wake-up leaves the last frames here for ever.
                    let woken =
                        tokio::time::timeout(std::time::Duration::from_secs(10), queue.wait());
                    match woken.await {
                        Ok(true) => {}
                        Ok(false) => return got,
                        Err(_) => panic!("{got} of {} frames, then no wake-up", PRODUCERS * EACH),
                    }
                }
            }
        });
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let queue = std::sync::Arc::clone(&queue);
                std::thread::spawn(move || {
                    for n in 0..EACH {
                        queue.push(frame(b"frame"), UNBOUNDED).unwrap();
                        // Now and then a pause, so the consumer empties
                        // the queue and waits.
                        if (n + p) % 8 == 0 {
                            std::thread::sleep(std::time::Duration::from_micros(20));
                        }
                    }
                })
            })
            .collect();
        for producer in producers {
            producer.join().unwrap();
        }
        assert_eq!(consumer.await.unwrap(), PRODUCERS * EACH);
        assert_eq!(queue.bytes(), 0);
    }

    /// Bytes bound the queue, with each frame's overhead and until the
    /// writer releases them; an empty queue takes one frame of any size; a
    /// reader waiting for a drain wakes once enough is written.
    #[tokio::test]
    async fn bytes_bound_the_queue_and_a_drain_wakes_the_reader() {
        let queue = std::sync::Arc::new(OutboundQueue::default());
        let eight = || frame(b"12345678");
        let bounds = QueueBounds {
            bytes: 3 * cost(&eight()),
            frames: usize::MAX,
        };
        let huge = EncodedFrame::from_wire(Bytes::from(vec![0; 10_000]));
        queue
            .push(huge, bounds)
            .expect("an empty queue takes any frame");
        assert_eq!(queue.push(eight(), bounds), Err(PushError::Full));
        let taken = queue.take_all();
        assert_eq!(
            queue.push(eight(), bounds),
            Err(PushError::Full),
            "not written yet"
        );
        queue.release(cost(&taken[0]));
        for _ in 0..3 {
            queue.push(eight(), bounds).unwrap();
        }
        assert_eq!(queue.push(eight(), bounds), Err(PushError::Full));
        assert_eq!(queue.bytes(), 3 * cost(&eight()));
        let waiting = tokio::spawn({
            let queue = std::sync::Arc::clone(&queue);
            async move { queue.drained(cost(&eight())).await }
        });
        tokio::task::yield_now().await;
        let taken = queue.take_all();
        queue.release(cost(&taken[0]));
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "two frames are still unwritten");
        queue.release(cost(&taken[1]));
        tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
            .await
            .expect("the drain wakes the reader")
            .unwrap();
    }
}
