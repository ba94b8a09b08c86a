//! The network server: accept loop with a connection cap, one task per connection, periodic
//! checkpoints, and an orderly shutdown. `run` takes listeners that are already bound, so
//! tests hand it ephemeral ports.

pub mod connection;
pub mod frame;
pub mod output;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use crate::api::Broker;

/// How long connections get to finish their request once shutdown starts.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// One bound listener and the address it advertises (None: the address the client used).
pub struct Listener {
    /// The bound socket.
    pub socket: TcpListener,
    /// `HOST:PORT` to put in Metadata, if configured.
    pub advertised: Option<(String, u16)>,
    /// The listener's name (`PLAINTEXT` for an unnamed one).
    pub name: String,
    /// Its security protocol.
    pub protocol: crate::security::Protocol,
    /// The TLS handshake settings of an SSL or SASL_SSL listener.
    pub tls: Option<Arc<crate::security::tls::TlsAcceptor>>,
}

impl Listener {
    /// An unnamed PLAINTEXT listener on `socket`, advertising the address clients use.
    pub fn plaintext(socket: TcpListener) -> Listener {
        Listener {
            socket,
            advertised: None,
            name: "PLAINTEXT".into(),
            protocol: crate::security::Protocol::Plaintext,
            tls: None,
        }
    }
}

/// Serve until `shutdown` resolves, then stop accepting, let connections finish the request
/// in hand, flush every partition and write the checkpoints.
pub async fn run(
    listeners: Vec<Listener>,
    broker: Arc<Broker>,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let token = broker.shutdown.clone();
    let limit = Arc::new(Semaphore::new(broker.config.max_connections));
    let mut tasks = JoinSet::new();
    for (i, l) in listeners.into_iter().enumerate() {
        let broker = Arc::clone(&broker);
        let limit = Arc::clone(&limit);
        tasks.spawn(accept_loop(i, l, broker, limit));
    }
    let checkpointer = tokio::spawn(checkpoint_loop(Arc::clone(&broker)));
    let group_timer = tokio::spawn(group_timer(Arc::clone(&broker)));
    let retention = tokio::spawn(retention_loop(Arc::clone(&broker)));
    let cleaner = tokio::spawn(cleaner_loop(Arc::clone(&broker)));
    let txn_timer = tokio::spawn(txn_timer(Arc::clone(&broker)));
    shutdown.await;
    info!("shutting down");
    token.cancel();
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        warn!("connections did not finish within the grace period; aborting them");
        tasks.abort_all();
    }
    checkpointer.abort();
    group_timer.abort();
    retention.abort();
    cleaner.abort();
    txn_timer.abort();
    broker.fetch_sessions.log_stats();
    let b = Arc::clone(&broker);
    tokio::task::spawn_blocking(move || b.logs.checkpoint()).await??;
    info!("all partitions flushed; bye");
    Ok(())
}

async fn accept_loop(index: usize, l: Listener, broker: Arc<Broker>, limit: Arc<Semaphore>) {
    let token = broker.shutdown.clone();
    let counters = broker.metrics.listener(&l.name);
    let mut conns = JoinSet::new();
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&limit).acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = token.cancelled() => break,
        };
        let accepted = tokio::select! {
            a = l.socket.accept() => a,
            _ = token.cancelled() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let local: SocketAddr = match stream.local_addr() {
                    Ok(a) => a,
                    Err(e) => {
                        warn!(%peer, error = %e, "no local address for connection");
                        continue;
                    }
                };
                let info = crate::api::ConnInfo {
                    peer,
                    local,
                    listener: index,
                    advertised: l.advertised.clone(),
                    listener_name: l.name.clone(),
                    protocol: l.protocol,
                };
                let broker = Arc::clone(&broker);
                let tls = l.tls.clone();
                let counters = Arc::clone(&counters);
                counters.opened.fetch_add(1, Ordering::Relaxed);
                conns.spawn(async move {
                    connection::serve(stream, info, broker, tls).await;
                    counters.closed.fetch_add(1, Ordering::Relaxed);
                    drop(permit);
                });
            }
            Err(e) => {
                // EMFILE and friends: back off briefly rather than spin.
                error!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        while conns.try_join_next().is_some() {}
    }
    while conns.join_next().await.is_some() {}
}

async fn checkpoint_loop(broker: Arc<Broker>) {
    // `log.flush.interval.ms`, when set, makes the periodic flush run at least that often.
    let flush_ms = u64::try_from(broker.config.log.flush_ms).unwrap_or(u64::MAX);
    let every = Duration::from_millis(broker.config.checkpoint_interval_ms.min(flush_ms).max(1));
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let b = Arc::clone(&broker);
        match tokio::task::spawn_blocking(move || b.logs.checkpoint()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => error!(error = %e, "checkpoint failed"),
            Err(e) => error!(error = %e, "checkpoint task failed"),
        }
    }
}

/// Drives group session expiry and join deadlines, and offset retention.
async fn group_timer(broker: Arc<Broker>) {
    let mut tick = tokio::time::interval(Duration::from_millis(crate::group::TICK_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Kafka's `offsets.retention.check.interval.ms` default: 10 minutes.
    let retention_every = 600_000 / crate::group::TICK_MS;
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        broker.groups.tick();
        broker.shares.tick(|g| broker.groups.configs.share(g));
        if broker.groups.has_dirty() {
            let b = Arc::clone(&broker);
            if let Err(e) = tokio::task::spawn_blocking(move || b.groups.persist_dirty()).await {
                error!(error = %e, "storing group metadata failed");
            }
        }
        n += 1;
        if n % retention_every == 0 {
            let b = Arc::clone(&broker);
            if let Err(e) = tokio::task::spawn_blocking(move || b.groups.expire_offsets()).await {
                error!(error = %e, "offset retention task failed");
            }
        }
    }
}

/// Aborts transactions past their timeout every
/// `transaction.abort.timed.out.transaction.cleanup.interval.ms` (and finishes any left
/// prepared, and forgets expired transactional ids).
async fn txn_timer(broker: Arc<Broker>) {
    let mut tick =
        tokio::time::interval(Duration::from_millis(broker.config.txn.abort_interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        broker.txns.tick(broker.txn_env()).await;
    }
}

/// Deletes segments past retention every `log.retention.check.interval.ms`.
async fn retention_loop(broker: Arc<Broker>) {
    let mut tick = tokio::time::interval(Duration::from_millis(
        broker.config.retention_check_interval_ms,
    ));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let b = Arc::clone(&broker);
        if let Err(e) = tokio::task::spawn_blocking(move || b.logs.enforce_retention()).await {
            error!(error = %e, "retention task failed");
        }
    }
}

/// Compacts `cleanup.policy=compact` topics every `log.cleaner.backoff.ms`.
async fn cleaner_loop(broker: Arc<Broker>) {
    let mut tick = tokio::time::interval(Duration::from_millis(broker.config.cleaner_backoff_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let b = Arc::clone(&broker);
        if let Err(e) = tokio::task::spawn_blocking(move || b.logs.compact_all()).await {
            error!(error = %e, "compaction task failed");
        }
    }
}
