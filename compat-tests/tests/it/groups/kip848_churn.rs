//! KIP-848 groups under churn: rolling restarts of Java and librdkafka consumers with no
//! record read twice, and OffsetCommits that carry an older member epoch, on Sluice and
//! (opt-in) on Apache Kafka 4.3.1.

use super::*;

/// Records `(partition, offset)` read more than once across `outputs`, with how often.
fn duplicates<'a>(outputs: impl IntoIterator<Item = &'a [Line]>) -> BTreeMap<(i32, i64), usize> {
    let mut n: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for lines in outputs {
        for l in lines {
            *n.entry((l.partition, l.offset)).or_default() += 1;
        }
    }
    n.retain(|_, c| *c > 1);
    n
}

/// KIP-848 churn with Kafka's Java consumer: three console consumers
/// (`group.protocol=consumer`, auto-commit) share a 6-partition topic while, `cycles` times,
/// a new one joins and then the oldest leaves (SIGTERM: commit, then leave), as in a rolling
/// restart, so the group goes from three members to four and back. Records are produced
/// all along. After every change the test waits until each live member has read records
/// produced after the change (so nobody is left without partitions) and every record has been
/// read. Returns the duplicates over all members' output, after checking that every record
/// was read.
fn kip848_java_churn(bs: &str, cycles: usize) -> BTreeMap<(i32, i64), usize> {
    const PARTS: i32 = 6;
    let topic = unique_topic("grp-churn");
    let group = unique_topic("g-churn");
    rk::create_topic(bs, &topic, PARTS);
    let mut args = console_args(bs, &topic, &group);
    args.extend([
        "--command-property",
        "group.protocol=consumer",
        "--command-property",
        "auto.commit.interval.ms=500",
        "--from-beginning",
        "--timeout-ms",
        "180000",
    ]);
    let producer = rk::producer(bs, &[]);
    let mut produced: BTreeSet<(i32, i64)> = BTreeSet::new();
    let mut live: std::collections::VecDeque<crate::harness::Background> = Default::default();
    let mut done: Vec<Vec<Line>> = Vec::new();
    let mut log: Vec<String> = Vec::new();

    // Produces a round every 200 ms until each live member has read something produced after
    // `since` (then stops producing), and returns once every record has been read.
    let steady = |live: &mut std::collections::VecDeque<crate::harness::Background>,
                  done: &[Vec<Line>],
                  produced: &mut BTreeSet<(i32, i64)>,
                  what: &str| {
        let since: BTreeSet<(i32, i64)> = produced.clone();
        let mut next_round = Instant::now();
        let mut everyone_read = false;
        let ok = poll_until(Duration::from_secs(90), || {
            let seen: Vec<Vec<Line>> = live
                .iter_mut()
                .map(|c| {
                    assert!(
                        !c.exited(),
                        "{what}: a console consumer exited\n{}",
                        c.stderr()
                    );
                    parse_console(&c.stdout())
                })
                .collect();
            everyone_read = seen
                .iter()
                .all(|s| s.iter().any(|l| !since.contains(&(l.partition, l.offset))));
            if !everyone_read {
                if Instant::now() >= next_round {
                    produce_round(&producer, &topic, PARTS, 1, produced);
                    next_round = Instant::now() + Duration::from_millis(200);
                }
                return false;
            }
            let read: BTreeSet<(i32, i64)> = seen
                .iter()
                .chain(done)
                .flatten()
                .map(|l| (l.partition, l.offset))
                .collect();
            produced.is_subset(&read)
        });
        assert!(
            ok,
            "{what}: the group did not settle (every live member reading: {everyone_read})\n{}",
            live.iter()
                .map(|c| format!("--- member ---\n{}\n{}", c.stdout(), c.stderr()))
                .collect::<Vec<_>>()
                .join("\n")
        );
    };

    for i in 0..3 {
        live.push_back(spawn_java_tool(class::CONSOLE_CONSUMER, &args));
        steady(
            &mut live,
            &done,
            &mut produced,
            &format!("member {i} joined"),
        );
    }
    for cycle in 0..cycles {
        live.push_back(spawn_java_tool(class::CONSOLE_CONSUMER, &args));
        steady(
            &mut live,
            &done,
            &mut produced,
            &format!("cycle {cycle}: one joined"),
        );
        let gone = live.pop_front().expect("a live member");
        let out = gone.terminate(Duration::from_secs(30));
        log.push(String::from_utf8_lossy(&out.stderr).into_owned());
        done.push(parse_console(&text(&out)));
        steady(
            &mut live,
            &done,
            &mut produced,
            &format!("cycle {cycle}: one left"),
        );
    }
    for c in live.drain(..) {
        let out = c.terminate(Duration::from_secs(30));
        log.push(String::from_utf8_lossy(&out.stderr).into_owned());
        done.push(parse_console(&text(&out)));
    }
    let read: BTreeSet<(i32, i64)> = done
        .iter()
        .flatten()
        .map(|l| (l.partition, l.offset))
        .collect();
    assert_eq!(read, produced, "every produced record must be read");
    for l in done.iter().flatten() {
        assert_eq!(l.value, format!("rec-{}", l.offset), "{l:?}");
    }
    let dups = duplicates(done.iter().map(Vec::as_slice));
    if !dups.is_empty() {
        eprintln!("consumer stderr:\n{}", log.join("\n---\n"));
    }
    dups
}

/// 8. KIP-848 members churn (Java consumer): three members, a new one joins and the oldest
///    leaves, four times over, records produced all along. Every member must get partitions
///    (six partitions, at most four members), and no record may be read twice: each member
///    commits before it gives a partition up, and the broker must take those commits, also
///    when they carry the epoch the member had a heartbeat ago.
#[test]
fn kip848_java_members_churn_without_duplicates() {
    let broker = Broker::start_with_config(GROUP_CONFIG);
    let dups = kip848_java_churn(broker.addr(), 4);
    assert!(
        dups.is_empty(),
        "records read more than once ((partition, offset) -> times): {dups:?}\n{}",
        broker.stderr()
    );
}

/// The same churn with librdkafka's KIP-848 consumer (auto-commit every 200 ms): three
/// members, a new one joins and the oldest closes (commit, leave), `cycles` times, with a
/// round of records after every change. After each change the group must settle with nobody
/// empty-handed. Returns the records read more than once.
fn kip848_rdkafka_churn(bs: &str, cycles: usize) -> BTreeMap<(i32, i64), usize> {
    const PARTS: i32 = 6;
    let topic = unique_topic("grp-churn-rk");
    let group = unique_topic("g-churn-rk");
    rk::create_topic(bs, &topic, PARTS);
    let producer = rk::producer(bs, &[]);
    let mut produced = BTreeSet::new();
    let cfg = [("group.id", group.as_str()), ("group.protocol", "consumer")];
    let mut members: Vec<Member> = Vec::new();
    let mut gone: Vec<Vec<(i32, i64)>> = Vec::new();
    // What left members read counts as read when the rest settle; duplicates are counted
    // over everything each member received.
    let settle_all = |members: &mut Vec<Member>,
                      gone: &[Vec<(i32, i64)>],
                      produced: &BTreeSet<(i32, i64)>,
                      what: &str| {
        let earlier: BTreeSet<(i32, i64)> = gone.iter().flatten().copied().collect();
        let left: BTreeSet<(i32, i64)> = produced.difference(&earlier).copied().collect();
        settle(members, PARTS, &left, what);
    };
    let mut n = 0;
    let mut join = |members: &mut Vec<Member>| {
        n += 1;
        members.push(Member::new(bs, &format!("churn-{n}"), &topic, &cfg));
    };
    for i in 0..3 {
        join(&mut members);
        produce_round(&producer, &topic, PARTS, 5, &mut produced);
        settle_all(
            &mut members,
            &gone,
            &produced,
            &format!("member {i} joined"),
        );
    }
    for cycle in 0..cycles {
        join(&mut members);
        produce_round(&producer, &topic, PARTS, 5, &mut produced);
        settle_all(
            &mut members,
            &gone,
            &produced,
            &format!("cycle {cycle}: one joined"),
        );
        let m = members.remove(0);
        gone.push(m.got.clone());
        drop(m);
        produce_round(&producer, &topic, PARTS, 5, &mut produced);
        settle_all(
            &mut members,
            &gone,
            &produced,
            &format!("cycle {cycle}: one left"),
        );
    }
    let mut n: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for at in gone
        .iter()
        .flatten()
        .chain(members.iter().flat_map(|m| m.got.iter()))
    {
        *n.entry(*at).or_default() += 1;
    }
    n.retain(|_, c| *c > 1);
    n
}

/// 9. KIP-848 members churn (librdkafka): as above, six times over.
#[test]
fn kip848_rdkafka_members_churn_without_duplicates() {
    let broker = Broker::start_with_config(GROUP_CONFIG);
    let dups = kip848_rdkafka_churn(broker.addr(), 6);
    assert!(
        dups.is_empty(),
        "records read more than once ((partition, offset) -> times): {dups:?}\n{}",
        broker.stderr()
    );
}

/// Rows of `kafka-consumer-groups --describe --members --verbose` for `group`.
fn member_rows(bs: &str, group: &str) -> (Vec<HashMap<String, String>>, String) {
    let out = groups_tool(
        bs,
        &["--describe", "--group", group, "--members", "--verbose"],
    );
    (parse_table(&text(&out)), all_text(&out))
}

/// A KIP-848 member whose epoch has moved on commits with its older epoch (the OffsetCommit
/// is hand-built, as a member with a heartbeat response in flight would send it). Returns
/// `(case, error code)` for: the partition it kept, at the old epoch; the partition it gave
/// up, at the old epoch; the kept partition at an epoch newer than the member's; and at the
/// member's own epoch.
fn kip848_older_epoch_commit_codes(bs: &str) -> Vec<(String, i16)> {
    let topic = unique_topic("grp-epoch");
    let group = unique_topic("g-epoch");
    rk::create_topic(bs, &topic, 2);
    let mut args = console_args(bs, &topic, &group);
    args.extend([
        "--command-property",
        "group.protocol=consumer",
        "--from-beginning",
        "--timeout-ms",
        "120000",
    ]);
    let producer = rk::producer(bs, &[]);
    let mut produced = BTreeSet::new();
    let mut a = spawn_java_tool(class::CONSOLE_CONSUMER, &args);
    // Until a has read from both partitions, i.e. holds both.
    let mut next_round = Instant::now();
    let both = poll_until(SETTLE_DEADLINE, || {
        assert!(!a.exited(), "consumer a exited\n{}", a.stderr());
        let parts: BTreeSet<i32> = parse_console(&a.stdout())
            .iter()
            .map(|l| l.partition)
            .collect();
        if parts.len() < 2 && Instant::now() >= next_round {
            produce_round(&producer, &topic, 2, 1, &mut produced);
            next_round = Instant::now() + Duration::from_millis(300);
        }
        parts.len() == 2
    });
    assert!(
        both,
        "consumer a never read both partitions\n{}",
        a.stderr()
    );
    let mut last = String::new();
    let mut first: Option<(String, i64)> = None;
    let described = poll_until(SETTLE_DEADLINE, || {
        let (rows, all) = member_rows(bs, &group);
        last = all;
        first = match rows.as_slice() {
            [r] if r.get("#PARTITIONS").map(String::as_str) == Some("2") => r
                .get("CURRENT-EPOCH")
                .and_then(|e| e.parse().ok())
                .zip(r.get("CONSUMER-ID"))
                .map(|(e, id)| (id.clone(), e)),
            _ => None,
        };
        first.is_some()
    });
    let (a_id, e1) = first.unwrap_or_else(|| panic!("no single member with 2 partitions\n{last}"));
    assert!(described);

    let mut b = spawn_java_tool(class::CONSOLE_CONSUMER, &args);
    let mut next_round = Instant::now();
    let b_reads = poll_until(SETTLE_DEADLINE, || {
        assert!(!b.exited(), "consumer b exited\n{}", b.stderr());
        if Instant::now() >= next_round {
            produce_round(&producer, &topic, 2, 1, &mut produced);
            next_round = Instant::now() + Duration::from_millis(300);
        }
        !parse_console(&b.stdout()).is_empty()
    });
    assert!(b_reads, "consumer b never read anything\n{}", b.stderr());
    // a at its new epoch with one partition, b with the other, both reconciled.
    let mut now: Option<(i64, i32)> = None;
    let settled = poll_until(SETTLE_DEADLINE, || {
        let (rows, all) = member_rows(bs, &group);
        last = all;
        let stable = rows.len() == 2
            && rows.iter().all(|r| {
                r.get("#PARTITIONS").map(String::as_str) == Some("1")
                    && r.get("CURRENT-EPOCH") == r.get("TARGET-EPOCH")
            });
        now = rows
            .iter()
            .find(|r| r.get("CONSUMER-ID") == Some(&a_id))
            .and_then(|r| {
                let epoch = r.get("CURRENT-EPOCH")?.parse().ok()?;
                let part = r
                    .get("CURRENT-ASSIGNMENT")?
                    .rsplit(':')
                    .next()?
                    .parse()
                    .ok()?;
                Some((epoch, part))
            });
        stable && now.is_some()
    });
    assert!(
        settled,
        "the group did not settle with a and b holding one partition each\n{last}"
    );
    let (e2, kept) = now.expect("a's row");
    assert!(e2 > e1, "a's epoch did not move on ({e1} -> {e2})\n{last}");
    let given = 1 - kept;
    let cases = [
        (
            format!("{group},9,{e1},{a_id},{kept}"),
            "kept partition, old epoch",
        ),
        (
            format!("{group},9,{e1},{a_id},{given}"),
            "given-up partition, old epoch",
        ),
        (
            format!("{group},9,{},{a_id},{kept}", e2 + 1),
            "kept partition, newer epoch",
        ),
        (
            format!("{group},9,{e2},{a_id},{kept}"),
            "kept partition, current epoch",
        ),
    ];
    let mut argv: Vec<&str> = vec![bs, &topic];
    argv.extend(cases.iter().map(|(c, _)| c.as_str()));
    let out = python("offset_commit_probe.py", &argv);
    assert_success(&out, "offset_commit_probe.py");
    let got: HashMap<String, i16> = text(&out)
        .lines()
        .filter_map(|l| {
            let (case, code) = l.split_once(" -> ")?;
            Some((case.to_string(), code.trim().parse().ok()?))
        })
        .collect();
    a.terminate(Duration::from_secs(30));
    b.terminate(Duration::from_secs(30));
    cases
        .iter()
        .map(|(c, what)| ((*what).to_string(), got.get(c).copied().unwrap_or(-1)))
        .collect()
}

/// What Apache Kafka 4.3.1 answers in `kip848_older_epoch_commit_codes` (KIP-1251; checked
/// with `kip848_older_epoch_commit_on_kafka`): NONE for the partition the member kept,
/// STALE_MEMBER_EPOCH (113) for the one it gave up and for a newer epoch.
const OLDER_EPOCH_COMMIT_CODES: [(&str, i16); 4] = [
    ("kept partition, old epoch", 0),
    ("given-up partition, old epoch", 113),
    ("kept partition, newer epoch", 113),
    ("kept partition, current epoch", 0),
];

/// 10. An OffsetCommit from a KIP-848 member with an epoch older than its current one is
///     taken for the partitions it has held since that epoch, as Kafka 4.3 does. Before,
///     any epoch but the current one got STALE_MEMBER_EPOCH, and a member whose commit raced
///     a heartbeat lost it (and its records were read again by the next owner).
#[test]
fn kip848_commit_with_older_epoch_is_taken_for_partitions_still_held() {
    let broker = Broker::start_with_config(GROUP_CONFIG);
    let got = kip848_older_epoch_commit_codes(broker.addr());
    let want: Vec<(String, i16)> = OLDER_EPOCH_COMMIT_CODES
        .iter()
        .map(|(w, c)| ((*w).to_string(), *c))
        .collect();
    assert_eq!(got, want, "OffsetCommit error codes\n{}", broker.stderr());
}

/// The same against Apache Kafka 4.3.1; opt-in, as it starts a JVM broker.
#[test]
#[ignore = "starts Apache Kafka 4.3.1 from the cached jars; run with --ignored"]
fn kip848_older_epoch_commit_on_kafka() {
    let kafka = crate::kafka::Kafka::start("group.initial.rebalance.delay.ms=0");
    let got = kip848_older_epoch_commit_codes(kafka.addr());
    let want: Vec<(String, i16)> = OLDER_EPOCH_COMMIT_CODES
        .iter()
        .map(|(w, c)| ((*w).to_string(), *c))
        .collect();
    assert_eq!(got, want, "OffsetCommit error codes on Kafka");
}

/// Both churn scenarios against Apache Kafka 4.3.1 (KIP-848 heartbeats every 500 ms, as in
/// GROUP_CONFIG); opt-in, as it starts a JVM broker.
#[test]
#[ignore = "starts Apache Kafka 4.3.1 from the cached jars; run with --ignored"]
fn kip848_churn_on_kafka() {
    let kafka = crate::kafka::Kafka::start(
        "group.initial.rebalance.delay.ms=0\n\
         group.consumer.min.heartbeat.interval.ms=500\n\
         group.consumer.heartbeat.interval.ms=500",
    );
    let java = kip848_java_churn(kafka.addr(), 4);
    let rdkafka = kip848_rdkafka_churn(kafka.addr(), 6);
    assert!(
        java.is_empty() && rdkafka.is_empty(),
        "records read more than once on Kafka: Java {java:?}, librdkafka {rdkafka:?}"
    );
}
