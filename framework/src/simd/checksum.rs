//! CRC32C: the crate-backed fast path and the table-driven reference.

/// CRC32C generator polynomial, bit-reversed (`0x1EDC6F41` reflected).
const POLYNOMIAL_REFLECTED: u32 = 0x82F6_3B78;

/// One-byte-at-a-time lookup table for [`checksum_scalar`], built at compile time.
const TABLE: [u32; 256] = build_table();

const fn build_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut crc = byte as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLYNOMIAL_REFLECTED
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[byte] = crc;
        byte += 1;
    }
    table
}

/// Computes the CRC32C (Castagnoli) checksum of `data`.
///
/// The exact algorithm, in the usual catalogue terms (CRC-32/ISCSI):
/// polynomial `0x1EDC6F41` (`0x82F63B78` bit-reversed), init `0xFFFFFFFF`,
/// input and output reflected, xorout `0xFFFFFFFF`, check value
/// (`"123456789"`) `0xE3069283`. The empty input checksums to `0`.
///
/// This calls the [`crc32c`](https://crates.io/crates/crc32c) crate, which
/// is maintained and already as fast as this machine allows: it picks the
/// SSE4.2 `crc32` instruction (x86_64) or the ARMv8 CRC instructions
/// (aarch64) at run time and falls back to a slicing-by-8 table otherwise.
/// [`checksum_scalar`] computes the same value and is what the property
/// tests check this against.
///
/// # Examples
///
/// ```
/// use gamewire::simd::fast_checksum;
///
/// assert_eq!(fast_checksum(b"123456789"), 0xE306_9283);
/// assert_eq!(fast_checksum(b""), 0);
/// ```
#[inline]
#[must_use]
pub fn fast_checksum(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// Continues a CRC32C over more data: `fast_checksum_append(fast_checksum(a), b)`
/// equals `fast_checksum` of `a` followed by `b`.
///
/// `crc` is a finished checksum as returned by [`fast_checksum`] (or `0` to
/// start), not a raw register value, so a frame can be checksummed piece by
/// piece as it arrives.
///
/// # Examples
///
/// ```
/// use gamewire::simd::{fast_checksum, fast_checksum_append};
///
/// let mut crc = 0;
/// for piece in [&b"1234"[..], b"5", b"6789"] {
///     crc = fast_checksum_append(crc, piece);
/// }
/// assert_eq!(crc, fast_checksum(b"123456789"));
/// ```
#[inline]
#[must_use]
pub fn fast_checksum_append(crc: u32, data: &[u8]) -> u32 {
    crc32c::crc32c_append(crc, data)
}

/// Computes the same CRC32C as [`fast_checksum`], one byte at a time with a
/// 256-entry table.
///
/// This is the reference implementation: short enough to check by eye
/// against the definition, and what the property tests compare the fast
/// path with. It is 14× (64 B) to 60× (64 KiB) slower than
/// [`fast_checksum`] (see the [module docs](crate::simd) for
/// figures), so use it only to cross-check.
///
/// # Examples
///
/// ```
/// use gamewire::simd::{checksum_scalar, fast_checksum};
///
/// assert_eq!(checksum_scalar(b"123456789"), 0xE306_9283);
/// assert_eq!(checksum_scalar(b"gamewire"), fast_checksum(b"gamewire"));
/// ```
#[must_use]
pub fn checksum_scalar(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc = TABLE[usize::from((crc as u8) ^ byte)] ^ (crc >> 8);
    }
    !crc
}
