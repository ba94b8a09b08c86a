//! [`RedisSink`]: exactly-once word counts in Redis, Spark's "store results and offsets in
//! one transaction" pattern. Two hashes: `<prefix>:counts` (word → count) and
//! `<prefix>:offsets` (`topic:partition` → the `untilOffset` applied last). One Lua script
//! applies a batch atomically:
//!
//! 1. if every range's stored offset already equals its `untilOffset`, the batch was
//!    applied before: nothing changes (a replay);
//! 2. otherwise every stored offset must equal the range's `fromOffset`, or be absent (a
//!    partition seen for the first time); any other value is an overlap or a gap, and the
//!    script changes nothing and reports it;
//! 3. then it adds every count (`HINCRBY`) and stores every `untilOffset` (`HSET`).
//!
//! A restart reads `<prefix>:offsets` and starts each partition there, so a batch
//! interrupted anywhere (even by `kill -9`) is either wholly in Redis or not at all.
//! The script is sent by `EVALSHA`, falling back to `EVAL` when the server lacks it.
//!
//! As a [`ResultSink`] (event-time jobs, and any aggregate), a second script applies a
//! batch's [`Updates`] the same way, and in the same script stores the watermark state, so
//! a `kill -9` anywhere neither counts a batch twice nor loses one, nor loses or moves back
//! the watermark:
//!
//! - unwindowed cells go to `<prefix>:counts` for counts (the same hash, and the same
//!   `HINCRBY`s, as the plain word count), else to `<prefix>:<aggregate>` (`wc:sum`, ...);
//! - a window's cells go to one hash per window, `<prefix>:window:<start_ms>` (key →
//!   value), and its start to the sorted set `<prefix>:windows` (score = member = start);
//! - counts add (`HINCRBY`), sums add (`HINCRBYFLOAT`), min and max compare in Lua
//!   (`HSET` only when smaller / larger), and a distinct count keeps a set per cell,
//!   `<cell hash>:distinct:<key>`, whose `SCARD` is the value;
//! - `<prefix>:watermark` holds `max_event_ms`, `late_total`, `watermark_ms` and
//!   `final_through` (the largest start whose window is final); windows become final
//!   (Spark's "the watermark passed the window's end") in the batch whose watermark reaches
//!   their end, and their starts join the sorted set `<prefix>:windows:final`.
//!
//! The keys are built inside the script from arguments, so the sink suits a single Redis
//! server (or a cluster only with every key in one slot).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, Script, Value};

use crate::agg::{Aggregate, Partial, Updates};
use crate::error::{Error, Result};
use crate::range::{OffsetRange, TopicPartition};
use crate::sink::{Applied, Checkpoint, ResultSink};
use crate::window::{WatermarkState, Windows};

/// The default key prefix: keys `wc:counts` and `wc:offsets`.
pub const DEFAULT_PREFIX: &str = "wc";

/// KEYS[1] counts hash, KEYS[2] offsets hash. ARGV[1] = n ranges, then n triples
/// (field, from, until), then (word, count) pairs. Returns 1 applied, 0 already applied,
/// or {field, stored, from, until} for a mismatch.
const APPLY_SCRIPT: &str = r"
local n = tonumber(ARGV[1])
local applied = true
for r = 0, n - 1 do
  if redis.call('HGET', KEYS[2], ARGV[2 + 3 * r]) ~= ARGV[4 + 3 * r] then
    applied = false
    break
  end
end
if applied then
  return 0
end
for r = 0, n - 1 do
  local stored = redis.call('HGET', KEYS[2], ARGV[2 + 3 * r])
  if stored and stored ~= ARGV[3 + 3 * r] then
    return {ARGV[2 + 3 * r], stored, ARGV[3 + 3 * r], ARGV[4 + 3 * r]}
  end
end
for i = 2 + 3 * n, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
for r = 0, n - 1 do
  redis.call('HSET', KEYS[2], ARGV[2 + 3 * r], ARGV[4 + 3 * r])
end
return 1
";

/// KEYS[1] offsets hash, KEYS[2] watermark hash, KEYS[3] windows zset, KEYS[4] final
/// windows zset. ARGV[1] = n ranges, then n triples (field, from, until), then
/// max_event_ms ('' = none), late_total, watermark_ms ('' = none), final_through ('' =
/// nothing final), m, m window starts, then 5-tuples (op, hash, field, value, set) with op
/// c = HINCRBY, s = HINCRBYFLOAT, n = min, x = max, d = distinct (SADD value to set, the
/// field holds SCARD). Returns 0 already applied, {'applied', starts finalised...}, or
/// {'mismatch', field, stored, from, until}.
const UPDATES_SCRIPT: &str = r"
local n = tonumber(ARGV[1])
local applied = true
for r = 0, n - 1 do
  if redis.call('HGET', KEYS[1], ARGV[2 + 3 * r]) ~= ARGV[4 + 3 * r] then
    applied = false
    break
  end
end
if applied then
  return 0
end
for r = 0, n - 1 do
  local stored = redis.call('HGET', KEYS[1], ARGV[2 + 3 * r])
  if stored and stored ~= ARGV[3 + 3 * r] then
    return {'mismatch', ARGV[2 + 3 * r], stored, ARGV[3 + 3 * r], ARGV[4 + 3 * r]}
  end
end
local b = 2 + 3 * n
local max_event, late_total, wm, through = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
local m = tonumber(ARGV[b + 4])
for i = b + 5, b + 4 + m do
  redis.call('ZADD', KEYS[3], ARGV[i], ARGV[i])
end
for i = b + 5 + m, #ARGV, 5 do
  local op, h, f, v = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if op == 'c' then
    redis.call('HINCRBY', h, f, v)
  elseif op == 's' then
    redis.call('HINCRBYFLOAT', h, f, v)
  elseif op == 'n' or op == 'x' then
    local cur = redis.call('HGET', h, f)
    local nv, cv = tonumber(v), cur and tonumber(cur)
    if not cv or (op == 'n' and nv < cv) or (op == 'x' and nv > cv) then
      redis.call('HSET', h, f, v)
    end
  elseif op == 'd' then
    redis.call('SADD', ARGV[i + 4], v)
    redis.call('HSET', h, f, redis.call('SCARD', ARGV[i + 4]))
  end
end
for r = 0, n - 1 do
  redis.call('HSET', KEYS[1], ARGV[2 + 3 * r], ARGV[4 + 3 * r])
end
if max_event ~= '' then
  redis.call('HSET', KEYS[2], 'max_event_ms', max_event)
end
redis.call('HSET', KEYS[2], 'late_total', late_total)
local out = {'applied'}
if wm ~= '' then
  redis.call('HSET', KEYS[2], 'watermark_ms', wm)
end
if through ~= '' then
  local prev = redis.call('HGET', KEYS[2], 'final_through')
  local lo = '-inf'
  if prev then
    lo = '(' .. prev
  end
  if not prev or tonumber(through) > tonumber(prev) then
    for _, s in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], lo, through)) do
      redis.call('ZADD', KEYS[4], s, s)
      out[#out + 1] = s
    end
    redis.call('HSET', KEYS[2], 'final_through', through)
  end
end
return out
";

/// Word counts and offsets in one Redis database.
#[derive(Clone)]
pub struct RedisSink {
    conn: MultiplexedConnection,
    script: Script,
    counts_key: String,
    offsets_key: String,
    url: String,
    updates_script: Script,
    prefix: String,
    /// The job's windows and allowed lateness, which decide when a window is final.
    event_time: Option<(Windows, i64)>,
    /// The window starts the last applied batch made final.
    finalised: Vec<i64>,
}

impl std::fmt::Debug for RedisSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSink")
            .field("url", &self.url)
            .field("counts_key", &self.counts_key)
            .field("offsets_key", &self.offsets_key)
            .finish_non_exhaustive()
    }
}

impl RedisSink {
    /// Connects to `url` (`redis://HOST:PORT/DB`) and uses keys `<prefix>:counts` and
    /// `<prefix>:offsets`.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self> {
        let err = |source| Error::Redis {
            what: format!("connect to {url}"),
            source,
        };
        let client = redis::Client::open(url).map_err(err)?;
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(err)?;
        Ok(Self {
            conn,
            script: Script::new(APPLY_SCRIPT),
            counts_key: format!("{prefix}:counts"),
            offsets_key: format!("{prefix}:offsets"),
            url: url.to_owned(),
            updates_script: Script::new(UPDATES_SCRIPT),
            prefix: prefix.to_owned(),
            event_time: None,
            finalised: Vec::new(),
        })
    }

    /// The counts hash's key.
    pub fn counts_key(&self) -> &str {
        &self.counts_key
    }

    /// The offsets hash's key.
    pub fn offsets_key(&self) -> &str {
        &self.offsets_key
    }

    /// The offsets stored: where each partition's next batch must start.
    pub async fn stored_offsets(&self) -> Result<BTreeMap<TopicPartition, i64>> {
        let raw: HashMap<String, String> = self
            .conn
            .clone()
            .hgetall(&self.offsets_key)
            .await
            .map_err(|source| self.redis_err(format!("HGETALL {}", self.offsets_key), source))?;
        let mut out = BTreeMap::new();
        for (field, value) in raw {
            let parsed = field.rsplit_once(':').and_then(|(t, p)| {
                Some((TopicPartition::new(t, p.parse().ok()?), value.parse().ok()?))
            });
            let Some((tp, offset)) = parsed else {
                return Err(Error::Config(format!(
                    "redis {} key {} field {field:?} = {value:?} is not topic:partition = offset",
                    self.url, self.offsets_key
                )));
            };
            out.insert(tp, offset);
        }
        Ok(out)
    }

    /// All counts.
    pub async fn counts(&self) -> Result<HashMap<String, i64>> {
        self.conn
            .clone()
            .hgetall(&self.counts_key)
            .await
            .map_err(|source| self.redis_err(format!("HGETALL {}", self.counts_key), source))
    }

    /// Applies one batch: adds `counts` and moves the offsets to the ranges'
    /// `untilOffset`s, atomically. A replay is ignored; an overlap or a gap is
    /// [`Error::OffsetMismatch`] and changes nothing.
    pub async fn apply(
        &self,
        ranges: &[OffsetRange],
        counts: &HashMap<String, i64>,
    ) -> Result<Applied> {
        let mut inv = self.script.prepare_invoke();
        inv.key(&self.counts_key)
            .key(&self.offsets_key)
            .arg(ranges.len());
        for r in ranges {
            inv.arg(field(r)).arg(r.from_offset).arg(r.until_offset);
        }
        for (w, c) in counts {
            inv.arg(w.as_bytes()).arg(*c);
        }
        let value: Value = inv
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|source| self.redis_err("apply batch script".to_owned(), source))?;
        match value {
            Value::Int(1) => Ok(Applied::Applied),
            Value::Int(0) => Ok(Applied::AlreadyApplied),
            Value::Array(items) => {
                let text: Vec<String> = items
                    .iter()
                    .map(|v| match v {
                        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                        other => format!("{other:?}"),
                    })
                    .collect();
                let get = |i: usize| text.get(i).cloned().unwrap_or_default();
                Err(Error::OffsetMismatch {
                    key: self.offsets_key.clone(),
                    field: get(0),
                    stored: get(1),
                    from: get(2).parse().unwrap_or(-1),
                    until: get(3).parse().unwrap_or(-1),
                })
            }
            other => Err(Error::Config(format!(
                "redis {}: the batch script answered {other:?}",
                self.url
            ))),
        }
    }

    /// Adds `counts` without any offsets (`HINCRBY` in one `MULTI`): for sources without
    /// offsets, such as Flume, where delivery is at-least-once.
    pub async fn add_counts(&self, counts: &HashMap<String, i64>) -> Result<()> {
        if counts.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (w, c) in counts {
            pipe.hincr(&self.counts_key, w.as_bytes(), *c).ignore();
        }
        pipe.query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(|source| self.redis_err(format!("HINCRBY {}", self.counts_key), source))
    }

    /// Sets the job's windows and allowed lateness: with them, [`ResultSink::apply`] marks
    /// windows final once the watermark (`max_event_ms - allowed_lateness`) reaches their
    /// end.
    pub fn with_windows(mut self, windows: Windows, allowed_lateness: Duration) -> Self {
        let delay = i64::try_from(allowed_lateness.as_millis()).unwrap_or(i64::MAX);
        self.event_time = Some((windows, delay));
        self
    }

    /// The hash of the window starting at `start`: `<prefix>:window:<start>`.
    pub fn window_key(&self, start: i64) -> String {
        format!("{}:window:{start}", self.prefix)
    }

    /// The sorted set of window starts: `<prefix>:windows`.
    pub fn windows_key(&self) -> String {
        format!("{}:windows", self.prefix)
    }

    /// The sorted set of final windows' starts: `<prefix>:windows:final`.
    pub fn final_windows_key(&self) -> String {
        format!("{}:windows:final", self.prefix)
    }

    /// The watermark state's hash: `<prefix>:watermark`.
    pub fn watermark_key(&self) -> String {
        format!("{}:watermark", self.prefix)
    }

    /// The hash holding the unwindowed results of `aggregate`: `<prefix>:counts` for
    /// counts, `<prefix>:<aggregate>` for the others.
    pub fn results_key(&self, aggregate: Aggregate) -> String {
        match aggregate {
            Aggregate::Count => self.counts_key.clone(),
            other => format!("{}:{}", self.prefix, other.name()),
        }
    }

    /// The window starts the last [`ResultSink::apply`] made final, ascending.
    pub fn last_finalised(&self) -> &[i64] {
        &self.finalised
    }

    /// Every window start with results, ascending.
    pub async fn windows(&self) -> Result<Vec<i64>> {
        self.zset_starts(&self.windows_key()).await
    }

    /// The starts of the windows that are final, ascending.
    pub async fn final_windows(&self) -> Result<Vec<i64>> {
        self.zset_starts(&self.final_windows_key()).await
    }

    async fn zset_starts(&self, key: &str) -> Result<Vec<i64>> {
        let raw: Vec<String> = self
            .conn
            .clone()
            .zrangebyscore(key, "-inf", "+inf")
            .await
            .map_err(|source| self.redis_err(format!("ZRANGEBYSCORE {key}"), source))?;
        raw.iter()
            .map(|s| {
                s.parse().map_err(|_| {
                    Error::Config(format!(
                        "redis {} key {key} member {s:?} is not a window start",
                        self.url
                    ))
                })
            })
            .collect()
    }

    /// The values of the window starting at `start` (key → value as stored).
    pub async fn window_values(&self, start: i64) -> Result<HashMap<String, String>> {
        let key = self.window_key(start);
        self.conn
            .clone()
            .hgetall(&key)
            .await
            .map_err(|source| self.redis_err(format!("HGETALL {key}"), source))
    }

    /// The counts of the window starting at `start` (a count job's window hash).
    pub async fn window_counts(&self, start: i64) -> Result<HashMap<String, i64>> {
        let raw = self.window_values(start).await?;
        raw.into_iter()
            .map(|(k, v)| match v.parse() {
                Ok(c) => Ok((k, c)),
                Err(_) => Err(Error::Config(format!(
                    "redis {} window {start} key {k:?} holds {v:?}, not a count",
                    self.url
                ))),
            })
            .collect()
    }

    /// The watermark state stored with the last batch.
    pub async fn watermark_state(&self) -> Result<WatermarkState> {
        let key = self.watermark_key();
        let raw: HashMap<String, String> = self
            .conn
            .clone()
            .hgetall(&key)
            .await
            .map_err(|source| self.redis_err(format!("HGETALL {key}"), source))?;
        let num = |f: &str| -> Result<Option<i64>> {
            raw.get(f)
                .map(|v| {
                    v.parse().map_err(|_| {
                        Error::Config(format!(
                            "redis {} key {key} field {f} = {v:?} is not a number",
                            self.url
                        ))
                    })
                })
                .transpose()
        };
        Ok(WatermarkState {
            max_event_ms: num("max_event_ms")?,
            late_total: num("late_total")?
                .map(|v| u64::try_from(v).unwrap_or(0))
                .unwrap_or(0),
        })
    }

    /// Applies a batch's [`Updates`] with its ranges and watermark state in one script;
    /// see the module docs. Returns what happened and the window starts made final.
    pub async fn apply_updates(
        &self,
        ranges: &[OffsetRange],
        updates: &Updates,
        watermark: WatermarkState,
    ) -> Result<(Applied, Vec<i64>)> {
        let mut inv = self.updates_script.prepare_invoke();
        inv.key(&self.offsets_key)
            .key(self.watermark_key())
            .key(self.windows_key())
            .key(self.final_windows_key())
            .arg(ranges.len());
        for r in ranges {
            inv.arg(field(r)).arg(r.from_offset).arg(r.until_offset);
        }
        let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        let wm = self
            .event_time
            .and_then(|(_, delay)| watermark.max_event_ms.map(|m| m.saturating_sub(delay)));
        // Windows with `start + size <= watermark` are final (Spark evicts a window's state
        // once `window.end <= watermark`).
        let through = self
            .event_time
            .and_then(|(w, _)| wm.map(|wm| wm.saturating_sub(w.size_ms())));
        inv.arg(opt(watermark.max_event_ms))
            .arg(watermark.late_total)
            .arg(opt(wm))
            .arg(opt(through));
        let starts = updates.window_starts();
        inv.arg(starts.len());
        for s in &starts {
            inv.arg(*s);
        }
        let unwindowed = updates.aggregate.map(|a| self.results_key(a));
        for (cell, partial) in &updates.cells {
            let hash = match (cell.window_start, &unwindowed) {
                (Some(s), _) => self.window_key(s),
                (None, Some(h)) => h.clone(),
                (None, None) => self.counts_key.clone(),
            };
            let key = cell.key.as_bytes();
            match partial {
                Partial::Count(c) => {
                    inv.arg("c").arg(&hash).arg(key).arg(*c).arg("");
                }
                Partial::Sum(v) => {
                    inv.arg("s").arg(&hash).arg(key).arg(v.to_string()).arg("");
                }
                Partial::Min(v) => {
                    inv.arg("n").arg(&hash).arg(key).arg(v.to_string()).arg("");
                }
                Partial::Max(v) => {
                    inv.arg("x").arg(&hash).arg(key).arg(v.to_string()).arg("");
                }
                Partial::Distinct(values) => {
                    let mut set = format!("{hash}:distinct:").into_bytes();
                    set.extend_from_slice(key);
                    for v in values {
                        inv.arg("d")
                            .arg(&hash)
                            .arg(key)
                            .arg(v.as_bytes())
                            .arg(&set[..]);
                    }
                }
            }
        }
        let value: Value = inv
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|source| self.redis_err("apply updates script".to_owned(), source))?;
        let text = |v: &Value| match v {
            Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            Value::SimpleString(s) => s.clone(),
            other => format!("{other:?}"),
        };
        match value {
            Value::Int(0) => Ok((Applied::AlreadyApplied, Vec::new())),
            Value::Array(items) => {
                let items: Vec<String> = items.iter().map(text).collect();
                match items.split_first() {
                    Some((tag, rest)) if tag == "applied" => {
                        let mut finalised: Vec<i64> =
                            rest.iter().filter_map(|s| s.parse().ok()).collect();
                        finalised.sort_unstable();
                        Ok((Applied::Applied, finalised))
                    }
                    Some((tag, rest)) if tag == "mismatch" => {
                        let get = |i: usize| rest.get(i).cloned().unwrap_or_default();
                        Err(Error::OffsetMismatch {
                            key: self.offsets_key.clone(),
                            field: get(0),
                            stored: get(1),
                            from: get(2).parse().unwrap_or(-1),
                            until: get(3).parse().unwrap_or(-1),
                        })
                    }
                    _ => Err(Error::Config(format!(
                        "redis {}: the updates script answered {items:?}",
                        self.url
                    ))),
                }
            }
            other => Err(Error::Config(format!(
                "redis {}: the updates script answered {other:?}",
                self.url
            ))),
        }
    }

    fn redis_err(&self, what: String, source: redis::RedisError) -> Error {
        Error::Redis {
            what: format!("{what} at {}", self.url),
            source,
        }
    }
}

#[async_trait::async_trait]
impl ResultSink for RedisSink {
    async fn restore(&mut self) -> Result<Checkpoint> {
        // Both written by one script, and nothing writes while a job starts: two reads
        // see one batch's state.
        Ok(Checkpoint {
            offsets: self.stored_offsets().await?,
            watermark: self.watermark_state().await?,
        })
    }

    async fn apply(
        &mut self,
        ranges: &[OffsetRange],
        updates: &Updates,
        watermark: WatermarkState,
    ) -> Result<Applied> {
        let (applied, finalised) = self.apply_updates(ranges, updates, watermark).await?;
        self.finalised = finalised;
        Ok(applied)
    }
}

/// The offsets hash field of a range's partition. Kafka topic names cannot hold `:`.
fn field(r: &OffsetRange) -> String {
    format!("{}:{}", r.topic, r.partition)
}
