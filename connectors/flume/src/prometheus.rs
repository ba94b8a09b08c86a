//! The component counters in Prometheus's text exposition format (version 0.0.4), served by
//! the HTTP monitoring at `/metrics/prometheus` (see `monitoring`; Flume's own JSON stays
//! at `/metrics`). Rendering only: no HTTP here.
//!
//! Naming is mechanical, so a Flume counter is easy to find: `flume_<type>_<counter in
//! snake_case>{component="<name>"}`, e.g. Flume's `SOURCE.r1` `EventAcceptedCount` is
//! `flume_source_event_accepted_count_total{component="r1"}`. Counters that only grow get
//! Prometheus's `_total` suffix and `TYPE counter`; levels (`ChannelSize`,
//! `ChannelCapacity`, `ChannelFillPercentage`, `OpenConnectionCount`, `StartTime`,
//! `StopTime`) are gauges without it.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::counters::{Counters, Kind};

/// The `Content-Type` of the text format, as Prometheus's own client libraries send it.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Flume counters that are levels rather than running totals: Flume sets them
/// (`setChannelSize`, `setOpenConnectionCount`) instead of incrementing them.
const GAUGES: &[&str] = &["ChannelCapacity", "ChannelSize", "OpenConnectionCount"];

/// One metric family: its Flume name, whether it is a gauge, and each component's value.
struct Family<'a> {
    flume_name: &'static str,
    gauge: bool,
    help: &'static str,
    samples: Vec<(&'a str, String)>,
}

/// Every component's counters as Prometheus text: one family per (type, counter), with
/// `# HELP` and `# TYPE` lines and one sample per component of that type.
pub fn prometheus_text(counters: &[Arc<Counters>]) -> String {
    let mut out = String::new();
    for kind in [Kind::Source, Kind::Channel, Kind::Sink] {
        let of_kind: Vec<&Arc<Counters>> = counters.iter().filter(|c| c.kind() == kind).collect();
        if of_kind.is_empty() {
            continue;
        }
        let mut families: Vec<Family<'_>> = kind
            .names()
            .iter()
            .map(|&n| Family {
                flume_name: n,
                gauge: GAUGES.contains(&n),
                help: "",
                samples: of_kind
                    .iter()
                    .map(|c| (c.name(), c.get(n).to_string()))
                    .collect(),
            })
            .collect();
        if kind == Kind::Channel {
            families.push(Family {
                flume_name: "ChannelFillPercentage",
                gauge: true,
                help: " (ChannelSize as a percentage of ChannelCapacity)",
                samples: of_kind
                    .iter()
                    .map(|c| (c.name(), float(c.fill_percentage())))
                    .collect(),
            });
        }
        families.push(Family {
            flume_name: "StartTime",
            gauge: true,
            help: " (ms since the epoch, 0 until started)",
            samples: of_kind
                .iter()
                .map(|c| (c.name(), c.start_ms().to_string()))
                .collect(),
        });
        families.push(Family {
            flume_name: "StopTime",
            gauge: true,
            help: " (ms since the epoch, 0 until stopped)",
            samples: of_kind
                .iter()
                .map(|c| (c.name(), c.stop_ms().to_string()))
                .collect(),
        });
        for f in families {
            write_family(&mut out, kind, &f);
        }
    }
    out
}

fn write_family(out: &mut String, kind: Kind, f: &Family<'_>) {
    let suffix = if f.gauge { "" } else { "_total" };
    let name = format!(
        "flume_{}_{}{suffix}",
        kind.label().to_ascii_lowercase(),
        snake_case(f.flume_name)
    );
    let ty = if f.gauge { "gauge" } else { "counter" };
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "# HELP {name} Flume's {} {ty} {}{}.",
        kind.label(),
        f.flume_name,
        f.help
    );
    let _ = writeln!(out, "# TYPE {name} {ty}");
    for (component, value) in &f.samples {
        let _ = writeln!(
            out,
            "{name}{{component=\"{}\"}} {value}",
            escape_label(component)
        );
    }
}

/// `EventPutSuccessCount` → `event_put_success_count`.
fn snake_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    let mut prev_lower = false;
    for ch in s.chars() {
        if ch.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(ch.to_ascii_lowercase());
            prev_lower = false;
        } else {
            out.push(ch);
            prev_lower = ch.is_ascii_lowercase() || ch.is_ascii_digit();
        }
    }
    out
}

/// A label value as the text format requires: `\`, `"` and newline escaped.
fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for ch in v.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A float sample: Rust's shortest round-trip form, which the text format accepts.
fn float(v: f64) -> String {
    if v.is_finite() {
        format!("{v:?}")
    } else {
        "NaN".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_flume_counters() {
        assert_eq!(
            snake_case("EventPutSuccessCount"),
            "event_put_success_count"
        );
        assert_eq!(
            snake_case("ChannelFillPercentage"),
            "channel_fill_percentage"
        );
        assert_eq!(snake_case("StartTime"), "start_time");
    }

    #[test]
    fn families_group_components_with_help_and_type() {
        let s1 = Arc::new(Counters::new(Kind::Source, "r1"));
        s1.add("EventAcceptedCount", 3);
        let s2 = Arc::new(Counters::new(Kind::Source, "r\"2"));
        let c = Arc::new(Counters::new(Kind::Channel, "c1"));
        c.set("ChannelCapacity", 200);
        c.set("ChannelSize", 50);
        let text = prometheus_text(&[s1, c, s2]);
        let fam = "flume_source_event_accepted_count_total";
        assert!(text.contains(&format!(
            "# HELP {fam} Flume's SOURCE counter EventAcceptedCount.\n\
             # TYPE {fam} counter\n\
             {fam}{{component=\"r1\"}} 3\n\
             {fam}{{component=\"r\\\"2\"}} 0\n"
        )));
        assert!(text.contains("# TYPE flume_channel_channel_size gauge\n"));
        assert!(text.contains("flume_channel_channel_fill_percentage{component=\"c1\"} 25.0\n"));
        assert!(text.contains("# TYPE flume_source_open_connection_count gauge\n"));
        assert!(!text.contains("flume_sink_"), "no sink, no sink families");
        // Every family's TYPE line appears once: samples of one name are never split.
        let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE")).collect();
        let mut unique = types.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(types.len(), unique.len());
    }
}
