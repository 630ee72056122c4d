//! Property tests: every fast path against its scalar or std reference, at
//! random lengths (0..4096) and random alignments (offsets 0..64 into a
//! larger buffer).

use proptest::prelude::*;

use super::compare::implementations;
use super::{
    checksum_scalar, cpu_features, fast_checksum, fast_checksum_append, fast_memory_compare,
    string_from_utf8, validate_utf8,
};

const MAX_LEN: usize = 4096;
const MAX_OFFSET: usize = 64;

/// Copies `data` into a fresh buffer at `offset`, between filler bytes, and
/// returns the buffer; the window is `buf[offset..offset + data.len()]`.
/// Different `fill`s on the two sides of a comparison make an out-of-bounds
/// read change the answer.
fn place(data: &[u8], offset: usize, fill: u8) -> Vec<u8> {
    let mut buf = vec![fill; offset];
    buf.extend_from_slice(data);
    buf.extend_from_slice(&[fill; MAX_OFFSET]);
    buf
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..MAX_LEN)
}

/// Text that is mostly ASCII (as chat is) with every other width of char
/// mixed in, up to about `MAX_LEN` bytes.
fn text() -> impl Strategy<Value = String> {
    let ch = prop_oneof![4 => (0x20u8..0x7F).prop_map(char::from), 1 => any::<char>()];
    prop::collection::vec(ch, 0..MAX_LEN / 2).prop_map(|chars| {
        let mut text: String = chars.into_iter().collect();
        let mut end = text.len().min(MAX_LEN);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text
    })
}

proptest! {
    #[test]
    fn checksum_matches_scalar(data in bytes(), offset in 0..MAX_OFFSET) {
        let buf = place(&data, offset, 0xA5);
        let window = &buf[offset..offset + data.len()];
        prop_assert_eq!(fast_checksum(window), checksum_scalar(window));
    }

    #[test]
    fn checksum_append_in_pieces_matches_whole(
        data in bytes(),
        offset in 0..MAX_OFFSET,
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let buf = place(&data, offset, 0xA5);
        let window = &buf[offset..offset + data.len()];
        let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut.index(window.len() + 1)).collect();
        cuts.sort_unstable();
        let mut crc = 0;
        let mut start = 0;
        for cut in cuts.into_iter().chain([window.len()]) {
            crc = fast_checksum_append(crc, &window[start..cut]);
            start = cut;
        }
        prop_assert_eq!(crc, fast_checksum(window));
        prop_assert_eq!(crc, checksum_scalar(window));
    }

    #[test]
    fn compare_equal_inputs(data in bytes(), offset_a in 0..MAX_OFFSET, offset_b in 0..MAX_OFFSET) {
        let (buf_a, buf_b) = (place(&data, offset_a, 0x00), place(&data, offset_b, 0xFF));
        let a = &buf_a[offset_a..offset_a + data.len()];
        let b = &buf_b[offset_b..offset_b + data.len()];
        for (name, eq) in implementations() {
            prop_assert!(eq(a, b), "{} said unequal", name);
        }
    }

    #[test]
    fn compare_equal_except_one_byte(
        data in prop::collection::vec(any::<u8>(), 1..MAX_LEN),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
        offset_a in 0..MAX_OFFSET,
        offset_b in 0..MAX_OFFSET,
    ) {
        let mut other = data.clone();
        other[at.index(data.len())] ^= flip;
        let (buf_a, buf_b) = (place(&data, offset_a, 0x00), place(&other, offset_b, 0x00));
        let a = &buf_a[offset_a..offset_a + data.len()];
        let b = &buf_b[offset_b..offset_b + data.len()];
        for (name, eq) in implementations() {
            prop_assert!(!eq(a, b), "{} said equal", name);
        }
    }

    #[test]
    fn compare_matches_std(data in bytes(), cut in any::<prop::sample::Index>(), other in bytes()) {
        // A prefix of `data` (different length, same start) and unrelated bytes.
        let prefix = &data[..cut.index(data.len() + 1)];
        for (name, eq) in implementations() {
            prop_assert_eq!(eq(&data, prefix), data[..] == *prefix, "{} on a prefix", name);
            prop_assert_eq!(eq(&data, &other), data == other, "{} on random bytes", name);
        }
    }

    #[test]
    fn utf8_valid_matches_std(text in text(), offset in 0..MAX_OFFSET) {
        let buf = place(text.as_bytes(), offset, 0xFF);
        let window = &buf[offset..offset + text.len()];
        prop_assert_eq!(validate_utf8(window), std::str::from_utf8(window));
        prop_assert_eq!(validate_utf8(window), Ok(text.as_str()));
    }

    #[test]
    fn utf8_corrupted_matches_std(
        text in text(),
        offset in 0..MAX_OFFSET,
        at in any::<prop::sample::Index>(),
        byte in prop_oneof![0x80u8..=0xFF, any::<u8>()],
        truncate in any::<bool>(),
    ) {
        let mut bytes = text.into_bytes();
        if !bytes.is_empty() {
            let at = at.index(bytes.len());
            if truncate {
                bytes.truncate(at); // may split a char
            } else {
                bytes[at] = byte;
            }
        }
        let buf = place(&bytes, offset, 0x41);
        let window = &buf[offset..offset + bytes.len()];
        prop_assert_eq!(validate_utf8(window), std::str::from_utf8(window));
        prop_assert_eq!(
            string_from_utf8(window.to_vec()),
            String::from_utf8(window.to_vec())
        );
    }

    #[test]
    fn utf8_random_bytes_match_std(data in bytes(), offset in 0..MAX_OFFSET) {
        let buf = place(&data, offset, 0x41);
        let window = &buf[offset..offset + data.len()];
        prop_assert_eq!(validate_utf8(window), std::str::from_utf8(window));
        prop_assert_eq!(
            string_from_utf8(window.to_vec()),
            String::from_utf8(window.to_vec())
        );
    }

    #[test]
    fn string_from_valid_utf8_matches_std(text in text()) {
        prop_assert_eq!(string_from_utf8(text.clone().into_bytes()), Ok(text));
    }
}

/// Catalogue values for CRC-32/ISCSI, the last two from RFC 3720 §B.4.
#[test]
fn checksum_known_vectors() {
    let cases: [(&[u8], u32); 5] = [
        (b"", 0),
        (b"123456789", 0xE306_9283),
        (&[0x00; 32], 0x8A91_36AA),
        (&[0xFF; 32], 0x62A8_AB43),
        (&core::array::from_fn::<u8, 32, _>(|i| i as u8), 0x46DD_794E),
    ];
    for (data, expected) in cases {
        assert_eq!(fast_checksum(data), expected, "fast_checksum({data:02x?})");
        assert_eq!(
            checksum_scalar(data),
            expected,
            "checksum_scalar({data:02x?})"
        );
    }
}

#[test]
fn compare_empty_and_short() {
    assert!(fast_memory_compare(b"", b""));
    assert!(!fast_memory_compare(b"", b"\0"));
    for (name, eq) in implementations() {
        for len in 0..=80 {
            let a: Vec<u8> = (0..len as u8).collect();
            assert!(eq(&a, &a.clone()), "{name} len {len}");
            for at in 0..len {
                let mut b = a.clone();
                b[at] ^= 0x80;
                assert!(!eq(&a, &b), "{name} len {len} differs at {at}");
            }
        }
    }
}

#[test]
fn cpu_features_match_detection() {
    let features = cpu_features();
    assert_eq!(features.arch, std::env::consts::ARCH);
    let shown = features.to_string();
    assert!(shown.starts_with(features.arch), "{shown}");
    #[cfg(target_arch = "x86_64")]
    {
        let sse42 = std::arch::is_x86_feature_detected!("sse4.2");
        assert_eq!(features.sse42, sse42);
        assert_eq!(features.hardware_crc32c(), sse42);
        assert!(
            shown.contains(if sse42 { "+sse4.2" } else { "-sse4.2" }),
            "{shown}"
        );
        assert!(!features.neon && !features.crc);
    }
}
