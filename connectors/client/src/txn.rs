//! The transactional producer ([`TransactionalProducer`]), Kafka's KIP-98 protocol as the
//! Java producer's `TransactionManager` drives it with transaction version 1:
//!
//! 1. FindCoordinator (key type 1) for the transactional id, then InitProducerId with the
//!    id and `transaction.timeout.ms`: the coordinator fences older producers with the same
//!    id, finishes (aborts) any transaction they left open, and hands out a producer id and
//!    epoch.
//! 2. Per transaction: AddPartitionsToTxn (v3, the client form) before the first write to a
//!    partition, Produce with the producer id, epoch, per-partition sequence numbers and the
//!    transactional flag, AddOffsetsToTxn plus TxnOffsetCommit (to the group coordinator)
//!    for consumed offsets, and EndTxn (commit or abort). EndTxn stays at v4 and TxnOffsetCommit
//!    at v4: v5 of either tells the broker the client speaks transaction version 2.
//!
//! Errors, as the Java producer sorts them: coordinator moves and loads, and
//! CONCURRENT_TRANSACTIONS (the coordinator is still writing the previous transaction's
//! markers), are retried with backoff until `max_block`; fencing (PRODUCER_FENCED,
//! INVALID_PRODUCER_EPOCH), TRANSACTIONAL_ID_AUTHORIZATION_FAILED, INVALID_TXN_STATE and the
//! like make the producer unusable (every later call fails naming the cause); anything else
//! inside a transaction is abortable: the caller must abort, then may begin again. After an
//! abortable produce failure whose outcome is unknown, the abort also bumps the epoch
//! (InitProducerId with the current id and epoch, KIP-360) so sequence numbers restart
//! cleanly.
//!
//! Not here: transaction version 2 (implicit partition adds, an epoch bump per
//! transaction), buffering and batching across calls, and two-phase commit (KIP-939).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, EndTxnRequest, GroupId,
    InitProducerIdRequest, ProducerId, TransactionalId, TxnOffsetCommitRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::client::{millis_i32, topic_name, Client, TXN_KEY};
use crate::error::{At, Error, Result};
use crate::offsets::{CommitOffset, Generation};
use crate::produce::{
    encode_stamped_async, partition_result, produce_request, Acks, Compression, ProduceBatch,
    ProduceOptions, ProduceRecord, ProducerStamp,
};

/// Kafka's `transaction.timeout.ms` default.
pub const DEFAULT_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);
/// Kafka's `max.block.ms` default: how long a call waits out retriable coordinator errors.
pub const DEFAULT_MAX_BLOCK: Duration = Duration::from_secs(60);
/// Kafka's `delivery.timeout.ms` default: how long a batch is resent before the send fails.
pub const DEFAULT_DELIVERY_TIMEOUT: Duration = Duration::from_secs(120);

/// Settings of a [`TransactionalProducer`].
#[derive(Debug, Clone)]
pub struct TransactionConfig {
    /// Kafka's `transactional.id`: the identity that survives restarts. A new producer with
    /// the same id fences the old one and finishes its open transaction.
    pub transactional_id: String,
    /// Kafka's `transaction.timeout.ms`: the coordinator aborts a transaction left open
    /// longer than this.
    pub transaction_timeout: Duration,
    /// Kafka's `max.block.ms`: the deadline for waiting out retriable coordinator errors.
    pub max_block: Duration,
    /// Kafka's `delivery.timeout.ms`: the deadline for resending one batch.
    pub delivery_timeout: Duration,
    /// Batch compression.
    pub compression: Compression,
    /// Produce `timeout_ms` (how long the broker may wait for replicas).
    pub produce_timeout: Duration,
}

impl TransactionConfig {
    /// Settings with Kafka's defaults for `transactional_id`.
    pub fn new(transactional_id: impl Into<String>) -> Self {
        Self {
            transactional_id: transactional_id.into(),
            transaction_timeout: DEFAULT_TRANSACTION_TIMEOUT,
            max_block: DEFAULT_MAX_BLOCK,
            delivery_timeout: DEFAULT_DELIVERY_TIMEOUT,
            compression: Compression::None,
            produce_timeout: ProduceOptions::default().timeout,
        }
    }

    /// Sets `transaction.timeout.ms`.
    pub fn with_transaction_timeout(mut self, timeout: Duration) -> Self {
        self.transaction_timeout = timeout;
        self
    }

    /// Sets `max.block.ms`.
    pub fn with_max_block(mut self, max_block: Duration) -> Self {
        self.max_block = max_block;
        self
    }
}

/// Where the producer is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Between transactions.
    Ready,
    /// `begin` was called.
    InTransaction,
    /// A call inside the transaction failed; only `abort` is allowed.
    Abortable {
        reason: String,
        cause: Option<ResponseError>,
    },
    /// Fenced or otherwise unusable for good.
    Fatal {
        reason: String,
        cause: Option<ResponseError>,
    },
}

/// A transactional producer bound to one transactional id. Build it with
/// [`Client::transactional_producer`]; one transaction at a time:
/// [`begin`](Self::begin), [`send`](Self::send) /
/// [`send_offsets_to_transaction`](Self::send_offsets_to_transaction), then
/// [`commit`](Self::commit) or [`abort`](Self::abort).
#[derive(Debug)]
pub struct TransactionalProducer {
    client: Client,
    config: TransactionConfig,
    producer_id: i64,
    epoch: i16,
    /// Next sequence number per partition for this producer id and epoch.
    sequences: HashMap<(String, i32), i32>,
    state: State,
    /// Partitions added to the open transaction.
    partitions: HashSet<(String, i32)>,
    /// Groups whose offsets partition was added to the open transaction.
    groups: HashSet<String>,
    /// A produce failed with an unknown outcome: the next abort bumps the epoch.
    needs_epoch_bump: bool,
}

impl Client {
    /// Starts a transactional producer: finds the transaction coordinator of
    /// `config.transactional_id` and sends InitProducerId (Kafka's `initTransactions`),
    /// fencing any older producer with the same id and finishing its open transaction.
    pub async fn transactional_producer(
        &self,
        config: TransactionConfig,
    ) -> Result<TransactionalProducer> {
        let mut producer = TransactionalProducer {
            client: self.clone(),
            config,
            producer_id: -1,
            epoch: -1,
            sequences: HashMap::new(),
            state: State::Ready,
            partitions: HashSet::new(),
            groups: HashSet::new(),
            needs_epoch_bump: false,
        };
        producer.init_producer_id().await?;
        Ok(producer)
    }
}

impl TransactionalProducer {
    /// The transactional id.
    pub fn transactional_id(&self) -> &str {
        &self.config.transactional_id
    }

    /// The producer id and epoch the coordinator handed out.
    pub fn producer_id_and_epoch(&self) -> (i64, i16) {
        (self.producer_id, self.epoch)
    }

    /// Whether a transaction is open (begun and not yet committed or aborted).
    pub fn in_transaction(&self) -> bool {
        matches!(self.state, State::InTransaction | State::Abortable { .. })
    }

    /// Starts a transaction. Nothing is sent until the first write.
    pub fn begin(&mut self) -> Result<()> {
        match &self.state {
            State::Ready => {
                self.state = State::InTransaction;
                Ok(())
            }
            _ => Err(self.state_error("begin")),
        }
    }

    /// Writes `records` to one partition inside the transaction, as one batch, and returns
    /// the offset of the first record (or -1 when the broker reports the batch as a
    /// duplicate of one already written). The partition is added to the transaction first
    /// if it is new to it.
    pub async fn send(
        &mut self,
        topic: &str,
        partition: i32,
        records: &[ProduceRecord],
    ) -> Result<i64> {
        let batch = ProduceBatch {
            topic: topic.to_owned(),
            partition,
            records: records.to_vec(),
        };
        let mut offsets = self.send_batches(std::slice::from_ref(&batch)).await?;
        offsets
            .pop()
            .ok_or_else(|| Error::InvalidArgument("nothing was sent".to_owned()))
    }

    /// Writes several batches inside the transaction, adding every new partition in one
    /// AddPartitionsToTxn, then producing each batch in turn. Returns each batch's first
    /// offset, in order. The first failure stops the call and makes the transaction
    /// abortable (or the producer unusable, for fatal errors).
    pub async fn send_batches(&mut self, batches: &[ProduceBatch]) -> Result<Vec<i64>> {
        self.check_open("send")?;
        if batches.iter().any(|b| b.records.is_empty()) {
            return Err(Error::InvalidArgument(
                "a batch needs at least one record".to_owned(),
            ));
        }
        let new: Vec<(String, i32)> = batches
            .iter()
            .map(|b| (b.topic.clone(), b.partition))
            .filter(|tp| !self.partitions.contains(tp))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if !new.is_empty() {
            let added = self.add_partitions(&new).await;
            self.note(added)?;
            self.partitions.extend(new);
        }
        let mut out = Vec::with_capacity(batches.len());
        for b in batches {
            let r = self.produce_one(b).await;
            out.push(self.note(r)?);
        }
        Ok(out)
    }

    /// Commits `offsets` for `group` as part of the transaction (Kafka's
    /// `sendOffsetsToTransaction`): AddOffsetsToTxn to the transaction coordinator, then
    /// TxnOffsetCommit to the group's coordinator. The offsets become visible to the group
    /// only if the transaction commits. `generation` is the consumer's group generation and
    /// member id when it is a group member (the coordinator then refuses a zombie member's
    /// commit), or [`Generation::simple`].
    pub async fn send_offsets_to_transaction(
        &mut self,
        offsets: &[CommitOffset],
        group: &str,
        generation: &Generation,
    ) -> Result<()> {
        self.check_open("send offsets")?;
        if offsets.is_empty() {
            return Ok(());
        }
        if !self.groups.contains(group) {
            let added = self.add_offsets(group).await;
            self.note(added)?;
            self.groups.insert(group.to_owned());
        }
        let committed = self.txn_offset_commit(offsets, group, generation).await;
        self.note(committed)
    }

    /// Commits the transaction (EndTxn with `committed` true). When it returns, the
    /// coordinator has decided the commit; the markers reach the partitions shortly after,
    /// and READ_COMMITTED readers see the records from then on. A transaction that wrote
    /// nothing sends nothing, as the Java producer.
    pub async fn commit(&mut self) -> Result<()> {
        match &self.state {
            State::InTransaction => {}
            _ => return Err(self.state_error("commit")),
        }
        if self.partitions.is_empty() && self.groups.is_empty() {
            self.finish();
            return Ok(());
        }
        let r = self.end_txn(true).await;
        self.note(r)?;
        self.finish();
        Ok(())
    }

    /// Aborts the transaction (EndTxn with `committed` false): nothing it wrote is ever
    /// returned to a READ_COMMITTED reader and its offsets are discarded. Allowed after an
    /// abortable error; refused after a fatal one.
    pub async fn abort(&mut self) -> Result<()> {
        match &self.state {
            State::InTransaction | State::Abortable { .. } => {}
            _ => return Err(self.state_error("abort")),
        }
        if !self.partitions.is_empty() || !self.groups.is_empty() {
            // A failed abort leaves the transaction abortable (retry the abort) or the
            // producer unusable, by the error.
            let r = self.end_txn(false).await;
            self.note(r)?;
        }
        if self.needs_epoch_bump {
            // KIP-360: a new epoch of the same producer id resets every partition's
            // sequence, so a batch whose fate was unknown cannot wedge the next transaction.
            let r = self.init_producer_id().await;
            self.note(r)?;
        }
        self.finish();
        Ok(())
    }

    // ---- state ----

    fn finish(&mut self) {
        self.state = State::Ready;
        self.partitions.clear();
        self.groups.clear();
    }

    fn check_open(&self, what: &str) -> Result<()> {
        match &self.state {
            State::InTransaction => Ok(()),
            _ => Err(self.state_error(what)),
        }
    }

    fn state_error(&self, what: &str) -> Error {
        let (message, cause) = match &self.state {
            State::Ready => (format!("cannot {what}: no transaction is open"), None),
            State::InTransaction => (
                format!("cannot {what}: a transaction is already open"),
                None,
            ),
            State::Abortable { reason, cause } => (
                format!("cannot {what}: the transaction must be aborted after: {reason}"),
                *cause,
            ),
            State::Fatal { reason, cause } => (
                format!("cannot {what}: the producer is unusable after: {reason}"),
                *cause,
            ),
        };
        Error::TransactionState {
            transactional_id: self.config.transactional_id.clone(),
            message,
            cause,
        }
    }

    /// Moves to the abortable or fatal state on an error, as the Java producer does.
    fn note<T>(&mut self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            let cause = match e {
                Error::TransactionState { cause, .. } => *cause,
                other => other.kafka_error(),
            };
            let reason = e.to_string();
            if e.is_fatal_for_producer() {
                tracing::error!(
                    transactional_id = %self.config.transactional_id,
                    "transactional producer is unusable: {reason}"
                );
                self.state = State::Fatal { reason, cause };
            } else if self.in_transaction() {
                self.state = State::Abortable { reason, cause };
            }
        }
        r
    }

    fn at(&self) -> At {
        At::transaction(&self.config.transactional_id)
    }

    fn txn_id(&self) -> TransactionalId {
        TransactionalId(StrBytes::from_string(self.config.transactional_id.clone()))
    }

    // ---- requests ----

    /// Runs `op` against the transaction coordinator until it succeeds, fails for good, or
    /// `max_block` passes. Coordinator moves are looked up again.
    async fn coordinated<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let id = &self.config.transactional_id;
        let client = &self.client;
        retry_until(
            client,
            self.config.max_block,
            |e| {
                if e.needs_coordinator_lookup() {
                    client.invalidate_coordinator_of(TXN_KEY, id);
                }
            },
            || async {
                let addr = match client.cached_coordinator(TXN_KEY, id) {
                    Some(a) => a,
                    None => client.find_coordinator_once(TXN_KEY, id).await?.addr(),
                };
                op(addr).await
            },
        )
        .await
    }

    /// InitProducerId: a fresh producer id (first call), or the next epoch of the current
    /// one (after an abort that needs it). Sequences restart at 0.
    async fn init_producer_id(&mut self) -> Result<()> {
        let timeout_ms = millis_i32(self.config.transaction_timeout);
        let (pid, epoch) = (self.producer_id, self.epoch);
        let at = self.at();
        let this = &*self;
        let (new_pid, new_epoch) = this
            .coordinated(|addr| {
                let at = at.clone();
                async move {
                    let (_, resp) = this
                        .client
                        .call_at(&addr, Duration::ZERO, |_| {
                            InitProducerIdRequest::default()
                                .with_transactional_id(Some(this.txn_id()))
                                .with_transaction_timeout_ms(timeout_ms)
                                .with_producer_id(ProducerId(pid))
                                .with_producer_epoch(epoch)
                        })
                        .await?;
                    if let Some(error) = ResponseError::try_from_code(resp.error_code) {
                        return Err(Error::kafka("init producer id", at, error));
                    }
                    Ok((resp.producer_id.0, resp.producer_epoch))
                }
            })
            .await?;
        tracing::debug!(
            transactional_id = %self.config.transactional_id,
            producer_id = new_pid,
            epoch = new_epoch,
            "producer id initialised"
        );
        self.producer_id = new_pid;
        self.epoch = new_epoch;
        self.sequences.clear();
        self.needs_epoch_bump = false;
        Ok(())
    }

    /// AddPartitionsToTxn (v3: one transaction, topics at the top level).
    async fn add_partitions(&self, partitions: &[(String, i32)]) -> Result<()> {
        let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (t, p) in partitions {
            topics.entry(t.as_str()).or_default().push(*p);
        }
        let topics: Vec<AddPartitionsToTxnTopic> = topics
            .into_iter()
            .map(|(t, ps)| {
                AddPartitionsToTxnTopic::default()
                    .with_name(topic_name(t))
                    .with_partitions(ps)
            })
            .collect();
        let at = self.at();
        self.coordinated(|addr| {
            let topics = topics.clone();
            let at = at.clone();
            async move {
                let (_, resp) = self
                    .client
                    .call_at(&addr, Duration::ZERO, |_| {
                        AddPartitionsToTxnRequest::default()
                            .with_v3_and_below_transactional_id(self.txn_id())
                            .with_v3_and_below_producer_id(ProducerId(self.producer_id))
                            .with_v3_and_below_producer_epoch(self.epoch)
                            .with_v3_and_below_topics(topics)
                    })
                    .await?;
                if let Some(error) = ResponseError::try_from_code(resp.error_code) {
                    return Err(Error::kafka("add partitions to transaction", at, error));
                }
                // One failing partition makes Kafka answer OPERATION_NOT_ATTEMPTED for the
                // rest; report the real one.
                let mut first: Option<Error> = None;
                for t in &resp.results_by_topic_v3_and_below {
                    for p in &t.results_by_partition {
                        let Some(error) = ResponseError::try_from_code(p.partition_error_code)
                        else {
                            continue;
                        };
                        let e = Error::kafka(
                            "add partitions to transaction",
                            At::partition(&t.name.0, p.partition_index)
                                .in_transaction(&self.config.transactional_id),
                            error,
                        );
                        if error != ResponseError::OperationNotAttempted || first.is_none() {
                            first = Some(e);
                            if error != ResponseError::OperationNotAttempted {
                                break;
                            }
                        }
                    }
                }
                first.map_or(Ok(()), Err)
            }
        })
        .await
    }

    /// Produces one batch with this producer's id, epoch and the partition's next sequence,
    /// resending it (same sequence: the broker drops a duplicate) while the failure is
    /// retriable and `delivery_timeout` has not passed.
    async fn produce_one(&mut self, b: &ProduceBatch) -> Result<i64> {
        let tp = (b.topic.clone(), b.partition);
        let base_sequence = self.sequences.get(&tp).copied().unwrap_or(0);
        let stamp = ProducerStamp {
            producer_id: self.producer_id,
            producer_epoch: self.epoch,
            base_sequence,
            transactional: true,
        };
        let at = At::partition(&b.topic, b.partition).in_transaction(&self.config.transactional_id);
        let bytes =
            encode_stamped_async(&b.records, self.config.compression, &at, Some(stamp)).await?;
        let options = ProduceOptions {
            acks: Acks::All,
            compression: self.config.compression,
            timeout: self.config.produce_timeout,
        };
        let client = &self.client;
        let topic = b.topic.as_str();
        let id = &self.config.transactional_id;
        let result = retry_until(
            client,
            self.config.delivery_timeout,
            |e| {
                if e.needs_metadata_refresh() {
                    client.invalidate_topic(topic);
                }
            },
            || async {
                let addr = client.leader_addr(topic, b.partition).await?;
                let request = produce_request(
                    &options,
                    [(topic, vec![(b.partition, bytes.clone())])].into_iter(),
                )
                .with_transactional_id(Some(TransactionalId(StrBytes::from_string(id.clone()))));
                let (_, resp) = client.call_at(&addr, options.timeout, |_| request).await?;
                match partition_result(&resp, topic, b.partition) {
                    // Kafka answers a resent batch it already has with its original offset;
                    // an old broker answers DUPLICATE_SEQUENCE_NUMBER. Either way it is in.
                    Err(e) if e.kafka_error() == Some(ResponseError::DuplicateSequenceNumber) => {
                        Ok(-1)
                    }
                    other => other,
                }
            },
        )
        .await;
        match &result {
            Ok(_) => {
                let count = i32::try_from(b.records.len()).unwrap_or(i32::MAX);
                // Kafka's sequences wrap at i32::MAX back to 0.
                let next = if base_sequence > i32::MAX - count {
                    count - (i32::MAX - base_sequence) - 1
                } else {
                    base_sequence + count
                };
                self.sequences.insert(tp, next);
            }
            Err(e) => {
                // The batch may or may not be in the log (a lost connection, a timeout, an
                // out-of-order sequence): the sequence is no longer known, so the abort must
                // start a new epoch.
                if !e.is_unsent() {
                    self.needs_epoch_bump = true;
                }
            }
        }
        result
    }

    /// AddOffsetsToTxn: adds the group's offsets partition to the transaction.
    async fn add_offsets(&self, group: &str) -> Result<()> {
        let at = self.at().in_group(group);
        self.coordinated(|addr| {
            let at = at.clone();
            async move {
                let (_, resp) = self
                    .client
                    .call_at(&addr, Duration::ZERO, |_| {
                        AddOffsetsToTxnRequest::default()
                            .with_transactional_id(self.txn_id())
                            .with_producer_id(ProducerId(self.producer_id))
                            .with_producer_epoch(self.epoch)
                            .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
                    })
                    .await?;
                match ResponseError::try_from_code(resp.error_code) {
                    None => Ok(()),
                    Some(error) => Err(Error::kafka("add offsets to transaction", at, error)),
                }
            }
        })
        .await
    }

    /// TxnOffsetCommit to the group coordinator.
    async fn txn_offset_commit(
        &self,
        offsets: &[CommitOffset],
        group: &str,
        generation: &Generation,
    ) -> Result<()> {
        let mut topics: Vec<TxnOffsetCommitRequestTopic> = Vec::new();
        for o in offsets {
            let part = TxnOffsetCommitRequestPartition::default()
                .with_partition_index(o.partition)
                .with_committed_offset(o.offset)
                .with_committed_metadata(
                    o.metadata
                        .as_ref()
                        .map(|m| StrBytes::from_string(m.clone())),
                );
            match topics.iter_mut().find(|t| t.name.0.as_str() == o.topic) {
                Some(t) => t.partitions.push(part),
                None => topics.push(
                    TxnOffsetCommitRequestTopic::default()
                        .with_name(topic_name(&o.topic))
                        .with_partitions(vec![part]),
                ),
            }
        }
        let client = &self.client;
        let id = &self.config.transactional_id;
        retry_until(
            client,
            self.config.max_block,
            |e| {
                if e.needs_coordinator_lookup() {
                    client.invalidate_coordinator(group);
                }
            },
            || {
                let topics = topics.clone();
                async move {
                    let addr = client.coordinator_addr(group).await?;
                    let (_, resp) = client
                        .call_at(&addr, Duration::ZERO, |_| {
                            TxnOffsetCommitRequest::default()
                                .with_transactional_id(self.txn_id())
                                .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
                                .with_producer_id(ProducerId(self.producer_id))
                                .with_producer_epoch(self.epoch)
                                .with_generation_id(generation.generation_id)
                                .with_member_id(StrBytes::from_string(generation.member_id.clone()))
                                .with_topics(topics)
                        })
                        .await?;
                    for t in &resp.topics {
                        for p in &t.partitions {
                            if let Some(error) = ResponseError::try_from_code(p.error_code) {
                                let mut at = At::partition(&t.name.0, p.partition_index)
                                    .in_group(group)
                                    .in_transaction(id);
                                at.offset = offsets
                                    .iter()
                                    .find(|o| {
                                        o.topic == t.name.0.as_str()
                                            && o.partition == p.partition_index
                                    })
                                    .map(|o| o.offset);
                                return Err(Error::kafka("transactional offset commit", at, error));
                            }
                        }
                    }
                    Ok(())
                }
            },
        )
        .await
    }

    /// EndTxn (v4 at most: transaction version 1).
    async fn end_txn(&self, commit: bool) -> Result<()> {
        let op = if commit {
            "commit transaction"
        } else {
            "abort transaction"
        };
        let at = self.at();
        self.coordinated(|addr| {
            let at = at.clone();
            async move {
                let (_, resp) = self
                    .client
                    .call_at(&addr, Duration::ZERO, |_| {
                        EndTxnRequest::default()
                            .with_transactional_id(self.txn_id())
                            .with_producer_id(ProducerId(self.producer_id))
                            .with_producer_epoch(self.epoch)
                            .with_committed(commit)
                    })
                    .await?;
                match ResponseError::try_from_code(resp.error_code) {
                    None => Ok(()),
                    Some(error) => Err(Error::kafka(op, at, error)),
                }
            }
        })
        .await
    }
}

/// Runs `op` until it succeeds, fails with an error that is not retriable, or `deadline`
/// has passed, pausing with the client's exponential backoff in between. `on_retry` sees
/// each error that will be retried. Every request retried here is safe to resend:
/// coordinator requests are idempotent for the same producer epoch, and a resent produce
/// carries the same sequence numbers, which the broker deduplicates.
async fn retry_until<T, F, Fut>(
    client: &Client,
    deadline: Duration,
    mut on_retry: impl FnMut(&Error),
    mut op: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let start = Instant::now();
    let mut attempt: u32 = 0;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retriable() && start.elapsed() < deadline => {
                tracing::debug!(attempt, "retrying after: {e}");
                on_retry(&e);
                let pause = client
                    .config()
                    .backoff(attempt)
                    .min(deadline.saturating_sub(start.elapsed()));
                tokio::time::sleep(pause).await;
                attempt = attempt.saturating_add(1);
            }
            Err(e) => return Err(e),
        }
    }
}
