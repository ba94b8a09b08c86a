//! The `sluice-spark` binary: `sluice-spark wordcount ...` runs the built-in word count
//! (Spark's `DirectKafkaWordCount`) over a direct stream, printing each batch's offset
//! ranges (`topic partition fromOffset untilOffset`, as the seed job prints them) and its
//! top words, and with `--redis` keeping exactly-once counts in Redis, with `--postgres` in
//! PostgreSQL, or with `--output kafka:TOPIC` writing each batch's counts and offsets to
//! Kafka in one transaction (exactly-once). Ctrl-C or SIGTERM finishes the batch in flight,
//! sends the queued commits and exits 0.

use std::io::Write;
use std::time::Duration;

mod cli_window;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use sluice_spark::wordcount::{self, Counts};
use sluice_spark::{
    Applied, AutoOffsetReset, Checkpoint, Client, ConsumerStrategy, DirectStream, FlumeBatch,
    FlumePullStream, FlumePushStream, KafkaSink, PgSink, PullOptions, PushOptions, RedisSink,
    ResultSink, StreamConfig, Updates, WatermarkState,
};

#[derive(Debug, Parser)]
#[command(
    name = "sluice-spark",
    version,
    about = "A Kafka direct stream, like Spark Streaming's, without a JVM"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start: the variants' size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Counts words per batch (Spark's DirectKafkaWordCount).
    Wordcount(WordcountArgs),
    /// Runs a declarative job file: parse, join, filter, window, aggregate, sink.
    Job(JobArgs),
}

#[derive(Debug, clap::Args)]
struct JobArgs {
    /// The job file (TOML; see the README's "Job files").
    file: std::path::PathBuf,
    /// Only check the file and exit.
    #[arg(long)]
    check: bool,
    /// The streaming page and `/metrics` on `HOST:PORT`, or `off` (as `wordcount --ui`).
    /// [default: 127.0.0.1:4040]
    #[arg(long, value_name = "HOST:PORT|off")]
    ui: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Starting {
    Earliest,
    Latest,
    None,
}

#[derive(Debug, clap::Args)]
struct WordcountArgs {
    /// Kafka bootstrap servers, comma-separated `host:port`.
    #[arg(
        long,
        env = "SLUICE_SPARK_BOOTSTRAP_SERVER",
        required_unless_present_any = ["flume_push", "flume_pull"],
        conflicts_with_all = ["flume_push", "flume_pull"]
    )]
    bootstrap_server: Option<String>,
    /// Instead of Kafka: listen on `HOST:PORT` for a Flume avro sink
    /// (FlumeUtils.createStream).
    #[arg(long, conflicts_with = "flume_pull")]
    flume_push: Option<String>,
    /// Instead of Kafka: poll the Spark sinks of Flume agents at `HOST:PORT[,HOST:PORT...]`
    /// (FlumeUtils.createPollingStream); each batch is acked once counted.
    #[arg(long, value_delimiter = ',')]
    flume_pull: Vec<String>,
    /// Flume pull mode: events asked for per request (maxBatchSize).
    #[arg(long, default_value_t = sluice_spark::DEFAULT_MAX_BATCH_SIZE)]
    flume_max_batch_size: i32,
    /// Flume pull mode: requests per sink per batch (parallelism).
    #[arg(long, default_value_t = sluice_spark::DEFAULT_PARALLELISM)]
    flume_parallelism: usize,
    /// Topics to subscribe to, comma-separated (ConsumerStrategies.Subscribe).
    #[arg(long, value_delimiter = ',', conflicts_with = "topic_pattern")]
    topics: Vec<String>,
    /// A regex; every topic whose whole name matches is read, new ones included
    /// (ConsumerStrategies.SubscribePattern).
    #[arg(long)]
    topic_pattern: Option<String>,
    /// The batch interval: `500ms`, `2s`, `1m`; a bare number is seconds.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    batch_interval: Duration,
    /// Keep exactly-once counts and offsets in Redis (`redis://HOST:PORT/DB`); the stream
    /// starts from the offsets stored there.
    #[arg(long, conflicts_with = "output")]
    redis: Option<String>,
    /// Exactly-once output to Kafka: `kafka:TOPIC`. Each batch's counts (key word, value
    /// count) and its offsets (committed to `--group`) go in one transaction; the stream
    /// restarts from the group's offsets. Needs `--group` and `--transactional-id`.
    #[arg(long, value_name = "kafka:TOPIC", requires_all = ["group", "transactional_id"])]
    output: Option<String>,
    /// The Kafka `transactional.id` of `--output kafka:...`: a restarted process with the
    /// same id fences the old one and aborts its unfinished batch.
    #[arg(long)]
    transactional_id: Option<String>,
    /// Keep exactly-once counts, offsets and watermark in PostgreSQL
    /// (`postgresql://USER@HOST:PORT/DB`), one transaction per batch; the stream starts from
    /// the offsets stored there. Tables are created if missing. Not with `--window`, whose
    /// windowed counts go to Redis only (the library's PgSink takes windowed updates).
    #[arg(long, value_name = "URL", conflicts_with_all = ["redis", "output", "flume_push", "flume_pull", "window"])]
    postgres: Option<String>,
    /// Table prefix in PostgreSQL: `<prefix>_results`, `_distinct`, `_offsets`, `_watermark`.
    #[arg(long, default_value = sluice_spark::DEFAULT_PG_PREFIX)]
    postgres_prefix: String,
    /// Connections in the PostgreSQL pool.
    #[arg(long, default_value_t = sluice_spark::DEFAULT_POOL_SIZE)]
    postgres_pool_size: usize,
    /// Key prefix in Redis: `<prefix>:counts` and `<prefix>:offsets`.
    #[arg(long, default_value = sluice_spark::DEFAULT_PREFIX)]
    redis_prefix: String,
    /// Kafka group.id: committed offsets are read at start and each batch's ranges are
    /// committed with the next batch.
    #[arg(long)]
    group: Option<String>,
    /// spark.streaming.kafka.maxRatePerPartition (records/s, 0 = no limit).
    #[arg(long, default_value_t = 0)]
    max_rate_per_partition: i64,
    /// spark.streaming.kafka.minRatePerPartition (records per batch while limited).
    #[arg(long, default_value_t = 1)]
    min_rate_per_partition: i64,
    /// spark.streaming.backpressure.enabled.
    #[arg(long)]
    backpressure: bool,
    /// spark.streaming.backpressure.initialRate (records/s, 0 = none).
    #[arg(long, default_value_t = 0)]
    initial_rate: i64,
    /// auto.offset.reset: where partitions without a stored or committed offset start.
    #[arg(long, value_enum, default_value = "latest")]
    starting: Starting,
    /// How many of each batch's most frequent words to print.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Any other Spark or Kafka setting, `KEY=VALUE` (repeatable), e.g.
    /// `--conf spark.streaming.kafka.allowNonConsecutiveOffsets=true`; Kafka's client
    /// security keys (`security.protocol`, `sasl.mechanism`, `sasl.jaas.config`, `ssl.*`)
    /// and `client.id` configure the Kafka connection.
    #[arg(long = "conf", value_name = "KEY=VALUE")]
    conf: Vec<String>,
    /// Event time: `--window`, `--slide`, `--watermark`, `--event-time`, `--late`.
    #[command(flatten)]
    window: cli_window::WindowArgs,
    /// The streaming UI (Spark's Streaming tab; `/metrics` for Prometheus) on `HOST:PORT`
    /// (port 0: any free one; a taken port is retried upwards, as Spark does), or `off`.
    /// [default: 127.0.0.1:4040]
    #[arg(long, value_name = "HOST:PORT|off", conflicts_with_all = ["flume_push", "flume_pull"])]
    ui: Option<String>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 500ms, 2s or 1m"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        other => return Err(format!("unknown duration unit {other:?} in {s:?}")),
    };
    if secs.is_nan() || secs <= 0.0 || !secs.is_finite() {
        return Err(format!("duration {s:?} must be above zero"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal, and never with NO_COLOR set (no-color.org), as the
        // broker does: log files and container logs get plain text.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Wordcount(args) => wordcount_main(args).await,
        Command::Job(args) => job_main(args).await,
    }
}

async fn job_main(args: JobArgs) -> anyhow::Result<()> {
    let shutdown = Shutdown::listen()?;
    let spec = sluice_spark::job::load(&args.file)?;
    if args.check {
        println!("{}: ok", args.file.display());
        return Ok(());
    }
    let listeners: Vec<std::sync::Arc<dyn sluice_spark::StreamingListener>> =
        match serve_ui(args.ui.as_deref(), spec.stream.batch_interval).await? {
            Some(history) => vec![std::sync::Arc::new(history)],
            None => Vec::new(),
        };
    sluice_spark::job::run_with_listeners(spec, listeners, shutdown.wait())
        .await
        .with_context(|| format!("job {}", args.file.display()))
}

/// Listens for Ctrl-C (SIGINT) and SIGTERM from the moment it is built, so a signal
/// that arrives while the stream is still starting is not lost (or fatal).
struct Shutdown {
    #[cfg(unix)]
    signals: Vec<tokio::signal::unix::Signal>,
}

impl Shutdown {
    fn listen() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let signals = vec![
                signal(SignalKind::interrupt()).context("listen for SIGINT")?,
                signal(SignalKind::terminate()).context("listen for SIGTERM")?,
            ];
            Ok(Self { signals })
        }
        #[cfg(not(unix))]
        {
            Ok(Self {})
        }
    }

    /// Resolves at the first signal.
    async fn wait(mut self) {
        #[cfg(unix)]
        {
            let [int, term] = self.signals.as_mut_slice() else {
                return;
            };
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn wordcount_main(args: WordcountArgs) -> anyhow::Result<()> {
    let shutdown = Shutdown::listen()?;
    if args.flume_push.is_some() || !args.flume_pull.is_empty() {
        return flume_main(args, shutdown).await;
    }
    let bootstrap = args.bootstrap_server.clone().unwrap_or_default();
    let mut config = StreamConfig::new(args.batch_interval);
    config.group_id = args.group.clone();
    config.max_rate_per_partition = args.max_rate_per_partition;
    config.min_rate_per_partition = args.min_rate_per_partition;
    config.backpressure = args.backpressure;
    config.initial_rate = args.initial_rate;
    config.auto_offset_reset = match args.starting {
        Starting::Earliest => AutoOffsetReset::Earliest,
        Starting::Latest => AutoOffsetReset::Latest,
        Starting::None => AutoOffsetReset::None,
    };
    // Kafka client keys (security.protocol, sasl.*, ssl.*, client.id) build the client's
    // config; every other key is a stream setting.
    let mut client_params = Vec::new();
    for kv in &args.conf {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("--conf {kv:?}: expected KEY=VALUE");
        };
        if sluice_spark::is_client_key(k) {
            client_params.push((k.trim(), v));
            continue;
        }
        config
            .set(k.trim(), v)
            .with_context(|| format!("--conf {kv}"))?;
    }
    config.validate().context("stream settings")?;

    let mut strategy = match (&args.topic_pattern, args.topics.is_empty()) {
        (Some(p), _) => ConsumerStrategy::subscribe_pattern(p)?,
        (None, false) => ConsumerStrategy::subscribe(args.topics.clone()),
        (None, true) => bail!("give --topics or --topic-pattern"),
    };
    if let Some(job) = cli_window::WindowJob::from_args(&args.window)? {
        let common = cli_window::Common {
            bootstrap,
            client_params,
            strategy,
            config,
            redis: args.redis.clone(),
            redis_prefix: args.redis_prefix.clone(),
            commit: args.group.is_some(),
            top: args.top,
            ui: args.ui.clone(),
        };
        return cli_window::run(job, common, shutdown.wait()).await;
    }
    let sink = match &args.redis {
        None => None,
        Some(url) => {
            let sink = RedisSink::connect(url, &args.redis_prefix).await?;
            let stored = sink.stored_offsets().await?;
            tracing::info!(
                partitions = stored.len(),
                "starting from the offsets stored in redis"
            );
            strategy = strategy.with_offsets(stored);
            Some(sink)
        }
    };

    let pg = match &args.postgres {
        None => None,
        Some(url) => {
            let (sink, checkpoint) =
                pg_start(url, &args.postgres_prefix, args.postgres_pool_size).await?;
            strategy = strategy.with_offsets(checkpoint.offsets);
            Some((sink, checkpoint.watermark))
        }
    };

    let client_config = sluice_spark::client_config(&bootstrap, client_params)?;
    let client = Client::connect(client_config)
        .await
        .with_context(|| format!("connect to {bootstrap}"))?;
    // The Kafka output starts before the stream: its InitProducerId aborts whatever a killed
    // predecessor left open, so the group's offsets are settled when the stream reads them.
    let kafka_out = match &args.output {
        None => None,
        Some(spec) => {
            let Some(topic) = spec.strip_prefix("kafka:").filter(|t| !t.is_empty()) else {
                bail!("--output {spec:?}: expected kafka:TOPIC");
            };
            let (Some(group), Some(id)) = (&args.group, &args.transactional_id) else {
                bail!("--output kafka:... needs --group and --transactional-id");
            };
            let sink = KafkaSink::create(&client, topic, id, group)
                .await
                .with_context(|| format!("start the kafka output to {topic}"))?;
            Some(std::sync::Arc::new(tokio::sync::Mutex::new(sink)))
        }
    };
    let mut stream = DirectStream::create(client, strategy, config)
        .await
        .context("create the direct stream")?;
    start_ui(args.ui.as_deref(), &mut stream).await?;
    let commits = stream.commit_queue();
    // With the Kafka output the offsets go in each batch's transaction instead.
    let commit = args.group.is_some() && kafka_out.is_none();
    let top = args.top;

    stream
        .for_each_batch(shutdown.wait(), move |batch| {
            let sink = sink.clone();
            let kafka_out = kafka_out.clone();
            let pg = pg.clone();
            let commits = commits.clone();
            async move {
                let per_partition = batch.map_partitions(wordcount::count_records).await?;
                let mut counts = Counts::new();
                for c in per_partition {
                    wordcount::merge(&mut counts, c);
                }
                let ranges = batch.offset_ranges();
                if let Some(sink) = &sink {
                    if sink.apply(ranges, &counts).await? == Applied::AlreadyApplied {
                        tracing::warn!(
                            time = batch.time_ms(),
                            "batch already in redis; not applied again"
                        );
                    }
                }
                if let Some((pg, watermark)) = &pg {
                    pg_apply(pg, batch.time_ms(), ranges, &counts, *watermark).await?;
                }
                if let Some(out) = &kafka_out {
                    let records = KafkaSink::word_count_records(batch.time_ms(), ranges, &counts);
                    out.lock().await.apply(ranges, records).await?;
                }
                print_batch(batch.time_ms(), ranges, &counts, top)?;
                if commit {
                    commits.commit_async(ranges);
                }
                Ok(())
            }
        })
        .await
        .context("word count stream")?;
    tracing::info!("stopped");
    Ok(())
}

/// The PostgreSQL sink, shared by the batch closures (one batch runs at a time).
type SharedPg = std::sync::Arc<tokio::sync::Mutex<PgSink>>;

/// Connects the PostgreSQL sink and reads where to resume.
async fn pg_start(
    url: &str,
    prefix: &str,
    pool_size: usize,
) -> anyhow::Result<(SharedPg, Checkpoint)> {
    let mut sink = PgSink::connect(url, prefix, pool_size)
        .await
        .context("start the postgres sink")?;
    let checkpoint = sink
        .restore()
        .await
        .context("read the postgres checkpoint")?;
    tracing::info!(
        partitions = checkpoint.offsets.len(),
        table = sink.offsets_table(),
        "starting from the offsets stored in postgres"
    );
    Ok((
        std::sync::Arc::new(tokio::sync::Mutex::new(sink)),
        checkpoint,
    ))
}

/// One batch's word counts and offsets into PostgreSQL, in one transaction. The word count
/// has no event time, so the restored watermark state is stored unchanged.
async fn pg_apply(
    pg: &SharedPg,
    time_ms: i64,
    ranges: &[sluice_spark::OffsetRange],
    counts: &Counts,
    watermark: WatermarkState,
) -> sluice_spark::Result<()> {
    let updates = Updates::from_counts(counts.iter().map(|(w, c)| (w.clone(), *c)));
    if pg.lock().await.apply(ranges, &updates, watermark).await? == Applied::AlreadyApplied {
        tracing::warn!(
            time = time_ms,
            "batch already in postgres; not applied again"
        );
    }
    Ok(())
}

/// Starts the streaming UI and prints `ui on http://HOST:PORT/` with the port bound.
/// `--ui off` starts none; without `--ui`, a UI that cannot bind is a warning, not a
/// failure (the user did not ask for it).
async fn start_ui(flag: Option<&str>, stream: &mut DirectStream) -> anyhow::Result<()> {
    if let Some(history) = serve_ui(flag, stream.config().batch_interval).await? {
        stream.add_streaming_listener(std::sync::Arc::new(history));
    }
    Ok(())
}

/// The UI's server and the batch history it shows (to register on the stream), or `None`
/// for `--ui off` or a default address that could not be bound.
async fn serve_ui(
    flag: Option<&str>,
    batch_interval: Duration,
) -> anyhow::Result<Option<sluice_spark::BatchHistory>> {
    if flag == Some("off") {
        return Ok(None);
    }
    let addr = flag.unwrap_or(sluice_spark::ui::DEFAULT_ADDR);
    match sluice_spark::ui::serve(addr, batch_interval).await {
        Ok((bound, history)) => {
            println!("ui on http://{bound}/");
            Ok(Some(history))
        }
        Err(e) if flag.is_none() => {
            tracing::warn!("streaming UI not started: {e}");
            Ok(None)
        }
        Err(e) => Err(e).context("--ui"),
    }
}

/// Word count over Flume events (push or pull); counts go to Redis without offsets
/// (at-least-once), after which pull mode acks the batch.
async fn flume_main(args: WordcountArgs, shutdown: Shutdown) -> anyhow::Result<()> {
    let sink = match &args.redis {
        Some(url) => Some(RedisSink::connect(url, &args.redis_prefix).await?),
        None => None,
    };
    let top = args.top;
    let job = move |batch: FlumeBatch| {
        let sink = sink.clone();
        async move {
            let mut counts = Counts::new();
            for e in batch.events() {
                wordcount::count_line(&mut counts, &String::from_utf8_lossy(&e.body));
            }
            if let Some(sink) = &sink {
                sink.add_counts(&counts).await?;
            }
            print_flume_batch(batch.time_ms(), batch.len(), &counts, top)?;
            Ok::<(), sluice_spark::BoxError>(())
        }
    };
    if let Some(addr) = &args.flume_push {
        let mut stream = FlumePushStream::bind(addr, args.batch_interval, PushOptions::default())
            .await
            .context("start the flume push receiver")?;
        stream
            .for_each_batch(shutdown.wait(), job)
            .await
            .context("flume push stream")?;
    } else {
        let options = PullOptions {
            max_batch_size: args.flume_max_batch_size,
            parallelism: args.flume_parallelism,
            ..PullOptions::default()
        };
        let mut stream = FlumePullStream::new(&args.flume_pull, args.batch_interval, options)?;
        stream
            .for_each_batch(shutdown.wait(), job)
            .await
            .context("flume pull stream")?;
    }
    tracing::info!("stopped");
    Ok(())
}

fn print_flume_batch(
    time_ms: i64,
    events: usize,
    counts: &Counts,
    top: usize,
) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "-------------------------------------------")?;
    writeln!(out, "Time: {time_ms} ms")?;
    writeln!(out, "-------------------------------------------")?;
    // What Spark's FlumeEventCount example prints.
    writeln!(out, "Received {events} flume events.")?;
    for (w, c) in wordcount::top(counts, top) {
        writeln!(out, "({w},{c})")?;
    }
    writeln!(out)?;
    out.flush()
}

fn print_batch(
    time_ms: i64,
    ranges: &[sluice_spark::OffsetRange],
    counts: &Counts,
    top: usize,
) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    // DStream.print()'s header, then what the seed job prints per batch.
    writeln!(out, "-------------------------------------------")?;
    writeln!(out, "Time: {time_ms} ms")?;
    writeln!(out, "-------------------------------------------")?;
    for r in ranges {
        writeln!(out, "{r}")?;
    }
    for (w, c) in wordcount::top(counts, top) {
        writeln!(out, "({w},{c})")?;
    }
    writeln!(out)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("2h").is_err());
        assert!(parse_duration("fast").is_err());
    }
}
