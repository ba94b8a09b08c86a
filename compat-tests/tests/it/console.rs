//! The broker's web console, judged by a real browser and real clients.
//!
//! - `console_pages_in_headless_chromium`: librdkafka puts known data in a broker (JSON,
//!   text and binary values with keys and headers, an aborted and a committed transaction,
//!   a group with committed offsets and lag, a live group with a member), then
//!   `compat-tests/python/console_test.py` loads every page in headless Chromium (Selenium)
//!   and asserts what it renders, produces a message, creates and deletes a topic and
//!   resets a group's offsets through the UI, with their confirmation dialogs. librdkafka
//!   then checks those changes: the message is consumed, Metadata shows the topics, and
//!   OffsetFetch the reset offsets. Screenshots of each page land in
//!   `<target dir>/test-artifacts/console-*.png` (the path is printed).
//! - `console_beyond_localhost_needs_sasl_users_and_applies_acls`: the HTTP listener on
//!   `0.0.0.0` (reached through 127.0.0.1): HTTP Basic against the broker's PLAIN and SCRAM
//!   users, 401 without or with wrong credentials, a user whose ACLs allow one topic sees only
//!   that one; without SASL users 403 (and `/metrics` still open), unless
//!   `http.console_anonymous` is set.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};

use crate::harness::{assert_success, compat_dir, run_with_timeout};
use crate::rk::{self, Rec};
use sluice_testkit::browser;

/// The browser script's whole run (page loads, a lag sample every 5 s, four UI actions).
const BROWSER_TIMEOUT: Duration = Duration::from_secs(300);

fn broker(http: &str, config: Option<&str>, args: &[&str]) -> sluice_testkit::Broker {
    let mut b = sluice_testkit::Broker::builder()
        .bin(sluice_testkit::sluice_bin_beside_test_exe())
        .temp_prefix("sluice-console-")
        .default_rust_log("info")
        .http(Some(http));
    if let Some(c) = config {
        b = b.config(c);
    }
    for a in args {
        b = b.arg(a);
    }
    b.start()
}

/// Consumes `consumer` in a thread until dropped, so its group membership stays alive, and
/// produces to topic `traffic` meanwhile, so the broker page's charts have rates to show.
struct Poller {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Poller {
    fn start(c: Arc<BaseConsumer>, addr: &str) -> Poller {
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let p = rk::producer(addr, &[]);
        let thread = std::thread::spawn(move || {
            let mut i = 0;
            while !s.load(Ordering::Relaxed) {
                rk::send(&p, "traffic", i, &Rec::kv("tick", "tock"));
                i += 1;
                p.poll(Duration::ZERO);
                let _ = c.poll(Duration::from_millis(100));
            }
            let _ = p.flush(Duration::from_secs(10));
        });
        Poller {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Commits `offsets` (`(topic, partition, offset)`) for `group` as a consumer that never
/// joins it (what `kafka-consumer-groups` and admin clients do for an empty group).
fn commit(addr: &str, group: &str, offsets: &[(&str, i32, i64)]) {
    let c = rk::consumer(addr, &[("group.id", group)]);
    let mut tpl = TopicPartitionList::new();
    for (t, p, o) in offsets {
        tpl.add_partition_offset(t, *p, Offset::Offset(*o)).unwrap();
    }
    c.commit(&tpl, CommitMode::Sync)
        .unwrap_or_else(|e| panic!("commit for {group}: {e}"));
}

fn committed(addr: &str, group: &str, topic: &str, partitions: i32) -> Vec<Offset> {
    let c = rk::consumer(addr, &[("group.id", group)]);
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = c
        .committed_offsets(tpl, rk::RPC_TIMEOUT)
        .expect("OffsetFetch");
    (0..partitions)
        .map(|p| got.find_partition(topic, p).unwrap().offset())
        .collect()
}

#[test]
fn console_pages_in_headless_chromium() {
    let python = browser::selenium_python();
    let b = broker("127.0.0.1:0", None, &[]);
    let addr = b.addr().to_string();
    let http = b.http_addr().expect("the broker printed its HTTP address");

    // Topics, made and filled by librdkafka.
    rk::create_topic_with(&addr, "orders", 3, &[("retention.ms", "86400000")]);
    rk::create_topic(&addr, "events", 1);
    rk::create_topic(&addr, "txn", 1);
    rk::create_topic(&addr, "doomed", 1);
    rk::create_topic(&addr, "traffic", 1);
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 60_000;
    let mut orders = Vec::new();
    for p in 0..3 {
        for i in 0..4 {
            orders.push(Rec {
                partition: Some(p),
                key: Some(format!("order-{p}-{i}").into_bytes()),
                value: Some(
                    format!(r#"{{"id": {}, "item": "widget", "qty": {i}}}"#, p * 100 + i)
                        .into_bytes(),
                ),
                headers: vec![("source".into(), Some(b"console-test".to_vec()))],
                timestamp: Some(t0 + i64::from(i) * 1000),
            });
        }
    }
    rk::produce_ok(&addr, "orders", &orders, &[]);
    let events = vec![
        Rec::kv("greeting", "hello console"),
        Rec {
            key: Some(b"blob".to_vec()),
            value: Some(vec![0xde, 0xad, 0xbe, 0xef, 0x00, 0x01]),
            headers: vec![("trace".into(), Some(vec![0xff, 0x00, 0x10]))],
            ..Rec::default()
        },
        Rec::kv("note", "third"),
    ];
    rk::produce_ok(&addr, "events", &events, &[]);
    // An aborted, then a committed transaction.
    let tp = rk::producer(&addr, &[("transactional.id", "console-txn")]);
    tp.init_transactions(rk::RPC_TIMEOUT).unwrap();
    tp.begin_transaction().unwrap();
    rk::send(&tp, "txn", 0, &Rec::kv("t", "aborted-record"));
    tp.flush(rk::RPC_TIMEOUT).unwrap();
    tp.abort_transaction(rk::RPC_TIMEOUT).unwrap();
    tp.begin_transaction().unwrap();
    rk::send(&tp, "txn", 1, &Rec::kv("t", "committed-record"));
    tp.commit_transaction(rk::RPC_TIMEOUT).unwrap();
    drop(tp);

    // An empty group with lag 3 on each orders partition.
    commit(
        &addr,
        "billing",
        &[("orders", 0, 1), ("orders", 1, 1), ("orders", 2, 1)],
    );
    // A live group: one member holding events-0, committed at 1.
    let live = Arc::new(rk::consumer(
        &addr,
        &[
            ("group.id", "live-readers"),
            ("client.id", "console-live"),
            ("session.timeout.ms", "30000"),
        ],
    ));
    live.subscribe(&["events"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    while live.assignment().unwrap().count() == 0 {
        assert!(Instant::now() < deadline, "live-readers got no assignment");
        let _ = live.poll(Duration::from_millis(100));
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("events", 0, Offset::Offset(1))
        .unwrap();
    live.commit(&tpl, CommitMode::Sync).unwrap();
    let poller = Poller::start(Arc::clone(&live), &addr);

    let spec = serde_json_spec(http, t0);
    let dir = tempfile::tempdir().unwrap();
    let spec_path = dir.path().join("spec.json");
    std::fs::write(&spec_path, spec).unwrap();
    let out_dir = browser::artifacts_dir();
    println!("console screenshots: {}/console-*.png", out_dir.display());
    let mut cmd = Command::new(&python);
    cmd.arg(compat_dir().join("python/console_test.py"))
        .arg("browser")
        .arg(&spec_path)
        .arg(&out_dir)
        .env("PYTHONUNBUFFERED", "1");
    let out = run_with_timeout(cmd, None, BROWSER_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    println!("{stdout}");
    assert_success(&out, "console_test.py browser");
    assert!(stdout.trim_end().ends_with("OK"), "{stdout}");
    drop(poller);
    drop(live);

    // What the UI did, as real clients see it.
    let produced = stdout
        .lines()
        .find_map(|l| l.strip_prefix("PRODUCED "))
        .expect("the script printed where it produced");
    let (p, o) = produced.split_once(' ').unwrap();
    let (p, o): (i32, i64) = (p.parse().unwrap(), o.parse().unwrap());
    let got = rk::consume(&addr, "events", p, Offset::Offset(o), 1);
    assert_eq!(got[0].rec.key.as_deref(), Some(&b"ui-key"[..]));
    assert_eq!(got[0].rec.value.as_deref(), Some(&br#"{"from": "ui"}"#[..]));
    assert_eq!(
        got[0].rec.headers,
        vec![("ui-header".to_string(), Some(b"yes".to_vec()))]
    );
    assert_eq!(rk::partition_count(&addr, "ui-created"), Some(2));
    assert_eq!(rk::partition_count(&addr, "doomed"), None);
    assert_eq!(
        committed(&addr, "billing", "orders", 3),
        vec![Offset::Offset(0); 3],
        "billing's offsets after the reset to earliest"
    );
}

/// The browser script's expectations, from the data above.
fn serde_json_spec(http: SocketAddr, t0: i64) -> String {
    format!(
        r#"{{
  "url": "http://{http}",
  "topics": [
    {{"name": "orders", "partitions": 3, "messages": 12}},
    {{"name": "events", "partitions": 1, "messages": 3}},
    {{"name": "txn", "partitions": 1, "messages": 4}},
    {{"name": "doomed", "partitions": 1, "messages": 0}}
  ],
  "orders": {{
    "name": "orders", "partitions": 3, "high_watermarks": [4, 4, 4],
    "configs": {{"retention.ms": "86400000", "cleanup.policy": "delete"}},
    "first_key": "order-0-0",
    "timestamp_of_offset_2": {ts2}
  }},
  "events": {{
    "name": "events", "text_value": "hello console",
    "binary_value_hex": "de ad be ef 00 01", "binary_header_hex": "ff 00 10"
  }},
  "txn": {{"name": "txn", "aborted": "aborted-record", "committed": "committed-record"}},
  "groups": [
    {{"id": "billing", "state": "Empty", "lag": 9, "members": 0}},
    {{"id": "live-readers", "state": "Stable", "lag": 2, "members": 1}}
  ],
  "live_group": {{"id": "live-readers", "client_id": "console-live", "topic": "events", "committed": 1, "lag": 2}},
  "produce": {{"key": "ui-key", "value": "{{\"from\": \"ui\"}}", "header_key": "ui-header", "header_value": "yes"}},
  "create": {{"name": "ui-created", "partitions": 2}},
  "delete": "doomed",
  "reset": {{"id": "billing", "lag_after": 12}}
}}"#,
        ts2 = t0 + 2000
    )
}

/// One HTTP/1.1 GET: (status, head, body).
fn get(addr: SocketAddr, path: &str, basic: Option<(&str, &str)>) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let auth = basic
        .map(|(u, p)| {
            format!(
                "Authorization: Basic {}\r\n",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        })
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, head.to_string(), body.to_string())
}

/// PLAIN users, as Kafka's documentation writes them.
const PLAIN_JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";"#;

#[test]
fn console_beyond_localhost_needs_sasl_users_and_applies_acls() {
    let config = format!(
        "[security]\n\
         \"listener.name.sasl_plaintext.plain.sasl.jaas.config\" = '{PLAIN_JAAS}'\n\
         \"sluice.add.scram\" = \"SCRAM-SHA-256=[name=carol,password=carol-secret]\"\n\
         \"authorizer.class.name\" = \"org.apache.kafka.metadata.authorizer.StandardAuthorizer\"\n\
         \"super.users\" = \"User:admin;User:ANONYMOUS\"\n"
    );
    let b = broker(
        "0.0.0.0:0",
        Some(&config),
        &["--listen", "SASL_PLAINTEXT://127.0.0.1:0"],
    );
    let bound = b.http_addr().expect("HTTP address");
    assert!(bound.ip().is_unspecified(), "bound to {bound}");
    let http = SocketAddr::from(([127, 0, 0, 1], bound.port()));
    // The PLAINTEXT listener is User:ANONYMOUS, a super user here, for the setup.
    rk::create_topic(b.addr(), "visible", 1);
    rk::create_topic(b.addr(), "hidden", 1);
    rk::produce_ok(b.addr(), "hidden", &[Rec::kv("k", "secret")], &[]);
    let mut cmd = Command::new(browser::selenium_python());
    cmd.arg(compat_dir().join("python/console_test.py")).args([
        "grant",
        b.addr(),
        "User:alice",
        "visible",
    ]);
    let out = run_with_timeout(cmd, None, Duration::from_secs(60));
    assert_success(&out, "console_test.py grant");

    // No credentials, wrong ones: 401 with a Basic challenge.
    let (status, head, _) = get(http, "/api/topics", None);
    assert_eq!(status, 401, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: basic"),
        "{head}"
    );
    assert_eq!(get(http, "/", None).0, 401);
    let (status, _, body) = get(http, "/api/topics", Some(("alice", "wrong-password")));
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("SASL_AUTHENTICATION_FAILED"), "{body}");
    assert_eq!(get(http, "/api/topics", Some(("nobody", "x"))).0, 401);
    assert_eq!(get(http, "/api/topics", Some(("carol", "nope"))).0, 401);
    let log =
        sluice_testkit::poll_until(Duration::from_secs(10), "the failed-login log line", || {
            let l = b.stderr();
            (l.contains("web console: failed authentication") && l.contains("alice")).then_some(l)
        });
    assert!(
        !log.contains("wrong-password"),
        "a password reached the log"
    );

    // alice (PLAIN) may DESCRIBE and READ `visible` only.
    let alice = Some(("alice", "alice-secret"));
    let (status, _, body) = get(http, "/api/topics", alice);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"visible\""), "{body}");
    assert!(
        !body.contains("\"hidden\""),
        "alice sees a topic she may not describe: {body}"
    );
    let (status, _, body) = get(http, "/api/topics/hidden/messages?partition=0", alice);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("TOPIC_AUTHORIZATION_FAILED"), "{body}");
    let (status, _, body) = get(http, "/api/topics/visible/messages?partition=0", alice);
    assert_eq!(status, 200, "{body}");
    let (_, _, body) = get(http, "/api/session", alice);
    assert!(body.contains("User:alice"), "{body}");

    // carol (SCRAM-SHA-256, no ACLs): logged in, sees nothing; admin (super user) sees all.
    let (status, _, body) = get(http, "/api/topics", Some(("carol", "carol-secret")));
    assert_eq!(status, 200, "{body}");
    assert!(
        !body.contains("\"visible\"") && !body.contains("\"hidden\""),
        "{body}"
    );
    let (status, _, body) = get(http, "/api/topics", Some(("admin", "admin-secret")));
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"visible\"") && body.contains("\"hidden\""),
        "{body}"
    );
    // The page itself, after login.
    let (status, _, body) = get(http, "/", alice);
    assert_eq!(status, 200);
    assert!(body.contains("console.js"), "{body}");
    // /metrics stays open, as a JMX exporter's is.
    assert_eq!(get(http, "/metrics", None).0, 200);
    drop(b);

    // Beyond localhost without SASL users: 403, with a page that says why.
    let b = broker("0.0.0.0:0", None, &[]);
    let http = SocketAddr::from(([127, 0, 0, 1], b.http_addr().unwrap().port()));
    let (status, _, body) = get(http, "/", None);
    assert_eq!(status, 403);
    assert!(
        body.contains("SASL users") && body.contains("console_anonymous"),
        "{body}"
    );
    let (status, _, body) = get(http, "/api/topics", Some(("alice", "alice-secret")));
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("CONSOLE_DISABLED"), "{body}");
    assert_eq!(get(http, "/metrics", None).0, 200);
    drop(b);

    // ... unless the operator opts in, in the config file or with the flag (also
    // SLUICE_HTTP_CONSOLE_ANONYMOUS, for a development container).
    for (config, args) in [
        (Some("[http]\nconsole_anonymous = true\n"), &[][..]),
        (None, &["--http-console-anonymous", "true"][..]),
    ] {
        let b = broker("0.0.0.0:0", config, args);
        let http = SocketAddr::from(([127, 0, 0, 1], b.http_addr().unwrap().port()));
        let (status, _, body) = get(http, "/api/session", None);
        assert_eq!(status, 200, "{body}");
        assert!(
            body.contains("\"anonymous\"") && body.contains("User:ANONYMOUS"),
            "{body}"
        );
    }
}
