//! `EnhancedMemoryPool`: size-classed, reusable byte buffers.
//!
//! A server that reads from thousands of sockets needs a buffer for each
//! read, but only while the read is happening: an idle connection should
//! hold no memory at all. The pool makes taking and returning a buffer per
//! read cheap. Buffers come in size classes from 256 bytes to 64 KiB
//! (powers of two); each class keeps free buffers in several independently
//! locked shards, so concurrent readers rarely meet on one lock. A cap on
//! the bytes the pool retains keeps a burst from pinning memory forever.
//!
//! Each shard holds free buffers of every class and its own counters under
//! one lock; threads are dealt out over the shards, and a buffer goes back
//! to the shard it came from, so two cores taking and returning buffers at
//! once share no lock, no counter and no reference count.
//!
//! The server uses the pool, when `enable_enhanced_memory_pool` is on, for
//! read buffers (taken per read burst) and write buffers (taken per write
//! batch). It is off by default because it does not beat the allocator on
//! this path. `cargo bench -p gamewire --bench pool`, two runs: take, fill
//! 512 B and return a 4 KiB buffer took 41 and 40 ns from the pool against
//! 46 and 38 ns from glibc; 16 KiB, 43 and 40 ns against 43 and 21 ns; on
//! two threads at once, 50 and 46 ns against 47 and 35 ns. Encoding frames
//! into pooled buffers loses outright (91 and 97 ns against 79 and 73 ns
//! for a chat broadcast): an encoded frame is shared with every
//! recipient's queue as `Bytes`, and a `Bytes` that gives its buffer back to
//! a pool needs an owner allocation of its own, which costs what the pool
//! saves. What keeps idle connections small is taking buffers only while
//! there are bytes, which the server does with or without the pool.
//!
//! A [`PooledBuffer`] returns itself to its pool when dropped;
//! [`EnhancedMemoryPool::deallocate_buffer`] does the same explicitly, as
//! in the original guide.
//!
//! # Examples
//!
//! ```
//! use gamewire::EnhancedMemoryPool;
//!
//! let pool = EnhancedMemoryPool::new(Default::default());
//! if let Some(mut buffer) = pool.allocate_buffer(4096) {
//!     let data = buffer.get_buffer();
//!     data.extend_from_slice(b"test data");
//!     pool.deallocate_buffer(buffer);
//! }
//! let again = pool.allocate_buffer(4096).expect("4 KiB is a pooled size");
//! assert!(again.capacity() >= 4096);
//! assert_eq!(pool.stats().hits, 1, "the second buffer was the first one, reused");
//! ```

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::BytesMut;

/// The smallest size class, in bytes.
pub(crate) const MIN_CLASS: usize = 256;
/// The largest size class, in bytes; larger requests are not pooled.
pub(crate) const MAX_CLASS: usize = 64 * 1024;
const CLASSES: usize = (MAX_CLASS / MIN_CLASS).trailing_zeros() as usize + 1;
const SHARDS: usize = 8;

/// Limits of an [`EnhancedMemoryPool`].
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryPoolConfig {
    /// Bytes of free buffers the pool keeps at most, split evenly over
    /// its 8 shards; a buffer returned beyond its shard's share is freed.
    pub max_retained_bytes: usize,
    /// Free buffers kept per size class and shard at most.
    pub max_buffers_per_shard: usize,
}

impl Default for MemoryPoolConfig {
    fn default() -> Self {
        MemoryPoolConfig {
            max_retained_bytes: 16 * 1024 * 1024,
            max_buffers_per_shard: 256,
        }
    }
}

/// A snapshot of a pool's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct MemoryPoolStats {
    /// Requests served with a reused buffer.
    pub hits: u64,
    /// Requests that allocated a new buffer.
    pub misses: u64,
    /// Requests over the largest class, not served.
    pub oversized: u64,
    /// Buffers handed out and not yet returned.
    pub in_use: u64,
    /// Buffers returned and kept.
    pub returned: u64,
    /// Buffers returned but freed, because of the retention cap.
    pub discarded: u64,
    /// Bytes of free buffers kept now.
    pub retained_bytes: usize,
}

impl MemoryPoolStats {
    /// Share of requests served by reuse, from 0 to 1.
    pub fn hit_rate(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }
}

struct Inner {
    config: MemoryPoolConfig,
    shards: [Arc<Shard>; SHARDS],
    oversized: AtomicU64,
}

/// One shard of the pool: free buffers of every class, and the counters of
/// the buffers it handed out. A thread takes from its own shard, and a
/// buffer goes back to the shard it came from, so threads on different
/// cores meet on neither a lock nor a counter (nor the shard's reference
/// count, which every buffer it hands out holds).
#[repr(align(128))]
struct Shard {
    /// `max_retained_bytes / SHARDS`.
    max_retained_bytes: usize,
    max_buffers: usize,
    state: Mutex<ShardState>,
}

#[derive(Default)]
struct ShardState {
    /// `free[c]`: free buffers of class `c`.
    free: [Vec<BytesMut>; CLASSES],
    retained_bytes: usize,
    hits: u64,
    misses: u64,
    /// Buffers that came back, or left the pool with `into_inner`.
    ended: u64,
    returned: u64,
    discarded: u64,
}

impl Shard {
    fn lock(&self) -> std::sync::MutexGuard<'_, ShardState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn give_back(&self, mut buffer: BytesMut, class: usize) {
        let capacity = MIN_CLASS << class;
        buffer.clear();
        // A buffer whose storage is still shared (a frame split off it is
        // alive) or that shrank cannot serve its class again.
        if buffer.capacity() < capacity {
            buffer.reserve(capacity);
        }
        let mut state = self.lock();
        state.ended += 1;
        let keep = buffer.capacity() == capacity
            && state.retained_bytes + capacity <= self.max_retained_bytes
            && state.free[class].len() < self.max_buffers;
        if keep {
            state.free[class].push(buffer);
            state.retained_bytes += capacity;
            state.returned += 1;
        } else {
            state.discarded += 1;
            // Freed after the lock is released.
            drop(state);
            drop(buffer);
        }
    }
}

/// A pool of reusable byte buffers in size classes.
///
/// Cheap to clone; every clone is the same pool.
#[derive(Clone)]
pub struct EnhancedMemoryPool {
    inner: Arc<Inner>,
}

impl fmt::Debug for EnhancedMemoryPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnhancedMemoryPool")
            .field("config", &self.inner.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Default for EnhancedMemoryPool {
    fn default() -> Self {
        EnhancedMemoryPool::new(MemoryPoolConfig::default())
    }
}

/// The size class that serves `size` bytes, and that class's buffer size.
fn class_of(size: usize) -> Option<(usize, usize)> {
    if size > MAX_CLASS {
        return None;
    }
    let rounded = size.max(MIN_CLASS).next_power_of_two();
    let class = (rounded / MIN_CLASS).trailing_zeros() as usize;
    Some((class, rounded))
}

/// The shard this thread takes from: threads are dealt out over the shards
/// in turn, so the first `SHARDS` threads (the runtime's workers, as a
/// rule) each get one of their own.
fn shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|s| *s)
}

impl EnhancedMemoryPool {
    /// An empty pool with these limits.
    pub fn new(config: MemoryPoolConfig) -> Self {
        let shards = std::array::from_fn(|_| {
            Arc::new(Shard {
                max_retained_bytes: config.max_retained_bytes / SHARDS,
                max_buffers: config.max_buffers_per_shard,
                state: Mutex::default(),
            })
        });
        EnhancedMemoryPool {
            inner: Arc::new(Inner {
                config,
                shards,
                oversized: AtomicU64::new(0),
            }),
        }
    }

    /// A buffer with room for at least `size` bytes, or `None` when `size`
    /// is over 64 KiB. Its length is zero.
    pub fn allocate_buffer(&self, size: usize) -> Option<PooledBuffer> {
        let Some((class, capacity)) = class_of(size) else {
            self.inner.oversized.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let shard = &self.inner.shards[shard()];
        let reused = {
            let mut state = shard.lock();
            let reused = state.free[class].pop();
            if reused.is_some() {
                state.retained_bytes -= capacity;
                state.hits += 1;
            } else {
                state.misses += 1;
            }
            reused
        };
        Some(PooledBuffer {
            buffer: reused.unwrap_or_else(|| BytesMut::with_capacity(capacity)),
            class,
            shard: Some(Arc::clone(shard)),
        })
    }

    /// Returns a buffer to the pool, as dropping it would.
    pub fn deallocate_buffer(&self, buffer: PooledBuffer) {
        drop(buffer);
    }

    /// The pool's counters now, summed over its shards.
    pub fn stats(&self) -> MemoryPoolStats {
        let mut stats = MemoryPoolStats {
            oversized: self.inner.oversized.load(Ordering::Relaxed),
            ..MemoryPoolStats::default()
        };
        for shard in &self.inner.shards {
            let state = shard.lock();
            stats.hits += state.hits;
            stats.misses += state.misses;
            stats.in_use += state.hits + state.misses - state.ended;
            stats.returned += state.returned;
            stats.discarded += state.discarded;
            stats.retained_bytes += state.retained_bytes;
        }
        stats
    }

    /// A readable report of the pool's counters, as the guide's
    /// `get_memory_pool_status` prints it.
    pub fn report(&self) -> String {
        let s = self.stats();
        format!(
            "EnhancedMemoryPool\n  requests:  {} ({} hits, {} misses, hit rate {:.1}%)\n  oversized: {}\n  in use:    {} buffers\n  retained:  {} bytes (cap {})\n  returned:  {} kept, {} freed",
            s.hits + s.misses,
            s.hits,
            s.misses,
            s.hit_rate() * 100.0,
            s.oversized,
            s.in_use,
            s.retained_bytes,
            self.inner.config.max_retained_bytes,
            s.returned,
            s.discarded,
        )
    }
}

/// A buffer from an [`EnhancedMemoryPool`]; it goes back when dropped.
///
/// It dereferences to [`BytesMut`], a growable buffer.
pub struct PooledBuffer {
    buffer: BytesMut,
    class: usize,
    /// The shard it came from and goes back to; `None` when unpooled.
    shard: Option<Arc<Shard>>,
}

impl PooledBuffer {
    /// A buffer of at least `capacity` bytes from `pool` when there is one
    /// and it pools that size, else from the allocator.
    pub(crate) fn from(pool: Option<&EnhancedMemoryPool>, capacity: usize) -> Self {
        pool.and_then(|pool| pool.allocate_buffer(capacity))
            .unwrap_or_else(|| PooledBuffer::unpooled(capacity))
    }

    /// A buffer that belongs to no pool, for when the pool is off or the
    /// size is not pooled.
    pub(crate) fn unpooled(capacity: usize) -> Self {
        PooledBuffer {
            buffer: BytesMut::with_capacity(capacity),
            class: 0,
            shard: None,
        }
    }

    /// The growable buffer, as the guide names it.
    pub fn get_buffer(&mut self) -> &mut BytesMut {
        &mut self.buffer
    }

    /// Keeps the bytes and leaves the pool: the buffer will be freed, not
    /// returned.
    pub fn into_inner(mut self) -> BytesMut {
        if let Some(shard) = self.shard.take() {
            shard.lock().ended += 1;
        }
        std::mem::take(&mut self.buffer)
    }
}

impl Deref for PooledBuffer {
    type Target = BytesMut;

    fn deref(&self) -> &BytesMut {
        &self.buffer
    }
}

impl DerefMut for PooledBuffer {
    fn deref_mut(&mut self) -> &mut BytesMut {
        &mut self.buffer
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        if let Some(shard) = self.shard.take() {
            shard.give_back(std::mem::take(&mut self.buffer), self.class);
        }
    }
}

impl fmt::Debug for PooledBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledBuffer")
            .field("len", &self.buffer.len())
            .field("capacity", &self.buffer.capacity())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_round_up_to_powers_of_two() {
        assert_eq!(class_of(0), Some((0, 256)));
        assert_eq!(class_of(256), Some((0, 256)));
        assert_eq!(class_of(257), Some((1, 512)));
        assert_eq!(class_of(4096), Some((4, 4096)));
        assert_eq!(class_of(MAX_CLASS), Some((CLASSES - 1, MAX_CLASS)));
        assert_eq!(class_of(MAX_CLASS + 1), None);
    }

    #[test]
    fn returned_buffers_are_reused() {
        let pool = EnhancedMemoryPool::default();
        let first = pool.allocate_buffer(1000).unwrap();
        let address = first.as_ptr();
        drop(first);
        let second = pool.allocate_buffer(900).unwrap();
        assert_eq!(second.as_ptr(), address);
        let stats = pool.stats();
        assert_eq!((stats.hits, stats.misses, stats.in_use), (1, 1, 1));
    }

    #[test]
    fn oversized_requests_are_refused() {
        let pool = EnhancedMemoryPool::default();
        assert!(pool.allocate_buffer(MAX_CLASS + 1).is_none());
        assert_eq!(pool.stats().oversized, 1);
    }

    #[test]
    fn retention_is_capped() {
        // 8 KiB for the shard this thread uses.
        let pool = EnhancedMemoryPool::new(MemoryPoolConfig {
            max_retained_bytes: SHARDS * 8 * 1024,
            max_buffers_per_shard: 64,
        });
        let buffers: Vec<_> = (0..4)
            .map(|_| pool.allocate_buffer(4096).unwrap())
            .collect();
        drop(buffers);
        let stats = pool.stats();
        assert_eq!(stats.retained_bytes, 8 * 1024);
        assert_eq!((stats.returned, stats.discarded, stats.in_use), (2, 2, 0));
    }

    #[test]
    fn a_buffer_whose_bytes_live_on_is_not_reused_in_place() {
        let pool = EnhancedMemoryPool::default();
        let mut buffer = pool.allocate_buffer(256).unwrap();
        buffer.extend_from_slice(&[1; 100]);
        let frame = buffer.split_to(100).freeze();
        drop(buffer);
        // The frame still points into the old storage and stays intact.
        let mut reused = pool.allocate_buffer(256).unwrap();
        reused.extend_from_slice(&[2; 256]);
        assert!(frame.iter().all(|&b| b == 1));
        assert_eq!(pool.stats().in_use, 1);
    }

    #[test]
    fn into_inner_leaves_the_pool() {
        let pool = EnhancedMemoryPool::default();
        let mut buffer = pool.allocate_buffer(300).unwrap();
        buffer.extend_from_slice(b"keep");
        let bytes = buffer.into_inner();
        assert_eq!(&bytes[..], b"keep");
        let stats = pool.stats();
        assert_eq!((stats.in_use, stats.returned), (0, 0));
    }

    #[test]
    fn threads_share_one_pool() {
        let pool = EnhancedMemoryPool::default();
        // Buffers taken on several threads and returned on others.
        let taken: Vec<PooledBuffer> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        let mut mine = Vec::new();
                        for n in 0..100 {
                            let buffer = pool.allocate_buffer(1024).unwrap();
                            if n % 2 == 0 {
                                mine.push(buffer);
                            }
                        }
                        mine
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect()
        });
        assert_eq!(pool.stats().in_use, 200);
        std::thread::scope(|scope| {
            scope.spawn(move || drop(taken));
        });
        let stats = pool.stats();
        assert_eq!(stats.in_use, 0);
        assert_eq!(stats.hits + stats.misses, 400);
        assert_eq!(stats.returned + stats.discarded, 400);
    }

    #[test]
    fn report_names_the_figures() {
        let pool = EnhancedMemoryPool::default();
        drop(pool.allocate_buffer(10));
        let report = pool.report();
        assert!(report.contains("1 misses"), "{report}");
        assert!(report.contains("retained:  256 bytes"), "{report}");
    }

    /// The pool against a model of its counters, for random sequences of
    /// takes and returns (STYLE rule 20's differential check, with
    /// proptest).
    mod differential {
        use proptest::prelude::*;

        use super::*;

        #[derive(Debug, Clone)]
        enum Op {
            Take(usize),
            Give(usize),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                (0usize..(MAX_CLASS + 1024)).prop_map(Op::Take),
                any::<usize>().prop_map(Op::Give),
            ]
        }

        proptest! {
            #[test]
            fn counters_match_the_model(ops in prop::collection::vec(op(), 0..200), cap_kib in 0usize..256) {
                let cap = cap_kib * 1024;
                let pool = EnhancedMemoryPool::new(MemoryPoolConfig {
                    max_retained_bytes: cap,
                    max_buffers_per_shard: 8,
                });
                let mut held: Vec<PooledBuffer> = Vec::new();
                let (mut served, mut oversized) = (0u64, 0u64);
                for op in ops {
                    match op {
                        Op::Take(size) => match pool.allocate_buffer(size) {
                            Some(mut buffer) => {
                                prop_assert!(size <= MAX_CLASS);
                                prop_assert!(buffer.capacity() >= size);
                                prop_assert!(buffer.is_empty(), "a reused buffer comes back empty");
                                buffer.extend_from_slice(&[1, 2, 3]);
                                served += 1;
                                held.push(buffer);
                            }
                            None => {
                                prop_assert!(size > MAX_CLASS);
                                oversized += 1;
                            }
                        },
                        Op::Give(index) if !held.is_empty() => {
                            let buffer = held.swap_remove(index % held.len());
                            pool.deallocate_buffer(buffer);
                        }
                        Op::Give(_) => {}
                    }
                    let stats = pool.stats();
                    prop_assert_eq!(stats.in_use, held.len() as u64);
                    prop_assert_eq!(stats.hits + stats.misses, served);
                    prop_assert_eq!(stats.oversized, oversized);
                    prop_assert!(stats.retained_bytes <= cap);
                }
                drop(held);
                let stats = pool.stats();
                prop_assert_eq!(stats.in_use, 0);
                prop_assert_eq!(stats.returned + stats.discarded, served);
            }
        }
    }
}
