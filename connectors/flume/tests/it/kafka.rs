//! Tests: the Kafka sink, the Kafka channel (both value formats, and as a producer with no
//! sink) and the Kafka source, each through the real `sluice-flume` binary against the
//! real `sluice` broker. What reaches Kafka is read back with `sluice-client` and, for the
//! sink, with kafka-python (`compat-tests/scripts/install-python.sh`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use sluice_client::{Client, ProduceOptions, ProduceRecord};

use crate::harness::{append_lines, eventually, unique, Agent, Broker};
use crate::sources::logged_events;

const DEADLINE: Duration = Duration::from_secs(60);

/// A record read back from a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Bytes>,
    pub value: Bytes,
    pub headers: Vec<(String, Bytes)>,
}

impl Read {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.value).into_owned()
    }
}

/// Every record of `topic` (all partitions) so far; empty when the topic does not exist.
pub async fn read_topic(client: &Client, topic: &str) -> Vec<Read> {
    let _ = client.refresh_metadata(&[topic]).await;
    let Ok(parts) = client.partitions(topic).await else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for p in parts {
        let mut offset = 0;
        loop {
            let Ok(f) = client
                .fetch(topic, p, offset, 4 << 20, Duration::ZERO)
                .await
            else {
                break;
            };
            for r in f.records {
                out.push(Read {
                    partition: p,
                    offset: r.offset,
                    key: r.key,
                    value: r.value.unwrap_or_default(),
                    headers: r
                        .headers
                        .into_iter()
                        .map(|h| (h.key, h.value.unwrap_or_default()))
                        .collect(),
                });
            }
            if f.next_offset <= offset || f.next_offset >= f.high_watermark {
                break;
            }
            offset = f.next_offset;
        }
    }
    out
}

/// Waits until `topic` holds at least `n` records; returns them all.
pub async fn wait_topic(client: &Client, topic: &str, n: usize) -> Vec<Read> {
    eventually(
        DEADLINE,
        &format!("{n} records in topic {topic}"),
        || async {
            let r = read_topic(client, topic).await;
            (r.len() >= n).then_some(r)
        },
    )
    .await
}

/// The kafka-python interpreter; a clear failure when it is not installed.
fn python() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../compat-tests/.cache/venv/bin/python");
    assert!(
        p.exists(),
        "kafka-python is not installed ({} is missing): run compat-tests/scripts/install-python.sh",
        p.display()
    );
    p
}

const READ_PY: &str = r#"
import json, sys, time
from kafka import KafkaConsumer, TopicPartition
bootstrap, topic, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                  auto_offset_reset="earliest", request_timeout_ms=30000)
deadline = time.monotonic() + 40
parts = None
while not parts and time.monotonic() < deadline:
    parts = c.partitions_for_topic(topic)
    if not parts:
        time.sleep(0.1)
tps = [TopicPartition(topic, p) for p in sorted(parts or [])]
c.assign(tps)
for tp in tps:
    c.seek_to_beginning(tp)
got = []
while len(got) < want and time.monotonic() < deadline:
    for batch in c.poll(timeout_ms=500).values():
        got.extend(batch)
c.close()
for m in got:
    print(json.dumps({
        "partition": m.partition, "offset": m.offset,
        "key": None if m.key is None else m.key.decode("utf-8", "replace"),
        "value": m.value.decode("utf-8", "replace"),
        "headers": [[k, v.decode("utf-8", "replace")] for k, v in m.headers],
    }))
"#;

/// Reads `want` records of `topic` with kafka-python (a client we did not write).
fn kafka_python_read(bootstrap: &str, topic: &str, want: usize) -> Vec<serde_json::Value> {
    let out = Command::new(python())
        .args(["-c", READ_PY, bootstrap, topic, &want.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kafka-python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_to_kafka_sink_read_back_by_kafka_python_with_topic_override_and_escapes() {
    let broker = Broker::start();
    let client = broker.client().await;
    let dir = tempfile::tempdir().unwrap();
    let (f1, f2) = (dir.path().join("web.log"), dir.path().join("audit.log"));
    fs::write(&f1, "").unwrap();
    fs::write(&f2, "").unwrap();
    let tag = unique("k");
    let templated = format!("lines-web-{tag}");
    let override_topic = format!("audit-{tag}");
    let config = format!(
        "a1.sources = r1 r2\na1.channels = c1\na1.sinks = k1\n\
         a1.sources.r1.type = exec\n\
         a1.sources.r1.command = tail -F {f1}\n\
         a1.sources.r1.batchTimeout = 200\n\
         a1.sources.r1.channels = c1\n\
         a1.sources.r1.interceptors = i1\n\
         a1.sources.r1.interceptors.i1.type = static\n\
         a1.sources.r1.interceptors.i1.key = app\n\
         a1.sources.r1.interceptors.i1.value = web\n\
         a1.sources.r2.type = exec\n\
         a1.sources.r2.command = tail -F {f2}\n\
         a1.sources.r2.batchTimeout = 200\n\
         a1.sources.r2.channels = c1\n\
         a1.sources.r2.interceptors = i1\n\
         a1.sources.r2.interceptors.i1.type = static\n\
         a1.sources.r2.interceptors.i1.key = topic\n\
         a1.sources.r2.interceptors.i1.value = {override_topic}\n\
         a1.channels.c1.type = memory\n\
         a1.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.kafka.bootstrap.servers = {addr}\n\
         a1.sinks.k1.kafka.topic = lines-%{{app}}-{tag}\n\
         a1.sinks.k1.flumeBatchSize = 5\n\
         a1.sinks.k1.header.app = flume-app\n",
        f1 = f1.display(),
        f2 = f2.display(),
        addr = broker.addr(),
    );
    let mut agent = Agent::start(&config, "a1", &[]);
    agent.wait_for_log("agent a1 started", DEADLINE);
    // At most 10 lines per file: GNU tail -F prints the last 10 lines of a file it opens
    // after they were written, so none is missed whichever comes first.
    let web: Vec<String> = (0..8).map(|i| format!("GET /page/{i} 200")).collect();
    let audit: Vec<String> = (0..3).map(|i| format!("login user{i}")).collect();
    append_lines(&f1, &web);
    append_lines(&f2, &audit);

    let got = wait_topic(&client, &templated, web.len()).await;
    assert_eq!(got.iter().map(Read::text).collect::<Vec<_>>(), web);
    let got = wait_topic(&client, &override_topic, audit.len()).await;
    assert_eq!(got.iter().map(Read::text).collect::<Vec<_>>(), audit);

    // The same records through kafka-python.
    let py = kafka_python_read(broker.addr(), &templated, web.len());
    let values: Vec<&str> = py.iter().map(|r| r["value"].as_str().unwrap()).collect();
    assert_eq!(values, web);
    for r in &py {
        assert!(r["key"].is_null(), "no key header, so no key: {r}");
        assert_eq!(
            r["headers"],
            serde_json::json!([["flume-app", "web"]]),
            "{r}"
        );
    }
    let py = kafka_python_read(broker.addr(), &override_topic, audit.len());
    let values: Vec<&str> = py.iter().map(|r| r["value"].as_str().unwrap()).collect();
    assert_eq!(values, audit);
    // The templated topic got none of the overridden events.
    assert_eq!(read_topic(&client, &templated).await.len(), web.len());
    assert!(agent.terminate(DEADLINE).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn kafka_channel_holds_avro_flume_events_and_a_sink_takes_them_with_offsets_committed() {
    let broker = Broker::start();
    let client = broker.client().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    fs::write(&log, "").unwrap();
    let topic = unique("kch");
    let group = unique("g");
    let config = format!(
        "a1.sources = r1\na1.channels = kch\na1.sinks = k1\n\
         a1.sources.r1.type = exec\n\
         a1.sources.r1.command = tail -F {log}\n\
         a1.sources.r1.batchTimeout = 200\n\
         a1.sources.r1.channels = kch\n\
         a1.sources.r1.interceptors = i1\n\
         a1.sources.r1.interceptors.i1.type = static\n\
         a1.sources.r1.interceptors.i1.key = origin\n\
         a1.sources.r1.interceptors.i1.value = exec\n\
         a1.channels.kch.type = org.apache.flume.channel.kafka.KafkaChannel\n\
         a1.channels.kch.kafka.bootstrap.servers = {addr}\n\
         a1.channels.kch.kafka.topic = {topic}\n\
         a1.channels.kch.kafka.consumer.group.id = {group}\n\
         a1.sinks.k1.type = logger\n\
         a1.sinks.k1.channel = kch\n",
        log = log.display(),
        addr = broker.addr(),
    );
    let mut agent = Agent::start(&config, "a1", &[]);
    agent.wait_for_log("agent a1 started", DEADLINE);
    let lines: Vec<String> = (0..6).map(|i| format!("line-{i}")).collect();
    append_lines(&log, &lines);

    // The topic holds bare AvroFlumeEvent datums, headers included.
    let got = wait_topic(&client, &topic, lines.len()).await;
    let events: Vec<_> = got
        .iter()
        .map(|r| sluice_flume_rpc::decode_event(&r.value).expect("an Avro FlumeEvent datum"))
        .collect();
    assert_eq!(
        events
            .iter()
            .map(|e| String::from_utf8_lossy(&e.body).into_owned())
            .collect::<Vec<_>>(),
        lines
    );
    assert!(events
        .iter()
        .all(|e| e.headers.get("origin").map(String::as_str) == Some("exec")));

    // The logger sink took them from the channel, headers decoded.
    let logged = eventually(DEADLINE, "6 logged events", || async {
        let ev = logged_events(&agent.log());
        (ev.len() >= lines.len()).then_some(ev)
    })
    .await;
    assert_eq!(logged.iter().map(|e| e.text()).collect::<Vec<_>>(), lines);
    assert!(logged
        .iter()
        .all(|e| e.headers.get("origin").map(String::as_str) == Some("exec")));

    // And committed their offsets to the group.
    eventually(DEADLINE, "the channel's committed offset", || async {
        let c = client
            .fetch_committed(&group, &[(topic.clone(), 0)])
            .await
            .ok()?;
        (c.first()?.offset == Some(lines.len() as i64)).then_some(())
    })
    .await;
    assert!(agent.terminate(DEADLINE).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_shape_kafka_channel_without_a_sink_produces_raw_lines() {
    let broker = Broker::start();
    let client = broker.client().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    fs::write(&log, "").unwrap();
    let topic = unique("app-lines");
    // CONNECTORS.md Part C's agent, with the logger in place of hdfs.
    let config = format!(
        "agent.sources = tail\nagent.channels = mem kch\nagent.sinks = log1\n\
         agent.sources.tail.type = exec\n\
         agent.sources.tail.command = tail -F {log}\n\
         agent.sources.tail.restart = true\n\
         agent.sources.tail.batchTimeout = 200\n\
         agent.sources.tail.channels = mem kch\n\
         agent.sources.tail.interceptors = ts\n\
         agent.sources.tail.interceptors.ts.type = timestamp\n\
         agent.channels.mem.type = memory\n\
         agent.channels.mem.capacity = 10000\n\
         agent.channels.mem.transactionCapacity = 1000\n\
         agent.channels.kch.type = org.apache.flume.channel.kafka.KafkaChannel\n\
         agent.channels.kch.kafka.bootstrap.servers = {addr}\n\
         agent.channels.kch.kafka.topic = {topic}\n\
         agent.channels.kch.parseAsFlumeEvent = false\n\
         agent.sinks.log1.type = logger\n\
         agent.sinks.log1.channel = mem\n",
        log = log.display(),
        addr = broker.addr(),
    );
    let mut agent = Agent::start(&config, "agent", &[]);
    agent.wait_for_log("agent agent started", DEADLINE);
    let lines: Vec<String> = (0..5).map(|i| format!("the quick brown fox {i}")).collect();
    append_lines(&log, &lines);
    let got = wait_topic(&client, &topic, lines.len()).await;
    assert_eq!(got.iter().map(Read::text).collect::<Vec<_>>(), lines);
    assert!(got.iter().all(|r| r.key.is_none() && r.headers.is_empty()));
    let py = kafka_python_read(broker.addr(), &topic, lines.len());
    let values: Vec<&str> = py.iter().map(|r| r["value"].as_str().unwrap()).collect();
    assert_eq!(values, lines);
    // The memory path got them too, and the Kafka channel was kept although no sink reads it.
    eventually(DEADLINE, "5 logged events", || async {
        (logged_events(&agent.log()).len() >= lines.len()).then_some(())
    })
    .await;
    assert!(
        !agent.log().contains("channel kch removed"),
        "{}",
        agent.log()
    );
    assert!(agent.terminate(DEADLINE).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn kafka_source_sets_headers_commits_offsets_and_feeds_a_kafka_sink() {
    let broker = Broker::start();
    let client = broker.client().await;
    let src = unique("src");
    let dst = unique("dst");
    let group = unique("g");
    client.create_topic(&src, 1, -1, &[]).await.unwrap();
    let records: Vec<ProduceRecord> = (0..7)
        .map(|i| {
            ProduceRecord::new(format!("payload {i}"))
                .with_key(format!("k{i}"))
                .with_header("X-Trace", format!("t{i}"))
                .with_timestamp(1_700_000_000_000 + i)
        })
        .collect();
    client
        .produce(&src, 0, &records, &ProduceOptions::default())
        .await
        .unwrap();

    // Kafka source → (logger, Kafka sink to another topic). allowTopicOverride is off,
    // since the source's topic header would send the events back where they came from.
    let config = format!(
        "a1.sources = r1\na1.channels = c1 c2\na1.sinks = k1 k2\n\
         a1.sources.r1.type = org.apache.flume.source.kafka.KafkaSource\n\
         a1.sources.r1.kafka.bootstrap.servers = {addr}\n\
         a1.sources.r1.kafka.topics = {src}\n\
         a1.sources.r1.kafka.consumer.group.id = {group}\n\
         a1.sources.r1.kafka.consumer.auto.offset.reset = earliest\n\
         a1.sources.r1.batchSize = 3\n\
         a1.sources.r1.batchDurationMillis = 200\n\
         a1.sources.r1.header.trace = X-Trace\n\
         a1.sources.r1.channels = c1 c2\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c2.type = memory\n\
         a1.sinks.k1.type = logger\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k2.type = org.apache.flume.sink.kafka.KafkaSink\n\
         a1.sinks.k2.channel = c2\n\
         a1.sinks.k2.kafka.bootstrap.servers = {addr}\n\
         a1.sinks.k2.kafka.topic = {dst}\n\
         a1.sinks.k2.allowTopicOverride = false\n",
        addr = broker.addr(),
    );
    let mut agent = Agent::start(&config, "a1", &[]);
    let logged = eventually(DEADLINE, "7 logged events", || async {
        let ev = logged_events(&agent.log());
        (ev.len() >= 7).then_some(ev)
    })
    .await;
    for (i, e) in logged.iter().enumerate() {
        assert_eq!(e.text(), format!("payload {i}"));
        let h = |k: &str| e.headers.get(k).map(String::as_str);
        assert_eq!(h("topic"), Some(src.as_str()), "{e:?}");
        assert_eq!(h("partition"), Some("0"));
        assert_eq!(h("offset"), Some(i.to_string().as_str()));
        assert_eq!(h("key"), Some(format!("k{i}").as_str()));
        assert_eq!(
            h("timestamp"),
            Some((1_700_000_000_000 + i as i64).to_string().as_str())
        );
        assert_eq!(h("trace"), Some(format!("t{i}").as_str()));
    }
    // The sink wrote them to the other topic, keyed by the `key` header.
    let got = wait_topic(&client, &dst, 7).await;
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.text(), format!("payload {i}"));
        assert_eq!(r.key.as_deref(), Some(format!("k{i}").as_bytes()));
    }
    assert_eq!(
        read_topic(&client, &src).await.len(),
        7,
        "nothing was written back to the source topic"
    );
    // Offsets are committed after the channels took the batch.
    eventually(DEADLINE, "the source's committed offset", || async {
        let c = client
            .fetch_committed(&group, &[(src.clone(), 0)])
            .await
            .ok()?;
        (c.first()?.offset == Some(7)).then_some(())
    })
    .await;
    // Records produced while the source runs arrive too; after a restart nothing committed
    // is read again.
    client
        .produce(
            &src,
            0,
            &[ProduceRecord::new("late one")],
            &ProduceOptions::default(),
        )
        .await
        .unwrap();
    wait_topic(&client, &dst, 8).await;
    assert!(agent.terminate(DEADLINE).success());
    agent.restart();
    client
        .produce(
            &src,
            0,
            &[ProduceRecord::new("after restart")],
            &ProduceOptions::default(),
        )
        .await
        .unwrap();
    let got = wait_topic(&client, &dst, 9).await;
    let texts: Vec<String> = got.iter().map(Read::text).collect();
    assert_eq!(
        texts.last().map(String::as_str),
        Some("after restart"),
        "{texts:?}"
    );
    assert_eq!(
        texts.iter().filter(|t| t.as_str() == "late one").count(),
        1,
        "{texts:?}"
    );
    assert!(agent.terminate(DEADLINE).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn kafka_source_from_the_broker_to_file_roll() {
    let broker = Broker::start();
    let client = broker.client().await;
    let topic = unique("to-files");
    client.create_topic(&topic, 3, -1, &[]).await.unwrap();
    let mut want: Vec<String> = Vec::new();
    for p in 0..3 {
        let records: Vec<ProduceRecord> = (0..20)
            .map(|i| {
                let v = format!("line p{p} n{i:02}");
                want.push(v.clone());
                ProduceRecord::new(v)
            })
            .collect();
        client
            .produce(&topic, p, &records, &ProduceOptions::default())
            .await
            .unwrap();
    }
    want.sort();
    let out = tempfile::tempdir().unwrap();
    let config = format!(
        "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n\
         a1.sources.r1.type = org.apache.flume.source.kafka.KafkaSource\n\
         a1.sources.r1.kafka.bootstrap.servers = {addr}\n\
         a1.sources.r1.kafka.topics = {topic}\n\
         a1.sources.r1.kafka.consumer.group.id = {group}\n\
         a1.sources.r1.kafka.consumer.auto.offset.reset = earliest\n\
         a1.sources.r1.batchSize = 25\n\
         a1.sources.r1.batchDurationMillis = 200\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.sinks.k1.type = file_roll\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.sink.directory = {dir}\n\
         a1.sinks.k1.sink.rollInterval = 0\n",
        addr = broker.addr(),
        group = unique("g"),
        dir = out.path().display(),
    );
    let _agent = Agent::start(&config, "a1", &[]);
    let got = eventually(DEADLINE, "every record in the rolled files", || async {
        let mut lines: Vec<String> = Vec::new();
        for e in fs::read_dir(out.path()).ok()?.flatten() {
            let text = fs::read_to_string(e.path()).unwrap_or_default();
            lines.extend(text.lines().map(str::to_string));
        }
        lines.sort();
        (lines.len() >= want.len()).then_some(lines)
    })
    .await;
    assert_eq!(got, want, "each record exactly once, body as the file line");
}
