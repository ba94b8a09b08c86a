//! Flume's component counters (the `SourceCounter`, `ChannelCounter` and `SinkCounter`
//! MBeans) and their JSON rendering, served over HTTP when
//! `-Dflume.monitoring.type=http -Dflume.monitoring.port=P` is given (see `monitoring`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// What kind of component the counters belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A source.
    Source,
    /// A channel.
    Channel,
    /// A sink.
    Sink,
}

impl Kind {
    /// Flume's type label (`SOURCE`, `CHANNEL`, `SINK`).
    pub fn label(self) -> &'static str {
        match self {
            Kind::Source => "SOURCE",
            Kind::Channel => "CHANNEL",
            Kind::Sink => "SINK",
        }
    }

    /// The names of this kind's counters, Flume's, in name order.
    pub fn names(self) -> &'static [&'static str] {
        match self {
            Kind::Source => &[
                "AppendAcceptedCount",
                "AppendBatchAcceptedCount",
                "AppendBatchReceivedCount",
                "AppendReceivedCount",
                "ChannelWriteFail",
                "EventAcceptedCount",
                "EventReadFail",
                "EventReceivedCount",
                "GenericProcessingFail",
                "OpenConnectionCount",
            ],
            Kind::Channel => &[
                "ChannelCapacity",
                "ChannelSize",
                "EventPutAttemptCount",
                "EventPutSuccessCount",
                "EventTakeAttemptCount",
                "EventTakeSuccessCount",
            ],
            Kind::Sink => &[
                "BatchCompleteCount",
                "BatchEmptyCount",
                "BatchUnderflowCount",
                "ChannelReadFail",
                "ConnectionClosedCount",
                "ConnectionCreatedCount",
                "ConnectionFailedCount",
                "EventDrainAttemptCount",
                "EventDrainSuccessCount",
                "EventWriteFail",
            ],
        }
    }
}

/// The counters of one component. Names are Flume's; an unknown name is ignored (and
/// caught by a unit test), so a typo cannot panic at run time.
#[derive(Debug)]
pub struct Counters {
    kind: Kind,
    name: String,
    values: BTreeMap<&'static str, AtomicI64>,
    start_ms: AtomicI64,
    stop_ms: AtomicI64,
}

impl Counters {
    /// Zeroed counters for component `name`.
    pub fn new(kind: Kind, name: &str) -> Self {
        Counters {
            kind,
            name: name.to_string(),
            values: kind
                .names()
                .iter()
                .map(|n| (*n, AtomicI64::new(0)))
                .collect(),
            start_ms: AtomicI64::new(0),
            stop_ms: AtomicI64::new(0),
        }
    }

    /// Component kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Component name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Add `n` to counter `name`.
    pub fn add(&self, name: &str, n: i64) {
        if let Some(v) = self.values.get(name) {
            v.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Add one to counter `name`.
    pub fn inc(&self, name: &str) {
        self.add(name, 1);
    }

    /// Set counter `name` (gauges such as `ChannelSize`).
    pub fn set(&self, name: &str, n: i64) {
        if let Some(v) = self.values.get(name) {
            v.store(n, Ordering::Relaxed);
        }
    }

    /// Current value of counter `name` (0 if unknown).
    pub fn get(&self, name: &str) -> i64 {
        self.values
            .get(name)
            .map(|v| v.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    /// Record the start time.
    pub fn started(&self) {
        self.start_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// Record the stop time.
    pub fn stopped(&self) {
        self.stop_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// The start time in ms since the epoch (0 until started).
    pub fn start_ms(&self) -> i64 {
        self.start_ms.load(Ordering::Relaxed)
    }

    /// The stop time in ms since the epoch (0 until stopped).
    pub fn stop_ms(&self) -> i64 {
        self.stop_ms.load(Ordering::Relaxed)
    }

    /// `ChannelFillPercentage`: `ChannelSize` as a percentage of `ChannelCapacity` (0 when
    /// the capacity is unknown), as Flume's `ChannelCounter.getChannelFillPercentage`.
    pub fn fill_percentage(&self) -> f64 {
        let cap = self.get("ChannelCapacity");
        if cap > 0 {
            self.get("ChannelSize") as f64 * 100.0 / cap as f64
        } else {
            0.0
        }
    }

    /// `("SOURCE.r1", {"EventReceivedCount": "3", ..., "Type": "SOURCE"})` as Flume's
    /// JSON reporting shows it: every value a string.
    pub fn to_json(&self) -> (String, serde_json::Value) {
        let mut map = serde_json::Map::new();
        for (k, v) in &self.values {
            map.insert(
                (*k).to_string(),
                v.load(Ordering::Relaxed).to_string().into(),
            );
        }
        if self.kind == Kind::Channel {
            let pct = self.fill_percentage();
            map.insert("ChannelFillPercentage".into(), format!("{pct:?}").into());
        }
        map.insert(
            "StartTime".into(),
            self.start_ms.load(Ordering::Relaxed).to_string().into(),
        );
        map.insert(
            "StopTime".into(),
            self.stop_ms.load(Ordering::Relaxed).to_string().into(),
        );
        map.insert("Type".into(), self.kind.label().into());
        (
            format!("{}.{}", self.kind.label(), self.name),
            serde_json::Value::Object(map),
        )
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_like_flume() {
        let c = Counters::new(Kind::Channel, "c1");
        c.set("ChannelCapacity", 200);
        c.set("ChannelSize", 50);
        c.add("EventPutSuccessCount", 7);
        c.inc("NoSuchCounter");
        let (name, json) = c.to_json();
        assert_eq!(name, "CHANNEL.c1");
        assert_eq!(json["EventPutSuccessCount"], "7");
        assert_eq!(json["ChannelFillPercentage"], "25.0");
        assert_eq!(json["Type"], "CHANNEL");
        assert!(json.get("NoSuchCounter").is_none());
    }
}
