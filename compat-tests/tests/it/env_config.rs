//! The broker configured the way the apache/kafka container image is: by `KAFKA_*`
//! environment variables. Uses the environment block of Apache Kafka's single-node plaintext
//! compose example (docker/examples/docker-compose-files/single-node/plaintext), with only
//! `KAFKA_LOG_DIRS` pointed into a temp dir. Its listeners use fixed ports 9092 and 19092.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{assert_success, run_with_timeout, unique_topic, workspace_root};

const BLOCK: &[(&str, &str)] = &[
    ("KAFKA_NODE_ID", "1"),
    (
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
        "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT",
    ),
    (
        "KAFKA_ADVERTISED_LISTENERS",
        "PLAINTEXT_HOST://localhost:9092,PLAINTEXT://broker:19092",
    ),
    ("KAFKA_PROCESS_ROLES", "broker,controller"),
    ("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@broker:29093"),
    (
        "KAFKA_LISTENERS",
        "CONTROLLER://:29093,PLAINTEXT_HOST://:9092,PLAINTEXT://:19092",
    ),
    ("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT"),
    ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER"),
    ("CLUSTER_ID", "4L6g3nShT-eMCtK--X86sw"),
    ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1"),
    ("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0"),
    ("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1"),
    ("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1"),
];

struct EnvBroker {
    child: Child,
    _tmp: tempfile::TempDir,
}

impl Drop for EnvBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            let log =
                std::fs::read_to_string(self._tmp.path().join("broker.stderr")).unwrap_or_default();
            eprintln!("---- broker stderr ----\n{log}");
        }
    }
}

fn bin() -> std::path::PathBuf {
    std::env::var_os("SLUICE_BIN")
        .map(Into::into)
        .unwrap_or_else(|| workspace_root().join("target/debug/sluice"))
}

fn start(extra: &[(&str, &str)]) -> (EnvBroker, Vec<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(bin());
    for (k, v) in BLOCK.iter().chain(extra) {
        cmd.env(k, v);
    }
    cmd.env("KAFKA_LOG_DIRS", tmp.path().join("kraft-combined-logs"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            std::fs::File::create(tmp.path().join("broker.stderr")).unwrap(),
        ));
    let mut child = cmd.spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let end = Instant::now() + Duration::from_secs(20);
    while lines.len() < 2 {
        match rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
            Ok(l) => {
                if let Some(a) = l.strip_prefix("listening on ") {
                    lines.push(a.to_string());
                }
            }
            Err(e) => panic!("broker did not report two listeners: {e}"),
        }
    }
    (EnvBroker { child, _tmp: tmp }, lines)
}

fn advertised_broker(bootstrap: &str) -> (String, i32) {
    // A Metadata v0 request by hand (key 3, version 0, correlation 7, client id "t", all
    // topics): a real client would go on to connect to the advertised host, and `broker`
    // (the compose service name) does not resolve on this machine. This checks the answer
    // itself; the Java tools below check that clients work through both listeners.
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(bootstrap).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let body: Vec<u8> = [0u8, 3, 0, 0, 0, 0, 0, 7, 0, 1, b't', 0, 0, 0, 0].to_vec();
    let mut req = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    req.extend_from_slice(&body);
    s.write_all(&req).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut resp = vec![0u8; usize::try_from(u32::from_be_bytes(len)).unwrap()];
    s.read_exact(&mut resp).unwrap();
    let be32 = |at: usize| i32::from_be_bytes(resp[at..at + 4].try_into().unwrap());
    assert_eq!(be32(0), 7, "correlation id");
    assert_eq!(be32(4), 1, "one broker");
    let host_len = usize::from(u16::from_be_bytes([resp[12], resp[13]]));
    let host = String::from_utf8(resp[14..14 + host_len].to_vec()).unwrap();
    (host, be32(14 + host_len))
}

fn java(
    class: &str,
    args: &[&str],
    stdin: Option<Vec<u8>>,
    hosts: &std::path::Path,
) -> std::process::Output {
    let mut cmd = Command::new("bash");
    cmd.arg(crate::harness::compat_dir().join("scripts/kafka-run-class.sh"))
        .arg(class)
        .args(args)
        // The PLAINTEXT listener advertises `broker`, the compose service name: resolve it
        // to this machine for the JVM only.
        .env(
            "KAFKA_HEAP_OPTS",
            format!("-Xmx512m -Djdk.net.hosts.file={}", hosts.display()),
        );
    run_with_timeout(cmd, stdin, Duration::from_secs(90))
}

#[test]
fn compose_environment_block_each_listener_advertises_itself() {
    let (_b, listening) = start(&[]);
    // Empty hosts bind every interface (dual-stack where IPv6 exists).
    let ports: Vec<&str> = listening
        .iter()
        .map(|a| a.rsplit(':').next().unwrap())
        .collect();
    assert_eq!(ports, vec!["9092", "19092"], "{listening:?}");
    assert_eq!(
        advertised_broker("127.0.0.1:9092"),
        ("localhost".into(), 9092)
    );
    assert_eq!(
        advertised_broker("127.0.0.1:19092"),
        ("broker".into(), 19092)
    );

    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost broker\n").unwrap();
    for bootstrap in ["localhost:9092", "broker:19092"] {
        let topic = unique_topic("env");
        let out = java(
            "org.apache.kafka.tools.ConsoleProducer",
            &["--bootstrap-server", bootstrap, "--topic", &topic],
            Some(b"one\ntwo\nthree\n".to_vec()),
            &hosts,
        );
        assert_success(&out, &format!("console producer via {bootstrap}"));
        let out = java(
            "org.apache.kafka.tools.consumer.ConsoleConsumer",
            &[
                "--bootstrap-server",
                bootstrap,
                "--topic",
                &topic,
                "--group",
                &format!("{topic}-g"),
                "--from-beginning",
                "--max-messages",
                "3",
                "--timeout-ms",
                "30000",
            ],
            None,
            &hosts,
        );
        assert_success(&out, &format!("console consumer via {bootstrap}"));
        let got = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            got.lines().collect::<Vec<_>>(),
            vec!["one", "two", "three"],
            "via {bootstrap}"
        );
    }
}

#[test]
fn bad_environment_value_names_the_variable() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .env("KAFKA_NUM_PARTITIONS", "lots")
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("KAFKA_NUM_PARTITIONS"), "{err}");
}

#[test]
fn bad_config_file_names_file_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("broken.toml");
    std::fs::write(&cfg, "[log]\nsegment_bytes = 5\n").unwrap();
    let out = Command::new(bin())
        .arg("--config")
        .arg(&cfg)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path().join("data"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken.toml") && err.contains("log.segment_bytes"),
        "{err}"
    );
}
