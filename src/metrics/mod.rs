//! The broker's metrics, and the `/metrics` page in Prometheus' text format (0.0.4).
//!
//! - [`Metrics`]: counters the hot paths add to (requests, per-topic traffic, connections),
//!   one per broker, reached as `broker.metrics`.
//! - [`LOG_FLUSH`]: fsync count and time, process-wide as Kafka's `LogFlushStats` is.
//! - [`render`]: the page. Counters are read as they are; log offsets and sizes and the
//!   committed offsets come in a [`Gathered`] the HTTP side copies at scrape time from the
//!   log manager and the group coordinator (each lock held only to copy a few numbers), and
//!   the process' resources from `/proc`. The module takes nothing from the broker's other
//!   modules, so every layer may record into it.
//! - [`histogram`]: fixed-bucket histograms; [`expo`]: the text format; [`requests`]: the
//!   per-API tables; [`process`]: `/proc/self`.
//!
//! Names are those the Prometheus JMX exporter's standard Kafka rules give Kafka's MBeans
//! (`kafka_server_brokertopicmetrics_messagesin_total{topic}` ...), and kafka_exporter's
//! for lag (`kafka_consumergroup_lag{consumergroup,topic,partition}` ...), so dashboards built
//! for Kafka work unchanged. Without scrapes, recording costs a few relaxed atomic adds: no
//! allocation, and per-topic counters are found through one read-locked map per request.

pub mod expo;
pub mod histogram;
pub mod process;
pub mod requests;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use expo::{Exposition, Kind};
use histogram::Histogram;
use requests::RequestMetrics;

/// fsyncs of partition logs (group commits, periodic flushes, rolled segments) and how
/// long each took: Kafka's `kafka.log:type=LogFlushStats,name=LogFlushRateAndTimeMs`, a
/// process-wide timer there too.
pub static LOG_FLUSH: Histogram = Histogram::new();

/// The quantiles Kafka's JMX histograms report, as the JMX exporter labels them
/// (`50thPercentile` becomes `quantile="0.50"`).
const KAFKA_QUANTILES: [(&str, f64); 6] = [
    ("0.50", 0.50),
    ("0.75", 0.75),
    ("0.95", 0.95),
    ("0.98", 0.98),
    ("0.99", 0.99),
    ("0.999", 0.999),
];

/// Microseconds per millisecond and per second, for [`Exposition::summary`] and
/// [`Exposition::histogram`].
const US_PER_MS: f64 = 1e3;
const US_PER_S: f64 = 1e6;

/// One topic's traffic, as Kafka's `BrokerTopicMetrics` (also used for the all-topics
/// totals).
#[derive(Debug, Default)]
pub struct TopicCounters {
    /// `MessagesInPerSec`: records appended.
    pub messages_in: AtomicU64,
    /// `BytesInPerSec`: batch bytes appended.
    pub bytes_in: AtomicU64,
    /// `BytesOutPerSec`: record bytes sent to fetchers.
    pub bytes_out: AtomicU64,
    /// `TotalProduceRequestsPerSec`: partition appends asked for.
    pub produce_requests: AtomicU64,
    /// `FailedProduceRequestsPerSec`: partition appends refused.
    pub failed_produce_requests: AtomicU64,
    /// `TotalFetchRequestsPerSec`: partition reads asked for.
    pub fetch_requests: AtomicU64,
    /// `FailedFetchRequestsPerSec`: partition reads that failed.
    pub failed_fetch_requests: AtomicU64,
}

/// What one request did to one partition, for [`TopicMetrics::record`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TopicDelta {
    /// Records appended.
    pub messages_in: u64,
    /// Bytes appended.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// 1 for a produce to the partition.
    pub produce_requests: u64,
    /// 1 for a refused produce.
    pub failed_produce_requests: u64,
    /// 1 for a fetch from the partition.
    pub fetch_requests: u64,
    /// 1 for a failed fetch.
    pub failed_fetch_requests: u64,
}

impl TopicCounters {
    fn add(&self, d: &TopicDelta) {
        let add = |c: &AtomicU64, n: u64| {
            if n > 0 {
                c.fetch_add(n, Ordering::Relaxed);
            }
        };
        add(&self.messages_in, d.messages_in);
        add(&self.bytes_in, d.bytes_in);
        add(&self.bytes_out, d.bytes_out);
        add(&self.produce_requests, d.produce_requests);
        add(&self.failed_produce_requests, d.failed_produce_requests);
        add(&self.fetch_requests, d.fetch_requests);
        add(&self.failed_fetch_requests, d.failed_fetch_requests);
    }
}

/// Per-topic traffic counters and their totals.
#[derive(Debug, Default)]
pub struct TopicMetrics {
    by_topic: RwLock<HashMap<Arc<str>, Arc<TopicCounters>>>,
    all: TopicCounters,
}

impl TopicMetrics {
    /// Adds what one request did, per partition: the map is read-locked once for the whole
    /// request, and write-locked only the first time a topic is seen.
    pub fn record(&self, deltas: &[(&str, TopicDelta)]) {
        // Deltas of topics not yet in the map; allocates only when there are some.
        let mut missed = Vec::new();
        {
            let map = self.by_topic.read().unwrap_or_else(|p| p.into_inner());
            for (i, (topic, d)) in deltas.iter().enumerate() {
                match map.get(*topic) {
                    Some(c) => c.add(d),
                    None => missed.push(i),
                }
            }
        }
        if !missed.is_empty() {
            let mut map = self.by_topic.write().unwrap_or_else(|p| p.into_inner());
            for (topic, d) in missed.into_iter().filter_map(|i| deltas.get(i)) {
                map.entry(Arc::from(*topic)).or_default().add(d);
            }
        }
        for (_, d) in deltas {
            self.all.add(d);
        }
    }

    /// Forgets a deleted topic's counters (Kafka removes its per-topic MBeans then).
    pub fn remove(&self, topic: &str) {
        self.by_topic
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(topic);
    }

    fn snapshot(&self) -> Vec<(Arc<str>, Arc<TopicCounters>)> {
        let map = self.by_topic.read().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<_> = map
            .iter()
            .map(|(k, v)| (Arc::clone(k), Arc::clone(v)))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

/// One listener's connections, as Kafka's `socket-server-metrics` (`connection-count`,
/// `connection-creation-total`, `connection-close-total`).
#[derive(Debug, Default)]
pub struct ConnCounters {
    /// Connections accepted.
    pub opened: AtomicU64,
    /// Connections ended.
    pub closed: AtomicU64,
}

/// Every registered metric of one broker.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests per API key and version, their time, and Produce/Fetch error codes.
    pub requests: RequestMetrics,
    /// Per-topic traffic.
    pub topics: TopicMetrics,
    connections: RwLock<BTreeMap<String, Arc<ConnCounters>>>,
}

impl Metrics {
    /// The counters of listener `name`, created on first use; taken once per accept loop.
    pub fn listener(&self, name: &str) -> Arc<ConnCounters> {
        let mut map = self.connections.write().unwrap_or_else(|p| p.into_inner());
        Arc::clone(map.entry(name.to_string()).or_default())
    }
}

/// What a scrape reads from the broker's state besides the counters: every partition's
/// figures (sorted by topic, then partition) and every committed offset.
#[derive(Debug, Default)]
pub struct Gathered {
    /// One row per partition.
    pub partitions: Vec<PartitionRow>,
    /// Committed offsets as (group, topic, partition, offset).
    pub committed: Vec<(String, String, i32, i64)>,
}

/// One partition's numbers, gathered once per scrape.
#[derive(Debug, Clone)]
pub struct PartitionRow {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// Log start offset.
    pub log_start: i64,
    /// Log end offset.
    pub log_end: i64,
    /// High watermark.
    pub high_watermark: i64,
    /// Bytes of all segments.
    pub size_bytes: u64,
    /// Number of segments.
    pub segments: usize,
}

/// The `/metrics` page: `metrics`' counters and what was `gathered`.
pub fn render(metrics: &Metrics, gathered: &Gathered) -> String {
    let mut e = Exposition::new();
    render_process(&mut e);
    render_topic_traffic(&mut e, &metrics.topics);
    render_requests(&mut e, &metrics.requests);
    render_connections(&mut e, metrics);
    render_logs(&mut e, &gathered.partitions);
    render_flush(&mut e);
    render_lag(&mut e, &gathered.partitions, &gathered.committed);
    e.finish()
}

fn render_process(e: &mut Exposition) {
    let Some(p) = process::read() else {
        return;
    };
    e.family(
        "process_cpu_seconds_total",
        Kind::Counter,
        "Total user and system CPU time spent in seconds.",
    );
    e.sample(&[], p.cpu_seconds);
    e.family(
        "process_resident_memory_bytes",
        Kind::Gauge,
        "Resident memory size in bytes.",
    );
    e.sample(&[], p.resident_memory_bytes as f64);
    e.family(
        "process_virtual_memory_bytes",
        Kind::Gauge,
        "Virtual memory size in bytes.",
    );
    e.sample(&[], p.virtual_memory_bytes as f64);
    e.family(
        "process_open_fds",
        Kind::Gauge,
        "Number of open file descriptors.",
    );
    e.sample(&[], p.open_fds as f64);
    if let Some(max) = p.max_fds {
        e.family(
            "process_max_fds",
            Kind::Gauge,
            "Maximum number of open file descriptors.",
        );
        e.sample(&[], max as f64);
    }
    e.family(
        "process_start_time_seconds",
        Kind::Gauge,
        "Start time of the process since unix epoch in seconds.",
    );
    e.sample(&[], p.start_time_seconds);
}

fn render_topic_traffic(e: &mut Exposition, t: &TopicMetrics) {
    let topics = t.snapshot();
    type Field = fn(&TopicCounters) -> &AtomicU64;
    let families: [(&str, &str, Field); 7] = [
        (
            "kafka_server_brokertopicmetrics_messagesin_total",
            "Records appended (Kafka's MessagesInPerSec count); without a topic label, all topics.",
            |c| &c.messages_in,
        ),
        (
            "kafka_server_brokertopicmetrics_bytesin_total",
            "Record batch bytes appended (BytesInPerSec).",
            |c| &c.bytes_in,
        ),
        (
            "kafka_server_brokertopicmetrics_bytesout_total",
            "Record bytes sent to fetchers (BytesOutPerSec).",
            |c| &c.bytes_out,
        ),
        (
            "kafka_server_brokertopicmetrics_totalproducerequests_total",
            "Partition appends asked for (TotalProduceRequestsPerSec).",
            |c| &c.produce_requests,
        ),
        (
            "kafka_server_brokertopicmetrics_failedproducerequests_total",
            "Partition appends refused (FailedProduceRequestsPerSec).",
            |c| &c.failed_produce_requests,
        ),
        (
            "kafka_server_brokertopicmetrics_totalfetchrequests_total",
            "Partition reads asked for (TotalFetchRequestsPerSec).",
            |c| &c.fetch_requests,
        ),
        (
            "kafka_server_brokertopicmetrics_failedfetchrequests_total",
            "Partition reads that failed (FailedFetchRequestsPerSec).",
            |c| &c.failed_fetch_requests,
        ),
    ];
    for (name, help, field) in families {
        e.family(name, Kind::Counter, help);
        e.sample(&[], field(&t.all).load(Ordering::Relaxed) as f64);
        for (topic, c) in &topics {
            e.sample(&[("topic", topic)], field(c).load(Ordering::Relaxed) as f64);
        }
    }
}

fn render_requests(e: &mut Exposition, r: &RequestMetrics) {
    e.family(
        "kafka_network_requestmetrics_requests_total",
        Kind::Counter,
        "Requests received, per API and version (Kafka's RequestMetrics RequestsPerSec).",
    );
    for (request, version, n) in r.requests() {
        let v = version.to_string();
        e.sample(&[("request", &request), ("version", &v)], n as f64);
    }
    e.family(
        "kafka_network_requestmetrics_errors_total",
        Kind::Counter,
        "Error codes in Produce and Fetch responses, per partition, NONE included (ErrorsPerSec).",
    );
    for (request, error, n) in r.errors() {
        e.sample(&[("request", request), ("error", &error)], n as f64);
    }
    let times = r.times();
    e.family(
        "kafka_network_requestmetrics_totaltimems",
        Kind::Summary,
        "Time from a request's arrival to its response being written, ms (TotalTimeMs); \
         quantiles estimated from fixed buckets.",
    );
    for (request, s) in &times {
        e.summary(&[("request", request)], s, &KAFKA_QUANTILES, US_PER_MS);
    }
    e.family(
        "sluice_request_duration_seconds",
        Kind::Histogram,
        "Time from a request's arrival to its response being written.",
    );
    for (request, s) in &times {
        e.histogram(&[("request", request)], s, US_PER_S);
    }
}

fn render_connections(e: &mut Exposition, m: &Metrics) {
    let conns: Vec<(String, u64, u64)> = m
        .connections
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(name, c)| {
            (
                name.clone(),
                c.opened.load(Ordering::Relaxed),
                c.closed.load(Ordering::Relaxed),
            )
        })
        .collect();
    // Kafka's labels: the listener and the network thread; Sluice has no network threads,
    // so every connection is processor 0's.
    type Value = fn(u64, u64) -> u64;
    let families: [(&str, Kind, &str, Value); 3] = [
        (
            "kafka_server_socket_server_metrics_connection_count",
            Kind::Gauge,
            "Open client connections (socket-server-metrics connection-count).",
            |o, c| o.saturating_sub(c),
        ),
        (
            "kafka_server_socket_server_metrics_connection_creation_total",
            Kind::Counter,
            "Connections accepted (connection-creation-total).",
            |o, _| o,
        ),
        (
            "kafka_server_socket_server_metrics_connection_close_total",
            Kind::Counter,
            "Connections closed (connection-close-total).",
            |_, c| c,
        ),
    ];
    for (name, kind, help, value) in families {
        e.family(name, kind, help);
        for (listener, opened, closed) in &conns {
            let labels = [("listener", listener.as_str()), ("networkProcessor", "0")];
            e.sample(&labels, value(*opened, *closed) as f64);
        }
    }
}

fn render_logs(e: &mut Exposition, rows: &[PartitionRow]) {
    type Field = fn(&PartitionRow) -> f64;
    let families: [(&str, &str, Field); 4] = [
        (
            "kafka_log_log_size",
            "Bytes of the partition's segments (Log Size).",
            |s| s.size_bytes as f64,
        ),
        (
            "kafka_log_log_logendoffset",
            "The offset the next record gets (LogEndOffset).",
            |s| s.log_end as f64,
        ),
        (
            "kafka_log_log_logstartoffset",
            "The first offset still in the log (LogStartOffset).",
            |s| s.log_start as f64,
        ),
        (
            "kafka_log_log_numlogsegments",
            "Segments of the partition (NumLogSegments).",
            |s| s.segments as f64,
        ),
    ];
    for (name, help, field) in families {
        e.family(name, Kind::Gauge, help);
        for r in rows {
            let p = r.partition.to_string();
            e.sample(&[("topic", &r.topic), ("partition", &p)], field(r));
        }
    }
    // A single node leads every partition and replicates none: the ReplicaManager and
    // controller gauges Kafka dashboards alert on, with the values Sluice always has.
    let n = rows.len() as f64;
    let gauges: [(&str, &str, f64); 5] = [
        (
            "kafka_server_replicamanager_partitioncount",
            "Partitions on this broker.",
            n,
        ),
        (
            "kafka_server_replicamanager_leadercount",
            "Partitions this broker leads (all of them).",
            n,
        ),
        (
            "kafka_server_replicamanager_underreplicatedpartitions",
            "Under-replicated partitions (none: one copy is all there is).",
            0.0,
        ),
        (
            "kafka_controller_kafkacontroller_activecontrollercount",
            "1: this broker is its own controller.",
            1.0,
        ),
        (
            "kafka_controller_kafkacontroller_offlinepartitionscount",
            "Partitions without a leader (none).",
            0.0,
        ),
    ];
    for (name, help, v) in gauges {
        e.family(name, Kind::Gauge, help);
        e.sample(&[], v);
    }
}

fn render_flush(e: &mut Exposition) {
    let s = LOG_FLUSH.snapshot();
    e.family(
        "kafka_log_logflushstats_logflushrateandtimems",
        Kind::Summary,
        "fsyncs of partition logs and their time, ms (LogFlushRateAndTimeMs); quantiles \
         estimated from fixed buckets.",
    );
    e.summary(&[], &s, &KAFKA_QUANTILES, US_PER_MS);
    e.family(
        "sluice_log_flush_duration_seconds",
        Kind::Histogram,
        "Time of each fsync of a partition's log.",
    );
    e.histogram(&[], &s, US_PER_S);
}

/// kafka_exporter's families: partitions and offsets per topic, and each group's committed
/// offsets and lag (high watermark minus committed offset, as kafka_exporter computes it
/// from ListOffsets latest).
fn render_lag(e: &mut Exposition, rows: &[PartitionRow], committed: &[(String, String, i32, i64)]) {
    e.family(
        "kafka_brokers",
        Kind::Gauge,
        "Brokers in the cluster (kafka_exporter).",
    );
    e.sample(&[], 1.0);
    e.family(
        "kafka_topic_partitions",
        Kind::Gauge,
        "Partitions of the topic (kafka_exporter).",
    );
    let mut per_topic: BTreeMap<&str, u64> = BTreeMap::new();
    for r in rows {
        *per_topic.entry(&r.topic).or_default() += 1;
    }
    for (topic, n) in &per_topic {
        e.sample(&[("topic", topic)], *n as f64);
    }
    e.family(
        "kafka_topic_partition_current_offset",
        Kind::Gauge,
        "High watermark of the partition (kafka_exporter).",
    );
    for r in rows {
        let p = r.partition.to_string();
        e.sample(
            &[("topic", &r.topic), ("partition", &p)],
            r.high_watermark as f64,
        );
    }
    e.family(
        "kafka_topic_partition_oldest_offset",
        Kind::Gauge,
        "Log start offset of the partition (kafka_exporter).",
    );
    for r in rows {
        let p = r.partition.to_string();
        e.sample(
            &[("topic", &r.topic), ("partition", &p)],
            r.log_start as f64,
        );
    }
    let hw: HashMap<(&str, i32), i64> = rows
        .iter()
        .map(|r| ((&*r.topic, r.partition), r.high_watermark))
        .collect();
    // Offsets of partitions that no longer exist have no lag to report.
    let committed: Vec<_> = committed
        .iter()
        .filter_map(|(g, t, p, off)| {
            let end = *hw.get(&(t.as_str(), *p))?;
            Some((g, t, *p, *off, end))
        })
        .collect();
    e.family(
        "kafka_consumergroup_current_offset",
        Kind::Gauge,
        "Committed offset of the group on the partition (kafka_exporter).",
    );
    for (g, t, p, off, _) in &committed {
        let p = p.to_string();
        e.sample(
            &[("consumergroup", g), ("topic", t), ("partition", &p)],
            *off as f64,
        );
    }
    e.family(
        "kafka_consumergroup_lag",
        Kind::Gauge,
        "High watermark minus the group's committed offset (kafka_exporter).",
    );
    let mut sums: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for (g, t, p, off, end) in &committed {
        let lag = end - off;
        *sums.entry((g, t)).or_default() += lag;
        let p = p.to_string();
        e.sample(
            &[("consumergroup", g), ("topic", t), ("partition", &p)],
            lag as f64,
        );
    }
    e.family(
        "kafka_consumergroup_lag_sum",
        Kind::Gauge,
        "The group's lag summed over the topic's partitions (kafka_exporter).",
    );
    for ((g, t), lag) in &sums {
        e.sample(&[("consumergroup", g), ("topic", t)], *lag as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_counters_add_per_topic_and_in_total() {
        let t = TopicMetrics::default();
        let d = TopicDelta {
            messages_in: 2,
            bytes_in: 100,
            produce_requests: 1,
            ..TopicDelta::default()
        };
        t.record(&[("a", d), ("b", d)]);
        t.record(&[("a", d)]);
        let snap = t.snapshot();
        let a = &snap[0].1;
        assert_eq!(&*snap[0].0, "a");
        assert_eq!(a.messages_in.load(Ordering::Relaxed), 4);
        assert_eq!(t.all.messages_in.load(Ordering::Relaxed), 6);
        assert_eq!(t.all.bytes_in.load(Ordering::Relaxed), 300);
        t.remove("a");
        assert_eq!(t.snapshot().len(), 1);
    }
}
