//! EnhancedMemoryPool against the allocator, for the three places the
//! server could take buffers:
//!
//! - a 4 KiB read buffer per read burst and a 16 KiB write buffer per write
//!   batch: each iteration takes a buffer, fills part of it as the server
//!   would, and gives it back (drop). Measured on one thread, and on two
//!   threads at once (the server runs a worker per core);
//! - frame encoding: a chat broadcast encoded into a fresh `BytesMut`, as
//!   `wire::encode_frame` does, against one encoded into a pooled buffer
//!   that goes back to the pool when the last `Bytes` handle drops
//!   (`Bytes::from_owner`), which is what sharing one encoded broadcast
//!   with every recipient's queue needs.
//!
//! Run: `cargo bench -p gamewire --bench pool -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use gamewire::wire::{self, Frame};
use gamewire::{ChatMessage, EnhancedMemoryPool, PooledBuffer};

fn take_fill_return(c: &mut Criterion) {
    let pool = EnhancedMemoryPool::default();
    let payload = [7u8; 512];
    let mut group = c.benchmark_group("buffer take, fill 512 B, return");
    for size in [4 * 1024, 16 * 1024] {
        group.bench_with_input(BenchmarkId::new("pool", size), &size, |b, &size| {
            b.iter(|| {
                let mut buffer = pool.allocate_buffer(size).expect("a pooled size");
                buffer.extend_from_slice(&payload);
                black_box(&buffer);
            });
        });
        group.bench_with_input(BenchmarkId::new("allocator", size), &size, |b, &size| {
            b.iter(|| {
                let mut buffer = BytesMut::with_capacity(size);
                buffer.extend_from_slice(&payload);
                black_box(&buffer);
            });
        });
    }
    group.finish();
}

/// Runs `one` `iters` times on each of two threads at once; returns the
/// wall time, so criterion reports the time of one call per thread.
fn on_two_threads(iters: u64, one: impl Fn() + Sync) -> Duration {
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                for _ in 0..iters {
                    one();
                }
            });
        }
    });
    start.elapsed()
}

fn take_fill_return_two_threads(c: &mut Criterion) {
    let pool = EnhancedMemoryPool::default();
    let payload = [7u8; 512];
    let size = 4 * 1024;
    let mut group = c.benchmark_group("buffer take, fill 512 B, return, 2 threads");
    group.bench_function(BenchmarkId::new("pool", size), |b| {
        b.iter_custom(|iters| {
            on_two_threads(iters, || {
                let mut buffer = pool.allocate_buffer(size).expect("a pooled size");
                buffer.extend_from_slice(&payload);
                black_box(&buffer);
            })
        });
    });
    group.bench_function(BenchmarkId::new("allocator", size), |b| {
        b.iter_custom(|iters| {
            on_two_threads(iters, || {
                let mut buffer = BytesMut::with_capacity(size);
                buffer.extend_from_slice(&payload);
                black_box(&buffer);
            })
        });
    });
    group.finish();
}

/// A pooled buffer as the owner of a `Bytes`: the buffer goes back to the
/// pool when the last handle is dropped.
struct Owner(PooledBuffer);

impl AsRef<[u8]> for Owner {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

fn encode_broadcast(c: &mut Criterion) {
    let pool = EnhancedMemoryPool::default();
    let frame = Frame::App(ChatMessage::ChatBroadcast {
        room_id: 7,
        sender: 42,
        text: "a typical line of chat, some forty bytes".into(),
        timestamp_ms: 1_764_000_000_000,
    });
    let mut group = c.benchmark_group("encode a chat broadcast, share it, drop it");
    group.bench_function("allocator (wire::encode_frame)", |b| {
        b.iter(|| {
            let bytes = wire::encode_frame(black_box(&frame)).expect("encodes");
            let shared = bytes.clone();
            black_box((&bytes, &shared));
        });
    });
    group.bench_function("pool (Bytes::from_owner)", |b| {
        b.iter(|| {
            let mut buffer = pool.allocate_buffer(256).expect("a pooled size");
            wire::encode_frame_into(black_box(&frame), &mut buffer).expect("encodes");
            let bytes = Bytes::from_owner(Owner(buffer));
            let shared = bytes.clone();
            black_box((&bytes, &shared));
        });
    });
    group.finish();
}

criterion_group!(
    benches,
    take_fill_return,
    take_fill_return_two_threads,
    encode_broadcast
);
criterion_main!(benches);
