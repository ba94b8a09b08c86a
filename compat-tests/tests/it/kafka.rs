//! A real Apache Kafka 4.3.1 broker (KRaft, combined broker and controller) started from the
//! jars `scripts/install-java.sh` caches, in a temp dir on ephemeral ports, so a test can run
//! the same scenario against Kafka and against Sluice. The group coordinator logs at INFO
//! into `kafka.log`, which is printed when a test panics. Nothing here speaks the Kafka
//! protocol: readiness is checked with librdkafka's Metadata.

use std::fs::{self, File};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use tempfile::TempDir;

use crate::harness::{compat_dir, poll_until};
use crate::rk;

const KAFKA_VERSION: &str = "4.3.1";
/// Kafka's quickstart cluster id; each broker has its own directory, so one id will do.
const CLUSTER_ID: &str = "MkU3OEVBNTcwNTJENDM2Qk";
/// A JVM broker on two shared cores can take a while to answer its first Metadata.
const KAFKA_START_DEADLINE: Duration = Duration::from_secs(120);

fn kafka_home() -> PathBuf {
    compat_dir()
        .join(".cache")
        .join(format!("kafka-{KAFKA_VERSION}"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// `java` with Kafka's jars on the class path and the given log4j2 config.
fn java(heap: &str, log_config: &Path) -> Command {
    let home = kafka_home();
    let mut c = Command::new("java");
    c.arg(heap)
        .arg("-XX:+UseSerialGC")
        .arg("-XX:TieredStopAtLevel=1")
        .arg("-Djava.awt.headless=true")
        .arg(format!(
            "-Dlog4j2.configurationFile={}",
            log_config.display()
        ))
        .arg("-cp")
        .arg(format!("{}/libs/*", home.display()));
    c
}

/// A running Kafka broker. Killed on drop; its log is printed if the test is panicking.
pub(crate) struct Kafka {
    child: Option<Child>,
    addr: String,
    tmp: TempDir,
}

impl Kafka {
    /// Formats a fresh KRaft log dir and starts the broker with `extra` lines appended to
    /// Kafka 4.x's `config/server.properties` settings; returns once it answers Metadata.
    pub(crate) fn start(extra: &str) -> Kafka {
        let home = kafka_home();
        assert!(
            home.join(".installed").exists(),
            "Kafka {KAFKA_VERSION} jars missing at {}: run compat-tests/scripts/install-all.sh",
            home.display()
        );
        let tmp = tempfile::Builder::new()
            .prefix("sluice-compat-kafka-")
            .tempdir()
            .expect("create temp dir");
        let log_config = tmp.path().join("log4j2.properties");
        // Errors only, except the group coordinator, whose rebalance steps show what it did.
        fs::write(
            &log_config,
            "status = error\n\
             appender.stderr.type = Console\n\
             appender.stderr.name = STDERR\n\
             appender.stderr.target = SYSTEM_ERR\n\
             appender.stderr.layout.type = PatternLayout\n\
             appender.stderr.layout.pattern = [%d] %p %m (%c)%n\n\
             rootLogger.level = error\n\
             rootLogger.appenderRef.stderr.ref = STDERR\n\
             logger.group.name = org.apache.kafka.coordinator.group\n\
             logger.group.level = info\n",
        )
        .expect("write log4j2 config");
        let (port, cport) = (free_port(), free_port());
        let props = format!(
            "process.roles=broker,controller\n\
             node.id=1\n\
             controller.quorum.bootstrap.servers=127.0.0.1:{cport}\n\
             listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}\n\
             inter.broker.listener.name=PLAINTEXT\n\
             advertised.listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}\n\
             controller.listener.names=CONTROLLER\n\
             listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n\
             log.dirs={}\n\
             num.partitions=1\n\
             offsets.topic.replication.factor=1\n\
             share.coordinator.state.topic.replication.factor=1\n\
             share.coordinator.state.topic.min.isr=1\n\
             transaction.state.log.replication.factor=1\n\
             transaction.state.log.min.isr=1\n\
             {extra}\n",
            tmp.path().join("logs").display()
        );
        let cfg = tmp.path().join("server.properties");
        fs::write(&cfg, props).expect("write server.properties");
        let format = java("-Xmx256m", &log_config)
            .arg("kafka.tools.StorageTool")
            .args(["format", "--standalone", "-t", CLUSTER_ID, "-c"])
            .arg(&cfg)
            .output()
            .expect("run java (is it on PATH? compat-tests/scripts/install-java.sh)");
        assert!(
            format.status.success(),
            "kafka-storage format failed:\n{}{}",
            String::from_utf8_lossy(&format.stdout),
            String::from_utf8_lossy(&format.stderr)
        );
        let log = File::create(tmp.path().join("kafka.log")).expect("create kafka.log");
        let child = java("-Xmx768m", &log_config)
            .arg("kafka.Kafka")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("dup kafka.log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn kafka");
        let mut k = Kafka {
            child: Some(child),
            addr: format!("127.0.0.1:{port}"),
            tmp,
        };
        k.wait_ready();
        k
    }

    fn wait_ready(&mut self) {
        let probe: BaseConsumer = rk::config(&self.addr, &[])
            .create()
            .expect("create metadata client");
        let mut exited = None;
        let up = poll_until(KAFKA_START_DEADLINE, || {
            if let Some(c) = self.child.as_mut() {
                exited = c.try_wait().expect("try_wait");
            }
            exited.is_some()
                || probe
                    .fetch_metadata(None, Duration::from_secs(2))
                    .is_ok_and(|m| !m.brokers().is_empty())
        });
        assert!(
            exited.is_none(),
            "kafka exited with {exited:?}:\n{}",
            self.log()
        );
        assert!(
            up,
            "kafka did not answer within {KAFKA_START_DEADLINE:?}:\n{}",
            self.log()
        );
    }

    /// `host:port` of the PLAINTEXT listener.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// Everything the broker logged so far.
    pub(crate) fn log(&self) -> String {
        fs::read_to_string(self.tmp.path().join("kafka.log")).unwrap_or_default()
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if thread::panicking() {
            eprintln!("----- kafka log -----\n{}", self.log());
        }
    }
}
