//! Flume's event serializers (`EventSerializerType`), shared by the `hdfs` sink (DataStream
//! and CompressedStream files, key `serializer`) and the `file_roll` sink (key
//! `sink.serializer`):
//! - `TEXT` (`BodyTextEventSerializer`): the body, then `\n` unless `appendNewline = false`;
//! - `HEADER_AND_TEXT`: the headers as Java prints a map (`{a=b, c=d} `), the body, `\n`;
//! - `AVRO_EVENT` (`FlumeEventAvroEventSerializer`): an Avro object container file whose
//!   records are `{headers: map<string>, body: bytes}`, one block per flush, no codec.
//!
//! Serializers write into a byte buffer that the sink hands to the file in one call per
//! transaction; they never do I/O themselves. Types are matched case-insensitively, and the
//! `$Builder` class names Flume accepts are accepted too. Unknown types are configuration
//! errors (Flume would fail with ClassNotFoundException when opening the first file).

use sluice_flume_rpc::encode_event;

use crate::conf::{ConfigError, Context};
use crate::event::Event;

/// Avro container files sync every 2 MB of records at most (`syncIntervalBytes` default).
const DEFAULT_SYNC_INTERVAL_BYTES: usize = 2_048_000;

/// The schema `FlumeEventAvroEventSerializer` writes, as Avro's `Schema.toString()` prints it.
const FLUME_EVENT_SCHEMA: &str = r#"{"type":"record","name":"Event","fields":[{"name":"headers","type":{"type":"map","values":"string"}},{"name":"body","type":"bytes"}]}"#;

/// Which serializer, with its settings; builds a fresh [`EventSerializer`] per file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SerializerSpec {
    /// Body only.
    Text {
        /// Add `\n` after each body (`appendNewline`, default true).
        append_newline: bool,
    },
    /// `{headers} body`.
    HeaderAndText {
        /// Add `\n` after each body.
        append_newline: bool,
    },
    /// Avro container file of Flume events.
    AvroEvent {
        /// Bytes of records after which a block is written even without a flush.
        sync_interval_bytes: usize,
    },
}

impl SerializerSpec {
    /// Parse `type_key` (e.g. `serializer`) and its sub-keys (`serializer.appendNewline`...)
    /// from `ctx`.
    pub fn from_context(ctx: &Context, type_key: &str) -> Result<SerializerSpec, ConfigError> {
        let kind = ctx.string(type_key, "TEXT");
        let sub = ctx.sub(&format!("{type_key}."));
        let k = kind.trim();
        let up = k.to_ascii_uppercase();
        if up == "TEXT" || k == "org.apache.flume.serialization.BodyTextEventSerializer$Builder" {
            Ok(SerializerSpec::Text {
                append_newline: sub.bool("appendNewline", true)?,
            })
        } else if up == "HEADER_AND_TEXT"
            || k == "org.apache.flume.serialization.HeaderAndBodyTextEventSerializer$Builder"
        {
            Ok(SerializerSpec::HeaderAndText {
                append_newline: sub.bool("appendNewline", true)?,
            })
        } else if up == "AVRO_EVENT"
            || k == "org.apache.flume.serialization.FlumeEventAvroEventSerializer$Builder"
        {
            let codec = sub.string("compressionCodec", "null");
            if codec != "null" {
                return Err(sub.error(
                    "compressionCodec",
                    &format!("{codec:?} is not supported by sluice-flume (only null)"),
                ));
            }
            Ok(SerializerSpec::AvroEvent {
                sync_interval_bytes: sub.parse("syncIntervalBytes", DEFAULT_SYNC_INTERVAL_BYTES)?,
            })
        } else {
            Err(ctx.error(
                type_key,
                &format!("unknown serializer {kind:?} (TEXT, HEADER_AND_TEXT or AVRO_EVENT)"),
            ))
        }
    }

    /// A serializer for a new file.
    pub fn build(&self) -> Box<dyn EventSerializer> {
        match *self {
            SerializerSpec::Text { append_newline } => Box::new(BodyText {
                headers: false,
                append_newline,
            }),
            SerializerSpec::HeaderAndText { append_newline } => Box::new(BodyText {
                headers: true,
                append_newline,
            }),
            SerializerSpec::AvroEvent {
                sync_interval_bytes,
            } => Box::new(AvroEvent {
                sync: *uuid::Uuid::new_v4().as_bytes(),
                sync_interval_bytes,
                block: Vec::new(),
                count: 0,
            }),
        }
    }
}

/// Flume's `EventSerializer`, writing into a buffer.
pub trait EventSerializer: Send {
    /// Called once when the file is created (file headers).
    fn after_create(&mut self, out: &mut Vec<u8>);
    /// One event.
    fn write(&mut self, e: &Event, out: &mut Vec<u8>);
    /// End of a transaction: anything held back must go to `out` now.
    fn flush(&mut self, out: &mut Vec<u8>);
    /// Called once before the file is closed (after a final `flush`).
    fn before_close(&mut self, _out: &mut Vec<u8>) {}
}

struct BodyText {
    headers: bool,
    append_newline: bool,
}

impl EventSerializer for BodyText {
    fn after_create(&mut self, _out: &mut Vec<u8>) {}
    fn write(&mut self, e: &Event, out: &mut Vec<u8>) {
        if self.headers {
            // Java's AbstractMap.toString: {k=v, k2=v2}, then the space Flume adds.
            out.push(b'{');
            for (i, (k, v)) in e.headers.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                out.extend_from_slice(k.as_bytes());
                out.push(b'=');
                out.extend_from_slice(v.as_bytes());
            }
            out.extend_from_slice(b"} ");
        }
        out.extend_from_slice(&e.body);
        if self.append_newline {
            out.push(b'\n');
        }
    }
    fn flush(&mut self, _out: &mut Vec<u8>) {}
}

/// Avro's `DataFileWriter` for the Flume event schema.
struct AvroEvent {
    sync: [u8; 16],
    sync_interval_bytes: usize,
    block: Vec<u8>,
    count: i64,
}

/// Avro's zig-zag varint `long`.
pub(crate) fn avro_long(out: &mut Vec<u8>, v: i64) {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn avro_bytes(out: &mut Vec<u8>, b: &[u8]) {
    avro_long(out, i64::try_from(b.len()).unwrap_or(i64::MAX));
    out.extend_from_slice(b);
}

impl AvroEvent {
    fn write_block(&mut self, out: &mut Vec<u8>) {
        if self.count == 0 {
            return;
        }
        avro_long(out, self.count);
        avro_long(out, i64::try_from(self.block.len()).unwrap_or(i64::MAX));
        out.append(&mut self.block);
        out.extend_from_slice(&self.sync);
        self.count = 0;
    }
}

impl EventSerializer for AvroEvent {
    fn after_create(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"Obj\x01");
        // File metadata: map<bytes> with one block of two entries.
        avro_long(out, 2);
        avro_bytes(out, b"avro.schema");
        avro_bytes(out, FLUME_EVENT_SCHEMA.as_bytes());
        avro_bytes(out, b"avro.codec");
        avro_bytes(out, b"null");
        avro_long(out, 0);
        out.extend_from_slice(&self.sync);
    }
    fn write(&mut self, e: &Event, out: &mut Vec<u8>) {
        // The AvroFlumeEvent datum has the same layout as this schema's records.
        self.block.extend_from_slice(&encode_event(e));
        self.count += 1;
        if self.block.len() >= self.sync_interval_bytes {
            self.write_block(out);
        }
    }
    fn flush(&mut self, out: &mut Vec<u8>) {
        self.write_block(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(pairs: &[(&str, &str)]) -> SerializerSpec {
        SerializerSpec::from_context(
            &Context::from_pairs("a.sinks.k.", pairs.iter().copied()),
            "serializer",
        )
        .unwrap()
    }

    #[test]
    fn text_appends_newline_unless_told_not_to() {
        let e = Event::new("hi").with_header("a", "b");
        let mut out = Vec::new();
        let mut s = spec(&[]).build();
        s.write(&e, &mut out);
        assert_eq!(out, b"hi\n");
        let mut out = Vec::new();
        let mut s = spec(&[
            ("serializer", "text"),
            ("serializer.appendNewline", "false"),
        ])
        .build();
        s.write(&e, &mut out);
        assert_eq!(out, b"hi");
        let mut out = Vec::new();
        let mut s = spec(&[("serializer", "HEADER_AND_TEXT")]).build();
        s.write(&e.with_header("c", "d"), &mut out);
        assert_eq!(out, b"{a=b, c=d} hi\n");
    }

    #[test]
    fn unknown_serializer_names_the_key() {
        let ctx = Context::from_pairs("a.sinks.k.", [("sink.serializer", "json")]);
        let err = SerializerSpec::from_context(&ctx, "sink.serializer").unwrap_err();
        assert!(
            err.to_string().contains("a.sinks.k.sink.serializer"),
            "{err}"
        );
    }

    #[test]
    fn avro_event_is_a_container_file() {
        let mut s = spec(&[("serializer", "avro_event")]).build();
        let mut out = Vec::new();
        s.after_create(&mut out);
        assert!(out.starts_with(b"Obj\x01"));
        let header_len = out.len();
        let sync = out[header_len - 16..].to_vec();
        s.write(&Event::new("hi").with_header("a", "b"), &mut out);
        assert_eq!(out.len(), header_len, "records wait for a flush");
        s.flush(&mut out);
        // count 1, size 9, the datum, the sync marker.
        let block = &out[header_len..];
        assert_eq!(&block[..2], &[2, 18]);
        assert_eq!(
            &block[2..11],
            &[0x02, 0x02, b'a', 0x02, b'b', 0x00, 0x04, b'h', b'i']
        );
        assert_eq!(&block[11..], &sync[..]);
    }

    #[test]
    fn avro_long_is_zigzag() {
        let mut out = Vec::new();
        for v in [0, -1, 1, 64, -65, 300] {
            avro_long(&mut out, v);
        }
        assert_eq!(
            out,
            vec![0x00, 0x01, 0x02, 0x80, 0x01, 0x81, 0x01, 0xd8, 0x04]
        );
    }
}
