//! `sluice-spark`: what Spark Streaming's Kafka direct stream (spark-streaming-kafka-0-10)
//! does, on one machine without a JVM. Every batch interval the stream decides one
//! [`OffsetRange`] per partition itself, reads exactly those ranges from any Kafka
//! (Sluice or Apache Kafka), runs the job, and tracks its position itself.
//!
//! Module map:
//! - `config`: [`StreamConfig`] with Spark's key names and defaults, [`AutoOffsetReset`].
//! - `strategy`: [`ConsumerStrategy`]: `Subscribe`, `SubscribePattern`, `Assign`.
//! - `range`: [`OffsetRange`] (`HasOffsetRanges`), [`TopicPartition`].
//! - `rate`: Spark's PID rate estimator and the per-partition clamp.
//! - `stream`: [`DirectStream`]: computing batches, running the job, the batch clock.
//! - `listener`: [`StreamingListener`], [`BatchInfo`], [`BatchHistory`]: completed batches
//!   as Spark's listener bus reports them, and the last N of them kept.
//! - `ui`: the streaming page (Spark's Streaming tab), `/api/batches` and Prometheus
//!   `/metrics` over a [`BatchHistory`].
//! - `batch`: [`Batch`] (a `KafkaRDD`): ranges, and reading them in parallel.
//! - `read`: reading one range exactly, `[from, until)`.
//! - `commit`: [`CommitQueue`] (`CanCommitOffsets`): commits sent with the next batch.
//! - `agg`: [`Aggregate`], [`Partial`], [`Cell`], [`Updates`]: a batch's results, mergeable.
//! - `window`: [`Windows`], [`Watermark`], [`EventTime`]: event-time windows and the
//!   watermark, with Spark Structured Streaming's semantics.
//! - `sink`: [`ResultSink`], [`Checkpoint`], [`Applied`]: results, offsets and watermark
//!   applied atomically and idempotently.
//! - `wordcount`: the built-in job, `DirectKafkaWordCount`'s word splitting and counting.
//! - `redis_sink`: [`RedisSink`]: counts and offsets applied atomically (exactly-once).
//! - `pg_sink`: [`PgSink`]: results, offsets and watermark in one PostgreSQL transaction
//!   per batch (exactly-once), retried across lost connections and database restarts.
//! - `kafka_sink`: [`KafkaSink`]: results and offsets in one Kafka transaction (exactly-once).
//! - `flume`: Flume receivers: [`FlumePushStream`] (an avro source for Flume's avro sink)
//!   and [`FlumePullStream`] (polls Spark's SparkSink, acks after the job).
//! - `job`: declarative jobs from a TOML file ([`job::run`]): parse, join static tables,
//!   filter, window, aggregate, sink.
//! - `clock`: the wall clock in milliseconds since the epoch.
//! - `error`: [`Error`].

mod agg;
mod batch;
mod clock;
mod commit;
mod config;
mod error;
mod flume;
pub mod job;
mod kafka_params;
mod kafka_sink;
mod listener;
mod pg_sink;
mod range;
mod rate;
mod read;
mod redis_sink;
mod sink;
mod strategy;
mod stream;
pub mod ui;
mod window;
pub mod wordcount;

pub use agg::{Aggregate, Cell, LateRecord, Partial, Updates};
pub use batch::{Batch, PartitionRecords};
pub use commit::{CommitCallback, CommitQueue};
pub use config::{AutoOffsetReset, PidConfig, StreamConfig};
pub use error::{BoxError, Error, Result};
pub use flume::{
    FlumeBatch, FlumePullStream, FlumePushStream, PullOptions, PushOptions, DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_PARALLELISM, DEFAULT_PUSH_CAPACITY,
};
pub use kafka_params::{client_config, is_client_key, DEFAULT_CLIENT_ID};
pub use kafka_sink::{
    parse_watermark_metadata, watermark_metadata, KafkaSink, BATCH_TIME_HEADER,
    OFFSET_RANGES_HEADER,
};
pub use listener::{
    BatchHistory, BatchInfo, HistorySnapshot, StreamingListener, DEFAULT_RETAINED_BATCHES,
};
pub use pg_sink::{PgSink, RetryPolicy, DEFAULT_PG_PREFIX, DEFAULT_POOL_SIZE, NO_WINDOW};
pub use range::{OffsetRange, TopicPartition};
pub use rate::{clamp, max_messages_per_partition, PidRateEstimator, RateLimits};
pub use redis_sink::{RedisSink, DEFAULT_PREFIX};
pub use sink::{Applied, Checkpoint, ResultSink};
pub use sluice_client::{Client, ClientConfig, FetchedRecord, IsolationLevel};
pub use sluice_flume_rpc::Event;
pub use strategy::ConsumerStrategy;
pub use stream::{BatchTiming, DirectStream};
pub use window::{parse_duration, EventTime, Watermark, WatermarkState, Windows};
