//! The agent: builds components from an [`AgentConfig`] with Flume's materialisation rules
//! (unknown or misconfigured components dropped with a warning, batch sizes checked against
//! channel transaction capacities, channels with nothing connected removed), then runs them
//! and shuts them down in order: sources first (each finishes the batch in hand), then sink
//! runners (each finishes its transaction and drains briefly), then channels (the file
//! channel checkpoints).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::channel::Channel;
use crate::conf::{AgentConfig, ComponentConfig, ConfigError, Warning};
use crate::counters::{Counters, Kind};
use crate::registry::{self, Resolved};
use crate::sink::processor::SinkProcessor;
use crate::sink::{self, Sink};
use crate::source::interceptor;
use crate::source::selector::Selector;
use crate::source::{ChannelProcessor, Source, SourceContext};

/// How long sources get to finish their batch on shutdown.
const SOURCE_STOP_GRACE: Duration = Duration::from_secs(30);
/// How long sink runners get on shutdown (on top of their drain grace).
const SINK_STOP_GRACE: Duration = Duration::from_secs(30);

/// A built, not yet running agent.
pub struct Agent {
    name: String,
    channels: Vec<Arc<dyn Channel>>,
    sources: Vec<(Box<dyn Source>, SourceContext)>,
    processors: Vec<SinkProcessor>,
    counters: Vec<Arc<Counters>>,
}

fn warn(warnings: &mut Vec<Warning>, c: &ComponentConfig, message: String) {
    let prop = c.context.prop("type");
    warnings.push(Warning {
        file: prop.map(|p| p.file.as_ref().clone()),
        line: prop.map(|p| p.line).unwrap_or(0),
        key: format!("{}type", c.context.prefix()),
        message,
    });
}

fn type_problem(kind: &str, c: &ComponentConfig, r: Resolved) -> Option<String> {
    match r {
        Resolved::Known(_) => None,
        Resolved::Unsupported(t) => Some(format!(
            "{kind} {} removed: type {t} is a Flume type that sluice-flume does not implement",
            c.name
        )),
        Resolved::Unknown => Some(format!(
            "{kind} {} removed: unknown type {:?} (not a Flume alias or a class name sluice-flume knows)",
            c.name, c.type_name
        )),
    }
}

impl Agent {
    /// Build the components of `cfg`. Dropped components are added to `warnings`; an agent
    /// with nothing left to run is an error.
    pub fn build(cfg: AgentConfig, warnings: &mut Vec<Warning>) -> Result<Agent, ConfigError> {
        let mut channels: BTreeMap<String, Arc<dyn Channel>> = BTreeMap::new();
        for c in &cfg.channels {
            let r = registry::channel_type(&c.type_name);
            if let Some(msg) = type_problem("channel", c, r) {
                warn(warnings, c, msg);
                continue;
            }
            let Resolved::Known(kind) = r else { continue };
            match registry::build_channel(kind, &c.name, &c.context) {
                Ok(ch) => {
                    channels.insert(c.name.clone(), ch);
                }
                Err(e) => warnings
                    .push(Warning::from(e).prefixed(&format!("channel {} removed: ", c.name))),
            }
        }

        let mut used: HashSet<String> = HashSet::new();
        let mut sources = Vec::new();
        let mut counters = Vec::new();
        'sources: for s in cfg.sources {
            let c = &s.component;
            let r = registry::source_type(&c.type_name);
            if let Some(msg) = type_problem("source", c, r) {
                warn(warnings, c, msg);
                continue;
            }
            let Resolved::Known(kind) = r else { continue };
            let chans: Vec<(String, Arc<dyn Channel>)> = s
                .channels
                .iter()
                .filter_map(|n| channels.get(n).map(|ch| (n.clone(), ch.clone())))
                .collect();
            if chans.is_empty() {
                warn(
                    warnings,
                    c,
                    format!("source {} removed: none of its channels is valid", c.name),
                );
                continue;
            }
            let source = match registry::build_source(kind, &c.name, &c.context) {
                Ok(src) => src,
                Err(e) => {
                    warnings
                        .push(Warning::from(e).prefixed(&format!("source {} removed: ", c.name)));
                    continue;
                }
            };
            if let Some(batch) = source.batch_size() {
                for (n, ch) in &chans {
                    if let Some(cap) = ch.transaction_capacity().filter(|cap| batch > *cap) {
                        warn(
                            warnings,
                            c,
                            format!("source {} removed: its batch size {batch} is greater than channel {n}'s transactionCapacity {cap}", c.name),
                        );
                        continue 'sources;
                    }
                }
            }
            let names: Vec<String> = chans.iter().map(|(n, _)| n.clone()).collect();
            let selector = match Selector::build(&s.selector, &names) {
                Ok(Some(sel)) => sel,
                Ok(None) => {
                    warn(
                        warnings,
                        c,
                        format!(
                            "source {} removed: unknown selector type {:?}",
                            c.name,
                            s.selector.get("type").unwrap_or("")
                        ),
                    );
                    continue;
                }
                Err(e) => {
                    warnings
                        .push(Warning::from(e).prefixed(&format!("source {} removed: ", c.name)));
                    continue;
                }
            };
            let mut chain = Vec::new();
            for i in &s.interceptors {
                match interceptor::build(&i.type_name, &i.context) {
                    Ok(Some(b)) => chain.push(b),
                    Ok(None) => {
                        warn(
                            warnings,
                            i,
                            format!(
                                "source {} removed: unknown interceptor type {:?}",
                                c.name, i.type_name
                            ),
                        );
                        continue 'sources;
                    }
                    Err(e) => {
                        warnings.push(
                            Warning::from(e).prefixed(&format!("source {} removed: ", c.name)),
                        );
                        continue 'sources;
                    }
                }
            }
            for n in &names {
                used.insert(n.clone());
            }
            let sc = Arc::new(Counters::new(Kind::Source, &c.name));
            counters.push(sc.clone());
            let processor = ChannelProcessor::new(
                chain,
                selector,
                chans.into_iter().map(|(_, ch)| ch).collect(),
                sc.clone(),
            );
            sources.push((
                source,
                SourceContext {
                    name: c.name.clone(),
                    processor: Arc::new(processor),
                    counters: sc,
                    shutdown: CancellationToken::new(),
                },
            ));
        }

        let mut sinks: BTreeMap<String, Box<dyn Sink>> = BTreeMap::new();
        let mut sink_order = Vec::new();
        for s in cfg.sinks {
            let c = &s.component;
            let r = registry::sink_type(&c.type_name);
            if let Some(msg) = type_problem("sink", c, r) {
                warn(warnings, c, msg);
                continue;
            }
            let Resolved::Known(kind) = r else { continue };
            let Some(ch) = channels.get(&s.channel) else {
                warn(
                    warnings,
                    c,
                    format!(
                        "sink {} removed: channel {} is not valid",
                        c.name, s.channel
                    ),
                );
                continue;
            };
            let sink = match registry::build_sink(kind, &c.name, &c.context, ch.clone()) {
                Ok(k) => k,
                Err(e) => {
                    warnings.push(Warning::from(e).prefixed(&format!("sink {} removed: ", c.name)));
                    continue;
                }
            };
            if let (Some(batch), Some(cap)) = (sink.batch_size(), ch.transaction_capacity()) {
                if batch > cap {
                    warn(
                        warnings,
                        c,
                        format!("sink {} removed: its batch size {batch} is greater than channel {}'s transactionCapacity {cap}", c.name, s.channel),
                    );
                    continue;
                }
            }
            used.insert(s.channel.clone());
            counters.push(sink.counters());
            sink_order.push(c.name.clone());
            sinks.insert(c.name.clone(), sink);
        }

        let mut processors = Vec::new();
        for g in cfg.sink_groups {
            let members: Vec<Box<dyn Sink>> =
                g.sinks.iter().filter_map(|n| sinks.remove(n)).collect();
            if members.is_empty() {
                continue;
            }
            let names: Vec<String> = members.iter().map(|s| s.name().to_string()).collect();
            match SinkProcessor::group(&g.name, &g.processor, members) {
                Ok(Some(p)) => processors.push(p),
                Ok(None) => warnings.push(Warning {
                    file: g.processor.prop("type").map(|p| p.file.as_ref().clone()),
                    line: g.processor.prop("type").map(|p| p.line).unwrap_or(0),
                    key: format!("{}type", g.processor.prefix()),
                    message: format!(
                        "sink group {} removed (sinks {} not run): unknown processor type",
                        g.name,
                        names.join(" ")
                    ),
                }),
                Err(e) => warnings.push(Warning::from(e).prefixed(&format!(
                    "sink group {} removed (sinks {} not run): ",
                    g.name,
                    names.join(" ")
                ))),
            }
        }
        for n in sink_order {
            if let Some(s) = sinks.remove(&n) {
                processors.push(SinkProcessor::single(s));
            }
        }

        for c in &cfg.channels {
            if channels.contains_key(&c.name) && !used.contains(&c.name) {
                warn(
                    warnings,
                    c,
                    format!("channel {} removed: it has no components connected", c.name),
                );
                channels.remove(&c.name);
            }
        }
        if sources.is_empty() && processors.is_empty() {
            return Err(ConfigError {
                file: None,
                line: 0,
                key: String::new(),
                message: format!(
                    "agent {}: no source or sink is left to run after the warnings above",
                    cfg.name
                ),
            });
        }
        let channels: Vec<Arc<dyn Channel>> = channels.into_values().collect();
        counters.extend(channels.iter().map(|c| c.counters()));
        Ok(Agent {
            name: cfg.name,
            channels,
            sources,
            processors,
            counters,
        })
    }

    /// Every component's counters (for monitoring).
    pub fn counters(&self) -> Vec<Arc<Counters>> {
        self.counters.clone()
    }

    /// Run until `shutdown` is cancelled, then stop in order.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let name = self.name;
        for ch in &self.channels {
            ch.start()
                .await
                .map_err(|e| e.context(format!("channel {} failed to start", ch.name())))?;
            ch.counters().started();
        }
        let sink_token = CancellationToken::new();
        let mut sink_tasks = Vec::new();
        for p in self.processors {
            tracing::info!("starting sink {}", p.label());
            sink_tasks.push(tokio::spawn(sink::run(p, sink_token.clone())));
        }
        let mut source_tasks = Vec::new();
        let mut source_tokens = Vec::new();
        for (src, ctx) in self.sources {
            tracing::info!("starting source {}", ctx.name);
            source_tokens.push(ctx.shutdown.clone());
            ctx.counters.started();
            let counters = ctx.counters.clone();
            let sname = ctx.name.clone();
            source_tasks.push(tokio::spawn(async move {
                if let Err(e) = src.run(ctx).await {
                    tracing::error!("source {sname} stopped: {e:#}");
                }
                counters.stopped();
            }));
        }
        tracing::info!("agent {name} started");
        shutdown.cancelled().await;
        tracing::info!("agent {name} stopping: sources first");
        for t in &source_tokens {
            t.cancel();
        }
        for t in source_tasks {
            if tokio::time::timeout(SOURCE_STOP_GRACE, t).await.is_err() {
                tracing::warn!("a source did not stop within {SOURCE_STOP_GRACE:?}");
            }
        }
        sink_token.cancel();
        for t in sink_tasks {
            if tokio::time::timeout(SINK_STOP_GRACE, t).await.is_err() {
                tracing::warn!("a sink did not stop within {SINK_STOP_GRACE:?}");
            }
        }
        for ch in &self.channels {
            ch.stop().await;
            ch.counters().stopped();
        }
        tracing::info!("agent {name} stopped");
        Ok(())
    }
}
