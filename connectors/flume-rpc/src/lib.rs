//! Flume Avro RPC (see crate docs).
