//! The streaming UI of `sluice-spark wordcount --ui`: `/metrics` parsed by Prometheus's own
//! Python parser (`prometheus_client`), and the page rendered by headless Chromium through
//! Selenium (`tests/browser/streaming_page.py`), both from the compat venv.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::binary::Spark;
use crate::harness::{eventually, produce_lines, unique, wait_line, Broker};
use sluice_testkit::{browser, prometheus};

const DEADLINE: Duration = Duration::from_secs(30);

/// `GET path` on `addr`: status, lower-cased headers, body.
fn http_get(addr: &str, path: &str) -> (u16, BTreeMap<String, String>, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

/// A topic of two partitions holding `per_partition` lines in each.
async fn loaded_topic(broker: &Broker, per_partition: usize) -> String {
    let client = broker.client().await;
    let topic = unique("ui");
    client.create_topic(&topic, 2, 1, &[]).await.unwrap();
    let lines: Vec<String> = (0..per_partition)
        .map(|i| format!("word{} ui", i % 7))
        .collect();
    for p in 0..2 {
        produce_lines(&client, &topic, p, &lines).await;
    }
    topic
}

/// Starts the word count on `topic` with `--ui 127.0.0.1:0` plus `extra`; returns it and
/// the UI's `HOST:PORT` from its `ui on http://HOST:PORT/` line.
fn wordcount_with_ui(broker: &Broker, topic: &str, extra: &[&str]) -> (Spark, String) {
    let mut args = vec![
        "--bootstrap-server",
        broker.addr(),
        "--topics",
        topic,
        "--starting",
        "earliest",
        "--batch-interval",
        "500ms",
        "--ui",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let spark = Spark::wordcount(&args);
    let addr = wait_line(&spark.stdout, DEADLINE, |l| {
        l.strip_prefix("ui on http://")
            .and_then(|rest| rest.strip_suffix('/'))
            .map(str::to_owned)
    })
    .unwrap_or_else(|| panic!("no `ui on` line\n{}", spark.stderr()));
    (spark, addr)
}

#[tokio::test]
async fn metrics_count_every_record_produced() {
    const PER_PARTITION: usize = 150;
    let broker = Broker::start();
    let topic = loaded_topic(&broker, PER_PARTITION).await;
    let (_spark, ui) = wordcount_with_ui(&broker, &topic, &[]);
    let produced = (2 * PER_PARTITION) as f64;
    let metrics = eventually(DEADLINE, "every record processed", || async {
        let page = prometheus::scrape(&format!("http://{ui}/metrics"));
        assert_eq!(page.status, 200);
        assert!(
            page.content_type.starts_with("text/plain; version=0.0.4"),
            "{}",
            page.content_type
        );
        (page.one("spark_streaming_processed_records_total", &[]) == produced).then_some(page)
    })
    .await;
    // Counters' families lose `_total` in the parser's naming.
    assert_eq!(
        metrics.family_type("spark_streaming_processed_records"),
        Some("counter")
    );
    assert_eq!(
        metrics.family_type("spark_streaming_completed_batches"),
        Some("counter")
    );
    assert!(metrics.one("spark_streaming_completed_batches_total", &[]) >= 1.0);
    for gauge in [
        "spark_streaming_last_completed_batch_records",
        "spark_streaming_last_completed_batch_processing_delay_ms",
        "spark_streaming_last_completed_batch_scheduling_delay_ms",
        "spark_streaming_last_completed_batch_total_delay_ms",
        "spark_streaming_last_completed_batch_input_rate_records_per_second",
    ] {
        assert_eq!(metrics.family_type(gauge), Some("gauge"), "{gauge}");
        assert!(metrics.one(gauge, &[]) >= 0.0, "{gauge}");
    }
    // Neither backpressure nor maxRatePerPartition: no limit.
    assert_eq!(
        metrics.one("spark_streaming_rate_limit_records_per_second", &[]),
        f64::INFINITY
    );
    assert_eq!(metrics.one("spark_streaming_batch_interval_ms", &[]), 500.0);
    // The JSON agrees: every batch's ranges add up to what was produced.
    let (status, _, body) = http_get(&ui, "/api/batches");
    assert_eq!(status, 200);
    let api: serde_json::Value = serde_json::from_str(&body).unwrap();
    let counted: i64 = api["batches"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["offset_ranges"].as_array().unwrap())
        .filter(|r| r["topic"] == topic.as_str())
        .map(|r| r["count"].as_i64().unwrap())
        .sum();
    assert_eq!(counted as f64, produced);
}

#[tokio::test]
async fn the_streaming_page_renders_batches_in_chromium() {
    let python = browser::selenium_python();
    const PER_PARTITION: usize = 300;
    let broker = Broker::start();
    let topic = loaded_topic(&broker, PER_PARTITION).await;
    // 100 records/s per partition at 500 ms: 50 per partition per batch, so the load
    // spreads over six batches and the limit in force is 2 × 100 records/s.
    let (spark, ui) = wordcount_with_ui(&broker, &topic, &["--max-rate-per-partition", "100"]);
    let shot = browser::artifacts_dir().join("streaming-page.png");
    let _ = std::fs::remove_file(&shot);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/streaming_page.py");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .arg(format!("http://{ui}/"))
            .arg(&shot)
            .arg(&topic)
            .arg((2 * PER_PARTITION).to_string())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "the page check failed:\n{}{}\n----- sluice-spark stderr -----\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        spark.stderr()
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["rate_limit"], "200 records/sec");
    let shot = PathBuf::from(report["screenshot"].as_str().unwrap());
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is no PNG",
        shot.display()
    );
    eprintln!("screenshot: {}", shot.display());
}
