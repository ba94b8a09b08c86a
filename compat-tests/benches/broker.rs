//! Throughput and latency benchmark for a Kafka-compatible broker, driven by librdkafka.
//!
//! By default it starts the release `sluice` binary on an ephemeral port with a temporary
//! data dir. With `--bootstrap HOST:PORT` it drives a broker that is already running instead,
//! so the same tool measures Apache Kafka for comparison. For each producer count it creates
//! a fresh topic, produces `--records` records with acks=all, then reads them all back with a
//! single assigned consumer. It prints a markdown report and never fails on a figure: it fails
//! only when the broker cannot be started or records cannot be produced or read back.
//!
//! What the figures mean, and how to run it, is in `benches/README.md`. Correctness checks do
//! not live here; they are the compat tests under `tests/`.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, ensure, Context as _, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

/// How long the spawned broker has to print its `listening on` line.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the broker has to exit after SIGTERM before it is killed.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a created topic has to show every partition with a leader in Metadata.
const TOPIC_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout for one metadata request while waiting for connections or topics.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the consumer may go without a record before the run is abandoned.
const CONSUME_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound on waiting for the last delivery reports after the final send.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(120);
/// librdkafka log lines and errors printed per client before the rest are suppressed.
const MAX_CLIENT_LOG_LINES: usize = 20;
/// Size of the shared buffer of pseudo-random bytes that record values are sliced from.
const PAYLOAD_POOL_BYTES: usize = 8 << 20;

/// Producer settings of a throughput-oriented client. They are printed in the report, so a
/// Kafka run can be checked against the same numbers.
const PRODUCER_SETTINGS: &[(&str, &str)] = &[
    ("acks", "all"),
    ("linger.ms", "5"),
    // Java's default is 16 KiB; throughput tuning guides raise it to a few hundred KiB.
    ("batch.size", "262144"),
    ("compression.type", "none"),
    // Java's buffer.memory default (32 MiB). librdkafka's own default (1 GiB) would let the
    // send loop run far ahead of the broker and make latency mostly client queueing.
    ("queue.buffering.max.kbytes", "32768"),
    ("message.timeout.ms", "60000"),
];

/// Consumer settings. `group.id` is set only because librdkafka refuses `assign` without one;
/// offsets are never committed and no group is joined.
const CONSUMER_SETTINGS: &[(&str, &str)] = &[
    ("group.id", "sluice-bench"),
    ("enable.auto.commit", "false"),
    ("enable.auto.offset.store", "false"),
    ("enable.partition.eof", "false"),
    ("auto.offset.reset", "earliest"),
    // Java defaults: answer as soon as any data is there, up to 50 MiB per fetch and 1 MiB per
    // partition.
    ("fetch.min.bytes", "1"),
    ("fetch.wait.max.ms", "500"),
    ("fetch.max.bytes", "52428800"),
    ("max.partition.fetch.bytes", "1048576"),
];

const USAGE: &str = "\
usage: cargo bench -p sluice-compat --bench broker -- [flags]

  --records N          records produced per run (default 300000)
  --record-size B      value size in bytes (default 1024)
  --partitions P       partitions of each benchmark topic (default 6)
  --producers N[,N..]  producer counts; one run each (default 1,4)
  --bootstrap H:P      use a running broker instead of starting sluice
  --label NAME         system name in the report (default: sluice, or the bootstrap address)
  --fsync              start sluice with [log] flush_interval_messages = 1
  --out FILE.md        also write the report to FILE.md
  --keep               keep the temporary data dir and broker log

env: SLUICE_BIN overrides the broker binary (default <workspace>/target/release/sluice)";

/// Command-line options.
#[derive(Debug)]
struct Args {
    records: u64,
    record_size: usize,
    partitions: i32,
    producers: Vec<usize>,
    bootstrap: Option<String>,
    label: Option<String>,
    fsync: bool,
    out: Option<PathBuf>,
    keep: bool,
    /// The flags as given, for the report.
    raw: Vec<String>,
}

impl Args {
    fn parse(raw: Vec<String>) -> Result<Args> {
        let mut args = Args {
            records: 300_000,
            record_size: 1024,
            partitions: 6,
            producers: vec![1, 4],
            bootstrap: None,
            label: None,
            fsync: false,
            out: None,
            keep: false,
            raw: Vec::new(),
        };
        let mut it = raw.into_iter();
        while let Some(flag) = it.next() {
            // `cargo bench` appends `--bench` to the arguments of every bench target.
            if flag == "--bench" {
                continue;
            }
            args.raw.push(flag.clone());
            let mut value = || -> Result<String> {
                let v = it
                    .next()
                    .ok_or_else(|| anyhow!("{flag} needs a value\n\n{USAGE}"))?;
                args.raw.push(v.clone());
                Ok(v)
            };
            match flag.as_str() {
                "--records" => args.records = parse_num(&flag, &value()?)?,
                "--record-size" => args.record_size = parse_num(&flag, &value()?)?,
                "--partitions" => args.partitions = parse_num(&flag, &value()?)?,
                "--producers" => {
                    args.producers = value()?
                        .split(',')
                        .map(|n| parse_num(&flag, n))
                        .collect::<Result<_>>()?;
                }
                "--bootstrap" => args.bootstrap = Some(value()?),
                "--label" => args.label = Some(value()?),
                "--out" => args.out = Some(PathBuf::from(value()?)),
                "--fsync" => args.fsync = true,
                "--keep" => args.keep = true,
                "-h" | "--help" => bail!("{USAGE}"),
                other => bail!("unknown flag {other:?}\n\n{USAGE}"),
            }
        }
        ensure!(args.records > 0, "--records must be at least 1");
        ensure!(args.record_size > 0, "--record-size must be at least 1");
        ensure!(
            args.record_size <= PAYLOAD_POOL_BYTES / 2,
            "--record-size must be at most {} bytes",
            PAYLOAD_POOL_BYTES / 2
        );
        ensure!(args.partitions > 0, "--partitions must be at least 1");
        ensure!(
            !args.producers.is_empty() && args.producers.iter().all(|&n| n > 0),
            "--producers must list counts of at least 1"
        );
        Ok(args)
    }

    fn command_line(&self) -> String {
        let mut cmd = String::from("cargo bench -p sluice-compat --bench broker --");
        for a in &self.raw {
            cmd.push(' ');
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '\'') {
                cmd.push_str(&format!("'{}'", a.replace('\'', r"'\''")));
            } else {
                cmd.push_str(a);
            }
        }
        if self.raw.is_empty() {
            cmd.truncate(cmd.len() - " --".len());
        }
        cmd
    }
}

fn parse_num<T: std::str::FromStr>(flag: &str, s: &str) -> Result<T> {
    s.trim()
        .replace('_', "")
        .parse()
        .map_err(|_| anyhow!("{flag}: {s:?} is not a valid number"))
}

fn main() {
    let args = match Args::parse(std::env::args().skip(1).collect()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&args) {
        eprintln!("benchmark failed: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<()> {
    let mut broker = None;
    let bootstrap = match &args.bootstrap {
        Some(addr) => {
            if args.fsync {
                eprintln!(
                    "note: --fsync only configures a broker this tool starts; set the external \
                     broker's flush policy yourself (Kafka: log.flush.interval.messages=1)"
                );
            }
            addr.clone()
        }
        None => {
            let b = Broker::start(args.fsync)?;
            eprintln!(
                "started {} on {} (data and log in {})",
                b.bin.display(),
                b.addr,
                b.dir_path().display()
            );
            let addr = b.addr.clone();
            broker = Some(b);
            addr
        }
    };
    let system = args.label.clone().unwrap_or_else(|| match &args.bootstrap {
        Some(addr) => addr.clone(),
        None => "sluice".to_owned(),
    });

    let result = run_scenarios(args, &bootstrap, &system);

    let mut rows = Vec::new();
    if let Some(b) = broker.as_mut() {
        if let Some(kib) = b.peak_rss_kib() {
            rows.push(row(&system, "broker peak RSS (MiB)", kib as f64 / 1024.0));
        }
        if let Ok(bytes) = dir_size(&b.data_dir()) {
            rows.push(row(
                &system,
                "data dir size after all runs (MiB)",
                bytes as f64 / MIB,
            ));
        }
        if result.is_err() || args.keep {
            b.keep();
        }
        match b.stop() {
            Ok(status) if status.success() => {}
            Ok(status) => eprintln!("broker exited with {status} after SIGTERM"),
            Err(e) => eprintln!("stopping broker: {e:#}"),
        }
        if result.is_err() {
            eprintln!("broker stderr: {}", b.stderr_path().display());
            eprintln!("{}", tail(&b.stderr_path(), 20));
        }
    }

    let mut scenario_rows = result?;
    scenario_rows.extend(rows);
    let report = render_report(args, &system, &scenario_rows);
    println!("{report}");
    if let Some(path) = &args.out {
        fs::write(path, &report).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("report written to {}", path.display());
    }
    Ok(())
}

/// One run per producer count: fresh topic, produce, read back.
fn run_scenarios(args: &Args, bootstrap: &str, system: &str) -> Result<Vec<Row>> {
    let pool = Arc::new(payload_pool(PAYLOAD_POOL_BYTES));
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let mut rows = Vec::new();
    for &producers in &args.producers {
        let scenario = if producers == 1 {
            "1 producer".to_owned()
        } else {
            format!("{producers} producers")
        };
        let topic = format!("sluice-bench-{stamp}-p{producers}");
        create_topic(bootstrap, &topic, args.partitions)
            .with_context(|| format!("creating topic {topic}"))?;

        eprintln!(
            "[{scenario}] producing {} records of {} B to {topic}",
            args.records, args.record_size
        );
        let produced = produce(bootstrap, &topic, args, producers, &pool)
            .with_context(|| format!("producing to {topic}"))?;
        let p = &produced;
        let secs = p.elapsed.as_secs_f64();
        rows.push(row(
            system,
            &format!("produce, {scenario}: throughput (MiB/s)"),
            p.bytes as f64 / MIB / secs,
        ));
        rows.push(row(
            system,
            &format!("produce, {scenario}: records/s"),
            p.records as f64 / secs,
        ));
        let mut lat = p.latencies_us.clone();
        lat.sort_unstable();
        for (name, q) in [("p50", 0.50), ("p99", 0.99), ("p99.9", 0.999)] {
            rows.push(row(
                system,
                &format!("produce, {scenario}: latency {name} (ms)"),
                percentile(&lat, q) as f64 / 1000.0,
            ));
        }
        rows.push(row(
            system,
            &format!("produce, {scenario}: latency max (ms)"),
            lat.last().copied().unwrap_or_default() as f64 / 1000.0,
        ));
        if p.errors > 0 {
            rows.push(Row {
                system: system.to_owned(),
                metric: format!("produce, {scenario}: failed deliveries"),
                value: format!(
                    "{} (first: {})",
                    p.errors,
                    p.first_error.as_deref().unwrap_or("?")
                ),
            });
        }
        ensure!(
            p.records > 0,
            "no record was delivered; see the errors above"
        );
        eprintln!(
            "[{scenario}] produced {} records in {:.2} s, reading them back",
            p.records, secs
        );

        let consumed = consume(bootstrap, &topic, args.partitions, &p.last_offsets)
            .with_context(|| format!("consuming {topic}"))?;
        let secs = consumed.elapsed.as_secs_f64();
        rows.push(row(
            system,
            &format!("consume, after {scenario}: throughput (MiB/s)"),
            consumed.bytes as f64 / MIB / secs,
        ));
        rows.push(row(
            system,
            &format!("consume, after {scenario}: records/s"),
            consumed.records as f64 / secs,
        ));
        if consumed.records != p.records {
            rows.push(Row {
                system: system.to_owned(),
                metric: format!("consume, after {scenario}: records read vs delivered"),
                value: format!("{} vs {}", consumed.records, p.records),
            });
        }
        eprintln!(
            "[{scenario}] consumed {} records in {:.2} s",
            consumed.records, secs
        );
    }
    Ok(rows)
}

const MIB: f64 = 1024.0 * 1024.0;

/// One line of the report table.
struct Row {
    system: String,
    metric: String,
    value: String,
}

fn row(system: &str, metric: &str, value: f64) -> Row {
    let value = if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    };
    Row {
        system: system.to_owned(),
        metric: metric.to_owned(),
        value,
    }
}

fn render_report(args: &Args, system: &str, rows: &[Row]) -> String {
    let settings = |s: &[(&str, &str)]| {
        s.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let fsync = match (&args.bootstrap, args.fsync) {
        (Some(_), _) => "as configured on the external broker",
        (None, true) => "on",
        (None, false) => "off",
    };
    let mut out = format!(
        "## Broker benchmark: {system}\n\n\
         Command: `{}`\n\n\
         Machine: {}\n\n\
         Workload: {} records of {} B per run, {} partitions, producer counts {:?}, \
         fsync per message: {fsync}\n\n\
         Producer: {}\n\n\
         Consumer: {}\n\n\
         | system | metric | value |\n\
         |---|---|---:|\n",
        args.command_line(),
        machine_description(),
        args.records,
        args.record_size,
        args.partitions,
        args.producers,
        settings(PRODUCER_SETTINGS),
        settings(CONSUMER_SETTINGS),
    );
    for r in rows {
        out += &format!("| {} | {} | {} |\n", r.system, r.metric, r.value);
    }
    out
}

fn machine_description() -> String {
    let cores = thread::available_parallelism()
        .map(|n| n.get().to_string())
        .unwrap_or_else(|_| "?".to_owned());
    let model = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let mem = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| format!("{:.1} GiB RAM", kb as f64 / MIB))
        .unwrap_or_else(|| "unknown RAM".to_owned());
    format!(
        "{cores} cores ({model}), {mem}, {} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

/// The value at quantile `q` of a sorted slice (nearest rank), or 0 when it is empty.
fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.clamp(1, sorted.len()) - 1)
        .copied()
        .unwrap_or_default()
}

/// Pseudo-random bytes (xorshift64*), so values are neither zero nor trivially compressible.
fn payload_pool(len: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = xorshift(state);
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

// ---------------------------------------------------------------------------------------------
// Broker process

/// A `sluice` process started by the benchmark, stopped with SIGTERM on drop.
struct Broker {
    bin: PathBuf,
    child: Option<Child>,
    dir: Option<tempfile::TempDir>,
    kept: Option<PathBuf>,
    addr: String,
}

impl Broker {
    fn start(fsync: bool) -> Result<Broker> {
        let bin = match std::env::var_os("SLUICE_BIN") {
            Some(p) => PathBuf::from(p),
            None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/sluice"),
        };
        ensure!(
            bin.is_file(),
            "broker binary {} not found: run `cargo build --release --bin sluice` first, or set \
             SLUICE_BIN, or pass --bootstrap HOST:PORT",
            bin.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("sluice-bench-")
            .tempdir()
            .context("creating temp dir")?;
        let data_dir = dir.path().join("data");
        fs::create_dir(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let stderr_path = dir.path().join("broker.stderr");
        let stderr = File::create(&stderr_path)
            .with_context(|| format!("creating {}", stderr_path.display()))?;

        let mut cmd = Command::new(&bin);
        cmd.arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&data_dir);
        if fsync {
            let config = dir.path().join("sluice.toml");
            fs::write(&config, "[log]\nflush_interval_messages = 1\n")
                .with_context(|| format!("writing {}", config.display()))?;
            cmd.arg("--config").arg(&config);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;

        // Read stdout on a thread: it keeps draining the pipe after startup, so the broker never
        // blocks on a full pipe.
        let stdout = child.stdout.take().context("broker stdout not captured")?;
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.trim().strip_prefix("listening on ") {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });

        let mut broker = Broker {
            bin,
            child: Some(child),
            dir: Some(dir),
            kept: None,
            addr: String::new(),
        };
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(addr) => {
                    broker.addr = addr;
                    return Ok(broker);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {}
            }
            if let Some(child) = broker.child.as_mut() {
                if let Some(status) = child.try_wait().context("polling broker")? {
                    broker.keep();
                    bail!(
                        "broker exited with {status} before printing `listening on`; stderr ({}):\n{}",
                        broker.stderr_path().display(),
                        tail(&broker.stderr_path(), 20)
                    );
                }
            }
            if Instant::now() >= deadline {
                broker.keep();
                bail!(
                    "broker printed no `listening on` line within {:?}; stderr ({}):\n{}",
                    STARTUP_TIMEOUT,
                    broker.stderr_path().display(),
                    tail(&broker.stderr_path(), 20)
                );
            }
        }
    }

    fn dir_path(&self) -> PathBuf {
        match (&self.dir, &self.kept) {
            (Some(d), _) => d.path().to_owned(),
            (None, Some(p)) => p.clone(),
            (None, None) => PathBuf::new(),
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir_path().join("data")
    }

    fn stderr_path(&self) -> PathBuf {
        self.dir_path().join("broker.stderr")
    }

    /// Leaves the temp dir (data and broker log) in place when the benchmark ends.
    fn keep(&mut self) {
        if let Some(d) = self.dir.take() {
            let path = d.keep();
            eprintln!("keeping {}", path.display());
            self.kept = Some(path);
        }
    }

    /// Peak resident set size of the broker process, from /proc (Linux only).
    fn peak_rss_kib(&self) -> Option<u64> {
        let pid = self.child.as_ref()?.id();
        let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }

    /// Sends SIGTERM and waits for a clean exit; kills the process after a deadline.
    fn stop(&mut self) -> Result<ExitStatus> {
        let mut child = self.child.take().context("broker already stopped")?;
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        // std has no way to send SIGTERM, and the crate forbids unsafe, so use kill(1).
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        if !matches!(sent, Ok(s) if s.success()) {
            child.kill().context("killing broker")?;
        }
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                child.kill().context("killing broker")?;
                bail!("broker did not exit within {SHUTDOWN_TIMEOUT:?} of SIGTERM; killed it");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if self.child.is_some() {
            if let Err(e) = self.stop() {
                eprintln!("stopping broker: {e:#}");
            }
        }
    }
}

fn tail(path: &Path, lines: usize) -> String {
    match fs::read_to_string(path) {
        Ok(s) => {
            let all: Vec<&str> = s.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

fn dir_size(path: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in fs::read_dir(path)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

// ---------------------------------------------------------------------------------------------
// Kafka clients

/// Prints the first few librdkafka warnings and errors of one client to stderr, so a broken
/// broker shows up as more than a timeout, without flooding the report.
struct ClientLog {
    name: &'static str,
    printed: Mutex<usize>,
}

impl ClientLog {
    fn new(name: &'static str) -> ClientLog {
        ClientLog {
            name,
            printed: Mutex::new(0),
        }
    }

    fn print(&self, line: &str) {
        let mut n = self.printed.lock().unwrap_or_else(PoisonError::into_inner);
        *n += 1;
        if *n <= MAX_CLIENT_LOG_LINES {
            eprintln!("[{}] {line}", self.name);
        } else if *n == MAX_CLIENT_LOG_LINES + 1 {
            eprintln!("[{}] (further client messages suppressed)", self.name);
        }
    }
}

impl ClientContext for ClientLog {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        if matches!(
            level,
            RDKafkaLogLevel::Emerg
                | RDKafkaLogLevel::Alert
                | RDKafkaLogLevel::Critical
                | RDKafkaLogLevel::Error
                | RDKafkaLogLevel::Warning
        ) {
            self.print(&format!("{fac}: {msg}"));
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.print(&format!("error: {error}: {reason}"));
    }
}

impl ConsumerContext for ClientLog {}

fn client_config(bootstrap: &str, settings: &[(&str, &str)]) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("client.id", "sluice-bench")
        // Fail the run instead of retrying forever when the broker is unreachable.
        .set("socket.timeout.ms", "30000");
    for (k, v) in settings {
        cfg.set(*k, *v);
    }
    cfg
}

/// Creates `topic` and waits until Metadata shows every partition with a leader. Kafka creates
/// topics asynchronously, so a successful CreateTopics does not mean the partitions are ready.
fn create_topic(bootstrap: &str, topic: &str, partitions: i32) -> Result<()> {
    let admin: AdminClient<ClientLog> = client_config(bootstrap, &[])
        .create_with_context(ClientLog::new("admin"))
        .context("creating admin client")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building runtime")?;
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(METADATA_TIMEOUT));
    let results = rt
        .block_on(admin.create_topics([&new_topic], &opts))
        .context("CreateTopics")?;
    for r in results {
        if let Err((name, code)) = r {
            ensure!(
                code == RDKafkaErrorCode::TopicAlreadyExists,
                "CreateTopics {name}: {code}"
            );
        }
    }

    let deadline = Instant::now() + TOPIC_READY_TIMEOUT;
    loop {
        let md = admin
            .inner()
            .fetch_metadata(Some(topic), METADATA_TIMEOUT)
            .context("Metadata")?;
        let ready = md.topics().iter().any(|t| {
            t.name() == topic
                && t.error().is_none()
                && t.partitions().len() == usize::try_from(partitions).unwrap_or(0)
                && t.partitions().iter().all(|p| p.leader() >= 0)
        });
        if ready {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "topic {topic} did not show {partitions} partitions with leaders within {:?}",
            TOPIC_READY_TIMEOUT
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// What the delivery reports of one or more producers added up to.
#[derive(Default)]
struct Produced {
    records: u64,
    bytes: u64,
    errors: u64,
    first_error: Option<String>,
    /// Enqueue → delivery report, microseconds, one entry per delivered record.
    latencies_us: Vec<u64>,
    /// Highest delivered offset per partition: the consumer reads up to these.
    last_offsets: HashMap<i32, i64>,
    /// Time of the last delivery report, so flush's poll granularity doesn't count.
    last_delivery: Option<Instant>,
    elapsed: Duration,
}

impl Produced {
    fn merge(&mut self, other: Produced) {
        self.records += other.records;
        self.bytes += other.bytes;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies_us.extend(other.latencies_us);
        for (p, o) in other.last_offsets {
            let e = self.last_offsets.entry(p).or_insert(o);
            *e = (*e).max(o);
        }
        self.last_delivery = self.last_delivery.max(other.last_delivery);
    }
}

/// Producer context that turns delivery reports into [`Produced`].
struct ProduceContext {
    log: ClientLog,
    /// Delivery opaques are microseconds since this instant.
    base: Instant,
    stats: Mutex<Produced>,
}

impl ClientContext for ProduceContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        self.log.log(level, fac, msg);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(error, reason);
    }
}

impl ProducerContext for ProduceContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_at_us: usize) {
        let now = Instant::now();
        let mut s = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok(m) => {
                let now_us = u64::try_from(now.duration_since(self.base).as_micros()).unwrap_or(0);
                let sent_us = u64::try_from(sent_at_us).unwrap_or(0);
                s.latencies_us.push(now_us.saturating_sub(sent_us));
                s.records += 1;
                s.bytes += m.payload_len() as u64;
                let e = s.last_offsets.entry(m.partition()).or_insert(m.offset());
                *e = (*e).max(m.offset());
            }
            Err((e, _)) => {
                s.errors += 1;
                if s.first_error.is_none() {
                    s.first_error = Some(e.to_string());
                }
            }
        }
        s.last_delivery = Some(now);
    }
}

/// Produces `args.records` records split over `producers` threads, each with its own
/// producer (and so its own connection). The clock starts when every producer is connected.
fn produce(
    bootstrap: &str,
    topic: &str,
    args: &Args,
    producers: usize,
    pool: &Arc<Vec<u8>>,
) -> Result<Produced> {
    let n = u64::try_from(producers).context("producer count")?;
    let barrier = Arc::new(Barrier::new(producers + 1));
    let base = Instant::now();
    let mut handles = Vec::new();
    for i in 0..n {
        let share = args.records / n + u64::from(i < args.records % n);
        let (bootstrap, topic) = (bootstrap.to_owned(), topic.to_owned());
        let (barrier, pool, size) = (Arc::clone(&barrier), Arc::clone(pool), args.record_size);
        handles.push(thread::spawn(move || {
            produce_one(&bootstrap, &topic, share, size, &pool, i, base, &barrier)
        }));
    }
    barrier.wait();
    let start = Instant::now();
    let mut total = Produced::default();
    let mut first_err = None;
    for h in handles {
        match h.join() {
            Ok(Ok(p)) => total.merge(p),
            Ok(Err(e)) => first_err = first_err.or(Some(e)),
            Err(_) => first_err = first_err.or(Some(anyhow!("producer thread panicked"))),
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    total.elapsed = total.last_delivery.unwrap_or(start).duration_since(start);
    Ok(total)
}

#[allow(clippy::too_many_arguments)]
fn produce_one(
    bootstrap: &str,
    topic: &str,
    records: u64,
    record_size: usize,
    pool: &[u8],
    seed: u64,
    base: Instant,
    barrier: &Barrier,
) -> Result<Produced> {
    let ctx = ProduceContext {
        log: ClientLog::new("producer"),
        base,
        stats: Mutex::new(Produced::default()),
    };
    let created: Result<BaseProducer<ProduceContext>> = client_config(bootstrap, PRODUCER_SETTINGS)
        .create_with_context(ctx)
        .context("creating producer");
    // Connect before the clock starts. Whatever happens, reach the barrier so the other
    // threads and the caller are not left waiting on it.
    let producer = created.and_then(|p| {
        p.client()
            .fetch_metadata(Some(topic), METADATA_TIMEOUT)
            .context("producer Metadata")?;
        Ok(p)
    });
    barrier.wait();
    let producer = producer?;

    let mut rng = xorshift(0xD1B5_4A32_D192_ED03 ^ (seed + 1));
    let span = pool.len() - record_size;
    for _ in 0..records {
        rng = xorshift(rng);
        let offset = usize::try_from(rng % span as u64).unwrap_or(0);
        let payload = &pool[offset..offset + record_size];
        let mut record = BaseRecord::<(), [u8], usize>::with_opaque_to(topic, 0).payload(payload);
        loop {
            record.delivery_opaque = micros_since(base);
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    // Serve delivery reports, which frees queue space.
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(e).context("enqueueing a record"),
            }
        }
        producer.poll(Duration::ZERO);
    }
    // Not `flush`: its poll loop returns in 100 ms steps. Completion time is taken from the
    // last delivery report anyway.
    let deadline = Instant::now() + FLUSH_TIMEOUT;
    while producer.in_flight_count() > 0 {
        ensure!(
            Instant::now() < deadline,
            "{} records still undelivered after {FLUSH_TIMEOUT:?}",
            producer.in_flight_count()
        );
        producer.poll(Duration::from_millis(1));
    }
    let stats = std::mem::take(
        &mut *producer
            .context()
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    );
    Ok(stats)
}

fn micros_since(base: Instant) -> usize {
    usize::try_from(base.elapsed().as_micros()).unwrap_or(usize::MAX)
}

/// What the consumer read.
struct Consumed {
    records: u64,
    bytes: u64,
    elapsed: Duration,
}

/// Reads every partition from the beginning until each has reached the last offset the
/// producers were told about. The clock starts at `assign`, after the connection is up.
fn consume(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    last_offsets: &HashMap<i32, i64>,
) -> Result<Consumed> {
    let consumer: BaseConsumer<ClientLog> = client_config(bootstrap, CONSUMER_SETTINGS)
        .create_with_context(ClientLog::new("consumer"))
        .context("creating consumer")?;
    consumer
        .fetch_metadata(Some(topic), METADATA_TIMEOUT)
        .context("consumer Metadata")?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .context("building assignment")?;
    }
    let mut pending = last_offsets.clone();
    let start = Instant::now();
    consumer.assign(&tpl).context("assign")?;

    let (mut records, mut bytes) = (0u64, 0u64);
    let mut last_progress = Instant::now();
    while !pending.is_empty() {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                records += 1;
                bytes += m.payload_len() as u64;
                last_progress = Instant::now();
                if pending
                    .get(&m.partition())
                    .is_some_and(|&end| m.offset() >= end)
                {
                    pending.remove(&m.partition());
                }
            }
            Some(Err(e)) => {
                // Fetch errors are reported here and librdkafka retries them itself.
                consumer.context().print(&format!("poll: {e}"));
            }
            None => {}
        }
        if last_progress.elapsed() > CONSUME_IDLE_TIMEOUT {
            let mut missing: Vec<_> = pending.iter().collect();
            missing.sort();
            bail!(
                "no record for {CONSUME_IDLE_TIMEOUT:?} after reading {records}; partitions not \
                 yet read to their last produced offset (partition, offset): {missing:?}"
            );
        }
    }
    Ok(Consumed {
        records,
        bytes,
        elapsed: start.elapsed(),
    })
}
