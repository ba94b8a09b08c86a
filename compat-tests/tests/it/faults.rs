//! Failures the broker must take in its stride, judged by real clients: a client that resets
//! its connection, DeleteRecords against a compact-only topic, an index that lies, topic
//! changes cut short by a crash or by running out of file descriptors.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use rdkafka::consumer::Consumer;

use crate::harness::{assert_success, class, java_tool, poll_until, unique_topic, Broker};
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

/// A client that resets its connection (SO_LINGER 0, then close) is an ordinary event: the
/// broker notes it at debug level and raises no warning.
#[test]
fn a_connection_reset_is_not_a_warning() {
    let broker = Broker::start_with_env(None, &[("RUST_LOG", "info,sluice::server=debug")]);
    let s = TcpStream::connect(broker.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let local = s.local_addr().unwrap().to_string();
    // ApiVersions v0 with client id "reset", so the connection is known to be served.
    let mut body = Vec::new();
    body.extend_from_slice(&18i16.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&7i32.to_be_bytes());
    body.extend_from_slice(&5i16.to_be_bytes());
    body.extend_from_slice(b"reset");
    let mut frame = i32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    (&s).write_all(&frame).unwrap();
    let mut len = [0u8; 4];
    (&s).read_exact(&mut len).unwrap();
    let mut resp = vec![0u8; usize::try_from(i32::from_be_bytes(len)).unwrap()];
    (&s).read_exact(&mut resp).unwrap();
    assert_eq!(&resp[..4], &7i32.to_be_bytes(), "correlation id");
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
    let closed = format!("connection closed peer={local}");
    assert!(
        poll_until(Duration::from_secs(20), || broker
            .stderr()
            .contains(&closed)),
        "the broker never logged closing {local}:\n{}",
        broker.stderr()
    );
    let log = broker.stderr();
    let warned: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(&local) && (l.contains("WARN") || l.contains("ERROR")))
        .collect();
    assert!(
        warned.is_empty(),
        "a reset was logged as a warning: {warned:?}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("DEBUG") && l.contains(&local) && l.contains("reset")),
        "no debug line about the reset:\n{log}"
    );
}
