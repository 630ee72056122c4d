//! The wire protocol: frames, the envelope, and their encoding.
//!
//! A frame's payload is the [`Codec`] encoding (bincode 2, standard
//! configuration: little-endian, variable-length integers) of a [`Frame`],
//! the envelope that carries either a system frame (handshake, heartbeat,
//! error, close) or an application message of the protocol enum. On a byte
//! stream (TCP) each payload follows a 4-byte big-endian length `N`; on a
//! message transport each message is one payload. The book's wire-protocol
//! chapter specifies every byte; this module is the reference
//! implementation, public so that tests and tools can speak the protocol by
//! hand.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::codec::{Bincode, Codec};
pub use crate::codec::{DecodeError, EncodeError, MAX_FRAME_LEN_LIMIT};

/// Version of the envelope defined here, sent in [`Hello::version`].
pub const ENVELOPE_VERSION: u16 = 1;

/// Bytes in the length prefix.
pub const LENGTH_PREFIX_LEN: usize = 4;

/// The WebSocket subprotocol a gamewire client may offer; the server
/// selects it when offered, and accepts clients that offer none.
pub const WEBSOCKET_SUBPROTOCOL: &str = "gamewire.v1";

/// The WebSocket close code that carries gamewire close code `code`: 4000
/// plus it, in the range RFC 6455 leaves to applications.
pub const fn websocket_close_code(code: u16) -> u16 {
    4000 + code
}

/// The envelope of every frame.
///
/// The variant index is the first byte of every payload: `0` hello, `1`
/// welcome, `2` ping, `3` pong, `4` error, `5` close, `6` application
/// message, `7` stamped application message. The order is part of the wire
/// protocol and never changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Frame<M> {
    /// Client → server, first frame of a connection.
    Hello(Hello),
    /// Server → client, answer to an accepted [`Hello`].
    Welcome(Welcome),
    /// Either way; the receiver answers with a [`Frame::Pong`] of the same nonce.
    Ping {
        /// Echoed in the pong.
        nonce: u64,
    },
    /// Answer to a [`Frame::Ping`].
    Pong {
        /// The ping's nonce.
        nonce: u64,
    },
    /// Server → client: a message could not be processed. The connection
    /// stays open.
    Error(ErrorFrame),
    /// Server → client: the last frame before the server closes the
    /// connection.
    Close(CloseFrame),
    /// Either way: a message of the protocol enum.
    App(M),
    /// Client → server: a message with the time the client sent it, in
    /// microseconds since the Unix epoch. The server handles it as
    /// [`Frame::App`] and records the time from the stamp to the end of the
    /// handler as end-to-end latency.
    Stamped {
        /// When the client sent it.
        sent_at_us: u64,
        /// The message.
        message: M,
    },
}

/// Microseconds since the Unix epoch, the clock of [`Frame::Stamped`].
pub fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The handshake a client opens with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// [`ENVELOPE_VERSION`] of the client.
    pub version: u16,
    /// Name of the protocol enum the client was built with.
    pub protocol: String,
    /// The protocol's fingerprint; it must equal the server's.
    pub fingerprint: u64,
    /// Credentials for the server's [`Authenticator`](crate::Authenticator);
    /// empty for anonymous.
    pub token: String,
}

/// The server's answer to an accepted handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The session's user id.
    pub user_id: u32,
    /// How often the server pings, in milliseconds.
    pub heartbeat_interval_ms: u32,
    /// Silence after which the server disconnects, in milliseconds.
    pub heartbeat_timeout_ms: u32,
    /// The largest payload the server accepts.
    pub max_frame_len: u32,
}

/// A message could not be processed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorFrame {
    /// What went wrong, as an [`ErrorCode`] number.
    pub code: u16,
    /// Human-readable detail.
    pub message: String,
}

/// Why the server closes a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseFrame {
    /// Why, as a [`CloseCode`] number.
    pub code: u16,
    /// Human-readable detail.
    pub reason: String,
}

macro_rules! wire_codes {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $value:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u16)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant = $value,)*
        }

        impl $name {
            /// The code with this number, if it is known.
            pub fn from_u16(value: u16) -> Option<Self> {
                match value {
                    $($value => Some($name::$variant),)*
                    _ => None,
                }
            }

            /// The number written on the wire.
            pub fn as_u16(self) -> u16 {
                self as u16
            }
        }
    };
}

wire_codes! {
    /// The `code` of an [`ErrorFrame`].
    ErrorCode {
        /// The payload is not a valid envelope.
        Undecodable = 1,
        /// The message's variant is not one the server accepts from clients.
        NotAllowed = 2,
        /// No handler is registered for the message's variant.
        NoHandler = 3,
        /// The handler (or a middleware) returned an error.
        HandlerFailed = 4,
        /// The handler panicked; the server is unaffected.
        HandlerPanicked = 5,
        /// A frame that makes no sense at this point, such as a second hello.
        UnexpectedFrame = 6,
        /// The client sent more messages than its rate allows; the message
        /// was not handled.
        RateLimited = 7,
        /// A message was handled and delivered on the client's node, but
        /// could not reach the other nodes of the cluster.
        NotDelivered = 8,
    }
}

wire_codes! {
    /// The `code` of a [`CloseFrame`].
    CloseCode {
        /// The server is shutting down.
        Shutdown = 1,
        /// The length prefix exceeds the server's `max_frame_len`.
        FrameTooLarge = 2,
        /// The client's protocol fingerprint or envelope version differs.
        ProtocolMismatch = 3,
        /// The client was silent past the heartbeat timeout.
        HeartbeatTimeout = 4,
        /// The client's outbound queue was full.
        SlowConsumer = 5,
        /// The server is at `max_connections`.
        ServerFull = 6,
        /// The client sent too many undecodable or unknown messages.
        TooManyErrors = 7,
        /// The handshake was missing, late or refused.
        HandshakeFailed = 8,
        /// The server application closed the connection.
        Kicked = 9,
        /// A frame began and did not end within the server's `frame_timeout`.
        FrameTimeout = 10,
        /// The client kept sending over its message rate.
        RateLimited = 11,
        /// The client sent something its transport does not carry, such as
        /// a WebSocket text message.
        Unsupported = 12,
    }
}

/// One encoded frame, ready for any transport: the payload behind its
/// 4-byte big-endian length prefix.
///
/// The prefix is written when the frame is encoded, so a byte-stream
/// transport writes [`with_prefix`](Self::with_prefix) as it is and a
/// message transport writes [`payload_slice`](Self::payload_slice), a view of the same
/// bytes: a broadcast encodes once and shares one buffer among recipients
/// on every transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EncodedFrame(Bytes);

impl EncodedFrame {
    /// Encodes `value` with codec `C`.
    ///
    /// # Errors
    ///
    /// When the codec refuses the value or the payload would exceed
    /// [`MAX_FRAME_LEN_LIMIT`].
    pub(crate) fn encode<C: Codec, T: Serialize + ?Sized>(value: &T) -> Result<Self, EncodeError> {
        let mut out = BytesMut::with_capacity(64);
        encode_into::<C, T>(value, &mut out)?;
        Ok(EncodedFrame(out.freeze()))
    }

    /// A frame another node encoded, length prefix included; its length
    /// was checked against the prefix.
    pub(crate) fn from_prefixed(bytes: Bytes) -> Self {
        EncodedFrame(bytes)
    }

    /// Length prefix and payload, as a byte stream carries them.
    pub(crate) fn with_prefix(&self) -> &Bytes {
        &self.0
    }

    /// The payload alone, as a message transport carries it.
    #[cfg(test)]
    pub(crate) fn payload(&self) -> Bytes {
        self.0.slice(LENGTH_PREFIX_LEN..)
    }

    /// The payload alone, borrowed.
    #[cfg_attr(
        not(feature = "websocket"),
        expect(
            dead_code,
            reason = "the view of message transports, such as WebSocket"
        )
    )]
    pub(crate) fn payload_slice(&self) -> &[u8] {
        &self.0[LENGTH_PREFIX_LEN..]
    }

    /// The payload alone, owned: the same bytes, with no count of their
    /// sharers taken or given back.
    #[cfg_attr(
        not(feature = "websocket"),
        expect(
            dead_code,
            reason = "the view of message transports, such as WebSocket"
        )
    )]
    pub(crate) fn into_payload(self) -> Bytes {
        let mut bytes = self.0;
        bytes::Buf::advance(&mut bytes, LENGTH_PREFIX_LEN);
        bytes
    }

    /// Bytes on a byte stream: prefix and payload.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// A frame from bytes that already hold a length prefix and a payload.
    #[cfg(test)]
    pub(crate) fn from_wire(bytes: Bytes) -> Self {
        EncodedFrame(bytes)
    }

    /// The bytes of [`with_prefix`](Self::with_prefix), owned.
    pub(crate) fn into_bytes(self) -> Bytes {
        self.0
    }
}

/// Appends one frame (length prefix and payload, encoded with `C`) to `out`.
fn encode_into<C: Codec, T: Serialize + ?Sized>(
    value: &T,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let start = out.len();
    out.put_u32(0);
    match C::encode(value, out) {
        Ok(()) if out.len() - start - LENGTH_PREFIX_LEN <= MAX_FRAME_LEN_LIMIT => {
            // The prefix was reserved above; now that the length is known, patch it.
            let len = (out.len() - start - LENGTH_PREFIX_LEN) as u32;
            out[start..start + LENGTH_PREFIX_LEN].copy_from_slice(&len.to_be_bytes());
            Ok(())
        }
        Ok(()) => {
            out.truncate(start);
            Err(EncodeError::new("the frame exceeds the 16 MiB limit"))
        }
        Err(error) => {
            out.truncate(start);
            Err(error)
        }
    }
}

/// Appends one frame (length prefix and bincode payload) to `out`.
///
/// # Errors
///
/// Fails when serde refuses the value or the payload would exceed
/// [`MAX_FRAME_LEN_LIMIT`].
pub fn encode_frame_into<T: Serialize + ?Sized>(
    value: &T,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    encode_into::<Bincode, T>(value, out)
}

/// Encodes one frame (length prefix and bincode payload) into its own
/// buffer.
///
/// # Errors
///
/// As [`encode_frame_into`].
pub fn encode_frame<T: Serialize + ?Sized>(value: &T) -> Result<Bytes, EncodeError> {
    EncodedFrame::encode::<Bincode, T>(value).map(EncodedFrame::into_bytes)
}

/// Decodes one bincode payload (without its length prefix) into an envelope.
///
/// # Errors
///
/// Fails on malformed bytes, an unknown variant id, or bytes left over.
pub fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, DecodeError> {
    Bincode::decode(payload)
}

/// Splits length-prefixed frames off a read buffer.
#[derive(Debug, Clone, Copy)]
pub struct FrameSplitter {
    max_frame_len: usize,
}

impl FrameSplitter {
    /// A splitter that rejects payloads longer than `max_frame_len`.
    pub fn new(max_frame_len: usize) -> Self {
        FrameSplitter { max_frame_len }
    }

    /// Takes the next complete payload off the front of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` holds no complete frame yet; then `buf`
    /// has room reserved for the rest of the frame, which is within the limit.
    ///
    /// # Errors
    ///
    /// [`DecodeError::TooLarge`] when the length prefix exceeds the limit;
    /// nothing of that size is allocated.
    pub fn split(&self, buf: &mut BytesMut) -> Result<Option<BytesMut>, DecodeError> {
        if buf.len() < LENGTH_PREFIX_LEN {
            return Ok(None);
        }
        let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len > self.max_frame_len {
            return Err(DecodeError::TooLarge {
                len,
                max: self.max_frame_len,
            });
        }
        let total = LENGTH_PREFIX_LEN + len;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        buf.advance(LENGTH_PREFIX_LEN);
        Ok(Some(buf.split_to(len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encoded_frame_is_a_prefix_and_a_payload() {
        let frame = EncodedFrame::encode::<Bincode, _>(&Frame::<()>::Pong { nonce: 1 }).unwrap();
        assert_eq!(&frame.with_prefix()[..], &[0, 0, 0, 2, 3, 1]);
        assert_eq!(&frame.payload()[..], &[3, 1]);
        assert_eq!(frame.len(), 6);
    }

    #[test]
    fn frame_layout_is_length_then_bincode() {
        let bytes = encode_frame(&Frame::<()>::Ping { nonce: 7 }).unwrap();
        // length 2: variant 2 (ping), nonce 7 as a one-byte varint.
        assert_eq!(&bytes[..], &[0, 0, 0, 2, 2, 7]);
    }

    /// `String` fields of a `#[message]` are read as bytes and checked by
    /// `simd::string_from_utf8`: the bytes on the wire are the same as
    /// serde's `String`, and invalid UTF-8 is refused.
    #[test]
    fn message_strings_are_checked_as_utf8() {
        use crate::ChatMessage;
        let say = |text: &str| ChatMessage::SendChat {
            room_id: 1,
            text: text.into(),
        };
        let bytes = encode_frame(&Frame::App(say("héllo 🎮"))).unwrap();
        // The same bytes as the plain serde encoding of the same values.
        let mut plain = BytesMut::new();
        // App, SendChat, room 1, the text
        Bincode::encode(&(6u32, 2u32, 1u32, "héllo 🎮"), &mut plain).unwrap();
        assert_eq!(&bytes[LENGTH_PREFIX_LEN..], &plain[..]);
        let decoded = decode_payload::<Frame<ChatMessage>>(&bytes[LENGTH_PREFIX_LEN..]);
        assert_eq!(decoded.unwrap(), Frame::App(say("héllo 🎮")));

        let mut corrupt = bytes[LENGTH_PREFIX_LEN..].to_vec();
        let last = corrupt.len() - 1;
        corrupt[last] = 0xFF;
        let error = decode_payload::<Frame<ChatMessage>>(&corrupt).unwrap_err();
        assert!(
            error.to_string().contains("a string is not UTF-8"),
            "{error}"
        );
    }

    #[test]
    fn round_trip_through_splitter() {
        let mut buf = BytesMut::new();
        let hello = Frame::<()>::Hello(Hello {
            version: ENVELOPE_VERSION,
            protocol: "ChatMessage".into(),
            fingerprint: u64::MAX,
            token: String::new(),
        });
        encode_frame_into(&hello, &mut buf).unwrap();
        encode_frame_into(&Frame::<()>::Pong { nonce: 300 }, &mut buf).unwrap();
        let splitter = FrameSplitter::new(1024);
        let first = splitter.split(&mut buf).unwrap().unwrap();
        assert_eq!(decode_payload::<Frame<()>>(&first).unwrap(), hello);
        let second = splitter.split(&mut buf).unwrap().unwrap();
        assert_eq!(
            decode_payload::<Frame<()>>(&second).unwrap(),
            Frame::Pong { nonce: 300 }
        );
        assert!(splitter.split(&mut buf).unwrap().is_none());
    }

    #[test]
    fn oversized_prefix_is_rejected_without_reserving() {
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        let error = FrameSplitter::new(1024).split(&mut buf).unwrap_err();
        assert!(matches!(
            error,
            DecodeError::TooLarge {
                len: 0xffff_ffff,
                max: 1024
            }
        ));
        assert!(buf.capacity() < 1024);
    }

    #[test]
    fn partial_frame_waits_for_more() {
        let mut buf = BytesMut::from(&[0, 0, 0, 3, 2][..]);
        assert!(FrameSplitter::new(16).split(&mut buf).unwrap().is_none());
        assert_eq!(buf.len(), 5);
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let error = decode_payload::<Frame<()>>(&[2, 7, 0]).unwrap_err();
        assert!(matches!(error, DecodeError::TrailingBytes(1)));
    }

    #[test]
    fn codes_round_trip() {
        for code in 1..=12 {
            assert_eq!(CloseCode::from_u16(code).unwrap().as_u16(), code);
        }
        for code in 1..=7 {
            assert_eq!(ErrorCode::from_u16(code).unwrap().as_u16(), code);
        }
        assert_eq!(ErrorCode::from_u16(99), None);
    }

    /// The splitter against a model that reads the stream the obvious way,
    /// for random frames delivered in random chunks, plus garbage: the
    /// differential check STYLE rule 20 asks of the frame decoder (proptest
    /// instead of libFuzzer, which needs a nightly compiler).
    mod differential {
        use proptest::prelude::*;

        use super::*;

        /// The model: whole frames of the stream, or the first oversized
        /// length, in order.
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

        fn stream_of(frames: &[Vec<u8>], tail: &[u8]) -> Vec<u8> {
            let mut stream = Vec::new();
            for frame in frames {
                stream.extend_from_slice(&(frame.len() as u32).to_be_bytes());
                stream.extend_from_slice(frame);
            }
            stream.extend_from_slice(tail);
            stream
        }

        proptest! {
            // More cases than proptest's 256: the decoder is what every
            // byte from the network goes through. The fuzz targets go
            // further (`fuzz/`, replayed by the `it` tests).
            #![proptest_config(ProptestConfig::with_cases(2048))]

            #[test]
            fn splitter_matches_the_model(
                frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..20),
                tail in prop::collection::vec(any::<u8>(), 0..12),
                chunks in prop::collection::vec(1usize..64, 1..50),
                max in 1usize..400,
            ) {
                let stream = stream_of(&frames, &tail);
                let (expected, oversized) = model(&stream, max);
                let splitter = FrameSplitter::new(max);
                let mut buf = BytesMut::new();
                let mut got = Vec::new();
                let mut refused = None;
                let mut at = 0;
                let mut chunk = chunks.iter().cycle();
                'feed: while at < stream.len() {
                    let n = (*chunk.next().unwrap()).min(stream.len() - at);
                    buf.extend_from_slice(&stream[at..at + n]);
                    at += n;
                    loop {
                        match splitter.split(&mut buf) {
                            Ok(Some(frame)) => got.push(frame.to_vec()),
                            Ok(None) => break,
                            Err(DecodeError::TooLarge { len, .. }) => {
                                refused = Some(len);
                                break 'feed;
                            }
                            Err(other) => panic!("unexpected {other}"),
                        }
                    }
                }
                prop_assert_eq!(got, expected);
                prop_assert_eq!(refused, oversized);
            }

            #[test]
            fn any_bytes_decode_or_fail_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
                let _ = decode_payload::<Frame<crate::ChatMessage>>(&bytes);
            }

            #[test]
            fn chat_messages_round_trip(room_id in any::<u32>(), sender in any::<u32>(), text in ".{0,40}", stamp in any::<u64>()) {
                let message = crate::ChatMessage::ChatBroadcast { room_id, sender, text, timestamp_ms: stamp };
                let bytes = encode_frame(&Frame::App(&message)).unwrap();
                let back: Frame<crate::ChatMessage> = decode_payload(&bytes[4..]).unwrap();
                prop_assert_eq!(back, Frame::App(message));
            }
        }
    }
}
