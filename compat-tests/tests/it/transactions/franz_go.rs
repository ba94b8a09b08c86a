//! franz-go's own `pkg/kgo` integration tests, compiled by `scripts/install-go.sh` as
//! `.cache/franz-go/kgo.test` and pointed at a broker the way franz-go's CI does:
//! `KGO_SEEDS` (bootstrap), `KGO_TEST_RF=1` (single broker), `KGO_TEST_RECORDS` (records per
//! ETL test; franz-go's default is 500,000). The tests need nothing else from the
//! environment; their working directory is the package's source, as under `go test`.
//!
//! In CI: `TestTxnEtl`, the suite's transactional test (a transactional producer writing
//! 10,000-record transactions, then chains of `GroupTransactSession` consumers, classic and
//! KIP-848, dynamic and static, reading `read_committed` with control records kept and
//! producing onward in their own transactions, aborting now and then, with checks for lost
//! or doubled records), and a few short tests around producing and consuming. Opt-in: the
//! whole suite against Kafka 4.3.1 and against Sluice, reporting the tests that fail only on
//! Sluice (FINDINGS.md records the last result).

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::Duration;

use super::{installed, Target};
use crate::harness::run_with_timeout;

/// The tests CI runs: the transactional ETL, the transaction-end bookkeeping test (no
/// broker), producing with the idempotent default, the paused-partition and topic-retrieval
/// consumer paths, and a group consumer reading from the start. `^…$` so `TestTxnEtl` does
/// not pull in other names that contain it.
const CI_TESTS: &[&str] = &[
    "TestTxnEtl",
    "TestAuditTxnRecheckRewindUnmarksAddedToTxn",
    "TestClient_Produce",
    "TestIssue325",
    "TestConsumeTopicRetrieval",
    "TestGroupSimple",
];

/// Records per ETL test in CI: two of TestTxnEtl's 10,000-record transactions, so the
/// producer goes through `EndAndBeginTransaction` once.
const CI_RECORDS: &str = "20000";

/// Records per ETL test in the whole-suite comparison (the same on both brokers).
const SUITE_RECORDS: &str = "50000";

/// Bound on one run of the CI selection.
const CI_TIMEOUT: Duration = Duration::from_secs(300);

/// Bound on one run of the whole suite (franz-go's CI gives `go test ./...` 5 minutes on a
/// fast machine with the default 500,000 records; this is two shared cores).
const SUITE_TIMEOUT: Duration = Duration::from_secs(1500);

/// How one test ended, from `go test -v` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Pass,
    Fail,
    Skip,
    /// Started (`=== RUN`) but no result line: the binary died or timed out first.
    NoResult,
}

/// Runs `kgo.test` against `addr` with `-test.run run`, `records` per ETL test.
fn kgo(addr: &str, run: &str, records: &str, timeout: Duration) -> Output {
    let bin = installed("franz-go/kgo.test", "install-go.sh");
    let src = installed("franz-go/src/pkg/kgo", "install-go.sh");
    let mut cmd = Command::new(bin);
    let go_timeout = format!("{}s", timeout.as_secs().saturating_sub(10));
    cmd.args(["-test.run", run, "-test.v", "-test.timeout", &go_timeout])
        .current_dir(&src)
        .env("KGO_SEEDS", addr)
        .env("KGO_TEST_RF", "1")
        .env("KGO_TEST_RECORDS", records);
    run_with_timeout(cmd, None, timeout)
}

/// Every test and subtest named in `go test -v` output, with how it ended.
fn outcomes(stdout: &str) -> BTreeMap<String, Outcome> {
    let mut out = BTreeMap::new();
    for line in stdout.lines().map(str::trim_start) {
        if let Some(name) = line.strip_prefix("=== RUN") {
            out.entry(name.trim().to_owned())
                .or_insert(Outcome::NoResult);
            continue;
        }
        let Some(rest) = line.strip_prefix("--- ") else {
            continue;
        };
        let (outcome, rest) = match rest.split_once(": ") {
            Some(("PASS", r)) => (Outcome::Pass, r),
            Some(("FAIL", r)) => (Outcome::Fail, r),
            Some(("SKIP", r)) => (Outcome::Skip, r),
            _ => continue,
        };
        if let Some(name) = rest.split_whitespace().next() {
            out.insert(name.to_owned(), outcome);
        }
    }
    out
}

/// The last `n` lines of `text`, for failure messages (kgo logs every request at info).
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs [`CI_TESTS`] against `target` and checks that each one passed (none skipped).
fn ci_selection(target: &Target) {
    let run = format!("^({})$", CI_TESTS.join("|"));
    let out = kgo(target.addr(), &run, CI_RECORDS, CI_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let got = outcomes(&stdout);
    // The per-test result lines, with durations, for whoever reads the log.
    for line in stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("--- "))
    {
        println!("{line}");
    }
    let not_passed: Vec<(&str, Option<Outcome>)> = CI_TESTS
        .iter()
        .map(|t| (*t, got.get(*t).copied()))
        .filter(|(_, o)| *o != Some(Outcome::Pass))
        .collect();
    assert!(
        out.status.success() && not_passed.is_empty(),
        "kgo.test {run} exited with {}; not passed: {not_passed:?}\n--- failing lines ---\n{}\n--- stdout tail ---\n{}\n--- stderr tail ---\n{}",
        out.status,
        stdout
            .lines()
            .filter(|l| l.contains("--- FAIL") || l.contains("_test.go:"))
            .take(60)
            .collect::<Vec<_>>()
            .join("\n"),
        tail(&stdout, 40),
        tail(&String::from_utf8_lossy(&out.stderr), 80),
    );
}

#[test]
fn franz_go_kgo_transactional_tests() {
    ci_selection(&Target::sluice());
}

#[test]
#[ignore = "opt-in: starts Apache Kafka 4.3.1"]
fn franz_go_kgo_transactional_tests_on_kafka() {
    ci_selection(&Target::kafka());
}

/// Runs the whole kgo suite against `target`; returns each test's outcome and the output.
fn whole_suite(target: &Target) -> (BTreeMap<String, Outcome>, Output) {
    let out = kgo(target.addr(), ".*", SUITE_RECORDS, SUITE_TIMEOUT);
    (outcomes(&String::from_utf8_lossy(&out.stdout)), out)
}

/// The whole kgo suite once against Kafka 4.3.1 and once against Sluice, one broker at a
/// time (two shared cores). Prints both tallies and the tests (and subtests) that pass on
/// Kafka but not on Sluice, and fails if there are any.
#[test]
#[ignore = "opt-in: the whole franz-go kgo suite on Kafka 4.3.1 and on Sluice, about 10 minutes"]
fn franz_go_kgo_whole_suite_sluice_vs_kafka() {
    let (on_kafka, kafka_out) = {
        let kafka = Target::kafka();
        whole_suite(&kafka)
    };
    let (on_sluice, sluice_out) = {
        let sluice = Target::sluice();
        whole_suite(&sluice)
    };
    let tally = |m: &BTreeMap<String, Outcome>| {
        let mut t: BTreeMap<String, usize> = BTreeMap::new();
        for o in m.values() {
            *t.entry(format!("{o:?}")).or_default() += 1;
        }
        t
    };
    let regressions: Vec<String> = on_kafka
        .iter()
        .filter(|(_, o)| **o == Outcome::Pass)
        .filter_map(|(name, _)| {
            let s = on_sluice.get(name).copied();
            (s != Some(Outcome::Pass)).then(|| format!("{name}: {s:?}"))
        })
        .collect();
    let kafka_failed: Vec<&String> = on_kafka
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Fail | Outcome::NoResult))
        .map(|(n, _)| n)
        .collect();
    println!(
        "kafka 4.3.1: exit {}, {:?}; failing there too: {kafka_failed:?}",
        kafka_out.status,
        tally(&on_kafka)
    );
    println!(
        "sluice: exit {}, {:?}",
        sluice_out.status,
        tally(&on_sluice)
    );
    println!("pass on Kafka, not on Sluice ({}):", regressions.len());
    for r in &regressions {
        println!("  {r}");
    }
    assert!(
        regressions.is_empty(),
        "{} kgo tests pass on Kafka 4.3.1 but not on Sluice: {regressions:#?}\n--- sluice stdout tail ---\n{}",
        regressions.len(),
        tail(&String::from_utf8_lossy(&sluice_out.stdout), 80)
    );
}
