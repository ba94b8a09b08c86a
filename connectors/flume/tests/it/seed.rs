//! Tests: the seed tutorial's configs (`tests/configs/seed-*.properties`), run as written,
//! only host and port substituted.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use crate::harness::{free_port, Agent};
use crate::sources::{wait_events, LineClient};

const DEADLINE: Duration = Duration::from_secs(30);

/// A seed fixture's text.
fn fixture(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/configs").join(name);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Seed config 1: netcat → memory → logger, with `## 中文` trailing comments on eight
/// values. Lines are sent as telnet sends them (CRLF), each is acknowledged, and each shows
/// up in the logger sink; the cut comments are reported with file, line and key.
#[test]
fn seed_1_netcat_to_logger() {
    let port = free_port();
    let config = fixture("seed-1.properties").replace("= localhost", "= 127.0.0.1").replace("44445", &port.to_string());
    let mut a = Agent::start(&config, "agent1", &[]);
    let file = a.config_path().display().to_string();
    a.wait_for_log("netcat listening on", DEADLINE);
    a.wait_for_log(
        &format!("{file}:10: agent1.sources.netcatSrc.port: trailing comment removed (Flume would keep it as part of the value)"),
        DEADLINE,
    );
    let mut c = LineClient::connect(port);
    c.send("hello flume\r\n");
    assert_eq!(c.reply(), "OK\n");
    c.send("second line\r\n");
    assert_eq!(c.reply(), "OK\n");
    let ev = wait_events(&a, 2);
    assert_eq!(ev[0].body, b"hello flume\r");
    assert_eq!(ev[1].body, b"second line\r");
    a.wait_for_log("body: 68 65 6C 6C 6F 20 66 6C 75 6D 65 0D", DEADLINE);
}
