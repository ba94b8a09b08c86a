//! The Kafka channel (`org.apache.flume.channel.kafka.KafkaChannel`; no alias): the channel
//! is a Kafka topic. Puts are produced at commit; takes are consumed as a group member and
//! their offsets committed at commit.
//!
//! Keys and defaults, as Flume 1.11's code: `kafka.bootstrap.servers` (required; deprecated
//! `brokerList`), `kafka.topic` flume-channel (deprecated `topic`), `kafka.consumer.group.id`
//! flume (deprecated `groupId`), `parseAsFlumeEvent` true (the value is the bare Avro
//! `AvroFlumeEvent` datum, headers included; false: the raw body, headers are lost),
//! `kafka.pollTimeout` 500 ms (the documented `pollTimeout` is never read, as in Flume),
//! `defaultPartitionId`, `partitionIdHeader`, producer `acks` all, consumer
//! `auto.offset.reset` earliest (the guide says latest; the code says earliest),
//! `kafka.producer.*` / `kafka.consumer.*` passthrough as for the Kafka sink and source
//! (so `kafka.consumer.isolation.level=read_committed` makes takes skip the records of
//! aborted transactions and stop at the last stable offset).
//!
//! Transactions, as Flume's:
//! - put: the record is built (key = the `key` header, partition from the header or the
//!   default id, else Kafka's partitioner) and buffered; commit sends them all and waits for
//!   every acknowledgement; any failure fails the commit (the source sees a channel error).
//! - take: the next fetched record (an empty channel waits up to `kafka.pollTimeout` for the
//!   first event of a transaction); its `key` becomes the `key` header. A value that is not
//!   an Avro event while `parseAsFlumeEvent` is true fails that take and is skipped.
//! - commit commits the consumed offsets to the group; a failed offset commit is logged and
//!   ignored, as in Flume (the records may come again after a rebalance). Rollback keeps the
//!   taken events and hands them out again first.
//!
//! One consumer (one group member) serves every sink of the channel; the offset committed
//! for a partition never passes an event that an open transaction still holds or that was
//! rolled back, so concurrent sinks cannot commit each other's uncommitted events away.
//! The consumer joins the group at the first take: a channel with a source and no sink is
//! a plain producer, as Flume allows. `transactionCapacity` is not implemented, as in Flume
//! (batch sizes are never checked against this channel).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use sluice_client::{CommitOffset, ProduceOptions, ProduceRecord};

use super::{Channel, ChannelError, Transaction};
use crate::conf::{ConfigError, Context};
use crate::counters::{Counters, Kind};
use crate::event::{Event, Headers};
use crate::sink::kafka::{
    bootstrap, producer_settings, LazyClient, Outgoing, PartitionChoice, Partitioner, KEY_HEADER,
};
use crate::source::kafka::{consumer_settings, ConsumerSettings, GroupConsumer};

/// Flume's `DEFAULT_TOPIC` for the channel.
pub const DEFAULT_TOPIC: &str = "flume-channel";
/// Flume's `DEFAULT_GROUP_ID` for the channel.
pub const DEFAULT_GROUP_ID: &str = "flume";
/// Flume's `DEFAULT_POLL_TIMEOUT` (ms).
pub const DEFAULT_POLL_TIMEOUT_MS: u64 = 500;

/// Build the channel.
pub fn build(name: &str, ctx: &Context) -> Result<Arc<dyn Channel>, ConfigError> {
    Ok(Arc::new(KafkaChannel::from_context(name, ctx)?))
}

/// A fetched record, decoded.
struct Fetched {
    partition: i32,
    offset: i64,
    event: Result<Event, String>,
}

/// An event a transaction took.
#[derive(Clone)]
struct Taken {
    generation: i32,
    partition: i32,
    offset: i64,
    event: Event,
}

#[derive(Default)]
struct ConsumerState {
    group: Option<GroupConsumer>,
    /// Fetched, not yet taken.
    buffer: VecDeque<Fetched>,
    /// Rolled back, handed out again first.
    redeliver: VecDeque<Taken>,
    /// Offsets taken by open transactions, per partition.
    outstanding: BTreeMap<i32, BTreeSet<i64>>,
    /// Last offset committed per partition.
    committed: BTreeMap<i32, i64>,
    closed: bool,
}

impl ConsumerState {
    /// Forget everything about the old assignment.
    fn reset(&mut self) {
        self.buffer.clear();
        self.redeliver.clear();
        self.outstanding.clear();
        self.committed.clear();
    }

    /// The offset that may be committed for `partition` when the consumer's fetch position
    /// is `position`: nothing at or after it is held by an open transaction, waiting for
    /// redelivery, or buffered.
    fn point(&self, partition: i32, position: i64) -> i64 {
        let mut point = position;
        if let Some(o) = self.outstanding.get(&partition).and_then(|s| s.first()) {
            point = point.min(*o);
        }
        for t in self.redeliver.iter().filter(|t| t.partition == partition) {
            point = point.min(t.offset);
        }
        if let Some(f) = self.buffer.iter().find(|f| f.partition == partition) {
            point = point.min(f.offset);
        }
        point
    }

    fn commit_point(&self, topic: &str, partition: i32) -> Option<i64> {
        let position = self
            .group
            .as_ref()?
            .position(&(topic.to_string(), partition))?;
        Some(self.point(partition, position))
    }

    /// Commit offsets for `partitions` that moved past the last commit.
    fn commits(&self, topic: &str, partitions: impl IntoIterator<Item = i32>) -> Vec<CommitOffset> {
        partitions
            .into_iter()
            .filter_map(|p| {
                let point = self.commit_point(topic, p)?;
                (self.committed.get(&p).is_none_or(|c| point > *c))
                    .then(|| CommitOffset::new(topic, p, point))
            })
            .collect()
    }
}

struct Inner {
    name: String,
    who: String,
    topic: String,
    parse_as_flume: bool,
    poll_timeout: Duration,
    partition: PartitionChoice,
    producer: LazyClient,
    options: ProduceOptions,
    partitioner: Partitioner,
    consumer_settings: ConsumerSettings,
    consumer: tokio::sync::Mutex<ConsumerState>,
    counters: Arc<Counters>,
}

/// The Kafka channel.
#[derive(Clone)]
pub struct KafkaChannel {
    inner: Arc<Inner>,
}

impl KafkaChannel {
    /// A channel named `name` from its properties.
    pub fn from_context(name: &str, ctx: &Context) -> Result<Self, ConfigError> {
        let who = format!("Kafka channel {name}");
        let topic = match ctx.get("kafka.topic").filter(|t| !t.is_empty()) {
            Some(t) => t.to_string(),
            None => match ctx.get("topic").filter(|t| !t.is_empty()) {
                Some(t) => {
                    tracing::warn!("{who}: topic is deprecated; use kafka.topic");
                    t.to_string()
                }
                None => {
                    tracing::info!(
                        "{who}: topic was not specified; using {DEFAULT_TOPIC} as the topic"
                    );
                    DEFAULT_TOPIC.to_string()
                }
            },
        };
        let group_id = match ctx.get("kafka.consumer.group.id").filter(|g| !g.is_empty()) {
            Some(g) => g.to_string(),
            None => match ctx.get("groupId").filter(|g| !g.is_empty()) {
                Some(g) => {
                    tracing::warn!("{who}: groupId is deprecated; use kafka.consumer.group.id");
                    g.to_string()
                }
                None => DEFAULT_GROUP_ID.to_string(),
            },
        };
        let bootstrap = bootstrap(&who, ctx)?;
        let producer = producer_settings(&who, ctx, &bootstrap, "all")?;
        let mut default_reset = "earliest";
        if ctx.get("kafka.consumer.auto.offset.reset").is_none()
            && ctx.get("readSmallestOffset").is_some()
        {
            tracing::warn!(
                "{who}: readSmallestOffset is deprecated; use kafka.consumer.auto.offset.reset"
            );
            default_reset = if ctx.bool("readSmallestOffset", false)? {
                "earliest"
            } else {
                "latest"
            };
        }
        let consumer = consumer_settings(&who, ctx, &bootstrap, group_id, default_reset)?;
        if ctx.get("pollTimeout").is_some() {
            tracing::warn!(
                "{who}: pollTimeout is not read by Flume's Kafka channel; use kafka.pollTimeout"
            );
        }
        let poll_ms: u64 = ctx.parse("kafka.pollTimeout", DEFAULT_POLL_TIMEOUT_MS)?;
        let counters = Arc::new(Counters::new(Kind::Channel, name));
        Ok(KafkaChannel {
            inner: Arc::new(Inner {
                name: name.to_string(),
                who,
                topic,
                parse_as_flume: ctx.bool("parseAsFlumeEvent", true)?,
                poll_timeout: Duration::from_millis(poll_ms),
                partition: PartitionChoice::from_context(ctx)?,
                producer: LazyClient::new(producer.client),
                options: producer.options,
                partitioner: Partitioner::new(producer.metadata_max_age),
                consumer_settings: consumer,
                consumer: tokio::sync::Mutex::new(ConsumerState::default()),
                counters,
            }),
        })
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.inner.topic
    }
}

impl Inner {
    fn failed(&self, detail: impl Into<String>) -> ChannelError {
        ChannelError::Failed {
            channel: self.name.clone(),
            detail: detail.into(),
        }
    }

    fn decode(
        &self,
        value: Option<Bytes>,
        key: Option<Bytes>,
        partition: i32,
        offset: i64,
    ) -> Result<Event, String> {
        let value = value.unwrap_or_default();
        let mut e = if self.parse_as_flume {
            sluice_flume_rpc::decode_event(&value).map_err(|err| {
                format!(
                    "the record at {}-{partition} offset {offset} is not an Avro FlumeEvent ({err}); \
                     is parseAsFlumeEvent right for this topic?",
                    self.topic
                )
            })?
        } else {
            Event {
                headers: Headers::new(),
                body: value,
            }
        };
        if let Some(k) = key {
            e.headers.insert(
                KEY_HEADER.to_string(),
                String::from_utf8_lossy(&k).into_owned(),
            );
        }
        Ok(e)
    }

    /// Joins the group if not yet joined, and handles a pending rebalance (only between
    /// transactions' takes: `holding` says the caller's transaction already took some).
    async fn ready(&self, st: &mut ConsumerState, holding: bool) -> Result<bool, ChannelError> {
        if st.closed {
            return Err(ChannelError::Closed(self.name.clone()));
        }
        if st.group.is_none() {
            let client = self.producer.get().await.map_err(|e| {
                self.failed(format!(
                    "cannot connect to Kafka at {}: {e}",
                    self.producer.servers()
                ))
            })?;
            let g = GroupConsumer::join(
                &self.who,
                client,
                self.consumer_settings.clone(),
                vec![self.topic.clone()],
            )
            .await
            .map_err(|e| self.failed(e))?;
            tracing::info!(
                "{}: consumer joined group {} for topic {}",
                self.who,
                self.consumer_settings.group_id,
                self.topic
            );
            st.reset();
            st.group = Some(g);
        }
        let needs = st.group.as_ref().is_some_and(GroupConsumer::needs_rejoin);
        if needs {
            if holding {
                // Flume returns no event after a rebalance so the transaction commits first.
                return Ok(false);
            }
            let partitions: Vec<i32> = st
                .group
                .as_ref()
                .map(|g| g.assigned().into_iter().map(|(_, p)| p).collect())
                .unwrap_or_default();
            let offsets = st.commits(&self.topic, partitions);
            if let Some(g) = st.group.as_mut() {
                if g.rebalance(&offsets).await.map_err(|e| self.failed(e))? {
                    st.reset();
                }
            }
        }
        Ok(true)
    }

    /// Fetches into the buffer, waiting up to `wait`.
    async fn fill(&self, st: &mut ConsumerState, wait: Duration) -> Result<(), ChannelError> {
        let Some(g) = st.group.as_mut() else {
            return Ok(());
        };
        let records = g
            .fetch(wait)
            .await
            .map_err(|e| self.failed(format!("reading topic {}: {e}", self.topic)))?;
        for ((_, partition), r) in records {
            let event = self.decode(r.value, r.key, partition, r.offset);
            st.buffer.push_back(Fetched {
                partition,
                offset: r.offset,
                event,
            });
        }
        Ok(())
    }
}

#[async_trait]
impl Channel for KafkaChannel {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn begin(&self) -> Box<dyn Transaction> {
        Box::new(KafkaTransaction {
            inner: self.inner.clone(),
            puts: Vec::new(),
            takes: Vec::new(),
            done: false,
        })
    }

    async fn wait_for_events(&self, timeout: Duration) {
        let inner = &self.inner;
        let mut st = inner.consumer.lock().await;
        match inner.ready(&mut st, false).await {
            Ok(_) => {}
            Err(e) => {
                drop(st);
                tracing::warn!("{}: {e}", inner.who);
                tokio::time::sleep(timeout).await;
                return;
            }
        }
        if !st.buffer.is_empty() || !st.redeliver.is_empty() {
            return;
        }
        if let Err(e) = inner.fill(&mut st, timeout).await {
            tracing::warn!("{}: {e}", inner.who);
        }
    }

    fn transaction_capacity(&self) -> Option<usize> {
        None
    }

    async fn start(&self) -> anyhow::Result<()> {
        tracing::info!(
            "Starting Kafka channel {}: topic = {}",
            self.inner.name,
            self.inner.topic
        );
        Ok(())
    }

    async fn stop(&self) {
        let mut st = self.inner.consumer.lock().await;
        st.closed = true;
        let partitions: Vec<i32> = st
            .group
            .as_ref()
            .map(|g| g.assigned().into_iter().map(|(_, p)| p).collect())
            .unwrap_or_default();
        let offsets = st.commits(&self.inner.topic, partitions);
        if let Some(g) = st.group.take() {
            if let Err(e) = g.commit(&offsets).await {
                tracing::warn!("{}: final offset commit failed: {e}", self.inner.who);
            }
            g.leave().await;
        }
        tracing::info!("Kafka channel {} stopped", self.inner.name);
    }

    fn counters(&self) -> Arc<Counters> {
        self.inner.counters.clone()
    }
}

struct KafkaTransaction {
    inner: Arc<Inner>,
    puts: Vec<Outgoing>,
    takes: Vec<Taken>,
    done: bool,
}

/// Returns rolled-back takes to the redelivery queue (when they still belong to the
/// current generation; otherwise the partition's new owner reads them again).
fn give_back(st: &mut ConsumerState, takes: Vec<Taken>) {
    let current = st.group.as_ref().map(GroupConsumer::generation);
    for t in takes.into_iter().rev() {
        if Some(t.generation) != current {
            continue;
        }
        if let Some(s) = st.outstanding.get_mut(&t.partition) {
            s.remove(&t.offset);
        }
        st.redeliver.push_front(t);
    }
}

#[async_trait]
impl Transaction for KafkaTransaction {
    async fn put(&mut self, event: Event) -> Result<(), ChannelError> {
        let inner = &self.inner;
        let partition = inner.partition.pick(&event).map_err(|e| inner.failed(e))?;
        let value = if inner.parse_as_flume {
            Bytes::from(sluice_flume_rpc::encode_event(&event))
        } else {
            event.body.clone()
        };
        let mut record = ProduceRecord::new(value);
        record.key = event
            .headers
            .get(KEY_HEADER)
            .map(|k| Bytes::copy_from_slice(k.as_bytes()));
        self.puts.push(Outgoing {
            topic: inner.topic.clone(),
            partition,
            record,
        });
        inner.counters.inc("EventPutAttemptCount");
        Ok(())
    }

    async fn take(&mut self) -> Result<Option<Event>, ChannelError> {
        let inner = self.inner.clone();
        let mut st = inner.consumer.lock().await;
        if !inner.ready(&mut st, !self.takes.is_empty()).await? {
            return Ok(None);
        }
        let generation = st
            .group
            .as_ref()
            .map(GroupConsumer::generation)
            .unwrap_or(-1);
        if let Some(mut t) = st.redeliver.pop_front() {
            t.generation = generation;
            st.outstanding
                .entry(t.partition)
                .or_default()
                .insert(t.offset);
            inner.counters.inc("EventTakeAttemptCount");
            let e = t.event.clone();
            self.takes.push(t);
            return Ok(Some(e));
        }
        if st.buffer.is_empty() {
            // The first take of a transaction waits for data; later ones only take what
            // is there, so a batch ends as soon as the topic is drained.
            let wait = if self.takes.is_empty() {
                inner.poll_timeout
            } else {
                Duration::ZERO
            };
            inner.fill(&mut st, wait).await?;
        }
        let Some(f) = st.buffer.pop_front() else {
            return Ok(None);
        };
        inner.counters.inc("EventTakeAttemptCount");
        match f.event {
            Ok(e) => {
                st.outstanding
                    .entry(f.partition)
                    .or_default()
                    .insert(f.offset);
                self.takes.push(Taken {
                    generation,
                    partition: f.partition,
                    offset: f.offset,
                    event: e.clone(),
                });
                Ok(Some(e))
            }
            Err(msg) => {
                tracing::warn!(
                    "{}: error while getting events from Kafka; this is usually caused by trying to read a non-flume event: {msg}",
                    inner.who
                );
                Err(inner.failed(format!("error while getting events from Kafka: {msg}")))
            }
        }
    }

    async fn commit(&mut self) -> Result<(), ChannelError> {
        if self.done {
            return Ok(());
        }
        let inner = self.inner.clone();
        if !self.puts.is_empty() {
            let client = inner.producer.get().await.map_err(|e| {
                inner.failed(format!(
                    "cannot connect to Kafka at {}: {e}",
                    inner.producer.servers()
                ))
            })?;
            let records = self.puts.clone();
            inner
                .partitioner
                .send(&client, records, &inner.options)
                .await
                .map_err(|e| inner.failed(format!("commit failed as send to Kafka failed: {e}")))?;
            inner.counters.add(
                "EventPutSuccessCount",
                i64::try_from(self.puts.len()).unwrap_or(i64::MAX),
            );
            self.puts.clear();
        }
        if !self.takes.is_empty() {
            let mut st = inner.consumer.lock().await;
            let current = st.group.as_ref().map(GroupConsumer::generation);
            let mut touched = BTreeSet::new();
            for t in &self.takes {
                if Some(t.generation) == current {
                    if let Some(s) = st.outstanding.get_mut(&t.partition) {
                        s.remove(&t.offset);
                    }
                    touched.insert(t.partition);
                }
            }
            let offsets = st.commits(&inner.topic, touched);
            if let Some(g) = st.group.as_ref() {
                match g.commit(&offsets).await {
                    Ok(()) => {
                        for o in &offsets {
                            st.committed.insert(o.partition, o.offset);
                        }
                    }
                    Err(e) => tracing::info!(
                        "{}: error committing offsets (ignored, as Flume does): {e}",
                        inner.who
                    ),
                }
            }
            inner.counters.add(
                "EventTakeSuccessCount",
                i64::try_from(self.takes.len()).unwrap_or(i64::MAX),
            );
            self.takes.clear();
        }
        self.done = true;
        Ok(())
    }

    async fn rollback(&mut self) -> Result<(), ChannelError> {
        self.puts.clear();
        if !self.takes.is_empty() {
            let takes = std::mem::take(&mut self.takes);
            let mut st = self.inner.consumer.lock().await;
            give_back(&mut st, takes);
        }
        self.done = true;
        Ok(())
    }
}

impl Drop for KafkaTransaction {
    fn drop(&mut self) {
        if self.done || self.takes.is_empty() {
            return;
        }
        let takes = std::mem::take(&mut self.takes);
        if let Ok(mut st) = self.inner.consumer.try_lock() {
            give_back(&mut st, takes);
            return;
        }
        let inner = self.inner.clone();
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            h.spawn(async move {
                let mut st = inner.consumer.lock().await;
                give_back(&mut st, takes);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(pairs: &[(&str, &str)]) -> KafkaChannel {
        let mut all = vec![("kafka.bootstrap.servers", "127.0.0.1:1")];
        all.extend_from_slice(pairs);
        KafkaChannel::from_context("c1", &Context::from_pairs("a1.channels.c1.", all)).unwrap()
    }

    #[test]
    fn defaults_follow_flumes_code() {
        let c = channel(&[]);
        assert_eq!(c.topic(), DEFAULT_TOPIC);
        assert!(c.inner.parse_as_flume);
        assert_eq!(c.inner.poll_timeout, Duration::from_millis(500));
        assert_eq!(c.inner.options.acks, sluice_client::Acks::All);
        assert_eq!(c.inner.consumer_settings.group_id, "flume");
        assert_eq!(
            c.inner.consumer_settings.reset,
            crate::source::kafka::Reset::Earliest
        );
        assert_eq!(c.transaction_capacity(), None);

        let c = channel(&[
            ("pollTimeout", "5"),
            ("kafka.pollTimeout", "50"),
            ("parseAsFlumeEvent", "false"),
        ]);
        assert_eq!(c.inner.poll_timeout, Duration::from_millis(50));
        assert!(!c.inner.parse_as_flume);
        let err = KafkaChannel::from_context(
            "c1",
            &Context::from_pairs("a1.channels.c1.", [("kafka.topic", "t")]),
        )
        .err()
        .unwrap();
        assert!(
            err.to_string()
                .contains("a1.channels.c1.kafka.bootstrap.servers"),
            "{err}"
        );
    }

    /// Flume hands every `kafka.producer.*` / `kafka.consumer.*` key to its Kafka clients;
    /// the security keys must reach `sluice-client`'s config the same way.
    #[test]
    fn security_keys_reach_the_client_config() {
        use sluice_client::{SaslMechanism, SecurityProtocol};
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let ca = rcgen::CertificateParams::new(vec!["ca".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, ca.pem()).unwrap();
        let ca_path = ca_path.to_str().unwrap();
        let jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required \
                    username=\"alice\" password=\"alice-secret\";";
        let c = channel(&[
            ("kafka.producer.security.protocol", "SASL_SSL"),
            ("kafka.producer.sasl.mechanism", "SCRAM-SHA-512"),
            ("kafka.producer.sasl.jaas.config", jaas),
            ("kafka.producer.ssl.truststore.type", "PEM"),
            ("kafka.producer.ssl.truststore.location", ca_path),
            ("kafka.consumer.security.protocol", "SSL"),
            ("kafka.consumer.ssl.truststore.location", ca_path),
            ("kafka.consumer.ssl.disableTLSHostnameVerification", "true"),
        ]);
        let producer = &c.inner.producer.config().security;
        assert_eq!(producer.protocol, SecurityProtocol::SaslSsl);
        let sasl = producer.sasl.as_ref().unwrap();
        assert_eq!(sasl.mechanism, SaslMechanism::ScramSha512);
        assert_eq!(sasl.username, "alice");
        assert!(producer.tls.as_ref().unwrap().verifies_hostname());
        let consumer = &c.inner.consumer_settings.client.security;
        assert_eq!(consumer.protocol, SecurityProtocol::Ssl);
        assert!(consumer.sasl.is_none());
        assert!(!consumer.tls.as_ref().unwrap().verifies_hostname());

        // A bad value names the whole Flume key.
        let err = KafkaChannel::from_context(
            "c1",
            &Context::from_pairs(
                "a1.channels.c1.",
                [
                    ("kafka.bootstrap.servers", "h:1"),
                    ("kafka.consumer.security.protocol", "SSL"),
                    ("kafka.consumer.ssl.truststore.location", "/nonexistent.pem"),
                ],
            ),
        )
        .err()
        .unwrap();
        assert!(
            err.to_string()
                .contains("a1.channels.c1.kafka.consumer.ssl.truststore.location"),
            "{err}"
        );
    }

    #[test]
    fn decoding_both_formats() {
        let c = channel(&[]);
        let e = Event::new("b").with_header("h", "v");
        let v = Bytes::from(sluice_flume_rpc::encode_event(&e));
        let got = c
            .inner
            .decode(Some(v), Some(Bytes::from_static(b"k")), 0, 1)
            .unwrap();
        assert_eq!(got, e.with_header("key", "k"));
        let err = c
            .inner
            .decode(Some(Bytes::from_static(b"\xff\xfe raw")), None, 3, 9)
            .unwrap_err();
        assert!(
            err.contains("offset 9") && err.contains("parseAsFlumeEvent"),
            "{err}"
        );

        let c = channel(&[("parseAsFlumeEvent", "false")]);
        let got = c
            .inner
            .decode(Some(Bytes::from_static(b"raw line")), None, 0, 1)
            .unwrap();
        assert_eq!(got, Event::new("raw line"));
    }

    #[tokio::test]
    async fn puts_are_buffered_until_commit_and_bad_partition_headers_fail() {
        let c = channel(&[("partitionIdHeader", "p")]);
        let mut tx = c.begin();
        tx.put(
            Event::new("a")
                .with_header("key", "k")
                .with_header("p", "1"),
        )
        .await
        .unwrap();
        assert!(tx
            .put(Event::new("b").with_header("p", "one"))
            .await
            .is_err());
        // Rolling back a put-only transaction never touches Kafka (nothing listens on :1).
        tx.rollback().await.unwrap();
        assert_eq!(c.counters().get("EventPutSuccessCount"), 0);
    }

    #[test]
    fn commit_point_never_passes_held_returned_or_buffered_events() {
        let mut st = ConsumerState::default();
        // No group: nothing to commit.
        assert!(st.commits("t", [0]).is_empty());
        assert_eq!(st.point(0, 10), 10);
        st.outstanding.entry(0).or_default().extend([7, 5]);
        assert_eq!(st.point(0, 10), 5);
        assert_eq!(st.point(1, 10), 10);
        st.redeliver.push_back(Taken {
            generation: 1,
            partition: 0,
            offset: 3,
            event: Event::new("x"),
        });
        assert_eq!(st.point(0, 10), 3);
        st.buffer.push_back(Fetched {
            partition: 1,
            offset: 8,
            event: Ok(Event::new("y")),
        });
        assert_eq!(st.point(1, 10), 8);
        // Handing rolled-back takes back makes them the next to commit past.
        let mut st = ConsumerState::default();
        st.outstanding.entry(2).or_default().insert(4);
        give_back(
            &mut st,
            vec![Taken {
                generation: 1,
                partition: 2,
                offset: 4,
                event: Event::new("z"),
            }],
        );
        // Without a group the generation cannot match, so nothing is queued again.
        assert!(st.redeliver.is_empty());
    }
}
