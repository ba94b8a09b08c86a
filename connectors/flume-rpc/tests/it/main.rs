//! Integration tests of sluice-flume-rpc, one binary (see STYLE.md):
//! - `codec`: the public datum and frame decoders against hostile input;
//! - `loopback`: our clients against our servers, both protocols, plain and deflate, every
//!   handshake path, pipelining, unknown messages, shutdown;
//! - `hostile`: malformed input closes only the connection it came on;
//! - `flume`: real Apache Flume 1.11 (Java) on the other end: its avro sink into our server,
//!   our client into its avro source, our Spark client against the real SparkSink;
//! - `tls`: keytool's JKS and PKCS12 stores; our client and server over TLS.

// Helpers outside #[test] functions are not covered by clippy.toml's test allowances; `pub`
// in a test binary's modules only means "shared between modules".
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod codec;
mod flume;
mod hostile;
mod loopback;
mod support;
mod tls;
