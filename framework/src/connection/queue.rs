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
    /// What the frames count, overhead included.
    bytes: usize,
    closed: bool,
    /// The connection is closing: a waiting [`OutboundQueue::pop`] returns.
    interrupted: bool,
    /// A reader waits for the bytes to fall to this many.
    drain_to: Option<usize>,
}

impl State {
    /// Takes the next frame; `true` beside it when a reader waiting for the
    /// queue to drain should be woken.
    fn take(&mut self) -> (Option<EncodedFrame>, bool) {
        let Some(frame) = self.frames.pop_front() else {
            return (None, false);
        };
        self.bytes -= frame.len() + FRAME_OVERHEAD;
        if self.frames.is_empty() && self.frames.capacity() > 0 {
            // Give the memory back: an idle connection keeps no queue.
            self.frames = VecDeque::new();
        }
        let drained = self.drain_to.is_some_and(|low| self.bytes <= low);
        if drained {
            self.drain_to = None;
        }
        (Some(frame), drained)
    }
}

/// Frames waiting for the writer.
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
        let cost = frame.len() + FRAME_OVERHEAD;
        let full = state.frames.len() >= bounds.frames || state.bytes + cost > bounds.bytes;
        if full && !state.frames.is_empty() {
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

    /// What the frames waiting now count, overhead included.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Takes what `state` gives, and wakes a reader the take let go on.
    fn take_from(&self, mut state: std::sync::MutexGuard<'_, State>) -> Option<EncodedFrame> {
        let (frame, drained) = state.take();
        self.bytes.store(state.bytes, Ordering::Relaxed);
        drop(state);
        if drained {
            self.drained.notify_waiters();
        }
        frame
    }

    /// Takes the next frame if there is one.
    pub(crate) fn try_pop(&self) -> Option<EncodedFrame> {
        self.take_from(self.lock())
    }

    /// Waits for the next frame; `None` once closed and empty, or once
    /// [`interrupt`](Self::interrupt)ed.
    ///
    /// Cancel safe: a frame is taken only when this returns it.
    pub(crate) async fn pop(&self) -> Option<EncodedFrame> {
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
                    return None;
                }
                if !state.frames.is_empty() {
                    return self.take_from(state);
                }
                if state.closed {
                    return None;
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

    /// Makes [`pop`](Self::pop) return `None` from now on, so the writer
    /// waits on the queue alone and still learns of a close; the frames
    /// stay, for [`try_pop`](Self::try_pop).
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
        assert_eq!(queue.try_pop(), Some(frame(b"a")));
        assert_eq!(queue.try_pop(), Some(frame(b"b")));
        assert_eq!(queue.try_pop(), None);
    }

    #[test]
    fn an_empty_queue_holds_no_memory() {
        let queue = OutboundQueue::default();
        for _ in 0..100 {
            queue.push(frame(b"frame"), UNBOUNDED).unwrap();
        }
        while queue.try_pop().is_some() {}
        assert_eq!(queue.lock().frames.capacity(), 0);
    }

    #[tokio::test]
    async fn pop_waits_for_a_push() {
        let queue = std::sync::Arc::new(OutboundQueue::default());
        let waiting = tokio::spawn({
            let queue = std::sync::Arc::clone(&queue);
            async move { queue.pop().await }
        });
        tokio::task::yield_now().await;
        queue.push(frame(b"late"), UNBOUNDED).unwrap();
        assert_eq!(waiting.await.unwrap(), Some(frame(b"late")));
        queue.close();
        assert_eq!(queue.pop().await, None);
    }

    /// Producers on several threads, one consumer that drains as the
    /// writer does (`try_pop` until empty, then `pop().await`): every frame
    /// arrives, none waits for a later push to be noticed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 3)]
    async fn no_push_goes_unnoticed() {
        const PRODUCERS: u64 = 3;
        const EACH: u64 = 5_000;
        let queue = std::sync::Arc::new(OutboundQueue::default());
        let consumer = tokio::spawn({
            let queue = std::sync::Arc::clone(&queue);
            async move {
                let mut got = 0;
                while got < PRODUCERS * EACH {
                    while queue.try_pop().is_some() {
                        got += 1;
                    }
                    if got == PRODUCERS * EACH {
                        break;
                    }
                    // A lost wake-up leaves the last frames here for ever.
                    match tokio::time::timeout(std::time::Duration::from_secs(10), queue.pop())
                        .await
                    {
                        Ok(Some(_)) => got += 1,
                        Ok(None) => break,
                        Err(_) => panic!("{got} of {} frames, then no wake-up", PRODUCERS * EACH),
                    }
                }
                got
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
    }

    /// Bytes bound the queue, with each frame's overhead; an empty queue
    /// takes one frame of any size; a reader waiting for a drain wakes
    /// once the writer has taken enough.
    #[tokio::test]
    async fn bytes_bound_the_queue_and_a_drain_wakes_the_reader() {
        let queue = std::sync::Arc::new(OutboundQueue::default());
        let bounds = QueueBounds {
            bytes: 3 * (8 + FRAME_OVERHEAD),
            frames: usize::MAX,
        };
        let eight = || frame(b"12345678");
        let huge = EncodedFrame::from_wire(Bytes::from(vec![0; 10_000]));
        queue
            .push(huge, bounds)
            .expect("an empty queue takes any frame");
        assert_eq!(queue.push(eight(), bounds), Err(PushError::Full));
        queue.try_pop().unwrap();
        for _ in 0..3 {
            queue.push(eight(), bounds).unwrap();
        }
        assert_eq!(queue.push(eight(), bounds), Err(PushError::Full));
        assert_eq!(queue.bytes(), 3 * (8 + FRAME_OVERHEAD));
        let waiting = tokio::spawn({
            let queue = std::sync::Arc::clone(&queue);
            async move { queue.drained(8 + FRAME_OVERHEAD).await }
        });
        tokio::task::yield_now().await;
        queue.try_pop().unwrap();
        assert!(!waiting.is_finished(), "two frames are still queued");
        queue.try_pop().unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
            .await
            .expect("the drain wakes the reader")
            .unwrap();
    }
}
