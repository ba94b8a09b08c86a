//! The built `sluice` binary as a child process: started with `--listen 127.0.0.1:0` and a
//! temp data dir, ready once it prints `listening on ADDR` (waited for with a deadline),
//! stopped with SIGTERM or `kill -9`, restarted on the same data dir (and, if asked, the same
//! port). Killed on drop; its stderr is printed when the test is panicking. The HTTP listener
//! (`/metrics`, the console) runs on `--http 127.0.0.1:0` unless the builder says otherwise,
//! and its bound address is read from the `http on http://ADDR/` line.

use std::fs::{self, File};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::thread;
use std::time::Duration;

use tempfile::TempDir;

use crate::lines::{follow, wait_line_or_why};
use crate::wait::sigterm_and_wait;

/// How long the broker may take to print its `listening on` line, unless the builder says.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long a clean (SIGTERM) shutdown may take.
const STOP_DEADLINE: Duration = Duration::from_secs(20);

/// The workspace root (this crate lives at `compat-tests/testkit`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("compat-tests/testkit has two parent dirs")
        .to_path_buf()
}

/// The broker binary: `$SLUICE_BIN`, else `<workspace>/target/debug/sluice`.
pub fn sluice_bin() -> PathBuf {
    match std::env::var_os("SLUICE_BIN") {
        Some(p) => PathBuf::from(p),
        None => workspace_root().join("target/debug/sluice"),
    }
}

/// The broker binary: `$SLUICE_BIN`, else `sluice` in the profile dir of the running test
/// executable (`<target>/debug/deps/it-HASH` → `<target>/debug/sluice`), which follows
/// `CARGO_TARGET_DIR`.
pub fn sluice_bin_beside_test_exe() -> PathBuf {
    if let Some(p) = std::env::var_os("SLUICE_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current test executable");
    exe.parent()
        .and_then(Path::parent)
        .map(|d| d.join("sluice"))
        .expect("test executable sits in <target>/<profile>/deps")
}

/// How to start a [`Broker`]; [`Broker::builder`] gives the defaults.
#[derive(Debug, Clone)]
pub struct BrokerBuilder {
    bin: PathBuf,
    temp_prefix: String,
    start_deadline: Duration,
    config: Option<String>,
    env: Vec<(String, String)>,
    default_rust_log: Option<String>,
    wrapper: Vec<String>,
    listen: String,
    http: Option<String>,
    args: Vec<String>,
}

impl BrokerBuilder {
    /// The `--http` value (default `127.0.0.1:0`): `Some("off")` turns the HTTP listener
    /// off, `None` passes no flag, so the broker's own default (`127.0.0.1:8080`, a warning
    /// when that port is taken) applies.
    pub fn http(mut self, spec: Option<&str>) -> Self {
        self.http = spec.map(str::to_owned);
        self
    }

    /// The `--listen` spec (default `127.0.0.1:0`); a named one such as
    /// `SSL://127.0.0.1:0` gives the listener that name and its security protocol. The
    /// host must stay 127.0.0.1.
    pub fn listen(mut self, spec: &str) -> Self {
        spec.clone_into(&mut self.listen);
        self
    }

    /// An extra command-line argument for every run, after `--listen 127.0.0.1:0` (say, a
    /// second `--listen NAME://127.0.0.1:PORT`; the first listener stays the one `addr`
    /// names).
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_owned());
        self
    }

    /// The binary to run (default [`sluice_bin`]).
    pub fn bin(mut self, bin: PathBuf) -> Self {
        self.bin = bin;
        self
    }

    /// Prefix of the temp dir's name, so a leftover dir says whose it was.
    pub fn temp_prefix(mut self, prefix: &str) -> Self {
        prefix.clone_into(&mut self.temp_prefix);
        self
    }

    /// How long each start may take to print `listening on` (default 30 s).
    pub fn start_deadline(mut self, deadline: Duration) -> Self {
        self.start_deadline = deadline;
        self
    }

    /// Writes `toml` to `<tmp>/sluice.toml` and passes it as `--config` (default: no file).
    pub fn config(mut self, toml: &str) -> Self {
        self.config = Some(toml.to_owned());
        self
    }

    /// An environment variable for the broker process (every run).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// `RUST_LOG` for the broker when the test process has none set (default: inherit).
    pub fn default_rust_log(mut self, filter: &str) -> Self {
        self.default_rust_log = Some(filter.to_owned());
        self
    }

    /// A command the broker runs under, one that ends by running its arguments (such as
    /// `prlimit --nofile=N:N --`); restarts run under it too, until [`Broker::set_wrapper`].
    pub fn wrapper(mut self, wrapper: &[&str]) -> Self {
        self.wrapper = wrapper.iter().map(|w| (*w).to_owned()).collect();
        self
    }

    /// Starts the broker on `127.0.0.1:0` in a new temp dir; panics (with its stderr) if it
    /// prints no `listening on` line within the start deadline.
    pub fn start(self) -> Broker {
        assert!(
            self.bin.exists(),
            "broker binary {} not found: run `cargo build --bin sluice` (same \
             CARGO_TARGET_DIR) or set SLUICE_BIN",
            self.bin.display()
        );
        let tmp = tempfile::Builder::new()
            .prefix(&self.temp_prefix)
            .tempdir()
            .expect("create temp dir");
        fs::create_dir_all(tmp.path().join("data")).expect("create data dir");
        let config = self.config.as_deref().map(|t| {
            let p = tmp.path().join("sluice.toml");
            fs::write(&p, t).expect("write config");
            p
        });
        let mut b = Broker {
            child: None,
            addr: String::new(),
            addrs: Vec::new(),
            http_addr: None,
            tmp,
            config,
            runs: 0,
            listen: self.listen.clone(),
            opts: self,
        };
        b.spawn();
        b
    }
}

/// A running broker process. Killed on drop; its stderr is printed if the test is panicking.
pub struct Broker {
    child: Option<Child>,
    addr: String,
    addrs: Vec<String>,
    http_addr: Option<SocketAddr>,
    tmp: TempDir,
    config: Option<PathBuf>,
    runs: u32,
    /// `--listen` for the next start: `127.0.0.1:0`, or the old address when restarting on
    /// the same port.
    listen: String,
    opts: BrokerBuilder,
}

impl Broker {
    /// Default start options: [`sluice_bin`], no config file, inherited `RUST_LOG`.
    pub fn builder() -> BrokerBuilder {
        BrokerBuilder {
            bin: sluice_bin(),
            temp_prefix: "sluice-test-".to_owned(),
            start_deadline: START_DEADLINE,
            config: None,
            env: Vec::new(),
            default_rust_log: None,
            wrapper: Vec::new(),
            listen: "127.0.0.1:0".to_owned(),
            http: Some("127.0.0.1:0".to_owned()),
            args: Vec::new(),
        }
    }

    /// `127.0.0.1:PORT`, the address the broker listens on.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Every listener's address, in the order of the `--listen` flags: the kit's own
    /// `127.0.0.1:0` first, then those added with [`BrokerBuilder::arg`]. Bound ports, so
    /// `--listen SASL_SSL://127.0.0.1:0` works without picking a port first.
    pub fn addrs(&self) -> &[String] {
        &self.addrs
    }

    /// The HTTP listener's bound address (`/metrics`, the console), from the broker's
    /// `http on http://ADDR/` line; `None` when it runs without HTTP.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The broker's temp dir (data dir, config file, stderr logs).
    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// The broker's data dir, which survives restarts.
    pub fn data_dir(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    /// The process id of the current run, if it is running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn stderr_path(&self, run: u32) -> PathBuf {
        self.tmp.path().join(format!("stderr-{run}.log"))
    }

    /// Stderr of the current (latest) run.
    pub fn stderr(&self) -> String {
        fs::read_to_string(self.stderr_path(self.runs.saturating_sub(1))).unwrap_or_default()
    }

    /// Stderr of every run so far, oldest first, each under a header line.
    pub fn all_stderr(&self) -> String {
        let mut s = String::new();
        for run in 0..self.runs {
            s.push_str(&format!("----- broker run {run} stderr -----\n"));
            s.push_str(&fs::read_to_string(self.stderr_path(run)).unwrap_or_default());
        }
        s
    }

    /// Sets (`Some`) or removes (`None`) an environment variable for the next starts.
    pub fn set_env(&mut self, key: &str, value: Option<&str>) {
        self.opts.env.retain(|(k, _)| k != key);
        if let Some(v) = value {
            self.opts.env.push((key.to_owned(), v.to_owned()));
        }
    }

    /// Waits up to `deadline` for the broker to exit by itself (a crash point, a fatal
    /// error); its exit status, or `None` if it is still running.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let mut status = None;
        crate::wait::wait_until(deadline, || {
            status = child.try_wait().ok().flatten();
            status.is_some()
        });
        if status.is_some() {
            self.child = None;
        }
        status
    }

    /// The wrapper for the next start (see [`BrokerBuilder::wrapper`]); empty for none.
    pub fn set_wrapper(&mut self, wrapper: &[&str]) {
        self.opts.wrapper = wrapper.iter().map(|w| (*w).to_owned()).collect();
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "broker already running");
        let run = self.runs;
        self.runs += 1;
        let stderr = File::create(self.stderr_path(run)).expect("create stderr log");
        let bin = &self.opts.bin;
        let mut cmd = match self.opts.wrapper.split_first() {
            Some((prog, args)) => {
                let mut c = Command::new(prog);
                c.args(args).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.arg("--listen")
            .arg(&self.listen)
            .arg("--data-dir")
            .arg(self.data_dir());
        if let Some(h) = &self.opts.http {
            cmd.arg("--http").arg(h);
        }
        if let Some(c) = &self.config {
            cmd.arg("--config").arg(c);
        }
        cmd.args(&self.opts.args);
        if let Some(filter) = &self.opts.default_rust_log {
            if std::env::var_os("RUST_LOG").is_none() {
                cmd.env("RUST_LOG", filter);
            }
        }
        // Plain log lines in the stderr file, whatever the tracing defaults are.
        cmd.env("NO_COLOR", "1");
        for (k, v) in &self.opts.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        // The follower drains stdout for the broker's whole life, so it never blocks.
        let lines = follow(child.stdout.take().expect("piped stdout"));
        let deadline = self.opts.start_deadline;
        // One `listening on` line per listener, in order, the `http on` line if HTTP is on,
        // then Kafka's `started` line.
        let mut addrs = Vec::new();
        let mut http_addr = None;
        let addr = wait_line_or_why(&lines, deadline, |l| {
            if let Some(a) = l.trim().strip_prefix("listening on ") {
                addrs.push(a.trim().to_owned());
            }
            if let Some(a) = l.trim().strip_prefix("http on http://") {
                let a = a.trim().trim_end_matches('/');
                http_addr = Some(
                    a.parse::<SocketAddr>()
                        .unwrap_or_else(|e| panic!("broker printed `{l}`: {e}")),
                );
            }
            (l.contains("] started") && !addrs.is_empty()).then(|| addrs[0].clone())
        });
        let addr = match addr {
            Ok(addr) => addr,
            Err(RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "broker printed no `listening on` line within {deadline:?}\n{}",
                    self.all_stderr()
                );
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = child.wait().ok();
                panic!(
                    "broker exited ({status:?}) before printing `listening on`\n{}",
                    self.all_stderr()
                );
            }
        };
        assert!(
            addr.starts_with("127.0.0.1:"),
            "broker listens on {addr}, expected 127.0.0.1:PORT"
        );
        self.addr = addr;
        self.addrs = addrs;
        self.http_addr = http_addr;
        self.child = Some(child);
    }

    /// Sends SIGTERM and waits for a clean exit; asserts exit status 0.
    pub fn stop(&mut self) {
        let mut child = self.child.take().expect("broker is running");
        let Some(status) = sigterm_and_wait(&mut child, STOP_DEADLINE) else {
            panic!(
                "broker did not exit within {STOP_DEADLINE:?} of SIGTERM\n{}",
                self.all_stderr()
            );
        };
        assert!(
            status.success(),
            "broker exited with {status} after SIGTERM, expected 0\n{}",
            self.all_stderr()
        );
    }

    /// Clean restart: SIGTERM, wait, start again on the same data dir (new port).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Clean restart that listens on the same address again, so clients that stay up across
    /// the restart can reconnect to the address they know.
    pub fn restart_on_same_port(&mut self) {
        self.stop();
        self.start_again_on_same_port();
    }

    /// `kill -9`: no chance to flush anything.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("broker is running");
        child.kill().expect("SIGKILL broker");
        child.wait().expect("reap broker");
    }

    /// Starts the broker again on the same data dir (new port) after [`Broker::stop`] or
    /// [`Broker::kill9`].
    pub fn start_again(&mut self) {
        self.spawn();
    }

    /// Starts the broker again on the same data dir and the same address after
    /// [`Broker::stop`] or [`Broker::kill9`]. The old socket is closed; SO_REUSEADDR (tokio's
    /// default on Unix listeners) lets the new process bind the port even with connections in
    /// TIME_WAIT.
    pub fn start_again_on_same_port(&mut self) {
        let old = self.addr.clone();
        self.listen = match self.opts.listen.split_once("://") {
            Some((name, _)) => format!("{name}://{old}"),
            None => old.clone(),
        };
        self.spawn();
        assert_eq!(self.addr, old, "broker came back on another address");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if thread::panicking() {
            eprintln!("{}", self.all_stderr());
        }
    }
}
