//! The library's error type. Kafka client failures keep their own type (they already name
//! the broker, topic, partition and offset); the variants here add what the direct stream
//! itself can get wrong: bad settings, offsets that do not line up, a job that failed, a
//! Redis store that refuses a batch.

use crate::range::TopicPartition;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The error a job closure may return: anything that is an error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in the stream, its readers and its sinks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A Kafka request failed.
    #[error(transparent)]
    Kafka(#[from] sluice_client::Error),
    /// A setting is invalid; the message names the key.
    #[error("invalid setting: {0}")]
    Config(String),
    /// A partition has no starting position: no explicit or committed offset, and
    /// `auto.offset.reset` is `none`.
    #[error(
        "{tp}: no committed offset and auto.offset.reset is none \
         (Kafka's NoOffsetForPartitionException)"
    )]
    NoOffset {
        /// The partition.
        tp: TopicPartition,
    },
    /// A partition the stream was reading is gone from the cluster (topic deleted, or a
    /// fixed assignment named a partition that does not exist).
    #[error("{tp}: the partition is no longer in the cluster's metadata")]
    PartitionGone {
        /// The partition.
        tp: TopicPartition,
    },
    /// The partition's latest offset went below the stream's position: the log was
    /// truncated or the topic was recreated, and records the stream expected are gone.
    #[error("{tp}: latest offset {latest} is below the stream's position {current}")]
    OffsetWentBack {
        /// The partition.
        tp: TopicPartition,
        /// Its latest offset now.
        latest: i64,
        /// Where the stream was.
        current: i64,
    },
    /// A record's offset was not the next one in the range; Spark refuses this unless
    /// `spark.streaming.kafka.allowNonConsecutiveOffsets` is set (compacted topics, and
    /// transaction markers, leave gaps).
    #[error(
        "{tp}: expected offset {expected} but the next record is at {found} \
         (a compacted or transactional topic? set \
         spark.streaming.kafka.allowNonConsecutiveOffsets=true to accept gaps)"
    )]
    NonConsecutive {
        /// The partition.
        tp: TopicPartition,
        /// The offset the reader expected.
        expected: i64,
        /// The offset it found; the range's `untilOffset` when the range ended early.
        found: i64,
    },
    /// The broker returned nothing for a range for longer than the poll timeout.
    #[error(
        "{tp}: no records at offset {offset} (range until {until}) after polling for {after_ms} ms \
         (spark.streaming.kafka.consumer.poll.ms)"
    )]
    PollTimeout {
        /// The partition.
        tp: TopicPartition,
        /// The offset asked for.
        offset: i64,
        /// End of the range being read.
        until: i64,
        /// How long the reader waited.
        after_ms: u128,
    },
    /// The job closure failed, or a partition task panicked.
    #[error("job failed in batch {batch_time_ms}: {source}")]
    Job {
        /// The batch's time, ms since the epoch.
        batch_time_ms: i64,
        /// What the job returned.
        #[source]
        source: BoxError,
    },
    /// A Redis command failed.
    #[error("redis {what}: {source}")]
    Redis {
        /// What was being done.
        what: String,
        /// The client's error.
        #[source]
        source: redis::RedisError,
    },
    /// The offsets stored in Redis do not line up with a batch: the batch overlaps what
    /// was applied, or would leave a gap. Nothing of the batch was applied.
    #[error(
        "redis offsets {key} field {field} hold {stored}, but the batch's range is \
         [{from}, {until}): refusing an overlapping or gapped batch"
    )]
    OffsetMismatch {
        /// The Redis hash holding offsets.
        key: String,
        /// The `topic:partition` field.
        field: String,
        /// What Redis holds.
        stored: String,
        /// The batch range's `fromOffset`.
        from: i64,
        /// The batch range's `untilOffset`.
        until: i64,
    },
    /// A PostgreSQL connection or statement failed (after the sink's retries, when the
    /// failure was a lost connection or a database restart).
    #[error("postgres {what}: {source}")]
    Postgres {
        /// What was being done, with the database (never its password).
        what: String,
        /// The driver's or the pool's error, with the server's message.
        #[source]
        source: BoxError,
    },
    /// A sink's stored offset for a partition does not line up with a batch: the batch
    /// overlaps what was applied, or would leave a gap. Nothing of the batch was written.
    #[error(
        "{table}: partition {tp} has stored offset {stored}, but the batch's range is \
         [{from}, {until}): refusing an overlapping or gapped batch, nothing written"
    )]
    StoredOffsetMismatch {
        /// Where the offsets are stored (a table).
        table: String,
        /// The partition.
        tp: TopicPartition,
        /// The offset stored for it.
        stored: i64,
        /// The batch range's `fromOffset`.
        from: i64,
        /// The batch range's `untilOffset`.
        until: i64,
    },
    /// A Flume receiver failed.
    #[error("flume {what}: {message}")]
    Flume {
        /// What was being done, with the peer address.
        what: String,
        /// What went wrong.
        message: String,
    },
}
