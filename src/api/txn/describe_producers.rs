//! DescribeProducers: the producers each partition remembers (id, epoch, last sequence and
//! timestamp, coordinator epoch of their last marker, and the first offset of their open
//! transaction), what `kafka-transactions describe-producers` and `find-hanging` read.

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeProducersResponse, ProducerId, RequestHeader,
};

use crate::api::{ApiError, Code, Ctx};
use crate::security::acl::Operation;

/// Handle DescribeProducers.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: DescribeProducersRequest,
) -> Result<DescribeProducersResponse, ApiError> {
    let logs = &ctx.broker.logs;
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let topic = logs.topic(t.name.0.as_str());
            // READ on the topic (Kafka: TOPIC_AUTHORIZATION_FAILED per partition).
            let allowed = ctx.authorize_topic(Operation::Read, t.name.0.as_str());
            let partitions = t
                .partition_indexes
                .iter()
                .map(|&p| {
                    let r = PartitionResponse::default().with_partition_index(p);
                    if !allowed {
                        return r.with_error_code(Code::TopicAuthorizationFailed.code());
                    }
                    let part = topic
                        .as_ref()
                        .and_then(|tp| usize::try_from(p).ok().and_then(|i| tp.partitions.get(i)));
                    match part {
                        None => r.with_error_code(Code::UnknownTopicOrPartition.code()),
                        Some(part) => r.with_active_producers(
                            part.producer_infos()
                                .into_iter()
                                .map(|i| {
                                    ProducerState::default()
                                        .with_producer_id(ProducerId(i.producer_id))
                                        .with_producer_epoch(i32::from(i.producer_epoch))
                                        .with_last_sequence(i.last_sequence)
                                        .with_last_timestamp(i.last_timestamp)
                                        .with_coordinator_epoch(i.coordinator_epoch)
                                        .with_current_txn_start_offset(i.current_txn_start_offset)
                                })
                                .collect(),
                        ),
                    }
                })
                .collect();
            TopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    Ok(DescribeProducersResponse::default().with_topics(topics))
}
