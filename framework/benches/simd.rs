//! Micro-benchmarks for `gamewire::simd`: each fast path against its
//! reference, at 64 B, 1 KiB and 64 KiB.
//!
//! ```text
//! cargo bench -p gamewire --bench simd -- --warm-up-time 1 --measurement-time 2
//! ```
//!
//! The figures quoted in the `simd` module docs come from this bench.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gamewire::simd::{
    checksum_scalar, fast_checksum, fast_memory_compare, memory_compare_simd, validate_utf8,
};

const SIZES: [usize; 3] = [64, 1024, 64 * 1024];

/// Deterministic pseudo-random bytes (xorshift), so runs compare.
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Chat-like text, mostly ASCII with 2-, 3- and 4-byte chars, cut to `len`
/// bytes (or just under, at a char boundary).
fn chat_text(len: usize) -> String {
    const LINE: &str = "gg wp! héllo wörld, ready for round 2? こんにちは 🎮 ";
    let mut text = LINE.repeat(len / LINE.len() + 1);
    let mut end = len;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text
}

fn checksum(c: &mut Criterion) {
    let mut group = c.benchmark_group("checksum");
    for len in SIZES {
        let data = noise(len);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::new("fast_checksum", len), &data, |b, data| {
            b.iter(|| fast_checksum(black_box(data)))
        });
        group.bench_with_input(
            BenchmarkId::new("checksum_scalar", len),
            &data,
            |b, data| b.iter(|| checksum_scalar(black_box(data))),
        );
    }
    group.finish();
}

/// Equal inputs in separate allocations: the worst case, every byte read.
fn memory_compare(c: &mut Criterion) {
    let mut group = c.benchmark_group("memory_compare");
    for len in SIZES {
        let a = noise(len);
        let b = a.clone();
        let inputs = (a, b);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(
            BenchmarkId::new("fast_memory_compare", len),
            &inputs,
            |bench, (a, b)| bench.iter(|| fast_memory_compare(black_box(a), black_box(b))),
        );
        group.bench_with_input(BenchmarkId::new("std_eq", len), &inputs, |bench, (a, b)| {
            bench.iter(|| black_box(a.as_slice()) == black_box(b.as_slice()))
        });
        group.bench_with_input(
            BenchmarkId::new("memory_compare_simd", len),
            &inputs,
            |bench, (a, b)| bench.iter(|| memory_compare_simd(black_box(a), black_box(b))),
        );
    }
    group.finish();
}

/// Chat-like mixed text, and pure ASCII (where std has a fast path of its
/// own).
fn utf8(c: &mut Criterion) {
    let mut group = c.benchmark_group("utf8");
    for len in SIZES {
        let mixed = chat_text(len);
        let ascii: String = noise(len)
            .iter()
            .map(|&b| char::from(b' ' + b % 95))
            .collect();
        for (input, text) in [("mixed", mixed), ("ascii", ascii)] {
            let bytes = text.as_bytes();
            group.throughput(Throughput::Bytes(bytes.len() as u64));
            let id = |name: &str| BenchmarkId::new(format!("{name}_{input}"), len);
            group.bench_with_input(id("validate_utf8"), bytes, |b, bytes| {
                b.iter(|| validate_utf8(black_box(bytes)).is_ok())
            });
            group.bench_with_input(id("std_from_utf8"), bytes, |b, bytes| {
                b.iter(|| std::str::from_utf8(black_box(bytes)).is_ok())
            });
        }
    }
    group.finish();
}

/// Decoding a chat line as the server does (its `String` field through
/// `simd::string_from_utf8`) against serde's plain `String` (std's check)
/// on the same bytes: what the SIMD check saves per message.
fn decode_chat_line(c: &mut Criterion) {
    use gamewire::ChatMessage;
    use gamewire::wire::{self, Frame, LENGTH_PREFIX_LEN};

    let mut group = c.benchmark_group("decode a SendChat frame");
    for len in [64, 1024] {
        let text = chat_text(len);
        let frame = wire::encode_frame(&Frame::App(ChatMessage::SendChat { room_id: 1, text }))
            .expect("encodes");
        let payload = &frame[LENGTH_PREFIX_LEN..];
        group.bench_with_input(BenchmarkId::new("gamewire (simd)", len), payload, |b, p| {
            b.iter(|| wire::decode_payload::<Frame<ChatMessage>>(black_box(p)).expect("decodes"));
        });
        // The same bytes read as (envelope id, variant id, room, String).
        group.bench_with_input(
            BenchmarkId::new("serde String (std)", len),
            payload,
            |b, p| {
                b.iter(|| {
                    wire::decode_payload::<(u32, u32, u32, String)>(black_box(p)).expect("decodes")
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, checksum, memory_compare, utf8, decode_chat_line);
criterion_main!(benches);
