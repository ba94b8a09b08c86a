//! The `kafka` channel (not implemented yet).

use std::sync::Arc;

use super::Channel;
use crate::conf::{ConfigError, Context};

/// Build the channel.
pub fn build(_name: &str, ctx: &Context) -> Result<Arc<dyn Channel>, ConfigError> {
    Err(ctx.error("type", "not implemented yet"))
}
