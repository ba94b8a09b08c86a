//! Event-time windows and the watermark, with Spark Structured Streaming's semantics
//! (`window(col, windowDuration, slideDuration)` and `withWatermark(col, delayThreshold)`):
//!
//! - a window is `[start, start + size)`; starts are multiples of `slide` since the epoch
//!   (Spark's `startTime` of 0), so a record belongs to `ceil(size / slide)` windows when
//!   sliding and to exactly one when tumbling (`slide == size`);
//! - the watermark is the max event time seen minus the allowed lateness. Spark computes it
//!   at the END of a micro-batch and uses it from the next one (`MicroBatchExecution`
//!   updates `offsetSeqMetadata.batchWatermarkMs` between batches), and it never goes back;
//! - what is late is judged against the watermark in force when the batch starts. For a
//!   windowed aggregation Spark drops each (record, window) pair whose `window.end <=
//!   watermark` (`WatermarkSupport.watermarkExpression` compares the window struct's end),
//!   counting them in `numRowsDroppedByWatermark`: a record below the watermark still
//!   counts in a window that is not final. Without windows a record is late when
//!   `eventTime <= watermark`;
//! - a window is final once the watermark reaches its end (Spark's append mode emits it
//!   then and evicts its state).
//!
//! Also here: [`EventTime`], where a record's event time comes from, and
//! [`parse_duration`] for `1m`/`10s`-style settings. What does not live here: the cells
//! and partials (`agg`) and storing anything (`sink`).

use std::time::Duration;

use sluice_client::FetchedRecord;

use crate::error::{Error, Result};

/// Event-time windows of one size, sliding by one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    size_ms: i64,
    slide_ms: i64,
}

impl Windows {
    /// Windows of `size` starting every `slide`; `slide == size` is tumbling. Both are
    /// whole milliseconds, and `0 < slide <= size` (Spark refuses a slide longer than the
    /// window too: records between windows would belong to none).
    pub fn new(size: Duration, slide: Duration) -> Result<Windows> {
        let ms = |d: Duration, what: &str| {
            i64::try_from(d.as_millis())
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| {
                    Error::Config(format!(
                        "window {what} {d:?}: must be at least 1 ms and fit in i64 ms"
                    ))
                })
        };
        let size_ms = ms(size, "size")?;
        let slide_ms = ms(slide, "slide")?;
        if slide_ms > size_ms {
            return Err(Error::Config(format!(
                "window slide {slide_ms} ms is longer than the window {size_ms} ms"
            )));
        }
        Ok(Windows { size_ms, slide_ms })
    }

    /// Tumbling windows of `size`.
    pub fn tumbling(size: Duration) -> Result<Windows> {
        Self::new(size, size)
    }

    /// Every window start `s` with `s <= event_time_ms < s + size`, ascending.
    pub fn starts(&self, event_time_ms: i64) -> impl Iterator<Item = i64> {
        let (size, slide) = (self.size_ms, self.slide_ms);
        // The smallest multiple of slide above `t - size`: the earliest window still
        // holding `t` (Spark's TimeWindowing enumerates the same `ceil(size/slide)` windows
        // back from the last start and filters them by `start <= t < end`).
        let first = event_time_ms
            .saturating_sub(size)
            .div_euclid(slide)
            .saturating_mul(slide)
            .saturating_add(slide);
        let mut next = Some(first);
        std::iter::from_fn(move || {
            let s = next?;
            if s > event_time_ms {
                return None;
            }
            next = s.checked_add(slide);
            Some(s)
        })
    }

    /// The window size, ms.
    pub fn size_ms(&self) -> i64 {
        self.size_ms
    }

    /// The slide, ms.
    pub fn slide_ms(&self) -> i64 {
        self.slide_ms
    }

    /// The end (exclusive) of the window starting at `start`.
    pub fn end(&self, start: i64) -> i64 {
        start.saturating_add(self.size_ms)
    }

    /// Whether the window starting at `start` is final under `watermark`: the watermark
    /// reached its end, so no record can still change it.
    pub fn is_final(&self, start: i64, watermark: Option<i64>) -> bool {
        watermark.is_some_and(|w| w >= self.end(start))
    }
}

/// The watermark's durable state, checkpointed with each batch's offsets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WatermarkState {
    /// The max event time seen in the batches applied so far; `None` before any record.
    pub max_event_ms: Option<i64>,
    /// Late records so far, over every batch applied.
    pub late_total: u64,
}

/// The watermark: max event time seen minus the allowed lateness, advanced at the end of
/// each batch.
#[derive(Debug, Clone)]
pub struct Watermark {
    delay_ms: i64,
    state: WatermarkState,
    /// The max event time seen in the batch under way; in force after `end_batch`.
    pending_max: Option<i64>,
}

impl Watermark {
    /// A watermark allowing `allowed_lateness`, resuming from `restored` (the state a
    /// sink's checkpoint held; the default state before any batch).
    pub fn new(allowed_lateness: Duration, restored: WatermarkState) -> Watermark {
        Watermark {
            delay_ms: i64::try_from(allowed_lateness.as_millis()).unwrap_or(i64::MAX),
            state: restored,
            pending_max: restored.max_event_ms,
        }
    }

    /// The watermark in force for the batch under way: `max_event_ms - delay`, `None`
    /// before any event time was seen (Spark's watermark is then 0: nothing is late).
    pub fn current(&self) -> Option<i64> {
        self.state
            .max_event_ms
            .map(|m| m.saturating_sub(self.delay_ms))
    }

    /// Whether a record at `event_time_ms` is late for an unwindowed event-time job: at or
    /// below the watermark in force for this batch (Spark's late-row predicate on a plain
    /// event-time column is `eventTime <= watermark`). Windowed jobs drop per window
    /// instead, see [`Watermark::is_window_late`].
    pub fn is_late(&self, event_time_ms: i64) -> bool {
        self.current().is_some_and(|w| event_time_ms <= w)
    }

    /// Whether a window ending at `end_ms` (exclusive) no longer takes records: Spark's
    /// predicate on a window column is `window.end <= watermark`, applied to each (record,
    /// window) pair, so a record below the watermark still counts in a window that is not
    /// final yet, and a sliding record can count in some of its windows and not others.
    pub fn is_window_late(&self, end_ms: i64) -> bool {
        self.current().is_some_and(|w| end_ms <= w)
    }

    /// Notes an event time; it moves the watermark only at [`Watermark::end_batch`].
    pub fn observe(&mut self, event_time_ms: i64) {
        self.pending_max = Some(
            self.pending_max
                .map_or(event_time_ms, |m| m.max(event_time_ms)),
        );
    }

    /// Ends the batch: the max event time seen takes effect, `late_in_batch` is added to
    /// the total. Returns the state to checkpoint with this batch.
    pub fn end_batch(&mut self, late_in_batch: u64) -> WatermarkState {
        self.state.max_event_ms = self.pending_max;
        self.state.late_total = self.state.late_total.saturating_add(late_in_batch);
        self.state
    }

    /// The state in force (as of the last `end_batch`, or as restored).
    pub fn state(&self) -> WatermarkState {
        self.state
    }

    /// The allowed lateness, ms.
    pub fn delay_ms(&self) -> i64 {
        self.delay_ms
    }
}

/// Where the event time comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventTime {
    /// The Kafka record's timestamp (create time, or log-append time on such topics).
    RecordTimestamp,
    /// A field of the record's value, parsed as a JSON object: a number of ms since the
    /// epoch, or an RFC 3339 string. A dotted name (`a.b`) reaches into nested objects.
    JsonField(String),
}

impl EventTime {
    /// Parses `timestamp` or `json:FIELD`.
    pub fn parse(s: &str) -> Result<EventTime> {
        match s {
            "timestamp" => Ok(EventTime::RecordTimestamp),
            _ => match s.strip_prefix("json:") {
                Some(f) if !f.is_empty() => Ok(EventTime::JsonField(f.to_owned())),
                _ => Err(Error::Config(format!(
                    "event time {s:?}: expected timestamp or json:FIELD"
                ))),
            },
        }
    }

    /// The record's event time in ms since the epoch; `None` when it has none (no value,
    /// not JSON, no such field, not a number or RFC 3339 time). Spark drops such rows
    /// from a windowed aggregation: a null time falls in no window.
    pub fn of(&self, record: &FetchedRecord) -> Option<i64> {
        match self {
            EventTime::RecordTimestamp => Some(record.timestamp),
            EventTime::JsonField(field) => json_time(record.value.as_deref()?, field),
        }
    }
}

fn json_time(value: &[u8], field: &str) -> Option<i64> {
    let doc: serde_json::Value = serde_json::from_slice(value).ok()?;
    let mut v = &doc;
    for part in field.split('.') {
        v = v.get(part)?;
    }
    match v {
        serde_json::Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && f.abs() < 9.0e18)
                .map(|f| f.floor() as i64)
        }),
        serde_json::Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp_millis()),
        _ => None,
    }
}

/// Parses a duration the way Spark's interval strings read: a whole number and a unit,
/// `500ms`, `10s`, `1m`, `2h`, `1d`, with or without a space, units also spelled out
/// (`10 seconds`, `1 minute`).
pub fn parse_duration(s: &str) -> Result<Duration> {
    let bad = || {
        Error::Config(format!(
            "duration {s:?}: expected a number and a unit (ms, s, m, h, d), e.g. 10s or 1m"
        ))
    };
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let ms_per: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "ms" | "millisecond" | "milliseconds" => 1,
        "s" | "sec" | "second" | "seconds" => 1_000,
        "m" | "min" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        _ => return Err(bad()),
    };
    n.checked_mul(ms_per)
        .map(Duration::from_millis)
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn starts(w: &Windows, t: i64) -> Vec<i64> {
        w.starts(t).collect()
    }

    #[test]
    fn tumbling_windows_align_to_the_epoch() {
        let w = Windows::tumbling(Duration::from_secs(60)).unwrap();
        assert_eq!(starts(&w, 0), vec![0]);
        assert_eq!(starts(&w, 59_999), vec![0]);
        assert_eq!(starts(&w, 60_000), vec![60_000]);
        assert_eq!(starts(&w, 125_000), vec![120_000]);
        assert_eq!(starts(&w, -1), vec![-60_000], "before the epoch too");
        assert_eq!(w.end(60_000), 120_000);
    }

    #[test]
    fn sliding_windows_hold_each_time_size_over_slide_times() {
        let w = Windows::new(Duration::from_secs(60), Duration::from_secs(10)).unwrap();
        assert_eq!(
            starts(&w, 65_000),
            vec![10_000, 20_000, 30_000, 40_000, 50_000, 60_000]
        );
        assert_eq!(starts(&w, 60_000).len(), 6);
        assert_eq!(*starts(&w, 60_000).first().unwrap(), 10_000);
        // Slide not dividing the size: still every window with start <= t < end.
        let w = Windows::new(Duration::from_secs(25), Duration::from_secs(10)).unwrap();
        assert_eq!(starts(&w, 30_000), vec![10_000, 20_000, 30_000]);
        assert_eq!(starts(&w, 34_999), vec![10_000, 20_000, 30_000]);
        assert_eq!(starts(&w, 35_000), vec![20_000, 30_000]);
        for t in [-7_777, 0, 1, 9_999, 123_456] {
            for s in w.starts(t) {
                assert!(s <= t && t < w.end(s) && s.rem_euclid(10_000) == 0);
            }
        }
    }

    #[test]
    fn windows_refuse_bad_sizes() {
        assert!(Windows::new(Duration::from_secs(10), Duration::from_secs(20)).is_err());
        assert!(Windows::new(Duration::ZERO, Duration::ZERO).is_err());
        assert!(Windows::new(Duration::from_micros(500), Duration::from_micros(500)).is_err());
    }

    #[test]
    fn watermark_advances_at_batch_end_only() {
        let mut wm = Watermark::new(Duration::from_secs(30), WatermarkState::default());
        assert_eq!(wm.current(), None);
        assert!(!wm.is_late(i64::MIN));
        wm.observe(100_000);
        wm.observe(90_000);
        assert_eq!(wm.current(), None, "not before the batch ends");
        let st = wm.end_batch(0);
        assert_eq!(
            st,
            WatermarkState {
                max_event_ms: Some(100_000),
                late_total: 0
            }
        );
        assert_eq!(wm.current(), Some(70_000));
        assert!(wm.is_late(69_999));
        assert!(wm.is_late(70_000), "Spark: eventTime <= watermark");
        assert!(!wm.is_late(70_001));
        assert!(wm.is_window_late(70_000));
        assert!(!wm.is_window_late(70_001));
        // Older times never move it back.
        wm.observe(10_000);
        assert_eq!(wm.end_batch(2).max_event_ms, Some(100_000));
        assert_eq!(wm.state().late_total, 2);
        // Resuming from a checkpoint.
        let wm2 = Watermark::new(Duration::from_secs(30), st);
        assert_eq!(wm2.current(), Some(70_000));
        let w = Windows::tumbling(Duration::from_secs(60)).unwrap();
        assert!(w.is_final(0, wm2.current()));
        assert!(!w.is_final(60_000, wm2.current()));
        assert!(!w.is_final(0, None));
    }

    fn rec(ts: i64, value: &str) -> FetchedRecord {
        FetchedRecord {
            offset: 0,
            timestamp: ts,
            timestamp_type: sluice_client::TimestampType::Creation,
            key: None,
            value: Some(bytes::Bytes::copy_from_slice(value.as_bytes())),
            headers: Vec::new(),
        }
    }

    #[test]
    fn event_time_from_timestamp_or_json() {
        assert_eq!(
            EventTime::parse("timestamp").unwrap(),
            EventTime::RecordTimestamp
        );
        let j = EventTime::parse("json:ts").unwrap();
        assert_eq!(j, EventTime::JsonField("ts".into()));
        assert!(EventTime::parse("json:").is_err());
        assert!(EventTime::parse("wallclock").is_err());
        assert_eq!(EventTime::RecordTimestamp.of(&rec(42, "x")), Some(42));
        assert_eq!(
            j.of(&rec(1, r#"{"ts": 1700000000123}"#)),
            Some(1_700_000_000_123)
        );
        assert_eq!(
            j.of(&rec(1, r#"{"ts": "1970-01-01T00:01:00.5Z"}"#)),
            Some(60_500)
        );
        assert_eq!(
            j.of(&rec(1, r#"{"ts": "1970-01-01T01:00:00+01:00"}"#)),
            Some(0)
        );
        assert_eq!(j.of(&rec(1, r#"{"other": 5}"#)), None);
        assert_eq!(j.of(&rec(1, "not json")), None);
        assert_eq!(j.of(&rec(1, r#"{"ts": true}"#)), None);
        let nested = EventTime::JsonField("e.t".into());
        assert_eq!(nested.of(&rec(1, r#"{"e": {"t": 7}}"#)), Some(7));
    }

    #[test]
    fn durations_parse_like_spark_intervals() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(
            parse_duration("2 hours").unwrap(),
            Duration::from_secs(7200)
        );
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
        assert_eq!(
            parse_duration("10 seconds").unwrap(),
            Duration::from_secs(10)
        );
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
