//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest local (-4), latest
//! tiered (-5, no tiers: answered like Kafka without remote storage, offset -1), and by
//! timestamp (first record whose timestamp is at least the target). At `read_committed`
//! (isolation level 1) latest is the last stable offset, and timestamp lookups see nothing
//! at or past it, as Kafka answers.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse, RequestHeader};
use tracing::error;

use super::{check_leader_epoch, partition_by_name, LEADER_EPOCH};
use crate::api::{blocking, ApiError, Code, Ctx};
use crate::security::acl::Operation;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

/// Handle ListOffsets.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    hdr: &RequestHeader,
    req: ListOffsetsRequest,
) -> Result<ListOffsetsResponse, ApiError> {
    let broker = std::sync::Arc::clone(ctx.broker);
    // leader_epoch exists from v4 on; the codec refuses a non-default value before that.
    let epoch = if hdr.request_api_version >= 4 {
        LEADER_EPOCH
    } else {
        -1
    };
    let read_committed = req.isolation_level == 1;
    // DESCRIBE on each topic (Kafka: TOPIC_AUTHORIZATION_FAILED for every partition of a
    // topic without it, before looking for the topic).
    let allowed: Vec<bool> = req
        .topics
        .iter()
        .map(|t| ctx.authorize_topic(Operation::Describe, t.name.0.as_str()))
        .collect();
    let topics = blocking(move || {
        req.topics
            .into_iter()
            .zip(allowed)
            .map(|(t, allowed)| {
                let parts = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let base = ListOffsetsPartitionResponse::default()
                            .with_partition_index(p.partition_index)
                            .with_timestamp(-1)
                            .with_offset(-1);
                        if !allowed {
                            return base.with_error_code(Code::TopicAuthorizationFailed.code());
                        }
                        let part = match check_leader_epoch(p.current_leader_epoch).and_then(|()| {
                            partition_by_name(&broker.logs, t.name.0.as_str(), p.partition_index)
                        }) {
                            Ok(part) => part,
                            Err(code) => return base.with_error_code(code.code()),
                        };
                        let (log_start, _, hw, _) = part.offsets();
                        let visible_end = if read_committed {
                            part.last_stable_offset()
                        } else {
                            hw
                        };
                        let found = match p.timestamp {
                            LATEST => Ok(Some((-1, visible_end))),
                            EARLIEST | EARLIEST_LOCAL => Ok(Some((-1, log_start))),
                            LATEST_TIERED => Ok(Some((-1, -1))),
                            MAX_TIMESTAMP => part.max_timestamp(),
                            ts if ts >= 0 => part.offset_for_timestamp(ts),
                            _ => return base.with_error_code(Code::InvalidRequest.code()),
                        }
                        .map(|f| {
                            // Only lookups that find a record hide what read_committed may
                            // not see yet; earliest and latest are positions.
                            let finds_a_record = p.timestamp >= 0 || p.timestamp == MAX_TIMESTAMP;
                            f.filter(|(_, off)| !finds_a_record || *off < visible_end)
                        });
                        match found {
                            Ok(Some((ts, off))) => base
                                .with_timestamp(ts)
                                .with_offset(off)
                                .with_leader_epoch(epoch),
                            // No record at or after the timestamp: Kafka answers -1/-1.
                            Ok(None) => base.with_leader_epoch(epoch),
                            Err(e) => {
                                error!(partition = ?part, error = %e, "list offsets failed");
                                base.with_error_code(Code::KafkaStorageError.code())
                            }
                        }
                    })
                    .collect();
                ListOffsetsTopicResponse::default()
                    .with_name(t.name)
                    .with_partitions(parts)
            })
            .collect()
    })
    .await?;
    Ok(ListOffsetsResponse::default().with_topics(topics))
}
