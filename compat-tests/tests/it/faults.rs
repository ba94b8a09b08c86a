//! Failures the broker must take in its stride, judged by real clients: a client that resets
//! its connection, DeleteRecords against a compact-only topic, an index that lies, topic
//! changes cut short by a crash or by running out of file descriptors.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::Offset;

use crate::admin::{kafka_delete_records, kafka_topics_create, text};
use crate::harness::{assert_success, poll_until, unique_topic, Broker};
use crate::rk::{self, Rec};

/// Kafka refuses DeleteRecords on a topic whose cleanup.policy lacks `delete` with
/// POLICY_VIOLATION: only retention may remove records there, never a client.
#[test]
fn delete_records_on_a_compact_only_topic_is_a_policy_violation() {
    let broker = Broker::start();
    let bs = broker.addr().to_string();
    let topic = unique_topic("compact-dr");
    let out = kafka_topics_create(&bs, &topic, 1, &["cleanup.policy=compact"]);
    assert_success(&out, "kafka-topics --create (compacted)");
    let recs: Vec<Rec> = (0..5)
        .map(|i| Rec::kv(&format!("k{i}"), &format!("v{i}")))
        .collect();
    rk::produce_ok(&bs, &topic, &recs, &[]);
    let out = kafka_delete_records(&bs, &topic, 3);
    let t = text(&out);
    assert!(t.contains("PolicyViolationException"), "{t}");
    assert!(!t.contains("low_watermark: 3"), "{t}");
    let c = rk::consumer(&bs, &[]);
    assert_eq!(
        c.fetch_watermarks(&topic, 0, rk::RPC_TIMEOUT).unwrap(),
        (0, 5),
        "records were deleted despite the policy"
    );
}

/// A client that resets its connection (SO_LINGER 0, then close) is an ordinary event: the
/// broker notes it at debug level and raises no warning.
#[test]
fn a_connection_reset_is_not_a_warning() {
    let broker = Broker::start_with_env(None, &[("RUST_LOG", "info,sluice::server=debug")]);
    let s = TcpStream::connect(broker.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let local = s.local_addr().unwrap().to_string();
    // ApiVersions v0 with client id "reset", so the connection is known to be served.
    let mut body = Vec::new();
    body.extend_from_slice(&18i16.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&7i32.to_be_bytes());
    body.extend_from_slice(&5i16.to_be_bytes());
    body.extend_from_slice(b"reset");
    let mut frame = i32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    (&s).write_all(&frame).unwrap();
    let mut len = [0u8; 4];
    (&s).read_exact(&mut len).unwrap();
    let mut resp = vec![0u8; usize::try_from(i32::from_be_bytes(len)).unwrap()];
    (&s).read_exact(&mut resp).unwrap();
    assert_eq!(&resp[..4], &7i32.to_be_bytes(), "correlation id");
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
    let closed = format!("connection closed peer={local}");
    assert!(
        poll_until(Duration::from_secs(20), || broker
            .stderr()
            .contains(&closed)),
        "the broker never logged closing {local}:\n{}",
        broker.stderr()
    );
    let log = broker.stderr();
    let warned: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(&local) && (l.contains("WARN") || l.contains("ERROR")))
        .collect();
    assert!(
        warned.is_empty(),
        "a reset was logged as a warning: {warned:?}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("DEBUG") && l.contains(&local) && l.contains("reset")),
        "no debug line about the reset:\n{log}"
    );
}

/// `(byte position, base offset)` of every batch in a `.log` segment.
fn batch_positions(log: &std::path::Path) -> Vec<(u64, i64)> {
    let bytes = std::fs::read(log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos + 12 <= bytes.len() {
        let base = i64::from_be_bytes(bytes[pos..pos + 8].try_into().unwrap());
        let len = i32::from_be_bytes(bytes[pos + 8..pos + 12].try_into().unwrap());
        out.push((u64::try_from(pos).unwrap(), base));
        pos += 12 + usize::try_from(len).unwrap();
    }
    out
}

/// An offset index of a closed segment that is wrong but plausible (sorted, in range) must
/// not make a consumer skip records: the broker checks an entry against the batch it points
/// at, and rebuilds the index when they disagree.
#[test]
fn a_wrong_index_never_makes_a_consumer_skip_records() {
    let mut broker = Broker::start_with_config("[log]\nsegment_bytes = 60000\n");
    let bs = broker.addr().to_string();
    let topic = unique_topic("bad-index");
    rk::create_topic(&bs, &topic, 1);
    let total = 1000usize;
    let recs: Vec<Rec> = (0..total)
        .map(|i| Rec::kv("k", &format!("{i:05}-{}", "v".repeat(40))))
        .collect();
    // One record per batch, so every offset has its own batch header.
    rk::produce_ok(
        &bs,
        &topic,
        &recs,
        &[("linger.ms", "0"), ("batch.num.messages", "1")],
    );
    broker.stop();
    let dir = broker.partition_dir(&topic, 0);
    assert!(
        dir.join("00000000000000000000.log").exists()
            && std::fs::read_dir(&dir)
                .unwrap()
                .filter(|e| e
                    .as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "log"))
                .count()
                > 1,
        "the test needs a closed first segment"
    );
    let batches = batch_positions(&dir.join("00000000000000000000.log"));
    let n = batches.len();
    assert!(n > 100, "{n} batches in the first segment");
    // The entry for the batch at 40% of the segment points at the batch at 60%.
    let (from, to) = (batches[n * 2 / 5].1, batches[n * 3 / 5]);
    let mut index = Vec::new();
    for (rel, pos) in [(0i64, 0u64), (from, to.0)] {
        index.extend_from_slice(&u32::try_from(rel).unwrap().to_be_bytes());
        index.extend_from_slice(&u32::try_from(pos).unwrap().to_be_bytes());
    }
    std::fs::write(dir.join("00000000000000000000.index"), &index).unwrap();
    broker.start_again();
    let bs = broker.addr().to_string();
    // Small fetches, so some start between the two offsets.
    let small = [
        ("fetch.max.bytes", "1000"),
        ("message.max.bytes", "1000"),
        ("max.partition.fetch.bytes", "1000"),
    ];
    let c = rk::consumer(&bs, &small);
    let got = rk::consume_with(&c, &topic, 0, Offset::Beginning, total);
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g.offset, i64::try_from(i).unwrap(), "records skipped");
        assert_eq!(g.rec.value, recs[i].value);
    }
    let c = rk::consumer(&bs, &small);
    let mid = from + 5;
    let got = rk::consume_with(&c, &topic, 0, Offset::Offset(mid), 1);
    assert_eq!(got[0].offset, mid, "a fetch at {mid}");
    assert!(
        broker.stderr().contains("wrong index"),
        "no log line about rebuilding the index:\n{}",
        broker.stderr()
    );
}

fn admin_for(
    bs: &str,
) -> (
    rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext>,
    tokio::runtime::Runtime,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    (rk::config(bs, &[]).create().unwrap(), rt)
}

/// CreateTopics through librdkafka: `Ok` or the error code and message.
fn try_create(bs: &str, topic: &str, partitions: i32) -> Result<(), String> {
    use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
    let (a, rt) = admin_for(bs);
    let res = rt
        .block_on(a.create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(rk::RPC_TIMEOUT)),
        ))
        .expect("CreateTopics request");
    res[0]
        .clone()
        .map(|_| ())
        .map_err(|(_, e)| format!("{e:?}"))
}

/// CreatePartitions through librdkafka's admin client.
fn try_grow(bs: &str, topic: &str, count: usize) -> Result<(), String> {
    use rdkafka::admin::{AdminOptions, NewPartitions};
    let (a, rt) = admin_for(bs);
    let res = rt
        .block_on(a.create_partitions(
            &[NewPartitions::new(topic, count)],
            &AdminOptions::new().operation_timeout(Some(rk::RPC_TIMEOUT)),
        ))
        .expect("CreatePartitions request");
    res[0]
        .clone()
        .map(|_| ())
        .map_err(|(_, e)| format!("{e:?}"))
}

fn delete_topic(bs: &str, topic: &str) {
    use rdkafka::admin::AdminOptions;
    let (a, rt) = admin_for(bs);
    let res = rt
        .block_on(a.delete_topics(
            &[topic],
            &AdminOptions::new().operation_timeout(Some(rk::RPC_TIMEOUT)),
        ))
        .expect("DeleteTopics request");
    res[0]
        .clone()
        .unwrap_or_else(|(t, e)| panic!("DeleteTopics {t}: {e:?}"));
}

/// Partition directories of `topic` in the data dir (`TOPIC-N` only).
fn partition_dirs(broker: &Broker, topic: &str) -> Vec<String> {
    let prefix = format!("{topic}-");
    let mut v: Vec<String> = std::fs::read_dir(broker.data_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| {
            n.strip_prefix(&prefix)
                .is_some_and(|i| i.parse::<u32>().is_ok())
        })
        .collect();
    v.sort();
    v
}

/// Topic changes are all or nothing. With too few file descriptors for them, CreateTopics
/// and CreatePartitions fail with a clear error and leave no directory behind; a deleted
/// topic stays deleted across a restart; the broker raises its soft open-files limit to the
/// hard one; a broker whose limit is too low for all its partitions still starts and serves
/// the topics that fit.
#[test]
fn topic_changes_are_all_or_nothing_when_descriptors_run_out() {
    // A soft limit of 100 below a hard one of 256: the broker raises it to 256 at start.
    let limit = ["prlimit", "--nofile=100:256", "--"];
    let mut broker = Broker::start_wrapped(None, &limit);
    let bs = broker.addr().to_string();
    assert!(
        broker
            .stderr()
            .contains("raised the open-files limit from 100 to 256"),
        "{}",
        broker.stderr()
    );
    let grown = unique_topic("fd-grow");
    rk::create_topic(&bs, &grown, 1);
    let err = try_grow(&bs, &grown, 400).expect_err("400 partitions cannot fit in 256 files");
    assert_eq!(err, "KafkaStorageError");
    assert_eq!(rk::partition_count(&bs, &grown), Some(1));
    assert_eq!(partition_dirs(&broker, &grown), vec![format!("{grown}-0")]);
    let big = unique_topic("fd-big");
    // Kafka's own tool shows the message.
    let out = kafka_topics_create(&bs, &big, 400, &[]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("out of file descriptors"),
        "{}",
        text(&out)
    );
    assert_eq!(rk::partition_count(&bs, &big), None);
    assert!(partition_dirs(&broker, &big).is_empty());
    // What fits still works, and the broker serves it.
    let fits = unique_topic("fd-fits");
    rk::create_topic(&bs, &fits, 100);
    let acks = rk::produce_ok(
        &bs,
        &fits,
        &[Rec {
            partition: Some(99),
            ..Rec::kv("k", "v")
        }],
        &[],
    );
    assert_eq!(acks, vec![(99, 0)]);
    // Its log start moves; that must survive the time the topic spends offline below.
    {
        use rdkafka::admin::AdminOptions;
        let (a, rt) = admin_for(&bs);
        let mut tpl = rdkafka::TopicPartitionList::new();
        tpl.add_partition_offset(&fits, 99, Offset::Offset(1))
            .unwrap();
        let res = rt
            .block_on(a.delete_records(&tpl, &AdminOptions::new()))
            .expect("DeleteRecords");
        assert_eq!(res.elements()[0].offset(), Offset::Offset(1));
    }
    // A deleted topic never comes back.
    delete_topic(&bs, &grown);
    broker.restart();
    let bs = broker.addr().to_string();
    assert_eq!(
        rk::partition_count(&bs, &grown),
        None,
        "deleted topic is back"
    );
    assert_eq!(
        rk::partition_count(&bs, &big),
        None,
        "failed topic appeared"
    );
    assert_eq!(rk::partition_count(&bs, &fits), Some(100));
    // Too few descriptors for everything it has: the broker starts, says which topic is
    // offline, and serves the rest.
    let small = unique_topic("fd-small");
    rk::create_topic(&bs, &small, 1);
    rk::produce_ok(&bs, &small, &[Rec::kv("k", "small")], &[]);
    broker.stop();
    broker.set_wrapper(&["prlimit", "--nofile=90:90", "--"]);
    broker.start_again();
    let bs = broker.addr().to_string();
    assert!(
        broker.stderr().contains("out of file descriptors"),
        "{}",
        broker.stderr()
    );
    let got = rk::consume(&bs, &small, 0, Offset::Beginning, 1);
    assert_eq!(got[0].rec.value.as_deref(), Some(&b"small"[..]));
    assert!(
        try_create(&bs, &fits, 1).is_err(),
        "an offline topic's name is still taken"
    );
    // With the limit back, so is the topic, with its log start where it was.
    broker.stop();
    broker.set_wrapper(&limit);
    broker.start_again();
    let bs = broker.addr().to_string();
    assert_eq!(rk::partition_count(&bs, &fits), Some(100));
    let c = rk::consumer(&bs, &[]);
    assert_eq!(
        c.fetch_watermarks(&fits, 99, rk::RPC_TIMEOUT).unwrap(),
        (1, 1),
        "deleted records came back"
    );
    assert_eq!(rk::partition_count(&bs, &grown), None);
    // An offline topic can be deleted, and stays deleted.
    broker.stop();
    broker.set_wrapper(&["prlimit", "--nofile=90:90", "--"]);
    broker.start_again();
    delete_topic(broker.addr(), &fits);
    broker.stop();
    broker.set_wrapper(&limit);
    broker.start_again();
    assert_eq!(rk::partition_count(broker.addr(), &fits), None);
    assert!(partition_dirs(&broker, &fits).is_empty());
}
