//! Codecs: how a frame's payload becomes bytes, and bytes a payload again.
//!
//! Every payload on the wire, the envelope ([`Frame`](crate::wire::Frame))
//! with the protocol's messages inside, goes through one [`Codec`]. The
//! codec sees values, never connections: framing (the TCP length prefix,
//! one WebSocket message per frame) belongs to the transport, and what a
//! frame means belongs to the session. gamewire speaks [`Bincode`] (bincode
//! 2, standard configuration); this is the only module that names bincode.
//!
//! A second format is an addition: a type implementing [`Codec`], chosen
//! where the server is assembled. Nothing that dispatches, queues or writes
//! frames changes.

use std::fmt;
use std::marker::PhantomData;

use bytes::{BufMut, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The largest payload any gamewire frame may have: 16 MiB. A server's
/// `max_frame_len` is at most this, and the decoder never reserves more.
pub const MAX_FRAME_LEN_LIMIT: usize = 16 * 1024 * 1024;

mod bounded;

/// A serde format for frame payloads.
///
/// Encoding appends to a buffer, so a frame's length prefix can be
/// reserved in front of it and its bytes shared by every recipient of a
/// broadcast; decoding reads exactly one whole payload.
pub trait Codec: Send + Sync + 'static {
    /// The format's name, for logs.
    const NAME: &'static str;

    /// Appends the encoding of `value` to `out`.
    ///
    /// # Errors
    ///
    /// When serde refuses the value; `out` may then hold part of it, and
    /// the caller truncates it.
    fn encode<T: Serialize + ?Sized>(value: &T, out: &mut BytesMut) -> Result<(), EncodeError>;

    /// Decodes one whole payload, allocating no more than its bytes can
    /// hold: a length inside the payload that the payload cannot back is
    /// an error before anything of that length is allocated.
    ///
    /// # Errors
    ///
    /// [`DecodeError::Payload`] for bytes that are not a `T`,
    /// [`DecodeError::TrailingBytes`] when the value ends before the payload.
    fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, DecodeError>;
}

/// bincode 2 with its standard configuration: little-endian, variable-length
/// integers. The book's wire chapter specifies the encoding byte by byte.
///
/// Decoding borrows strings and byte strings from the payload and caps
/// every sequence's preallocation at the payload's length, so a forged
/// length costs nothing; bincode's own allocation limit, at
/// [`MAX_FRAME_LEN_LIMIT`], stays as a second fence.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bincode;

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_FRAME_LEN_LIMIT>()
}

impl Codec for Bincode {
    const NAME: &'static str = "bincode";

    fn encode<T: Serialize + ?Sized>(value: &T, out: &mut BytesMut) -> Result<(), EncodeError> {
        let mut writer = out.writer();
        bincode::serde::encode_into_std_write(value, &mut writer, bincode_config())
            .map(drop)
            .map_err(EncodeError::new)
    }

    fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, DecodeError> {
        let within = bounded::Within::<T> {
            cap: payload.len(),
            value: PhantomData,
        };
        let (value, read) =
            bincode::serde::seed_decode_from_slice(within, payload, bincode_config())
                .map_err(|error| DecodeError::Payload(error.to_string()))?;
        if read != payload.len() {
            return Err(DecodeError::TrailingBytes(payload.len() - read));
        }
        Ok(value)
    }
}

/// A frame could not be encoded.
#[derive(Debug, thiserror::Error)]
#[error("could not encode frame: {reason}")]
pub struct EncodeError {
    reason: String,
}

impl EncodeError {
    /// An encoding failure, for a [`Codec`] to return; `reason` says why.
    pub fn new(reason: impl fmt::Display) -> Self {
        EncodeError {
            reason: reason.to_string(),
        }
    }
}

/// A frame could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The length prefix exceeds the limit.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The declared length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The payload is not a valid envelope; the text says where it went
    /// wrong (it is sent to the client in an error frame).
    #[error("undecodable payload: {0}")]
    Payload(String),
    /// The payload decoded but left bytes unread.
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bincode_is_varint_little_endian() {
        let mut out = BytesMut::new();
        Bincode::encode(&(300u32, 7u8), &mut out).unwrap();
        // 300 needs the 0xfb marker and two little-endian bytes.
        assert_eq!(&out[..], &[0xfb, 0x2c, 0x01, 7]);
        assert_eq!(Bincode::decode::<(u32, u8)>(&out).unwrap(), (300, 7));
    }

    #[test]
    fn decode_refuses_leftovers_and_garbage() {
        assert!(matches!(
            Bincode::decode::<u8>(&[1, 2]),
            Err(DecodeError::TrailingBytes(1))
        ));
        let error = Bincode::decode::<String>(&[5, b'a']).unwrap_err();
        assert!(matches!(error, DecodeError::Payload(_)), "{error}");
    }

    /// Errors carry their cause in their own text and have no `source`, so
    /// a report that walks the chain prints it once.
    #[test]
    fn errors_state_their_cause_once() {
        use std::error::Error as _;
        let error = Bincode::decode::<String>(&[5, b'a']).unwrap_err();
        assert!(error.source().is_none());
        assert!(EncodeError::new("too deep").source().is_none());
        assert_eq!(
            EncodeError::new("too deep").to_string(),
            "could not encode frame: too deep"
        );
    }
}
