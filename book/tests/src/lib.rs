//! The book's chapters as doctests: every Rust snippet that is not an
//! include of a tested example is compiled here, and run unless marked
//! `no_run` (`mdbook test` cannot link external crates, rust-lang/mdBook#394).
//!
//! Every chapter of `book/src/SUMMARY.md` is attached, in its order, so a
//! plain Rust snippet added to any of them is compiled. A block that is an
//! `{{#include}}` is not Rust before mdBook runs: mark it `rust,ignore`.
#![doc(test(attr(deny(warnings), allow(dead_code))))]

#[doc = include_str!("../../src/introduction.md")]
pub mod introduction {}

#[doc = include_str!("../../src/tutorial/01-hello.md")]
pub mod tutorial_01_hello {}

#[doc = include_str!("../../src/tutorial/02-protocol.md")]
pub mod tutorial_02_protocol {}

#[doc = include_str!("../../src/tutorial/03-rooms.md")]
pub mod tutorial_03_rooms {}

#[doc = include_str!("../../src/tutorial/04-game.md")]
pub mod tutorial_04_game {}

#[doc = include_str!("../../src/tutorial/05-middleware.md")]
pub mod tutorial_05_middleware {}

#[doc = include_str!("../../src/guides/architecture.md")]
pub mod architecture {}

#[doc = include_str!("../../src/guides/core-components.md")]
pub mod core_components {}

#[doc = include_str!("../../src/guides/extending.md")]
pub mod extending {}

#[doc = include_str!("../../src/guides/performance.md")]
pub mod performance {}

#[doc = include_str!("../../src/guides/monitoring.md")]
pub mod monitoring {}

#[doc = include_str!("../../src/guides/benchmarking.md")]
pub mod benchmarking {}

#[doc = include_str!("../../src/guides/best-practices.md")]
pub mod best_practices {}

#[doc = include_str!("../../src/reference/wire-protocol.md")]
pub mod wire_protocol {}

#[doc = include_str!("../../src/reference/configuration.md")]
pub mod configuration {}

#[doc = include_str!("../../src/reference/macros.md")]
pub mod macros {}

#[doc = include_str!("../../src/reference/compile-errors.md")]
pub mod compile_errors {}
