//! `${...}` substitution in values, as Flume 1.10+ does with commons-text's
//! `StringSubstitutor` over the merged properties (`${env:X}`, `${sys:X}`, `${date:...}`,
//! plain `${X}` from other keys), and Flume's config filters (`<agent>.configfilters`, values
//! `${f['KEY']}`), which run later, on component values only. The documented differences
//! from Flume are listed in `load`.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, FixedOffset};
use regex::Regex;

use super::{
    agent_of, dedup_list, java_trim, split_list, warning, AgentProps, Kind, LoadOptions, RawProp,
};
use crate::conf::{Prop, Warning};

/// What substitution reads from outside the files (separate so tests can fix it).
pub(super) struct Host<'a> {
    pub(super) env: &'a dyn Fn(&str) -> Option<String>,
    pub(super) now: DateTime<FixedOffset>,
}

/// Substitutes `${...}` in the values of the agent's properties (values only, never keys;
/// other agents' values are left alone since they are never used).
pub(super) fn substitute_all(
    raw: Vec<RawProp>,
    opts: &LoadOptions,
    host: &Host<'_>,
    warnings: &mut Vec<Warning>,
) -> Vec<RawProp> {
    let values: HashMap<String, String> = raw
        .iter()
        .map(|p| (p.key.clone(), p.value.clone()))
        .collect();
    // Config filter references (`${f['KEY']}`) are not substitution variables: they stay
    // for the filter stage and must not be reported as unresolved here.
    let filters: Vec<String> = raw
        .iter()
        .filter(|p| java_trim(&p.key) == format!("{}.configfilters", opts.agent))
        .flat_map(|p| {
            split_list(java_trim(&p.value))
                .map(|f| format!("${{{f}["))
                .collect::<Vec<_>>()
        })
        .collect();
    let subst = Substituter {
        values: &values,
        sys: &opts.system_properties,
        host,
    };
    raw.into_iter()
        .map(|mut p| {
            if agent_of(&p.key) != Some(opts.agent.as_str()) || !p.value.contains("${") {
                return p;
            }
            let mut notes = Notes::default();
            p.value = subst.replace(&p.value, &mut Vec::new(), &mut notes);
            let prop = p.prop(String::new());
            for var in notes.unresolved {
                if !filters.iter().any(|f| var.starts_with(f.as_str())) {
                    let msg = format!("{var} has no value; left as written");
                    warnings.push(warning(Some(&prop), &p.key, msg));
                }
            }
            for problem in notes.problems {
                warnings.push(warning(Some(&prop), &p.key, problem));
            }
            p
        })
        .collect()
}

/// What went wrong while substituting one value.
#[derive(Default)]
struct Notes {
    /// Variables left as written (`${X}`).
    unresolved: Vec<String>,
    /// Other problems, as warning messages.
    problems: Vec<String>,
}

struct Substituter<'a> {
    /// Every property of the merged files (raw keys and values), for plain `${X}`.
    values: &'a HashMap<String, String>,
    sys: &'a BTreeMap<String, String>,
    host: &'a Host<'a>,
}

impl Substituter<'_> {
    /// Replaces the variables in `text`. As `StringSubstitutor` (the way Flume sets it up):
    /// `$${X}` is a literal `${X}`, variables may nest (`${env:${sys:k}}`), `${X:-default}`
    /// gives `default` when `X` is unset, resolved values are substituted in turn, and an
    /// unresolved variable stays as written. `stack` holds the variables being resolved.
    fn replace(&self, text: &str, stack: &mut Vec<String>, notes: &mut Notes) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(pos) = rest.find('$') {
            let (before, tail) = rest.split_at(pos);
            out.push_str(before);
            if let Some(after) = tail.strip_prefix("$${") {
                out.push_str("${");
                rest = after;
                continue;
            }
            let Some(inner) = tail.strip_prefix("${") else {
                out.push('$');
                rest = tail.get(1..).unwrap_or_default();
                continue;
            };
            let Some(end) = closing_brace(inner) else {
                // No closing brace: the rest is plain text.
                out.push_str(tail);
                return out;
            };
            let expr = inner.get(..end).unwrap_or_default();
            let whole = tail.get(..end + 3).unwrap_or_default();
            rest = inner.get(end + 1..).unwrap_or_default();
            let expr = if expr.contains("${") {
                self.replace(expr, stack, notes)
            } else {
                expr.to_string()
            };
            let (name, default) = match expr.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (expr.as_str(), None),
            };
            let problems = notes.problems.len();
            match (self.resolve(name, stack, notes), default) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => {
                    out.push_str(whole);
                    // Report "no value" only when no better reason was given.
                    if notes.problems.len() == problems {
                        notes.unresolved.push(whole.to_string());
                    }
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// The value of one variable, substituted in turn. `prefix:name` asks the `env`, `sys`
    /// or `date` lookup; when that gives nothing (or the prefix is unknown), `name` is
    /// looked up among the properties, as commons-text's interpolator falls back.
    fn resolve(&self, name: &str, stack: &mut Vec<String>, notes: &mut Notes) -> Option<String> {
        if stack.iter().any(|s| s == name) {
            notes.problems.push(format!(
                "${{{name}}} refers to itself ({} -> {name}); left as written",
                stack.join(" -> ")
            ));
            return None;
        }
        let (found, key) = match name.split_once(':') {
            Some((prefix, rest)) => {
                let found = match prefix.to_ascii_lowercase().as_str() {
                    "env" => (self.host.env)(rest),
                    "sys" => self
                        .sys
                        .get(rest)
                        .cloned()
                        .or_else(|| self.jvm_default(rest)),
                    "date" => self.date(rest, notes),
                    "java" => {
                        notes.problems.push(format!(
                            "${{{name}}}: java lookups are not supported; left as written"
                        ));
                        None
                    }
                    _ => None,
                };
                (found, rest)
            }
            None => (None, name),
        };
        let value = found.or_else(|| self.values.get(key).cloned())?;
        stack.push(name.to_string());
        let value = self.replace(&value, stack, notes);
        stack.pop();
        Some(value)
    }

    /// The few JVM system properties a config may reasonably use, when not given by `-D`.
    fn jvm_default(&self, key: &str) -> Option<String> {
        match key {
            "user.home" => (self.host.env)("HOME"),
            "user.name" => (self.host.env)("USER"),
            "user.dir" => std::env::current_dir()
                .ok()
                .map(|d| d.display().to_string()),
            "java.io.tmpdir" => Some(std::env::temp_dir().display().to_string()),
            "file.separator" => Some(std::path::MAIN_SEPARATOR.to_string()),
            "path.separator" => Some(if cfg!(windows) { ";" } else { ":" }.to_string()),
            "line.separator" => Some("\n".to_string()),
            _ => None,
        }
    }

    /// `${date:PATTERN}`: the load time in a `SimpleDateFormat` pattern.
    fn date(&self, pattern: &str, notes: &mut Notes) -> Option<String> {
        use std::fmt::Write;
        let format = match java_date_format(pattern) {
            Ok(f) => f,
            Err(what) => {
                notes.problems.push(format!(
                    "${{date:{pattern}}}: {what} is not supported; left as written"
                ));
                return None;
            }
        };
        let items: Vec<_> = chrono::format::StrftimeItems::new(&format).collect();
        if items
            .iter()
            .any(|i| matches!(i, chrono::format::Item::Error))
        {
            notes.problems.push(format!(
                "${{date:{pattern}}}: cannot format this pattern; left as written"
            ));
            return None;
        }
        let mut out = String::new();
        write!(
            out,
            "{}",
            self.host.now.format_with_items(items.into_iter())
        )
        .ok()?;
        Some(out)
    }
}

/// Index in `s` of the `}` that closes a `${` just before `s`, counting nested `${`.
fn closing_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '$' if chars.peek().is_some_and(|&(_, n)| n == '{') => {
                chars.next();
                depth += 1;
            }
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// Translates a Java `SimpleDateFormat` pattern into a chrono format string. Supports the
/// common letters (`y M d H h m s SSS E a D Z`) and quoted text; anything else is an error
/// naming the letter.
fn java_date_format(pattern: &str) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let literal = |out: &mut String, c: char| {
        if c == '%' {
            out.push_str("%%");
        } else {
            out.push(c);
        }
    };
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c == '\'' {
            i += 1;
            if chars.get(i) == Some(&'\'') {
                out.push('\'');
                i += 1;
                continue;
            }
            while let Some(&q) = chars.get(i) {
                i += 1;
                if q != '\'' {
                    literal(&mut out, q);
                } else if chars.get(i) == Some(&'\'') {
                    out.push('\'');
                    i += 1;
                } else {
                    break;
                }
            }
            continue;
        }
        if !c.is_ascii_alphabetic() {
            literal(&mut out, c);
            i += 1;
            continue;
        }
        let run = chars
            .get(i..)
            .unwrap_or_default()
            .iter()
            .take_while(|&&d| d == c)
            .count();
        let spec = match (c, run) {
            ('y', 2) => "%y",
            ('y', _) => "%Y",
            ('M', 1) => "%-m",
            ('M', 2) => "%m",
            ('M', 3) => "%b",
            ('M', _) => "%B",
            ('d', 1) => "%-d",
            ('d', _) => "%d",
            ('H', 1) => "%-H",
            ('H', _) => "%H",
            ('h', 1) => "%-I",
            ('h', _) => "%I",
            ('m', 1) => "%-M",
            ('m', _) => "%M",
            ('s', 1) => "%-S",
            ('s', _) => "%S",
            ('S', 3) => "%3f",
            ('E', 1..=3) => "%a",
            ('E', _) => "%A",
            ('a', _) => "%p",
            ('D', 1 | 2) => "%-j",
            ('D', _) => "%j",
            ('Z', _) => "%z",
            _ => return Err(format!("pattern letter {}", c.to_string().repeat(run))),
        };
        out.push_str(spec);
        i += run;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Config filters

enum FilterKind {
    /// `env`: the environment variable.
    Env,
    /// `external`: the first line printed by `command KEY`.
    External { command: Vec<String>, latin1: bool },
}

struct Filter {
    name: String,
    kind: FilterKind,
    pattern: Regex,
    /// Values already looked up (an external command runs once per key).
    cache: HashMap<String, Result<String, String>>,
}

impl Filter {
    /// The value for `key`, or why there is none.
    fn lookup(&mut self, key: &str, host: &Host<'_>) -> Result<String, String> {
        if let Some(found) = self.cache.get(key) {
            return found.clone();
        }
        let found = match &self.kind {
            FilterKind::Env => {
                (host.env)(key).ok_or_else(|| "the environment variable is not set".to_string())
            }
            FilterKind::External { command, latin1 } => run_filter_command(command, key, *latin1),
        };
        self.cache.insert(key.to_string(), found.clone());
        found
    }
}

/// Runs an `external` filter's command with the key as its last argument; its first output
/// line is the value, as Flume's `ExternalProcessConfigFilter`.
fn run_filter_command(command: &[String], key: &str, latin1: bool) -> Result<String, String> {
    let (program, args) = command.split_first().ok_or("empty command")?;
    let output = std::process::Command::new(program)
        .args(args)
        .arg(key)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let text = |bytes: &[u8]| {
        if latin1 {
            bytes.iter().map(|&b| char::from(b)).collect()
        } else {
            String::from_utf8_lossy(bytes).into_owned()
        }
    };
    if !output.status.success() {
        return Err(format!(
            "{} exited with {}: {}",
            command.join(" "),
            output.status,
            text(&output.stderr).trim()
        ));
    }
    let stdout = text(&output.stdout);
    stdout
        .lines()
        .next()
        .map(str::to_string)
        .ok_or_else(|| format!("{} printed nothing", command.join(" ")))
}

/// Builds the listed config filters and replaces their references in the values of every
/// source, channel, sink and sink group (not in the lists or the filters themselves), as
/// Flume does before validating. A reference without a value is left as written.
pub(super) fn apply_config_filters(
    agent: &mut AgentProps,
    host: &Host<'_>,
    warnings: &mut Vec<Warning>,
) {
    let Some(list) = agent.list(Kind::ConfigFilter).cloned() else {
        return;
    };
    let list_key = agent.full_key(Kind::ConfigFilter, "");
    let mut filters = Vec::new();
    for name in dedup_list(split_list(&list.value), &list, &list_key, warnings) {
        let Some(component) = agent.components(Kind::ConfigFilter).get(name) else {
            warnings.push(warning(
                Some(&list),
                &list_key,
                format!("config filter {name} is listed but has no properties; removed"),
            ));
            continue;
        };
        let key = agent.full_key(Kind::ConfigFilter, name);
        let Some(type_prop) = component.props.get("type") else {
            warnings.push(warning(
                Some(&component.first),
                &key,
                format!("config filter {name} has no type; removed"),
            ));
            continue;
        };
        let type_key = format!("{key}.type");
        let kind = match type_prop.value.to_ascii_lowercase().as_str() {
            "env" | "org.apache.flume.configfilter.environmentvariableconfigfilter" => {
                FilterKind::Env
            }
            "external" | "org.apache.flume.configfilter.externalprocessconfigfilter" => {
                let Some(command) = component.props.get("command") else {
                    warnings.push(warning(
                        Some(type_prop),
                        &type_key,
                        format!("config filter {name}: command is required; removed"),
                    ));
                    continue;
                };
                let charset = component
                    .props
                    .get("charset")
                    .map_or("UTF-8", |p| p.value.as_str());
                let latin1 = match charset.to_ascii_uppercase().as_str() {
                    "UTF-8" | "UTF8" | "US-ASCII" | "ASCII" => false,
                    "ISO-8859-1" | "ISO8859-1" | "LATIN1" => true,
                    other => {
                        warnings.push(warning(Some(type_prop), &type_key, format!("config filter {name}: charset {other} is not supported; reading UTF-8")));
                        false
                    }
                };
                FilterKind::External {
                    command: split_list(&command.value).map(str::to_string).collect(),
                    latin1,
                }
            }
            _ => {
                let msg = format!(
                    "config filter {name}: type {} is not supported; ${{{name}[...]}} references are left as written",
                    type_prop.value
                );
                warnings.push(warning(Some(type_prop), &type_key, msg));
                continue;
            }
        };
        let quoted = regex::escape(name);
        let re = format!(
            r#"\$\{{{quoted}\[(?:'([-_a-zA-Z0-9]+)'|"([-_a-zA-Z0-9]+)"|([-_a-zA-Z0-9]+))\]\}}"#
        );
        match Regex::new(&re) {
            Ok(pattern) => filters.push(Filter {
                name: name.to_string(),
                kind,
                pattern,
                cache: HashMap::new(),
            }),
            Err(e) => warnings.push(warning(
                Some(type_prop),
                &type_key,
                format!("config filter {name}: {e}"),
            )),
        }
    }
    let agent_name = agent.name.clone();
    for filter in &mut filters {
        for kind in [Kind::Source, Kind::Channel, Kind::Sink, Kind::SinkGroup] {
            for (component, comp) in agent.components[kind.index()].iter_mut() {
                for (key, prop) in comp.props.iter_mut() {
                    let full_key = format!("{agent_name}.{}.{component}.{key}", kind.key());
                    filter_value(filter, prop, &full_key, host, warnings);
                }
            }
        }
    }
}

fn filter_value(
    filter: &mut Filter,
    prop: &mut Prop,
    key: &str,
    host: &Host<'_>,
    warnings: &mut Vec<Warning>,
) {
    if !prop.value.contains("${") {
        return;
    }
    let value = prop.value.clone();
    let mut out = String::with_capacity(value.len());
    let mut last = 0;
    let found: Vec<_> = filter
        .pattern
        .captures_iter(&value)
        .filter_map(|caps| {
            let whole = caps.get(0)?;
            let name = caps.get(1).or(caps.get(2)).or(caps.get(3))?;
            Some((whole.start(), whole.end(), name.as_str().to_string()))
        })
        .collect();
    for (start, end, name) in found {
        out.push_str(value.get(last..start).unwrap_or_default());
        match filter.lookup(&name, host) {
            Ok(v) => out.push_str(&v),
            Err(why) => {
                out.push_str(value.get(start..end).unwrap_or_default());
                let msg = format!(
                    "config filter {}: no value for {name} ({why}); left as written",
                    filter.name
                );
                warnings.push(warning(Some(prop), key, msg));
            }
        }
        last = end;
    }
    out.push_str(value.get(last..).unwrap_or_default());
    prop.value = out;
}

#[cfg(test)]
mod tests {
    use super::super::harness::*;
    use super::*;

    #[test]
    fn java_date_patterns_translate_to_chrono() {
        assert_eq!(java_date_format("yyyy-MM-dd").unwrap(), "%Y-%m-%d");
        assert_eq!(
            java_date_format("yy/M/d H:m:s").unwrap(),
            "%y/%-m/%-d %-H:%-M:%-S"
        );
        assert_eq!(
            java_date_format("EEE, dd MMM yyyy hh:mm a Z").unwrap(),
            "%a, %d %b %Y %I:%M %p %z"
        );
        assert_eq!(
            java_date_format("'at' HH'h' ''100%''").unwrap(),
            "at %Hh '100%%'"
        );
        assert_eq!(
            java_date_format("DDD SSS EEEE MMMM").unwrap(),
            "%j %3f %A %B"
        );
        assert_eq!(
            java_date_format("yyyy ww").unwrap_err(),
            "pattern letter ww"
        );
    }

    #[test]
    fn closing_brace_counts_nested_variables() {
        assert_eq!(closing_brace("a}b"), Some(1));
        assert_eq!(closing_brace("env:${sys:x}}"), Some(12));
        assert_eq!(closing_brace("a{b}c}"), Some(3));
        assert_eq!(closing_brace("${x}"), None);
    }

    #[test]
    fn substitution_of_env_sys_and_other_keys() {
        let (c, w) = ok(&format!(
            "{BASE}a1.sources.r1.port = 4141\n\
             a1.sources.r1.a = ${{env:FLUME_TEST_HOME}}/data\n\
             a1.sources.r1.b = ${{sys:flume.dir}}/x\n\
             a1.sources.r1.c = port ${{a1.sources.r1.port}}\n\
             a1.sources.r1.d = ${{a1.sources.r1.c}}!\n\
             a1.sources.r1.e = ${{env:UNSET_VAR:-fallback}}\n\
             a1.sources.r1.f = $${{env:FLUME_TEST_HOME}}\n\
             a1.sources.r1.g = ${{env:${{sys:which}}}}\n\
             a1.sources.r1.h = ${{sys:user.home}}\n\
             a1.sources.r1.i = ${{env:a1.sources.r1.port}}\n\
             a1.sources.r1.j = ${{date:yyyy-MM-dd'T'HH:mm:ss.SSS Z}}\n\
             a1.sources.r1.k = cost $5 and ${{unclosed\n\
             a1.sources.r1.${{a1.sources.r1.port}} = keys are never substituted\n"
        ));
        let ctx = &c.sources[0].component.context;
        let get = |k: &str| ctx.get(k).unwrap_or_else(|| panic!("{k} missing"));
        assert_eq!(get("a"), "/opt/flume/data");
        assert_eq!(get("b"), "/var/flume/x");
        assert_eq!(get("c"), "port 4141");
        assert_eq!(get("d"), "port 4141!");
        assert_eq!(get("e"), "fallback");
        assert_eq!(get("f"), "${env:FLUME_TEST_HOME}");
        assert_eq!(get("g"), "/opt/flume");
        assert_eq!(get("h"), "/home/tester");
        // An unknown name under a known prefix falls back to the properties.
        assert_eq!(get("i"), "4141");
        assert_eq!(get("j"), "2024-03-05T06:07:08.009 +0800");
        assert_eq!(get("k"), "cost $5 and ${unclosed");
        assert_eq!(get("${a1.sources.r1.port}"), "keys are never substituted");
        assert_eq!(w, Vec::<String>::new());
    }

    #[test]
    fn unresolved_and_cyclic_variables_stay_as_written() {
        let (c, w) = ok(&format!(
            "{BASE}a1.sources.r1.a = ${{env:NOPE}}/x\n\
             a1.sources.r1.b = ${{a1.sources.r1.b}}\n\
             a1.sources.r1.c = ${{java:version}}\n\
             a1.sources.r1.d = ${{date:yyyy-QQ}}\n"
        ));
        let ctx = &c.sources[0].component.context;
        assert_eq!(ctx.get("a"), Some("${env:NOPE}/x"));
        assert_eq!(ctx.get("b"), Some("${a1.sources.r1.b}"));
        assert_eq!(ctx.get("c"), Some("${java:version}"));
        assert_eq!(ctx.get("d"), Some("${date:yyyy-QQ}"));
        assert_eq!(
            w,
            vec![
                "9: a1.sources.r1.a: ${env:NOPE} has no value; left as written",
                "10: a1.sources.r1.b: ${a1.sources.r1.b} refers to itself (a1.sources.r1.b -> a1.sources.r1.b); left as written",
                "11: a1.sources.r1.c: ${java:version}: java lookups are not supported; left as written",
                "12: a1.sources.r1.d: ${date:yyyy-QQ}: pattern letter QQ is not supported; left as written",
            ]
        );
    }

    #[test]
    fn substitution_happens_before_trimming_and_list_splitting() {
        // The substituted list has blanks at both ends and in the middle: trimmed, then split.
        let (c, w) = ok_over(
            "a1.channels = ${a1.vars} c2 \na1.channels.c2.type = memory\na1.vars = \\  c1 \\ \n",
        );
        assert_eq!(names(&c.channels, |ch| &ch.name), vec!["c1", "c2"]);
        // `a1.vars` is an invalid property for Flume, but still a substitution source.
        assert_eq!(w.len(), 1);
        assert!(w[0].starts_with("3: a1.vars: invalid property"), "{w:?}");
    }

    #[test]
    fn env_config_filter_replaces_references_in_component_values() {
        let (c, w) = ok(&format!(
            "{BASE}a1.configfilters = f1\n\
             a1.configfilters.f1.type = env\n\
             a1.sources.r1.a = ${{f1['FLUME_TEST_PASSWORD']}}\n\
             a1.sources.r1.b = x${{f1[\"FLUME_TEST_HOME\"]}}y${{f1[FLUME_TEST_PASSWORD]}}\n\
             a1.channels.c1.c = ${{f1['NOPE']}}\n"
        ));
        assert_eq!(c.sources[0].component.context.get("a"), Some("s3cret"));
        assert_eq!(
            c.sources[0].component.context.get("b"),
            Some("x/opt/flumeys3cret")
        );
        assert_eq!(c.channels[0].context.get("c"), Some("${f1['NOPE']}"));
        assert_eq!(
            w,
            vec!["13: a1.channels.c1.c: config filter f1: no value for NOPE (the environment variable is not set); left as written"]
        );
    }

    #[test]
    fn external_config_filter_runs_the_command_with_the_key() {
        let (c, w) = ok(&format!(
            "{BASE}a1.configfilters = f2 f3\n\
             a1.configfilters.f2.type = external\n\
             a1.configfilters.f2.command = echo secret-for\n\
             a1.configfilters.f3.type = EXTERNAL\n\
             a1.configfilters.f3.command = false\n\
             a1.sinks.k1.a = ${{f2['db']}}\n\
             a1.sinks.k1.b = ${{f3['db']}}\n"
        ));
        let ctx = &sink(&c, "k1").component.context;
        assert_eq!(ctx.get("a"), Some("secret-for db"));
        assert_eq!(ctx.get("b"), Some("${f3['db']}"));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with(
                "15: a1.sinks.k1.b: config filter f3: no value for db (false exited with"
            ),
            "{w:?}"
        );
    }

    #[test]
    fn unsupported_and_incomplete_config_filters() {
        let (c, w) = ok(&format!(
            "{BASE}a1.configfilters = h1 e1 n1 x1\n\
             a1.configfilters.h1.type = hadoop\n\
             a1.configfilters.e1.type = external\n\
             a1.configfilters.n1.credential.provider.path = x\n\
             a1.sources.r1.a = ${{h1['k']}}\n"
        ));
        assert_eq!(c.sources[0].component.context.get("a"), Some("${h1['k']}"));
        assert_eq!(
            w,
            vec![
                "10: a1.configfilters.h1.type: config filter h1: type hadoop is not supported; ${h1[...]} references are left as written",
                "11: a1.configfilters.e1.type: config filter e1: command is required; removed",
                "12: a1.configfilters.n1: config filter n1 has no type; removed",
                "9: a1.configfilters: config filter x1 is listed but has no properties; removed",
            ]
        );
    }
}
