//! Process harness: starts the built `sluice` binary on an ephemeral port in a temp dir, restarts
//! and kills it, and runs the real clients (Kafka's Java tools, the venv's Python, kcat) with
//! timeouts. Also reads Kafka's on-disk segment layout so tests can check what the broker stored.
//! Nothing here speaks the Kafka protocol: that is left to the clients under test.

use std::fs;
use std::io::{Read, Write};
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

// The kit's names for these are `wait_until` and `unique`; the tests here were written
// against `poll_until(deadline, cond) -> bool` and `unique_topic`.
pub(crate) use sluice_testkit::{unique as unique_topic, wait_until as poll_until, workspace_root};

/// How long the broker may take to print its `listening on` line.
const START_DEADLINE: Duration = Duration::from_secs(20);
/// How long a process may take to exit after `kill -9`.
const STOP_DEADLINE: Duration = Duration::from_secs(20);
/// Default limit for one run of an external client.
pub(crate) const TOOL_TIMEOUT: Duration = Duration::from_secs(90);

const INSTALL_HINT: &str = "run `bash compat-tests/scripts/install-all.sh` first";

/// `compat-tests/`.
pub(crate) fn compat_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The kit's broker process (stop, restart, restart_on_same_port, kill9, start_again,
/// stderr, data_dir through `Deref`), started the way these tests want it: `RUST_LOG=info`
/// unless the test run sets one, and a `--config` file only when a test passes one.
pub(crate) struct Broker(sluice_testkit::Broker);

impl Broker {
    /// Starts a broker with default config.
    pub(crate) fn start() -> Broker {
        Self::start_full(None, &[], &[])
    }

    /// Starts a broker with `toml` as its `--config` file.
    pub(crate) fn start_with_config(toml: &str) -> Broker {
        Self::start_full(Some(toml), &[], &[])
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

    fn start_full(toml: Option<&str>, env: &[(&str, &str)], wrapper: &[&str]) -> Broker {
        let mut b = sluice_testkit::Broker::builder()
            .temp_prefix("sluice-compat-")
            .start_deadline(START_DEADLINE)
            .default_rust_log("info")
            .wrapper(wrapper);
        if let Some(t) = toml {
            b = b.config(t);
        }
        for (k, v) in env {
            b = b.env(k, v);
        }
        Broker(b.start())
    }

    /// Directory of one partition in Kafka's layout: `DATA/TOPIC-PARTITION`.
    pub(crate) fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.0.data_dir().join(format!("{topic}-{partition}"))
    }
}

impl Deref for Broker {
    type Target = sluice_testkit::Broker;

    fn deref(&self) -> &sluice_testkit::Broker {
        &self.0
    }
}

impl DerefMut for Broker {
    fn deref_mut(&mut self) -> &mut sluice_testkit::Broker {
        &mut self.0
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
    /// Starts `cmd` with its stdout and stderr collected.
    pub(crate) fn spawn(mut cmd: Command) -> Background {
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
