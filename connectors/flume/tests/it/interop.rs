//! Tests: interoperability with real Apache Flume 1.11 (run from the jars that
//! `compat-tests/scripts/install-flume.sh` fetches; `java -Xmx128m`, killed on drop):
//! real Flume's avro sink sends to our avro source, and our avro sink sends to real Flume's
//! avro source, which writes with its own file_roll sink. Both with and without deflate.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{free_port, poll_until, Agent};
use crate::sinks::{files_under, WAIT};

/// Where install-flume.sh puts Flume.
fn flume_home() -> PathBuf {
    let home = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../compat-tests/.cache/flume-1.11.0");
    assert!(
        home.join(".installed").exists() && home.join("lib").is_dir(),
        "Apache Flume 1.11.0 is not installed at {}: run compat-tests/scripts/install-flume.sh",
        home.display()
    );
    home
}

/// A real Flume agent `a1` in a temp dir, logging at INFO to `<dir>/flume.log`.
pub struct RealFlume {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl RealFlume {
    pub fn start(config: &str) -> RealFlume {
        let home = flume_home();
        let dir = tempfile::Builder::new()
            .prefix("real-flume-")
            .tempdir()
            .unwrap();
        fs::write(dir.path().join("flume.conf"), config).unwrap();
        fs::write(
            dir.path().join("log4j2.properties"),
            "status = error\n\
             appender.out.type = Console\n\
             appender.out.name = OUT\n\
             appender.out.layout.type = PatternLayout\n\
             appender.out.layout.pattern = %d %p %m (%c)%n\n\
             rootLogger.level = info\n\
             rootLogger.appenderRef.out.ref = OUT\n",
        )
        .unwrap();
        let log = File::create(dir.path().join("flume.log")).unwrap();
        let child = Command::new("java")
            .arg("-Xmx128m")
            .arg(format!(
                "-Dlog4j.configurationFile={}",
                dir.path().join("log4j2.properties").display()
            ))
            .arg("-cp")
            .arg(format!("{}/lib/*", home.display()))
            .arg("org.apache.flume.node.Application")
            .args(["-n", "a1", "--no-reload-conf", "-f"])
            .arg(dir.path().join("flume.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("starting java (Apache Flume): {e}"));
        RealFlume {
            child: Some(child),
            dir,
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("flume.log")).unwrap_or_default()
    }

    pub fn wait_for_log(&mut self, needle: &str) {
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            if self.log().contains(needle) {
                return;
            }
            if let Some(s) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "real Flume exited ({s}) before logging {needle:?}:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < end,
                "real Flume did not log {needle:?}:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for RealFlume {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if thread::panicking() {
            eprintln!("----- real Flume log -----\n{}", self.log());
        }
    }
}

fn compression_lines(side: &str, deflate: bool) -> String {
    if deflate {
        format!("{side}.compression-type = deflate\n")
    } else {
        String::new()
    }
}

/// The lines `0`..`n` each followed by a newline, in order.
fn counter_lines(n: usize) -> String {
    (0..n).map(|i| format!("{i}\n")).collect()
}

#[test]
fn real_flume_avro_sink_to_our_avro_source() {
    for deflate in [false, true] {
        let port = free_port();
        let out = tempfile::tempdir().unwrap();
        let ours = format!(
            "a1.sources = r1\n\
             a1.channels = c1\n\
             a1.sinks = k1\n\
             a1.sources.r1.type = avro\n\
             a1.sources.r1.bind = 127.0.0.1\n\
             a1.sources.r1.port = {port}\n\
             a1.sources.r1.channels = c1\n\
             {}\
             a1.channels.c1.type = memory\n\
             a1.channels.c1.capacity = 1000\n\
             a1.sinks.k1.type = file_roll\n\
             a1.sinks.k1.channel = c1\n\
             a1.sinks.k1.sink.directory = {}\n\
             a1.sinks.k1.sink.rollInterval = 0\n",
            compression_lines("a1.sources.r1", deflate),
            out.path().display()
        );
        let mut agent = Agent::start(&ours, "a1", &[]);
        agent.wait_for_log("Avro source r1 started", WAIT);
        let real = format!(
            "a1.sources = s1\n\
             a1.channels = c1\n\
             a1.sinks = k1\n\
             a1.sources.s1.type = seq\n\
             a1.sources.s1.totalEvents = 50\n\
             a1.sources.s1.batchSize = 10\n\
             a1.sources.s1.channels = c1\n\
             a1.channels.c1.type = memory\n\
             a1.channels.c1.capacity = 1000\n\
             a1.sinks.k1.type = avro\n\
             a1.sinks.k1.channel = c1\n\
             a1.sinks.k1.hostname = 127.0.0.1\n\
             a1.sinks.k1.port = {port}\n\
             a1.sinks.k1.batch-size = 7\n\
             {}",
            if deflate {
                "a1.sinks.k1.compression-type = deflate\na1.sinks.k1.compression-level = 6\n"
            } else {
                ""
            }
        );
        let _flume = RealFlume::start(&real);
        let want = counter_lines(50);
        poll_until(
            Duration::from_secs(60),
            "real Flume's 50 events in our file_roll output",
            || {
                let all: String = files_under(out.path())
                    .iter()
                    .map(|p| fs::read_to_string(p).unwrap())
                    .collect();
                (all == want).then_some(())
            },
        );
    }
}

#[test]
fn our_avro_sink_to_real_flume_avro_source_and_file_roll() {
    for deflate in [false, true] {
        let port = free_port();
        let out = tempfile::tempdir().unwrap();
        let real = format!(
            "a1.sources = r1\n\
             a1.channels = c1\n\
             a1.sinks = k1\n\
             a1.sources.r1.type = avro\n\
             a1.sources.r1.bind = 127.0.0.1\n\
             a1.sources.r1.port = {port}\n\
             a1.sources.r1.channels = c1\n\
             {}\
             a1.channels.c1.type = memory\n\
             a1.channels.c1.capacity = 1000\n\
             a1.sinks.k1.type = file_roll\n\
             a1.sinks.k1.channel = c1\n\
             a1.sinks.k1.sink.directory = {}\n\
             a1.sinks.k1.sink.rollInterval = 0\n",
            compression_lines("a1.sources.r1", deflate),
            out.path().display()
        );
        let mut flume = RealFlume::start(&real);
        flume.wait_for_log("Avro source r1 started");
        let ours = format!(
            "a1.sources = s1\n\
             a1.channels = c1\n\
             a1.sinks = k1\n\
             a1.sources.s1.type = seq\n\
             a1.sources.s1.totalEvents = 50\n\
             a1.sources.s1.batchSize = 10\n\
             a1.sources.s1.channels = c1\n\
             a1.channels.c1.type = memory\n\
             a1.channels.c1.capacity = 1000\n\
             a1.sinks.k1.type = avro\n\
             a1.sinks.k1.channel = c1\n\
             a1.sinks.k1.hostname = 127.0.0.1\n\
             a1.sinks.k1.port = {port}\n\
             a1.sinks.k1.batch-size = 7\n\
             {}",
            if deflate {
                "a1.sinks.k1.compression-type = deflate\na1.sinks.k1.compression-level = 9\n"
            } else {
                ""
            }
        );
        let mut agent = Agent::start(&ours, "a1", &[]);
        agent.wait_for_log(&format!("connected to 127.0.0.1:{port}"), WAIT);
        let want = counter_lines(50);
        poll_until(
            Duration::from_secs(60),
            "our 50 events in real Flume's file_roll output",
            || {
                let all: String = files_under(out.path())
                    .iter()
                    .map(|p| fs::read_to_string(p).unwrap())
                    .collect();
                (all == want).then_some(())
            },
        );
    }
}
