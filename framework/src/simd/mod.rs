//! SIMD helpers (being written).
