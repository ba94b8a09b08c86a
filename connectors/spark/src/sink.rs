//! STUB per the shared contract, replaced by spark-window's on merge.
#![allow(missing_docs)]
use crate::agg::Updates;
use crate::error::Result;
use crate::range::{OffsetRange, TopicPartition};
pub use crate::redis_sink::Applied;
use crate::window::WatermarkState;
use std::collections::BTreeMap;
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    pub offsets: BTreeMap<TopicPartition, i64>,
    pub watermark: WatermarkState,
}
#[async_trait::async_trait]
pub trait ResultSink: Send {
    async fn restore(&mut self) -> Result<Checkpoint>;
    async fn apply(
        &mut self,
        ranges: &[OffsetRange],
        updates: &Updates,
        watermark: WatermarkState,
    ) -> Result<Applied>;
}
