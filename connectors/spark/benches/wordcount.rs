//! Throughput of the word count job through the direct stream: records/s and MB/s from
//! fetching a batch's ranges to the merged counts, over 1 KiB lines in 6 partitions.
//!
//! Starts the `sluice` broker found next to this benchmark (`<target>/release/sluice`, so
//! `cargo build --release --bin sluice` first) or at `$SLUICE_BIN`, fills a topic, then
//! reads it all as one batch several times (each a fresh stream from the earliest offsets)
//! and reports each run. `SLUICE_SPARK_BENCH_RECORDS` changes the record count.
//!
//! Run: `cargo bench -p sluice-spark --bench wordcount`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sluice_client::{Client, ClientConfig, ProduceBatch, ProduceOptions, ProduceRecord};
use sluice_spark::wordcount::{self, Counts};
use sluice_spark::{AutoOffsetReset, ConsumerStrategy, DirectStream, StreamConfig};

const PARTITIONS: i32 = 6;
const LINE_BYTES: usize = 1024;
const DEFAULT_RECORDS: usize = 120_000;
const RUNS: usize = 3;

fn broker_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SLUICE_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().join("sluice")
}

/// A 1 KiB line of words from a 2,000-word vocabulary, single spaces between them.
fn line(seed: &mut u64) -> String {
    let mut s = String::with_capacity(LINE_BYTES + 16);
    while s.len() < LINE_BYTES - 12 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(&format!("word{}", *seed % 2000));
    }
    while s.len() < LINE_BYTES {
        s.push('x');
    }
    s
}

#[tokio::main]
async fn main() {
    let records: usize = std::env::var("SLUICE_SPARK_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_RECORDS);
    let bin = broker_bin();
    assert!(
        bin.exists(),
        "{} not found: `cargo build --release --bin sluice` or set SLUICE_BIN",
        bin.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("sluice.toml"), "").unwrap();
    let mut broker = Command::new(&bin)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path().join("data"))
        .arg("--config")
        .arg(tmp.path().join("sluice.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(broker.stdout.take().unwrap()).lines();
    let addr = loop {
        let l = out.next().expect("broker exited").unwrap();
        if let Some(a) = l.trim().strip_prefix("listening on ") {
            break a.to_owned();
        }
    };
    std::thread::spawn(move || for _ in out {});

    let client = Client::connect(ClientConfig::new([addr.clone()]))
        .await
        .unwrap();
    client
        .create_topic("bench-lines", PARTITIONS, 1, &[])
        .await
        .unwrap();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let lines: Vec<bytes::Bytes> = (0..1000)
        .map(|_| line(&mut seed).into_bytes().into())
        .collect();
    let fill = Instant::now();
    let per_call = 500;
    let mut written = 0;
    while written < records {
        let batches: Vec<ProduceBatch> = (0..PARTITIONS)
            .map(|p| ProduceBatch {
                topic: "bench-lines".to_owned(),
                partition: p,
                records: (0..per_call)
                    .map(|i| ProduceRecord::new(lines[(written + i) % lines.len()].clone()))
                    .collect(),
            })
            .collect();
        for r in client
            .produce_batches(&batches, &ProduceOptions::default())
            .await
        {
            r.unwrap();
        }
        written += per_call * PARTITIONS as usize;
    }
    println!(
        "filled {written} records of {LINE_BYTES} B in {PARTITIONS} partitions in {:.1} s",
        fill.elapsed().as_secs_f64()
    );

    for run in 1..=RUNS {
        let config = StreamConfig::new(Duration::from_secs(1))
            .with_auto_offset_reset(AutoOffsetReset::Earliest);
        let mut stream = DirectStream::create(
            client.clone(),
            ConsumerStrategy::subscribe(["bench-lines"]),
            config,
        )
        .await
        .unwrap();
        let batch = stream.next_batch(0).await.unwrap();
        let n = batch.count();
        let started = Instant::now();
        let per_partition = batch
            .map_partitions(wordcount::count_records)
            .await
            .unwrap();
        let mut counts = Counts::new();
        for c in per_partition {
            wordcount::merge(&mut counts, c);
        }
        let secs = started.elapsed().as_secs_f64();
        let words: i64 = counts.values().sum();
        let mb = n as f64 * LINE_BYTES as f64 / 1e6;
        println!(
            "run {run}: {n} records, {words} words, {} distinct, {secs:.2} s: {:.0} records/s, {:.1} MB/s",
            counts.len(),
            n as f64 / secs,
            mb / secs
        );
    }
    let _ = broker.kill();
    let _ = broker.wait();
}
