//! Per-request metrics, as Kafka's `kafka.network:type=RequestMetrics` MBeans: requests per
//! API key and version, the total time of each request, and the error codes of Produce and
//! Fetch responses. Fixed tables indexed by API key, version and error code, so recording
//! is a few relaxed atomic adds with no lookup and no lock.

use std::sync::atomic::{AtomicU64, Ordering};

use kafka_protocol::messages::{ApiKey, ResponseKind};

use super::histogram::Histogram;

/// API keys 0..MAX_KEY get a slot (Kafka 4.3's highest is 92).
const MAX_KEY: usize = 128;
/// Versions 0..MAX_VERSION get a counter (Kafka 4.3's highest for any API is 18).
const MAX_VERSION: usize = 32;
/// The extra slot Kafka keeps for consumer fetches (`request="FetchConsumer"`), timed
/// beside `Fetch` itself; a single broker has no follower fetches.
const FETCH_CONSUMER: usize = MAX_KEY;
/// Error codes -1..ERROR_CODES-1 are counted (Kafka 4.3's highest is 133).
const ERROR_CODES: usize = 192;

#[derive(Debug)]
struct Slot {
    versions: [AtomicU64; MAX_VERSION],
    time: Histogram,
}

impl Slot {
    fn new() -> Self {
        Slot {
            versions: [const { AtomicU64::new(0) }; MAX_VERSION],
            time: Histogram::new(),
        }
    }
}

/// Error codes of one API's responses, per partition (and the top-level one), as Kafka
/// counts `ErrorsPerSec` from a response's `errorCounts`, `NONE` included.
#[derive(Debug)]
struct Errors {
    by_code: Box<[AtomicU64]>,
}

impl Errors {
    fn new() -> Self {
        Errors {
            by_code: (0..ERROR_CODES).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn add(&self, code: i16, n: u64) {
        if n == 0 {
            return;
        }
        // An unknown code (none exists below -1 or this high) is counted as -1,
        // UNKNOWN_SERVER_ERROR.
        let i = usize::try_from(i32::from(code) + 1)
            .ok()
            .filter(|&i| i < ERROR_CODES)
            .unwrap_or(0);
        if let Some(c) = self.by_code.get(i) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    fn counts(&self) -> impl Iterator<Item = (i16, u64)> + '_ {
        self.by_code.iter().enumerate().filter_map(|(i, c)| {
            let n = c.load(Ordering::Relaxed);
            let code = i16::try_from(i).ok()? - 1;
            (n > 0).then_some((code, n))
        })
    }
}

/// The request table.
#[derive(Debug)]
pub struct RequestMetrics {
    slots: Box<[Slot]>,
    produce_errors: Errors,
    fetch_errors: Errors,
}

impl Default for RequestMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// One row of [`RequestMetrics::requests`]: (Kafka's request name, version, count).
pub type RequestCount = (String, i16, u64);

impl RequestMetrics {
    /// Empty tables.
    pub fn new() -> Self {
        RequestMetrics {
            slots: (0..=MAX_KEY).map(|_| Slot::new()).collect(),
            produce_errors: Errors::new(),
            fetch_errors: Errors::new(),
        }
    }

    /// Counts one request of `key` at `version` that took `elapsed_us` from the frame's
    /// arrival to its response being written.
    pub fn record(&self, key: i16, version: i16, elapsed_us: u64) {
        let Some(slot) = usize::try_from(key).ok().and_then(|k| self.slots.get(k)) else {
            return;
        };
        if let Some(c) = usize::try_from(version)
            .ok()
            .and_then(|v| slot.versions.get(v))
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
        slot.time.observe_us(elapsed_us);
        if key == ApiKey::Fetch as i16 {
            if let Some(s) = self.slots.get(FETCH_CONSUMER) {
                s.time.observe_us(elapsed_us);
            }
        }
    }

    /// Counts the error codes of a Produce or Fetch response (other APIs are not counted).
    /// Successes are summed locally and added once, so a fetch of many partitions costs
    /// one atomic add plus one per failed partition.
    pub fn record_errors(&self, resp: &ResponseKind) {
        let mut none = 0u64;
        match resp {
            ResponseKind::Produce(r) => {
                for p in r.responses.iter().flat_map(|t| &t.partition_responses) {
                    if p.error_code == 0 {
                        none += 1;
                    } else {
                        self.produce_errors.add(p.error_code, 1);
                    }
                }
                self.produce_errors.add(0, none);
            }
            ResponseKind::Fetch(r) => {
                let codes = std::iter::once(r.error_code).chain(
                    r.responses
                        .iter()
                        .flat_map(|t| &t.partitions)
                        .map(|p| p.error_code),
                );
                for code in codes {
                    if code == 0 {
                        none += 1;
                    } else {
                        self.fetch_errors.add(code, 1);
                    }
                }
                self.fetch_errors.add(0, none);
            }
            _ => {}
        }
    }

    /// Requests per (request name, version), for every version seen.
    pub fn requests(&self) -> Vec<RequestCount> {
        let mut out = Vec::new();
        for (key, slot) in self.slots.iter().enumerate().take(MAX_KEY) {
            let Some(name) = request_name(key) else {
                continue;
            };
            for (v, c) in slot.versions.iter().enumerate() {
                let n = c.load(Ordering::Relaxed);
                if n > 0 {
                    out.push((name.clone(), i16::try_from(v).unwrap_or(i16::MAX), n));
                }
            }
        }
        out
    }

    /// Total-time histograms per request name, for every request seen (`FetchConsumer`
    /// after the API keys).
    pub fn times(&self) -> Vec<(String, super::histogram::Snapshot)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(key, slot)| {
                let s = slot.time.snapshot();
                if s.count() == 0 {
                    return None;
                }
                let name = if key == FETCH_CONSUMER {
                    "FetchConsumer".to_string()
                } else {
                    request_name(key)?
                };
                Some((name, s))
            })
            .collect()
    }

    /// (request name, Kafka error name, count) for Produce and Fetch.
    pub fn errors(&self) -> Vec<(&'static str, String, u64)> {
        let produce = self.produce_errors.counts().map(|(c, n)| ("Produce", c, n));
        let fetch = self.fetch_errors.counts().map(|(c, n)| ("Fetch", c, n));
        produce
            .chain(fetch)
            .map(|(r, c, n)| (r, error_name(c), n))
            .collect()
    }
}

/// Kafka's name of an API key (`ApiKeys.name`: `Produce`, `ListOffsets`, ...).
fn request_name(key: usize) -> Option<String> {
    let key = i16::try_from(key).ok()?;
    ApiKey::try_from(key).ok().map(|k| format!("{k:?}"))
}

/// Kafka's name of an error code (`Errors.name()`: `NONE`, `NOT_LEADER_OR_FOLLOWER`, ...),
/// from the codec crate's variant name.
pub fn error_name(code: i16) -> String {
    let Some(e) = kafka_protocol::error::ResponseError::try_from_code(code) else {
        return "NONE".into();
    };
    let camel = format!("{e:?}");
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::produce_response::{
        PartitionProduceResponse, TopicProduceResponse,
    };
    use kafka_protocol::messages::ProduceResponse;

    #[test]
    fn error_names_are_kafkas() {
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(6), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
    }

    #[test]
    fn requests_and_errors_are_counted_by_name() {
        let m = RequestMetrics::new();
        m.record(0, 9, 100);
        m.record(0, 9, 100);
        m.record(1, 16, 5);
        m.record(999, 0, 1); // not an API key: ignored
        assert_eq!(
            m.requests(),
            [("Produce".into(), 9, 2), ("Fetch".into(), 16, 1)]
        );
        let names: Vec<_> = m.times().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["Produce", "Fetch", "FetchConsumer"]);
        let resp = ProduceResponse::default().with_responses(vec![TopicProduceResponse::default()
            .with_partition_responses(vec![
                PartitionProduceResponse::default(),
                PartitionProduceResponse::default().with_error_code(3),
            ])]);
        m.record_errors(&ResponseKind::Produce(resp));
        assert_eq!(
            m.errors(),
            [
                ("Produce", "NONE".to_string(), 1),
                ("Produce", "UNKNOWN_TOPIC_OR_PARTITION".to_string(), 1)
            ]
        );
    }
}
