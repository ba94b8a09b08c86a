//! Tests: the file channel through the real `sluice-flume` binary: netcat → file channel →
//! Kafka sink → the real `sluice` broker. Every line the netcat source acknowledged (`OK`)
//! must reach the topic at least once, across `kill -9`s, a torn log tail and clean
//! restarts; the directories are locked against a second agent.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::harness::{eventually, free_port, poll_until, unique, Agent, Broker};
use crate::kafka::{read_topic, wait_topic};

const DEADLINE: Duration = Duration::from_secs(60);

/// netcat `r1` on `port` → file channel `c1` in `dirs` (extra channel keys appended) →
/// optionally a Kafka sink `k1` to `topic`.
fn config(port: u16, dirs: &Path, channel_extra: &str, sink: Option<(&str, &str)>) -> String {
    let mut c = format!(
        "a1.sources = r1\na1.channels = c1\n\
         a1.sources.r1.type = netcat\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {port}\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = file\n\
         a1.channels.c1.checkpointDir = {ck}\n\
         a1.channels.c1.dataDirs = {d1},{d2}\n\
         a1.channels.c1.minimumRequiredSpace = 1048576\n\
         {channel_extra}",
        ck = dirs.join("checkpoint").display(),
        d1 = dirs.join("data1").display(),
        d2 = dirs.join("data2").display(),
    );
    if let Some((addr, topic)) = sink {
        c.push_str(&format!(
            "a1.sinks = k1\n\
             a1.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink\n\
             a1.sinks.k1.channel = c1\n\
             a1.sinks.k1.kafka.bootstrap.servers = {addr}\n\
             a1.sinks.k1.kafka.topic = {topic}\n\
             a1.sinks.k1.flumeBatchSize = 20\n"
        ));
    }
    c
}

/// Sends `lines` over one netcat connection; returns them once all were acknowledged.
fn send_acked(port: u16, lines: &[String]) {
    let s = poll_until(DEADLINE, "the netcat source to listen", || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    });
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    for l in lines {
        w.write_all(format!("{l}\n").as_bytes()).unwrap();
        let mut reply = String::new();
        r.read_line(&mut reply).unwrap();
        assert_eq!(reply, "OK\n", "line {l:?}");
    }
}

/// Keeps sending numbered lines, reconnecting whenever the agent goes away, and records
/// the lines the source acknowledged.
struct Sender {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<String>>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Sender {
    fn start(port: u16) -> Sender {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let (s2, a2) = (stop.clone(), acked.clone());
        let thread = thread::spawn(move || {
            let mut next = 0u64;
            while !s2.load(Ordering::Relaxed) {
                let Ok(sock) = TcpStream::connect(("127.0.0.1", port)) else {
                    // The agent is restarting; this pause only paces the reconnects.
                    thread::sleep(Duration::from_millis(10));
                    continue;
                };
                sock.set_read_timeout(Some(Duration::from_secs(20)))
                    .unwrap();
                let mut r = BufReader::new(sock.try_clone().unwrap());
                let mut w = sock;
                while !s2.load(Ordering::Relaxed) {
                    let line = format!("event-{next:07}");
                    next += 1;
                    if w.write_all(format!("{line}\n").as_bytes()).is_err() {
                        break;
                    }
                    let mut reply = String::new();
                    match r.read_line(&mut reply) {
                        Ok(n) if n > 0 && reply == "OK\n" => a2.lock().unwrap().push(line),
                        _ => break,
                    }
                }
            }
        });
        Sender {
            stop,
            acked,
            thread: Some(thread),
        }
    }

    fn acked(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    fn wait_acked(&self, n: usize) {
        poll_until(DEADLINE, &format!("{n} acknowledged lines"), || {
            (self.acked() >= n).then_some(())
        });
    }

    fn finish(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.acked.lock().unwrap().clone()
    }
}

fn log_files(dirs: &Path) -> Vec<PathBuf> {
    let mut v: Vec<(u32, PathBuf)> = ["data1", "data2"]
        .iter()
        .flat_map(|d| fs::read_dir(dirs.join(d)).into_iter().flatten())
        .filter_map(|e| {
            let p = e.ok()?.path();
            let id = p
                .file_name()?
                .to_str()?
                .strip_prefix("log-")?
                .parse()
                .ok()?;
            Some((id, p))
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, p)| p).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_acknowledged_event_survives_repeated_kill_9() {
    let broker = Broker::start();
    let client = broker.client().await;
    let topic = unique("fc-kill");
    let dirs = tempfile::tempdir().unwrap();
    let port = free_port();
    // Short checkpoints and small log files: recovery goes through checkpoint + replay,
    // and old files are deleted while events flow.
    let extra = "a1.channels.c1.checkpointInterval = 50\n\
                 a1.channels.c1.maxFileSize = 16384\n\
                 a1.channels.c1.transactionCapacity = 100\n";
    let mut agent = Agent::start(
        &config(port, dirs.path(), extra, Some((broker.addr(), &topic))),
        "a1",
        &[],
    );
    let sender = Sender::start(port);
    const KILLS: usize = 5;
    const PER_ROUND: usize = 300;
    for round in 1..=KILLS {
        sender.wait_acked(round * PER_ROUND);
        agent.kill9();
        agent.restart();
    }
    sender.wait_acked((KILLS + 1) * PER_ROUND);
    let acked = sender.finish();

    let want: BTreeSet<String> = acked.iter().cloned().collect();
    let got = eventually(
        DEADLINE,
        "every acknowledged event in the topic",
        || async {
            let have: BTreeSet<String> = read_topic(&client, &topic)
                .await
                .iter()
                .map(|r| r.text())
                .collect();
            want.is_subset(&have).then_some(have)
        },
    )
    .await;
    assert!(got.len() >= want.len());
    let log = agent.log();
    let replays = log
        .matches("after the checkpoint at write-order id")
        .count();
    assert!(
        replays >= KILLS,
        "each restart replays after a checkpoint ({replays} times):\n{log}"
    );
    assert!(
        log.contains("(no queued event points into it)"),
        "old log files were deleted:\n{log}"
    );
    assert!(
        !log.contains("are lost") && !log.contains("is lost"),
        "{log}"
    );
    assert!(agent.terminate(DEADLINE).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_torn_log_tail_is_truncated_and_no_committed_event_is_lost() {
    let broker = Broker::start();
    let client = broker.client().await;
    let topic = unique("fc-torn");
    let dirs = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut agent = Agent::start(
        &config(port, dirs.path(), "", Some((broker.addr(), &topic))),
        "a1",
        &[],
    );
    let first: Vec<String> = (0..30).map(|i| format!("before-{i:03}")).collect();
    send_acked(port, &first);
    wait_topic(&client, &topic, first.len()).await;
    // The sink drained the channel, so the newest records are its take and commit; cut
    // into the commit, as a crash in the middle of writing it would.
    agent.kill9();
    let last = log_files(dirs.path()).pop().expect("a log file");
    let len = fs::metadata(&last).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    agent.restart();
    agent.wait_for_log("torn record", DEADLINE);
    assert!(
        agent.current_log().contains("truncating the file"),
        "{}",
        agent.current_log()
    );
    let second: Vec<String> = (0..20).map(|i| format!("after-{i:03}")).collect();
    send_acked(port, &second);
    let want: BTreeSet<String> = first.iter().chain(&second).cloned().collect();
    eventually(
        DEADLINE,
        "every acknowledged event in the topic",
        || async {
            let have: BTreeSet<String> = read_topic(&client, &topic)
                .await
                .iter()
                .map(|r| r.text())
                .collect();
            want.is_subset(&have).then_some(())
        },
    )
    .await;
    // Cut off, or already deleted once nothing queued pointed into it any more.
    assert!(
        fs::metadata(&last)
            .map(|m| m.len() < len - 3)
            .unwrap_or(true),
        "the torn record was cut off"
    );
    assert!(agent.terminate(DEADLINE).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn events_queued_at_a_clean_stop_are_delivered_after_restart() {
    let broker = Broker::start();
    let client = broker.client().await;
    let topic = unique("fc-clean");
    let dirs = tempfile::tempdir().unwrap();
    let port = free_port();
    // First run: no sink, so everything stays queued in the channel.
    let mut agent = Agent::start(&config(port, dirs.path(), "", None), "a1", &[]);
    let lines: Vec<String> = (0..40).map(|i| format!("queued-{i:03}")).collect();
    send_acked(port, &lines);
    assert!(agent.terminate(DEADLINE).success());
    assert!(
        agent.log().contains("checkpoint written on close"),
        "{}",
        agent.log()
    );
    // Second run on the same directories, now with a sink: the checkpoint brings them back.
    let mut agent = Agent::start(
        &config(port, dirs.path(), "", Some((broker.addr(), &topic))),
        "a1",
        &[],
    );
    let got = wait_topic(&client, &topic, lines.len()).await;
    assert_eq!(
        got.iter().map(|r| r.text()).collect::<Vec<_>>(),
        lines,
        "in order, exactly once"
    );
    assert!(
        agent.current_log().contains("; 40 events queued"),
        "{}",
        agent.current_log()
    );
    assert!(agent.terminate(DEADLINE).success());
    // Nothing is left for a third run.
    let mut agent = Agent::start(
        &config(port, dirs.path(), "", Some((broker.addr(), &topic))),
        "a1",
        &[],
    );
    agent.wait_for_log("; 0 events queued", DEADLINE);
    assert!(agent.terminate(DEADLINE).success());
    assert_eq!(read_topic(&client, &topic).await.len(), lines.len());
}

#[test]
fn a_second_agent_on_the_same_directories_fails_clearly() {
    let dirs = tempfile::tempdir().unwrap();
    let mut first = Agent::start(&config(free_port(), dirs.path(), "", None), "a1", &[]);
    first.wait_for_log("agent a1 started", DEADLINE);
    let mut second = Agent::start(&config(free_port(), dirs.path(), "", None), "a1", &[]);
    let (status, log) = second.wait_exit(DEADLINE);
    assert!(!status.success(), "{log}");
    assert!(log.contains("channel c1 failed to start"), "{log}");
    assert!(
        log.contains("in_use.lock") && log.contains("in use by another file channel"),
        "{log}"
    );
    assert!(first.terminate(DEADLINE).success());
}
