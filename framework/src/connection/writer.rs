//! The writer task of a connection: queue → transport, until the
//! connection closes; then what the close allows, and the close frame.
//!
//! The writer feeds the transport everything queued that fits in its
//! write buffer, flushes, and goes on; the transport decides how the
//! frames become syscalls (one `write` per 16 KiB batch on TCP). An idle
//! writer waits on its queue, and on the transport's own bytes (a
//! WebSocket's pong); a close interrupts that wait.
//! [`write_close`] is the one place a close frame is written, whether a
//! session ends, a handshake fails or a connection is refused.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Connection, queue};
use crate::codec::Codec;
use crate::transport::FrameWrite;
use crate::wire::{CloseCode, CloseFrame, EncodedFrame, Frame};

/// Time allowed to write the close frame to a client that is being dropped.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_millis(500);

/// The frames on their way to the transport: those taken from the queue
/// and not yet fed (the first of them may be one the transport had no
/// room for), and what was fed since the last flush.
struct Outbox {
    connection: Arc<Connection>,
    taken: VecDeque<EncodedFrame>,
    fed_frames: u64,
    fed_bytes: u64,
    /// The queue's count of what was fed: it is given back once written.
    fed_cost: usize,
}

impl Outbox {
    /// Feeds `sink` until it is full or nothing is queued; returns whether
    /// it holds frames to flush. Frames are taken from the queue a batch at
    /// a time, under one lock.
    fn fill<W: FrameWrite>(&mut self, sink: &mut W) -> bool {
        loop {
            if self.taken.is_empty() {
                self.taken = self.connection.queue.take_all();
                if self.taken.is_empty() {
                    break;
                }
            }
            while let Some(frame) = self.taken.pop_front() {
                let (len, cost) = (frame.len(), queue::cost(&frame));
                if let Err(frame) = sink.feed(frame) {
                    self.taken.push_front(frame);
                    return self.fed_frames > 0;
                }
                self.fed_frames += 1;
                self.fed_bytes += len as u64;
                self.fed_cost += cost;
            }
        }
        self.fed_frames > 0
    }

    /// Counts what the last flush wrote, and gives its bytes back to the
    /// queue.
    fn flushed(&mut self) {
        self.connection.record_out(self.fed_frames, self.fed_bytes);
        self.connection.queue.release(self.fed_cost);
        self.fed_frames = 0;
        self.fed_bytes = 0;
        self.fed_cost = 0;
    }
}

/// Writes everything fed to `sink`.
async fn flush<W: FrameWrite>(sink: &mut W) -> io::Result<()> {
    poll_fn(|cx| sink.poll_flush(cx)).await
}

/// Drains a connection's queue into its transport until the connection
/// closes, then delivers what the close allows and the close frame.
///
/// `force` is the server's "stop now" signal, used when a graceful
/// shutdown's drain time is over. It is not watched while the connection
/// lives: it is one token shared by every connection, and polling it on
/// each wake would take its lock on every write. A forced shutdown forces
/// each connection's own signal, which ends the loop, and the closing path
/// then sees `force`.
///
/// Not an `async fn`, whose future would hold its arguments twice for the
/// life of the connection (rust-lang/rust#62958).
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn would store its arguments twice (rust-lang/rust#62958)"
)]
pub(crate) fn run_writer<W: FrameWrite, C: Codec>(
    connection: Arc<Connection>,
    mut sink: W,
    force: CancellationToken,
) -> impl Future<Output = ()> + Send + 'static {
    async move {
        let mut outbox = Outbox {
            connection: Arc::clone(&connection),
            taken: VecDeque::new(),
            fed_frames: 0,
            fed_bytes: 0,
            fed_cost: 0,
        };
        loop {
            // A close ends the loop: `finish` delivers what the close
            // allows. Looked at here with a load, and below only while a
            // write has to wait, so a write that goes through at once
            // registers no waiter.
            if connection.is_closing() {
                break;
            }
            if !outbox.fill(&mut sink) {
                // Idle: the queue is waited on, and the transport's own
                // bytes (a WebSocket's pong); a close interrupts it.
                match idle(&connection, &mut sink).await {
                    Wake::Queued => continue,
                    Wake::Closing => break,
                    Wake::Transport => {}
                }
            }
            // Tried once with nothing to wait on: most writes go through at
            // once. A write that has to wait is boxed with its deadline, so
            // the timer lives only while a client is slow.
            let flushed = match poll_fn(|cx| Poll::Ready(sink.poll_flush(cx))).await {
                Poll::Ready(result) => result,
                Poll::Pending => match Box::pin(blocked_flush(&mut sink, &connection)).await {
                    Blocked::Flushed(result) => result,
                    Blocked::Closing => break,
                    Blocked::TimedOut => {
                        connection.write_timed_out();
                        break;
                    }
                },
            };
            if let Err(error) = flushed {
                tracing::debug!(user_id = connection.user_id, %error, "write failed");
                connection.close(CloseCode::Kicked, "write failed", false);
                return connection.finish_counting();
            }
            outbox.flushed();
        }

        // Boxed: the closing path runs once, and keeping its state out of
        // the task keeps every idle connection smaller.
        Box::pin(finish::<W, C>(outbox, sink, force)).await;
    }
}

/// What ended an idle wait.
enum Wake {
    /// Frames were queued.
    Queued,
    /// The connection is closing.
    Closing,
    /// The transport has bytes of its own to write.
    Transport,
}

/// Waits for frames to write, the transport's own bytes, or a close.
async fn idle<W: FrameWrite>(connection: &Connection, sink: &mut W) -> Wake {
    tokio::select! {
        biased;
        open = connection.queue.wait() => if open { Wake::Queued } else { Wake::Closing },
        () = poll_fn(|cx| sink.poll_idle(cx)) => Wake::Transport,
    }
}

/// How a write that had to wait ended.
enum Blocked {
    Flushed(io::Result<()>),
    /// The connection is closing: a slow consumer's close must not wait for
    /// its full socket.
    Closing,
    /// The client took no bytes for `write_timeout`.
    TimedOut,
}

/// Waits for a blocked write to finish, at most `write_timeout`.
async fn blocked_flush<W: FrameWrite>(sink: &mut W, connection: &Connection) -> Blocked {
    tokio::select! {
        biased;
        result = flush(sink) => Blocked::Flushed(result),
        () = connection.closing().cancelled() => Blocked::Closing,
        () = tokio::time::sleep(connection.shared.limits.write_timeout) => Blocked::TimedOut,
    }
}

/// Delivers what the close allows, then the close frame, then ends the
/// transport.
async fn finish<W: FrameWrite, C: Codec>(
    mut outbox: Outbox,
    mut sink: W,
    force: CancellationToken,
) {
    let connection = Arc::clone(&outbox.connection);
    let (close, drain) = connection.close_reason();
    let deliver = async {
        // What was half written is finished either way, so the close frame
        // lands on a frame boundary.
        flush(&mut sink).await?;
        outbox.flushed();
        connection.queue.close();
        if drain {
            while outbox.fill(&mut sink) {
                flush(&mut sink).await?;
                outbox.flushed();
            }
        }
        write_close::<W, C>(&mut sink, close).await
    };
    // A draining close has `drain_timeout` to deliver what is queued (and
    // the server's `force` token may end it sooner); otherwise the client
    // gets a short grace for the close frame.
    let grace = if drain {
        connection.shared.limits.drain_timeout
    } else {
        CLOSE_WRITE_TIMEOUT
    };
    tokio::select! {
        () = force.cancelled() => {}
        _ = tokio::time::timeout(grace, deliver) => {}
    }
    connection.queue.close();
    connection.finish_counting();
}

/// Writes the close frame, when there is one, and ends the transport.
///
/// The one place a close frame is written: at the end of a session, for a
/// failed handshake and for a refused connection. Call it with nothing
/// left unflushed; the caller bounds how long it may take.
pub(crate) async fn write_close<W: FrameWrite, C: Codec>(
    sink: &mut W,
    close: Option<&CloseFrame>,
) -> io::Result<()> {
    if let Some(close) = close {
        let frame = Frame::<()>::Close(close.clone());
        match EncodedFrame::encode::<C, _>(&frame) {
            Ok(frame) => {
                if let Err(frame) = sink.feed(frame) {
                    flush(sink).await?;
                    let _ = sink.feed(frame);
                }
                flush(sink).await?;
            }
            Err(error) => tracing::warn!(%error, "close frame not sent"),
        }
    }
    poll_fn(|cx| sink.poll_shutdown(cx, close)).await
}
