//! The book's chapters as doctests: every Rust snippet that is not an
//! include of a tested example is compiled here, and run unless marked
//! `no_run` (`mdbook test` cannot link external crates, rust-lang/mdBook#394).
//!
//! Every chapter of `book/src/SUMMARY.md` is attached, in its order, by
//! `build.rs`, so a plain Rust snippet added to any of them is compiled. A
//! block that is an `{{#include}}` of a tested crate is not Rust before
//! mdBook runs: mark it `rust,ignore` for mdBook; `build.rs` hands it to
//! rustdoc as text, and refuses an ignored Rust block that is not an
//! include.
#![doc(test(attr(deny(warnings), allow(dead_code))))]

include!(concat!(env!("OUT_DIR"), "/chapters.rs"));
