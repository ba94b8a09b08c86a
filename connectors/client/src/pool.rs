//! Connections to brokers, pooled per address. A caller leases a connection for one round
//! trip and gives it back; concurrent callers get separate connections (up to
//! `max_connections_per_broker`), so a fetch long-polling on one connection never delays a
//! heartbeat or a commit. A lease dropped without being given back (its future was
//! cancelled, or the connection failed) closes its connection, which is how a connection is
//! re-established after a failure: the next lease opens a new one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::ClientConfig;
use crate::connection::Connection;
use crate::error::{Error, Result};

/// Idle connections and the connection cap of one broker address.
#[derive(Debug)]
struct Slot {
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

/// All pooled connections of one client.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

/// A connection borrowed from the pool; hand it back with [`Pool::give_back`].
#[derive(Debug)]
pub(crate) struct Lease {
    pub(crate) conn: Connection,
    slot: Arc<Slot>,
    _permit: OwnedSemaphorePermit,
}

impl Pool {
    fn slot(&self, addr: &str, config: &ClientConfig) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(slots.entry(addr.to_owned()).or_insert_with(|| {
            Arc::new(Slot {
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(Semaphore::new(config.max_connections_per_broker.max(1))),
            })
        }))
    }

    /// Leases a connection to `addr`, reusing an idle one or opening a new one.
    pub(crate) async fn lease(&self, addr: &str, config: &ClientConfig) -> Result<Lease> {
        let slot = self.slot(addr, config);
        let permit = Arc::clone(&slot.permits)
            .acquire_owned()
            .await
            .map_err(|_| Error::Protocol {
                addr: addr.to_owned(),
                message: "connection pool closed".to_owned(),
            })?;
        let reused = {
            let mut idle = slot.idle.lock().unwrap_or_else(|p| p.into_inner());
            let mut found = None;
            while let Some(conn) = idle.pop() {
                if conn.idle_for() < config.connections_max_idle
                    && conn.is_reusable()
                    && conn.looks_alive()
                {
                    found = Some(conn);
                    break;
                }
            }
            found
        };
        let conn = match reused {
            Some(conn) => conn,
            None => Connection::open(addr, config).await?,
        };
        Ok(Lease {
            conn,
            slot,
            _permit: permit,
        })
    }

    /// Returns a connection for reuse, unless it is broken.
    pub(crate) fn give_back(&self, lease: Lease) {
        if lease.conn.is_reusable() {
            let mut idle = lease.slot.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.push(lease.conn);
        }
    }

    /// Closes the idle connections to `addr` (after a failure there, the others are suspect).
    pub(crate) fn forget(&self, addr: &str) {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = slots.get(addr) {
            slot.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
        }
    }
}
