//! [`DirectStream`]: Spark's `DirectKafkaInputDStream` and the scheduler around it.
//! Every batch interval it (1) asks the strategy for the partitions and starts new ones
//! at their explicit, committed or reset offset, (2) reads each partition's latest
//! offset, (3) clamps by `maxRatePerPartition` and the backpressure estimate, (4) makes
//! one [`OffsetRange`] per partition from the current position to the clamped latest and
//! moves the position there, and (5) sends the queued commits (`commitAll`).
//! [`DirectStream::for_each_batch`] then runs the job on each batch (`foreachRDD`) and
//! reports its timing to the rate estimator and to the registered
//! [`StreamingListener`]s (see `listener`).
//!
//! Batches are due at fixed ticks (`start + k × interval`). A job slower than the interval
//! makes later batches start late; that lateness is the scheduling delay the estimator
//! sees, as with Spark's job queue. A batch's latest offsets are read when it starts.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_client::{Client, IsolationLevel, OffsetSpec};

use crate::batch::Batch;
use crate::clock::now_ms;
use crate::commit::{CommitQueue, Committer};
use crate::config::{AutoOffsetReset, StreamConfig};
use crate::error::{BoxError, Error, Result};
use crate::listener::{BatchInfo, StreamingListener};
use crate::range::{OffsetRange, TopicPartition};
use crate::rate::{clamp, PidRateEstimator, RateLimits};
use crate::read::ReadOptions;
use crate::strategy::ConsumerStrategy;

/// Timing of one completed batch, as Spark's `BatchInfo` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchTiming {
    /// Offsets covered.
    pub records: i64,
    /// Time the job ran.
    pub processing_delay: Duration,
    /// Time the batch waited past its due time before it started.
    pub scheduling_delay: Duration,
}

/// A direct stream over Kafka partitions.
#[derive(Debug)]
pub struct DirectStream {
    client: Client,
    strategy: ConsumerStrategy,
    config: StreamConfig,
    current: BTreeMap<TopicPartition, i64>,
    commits: CommitQueue,
    committer: Committer,
    estimator: Option<PidRateEstimator>,
    /// The published backpressure rate (records/s, whole stream); -1 until there is one.
    latest_rate: i64,
    started: Instant,
    started_wall_ms: i64,
    /// Told about every completed batch (Spark's `addStreamingListener`).
    listeners: Vec<Arc<dyn StreamingListener>>,
    /// The limits the latest batch was clamped by, for its [`BatchInfo`].
    last_limits: Option<RateLimits>,
}

impl DirectStream {
    /// Builds the stream and finds every partition's starting offset: an explicit offset
    /// from the strategy, else the group's committed offset, else `auto.offset.reset`.
    pub async fn create(
        client: Client,
        strategy: ConsumerStrategy,
        config: StreamConfig,
    ) -> Result<Self> {
        config.validate()?;
        let commits = CommitQueue::new();
        let committer = Committer::start(client.clone(), config.group_id.clone(), commits.clone());
        let interval_ms = i64::try_from(config.batch_interval.as_millis()).unwrap_or(i64::MAX);
        let estimator = config
            .backpressure
            .then(|| PidRateEstimator::new(interval_ms, config.pid));
        let mut stream = Self {
            client,
            strategy,
            config,
            current: BTreeMap::new(),
            commits,
            committer,
            estimator,
            latest_rate: -1,
            started: Instant::now(),
            started_wall_ms: now_ms(),
            listeners: Vec::new(),
            last_limits: None,
        };
        let partitions = stream.strategy.partitions(&stream.client).await?;
        stream.track_new(&partitions).await?;
        tracing::info!(
            strategy = stream.strategy.describe(),
            partitions = stream.current.len(),
            "direct stream created"
        );
        Ok(stream)
    }

    /// The queue that [`CommitQueue::commit_async`] fills (Spark's `CanCommitOffsets`).
    pub fn commit_queue(&self) -> CommitQueue {
        self.commits.clone()
    }

    /// Queues ranges for commit with the next batch.
    pub fn commit_async(&self, ranges: &[OffsetRange]) {
        self.commits.commit_async(ranges);
    }

    /// Where each partition's next batch starts.
    pub fn current_offsets(&self) -> &BTreeMap<TopicPartition, i64> {
        &self.current
    }

    /// The backpressure estimate now (records/s for the whole stream), if there is one.
    pub fn rate_limit(&self) -> Option<i64> {
        (self.latest_rate > 0).then_some(self.latest_rate)
    }

    /// The stream's settings.
    pub fn config(&self) -> &StreamConfig {
        &self.config
    }

    /// Registers a listener told about every batch [`DirectStream::for_each_batch`]
    /// completes (Spark's `StreamingContext.addStreamingListener`).
    pub fn add_streaming_listener(&mut self, listener: Arc<dyn StreamingListener>) {
        self.listeners.push(listener);
    }

    /// Computes the next batch now (Spark's `compute(validTime)`), moves the positions to
    /// its `untilOffset`s and sends queued commits. `time_ms` is the batch time.
    pub async fn next_batch(&mut self, time_ms: i64) -> Result<Batch> {
        let partitions = self.strategy.partitions(&self.client).await?;
        for tp in self.current.keys() {
            if partitions.binary_search(tp).is_err() {
                // Spark: "Previously tracked partitions ... been revoked by Kafka".
                return Err(Error::PartitionGone { tp: tp.clone() });
            }
        }
        self.track_new(&partitions).await?;
        let latest = self.latest_offsets().await?;
        for (tp, l) in &latest {
            let current = self.current.get(tp).copied().unwrap_or(*l);
            if *l < current {
                return Err(Error::OffsetWentBack {
                    tp: tp.clone(),
                    latest: *l,
                    current,
                });
            }
        }
        let estimated = if self.config.backpressure {
            Some(if self.latest_rate > 0 {
                self.latest_rate
            } else {
                self.config.initial_rate
            })
        } else {
            None
        };
        let limits = RateLimits {
            estimated_rate: estimated,
            max_rate_per_partition: self.config.max_rate_per_partition,
            min_rate_per_partition: self.config.min_rate_per_partition,
            batch_seconds: self.config.batch_interval.as_secs_f64(),
        };
        let until = clamp(&self.current, &latest, &limits);
        self.last_limits = Some(limits);
        let mut ranges = Vec::with_capacity(until.len());
        for (tp, u) in until {
            let from = self.current.get(&tp).copied().unwrap_or(u);
            ranges.push(OffsetRange::new(tp.topic.clone(), tp.partition, from, u));
            self.current.insert(tp, u);
        }
        self.committer.commit_all();
        Ok(Batch::new(
            time_ms,
            ranges,
            self.client.clone(),
            ReadOptions {
                allow_non_consecutive: self.config.allow_non_consecutive_offsets,
                poll_timeout: self.config.poll_timeout,
                isolation: self.config.isolation_level,
            },
            self.config.max_partition_fetch_bytes,
        ))
    }

    /// Tells the rate estimator how a batch went (Spark's `RateController.onBatchCompleted`).
    pub fn batch_completed(&mut self, timing: BatchTiming) {
        let Some(estimator) = &mut self.estimator else {
            return;
        };
        let now = i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        if let Some(rate) = estimator.compute(
            now,
            timing.records,
            ms(timing.processing_delay),
            ms(timing.scheduling_delay),
        ) {
            // Spark publishes `rate.toLong`.
            self.latest_rate = rate as i64;
            tracing::debug!(rate = self.latest_rate, "backpressure rate");
        }
    }

    /// Sends the queued commits and waits until they are done (on shutdown).
    pub async fn flush_commits(&self) {
        self.committer.flush().await;
    }

    /// Runs `job` on every batch until `shutdown` resolves (`foreachRDD` plus
    /// `StreamingContext.start/awaitTermination`). A shutdown that arrives while a batch
    /// runs lets it finish. On the way out the queued commits are sent and awaited. A
    /// failed job stops the stream with [`Error::Job`], after the commits queued by
    /// earlier batches are sent; its own ranges are read again after a restart.
    pub async fn for_each_batch<S, F, Fut>(&mut self, shutdown: S, mut job: F) -> Result<()>
    where
        S: Future<Output = ()>,
        F: FnMut(Batch) -> Fut,
        Fut: Future<Output = std::result::Result<(), BoxError>>,
    {
        let interval = self.config.batch_interval;
        let mut shutdown = std::pin::pin!(shutdown);
        let mut stopping = false;
        let mut due = Instant::now() + interval;
        while !stopping {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = tokio::time::sleep_until(due.into()) => {}
            }
            let scheduled = due;
            due += interval;
            let time_ms = self.started_wall_ms.saturating_add(
                i64::try_from(scheduled.duration_since(self.started).as_millis()).unwrap_or(0),
            );
            let batch = match self.next_batch(time_ms).await {
                Ok(b) => b,
                Err(e) => {
                    self.flush_commits().await;
                    return Err(e);
                }
            };
            let records = batch.count();
            // Only copied when someone listens.
            let ranges = (!self.listeners.is_empty()).then(|| batch.offset_ranges().to_vec());
            let begun = Instant::now();
            let run = job(batch);
            let mut run = std::pin::pin!(run);
            let outcome = loop {
                tokio::select! {
                    out = &mut run => break out,
                    () = &mut shutdown, if !stopping => {
                        tracing::info!("shutdown requested: finishing the batch in flight");
                        stopping = true;
                    }
                }
            };
            let ended = Instant::now();
            if let Err(source) = outcome {
                self.flush_commits().await;
                return Err(Error::Job {
                    batch_time_ms: time_ms,
                    source,
                });
            }
            let timing = BatchTiming {
                records,
                processing_delay: ended.duration_since(begun),
                scheduling_delay: begun.saturating_duration_since(scheduled),
            };
            self.batch_completed(timing);
            if let (Some(ranges), Some(limits)) = (ranges, self.last_limits) {
                let info = BatchInfo {
                    batch_time_ms: time_ms,
                    offset_ranges: ranges,
                    records,
                    scheduling_delay: timing.scheduling_delay,
                    processing_delay: timing.processing_delay,
                    processing_end_ms: now_ms(),
                    limits,
                };
                for l in &self.listeners {
                    l.on_batch_completed(&info);
                }
            }
        }
        self.flush_commits().await;
        Ok(())
    }

    /// Starts tracking partitions not tracked yet.
    async fn track_new(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        let new: Vec<TopicPartition> = partitions
            .iter()
            .filter(|tp| !self.current.contains_key(*tp))
            .cloned()
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let starts = self.starting_offsets(&new).await?;
        for (tp, offset) in starts {
            tracing::info!(%tp, offset, "tracking partition");
            self.current.insert(tp, offset);
        }
        Ok(())
    }

    /// Starting offsets of `new` partitions: explicit, else committed, else reset. A
    /// committed offset outside the log is reset too, as Kafka's consumer does when its
    /// first fetch is out of range.
    async fn starting_offsets(&self, new: &[TopicPartition]) -> Result<Vec<(TopicPartition, i64)>> {
        let mut out: Vec<(TopicPartition, i64)> = Vec::with_capacity(new.len());
        let mut pending: Vec<TopicPartition> = Vec::new();
        for tp in new {
            match self.strategy.offsets().get(tp) {
                Some(o) => out.push((tp.clone(), *o)),
                None => pending.push(tp.clone()),
            }
        }
        if pending.is_empty() {
            return Ok(out);
        }
        let keys: Vec<(String, i32)> = pending
            .iter()
            .map(|tp| (tp.topic.clone(), tp.partition))
            .collect();
        let committed: Vec<Option<i64>> = match &self.config.group_id {
            // At read_committed, an offset commit still inside an undecided transaction is
            // waited out rather than read past, as Kafka's consumer does.
            Some(group) => self
                .client
                .fetch_committed_with(
                    group,
                    &keys,
                    self.config.isolation_level == IsolationLevel::ReadCommitted,
                )
                .await?
                .into_iter()
                .map(|c| c.offset)
                .collect(),
            None => vec![None; keys.len()],
        };
        let earliest = self.list(&keys, OffsetSpec::Earliest).await?;
        let latest = self.list(&keys, OffsetSpec::Latest).await?;
        for (i, tp) in pending.into_iter().enumerate() {
            let lo = earliest.get(i).copied().unwrap_or(0);
            let hi = latest.get(i).copied().unwrap_or(lo);
            match committed.get(i).copied().flatten() {
                Some(c) if (lo..=hi).contains(&c) => out.push((tp, c)),
                committed => {
                    if let Some(c) = committed {
                        tracing::warn!(%tp, committed = c, earliest = lo, latest = hi,
                            "committed offset is outside the log; applying auto.offset.reset");
                    }
                    let start = match self.config.auto_offset_reset {
                        AutoOffsetReset::Earliest => lo,
                        AutoOffsetReset::Latest => hi,
                        AutoOffsetReset::None => return Err(Error::NoOffset { tp }),
                    };
                    out.push((tp, start));
                }
            }
        }
        Ok(out)
    }

    /// Each tracked partition's latest offset (Spark's `latestOffsets`: `seekToEnd`); at
    /// read_committed, the last stable offset, as Kafka's consumer's `seekToEnd` gives.
    async fn latest_offsets(&self) -> Result<BTreeMap<TopicPartition, i64>> {
        let keys: Vec<(String, i32)> = self
            .current
            .keys()
            .map(|tp| (tp.topic.clone(), tp.partition))
            .collect();
        let offsets = self.list(&keys, OffsetSpec::Latest).await?;
        Ok(self.current.keys().cloned().zip(offsets).collect())
    }

    async fn list(&self, keys: &[(String, i32)], spec: OffsetSpec) -> Result<Vec<i64>> {
        let mut out = Vec::with_capacity(keys.len());
        for (r, (topic, partition)) in self
            .client
            .list_offsets_many_isolated(keys, spec, self.config.isolation_level)
            .await
            .into_iter()
            .zip(keys)
        {
            // Earliest and Latest always have an answer; None is only for timestamps.
            let offset = r?.ok_or_else(|| {
                Error::Config(format!(
                    "{topic}-{partition}: the broker has no {spec:?} offset"
                ))
            })?;
            out.push(offset);
        }
        Ok(out)
    }
}
