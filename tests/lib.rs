//! Test-only package: the integration tests (`it/`), the compile-fail
//! tests (`ui.rs`), and what the fuzz targets check (`fuzzing.rs`, shared
//! by `fuzz/` and the stable replay of its corpus), and running Node.js for
//! the TypeScript client and the browser demo (`node.rs`), and a Redis of
//! a test's own (`redis.rs`).

pub mod alloc_probe;
pub mod fuzzing;
pub mod node;
pub mod redis;
pub mod tools;
