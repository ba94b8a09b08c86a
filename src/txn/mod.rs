//! The transaction coordinator (Kafka's `TransactionCoordinator`), beside the group
//! coordinator.
//!
//! - [`state`]: one transactional id's metadata and the pure rules of its state machine.
//! - [`records`]: the `__transaction_state` key and value layouts (Kafka's).
//! - this file: [`Coordinator`], which owns the metadata of every transactional id, writes
//!   each change to `__transaction_state` before it takes effect, writes the COMMIT/ABORT
//!   markers to the partitions of a transaction (and, through the group coordinator, to
//!   `__consumer_offsets`), aborts transactions past their timeout, and replays the log at
//!   start-up, finishing the transactions a crash left prepared.
//!
//! Kafka sends markers to partition leaders over the network and answers EndTxn once the
//! Prepare record is written; on one node the markers are local appends, so Sluice writes
//! them before it answers: when a client's commit returns, `read_committed` readers can see
//! it. Each transactional id's metadata sits behind its own async lock, held for a whole
//! operation, so a transactional produce (checked and appended under it) never lands after
//! its transaction's markers; other coordinators would answer CONCURRENT_TRANSACTIONS where
//! a Sluice request simply waits its turn.
//!
//! What does not live here: the Produce / Fetch / ListOffsets changes (in `api/`), the
//! partition's open transactions, LSO and aborted-transaction index (in `log/`), and the
//! pending transactional offsets (in `group::offsets`).

pub mod records;
pub mod state;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError as Code;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};
use tracing::{error, info, warn};

use crate::config::TxnConfig;
use crate::log::partition::now_ms;
use crate::log::producer::ProducerIdAllocator;
use crate::log::{AppendError, LogManager, Partition};

pub use state::{EndTxnPlan, TopicPartition, TxnMeta, TxnState};

/// Name of the internal transaction log, as Kafka names it.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// What the coordinator needs from the rest of the broker for one operation.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    /// Topics and partitions (for markers).
    pub logs: &'a LogManager,
    /// Producer ids.
    pub pids: &'a ProducerIdAllocator,
    /// The group coordinator (markers for `__consumer_offsets`).
    pub groups: &'a crate::group::Coordinator,
}

/// Why the coordinator could not open.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or creating `__transaction_state` failed.
    #[error("loading {TRANSACTION_STATE_TOPIC}: {0}")]
    Load(String),
}

type Entry = Arc<AsyncMutex<TxnMeta>>;

/// Held while a transactional produce or offset commit is appended: the transaction cannot
/// end under it.
pub struct TxnGuard {
    _meta: OwnedMutexGuard<TxnMeta>,
}

/// The transaction coordinator of this broker.
pub struct Coordinator {
    log: Arc<Partition>,
    config: TxnConfig,
    txns: Mutex<HashMap<String, Entry>>,
}

fn storage_error(what: &str, e: impl std::fmt::Display) -> Code {
    error!(error = %e, "{what}");
    // Kafka answers a failed transaction-log append with NOT_COORDINATOR (retriable).
    Code::NotCoordinator
}

fn run_blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    // Storage work; on the broker's multi-thread runtime this keeps other tasks moving,
    // like `api::blocking`. Unit tests on a current-thread runtime just run it.
    if Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread) {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

/// One record (key, optional value) as a non-transactional batch.
fn one_record_batch(key: Bytes, value: Option<Bytes>) -> Result<BytesMut, String> {
    let rec = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: now_ms(),
        key: Some(key),
        value,
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        [&rec],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| e.to_string())?;
    Ok(buf)
}

impl Coordinator {
    /// Open `__transaction_state` (creating it), replay it, and finish the transactions a
    /// crash left between Prepare and Complete.
    pub fn open(env: Env<'_>, config: TxnConfig) -> Result<Self, Error> {
        let topic = match env.logs.topic(TRANSACTION_STATE_TOPIC) {
            Some(t) => t,
            None => {
                let overrides = [("cleanup.policy".to_string(), "compact".to_string())].into();
                env.logs
                    .create_topic(TRANSACTION_STATE_TOPIC, 1, overrides, false)
                    .map_err(|e| Error::Load(e.to_string()))?
            }
        };
        let log = topic
            .partitions
            .first()
            .cloned()
            .ok_or_else(|| Error::Load("no partition".into()))?;
        let loaded = replay(&log)?;
        let n = loaded.len();
        let coordinator = Coordinator {
            log,
            config,
            txns: Mutex::new(
                loaded
                    .into_iter()
                    .map(|(id, m)| (id, Arc::new(AsyncMutex::new(m))))
                    .collect(),
            ),
        };
        info!(transactional_ids = n, "loaded transaction state");
        // Prepared transactions are completed now, before any client is served.
        let entries: Vec<Entry> = coordinator.entries();
        for e in entries {
            if let Ok(mut m) = e.try_lock() {
                if matches!(m.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
                    info!(
                        transactional_id = %m.transactional_id,
                        state = m.state.name(),
                        "completing a transaction left prepared"
                    );
                    if let Err(code) = coordinator.finish(env, &mut m) {
                        warn!(transactional_id = %m.transactional_id, error = %code, "could not complete a prepared transaction; will retry");
                    }
                }
            }
        }
        Ok(coordinator)
    }

    fn entries(&self) -> Vec<Entry> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.txns.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn entry(&self, transactional_id: &str) -> Option<Entry> {
        self.lock().get(transactional_id).cloned()
    }

    /// The configured `transaction.max.timeout.ms`.
    pub fn max_timeout_ms(&self) -> i32 {
        self.config.max_timeout_ms
    }

    /// Write `m` to `__transaction_state`. Blocking.
    fn persist(&self, m: &TxnMeta) -> Result<(), Code> {
        let batch = one_record_batch(
            records::encode_key(&m.transactional_id),
            (m.state != TxnState::Dead).then(|| records::encode_value(m)),
        )
        .map_err(|e| storage_error("encoding a transaction record failed", e))?;
        self.log
            .append(&batch)
            .map(|_| ())
            .map_err(|e| storage_error("writing __transaction_state failed", e))
    }

    /// Write `next` and install it in `m`.
    fn transit(&self, m: &mut TxnMeta, next: TxnMeta) -> Result<(), Code> {
        run_blocking(|| self.persist(&next))?;
        *m = next;
        Ok(())
    }

    /// Write the markers of `m` (a Prepare* state), then its Complete* state. Blocking.
    fn finish(&self, env: Env<'_>, m: &mut TxnMeta) -> Result<(), Code> {
        let commit = m.state == TxnState::PrepareCommit;
        let (pid, epoch) = (m.producer_id, m.producer_epoch);
        run_blocking(|| -> Result<(), Code> {
            for (topic, index) in &m.partitions {
                if topic == crate::log::CONSUMER_OFFSETS_TOPIC {
                    env.groups
                        .offsets
                        .write_marker(pid, epoch, commit)
                        .map_err(|e| {
                            storage_error("writing a marker to __consumer_offsets failed", e)
                        })?;
                    continue;
                }
                let part = env.logs.topic(topic).and_then(|t| {
                    usize::try_from(*index)
                        .ok()
                        .and_then(|i| t.partitions.get(i).cloned())
                });
                let Some(part) = part else {
                    // Kafka skips markers for partitions deleted meanwhile.
                    warn!(
                        topic,
                        partition = index,
                        "no marker for a partition that is gone"
                    );
                    continue;
                };
                match part.append_marker(pid, epoch, commit, crate::log::COORDINATOR_EPOCH) {
                    Ok(_) => {}
                    Err(AppendError::Fenced) => {
                        // A newer epoch already wrote there (a fence): this one is obsolete.
                        warn!(
                            topic,
                            partition = index,
                            pid,
                            epoch,
                            "marker refused: a newer producer epoch is in the partition"
                        );
                    }
                    Err(e) => return Err(storage_error("writing a transaction marker failed", e)),
                }
            }
            Ok(())
        })?;
        crate::failpoint::hit("txn-after-markers");
        let done = m.complete(now_ms());
        self.transit(m, done)
    }

    /// Run the whole end of a transaction: Prepare*, markers, Complete*.
    fn end(
        &self,
        env: Env<'_>,
        m: &mut TxnMeta,
        commit: bool,
        tv2: bool,
        fence: bool,
    ) -> Result<(), Code> {
        let next = m.prepare_end(commit, tv2, fence, now_ms(), || alloc(env))?;
        self.transit(m, next)?;
        crate::failpoint::hit("txn-after-prepare");
        info!(
            transactional_id = %m.transactional_id,
            producer_id = m.producer_id,
            epoch = m.producer_epoch,
            partitions = m.partitions.len(),
            result = if commit { "commit" } else { "abort" },
            fenced = fence,
            "ending transaction"
        );
        self.finish(env, m)
    }

    /// InitProducerId with a transactional id: (producer id, epoch).
    pub async fn init_producer_id(
        &self,
        env: Env<'_>,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), Code> {
        if transactional_id.is_empty() {
            return Err(Code::InvalidRequest);
        }
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return Err(Code::InvalidTransactionTimeout);
        }
        let entry = match self.entry(transactional_id) {
            Some(e) => e,
            None => {
                let pid = run_blocking(|| alloc(env))?;
                let fresh = TxnMeta::new(transactional_id, pid, timeout_ms, now_ms());
                let mut map = self.lock();
                Arc::clone(
                    map.entry(transactional_id.to_string())
                        .or_insert_with(|| Arc::new(AsyncMutex::new(fresh))),
                )
            }
        };
        let mut m = entry.lock().await;
        if m.state == TxnState::Dead {
            let pid = run_blocking(|| alloc(env))?;
            *m = TxnMeta::new(transactional_id, pid, timeout_ms, now_ms());
        }
        if matches!(m.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
            // Left by a failed marker write: finish it first.
            self.finish(env, &mut m)?;
        }
        if m.state == TxnState::Ongoing {
            // Kafka fences the producer and aborts its open transaction, answering
            // CONCURRENT_TRANSACTIONS until that is done; here it is done now, and the
            // answer is the epoch the client's retry would have got.
            if !m.valid_for_fence(expected) {
                return Err(Code::ProducerFenced);
            }
            self.end(env, &mut m, false, false, true)?;
        }
        let next = m.init_producer_id(timeout_ms, expected, now_ms(), || alloc(env))?;
        self.transit(&mut m, next)?;
        info!(
            transactional_id,
            producer_id = m.producer_id,
            epoch = m.producer_epoch,
            "initialised transactional producer"
        );
        Ok((m.producer_id, m.producer_epoch))
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn (and the implicit add of transaction version 2).
    pub async fn add_partitions(
        &self,
        transactional_id: &str,
        pid: i64,
        epoch: i16,
        parts: &[TopicPartition],
    ) -> Result<(), Code> {
        if transactional_id.is_empty() {
            return Err(Code::InvalidRequest);
        }
        let entry = self
            .entry(transactional_id)
            .ok_or(Code::InvalidProducerIdMapping)?;
        let mut m = entry.lock().await;
        if let Some(next) = m.add_partitions(pid, epoch, parts, now_ms())? {
            self.transit(&mut m, next)?;
        }
        Ok(())
    }

    /// AddPartitionsToTxn v4+ `verify_only`: which partitions are in the transaction
    /// (TRANSACTION_ABORTABLE for the others, as Kafka answers).
    pub async fn verify_partitions(
        &self,
        transactional_id: &str,
        pid: i64,
        epoch: i16,
        parts: &[TopicPartition],
    ) -> Result<Vec<Option<Code>>, Code> {
        let entry = self
            .entry(transactional_id)
            .ok_or(Code::InvalidProducerIdMapping)?;
        let m = entry.lock().await;
        m.check_producer(pid, epoch)?;
        Ok(parts
            .iter()
            .map(|p| (!m.partitions.contains(p)).then_some(Code::TransactionAbortable))
            .collect())
    }

    /// Before a transactional write (Produce, TxnOffsetCommit): check the producer, add the
    /// partitions when `add` (transaction version 2) or check they were added, and hold the
    /// transaction until the caller has appended. Per-partition refusals come back in order.
    pub async fn begin_write(
        &self,
        transactional_id: &str,
        pid: i64,
        epoch: i16,
        parts: &[TopicPartition],
        add: bool,
    ) -> Result<(TxnGuard, Vec<Option<Code>>), Code> {
        let entry = self
            .entry(transactional_id)
            .ok_or(Code::InvalidProducerIdMapping)?;
        let mut m = entry.lock_owned().await;
        let refused = if add {
            if let Some(next) = m.add_partitions(pid, epoch, parts, now_ms())? {
                self.transit(&mut m, next)?;
            }
            vec![None; parts.len()]
        } else {
            m.check_producer(pid, epoch)?;
            parts
                .iter()
                .map(|p| {
                    (m.state != TxnState::Ongoing || !m.partitions.contains(p))
                        .then_some(Code::TransactionAbortable)
                })
                .collect()
        };
        Ok((TxnGuard { _meta: m }, refused))
    }

    /// EndTxn: commit or abort. Answers the producer id and epoch the client goes on with
    /// (bumped for transaction version 2).
    pub async fn end_txn(
        &self,
        env: Env<'_>,
        transactional_id: &str,
        pid: i64,
        epoch: i16,
        commit: bool,
        tv2: bool,
    ) -> Result<(i64, i16), Code> {
        if transactional_id.is_empty() {
            return Err(Code::InvalidRequest);
        }
        let entry = self
            .entry(transactional_id)
            .ok_or(Code::InvalidProducerIdMapping)?;
        let mut m = entry.lock().await;
        match m.end_txn(pid, epoch, commit, tv2) {
            EndTxnPlan::Fail(code) => {
                info!(
                    transactional_id,
                    pid,
                    epoch,
                    state = m.state.name(),
                    commit,
                    error = %code,
                    "EndTxn refused"
                );
                Err(code)
            }
            EndTxnPlan::AlreadyDone => Ok((m.producer_id, m.producer_epoch)),
            EndTxnPlan::Complete => {
                self.end(env, &mut m, commit, tv2, false)?;
                Ok((m.producer_id, m.producer_epoch))
            }
            EndTxnPlan::AbortEmpty => {
                let mut next = m.prepare_end(false, true, false, now_ms(), || alloc(env))?;
                next = next.complete(now_ms());
                self.transit(&mut m, next)?;
                Ok((m.producer_id, m.producer_epoch))
            }
        }
    }

    /// The metadata of `transactional_id` (DescribeTransactions).
    pub async fn describe(&self, transactional_id: &str) -> Result<TxnMeta, Code> {
        if transactional_id.is_empty() {
            return Err(Code::InvalidRequest);
        }
        let entry = self
            .entry(transactional_id)
            .ok_or(Code::TransactionalIdNotFound)?;
        let m = entry.lock().await;
        if m.state == TxnState::Dead {
            return Err(Code::TransactionalIdNotFound);
        }
        Ok(m.clone())
    }

    /// Every transactional id's metadata (ListTransactions filters it).
    pub async fn list(&self) -> Vec<TxnMeta> {
        let mut out = Vec::new();
        for e in self.entries() {
            let m = e.lock().await;
            if m.state != TxnState::Dead {
                out.push(m.clone());
            }
        }
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        out
    }

    /// Abort transactions open past their timeout (fencing their producer), finish any left
    /// prepared, and forget ids idle past `transactional.id.expiration.ms`. Run every
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub async fn tick(&self, env: Env<'_>) {
        let now = now_ms();
        for e in self.entries() {
            let mut m = e.lock().await;
            let result = match m.state {
                TxnState::Ongoing
                    if m.start_ms >= 0
                        && now.saturating_sub(m.start_ms) > i64::from(m.timeout_ms) =>
                {
                    info!(
                        transactional_id = %m.transactional_id,
                        producer_id = m.producer_id,
                        epoch = m.producer_epoch,
                        timeout_ms = m.timeout_ms,
                        "aborting a transaction past its timeout"
                    );
                    self.end(env, &mut m, false, false, true)
                }
                TxnState::PrepareCommit | TxnState::PrepareAbort => self.finish(env, &mut m),
                TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
                    if now.saturating_sub(m.last_update_ms) > self.config.id_expiration_ms =>
                {
                    let mut dead = m.clone();
                    dead.state = TxnState::Dead;
                    info!(transactional_id = %m.transactional_id, "transactional id expired");
                    self.transit(&mut m, dead)
                }
                _ => Ok(()),
            };
            if let Err(code) = result {
                warn!(transactional_id = %m.transactional_id, error = %code, "transaction upkeep failed; will retry");
            }
            if m.state == TxnState::Dead {
                let id = m.transactional_id.clone();
                drop(m);
                let mut map = self.lock();
                if map.get(&id).is_some_and(|x| Arc::ptr_eq(x, &e)) {
                    map.remove(&id);
                }
            }
        }
    }
}

impl TxnMeta {
    /// Whether InitProducerId may fence this open transaction's producer (the same checks
    /// as for a closed one).
    fn valid_for_fence(&self, expected: Option<(i64, i16)>) -> bool {
        match expected {
            None => true,
            Some((pid, _)) => self.producer_epoch == state::NO_EPOCH || pid == self.producer_id,
        }
    }
}

fn alloc(env: Env<'_>) -> Result<i64, Code> {
    env.pids
        .next()
        .map_err(|e| storage_error("could not allocate a producer id", e))
}

/// Read every record of `__transaction_state`: the last value of each id wins.
fn replay(log: &Partition) -> Result<HashMap<String, TxnMeta>, Error> {
    let mut out: HashMap<String, TxnMeta> = HashMap::new();
    let mut records = 0usize;
    log.replay(|r| {
        if r.control {
            return;
        }
        let Some(id) = r.key.and_then(records::decode_key) else {
            return;
        };
        records += 1;
        match r.value.and_then(|v| records::decode_value(&id, v)) {
            Some(m) if m.state != TxnState::Dead => {
                out.insert(id, m);
            }
            _ => {
                out.remove(&id);
            }
        }
    })
    .map_err(|e| Error::Load(e.to_string()))?;
    info!(records, "replayed {TRANSACTION_STATE_TOPIC}");
    Ok(out)
}

#[cfg(test)]
mod tests;
