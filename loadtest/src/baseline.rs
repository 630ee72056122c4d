//! The baseline: a hand-written tokio chat server for the same workload.
//!
//! No framework runtime: one reader and one writer task per connection, a
//! mutex-guarded room table, each broadcast encoded once and its bytes
//! shared by every member's bounded queue, and writers that coalesce
//! everything queued into one `write_all`. It speaks the same bytes as
//! gamewire's chat (it borrows only the codec functions and the
//! `ChatMessage` type for encoding), so the same load clients measure both.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use gamewire::wire::{self, Frame, FrameSplitter, Welcome};
use gamewire::{ChatMessage, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const MAX_FRAME: usize = 64 * 1024;

type Member = (u32, mpsc::Sender<Bytes>);

#[derive(Default)]
struct State {
    rooms: Mutex<HashMap<u32, Vec<Member>>>,
    next_id: AtomicU32,
}

/// Serves the chat on `listener` forever, with `queue` frames of room per
/// connection.
pub(crate) async fn serve(listener: TcpListener, queue: usize) {
    let state = Arc::new(State::default());
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let _ = connection(socket, state, queue).await;
        });
    }
}

fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn encode(message: &ChatMessage) -> Bytes {
    wire::encode_frame(&Frame::App(message)).expect("chat messages encode")
}

async fn connection(socket: TcpStream, state: Arc<State>, queue: usize) -> anyhow::Result<()> {
    socket.set_nodelay(true)?;
    let (mut reader, mut writer) = socket.into_split();
    let splitter = FrameSplitter::new(MAX_FRAME);
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let hello = loop {
        if let Some(payload) = splitter.split(&mut buf)? {
            break wire::decode_payload::<Frame<ChatMessage>>(&payload)?;
        }
        if reader.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    };
    let Frame::Hello(hello) = hello else {
        return Ok(());
    };
    if hello.fingerprint != ChatMessage::PROTOCOL.fingerprint {
        return Ok(());
    }
    let me = state.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    let welcome = Frame::<()>::Welcome(Welcome {
        user_id: me,
        heartbeat_interval_ms: 10_000,
        heartbeat_timeout_ms: 30_000,
        max_frame_len: MAX_FRAME as u32,
    });
    writer.write_all(&wire::encode_frame(&welcome)?).await?;

    let (tx, mut rx) = mpsc::channel::<Bytes>(queue);
    let writing = tokio::spawn(async move {
        let mut out = BytesMut::new();
        while let Some(first) = rx.recv().await {
            out.extend_from_slice(&first);
            while let Ok(more) = rx.try_recv() {
                out.extend_from_slice(&more);
                if out.len() >= 256 * 1024 {
                    break;
                }
            }
            if writer.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
    });

    let mut joined = Vec::new();
    'read: loop {
        while let Some(payload) = splitter.split(&mut buf)? {
            let Ok(frame) = wire::decode_payload::<Frame<ChatMessage>>(&payload) else {
                continue;
            };
            match frame {
                Frame::App(ChatMessage::JoinRoom { room_id }) => {
                    let users = {
                        let mut rooms = state.rooms.lock().unwrap();
                        let room = rooms.entry(room_id).or_default();
                        let notice = encode(&ChatMessage::UserJoined {
                            room_id,
                            user_id: me,
                        });
                        for (_, member) in room.iter() {
                            let _ = member.try_send(notice.clone());
                        }
                        room.push((me, tx.clone()));
                        room.iter().map(|(id, _)| *id).collect()
                    };
                    joined.push(room_id);
                    let _ = tx.try_send(encode(&ChatMessage::RoomJoined { room_id, users }));
                }
                Frame::App(ChatMessage::SendChat { room_id, text }) => {
                    let line = encode(&ChatMessage::ChatBroadcast {
                        room_id,
                        sender: me,
                        text,
                        timestamp_ms: unix_millis(),
                    });
                    let rooms = state.rooms.lock().unwrap();
                    for (_, member) in rooms.get(&room_id).into_iter().flatten() {
                        let _ = member.try_send(line.clone());
                    }
                    drop(rooms);
                }
                Frame::Ping { nonce } => {
                    let _ = tx.try_send(wire::encode_frame(&Frame::<()>::Pong { nonce })?);
                }
                Frame::Close(_) => break 'read,
                _ => {}
            }
        }
        if reader.read_buf(&mut buf).await? == 0 {
            break;
        }
    }
    {
        let mut rooms = state.rooms.lock().unwrap();
        for room_id in joined {
            if let Some(room) = rooms.get_mut(&room_id) {
                room.retain(|(id, _)| *id != me);
            }
        }
    }
    drop(tx);
    let _ = writing.await;
    Ok(())
}
