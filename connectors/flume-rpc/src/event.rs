//! The protocols' data types and their Avro datums: [`Event`] (Flume's `AvroFlumeEvent`,
//! Spark's `SparkSinkEvent`, which encode identically), [`Status`] and [`EventBatch`].
//!
//! [`encode_event`]/[`decode_event`] are also the bare-datum format of Flume's Kafka channel
//! (`parseAsFlumeEvent = true`) and Kafka sink/source (`useFlumeEventFormat = true`): no
//! container, no schema id. The RPC envelopes (handshake, call metadata) are elsewhere.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::codec::{DecodeError, Reader, Writer};

/// Event headers. Flume keeps them in a `HashMap`; a sorted map makes the encoding
/// deterministic, which the receiver cannot tell apart.
pub type Headers = BTreeMap<String, String>;

/// A Flume event: string headers and an opaque body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// `map<string> headers`.
    pub headers: Headers,
    /// `bytes body`.
    pub body: Bytes,
}

impl Event {
    /// An event with `body` and no headers.
    pub fn new(body: impl Into<Bytes>) -> Self {
        Event {
            headers: Headers::new(),
            body: body.into(),
        }
    }

    /// The same event with header `k` set to `v`.
    pub fn with_header(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.headers.insert(k.into(), v.into());
        self
    }
}

/// `AvroSourceProtocol.Status`, the reply to `append` and `appendBatch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Every event was committed to the source's channels.
    Ok,
    /// The source could not take the events (a full channel, say); the sender retries.
    Failed,
    /// Not sent by Flume's own avro source; kept because the enum has it.
    Unknown,
}

impl Status {
    const SYMBOLS: [Status; 3] = [Status::Ok, Status::Failed, Status::Unknown];

    pub(crate) fn encode(self, w: &mut Writer) {
        let idx = match self {
            Status::Ok => 0,
            Status::Failed => 1,
            Status::Unknown => 2,
        };
        w.len(idx);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Status, DecodeError> {
        let i = r.index(Self::SYMBOLS.len(), "Status")?;
        Ok(Self::SYMBOLS.get(i).copied().unwrap_or(Status::Unknown))
    }
}

/// `SparkFlumeProtocol.EventBatch`: the reply to `getEventBatch`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventBatch {
    /// Empty for a good batch; otherwise why there is none (SparkSink sends e.g.
    /// "Spark sink has been stopped!" with no events).
    pub error_msg: String,
    /// Names the sink's open transaction; echo it in `ack`/`nack`.
    pub sequence_number: String,
    /// The events taken in that transaction.
    pub events: Vec<Event>,
}

/// Encodes `e` as a bare `AvroFlumeEvent` Avro datum.
pub fn encode_event(e: &Event) -> Vec<u8> {
    let mut w = Writer::new();
    write_event(&mut w, e);
    w.into_inner()
}

/// Decodes a bare `AvroFlumeEvent` Avro datum; every byte must belong to it.
pub fn decode_event(bytes: &[u8]) -> Result<Event, DecodeError> {
    let mut r = Reader::new(bytes);
    let e = read_event(&mut r, "AvroFlumeEvent")?;
    r.finish("AvroFlumeEvent")?;
    Ok(e)
}

pub(crate) fn write_event(w: &mut Writer, e: &Event) {
    w.string_map(
        e.headers.len(),
        e.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    w.bytes(&e.body);
}

pub(crate) fn read_event(r: &mut Reader<'_>, record: &str) -> Result<Event, DecodeError> {
    let mut headers = Headers::new();
    let what = format!("{record}.headers");
    r.map(&what, |r, k| {
        let v = r.string(&what)?;
        headers.insert(k.to_string(), v.to_string());
        Ok(())
    })?;
    let body = Bytes::copy_from_slice(r.bytes(&format!("{record}.body"))?);
    Ok(Event { headers, body })
}

/// `array<AvroFlumeEvent>` / `array<SparkSinkEvent>`: one block and the end marker.
pub(crate) fn write_events(w: &mut Writer, events: &[Event]) {
    if !events.is_empty() {
        w.len(events.len());
        for e in events {
            write_event(w, e);
        }
    }
    w.long(0);
}

pub(crate) fn read_events(r: &mut Reader<'_>, record: &str) -> Result<Vec<Event>, DecodeError> {
    // No capacity from the count: it is bounded by the input but still untrusted.
    let mut events = Vec::new();
    r.array(record, |r| {
        events.push(read_event(r, record)?);
        Ok(())
    })?;
    Ok(events)
}

impl EventBatch {
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.string(&self.error_msg);
        w.string(&self.sequence_number);
        write_events(w, &self.events);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<EventBatch, DecodeError> {
        let error_msg = r.string("EventBatch.errorMsg")?.to_string();
        let sequence_number = r.string("EventBatch.sequenceNumber")?.to_string();
        let events = read_events(r, "SparkSinkEvent")?;
        Ok(EventBatch {
            error_msg,
            sequence_number,
            events,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Problem;

    #[test]
    fn the_spec_example_encodes_byte_for_byte() {
        // CONNECTORS.md A8: {headers:{a:b}, body:"hi"} → 02 02 61 02 62 00 04 68 69.
        let e = Event::new("hi").with_header("a", "b");
        let bytes = encode_event(&e);
        assert_eq!(
            bytes,
            [0x02, 0x02, 0x61, 0x02, 0x62, 0x00, 0x04, 0x68, 0x69]
        );
        assert_eq!(decode_event(&bytes).unwrap(), e);
    }

    #[test]
    fn events_round_trip() {
        let cases = [
            Event::default(),
            Event::new(vec![0u8, 255, 10]),
            Event::new("body")
                .with_header("timestamp", "1700000000000")
                .with_header("host", "ünï"),
            Event::new(vec![7u8; 100_000]).with_header("", ""),
        ];
        for e in cases {
            assert_eq!(decode_event(&encode_event(&e)).unwrap(), e);
        }
    }

    #[test]
    fn truncated_and_padded_events_are_errors() {
        let bytes = encode_event(&Event::new("hello").with_header("k", "v"));
        for cut in 0..bytes.len() {
            let err = decode_event(&bytes[..cut]).unwrap_err();
            assert!(
                matches!(err.problem, Problem::Truncated | Problem::TooLong { .. }),
                "cut at {cut}: {err}"
            );
        }
        let mut padded = bytes.clone();
        padded.push(0);
        assert_eq!(
            decode_event(&padded).unwrap_err().problem,
            Problem::TrailingBytes(1)
        );
    }

    #[test]
    fn status_symbols_are_in_idl_order() {
        for (s, b) in [(Status::Ok, 0u8), (Status::Failed, 2), (Status::Unknown, 4)] {
            let mut w = Writer::new();
            s.encode(&mut w);
            assert_eq!(w.into_inner(), [b]);
            assert_eq!(Status::decode(&mut Reader::new(&[b])).unwrap(), s);
        }
        assert!(Status::decode(&mut Reader::new(&[6])).is_err());
    }

    #[test]
    fn event_batches_round_trip() {
        let b = EventBatch {
            error_msg: String::new(),
            sequence_number: "seq-1".into(),
            events: vec![Event::new("a"), Event::new("b").with_header("x", "y")],
        };
        let mut w = Writer::new();
        b.encode(&mut w);
        let bytes = w.into_inner();
        let mut r = Reader::new(&bytes);
        assert_eq!(EventBatch::decode(&mut r).unwrap(), b);
        r.finish("EventBatch").unwrap();
    }
}
