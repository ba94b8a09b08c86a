//! The job file's TOML, as written ([`JobFile`] and its sections, all
//! `deny_unknown_fields`), and its validation into a [`JobSpec`] whose parts are ready to
//! run: durations parsed, regexes compiled, templates split, each choice checked. Every
//! error names the file and the key (`jobs/logs.toml: [window] slide: ...`); TOML syntax
//! errors and unknown keys come from the `toml` crate, which names the key and the line.
//!
//! Not here: what the parts do with records (`parse`, `record`), loading tables (`table`),
//! running the job (`run`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;
use serde::Deserialize;

use crate::agg::Aggregate;
use crate::config::{AutoOffsetReset, StreamConfig};
use crate::error::{Error, Result};
use crate::job::parse::{Filter, FilterOp, Parser, Template};
use crate::strategy::ConsumerStrategy;
use crate::window::Windows;

/// The default batch interval, as the `wordcount` subcommand's.
pub const DEFAULT_BATCH_INTERVAL: &str = "2s";
/// The default `[parse] separator`: Spark's word count splits on one space.
pub const DEFAULT_SEPARATOR: &str = " ";
/// The default name of the `split` parser's token field.
pub const DEFAULT_TOKEN_FIELD: &str = "word";
/// How often a file table's size and modification time are checked, by default.
pub const DEFAULT_FILE_POLL: Duration = Duration::from_secs(1);
/// How often a Redis or SQL table is read again, by default.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(30);
/// The default key prefix of the Redis sink.
pub const DEFAULT_REDIS_PREFIX: &str = "job";
/// The default table prefix of the PostgreSQL sink (`job_results`, `job_offsets`, ...).
pub const DEFAULT_PG_PREFIX: &str = "job";
/// How many updated cells the stdout sink prints per batch, by default.
pub const DEFAULT_NUM_ROWS: usize = 20;

/// The whole file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobFile {
    /// `[source]`.
    pub source: SourceSection,
    /// `[parse]`.
    pub parse: ParseSection,
    /// `[[table]]`, in join order.
    #[serde(default)]
    pub table: Vec<TableSection>,
    /// `[[filter]]`, all of which must hold.
    #[serde(default)]
    pub filter: Vec<FilterSection>,
    /// `[window]`.
    pub window: Option<WindowSection>,
    /// `[aggregate]`.
    pub aggregate: AggregateSection,
    /// `[sink]`.
    pub sink: SinkSection,
}

/// `[source]`: the Kafka stream.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSection {
    /// Bootstrap servers, comma-separated `host:port`.
    pub bootstrap: String,
    /// Topics to read (`ConsumerStrategies.Subscribe`).
    #[serde(default)]
    pub topics: Vec<String>,
    /// A regex over whole topic names (`ConsumerStrategies.SubscribePattern`).
    pub pattern: Option<String>,
    /// `group.id`.
    pub group: Option<String>,
    /// `auto.offset.reset`: `earliest`, `latest` (default) or `none`.
    pub starting: Option<String>,
    /// The batch interval: `500ms`, `2s`, `1m`.
    pub batch_interval: Option<String>,
    /// `spark.streaming.kafka.maxRatePerPartition`.
    pub max_rate_per_partition: Option<i64>,
    /// `spark.streaming.kafka.minRatePerPartition`.
    pub min_rate_per_partition: Option<i64>,
    /// `spark.streaming.backpressure.enabled`.
    pub backpressure: Option<bool>,
    /// `spark.streaming.backpressure.initialRate`.
    pub initial_rate: Option<i64>,
    /// Any other Spark or Kafka key, Kafka's security keys included.
    #[serde(default)]
    pub conf: BTreeMap<String, String>,
}

/// `[parse]`: how a record's value becomes fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParseSection {
    /// `split`, `json` or `regex`.
    pub format: String,
    /// `split`: the separator (a literal string).
    pub separator: Option<String>,
    /// `split`: the token's field name.
    pub field: Option<String>,
    /// `regex`: the pattern, with named groups.
    pub pattern: Option<String>,
}

/// `[[table]]`: a static table joined with the stream.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSection {
    /// The table's name; its columns are the fields `NAME.COLUMN`.
    pub name: String,
    /// A CSV (with a header) or JSON-lines file.
    pub file: Option<PathBuf>,
    /// The file's format: `csv` or `jsonl` (default: from the extension).
    pub format: Option<String>,
    /// A Redis URL; the table is the hash `hash`.
    pub redis: Option<String>,
    /// The Redis hash.
    pub hash: Option<String>,
    /// The column a Redis hash's (non-JSON) values are.
    pub value_column: Option<String>,
    /// A PostgreSQL connection string; the table is the result of `query`.
    pub postgres: Option<String>,
    /// The SQL query.
    pub query: Option<String>,
    /// The table's key column (a Redis hash's key column is its field).
    pub key: Option<String>,
    /// The record's field matched against the key column.
    pub on: String,
    /// `inner` (default) or `left`.
    pub join: Option<String>,
    /// How often the source is checked (file) or read again (Redis, SQL).
    pub reload_interval: Option<String>,
}

/// `[[filter]]`: one condition on a field; exactly one operator.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterSection {
    /// The field (a record field or `TABLE.COLUMN`).
    pub field: String,
    /// The field equals this text.
    pub equals: Option<String>,
    /// The field is present and differs from this text.
    pub not_equals: Option<String>,
    /// The regex matches somewhere in the field.
    pub matches: Option<String>,
    /// The field is a number above this one.
    pub gt: Option<Number>,
    /// The field is a number at or above this one.
    pub ge: Option<Number>,
    /// The field is a number below this one.
    pub lt: Option<Number>,
    /// The field is a number at or below this one.
    pub le: Option<Number>,
}

/// A TOML integer or float.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
pub enum Number {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
}

impl Number {
    /// As an f64 (integers beyond 2^53 round, as they would in Spark's double compare).
    pub fn get(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }
}

/// `[window]`: event-time windows and the watermark.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSection {
    /// The window length.
    pub size: String,
    /// How far apart windows start (default: `size`, tumbling windows).
    pub slide: Option<String>,
    /// How late a record may be (Spark's `withWatermark` delay); default `0s`.
    pub watermark: Option<String>,
    /// The field holding the event time; default: the Kafka record's timestamp.
    pub time_field: Option<String>,
    /// `drop` (default) or `kafka:TOPIC`: what happens to records behind the watermark.
    pub late: Option<String>,
}

/// `[aggregate]`: the grouping key and the function.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateSection {
    /// A field name, or a template with `{field}` parts.
    pub key: String,
    /// `count` (default), `sum`, `min`, `max`, `distinct_count`.
    pub function: Option<String>,
    /// The field aggregated (all functions but `count`).
    pub field: Option<String>,
    /// What a missing key field renders as; unset: such records are skipped.
    pub missing: Option<String>,
}

/// `[sink]`: where results go.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkSection {
    /// `redis`, `postgres`, `kafka` or `stdout`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `redis`/`postgres`: the URL or connection string.
    pub url: Option<String>,
    /// `redis`: the key prefix; `postgres`: the table prefix.
    pub prefix: Option<String>,
    /// `postgres`: connections in the pool.
    pub pool_size: Option<usize>,
    /// `kafka`: the output topic.
    pub topic: Option<String>,
    /// `kafka`: the `transactional.id`.
    pub transactional_id: Option<String>,
    /// `stdout`: how many changed cells to print per batch (Spark's console `numRows`).
    pub num_rows: Option<usize>,
}

/// A validated job, ready to run.
#[derive(Debug)]
pub struct JobSpec {
    /// Where the job was read from (for messages).
    pub path: PathBuf,
    /// Bootstrap servers.
    pub bootstrap: String,
    /// Topics or pattern.
    pub strategy: ConsumerStrategy,
    /// The stream's settings, `[source]` and its stream keys applied.
    pub stream: StreamConfig,
    /// `[source.conf]`'s Kafka client keys.
    pub client_params: Vec<(String, String)>,
    /// The line parser.
    pub parser: Parser,
    /// The tables, in join order.
    pub tables: Vec<TableSpec>,
    /// The filters.
    pub filters: Vec<Filter>,
    /// The window, if any.
    pub window: Option<WindowSpec>,
    /// The grouping key.
    pub key: Template,
    /// What a missing key field renders as (`None`: skip the record).
    pub missing: Option<String>,
    /// The aggregate function.
    pub aggregate: Aggregate,
    /// The aggregated field (`None` for `count`).
    pub value_field: Option<String>,
    /// The sink.
    pub sink: SinkSpec,
}

/// Where a table comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableSource {
    /// A CSV file with a header line.
    Csv(PathBuf),
    /// A JSON-lines file, one object a line.
    JsonLines(PathBuf),
    /// A Redis hash: URL, hash key, and the column its plain values are.
    RedisHash {
        /// `redis://HOST:PORT/DB`.
        url: String,
        /// The hash's key.
        hash: String,
        /// The column a non-JSON value is.
        value_column: String,
    },
    /// A SQL query's result on PostgreSQL.
    Postgres {
        /// The connection string.
        url: String,
        /// The query.
        query: String,
    },
}

/// Inner or left join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    /// Records without a matching row are dropped.
    Inner,
    /// Records without a matching row are kept; the table's fields are missing.
    Left,
}

/// A validated `[[table]]`.
#[derive(Debug, Clone)]
pub struct TableSpec {
    /// The name, prefix of its fields.
    pub name: String,
    /// Where it is loaded from.
    pub source: TableSource,
    /// The key column (`None` for a Redis hash, keyed by its fields).
    pub key: Option<String>,
    /// The record's join field.
    pub on: String,
    /// Inner or left.
    pub join: JoinKind,
    /// How often it is checked or reloaded.
    pub reload_interval: Duration,
}

/// What happens to records behind the watermark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Late {
    /// Counted and dropped (Spark's behaviour).
    Drop,
    /// Written to this Kafka topic as they were read (a side output).
    Kafka(String),
}

/// A validated `[window]`.
#[derive(Debug)]
pub struct WindowSpec {
    /// The windows.
    pub windows: Windows,
    /// The watermark delay.
    pub watermark: Duration,
    /// The event-time field; `None`: the record timestamp.
    pub time_field: Option<String>,
    /// Late records' fate.
    pub late: Late,
}

/// A validated `[sink]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkSpec {
    /// Redis: URL and key prefix.
    Redis {
        /// `redis://HOST:PORT/DB`.
        url: String,
        /// The key prefix.
        prefix: String,
    },
    /// PostgreSQL: connection string, table prefix and pool size.
    Postgres {
        /// The connection string.
        url: String,
        /// The tables' prefix: `<prefix>_results`, `_distinct`, `_offsets`, `_watermark`.
        prefix: String,
        /// Connections in the pool.
        pool_size: usize,
    },
    /// A Kafka topic, transactionally with the offsets.
    Kafka {
        /// The output topic.
        topic: String,
        /// The `transactional.id`.
        transactional_id: String,
    },
    /// Printed per batch.
    Stdout {
        /// Cells printed per batch.
        num_rows: usize,
    },
}

/// Reads and validates a job file.
pub fn load(path: &Path) -> Result<JobSpec> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("read job file {}: {e}", path.display())))?;
    parse_str(&text, path)
}

/// Validates a job file's text; `path` names it in messages and anchors relative table
/// paths.
pub fn parse_str(text: &str, path: &Path) -> Result<JobSpec> {
    let file: JobFile = toml::from_str(text)
        .map_err(|e| Error::Config(format!("{}: {}", path.display(), e.to_string().trim())))?;
    validate(file, path)
}

/// An error naming the file, the section and the key.
fn bad(path: &Path, key: &str, what: impl std::fmt::Display) -> Error {
    let what = what.to_string();
    // A nested setting error already says "invalid setting"; say it once.
    let what = what.strip_prefix("invalid setting: ").unwrap_or(&what);
    Error::Config(format!("{}: {key}: {what}", path.display()))
}

fn duration(path: &Path, key: &str, s: &str, allow_zero: bool) -> Result<Duration> {
    // Spark's interval strings (`500ms`, `10s`, `1m`), as the window module reads them.
    let d = crate::window::parse_duration(s).map_err(|e| bad(path, key, e))?;
    if d.is_zero() && !allow_zero {
        return Err(bad(path, key, format!("{s:?} must be above zero")));
    }
    Ok(d)
}

fn validate(file: JobFile, path: &Path) -> Result<JobSpec> {
    let base = path.parent().unwrap_or(Path::new("."));
    let s = file.source;
    if s.bootstrap.trim().is_empty() {
        return Err(bad(
            path,
            "[source] bootstrap",
            "must name at least one host:port",
        ));
    }
    let interval = duration(
        path,
        "[source] batch_interval",
        s.batch_interval
            .as_deref()
            .unwrap_or(DEFAULT_BATCH_INTERVAL),
        false,
    )?;
    let mut stream = StreamConfig::new(interval);
    stream.group_id = s.group.clone().filter(|g| !g.is_empty());
    if let Some(starting) = &s.starting {
        stream.auto_offset_reset = starting.parse::<AutoOffsetReset>().map_err(|_| {
            bad(
                path,
                "[source] starting",
                format!("must be earliest, latest or none, not {starting:?}"),
            )
        })?;
    }
    if let Some(v) = s.max_rate_per_partition {
        stream.max_rate_per_partition = v;
    }
    if let Some(v) = s.min_rate_per_partition {
        stream.min_rate_per_partition = v;
    }
    if let Some(v) = s.backpressure {
        stream.backpressure = v;
    }
    if let Some(v) = s.initial_rate {
        stream.initial_rate = v;
    }
    let mut client_params = Vec::new();
    for (k, v) in &s.conf {
        if crate::kafka_params::is_client_key(k) {
            client_params.push((k.clone(), v.clone()));
            continue;
        }
        stream
            .set(k.trim(), v)
            .map_err(|e| bad(path, &format!("[source.conf] {k:?}"), e))?;
    }
    stream.validate().map_err(|e| bad(path, "[source]", e))?;
    let strategy = match (&s.pattern, s.topics.is_empty()) {
        (Some(_), false) => {
            return Err(bad(
                path,
                "[source] pattern",
                "give topics or pattern, not both",
            ))
        }
        (Some(p), true) => {
            ConsumerStrategy::subscribe_pattern(p).map_err(|e| bad(path, "[source] pattern", e))?
        }
        (None, false) => {
            if let Some(t) = s.topics.iter().find(|t| t.trim().is_empty()) {
                return Err(bad(
                    path,
                    "[source] topics",
                    format!("{t:?} is not a topic name"),
                ));
            }
            ConsumerStrategy::subscribe(s.topics.clone())
        }
        (None, true) => return Err(bad(path, "[source] topics", "give topics or pattern")),
    };

    let parser = validate_parse(&file.parse, path)?;
    let mut tables = Vec::with_capacity(file.table.len());
    for (i, t) in file.table.into_iter().enumerate() {
        let spec = validate_table(t, i, path, base)?;
        if tables.iter().any(|o: &TableSpec| o.name == spec.name) {
            return Err(bad(
                path,
                &format!("[[table]] #{} name", i + 1),
                format!("{:?} is used twice", spec.name),
            ));
        }
        tables.push(spec);
    }
    let mut filters = Vec::with_capacity(file.filter.len());
    for (i, f) in file.filter.into_iter().enumerate() {
        filters.push(validate_filter(f, i, path)?);
    }
    let window = file.window.map(|w| validate_window(w, path)).transpose()?;
    let a = file.aggregate;
    let key = Template::parse(&a.key).map_err(|e| bad(path, "[aggregate] key", e))?;
    let function = a.function.as_deref().unwrap_or("count");
    let aggregate = match function {
        "count" => Aggregate::Count,
        "sum" => Aggregate::Sum,
        "min" => Aggregate::Min,
        "max" => Aggregate::Max,
        "distinct_count" => Aggregate::DistinctCount,
        other => {
            return Err(bad(
                path,
                "[aggregate] function",
                format!("must be count, sum, min, max or distinct_count, not {other:?}"),
            ))
        }
    };
    let value_field = match (&aggregate, a.field) {
        (Aggregate::Count, None) => None,
        (Aggregate::Count, Some(_)) => {
            return Err(bad(path, "[aggregate] field", "count takes no field"))
        }
        (_, Some(f)) if !f.trim().is_empty() => Some(f),
        (_, _) => {
            return Err(bad(
                path,
                "[aggregate] field",
                format!("{function} needs the field it aggregates"),
            ))
        }
    };
    let sink = validate_sink(file.sink, path)?;
    if matches!(sink, SinkSpec::Kafka { .. }) && stream.group_id.is_none() {
        // The offsets go into each batch's transaction, committed to this group.
        return Err(bad(
            path,
            "[source] group",
            "a kafka sink commits offsets to a group: give one",
        ));
    }
    Ok(JobSpec {
        path: path.to_owned(),
        bootstrap: s.bootstrap,
        strategy,
        stream,
        client_params,
        parser,
        tables,
        filters,
        window,
        key,
        missing: a.missing,
        aggregate,
        value_field,
        sink,
    })
}

fn validate_parse(p: &ParseSection, path: &Path) -> Result<Parser> {
    let only = |key: &str, present: bool, format: &str| {
        if present {
            Err(bad(
                path,
                &format!("[parse] {key}"),
                format!("not used by format {format:?}"),
            ))
        } else {
            Ok(())
        }
    };
    match p.format.as_str() {
        "split" => {
            only("pattern", p.pattern.is_some(), "split")?;
            let separator = p
                .separator
                .clone()
                .unwrap_or_else(|| DEFAULT_SEPARATOR.to_owned());
            if separator.is_empty() {
                return Err(bad(path, "[parse] separator", "must not be empty"));
            }
            Ok(Parser::Split {
                separator,
                field: p
                    .field
                    .clone()
                    .unwrap_or_else(|| DEFAULT_TOKEN_FIELD.to_owned()),
            })
        }
        "json" => {
            only("separator", p.separator.is_some(), "json")?;
            only("field", p.field.is_some(), "json")?;
            only("pattern", p.pattern.is_some(), "json")?;
            Ok(Parser::Json)
        }
        "regex" => {
            only("separator", p.separator.is_some(), "regex")?;
            only("field", p.field.is_some(), "regex")?;
            let Some(pattern) = &p.pattern else {
                return Err(bad(
                    path,
                    "[parse] pattern",
                    "format regex needs a pattern with named groups",
                ));
            };
            let re = Regex::new(pattern).map_err(|e| bad(path, "[parse] pattern", e))?;
            if re.capture_names().flatten().next().is_none() {
                return Err(bad(
                    path,
                    "[parse] pattern",
                    "has no named group, like (?P<host>\\S+)",
                ));
            }
            Ok(Parser::Regex(re))
        }
        other => Err(bad(
            path,
            "[parse] format",
            format!("must be split, json or regex, not {other:?}"),
        )),
    }
}

fn validate_table(t: TableSection, i: usize, path: &Path, base: &Path) -> Result<TableSpec> {
    let at = |key: &str| format!("[[table]] #{} ({}) {key}", i + 1, t.name);
    if t.name.trim().is_empty() || t.name.contains('.') || t.name.contains('{') {
        return Err(bad(
            path,
            &format!("[[table]] #{} name", i + 1),
            format!("{:?} must be non-empty, without '.' or '{{'", t.name),
        ));
    }
    let given = [t.file.is_some(), t.redis.is_some(), t.postgres.is_some()];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(bad(
            path,
            &at("file"),
            "give exactly one of file, redis, postgres",
        ));
    }
    let unused = |key: &str, present: bool| {
        if present {
            Err(bad(path, &at(key), "not used by this kind of table"))
        } else {
            Ok(())
        }
    };
    let (source, poll_default) = if let Some(file) = &t.file {
        unused("hash", t.hash.is_some())?;
        unused("value_column", t.value_column.is_some())?;
        unused("query", t.query.is_some())?;
        let file = if file.is_relative() {
            base.join(file)
        } else {
            file.clone()
        };
        let format = match t.format.as_deref() {
            Some(f) => f.to_owned(),
            None => match file.extension().and_then(|e| e.to_str()) {
                Some("csv") => "csv".to_owned(),
                Some("jsonl" | "ndjson" | "json") => "jsonl".to_owned(),
                _ => {
                    return Err(bad(
                        path,
                        &at("format"),
                        "give csv or jsonl (the extension does not say)",
                    ))
                }
            },
        };
        let source = match format.as_str() {
            "csv" => TableSource::Csv(file),
            "jsonl" => TableSource::JsonLines(file),
            other => {
                return Err(bad(
                    path,
                    &at("format"),
                    format!("must be csv or jsonl, not {other:?}"),
                ))
            }
        };
        (source, DEFAULT_FILE_POLL)
    } else if let Some(url) = &t.redis {
        unused("format", t.format.is_some())?;
        unused("query", t.query.is_some())?;
        unused("key", t.key.is_some())?;
        let Some(hash) = t.hash.clone() else {
            return Err(bad(path, &at("hash"), "a redis table needs the hash's key"));
        };
        let source = TableSource::RedisHash {
            url: url.clone(),
            hash,
            value_column: t.value_column.clone().unwrap_or_else(|| "value".to_owned()),
        };
        (source, DEFAULT_RELOAD_INTERVAL)
    } else {
        unused("format", t.format.is_some())?;
        unused("hash", t.hash.is_some())?;
        unused("value_column", t.value_column.is_some())?;
        let Some(query) = t.query.clone() else {
            return Err(bad(path, &at("query"), "a postgres table needs a query"));
        };
        let source = TableSource::Postgres {
            url: t.postgres.clone().unwrap_or_default(),
            query,
        };
        (source, DEFAULT_RELOAD_INTERVAL)
    };
    if !matches!(source, TableSource::RedisHash { .. })
        && t.key.as_deref().is_none_or(str::is_empty)
    {
        return Err(bad(path, &at("key"), "name the table's key column"));
    }
    let join = match t.join.as_deref().unwrap_or("inner") {
        "inner" => JoinKind::Inner,
        "left" => JoinKind::Left,
        other => {
            return Err(bad(
                path,
                &at("join"),
                format!("must be inner or left, not {other:?}"),
            ))
        }
    };
    if t.on.trim().is_empty() {
        return Err(bad(path, &at("on"), "name the record field to join on"));
    }
    let reload_interval = match &t.reload_interval {
        Some(s) => duration(path, &at("reload_interval"), s, false)?,
        None => poll_default,
    };
    Ok(TableSpec {
        name: t.name.clone(),
        source,
        key: t.key.clone(),
        on: t.on.clone(),
        join,
        reload_interval,
    })
}

fn validate_filter(f: FilterSection, i: usize, path: &Path) -> Result<Filter> {
    let at = |key: &str| format!("[[filter]] #{} {key}", i + 1);
    let mut ops = Vec::new();
    if let Some(v) = f.equals {
        ops.push(FilterOp::Equals(v));
    }
    if let Some(v) = f.not_equals {
        ops.push(FilterOp::NotEquals(v));
    }
    if let Some(v) = f.matches {
        let re = Regex::new(&v).map_err(|e| bad(path, &at("matches"), e))?;
        ops.push(FilterOp::Matches(re));
    }
    for (n, op) in [
        (f.gt, FilterOp::Gt as fn(f64) -> FilterOp),
        (f.ge, FilterOp::Ge),
        (f.lt, FilterOp::Lt),
        (f.le, FilterOp::Le),
    ] {
        if let Some(n) = n {
            ops.push(op(n.get()));
        }
    }
    if f.field.trim().is_empty() {
        return Err(bad(path, &at("field"), "name the field the filter tests"));
    }
    let mut ops = ops.into_iter();
    match (ops.next(), ops.next()) {
        (Some(op), None) => Ok(Filter { field: f.field, op }),
        _ => Err(bad(
            path,
            &at("field"),
            format!(
                "{:?} needs exactly one of equals, not_equals, matches, gt, ge, lt, le",
                f.field
            ),
        )),
    }
}

fn validate_window(w: WindowSection, path: &Path) -> Result<WindowSpec> {
    let size = duration(path, "[window] size", &w.size, false)?;
    let slide = match &w.slide {
        Some(s) => duration(path, "[window] slide", s, false)?,
        None => size,
    };
    if slide > size {
        return Err(bad(
            path,
            "[window] slide",
            format!("{slide:?} is longer than the size {size:?}"),
        ));
    }
    let windows = Windows::new(size, slide).map_err(|e| bad(path, "[window] size", e))?;
    let watermark = match &w.watermark {
        Some(s) => duration(path, "[window] watermark", s, true)?,
        None => Duration::ZERO,
    };
    let late = match w.late.as_deref() {
        None | Some("drop") => Late::Drop,
        Some(other) => match other.strip_prefix("kafka:").filter(|t| !t.is_empty()) {
            Some(topic) => Late::Kafka(topic.to_owned()),
            None => {
                return Err(bad(
                    path,
                    "[window] late",
                    format!("must be drop or kafka:TOPIC, not {other:?}"),
                ))
            }
        },
    };
    Ok(WindowSpec {
        windows,
        watermark,
        time_field: w.time_field.filter(|f| !f.is_empty()),
        late,
    })
}

fn validate_sink(s: SinkSection, path: &Path) -> Result<SinkSpec> {
    let unused = |key: &str, present: bool| {
        if present {
            Err(bad(
                path,
                &format!("[sink] {key}"),
                format!("not used by type {:?}", s.kind),
            ))
        } else {
            Ok(())
        }
    };
    let need = |key: &str, v: &Option<String>| {
        v.clone().filter(|v| !v.trim().is_empty()).ok_or_else(|| {
            bad(
                path,
                &format!("[sink] {key}"),
                format!("type {:?} needs it", s.kind),
            )
        })
    };
    match s.kind.as_str() {
        "redis" => {
            unused("pool_size", s.pool_size.is_some())?;
            unused("topic", s.topic.is_some())?;
            unused("transactional_id", s.transactional_id.is_some())?;
            unused("num_rows", s.num_rows.is_some())?;
            Ok(SinkSpec::Redis {
                url: need("url", &s.url)?,
                prefix: s
                    .prefix
                    .clone()
                    .unwrap_or_else(|| DEFAULT_REDIS_PREFIX.to_owned()),
            })
        }
        "postgres" => {
            unused("topic", s.topic.is_some())?;
            unused("transactional_id", s.transactional_id.is_some())?;
            unused("num_rows", s.num_rows.is_some())?;
            let pool_size = s.pool_size.unwrap_or(crate::pg_sink::DEFAULT_POOL_SIZE);
            if pool_size == 0 {
                return Err(bad(path, "[sink] pool_size", "must be at least 1"));
            }
            Ok(SinkSpec::Postgres {
                url: need("url", &s.url)?,
                prefix: s
                    .prefix
                    .clone()
                    .unwrap_or_else(|| DEFAULT_PG_PREFIX.to_owned()),
                pool_size,
            })
        }
        "kafka" => {
            unused("url", s.url.is_some())?;
            unused("prefix", s.prefix.is_some())?;
            unused("pool_size", s.pool_size.is_some())?;
            unused("num_rows", s.num_rows.is_some())?;
            Ok(SinkSpec::Kafka {
                topic: need("topic", &s.topic)?,
                transactional_id: need("transactional_id", &s.transactional_id)?,
            })
        }
        "stdout" => {
            unused("url", s.url.is_some())?;
            unused("prefix", s.prefix.is_some())?;
            unused("pool_size", s.pool_size.is_some())?;
            unused("topic", s.topic.is_some())?;
            unused("transactional_id", s.transactional_id.is_some())?;
            Ok(SinkSpec::Stdout {
                num_rows: s.num_rows.unwrap_or(DEFAULT_NUM_ROWS),
            })
        }
        other => Err(bad(
            path,
            "[sink] type",
            format!("must be redis, postgres, kafka or stdout, not {other:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORDCOUNT: &str = r#"
[source]
bootstrap = "127.0.0.1:9092"
topics = ["lines"]
starting = "earliest"

[parse]
format = "split"

[aggregate]
key = "word"

[sink]
type = "redis"
url = "redis://127.0.0.1:6379/0"
"#;

    fn err(text: &str) -> String {
        parse_str(text, Path::new("job.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn the_word_count_validates_with_defaults() {
        let spec = parse_str(WORDCOUNT, Path::new("jobs/wc.toml")).unwrap();
        assert_eq!(spec.stream.batch_interval, Duration::from_secs(2));
        assert_eq!(spec.stream.auto_offset_reset, AutoOffsetReset::Earliest);
        assert!(
            matches!(spec.parser, Parser::Split { ref separator, ref field } if separator == " " && field == "word")
        );
        assert_eq!(spec.aggregate, Aggregate::Count);
        assert_eq!(
            spec.sink,
            SinkSpec::Redis {
                url: "redis://127.0.0.1:6379/0".to_owned(),
                prefix: DEFAULT_REDIS_PREFIX.to_owned()
            }
        );
        assert!(spec.window.is_none());
    }

    #[test]
    fn errors_name_the_key() {
        let cases: &[(&str, &str, &str)] = &[
            ("[source]\n", "[source]\nbogus = 1\n", "bogus"),
            ("format = \"split\"", "format = \"xml\"", "[parse] format"),
            ("key = \"word\"", "key = \"{word\"", "[aggregate] key"),
            ("key = \"word\"", "key = \"word\"\nfunction = \"avg\"", "[aggregate] function"),
            ("key = \"word\"", "key = \"word\"\nfunction = \"sum\"", "[aggregate] field"),
            ("type = \"redis\"", "type = \"mysql\"", "[sink] type"),
            ("starting = \"earliest\"", "starting = \"first\"", "[source] starting"),
            ("starting = \"earliest\"", "batch_interval = \"2 fortnights\"", "[source] batch_interval"),
            ("topics = [\"lines\"]", "topics = [\"lines\"]\npattern = \"l.*\"", "[source] pattern"),
            ("[parse]\n", "[source.conf]\n\"spark.nope\" = \"1\"\n[parse]\n", "[source.conf] \"spark.nope\""),
            ("[sink]", "[window]\nsize = \"1m\"\nslide = \"2m\"\n[sink]", "[window] slide"),
            ("[sink]", "[window]\nsize = \"1m\"\nlate = \"file:x\"\n[sink]", "[window] late"),
            ("[sink]", "[[filter]]\nfield = \"word\"\nequals = \"a\"\ngt = 3\n[sink]", "[[filter]] #1"),
            ("[sink]", "[[filter]]\nfield = \"word\"\nmatches = \"(\"\n[sink]", "[[filter]] #1 matches"),
            ("[sink]", "[[table]]\nname = \"hosts\"\nfile = \"h.csv\"\non = \"host\"\n[sink]", "[[table]] #1 (hosts) key"),
            ("[sink]", "[[table]]\nname = \"hosts\"\nfile = \"h.csv\"\nredis = \"redis://x\"\nkey = \"k\"\non = \"host\"\n[sink]", "[[table]] #1 (hosts) file"),
            ("[sink]", "[[table]]\nname = \"hosts\"\nfile = \"h.csv\"\nkey = \"host\"\non = \"host\"\njoin = \"outer\"\n[sink]", "[[table]] #1 (hosts) join"),
            ("url = \"redis://127.0.0.1:6379/0\"", "topic = \"out\"", "[sink] topic"),
        ];
        for (from, to, needle) in cases {
            assert!(WORDCOUNT.contains(from), "{from}");
            let text = WORDCOUNT.replacen(from, to, 1);
            let e = err(&text);
            assert!(e.contains("job.toml"), "{e}");
            assert!(e.contains(needle), "{needle:?} not in {e:?}");
        }
        // A kafka sink without a group names the group.
        let text = WORDCOUNT.replacen(
            "type = \"redis\"\nurl = \"redis://127.0.0.1:6379/0\"",
            "type = \"kafka\"\ntopic = \"out\"\ntransactional_id = \"t\"",
            1,
        );
        assert!(err(&text).contains("[source] group"), "{}", err(&text));
    }

    #[test]
    fn tables_and_windows_validate() {
        let text = WORDCOUNT.replacen(
            "[sink]",
            "[[table]]\nname = \"hosts\"\nfile = \"hosts.csv\"\nkey = \"host\"\non = \"host\"\njoin = \"left\"\n\
             [window]\nsize = \"1m\"\nwatermark = \"10s\"\ntime_field = \"ts\"\nlate = \"kafka:late\"\n[sink]",
            1,
        );
        let spec = parse_str(&text, Path::new("/jobs/x.toml")).unwrap();
        let t = &spec.tables[0];
        assert_eq!(t.source, TableSource::Csv(PathBuf::from("/jobs/hosts.csv")));
        assert_eq!(t.join, JoinKind::Left);
        assert_eq!(t.reload_interval, DEFAULT_FILE_POLL);
        let w = spec.window.unwrap();
        assert_eq!(w.windows.size_ms(), 60_000);
        assert_eq!(w.windows.slide_ms(), 60_000);
        assert_eq!(w.watermark, Duration::from_secs(10));
        assert_eq!(w.late, Late::Kafka("late".to_owned()));
    }
}
