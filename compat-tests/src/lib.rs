//! Compatibility tests live under tests/. The library holds what a test and a binary share:
//! the wire fuzzer ([`fuzz`]), run briefly by the test suite and at length by `sluice-fuzz`.

// The fuzzer builds frames from untrusted-looking numbers on purpose; its casts are the point.
#![allow(clippy::cast_possible_truncation)]

pub mod fuzz;
