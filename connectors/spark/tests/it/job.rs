//! `sluice-spark job FILE.toml` against the real broker and `redis-server`: the seed's word
//! count as a job file counts exactly as the `wordcount` subcommand; a windowed job joined
//! with a CSV table gives exact per-window counts from out-of-order records, drops a late
//! one, and follows a change to the CSV without a restart; a Redis-hash table; a regex
//! parser with a filter and a sum printed to stdout; a JSON-lines table, late records sent
//! to a topic and a failed reload that keeps the last good table; bad job files name the key;
//! a windowed job writing to Kafka stays exact, late records included, across kill -9.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sluice_spark::{Cell, PgSink, RedisSink, ResultSink, TopicPartition};
use tempfile::TempDir;

use crate::binary::{latest, Rng, Spark};
use crate::harness::{
    eventually, follow, produce_lines, spark_bin, unique, Broker, Lines, Postgres, Redis,
};

/// How long a job may take to reach a result.
const DEADLINE: Duration = Duration::from_secs(60);

/// A running `sluice-spark job FILE`.
struct Job {
    child: Option<Child>,
    stdout: Lines,
    stderr_path: PathBuf,
}

impl Job {
    fn start(file: &Path, dir: &Path) -> Job {
        let stderr_path = dir.join(format!("{}.stderr", unique("job")));
        let mut child = Command::new(spark_bin())
            .arg("job")
            .arg(file)
            // Each job's streaming page on a port of its own.
            .args(["--ui", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(File::create(&stderr_path).unwrap()))
            .spawn()
            .unwrap();
        let stdout = follow(child.stdout.take().unwrap());
        Job {
            child: Some(child),
            stdout,
            stderr_path,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    fn assert_running(&mut self) {
        if let Some(s) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
            panic!("the job exited ({s}):\n{}", self.stderr());
        }
    }
}

impl Job {
    /// `kill -9`.
    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("----- job stderr -----\n{}", self.stderr());
        }
    }
}

fn tmp() -> TempDir {
    tempfile::Builder::new()
        .prefix("sluice-spark-job-")
        .tempdir()
        .unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Waits until `sink` stores offsets up to `until` for every partition of `topic`.
async fn wait_offsets(url: &str, prefix: &str, topic: &str, until: &[i64], job: &mut Job) {
    let sink = RedisSink::connect(url, prefix).await.unwrap();
    eventually(
        DEADLINE,
        &format!("{prefix} to reach offsets {until:?}"),
        || {
            job.assert_running();
            let sink = sink.clone();
            async move {
                let stored = sink.stored_offsets().await.unwrap();
                until
                    .iter()
                    .enumerate()
                    .all(|(p, u)| {
                        stored.get(&TopicPartition::new(topic, i32::try_from(p).unwrap()))
                            == Some(u)
                    })
                    .then_some(())
            }
        },
    )
    .await;
}

#[tokio::test]
async fn word_count_job_counts_as_the_wordcount_subcommand() {
    let broker = Broker::start();
    let redis = Redis::start();
    let client = broker.client().await;
    let topic = unique("lines");
    client.create_topic(&topic, 2, 1, &[]).await.unwrap();
    // Java's split(" ") quirks included: double, leading and trailing spaces, empty lines.
    let lines: Vec<String> = [
        "to be or not to be",
        "  double  spaces",
        "trailing ",
        "",
        " ",
        "be quick",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    produce_lines(&client, &topic, 0, &lines[..3]).await;
    produce_lines(&client, &topic, 1, &lines[3..]).await;
    let until = latest(&client, &topic, 2).await;

    let dir = tmp();
    let url = redis.url(0);
    let file = write(
        dir.path(),
        "wordcount.toml",
        &format!(
            "[source]\nbootstrap = \"{}\"\ntopics = [\"{topic}\"]\nstarting = \"earliest\"\n\
             batch_interval = \"200ms\"\n\n[parse]\nformat = \"split\"\nseparator = \" \"\n\n\
             [aggregate]\nkey = \"word\"\nfunction = \"count\"\n\n\
             [sink]\ntype = \"redis\"\nurl = \"{url}\"\nprefix = \"jobwc\"\n",
            broker.addr()
        ),
    );
    let mut job = Job::start(&file, dir.path());
    let _seed = Spark::wordcount(&[
        "--bootstrap-server",
        broker.addr(),
        "--topics",
        &topic,
        "--batch-interval",
        "200ms",
        "--redis",
        &url,
        "--redis-prefix",
        "seedwc",
        "--starting",
        "earliest",
    ]);
    wait_offsets(&url, "jobwc", &topic, &until, &mut job).await;
    let seed_sink = RedisSink::connect(&url, "seedwc").await.unwrap();
    eventually(DEADLINE, "the wordcount subcommand to finish", || {
        let s = seed_sink.clone();
        let topic = topic.clone();
        let until = until.clone();
        async move {
            let stored = s.stored_offsets().await.unwrap();
            (stored.get(&TopicPartition::new(&topic, 0)) == until.first()
                && stored.get(&TopicPartition::new(&topic, 1)) == until.get(1))
            .then_some(())
        }
    })
    .await;
    let ours = RedisSink::connect(&url, "jobwc")
        .await
        .unwrap()
        .counts()
        .await
        .unwrap();
    let seeds = seed_sink.counts().await.unwrap();
    let mut want: HashMap<String, i64> = HashMap::new();
    for l in &lines {
        for w in sluice_spark::wordcount::java_split(l) {
            *want.entry(w.to_owned()).or_insert(0) += 1;
        }
    }
    assert_eq!(seeds, want);
    assert_eq!(ours, want);
}

/// The windowed, enriched job: JSON log lines, hosts → teams from a CSV file, counts by
/// team per 1-minute tumbling window, 30 s of allowed lateness.
fn windowed_job(addr: &str, topic: &str, url: &str, csv: &Path) -> String {
    format!(
        r#"[source]
bootstrap = "{addr}"
topics = ["{topic}"]
starting = "earliest"
batch_interval = "200ms"

[parse]
format = "json"

[[table]]
name = "hosts"
file = "{}"
key = "host"
on = "host"
reload_interval = "100ms"

[window]
size = "1m"
watermark = "30s"
time_field = "ts"

[aggregate]
key = "hosts.team"
function = "count"

[sink]
type = "redis"
url = "{url}"
prefix = "teams"
"#,
        csv.display()
    )
}

fn log_line(host: &str, ts: i64) -> String {
    format!(r#"{{"host":"{host}","ts":{ts},"msg":"GET /"}}"#)
}

#[tokio::test]
async fn windowed_enriched_job_is_exact_and_follows_the_table() {
    let broker = Broker::start();
    let redis = Redis::start();
    let client = broker.client().await;
    let topic = unique("logs");
    client.create_topic(&topic, 1, 1, &[]).await.unwrap();
    let dir = tmp();
    let csv = write(
        dir.path(),
        "hosts.csv",
        "host,team\nweb1,blue\nweb2,red\nweb3,blue\n",
    );
    let url = redis.url(0);
    let file = write(
        dir.path(),
        "teams.toml",
        &windowed_job(broker.addr(), &topic, &url, &csv),
    );
    let mut job = Job::start(&file, dir.path());
    let sink = RedisSink::connect(&url, "teams").await.unwrap();

    // A minute boundary well in the past, so the windows are fixed numbers.
    let t0: i64 = 1_700_000_040_000;
    assert_eq!(t0 % 60_000, 0);
    let s = |secs: i64| t0 + secs * 1000;
    // Batch A, out of order; web9 is in no table row (inner join: dropped).
    let a: Vec<String> = [
        ("web1", s(10)),
        ("web2", s(70)),
        ("web1", s(5)),
        ("web3", s(130)),
        ("web9", s(20)),
        ("web2", s(65)),
    ]
    .iter()
    .map(|(h, t)| log_line(h, *t))
    .collect();
    produce_lines(&client, &topic, 0, &a).await;
    wait_offsets(&url, "teams", &topic, &[6], &mut job).await;
    // The watermark is now 130 s - 30 s = 100 s: web1 at 50 s is late (dropped); web2 at
    // 110 s and web1 at 125 s are out of order but within the allowed lateness.
    let b: Vec<String> = [("web1", s(50)), ("web2", s(110)), ("web1", s(125))]
        .iter()
        .map(|(h, t)| log_line(h, *t))
        .collect();
    produce_lines(&client, &topic, 0, &b).await;
    wait_offsets(&url, "teams", &topic, &[9], &mut job).await;

    let counts = |v: &[(&str, i64)]| -> HashMap<String, i64> {
        v.iter().map(|(k, c)| ((*k).to_owned(), *c)).collect()
    };
    assert_eq!(
        sink.window_counts(t0).await.unwrap(),
        counts(&[("blue", 2)])
    );
    assert_eq!(
        sink.window_counts(t0 + 60_000).await.unwrap(),
        counts(&[("red", 3)])
    );
    assert_eq!(
        sink.window_counts(t0 + 120_000).await.unwrap(),
        counts(&[("blue", 2)])
    );
    let mut restored = sink.clone();
    let cp = restored.restore().await.unwrap();
    assert_eq!(cp.watermark.late_total, 1);
    assert_eq!(cp.watermark.max_event_ms, Some(s(130)));

    // The table changes on disk: web1 moves to team green. Later records see it, with no
    // restart; what was counted stays.
    std::fs::write(&csv, "host,team\nweb1,green\nweb2,red\nweb3,blue\n").unwrap();
    eventually(DEADLINE, "the job to reload hosts.csv", || {
        job.assert_running();
        let reloaded = job.stderr().contains("table reloaded");
        async move { reloaded.then_some(()) }
    })
    .await;
    produce_lines(&client, &topic, 0, &[log_line("web1", s(140))]).await;
    wait_offsets(&url, "teams", &topic, &[10], &mut job).await;
    assert_eq!(
        sink.window_counts(t0 + 120_000).await.unwrap(),
        counts(&[("blue", 2), ("green", 1)])
    );
}

#[tokio::test]
async fn redis_hash_table_enriches_words() {
    let broker = Broker::start();
    let redis = Redis::start();
    let client = broker.client().await;
    let topic = unique("hosts");
    client.create_topic(&topic, 1, 1, &[]).await.unwrap();
    let url = redis.url(0);
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    // A plain value is the column `team`; a JSON object's members are columns.
    redis::cmd("HSET")
        .arg("host_teams")
        .arg("web1")
        .arg("blue")
        .arg("web2")
        .arg(r#"{"team":"red","dc":"east"}"#)
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    let dir = tmp();
    let file = write(
        dir.path(),
        "redis-table.toml",
        &format!(
            r#"[source]
bootstrap = "{}"
topics = ["{topic}"]
starting = "earliest"
batch_interval = "200ms"

[parse]
format = "split"
field = "host"

[[table]]
name = "t"
redis = "{url}"
hash = "host_teams"
value_column = "team"
on = "host"
join = "left"

[aggregate]
key = "{{t.team}}"
missing = "none"

[sink]
type = "redis"
url = "{url}"
prefix = "byteam"
"#,
            broker.addr()
        ),
    );
    let mut job = Job::start(&file, dir.path());
    produce_lines(
        &client,
        &topic,
        0,
        &["web1 web2 web1".to_owned(), "web7 web2".to_owned()],
    )
    .await;
    wait_offsets(&url, "byteam", &topic, &[2], &mut job).await;
    let counts = RedisSink::connect(&url, "byteam")
        .await
        .unwrap()
        .counts()
        .await
        .unwrap();
    let want: HashMap<String, i64> = [("blue", 2), ("red", 2), ("none", 1)]
        .iter()
        .map(|(k, c)| ((*k).to_owned(), *c))
        .collect();
    assert_eq!(counts, want);
}

#[tokio::test]
async fn sql_table_and_postgres_sink() {
    let broker = Broker::start();
    let pg = Postgres::start();
    let client = broker.client().await;
    let topic = unique("pglogs");
    client.create_topic(&topic, 1, 1, &[]).await.unwrap();
    let (db, conn) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    db.batch_execute(
        "CREATE TABLE hosts (host text PRIMARY KEY, team text);
         INSERT INTO hosts VALUES ('web1', 'blue'), ('web2', 'red'), ('web3', NULL);",
    )
    .await
    .unwrap();
    let dir = tmp();
    let file = write(
        dir.path(),
        "pg.toml",
        &format!(
            r#"[source]
bootstrap = "{}"
topics = ["{topic}"]
starting = "earliest"
batch_interval = "200ms"

[parse]
format = "json"

[[table]]
name = "h"
postgres = "{}"
query = "SELECT host, team FROM hosts"
key = "host"
on = "host"
join = "left"

[aggregate]
key = "{{h.team}}"
missing = "unassigned"
function = "distinct_count"
field = "user"

[sink]
type = "postgres"
url = "{}"
prefix = "byteam"
"#,
            broker.addr(),
            pg.url(),
            pg.url()
        ),
    );
    let mut job = Job::start(&file, dir.path());
    let lines: Vec<String> = [
        ("web1", "ann"),
        ("web1", "bob"),
        ("web1", "ann"),
        ("web2", "cy"),
        ("web3", "dee"),
        ("web9", "eve"),
    ]
    .iter()
    .map(|(h, u)| format!(r#"{{"host":"{h}","user":"{u}"}}"#))
    .collect();
    produce_lines(&client, &topic, 0, &lines).await;
    let sink = PgSink::connect(&pg.url(), "byteam", 1).await.unwrap();
    let results = eventually(DEADLINE, "the postgres sink to hold the batch", || {
        job.assert_running();
        let sink = &sink;
        let topic = topic.clone();
        async move {
            let stored = sink.stored_offsets().await.unwrap();
            if stored.get(&TopicPartition::new(&topic, 0)) != Some(&6) {
                return None;
            }
            Some(sink.results().await.unwrap())
        }
    })
    .await;
    let want = [("blue", 2.0), ("red", 1.0), ("unassigned", 2.0)]
        .iter()
        .map(|(k, v)| (Cell::unwindowed(*k), *v))
        .collect();
    assert_eq!(results, want);
    conn.abort();
}

#[tokio::test]
async fn kafka_sink_writes_results_and_offsets_in_one_transaction() {
    let broker = Broker::start();
    let client = broker.client().await;
    let topic = unique("words");
    let output = unique("counts");
    client.create_topic(&topic, 1, 1, &[]).await.unwrap();
    client.create_topic(&output, 1, 1, &[]).await.unwrap();
    let dir = tmp();
    let group = unique("g");
    let file = write(
        dir.path(),
        "kafka.toml",
        &format!(
            r#"[source]
bootstrap = "{}"
topics = ["{topic}"]
group = "{group}"
starting = "earliest"
batch_interval = "200ms"

[parse]
format = "split"

[aggregate]
key = "word"

[sink]
type = "kafka"
topic = "{output}"
transactional_id = "{}"
"#,
            broker.addr(),
            unique("tx")
        ),
    );
    let mut job = Job::start(&file, dir.path());
    produce_lines(&client, &topic, 0, &["a b a".to_owned(), "c a".to_owned()]).await;
    // The group's offset moves with the results' transaction.
    eventually(DEADLINE, "the group's offset to reach 2", || {
        job.assert_running();
        let client = &client;
        let (topic, group) = (topic.clone(), group.clone());
        async move {
            let c = client.fetch_committed(&group, &[(topic, 0)]).await.ok()?;
            (c.first()?.offset == Some(2)).then_some(())
        }
    })
    .await;
    let mut totals: HashMap<String, i64> = HashMap::new();
    for rec in read_committed_all(&client, &output, 1).await {
        let v: serde_json::Value = serde_json::from_slice(&rec.value.unwrap()).unwrap();
        assert_eq!(v["window"], serde_json::Value::Null);
        assert_eq!(v["aggregate"], "count");
        let key = String::from_utf8(rec.key.unwrap().to_vec()).unwrap();
        assert_eq!(v["key"], key.as_str());
        *totals.entry(key).or_insert(0) += v["value"].as_i64().unwrap();
    }
    let want: HashMap<String, i64> = [("a", 3), ("b", 1), ("c", 1)]
        .iter()
        .map(|(k, c)| ((*k).to_owned(), *c))
        .collect();
    assert_eq!(totals, want);
}

#[tokio::test]
async fn regex_filter_and_sum_print_to_stdout() {
    let broker = Broker::start();
    let client = broker.client().await;
    let topic = unique("access");
    client.create_topic(&topic, 1, 1, &[]).await.unwrap();
    let dir = tmp();
    let file = write(
        dir.path(),
        "bytes.toml",
        &format!(
            r#"[source]
bootstrap = "{}"
topics = ["{topic}"]
starting = "earliest"
batch_interval = "200ms"

[parse]
format = "regex"
pattern = '^(?P<method>\S+) (?P<path>\S+) (?P<status>\d+) (?P<bytes>\d+)$'

[[filter]]
field = "status"
equals = "200"

[[filter]]
field = "bytes"
ge = 100

[aggregate]
key = "{{method}} {{path}}"
function = "sum"
field = "bytes"

[sink]
type = "stdout"
"#,
            broker.addr()
        ),
    );
    let mut job = Job::start(&file, dir.path());
    let lines: Vec<String> = [
        "GET /a 200 512",
        "GET /b 500 100",
        "GET /a 200 300",
        "GET /a 200 99",
        "not an access line",
        "POST /a 200 1000",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    produce_lines(&client, &topic, 0, &lines).await;
    eventually(DEADLINE, "the sums on stdout", || {
        job.assert_running();
        let out = job.stdout.snapshot();
        let done =
            out.iter().any(|l| l == "(GET /a,812)") && out.iter().any(|l| l == "(POST /a,1000)");
        async move { done.then_some(()) }
    })
    .await;
    let out = job.stdout.snapshot();
    assert!(!out.iter().any(|l| l.starts_with("(GET /b")), "{out:?}");
    // The job's streaming page counts every record the stream read, parsed or not.
    let ui = out
        .iter()
        .find_map(|l| l.strip_prefix("ui on http://"))
        .map(|a| a.trim_end_matches('/').to_owned())
        .expect("a `ui on` line");
    eventually(DEADLINE, "six records on the job's /metrics", || {
        let page = sluice_testkit::prometheus::scrape(&format!("http://{ui}/metrics"));
        let n = page.one("spark_streaming_processed_records_total", &[]);
        async move { (n == 6.0).then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn bad_job_files_name_the_key() {
    let dir = tmp();
    let good =
        "[source]\nbootstrap = \"127.0.0.1:9\"\ntopics = [\"t\"]\n\n[parse]\nformat = \"json\"\n\n\
                [aggregate]\nkey = \"host\"\n\n[sink]\ntype = \"stdout\"\n";
    let check = |name: &str, text: &str| {
        let f = write(dir.path(), name, text);
        let out = Command::new(spark_bin())
            .args(["job", "--check"])
            .arg(&f)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, out) = check("good.toml", good);
    assert!(ok, "{out}");
    // The README's examples are valid job files.
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for name in [
        "wordcount.toml",
        "teams-by-minute.toml",
        "access-bytes.toml",
    ] {
        let text = std::fs::read_to_string(examples.join(name)).unwrap();
        let (ok, out) = check(name, &text);
        assert!(ok, "{name}: {out}");
    }
    for (name, text, needle) in [
        (
            "unknown.toml",
            good.replace("[parse]", "[parse]\nseperator = \",\""),
            "seperator",
        ),
        (
            "agg.toml",
            good.replace("key = \"host\"", "key = \"host\"\nfunction = \"median\""),
            "[aggregate] function",
        ),
        (
            "window.toml",
            good.replace("[sink]", "[window]\nsize = \"a minute\"\n[sink]"),
            "[window] size",
        ),
        (
            "sink.toml",
            good.replace("type = \"stdout\"", "type = \"redis\""),
            "[sink] url",
        ),
        (
            "missing.toml",
            good.replace("[sink]\ntype = \"stdout\"\n", ""),
            "sink",
        ),
    ] {
        let (ok, out) = check(name, &text);
        assert!(!ok, "{name} was accepted: {out}");
        assert!(out.contains(name), "{name}: {out}");
        assert!(out.contains(needle), "{name}: {needle:?} not in {out}");
    }
}

/// A JSON-lines table, late records sent to a topic from a job file, and a reload that
/// fails (the file no longer parses): the job keeps the last good table, says so once, and
/// goes on joining with it.
#[tokio::test]
async fn jsonl_table_late_topic_and_a_failed_reload() {
    let broker = Broker::start();
    let client = broker.client().await;
    let topic = unique("logs");
    let late = unique("late");
    client.create_topic(&topic, 1, 1, &[]).await.unwrap();
    client.create_topic(&late, 1, 1, &[]).await.unwrap();
    let dir = tmp();
    let table = write(
        dir.path(),
        "hosts.jsonl",
        "{\"host\":\"web1\",\"team\":\"blue\"}\n{\"host\":\"web2\",\"team\":\"red\"}\n",
    );
    let file = write(
        dir.path(),
        "late.toml",
        &format!(
            r#"[source]
bootstrap = "{}"
topics = ["{topic}"]
starting = "earliest"
batch_interval = "200ms"

[parse]
format = "json"

[[table]]
name = "hosts"
file = "{}"
key = "host"
on = "host"
reload_interval = "100ms"

[window]
size = "1m"
watermark = "10s"
time_field = "ts"
late = "kafka:{late}"

[aggregate]
key = "hosts.team"

[sink]
type = "stdout"
"#,
            broker.addr(),
            table.display()
        ),
    );
    let mut job = Job::start(&file, dir.path());
    let t0: i64 = 1_700_000_040_000;
    let s = |secs: i64| t0 + secs * 1000;
    let has_line = |job: &mut Job, line: &str| {
        job.assert_running();
        job.stdout.snapshot().iter().any(|l| l == line)
    };
    // One record first, so no batch can see it after the later one (it would be late).
    produce_lines(&client, &topic, 0, &[log_line("web1", s(5))]).await;
    let w0 = format!("([{},{}),blue,1)", t0, t0 + 60_000);
    eventually(DEADLINE, "the first window on stdout", || {
        let done = has_line(&mut job, &w0);
        async move { done.then_some(()) }
    })
    .await;
    produce_lines(&client, &topic, 0, &[log_line("web2", s(100))]).await;
    // The watermark is 100 s - 10 s = 90 s from the next batch on: a record at 30 s falls
    // only in the window [0 s, 60 s), which the watermark passed: late, to the late topic.
    eventually(DEADLINE, "the watermark line", || {
        let out = job.stdout.snapshot();
        let seen = out
            .iter()
            .any(|l| l.starts_with(&format!("Watermark: {}", s(90))));
        async move { seen.then_some(()) }
    })
    .await;
    produce_lines(&client, &topic, 0, &[log_line("web1", s(30))]).await;
    let record = eventually(DEADLINE, "the late record on its topic", || {
        let client = &client;
        let late = late.clone();
        async move {
            let r = client
                .fetch_isolated(
                    &late,
                    0,
                    0,
                    1 << 20,
                    Duration::ZERO,
                    sluice_spark::IsolationLevel::ReadUncommitted,
                )
                .await
                .ok()?;
            r.records.into_iter().next()
        }
    })
    .await;
    assert_eq!(
        record.value.as_deref(),
        Some(log_line("web1", s(30)).as_bytes())
    );

    // The table file is now broken: the reload fails, the last good table stays.
    std::fs::write(&table, "{\"host\":\"web1\",\"team\":\n").unwrap();
    eventually(DEADLINE, "the failed reload to be reported", || {
        job.assert_running();
        let said = job
            .stderr()
            .contains("table reload failed, keeping the last good version");
        async move { said.then_some(()) }
    })
    .await;
    produce_lines(&client, &topic, 0, &[log_line("web2", s(110))]).await;
    let w1 = format!("([{},{}),red,2)", t0 + 60_000, t0 + 120_000);
    eventually(DEADLINE, "web2 still joined with red", || {
        let done = has_line(&mut job, &w1);
        async move { done.then_some(()) }
    })
    .await;
    assert_eq!(
        job.stderr()
            .matches("table reload failed, keeping the last good version")
            .count(),
        1,
        "one warning until a reload succeeds"
    );
}

/// Every record of `topic`'s `partitions` at read_committed, once no transaction is open on
/// any of them (the last stable offset is the high watermark and everything below it read).
async fn read_committed_all(
    client: &sluice_spark::Client,
    topic: &str,
    partitions: i32,
) -> Vec<sluice_spark::FetchedRecord> {
    eventually(
        DEADLINE,
        &format!("{topic} with no open transaction"),
        || async {
            let mut all = Vec::new();
            for p in 0..partitions {
                let mut offset = 0;
                loop {
                    let r = client
                        .fetch_isolated(
                            topic,
                            p,
                            offset,
                            1 << 20,
                            Duration::ZERO,
                            sluice_spark::IsolationLevel::ReadCommitted,
                        )
                        .await
                        .ok()?;
                    all.extend(r.records);
                    if r.next_offset == offset {
                        if r.last_stable_offset != r.high_watermark || offset < r.high_watermark {
                            return None;
                        }
                        break;
                    }
                    offset = r.next_offset;
                }
            }
            Some(all)
        },
    )
    .await
}

/// Waits until `group` has committed the log end of every partition of `topic`.
async fn group_at_log_end(
    client: &sluice_spark::Client,
    topic: &str,
    partitions: i32,
    group: &str,
) {
    let want = latest(client, topic, partitions).await;
    let keys: Vec<(String, i32)> = (0..partitions).map(|p| (topic.to_owned(), p)).collect();
    eventually(
        Duration::from_secs(90),
        "the group at the log end",
        || async {
            let got = client.fetch_committed(group, &keys).await.ok()?;
            got.iter()
                .zip(&want)
                .all(|(c, w)| c.offset == Some(*w))
                .then_some(())
        },
    )
    .await;
}

/// A windowed job writing its results to Kafka and its late records to a topic, killed with
/// kill -9 again and again while out-of-order and late data arrives. The watermark state
/// travels as the committed offsets' metadata and the late records in the batch's
/// transaction, so the read_committed totals per window, the late topic and the restored
/// watermark are exactly those of the data: a restart that began with no watermark would
/// count the late records of its first batch.
#[tokio::test]
async fn windowed_kafka_sink_is_exact_with_late_records_across_kill_9() {
    use crate::window::{phase, produce_at, BASE};

    let (mut rng, seed) = Rng::seeded();
    eprintln!("seed {seed} (set SLUICE_SPARK_IT_SEED to replay)");
    let broker = Broker::start();
    let client = broker.client().await;
    let partitions = 2;
    let topic = unique("ev");
    let output = unique("win-out");
    let late_topic = unique("win-late");
    client
        .create_topic(&topic, partitions, 1, &[])
        .await
        .unwrap();
    client.create_topic(&output, 2, 1, &[]).await.unwrap();
    client.create_topic(&late_topic, 1, 1, &[]).await.unwrap();
    let group = unique("g");
    let dir = tmp();
    let file = write(
        dir.path(),
        "windowed-kafka.toml",
        &format!(
            r#"[source]
bootstrap = "{}"
topics = ["{topic}"]
group = "{group}"
starting = "earliest"
batch_interval = "100ms"
max_rate_per_partition = 100

[parse]
format = "split"

[window]
size = "10s"
watermark = "25s"
late = "kafka:{late_topic}"

[aggregate]
key = "word"

[sink]
type = "kafka"
topic = "{output}"
transactional_id = "{}"
"#,
            broker.addr(),
            unique("tx")
        ),
    );

    let mut expected: BTreeMap<i64, HashMap<String, i64>> = BTreeMap::new();
    let mut late = 0u64;
    let phases: Vec<_> = (0..8)
        .map(|k| phase(&mut rng, k, partitions, &mut expected, &mut late))
        .collect();
    let max_event = phases.iter().flatten().flatten().map(|(t, _)| *t).max();
    let producer = {
        let (client, topic, group) = (client.clone(), topic.clone(), group.clone());
        tokio::spawn(async move {
            for ph in phases {
                for (p, recs) in ph.iter().enumerate() {
                    produce_at(&client, &topic, i32::try_from(p).unwrap(), recs).await;
                }
                // The next phase only once this one is applied, watermark included.
                group_at_log_end(&client, &topic, partitions, &group).await;
            }
        })
    };
    let mut kills = 0;
    while kills < 5 || !producer.is_finished() {
        let mut job = Job::start(&file, dir.path());
        tokio::time::sleep(Duration::from_millis(300 + rng.below(900))).await;
        job.assert_running();
        job.kill9();
        kills += 1;
    }
    producer.await.unwrap();
    let job = Job::start(&file, dir.path());
    group_at_log_end(&client, &topic, partitions, &group).await;

    let mut totals: BTreeMap<i64, HashMap<String, i64>> = BTreeMap::new();
    for rec in read_committed_all(&client, &output, 2).await {
        let v: serde_json::Value = serde_json::from_slice(&rec.value.unwrap()).unwrap();
        let start = v["window"]["start"].as_i64().unwrap();
        assert_eq!(v["window"]["end"].as_i64(), Some(start + 10_000));
        let key = v["key"].as_str().unwrap().to_owned();
        *totals.entry(start).or_default().entry(key).or_insert(0) += v["value"].as_i64().unwrap();
    }
    assert_eq!(
        totals.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (start, want) in &expected {
        assert_eq!(&totals[start], want, "window {start}");
    }
    assert!(totals.keys().all(|s| *s >= BASE));

    let lates = read_committed_all(&client, &late_topic, 1).await;
    let sources: BTreeSet<Vec<u8>> = lates
        .iter()
        .map(|r| {
            r.headers
                .iter()
                .find(|h| h.key == "spark.late.source")
                .and_then(|h| h.value.clone())
                .unwrap()
                .to_vec()
        })
        .collect();
    assert_eq!(
        lates.len(),
        usize::try_from(late).unwrap(),
        "late records, once each"
    );
    assert_eq!(sources.len(), lates.len(), "no late record written twice");

    let keys: Vec<(String, i32)> = (0..partitions).map(|p| (topic.clone(), p)).collect();
    for c in client.fetch_committed(&group, &keys).await.unwrap() {
        let w = sluice_spark::parse_watermark_metadata(c.metadata.as_deref().unwrap_or(""))
            .unwrap_or_else(|| panic!("no watermark state in {c:?}"));
        assert_eq!(w.max_event_ms, max_event);
        assert_eq!(w.late_total, late);
    }
    eprintln!("{kills} kills; {late} late records");
    drop(job);
}
