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

use std::collections::{BTreeMap, HashMap};

use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, Script, Value};

use crate::error::{Error, Result};
use crate::range::{OffsetRange, TopicPartition};
use crate::sink::Applied;

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

/// Word counts and offsets in one Redis database.
#[derive(Clone)]
pub struct RedisSink {
    conn: MultiplexedConnection,
    script: Script,
    counts_key: String,
    offsets_key: String,
    url: String,
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

    fn redis_err(&self, what: String, source: redis::RedisError) -> Error {
        Error::Redis {
            what: format!("{what} at {}", self.url),
            source,
        }
    }
}

/// The offsets hash field of a range's partition. Kafka topic names cannot hold `:`.
fn field(r: &OffsetRange) -> String {
    format!("{}:{}", r.topic, r.partition)
}
