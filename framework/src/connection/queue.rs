//! The outbound queue of one connection: bounded, and free when empty.
//!
//! A `VecDeque` behind a mutex, with a `Notify` to wake the writer. Unlike
//! a channel it allocates nothing until the first frame and gives its
//! memory back whenever the writer empties it, so an idle connection's
//! queue costs a few words whatever its capacity.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;

use crate::wire::EncodedFrame;

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The queue holds `capacity` frames.
    Full,
    /// The writer is gone.
    Closed,
}

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<EncodedFrame>,
    closed: bool,
    /// The connection is closing: a waiting [`OutboundQueue::pop`] returns.
    interrupted: bool,
}

impl State {
    fn take(&mut self) -> Option<EncodedFrame> {
        let frame = self.frames.pop_front();
        if self.frames.is_empty() && self.frames.capacity() > 0 {
            // Give the memory back: an idle connection keeps no queue.
            self.frames = VecDeque::new();
        }
        frame
    }
}

/// Frames waiting for the writer.
#[derive(Debug)]
pub(crate) struct OutboundQueue {
    state: Mutex<State>,
    ready: Notify,
    capacity: usize,
}

impl OutboundQueue {
    pub(crate) fn new(capacity: usize) -> Self {
        OutboundQueue {
            state: Mutex::default(),
            ready: Notify::new(),
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a frame without waiting.
    pub(crate) fn push(&self, frame: EncodedFrame) -> Result<(), PushError> {
        let mut state = self.lock();
        if state.closed {
            return Err(PushError::Closed);
        }
        if state.frames.len() >= self.capacity {
            return Err(PushError::Full);
        }
        state.frames.push_back(frame);
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// Frames waiting now.
    pub(crate) fn len(&self) -> usize {
        self.lock().frames.len()
    }

    /// Takes the next frame if there is one.
    pub(crate) fn try_pop(&self) -> Option<EncodedFrame> {
        self.lock().take()
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
                let mut state = self.lock();
                if state.interrupted {
                    return None;
                }
                if let Some(frame) = state.take() {
                    return Some(frame);
                }
                if state.closed {
                    return None;
                }
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
    }

    /// Refuses further frames; those queued can still be taken.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn frame(bytes: &'static [u8]) -> EncodedFrame {
        EncodedFrame::from_wire(Bytes::from_static(bytes))
    }

    #[test]
    fn bounded_and_closable() {
        let queue = OutboundQueue::new(2);
        queue.push(frame(b"a")).unwrap();
        queue.push(frame(b"b")).unwrap();
        assert_eq!(queue.push(frame(b"c")), Err(PushError::Full));
        queue.close();
        assert_eq!(queue.push(frame(b"d")), Err(PushError::Closed));
        assert_eq!(queue.try_pop(), Some(frame(b"a")));
        assert_eq!(queue.try_pop(), Some(frame(b"b")));
        assert_eq!(queue.try_pop(), None);
    }

    #[test]
    fn an_empty_queue_holds_no_memory() {
        let queue = OutboundQueue::new(1024);
        for _ in 0..100 {
            queue.push(frame(b"frame")).unwrap();
        }
        while queue.try_pop().is_some() {}
        assert_eq!(queue.lock().frames.capacity(), 0);
    }

    #[tokio::test]
    async fn pop_waits_for_a_push() {
        let queue = std::sync::Arc::new(OutboundQueue::new(4));
        let waiting = tokio::spawn({
            let queue = std::sync::Arc::clone(&queue);
            async move { queue.pop().await }
        });
        tokio::task::yield_now().await;
        queue.push(frame(b"late")).unwrap();
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
        let queue = std::sync::Arc::new(OutboundQueue::new(usize::MAX));
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
                        queue.push(frame(b"frame")).unwrap();
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
}
