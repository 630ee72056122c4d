//! Byte-crunching helpers for the hot path: checksums, equality and UTF-8
//! validation, each on the fastest code the CPU offers.
//!
//! A game server touches every byte it receives at least once more after
//! the socket: to checksum a frame, to compare a payload or token, to check
//! that chat text is UTF-8. These helpers do that work with SIMD or
//! dedicated CPU instructions where the CPU has them, detected at run time
//! (one binary runs everywhere), and with plain scalar code where it does
//! not. Each fast path is property-tested against a simple reference
//! (random lengths 0..4096, random alignments 0..64), so it can be trusted
//! to give the same answer, only sooner.
//!
//! # In the server
//!
//! Every `String` field of a `#[message]` variant (chat text, names,
//! commands) is decoded from its bytes with [`string_from_utf8`]: same
//! bytes on the wire, 1.1× faster to decode for a 64-byte chat line and
//! 2.9× for a 1 KiB one (table below). [`fast_checksum`] is not on the
//! server's path: every TCP segment already carries a checksum (and the
//! link layer a CRC32), and a checksum in each frame would change the wire
//! protocol for every client. It is here for your own data: save games,
//! replays, the state hashes lockstep games compare to find a desync.
//!
//! Where a maintained crate or std is already optimal, this module uses it
//! rather than hand-written intrinsics, and says which and why:
//!
//! | function | implemented by | reference in the tests |
//! | --- | --- | --- |
//! | [`fast_checksum`], [`fast_checksum_append`] | `crc32c` crate (SSE4.2 / ARMv8 CRC) | [`checksum_scalar`] |
//! | [`fast_memory_compare`] | std slice `==` (libc `bcmp`, vectorized) | `==`, hand-written SSE2/AVX2 |
//! | [`validate_utf8`], [`string_from_utf8`] | `simdutf8` (AVX2 / SSE4.2 / NEON) | [`std::str::from_utf8`], [`String::from_utf8`] |
//! | [`cpu_features`] | std feature detection | — |
//!
//! # Measured
//!
//! Medians from the criterion bench `benches/simd.rs` on the development
//! machine (AMD EPYC, 2 shared cores, x86_64 with SSE4.2, AVX2, PCLMULQDQ and
//! AVX-512; glibc), two full runs of
//!
//! ```text
//! cargo bench -p gamewire --bench simd -- --warm-up-time 1 --measurement-time 2
//! ```
//!
//! Absolute figures moved by up to 40% between runs (other builds shared the
//! cores); the ratios, which are what the choices rest on, held.
//!
//! | bench | 64 B | 1 KiB | 64 KiB |
//! | --- | --- | --- | --- |
//! | `fast_checksum` | 6.4 ns (9.4 GiB/s) | 34 ns (28 GiB/s) | 2.2 µs (28 GiB/s) |
//! | `checksum_scalar` | 91 ns (0.65 GiB/s) | 2.0 µs (0.48 GiB/s) | 130 µs (0.47 GiB/s) |
//! | → `fast_checksum` is faster by | 14× (run 1: 14×) | 58× (59×) | 59× (60×) |
//! | `fast_memory_compare` (= std `==`) | 1.6 ns | 8.6 ns (111 GiB/s) | 677 ns (90 GiB/s) |
//! | hand-written AVX2, same inputs | 2.4 ns | 9.0 ns (106 GiB/s) | 654 ns (93 GiB/s) |
//! | → AVX2 time ÷ `==` time | 1.53 (run 1: 1.06) | 1.04 (1.22) | 0.97 (1.15) |
//! | `validate_utf8`, chat text | 3.1 ns (19 GiB/s) | 46 ns (21 GiB/s) | 2.9 µs (21 GiB/s) |
//! | `std::str::from_utf8`, chat text | 18 ns (3.3 GiB/s) | 261 ns (3.7 GiB/s) | 16 µs (3.8 GiB/s) |
//! | → `validate_utf8` is faster by | 5.8× (run 1: 6.3×) | 5.7× (6.5×) | 5.5× (6.0×) |
//! | `validate_utf8`, pure ASCII | 2.2 ns | 7.8 ns (122 GiB/s) | 397 ns (154 GiB/s) |
//! | `std::str::from_utf8`, pure ASCII | 2.9 ns | 17 ns (55 GiB/s) | 1.1 µs (56 GiB/s) |
//! | → `validate_utf8` is faster by | 1.3× | 2.2× | 2.8× |
//!
//! | decode a `SendChat` frame, text of | 64 B | 1 KiB | |
//! | --- | --- | --- | --- |
//! | gamewire (`String` fields via [`string_from_utf8`]) | 90 ns | 181 ns | |
//! | serde's `String` (std's check), same bytes | 100 ns | 517 ns | |
//! | → faster by | 1.1× | 2.9× | |
//!
//! "Chat text" is mostly ASCII with 2-, 3- and 4-byte characters mixed in.
//! The hand-written equality (AVX2, 64 bytes per step, overlapping last
//! vector; SSE2 without AVX2) never beat std clearly: it lost at 64 B, where
//! frames mostly are, and at best tied at 64 KiB. So
//! [`fast_memory_compare`] is std's `==`, which also needs no `unsafe`.

mod checksum;
mod compare;
mod cpu;
mod utf8;

#[cfg(test)]
mod tests;

pub use self::checksum::{checksum_scalar, fast_checksum, fast_checksum_append};
pub use self::compare::fast_memory_compare;
#[doc(hidden)]
pub use self::compare::memory_compare_simd;
pub use self::cpu::{CpuFeatures, cpu_features};
pub use self::utf8::{string_from_utf8, validate_utf8};
