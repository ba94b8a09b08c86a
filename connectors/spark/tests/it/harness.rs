//! Test fixtures: the shared test kit's broker (the real `sluice`, found next to this test
//! executable, or `$SLUICE_BIN`, on `127.0.0.1:0` in a temp dir); a real `redis-server` on a
//! free port with persistence off; the `sluice-spark` binary; a CreatePartitions call; and a
//! client with quick retries. Everything is killed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::{CreatePartitionsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use sluice_client::{Client, ClientConfig, Connection, ProduceOptions, ProduceRecord};
use tempfile::TempDir;

pub use sluice_testkit::{eventually, follow, free_port, unique, wait_line, Lines};

/// How long Redis may take to come up.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// Broker config for tests: groups form as soon as the first member joins.
const BROKER_CONFIG: &str = "[group]\ninitial_rebalance_delay_ms = 0\n";

/// The `sluice-spark` binary built with these tests.
pub fn spark_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sluice-spark"))
}

/// A running broker process (the kit's, plus a client for it), or an external broker.
///
/// With `SLUICE_SPARK_IT_BOOTSTRAP=host:port`, tests that call
/// [`Broker::start_or_external`] run against that broker instead (Apache Kafka, say).
pub struct Broker(Option<sluice_testkit::Broker>, String);

impl Broker {
    /// Starts a broker on an ephemeral port.
    pub fn start() -> Broker {
        let b = sluice_testkit::Broker::builder()
            .bin(sluice_testkit::sluice_bin_beside_test_exe())
            .temp_prefix("sluice-spark-it-")
            .config(BROKER_CONFIG)
            .start();
        let addr = b.addr().to_owned();
        Broker(Some(b), addr)
    }

    /// Starts a broker with this config file and extra command-line arguments (a second
    /// `--listen`, say); [`Broker::addr`] is still the kit's PLAINTEXT listener.
    pub fn start_with(config: &str, args: &[&str]) -> Broker {
        let mut b = sluice_testkit::Broker::builder()
            .bin(sluice_testkit::sluice_bin_beside_test_exe())
            .temp_prefix("sluice-spark-it-")
            .config(config);
        for a in args {
            b = b.arg(a);
        }
        let b = b.start();
        let addr = b.addr().to_owned();
        Broker(Some(b), addr)
    }

    /// Every listener's address, the kit's PLAINTEXT one first.
    pub fn addrs(&self) -> Vec<String> {
        match &self.0 {
            Some(b) => b.addrs().to_vec(),
            None => vec![self.1.clone()],
        }
    }

    /// `$SLUICE_SPARK_IT_BOOTSTRAP` when set, else [`Broker::start`].
    pub fn start_or_external() -> Broker {
        match std::env::var("SLUICE_SPARK_IT_BOOTSTRAP") {
            Ok(addr) if !addr.is_empty() => Broker(None, addr),
            _ => Broker::start(),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.1
    }

    /// A client for this broker with short retry pauses.
    pub async fn client(&self) -> Client {
        Client::connect(test_config(self.addr())).await.unwrap()
    }
}

/// Client settings for tests: quick retries, bounded waits.
pub fn test_config(addr: &str) -> ClientConfig {
    let mut c = ClientConfig::new([addr]).with_client_id("sluice-spark-it");
    c.retry_backoff = Duration::from_millis(20);
    c.retry_backoff_max = Duration::from_millis(200);
    c.request_timeout = Duration::from_secs(15);
    c
}

/// A `redis-server` of our own.
pub struct Redis {
    child: Option<Child>,
    port: u16,
    _tmp: TempDir,
}

impl Redis {
    /// Starts `redis-server` on a free port in a temp dir with persistence off.
    pub fn start() -> Redis {
        let which = Command::new("sh")
            .arg("-c")
            .arg("command -v redis-server")
            .output()
            .unwrap();
        assert!(
            which.status.success(),
            "redis-server is not installed: run compat-tests/scripts/install-redis.sh"
        );
        let tmp = tempfile::Builder::new()
            .prefix("sluice-spark-redis-")
            .tempdir()
            .unwrap();
        for _attempt in 0..5 {
            let port = free_port();
            let mut child = Command::new("redis-server")
                .arg("--port")
                .arg(port.to_string())
                .arg("--bind")
                .arg("127.0.0.1")
                .arg("--save")
                .arg("")
                .arg("--appendonly")
                .arg("no")
                .arg("--dir")
                .arg(tmp.path())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            let lines = follow(child.stdout.take().unwrap());
            let ready = wait_line(&lines, START_DEADLINE, |l| {
                l.contains("Ready to accept connections").then_some(())
            });
            if ready.is_some() {
                return Redis {
                    child: Some(child),
                    port,
                    _tmp: tmp,
                };
            }
            // Lost the port race (or another failure): try another port.
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("redis-server did not start");
    }

    /// `redis://127.0.0.1:PORT/DB`.
    pub fn url(&self, db: u32) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Produces `lines` to one partition, in one batch.
pub async fn produce_lines(client: &Client, topic: &str, partition: i32, lines: &[String]) -> i64 {
    let records: Vec<ProduceRecord> = lines
        .iter()
        .map(|l| ProduceRecord::new(l.clone().into_bytes()))
        .collect();
    client
        .produce(topic, partition, &records, &ProduceOptions::default())
        .await
        .unwrap()
}

/// Grows `topic` to `count` partitions (CreatePartitions; sluice-client has no call for it).
pub async fn create_partitions(addr: &str, topic: &str, count: i32) {
    let mut conn = Connection::open(addr, &test_config(addr)).await.unwrap();
    let request = CreatePartitionsRequest::default()
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_count(count)])
        .with_timeout_ms(15_000);
    let resp = conn
        .call(1, &request, Duration::from_secs(15))
        .await
        .unwrap();
    for r in &resp.results {
        assert_eq!(
            r.error_code, 0,
            "CreatePartitions {topic}: {:?}",
            r.error_message
        );
    }
}
