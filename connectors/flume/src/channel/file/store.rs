//! The file channel's live state: the queue of event pointers, the open transactions, the
//! log writer with group commit, reads of event bodies, checkpoints, old-file deletion,
//! directory locks and recovery.
//!
//! Concurrency: one `std::sync::Mutex` guards the queue, the open transactions and the
//! writer's in-memory buffer. Every log record is appended to that buffer and the queue is
//! changed under the same lock, so the order of records in the log is the order of the
//! changes in memory (what replay reproduces). The lock is never held across an await or
//! for file I/O: the buffer is written and fsynced by whoever needs durability first
//! (`sync_to`), on the blocking pool, while holding the flusher lock; committers that
//! arrive meanwhile wait for that lock and usually find their commit record already
//! synced (group commit).
//!
//! One log file is written at a time; with several `dataDirs`, file N goes to data dir
//! N mod (number of dirs), so the dirs share the load over time rather than in parallel.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use super::checkpoint::{self, Checkpoint, OpenTxn};
use super::record::{self, Kind, Payload, Ptr, ScanEnd, FILE_HEADER_LEN};
use super::replay::Replay;
use super::FileConfig;
use crate::channel::ChannelError;
use crate::counters::Counters;
use crate::event::Event;

/// Event bytes kept in memory for queued events written in this run, so takes rarely
/// read the disk. Beyond it, events are read back from their log file.
const CACHE_BYTES: usize = 64 * 1024 * 1024;
/// How long a free-space reading is reused (Flume caches it too).
const SPACE_CHECK_EVERY: Duration = Duration::from_secs(1);
/// The lock file in every directory the channel uses, as Flume's.
const LOCK_FILE: &str = "in_use.lock";

/// A queued event.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    /// Its put record.
    pub(super) ptr: Ptr,
    /// Write-order id of the commit that queued it (0 when recovered): the log must be
    /// synced that far before the put record can be read from disk.
    pub(super) commit_woid: u64,
    /// The event, when cached.
    pub(super) event: Option<Event>,
}

fn event_size(e: &Event) -> usize {
    e.body.len()
        + e.headers
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
}

/// Bytes not yet written to a log file.
#[derive(Debug)]
struct Chunk {
    file: u32,
    path: PathBuf,
    /// The file does not exist yet: create it (the bytes start with its header).
    create: bool,
    bytes: Vec<u8>,
}

#[derive(Debug, Default)]
struct State {
    started: bool,
    closed: bool,
    failed: Option<String>,
    queue: VecDeque<Entry>,
    /// Capacity in use: queued events, events taken by open transactions, and puts of open
    /// transactions (Flume reserves capacity at put time).
    reserved: usize,
    open: HashMap<u64, OpenTxn>,
    /// Pointers into each log file held by the queue and open transactions.
    refs: HashMap<u32, usize>,
    /// Log files that exist (or are about to be created), by id.
    files: BTreeMap<u32, PathBuf>,
    next_woid: u64,
    cur: u32,
    cur_len: u64,
    chunks: Vec<Chunk>,
    cache_bytes: usize,
    last_checkpoint: u64,
}

impl State {
    fn add_ref(&mut self, file: u32) {
        *self.refs.entry(file).or_insert(0) += 1;
    }

    fn drop_ref(&mut self, file: u32) {
        if let Some(n) = self.refs.get_mut(&file) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.refs.remove(&file);
            }
        }
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_woid;
        self.next_woid += 1;
        id
    }

    fn roll(&mut self, data_dirs: &[PathBuf]) {
        let id = self.cur + 1;
        let dir = data_dirs
            .get(id as usize % data_dirs.len().max(1))
            .cloned()
            .unwrap_or_default();
        let path = dir.join(format!("log-{id}"));
        self.files.insert(id, path.clone());
        self.chunks.push(Chunk {
            file: id,
            path,
            create: true,
            bytes: record::file_header(id),
        });
        self.cur = id;
        self.cur_len = FILE_HEADER_LEN;
    }

    /// Appends a record; returns its write-order id and position.
    fn append(
        &mut self,
        cfg: &FileConfig,
        kind: Kind,
        txn: u64,
        payload: &Payload,
    ) -> Result<(u64, Ptr), String> {
        let len = payload.record_len();
        if FILE_HEADER_LEN + len > cfg.max_file_size {
            return Err(format!(
                "a record of {len} bytes does not fit in a log file of maxFileSize {} bytes",
                cfg.max_file_size
            ));
        }
        if self.cur_len + len > cfg.max_file_size {
            self.roll(&cfg.data_dirs);
        }
        let woid = self.next_id();
        let at = Ptr {
            file: self.cur,
            offset: self.cur_len,
        };
        let cur = self.cur;
        let needs_chunk = self.chunks.last().is_none_or(|c| c.file != cur);
        if needs_chunk {
            let path = self.files.get(&cur).cloned().unwrap_or_default();
            self.chunks.push(Chunk {
                file: cur,
                path,
                create: false,
                bytes: Vec::new(),
            });
        }
        if let Some(c) = self.chunks.last_mut() {
            record::append_record(&mut c.bytes, kind, woid, txn, payload);
        }
        self.cur_len += len;
        Ok((woid, at))
    }
}

/// Open write handles, owned by whoever holds the flusher lock.
#[derive(Debug, Default)]
struct Flusher {
    handles: BTreeMap<u32, File>,
}

/// What `take` handed out.
#[derive(Debug)]
pub(super) enum Loaded {
    /// The event.
    Event(Event),
    /// Its record cannot be read (damaged or missing log file); the event is lost.
    Lost(String),
}

/// The channel's store.
pub(super) struct Store {
    pub(super) name: String,
    pub(super) cfg: FileConfig,
    state: Mutex<State>,
    synced: watch::Sender<u64>,
    flusher: tokio::sync::Mutex<Flusher>,
    readers: Mutex<HashMap<u32, Arc<File>>>,
    pub(super) has_events: Notify,
    has_space: Notify,
    pub(super) counters: Arc<Counters>,
    checkpointing: tokio::sync::Mutex<()>,
    locks: Mutex<Vec<File>>,
    space: Mutex<Option<(Instant, u64)>>,
    stop: CancellationToken,
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Store {
    pub(super) fn new(name: &str, cfg: FileConfig, counters: Arc<Counters>) -> Store {
        Store {
            name: name.to_string(),
            cfg,
            state: Mutex::new(State::default()),
            synced: watch::channel(0).0,
            flusher: tokio::sync::Mutex::new(Flusher::default()),
            readers: Mutex::new(HashMap::new()),
            has_events: Notify::new(),
            has_space: Notify::new(),
            counters,
            checkpointing: tokio::sync::Mutex::new(()),
            locks: Mutex::new(Vec::new()),
            space: Mutex::new(None),
            stop: CancellationToken::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every mutation under this lock is completed before it is released (no await
        // inside), so a poisoned lock still guards a consistent state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn failed(&self, detail: impl Into<String>) -> ChannelError {
        ChannelError::Failed {
            channel: self.name.clone(),
            detail: detail.into(),
        }
    }

    fn usable(&self, s: &State) -> Result<(), ChannelError> {
        if let Some(f) = &s.failed {
            return Err(self.failed(format!("{f}; restart the agent to recover from the log")));
        }
        if s.closed {
            return Err(ChannelError::Closed(self.name.clone()));
        }
        if !s.started {
            return Err(self.failed("the channel has not started (recovery did not run)"));
        }
        Ok(())
    }

    /// Events queued (not counting those taken by open transactions).
    pub(super) fn len(&self) -> usize {
        self.lock().queue.len()
    }

    /// A fresh transaction id (from the write-order sequence, so unique across restarts).
    pub(super) fn txn_id(&self) -> u64 {
        self.lock().next_id()
    }

    /// Fails when the disk holding the current log file has less than
    /// `minimumRequiredSpace` free (Flume refuses puts then too).
    pub(super) fn check_space(&self) -> Result<(), ChannelError> {
        let now = Instant::now();
        let mut cached = self.space.lock().unwrap_or_else(|p| p.into_inner());
        let free = match *cached {
            Some((at, free)) if now.duration_since(at) < SPACE_CHECK_EVERY => free,
            _ => {
                let dir = {
                    let s = self.lock();
                    s.files
                        .get(&s.cur)
                        .and_then(|p| p.parent().map(Path::to_path_buf))
                };
                let Some(dir) = dir.or_else(|| self.cfg.data_dirs.first().cloned()) else {
                    return Ok(());
                };
                match rustix::fs::statvfs(&dir) {
                    Ok(st) => {
                        let free = st.f_bavail.saturating_mul(st.f_frsize);
                        *cached = Some((now, free));
                        free
                    }
                    Err(e) => {
                        tracing::warn!(
                            "file channel {}: cannot read the free space of {}: {e}",
                            self.name,
                            dir.display()
                        );
                        return Ok(());
                    }
                }
            }
        };
        if free < self.cfg.minimum_required_space {
            return Err(ChannelError::Full {
                channel: self.name.clone(),
                detail: format!(
                    "usable space exhausted: only {free} bytes remaining, minimumRequiredSpace is {} bytes",
                    self.cfg.minimum_required_space
                ),
            });
        }
        Ok(())
    }

    /// Reserves room for one put, waiting up to `keep-alive` for it.
    pub(super) async fn reserve(&self) -> Result<(), ChannelError> {
        let deadline = tokio::time::Instant::now() + self.cfg.keep_alive;
        loop {
            let space = self.has_space.notified();
            tokio::pin!(space);
            space.as_mut().enable();
            {
                let mut s = self.lock();
                self.usable(&s)?;
                if s.reserved < self.cfg.capacity {
                    s.reserved += 1;
                    return Ok(());
                }
            }
            if tokio::time::timeout_at(deadline, space).await.is_err() {
                return Err(ChannelError::Full {
                    channel: self.name.clone(),
                    detail: format!(
                        "the channel has reached its capacity of {} events (waited keep-alive {:?}); sinks are not keeping up or the capacity is too low",
                        self.cfg.capacity, self.cfg.keep_alive
                    ),
                });
            }
        }
    }

    /// Gives back reservations of puts that will not be committed.
    fn release_locked(&self, s: &mut State, n: usize) {
        s.reserved = s.reserved.saturating_sub(n);
        if n > 0 {
            self.has_space.notify_waiters();
        }
    }

    /// Gives back one reservation (a put that failed before its record was written).
    pub(super) fn release(&self, n: usize) {
        let mut s = self.lock();
        self.release_locked(&mut s, n);
    }

    /// Logs a put record for transaction `txn`.
    pub(super) fn put(&self, txn: u64, payload: &Payload) -> Result<Ptr, ChannelError> {
        let mut s = self.lock();
        self.usable(&s)?;
        let (_, at) = s
            .append(&self.cfg, Kind::Put, txn, payload)
            .map_err(|e| self.failed(e))?;
        s.open
            .entry(txn)
            .or_insert_with(|| OpenTxn {
                txn,
                ..OpenTxn::default()
            })
            .puts
            .push(at);
        s.add_ref(at.file);
        Ok(at)
    }

    /// Takes the head of the queue for transaction `txn` and logs the take.
    pub(super) fn take(&self, txn: u64) -> Result<Option<Entry>, ChannelError> {
        let mut s = self.lock();
        self.usable(&s)?;
        let Some(entry) = s.queue.pop_front() else {
            return Ok(None);
        };
        if let Err(e) = s.append(&self.cfg, Kind::Take, txn, &Payload::take(entry.ptr)) {
            s.queue.push_front(entry);
            return Err(self.failed(e));
        }
        if let Some(ev) = &entry.event {
            s.cache_bytes = s.cache_bytes.saturating_sub(event_size(ev));
        }
        s.open
            .entry(txn)
            .or_insert_with(|| OpenTxn {
                txn,
                ..OpenTxn::default()
            })
            .takes
            .push(entry.ptr);
        self.counters.set("ChannelSize", count(s.queue.len()));
        Ok(Some(entry))
    }

    /// The event behind a taken entry: from the cache, else from its log file.
    pub(super) async fn load(&self, entry: &Entry) -> Result<Loaded, ChannelError> {
        if let Some(e) = &entry.event {
            return Ok(Loaded::Event(e.clone()));
        }
        if entry.commit_woid > *self.synced.borrow() {
            self.sync_to(entry.commit_woid).await?;
        }
        let ptr = entry.ptr;
        let cached = self
            .readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&ptr.file)
            .cloned();
        let path = self.lock().files.get(&ptr.file).cloned();
        let result = tokio::task::spawn_blocking(move || -> Result<(Arc<File>, Event), String> {
            let file = match cached {
                Some(f) => f,
                None => {
                    let path =
                        path.ok_or_else(|| format!("log file {} no longer exists", ptr.file))?;
                    Arc::new(
                        File::open(&path)
                            .map_err(|e| format!("opening {}: {e}", path.display()))?,
                    )
                }
            };
            let ev = record::read_put(&file, ptr.offset)
                .map_err(|e| format!("log-{}: {e}", ptr.file))?;
            Ok((file, ev))
        })
        .await
        .map_err(|e| self.failed(format!("reading an event: {e}")))?;
        match result {
            Ok((file, ev)) => {
                self.readers
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(ptr.file)
                    .or_insert(file);
                Ok(Loaded::Event(ev))
            }
            Err(e) => Ok(Loaded::Lost(e)),
        }
    }

    /// Logs the commit of `txn` and applies it: `puts` join the queue, `takes` are gone.
    /// Returns the commit's write-order id (sync to it for durability).
    /// On success `puts` is drained.
    pub(super) fn commit(
        &self,
        txn: u64,
        puts: &mut Vec<(Ptr, Event)>,
        takes: &[Ptr],
    ) -> Result<u64, ChannelError> {
        let mut s = self.lock();
        self.usable(&s)?;
        let (woid, _) = s
            .append(&self.cfg, Kind::Commit, txn, &Payload::empty())
            .map_err(|e| self.failed(e))?;
        let added = puts.len();
        for (ptr, ev) in puts.drain(..) {
            let size = event_size(&ev);
            let event = if s.cache_bytes + size <= CACHE_BYTES {
                s.cache_bytes += size;
                Some(ev)
            } else {
                None
            };
            s.queue.push_back(Entry {
                ptr,
                commit_woid: woid,
                event,
            });
        }
        for t in takes {
            s.drop_ref(t.file);
        }
        s.open.remove(&txn);
        self.release_locked(&mut s, takes.len());
        self.counters.set("ChannelSize", count(s.queue.len()));
        drop(s);
        self.counters.add("EventPutSuccessCount", count(added));
        self.counters
            .add("EventTakeSuccessCount", count(takes.len()));
        if added > 0 {
            self.has_events.notify_waiters();
        }
        Ok(woid)
    }

    /// Undoes `txn`: its puts are dropped (the rollback is logged when anything was),
    /// its takes go back to the head of the queue, except `lost` ones.
    pub(super) fn rollback(&self, txn: Option<u64>, puts: &[Ptr], takes: Vec<Entry>, lost: &[Ptr]) {
        let mut s = self.lock();
        if let Some(txn) = txn {
            if self.usable(&s).is_ok() && s.open.contains_key(&txn) {
                if let Err(e) = s.append(&self.cfg, Kind::Rollback, txn, &Payload::empty()) {
                    // Without the record, replay treats the transaction as unfinished,
                    // which has the same effect.
                    tracing::warn!("file channel {}: rollback not logged: {e}", self.name);
                }
            }
            s.open.remove(&txn);
        }
        for p in puts {
            s.drop_ref(p.file);
        }
        for p in lost {
            s.drop_ref(p.file);
        }
        let returned = !takes.is_empty();
        for mut e in takes.into_iter().rev() {
            if let Some(ev) = e.event.take() {
                let size = event_size(&ev);
                if s.cache_bytes + size <= CACHE_BYTES {
                    s.cache_bytes += size;
                    e.event = Some(ev);
                }
            }
            s.queue.push_front(e);
        }
        self.release_locked(&mut s, puts.len() + lost.len());
        self.counters.set("ChannelSize", count(s.queue.len()));
        drop(s);
        if returned {
            self.has_events.notify_waiters();
        }
    }

    /// Write and fsync the log at least through write-order id `woid`.
    pub(super) async fn sync_to(&self, woid: u64) -> Result<(), ChannelError> {
        if *self.synced.borrow() >= woid {
            return Ok(());
        }
        let mut fl = self.flusher.lock().await;
        if *self.synced.borrow() >= woid {
            return Ok(());
        }
        let (chunks, hi) = {
            let mut s = self.lock();
            if let Some(f) = &s.failed {
                return Err(self.failed(f.clone()));
            }
            (std::mem::take(&mut s.chunks), s.next_woid.saturating_sub(1))
        };
        let mut handles = std::mem::take(&mut fl.handles);
        let joined = tokio::task::spawn_blocking(move || {
            let r = write_chunks(&mut handles, chunks);
            (handles, r)
        })
        .await;
        let err = match joined {
            Ok((handles, Ok(()))) => {
                fl.handles = handles;
                self.synced.send_replace(hi);
                return Ok(());
            }
            Ok((_, Err(e))) => format!("writing the log failed: {e}"),
            Err(e) => format!("the log writer task failed: {e}"),
        };
        tracing::error!(
            "file channel {}: {err}; the channel stops taking and giving events",
            self.name
        );
        self.lock().failed = Some(err.clone());
        Err(self.failed(err))
    }

    /// Writes a checkpoint, then deletes log files nothing points into any more.
    pub(super) async fn checkpoint(&self) -> Result<(), String> {
        let _one = self.checkpointing.lock().await;
        let ckpt = {
            let s = self.lock();
            if let Some(f) = &s.failed {
                return Err(f.clone());
            }
            Checkpoint {
                woid: s.next_woid.saturating_sub(1),
                replay_from: Ptr {
                    file: s.cur,
                    offset: s.cur_len,
                },
                queue: s.queue.iter().map(|e| e.ptr).collect(),
                open: s.open.values().cloned().collect(),
            }
        };
        let woid = ckpt.woid;
        let replay_file = ckpt.replay_from.file;
        self.sync_to(woid).await.map_err(|e| e.to_string())?;
        let primary = self.cfg.checkpoint_dir.clone();
        let backup = self.cfg.backup_checkpoint_dir.clone();
        let referenced = tokio::task::spawn_blocking(move || -> io::Result<HashSet<u32>> {
            let bytes = ckpt.encode();
            checkpoint::write(&primary, &bytes)?;
            if let Some(b) = &backup {
                checkpoint::write(b, &bytes)?;
            }
            Ok(ckpt
                .queue
                .iter()
                .chain(
                    ckpt.open
                        .iter()
                        .flat_map(|t| t.puts.iter().chain(t.takes.iter())),
                )
                .map(|p| p.file)
                .collect())
        })
        .await
        .map_err(|e| format!("checkpoint task failed: {e}"))?
        .map_err(|e| {
            format!(
                "writing the checkpoint in {}: {e}",
                self.cfg.checkpoint_dir.display()
            )
        })?;
        let doomed: Vec<(u32, PathBuf)> = {
            let mut s = self.lock();
            s.last_checkpoint = s.last_checkpoint.max(woid);
            let ids: Vec<u32> = s
                .files
                .keys()
                .copied()
                .filter(|id| {
                    *id < replay_file && !s.refs.contains_key(id) && !referenced.contains(id)
                })
                .collect();
            ids.into_iter()
                .filter_map(|id| s.files.remove(&id).map(|p| (id, p)))
                .collect()
        };
        tracing::debug!(
            "file channel {}: checkpoint at write-order id {woid}",
            self.name
        );
        if doomed.is_empty() {
            return Ok(());
        }
        {
            let mut r = self.readers.lock().unwrap_or_else(|p| p.into_inner());
            for (id, _) in &doomed {
                r.remove(id);
            }
        }
        let name = self.name.clone();
        tokio::task::spawn_blocking(move || {
            for (_, path) in doomed {
                match fs::remove_file(&path) {
                    Ok(()) => tracing::info!(
                        "file channel {name}: deleted {} (no queued event points into it)",
                        path.display()
                    ),
                    Err(e) => {
                        tracing::warn!("file channel {name}: cannot delete {}: {e}", path.display())
                    }
                }
            }
        })
        .await
        .map_err(|e| format!("deleting old log files: {e}"))?;
        Ok(())
    }

    /// Lock the directories, replay, write a fresh checkpoint and start the background
    /// checkpoints (and periodic fsyncs when `fsyncPerTransaction` is false).
    pub(super) async fn start(self: &Arc<Self>) -> anyhow::Result<()> {
        let cfg = self.cfg.clone();
        let name = self.name.clone();
        let rec = tokio::task::spawn_blocking(move || recover(&name, &cfg))
            .await
            .context("recovery task failed")??;
        *self.locks.lock().unwrap_or_else(|p| p.into_inner()) = rec.locks;
        {
            let mut s = self.lock();
            s.refs.clear();
            for p in &rec.queue {
                *s.refs.entry(p.file).or_insert(0) += 1;
            }
            s.reserved = rec.queue.len();
            s.queue = rec
                .queue
                .into_iter()
                .map(|ptr| Entry {
                    ptr,
                    commit_woid: 0,
                    event: None,
                })
                .collect();
            s.files = rec.files;
            s.next_woid = rec.next_woid;
            s.cur = rec.last_file;
            s.roll(&self.cfg.data_dirs);
            s.started = true;
            s.last_checkpoint = 0;
            self.synced.send_replace(rec.next_woid.saturating_sub(1));
            self.counters.set("ChannelSize", count(s.queue.len()));
        }
        self.checkpoint().await.map_err(|e| {
            anyhow::anyhow!(
                "file channel {}: first checkpoint after recovery failed: {e}",
                self.name
            )
        })?;
        if !self.is_empty() {
            self.has_events.notify_waiters();
        }

        let me = Arc::downgrade(self);
        let stop = self.stop.clone();
        let every = self.cfg.checkpoint_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let Some(store) = me.upgrade() else { return };
                let changed = {
                    let s = store.lock();
                    s.next_woid.saturating_sub(1) > s.last_checkpoint
                };
                if changed {
                    if let Err(e) = store.checkpoint().await {
                        tracing::error!("file channel {}: checkpoint failed: {e}", store.name);
                    }
                }
            }
        });
        if !self.cfg.fsync_per_transaction {
            let me = Arc::downgrade(self);
            let stop = self.stop.clone();
            let every = self.cfg.fsync_interval;
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tick.tick() => {}
                    }
                    let Some(store) = me.upgrade() else { return };
                    let hi = store.lock().next_woid.saturating_sub(1);
                    if let Err(e) = store.sync_to(hi).await {
                        tracing::error!("file channel {}: periodic fsync failed: {e}", store.name);
                    }
                }
            });
        }
        Ok(())
    }

    /// True when nothing is queued.
    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stop: checkpoint (checkpointOnClose) or at least sync, refuse further work, unlock.
    pub(super) async fn stop(&self) {
        self.stop.cancel();
        let (started, failed) = {
            let s = self.lock();
            (s.started, s.failed.is_some())
        };
        if started && !failed {
            if self.cfg.checkpoint_on_close {
                match self.checkpoint().await {
                    Ok(()) => {
                        tracing::info!("file channel {}: checkpoint written on close", self.name)
                    }
                    Err(e) => tracing::error!(
                        "file channel {}: checkpoint on close failed: {e}",
                        self.name
                    ),
                }
            } else {
                let hi = self.lock().next_woid.saturating_sub(1);
                if let Err(e) = self.sync_to(hi).await {
                    tracing::error!("file channel {}: final fsync failed: {e}", self.name);
                }
            }
        }
        self.lock().closed = true;
        self.locks.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.flusher.lock().await.handles.clear();
    }
}

#[cfg(test)]
impl Store {
    /// What `kill -9` leaves behind: unwritten log bytes are lost, the directory locks are
    /// released, and nothing more reaches the disk (later rollbacks stay in memory).
    pub(super) fn crash(&self) {
        {
            let mut s = self.lock();
            s.closed = true;
            s.chunks.clear();
        }
        self.stop.cancel();
        self.locks.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// Writes `chunks` in order (creating files as needed), then fsyncs every file written.
/// Only the newest file's handle is kept.
fn write_chunks(handles: &mut BTreeMap<u32, File>, chunks: Vec<Chunk>) -> io::Result<()> {
    let mut touched = Vec::new();
    let mut created_dirs: Vec<PathBuf> = Vec::new();
    for c in chunks {
        if c.create {
            let f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&c.path)
                .map_err(|e| {
                    io::Error::new(e.kind(), format!("creating {}: {e}", c.path.display()))
                })?;
            handles.insert(c.file, f);
            if let Some(d) = c.path.parent() {
                if !created_dirs.iter().any(|x| x == d) {
                    created_dirs.push(d.to_path_buf());
                }
            }
        }
        let f = handles.get_mut(&c.file).ok_or_else(|| {
            io::Error::other(format!(
                "log file {} is not open for writing",
                c.path.display()
            ))
        })?;
        f.write_all(&c.bytes)
            .map_err(|e| io::Error::new(e.kind(), format!("writing {}: {e}", c.path.display())))?;
        if !touched.contains(&c.file) {
            touched.push(c.file);
        }
    }
    for id in &touched {
        if let Some(f) = handles.get(id) {
            f.sync_data()?;
        }
    }
    for d in created_dirs {
        File::open(&d)?.sync_all()?;
    }
    if let Some(&newest) = handles.keys().next_back() {
        handles.retain(|id, _| *id == newest);
    }
    Ok(())
}

/// What recovery found.
struct Recovery {
    locks: Vec<File>,
    files: BTreeMap<u32, PathBuf>,
    queue: VecDeque<Ptr>,
    next_woid: u64,
    /// The highest file id ever used (new files get higher ids).
    last_file: u32,
}

/// Takes `in_use.lock` in `dir` (creating the dir), as Flume does, so that two agents
/// cannot use the same channel directories.
fn lock_dir(dir: &Path) -> anyhow::Result<File> {
    fs::create_dir_all(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))?;
    let path = dir.join(LOCK_FILE);
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open lock file {}", path.display()))?;
    match rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(f),
        Err(rustix::io::Errno::WOULDBLOCK) => anyhow::bail!(
            "directory {} is in use by another file channel (lock {} is held); two channels or agents cannot share file channel directories",
            dir.display(),
            path.display()
        ),
        Err(e) => Err(anyhow::anyhow!("cannot lock {}: {e}", path.display())),
    }
}

fn list_logs(dirs: &[PathBuf]) -> anyhow::Result<BTreeMap<u32, PathBuf>> {
    let mut files = BTreeMap::new();
    for d in dirs {
        let rd = fs::read_dir(d).with_context(|| format!("cannot list {}", d.display()))?;
        for entry in rd {
            let entry = entry.with_context(|| format!("cannot list {}", d.display()))?;
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_prefix("log-"))
                .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(prev) = files.insert(id, entry.path()) {
                anyhow::bail!(
                    "log file id {id} exists twice: {} and {}",
                    prev.display(),
                    entry.path().display()
                );
            }
        }
    }
    Ok(files)
}

/// Loads the newest usable checkpoint: the primary, else the backup.
fn load_checkpoint(name: &str, cfg: &FileConfig) -> Option<Checkpoint> {
    match checkpoint::read(&cfg.checkpoint_dir) {
        Ok(Some(c)) => return Some(c),
        Ok(None) => {}
        Err(e) => tracing::warn!("file channel {name}: checkpoint unusable: {e}"),
    }
    if let Some(b) = &cfg.backup_checkpoint_dir {
        match checkpoint::read(b) {
            Ok(Some(c)) => {
                tracing::warn!(
                    "file channel {name}: using the backup checkpoint in {}",
                    b.display()
                );
                return Some(c);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("file channel {name}: backup checkpoint unusable: {e}"),
        }
    }
    None
}

/// Locks the directories and rebuilds the queue from the checkpoint and the logs.
fn recover(name: &str, cfg: &FileConfig) -> anyhow::Result<Recovery> {
    let mut dirs: Vec<PathBuf> = vec![cfg.checkpoint_dir.clone()];
    dirs.extend(cfg.backup_checkpoint_dir.iter().cloned());
    dirs.extend(cfg.data_dirs.iter().cloned());
    let mut locks = Vec::new();
    let mut seen = HashSet::new();
    for d in &dirs {
        let key = fs::create_dir_all(d)
            .and_then(|()| d.canonicalize())
            .with_context(|| {
                format!(
                    "file channel {name}: cannot create directory {}",
                    d.display()
                )
            })?;
        if seen.insert(key) {
            locks.push(lock_dir(d).with_context(|| format!("file channel {name}"))?);
        }
    }

    let mut files = list_logs(&cfg.data_dirs).with_context(|| format!("file channel {name}"))?;
    let last_id = files.keys().next_back().copied();
    let mut headerless = Vec::new();
    for (id, path) in &files {
        if !record::check_header(path, *id).with_context(|| format!("file channel {name}"))? {
            headerless.push(*id);
        }
    }
    for id in headerless {
        if let Some(path) = files.remove(&id) {
            tracing::warn!(
                "file channel {name}: {} is too short to hold a header (created just before a crash); removing it",
                path.display()
            );
            fs::remove_file(&path).with_context(|| {
                format!("file channel {name}: cannot remove {}", path.display())
            })?;
        }
    }

    let ckpt = load_checkpoint(name, cfg);
    let (mut replay, from, ckpt_woid) = match &ckpt {
        Some(c) => (Replay::from_checkpoint(c), c.replay_from, c.woid),
        None => {
            if !files.is_empty() {
                tracing::info!("file channel {name}: no checkpoint; replaying every log file");
            }
            (Replay::new(), Ptr { file: 0, offset: 0 }, 0)
        }
    };
    let mut scanned = Vec::new();
    for (id, path) in files.iter().filter(|(id, _)| **id >= from.file) {
        let start = if *id == from.file { from.offset } else { 0 };
        if *id == from.file {
            let size = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            if size < start {
                tracing::warn!(
                    "file channel {name}: {} is {size} bytes, shorter than the {start} bytes the checkpoint covers; \
                     it was cut after the checkpoint was written, and events in the lost part cannot be read",
                    path.display()
                );
            }
        }
        let (end, good) = record::scan(path, *id, start, |item| {
            if item.meta.woid > ckpt_woid {
                replay.apply(&item);
            }
        })
        .with_context(|| format!("file channel {name}: reading {}", path.display()))?;
        scanned.push(*id);
        if let ScanEnd::Torn { offset, reason } = end {
            let size = fs::metadata(path).map(|m| m.len()).unwrap_or(offset);
            if Some(*id) == last_id {
                tracing::warn!(
                    "file channel {name}: {} has a torn record at offset {offset} ({reason}); truncating the file from {size} to {offset} bytes ({} bytes dropped)",
                    path.display(),
                    size.saturating_sub(offset)
                );
                let f = OpenOptions::new().write(true).open(path).with_context(|| {
                    format!(
                        "file channel {name}: opening {} to truncate it",
                        path.display()
                    )
                })?;
                f.set_len(good)
                    .and_then(|()| f.sync_all())
                    .with_context(|| {
                        format!("file channel {name}: truncating {}", path.display())
                    })?;
            } else {
                tracing::error!(
                    "file channel {name}: {} is damaged at offset {offset} ({reason}); the {} bytes after it are skipped",
                    path.display(),
                    size.saturating_sub(offset)
                );
            }
        }
    }
    let applied = replay.applied;
    let orphans = replay.orphan_takes;
    let max_woid = replay.max_woid;
    let rec = replay.finish();
    let mut queue = rec.queue;
    let before = queue.len();
    queue.retain(|p| files.contains_key(&p.file));
    if queue.len() != before {
        tracing::error!(
            "file channel {name}: {} queued events point into log files that are gone; they are lost",
            before - queue.len()
        );
    }
    if orphans > 0 {
        tracing::debug!("file channel {name}: {orphans} takes of events already gone were ignored");
    }
    let scanned_desc = match (scanned.first(), scanned.last()) {
        (Some(a), Some(b)) if a == b => format!("log-{a}"),
        (Some(a), Some(b)) => format!("log-{a}..log-{b}"),
        _ => "no log file".to_string(),
    };
    match &ckpt {
        Some(_) => tracing::info!(
            "file channel {name}: replayed {applied} records from {scanned_desc} after the checkpoint at write-order id {ckpt_woid}; {} events queued ({} uncommitted takes returned, {} uncommitted puts dropped)",
            queue.len(),
            rec.restored_takes,
            rec.dropped_puts
        ),
        None => tracing::info!(
            "file channel {name}: replayed {applied} records from {scanned_desc} without a checkpoint; {} events queued ({} uncommitted takes returned, {} uncommitted puts dropped)",
            queue.len(),
            rec.restored_takes,
            rec.dropped_puts
        ),
    }
    let last_file = files
        .keys()
        .next_back()
        .copied()
        .unwrap_or(0)
        .max(last_id.unwrap_or(0))
        .max(ckpt.as_ref().map(|c| c.replay_from.file).unwrap_or(0));
    Ok(Recovery {
        locks,
        files,
        queue,
        next_woid: max_woid + 1,
        last_file,
    })
}
