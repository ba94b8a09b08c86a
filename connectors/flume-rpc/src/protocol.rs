//! Avro protocol declarations ([`Protocol`]): the JSON text of `AvroSourceProtocol` and
//! `SparkFlumeProtocol` as Sluice sends it in handshakes, its MD5 (the protocol's identity in
//! a handshake), and just enough parsing of a peer's protocol text to tell whether it is the
//! same protocol.
//!
//! The texts are written here by hand from the IDLs (`flume-ng-sdk/src/main/avro/flume.avdl`,
//! Spark's `external/flume-sink/src/main/avro/sparkflume.avdl`; Spark 2.x's declares namespace
//! `org.apache.spark.streaming.flume.sink`, the one its released SparkSink speaks, while early
//! versions of the file said `org.apache.spark.flume`). Java's text for the same IDL
//! differs (property order, `avro.java.string` props, docs), so its hash differs from ours; the
//! handshake exchanges the texts and both sides cope. Nothing here hard-codes Java's hash.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, LazyLock};

/// The JSON text of `org.apache.flume.source.avro.AvroSourceProtocol`.
pub const AVRO_SOURCE_PROTOCOL_JSON: &str = concat!(
    r#"{"protocol":"AvroSourceProtocol","namespace":"org.apache.flume.source.avro","#,
    r#""types":[{"type":"enum","name":"Status","symbols":["OK","FAILED","UNKNOWN"]},"#,
    r#"{"type":"record","name":"AvroFlumeEvent","fields":["#,
    r#"{"name":"headers","type":{"type":"map","values":"string"}},"#,
    r#"{"name":"body","type":"bytes"}]}],"#,
    r#""messages":{"append":{"request":[{"name":"event","type":"AvroFlumeEvent"}],"response":"Status"},"#,
    r#""appendBatch":{"request":[{"name":"events","type":{"type":"array","items":"AvroFlumeEvent"}}],"#,
    r#""response":"Status"}}}"#
);

/// The JSON text of `org.apache.spark.streaming.flume.sink.SparkFlumeProtocol` (SparkSink's protocol).
pub const SPARK_FLUME_PROTOCOL_JSON: &str = concat!(
    r#"{"protocol":"SparkFlumeProtocol","namespace":"org.apache.spark.streaming.flume.sink","#,
    r#""types":[{"type":"record","name":"SparkSinkEvent","fields":["#,
    r#"{"name":"headers","type":{"type":"map","values":"string"}},"#,
    r#"{"name":"body","type":"bytes"}]},"#,
    r#"{"type":"record","name":"EventBatch","fields":["#,
    r#"{"name":"errorMsg","type":"string","default":""},"#,
    r#"{"name":"sequenceNumber","type":"string"},"#,
    r#"{"name":"events","type":{"type":"array","items":"SparkSinkEvent"}}]}],"#,
    r#""messages":{"getEventBatch":{"request":[{"name":"n","type":"int"}],"response":"EventBatch"},"#,
    r#""ack":{"request":[{"name":"sequenceNumber","type":"string"}],"response":"null"},"#,
    r#""nack":{"request":[{"name":"sequenceNumber","type":"string"}],"response":"null"}}}"#
);

static AVRO_SOURCE: LazyLock<Arc<Protocol>> = LazyLock::new(|| {
    Arc::new(Protocol::from_parts(
        "AvroSourceProtocol",
        "org.apache.flume.source.avro",
        &["append", "appendBatch"],
        AVRO_SOURCE_PROTOCOL_JSON,
    ))
});

static SPARK_FLUME: LazyLock<Arc<Protocol>> = LazyLock::new(|| {
    Arc::new(Protocol::from_parts(
        "SparkFlumeProtocol",
        "org.apache.spark.streaming.flume.sink",
        &["getEventBatch", "ack", "nack"],
        SPARK_FLUME_PROTOCOL_JSON,
    ))
});

/// An Avro protocol as far as the RPC layer cares: its full name, message names, JSON text and
/// the MD5 of that text.
#[derive(Clone, PartialEq, Eq)]
pub struct Protocol {
    name: String,
    namespace: String,
    messages: BTreeSet<String>,
    text: String,
    md5: [u8; 16],
}

impl fmt::Debug for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Protocol")
            .field("name", &self.full_name())
            .field("messages", &self.messages)
            .field("md5", &hex(&self.md5))
            .finish()
    }
}

/// Why a protocol text was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// Not JSON, or not a JSON object with a `protocol` name.
    #[error("protocol text is not an Avro protocol declaration: {0}")]
    Malformed(String),
    /// A well-formed protocol, but not the one expected.
    #[error("peer speaks {theirs}, expected {ours}")]
    Mismatch {
        /// What we expected (`namespace.Name [messages]`).
        ours: String,
        /// What the peer declared.
        theirs: String,
    },
}

impl Protocol {
    /// `AvroSourceProtocol`, spoken between Flume's avro sink (client) and avro source (server).
    pub fn avro_source() -> Arc<Protocol> {
        Arc::clone(&AVRO_SOURCE)
    }

    /// `SparkFlumeProtocol`, spoken between Spark's polling receiver (client) and SparkSink.
    pub fn spark_flume() -> Arc<Protocol> {
        Arc::clone(&SPARK_FLUME)
    }

    fn from_parts(name: &str, namespace: &str, messages: &[&str], text: &str) -> Protocol {
        Protocol {
            name: name.to_string(),
            namespace: namespace.to_string(),
            messages: messages.iter().map(|m| m.to_string()).collect(),
            text: text.to_string(),
            md5: md5::compute(text.as_bytes()).0,
        }
    }

    /// Reads a protocol's JSON text (say, a peer's `clientProtocol`): its name, namespace and
    /// message names. Types are not interpreted.
    pub fn parse(text: &str) -> Result<Protocol, ProtocolError> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
        let obj = v
            .as_object()
            .ok_or_else(|| ProtocolError::Malformed("not a JSON object".into()))?;
        let declared = obj
            .get("protocol")
            .and_then(|p| p.as_str())
            .ok_or_else(|| ProtocolError::Malformed("no \"protocol\" name".into()))?;
        let ns = obj.get("namespace").and_then(|n| n.as_str()).unwrap_or("");
        // Avro allows a dotted name that carries its own namespace.
        let (namespace, name) = match declared.rsplit_once('.') {
            Some((ns, name)) => (ns, name),
            None => (ns, declared),
        };
        let messages = match obj.get("messages") {
            None | Some(serde_json::Value::Null) => BTreeSet::new(),
            Some(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
            Some(_) => {
                return Err(ProtocolError::Malformed(
                    "\"messages\" is not an object".into(),
                ))
            }
        };
        Ok(Protocol {
            name: name.to_string(),
            namespace: namespace.to_string(),
            messages,
            text: text.to_string(),
            md5: md5::compute(text.as_bytes()).0,
        })
    }

    /// Accepts `other` as the same protocol: same full name and the same message names.
    pub fn check_same(&self, other: &Protocol) -> Result<(), ProtocolError> {
        if self.name == other.name
            && self.namespace == other.namespace
            && self.messages == other.messages
        {
            Ok(())
        } else {
            Err(ProtocolError::Mismatch {
                ours: self.summary(),
                theirs: other.summary(),
            })
        }
    }

    fn summary(&self) -> String {
        let msgs: Vec<&str> = self.messages.iter().map(String::as_str).collect();
        format!("{} [{}]", self.full_name(), msgs.join(", "))
    }

    /// `namespace.Name`.
    pub fn full_name(&self) -> String {
        if self.namespace.is_empty() {
            self.name.clone()
        } else {
            format!("{}.{}", self.namespace, self.name)
        }
    }

    /// The JSON text, as sent in handshakes.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// MD5 of [`Protocol::text`]: the protocol's identity in handshakes.
    pub fn md5(&self) -> [u8; 16] {
        self.md5
    }

    /// Whether the protocol declares `message`.
    pub fn has_message(&self, message: &str) -> bool {
        self.messages.contains(message)
    }
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_texts_parse_back_to_themselves() {
        for p in [Protocol::avro_source(), Protocol::spark_flume()] {
            let parsed = Protocol::parse(p.text()).unwrap();
            assert_eq!(&parsed, p.as_ref());
            p.check_same(&parsed).unwrap();
        }
        assert_eq!(
            Protocol::avro_source().full_name(),
            "org.apache.flume.source.avro.AvroSourceProtocol"
        );
    }

    #[test]
    fn a_java_style_text_is_the_same_protocol_with_another_hash() {
        // Shaped like Java's Protocol.toString(): doc, java string props, other key order.
        let java = r#"{"protocol":"AvroSourceProtocol","namespace":"org.apache.flume.source.avro",
          "doc":"* Licensed to the ASF","types":[{"type":"enum","name":"Status","symbols":["OK","FAILED","UNKNOWN"]},
          {"type":"record","name":"AvroFlumeEvent","fields":[{"name":"headers","type":{"type":"map",
          "values":{"type":"string","avro.java.string":"String"},"avro.java.string":"String"}},
          {"name":"body","type":"bytes"}]}],"messages":{"appendBatch":{"request":[{"name":"events",
          "type":{"type":"array","items":"AvroFlumeEvent"}}],"response":"Status"},
          "append":{"request":[{"name":"event","type":"AvroFlumeEvent"}],"response":"Status"}}}"#;
        let p = Protocol::parse(java).unwrap();
        Protocol::avro_source().check_same(&p).unwrap();
        assert_ne!(p.md5(), Protocol::avro_source().md5());
    }

    #[test]
    fn other_protocols_and_garbage_are_rejected() {
        let spark = Protocol::spark_flume();
        assert!(matches!(
            Protocol::avro_source().check_same(&spark),
            Err(ProtocolError::Mismatch { .. })
        ));
        for bad in [
            "",
            "[]",
            "{\"types\":[]}",
            "{\"protocol\":1}",
            "{\"protocol\":\"P\",\"messages\":[]}",
        ] {
            assert!(
                matches!(Protocol::parse(bad), Err(ProtocolError::Malformed(_))),
                "{bad}"
            );
        }
        let fewer = Protocol::parse(
            r#"{"protocol":"AvroSourceProtocol","namespace":"org.apache.flume.source.avro","messages":{"append":{}}}"#,
        )
        .unwrap();
        assert!(Protocol::avro_source().check_same(&fewer).is_err());
    }

    #[test]
    fn the_hash_is_the_md5_of_the_text() {
        let p = Protocol::parse(r#"{"protocol":"P"}"#).unwrap();
        // `printf '%s' '{"protocol":"P"}' | md5sum`
        assert_eq!(hex(&p.md5()), "ec2b455c2eb44ed1ef9556526e28144e");
    }
}
