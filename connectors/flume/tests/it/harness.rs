//! Test harness: the shared test kit's `sluice` broker, and the real `sluice-flume` binary in a
//! temp dir, killed on drop (their output is printed when a test fails). Plus a Kafka client
//! for the broker and the agent's own waits.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use sluice_client::{Client, ClientConfig};
pub use sluice_testkit::{eventually, free_port, poll_until, sigterm_and_wait, unique, wait_until};
use tempfile::TempDir;

/// The agent binary built with these tests.
pub fn flume_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sluice-flume"))
}

/// A running `sluice` broker (the kit's, plus a client for it), or an external broker.
///
/// With `SLUICE_FLUME_IT_BOOTSTRAP=host:port` the tests that call [`Broker::start_or_external`]
/// run against that broker instead (Apache Kafka with `group.initial.rebalance.delay.ms=0`,
/// say), to check that the agent behaves the same on Kafka and on Sluice.
pub struct Broker(Option<sluice_testkit::Broker>, String);

impl Broker {
    /// Start a broker on an ephemeral port with groups forming at once.
    pub fn start() -> Broker {
        let b = sluice_testkit::Broker::builder()
            .bin(sluice_testkit::sluice_bin_beside_test_exe())
            .temp_prefix("sluice-flume-broker-")
            .config("[group]\ninitial_rebalance_delay_ms = 0\n")
            .start();
        let addr = b.addr().to_owned();
        Broker(Some(b), addr)
    }

    /// `$SLUICE_FLUME_IT_BOOTSTRAP` when set, else [`Broker::start`].
    pub fn start_or_external() -> Broker {
        match std::env::var("SLUICE_FLUME_IT_BOOTSTRAP") {
            Ok(addr) if !addr.is_empty() => Broker(None, addr),
            _ => Broker::start(),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.1
    }

    /// A Kafka client for this broker with short retries.
    pub async fn client(&self) -> Client {
        let mut c = ClientConfig::new([self.addr()]).with_client_id("sluice-flume-it");
        c.retry_backoff = Duration::from_millis(20);
        c.retry_backoff_max = Duration::from_millis(200);
        c.request_timeout = Duration::from_secs(15);
        Client::connect(c).await.unwrap()
    }
}

/// A running `sluice-flume agent`.
pub struct Agent {
    child: Option<Child>,
    /// The agent's temp dir (config file, logs; tests may put their data dirs here too).
    pub dir: TempDir,
    config: PathBuf,
    name: String,
    extra: Vec<String>,
    runs: u32,
}

impl Agent {
    /// Write `config` to `<tmp>/flume.properties` and start agent `name` with
    /// `-Dflume.root.logger=INFO,console` plus `extra` args. Returns at once; use
    /// [`Agent::wait_for_log`] to wait for a component to come up.
    pub fn start(config: &str, name: &str, extra: &[&str]) -> Agent {
        let dir = tempfile::Builder::new()
            .prefix("sluice-flume-agent-")
            .tempdir()
            .unwrap();
        Agent::start_in(dir, config, name, extra)
    }

    /// Like [`Agent::start`] but in a dir the test prepared (data dirs in it already).
    pub fn start_in(dir: TempDir, config: &str, name: &str, extra: &[&str]) -> Agent {
        let path = dir.path().join("flume.properties");
        fs::write(&path, config).unwrap();
        let mut a = Agent {
            child: None,
            dir,
            config: path,
            name: name.to_string(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            runs: 0,
        };
        a.spawn();
        a
    }

    /// The config file path.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    fn log_path(&self, run: u32) -> PathBuf {
        self.dir.path().join(format!("agent-{run}.log"))
    }

    fn spawn(&mut self) {
        let run = self.runs;
        self.runs += 1;
        let log = File::create(self.log_path(run)).unwrap();
        let child = Command::new(flume_bin())
            .arg("agent")
            .arg("--conf")
            .arg(self.dir.path())
            .arg("--conf-file")
            .arg(&self.config)
            .arg("--name")
            .arg(&self.name)
            .arg("-Dflume.root.logger=INFO,console")
            .args(&self.extra)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", flume_bin().display()));
        self.child = Some(child);
    }

    /// Everything this agent (all its runs) logged so far.
    pub fn log(&self) -> String {
        (0..self.runs)
            .map(|r| {
                let mut s = String::new();
                let _ = File::open(self.log_path(r)).and_then(|mut f| f.read_to_string(&mut s));
                s
            })
            .collect::<Vec<_>>()
            .join("\n----- restart -----\n")
    }

    /// The log of the current run only.
    pub fn current_log(&self) -> String {
        fs::read_to_string(self.log_path(self.runs.saturating_sub(1))).unwrap_or_default()
    }

    /// Wait until the current run's log contains `needle`; panics (with the log) after
    /// `deadline` or if the agent exits first.
    pub fn wait_for_log(&mut self, needle: &str, deadline: Duration) {
        let mut child = self.child.take();
        let waited = wait_for_logged(child.as_mut(), || self.current_log(), needle, deadline);
        self.child = child;
        if let Err(why) = waited {
            panic!("agent {why}:\n{}", self.log());
        }
    }

    /// The process id of the current run.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// `kill -9` the agent.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start the agent again with the same config and args (after [`Agent::kill9`] or
    /// [`Agent::terminate`]).
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Send SIGTERM and wait (up to `deadline`) for the exit status.
    pub fn terminate(&mut self, deadline: Duration) -> ExitStatus {
        let Some(mut c) = self.child.take() else {
            panic!("agent is not running")
        };
        sigterm_and_wait(&mut c, deadline).unwrap_or_else(|| {
            panic!(
                "agent did not exit within {deadline:?} of SIGTERM:\n{}",
                self.log()
            )
        })
    }

    /// Wait for the agent to exit by itself (e.g. a bad config); returns status and log.
    pub fn wait_exit(&mut self, deadline: Duration) -> (ExitStatus, String) {
        let Some(mut c) = self.child.take() else {
            panic!("agent is not running")
        };
        let end = Instant::now() + deadline;
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                return (s, self.log());
            }
            if Instant::now() > end {
                let _ = c.kill();
                panic!("agent did not exit within {deadline:?}:\n{}", self.log());
            }
            thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
        if thread::panicking() {
            eprintln!("----- sluice-flume log -----\n{}", self.log());
        }
    }
}

/// Run `sluice-flume` with `args` to completion (for config-error tests); returns status,
/// stdout+stderr.
pub fn run_flume(args: &[&str], deadline: Duration) -> (ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let f = File::create(&out).unwrap();
    let mut c = Command::new(flume_bin())
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::from(f.try_clone().unwrap()))
        .stderr(Stdio::from(f))
        .spawn()
        .unwrap();
    let end = Instant::now() + deadline;
    loop {
        if let Some(s) = c.try_wait().unwrap() {
            return (s, fs::read_to_string(&out).unwrap_or_default());
        }
        if Instant::now() > end {
            let _ = c.kill();
            panic!("sluice-flume {args:?} did not exit within {deadline:?}");
        }
        thread::sleep(Duration::from_millis(25));
    }
}

/// Wait until `log()` contains `needle`. `Err` says why not: the process exited first, or
/// `deadline` passed.
pub fn wait_for_logged(
    mut child: Option<&mut Child>,
    log: impl Fn() -> String,
    needle: &str,
    deadline: Duration,
) -> Result<(), String> {
    let end = Instant::now() + deadline;
    loop {
        if log().contains(needle) {
            return Ok(());
        }
        if let Some(status) = child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
            return Err(format!("exited ({status}) before logging {needle:?}"));
        }
        if Instant::now() >= end {
            return Err(format!("did not log {needle:?} within {deadline:?}"));
        }
        thread::sleep(Duration::from_millis(25));
    }
}

/// Append `lines` to `path` (what `tail -F` follows), creating it and its directory.
pub fn append_lines(path: &Path, lines: &[String]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
    f.flush().unwrap();
}
