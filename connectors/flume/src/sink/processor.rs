//! Sink processors: `default` (one sink), `failover` (highest priority live sink; a failed
//! sink is benched for `min(maxpenalty, 2^failures × 1 s)`), `load_balance` (round robin or
//! random over the sinks, optionally backing off failed ones; if all fail the error is
//! returned).

use std::time::Duration;

use tokio::time::Instant;

use super::{Sink, Status};
use crate::conf::{ConfigError, Context};

/// How long a sink that failed `fails` times in a row sits out: `2^fails` seconds, at most
/// `max` (Flume's failover and load-balancing back-off).
fn penalty(fails: u32, max: Duration) -> Duration {
    Duration::from_secs(1)
        .saturating_mul(1u32.checked_shl(fails).unwrap_or(u32::MAX))
        .min(max)
}

/// How a group of sinks is driven.
pub struct SinkProcessor {
    label: String,
    sinks: Vec<Box<dyn Sink>>,
    policy: Policy,
}

enum Policy {
    Default,
    Failover {
        /// Per sink: priority (higher first).
        priority: Vec<i64>,
        /// Per sink: failures in a row and benched-until.
        state: Vec<(u32, Option<Instant>)>,
        max_penalty: Duration,
    },
    LoadBalance {
        random: bool,
        next: usize,
        backoff: bool,
        max_timeout: Duration,
        state: Vec<(u32, Option<Instant>)>,
    },
}

impl SinkProcessor {
    /// One sink on its own (`DefaultSinkProcessor`).
    pub fn single(sink: Box<dyn Sink>) -> Self {
        SinkProcessor {
            label: sink.name().to_string(),
            sinks: vec![sink],
            policy: Policy::Default,
        }
    }

    /// A sink group from its `processor.` context. `Ok(None)`: unknown processor type.
    pub fn group(
        name: &str,
        ctx: &Context,
        sinks: Vec<Box<dyn Sink>>,
    ) -> Result<Option<Self>, ConfigError> {
        let label = format!(
            "{name} ({})",
            sinks.iter().map(|s| s.name()).collect::<Vec<_>>().join(" ")
        );
        let n = sinks.len();
        let policy = match ctx.string("type", "default").to_ascii_lowercase().as_str() {
            "default" => {
                if n != 1 {
                    return Err(ctx.error(
                        "type",
                        &format!("the default processor takes exactly one sink, group has {n}"),
                    ));
                }
                Policy::Default
            }
            "failover" => {
                let mut priority = Vec::with_capacity(n);
                for s in &sinks {
                    priority.push(ctx.parse::<i64>(&format!("priority.{}", s.name()), 0)?);
                }
                Policy::Failover {
                    priority,
                    state: vec![(0, None); n],
                    max_penalty: Duration::from_millis(ctx.parse("maxpenalty", 30_000u64)?),
                }
            }
            "load_balance" => {
                let selector = ctx.string("selector", "round_robin");
                let random = match selector.as_str() {
                    "round_robin" => false,
                    "random" => true,
                    other => {
                        return Err(ctx.error(
                            "selector",
                            &format!("unsupported selector {other:?} (round_robin or random)"),
                        ))
                    }
                };
                Policy::LoadBalance {
                    random,
                    next: 0,
                    backoff: ctx.bool("backoff", false)?,
                    max_timeout: Duration::from_millis(
                        ctx.parse("selector.maxTimeOut", 30_000u64)?,
                    ),
                    state: vec![(0, None); n],
                }
            }
            _ => return Ok(None),
        };
        Ok(Some(SinkProcessor {
            label,
            sinks,
            policy,
        }))
    }

    /// For log lines.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The sinks.
    pub fn sinks(&self) -> &[Box<dyn Sink>] {
        &self.sinks
    }

    /// Start every sink.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        for s in &mut self.sinks {
            s.start().await?;
            s.counters().started();
        }
        Ok(())
    }

    /// Stop every sink.
    pub async fn stop(&mut self) {
        for s in &mut self.sinks {
            s.stop().await;
            s.counters().stopped();
        }
    }

    /// Wait until some sink's channel may have events, at most `timeout`.
    pub fn wait_for_events(
        &self,
        timeout: Duration,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let channel = match self.sinks.first() {
            Some(s) if self.sinks.len() == 1 => Some(s.channel().clone()),
            _ => None,
        };
        async move {
            match channel {
                Some(ch) => ch.wait_for_events(timeout).await,
                None => tokio::time::sleep(timeout).await,
            }
        }
    }

    /// One round.
    pub async fn process(&mut self) -> anyhow::Result<Status> {
        match &mut self.policy {
            Policy::Default => match self.sinks.first_mut() {
                Some(s) => s.process().await,
                None => Ok(Status::Backoff),
            },
            Policy::Failover {
                priority,
                state,
                max_penalty,
            } => {
                let now = Instant::now();
                let mut order: Vec<usize> = (0..self.sinks.len()).collect();
                order.sort_by_key(|&i| std::cmp::Reverse(priority.get(i).copied().unwrap_or(0)));
                let mut last_err = None;
                for i in order {
                    let Some((fails, until)) = state.get_mut(i) else {
                        continue;
                    };
                    if until.is_some_and(|u| u > now) {
                        continue;
                    }
                    let Some(sink) = self.sinks.get_mut(i) else {
                        continue;
                    };
                    match sink.process().await {
                        Ok(st) => {
                            *fails = 0;
                            *until = None;
                            return Ok(st);
                        }
                        Err(e) => {
                            *fails = fails.saturating_add(1);
                            let penalty = penalty(*fails, *max_penalty);
                            *until = Some(now + penalty);
                            tracing::warn!(
                                "failover: sink {} failed ({e:#}); benched for {penalty:?}",
                                sink.name()
                            );
                            last_err = Some(e);
                        }
                    }
                }
                match last_err {
                    Some(e) => Err(e.context("all sinks in the failover group failed")),
                    None => Ok(Status::Backoff),
                }
            }
            Policy::LoadBalance {
                random,
                next,
                backoff,
                max_timeout,
                state,
            } => {
                let n = self.sinks.len();
                if n == 0 {
                    return Ok(Status::Backoff);
                }
                let start = if *random {
                    usize::try_from(uuid::Uuid::new_v4().as_u128() % (n as u128)).unwrap_or(0)
                } else {
                    let s = *next % n;
                    *next = next.wrapping_add(1);
                    s
                };
                let now = Instant::now();
                let mut last_err = None;
                for k in 0..n {
                    let i = (start + k) % n;
                    let Some((fails, until)) = state.get_mut(i) else {
                        continue;
                    };
                    if *backoff && until.is_some_and(|u| u > now) {
                        continue;
                    }
                    let Some(sink) = self.sinks.get_mut(i) else {
                        continue;
                    };
                    match sink.process().await {
                        Ok(Status::Ready) => {
                            *fails = 0;
                            *until = None;
                            return Ok(Status::Ready);
                        }
                        Ok(Status::Backoff) => {}
                        Err(e) => {
                            *fails = fails.saturating_add(1);
                            if *backoff {
                                let wait = penalty(*fails, *max_timeout);
                                *until = Some(now + wait);
                            }
                            last_err = Some(e);
                        }
                    }
                }
                match last_err {
                    Some(e) => Err(e.context("all sinks in the load_balance group failed")),
                    None => Ok(Status::Backoff),
                }
            }
        }
    }
}
