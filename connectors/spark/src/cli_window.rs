//! The binary's event-time word count (`wordcount --window ...`): Spark Structured
//! Streaming's `withWatermark(eventTime, delay).groupBy(window(eventTime, size, slide),
//! word).count()` over the direct stream. Part of the `sluice-spark` binary, not the
//! library: the flags, the batch loop, the late side output and what each batch prints.
//! The windows, the watermark and the Redis sink it drives live in the library.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use sluice_client::{FetchedRecord, ProduceOptions, ProduceRecord};
use sluice_spark::wordcount::{self, Counts};
use sluice_spark::{
    Applied, Client, ConsumerStrategy, DirectStream, EventTime, OffsetRange, RedisSink, ResultSink,
    StreamConfig, Updates, Watermark, Windows,
};

/// The event-time flags of `wordcount`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct WindowArgs {
    /// Count words per event-time window of this size (`1m`, `10s`): Spark's
    /// `window(eventTime, size, slide)`, windows aligned to the epoch.
    #[arg(long, value_parser = span, conflicts_with_all = ["output", "flume_push", "flume_pull"])]
    window: Option<Duration>,
    /// How often a window starts (sliding windows); defaults to the window size (tumbling).
    #[arg(long, value_parser = span, requires = "window")]
    slide: Option<Duration>,
    /// Allowed lateness (Spark's `withWatermark` delay): the watermark is the max event
    /// time seen minus this, moved at the end of each batch; a window is final, and takes
    /// no more records, once the watermark reaches its end. Without it nothing is late and
    /// no window is final.
    #[arg(long, value_parser = span, requires = "window")]
    watermark: Option<Duration>,
    /// Where the event time comes from: `timestamp` (the record's) or `json:FIELD` (a
    /// field of the JSON value, epoch ms or RFC 3339).
    #[arg(
        long,
        default_value = "timestamp",
        requires = "window",
        value_name = "timestamp|json:FIELD"
    )]
    event_time: String,
    /// Late records (in no window that still takes records): `drop` counts and reports
    /// them; `kafka:TOPIC` also writes them, unchanged, to TOPIC (a side output,
    /// at-least-once).
    #[arg(
        long,
        default_value = "drop",
        requires = "window",
        value_name = "drop|kafka:TOPIC"
    )]
    late: String,
}

fn span(s: &str) -> Result<Duration, String> {
    sluice_spark::parse_duration(s).map_err(|e| e.to_string())
}

/// What the rest of `wordcount` has set up: stream settings, the starting strategy, where
/// the Kafka cluster and Redis are.
pub(crate) struct Common<'a> {
    pub(crate) bootstrap: String,
    pub(crate) client_params: Vec<(&'a str, &'a str)>,
    pub(crate) strategy: ConsumerStrategy,
    pub(crate) config: StreamConfig,
    pub(crate) redis: Option<String>,
    pub(crate) redis_prefix: String,
    pub(crate) commit: bool,
    pub(crate) top: usize,
}

/// The event-time job, when `--window` is given.
pub(crate) struct WindowJob {
    windows: Windows,
    delay: Option<Duration>,
    event_time: EventTime,
    late_topic: Option<String>,
}

impl WindowJob {
    /// The job the flags ask for, `None` without `--window`.
    pub(crate) fn from_args(args: &WindowArgs) -> anyhow::Result<Option<WindowJob>> {
        let Some(size) = args.window else {
            return Ok(None);
        };
        let windows = Windows::new(size, args.slide.unwrap_or(size)).context("--window/--slide")?;
        let event_time = EventTime::parse(&args.event_time).context("--event-time")?;
        let late_topic = match args.late.as_str() {
            "drop" => None,
            other => match other.strip_prefix("kafka:").filter(|t| !t.is_empty()) {
                Some(t) => Some(t.to_owned()),
                None => bail!("--late {other:?}: expected drop or kafka:TOPIC"),
            },
        };
        Ok(Some(WindowJob {
            windows,
            delay: args.watermark,
            event_time,
            late_topic,
        }))
    }
}

/// Everything a batch changes and reads across batches.
struct State {
    watermark: Watermark,
    sink: Option<RedisSink>,
    /// Without Redis: the counts of the windows that are not final yet, for printing.
    open: BTreeMap<i64, Counts>,
    /// The side output's topic and partition count.
    late_out: Option<(String, i32)>,
}

impl State {
    /// The watermark in force for the batch under way (none without `--watermark`).
    fn in_force(&self, has_watermark: bool) -> Option<i64> {
        if has_watermark {
            self.watermark.current()
        } else {
            None
        }
    }
}

/// Runs the event-time word count until `shutdown`.
pub(crate) async fn run(
    job: WindowJob,
    common: Common<'_>,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let Common {
        bootstrap,
        client_params,
        mut strategy,
        config,
        redis,
        redis_prefix,
        commit,
        top,
    } = common;
    let delay = job.delay.unwrap_or(Duration::ZERO);
    let has_watermark = job.delay.is_some();
    let mut restored = Default::default();
    let sink = match &redis {
        None => None,
        Some(url) => {
            let mut sink = RedisSink::connect(url, &redis_prefix).await?;
            if has_watermark {
                sink = sink.with_windows(job.windows, delay);
            }
            let checkpoint = sink.restore().await?;
            tracing::info!(
                partitions = checkpoint.offsets.len(),
                max_event_ms = ?checkpoint.watermark.max_event_ms,
                late_total = checkpoint.watermark.late_total,
                "starting from the offsets and watermark stored in redis"
            );
            strategy = strategy.with_offsets(checkpoint.offsets);
            restored = checkpoint.watermark;
            Some(sink)
        }
    };
    let client_config = sluice_spark::client_config(&bootstrap, client_params)?;
    let client = Client::connect(client_config)
        .await
        .with_context(|| format!("connect to {bootstrap}"))?;
    let late_out = match &job.late_topic {
        None => None,
        Some(t) => {
            let n = client
                .partitions(t)
                .await
                .with_context(|| format!("--late kafka:{t}: the topic must exist"))?
                .len();
            let n = i32::try_from(n).ok().filter(|n| *n > 0);
            let Some(n) = n else {
                bail!("--late kafka:{t}: the topic has no partitions");
            };
            Some((t.clone(), n))
        }
    };
    let state = Arc::new(tokio::sync::Mutex::new(State {
        watermark: Watermark::new(delay, restored),
        sink,
        open: BTreeMap::new(),
        late_out,
    }));
    let mut stream = DirectStream::create(client.clone(), strategy, config)
        .await
        .context("create the direct stream")?;
    let commits = stream.commit_queue();
    let job = Arc::new(job);
    stream
        .for_each_batch(shutdown, move |batch| {
            let state = Arc::clone(&state);
            let job = Arc::clone(&job);
            let commits = commits.clone();
            let client = client.clone();
            async move {
                let mut st = state.lock().await;
                let in_force = st.in_force(has_watermark);
                let (windows, event_time) = (job.windows, job.event_time.clone());
                let parts = batch
                    .map_partitions(move |p| {
                        let r = p.range().clone();
                        wordcount::count_windowed(
                            &r.topic,
                            r.partition,
                            p,
                            &windows,
                            &event_time,
                            in_force,
                        )
                    })
                    .await?;
                let mut updates = Updates::default();
                let mut late_records: Vec<(i32, FetchedRecord)> = Vec::new();
                let mut max_event = None;
                let mut no_time = 0u64;
                for part in parts {
                    for (meta, r) in part.updates.late.iter().zip(part.late_records) {
                        late_records.push((meta.partition, r));
                    }
                    updates.merge(part.updates);
                    max_event = max_event.max(part.max_event_ms);
                    no_time += part.no_event_time;
                }
                let late = u64::try_from(updates.late.len()).unwrap_or(u64::MAX);
                // Spark moves the watermark at the end of the batch; it applies from the next.
                let mut next = st.watermark.clone();
                if let Some(m) = max_event {
                    next.observe(m);
                }
                let wm_state = next.end_batch(late);
                let new_wm = if has_watermark { next.current() } else { None };
                // The side output goes first: a crash before the sink applies the batch
                // writes the late records again on replay (at-least-once), never loses them.
                if let Some((topic, n)) = &st.late_out {
                    write_late(&client, topic, *n, late_records).await?;
                }
                let ranges = batch.offset_ranges();
                let (updated, finals) = match st.sink.as_mut() {
                    // A batch without records changes nothing: no offsets move, no watermark.
                    Some(sink) if batch.count() > 0 => {
                        if sink.apply(ranges, &updates, wm_state).await? == Applied::AlreadyApplied
                        {
                            tracing::warn!(
                                time = batch.time_ms(),
                                "batch already in redis; not applied again"
                            );
                        }
                        let finalised = sink.last_finalised().to_vec();
                        let mut shown = BTreeMap::new();
                        for s in updates
                            .window_starts()
                            .into_iter()
                            .chain(finalised.iter().copied())
                        {
                            shown.insert(s, sink.window_counts(s).await?);
                        }
                        split_shown(shown, &finalised)
                    }
                    Some(_) => (Shown::new(), Shown::new()),
                    None => {
                        for (cell, partial) in &updates.cells {
                            if let Some(s) = cell.window_start {
                                let c = st.open.entry(s).or_default();
                                // The job's partials are counts; `value` is exact below 2^53.
                                *c.entry(cell.key.clone()).or_insert(0) += partial.value() as i64;
                            }
                        }
                        let finalised: Vec<i64> = st
                            .open
                            .keys()
                            .copied()
                            .filter(|s| windows.is_final(*s, new_wm))
                            .collect();
                        let mut shown = BTreeMap::new();
                        for s in updates.window_starts() {
                            if let Some(c) = st.open.get(&s) {
                                shown.insert(s, c.clone());
                            }
                        }
                        for s in &finalised {
                            if let Some(c) = st.open.remove(s) {
                                shown.insert(*s, c);
                            }
                        }
                        split_shown(shown, &finalised)
                    }
                };
                st.watermark = next;
                print_batch(&BatchReport {
                    time_ms: batch.time_ms(),
                    ranges,
                    watermark: new_wm,
                    late,
                    late_total: wm_state.late_total,
                    no_time,
                    windows: &windows,
                    updated: &updated,
                    finalised: &finals,
                    top,
                })?;
                if commit {
                    commits.commit_async(ranges);
                }
                Ok(())
            }
        })
        .await
        .context("windowed word count stream")?;
    tracing::info!("stopped");
    Ok(())
}

type Shown = BTreeMap<i64, HashMap<String, i64>>;

/// Splits the windows to print into (updated, final).
fn split_shown(mut shown: Shown, finalised: &[i64]) -> (Shown, Shown) {
    let mut fin = Shown::new();
    for s in finalised {
        if let Some(c) = shown.remove(s) {
            fin.insert(*s, c);
        }
    }
    (shown, fin)
}

/// Writes late records unchanged to `topic`, each to its source partition modulo the
/// topic's partition count.
async fn write_late(
    client: &Client,
    topic: &str,
    partitions: i32,
    records: Vec<(i32, FetchedRecord)>,
) -> anyhow::Result<()> {
    let mut by_partition: BTreeMap<i32, Vec<ProduceRecord>> = BTreeMap::new();
    for (p, r) in records {
        let out = ProduceRecord {
            key: r.key,
            value: r.value,
            headers: r.headers,
            timestamp: Some(r.timestamp),
        };
        by_partition
            .entry(p.rem_euclid(partitions))
            .or_default()
            .push(out);
    }
    for (p, recs) in by_partition {
        client
            .produce(topic, p, &recs, &ProduceOptions::default())
            .await
            .with_context(|| format!("write late records to {topic}-{p}"))?;
    }
    Ok(())
}

struct BatchReport<'a> {
    time_ms: i64,
    ranges: &'a [OffsetRange],
    watermark: Option<i64>,
    late: u64,
    late_total: u64,
    no_time: u64,
    windows: &'a Windows,
    updated: &'a Shown,
    finalised: &'a Shown,
    top: usize,
}

/// Prints the batch: DStream.print()'s header, the ranges, one line with the watermark and
/// the late records, then one line per window changed (`updated`, Spark's update mode)
/// and per window made final by this batch (`final`, what append mode emits).
fn print_batch(b: &BatchReport<'_>) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "-------------------------------------------")?;
    writeln!(out, "Time: {} ms", b.time_ms)?;
    writeln!(out, "-------------------------------------------")?;
    for r in b.ranges {
        writeln!(out, "{r}")?;
    }
    let wm = b
        .watermark
        .map_or_else(|| "none".to_owned(), |w| w.to_string());
    write!(
        out,
        "watermark {wm} late {} late_total {}",
        b.late, b.late_total
    )?;
    if b.no_time > 0 {
        write!(out, " no_event_time {}", b.no_time)?;
    }
    writeln!(out)?;
    let finals: BTreeSet<i64> = b.finalised.keys().copied().collect();
    for (kind, shown) in [("updated", b.updated), ("final", b.finalised)] {
        for (start, counts) in shown {
            if kind == "updated" && finals.contains(start) {
                continue;
            }
            write!(out, "window {start} {} {kind}", b.windows.end(*start))?;
            for (w, c) in wordcount::top(counts, b.top) {
                write!(out, " ({w},{c})")?;
            }
            writeln!(out)?;
        }
    }
    writeln!(out)?;
    out.flush()
}
