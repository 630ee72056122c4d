//! What the fuzz targets check, shared with the stable replay of their
//! corpus (`tests/it/fuzz_corpus_replays.rs`): the frame splitter against a
//! model, the envelope and a protocol's messages decoded from any bytes,
//! re-encoded the same way, and never allocating more than the bytes back.
//!
//! `fuzz/` runs these under cargo-fuzz (`cargo +nightly fuzz run frames`);
//! `cargo test` replays `fuzz/corpus/` on stable.

// The fuzz protocol's fields and the payload structs `#[message]` makes of
// its variants are named for what they hold; this is test code.
#![allow(missing_docs)]

use std::collections::BTreeMap;

use bytes::BytesMut;
use gamewire::ChatMessage;
use gamewire::wire::{self, DecodeError, Frame, FrameSplitter};
use serde::{Deserialize, Serialize};

use crate::alloc_probe::largest_allocation;

/// A user type inside a message: what serde's derive decodes, not
/// gamewire's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Player {
    /// A string inside a user type.
    pub name: String,
    /// A sequence inside a user type.
    pub scores: Vec<u64>,
}

/// A protocol with every shape of field a game uses.
#[gamewire::message]
#[derive(Debug, Clone, PartialEq)]
pub enum FuzzMessage {
    /// Strings, alone and in a sequence.
    Text { text: String, tags: Vec<String> },
    /// Bytes.
    Blob { bytes: Vec<u8> },
    /// Numbers of every width, a flag and a character.
    Numbers {
        small: u8,
        signed: i64,
        big: u128,
        float: f64,
        flag: bool,
        letter: char,
    },
    /// User types, alone, in a sequence and optional.
    Nested {
        player: Player,
        players: Vec<Player>,
        maybe: Option<Player>,
    },
    /// A map.
    Scores { scores: BTreeMap<String, u64> },
    /// A tuple variant.
    Pair(u32, String),
    /// Nothing.
    Unit,
    /// Another protocol inside.
    Chat(ChatMessage),
}

/// What decoding may allocate for `len` bytes: a small multiple of them.
fn allowance(len: usize) -> usize {
    64 * len.max(64)
}

/// Decodes `payload` as `T`; when it decodes, encodes the value again and
/// checks that the encoding decodes to the same bytes (a fixed point);
/// checks the largest allocation against the payload's length.
fn decode_round_trip<T: Serialize + serde::de::DeserializeOwned>(payload: &[u8]) {
    let (decoded, largest) = largest_allocation(|| wire::decode_payload::<T>(payload));
    assert!(
        largest <= allowance(payload.len()),
        "decoding {} bytes allocated {largest} at once",
        payload.len()
    );
    let Ok(value) = decoded else { return };
    let once = wire::encode_frame(&value).expect("what decodes encodes");
    let again: T = wire::decode_payload(&once[4..]).expect("what encodes decodes");
    let twice = wire::encode_frame(&again).unwrap();
    assert_eq!(once, twice, "the encoding is not a fixed point");
}

/// The frame target: `data`'s first byte picks the splitter's limit, the
/// second the size of the chunks the rest arrives in. Every frame split is
/// checked against a model that reads the stream the obvious way, and
/// decoded as the chat's envelope and as the fuzz protocol's.
pub fn frames(data: &[u8]) {
    let [limit, chunk, stream @ ..] = data else {
        return;
    };
    let max = usize::from(*limit) * 4 + 1;
    let chunk = usize::from(*chunk % 32) + 1;
    let splitter = FrameSplitter::new(max);
    let mut buffer = BytesMut::new();
    let mut got = Vec::new();
    let mut refused = None;
    'feed: for piece in stream.chunks(chunk) {
        buffer.extend_from_slice(piece);
        loop {
            match splitter.split(&mut buffer) {
                Ok(Some(frame)) => got.push(frame.to_vec()),
                Ok(None) => break,
                Err(DecodeError::TooLarge { len, .. }) => {
                    refused = Some(len);
                    break 'feed;
                }
                Err(other) => panic!("the splitter reported {other}"),
            }
        }
        // A partial frame is held in at most twice its announced length
        // (growing a buffer may double it; a small one rounds up to 1 KiB),
        // whatever length was written.
        let bound = 2 * (4 + max + chunk) + 1024;
        assert!(
            buffer.capacity() <= bound,
            "{} > {bound}",
            buffer.capacity()
        );
    }
    let (expected, oversized) = model(stream, max);
    assert_eq!(got, expected);
    assert_eq!(refused, oversized);
    for frame in &got {
        decode_round_trip::<Frame<ChatMessage>>(frame);
        decode_round_trip::<Frame<FuzzMessage>>(frame);
    }
}

/// Whole frames of `stream`, or the first oversized length, in order.
fn model(stream: &[u8], max: usize) -> (Vec<Vec<u8>>, Option<usize>) {
    let mut frames = Vec::new();
    let mut at = 0;
    while stream.len() - at >= 4 {
        let len = u32::from_be_bytes(stream[at..at + 4].try_into().unwrap()) as usize;
        if len > max {
            return (frames, Some(len));
        }
        if stream.len() - at - 4 < len {
            break;
        }
        frames.push(stream[at + 4..at + 4 + len].to_vec());
        at += 4 + len;
    }
    (frames, None)
}

/// The handshake target: `data` as the first frame's payload, held to the
/// default handshake limit, decoded as the envelope a server reads first.
pub fn handshake(data: &[u8]) {
    if data.len() > gamewire::TcpServerConfig::default().max_handshake_frame_len {
        return;
    }
    decode_round_trip::<Frame<ChatMessage>>(data);
    if let Ok(Frame::<ChatMessage>::Hello(hello)) = wire::decode_payload(data) {
        assert!(hello.protocol.len() + hello.token.len() <= data.len());
    }
}

/// The message target: `data` as an application frame's payload of the
/// fuzz protocol, with the envelope's tag in front.
pub fn message(data: &[u8]) {
    let mut payload = Vec::with_capacity(data.len() + 1);
    payload.push(6); // `Frame::App`
    payload.extend_from_slice(data);
    decode_round_trip::<Frame<FuzzMessage>>(&payload);
}
