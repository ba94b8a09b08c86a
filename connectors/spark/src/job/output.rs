//! The job's outputs besides the [`ResultSink`](crate::ResultSink)s: [`StdoutSink`]
//! (Structured Streaming's console sink in update mode: each batch prints the cells it
//! changed with their running values), the records the Kafka sink writes
//! ([`kafka_records`], written by [`KafkaSink`](crate::KafkaSink) in the batch's
//! transaction), and [`LateWriter`], the side output of records behind the watermark.

use std::collections::BTreeMap;
use std::io::Write;

use sluice_client::{Client, ProduceBatch, ProduceOptions, ProduceRecord};

use crate::agg::{Cell, Partial, Updates};
use crate::error::Result;
use crate::job::record::LateOutput;
use crate::kafka_sink::{offset_ranges_header, BATCH_TIME_HEADER, OFFSET_RANGES_HEADER};
use crate::range::OffsetRange;
use crate::window::Windows;

/// Header of a late record: the event time it had (ms).
pub const LATE_EVENT_TIME_HEADER: &str = "spark.late.event.time";
/// Header of a late record: the watermark it was behind (ms).
pub const LATE_WATERMARK_HEADER: &str = "spark.late.watermark";
/// Header of a late record: where it was read, `topic:partition:offset`.
pub const LATE_SOURCE_HEADER: &str = "spark.late.source";

/// Prints each batch's changed cells with their running values. State lives in memory
/// only (a restart begins again from the stream's start); a window's cells are forgotten
/// once the watermark passes its end, after they were printed final.
#[derive(Debug)]
pub struct StdoutSink {
    state: BTreeMap<Cell, Partial>,
    num_rows: usize,
    windows: Option<Windows>,
}

impl StdoutSink {
    /// Prints at most `num_rows` cells per batch (Spark's console sink `numRows`).
    pub fn new(num_rows: usize, windows: Option<Windows>) -> StdoutSink {
        StdoutSink {
            state: BTreeMap::new(),
            num_rows,
            windows,
        }
    }

    /// Merges a batch into the running values and prints what it changed: the batch
    /// header, its offset ranges, the watermark, then `(key,value)` or
    /// `([start,end),key,value)` lines in cell order.
    pub fn apply(
        &mut self,
        time_ms: i64,
        ranges: &[OffsetRange],
        updates: &Updates,
        watermark: Option<i64>,
    ) -> std::io::Result<()> {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        writeln!(out, "-------------------------------------------")?;
        writeln!(out, "Time: {time_ms} ms")?;
        writeln!(out, "-------------------------------------------")?;
        for r in ranges {
            writeln!(out, "{r}")?;
        }
        if self.windows.is_some() {
            match watermark {
                Some(wm) => writeln!(
                    out,
                    "Watermark: {wm} ms, late records: {}",
                    updates.late.len()
                )?,
                None => writeln!(
                    out,
                    "Watermark: none yet, late records: {}",
                    updates.late.len()
                )?,
            }
        }
        for (n, (cell, partial)) in updates.cells.iter().enumerate() {
            let value = match self.state.get_mut(cell) {
                Some(p) => {
                    p.merge(partial.clone());
                    p.value()
                }
                None => {
                    self.state.insert(cell.clone(), partial.clone());
                    partial.value()
                }
            };
            if n >= self.num_rows {
                continue;
            }
            match (cell.window_start, &self.windows) {
                (Some(start), Some(w)) => {
                    writeln!(out, "([{start},{}),{},{value})", w.end(start), cell.key)?;
                }
                _ => writeln!(out, "({},{value})", cell.key)?,
            }
        }
        if updates.cells.len() > self.num_rows {
            writeln!(
                out,
                "only showing {} of {} changed cells",
                self.num_rows,
                updates.cells.len()
            )?;
        }
        writeln!(out)?;
        out.flush()?;
        if let Some(w) = &self.windows {
            // A window the watermark passed cannot change again (Spark drops its state).
            self.state
                .retain(|c, _| c.window_start.is_none_or(|s| !w.is_final(s, watermark)));
        }
        Ok(())
    }
}

/// The Kafka sink's records for a batch: one per changed cell, key the cell's key, value a
/// JSON object `{"key", "window": {"start", "end"} | null, "aggregate", "value"}` holding
/// this batch's partial (like the word count's Kafka output, each record is the batch's
/// contribution: counts and sums add up across records, min and max combine, and a
/// distinct count also lists its `"values"` so readers can union them). Headers name the
/// batch time and its offset ranges.
pub fn kafka_records(
    time_ms: i64,
    ranges: &[OffsetRange],
    updates: &Updates,
    windows: Option<&Windows>,
) -> Vec<ProduceRecord> {
    let ranges_text = offset_ranges_header(ranges);
    updates
        .cells
        .iter()
        .map(|(cell, partial)| {
            let window = match (cell.window_start, windows) {
                (Some(s), Some(w)) => serde_json::json!({ "start": s, "end": w.end(s) }),
                _ => serde_json::Value::Null,
            };
            let value = match partial {
                Partial::Count(c) => serde_json::json!(c),
                other => serde_json::json!(other.value()),
            };
            let mut doc = serde_json::json!({
                "key": cell.key,
                "window": window,
                "aggregate": partial.aggregate().name(),
                "value": value,
            });
            if let (Partial::Distinct(values), Some(obj)) = (partial, doc.as_object_mut()) {
                obj.insert("values".to_owned(), serde_json::json!(values));
            }
            ProduceRecord::new(doc.to_string())
                .with_key(cell.key.clone())
                .with_header(BATCH_TIME_HEADER, time_ms.to_string())
                .with_header(OFFSET_RANGES_HEADER, ranges_text.clone())
        })
        .collect()
}

/// Writes late records to a Kafka topic as they were read (key, value), with headers
/// giving their event time, the watermark and where they came from. With the Kafka sink
/// they go in the batch's transaction ([`LateWriter::batches`]); otherwise they are written
/// before the batch's results are applied, outside their transaction: at-least-once (a
/// batch replayed after a crash writes its late records again).
#[derive(Debug)]
pub struct LateWriter {
    client: Client,
    topic: String,
    partitions: i32,
}

impl LateWriter {
    /// Looks up `topic`'s partitions.
    pub async fn create(client: Client, topic: &str) -> Result<LateWriter> {
        let partitions = client.partitions(topic).await?;
        let partitions = i32::try_from(partitions.len()).unwrap_or(i32::MAX);
        if partitions == 0 {
            return Err(crate::error::Error::Config(format!(
                "late-record topic {topic} has no partitions"
            )));
        }
        Ok(LateWriter {
            client,
            topic: topic.to_owned(),
            partitions,
        })
    }

    /// Writes `late` (outside any transaction: a Redis or PostgreSQL job writes them before
    /// its batch's transaction, so a batch replayed after a crash may write them again).
    pub async fn write(&self, late: &[LateOutput]) -> Result<()> {
        for b in self.batches(late) {
            self.client
                .produce(
                    &b.topic,
                    b.partition,
                    &b.records,
                    &ProduceOptions::default(),
                )
                .await?;
        }
        Ok(())
    }

    /// The records `late` becomes, per partition of the topic: a record goes to its source
    /// partition's number modulo the topic's partitions, so one source partition's late
    /// records stay in order. The Kafka sink writes these in its batch's transaction.
    pub fn batches(&self, late: &[LateOutput]) -> Vec<ProduceBatch> {
        let mut per_partition: BTreeMap<i32, Vec<ProduceRecord>> = BTreeMap::new();
        for l in late {
            let r = &l.record;
            let mut rec = ProduceRecord::default()
                .with_header(LATE_EVENT_TIME_HEADER, r.event_time_ms.to_string())
                .with_header(LATE_WATERMARK_HEADER, r.watermark_ms.to_string())
                .with_header(
                    LATE_SOURCE_HEADER,
                    format!("{}:{}:{}", r.topic, r.partition, r.offset),
                );
            rec.key = l.key.clone();
            rec.value = l.value.clone();
            let p = r.partition.rem_euclid(self.partitions);
            per_partition.entry(p).or_default().push(rec);
        }
        per_partition
            .into_iter()
            .map(|(partition, records)| ProduceBatch {
                topic: self.topic.clone(),
                partition,
                records,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn kafka_records_carry_window_and_value() {
        let w = Windows::new(Duration::from_secs(60), Duration::from_secs(60)).unwrap();
        let mut u = Updates::default();
        u.add(Cell::windowed(60_000, "blue"), Partial::Count(3));
        u.add(Cell::windowed(0, "red"), Partial::Count(1));
        let recs = kafka_records(5, &[OffsetRange::new("t", 0, 0, 4)], &u, Some(&w));
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].key.as_deref(), Some(&b"red"[..]));
        let v: serde_json::Value =
            serde_json::from_slice(recs[1].value.as_deref().unwrap()).unwrap();
        assert_eq!(v["window"]["start"], 60_000);
        assert_eq!(v["window"]["end"], 120_000);
        assert_eq!(v["value"], 3);
        assert_eq!(v["aggregate"], "count");
    }
}
