//! The transaction APIs: the client's (AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit,
//! EndTxn), the markers' (WriteTxnMarkers, as `kafka-transactions abort` sends it) and the
//! admin ones (DescribeTransactions, ListTransactions, DescribeProducers). The state machine
//! lives in `crate::txn`; these handlers translate requests and answers.

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod describe_producers;
pub mod describe_transactions;
pub mod end_txn;
pub mod list_transactions;
pub mod txn_offset_commit;
pub mod write_txn_markers;

use crate::api::Code;

/// KIP-588: PRODUCER_FENCED is answered from these request versions on; older clients get
/// INVALID_PRODUCER_EPOCH, as Kafka's KafkaApis maps it.
pub(crate) fn fenced_for(code: Code, version: i16, first_version_with_fenced: i16) -> Code {
    if code == Code::ProducerFenced && version < first_version_with_fenced {
        Code::InvalidProducerEpoch
    } else {
        code
    }
}

/// The partition of `__consumer_offsets` that holds `group`'s offsets: Sluice keeps that
/// topic in one partition.
pub(crate) fn offsets_partition(_group: &str) -> (String, i32) {
    (crate::log::CONSUMER_OFFSETS_TOPIC.to_string(), 0)
}
