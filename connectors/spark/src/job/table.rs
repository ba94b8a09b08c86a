//! Static tables joined with the stream: loaded from a CSV file (with a header) or a
//! JSON-lines file, a Redis hash, or a SQL query on PostgreSQL, and reloaded while the job
//! runs. [`Table`] is the shared handle: each batch takes a [`Table::snapshot`] and joins
//! every record of the batch against that one version, so a reload never splits a batch.
//!
//! Reloading (Spark leaves this to the user: a static `DataFrame` is read once): a file is
//! checked every `reload_interval` and read again when its size or modification time
//! changed; a Redis hash or a SQL query is read again every `reload_interval`. A reload that
//! fails keeps the last good version and logs one warning until a reload succeeds again.
//! The first load must succeed: a job does not start without its tables.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::job::parse::json_text;
use crate::job::spec::{TableSource, TableSpec};

/// One row: column → text (NULLs and missing columns are absent).
pub type Row = HashMap<String, String>;

/// One version of a table: key → row.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TableData {
    rows: HashMap<String, Row>,
}

impl TableData {
    /// The row whose key column holds `key`.
    pub fn get(&self, key: &str) -> Option<&Row> {
        self.rows.get(key)
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn insert(&mut self, key: String, row: Row) {
        // A later row with the same key wins, as a later write to a hash would.
        self.rows.insert(key, row);
    }
}

/// A table and its current version, shared between the batches and its reloader.
#[derive(Debug, Clone)]
pub struct Table {
    spec: Arc<TableSpec>,
    current: Arc<RwLock<Arc<TableData>>>,
}

impl Table {
    /// Loads the table for the first time; a failure is an error.
    pub async fn load(spec: TableSpec) -> Result<Table> {
        let data = read(&spec).await?;
        tracing::info!(table = spec.name, rows = data.len(), "table loaded");
        Ok(Table {
            spec: Arc::new(spec),
            current: Arc::new(RwLock::new(Arc::new(data))),
        })
    }

    /// The table's settings.
    pub fn spec(&self) -> &TableSpec {
        &self.spec
    }

    /// The current version.
    pub fn snapshot(&self) -> Arc<TableData> {
        match self.current.read() {
            Ok(g) => Arc::clone(&g),
            // A panic while swapping cannot leave a half-written Arc: use what is there.
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn replace(&self, data: TableData) {
        let data = Arc::new(data);
        match self.current.write() {
            Ok(mut g) => *g = data,
            Err(poisoned) => *poisoned.into_inner() = data,
        }
    }

    /// Starts the reloader; it stops when the handle is dropped.
    pub fn watch(&self) -> Reloader {
        let table = self.clone();
        Reloader(tokio::spawn(async move { table.reload_loop().await }))
    }

    async fn reload_loop(self) {
        let mut tick = tokio::time::interval(self.spec.reload_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut stamp = match &self.spec.source {
            TableSource::Csv(p) | TableSource::JsonLines(p) => file_stamp(p).await.ok(),
            _ => None,
        };
        let mut failing = false;
        loop {
            tick.tick().await;
            if let TableSource::Csv(p) | TableSource::JsonLines(p) = &self.spec.source {
                match file_stamp(p).await {
                    Ok(now) if Some(now) == stamp => continue,
                    Ok(now) => stamp = Some(now),
                    Err(e) => {
                        self.failed(&mut failing, &e);
                        continue;
                    }
                }
            }
            match read(&self.spec).await {
                Ok(data) => {
                    if failing {
                        tracing::info!(table = self.spec.name, "table reloads again");
                        failing = false;
                    }
                    if *self.snapshot() != data {
                        tracing::info!(table = self.spec.name, rows = data.len(), "table reloaded");
                        self.replace(data);
                    }
                }
                Err(e) => {
                    // A file caught half-written fails here; the next change retries.
                    self.failed(&mut failing, &e);
                    if matches!(
                        self.spec.source,
                        TableSource::Csv(_) | TableSource::JsonLines(_)
                    ) {
                        stamp = None;
                    }
                }
            }
        }
    }

    fn failed(&self, failing: &mut bool, e: &Error) {
        if *failing {
            tracing::debug!(table = self.spec.name, "table reload failed again: {e}");
        } else {
            tracing::warn!(
                table = self.spec.name,
                "table reload failed, keeping the last good version: {e}"
            );
            *failing = true;
        }
    }
}

/// A running reloader task, aborted on drop.
#[derive(Debug)]
pub struct Reloader(tokio::task::JoinHandle<()>);

impl Drop for Reloader {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A file's size and modification time: what a change is detected by.
async fn file_stamp(path: &Path) -> Result<(u64, SystemTime)> {
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| Error::Config(format!("table file {}: {e}", path.display())))?;
    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    Ok((meta.len(), modified))
}

/// Reads the table's source once.
pub async fn read(spec: &TableSpec) -> Result<TableData> {
    let key = spec.key.as_deref().unwrap_or_default();
    match &spec.source {
        TableSource::Csv(path) => {
            let text = read_file(path).await?;
            parse_csv(&text, key).map_err(|e| file_err(spec, path, e))
        }
        TableSource::JsonLines(path) => {
            let text = read_file(path).await?;
            parse_json_lines(&text, key).map_err(|e| file_err(spec, path, e))
        }
        TableSource::RedisHash {
            url,
            hash,
            value_column,
        } => read_redis(url, hash, value_column).await,
        TableSource::Postgres { url, query } => read_postgres(url, query, key).await,
    }
}

fn file_err(spec: &TableSpec, path: &Path, e: String) -> Error {
    Error::Config(format!("table {} ({}): {e}", spec.name, path.display()))
}

async fn read_file(path: &Path) -> Result<String> {
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|e| Error::Config(format!("table file {}: {e}", path.display())))?;
    String::from_utf8(bytes)
        .map_err(|e| Error::Config(format!("table file {}: not UTF-8: {e}", path.display())))
}

/// A CSV table: the first line names the columns, one of which is `key`.
pub fn parse_csv(text: &str, key: &str) -> std::result::Result<TableData, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| format!("header: {e}"))?
        .iter()
        .map(str::to_owned)
        .collect();
    let Some(key_index) = header.iter().position(|h| h == key) else {
        return Err(format!("no key column {key:?} in the header {header:?}"));
    };
    let mut data = TableData::default();
    for (line, rec) in reader.records().enumerate() {
        let rec = rec.map_err(|e| format!("row {}: {e}", line + 2))?;
        let Some(k) = rec.get(key_index) else {
            continue;
        };
        let row: Row = header
            .iter()
            .zip(rec.iter())
            .map(|(h, v)| (h.clone(), v.to_owned()))
            .collect();
        data.insert(k.to_owned(), row);
    }
    Ok(data)
}

/// A JSON-lines table: one object a line (blank lines skipped); members are columns.
pub fn parse_json_lines(text: &str, key: &str) -> std::result::Result<TableData, String> {
    let mut data = TableData::default();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1))?;
        let Some(row) = json_row(&v) else {
            return Err(format!("line {}: not a JSON object", n + 1));
        };
        let Some(k) = row.get(key).cloned() else {
            return Err(format!("line {}: no key column {key:?}", n + 1));
        };
        data.insert(k, row);
    }
    Ok(data)
}

fn json_row(v: &Value) -> Option<Row> {
    Some(
        v.as_object()?
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), json_text(v)?.into_owned())))
            .collect(),
    )
}

/// A Redis hash: each field is a key; a value that is a JSON object gives its members as
/// columns, any other value is the column `value_column`. The key is also the column
/// `key`.
async fn read_redis(url: &str, hash: &str, value_column: &str) -> Result<TableData> {
    let err = |what: &str, source| Error::Redis {
        what: format!("{what} (table hash {hash} at {url})"),
        source,
    };
    let client = redis::Client::open(url).map_err(|e| err("open", e))?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| err("connect", e))?;
    let raw: Vec<(String, String)> = redis::cmd("HGETALL")
        .arg(hash)
        .query_async(&mut conn)
        .await
        .map_err(|e| err("HGETALL", e))?;
    let mut data = TableData::default();
    for (field, value) in raw {
        let mut row = match serde_json::from_str::<Value>(&value) {
            Ok(v @ Value::Object(_)) => json_row(&v).unwrap_or_default(),
            _ => Row::from([(value_column.to_owned(), value)]),
        };
        row.insert("key".to_owned(), field.clone());
        data.insert(field, row);
    }
    Ok(data)
}

/// A SQL query's rows, every value as text (the simple-query protocol sends text), one
/// connection per load.
async fn read_postgres(url: &str, query: &str, key: &str) -> Result<TableData> {
    let err = |what: &str, e: tokio_postgres::Error| {
        Error::Config(format!("postgres table query {query:?}: {what}: {e}"))
    };
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| err("connect", e))?;
    let conn_task = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("postgres table connection ended: {e}");
        }
    });
    let messages = client.simple_query(query).await.map_err(|e| err("run", e));
    drop(client);
    conn_task.abort();
    let mut data = TableData::default();
    for m in messages? {
        let tokio_postgres::SimpleQueryMessage::Row(r) = m else {
            continue;
        };
        let mut row = Row::new();
        for (i, c) in r.columns().iter().enumerate() {
            if let Some(v) = r.get(i) {
                row.insert(c.name().to_owned(), v.to_owned());
            }
        }
        let Some(k) = row.get(key).cloned() else {
            return Err(Error::Config(format!(
                "postgres table query {query:?}: a row has no key column {key:?} (or it is NULL)"
            )));
        };
        data.insert(k, row);
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_by_key() {
        let t = parse_csv("host,team\nweb1, blue\n\"web,2\",\"red, green\"\n", "host").unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(
            t.get("web1").unwrap().get("team").map(String::as_str),
            Some("blue")
        );
        assert_eq!(
            t.get("web,2").unwrap().get("team").map(String::as_str),
            Some("red, green")
        );
        assert!(parse_csv("a,b\n1,2\n", "host")
            .unwrap_err()
            .contains("no key column"));
        assert!(parse_csv("host,team\nweb1\n", "host")
            .unwrap_err()
            .contains("row 2"));
    }

    #[test]
    fn json_lines_rows_by_key() {
        let t = parse_json_lines(
            "{\"host\":\"a\",\"team\":\"x\",\"n\":3}\n\n{\"host\":\"b\",\"team\":null}\n",
            "host",
        )
        .unwrap();
        assert_eq!(t.get("a").unwrap().get("n").map(String::as_str), Some("3"));
        assert_eq!(t.get("b").unwrap().get("team"), None);
        assert!(parse_json_lines("{\"x\":1}\n", "host")
            .unwrap_err()
            .contains("line 1"));
        assert!(parse_json_lines("[1]\n", "host").is_err());
    }
}
