//! Storage: the log manager (topic → partitions), per-partition logs made of segments, their
//! indexes, recovery, checkpoints and topic metadata on disk, in Kafka's layout:
//!
//! ```text
//! DATA/meta.properties                     cluster id, node id
//! DATA/recovery-point-offset-checkpoint    per partition: offset below which data is fsynced
//! DATA/log-start-offset-checkpoint         per partition: first readable offset
//! DATA/sluice-topics/NAME.properties       topic id, partition count, config overrides
//! DATA/sluice-topics/NAME.ID.deleted       a committed deletion whose directories may remain
//! DATA/sluice-topics/METADATA_VERSION      present once the files above define the topics
//! DATA/TOPIC-N/00000000000000000000.log    record batches as producers sent them
//!                     ....index/.timeindex sparse indexes
//!                     ....txnindex         aborted transactions (Kafka's format)
//!                     partition.metadata   topic id (Kafka's format)
//! ```
//!
//! The topic files define which topics and partitions exist, not the directories: a topic
//! change creates its partition directories first and commits by writing (or renaming) its
//! topic file last, with an fsync of the file and of its directory. A change that fails
//! midway removes what it created; one cut short by a crash leaves directories that no
//! topic file covers, and start-up removes them (or, if they hold records, sets them aside
//! as `NAME-N.RANDOM-stray`), saying so in the log. Deletion commits first, by renaming the
//! topic file to a tombstone, then renames the directories to `NAME-N.ID-delete` and removes
//! them in the background, as Kafka does.
//!
//! Everything here is synchronous std IO; async callers go through the blocking pool.
//! Request handling, wire formats and groups live elsewhere.

pub mod batch;
pub mod cleaner;
pub mod config;
pub mod index;
pub mod partition;
pub mod producer;
pub mod segment;
pub mod txn_index;
#[cfg(test)]
mod txn_tests;
pub mod validate;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use tracing::{error, info, warn};
use uuid::Uuid;

pub use config::{LogConfig, TimestampType};
pub use partition::{
    AppendError, AppendInfo, FetchData, FetchRegion, LogStats, Partition, ReadError,
};
pub use producer::ProducerInfo;
pub use segment::FileRegion;
pub use txn_index::AbortedTxn;

/// Kafka's `index.interval.bytes` default, used when rebuilding indexes.
pub const INDEX_INTERVAL_BYTES: usize = 4096;
/// Kafka's limit on topic name length.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Kafka's committed-offsets and group-metadata topic.
pub const CONSUMER_OFFSETS_TOPIC: &str = "__consumer_offsets";
/// The coordinator epoch written into transaction markers, by the transaction coordinator
/// and by the group coordinator for offsets committed in a transaction. Kafka's is the
/// leader epoch of the coordinator's partition; one node never changes leader.
pub const COORDINATOR_EPOCH: i32 = 0;
/// Every topic Kafka treats as internal (its `Topic.INTERNAL_TOPICS`): the brokers write
/// them, clients may not produce to them. A new internal topic is added here and nowhere
/// else.
pub const INTERNAL_TOPICS: &[&str] = &[
    CONSUMER_OFFSETS_TOPIC,
    "__transaction_state",
    "__share_group_state",
];

/// Whether `name` is an internal topic. Kafka compares whole names: `__consumer_offsets2`
/// is an ordinary topic.
pub fn is_internal_topic(name: &str) -> bool {
    INTERNAL_TOPICS.contains(&name)
}

const RECOVERY_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
const LOG_START_CHECKPOINT: &str = "log-start-offset-checkpoint";
const TOPICS_DIR: &str = "sluice-topics";
const META_PROPERTIES: &str = "meta.properties";
/// Broker properties changed at run time for this broker (resource name "1").
const DYNAMIC_CONFIG: &str = "sluice-broker-dynamic.properties";
/// Broker properties changed at run time as the cluster-wide default (resource name "").
const DYNAMIC_DEFAULT_CONFIG: &str = "sluice-broker-dynamic-default.properties";
/// In `TOPICS_DIR`: written once the topic files are known to cover every partition. Data
/// directories of older versions lack it; their first start adopts partition directories
/// without a topic file, as those versions did on every start.
const METADATA_VERSION: &str = "METADATA_VERSION";
/// Suffix of a tombstone in `TOPICS_DIR`: `NAME.ID.deleted`.
const TOMBSTONE_SUFFIX: &str = ".deleted";
/// Suffix of a partition directory being deleted (Kafka's).
const DELETE_SUFFIX: &str = "-delete";
/// Suffix of a partition directory that no topic covers but holds records.
const STRAY_SUFFIX: &str = "-stray";

/// Translate Kafka-named broker properties into the topic keys they default: the cluster
/// default first, this broker's own values over it, as Kafka orders them. Properties that
/// default no topic key are kept and reported by DescribeConfigs but play no part here.
fn to_topic_keys(
    default: &BTreeMap<String, String>,
    per_broker: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    default
        .iter()
        .chain(per_broker.iter())
        .filter_map(|(k, v)| config::topic_key(k).map(|t| (t.to_string(), v.clone())))
        .collect()
}

/// Read a dynamic-config file; values were escaped by [`write_dynamic`].
fn read_dynamic(path: &Path) -> Result<BTreeMap<String, String>, Error> {
    if !path.exists() {
        return Ok(BTreeMap::new());
    }
    Ok(read_properties(path)?
        .into_iter()
        .map(|(k, v)| (k, unescape_value(&v)))
        .collect())
}

/// Write a dynamic-config file atomically, one `key=value` line each; `\`, newlines and
/// carriage returns in values are escaped so multi-line values (JAAS configs) stay on a line.
fn write_dynamic(path: &Path, values: &BTreeMap<String, String>) -> Result<(), Error> {
    let mut text = String::from("# broker configs changed at run time, written by sluice\n");
    for (k, v) in values {
        let v = v
            .replace('\\', "\\\\")
            .replace('\n', "\\n")
            .replace('\r', "\\r");
        text.push_str(&format!("{k}={v}\n"));
    }
    write_atomic(path, &text)
}

fn unescape_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Which set of run-time broker properties: this broker's, or the cluster default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DynamicLevel {
    /// Resource name = the broker id (source DYNAMIC_BROKER_CONFIG).
    Broker,
    /// Resource name "" (source DYNAMIC_DEFAULT_BROKER_CONFIG).
    ClusterDefault,
}

/// Storage errors. Messages name the path or offset involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An IO call failed.
    #[error("{path}: {source}")]
    Io {
        /// File or directory involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A batch is cut short.
    #[error("batch needs {need} bytes but only {have} are present")]
    ShortBatch {
        /// Bytes the header claims.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// The batch length field is impossible.
    #[error("invalid batch length {0}")]
    BadBatchLength(i32),
    /// Not message format v2.
    #[error("unsupported message format (magic {0})")]
    UnsupportedMagic(i8),
    /// Negative record count.
    #[error("invalid record count {0}")]
    BadRecordCount(i32),
    /// The CRC does not match.
    #[error("crc mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// CRC in the header.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// An index entry does not point at the batch it names; the index must be rebuilt.
    #[error("{path}: wrong index {msg}")]
    BadIndex {
        /// The index file.
        path: PathBuf,
        /// Which entry, and what is at the position it names.
        msg: String,
    },
    /// A metadata file is malformed.
    #[error("{path}: {msg}")]
    Corrupt {
        /// File involved.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
}

impl Error {
    /// Wrap an IO error with its path.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whether the process (EMFILE) or the system (ENFILE) ran out of file descriptors.
    pub fn is_out_of_descriptors(&self) -> bool {
        // EMFILE is 24 and ENFILE 23 on Linux and the BSDs.
        matches!(self, Error::Io { source, .. } if matches!(source.raw_os_error(), Some(23 | 24)))
    }
}

/// fsync a directory, so that entries created, renamed or removed in it survive a power
/// loss.
pub fn sync_dir(dir: &Path) -> Result<(), Error> {
    DirHandle::open(dir)?.sync()
}

/// An open directory, to fsync after a rename in it. Opened before the rename, so that a
/// commit never fails for want of a file descriptor after it has happened.
struct DirHandle {
    path: PathBuf,
    file: std::fs::File,
}

impl DirHandle {
    fn open(dir: &Path) -> Result<Self, Error> {
        Ok(DirHandle {
            path: dir.to_path_buf(),
            file: std::fs::File::open(dir).map_err(|e| Error::io(dir, e))?,
        })
    }

    fn sync(&self) -> Result<(), Error> {
        self.file.sync_all().map_err(|e| Error::io(&self.path, e))?;
        #[cfg(test)]
        tests::SYNCED_DIRS.with(|d| d.borrow_mut().push(self.path.clone()));
        Ok(())
    }
}

/// Why a topic could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The name breaks Kafka's rules.
    #[error("{0}")]
    InvalidName(String),
    /// Already there.
    #[error("topic '{0}' already exists")]
    Exists(String),
    /// Partition count out of range.
    #[error("number of partitions must be at least 1, got {0}")]
    InvalidPartitions(i32),
    /// A config key or value is invalid.
    #[error("{0}")]
    InvalidConfig(String),
    /// No such topic.
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    /// Disk failure.
    #[error(transparent)]
    Storage(#[from] Error),
}

impl CreateError {
    /// What to tell the client of a failed change, which left nothing behind.
    pub fn client_message(&self) -> String {
        match self {
            CreateError::Storage(e) if e.is_out_of_descriptors() => format!(
                "out of file descriptors (open-files limit {}): every partition keeps its files open; raise RLIMIT_NOFILE or remove topics. Nothing was created ({e})",
                crate::limits::open_files_limit().map_or_else(|| "unknown".into(), |n| n.to_string())
            ),
            CreateError::Storage(e) => format!("{e}; nothing was created"),
            other => other.to_string(),
        }
    }
}

/// One topic: its id, partitions and config overrides.
#[derive(Debug)]
pub struct Topic {
    /// Topic name.
    pub name: Arc<str>,
    /// Topic id (Metadata v10+, Fetch v13+).
    pub id: Uuid,
    /// Partitions, by index.
    pub partitions: Vec<Arc<Partition>>,
    /// Topic-level config overrides, Kafka-named.
    pub overrides: BTreeMap<String, String>,
    /// The effective log config.
    pub config: Arc<LogConfig>,
}

impl Topic {
    /// The same topic (name and id) with other partitions, overrides or config.
    fn derived(
        &self,
        partitions: Vec<Arc<Partition>>,
        overrides: BTreeMap<String, String>,
        config: Arc<LogConfig>,
    ) -> Topic {
        Topic {
            name: Arc::clone(&self.name),
            id: self.id,
            partitions,
            overrides,
            config,
        }
    }

    /// Whether Kafka marks this topic internal (see [`is_internal_topic`]).
    pub fn is_internal(&self) -> bool {
        is_internal_topic(&self.name)
    }
}

/// A partition's checkpointed (index, recovery point, log start).
type CheckpointEntry = (i32, Option<i64>, Option<i64>);

#[derive(Default)]
struct TopicMap {
    by_name: HashMap<Arc<str>, Arc<Topic>>,
    by_id: HashMap<Uuid, Arc<Topic>>,
}

/// All topics of the broker. Lookups take a read lock and clone an `Arc`; creation and
/// deletion are serialised by their own mutex so the map lock is held only for the swap.
pub struct LogManager {
    dir: PathBuf,
    /// Effective broker defaults: the static config with dynamic changes on top.
    defaults: RwLock<Arc<LogConfig>>,
    static_defaults: Arc<LogConfig>,
    /// Broker properties changed at run time, Kafka-named; persisted in `DYNAMIC_CONFIG`.
    dynamic: RwLock<BTreeMap<String, String>>,
    /// Cluster-default broker properties changed at run time; in `DYNAMIC_DEFAULT_CONFIG`.
    dynamic_default: RwLock<BTreeMap<String, String>>,
    topics: RwLock<TopicMap>,
    /// Committed topics that could not be opened at start-up (out of file descriptors):
    /// (id, partitions) by name. They are not served, but their names stay taken.
    offline: Mutex<HashMap<String, (Uuid, i32)>>,
    /// Their checkpointed (partition, recovery point, log start), written again by every
    /// checkpoint so that nothing DeleteRecords removed comes back when they are opened.
    offline_checkpoints: Mutex<HashMap<String, Vec<CheckpointEntry>>>,
    admin: Mutex<()>,
    /// One checkpoint at a time: the periodic one may still be running when shutdown
    /// writes its own, and both write the same temp files.
    checkpointing: Mutex<()>,
    cluster_id: String,
}

/// Validate a topic name as Kafka does: 1..=249 characters of `[a-zA-Z0-9._-]`, not `.` or
/// `..`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return Err("topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return Err(format!(
            "topic name is illegal, it can't be longer than {MAX_TOPIC_NAME_LEN} characters, topic name: {name}"
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
    {
        return Err(format!(
            "topic name {name} is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// Kafka writes ids as unpadded URL-safe base64 of the 16 bytes.
pub fn base64_id(id: &Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let idx = (n >> (18 - 6 * i)) & 63;
            out.push(char::from(ALPHABET[idx as usize]));
        }
    }
    out
}

/// Replace `path` with `contents` atomically: write a temp file, fsync it, rename it over
/// the old one and fsync the directory, so a crash leaves the old or the new file whole.
pub(crate) fn write_atomic(path: &Path, contents: &str) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map(DirHandle::open)
        .transpose()?;
    std::fs::write(&tmp, contents).map_err(|e| Error::io(&tmp, e))?;
    let f = std::fs::File::open(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    match dir {
        Some(d) => d.sync(),
        None => Ok(()),
    }
}

/// Whether any `.log` file in a partition directory holds bytes. An unreadable directory
/// counts as holding records, so nothing is removed on a guess.
fn holds_records(pdir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(pdir) else {
        return true;
    };
    entries.into_iter().any(|e| match e {
        Ok(e) => {
            e.path().extension().is_some_and(|x| x == "log")
                && e.metadata().map_or(true, |m| m.len() > 0)
        }
        Err(_) => true,
    })
}

/// The topic id (Kafka's base64) in a partition directory's `partition.metadata`.
fn partition_topic_id(pdir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(pdir.join("partition.metadata")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("topic_id:"))
        .map(|v| v.trim().to_string())
}

/// Move a partition directory that no committed topic covers out of the way: removed when
/// it holds no records, else renamed to `NAME-N.RANDOM-stray` and kept for an operator.
fn set_aside(pdir: &Path, why: &str) -> Result<(), Error> {
    if !holds_records(pdir) {
        std::fs::remove_dir_all(pdir).map_err(|e| Error::io(pdir, e))?;
        info!(dir = %pdir.display(), "removed a partition directory that held no records: {why}");
        return Ok(());
    }
    let name = pdir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let to = pdir.with_file_name(format!("{name}.{}{STRAY_SUFFIX}", Uuid::new_v4().simple()));
    std::fs::rename(pdir, &to).map_err(|e| Error::io(pdir, e))?;
    warn!(
        dir = %pdir.display(),
        to = %to.display(),
        "set aside a partition directory that holds records: {why}; inspect or delete it"
    );
    Ok(())
}

/// Rename a deleted topic's partition directory to `NAME-N.ID-delete`; it is removed
/// later (or at the next start).
fn mark_deleted(dir: &Path, topic: &str, index: i32, id: &Uuid) -> Result<PathBuf, Error> {
    let from = dir.join(format!("{topic}-{index}"));
    let to = dir.join(format!("{topic}-{index}.{}{DELETE_SUFFIX}", id.simple()));
    std::fs::rename(&from, &to).map_err(|e| Error::io(&from, e))?;
    Ok(to)
}

fn read_properties(path: &Path) -> Result<BTreeMap<String, String>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect())
}

fn read_checkpoint(path: &Path) -> HashMap<(String, i32), i64> {
    let mut out = HashMap::new();
    let Ok(text) = std::fs::read_to_string(path) else {
        return out;
    };
    for line in text.lines().skip(2) {
        let mut it = line.split_whitespace();
        if let (Some(t), Some(p), Some(o)) = (it.next(), it.next(), it.next()) {
            if let (Ok(p), Ok(o)) = (p.parse(), o.parse()) {
                out.insert((t.to_string(), p), o);
            }
        }
    }
    out
}

/// Split a partition directory name `topic-N` into its parts.
fn parse_partition_dir(name: &str) -> Option<(&str, i32)> {
    let (topic, idx) = name.rsplit_once('-')?;
    let idx: i32 = idx.parse().ok()?;
    (!topic.is_empty() && idx >= 0 && validate_topic_name(topic).is_ok()).then_some((topic, idx))
}

impl LogManager {
    /// Open the data directory: complete or roll back half-done topic operations, then
    /// recover every partition.
    pub fn open(dir: &Path, defaults: LogConfig, node_id: i32) -> Result<Self, Error> {
        std::fs::create_dir_all(dir.join(TOPICS_DIR)).map_err(|e| Error::io(dir, e))?;
        let cluster_id = Self::load_meta(dir, node_id)?;
        let static_defaults = Arc::new(defaults);
        let dynamic_path = dir.join(DYNAMIC_CONFIG);
        let dynamic = read_dynamic(&dynamic_path)?;
        let dynamic_default = read_dynamic(&dir.join(DYNAMIC_DEFAULT_CONFIG))?;
        let defaults = Arc::new(
            static_defaults
                .with_overrides(&to_topic_keys(&dynamic_default, &dynamic))
                .map_err(|msg| Error::Corrupt {
                    path: dynamic_path.clone(),
                    msg,
                })?,
        );
        let recovery = read_checkpoint(&dir.join(RECOVERY_CHECKPOINT));
        let starts = read_checkpoint(&dir.join(LOG_START_CHECKPOINT));

        let topics_dir = dir.join(TOPICS_DIR);
        let authoritative = topics_dir.join(METADATA_VERSION).exists();
        // Committed topics, and tombstones of committed deletions.
        let mut described: Vec<(String, BTreeMap<String, String>, bool)> = Vec::new();
        let mut tombstones: Vec<(String, Uuid, PathBuf)> = Vec::new();
        for entry in std::fs::read_dir(&topics_dir).map_err(|e| Error::io(&topics_dir, e))? {
            let entry = entry.map_err(|e| Error::io(&topics_dir, e))?;
            let name = entry.file_name().to_string_lossy().to_string();
            if let Some(topic) = name.strip_suffix(".properties") {
                described.push((topic.to_string(), read_properties(&entry.path())?, false));
            } else if let Some(rest) = name.strip_suffix(TOMBSTONE_SUFFIX) {
                match rest
                    .rsplit_once('.')
                    .and_then(|(t, id)| Some((t, Uuid::parse_str(id).ok()?)))
                {
                    Some((t, id)) => tombstones.push((t.to_string(), id, entry.path())),
                    None => warn!(file = %entry.path().display(), "ignoring a malformed tombstone"),
                }
            } else if name.ends_with(".tmp") {
                std::fs::remove_file(entry.path()).map_err(|e| Error::io(&entry.path(), e))?;
            }
        }
        let committed: HashMap<String, i32> = described
            .iter()
            .map(|(t, props, _)| {
                // A topic file without a readable count fails below; until then it covers
                // every directory of its topic, so none is moved on its account.
                let n = props.get("partitions").and_then(|v| v.parse().ok());
                (t.clone(), n.unwrap_or(i32::MAX))
            })
            .collect();

        // Partition directories: those the topic files cover stay; the rest are what a
        // failed or interrupted change left behind.
        let mut adopted: BTreeMap<String, i32> = BTreeMap::new();
        let mut removed_any = false;
        for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            let name = entry.file_name().to_string_lossy().to_string();
            let path = entry.path();
            if !path.is_dir() || name == TOPICS_DIR {
                continue;
            }
            if name.ends_with(DELETE_SUFFIX) {
                info!(dir = %path.display(), "finishing deletion of a deleted topic's directory");
                // Gone already (the deleting thread of this process finished it): fine.
                match std::fs::remove_dir_all(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(&path, e)),
                }
                continue;
            }
            if name.ends_with(STRAY_SUFFIX) {
                info!(dir = %path.display(), "a partition directory set aside earlier is still here; delete it when it is no longer needed");
                continue;
            }
            let Some((t, i)) = parse_partition_dir(&name) else {
                warn!(dir = %path.display(), "ignoring a directory that is not a partition");
                continue;
            };
            if committed.get(t).is_some_and(|n| i < *n) {
                continue;
            }
            let on_disk = partition_topic_id(&path);
            if let Some((_, id, _)) = tombstones
                .iter()
                .find(|(tt, id, _)| tt == t && on_disk.as_ref().is_none_or(|d| *d == base64_id(id)))
            {
                info!(dir = %path.display(), "finishing deletion of a deleted topic's directory");
                let gone = mark_deleted(dir, t, i, id)?;
                std::fs::remove_dir_all(&gone).map_err(|e| Error::io(&gone, e))?;
                removed_any = true;
                continue;
            }
            if !authoritative && !committed.contains_key(t) {
                let n = adopted.entry(t.to_string()).or_insert(0);
                *n = (*n).max(i + 1);
                continue;
            }
            let why = match committed.get(t) {
                Some(n) => format!("topic {t} has {n} partitions in its committed metadata"),
                None => format!("no topic {t} in the committed metadata"),
            };
            set_aside(&path, &why)?;
            removed_any = true;
        }
        // Data directories of older versions: partition directories without a topic file
        // were adopted at every start; do it once more, then the topic files rule.
        for (topic, n) in adopted {
            warn!(
                topic,
                partitions = n,
                "adopting partition directories that had no topic metadata (first start of this version on this data directory)"
            );
            let mut props = BTreeMap::new();
            props.insert("partitions".to_string(), n.to_string());
            described.push((topic, props, true));
        }

        // Internal topics first: if descriptors run out, the broker still has its groups.
        described
            .sort_by(|a, b| (!a.0.starts_with("__"), &a.0).cmp(&(!b.0.starts_with("__"), &b.0)));
        let mut map = TopicMap::default();
        let mut offline = HashMap::new();
        let mut offline_checkpoints = HashMap::new();
        for (name, props, adopted) in described {
            let path = topics_dir.join(format!("{name}.properties"));
            let corrupt = |msg: &str| Error::Corrupt {
                path: path.clone(),
                msg: msg.to_string(),
            };
            let partitions: i32 = props
                .get("partitions")
                .and_then(|v| v.parse().ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| corrupt("missing or invalid 'partitions'"))?;
            let (id, persist) = match props.get("topic.id") {
                Some(v) => (
                    Uuid::parse_str(v).map_err(|_| corrupt("invalid 'topic.id'"))?,
                    adopted,
                ),
                None => (Uuid::new_v4(), true),
            };
            let overrides: BTreeMap<String, String> = props
                .iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix("config.")
                        .map(|k| (k.to_string(), v.clone()))
                })
                .collect();
            let config = Arc::new(
                defaults
                    .with_overrides(&overrides)
                    .map_err(|m| corrupt(&m))?,
            );
            let name: Arc<str> = name.into();
            let mut parts = Vec::new();
            let mut failed = None;
            for i in 0..partitions {
                let key = (name.to_string(), i);
                let pdir = dir.join(format!("{name}-{i}"));
                let opened = Partition::open(
                    Arc::clone(&name),
                    i,
                    &pdir,
                    Arc::clone(&config),
                    recovery.get(&key).copied(),
                    starts.get(&key).copied(),
                )
                .and_then(|p| write_partition_metadata(&pdir, &id).map(|()| p));
                match opened {
                    Ok(p) => parts.push(Arc::new(p)),
                    Err(e) if e.is_out_of_descriptors() => {
                        failed = Some(e);
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            if let Some(e) = failed {
                // Serve what fits; this topic waits for a restart with a higher limit.
                drop(parts);
                error!(
                    topic = %name,
                    partitions,
                    error = %e,
                    "topic is offline: out of file descriptors while opening it; raise the open-files limit (RLIMIT_NOFILE) and restart"
                );
                offline.insert(name.to_string(), (id, partitions));
                let kept = (0..partitions)
                    .map(|i| {
                        let key = (name.to_string(), i);
                        (i, recovery.get(&key).copied(), starts.get(&key).copied())
                    })
                    .collect();
                offline_checkpoints.insert(name.to_string(), kept);
                continue;
            }
            let topic = Arc::new(Topic {
                name: Arc::clone(&name),
                id,
                partitions: parts,
                overrides,
                config,
            });
            if persist {
                Self::persist_topic(
                    dir,
                    &topic.name,
                    &topic.id,
                    topic.partitions.len(),
                    &topic.overrides,
                )?;
            }
            map.by_id.insert(id, Arc::clone(&topic));
            map.by_name.insert(name, topic);
        }
        // Every directory a tombstone names is gone now.
        for (_, _, path) in &tombstones {
            std::fs::remove_file(path).map_err(|e| Error::io(path, e))?;
        }
        if removed_any {
            sync_dir(dir)?;
        }
        if !authoritative {
            write_atomic(&topics_dir.join(METADATA_VERSION), "1\n")?;
            info!(
                "topic files in {} now define the topics; partition directories they do not cover will be removed or set aside",
                topics_dir.display()
            );
        } else if !tombstones.is_empty() {
            sync_dir(&topics_dir)?;
        }
        info!(dir = %dir.display(), topics = map.by_name.len(), "log manager loaded");
        Ok(LogManager {
            dir: dir.to_path_buf(),
            defaults: RwLock::new(defaults),
            static_defaults,
            dynamic: RwLock::new(dynamic),
            dynamic_default: RwLock::new(dynamic_default),
            topics: RwLock::new(map),
            offline: Mutex::new(offline),
            offline_checkpoints: Mutex::new(offline_checkpoints),
            admin: Mutex::new(()),
            checkpointing: Mutex::new(()),
            cluster_id,
        })
    }

    fn load_meta(dir: &Path, node_id: i32) -> Result<String, Error> {
        let path = dir.join(META_PROPERTIES);
        if path.exists() {
            let props = read_properties(&path)?;
            if let Some(id) = props.get("cluster.id") {
                if let Some(stored) = props.get("node.id") {
                    if stored != &node_id.to_string() {
                        warn!(
                            stored,
                            configured = node_id,
                            "node.id differs from meta.properties; using the configured one"
                        );
                    }
                }
                return Ok(id.clone());
            }
        }
        let id = base64_id(&Uuid::new_v4());
        write_atomic(
            &path,
            &format!("#Written by sluice\nversion=1\ncluster.id={id}\nnode.id={node_id}\n"),
        )?;
        Ok(id)
    }

    fn persist_topic(
        dir: &Path,
        name: &str,
        id: &Uuid,
        partitions: usize,
        overrides: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let mut text = format!(
            "# topic metadata, written by sluice\ntopic.id={id}\npartitions={partitions}\n"
        );
        for (k, v) in overrides {
            text.push_str(&format!("config.{k}={v}\n"));
        }
        write_atomic(
            &dir.join(TOPICS_DIR).join(format!("{name}.properties")),
            &text,
        )
    }

    /// Cluster id from `meta.properties`.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// Broker-level log defaults in force (static config plus dynamic changes).
    pub fn defaults(&self) -> Arc<LogConfig> {
        Arc::clone(&self.defaults.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Broker properties changed at run time for this broker.
    pub fn dynamic_broker_configs(&self) -> BTreeMap<String, String> {
        self.dynamic_configs(DynamicLevel::Broker)
    }

    /// Broker properties changed at run time, at `level`.
    pub fn dynamic_configs(&self, level: DynamicLevel) -> BTreeMap<String, String> {
        self.dynamic_lock(level)
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn dynamic_lock(&self, level: DynamicLevel) -> &RwLock<BTreeMap<String, String>> {
        match level {
            DynamicLevel::Broker => &self.dynamic,
            DynamicLevel::ClusterDefault => &self.dynamic_default,
        }
    }

    /// Replace this broker's run-time properties; see [`Self::set_dynamic_configs`].
    pub fn set_dynamic_broker_configs(
        &self,
        dynamic: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), CreateError> {
        self.set_dynamic_configs(DynamicLevel::Broker, dynamic, validate_only)
    }

    /// Replace the run-time broker properties at `level` (Kafka-named, e.g.
    /// `log.retention.ms`): the topic-default ones are validated and applied live to every
    /// topic without its own override; all are persisted. Which keys may change at all is
    /// the caller's check (Kafka's table of dynamic keys).
    pub fn set_dynamic_configs(
        &self,
        level: DynamicLevel,
        values: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), CreateError> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let (default, per_broker) = match level {
            DynamicLevel::Broker => (
                self.dynamic_configs(DynamicLevel::ClusterDefault),
                values.clone(),
            ),
            DynamicLevel::ClusterDefault => {
                (values.clone(), self.dynamic_configs(DynamicLevel::Broker))
            }
        };
        let translated = to_topic_keys(&default, &per_broker);
        let defaults = Arc::new(
            self.static_defaults
                .with_overrides(&translated)
                .map_err(|m| {
                    // Name the broker property, as Kafka's message does.
                    let mut m = m;
                    for (t, b) in config::BROKER_SYNONYMS {
                        m = m.replace(
                            &format!("configuration {t}:"),
                            &format!("configuration {b}:"),
                        );
                        m = m.replace(&format!("configuration {t}"), &format!("configuration {b}"));
                    }
                    CreateError::InvalidConfig(m)
                })?,
        );
        if validate_only {
            return Ok(());
        }
        let file = match level {
            DynamicLevel::Broker => DYNAMIC_CONFIG,
            DynamicLevel::ClusterDefault => DYNAMIC_DEFAULT_CONFIG,
        };
        write_dynamic(&self.dir.join(file), &values)?;
        *self.defaults.write().unwrap_or_else(|p| p.into_inner()) = Arc::clone(&defaults);
        *self
            .dynamic_lock(level)
            .write()
            .unwrap_or_else(|p| p.into_inner()) = values;
        for t in self.topics() {
            let Ok(config) = defaults.with_overrides(&t.overrides) else {
                continue;
            };
            self.apply_config(&t, t.overrides.clone(), Arc::new(config));
        }
        info!(?level, "broker configs changed at run time");
        Ok(())
    }

    /// Look a topic up by name.
    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.read_map().by_name.get(name).cloned()
    }

    /// Look a topic up by id.
    pub fn topic_by_id(&self, id: &Uuid) -> Option<Arc<Topic>> {
        self.read_map().by_id.get(id).cloned()
    }

    /// All topics, sorted by name.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        let mut v: Vec<_> = self.read_map().by_name.values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    fn read_map(&self) -> std::sync::RwLockReadGuard<'_, TopicMap> {
        self.topics.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Create a topic with `partitions` partitions and config overrides. Validates the name
    /// and every config; with `validate_only` nothing is written.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        overrides: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Arc<Topic>, CreateError> {
        validate_topic_name(name).map_err(CreateError::InvalidName)?;
        if partitions < 1 {
            return Err(CreateError::InvalidPartitions(partitions));
        }
        let config = Arc::new(
            self.defaults()
                .with_overrides(&overrides)
                .map_err(CreateError::InvalidConfig)?,
        );
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        if self.topic(name).is_some() || self.offline_topic(name).is_some() {
            return Err(CreateError::Exists(name.to_string()));
        }
        let collides = self
            .read_map()
            .by_name
            .keys()
            .find(|t| t.replace('.', "_") == name.replace('.', "_"))
            .cloned();
        if let Some(other) = collides {
            return Err(CreateError::InvalidName(format!(
                "topic '{name}' collides with existing topic: {other}"
            )));
        }
        let name: Arc<str> = name.into();
        let id = Uuid::new_v4();
        if validate_only {
            return Ok(Arc::new(Topic {
                name,
                id,
                partitions: Vec::new(),
                overrides,
                config,
            }));
        }
        // Partition directories first, the topic file last: that write is the commit. A
        // failure before it removes what was made; a crash before it leaves directories that
        // start-up removes.
        let parts = self.create_partitions(&name, &id, 0..partitions, &config)?;
        let count = parts.len();
        if let Err(e) = Self::persist_topic(&self.dir, &name, &id, count, &overrides) {
            // If the rename happened and only the fsync after it failed, the file must go
            // too: the client is told nothing was created.
            let file = self.dir.join(TOPICS_DIR).join(format!("{name}.properties"));
            if let Err(e) = std::fs::remove_file(&file) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    warn!(file = %file.display(), error = %e, "could not remove the topic file of a failed create");
                }
            }
            self.roll_back(&name, parts);
            return Err(e.into());
        }
        let topic = Arc::new(Topic {
            name: Arc::clone(&name),
            id,
            partitions: parts,
            overrides,
            config,
        });
        let mut map = self.topics.write().unwrap_or_else(|p| p.into_inner());
        map.by_id.insert(id, Arc::clone(&topic));
        map.by_name.insert(name, Arc::clone(&topic));
        drop(map);
        info!(topic = %topic.name, partitions, "created topic");
        Ok(topic)
    }

    /// Delete a topic. The commit is renaming its topic file to a tombstone
    /// (`NAME.ID.deleted`); then it disappears from lookups, its directories are renamed to
    /// `NAME-N.ID-delete` and removed in the background (reads in flight keep their open
    /// files), and the tombstone goes. A crash or a failed rename after the commit is
    /// finished at start-up; a failure before it changes nothing.
    pub fn delete_topic(&self, name: &str) -> Result<Option<Arc<Topic>>, Error> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let topic = self.topic(name);
        let (id, count) = match (&topic, self.offline_topic(name)) {
            (Some(t), _) => (t.id, i32::try_from(t.partitions.len()).unwrap_or(i32::MAX)),
            (None, Some(off)) => off,
            (None, None) => return Ok(None),
        };
        let topics_dir = self.dir.join(TOPICS_DIR);
        let meta = topics_dir.join(format!("{name}.properties"));
        let tombstone = topics_dir.join(format!("{name}.{}{TOMBSTONE_SUFFIX}", id.simple()));
        let handle = DirHandle::open(&topics_dir)?;
        std::fs::rename(&meta, &tombstone).map_err(|e| Error::io(&meta, e))?;
        handle.sync()?;
        {
            let mut map = self.topics.write().unwrap_or_else(|p| p.into_inner());
            map.by_name.remove(name);
            map.by_id.remove(&id);
        }
        self.offline
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        self.offline_checkpoints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        let mut renamed = Vec::new();
        let mut all = true;
        for i in 0..count {
            match mark_deleted(&self.dir, name, i, &id) {
                Ok(to) => renamed.push(to),
                Err(e) => {
                    all = false;
                    warn!(topic = name, partition = i, error = %e, "could not rename a deleted topic's directory; the next start finishes it");
                }
            }
        }
        if all {
            if let Err(e) = std::fs::remove_file(&tombstone) {
                warn!(file = %tombstone.display(), error = %e, "could not remove a tombstone; the next start does");
            }
        }
        std::thread::spawn(move || {
            for d in renamed {
                if let Err(e) = std::fs::remove_dir_all(&d) {
                    warn!(dir = %d.display(), error = %e, "could not remove deleted topic directory");
                }
            }
        });
        info!(topic = name, "deleted topic");
        Ok(Some(topic.unwrap_or_else(|| {
            Arc::new(Topic {
                name: name.into(),
                id,
                partitions: Vec::new(),
                overrides: BTreeMap::new(),
                config: self.defaults(),
            })
        })))
    }

    /// A committed topic that could not be opened at start-up: (id, partitions).
    pub fn offline_topic(&self, name: &str) -> Option<(Uuid, i32)> {
        self.offline
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .copied()
    }

    /// Create (or take over, empty) the directories of partitions `range` of a topic that
    /// no committed metadata covers yet, then fsync the data directory so they survive a
    /// power loss once committed. On failure, everything made here is removed again.
    fn create_partitions(
        &self,
        name: &Arc<str>,
        id: &Uuid,
        range: std::ops::Range<i32>,
        config: &Arc<LogConfig>,
    ) -> Result<Vec<Arc<Partition>>, Error> {
        let mut parts = Vec::new();
        for i in range {
            let pdir = self.dir.join(format!("{name}-{i}"));
            let made = (|| {
                if pdir.exists() {
                    // Left by a change that failed and could not clean up after itself.
                    set_aside(&pdir, "a new partition needs its place")?;
                }
                let p = Partition::open(
                    Arc::clone(name),
                    i,
                    &pdir,
                    Arc::clone(config),
                    Some(0),
                    None,
                )?;
                write_partition_metadata(&pdir, id)?;
                Ok(p)
            })();
            match made {
                Ok(p) => parts.push(Arc::new(p)),
                Err(e) => {
                    // The one that failed may have made its directory too.
                    if pdir.exists() {
                        if let Err(e) = std::fs::remove_dir_all(&pdir) {
                            warn!(dir = %pdir.display(), error = %e, "could not remove a partition directory; the next start does");
                        }
                    }
                    self.roll_back(name, parts);
                    return Err(e);
                }
            }
        }
        if let Err(e) = sync_dir(&self.dir) {
            self.roll_back(name, parts);
            return Err(e);
        }
        Ok(parts)
    }

    /// Undo [`LogManager::create_partitions`]: close the partitions and remove their
    /// directories. What cannot be removed now is removed at the next start, since no
    /// committed metadata covers it.
    fn roll_back(&self, name: &str, parts: Vec<Arc<Partition>>) {
        let n = parts.len();
        for p in parts {
            let dir = p.dir().to_path_buf();
            // Close its files before removing them.
            drop(p);
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                warn!(dir = %dir.display(), error = %e, "could not remove a partition directory; the next start does");
            }
        }
        info!(
            topic = name,
            partitions = n,
            "rolled back a topic change that failed: removed the partition directories it had made"
        );
    }

    /// One compaction pass over every compacted partition that is due. Blocking.
    pub fn compact_all(&self) {
        let now = partition::now_ms();
        for t in self.topics() {
            if !t.config.compacted() {
                continue;
            }
            for p in &t.partitions {
                if let Err(e) = cleaner::clean_partition(p, now) {
                    warn!(partition = ?p, error = %e, "compaction failed");
                }
            }
        }
    }

    /// Enforce retention on every partition. Blocking.
    pub fn enforce_retention(&self) -> usize {
        let now = partition::now_ms();
        self.topics()
            .iter()
            .flat_map(|t| t.partitions.iter())
            .map(|p| p.enforce_retention(now))
            .sum()
    }

    /// Put a new config in force on every partition of `topic` and swap in the topic
    /// carrying it.
    fn apply_config(
        &self,
        topic: &Topic,
        overrides: BTreeMap<String, String>,
        config: Arc<LogConfig>,
    ) -> Arc<Topic> {
        for p in &topic.partitions {
            p.set_config(Arc::clone(&config));
        }
        let changed = Arc::new(topic.derived(topic.partitions.clone(), overrides, config));
        self.replace_topic(Arc::clone(&changed));
        changed
    }

    fn replace_topic(&self, topic: Arc<Topic>) {
        let mut map = self.topics.write().unwrap_or_else(|p| p.into_inner());
        map.by_id.insert(topic.id, Arc::clone(&topic));
        map.by_name.insert(Arc::clone(&topic.name), topic);
    }

    /// CreatePartitions: grow a topic to `count` partitions (never shrink). With
    /// `validate_only` nothing changes.
    pub fn add_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<Arc<Topic>, CreateError> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let topic = self
            .topic(name)
            .ok_or_else(|| CreateError::UnknownTopic(name.to_string()))?;
        let have = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
        if count <= have {
            return Err(CreateError::InvalidPartitions(count));
        }
        if validate_only {
            return Ok(topic);
        }
        // New directories first, then the topic file with the new count: the commit.
        let added = self.create_partitions(&topic.name, &topic.id, have..count, &topic.config)?;
        let mut parts = topic.partitions.clone();
        parts.extend(added.iter().cloned());
        if let Err(e) =
            Self::persist_topic(&self.dir, name, &topic.id, parts.len(), &topic.overrides)
        {
            // If the rename happened and only the fsync after it failed, put the old count
            // back: the client is told nothing changed.
            let old = topic.partitions.len();
            if let Err(e) = Self::persist_topic(&self.dir, name, &topic.id, old, &topic.overrides) {
                error!(topic = name, error = %e, "could not restore the topic file of a failed CreatePartitions");
            }
            drop(parts);
            self.roll_back(name, added);
            return Err(e.into());
        }
        let grown =
            Arc::new(topic.derived(parts, topic.overrides.clone(), Arc::clone(&topic.config)));
        self.replace_topic(Arc::clone(&grown));
        info!(topic = name, from = have, to = count, "added partitions");
        Ok(grown)
    }

    /// Replace a topic's config overrides (AlterConfigs semantics: the full set). Validated
    /// first; persisted; applied to every partition at once. With `validate_only` nothing
    /// changes.
    pub fn set_topic_overrides(
        &self,
        name: &str,
        overrides: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Arc<Topic>, CreateError> {
        let config = Arc::new(
            self.defaults()
                .with_overrides(&overrides)
                .map_err(CreateError::InvalidConfig)?,
        );
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let topic = self
            .topic(name)
            .ok_or_else(|| CreateError::UnknownTopic(name.to_string()))?;
        if validate_only {
            return Ok(topic);
        }
        Self::persist_topic(
            &self.dir,
            name,
            &topic.id,
            topic.partitions.len(),
            &overrides,
        )?;
        let changed = self.apply_config(&topic, overrides, config);
        info!(topic = name, "topic config changed");
        Ok(changed)
    }

    /// Data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Flush every partition and write the checkpoint files. Called periodically and at
    /// shutdown.
    pub fn checkpoint(&self) -> Result<(), Error> {
        let _one = self.checkpointing.lock().unwrap_or_else(|p| p.into_inner());
        let mut rp = String::new();
        let mut ls = String::new();
        let (mut n_rp, mut n_ls) = (0usize, 0usize);
        for t in self.topics() {
            for p in &t.partitions {
                let (recovery, start) = p.flush_all()?;
                rp.push_str(&format!("{} {} {recovery}\n", t.name, p.index()));
                ls.push_str(&format!("{} {} {start}\n", t.name, p.index()));
                n_rp += 1;
                n_ls += 1;
            }
        }
        for (t, parts) in self
            .offline_checkpoints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            for (i, recovery, start) in parts {
                if let Some(r) = recovery {
                    rp.push_str(&format!("{t} {i} {r}\n"));
                    n_rp += 1;
                }
                if let Some(s) = start {
                    ls.push_str(&format!("{t} {i} {s}\n"));
                    n_ls += 1;
                }
            }
        }
        write_atomic(
            &self.dir.join(RECOVERY_CHECKPOINT),
            &format!("0\n{n_rp}\n{rp}"),
        )?;
        write_atomic(
            &self.dir.join(LOG_START_CHECKPOINT),
            &format!("0\n{n_ls}\n{ls}"),
        )
    }
}

/// Kafka's `partition.metadata`. It is derived from the topic file and checked (and
/// rewritten if needed) at every start, so it is replaced atomically but not fsynced: two
/// fsyncs per partition made creating thousands of partitions slow for nothing.
fn write_partition_metadata(dir: &Path, id: &Uuid) -> Result<(), Error> {
    let path = dir.join("partition.metadata");
    let want = format!("version: 0\ntopic_id: {}\n", base64_id(id));
    if std::fs::read_to_string(&path).ok().as_deref() == Some(want.as_str()) {
        return Ok(());
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, &want).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::log::batch::tests::make_batch;
    use std::cell::RefCell;

    thread_local! {
        /// Directories `sync_dir` fsynced on this thread, in order.
        pub(crate) static SYNCED_DIRS: RefCell<Vec<PathBuf>> = const { RefCell::new(Vec::new()) };
    }

    fn synced() -> Vec<PathBuf> {
        SYNCED_DIRS.with(|d| d.borrow().clone())
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_topic_change_is_durable_when_it_returns() {
        let dir = tempfile::tempdir().unwrap();
        let lm = LogManager::open(dir.path(), LogConfig::default(), 1).unwrap();
        SYNCED_DIRS.with(|d| d.borrow_mut().clear());
        let topics = dir.path().join(TOPICS_DIR);
        // The partition directories' entries first, then the topic file: the commit.
        let data_before_commit = || {
            let s = synced();
            let data = s
                .iter()
                .position(|d| d == dir.path())
                .expect("data dir synced");
            let commit = s
                .iter()
                .rposition(|d| *d == topics)
                .expect("topics dir synced");
            assert!(data < commit, "{s:?}");
            SYNCED_DIRS.with(|d| d.borrow_mut().clear());
        };
        lm.create_topic("t", 2, BTreeMap::new(), false).unwrap();
        data_before_commit();
        lm.add_partitions("t", 3, false).unwrap();
        data_before_commit();
        lm.delete_topic("t").unwrap();
        assert!(synced().contains(&topics), "the tombstone is the commit");
    }

    #[test]
    fn a_deletion_committed_before_a_crash_is_finished_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let lm = LogManager::open(dir.path(), LogConfig::default(), 1).unwrap();
        let t = lm.create_topic("gone", 3, BTreeMap::new(), false).unwrap();
        t.partitions[0].append(&make_batch(2, 5, -1, -1)).unwrap();
        let id = t.id;
        drop(t);
        drop(lm);
        // The crash came right after the commit: tombstone written, directories still
        // under their names.
        let topics = dir.path().join(TOPICS_DIR);
        std::fs::rename(
            topics.join("gone.properties"),
            topics.join(format!("gone.{}.deleted", id.simple())),
        )
        .unwrap();
        let lm = LogManager::open(dir.path(), LogConfig::default(), 1).unwrap();
        assert!(lm.topic("gone").is_none());
        assert!(
            !names(dir.path()).iter().any(|n| n.starts_with("gone")),
            "{:?}",
            names(dir.path())
        );
        assert!(!names(&topics).iter().any(|n| n.starts_with("gone")));
        drop(lm);
        let lm = LogManager::open(dir.path(), LogConfig::default(), 1).unwrap();
        assert!(lm.topic("gone").is_none(), "the deleted topic came back");
    }

    #[test]
    fn directories_no_topic_file_covers_are_removed_or_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let lm = LogManager::open(dir.path(), LogConfig::default(), 1).unwrap();
        lm.create_topic("kept", 2, BTreeMap::new(), false).unwrap();
        drop(lm);
        // Left by a CreatePartitions and a CreateTopics cut short before their commit, and
        // one directory with records that no topic file names.
        for d in ["kept-2", "kept-3", "never-0"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
            std::fs::write(dir.path().join(d).join("00000000000000000000.log"), b"").unwrap();
        }
        std::fs::create_dir_all(dir.path().join("orphan-0")).unwrap();
        std::fs::write(
            dir.path().join("orphan-0/00000000000000000000.log"),
            make_batch(1, 1, -1, -1),
        )
        .unwrap();
        let lm = LogManager::open(dir.path(), LogConfig::default(), 1).unwrap();
        assert_eq!(lm.topic("kept").unwrap().partitions.len(), 2);
        assert!(lm.topic("never").is_none());
        assert!(lm.topic("orphan").is_none());
        let left = names(dir.path());
        for gone in ["kept-2", "kept-3", "never-0", "orphan-0"] {
            assert!(!left.contains(&gone.to_string()), "{gone} left: {left:?}");
        }
        let stray: Vec<&String> = left
            .iter()
            .filter(|n| n.starts_with("orphan-0.") && n.ends_with("-stray"))
            .collect();
        assert_eq!(stray.len(), 1, "records are kept aside: {left:?}");
        drop(lm);
        let lm = LogManager::open(dir.path(), LogConfig::default(), 1).unwrap();
        assert!(lm.topic("orphan").is_none());
    }

    #[test]
    fn first_start_on_an_old_data_dir_adopts_its_partition_directories() {
        let dir = tempfile::tempdir().unwrap();
        let lm = LogManager::open(dir.path(), LogConfig::default(), 1).unwrap();
        let t = lm.create_topic("old", 2, BTreeMap::new(), false).unwrap();
        t.partitions[1].append(&make_batch(3, 5, -1, -1)).unwrap();
        drop(t);
        lm.checkpoint().unwrap();
        drop(lm);
        // What an older version leaves: no METADATA_VERSION, and a partition directory
        // whose topic file is missing.
        let topics = dir.path().join(TOPICS_DIR);
        std::fs::remove_file(topics.join(METADATA_VERSION)).unwrap();
        std::fs::remove_file(topics.join("old.properties")).unwrap();
        let lm = LogManager::open(dir.path(), LogConfig::default(), 1).unwrap();
        let t = lm.topic("old").expect("adopted");
        assert_eq!(t.partitions.len(), 2);
        assert_eq!(t.partitions[1].high_watermark(), 3);
        assert!(topics.join(METADATA_VERSION).exists());
        assert!(topics.join("old.properties").exists());
    }

    #[test]
    fn new_files_and_directories_reach_the_disk_before_records_are_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let lm = LogManager::open(dir.path(), LogConfig::default(), 1).unwrap();
        let ov: BTreeMap<String, String> = [
            ("flush.messages".to_string(), "1".to_string()),
            ("segment.bytes".to_string(), "200".to_string()),
        ]
        .into();
        SYNCED_DIRS.with(|d| d.borrow_mut().clear());
        let t = lm.create_topic("durable", 1, ov, false).unwrap();
        // The new partition directory's entry in the data directory.
        assert!(
            synced().contains(&dir.path().to_path_buf()),
            "{:?}",
            synced()
        );
        let pdir = dir.path().join("durable-0");
        SYNCED_DIRS.with(|d| d.borrow_mut().clear());
        t.partitions[0].append(&make_batch(2, 5, -1, -1)).unwrap();
        assert_eq!(synced(), vec![pdir.clone()], "the first segment's entry");
        SYNCED_DIRS.with(|d| d.borrow_mut().clear());
        t.partitions[0].append(&make_batch(1, 5, -1, -1)).unwrap();
        assert!(synced().is_empty(), "nothing new: {:?}", synced());
        // Rolls make a new segment file; its entry is synced with the records.
        while names(&pdir).iter().filter(|n| n.ends_with(".log")).count() < 3 {
            t.partitions[0].append(&make_batch(2, 5, -1, -1)).unwrap();
        }
        assert_eq!(synced(), vec![pdir.clone(), pdir]);
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("a b").is_err());
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
    }

    #[test]
    fn internal_topics_are_matched_by_whole_name() {
        assert!(is_internal_topic("__consumer_offsets"));
        assert!(is_internal_topic("__transaction_state"));
        assert!(is_internal_topic("__share_group_state"));
        assert!(!is_internal_topic("__consumer_offsets2"));
        assert!(!is_internal_topic("__transaction_state_x"));
        assert!(!is_internal_topic("orders"));
    }

    #[test]
    fn base64_matches_kafka_encoding() {
        let id = Uuid::from_bytes([0; 16]);
        assert_eq!(base64_id(&id), "AAAAAAAAAAAAAAAAAAAAAA");
        let id = Uuid::from_bytes([0xff; 16]);
        assert_eq!(base64_id(&id), "_____________________w");
    }

    #[test]
    fn create_persist_reopen_delete() {
        let dir = tempfile::tempdir().unwrap();
        let lm = LogManager::open(dir.path(), LogConfig::default(), 1).unwrap();
        let mut ov = BTreeMap::new();
        ov.insert("segment.bytes".to_string(), "100000".to_string());
        let t = lm.create_topic("orders", 3, ov, false).unwrap();
        t.partitions[1].append(&make_batch(2, 5, -1, -1)).unwrap();
        assert!(matches!(
            lm.create_topic("orders", 1, BTreeMap::new(), false),
            Err(CreateError::Exists(_))
        ));
        assert!(matches!(
            lm.create_topic(
                "x",
                1,
                [("bogus".to_string(), "1".to_string())].into(),
                false
            ),
            Err(CreateError::InvalidConfig(_))
        ));
        lm.checkpoint().unwrap();
        let id = t.id;
        let cluster = lm.cluster_id().to_string();
        drop(t);
        drop(lm);
        let lm = LogManager::open(dir.path(), LogConfig::default(), 1).unwrap();
        assert_eq!(lm.cluster_id(), cluster);
        let t = lm.topic("orders").unwrap();
        assert_eq!(t.id, id);
        assert_eq!(t.partitions.len(), 3);
        assert_eq!(t.config.segment_bytes, 100000);
        assert_eq!(t.partitions[1].high_watermark(), 2);
        assert!(lm.topic_by_id(&id).is_some());
        lm.delete_topic("orders").unwrap();
        assert!(lm.topic("orders").is_none());
        drop(t);
        drop(lm);
        let lm = LogManager::open(dir.path(), LogConfig::default(), 1).unwrap();
        assert!(lm.topic("orders").is_none());
        assert!(!dir.path().join("orders-0").exists());
    }
}
