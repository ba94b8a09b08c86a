//! Failures the broker must take in its stride, judged by real clients: a client that resets
//! its connection, DeleteRecords against a compact-only topic, an index that lies, topic
//! changes cut short by a crash or by running out of file descriptors.

use rdkafka::consumer::Consumer;

use crate::harness::{assert_success, class, java_tool, unique_topic, Broker};
use crate::rk::{self, Rec};

const DELETE_RECORDS: &str = "org.apache.kafka.tools.DeleteRecordsCommand";

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Kafka refuses DeleteRecords on a topic whose cleanup.policy lacks `delete` with
/// POLICY_VIOLATION: only retention may remove records there, never a client.
#[test]
fn delete_records_on_a_compact_only_topic_is_a_policy_violation() {
    let broker = Broker::start();
    let bs = broker.addr().to_string();
    let topic = unique_topic("compact-dr");
    let out = java_tool(
        class::TOPICS,
        &[
            "--bootstrap-server",
            &bs,
            "--create",
            "--topic",
            &topic,
            "--partitions",
            "1",
            "--config",
            "cleanup.policy=compact",
        ],
        None,
    );
    assert_success(&out, "kafka-topics --create (compacted)");
    let recs: Vec<Rec> = (0..5)
        .map(|i| Rec::kv(&format!("k{i}"), &format!("v{i}")))
        .collect();
    rk::produce_ok(&bs, &topic, &recs, &[]);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("offsets.json");
    std::fs::write(
        &json,
        format!(r#"{{"partitions":[{{"topic":"{topic}","partition":0,"offset":3}}],"version":1}}"#),
    )
    .unwrap();
    let out = java_tool(
        DELETE_RECORDS,
        &[
            "--bootstrap-server",
            &bs,
            "--offset-json-file",
            json.to_str().unwrap(),
        ],
        None,
    );
    let t = text(&out);
    assert!(t.contains("PolicyViolationException"), "{t}");
    assert!(!t.contains("low_watermark: 3"), "{t}");
    let c = rk::consumer(&bs, &[]);
    assert_eq!(
        c.fetch_watermarks(&topic, 0, rk::RPC_TIMEOUT).unwrap(),
        (0, 5),
        "records were deleted despite the policy"
    );
}
