//! WriteTxnMarkers: write COMMIT/ABORT markers into partitions. Kafka's coordinators send
//! it to partition leaders; clients send it through `Admin.abortTransaction`
//! (`kafka-transactions abort`) to end a hanging transaction a coordinator forgot.

use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{RequestHeader, WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use tracing::{info, warn};

use crate::api::{blocking, ApiError, Code, Ctx};
use crate::log::{AppendError, CONSUMER_OFFSETS_TOPIC};
use crate::security::acl::Operation;

/// Handle WriteTxnMarkers.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: WriteTxnMarkersRequest,
) -> Result<WriteTxnMarkersResponse, ApiError> {
    // Kafka: ALTER on the cluster, else CLUSTER_ACTION (the admin tool's abort needs one).
    let allowed =
        ctx.authorize_cluster(Operation::Alter) || ctx.authorize_cluster(Operation::ClusterAction);
    let broker = std::sync::Arc::clone(ctx.broker);
    let markers = blocking(move || {
        req.markers
            .into_iter()
            .map(|m| {
                let pid = m.producer_id.0;
                let commit = m.transaction_result;
                info!(
                    producer_id = pid,
                    epoch = m.producer_epoch,
                    result = if commit { "commit" } else { "abort" },
                    "writing transaction markers on request"
                );
                let topics = m
                    .topics
                    .into_iter()
                    .map(|t| {
                        let topic = broker.logs.topic(t.name.0.as_str());
                        let partitions = t
                            .partition_indexes
                            .iter()
                            .map(|&p| {
                                let code = if !allowed {
                                    Some(Code::ClusterAuthorizationFailed)
                                } else if t.name.0.as_str() == CONSUMER_OFFSETS_TOPIC {
                                    broker
                                        .groups
                                        .offsets
                                        .write_marker(pid, m.producer_epoch, commit)
                                        .err()
                                        .map(|e| {
                                            warn!(error = %e, "marker write failed");
                                            Code::KafkaStorageError
                                        })
                                } else {
                                    match topic.as_ref().and_then(|tp| {
                                        usize::try_from(p).ok().and_then(|i| tp.partitions.get(i))
                                    }) {
                                        None => Some(Code::UnknownTopicOrPartition),
                                        Some(part) => match part.append_marker(
                                            pid,
                                            m.producer_epoch,
                                            commit,
                                            m.coordinator_epoch,
                                        ) {
                                            Ok(_) => None,
                                            Err(AppendError::Fenced) => {
                                                Some(Code::InvalidProducerEpoch)
                                            }
                                            Err(e) => {
                                                warn!(error = %e, "marker write failed");
                                                Some(Code::KafkaStorageError)
                                            }
                                        },
                                    }
                                };
                                WritableTxnMarkerPartitionResult::default()
                                    .with_partition_index(p)
                                    .with_error_code(code.map_or(0, |c| c.code()))
                            })
                            .collect();
                        WritableTxnMarkerTopicResult::default()
                            .with_name(t.name)
                            .with_partitions(partitions)
                    })
                    .collect();
                WritableTxnMarkerResult::default()
                    .with_producer_id(m.producer_id)
                    .with_topics(topics)
            })
            .collect()
    })
    .await?;
    Ok(WriteTxnMarkersResponse::default().with_markers(markers))
}
