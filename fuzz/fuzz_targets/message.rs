//! Fuzz target `message`: see `tests/fuzzing.rs` for what it checks.
#![no_main]

use gamewire_tests::alloc_probe::Probe;
use libfuzzer_sys::fuzz_target;

/// Notes each decoding's largest allocation, for the check that it stays
/// within what the input's bytes back.
#[global_allocator]
static PROBE: Probe = Probe;

fuzz_target!(|data: &[u8]| gamewire_tests::fuzzing::message(data));
