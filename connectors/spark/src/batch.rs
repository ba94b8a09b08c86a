//! [`Batch`]: one batch of the stream, Spark's `KafkaRDD`. It knows its offset ranges
//! (`HasOffsetRanges`) and reads them only when the job asks: [`Batch::map_partitions`]
//! runs a closure on every partition's records at once, one task per partition, with the
//! records streamed to the closure as they are fetched ([`PartitionRecords`] is a plain
//! iterator). One record is never copied: values stay the `Bytes` the fetch returned.

use std::sync::Arc;
use std::time::Duration;

use sluice_client::{Client, FetchedRecord};
use tokio::sync::mpsc;

use crate::error::{BoxError, Error, Result};
use crate::range::OffsetRange;
use crate::read::{read_range, ReadOptions};

/// Fetched chunks buffered between a partition's fetch task and its closure: enough to
/// overlap fetching with processing, bounded so a slow job holds little memory.
const CHUNKS_IN_FLIGHT: usize = 2;
/// How long one fetch waits for records the range says exist. Short: they are below the
/// high watermark already; the poll timeout bounds the total.
const FETCH_MAX_WAIT: Duration = Duration::from_millis(100);

/// One batch: its time, its offset ranges, and the means to read them.
#[derive(Debug, Clone)]
pub struct Batch {
    time_ms: i64,
    ranges: Arc<[OffsetRange]>,
    client: Client,
    options: ReadOptions,
    max_bytes: i32,
}

impl Batch {
    pub(crate) fn new(
        time_ms: i64,
        ranges: Vec<OffsetRange>,
        client: Client,
        options: ReadOptions,
        max_bytes: i32,
    ) -> Self {
        Self {
            time_ms,
            ranges: ranges.into(),
            client,
            options,
            max_bytes,
        }
    }

    /// The batch time in ms since the epoch (Spark's batch `Time`).
    pub fn time_ms(&self) -> i64 {
        self.time_ms
    }

    /// One range per partition, sorted by topic and partition (`HasOffsetRanges`).
    pub fn offset_ranges(&self) -> &[OffsetRange] {
        &self.ranges
    }

    /// The number of offsets the batch covers (Spark's input record count).
    pub fn count(&self) -> i64 {
        self.ranges.iter().map(OffsetRange::count).sum()
    }

    /// Runs `f` on each partition's records, all partitions at once (`mapPartitions`):
    /// each partition is fetched by its own task and `f` runs on the blocking pool,
    /// consuming the records as they arrive. Returns one result per range, in range
    /// order. A fetch failure or a panic in `f` fails the whole call.
    pub async fn map_partitions<T, F>(&self, f: F) -> Result<Vec<T>>
    where
        F: Fn(PartitionRecords) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        let f = Arc::new(f);
        let mut tasks = Vec::with_capacity(self.ranges.len());
        for range in self.ranges.iter().cloned() {
            let (tx, rx) = mpsc::channel::<Vec<FetchedRecord>>(CHUNKS_IN_FLIGHT);
            let fetcher = (range.count() > 0).then(|| {
                let client = self.client.clone();
                let options = self.options;
                let max_bytes = self.max_bytes;
                let range = range.clone();
                tokio::spawn(async move {
                    read_range(
                        &range,
                        options,
                        |offset| {
                            let client = client.clone();
                            let topic = range.topic.clone();
                            async move {
                                client
                                    .fetch_isolated(
                                        &topic,
                                        range.partition,
                                        offset,
                                        max_bytes,
                                        FETCH_MAX_WAIT,
                                        options.isolation,
                                    )
                                    .await
                            }
                        },
                        |chunk| {
                            let tx = tx.clone();
                            async move { tx.send(chunk).await.is_ok() }
                        },
                    )
                    .await
                })
            });
            let f = Arc::clone(&f);
            let records = PartitionRecords {
                range: range.clone(),
                rx,
                current: Vec::new().into_iter(),
            };
            let worker = tokio::task::spawn_blocking(move || f(records));
            tasks.push((range, fetcher, worker));
        }
        let mut out = Vec::with_capacity(tasks.len());
        let mut first_error: Option<Error> = None;
        for (range, fetcher, worker) in tasks {
            let value = worker.await;
            let fetched = match fetcher {
                None => Ok(()),
                Some(h) => h.await.unwrap_or_else(|e| {
                    Err(self.job_error(
                        format!("fetch task of {} failed: {e}", range.topic_partition()).into(),
                    ))
                }),
            };
            match (value, fetched) {
                (_, Err(e)) => {
                    first_error.get_or_insert(e);
                }
                (Err(e), Ok(())) => {
                    first_error.get_or_insert(self.job_error(
                        format!("partition {} task failed: {e}", range.topic_partition()).into(),
                    ));
                }
                (Ok(v), Ok(())) => out.push(v),
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Reads every partition into memory: one `Vec` of records per range, in range order.
    pub async fn collect(&self) -> Result<Vec<Vec<FetchedRecord>>> {
        self.map_partitions(|p| p.collect()).await
    }

    fn job_error(&self, source: BoxError) -> Error {
        Error::Job {
            batch_time_ms: self.time_ms,
            source,
        }
    }
}

/// The records of one partition's range, in offset order, as they are fetched.
#[derive(Debug)]
pub struct PartitionRecords {
    range: OffsetRange,
    rx: mpsc::Receiver<Vec<FetchedRecord>>,
    current: std::vec::IntoIter<FetchedRecord>,
}

impl PartitionRecords {
    /// The range these records come from.
    pub fn range(&self) -> &OffsetRange {
        &self.range
    }
}

impl Iterator for PartitionRecords {
    type Item = FetchedRecord;

    fn next(&mut self) -> Option<FetchedRecord> {
        loop {
            if let Some(r) = self.current.next() {
                return Some(r);
            }
            // Runs on the blocking pool (see `map_partitions`), where blocking is allowed.
            self.current = self.rx.blocking_recv()?.into_iter();
        }
    }
}
