//! Running a job: [`run`] connects, opens the sink and restores where it left off, loads
//! the tables and starts their reloaders, then drives a [`DirectStream`] with
//! [`DirectStream::for_each_batch`] (the same loop the `wordcount` subcommand runs). Each
//! batch: every partition runs the [`Pipeline`] on the blocking pool against one snapshot
//! of the tables and the watermark in force; the partitions' partials merge into the
//! batch's [`Updates`]; the watermark advances; late records go to their side output; the
//! sink applies the batch.
//!
//! Delivery: a [`ResultSink`] (Redis, PostgreSQL) stores results, offsets and the watermark
//! atomically, and the stream restarts from it (exactly-once); the Kafka sink writes results,
//! late records and offsets in one transaction, with the watermark state as the offsets'
//! metadata (exactly-once, late records included); stdout keeps nothing. With a Redis or
//! PostgreSQL sink, late records are written to their topic before the batch's transaction,
//! so a batch replayed after a crash may write them twice (at-least-once).

use std::future::Future;
use std::sync::Arc;

use sluice_client::Client;
use tokio::sync::Mutex;

use crate::agg::Updates;
use crate::batch::Batch;
use crate::error::{BoxError, Error, Result};
use crate::job::output::{kafka_records, LateWriter, StdoutSink};
use crate::job::record::{BatchContext, LateOutput, PartitionOutput, Pipeline, Skipped};
use crate::job::spec::{JobSpec, Late, SinkSpec, WindowSpec};
use crate::job::table::{Reloader, Table};
use crate::kafka_sink::KafkaSink;
use crate::listener::StreamingListener;
use crate::pg_sink::PgSink;
use crate::redis_sink::RedisSink;
use crate::sink::{Applied, Checkpoint, ResultSink};
use crate::stream::DirectStream;
use crate::window::{Watermark, Windows};

/// Where a job's results go.
enum Sink {
    /// Redis or PostgreSQL: results, offsets and watermark together.
    Result(Box<dyn ResultSink>),
    /// A Kafka topic, in a transaction with the offsets.
    Kafka(Box<KafkaSink>),
    /// Printed.
    Stdout(StdoutSink),
}

/// What carries over from batch to batch.
struct State {
    sink: Sink,
    watermark: Option<Watermark>,
    late: Option<LateWriter>,
    windows: Option<Windows>,
}

/// Opens the [`ResultSink`] the job's `[sink]` names (`None` for the Kafka and stdout
/// sinks); a windowed job's sink learns the windows, to mark windows final.
pub async fn open_result_sink(
    spec: &SinkSpec,
    window: Option<&WindowSpec>,
) -> Result<Option<Box<dyn ResultSink>>> {
    match spec {
        SinkSpec::Redis { url, prefix } => {
            let mut sink = RedisSink::connect(url, prefix).await?;
            if let Some(w) = window {
                sink = sink.with_windows(w.windows, w.watermark);
            }
            Ok(Some(Box::new(sink)))
        }
        SinkSpec::Postgres {
            url,
            prefix,
            pool_size,
        } => Ok(Some(Box::new(
            PgSink::connect(url, prefix, *pool_size).await?,
        ))),
        SinkSpec::Kafka { .. } | SinkSpec::Stdout { .. } => Ok(None),
    }
}

/// Runs the job until `shutdown` resolves; the batch in flight finishes first.
pub async fn run(spec: JobSpec, shutdown: impl Future<Output = ()>) -> Result<()> {
    run_with_listeners(spec, Vec::new(), shutdown).await
}

/// [`run`], with `listeners` told of every completed batch (the streaming page's history,
/// for one).
pub async fn run_with_listeners(
    spec: JobSpec,
    listeners: Vec<Arc<dyn StreamingListener>>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let client_config = crate::kafka_params::client_config(
        &spec.bootstrap,
        spec.client_params.iter().map(|(k, v)| (k, v)),
    )?;
    let client = Client::connect(client_config).await?;
    let group = spec.stream.group_id.clone();

    let mut strategy = spec.strategy.clone();
    let mut checkpoint = Checkpoint::default();
    let sink = match open_result_sink(&spec.sink, spec.window.as_ref()).await? {
        Some(mut s) => {
            checkpoint = s.restore().await?;
            tracing::info!(
                partitions = checkpoint.offsets.len(),
                "starting from the offsets stored with the results"
            );
            strategy = strategy.with_offsets(checkpoint.offsets.clone());
            Sink::Result(s)
        }
        None => match &spec.sink {
            SinkSpec::Kafka {
                topic,
                transactional_id,
            } => {
                // Before the stream reads the group's offsets: InitProducerId aborts what a
                // killed predecessor left open (see kafka_sink).
                let group = group.as_deref().unwrap_or_default();
                Sink::Kafka(Box::new(
                    KafkaSink::create(&client, topic, transactional_id, group).await?,
                ))
            }
            SinkSpec::Stdout { num_rows } => Sink::Stdout(StdoutSink::new(
                *num_rows,
                spec.window.as_ref().map(|w| w.windows),
            )),
            SinkSpec::Redis { .. } | SinkSpec::Postgres { .. } => {
                return Err(Error::Config("[sink]: no result sink opened".to_owned()))
            }
        },
    };

    let mut tables = Vec::with_capacity(spec.tables.len());
    for t in &spec.tables {
        tables.push(Table::load(t.clone()).await?);
    }
    let _reloaders: Vec<Reloader> = tables.iter().map(Table::watch).collect();

    let late = match spec.window.as_ref().map(|w| &w.late) {
        Some(Late::Kafka(topic)) => Some(LateWriter::create(client.clone(), topic).await?),
        _ => None,
    };
    let pipeline = Arc::new(Pipeline {
        parser: spec.parser.clone(),
        joins: spec
            .tables
            .iter()
            .map(|t| (t.name.clone(), t.on.clone(), t.join))
            .collect(),
        filters: spec.filters.clone(),
        key: spec.key.clone(),
        missing: spec.missing.clone(),
        aggregate: spec.aggregate,
        value_field: spec.value_field.clone(),
        window: spec
            .window
            .as_ref()
            .map(|w| (w.windows, w.time_field.clone())),
        keep_late: late.is_some(),
    });
    let commit = group.is_some() && !matches!(spec.sink, SinkSpec::Kafka { .. });
    let mut stream = DirectStream::create(client.clone(), strategy, spec.stream.clone()).await?;
    if let (Sink::Kafka(_), Some(group), Some(_)) = (&sink, &group, &spec.window) {
        // The watermark state was committed with the offsets the stream starts from.
        let partitions: Vec<(String, i32)> = stream
            .current_offsets()
            .keys()
            .map(|tp| (tp.topic.clone(), tp.partition))
            .collect();
        checkpoint.watermark = KafkaSink::restored_watermark(&client, group, &partitions).await?;
        tracing::info!(
            max_event_ms = checkpoint.watermark.max_event_ms,
            late_total = checkpoint.watermark.late_total,
            "watermark restored from the group's committed offsets"
        );
    }
    let state = Arc::new(Mutex::new(State {
        watermark: spec
            .window
            .as_ref()
            .map(|w| Watermark::new(w.watermark, checkpoint.watermark)),
        windows: spec.window.as_ref().map(|w| w.windows),
        sink,
        late,
    }));
    for l in listeners {
        stream.add_streaming_listener(l);
    }
    let commits = stream.commit_queue();
    tracing::info!(job = %spec.path.display(), "job started");
    stream
        .for_each_batch(shutdown, move |batch| {
            let state = Arc::clone(&state);
            let pipeline = Arc::clone(&pipeline);
            let tables = tables.clone();
            let commits = commits.clone();
            async move {
                let mut state = state.lock().await;
                run_batch(&mut state, &pipeline, &tables, &batch).await?;
                if commit {
                    commits.commit_async(batch.offset_ranges());
                }
                Ok::<(), BoxError>(())
            }
        })
        .await?;
    tracing::info!("job stopped");
    Ok(())
}

/// One batch, start to sink.
async fn run_batch(
    state: &mut State,
    pipeline: &Arc<Pipeline>,
    tables: &[Table],
    batch: &Batch,
) -> Result<()> {
    let ctx = Arc::new(BatchContext {
        tables: tables.iter().map(Table::snapshot).collect(),
        watermark: state.watermark.clone(),
    });
    let p = Arc::clone(pipeline);
    let outputs = batch
        .map_partitions(move |records| {
            let range = records.range().clone();
            p.run(&ctx, &range.topic, range.partition, records)
        })
        .await?;
    let mut updates = Updates::default();
    let mut late: Vec<LateOutput> = Vec::new();
    let mut skipped = Skipped::default();
    let mut max_event: Option<i64> = None;
    for out in outputs {
        let PartitionOutput {
            updates: u,
            late: l,
            max_event_ms,
            skipped: s,
        } = out;
        for (cell, partial) in u.cells {
            updates.add(cell, partial);
        }
        updates.late.extend(u.late);
        late.extend(l);
        skipped.add(s);
        max_event = max_event.max(max_event_ms);
    }
    if skipped.total() > 0 {
        tracing::debug!(time = batch.time_ms(), ?skipped, "records left out");
    }
    let late_count = u64::try_from(updates.late.len()).unwrap_or(u64::MAX);
    let watermark_state = match &mut state.watermark {
        Some(w) => {
            if let Some(m) = max_event {
                w.observe(m);
            }
            w.end_batch(late_count)
        }
        None => Default::default(),
    };
    let ranges = batch.offset_ranges();
    if let (Some(writer), false) = (&state.late, late.is_empty()) {
        if !matches!(state.sink, Sink::Kafka(_)) {
            writer.write(&late).await?;
        }
    }
    match &mut state.sink {
        Sink::Result(sink) => {
            if sink.apply(ranges, &updates, watermark_state).await? == Applied::AlreadyApplied {
                tracing::warn!(
                    time = batch.time_ms(),
                    "batch already applied; not applied again"
                );
            }
        }
        Sink::Kafka(sink) => {
            let records = kafka_records(batch.time_ms(), ranges, &updates, state.windows.as_ref());
            let side = match &state.late {
                Some(writer) => writer.batches(&late),
                None => Vec::new(),
            };
            let watermark = state.watermark.is_some().then_some(watermark_state);
            sink.apply_with(ranges, records, side, watermark).await?;
        }
        Sink::Stdout(sink) => {
            let wm = state.watermark.as_ref().and_then(Watermark::current);
            sink.apply(batch.time_ms(), ranges, &updates, wm)
                .map_err(|e| Error::Config(format!("write to stdout: {e}")))?;
        }
    }
    Ok(())
}
