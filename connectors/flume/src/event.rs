//! The event: headers plus a body. The type is `sluice_flume_rpc::Event`, so events cross
//! the Avro RPC boundary (avro source and sink, SparkSink) without conversion.

pub use sluice_flume_rpc::{Event, Headers};
