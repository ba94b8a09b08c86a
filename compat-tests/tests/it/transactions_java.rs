//! Kafka transactions (issue 14) with Kafka 4.3.1's own Java client, tools and Kafka Streams:
//!
//! - `java/TxnScenarios.java` (kafka-clients 4.3.1): commit and abort across partitions read at
//!   both isolation levels, consume-transform-produce with `sendOffsetsToTransaction`, fencing
//!   by a second producer with the same transactional id, and a transaction left open by a
//!   halted JVM that the coordinator aborts on timeout. One test runs them against Apache Kafka
//!   4.3.1 and against Sluice and compares every fact the program prints.
//! - `kafka-transactions` (`org.apache.kafka.tools.TransactionsCommand`): list, describe,
//!   describe-producers, find-hanging and abort of an open transaction by partition and offset.
//! - `java/WordCount.java` (Kafka Streams 4.3.1, `exactly_once_v2`): word counts over a
//!   repartition topic and a changelog stay exact across a `kill -9` of the app.
//!
//! The expected outputs were taken from Apache Kafka 4.3.1 (single-node KRaft from the cached
//! jars); the opt-in (`--ignored`) tests run the tool and Streams checks against Kafka itself.
//! Each JVM start costs 1-2 s, so the scenarios are bundled into few runs.

use std::collections::BTreeMap;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::thread;
use std::time::Duration;

use crate::harness::{
    assert_success, compat_dir, run_with_timeout, unique_topic, Background, Broker, TOOL_TIMEOUT,
};
use crate::kafka::Kafka;

/// Sluice's config for every test here: no initial rebalance delay (Kafka's 3 s would only
/// slow the group joins down), KIP-848 members heartbeat every 500 ms instead of 5 s (so they
/// get their partitions sooner), and a timed-out transaction is looked for every 500 ms, as
/// the Kafka broker below is told with the same key.
const SLUICE_CONFIG: &str = "\
[group]
initial_rebalance_delay_ms = 0
consumer_heartbeat_interval_ms = 500

[transaction]
abort_timed_out_transaction_cleanup_interval_ms = 500
";

/// The same settings for Apache Kafka.
const KAFKA_CONFIG: &str = "group.initial.rebalance.delay.ms=0\n\
    transaction.abort.timed.out.transaction.cleanup.interval.ms=500";

/// Kafka's `TransactionsCommand`, as `bin/kafka-transactions.sh` names it.
const TRANSACTIONS_TOOL: &str = "org.apache.kafka.tools.TransactionsCommand";

/// How long the Streams app may take to commit its first output, and the check to see the
/// final counts (the check program has its own 180 s deadline).
const STREAMS_TIMEOUT: Duration = Duration::from_secs(200);

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn all_text(out: &Output) -> String {
    format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `java` running one of `compat-tests/java/*.java` as a single-file program, with Kafka
/// 4.3.1's jars (and, if asked, Kafka Streams') on the class path and log4j2 at error level.
fn java_program(file: &str, with_streams: bool) -> Command {
    let cache = compat_dir().join(".cache");
    let kafka = cache.join("kafka-4.3.1");
    let streams = cache.join("kafka-streams-4.3.1");
    assert!(
        kafka.join(".installed").exists(),
        "Kafka 4.3.1 jars are not installed: run `bash compat-tests/scripts/install-all.sh`"
    );
    let mut cp = format!("{}/libs/*", kafka.display());
    if with_streams {
        assert!(
            streams.join(".installed").exists(),
            "Kafka Streams 4.3.1 is not installed: run `bash compat-tests/scripts/install-all.sh`"
        );
        cp.push_str(&format!(":{}/libs/*", streams.display()));
    }
    let mut c = Command::new("java");
    c.args(["-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
        .arg(format!(
            "-Dlog4j2.configurationFile={}",
            kafka.join("log4j2-quiet.properties").display()
        ))
        .arg("-cp")
        .arg(cp)
        .arg(java_file(file));
    c
}

fn java_file(file: &str) -> PathBuf {
    compat_dir().join("java").join(file)
}

/// Runs `TxnScenarios.java` with `args` after the bootstrap address and the name prefix.
fn txn_scenarios(bootstrap: &str, prefix: &str, args: &[&str]) -> Output {
    let mut c = java_program("TxnScenarios.java", false);
    c.arg(bootstrap).arg(prefix).args(args);
    run_with_timeout(c, None, Duration::from_secs(180))
}

/// The facts a run printed (`scenario: fact` lines), without diagnostics (`#`) and the final
/// `done`.
fn facts(out: &Output) -> Vec<String> {
    stdout(out)
        .lines()
        .filter(|l| !l.starts_with('#') && *l != "done")
        .map(str::to_owned)
        .collect()
}

/// Runs every scenario of `TxnScenarios.java` against the broker at `bootstrap` in two JVMs
/// (the first ends by halting with a transaction open) and returns the facts both printed.
fn run_scenarios(bootstrap: &str, prefix: &str) -> Vec<String> {
    let first = txn_scenarios(
        bootstrap,
        prefix,
        &["commit-abort", "ctp", "ctp-848", "fence", "hang-open"],
    );
    assert_success(
        &first,
        "TxnScenarios commit-abort ctp ctp-848 fence hang-open",
    );
    let mut got = facts(&first);
    assert_eq!(
        got.last().map(String::as_str),
        Some("hang-open: open, halting"),
        "the first run did not get to hang-open\n{}",
        all_text(&first)
    );
    let second = txn_scenarios(bootstrap, prefix, &["hang-check"]);
    assert_success(&second, "TxnScenarios hang-check");
    got.extend(facts(&second));
    got
}

/// What Apache Kafka 4.3.1 gives for `run_scenarios`, one line per fact.
///
/// - Each transaction's control record takes an offset: 2 records of a committed transaction,
///   its marker, 2 of the aborted one, its marker, 2 more and a marker: end offset 9.
/// - While a transaction is open, read_committed consumers see the LSO (its first offset) as
///   the end and read nothing past it.
/// - OffsetFetch answers with the last committed offsets while a transaction holds newer ones,
///   and an abort leaves them where they were; the same for a classic member (`ctp`) and a
///   KIP-848 one (`ctp-848`).
/// - A producer fenced by a second `initTransactions` gets InvalidProducerEpochException from
///   its next send (and commit), then ProducerFencedException from abort (transaction.version 2).
/// - A transaction left open past `transaction.timeout.ms` is aborted by the coordinator
///   (CompleteAbort) and read_committed consumers then read past it.
const KAFKA_FACTS: &str = "\
commit-abort: open: read_committed end offsets p0=3 p1=3 p2=3
commit-abort: open: read_uncommitted end offsets p0=5 p1=5 p2=5
commit-abort: open: read_committed p0=c1-p0-0@0,c1-p0-1@1 p1=c1-p1-0@0,c1-p1-1@1 p2=c1-p2-0@0,c1-p2-1@1
commit-abort: read_committed p0=c1-p0-0@0,c1-p0-1@1,c3-p0-0@6,c3-p0-1@7 p1=c1-p1-0@0,c1-p1-1@1,c3-p1-0@6,c3-p1-1@7 p2=c1-p2-0@0,c1-p2-1@1,c3-p2-0@6,c3-p2-1@7
commit-abort: read_committed positions p0=9 p1=9 p2=9
commit-abort: read_uncommitted p0=c1-p0-0@0,c1-p0-1@1,a2-p0-0@3,a2-p0-1@4,c3-p0-0@6,c3-p0-1@7 p1=c1-p1-0@0,c1-p1-1@1,a2-p1-0@3,a2-p1-1@4,c3-p1-0@6,c3-p1-1@7 p2=c1-p2-0@0,c1-p2-1@1,a2-p2-0@3,a2-p2-1@4,c3-p2-0@6,c3-p2-1@7
commit-abort: read_uncommitted positions p0=9 p1=9 p2=9
ctp: before: group offsets p0=none p1=none p2=none
ctp: commit pending: group offsets p0=none p1=none p2=none
ctp: after commit 1: group offsets p0=4 p1=4 p2=4
ctp: abort pending: group offsets p0=4 p1=4 p2=4
ctp: after abort: group offsets p0=4 p1=4 p2=4
ctp: commit pending: group offsets p0=4 p1=4 p2=4
ctp: after commit 2: group offsets p0=6 p1=6 p2=6
ctp: output read_committed p0=W1-P0-0@0,W1-P0-1@1,W1-P0-2@2,W1-P0-3@3,W2-P0-0@8,W2-P0-1@9 p1=W1-P1-0@0,W1-P1-1@1,W1-P1-2@2,W1-P1-3@3,W2-P1-0@8,W2-P1-1@9 p2=W1-P2-0@0,W1-P2-1@1,W1-P2-2@2,W1-P2-3@3,W2-P2-0@8,W2-P2-1@9
ctp: output read_uncommitted p0=W1-P0-0@0,W1-P0-1@1,W1-P0-2@2,W1-P0-3@3,W2-P0-0@5,W2-P0-1@6,W2-P0-0@8,W2-P0-1@9 p1=W1-P1-0@0,W1-P1-1@1,W1-P1-2@2,W1-P1-3@3,W2-P1-0@5,W2-P1-1@6,W2-P1-0@8,W2-P1-1@9 p2=W1-P2-0@0,W1-P2-1@1,W1-P2-2@2,W1-P2-3@3,W2-P2-0@5,W2-P2-1@6,W2-P2-0@8,W2-P2-1@9
ctp-848: before: group offsets p0=none p1=none p2=none
ctp-848: commit pending: group offsets p0=none p1=none p2=none
ctp-848: after commit 1: group offsets p0=4 p1=4 p2=4
ctp-848: abort pending: group offsets p0=4 p1=4 p2=4
ctp-848: after abort: group offsets p0=4 p1=4 p2=4
ctp-848: commit pending: group offsets p0=4 p1=4 p2=4
ctp-848: after commit 2: group offsets p0=6 p1=6 p2=6
ctp-848: output read_committed p0=W1-P0-0@0,W1-P0-1@1,W1-P0-2@2,W1-P0-3@3,W2-P0-0@8,W2-P0-1@9 p1=W1-P1-0@0,W1-P1-1@1,W1-P1-2@2,W1-P1-3@3,W2-P1-0@8,W2-P1-1@9 p2=W1-P2-0@0,W1-P2-1@1,W1-P2-2@2,W1-P2-3@3,W2-P2-0@8,W2-P2-1@9
ctp-848: output read_uncommitted p0=W1-P0-0@0,W1-P0-1@1,W1-P0-2@2,W1-P0-3@3,W2-P0-0@5,W2-P0-1@6,W2-P0-0@8,W2-P0-1@9 p1=W1-P1-0@0,W1-P1-1@1,W1-P1-2@2,W1-P1-3@3,W2-P1-0@5,W2-P1-1@6,W2-P1-0@8,W2-P1-1@9 p2=W1-P2-0@0,W1-P2-1@1,W1-P2-2@2,W1-P2-3@3,W2-P2-0@5,W2-P2-1@6,W2-P2-0@8,W2-P2-1@9
fence: first producer send after fencing: org.apache.kafka.common.errors.InvalidProducerEpochException
fence: first producer commit after fencing: org.apache.kafka.common.errors.InvalidProducerEpochException
fence: first producer abort after fencing: org.apache.kafka.common.errors.ProducerFencedException
fence: read_committed p0=a1@0,b1@4 p1= p2=
fence: read_uncommitted p0=a1@0,a2@2,b1@4 p1= p2=
hang-open: open, halting
hang-check: read_committed after-p0-0,after-p1-0,after-p2-0
hang-check: read_uncommitted after-p0-0,after-p1-0,after-p2-0,h-p0-0,h-p1-0,h-p2-0
hang-check: state CompleteAbort";

/// Panics, listing the differing lines, unless `got` equals `want` line for line.
fn assert_same_facts(what: &str, got: &[String], want: &[String]) {
    if got == want {
        return;
    }
    let mut diff = String::new();
    for i in 0..got.len().max(want.len()) {
        let (g, w) = (got.get(i), want.get(i));
        if g != w {
            diff.push_str(&format!(
                "line {i}:\n  want {}\n  got  {}\n",
                w.map_or("(nothing)", String::as_str),
                g.map_or("(nothing)", String::as_str)
            ));
        }
    }
    panic!("{what}:\n{diff}");
}

/// The transaction scenarios against Apache Kafka 4.3.1 and against Sluice, in one test so the
/// two are always compared: Kafka must give what `KAFKA_FACTS` says (the scenarios still check
/// what they claim to), and Sluice must give exactly what Kafka gave. Kafka starts and runs in
/// a thread of its own while Sluice runs, so its start costs little extra time.
#[test]
fn txn_scenarios_match_kafka() {
    let want: Vec<String> = KAFKA_FACTS.lines().map(str::to_owned).collect();
    let kafka_run = thread::spawn(|| {
        let kafka = Kafka::start(KAFKA_CONFIG);
        run_scenarios(kafka.addr(), &unique_topic("txn-kafka"))
    });
    // A failure on Sluice must still wait for the Kafka thread: a test process that ends
    // with the thread running never drops its Kafka, and the JVM would outlive the test.
    let on_sluice = panic::catch_unwind(AssertUnwindSafe(|| {
        let broker = Broker::start_with_config(SLUICE_CONFIG);
        run_scenarios(broker.addr(), &unique_topic("txn-sluice"))
    }));
    let on_kafka = kafka_run.join();
    let on_sluice = on_sluice.unwrap_or_else(|e| panic::resume_unwind(e));
    let on_kafka = on_kafka.unwrap_or_else(|e| panic::resume_unwind(e));
    assert_same_facts(
        "Kafka 4.3.1 no longer gives the recorded facts",
        &on_kafka,
        &want,
    );
    assert_same_facts(
        "Sluice differs from Kafka 4.3.1 (want = Kafka's)",
        &on_sluice,
        &on_kafka,
    );
}

/// One table printed by `kafka-transactions`: tab-separated, padded cells under a header row.
fn parse_table(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = match lines.next() {
        Some(h) => h.split('\t').map(|c| c.trim().to_owned()).collect(),
        None => return Vec::new(),
    };
    lines
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split('\t').map(|c| c.trim().to_owned()))
                .collect()
        })
        .collect()
}

fn transactions_tool(bootstrap: &str, args: &[&str]) -> Output {
    let mut c = Command::new("bash");
    c.arg(compat_dir().join("scripts/kafka-run-class.sh"))
        .arg(TRANSACTIONS_TOOL)
        .args(["--bootstrap-server", bootstrap])
        .args(args);
    run_with_timeout(c, None, TOOL_TIMEOUT)
}

/// Runs `kafka-transactions ARGS`, asserts exit 0, and returns its table.
fn tool_table(bootstrap: &str, args: &[&str]) -> Vec<BTreeMap<String, String>> {
    let out = transactions_tool(bootstrap, args);
    assert_success(&out, &format!("kafka-transactions {}", args.join(" ")));
    parse_table(&stdout(&out))
}

/// The row whose `key` column is `value`.
fn row<'a>(
    table: &'a [BTreeMap<String, String>],
    key: &str,
    value: &str,
) -> &'a BTreeMap<String, String> {
    table
        .iter()
        .find(|r| r.get(key).map(String::as_str) == Some(value))
        .unwrap_or_else(|| panic!("no row with {key} = {value} in {table:#?}"))
}

fn cell<'a>(r: &'a BTreeMap<String, String>, col: &str) -> &'a str {
    r.get(col)
        .unwrap_or_else(|| panic!("no column {col} in {r:?}"))
        .as_str()
}

/// `kafka-transactions` against the broker at `bootstrap`: one committed transaction, then one
/// left open (the producer's JVM halts) on partition 0 of a topic. The expected cells are
/// Kafka 4.3.1's.
fn transactions_tool_checks(bootstrap: &str) {
    let pfx = unique_topic("txtool");
    let topic = format!("{pfx}-t");
    let (pre, open) = (format!("{pfx}-pre"), format!("{pfx}-open"));
    let setup = txn_scenarios(
        bootstrap,
        &pfx,
        &[
            "create",
            &topic,
            "commit-one",
            &pre,
            &topic,
            "before",
            // A timeout far past the test's length, so only the tool ends it.
            "open",
            &open,
            &topic,
            "600000",
        ],
    );
    assert_success(&setup, "TxnScenarios setup");
    assert!(
        stdout(&setup).contains("open: open, halting"),
        "{}",
        all_text(&setup)
    );

    let list = tool_table(bootstrap, &["list"]);
    let r = row(&list, "TransactionalId", &open);
    assert_eq!(cell(r, "TransactionState"), "Ongoing", "{list:#?}");
    assert_eq!(cell(r, "Coordinator"), "1", "{list:#?}");
    let open_pid = cell(r, "ProducerId").to_owned();
    let r = row(&list, "TransactionalId", &pre);
    assert_eq!(cell(r, "TransactionState"), "CompleteCommit", "{list:#?}");
    let pre_pid = cell(r, "ProducerId").to_owned();
    assert_ne!(open_pid, pre_pid);

    let desc = tool_table(bootstrap, &["describe", "--transactional-id", &open]);
    assert_eq!(desc.len(), 1, "{desc:#?}");
    let d = &desc[0];
    for (col, want) in [
        ("CoordinatorId", "1"),
        ("TransactionalId", open.as_str()),
        ("ProducerId", open_pid.as_str()),
        ("ProducerEpoch", "0"),
        ("TransactionState", "Ongoing"),
        ("TransactionTimeoutMs", "600000"),
        ("TopicPartitions", &format!("{topic}-0")),
    ] {
        assert_eq!(cell(d, col), want, "describe column {col}: {desc:#?}");
    }
    assert!(
        cell(d, "CurrentTransactionStartTimeMs")
            .parse::<i64>()
            .is_ok_and(|t| t > 0),
        "{desc:#?}"
    );

    // Offsets on partition 0: `before` 0, its commit marker 1, the open transaction's record 2.
    // Kafka 4.3.1 (transaction.version 2) writes the commit marker with the epoch bumped, so
    // the committed producer shows epoch 1 and no last sequence; the open one has had no
    // marker, so no coordinator epoch yet.
    let producers = ["describe-producers", "--topic", &topic, "--partition", "0"];
    let table = tool_table(bootstrap, &producers);
    assert_eq!(table.len(), 2, "{table:#?}");
    let r = row(&table, "ProducerId", &open_pid);
    for (col, want) in [
        ("ProducerEpoch", "0"),
        ("LatestCoordinatorEpoch", "-1"),
        ("LastSequence", "0"),
        ("CurrentTransactionStartOffset", "2"),
    ] {
        assert_eq!(
            cell(r, col),
            want,
            "open producer, column {col}: {table:#?}"
        );
    }
    let r = row(&table, "ProducerId", &pre_pid);
    for (col, want) in [
        ("ProducerEpoch", "1"),
        ("LatestCoordinatorEpoch", "0"),
        ("LastSequence", "-1"),
        ("CurrentTransactionStartOffset", "None"),
    ] {
        assert_eq!(
            cell(r, col),
            want,
            "committed producer, column {col}: {table:#?}"
        );
    }

    // The coordinator knows the open transaction and its partition, so it does not hang.
    let out = transactions_tool(bootstrap, &["find-hanging", "--broker-id", "1"]);
    assert_success(&out, "kafka-transactions find-hanging");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let header: Vec<&str> = lines
        .first()
        .map(|h| {
            h.split('\t')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        header,
        [
            "Topic",
            "Partition",
            "ProducerId",
            "ProducerEpoch",
            "CoordinatorEpoch",
            "StartOffset",
            "LastTimestamp",
            "Duration(min)"
        ],
        "{}",
        all_text(&out)
    );
    assert_eq!(
        lines.len(),
        1,
        "find-hanging found something: {}",
        all_text(&out)
    );

    // Abort by partition and start offset: WriteTxnMarkers straight to the partition.
    let abort = [
        "abort",
        "--topic",
        &topic,
        "--partition",
        "0",
        "--start-offset",
        "2",
    ];
    let out = transactions_tool(bootstrap, &abort);
    assert_success(&out, "kafka-transactions abort");
    assert_eq!(stdout(&out).trim(), "", "{}", all_text(&out));
    let table = tool_table(bootstrap, &producers);
    let r = row(&table, "ProducerId", &open_pid);
    assert_eq!(
        cell(r, "CurrentTransactionStartOffset"),
        "None",
        "{table:#?}"
    );
    let out = transactions_tool(bootstrap, &abort);
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains(&format!(
                "Could not find any open transactions starting at offset 2 on partition {topic}-0"
            )),
        "a second abort of the same transaction: {}",
        all_text(&out)
    );

    // The abort marker took offset 3, so a new transaction's record lands at 4 and
    // read_committed consumers read past the aborted one.
    let after = txn_scenarios(
        bootstrap,
        &pfx,
        &[
            "commit-one",
            &format!("{pfx}-post"),
            &topic,
            "after",
            "read",
            &topic,
        ],
    );
    assert_success(&after, "TxnScenarios commit-one read");
    assert_eq!(
        facts(&after),
        [
            "commit-one: committed after".to_owned(),
            "read: read_committed p0=before@0,after@4 p1= p2=".to_owned(),
            "read: read_uncommitted p0=before@0,open-0@2,after@4 p1= p2=".to_owned(),
        ],
        "{}",
        all_text(&after)
    );
}

#[test]
fn kafka_transactions_tool() {
    let broker = Broker::start_with_config(SLUICE_CONFIG);
    transactions_tool_checks(broker.addr());
}

/// The same checks against Apache Kafka 4.3.1, where their expectations come from.
#[test]
#[ignore = "opt-in: starts Apache Kafka 4.3.1"]
fn kafka_transactions_tool_on_kafka() {
    let kafka = Kafka::start(KAFKA_CONFIG);
    transactions_tool_checks(kafka.addr());
}

fn wordcount(args: &[&str]) -> Command {
    let mut c = java_program("WordCount.java", true);
    c.args(args);
    c
}

/// The Streams word count against the broker at `bootstrap`: 10,000 lines in, the app killed
/// with `kill -9` once some counts are committed (while it is still counting, since its first
/// run is slowed after 2,000 lines), then started again on the same state dir; the committed
/// counts must come out exact.
fn streams_word_count(bootstrap: &str) {
    let pfx = unique_topic("wordcount");
    let (input, output, app) = (
        format!("{pfx}-in"),
        format!("{pfx}-out"),
        format!("{pfx}-app"),
    );
    let state = tempfile::Builder::new()
        .prefix("sluice-compat-streams-")
        .tempdir()
        .expect("state dir");
    let state_dir = state.path().to_str().expect("utf-8 temp path").to_owned();
    let out = run_with_timeout(
        wordcount(&["produce", bootstrap, &input, &output, "10000"]),
        None,
        TOOL_TIMEOUT,
    );
    assert_success(&out, "WordCount produce");

    let run = ["run", bootstrap, &app, &state_dir, &input, &output, "slow"];
    let mut first = Background::spawn(wordcount(&run));
    let some = run_with_timeout(
        wordcount(&["check", bootstrap, &output, "10000", "some"]),
        None,
        STREAMS_TIMEOUT,
    );
    assert_success(&some, "WordCount check some");
    assert_eq!(
        stdout(&some).trim(),
        "some committed: complete=false",
        "the kill would not land mid-run\n{}\n--- app ---\n{}{}",
        all_text(&some),
        first.stdout(),
        first.stderr()
    );
    assert!(
        !first.exited(),
        "the app exited on its own:\n{}{}",
        first.stdout(),
        first.stderr()
    );
    let killed = first.kill9();
    assert!(
        !stdout(&killed).contains("uncaught"),
        "first run: {}",
        all_text(&killed)
    );

    let second = Background::spawn(wordcount(&run[..6]));
    let done = run_with_timeout(
        wordcount(&["check", bootstrap, &output, "10000"]),
        None,
        STREAMS_TIMEOUT,
    );
    let app_out = format!("--- app ---\n{}{}", second.stdout(), second.stderr());
    assert_success(&done, &format!("WordCount check\n{app_out}"));
    assert!(
        stdout(&done).starts_with("counts exact: 50 words, 39994 total"),
        "{}\n{app_out}",
        all_text(&done)
    );
    let second = second.kill9();
    assert!(
        !stdout(&second).contains("uncaught"),
        "second run: {}",
        all_text(&second)
    );
    // The counts came through transactions: exactly_once_v2 gives each stream thread a
    // transactional producer whose id starts with the application id.
    let list = tool_table(bootstrap, &["list"]);
    assert!(
        list.iter()
            .any(|r| cell(r, "TransactionalId").starts_with(&format!("{app}-"))),
        "no transactional id of {app}: {list:#?}"
    );
}

#[test]
fn streams_exactly_once_word_count_survives_kill_9() {
    let broker = Broker::start_with_config(SLUICE_CONFIG);
    streams_word_count(broker.addr());
}

/// The same run against Apache Kafka 4.3.1, where its expectations come from.
#[test]
#[ignore = "opt-in: starts Apache Kafka 4.3.1"]
fn streams_exactly_once_word_count_on_kafka() {
    let kafka = Kafka::start(KAFKA_CONFIG);
    streams_word_count(kafka.addr());
}
