//! [`ResultSink`]: where a job's results go, together with the batch's offset ranges and
//! the watermark state, atomically and idempotently. This is Spark's "store results and
//! offsets in one transaction" pattern (the Kafka integration guide's exactly-once
//! option): the sink itself is the checkpoint, so a restart resumes from what it holds
//! ([`ResultSink::restore`]) and a batch replayed after a crash, whose ranges'
//! `untilOffset`s are all stored already, changes nothing ([`Applied::AlreadyApplied`]).
//!
//! Implemented by `RedisSink` (and other sinks in their own modules); what the updates
//! are lives in `agg`, the watermark in `window`.

use std::collections::BTreeMap;

use crate::agg::Updates;
use crate::error::Result;
use crate::range::{OffsetRange, TopicPartition};
use crate::window::WatermarkState;

/// What a sink's `apply` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The results were merged and the offsets moved.
    Applied,
    /// The sink already holds this batch's `untilOffset`s: a replay, ignored.
    AlreadyApplied,
}

/// What a sink holds about progress: where each partition's next batch starts, and the
/// watermark state stored with the last batch applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// Partition → the `untilOffset` applied last (the next batch's `fromOffset`).
    pub offsets: BTreeMap<TopicPartition, i64>,
    /// The watermark state stored with the last batch.
    pub watermark: WatermarkState,
}

/// A sink applying a batch's updates with its offset ranges and watermark state, all or
/// nothing, and ignoring a batch it already holds.
#[async_trait::async_trait]
pub trait ResultSink: Send {
    /// Where to start and the watermark to resume (empty before the first batch).
    async fn restore(&mut self) -> Result<Checkpoint>;

    /// Applies one batch atomically: merges `updates` into the stored results, stores every
    /// range's `untilOffset` and `watermark`. A replay (every range's `untilOffset` stored
    /// already) changes nothing; a range that neither starts at the stored offset nor is
    /// the partition's first is refused with an error, changing nothing.
    async fn apply(
        &mut self,
        ranges: &[OffsetRange],
        updates: &Updates,
        watermark: WatermarkState,
    ) -> Result<Applied>;
}
