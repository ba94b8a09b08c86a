//! rdkafka (librdkafka) helpers shared by the test modules: a producer that records every
//! delivery report, a manual-assignment consumer that collects records into owned values, and
//! an admin call. These consumers never join a group (they assign partitions by hand);
//! `groups.rs` has its own group members.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

/// Timeout for one metadata or admin round trip.
pub(crate) const RPC_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a consumer may take to read what the test expects.
pub(crate) const CONSUME_DEADLINE: Duration = Duration::from_secs(40);

/// A record as a test writes it or reads it back.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Rec {
    pub(crate) partition: Option<i32>,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) headers: Vec<(String, Option<Vec<u8>>)>,
    pub(crate) timestamp: Option<i64>,
}

impl Rec {
    /// Key and value from strings.
    pub(crate) fn kv(key: &str, value: &str) -> Rec {
        Rec {
            key: Some(key.as_bytes().to_vec()),
            value: Some(value.as_bytes().to_vec()),
            ..Rec::default()
        }
    }
}

/// A record read back, with where it was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Got {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) rec: Rec,
}

/// Delivery report: `(index of the send, partition, offset)` or the error.
pub(crate) type Report = (usize, Result<(i32, i64), KafkaError>);

/// Producer context that keeps every delivery report.
#[derive(Default, Clone)]
pub(crate) struct Recorder {
    pub(crate) reports: Arc<Mutex<Vec<Report>>>,
}

impl ClientContext for Recorder {}

impl ProducerContext for Recorder {
    type DeliveryOpaque = Box<usize>;

    fn delivery(&self, result: &DeliveryResult<'_>, idx: Box<usize>) {
        let r = match result {
            Ok(m) => Ok((m.partition(), m.offset())),
            Err((e, _)) => Err(e.clone()),
        };
        self.reports.lock().unwrap().push((*idx, r));
    }
}

/// A client config pointed at `addr`, plus `extra` settings.
pub(crate) fn config(addr: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", addr)
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "20000");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c
}

/// A producer whose delivery reports land in its context's `Recorder`.
pub(crate) fn producer(addr: &str, extra: &[(&str, &str)]) -> BaseProducer<Recorder> {
    let mut base = vec![("message.timeout.ms", "30000"), ("linger.ms", "5")];
    base.extend_from_slice(extra);
    config(addr, &base)
        .create_with_context(Recorder::default())
        .expect("create producer")
}

/// Queues one record, retrying while librdkafka's local queue is full.
pub(crate) fn send(p: &BaseProducer<Recorder>, topic: &str, idx: usize, rec: &Rec) {
    let mut headers = OwnedHeaders::new();
    for (k, v) in &rec.headers {
        headers = headers.insert(Header {
            key: k,
            value: v.as_deref(),
        });
    }
    loop {
        let mut r: BaseRecord<'_, [u8], [u8], Box<usize>> =
            BaseRecord::with_opaque_to(topic, Box::new(idx));
        if let Some(k) = &rec.key {
            r = r.key(k.as_slice());
        }
        if let Some(v) = &rec.value {
            r = r.payload(v.as_slice());
        }
        if let Some(part) = rec.partition {
            r = r.partition(part);
        }
        if let Some(ts) = rec.timestamp {
            r = r.timestamp(ts);
        }
        if !rec.headers.is_empty() {
            r = r.headers(headers.clone());
        }
        match p.send(r) {
            Ok(()) => return,
            Err((
                KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                _,
            )) => {
                p.poll(Duration::from_millis(50));
            }
            Err((e, _)) => panic!("queue record {idx} to {topic}: {e}"),
        }
    }
}

/// Sends `recs` to `topic`, flushes, and returns one report per record in send order.
pub(crate) fn produce_all(
    p: &BaseProducer<Recorder>,
    topic: &str,
    recs: &[Rec],
) -> Vec<Result<(i32, i64), KafkaError>> {
    let start = p.context().reports.lock().unwrap().len();
    for (i, rec) in recs.iter().enumerate() {
        send(p, topic, start + i, rec);
        p.poll(Duration::ZERO);
    }
    p.flush(Duration::from_secs(60)).expect("flush producer");
    let reports = p.context().reports.lock().unwrap();
    let mut out: Vec<Option<Result<(i32, i64), KafkaError>>> = vec![None; recs.len()];
    for (idx, r) in reports.iter().skip(start) {
        out[idx - start] = Some(r.clone());
    }
    out.into_iter()
        .enumerate()
        .map(|(i, r)| r.unwrap_or_else(|| panic!("no delivery report for record {i}")))
        .collect()
}

/// Like `produce_all`, but panics on any delivery error and returns `(partition, offset)`s.
pub(crate) fn produce_ok(
    addr: &str,
    topic: &str,
    recs: &[Rec],
    extra: &[(&str, &str)],
) -> Vec<(i32, i64)> {
    let p = producer(addr, extra);
    produce_all(&p, topic, recs)
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.unwrap_or_else(|e| panic!("record {i} to {topic} not delivered: {e}")))
        .collect()
}

/// A consumer for manual assignment. librdkafka needs a group.id to `assign`, but with
/// explicit start offsets and no commits it never needs the coordinator for fetching.
pub(crate) fn consumer(addr: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut base = vec![
        ("group.id", "sluice-compat-manual"),
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("enable.partition.eof", "false"),
        ("auto.offset.reset", "earliest"),
    ];
    base.extend_from_slice(extra);
    config(addr, &base).create().expect("create consumer")
}

/// Reads `count` records from `topic`/`partition` starting at `from`, in the order delivered.
/// Panics if fewer arrive within `CONSUME_DEADLINE`.
pub(crate) fn consume(
    addr: &str,
    topic: &str,
    partition: i32,
    from: Offset,
    count: usize,
) -> Vec<Got> {
    consume_with(&consumer(addr, &[]), topic, partition, from, count)
}

/// `consume` with a caller-built consumer.
pub(crate) fn consume_with(
    c: &BaseConsumer,
    topic: &str,
    partition: i32,
    from: Offset,
    count: usize,
) -> Vec<Got> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, from)
        .expect("build assignment");
    c.assign(&tpl).expect("assign");
    let end = Instant::now() + CONSUME_DEADLINE;
    let mut got = Vec::with_capacity(count);
    let mut last_err: Option<KafkaError> = None;
    while got.len() < count && Instant::now() < end {
        match c.poll(Duration::from_millis(200)) {
            None => {}
            Some(Ok(m)) => got.push(to_got(&m)),
            Some(Err(e)) => last_err = Some(e),
        }
    }
    assert_eq!(
        got.len(),
        count,
        "read {} of {count} records from {topic}/{partition} within {CONSUME_DEADLINE:?}; last consumer error: {last_err:?}",
        got.len()
    );
    got
}

/// Converts a consumed message into an owned `Got`.
pub(crate) fn to_got<M: Message>(m: &M) -> Got {
    let headers = m
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default();
    Got {
        partition: m.partition(),
        offset: m.offset(),
        rec: Rec {
            partition: Some(m.partition()),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            headers,
            timestamp: m.timestamp().to_millis(),
        },
    }
}

/// Number of partitions Metadata reports for `topic` (None if the topic is absent).
/// Asks through a producer-type client, which (unlike a consumer with a group.id) never talks
/// to a group coordinator, and with auto-creation off.
pub(crate) fn partition_count(addr: &str, topic: &str) -> Option<usize> {
    let p: BaseProducer = config(addr, &[("allow.auto.create.topics", "false")])
        .create()
        .expect("create client");
    let md = p
        .client()
        .fetch_metadata(Some(topic), RPC_TIMEOUT)
        .expect("fetch metadata");
    md.topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().len())
}

/// CreateTopics through librdkafka's admin client; panics on any error.
pub(crate) fn create_topic(addr: &str, topic: &str, partitions: i32) {
    create_topic_with(addr, topic, partitions, &[]);
}

/// CreateTopics with topic `configs` (`(key, value)`); panics on any error.
pub(crate) fn create_topic_with(
    addr: &str,
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) {
    let admin: AdminClient<DefaultClientContext> =
        config(addr, &[]).create().expect("create admin client");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let new_topic = configs.iter().fold(
        NewTopic::new(topic, partitions, TopicReplication::Fixed(1)),
        |t, (k, v)| t.set(k, v),
    );
    let res = rt
        .block_on(admin.create_topics(
            &[new_topic],
            &AdminOptions::new().operation_timeout(Some(RPC_TIMEOUT)),
        ))
        .expect("CreateTopics request");
    for r in res {
        r.unwrap_or_else(|(t, e)| panic!("CreateTopics {t}: {e:?}"));
    }
}

/// Deterministic, poorly compressible bytes (xorshift), so size limits are really exercised.
pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}
