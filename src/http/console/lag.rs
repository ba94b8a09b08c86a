//! The lag sampler behind the console's lag chart: every [`SAMPLE_INTERVAL`] it computes
//! each group's total lag (log end offset minus committed offset, summed over the group's
//! partitions; for share groups, minus the start offset) straight from the coordinators and
//! the logs, and keeps the last [`WINDOW`] of samples per group in a bounded ring. Groups
//! that disappear lose their ring; at most [`MAX_GROUPS`] groups are tracked.
//!
//! It reads for every group regardless of ACLs; the API that serves a group's samples
//! checks DESCRIBE on the group first.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::api::Broker;

/// How often each group's lag is sampled.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);
/// How much history each group keeps.
pub const WINDOW: Duration = Duration::from_secs(600);
/// Most groups tracked at once.
pub const MAX_GROUPS: usize = 10_000;
/// Samples per ring.
const RING: usize = (WINDOW.as_secs() / SAMPLE_INTERVAL.as_secs()) as usize;

/// Each group's recent (time ms, total lag) samples.
#[derive(Debug, Default)]
pub struct LagHistory {
    rings: Mutex<HashMap<String, VecDeque<(i64, i64)>>>,
}

impl LagHistory {
    /// The samples of `group`, oldest first.
    pub fn samples(&self, group: &str) -> Vec<(i64, i64)> {
        let rings = self.rings.lock().unwrap_or_else(|p| p.into_inner());
        rings
            .get(group)
            .map(|r| r.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Record one round of samples taken at `now`; groups not in `lags` are forgotten.
    pub fn record(&self, now: i64, lags: Vec<(String, i64)>) {
        let mut rings = self.rings.lock().unwrap_or_else(|p| p.into_inner());
        let live: std::collections::HashSet<&str> = lags.iter().map(|(g, _)| g.as_str()).collect();
        rings.retain(|g, _| live.contains(g.as_str()));
        for (g, lag) in lags.iter().take(MAX_GROUPS) {
            let ring = rings.entry(g.clone()).or_default();
            if ring.len() >= RING {
                ring.pop_front();
            }
            ring.push_back((now, *lag));
        }
    }
}

/// Every group's total lag now.
pub fn sample(broker: &Broker) -> Vec<(String, i64)> {
    let hw = |topic: &str, p: i32| -> Option<i64> {
        let t = broker.logs.topic(topic)?;
        Some(t.partitions.get(usize::try_from(p).ok()?)?.high_watermark())
    };
    let mut ids: Vec<String> = broker.groups.list().into_iter().map(|g| g.0).collect();
    ids.extend(
        broker
            .groups
            .list_consumer_groups()
            .into_iter()
            .map(|g| g.0),
    );
    ids.sort();
    ids.dedup();
    let mut out: Vec<(String, i64)> = ids
        .into_iter()
        .map(|id| {
            let lag = broker
                .groups
                .offsets
                .group(&id)
                .into_iter()
                .filter_map(|((t, p), c)| Some((hw(&t, p)? - c.offset).max(0)))
                .sum();
            (id, lag)
        })
        .collect();
    for (id, _) in broker.shares.list() {
        let lag = broker
            .shares
            .start_offsets(&id)
            .into_iter()
            .filter_map(|(topic_id, p, start)| {
                let t = broker.logs.topic_by_id(&topic_id)?;
                let end = t.partitions.get(usize::try_from(p).ok()?)?.high_watermark();
                Some((end - start).max(0))
            })
            .sum();
        out.push((id, lag));
    }
    out
}

/// Sample every [`SAMPLE_INTERVAL`] until the broker shuts down.
pub async fn run(broker: Arc<Broker>, history: Arc<LagHistory>) {
    let mut tick = tokio::time::interval(SAMPLE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = broker.shutdown.cancelled() => return,
        }
        let b = Arc::clone(&broker);
        let Ok(lags) = tokio::task::spawn_blocking(move || sample(&b)).await else {
            continue;
        };
        history.record(crate::log::partition::now_ms(), lags);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_are_bounded_and_forget_vanished_groups() {
        let h = LagHistory::default();
        for i in 0..(RING as i64 + 10) {
            h.record(i, vec![("a".into(), i), ("b".into(), 1)]);
        }
        let a = h.samples("a");
        assert_eq!(a.len(), RING);
        assert_eq!(a.last(), Some(&(RING as i64 + 9, RING as i64 + 9)));
        h.record(1000, vec![("a".into(), 0)]);
        assert!(h.samples("b").is_empty());
        assert_eq!(h.samples("a").len(), RING);
    }
}
