//! The seed pipeline end to end (shared docs: CONNECTORS.md, Part C), every piece a real
//! process: lines appended by the test to a log file → the `sluice-flume` agent running
//! `config/flume/pipeline.properties` (exec `tail -F`, timestamp interceptor, replicating to
//! a memory channel → hdfs sink on a local `%Y-%m-%d/%H` path, and to a Kafka channel →
//! topic on the `sluice` broker) → `sluice-spark wordcount --redis` → `redis-server`.
//!
//! `sluice-flume` is found like the broker: `<target>/debug/sluice-flume` next to this test
//! executable's `deps/` dir (`cargo build --bin sluice-flume`), or `$SLUICE_FLUME_BIN`.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use sluice_client::OffsetSpec;
use sluice_spark::RedisSink;
use tempfile::TempDir;

use crate::binary::{Rng, Spark};
use crate::harness::{Broker, Redis};

/// How long one step of the pipeline may take (the exec source alone waits up to its
/// `batchTimeout`, 3 s, before it hands a short batch on).
const STEP: Duration = Duration::from_secs(60);

/// The topic `pipeline.properties` writes (Part C's).
const TOPIC: &str = "app-lines";

/// `sluice-flume`: `$SLUICE_FLUME_BIN`, else next to this test's `deps/` dir.
fn flume_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SLUICE_FLUME_BIN") {
        return PathBuf::from(p);
    }
    // <target>/debug/deps/it-HASH → <target>/debug/sluice-flume
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .and_then(Path::parent)
        .map(|d| d.join("sluice-flume"))
        .unwrap()
}

/// The repository's `config/flume/pipeline.properties`, with the broker address, the
/// tailed log and the hdfs sink's directory pointed at this test's own. Every replaced
/// string must be there: the test runs that file, not a copy of it.
fn pipeline_config(broker: &str, log: &Path, hdfs: &Path) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/flume/pipeline.properties");
    let mut text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    for (from, to) in [
        ("localhost:9092", broker.to_owned()),
        ("/tmp/sluice-flume/app.log", log.display().to_string()),
        (
            "/tmp/sluice-flume/flume/app/",
            format!("{}/", hdfs.display()),
        ),
    ] {
        assert!(text.contains(from), "{} has no {from:?}", path.display());
        text = text.replace(from, &to);
    }
    text
}

/// A running `sluice-flume agent`, its output in a file; killed on drop (its log printed
/// if the test failed).
struct Agent {
    child: Option<Child>,
    log: PathBuf,
}

impl Agent {
    fn start(dir: &Path, config: &str, name: &str) -> Agent {
        let bin = flume_bin();
        assert!(
            bin.exists(),
            "sluice-flume binary {} not found: run `cargo build --bin sluice-flume` (same \
             CARGO_TARGET_DIR) or set SLUICE_FLUME_BIN",
            bin.display()
        );
        let conf = dir.join("pipeline.properties");
        fs::write(&conf, config).unwrap();
        let log = dir.join("agent.log");
        let out = File::create(&log).unwrap();
        let child = Command::new(&bin)
            .arg("agent")
            .arg("--conf")
            .arg(dir)
            .arg("--conf-file")
            .arg(&conf)
            .arg("--name")
            .arg(name)
            .arg("-Dflume.root.logger=INFO,console")
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        Agent {
            child: Some(child),
            log,
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log holds `needle`; panics with the log if the agent exits first.
    async fn wait_for_log(&mut self, needle: &str) {
        let end = Instant::now() + STEP;
        loop {
            if self.log().contains(needle) {
                return;
            }
            if let Some(s) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!(
                    "sluice-flume exited ({s}) before logging {needle:?}\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < end,
                "sluice-flume did not log {needle:?} within {STEP:?}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// SIGTERM, then the exit status (the agent drains its channels and closes its files).
    async fn terminate(&mut self) -> ExitStatus {
        let mut c = self.child.take().unwrap();
        let ok = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success(), "kill -TERM failed");
        let end = Instant::now() + STEP;
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > end {
                let _ = c.kill();
                let _ = c.wait();
                panic!(
                    "sluice-flume did not exit within {STEP:?} of SIGTERM\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("----- sluice-flume log -----\n{}", self.log());
        }
    }
}

/// Java's `line.split(" ")`, as Spark's DirectKafkaWordCount splits: every single space
/// separates (so two in a row make an empty word), trailing empty words are dropped, and
/// the empty line is one empty word.
fn java_split(line: &str) -> Vec<&str> {
    if line.is_empty() {
        return vec![""];
    }
    let mut words: Vec<&str> = line.split(' ').collect();
    while words.last() == Some(&"") {
        words.pop();
    }
    words
}

const VOCAB: &[&str] = &[
    "GET",
    "POST",
    "/index.html",
    "/api/v1/items",
    "200",
    "404",
    "500",
    "tail",
    "flume",
    "kafka",
    "spark",
    "redis",
    "hdfs",
    "sluice",
    "error",
    "warn",
    "info",
    "user-42",
    "日志",
];

/// A log line of 1 to 10 words; one in eight has an irregular spacing (a double space, a
/// leading or a trailing space), which the word count must split as Java does.
fn log_line(rng: &mut Rng, n: usize) -> String {
    let words: Vec<&str> = (0..1 + rng.below(10))
        .map(|_| VOCAB[usize::try_from(rng.below(VOCAB.len() as u64)).unwrap()])
        .collect();
    let line = format!("{} {n}", words.join(" "));
    match rng.below(24) {
        0 => line.replacen(' ', "  ", 1),
        1 => format!(" {line}"),
        2 => format!("{line} "),
        _ => line,
    }
}

/// Appends `lines` to the tailed log in one write, as an application flushing a buffer.
fn append(log: &Path, lines: &[String]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let mut f = OpenOptions::new().append(true).open(log).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Every regular file under `dir`, recursively, sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
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

/// `date +FORMAT` in the local zone, the zone the hdfs sink's escapes use.
fn date(format: &str) -> String {
    let out = Command::new("date")
        .arg(format!("+{format}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "date +{format} failed");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Waits until Redis holds exactly `want` as the counts; on timeout, shows both.
async fn wait_counts(sink: &RedisSink, want: &HashMap<String, i64>, what: &str) {
    let end = Instant::now() + STEP;
    loop {
        let got = sink.counts().await.unwrap();
        if got == *want {
            return;
        }
        assert!(
            Instant::now() < end,
            "timed out after {STEP:?} waiting for {what}\nwant {want:?}\ngot  {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn seed_pipeline_from_tail_to_hdfs_and_through_kafka_to_redis() {
    run_pipeline(Broker::start(), None).await;
}

/// The same pipeline with every Kafka connection on a SASL_SSL listener: the Flume agent's
/// Kafka channel and the word count authenticate with SCRAM-SHA-512 over TLS, with the keys
/// Kafka's clients take (`kafka.producer.*` in Flume, `--conf` in the word count).
#[tokio::test]
async fn seed_pipeline_over_sasl_ssl() {
    let tls = tempfile::Builder::new()
        .prefix("sluice-spark-tls-")
        .tempdir()
        .unwrap();
    let (ca, server) = certificates(tls.path());
    let config = format!(
        "[group]\ninitial_rebalance_delay_ms = 0\n\
         [security]\n\
         \"ssl.keystore.type\" = \"PEM\"\n\
         \"ssl.keystore.location\" = \"{}\"\n\
         \"sasl.enabled.mechanisms\" = \"SCRAM-SHA-512\"\n\
         \"sluice.add.scram\" = \"SCRAM-SHA-512=[name=pipeline,password=pipeline-secret]\"\n",
        server.display()
    );
    let broker = Broker::start_with(&config, &["--listen", "SASL_SSL://127.0.0.1:0"]);
    let secured = broker.addrs()[1].clone();
    let keys = [
        ("security.protocol", "SASL_SSL".to_owned()),
        ("sasl.mechanism", "SCRAM-SHA-512".to_owned()),
        (
            "sasl.jaas.config",
            "org.apache.kafka.common.security.scram.ScramLoginModule required \
             username=\"pipeline\" password=\"pipeline-secret\";"
                .to_owned(),
        ),
        ("ssl.truststore.type", "PEM".to_owned()),
        ("ssl.truststore.location", ca.display().to_string()),
    ];
    run_pipeline(broker, Some((secured, keys.to_vec()))).await;
}

/// A CA and a server certificate for 127.0.0.1 signed by it, as PEM files in `dir`:
/// (the CA's certificate, the server's key and certificate chain).
fn certificates(dir: &Path) -> (PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "sluice-pipeline-ca");
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    leaf.distinguished_name
        .push(rcgen::DnType::CommonName, "broker");
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    let ca_path = dir.join("ca.pem");
    let server_path = dir.join("broker.pem");
    fs::write(&ca_path, &ca_pem).unwrap();
    fs::write(
        &server_path,
        format!("{}{}{}", key.serialize_pem(), cert.pem(), ca_pem),
    )
    .unwrap();
    (ca_path, server_path)
}

/// Runs the seed pipeline against `broker`; with `secured`, the agent and the word count
/// use that address and those Kafka client keys (the test's own client stays on the
/// PLAINTEXT listener to create the topic and read offsets).
async fn run_pipeline(broker: Broker, secured: Option<(String, Vec<(&str, String)>)>) {
    let (mut rng, seed) = Rng::seeded();
    eprintln!("seed {seed} (set SLUICE_SPARK_IT_SEED to replay)");
    let pipeline_addr = secured
        .as_ref()
        .map_or_else(|| broker.addr().to_owned(), |(a, _)| a.clone());
    let redis = Redis::start();
    let client = broker.client().await;
    // Three partitions, so that the word count's batches have several ranges.
    client.create_topic(TOPIC, 3, 1, &[]).await.unwrap();

    let tmp: TempDir = tempfile::Builder::new()
        .prefix("sluice-spark-pipeline-")
        .tempdir()
        .unwrap();
    let log = tmp.path().join("app.log");
    fs::write(&log, "").unwrap();
    let hdfs = tmp.path().join("hdfs");
    let hour_before = date("%Y-%m-%d/%H");

    let url = redis.url(0);
    let mut args: Vec<String> = [
        "--bootstrap-server",
        &pipeline_addr,
        "--topics",
        TOPIC,
        "--batch-interval",
        "1s",
        "--redis",
        &url,
        "--starting",
        "earliest",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let mut config = pipeline_config(&pipeline_addr, &log, &hdfs);
    for (k, v) in secured.iter().flat_map(|(_, keys)| keys) {
        args.extend(["--conf".to_owned(), format!("{k}={v}")]);
        config.push_str(&format!("agent1.channels.kch.kafka.producer.{k} = {v}\n"));
        config.push_str(&format!("agent1.channels.kch.kafka.consumer.{k} = {v}\n"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut spark = Spark::wordcount(&args);
    let mut agent = Agent::start(tmp.path(), &config, "agent1");
    agent.wait_for_log("agent agent1 started").await;
    let sink = RedisSink::connect(&url, "wc").await.unwrap();

    // Bursts of lines while everything runs. The first has at most 10 lines: if `tail -F`
    // opens the file only after it was written, it prints the last 10 lines, so none is
    // lost either way; once they are counted, tail is known to be following the file.
    let sizes = [8, 1, 250, 40, 120, 3, 500];
    let mut written: Vec<String> = Vec::new();
    let mut want: HashMap<String, i64> = HashMap::new();
    for (i, size) in sizes.into_iter().enumerate() {
        let burst: Vec<String> = (0..size)
            .map(|_| log_line(&mut rng, written.len()))
            .collect();
        append(&log, &burst);
        for l in &burst {
            for w in java_split(l) {
                *want.entry(w.to_owned()).or_insert(0) += 1;
            }
        }
        written.extend(burst);
        // Every other burst is written on the heels of the previous one, so that one batch
        // may hold lines of two bursts; the others wait for Redis to hold every count.
        if i % 2 == 0 || i + 1 == sizes.len() {
            wait_counts(
                &sink,
                &want,
                &format!(
                    "redis to count the {} lines of bursts 0..={i}",
                    written.len()
                ),
            )
            .await;
        }
    }

    // Every line went through Kafka once: the offsets stored with the counts add up to the
    // lines written, and each is its partition's latest offset.
    let stored = sink.stored_offsets().await.unwrap();
    let mut total = 0;
    for p in 0..3 {
        let latest = client
            .list_offsets(TOPIC, p, OffsetSpec::Latest)
            .await
            .unwrap()
            .unwrap();
        let tp = sluice_spark::TopicPartition::new(TOPIC, p);
        assert_eq!(stored.get(&tp).copied().unwrap_or(0), latest, "{tp:?}");
        total += latest;
    }
    eprintln!("{} lines; offsets in redis: {stored:?}", written.len());
    assert_eq!(
        total,
        i64::try_from(written.len()).unwrap(),
        "records in {TOPIC}"
    );

    // The HDFS branch: stopping the agent closes (renames) its open files.
    let status = agent.terminate().await;
    assert!(
        status.success(),
        "agent exit status {status}\n{}",
        agent.log()
    );
    let hour_after = date("%Y-%m-%d/%H");
    let files = files_under(&hdfs);
    assert!(
        !files.is_empty(),
        "no hdfs sink output under {}",
        hdfs.display()
    );
    eprintln!("{} hdfs sink files under {}", files.len(), hdfs.display());
    let mut in_hdfs: Vec<String> = Vec::new();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy();
        assert!(
            name.starts_with("FlumeData.") && !name.ends_with(".tmp"),
            "{} is not a closed hdfs sink file",
            f.display()
        );
        // %Y-%m-%d/%H from the timestamp interceptor's header: an hour of this test.
        let bucket = f
            .parent()
            .unwrap()
            .strip_prefix(&hdfs)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            bucket == hour_before || bucket == hour_after,
            "{} is not under {hour_before} or {hour_after}",
            f.display()
        );
        // DataStream: the raw body and a newline per event.
        let text = fs::read_to_string(f).unwrap();
        assert!(text.ends_with('\n'), "{}", f.display());
        in_hdfs.extend(text.split_terminator('\n').map(str::to_owned));
    }
    let mut sorted = written.clone();
    sorted.sort();
    in_hdfs.sort();
    assert_eq!(
        in_hdfs.len(),
        sorted.len(),
        "lines in the hdfs sink's files"
    );
    assert_eq!(
        in_hdfs, sorted,
        "the hdfs sink's files hold every line once"
    );

    // The word count stops cleanly, and nothing more was counted after the last check.
    let status = spark.interrupt(STEP).await;
    assert!(
        status.success(),
        "sluice-spark exit status {status}\n{}",
        spark.stderr()
    );
    assert_eq!(sink.counts().await.unwrap(), want, "final counts in redis");
}
