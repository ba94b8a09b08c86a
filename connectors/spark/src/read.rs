//! Reading one [`OffsetRange`] exactly: every record with `fromOffset <= offset <
//! untilOffset`, in order, nothing else (Spark's `KafkaRDD` iterator). Records past the
//! range that come back in the same fetch are dropped. Offsets with no record (compacted
//! away, or taken by a transaction marker, which the client skips) are gaps: refused by
//! default, as Spark does, or passed over with `allowNonConsecutiveOffsets`.
//!
//! The fetch itself is a closure, so the exactness rules are tested here without a broker.

use std::future::Future;
use std::time::{Duration, Instant};

use sluice_client::{FetchResult, FetchedRecord, IsolationLevel};

use crate::error::{Error, Result};
use crate::range::OffsetRange;

/// How a range is read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadOptions {
    /// Accept gaps between offsets.
    pub(crate) allow_non_consecutive: bool,
    /// Fail when no progress is made for this long.
    pub(crate) poll_timeout: Duration,
    /// Kafka's `isolation.level` of the fetches.
    pub(crate) isolation: IsolationLevel,
}

/// Reads `range` with `fetch(offset)` and hands each non-empty chunk of in-range records to
/// `deliver`; stops early, without error, when `deliver` resolves to false (the consumer of
/// the records went away).
pub(crate) async fn read_range<F, Fut, D, DFut>(
    range: &OffsetRange,
    options: ReadOptions,
    mut fetch: F,
    mut deliver: D,
) -> Result<()>
where
    F: FnMut(i64) -> Fut,
    Fut: Future<Output = sluice_client::Result<FetchResult>>,
    D: FnMut(Vec<FetchedRecord>) -> DFut,
    DFut: Future<Output = bool>,
{
    let until = range.until_offset;
    let mut offset = range.from_offset;
    // The offset the next record must have when gaps are refused.
    let mut expected = range.from_offset;
    let mut last_progress = Instant::now();
    while offset < until {
        let result = fetch(offset).await?;
        let mut records = result.records;
        records.retain(|r| r.offset >= offset && r.offset < until);
        if !options.allow_non_consecutive {
            for r in &records {
                if r.offset != expected {
                    return Err(Error::NonConsecutive {
                        tp: range.topic_partition(),
                        expected,
                        found: r.offset,
                    });
                }
                expected = r.offset.saturating_add(1);
            }
        }
        let next = records
            .last()
            .map_or(offset, |r| r.offset.saturating_add(1))
            .max(result.next_offset);
        if next > offset {
            offset = next;
            last_progress = Instant::now();
        } else if last_progress.elapsed() >= options.poll_timeout {
            return Err(Error::PollTimeout {
                tp: range.topic_partition(),
                offset,
                until,
                after_ms: last_progress.elapsed().as_millis(),
            });
        }
        if !records.is_empty() && !deliver(records).await {
            return Ok(());
        }
    }
    if !options.allow_non_consecutive && expected != until {
        // The range ends in a gap: its last offsets hold no record.
        return Err(Error::NonConsecutive {
            tp: range.topic_partition(),
            expected,
            found: until,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use sluice_client::TimestampType;

    fn rec(offset: i64) -> FetchedRecord {
        FetchedRecord {
            offset,
            timestamp: 0,
            timestamp_type: TimestampType::Creation,
            key: None,
            value: Some(bytes::Bytes::from(offset.to_string())),
            headers: Vec::new(),
        }
    }

    fn result(offsets: &[i64], next: i64) -> FetchResult {
        FetchResult {
            records: offsets.iter().map(|o| rec(*o)).collect(),
            next_offset: next,
            high_watermark: 100,
            log_start_offset: 0,
            last_stable_offset: 100,
        }
    }

    /// Reads `range` from canned fetch results; returns the offsets delivered and the
    /// offsets asked for.
    async fn run(
        range: OffsetRange,
        allow: bool,
        canned: Vec<FetchResult>,
    ) -> (Result<()>, Vec<i64>, Vec<i64>) {
        let canned = std::sync::Mutex::new(VecDeque::from(canned));
        let asked = std::sync::Mutex::new(Vec::new());
        let mut got = Vec::new();
        let options = ReadOptions {
            allow_non_consecutive: allow,
            poll_timeout: Duration::from_millis(50),
            isolation: IsolationLevel::ReadUncommitted,
        };
        let r = read_range(
            &range,
            options,
            |offset| {
                asked.lock().unwrap().push(offset);
                let next = canned.lock().unwrap().pop_front();
                async move { Ok(next.unwrap_or_else(|| result(&[], offset))) }
            },
            |chunk| {
                got.extend(chunk.iter().map(|r| r.offset));
                async { true }
            },
        )
        .await;
        (r, got, asked.into_inner().unwrap())
    }

    #[tokio::test]
    async fn exactly_from_until_across_fetches() {
        let (r, got, asked) = run(
            OffsetRange::new("t", 0, 3, 8),
            false,
            vec![result(&[3, 4, 5], 6), result(&[6, 7, 8, 9], 10)],
        )
        .await;
        r.unwrap();
        assert_eq!(got, vec![3, 4, 5, 6, 7], "8 and 9 are past the range");
        assert_eq!(asked, vec![3, 6]);
    }

    #[tokio::test]
    async fn gaps_are_refused_by_default_and_skipped_when_allowed() {
        // Offset 5 was compacted away; offset 9 is a transaction marker (the client skips
        // it but its batch moves next_offset past it).
        let canned = || vec![result(&[3, 4, 6], 7), result(&[7, 8], 10)];
        let (r, got, _) = run(OffsetRange::new("t", 0, 3, 10), true, canned()).await;
        r.unwrap();
        assert_eq!(got, vec![3, 4, 6, 7, 8]);

        let (r, _, _) = run(OffsetRange::new("t", 0, 3, 10), false, canned()).await;
        match r {
            Err(Error::NonConsecutive {
                expected: 5,
                found: 6,
                ..
            }) => {}
            other => panic!("expected a gap at 5, got {other:?}"),
        }
        // A range that ends on the marker: the gap is found at the end.
        let (r, got, _) = run(
            OffsetRange::new("t", 0, 7, 10),
            false,
            vec![result(&[7, 8], 10)],
        )
        .await;
        assert_eq!(got, vec![7, 8]);
        assert!(
            matches!(
                r,
                Err(Error::NonConsecutive {
                    expected: 9,
                    found: 10,
                    ..
                })
            ),
            "{r:?}"
        );
    }

    #[tokio::test]
    async fn a_range_that_never_arrives_times_out() {
        let (r, got, asked) = run(OffsetRange::new("t", 2, 0, 5), false, vec![]).await;
        assert!(got.is_empty());
        assert!(asked.len() >= 2, "polled more than once");
        let err = r.unwrap_err();
        assert!(
            matches!(
                err,
                Error::PollTimeout {
                    offset: 0,
                    until: 5,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("consumer.poll.ms"), "{err}");
    }

    #[tokio::test]
    async fn an_empty_range_fetches_nothing() {
        let (r, got, asked) = run(OffsetRange::new("t", 0, 4, 4), false, vec![]).await;
        r.unwrap();
        assert!(got.is_empty() && asked.is_empty());
    }
}
