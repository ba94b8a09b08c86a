//! `sluice-fuzz`: the wire fuzzer at length. Starts a release broker in a temp dir (or
//! drives `--bootstrap HOST:PORT`, such as Apache Kafka) and sends it `--frames` fuzzed
//! requests, with a real client's produce and fetch every `--check-every` frames. Exits
//! non-zero if the broker dies or stops serving.
//!
//! ```sh
//! cargo build --release -p sluice --bin sluice
//! cargo run --release -p sluice-compat --bin sluice-fuzz -- --frames 1000000
//! ```

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use sluice_compat::fuzz::{self, Config};

#[derive(Parser)]
#[command(about = "Send fuzzed Kafka requests to a broker and check it keeps serving")]
struct Args {
    /// Frames to send.
    #[arg(long, default_value_t = 1_000_000)]
    frames: u64,
    /// Seed of the run.
    #[arg(long, default_value_t = 13)]
    seed: u64,
    /// Connections in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// A real client's produce and fetch every N frames.
    #[arg(long, default_value_t = 1_000)]
    check_every: u64,
    /// Drive a broker that is already running instead of starting one.
    #[arg(long)]
    bootstrap: Option<String>,
    /// Keep the started broker's temp dir (data and broker.stderr).
    #[arg(long)]
    keep: bool,
}

struct Started {
    child: Child,
    dir: tempfile::TempDir,
}

fn start_broker() -> anyhow::Result<(Started, String)> {
    let bin = std::env::var_os("SLUICE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/sluice")
        });
    let dir = tempfile::Builder::new().prefix("sluice-fuzz-").tempdir()?;
    let stderr = std::fs::File::create(dir.path().join("broker.stderr"))?;
    let mut child = Command::new(&bin)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .with_context(|| {
            format!(
                "start {} (build it with cargo build --release)",
                bin.display()
            )
        })?;
    let out = child.stdout.take().context("broker stdout")?;
    let mut lines = BufReader::new(out).lines();
    let addr = loop {
        match lines.next() {
            Some(Ok(l)) => {
                if let Some(a) = l.trim().strip_prefix("listening on ") {
                    break a.to_string();
                }
            }
            _ => bail!("broker exited before listening"),
        }
    };
    // Keep draining stdout so the broker never blocks on it.
    std::thread::spawn(move || for _ in lines {});
    Ok((Started { child, dir }, addr))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (mut started, addr) = match &args.bootstrap {
        Some(a) => (None, a.clone()),
        None => {
            let (s, a) = start_broker()?;
            (Some(s), a)
        }
    };
    let advertised: Vec<(i16, i16, i16)> = sluice::api::advertised()
        .map(|(k, min, max)| (k as i16, min, max))
        .collect();
    let cfg = Config {
        frames: args.frames,
        seed: args.seed,
        concurrency: args.concurrency,
        check_every: args.check_every,
        io_timeout: Duration::from_secs(3),
        check_topic: "fuzz-check".into(),
    };
    eprintln!("fuzzing {addr}: {} frames, seed {}", cfg.frames, cfg.seed);
    let result = fuzz::run(&addr, &advertised, &cfg).await;
    if let Some(mut s) = started.take() {
        if let Some(status) = s.child.try_wait()? {
            bail!("the broker exited during the run: {status}");
        }
        let log = std::fs::read_to_string(s.dir.path().join("broker.stderr")).unwrap_or_default();
        let refused = log
            .lines()
            .filter(|l| l.contains("closing connection:"))
            .count();
        eprintln!("broker: alive; {refused} connections closed with a log line");
        let _ = s.child.kill();
        let _ = s.child.wait();
        if args.keep {
            eprintln!("kept {}", s.dir.keep().display());
        }
    }
    let report = result?;
    println!("{report}");
    Ok(())
}
