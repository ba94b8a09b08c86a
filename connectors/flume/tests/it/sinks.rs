//! Tests: the file_roll, hdfs (local filesystem) and avro sinks, and the avro source, run in
//! the real agent. Events go in through our avro source (so tests choose their headers) with
//! the `sluice-flume-rpc` client, and come out as files.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sluice_flume_rpc::{AvroSourceClient, ClientOptions, Compression, Event, Status};

use crate::harness::{eventually, free_port, poll_until, Agent};

/// Deadline for anything a test waits on.
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// Send `events` in one `appendBatch` to the avro source on `port`, retrying (new
/// connection) until it answers OK.
pub(crate) async fn send_batch(port: u16, events: &[Event], compression: Compression) {
    let addr = format!("127.0.0.1:{port}");
    let opts = ClientOptions {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        compression,
        ..ClientOptions::default()
    };
    eventually(
        WAIT,
        &format!("the avro source on {addr} to accept a batch"),
        || {
            let opts = opts.clone();
            let addr = addr.clone();
            async move {
                let mut c = AvroSourceClient::connect(&addr, opts).await.ok()?;
                match c.append_batch(events).await {
                    Ok(Status::Ok) => Some(()),
                    _ => None,
                }
            }
        },
    )
    .await;
}

/// Events with bodies `prefix0`, `prefix1`... and `headers`.
pub(crate) fn events(prefix: &str, n: usize, headers: &[(&str, &str)]) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let mut e = Event::new(format!("{prefix}{i}"));
            for (k, v) in headers {
                e = e.with_header(*k, *v);
            }
            e
        })
        .collect()
}

/// Every file under `dir` (recursively), sorted by path.
pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for entry in rd.flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn name_of(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// An agent: avro source on `port` → memory channel → sink `k1` configured by `sink`
/// (lines without the `a1.sinks.k1.` prefix).
fn avro_to_sink(port: u16, sink: &[&str]) -> String {
    let mut c = format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = avro\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {port}\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c1.capacity = 10000\n\
         a1.channels.c1.transactionCapacity = 1000\n\
         a1.sinks.k1.channel = c1\n"
    );
    for line in sink {
        c.push_str("a1.sinks.k1.");
        c.push_str(line);
        c.push('\n');
    }
    c
}

fn start(config: &str) -> Agent {
    let mut a = Agent::start(config, "a1", &[]);
    a.wait_for_log("Avro source r1 started", WAIT);
    a
}

/// (counter, closed?, contents) of `FlumeData.<counter>[.tmp]` files in `dir`.
fn flume_data(dir: &Path) -> Vec<(u64, bool, String)> {
    let mut v: Vec<(u64, bool, String)> = files_under(dir)
        .iter()
        .filter_map(|p| {
            let n = name_of(p);
            let rest = n.strip_prefix("FlumeData.")?;
            let (num, closed) = match rest.strip_suffix(".tmp") {
                Some(num) => (num, false),
                None => (rest, true),
            };
            Some((
                num.parse().ok()?,
                closed,
                fs::read_to_string(p).unwrap_or_default(),
            ))
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn file_roll_starts_a_new_file_every_interval() {
    let port = free_port();
    let out = tempfile::tempdir().unwrap();
    let cfg = avro_to_sink(
        port,
        &[
            "type = file_roll",
            &format!("sink.directory = {}", out.path().display()),
            "sink.rollInterval = 1",
            "sink.pathManager.prefix = roll-",
            "sink.pathManager.extension = log",
        ],
    );
    let _agent = start(&cfg);
    send_batch(port, &events("first-", 3, &[]), Compression::None).await;
    // Names are <prefix><startMs>-<n>.<ext>, n from 1; one series per sink start.
    let parse = |p: &Path| -> (u128, u64) {
        let n = name_of(p);
        let core = n
            .strip_prefix("roll-")
            .and_then(|s| s.strip_suffix(".log"))
            .unwrap_or_else(|| panic!("bad name {n}"));
        let (ms, idx) = core.split_once('-').unwrap();
        (ms.parse().unwrap(), idx.parse().unwrap())
    };
    poll_until(WAIT, "the first batch in a file", || {
        let all: String = files_under(out.path())
            .iter()
            .map(|p| fs::read_to_string(p).unwrap())
            .collect();
        (all == "first-0\nfirst-1\nfirst-2\n").then_some(())
    });
    // The roll timer starts a new file even with nothing to write.
    let files = poll_until(WAIT, "a second file", || {
        let f = files_under(out.path());
        (f.len() >= 2).then_some(f)
    });
    let series: Vec<(u128, u64)> = files.iter().map(|p| parse(p)).collect();
    assert!(
        series.iter().all(|(ms, _)| *ms == series[0].0),
        "one series: {series:?}"
    );
    send_batch(port, &events("second-", 2, &[]), Compression::None).await;
    poll_until(WAIT, "the second batch in a later file", || {
        let mut f: Vec<(u64, String)> = files_under(out.path())
            .iter()
            .map(|p| (parse(p).1, fs::read_to_string(p).unwrap()))
            .collect();
        f.sort();
        let later: String = f
            .iter()
            .filter(|(i, _)| *i >= 2)
            .map(|(_, s)| s.as_str())
            .collect();
        let all: String = f.iter().map(|(_, s)| s.as_str()).collect();
        (later == "second-0\nsecond-1\n"
            && all == "first-0\nfirst-1\nfirst-2\nsecond-0\nsecond-1\n")
            .then_some(())
    });
}

#[tokio::test]
async fn hdfs_roll_count_then_in_use_file_renamed_on_stop() {
    let port = free_port();
    let out = tempfile::tempdir().unwrap();
    let cfg = avro_to_sink(
        port,
        &[
            "type = hdfs",
            &format!("hdfs.path = {}/flume", out.path().display()),
            "hdfs.fileType = DataStream",
            "hdfs.rollCount = 3",
            "hdfs.rollSize = 0",
            "hdfs.rollInterval = 0",
        ],
    );
    let mut agent = start(&cfg);
    send_batch(port, &events("e", 7, &[]), Compression::None).await;
    let files = poll_until(
        WAIT,
        "3 + 3 events in closed files, 1 in the in-use file",
        || {
            let f = flume_data(&out.path().join("flume"));
            let shape: Vec<(bool, String)> = f.iter().map(|(_, c, s)| (*c, s.clone())).collect();
            (shape
                == vec![
                    (true, "e0\ne1\ne2\n".to_string()),
                    (true, "e3\ne4\ne5\n".to_string()),
                    (false, "e6\n".to_string()),
                ])
            .then_some(f)
        },
    );
    // One bucket: its counter goes up by one per file.
    assert_eq!(files[1].0, files[0].0 + 1, "{files:?}");
    assert_eq!(files[2].0, files[0].0 + 2, "{files:?}");
    let status = agent.terminate(WAIT);
    assert!(status.success(), "{status}");
    let after = flume_data(&out.path().join("flume"));
    assert!(
        after.iter().all(|(_, closed, _)| *closed),
        "stop renames the in-use file: {after:?}"
    );
    assert_eq!(
        after.iter().map(|(_, _, s)| s.as_str()).collect::<String>(),
        "e0\ne1\ne2\ne3\ne4\ne5\ne6\n"
    );
}

#[tokio::test]
async fn hdfs_roll_size_counts_body_bytes() {
    let port = free_port();
    let out = tempfile::tempdir().unwrap();
    let cfg = avro_to_sink(
        port,
        &[
            "type = hdfs",
            &format!("hdfs.path = {}", out.path().display()),
            "hdfs.fileType = DataStream",
            "hdfs.rollCount = 0",
            "hdfs.rollSize = 10",
            "hdfs.rollInterval = 0",
        ],
    );
    let _agent = start(&cfg);
    // 4-byte bodies: the file reaches 12 ≥ 10 body bytes after 3 events (the newlines
    // the serializer adds do not count), so the 4th event starts a new file.
    send_batch(port, &events("abc", 5, &[]), Compression::None).await;
    poll_until(WAIT, "files of 3 and 2 events", || {
        let shape: Vec<(bool, String)> = flume_data(out.path())
            .into_iter()
            .map(|(_, c, s)| (c, s))
            .collect();
        (shape
            == vec![
                (true, "abc0\nabc1\nabc2\n".to_string()),
                (false, "abc3\nabc4\n".to_string()),
            ])
        .then_some(())
    });
}

#[tokio::test]
async fn hdfs_roll_interval_and_idle_timeout_close_files_without_new_events() {
    for (key, what) in [
        ("hdfs.rollInterval = 1", "rollInterval"),
        ("hdfs.idleTimeout = 1", "idleTimeout"),
    ] {
        let port = free_port();
        let out = tempfile::tempdir().unwrap();
        let mut sink = vec![
            "type = hdfs".to_string(),
            format!("hdfs.path = {}", out.path().display()),
            "hdfs.fileType = DataStream".to_string(),
            "hdfs.rollCount = 0".to_string(),
            "hdfs.rollSize = 0".to_string(),
        ];
        if what == "idleTimeout" {
            sink.push("hdfs.rollInterval = 0".to_string());
        }
        sink.push(key.to_string());
        let sink: Vec<&str> = sink.iter().map(String::as_str).collect();
        let _agent = start(&avro_to_sink(port, &sink));
        send_batch(port, &events("x", 2, &[]), Compression::None).await;
        poll_until(
            WAIT,
            &format!("{what} to close and rename the file"),
            || {
                let f = flume_data(out.path());
                (f.len() == 1 && f[0].1 && f[0].2 == "x0\nx1\n").then_some(())
            },
        );
        // The bucket was forgotten: the next event opens a new file with a new counter.
        send_batch(port, &events("y", 1, &[]), Compression::None).await;
        poll_until(WAIT, &format!("a second file after {what}"), || {
            let f = flume_data(out.path());
            (f.len() == 2 && f[1].2 == "y0\n").then_some(())
        });
    }
}

#[tokio::test]
async fn hdfs_escapes_bucket_per_event() {
    let port = free_port();
    let out = tempfile::tempdir().unwrap();
    let cfg = avro_to_sink(
        port,
        &[
            "type = hdfs",
            &format!(
                "hdfs.path = {}/%{{app}}/%Y%m%d/%[localhost]",
                out.path().display()
            ),
            "hdfs.filePrefix = %{host}-%H",
            "hdfs.inUseSuffix = .open",
            "hdfs.fileSuffix = .txt",
            "hdfs.timeZone = UTC",
            "hdfs.fileType = DataStream",
            "hdfs.rollInterval = 0",
        ],
    );
    let _agent = start(&cfg);
    // 2024-03-05 07:08:09 UTC.
    let ts = "1709622489123";
    let mut batch = events(
        "web-",
        2,
        &[("app", "web"), ("host", "h1"), ("timestamp", ts)],
    );
    batch.extend(events(
        "db-",
        1,
        &[("app", "db"), ("host", "h2"), ("timestamp", ts)],
    ));
    send_batch(port, &batch, Compression::None).await;
    let host = fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    // A file exists as soon as its bucket opens; its lines follow. Wait for all 17 bytes.
    let found = poll_until(WAIT, "one file per bucket, with every event", || {
        let f = files_under(out.path());
        let bytes: u64 = f
            .iter()
            .map(|p| fs::metadata(p).map_or(0, |m| m.len()))
            .sum();
        (f.len() == 2 && bytes >= 17).then_some(f)
    });
    let by_dir: BTreeMap<String, (String, String)> = found
        .iter()
        .map(|p| {
            let rel = p
                .parent()
                .unwrap()
                .strip_prefix(out.path())
                .unwrap()
                .display()
                .to_string();
            (rel, (name_of(p), fs::read_to_string(p).unwrap()))
        })
        .collect();
    let web = &by_dir[&format!("web/20240305/{host}")];
    let db = &by_dir[&format!("db/20240305/{host}")];
    assert!(
        web.0.starts_with("h1-07.") && web.0.ends_with(".txt.open"),
        "{web:?}"
    );
    assert!(
        db.0.starts_with("h2-07.") && db.0.ends_with(".txt.open"),
        "{db:?}"
    );
    assert_eq!(web.1, "web-0\nweb-1\n");
    assert_eq!(db.1, "db-0\n");
}

/// Parse a SequenceFile written with LongWritable keys and BytesWritable values.
pub(crate) fn read_sequence_file(bytes: &[u8]) -> Vec<(i64, Vec<u8>)> {
    let mut header = b"SEQ\x06".to_vec();
    header.push(33);
    header.extend_from_slice(b"org.apache.hadoop.io.LongWritable");
    header.push(34);
    header.extend_from_slice(b"org.apache.hadoop.io.BytesWritable");
    header.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    assert_eq!(&bytes[..header.len()], &header[..], "SequenceFile header");
    let sync = &bytes[header.len()..header.len() + 16];
    let mut pos = header.len() + 16;
    let mut out = Vec::new();
    let int = |at: usize| i32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    while pos < bytes.len() {
        let len = int(pos);
        if len == -1 {
            assert_eq!(&bytes[pos + 4..pos + 20], sync, "sync marker at {pos}");
            pos += 20;
            continue;
        }
        assert_eq!(int(pos + 4), 8, "key length");
        let key = i64::from_be_bytes(bytes[pos + 8..pos + 16].try_into().unwrap());
        let vlen = usize::try_from(int(pos + 16)).unwrap();
        assert_eq!(usize::try_from(len).unwrap(), 8 + 4 + vlen);
        out.push((key, bytes[pos + 20..pos + 20 + vlen].to_vec()));
        pos += 20 + vlen;
    }
    out
}

#[tokio::test]
async fn hdfs_default_file_type_is_a_hadoop_sequence_file() {
    let port = free_port();
    let out = tempfile::tempdir().unwrap();
    let cfg = avro_to_sink(
        port,
        &[
            "type = hdfs",
            &format!("hdfs.path = {}", out.path().display()),
        ],
    );
    let _agent = start(&cfg);
    let batch = vec![
        Event::new("alpha").with_header("timestamp", "1000"),
        Event::new("beta").with_header("timestamp", "2000"),
    ];
    send_batch(port, &batch, Compression::None).await;
    let records = poll_until(WAIT, "two records in the in-use SequenceFile", || {
        let f = files_under(out.path());
        let p = f.first()?;
        assert!(name_of(p).ends_with(".tmp"), "{p:?}");
        let bytes = fs::read(p).ok()?;
        (bytes.len() > 100)
            .then(|| read_sequence_file(&bytes))
            .filter(|r| r.len() == 2)
    });
    assert_eq!(
        records,
        vec![(1000, b"alpha".to_vec()), (2000, b"beta".to_vec())]
    );
}

#[tokio::test]
async fn hdfs_compressed_stream_gzip() {
    use std::io::Read;
    let port = free_port();
    let out = tempfile::tempdir().unwrap();
    let cfg = avro_to_sink(
        port,
        &[
            "type = hdfs",
            &format!("hdfs.path = {}", out.path().display()),
            "hdfs.fileType = CompressedStream",
            "hdfs.codeC = gzip",
            "hdfs.rollInterval = 0",
        ],
    );
    let _agent = start(&cfg);
    send_batch(port, &events("a", 2, &[]), Compression::None).await;
    send_batch(port, &events("b", 2, &[]), Compression::None).await;
    poll_until(WAIT, "both batches in the gzip file", || {
        let f = files_under(out.path());
        let p = f.first()?;
        assert!(name_of(p).ends_with(".gz.tmp"), "{p:?}");
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(&fs::read(p).ok()?[..])
            .read_to_string(&mut text)
            .ok()?;
        (text == "a0\na1\nb0\nb1\n").then_some(())
    });
}

#[tokio::test]
async fn hdfs_missing_timestamp_is_a_poison_pill_until_the_config_is_fixed() {
    let port = free_port();
    let dir = tempfile::Builder::new()
        .prefix("sluice-flume-agent-")
        .tempdir()
        .unwrap();
    let out = dir.path().join("out");
    let chk = dir.path().join("checkpoint");
    let data = dir.path().join("data");
    let config = |local_ts: bool| {
        format!(
            "a1.sources = r1\n\
             a1.channels = c1\n\
             a1.sinks = k1\n\
             a1.sources.r1.type = avro\n\
             a1.sources.r1.bind = 127.0.0.1\n\
             a1.sources.r1.port = {port}\n\
             a1.sources.r1.channels = c1\n\
             a1.channels.c1.type = file\n\
             a1.channels.c1.checkpointDir = {}\n\
             a1.channels.c1.dataDirs = {}\n\
             a1.sinks.k1.type = hdfs\n\
             a1.sinks.k1.channel = c1\n\
             a1.sinks.k1.hdfs.path = {}/%Y-%m-%d\n\
             a1.sinks.k1.hdfs.fileType = DataStream\n\
             a1.sinks.k1.hdfs.rollInterval = 0\n\
             a1.sinks.k1.hdfs.useLocalTimeStamp = {local_ts}\n",
            chk.display(),
            data.display(),
            out.display()
        )
    };
    let mut agent = Agent::start_in(dir, &config(false), "a1", &[]);
    agent.wait_for_log("Avro source r1 started", WAIT);
    send_batch(port, &events("no-ts-", 1, &[]), Compression::None).await;
    // The sink fails, naming the header, and keeps failing on the same event.
    agent.wait_for_log("timestamp header", WAIT);
    send_batch(
        port,
        &events("good-", 1, &[("timestamp", "1709622489123")]),
        Compression::None,
    )
    .await;
    poll_until(WAIT, "the sink to fail again on the same batch", || {
        (agent.current_log().matches("timestamp header").count() >= 2).then_some(())
    });
    assert!(
        files_under(&out).is_empty(),
        "nothing may be written: {:?}",
        files_under(&out)
    );
    assert!(
        agent.current_log().contains("rolled back"),
        "the failure says the events went back to the channel:\n{}",
        agent.current_log()
    );
    // Fix the config; the file channel kept both events.
    let status = agent.terminate(WAIT);
    assert!(status.success(), "{status}");
    fs::write(agent.config_path(), config(true)).unwrap();
    agent.restart();
    poll_until(WAIT, "both events written once fixed", || {
        let mut lines: Vec<String> = files_under(&out)
            .iter()
            .flat_map(|p| {
                fs::read_to_string(p)
                    .unwrap()
                    .lines()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        lines.sort();
        (lines == ["good-0", "no-ts-0"]).then_some(())
    });
}

#[tokio::test]
async fn avro_sink_to_avro_source_with_deflate() {
    let (port_a, port_b) = (free_port(), free_port());
    let out = tempfile::tempdir().unwrap();
    let mut b = avro_to_sink(
        port_b,
        &[
            "type = file_roll",
            &format!("sink.directory = {}", out.path().display()),
            "sink.rollInterval = 0",
        ],
    );
    b.push_str("a1.sources.r1.compression-type = deflate\n");
    let _b = start(&b);
    let a = avro_to_sink(
        port_a,
        &[
            "type = avro",
            "hostname = 127.0.0.1",
            &format!("port = {port_b}"),
            "batch-size = 10",
            "compression-type = deflate",
            "compression-level = 9",
        ],
    );
    let mut agent_a = start(&a);
    let batch = events("hop-", 25, &[("k", "v")]);
    send_batch(port_a, &batch, Compression::None).await;
    let want: String = (0..25).map(|i| format!("hop-{i}\n")).collect();
    poll_until(WAIT, "all events through both agents", || {
        let all: String = files_under(out.path())
            .iter()
            .map(|p| fs::read_to_string(p).unwrap())
            .collect();
        (all == want).then_some(())
    });
    // The sink logs its connection; a plain client cannot talk to the deflate source.
    agent_a.wait_for_log(&format!("connected to 127.0.0.1:{port_b}"), WAIT);
    let plain = async {
        let mut c = AvroSourceClient::connect(
            &format!("127.0.0.1:{port_b}"),
            ClientOptions {
                connect_timeout: Duration::from_secs(2),
                request_timeout: Duration::from_secs(2),
                compression: Compression::None,
                ..ClientOptions::default()
            },
        )
        .await
        .ok()?;
        c.append(&Event::new("plain")).await.ok()
    };
    assert_ne!(
        plain.await,
        Some(Status::Ok),
        "a plain client must not get through a deflate source"
    );
}

/// A one-datanode HDFS from `compat-tests/scripts/start-minidfs.sh`, stopped on drop.
struct MiniDfs {
    child: Option<std::process::Child>,
    port: u16,
    _dir: tempfile::TempDir,
}

impl MiniDfs {
    fn start() -> MiniDfs {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../compat-tests/scripts");
        let installed = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../compat-tests/.cache/hadoop-3.3.6/.installed");
        assert!(
            installed.exists(),
            "Hadoop's MiniDFSCluster is not installed: run compat-tests/scripts/install-hadoop.sh"
        );
        let dir = tempfile::Builder::new()
            .prefix("minidfs-")
            .tempdir()
            .unwrap();
        let mut child = Command::new("bash")
            .arg(scripts.join("start-minidfs.sh"))
            .arg(dir.path().join("dfs"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                fs::File::create(dir.path().join("stderr.log")).unwrap(),
            ))
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let port = loop {
            match rx.recv_timeout(Duration::from_secs(120)) {
                Ok(line) => {
                    if let Some(p) = line.strip_prefix("namenode port ") {
                        break p.trim().parse().unwrap();
                    }
                }
                Err(e) => {
                    let _ = child.kill();
                    let log = fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
                    panic!("MiniDFSCluster did not start ({e:?}):\n{log}");
                }
            }
        };
        MiniDfs {
            child: Some(child),
            port,
            _dir: dir,
        }
    }

    fn client(&self) -> hdfs_native::Client {
        hdfs_native::ClientBuilder::new()
            .with_url(format!("hdfs://127.0.0.1:{}", self.port))
            .build()
            .unwrap()
    }
}

impl Drop for MiniDfs {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // Closing stdin shuts the cluster down; kill in case it does not.
            drop(c.stdin.take());
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// (name, contents) of the files in `dir` on HDFS, sorted by name.
async fn hdfs_files(client: &hdfs_native::Client, dir: &str) -> Vec<(String, String)> {
    let Ok(list) = client.list_status(dir, false).await else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for st in list {
        let name = st.path.rsplit('/').next().unwrap_or("").to_string();
        let path = format!("{dir}/{name}");
        let Ok(reader) = client.read(&path).await else {
            continue;
        };
        let Ok(bytes) = reader.read_range(0, reader.file_length()).await else {
            continue;
        };
        out.push((name, String::from_utf8_lossy(&bytes).into_owned()));
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hdfs_sink_writes_to_a_real_hdfs() {
    let dfs = MiniDfs::start();
    let port = free_port();
    let cfg = avro_to_sink(
        port,
        &[
            "type = hdfs",
            &format!("hdfs.path = hdfs://127.0.0.1:{}/flume/%{{app}}", dfs.port),
            "hdfs.fileType = DataStream",
            "hdfs.rollCount = 3",
            "hdfs.rollSize = 0",
            "hdfs.rollInterval = 0",
        ],
    );
    let mut agent = start(&cfg);
    send_batch(port, &events("d", 4, &[("app", "web")]), Compression::None).await;
    let client = dfs.client();
    // The in-use file's last block is still being written: readers that ask only the
    // namenode (as hdfs-native does) see its length as 0 until it is closed, so only its
    // name is checked here; its contents are checked after the stop closes it.
    let files = eventually(
        WAIT,
        "3 events in a closed HDFS file and an in-use one",
        || {
            let client = &client;
            async move {
                let f = hdfs_files(client, "/flume/web").await;
                let closed: Vec<&str> = f
                    .iter()
                    .filter(|(n, _)| !n.ends_with(".tmp"))
                    .map(|(_, s)| s.as_str())
                    .collect();
                let in_use = f.iter().filter(|(n, _)| n.ends_with(".tmp")).count();
                (closed == ["d0\nd1\nd2\n"] && in_use == 1).then_some(f)
            }
        },
    )
    .await;
    assert!(
        files.iter().all(|(n, _)| n.starts_with("FlumeData.")),
        "{files:?}"
    );
    let status = agent.terminate(WAIT);
    assert!(status.success(), "{status}");
    let after = hdfs_files(&client, "/flume/web").await;
    assert!(
        after.iter().all(|(n, _)| !n.ends_with(".tmp")),
        "renamed on stop: {after:?}"
    );
    assert_eq!(
        after.iter().map(|(_, s)| s.as_str()).collect::<String>(),
        "d0\nd1\nd2\nd3\n"
    );
}

/// `hadoop fs -text <file>` with Hadoop 3.3.6's own classes (compat-tests/scripts/hadoop-fs.sh).
fn hadoop_fs_text(file: &Path) -> String {
    let installed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../compat-tests/.cache/hadoop-3.3.6/.installed");
    assert!(
        installed.exists(),
        "Hadoop is not installed: run compat-tests/scripts/install-hadoop.sh"
    );
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../compat-tests/scripts/hadoop-fs.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .arg("-text")
        .arg(format!("file://{}", file.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hadoop fs -text {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn hdfs_files_read_back_with_hadoop_fs_text() {
    let port = free_port();
    let out = tempfile::tempdir().unwrap();
    let d = out.path().display();
    let cfg = format!(
        "a1.sources = r1\n\
         a1.channels = c1 c2 c3 c4\n\
         a1.sinks = k1 k2 k3 k4\n\
         a1.sources.r1.type = avro\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {port}\n\
         a1.sources.r1.channels = c1 c2 c3 c4\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c2.type = memory\n\
         a1.channels.c3.type = memory\n\
         a1.channels.c4.type = memory\n\
         a1.sinks.k1.type = hdfs\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.hdfs.path = {d}/writable\n\
         a1.sinks.k2.type = hdfs\n\
         a1.sinks.k2.channel = c2\n\
         a1.sinks.k2.hdfs.path = {d}/text\n\
         a1.sinks.k2.hdfs.writeFormat = Text\n\
         a1.sinks.k3.type = hdfs\n\
         a1.sinks.k3.channel = c3\n\
         a1.sinks.k3.hdfs.path = {d}/gzip\n\
         a1.sinks.k3.hdfs.fileType = CompressedStream\n\
         a1.sinks.k3.hdfs.codeC = gzip\n\
         a1.sinks.k4.type = hdfs\n\
         a1.sinks.k4.channel = c4\n\
         a1.sinks.k4.hdfs.path = {d}/deflate\n\
         a1.sinks.k4.hdfs.codeC = deflate\n"
    );
    let mut agent = start(&cfg);
    let batch = vec![
        Event::new("alpha").with_header("timestamp", "1000"),
        Event::new("beta").with_header("timestamp", "2000"),
    ];
    send_batch(port, &batch, Compression::None).await;
    poll_until(WAIT, "an in-use file per sink", || {
        let f = files_under(out.path());
        (f.len() == 4
            && f.iter()
                .all(|p| fs::metadata(p).map(|m| m.len() > 0).unwrap_or(false)))
        .then_some(())
    });
    let status = agent.terminate(WAIT);
    assert!(status.success(), "{status}");
    let one = |sub: &str| {
        let f = files_under(&out.path().join(sub));
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(!name_of(&f[0]).ends_with(".tmp"), "{f:?}");
        f[0].clone()
    };
    // BytesWritable prints as hex bytes, Text as text; the codec comes from the .gz name.
    assert_eq!(
        hadoop_fs_text(&one("writable")),
        "1000\t61 6c 70 68 61\n2000\t62 65 74 61\n"
    );
    assert_eq!(hadoop_fs_text(&one("text")), "1000\talpha\n2000\tbeta\n");
    let gz = one("gzip");
    assert!(name_of(&gz).ends_with(".gz"), "{gz:?}");
    assert_eq!(hadoop_fs_text(&gz), "alpha\nbeta\n");
    // A block-compressed SequenceFile (DefaultCodec), named with the codec's extension.
    let deflate = one("deflate");
    assert!(name_of(&deflate).ends_with(".deflate"), "{deflate:?}");
    assert_eq!(
        hadoop_fs_text(&deflate),
        "1000\t61 6c 70 68 61\n2000\t62 65 74 61\n"
    );
}

#[tokio::test]
async fn hdfs_max_open_files_closes_the_least_recently_used_bucket() {
    let port = free_port();
    let out = tempfile::tempdir().unwrap();
    let cfg = avro_to_sink(
        port,
        &[
            "type = hdfs",
            &format!("hdfs.path = {}/%{{app}}", out.path().display()),
            "hdfs.fileType = DataStream",
            "hdfs.rollInterval = 0",
            "hdfs.maxOpenFiles = 1",
        ],
    );
    let _agent = start(&cfg);
    let mut batch = events("a", 2, &[("app", "a")]);
    batch.extend(events("b", 1, &[("app", "b")]));
    send_batch(port, &batch, Compression::None).await;
    poll_until(WAIT, "bucket a closed when bucket b opened", || {
        let a = flume_data(&out.path().join("a"));
        let b = flume_data(&out.path().join("b"));
        let a_shape: Vec<(bool, &str)> = a.iter().map(|(_, c, s)| (*c, s.as_str())).collect();
        let b_shape: Vec<(bool, &str)> = b.iter().map(|(_, c, s)| (*c, s.as_str())).collect();
        (a_shape == [(true, "a0\na1\n")] && b_shape == [(false, "b0\n")]).then_some(())
    });
}

/// GET `path` from the agent's HTTP monitoring on `port`; the response body.
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    resp.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
}

#[tokio::test]
async fn avro_source_and_sink_counters() {
    let (port, mon, dead) = (free_port(), free_port(), free_port());
    // The sink points at a port nobody listens on: it counts failed connections.
    let cfg = avro_to_sink(
        port,
        &[
            "type = avro",
            "hostname = 127.0.0.1",
            &format!("port = {dead}"),
        ],
    );
    let mon_arg = format!("-Dflume.monitoring.port={mon}");
    let mut agent = Agent::start(&cfg, "a1", &["-Dflume.monitoring.type=http", &mon_arg]);
    agent.wait_for_log("Avro source r1 started", WAIT);
    send_batch(port, &events("c", 3, &[]), Compression::None).await;
    send_batch(port, &events("d", 1, &[]), Compression::None).await;
    let mut c = AvroSourceClient::connect(&format!("127.0.0.1:{port}"), ClientOptions::default())
        .await
        .unwrap();
    assert_eq!(c.append(&Event::new("single")).await.unwrap(), Status::Ok);
    poll_until(WAIT, "Flume's avro source and sink counters", || {
        let body = http_get(mon, "/metrics")?;
        let json: serde_json::Value = serde_json::from_str(&body).ok()?;
        let src = &json["SOURCE.r1"];
        let sink = &json["SINK.k1"];
        let ok = src["AppendBatchReceivedCount"] == "2"
            && src["AppendBatchAcceptedCount"] == "2"
            && src["AppendReceivedCount"] == "1"
            && src["AppendAcceptedCount"] == "1"
            && src["EventAcceptedCount"] == "5"
            && sink["ConnectionFailedCount"]
                .as_str()
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|n| n >= 1)
            && sink["EventDrainSuccessCount"] == "0"
            && json["CHANNEL.c1"]["ChannelSize"] == "5";
        ok.then_some(())
    });
}
