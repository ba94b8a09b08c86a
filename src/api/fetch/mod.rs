//! Reading: Fetch (with its incremental fetch sessions), ListOffsets, OffsetForLeaderEpoch.

// The style guide names the file after its API key inside its family directory.
#[allow(clippy::module_inception)]
pub mod fetch;
pub mod list_offsets;
pub mod offset_for_leader_epoch;
pub mod session;

use std::sync::Arc;

use crate::api::Code;
use crate::log::{LogManager, Partition, Topic};

/// The epoch every partition has on a single node: it never changes leader.
pub const LEADER_EPOCH: i32 = 0;

/// Check a client's `current_leader_epoch` (-1 = not given) as Kafka does.
pub fn check_leader_epoch(current: i32) -> Result<(), Code> {
    match current {
        c if c < 0 || c == LEADER_EPOCH => Ok(()),
        c if c > LEADER_EPOCH => Err(Code::UnknownLeaderEpoch),
        _ => Err(Code::FencedLeaderEpoch),
    }
}

/// Find a partition of a topic by name, or the error code Kafka gives.
pub fn partition_by_name(
    logs: &LogManager,
    topic: &str,
    index: i32,
) -> Result<Arc<Partition>, Code> {
    partition_of(
        logs.topic(topic).as_deref(),
        index,
        Code::UnknownTopicOrPartition,
    )
}

/// Find a partition of a topic (already looked up), or `unknown`.
pub fn partition_of(
    topic: Option<&Topic>,
    index: i32,
    unknown: Code,
) -> Result<Arc<Partition>, Code> {
    let t = topic.ok_or(unknown)?;
    usize::try_from(index)
        .ok()
        .and_then(|i| t.partitions.get(i))
        .cloned()
        .ok_or(Code::UnknownTopicOrPartition)
}
