//! The Kafka source (`org.apache.flume.source.kafka.KafkaSource`; no alias), on
//! `sluice-client`'s group membership. It also holds the consumer pieces the Kafka channel
//! shares: settings from `kafka.consumer.*` and [`GroupConsumer`] (join, starting positions,
//! fetch, rebalance, commit).
//!
//! Keys and defaults, as Flume 1.11: `kafka.bootstrap.servers` (required),
//! `kafka.topics` (comma list) or `kafka.topics.regex` (wins when both are set; matched
//! against the broker's topic list every `kafka.consumer.metadata.max.age.ms`, 300000),
//! `kafka.consumer.group.id` flume (deprecated `groupId`, and `topic` for `kafka.topics`,
//! are read too), `batchSize` 1000, `batchDurationMillis` 1000, `useFlumeEventFormat` false
//! (true: values are bare Avro `AvroFlumeEvent` datums and their headers are kept),
//! `setTopicHeader` true, `topicHeader` topic, `header.NAME = KAFKANAME` (Kafka header
//! KAFKANAME becomes Flume header NAME).
//!
//! Headers, as Flume: `timestamp` (the record's timestamp), the topic header, `partition`
//! and `offset` are added only when the event does not have them already; `key` is set
//! whenever the record has a key.
//!
//! A batch ends when it holds `batchSize` events or `batchDurationMillis` has passed since
//! it began (fetches long-poll for the time left). It goes to the channels in one
//! `processEventBatch`; only after that succeeds are the offsets committed to the group
//! (at-least-once). When the channels refuse it, the same batch is offered again after a
//! back-off (1 s more each time, at most 5 s), as Flume keeps its event list; when the
//! agent stops meanwhile, the batch is dropped uncommitted and read again on restart. A
//! record that `useFlumeEventFormat` cannot decode is skipped with an error, as Flume's
//! iterator moves past it. Rebalances are handled between batches (the heartbeat runs in
//! the background meanwhile).
//!
//! `kafka.consumer.*` passthrough: `auto.offset.reset` (latest, as Kafka's consumer
//! default; earliest; none), `session.timeout.ms`, `heartbeat.interval.ms`,
//! `max.poll.interval.ms` (the rebalance timeout), `max.partition.fetch.bytes`,
//! `metadata.max.age.ms`, `client.id`, `request.timeout.ms`, `retry.backoff.ms`,
//! `isolation.level` (read_uncommitted, Kafka's default; read_committed: reads stop at the
//! last stable offset, records of aborted transactions are never delivered, and `latest`
//! resets go to the last stable offset) are honoured; `enable.auto.commit` (forced off, as Flume), the deserializers and fetch-size
//! tuning are accepted without effect; the security keys (`security.protocol`, `sasl.*`,
//! `ssl.*`) go to `sluice-client` as for the sink; anything else is ignored with one
//! warning.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use regex::Regex;
use sluice_client::{
    Client, ClientConfig, CommitOffset, FetchPosition, FetchedRecord, GroupConfig, GroupMember,
    IsolationLevel, OffsetSpec, ResponseError,
};

use super::{Source, SourceContext};
use crate::conf::{ConfigError, Context};
use crate::event::{Event, Headers};
use crate::sink::kafka::{bootstrap, client_config, is_security_key, KEY_HEADER};

/// Flume's `DEFAULT_BATCH_SIZE` for the source.
pub const DEFAULT_BATCH_SIZE: usize = 1000;
/// Flume's `DEFAULT_BATCH_DURATION` (ms).
pub const DEFAULT_BATCH_DURATION_MS: u64 = 1000;
/// Flume's `DEFAULT_GROUP_ID`.
pub const DEFAULT_GROUP_ID: &str = "flume";
/// Kafka's `max.partition.fetch.bytes` default.
const DEFAULT_MAX_PARTITION_FETCH_BYTES: i32 = 1024 * 1024;
/// Kafka's `metadata.max.age.ms` default.
const DEFAULT_METADATA_MAX_AGE: Duration = Duration::from_secs(300);
/// How often partition counts are checked while this member has no partitions at all (a
/// subscribed topic that does not exist yet).
const EMPTY_ASSIGNMENT_RECHECK: Duration = Duration::from_secs(1);
/// Pollable sources' back-off step and cap (Flume's `backoffSleepIncrement`,
/// `maxBackoffSleep`).
const BACKOFF_STEP: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Consumer keys that need nothing from us.
const CONSUMER_NO_EFFECT: &[&str] = &[
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "key.deserializer",
    "value.deserializer",
    "fetch.min.bytes",
    "fetch.max.bytes",
    "fetch.max.wait.ms",
    "max.poll.records",
    "partition.assignment.strategy",
    "allow.auto.create.topics",
    "receive.buffer.bytes",
    "send.buffer.bytes",
];

/// `auto.offset.reset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reset {
    /// The log start offset.
    Earliest,
    /// The high watermark.
    Latest,
    /// No position: an error (Kafka's `NoOffsetForPartitionException`).
    None,
}

/// Consumer settings from `kafka.consumer.*`.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerSettings {
    /// Connection settings.
    pub(crate) client: ClientConfig,
    /// `group.id`.
    pub(crate) group_id: String,
    /// `auto.offset.reset`.
    pub(crate) reset: Reset,
    session_timeout: Option<Duration>,
    heartbeat_interval: Option<Duration>,
    rebalance_timeout: Option<Duration>,
    /// `max.partition.fetch.bytes`.
    pub(crate) max_partition_fetch_bytes: i32,
    /// `metadata.max.age.ms`: how often subscriptions and partition counts are checked.
    pub(crate) metadata_max_age: Duration,
    /// `isolation.level`. The Kafka channel's consumer shares the producer's client, so the
    /// level goes with each fetch rather than with the client.
    pub(crate) isolation: IsolationLevel,
}

fn opt_ms(ctx: &Context, key: &str) -> Result<Option<Duration>, ConfigError> {
    match ctx.get(key) {
        None => Ok(None),
        Some(_) => Ok(Some(Duration::from_millis(ctx.parse::<u64>(key, 0)?))),
    }
}

/// Reads `kafka.consumer.*` of `ctx`.
pub(crate) fn consumer_settings(
    component: &str,
    ctx: &Context,
    bootstrap: &str,
    group_id: String,
    default_reset: &str,
) -> Result<ConsumerSettings, ConfigError> {
    let c = ctx.sub("kafka.consumer.");
    let client = client_config(&c, bootstrap, &format!("sluice-flume-{component}"))?;
    let reset = match c
        .string("auto.offset.reset", default_reset)
        .trim()
        .to_ascii_lowercase()
        .as_str()
    {
        "earliest" => Reset::Earliest,
        "latest" => Reset::Latest,
        "none" => Reset::None,
        other => {
            return Err(c.error(
                "auto.offset.reset",
                &format!("{other:?} is not earliest, latest or none"),
            ))
        }
    };
    let max_partition_fetch_bytes: i32 = c.parse(
        "max.partition.fetch.bytes",
        DEFAULT_MAX_PARTITION_FETCH_BYTES,
    )?;
    if max_partition_fetch_bytes <= 0 {
        return Err(c.error("max.partition.fetch.bytes", "must be greater than 0"));
    }
    let isolation: IsolationLevel = c
        .string("isolation.level", "read_uncommitted")
        .parse()
        .map_err(|e: String| c.error("isolation.level", &e))?;
    const HONOURED: &[&str] = &[
        "group.id",
        "auto.offset.reset",
        "session.timeout.ms",
        "heartbeat.interval.ms",
        "max.poll.interval.ms",
        "max.partition.fetch.bytes",
        "metadata.max.age.ms",
        "isolation.level",
        "client.id",
        "request.timeout.ms",
        "retries",
        "retry.backoff.ms",
        "retry.backoff.max.ms",
        "connections.max.idle.ms",
        "bootstrap.servers",
    ];
    for (k, _) in c.iter() {
        if !HONOURED.contains(&k) && !CONSUMER_NO_EFFECT.contains(&k) && !is_security_key(k) {
            tracing::warn!(
                "{component}: {}{k} is not supported by sluice-flume and is ignored",
                c.prefix()
            );
        }
    }
    Ok(ConsumerSettings {
        client,
        group_id,
        reset,
        session_timeout: opt_ms(&c, "session.timeout.ms")?,
        heartbeat_interval: opt_ms(&c, "heartbeat.interval.ms")?,
        rebalance_timeout: opt_ms(&c, "max.poll.interval.ms")?,
        max_partition_fetch_bytes,
        metadata_max_age: opt_ms(&c, "metadata.max.age.ms")?.unwrap_or(DEFAULT_METADATA_MAX_AGE),
        isolation,
    })
}

impl ConsumerSettings {
    fn group_config(&self, topics: Vec<String>) -> GroupConfig {
        let mut g = GroupConfig::new(self.group_id.clone(), topics);
        if let Some(d) = self.session_timeout {
            g.session_timeout = d;
        }
        if let Some(d) = self.heartbeat_interval {
            g.heartbeat_interval = d;
        }
        if let Some(d) = self.rebalance_timeout {
            g.rebalance_timeout = d;
        }
        g
    }
}

/// A topic-partition.
pub(crate) type Tp = (String, i32);

/// A group member with fetch positions for its partitions.
pub(crate) struct GroupConsumer {
    client: Client,
    member: GroupMember,
    settings: ConsumerSettings,
    positions: BTreeMap<Tp, i64>,
    /// Partition count per subscribed topic when the assignment was made.
    counts: BTreeMap<String, usize>,
    checked: Instant,
    who: String,
}

impl GroupConsumer {
    /// Joins the group subscribed to `topics` and sets the starting positions.
    pub(crate) async fn join(
        who: &str,
        client: Client,
        settings: ConsumerSettings,
        topics: Vec<String>,
    ) -> Result<GroupConsumer, String> {
        // Look the topics up first: the lookup creates missing ones where the broker
        // auto-creates topics, as the Java consumer's metadata requests do.
        for t in &topics {
            if let Err(e) = client.partitions(t).await {
                tracing::debug!("{who}: topic {t}: {e}");
            }
        }
        let member = client
            .join_group(settings.group_config(topics))
            .await
            .map_err(|e| format!("joining group {}: {e}", settings.group_id))?;
        let mut c = GroupConsumer {
            client,
            member,
            settings,
            positions: BTreeMap::new(),
            counts: BTreeMap::new(),
            checked: Instant::now(),
            who: who.to_string(),
        };
        c.after_join().await?;
        Ok(c)
    }

    /// The client.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The current generation id (commits from an older one are refused by the group).
    pub(crate) fn generation(&self) -> i32 {
        self.member.generation().generation_id
    }

    /// The partitions held.
    pub(crate) fn assigned(&self) -> Vec<Tp> {
        self.member
            .assignment()
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
            .collect()
    }

    async fn after_join(&mut self) -> Result<(), String> {
        let assigned = self.assigned();
        for (t, p) in &assigned {
            tracing::info!("{}: topic {t} - partition {p} assigned", self.who);
        }
        self.positions =
            start_positions(&self.client, &self.settings, &assigned, &self.who).await?;
        self.counts.clear();
        for t in self.member.topics().to_vec() {
            let n = self
                .client
                .partitions(&t)
                .await
                .map(|p| p.len())
                .unwrap_or(0);
            self.counts.insert(t, n);
        }
        self.checked = Instant::now();
        Ok(())
    }

    /// Whether a rebalance is pending (call [`Self::rebalance`] after committing).
    pub(crate) fn needs_rejoin(&self) -> bool {
        self.member.needs_rejoin()
    }

    /// Replaces the subscription (a regex matched new topics); takes effect at the next
    /// rebalance.
    pub(crate) fn set_topics(&mut self, topics: Vec<String>) {
        self.member.set_topics(topics);
    }

    /// The subscription.
    pub(crate) fn topics(&self) -> Vec<String> {
        self.member.topics().to_vec()
    }

    /// Rejoins when a rebalance is pending, committing `offsets` first. Returns whether
    /// the assignment changed hands (every buffered record must then be dropped).
    pub(crate) async fn rebalance(&mut self, offsets: &[CommitOffset]) -> Result<bool, String> {
        if !self.member.needs_rejoin() {
            return Ok(false);
        }
        if !offsets.is_empty() {
            if let Err(e) = self.member.commit(offsets).await {
                tracing::warn!("{}: committing before the rebalance failed (those records will be read again): {e}", self.who);
            }
        }
        for (t, p) in self.assigned() {
            tracing::info!("{}: topic {t} - partition {p} revoked", self.who);
        }
        self.positions.clear();
        self.member
            .poll()
            .await
            .map_err(|e| format!("rejoining group {}: {e}", self.settings.group_id))?;
        self.after_join().await?;
        Ok(true)
    }

    /// The next offset to fetch for `tp`, when it is held.
    pub(crate) fn position(&self, tp: &Tp) -> Option<i64> {
        self.positions.get(tp).copied()
    }

    /// Moves the fetch position of `tp` (records from `offset` on will be fetched again).
    pub(crate) fn seek(&mut self, tp: &Tp, offset: i64) {
        if let Some(p) = self.positions.get_mut(tp) {
            *p = offset;
        }
    }

    /// Requests a rebalance when a subscribed topic's partition count changed since the
    /// assignment (Kafka's leader does this on its metadata refresh).
    async fn check_partition_counts(&mut self) {
        let every = if self.positions.is_empty() {
            EMPTY_ASSIGNMENT_RECHECK.min(self.settings.metadata_max_age)
        } else {
            self.settings.metadata_max_age
        };
        if self.checked.elapsed() < every {
            return;
        }
        self.checked = Instant::now();
        for t in self.member.topics().to_vec() {
            let _ = self.client.refresh_metadata(&[t.as_str()]).await;
            let n = self
                .client
                .partitions(&t)
                .await
                .map(|p| p.len())
                .unwrap_or(0);
            if self.counts.get(&t).copied().unwrap_or(0) != n {
                tracing::info!(
                    "{}: topic {t} now has {n} partitions; rebalancing",
                    self.who
                );
                self.member.request_rejoin();
                return;
            }
        }
    }

    /// Fetches from every held partition, waiting up to `max_wait` for data. Positions
    /// move past what is returned. A position out of range is reset per
    /// `auto.offset.reset`. Fails only when every partition failed.
    pub(crate) async fn fetch(
        &mut self,
        max_wait: Duration,
    ) -> Result<Vec<(Tp, FetchedRecord)>, String> {
        self.check_partition_counts().await;
        if self.positions.is_empty() {
            // Nothing assigned (yet): wait like an empty poll would, or until a rebalance.
            tokio::select! {
                _ = tokio::time::sleep(max_wait) => {}
                _ = self.member.rebalance_needed() => {}
            }
            return Ok(Vec::new());
        }
        let wanted: Vec<FetchPosition> = self
            .positions
            .iter()
            .map(|((t, p), o)| FetchPosition {
                topic: t.clone(),
                partition: *p,
                offset: *o,
            })
            .collect();
        let results = self
            .client
            .fetch_many_isolated(
                &wanted,
                self.settings.max_partition_fetch_bytes,
                max_wait,
                self.settings.isolation,
            )
            .await;
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for (pos, r) in wanted.iter().zip(results) {
            let tp = (pos.topic.clone(), pos.partition);
            match r {
                Ok(f) => {
                    if let Some(p) = self.positions.get_mut(&tp) {
                        *p = f.next_offset;
                    }
                    out.extend(f.records.into_iter().map(|r| (tp.clone(), r)));
                }
                Err(e) if e.kafka_error() == Some(ResponseError::OffsetOutOfRange) => {
                    match reset_position(&self.client, &self.settings, &tp).await {
                        Ok(Some(o)) => {
                            tracing::warn!(
                                "{}: offset {} of {}-{} is out of range; resetting to {o} (auto.offset.reset)",
                                self.who,
                                pos.offset,
                                tp.0,
                                tp.1
                            );
                            self.seek(&tp, o);
                        }
                        Ok(None) => errors.push(format!(
                            "offset {} of {}-{} is out of range and auto.offset.reset is none",
                            pos.offset, tp.0, tp.1
                        )),
                        Err(e) => errors.push(e),
                    }
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        if !errors.is_empty() {
            if out.is_empty() && errors.len() == wanted.len() {
                return Err(errors.join("; "));
            }
            tracing::warn!("{}: fetch: {}", self.who, errors.join("; "));
        }
        Ok(out)
    }

    /// Commits `offsets` as this member.
    pub(crate) async fn commit(&self, offsets: &[CommitOffset]) -> Result<(), String> {
        if offsets.is_empty() {
            return Ok(());
        }
        self.member.commit(offsets).await.map_err(|e| e.to_string())
    }

    /// Leaves the group.
    pub(crate) async fn leave(self) {
        if let Err(e) = self.member.leave().await {
            tracing::debug!("{}: leaving the group: {e}", self.who);
        }
    }
}

/// Where `tp` starts per `auto.offset.reset` (`None` for `none`). At read_committed,
/// `latest` is the last stable offset, as Kafka's consumer resets.
async fn reset_position(
    client: &Client,
    settings: &ConsumerSettings,
    tp: &Tp,
) -> Result<Option<i64>, String> {
    let spec = match settings.reset {
        Reset::Earliest => OffsetSpec::Earliest,
        Reset::Latest => OffsetSpec::Latest,
        Reset::None => return Ok(None),
    };
    client
        .list_offsets_many_isolated(std::slice::from_ref(tp), spec, settings.isolation)
        .await
        .pop()
        .unwrap_or(Ok(None))
        .map(|o| o.or(Some(0)))
        .map_err(|e| format!("looking up the {spec:?} offset of {}-{}: {e}", tp.0, tp.1))
}

/// Committed offsets of `partitions`, else `auto.offset.reset`'s. Partitions with neither
/// (`none`) are left out, with an error in the log, as Kafka's consumer throws.
async fn start_positions(
    client: &Client,
    settings: &ConsumerSettings,
    partitions: &[Tp],
    who: &str,
) -> Result<BTreeMap<Tp, i64>, String> {
    let mut out = BTreeMap::new();
    if partitions.is_empty() {
        return Ok(out);
    }
    let committed = client
        .fetch_committed(&settings.group_id, partitions)
        .await
        .map_err(|e| {
            format!(
                "reading the committed offsets of group {}: {e}",
                settings.group_id
            )
        })?;
    for c in committed {
        let tp = (c.topic.clone(), c.partition);
        match c.offset {
            Some(o) if o >= 0 => {
                out.insert(tp, o);
            }
            _ => match reset_position(client, settings, &tp).await? {
                Some(o) => {
                    out.insert(tp, o);
                }
                None => tracing::error!(
                    "{who}: no committed offset for {}-{} in group {} and auto.offset.reset is none; not reading it",
                    tp.0,
                    tp.1,
                    settings.group_id
                ),
            },
        }
    }
    Ok(out)
}

/// How the source picks its topics.
#[derive(Debug, Clone)]
enum Subscription {
    Topics(Vec<String>),
    Pattern(Regex),
}

/// Build the source.
pub fn build(name: &str, ctx: &Context) -> Result<Box<dyn Source>, ConfigError> {
    Ok(Box::new(configure(name, ctx)?))
}

fn configure(name: &str, ctx: &Context) -> Result<KafkaSource, ConfigError> {
    let who = format!("Kafka source {name}");
    let subscription = match ctx.get("kafka.topics.regex").filter(|r| !r.is_empty()) {
        Some(r) => Subscription::Pattern(
            Regex::new(&format!("^(?:{r})$"))
                .map_err(|e| ctx.error("kafka.topics.regex", &format!("not a valid regex: {e}")))?,
        ),
        None => {
            let list = match ctx.get("kafka.topics").filter(|t| !t.is_empty()) {
                Some(t) => t,
                None => match ctx.get("topic").filter(|t| !t.is_empty()) {
                    Some(t) => {
                        tracing::warn!("{who}: topic is deprecated; use kafka.topics");
                        t
                    }
                    None => {
                        return Err(
                            ctx.error("kafka.topics", "At least one Kafka topic must be specified")
                        )
                    }
                },
            };
            let topics: Vec<String> = list
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect();
            if topics.is_empty() {
                return Err(ctx.error("kafka.topics", "At least one Kafka topic must be specified"));
            }
            Subscription::Topics(topics)
        }
    };
    let batch: i64 = ctx.parse("batchSize", DEFAULT_BATCH_SIZE as i64)?;
    let batch = usize::try_from(batch)
        .ok()
        .filter(|b| *b > 0)
        .ok_or_else(|| ctx.error("batchSize", "must be greater than 0"))?;
    let duration: u64 = ctx.parse("batchDurationMillis", DEFAULT_BATCH_DURATION_MS)?;
    let bootstrap = bootstrap(&who, ctx)?;
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
    let settings = consumer_settings(&who, ctx, &bootstrap, group_id, "latest")?;
    Ok(KafkaSource {
        who,
        settings,
        subscription,
        batch,
        duration: Duration::from_millis(duration),
        use_avro: ctx.bool("useFlumeEventFormat", false)?,
        set_topic_header: ctx.bool("setTopicHeader", true)?,
        topic_header: ctx.string("topicHeader", "topic"),
        header_map: ctx
            .sub("header.")
            .iter()
            .map(|(k, p)| (k.to_string(), p.value.clone()))
            .collect(),
    })
}

struct KafkaSource {
    who: String,
    settings: ConsumerSettings,
    subscription: Subscription,
    batch: usize,
    duration: Duration,
    use_avro: bool,
    set_topic_header: bool,
    topic_header: String,
    header_map: Vec<(String, String)>,
}

impl KafkaSource {
    /// The event for one record (Flume's per-message part of `doProcess`).
    fn event(&self, tp: &Tp, r: &FetchedRecord) -> Result<Event, String> {
        let value = r.value.clone().unwrap_or_default();
        let (mut headers, body) = if self.use_avro {
            let e = sluice_flume_rpc::decode_event(&value).map_err(|e| {
                format!(
                    "record {}-{} offset {} is not an Avro FlumeEvent (useFlumeEventFormat is true): {e}",
                    tp.0, tp.1, r.offset
                )
            })?;
            (e.headers, e.body)
        } else {
            (Headers::new(), value)
        };
        headers
            .entry("timestamp".to_string())
            .or_insert_with(|| r.timestamp.to_string());
        for (flume, kafka) in &self.header_map {
            for h in r.headers.iter().filter(|h| &h.key == kafka) {
                let v = h.value.as_deref().unwrap_or(&[]);
                headers.insert(flume.clone(), String::from_utf8_lossy(v).into_owned());
            }
        }
        if self.set_topic_header {
            headers
                .entry(self.topic_header.clone())
                .or_insert_with(|| tp.0.clone());
        }
        headers
            .entry("partition".to_string())
            .or_insert_with(|| tp.1.to_string());
        headers
            .entry("offset".to_string())
            .or_insert_with(|| r.offset.to_string());
        if let Some(k) = &r.key {
            headers.insert(
                KEY_HEADER.to_string(),
                String::from_utf8_lossy(k).into_owned(),
            );
        }
        Ok(Event {
            headers,
            body: Bytes::clone(&body),
        })
    }

    async fn topics(&self, client: &Client) -> Result<Vec<String>, String> {
        match &self.subscription {
            Subscription::Topics(t) => Ok(t.clone()),
            Subscription::Pattern(re) => Ok(client
                .topics()
                .await
                .map_err(|e| format!("listing topics: {e}"))?
                .into_iter()
                .filter(|t| re.is_match(t))
                .collect()),
        }
    }

    /// Connects and joins, retrying with back-off until it works or the agent stops.
    async fn connect(&self, ctx: &SourceContext) -> Option<GroupConsumer> {
        let mut backoff = Duration::ZERO;
        loop {
            if ctx.shutdown.is_cancelled() {
                return None;
            }
            let attempt = async {
                let client = Client::connect(self.settings.client.clone())
                    .await
                    .map_err(|e| format!("cannot connect to Kafka: {e}"))?;
                let topics = self.topics(&client).await?;
                GroupConsumer::join(&self.who, client, self.settings.clone(), topics).await
            };
            let result = tokio::select! {
                _ = ctx.shutdown.cancelled() => return None,
                r = attempt => r,
            };
            match result {
                Ok(c) => return Some(c),
                Err(e) => {
                    backoff = (backoff + BACKOFF_STEP).min(MAX_BACKOFF);
                    tracing::error!("{}: {e}; retrying in {backoff:?}", self.who);
                    ctx.counters.inc("EventReadFail");
                    tokio::select! {
                        _ = ctx.shutdown.cancelled() => return None,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                }
            }
        }
    }
}

fn commits(offsets: &BTreeMap<Tp, i64>) -> Vec<CommitOffset> {
    offsets
        .iter()
        .map(|((t, p), o)| CommitOffset::new(t.clone(), *p, *o))
        .collect()
}

#[async_trait]
impl Source for KafkaSource {
    fn batch_size(&self) -> Option<usize> {
        Some(self.batch)
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> anyhow::Result<()> {
        let Some(mut consumer) = self.connect(&ctx).await else {
            return Ok(());
        };
        tracing::info!(
            "{} started (group {}, topics {:?})",
            self.who,
            self.settings.group_id,
            consumer.topics()
        );
        // Offsets delivered to the channels but not yet committed (a commit failed).
        let mut pending: BTreeMap<Tp, i64> = BTreeMap::new();
        let mut last_topic_check = Instant::now();
        let mut backoff = Duration::ZERO;
        while !ctx.shutdown.is_cancelled() {
            if matches!(self.subscription, Subscription::Pattern(_))
                && last_topic_check.elapsed() >= self.settings.metadata_max_age
            {
                last_topic_check = Instant::now();
                match self.topics(consumer.client()).await {
                    Ok(t) if t != consumer.topics() => {
                        tracing::info!(
                            "{}: the topics matching the pattern are now {t:?}",
                            self.who
                        );
                        consumer.set_topics(t);
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!("{}: {e}", self.who),
                }
            }
            if consumer.needs_rejoin() {
                match consumer.rebalance(&commits(&pending)).await {
                    Ok(_) => pending.clear(),
                    Err(e) => {
                        backoff = (backoff + BACKOFF_STEP).min(MAX_BACKOFF);
                        tracing::error!("{}: {e}; retrying in {backoff:?}", self.who);
                        tokio::select! {
                            _ = ctx.shutdown.cancelled() => break,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        continue;
                    }
                }
            }

            // Collect one batch.
            let deadline = Instant::now() + self.duration;
            let mut events: Vec<Event> = Vec::new();
            let mut offsets: BTreeMap<Tp, i64> = BTreeMap::new();
            let mut failed = false;
            while events.len() < self.batch && !consumer.needs_rejoin() {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                let fetched = tokio::select! {
                    _ = ctx.shutdown.cancelled() => break,
                    r = consumer.fetch(left) => r,
                };
                let records = match fetched {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!("{}: {e}", self.who);
                        ctx.counters.inc("EventReadFail");
                        failed = true;
                        break;
                    }
                };
                let mut rewound: BTreeSet<Tp> = BTreeSet::new();
                for (tp, r) in records {
                    if events.len() >= self.batch {
                        // The batch is full: read the rest again next time.
                        if rewound.insert(tp.clone()) {
                            consumer.seek(&tp, r.offset);
                        }
                        continue;
                    }
                    offsets.insert(tp.clone(), r.offset + 1);
                    match self.event(&tp, &r) {
                        Ok(e) => events.push(e),
                        Err(e) => {
                            tracing::error!("{}: {e}; skipping it", self.who);
                            ctx.counters.inc("EventReadFail");
                        }
                    }
                }
            }
            if events.is_empty() {
                pending.extend(offsets);
                if failed {
                    backoff = (backoff + BACKOFF_STEP).min(MAX_BACKOFF);
                    tokio::select! {
                        _ = ctx.shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                }
                continue;
            }

            // Hand it to the channels; the same batch again until they take it.
            let mut delivered = false;
            let mut retry = Duration::ZERO;
            loop {
                match ctx.processor.process_event_batch(events.clone()).await {
                    Ok(()) => {
                        delivered = true;
                        break;
                    }
                    Err(e) => {
                        retry = (retry + BACKOFF_STEP).min(MAX_BACKOFF);
                        tracing::warn!(
                            "{}: the channels refused a batch of {} events: {e}; offering it again in {retry:?}",
                            self.who,
                            events.len()
                        );
                        tokio::select! {
                            _ = ctx.shutdown.cancelled() => break,
                            _ = tokio::time::sleep(retry) => {}
                        }
                    }
                }
            }
            if !delivered {
                tracing::info!(
                    "{}: stopping with a batch of {} events not delivered; it is read again at the next start",
                    self.who,
                    events.len()
                );
                break;
            }
            backoff = Duration::ZERO;
            pending.extend(offsets);
            match consumer.commit(&commits(&pending)).await {
                Ok(()) => pending.clear(),
                Err(e) => tracing::warn!(
                    "{}: committing offsets failed (retried with the next batch; a rebalance meanwhile re-reads them): {e}",
                    self.who
                ),
            }
        }
        if !pending.is_empty() {
            if let Err(e) = consumer.commit(&commits(&pending)).await {
                tracing::warn!("{}: final offset commit failed: {e}", self.who);
            }
        }
        consumer.leave().await;
        tracing::info!("{} stopped", self.who);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_client::{Header, TimestampType};

    fn source(pairs: &[(&str, &str)]) -> KafkaSource {
        let mut all = vec![("kafka.bootstrap.servers", "127.0.0.1:1")];
        all.extend_from_slice(pairs);
        configure("r1", &Context::from_pairs("a1.sources.r1.", all)).unwrap()
    }

    fn record(key: Option<&str>, value: &[u8]) -> FetchedRecord {
        FetchedRecord {
            offset: 42,
            timestamp: 1700,
            timestamp_type: TimestampType::Creation,
            key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
            value: Some(Bytes::copy_from_slice(value)),
            headers: vec![Header {
                key: "X-Trace".into(),
                value: Some(Bytes::from_static(b"t1")),
            }],
        }
    }

    #[test]
    fn headers_as_flume_sets_them() {
        let s = source(&[("kafka.topics", "a, b"), ("header.trace", "X-Trace")]);
        let tp = ("a".to_string(), 3);
        let e = s.event(&tp, &record(Some("k"), b"hello")).unwrap();
        assert_eq!(e.body, "hello");
        let h = |k: &str| e.headers.get(k).map(String::as_str);
        assert_eq!(h("timestamp"), Some("1700"));
        assert_eq!(h("topic"), Some("a"));
        assert_eq!(h("partition"), Some("3"));
        assert_eq!(h("offset"), Some("42"));
        assert_eq!(h("key"), Some("k"));
        assert_eq!(h("trace"), Some("t1"));
        assert!(matches!(&s.subscription, Subscription::Topics(t) if t == &["a", "b"]));
        assert_eq!(s.settings.reset, Reset::Latest);
        assert_eq!(s.settings.group_id, "flume");
    }

    #[test]
    fn flume_event_format_keeps_existing_headers() {
        let s = source(&[
            ("kafka.topics", "a"),
            ("useFlumeEventFormat", "true"),
            ("topicHeader", "t"),
        ]);
        let inner = Event::new("body")
            .with_header("timestamp", "5")
            .with_header("t", "orig");
        let v = sluice_flume_rpc::encode_event(&inner);
        let e = s.event(&("a".into(), 0), &record(None, &v)).unwrap();
        assert_eq!(e.body, "body");
        assert_eq!(e.headers["timestamp"], "5");
        assert_eq!(e.headers["t"], "orig");
        assert_eq!(e.headers["offset"], "42");
        assert!(!e.headers.contains_key("key"));
        assert!(s
            .event(&("a".into(), 0), &record(None, b"\xff\xff plain"))
            .is_err());

        let s = source(&[("kafka.topics", "a"), ("setTopicHeader", "false")]);
        let e = s.event(&("a".into(), 0), &record(None, b"x")).unwrap();
        assert!(!e.headers.contains_key("topic"));
    }

    #[test]
    fn config_keys() {
        let s = source(&[
            ("kafka.topics", "a"),
            ("kafka.topics.regex", "app-.*"),
            ("batchSize", "5"),
            ("kafka.consumer.group.id", "g"),
            ("kafka.consumer.auto.offset.reset", "earliest"),
        ]);
        assert!(
            matches!(&s.subscription, Subscription::Pattern(r) if r.is_match("app-1") && !r.is_match("xapp-1"))
        );
        assert_eq!(s.batch_size(), Some(5));
        assert_eq!(s.settings.group_id, "g");
        assert_eq!(s.settings.reset, Reset::Earliest);
        assert_eq!(s.settings.isolation, IsolationLevel::ReadUncommitted);
        let s = source(&[
            ("kafka.topics", "a"),
            ("kafka.consumer.isolation.level", "read_committed"),
        ]);
        assert_eq!(s.settings.isolation, IsolationLevel::ReadCommitted);
        let ctx = Context::from_pairs(
            "a1.sources.r1.",
            [
                ("kafka.bootstrap.servers", "h:1"),
                ("kafka.topics", "a"),
                ("kafka.consumer.isolation.level", "committed"),
            ],
        );
        let err = configure("r1", &ctx).err().unwrap();
        assert!(err.to_string().contains("isolation.level"), "{err}");

        let ctx = Context::from_pairs("a1.sources.r1.", [("kafka.bootstrap.servers", "h:1")]);
        let err = configure("r1", &ctx).err().unwrap();
        assert!(
            err.to_string().contains("a1.sources.r1.kafka.topics"),
            "{err}"
        );
        let ctx = Context::from_pairs(
            "a1.sources.r1.",
            [
                ("kafka.bootstrap.servers", "h:1"),
                ("kafka.topics", "a"),
                ("kafka.consumer.auto.offset.reset", "smallest"),
            ],
        );
        assert!(configure("r1", &ctx).is_err());
        let ctx = Context::from_pairs("a1.sources.r1.", [("kafka.topics", "a")]);
        assert!(configure("r1", &ctx).is_err());
    }
}
