//! Incremental fetch sessions (KIP-227) with real clients: Kafka 4.3.1's Java consumer (the
//! console consumer) reads a many-partition topic through a session, every record exactly
//! once, and recovers when its session is evicted (FETCH_SESSION_ID_NOT_FOUND, then a full
//! fetch). librdkafka 2.12 sends no sessions (session id 0, epoch -1 in every Fetch; its
//! INTRODUCTION.md lists KIP-227 as not supported), so its test checks the sessionless path
//! on the same topic shape. The broker's session counters, logged at shutdown, show which
//! kind of fetch was served.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::harness::{class, poll_until, spawn_java_tool, unique_topic, Background, Broker};
use crate::rk::{self, Rec};

/// Partitions of the topics here: enough that a full fetch is large next to an incremental one.
const PARTITIONS: i32 = 100;
/// Records per test, produced in two halves (the second while the consumer runs).
const RECORDS: usize = 4000;
/// How long a consumer may take to read everything.
const CONSUME_DEADLINE: Duration = Duration::from_secs(90);

/// Group rebalances start at once, so the consumers begin fetching without a 3 s wait.
const FAST_GROUPS: &str = "[group]\ninitial_rebalance_delay_ms = 0\n";

fn records(from: usize, to: usize) -> Vec<Rec> {
    (from..to)
        .map(|i| Rec::kv(&format!("k{i}"), &format!("v{i}")))
        .collect()
}

/// The broker's `fetch sessions` counters from its shutdown log line.
fn session_stats(stderr: &str) -> BTreeMap<String, u64> {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains("fetch sessions"))
        .unwrap_or_else(|| panic!("no `fetch sessions` line in the broker log:\n{stderr}"));
    let stats = line
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect();
    eprintln!("broker fetch session counters: {stats:?}");
    stats
}

/// A console consumer in group `group` over all of `topic`, printing `key:value` lines, that
/// exits after `RECORDS` records.
fn console_consumer(addr: &str, topic: &str, group: &str) -> Background {
    let n = RECORDS.to_string();
    spawn_java_tool(
        class::CONSOLE_CONSUMER,
        &[
            "--bootstrap-server",
            addr,
            "--topic",
            topic,
            "--group",
            group,
            "--from-beginning",
            "--max-messages",
            &n,
            "--timeout-ms",
            "60000",
            "--formatter-property",
            "print.key=true",
            "--formatter-property",
            "key.separator=:",
        ],
    )
}

fn lines(out: &str) -> usize {
    out.lines().filter(|l| l.starts_with('k')).count()
}

/// Asserts that `out` holds each of the `RECORDS` records exactly once.
fn assert_exactly_once(out: &str, who: &str) {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for l in out.lines().filter(|l| l.starts_with('k')) {
        *seen.entry(l).or_default() += 1;
    }
    let dups: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(dups.is_empty(), "{who}: records seen twice: {dups:?}");
    for i in 0..RECORDS {
        let want = format!("k{i}:v{i}");
        assert!(
            seen.contains_key(want.as_str()),
            "{who}: record {want} missing ({} of {RECORDS} seen)",
            seen.len()
        );
    }
    assert_eq!(seen.len(), RECORDS, "{who}: unexpected records");
}

/// Produces the first half, waits until every consumer printed it, produces the second half
/// (which the consumers then get through incremental fetches), and waits for them to exit.
fn run_consumers(addr: &str, topic: &str, consumers: &mut [Background]) {
    rk::produce_ok(addr, topic, &records(0, RECORDS / 2), &[]);
    let half = poll_until(CONSUME_DEADLINE, || {
        consumers.iter().all(|c| lines(&c.stdout()) >= RECORDS / 2)
    });
    assert!(
        half,
        "consumers did not read the first half: {:?}",
        consumers
            .iter()
            .map(|c| (lines(&c.stdout()), c.stderr()))
            .collect::<Vec<_>>()
    );
    rk::produce_ok(addr, topic, &records(RECORDS / 2, RECORDS), &[]);
    let done = poll_until(CONSUME_DEADLINE, || {
        consumers.iter_mut().all(|c| c.exited())
    });
    assert!(
        done,
        "consumers did not finish: {:?}",
        consumers
            .iter()
            .map(|c| (lines(&c.stdout()), c.stderr()))
            .collect::<Vec<_>>()
    );
}

#[test]
fn java_consumer_reads_many_partitions_through_a_session() {
    let mut broker = Broker::start_with_config(FAST_GROUPS);
    let topic = unique_topic("fsess-java");
    rk::create_topic(broker.addr(), &topic, PARTITIONS);
    let mut consumers = [console_consumer(broker.addr(), &topic, "fsess-java")];
    run_consumers(broker.addr(), &topic, &mut consumers);
    assert_exactly_once(&consumers[0].stdout(), "java consumer");
    broker.stop();
    let stats = session_stats(&broker.stderr());
    assert!(stats["created"] >= 1, "no session was created: {stats:?}");
    assert!(
        stats["incremental"] >= 1,
        "no incremental fetch was served: {stats:?}"
    );
    assert!(
        stats["partitions_omitted"] >= 1,
        "no unchanged partition was left out: {stats:?}"
    );
}

#[test]
fn java_consumers_recover_from_evicted_sessions() {
    // One slot, and a session idle for 1 ms may go: each consumer's full fetch pushes the
    // other's session out while it long-polls, so both keep getting
    // FETCH_SESSION_ID_NOT_FOUND and starting over with full fetches.
    let mut broker = Broker::start_with_config(&format!(
        "[broker]\nmax_incremental_fetch_session_cache_slots = 1\n\
         min_incremental_fetch_session_eviction_ms = 1\n{FAST_GROUPS}"
    ));
    let topic = unique_topic("fsess-evict");
    rk::create_topic(broker.addr(), &topic, PARTITIONS);
    let mut consumers = [
        console_consumer(broker.addr(), &topic, "fsess-evict-a"),
        console_consumer(broker.addr(), &topic, "fsess-evict-b"),
    ];
    run_consumers(broker.addr(), &topic, &mut consumers);
    assert_exactly_once(&consumers[0].stdout(), "consumer a");
    assert_exactly_once(&consumers[1].stdout(), "consumer b");
    broker.stop();
    let stats = session_stats(&broker.stderr());
    assert!(stats["evicted"] >= 1, "no session was evicted: {stats:?}");
    assert!(
        stats["not_found"] >= 1,
        "no client asked for an evicted session: {stats:?}"
    );
    assert!(
        stats["incremental"] >= 1,
        "no incremental fetch was served: {stats:?}"
    );
}

#[test]
fn rdkafka_reads_many_partitions_without_sessions() {
    let mut broker = Broker::start_with_config(FAST_GROUPS);
    let topic = unique_topic("fsess-rdkafka");
    rk::create_topic(broker.addr(), &topic, PARTITIONS);
    rk::produce_ok(broker.addr(), &topic, &records(0, RECORDS / 2), &[]);
    let c: BaseConsumer = rk::config(
        broker.addr(),
        &[
            ("group.id", "fsess-rdkafka"),
            ("auto.offset.reset", "earliest"),
            ("enable.partition.eof", "false"),
        ],
    )
    .create()
    .expect("create consumer");
    c.subscribe(&[&topic]).expect("subscribe");
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let end = Instant::now() + CONSUME_DEADLINE;
    let mut produced_rest = false;
    while seen.values().sum::<usize>() < RECORDS && Instant::now() < end {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            let got = rk::to_got(&m);
            let key = String::from_utf8_lossy(got.rec.key.as_deref().unwrap_or_default());
            *seen.entry(key.into_owned()).or_default() += 1;
        }
        if !produced_rest && seen.len() >= RECORDS / 2 {
            rk::produce_ok(broker.addr(), &topic, &records(RECORDS / 2, RECORDS), &[]);
            produced_rest = true;
        }
    }
    // A record read twice ends the loop early, with one distinct record short.
    assert_eq!(seen.len(), RECORDS, "distinct records read");
    assert!(
        seen.values().all(|n| *n == 1),
        "records read twice: {:?}",
        seen.iter()
            .filter(|(_, n)| **n > 1)
            .take(5)
            .collect::<Vec<_>>()
    );
    drop(c);
    broker.stop();
    let stats = session_stats(&broker.stderr());
    assert_eq!(
        stats["created"], 0,
        "librdkafka asked for a session: {stats:?}"
    );
}
