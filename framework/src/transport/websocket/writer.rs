//! The writing half of a WebSocket connection: server frames written by
//! hand into the same 16 KiB batches as TCP.
//!
//! A server's frames are never masked, so a binary message is a 2 to 10
//! byte header in front of the payload; the writer puts both in its batch
//! (or, for a lone frame, writes the header and the shared payload in one
//! vectored write), as the TCP writer does with its length prefixes. No
//! frame is copied twice and no lock is taken per frame.
//!
//! The control frames the reading side's WebSocket layer answers with (a
//! pong to a client's ping, the reply to a client's close) come through
//! [`Control`]: the reader appends them, whole, and wakes the writer, which
//! writes them at the next frame boundary. Once a close frame has gone out,
//! whoever sent it, nothing more is written but the end of the stream.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker, ready};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use tokio::net::tcp::OwnedWriteHalf;

use super::super::FrameWrite;
use super::super::tcp::WRITE_BATCH;
use crate::pool::{EnhancedMemoryPool, PooledBuffer};
use crate::wire::{CloseFrame, EncodedFrame, websocket_close_code};

/// Control bytes the reader may leave for the writer. A client whose pings
/// outpace what it reads fills it, and its connection ends.
pub(super) const CONTROL_LIMIT: usize = 8 * 1024;

const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const FIN: u8 = 0x80;

/// A frame header: FIN, the opcode, and the payload's length in 1, 3 or 9
/// bytes (no mask: the server never masks).
#[derive(Debug, Clone, Copy)]
struct Header {
    bytes: [u8; 10],
    len: u8,
}

impl Header {
    fn new(opcode: u8, payload_len: usize) -> Header {
        let mut bytes = [0u8; 10];
        bytes[0] = FIN | opcode;
        let len = if payload_len < 126 {
            bytes[1] = payload_len as u8;
            2
        } else if let Ok(short) = u16::try_from(payload_len) {
            bytes[1] = 126;
            bytes[2..4].copy_from_slice(&short.to_be_bytes());
            4
        } else {
            bytes[1] = 127;
            bytes[2..10].copy_from_slice(&(payload_len as u64).to_be_bytes());
            10
        };
        Header { bytes, len }
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// What the reading side's WebSocket layer wrote, waiting for the writer.
#[derive(Debug, Default)]
pub(super) struct Control {
    state: Mutex<ControlState>,
    /// Whether `state` holds bytes: the writer looks here on every flush,
    /// and takes the lock only when there is something to take.
    waiting: AtomicBool,
}

#[derive(Debug, Default)]
struct ControlState {
    bytes: Vec<u8>,
    /// The writer, waiting while idle.
    writer: Option<Waker>,
}

impl Control {
    /// Takes whole frames from the reading side; fails when the client
    /// has left more than [`CONTROL_LIMIT`] bytes of answers unread.
    pub(super) fn push(&self, frames: &[u8]) -> io::Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.bytes.len() + frames.len() > CONTROL_LIMIT {
            return Err(io::Error::other(
                "the client's WebSocket pings outpace what it reads",
            ));
        }
        state.bytes.extend_from_slice(frames);
        self.waiting.store(true, Ordering::Release);
        if let Some(writer) = state.writer.take() {
            writer.wake();
        }
        Ok(())
    }

    /// Moves what is waiting into `out` (emptied first); returns whether
    /// there was any.
    fn take_into(&self, out: &mut Vec<u8>) -> bool {
        out.clear();
        if !self.waiting.load(Ordering::Acquire) {
            return false;
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::swap(&mut state.bytes, out);
        self.waiting.store(false, Ordering::Relaxed);
        !out.is_empty()
    }

    fn poll_waiting(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.bytes.is_empty() {
            state.writer = Some(cx.waker().clone());
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }
}

/// Whether `frames`, whole server frames, hold a close frame.
fn holds_close(frames: &[u8]) -> bool {
    let mut at = 0;
    while at + 2 <= frames.len() {
        if frames[at] & 0x0f == OP_CLOSE {
            return true;
        }
        let (header, len) = match frames[at + 1] & 0x7f {
            126 if at + 4 <= frames.len() => (
                4,
                usize::from(u16::from_be_bytes([frames[at + 2], frames[at + 3]])),
            ),
            127 if at + 10 <= frames.len() => {
                let mut len = [0u8; 8];
                len.copy_from_slice(&frames[at + 2..at + 10]);
                (
                    10,
                    usize::try_from(u64::from_be_bytes(len)).unwrap_or(usize::MAX),
                )
            }
            short @ 0..=125 => (2, usize::from(short)),
            _ => return false,
        };
        at = at.saturating_add(header).saturating_add(len);
    }
    false
}

/// What the next write sends.
#[derive(Debug)]
enum Chunk {
    /// Nothing fed.
    Empty,
    /// One frame: its header, then its shared bytes.
    Direct(Header, Bytes),
    /// Several frames, headers and payloads, copied together.
    Copied(PooledBuffer),
}

/// The writing half of a WebSocket connection.
#[derive(Debug)]
pub(crate) struct WsWriter {
    socket: OwnedWriteHalf,
    pool: Option<EnhancedMemoryPool>,
    chunk: Chunk,
    /// How much of `chunk` the socket took.
    written: usize,
    control: Arc<Control>,
    /// Control frames taken from `control`, being written.
    answers: Vec<u8>,
    answers_written: usize,
    /// Whether a close frame went out: nothing follows it.
    closed: bool,
}

impl WsWriter {
    pub(super) fn new(
        socket: OwnedWriteHalf,
        pool: Option<EnhancedMemoryPool>,
        control: Arc<Control>,
    ) -> WsWriter {
        WsWriter {
            socket,
            pool,
            chunk: Chunk::Empty,
            written: 0,
            control,
            answers: Vec::new(),
            answers_written: 0,
            closed: false,
        }
    }

    /// Appends a frame to a batch, starting one from a lone frame.
    fn append(&mut self, header: Header, payload: &[u8]) -> bool {
        let len = header.as_slice().len() + payload.len();
        match &mut self.chunk {
            Chunk::Empty => unreachable!("a lone frame is fed directly"),
            Chunk::Direct(first_header, first) => {
                let first_len = first_header.as_slice().len() + first.len();
                if first_len + len > WRITE_BATCH {
                    return false;
                }
                let mut buffer = PooledBuffer::from(self.pool.as_ref(), WRITE_BATCH);
                buffer.extend_from_slice(first_header.as_slice());
                buffer.extend_from_slice(first);
                buffer.extend_from_slice(header.as_slice());
                buffer.extend_from_slice(payload);
                self.chunk = Chunk::Copied(buffer);
            }
            Chunk::Copied(buffer) => {
                if buffer.len() + len > WRITE_BATCH {
                    return false;
                }
                buffer.extend_from_slice(header.as_slice());
                buffer.extend_from_slice(payload);
            }
        }
        true
    }

    /// Writes what is left of the chunk; `Ready` once all of it is written.
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let n = match &self.chunk {
                Chunk::Empty => return Poll::Ready(Ok(())),
                Chunk::Direct(header, payload) => {
                    let header = header.as_slice();
                    let total = header.len() + payload.len();
                    if self.written == total {
                        break;
                    }
                    let slices = if self.written < header.len() {
                        [IoSlice::new(&header[self.written..]), IoSlice::new(payload)]
                    } else {
                        [
                            IoSlice::new(&payload[self.written - header.len()..]),
                            IoSlice::new(&[]),
                        ]
                    };
                    ready!(Pin::new(&mut self.socket).poll_write_vectored(cx, &slices))?
                }
                Chunk::Copied(buffer) => {
                    if self.written == buffer.len() {
                        break;
                    }
                    ready!(Pin::new(&mut self.socket).poll_write(cx, &buffer[self.written..]))?
                }
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        // Done: the buffer goes back now, not at the next write.
        self.chunk = Chunk::Empty;
        self.written = 0;
        Poll::Ready(Ok(()))
    }

    /// Writes the control frames taken, if any.
    fn poll_answers(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.answers_written < self.answers.len() {
            let rest = &self.answers[self.answers_written..];
            let n = ready!(Pin::new(&mut self.socket).poll_write(cx, rest))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.answers_written += n;
        }
        Poll::Ready(Ok(()))
    }

    /// Takes the reader's control frames, at a frame boundary.
    fn take_answers(&mut self) -> bool {
        if !self.control.take_into(&mut self.answers) {
            return false;
        }
        self.answers_written = 0;
        if holds_close(&self.answers) {
            // The reply to the client's close: what was fed after it is
            // dropped, and our own close frame is not sent.
            self.closed = true;
        }
        true
    }
}

impl FrameWrite for WsWriter {
    #[inline]
    fn feed(&mut self, frame: EncodedFrame) -> Result<(), EncodedFrame> {
        if self.written > 0 {
            return Err(frame);
        }
        if self.closed {
            // After a close frame the client reads nothing more.
            return Ok(());
        }
        let payload = frame.payload_slice();
        let header = Header::new(OP_BINARY, payload.len());
        if let Chunk::Empty = self.chunk {
            // A lone frame (a quiet connection) is written from its shared
            // bytes: no buffer, no copy.
            self.chunk = Chunk::Direct(header, frame.into_payload());
            return Ok(());
        }
        if self.append(header, payload) {
            Ok(())
        } else {
            Err(frame)
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            ready!(self.poll_answers(cx))?;
            // Control frames go out between frames: before a chunk starts,
            // or once it is done.
            if self.written == 0 && self.take_answers() {
                continue;
            }
            if matches!(self.chunk, Chunk::Empty) {
                return Poll::Ready(Ok(()));
            }
            ready!(self.poll_chunk(cx))?;
        }
    }

    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.control.poll_waiting(cx)
    }

    fn poll_shutdown(
        &mut self,
        cx: &mut Context<'_>,
        close: Option<&CloseFrame>,
    ) -> Poll<io::Result<()>> {
        ready!(self.poll_flush(cx))?;
        if !self.closed {
            // The close frame: status 4000 + the gamewire code, and the
            // reason cut to the 123 bytes a control frame has room for.
            let mut payload = Vec::with_capacity(125);
            if let Some(close) = close {
                payload.extend_from_slice(&websocket_close_code(close.code).to_be_bytes());
                payload.extend_from_slice(cut(&close.reason, 123).as_bytes());
            }
            self.answers.clear();
            self.answers
                .extend_from_slice(Header::new(OP_CLOSE, payload.len()).as_slice());
            self.answers.extend_from_slice(&payload);
            self.answers_written = 0;
            self.closed = true;
        }
        ready!(self.poll_answers(cx))?;
        Pin::new(&mut self.socket).poll_shutdown(cx)
    }
}

/// `text` cut to at most `max` bytes, on a character boundary.
pub(super) fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_take_the_shortest_length() {
        assert_eq!(Header::new(OP_BINARY, 0).as_slice(), [0x82, 0]);
        assert_eq!(Header::new(OP_BINARY, 125).as_slice(), [0x82, 125]);
        assert_eq!(Header::new(OP_BINARY, 126).as_slice(), [0x82, 126, 0, 126]);
        assert_eq!(
            Header::new(OP_BINARY, 65_535).as_slice(),
            [0x82, 126, 0xff, 0xff]
        );
        assert_eq!(
            Header::new(OP_BINARY, 65_536).as_slice(),
            [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]
        );
        assert_eq!(Header::new(OP_CLOSE, 2).as_slice(), [0x88, 2]);
    }

    #[test]
    fn a_close_is_found_among_control_frames() {
        let pong = [0x8a, 3, 1, 2, 3];
        let close = [0x88, 2, 0x03, 0xe8];
        assert!(!holds_close(&pong));
        assert!(holds_close(&[&pong[..], &close[..]].concat()));
        let long_pong = [&[0x8a, 126, 0, 200][..], &[0u8; 200][..], &close[..]].concat();
        assert!(holds_close(&long_pong));
    }

    #[test]
    fn control_is_bounded() {
        let control = Control::default();
        control.push(&[0u8; CONTROL_LIMIT]).unwrap();
        assert!(control.push(&[0x8a, 0]).is_err());
        let mut out = Vec::new();
        assert!(control.take_into(&mut out));
        assert_eq!(out.len(), CONTROL_LIMIT);
        assert!(!control.take_into(&mut out));
    }

    #[test]
    fn close_reasons_fit_a_close_frame() {
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("short", 123), "short");
        assert_eq!(websocket_close_code(5), 4005);
    }
}
