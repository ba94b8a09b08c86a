//! [`Client`]: the entry point. It owns the connection pool, the metadata cache and the
//! group-coordinator cache, routes each request to the right broker (a partition's leader, a
//! group's coordinator, any broker for metadata), and retries retriable failures with a
//! bounded exponential backoff. The produce, fetch, offset and group calls are implemented
//! on `Client` in their own modules.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{CreateTopicsRequest, MetadataRequest, TopicName};
use kafka_protocol::protocol::{Request, StrBytes};

use crate::config::ClientConfig;
use crate::error::{At, Error, Result};
use crate::metadata::{BrokerInfo, MetadataCache, TopicInfo, TopicOutcome};
use crate::pool::Lease;
use crate::pool::Pool;

/// FindCoordinator key type of a consumer group.
pub(crate) const GROUP_KEY: i8 = 0;
/// FindCoordinator key type of a transactional id.
pub(crate) const TXN_KEY: i8 = 1;

/// An async Kafka client. Cloning is cheap and clones share connections and caches.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ClientConfig,
    pool: Pool,
    metadata: RwLock<MetadataCache>,
    /// (FindCoordinator key type, key) → coordinator address: groups (0) and
    /// transactional ids (1) live in different namespaces.
    coordinators: Mutex<HashMap<(i8, String), String>>,
}

impl Client {
    /// Connects to the first bootstrap server that answers and loads the broker list.
    pub async fn connect(config: ClientConfig) -> Result<Self> {
        if config.bootstrap_servers.is_empty() {
            return Err(Error::InvalidArgument(
                "bootstrap_servers is empty".to_owned(),
            ));
        }
        let client = Self {
            inner: Arc::new(Inner {
                config,
                pool: Pool::default(),
                metadata: RwLock::new(MetadataCache::default()),
                coordinators: Mutex::new(HashMap::new()),
            }),
        };
        client.fetch_metadata(Some(&[])).await?;
        Ok(client)
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The brokers from the last metadata response, by node id.
    pub fn brokers(&self) -> Vec<BrokerInfo> {
        let mut brokers: Vec<BrokerInfo> = self.read_metadata().brokers.values().cloned().collect();
        brokers.sort_by_key(|b| b.node_id);
        brokers
    }

    /// Names of all non-internal topics, sorted. Matching them against a pattern is the
    /// caller's business (as Kafka's `exclude.internal.topics=true` consumer does).
    pub async fn topics(&self) -> Result<Vec<String>> {
        let outcome = self
            .retrying(true, |_| {}, || self.fetch_metadata(None))
            .await?;
        let mut names: Vec<String> = outcome
            .into_iter()
            .filter_map(|(name, info)| info.ok().filter(|i| !i.internal).map(|_| name))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Metadata of one topic. An unknown topic is an error at once
    /// (UNKNOWN_TOPIC_OR_PARTITION); LEADER_NOT_AVAILABLE, which Kafka answers while it
    /// auto-creates a topic, is retried.
    pub async fn topic(&self, topic: &str) -> Result<TopicInfo> {
        let names = [topic.to_owned()];
        let found = self
            .retrying(
                true,
                |_| {},
                || async {
                    let outcome = self.fetch_metadata(Some(&names)).await?;
                    match outcome.into_iter().find(|(n, _)| n == topic) {
                        Some((_, Err(ResponseError::LeaderNotAvailable))) => Err(Error::kafka(
                            "describe",
                            At::topic(topic),
                            ResponseError::LeaderNotAvailable,
                        )),
                        other => Ok(other),
                    }
                },
            )
            .await?;
        match found {
            Some((_, Ok(info))) => Ok(info),
            Some((_, Err(error))) => Err(Error::kafka("describe", At::topic(topic), error)),
            None => Err(Error::Kafka {
                op: "describe",
                at: Box::new(At::topic(topic)),
                error: ResponseError::UnknownTopicOrPartition,
                message: Some("the metadata response does not list it".to_owned()),
            }),
        }
    }

    /// The partition indexes of `topic`, ascending.
    pub async fn partitions(&self, topic: &str) -> Result<Vec<i32>> {
        Ok(self.topic(topic).await?.partitions.into_keys().collect())
    }

    /// Asks the cluster again for the given topics (or only for the broker list when
    /// `topics` is empty), replacing what the cache holds.
    pub async fn refresh_metadata(&self, topics: &[&str]) -> Result<()> {
        let names: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
        self.fetch_metadata(Some(&names)).await.map(drop)
    }

    /// Creates a topic. `replication_factor` and `num_partitions` of -1 take the broker's
    /// defaults. Fails with TOPIC_ALREADY_EXISTS if it exists.
    pub async fn create_topic(
        &self,
        name: &str,
        num_partitions: i32,
        replication_factor: i16,
        configs: &[(&str, &str)],
    ) -> Result<()> {
        let topic = CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(num_partitions)
            .with_replication_factor(replication_factor)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string((*k).to_owned()))
                            .with_value(Some(StrBytes::from_string((*v).to_owned())))
                    })
                    .collect(),
            );
        let timeout_ms = millis_i32(self.inner.config.request_timeout);
        let addr = self.any_broker_addr();
        let (_, resp) = self
            .call_at(&addr, Duration::ZERO, |_| {
                CreateTopicsRequest::default()
                    .with_topics(vec![topic])
                    .with_timeout_ms(timeout_ms)
            })
            .await?;
        let result = resp.topics.iter().find(|t| t.name.0.as_str() == name);
        match result.and_then(|r| ResponseError::try_from_code(r.error_code).map(|e| (r, e))) {
            None if result.is_some() => {
                self.invalidate_topic(name);
                Ok(())
            }
            None => Err(Error::Protocol {
                addr,
                message: format!("CreateTopics response does not mention topic {name}"),
            }),
            Some((r, error)) => Err(Error::Kafka {
                op: "create",
                at: Box::new(At::topic(name)),
                error,
                message: r.error_message.as_ref().map(ToString::to_string),
            }),
        }
    }

    // ---- crate-internal plumbing ----

    fn read_metadata(&self) -> std::sync::RwLockReadGuard<'_, MetadataCache> {
        self.inner
            .metadata
            .read()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn write_metadata(&self) -> std::sync::RwLockWriteGuard<'_, MetadataCache> {
        self.inner
            .metadata
            .write()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Any broker to send a cluster-wide request to: a known broker, else the first
    /// bootstrap server.
    pub(crate) fn any_broker_addr(&self) -> String {
        let meta = self.read_metadata();
        let mut ids: Vec<&i32> = meta.brokers.keys().collect();
        ids.sort();
        ids.first()
            .and_then(|id| meta.brokers.get(id))
            .map(BrokerInfo::addr)
            .or_else(|| self.inner.config.bootstrap_servers.first().cloned())
            .unwrap_or_default()
    }

    /// Sends a Metadata request to the first broker that answers: known brokers first,
    /// then the bootstrap list. `None` asks for all topics, `Some(&[])` for brokers only.
    pub(crate) async fn fetch_metadata(&self, topics: Option<&[String]>) -> Result<TopicOutcome> {
        let mut candidates: Vec<String> = {
            let meta = self.read_metadata();
            let mut b: Vec<&BrokerInfo> = meta.brokers.values().collect();
            b.sort_by_key(|b| b.node_id);
            b.into_iter().map(BrokerInfo::addr).collect()
        };
        for s in &self.inner.config.bootstrap_servers {
            if !candidates.contains(s) {
                candidates.push(s.clone());
            }
        }
        let allow_auto =
            self.inner.config.allow_auto_topic_creation && topics.is_some_and(|t| !t.is_empty());
        let mut last: Option<Error> = None;
        for addr in &candidates {
            let result = self
                .call_at(addr, Duration::ZERO, |_| {
                    MetadataRequest::default()
                        .with_topics(topics.map(|ts| {
                            ts.iter()
                                .map(|t| {
                                    MetadataRequestTopic::default().with_name(Some(topic_name(t)))
                                })
                                .collect()
                        }))
                        .with_allow_auto_topic_creation(allow_auto)
                })
                .await;
            match result {
                Ok((_, resp)) => return Ok(self.write_metadata().update(&resp)),
                Err(e) if e.is_retriable() || matches!(e, Error::Protocol { .. }) => {
                    tracing::debug!(addr, "metadata request failed: {e}");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::NoBrokerAvailable {
            tried: candidates.join(", "),
            last: last.map_or_else(|| "no addresses".to_owned(), |e| e.to_string()),
        })
    }

    /// The address of the leader of `topic`/`partition`, refreshing metadata when the cache
    /// does not know it. Missing topic, partition or leader are retriable Kafka errors.
    pub(crate) async fn leader_addr(&self, topic: &str, partition: i32) -> Result<String> {
        if let Some(addr) = self.read_metadata().leader_addr(topic, partition) {
            return Ok(addr);
        }
        let outcome = self.fetch_metadata(Some(&[topic.to_owned()])).await?;
        if let Some((_, Err(error))) = outcome.iter().find(|(n, _)| n == topic) {
            return Err(Error::kafka(
                "find leader",
                At::partition(topic, partition),
                *error,
            ));
        }
        let meta = self.read_metadata();
        match meta.topics.get(topic).map(|t| t.partitions.get(&partition)) {
            None | Some(None) => Err(Error::kafka(
                "find leader",
                At::partition(topic, partition),
                ResponseError::UnknownTopicOrPartition,
            )),
            Some(Some(_)) => meta.leader_addr(topic, partition).ok_or_else(|| {
                Error::kafka(
                    "find leader",
                    At::partition(topic, partition),
                    ResponseError::LeaderNotAvailable,
                )
            }),
        }
    }

    /// Drops `topic` from the metadata cache, so the next lookup refreshes it.
    pub(crate) fn invalidate_topic(&self, topic: &str) {
        self.write_metadata().invalidate(topic);
    }

    /// The cached coordinator address of `key` (of FindCoordinator key type `key_type`).
    pub(crate) fn cached_coordinator(&self, key_type: i8, key: &str) -> Option<String> {
        self.inner
            .coordinators
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(key_type, key.to_owned()))
            .cloned()
    }

    /// Remembers the coordinator address of `key`.
    pub(crate) fn cache_coordinator(&self, key_type: i8, key: &str, addr: String) {
        self.inner
            .coordinators
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((key_type, key.to_owned()), addr);
    }

    /// Forgets the coordinator of `key`, so the next call looks it up again.
    pub(crate) fn invalidate_coordinator_of(&self, key_type: i8, key: &str) {
        self.inner
            .coordinators
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(key_type, key.to_owned()));
    }

    /// Forgets the coordinator of `group`, so the next call looks it up again.
    pub(crate) fn invalidate_coordinator(&self, group: &str) {
        self.invalidate_coordinator_of(GROUP_KEY, group);
    }

    /// One round trip to the broker at `addr`: lease a connection, build the request for
    /// the negotiated version, send it, and wait `request_timeout + extra_wait`.
    pub(crate) async fn call_at<R, F>(
        &self,
        addr: &str,
        extra_wait: Duration,
        build: F,
    ) -> Result<(i16, R::Response)>
    where
        R: Request,
        F: FnOnce(i16) -> R,
    {
        let (mut lease, version) = self.lease_for::<R>(addr).await?;
        let request = build(version);
        let timeout = self.inner.config.request_timeout.saturating_add(extra_wait);
        let result = lease.conn.call(version, &request, timeout).await;
        if !lease.conn.is_reusable() {
            self.inner.pool.forget(addr);
        }
        self.inner.pool.give_back(lease);
        result.map(|r| (version, r))
    }

    /// A pooled connection to `addr` and the version of `R` negotiated on it.
    async fn lease_for<R: Request>(&self, addr: &str) -> Result<(Lease, i16)> {
        let api =
            kafka_protocol::messages::ApiKey::try_from(R::KEY).map_err(|()| Error::Protocol {
                addr: addr.to_owned(),
                message: format!("unknown api key {}", R::KEY),
            })?;
        let lease = self.inner.pool.lease(addr, &self.inner.config).await?;
        match lease.conn.version(api) {
            Ok(v) => Ok((lease, v)),
            Err(e) => {
                self.inner.pool.give_back(lease);
                Err(e)
            }
        }
    }

    /// Like [`call_at`](Self::call_at) for a request that gets no response (Produce with
    /// `acks=0`).
    pub(crate) async fn send_at<R, F>(&self, addr: &str, build: F) -> Result<()>
    where
        R: Request,
        F: FnOnce(i16) -> R,
    {
        let (mut lease, version) = self.lease_for::<R>(addr).await?;
        let request = build(version);
        let result = lease
            .conn
            .send(version, &request, self.inner.config.request_timeout)
            .await;
        self.inner.pool.give_back(lease);
        result
    }

    /// Runs `op` until it succeeds, fails with a non-retriable error, or has been retried
    /// `config.retries` times, pausing with exponential backoff in between. `on_retry` sees
    /// each error that will be retried (to invalidate caches). With `idempotent` false only
    /// errors for which the request certainly was not applied are retried.
    pub(crate) async fn retrying<T, F, Fut>(
        &self,
        idempotent: bool,
        mut on_retry: impl FnMut(&Error),
        mut op: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 0;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e)
                    if attempt < self.inner.config.retries
                        && e.is_retriable()
                        && (idempotent || e.is_unsent()) =>
                {
                    tracing::debug!(attempt, "retrying after: {e}");
                    on_retry(&e);
                    tokio::time::sleep(self.inner.config.backoff(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// A topic name as kafka-protocol wants it.
pub(crate) fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

/// A duration in whole milliseconds, saturating at `i32::MAX` (Kafka's timeout fields).
pub(crate) fn millis_i32(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}
