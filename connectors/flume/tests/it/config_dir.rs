//! Tests: the repository's `config/flume/` files run as they are. Each agent is started
//! exactly as the file's header says (`sluice-flume agent --conf config/flume --conf-file
//! config/flume/<file> --name agent1 -Dflume.root.logger=INFO,console`, from the
//! repository root) on the file unchanged, and data is pushed through it wherever that is
//! self-contained. The files use fixed ports (44445, 44446, 9092) and paths under
//! `/tmp/sluice-flume`, so everything runs in one test function, one agent after another.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use sluice_client::{Client, ClientConfig};
use sluice_flume_rpc::{ClientOptions, SparkSinkClient};
use tempfile::TempDir;

use crate::harness::{
    append_lines, eventually, flume_bin, poll_until, sigterm_and_wait, wait_for_logged, wait_until,
};
use crate::kafka::{wait_topic, Read};
use crate::sinks::{files_under, read_sequence_file};
use crate::sources::logged_events;

const WAIT: Duration = Duration::from_secs(30);

/// Where the configs put everything they write.
const OUT: &str = "/tmp/sluice-flume";

/// The netcat sources' port, and the avro sink's / SparkSink's.
const NETCAT: u16 = 44445;
const AVRO: u16 = 44446;

/// The port `pipeline.properties` expects a Kafka broker on.
const KAFKA: u16 = 9092;

/// The files this test runs: all the `.properties` files in `config/flume/`.
const FILES: &[&str] = &[
    "pipeline.properties",
    "seed-1-netcat-logger.properties",
    "seed-2-netcat-hdfs.properties",
    "seed-3-exec-file-hdfs.properties",
    "seed-4-netcat-avro.properties",
    "seed-5-netcat-sparksink.properties",
];

/// The repository root (the configs' documented working directory).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn config_text(file: &str) -> String {
    let p = repo_root().join("config/flume").join(file);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The 1-based line of `file` that starts with `key`.
fn line_of(file: &str, key: &str) -> usize {
    config_text(file)
        .lines()
        .position(|l| l.starts_with(key))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("config/flume/{file} has no line starting with {key:?}"))
}

/// Waits until `port` on 127.0.0.1 can be bound, and fails the test, naming the port and
/// the file, if something still holds it after two minutes. The configs' fixed ports lie in
/// Linux's ephemeral range (32768-60999), so a neighbouring test's listener on port 0 or an
/// outgoing connection may hold one for a while; those go away, a stray server does not.
fn require_free(port: u16, file: &str) {
    let mut last = None;
    let free = wait_until(Duration::from_secs(120), || {
        match TcpListener::bind(("127.0.0.1", port)) {
            Ok(_) => true,
            Err(e) => {
                last = Some(e);
                false
            }
        }
    });
    if !free {
        panic!(
            "port {port} on 127.0.0.1 stayed taken for 2 minutes ({:?}); config/flume/{file} \
             uses it as a fixed port: stop whatever listens there and run this test again",
            last
        );
    }
}

/// An agent started from the repository root on a file of `config/flume/` (or, for a
/// test's own helper agent, on a file elsewhere); its output in a temp file, killed on
/// drop (the output printed if the test failed).
struct RepoAgent {
    child: Option<Child>,
    file: String,
    out: TempDir,
}

impl RepoAgent {
    /// `sluice-flume agent --conf config/flume --conf-file <conf_file> --name agent1
    /// -Dflume.root.logger=INFO,console`, run in the repository root.
    fn start(conf_file: &str) -> RepoAgent {
        let out = tempfile::Builder::new()
            .prefix("sluice-flume-config-dir-")
            .tempdir()
            .unwrap();
        let log = File::create(out.path().join("agent.log")).unwrap();
        let child = Command::new(flume_bin())
            .current_dir(repo_root())
            .args(["agent", "--conf", "config/flume", "--conf-file", conf_file])
            .args(["--name", "agent1", "-Dflume.root.logger=INFO,console"])
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", flume_bin().display()));
        RepoAgent {
            child: Some(child),
            file: conf_file.to_string(),
            out,
        }
    }

    /// An agent on `config/flume/<file>`, waiting until its log holds `ready`.
    fn config(file: &str, ready: &[&str]) -> RepoAgent {
        let mut a = RepoAgent::start(&format!("config/flume/{file}"));
        for r in ready {
            a.wait_for_log(r);
        }
        a
    }

    fn log(&self) -> String {
        fs::read_to_string(self.out.path().join("agent.log")).unwrap_or_default()
    }

    /// Waits until the log holds `needle`; panics with the log if the agent exits first.
    fn wait_for_log(&mut self, needle: &str) {
        let mut child = self.child.take();
        let waited = wait_for_logged(child.as_mut(), || self.log(), needle, WAIT);
        self.child = child;
        if let Err(why) = waited {
            panic!("agent on {} {why}:\n{}", self.file, self.log());
        }
    }

    /// SIGTERM and the exit status; the agent drains its channels and closes its files.
    fn terminate(&mut self) -> ExitStatus {
        let mut c = self.child.take().unwrap();
        sigterm_and_wait(&mut c, WAIT).unwrap_or_else(|| {
            panic!(
                "agent on {} did not exit within {WAIT:?} of SIGTERM:\n{}",
                self.file,
                self.log()
            )
        })
    }

    /// Stops the agent and checks that it stopped cleanly.
    fn stop(mut self) -> String {
        let status = self.terminate();
        assert!(
            status.success(),
            "agent on {} exited with {status}:\n{}",
            self.file,
            self.log()
        );
        self.log()
    }
}

impl Drop for RepoAgent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if thread::panicking() {
            eprintln!("----- sluice-flume on {} -----\n{}", self.file, self.log());
        }
    }
}

/// Sends `lines` to the netcat source on localhost:44445 (as the headers' `nc localhost
/// 44445`), each answered `OK`.
fn netcat_send(lines: &[String]) {
    let s = poll_until(WAIT, "the netcat source on localhost:44445", || {
        TcpStream::connect(("localhost", NETCAT)).ok()
    });
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    for l in lines {
        w.write_all(format!("{l}\n").as_bytes()).unwrap();
        let mut reply = String::new();
        r.read_line(&mut reply).unwrap();
        assert_eq!(reply, "OK\n", "netcat reply to {l:?}");
    }
}

/// Lines short enough for the logger sink, which prints only the first 16 bytes of a body.
fn lines(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix} {i}")).collect()
}

/// Removes `dir` and everything in it; absent is fine.
fn remove_all(dir: &Path) {
    match fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => panic!("cannot remove {}: {e}", dir.display()),
    }
}

/// The bodies in a SequenceFile the hdfs sink may still be writing: `None` while it is
/// too short to parse (an open file can end mid-header or mid-record).
fn sequence_bodies_so_far(bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    let int = |at: usize| Some(i32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    // "SEQ" 6, two class names, no compression, no metadata (as `read_sequence_file`).
    let header = 4 + 1 + 33 + 1 + 34 + 6;
    let mut pos = header + 16;
    bytes.get(..pos)?;
    let mut out = Vec::new();
    while pos < bytes.len() {
        let len = int(pos)?;
        if len == -1 {
            pos += 20;
            continue;
        }
        let vlen = usize::try_from(int(pos + 16)?).ok()?;
        out.push(bytes.get(pos + 20..pos + 20 + vlen)?.to_vec());
        pos += 20 + vlen;
    }
    Some(out)
}

/// While the agent runs: the bodies of every SequenceFile record under `dir`, sorted, or
/// `None` while a file is mid-write.
fn sequence_bodies_now(dir: &Path) -> Option<Vec<String>> {
    let mut v = Vec::new();
    for f in files_under(dir) {
        for body in sequence_bodies_so_far(&fs::read(f).ok()?)? {
            v.push(String::from_utf8(body).ok()?);
        }
    }
    v.sort();
    Some(v)
}

/// After the agent stopped: the bodies of every SequenceFile record under `dir`, sorted,
/// each file parsed strictly.
fn sequence_bodies(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = files_under(dir)
        .iter()
        .flat_map(|p| read_sequence_file(&fs::read(p).unwrap()))
        .map(|(_, body)| String::from_utf8(body).unwrap())
        .collect();
    v.sort();
    v
}

/// After the agent stopped: every file under `dir` is closed (no `.tmp`), named
/// `FlumeData.*` and sits in one of the `buckets` (paths relative to `dir`).
fn assert_closed_files(dir: &Path, buckets: &[String]) {
    let files = files_under(dir);
    assert!(
        !files.is_empty(),
        "no hdfs sink output under {}",
        dir.display()
    );
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("FlumeData.") && !name.ends_with(".tmp"),
            "{} is not a closed file",
            f.display()
        );
        let bucket = f
            .parent()
            .unwrap()
            .strip_prefix(dir)
            .unwrap()
            .display()
            .to_string();
        assert!(
            buckets.contains(&bucket),
            "{} is not under {buckets:?}",
            f.display()
        );
    }
}

/// Calls `check` until it returns `Ok`; after [`WAIT`], panics with `what` and the last
/// `Err` (what was seen instead).
fn wait_seen<T>(what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let end = Instant::now() + WAIT;
    loop {
        match check() {
            Ok(v) => return v,
            Err(seen) => assert!(
                Instant::now() < end,
                "timed out after {WAIT:?} waiting for {what}; last seen: {seen}"
            ),
        }
        thread::sleep(Duration::from_millis(25));
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Local time as the hdfs sink's escapes format it.
fn now(format: &str) -> String {
    chrono::Local::now().format(format).to_string()
}

/// seed 1: a line sent to localhost:44445 is acknowledged and logged; the seed's trailing
/// `##` comments are cut off, each reported with file, line and key.
fn seed_1() {
    let file = "seed-1-netcat-logger.properties";
    require_free(NETCAT, file);
    let mut a = RepoAgent::config(file, &["netcat listening on"]);
    let port_line = line_of(file, "agent1.sources.netcatSrc.port");
    a.wait_for_log(&format!(
        "config/flume/{file}:{port_line}: agent1.sources.netcatSrc.port: trailing comment removed"
    ));
    let sent = lines("seed1", 2);
    netcat_send(&sent);
    poll_until(WAIT, "seed 1's lines in the logger sink's output", || {
        let got: Vec<String> = logged_events(&a.log()).iter().map(|e| e.text()).collect();
        (got == sent).then_some(())
    });
    a.stop();
}

/// seed 2: lines sent to localhost:44445 land in SequenceFiles under today's directory in
/// `/tmp/sluice-flume/spark-course/steaming/flume/`, closed when the agent stops.
fn seed_2(hdfs: &Path) {
    let file = "seed-2-netcat-hdfs.properties";
    require_free(NETCAT, file);
    let before = now("%y-%m-%d");
    let a = RepoAgent::config(file, &["netcat listening on"]);
    let sent = lines("seed2", 7);
    netcat_send(&sent);
    let want = sorted(sent);
    wait_seen("seed 2's lines in SequenceFiles", || {
        sequence_bodies_now(hdfs)
            .filter(|got| *got == want)
            .ok_or_else(|| format!("{:?}", sequence_bodies_now(hdfs)))
    });
    a.stop();
    assert_closed_files(hdfs, &[before, now("%y-%m-%d")]);
    assert_eq!(sequence_bodies(hdfs), want);
}

/// seed 3: the file channel creates its checkpoint and data dirs; lines appended to the
/// tailed log (which does not exist when the agent starts) reach SequenceFiles in the
/// same directory as seed 2's (emptied first).
fn seed_3(hdfs: &Path) {
    let file = "seed-3-exec-file-hdfs.properties";
    remove_all(hdfs);
    let demo = Path::new(OUT).join("spark-course/steaming/flume-course");
    let before = now("%y-%m-%d");
    let a = RepoAgent::config(file, &["agent agent1 started"]);
    for d in ["demo2-2/checkpoint", "demo2-2/data"] {
        let d = demo.join(d);
        poll_until(WAIT, &format!("the file channel's {}", d.display()), || {
            d.is_dir().then_some(())
        });
    }
    // `tail -F` may open the log only after the first write; it then prints the file's last
    // 10 lines. So the first burst has fewer, and the rest follows once it came through.
    let log = demo.join("demo3/logs/webserver.log");
    let sent = lines("seed3", 12);
    let (first, rest) = sent.split_at(4);
    let mut written = 0;
    for burst in [first, rest] {
        append_lines(&log, burst);
        written += burst.len();
        let want = sorted(sent[..written].to_vec());
        wait_seen(&format!("{written} tailed lines in SequenceFiles"), || {
            sequence_bodies_now(hdfs)
                .filter(|got| *got == want)
                .ok_or_else(|| format!("{:?}", sequence_bodies_now(hdfs)))
        });
    }
    a.stop();
    assert_closed_files(hdfs, &[before, now("%y-%m-%d")]);
    assert_eq!(sequence_bodies(hdfs), sorted(sent));
    let logs = fs::read_dir(demo.join("demo2-2/data"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("log-")
        })
        .count();
    assert!(
        logs > 0,
        "the file channel wrote no log file in its data dir"
    );
}

/// seed 4: lines sent to localhost:44445 go out of the avro sink to localhost:44446, where
/// a second agent (an avro source → logger, this test's own config) logs them.
fn seed_4(scratch: &Path) {
    let file = "seed-4-netcat-avro.properties";
    require_free(
        AVRO,
        "seed-4-netcat-avro.properties (its avro sink's receiver)",
    );
    let receiver = scratch.join("seed-4-receiver.properties");
    fs::write(
        &receiver,
        format!(
            "agent1.sources = avroSrc\n\
             agent1.channels = ch\n\
             agent1.sinks = log\n\
             agent1.sources.avroSrc.type = avro\n\
             agent1.sources.avroSrc.bind = localhost\n\
             agent1.sources.avroSrc.port = {AVRO}\n\
             agent1.sources.avroSrc.channels = ch\n\
             agent1.channels.ch.type = memory\n\
             agent1.sinks.log.type = logger\n\
             agent1.sinks.log.channel = ch\n"
        ),
    )
    .unwrap();
    let mut rx = RepoAgent::start(&receiver.display().to_string());
    rx.wait_for_log("Avro source avroSrc started");
    require_free(NETCAT, file);
    let mut tx = RepoAgent::config(file, &["netcat listening on"]);
    let sent = lines("seed4", 5);
    netcat_send(&sent);
    poll_until(WAIT, "seed 4's lines logged by the receiving agent", || {
        let got: Vec<String> = logged_events(&rx.log()).iter().map(|e| e.text()).collect();
        (got == sent).then_some(())
    });
    tx.wait_for_log(&format!("connected to localhost:{AVRO}"));
    tx.stop();
    rx.stop();
}

/// seed 5: lines sent to localhost:44445 are pulled from the SparkSink on localhost:44446
/// with `SparkSinkClient` and acked.
async fn seed_5() {
    let file = "seed-5-netcat-sparksink.properties";
    require_free(NETCAT, file);
    require_free(AVRO, file);
    let a = RepoAgent::config(file, &["netcat listening on", "Avro server listening on"]);
    let sent = lines("seed5", 4);
    netcat_send(&sent);
    let opts = ClientOptions {
        connect_timeout: Duration::from_secs(2),
        request_timeout: WAIT,
        ..ClientOptions::default()
    };
    let mut client = eventually(WAIT, "the SparkSink on localhost:44446", || {
        let opts = opts.clone();
        async move {
            SparkSinkClient::connect(&format!("localhost:{AVRO}"), opts)
                .await
                .ok()
        }
    })
    .await;
    let batch = client.get_event_batch(100).await.unwrap();
    assert_eq!(batch.error_msg, "");
    let got: Vec<String> = batch
        .events
        .iter()
        .map(|e| String::from_utf8(e.body.to_vec()).unwrap())
        .collect();
    assert_eq!(got, sent);
    client.ack(&batch.sequence_number).await.unwrap();
    // Acked: the transaction committed, so the next batch holds only new lines.
    let more = lines("seed5 more", 2);
    netcat_send(&more);
    let next = client.get_event_batch(100).await.unwrap();
    let got: Vec<String> = next
        .events
        .iter()
        .map(|e| String::from_utf8(e.body.to_vec()).unwrap())
        .collect();
    assert_eq!(got, more, "the batch after the ack");
    client.ack(&next.sequence_number).await.unwrap();
    drop(client);
    a.stop();
}

/// The `sluice` broker (`$SLUICE_BIN`, else next to this test's `deps/` dir) on a fixed
/// address, for `pipeline.properties`' `localhost:9092`; killed on drop.
struct FixedBroker {
    child: Child,
    _data: TempDir,
}

impl FixedBroker {
    fn start(listen: &str) -> FixedBroker {
        let bin = std::env::var_os("SLUICE_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                std::env::current_exe()
                    .unwrap()
                    .parent()
                    .and_then(Path::parent)
                    .unwrap()
                    .join("sluice")
            });
        assert!(
            bin.exists(),
            "broker binary {} not found: run `cargo build --bin sluice` or set SLUICE_BIN",
            bin.display()
        );
        let data = tempfile::Builder::new()
            .prefix("sluice-flume-config-dir-broker-")
            .tempdir()
            .unwrap();
        let mut child = Command::new(&bin)
            .args(["--listen", listen, "--data-dir"])
            .arg(data.path())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let mut out = BufReader::new(child.stdout.take().unwrap());
        // The broker prints `listening on` once bound, or exits; reading its stdout blocks
        // until one of the two.
        let mut line = String::new();
        loop {
            line.clear();
            if out.read_line(&mut line).unwrap() == 0 {
                let _ = child.kill();
                panic!("the broker on {listen} exited before printing `listening on`");
            }
            if line.trim().starts_with("listening on ") {
                break;
            }
        }
        // Keep draining stdout so the broker never blocks on a full pipe.
        thread::spawn(move || {
            let mut sink = String::new();
            while out.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                sink.clear();
            }
        });
        FixedBroker { child, _data: data }
    }
}

impl Drop for FixedBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// pipeline.properties: lines appended to `/tmp/sluice-flume/app.log` (created after the
/// agent started) reach the topic `app-lines` on localhost:9092 as raw bytes, and plain
/// text files under `/tmp/sluice-flume/flume/app/%Y-%m-%d/%H`.
async fn pipeline() {
    let file = "pipeline.properties";
    if let Err(e) = TcpListener::bind(("127.0.0.1", KAFKA)) {
        eprintln!(
            "SKIPPED config/flume/{file}: port {KAFKA} is in use ({e}), so no broker of this \
             test's own can listen where the file points; the seed configs were still run"
        );
        return;
    }
    let _broker = FixedBroker::start(&format!("127.0.0.1:{KAFKA}"));
    let before = now("%Y-%m-%d/%H");
    let a = RepoAgent::config(file, &["agent agent1 started"]);
    let sent: Vec<String> = (0..6)
        .map(|i| format!("hello sluice pipeline {i}"))
        .collect();
    append_lines(&Path::new(OUT).join("app.log"), &sent);
    let mut config =
        ClientConfig::new([format!("localhost:{KAFKA}")]).with_client_id("sluice-flume-config-dir");
    config.retry_backoff = Duration::from_millis(20);
    config.retry_backoff_max = Duration::from_millis(200);
    let client = Client::connect(config).await.unwrap();
    let got = wait_topic(&client, "app-lines", sent.len()).await;
    assert_eq!(got.iter().map(Read::text).collect::<Vec<_>>(), sent);
    assert!(
        got.iter().all(|r| r.key.is_none() && r.headers.is_empty()),
        "raw values only: {got:?}"
    );
    a.stop();
    let hdfs = Path::new(OUT).join("flume/app");
    assert_closed_files(&hdfs, &[before, now("%Y-%m-%d/%H")]);
    let text: String = files_under(&hdfs)
        .iter()
        .map(|f| fs::read_to_string(f).unwrap())
        .collect();
    let want: String = sent.iter().map(|l| format!("{l}\n")).collect();
    assert_eq!(text, want, "the hdfs sink's DataStream files");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_config_in_config_flume_runs_as_it_is() {
    let dir = repo_root().join("config/flume");
    let mut present: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".properties"))
        .collect();
    present.sort();
    assert_eq!(
        present,
        FILES,
        "the files in {} and the ones this test runs",
        dir.display()
    );

    remove_all(Path::new(OUT));
    let scratch = tempfile::tempdir().unwrap();
    let hdfs = Path::new(OUT).join("spark-course/steaming/flume");
    seed_1();
    seed_2(&hdfs);
    seed_3(&hdfs);
    seed_4(scratch.path());
    seed_5().await;
    pipeline().await;
}
