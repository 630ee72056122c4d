//! Byte-slice equality: std's `==`, and the hand-written SIMD version it
//! was measured against.

/// Returns whether `a` and `b` hold the same bytes (same length, same
/// contents).
///
/// This is std's slice `==`. It checks the lengths, then calls the C
/// library's `bcmp`/`memcmp`, which glibc already vectorizes (SSE2, AVX2 or
/// EVEX, chosen at load time). A hand-written AVX2/SSE2 loop was measured
/// against it with the criterion bench `benches/simd.rs`: 1.06–1.5× slower
/// at 64 B, and between 3% faster and 1.2× slower at 1 KiB and 64 KiB, so
/// std stays; the figures are in the [module docs](crate::simd).
///
/// Not constant-time: it returns at the first difference, so do not use it
/// to compare secrets such as session tokens.
///
/// # Examples
///
/// ```
/// use gamewire::simd::fast_memory_compare;
///
/// assert!(fast_memory_compare(b"frame", b"frame"));
/// assert!(!fast_memory_compare(b"frame", b"frams"));
/// assert!(!fast_memory_compare(b"frame", b"frames"));
/// ```
#[inline]
#[must_use]
pub fn fast_memory_compare(a: &[u8], b: &[u8]) -> bool {
    a == b
}

/// Hand-written SIMD equality: AVX2 when detected at run time, else SSE2.
///
/// Not public API. It stays (tested against `==`, reachable from the bench)
/// so the measurement behind [`fast_memory_compare`] can be repeated.
#[doc(hidden)]
#[must_use]
pub fn memory_compare_simd(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 was detected on this CPU just above, which is the
            // only requirement `eq_avx2` adds; the lengths are equal.
            return unsafe { x86::eq_avx2(a, b) };
        }
        x86::eq_sse2(a, b)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        eq_words(a, b)
    }
}

/// Word-at-a-time equality: the whole of the portable fallback, and the
/// under-one-vector case of the x86 paths. Two overlapping words cover any
/// length from one word to two without a byte loop.
#[inline]
fn eq_words(a: &[u8], b: &[u8]) -> bool {
    debug_assert_eq!(a.len(), b.len());
    let len = a.len();
    if len >= 8 {
        let mut offset = 0;
        while offset + 8 < len {
            if read_u64(a, offset) != read_u64(b, offset) {
                return false;
            }
            offset += 8;
        }
        return read_u64(a, len - 8) == read_u64(b, len - 8);
    }
    if len >= 4 {
        return read_u32(a, 0) == read_u32(b, 0) && read_u32(a, len - 4) == read_u32(b, len - 4);
    }
    a.iter().zip(b).all(|(x, y)| x == y)
}

/// The 8 bytes at `at` as one word (a single unaligned load once inlined).
#[inline]
fn read_u64(s: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&s[at..at + 8]);
    u64::from_ne_bytes(word)
}

/// The 4 bytes at `at` as one word.
#[inline]
fn read_u32(s: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&s[at..at + 4]);
    u32::from_ne_bytes(word)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{
        __m128i, __m256i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm256_loadu_si256,
        _mm256_or_si256, _mm256_testz_si256, _mm256_xor_si256,
    };

    /// SSE2 (baseline on x86_64): 16 bytes per step, the last step
    /// overlapping the previous one instead of a scalar tail.
    #[inline]
    pub(super) fn eq_sse2(a: &[u8], b: &[u8]) -> bool {
        debug_assert_eq!(a.len(), b.len());
        let len = a.len();
        if len < 16 {
            return super::eq_words(a, b);
        }
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        // SAFETY: `offset + 16 <= len` for every offset passed (the loop
        // stops before `len - 16`, and the last load starts at `len - 16`
        // with `len >= 16`), so both 16-byte loads stay inside `a` and `b`.
        // `loadu` has no alignment requirement, and SSE2 is part of the
        // x86_64 baseline.
        let block_eq = |offset: usize| unsafe {
            let x = _mm_loadu_si128(pa.add(offset).cast::<__m128i>());
            let y = _mm_loadu_si128(pb.add(offset).cast::<__m128i>());
            _mm_movemask_epi8(_mm_cmpeq_epi8(x, y)) == 0xFFFF
        };
        let mut offset = 0;
        while offset + 16 < len {
            if !block_eq(offset) {
                return false;
            }
            offset += 16;
        }
        block_eq(len - 16)
    }

    /// AVX2: 64 bytes per step (two 32-byte loads per side, XOR-ed and
    /// OR-ed, one test), then 32-byte steps, the last one overlapping.
    ///
    /// # Safety
    ///
    /// The CPU must support AVX2, and `a.len() == b.len()`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn eq_avx2(a: &[u8], b: &[u8]) -> bool {
        debug_assert_eq!(a.len(), b.len());
        let len = a.len();
        if len < 32 {
            return eq_sse2(a, b);
        }
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        // SAFETY: every offset passed satisfies `offset + 32 <= len` (the
        // loop conditions below check it, and the last load starts at
        // `len - 32` with `len >= 32`), so the loads stay inside `a` and `b`
        // (equal lengths, caller's contract).
        // `loadu` has no alignment requirement; AVX2 is enabled on this fn
        // and guaranteed by the caller.
        let load = |p: *const u8, offset: usize| unsafe {
            _mm256_loadu_si256(p.add(offset).cast::<__m256i>())
        };
        let diff = |offset: usize| _mm256_xor_si256(load(pa, offset), load(pb, offset));
        let mut offset = 0;
        while offset + 64 <= len {
            let d = _mm256_or_si256(diff(offset), diff(offset + 32));
            if _mm256_testz_si256(d, d) == 0 {
                return false;
            }
            offset += 64;
        }
        while offset + 32 < len {
            let d = diff(offset);
            if _mm256_testz_si256(d, d) == 0 {
                return false;
            }
            offset += 32;
        }
        if offset == len {
            return true;
        }
        let d = diff(len - 32);
        _mm256_testz_si256(d, d) != 0
    }
}

/// An equality implementation under test.
#[cfg(test)]
pub(super) type EqFn = fn(&[u8], &[u8]) -> bool;

/// Every equality implementation in this file, for the property tests. Each
/// entry checks lengths itself, like `==`.
#[cfg(test)]
pub(super) fn implementations() -> Vec<(&'static str, EqFn)> {
    let mut impls: Vec<(&'static str, EqFn)> = vec![
        ("fast_memory_compare", fast_memory_compare),
        ("memory_compare_simd", memory_compare_simd),
        ("words", |a, b| a.len() == b.len() && eq_words(a, b)),
    ];
    #[cfg(target_arch = "x86_64")]
    {
        impls.push(("sse2", |a, b| a.len() == b.len() && x86::eq_sse2(a, b)));
        if std::arch::is_x86_feature_detected!("avx2") {
            impls.push(("avx2", |a, b| {
                // SAFETY: this closure is only registered after AVX2 was
                // detected above; the lengths are checked first.
                a.len() == b.len() && unsafe { x86::eq_avx2(a, b) }
            }));
        }
    }
    impls
}
