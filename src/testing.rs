//! `TestBroker`: a broker on an ephemeral port in a temp dir, for integration tests. Shuts
//! down (cleanly, with a checkpoint) when dropped. Behind the `test-util` feature.

use std::net::SocketAddr;
use std::path::Path;

use tempfile::TempDir;
use tokio::sync::oneshot;

use crate::api::Broker;
use crate::config::Config;
use crate::server::{self, Listener};

/// A running broker for tests.
pub struct TestBroker {
    /// Address it listens on (and advertises).
    pub addr: SocketAddr,
    dir: TempDir,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestBroker {
    /// Start with default config.
    pub fn start() -> Self {
        Self::start_with(Config::default())
    }

    /// Start with `config` (its data dir and listeners are replaced).
    pub fn start_with(config: Config) -> Self {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("temp dir: {e}"),
        };
        Self::start_in(config, dir)
    }

    fn start_in(mut config: Config, dir: TempDir) -> Self {
        config.data_dir = dir.path().to_path_buf();
        config.listeners = vec!["127.0.0.1:0".into()];
        config.advertised_listeners.clear();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => panic!("runtime: {e}"),
            };
            rt.block_on(async move {
                let socket = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
                    Ok(s) => s,
                    Err(e) => panic!("bind: {e}"),
                };
                let broker = match Broker::open(config) {
                    Ok(b) => b,
                    Err(e) => panic!("open: {e}"),
                };
                let _ = addr_tx.send(socket.local_addr().ok());
                let listeners = vec![Listener::plaintext(socket)];
                if let Err(e) = server::run(listeners, broker, async {
                    let _ = stop_rx.await;
                })
                .await
                {
                    panic!("server: {e}");
                }
            });
        });
        let addr = match addr_rx.recv() {
            Ok(Some(a)) => a,
            _ => panic!("test broker failed to start"),
        };
        TestBroker {
            addr,
            dir,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stop cleanly and start again on the same data directory (new port).
    pub fn restart(mut self, config: Config) -> Self {
        self.shutdown();
        let dir = match self.dir_take() {
            Some(d) => d,
            None => panic!("no data dir"),
        };
        Self::start_in(config, dir)
    }

    /// Stop cleanly, let `f` change the data directory while the broker is down, then
    /// start again on it (new port).
    pub fn restart_after(mut self, config: Config, f: impl FnOnce(&Path)) -> Self {
        self.shutdown();
        f(self.dir.path());
        let dir = match self.dir_take() {
            Some(d) => d,
            None => panic!("no data dir"),
        };
        Self::start_in(config, dir)
    }

    fn dir_take(&mut self) -> Option<TempDir> {
        let placeholder = tempfile::tempdir().ok()?;
        Some(std::mem::replace(&mut self.dir, placeholder))
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.shutdown();
    }
}
