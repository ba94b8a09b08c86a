//! The syslog sources: `syslogtcp` (Flume's `SyslogTcpSource`), `multiport_syslogtcp`
//! (`MultiportSyslogTCPSource`) and `syslogudp` (`SyslogUDPSource`).
//!
//! `syslogtcp` and `syslogudp` parse with Flume's `SyslogUtils` state machine and regexes
//! ([`SyslogDecoder`]):
//! - input is split on `\n` (TCP; empty lines are skipped) or taken one datagram at a time
//!   (UDP, up to 64 KiB; text after the first `\n` of a datagram is ignored, as in Flume);
//! - `<PRI>` gives the headers `Facility` (PRI / 8) and `Severity` (PRI % 8), plus
//!   `priority`; an RFC 5424 or RFC 3164 header gives `version`, `timestamp` (epoch
//!   milliseconds) and `host`, and the body is then the message part only;
//! - data that does not start with a valid `<PRI>` is still delivered, with
//!   `flume.syslog.status = Invalid`, Facility and Severity 0 and the raw line as body; a
//!   line longer than `eventSize` (2500, min 10; TCP only) is cut there and delivered with
//!   `flume.syslog.status = Incomplete`, the rest becoming the next event;
//! - Flume's timestamp quirks are kept: an RFC 5424 stamp with fractional seconds is read as
//!   local time (its zone is ignored, and `.5` means 5 ms, as `SimpleDateFormat` reads
//!   `.S`); an RFC 3164 stamp is local time in the current year, moved by a year when that
//!   puts it more than a month ahead or eleven months behind;
//! - `keepFields` (`none`/`false`, `all`/`true`, or any of `priority version timestamp
//!   hostname`) puts those fields back in front of the body, or keeps the whole line;
//! - `clientIPHeader` / `clientHostnameHeader` name headers for the peer's address (no
//!   reverse DNS here: the hostname header also holds the IP).
//!
//! Each event goes to the channels on its own (`process_event`); a refused event is dropped
//! and logged, as in Flume. Custom `format.*` regexes are not supported (refused, naming the
//! key). Unlike Flume, `priority`/`version` do not leak from one event into the next invalid
//! one.
//!
//! `multiport_syslogtcp` follows Flume's separate `SyslogParser`: keys **ports** (space
//! list), `host`, `eventSize` 2500, `batchSize` 100 (events per channel transaction),
//! `portHeader` (header naming the local port, unset = none), `charset.default` UTF-8,
//! `charset.port.<port>`, `keepFields`, `clientIPHeader`, `clientHostnameHeader`
//! (`numProcessors` and `readBufferBytes` are accepted and have no effect). Its headers
//! are `Priority`, `Facility`, `Severity`, `Version` (RFC 5424 `1 `), `timestamp` (the
//! current time for `-`) and `host`; an unparseable line is delivered with
//! `flume.syslog.status = Invalid` (counted as `EventReadFail`), an over-long one cut and
//! marked `Incomplete`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use chrono::{
    Datelike, FixedOffset, Local, Months, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
};
use regex::Regex;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinSet;

use super::netcat::{port, resolve_bind, Charset};
use super::{Source, SourceContext};
use crate::conf::{ConfigError, Context};
use crate::event::Event;

/// `SyslogUtils.DEFAULT_SIZE`.
const DEFAULT_EVENT_SIZE: usize = 2500;
/// `SyslogUtils.MIN_SIZE`.
const MIN_EVENT_SIZE: usize = 10;
/// `SyslogUDPSource.maxsize`: 64 KiB, the RFC 5426 maximum.
const UDP_MAX: usize = 1 << 16;
/// `SyslogSourceConfigurationConstants.DEFAULT_BATCHSIZE` (multiport).
const DEFAULT_BATCH: usize = 100;
/// Header set on events that could not be parsed (Flume's `SyslogUtils.EVENT_STATUS`).
pub const STATUS_HEADER: &str = "flume.syslog.status";

/// Java's `.` (no line terminators) and `\s`, `\w`, `\d` (ASCII) spelled out.
static RFC5424: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(concat!(
        r"^(?:<([0-9]{1,3})>)",
        r"(?:([0-9]?)[ \t\n\x0B\x0C\r]?)",
        r"(?:([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:[+-][0-9]{2}:[0-9]{2}|Z)?)|-)",
        r"[ \t\n\x0B\x0C\r]",
        r"(?:([A-Za-z0-9_][A-Za-z0-9_.@\-]*)|-)",
        r"[ \t\n\x0B\x0C\r]",
        r"([^\n\r\x{85}\x{2028}\x{2029}]*)$"
    ))
    .ok()
});

static RFC3164: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(concat!(
        r"^(?:<([0-9]{1,3})>)",
        r"(?:([0-9])?[ \t\n\x0B\x0C\r]?)",
        r"([A-Z][a-z][a-z][ \t\n\x0B\x0C\r]{1,2}[0-9]{1,2}[ \t\n\x0B\x0C\r][0-9]{2}:[0-9]{2}:[0-9]{2})",
        r"[ \t\n\x0B\x0C\r]",
        r"([A-Za-z0-9_][A-Za-z0-9_.@\-]*)",
        r"[ \t\n\x0B\x0C\r]([^\n\r\x{85}\x{2028}\x{2029}]*)$"
    ))
    .ok()
});

/// Which fields `keepFields` puts back into the body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KeepFields {
    /// `none`/`false` (the default): the body is the message only.
    #[default]
    None,
    /// `all`/`true`: the body is the whole line.
    All,
    /// A subset of `priority`, `version`, `timestamp`, `hostname`.
    Some(BTreeSet<&'static str>),
}

impl KeepFields {
    /// Flume's `chooseFieldsToKeep`: field names are found as substrings.
    pub fn parse(s: &str) -> KeepFields {
        let s = s.trim().to_lowercase();
        match s.as_str() {
            "false" | "none" => KeepFields::None,
            "true" | "all" => KeepFields::All,
            _ => KeepFields::Some(
                ["priority", "version", "timestamp", "hostname"]
                    .into_iter()
                    .filter(|f| s.contains(f))
                    .collect(),
            ),
        }
    }

    fn has(&self, f: &str) -> bool {
        matches!(self, KeepFields::Some(set) if set.contains(f))
    }

    /// Flume's `addFieldsToBody` (a missing field prints as `null`, as Java's `+` does).
    fn add_to_body(
        &self,
        body: &str,
        pri: Option<&str>,
        ver: Option<&str>,
        ts: Option<&str>,
        host: Option<&str>,
    ) -> String {
        let mut body = body.to_string();
        if self.has("hostname") {
            body = format!("{} {body}", host.unwrap_or("null"));
        }
        if self.has("timestamp") {
            body = format!("{} {body}", ts.unwrap_or("null"));
        }
        if let Some(v) = ver.filter(|v| !v.is_empty() && self.has("version")) {
            body = format!("{v} {body}");
        }
        if self.has("priority") {
            body = format!("<{}>{body}", pri.unwrap_or("null"));
        }
        body
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Start,
    Prio,
    Data,
}

/// Flume's `SyslogUtils`: a byte-at-a-time parser that keeps partial events between reads.
#[derive(Debug)]
pub struct SyslogDecoder {
    mode: Mode,
    prio: String,
    buf: Vec<u8>,
    bad: bool,
    incomplete: bool,
    max_size: usize,
    udp: bool,
    keep: KeepFields,
}

/// What [`SyslogDecoder`] produced from an event's bytes.
#[derive(Debug)]
pub enum Decoded {
    /// An event.
    Event(Event),
    /// The data could not even be turned into an event (Flume: a `RuntimeException`,
    /// counted as `EventReadFail`).
    Unreadable(String),
}

impl SyslogDecoder {
    /// A decoder for TCP (`udp` false) or UDP datagrams.
    pub fn new(event_size: usize, keep: KeepFields, udp: bool) -> Self {
        SyslogDecoder {
            mode: Mode::Start,
            prio: String::new(),
            buf: Vec::new(),
            bad: false,
            incomplete: false,
            max_size: event_size.max(MIN_EVENT_SIZE),
            udp,
            keep,
        }
    }

    /// Consume bytes from the front of `input` until one event is complete (`Some`) or the
    /// input runs out (`None`, the partial event is kept; a UDP datagram is always complete).
    pub fn extract(&mut self, input: &mut &[u8]) -> Option<Decoded> {
        while let Some((&b, rest)) = input.split_first() {
            *input = rest;
            match self.mode {
                Mode::Start => {
                    if b == b'<' {
                        self.buf.push(b);
                        self.mode = Mode::Prio;
                    } else if b != b'\n' {
                        self.bad = true;
                        self.buf.push(b);
                        self.mode = Mode::Data;
                    }
                }
                Mode::Prio => {
                    self.buf.push(b);
                    if b == b'>' {
                        if self.prio.is_empty() {
                            self.bad = true;
                        }
                        self.mode = Mode::Data;
                    } else {
                        self.prio.push(char::from(b));
                        if !b.is_ascii_digit() || self.prio.len() > 3 {
                            self.bad = true;
                            self.mode = Mode::Data;
                        }
                    }
                }
                Mode::Data => {
                    if b == b'\n' {
                        return Some(self.build());
                    }
                    self.buf.push(b);
                    if self.buf.len() == self.max_size {
                        self.incomplete = true;
                        return Some(self.build());
                    }
                }
            }
        }
        if self.udp {
            return Some(self.build());
        }
        None
    }

    fn build(&mut self) -> Decoded {
        let out = self.build_inner();
        self.buf.clear();
        self.mode = Mode::Start;
        self.prio.clear();
        self.bad = false;
        self.incomplete = false;
        out
    }

    fn build_inner(&self) -> Decoded {
        let mut facility = 0;
        let mut severity = 0;
        let mut parsed = Parsed::default();
        if !self.bad {
            let Ok(pri) = self.prio.parse::<u32>() else {
                return Decoded::Unreadable(format!("invalid priority {:?}", self.prio));
            };
            severity = pri % 8;
            facility = pri / 8;
            parsed = parse_headers(&String::from_utf8_lossy(&self.buf), &self.keep, Utc::now());
        }
        let mut headers = BTreeMap::new();
        headers.insert("Facility".to_string(), facility.to_string());
        headers.insert("Severity".to_string(), severity.to_string());
        for (k, v) in [
            ("priority", &parsed.priority),
            ("version", &parsed.version),
            ("timestamp", &parsed.timestamp),
            ("host", &parsed.host),
        ] {
            if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
                headers.insert(k.to_string(), v.clone());
            }
        }
        if self.bad {
            tracing::warn!("event created from invalid syslog data");
            headers.insert(STATUS_HEADER.to_string(), "Invalid".to_string());
        } else if self.incomplete {
            tracing::warn!(
                "event size larger than specified event size: {}; consider increasing eventSize",
                self.max_size
            );
            headers.insert(STATUS_HEADER.to_string(), "Incomplete".to_string());
        }
        let body = match (&self.keep, parsed.body) {
            (KeepFields::All, _) => self.buf.clone(),
            (_, Some(b)) if !b.is_empty() => b.into_bytes(),
            _ => self.buf.clone(),
        };
        Decoded::Event(Event {
            headers,
            body: body.into(),
        })
    }
}

#[derive(Debug, Default)]
struct Parsed {
    priority: Option<String>,
    version: Option<String>,
    timestamp: Option<String>,
    host: Option<String>,
    body: Option<String>,
}

/// Flume's `formatHeaders`: the first of the RFC 5424 and RFC 3164 patterns that matches
/// the whole line gives the fields.
fn parse_headers(line: &str, keep: &KeepFields, now: chrono::DateTime<Utc>) -> Parsed {
    let formats: [(&Option<Regex>, bool); 2] = [(&RFC5424, false), (&RFC3164, true)];
    for (re, rfc3164) in formats {
        let Some(caps) = re.as_ref().and_then(|r| r.captures(line)) else {
            continue;
        };
        let g = |i: usize| caps.get(i).map(|m| m.as_str().to_string());
        let priority = g(1);
        let version = g(2);
        let raw_ts = g(3);
        let host = g(4);
        let timestamp = raw_ts.as_deref().and_then(|v| {
            if rfc3164 {
                rfc3164_millis(v, now)
            } else {
                rfc5424_millis(v)
            }
        });
        let body = g(5).map(|b| {
            keep.add_to_body(
                &b,
                priority.as_deref(),
                version.as_deref(),
                raw_ts.as_deref(),
                host.as_deref(),
            )
        });
        return Parsed {
            priority,
            version,
            timestamp: timestamp.map(|t| t.to_string()),
            host,
            body,
        };
    }
    Parsed::default()
}

fn local_millis(naive: NaiveDateTime) -> Option<i64> {
    Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|d| d.timestamp_millis())
}

/// An RFC 5424 stamp as Flume's `SimpleDateFormat` chain reads it.
fn rfc5424_millis(v: &str) -> Option<i64> {
    let base = v.get(..19)?;
    let naive = NaiveDateTime::parse_from_str(base, "%Y-%m-%dT%H:%M:%S").ok()?;
    let rest = v.get(19..)?;
    if let Some(frac) = rest.strip_prefix('.') {
        // `yyyy-MM-dd'T'HH:mm:ss.S` matches first: the digits (cut to 3) are milliseconds and
        // whatever follows, the zone included, is ignored.
        let digits: String = frac
            .chars()
            .take_while(char::is_ascii_digit)
            .take(3)
            .collect();
        let ms: i64 = digits.parse().ok()?;
        return local_millis(naive).map(|t| t + ms);
    }
    if rest.is_empty() {
        return local_millis(naive);
    }
    let offset_secs = if rest == "Z" {
        0
    } else {
        let sign = match rest.get(..1)? {
            "+" => 1,
            "-" => -1,
            _ => return None,
        };
        let h: i32 = rest.get(1..3)?.parse().ok()?;
        let m: i32 = rest.get(4..6)?.parse().ok()?;
        sign * (h * 3600 + m * 60)
    };
    let tz = FixedOffset::east_opt(offset_secs)?;
    tz.from_local_datetime(&naive)
        .single()
        .map(|d| d.timestamp_millis())
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// `MMM d HH:mm:ss` in local time, with Flume's year guess around `now`.
fn rfc3164_millis(v: &str, now: chrono::DateTime<Utc>) -> Option<i64> {
    let mut parts = v.split_whitespace();
    let mon = parts.next()?.to_ascii_lowercase();
    let month = u32::try_from(MONTHS.iter().position(|m| *m == mon)?).ok()? + 1;
    let day: u32 = parts.next()?.parse().ok()?;
    let time = NaiveTime::parse_from_str(parts.next()?, "%H:%M:%S").ok()?;
    let naive = NaiveDate::from_ymd_opt(now.year(), month, day)?.and_time(time);
    let now_local = now.with_timezone(&Local).naive_local();
    let fixed = if naive > now_local && naive.checked_sub_months(Months::new(1))? > now_local {
        naive.with_year(naive.year() - 1)?
    } else if naive < now_local && naive.checked_add_months(Months::new(11))? < now_local {
        naive.with_year(naive.year() + 1)?
    } else {
        naive
    };
    local_millis(fixed)
}

/// Settings shared by the TCP and UDP sources.
#[derive(Debug, Clone)]
struct Common {
    host: String,
    keep: KeepFields,
    client_ip_header: Option<String>,
    client_hostname_header: Option<String>,
}

fn common(ctx: &Context) -> Result<Common, ConfigError> {
    if let Some((k, _)) = ctx.iter().find(|(k, _)| k.starts_with("format.")) {
        return Err(ctx.error(k, "custom syslog formats are not supported by sluice-flume"));
    }
    Ok(Common {
        host: ctx.string("host", "0.0.0.0"),
        keep: KeepFields::parse(&ctx.string("keepFields", "none")),
        client_ip_header: ctx.get("clientIPHeader").map(str::to_string),
        client_hostname_header: ctx.get("clientHostnameHeader").map(str::to_string),
    })
}

impl Common {
    fn add_client_headers(&self, e: &mut Event, peer: SocketAddr) {
        if let Some(h) = &self.client_ip_header {
            e.headers.insert(h.clone(), peer.ip().to_string());
        }
        if let Some(h) = &self.client_hostname_header {
            e.headers.insert(h.clone(), peer.ip().to_string());
        }
    }
}

fn event_size(ctx: &Context) -> Result<usize, ConfigError> {
    ctx.parse("eventSize", DEFAULT_EVENT_SIZE)
}

/// Build the TCP source.
pub fn build_tcp(_name: &str, ctx: &Context) -> Result<Box<dyn Source>, ConfigError> {
    let port = port(ctx, "port")?;
    let event_size = event_size(ctx)?;
    Ok(Box::new(SyslogTcpSource {
        port,
        event_size,
        common: Arc::new(common(ctx)?),
    }))
}

struct SyslogTcpSource {
    port: u16,
    event_size: usize,
    common: Arc<Common>,
}

async fn deliver(ctx: &SourceContext, d: Decoded, common: &Common, peer: SocketAddr) {
    match d {
        Decoded::Event(mut e) => {
            common.add_client_headers(&mut e, peer);
            if let Err(err) = ctx.processor.process_event(e).await {
                tracing::error!(
                    "source {}: error writing to channel, event from {peer} dropped: {err}",
                    ctx.name
                );
            }
        }
        Decoded::Unreadable(why) => {
            ctx.counters.inc("EventReadFail");
            tracing::error!(
                "source {}: error parsing event from {peer}, event dropped: {why}",
                ctx.name
            );
        }
    }
}

#[async_trait]
impl Source for SyslogTcpSource {
    async fn run(self: Box<Self>, ctx: SourceContext) -> anyhow::Result<()> {
        let addr = resolve_bind(&self.common.host, self.port).await?;
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            anyhow::anyhow!("syslogtcp source {}: cannot bind {addr}: {e}", ctx.name)
        })?;
        tracing::info!(
            "source {}: syslogtcp listening on {}",
            ctx.name,
            listener.local_addr().unwrap_or(addr)
        );
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                _ = ctx.shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let dec = SyslogDecoder::new(self.event_size, self.common.keep.clone(), false);
                        conns.spawn(serve_tcp(stream, peer, dec, self.common.clone(), ctx.clone()));
                    }
                    Err(e) => tracing::error!("source {}: accept failed: {e}", ctx.name),
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
        while conns.join_next().await.is_some() {}
        Ok(())
    }
}

async fn serve_tcp(
    mut stream: TcpStream,
    peer: SocketAddr,
    mut dec: SyslogDecoder,
    common: Arc<Common>,
    ctx: SourceContext,
) {
    let mut buf = vec![0u8; 8192];
    loop {
        let n = tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            r = stream.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
        };
        let mut input = buf.get(..n).unwrap_or(&[]);
        while !input.is_empty() {
            if let Some(d) = dec.extract(&mut input) {
                deliver(&ctx, d, &common, peer).await;
            }
        }
    }
}

/// Build the UDP variant.
pub fn build_udp(_name: &str, ctx: &Context) -> Result<Box<dyn Source>, ConfigError> {
    let port = port(ctx, "port")?;
    Ok(Box::new(SyslogUdpSource {
        port,
        common: common(ctx)?,
    }))
}

struct SyslogUdpSource {
    port: u16,
    common: Common,
}

#[async_trait]
impl Source for SyslogUdpSource {
    async fn run(self: Box<Self>, ctx: SourceContext) -> anyhow::Result<()> {
        let addr = resolve_bind(&self.common.host, self.port).await?;
        let sock = UdpSocket::bind(addr).await.map_err(|e| {
            anyhow::anyhow!("syslogudp source {}: cannot bind {addr}: {e}", ctx.name)
        })?;
        tracing::info!(
            "source {}: syslogudp listening on {}",
            ctx.name,
            sock.local_addr().unwrap_or(addr)
        );
        let mut buf = vec![0u8; UDP_MAX];
        loop {
            let (n, peer) = tokio::select! {
                _ = ctx.shutdown.cancelled() => return Ok(()),
                r = sock.recv_from(&mut buf) => match r {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!("source {}: receive failed: {e}", ctx.name);
                        continue;
                    }
                },
            };
            let mut dec = SyslogDecoder::new(UDP_MAX, self.common.keep.clone(), true);
            let mut input = buf.get(..n).unwrap_or(&[]);
            if let Some(d) = dec.extract(&mut input) {
                deliver(&ctx, d, &self.common, peer).await;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// multiport_syslogtcp

/// Flume's `SyslogParser.parseMessage`; `Err` is the "bad format" reason.
fn parse_multiport(
    msg: &str,
    keep: &KeepFields,
    now: chrono::DateTime<Utc>,
) -> Result<(BTreeMap<String, String>, String), String> {
    let mut headers = BTreeMap::new();
    if !msg.starts_with('<') {
        return Err(format!(
            "Bad format: invalid priority: cannot find open bracket '<' ({msg})"
        ));
    }
    let end = msg.find('>').filter(|&e| e > 0 && e <= 6).ok_or_else(|| {
        format!("Bad format: invalid priority: cannot find end bracket '>' ({msg})")
    })?;
    let priority = msg.get(1..end).unwrap_or("");
    let pri: u32 = priority
        .parse()
        .map_err(|_| format!("Bad format: invalid priority {priority:?}"))?;
    headers.insert("Priority".to_string(), priority.to_string());
    headers.insert("Facility".to_string(), (pri / 8).to_string());
    headers.insert("Severity".to_string(), (pri % 8).to_string());
    let rest = msg
        .get(end + 1..)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| format!("Bad format: no data except priority ({msg})"))?;
    let (version, rest) = match rest.strip_prefix("1 ") {
        Some(r) if !r.is_empty() => (Some("1"), r),
        _ => (None, rest),
    };
    if let Some(v) = version {
        headers.insert("Version".to_string(), v.to_string());
    }
    let (ts, ts_string, rest) = if let Some(r) = rest.strip_prefix('-') {
        let r = r
            .get(1..)
            .filter(|r| !r.is_empty())
            .ok_or("bad syslog format (missing hostname)")?;
        (now.timestamp_millis(), "-".to_string(), r)
    } else if rest.starts_with(|c: char| c.is_ascii_uppercase()) {
        let s = rest
            .get(..15)
            .filter(|_| rest.len() > 15)
            .ok_or("bad timestamp format")?;
        let t = rfc3164_millis(&s.replace("  ", " "), now)
            .ok_or_else(|| format!("bad timestamp format ({s})"))?;
        (t, s.to_string(), rest.get(16..).unwrap_or(""))
    } else {
        let sp = rest.find(' ').ok_or("bad timestamp format")?;
        let s = rest.get(..sp).unwrap_or("");
        let t = multiport_rfc5424(s).ok_or_else(|| format!("bad timestamp format ({s})"))?;
        (t, s.to_string(), rest.get(sp + 1..).unwrap_or(""))
    };
    headers.insert("timestamp".to_string(), ts.to_string());
    let sp = rest
        .find(' ')
        .ok_or("bad syslog format (missing hostname)")?;
    let host = rest.get(..sp).unwrap_or("");
    headers.insert("host".to_string(), host.to_string());
    let data = rest.get(sp + 1..).unwrap_or("");
    let body = if !data.is_empty() && *keep != KeepFields::All {
        keep.add_to_body(data, Some(priority), version, Some(&ts_string), Some(host))
    } else {
        msg.to_string()
    };
    Ok((headers, body))
}

/// `SyslogParser.parseRfc5424Date`: a zone is required; fractions are rounded to millis.
fn multiport_rfc5424(s: &str) -> Option<i64> {
    let naive = NaiveDateTime::parse_from_str(s.get(..19)?, "%Y-%m-%dT%H:%M:%S").ok()?;
    let mut rest = s.get(19..)?;
    let mut ms: i64 = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits: String = frac.chars().take_while(char::is_ascii_digit).collect();
        if !digits.is_empty() {
            let v: i64 = digits.get(..digits.len().min(9))?.parse().ok()?;
            let n = u32::try_from(digits.len().min(9)).ok()?;
            ms = if n > 3 {
                v / 10i64.pow(n - 3)
            } else {
                v * 10i64.pow(3 - n)
            };
        }
        rest = frac.get(digits.len()..)?;
    }
    let offset = if rest == "Z" {
        0
    } else {
        let sign = match rest.get(..1)? {
            "+" => 1,
            "-" => -1,
            _ => return None,
        };
        let h: i64 = rest.get(1..3)?.parse().ok()?;
        let m: i64 = rest.get(4..6)?.parse().ok()?;
        sign * (h * 3600 + m * 60)
    };
    Some(naive.and_utc().timestamp_millis() + ms - offset * 1000)
}

struct MultiportConfig {
    host: String,
    ports: Vec<u16>,
    event_size: usize,
    batch: usize,
    port_header: Option<String>,
    default_charset: Charset,
    port_charsets: BTreeMap<u16, Charset>,
    common: Common,
}

/// Build the multiport TCP variant.
pub fn build_multiport(_name: &str, ctx: &Context) -> Result<Box<dyn Source>, ConfigError> {
    let ports_str = ctx.require("ports")?;
    let mut ports = Vec::new();
    for p in ports_str.split_whitespace() {
        ports.push(
            p.parse::<u16>()
                .map_err(|e| ctx.error("ports", &format!("{p:?} is not a valid port: {e}")))?,
        );
    }
    let _: Option<u32> = ctx
        .get("numProcessors")
        .map(|_| ctx.parse("numProcessors", 0))
        .transpose()?;
    let _: usize = ctx.parse("readBufferBytes", 1024)?;
    let event_size = event_size(ctx)?.max(1);
    let batch: usize = ctx.parse("batchSize", DEFAULT_BATCH)?;
    if batch == 0 {
        return Err(ctx.error("batchSize", "must be greater than 0"));
    }
    let default_charset = Charset::from_context(ctx, "charset.default", "UTF-8")?;
    let mut port_charsets = BTreeMap::new();
    let sub = ctx.sub("charset.port.");
    for (k, p) in sub.iter() {
        let port: u16 = k
            .parse()
            .map_err(|e| sub.error(k, &format!("{k:?} is not a valid port: {e}")))?;
        let cs = Charset::for_name(&p.value)
            .ok_or_else(|| sub.error(k, &format!("unsupported charset {:?}", p.value)))?;
        port_charsets.insert(port, cs);
    }
    let mut common = common(ctx)?;
    common.host = ctx.string("host", "0.0.0.0");
    Ok(Box::new(MultiportSource {
        cfg: Arc::new(MultiportConfig {
            host: common.host.clone(),
            ports,
            event_size,
            batch,
            port_header: ctx.get("portHeader").map(str::to_string),
            default_charset,
            port_charsets,
            common,
        }),
    }))
}

struct MultiportSource {
    cfg: Arc<MultiportConfig>,
}

#[async_trait]
impl Source for MultiportSource {
    async fn run(self: Box<Self>, ctx: SourceContext) -> anyhow::Result<()> {
        let mut listeners = Vec::new();
        for &p in &self.cfg.ports {
            let addr = resolve_bind(&self.cfg.host, p).await?;
            let l = TcpListener::bind(addr).await.map_err(|e| {
                anyhow::anyhow!(
                    "multiport_syslogtcp source {}: cannot bind {addr}: {e}",
                    ctx.name
                )
            })?;
            tracing::info!(
                "source {}: multiport_syslogtcp listening on {}",
                ctx.name,
                l.local_addr().unwrap_or(addr)
            );
            listeners.push((p, l));
        }
        let mut tasks = JoinSet::new();
        for (p, l) in listeners {
            let cfg = self.cfg.clone();
            let ctx = ctx.clone();
            tasks.spawn(async move {
                let mut conns = JoinSet::new();
                loop {
                    tokio::select! {
                        _ = ctx.shutdown.cancelled() => break,
                        a = l.accept() => match a {
                            Ok((s, peer)) => { conns.spawn(serve_multiport(s, peer, p, cfg.clone(), ctx.clone())); }
                            Err(e) => tracing::error!("source {}: accept failed: {e}", ctx.name),
                        },
                        Some(_) = conns.join_next(), if !conns.is_empty() => {}
                    }
                }
                while conns.join_next().await.is_some() {}
            });
        }
        while tasks.join_next().await.is_some() {}
        Ok(())
    }
}

/// Split complete lines (without `\n`) out of `saved`; a line reaching `max` bytes without
/// a newline is cut there and flagged incomplete (Flume's `LineSplitter`).
fn split_line(saved: &mut Vec<u8>, max: usize) -> Option<(Vec<u8>, bool)> {
    let window = saved.len().min(max);
    if let Some(i) = saved
        .get(..window)
        .and_then(|w| w.iter().position(|&b| b == b'\n'))
    {
        let line: Vec<u8> = saved.drain(..=i).take(i).collect();
        return Some((line, false));
    }
    if saved.len() >= max {
        let line: Vec<u8> = saved.drain(..max).collect();
        tracing::warn!("event size larger than specified event size: {max}; consider increasing the max event size");
        return Some((line, true));
    }
    None
}

fn multiport_event(
    line: &[u8],
    incomplete: bool,
    charset: Charset,
    keep: &KeepFields,
    counters: &crate::counters::Counters,
) -> Event {
    let msg = charset.decode(line);
    match parse_multiport(&msg, keep, Utc::now()) {
        Ok((mut headers, body)) => {
            if incomplete {
                headers.insert(STATUS_HEADER.to_string(), "Incomplete".to_string());
            }
            Event {
                headers,
                body: charset.encode(&body).into(),
            }
        }
        Err(why) => {
            tracing::debug!("error parsing syslog event: {why}");
            counters.inc("EventReadFail");
            Event::new(charset.encode(&msg)).with_header(STATUS_HEADER, "Invalid")
        }
    }
}

async fn serve_multiport(
    mut stream: TcpStream,
    peer: SocketAddr,
    port: u16,
    cfg: Arc<MultiportConfig>,
    ctx: SourceContext,
) {
    let charset = cfg
        .port_charsets
        .get(&port)
        .copied()
        .unwrap_or(cfg.default_charset);
    let mut saved: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        let n = tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            r = stream.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
        };
        saved.extend_from_slice(buf.get(..n).unwrap_or(&[]));
        loop {
            let mut events = Vec::new();
            while events.len() < cfg.batch {
                let Some((line, incomplete)) = split_line(&mut saved, cfg.event_size) else {
                    break;
                };
                if line.is_empty() {
                    // Flume fails on an empty line (an index error); skip it instead.
                    continue;
                }
                let mut e =
                    multiport_event(&line, incomplete, charset, &cfg.common.keep, &ctx.counters);
                if let Some(h) = &cfg.port_header {
                    e.headers.insert(h.clone(), port.to_string());
                }
                cfg.common.add_client_headers(&mut e, peer);
                events.push(e);
            }
            if events.is_empty() {
                break;
            }
            if let Err(err) = ctx.processor.process_event_batch(events).await {
                tracing::error!(
                    "source {}: error writing to channel, events from {peer} dropped: {err}",
                    ctx.name
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(dec: &mut SyslogDecoder, data: &[u8]) -> Vec<Event> {
        let mut input = data;
        let mut out = Vec::new();
        while !input.is_empty() {
            if let Some(Decoded::Event(e)) = dec.extract(&mut input) {
                out.push(e);
            }
        }
        out
    }

    #[test]
    fn rfc5424_with_offset() {
        let mut d = SyslogDecoder::new(2500, KeepFields::None, false);
        let ev = decode_all(
            &mut d,
            b"<10>2012-04-13T11:11:11+08:00 ubuntu-11.cloudera.com some msg\n",
        );
        assert_eq!(ev.len(), 1);
        let h = &ev[0].headers;
        assert_eq!(h["Facility"], "1");
        assert_eq!(h["Severity"], "2");
        assert_eq!(h["host"], "ubuntu-11.cloudera.com");
        assert_eq!(h["timestamp"], "1334286671000");
        assert_eq!(&ev[0].body[..], b"some msg");
        assert!(!h.contains_key(STATUS_HEADER));
    }

    #[test]
    fn rfc5424_version_nil_stamp_and_z() {
        let mut d = SyslogDecoder::new(2500, KeepFields::None, false);
        let ev = decode_all(
            &mut d,
            b"<34>1 2003-10-11T22:14:15Z mymachine su - ID47 - hi\n<13>1 - host x\n",
        );
        assert_eq!(ev[0].headers["version"], "1");
        assert_eq!(ev[0].headers["timestamp"], "1065910455000");
        assert_eq!(&ev[0].body[..], b"su - ID47 - hi");
        assert!(!ev[1].headers.contains_key("timestamp"));
        assert_eq!(ev[1].headers["host"], "host");
    }

    #[test]
    fn rfc3164_year_guess_and_keep_fields() {
        let now = Utc.with_ymd_and_hms(2024, 6, 15, 12, 0, 0).unwrap();
        let p = parse_headers(
            "<13>Jun  3 11:11:11 myhost the body",
            &KeepFields::parse("hostname"),
            now,
        );
        assert_eq!(p.host.as_deref(), Some("myhost"));
        assert_eq!(p.body.as_deref(), Some("myhost the body"));
        let expect = local_millis(
            NaiveDate::from_ymd_opt(2024, 6, 3)
                .unwrap()
                .and_hms_opt(11, 11, 11)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(p.timestamp, Some(expect.to_string()));
        // December seen in January belongs to last year.
        let jan = Utc.with_ymd_and_hms(2024, 1, 2, 0, 0, 0).unwrap();
        let t = rfc3164_millis("Dec 31 23:00:00", jan).unwrap();
        let expect = local_millis(
            NaiveDate::from_ymd_opt(2023, 12, 31)
                .unwrap()
                .and_hms_opt(23, 0, 0)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(t, expect);
    }

    #[test]
    fn invalid_and_incomplete() {
        let mut d = SyslogDecoder::new(12, KeepFields::None, false);
        let ev = decode_all(&mut d, b"no priority\n<1>abcdefghijklmn\n");
        assert_eq!(ev[0].headers[STATUS_HEADER], "Invalid");
        assert_eq!(ev[0].headers["Facility"], "0");
        assert_eq!(&ev[0].body[..], b"no priority");
        assert_eq!(ev[1].headers[STATUS_HEADER], "Incomplete");
        assert_eq!(&ev[1].body[..], b"<1>abcdefghi");
        assert_eq!(ev[2].headers[STATUS_HEADER], "Invalid");
        assert_eq!(&ev[2].body[..], b"jklmn");
    }

    #[test]
    fn fraction_ignores_zone_like_flume() {
        let naive =
            NaiveDateTime::parse_from_str("2012-04-13T11:11:11", "%Y-%m-%dT%H:%M:%S").unwrap();
        assert_eq!(
            rfc5424_millis("2012-04-13T11:11:11.999+08:00"),
            local_millis(naive).map(|t| t + 999)
        );
        assert_eq!(
            rfc5424_millis("2012-04-13T11:11:11.5Z"),
            local_millis(naive).map(|t| t + 5)
        );
    }

    #[test]
    fn udp_datagram_without_newline() {
        let mut d = SyslogDecoder::new(UDP_MAX, KeepFields::All, true);
        let mut input: &[u8] = b"<13>Jun  3 11:11:11 myhost the body";
        let Some(Decoded::Event(e)) = d.extract(&mut input) else {
            panic!()
        };
        assert_eq!(&e.body[..], b"<13>Jun  3 11:11:11 myhost the body");
        assert_eq!(e.headers["host"], "myhost");
    }

    #[test]
    fn multiport_parser() {
        let now = Utc.with_ymd_and_hms(2024, 6, 15, 12, 0, 0).unwrap();
        let (h, body) = parse_multiport(
            "<34>1 2003-10-11T22:14:15.003Z mymachine su: hi",
            &KeepFields::None,
            now,
        )
        .unwrap();
        assert_eq!(h["Priority"], "34");
        assert_eq!(h["Version"], "1");
        assert_eq!(h["timestamp"], "1065910455003");
        assert_eq!(h["host"], "mymachine");
        assert_eq!(body, "su: hi");
        assert!(parse_multiport("oops", &KeepFields::None, now).is_err());
        let mut saved = b"abc\ndefghij".to_vec();
        assert_eq!(split_line(&mut saved, 5), Some((b"abc".to_vec(), false)));
        assert_eq!(split_line(&mut saved, 5), Some((b"defgh".to_vec(), true)));
        assert_eq!(split_line(&mut saved, 5), None);
    }
}
