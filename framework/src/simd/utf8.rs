//! UTF-8 validation: simdutf8 on the happy path, std for the error.

use std::str::Utf8Error;
use std::string::FromUtf8Error;

/// Checks that `bytes` is UTF-8 and returns it as a `&str`, with exactly the
/// contract of [`std::str::from_utf8`].
///
/// Valid input is checked by
/// [`simdutf8::basic::from_utf8`](https://docs.rs/simdutf8), which uses
/// AVX2 or SSE4.2 on x86 (picked at run time), NEON on aarch64, and a
/// scalar loop elsewhere. Its error carries no detail, so when it rejects
/// the input this re-runs [`std::str::from_utf8`] and returns std's answer.
/// The result, `Ok` or `Err`, is therefore always the one std gives; only
/// invalid input pays for a second pass.
///
/// # Errors
///
/// Returns std's [`Utf8Error`] when `bytes` is not valid UTF-8; its
/// [`valid_up_to`](Utf8Error::valid_up_to) and
/// [`error_len`](Utf8Error::error_len) are std's.
///
/// # Examples
///
/// ```
/// use gamewire::simd::validate_utf8;
///
/// assert_eq!(validate_utf8("héllo 🎮".as_bytes()), Ok("héllo 🎮"));
///
/// let mut frame = b"ok no".to_vec();
/// frame[2] = 0xFF; // corrupted in transit
/// let err = validate_utf8(&frame).unwrap_err();
/// assert_eq!(err.valid_up_to(), 2);
/// assert_eq!(err, std::str::from_utf8(&frame).unwrap_err());
/// ```
#[inline]
pub fn validate_utf8(bytes: &[u8]) -> Result<&str, Utf8Error> {
    match simdutf8::basic::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(_) => std::str::from_utf8(bytes),
    }
}

/// Turns `bytes` into a `String` if it is UTF-8, with exactly the contract
/// of [`String::from_utf8`] and the speed of [`validate_utf8`].
///
/// The server decodes every `String` field of a `#[message]` variant
/// (chat text, names, commands) through this: the bytes arrive as a
/// `Vec<u8>` and become the `String` without a copy.
///
/// # Errors
///
/// Returns std's [`FromUtf8Error`], which gives the bytes back, when
/// `bytes` is not valid UTF-8.
///
/// # Examples
///
/// ```
/// use gamewire::simd::string_from_utf8;
///
/// assert_eq!(string_from_utf8(b"gg wp".to_vec()).unwrap(), "gg wp");
/// let err = string_from_utf8(vec![b'o', 0xFF]).unwrap_err();
/// assert_eq!(err.utf8_error().valid_up_to(), 1);
/// assert_eq!(err.into_bytes(), [b'o', 0xFF]);
/// ```
#[inline]
pub fn string_from_utf8(bytes: Vec<u8>) -> Result<String, FromUtf8Error> {
    if simdutf8::basic::from_utf8(&bytes).is_ok() {
        // SAFETY: simdutf8 has just checked that `bytes` is valid UTF-8,
        // which is the one requirement of `from_utf8_unchecked`.
        return Ok(unsafe { String::from_utf8_unchecked(bytes) });
    }
    // Invalid: std builds the error, with its detail.
    String::from_utf8(bytes)
}
