//! What a job does to each record of a partition, in order: decode the value, [`Parser`]
//! it into fields, join every table (inner: no match drops the record; left: the table's
//! fields are missing), apply the filters, render the key, take the event time and check it
//! against the watermark (per window, as Spark does), and fold the record into its cells'
//! partials. [`Pipeline::run`]
//! does one partition's records into a [`PartitionOutput`]; the batch merges those.
//!
//! Not here: loading tables (`table`), the watermark's bookkeeping across batches and the
//! sinks (`run`).

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use sluice_client::FetchedRecord;

use crate::agg::{Aggregate, Cell, LateRecord, Updates};
use crate::job::parse::{event_time_ms, Fields, Filter, Lookup, Parser, Template};
use crate::job::spec::JoinKind;
use crate::job::table::{Row, TableData};
use crate::window::{Watermark, Windows};

/// The per-record half of a job: everything a partition task needs, shared by all.
#[derive(Debug)]
pub struct Pipeline {
    /// The line parser.
    pub parser: Parser,
    /// Per table: its name, the record field it joins on, and the join kind.
    pub joins: Vec<(String, String, JoinKind)>,
    /// The filters.
    pub filters: Vec<Filter>,
    /// The grouping key.
    pub key: Template,
    /// What a missing key field renders as.
    pub missing: Option<String>,
    /// The aggregate.
    pub aggregate: Aggregate,
    /// The aggregated field (`None` for count).
    pub value_field: Option<String>,
    /// Windows and where the event time comes from (`None`: no windows).
    pub window: Option<(Windows, Option<String>)>,
    /// Whether late records are kept with their key and value, for a side output.
    pub keep_late: bool,
}

/// What the batch knows when it starts: the tables' versions and the watermark in force.
#[derive(Debug, Clone)]
pub struct BatchContext {
    /// One version per table, in [`Pipeline::joins`] order.
    pub tables: Vec<Arc<TableData>>,
    /// The watermark, as in force for this batch (`None` without windows).
    pub watermark: Option<Watermark>,
}

/// Why records were left out, per batch (logged at debug, a job's first question when its
/// results look thin).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Values that did not parse (or were null).
    pub unparsed: u64,
    /// Records an inner join found no row for.
    pub unjoined: u64,
    /// Records a filter rejected.
    pub filtered: u64,
    /// Records whose key had a missing field (and no `missing` text).
    pub no_key: u64,
    /// Records without an event time.
    pub no_time: u64,
    /// Records whose aggregated field was missing or not a number.
    pub no_value: u64,
}

impl Skipped {
    /// Adds another partition's counts.
    pub fn add(&mut self, o: Skipped) {
        self.unparsed += o.unparsed;
        self.unjoined += o.unjoined;
        self.filtered += o.filtered;
        self.no_key += o.no_key;
        self.no_time += o.no_time;
        self.no_value += o.no_value;
    }

    /// The total.
    pub fn total(&self) -> u64 {
        self.unparsed + self.unjoined + self.filtered + self.no_key + self.no_time + self.no_value
    }
}

/// A late record with what a side output writes.
#[derive(Debug, Clone)]
pub struct LateOutput {
    /// Where it came from and how late it was.
    pub record: LateRecord,
    /// Its key, as read.
    pub key: Option<Bytes>,
    /// Its value, as read.
    pub value: Option<Bytes>,
}

/// One partition's share of a batch.
#[derive(Debug, Default)]
pub struct PartitionOutput {
    /// Its cells' partials and late records.
    pub updates: Updates,
    /// Late records with their key and value (when a side output wants them).
    pub late: Vec<LateOutput>,
    /// The max event time seen (late records included, as Spark's watermark operator sees
    /// every row).
    pub max_event_ms: Option<i64>,
    /// What was left out.
    pub skipped: Skipped,
}

/// A parsed record with its joined rows: what keys, filters and values read.
struct Joined<'a, 'f> {
    fields: &'f Fields<'a>,
    rows: &'f [(&'f str, Option<&'f Row>)],
}

impl Lookup for Joined<'_, '_> {
    fn field(&self, name: &str) -> Option<Cow<'_, str>> {
        // `TABLE.COLUMN` names a joined column; a table's name hides a nested JSON field
        // of the same prefix.
        if let Some((table, column)) = name.split_once('.') {
            if let Some((_, row)) = self.rows.iter().find(|(t, _)| *t == table) {
                return row
                    .and_then(|r| r.get(column))
                    .map(|v| Cow::Borrowed(v.as_str()));
            }
        }
        self.fields.get(name)
    }
}

impl Pipeline {
    /// Runs one partition's records (`topic`, `partition` name them in late records).
    pub fn run(
        &self,
        ctx: &BatchContext,
        topic: &str,
        partition: i32,
        records: impl IntoIterator<Item = FetchedRecord>,
    ) -> PartitionOutput {
        let mut out = PartitionOutput::default();
        for r in records {
            self.record(ctx, topic, partition, &r, &mut out);
        }
        out
    }

    fn record(
        &self,
        ctx: &BatchContext,
        topic: &str,
        partition: i32,
        r: &FetchedRecord,
        out: &mut PartitionOutput,
    ) {
        let Some(value) = &r.value else {
            // A tombstone has no line (Spark's job would fail on the null).
            out.skipped.unparsed += 1;
            return;
        };
        let line = String::from_utf8_lossy(value);
        let mut late_noted = false;
        let parsed = self.parser.parse(&line, |fields| {
            self.fields(ctx, topic, partition, r, &fields, &mut late_noted, out);
        });
        if parsed.is_err() {
            out.skipped.unparsed += 1;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn fields(
        &self,
        ctx: &BatchContext,
        topic: &str,
        partition: i32,
        r: &FetchedRecord,
        fields: &Fields<'_>,
        late_noted: &mut bool,
        out: &mut PartitionOutput,
    ) {
        let mut rows: Vec<(&str, Option<&Row>)> = Vec::with_capacity(self.joins.len());
        for ((name, on, kind), table) in self.joins.iter().zip(&ctx.tables) {
            let row = {
                let probe = Joined {
                    fields,
                    rows: &rows,
                };
                probe.field(on).and_then(|k| table.get(&k))
            };
            if row.is_none() && *kind == JoinKind::Inner {
                out.skipped.unjoined += 1;
                return;
            }
            rows.push((name.as_str(), row));
        }
        let joined = Joined {
            fields,
            rows: &rows,
        };
        if !self.filters.iter().all(|f| f.test(&joined)) {
            out.skipped.filtered += 1;
            return;
        }
        let Some(key) = self.key.render(&joined, self.missing.as_deref()) else {
            out.skipped.no_key += 1;
            return;
        };
        let partial = match &self.value_field {
            None => self.aggregate.partial_of(""),
            Some(f) => joined.field(f).and_then(|v| self.aggregate.partial_of(&v)),
        };
        let Some(partial) = partial else {
            out.skipped.no_value += 1;
            return;
        };
        let Some((windows, time_field)) = &self.window else {
            out.updates.add(Cell::unwindowed(key), partial);
            return;
        };
        let event_ms = match time_field {
            None => Some(r.timestamp),
            Some(f) => joined.field(f).and_then(|t| event_time_ms(&t)),
        };
        let Some(event_ms) = event_ms else {
            out.skipped.no_time += 1;
            return;
        };
        out.max_event_ms = Some(out.max_event_ms.map_or(event_ms, |m| m.max(event_ms)));
        // Spark's watermark predicate on a window column, `window.end <= watermark`, drops
        // each (record, window) pair on its own: a record below the watermark still counts
        // in a window that is not final. A record dropped from every window is late.
        let wm = ctx.watermark.as_ref();
        let mut counted = false;
        for start in windows.starts(event_ms) {
            if wm.is_some_and(|w| w.is_window_late(windows.end(start))) {
                continue;
            }
            counted = true;
            out.updates
                .add(Cell::windowed(start, key.clone()), partial.clone());
        }
        if counted {
            return;
        }
        // One late entry per Kafka record, however many tokens it split into.
        if !*late_noted {
            *late_noted = true;
            let record = LateRecord {
                topic: topic.to_owned(),
                partition,
                offset: r.offset,
                event_time_ms: event_ms,
                watermark_ms: wm.and_then(Watermark::current).unwrap_or(i64::MIN),
            };
            if self.keep_late {
                out.late.push(LateOutput {
                    record: record.clone(),
                    key: r.key.clone(),
                    value: r.value.clone(),
                });
            }
            out.updates.late.push(record);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::agg::Partial;
    use crate::window::WatermarkState;

    fn rec(offset: i64, value: &str) -> FetchedRecord {
        FetchedRecord {
            offset,
            timestamp: 0,
            timestamp_type: sluice_client::TimestampType::Creation,
            key: None,
            value: Some(Bytes::from(value.to_owned())),
            headers: Vec::new(),
        }
    }

    #[test]
    fn sliding_windows_drop_pairs_behind_the_watermark() {
        let windows = Windows::new(Duration::from_secs(120), Duration::from_secs(60)).unwrap();
        let p = Pipeline {
            parser: Parser::Json,
            joins: Vec::new(),
            filters: Vec::new(),
            key: Template::parse("k").unwrap(),
            missing: None,
            aggregate: Aggregate::Count,
            value_field: None,
            window: Some((windows, Some("ts".to_owned()))),
            keep_late: true,
        };
        let restored = WatermarkState {
            max_event_ms: Some(200_000),
            late_total: 0,
        };
        let ctx = BatchContext {
            tables: Vec::new(),
            watermark: Some(Watermark::new(Duration::ZERO, restored)),
        };
        let out = p.run(
            &ctx,
            "t",
            0,
            vec![
                rec(0, r#"{"k":"a","ts":170000}"#),
                rec(1, r#"{"k":"a","ts":50000}"#),
                rec(2, r#"{"k":"a"}"#),
                rec(3, "not json"),
            ],
        );
        // 170 s: [60 s, 180 s) is behind the watermark (200 s), [120 s, 240 s) is not.
        let cells: Vec<(&Cell, &Partial)> = out.updates.cells.iter().collect();
        assert_eq!(
            cells,
            vec![(&Cell::windowed(120_000, "a"), &Partial::Count(1))]
        );
        // 50 s: both its windows are behind: late, kept for the side output.
        assert_eq!(out.updates.late.len(), 1);
        assert_eq!(out.updates.late[0].offset, 1);
        assert_eq!(out.updates.late[0].watermark_ms, 200_000);
        assert_eq!(out.late.len(), 1);
        assert_eq!(out.max_event_ms, Some(170_000));
        assert_eq!(out.skipped.no_time, 1);
        assert_eq!(out.skipped.unparsed, 1);
    }
}
