//! EnhancedMemoryPool against the allocator, for the two places the server
//! takes buffers: a 4 KiB read buffer per read burst, and a 16 KiB write
//! buffer per write batch. Each iteration takes a buffer, fills part of
//! it as the server would, and gives it back (drop).
//!
//! Run: `cargo bench -p gamewire --bench pool -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use gamewire::EnhancedMemoryPool;

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

criterion_group!(benches, take_fill_return);
criterion_main!(benches);
