//! The `spooldir` source (not implemented yet).

use super::Source;
use crate::conf::{ConfigError, Context};

/// Build the source.
pub fn build(_name: &str, ctx: &Context) -> Result<Box<dyn Source>, ConfigError> {
    Err(ctx.error("type", "not implemented yet"))
}
