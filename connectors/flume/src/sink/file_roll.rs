//! The `file_roll` sink (Flume's `RollingFileSink`): writes events to files in
//! `sink.directory`, starting a new file every `sink.rollInterval` seconds.
//!
//! Keys and defaults: **sink.directory**, `sink.rollInterval` 30 (0 = one file forever),
//! `sink.batchSize` 100, `sink.serializer` TEXT (`sink.serializer.appendNewline` true; also
//! HEADER_AND_TEXT and AVRO_EVENT), `sink.pathManager` DEFAULT with
//! `sink.pathManager.prefix` "" and `sink.pathManager.extension` "".
//!
//! File names are `<prefix><startEpochMs>-<n>[.<extension>]`: the start time of the sink and
//! a counter from 1. As in Flume:
//! - the roll is a fixed-rate timer that only raises a flag; the file is switched at the
//!   next `process()`, which opens a new file before it looks at the channel, so an idle sink
//!   still creates a new (empty) file every interval;
//! - the directory is not created; a missing directory makes every `process()` fail, naming
//!   the file;
//! - each transaction is written (not fsynced) before the channel commit.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use async_trait::async_trait;
use tokio::time::Instant;

use super::hdfs::serializer::{EventSerializer, SerializerSpec};
use super::{take_batch, Sink, Status};
use crate::channel::Channel;
use crate::conf::{ConfigError, Context};
use crate::counters::{Counters, Kind};

/// Build the sink.
pub fn build(
    name: &str,
    ctx: &Context,
    channel: Arc<dyn Channel>,
) -> Result<Box<dyn Sink>, ConfigError> {
    let directory = PathBuf::from(ctx.require("sink.directory")?);
    // Flume's Long.parseLong: 0 or less means one file forever.
    let roll_interval = u64::try_from(ctx.parse::<i64>("sink.rollInterval", 30)?).unwrap_or(0);
    let batch: usize = ctx.parse("sink.batchSize", 100)?;
    if batch == 0 {
        return Err(ctx.error("sink.batchSize", "must be greater than 0"));
    }
    let serializer = SerializerSpec::from_context(ctx, "sink.serializer")?;
    let manager = ctx.string("sink.pathManager", "DEFAULT");
    if !manager.eq_ignore_ascii_case("DEFAULT")
        && manager != "org.apache.flume.formatter.output.DefaultPathManager$Builder"
    {
        return Err(ctx.error(
            "sink.pathManager",
            &format!("path manager {manager:?} is not supported by sluice-flume (only DEFAULT)"),
        ));
    }
    let pm = ctx.sub("sink.pathManager.");
    let start_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    Ok(Box::new(FileRollSink {
        name: name.to_string(),
        channel,
        counters: Arc::new(Counters::new(Kind::Sink, name)),
        directory,
        roll_interval: (roll_interval > 0).then(|| Duration::from_secs(roll_interval)),
        batch,
        serializer,
        prefix: pm.string("prefix", ""),
        extension: pm.string("extension", ""),
        series: start_ms,
        index: 0,
        current: None,
        next_roll: None,
    }))
}

struct OpenFile {
    path: PathBuf,
    file: Arc<Mutex<File>>,
    serializer: Box<dyn EventSerializer>,
}

struct FileRollSink {
    name: String,
    channel: Arc<dyn Channel>,
    counters: Arc<Counters>,
    directory: PathBuf,
    roll_interval: Option<Duration>,
    batch: usize,
    serializer: SerializerSpec,
    prefix: String,
    extension: String,
    series: u128,
    index: u64,
    current: Option<OpenFile>,
    /// When the fixed-rate roll timer fires next.
    next_roll: Option<Instant>,
}

/// Write `data` to `file` on the blocking pool.
async fn write_all(file: &Arc<Mutex<File>>, data: Vec<u8>) -> std::io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    let f = file.clone();
    tokio::task::spawn_blocking(move || {
        let mut g = f
            .lock()
            .map_err(|_| std::io::Error::other("file lock poisoned"))?;
        g.write_all(&data)
    })
    .await
    .map_err(|e| std::io::Error::other(format!("write task failed: {e}")))?
}

impl FileRollSink {
    fn next_path(&mut self) -> PathBuf {
        self.index += 1;
        let mut name = format!("{}{}-{}", self.prefix, self.series, self.index);
        if !self.extension.is_empty() {
            name.push('.');
            name.push_str(&self.extension);
        }
        self.directory.join(name)
    }

    async fn close_current(&mut self) -> anyhow::Result<()> {
        let Some(mut open) = self.current.take() else {
            return Ok(());
        };
        let mut tail = Vec::new();
        open.serializer.flush(&mut tail);
        open.serializer.before_close(&mut tail);
        match write_all(&open.file, tail).await {
            Ok(()) => {
                self.counters.inc("ConnectionClosedCount");
                tracing::info!("sink {}: closed {}", self.name, open.path.display());
                Ok(())
            }
            Err(e) => {
                self.counters.inc("ConnectionFailedCount");
                Err(anyhow::anyhow!(
                    "unable to rotate file {}: {e}",
                    open.path.display()
                ))
            }
        }
    }

    async fn open_file(&mut self) -> anyhow::Result<()> {
        let path = self.next_path();
        let p = path.clone();
        let opened = tokio::task::spawn_blocking(move || File::create(&p)).await?;
        let file = match opened {
            Ok(f) => f,
            Err(e) => {
                self.counters.inc("ConnectionFailedCount");
                // Flume keeps the same file name for the next attempt.
                self.index -= 1;
                return Err(anyhow::anyhow!(
                    "failed to open file {} while delivering event: {e}",
                    path.display()
                ));
            }
        };
        let mut serializer = self.serializer.build();
        let mut head = Vec::new();
        serializer.after_create(&mut head);
        let file = Arc::new(Mutex::new(file));
        write_all(&file, head)
            .await
            .with_context(|| format!("writing the header of {}", path.display()))?;
        self.counters.inc("ConnectionCreatedCount");
        tracing::debug!("sink {}: opened {}", self.name, path.display());
        self.current = Some(OpenFile {
            path,
            file,
            serializer,
        });
        Ok(())
    }
}

#[async_trait]
impl Sink for FileRollSink {
    fn name(&self) -> &str {
        &self.name
    }
    fn channel(&self) -> &Arc<dyn Channel> {
        &self.channel
    }
    fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }
    fn batch_size(&self) -> Option<usize> {
        Some(self.batch)
    }

    async fn start(&mut self) -> anyhow::Result<()> {
        self.counters.started();
        match self.roll_interval {
            Some(i) => self.next_roll = Some(Instant::now() + i),
            None => tracing::info!(
                "sink {}: rollInterval is 0, file rolling will not happen",
                self.name
            ),
        }
        Ok(())
    }

    async fn process(&mut self) -> anyhow::Result<Status> {
        if let (Some(at), Some(interval)) = (self.next_roll, self.roll_interval) {
            let now = Instant::now();
            if now >= at {
                // Fixed rate: the next tick is a whole number of intervals after the first.
                let mut next = at;
                while next <= now {
                    next += interval;
                }
                self.next_roll = Some(next);
                self.close_current().await?;
            }
        }
        if self.current.is_none() {
            self.open_file().await?;
        }
        let Some(open) = self.current.as_mut() else {
            return Err(anyhow::anyhow!("no open file"));
        };

        let mut tx = self.channel.begin();
        let events = match take_batch(&mut tx, self.batch, &self.counters).await {
            Ok(ev) => ev,
            Err(e) => {
                self.counters.inc("ChannelReadFail");
                let _ = tx.rollback().await;
                return Err(e.into());
            }
        };
        let mut buf = Vec::new();
        for e in &events {
            open.serializer.write(e, &mut buf);
        }
        open.serializer.flush(&mut buf);
        let path = open.path.clone();
        if let Err(e) = write_all(&open.file, buf).await {
            self.counters.inc("EventWriteFail");
            let _ = tx.rollback().await;
            // The file may hold part of the batch; start a new one next time.
            self.current = None;
            return Err(anyhow::anyhow!("failed to write {}: {e}", path.display()));
        }
        if let Err(e) = tx.commit().await {
            self.counters.inc("ChannelReadFail");
            let _ = tx.rollback().await;
            return Err(e.into());
        }
        self.counters.add(
            "EventDrainSuccessCount",
            i64::try_from(events.len()).unwrap_or(i64::MAX),
        );
        Ok(if events.len() < self.batch {
            Status::Backoff
        } else {
            Status::Ready
        })
    }

    async fn stop(&mut self) {
        if let Err(e) = self.close_current().await {
            tracing::error!("sink {}: unable to close output stream: {e:#}", self.name);
        }
        self.counters.stopped();
        tracing::info!("sink {} stopped", self.name);
    }
}
