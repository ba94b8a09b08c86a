//! Prometheus pages judged by Prometheus's own text parser: [`scrape`] runs
//! `compat-tests/python/scrape_metrics.py` (prometheus_client's `text_string_to_metric_families`,
//! from the venv `compat-tests/scripts/install-python.sh` builds), which fetches the page and
//! fails on anything it cannot parse. Used by the broker's, sluice-flume's and sluice-spark's
//! metrics tests, so all three are held to the same parser.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::broker::workspace_root;

/// The venv's Python with `module` importable; a failure naming the install script otherwise
/// (a missing judge is a failed test, never a skipped one).
pub fn venv_python(module: &str) -> PathBuf {
    let py = workspace_root().join("compat-tests/.cache/venv/bin/python");
    let ok = Command::new(&py)
        .args(["-c", &format!("import {module}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} with {module} is missing: run `bash compat-tests/scripts/install-python.sh`",
        py.display()
    );
    py
}

/// One sample of a scraped page.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The sample's name (`x_total`, `x_bucket`, `x_count`, ...).
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value (`NaN` and infinities included).
    pub value: f64,
}

/// A page as Prometheus's parser read it.
#[derive(Debug, Clone)]
pub struct Scrape {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type` header.
    pub content_type: String,
    /// Family name (without `_total`) → type (`counter`, `gauge`, `summary`, `histogram`, ...).
    pub families: BTreeMap<String, String>,
    /// Every sample, in page order.
    pub samples: Vec<Sample>,
}

impl Scrape {
    /// Values of `name` whose labels include every pair in `labels`.
    pub fn values(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        self.samples
            .iter()
            .filter(|s| s.name == name && has_labels(s, labels))
            .map(|s| s.value)
            .collect()
    }

    /// The one value of `name` with exactly `labels`; fails when there is none or several.
    pub fn one(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<f64> = self
            .samples
            .iter()
            .filter(|s| s.name == name && s.labels.len() == labels.len() && has_labels(s, labels))
            .map(|s| s.value)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected one sample {name}{labels:?}, found {found:?}"
        );
        found[0]
    }

    /// The type of the family `name` belongs to, by the parser's family names.
    pub fn family_type(&self, family: &str) -> Option<&str> {
        self.families.get(family).map(String::as_str)
    }
}

fn has_labels(s: &Sample, labels: &[(&str, &str)]) -> bool {
    labels
        .iter()
        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
}

/// Fetches `url` and parses it with prometheus_client; fails the test when the page does
/// not parse or cannot be fetched.
pub fn scrape(url: &str) -> Scrape {
    let script = workspace_root().join("compat-tests/python/scrape_metrics.py");
    let out = Command::new(venv_python("prometheus_client"))
        .arg(&script)
        .arg(url)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "prometheus_client could not scrape or parse {url}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("the scraper prints JSON");
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let samples = v["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .map(|s| Sample {
            name: text(&s[0]),
            labels: s[1]
                .as_object()
                .expect("labels")
                .iter()
                .map(|(k, v)| (k.clone(), text(v)))
                .collect(),
            // The script sends NaN and the infinities as strings, which JSON lacks.
            value: s[2]
                .as_f64()
                .or_else(|| s[2].as_str().and_then(|t| t.parse().ok()))
                .unwrap_or(f64::NAN),
        })
        .collect();
    let families = v["families"]
        .as_object()
        .expect("families")
        .iter()
        .map(|(k, t)| (k.clone(), text(t)))
        .collect();
    Scrape {
        status: v["status"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or(0),
        content_type: text(&v["content_type"]),
        families,
        samples,
    }
}
