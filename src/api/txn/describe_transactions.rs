//! DescribeTransactions: state, producer, timeout, start time and partitions of each
//! transactional id (TRANSACTIONAL_ID_NOT_FOUND for unknown ones).

use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, RequestHeader,
};

use crate::api::{sb, topic_name, ApiError, Code, Ctx};
use crate::security::acl::Operation;

/// Handle DescribeTransactions.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: DescribeTransactionsRequest,
) -> Result<DescribeTransactionsResponse, ApiError> {
    let mut states = Vec::with_capacity(req.transactional_ids.len());
    for id in req.transactional_ids {
        let s = TransactionState::default().with_transactional_id(id.clone());
        if !ctx.authorize_txn_id(Operation::Describe, id.0.as_str()) {
            states.push(s.with_error_code(Code::TransactionalIdAuthorizationFailed.code()));
            continue;
        }
        states.push(match ctx.broker.txns.describe(id.0.as_str()).await {
            Err(code) => s.with_error_code(code.code()),
            Ok(m) => {
                let mut topics: Vec<TopicData> = Vec::new();
                // Only the partitions of topics the client may DESCRIBE, as Kafka answers.
                for (t, p) in &m.partitions {
                    if !ctx.authorize_topic(Operation::Describe, t) {
                        continue;
                    }
                    match topics.iter_mut().find(|x| x.topic.0.as_str() == t) {
                        Some(x) => x.partitions.push(*p),
                        None => topics.push(
                            TopicData::default()
                                .with_topic(topic_name(t))
                                .with_partitions(vec![*p]),
                        ),
                    }
                }
                s.with_transaction_state(sb(m.state.name()))
                    .with_transaction_timeout_ms(m.timeout_ms)
                    .with_transaction_start_time_ms(m.start_ms)
                    .with_producer_id(ProducerId(m.producer_id))
                    .with_producer_epoch(m.producer_epoch)
                    .with_topics(topics)
            }
        });
    }
    Ok(DescribeTransactionsResponse::default().with_transaction_states(states))
}
