//! Lines of a child process's output, read by a thread for the child's whole life so the
//! child never blocks on a full pipe, and waited for with a deadline.

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The lines a [`follow`] thread has read; clones share them.
#[derive(Clone)]
pub struct Lines {
    rx: Arc<Mutex<mpsc::Receiver<String>>>,
    all: Arc<Mutex<Vec<String>>>,
}

impl Lines {
    /// Every line read so far (waiting for none).
    pub fn snapshot(&self) -> Vec<String> {
        self.drain();
        self.all.lock().unwrap().clone()
    }

    fn drain(&self) {
        let rx = self.rx.lock().unwrap();
        while let Ok(l) = rx.try_recv() {
            self.all.lock().unwrap().push(l);
        }
    }
}

/// Starts a thread that reads `out` line by line until it closes.
pub fn follow(out: impl Read + Send + 'static) -> Lines {
    let (tx, rx) = mpsc::channel::<String>();
    thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            // With every `Lines` gone, keep reading anyway: the child must not block on a
            // full pipe or die of SIGPIPE.
            let _receiver_may_be_gone = tx.send(line);
        }
    });
    Lines {
        rx: Arc::new(Mutex::new(rx)),
        all: Arc::new(Mutex::new(Vec::new())),
    }
}

/// Waits up to `deadline` for a line for which `pick` says `Some`; `None` if the deadline
/// passed or the output closed first.
pub fn wait_line<T>(
    lines: &Lines,
    deadline: Duration,
    pick: impl FnMut(&str) -> Option<T>,
) -> Option<T> {
    wait_line_or_why(lines, deadline, pick).ok()
}

/// [`wait_line`], saying why nothing was found: `Timeout` or `Disconnected` (output closed).
pub(crate) fn wait_line_or_why<T>(
    lines: &Lines,
    deadline: Duration,
    mut pick: impl FnMut(&str) -> Option<T>,
) -> Result<T, RecvTimeoutError> {
    let end = Instant::now() + deadline;
    let rx = lines.rx.lock().unwrap();
    loop {
        let line = rx.recv_timeout(end.saturating_duration_since(Instant::now()))?;
        let found = pick(&line);
        lines.all.lock().unwrap().push(line);
        if let Some(v) = found {
            return Ok(v);
        }
    }
}
