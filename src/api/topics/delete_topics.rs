//! DeleteTopics, by name (v1–5) or by name or id (v6). Data is removed from disk in the
//! background; reads in flight finish on the files they hold.

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    DeleteTopicsRequest, DeleteTopicsResponse, RequestHeader, TopicName,
};
use tracing::error;
use uuid::Uuid;

use crate::api::{blocking, sb, ApiError, Code, Ctx};
use crate::security::acl::Operation;

/// Handle DeleteTopics.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: DeleteTopicsRequest,
) -> Result<DeleteTopicsResponse, ApiError> {
    let broker = std::sync::Arc::clone(ctx.broker);
    // Kafka's checks need the names, which topic ids resolve to: asked here, on the
    // runtime, for every topic the request can name (DESCRIBE for ids, DELETE for all).
    let mut describe = std::collections::HashMap::new();
    let mut delete = std::collections::HashMap::new();
    if ctx.authorizing() {
        let named = req.topic_names.iter().map(|n| n.0.to_string());
        let resolved = req.topics.iter().filter_map(|t| match &t.name {
            Some(n) => Some(n.0.to_string()),
            None => broker
                .logs
                .topic_by_id(&t.topic_id)
                .map(|t| t.name.to_string()),
        });
        for n in named.chain(resolved) {
            describe.insert(n.clone(), ctx.authorize_topic(Operation::Describe, &n));
            delete.insert(n.clone(), ctx.authorize_topic(Operation::Delete, &n));
        }
    }
    let authorizing = ctx.authorizing();
    let responses = blocking(move || {
        let targets: Vec<(Option<TopicName>, Uuid)> = req
            .topic_names
            .into_iter()
            .map(|n| (Some(n), Uuid::nil()))
            .chain(req.topics.into_iter().map(|t| (t.name, t.topic_id)))
            .collect();
        targets
            .into_iter()
            .map(|(name, id)| {
                let topic = match (&name, id) {
                    (Some(n), _) => broker.logs.topic(n.0.as_str()),
                    (None, id) => broker.logs.topic_by_id(&id),
                };
                let base = DeletableTopicResult::default()
                    .with_name(name.clone())
                    .with_topic_id(id);
                if authorizing {
                    let n = match (&name, &topic) {
                        (Some(n), _) => Some(n.0.to_string()),
                        (None, Some(t)) => Some(t.name.to_string()),
                        (None, None) => None,
                    };
                    if let Some(n) = n {
                        // By id without DESCRIBE: the name stays hidden.
                        if name.is_none() && !describe.get(&n).copied().unwrap_or(false) {
                            return base.with_error_code(Code::TopicAuthorizationFailed.code());
                        }
                        if !delete.get(&n).copied().unwrap_or(false) {
                            return base
                                .with_name(Some(TopicName(sb(n))))
                                .with_error_code(Code::TopicAuthorizationFailed.code());
                        }
                    }
                }
                // A topic that could not be opened at start-up (out of file descriptors)
                // is not served, but it can be deleted by name.
                let offline = || {
                    let n = name.as_ref()?.0.to_string();
                    broker.logs.offline_topic(&n).map(|(id, _)| (n, id))
                };
                let (topic_name, topic_id) = match (topic, offline()) {
                    (Some(t), _) => (t.name.to_string(), t.id),
                    (None, Some(off)) => off,
                    (None, None) => {
                        let code = if name.is_some() {
                            Code::UnknownTopicOrPartition
                        } else {
                            Code::UnknownTopicId
                        };
                        return base.with_error_code(code.code());
                    }
                };
                let base = base
                    .with_name(Some(TopicName(sb(topic_name.clone()))))
                    .with_topic_id(topic_id);
                match broker.logs.delete_topic(&topic_name) {
                    Ok(Some(_)) => {
                        broker.metrics.topics.remove(&topic_name);
                        base
                    }
                    Ok(None) => base.with_error_code(Code::UnknownTopicOrPartition.code()),
                    Err(e) => {
                        error!(topic = %topic_name, error = %e, "delete topic failed");
                        base.with_error_code(Code::KafkaStorageError.code())
                            .with_error_message(Some(sb(e.to_string())))
                    }
                }
            })
            .collect()
    })
    .await?;
    Ok(DeleteTopicsResponse::default().with_responses(responses))
}
