//! Test fixtures: the real `sluice` broker (`<target>/debug/sluice`, found next to this test
//! executable, or `$SLUICE_BIN`) on `127.0.0.1:0` in a temp dir; a real `redis-server` on a
//! free port with persistence off; the `sluice-spark` binary as a child process; a
//! CreatePartitions call; and polling helpers with deadlines. Everything is killed on drop.

use std::fs::{self, File};
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::{CreatePartitionsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use sluice_client::{Client, ClientConfig, Connection, ProduceOptions, ProduceRecord};
use tempfile::TempDir;

/// How long a broker or Redis may take to come up.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// Broker config for tests: groups form as soon as the first member joins.
const BROKER_CONFIG: &str = "[group]\ninitial_rebalance_delay_ms = 0\n";

fn sluice_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SLUICE_BIN") {
        return PathBuf::from(p);
    }
    // <target>/debug/deps/it-HASH → <target>/debug/sluice
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .and_then(Path::parent)
        .map(|d| d.join("sluice"))
        .unwrap()
}

/// The `sluice-spark` binary built with these tests.
pub fn spark_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sluice-spark"))
}

/// A running broker process.
pub struct Broker {
    child: Option<Child>,
    addr: String,
    tmp: TempDir,
}

impl Broker {
    /// Starts a broker on an ephemeral port.
    pub fn start() -> Broker {
        let bin = sluice_bin();
        assert!(
            bin.exists(),
            "broker binary {} not found: run `cargo build --bin sluice` (same CARGO_TARGET_DIR) \
             or set SLUICE_BIN",
            bin.display()
        );
        let tmp = tempfile::Builder::new()
            .prefix("sluice-spark-it-")
            .tempdir()
            .unwrap();
        fs::create_dir_all(tmp.path().join("data")).unwrap();
        fs::write(tmp.path().join("sluice.toml"), BROKER_CONFIG).unwrap();
        let stderr = File::create(tmp.path().join("stderr.log")).unwrap();
        let mut child = Command::new(&bin)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(tmp.path().join("data"))
            .arg("--config")
            .arg(tmp.path().join("sluice.toml"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let lines = follow(child.stdout.take().unwrap());
        let addr = wait_line(&lines, START_DEADLINE, |l| {
            l.trim()
                .strip_prefix("listening on ")
                .map(|a| a.trim().to_owned())
        });
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "broker never printed `listening on`\n{}",
                fs::read_to_string(tmp.path().join("stderr.log")).unwrap_or_default()
            );
        };
        Broker {
            child: Some(child),
            addr,
            tmp,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// A client for this broker with short retry pauses.
    pub async fn client(&self) -> Client {
        Client::connect(test_config(self.addr())).await.unwrap()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if thread::panicking() {
            eprintln!(
                "----- broker stderr -----\n{}",
                fs::read_to_string(self.tmp.path().join("stderr.log")).unwrap_or_default()
            );
        }
    }
}

/// Client settings for tests: quick retries, bounded waits.
pub fn test_config(addr: &str) -> ClientConfig {
    let mut c = ClientConfig::new([addr]).with_client_id("sluice-spark-it");
    c.retry_backoff = Duration::from_millis(20);
    c.retry_backoff_max = Duration::from_millis(200);
    c.request_timeout = Duration::from_secs(15);
    c
}

/// A free TCP port on 127.0.0.1 (bound and released; the caller binds it next).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `redis-server` of our own.
pub struct Redis {
    child: Option<Child>,
    port: u16,
    _tmp: TempDir,
}

impl Redis {
    /// Starts `redis-server` on a free port in a temp dir with persistence off.
    pub fn start() -> Redis {
        let which = Command::new("sh")
            .arg("-c")
            .arg("command -v redis-server")
            .output()
            .unwrap();
        assert!(
            which.status.success(),
            "redis-server is not installed: run compat-tests/scripts/install-redis.sh"
        );
        let tmp = tempfile::Builder::new()
            .prefix("sluice-spark-redis-")
            .tempdir()
            .unwrap();
        for _attempt in 0..5 {
            let port = free_port();
            let mut child = Command::new("redis-server")
                .arg("--port")
                .arg(port.to_string())
                .arg("--bind")
                .arg("127.0.0.1")
                .arg("--save")
                .arg("")
                .arg("--appendonly")
                .arg("no")
                .arg("--dir")
                .arg(tmp.path())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            let lines = follow(child.stdout.take().unwrap());
            let ready = wait_line(&lines, START_DEADLINE, |l| {
                l.contains("Ready to accept connections").then_some(())
            });
            if ready.is_some() {
                return Redis {
                    child: Some(child),
                    port,
                    _tmp: tmp,
                };
            }
            // Lost the port race (or another failure): try another port.
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("redis-server did not start");
    }

    /// `redis://127.0.0.1:PORT/DB`.
    pub fn url(&self, db: u32) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Lines of a child's output, collected by a thread for the child's whole life.
#[derive(Clone)]
pub struct Lines {
    rx: Arc<Mutex<mpsc::Receiver<String>>>,
    all: Arc<Mutex<Vec<String>>>,
}

impl Lines {
    /// Every line read so far (waiting for none).
    pub fn snapshot(&self) -> Vec<String> {
        self.drain();
        self.all.lock().unwrap().clone()
    }

    fn drain(&self) {
        let rx = self.rx.lock().unwrap();
        while let Ok(l) = rx.try_recv() {
            self.all.lock().unwrap().push(l);
        }
    }
}

/// Starts a thread that reads `out` line by line until it closes.
pub fn follow(out: impl std::io::Read + Send + 'static) -> Lines {
    let (tx, rx) = mpsc::channel::<String>();
    thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Lines {
        rx: Arc::new(Mutex::new(rx)),
        all: Arc::new(Mutex::new(Vec::new())),
    }
}

/// Waits up to `deadline` for a line for which `pick` says `Some`.
pub fn wait_line<T>(
    lines: &Lines,
    deadline: Duration,
    mut pick: impl FnMut(&str) -> Option<T>,
) -> Option<T> {
    let end = Instant::now() + deadline;
    let rx = lines.rx.lock().unwrap();
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let found = pick(&line);
                lines.all.lock().unwrap().push(line);
                if found.is_some() {
                    return found;
                }
            }
            Err(_) => return None,
        }
    }
}

/// A name unique within this test process.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Calls `check` until it returns `Some`, pausing briefly between tries; panics with `what`
/// after `deadline`. The pause only paces the polling; the deadline is what bounds it.
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Produces `lines` to one partition, in one batch.
pub async fn produce_lines(client: &Client, topic: &str, partition: i32, lines: &[String]) -> i64 {
    let records: Vec<ProduceRecord> = lines
        .iter()
        .map(|l| ProduceRecord::new(l.clone().into_bytes()))
        .collect();
    client
        .produce(topic, partition, &records, &ProduceOptions::default())
        .await
        .unwrap()
}

/// Grows `topic` to `count` partitions (CreatePartitions; sluice-client has no call for it).
pub async fn create_partitions(addr: &str, topic: &str, count: i32) {
    let mut conn = Connection::open(addr, &test_config(addr)).await.unwrap();
    let request = CreatePartitionsRequest::default()
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_count(count)])
        .with_timeout_ms(15_000);
    let resp = conn
        .call(1, &request, Duration::from_secs(15))
        .await
        .unwrap();
    for r in &resp.results {
        assert_eq!(
            r.error_code, 0,
            "CreatePartitions {topic}: {:?}",
            r.error_message
        );
    }
}
