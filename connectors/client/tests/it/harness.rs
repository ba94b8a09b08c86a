//! Starts the built `sluice` binary (`<workspace>/target/debug/sluice`, or `$SLUICE_BIN`) on
//! `127.0.0.1:0` with a temp data dir and a config that turns off the initial rebalance
//! delay, waits for its `listening on` line, and kills it on drop. Also: unique names, a
//! client with quick retries, and a polling helper with a deadline.
//!
//! With `SLUICE_CLIENT_IT_BOOTSTRAP=host:port` the tests run against that broker instead
//! (say, Apache Kafka with `group.initial.rebalance.delay.ms=0`), to check that the client
//! and Sluice agree with Kafka; tests that restart the broker are skipped then.

use std::fs::{self, File};
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use sluice_client::{Client, ClientConfig};
use tempfile::TempDir;

/// How long the broker may take to print `listening on`.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// Broker config for tests: groups form as soon as the first member joins.
const BROKER_CONFIG: &str = "[group]\ninitial_rebalance_delay_ms = 0\n";

fn sluice_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SLUICE_BIN") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/sluice")
}

/// A running broker process.
pub struct Broker {
    child: Option<Child>,
    addr: String,
    tmp: TempDir,
    runs: u32,
}

impl Broker {
    /// Starts a broker on an ephemeral port (or uses `$SLUICE_CLIENT_IT_BOOTSTRAP`).
    pub fn start() -> Broker {
        if let Some(addr) = std::env::var("SLUICE_CLIENT_IT_BOOTSTRAP")
            .ok()
            .filter(|a| !a.is_empty())
        {
            return Broker {
                child: None,
                addr,
                tmp: tempfile::tempdir().unwrap(),
                runs: 0,
            };
        }
        let bin = sluice_bin();
        assert!(
            bin.exists(),
            "broker binary {} not found: run `cargo build --bin sluice` or set SLUICE_BIN",
            bin.display()
        );
        let tmp = tempfile::Builder::new()
            .prefix("sluice-client-it-")
            .tempdir()
            .unwrap();
        fs::create_dir_all(tmp.path().join("data")).unwrap();
        fs::write(tmp.path().join("sluice.toml"), BROKER_CONFIG).unwrap();
        let mut b = Broker {
            child: None,
            addr: String::new(),
            tmp,
            runs: 0,
        };
        b.spawn("127.0.0.1:0");
        b
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether the broker is an external one this harness cannot restart.
    pub fn is_external(&self) -> bool {
        self.runs == 0
    }

    /// Kills the broker and starts it again on the same port and data dir.
    pub fn restart_on_same_port(&mut self) {
        self.kill();
        let listen = self.addr.clone();
        // The old socket is closed; SO_REUSEADDR (tokio's default on Unix listeners) lets
        // the new process bind the same port even with connections in TIME_WAIT.
        self.spawn(&listen);
    }

    fn stderr_path(&self, run: u32) -> PathBuf {
        self.tmp.path().join(format!("stderr-{run}.log"))
    }

    fn all_stderr(&self) -> String {
        (0..self.runs)
            .map(|r| fs::read_to_string(self.stderr_path(r)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n----- restart -----\n")
    }

    fn spawn(&mut self, listen: &str) {
        let run = self.runs;
        self.runs += 1;
        let stderr = File::create(self.stderr_path(run)).unwrap();
        let mut child = Command::new(sluice_bin())
            .arg("--listen")
            .arg(listen)
            .arg("--data-dir")
            .arg(self.tmp.path().join("data"))
            .arg("--config")
            .arg(self.tmp.path().join("sluice.toml"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", sluice_bin().display()));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        // Drains stdout for the broker's whole life, so it never blocks on a full pipe.
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _receiver_may_be_gone = tx.send(line);
            }
        });
        let end = Instant::now() + START_DEADLINE;
        let addr = loop {
            match rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    if let Some(a) = line.trim().strip_prefix("listening on ") {
                        break a.trim().to_owned();
                    }
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "broker never printed `listening on` ({e:?})\n{}",
                        self.all_stderr()
                    );
                }
            }
        };
        assert!(addr.starts_with("127.0.0.1:"), "listening on {addr}");
        self.addr = addr;
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A client for this broker with short retry pauses.
    pub async fn client(&self) -> Client {
        Client::connect(test_config(self.addr())).await.unwrap()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
        if thread::panicking() {
            eprintln!("----- broker stderr -----\n{}", self.all_stderr());
        }
    }
}

/// Client settings for tests: quick retries, bounded waits.
pub fn test_config(addr: &str) -> ClientConfig {
    let mut c = ClientConfig::new([addr]).with_client_id("sluice-client-it");
    c.retry_backoff = Duration::from_millis(20);
    c.retry_backoff_max = Duration::from_millis(200);
    c.request_timeout = Duration::from_secs(15);
    c
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
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Bounds a future that must finish; panics with `what` after `deadline`.
pub async fn within<T>(deadline: Duration, what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(deadline, f)
        .await
        .unwrap_or_else(|_| panic!("timed out after {deadline:?} waiting for {what}"))
}
