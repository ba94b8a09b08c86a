//! DeleteRecords: move a partition's log start offset forward (`-1` = the high watermark);
//! whole segments below it are removed. The new start is checkpointed at once. A topic whose
//! `cleanup.policy` lacks `delete` gets POLICY_VIOLATION, as on Kafka: only compaction may
//! remove its records.

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse, RequestHeader};

use crate::api::fetch::partition_by_name;
use crate::api::{blocking, ApiError, Code, Ctx};
use crate::log::ReadError;
use crate::security::acl::Operation;

/// Handle DeleteRecords.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: DeleteRecordsRequest,
) -> Result<DeleteRecordsResponse, ApiError> {
    let broker = std::sync::Arc::clone(ctx.broker);
    // DELETE on each topic (Kafka: TOPIC_AUTHORIZATION_FAILED per partition).
    let allowed: Vec<bool> = req
        .topics
        .iter()
        .map(|t| ctx.authorize_topic(Operation::Delete, t.name.0.as_str()))
        .collect();
    let topics = blocking(move || {
        let topics: Vec<DeleteRecordsTopicResult> = req
            .topics
            .into_iter()
            .zip(allowed)
            .map(|(t, allowed)| {
                let parts = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let base = DeleteRecordsPartitionResult::default()
                            .with_partition_index(p.partition_index)
                            .with_low_watermark(-1);
                        if !allowed {
                            return base.with_error_code(Code::TopicAuthorizationFailed.code());
                        }
                        match partition_by_name(&broker.logs, t.name.0.as_str(), p.partition_index)
                        {
                            Err(code) => base.with_error_code(code.code()),
                            // Kafka: "Records of partition ... can not be deleted due to the
                            // configured policy".
                            Ok(part) if !part.config().deletes() => {
                                base.with_error_code(Code::PolicyViolation.code())
                            }
                            Ok(part) => match part.delete_records(p.offset) {
                                Ok(start) => base.with_low_watermark(start),
                                Err(ReadError::OutOfRange { .. }) => {
                                    base.with_error_code(Code::OffsetOutOfRange.code())
                                }
                                Err(ReadError::Storage(e)) => {
                                    tracing::error!(error = %e, "delete records failed");
                                    base.with_error_code(Code::KafkaStorageError.code())
                                }
                            },
                        }
                    })
                    .collect();
                DeleteRecordsTopicResult::default()
                    .with_name(t.name)
                    .with_partitions(parts)
            })
            .collect();
        if let Err(e) = broker.logs.checkpoint() {
            tracing::error!(error = %e, "checkpoint after delete records failed");
        }
        topics
    })
    .await?;
    Ok(DeleteRecordsResponse::default().with_topics(topics))
}
