//! The `file` channel (Flume's `FileChannel`): a queue that survives `kill -9`, kept as a
//! write-ahead log plus periodic checkpoints.
//!
//! Keys and defaults, as Flume 1.11: `checkpointDir` (~/.flume/file-channel/checkpoint),
//! `dataDirs` (comma list, ~/.flume/file-channel/data), `capacity` 1000000,
//! `transactionCapacity` 10000 (must be ≤ capacity), `checkpointInterval` 30000 ms,
//! `maxFileSize` 2146435071 (larger values are capped to it), `minimumRequiredSpace`
//! 524288000 (at least 1 MiB), `keep-alive` 3 s (how long a put waits for capacity),
//! `useDualCheckpoints` false with `backupCheckpointDir` (required then, and different from
//! `checkpointDir`), `checkpointOnClose` true, `fsyncPerTransaction` true, `fsyncInterval`
//! 5 s. Non-positive `capacity`, `transactionCapacity` or `checkpointInterval` fall back to
//! the default with a warning, as in Flume. `use-log-replay-v1`, `use-fast-replay` and
//! `compressBackupCheckpoint` are accepted and have no effect (there is one replay here);
//! `encryption.*` is refused, since the events would silently be written in clear.
//!
//! Design (module map):
//! - `record`: the log files `log-N` in the data dirs: put/take/commit/rollback records,
//!   each with a CRC32C and a rising write-order id. Our own format; Java's is not read.
//! - `checkpoint`: the queue of pointers (file, offset), the open transactions and the
//!   write-order id covered, written atomically (temp file, fsync, rename, fsync dir) to
//!   `checkpointDir` (and `backupCheckpointDir`).
//! - `replay`: the recovery rules: load the checkpoint (the backup if the primary is bad,
//!   else replay every log), apply committed transactions after it, return uncommitted
//!   takes to the head (redelivered), drop uncommitted puts.
//! - `store`: the live queue, the log writer (group commit), checkpoints, deletion of log
//!   files no queued event points into, directory locks (`in_use.lock`, so a second agent
//!   on the same dirs fails to start with a message naming the directory).
//!
//! Durability: `commit` returns after its commit record is fsynced (with
//! `fsyncPerTransaction = false`, after it is buffered; a timer fsyncs every
//! `fsyncInterval`). Puts become visible to takers when the commit record is appended, a
//! moment before the fsync ends; a crash in that moment may deliver an event whose source
//! was never told OK, which at-least-once allows. A torn record at the end of the newest
//! log file (a crash mid-write) is truncated on start, with a warning naming the file and
//! offset. After recovery a fresh checkpoint is written and writing starts in a new file.
//!
//! Deliberate differences from Flume: an event whose record cannot be read back (damaged
//! or missing log file) is dropped with an error naming the file and offset, where Flume
//! fails every take until the integrity tool is run; with several `dataDirs` one log file
//! is written at a time (file N in dir N mod count) instead of one file per dir in
//! parallel; recently put events are also kept in memory (up to 64 MiB) so takes rarely
//! read the disk. Counters: `ChannelCapacity`, `ChannelSize`, put/take attempt and success.

mod checkpoint;
mod record;
mod replay;
mod store;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{Channel, ChannelError, Transaction};
use crate::conf::{ConfigError, Context};
use crate::counters::{Counters, Kind};
use crate::event::Event;
use record::{Payload, Ptr};
use store::{Entry, Loaded, Store};

/// Flume's `DEFAULT_MAX_FILE_SIZE`, also the cap on `maxFileSize`.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 2_146_435_071;
/// Flume's `DEFAULT_CAPACITY`.
pub const DEFAULT_CAPACITY: usize = 1_000_000;
/// Flume's `DEFAULT_TRANSACTION_CAPACITY`.
pub const DEFAULT_TRANSACTION_CAPACITY: usize = 10_000;
/// Flume's `DEFAULT_CHECKPOINT_INTERVAL` (ms).
pub const DEFAULT_CHECKPOINT_INTERVAL_MS: u64 = 30_000;
/// Flume's `DEFAULT_MINIMUM_REQUIRED_SPACE`.
pub const DEFAULT_MINIMUM_REQUIRED_SPACE: u64 = 500 * 1024 * 1024;
/// Flume's `FLOOR_MINIMUM_REQUIRED_SPACE`.
pub const FLOOR_MINIMUM_REQUIRED_SPACE: u64 = 1024 * 1024;

/// Parsed `file` channel settings.
#[derive(Debug, Clone)]
pub struct FileConfig {
    /// `checkpointDir`.
    pub checkpoint_dir: PathBuf,
    /// `backupCheckpointDir`, when `useDualCheckpoints` is on.
    pub backup_checkpoint_dir: Option<PathBuf>,
    /// `dataDirs`.
    pub data_dirs: Vec<PathBuf>,
    /// `capacity`.
    pub capacity: usize,
    /// `transactionCapacity`.
    pub transaction_capacity: usize,
    /// `checkpointInterval`.
    pub checkpoint_interval: Duration,
    /// `maxFileSize`.
    pub max_file_size: u64,
    /// `minimumRequiredSpace`.
    pub minimum_required_space: u64,
    /// `keep-alive`.
    pub keep_alive: Duration,
    /// `checkpointOnClose`.
    pub checkpoint_on_close: bool,
    /// `fsyncPerTransaction`.
    pub fsync_per_transaction: bool,
    /// `fsyncInterval`.
    pub fsync_interval: Duration,
}

fn home() -> String {
    std::env::var("HOME")
        .unwrap_or_else(|_| ".".to_string())
        .replace('\\', "/")
}

impl FileConfig {
    /// Read the settings from `ctx` (channel `name`, for warnings).
    pub fn from_context(name: &str, ctx: &Context) -> Result<Self, ConfigError> {
        let home = home();
        let checkpoint_dir = PathBuf::from(
            ctx.string(
                "checkpointDir",
                &format!("{home}/.flume/file-channel/checkpoint"),
            )
            .trim(),
        );
        let data_dirs: Vec<PathBuf> = ctx
            .string("dataDirs", &format!("{home}/.flume/file-channel/data"))
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect();
        if data_dirs.is_empty() {
            return Err(ctx.error("dataDirs", "names no directory"));
        }
        let dual = ctx.bool("useDualCheckpoints", false)?;
        let backup_checkpoint_dir = if dual {
            let b = ctx.string("backupCheckpointDir", "").trim().to_string();
            if b.is_empty() {
                return Err(ctx.error(
                    "backupCheckpointDir",
                    "dual checkpointing is enabled (useDualCheckpoints = true) but the backup directory is not set",
                ));
            }
            let b = PathBuf::from(b);
            if b == checkpoint_dir {
                return Err(ctx.error(
                    "backupCheckpointDir",
                    "the checkpoint backup directory and the checkpoint directory are the same",
                ));
            }
            Some(b)
        } else {
            None
        };
        let mut capacity: i64 = ctx.parse("capacity", DEFAULT_CAPACITY as i64)?;
        if capacity <= 0 {
            tracing::warn!("file channel {name}: invalid capacity {capacity}; using the default {DEFAULT_CAPACITY}");
            capacity = DEFAULT_CAPACITY as i64;
        }
        let mut txcap: i64 =
            ctx.parse("transactionCapacity", DEFAULT_TRANSACTION_CAPACITY as i64)?;
        if txcap <= 0 {
            tracing::warn!(
                "file channel {name}: invalid transactionCapacity {txcap}; using the default {DEFAULT_TRANSACTION_CAPACITY}"
            );
            txcap = DEFAULT_TRANSACTION_CAPACITY as i64;
        }
        if txcap > capacity {
            return Err(ctx.error(
                "transactionCapacity",
                &format!("{txcap} is greater than the capacity of the channel ({capacity})"),
            ));
        }
        let mut interval: i64 =
            ctx.parse("checkpointInterval", DEFAULT_CHECKPOINT_INTERVAL_MS as i64)?;
        if interval <= 0 {
            tracing::warn!(
                "file channel {name}: invalid checkpointInterval {interval}; using the default {DEFAULT_CHECKPOINT_INTERVAL_MS}"
            );
            interval = DEFAULT_CHECKPOINT_INTERVAL_MS as i64;
        }
        let max_file_size: i64 = ctx.parse("maxFileSize", DEFAULT_MAX_FILE_SIZE as i64)?;
        let max_file_size = u64::try_from(max_file_size)
            .map_err(|_| ctx.error("maxFileSize", "must not be negative"))?
            .min(DEFAULT_MAX_FILE_SIZE);
        if max_file_size <= record::FILE_HEADER_LEN + 64 {
            return Err(ctx.error(
                "maxFileSize",
                &format!("{max_file_size} bytes is too small for a log file"),
            ));
        }
        let min_space: i64 = ctx.parse(
            "minimumRequiredSpace",
            DEFAULT_MINIMUM_REQUIRED_SPACE as i64,
        )?;
        let minimum_required_space = u64::try_from(min_space)
            .unwrap_or(0)
            .max(FLOOR_MINIMUM_REQUIRED_SPACE);
        let keep_alive: i64 = ctx.parse("keep-alive", 3)?;
        let fsync_interval: i64 = ctx.parse("fsyncInterval", 5)?;
        if ctx.sub("encryption.").iter().next().is_some() {
            return Err(ctx.error(
                "encryption.activeKey",
                "file channel encryption is not supported by sluice-flume (events would be written in clear); remove the encryption.* keys",
            ));
        }
        Ok(FileConfig {
            checkpoint_dir,
            backup_checkpoint_dir,
            data_dirs,
            capacity: usize::try_from(capacity).unwrap_or(DEFAULT_CAPACITY),
            transaction_capacity: usize::try_from(txcap).unwrap_or(DEFAULT_TRANSACTION_CAPACITY),
            checkpoint_interval: Duration::from_millis(
                u64::try_from(interval).unwrap_or(DEFAULT_CHECKPOINT_INTERVAL_MS),
            ),
            max_file_size,
            minimum_required_space,
            keep_alive: Duration::from_secs(u64::try_from(keep_alive).unwrap_or(0)),
            checkpoint_on_close: ctx.bool("checkpointOnClose", true)?,
            fsync_per_transaction: ctx.bool("fsyncPerTransaction", true)?,
            fsync_interval: Duration::from_secs(u64::try_from(fsync_interval).unwrap_or(5).max(1)),
        })
    }
}

/// Build the channel.
pub fn build(name: &str, ctx: &Context) -> Result<Arc<dyn Channel>, ConfigError> {
    let cfg = FileConfig::from_context(name, ctx)?;
    Ok(Arc::new(FileChannel::new(name, cfg)))
}

/// The file channel.
#[derive(Clone)]
pub struct FileChannel {
    store: Arc<Store>,
}

impl FileChannel {
    /// A channel named `name`; nothing touches the disk until [`Channel::start`].
    pub fn new(name: &str, cfg: FileConfig) -> Self {
        let counters = Arc::new(Counters::new(Kind::Channel, name));
        counters.set(
            "ChannelCapacity",
            i64::try_from(cfg.capacity).unwrap_or(i64::MAX),
        );
        FileChannel {
            store: Arc::new(Store::new(name, cfg, counters)),
        }
    }

    /// Events queued (not counting those taken by open transactions).
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Write a checkpoint now (and delete log files nothing points into).
    pub async fn checkpoint(&self) -> Result<(), String> {
        self.store.checkpoint().await
    }
}

#[async_trait]
impl Channel for FileChannel {
    fn name(&self) -> &str {
        &self.store.name
    }

    fn begin(&self) -> Box<dyn Transaction> {
        Box::new(FileTransaction {
            store: self.store.clone(),
            txn: None,
            puts: Vec::new(),
            takes: Vec::new(),
            lost: Vec::new(),
            done: false,
        })
    }

    async fn wait_for_events(&self, timeout: std::time::Duration) {
        let notified = self.store.has_events.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if !self.store.is_empty() {
            return;
        }
        let _ = tokio::time::timeout(timeout, notified).await;
    }

    fn transaction_capacity(&self) -> Option<usize> {
        Some(self.store.cfg.transaction_capacity)
    }

    async fn start(&self) -> anyhow::Result<()> {
        self.store.start().await
    }

    async fn stop(&self) {
        self.store.stop().await;
    }

    fn counters(&self) -> Arc<Counters> {
        self.store.counters.clone()
    }
}

struct FileTransaction {
    store: Arc<Store>,
    txn: Option<u64>,
    puts: Vec<(Ptr, Event)>,
    takes: Vec<Entry>,
    /// Taken entries whose record could not be read: gone for good.
    lost: Vec<Ptr>,
    done: bool,
}

impl FileTransaction {
    fn txn(&mut self) -> u64 {
        match self.txn {
            Some(t) => t,
            None => {
                let t = self.store.txn_id();
                self.txn = Some(t);
                t
            }
        }
    }

    fn undo(&mut self) {
        let puts: Vec<Ptr> = self.puts.drain(..).map(|(p, _)| p).collect();
        let takes = std::mem::take(&mut self.takes);
        let lost = std::mem::take(&mut self.lost);
        self.store.rollback(self.txn, &puts, takes, &lost);
        self.done = true;
    }

    fn capacity_error(&self) -> ChannelError {
        ChannelError::TransactionFull {
            channel: self.store.name.clone(),
            capacity: self.store.cfg.transaction_capacity,
        }
    }
}

#[async_trait]
impl Transaction for FileTransaction {
    async fn put(&mut self, event: Event) -> Result<(), ChannelError> {
        self.store.counters.inc("EventPutAttemptCount");
        if self.puts.len() >= self.store.cfg.transaction_capacity {
            return Err(self.capacity_error());
        }
        self.store.check_space()?;
        self.store.reserve().await?;
        let payload = Payload::put(&event);
        let txn = self.txn();
        match self.store.put(txn, &payload) {
            Ok(ptr) => {
                self.puts.push((ptr, event));
                Ok(())
            }
            Err(e) => {
                self.store.release(1);
                Err(e)
            }
        }
    }

    async fn take(&mut self) -> Result<Option<Event>, ChannelError> {
        self.store.counters.inc("EventTakeAttemptCount");
        loop {
            if self.takes.len() + self.lost.len() >= self.store.cfg.transaction_capacity {
                return Err(self.capacity_error());
            }
            let txn = self.txn();
            let Some(mut entry) = self.store.take(txn)? else {
                return Ok(None);
            };
            match self.store.load(&entry).await {
                Ok(Loaded::Event(ev)) => {
                    entry.event = Some(ev.clone());
                    self.takes.push(entry);
                    return Ok(Some(ev));
                }
                Ok(Loaded::Lost(why)) => {
                    tracing::error!(
                        "file channel {}: the event at log-{} offset {} cannot be read and is lost: {why}",
                        self.store.name,
                        entry.ptr.file,
                        entry.ptr.offset
                    );
                    self.lost.push(entry.ptr);
                }
                Err(e) => {
                    self.takes.push(entry);
                    return Err(e);
                }
            }
        }
    }

    async fn commit(&mut self) -> Result<(), ChannelError> {
        if self.done {
            return Ok(());
        }
        let Some(txn) = self.txn else {
            self.done = true;
            return Ok(());
        };
        if self.puts.is_empty() && self.takes.is_empty() && self.lost.is_empty() {
            // Nothing was logged for it (takes that found the channel empty): nothing to
            // commit, and no fsync for a sink polling an empty channel.
            self.done = true;
            return Ok(());
        }
        let mut taken: Vec<Ptr> = self.takes.iter().map(|e| e.ptr).collect();
        taken.extend(self.lost.iter().copied());
        let woid = self.store.commit(txn, &mut self.puts, &taken)?;
        self.takes.clear();
        self.lost.clear();
        self.done = true;
        if self.store.cfg.fsync_per_transaction {
            self.store.sync_to(woid).await?;
        }
        Ok(())
    }

    async fn rollback(&mut self) -> Result<(), ChannelError> {
        if !self.done {
            self.undo();
        }
        Ok(())
    }
}

impl Drop for FileTransaction {
    fn drop(&mut self) {
        if !self.done {
            self.undo();
        }
    }
}

#[cfg(test)]
mod tests;
