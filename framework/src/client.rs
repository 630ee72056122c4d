//! A Rust client: connect, handshake, send, and a stream of what arrives.
//!
//! [`Client`] speaks the wire protocol for a protocol enum `M`. It answers
//! the server's pings by itself, so a client that is only reading stays
//! connected. Tests, the examples and the load tool use it.
//!
//! ```no_run
//! use gamewire::ChatMessage;
//! use gamewire::client::Client;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), gamewire::client::ClientError> {
//!     let mut client = Client::<ChatMessage>::connect("127.0.0.1:7878").await?;
//!     client.send(&ChatMessage::JoinRoom { room_id: 1 }).await?;
//!     let joined = client.next_message().await?;
//!     println!("{joined:?}");
//!     Ok(())
//! }
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::codec::{Bincode, Codec, MAX_FRAME_LEN_LIMIT};
use crate::protocol::Message;
use crate::wire::{
    self, CloseFrame, DecodeError, ENVELOPE_VERSION, EncodeError, EncodedFrame, ErrorFrame, Frame,
    FrameSplitter, Hello, Welcome,
};

/// A client operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A socket error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The server refused the handshake, or closed the connection.
    #[error("closed by the server (code {}): {}", .0.code, .0.reason)]
    Closed(CloseFrame),
    /// The server answered with an error frame.
    #[error("server error (code {}): {}", .0.code, .0.message)]
    Server(ErrorFrame),
    /// The connection ended without a close frame.
    #[error("the connection ended")]
    Disconnected,
    /// A frame from the server could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A message could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The server did not answer in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The server's first answer was not a welcome.
    #[error("unexpected frame during the handshake")]
    Handshake,
}

/// How a [`Client`] connects.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Sent in the hello, for the server's authenticator.
    pub token: String,
    /// Time allowed for connecting and the handshake.
    pub handshake_timeout: Duration,
    /// Largest frame accepted from the server.
    pub max_frame_len: usize,
    /// Received items buffered before the client stops reading.
    pub incoming_capacity: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            token: String::new(),
            handshake_timeout: Duration::from_secs(10),
            max_frame_len: MAX_FRAME_LEN_LIMIT,
            incoming_capacity: 1024,
        }
    }
}

impl ClientConfig {
    /// The default configuration with a token.
    pub fn with_token(token: impl Into<String>) -> Self {
        ClientConfig {
            token: token.into(),
            ..Default::default()
        }
    }
}

/// Something the server sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming<M> {
    /// A message of the protocol.
    Message(M),
    /// An error frame: a message of ours could not be processed.
    Error(ErrorFrame),
    /// The close frame; nothing follows it.
    Closed(CloseFrame),
}

/// A connection to a gamewire server speaking protocol `M`.
pub struct Client<M: Message> {
    welcome: Welcome,
    sender: ClientSender<M>,
    incoming: mpsc::Receiver<Incoming<M>>,
    /// Items read past while waiting for a reply; `recv` returns them first.
    stash: VecDeque<Incoming<M>>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
    /// Tells the writer to send what is queued and close the socket.
    closing: CancellationToken,
}

impl<M: Message> fmt::Debug for Client<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("protocol", &M::PROTOCOL.name)
            .field("user_id", &self.welcome.user_id)
            .finish_non_exhaustive()
    }
}

/// A cloneable handle that sends on a [`Client`]'s connection.
pub struct ClientSender<M> {
    outbound: mpsc::Sender<Bytes>,
    _protocol: std::marker::PhantomData<fn(M)>,
}

impl<M> Clone for ClientSender<M> {
    fn clone(&self) -> Self {
        ClientSender {
            outbound: self.outbound.clone(),
            _protocol: std::marker::PhantomData,
        }
    }
}

impl<M> fmt::Debug for ClientSender<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSender").finish_non_exhaustive()
    }
}

impl<M: Message> ClientSender<M> {
    /// Queues `message` for the server, waiting while the queue is full.
    ///
    /// # Errors
    ///
    /// [`ClientError::Disconnected`] when the connection is gone.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the message is queued entirely or not at all.
    pub async fn send(&self, message: &M) -> Result<(), ClientError> {
        self.send_frame(encode(&Frame::App(message))?).await
    }

    /// Queues `message` stamped with the current time, so the server records
    /// its end-to-end latency (see [`Frame::Stamped`]).
    ///
    /// # Errors
    ///
    /// [`ClientError::Disconnected`] when the connection is gone.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn send_stamped(&self, message: &M) -> Result<(), ClientError> {
        let frame = Frame::Stamped {
            sent_at_us: wire::unix_micros(),
            message,
        };
        self.send_frame(encode(&frame)?).await
    }

    /// Queues an already encoded frame (length prefix included).
    ///
    /// # Errors
    ///
    /// [`ClientError::Disconnected`] when the connection is gone.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn send_frame(&self, frame: Bytes) -> Result<(), ClientError> {
        self.outbound
            .send(frame)
            .await
            .map_err(|_| ClientError::Disconnected)
    }
}

impl<M: Message> Client<M> {
    /// Connects to `address` and performs the handshake.
    ///
    /// # Errors
    ///
    /// A connection error, a timeout, or [`ClientError::Closed`] when the
    /// server refuses the handshake (for a protocol mismatch, say).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: nothing is left behind.
    pub async fn connect(address: impl ToSocketAddrs) -> Result<Self, ClientError> {
        Self::connect_with(address, ClientConfig::default()).await
    }

    /// Connects with a [`ClientConfig`].
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn connect_with(
        address: impl ToSocketAddrs,
        config: ClientConfig,
    ) -> Result<Self, ClientError> {
        let limit = config.handshake_timeout;
        tokio::time::timeout(limit, Self::establish(address, config))
            .await
            .map_err(|_| ClientError::Timeout(limit))?
    }

    async fn establish(
        address: impl ToSocketAddrs,
        config: ClientConfig,
    ) -> Result<Self, ClientError> {
        let socket = TcpStream::connect(address).await?;
        socket.set_nodelay(true)?;
        let (mut reader, mut writer) = socket.into_split();
        let hello = Frame::<()>::Hello(Hello {
            version: ENVELOPE_VERSION,
            protocol: M::PROTOCOL.name.to_owned(),
            fingerprint: M::PROTOCOL.fingerprint,
            token: config.token.clone(),
        });
        writer.write_all(&encode(&hello)?).await?;
        let splitter = FrameSplitter::new(config.max_frame_len);
        let mut buf = BytesMut::with_capacity(4096);
        let welcome = loop {
            if let Some(payload) = splitter.split(&mut buf)? {
                match Bincode::decode::<Frame<M>>(&payload)? {
                    Frame::Welcome(welcome) => break welcome,
                    Frame::Close(close) => return Err(ClientError::Closed(close)),
                    _ => return Err(ClientError::Handshake),
                }
            }
            if reader.read_buf(&mut buf).await? == 0 {
                return Err(ClientError::Disconnected);
            }
        };
        let (outbound, outbound_rx) = mpsc::channel(1024);
        let (incoming_tx, incoming) = mpsc::channel(config.incoming_capacity);
        let closing = CancellationToken::new();
        let writer = tokio::spawn(write_loop(writer, outbound_rx, closing.clone()));
        let reader = tokio::spawn(read_loop::<M>(
            reader,
            buf,
            splitter,
            incoming_tx,
            outbound.clone(),
        ));
        Ok(Client {
            welcome,
            sender: ClientSender {
                outbound,
                _protocol: std::marker::PhantomData,
            },
            incoming,
            stash: VecDeque::new(),
            reader,
            writer,
            closing,
        })
    }

    /// The user id the server gave this session.
    pub fn user_id(&self) -> u32 {
        self.welcome.user_id
    }

    /// The server's welcome: user id, heartbeat settings, frame limit.
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// A handle for sending from other tasks.
    pub fn sender(&self) -> ClientSender<M> {
        self.sender.clone()
    }

    /// Sends `message` to the server.
    ///
    /// # Errors
    ///
    /// [`ClientError::Disconnected`] when the connection is gone.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn send(&self, message: &M) -> Result<(), ClientError> {
        self.sender.send(message).await
    }

    /// Sends `message` stamped with the current time; see
    /// [`ClientSender::send_stamped`].
    ///
    /// # Errors
    ///
    /// [`ClientError::Disconnected`] when the connection is gone.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn send_stamped(&self, message: &M) -> Result<(), ClientError> {
        self.sender.send_stamped(message).await
    }

    /// The next thing the server sent; `None` once the connection is over
    /// and everything received was returned.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn recv(&mut self) -> Option<Incoming<M>> {
        match self.stash.pop_front() {
            Some(item) => Some(item),
            None => self.incoming.recv().await,
        }
    }

    /// The next message; an error frame or the close frame is an error.
    ///
    /// # Errors
    ///
    /// [`ClientError::Server`] for an error frame, [`ClientError::Closed`]
    /// for the close frame, [`ClientError::Disconnected`] when the
    /// connection ended.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn next_message(&mut self) -> Result<M, ClientError> {
        match self.recv().await {
            Some(Incoming::Message(message)) => Ok(message),
            Some(Incoming::Error(error)) => Err(ClientError::Server(error)),
            Some(Incoming::Closed(close)) => Err(ClientError::Closed(close)),
            None => Err(ClientError::Disconnected),
        }
    }

    /// Sends `message`, then waits for the first message for which
    /// `is_reply` holds, or for an error frame. What arrives in between is
    /// kept for [`recv`](Self::recv).
    ///
    /// # Errors
    ///
    /// [`ClientError::Server`] when an error frame arrives first, the errors
    /// of [`next_message`](Self::next_message) otherwise.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: a reply that arrives after cancellation is returned
    /// by a later `recv`.
    pub async fn request(
        &mut self,
        message: &M,
        is_reply: impl Fn(&M) -> bool,
    ) -> Result<M, ClientError> {
        self.send(message).await?;
        let mut skipped = VecDeque::new();
        let result = loop {
            match self.recv().await {
                Some(Incoming::Message(reply)) if is_reply(&reply) => break Ok(reply),
                Some(Incoming::Error(error)) => break Err(ClientError::Server(error)),
                Some(Incoming::Closed(close)) => break Err(ClientError::Closed(close)),
                Some(other) => skipped.push_back(other),
                None => break Err(ClientError::Disconnected),
            }
        };
        skipped.extend(self.stash.drain(..));
        self.stash = skipped;
        result
    }

    /// Closes the connection after what is queued is sent.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe; the connection is dropped either way.
    pub async fn close(mut self) {
        self.reader.abort();
        self.closing.cancel();
        let _ = (&mut self.writer).await;
    }
}

impl<M: Message> Drop for Client<M> {
    fn drop(&mut self) {
        self.reader.abort();
        self.closing.cancel();
    }
}

async fn write_loop(
    mut writer: tokio::net::tcp::OwnedWriteHalf,
    mut outbound: mpsc::Receiver<Bytes>,
    closing: CancellationToken,
) {
    let mut buf = BytesMut::new();
    loop {
        let frame = tokio::select! {
            frame = outbound.recv() => frame,
            // Closing: send what is queued, then shut down.
            () = closing.cancelled() => outbound.try_recv().ok(),
        };
        let Some(frame) = frame else { break };
        buf.extend_from_slice(&frame);
        // Coalesce whatever else is queued into the same write.
        while buf.len() < 64 * 1024 {
            match outbound.try_recv() {
                Ok(frame) => buf.extend_from_slice(&frame),
                Err(_) => break,
            }
        }
        if writer.write_all(&buf).await.is_err() {
            return;
        }
        buf.clear();
    }
    let _ = writer.shutdown().await;
}

async fn read_loop<M: Message>(
    mut reader: tokio::net::tcp::OwnedReadHalf,
    mut buf: BytesMut,
    splitter: FrameSplitter,
    incoming: mpsc::Sender<Incoming<M>>,
    outbound: mpsc::Sender<Bytes>,
) {
    loop {
        loop {
            let payload = match splitter.split(&mut buf) {
                Ok(Some(payload)) => payload,
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(%error, "unreadable frame from the server");
                    return;
                }
            };
            let item = match Bincode::decode::<Frame<M>>(&payload) {
                Ok(Frame::App(message)) => Incoming::Message(message),
                Ok(Frame::Error(error)) => Incoming::Error(error),
                Ok(Frame::Close(close)) => {
                    let _ = incoming.send(Incoming::Closed(close)).await;
                    return;
                }
                Ok(Frame::Ping { nonce }) => {
                    if let Ok(pong) = encode(&Frame::<()>::Pong { nonce }) {
                        let _ = outbound.try_send(pong);
                    }
                    continue;
                }
                Ok(_) => continue,
                Err(error) => {
                    tracing::warn!(%error, "undecodable frame from the server");
                    continue;
                }
            };
            if incoming.send(item).await.is_err() {
                return;
            }
        }
        match reader.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Encodes a frame with the codec the server speaks, length prefix
/// included.
fn encode<T: serde::Serialize + ?Sized>(value: &T) -> Result<Bytes, EncodeError> {
    EncodedFrame::encode::<Bincode, T>(value).map(EncodedFrame::into_bytes)
}
