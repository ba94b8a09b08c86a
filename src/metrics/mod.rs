//! The broker's metrics in Prometheus' text exposition format (0.0.4). Being filled in.

use crate::api::Broker;

/// The `/metrics` page.
pub fn render(broker: &Broker) -> String {
    let _ = broker;
    String::new()
}
