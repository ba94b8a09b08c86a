//! Tests: kafka.
