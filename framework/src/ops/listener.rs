//! The operator's listener, bounded like every other input: at most
//! [`MAX_CONNECTIONS`] connections at once (more wait in the kernel's
//! backlog), and each connection lives at most [`CONNECTION_LIFETIME`], so
//! a client that opens sockets and sends nothing, or a byte a minute,
//! holds neither memory nor a place for ever.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Connections the operator's listener holds at once.
pub(crate) const MAX_CONNECTIONS: usize = 32;

/// How long one connection may live: a scrape or a page takes
/// milliseconds, and a browser opens a new connection when one closes.
pub(crate) const CONNECTION_LIFETIME: Duration = Duration::from_secs(30);

/// A listener that hands out at most [`MAX_CONNECTIONS`] connections at once.
#[derive(Debug)]
pub(super) struct Bounded {
    listener: TcpListener,
    places: Arc<Semaphore>,
    lifetime: Duration,
}

impl Bounded {
    pub(super) fn new(listener: TcpListener, max: usize, lifetime: Duration) -> Self {
        Bounded {
            listener,
            places: Arc::new(Semaphore::new(max)),
            lifetime,
        }
    }
}

impl axum::serve::Listener for Bounded {
    type Io = Limited;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Limited, SocketAddr) {
        // Waiting for a place before accepting leaves the next connection in
        // the kernel's backlog, where it costs the server nothing.
        let place = Arc::clone(&self.places)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        loop {
            match self.listener.accept().await {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let deadline =
                        Box::pin(tokio::time::sleep_until(Instant::now() + self.lifetime));
                    return (
                        Limited {
                            stream,
                            deadline,
                            _place: place,
                        },
                        peer,
                    );
                }
                Err(error) => {
                    tracing::warn!(%error, "the operator's listener failed to accept");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// A connection of the operator's listener: it fails once its time is up,
/// and gives its place back when dropped.
#[derive(Debug)]
pub(crate) struct Limited {
    stream: TcpStream,
    deadline: Pin<Box<Sleep>>,
    _place: OwnedSemaphorePermit,
}

impl Limited {
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.deadline.as_mut().poll(cx).is_ready()
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "the connection's time is up")
}

impl AsyncRead for Limited {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.expired(cx) {
            return Poll::Ready(Err(timed_out()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Limited {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.expired(cx) {
            return Poll::Ready(Err(timed_out()));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A connection that says nothing is dropped when its time is up, and
    /// its place goes to the next.
    #[tokio::test]
    async fn silent_connections_end_and_give_their_place_back() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut bounded = Bounded::new(listener, 1, Duration::from_millis(200));
        let _silent = TcpStream::connect(address).await.unwrap();
        let (mut first, _) = axum::serve::Listener::accept(&mut bounded).await;
        let mut second = TcpStream::connect(address).await.unwrap();
        // One place: the second waits while the first lives.
        let waiting = tokio::time::timeout(
            Duration::from_millis(100),
            axum::serve::Listener::accept(&mut bounded),
        )
        .await;
        assert!(waiting.is_err(), "a second connection got the only place");
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), first.read(&mut byte))
            .await
            .expect("the read ends when the time is up");
        assert_eq!(read.unwrap_err().kind(), io::ErrorKind::TimedOut);
        drop(first);
        let (mut next, _) = tokio::time::timeout(
            Duration::from_secs(5),
            axum::serve::Listener::accept(&mut bounded),
        )
        .await
        .expect("the place came back");
        second.write_all(b"x").await.unwrap();
        next.read_exact(&mut byte).await.unwrap();
        assert_eq!(&byte, b"x");
    }
}
