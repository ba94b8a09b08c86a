//! [`PgSink`]: exactly-once results in PostgreSQL, Spark's "store results and offsets in one
//! transaction" pattern with a real database. Four tables, named from a prefix (`wc`):
//!
//! - `<prefix>_results (window_start bigint, key text, value double precision)`, primary key
//!   `(window_start, key)`; a job without windows stores [`NO_WINDOW`] as the start, because
//!   a primary key column cannot be NULL;
//! - `<prefix>_distinct (window_start, key, member text)`: the distinct values behind a
//!   `distinct_count` cell, so that a later batch adds only values not seen before;
//! - `<prefix>_offsets (topic text, partition integer, until_offset bigint)`: where each
//!   partition's next batch starts;
//! - `<prefix>_watermark`: one row, the watermark state to resume with.
//!
//! One transaction per batch: lock the watermark row (one writer at a time), read the stored
//! offsets of the batch's partitions, and then
//!
//! 1. if every range's `untilOffset` is stored already, the batch was applied before (a
//!    replay, or a COMMIT whose answer was lost): roll back, [`Applied::AlreadyApplied`];
//! 2. if a stored offset is neither absent nor the range's `fromOffset`, the batch overlaps
//!    what was applied or leaves a gap: roll back, [`Error::StoredOffsetMismatch`];
//! 3. otherwise upsert the results with one statement per kind of aggregate (arrays through
//!    `UNNEST`, `ON CONFLICT DO UPDATE`: count and sum add, min and max take `LEAST` and
//!    `GREATEST`, a distinct count adds the values its side table did not hold yet), upsert
//!    the offsets, store the watermark, COMMIT.
//!
//! A lost connection or a database restart fails the attempt; the whole batch is then retried
//! on a fresh connection with a bounded, logged backoff ([`RetryPolicy`]) until the database
//! answers again. A COMMIT whose outcome is unknown needs nothing special: the retry meets
//! step 1 when it did commit. Connections come from a deadpool pool that checks a connection
//! with a round trip before handing it out again, so a restart's dead connections are
//! replaced, not reused.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::str::FromStr;
use std::time::{Duration, Instant};

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

use crate::agg::{Cell, Partial, Updates};
use crate::error::{BoxError, Error, Result};
use crate::range::{OffsetRange, TopicPartition};
use crate::sink::{Applied, Checkpoint, ResultSink};
use crate::window::WatermarkState;

/// The default table prefix: tables `wc_results`, `wc_distinct`, `wc_offsets`, `wc_watermark`.
pub const DEFAULT_PG_PREFIX: &str = "wc";

/// The default number of pooled connections. The sink runs one batch at a time; a second
/// connection lets readers (`results`, `stored_offsets`) run beside a batch.
pub const DEFAULT_POOL_SIZE: usize = 2;

/// `window_start` of a cell without a window (`Cell::window_start == None`).
pub const NO_WINDOW: i64 = i64::MIN;

/// A prefix becomes part of unquoted SQL identifiers: at most this long, so that the longest
/// table name (`<prefix>_watermark`) stays within PostgreSQL's 63-byte `NAMEDATALEN - 1`.
const MAX_PREFIX_LEN: usize = 40;

/// How a failed attempt at a batch (or at setup, or a restore) is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first pause after a failure.
    pub initial_backoff: Duration,
    /// The pause doubles after each failure up to this.
    pub max_backoff: Duration,
    /// No new attempt starts once this long has passed since the first failure: the error
    /// is returned and the stream stops (a restart resumes from the stored offsets).
    pub give_up_after: Duration,
    /// One attempt that takes longer than this (a database that accepts connections but
    /// never answers) counts as a failed attempt.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            give_up_after: Duration::from_secs(600),
            attempt_timeout: Duration::from_secs(120),
        }
    }
}

/// Results, offsets and watermark state in one PostgreSQL database.
#[derive(Clone)]
pub struct PgSink {
    pool: Pool,
    tables: Tables,
    /// The URL without its password, for messages.
    target: String,
    retry: RetryPolicy,
}

impl std::fmt::Debug for PgSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSink")
            .field("target", &self.target)
            .field("results", &self.tables.results)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// The table names of one prefix.
#[derive(Debug, Clone)]
struct Tables {
    results: String,
    distinct: String,
    offsets: String,
    watermark: String,
}

impl Tables {
    fn new(prefix: &str) -> Result<Tables> {
        let mut chars = prefix.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !first_ok || !rest_ok || prefix.len() > MAX_PREFIX_LEN {
            return Err(Error::Config(format!(
                "postgres table prefix {prefix:?}: expected a lower-case SQL identifier \
                 ([a-z_][a-z0-9_]*) of at most {MAX_PREFIX_LEN} characters"
            )));
        }
        Ok(Tables {
            results: format!("{prefix}_results"),
            distinct: format!("{prefix}_distinct"),
            offsets: format!("{prefix}_offsets"),
            watermark: format!("{prefix}_watermark"),
        })
    }
}

/// Why an attempt failed: worth another try on a fresh connection, or not.
enum Failure {
    Transient(Error),
    Fatal(Error),
}

impl PgSink {
    /// Connects to `url` (`postgresql://USER@HOST:PORT/DB`, any libpq key=value or URL form
    /// tokio-postgres reads) with a pool of `pool_size` connections, and creates the tables
    /// of `prefix` if they are missing. A database that is down is waited for as a batch
    /// would be ([`RetryPolicy::default`]).
    pub async fn connect(url: &str, prefix: &str, pool_size: usize) -> Result<PgSink> {
        Self::connect_with(url, prefix, pool_size, RetryPolicy::default()).await
    }

    /// [`PgSink::connect`] with a retry policy of its own.
    pub async fn connect_with(
        url: &str,
        prefix: &str,
        pool_size: usize,
        retry: RetryPolicy,
    ) -> Result<PgSink> {
        let tables = Tables::new(prefix)?;
        if pool_size == 0 {
            return Err(Error::Config(
                "postgres pool size must be at least 1".into(),
            ));
        }
        let mut config = tokio_postgres::Config::from_str(url).map_err(|e| Error::Postgres {
            what: "parse the connection URL (expected postgresql://USER@HOST:PORT/DB)".into(),
            source: Box::new(e),
        })?;
        // Without these a database host that vanished leaves a connect, or a socket, waiting
        // for the kernel's TCP timeouts (minutes); a batch should notice and retry sooner.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.keepalives_idle(Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name("sluice-spark");
        }
        let target = describe_target(&config);
        // Verified: a pooled connection answers a round trip before it is handed out again,
        // so the dead connections a database restart leaves behind are replaced.
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Verified,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(15)))
            .recycle_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| Error::Postgres {
                what: format!("build the connection pool for {target}"),
                source: Box::new(e),
            })?;
        let sink = PgSink {
            pool,
            tables,
            target,
            retry,
        };
        sink.with_retry("create the tables", || sink.try_create_tables())
            .await?;
        Ok(sink)
    }

    /// The results table's name.
    pub fn results_table(&self) -> &str {
        &self.tables.results
    }

    /// The offsets table's name.
    pub fn offsets_table(&self) -> &str {
        &self.tables.offsets
    }

    /// The offsets stored: where each partition's next batch must start.
    pub async fn stored_offsets(&self) -> Result<BTreeMap<TopicPartition, i64>> {
        self.with_retry("read the offsets", || self.try_stored_offsets())
            .await
    }

    /// Every result cell and its value.
    pub async fn results(&self) -> Result<BTreeMap<Cell, f64>> {
        self.with_retry("read the results", || self.try_results())
            .await
    }

    /// Runs `attempt` until it succeeds, fails for good, or the policy gives up; each
    /// transient failure is logged with the pause before the next try.
    async fn with_retry<T, F, Fut>(&self, what: &str, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut first_failure: Option<Instant> = None;
        let mut backoff = self.retry.initial_backoff;
        let mut failures = 0u32;
        loop {
            let outcome = match tokio::time::timeout(self.retry.attempt_timeout, attempt()).await {
                Ok(outcome) => outcome,
                Err(_) => Err(Failure::Transient(Error::Postgres {
                    what: format!(
                        "{what} at {}: no answer within {:?}",
                        self.target, self.retry.attempt_timeout
                    ),
                    source: "attempt timed out".into(),
                })),
            };
            match outcome {
                Ok(v) => {
                    if failures > 0 {
                        tracing::info!(
                            target = %self.target,
                            what,
                            failures,
                            "postgres answered again; done"
                        );
                    }
                    return Ok(v);
                }
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Transient(e)) => {
                    failures = failures.saturating_add(1);
                    let since = *first_failure.get_or_insert_with(Instant::now);
                    if since.elapsed().saturating_add(backoff) > self.retry.give_up_after {
                        tracing::error!(
                            target = %self.target,
                            what,
                            failures,
                            error = %e,
                            "postgres still unavailable; giving up"
                        );
                        return Err(e);
                    }
                    tracing::warn!(
                        target = %self.target,
                        what,
                        failure = failures,
                        retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                        error = %e,
                        "postgres unavailable; retrying"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2).min(self.retry.max_backoff);
                }
            }
        }
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, Failure> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Backend(e) => self.pg_failure("connect", e),
            PoolError::Timeout(t) => Failure::Transient(Error::Postgres {
                what: format!("connect to {}", self.target),
                source: format!("pool timeout ({t:?})").into(),
            }),
            other => Failure::Fatal(Error::Postgres {
                what: format!("connect to {}", self.target),
                source: Box::new(other),
            }),
        })
    }

    /// Classifies a driver error: connection trouble and a database shutting down, starting
    /// up or refusing connections are transient; SQL errors are not.
    fn pg_failure(&self, what: &str, e: tokio_postgres::Error) -> Failure {
        let transient = is_transient(&e);
        let err = Error::Postgres {
            what: format!("{what} at {}", self.target),
            source: describe(e),
        };
        if transient {
            Failure::Transient(err)
        } else {
            Failure::Fatal(err)
        }
    }

    async fn try_create_tables(&self) -> Result<(), Failure> {
        let t = &self.tables;
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {results} (
                 window_start bigint NOT NULL,
                 key text NOT NULL,
                 value double precision NOT NULL,
                 PRIMARY KEY (window_start, key));
             CREATE TABLE IF NOT EXISTS {distinct} (
                 window_start bigint NOT NULL,
                 key text NOT NULL,
                 member text NOT NULL,
                 PRIMARY KEY (window_start, key, member));
             CREATE TABLE IF NOT EXISTS {offsets} (
                 topic text NOT NULL,
                 partition integer NOT NULL,
                 until_offset bigint NOT NULL,
                 PRIMARY KEY (topic, partition));
             CREATE TABLE IF NOT EXISTS {watermark} (
                 id smallint PRIMARY KEY CHECK (id = 1),
                 max_event_ms bigint,
                 late_total bigint NOT NULL DEFAULT 0);
             INSERT INTO {watermark} (id) VALUES (1) ON CONFLICT DO NOTHING;",
            results = t.results,
            distinct = t.distinct,
            offsets = t.offsets,
            watermark = t.watermark,
        );
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| self.pg_failure("begin", e))?;
        if let Err(e) = tx.batch_execute(&sql).await {
            // Two processes creating the same tables at once: one loses on the catalog's
            // unique index; the retry finds the tables there.
            let race = matches!(
                e.code(),
                Some(c) if *c == SqlState::UNIQUE_VIOLATION || *c == SqlState::DUPLICATE_TABLE
            );
            return Err(match self.pg_failure("create the tables", e) {
                Failure::Fatal(e) if race => Failure::Transient(e),
                other => other,
            });
        }
        tx.commit()
            .await
            .map_err(|e| self.pg_failure("commit the tables", e))
    }

    async fn try_stored_offsets(&self) -> Result<BTreeMap<TopicPartition, i64>, Failure> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT topic, partition, until_offset FROM {}",
            self.tables.offsets
        );
        let rows = client
            .query(&sql, &[])
            .await
            .map_err(|e| self.pg_failure("read the offsets", e))?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (topic, partition, until): (String, i32, i64) =
                match (row.try_get(0), row.try_get(1), row.try_get(2)) {
                    (Ok(t), Ok(p), Ok(u)) => (t, p, u),
                    _ => return Err(Failure::Fatal(self.bad_table(&self.tables.offsets))),
                };
            out.insert(TopicPartition::new(topic, partition), until);
        }
        Ok(out)
    }

    async fn try_watermark(&self) -> Result<WatermarkState, Failure> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT max_event_ms, late_total FROM {} WHERE id = 1",
            self.tables.watermark
        );
        let row = client
            .query_opt(&sql, &[])
            .await
            .map_err(|e| self.pg_failure("read the watermark", e))?;
        let Some(row) = row else {
            return Ok(WatermarkState::default());
        };
        let max_event_ms: Option<i64> = row
            .try_get(0)
            .map_err(|_| Failure::Fatal(self.bad_table(&self.tables.watermark)))?;
        let late: i64 = row
            .try_get(1)
            .map_err(|_| Failure::Fatal(self.bad_table(&self.tables.watermark)))?;
        let late_total = u64::try_from(late).map_err(|_| {
            Failure::Fatal(Error::Config(format!(
                "postgres {}: {} holds late_total {late}, below zero",
                self.target, self.tables.watermark
            )))
        })?;
        Ok(WatermarkState {
            max_event_ms,
            late_total,
        })
    }

    async fn try_results(&self) -> Result<BTreeMap<Cell, f64>, Failure> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT window_start, key, value FROM {}",
            self.tables.results
        );
        let rows = client
            .query(&sql, &[])
            .await
            .map_err(|e| self.pg_failure("read the results", e))?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (start, key, value): (i64, String, f64) =
                match (row.try_get(0), row.try_get(1), row.try_get(2)) {
                    (Ok(s), Ok(k), Ok(v)) => (s, k, v),
                    _ => return Err(Failure::Fatal(self.bad_table(&self.tables.results))),
                };
            let window_start = (start != NO_WINDOW).then_some(start);
            out.insert(Cell { window_start, key }, value);
        }
        Ok(out)
    }

    fn bad_table(&self, table: &str) -> Error {
        Error::Config(format!(
            "postgres {}: table {table} does not have the columns this sink creates \
             (made by something else? choose another prefix)",
            self.target
        ))
    }

    /// One attempt at a batch, in one transaction.
    async fn try_apply(
        &self,
        ranges: &[OffsetRange],
        rows: &BatchRows,
        watermark: WatermarkState,
    ) -> Result<Applied, Failure> {
        let t = &self.tables;
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| self.pg_failure("begin", e))?;
        // Batches from two processes on one prefix take turns here; the offsets read next
        // are then the ones the other committed (READ COMMITTED takes a snapshot per statement).
        let lock = format!("SELECT 1 FROM {} WHERE id = 1 FOR UPDATE", t.watermark);
        tx.execute(&lock, &[])
            .await
            .map_err(|e| self.pg_failure("lock the watermark row", e))?;

        let topics: Vec<&str> = ranges.iter().map(|r| r.topic.as_str()).collect();
        let partitions: Vec<i32> = ranges.iter().map(|r| r.partition).collect();
        let read = format!(
            "SELECT o.topic, o.partition, o.until_offset FROM {} o \
             JOIN UNNEST($1::text[], $2::integer[]) AS b(topic, partition) \
             ON o.topic = b.topic AND o.partition = b.partition",
            t.offsets
        );
        let stmt = tx
            .prepare_cached(&read)
            .await
            .map_err(|e| self.pg_failure("prepare the offsets read", e))?;
        let stored_rows = tx
            .query(&stmt, &[&topics, &partitions])
            .await
            .map_err(|e| self.pg_failure("read the batch's offsets", e))?;
        let mut stored = BTreeMap::new();
        for row in stored_rows {
            match (row.try_get(0), row.try_get(1), row.try_get(2)) {
                (Ok(topic), Ok(partition), Ok(until)) => {
                    let topic: String = topic;
                    let until: i64 = until;
                    stored.insert(TopicPartition::new(topic, partition), until);
                }
                _ => return Err(Failure::Fatal(self.bad_table(&t.offsets))),
            }
        }
        match check_offsets(ranges, &stored) {
            Check::Replay => {
                // Nothing was written; an explicit ROLLBACK gives the connection back clean.
                tx.rollback()
                    .await
                    .map_err(|e| self.pg_failure("roll back a replay", e))?;
                return Ok(Applied::AlreadyApplied);
            }
            Check::Mismatch {
                tp,
                stored,
                from,
                until,
            } => {
                // Dropping the transaction rolls it back; the error says so.
                return Err(Failure::Fatal(Error::StoredOffsetMismatch {
                    table: t.offsets.clone(),
                    tp,
                    stored,
                    from,
                    until,
                }));
            }
            Check::Apply => {}
        }

        for (merge, cells) in &rows.merged {
            if cells.starts.is_empty() {
                continue;
            }
            let set = match merge {
                Merge::Add => "value = t.value + EXCLUDED.value",
                Merge::Least => "value = LEAST(t.value, EXCLUDED.value)",
                Merge::Greatest => "value = GREATEST(t.value, EXCLUDED.value)",
            };
            let sql = format!(
                "INSERT INTO {results} AS t (window_start, key, value) \
                 SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::double precision[]) \
                 ON CONFLICT (window_start, key) DO UPDATE SET {set}",
                results = t.results
            );
            let stmt = tx
                .prepare_cached(&sql)
                .await
                .map_err(|e| self.pg_failure("prepare the results upsert", e))?;
            tx.execute(&stmt, &[&cells.starts, &cells.keys, &cells.values])
                .await
                .map_err(|e| self.pg_failure("upsert the results", e))?;
        }
        if !rows.distinct.starts.is_empty() {
            // The values new to the side table are what each cell's count grows by; a
            // data-modifying CTE's RETURNING yields exactly those rows.
            let sql = format!(
                "WITH added AS ( \
                     INSERT INTO {distinct} (window_start, key, member) \
                     SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[]) \
                     ON CONFLICT DO NOTHING \
                     RETURNING window_start, key), \
                 grown AS ( \
                     SELECT window_start, key, count(*)::double precision AS n \
                     FROM added GROUP BY window_start, key) \
                 INSERT INTO {results} AS t (window_start, key, value) \
                 SELECT window_start, key, n FROM grown \
                 ON CONFLICT (window_start, key) DO UPDATE SET value = t.value + EXCLUDED.value",
                distinct = t.distinct,
                results = t.results
            );
            let stmt = tx
                .prepare_cached(&sql)
                .await
                .map_err(|e| self.pg_failure("prepare the distinct upsert", e))?;
            let d = &rows.distinct;
            tx.execute(&stmt, &[&d.starts, &d.keys, &d.members])
                .await
                .map_err(|e| self.pg_failure("upsert the distinct values", e))?;
        }

        let untils: Vec<i64> = ranges.iter().map(|r| r.until_offset).collect();
        let sql = format!(
            "INSERT INTO {offsets} (topic, partition, until_offset) \
             SELECT * FROM UNNEST($1::text[], $2::integer[], $3::bigint[]) \
             ON CONFLICT (topic, partition) DO UPDATE SET until_offset = EXCLUDED.until_offset",
            offsets = t.offsets
        );
        let stmt = tx
            .prepare_cached(&sql)
            .await
            .map_err(|e| self.pg_failure("prepare the offsets upsert", e))?;
        tx.execute(&stmt, &[&topics, &partitions, &untils])
            .await
            .map_err(|e| self.pg_failure("store the offsets", e))?;

        let late_total = i64::try_from(watermark.late_total).map_err(|_| {
            Failure::Fatal(Error::Config(format!(
                "late record total {} does not fit a bigint",
                watermark.late_total
            )))
        })?;
        let sql = format!(
            "UPDATE {} SET max_event_ms = $1, late_total = $2 WHERE id = 1",
            t.watermark
        );
        tx.execute(&sql, &[&watermark.max_event_ms, &late_total])
            .await
            .map_err(|e| self.pg_failure("store the watermark", e))?;

        // A failure here leaves the outcome unknown: the connection may have dropped after
        // the server committed. The retry's offset check tells which.
        tx.commit()
            .await
            .map_err(|e| self.pg_failure("commit the batch", e))?;
        Ok(Applied::Applied)
    }
}

#[async_trait::async_trait]
impl ResultSink for PgSink {
    async fn restore(&mut self) -> Result<Checkpoint> {
        let offsets = self.stored_offsets().await?;
        let watermark = self
            .with_retry("read the watermark", || self.try_watermark())
            .await?;
        Ok(Checkpoint { offsets, watermark })
    }

    async fn apply(
        &mut self,
        ranges: &[OffsetRange],
        updates: &Updates,
        watermark: WatermarkState,
    ) -> Result<Applied> {
        let rows = BatchRows::from_updates(updates);
        let this = &*self;
        let applied = this
            .with_retry("apply a batch", || this.try_apply(ranges, &rows, watermark))
            .await?;
        tracing::debug!(
            target = %this.target,
            ranges = ranges.len(),
            cells = updates.cells.len(),
            ?applied,
            "postgres batch"
        );
        Ok(applied)
    }
}

/// What the stored offsets say about a batch.
#[derive(Debug, PartialEq, Eq)]
enum Check {
    Apply,
    Replay,
    Mismatch {
        tp: TopicPartition,
        stored: i64,
        from: i64,
        until: i64,
    },
}

/// The rule RedisSink's script follows too: every `untilOffset` stored is a replay (so is a
/// batch without ranges); any stored offset other than the range's `fromOffset` is refused.
fn check_offsets(ranges: &[OffsetRange], stored: &BTreeMap<TopicPartition, i64>) -> Check {
    let at = |r: &OffsetRange| stored.get(&r.topic_partition()).copied();
    if ranges.iter().all(|r| at(r) == Some(r.until_offset)) {
        return Check::Replay;
    }
    for r in ranges {
        if let Some(s) = at(r) {
            if s != r.from_offset {
                return Check::Mismatch {
                    tp: r.topic_partition(),
                    stored: s,
                    from: r.from_offset,
                    until: r.until_offset,
                };
            }
        }
    }
    Check::Apply
}

/// How a kind of partial merges with the stored value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Merge {
    Add,
    Least,
    Greatest,
}

/// Column arrays of one upsert.
#[derive(Debug, Default)]
struct ValueRows {
    starts: Vec<i64>,
    keys: Vec<String>,
    values: Vec<f64>,
}

/// Column arrays of the distinct side table.
#[derive(Debug, Default)]
struct MemberRows {
    starts: Vec<i64>,
    keys: Vec<String>,
    members: Vec<String>,
}

/// A batch's updates as column arrays, one set per kind of merge.
#[derive(Debug, Default)]
struct BatchRows {
    merged: BTreeMap<Merge, ValueRows>,
    distinct: MemberRows,
}

impl BatchRows {
    fn from_updates(updates: &Updates) -> BatchRows {
        // PostgreSQL's text cannot hold NUL: it becomes U+FFFD, as invalid UTF-8 already does
        // when records are decoded. Two keys may then meet, so cells are merged again here
        // (one upsert must not touch a row twice).
        let mut values: BTreeMap<(Merge, i64, String), f64> = BTreeMap::new();
        let mut members: BTreeSet<(i64, String, String)> = BTreeSet::new();
        for (cell, partial) in &updates.cells {
            let start = cell.window_start.unwrap_or(NO_WINDOW);
            let key = pg_text(&cell.key);
            let (merge, v) = match partial {
                Partial::Count(c) => (Merge::Add, *c as f64),
                Partial::Sum(s) => (Merge::Add, *s),
                Partial::Min(m) => (Merge::Least, *m),
                Partial::Max(m) => (Merge::Greatest, *m),
                Partial::Distinct(set) => {
                    for m in set {
                        members.insert((start, key.clone(), pg_text(m)));
                    }
                    continue;
                }
            };
            values
                .entry((merge, start, key))
                .and_modify(|old| {
                    *old = match merge {
                        Merge::Add => *old + v,
                        Merge::Least => old.min(v),
                        Merge::Greatest => old.max(v),
                    }
                })
                .or_insert(v);
        }
        let mut out = BatchRows::default();
        for ((merge, start, key), v) in values {
            let rows = out.merged.entry(merge).or_default();
            rows.starts.push(start);
            rows.keys.push(key);
            rows.values.push(v);
        }
        for (start, key, member) in members {
            out.distinct.starts.push(start);
            out.distinct.keys.push(key);
            out.distinct.members.push(member);
        }
        out
    }
}

fn pg_text(s: &str) -> String {
    if s.contains('\0') {
        s.replace('\0', "\u{FFFD}")
    } else {
        s.to_owned()
    }
}

/// Connection trouble, or a server that is shutting down, starting up, recovering or full:
/// worth retrying on a new connection. Serialization failures and deadlocks are too.
fn is_transient(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        let c = code.code();
        return c.starts_with("08") // connection_exception
            || *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
            || *code == SqlState::TOO_MANY_CONNECTIONS
            || *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED;
    }
    // No SQLSTATE: an IO error (connect, read, write), or a timeout waiting for the server.
    std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
        || e.to_string().starts_with("timeout")
}

/// The driver's message with the server's own (tokio-postgres prints just "db error" for a
/// server error, keeping the server's message in its source).
fn describe(e: tokio_postgres::Error) -> BoxError {
    if let Some(db) = e.as_db_error() {
        let mut msg = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
        if let Some(detail) = db.detail() {
            msg.push_str(&format!(" ({detail})"));
        }
        return msg.into();
    }
    match std::error::Error::source(&e) {
        Some(cause) => format!("{e}: {cause}").into(),
        None => Box::new(e),
    }
}

/// `user@host:port/db` for messages: never the password.
fn describe_target(config: &tokio_postgres::Config) -> String {
    let user = config.get_user().unwrap_or("?");
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or(user);
    format!("postgresql://{user}@{host}:{port}/{db}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(t: &str, p: i32) -> TopicPartition {
        TopicPartition::new(t, p)
    }

    #[test]
    fn offsets_decide_replay_apply_or_refuse() {
        let ranges = [
            OffsetRange::new("t", 0, 5, 10),
            OffsetRange::new("t", 1, 0, 3),
        ];
        let mut stored = BTreeMap::new();
        assert_eq!(check_offsets(&ranges, &stored), Check::Apply, "first time");
        stored.insert(tp("t", 0), 5);
        assert_eq!(
            check_offsets(&ranges, &stored),
            Check::Apply,
            "one new partition"
        );
        stored.insert(tp("t", 1), 3);
        stored.insert(tp("t", 0), 10);
        assert_eq!(check_offsets(&ranges, &stored), Check::Replay);
        stored.insert(tp("t", 1), 0);
        assert_eq!(
            check_offsets(&ranges, &stored),
            Check::Mismatch {
                tp: tp("t", 0),
                stored: 10,
                from: 5,
                until: 10
            },
            "half applied is impossible in one transaction: refused"
        );
        stored.insert(tp("t", 0), 7);
        assert!(matches!(
            check_offsets(&ranges, &stored),
            Check::Mismatch { stored: 7, .. }
        ));
        assert_eq!(check_offsets(&[], &stored), Check::Replay, "no ranges");
    }

    #[test]
    fn prefixes_are_plain_identifiers() {
        assert!(Tables::new("wc").is_ok());
        assert!(Tables::new("job_2").is_ok());
        for bad in ["", "2x", "Wc", "wc; DROP TABLE x", "a-b", &"x".repeat(41)] {
            assert!(Tables::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rows_merge_keys_that_meet_after_nul_replacement() {
        let mut u = Updates::default();
        u.add(
            Cell {
                window_start: None,
                key: "a\0".into(),
            },
            Partial::Count(2),
        );
        u.add(
            Cell {
                window_start: None,
                key: "a\u{FFFD}".into(),
            },
            Partial::Count(3),
        );
        // One batch holds one aggregate (`Updates::add` insists); the rows are built per
        // kind all the same.
        u.cells
            .insert(Cell::windowed(60_000, "m"), Partial::Max(1.5));
        let rows = BatchRows::from_updates(&u);
        let add = &rows.merged[&Merge::Add];
        assert_eq!(add.starts, vec![NO_WINDOW]);
        assert_eq!(add.keys, vec!["a\u{FFFD}".to_owned()]);
        assert_eq!(add.values, vec![5.0]);
        assert_eq!(rows.merged[&Merge::Greatest].starts, vec![60_000]);
        assert!(rows.distinct.starts.is_empty());
    }
}
