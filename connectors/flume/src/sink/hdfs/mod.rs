//! The `hdfs` sink (Flume's `HDFSEventSink` and `BucketWriter`): events go to files whose
//! directory and name prefix are escaped per event (`escape`), on the local filesystem or a
//! real HDFS (`resolve` picks one by scheme, `fs` and `hdfs_fs` write), as SequenceFiles, plain or compressed streams (`writer`) of the
//! serializer's output (`serializer`).
//!
//! Keys (prefix `hdfs.` unless noted) and defaults: **path**, `filePrefix` FlumeData,
//! `fileSuffix` "", `inUsePrefix` "", `inUseSuffix` .tmp (`emptyInUseSuffix` false),
//! `rollInterval` 30 s, `rollSize` 1024 bytes, `rollCount` 10 events (each: 0 disables),
//! `idleTimeout` 0 s, `batchSize` 100, `maxOpenFiles` 5000, `callTimeout` 30000 ms,
//! `fileType` SequenceFile | DataStream | CompressedStream (needs `codeC`: gzip, deflate),
//! `writeFormat` Writable | Text, `round` false, `roundValue` 1, `roundUnit` second,
//! `timeZone` (local), `useLocalTimeStamp` false, and `serializer` (no `hdfs.` prefix) TEXT
//! with `serializer.appendNewline` true.
//!
//! Behaviour, as Flume's:
//! - A bucket is one resolved `path/prefix`. Its file is
//!   `inUsePrefix + prefix + "." + counter + suffix + inUseSuffix` (the suffix defaults to the
//!   codec's extension), where the counter starts at the bucket's creation time in epoch ms
//!   and goes up by one per file; closing renames it without the in-use affixes.
//! - Files are opened on the first event. Before each append the bucket rolls (close + open)
//!   when `rollCount` events or `rollSize` body bytes were written to the current file.
//!   `rollInterval` after opening, and `idleTimeout` after the last flush, a timer task
//!   closes the file and forgets the bucket; so does opening more than `maxOpenFiles`
//!   buckets (least recently used first).
//! - `process()`: take up to `batchSize` events, append, flush every touched bucket, commit.
//!   A filesystem error rolls back, counts `EventWriteFail`, logs a warning and returns
//!   BACKOFF. Anything else rolls back and fails the call, which the runner logs as an
//!   error and retries after 5 s: that is the poison pill of a missing or non-numeric
//!   `timestamp` header with time escapes (the message names the header and how to fix it).
//!   The events stay in the channel, and every later batch fails the same way until the
//!   config is fixed. Deviation: all events of a batch are escaped before any is written, so
//!   the good events in front of a poison pill are not written twice.
//! - `stop()` closes (and renames) every open file.
//!
//! Not supported (configuration errors naming the key): codecs other than gzip and deflate
//! (and gzip in SequenceFiles, which Hadoop refuses without its native library), Kerberos
//! and proxy users. `closeTries`, `retryInterval`, `threadsPoolSize`, `rollTimerPoolSize` are accepted
//! and ignored (a failed close or rename is logged once).

pub mod escape;
pub mod fs;
mod hdfs_fs;
pub mod resolve;
pub mod serializer;
pub mod writer;

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{take_batch, Sink, Status};
use crate::channel::Channel;
use crate::conf::{ConfigError, Context};
use crate::counters::{Counters, Kind};
use crate::event::Event;
use escape::{EscapeSettings, RoundUnit, Template, Zone};
use fs::{FileSystem, OutFile};
use resolve::Filesystems;
use serializer::SerializerSpec;
use writer::{Codec, FileFormat, FormatWriter, WriteFormat};

/// The sink's settings.
#[derive(Debug, Clone)]
pub struct HdfsConfig {
    /// `hdfs.path`.
    pub path: Template,
    /// `hdfs.filePrefix`.
    pub prefix: Template,
    /// `hdfs.fileSuffix`, or the codec's extension.
    pub suffix: String,
    /// `hdfs.inUsePrefix`.
    pub in_use_prefix: String,
    /// `hdfs.inUseSuffix`.
    pub in_use_suffix: String,
    /// `hdfs.rollInterval` (None: off).
    pub roll_interval: Option<Duration>,
    /// `hdfs.rollSize` in body bytes (None: off).
    pub roll_size: Option<u64>,
    /// `hdfs.rollCount` (None: off).
    pub roll_count: Option<u64>,
    /// `hdfs.idleTimeout` (None: off).
    pub idle_timeout: Option<Duration>,
    /// `hdfs.batchSize`.
    pub batch: usize,
    /// `hdfs.maxOpenFiles`.
    pub max_open_files: usize,
    /// `hdfs.callTimeout` (None: no limit).
    pub call_timeout: Option<Duration>,
    /// `hdfs.fileType` with its format settings.
    pub format: FileFormat,
    /// `hdfs.timeZone`, `hdfs.round*`, `hdfs.useLocalTimeStamp`.
    pub escape: EscapeSettings,
}

fn positive_secs(v: i64) -> Option<Duration> {
    u64::try_from(v)
        .ok()
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
}

impl HdfsConfig {
    /// Read the sink's keys.
    pub fn from_context(ctx: &Context) -> Result<HdfsConfig, ConfigError> {
        let h = ctx.sub("hdfs.");
        let path = Template::parse(h.require("path")?);
        let prefix = Template::parse(&h.string("filePrefix", "FlumeData"));
        let empty_in_use_suffix = h.bool("emptyInUseSuffix", false)?;
        let in_use_suffix = if empty_in_use_suffix {
            if h.get("inUseSuffix").is_some() {
                tracing::warn!(
                    "ignoring {}inUseSuffix: emptyInUseSuffix is true",
                    h.prefix()
                );
            }
            String::new()
        } else {
            h.string("inUseSuffix", ".tmp")
        };
        let batch: i64 = h.parse("batchSize", 100)?;
        let batch = usize::try_from(batch)
            .ok()
            .filter(|b| *b > 0)
            .ok_or_else(|| h.error("batchSize", "batchSize must be greater than 0"))?;
        let codec = match h.get("codeC") {
            None => None,
            Some(name) => Codec::parse(name).map_err(|m| h.error("codeC", &m))?,
        };
        let codec_given = h.get("codeC").is_some();
        let file_type = h.string("fileType", "SequenceFile");
        let format = if file_type.eq_ignore_ascii_case("SequenceFile") {
            if codec == Some(Codec::Gzip) {
                // Hadoop's SequenceFile.Writer refuses GzipCodec without native-hadoop code,
                // which a plain Flume install does not load.
                return Err(h.error(
                    "codeC",
                    "SequenceFile doesn't work with GzipCodec without native-hadoop code! Use deflate (DefaultCodec), or fileType = CompressedStream",
                ));
            }
            let wf = h.string("writeFormat", "Writable");
            let wf = if wf.eq_ignore_ascii_case("Writable") {
                WriteFormat::Writable
            } else if wf.eq_ignore_ascii_case("Text") {
                WriteFormat::Text
            } else {
                return Err(h.error("writeFormat", &format!("{wf:?} is not Writable or Text")));
            };
            FileFormat::SequenceFile(wf, codec.is_some())
        } else if file_type.eq_ignore_ascii_case("DataStream") {
            if codec_given {
                return Err(h.error(
                    "codeC",
                    &format!("fileType: {file_type} which does NOT support compressed output. Please don't set codeC or change the fileType if compressed output is desired."),
                ));
            }
            FileFormat::DataStream(SerializerSpec::from_context(ctx, "serializer")?)
        } else if file_type.eq_ignore_ascii_case("CompressedStream") {
            let Some(c) = codec else {
                return Err(h.error(
                    "codeC",
                    &format!("It's essential to set compress codec when fileType is: {file_type}"),
                ));
            };
            FileFormat::CompressedStream(SerializerSpec::from_context(ctx, "serializer")?, c)
        } else {
            return Err(h.error(
                "fileType",
                &format!("{file_type:?} is not SequenceFile, DataStream or CompressedStream"),
            ));
        };
        let suffix = match h.get("fileSuffix") {
            Some(s) if !s.is_empty() => s.to_string(),
            _ => codec.map(|c| c.extension().to_string()).unwrap_or_default(),
        };

        let zone = match h.get("timeZone") {
            None => Zone::Local,
            Some(id) => {
                let (z, known) = Zone::parse(id);
                if !known {
                    tracing::warn!(
                        "{}timeZone: unknown time zone {id:?}; using GMT, as Java does",
                        h.prefix()
                    );
                }
                z
            }
        };
        let round = if h.bool("round", false)? {
            let unit = h.string("roundUnit", "second");
            let unit = if unit.eq_ignore_ascii_case("hour") {
                Some(RoundUnit::Hour)
            } else if unit.eq_ignore_ascii_case("minute") {
                Some(RoundUnit::Minute)
            } else if unit.eq_ignore_ascii_case("second") {
                Some(RoundUnit::Second)
            } else {
                tracing::warn!(
                    "{}roundUnit: {unit:?} is not valid, please set one of minute, hour, or second. Rounding will be disabled",
                    h.prefix()
                );
                None
            };
            match unit {
                None => None,
                Some(u) => {
                    let v: i64 = h.parse("roundValue", 1)?;
                    let max = if u == RoundUnit::Hour { 24 } else { 60 };
                    if !(1..=max).contains(&v) {
                        return Err(h.error(
                            "roundValue",
                            &format!("Round value must be > 0 and <= {max}"),
                        ));
                    }
                    Some((u, u32::try_from(v).unwrap_or(1)))
                }
            }
        } else {
            None
        };
        for key in ["kerberosPrincipal", "kerberosKeytab", "proxyUser"] {
            if h.get(key).is_some() {
                return Err(h.error(
                    key,
                    "Kerberos and proxy users are not supported by sluice-flume",
                ));
            }
        }
        let max_open: i64 = h.parse("maxOpenFiles", 5000)?;
        let call_timeout: i64 = h.parse("callTimeout", 30000)?;
        Ok(HdfsConfig {
            path,
            prefix,
            suffix,
            in_use_prefix: h.string("inUsePrefix", ""),
            in_use_suffix,
            roll_interval: positive_secs(h.parse("rollInterval", 30)?),
            roll_size: u64::try_from(h.parse::<i64>("rollSize", 1024)?)
                .ok()
                .filter(|v| *v > 0),
            roll_count: u64::try_from(h.parse::<i64>("rollCount", 10)?)
                .ok()
                .filter(|v| *v > 0),
            idle_timeout: positive_secs(h.parse("idleTimeout", 0)?),
            batch,
            max_open_files: usize::try_from(max_open).unwrap_or(0).max(1),
            call_timeout: u64::try_from(call_timeout)
                .ok()
                .filter(|v| *v > 0)
                .map(Duration::from_millis),
            format,
            escape: EscapeSettings {
                zone,
                round,
                use_local_time: h.bool("useLocalTimeStamp", false)?,
            },
        })
    }
}

/// Build the sink.
pub fn build(
    name: &str,
    ctx: &Context,
    channel: Arc<dyn Channel>,
) -> Result<Box<dyn Sink>, ConfigError> {
    let cfg = HdfsConfig::from_context(ctx)?;
    // A constant path on an unsupported filesystem is a configuration error now rather than
    // an I/O error on every batch.
    if cfg.path.is_constant() {
        if let Err(e) = resolve::locate(&cfg.path.to_string()) {
            if e.kind() == io::ErrorKind::Unsupported {
                return Err(ctx.error("hdfs.path", &e.to_string()));
            }
        }
    }
    let counters = Arc::new(Counters::new(Kind::Sink, name));
    Ok(Box::new(HdfsSink {
        shared: Arc::new(Shared {
            name: name.to_string(),
            cfg,
            counters,
            fss: Filesystems::default(),
            state: tokio::sync::Mutex::new(Buckets::default()),
            wake: Notify::new(),
        }),
        channel,
        roller: None,
        stop: CancellationToken::new(),
    }))
}

struct Shared {
    name: String,
    cfg: HdfsConfig,
    counters: Arc<Counters>,
    fss: Filesystems,
    state: tokio::sync::Mutex<Buckets>,
    /// Wakes the roll timer task when deadlines changed.
    wake: Notify,
}

#[derive(Default)]
struct Buckets {
    map: HashMap<String, Bucket>,
    /// Access clock for least-recently-used eviction.
    tick: u64,
}

struct Bucket {
    dir: String,
    name: String,
    /// Flume's `fileExtensionCounter`.
    counter: u64,
    open: Option<OpenFile>,
    /// Events, body bytes and unflushed events in the current file.
    events: u64,
    bytes: u64,
    unflushed: usize,
    last_used: u64,
}

struct OpenFile {
    fs: Arc<dyn FileSystem>,
    /// The in-use path and the final path, as URIs (for logs) and as filesystem paths.
    in_use: String,
    target: String,
    fs_in_use: String,
    fs_target: String,
    file: Box<dyn OutFile>,
    writer: Box<dyn FormatWriter>,
    pending: Vec<u8>,
    roll_at: Option<Instant>,
    idle_at: Option<Instant>,
}

/// A failed batch.
enum Failure {
    /// Filesystem trouble: roll back and back off.
    Io(io::Error),
    /// Anything else (bad events): roll back and fail the call.
    Other(anyhow::Error),
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn timed<T>(
    limit: Option<Duration>,
    what: &str,
    f: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    match limit {
        None => f.await,
        Some(d) => match tokio::time::timeout(d, f).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "Callable timed out after {} ms on file: {what}",
                    d.as_millis()
                ),
            )),
        },
    }
}

impl Bucket {
    fn new(dir: String, name: String) -> Bucket {
        Bucket {
            dir,
            name,
            counter: u64::try_from(now_ms()).unwrap_or(0),
            open: None,
            events: 0,
            bytes: 0,
            unflushed: 0,
            last_used: 0,
        }
    }

    async fn open(&mut self, sh: &Shared) -> io::Result<()> {
        self.counter += 1;
        let cfg = &sh.cfg;
        let full = format!("{}.{}{}", self.name, self.counter, cfg.suffix);
        let in_use = format!(
            "{}/{}{}{}",
            self.dir, cfg.in_use_prefix, full, cfg.in_use_suffix
        );
        let target = format!("{}/{full}", self.dir);
        tracing::info!("sink {}: Creating {in_use}", sh.name);
        let opened = async {
            let (fs, fs_in_use) = sh.fss.resolve(&in_use)?;
            let (_, fs_target) = sh.fss.resolve(&target)?;
            let file = timed(cfg.call_timeout, &in_use, fs.create(&fs_in_use)).await?;
            Ok::<_, io::Error>((fs, fs_in_use, fs_target, file))
        }
        .await;
        let (fs, fs_in_use, fs_target, file) = match opened {
            Ok(v) => v,
            Err(e) => {
                sh.counters.inc("ConnectionFailedCount");
                return Err(e);
            }
        };
        sh.counters.inc("ConnectionCreatedCount");
        let mut writer = cfg.format.writer();
        let mut pending = Vec::new();
        writer.open(&mut pending);
        self.events = 0;
        self.bytes = 0;
        self.unflushed = 0;
        self.open = Some(OpenFile {
            fs,
            in_use,
            target,
            fs_in_use,
            fs_target,
            file,
            writer,
            pending,
            roll_at: cfg.roll_interval.map(|d| Instant::now() + d),
            idle_at: None,
        });
        Ok(())
    }

    fn should_rotate(&self, cfg: &HdfsConfig) -> bool {
        cfg.roll_count.is_some_and(|c| self.events >= c)
            || cfg.roll_size.is_some_and(|s| self.bytes >= s)
    }

    async fn append(&mut self, sh: &Shared, e: &Event) -> io::Result<()> {
        if let Some(f) = self.open.as_mut() {
            f.idle_at = None;
        }
        if self.open.is_none() {
            self.open(sh).await?;
        } else if self.should_rotate(&sh.cfg) {
            self.close(sh).await;
            self.open(sh).await?;
        }
        let Some(f) = self.open.as_mut() else {
            return Err(io::Error::other("bucket has no open file"));
        };
        // Events were checked before any was written, so this cannot fail here.
        if let Err(err) = f.writer.append(e, &mut f.pending) {
            return Err(io::Error::other(err.0));
        }
        self.bytes += e.body.len() as u64;
        self.events += 1;
        self.unflushed += 1;
        if self.unflushed >= sh.cfg.batch {
            self.flush(sh).await?;
        }
        Ok(())
    }

    /// Write what the batch appended and hflush it.
    async fn flush(&mut self, sh: &Shared) -> io::Result<()> {
        let Some(f) = self.open.as_mut() else {
            return Ok(());
        };
        if self.unflushed == 0 {
            return Ok(());
        }
        f.writer.sync(&mut f.pending);
        let data = std::mem::take(&mut f.pending);
        timed(sh.cfg.call_timeout, &f.in_use, f.file.write_flush(data)).await?;
        self.unflushed = 0;
        if let Some(idle) = sh.cfg.idle_timeout {
            f.idle_at = Some(Instant::now() + idle);
        }
        Ok(())
    }

    /// Flush, close and rename the current file; failures are logged (as Flume does).
    async fn close(&mut self, sh: &Shared) {
        if let Err(e) = self.flush(sh).await {
            tracing::warn!("sink {}: pre-close flush failed: {e}", sh.name);
        }
        let Some(mut f) = self.open.take() else {
            return;
        };
        tracing::info!("sink {}: Closing {}", sh.name, f.in_use);
        let mut tail = Vec::new();
        f.writer.close(&mut tail);
        f.pending.append(&mut tail);
        let data = std::mem::take(&mut f.pending);
        let closed = timed(sh.cfg.call_timeout, &f.in_use, async {
            f.file.write_flush(data).await?;
            f.file.close().await
        })
        .await;
        match closed {
            Ok(()) => sh.counters.inc("ConnectionClosedCount"),
            Err(e) => {
                sh.counters.inc("ConnectionFailedCount");
                tracing::warn!("sink {}: closing file {} failed: {e}", sh.name, f.in_use);
            }
        }
        if f.fs_in_use != f.fs_target {
            tracing::info!("sink {}: Renaming {} to {}", sh.name, f.in_use, f.target);
            if let Err(e) = timed(
                sh.cfg.call_timeout,
                &f.in_use,
                f.fs.rename(&f.fs_in_use, &f.fs_target),
            )
            .await
            {
                sh.counters.inc("ConnectionFailedCount");
                tracing::warn!(
                    "sink {}: failed to rename() file ({}): {e}",
                    sh.name,
                    f.in_use
                );
            }
        }
    }

    /// The earliest timer of the open file.
    fn deadline(&self) -> Option<Instant> {
        let f = self.open.as_ref()?;
        match (f.roll_at, f.idle_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

struct HdfsSink {
    shared: Arc<Shared>,
    channel: Arc<dyn Channel>,
    roller: Option<JoinHandle<()>>,
    stop: CancellationToken,
}

/// Close files whose `rollInterval` or `idleTimeout` passed, and sleep until the next one.
async fn roll_timer(sh: Arc<Shared>, stop: CancellationToken) {
    loop {
        let next = {
            let mut st = sh.state.lock().await;
            let now = Instant::now();
            let due: Vec<String> = st
                .map
                .iter()
                .filter(|(_, b)| b.deadline().is_some_and(|d| d <= now))
                .map(|(k, _)| k.clone())
                .collect();
            for key in due {
                if let Some(mut b) = st.map.remove(&key) {
                    if let Some(f) = &b.open {
                        if f.idle_at.is_some_and(|d| d <= now) {
                            tracing::info!(
                                "sink {}: Closing idle bucketWriter {}",
                                sh.name,
                                f.in_use
                            );
                        } else {
                            tracing::debug!(
                                "sink {}: rolling file ({}): roll scheduled after rollInterval",
                                sh.name,
                                f.in_use
                            );
                        }
                    }
                    b.close(&sh).await;
                }
            }
            st.map.values().filter_map(Bucket::deadline).min()
        };
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = sh.wake.notified() => {}
            _ = sleep => {}
        }
    }
}

impl HdfsSink {
    /// Append `events` and flush the touched buckets.
    async fn write(&self, events: &[Event]) -> Result<(), Failure> {
        let sh = &self.shared;
        let cfg = &sh.cfg;
        let now = now_ms();
        // Escape every event first: a poison pill fails the batch before anything is written.
        let mut keys = Vec::with_capacity(events.len());
        for e in events {
            let dir = cfg
                .path
                .escape(&e.headers, &cfg.escape, now)
                .map_err(|err| {
                    Failure::Other(anyhow::anyhow!(
                        "hdfs.path {:?}: {err}",
                        cfg.path.to_string()
                    ))
                })?;
            let name = cfg
                .prefix
                .escape(&e.headers, &cfg.escape, now)
                .map_err(|err| {
                    Failure::Other(anyhow::anyhow!(
                        "hdfs.filePrefix {:?}: {err}",
                        cfg.prefix.to_string()
                    ))
                })?;
            if matches!(cfg.format, FileFormat::SequenceFile(..)) {
                if let Some(ts) = e.headers.get(escape::TIMESTAMP_HEADER) {
                    if ts.parse::<i64>().is_err() {
                        return Err(Failure::Other(anyhow::anyhow!(
                            "the SequenceFile key is the event's timestamp header, and {ts:?} is not a number (Java: NumberFormatException)"
                        )));
                    }
                }
            }
            keys.push((dir, name));
        }

        let mut st = sh.state.lock().await;
        let mut touched: Vec<String> = Vec::new();
        for (e, (dir, name)) in events.iter().zip(keys) {
            let key = format!("{dir}/{name}");
            st.tick += 1;
            let tick = st.tick;
            if !st.map.contains_key(&key) {
                st.map.insert(key.clone(), Bucket::new(dir, name));
                if st.map.len() > cfg.max_open_files {
                    let eldest = st
                        .map
                        .iter()
                        .filter(|(k, _)| **k != key)
                        .min_by_key(|(_, b)| b.last_used)
                        .map(|(k, _)| k.clone());
                    if let Some(mut b) = eldest.and_then(|k| st.map.remove(&k)) {
                        b.close(sh).await;
                    }
                }
            }
            let Some(bucket) = st.map.get_mut(&key) else {
                continue;
            };
            bucket.last_used = tick;
            if let Err(err) = bucket.append(sh, e).await {
                // Flume closes the file on an append error; the next batch opens a new one.
                bucket.close(sh).await;
                return Err(Failure::Io(err));
            }
            if !touched.contains(&key) {
                touched.push(key);
            }
        }
        for key in &touched {
            if let Some(bucket) = st.map.get_mut(key) {
                if let Err(err) = bucket.flush(sh).await {
                    bucket.close(sh).await;
                    return Err(Failure::Io(err));
                }
            }
        }
        drop(st);
        sh.wake.notify_one();
        Ok(())
    }
}

#[async_trait]
impl Sink for HdfsSink {
    fn name(&self) -> &str {
        &self.shared.name
    }
    fn channel(&self) -> &Arc<dyn Channel> {
        &self.channel
    }
    fn counters(&self) -> Arc<Counters> {
        self.shared.counters.clone()
    }
    fn batch_size(&self) -> Option<usize> {
        Some(self.shared.cfg.batch)
    }

    async fn start(&mut self) -> anyhow::Result<()> {
        self.shared.counters.started();
        self.roller = Some(tokio::spawn(roll_timer(
            self.shared.clone(),
            self.stop.clone(),
        )));
        Ok(())
    }

    async fn process(&mut self) -> anyhow::Result<Status> {
        let counters = self.shared.counters.clone();
        let mut tx = self.channel.begin();
        let events = match take_batch(&mut tx, self.shared.cfg.batch, &counters).await {
            Ok(ev) => ev,
            Err(e) => {
                counters.inc("ChannelReadFail");
                let _ = tx.rollback().await;
                return Err(e.into());
            }
        };
        if events.is_empty() {
            tx.commit().await?;
            return Ok(Status::Backoff);
        }
        match self.write(&events).await {
            Ok(()) => {}
            Err(Failure::Io(e)) => {
                let _ = tx.rollback().await;
                counters.inc("EventWriteFail");
                tracing::warn!("sink {}: HDFS IO error: {e}", self.shared.name);
                return Ok(Status::Backoff);
            }
            Err(Failure::Other(e)) => {
                let _ = tx.rollback().await;
                counters.inc("EventWriteFail");
                return Err(e.context(format!(
                    "process failed; {} events rolled back to channel {}",
                    events.len(),
                    self.channel.name()
                )));
            }
        }
        if let Err(e) = tx.commit().await {
            counters.inc("ChannelReadFail");
            let _ = tx.rollback().await;
            return Err(e.into());
        }
        counters.add(
            "EventDrainSuccessCount",
            i64::try_from(events.len()).unwrap_or(i64::MAX),
        );
        Ok(Status::Ready)
    }

    async fn stop(&mut self) {
        self.stop.cancel();
        if let Some(r) = self.roller.take() {
            let _ = r.await;
        }
        let sh = &self.shared;
        let mut st = sh.state.lock().await;
        let buckets: Vec<Bucket> = st.map.drain().map(|(_, b)| b).collect();
        for mut b in buckets {
            b.close(sh).await;
        }
        sh.counters.stopped();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<HdfsConfig, ConfigError> {
        HdfsConfig::from_context(&Context::from_pairs("a1.sinks.k1.", pairs.iter().copied()))
    }

    #[test]
    fn defaults_are_flumes() {
        let c = cfg(&[("hdfs.path", "/x")]).unwrap();
        assert_eq!(c.prefix.to_string(), "FlumeData");
        assert_eq!(c.in_use_suffix, ".tmp");
        assert_eq!(c.roll_interval, Some(Duration::from_secs(30)));
        assert_eq!(c.roll_size, Some(1024));
        assert_eq!(c.roll_count, Some(10));
        assert_eq!(c.idle_timeout, None);
        assert_eq!(c.batch, 100);
        assert_eq!(c.max_open_files, 5000);
        assert_eq!(
            c.format,
            FileFormat::SequenceFile(WriteFormat::Writable, false)
        );
        assert!(!c.escape.use_local_time);
    }

    #[test]
    fn bad_settings_name_their_key() {
        let e = cfg(&[]).unwrap_err();
        assert!(e.to_string().contains("a1.sinks.k1.hdfs.path"), "{e}");
        let e = cfg(&[("hdfs.path", "/x"), ("hdfs.batchSize", "5  ## five")]).unwrap_err();
        assert!(e.to_string().contains("a1.sinks.k1.hdfs.batchSize"), "{e}");
        let e = cfg(&[("hdfs.path", "/x"), ("hdfs.batchSize", "0")]).unwrap_err();
        assert!(e.to_string().contains("greater than 0"), "{e}");
        let e = cfg(&[
            ("hdfs.path", "/x"),
            ("hdfs.fileType", "DataStream"),
            ("hdfs.codeC", "gzip"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("hdfs.codeC"), "{e}");
        let e = cfg(&[("hdfs.path", "/x"), ("hdfs.codeC", "gzip")]).unwrap_err();
        assert!(
            e.to_string().contains("GzipCodec without native-hadoop"),
            "{e}"
        );
        let e = cfg(&[("hdfs.path", "/x"), ("hdfs.fileType", "CompressedStream")]).unwrap_err();
        assert!(e.to_string().contains("essential"), "{e}");
        let e = cfg(&[
            ("hdfs.path", "/x"),
            ("hdfs.round", "true"),
            ("hdfs.roundUnit", "hour"),
            ("hdfs.roundValue", "25"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("hdfs.roundValue"), "{e}");
    }

    #[test]
    fn codec_gives_the_suffix_and_zero_disables_rolls() {
        let c = cfg(&[
            ("hdfs.path", "/x"),
            ("hdfs.fileType", "compressedstream"),
            ("hdfs.codeC", "gzip"),
            ("hdfs.rollInterval", "0"),
            ("hdfs.rollSize", "0"),
            ("hdfs.rollCount", "0"),
            ("serializer.appendNewline", "false"),
        ])
        .unwrap();
        assert_eq!(c.suffix, ".gz");
        assert_eq!(
            (c.roll_interval, c.roll_size, c.roll_count),
            (None, None, None)
        );
        assert_eq!(
            c.format,
            FileFormat::CompressedStream(
                SerializerSpec::Text {
                    append_newline: false
                },
                Codec::Gzip
            )
        );
    }
}
