//! ShareFetch v1 (KIP-932): the share-session step, the acknowledgements piggy-backed on
//! the request, then records acquired for the member from every partition of its session,
//! long-polling like Fetch (until something is acquired or `max_wait_ms` passes, woken by
//! appends and by records released elsewhere).
//!
//! Records go out as the stored batches, with `acquired_records` naming the offsets this
//! member got and how often each was delivered; the client skips the rest of a batch and
//! acknowledges acquired offsets without a record (control records) as gaps. Under
//! `share.isolation.level=read_committed` reads stop at the last stable offset and records
//! of aborted transactions are archived, never acquired, as Kafka does.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::share_fetch_response::{
    AcquiredRecords, LeaderIdAndEpoch, PartitionData, ShareFetchableTopicResponse,
};
use kafka_protocol::messages::{RequestHeader, ShareFetchRequest, ShareFetchResponse};
use tokio::time::Instant;
use tracing::error;
use uuid::Uuid;

use super::share_acknowledge::acks_of;
use crate::api::fetch::{partition_of, LEADER_EPOCH};
use crate::api::{blocking, sb, ApiError, Broker, Code, Ctx};
use crate::group::configs::{ShareAutoOffsetReset, ShareGroupConfig};
use crate::log::batch::BatchView;
use crate::log::partition::now_ms;
use crate::log::{Partition, ReadError};
use crate::share::partition::{Acquired, BatchInfo};

/// Kafka caps how long a fetch may wait; so do we (it also bounds shutdown).
const MAX_WAIT_CAP_MS: u64 = 30_000;
/// Records per request when the client names no limit (the Java client's
/// `max.poll.records` default).
const DEFAULT_MAX_RECORDS: usize = 500;

/// One partition of the session.
struct Target {
    tp: (Uuid, i32),
    part: Result<Arc<Partition>, Code>,
}

/// What one partition yields.
#[derive(Default, Clone)]
struct Got {
    error: Option<Code>,
    records: Bytes,
    acquired: Vec<Acquired>,
}

/// Handle ShareFetch.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: ShareFetchRequest,
) -> Result<ShareFetchResponse, ApiError> {
    let fail = |code: Code, msg: String| {
        ShareFetchResponse::default()
            .with_error_code(code.code())
            .with_error_message(Some(sb(msg)))
    };
    let (group, member) =
        match super::group_and_member(ctx, req.group_id.as_ref(), req.member_id.as_ref()) {
            Ok(gm) => gm,
            Err((code, msg)) => return Ok(fail(code, msg)),
        };
    let config = super::config(ctx, &group);
    let shares = &ctx.broker.shares;
    let mut add = Vec::new();
    let mut acks = Vec::new();
    // Partitions the response must mention, in request order.
    let mut mentioned: Vec<(Uuid, i32)> = Vec::new();
    // Partitions of topics the client may not READ: neither added to the session nor
    // acknowledged, answered TOPIC_AUTHORIZATION_FAILED.
    let denied = super::unreadable_topics(ctx, req.topics.iter().map(|t| t.topic_id));
    let mut denied_acks = std::collections::HashSet::new();
    for t in &req.topics {
        for p in &t.partitions {
            let tp = (t.topic_id, p.partition_index);
            mentioned.push(tp);
            if denied.contains(&t.topic_id) {
                if !p.acknowledgement_batches.is_empty() {
                    denied_acks.insert(tp);
                }
                continue;
            }
            add.push(tp);
            if !p.acknowledgement_batches.is_empty() {
                acks.push((
                    tp,
                    acks_of(
                        p.acknowledgement_batches
                            .iter()
                            .map(|b| (b.first_offset, b.last_offset, &b.acknowledge_types)),
                    ),
                ));
            }
        }
    }
    let forget: Vec<(Uuid, i32)> = req
        .forgotten_topics_data
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.topic_id, *p)))
        .collect();
    let epoch = req.share_session_epoch;
    let session =
        match shares.fetch_session(&group, &member, epoch, &add, &forget, !acks.is_empty()) {
            Ok(s) => s,
            Err(code) => return Ok(fail(code, format!("share session: {code}"))),
        };
    let mut ack_results: BTreeMap<(Uuid, i32), Code> = BTreeMap::new();
    if !acks.is_empty() {
        let b = Arc::clone(ctx.broker);
        let (g, m) = (group.clone(), member.clone());
        let tps: Vec<(Uuid, i32)> = acks.iter().map(|(tp, _)| *tp).collect();
        let results = blocking(move || b.shares.acknowledge(&g, &m, acks, &config)).await?;
        for (tp, r) in tps.into_iter().zip(results) {
            if let Err(code) = r {
                ack_results.insert(tp, code);
            }
        }
    }
    let mut got: BTreeMap<(Uuid, i32), Got> = BTreeMap::new();
    if epoch == -1 {
        shares.close_session(&group, &member, &config);
    } else {
        got = long_poll(ctx, &group, &member, &session, &req, &config).await?;
    }
    for tp in got.keys() {
        if !mentioned.contains(tp) {
            mentioned.push(*tp);
        }
    }
    let leader = LeaderIdAndEpoch::default()
        .with_leader_id(ctx.broker.config.node_id)
        .with_leader_epoch(LEADER_EPOCH);
    let mut topics: Vec<ShareFetchableTopicResponse> = Vec::new();
    for tp in mentioned {
        let g = got.remove(&tp).unwrap_or_default();
        let (error, ack_error) = if denied.contains(&tp.0) {
            let code = Code::TopicAuthorizationFailed.code();
            (code, if denied_acks.contains(&tp) { code } else { 0 })
        } else {
            (
                g.error.map_or(0, |c| c.code()),
                ack_results.get(&tp).map_or(0, |c| c.code()),
            )
        };
        let pd = PartitionData::default()
            .with_partition_index(tp.1)
            .with_error_code(error)
            .with_acknowledge_error_code(ack_error)
            .with_current_leader(leader.clone())
            .with_records(Some(g.records))
            .with_acquired_records(
                g.acquired
                    .iter()
                    .map(|a| {
                        AcquiredRecords::default()
                            .with_first_offset(a.first)
                            .with_last_offset(a.last)
                            .with_delivery_count(a.deliveries)
                    })
                    .collect(),
            );
        match topics.iter_mut().find(|t| t.topic_id == tp.0) {
            Some(t) => t.partitions.push(pd),
            None => topics.push(
                ShareFetchableTopicResponse::default()
                    .with_topic_id(tp.0)
                    .with_partitions(vec![pd]),
            ),
        }
    }
    Ok(ShareFetchResponse::default()
        .with_acquisition_lock_timeout_ms(config.record_lock_duration_ms)
        .with_responses(topics))
}

/// Acquire records from the session's partitions, waiting up to `max_wait_ms` for some.
async fn long_poll(
    ctx: &Ctx<'_>,
    group: &str,
    member: &str,
    session: &[(Uuid, i32)],
    req: &ShareFetchRequest,
    config: &ShareGroupConfig,
) -> Result<BTreeMap<(Uuid, i32), Got>, ApiError> {
    let logs = &ctx.broker.logs;
    let targets: Arc<Vec<Target>> = Arc::new(
        session
            .iter()
            .map(|&(id, index)| Target {
                tp: (id, index),
                part: partition_of(
                    logs.topic_by_id(&id).as_deref(),
                    index,
                    Code::UnknownTopicId,
                ),
            })
            .collect(),
    );
    let max_records = usize::try_from(req.max_records)
        .ok()
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_RECORDS);
    let max_bytes = usize::try_from(req.max_bytes)
        .ok()
        .filter(|n| *n > 0)
        .unwrap_or(usize::MAX);
    let wait = Duration::from_millis(
        u64::try_from(req.max_wait_ms)
            .unwrap_or(0)
            .min(MAX_WAIT_CAP_MS),
    );
    let deadline = Instant::now() + wait;
    let token = ctx.broker.shutdown.clone();
    let shares = &ctx.broker.shares;
    loop {
        // Register for wake-ups before looking, so nothing between the look and the wait
        // is missed.
        let mut waits: Vec<Pin<Box<tokio::sync::futures::Notified<'_>>>> = targets
            .iter()
            .filter_map(|t| t.part.as_ref().ok())
            .map(|p| Box::pin(p.notify.notified()))
            .collect();
        waits.push(Box::pin(shares.released.notified()));
        for w in waits.iter_mut() {
            w.as_mut().enable();
        }
        let b = Arc::clone(ctx.broker);
        let t = Arc::clone(&targets);
        let (g, m, c) = (group.to_string(), member.to_string(), *config);
        let got = blocking(move || acquire_all(&b, &g, &m, &t, &c, max_records, max_bytes)).await?;
        let ready = got
            .values()
            .any(|g| g.error.is_some() || !g.acquired.is_empty());
        if ready || Instant::now() >= deadline || targets.is_empty() && wait.is_zero() {
            return Ok(got);
        }
        tokio::select! {
            _ = wait_any(&mut waits) => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = token.cancelled() => return Ok(got),
        }
    }
}

/// Try every partition once, within the record and byte budgets. Blocking.
fn acquire_all(
    broker: &Broker,
    group: &str,
    member: &str,
    targets: &[Target],
    config: &ShareGroupConfig,
    max_records: usize,
    max_bytes: usize,
) -> BTreeMap<(Uuid, i32), Got> {
    let mut out = BTreeMap::new();
    let mut records_left = max_records;
    let mut bytes_left = max_bytes;
    for t in targets {
        if records_left == 0 || bytes_left == 0 {
            break;
        }
        let got = match &t.part {
            Err(code) => Got {
                error: Some(*code),
                ..Got::default()
            },
            Ok(p) => acquire_one(
                broker,
                group,
                member,
                t.tp,
                p,
                config,
                records_left,
                bytes_left,
            ),
        };
        let n: usize = got
            .acquired
            .iter()
            .map(|a| usize::try_from(a.last - a.first + 1).unwrap_or(0))
            .sum();
        records_left = records_left.saturating_sub(n);
        bytes_left = bytes_left.saturating_sub(got.records.len());
        if got.error.is_some() || !got.acquired.is_empty() {
            out.insert(t.tp, got);
        }
    }
    out
}

/// Where a share partition first seen starts: `share.auto.offset.reset`.
fn initial_offset(p: &Partition, config: &ShareGroupConfig) -> i64 {
    let (log_start, _, hw, _) = p.offsets();
    match config.auto_offset_reset {
        ShareAutoOffsetReset::Earliest => log_start,
        ShareAutoOffsetReset::Latest => hw,
        ShareAutoOffsetReset::ByDuration(d) => {
            match p.offset_for_timestamp(now_ms().saturating_sub(d)) {
                Ok(Some((_, offset))) => offset,
                _ => hw,
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn acquire_one(
    broker: &Broker,
    group: &str,
    member: &str,
    tp: (Uuid, i32),
    p: &Partition,
    config: &ShareGroupConfig,
    records_left: usize,
    bytes_left: usize,
) -> Got {
    let failed = |code: Code| Got {
        error: Some(code),
        ..Got::default()
    };
    let key = (group.to_string(), tp.0, tp.1);
    let (log_start, _, _, _) = p.offsets();
    let from =
        match broker
            .shares
            .prepare_fetch(&key, log_start, || initial_offset(p, config), config)
        {
            Ok(Some(o)) => o,
            Ok(None) => return Got::default(),
            Err(code) => return failed(code),
        };
    let read = if config.read_committed {
        p.read_region_committed(from, bytes_left)
    } else {
        p.read_region(from, bytes_left)
    };
    let region = match read {
        Ok(r) => r,
        // The log moved under us (retention, truncation): the next look starts right.
        Err(ReadError::OutOfRange { .. }) => return Got::default(),
        Err(ReadError::Storage(e)) => {
            error!(partition = ?p, error = %e, "share fetch read failed");
            return failed(Code::KafkaStorageError);
        }
    };
    let Some(file) = region.region else {
        return Got::default();
    };
    let bytes = match file.load() {
        Ok(b) => b,
        Err(e) => {
            error!(partition = ?p, error = %e, "share fetch read failed");
            return failed(Code::KafkaStorageError);
        }
    };
    // (batch, start, end) in the bytes read.
    let mut batches: Vec<(BatchInfo, usize, usize)> = Vec::new();
    let mut rest: &[u8] = &bytes;
    let mut pos = 0usize;
    while let Ok(Some((b, tail))) = BatchView::split_first(rest) {
        let aborted = config.read_committed
            && b.is_transactional()
            && !b.is_control()
            && region.aborted.iter().any(|a| {
                a.producer_id == b.producer_id()
                    && a.first_offset <= b.base_offset()
                    && b.base_offset() <= a.last_offset
            });
        batches.push((
            BatchInfo {
                base: b.base_offset(),
                last: b.last_offset(),
                control: b.is_control(),
                aborted,
            },
            pos,
            pos + b.size(),
        ));
        pos += b.size();
        rest = tail;
    }
    let infos: Vec<BatchInfo> = batches.iter().map(|(b, _, _)| *b).collect();
    let acquired = broker
        .shares
        .acquire(&key, member, &infos, records_left, config);
    let (Some(first), Some(last)) = (
        acquired.first().map(|a| a.first),
        acquired.last().map(|a| a.last),
    ) else {
        return Got::default();
    };
    // Send only the batches that hold acquired records.
    let keep: Vec<&(BatchInfo, usize, usize)> = batches
        .iter()
        .filter(|(b, _, _)| b.last >= first && b.base <= last)
        .collect();
    let start = keep.first().map_or(0, |(_, s, _)| *s);
    let end = keep.last().map_or(0, |(_, _, e)| *e);
    Got {
        error: None,
        records: if start < end && end <= bytes.len() {
            bytes.slice(start..end)
        } else {
            bytes
        },
        acquired,
    }
}

/// Resolve when any of the registered notifications fires.
async fn wait_any(waits: &mut [Pin<Box<tokio::sync::futures::Notified<'_>>>]) {
    if waits.is_empty() {
        return std::future::pending().await;
    }
    std::future::poll_fn(|cx| {
        for w in waits.iter_mut() {
            if w.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    use super::*;
    use crate::config::Config;

    fn batch(n: i64, pid: i64, transactional: bool) -> BytesMut {
        let records: Vec<Record> = (0..n)
            .map(|i| Record {
                transactional,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: pid,
                producer_epoch: if pid < 0 { -1 } else { 0 },
                timestamp_type: TimestampType::Creation,
                offset: i,
                sequence: if pid < 0 {
                    -1
                } else {
                    i32::try_from(i).unwrap()
                },
                timestamp: now_ms(),
                key: None,
                value: Some(Bytes::from(format!("r{i}"))),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            records.iter(),
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .unwrap();
        buf
    }

    fn offsets(g: &Got) -> Vec<i64> {
        g.acquired.iter().flat_map(|a| a.first..=a.last).collect()
    }

    /// read_committed never hands out records of an aborted transaction (nor the marker);
    /// read_uncommitted hands out every data record.
    #[test]
    fn isolation_level_decides_what_is_acquired() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let broker = Broker::open(config).unwrap();
        let topic = broker
            .logs
            .create_topic("t", 1, Default::default(), false)
            .unwrap();
        let p = Arc::clone(&topic.partitions[0]);
        p.append(&batch(1, -1, false)).unwrap(); // 0
        p.append(&batch(2, 7, true)).unwrap(); // 1, 2
        p.append_marker(7, 0, false, 0).unwrap(); // 3: ABORT
        p.append(&batch(1, -1, false)).unwrap(); // 4
        let committed = ShareGroupConfig {
            read_committed: true,
            auto_offset_reset: ShareAutoOffsetReset::Earliest,
            ..ShareGroupConfig::default()
        };
        let got = acquire_one(
            &broker,
            "rc",
            "m",
            (topic.id, 0),
            &p,
            &committed,
            100,
            1 << 20,
        );
        assert_eq!(offsets(&got), vec![0, 4]);
        assert!(!got.records.is_empty());
        let uncommitted = ShareGroupConfig {
            read_committed: false,
            ..committed
        };
        let got = acquire_one(
            &broker,
            "ru",
            "m",
            (topic.id, 0),
            &p,
            &uncommitted,
            100,
            1 << 20,
        );
        assert_eq!(offsets(&got), vec![0, 1, 2, 4]);
        // A latest-reset group starts at the end: nothing for it until new records come.
        let latest = ShareGroupConfig::default();
        let got = acquire_one(&broker, "l", "m", (topic.id, 0), &p, &latest, 100, 1 << 20);
        assert!(got.acquired.is_empty());
        p.append(&batch(2, -1, false)).unwrap(); // 5, 6
        let got = acquire_one(&broker, "l", "m", (topic.id, 0), &p, &latest, 1, 1 << 20);
        assert_eq!(offsets(&got), vec![5]);
    }
}
