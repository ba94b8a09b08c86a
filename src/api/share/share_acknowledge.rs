//! ShareAcknowledge v1 (KIP-932): ACCEPT (1), RELEASE (2), REJECT (3) or GAP (0) per
//! offset range of the records a member acquired, within its share session; epoch -1 also
//! closes the session, releasing what the member still holds. Every changed share
//! partition is written to `__share_group_state` before the answer. RENEW (4) arrives
//! with v2, which the codec does not decode.

use std::sync::Arc;

use kafka_protocol::messages::share_acknowledge_response::{
    LeaderIdAndEpoch, PartitionData, ShareAcknowledgeTopicResponse,
};
use kafka_protocol::messages::{RequestHeader, ShareAcknowledgeRequest, ShareAcknowledgeResponse};

use crate::api::fetch::LEADER_EPOCH;
use crate::api::{blocking, sb, ApiError, Code, Ctx};
use crate::share::Acks;

/// The acknowledgement batches of one partition, as the coordinator takes them.
pub(crate) fn acks_of<'a>(batches: impl Iterator<Item = (i64, i64, &'a Vec<i8>)>) -> Acks {
    batches.map(|(f, l, t)| (f, l, t.clone())).collect()
}

/// Handle ShareAcknowledge.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: ShareAcknowledgeRequest,
) -> Result<ShareAcknowledgeResponse, ApiError> {
    let fail = |code: Code, msg: String| {
        ShareAcknowledgeResponse::default()
            .with_error_code(code.code())
            .with_error_message(Some(sb(msg)))
    };
    let (group, member) =
        match super::group_and_member(ctx, req.group_id.as_ref(), req.member_id.as_ref()) {
            Ok(gm) => gm,
            Err((code, msg)) => return Ok(fail(code, msg)),
        };
    let config = super::config(ctx, &group);
    let epoch = req.share_session_epoch;
    if let Err(code) = ctx
        .broker
        .shares
        .acknowledge_session(&group, &member, epoch)
    {
        return Ok(fail(code, format!("share session: {code}")));
    }
    let acks: Vec<_> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| {
                (
                    (t.topic_id, p.partition_index),
                    acks_of(
                        p.acknowledgement_batches
                            .iter()
                            .map(|b| (b.first_offset, b.last_offset, &b.acknowledge_types)),
                    ),
                )
            })
        })
        .collect();
    // Topics the client may not READ are not acknowledged: TOPIC_AUTHORIZATION_FAILED.
    let denied = super::unreadable_topics(ctx, req.topics.iter().map(|t| t.topic_id));
    let (refused, acks): (Vec<_>, Vec<_>) = acks
        .into_iter()
        .partition(|((id, _), _)| denied.contains(id));
    let tps: Vec<_> = acks.iter().map(|(tp, _)| *tp).collect();
    let b = Arc::clone(ctx.broker);
    let (g, m) = (group.clone(), member.clone());
    let results = blocking(move || b.shares.acknowledge(&g, &m, acks, &config)).await?;
    if epoch == -1 {
        ctx.broker.shares.close_session(&group, &member, &config);
    }
    let leader = LeaderIdAndEpoch::default()
        .with_leader_id(ctx.broker.config.node_id)
        .with_leader_epoch(LEADER_EPOCH);
    let mut topics: Vec<ShareAcknowledgeTopicResponse> = Vec::new();
    let refused = refused
        .into_iter()
        .map(|(tp, _)| (tp, Err(Code::TopicAuthorizationFailed)));
    for (tp, r) in tps.into_iter().zip(results).chain(refused) {
        let pd = PartitionData::default()
            .with_partition_index(tp.1)
            .with_error_code(r.err().map_or(0, |c| c.code()))
            .with_current_leader(leader.clone());
        match topics.iter_mut().find(|t| t.topic_id == tp.0) {
            Some(t) => t.partitions.push(pd),
            None => topics.push(
                ShareAcknowledgeTopicResponse::default()
                    .with_topic_id(tp.0)
                    .with_partitions(vec![pd]),
            ),
        }
    }
    Ok(ShareAcknowledgeResponse::default().with_responses(topics))
}
