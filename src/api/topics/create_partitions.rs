//! CreatePartitions: grow a topic's partition count; shrinking or keeping it is
//! INVALID_PARTITIONS, as in Kafka. Assignments may only name this broker.

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse, RequestHeader};

use crate::api::{blocking, sb, ApiError, Code, Ctx};
use crate::log::CreateError;
use crate::security::acl::Operation;

/// Handle CreatePartitions.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: CreatePartitionsRequest,
) -> Result<CreatePartitionsResponse, ApiError> {
    let broker = std::sync::Arc::clone(ctx.broker);
    // ALTER on each topic (Kafka: TOPIC_AUTHORIZATION_FAILED, "The topic authorization is
    // failed.").
    let unauthorized: std::collections::HashSet<String> = req
        .topics
        .iter()
        .filter(|t| !ctx.authorize_topic(Operation::Alter, t.name.0.as_str()))
        .map(|t| t.name.0.to_string())
        .collect();
    // Kafka's controller adds each topic's new partitions to one bounded list of records
    // (10,000): the topic that would overflow it, and every growing topic after it, fails
    // with UNKNOWN_SERVER_ERROR (an unexpected BoundedListTooLongException there, unlike
    // CreateTopics' POLICY_VIOLATION). Kafka commits what the list held; Sluice creates
    // nothing for a refused topic.
    let mut used = 0usize;
    let mut full = false;
    let refused: std::collections::HashSet<String> = req
        .topics
        .iter()
        .filter(|t| {
            if unauthorized.contains(t.name.0.as_str()) {
                return false;
            }
            let have = broker
                .logs
                .topic(t.name.0.as_str())
                .map_or(0, |t| t.partitions.len());
            let growth = super::records(
                t.count
                    .saturating_sub(i32::try_from(have).unwrap_or(i32::MAX)),
                0,
            );
            if growth == 0 {
                return false;
            }
            full = full || used.saturating_add(growth) > super::MAX_RECORDS_PER_USER_OP;
            used = used.saturating_add(growth);
            full
        })
        .map(|t| t.name.0.to_string())
        .collect();
    if !refused.is_empty() {
        tracing::warn!(
            topics = refused.len(),
            "CreatePartitions refused: more metadata records than one request may write"
        );
    }
    let results = blocking(move || {
        req.topics
            .into_iter()
            .map(|t| {
                let base = CreatePartitionsTopicResult::default().with_name(t.name.clone());
                let fail = |code: Code, msg: String| base.clone().with_error_code(code.code()).with_error_message(Some(sb(msg)));
                if unauthorized.contains(t.name.0.as_str()) {
                    return fail(Code::TopicAuthorizationFailed, "The topic authorization is failed.".into());
                }
                if refused.contains(t.name.0.as_str()) {
                    return fail(
                        Code::UnknownServerError,
                        format!(
                            "{}: one request may add at most {} partitions",
                            super::TOO_LARGE_MESSAGE,
                            super::MAX_RECORDS_PER_USER_OP
                        ),
                    );
                }
                let node = broker.config.node_id;
                if let Some(bad) = t
                    .assignments
                    .iter()
                    .flatten()
                    .flat_map(|a| a.broker_ids.iter())
                    .find(|b| b.0 != node)
                {
                    return fail(Code::InvalidReplicaAssignment, format!("broker {} does not exist", bad.0));
                }
                match broker.logs.add_partitions(t.name.0.as_str(), t.count, req.validate_only) {
                    Ok(_) => base,
                    Err(CreateError::UnknownTopic(m)) => fail(Code::UnknownTopicOrPartition, m),
                    Err(CreateError::InvalidPartitions(n)) => {
                        let have = broker.logs.topic(t.name.0.as_str()).map_or(0, |t| t.partitions.len());
                        fail(
                            Code::InvalidPartitions,
                            format!("topic currently has {have} partitions, which is higher than or equal to the requested {n}"),
                        )
                    }
                    Err(e) => {
                        // Kafka answers KAFKA_STORAGE_ERROR when it cannot create a log.
                        tracing::error!(topic = %t.name.0, error = %e, "create partitions failed");
                        fail(Code::KafkaStorageError, e.client_message())
                    }
                }
            })
            .collect()
    })
    .await?;
    Ok(CreatePartitionsResponse::default().with_results(results))
}
