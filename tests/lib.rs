//! Test-only package: see `it/` and `ui.rs`.
