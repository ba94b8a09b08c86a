//! The web console: HTML pages and their JSON endpoints, served on the HTTP listener at every
//! path but `/metrics` (see [`crate::http`]). A placeholder until the console lands.

use std::sync::Arc;

use crate::api::Broker;

/// The console's routes; `/metrics` is not one of them.
pub fn router(broker: Arc<Broker>) -> axum::Router {
    drop(broker);
    axum::Router::new()
}
