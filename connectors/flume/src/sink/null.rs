//! The `null` sink: takes batches of `batchSize` (100) and discards them.

use std::sync::Arc;

use async_trait::async_trait;

use super::{drain_in_process, Sink, Status};
use crate::channel::Channel;
use crate::conf::{ConfigError, Context};
use crate::counters::{Counters, Kind};

/// Build the sink.
pub fn build(
    name: &str,
    ctx: &Context,
    channel: Arc<dyn Channel>,
) -> Result<Box<dyn Sink>, ConfigError> {
    let batch: usize = ctx.parse("batchSize", 100)?;
    if batch == 0 {
        return Err(ctx.error("batchSize", "must be greater than 0"));
    }
    Ok(Box::new(NullSink {
        name: name.to_string(),
        channel,
        batch,
        counters: Arc::new(Counters::new(Kind::Sink, name)),
    }))
}

struct NullSink {
    name: String,
    channel: Arc<dyn Channel>,
    batch: usize,
    counters: Arc<Counters>,
}

#[async_trait]
impl Sink for NullSink {
    fn name(&self) -> &str {
        &self.name
    }
    fn channel(&self) -> &Arc<dyn Channel> {
        &self.channel
    }
    fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }
    fn batch_size(&self) -> Option<usize> {
        Some(self.batch)
    }
    async fn process(&mut self) -> anyhow::Result<Status> {
        drain_in_process(&self.channel, self.batch, &self.counters, |_| {}).await
    }
}
