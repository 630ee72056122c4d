//! The session over TCP and over a message transport of the WebSocket
//! shape, and the size of its futures.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::ChatMessage;
use crate::codec::{Bincode, Codec};
use crate::connection::run_writer;
use crate::transport::{FrameWrite, TransportSettings};
use crate::wire::{ENVELOPE_VERSION, EncodedFrame, Frame, Hello};

/// Every idle connection costs its two task futures; keep them small.
/// (Debug-build sizes; the bounds leave room for compiler changes.)
#[tokio::test]
async fn session_futures_stay_small() {
    let blueprint = crate::TcpGameService::with_default_config().blueprint;
    let runtime = Arc::new(Runtime::<crate::ChatMessage, Bincode>::build(&blueprint).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (socket, peer) = listener.accept().await.unwrap();
    let tickets = runtime.shared.admission.admit(peer.ip()).unwrap();
    let session = run_session(Arc::clone(&runtime), tickets, socket, peer);
    let size = std::mem::size_of_val(&session);
    // 424 bytes on 2026-12-02, the session's tracing span (40) included.
    assert!(size <= 448, "the reader task's future grew to {size} bytes");
    let (_reader, writer) = client.open(&runtime.transport).await.unwrap();
    let connection = runtime.shared.connections.open(1, peer, None);
    let writer = run_writer::<_, Bincode>(connection, writer, CancellationToken::new());
    let size = std::mem::size_of_val(&writer);
    assert!(size <= 512, "the writer task's future grew to {size} bytes");
}

/// A message transport over channels, the shape of a WebSocket: each
/// message is one payload, with no length prefix.
struct Pipe {
    inbound: mpsc::UnboundedReceiver<Bytes>,
    outbound: mpsc::UnboundedSender<Bytes>,
}

struct PipeReader {
    inbound: mpsc::UnboundedReceiver<Bytes>,
    max_frame_len: usize,
}

struct PipeWriter {
    outbound: Option<mpsc::UnboundedSender<Bytes>>,
    fed: Vec<Bytes>,
}

impl Transport for Pipe {
    type Reader = PipeReader;
    type Writer = PipeWriter;

    const NAME: &'static str = "pipe";

    async fn open(self, settings: &TransportSettings) -> std::io::Result<(PipeReader, PipeWriter)> {
        let reader = PipeReader {
            inbound: self.inbound,
            max_frame_len: settings.max_frame_len,
        };
        let writer = PipeWriter {
            outbound: Some(self.outbound),
            fed: Vec::new(),
        };
        Ok((reader, writer))
    }
}

impl FrameRead for PipeReader {
    fn poll_frame(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Result<Option<Inbound>, ReadError>> {
        self.inbound.poll_recv(cx).map(|message| match message {
            Some(payload) if payload.len() > self.max_frame_len => Err(ReadError::TooLarge {
                len: payload.len(),
                max: self.max_frame_len,
            }),
            Some(payload) => Ok(Some(Inbound {
                payload,
                read_at: Instant::now(),
            })),
            None => Ok(None),
        })
    }

    fn frame_started(&self) -> bool {
        // A message arrives whole or not at all.
        false
    }

    fn set_max_frame_len(&mut self, max_frame_len: usize) {
        self.max_frame_len = max_frame_len;
    }
}

impl FrameWrite for PipeWriter {
    fn feed(&mut self, frame: EncodedFrame) -> Result<(), EncodedFrame> {
        if self.fed.len() == 8 {
            return Err(frame);
        }
        self.fed.push(frame.payload());
        Ok(())
    }

    fn poll_flush(&mut self, _: &mut std::task::Context<'_>) -> Poll<std::io::Result<()>> {
        let outbound = self
            .outbound
            .as_ref()
            .ok_or(std::io::ErrorKind::BrokenPipe)?;
        for message in self.fed.drain(..) {
            let _ = outbound.send(message);
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        &mut self,
        _: &mut std::task::Context<'_>,
        _: Option<&crate::wire::CloseFrame>,
    ) -> Poll<std::io::Result<()>> {
        self.outbound = None;
        Poll::Ready(Ok(()))
    }
}

async fn next(messages: &mut mpsc::UnboundedReceiver<Bytes>) -> Frame<ChatMessage> {
    let message = tokio::time::timeout(Duration::from_secs(10), messages.recv())
        .await
        .expect("the server answers")
        .expect("the transport is open");
    Bincode::decode(&message).expect("one message is one whole payload")
}

fn payload(frame: &Frame<ChatMessage>) -> Bytes {
    EncodedFrame::encode::<Bincode, _>(frame).unwrap().payload()
}

/// The session, queue and writer run unchanged over a transport that
/// frames by message: handshake, a request and its reply, a room, and
/// the end, with the chat's `UserLeft` hook.
#[tokio::test]
async fn a_message_transport_needs_no_change_to_the_session() {
    let blueprint = crate::TcpGameService::with_default_config().blueprint;
    let runtime = Arc::new(Runtime::<ChatMessage, Bincode>::build(&blueprint).unwrap());
    runtime.shared.connections.serve::<ChatMessage, Bincode>();
    let (to_server, inbound) = mpsc::unbounded_channel();
    let (outbound, mut from_server) = mpsc::unbounded_channel();
    let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let tickets = runtime.shared.admission.admit(peer.ip()).unwrap();
    let pipe = Pipe { inbound, outbound };
    let session = tokio::spawn(run_session(Arc::clone(&runtime), tickets, pipe, peer));

    let hello = Frame::Hello(Hello {
        version: ENVELOPE_VERSION,
        protocol: "ChatMessage".into(),
        fingerprint: <ChatMessage as Message>::PROTOCOL.fingerprint,
        token: String::new(),
    });
    to_server.send(payload(&hello)).unwrap();
    let Frame::Welcome(welcome) = next(&mut from_server).await else {
        panic!("the first answer is a welcome");
    };
    let join = Frame::App(ChatMessage::JoinRoom { room_id: 4 });
    to_server.send(payload(&join)).unwrap();
    let joined = next(&mut from_server).await;
    let users = vec![welcome.user_id];
    assert_eq!(
        joined,
        Frame::App(ChatMessage::RoomJoined { room_id: 4, users })
    );
    assert_eq!(runtime.shared.rooms.get_room_status(4).0, 1);

    to_server
        .send(payload(&Frame::Close(crate::wire::CloseFrame {
            code: 0,
            reason: "bye".into(),
        })))
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), session)
        .await
        .expect("the session ends")
        .unwrap();
    assert_eq!(
        runtime.shared.rooms.get_room_status(4).0,
        0,
        "it left its room"
    );
    assert!(!runtime.shared.connections.is_connected(welcome.user_id));
}
