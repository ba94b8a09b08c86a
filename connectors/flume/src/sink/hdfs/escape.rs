//! Flume's `BucketPath` escapes, resolved per event in `hdfs.path` and `hdfs.filePrefix`
//! (and usable by any sink that formats paths).
//!
//! The grammar is Flume's regex `%(\w|%)|%\{([\w.-]+)\}|%\[(\w+)\]` (Java `\w` is ASCII
//! letters, digits and `_`), scanned left to right:
//! - `%{name}`: the header's value, "" when absent;
//! - `%[localhost]`, `%[IP]`, `%[FQDN]` (any case): the agent host's name, address and
//!   canonical name; any other `%[x]` is an error at run time, as in Flume;
//! - `%x` for one word character or `%`: a time escape (the `SimpleDateFormat` equivalents
//!   in the table of CONNECTORS.md A6, English names), `%t` ms, `%s` seconds, `%%` a literal
//!   `%`, any other letter "". **Every** `%x`, `%%` and unknown letters included, needs the
//!   event's `timestamp` header (epoch ms) unless `useLocalTimeStamp` is set: a missing or
//!   non-numeric header is an error (Flume's NPE / "wasn't able to parse timestamp header"),
//!   which the sink turns into a rollback — the poison pill of CONNECTORS.md A6.
//!
//! Rounding (`hdfs.round`, `roundValue`, `roundUnit`) rounds the timestamp down to a multiple
//! of the value in the unit's calendar field, in the sink's time zone, as Flume's
//! `TimestampRoundDownUtil` does. Time zones: `hdfs.timeZone` takes IANA names, `UTC`, `GMT`
//! and `GMT+hh:mm`; as Java's `TimeZone.getTimeZone`, an unknown ID means GMT (with a warning
//! at configuration time). Unset means the agent's local zone.
//!
//! Host names are computed once: the name is the kernel's host name, the address is the
//! first IPv4 address that name resolves to (else the first address, else 127.0.0.1), and
//! the canonical name is the first name `/etc/hosts` gives that address (else the host name),
//! standing in for Java's reverse lookup.

use std::collections::BTreeMap;
use std::fmt;
use std::net::ToSocketAddrs;
use std::sync::OnceLock;

use chrono::{DateTime, FixedOffset, Local, NaiveDateTime, Offset, TimeZone, Timelike, Utc};

/// The header time escapes read.
pub const TIMESTAMP_HEADER: &str = "timestamp";

/// Why a string could not be escaped for an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EscapeError {
    /// A time escape with no `timestamp` header.
    #[error("the event has no timestamp header, which the time escape %{escape} in {template:?} needs (Flume: \"Expected timestamp in the Flume event headers, but it was null\"); add a timestamp interceptor or set hdfs.useLocalTimeStamp = true")]
    MissingTimestamp {
        /// The escape character.
        escape: char,
        /// The string being escaped.
        template: String,
    },
    /// A `timestamp` header that is not a number.
    #[error("Flume wasn't able to parse timestamp header {value:?} in the event to resolve time based bucketing (escape %{escape} in {template:?}); it must be epoch milliseconds, as the timestamp interceptor sets it")]
    BadTimestamp {
        /// The header value.
        value: String,
        /// The escape character.
        escape: char,
        /// The string being escaped.
        template: String,
    },
    /// `%[x]` with an unknown x.
    #[error(
        "the static escape string {0:?} was provided but does not match any of (localhost,IP,FQDN)"
    )]
    UnknownStatic(String),
}

/// A time zone as Java's `TimeZone` resolves it.
#[derive(Debug, Clone)]
pub enum Zone {
    /// The agent's local zone (Java's default).
    Local,
    /// An IANA zone.
    Named(chrono_tz::Tz),
    /// A fixed offset (`UTC`, `GMT`, `GMT+08:00`, and unknown IDs, which are GMT).
    Fixed(FixedOffset),
}

impl Zone {
    /// Java's `TimeZone.getTimeZone(id)`; the flag is false when the ID was unknown and GMT
    /// was used instead.
    pub fn parse(id: &str) -> (Zone, bool) {
        let id = id.trim();
        if let Ok(tz) = id.parse::<chrono_tz::Tz>() {
            return (Zone::Named(tz), true);
        }
        if let Some(off) = parse_custom_gmt(id) {
            return (Zone::Fixed(off), true);
        }
        (Zone::Fixed(Utc.fix()), false)
    }
}

/// Java's custom IDs: `GMT+h`, `GMT+hh`, `GMT+hh:mm`, `GMT+hhmm` (and `-`).
fn parse_custom_gmt(id: &str) -> Option<FixedOffset> {
    let rest = id.strip_prefix("GMT")?;
    if rest.is_empty() {
        return Some(Utc.fix());
    }
    let (sign, digits) = match rest.as_bytes().first()? {
        b'+' => (1, rest.get(1..)?),
        b'-' => (-1, rest.get(1..)?),
        _ => return None,
    };
    let (h, m) = if let Some((h, m)) = digits.split_once(':') {
        (h, m)
    } else if digits.len() <= 2 {
        (digits, "0")
    } else if digits.len() == 4 {
        digits.split_at(2)
    } else {
        return None;
    };
    if h.is_empty()
        || !h.bytes().all(|b| b.is_ascii_digit())
        || !m.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let h: i32 = h.parse().ok()?;
    let m: i32 = m.parse().ok()?;
    if h > 23 || m > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

/// `hdfs.roundUnit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundUnit {
    /// Round the second field.
    Second,
    /// Round the minute field.
    Minute,
    /// Round the hour-of-day field.
    Hour,
}

/// Everything besides the event that escaping depends on.
#[derive(Debug, Clone)]
pub struct EscapeSettings {
    /// `hdfs.timeZone`.
    pub zone: Zone,
    /// `hdfs.round` with its unit and value.
    pub round: Option<(RoundUnit, u32)>,
    /// `hdfs.useLocalTimeStamp`.
    pub use_local_time: bool,
}

impl Default for EscapeSettings {
    fn default() -> Self {
        EscapeSettings {
            zone: Zone::Local,
            round: None,
            use_local_time: false,
        }
    }
}

/// The agent host as `%[localhost]`, `%[IP]` and `%[FQDN]` show it.
#[derive(Debug, Clone)]
pub struct HostInfo {
    /// Host name.
    pub name: String,
    /// Host address.
    pub ip: String,
    /// Canonical host name.
    pub fqdn: String,
}

/// The agent host, computed once.
pub fn host_info() -> &'static HostInfo {
    static HOST: OnceLock<HostInfo> = OnceLock::new();
    HOST.get_or_init(|| {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "localhost".to_string());
        let addrs: Vec<std::net::IpAddr> = (name.as_str(), 0)
            .to_socket_addrs()
            .map(|it| it.map(|a| a.ip()).collect())
            .unwrap_or_default();
        let ip = addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or_else(|| addrs.first())
            .map(|a| a.to_string())
            .unwrap_or_else(|| "127.0.0.1".to_string());
        let fqdn = std::fs::read_to_string("/etc/hosts")
            .ok()
            .and_then(|hosts| {
                hosts.lines().find_map(|line| {
                    let line = line.split('#').next().unwrap_or("");
                    let mut words = line.split_whitespace();
                    (words.next()? == ip)
                        .then(|| words.next().map(str::to_string))
                        .flatten()
                })
            })
            .unwrap_or_else(|| name.clone());
        HostInfo { name, ip, fqdn }
    })
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Lit(String),
    Header(String),
    Static(String),
    Time(char),
}

/// A parsed `hdfs.path` / `hdfs.filePrefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    pieces: Vec<Piece>,
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Template {
    /// Parse `text` with Flume's escape regex.
    pub fn parse(text: &str) -> Template {
        let chars: Vec<char> = text.chars().collect();
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut i = 0;
        while let Some(&c) = chars.get(i) {
            if c == '%' {
                if let Some((piece, len)) = match_escape(&chars[i + 1..]) {
                    if !lit.is_empty() {
                        pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                    }
                    pieces.push(piece);
                    i += 1 + len;
                    continue;
                }
            }
            lit.push(c);
            i += 1;
        }
        if !lit.is_empty() {
            pieces.push(Piece::Lit(lit));
        }
        Template {
            text: text.to_string(),
            pieces,
        }
    }

    /// True when escaping needs nothing from the event or the clock.
    pub fn is_constant(&self) -> bool {
        self.pieces
            .iter()
            .all(|p| matches!(p, Piece::Lit(_) | Piece::Static(_)))
    }

    /// Escape for one event; `now_ms` is the clock reading used with `useLocalTimeStamp`.
    pub fn escape(
        &self,
        headers: &BTreeMap<String, String>,
        settings: &EscapeSettings,
        now_ms: i64,
    ) -> Result<String, EscapeError> {
        let mut out = String::with_capacity(self.text.len() + 16);
        for p in &self.pieces {
            match p {
                Piece::Lit(s) => out.push_str(s),
                Piece::Header(h) => out.push_str(headers.get(h).map(String::as_str).unwrap_or("")),
                Piece::Static(s) => {
                    let host = host_info();
                    match s.to_ascii_lowercase().as_str() {
                        "localhost" => out.push_str(&host.name),
                        "ip" => out.push_str(&host.ip),
                        "fqdn" => out.push_str(&host.fqdn),
                        _ => return Err(EscapeError::UnknownStatic(s.clone())),
                    }
                }
                Piece::Time(c) => {
                    let ts = if settings.use_local_time {
                        now_ms
                    } else {
                        let Some(v) = headers.get(TIMESTAMP_HEADER) else {
                            return Err(EscapeError::MissingTimestamp {
                                escape: *c,
                                template: self.text.clone(),
                            });
                        };
                        // Java's Long.valueOf: optional sign, decimal digits, no blanks.
                        v.parse::<i64>().map_err(|_| EscapeError::BadTimestamp {
                            value: v.clone(),
                            escape: *c,
                            template: self.text.clone(),
                        })?
                    };
                    let raw = if settings.use_local_time {
                        now_ms.to_string()
                    } else {
                        headers.get(TIMESTAMP_HEADER).cloned().unwrap_or_default()
                    };
                    let ts = match settings.round {
                        Some((unit, value)) => round_down(ts, unit, value, &settings.zone),
                        None => ts,
                    };
                    time_escape(*c, ts, &raw, &settings.zone, &mut out);
                }
            }
        }
        Ok(out)
    }
}

/// Match one escape after a `%`; returns the piece and the characters it used.
fn match_escape(rest: &[char]) -> Option<(Piece, usize)> {
    let first = *rest.first()?;
    if is_word(first) || first == '%' {
        return Some((Piece::Time(first), 1));
    }
    let (close, allowed): (char, fn(char) -> bool) = match first {
        '{' => ('}', |c| is_word(c) || c == '.' || c == '-'),
        '[' => (']', is_word),
        _ => return None,
    };
    let mut name = String::new();
    for (i, &c) in rest.iter().enumerate().skip(1) {
        if c == close {
            if name.is_empty() {
                return None;
            }
            let piece = if first == '{' {
                Piece::Header(name)
            } else {
                Piece::Static(name)
            };
            return Some((piece, i + 1));
        }
        if !allowed(c) {
            return None;
        }
        name.push(c);
    }
    None
}

fn in_zone<F>(ts: i64, zone: &Zone, f: F) -> String
where
    F: Fn(&dyn Fmt) -> String,
{
    let utc: DateTime<Utc> = DateTime::from_timestamp_millis(ts).unwrap_or_default();
    match zone {
        Zone::Local => f(&utc.with_timezone(&Local)),
        Zone::Named(tz) => f(&utc.with_timezone(tz)),
        Zone::Fixed(off) => f(&utc.with_timezone(off)),
    }
}

/// Formatting of a zoned time, object safe.
trait Fmt {
    fn fmt_with(&self, pattern: &str) -> String;
}

impl<Tz: TimeZone> Fmt for DateTime<Tz>
where
    Tz::Offset: fmt::Display,
{
    fn fmt_with(&self, pattern: &str) -> String {
        self.format(pattern).to_string()
    }
}

fn time_escape(c: char, ts: i64, raw: &str, zone: &Zone, out: &mut String) {
    let pattern = match c {
        '%' => {
            out.push('%');
            return;
        }
        't' => {
            out.push_str(raw);
            return;
        }
        's' => {
            // Java's long division truncates toward zero.
            out.push_str(&(ts / 1000).to_string());
            return;
        }
        'a' => "%a",
        'A' => "%A",
        'b' => "%b",
        'B' => "%B",
        'c' => "%a %b %-d %H:%M:%S %Y",
        'd' => "%d",
        'e' => "%-d",
        'D' => "%m/%d/%y",
        'H' => "%H",
        'I' => "%I",
        'j' => "%j",
        'k' => "%-H",
        'l' => "%-I",
        'm' => "%m",
        'M' => "%M",
        'n' => "%-m",
        'p' => "%p",
        'S' => "%S",
        'y' => "%y",
        'Y' => "%Y",
        'z' => "%z",
        _ => return,
    };
    out.push_str(&in_zone(ts, zone, |d| d.fmt_with(pattern)));
}

/// `TimestampRoundDownUtil`: round the unit's field down to a multiple of `value` (1 when
/// 0) and zero the smaller fields, in `zone`.
pub fn round_down(ts: i64, unit: RoundUnit, value: u32, zone: &Zone) -> i64 {
    let value = value.max(1);
    fn round<Tz: TimeZone>(dt: DateTime<Tz>, unit: RoundUnit, value: u32) -> i64 {
        let naive: NaiveDateTime = dt.naive_local();
        let rounded = match unit {
            RoundUnit::Second => naive.with_second(naive.second() - naive.second() % value),
            RoundUnit::Minute => naive
                .with_minute(naive.minute() - naive.minute() % value)
                .and_then(|n| n.with_second(0)),
            RoundUnit::Hour => naive
                .with_hour(naive.hour() - naive.hour() % value)
                .and_then(|n| n.with_minute(0))
                .and_then(|n| n.with_second(0)),
        }
        .and_then(|n| n.with_nanosecond(0));
        rounded
            .and_then(|n| dt.timezone().from_local_datetime(&n).earliest())
            .map(|d| d.timestamp_millis())
            .unwrap_or_else(|| dt.timestamp_millis())
    }
    let utc: DateTime<Utc> = DateTime::from_timestamp_millis(ts).unwrap_or_default();
    match zone {
        Zone::Local => round(utc.with_timezone(&Local), unit, value),
        Zone::Named(tz) => round(utc.with_timezone(tz), unit, value),
        Zone::Fixed(off) => round(utc.with_timezone(off), unit, value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc() -> EscapeSettings {
        EscapeSettings {
            zone: Zone::parse("UTC").0,
            round: None,
            use_local_time: false,
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    // 2024-03-05 07:08:09.123 UTC, a Tuesday.
    const TS: &str = "1709622489123";

    #[test]
    fn every_time_escape() {
        let h = headers(&[("timestamp", TS)]);
        let t = Template::parse(
            "%a|%A|%b|%B|%c|%d|%e|%D|%H|%I|%j|%k|%l|%m|%M|%n|%p|%s|%S|%t|%y|%Y|%z|%%|%q",
        );
        assert_eq!(
            t.escape(&h, &utc(), 0).unwrap(),
            "Tue|Tuesday|Mar|March|Tue Mar 5 07:08:09 2024|05|5|03/05/24|07|07|065|7|7|03|08|3|AM|1709622489|09|1709622489123|24|2024|+0000|%|"
        );
    }

    #[test]
    fn headers_statics_and_non_escapes() {
        let h = headers(&[("host.name", "web-1"), ("timestamp", TS)]);
        let t = Template::parse("/logs/%{host.name}/%{absent}/%[localhost]/%{bad name}/50%/%[IP]");
        let host = host_info();
        assert_eq!(
            t.escape(&h, &utc(), 0).unwrap(),
            format!("/logs/web-1//{}/%{{bad name}}/50%/{}", host.name, host.ip)
        );
        let err = Template::parse("%[nope]")
            .escape(&h, &utc(), 0)
            .unwrap_err();
        assert_eq!(err, EscapeError::UnknownStatic("nope".into()));
        assert!(Template::parse("/a/%[FQDN]/b").is_constant());
        assert!(!Template::parse("/a/%{x}").is_constant());
    }

    #[test]
    fn time_escapes_need_a_numeric_timestamp() {
        let t = Template::parse("/a/%Y");
        let err = t.escape(&headers(&[]), &utc(), 0).unwrap_err();
        assert!(
            matches!(err, EscapeError::MissingTimestamp { escape: 'Y', .. }),
            "{err}"
        );
        assert!(err.to_string().contains("timestamp header"), "{err}");
        let err = t
            .escape(&headers(&[("timestamp", "yesterday")]), &utc(), 0)
            .unwrap_err();
        assert!(err.to_string().contains("\"yesterday\""), "{err}");
        // Even %% and unknown letters go through the timestamp check, as in Flume.
        assert!(Template::parse("100%%")
            .escape(&headers(&[]), &utc(), 0)
            .is_err());
        // useLocalTimeStamp takes the clock instead.
        let s = EscapeSettings {
            use_local_time: true,
            ..utc()
        };
        assert_eq!(
            t.escape(&headers(&[]), &s, 1_709_622_489_123).unwrap(),
            "/a/2024"
        );
    }

    #[test]
    fn zones_and_rounding() {
        let h = headers(&[("timestamp", TS)]);
        let mut s = utc();
        s.zone = Zone::parse("Asia/Shanghai").0;
        assert_eq!(
            Template::parse("%H:%M %z").escape(&h, &s, 0).unwrap(),
            "15:08 +0800"
        );
        s.zone = Zone::parse("GMT-05:30").0;
        assert_eq!(
            Template::parse("%H:%M %z").escape(&h, &s, 0).unwrap(),
            "01:38 -0530"
        );
        let (z, known) = Zone::parse("Mars/Olympus");
        assert!(!known);
        s.zone = z;
        assert_eq!(Template::parse("%H").escape(&h, &s, 0).unwrap(), "07");
        s.zone = Zone::parse("UTC").0;
        s.round = Some((RoundUnit::Minute, 10));
        assert_eq!(
            Template::parse("%H%M%S").escape(&h, &s, 0).unwrap(),
            "070000"
        );
        s.round = Some((RoundUnit::Hour, 6));
        assert_eq!(Template::parse("%H%M").escape(&h, &s, 0).unwrap(), "0600");
        s.round = Some((RoundUnit::Second, 5));
        assert_eq!(
            Template::parse("%M%S %t").escape(&h, &s, 0).unwrap(),
            "0805 1709622489123"
        );
    }
}
