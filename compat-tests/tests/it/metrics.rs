//! The broker's `/metrics` page, judged by Prometheus' own text parser (`prometheus_client`
//! in the venv) after real clients (librdkafka) produced, consumed and committed: counters
//! match what the clients did, lag is the high watermark minus the committed offset, and
//! the names are the ones Kafka dashboards query. Also the `--http` switch: `off` binds
//! nothing, a busy default port only warns, a busy explicit address stops start-up.

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

use crate::harness::{
    compat_dir, poll_until, run_with_timeout, unique_topic, Broker, TOOL_TIMEOUT,
};
use crate::rk::{self, Rec};

/// Records per partition, and the bytes of each record's value.
const PER_PARTITION: usize = 20;
const VALUE_BYTES: usize = 100;

/// A parsed page: every sample as (name, labels, value).
struct Page {
    samples: Vec<(String, HashMap<String, String>, f64)>,
    families: HashMap<String, String>,
    content_type: String,
}

impl Page {
    /// Values of `name` whose labels include every pair in `labels`.
    fn values(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        self.samples
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| *v)
            .collect()
    }

    /// The one value of `name` with exactly `labels`.
    fn one(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<f64> = self
            .samples
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && l.len() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| *v)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected one sample {name}{labels:?}, found {found:?}"
        );
        found[0]
    }
}

/// Scrapes `http://ADDR/metrics` and parses it with the venv's prometheus_client.
fn scrape(broker: &Broker) -> Page {
    let addr = broker
        .http_addr()
        .expect("the broker printed an `http on` line");
    let py = compat_dir().join(".cache/venv/bin/python");
    assert!(
        py.exists(),
        "{} is missing: run `bash compat-tests/scripts/install-python.sh` (it installs \
         prometheus-client, whose parser judges the page)",
        py.display()
    );
    let mut cmd = Command::new(py);
    cmd.arg(compat_dir().join("python/scrape_metrics.py"))
        .arg(format!("http://{addr}/metrics"));
    let out = run_with_timeout(cmd, None, TOOL_TIMEOUT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "prometheus_client could not scrape or parse /metrics: {stderr}\n(if the module is \
         missing, run `bash compat-tests/scripts/install-python.sh`)"
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("scraper prints JSON");
    assert_eq!(v["status"], 200);
    let samples = v["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .map(|s| {
            let labels = s[1]
                .as_object()
                .expect("labels")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect();
            (
                s[0].as_str().expect("name").to_owned(),
                labels,
                s[2].as_f64().unwrap_or(f64::NAN),
            )
        })
        .collect();
    let families = v["families"]
        .as_object()
        .expect("families")
        .iter()
        .map(|(k, t)| (k.clone(), t.as_str().unwrap_or_default().to_owned()))
        .collect();
    Page {
        samples,
        families,
        content_type: v["content_type"].as_str().unwrap_or_default().to_owned(),
    }
}

#[test]
fn metrics_count_what_real_clients_did_and_prometheus_parses_them() {
    // flush.messages=1: every append is fsynced before it is acknowledged, so the flush
    // timer must have counted some.
    let broker = Broker::start_with_config("[log]\nflush_interval_messages = 1\n");
    let addr = broker.addr().to_owned();
    let topic = unique_topic("metrics");
    rk::create_topic(&addr, &topic, 2);
    let value = "v".repeat(VALUE_BYTES);
    let recs: Vec<Rec> = (0..2 * PER_PARTITION)
        .map(|i| Rec {
            partition: Some(i32::try_from(i % 2).unwrap()),
            ..Rec::kv(&format!("k{i:03}"), &value)
        })
        .collect();
    rk::produce_ok(&addr, &topic, &recs, &[]);

    // A group member reads everything, then commits part of it: 15 of partition 0's 20
    // records and 5 of partition 1's.
    let group = unique_topic("metrics-group");
    let consumer: BaseConsumer = rk::config(
        &addr,
        &[
            ("group.id", group.as_str()),
            ("enable.auto.commit", "false"),
            ("enable.partition.eof", "false"),
        ],
    )
    .create()
    .expect("create consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..2 {
        tpl.add_partition_offset(&topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let end = Instant::now() + rk::CONSUME_DEADLINE;
    let mut read = 0;
    while read < recs.len() && Instant::now() < end {
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(200)) {
            read += 1;
        }
    }
    assert_eq!(
        read,
        recs.len(),
        "consumer read {read} of {} records",
        recs.len()
    );
    let committed = [(0, 15i64), (1, 5i64)];
    let mut commit = TopicPartitionList::new();
    for (p, off) in committed {
        commit
            .add_partition_offset(&topic, p, Offset::Offset(off))
            .unwrap();
    }
    consumer
        .commit(&commit, CommitMode::Sync)
        .expect("commit offsets");

    // The consumer stays connected while the page is read.
    let page = scrape(&broker);
    assert!(
        page.content_type.starts_with("text/plain; version=0.0.4"),
        "{}",
        page.content_type
    );
    let t = topic.as_str();
    let produced = (2 * PER_PARTITION) as f64;
    let payload = (2 * PER_PARTITION * VALUE_BYTES) as f64;
    let messages_in = "kafka_server_brokertopicmetrics_messagesin_total";
    assert_eq!(page.one(messages_in, &[("topic", t)]), produced);
    assert_eq!(page.one(messages_in, &[]), produced, "all topics");
    assert_eq!(
        page.families
            .get("kafka_server_brokertopicmetrics_messagesin")
            .map(String::as_str),
        Some("counter")
    );
    let bytes_in = page.one(
        "kafka_server_brokertopicmetrics_bytesin_total",
        &[("topic", t)],
    );
    assert!(
        bytes_in >= payload,
        "bytes in {bytes_in} < payload {payload}"
    );
    assert!(page.one("kafka_server_brokertopicmetrics_bytesin_total", &[]) >= bytes_in);
    let bytes_out = page.one(
        "kafka_server_brokertopicmetrics_bytesout_total",
        &[("topic", t)],
    );
    assert!(
        bytes_out >= payload,
        "bytes out {bytes_out} < payload {payload}"
    );

    let requests = |r: &str| -> f64 {
        page.values(
            "kafka_network_requestmetrics_requests_total",
            &[("request", r)],
        )
        .iter()
        .sum()
    };
    assert!(requests("Produce") > 0.0 && requests("Fetch") > 0.0);
    assert!(requests("OffsetCommit") > 0.0);
    assert!(
        page.one(
            "kafka_network_requestmetrics_errors_total",
            &[("request", "Produce"), ("error", "NONE")]
        ) > 0.0
    );
    assert_eq!(
        page.families
            .get("kafka_network_requestmetrics_totaltimems")
            .map(String::as_str),
        Some("summary")
    );
    assert_eq!(
        page.values(
            "kafka_network_requestmetrics_totaltimems",
            &[("request", "Produce"), ("quantile", "0.99")]
        )
        .len(),
        1
    );
    assert!(
        page.one(
            "kafka_network_requestmetrics_totaltimems_count",
            &[("request", "FetchConsumer")]
        ) > 0.0
    );

    for (p, off) in committed {
        let ps = p.to_string();
        let labels = [("topic", t), ("partition", ps.as_str())];
        assert_eq!(
            page.one("kafka_log_log_logendoffset", &labels),
            PER_PARTITION as f64
        );
        assert_eq!(page.one("kafka_log_log_logstartoffset", &labels), 0.0);
        assert_eq!(page.one("kafka_log_log_numlogsegments", &labels), 1.0);
        assert!(page.one("kafka_log_log_size", &labels) >= (PER_PARTITION * VALUE_BYTES) as f64);
        assert_eq!(
            page.one("kafka_topic_partition_current_offset", &labels),
            PER_PARTITION as f64
        );
        assert_eq!(
            page.one("kafka_topic_partition_oldest_offset", &labels),
            0.0
        );
        let g = [
            ("consumergroup", group.as_str()),
            ("topic", t),
            ("partition", ps.as_str()),
        ];
        assert_eq!(
            page.one("kafka_consumergroup_current_offset", &g),
            off as f64
        );
        assert_eq!(
            page.one("kafka_consumergroup_lag", &g),
            PER_PARTITION as f64 - off as f64,
            "lag of partition {p}"
        );
    }
    assert_eq!(page.one("kafka_topic_partitions", &[("topic", t)]), 2.0);
    assert_eq!(
        page.one(
            "kafka_consumergroup_lag_sum",
            &[("consumergroup", group.as_str()), ("topic", t)]
        ),
        (2 * PER_PARTITION) as f64 - 20.0
    );

    let conns = page.one(
        "kafka_server_socket_server_metrics_connection_count",
        &[("listener", "PLAINTEXT"), ("networkProcessor", "0")],
    );
    assert!(
        conns > 0.0,
        "connection count {conns} with a consumer connected"
    );
    assert!(
        page.one("kafka_log_logflushstats_logflushrateandtimems_count", &[]) > 0.0,
        "no fsync counted with flush_interval_messages = 1"
    );
    assert!(page.one("process_resident_memory_bytes", &[]) > 0.0);
    assert!(page.one("process_cpu_seconds_total", &[]) >= 0.0);
    assert!(page.one("process_open_fds", &[]) > 0.0);
    assert!(page.one("process_start_time_seconds", &[]) > 1.5e9);
    drop(consumer);
}

/// Listening TCP sockets the process `pid` holds, from /proc (inodes in state 0A, LISTEN).
fn listening_sockets(pid: u32) -> usize {
    let mut listening = std::collections::HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.get(3) == Some(&"0A") {
                if let Some(inode) = f.get(9) {
                    listening.insert(format!("socket:[{inode}]"));
                }
            }
        }
    }
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|l| listening.contains(l.to_string_lossy().as_ref()))
        .count()
}

#[test]
fn http_off_prints_no_line_and_binds_no_port() {
    // Through the environment, the way a container would turn it off.
    let b = sluice_testkit::Broker::builder()
        .http(None)
        .env("SLUICE_HTTP", "off")
        .start();
    assert_eq!(b.http_addr(), None);
    let pid = b.pid().unwrap();
    assert_eq!(listening_sockets(pid), 1, "only the Kafka listener");
    let on = sluice_testkit::Broker::builder().start();
    assert!(on.http_addr().is_some());
    assert_eq!(listening_sockets(on.pid().unwrap()), 2, "Kafka and HTTP");
}

#[test]
fn a_busy_default_http_port_only_warns() {
    // Hold the default port. Another process may hold it already (a broker of another test
    // or a developer's); it is busy either way, so go on after a bounded wait for it.
    let mut held = None;
    poll_until(Duration::from_secs(10), || {
        held = TcpListener::bind("127.0.0.1:8080").ok();
        held.is_some()
    });
    let b = sluice_testkit::Broker::builder()
        .http(None)
        .default_rust_log("info")
        .start();
    assert_eq!(
        b.http_addr(),
        None,
        "the broker bound the busy default port"
    );
    assert!(
        b.stderr().contains("WARN") && b.stderr().contains("127.0.0.1:8080 is in use"),
        "no warning about the busy port:\n{}",
        b.stderr()
    );
    drop(held);
}

#[test]
fn a_busy_explicit_http_address_stops_start_up() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let at = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(sluice_testkit::sluice_bin_beside_test_exe());
    cmd.args(["--listen", "127.0.0.1:0", "--http", &at, "--data-dir"])
        .arg(dir.path().join("data"))
        .env("NO_COLOR", "1");
    let out = run_with_timeout(cmd, None, Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "broker started: {stdout}");
    assert!(!stdout.contains("listening on"), "{stdout}");
    assert!(
        stderr.contains(&format!("cannot listen for HTTP on {at}")),
        "{stderr}"
    );
}
