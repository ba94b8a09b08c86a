//! The `logger` sink: logs each event at INFO as Flume's `LoggerSink` does,
//! `Event: { headers:{k=v} body: 68 69  hi }`, with at most `maxBytesToLog` (16) body bytes.
//! Takes up to 100 events per transaction.

use std::fmt::Write as _;
use std::sync::Arc;

use async_trait::async_trait;

use super::{drain_in_process, Sink, Status};
use crate::channel::Channel;
use crate::conf::{ConfigError, Context};
use crate::counters::{Counters, Kind};
use crate::event::Event;

/// Events per transaction (Flume's `LoggerSink` default batch size).
const BATCH: usize = 100;

/// Build the sink.
pub fn build(
    name: &str,
    ctx: &Context,
    channel: Arc<dyn Channel>,
) -> Result<Box<dyn Sink>, ConfigError> {
    let max_bytes: usize = ctx.parse("maxBytesToLog", 16)?;
    Ok(Box::new(LoggerSink {
        name: name.to_string(),
        channel,
        max_bytes,
        counters: Arc::new(Counters::new(Kind::Sink, name)),
    }))
}

struct LoggerSink {
    name: String,
    channel: Arc<dyn Channel>,
    max_bytes: usize,
    counters: Arc<Counters>,
}

/// Flume's `EventHelper.dumpEvent`: hex of the first bytes, then the printable text.
pub fn dump_event(e: &Event, max_bytes: usize) -> String {
    let mut headers = String::from("{");
    for (i, (k, v)) in e.headers.iter().enumerate() {
        if i > 0 {
            headers.push_str(", ");
        }
        let _ = write!(headers, "{k}={v}");
    }
    headers.push('}');
    let shown = e.body.get(..e.body.len().min(max_bytes)).unwrap_or(&[]);
    let mut hex = String::new();
    for b in shown {
        let _ = write!(hex, "{b:02X} ");
    }
    let text: String = shown
        .iter()
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '.'
            }
        })
        .collect();
    format!("Event: {{ headers:{headers} body: {hex:<48} {text} }}")
}

#[async_trait]
impl Sink for LoggerSink {
    fn name(&self) -> &str {
        &self.name
    }
    fn channel(&self) -> &Arc<dyn Channel> {
        &self.channel
    }
    fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }
    async fn process(&mut self) -> anyhow::Result<Status> {
        // Flume's logger sink has no batch size setting (it is not checked against the
        // channel), so never take more than the channel's transaction allows.
        let batch = self
            .channel
            .transaction_capacity()
            .unwrap_or(BATCH)
            .min(BATCH);
        let max_bytes = self.max_bytes;
        drain_in_process(&self.channel, batch, &self.counters, |e| {
            tracing::info!(target: "org.apache.flume.sink.LoggerSink", "{}", dump_event(e, max_bytes));
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_matches_flume_layout() {
        let e = Event::new("hello world, this is long").with_header("a", "b");
        let s = dump_event(&e, 16);
        assert!(
            s.starts_with(
                "Event: { headers:{a=b} body: 68 65 6C 6C 6F 20 77 6F 72 6C 64 2C 20 74 68 69 "
            ),
            "{s}"
        );
        assert!(s.ends_with("hello world, thi }"), "{s}");
    }
}
