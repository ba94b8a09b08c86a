//! `Context`: the properties of one component (Flume's `Context`), with typed getters whose
//! errors name the file, the line, the full key and what is wrong.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use super::ConfigError;

/// One property value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prop {
    /// The value, already trimmed as Flume trims it.
    pub value: String,
    /// The file it was read from.
    pub file: Arc<PathBuf>,
    /// 1-based line of the key in that file (0 when it did not come from a file).
    pub line: usize,
}

/// The properties under one prefix, e.g. everything under `agent1.sinks.k1.`.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The full prefix of every key here (`agent1.sinks.k1.`), for messages.
    prefix: String,
    props: BTreeMap<String, Prop>,
}

impl Context {
    /// A context over `props` (keys relative to `prefix`).
    pub fn new(prefix: impl Into<String>, props: BTreeMap<String, Prop>) -> Self {
        Context {
            prefix: prefix.into(),
            props,
        }
    }

    /// A context from plain pairs (tests, programmatic use); no file information.
    pub fn from_pairs<'a>(
        prefix: &str,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        let file = Arc::new(PathBuf::new());
        let props = pairs
            .into_iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    Prop {
                        value: v.to_string(),
                        file: file.clone(),
                        line: 0,
                    },
                )
            })
            .collect();
        Context::new(prefix, props)
    }

    /// The full prefix, e.g. `agent1.sinks.k1.`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Every key (relative) and its property.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Prop)> {
        self.props.iter().map(|(k, p)| (k.as_str(), p))
    }

    /// True when no property is set.
    pub fn is_empty(&self) -> bool {
        self.props.is_empty()
    }

    /// The property behind `key`, with its location.
    pub fn prop(&self, key: &str) -> Option<&Prop> {
        self.props.get(key)
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.props.get(key).map(|p| p.value.as_str())
    }

    /// The value of `key`, or `default`.
    pub fn string(&self, key: &str, default: &str) -> String {
        self.get(key).unwrap_or(default).to_string()
    }

    /// The value of a required key; its absence is an error naming the key.
    pub fn require(&self, key: &str) -> Result<&str, ConfigError> {
        match self.get(key) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(self.error(key, "is required but not set")),
        }
    }

    /// A number (any `FromStr` integer or float type), or `default` when unset.
    pub fn parse<T>(&self, key: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<T>()
                .map_err(|e| self.error(key, &format!("{v:?} is not a valid number: {e}"))),
        }
    }

    /// A required number.
    pub fn parse_required<T>(&self, key: &str) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        let v = self.require(key)?;
        v.trim()
            .parse::<T>()
            .map_err(|e| self.error(key, &format!("{v:?} is not a valid number: {e}")))
    }

    /// A boolean: `true`/`false` in any case. Flume's `Boolean.parseBoolean` turns anything
    /// else into `false` silently; we refuse it instead, naming the key (a documented
    /// deviation: `restart = yes` silently meaning false is a trap, not a feature).
    pub fn bool(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) if v.trim().eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.trim().eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(self.error(key, &format!("{v:?} is not a boolean (true or false)"))),
        }
    }

    /// The properties whose keys start with `prefix`, with the prefix removed
    /// (`sub("hdfs.")` turns `hdfs.path` into `path`).
    pub fn sub(&self, prefix: &str) -> Context {
        let props = self
            .props
            .iter()
            .filter_map(|(k, p)| {
                k.strip_prefix(prefix)
                    .map(|rest| (rest.to_string(), p.clone()))
            })
            .collect();
        Context::new(format!("{}{prefix}", self.prefix), props)
    }

    /// An error about `key`: `FILE:LINE: PREFIXkey: message` (file and line when known).
    pub fn error(&self, key: &str, message: &str) -> ConfigError {
        let (file, line) = match self.props.get(key) {
            Some(p) => (Some(p.file.as_ref().clone()), p.line),
            None => (self.any_file(), 0),
        };
        ConfigError {
            file,
            line,
            key: format!("{}{key}", self.prefix),
            message: message.to_string(),
        }
    }

    /// The file any property came from (for errors about keys that are absent).
    fn any_file(&self) -> Option<PathBuf> {
        self.props
            .values()
            .map(|p| p.file.as_ref())
            .find(|f| !f.as_os_str().is_empty())
            .map(|f| f.to_path_buf())
    }
}
