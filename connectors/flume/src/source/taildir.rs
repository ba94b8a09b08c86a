//! The `TAILDIR` source (Flume's `TaildirSource` and `ReliableTaildirEventReader`): tails
//! every file matching a set of patterns, one event per line, and remembers how far each
//! file (by inode) was delivered in a JSON position file.
//!
//! Keys: **filegroups** (space list), **filegroups.&lt;g&gt;** (absolute path; a regex is
//! allowed in the file name only, matched against whole names in that directory),
//! `headers.<g>.<k>` (static headers for group g), `positionFile`
//! `~/.flume/taildir_position.json`, `skipToEnd` false, `writePosInterval` 3000 ms,
//! `batchSize` 100, `maxBatchCount` (unlimited: batches read from one file before moving
//! on), `fileHeader` false / `fileHeaderKey` file, `byteOffsetHeader` false (header
//! `byteoffset`), and the pollable-source back-off `backoffSleepIncrement` 1000 ms /
//! `maxBackoffSleep` 5000 ms (how long it waits after a round that found nothing).
//! `idleTimeout` and `cachePatternMatching` are accepted and have no effect (files are
//! opened per read).
//!
//! Lines end at `\n`; a `\r` before it is removed; bodies are the raw bytes. A last line
//! without a newline is left until its newline arrives (Flume's `backoffWithoutNL`).
//!
//! Reliability: each batch goes to the channels in one `process_event_batch`; only after it
//! is committed does the file's position move. A refused batch is re-read from the committed
//! position and retried after 1 s, doubling to 5 s, as in Flume. The position file, a JSON
//! array of `{"inode":N,"pos":N,"file":"/abs/path"}` exactly as Flume writes it, holds only
//! committed positions; it is rewritten every `writePosInterval` and on shutdown (atomically,
//! through a temporary file). After a restart each known inode resumes at its position, so
//! a clean restart neither repeats nor loses a line (a `kill -9` repeats at most what was
//! committed after the last position write, as in Flume).
//!
//! Rotation is followed by inode: a file renamed to another matching name keeps its
//! position, and a new file at the old name is read from its start. Two deliberate
//! deviations from Flume 1.11, which re-reads a renamed file from the start (duplicates):
//! a renamed file keeps its position, and the position file is matched by inode alone
//! (Flume also requires the same path). As in Flume, a file that no longer matches any
//! pattern is no longer read (lines still unread in it are not delivered), and a file that
//! shrank below its position is read again from the start.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use regex::Regex;
use tokio::time::Instant;

use super::{Source, SourceContext};
use crate::conf::{ConfigError, Context};
use crate::event::Event;

/// How much is read from a file at a time.
const READ_CHUNK: usize = 64 * 1024;
/// First retry interval after a channel refusal (Flume's `retryInterval`).
const RETRY_INITIAL: Duration = Duration::from_millis(1000);
/// Longest retry interval (Flume's `maxRetryInterval`).
const RETRY_MAX: Duration = Duration::from_millis(5000);

#[derive(Debug, Clone)]
struct Group {
    name: String,
    dir: PathBuf,
    pattern: Regex,
    headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
struct TaildirConfig {
    groups: Vec<Group>,
    position_file: PathBuf,
    skip_to_end: bool,
    write_pos_interval: Duration,
    batch: usize,
    max_batch_count: u64,
    file_header: Option<String>,
    byte_offset_header: bool,
    backoff_increment: Duration,
    max_backoff: Duration,
}

/// Build the source.
pub fn build(_name: &str, ctx: &Context) -> Result<Box<dyn Source>, ConfigError> {
    let names = ctx.require("filegroups")?;
    let mut groups = Vec::new();
    for g in names.split_whitespace() {
        let key = format!("filegroups.{g}");
        let path = PathBuf::from(ctx.require(&key)?);
        if !path.is_absolute() {
            return Err(ctx.error(&key, "must be an absolute path"));
        }
        let (Some(dir), Some(file)) = (path.parent(), path.file_name()) else {
            return Err(ctx.error(&key, "must name a directory and a file name pattern"));
        };
        let file = file.to_string_lossy();
        let pattern = Regex::new(&format!("^(?:{file})$"))
            .map_err(|e| ctx.error(&key, &format!("invalid file name regex {file:?}: {e}")))?;
        let headers = ctx
            .sub(&format!("headers.{g}."))
            .iter()
            .map(|(k, p)| (k.to_string(), p.value.clone()))
            .collect();
        groups.push(Group {
            name: g.to_string(),
            dir: dir.to_path_buf(),
            pattern,
            headers,
        });
    }
    if groups.is_empty() {
        return Err(ctx.error("filegroups", "names no file group"));
    }
    let position_file = match ctx.get("positionFile") {
        Some(p) => PathBuf::from(p),
        None => {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/"));
            home.join(".flume").join("taildir_position.json")
        }
    };
    let batch: usize = ctx.parse("batchSize", 100)?;
    if batch == 0 {
        return Err(ctx.error("batchSize", "must be greater than 0"));
    }
    let _: u64 = ctx.parse("idleTimeout", 120_000)?;
    let _ = ctx.bool("cachePatternMatching", true)?;
    let cfg = TaildirConfig {
        groups,
        position_file,
        skip_to_end: ctx.bool("skipToEnd", false)?,
        write_pos_interval: Duration::from_millis(ctx.parse("writePosInterval", 3000u64)?),
        batch,
        max_batch_count: ctx.parse("maxBatchCount", u64::MAX)?.max(1),
        file_header: ctx
            .bool("fileHeader", false)?
            .then(|| ctx.string("fileHeaderKey", "file")),
        byte_offset_header: ctx.bool("byteOffsetHeader", false)?,
        backoff_increment: Duration::from_millis(ctx.parse("backoffSleepIncrement", 1000u64)?),
        max_backoff: Duration::from_millis(ctx.parse("maxBackoffSleep", 5000u64)?),
    };
    Ok(Box::new(TaildirSource { cfg }))
}

struct TaildirSource {
    cfg: TaildirConfig,
}

/// One tailed file.
#[derive(Debug, Clone)]
struct TailFile {
    path: PathBuf,
    group: usize,
    /// Committed position: everything before it is in the channels.
    pos: u64,
    /// Size and modification time at the last look, to tell whether it needs reading.
    seen: Option<(u64, SystemTime)>,
}

/// One entry of the position file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct PosEntry {
    inode: u64,
    pos: u64,
    file: String,
}

/// Lines read from one file, not yet committed.
struct Lines {
    inode: u64,
    events: Vec<Event>,
    end: u64,
}

/// The blocking side: scanning, reading, the position file.
struct Tailer {
    cfg: TaildirConfig,
    files: BTreeMap<u64, TailFile>,
    last_written: Option<String>,
}

fn io_err(what: &str, path: &Path, e: io::Error) -> anyhow::Error {
    anyhow::anyhow!("{what} {}: {e}", path.display())
}

impl Tailer {
    fn new(cfg: TaildirConfig) -> Self {
        Tailer {
            cfg,
            files: BTreeMap::new(),
            last_written: None,
        }
    }

    /// Flume's `start`: create the position file's directory, scan, then load positions.
    fn start(&mut self) -> anyhow::Result<()> {
        for g in &self.cfg.groups {
            if !g.dir.is_dir() {
                anyhow::bail!(
                    "file group {}: directory does not exist: {}",
                    g.name,
                    g.dir.display()
                );
            }
        }
        if let Some(parent) = self.cfg.position_file.parent() {
            fs::create_dir_all(parent).map_err(|e| io_err("cannot create directory", parent, e))?;
        }
        self.scan()?;
        match fs::read(&self.cfg.position_file) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => {}
            Ok(bytes) => match serde_json::from_slice::<Vec<PosEntry>>(&bytes) {
                Ok(entries) => {
                    for e in entries {
                        if let Some(tf) = self.files.get_mut(&e.inode) {
                            if tf.path != Path::new(&e.file) {
                                tracing::info!("taildir: inode {} moved from {} to {}; keeping its position {}", e.inode, e.file, tf.path.display(), e.pos);
                            }
                            tf.pos = e.pos;
                            tf.seen = None;
                        }
                    }
                }
                Err(e) => tracing::warn!(
                    "taildir: ignoring unreadable position file {}: {e}",
                    self.cfg.position_file.display()
                ),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(io_err(
                    "cannot read position file",
                    &self.cfg.position_file,
                    e,
                ))
            }
        }
        Ok(())
    }

    /// Flume's `updateTailFiles`: the matched files by inode; returns the inodes needing a
    /// read.
    fn scan(&mut self) -> anyhow::Result<Vec<u64>> {
        let mut found: BTreeMap<u64, (PathBuf, usize, u64, SystemTime)> = BTreeMap::new();
        for (gi, g) in self.cfg.groups.iter().enumerate() {
            let rd = match fs::read_dir(&g.dir) {
                Ok(rd) => rd,
                Err(e) => {
                    tracing::warn!("taildir: cannot list {}: {e}", g.dir.display());
                    continue;
                }
            };
            for entry in rd.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !g.pattern.is_match(&name) {
                    continue;
                }
                let Ok(md) = fs::metadata(entry.path()) else {
                    continue;
                };
                if !md.is_file() {
                    continue;
                }
                let mtime = md.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                found
                    .entry(md.ino())
                    .or_insert((entry.path(), gi, md.len(), mtime));
            }
        }
        let mut next = BTreeMap::new();
        let mut need = Vec::new();
        for (inode, (path, group, len, mtime)) in found {
            let mut tf = match self.files.remove(&inode) {
                Some(mut tf) => {
                    if tf.path != path {
                        tracing::info!(
                            "taildir: {} is now {} (inode {inode}); position {} kept",
                            tf.path.display(),
                            path.display(),
                            tf.pos
                        );
                        tf.path = path;
                        tf.group = group;
                    }
                    tf
                }
                None => {
                    let pos = if self.cfg.skip_to_end { len } else { 0 };
                    tracing::info!(
                        "taildir: opening {} (inode {inode}) at {pos}",
                        path.display()
                    );
                    TailFile {
                        path,
                        group,
                        pos,
                        seen: None,
                    }
                }
            };
            if len < tf.pos {
                tracing::info!(
                    "taildir: position {} is larger than the size of {}; reading it again from 0",
                    tf.pos,
                    tf.path.display()
                );
                tf.pos = 0;
            }
            if tf.seen != Some((len, mtime)) || tf.pos != len {
                need.push(inode);
            }
            tf.seen = Some((len, mtime));
            next.insert(inode, tf);
        }
        self.files = next;
        Ok(need)
    }

    /// Read up to `n` complete lines of `inode` from its committed position.
    fn read(&self, inode: u64, n: usize) -> anyhow::Result<Option<Lines>> {
        let Some(tf) = self.files.get(&inode) else {
            return Ok(None);
        };
        let mut f = match File::open(&tf.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("cannot open", &tf.path, e)),
        };
        // The name may point at another file since the scan (rotation): check the inode.
        if f.metadata().map(|m| m.ino()).ok() != Some(inode) {
            return Ok(None);
        }
        f.seek(SeekFrom::Start(tf.pos))
            .map_err(|e| io_err("cannot seek in", &tf.path, e))?;
        let group = self.cfg.groups.get(tf.group);
        let mut events = Vec::new();
        let mut buf: Vec<u8> = Vec::new();
        let mut chunk = vec![0u8; READ_CHUNK];
        let mut consumed = 0usize;
        let mut pos = tf.pos;
        'outer: while events.len() < n {
            let got = f
                .read(&mut chunk)
                .map_err(|e| io_err("cannot read", &tf.path, e))?;
            if got == 0 {
                break;
            }
            buf.extend_from_slice(chunk.get(..got).unwrap_or(&[]));
            while events.len() < n {
                let rest = buf.get(consumed..).unwrap_or(&[]);
                let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                    continue 'outer;
                };
                let mut line = rest.get(..nl).unwrap_or(&[]);
                if let Some(l) = line.strip_suffix(b"\r") {
                    line = l;
                }
                let mut e = Event::new(bytes::Bytes::copy_from_slice(line));
                if let Some(g) = group {
                    for (k, v) in &g.headers {
                        e.headers.insert(k.clone(), v.clone());
                    }
                }
                if let Some(k) = &self.cfg.file_header {
                    e.headers
                        .insert(k.clone(), tf.path.to_string_lossy().into_owned());
                }
                if self.cfg.byte_offset_header {
                    e.headers.insert("byteoffset".to_string(), pos.to_string());
                }
                events.push(e);
                consumed += nl + 1;
                pos += (nl + 1) as u64;
            }
        }
        if events.is_empty() {
            return Ok(None);
        }
        Ok(Some(Lines {
            inode,
            events,
            end: pos,
        }))
    }

    fn commit(&mut self, inode: u64, end: u64) {
        if let Some(tf) = self.files.get_mut(&inode) {
            tf.pos = end;
        }
    }

    fn positions_json(&self) -> String {
        let entries: Vec<PosEntry> = self
            .files
            .iter()
            .map(|(inode, tf)| PosEntry {
                inode: *inode,
                pos: tf.pos,
                file: tf.path.to_string_lossy().into_owned(),
            })
            .collect();
        serde_json::to_string(&entries).unwrap_or_else(|_| "[]".to_string())
    }

    /// Write the committed positions (when they changed).
    fn write_positions(&mut self) -> anyhow::Result<()> {
        let json = self.positions_json();
        if self.last_written.as_deref() == Some(json.as_str()) {
            return Ok(());
        }
        let path = &self.cfg.position_file;
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        fs::write(&tmp, json.as_bytes()).map_err(|e| io_err("cannot write", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| io_err("cannot write", path, e))?;
        self.last_written = Some(json);
        Ok(())
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| anyhow::anyhow!("taildir worker failed: {e}"))
}

impl TaildirSource {
    /// Flume's `tailFileProcess` for one file; returns the tailer and whether more lines
    /// may be waiting (`maxBatchCount` reached).
    async fn tail_file(
        &self,
        mut tailer: Tailer,
        inode: u64,
        ctx: &SourceContext,
    ) -> anyhow::Result<(Tailer, bool)> {
        let batch = self.cfg.batch;
        let mut batches: u64 = 0;
        loop {
            if ctx.shutdown.is_cancelled() {
                return Ok((tailer, false));
            }
            let (t, read) = blocking(move || {
                let r = tailer.read(inode, batch);
                (tailer, r)
            })
            .await?;
            tailer = t;
            let read = match read {
                Ok(Some(r)) => r,
                Ok(None) => return Ok((tailer, false)),
                Err(e) => {
                    ctx.counters.inc("EventReadFail");
                    tracing::error!("source {}: unable to tail files: {e:#}", ctx.name);
                    return Ok((tailer, false));
                }
            };
            let Lines { inode, events, end } = read;
            let n = events.len();
            ctx.counters.inc("AppendBatchReceivedCount");
            let mut retry = RETRY_INITIAL;
            loop {
                match ctx.processor.process_event_batch(events.clone()).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::warn!("source {}: the channel is full or unexpected failure ({e}); the source will try again after {retry:?}", ctx.name);
                        tokio::select! {
                            // Not committed: the lines are read again after a restart.
                            _ = ctx.shutdown.cancelled() => return Ok((tailer, false)),
                            _ = tokio::time::sleep(retry) => {}
                        }
                        retry = (retry * 2).min(RETRY_MAX);
                    }
                }
            }
            tailer.commit(inode, end);
            ctx.counters.inc("AppendBatchAcceptedCount");
            if n < batch {
                return Ok((tailer, false));
            }
            batches += 1;
            if batches >= self.cfg.max_batch_count {
                return Ok((tailer, true));
            }
        }
    }
}

#[async_trait]
impl Source for TaildirSource {
    fn batch_size(&self) -> Option<usize> {
        Some(self.cfg.batch)
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> anyhow::Result<()> {
        let mut tailer = Tailer::new(self.cfg.clone());
        let (t, started) = blocking(move || {
            let s = tailer.start();
            (tailer, s)
        })
        .await?;
        tailer = t;
        started.map_err(|e| anyhow::anyhow!("taildir source {}: {e:#}", ctx.name))?;
        tracing::info!(
            "source {}: taildir tailing {} file(s), positions in {}",
            ctx.name,
            tailer.files.len(),
            self.cfg.position_file.display()
        );
        let mut last_write = Instant::now();
        let mut idle_rounds: u32 = 0;
        loop {
            let (t, need) = blocking(move || {
                let n = tailer.scan();
                (tailer, n)
            })
            .await?;
            tailer = t;
            let need = need.unwrap_or_else(|e| {
                ctx.counters.inc("EventReadFail");
                tracing::error!("source {}: unable to tail files: {e:#}", ctx.name);
                Vec::new()
            });
            let mut ready = false;
            for inode in need {
                let (t, more) = self.tail_file(tailer, inode, &ctx).await?;
                tailer = t;
                ready |= more;
                if ctx.shutdown.is_cancelled() {
                    break;
                }
            }
            if ctx.shutdown.is_cancelled() || last_write.elapsed() >= self.cfg.write_pos_interval {
                last_write = Instant::now();
                let (t, w) = blocking(move || {
                    let w = tailer.write_positions();
                    (tailer, w)
                })
                .await?;
                tailer = t;
                if let Err(e) = w {
                    tracing::error!("source {}: {e:#}", ctx.name);
                }
            }
            if ctx.shutdown.is_cancelled() {
                return Ok(());
            }
            if ready {
                idle_rounds = 0;
                continue;
            }
            // Pollable-source back-off after a round with nothing more to read, but wake up
            // for the next position write.
            idle_rounds = idle_rounds.saturating_add(1);
            let pause = (self.cfg.backoff_increment * idle_rounds).min(self.cfg.max_backoff);
            let until_write = self
                .cfg
                .write_pos_interval
                .saturating_sub(last_write.elapsed());
            tokio::select! {
                _ = ctx.shutdown.cancelled() => {}
                _ = tokio::time::sleep(pause.min(until_write.max(Duration::from_millis(1)))) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dir: &Path, batch: usize) -> TaildirConfig {
        TaildirConfig {
            groups: vec![Group {
                name: "g".into(),
                dir: dir.to_path_buf(),
                pattern: Regex::new(r"^(?:app\.log.*)$").unwrap(),
                headers: [("topic".to_string(), "t1".to_string())]
                    .into_iter()
                    .collect(),
            }],
            position_file: dir.join("pos").join("taildir_position.json"),
            skip_to_end: false,
            write_pos_interval: Duration::from_millis(10),
            batch,
            max_batch_count: u64::MAX,
            file_header: Some("file".into()),
            byte_offset_header: true,
            backoff_increment: Duration::from_millis(10),
            max_backoff: Duration::from_millis(10),
        }
    }

    fn bodies(r: &Lines) -> Vec<String> {
        r.events
            .iter()
            .map(|e| String::from_utf8_lossy(&e.body).into_owned())
            .collect()
    }

    #[test]
    fn reads_complete_lines_and_resumes_by_inode() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        fs::write(&log, "a\r\nb\npartial").unwrap();
        let mut t = Tailer::new(cfg(dir.path(), 10));
        t.start().unwrap();
        let need = t.scan().unwrap();
        assert_eq!(need.len(), 1);
        let r = t.read(need[0], 10).unwrap().unwrap();
        assert_eq!(bodies(&r), vec!["a", "b"]);
        assert_eq!(r.events[0].headers["topic"], "t1");
        assert_eq!(r.events[1].headers["byteoffset"], "3");
        t.commit(r.inode, r.end);
        t.write_positions().unwrap();
        let json = fs::read_to_string(dir.path().join("pos/taildir_position.json")).unwrap();
        let ino = fs::metadata(&log).unwrap().ino();
        assert_eq!(
            json,
            format!(r#"[{{"inode":{ino},"pos":5,"file":"{}"}}]"#, log.display())
        );

        // Rotate: rename, new file at the old name; restart from the position file.
        std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
        fs::write(&log, "new\n").unwrap();
        let mut t = Tailer::new(cfg(dir.path(), 10));
        t.start().unwrap();
        let need = t.scan().unwrap();
        let mut all = Vec::new();
        for i in need {
            if let Some(r) = t.read(i, 10).unwrap() {
                all.extend(bodies(&r));
            }
        }
        assert_eq!(all, vec!["new"]);
    }
}
