//! A real Apache Kafka 4.3.1 broker (KRaft, combined broker and controller) started from the
//! jars `compat-tests/scripts/install-java.sh` caches, in a temp dir on ephemeral ports, so a
//! test can run the same scenario against Kafka and against Sluice. [`Kafka::spawn`] formats
//! the log dir and starts the JVM; each crate waits for it with its own client, since this
//! crate speaks no Kafka protocol.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use tempfile::TempDir;

use crate::{free_port, workspace_root};

/// The Kafka release the install scripts cache.
pub const KAFKA_VERSION: &str = "4.3.1";
/// Kafka's quickstart cluster id; each broker has its own directory, so one id will do.
const CLUSTER_ID: &str = "MkU3OEVBNTcwNTJENDM2Qk";

/// Where `install-java.sh` puts Kafka's jars.
pub fn kafka_home() -> PathBuf {
    workspace_root()
        .join("compat-tests/.cache")
        .join(format!("kafka-{KAFKA_VERSION}"))
}

/// Kafka's quiet log4j2 config (errors only), as `install-java.sh` writes it.
pub fn kafka_quiet_log_config() -> PathBuf {
    kafka_home().join("log4j2-quiet.properties")
}

/// `java` with Kafka's jars on the class path and the given log4j2 config, for the broker
/// and for Kafka's tools.
pub fn kafka_java(heap: &str, log_config: &Path) -> Command {
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
        .arg(format!("{}/libs/*", kafka_home().display()));
    c
}

/// A running Kafka broker. Killed on drop; its log is printed if the test is panicking.
pub struct Kafka {
    child: Option<Child>,
    addr: String,
    tmp: TempDir,
}

impl Kafka {
    /// Formats a fresh KRaft log dir in a temp dir named from `prefix` and starts the broker
    /// with Kafka 4.x's `config/server.properties` settings on ephemeral ports, plus the
    /// `extra` property lines. `log4j2` is a log4j2 properties text (None: errors only, the
    /// install's quiet config). Returns at once; the broker answers a few seconds later.
    pub fn spawn(prefix: &str, extra: &str, log4j2: Option<&str>) -> Kafka {
        Self::spawn_formatted(prefix, extra, log4j2, &[])
    }

    /// [`Kafka::spawn`] with extra `kafka-storage format` arguments, such as
    /// `--add-scram 'SCRAM-SHA-512=[name=alice,password=alice-secret]'` (users that exist
    /// before the broker starts, as a SASL-only listener needs).
    pub fn spawn_formatted(
        prefix: &str,
        extra: &str,
        log4j2: Option<&str>,
        format_args: &[&str],
    ) -> Kafka {
        let home = kafka_home();
        assert!(
            home.join(".installed").exists(),
            "Kafka {KAFKA_VERSION} jars missing at {}: run compat-tests/scripts/install-java.sh",
            home.display()
        );
        let tmp = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .expect("create temp dir");
        let log_config = match log4j2 {
            Some(text) => {
                let p = tmp.path().join("log4j2.properties");
                fs::write(&p, text).expect("write log4j2 config");
                p
            }
            None => kafka_quiet_log_config(),
        };
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
        let format = kafka_java("-Xmx256m", &log_config)
            .arg("kafka.tools.StorageTool")
            .args(["format", "--standalone", "-t", CLUSTER_ID, "-c"])
            .arg(&cfg)
            .args(format_args)
            .output()
            .expect("run java (is it on PATH? compat-tests/scripts/install-java.sh)");
        assert!(
            format.status.success(),
            "kafka-storage format failed:\n{}{}",
            String::from_utf8_lossy(&format.stdout),
            String::from_utf8_lossy(&format.stderr)
        );
        let log = File::create(tmp.path().join("kafka.log")).expect("create kafka.log");
        let child = kafka_java("-Xmx768m", &log_config)
            .arg("kafka.Kafka")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("dup kafka.log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn kafka");
        Kafka {
            child: Some(child),
            addr: format!("127.0.0.1:{port}"),
            tmp,
        }
    }

    /// `host:port` of the PLAINTEXT listener.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Everything the broker logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.tmp.path().join("kafka.log")).unwrap_or_default()
    }

    /// The broker's exit status if it has exited (a start that failed).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().expect("try_wait"))
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("----- kafka log -----\n{}", self.log());
        }
    }
}
