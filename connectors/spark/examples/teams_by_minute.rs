//! `teams-by-minute.toml` written as Rust with the library: JSON log lines enriched with
//! each host's team from `hosts.csv` (reloaded when it changes), counted per team per
//! 1-minute event-time window with 30 s of allowed lateness, exactly-once into Redis.
//!
//! `cargo run -p sluice-spark --example teams_by_minute`

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sluice_spark::job::spec::{JoinKind, TableSource, TableSpec};
use sluice_spark::job::table::Table;
use sluice_spark::{
    AutoOffsetReset, Cell, Client, ClientConfig, ConsumerStrategy, DirectStream, EventTime,
    Partial, RedisSink, ResultSink, StreamConfig, Updates, Watermark, Windows,
};
use tokio::sync::Mutex;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let windows = Windows::tumbling(Duration::from_secs(60))?;
    let lateness = Duration::from_secs(30);
    let event_time = EventTime::JsonField("ts".to_owned());

    // The sink is the checkpoint: results, offsets and watermark in one Lua script.
    let mut sink = RedisSink::connect("redis://127.0.0.1:6379/0", "teams")
        .await?
        .with_windows(windows, lateness);
    let checkpoint = sink.restore().await?;
    let watermark = Watermark::new(lateness, checkpoint.watermark);

    // A static table, reloaded when the file's size or modification time changes.
    let hosts = Table::load(TableSpec {
        name: "hosts".to_owned(),
        source: TableSource::Csv("connectors/spark/examples/hosts.csv".into()),
        key: Some("host".to_owned()),
        on: "host".to_owned(),
        join: JoinKind::Inner,
        reload_interval: Duration::from_secs(1),
    })
    .await?;
    let _reloader = hosts.watch();

    let client = Client::connect(ClientConfig::new(["127.0.0.1:9092"])).await?;
    let config = StreamConfig::new(Duration::from_secs(2))
        .with_group("teams-by-minute")
        .with_auto_offset_reset(AutoOffsetReset::Earliest);
    let strategy = ConsumerStrategy::subscribe(["logs"]).with_offsets(checkpoint.offsets);
    let mut stream = DirectStream::create(client, strategy, config).await?;

    let state = Arc::new(Mutex::new((sink, watermark)));
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    stream
        .for_each_batch(shutdown, |batch| {
            let state = Arc::clone(&state);
            let hosts = hosts.snapshot();
            let event_time = event_time.clone();
            async move {
                let mut state = state.lock().await;
                let (sink, watermark) = &mut *state;
                let wm = watermark.clone();
                // One task per partition: (team, window) partials, the max event time,
                // and the records dropped from every window.
                let parts = batch
                    .map_partitions(move |records| {
                        let mut cells: BTreeMap<Cell, Partial> = BTreeMap::new();
                        let (mut max, mut late) = (None::<i64>, 0u64);
                        for r in records {
                            let Some(t) = event_time.of(&r) else { continue };
                            let Some(v) = r.value.as_deref() else {
                                continue;
                            };
                            let Ok(doc) = serde_json::from_slice::<serde_json::Value>(v) else {
                                continue;
                            };
                            let host = doc.get("host").and_then(|h| h.as_str());
                            let team = host
                                .and_then(|h| hosts.get(h))
                                .and_then(|row| row.get("team"));
                            let Some(team) = team else { continue }; // inner join
                            max = max.max(Some(t));
                            let mut counted = false;
                            for start in windows.starts(t) {
                                if wm.is_window_late(windows.end(start)) {
                                    continue;
                                }
                                counted = true;
                                let cell = Cell::windowed(start, team.clone());
                                cells
                                    .entry(cell)
                                    .and_modify(|p| p.merge(Partial::Count(1)))
                                    .or_insert(Partial::Count(1));
                            }
                            late += u64::from(!counted);
                        }
                        (cells, max, late)
                    })
                    .await?;
                let mut updates = Updates::default();
                let mut late = 0;
                for (cells, max, l) in parts {
                    for (cell, partial) in cells {
                        updates.add(cell, partial);
                    }
                    if let Some(m) = max {
                        watermark.observe(m);
                    }
                    late += l;
                }
                let state = watermark.end_batch(late);
                sink.apply(batch.offset_ranges(), &updates, state).await?;
                Ok(())
            }
        })
        .await?;
    Ok(())
}
