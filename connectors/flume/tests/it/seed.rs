//! Tests: seed.
