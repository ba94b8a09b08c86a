//! The `sluice-spark wordcount` binary: what it prints per batch, a clean exit on SIGINT
//! with the last commit sent, and exactly-once counts in Redis across repeated `kill -9`.

use std::collections::HashMap;
use std::fs::File;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sluice_client::{Client, OffsetSpec};
use sluice_spark::RedisSink;
use tempfile::TempDir;

use crate::harness::{eventually, follow, produce_lines, spark_bin, unique, Broker, Lines, Redis};

/// A running `sluice-spark` process.
pub struct Spark {
    child: Option<Child>,
    pub stdout: Lines,
    stderr_path: std::path::PathBuf,
    _tmp: TempDir,
}

impl Spark {
    /// Starts `sluice-spark wordcount <args>`.
    pub fn wordcount(args: &[&str]) -> Spark {
        let tmp = tempfile::Builder::new()
            .prefix("sluice-spark-bin-")
            .tempdir()
            .unwrap();
        let stderr_path = tmp.path().join("stderr.log");
        let mut child = Command::new(spark_bin())
            .arg("wordcount")
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(File::create(&stderr_path).unwrap()))
            .spawn()
            .unwrap();
        let stdout = follow(child.stdout.take().unwrap());
        Spark {
            child: Some(child),
            stdout,
            stderr_path,
            _tmp: tmp,
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        let mut c = self.child.take().unwrap();
        c.kill().unwrap();
        c.wait().unwrap();
    }

    /// Sends SIGINT (Ctrl-C) and waits for the exit.
    pub async fn interrupt(&mut self, deadline: Duration) -> ExitStatus {
        let c = self.child.as_mut().unwrap();
        let status = Command::new("kill")
            .arg("-INT")
            .arg(c.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -INT failed");
        let end = Instant::now() + deadline;
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                self.child = None;
                return s;
            }
            assert!(
                Instant::now() < end,
                "sluice-spark did not exit within {deadline:?} of SIGINT\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits for a batch of this run (its signal handlers are installed by then; what it
    /// had to do may have been done before it started), then stops it with SIGINT and
    /// asserts a clean exit.
    pub async fn stop_after_a_batch(&mut self) {
        eventually(Duration::from_secs(30), "a batch of the last run", || {
            let seen = self
                .stdout
                .snapshot()
                .iter()
                .any(|l| l.starts_with("Time: "));
            async move { seen.then_some(()) }
        })
        .await;
        let status = self.interrupt(Duration::from_secs(30)).await;
        assert!(status.success(), "exit status {status}\n{}", self.stderr());
    }

    /// Whether the process has exited (and how).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().unwrap())
    }
}

impl Drop for Spark {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("----- sluice-spark stderr -----\n{}", self.stderr());
        }
    }
}

/// A small deterministic generator (xorshift), so failures can be replayed from the seed.
pub struct Rng(u64);

impl Rng {
    pub fn seeded() -> (Rng, u64) {
        let seed = std::env::var("SLUICE_SPARK_IT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .subsec_nanos()
                    .into()
            });
        (Rng(seed | 1), seed)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const VOCAB: &[&str] = &[
    "spark", "flume", "kafka", "redis", "sluice", "stream", "batch", "offset", "range", "word",
    "count", "tail", "log", "line", "exactly", "once",
];

/// A line of 1 to 8 words and, separately, its word counts (a single space between words,
/// so the expected counts do not depend on the split rules under test elsewhere).
pub fn random_line(rng: &mut Rng, into: &mut HashMap<String, i64>) -> String {
    let n = 1 + rng.below(8);
    let words: Vec<&str> = (0..n)
        .map(|_| VOCAB[usize::try_from(rng.below(VOCAB.len() as u64)).unwrap()])
        .collect();
    for w in &words {
        *into.entry((*w).to_owned()).or_insert(0) += 1;
    }
    words.join(" ")
}

/// Latest offset of each partition.
pub async fn latest(client: &Client, topic: &str, partitions: i32) -> Vec<i64> {
    let mut out = Vec::new();
    for p in 0..partitions {
        out.push(
            client
                .list_offsets(topic, p, OffsetSpec::Latest)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    out
}

/// Waits until Redis holds `want[p]` as partition p's offset.
pub async fn wait_redis_offsets(sink: &RedisSink, topic: &str, want: &[i64], deadline: Duration) {
    eventually(
        deadline,
        "redis offsets to reach the latest offsets",
        || async {
            let stored = sink.stored_offsets().await.unwrap();
            let got: Vec<i64> = (0..want.len())
                .map(|p| {
                    stored
                        .get(&sluice_spark::TopicPartition::new(
                            topic,
                            i32::try_from(p).unwrap(),
                        ))
                        .copied()
                        .unwrap_or(-1)
                })
                .collect();
            (got == want).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn prints_the_seed_lines_and_commits_on_sigint() {
    let broker = Broker::start();
    let client = broker.client().await;
    let topic = unique("print");
    let group = unique("g");
    client.create_topic(&topic, 2, 1, &[]).await.unwrap();
    let lines: Vec<String> = vec!["hello world".into(), "hello sluice  spark".into()];
    produce_lines(&client, &topic, 0, &lines).await;
    produce_lines(&client, &topic, 1, &lines[..1]).await;
    let mut spark = Spark::wordcount(&[
        "--bootstrap-server",
        broker.addr(),
        "--topics",
        &topic,
        "--group",
        &group,
        "--batch-interval",
        "200ms",
        "--starting",
        "earliest",
        "--top",
        "3",
    ]);
    // The first batch covers everything: one line per range, then the top words.
    let want = [format!("{topic} 0 0 2"), format!("{topic} 1 0 1")];
    eventually(
        Duration::from_secs(30),
        "the batch with both ranges",
        || async {
            let out = spark.stdout.snapshot();
            want.iter().all(|w| out.contains(w)).then_some(())
        },
    )
    .await;
    let out = spark.stdout.snapshot();
    let at = out.iter().position(|l| *l == want[0]).unwrap();
    assert!(
        out[at - 2].starts_with("Time: ") && out[at - 2].ends_with(" ms"),
        "{out:?}"
    );
    assert_eq!(out[at + 1], want[1]);
    // "hello" ×3, "world" ×2, then the ties at 1 by word: "" (from the double space) first.
    assert_eq!(&out[at + 2..at + 5], &["(hello,3)", "(world,2)", "(,1)"]);

    let status = spark.interrupt(Duration::from_secs(30)).await;
    assert!(status.success(), "exit status {status}\n{}", spark.stderr());
    // stderr is a file here, not a terminal, and NO_COLOR is not set: plain text all the same.
    let log = spark.stderr();
    assert!(log.contains("INFO"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a log that is no terminal:\n{log}"
    );
    let committed = client
        .fetch_committed(&group, &[(topic.clone(), 0), (topic.clone(), 1)])
        .await
        .unwrap();
    let offsets: Vec<Option<i64>> = committed.into_iter().map(|c| c.offset).collect();
    assert_eq!(
        offsets,
        vec![Some(2), Some(1)],
        "the last batch's ranges committed on exit"
    );
}

#[tokio::test]
async fn exactly_once_in_redis_across_kill_9() {
    let (mut rng, seed) = Rng::seeded();
    eprintln!("seed {seed} (set SLUICE_SPARK_IT_SEED to replay)");
    let broker = Broker::start();
    let redis = Redis::start();
    let client = broker.client().await;
    let topic = unique("eos");
    let partitions = 3;
    client
        .create_topic(&topic, partitions, 1, &[])
        .await
        .unwrap();

    // Pre-generate the data and its expected counts; a task produces it over a few seconds.
    let mut expected: HashMap<String, i64> = HashMap::new();
    let mut rounds: Vec<Vec<Vec<String>>> = Vec::new();
    for _ in 0..50 {
        rounds.push(
            (0..partitions)
                .map(|_| {
                    (0..1 + rng.below(40))
                        .map(|_| random_line(&mut rng, &mut expected))
                        .collect()
                })
                .collect(),
        );
    }
    let producer = {
        let client = client.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            for round in rounds {
                for (p, lines) in round.iter().enumerate() {
                    produce_lines(&client, &topic, i32::try_from(p).unwrap(), lines).await;
                }
                // Spreads the data over time so that kills land while it flows.
                tokio::time::sleep(Duration::from_millis(80)).await;
            }
        })
    };

    let url = redis.url(3);
    let args = [
        "--bootstrap-server",
        broker.addr(),
        "--topics",
        &topic,
        "--redis",
        &url,
        "--group",
        "eos-group",
        "--batch-interval",
        "100ms",
        "--max-rate-per-partition",
        "2000",
        "--starting",
        "earliest",
    ];
    let sink = RedisSink::connect(&url, "wc").await.unwrap();
    let mut kills = 0;
    let mut progress = Vec::new();
    while kills < 6 || !producer.is_finished() {
        let mut spark = Spark::wordcount(&args);
        let wait = Duration::from_millis(300 + rng.below(900));
        tokio::time::sleep(wait).await;
        assert!(
            spark.exited().is_none(),
            "sluice-spark exited on its own\n{}",
            spark.stderr()
        );
        spark.kill9();
        kills += 1;
        let stored: i64 = sink.stored_offsets().await.unwrap().values().sum();
        progress.push(stored);
    }
    producer.await.unwrap();
    eprintln!("{kills} kills; records in redis after each: {progress:?}");
    assert!(
        progress.iter().any(|p| *p > 0),
        "no batch was ever applied before a kill"
    );

    let want = latest(&client, &topic, partitions).await;
    let mut spark = Spark::wordcount(&args);
    wait_redis_offsets(&sink, &topic, &want, Duration::from_secs(60)).await;
    // Redis may have been complete before this run; let it run a batch before stopping it.
    spark.stop_after_a_batch().await;

    let got = sink.counts().await.unwrap();
    let total: i64 = expected.values().sum();
    assert_eq!(got.values().sum::<i64>(), total, "total words");
    assert_eq!(got, expected, "every word counted exactly once");
}
