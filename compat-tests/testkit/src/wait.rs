//! Waiting with deadlines: sync and async polling, a bound on a future, and a SIGTERM that
//! waits for the exit. The short pauses only pace the polling; the deadline bounds it.

use std::future::Future;
use std::process::{Child, Command, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

/// Pause between two checks. It paces the polling; it never stands in for synchronisation.
const PACE: Duration = Duration::from_millis(20);

/// Checks `cond` until it holds or `deadline` passes; returns whether it held.
pub fn wait_until(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(PACE);
    }
}

/// Calls `check` until it returns `Some`; panics with `what` after `deadline`. The blocking
/// twin of [`eventually`].
pub fn poll_until<T>(deadline: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        thread::sleep(PACE);
    }
}

/// Calls `check` until it returns `Some`; panics with `what` after `deadline`.
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(PACE).await;
    }
}

/// Bounds a future that must finish; panics with `what` after `deadline`.
pub async fn within<T>(deadline: Duration, what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(deadline, f)
        .await
        .unwrap_or_else(|_| panic!("timed out after {deadline:?} waiting for {what}"))
}

/// Sends SIGTERM to `child` and waits up to `deadline` for its exit status; `None` (after a
/// SIGKILL and reaping it) if it did not exit in time.
pub fn sigterm_and_wait(child: &mut Child, deadline: Duration) -> Option<ExitStatus> {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(ok.success(), "kill -TERM failed");
    let mut status = None;
    let exited = wait_until(deadline, || {
        status = child.try_wait().expect("try_wait");
        status.is_some()
    });
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
    }
    status
}
