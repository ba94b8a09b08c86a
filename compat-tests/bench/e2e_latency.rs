//! End-to-end latency probe for the side-by-side benchmark (`compat-tests/bench/run.sh`).
//!
//! It creates a topic, then produces records at a fixed rate through librdkafka (acks=all)
//! while one assigned consumer in the same process reads them back. Each value carries the
//! time its `send` was called, so produce-to-consume latency needs no clock sync: both ends
//! read the same monotonic clock. Records sent during the warm-up are read but not measured.
//! It prints one JSON line on stdout and fails only when the broker can't be used at all.
//!
//! Throughput lives in Kafka's own perf tools, which the bench script drives; the librdkafka
//! throughput benchmark is `benches/broker.rs`. This file measures latency and nothing else.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context as _, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

/// Timeout of one admin or metadata request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a created topic has to show every partition with a leader.
const TOPIC_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// After the last send: how long the consumer may go without a record before it gives up
/// on the rest (they are then counted as missing, not as a failure).
const DRAIN_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound on waiting for the last delivery reports.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);
/// librdkafka warnings printed per client before the rest are suppressed.
const MAX_CLIENT_LOG_LINES: u64 = 10;
/// Bytes at the start of each value that hold the send time (nanoseconds, little endian).
const STAMP_BYTES: usize = 8;

/// Producer settings: Java 4.x producer defaults where librdkafka's differ, and acks=all.
const PRODUCER_SETTINGS: &[(&str, &str)] = &[
    ("acks", "all"),
    ("compression.type", "none"),
    // Java's buffer.memory (32 MiB) instead of librdkafka's 1 GiB queue.
    ("queue.buffering.max.kbytes", "32768"),
    ("message.timeout.ms", "30000"),
];

/// Consumer settings: Java's fetch defaults. `group.id` only because librdkafka wants one for
/// `assign`; no group is joined and nothing is committed.
const CONSUMER_SETTINGS: &[(&str, &str)] = &[
    ("group.id", "sluice-e2e-latency"),
    ("enable.auto.commit", "false"),
    ("enable.auto.offset.store", "false"),
    ("enable.partition.eof", "false"),
    ("fetch.min.bytes", "1"),
    ("fetch.wait.max.ms", "500"),
    ("fetch.max.bytes", "52428800"),
    ("max.partition.fetch.bytes", "1048576"),
];

const USAGE: &str = "\
usage: e2e_latency --bootstrap HOST:PORT --topic NAME --rate RECORDS_PER_S [flags]

  --partitions P       partitions of the topic it creates (default 6)
  --duration-secs S    total sending time, warm-up included (default 30)
  --warmup-secs S      records sent in the first S seconds are not measured (default 5)
  --record-size B      value size in bytes, at least 8 (default 1024)
  --linger-ms MS       producer linger.ms (default 5: Java's default since Kafka 4.0,
                       KIP-1030, and librdkafka's)
  --client-config K=V  a librdkafka property for every client of the probe (admin, producer,
                       consumer), after its own settings; may be repeated. The TLS phases
                       pass security.protocol=ssl and ssl.ca.location=CA.pem this way.

Prints one JSON line. Normally run by compat-tests/bench/run.sh.";

#[derive(Debug)]
struct Args {
    bootstrap: String,
    topic: String,
    rate: f64,
    partitions: i32,
    duration: Duration,
    warmup: Duration,
    record_size: usize,
    linger_ms: f64,
    /// `--client-config` pairs, in the order given.
    client_config: Vec<(String, String)>,
}

impl Args {
    /// `None` when no flags were given: `cargo bench` runs every bench target, and this one
    /// only makes sense with a broker, so it then says so and exits 0.
    fn parse(raw: Vec<String>) -> Result<Option<Args>> {
        let raw: Vec<String> = raw.into_iter().filter(|a| a != "--bench").collect();
        if raw.is_empty() {
            return Ok(None);
        }
        let (mut bootstrap, mut topic, mut rate) = (None, None, None);
        let mut partitions = 6;
        let (mut duration, mut warmup): (f64, f64) = (30.0, 5.0);
        let mut record_size = 1024;
        let mut linger_ms: f64 = 5.0;
        let mut client_config = Vec::new();
        let mut it = raw.into_iter();
        while let Some(flag) = it.next() {
            let mut value = || {
                it.next()
                    .ok_or_else(|| anyhow!("{flag} needs a value\n\n{USAGE}"))
            };
            match flag.as_str() {
                "--bootstrap" => bootstrap = Some(value()?),
                "--topic" => topic = Some(value()?),
                "--rate" => rate = Some(parse_num::<f64>(&flag, &value()?)?),
                "--partitions" => partitions = parse_num(&flag, &value()?)?,
                "--duration-secs" => duration = parse_num(&flag, &value()?)?,
                "--warmup-secs" => warmup = parse_num(&flag, &value()?)?,
                "--record-size" => record_size = parse_num(&flag, &value()?)?,
                "--linger-ms" => linger_ms = parse_num(&flag, &value()?)?,
                "--client-config" => {
                    let kv = value()?;
                    let (k, v) = kv
                        .split_once('=')
                        .filter(|(k, _)| !k.trim().is_empty())
                        .ok_or_else(|| anyhow!("--client-config wants KEY=VALUE, got {kv:?}"))?;
                    client_config.push((k.trim().to_string(), v.to_string()));
                }
                "-h" | "--help" => bail!("{USAGE}"),
                other => bail!("unknown flag {other:?}\n\n{USAGE}"),
            }
        }
        let rate = rate.ok_or_else(|| anyhow!("--rate is required\n\n{USAGE}"))?;
        ensure!(rate.is_finite() && rate > 0.0, "--rate must be positive");
        ensure!(partitions > 0, "--partitions must be at least 1");
        ensure!(
            record_size >= STAMP_BYTES,
            "--record-size must be at least {STAMP_BYTES}"
        );
        ensure!(
            duration.is_finite() && warmup.is_finite() && warmup >= 0.0 && duration > warmup,
            "--duration-secs must be greater than --warmup-secs"
        );
        ensure!(
            linger_ms.is_finite() && (0.0..=900_000.0).contains(&linger_ms),
            "--linger-ms must be between 0 and 900000"
        );
        Ok(Some(Args {
            bootstrap: bootstrap.ok_or_else(|| anyhow!("--bootstrap is required\n\n{USAGE}"))?,
            topic: topic.ok_or_else(|| anyhow!("--topic is required\n\n{USAGE}"))?,
            rate,
            partitions,
            duration: Duration::from_secs_f64(duration),
            warmup: Duration::from_secs_f64(warmup),
            record_size,
            linger_ms,
            client_config,
        }))
    }
}

fn parse_num<T: std::str::FromStr>(flag: &str, s: &str) -> Result<T> {
    s.trim()
        .replace('_', "")
        .parse()
        .map_err(|_| anyhow!("{flag}: {s:?} is not a valid number"))
}

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1).collect()) {
        Ok(Some(a)) => a,
        Ok(None) => {
            eprintln!("e2e_latency needs a running broker; compat-tests/bench/run.sh runs it.");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("e2e_latency: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<String> {
    create_topic(
        &args.bootstrap,
        &args.client_config,
        &args.topic,
        args.partitions,
    )?;

    let origin = Instant::now();
    let stop_sending = Arc::new(AtomicBool::new(false));
    // Records acknowledged, known once the producer has flushed; the consumer stops there.
    let expected = Arc::new(AtomicU64::new(u64::MAX));
    // End of the warm-up in nanoseconds since `origin`; set when the producer starts.
    let measure_from = Arc::new(AtomicU64::new(u64::MAX));
    let consumer = {
        let (bootstrap, topic) = (args.bootstrap.clone(), args.topic.clone());
        let extra = args.client_config.clone();
        let (stop, expected_c) = (Arc::clone(&stop_sending), Arc::clone(&expected));
        let partitions = args.partitions;
        let measure_from = Arc::clone(&measure_from);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let handle = thread::spawn(move || {
            consume(
                &bootstrap,
                &extra,
                &topic,
                partitions,
                origin,
                &measure_from,
                &stop,
                &expected_c,
                ready_tx,
            )
        });
        // Start sending only once the consumer has its assignment and a connection, so the
        // first measured records don't wait for consumer start-up.
        if ready_rx.recv_timeout(REQUEST_TIMEOUT).is_err() {
            stop_sending.store(true, Ordering::SeqCst);
            expected.store(0, Ordering::SeqCst);
            return match handle.join() {
                Ok(Err(e)) => Err(e),
                _ => Err(anyhow!("consumer did not start within {REQUEST_TIMEOUT:?}")),
            };
        }
        handle
    };

    let sent = produce(args, origin, &measure_from);
    stop_sending.store(true, Ordering::SeqCst);
    let produced = match sent {
        Ok(p) => p,
        Err(e) => {
            expected.store(0, Ordering::SeqCst);
            let _consumer_result = consumer.join();
            return Err(e);
        }
    };
    expected.store(produced.acked, Ordering::SeqCst);
    let consumed = consumer
        .join()
        .map_err(|_| anyhow!("consumer thread panicked"))??;

    let mut lat = consumed.latencies_ns;
    lat.sort_unstable();
    let measured_secs = (args.duration - args.warmup).as_secs_f64();
    let ms = |ns: u64| ns as f64 / 1e6;
    let mean = if lat.is_empty() {
        0.0
    } else {
        lat.iter().map(|&n| n as f64).sum::<f64>() / lat.len() as f64 / 1e6
    };
    Ok(format!(
        concat!(
            "{{\"target_rate\":{:.1},\"achieved_rate\":{:.1},\"sent\":{},\"acked\":{},",
            "\"delivery_errors\":{},\"first_error\":{},\"received\":{},\"measured\":{},",
            "\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"p999_ms\":{:.3},\"max_ms\":{:.3},",
            "\"mean_ms\":{:.3},\"measured_secs\":{:.1},\"linger_ms\":{}}}"
        ),
        args.rate,
        produced.measured_rate,
        produced.sent,
        produced.acked,
        produced.errors,
        json_string(produced.first_error.as_deref()),
        consumed.received,
        lat.len(),
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.99)),
        ms(percentile(&lat, 0.999)),
        ms(lat.last().copied().unwrap_or(0)),
        mean,
        measured_secs,
        args.linger_ms,
    ))
}

/// Nearest-rank percentile of a sorted slice; 0 when it is empty.
fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.clamp(1, sorted.len()) - 1)
        .copied()
        .unwrap_or(0)
}

fn json_string(s: Option<&str>) -> String {
    match s {
        None => "null".to_owned(),
        Some(s) => {
            let mut out = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    c if c.is_control() => out.push(' '),
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Clients

/// Prints the first few librdkafka warnings and errors of one client to stderr.
struct ClientLog {
    name: &'static str,
    printed: AtomicU64,
}

impl ClientLog {
    fn new(name: &'static str) -> ClientLog {
        ClientLog {
            name,
            printed: AtomicU64::new(0),
        }
    }

    fn print(&self, line: &str) {
        let n = self.printed.fetch_add(1, Ordering::Relaxed) + 1;
        if n <= MAX_CLIENT_LOG_LINES {
            eprintln!("[{}] {line}", self.name);
        } else if n == MAX_CLIENT_LOG_LINES + 1 {
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

/// A client's config: the bootstrap, `settings`, then the `--client-config` pairs (`extra`),
/// which thus win over the probe's own settings.
fn client_config(
    bootstrap: &str,
    extra: &[(String, String)],
    settings: &[(&str, &str)],
) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("client.id", "sluice-e2e-latency");
    for (k, v) in settings {
        cfg.set(*k, *v);
    }
    for (k, v) in extra {
        cfg.set(k, v);
    }
    cfg
}

/// Creates `topic` and waits until Metadata shows every partition with a leader: Kafka
/// creates topics asynchronously.
fn create_topic(
    bootstrap: &str,
    extra: &[(String, String)],
    topic: &str,
    partitions: i32,
) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap, extra, &[])
        .create()
        .context("creating admin client")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building runtime")?;
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
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
    let want = usize::try_from(partitions).context("partition count")?;
    let deadline = Instant::now() + TOPIC_READY_TIMEOUT;
    loop {
        let md = admin
            .inner()
            .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
            .context("Metadata")?;
        let ready = md.topics().iter().any(|t| {
            t.name() == topic
                && t.error().is_none()
                && t.partitions().len() == want
                && t.partitions().iter().all(|p| p.leader() >= 0)
        });
        if ready {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "topic {topic} did not show {partitions} partitions with leaders within {TOPIC_READY_TIMEOUT:?}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Delivery-report counters.
#[derive(Default)]
struct Deliveries {
    acked: u64,
    errors: u64,
    first_error: Option<String>,
}

struct DeliveryContext {
    log: ClientLog,
    stats: Mutex<Deliveries>,
}

impl ClientContext for DeliveryContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        self.log.log(level, fac, msg);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(error, reason);
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let mut s = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok(_) => s.acked += 1,
            Err((e, _)) => {
                s.errors += 1;
                if s.first_error.is_none() {
                    s.first_error = Some(e.to_string());
                }
            }
        }
    }
}

struct Produced {
    sent: u64,
    acked: u64,
    errors: u64,
    first_error: Option<String>,
    /// Records sent after the warm-up, per second of the measured window.
    measured_rate: f64,
}

/// Sends `rate × duration` records on a fixed schedule: whenever it wakes up it sends every
/// record that is due, then sleeps until the next one is. Each value starts with the time of
/// its own `send`, in nanoseconds since `origin`.
fn produce(args: &Args, origin: Instant, measure_from_ns: &AtomicU64) -> Result<Produced> {
    let producer: ThreadedProducer<DeliveryContext> =
        client_config(&args.bootstrap, &args.client_config, PRODUCER_SETTINGS)
            .set("linger.ms", args.linger_ms.to_string())
            .create_with_context(DeliveryContext {
                log: ClientLog::new("producer"),
                stats: Mutex::new(Deliveries::default()),
            })
            .context("creating producer")?;
    // Connect (and learn the partition leaders) before the clock starts.
    producer
        .client()
        .fetch_metadata(Some(&args.topic), REQUEST_TIMEOUT)
        .context("producer Metadata")?;

    let total = (args.rate * args.duration.as_secs_f64()).round() as u64;
    let mut value: Vec<u8> = (0..args.record_size)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(7))
        .collect();
    let start = Instant::now();
    let warmup_end = start + args.warmup;
    measure_from_ns.store(
        u64::try_from(warmup_end.duration_since(origin).as_nanos()).unwrap_or(u64::MAX),
        Ordering::SeqCst,
    );
    let (mut sent, mut sent_after_warmup) = (0u64, 0u64);
    while sent < total {
        let due = ((start.elapsed().as_secs_f64() * args.rate) as u64 + 1).min(total);
        while sent < due {
            let now = Instant::now();
            let stamp = u64::try_from(now.duration_since(origin).as_nanos()).unwrap_or(u64::MAX);
            if let Some(head) = value.get_mut(..STAMP_BYTES) {
                head.copy_from_slice(&stamp.to_le_bytes());
            }
            match producer.send::<[u8], [u8]>(BaseRecord::to(&args.topic).payload(&value)) {
                Ok(()) => {
                    sent += 1;
                    if now >= warmup_end {
                        sent_after_warmup += 1;
                    }
                }
                // The client's queue is full: the broker is behind. Wait and resend; the
                // achieved rate in the report shows it.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => bail!("send: {e}"),
            }
        }
        let next = start + Duration::from_secs_f64(sent as f64 / args.rate);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
    }
    let send_end = Instant::now();
    producer
        .flush(FLUSH_TIMEOUT)
        .context("flushing the producer")?;
    let measured = send_end.saturating_duration_since(warmup_end).as_secs_f64();
    let s = producer
        .context()
        .stats
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    Ok(Produced {
        sent,
        acked: s.acked,
        errors: s.errors,
        first_error: s.first_error.clone(),
        measured_rate: if measured > 0.0 {
            sent_after_warmup as f64 / measured
        } else {
            0.0
        },
    })
}

struct Consumed {
    received: u64,
    /// Send → receive, nanoseconds, for every record sent after the warm-up.
    latencies_ns: Vec<u64>,
}

/// Reads every partition from the beginning until it has seen `expected` records (known once
/// the producer is done), or until nothing arrives for [`DRAIN_IDLE_TIMEOUT`] after that.
#[allow(clippy::too_many_arguments)]
fn consume(
    bootstrap: &str,
    extra: &[(String, String)],
    topic: &str,
    partitions: i32,
    origin: Instant,
    measure_from_ns: &AtomicU64,
    stop_sending: &AtomicBool,
    expected: &AtomicU64,
    ready: std::sync::mpsc::Sender<()>,
) -> Result<Consumed> {
    let consumer: BaseConsumer<ClientLog> = client_config(bootstrap, extra, CONSUMER_SETTINGS)
        .create_with_context(ClientLog::new("consumer"))
        .context("creating consumer")?;
    consumer
        .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
        .context("consumer Metadata")?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .context("building assignment")?;
    }
    consumer.assign(&tpl).context("assign")?;
    // One poll sends the first ListOffsets/Fetch; then the producer may start.
    let _nothing_yet = consumer.poll(Duration::from_millis(200));
    let _receiver_gone_means_producer_gave_up = ready.send(());

    let mut received = 0u64;
    let mut latencies_ns = Vec::new();
    let mut last_progress = Instant::now();
    loop {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let now = u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
                received += 1;
                last_progress = Instant::now();
                let stamp = m
                    .payload()
                    .and_then(|p| p.get(..STAMP_BYTES))
                    .and_then(|b| <[u8; STAMP_BYTES]>::try_from(b).ok())
                    .map(u64::from_le_bytes);
                if let Some(sent_ns) = stamp {
                    if sent_ns >= measure_from_ns.load(Ordering::Relaxed) {
                        latencies_ns.push(now.saturating_sub(sent_ns));
                    }
                }
            }
            // librdkafka retries fetch errors itself; show them.
            Some(Err(e)) => consumer.context().print(&format!("poll: {e}")),
            None => {}
        }
        if received >= expected.load(Ordering::SeqCst) {
            break;
        }
        if stop_sending.load(Ordering::SeqCst) && last_progress.elapsed() > DRAIN_IDLE_TIMEOUT {
            consumer.context().print(&format!(
                "gave up after {DRAIN_IDLE_TIMEOUT:?} without a record: read {received}"
            ));
            break;
        }
    }
    Ok(Consumed {
        received,
        latencies_ns,
    })
}
