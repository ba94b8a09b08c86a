//! Share groups (KIP-932) with Kafka's own clients: `KafkaShareConsumer` members sharing one
//! partition (`java/ShareConsumers.java`), `kafka-console-share-consumer` and
//! `kafka-share-groups`, and a broker killed with -9 in the middle of a run. The consumer
//! scenarios also run against Apache Kafka 4.3.1 (`--ignored`), where they are the spec.

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::Duration;

use crate::harness::{
    assert_success, compat_dir, java_tool, poll_until, run_with_timeout, unique_topic, Background,
    Broker,
};

/// `kafka-share-groups.sh`
const SHARE_GROUPS: &str = "org.apache.kafka.tools.consumer.group.ShareGroupCommand";
/// `kafka-console-share-consumer.sh`
const CONSOLE_SHARE_CONSUMER: &str = "org.apache.kafka.tools.consumer.ConsoleShareConsumer";
/// A consuming run: JVM start, three members joining, and the records.
const RUN_TIMEOUT: Duration = Duration::from_secs(180);

fn program(args: &[&str]) -> Command {
    let mut c = sluice_testkit::kafka_java("-Xmx256m", &sluice_testkit::kafka_quiet_log_config());
    c.arg(compat_dir().join("java/ShareConsumers.java"))
        .args(args);
    c
}

/// Runs `ShareConsumers.java` to its end.
fn run(args: &[&str]) -> Output {
    let out = run_with_timeout(program(args), None, RUN_TIMEOUT);
    assert_success(&out, &format!("ShareConsumers {args:?}"));
    out
}

/// Writes `n` records to a new one-partition topic and points `group` at its start.
fn prepare(addr: &str, topic: &str, group: &str, n: usize) {
    run(&[addr, topic, group, "produce", &n.to_string()]);
    run(&[addr, topic, group, "earliest", "0"]);
}

/// What a consuming run printed: per value, its deliveries (member, delivery count), and the
/// values whose acceptance / rejection the broker confirmed.
#[derive(Default, Debug)]
struct Seen {
    got: BTreeMap<String, Vec<(String, i32)>>,
    accepted: BTreeMap<String, usize>,
    rejected: BTreeMap<String, usize>,
    violations: Vec<String>,
}

fn parse(stdout: &str) -> Seen {
    let mut s = Seen::default();
    for line in stdout.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["GOT", v, member, count, ..] => s
                .got
                .entry(v.to_string())
                .or_default()
                .push((member.to_string(), count.parse().unwrap_or(-1))),
            ["ACCEPTED", v] => *s.accepted.entry(v.to_string()).or_default() += 1,
            ["REJECTED", v] => *s.rejected.entry(v.to_string()).or_default() += 1,
            ["VIOLATION", v] => s.violations.push(v.to_string()),
            _ => {}
        }
    }
    s
}

fn value(i: usize) -> String {
    format!("v-{i}")
}

/// Every record accepted once, none twice, none received again after its acceptance.
fn assert_each_accepted_once(s: &Seen, n: usize, rejected: impl Fn(usize) -> bool, out: &str) {
    assert!(
        s.violations.is_empty(),
        "redelivered after acceptance: {s:?}\n{out}"
    );
    for i in 0..n {
        let v = value(i);
        if rejected(i) {
            assert_eq!(s.rejected.get(&v), Some(&1), "{v} not rejected once\n{out}");
            assert!(!s.accepted.contains_key(&v), "{v} accepted\n{out}");
        } else {
            assert_eq!(s.accepted.get(&v), Some(&1), "{v} not accepted once\n{out}");
        }
    }
}

fn three_members_accept_everything(addr: &str) {
    let (topic, group) = (unique_topic("share-acc"), unique_topic("sg-acc"));
    prepare(addr, &topic, &group, 60);
    let out = run(&[addr, &topic, &group, "accept", "60", "3"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let s = parse(&stdout);
    assert_each_accepted_once(&s, 60, |_| false, &stdout);
    // Nothing was released or timed out, so each record was delivered exactly once.
    for (v, d) in &s.got {
        assert_eq!(d.len(), 1, "{v} delivered {d:?}\n{stdout}");
        assert_eq!(d[0].1, 1, "{v}: delivery count\n{stdout}");
    }
}

fn released_come_back_and_rejected_never(addr: &str) {
    let (topic, group) = (unique_topic("share-mix"), unique_topic("sg-mix"));
    prepare(addr, &topic, &group, 50);
    let out = run(&[addr, &topic, &group, "mixed", "50", "3"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let s = parse(&stdout);
    assert_each_accepted_once(&s, 50, |i| i % 10 == 7, &stdout);
    for i in 0..50 {
        let v = value(i);
        let d = s.got.get(&v).cloned().unwrap_or_default();
        if i % 10 == 3 {
            // released once, then delivered again with a higher delivery count
            assert_eq!(d.len(), 2, "{v}: {d:?}\n{stdout}");
            assert_eq!((d[0].1, d[1].1), (1, 2), "{v}: {d:?}\n{stdout}");
        } else {
            assert_eq!(d.len(), 1, "{v}: {d:?}\n{stdout}");
        }
    }
}

fn a_closed_member_gives_its_records_back(addr: &str) {
    let (topic, group) = (unique_topic("share-close"), unique_topic("sg-close"));
    prepare(addr, &topic, &group, 40);
    let out = run(&[addr, &topic, &group, "close", "40", "3"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let s = parse(&stdout);
    assert_each_accepted_once(&s, 40, |_| false, &stdout);
    let held: Vec<&String> = s
        .got
        .iter()
        .filter(|(_, d)| d.first().is_some_and(|(m, _)| m == "0"))
        .map(|(v, _)| v)
        .collect();
    // Unless member 0 never got a record before the others finished, what it held went to
    // someone else, delivered for the second time.
    for v in held {
        let d = &s.got[v];
        assert!(
            d.len() == 2 && d[1].1 == 2 && d[1].0 != "0",
            "{v}: {d:?}\n{stdout}"
        );
    }
}

#[test]
fn three_share_consumers_on_one_partition_accept_each_record_once() {
    let b = Broker::start();
    three_members_accept_everything(b.addr());
}

#[test]
fn released_records_are_redelivered_and_rejected_ones_never() {
    let b = Broker::start();
    released_come_back_and_rejected_never(b.addr());
}

#[test]
fn a_share_consumer_that_closes_releases_what_it_acquired() {
    let b = Broker::start();
    a_closed_member_gives_its_records_back(b.addr());
}

/// The same three scenarios against Apache Kafka 4.3.1.
#[test]
#[ignore = "starts Apache Kafka 4.3.1 (slow); the spec for the share-group tests"]
fn share_consumers_against_kafka() {
    let k = crate::kafka::Kafka::start("");
    three_members_accept_everything(k.addr());
    released_come_back_and_rejected_never(k.addr());
    a_closed_member_gives_its_records_back(k.addr());
}

#[test]
fn console_share_consumer_and_share_group_tool() {
    let b = Broker::start();
    share_tools(b.addr());
}

/// The tool scenario against Apache Kafka 4.3.1.
#[test]
#[ignore = "starts Apache Kafka 4.3.1 (slow); the spec for the share-group tool test"]
fn share_tools_against_kafka() {
    let k = crate::kafka::Kafka::start("");
    share_tools(k.addr());
}

/// `kafka-share-groups --reset-offsets --to-earliest` on a new group, five records through
/// `kafka-console-share-consumer`, `--describe` (start offset 5), `--state`, `--list` and
/// `--delete` of the then empty group.
fn share_tools(addr: &str) {
    let (topic, group) = (unique_topic("share-tools"), unique_topic("sg-tools"));
    run(&[addr, &topic, &group, "produce", "20"]);
    let out = java_tool(
        SHARE_GROUPS,
        &[
            "--bootstrap-server",
            addr,
            "--group",
            &group,
            "--topic",
            &topic,
            "--reset-offsets",
            "--to-earliest",
            "--execute",
        ],
        None,
    );
    assert_success(&out, "kafka-share-groups --reset-offsets");
    let out = java_tool(
        CONSOLE_SHARE_CONSUMER,
        &[
            "--bootstrap-server",
            addr,
            "--topic",
            &topic,
            "--group",
            &group,
            "--max-messages",
            "5",
            "--timeout-ms",
            "30000",
        ],
        None,
    );
    assert_success(&out, "kafka-console-share-consumer");
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines, (0..5).map(value).collect::<Vec<_>>());
    // The five were accepted when the tool closed: the start offset moved past them.
    let out = java_tool(
        SHARE_GROUPS,
        &["--bootstrap-server", addr, "--describe", "--group", &group],
        None,
    );
    assert_success(&out, "kafka-share-groups --describe");
    let text = String::from_utf8_lossy(&out.stdout);
    let row: Vec<&str> = text
        .lines()
        .find(|l| l.contains(&topic))
        .unwrap_or_else(|| panic!("no row for {topic}:\n{text}"))
        .split_whitespace()
        .collect();
    assert_eq!(
        row[..4],
        [group.as_str(), topic.as_str(), "0", "5"],
        "{text}"
    );
    let out = java_tool(
        SHARE_GROUPS,
        &[
            "--bootstrap-server",
            addr,
            "--describe",
            "--group",
            &group,
            "--state",
        ],
        None,
    );
    assert_success(&out, "kafka-share-groups --describe --state");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Empty"));
    let out = java_tool(SHARE_GROUPS, &["--bootstrap-server", addr, "--list"], None);
    assert!(String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l == group));
    let out = java_tool(
        SHARE_GROUPS,
        &["--bootstrap-server", addr, "--delete", "--group", &group],
        None,
    );
    assert_success(&out, "kafka-share-groups --delete");
    let out = java_tool(SHARE_GROUPS, &["--bootstrap-server", addr, "--list"], None);
    assert!(!String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l == group));
}

#[test]
fn a_broker_killed_mid_run_loses_nothing_and_redelivers_nothing_acknowledged() {
    let mut b = Broker::start();
    let addr = b.addr().to_string();
    let (topic, group) = (unique_topic("share-kill"), unique_topic("sg-kill"));
    let n = 300;
    prepare(&addr, &topic, &group, n);
    let mut consumers = Background::spawn(program(&[
        &addr,
        &topic,
        &group,
        "run",
        &n.to_string(),
        "3",
    ]));
    let accepted = |bg: &Background| {
        bg.stdout()
            .lines()
            .filter(|l| l.starts_with("ACCEPTED"))
            .count()
    };
    assert!(
        poll_until(RUN_TIMEOUT, || accepted(&consumers) >= 60
            || consumers.exited()),
        "no progress:\n{}",
        consumers.stdout()
    );
    assert!(accepted(&consumers) < n, "finished before the kill");
    b.kill9();
    b.start_again_on_same_port();
    assert!(
        poll_until(Duration::from_secs(300), || consumers.exited()),
        "consumers did not finish after the restart:\n{}",
        consumers.stdout()
    );
    let out = consumers.terminate(Duration::from_secs(10));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = parse(&stdout);
    assert_each_accepted_once(&s, n, |_| false, &stdout);
}
