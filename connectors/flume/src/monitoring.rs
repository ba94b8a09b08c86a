//! Flume's HTTP monitoring (`-Dflume.monitoring.type=http -Dflume.monitoring.port=P`): the
//! counters of every component as JSON (not implemented yet).

use std::sync::Arc;

use crate::counters::Counters;

/// Serve the counters on `bind` until the process exits.
pub async fn serve(bind: std::net::SocketAddr, _counters: Vec<Arc<Counters>>) -> anyhow::Result<()> {
    anyhow::bail!("HTTP monitoring on {bind} is not implemented yet")
}
