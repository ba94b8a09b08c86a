//! [`KafkaSink`]: exactly-once output to a Kafka topic. Each batch's results and its offset
//! ranges go into one Kafka transaction: the result records are produced to the output
//! topic, and every range's `untilOffset` is committed to the stream's group with
//! `sendOffsetsToTransaction`; then the transaction commits. A reader at `read_committed`
//! sees a batch's results if and only if the group's offsets moved past the batch, so a
//! stream that restarts from the group's committed offsets neither loses nor repeats a
//! batch, wherever it was killed. (This is Spark's "transactional output" pattern with Kafka
//! itself as the store, the consume-transform-produce loop of Kafka's exactly-once
//! semantics.)
//!
//! A windowed job's watermark state travels in the same commit, as the offsets' metadata
//! ([`watermark_metadata`]), and its late records can go in the same transaction too
//! ([`KafkaSink::apply_with`]); [`KafkaSink::restored_watermark`] reads the state back, so a
//! restarted job drops exactly the records an uninterrupted one would have dropped.
//!
//! Restart order matters: the sink must be created (its InitProducerId fences the previous
//! process and aborts its open transaction) before the stream reads the group's offsets.
//!
//! Records are keyed and partitioned as Kafka's default partitioner does for keyed records
//! (murmur2 of the key), so a word always lands in the same output partition.

use sluice_client::partitioner::partition_for_key;
use sluice_client::{
    Client, CommitOffset, Generation, ProduceBatch, ProduceRecord, TransactionConfig,
    TransactionalProducer,
};

use crate::error::{Error, Result};
use crate::range::OffsetRange;
use crate::window::WatermarkState;
use crate::wordcount::Counts;

/// Header naming the batch time (ms) on every record a batch writes.
pub const BATCH_TIME_HEADER: &str = "spark.batch.time";
/// Header listing the batch's offset ranges, `topic:partition:from:until` joined by `,`.
pub const OFFSET_RANGES_HEADER: &str = "spark.offset.ranges";
/// How the offset-commit metadata holding a watermark state begins.
const WATERMARK_METADATA: &str = "sluice-spark watermark;";

/// Exactly-once output of batch results to one Kafka topic.
#[derive(Debug)]
pub struct KafkaSink {
    producer: TransactionalProducer,
    topic: String,
    partitions: i32,
    group: String,
}

impl KafkaSink {
    /// Starts the transactional producer for `transactional_id` (fencing any earlier process
    /// with the same id and aborting what it left open) and looks up `topic`'s partitions.
    /// `group` is the stream's `group.id`, where the batches' offsets are committed.
    pub async fn create(
        client: &Client,
        topic: &str,
        transactional_id: &str,
        group: &str,
    ) -> Result<Self> {
        let partitions = client.partitions(topic).await?;
        let count = i32::try_from(partitions.len()).unwrap_or(i32::MAX);
        if count == 0 {
            return Err(Error::Config(format!(
                "output topic {topic} has no partitions"
            )));
        }
        let producer = client
            .transactional_producer(TransactionConfig::new(transactional_id))
            .await?;
        tracing::info!(
            topic,
            transactional_id,
            group,
            partitions = count,
            "kafka output ready"
        );
        Ok(Self {
            producer,
            topic: topic.to_owned(),
            partitions: count,
            group: group.to_owned(),
        })
    }

    /// Writes one batch: `records` to the output topic and every range's `untilOffset` to
    /// the group, in one transaction. A batch that covers no offsets writes nothing. On a
    /// failure the transaction is aborted (unless the producer was fenced) and the error
    /// returned: nothing of the batch is visible, and a restart reads its ranges again.
    pub async fn apply(
        &mut self,
        ranges: &[OffsetRange],
        records: Vec<ProduceRecord>,
    ) -> Result<()> {
        self.apply_with(ranges, records, Vec::new(), None).await
    }

    /// [`apply`](Self::apply), also writing `side` (records for other topics, such as a
    /// windowed job's late records) and storing `watermark` as every offset's metadata, all
    /// in the batch's one transaction.
    pub async fn apply_with(
        &mut self,
        ranges: &[OffsetRange],
        records: Vec<ProduceRecord>,
        side: Vec<ProduceBatch>,
        watermark: Option<WatermarkState>,
    ) -> Result<()> {
        if ranges.iter().all(|r| r.count() == 0) {
            return Ok(());
        }
        let mut per_partition: Vec<Vec<ProduceRecord>> =
            (0..self.partitions).map(|_| Vec::new()).collect();
        for r in records {
            let p = partition_for(r.key.as_deref(), self.partitions);
            if let Some(v) = usize::try_from(p)
                .ok()
                .and_then(|p| per_partition.get_mut(p))
            {
                v.push(r);
            }
        }
        let mut batches: Vec<ProduceBatch> = per_partition
            .into_iter()
            .zip(0..)
            .filter(|(records, _)| !records.is_empty())
            .map(|(records, partition)| ProduceBatch {
                topic: self.topic.clone(),
                partition,
                records,
            })
            .collect();
        batches.extend(side.into_iter().filter(|b| !b.records.is_empty()));
        let metadata = watermark.map(|w| watermark_metadata(&w));
        let offsets: Vec<CommitOffset> = ranges
            .iter()
            .map(|r| CommitOffset {
                metadata: metadata.clone(),
                ..CommitOffset::new(&r.topic, r.partition, r.until_offset)
            })
            .collect();
        self.producer.begin()?;
        let written = self.write(&batches, &offsets).await;
        if let Err(e) = written {
            if !e.is_fatal_for_producer() {
                if let Err(abort) = self.producer.abort().await {
                    tracing::warn!("aborting the failed batch's transaction: {abort}");
                }
            }
            return Err(e.into());
        }
        Ok(())
    }

    async fn write(
        &mut self,
        batches: &[ProduceBatch],
        offsets: &[CommitOffset],
    ) -> sluice_client::Result<()> {
        if !batches.is_empty() {
            self.producer.send_batches(batches).await?;
        }
        // The stream is no group member (it assigns partitions itself), so the commit is
        // a simple one, as the stream's own commits are.
        self.producer
            .send_offsets_to_transaction(offsets, &self.group, &Generation::simple())
            .await?;
        self.producer.commit().await
    }

    /// The watermark state committed with `group`'s offsets for `partitions` (the
    /// default state when none was). Every batch stores the state with every partition's
    /// offset, and both of its fields only grow, so the largest of each is the last batch's.
    /// Reads at `require_stable`, as a transaction still undecided must not be read past.
    pub async fn restored_watermark(
        client: &Client,
        group: &str,
        partitions: &[(String, i32)],
    ) -> Result<WatermarkState> {
        let committed = client.fetch_committed_with(group, partitions, true).await?;
        let mut state = WatermarkState::default();
        for c in committed {
            let Some(text) = c.metadata.as_deref().filter(|m| !m.is_empty()) else {
                continue;
            };
            match parse_watermark_metadata(text) {
                Some(w) => {
                    state.max_event_ms = state.max_event_ms.max(w.max_event_ms);
                    state.late_total = state.late_total.max(w.late_total);
                }
                None => tracing::warn!(
                    group,
                    topic = c.topic,
                    partition = c.partition,
                    metadata = text,
                    "the committed offset's metadata holds no watermark state; ignored"
                ),
            }
        }
        Ok(state)
    }

    /// The output records of a word-count batch: one per word, key the word, value the
    /// count in decimal, with the batch time and offset ranges as headers.
    pub fn word_count_records(
        time_ms: i64,
        ranges: &[OffsetRange],
        counts: &Counts,
    ) -> Vec<ProduceRecord> {
        let ranges_text = offset_ranges_header(ranges);
        let mut words: Vec<(&String, &i64)> = counts.iter().collect();
        words.sort();
        words
            .into_iter()
            .map(|(w, c)| {
                ProduceRecord::new(c.to_string())
                    .with_key(w.clone())
                    .with_header(BATCH_TIME_HEADER, time_ms.to_string())
                    .with_header(OFFSET_RANGES_HEADER, ranges_text.clone())
            })
            .collect()
    }
}

/// The [`OFFSET_RANGES_HEADER`] value of a batch: `topic:partition:from:until` per range,
/// joined by `,`.
pub(crate) fn offset_ranges_header(ranges: &[OffsetRange]) -> String {
    ranges
        .iter()
        .map(|r| {
            format!(
                "{}:{}:{}:{}",
                r.topic, r.partition, r.from_offset, r.until_offset
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The offset-commit metadata holding `w`:
/// `sluice-spark watermark;max_event_ms=N|none;late_total=N`.
pub fn watermark_metadata(w: &WatermarkState) -> String {
    let max = w
        .max_event_ms
        .map_or_else(|| "none".to_owned(), |m| m.to_string());
    format!(
        "{WATERMARK_METADATA}max_event_ms={max};late_total={}",
        w.late_total
    )
}

/// Reads [`watermark_metadata`]'s text back; `None` for any other text.
pub fn parse_watermark_metadata(text: &str) -> Option<WatermarkState> {
    let rest = text.strip_prefix(WATERMARK_METADATA)?;
    let (mut max, mut late) = (None, None);
    for field in rest.split(';') {
        match field.split_once('=')? {
            ("max_event_ms", "none") => max = Some(None),
            ("max_event_ms", v) => max = Some(Some(v.parse().ok()?)),
            ("late_total", v) => late = Some(v.parse().ok()?),
            _ => return None,
        }
    }
    Some(WatermarkState {
        max_event_ms: max?,
        late_total: late?,
    })
}

/// Kafka's default partition for a keyed record (see `sluice_client::partitioner`).
/// Keyless records go to partition 0 (the sink writes only keyed ones).
fn partition_for(key: Option<&[u8]>, partitions: i32) -> i32 {
    key.map_or(0, |k| partition_for_key(k, partitions))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_carry_the_batch_and_its_ranges() {
        let mut counts = Counts::new();
        counts.insert("b".to_owned(), 2);
        counts.insert("a".to_owned(), 1);
        let ranges = [
            OffsetRange::new("t", 0, 3, 5),
            OffsetRange::new("t", 1, 0, 2),
        ];
        let records = KafkaSink::word_count_records(77, &ranges, &counts);
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].key.as_deref(), Some(&b"a"[..]));
        assert_eq!(records[1].value.as_deref(), Some(&b"2"[..]));
        let h = &records[0].headers;
        assert_eq!(h[0].value.as_deref(), Some(&b"77"[..]));
        assert_eq!(h[1].value.as_deref(), Some(&b"t:0:3:5,t:1:0:2"[..]));
    }

    #[test]
    fn watermark_state_round_trips_through_commit_metadata() {
        for w in [
            WatermarkState::default(),
            WatermarkState {
                max_event_ms: Some(1_700_000_000_123),
                late_total: 7,
            },
            WatermarkState {
                max_event_ms: Some(-5),
                late_total: 0,
            },
        ] {
            assert_eq!(parse_watermark_metadata(&watermark_metadata(&w)), Some(w));
        }
        assert_eq!(
            watermark_metadata(&WatermarkState {
                max_event_ms: Some(60_000),
                late_total: 2
            }),
            "sluice-spark watermark;max_event_ms=60000;late_total=2"
        );
        for bad in [
            "",
            "someone else's metadata",
            "sluice-spark watermark;max_event_ms=1",
            "sluice-spark watermark;max_event_ms=x;late_total=1",
            "sluice-spark watermark;max_event_ms=1;late_total=-1",
            "sluice-spark watermark;max_event_ms=1;late_total=1;other=2",
        ] {
            assert_eq!(parse_watermark_metadata(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn partitions_follow_the_key() {
        for key in [&b"spark"[..], b"kafka", b"x"] {
            let p = partition_for(Some(key), 6);
            assert!((0..6).contains(&p));
            assert_eq!(p, partition_for(Some(key), 6));
        }
        assert_eq!(partition_for(None, 6), 0);
    }
}
