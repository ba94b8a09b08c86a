//! Prometheus' text exposition format, version 0.0.4: `# HELP` and `# TYPE` lines, then the
//! family's samples, with label values escaped. Families are written whole, one after the
//! other, as the format requires; nothing here knows what the metrics mean.

use std::fmt::Write as _;

use super::histogram::Snapshot;

/// A metric family's type, as written on its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (the name ends in `_total`).
    Counter,
    /// Goes up and down.
    Gauge,
    /// `_bucket{le=...}` (cumulative), `_sum` and `_count`.
    Histogram,
    /// `{quantile=...}`, `_sum` and `_count`.
    Summary,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::Summary => "summary",
        }
    }
}

/// Labels of one sample: (name, value) pairs, written in order.
pub type Labels<'a> = [(&'a str, &'a str)];

/// A page of metric families being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
    /// The name of the family being written, with `_total` for counters.
    family: String,
}

impl Exposition {
    /// An empty page.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a family. A counter's name gets `_total` if it lacks it: the 0.0.4 format
    /// names counter samples so, and Kafka's JMX exporter rules write `..._total`.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        self.family.clear();
        self.family.push_str(name);
        if kind == Kind::Counter && !name.ends_with("_total") {
            self.family.push_str("_total");
        }
        let _ = writeln!(self.out, "# HELP {} {}", self.family, escape_help(help));
        let _ = writeln!(self.out, "# TYPE {} {}", self.family, kind.as_str());
    }

    /// One sample of the current counter or gauge family.
    pub fn sample(&mut self, labels: &Labels<'_>, value: f64) {
        let name = std::mem::take(&mut self.family);
        self.line(&name, "", labels, None, value);
        self.family = name;
    }

    /// One labelled histogram of the current histogram family, in units of `us_per_unit`
    /// µs (1e6 for seconds, 1e3 for milliseconds; dividing keeps `0.0001` exact where
    /// multiplying by 1e-6 would not): cumulative `_bucket` lines, `+Inf`, `_sum` and
    /// `_count`.
    pub fn histogram(&mut self, labels: &Labels<'_>, s: &Snapshot, us_per_unit: f64) {
        let name = std::mem::take(&mut self.family);
        for (upper, cum) in s.cumulative() {
            let le = fmt_value(upper as f64 / us_per_unit);
            self.line(&name, "_bucket", labels, Some(("le", &le)), cum as f64);
        }
        let count = s.count() as f64;
        self.line(&name, "_bucket", labels, Some(("le", "+Inf")), count);
        self.line(&name, "_sum", labels, None, s.sum_us as f64 / us_per_unit);
        self.line(&name, "_count", labels, None, count);
        self.family = name;
    }

    /// One labelled summary of the current summary family, from a histogram: the given
    /// quantiles (label text, q) estimated from its buckets, `_sum` and `_count`, in units
    /// of `us_per_unit` µs.
    pub fn summary(
        &mut self,
        labels: &Labels<'_>,
        s: &Snapshot,
        quantiles: &[(&str, f64)],
        us_per_unit: f64,
    ) {
        let name = std::mem::take(&mut self.family);
        for (text, q) in quantiles {
            // Whole microseconds: finer digits would be noise from the interpolation.
            let v = s.quantile_us(*q).round() / us_per_unit;
            self.line(&name, "", labels, Some(("quantile", text)), v);
        }
        self.line(&name, "_sum", labels, None, s.sum_us as f64 / us_per_unit);
        self.line(&name, "_count", labels, None, s.count() as f64);
        self.family = name;
    }

    /// The page.
    pub fn finish(self) -> String {
        self.out
    }

    fn line(
        &mut self,
        name: &str,
        suffix: &str,
        labels: &Labels<'_>,
        extra: Option<(&str, &str)>,
        value: f64,
    ) {
        self.out.push_str(name);
        self.out.push_str(suffix);
        let mut all = labels.iter().copied().chain(extra).peekable();
        if all.peek().is_some() {
            self.out.push('{');
            for (i, (k, v)) in all.enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape_label_into(&mut self.out, v);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        self.out.push_str(&fmt_value(value));
        self.out.push('\n');
    }
}

/// A sample value: integers without a fraction, `NaN`, `+Inf` and `-Inf` as the format
/// spells them.
fn fmt_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Label values escape backslash, double quote and line feed.
fn escape_label_into(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Help text escapes backslash and line feed (not quotes).
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::super::histogram::Histogram;
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut e = Exposition::new();
        e.family("x", Kind::Gauge, "a \\ help\nline");
        e.sample(&[("topic", "a\"b\\c\nd")], 1.0);
        let page = e.finish();
        assert_eq!(
            page,
            "# HELP x a \\\\ help\\nline\n# TYPE x gauge\nx{topic=\"a\\\"b\\\\c\\nd\"} 1\n"
        );
    }

    #[test]
    fn counters_are_named_with_total_once() {
        let mut e = Exposition::new();
        e.family(
            "kafka_server_brokertopicmetrics_messagesin",
            Kind::Counter,
            "h",
        );
        e.sample(&[], 3.0);
        e.family("requests_total", Kind::Counter, "h");
        e.sample(&[("a", "b")], 2.5);
        let page = e.finish();
        assert!(page.contains("# TYPE kafka_server_brokertopicmetrics_messagesin_total counter\n"));
        assert!(page.contains("\nkafka_server_brokertopicmetrics_messagesin_total 3\n"));
        assert!(page.contains("\nrequests_total{a=\"b\"} 2.5\n"));
        assert!(!page.contains("_total_total"));
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf() {
        let h = Histogram::new();
        h.observe_us(60); // (50, 100]
        h.observe_us(70);
        h.observe_us(2_000); // (1000, 2500]
        h.observe_us(60_000_000); // +Inf
        let mut e = Exposition::new();
        e.family("lat_seconds", Kind::Histogram, "h");
        e.histogram(&[("request", "Produce")], &h.snapshot(), 1e6);
        let page = e.finish();
        let buckets: Vec<(String, u64)> = page
            .lines()
            .filter(|l| l.starts_with("lat_seconds_bucket"))
            .map(|l| {
                let le = l.split("le=\"").nth(1).unwrap().split('"').next().unwrap();
                (
                    le.to_string(),
                    l.rsplit(' ').next().unwrap().parse().unwrap(),
                )
            })
            .collect();
        assert_eq!(buckets.first(), Some(&("0.00005".to_string(), 0)));
        assert_eq!(buckets.get(1), Some(&("0.0001".to_string(), 2)));
        assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{buckets:?}");
        assert_eq!(buckets.last(), Some(&("+Inf".to_string(), 4)));
        assert!(
            page.contains("lat_seconds_count{request=\"Produce\"} 4\n"),
            "{page}"
        );
        assert!(
            page.contains("lat_seconds_sum{request=\"Produce\"} 60.00213\n"),
            "{page}"
        );
    }

    #[test]
    fn summaries_write_quantile_labels_after_the_others() {
        let h = Histogram::new();
        h.observe_us(900);
        let mut e = Exposition::new();
        e.family("t", Kind::Summary, "h");
        e.summary(
            &[("request", "Fetch")],
            &h.snapshot(),
            &[("0.50", 0.5)],
            1e3,
        );
        let page = e.finish();
        assert!(
            page.contains("t{request=\"Fetch\",quantile=\"0.50\"} 0.75\n"),
            "{page}"
        );
        assert!(page.contains("t_count{request=\"Fetch\"} 1\n"), "{page}");
    }
}
