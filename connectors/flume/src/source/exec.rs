//! The `exec` source (Flume's `ExecSource`): runs a command and turns each line of its
//! standard output into an event.
//!
//! Keys: **command**, `shell` (none), `restart` false, `restartThrottle` 10000 ms,
//! `logStdErr` false, `batchSize` 20, `batchTimeout` 3000 ms, `charset` UTF-8.
//!
//! - Without `shell` the command is split on whitespace and run directly (so a trailing
//!   `# comment` becomes arguments, as in Flume); with `shell` it runs as
//!   `shell-words… command` (e.g. `/bin/sh -c`, split the same way).
//! - Lines end at `\n`; a trailing `\r` is removed (Java's `readLine`; a lone `\r` inside a
//!   line is kept here, where Java would split). The body is the line's bytes: `charset` must
//!   be ASCII-compatible (UTF-8, ISO-8859-1, GBK, ...), in which Flume's decode-then-encode
//!   round trip is the identity; UTF-16 is refused at configure time.
//! - stderr is always drained; with `logStdErr` each line is logged at INFO.
//! - A batch goes to the channels when it reaches `batchSize`, or once `batchTimeout` has
//!   passed since the last flush (checked when a line arrives and by a timer).
//! - When the channels refuse a batch, **the batch is lost** and the command is killed, as in
//!   Flume (there is no delivery guarantee); then, with `restart`, the command is started
//!   again after `restartThrottle`, otherwise the source stays idle until shutdown. The same
//!   happens when the command exits by itself (after its remaining lines are flushed).
//! - On shutdown the command is killed and the batch in hand is flushed.
//!
//! The batch size is reported for the `transactionCapacity` check.

use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use super::netcat::Charset;
use super::{Source, SourceContext};
use crate::conf::{ConfigError, Context};
use crate::event::Event;

/// Build the source.
pub fn build(_name: &str, ctx: &Context) -> Result<Box<dyn Source>, ConfigError> {
    let command = ctx.require("command")?.to_string();
    let shell: Option<Vec<String>> = ctx
        .get("shell")
        .map(|s| s.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|v| !v.is_empty());
    let restart = ctx.bool("restart", false)?;
    let restart_throttle = Duration::from_millis(ctx.parse("restartThrottle", 10_000u64)?);
    let log_stderr = ctx.bool("logStdErr", false)?;
    let batch: usize = ctx.parse("batchSize", 20)?;
    if batch == 0 {
        return Err(ctx.error("batchSize", "must be greater than 0"));
    }
    let batch_timeout = Duration::from_millis(ctx.parse("batchTimeout", 3000u64)?);
    let charset = Charset::from_context(ctx, "charset", "UTF-8")?;
    if !charset.is_ascii_compatible() {
        return Err(ctx.error(
            "charset",
            "only ASCII-compatible charsets are supported (UTF-8, ISO-8859-1, GBK, ...)",
        ));
    }
    let argv: Vec<String> = match &shell {
        Some(sh) => {
            let mut v = sh.clone();
            v.push(command.clone());
            v
        }
        None => command.split_whitespace().map(str::to_string).collect(),
    };
    if argv.is_empty() {
        return Err(ctx.error("command", "is empty"));
    }
    Ok(Box::new(ExecSource {
        command,
        argv,
        restart,
        restart_throttle,
        log_stderr,
        batch,
        batch_timeout,
    }))
}

struct ExecSource {
    command: String,
    argv: Vec<String>,
    restart: bool,
    restart_throttle: Duration,
    log_stderr: bool,
    batch: usize,
    batch_timeout: Duration,
}

/// How one run of the command ended.
enum Ended {
    /// The command exited (its output was flushed).
    Exited,
    /// The channels refused a batch; the command was killed.
    ChannelFailed,
    /// The agent is stopping; the command was killed and the batch flushed.
    Shutdown,
}

/// One stdout line as an event: the bytes before `\n`, without a trailing `\r`.
fn line_event(mut line: &[u8]) -> Event {
    if let Some(rest) = line.strip_suffix(b"\n") {
        line = rest;
    }
    if let Some(rest) = line.strip_suffix(b"\r") {
        line = rest;
    }
    Event::new(bytes::Bytes::copy_from_slice(line))
}

impl ExecSource {
    fn spawn(&self) -> std::io::Result<Child> {
        let (prog, args) = self
            .argv
            .split_first()
            .ok_or_else(|| std::io::Error::other("empty command"))?;
        Command::new(prog)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
    }

    async fn flush(&self, ctx: &SourceContext, batch: &mut Vec<Event>) -> bool {
        if batch.is_empty() {
            return true;
        }
        let events = std::mem::take(batch);
        match ctx.processor.process_event_batch(events).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(
                    "source {}: failed while running command [{}]: {e}; the batch is lost",
                    ctx.name,
                    self.command
                );
                false
            }
        }
    }

    async fn run_once(&self, ctx: &SourceContext, child: &mut Child) -> Ended {
        if let Some(err) = child.stderr.take() {
            tokio::spawn(drain_stderr(err, self.log_stderr, ctx.name.clone()));
        }
        let Some(out) = child.stdout.take() else {
            return Ended::Exited;
        };
        let mut reader = BufReader::new(out);
        let mut line = Vec::new();
        let mut batch: Vec<Event> = Vec::with_capacity(self.batch);
        let mut last_flush = Instant::now();
        loop {
            let deadline = last_flush + self.batch_timeout;
            tokio::select! {
                biased;
                _ = ctx.shutdown.cancelled() => {
                    let _ = child.start_kill();
                    self.flush(ctx, &mut batch).await;
                    return Ended::Shutdown;
                }
                _ = tokio::time::sleep_until(deadline), if !batch.is_empty() => {
                    last_flush = Instant::now();
                    if !self.flush(ctx, &mut batch).await {
                        let _ = child.start_kill();
                        return Ended::ChannelFailed;
                    }
                }
                // Cancel-safe enough: bytes read before another branch wins stay in `line`.
                r = reader.read_until(b'\n', &mut line) => match r {
                    Ok(0) => {
                        if !line.is_empty() {
                            batch.push(line_event(&line));
                        }
                        if !self.flush(ctx, &mut batch).await {
                            let _ = child.start_kill();
                            return Ended::ChannelFailed;
                        }
                        return Ended::Exited;
                    }
                    Ok(_) => {
                        batch.push(line_event(&line));
                        line.clear();
                        if batch.len() >= self.batch || last_flush.elapsed() >= self.batch_timeout {
                            last_flush = Instant::now();
                            if !self.flush(ctx, &mut batch).await {
                                let _ = child.start_kill();
                                return Ended::ChannelFailed;
                            }
                        }
                    }
                    Err(e) => {
                        tracing::error!("source {}: reading the output of [{}] failed: {e}", ctx.name, self.command);
                        let _ = child.start_kill();
                        self.flush(ctx, &mut batch).await;
                        return Ended::Exited;
                    }
                },
            }
        }
    }
}

async fn drain_stderr(err: impl AsyncRead + Unpin, log: bool, name: String) {
    let mut r = BufReader::new(err);
    let mut line = Vec::new();
    loop {
        line.clear();
        match r.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if log {
                    let text = String::from_utf8_lossy(&line);
                    tracing::info!(
                        "source {name}: StderrLogger = '{}'",
                        text.trim_end_matches(['\n', '\r'])
                    );
                }
            }
        }
    }
}

#[async_trait]
impl Source for ExecSource {
    fn batch_size(&self) -> Option<usize> {
        Some(self.batch)
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> anyhow::Result<()> {
        loop {
            tracing::info!(
                "source {}: exec running command [{}]",
                ctx.name,
                self.command
            );
            let ended = match self.spawn() {
                Ok(mut child) => {
                    let ended = self.run_once(&ctx, &mut child).await;
                    match child.wait().await {
                        Ok(status) => {
                            let code = status
                                .code()
                                .map(|c| c.to_string())
                                .unwrap_or_else(|| status.to_string());
                            tracing::info!(
                                "source {}: command [{}] exited with {code}",
                                ctx.name,
                                self.command
                            );
                        }
                        Err(e) => tracing::warn!(
                            "source {}: waiting for [{}] failed: {e}",
                            ctx.name,
                            self.command
                        ),
                    }
                    ended
                }
                Err(e) => {
                    tracing::error!(
                        "source {}: cannot run command [{}]: {e}",
                        ctx.name,
                        self.command
                    );
                    Ended::Exited
                }
            };
            if matches!(ended, Ended::Shutdown) || ctx.shutdown.is_cancelled() {
                return Ok(());
            }
            if matches!(ended, Ended::ChannelFailed) {
                tracing::debug!(
                    "source {}: command killed after a channel failure",
                    ctx.name
                );
            }
            if !self.restart {
                tracing::info!(
                    "source {}: restart is false; the source stays idle",
                    ctx.name
                );
                ctx.shutdown.cancelled().await;
                return Ok(());
            }
            tracing::info!(
                "source {}: restarting [{}] in {:?}",
                ctx.name,
                self.command,
                self.restart_throttle
            );
            tokio::select! {
                _ = ctx.shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(self.restart_throttle) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_event_strips_crlf() {
        assert_eq!(&line_event(b"a b\r\n").body[..], b"a b");
        assert_eq!(&line_event(b"x\n").body[..], b"x");
        assert_eq!(&line_event(b"tail").body[..], b"tail");
    }

    #[test]
    fn command_split_like_flume() {
        let ctx = Context::from_pairs("a.sources.r.", [("command", "tail -F /x.log # tail")]);
        assert!(build("r", &ctx).is_ok());
        let ctx = Context::from_pairs("a.sources.r.", [("command", "x"), ("charset", "UTF-16")]);
        assert!(build("r", &ctx).is_err());
    }
}
