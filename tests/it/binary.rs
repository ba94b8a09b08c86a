//! The `sluice` binary's start-up lines on stdout: `listening on ADDR` per listener, the
//! `http on http://ADDR/` line, then Kafka's readiness lines with the configured node id (Testcontainers' Kafka modules wait
//! for them), printed only once the listener accepts connections.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(30);

#[test]
fn prints_listening_then_kafka_readiness_lines_with_the_node_id() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("sluice.toml");
    std::fs::write(&conf, "[broker]\nnode_id = 7\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--config")
        .arg(&conf)
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .args(["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let end = Instant::now() + DEADLINE;
    let mut lines = Vec::new();
    while lines.last().map(String::as_str) != Some("Transitioning from RECOVERY to RUNNING") {
        match rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
            Ok(l) => lines.push(l),
            Err(e) => {
                let _ = child.kill();
                panic!("no readiness lines within {DEADLINE:?} ({e}): {lines:?}");
            }
        }
    }
    let addr = lines[0].strip_prefix("listening on ").map(str::to_string);
    // The listener is bound before the lines are printed: a connection is accepted now.
    let connected = addr
        .as_deref()
        .map(|a| std::net::TcpStream::connect(a).is_ok());
    let http = lines[1]
        .strip_prefix("http on http://")
        .and_then(|a| a.strip_suffix('/'))
        .map(|a| std::net::TcpStream::connect(a).is_ok());
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(http, Some(true), "{lines:?}");
    assert_eq!(
        &lines[2..],
        [
            "[KafkaServer id=7] started",
            "Kafka Server started",
            "Transitioning from RECOVERY to RUNNING"
        ],
        "{lines:?}"
    );
    assert_eq!(connected, Some(true), "{lines:?}");
}
