//! Configuration: Java `Properties` loading (`properties`), Flume's wiring and validation
//! rules (`load`), and the validated model the agent is built from.
//!
//! Loading never fails on a component Flume would drop: it drops it and records a
//! [`Warning`] (with `--strict` the caller turns warnings into errors). Problems that make
//! the whole agent unusable are [`ConfigError`]s. Both name the file, line and key.

mod context;
pub mod load;
pub mod properties;

use std::fmt;
use std::path::PathBuf;

pub use context::{Context, Prop};
pub use load::load;

/// A fatal configuration problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// File the problem is in (None when not from a file).
    pub file: Option<PathBuf>,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// Full key (`agent1.sources.r1.port`), or "" when the problem is not about one key.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        location(f, self.file.as_ref(), self.line)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        write!(f, "{}", self.message)
    }
}

/// A non-fatal problem: something was ignored or dropped, as Flume would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// File (None when not from a file).
    pub file: Option<PathBuf>,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// Full key, or "".
    pub key: String,
    /// What happened.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        location(f, self.file.as_ref(), self.line)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        write!(f, "{}", self.message)
    }
}

impl From<ConfigError> for Warning {
    fn from(e: ConfigError) -> Self {
        Warning {
            file: e.file,
            line: e.line,
            key: e.key,
            message: e.message,
        }
    }
}

fn location(f: &mut fmt::Formatter<'_>, file: Option<&PathBuf>, line: usize) -> fmt::Result {
    match (file, line) {
        (Some(p), 0) if !p.as_os_str().is_empty() => write!(f, "{}: ", p.display()),
        (Some(p), n) if !p.as_os_str().is_empty() => write!(f, "{}:{n}: ", p.display()),
        _ => Ok(()),
    }
}

/// One named component: its `type` as written and all of its properties.
#[derive(Debug, Clone)]
pub struct ComponentConfig {
    /// Component name (`r1`).
    pub name: String,
    /// The `type` value as written (`netcat`, `org.apache.flume.sink.kafka.KafkaSink`).
    pub type_name: String,
    /// Every property under `<agent>.<kind>.<name>.` (including `type`).
    pub context: Context,
}

/// A source and how it is wired.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// The source itself.
    pub component: ComponentConfig,
    /// Channels it writes to: the listed ones that are valid, in order.
    pub channels: Vec<String>,
    /// `selector.*` properties (`type` absent = replicating).
    pub selector: Context,
    /// Interceptors in list order; `context` is everything under `interceptors.<name>.`.
    pub interceptors: Vec<ComponentConfig>,
}

/// A sink and its one channel.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// The sink itself.
    pub component: ComponentConfig,
    /// The channel it takes from.
    pub channel: String,
}

/// A sink group and its processor.
#[derive(Debug, Clone)]
pub struct SinkGroupConfig {
    /// Group name.
    pub name: String,
    /// Member sinks, in list order.
    pub sinks: Vec<String>,
    /// `processor.*` properties (`type` absent = default).
    pub processor: Context,
}

/// The validated configuration of the agent named on the command line.
#[derive(Debug, Clone, Default)]
pub struct AgentConfig {
    /// Agent name (`agent1`).
    pub name: String,
    /// Sources, in the order of the `sources` list.
    pub sources: Vec<SourceConfig>,
    /// Channels, in the order of the `channels` list.
    pub channels: Vec<ComponentConfig>,
    /// Sinks, in the order of the `sinks` list.
    pub sinks: Vec<SinkConfig>,
    /// Sink groups.
    pub sink_groups: Vec<SinkGroupConfig>,
}

impl Warning {
    /// The same warning with `prefix` before its message.
    pub fn prefixed(mut self, prefix: &str) -> Self {
        self.message = format!("{prefix}{}", self.message);
        self
    }
}
