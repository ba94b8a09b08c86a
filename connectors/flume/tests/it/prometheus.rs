//! Tests: the HTTP monitoring's Prometheus text (`/metrics/prometheus`), parsed by
//! Prometheus's own Python parser (`prometheus_client.parser`), after a known load of N
//! events through seq source → memory channel → null sink.

use std::time::Duration;

use sluice_testkit::prometheus::{self, Scrape};

use crate::harness::{free_port, poll_until, Agent};
use crate::sources::http;

const DEADLINE: Duration = Duration::from_secs(30);

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
    let value = |page: &Scrape, sample: &str, c: &str| {
        page.values(sample, &[("component", c)]).first().copied()
    };
    let rows = poll_until(DEADLINE, "all N events drained", || {
        let page = prometheus::scrape(&format!("http://127.0.0.1:{mport}/metrics/prometheus"));
        assert_eq!(page.status, 200);
        (value(&page, "flume_sink_event_drain_success_count_total", "k1") == Some(N as f64))
            .then_some(page)
    });
    assert!(
        rows.content_type.starts_with("text/plain; version=0.0.4"),
        "{}",
        rows.content_type
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
    let ty = |family: &str| rows.family_type(family).unwrap_or_default().to_owned();
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
