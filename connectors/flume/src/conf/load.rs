//! Loading an agent's configuration as `flume-ng agent` 1.11 does: read every
//! `--conf-file` into one property set (later files win), substitute `${...}` in values,
//! then Flume's `FlumeConfiguration` post-processing, config filters, validation and pruning
//! (CONNECTORS.md A1, A2). Parsing the bytes is `properties`; `${...}` and config filters
//! are `load::substitute`. What the components do with their properties (type aliases,
//! defaults, batch-size checks, pruning unused channels) is the runtime's business.
//!
//! Everything Flume drops or ignores is dropped here too, with a [`Warning`] naming the
//! file, line and key. Differences from Flume, on purpose:
//! - Where Flume drops silently (a source's unknown channel names, unlisted components,
//!   same-file duplicate keys) we also warn.
//! - Plain `${X}` is resolved against the whole merged configuration, recursively. Flume
//!   resolves it against the keys its hash map happened to process first, so its result
//!   depends on hash order.
//! - A substitution cycle is left as written, with a warning; Flume fails to start.
//! - An interceptor without a `type` is dropped with a warning; in Flume it makes the whole
//!   source fail.
//! - A sink group without `sinks` is removed with a warning; Flume throws a
//!   `NullPointerException` while loading.
//! - `${java:...}` lookups and the `hadoop` config filter are not supported: left as
//!   written, with a warning.

mod substitute;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use self::substitute::{apply_config_filters, substitute_all, Host};
use super::properties;
use super::{
    AgentConfig, ComponentConfig, ConfigError, Context, Prop, SinkConfig, SinkGroupConfig,
    SourceConfig, Warning,
};

/// What to load: the `flume-ng agent` options that matter here.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--conf-file`, repeatable; later files override earlier ones.
    pub files: Vec<PathBuf>,
    /// `--name`: the agent to return.
    pub agent: String,
    /// `-Dk=v`, read by `${sys:k}`.
    pub system_properties: BTreeMap<String, String>,
}

/// Loads the agent named in `opts` from its files: the validated configuration and every
/// warning about what was dropped or ignored. Fails when a file cannot be read or parsed,
/// when no file configures the agent, when none of its channels is valid, or when no
/// source and no sink survive validation.
pub fn load(opts: &LoadOptions) -> Result<(AgentConfig, Vec<Warning>), ConfigError> {
    let env = |name: &str| std::env::var(name).ok();
    let host = Host {
        env: &env,
        now: chrono::Local::now().fixed_offset(),
    };
    load_with(opts, &host)
}

fn load_with(
    opts: &LoadOptions,
    host: &Host<'_>,
) -> Result<(AgentConfig, Vec<Warning>), ConfigError> {
    if opts.files.is_empty() {
        return Err(error(
            None,
            "",
            "no configuration file given (--conf-file)".to_string(),
        ));
    }
    let mut warnings = Vec::new();
    let raw = read_files(&opts.files, &opts.agent, &mut warnings)?;
    let raw = substitute_all(raw, opts, host, &mut warnings);
    let (agents, mut agent) = split_agents(&raw, &opts.agent, &mut warnings);
    if !agents.contains(&opts.agent) {
        let files: Vec<String> = opts.files.iter().map(|f| f.display().to_string()).collect();
        let found = if agents.is_empty() {
            "none".to_string()
        } else {
            agents.into_iter().collect::<Vec<_>>().join(", ")
        };
        return Err(error(
            None,
            "",
            format!(
                "no configuration for agent {} in {}; agents found: {found}",
                opts.agent,
                files.join(", ")
            ),
        ));
    }
    apply_config_filters(&mut agent, host, &mut warnings);
    let config = validate(&agent, &mut warnings)?;
    Ok((config, warnings))
}

fn error(prop: Option<&Prop>, key: &str, message: String) -> ConfigError {
    ConfigError {
        file: prop.map(|p| p.file.as_ref().clone()),
        line: prop.map_or(0, |p| p.line),
        key: key.to_string(),
        message,
    }
}

fn warning(prop: Option<&Prop>, key: &str, message: String) -> Warning {
    error(prop, key, message).into()
}

// ---------------------------------------------------------------------------------------
// Reading and merging files

/// One property of the merged set, before Flume's trimming.
struct RawProp {
    key: String,
    value: String,
    file: Arc<PathBuf>,
    file_index: usize,
    line: usize,
}

impl RawProp {
    fn prop(&self, value: String) -> Prop {
        Prop {
            value,
            file: self.file.clone(),
            line: self.line,
        }
    }
}

/// The agent a key belongs to, as Flume reads it: the trimmed key up to its first `.`.
fn agent_of(key: &str) -> Option<&str> {
    java_trim(key)
        .split_once('.')
        .map(|(a, _)| a)
        .filter(|a| !a.is_empty())
}

/// Whether warnings about `key` concern the agent being loaded (keys of other agents are
/// parsed, as Flume does, but not reported on; keys of no agent are).
fn concerns(key: &str, agent: &str) -> bool {
    agent_of(key).is_none_or(|a| a == agent)
}

/// `String.trim()`: strips every char up to U+0020 from both ends.
fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

/// Java's `split("\\s+")` on an already trimmed list.
fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split([' ', '\t', '\n', '\x0b', '\x0c', '\r'])
        .filter(|s| !s.is_empty())
}

/// Reads and parses every file and merges them into one property set, as one
/// `Properties.load` per file into the same object: a later value replaces an earlier one.
/// The result is in file order.
fn read_files(
    files: &[PathBuf],
    agent: &str,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<RawProp>, ConfigError> {
    let mut merged: Vec<RawProp> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (file_index, path) in files.iter().enumerate() {
        let bytes = std::fs::read(path).map_err(|e| ConfigError {
            file: Some(path.clone()),
            line: 0,
            key: String::new(),
            message: format!("cannot read the configuration file: {e}"),
        })?;
        let (entries, parse_warnings) = properties::parse(&bytes, path)?;
        warnings.extend(
            parse_warnings
                .into_iter()
                .filter(|w| concerns(&w.key, agent)),
        );
        let file = Arc::new(path.clone());
        for entry in entries {
            let prop = RawProp {
                key: entry.key,
                value: entry.value,
                file: file.clone(),
                file_index,
                line: entry.line,
            };
            match index.get(&prop.key).and_then(|&i| merged.get_mut(i)) {
                Some(old) => {
                    if old.file_index == file_index && concerns(&prop.key, agent) {
                        warnings.push(Warning {
                            file: Some(path.clone()),
                            line: old.line,
                            key: prop.key.clone(),
                            message: format!("duplicate key: the value on line {} wins", prop.line),
                        });
                    }
                    *old = prop;
                }
                None => {
                    index.insert(prop.key.clone(), merged.len());
                    merged.push(prop);
                }
            }
        }
    }
    merged.sort_by_key(|p| (p.file_index, p.line));
    Ok(merged)
}

// ---------------------------------------------------------------------------------------
// Flume's addRawProperty: agent prefix, list keys, `<kind>.<component>.<key>`

/// The kinds of named components under an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Source,
    Channel,
    Sink,
    SinkGroup,
    ConfigFilter,
}

const KINDS: [Kind; 5] = [
    Kind::Source,
    Kind::Channel,
    Kind::Sink,
    Kind::SinkGroup,
    Kind::ConfigFilter,
];

impl Kind {
    /// The list key, which is also the key prefix (`sources`, `sources.r1.type`).
    fn key(self) -> &'static str {
        match self {
            Kind::Source => "sources",
            Kind::Channel => "channels",
            Kind::Sink => "sinks",
            Kind::SinkGroup => "sinkgroups",
            Kind::ConfigFilter => "configfilters",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Source => "source",
            Kind::Channel => "channel",
            Kind::Sink => "sink",
            Kind::SinkGroup => "sink group",
            Kind::ConfigFilter => "config filter",
        }
    }

    fn index(self) -> usize {
        match self {
            Kind::Source => 0,
            Kind::Channel => 1,
            Kind::Sink => 2,
            Kind::SinkGroup => 3,
            Kind::ConfigFilter => 4,
        }
    }
}

/// The properties of one named component.
struct Component {
    /// Its first property in file order (where to point warnings about it).
    first: Prop,
    /// Keys relative to `<agent>.<kind>.<name>.`.
    props: BTreeMap<String, Prop>,
}

/// The agent's properties, sorted as Flume sorts them.
#[derive(Default)]
struct AgentProps {
    name: String,
    /// Its first property in file order.
    first: Option<Prop>,
    /// `sources`, `channels`, ... by list key.
    lists: HashMap<&'static str, Prop>,
    /// Components by kind index, then name.
    components: [BTreeMap<String, Component>; 5],
}

impl AgentProps {
    fn list(&self, kind: Kind) -> Option<&Prop> {
        self.lists.get(kind.key())
    }

    fn components(&self, kind: Kind) -> &BTreeMap<String, Component> {
        &self.components[kind.index()]
    }

    fn full_key(&self, kind: Kind, rest: &str) -> String {
        if rest.is_empty() {
            format!("{}.{}", self.name, kind.key())
        } else {
            format!("{}.{}.{rest}", self.name, kind.key())
        }
    }

    /// The component's properties as a `Context` prefixed `<agent>.<kind>.<name>.`.
    fn context(&self, kind: Kind, name: &str, component: &Component) -> Context {
        Context::new(
            format!("{}.", self.full_key(kind, name)),
            component.props.clone(),
        )
    }
}

/// Trims keys and values and sorts the properties by agent, as `addRawProperty` does.
/// Returns every agent name found and the named agent's properties.
fn split_agents(
    raw: &[RawProp],
    agent: &str,
    warnings: &mut Vec<Warning>,
) -> (BTreeSet<String>, AgentProps) {
    let mut agents = BTreeSet::new();
    let mut props = AgentProps {
        name: agent.to_string(),
        ..AgentProps::default()
    };
    for p in raw {
        let key = java_trim(&p.key);
        let value = java_trim(&p.value);
        let prop = p.prop(value.to_string());
        let concerned = concerns(key, agent);
        if value.is_empty() {
            if concerned {
                warnings.push(warning(
                    Some(&prop),
                    key,
                    "empty value; property ignored".into(),
                ));
            }
            continue;
        }
        let Some((name, config_key)) = key.split_once('.').filter(|(a, _)| !a.is_empty()) else {
            let msg = "no agent name (keys are AGENT.sources, AGENT.sources.NAME.KEY, ...); property ignored";
            warnings.push(warning(Some(&prop), key, msg.into()));
            continue;
        };
        if config_key.is_empty() {
            if concerned {
                warnings.push(warning(
                    Some(&prop),
                    key,
                    "nothing after the agent name; property ignored".into(),
                ));
            }
            continue;
        }
        agents.insert(name.to_string());
        if name != agent {
            continue;
        }
        props.first.get_or_insert_with(|| prop.clone());
        if let Some(kind) = KINDS.iter().find(|k| k.key() == config_key) {
            props.lists.insert(kind.key(), prop);
            continue;
        }
        let Some((kind, component, sub_key)) = KINDS
            .iter()
            .find_map(|&kind| component_key(config_key, kind.key()).map(|(c, k)| (kind, c, k)))
        else {
            let msg = "invalid property (expected sources, channels, sinks, sinkgroups, \
                       configfilters or KIND.NAME.KEY); ignored";
            warnings.push(warning(Some(&prop), key, msg.into()));
            continue;
        };
        let entry = props.components[kind.index()]
            .entry(component.to_string())
            .or_insert_with(|| Component {
                first: prop.clone(),
                props: BTreeMap::new(),
            });
        entry.props.insert(sub_key.to_string(), prop);
    }
    (agents, props)
}

/// Splits `sources.r1.hdfs.path` into `r1` and `hdfs.path` as Flume's `parseConfigKey`
/// does: the name runs to the next `.` (looked for from its second character), so names
/// cannot hold dots but keys can. The name is trimmed.
fn component_key<'k>(config_key: &'k str, prefix: &str) -> Option<(&'k str, &'k str)> {
    let rest = config_key.strip_prefix(prefix)?.strip_prefix('.')?;
    let first = rest.chars().next()?;
    let dot = rest.get(first.len_utf8()..)?.find('.')? + first.len_utf8();
    let name = rest.get(..dot)?;
    let key = rest.get(dot + 1..)?;
    if key.is_empty() {
        return None;
    }
    Some((java_trim(name), key))
}

// ---------------------------------------------------------------------------------------
// Validation and pruning (FlumeConfiguration.isValid)

/// A list's names without repeats (Flume keeps them in a set), warning about each repeat.
fn dedup_list<'a>(
    names: impl Iterator<Item = &'a str>,
    list: &Prop,
    list_key: &str,
    warnings: &mut Vec<Warning>,
) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for name in names {
        if seen.insert(name) {
            out.push(name);
        } else {
            warnings.push(warning(
                Some(list),
                list_key,
                format!("{name} is listed twice; the repeat is ignored"),
            ));
        }
    }
    out
}

/// The listed components of one kind that have properties and a `type`; the others are
/// removed with a warning.
fn typed_components(
    agent: &AgentProps,
    kind: Kind,
    names: &[&str],
    list: &Prop,
    warnings: &mut Vec<Warning>,
) -> Vec<ComponentConfig> {
    let list_key = agent.full_key(kind, "");
    let mut out = Vec::new();
    for &name in names {
        let Some(component) = agent.components(kind).get(name) else {
            let msg = format!(
                "{} {name} is listed but has no properties; removed",
                kind.noun()
            );
            warnings.push(warning(Some(list), &list_key, msg));
            continue;
        };
        let context = agent.context(kind, name, component);
        match context.get("type") {
            Some(type_name) => out.push(ComponentConfig {
                name: name.to_string(),
                type_name: type_name.to_string(),
                context,
            }),
            None => {
                let msg = format!("{} {name} has no type; removed", kind.noun());
                warnings.push(warning(
                    Some(&component.first),
                    &agent.full_key(kind, name),
                    msg,
                ));
            }
        }
    }
    out
}

/// Names from the list of `kind`, deduplicated (sink groups: split on spaces only, as
/// Flume's `StringTokenizer(" ")`).
fn listed<'a>(agent: &'a AgentProps, kind: Kind, warnings: &mut Vec<Warning>) -> Vec<&'a str> {
    let Some(list) = agent.list(kind) else {
        return Vec::new();
    };
    let key = agent.full_key(kind, "");
    if kind == Kind::SinkGroup {
        let names = list.value.split(' ').filter(|s| !s.is_empty());
        dedup_list(names, list, &key, warnings)
    } else {
        dedup_list(split_list(&list.value), list, &key, warnings)
    }
}

fn because(warnings: &[Warning]) -> String {
    if warnings.is_empty() {
        return String::new();
    }
    let reasons: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    format!(" ({})", reasons.join("; "))
}

fn validate(
    agent: &AgentProps,
    all_warnings: &mut Vec<Warning>,
) -> Result<AgentConfig, ConfigError> {
    let a = agent.name.as_str();
    // The warnings of this stage, which also explain a fatal error.
    let mut warnings = Vec::new();
    for kind in KINDS {
        let listed: HashSet<&str> = listed(agent, kind, &mut Vec::new()).into_iter().collect();
        for (name, component) in agent.components(kind) {
            if !listed.contains(name.as_str()) {
                let msg = format!(
                    "{} {name} is not listed in {}; its properties are ignored",
                    kind.noun(),
                    agent.full_key(kind, "")
                );
                warnings.push(warning(
                    Some(&component.first),
                    &agent.full_key(kind, name),
                    msg,
                ));
            }
        }
    }

    // Channels first: without one valid channel there is no agent.
    let channels_key = agent.full_key(Kind::Channel, "");
    let Some(channel_list) = agent.list(Kind::Channel) else {
        return Err(error(
            agent.first.as_ref(),
            &channels_key,
            format!("agent {a} lists no channels{}", because(&warnings)),
        ));
    };
    let names = listed(agent, Kind::Channel, &mut warnings);
    let channels = typed_components(agent, Kind::Channel, &names, channel_list, &mut warnings);
    if channels.is_empty() {
        return Err(error(
            Some(channel_list),
            &channels_key,
            format!("agent {a} has no valid channel{}", because(&warnings)),
        ));
    }
    let valid_channels: HashSet<&str> = channels.iter().map(|c| c.name.as_str()).collect();

    let sources = validate_sources(agent, &valid_channels, &mut warnings);
    let sinks = validate_sinks(agent, &valid_channels, &mut warnings);
    if sources.is_empty() && sinks.is_empty() {
        let list = agent
            .list(Kind::Source)
            .or(agent.list(Kind::Sink))
            .or(agent.first.as_ref());
        let key = if agent.list(Kind::Source).is_some() || agent.list(Kind::Sink).is_none() {
            agent.full_key(Kind::Source, "")
        } else {
            agent.full_key(Kind::Sink, "")
        };
        return Err(error(
            list,
            &key,
            format!(
                "agent {a} has no valid source or sink left{}",
                because(&warnings)
            ),
        ));
    }
    let valid_sinks: HashSet<&str> = sinks.iter().map(|s| s.component.name.as_str()).collect();
    let sink_groups = validate_groups(agent, &valid_sinks, &mut warnings);
    all_warnings.extend(warnings);
    Ok(AgentConfig {
        name: a.to_string(),
        sources,
        channels,
        sinks,
        sink_groups,
    })
}

fn validate_sources(
    agent: &AgentProps,
    valid_channels: &HashSet<&str>,
    warnings: &mut Vec<Warning>,
) -> Vec<SourceConfig> {
    let Some(list) = agent.list(Kind::Source) else {
        let msg = format!("agent {} has no sources", agent.name);
        warnings.push(warning(
            agent.first.as_ref(),
            &agent.full_key(Kind::Source, ""),
            msg,
        ));
        return Vec::new();
    };
    let names = listed(agent, Kind::Source, warnings);
    let mut out = Vec::new();
    for component in typed_components(agent, Kind::Source, &names, list, warnings) {
        let name = component.name.as_str();
        let ctx = &component.context;
        let key = |rest: &str| format!("{}{rest}", ctx.prefix());
        let Some(channels_prop) = ctx.prop("channels") else {
            let first = agent.components(Kind::Source).get(name).map(|c| &c.first);
            let (at, field, msg) = match ctx.prop("channel") {
                Some(p) => (
                    Some(p),
                    "channel",
                    format!(
                        "source {name} sets channel, but a source takes a channels list; removed"
                    ),
                ),
                None => (
                    first,
                    "channels",
                    format!("source {name} has no channels; removed"),
                ),
            };
            warnings.push(warning(at, &key(field), msg));
            continue;
        };
        let mut channels = Vec::new();
        for channel in dedup_list(
            split_list(&channels_prop.value),
            channels_prop,
            &key("channels"),
            warnings,
        ) {
            if valid_channels.contains(channel) {
                channels.push(channel.to_string());
            } else {
                // Flume drops these silently.
                let msg = format!("channel {channel} is not a valid channel of agent {}; dropped from source {name}", agent.name);
                warnings.push(warning(Some(channels_prop), &key("channels"), msg));
            }
        }
        if channels.is_empty() {
            let msg = format!("source {name} has no valid channel left; removed");
            warnings.push(warning(Some(channels_prop), &key("channels"), msg));
            continue;
        }
        let selector = ctx.sub("selector.");
        let interceptors = interceptors(ctx, warnings);
        out.push(SourceConfig {
            component,
            channels,
            selector,
            interceptors,
        });
    }
    out
}

/// The source's interceptors in list order; one without a `type` is dropped.
fn interceptors(ctx: &Context, warnings: &mut Vec<Warning>) -> Vec<ComponentConfig> {
    let list_key = format!("{}interceptors", ctx.prefix());
    let list = ctx.prop("interceptors");
    let names = match list {
        Some(p) => dedup_list(split_list(&p.value), p, &list_key, warnings),
        None => Vec::new(),
    };
    let mut out = Vec::new();
    for &name in &names {
        let sub = ctx.sub(&format!("interceptors.{name}."));
        match sub.get("type") {
            Some(type_name) => out.push(ComponentConfig {
                name: name.to_string(),
                type_name: type_name.to_string(),
                context: sub.clone(),
            }),
            None => {
                let msg = format!("interceptor {name} has no type; dropped");
                warnings.push(warning(list, &format!("{list_key}.{name}.type"), msg));
            }
        }
    }
    let mut unlisted = BTreeSet::new();
    for (key, prop) in ctx.iter() {
        let Some(name) = key
            .strip_prefix("interceptors.")
            .and_then(|r| r.split_once('.'))
            .map(|(n, _)| n)
        else {
            continue;
        };
        if !names.contains(&name) && unlisted.insert(name) {
            let msg = format!(
                "interceptor {name} is not listed in {list_key}; its properties are ignored"
            );
            warnings.push(warning(Some(prop), &format!("{list_key}.{name}"), msg));
        }
    }
    out
}

fn validate_sinks(
    agent: &AgentProps,
    valid_channels: &HashSet<&str>,
    warnings: &mut Vec<Warning>,
) -> Vec<SinkConfig> {
    let Some(list) = agent.list(Kind::Sink) else {
        let msg = format!("agent {} has no sinks", agent.name);
        warnings.push(warning(
            agent.first.as_ref(),
            &agent.full_key(Kind::Sink, ""),
            msg,
        ));
        return Vec::new();
    };
    let names = listed(agent, Kind::Sink, warnings);
    let mut out = Vec::new();
    for component in typed_components(agent, Kind::Sink, &names, list, warnings) {
        let name = component.name.as_str();
        let ctx = &component.context;
        let key = |rest: &str| format!("{}{rest}", ctx.prefix());
        let Some(channel_prop) = ctx.prop("channel") else {
            let first = agent.components(Kind::Sink).get(name).map(|c| &c.first);
            let (at, field, msg) = match ctx.prop("channels") {
                Some(p) => (
                    Some(p),
                    "channels",
                    format!("sink {name} sets channels, but a sink takes one channel; removed"),
                ),
                None => (
                    first,
                    "channel",
                    format!("sink {name} has no channel; removed"),
                ),
            };
            warnings.push(warning(at, &key(field), msg));
            continue;
        };
        let channel = channel_prop.value.as_str();
        if !valid_channels.contains(channel) {
            let msg = format!("channel {channel} not in active set; sink {name} removed");
            warnings.push(warning(Some(channel_prop), &key("channel"), msg));
            continue;
        }
        out.push(SinkConfig {
            channel: channel.to_string(),
            component,
        });
    }
    out
}

fn validate_groups(
    agent: &AgentProps,
    valid_sinks: &HashSet<&str>,
    warnings: &mut Vec<Warning>,
) -> Vec<SinkGroupConfig> {
    let Some(list) = agent.list(Kind::SinkGroup) else {
        return Vec::new();
    };
    let list_key = agent.full_key(Kind::SinkGroup, "");
    let names = listed(agent, Kind::SinkGroup, warnings);
    let mut used: HashMap<String, String> = HashMap::new();
    let mut out = Vec::new();
    for name in names {
        let Some(component) = agent.components(Kind::SinkGroup).get(name) else {
            let msg = format!("sink group {name} is listed but has no properties; removed");
            warnings.push(warning(Some(list), &list_key, msg));
            continue;
        };
        let ctx = agent.context(Kind::SinkGroup, name, component);
        let sinks_key = format!("{}sinks", ctx.prefix());
        let Some(sinks_prop) = ctx.prop("sinks") else {
            let msg = format!("sink group {name} has no sinks; removed");
            warnings.push(warning(Some(&component.first), &sinks_key, msg));
            continue;
        };
        let mut sinks = Vec::new();
        for sink in dedup_list(
            split_list(&sinks_prop.value),
            sinks_prop,
            &sinks_key,
            warnings,
        ) {
            if let Some(other) = used.get(sink) {
                let msg = format!(
                    "sink {sink} already belongs to sink group {other}; not added to {name}"
                );
                warnings.push(warning(Some(sinks_prop), &sinks_key, msg));
            } else if !valid_sinks.contains(sink) {
                let msg =
                    format!("sink {sink} is not a valid sink; not added to sink group {name}");
                warnings.push(warning(Some(sinks_prop), &sinks_key, msg));
            } else {
                used.insert(sink.to_string(), name.to_string());
                sinks.push(sink.to_string());
            }
        }
        if sinks.is_empty() {
            let msg = format!("sink group {name} has no available sinks; removed");
            warnings.push(warning(Some(sinks_prop), &sinks_key, msg));
            continue;
        }
        out.push(SinkGroupConfig {
            name: name.to_string(),
            sinks,
            processor: ctx.sub("processor."),
        });
    }
    out
}

/// Test helpers, shared with `substitute`'s tests.
#[cfg(test)]
mod harness {
    use super::*;
    use std::path::Path;

    pub(super) fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/configs")
            .join(name)
    }

    fn test_env(name: &str) -> Option<String> {
        match name {
            "FLUME_TEST_HOME" => Some("/opt/flume".to_string()),
            "FLUME_TEST_WHICH" => Some("FLUME_TEST_HOME".to_string()),
            "FLUME_TEST_PASSWORD" => Some("s3cret".to_string()),
            "HOME" => Some("/home/tester".to_string()),
            _ => None,
        }
    }

    pub(super) fn host() -> Host<'static> {
        Host {
            env: &test_env,
            now: chrono::DateTime::parse_from_rfc3339("2024-03-05T06:07:08.009+08:00").unwrap(),
        }
    }

    /// Writes each text to its own file (`f0.properties`, ...) and loads `agent`.
    pub(super) fn load_files(
        texts: &[&str],
        agent: &str,
    ) -> (
        tempfile::TempDir,
        Result<(AgentConfig, Vec<Warning>), ConfigError>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let files = texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let path = dir.path().join(format!("f{i}.properties"));
                std::fs::write(&path, t).unwrap();
                path
            })
            .collect();
        let mut sys = BTreeMap::new();
        sys.insert("flume.dir".to_string(), "/var/flume".to_string());
        sys.insert("which".to_string(), "FLUME_TEST_HOME".to_string());
        let opts = LoadOptions {
            files,
            agent: agent.to_string(),
            system_properties: sys,
        };
        let result = load_with(&opts, &host());
        (dir, result)
    }

    /// Loads one text as agent `a1`, which must succeed; warnings as `LINE: KEY: MESSAGE`.
    pub(super) fn ok(text: &str) -> (AgentConfig, Vec<String>) {
        let (_dir, result) = load_files(&[text], "a1");
        let (config, warnings) = result.unwrap_or_else(|e| panic!("load failed: {e}"));
        (config, warnings.iter().map(brief).collect())
    }

    /// Loads `BASE` from one file and `extra` from a second one (which overrides it), as
    /// agent `a1`; warnings as `LINE: KEY: MESSAGE`.
    pub(super) fn ok_over(extra: &str) -> (AgentConfig, Vec<String>) {
        let (_dir, result) = load_files(&[BASE, extra], "a1");
        let (config, warnings) = result.unwrap_or_else(|e| panic!("load failed: {e}"));
        (config, warnings.iter().map(brief).collect())
    }

    /// Loads one text as agent `a1`, which must fail.
    pub(super) fn fails(text: &str) -> ConfigError {
        let (_dir, result) = load_files(&[text], "a1");
        match result {
            Ok((config, _)) => panic!("loaded {config:?}"),
            Err(e) => e,
        }
    }

    pub(super) fn brief(w: &Warning) -> String {
        format!("{}: {}: {}", w.line, w.key, w.message)
    }

    pub(super) fn names<T>(items: &[T], name: impl Fn(&T) -> &str) -> Vec<&str> {
        items.iter().map(name).collect()
    }

    pub(super) fn source<'a>(c: &'a AgentConfig, name: &str) -> &'a SourceConfig {
        c.sources.iter().find(|s| s.component.name == name).unwrap()
    }

    pub(super) fn sink<'a>(c: &'a AgentConfig, name: &str) -> &'a SinkConfig {
        c.sinks.iter().find(|s| s.component.name == name).unwrap()
    }

    /// A valid agent: netcat r1 → memory c1 → logger k1.
    pub(super) const BASE: &str = "\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = logger
a1.sinks.k1.channel = c1
";
}

#[cfg(test)]
mod tests {
    use super::harness::*;
    use super::*;

    fn seed(n: &str) -> (AgentConfig, Vec<Warning>) {
        let opts = LoadOptions {
            files: vec![fixture(&format!("seed-{n}.properties"))],
            agent: "agent1".to_string(),
            system_properties: BTreeMap::new(),
        };
        load(&opts).unwrap_or_else(|e| panic!("seed {n}: {e}"))
    }

    /// Names, types and wiring of a one-source, one-channel, one-sink agent.
    fn assert_pipeline(c: &AgentConfig, src: (&str, &str), ch: (&str, &str), snk: (&str, &str)) {
        assert_eq!(c.name, "agent1");
        assert_eq!(c.sources.len(), 1);
        assert_eq!(c.channels.len(), 1);
        assert_eq!(c.sinks.len(), 1);
        assert!(c.sink_groups.is_empty());
        let s = &c.sources[0];
        assert_eq!(
            (s.component.name.as_str(), s.component.type_name.as_str()),
            src
        );
        assert_eq!(s.channels, vec![ch.0.to_string()]);
        assert!(s.selector.is_empty() && s.interceptors.is_empty());
        assert_eq!(
            (
                c.channels[0].name.as_str(),
                c.channels[0].type_name.as_str()
            ),
            ch
        );
        let k = &c.sinks[0];
        assert_eq!(
            (k.component.name.as_str(), k.component.type_name.as_str()),
            snk
        );
        assert_eq!(k.channel, ch.0);
    }

    #[test]
    fn seed_1_netcat_to_logger_with_trailing_comments() {
        let (c, warnings) = seed("1");
        assert_pipeline(
            &c,
            ("netcatSrc", "netcat"),
            ("memoryChannel", "memory"),
            ("loggerSink", "logger"),
        );
        let src = &c.sources[0].component.context;
        assert_eq!(src.get("port"), Some("44445"));
        assert_eq!(src.get("bind"), Some("localhost"));
        assert_eq!(c.channels[0].context.get("capacity"), Some("100"));
        // Eight values carry a `## 中文` comment: each one is cut, with a warning.
        let got: Vec<(usize, &str)> = warnings.iter().map(|w| (w.line, w.key.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (3, "agent1.sources"),
                (4, "agent1.channels"),
                (5, "agent1.sinks"),
                (8, "agent1.sources.netcatSrc.type"),
                (9, "agent1.sources.netcatSrc.bind"),
                (10, "agent1.sources.netcatSrc.port"),
                (20, "agent1.sources.netcatSrc.channels"),
                (21, "agent1.sinks.loggerSink.channel"),
            ]
        );
        assert!(warnings
            .iter()
            .all(|w| w.message == properties::TRAILING_COMMENT_REMOVED));
        let port = warnings.iter().find(|w| w.line == 10).unwrap().to_string();
        assert!(
            port.ends_with("seed-1.properties:10: agent1.sources.netcatSrc.port: trailing comment removed (Flume would keep it as part of the value)"),
            "{port}"
        );
    }

    #[test]
    fn seed_2_netcat_to_hdfs() {
        let (c, warnings) = seed("2");
        assert_pipeline(
            &c,
            ("netcatSrc", "netcat"),
            ("memoryChannel", "memory"),
            ("hdfsSink", "hdfs"),
        );
        assert_eq!(c.sources[0].component.context.get("port"), Some("44445"));
        let hdfs = &c.sinks[0].component.context;
        assert_eq!(
            hdfs.get("hdfs.path"),
            Some("hdfs://master:9999/user/hadoop-twq/spark-course/steaming/flume/%y-%m-%d")
        );
        assert_eq!(hdfs.get("hdfs.batchSize"), Some("5"));
        assert_eq!(hdfs.get("hdfs.useLocalTimeStamp"), Some("true"));
        let got: Vec<(usize, &str)> = warnings.iter().map(|w| (w.line, w.key.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (3, "agent1.channels"),
                (14, "agent1.sinks.hdfsSink.hdfs.batchSize")
            ]
        );
    }

    #[test]
    fn seed_3_exec_to_file_channel_to_hdfs() {
        let (c, warnings) = seed("3");
        assert_pipeline(
            &c,
            ("logSrc", "exec"),
            ("fileChannel", "file"),
            ("hdfsSink", "hdfs"),
        );
        assert_eq!(
            c.sources[0].component.context.get("command"),
            Some("tail -F /home/hadoop-twq/spark-course/steaming/flume-course/demo3/logs/webserver.log")
        );
        let ch = &c.channels[0].context;
        assert_eq!(
            ch.get("checkpointDir"),
            Some("/home/hadoop-twq/spark-course/steaming/flume-course/demo2-2/checkpoint")
        );
        assert_eq!(
            ch.get("dataDirs"),
            Some("/home/hadoop-twq/spark-course/steaming/flume-course/demo2-2/data")
        );
        assert_eq!(warnings, vec![]);
    }

    #[test]
    fn seed_4_netcat_to_avro() {
        let (c, warnings) = seed("4");
        assert_pipeline(
            &c,
            ("netcatSrc", "netcat"),
            ("memoryChannel", "memory"),
            ("avroSink", "avro"),
        );
        assert_eq!(c.sources[0].component.context.get("bind"), Some("slave1"));
        let avro = &c.sinks[0].component.context;
        assert_eq!(
            (avro.get("hostname"), avro.get("port")),
            (Some("slave1"), Some("44446"))
        );
        assert_eq!(warnings, vec![]);
    }

    #[test]
    fn seed_5_netcat_to_spark_sink_with_mangled_comments() {
        let (c, warnings) = seed("5");
        let spark = (
            "sparkSink",
            "org.apache.spark.streaming.flume.sink.SparkSink",
        );
        assert_pipeline(
            &c,
            ("netcatSrc", "netcat"),
            ("memoryChannel", "memory"),
            spark,
        );
        let sink = &c.sinks[0].component.context;
        assert_eq!(
            (sink.get("hostname"), sink.get("port")),
            (Some("master"), Some("44446"))
        );
        assert_eq!(c.sources[0].component.context.get("port"), Some("44445"));
        assert_eq!(warnings, vec![]);
    }

    #[test]
    fn seed_5_with_gbk_comments_loads_through_iso_8859_1() {
        // The seed tutorial holds the fifth config's comments already mangled (each byte
        // that was not UTF-8 replaced by U+FFFD). `seed-5-gbk.properties` has those comment
        // lines in GBK, the encoding they were written in: decoding its bytes as lossy
        // UTF-8 gives back exactly the seed's bytes.
        let bytes = std::fs::read(fixture("seed-5-gbk.properties")).unwrap();
        assert!(
            std::str::from_utf8(&bytes).is_err(),
            "the fixture must hold non-UTF-8 bytes"
        );
        let seed_bytes = std::fs::read(fixture("seed-5.properties")).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&bytes).as_bytes(),
            seed_bytes.as_slice()
        );
        let (gbk, warnings) = seed("5-gbk");
        assert_eq!(warnings, vec![]);
        let (utf8, _) = seed("5");
        assert_eq!(
            gbk.sinks[0].component.type_name,
            utf8.sinks[0].component.type_name
        );
        let props = |c: &AgentConfig| -> Vec<(String, String, usize)> {
            let all = c
                .sources
                .iter()
                .map(|s| &s.component)
                .chain(&c.channels)
                .chain(c.sinks.iter().map(|s| &s.component));
            all.flat_map(|comp| {
                comp.context
                    .iter()
                    .map(|(k, p)| (k.to_string(), p.value.clone(), p.line))
                    .collect::<Vec<_>>()
            })
            .collect()
        };
        assert_eq!(props(&gbk), props(&utf8));
    }

    #[test]
    fn keys_and_values_are_trimmed_as_flume_does() {
        // Trailing blanks survive `Properties`; an escaped blank ends up in the key; a
        // `\t` escape at the end of the value; Flume's trim() removes all of them.
        let (c, _) = ok(&format!(
            "{BASE}a1.sources.r1.port = 4444 \t\na1.sources.r1.bind\\  = host\\t\n"
        ));
        let ctx = &c.sources[0].component.context;
        assert_eq!(ctx.get("port"), Some("4444"));
        assert_eq!(ctx.get("bind"), Some("host"));
    }

    #[test]
    fn later_files_override_earlier_ones() {
        let second = "a1.sources.r1.port = 2\na1.channels = c1 c2\na1.channels.c2.type = memory\n";
        let (dir, result) = load_files(&[&format!("{BASE}a1.sources.r1.port = 1\n"), second], "a1");
        let (c, warnings) = result.unwrap();
        assert_eq!(warnings, vec![]);
        let port = c.sources[0].component.context.prop("port").unwrap();
        assert_eq!(port.value, "2");
        assert_eq!(port.file.as_ref(), &dir.path().join("f1.properties"));
        assert_eq!(port.line, 1);
        assert_eq!(names(&c.channels, |ch| &ch.name), vec!["c1", "c2"]);
        // Untouched values keep their first file.
        let ty = c.sources[0].component.context.prop("type").unwrap();
        assert_eq!(
            (ty.file.as_ref(), ty.line),
            (&dir.path().join("f0.properties"), 4)
        );
    }

    #[test]
    fn unreadable_file_names_the_file_and_the_os_error() {
        let missing = std::env::temp_dir().join("sluice-flume-no-such-dir/none.properties");
        let opts = LoadOptions {
            files: vec![missing.clone()],
            agent: "a1".to_string(),
            system_properties: BTreeMap::new(),
        };
        let err = load(&opts).unwrap_err();
        assert_eq!(err.file.as_ref(), Some(&missing));
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("{}: cannot read", missing.display())),
            "{text}"
        );
        assert!(text.contains("No such file"), "{text}");
    }

    #[test]
    fn no_file_given_is_an_error() {
        let err = load(&LoadOptions::default()).unwrap_err();
        assert!(err.message.contains("no configuration file"), "{err}");
    }

    #[test]
    fn malformed_escape_is_fatal_with_file_and_line() {
        let err = fails(&format!("{BASE}a1.sources.r1.port = \\u44\n"));
        assert!(err.file.as_ref().unwrap().ends_with("f0.properties"));
        assert_eq!((err.line, err.key.as_str()), (9, "a1.sources.r1.port"));
    }

    #[test]
    fn unknown_agent_names_files_and_agents_found() {
        let (dir, result) = load_files(&["x.sources = s\ny.channels = c\n", "z.sinks = k\n"], "a1");
        let err = result.unwrap_err();
        let f0 = dir.path().join("f0.properties");
        let f1 = dir.path().join("f1.properties");
        assert_eq!(
            err.to_string(),
            format!(
                "no configuration for agent a1 in {}, {}; agents found: x, y, z",
                f0.display(),
                f1.display()
            )
        );
        let (_dir, result) = load_files(&["# nothing\n"], "a1");
        assert!(result.unwrap_err().message.ends_with("agents found: none"));
    }

    #[test]
    fn no_channel_list_is_fatal() {
        let err = fails("a1.sources = r1\na1.sources.r1.type = seq\n");
        assert_eq!((err.line, err.key.as_str()), (1, "a1.channels"));
        assert!(
            err.message.starts_with("agent a1 lists no channels"),
            "{err}"
        );
    }

    #[test]
    fn zero_valid_channels_is_fatal_and_says_why() {
        let err = fails("a1.sources = r1\na1.channels = c1 c2\na1.channels.c1.capacity = 5\n");
        assert!(err.file.as_ref().unwrap().ends_with("f0.properties"));
        assert_eq!((err.line, err.key.as_str()), (2, "a1.channels"));
        assert!(
            err.message.starts_with("agent a1 has no valid channel ("),
            "{err}"
        );
        assert!(
            err.message
                .contains("3: a1.channels.c1: channel c1 has no type; removed"),
            "{err}"
        );
        assert!(
            err.message
                .contains("2: a1.channels: channel c2 is listed but has no properties; removed"),
            "{err}"
        );
    }

    #[test]
    fn no_source_and_no_sink_left_is_fatal() {
        // Source with `channel` (singular), sink with `channels` (plural): both dropped.
        let err = fails(
            "a1.channels = c1\na1.sources = r1\na1.sinks = k1\na1.channels.c1.type = memory\n\
             a1.sources.r1.type = seq\na1.sources.r1.channel = c1\n\
             a1.sinks.k1.type = logger\na1.sinks.k1.channels = c1\n",
        );
        assert_eq!((err.line, err.key.as_str()), (2, "a1.sources"));
        assert!(
            err.message
                .starts_with("agent a1 has no valid source or sink left"),
            "{err}"
        );
        assert!(
            err.message
                .contains("source r1 sets channel, but a source takes a channels list"),
            "{err}"
        );
        assert!(
            err.message
                .contains("sink k1 sets channels, but a sink takes one channel"),
            "{err}"
        );
        // Only sinks listed: the sinks list is named.
        let err = fails("a1.channels = c1\na1.sinks = k1\na1.channels.c1.type = memory\n");
        assert_eq!((err.line, err.key.as_str()), (2, "a1.sinks"));
    }

    #[test]
    fn channels_without_type_or_properties_are_removed() {
        let (c, w) = ok_over("a1.channels = c1 c2 c3\na1.channels.c3.capacity = 10\n");
        assert_eq!(names(&c.channels, |ch| &ch.name), vec!["c1"]);
        assert_eq!(
            w,
            vec![
                "1: a1.channels: channel c2 is listed but has no properties; removed",
                "2: a1.channels.c3: channel c3 has no type; removed",
            ]
        );
    }

    #[test]
    fn sources_take_a_channels_list_and_keep_only_valid_channels() {
        let (c, w) = ok_over(
            "a1.channels = c1 c2\na1.channels.c2.type = memory\n\
             a1.sources = r1 r2 r3 r4 r5\n\
             a1.sources.r2.type = seq\na1.sources.r2.channel = c1\n\
             a1.sources.r3.type = seq\na1.sources.r3.channels = c2 nope c1\n\
             a1.sources.r4.type = seq\na1.sources.r4.channels = nope\n\
             a1.sources.r5.type = seq\n",
        );
        assert_eq!(names(&c.sources, |s| &s.component.name), vec!["r1", "r3"]);
        assert_eq!(source(&c, "r3").channels, vec!["c2", "c1"]);
        assert_eq!(
            w,
            vec![
                "5: a1.sources.r2.channel: source r2 sets channel, but a source takes a channels list; removed",
                "7: a1.sources.r3.channels: channel nope is not a valid channel of agent a1; dropped from source r3",
                "9: a1.sources.r4.channels: channel nope is not a valid channel of agent a1; dropped from source r4",
                "9: a1.sources.r4.channels: source r4 has no valid channel left; removed",
                "10: a1.sources.r5.channels: source r5 has no channels; removed",
            ]
        );
    }

    #[test]
    fn sinks_take_one_valid_channel() {
        let (c, w) = ok_over(
            "a1.sinks = k1 k2 k3 k4 k5 k6\n\
             a1.sinks.k2.type = logger\na1.sinks.k2.channels = c1\n\
             a1.sinks.k3.type = logger\na1.sinks.k3.channel = nope\n\
             a1.sinks.k4.type = logger\na1.sinks.k4.channel = c1 c1\n\
             a1.sinks.k5.type = logger\n\
             a1.sinks.k6.channel = c1\n",
        );
        assert_eq!(names(&c.sinks, |s| &s.component.name), vec!["k1"]);
        assert_eq!(
            w,
            vec![
                "9: a1.sinks.k6: sink k6 has no type; removed",
                "3: a1.sinks.k2.channels: sink k2 sets channels, but a sink takes one channel; removed",
                "5: a1.sinks.k3.channel: channel nope not in active set; sink k3 removed",
                "7: a1.sinks.k4.channel: channel c1 c1 not in active set; sink k4 removed",
                "8: a1.sinks.k5.channel: sink k5 has no channel; removed",
            ]
        );
    }

    #[test]
    fn unlisted_components_are_ignored_and_listed_empty_ones_removed() {
        let (c, w) = ok_over(
            "a1.sources = r1 r9\n\
             a1.sources.r2.type = seq\na1.sources.r2.channels = c1\n\
             a1.channels.c2.type = memory\n\
             a1.sinks.k2.type = logger\n\
             a1.sinkgroups.g1.sinks = k1\n\
             a1.configfilters.f1.type = env\n",
        );
        assert_eq!(names(&c.sources, |s| &s.component.name), vec!["r1"]);
        assert_eq!(names(&c.channels, |ch| &ch.name), vec!["c1"]);
        assert!(c.sink_groups.is_empty());
        assert_eq!(
            w,
            vec![
                "2: a1.sources.r2: source r2 is not listed in a1.sources; its properties are ignored",
                "4: a1.channels.c2: channel c2 is not listed in a1.channels; its properties are ignored",
                "5: a1.sinks.k2: sink k2 is not listed in a1.sinks; its properties are ignored",
                "6: a1.sinkgroups.g1: sink group g1 is not listed in a1.sinkgroups; its properties are ignored",
                "7: a1.configfilters.f1: config filter f1 is not listed in a1.configfilters; its properties are ignored",
                "1: a1.sources: source r9 is listed but has no properties; removed",
            ]
        );
    }

    #[test]
    fn invalid_properties_are_ignored_with_warnings() {
        let (c, w) = ok(&format!(
            "{BASE}a1.foo = x\na1.sources.r1 = x\na1.sources.r1.batchSize =\n\
             nodot = x\n.x = y\na1. = z\na1.source.r1.type = seq\n\
             a2.foo = other agents are not reported\na2.sources.r1.port = 1 # nor here\n"
        ));
        assert_eq!(c.sources[0].component.context.get("batchSize"), None);
        let invalid = "invalid property (expected sources, channels, sinks, sinkgroups, configfilters or KIND.NAME.KEY); ignored";
        let no_agent =
            "no agent name (keys are AGENT.sources, AGENT.sources.NAME.KEY, ...); property ignored";
        assert_eq!(
            w,
            vec![
                format!("9: a1.foo: {invalid}"),
                format!("10: a1.sources.r1: {invalid}"),
                "11: a1.sources.r1.batchSize: empty value; property ignored".to_string(),
                format!("12: nodot: {no_agent}"),
                format!("13: .x: {no_agent}"),
                "14: a1.: nothing after the agent name; property ignored".to_string(),
                format!("15: a1.source.r1.type: {invalid}"),
            ]
        );
    }

    #[test]
    fn duplicate_keys_last_wins_and_an_empty_last_value_drops_the_key() {
        let (c, w) = ok(&format!(
            "{BASE}a1.sources.r1.port = 1\na1.sources.r1.port = 2\n\
             a1.sources.r1.bind = h\na1.sources.r1.bind =\n"
        ));
        let ctx = &c.sources[0].component.context;
        assert_eq!((ctx.get("port"), ctx.get("bind")), (Some("2"), None));
        assert_eq!(
            w,
            vec![
                "9: a1.sources.r1.port: duplicate key: the value on line 10 wins",
                "11: a1.sources.r1.bind: duplicate key: the value on line 12 wins",
                "12: a1.sources.r1.bind: empty value; property ignored",
            ]
        );
    }

    #[test]
    fn lists_split_on_any_whitespace_and_repeats_are_ignored() {
        let (c, w) = ok_over("a1.channels = c1\\t c2  c1\na1.channels.c2.type = memory\n");
        assert_eq!(names(&c.channels, |ch| &ch.name), vec!["c1", "c2"]);
        assert_eq!(
            w,
            vec!["1: a1.channels: c1 is listed twice; the repeat is ignored"]
        );
    }

    #[test]
    fn components_follow_list_order_and_keep_type_as_written() {
        let (c, _) = ok("\
a1.sources = r2 r1
a1.channels = c2 c1
a1.sinks = k1
a1.sources.r1.type = NetCat
a1.sources.r1.channels = c1
a1.sources.r2.type = org.apache.flume.source.kafka.KafkaSource
a1.sources.r2.channels = c2 c1
a1.channels.c1.type = MEMORY
a1.channels.c2.type = org.apache.flume.channel.kafka.KafkaChannel
a1.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink
a1.sinks.k1.channel = c1
");
        assert_eq!(names(&c.sources, |s| &s.component.name), vec!["r2", "r1"]);
        assert_eq!(names(&c.channels, |ch| &ch.name), vec!["c2", "c1"]);
        assert_eq!(source(&c, "r1").component.type_name, "NetCat");
        assert_eq!(c.channels[1].type_name, "MEMORY");
        assert_eq!(
            sink(&c, "k1").component.type_name,
            "org.apache.flume.sink.kafka.KafkaSink"
        );
        let ctx = &c.channels[0].context;
        assert_eq!(ctx.prefix(), "a1.channels.c2.");
        assert_eq!(
            ctx.get("type"),
            Some("org.apache.flume.channel.kafka.KafkaChannel")
        );
    }

    #[test]
    fn keys_may_hold_dots_but_names_may_not() {
        let (c, _) = ok(&format!(
            "{BASE}a1.sinks.k1.hdfs.path = /x\na1.sinks.k1.a.b.c = d\n"
        ));
        let ctx = &sink(&c, "k1").component.context;
        assert_eq!(
            (ctx.get("hdfs.path"), ctx.get("a.b.c")),
            (Some("/x"), Some("d"))
        );
    }

    #[test]
    fn selector_and_interceptors() {
        let (c, w) = ok(&format!(
            "{BASE}a1.sources.r1.selector.type = multiplexing\n\
             a1.sources.r1.selector.header = state\n\
             a1.sources.r1.selector.mapping.CZ = c1\n\
             a1.sources.r1.interceptors = i2 i1 i3\n\
             a1.sources.r1.interceptors.i1.type = timestamp\n\
             a1.sources.r1.interceptors.i2.type = host\n\
             a1.sources.r1.interceptors.i2.hostHeader = hostname\n\
             a1.sources.r1.interceptors.i3.preserveExisting = true\n\
             a1.sources.r1.interceptors.i9.type = static\n"
        ));
        let r1 = source(&c, "r1");
        assert_eq!(r1.selector.prefix(), "a1.sources.r1.selector.");
        assert_eq!(r1.selector.get("type"), Some("multiplexing"));
        assert_eq!(r1.selector.get("mapping.CZ"), Some("c1"));
        assert_eq!(names(&r1.interceptors, |i| &i.name), vec!["i2", "i1"]);
        let i2 = &r1.interceptors[0];
        assert_eq!(i2.type_name, "host");
        assert_eq!(i2.context.prefix(), "a1.sources.r1.interceptors.i2.");
        assert_eq!(i2.context.get("hostHeader"), Some("hostname"));
        assert_eq!(i2.context.prop("hostHeader").unwrap().line, 15);
        assert_eq!(
            w,
            vec![
                "12: a1.sources.r1.interceptors.i3.type: interceptor i3 has no type; dropped",
                "17: a1.sources.r1.interceptors.i9: interceptor i9 is not listed in a1.sources.r1.interceptors; its properties are ignored",
            ]
        );
    }

    #[test]
    fn sink_groups_own_their_sinks_exclusively() {
        let (c, w) = ok_over(
            "a1.sinks = k1 k2 k3\n\
             a1.sinks.k2.type = logger\na1.sinks.k2.channel = c1\n\
             a1.sinks.k3.type = logger\na1.sinks.k3.channel = c1\n\
             a1.sinkgroups = g1 g2 g3 g4 g5\n\
             a1.sinkgroups.g1.sinks = k2 k1\n\
             a1.sinkgroups.g1.processor.type = failover\n\
             a1.sinkgroups.g1.processor.priority.k1 = 5\n\
             a1.sinkgroups.g2.sinks = k1 k3 nope\n\
             a1.sinkgroups.g3.processor.type = load_balance\n\
             a1.sinkgroups.g5.sinks = k2\n",
        );
        assert_eq!(names(&c.sink_groups, |g| &g.name), vec!["g1", "g2"]);
        let g1 = &c.sink_groups[0];
        assert_eq!(g1.sinks, vec!["k2", "k1"]);
        assert_eq!(g1.processor.prefix(), "a1.sinkgroups.g1.processor.");
        assert_eq!(g1.processor.get("type"), Some("failover"));
        assert_eq!(g1.processor.get("priority.k1"), Some("5"));
        assert_eq!(c.sink_groups[1].sinks, vec!["k3"]);
        assert!(c.sink_groups[1].processor.is_empty());
        assert_eq!(
            w,
            vec![
                "10: a1.sinkgroups.g2.sinks: sink k1 already belongs to sink group g1; not added to g2",
                "10: a1.sinkgroups.g2.sinks: sink nope is not a valid sink; not added to sink group g2",
                "11: a1.sinkgroups.g3.sinks: sink group g3 has no sinks; removed",
                "6: a1.sinkgroups: sink group g4 is listed but has no properties; removed",
                "12: a1.sinkgroups.g5.sinks: sink k2 already belongs to sink group g1; not added to g5",
                "12: a1.sinkgroups.g5.sinks: sink group g5 has no available sinks; removed",
            ]
        );
    }

    #[test]
    fn other_agents_are_parsed_but_not_returned_or_reported() {
        let text = format!(
            "{BASE}{}a1.bogus = 1\n",
            BASE.replace("a1.", "a2.").replace("r1", "r7")
        );
        let (_dir, result) = load_files(&[&text], "a2");
        let (c, w) = result.unwrap();
        assert_eq!(c.name, "a2");
        assert_eq!(names(&c.sources, |s| &s.component.name), vec!["r7"]);
        assert_eq!(w, vec![]);
    }

    #[test]
    fn agent_without_sources_is_valid_with_a_warning() {
        let (c, w) = ok(
            "a1.channels = c1\na1.sinks = k1\na1.channels.c1.type = memory\n\
                         a1.sinks.k1.type = logger\na1.sinks.k1.channel = c1\n",
        );
        assert!(c.sources.is_empty());
        assert_eq!(c.sinks.len(), 1);
        assert_eq!(w, vec!["1: a1.sources: agent a1 has no sources"]);
    }

    #[test]
    fn warning_display_names_file_line_and_key() {
        let (dir, result) = load_files(&[&format!("{BASE}a1.sinks.k9.type = logger\n")], "a1");
        let (_, w) = result.unwrap();
        assert_eq!(
            w[0].to_string(),
            format!(
                "{}:9: a1.sinks.k9: sink k9 is not listed in a1.sinks; its properties are ignored",
                dir.path().join("f0.properties").display()
            )
        );
    }
}
