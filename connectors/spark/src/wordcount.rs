//! The built-in job: Spark's `DirectKafkaWordCount` (`lines.flatMap(_.split(" "))
//! .map(x => (x, 1L)).reduceByKey(_ + _)`), per partition and then merged.
//!
//! Words are split exactly as Java's `String.split(" ")`: on each single space, so two
//! spaces in a row give an empty word, a leading space gives an empty first word, and
//! trailing empty words are dropped (so `" "` has no words but `""` is one empty word).
//! Values are decoded as UTF-8 (invalid bytes become U+FFFD, as Kafka's
//! `StringDeserializer` does); a record with a null value (a tombstone) has no words,
//! where Spark's job would fail on it.

use std::collections::HashMap;

use sluice_client::FetchedRecord;

use crate::agg::{Cell, LateRecord, Partial, Updates};
use crate::window::{EventTime, Windows};

/// Word → count.
pub type Counts = HashMap<String, i64>;

/// Java's `line.split(" ")`.
pub fn java_split(line: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = line.split(' ').collect();
    if parts.len() == 1 {
        // No separator found: Java returns the input itself, even when it is empty.
        return parts;
    }
    while parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts
}

/// Adds the words of `line` to `counts`, allocating only for words not seen before.
pub fn count_line(counts: &mut Counts, line: &str) {
    for word in java_split(line) {
        match counts.get_mut(word) {
            Some(c) => *c += 1,
            None => {
                counts.insert(word.to_owned(), 1);
            }
        }
    }
}

/// Counts the words of every record's value.
pub fn count_records<I>(records: I) -> Counts
where
    I: IntoIterator<Item = FetchedRecord>,
{
    let mut counts = Counts::new();
    for r in records {
        let Some(value) = r.value else { continue };
        count_line(&mut counts, &String::from_utf8_lossy(&value));
    }
    counts
}

/// Adds `more` into `into` (`reduceByKey(_ + _)` across partitions).
pub fn merge(into: &mut Counts, more: Counts) {
    if into.is_empty() {
        *into = more;
        return;
    }
    for (w, c) in more {
        *into.entry(w).or_insert(0) += c;
    }
}

/// One partition's share of a windowed word count (Spark Structured Streaming's
/// `groupBy(window(eventTime, size, slide), word).count()` after `withWatermark`).
#[derive(Debug, Default)]
pub struct WindowedPart {
    /// Counts per (window start, word), plus the late records' descriptions.
    pub updates: Updates,
    /// The largest event time seen (late records included, as Spark's
    /// `EventTimeWatermarkExec` sees every row), `None` without any.
    pub max_event_ms: Option<i64>,
    /// The late records themselves, parallel to `updates.late`, for a side output.
    pub late_records: Vec<FetchedRecord>,
    /// Records without an event time (the JSON field missing or not a time): in no
    /// window, as Spark's null window drops them.
    pub no_event_time: u64,
}

/// Counts the words of `records` (from `topic`/`partition`) per event-time window. A
/// (record, window) pair whose window is final under `watermark` (the one in force for this
/// batch) is dropped, as Spark does; a record dropped from every window is late.
pub fn count_windowed<I>(
    topic: &str,
    partition: i32,
    records: I,
    windows: &Windows,
    event_time: &EventTime,
    watermark: Option<i64>,
) -> WindowedPart
where
    I: IntoIterator<Item = FetchedRecord>,
{
    let mut part = WindowedPart::default();
    let mut live = Vec::new();
    for r in records {
        let Some(t) = event_time.of(&r) else {
            part.no_event_time += 1;
            continue;
        };
        part.max_event_ms = Some(part.max_event_ms.map_or(t, |m| m.max(t)));
        live.clear();
        live.extend(
            windows
                .starts(t)
                .filter(|s| !windows.is_final(*s, watermark)),
        );
        if live.is_empty() {
            part.updates.late.push(LateRecord {
                topic: topic.to_owned(),
                partition,
                offset: r.offset,
                event_time_ms: t,
                // Only a record with a watermark can be late.
                watermark_ms: watermark.unwrap_or(i64::MIN),
            });
            part.late_records.push(r);
            continue;
        }
        let Some(value) = &r.value else { continue };
        let line = String::from_utf8_lossy(value);
        for word in java_split(&line) {
            for s in &live {
                part.updates
                    .add(Cell::windowed(*s, word), Partial::Count(1));
            }
        }
    }
    part
}

/// The `n` most frequent words, ties by word.
pub fn top(counts: &Counts, n: usize) -> Vec<(&str, i64)> {
    let mut all: Vec<(&str, i64)> = counts.iter().map(|(w, c)| (w.as_str(), *c)).collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    all.truncate(n);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_follows_java() {
        assert_eq!(java_split("a b c"), vec!["a", "b", "c"]);
        assert_eq!(java_split("a  b"), vec!["a", "", "b"]);
        assert_eq!(java_split(" a"), vec!["", "a"]);
        assert_eq!(java_split("a b  "), vec!["a", "b"]);
        assert_eq!(java_split(""), vec![""]);
        assert!(java_split(" ").is_empty());
        assert!(java_split("   ").is_empty());
        assert_eq!(java_split("a\tb"), vec!["a\tb"], "only the space separates");
    }

    fn rec(offset: i64, ts: i64, value: &str) -> FetchedRecord {
        FetchedRecord {
            offset,
            timestamp: ts,
            timestamp_type: sluice_client::TimestampType::Creation,
            key: None,
            value: Some(bytes::Bytes::copy_from_slice(value.as_bytes())),
            headers: Vec::new(),
        }
    }

    #[test]
    fn windowed_counts_drop_pairs_of_final_windows() {
        use std::time::Duration;
        let w = Windows::new(Duration::from_secs(20), Duration::from_secs(10)).unwrap();
        let records = vec![
            rec(0, 25_000, "a b"), // windows 10s (final: end 30s <= 30s) and 20s
            rec(1, 5_000, "a"),    // windows -10s and 0s, both final: late
            rec(2, 29_999, "b"),   // below the watermark, yet window 20s is live
            rec(3, 31_000, "c"),   // windows 20s, 30s
        ];
        let part = count_windowed(
            "t",
            3,
            records,
            &w,
            &EventTime::RecordTimestamp,
            Some(30_000),
        );
        assert_eq!(part.max_event_ms, Some(31_000));
        assert_eq!(part.updates.late.len(), 1);
        assert_eq!(part.updates.late[0].offset, 1);
        assert_eq!(part.updates.late[0].partition, 3);
        assert_eq!(part.late_records.len(), 1);
        let get = |s: i64, k: &str| part.updates.cells.get(&Cell::windowed(s, k)).cloned();
        assert_eq!(get(20_000, "a"), Some(Partial::Count(1)));
        assert_eq!(get(20_000, "b"), Some(Partial::Count(2)));
        assert_eq!(get(20_000, "c"), Some(Partial::Count(1)));
        assert_eq!(get(30_000, "c"), Some(Partial::Count(1)));
        assert_eq!(get(10_000, "a"), None, "the final window's pair is dropped");
        assert_eq!(get(0, "a"), None);
        assert_eq!(part.updates.cells.len(), 4);
        // Without a watermark nothing is late, and JSON without the field has no time.
        let part = count_windowed(
            "t",
            0,
            vec![rec(0, 5_000, "a"), rec(1, 5_000, "{}")],
            &w,
            &EventTime::JsonField("ts".into()),
            None,
        );
        assert_eq!(part.no_event_time, 2);
        assert!(part.updates.cells.is_empty());
    }

    #[test]
    fn counts_merge_and_rank() {
        let mut a = Counts::new();
        count_line(&mut a, "to be or not to be");
        let mut b = Counts::new();
        count_line(&mut b, "be quick");
        merge(&mut a, b);
        assert_eq!(a.get("be"), Some(&3));
        assert_eq!(a.get("to"), Some(&2));
        assert_eq!(top(&a, 2), vec![("be", 3), ("to", 2)]);
        assert_eq!(top(&a, 10).len(), 5);
    }
}
