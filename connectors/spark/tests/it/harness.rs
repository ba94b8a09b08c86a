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

/// How long PostgreSQL may take to come up (initdb, then start or crash recovery).
const PG_START_DEADLINE: Duration = Duration::from_secs(60);

/// The install script named when the PostgreSQL server binaries are missing.
const PG_INSTALL_HINT: &str = "run compat-tests/scripts/install-postgres.sh";

/// A PostgreSQL server of our own: `initdb` into a temp dir (trust auth, superuser
/// `postgres`), `postgres` on a free port on 127.0.0.1 with its socket in the temp dir.
/// Run as root (as these tests may be), initdb and postgres refuse to start, so both then
/// run as `nobody` through `setpriv` (which execs, so the child is the postmaster itself)
/// in a temp dir that user owns. Stopped (`pg_ctl -m immediate`) on drop.
pub struct Postgres {
    child: Option<Child>,
    port: u16,
    bin: PathBuf,
    /// `setpriv ... --` when running as root; empty otherwise.
    as_user: Vec<String>,
    tmp: TempDir,
    /// Every stderr line of every start.
    log: Vec<Lines>,
}

impl Postgres {
    /// The directory holding `initdb`, `pg_ctl` and `postgres`, found as
    /// install-postgres.sh finds it: Debian's /usr/lib/postgresql/<major>/bin, newest first.
    pub fn bin_dir() -> PathBuf {
        let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .filter_map(|e| {
                let e = e.ok()?;
                let major = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                ["initdb", "pg_ctl", "postgres"]
                    .iter()
                    .all(|b| bin.join(b).is_file())
                    .then_some((major, bin))
            })
            .collect();
        found.sort();
        match found.pop() {
            Some((_, bin)) => bin,
            None => panic!(
                "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found under \
                 /usr/lib/postgresql/*/bin: {PG_INSTALL_HINT}"
            ),
        }
    }

    /// Creates a cluster and starts it.
    pub fn start() -> Postgres {
        let bin = Self::bin_dir();
        let root = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata("/proc/self").unwrap().uid() == 0
        };
        // As root, the temp dir must be reachable by `nobody`: /tmp, not a private TMPDIR.
        let mut builder = tempfile::Builder::new();
        builder.prefix("sluice-spark-pg-");
        let tmp = if root {
            builder.tempdir_in("/tmp").unwrap()
        } else {
            builder.tempdir().unwrap()
        };
        let mut as_user = Vec::new();
        if root {
            let id = |flag: &str| -> u32 {
                let out = Command::new("id").args([flag, "nobody"]).output().unwrap();
                assert!(out.status.success(), "no user nobody to run PostgreSQL as");
                String::from_utf8(out.stdout)
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap()
            };
            let (uid, gid) = (id("-u"), id("-g"));
            std::os::unix::fs::chown(tmp.path(), Some(uid), Some(gid)).unwrap();
            as_user = vec![
                "setpriv".into(),
                format!("--reuid={uid}"),
                format!("--regid={gid}"),
                "--clear-groups".into(),
                "--".into(),
            ];
        }
        let mut pg = Postgres {
            child: None,
            port: 0,
            bin,
            as_user,
            tmp,
            log: Vec::new(),
        };
        let out = pg
            .command("initdb")
            .arg("-D")
            .arg(pg.data_dir())
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb failed ({PG_INSTALL_HINT} if PostgreSQL is missing):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for _attempt in 0..5 {
            pg.port = free_port();
            if pg.spawn() {
                return pg;
            }
            // Lost the port race (or another failure): try another port.
        }
        panic!("postgres did not start:\n{}", pg.log_text());
    }

    fn data_dir(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    /// A server binary, run as `nobody` when we are root.
    fn command(&self, name: &str) -> Command {
        let exe = self.bin.join(name);
        match self.as_user.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    /// Starts the postmaster on `self.port` and waits until it accepts connections;
    /// false (and the process reaped) if it exited or did not get ready in time.
    fn spawn(&mut self) -> bool {
        let mut child = self
            .command("postgres")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-k")
            .arg(self.tmp.path())
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-c", "listen_addresses=127.0.0.1"])
            // A test cluster: losing the page cache is not a risk a test guards against
            // (an immediate stop keeps what was written), and fsync is slow.
            .args(["-c", "fsync=off"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = follow(child.stderr.take().unwrap());
        let ready = wait_line(&lines, PG_START_DEADLINE, |l| {
            l.contains("database system is ready to accept connections")
                .then_some(())
        });
        self.log.push(lines);
        if ready.is_some() {
            self.child = Some(child);
            return true;
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// `postgresql://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server as a crash would (`pg_ctl -m immediate`: no checkpoint; the next
    /// start replays the WAL).
    pub fn stop_immediate(&mut self) {
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "stop"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl stop failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if let Some(mut c) = self.child.take() {
            c.wait().unwrap();
        }
    }

    /// Starts the stopped server again on the same port (same URL).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "postgres is running");
        assert!(
            self.spawn(),
            "postgres did not start again on port {}:\n{}",
            self.port,
            self.log_text()
        );
    }

    /// The server's log, all starts.
    pub fn log_text(&self) -> String {
        self.log
            .iter()
            .flat_map(|l| l.snapshot())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let stopped = self
                .command("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .args(["-m", "immediate", "-w", "stop"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !stopped {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("----- postgres log -----\n{}", self.log_text());
        }
    }
}
