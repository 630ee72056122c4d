//! The writer task of a connection: queue → socket, in as few syscalls as
//! the socket allows.
//!
//! Everything queued is copied into one write buffer (up to
//! [`WRITE_BATCH`] bytes) and written with one `write` call; a frame that
//! is alone in the queue, or itself larger, is written straight from its
//! shared bytes. Copying small frames beats a vectored write of many small
//! slices on Linux, and the buffer is taken from the memory pool only while
//! there is something to write, so an idle connection holds none.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::Connection;
use crate::pool::{EnhancedMemoryPool, PooledBuffer};
use crate::wire::{self, CloseCode, Frame};

/// Bytes gathered into one write.
pub(crate) const WRITE_BATCH: usize = 16 * 1024;

/// Time allowed to write the close frame to a client that is being dropped.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_millis(500);

/// What one write call sends.
enum Chunk {
    /// Several frames copied together.
    Copied(PooledBuffer),
    /// One large frame, written from its shared bytes.
    Direct(Bytes),
}

/// A chunk being written: how far the socket took it, and how many frames
/// it holds.
struct Pending {
    chunk: Chunk,
    written: usize,
    frames: u64,
}

impl Pending {
    fn bytes(&self) -> &[u8] {
        match &self.chunk {
            Chunk::Copied(buffer) => buffer,
            Chunk::Direct(bytes) => bytes,
        }
    }
}

/// The frames waiting to be written: the queue, plus one frame taken off it
/// that did not fit in the last chunk.
struct Outbox {
    connection: Arc<Connection>,
    carry: Option<Bytes>,
    pool: Option<EnhancedMemoryPool>,
}

impl Outbox {
    fn next_now(&mut self) -> Option<Bytes> {
        self.carry
            .take()
            .or_else(|| self.connection.queue.try_pop())
    }

    /// Builds the next chunk from `first` and whatever else is queued.
    fn gather(&mut self, first: Bytes) -> Pending {
        let direct = |frame| Pending {
            chunk: Chunk::Direct(frame),
            written: 0,
            frames: 1,
        };
        if first.len() >= WRITE_BATCH {
            return direct(first);
        }
        // A lone frame (a quiet connection, a server under light load) is
        // written from its shared bytes: no buffer to take, nothing to copy.
        let Some(second) = self.next_now() else {
            return direct(first);
        };
        let mut buffer = self
            .pool
            .as_ref()
            .and_then(|pool| pool.allocate_buffer(WRITE_BATCH))
            .unwrap_or_else(|| PooledBuffer::unpooled(WRITE_BATCH));
        buffer.extend_from_slice(&first);
        let mut frames = 1;
        self.carry = Some(second);
        while let Some(next) = self.next_now() {
            if buffer.len() + next.len() > WRITE_BATCH {
                self.carry = Some(next);
                break;
            }
            buffer.extend_from_slice(&next);
            frames += 1;
        }
        Pending {
            chunk: Chunk::Copied(buffer),
            written: 0,
            frames,
        }
    }

    /// The next chunk if a frame is ready now.
    fn try_gather(&mut self) -> Option<Pending> {
        let first = self.next_now()?;
        Some(self.gather(first))
    }
}

/// Writes the rest of `pending`. Cancel safe: `pending` always says how far
/// the socket took it.
async fn write_pending<W: AsyncWrite + Unpin>(
    socket: &mut W,
    pending: &mut Pending,
    connection: &Connection,
) -> std::io::Result<()> {
    while pending.written < pending.bytes().len() {
        let written = socket.write(&pending.bytes()[pending.written..]).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        pending.written += written;
    }
    connection.record_out(pending.frames, pending.written as u64);
    Ok(())
}

/// Drains a connection's queue into its socket until the connection closes,
/// then writes the close frame.
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
pub(crate) fn run_writer<W: AsyncWrite + Unpin + Send + 'static>(
    connection: Arc<Connection>,
    mut socket: W,
    pool: Option<EnhancedMemoryPool>,
    force: CancellationToken,
) -> impl Future<Output = ()> + Send + 'static {
    async move {
        let mut outbox = Outbox {
            connection: Arc::clone(&connection),
            carry: None,
            pool,
        };
        let mut pending: Option<Pending> = None;
        loop {
            // A close ends the loop: `finish` delivers what the close
            // allows. Looked at here with a load, and below only while a
            // write has to wait, so a write that goes through at once
            // registers no waiter.
            if connection.is_closing() {
                break;
            }
            if pending.is_none() {
                pending = outbox.try_gather();
            }
            let Some(chunk) = pending.as_mut() else {
                // Idle: the queue alone is waited on; a close interrupts it.
                match connection.queue.pop().await {
                    Some(first) => pending = Some(outbox.gather(first)),
                    None => break,
                }
                continue;
            };
            let written = tokio::select! {
                biased;
                result = write_pending(&mut socket, chunk, &connection) => result,
                // A slow consumer's close must not wait for its full socket.
                () = connection.closing().cancelled() => break,
            };
            if let Err(error) = written {
                tracing::debug!(user_id = connection.user_id, %error, "write failed");
                connection.close(CloseCode::Kicked, "write failed", false);
                return connection.finish_counting();
            }
            pending = None;
        }

        // Boxed: the closing path runs once, and keeping its state out of
        // the task keeps every idle connection smaller.
        Box::pin(finish(connection, outbox, pending, socket, force)).await;
    }
}

/// Delivers what the close allows, then the close frame, then shuts the
/// socket down.
async fn finish<W: AsyncWrite + Unpin>(
    connection: Arc<Connection>,
    mut outbox: Outbox,
    mut pending: Option<Pending>,
    mut socket: W,
    force: CancellationToken,
) {
    let (close, drain) = connection.close_reason();
    let close = close.and_then(|frame| wire::encode_frame(&Frame::<()>::Close(frame.clone())).ok());
    let deliver = async {
        // What was half written is finished either way, so the close frame
        // lands on a frame boundary.
        if let Some(chunk) = pending.as_mut() {
            write_pending(&mut socket, chunk, &connection).await?;
        }
        connection.queue.close();
        if drain {
            while let Some(mut chunk) = outbox.try_gather() {
                write_pending(&mut socket, &mut chunk, &connection).await?;
            }
        }
        if let Some(close) = close {
            socket.write_all(&close).await?;
        }
        socket.shutdown().await
    };
    // A draining close may have much to deliver; the server's `force`
    // token bounds it. Otherwise the client gets a short grace.
    let grace = if drain {
        Duration::from_secs(3600)
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
