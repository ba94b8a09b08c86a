//! Interceptors: run over each batch a source hands to its channels, in list order; one may
//! change headers or drop events. Types: `timestamp`, `host`, `static`, `remove_header`,
//! `regex_filter`, `regex_extractor`, `search_replace`, and the morphline module's
//! `UUIDInterceptor` (by class name).

use std::time::{SystemTime, UNIX_EPOCH};

use regex::Regex;

use crate::conf::{ConfigError, Context};
use crate::event::Event;

/// One interceptor.
pub trait Interceptor: Send + Sync {
    /// Transform the batch; events not returned are dropped.
    fn intercept(&self, events: Vec<Event>) -> Vec<Event>;
}

/// Build the interceptor of type `type_name` (alias or Flume class name) from `ctx`.
/// `Ok(None)` means the type is unknown.
pub fn build(type_name: &str, ctx: &Context) -> Result<Option<Box<dyn Interceptor>>, ConfigError> {
    let alias = type_name.to_ascii_lowercase();
    let kind = match (alias.as_str(), type_name) {
        ("timestamp", _) | (_, "org.apache.flume.interceptor.TimestampInterceptor$Builder") => {
            "timestamp"
        }
        ("host", _) | (_, "org.apache.flume.interceptor.HostInterceptor$Builder") => "host",
        ("static", _) | (_, "org.apache.flume.interceptor.StaticInterceptor$Builder") => "static",
        ("remove_header", _)
        | (_, "org.apache.flume.interceptor.RemoveHeaderInterceptor$Builder") => "remove_header",
        ("regex_filter", _)
        | (_, "org.apache.flume.interceptor.RegexFilteringInterceptor$Builder") => "regex_filter",
        ("regex_extractor", _)
        | (_, "org.apache.flume.interceptor.RegexExtractorInterceptor$Builder") => {
            "regex_extractor"
        }
        ("search_replace", _)
        | (_, "org.apache.flume.interceptor.SearchAndReplaceInterceptor$Builder") => {
            "search_replace"
        }
        (_, "org.apache.flume.sink.solr.morphline.UUIDInterceptor$Builder") => "uuid",
        _ => return Ok(None),
    };
    let i: Box<dyn Interceptor> = match kind {
        "timestamp" => Box::new(Timestamp {
            header: ctx.string("headerName", "timestamp"),
            preserve: ctx.bool("preserveExisting", false)?,
        }),
        "host" => {
            let use_ip = ctx.bool("useIP", true)?;
            Box::new(Host {
                header: ctx.string("hostHeader", "host"),
                preserve: ctx.bool("preserveExisting", false)?,
                value: if use_ip { local_ip() } else { local_hostname() },
            })
        }
        "static" => Box::new(Static {
            key: ctx.string("key", "key"),
            value: ctx.string("value", "value"),
            preserve: ctx.bool("preserveExisting", true)?,
        }),
        "remove_header" => Box::new(RemoveHeader {
            names: ctx
                .get("withName")
                .map(|s| s.to_string())
                .into_iter()
                .chain(
                    ctx.get("fromList")
                        .map(|l| {
                            let sep = ctx.string("fromListSeparator", "\\s*,\\s*");
                            Regex::new(&sep)
                                .map(|re| re.split(l).map(str::to_string).collect::<Vec<_>>())
                                .unwrap_or_default()
                        })
                        .unwrap_or_default(),
                )
                .filter(|s| !s.is_empty())
                .collect(),
            matching: match ctx.get("matching") {
                Some(p) => Some(regex(ctx, "matching", p)?),
                None => None,
            },
        }),
        "regex_filter" => Box::new(RegexFilter {
            regex: regex(ctx, "regex", &ctx.string("regex", ".*"))?,
            exclude: ctx.bool("excludeEvents", false)?,
        }),
        "regex_extractor" => {
            let re = regex(ctx, "regex", ctx.require("regex")?)?;
            let names: Vec<String> = ctx
                .require("serializers")?
                .split_whitespace()
                .map(|s| ctx.string(&format!("serializers.{s}.name"), s))
                .collect();
            Box::new(RegexExtractor { regex: re, names })
        }
        "search_replace" => Box::new(SearchReplace {
            regex: regex(ctx, "searchPattern", ctx.require("searchPattern")?)?,
            replace: java_replacement(&ctx.string("replaceString", "")),
        }),
        _ => Box::new(Uuid {
            header: ctx.string("headerName", "id"),
            preserve: ctx.bool("preserveExisting", true)?,
            prefix: ctx.string("prefix", ""),
        }),
    };
    Ok(Some(i))
}

fn regex(ctx: &Context, key: &str, pattern: &str) -> Result<Regex, ConfigError> {
    Regex::new(pattern).map_err(|e| ctx.error(key, &format!("invalid regular expression: {e}")))
}

/// Java's `$1` group references become the regex crate's `${1}`.
fn java_replacement(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    if n == '$' {
                        out.push_str("$$");
                    } else {
                        out.push(n);
                    }
                }
            }
            '$' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    out.push_str("$$");
                } else {
                    out.push_str(&format!("${{{digits}}}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// The agent host's name.
pub fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}

/// The agent host's IP address (the one used to reach the outside; 127.0.0.1 if none).
pub fn local_ip() -> String {
    // Connecting a UDP socket sends nothing; it only picks the outgoing interface.
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect("192.0.2.1:9")?;
            s.local_addr()
        })
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| "127.0.0.1".to_string())
}

struct Timestamp {
    header: String,
    preserve: bool,
}

impl Interceptor for Timestamp {
    fn intercept(&self, mut events: Vec<Event>) -> Vec<Event> {
        let now = now_ms().to_string();
        for e in &mut events {
            if !(self.preserve && e.headers.contains_key(&self.header)) {
                e.headers.insert(self.header.clone(), now.clone());
            }
        }
        events
    }
}

struct Host {
    header: String,
    preserve: bool,
    value: String,
}

impl Interceptor for Host {
    fn intercept(&self, mut events: Vec<Event>) -> Vec<Event> {
        for e in &mut events {
            if !(self.preserve && e.headers.contains_key(&self.header)) {
                e.headers.insert(self.header.clone(), self.value.clone());
            }
        }
        events
    }
}

struct Static {
    key: String,
    value: String,
    preserve: bool,
}

impl Interceptor for Static {
    fn intercept(&self, mut events: Vec<Event>) -> Vec<Event> {
        for e in &mut events {
            if !(self.preserve && e.headers.contains_key(&self.key)) {
                e.headers.insert(self.key.clone(), self.value.clone());
            }
        }
        events
    }
}

struct RemoveHeader {
    names: Vec<String>,
    matching: Option<Regex>,
}

impl Interceptor for RemoveHeader {
    fn intercept(&self, mut events: Vec<Event>) -> Vec<Event> {
        for e in &mut events {
            for n in &self.names {
                e.headers.remove(n);
            }
            if let Some(re) = &self.matching {
                e.headers.retain(|k, _| !re.is_match(k));
            }
        }
        events
    }
}

struct RegexFilter {
    regex: Regex,
    exclude: bool,
}

impl Interceptor for RegexFilter {
    fn intercept(&self, events: Vec<Event>) -> Vec<Event> {
        events
            .into_iter()
            .filter(|e| {
                let body = String::from_utf8_lossy(&e.body);
                // Java's Matcher.find(): a match anywhere in the body.
                self.regex.is_match(&body) != self.exclude
            })
            .collect()
    }
}

struct RegexExtractor {
    regex: Regex,
    names: Vec<String>,
}

impl Interceptor for RegexExtractor {
    fn intercept(&self, mut events: Vec<Event>) -> Vec<Event> {
        for e in &mut events {
            let body = String::from_utf8_lossy(&e.body).into_owned();
            if let Some(caps) = self.regex.captures(&body) {
                for (i, name) in self.names.iter().enumerate() {
                    if let Some(m) = caps.get(i + 1) {
                        e.headers.insert(name.clone(), m.as_str().to_string());
                    }
                }
            }
        }
        events
    }
}

struct SearchReplace {
    regex: Regex,
    replace: String,
}

impl Interceptor for SearchReplace {
    fn intercept(&self, mut events: Vec<Event>) -> Vec<Event> {
        for e in &mut events {
            let body = String::from_utf8_lossy(&e.body);
            let out = self
                .regex
                .replace_all(&body, self.replace.as_str())
                .into_owned();
            e.body = out.into_bytes().into();
        }
        events
    }
}

struct Uuid {
    header: String,
    preserve: bool,
    prefix: String,
}

impl Interceptor for Uuid {
    fn intercept(&self, mut events: Vec<Event>) -> Vec<Event> {
        for e in &mut events {
            if !(self.preserve && e.headers.contains_key(&self.header)) {
                e.headers.insert(
                    self.header.clone(),
                    format!("{}{}", self.prefix, uuid::Uuid::new_v4()),
                );
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(type_name: &str, pairs: &[(&str, &str)], e: Event) -> Vec<Event> {
        let ctx = Context::from_pairs("a1.sources.r1.interceptors.i1.", pairs.iter().copied());
        build(type_name, &ctx).unwrap().unwrap().intercept(vec![e])
    }

    #[test]
    fn timestamp_static_and_preserve_rules() {
        let out = one("TIMESTAMP", &[], Event::new("x"));
        assert!(out[0].headers["timestamp"].parse::<u64>().unwrap() > 1_600_000_000_000);
        let e = Event::new("x").with_header("key", "old");
        assert_eq!(one("static", &[], e.clone())[0].headers["key"], "old");
        let out = one(
            "static",
            &[("preserveExisting", "false"), ("value", "new")],
            e,
        );
        assert_eq!(out[0].headers["key"], "new");
    }

    #[test]
    fn regex_filter_and_search_replace() {
        let pairs = [("regex", "^skip"), ("excludeEvents", "true")];
        assert!(one("regex_filter", &pairs, Event::new("skip me")).is_empty());
        assert_eq!(one("regex_filter", &pairs, Event::new("keep")).len(), 1);
        let out = one(
            "search_replace",
            &[("searchPattern", "(\\d+)"), ("replaceString", "<$1>")],
            Event::new("a 12 b"),
        );
        assert_eq!(out[0].body, "a <12> b");
    }

    #[test]
    fn unknown_type_is_none() {
        let ctx = Context::default();
        assert!(build("com.example.Nope", &ctx).unwrap().is_none());
    }
}
