//! Routing through the real binary: the multiplexing selector (by header, with a default),
//! a failover sink group (a dead sink is benched, its events go to the next sink), and a
//! load-balancing sink group (round robin over two sinks, every event delivered once).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::harness::{free_port, poll_until, Agent};
use crate::sources::http;

const DEADLINE: Duration = Duration::from_secs(30);

/// Every line of every file under `dir` (file_roll output), sorted.
fn lines_in(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let text = fs::read_to_string(e.path()).unwrap_or_default();
            out.extend(text.lines().map(str::to_string));
        }
    }
    out.sort();
    out
}

fn post(port: u16, events: &serde_json::Value) {
    let body = serde_json::to_vec(events).unwrap();
    let (status, _, text) = http(
        port,
        "POST",
        "/",
        &[("Content-Type", "application/json")],
        &body,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&text));
}

fn file_roll(sink: &str, channel: &str, dir: &Path, batch: usize) -> String {
    format!(
        "a1.sinks.{sink}.type = file_roll\n\
         a1.sinks.{sink}.channel = {channel}\n\
         a1.sinks.{sink}.sink.directory = {}\n\
         a1.sinks.{sink}.sink.rollInterval = 0\n\
         a1.sinks.{sink}.sink.batchSize = {batch}\n",
        dir.display()
    )
}

fn http_source(port: u16, channels: &str) -> String {
    format!(
        "a1.sources = r1\n\
         a1.sources.r1.type = http\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {port}\n\
         a1.sources.r1.channels = {channels}\n"
    )
}

fn memory(name: &str) -> String {
    format!(
        "a1.channels.{name}.type = memory\n\
         a1.channels.{name}.capacity = 10000\n\
         a1.channels.{name}.transactionCapacity = 1000\n"
    )
}

#[test]
fn multiplexing_selector_routes_by_header_and_defaults_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<_> = ["a", "b", "other"]
        .iter()
        .map(|d| tmp.path().join(d))
        .collect();
    for d in &dirs {
        fs::create_dir_all(d).unwrap();
    }
    let port = free_port();
    let mut config = http_source(port, "c1 c2 c3");
    config.push_str(
        "a1.sources.r1.selector.type = multiplexing\n\
         a1.sources.r1.selector.header = kind\n\
         a1.sources.r1.selector.mapping.a = c1\n\
         a1.sources.r1.selector.mapping.b = c2\n\
         a1.sources.r1.selector.default = c3\n\
         a1.channels = c1 c2 c3\n\
         a1.sinks = k1 k2 k3\n",
    );
    for (i, d) in dirs.iter().enumerate() {
        config.push_str(&memory(&format!("c{}", i + 1)));
        config.push_str(&file_roll(
            &format!("k{}", i + 1),
            &format!("c{}", i + 1),
            d,
            100,
        ));
    }
    let mut agent = Agent::start(&config, "a1", &[]);
    agent.wait_for_log("agent a1 started", DEADLINE);
    post(
        port,
        &serde_json::json!([
            {"headers": {"kind": "a"}, "body": "to-a-1"},
            {"headers": {"kind": "b"}, "body": "to-b-1"},
            {"headers": {}, "body": "no-header"},
            {"headers": {"kind": "zz"}, "body": "unmapped"},
            {"headers": {"kind": "a"}, "body": "to-a-2"},
        ]),
    );
    let want: [Vec<&str>; 3] = [
        vec!["to-a-1", "to-a-2"],
        vec!["to-b-1"],
        vec!["no-header", "unmapped"],
    ];
    for (d, want) in dirs.iter().zip(want) {
        let got = poll_until(DEADLINE, &format!("events in {}", d.display()), || {
            let l = lines_in(d);
            (l.len() >= want.len()).then_some(l)
        });
        assert_eq!(got, want, "{}", d.display());
    }
}

#[test]
fn failover_group_benches_a_dead_sink_and_delivers_through_the_next() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    fs::create_dir_all(&out).unwrap();
    let port = free_port();
    let dead = free_port();
    let mut config = http_source(port, "c1");
    config.push_str("a1.channels = c1\na1.sinks = dead live\na1.sinkgroups = g1\n");
    config.push_str(&memory("c1"));
    config.push_str(&format!(
        "a1.sinks.dead.type = avro\n\
         a1.sinks.dead.channel = c1\n\
         a1.sinks.dead.hostname = 127.0.0.1\n\
         a1.sinks.dead.port = {dead}\n\
         a1.sinks.dead.connect-timeout = 1000\n"
    ));
    config.push_str(&file_roll("live", "c1", &out, 100));
    config.push_str(
        "a1.sinkgroups.g1.sinks = dead live\n\
         a1.sinkgroups.g1.processor.type = failover\n\
         a1.sinkgroups.g1.processor.priority.dead = 10\n\
         a1.sinkgroups.g1.processor.priority.live = 5\n\
         a1.sinkgroups.g1.processor.maxpenalty = 10000\n",
    );
    let mut agent = Agent::start(&config, "a1", &[]);
    agent.wait_for_log("agent a1 started", DEADLINE);
    let mut want = Vec::new();
    for round in 0..3 {
        let events: Vec<serde_json::Value> = (0..20)
            .map(|i| {
                let body = format!("failover-{round}-{i:02}");
                want.push(body.clone());
                serde_json::json!({"headers": {}, "body": body})
            })
            .collect();
        post(port, &serde_json::Value::Array(events));
    }
    want.sort();
    let got = poll_until(DEADLINE, "every event through the live sink", || {
        let l = lines_in(&out);
        (l.len() >= want.len()).then_some(l)
    });
    assert_eq!(got, want, "each event exactly once through the live sink");
    assert!(
        agent.log().contains("benched"),
        "the dead sink was never benched:\n{}",
        agent.log()
    );
}

#[test]
fn load_balance_group_spreads_batches_and_delivers_each_event_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (d1, d2) = (tmp.path().join("k1"), tmp.path().join("k2"));
    fs::create_dir_all(&d1).unwrap();
    fs::create_dir_all(&d2).unwrap();
    let port = free_port();
    let mut config = http_source(port, "c1");
    config.push_str("a1.channels = c1\na1.sinks = k1 k2\na1.sinkgroups = g1\n");
    config.push_str(&memory("c1"));
    // Small sink batches: 200 events queued at once take ten process() rounds, which the
    // round-robin selector hands to the two sinks in turn.
    config.push_str(&file_roll("k1", "c1", &d1, 20));
    config.push_str(&file_roll("k2", "c1", &d2, 20));
    config.push_str(
        "a1.sinkgroups.g1.sinks = k1 k2\n\
         a1.sinkgroups.g1.processor.type = load_balance\n\
         a1.sinkgroups.g1.processor.selector = round_robin\n\
         a1.sinkgroups.g1.processor.backoff = true\n",
    );
    let mut agent = Agent::start(&config, "a1", &[]);
    agent.wait_for_log("agent a1 started", DEADLINE);
    let want: Vec<String> = (0..200).map(|i| format!("lb-{i:03}")).collect();
    let events: Vec<serde_json::Value> = want
        .iter()
        .map(|b| serde_json::json!({"headers": {}, "body": b}))
        .collect();
    post(port, &serde_json::Value::Array(events));
    let (a, b) = poll_until(DEADLINE, "all events through the two sinks", || {
        let (a, b) = (lines_in(&d1), lines_in(&d2));
        (a.len() + b.len() >= want.len()).then_some((a, b))
    });
    assert!(
        !a.is_empty() && !b.is_empty(),
        "one sink got everything: {} / {}",
        a.len(),
        b.len()
    );
    let mut all: Vec<String> = a.into_iter().chain(b).collect();
    all.sort();
    let mut seen = BTreeMap::new();
    for l in &all {
        *seen.entry(l.clone()).or_insert(0) += 1;
    }
    assert!(seen.values().all(|&n| n == 1), "duplicates: {seen:?}");
    assert_eq!(all, want);
}
