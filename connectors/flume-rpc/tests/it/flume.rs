//! Interoperability with real Apache Flume 1.11.0 (Java, `-Xmx128m`, killed on drop), run
//! from the jars `compat-tests/scripts/install-flume.sh` installs:
//! - Flume's `seq` source → memory → **avro sink** → our `Server::avro_source`, plain and
//!   deflate (two flows in one agent);
//! - our `AvroSourceClient` → Flume's **avro source** → memory → `file_roll`, plain and deflate;
//! - Spark's real **SparkSink** (2.4.7) inside Flume, polled by our `SparkSinkClient`.
//!
//! Each test waits with deadlines (ports, files, events), never fixed sleeps.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use sluice_flume_rpc::{
    AvroSourceClient, ClientOptions, Compression, Event, HandshakeMatch, Server, ServerOptions,
    SparkSinkClient, Status,
};

use crate::support::{free_port, init_tracing, poll_until, Collector, FlumeAgent, JAVA_DEADLINE};

const EVENTS: u64 = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_flume_avro_sink_delivers_to_our_server_plain_and_deflate() {
    init_tracing();
    let plain = Collector::new();
    let zipped = Collector::new();
    let plain_srv = Server::avro_source("127.0.0.1:0", plain.clone(), ServerOptions::default())
        .await
        .unwrap();
    let zipped_srv = Server::avro_source(
        "127.0.0.1:0",
        zipped.clone(),
        ServerOptions {
            compression: Compression::Deflate { level: 6 },
            ..ServerOptions::default()
        },
    )
    .await
    .unwrap();
    let config = format!(
        "a1.sources = s1 s2\n\
         a1.channels = c1 c2\n\
         a1.sinks = k1 k2\n\
         a1.sources.s1.type = seq\n\
         a1.sources.s1.totalEvents = {EVENTS}\n\
         a1.sources.s1.channels = c1\n\
         a1.sources.s1.interceptors = i1\n\
         a1.sources.s1.interceptors.i1.type = static\n\
         a1.sources.s1.interceptors.i1.key = flow\n\
         a1.sources.s1.interceptors.i1.value = plain\n\
         a1.sources.s2.type = seq\n\
         a1.sources.s2.totalEvents = {EVENTS}\n\
         a1.sources.s2.channels = c2\n\
         a1.sources.s2.interceptors = i1\n\
         a1.sources.s2.interceptors.i1.type = static\n\
         a1.sources.s2.interceptors.i1.key = flow\n\
         a1.sources.s2.interceptors.i1.value = deflate\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c2.type = memory\n\
         a1.sinks.k1.type = avro\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.hostname = 127.0.0.1\n\
         a1.sinks.k1.port = {}\n\
         a1.sinks.k1.batch-size = 25\n\
         a1.sinks.k2.type = avro\n\
         a1.sinks.k2.channel = c2\n\
         a1.sinks.k2.hostname = 127.0.0.1\n\
         a1.sinks.k2.port = {}\n\
         a1.sinks.k2.batch-size = 25\n\
         a1.sinks.k2.compression-type = deflate\n\
         a1.sinks.k2.compression-level = 6\n",
        plain_srv.local_addr().port(),
        zipped_srv.local_addr().port(),
    );
    let mut agent = FlumeAgent::start(&config, false);

    let want: BTreeSet<String> = (0..EVENTS).map(|i| i.to_string()).collect();
    for (collector, flow) in [(&plain, "plain"), (&zipped, "deflate")] {
        let all_there = |events: &[Event]| {
            let got: BTreeSet<String> = events
                .iter()
                .map(|e| String::from_utf8_lossy(&e.body).into_owned())
                .collect();
            got == want
        };
        let waited = collector.wait_for(JAVA_DEADLINE, all_there).await;
        agent.assert_running();
        if let Err(e) = waited {
            panic!(
                "{flow}: not every event arrived: {e}; log:\n{}",
                agent.log()
            );
        }
        for e in collector.events() {
            assert_eq!(
                e.headers.get("flow").map(String::as_str),
                Some(flow),
                "headers cross intact: {e:?}"
            );
        }
        // The avro sink sends batches, not single events.
        assert!(collector.calls.lock().unwrap().contains(&"appendBatch"));
    }
    drop(agent);
    plain_srv.shutdown().await;
    zipped_srv.shutdown().await;
}

/// Every line of every file under `dir`.
fn lines_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if let Ok(text) = fs::read_to_string(e.path()) {
                out.extend(text.lines().map(str::to_string));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_delivers_to_real_flume_avro_source_plain_and_deflate() {
    init_tracing();
    let (p1, p2) = (free_port(), free_port());
    let out = tempfile::Builder::new()
        .prefix("flume-rpc-roll-")
        .tempdir()
        .unwrap();
    let (d1, d2) = (out.path().join("plain"), out.path().join("deflate"));
    fs::create_dir_all(&d1).unwrap();
    fs::create_dir_all(&d2).unwrap();
    let config = format!(
        "a1.sources = s1 s2\n\
         a1.channels = c1 c2\n\
         a1.sinks = k1 k2\n\
         a1.sources.s1.type = avro\n\
         a1.sources.s1.bind = 127.0.0.1\n\
         a1.sources.s1.port = {p1}\n\
         a1.sources.s1.channels = c1\n\
         a1.sources.s2.type = avro\n\
         a1.sources.s2.bind = 127.0.0.1\n\
         a1.sources.s2.port = {p2}\n\
         a1.sources.s2.compression-type = deflate\n\
         a1.sources.s2.channels = c2\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c2.type = memory\n\
         a1.sinks.k1.type = file_roll\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.sink.directory = {}\n\
         a1.sinks.k1.sink.rollInterval = 0\n\
         a1.sinks.k2.type = file_roll\n\
         a1.sinks.k2.channel = c2\n\
         a1.sinks.k2.sink.directory = {}\n\
         a1.sinks.k2.sink.rollInterval = 0\n",
        d1.display(),
        d2.display(),
    );
    let mut agent = FlumeAgent::start(&config, false);
    agent.wait_port(p1).await;
    agent.wait_port(p2).await;

    for (port, dir, compression) in [
        (p1, &d1, Compression::None),
        (p2, &d2, Compression::Deflate { level: 6 }),
    ] {
        let tag = format!("{compression:?}");
        let opts = ClientOptions {
            compression,
            ..ClientOptions::default()
        };
        let mut client = AvroSourceClient::connect(&format!("127.0.0.1:{port}"), opts)
            .await
            .unwrap();
        let mut want = BTreeSet::new();
        for i in 0..5 {
            let body = format!("{tag}-single-{i}");
            let e = Event::new(body.clone()).with_header("k", "v");
            assert_eq!(client.append(&e).await.unwrap(), Status::Ok, "{tag}");
            want.insert(body);
        }
        let batch: Vec<Event> = (0..40)
            .map(|i| Event::new(format!("{tag}-batch-{i}")).with_header("i", i.to_string()))
            .collect();
        assert_eq!(
            client.append_batch(&batch).await.unwrap(),
            Status::Ok,
            "{tag}"
        );
        want.extend(
            batch
                .iter()
                .map(|e| String::from_utf8_lossy(&e.body).into_owned()),
        );
        // Real Flume did not know our protocol's hash: NONE, then BOTH after the resend with
        // our text.
        assert_eq!(
            client.rpc().handshakes(),
            [HandshakeMatch::None, HandshakeMatch::Both],
            "{tag}"
        );

        let got = poll_until(
            &format!("{tag} bodies in {}", dir.display()),
            JAVA_DEADLINE,
            || {
                let lines: BTreeSet<String> = lines_under(dir).into_iter().collect();
                let done = want.is_subset(&lines);
                async move { done.then_some(lines) }
            },
        )
        .await;
        assert_eq!(got, want, "{tag}: exactly our bodies, nothing else");
    }
    agent.assert_running();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_spark_sink_serves_our_client_with_ack_and_nack() {
    init_tracing();
    const TOTAL: u64 = 60;
    let port = free_port();
    let config = format!(
        "a1.sources = s1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.s1.type = seq\n\
         a1.sources.s1.totalEvents = {TOTAL}\n\
         a1.sources.s1.channels = c1\n\
         a1.sources.s1.interceptors = i1\n\
         a1.sources.s1.interceptors.i1.type = static\n\
         a1.sources.s1.interceptors.i1.key = origin\n\
         a1.sources.s1.interceptors.i1.value = seq\n\
         a1.channels.c1.type = memory\n\
         a1.sinks.k1.type = org.apache.spark.streaming.flume.sink.SparkSink\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.hostname = 127.0.0.1\n\
         a1.sinks.k1.port = {port}\n"
    );
    let mut agent = FlumeAgent::start(&config, true);
    agent.wait_port(port).await;
    let mut client =
        SparkSinkClient::connect(&format!("127.0.0.1:{port}"), ClientOptions::default())
            .await
            .unwrap();

    let body = |e: &Event| String::from_utf8_lossy(&e.body).into_owned();
    let first = client.get_event_batch(10).await.unwrap();
    assert_eq!(first.error_msg, "", "log:\n{}", agent.log());
    assert!(!first.events.is_empty() && first.events.len() <= 10);
    assert!(!first.sequence_number.is_empty());
    for e in &first.events {
        assert_eq!(e.headers.get("origin").map(String::as_str), Some("seq"));
    }
    client.ack(&first.sequence_number).await.unwrap();
    let mut acked: Vec<String> = first.events.iter().map(body).collect();

    let refused = client.get_event_batch(10).await.unwrap();
    assert_eq!(refused.error_msg, "");
    assert!(!refused.events.is_empty());
    client.nack(&refused.sequence_number).await.unwrap();
    let refused: Vec<String> = refused.events.iter().map(body).collect();
    assert!(
        refused.iter().all(|b| !acked.contains(b)),
        "a new batch holds new events"
    );

    // Drain the rest, acking: every event arrives once acked, the nacked ones included.
    let want: BTreeSet<String> = (0..TOTAL).map(|i| i.to_string()).collect();
    let end = std::time::Instant::now() + JAVA_DEADLINE;
    while acked.iter().cloned().collect::<BTreeSet<_>>() != want {
        assert!(
            std::time::Instant::now() < end,
            "acked {} of {TOTAL} events; log:\n{}",
            acked.len(),
            agent.log()
        );
        let b = client.get_event_batch(25).await.unwrap();
        if !b.error_msg.is_empty() {
            panic!(
                "SparkSink answered an error: {}; log:\n{}",
                b.error_msg,
                agent.log()
            );
        }
        client.ack(&b.sequence_number).await.unwrap();
        acked.extend(b.events.iter().map(body));
    }
    for r in &refused {
        assert!(acked.contains(r), "nacked event {r} was delivered again");
    }
    assert_eq!(acked.len(), TOTAL as usize, "no event acked twice");
    agent.assert_running();
}
