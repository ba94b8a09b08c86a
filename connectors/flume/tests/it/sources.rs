//! Tests: sources (netcat, netcatudp, exec, seq, syslog, http, spooldir, TAILDIR) and HTTP
//! monitoring, each through the real `sluice-flume` binary. Events are observed in the
//! logger sink's `Event: { headers:{..} body: .. }` lines or in `/metrics`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::Path;
use std::time::Duration;

use crate::harness::{free_port, poll_until, Agent};

const DEADLINE: Duration = Duration::from_secs(30);

/// One event as the logger sink printed it: headers text and (the first 16 bytes of) body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Logged {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Every event the logger sink logged in `log`, in order.
pub fn logged_events(log: &str) -> Vec<Logged> {
    let mut out = Vec::new();
    for line in log.lines() {
        let Some(i) = line.find("Event: { headers:{") else {
            continue;
        };
        let rest = &line[i + "Event: { headers:{".len()..];
        let Some(hend) = rest.find("} body: ") else {
            continue;
        };
        let mut headers = BTreeMap::new();
        for kv in rest[..hend].split(", ").filter(|s| !s.is_empty()) {
            if let Some((k, v)) = kv.split_once('=') {
                headers.insert(k.to_string(), v.to_string());
            }
        }
        let mut body = Vec::new();
        for tok in rest[hend + "} body: ".len()..].split(' ') {
            if tok.len() == 2 && tok.chars().all(|c| c.is_ascii_hexdigit()) {
                body.push(u8::from_str_radix(tok, 16).unwrap());
            } else {
                break;
            }
        }
        out.push(Logged { headers, body });
    }
    out
}

/// Bodies (as text) logged so far by all runs of `agent`.
pub fn bodies(agent: &Agent) -> Vec<String> {
    logged_events(&agent.log())
        .iter()
        .map(Logged::text)
        .collect()
}

/// Wait until the logger sink logged `n` events in all; returns them.
pub fn wait_events(agent: &Agent, n: usize) -> Vec<Logged> {
    poll_until(DEADLINE, &format!("{n} logged events"), || {
        let ev = logged_events(&agent.log());
        (ev.len() >= n).then_some(ev)
    })
}

/// A source `r1` of the given properties → memory `c1` → logger `k1`, agent `a1`.
pub fn to_logger(source_props: &str) -> String {
    format!(
        "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n\
         {source_props}\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\na1.channels.c1.capacity = 10000\na1.channels.c1.transactionCapacity = 1000\n\
         a1.sinks.k1.type = logger\na1.sinks.k1.channel = c1\n"
    )
}

/// A line-oriented TCP client with a read deadline.
pub struct LineClient {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl LineClient {
    pub fn connect(port: u16) -> LineClient {
        let s = poll_until(DEADLINE, "connect", || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        LineClient {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
        }
    }

    pub fn send(&mut self, text: &str) {
        self.writer.write_all(text.as_bytes()).unwrap();
    }

    /// The next reply line (with its `\n`), or "" at end of stream.
    pub fn reply(&mut self) -> String {
        let mut s = String::new();
        self.reader.read_line(&mut s).unwrap();
        s
    }
}

/// A plain HTTP/1.1 request; returns status, headers (lower-case names) and body.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, BTreeMap<String, String>, Vec<u8>) {
    let mut s = poll_until(DEADLINE, "http connect", || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    });
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no header end");
    let head = String::from_utf8_lossy(&resp[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let hdrs = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, hdrs, resp[split + 4..].to_vec())
}

/// `/metrics` of an agent's HTTP monitoring, parsed.
pub fn metrics(port: u16) -> serde_json::Value {
    let (status, _, body) = http(port, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    serde_json::from_slice(&body).unwrap()
}

fn count(bodies: &[String], b: &str) -> usize {
    bodies.iter().filter(|x| x.as_str() == b).count()
}

#[test]
fn netcat_acks_each_line_and_logs_the_events() {
    let port = free_port();
    let mut a = Agent::start(
        &to_logger(&format!("a1.sources.r1.type = netcat\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = {port}\n")),
        "a1",
        &[],
    );
    a.wait_for_log("netcat listening on", DEADLINE);
    let mut c = LineClient::connect(port);
    c.send("hello\n");
    assert_eq!(c.reply(), "OK\n");
    c.send("world\r\n");
    assert_eq!(c.reply(), "OK\n");
    let ev = wait_events(&a, 2);
    assert_eq!(ev[0].body, b"hello");
    // The `\r` of a CRLF line stays in the body, as in Flume.
    assert_eq!(ev[1].body, b"world\r");
}

#[test]
fn netcat_overlong_line_is_refused_and_the_connection_closed() {
    let port = free_port();
    let mut a = Agent::start(
        &to_logger(&format!(
            "a1.sources.r1.type = netcat\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = {port}\na1.sources.r1.max-line-length = 10\n"
        )),
        "a1",
        &[],
    );
    a.wait_for_log("netcat listening on", DEADLINE);
    let mut c = LineClient::connect(port);
    c.send("123456789\n");
    assert_eq!(c.reply(), "OK\n", "9 chars + newline fit in 10");
    c.send("0123456789abc\nnext\n");
    assert_eq!(
        c.reply(),
        "FAILED: Event exceeds the maximum length (10 chars, including newline)\n"
    );
    assert_eq!(c.reply(), "", "the connection is closed after the error");
    let ev = wait_events(&a, 1);
    assert_eq!(bodies(&a), vec!["123456789"], "{ev:?}");
}

#[test]
fn netcat_serves_concurrent_clients_and_reports_channel_failures() {
    let port = free_port();
    // A channel with room for three events and no sink: the fourth line is refused at once.
    let config = format!(
        "a1.sources = r1\na1.channels = c1\n\
         a1.sources.r1.type = netcat\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = {port}\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\na1.channels.c1.capacity = 3\na1.channels.c1.transactionCapacity = 3\na1.channels.c1.keep-alive = 0\n"
    );
    let mut a = Agent::start(&config, "a1", &[]);
    a.wait_for_log("netcat listening on", DEADLINE);
    let mut c1 = LineClient::connect(port);
    let mut c2 = LineClient::connect(port);
    // Both connections are open at once and served independently.
    c1.send("from one\n");
    c2.send("from two\n");
    assert_eq!(c2.reply(), "OK\n");
    assert_eq!(c1.reply(), "OK\n");
    c2.send("again two\n");
    assert_eq!(c2.reply(), "OK\n");
    c1.send("overflow\n");
    let r = c1.reply();
    assert!(r.starts_with("FAILED: ") && r.contains("full"), "{r:?}");
}

#[test]
fn netcatudp_turns_each_datagram_into_an_event() {
    let port = free_port();
    let mut a = Agent::start(
        &to_logger(&format!(
            "a1.sources.r1.type = netcatudp\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = {port}\na1.sources.r1.remoteAddressHeader = from\n"
        )),
        "a1",
        &[],
    );
    a.wait_for_log("netcatudp listening on", DEADLINE);
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(b"udp-one\nignored", ("127.0.0.1", port)).unwrap();
    let ev = wait_events(&a, 1);
    assert_eq!(ev[0].body, b"udp-one");
    assert_eq!(
        ev[0].headers["from"],
        format!("/127.0.0.1:{}", s.local_addr().unwrap().port())
    );
}

#[test]
fn exec_tail_follows_a_file_the_test_appends_to() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    fs::write(&log, "").unwrap();
    let mut a = Agent::start(
        &to_logger(&format!(
            "a1.sources.r1.type = exec\na1.sources.r1.command = tail -n +1 -F {}\na1.sources.r1.batchTimeout = 200\n",
            log.display()
        )),
        "a1",
        &[],
    );
    a.wait_for_log("exec running command", DEADLINE);
    let mut f = fs::OpenOptions::new().append(true).open(&log).unwrap();
    for i in 0..25 {
        writeln!(f, "tail-{i:02}").unwrap();
    }
    f.flush().unwrap();
    // 20 go at batchSize, the last 5 at batchTimeout.
    let ev = wait_events(&a, 25);
    let got: Vec<String> = ev.iter().map(Logged::text).collect();
    let want: Vec<String> = (0..25).map(|i| format!("tail-{i:02}")).collect();
    assert_eq!(got, want);
}

#[test]
fn exec_with_shell_runs_the_command_through_it() {
    let mut a = Agent::start(
        &to_logger("a1.sources.r1.type = exec\na1.sources.r1.shell = /bin/sh -c\na1.sources.r1.command = echo one; echo two | tr o 0\n"),
        "a1",
        &[],
    );
    let ev = wait_events(&a, 2);
    assert_eq!(
        ev.iter().map(Logged::text).collect::<Vec<_>>(),
        vec!["one", "tw0"]
    );
    a.wait_for_log("exited with 0", DEADLINE);
    a.wait_for_log("restart is false", DEADLINE);
}

#[test]
fn exec_restart_runs_the_command_again() {
    let dir = tempfile::tempdir().unwrap();
    let counter = dir.path().join("runs");
    let mut a = Agent::start(
        &to_logger(&format!(
            "a1.sources.r1.type = exec\na1.sources.r1.shell = /bin/sh -c\n\
             a1.sources.r1.command = echo x >> {c}; echo run-$(wc -l < {c})\n\
             a1.sources.r1.restart = true\na1.sources.r1.restartThrottle = 50\n",
            c = counter.display()
        )),
        "a1",
        &[],
    );
    let ev = wait_events(&a, 3);
    assert_eq!(
        ev[..3].iter().map(Logged::text).collect::<Vec<_>>(),
        vec!["run-1", "run-2", "run-3"]
    );
    a.wait_for_log("restarting", DEADLINE);
}

#[test]
fn seq_stops_after_total_events() {
    let mut a = Agent::start(
        &to_logger("a1.sources.r1.type = seq\na1.sources.r1.totalEvents = 5\na1.sources.r1.batchSize = 2\n"),
        "a1",
        &[],
    );
    a.wait_for_log("generated all 5 events", DEADLINE);
    let ev = wait_events(&a, 5);
    assert_eq!(
        ev.iter().map(Logged::text).collect::<Vec<_>>(),
        vec!["0", "1", "2", "3", "4"]
    );
    // Nothing beyond: stop the agent (the sink drains) and count again.
    a.terminate(DEADLINE);
    assert_eq!(bodies(&a).len(), 5);
}

#[test]
fn syslog_tcp_and_udp_parse_headers() {
    let tcp = free_port();
    let udp = free_port();
    let config = format!(
        "a1.sources = t u\na1.channels = c1\na1.sinks = k1\n\
         a1.sources.t.type = syslogtcp\na1.sources.t.host = 127.0.0.1\na1.sources.t.port = {tcp}\na1.sources.t.channels = c1\n\
         a1.sources.u.type = syslogudp\na1.sources.u.host = 127.0.0.1\na1.sources.u.port = {udp}\na1.sources.u.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.sinks.k1.type = logger\na1.sinks.k1.channel = c1\n"
    );
    let mut a = Agent::start(&config, "a1", &[]);
    a.wait_for_log("syslogtcp listening on", DEADLINE);
    a.wait_for_log("syslogudp listening on", DEADLINE);
    let mut c = LineClient::connect(tcp);
    c.send("<13>Jun  3 11:11:11 myhost tcp-body\n");
    wait_events(&a, 1);
    c.send("not syslog\n");
    wait_events(&a, 2);
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(
        b"<165>1 2003-10-11T22:14:15.003Z mymachine udp-body",
        ("127.0.0.1", udp),
    )
    .unwrap();
    let ev = wait_events(&a, 3);
    let h = &ev[0].headers;
    assert_eq!(ev[0].body, b"tcp-body");
    assert_eq!(
        (
            h["Facility"].as_str(),
            h["Severity"].as_str(),
            h["host"].as_str()
        ),
        ("1", "5", "myhost")
    );
    assert!(h["timestamp"].parse::<i64>().is_ok(), "{h:?}");
    assert!(!h.contains_key("flume.syslog.status"));
    assert_eq!(ev[1].headers["flume.syslog.status"], "Invalid");
    assert_eq!(ev[1].body, b"not syslog");
    let h = &ev[2].headers;
    assert_eq!(ev[2].body, b"udp-body");
    assert_eq!(
        (
            h["Facility"].as_str(),
            h["Severity"].as_str(),
            h["host"].as_str()
        ),
        ("20", "5", "mymachine")
    );
    assert_eq!(h["version"], "1");
}

#[test]
fn multiport_syslog_sets_the_port_header() {
    let (p1, p2) = (free_port(), free_port());
    let mut a = Agent::start(
        &to_logger(&format!(
            "a1.sources.r1.type = multiport_syslogtcp\na1.sources.r1.host = 127.0.0.1\na1.sources.r1.ports = {p1} {p2}\na1.sources.r1.portHeader = port\n"
        )),
        "a1",
        &[],
    );
    a.wait_for_log(
        &format!("multiport_syslogtcp listening on 127.0.0.1:{p2}"),
        DEADLINE,
    );
    LineClient::connect(p1).send("<13>1 2003-10-11T22:14:15Z h1 one\n");
    wait_events(&a, 1);
    LineClient::connect(p2).send("<13>1 2003-10-11T22:14:15Z h2 two\n");
    let ev = wait_events(&a, 2);
    assert_eq!(
        (
            ev[0].text(),
            ev[0].headers["port"].clone(),
            ev[0].headers["host"].clone()
        ),
        ("one".into(), p1.to_string(), "h1".into())
    );
    assert_eq!(
        (ev[1].text(), ev[1].headers["port"].clone()),
        ("two".into(), p2.to_string())
    );
}

#[test]
fn http_source_answers_with_flumes_status_codes() {
    let port = free_port();
    let mport = free_port();
    // Room for two events and no sink: a third is refused by the channel (503).
    let config = format!(
        "a1.sources = r1\na1.channels = c1\n\
         a1.sources.r1.type = http\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = {port}\na1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\na1.channels.c1.capacity = 2\na1.channels.c1.transactionCapacity = 2\na1.channels.c1.keep-alive = 0\n"
    );
    let mut a = Agent::start(
        &config,
        "a1",
        &[
            "-Dflume.monitoring.type=http",
            &format!("-Dflume.monitoring.port={mport}"),
        ],
    );
    a.wait_for_log("http listening on", DEADLINE);
    let json = [("Content-Type", "application/json")];
    let (s, _, _) = http(
        port,
        "POST",
        "/",
        &json,
        br#"[{"headers":{"h":"v"},"body":"one"}]"#,
    );
    assert_eq!(s, 200);
    // GET is handled like POST.
    let (s, _, _) = http(port, "GET", "/", &json, br#"[{"body":"two"}]"#);
    assert_eq!(s, 200);
    let (s, _, body) = http(port, "POST", "/", &json, br#"{"body":"not an array"}"#);
    assert_eq!(s, 400, "{}", String::from_utf8_lossy(&body));
    let (s, _, _) = http(port, "POST", "/", &json, b"[{\"body\":");
    assert_eq!(s, 400);
    let (s, _, _) = http(
        port,
        "POST",
        "/",
        &[("Content-Type", "application/json; charset=ISO-8859-1")],
        b"[]",
    );
    assert_eq!(s, 500);
    let (s, _, _) = http(port, "POST", "/", &json, br#"[{"body":"three"}]"#);
    assert_eq!(s, 503);
    let m = metrics(mport);
    assert_eq!(m["CHANNEL.c1"]["ChannelSize"], "2");
    assert_eq!(m["SOURCE.r1"]["AppendBatchAcceptedCount"], "2");
    assert_eq!(m["SOURCE.r1"]["AppendBatchReceivedCount"], "3");
    assert_eq!(m["SOURCE.r1"]["EventReadFail"], "3");
    assert_eq!(m["SOURCE.r1"]["ChannelWriteFail"], "1");
}

fn write_spool_file(dir: &Path, staging: &Path, name: &str, lines: &[String]) {
    // Files must appear complete: write elsewhere, then rename into the spool dir.
    let tmp = staging.join(name);
    fs::write(
        &tmp,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    fs::rename(&tmp, dir.join(name)).unwrap();
}

#[test]
fn spooldir_delivers_every_line_once_and_completes_files() {
    let spool = tempfile::tempdir().unwrap();
    let staging = tempfile::tempdir().unwrap();
    let mut want = Vec::new();
    for f in 0..3 {
        let lines: Vec<String> = (0..40).map(|i| format!("f{f}-{i:02}")).collect();
        want.extend(lines.clone());
        write_spool_file(
            spool.path(),
            staging.path(),
            &format!("file{f}.log"),
            &lines,
        );
    }
    let mut a = Agent::start(
        &to_logger(&format!(
            "a1.sources.r1.type = spooldir\na1.sources.r1.spoolDir = {}\na1.sources.r1.batchSize = 7\na1.sources.r1.basenameHeader = true\n",
            spool.path().display()
        )),
        "a1",
        &[],
    );
    a.wait_for_log("spooldir watching", DEADLINE);
    // A file dropped in while the agent runs is picked up too.
    let late: Vec<String> = (0..5).map(|i| format!("late-{i}")).collect();
    want.extend(late.clone());
    write_spool_file(spool.path(), staging.path(), "late.log", &late);
    let ev = wait_events(&a, want.len());
    let got: Vec<String> = ev.iter().map(Logged::text).collect();
    for w in &want {
        assert_eq!(count(&got, w), 1, "{w} delivered {} times", count(&got, w));
    }
    assert_eq!(got.len(), want.len());
    assert!(ev
        .iter()
        .any(|e| e.headers.get("basename").map(String::as_str) == Some("late.log")));
    poll_until(DEADLINE, "all files completed", || {
        let names: Vec<String> = fs::read_dir(spool.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        (names.len() == 4 && names.iter().all(|n| n.ends_with(".COMPLETED"))).then_some(())
    });
}

#[test]
fn taildir_position_file_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).unwrap();
    let pos = dir.path().join("state").join("taildir_position.json");
    let file = logs.join("app.log");
    let append = |range: std::ops::Range<u32>| {
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
            .unwrap();
        for i in range {
            writeln!(f, "line-{i:03}").unwrap();
        }
    };
    append(0..5);
    let mut a = Agent::start(
        &to_logger(&format!(
            "a1.sources.r1.type = TAILDIR\na1.sources.r1.filegroups = g1\n\
             a1.sources.r1.filegroups.g1 = {}/app.*\na1.sources.r1.headers.g1.group = one\n\
             a1.sources.r1.positionFile = {}\na1.sources.r1.fileHeader = true\n\
             a1.sources.r1.backoffSleepIncrement = 100\na1.sources.r1.maxBackoffSleep = 200\n",
            logs.display(),
            pos.display()
        )),
        "a1",
        &[],
    );
    let ev = wait_events(&a, 5);
    assert_eq!(ev[0].headers["group"], "one");
    assert_eq!(ev[0].headers["file"], file.display().to_string());
    append(5..8);
    wait_events(&a, 8);
    assert!(a.terminate(DEADLINE).success());
    let json: serde_json::Value = serde_json::from_str(&fs::read_to_string(&pos).unwrap()).unwrap();
    assert_eq!(json[0]["pos"], 8 * 9, "{json}");
    assert_eq!(json[0]["file"], file.display().to_string());
    // Written while the agent is down; read after the restart, nothing twice.
    append(8..12);
    a.restart();
    let ev = wait_events(&a, 12);
    let got: Vec<String> = ev.iter().map(Logged::text).collect();
    let want: Vec<String> = (0..12).map(|i| format!("line-{i:03}")).collect();
    assert_eq!(got, want);
    // Rotation: the old file is renamed (still matching app.*), a new one starts.
    fs::rename(&file, logs.join("app.1")).unwrap();
    append(12..14);
    let ev = wait_events(&a, 14);
    assert_eq!(ev.len(), 14, "{:?}", bodies(&a));
    assert_eq!(ev[13].text(), "line-013");
}

#[test]
fn monitoring_serves_counters_as_json() {
    let port = free_port();
    let mport = free_port();
    let mut a = Agent::start(
        &to_logger(&format!("a1.sources.r1.type = netcat\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = {port}\n")),
        "a1",
        &["-Dflume.monitoring.type=http", &format!("-Dflume.monitoring.port={mport}")],
    );
    a.wait_for_log("netcat listening on", DEADLINE);
    a.wait_for_log("HTTP monitoring listening on", DEADLINE);
    let mut c = LineClient::connect(port);
    for i in 0..3 {
        c.send(&format!("m{i}\n"));
        assert_eq!(c.reply(), "OK\n");
    }
    let m = poll_until(DEADLINE, "EventAcceptedCount 3 and drained", || {
        let m = metrics(mport);
        (m["SOURCE.r1"]["EventAcceptedCount"] == "3"
            && m["SINK.k1"]["EventDrainSuccessCount"] == "3")
            .then_some(m)
    });
    assert_eq!(m["SOURCE.r1"]["EventReceivedCount"], "3");
    assert_eq!(m["SOURCE.r1"]["Type"], "SOURCE");
    assert_eq!(m["CHANNEL.c1"]["EventPutSuccessCount"], "3");
    assert_eq!(m["CHANNEL.c1"]["ChannelCapacity"], "10000");
    let (s, h, _) = http(mport, "GET", "/metrics", &[], b"");
    assert_eq!(s, 200);
    assert!(h["content-type"].starts_with("application/json"), "{h:?}");
    assert_eq!(http(mport, "GET", "/", &[], b"").0, 200);
    assert_eq!(http(mport, "GET", "/nope", &[], b"").0, 404);
    assert_eq!(http(mport, "TRACE", "/metrics", &[], b"").0, 403);
}

#[test]
fn spooldir_resumes_mid_file_after_kill_9() {
    let spool = tempfile::tempdir().unwrap();
    let staging = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..25).map(|i| format!("r-{i:02}")).collect();
    write_spool_file(spool.path(), staging.path(), "big.log", &lines);
    // First run: no sink and room for 10 events, so two batches of 5 commit and the third
    // is refused again and again: the source is stuck mid-file.
    let mport = free_port();
    let stuck = format!(
        "a1.sources = r1\na1.channels = c1\n\
         a1.sources.r1.type = spooldir\na1.sources.r1.spoolDir = {}\na1.sources.r1.batchSize = 5\na1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\na1.channels.c1.capacity = 10\na1.channels.c1.transactionCapacity = 5\na1.channels.c1.keep-alive = 0\n",
        spool.path().display()
    );
    let mut a = Agent::start(
        &stuck,
        "a1",
        &[
            "-Dflume.monitoring.type=http",
            &format!("-Dflume.monitoring.port={mport}"),
        ],
    );
    poll_until(
        DEADLINE,
        "two batches committed and the third refused",
        || {
            let m = metrics(mport);
            (m["SOURCE.r1"]["AppendBatchAcceptedCount"] == "2"
                && m["SOURCE.r1"]["ChannelWriteFail"] != "0")
                .then_some(())
        },
    );
    a.kill9();
    // Second run drains to the logger. The memory channel's 10 events died with the
    // process; the source resumes at line 10 from its position file: nothing skipped, and
    // what was committed is not read again.
    fs::write(
        a.config_path(),
        to_logger(&format!(
            "a1.sources.r1.type = spooldir\na1.sources.r1.spoolDir = {}\n",
            spool.path().display()
        )),
    )
    .unwrap();
    a.restart();
    let ev = wait_events(&a, 15);
    let got: Vec<String> = ev.iter().map(Logged::text).collect();
    assert_eq!(got, lines[10..].to_vec());
    poll_until(DEADLINE, "file completed", || {
        spool
            .path()
            .join("big.log.COMPLETED")
            .exists()
            .then_some(())
    });
    assert_eq!(bodies(&a).len(), 15);
}
