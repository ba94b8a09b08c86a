//! Python clients against Sluice: kafka-python (pure Python, every codec, assign + seek) and
//! confluent-kafka (librdkafka: headers, metadata, offsets_for_times). The scripts live in
//! `compat-tests/python/` and assert on their own; these tests check their exit status and
//! what the broker stored on disk.

use crate::harness::{assert_success, codec_id, python, read_batches, unique_topic, Broker};

#[test]
fn kafka_python_every_codec_round_trips() {
    let broker = Broker::start();
    let prefix = unique_topic("kpy");
    let out = python("kafka_python_roundtrip.py", &[broker.addr(), &prefix]);
    assert_success(&out, "kafka_python_roundtrip.py");
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK"));
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let batches = read_batches(&broker.partition_dir(&format!("{prefix}-{codec}"), 0));
        assert!(
            batches.iter().any(|b| b.codec == codec_id(codec)),
            "kafka-python {codec}: no batch with that codec on disk: {batches:?}"
        );
    }
}

#[test]
fn confluent_kafka_headers_metadata_offsets_for_times() {
    let broker = Broker::start();
    let topic = unique_topic("ckpy");
    let out = python("confluent_roundtrip.py", &[broker.addr(), &topic]);
    assert_success(&out, "confluent_roundtrip.py");
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK"));
}
