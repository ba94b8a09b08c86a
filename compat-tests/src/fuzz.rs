//! The wire fuzzer: builds valid requests for every advertised (API, version) from the
//! broker's request layouts, mutates them (bit flips, huge counts, varint bombs, truncation,
//! random bodies, absurd frame lengths, splices) or sends raw garbage, one frame per
//! connection, many connections at once. Every `check_every` frames a real client
//! (librdkafka) produces a record and fetches it back; a broker that died or stopped serving
//! ends the run with an error.
//!
//! Used by the bounded pass in the test suite (`tests/it/fuzz.rs`) and by the `sluice-fuzz`
//! binary for long runs, which can also point it at Apache Kafka to compare.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use sluice::guard::sample::{self, Rng};
use sluice::guard::schema::{self, Message as Layout};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// What a run does.
#[derive(Debug, Clone)]
pub struct Config {
    /// Frames to send.
    pub frames: u64,
    /// Seed of the run; a run is replayable from it (the interleaving of the broker is not).
    pub seed: u64,
    /// Connections in flight at once.
    pub concurrency: usize,
    /// A real client's produce and fetch every this many frames (0: never).
    pub check_every: u64,
    /// How long one connection may take before the fuzzer drops it.
    pub io_timeout: Duration,
    /// Topic the client check writes to; it is created by the check's first produce.
    pub check_topic: String,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            frames: 50_000,
            seed: 13,
            concurrency: 32,
            check_every: 1_000,
            io_timeout: Duration::from_secs(3),
            check_topic: "fuzz-check".into(),
        }
    }
}

/// How a frame was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Strategy {
    /// A valid request as built.
    Valid,
    /// A valid request at a version the broker does not serve (the UNSUPPORTED_VERSION path).
    OtherVersion,
    /// Random bits flipped.
    BitFlips,
    /// Four bytes replaced by a huge count, or a huge compact count inserted.
    HugeCount,
    /// A run of continuation bytes inserted: a varint of 6 to 20 bytes.
    VarintBomb,
    /// Cut short.
    Truncated,
    /// A valid header and a random body.
    RandomBody,
    /// A length prefix that does not match what follows (negative, zero, huge, short).
    AbsurdLength,
    /// Two requests in one frame, or one with its tail repeated.
    Spliced,
    /// Bytes with no framing at all.
    Garbage,
}

/// What a run saw.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Frames sent, by strategy.
    pub sent: BTreeMap<Strategy, u64>,
    /// Connections answered with at least one response frame.
    pub answered: u64,
    /// Connections closed by the broker without an answer.
    pub closed: u64,
    /// Connections the fuzzer dropped after `io_timeout` (long polls, joins).
    pub timed_out: u64,
    /// Connections refused or reset before the frame was written.
    pub connect_errors: u64,
    /// Real-client checks that passed.
    pub checks: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl Report {
    /// Frames sent in all.
    pub fn total(&self) -> u64 {
        self.sent.values().sum()
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} frames in {:.1} s ({:.0}/s): {} answered, {} closed without answer, {} dropped \
             after the timeout, {} connect errors; {} real-client checks passed",
            self.total(),
            self.elapsed.as_secs_f64(),
            self.total() as f64 / self.elapsed.as_secs_f64().max(1e-9),
            self.answered,
            self.closed,
            self.timed_out,
            self.connect_errors,
            self.checks
        )?;
        for (s, n) in &self.sent {
            writeln!(f, "  {s:?}: {n}")?;
        }
        Ok(())
    }
}

/// Every (layout, version, header version) the fuzzer builds requests for: the versions
/// the broker advertises, from the layouts the broker checks requests against.
fn targets(advertised: &[(i16, i16, i16)]) -> anyhow::Result<Vec<(&'static Layout, i16, i16)>> {
    let schema = schema::get().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = Vec::new();
    for &(key, min, max) in advertised {
        for v in min..=max {
            let Some(m) = schema.request(key, v) else {
                continue;
            };
            let Ok(k) = kafka_protocol::messages::ApiKey::try_from(key) else {
                continue;
            };
            out.push((m, v, k.request_header_version(v)));
        }
    }
    if out.is_empty() {
        bail!("no advertised API has a layout");
    }
    Ok(out)
}

/// Other versions of the advertised keys that the codec knows: answered UNSUPPORTED_VERSION
/// or closed.
fn other_versions(advertised: &[(i16, i16, i16)]) -> Vec<(&'static Layout, i16, i16)> {
    let Ok(schema) = schema::get() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for &(key, min, max) in advertised {
        let Ok(k) = kafka_protocol::messages::ApiKey::try_from(key) else {
            continue;
        };
        let r = k.valid_versions();
        for v in (r.min..=r.max).filter(|v| !(min..=max).contains(v)) {
            if let Some(m) = schema.request(key, v) {
                out.push((m, v, k.request_header_version(v)));
            }
        }
    }
    out
}

/// One fuzzed connection's bytes: the whole of what is written, length prefix included.
pub fn make_frame(
    rng: &mut Rng,
    targets: &[(&Layout, i16, i16)],
    others: &[(&Layout, i16, i16)],
    n: u64,
) -> (Strategy, Vec<u8>) {
    let corr = (n & 0x7fff_ffff) as i32;
    let pick = |rng: &mut Rng, set: &[(&Layout, i16, i16)]| {
        let (m, v, hv) = set[rng.below(set.len())];
        sample::request(m, v, hv, corr, rng)
    };
    let roll = rng.below(100);
    let (strategy, body) = match roll {
        0..=11 => (Strategy::Valid, pick(rng, targets)),
        12..=16 if !others.is_empty() => (Strategy::OtherVersion, pick(rng, others)),
        12..=31 => {
            let mut b = pick(rng, targets);
            for _ in 0..1 + rng.below(8) {
                let i = 4 + rng.below(b.len().saturating_sub(4));
                if let Some(x) = b.get_mut(i) {
                    *x ^= 1 << rng.below(8);
                }
            }
            (Strategy::BitFlips, b)
        }
        32..=51 => {
            let mut b = pick(rng, targets);
            let at = 8 + rng.below(b.len().saturating_sub(8).max(1));
            let at = at.min(b.len());
            if rng.one_in(2) {
                let big: [u8; 4] = match rng.below(4) {
                    0 => [0x7f, 0xff, 0xff, 0xff],
                    1 => [0x00, 0xff, 0xff, 0xff],
                    2 => [0x00, 0x01, 0x00, 0x00],
                    _ => [0xff, 0xff, 0xff, 0xfe],
                };
                let end = (at + 4).min(b.len());
                b.splice(at..end, big);
            } else {
                b.splice(at..at, [0xff, 0xff, 0xff, 0xff, 0x0f]);
            }
            (Strategy::HugeCount, b)
        }
        52..=61 => {
            let mut b = pick(rng, targets);
            let at = (8 + rng.below(b.len().saturating_sub(8).max(1))).min(b.len());
            let run = 5 + rng.below(16);
            let mut bomb = vec![0x80; run];
            bomb.push(0x01);
            b.splice(at..at, bomb);
            (Strategy::VarintBomb, b)
        }
        62..=71 => {
            let mut b = pick(rng, targets);
            let cut = rng.below(b.len());
            b.truncate(cut);
            (Strategy::Truncated, b)
        }
        72..=81 => {
            let mut b = pick(rng, targets);
            b.truncate(b.len().min(8 + rng.below(20)));
            let extra = rng.below(200);
            b.extend((0..extra).map(|_| rng.next_u64() as u8));
            (Strategy::RandomBody, b)
        }
        82..=87 => {
            let b = pick(rng, targets);
            let claimed: i32 = match rng.below(5) {
                0 => -1 - rng.below(1000) as i32,
                1 => 0,
                2 => i32::MAX - rng.below(1000) as i32,
                3 => (b.len() as i32).saturating_add(1 + rng.below(100) as i32),
                _ => rng.below(b.len().max(1)) as i32,
            };
            let mut raw = claimed.to_be_bytes().to_vec();
            raw.extend_from_slice(&b);
            return (Strategy::AbsurdLength, raw);
        }
        88..=93 => {
            let mut b = pick(rng, targets);
            if rng.one_in(2) {
                let c = pick(rng, targets);
                b.extend_from_slice(&c);
            } else {
                let from = rng.below(b.len());
                let tail = b.get(from..).unwrap_or_default().to_vec();
                b.extend_from_slice(&tail);
            }
            (Strategy::Spliced, b)
        }
        _ => {
            let n = rng.below(300);
            return (
                Strategy::Garbage,
                (0..n).map(|_| rng.next_u64() as u8).collect(),
            );
        }
    };
    let mut raw = (body.len() as i32).to_be_bytes().to_vec();
    raw.extend_from_slice(&body);
    (strategy, raw)
}

/// How one connection ended.
enum Outcome {
    Answered,
    Closed,
    TimedOut,
    ConnectError,
}

async fn one(addr: String, bytes: Vec<u8>, timeout: Duration) -> Outcome {
    let work = async {
        let Ok(mut s) = TcpStream::connect(&addr).await else {
            return Outcome::ConnectError;
        };
        if s.write_all(&bytes).await.is_err() {
            return Outcome::Closed;
        }
        // Half-close: the broker sees EOF after this frame, as after any client's last one.
        let _ = s.shutdown().await;
        let mut got = Vec::new();
        match s.read_to_end(&mut got).await {
            Ok(_) | Err(_) if got.len() >= 4 => Outcome::Answered,
            _ => Outcome::Closed,
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or(Outcome::TimedOut)
}

/// Run the fuzzer against `addr`. `advertised` is the broker's (key, min, max) table.
pub async fn run(
    addr: &str,
    advertised: &[(i16, i16, i16)],
    cfg: &Config,
) -> anyhow::Result<Report> {
    let targets = targets(advertised)?;
    let others = other_versions(advertised);
    let mut rng = Rng::new(cfg.seed);
    let mut report = Report::default();
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    let collect = |o: Outcome, report: &mut Report| match o {
        Outcome::Answered => report.answered += 1,
        Outcome::Closed => report.closed += 1,
        Outcome::TimedOut => report.timed_out += 1,
        Outcome::ConnectError => report.connect_errors += 1,
    };
    check_client(addr, &cfg.check_topic).context("real client before the first frame")?;
    for n in 0..cfg.frames {
        while tasks.len() >= cfg.concurrency.max(1) {
            if let Some(Ok(o)) = tasks.join_next().await {
                collect(o, &mut report);
            }
        }
        let (strategy, bytes) = make_frame(&mut rng, &targets, &others, n);
        *report.sent.entry(strategy).or_default() += 1;
        tasks.spawn(one(addr.to_string(), bytes, cfg.io_timeout));
        if cfg.check_every > 0 && (n + 1) % cfg.check_every == 0 {
            let (a, t) = (addr.to_string(), cfg.check_topic.clone());
            tokio::task::spawn_blocking(move || check_client(&a, &t))
                .await?
                .with_context(|| {
                    format!("real client after {} frames (seed {})", n + 1, cfg.seed)
                })?;
            report.checks += 1;
        }
    }
    while let Some(r) = tasks.join_next().await {
        if let Ok(o) = r {
            collect(o, &mut report);
        }
    }
    report.elapsed = start.elapsed();
    if report.connect_errors > 0 {
        bail!(
            "{} connections were refused: the broker stopped accepting\n{report}",
            report.connect_errors
        );
    }
    Ok(report)
}

/// A real client's round trip: librdkafka produces one record with acks=all and a fresh
/// consumer fetches it back from its offset.
pub fn check_client(addr: &str, topic: &str) -> anyhow::Result<()> {
    let deadline = Duration::from_secs(30);
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("acks", "all")
        .set("message.timeout.ms", "30000")
        .create()?;
    static CHECKS: AtomicU64 = AtomicU64::new(0);
    let value = format!(
        "check-{}-{}",
        std::process::id(),
        CHECKS.fetch_add(1, Ordering::Relaxed)
    );
    producer
        .send(BaseRecord::<(), str>::to(topic).payload(&value))
        .map_err(|(e, _)| e)?;
    producer.flush(deadline)?;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", "fuzz-check")
        .set("enable.auto.commit", "false")
        .create()?;
    let (_, high) = consumer.fetch_watermarks(topic, 0, deadline)?;
    if high < 1 {
        bail!("high watermark {high} after an acknowledged produce");
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(high - 1))?;
    consumer.assign(&tpl)?;
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m?;
            if m.offset() == high - 1 {
                return match m.payload() {
                    Some(p) if p == value.as_bytes() => Ok(()),
                    p => bail!("fetched {p:?} at offset {}, produced {value}", high - 1),
                };
            }
        }
    }
    bail!(
        "could not fetch offset {} of {topic} within {deadline:?}",
        high - 1
    )
}
