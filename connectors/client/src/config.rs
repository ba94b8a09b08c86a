//! Client configuration: where to bootstrap from, how the client names itself, timeouts,
//! the retry policy and connection limits. Producer and consumer knobs that vary per call
//! (acks, compression, fetch sizes) live with the calls, not here. Security settings
//! (`security.protocol`, SASL, TLS) are parsed in `security/`.

use std::time::Duration;

use crate::security::Security;

/// Java's `request.timeout.ms` default.
pub(crate) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Java's `socket.connection.setup.timeout.ms` default.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Retries of a retriable failure before the error is returned. Java retries until
/// `delivery.timeout.ms`; a bounded count keeps a missing topic from hanging the caller.
pub(crate) const DEFAULT_RETRIES: u32 = 5;
/// Java's `retry.backoff.ms` default.
pub(crate) const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// Java's `retry.backoff.max.ms` default.
pub(crate) const DEFAULT_RETRY_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Largest response frame accepted. Kafka's `socket.request.max.bytes` (100 MiB) bounds
/// requests the same way; a fetch response is bounded by the `max_bytes` the caller asked for.
pub(crate) const DEFAULT_MAX_RESPONSE_BYTES: usize = 100 * 1024 * 1024;
/// Connections opened to one broker at most. Each request holds a connection for its whole
/// round trip (a long-polling fetch included), so concurrent callers use separate connections.
pub(crate) const DEFAULT_MAX_CONNECTIONS_PER_BROKER: usize = 8;
/// Java's `connections.max.idle.ms` default (9 minutes): shorter than the broker's 10, so the
/// client drops an idle connection before the broker does.
pub(crate) const DEFAULT_CONNECTIONS_MAX_IDLE: Duration = Duration::from_secs(540);

/// Which records a consumer sees (Kafka's `isolation.level`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IsolationLevel {
    /// `read_uncommitted` (Kafka's default): every data record up to the high watermark,
    /// aborted transactions included. Control records are never returned.
    #[default]
    ReadUncommitted,
    /// `read_committed`: only up to the last stable offset, and without the records of
    /// aborted transactions.
    ReadCommitted,
}

impl IsolationLevel {
    /// The wire value of Fetch's and ListOffsets' `isolation_level`.
    pub(crate) fn wire(self) -> i8 {
        match self {
            Self::ReadUncommitted => 0,
            Self::ReadCommitted => 1,
        }
    }
}

impl std::str::FromStr for IsolationLevel {
    type Err = String;

    /// Parses Kafka's spelling, `read_uncommitted` or `read_committed` (any case, as
    /// Kafka's config parser lower-cases it).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "read_uncommitted" => Ok(Self::ReadUncommitted),
            "read_committed" => Ok(Self::ReadCommitted),
            other => Err(format!(
                "{other:?} is not read_uncommitted or read_committed"
            )),
        }
    }
}

/// Settings shared by every request a [`Client`](crate::Client) makes.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `host:port` addresses tried in order until one answers (Kafka's `bootstrap.servers`).
    pub bootstrap_servers: Vec<String>,
    /// Sent in every request header (Kafka's `client.id`).
    pub client_id: String,
    /// Time allowed for one request/response round trip, on top of any wait the request
    /// itself asks the broker for (a fetch's `max_wait`, a join's rebalance timeout).
    pub request_timeout: Duration,
    /// Time allowed to open a TCP connection and negotiate versions.
    pub connect_timeout: Duration,
    /// Retries of a retriable failure (stale leader, unavailable coordinator, lost
    /// connection on an idempotent request) before the error is returned.
    pub retries: u32,
    /// First pause between retries; doubles on each retry up to `retry_backoff_max`.
    pub retry_backoff: Duration,
    /// Longest pause between retries.
    pub retry_backoff_max: Duration,
    /// Largest response frame accepted; a bigger one closes the connection.
    pub max_response_bytes: usize,
    /// Connections opened to one broker at most; further requests wait for one to free up.
    pub max_connections_per_broker: usize,
    /// Pooled connections idle longer than this are closed instead of reused.
    pub connections_max_idle: Duration,
    /// Ask the broker to create unknown topics on a metadata lookup (Kafka's producer does;
    /// the broker decides with `auto.create.topics.enable`).
    pub allow_auto_topic_creation: bool,
    /// Isolation level of [`Client::fetch`](crate::Client::fetch),
    /// [`Client::fetch_many`](crate::Client::fetch_many) and the `Latest` offset of
    /// [`Client::list_offsets`](crate::Client::list_offsets) (Kafka's `isolation.level`,
    /// default `read_uncommitted`).
    pub isolation_level: IsolationLevel,
    /// TLS and SASL (Kafka's `security.protocol` and its `sasl.*` and `ssl.*` keys);
    /// PLAINTEXT by default.
    pub security: Security,
}

impl ClientConfig {
    /// A config with the given bootstrap servers and every other setting at its default.
    pub fn new<I, S>(bootstrap_servers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            bootstrap_servers: bootstrap_servers.into_iter().map(Into::into).collect(),
            client_id: "sluice-client".to_owned(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            retries: DEFAULT_RETRIES,
            retry_backoff: DEFAULT_RETRY_BACKOFF,
            retry_backoff_max: DEFAULT_RETRY_BACKOFF_MAX,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_connections_per_broker: DEFAULT_MAX_CONNECTIONS_PER_BROKER,
            connections_max_idle: DEFAULT_CONNECTIONS_MAX_IDLE,
            allow_auto_topic_creation: true,
            isolation_level: IsolationLevel::ReadUncommitted,
            security: Security::default(),
        }
    }

    /// A config from a Kafka-style `bootstrap.servers` value: comma-separated `host:port`
    /// entries, blanks around entries ignored.
    pub fn from_bootstrap_list(servers: &str) -> Self {
        Self::new(
            servers
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        )
    }

    /// Sets the client id.
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = client_id.into();
        self
    }

    /// Sets the request timeout.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets whether metadata lookups may create topics.
    pub fn with_auto_topic_creation(mut self, allow: bool) -> Self {
        self.allow_auto_topic_creation = allow;
        self
    }

    /// Sets the isolation level of fetches and `Latest` offset lookups.
    pub fn with_isolation_level(mut self, level: IsolationLevel) -> Self {
        self.isolation_level = level;
        self
    }

    /// Sets the security settings (see [`Security::from_properties`]).
    pub fn with_security(mut self, security: Security) -> Self {
        self.security = security;
        self
    }

    /// The pause before retry number `attempt` (0-based): exponential, capped.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX);
        self.retry_backoff
            .checked_mul(factor)
            .map_or(self.retry_backoff_max, |d| d.min(self.retry_backoff_max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_list_is_split_and_trimmed() {
        let c = ClientConfig::from_bootstrap_list(" a:9092, b:9093 ,,");
        assert_eq!(c.bootstrap_servers, vec!["a:9092", "b:9093"]);
    }

    #[test]
    fn isolation_levels_parse_kafkas_spelling() {
        assert_eq!("read_committed".parse(), Ok(IsolationLevel::ReadCommitted));
        assert_eq!(
            " READ_UNCOMMITTED".parse(),
            Ok(IsolationLevel::ReadUncommitted)
        );
        assert!("committed".parse::<IsolationLevel>().is_err());
        assert_eq!(
            ClientConfig::new(["x:1"]).isolation_level,
            IsolationLevel::ReadUncommitted
        );
    }

    #[test]
    fn backoff_doubles_then_caps() {
        let c = ClientConfig::new(["x:1"]);
        assert_eq!(c.backoff(0), Duration::from_millis(100));
        assert_eq!(c.backoff(1), Duration::from_millis(200));
        assert_eq!(c.backoff(3), Duration::from_millis(800));
        assert_eq!(c.backoff(4), Duration::from_secs(1));
        assert_eq!(c.backoff(60), Duration::from_secs(1));
    }
}
