//! Throughput of an avro source → channel → Kafka sink flow into a Sluice broker, under
//! `sluice-flume agent` and under Apache Flume 1.11, with the same properties file and the
//! same load. `connectors/flume/bench/run.sh` builds and installs what this needs and runs
//! it; the "Performance" section of `connectors/flume/README.md` explains the figures.
//!
//! Per flow (`memory`, `file`) and repetition, each agent in turn (sluice-flume, then
//! Flume: A B A B): a fresh `sluice` broker in a temp dir with a 3-partition topic, the
//! agent started on the flow's config, a warm-up of `--warmup` events (not timed, so the
//! JVM's JIT and both Kafka producers are past their start), then `--events` events of
//! `--body-bytes` bytes sent with `appendBatch` of `--batch` over `--connections`
//! connections as fast as the agent accepts them (a `FAILED` reply is retried). Events/s is
//! measured from the first timed send to the moment the topic's end offsets (ListOffsets,
//! summed over partitions) reach warm-up + events. The agent's CPU seconds over that window
//! and its peak RSS (VmHWM) come from /proc.
//!
//! Writes `latest.md` and `latest.json` to `--out-dir` (default `bench/results`). A failed
//! run is reported in the results, never by failing the benchmark.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use clap::Parser;
use serde_json::{json, Value};
use sluice_client::{Client, ClientConfig, OffsetSpec};
use sluice_flume_rpc::{AvroSourceClient, ClientOptions, Event, Status};
use tempfile::TempDir;

/// Partitions of each run's topic.
const PARTITIONS: i32 = 3;
/// How long an agent or the broker may take to come up.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// How long an agent may take to stop after SIGTERM before it is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(30);
/// Pause before resending a batch the agent answered `FAILED` (a full channel).
const RETRY_PAUSE: Duration = Duration::from_millis(20);
/// How often the topic's end offsets are read.
const POLL_EVERY: Duration = Duration::from_millis(10);

#[derive(Parser, Debug, Clone)]
#[command(about = "sluice-flume vs Apache Flume 1.11: avro source → channel → Kafka sink")]
struct Args {
    /// Timed events per run.
    #[arg(long, default_value_t = 500_000)]
    events: u64,
    /// Events sent (and waited for) before the timed part of each run.
    #[arg(long, default_value_t = 50_000)]
    warmup: u64,
    /// Body size of each event in bytes (no headers).
    #[arg(long, default_value_t = 256)]
    body_bytes: usize,
    /// Events per appendBatch call.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Concurrent avro connections of the load generator.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Runs per flow and agent.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Flows to run: memory, file (comma list).
    #[arg(long, default_value = "memory,file", value_delimiter = ',')]
    flows: Vec<String>,
    /// Agents to run: sluice, flume (comma list).
    #[arg(long, default_value = "sluice,flume", value_delimiter = ',')]
    agents: Vec<String>,
    /// Longest a single run may take before it is recorded as timed out.
    #[arg(long, default_value_t = 240)]
    run_timeout_secs: u64,
    /// Where latest.md and latest.json go.
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Apache Flume's install (compat-tests/scripts/install-flume.sh).
    #[arg(long)]
    flume_home: Option<PathBuf>,
    /// The command line to record in the results.
    #[arg(long, default_value = "bash connectors/flume/bench/run.sh")]
    command: String,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Which agent runs the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AgentKind {
    Sluice,
    Flume,
}

impl AgentKind {
    fn parse(s: &str) -> anyhow::Result<Self> {
        match s.trim() {
            "sluice" => Ok(AgentKind::Sluice),
            "flume" => Ok(AgentKind::Flume),
            other => bail!("--agents: {other:?} is not sluice or flume"),
        }
    }

    fn label(self) -> &'static str {
        match self {
            AgentKind::Sluice => "sluice-flume",
            AgentKind::Flume => "Flume 1.11",
        }
    }

    fn key(self) -> &'static str {
        match self {
            AgentKind::Sluice => "sluice",
            AgentKind::Flume => "flume",
        }
    }
}

/// Paths of the things a run starts.
struct Bins {
    sluice: PathBuf,
    agent: PathBuf,
    flume_home: PathBuf,
}

/// A binary next to this benchmark (`<target>/release/deps/avro_load-HASH` → `<target>/release/NAME`),
/// or the path in `env`.
fn sibling_bin(name: &str, env: &str) -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().context("current_exe")?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow!("{} has no grandparent directory", exe.display()))?;
    Ok(dir.join(name))
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")
        .context("binding 127.0.0.1:0 to find a free port")?
        .local_addr()?
        .port())
}

/// The last `n` lines of a log file, for error messages.
fn log_tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A `sluice` broker in its own temp dir, killed on drop.
struct Broker {
    child: Child,
    addr: String,
    _tmp: TempDir,
}

impl Broker {
    fn start(bin: &Path) -> anyhow::Result<Broker> {
        let tmp = tempfile::Builder::new()
            .prefix("fbench-broker-")
            .tempdir()?;
        fs::write(tmp.path().join("sluice.toml"), "")?;
        let stderr = File::create(tmp.path().join("stderr.log"))?;
        let mut child = Command::new(bin)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(tmp.path().join("data"))
            .arg("--config")
            .arg(tmp.path().join("sluice.toml"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("broker stdout"))?;
        let (tx, rx) = mpsc::channel::<String>();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
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
                    bail!(
                        "broker never printed `listening on` ({e}); stderr:\n{}",
                        log_tail(&tmp.path().join("stderr.log"), 20)
                    );
                }
            }
        };
        Ok(Broker {
            child,
            addr,
            _tmp: tmp,
        })
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running agent (either kind), stopped with SIGTERM on drop.
struct AgentProc {
    child: Option<Child>,
    log: PathBuf,
}

impl AgentProc {
    fn start(kind: AgentKind, bins: &Bins, conf: &Path, dir: &Path) -> anyhow::Result<AgentProc> {
        let log = dir.join("agent.log");
        let out = File::create(&log)?;
        let mut cmd = match kind {
            AgentKind::Sluice => {
                let mut c = Command::new(&bins.agent);
                c.args(["agent", "-n", "a1", "--no-reload-conf", "-f"])
                    .arg(conf)
                    .arg("-Dflume.root.logger=WARN,console")
                    .env_remove("RUST_LOG");
                c
            }
            AgentKind::Flume => {
                let mut c = Command::new("java");
                c.arg("-Xmx1g")
                    .arg(format!(
                        "-Dlog4j.configurationFile={}",
                        bins.flume_home.join("log4j2-quiet.properties").display()
                    ))
                    .arg("-cp")
                    .arg(format!("{}/*", bins.flume_home.join("lib").display()))
                    .arg("org.apache.flume.node.Application")
                    .args(["-n", "a1", "--no-reload-conf", "-f"])
                    .arg(conf);
                c
            }
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone()?))
            .stderr(Stdio::from(out))
            .spawn()
            .with_context(|| format!("starting {}", kind.label()))?;
        Ok(AgentProc {
            child: Some(child),
            log,
        })
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// `Some(reason)` if the agent has exited.
    fn exited(&mut self) -> Option<String> {
        let c = self.child.as_mut()?;
        match c.try_wait() {
            Ok(Some(status)) => Some(format!(
                "agent exited ({status}); log:\n{}",
                log_tail(&self.log, 30)
            )),
            _ => None,
        }
    }

    /// Waits until `port` accepts connections.
    fn wait_listening(&mut self, port: u16) -> anyhow::Result<()> {
        let end = Instant::now() + START_DEADLINE;
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(());
            }
            if let Some(why) = self.exited() {
                bail!("{why}");
            }
            if Instant::now() > end {
                bail!(
                    "avro source on port {port} not up after {START_DEADLINE:?}; log:\n{}",
                    log_tail(&self.log, 30)
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then SIGKILL after [`STOP_DEADLINE`].
    fn stop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let end = Instant::now() + STOP_DEADLINE;
        while Instant::now() < end {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Clock ticks per second for /proc/PID/stat.
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// utime + stime of `pid`, in ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after it are space-separated,
    // starting with the state (field 3): utime and stime are fields 14 and 15.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let u: u64 = f.get(11)?.parse().ok()?;
    let s: u64 = f.get(12)?.parse().ok()?;
    Some(u + s)
}

/// Peak resident set size (VmHWM) of `pid`, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The 1-minute load average.
fn loadavg() -> f64 {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// The properties file of a flow: avro source, `memory` or `file` channel, Kafka sink.
fn flow_config(
    flow: &str,
    avro_port: u16,
    broker: &str,
    topic: &str,
    dir: &Path,
) -> anyhow::Result<String> {
    let channel = match flow {
        // Sized for the batches: appendBatch (≤ 1000) and the sink's 1000 fit a transaction.
        "memory" => "a1.channels.c1.type = memory\n\
             a1.channels.c1.capacity = 100000\n\
             a1.channels.c1.transactionCapacity = 1000\n"
            .to_string(),
        // Flume's defaults (capacity 1000000, transactionCapacity 10000, fsync per commit).
        "file" => format!(
            "a1.channels.c1.type = file\n\
             a1.channels.c1.checkpointDir = {}\n\
             a1.channels.c1.dataDirs = {}\n",
            dir.join("checkpoint").display(),
            dir.join("data").display()
        ),
        other => bail!("--flows: {other:?} is not memory or file"),
    };
    Ok(format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         \n\
         a1.sources.r1.type = avro\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {avro_port}\n\
         a1.sources.r1.channels = c1\n\
         \n\
         {channel}\
         \n\
         a1.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.kafka.bootstrap.servers = {broker}\n\
         a1.sinks.k1.kafka.topic = {topic}\n\
         a1.sinks.k1.flumeBatchSize = 1000\n\
         a1.sinks.k1.kafka.producer.acks = 1\n"
    ))
}

/// What the load generator saw.
#[derive(Debug, Default, Clone, Copy)]
struct LoadStats {
    /// `FAILED` replies (the batch was sent again).
    failed_replies: u64,
    /// Connection or call errors (the connection was opened again).
    errors: u64,
}

/// Sends `count` events over `connections` connections in batches of `batch`, each batch
/// until the agent answers OK.
async fn send_events(
    addr: String,
    count: u64,
    batch: usize,
    connections: usize,
    body: Arc<Vec<Event>>,
    deadline: Instant,
) -> anyhow::Result<LoadStats> {
    let batch_u64 = u64::try_from(batch)?;
    let batches = count.div_ceil(batch_u64);
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let addr = addr.clone();
        let next = next.clone();
        let events = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut stats = LoadStats::default();
            let mut client: Option<AvroSourceClient> = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= batches {
                    return Ok::<_, anyhow::Error>(stats);
                }
                let n = usize::try_from(batch_u64.min(count - i * batch_u64))?;
                let slice = events.get(..n).ok_or_else(|| anyhow!("batch of {n}"))?;
                loop {
                    if Instant::now() > deadline {
                        bail!("load not accepted before the run's deadline ({stats:?})");
                    }
                    let c = match client.as_mut() {
                        Some(c) => c,
                        None => client.insert(
                            AvroSourceClient::connect(&addr, ClientOptions::default())
                                .await
                                .with_context(|| format!("connecting to the avro source {addr}"))?,
                        ),
                    };
                    match c.append_batch(slice).await {
                        Ok(Status::Ok) => break,
                        Ok(_) => {
                            stats.failed_replies += 1;
                            tokio::time::sleep(RETRY_PAUSE).await;
                        }
                        Err(e) => {
                            stats.errors += 1;
                            if stats.errors == 1 {
                                eprintln!("avro_load: {e} (reconnecting)");
                            }
                            client = None;
                            tokio::time::sleep(RETRY_PAUSE).await;
                        }
                    }
                }
            }
        }));
    }
    let mut total = LoadStats::default();
    for t in tasks {
        let s = t.await??;
        total.failed_replies += s.failed_replies;
        total.errors += s.errors;
    }
    Ok(total)
}

/// Sum of the topic's end offsets.
async fn end_offsets(client: &Client, topic: &str) -> anyhow::Result<i64> {
    let parts: Vec<(String, i32)> = (0..PARTITIONS).map(|p| (topic.to_owned(), p)).collect();
    let mut sum = 0;
    for r in client.list_offsets_many(&parts, OffsetSpec::Latest).await {
        sum += r
            .with_context(|| format!("ListOffsets of {topic}"))?
            .unwrap_or(0);
    }
    Ok(sum)
}

/// What one run drives: the broker client, the topic, the agent's avro address.
struct Target<'a> {
    kafka: &'a Client,
    topic: &'a str,
    avro: String,
    args: &'a Args,
    events: &'a Arc<Vec<Event>>,
    deadline: Instant,
}

/// What [`drive`] measured.
struct Driven {
    /// First send → the topic holds the target.
    took: Duration,
    /// First send → the last batch was answered OK.
    accepted: Duration,
    /// The topic's record count at the end.
    total: i64,
    stats: LoadStats,
}

/// Sends `count` events and waits until the topic holds `target` records.
async fn drive(
    agent: &mut AgentProc,
    t: &Target<'_>,
    count: u64,
    target: i64,
) -> anyhow::Result<Driven> {
    let start = Instant::now();
    let mut load = Some(tokio::spawn(send_events(
        t.avro.clone(),
        count,
        t.args.batch,
        t.args.connections,
        t.events.clone(),
        t.deadline,
    )));
    let mut sent: Option<(Duration, LoadStats)> = None;
    loop {
        let total = end_offsets(t.kafka, t.topic).await?;
        if total >= target {
            let took = start.elapsed();
            let (accepted, stats) = match (sent, load.take()) {
                (Some(s), _) => s,
                (None, Some(h)) => {
                    let stats = h.await??;
                    (start.elapsed(), stats)
                }
                (None, None) => (took, LoadStats::default()),
            };
            return Ok(Driven {
                took,
                accepted,
                total,
                stats,
            });
        }
        if load.as_ref().is_some_and(|h| h.is_finished()) {
            if let Some(h) = load.take() {
                let stats = h.await??;
                sent = Some((start.elapsed(), stats));
            }
        }
        if let Some(why) = agent.exited() {
            bail!("{why}");
        }
        if Instant::now() > t.deadline {
            bail!("timed out: the topic holds {total} of {target} records");
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// One run's figures.
#[derive(Debug, Clone)]
struct RunResult {
    flow: String,
    agent: AgentKind,
    rep: usize,
    outcome: Result<Measured, String>,
    load_before: f64,
    load_after: f64,
}

#[derive(Debug, Clone)]
struct Measured {
    events_per_sec: f64,
    secs: f64,
    accepted_secs: f64,
    agent_cpu_secs: f64,
    broker_cpu_secs: f64,
    load_cpu_secs: f64,
    peak_rss_mib: f64,
    extra_records: i64,
    failed_replies: u64,
    errors: u64,
}

async fn run_once(
    flow: &str,
    kind: AgentKind,
    rep: usize,
    args: &Args,
    bins: &Bins,
    events: &Arc<Vec<Event>>,
    ticks: f64,
) -> anyhow::Result<Measured> {
    let broker = Broker::start(&bins.sluice)?;
    let mut cfg = ClientConfig::from_bootstrap_list(&broker.addr).with_client_id("fbench");
    cfg.request_timeout = Duration::from_secs(30);
    let kafka = Client::connect(cfg)
        .await
        .context("connecting to the broker")?;
    let topic = format!("fbench-{flow}-{}-{rep}", kind.key());
    kafka
        .create_topic(&topic, PARTITIONS, 1, &[])
        .await
        .with_context(|| format!("creating {topic}"))?;
    let dir = tempfile::Builder::new().prefix("fbench-agent-").tempdir()?;
    let port = free_port()?;
    let conf = dir.path().join("flume.properties");
    fs::write(
        &conf,
        flow_config(flow, port, &broker.addr, &topic, dir.path())?,
    )?;
    let mut agent = AgentProc::start(kind, bins, &conf, dir.path())?;
    agent.wait_listening(port)?;
    let t = Target {
        kafka: &kafka,
        topic: &topic,
        avro: format!("127.0.0.1:{port}"),
        args,
        events,
        deadline: Instant::now() + Duration::from_secs(args.run_timeout_secs),
    };
    let warm = i64::try_from(args.warmup)?;
    let target = warm + i64::try_from(args.events)?;
    if args.warmup > 0 {
        drive(&mut agent, &t, args.warmup, warm)
            .await
            .context("warm-up")?;
    }
    let pid = agent.pid();
    let broker_pid = broker.child.id();
    let cpu0 = cpu_ticks(pid).ok_or_else(|| anyhow!("cannot read /proc/{pid}/stat"))?;
    let bcpu0 = cpu_ticks(broker_pid).unwrap_or(0);
    let lcpu0 = cpu_ticks(std::process::id()).unwrap_or(0);
    let d = drive(&mut agent, &t, args.events, target).await?;
    let cpu1 = cpu_ticks(pid).ok_or_else(|| anyhow!("cannot read /proc/{pid}/stat"))?;
    let bcpu1 = cpu_ticks(broker_pid).unwrap_or(0);
    let lcpu1 = cpu_ticks(std::process::id()).unwrap_or(0);
    let rss = peak_rss_kib(pid).unwrap_or(0);
    agent.stop();
    Ok(Measured {
        events_per_sec: args.events as f64 / d.took.as_secs_f64(),
        secs: d.took.as_secs_f64(),
        accepted_secs: d.accepted.as_secs_f64(),
        agent_cpu_secs: cpu1.saturating_sub(cpu0) as f64 / ticks,
        broker_cpu_secs: bcpu1.saturating_sub(bcpu0) as f64 / ticks,
        load_cpu_secs: lcpu1.saturating_sub(lcpu0) as f64 / ticks,
        peak_rss_mib: rss as f64 / 1024.0,
        extra_records: d.total - target,
        failed_replies: d.stats.failed_replies,
        errors: d.stats.errors,
    })
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// Median, min and max of one figure over the successful runs of (flow, agent).
fn stat(
    results: &[RunResult],
    flow: &str,
    agent: AgentKind,
    f: impl Fn(&Measured) -> f64,
) -> Option<(f64, f64, f64)> {
    let mut v: Vec<f64> = results
        .iter()
        .filter(|r| r.flow == flow && r.agent == agent)
        .filter_map(|r| r.outcome.as_ref().ok().map(&f))
        .collect();
    if v.is_empty() {
        return None;
    }
    let m = median(&mut v);
    Some((m, v[0], v[v.len() - 1]))
}

fn cmd_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.push_str(&String::from_utf8_lossy(&o.stderr));
            s.lines().next().unwrap_or("").trim().to_owned()
        })
        .unwrap_or_default()
}

fn machine() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    format!(
        "{model}, {cores} cores, {mem_gib:.1} GiB RAM, Linux {}",
        cmd_line("uname", &["-r"])
    )
}

fn fmt_rate(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else {
        format!("{v:.0}")
    }
}

/// What the report says about where and when it ran.
struct Setting {
    started: String,
    machine: String,
    java: String,
    sample_conf: String,
    load_start: f64,
    load_end: f64,
}

fn report(
    args: &Args,
    kinds: &[AgentKind],
    results: &[RunResult],
    set: &Setting,
) -> (String, Value) {
    let Setting {
        started,
        machine,
        java,
        sample_conf,
        load_start,
        load_end,
    } = set;
    let mut md = String::new();
    let mb = |eps: f64| eps * args.body_bytes as f64 / 1e6;
    let _ = writeln!(
        md,
        "# sluice-flume vs Apache Flume 1.11: avro → channel → Kafka sink → Sluice\n"
    );
    let _ = writeln!(md, "- Date: {started}");
    let _ = writeln!(md, "- Machine: {machine}; {java}");
    let _ = writeln!(
        md,
        "- Load average (1 min) at start {load_start:.2}, at end {load_end:.2}: the machine was shared with other builds, so absolute figures are noisy; the ratio of runs taken alternately (A B A B) is the figure to read."
    );
    let _ = writeln!(md, "- Command: `{}`", args.command);
    let _ = writeln!(
        md,
        "- Load: {} timed events of {} B (no headers) after {} warm-up events, `appendBatch` of {} over {} connections from one Rust client process, each run against a fresh `sluice` broker (release) with a {PARTITIONS}-partition topic. Events/s = timed events / (first send → the topic's end offsets reach the total). CPU = the agent process's user+system seconds over that window; RSS = its peak (VmHWM) over the whole run.\n",
        args.events, args.body_bytes, args.warmup, args.batch, args.connections
    );
    let _ = writeln!(
        md,
        "## Summary (median, min–max over {} runs)\n",
        args.repeats
    );
    let _ = writeln!(md, "| flow | agent | events/s | MB/s | agent CPU s | events per CPU s | peak RSS MiB | sluice-flume / Flume |");
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|");
    let mut summary = Vec::new();
    for flow in &args.flows {
        let cell = |s: Option<(f64, f64, f64)>, f: &dyn Fn(f64) -> String| match s {
            Some((m, lo, hi)) => format!("{} ({}–{})", f(m), f(lo), f(hi)),
            None => "failed".to_owned(),
        };
        let median_of = |kind: AgentKind, f: &dyn Fn(&Measured) -> f64| {
            stat(results, flow, kind, f).map(|(m, _, _)| m)
        };
        let eff = |m: &Measured| args.events as f64 / m.agent_cpu_secs.max(1e-9);
        let ratio_of = |f: &dyn Fn(&Measured) -> f64| {
            Some(median_of(AgentKind::Sluice, f)? / median_of(AgentKind::Flume, f)?)
        };
        let ratio = ratio_of(&|m| m.events_per_sec);
        let eff_ratio = ratio_of(&eff);
        let rss_ratio = ratio_of(&|m| m.peak_rss_mib).map(|r| 1.0 / r);
        for kind in kinds {
            let eps = stat(results, flow, *kind, |m| m.events_per_sec);
            let versus = match (kind, ratio) {
                (AgentKind::Sluice, Some(r)) => format!(
                    "**{r:.2}×** events/s, {} events per CPU s; Flume's RSS is {}×",
                    eff_ratio.map_or("–".to_owned(), |e| format!("{e:.1}×")),
                    rss_ratio.map_or("–".to_owned(), |e| format!("{e:.0}"))
                ),
                _ => String::new(),
            };
            let _ = writeln!(
                md,
                "| {flow} | {} | {} | {} | {} | {} | {} | {versus} |",
                kind.label(),
                cell(eps, &fmt_rate),
                eps.map_or("–".to_owned(), |(m, _, _)| format!("{:.1}", mb(m))),
                cell(
                    stat(results, flow, *kind, |m| m.agent_cpu_secs),
                    &|v| format!("{v:.1}")
                ),
                cell(stat(results, flow, *kind, eff), &fmt_rate),
                cell(
                    stat(results, flow, *kind, |m| m.peak_rss_mib),
                    &|v| format!("{v:.0}")
                ),
            );
        }
        summary.push(json!({
            "flow": flow,
            "throughput_ratio": ratio,
            "cpu_efficiency_ratio": eff_ratio,
            "flume_rss_over_sluice_rss": rss_ratio,
        }));
    }
    let _ = writeln!(md, "\n## Every run, in the order run\n");
    let _ = writeln!(md, "| flow | agent | rep | events/s | s | accepted after s | agent CPU s | broker CPU s | load generator CPU s | peak RSS MiB | extra records | FAILED replies | load avg before/after |");
    let _ = writeln!(
        md,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    let mut runs = Vec::new();
    for r in results {
        match &r.outcome {
            Ok(m) => {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {} | {} | {:.2} / {:.2} |",
                    r.flow, r.agent.label(), r.rep + 1, m.events_per_sec, m.secs, m.accepted_secs,
                    m.agent_cpu_secs, m.broker_cpu_secs, m.load_cpu_secs, m.peak_rss_mib, m.extra_records,
                    m.failed_replies, r.load_before, r.load_after
                );
                runs.push(json!({
                    "flow": r.flow, "agent": r.agent.key(), "rep": r.rep + 1, "ok": true,
                    "events_per_sec": m.events_per_sec, "secs": m.secs, "accepted_secs": m.accepted_secs,
                    "agent_cpu_secs": m.agent_cpu_secs, "broker_cpu_secs": m.broker_cpu_secs,
                    "load_generator_cpu_secs": m.load_cpu_secs,
                    "peak_rss_mib": m.peak_rss_mib, "extra_records": m.extra_records,
                    "failed_replies": m.failed_replies, "errors": m.errors,
                    "loadavg_before": r.load_before, "loadavg_after": r.load_after,
                }));
            }
            Err(e) => {
                let first = e.lines().next().unwrap_or("").replace('|', "/");
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | failed: {first} | | | | | | | | | {:.2} / {:.2} |",
                    r.flow,
                    r.agent.label(),
                    r.rep + 1,
                    r.load_before,
                    r.load_after
                );
                runs.push(json!({
                    "flow": r.flow, "agent": r.agent.key(), "rep": r.rep + 1, "ok": false,
                    "error": e, "loadavg_before": r.load_before, "loadavg_after": r.load_after,
                }));
            }
        }
    }
    let _ = writeln!(
        md,
        "\n\"extra records\" are records beyond the events sent (duplicates from a redelivered batch); \"FAILED replies\" are `appendBatch` calls the agent refused (a full channel), sent again.\n"
    );
    let _ = writeln!(md, "## The memory flow's config (the file flow swaps the channel for `type = file` with `checkpointDir`/`dataDirs` and Flume's defaults)\n");
    let _ = writeln!(md, "```properties\n{}```", sample_conf);
    let doc = json!({
        "date": started,
        "machine": machine,
        "java": java,
        "command": args.command,
        "loadavg_start": load_start,
        "loadavg_end": load_end,
        "events": args.events,
        "warmup": args.warmup,
        "body_bytes": args.body_bytes,
        "batch": args.batch,
        "connections": args.connections,
        "repeats": args.repeats,
        "partitions": PARTITIONS,
        "summary": summary,
        "runs": runs,
    });
    (md, doc)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let kinds = args
        .agents
        .iter()
        .map(|a| AgentKind::parse(a))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if args.batch == 0 || args.connections == 0 {
        bail!("--batch and --connections must be at least 1");
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let bins = Bins {
        sluice: sibling_bin("sluice", "SLUICE_BIN")?,
        agent: sibling_bin("sluice-flume", "SLUICE_FLUME_BIN")?,
        flume_home: args
            .flume_home
            .clone()
            .unwrap_or_else(|| manifest.join("../../compat-tests/.cache/flume-1.11.0")),
    };
    for (p, how) in [
        (
            &bins.sluice,
            "cargo build --release --bin sluice (or set SLUICE_BIN)",
        ),
        (
            &bins.agent,
            "cargo build --release --bin sluice-flume (or set SLUICE_FLUME_BIN)",
        ),
    ] {
        if !p.exists() {
            bail!("{} not found: {how}", p.display());
        }
    }
    if kinds.contains(&AgentKind::Flume)
        && !bins
            .flume_home
            .join("lib/flume-ng-kafka-sink-1.11.0.jar")
            .exists()
    {
        bail!(
            "Flume's Kafka sink is not installed under {}: run compat-tests/scripts/install-flume.sh",
            bins.flume_home.display()
        );
    }
    let out_dir = args
        .out_dir
        .clone()
        .unwrap_or_else(|| manifest.join("bench/results"));
    fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;

    let started = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    let machine = machine();
    let java = cmd_line("java", &["-version"]);
    let ticks = clock_ticks();
    let load_start = loadavg();
    let body: Vec<u8> = {
        let mut b = b"sluice-flume benchmark event ".to_vec();
        b.resize(args.body_bytes, b'x');
        b
    };
    let events = Arc::new(vec![Event::new(body); args.batch]);
    let sample_conf = flow_config(
        "memory",
        41414,
        "127.0.0.1:9092",
        "fbench-memory",
        Path::new("/tmp/fbench"),
    )?;

    let mut results = Vec::new();
    for flow in &args.flows {
        for rep in 0..args.repeats {
            for &kind in &kinds {
                let load_before = loadavg();
                eprintln!(
                    "avro_load: {flow} channel, {} run {}/{} ...",
                    kind.label(),
                    rep + 1,
                    args.repeats
                );
                let outcome = run_once(flow, kind, rep, &args, &bins, &events, ticks)
                    .await
                    .map_err(|e| format!("{e:#}"));
                match &outcome {
                    Ok(m) => eprintln!(
                        "avro_load:   {:.0} events/s ({:.2} s, agent CPU {:.2} s, peak RSS {:.0} MiB)",
                        m.events_per_sec, m.secs, m.agent_cpu_secs, m.peak_rss_mib
                    ),
                    Err(e) => eprintln!("avro_load:   failed: {e}"),
                }
                results.push(RunResult {
                    flow: flow.clone(),
                    agent: kind,
                    rep,
                    outcome,
                    load_before,
                    load_after: loadavg(),
                });
            }
        }
    }
    let load_end = loadavg();
    let setting = Setting {
        started,
        machine,
        java,
        sample_conf,
        load_start,
        load_end,
    };
    let (md, doc) = report(&args, &kinds, &results, &setting);
    let md_path = out_dir.join("latest.md");
    fs::write(&md_path, &md).with_context(|| format!("writing {}", md_path.display()))?;
    let json_path = out_dir.join("latest.json");
    fs::write(&json_path, serde_json::to_string_pretty(&doc)? + "\n")
        .with_context(|| format!("writing {}", json_path.display()))?;
    println!("{md}");
    eprintln!(
        "avro_load: wrote {} and {}",
        md_path.display(),
        json_path.display()
    );
    Ok(())
}
