//! The `hdfs` sink (not implemented yet).

pub mod escape;
pub mod serializer;

use std::sync::Arc;

use super::Sink;
use crate::channel::Channel;
use crate::conf::{ConfigError, Context};

/// Build the sink.
pub fn build(
    _name: &str,
    ctx: &Context,
    _channel: Arc<dyn Channel>,
) -> Result<Box<dyn Sink>, ConfigError> {
    Err(ctx.error("type", "not implemented yet"))
}
