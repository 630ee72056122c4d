//! The book's chapters as doctests: every Rust snippet that is not an
//! include of a tested example is compiled here, and run unless marked
//! `no_run` (`mdbook test` cannot link external crates, rust-lang/mdBook#394).
#![doc(test(attr(deny(warnings), allow(dead_code))))]

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

#[doc = include_str!("../../src/reference/configuration.md")]
pub mod configuration {}

#[doc = include_str!("../../src/reference/macros.md")]
pub mod macros {}

#[doc = include_str!("../../src/tutorial/02-protocol.md")]
pub mod tutorial_02_protocol {}
