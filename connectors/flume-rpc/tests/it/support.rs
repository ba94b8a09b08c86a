//! Shared test helpers: tracing to the test output, in-process handlers that record what they
//! get, free ports, polling with deadlines, and a real Apache Flume agent process (killed on
//! drop) run from the jars `compat-tests/scripts/install-flume.sh` installs.

use std::fs::{self, File};
use std::future::Future;
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use sluice_flume_rpc::{AvroSourceHandler, Event, EventBatch, SparkSinkHandler, Status};
use tokio::sync::Notify;

/// Deadline for anything involving a JVM (start-up is slow on a loaded 2-core machine).
pub const JAVA_DEADLINE: Duration = Duration::from_secs(120);

pub fn init_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "sluice_flume_rpc=debug".into()),
            )
            .with_test_writer()
            .try_init();
    });
}

/// Polls `check` until it returns `Some`, or panics with `what` after `limit`.
pub async fn poll_until<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < end,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A port that was free a moment ago (for Java configs, which need a number up front).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An avro source handler that records every event and answers `status`.
pub struct Collector {
    pub events: Mutex<Vec<Event>>,
    pub calls: Mutex<Vec<&'static str>>,
    pub status: Mutex<Status>,
    notify: Notify,
}

impl Collector {
    pub fn new() -> Arc<Collector> {
        Arc::new(Collector {
            events: Mutex::new(Vec::new()),
            calls: Mutex::new(Vec::new()),
            status: Mutex::new(Status::Ok),
            notify: Notify::new(),
        })
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// Waits until `pred` holds for the events received so far; on timeout, says how many
    /// events did arrive.
    pub async fn wait_for(
        &self,
        limit: Duration,
        pred: impl Fn(&[Event]) -> bool,
    ) -> Result<(), String> {
        let end = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.notify.notified();
            if pred(&self.events.lock().unwrap()) {
                return Ok(());
            }
            if tokio::time::timeout_at(end, notified).await.is_err() {
                let got = self.events.lock().unwrap().len();
                return Err(format!("timed out after {limit:?} ({got} events received)"));
            }
        }
    }

    fn record(&self, call: &'static str, events: Vec<Event>) -> Status {
        self.calls.lock().unwrap().push(call);
        self.events.lock().unwrap().extend(events);
        self.notify.notify_waiters();
        *self.status.lock().unwrap()
    }
}

#[async_trait::async_trait]
impl AvroSourceHandler for Collector {
    async fn append(&self, event: Event) -> Status {
        self.record("append", vec![event])
    }
    async fn append_batch(&self, events: Vec<Event>) -> Status {
        self.record("appendBatch", events)
    }
}

/// A SparkSink stand-in: hands out numbered batches from a queue, records acks and nacks,
/// and puts nacked batches back at the front.
pub struct FakeSparkSink {
    pub state: Mutex<SparkState>,
}

#[derive(Default)]
pub struct SparkState {
    pub queue: Vec<Event>,
    pub next_seq: u64,
    pub outstanding: Vec<(String, Vec<Event>)>,
    pub acked: Vec<String>,
    pub nacked: Vec<String>,
}

impl FakeSparkSink {
    pub fn new(events: Vec<Event>) -> Arc<FakeSparkSink> {
        Arc::new(FakeSparkSink {
            state: Mutex::new(SparkState {
                queue: events,
                ..SparkState::default()
            }),
        })
    }
}

#[async_trait::async_trait]
impl SparkSinkHandler for FakeSparkSink {
    async fn get_event_batch(&self, n: i32) -> EventBatch {
        let mut s = self.state.lock().unwrap();
        let n = usize::try_from(n).unwrap_or(0).min(s.queue.len());
        if n == 0 {
            return EventBatch {
                error_msg: "no events".into(),
                ..EventBatch::default()
            };
        }
        let events: Vec<Event> = s.queue.drain(..n).collect();
        s.next_seq += 1;
        let seq = format!("seq-{}", s.next_seq);
        s.outstanding.push((seq.clone(), events.clone()));
        EventBatch {
            error_msg: String::new(),
            sequence_number: seq,
            events,
        }
    }

    async fn ack(&self, sequence_number: String) {
        let mut s = self.state.lock().unwrap();
        s.outstanding.retain(|(q, _)| *q != sequence_number);
        s.acked.push(sequence_number);
    }

    async fn nack(&self, sequence_number: String) {
        let mut s = self.state.lock().unwrap();
        if let Some(i) = s
            .outstanding
            .iter()
            .position(|(q, _)| *q == sequence_number)
        {
            let (_, events) = s.outstanding.remove(i);
            let rest = std::mem::take(&mut s.queue);
            s.queue = events.into_iter().chain(rest).collect();
        }
        s.nacked.push(sequence_number);
    }
}

/// Where install-flume.sh puts Flume; panics naming the script when it is missing.
pub fn flume_home() -> PathBuf {
    let home = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../compat-tests/.cache/flume-1.11.0");
    assert!(
        home.join(".installed").exists() && home.join("lib").is_dir(),
        "Apache Flume 1.11.0 is not installed at {}: run compat-tests/scripts/install-flume.sh",
        home.display()
    );
    home
}

/// A real Flume agent `a1` running `config`, in a temp dir, logging to `<dir>/flume.log`.
pub struct FlumeAgent {
    child: Child,
    pub dir: tempfile::TempDir,
}

impl FlumeAgent {
    /// Starts the agent; `spark_sink` puts SparkSink and its Avro 1.7 jars first on the
    /// classpath.
    pub fn start(config: &str, spark_sink: bool) -> FlumeAgent {
        let home = flume_home();
        let dir = tempfile::Builder::new()
            .prefix("flume-rpc-it-")
            .tempdir()
            .unwrap();
        let conf = dir.path().join("conf.properties");
        fs::write(&conf, config).unwrap();
        // INFO, so a failing test's message can show what the agent did.
        let log4j = dir.path().join("log4j2.properties");
        fs::write(
            &log4j,
            "status = error\n\
             appender.out.type = Console\n\
             appender.out.name = OUT\n\
             appender.out.layout.type = PatternLayout\n\
             appender.out.layout.pattern = %d %p %m (%c)%n\n\
             rootLogger.level = info\n\
             rootLogger.appenderRef.out.ref = OUT\n",
        )
        .unwrap();
        let log = File::create(dir.path().join("flume.log")).unwrap();
        let classpath = if spark_sink {
            format!("{0}/spark-sink/*:{0}/lib/*", home.display())
        } else {
            format!("{}/lib/*", home.display())
        };
        let child = Command::new("java")
            .arg("-Xmx128m")
            .arg(format!("-Dlog4j.configurationFile={}", log4j.display()))
            .arg("-cp")
            .arg(classpath)
            .arg("org.apache.flume.node.Application")
            .args(["-n", "a1", "--no-reload-conf", "-f"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("starting java for Apache Flume (is a JRE on PATH?): {e}"));
        FlumeAgent { child, dir }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("flume.log")).unwrap_or_default()
    }

    /// Panics with the agent's log if it has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("Flume agent exited ({status}); log:\n{}", self.log());
        }
    }

    /// Waits until something listens on `port` (the agent's avro source or SparkSink).
    pub async fn wait_port(&mut self, port: u16) {
        let end = Instant::now() + JAVA_DEADLINE;
        loop {
            self.assert_running();
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < end,
                "Flume did not listen on {port} within {JAVA_DEADLINE:?}; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for FlumeAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
