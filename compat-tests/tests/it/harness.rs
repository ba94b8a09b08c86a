//! Process harness: starts the built `sluice` binary on an ephemeral port in a temp dir, restarts
//! and kills it, and runs the real clients (Kafka's Java tools, the venv's Python, kcat) with
//! timeouts. Also reads Kafka's on-disk segment layout so tests can check what the broker stored.
//! Nothing here speaks the Kafka protocol: that is left to the clients under test.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long the broker may take to print its `listening on` line.
pub(crate) const START_DEADLINE: Duration = Duration::from_secs(20);
/// How long a clean (SIGTERM) shutdown may take.
pub(crate) const STOP_DEADLINE: Duration = Duration::from_secs(20);
/// Default limit for one run of an external client.
pub(crate) const TOOL_TIMEOUT: Duration = Duration::from_secs(90);

const INSTALL_HINT: &str = "run `bash compat-tests/scripts/install-all.sh` first";

/// Polls `cond` every 20 ms until it holds or `deadline` passes; returns whether it held.
/// The short sleep lives inside the loop, so it never stands in for synchronisation.
pub(crate) fn poll_until(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A topic name unique within this test process, so tests never share state by accident.
pub(crate) fn unique_topic(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The workspace root (`compat-tests/..`).
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("compat-tests has a parent dir")
        .to_path_buf()
}

/// `compat-tests/`.
pub(crate) fn compat_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sluice_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SLUICE_BIN") {
        return PathBuf::from(p);
    }
    workspace_root().join("target/debug/sluice")
}

/// A running broker process. Killed on drop; its stderr is printed if the test is panicking.
pub(crate) struct Broker {
    child: Option<Child>,
    addr: String,
    tmp: TempDir,
    config: Option<PathBuf>,
    runs: u32,
    /// `--listen` for the next start: `127.0.0.1:0`, or the old address after
    /// `restart_on_same_port`.
    listen: String,
    /// Extra environment for the broker process (e.g. a `RUST_LOG` filter).
    env: Vec<(String, String)>,
    /// A command the broker runs under, e.g. `prlimit --nofile=N:N --`; empty for none.
    wrapper: Vec<String>,
}

impl Broker {
    /// Starts a broker with default config.
    pub(crate) fn start() -> Broker {
        Self::start_inner(None)
    }

    /// Starts a broker with `toml` as its `--config` file.
    pub(crate) fn start_with_config(toml: &str) -> Broker {
        Self::start_inner(Some(toml))
    }

    /// Starts a broker with an optional `--config` file and extra environment variables.
    pub(crate) fn start_with_env(toml: Option<&str>, env: &[(&str, &str)]) -> Broker {
        Self::start_full(toml, env, &[])
    }

    /// Starts a broker under `wrapper` (a command that ends by running its arguments, such
    /// as `prlimit --nofile=N:N --`); restarts run under it too, until `set_wrapper`.
    pub(crate) fn start_wrapped(toml: Option<&str>, wrapper: &[&str]) -> Broker {
        Self::start_full(toml, &[], wrapper)
    }

    /// The wrapper for the next start (see `start_wrapped`); empty for none.
    pub(crate) fn set_wrapper(&mut self, wrapper: &[&str]) {
        self.wrapper = wrapper.iter().map(|w| w.to_string()).collect();
    }

    fn start_inner(toml: Option<&str>) -> Broker {
        Self::start_full(toml, &[], &[])
    }

    fn start_full(toml: Option<&str>, env: &[(&str, &str)], wrapper: &[&str]) -> Broker {
        let bin = sluice_bin();
        assert!(
            bin.exists(),
            "broker binary {} not found: run `cargo build --bin sluice` (or set SLUICE_BIN)",
            bin.display()
        );
        let tmp = tempfile::Builder::new()
            .prefix("sluice-compat-")
            .tempdir()
            .expect("create temp dir");
        fs::create_dir_all(tmp.path().join("data")).expect("create data dir");
        let config = toml.map(|t| {
            let p = tmp.path().join("sluice.toml");
            fs::write(&p, t).expect("write config");
            p
        });
        let mut b = Broker {
            child: None,
            addr: String::new(),
            tmp,
            config,
            runs: 0,
            listen: "127.0.0.1:0".to_string(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            wrapper: wrapper.iter().map(|w| w.to_string()).collect(),
        };
        b.spawn();
        b
    }

    /// `host:port` the broker listens on (always 127.0.0.1).
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// The broker's data dir, which survives restarts.
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    /// Directory of one partition in Kafka's layout: `DATA/TOPIC-PARTITION`.
    pub(crate) fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.data_dir().join(format!("{topic}-{partition}"))
    }

    fn stderr_path(&self, run: u32) -> PathBuf {
        self.tmp.path().join(format!("stderr-{run}.log"))
    }

    /// Stderr of the current (latest) run.
    pub(crate) fn stderr(&self) -> String {
        fs::read_to_string(self.stderr_path(self.runs.saturating_sub(1))).unwrap_or_default()
    }

    /// Stderr of every run so far, oldest first.
    pub(crate) fn all_stderr(&self) -> String {
        let mut s = String::new();
        for run in 0..self.runs {
            s.push_str(&format!("----- broker run {run} stderr -----\n"));
            s.push_str(&fs::read_to_string(self.stderr_path(run)).unwrap_or_default());
        }
        s
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "broker already running");
        let run = self.runs;
        self.runs += 1;
        let stderr = File::create(self.stderr_path(run)).expect("create stderr log");
        let mut cmd = match self.wrapper.split_first() {
            Some((prog, args)) => {
                let mut c = Command::new(prog);
                c.args(args).arg(sluice_bin());
                c
            }
            None => Command::new(sluice_bin()),
        };
        cmd.arg("--listen")
            .arg(&self.listen)
            .arg("--data-dir")
            .arg(self.data_dir());
        if let Some(c) = &self.config {
            cmd.arg("--config").arg(c);
        }
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        // Plain log lines in the stderr file, whatever the tracing defaults are.
        cmd.env("NO_COLOR", "1");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", sluice_bin().display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel::<String>();
        // Keeps draining stdout for the broker's whole life, so it never blocks on a full pipe.
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    // Receiver gone: keep draining without forwarding.
                }
            }
        });
        let end = Instant::now() + START_DEADLINE;
        let addr = loop {
            let left = end.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(a) = line.trim().strip_prefix("listening on ") {
                        break a.trim().to_string();
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "broker printed no `listening on` line within {START_DEADLINE:?}\n{}",
                        self.all_stderr()
                    );
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait().ok();
                    panic!(
                        "broker exited ({status:?}) before printing `listening on`\n{}",
                        self.all_stderr()
                    );
                }
            }
        };
        assert!(
            addr.starts_with("127.0.0.1:"),
            "broker listens on {addr}, expected 127.0.0.1:PORT"
        );
        self.addr = addr;
        self.child = Some(child);
    }

    /// Sends SIGTERM and waits for a clean exit; asserts exit status 0.
    pub(crate) fn stop(&mut self) {
        let mut child = self.child.take().expect("broker is running");
        let st = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -TERM failed");
        let mut status: Option<ExitStatus> = None;
        let exited = poll_until(STOP_DEADLINE, || {
            status = child.try_wait().expect("try_wait");
            status.is_some()
        });
        if !exited {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "broker did not exit within {STOP_DEADLINE:?} of SIGTERM\n{}",
                self.all_stderr()
            );
        }
        let status = status.expect("exited");
        assert!(
            status.success(),
            "broker exited with {status} after SIGTERM, expected 0\n{}",
            self.all_stderr()
        );
    }

    /// Clean restart: SIGTERM, wait, start again on the same data dir (new port).
    pub(crate) fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Clean restart that listens on the same address again, so clients that stay up across
    /// the restart can reconnect to the address they know.
    pub(crate) fn restart_on_same_port(&mut self) {
        self.stop();
        self.listen = self.addr.clone();
        self.spawn();
        assert_eq!(
            self.addr, self.listen,
            "broker came back on another address"
        );
    }

    /// `kill -9`: no chance to flush anything.
    pub(crate) fn kill9(&mut self) {
        let mut child = self.child.take().expect("broker is running");
        child.kill().expect("SIGKILL broker");
        child.wait().expect("reap broker");
    }

    /// Starts the broker again on the same data dir after `stop` or `kill9`.
    pub(crate) fn start_again(&mut self) {
        self.spawn();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if thread::panicking() {
            eprintln!("{}", self.all_stderr());
        }
    }
}

/// Runs `cmd` with `stdin` fed in, killing it after `timeout`. Returns its output; panics on
/// timeout, showing what it printed so far.
pub(crate) fn run_with_timeout(
    mut cmd: Command,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
) -> Output {
    let what = format!("{cmd:?}");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        thread::spawn(move || {
            // A tool that exits early closes the pipe; its exit status tells the story.
            let _ = pipe.write_all(&input);
        });
    }
    let out_reader = drain(child.stdout.take().expect("piped stdout"));
    let err_reader = drain(child.stderr.take().expect("piped stderr"));
    let mut status = None;
    let done = poll_until(timeout, || {
        status = child.try_wait().expect("try_wait");
        status.is_some()
    });
    if !done {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stdout = out_reader.join().expect("stdout reader");
    let stderr = err_reader.join().expect("stderr reader");
    if !done {
        panic!(
            "timed out after {timeout:?}: {what}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        );
    }
    Output {
        status: status.expect("exited"),
        stdout,
        stderr,
    }
}

fn drain(mut r: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// Panics with the command's stdout and stderr unless it exited 0.
pub(crate) fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Main classes of the stock Kafka 4.x tools, as named in Kafka's `bin/*.sh`.
pub(crate) mod class {
    /// `bin/kafka-topics.sh`
    pub(crate) const TOPICS: &str = "org.apache.kafka.tools.TopicCommand";
    /// `bin/kafka-console-producer.sh`
    pub(crate) const CONSOLE_PRODUCER: &str = "org.apache.kafka.tools.ConsoleProducer";
    /// `bin/kafka-console-consumer.sh`
    pub(crate) const CONSOLE_CONSUMER: &str = "org.apache.kafka.tools.consumer.ConsoleConsumer";
    /// `bin/kafka-consumer-groups.sh`
    pub(crate) const CONSUMER_GROUPS: &str =
        "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand";
}

/// Runs one Kafka 4.3.1 tool class via `scripts/kafka-run-class.sh`.
pub(crate) fn java_tool(class: &str, args: &[&str], stdin: Option<Vec<u8>>) -> Output {
    let mut cmd = Command::new("bash");
    cmd.arg(java_tool_script()).arg(class).args(args);
    run_with_timeout(cmd, stdin, TOOL_TIMEOUT)
}

/// A client process running in the background, for tests that need two clients at once.
/// Its stdout and stderr are collected while it runs. Killed on drop if still running.
pub(crate) struct Background {
    child: Option<Child>,
    what: String,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<thread::JoinHandle<()>>,
}

impl Background {
    fn spawn(mut cmd: Command) -> Background {
        let what = format!("{cmd:?}");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect(child.stdout.take().expect("piped stdout"), stdout.clone()),
            collect(child.stderr.take().expect("piped stderr"), stderr.clone()),
        ];
        Background {
            child: Some(child),
            what,
            stdout,
            stderr,
            readers,
        }
    }

    /// Everything it has written to stdout so far.
    pub(crate) fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    /// Everything it has written to stderr so far.
    pub(crate) fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Whether the process has exited.
    pub(crate) fn exited(&mut self) -> bool {
        match &mut self.child {
            Some(c) => c.try_wait().expect("try_wait").is_some(),
            None => true,
        }
    }

    /// Sends SIGTERM (a JVM runs its shutdown hooks, so a console consumer closes its consumer
    /// and commits) and waits up to `timeout` for the exit; then returns the whole output.
    /// Panics if the process does not exit in time.
    pub(crate) fn terminate(self, timeout: Duration) -> Output {
        self.signal("-TERM", timeout)
    }

    /// `kill -9`: the process gets no chance to leave a group or commit. Returns its output.
    pub(crate) fn kill9(self) -> Output {
        self.signal("-KILL", STOP_DEADLINE)
    }

    fn signal(mut self, signal: &str, timeout: Duration) -> Output {
        let mut child = self.child.take().expect("process handle");
        if child.try_wait().expect("try_wait").is_none() {
            // It may exit between the check and the signal; its status says what happened.
            let _ = Command::new("kill")
                .arg(signal)
                .arg(child.id().to_string())
                .status();
        }
        let mut status = None;
        let done = poll_until(timeout, || {
            status = child.try_wait().expect("try_wait");
            status.is_some()
        });
        if !done {
            let _ = child.kill();
            let _ = child.wait();
        }
        for r in self.readers.drain(..) {
            r.join().expect("output reader");
        }
        assert!(
            done,
            "{} did not exit within {timeout:?} of kill {signal}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what,
            self.stdout(),
            self.stderr()
        );
        Output {
            status: status.expect("exited"),
            stdout: self.stdout.lock().unwrap().clone(),
            stderr: self.stderr.lock().unwrap().clone(),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn collect(mut r: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => into.lock().unwrap().extend_from_slice(&buf[..n]),
            }
        }
    })
}

/// Starts one Kafka 4.3.1 tool class in the background (see [`java_tool`]).
pub(crate) fn spawn_java_tool(class: &str, args: &[&str]) -> Background {
    let mut cmd = Command::new("bash");
    cmd.arg(java_tool_script()).arg(class).args(args);
    Background::spawn(cmd)
}

fn java_tool_script() -> PathBuf {
    let marker = compat_dir().join(".cache/kafka-4.3.1/.installed");
    assert!(
        marker.exists(),
        "Kafka Java tools are not installed ({} missing): {INSTALL_HINT}",
        marker.display()
    );
    compat_dir().join("scripts/kafka-run-class.sh")
}

/// Runs `compat-tests/python/<script>` with the venv's Python.
pub(crate) fn python(script: &str, args: &[&str]) -> Output {
    let py = compat_dir().join(".cache/venv/bin/python");
    let marker = compat_dir().join(".cache/venv/.installed");
    assert!(
        py.exists() && marker.exists(),
        "Python clients are not installed ({} missing): {INSTALL_HINT}",
        marker.display()
    );
    let mut cmd = Command::new(py);
    cmd.arg(compat_dir().join("python").join(script))
        .args(args)
        .env("PYTHONUNBUFFERED", "1");
    run_with_timeout(cmd, None, TOOL_TIMEOUT)
}

/// Runs kcat with `args`, feeding `stdin` if given.
pub(crate) fn kcat(args: &[&str], stdin: Option<Vec<u8>>) -> Output {
    let found = Command::new("kcat")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(found, "kcat is not on PATH: {INSTALL_HINT}");
    let mut cmd = Command::new("kcat");
    cmd.args(args);
    run_with_timeout(cmd, stdin, TOOL_TIMEOUT)
}

/// One record batch header as stored in a Kafka `.log` segment (magic v2).
#[derive(Debug, Clone)]
pub(crate) struct BatchInfo {
    /// First offset in the batch.
    pub(crate) base_offset: i64,
    /// Compression codec (attributes bits 0..2): 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub(crate) codec: u8,
    /// -1 for a non-idempotent producer.
    pub(crate) producer_id: i64,
    /// Sequence of the first record, -1 without idempotence.
    pub(crate) base_sequence: i32,
    /// Records in the batch.
    pub(crate) record_count: i32,
}

/// Codec ids as in the batch attributes.
pub(crate) fn codec_id(name: &str) -> u8 {
    match name {
        "none" => 0,
        "gzip" => 1,
        "snappy" => 2,
        "lz4" => 3,
        "zstd" => 4,
        other => panic!("unknown codec {other}"),
    }
}

/// Reads every batch header of every `.log` segment of one partition, in offset order.
/// Panics if a segment does not follow Kafka's batch framing.
pub(crate) fn read_batches(partition_dir: &Path) -> Vec<BatchInfo> {
    let mut segs: Vec<PathBuf> = fs::read_dir(partition_dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", partition_dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    segs.sort();
    let mut out = Vec::new();
    for seg in segs {
        let bytes = fs::read(&seg).unwrap_or_else(|e| panic!("read {}: {e}", seg.display()));
        let mut pos = 0usize;
        while pos + 61 <= bytes.len() {
            let be_i64 = |at: usize| i64::from_be_bytes(bytes[at..at + 8].try_into().unwrap());
            let be_i32 = |at: usize| i32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
            let base_offset = be_i64(pos);
            let batch_len = usize::try_from(be_i32(pos + 8)).expect("non-negative batch length");
            let magic = bytes[pos + 16];
            assert_eq!(
                magic,
                2,
                "{}: batch at byte {pos} has magic {magic}",
                seg.display()
            );
            let attributes = i16::from_be_bytes([bytes[pos + 21], bytes[pos + 22]]);
            out.push(BatchInfo {
                base_offset,
                codec: u8::try_from(attributes & 0x7).expect("3 bits"),
                producer_id: be_i64(pos + 43),
                base_sequence: be_i32(pos + 53),
                record_count: be_i32(pos + 57),
            });
            pos += 12 + batch_len;
        }
        assert_eq!(
            pos,
            bytes.len(),
            "{}: trailing bytes after the last batch",
            seg.display()
        );
    }
    out
}
