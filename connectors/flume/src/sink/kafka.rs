//! The Kafka sink (`org.apache.flume.sink.kafka.KafkaSink`; no alias), on `sluice-client`.
//! It also holds the producer pieces the Kafka channel shares: settings from
//! `kafka.producer.*`, the lazily connected client, Kafka's default partitioner.
//!
//! Keys and defaults, as Flume 1.11: `kafka.bootstrap.servers` (required; the deprecated
//! `brokerList` is read when it is absent), `kafka.topic` default-flume-topic (deprecated
//! `topic`), `flumeBatchSize` 100 (deprecated `batchSize`), `kafka.producer.acks` 1
//! (deprecated `requiredAcks`), `useFlumeEventFormat` false (true: the value is the bare
//! Avro `AvroFlumeEvent` datum with the headers), `allowTopicOverride` true, `topicHeader`
//! topic, `defaultPartitionId`, `partitionIdHeader`, `timestampHeader` (epoch ms from that
//! header becomes the record timestamp; a bad value is logged and ignored), and
//! `header.NAME = KAFKANAME` (Flume header NAME is copied into Kafka header KAFKANAME).
//!
//! Per event: the topic is the `topicHeader` header when override is allowed and the header
//! is present, else `kafka.topic` with Flume's `%{header}` (and other `BucketPath`) escapes
//! applied — but only when override is allowed, exactly as Flume; the key is the `key`
//! header; the partition is `partitionIdHeader`'s value, else `defaultPartitionId`, else
//! Kafka's default partitioner (murmur2 of the key; without a key one partition per topic
//! per batch, rotating, like Kafka's sticky partitioner).
//!
//! `process()` takes up to `flumeBatchSize` events, sends them as one produce request per
//! leader (one record batch per partition), waits for the acknowledgements, and only then
//! commits the channel transaction; any failure rolls back (the batch is redelivered, so
//! records already acknowledged may be written twice: at-least-once, as Flume). A bad
//! `partitionIdHeader` value or an escape that needs a missing `timestamp` header fails
//! the whole batch every time, as in Flume (a poison pill).
//!
//! `kafka.producer.*` passthrough: `acks`, `compression.type` (none, gzip, snappy, lz4,
//! zstd), `client.id`, `request.timeout.ms`, `retries`, `retry.backoff.ms`,
//! `retry.backoff.max.ms`, `metadata.max.age.ms` and `connections.max.idle.ms` are honoured;
//! `linger.ms`, `batch.size`, `buffer.memory`, `max.in.flight.requests.per.connection`,
//! `key.serializer` and `value.serializer` are accepted without effect (every batch is sent
//! at once and waited for, as Flume's `flush()` forces); the security keys go to
//! `sluice-client` (`security.protocol`, `sasl.mechanism`, `sasl.jaas.config`,
//! `ssl.truststore.*`, `ssl.keystore.*`, `ssl.endpoint.identification.algorithm` and the
//! rest of `sluice_client::SECURITY_KEYS`, plus Flume's
//! `ssl.disableTLSHostnameVerification`; see [`security`]); anything else is ignored with
//! one warning.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use sluice_client::partitioner::partition_for_key;
use sluice_client::{
    Acks, Client, ClientConfig, Compression, ProduceBatch, ProduceOptions, ProduceRecord, Security,
};

use super::hdfs::escape::{EscapeSettings, Template};
use super::{take_batch, Sink, Status};
use crate::channel::Channel;
use crate::conf::{ConfigError, Context};
use crate::counters::{Counters, Kind};
use crate::event::Event;

/// Flume's `DEFAULT_TOPIC` for the sink.
pub const DEFAULT_TOPIC: &str = "default-flume-topic";
/// Flume's `DEFAULT_BATCH_SIZE` for the sink.
pub const DEFAULT_BATCH_SIZE: usize = 100;
/// The Flume header that becomes the Kafka key (and that the source and channel fill).
pub const KEY_HEADER: &str = "key";
/// Kafka's `metadata.max.age.ms` default: partition counts are looked up again after it.
const DEFAULT_METADATA_MAX_AGE: Duration = Duration::from_secs(300);

/// Producer keys that need nothing from us: batching and lingering are moot when every
/// batch is sent at once, and values are bytes.
const PRODUCER_NO_EFFECT: &[&str] = &[
    "linger.ms",
    "batch.size",
    "buffer.memory",
    "max.in.flight.requests.per.connection",
    "key.serializer",
    "value.serializer",
    "enable.idempotence",
    "delivery.timeout.ms",
    "max.request.size",
    "partitioner.class",
];

/// Producer settings from `kafka.producer.*` (plus the component's own keys).
#[derive(Debug, Clone)]
pub(crate) struct ProducerSettings {
    /// Connection settings.
    pub(crate) client: ClientConfig,
    /// Acks, compression, broker-side timeout.
    pub(crate) options: ProduceOptions,
    /// How long partition counts are trusted.
    pub(crate) metadata_max_age: Duration,
}

/// `kafka.bootstrap.servers`, else the deprecated `brokerList` (with a warning).
pub(crate) fn bootstrap(component: &str, ctx: &Context) -> Result<String, ConfigError> {
    if let Some(v) = ctx
        .get("kafka.bootstrap.servers")
        .filter(|v| !v.trim().is_empty())
    {
        return Ok(v.trim().to_string());
    }
    if let Some(v) = ctx.get("brokerList").filter(|v| !v.trim().is_empty()) {
        tracing::warn!("{component}: brokerList is deprecated; use kafka.bootstrap.servers");
        return Ok(v.trim().to_string());
    }
    Err(ctx.error(
        "kafka.bootstrap.servers",
        "Bootstrap Servers must be specified",
    ))
}

fn parse_ms(ctx: &Context, key: &str) -> Result<Option<Duration>, ConfigError> {
    match ctx.get(key) {
        None => Ok(None),
        Some(_) => {
            let ms: u64 = ctx.parse(key, 0)?;
            Ok(Some(Duration::from_millis(ms)))
        }
    }
}

/// Flume's own key (`KafkaSSLUtil.SSL_DISABLE_FQDN_CHECK`): Flume refuses empty property
/// values, so `ssl.endpoint.identification.algorithm=` cannot be written there; `true` here
/// sets it to empty on an SSL or SASL_SSL client.
pub(crate) const SSL_DISABLE_FQDN_CHECK: &str = "ssl.disableTLSHostnameVerification";

/// Flume's global SSL settings (`SSLUtil`): environment variables read for a TLS client
/// whose `kafka.producer.*` / `kafka.consumer.*` keys leave the store unset. (Flume also
/// reads the `javax.net.ssl.*` JVM properties; there is no JVM here.) Passwords are not
/// listed: PEM stores have none.
const GLOBAL_SSL_ENV: &[(&str, &str)] = &[
    ("ssl.keystore.location", "FLUME_SSL_KEYSTORE_PATH"),
    ("ssl.keystore.type", "FLUME_SSL_KEYSTORE_TYPE"),
    ("ssl.truststore.location", "FLUME_SSL_TRUSTSTORE_PATH"),
    ("ssl.truststore.type", "FLUME_SSL_TRUSTSTORE_TYPE"),
];

/// Whether a client key is read by [`security`].
pub(crate) fn is_security_key(key: &str) -> bool {
    key == SSL_DISABLE_FQDN_CHECK || sluice_client::SECURITY_KEYS.contains(&key)
}

/// TLS and SASL settings from the Kafka client keys under `ctx` (`security.protocol`,
/// `sasl.*`, `ssl.*`): Flume passes every key after `kafka.producer.` / `kafka.consumer.`
/// to the Kafka client, and so are these passed to `sluice-client`, plus Flume's
/// `ssl.disableTLSHostnameVerification` and its global SSL environment variables.
pub(crate) fn security(ctx: &Context) -> Result<Security, ConfigError> {
    let get = |k: &str| ctx.get(k).map(str::to_owned);
    let mut props: Vec<(String, String)> = ctx
        .iter()
        .filter(|(k, _)| sluice_client::SECURITY_KEYS.contains(k))
        .map(|(k, p)| (k.to_owned(), p.value.clone()))
        .collect();
    let tls = get("security.protocol").is_some_and(|p| {
        p.trim().eq_ignore_ascii_case("SSL") || p.trim().eq_ignore_ascii_case("SASL_SSL")
    });
    if tls {
        if get(SSL_DISABLE_FQDN_CHECK).is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
            props.push((
                "ssl.endpoint.identification.algorithm".to_owned(),
                String::new(),
            ));
        }
        for (key, var) in GLOBAL_SSL_ENV {
            if ctx.get(key).is_none() {
                if let Some(v) = std::env::var(var).ok().filter(|v| !v.is_empty()) {
                    props.push(((*key).to_owned(), v));
                }
            }
        }
    }
    Security::from_properties(props).map_err(|e| ctx.error(&e.key, &e.message))
}

/// Client settings common to producers and consumers: `client.id`, timeouts, retries,
/// TLS and SASL.
pub(crate) fn client_config(
    kafka: &Context,
    bootstrap: &str,
    default_client_id: &str,
) -> Result<ClientConfig, ConfigError> {
    let mut c = ClientConfig::from_bootstrap_list(bootstrap)
        .with_client_id(kafka.string("client.id", default_client_id))
        .with_security(security(kafka)?);
    if let Some(d) = parse_ms(kafka, "request.timeout.ms")? {
        c.request_timeout = d;
    }
    if let Some(d) = parse_ms(kafka, "retry.backoff.ms")? {
        c.retry_backoff = d;
    }
    if let Some(d) = parse_ms(kafka, "retry.backoff.max.ms")? {
        c.retry_backoff_max = d;
    }
    if let Some(d) = parse_ms(kafka, "connections.max.idle.ms")? {
        c.connections_max_idle = d;
    }
    if kafka.get("retries").is_some() {
        // Java's default is Integer.MAX_VALUE bounded by delivery.timeout.ms; a huge value
        // here would retry for hours, so it is capped.
        let r: i64 = kafka.parse("retries", 5)?;
        c.retries = u32::try_from(r.clamp(0, 1000)).unwrap_or(5);
    }
    Ok(c)
}

/// Parses an `acks` value.
pub(crate) fn parse_acks(ctx: &Context, key: &str, value: &str) -> Result<Acks, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "all" | "-1" => Ok(Acks::All),
        "1" => Ok(Acks::Leader),
        "0" => Ok(Acks::None),
        other => Err(ctx.error(
            key,
            &format!("{other:?} is not a valid acks value (0, 1, all or -1)"),
        )),
    }
}

/// Reads `kafka.producer.*` of `ctx`.
pub(crate) fn producer_settings(
    component: &str,
    ctx: &Context,
    bootstrap: &str,
    default_acks: &str,
) -> Result<ProducerSettings, ConfigError> {
    let p = ctx.sub("kafka.producer.");
    let client = client_config(&p, bootstrap, &format!("sluice-flume-{component}"))?;
    let acks = parse_acks(&p, "acks", &p.string("acks", default_acks))?;
    let compression = match p
        .string("compression.type", "none")
        .trim()
        .to_ascii_lowercase()
        .as_str()
    {
        "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        other => {
            return Err(p.error(
                "compression.type",
                &format!("{other:?} is not a compression type (none, gzip, snappy, lz4, zstd)"),
            ))
        }
    };
    let metadata_max_age = parse_ms(&p, "metadata.max.age.ms")?.unwrap_or(DEFAULT_METADATA_MAX_AGE);
    const HONOURED: &[&str] = &[
        "acks",
        "compression.type",
        "client.id",
        "request.timeout.ms",
        "retries",
        "retry.backoff.ms",
        "retry.backoff.max.ms",
        "metadata.max.age.ms",
        "connections.max.idle.ms",
        "bootstrap.servers",
    ];
    for (k, _) in p.iter() {
        if !HONOURED.contains(&k) && !PRODUCER_NO_EFFECT.contains(&k) && !is_security_key(k) {
            tracing::warn!(
                "{component}: {}{k} is not supported by sluice-flume and is ignored",
                p.prefix()
            );
        }
    }
    Ok(ProducerSettings {
        options: ProduceOptions {
            acks,
            compression,
            timeout: client.request_timeout,
        },
        client,
        metadata_max_age,
    })
}

/// A client connected on first use (so an agent starts while Kafka is down, as Flume's
/// producer does) and kept afterwards.
#[derive(Debug)]
pub(crate) struct LazyClient {
    config: ClientConfig,
    cell: tokio::sync::OnceCell<Client>,
}

impl LazyClient {
    /// A client for `config`, not connected yet.
    pub(crate) fn new(config: ClientConfig) -> Self {
        LazyClient {
            config,
            cell: tokio::sync::OnceCell::new(),
        }
    }

    /// The client, connecting first if needed.
    pub(crate) async fn get(&self) -> Result<Client, sluice_client::Error> {
        self.cell
            .get_or_try_init(|| Client::connect(self.config.clone()))
            .await
            .cloned()
    }

    /// Whether a connection was made.
    pub(crate) fn is_connected(&self) -> bool {
        self.cell.initialized()
    }

    /// The settings the client connects with.
    #[cfg(test)]
    pub(crate) fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The bootstrap list, for messages.
    pub(crate) fn servers(&self) -> String {
        self.config.bootstrap_servers.join(",")
    }
}

/// A record on its way out: topic, explicit partition (if any), and the record.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    /// Destination topic.
    pub(crate) topic: String,
    /// Explicit partition; `None` lets the partitioner choose.
    pub(crate) partition: Option<i32>,
    /// The record.
    pub(crate) record: ProduceRecord,
}

/// Partition counts per topic (refreshed after `metadata.max.age.ms` or a failure) and the
/// sticky partition rotation for records without a key.
#[derive(Debug)]
pub(crate) struct Partitioner {
    max_age: Duration,
    counts: Mutex<HashMap<String, (i32, Instant)>>,
    sticky: AtomicU32,
}

impl Partitioner {
    /// Partition counts are looked up again after `max_age`.
    pub(crate) fn new(max_age: Duration) -> Self {
        Partitioner {
            max_age,
            counts: Mutex::new(HashMap::new()),
            sticky: AtomicU32::new(std::process::id()),
        }
    }

    async fn count(&self, client: &Client, topic: &str) -> Result<i32, String> {
        if let Some((n, at)) = self
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(topic)
        {
            if at.elapsed() < self.max_age {
                return Ok(*n);
            }
        }
        let parts = client
            .partitions(topic)
            .await
            .map_err(|e| format!("looking up the partitions of topic {topic}: {e}"))?;
        let n = i32::try_from(parts.len()).unwrap_or(i32::MAX);
        if n == 0 {
            return Err(format!("topic {topic} has no partitions"));
        }
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(topic.to_string(), (n, Instant::now()));
        Ok(n)
    }

    /// Forget every partition count (after a failed send).
    pub(crate) fn invalidate(&self) {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Groups `records` into one batch per topic-partition, keeping their order.
    pub(crate) async fn assemble(
        &self,
        client: &Client,
        records: Vec<Outgoing>,
    ) -> Result<Vec<ProduceBatch>, String> {
        let sticky_base = self.sticky.fetch_add(1, Ordering::Relaxed);
        let mut sticky: HashMap<String, i32> = HashMap::new();
        // Partition counts looked up once per topic per batch, not once per record.
        let mut counts: HashMap<String, i32> = HashMap::new();
        let mut index: BTreeMap<(String, i32), usize> = BTreeMap::new();
        let mut batches: Vec<ProduceBatch> = Vec::new();
        for o in records {
            let partition = match o.partition {
                Some(p) => p,
                None => {
                    let n = match counts.get(&o.topic) {
                        Some(n) => *n,
                        None => {
                            let n = self.count(client, &o.topic).await?;
                            counts.insert(o.topic.clone(), n);
                            n
                        }
                    };
                    match &o.record.key {
                        Some(k) => partition_for_key(k, n),
                        None => match sticky.get(&o.topic) {
                            Some(p) => *p,
                            None => {
                                let p = i32::try_from(sticky_base % n.unsigned_abs()).unwrap_or(0);
                                sticky.insert(o.topic.clone(), p);
                                p
                            }
                        },
                    }
                }
            };
            let key = (o.topic, partition);
            match index.get(&key) {
                Some(&i) => {
                    if let Some(b) = batches.get_mut(i) {
                        b.records.push(o.record);
                    }
                }
                None => {
                    index.insert(key.clone(), batches.len());
                    batches.push(ProduceBatch {
                        topic: key.0,
                        partition: key.1,
                        records: vec![o.record],
                    });
                }
            }
        }
        Ok(batches)
    }

    /// Sends `records` and waits for every acknowledgement.
    pub(crate) async fn send(
        &self,
        client: &Client,
        records: Vec<Outgoing>,
        options: &ProduceOptions,
    ) -> Result<(), String> {
        if records.is_empty() {
            return Ok(());
        }
        let batches = self.assemble(client, records).await?;
        let results = client.produce_batches(&batches, options).await;
        let mut errors = Vec::new();
        for (b, r) in batches.iter().zip(results) {
            if let Err(e) = r {
                errors.push(format!(
                    "{} records to {}-{}: {e}",
                    b.records.len(),
                    b.topic,
                    b.partition
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            self.invalidate();
            Err(errors.join("; "))
        }
    }
}

/// Where the partition of each event comes from: `partitionIdHeader`, then
/// `defaultPartitionId`.
#[derive(Debug, Clone, Default)]
pub(crate) struct PartitionChoice {
    /// `partitionIdHeader`.
    pub(crate) header: Option<String>,
    /// `defaultPartitionId`.
    pub(crate) default: Option<i32>,
}

impl PartitionChoice {
    /// `partitionIdHeader` and `defaultPartitionId` of `ctx`.
    pub(crate) fn from_context(ctx: &Context) -> Result<Self, ConfigError> {
        let default = match ctx.get("defaultPartitionId") {
            Some(_) => Some(ctx.parse::<i32>("defaultPartitionId", 0)?),
            None => None,
        };
        Ok(PartitionChoice {
            header: ctx.get("partitionIdHeader").map(str::to_string),
            default,
        })
    }

    /// The explicit partition for `e`; a header that is not an integer is an error (Flume:
    /// "Non integer partition id specified").
    pub(crate) fn pick(&self, e: &Event) -> Result<Option<i32>, String> {
        if let Some(h) = &self.header {
            if let Some(v) = e.headers.get(h) {
                return v.trim().parse::<i32>().map(Some).map_err(|_| {
                    format!("Non integer partition id specified: header {h} is {v:?}")
                });
            }
        }
        Ok(self.default)
    }
}

/// Build the sink.
pub fn build(
    name: &str,
    ctx: &Context,
    channel: Arc<dyn Channel>,
) -> Result<Box<dyn Sink>, ConfigError> {
    Ok(Box::new(configure(name, ctx, channel)?))
}

fn configure(
    name: &str,
    ctx: &Context,
    channel: Arc<dyn Channel>,
) -> Result<KafkaSink, ConfigError> {
    let who = format!("Kafka sink {name}");
    let bootstrap = bootstrap(&who, ctx)?;
    let topic = match ctx.get("kafka.topic").filter(|t| !t.is_empty()) {
        Some(t) => t.to_string(),
        None => match ctx.get("topic").filter(|t| !t.is_empty()) {
            Some(t) => {
                tracing::warn!("{who}: topic is deprecated; use kafka.topic");
                t.to_string()
            }
            None => {
                tracing::warn!(
                    "{who}: topic was not specified; using {DEFAULT_TOPIC} as the topic"
                );
                DEFAULT_TOPIC.to_string()
            }
        },
    };
    let batch: i64 = match (ctx.get("flumeBatchSize"), ctx.get("batchSize")) {
        (None, Some(_)) => {
            tracing::warn!("{who}: batchSize is deprecated; use flumeBatchSize");
            ctx.parse("batchSize", DEFAULT_BATCH_SIZE as i64)?
        }
        _ => ctx.parse("flumeBatchSize", DEFAULT_BATCH_SIZE as i64)?,
    };
    let batch = usize::try_from(batch)
        .ok()
        .filter(|b| *b > 0)
        .ok_or_else(|| ctx.error("flumeBatchSize", "must be greater than 0"))?;
    let mut settings = producer_settings(&who, ctx, &bootstrap, "1")?;
    if ctx.get("kafka.producer.acks").is_none() {
        if let Some(v) = ctx.get("requiredAcks") {
            tracing::warn!("{who}: requiredAcks is deprecated; use kafka.producer.acks");
            settings.options.acks = parse_acks(ctx, "requiredAcks", v)?;
        }
    }
    let header_map: Vec<(String, String)> = ctx
        .sub("header.")
        .iter()
        .map(|(k, p)| (k.to_string(), p.value.clone()))
        .collect();
    let template = Template::parse(&topic);
    let escape = EscapeSettings::default();
    // A topic with no header or time escapes resolves the same for every event: once here.
    let constant_topic = if template.is_constant() {
        template.escape(&Default::default(), &escape, 0).ok()
    } else {
        None
    };
    Ok(KafkaSink {
        name: name.to_string(),
        channel,
        batch,
        topic: template,
        constant_topic,
        static_topic: topic,
        use_avro: ctx.bool("useFlumeEventFormat", false)?,
        allow_override: ctx.bool("allowTopicOverride", true)?,
        topic_header: ctx.string("topicHeader", "topic"),
        timestamp_header: ctx.get("timestampHeader").map(str::to_string),
        header_map,
        partition: PartitionChoice::from_context(ctx)?,
        partitioner: Partitioner::new(settings.metadata_max_age),
        client: LazyClient::new(settings.client.clone()),
        options: settings.options,
        escape,
        counters: Arc::new(Counters::new(Kind::Sink, name)),
    })
}

struct KafkaSink {
    name: String,
    channel: Arc<dyn Channel>,
    batch: usize,
    static_topic: String,
    topic: Template,
    constant_topic: Option<String>,
    use_avro: bool,
    allow_override: bool,
    topic_header: String,
    timestamp_header: Option<String>,
    header_map: Vec<(String, String)>,
    partition: PartitionChoice,
    partitioner: Partitioner,
    client: LazyClient,
    options: ProduceOptions,
    escape: EscapeSettings,
    counters: Arc<Counters>,
}

impl KafkaSink {
    /// The record for one event (Flume's per-event part of `process()`).
    fn record(&self, e: &Event) -> Result<Outgoing, String> {
        let topic = if self.allow_override {
            match e.headers.get(&self.topic_header) {
                Some(t) => t.clone(),
                // A topic without escapes needs no clock read or formatting per event.
                None if self.constant_topic.is_some() => {
                    self.constant_topic.clone().unwrap_or_default()
                }
                None => self
                    .topic
                    .escape(
                        &e.headers,
                        &self.escape,
                        chrono::Utc::now().timestamp_millis(),
                    )
                    .map_err(|err| format!("topic {:?}: {err}", self.static_topic))?,
            }
        } else {
            self.static_topic.clone()
        };
        let partition = self.partition.pick(e)?;
        let timestamp = self.timestamp_header.as_ref().and_then(|h| {
            let v = e.headers.get(h)?;
            match v.trim().parse::<i64>() {
                Ok(t) => Some(t),
                Err(_) => {
                    tracing::warn!(
                        "Kafka sink {}: invalid timestamp in header {h} - {v}",
                        self.name
                    );
                    None
                }
            }
        });
        let value: Bytes = if self.use_avro {
            Bytes::from(sluice_flume_rpc::encode_event(e))
        } else {
            e.body.clone()
        };
        let mut record = ProduceRecord::new(value);
        record.key = e
            .headers
            .get(KEY_HEADER)
            .map(|k| Bytes::copy_from_slice(k.as_bytes()));
        record.timestamp = timestamp;
        for (flume, kafka) in &self.header_map {
            if let Some(v) = e.headers.get(flume) {
                record = record.with_header(kafka.clone(), Bytes::copy_from_slice(v.as_bytes()));
            }
        }
        Ok(Outgoing {
            topic,
            partition,
            record,
        })
    }

    async fn deliver(&self, events: &[Event]) -> Result<(), String> {
        let records = events
            .iter()
            .map(|e| self.record(e))
            .collect::<Result<Vec<_>, _>>()?;
        let client = match self.client.get().await {
            Ok(c) => c,
            Err(e) => {
                self.counters.inc("ConnectionFailedCount");
                return Err(format!(
                    "cannot connect to Kafka at {}: {e}",
                    self.client.servers()
                ));
            }
        };
        self.partitioner.send(&client, records, &self.options).await
    }
}

#[async_trait]
impl Sink for KafkaSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn channel(&self) -> &Arc<dyn Channel> {
        &self.channel
    }

    fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    fn batch_size(&self) -> Option<usize> {
        Some(self.batch)
    }

    async fn process(&mut self) -> anyhow::Result<Status> {
        let mut tx = self.channel.begin();
        let events = match take_batch(&mut tx, self.batch, &self.counters).await {
            Ok(v) => v,
            Err(e) => {
                self.counters.inc("ChannelReadFail");
                let _ = tx.rollback().await;
                return Err(anyhow::anyhow!(
                    "Kafka sink {}: taking from channel {}: {e}",
                    self.name,
                    self.channel.name()
                ));
            }
        };
        if events.is_empty() {
            tx.commit().await?;
            return Ok(Status::Backoff);
        }
        let connected = self.client.is_connected();
        if let Err(e) = self.deliver(&events).await {
            self.counters.inc("EventWriteFail");
            if let Err(rb) = tx.rollback().await {
                tracing::error!("Kafka sink {}: rollback failed: {rb}", self.name);
            }
            return Err(anyhow::anyhow!(
                "Kafka sink {}: failed to publish events: {e}",
                self.name
            ));
        }
        if !connected && self.client.is_connected() {
            self.counters.inc("ConnectionCreatedCount");
        }
        if let Err(e) = tx.commit().await {
            self.counters.inc("ChannelReadFail");
            let _ = tx.rollback().await;
            return Err(anyhow::anyhow!(
                "Kafka sink {}: events were sent but the commit on channel {} failed (they will be sent again): {e}",
                self.name,
                self.channel.name()
            ));
        }
        self.counters.add(
            "EventDrainSuccessCount",
            i64::try_from(events.len()).unwrap_or(i64::MAX),
        );
        Ok(Status::Ready)
    }

    async fn stop(&mut self) {
        tracing::info!("Kafka sink {} stopped", self.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::memory::{MemoryChannel, MemoryConfig};

    fn memory() -> Arc<dyn Channel> {
        Arc::new(MemoryChannel::new(
            "c1",
            MemoryConfig {
                capacity: 10,
                transaction_capacity: 10,
                keep_alive: Duration::from_millis(1),
                byte_slots: None,
            },
        ))
    }

    fn sink(pairs: &[(&str, &str)]) -> KafkaSink {
        let mut all = vec![("kafka.bootstrap.servers", "127.0.0.1:1")];
        all.extend_from_slice(pairs);
        configure("k1", &Context::from_pairs("a1.sinks.k1.", all), memory()).unwrap()
    }

    #[test]
    fn topic_override_escapes_key_partition_timestamp_and_headers() {
        let s = sink(&[
            ("kafka.topic", "t-%{app}"),
            ("partitionIdHeader", "p"),
            ("defaultPartitionId", "2"),
            ("timestampHeader", "ts"),
            ("header.trace", "X-Trace"),
        ]);
        let e = Event::new("body")
            .with_header("app", "web")
            .with_header("key", "k1")
            .with_header("ts", "1234")
            .with_header("trace", "abc");
        let o = s.record(&e).unwrap();
        assert_eq!(o.topic, "t-web");
        assert_eq!(o.partition, Some(2));
        assert_eq!(o.record.key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(o.record.timestamp, Some(1234));
        assert_eq!(o.record.value.as_deref(), Some(&b"body"[..]));
        assert_eq!(o.record.headers.len(), 1);
        assert_eq!(o.record.headers[0].key, "X-Trace");

        let o = s
            .record(
                &e.clone()
                    .with_header("topic", "other")
                    .with_header("p", "5"),
            )
            .unwrap();
        assert_eq!(o.topic, "other");
        assert_eq!(o.partition, Some(5));
        assert!(s
            .record(&e.clone().with_header("p", "x"))
            .unwrap_err()
            .contains("Non integer partition id"));
        // A bad timestamp header is ignored, as in Flume.
        assert_eq!(
            s.record(&e.clone().with_header("ts", "soon"))
                .unwrap()
                .record
                .timestamp,
            None
        );
    }

    #[test]
    fn without_override_the_topic_is_used_verbatim_and_avro_keeps_headers() {
        let s = sink(&[
            ("kafka.topic", "t-%{app}"),
            ("allowTopicOverride", "false"),
            ("useFlumeEventFormat", "true"),
        ]);
        let e = Event::new("body")
            .with_header("app", "web")
            .with_header("topic", "x");
        let o = s.record(&e).unwrap();
        assert_eq!(o.topic, "t-%{app}");
        let back = sluice_flume_rpc::decode_event(o.record.value.as_deref().unwrap()).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn config_defaults_and_errors() {
        let ch = memory;
        let ctx = Context::from_pairs("a1.sinks.k1.", [("kafka.topic", "t")]);
        let err = build("k1", &ctx, ch()).err().unwrap();
        assert!(
            err.to_string()
                .contains("a1.sinks.k1.kafka.bootstrap.servers"),
            "{err}"
        );

        let ctx = Context::from_pairs("a1.sinks.k1.", [("brokerList", "h:1"), ("batchSize", "7")]);
        assert_eq!(build("k1", &ctx, ch()).unwrap().batch_size(), Some(7));

        let ctx = Context::from_pairs(
            "a1.sinks.k1.",
            [
                ("kafka.bootstrap.servers", "h:1"),
                ("kafka.producer.compression.type", "brotli"),
            ],
        );
        let err = build("k1", &ctx, ch()).err().unwrap();
        assert!(
            err.to_string()
                .contains("a1.sinks.k1.kafka.producer.compression.type"),
            "{err}"
        );

        // SASL_SSL without a mechanism: Kafka would use GSSAPI, which the client lacks.
        let ctx = Context::from_pairs(
            "a1.sinks.k1.",
            [
                ("kafka.bootstrap.servers", "h:1"),
                ("kafka.producer.security.protocol", "SASL_SSL"),
            ],
        );
        let err = build("k1", &ctx, ch()).err().unwrap();
        assert!(
            err.to_string()
                .contains("a1.sinks.k1.kafka.producer.sasl.mechanism"),
            "{err}"
        );

        let ctx = Context::from_pairs("a1.sinks.k1.", [("kafka.bootstrap.servers", "h:1")]);
        let s = producer_settings("k1", &ctx, "h:1", "1").unwrap();
        assert_eq!(s.options.acks, Acks::Leader);
        let ctx = Context::from_pairs("a1.sinks.k1.", [("kafka.producer.acks", "all")]);
        assert_eq!(
            producer_settings("k1", &ctx, "h:1", "1")
                .unwrap()
                .options
                .acks,
            Acks::All
        );
    }
}
