//! Tests: the HTTP monitoring's Prometheus text (`/metrics/prometheus`), parsed by
//! Prometheus's own Python parser (`prometheus_client.parser`), after a known load of N
//! events through seq source → memory channel → null sink.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{free_port, poll_until, Agent};
use crate::sources::http;

const DEADLINE: Duration = Duration::from_secs(30);

/// The venv's Python, with `prometheus_client` (compat-tests/scripts/install-python.sh).
fn venv_python() -> std::path::PathBuf {
    let py = sluice_testkit::workspace_root().join("compat-tests/.cache/venv/bin/python");
    let ok = Command::new(&py)
        .args(["-c", "import prometheus_client"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} with prometheus_client is missing: run compat-tests/scripts/install-python.sh",
        py.display()
    );
    py
}

/// Parses `text` with `prometheus_client.parser.text_string_to_metric_families` (which
/// raises on anything malformed) and returns each sample as
/// `(family, type, sample name, labels, value)`.
pub fn parse_prometheus(text: &str) -> Vec<(String, String, String, serde_json::Value, f64)> {
    const SCRIPT: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        out.append([fam.name, fam.type, s.name, s.labels, s.value])
print(json.dumps(out))
"#;
    let mut child = Command::new(venv_python())
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client rejected the text:\n{}\n---\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<(String, String, String, serde_json::Value, f64)> =
        serde_json::from_slice(&out.stdout).unwrap();
    rows
}

#[test]
fn prometheus_text_parses_and_counts_the_load() {
    const N: i64 = 250;
    let mport = free_port();
    let cfg = format!(
        "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n\
         a1.sources.r1.type = seq\na1.sources.r1.totalEvents = {N}\na1.sources.r1.batchSize = 10\na1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\na1.channels.c1.capacity = 1000\na1.channels.c1.transactionCapacity = 100\n\
         a1.sinks.k1.type = null\na1.sinks.k1.batchSize = 20\na1.sinks.k1.channel = c1\n"
    );
    let mut a = Agent::start(
        &cfg,
        "a1",
        &[
            "-Dflume.monitoring.type=http",
            &format!("-Dflume.monitoring.port={mport}"),
        ],
    );
    a.wait_for_log("HTTP monitoring listening on", DEADLINE);
    let value =
        |rows: &[(String, String, String, serde_json::Value, f64)], sample: &str, c: &str| {
            rows.iter()
                .find(|r| r.2 == sample && r.3["component"] == c)
                .map(|r| r.4)
        };
    let (headers, rows) = poll_until(DEADLINE, "all N events drained", || {
        let (status, headers, body) = http(mport, "GET", "/metrics/prometheus", &[], b"");
        assert_eq!(status, 200);
        let rows = parse_prometheus(std::str::from_utf8(&body).unwrap());
        (value(&rows, "flume_sink_event_drain_success_count_total", "k1") == Some(N as f64))
            .then_some((headers, rows))
    });
    assert!(
        headers["content-type"].starts_with("text/plain; version=0.0.4"),
        "{headers:?}"
    );
    let n = N as f64;
    for (sample, component) in [
        ("flume_source_event_received_count_total", "r1"),
        ("flume_source_event_accepted_count_total", "r1"),
        ("flume_channel_event_put_success_count_total", "c1"),
        ("flume_channel_event_take_success_count_total", "c1"),
        ("flume_sink_event_drain_success_count_total", "k1"),
    ] {
        assert_eq!(value(&rows, sample, component), Some(n), "{sample}");
    }
    // Families and types as Prometheus sees them: counters lose `_total` in the family
    // name; levels are gauges.
    let ty = |family: &str| {
        rows.iter()
            .find(|r| r.0 == family)
            .map(|r| r.1.clone())
            .unwrap_or_default()
    };
    assert_eq!(ty("flume_source_event_accepted_count"), "counter");
    assert_eq!(ty("flume_channel_channel_size"), "gauge");
    assert_eq!(ty("flume_channel_channel_fill_percentage"), "gauge");
    assert_eq!(ty("flume_sink_start_time"), "gauge");
    // batchSize 10: N / 10 batches, each counted once on the seq source's batch path.
    assert_eq!(
        value(
            &rows,
            "flume_source_append_batch_accepted_count_total",
            "r1"
        ),
        Some((N / 10) as f64)
    );
    assert_eq!(value(&rows, "flume_channel_channel_size", "c1"), Some(0.0));
    assert_eq!(
        value(&rows, "flume_channel_channel_capacity", "c1"),
        Some(1000.0)
    );
    assert!(value(&rows, "flume_source_start_time", "r1").is_some_and(|t| t > 0.0));
    // Flume's JSON is where Flume serves it, unchanged.
    let (status, h, body) = http(mport, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    assert!(h["content-type"].starts_with("application/json"), "{h:?}");
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["SINK.k1"]["EventDrainSuccessCount"], N.to_string());
}
