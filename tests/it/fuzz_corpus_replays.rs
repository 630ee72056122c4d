//! The fuzz targets' corpus (`fuzz/corpus/`), replayed on stable: every
//! input the fuzzer kept passes the same checks it passed under
//! cargo-fuzz (see `tests/fuzzing.rs` and the book's chapter On the open
//! internet).

use std::path::Path;

use gamewire_tests::fuzzing;

fn replay(target: &str, check: fn(&[u8])) {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut inputs = 0;
    for entry in std::fs::read_dir(&corpus).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let replayed = std::panic::catch_unwind(|| check(&data));
        assert!(replayed.is_ok(), "{} fails", path.display());
        inputs += 1;
    }
    assert!(inputs > 0, "{} holds no inputs", corpus.display());
}

#[test]
fn frames() {
    replay("frames", fuzzing::frames);
}

#[test]
fn handshake() {
    replay("handshake", fuzzing::handshake);
}

#[test]
fn message() {
    replay("message", fuzzing::message);
}
