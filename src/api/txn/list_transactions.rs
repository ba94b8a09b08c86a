//! ListTransactions: every transactional id, filtered by state names, producer ids, how
//! long the transaction has been open (v1) and a regular expression on the id (v2). Unknown
//! state names are echoed back in `unknown_state_filters`, as Kafka does.

use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, RequestHeader, TransactionalId,
};

use crate::api::{sb, ApiError, Code, Ctx};
use crate::log::partition::now_ms;
use crate::security::acl::Operation;
use crate::txn::TxnState;

/// Handle ListTransactions.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: ListTransactionsRequest,
) -> Result<ListTransactionsResponse, ApiError> {
    let mut states = Vec::new();
    let mut unknown = Vec::new();
    for f in &req.state_filters {
        match TxnState::ALL.iter().find(|s| s.name() == f.as_str()) {
            Some(s) => states.push(*s),
            None => unknown.push(f.clone()),
        }
    }
    let pattern = match req.transactional_id_pattern.as_deref() {
        None | Some("") => None,
        Some(p) => match regex::Regex::new(&format!("^(?:{p})$")) {
            Ok(r) => Some(r),
            Err(_) => {
                return Ok(ListTransactionsResponse::default()
                    .with_error_code(Code::InvalidRegularExpression.code()))
            }
        },
    };
    let now = now_ms();
    let listed = ctx
        .broker
        .txns
        .list()
        .await
        .into_iter()
        .filter(|m| states.is_empty() || states.contains(&m.state))
        .filter(|m| {
            req.producer_id_filters.is_empty()
                || req.producer_id_filters.iter().any(|p| p.0 == m.producer_id)
        })
        .filter(|m| {
            // v1: only transactions open longer than the filter (Kafka: Ongoing ones whose
            // start is older than now - duration).
            req.duration_filter < 0
                || (m.start_ms >= 0 && now.saturating_sub(m.start_ms) > req.duration_filter)
        })
        .filter(|m| {
            pattern
                .as_ref()
                .is_none_or(|r| r.is_match(&m.transactional_id))
        })
        // Only the transactional ids the client may DESCRIBE, as Kafka lists them.
        .filter(|m| ctx.authorize_txn_id(Operation::Describe, &m.transactional_id))
        .map(|m| {
            TransactionState::default()
                .with_transactional_id(TransactionalId(sb(m.transactional_id.clone())))
                .with_producer_id(ProducerId(m.producer_id))
                .with_transaction_state(sb(m.state.name()))
        })
        .collect();
    Ok(ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown)
        .with_transaction_states(listed))
}
