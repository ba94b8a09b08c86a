//! STUB per the shared contract, replaced by spark-window's on merge.
#![allow(missing_docs)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WatermarkState {
    pub max_event_ms: Option<i64>,
    pub late_total: u64,
}
