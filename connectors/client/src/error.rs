//! The client's error type, and the classification of Kafka error codes into "retry after a
//! metadata refresh", "retry after finding the coordinator again", "retry as is" and fatal.
//! Framing errors have their own enum in `frame.rs`; they reach callers as
//! [`Error::Protocol`] or [`Error::Io`] with the broker address attached.

use std::fmt;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where a Kafka error applies: any of topic, partition, offset and group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct At {
    /// Topic the request was about.
    pub topic: Option<String>,
    /// Partition the request was about.
    pub partition: Option<i32>,
    /// Offset the request was about (fetch position, committed offset).
    pub offset: Option<i64>,
    /// Consumer group the request was about.
    pub group: Option<String>,
    /// Transactional id the request was about.
    pub transactional_id: Option<String>,
}

impl At {
    /// A topic-partition.
    pub fn partition(topic: &str, partition: i32) -> Self {
        Self {
            topic: Some(topic.to_owned()),
            partition: Some(partition),
            ..Self::default()
        }
    }

    /// A topic.
    pub fn topic(topic: &str) -> Self {
        Self {
            topic: Some(topic.to_owned()),
            ..Self::default()
        }
    }

    /// A consumer group.
    pub fn group(group: &str) -> Self {
        Self {
            group: Some(group.to_owned()),
            ..Self::default()
        }
    }

    /// A transactional id.
    pub fn transaction(transactional_id: &str) -> Self {
        Self {
            transactional_id: Some(transactional_id.to_owned()),
            ..Self::default()
        }
    }

    /// The same place with a transactional id added.
    pub fn in_transaction(mut self, transactional_id: &str) -> Self {
        self.transactional_id = Some(transactional_id.to_owned());
        self
    }

    /// The same place with an offset added.
    pub fn at_offset(mut self, offset: i64) -> Self {
        self.offset = Some(offset);
        self
    }

    /// The same place with a group added.
    pub fn in_group(mut self, group: &str) -> Self {
        self.group = Some(group.to_owned());
        self
    }
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(t) = &self.transactional_id {
            write!(f, " transactional id {t}")?;
        }
        if let Some(g) = &self.group {
            write!(f, " group {g}")?;
        }
        if let Some(t) = &self.topic {
            write!(f, " topic {t}")?;
        }
        if let Some(p) = self.partition {
            write!(f, " partition {p}")?;
        }
        if let Some(o) = self.offset {
            write!(f, " offset {o}")?;
        }
        Ok(())
    }
}

/// Everything that can go wrong in a client call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No bootstrap server could be reached, or the list was empty.
    #[error("no bootstrap server answered (tried: {tried}): {last}")]
    NoBrokerAvailable {
        /// The addresses tried, comma-separated.
        tried: String,
        /// The last failure seen.
        last: String,
    },
    /// A TCP connection could not be opened (nothing was sent).
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// Broker address.
        addr: String,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// A connection failed while a request was in flight; the broker may or may not have
    /// processed it.
    #[error("connection to {addr} failed during {api:?}: {source}")]
    Io {
        /// Broker address.
        addr: String,
        /// The request being made.
        api: ApiKey,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// A request got no response in time; the broker may or may not have processed it.
    #[error("{api:?} request to {addr} timed out after {after:?}")]
    Timeout {
        /// Broker address.
        addr: String,
        /// The request being made.
        api: ApiKey,
        /// How long the client waited.
        after: Duration,
    },
    /// The broker implements no version of an API that this client implements.
    #[error(
        "broker {addr} supports no version of {api:?} that this client implements \
         (client {client_min}..={client_max}, broker {broker})"
    )]
    UnsupportedVersion {
        /// Broker address.
        addr: String,
        /// The API.
        api: ApiKey,
        /// Lowest version this client implements.
        client_min: i16,
        /// Highest version this client implements.
        client_max: i16,
        /// The broker's range, or "none" when it does not offer the API at all.
        broker: String,
    },
    /// A response could not be framed or decoded, or a request could not be encoded.
    #[error("protocol error with {addr}: {message}")]
    Protocol {
        /// Broker address (empty when the error is not tied to one).
        addr: String,
        /// What went wrong.
        message: String,
    },
    /// The broker answered with a Kafka error code.
    #[error("{op}{at}: {error} (kafka error code {code}){detail}", code = .error.code(), detail = Detail(.message))]
    Kafka {
        /// The operation, e.g. "produce" or "commit offsets".
        op: &'static str,
        /// Topic, partition, offset, group and transactional id the error applies to
        /// (boxed, to keep `Result`s small).
        at: Box<At>,
        /// The Kafka error.
        error: ResponseError,
        /// The broker's error message, when it sent one.
        message: Option<String>,
    },
    /// A record could not be encoded or decoded.
    #[error("record batch{at}: {message}")]
    Records {
        /// Topic, partition and offset of the batch.
        at: At,
        /// What went wrong.
        message: String,
    },
    /// The caller passed something this client cannot send.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A transactional producer call that its state does not allow: a send outside a
    /// transaction, a commit after an abortable error, anything after a fatal error
    /// (fencing among them; `cause` says which).
    #[error("transactional id {transactional_id}: {message}")]
    TransactionState {
        /// The transactional id.
        transactional_id: String,
        /// What is wrong, naming the earlier error that caused it, if any.
        message: String,
        /// The Kafka error that put the producer in this state, if one did.
        cause: Option<ResponseError>,
    },
    /// The broker refused the client's SASL credentials or mechanism, the TLS handshake
    /// failed (the broker's certificate is not trusted or does not name the host, or the
    /// broker wants a client certificate), or the broker could not prove it knows the SCRAM
    /// credentials. Not retriable: the same settings fail again, as Kafka's
    /// `AuthenticationException`s. The message names the mechanism and user, never the
    /// password.
    #[error("authentication with {addr} failed: {message}")]
    Authentication {
        /// Broker address.
        addr: String,
        /// What was refused and why.
        message: String,
    },
    /// A group operation did not finish within its deadline.
    #[error("group {group}: {what} did not finish within {after:?}")]
    GroupTimeout {
        /// The group.
        group: String,
        /// The step that ran out of time.
        what: &'static str,
        /// The deadline.
        after: Duration,
    },
}

/// Formats an optional broker error message as `: message`.
struct Detail<'a>(&'a Option<String>);

impl fmt::Display for Detail<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(m) if !m.is_empty() => write!(f, ": {m}"),
            _ => Ok(()),
        }
    }
}

impl Error {
    /// A Kafka error code without a broker message.
    pub(crate) fn kafka(op: &'static str, at: At, error: ResponseError) -> Self {
        Self::Kafka {
            op,
            at: Box::new(at),
            error,
            message: None,
        }
    }

    /// A copy, for reporting one failure against several partitions. `std::io::Error` is
    /// not `Clone`; the copy keeps its kind and message.
    pub(crate) fn duplicate(&self) -> Self {
        let io = |e: &std::io::Error| std::io::Error::new(e.kind(), e.to_string());
        match self {
            Self::NoBrokerAvailable { tried, last } => Self::NoBrokerAvailable {
                tried: tried.clone(),
                last: last.clone(),
            },
            Self::Connect { addr, source } => Self::Connect {
                addr: addr.clone(),
                source: io(source),
            },
            Self::Io { addr, api, source } => Self::Io {
                addr: addr.clone(),
                api: *api,
                source: io(source),
            },
            Self::Timeout { addr, api, after } => Self::Timeout {
                addr: addr.clone(),
                api: *api,
                after: *after,
            },
            Self::UnsupportedVersion {
                addr,
                api,
                client_min,
                client_max,
                broker,
            } => Self::UnsupportedVersion {
                addr: addr.clone(),
                api: *api,
                client_min: *client_min,
                client_max: *client_max,
                broker: broker.clone(),
            },
            Self::Protocol { addr, message } => Self::Protocol {
                addr: addr.clone(),
                message: message.clone(),
            },
            Self::Kafka {
                op,
                at,
                error,
                message,
            } => Self::Kafka {
                op,
                at: at.clone(),
                error: *error,
                message: message.clone(),
            },
            Self::Records { at, message } => Self::Records {
                at: at.clone(),
                message: message.clone(),
            },
            Self::InvalidArgument(m) => Self::InvalidArgument(m.clone()),
            Self::TransactionState {
                transactional_id,
                message,
                cause,
            } => Self::TransactionState {
                transactional_id: transactional_id.clone(),
                message: message.clone(),
                cause: *cause,
            },
            Self::Authentication { addr, message } => Self::Authentication {
                addr: addr.clone(),
                message: message.clone(),
            },
            Self::GroupTimeout { group, what, after } => Self::GroupTimeout {
                group: group.clone(),
                what,
                after: *after,
            },
        }
    }

    /// The Kafka error, when the broker sent one.
    pub fn kafka_error(&self) -> Option<ResponseError> {
        match self {
            Self::Kafka { error, .. } => Some(*error),
            _ => None,
        }
    }

    /// The Kafka error code, when the broker sent one.
    pub fn code(&self) -> Option<i16> {
        self.kafka_error().map(|e| e.code())
    }

    /// Whether trying again (after [`needs_metadata_refresh`](Self::needs_metadata_refresh) or
    /// [`needs_coordinator_lookup`](Self::needs_coordinator_lookup), if they say so) can
    /// succeed. Transport failures count as retriable; whether a retry is *safe* is the
    /// caller's call for non-idempotent requests (see [`is_unsent`](Self::is_unsent)).
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Connect { .. }
            | Self::Io { .. }
            | Self::Timeout { .. }
            | Self::NoBrokerAvailable { .. } => true,
            Self::Kafka { error, .. } => is_retriable_code(*error),
            _ => false,
        }
    }

    /// Whether the request certainly never reached the broker, so resending cannot
    /// duplicate anything.
    pub fn is_unsent(&self) -> bool {
        matches!(self, Self::Connect { .. } | Self::NoBrokerAvailable { .. })
            || self.kafka_error().is_some_and(is_not_written_code)
    }

    /// Whether the error means the client's view of partition leadership is stale.
    pub fn needs_metadata_refresh(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::Io { .. } | Self::Timeout { .. } => true,
            Self::Kafka { error, .. } => is_stale_metadata_code(*error),
            _ => false,
        }
    }

    /// Whether another producer with the same transactional id took over (Kafka's
    /// PRODUCER_FENCED, INVALID_PRODUCER_EPOCH, TRANSACTION_COORDINATOR_FENCED), directly or
    /// as the cause of a [`Error::TransactionState`]. The producer must be closed: no
    /// further call on it can succeed.
    pub fn is_fenced(&self) -> bool {
        let code = match self {
            Self::Kafka { error, .. } => Some(*error),
            Self::TransactionState { cause, .. } => *cause,
            _ => None,
        };
        code.is_some_and(is_fencing_code)
    }

    /// Whether a transactional producer that saw this error can never be used again
    /// (fencing, authorization, a broker that refuses the transaction protocol), as the
    /// Java producer's fatal errors. Other failures inside a transaction are abortable:
    /// abort, then begin again.
    pub fn is_fatal_for_producer(&self) -> bool {
        match self {
            Self::Kafka { error, .. } => is_fatal_producer_code(*error),
            Self::TransactionState { cause, .. } => cause.is_some_and(is_fatal_producer_code),
            Self::UnsupportedVersion { .. } | Self::Authentication { .. } => true,
            _ => false,
        }
    }

    /// Whether the error means the group coordinator moved or is not ready.
    pub fn needs_coordinator_lookup(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::Io { .. } | Self::Timeout { .. } => true,
            Self::Kafka { error, .. } => matches!(
                error,
                ResponseError::NotCoordinator | ResponseError::CoordinatorNotAvailable
            ),
            _ => false,
        }
    }
}

/// Codes after which the same request can succeed later. Kafka's own table marks these
/// retriable; UNKNOWN_TOPIC_OR_PARTITION is among them because a topic being created is
/// unknown for a moment.
pub(crate) fn is_retriable_code(e: ResponseError) -> bool {
    e.is_retriable()
        || matches!(
            e,
            ResponseError::CoordinatorLoadInProgress
                | ResponseError::CoordinatorNotAvailable
                | ResponseError::NotCoordinator
                // The coordinator is still finishing the previous transaction (writing
                // its markers) or another call on this transactional id.
                | ResponseError::ConcurrentTransactions
        )
}

/// Codes meaning a newer producer instance owns the transactional id.
pub(crate) fn is_fencing_code(e: ResponseError) -> bool {
    matches!(
        e,
        ResponseError::ProducerFenced
            | ResponseError::InvalidProducerEpoch
            | ResponseError::TransactionCoordinatorFenced
    )
}

/// Codes after which a transactional producer is unusable, as the Java producer's
/// `TransactionManager` treats them (it moves to FATAL_ERROR).
pub(crate) fn is_fatal_producer_code(e: ResponseError) -> bool {
    is_fencing_code(e)
        || matches!(
            e,
            ResponseError::TransactionalIdAuthorizationFailed
                | ResponseError::ClusterAuthorizationFailed
                | ResponseError::InvalidTxnState
                | ResponseError::InvalidTransactionTimeout
                | ResponseError::UnsupportedVersion
                | ResponseError::UnsupportedForMessageFormat
        )
}

/// Codes meaning this broker does not lead the partition (any more, or yet).
pub(crate) fn is_stale_metadata_code(e: ResponseError) -> bool {
    matches!(
        e,
        ResponseError::NotLeaderOrFollower
            | ResponseError::LeaderNotAvailable
            | ResponseError::UnknownTopicOrPartition
            | ResponseError::FencedLeaderEpoch
            | ResponseError::UnknownLeaderEpoch
            | ResponseError::ReplicaNotAvailable
            | ResponseError::KafkaStorageError
            | ResponseError::NotEnoughReplicas
    )
}

/// Produce errors for which Kafka guarantees nothing was appended, so a resend cannot
/// duplicate records. (REQUEST_TIMED_OUT and NOT_ENOUGH_REPLICAS_AFTER_APPEND are absent:
/// the batch may be in the log.)
fn is_not_written_code(e: ResponseError) -> bool {
    matches!(
        e,
        ResponseError::NotLeaderOrFollower
            | ResponseError::LeaderNotAvailable
            | ResponseError::UnknownTopicOrPartition
            | ResponseError::NotEnoughReplicas
            | ResponseError::KafkaStorageError
            | ResponseError::CoordinatorLoadInProgress
            | ResponseError::CoordinatorNotAvailable
            | ResponseError::NotCoordinator
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_error_message_names_the_place() {
        let e = Error::kafka(
            "fetch",
            At::partition("orders", 3).at_offset(42),
            ResponseError::OffsetOutOfRange,
        );
        assert_eq!(
            e.to_string(),
            "fetch topic orders partition 3 offset 42: OffsetOutOfRange (kafka error code 1)"
        );
        assert_eq!(e.code(), Some(1));
        assert!(!e.is_retriable());
    }

    #[test]
    fn leadership_errors_are_retriable_and_refresh_metadata() {
        for err in [
            ResponseError::NotLeaderOrFollower,
            ResponseError::LeaderNotAvailable,
            ResponseError::UnknownTopicOrPartition,
        ] {
            let e = Error::kafka("produce", At::partition("t", 0), err);
            assert!(e.is_retriable(), "{err:?}");
            assert!(e.needs_metadata_refresh(), "{err:?}");
            assert!(e.is_unsent(), "{err:?}");
        }
        let timeout = Error::kafka(
            "produce",
            At::partition("t", 0),
            ResponseError::RequestTimedOut,
        );
        assert!(timeout.is_retriable());
        assert!(!timeout.is_unsent());
    }

    #[test]
    fn group_errors_are_fatal_or_coordinator_lookups() {
        let e = Error::kafka("commit", At::group("g"), ResponseError::IllegalGeneration);
        assert!(!e.is_retriable());
        let e = Error::kafka("commit", At::group("g"), ResponseError::NotCoordinator);
        assert!(e.is_retriable());
        assert!(e.needs_coordinator_lookup());
        assert!(!e.needs_metadata_refresh());
    }
}
