//! Component types: Flume's short aliases (matched case-insensitively, as Flume's
//! `valueOf(type.toUpperCase())`) and full class names (matched exactly), mapped to the
//! modules that build them. A type Flume knows but Sluice does not implement is reported as
//! such; anything else is an unknown class, and the component is dropped as Flume would.

use std::sync::Arc;

use crate::channel::{self, Channel};
use crate::conf::{ConfigError, Context};
use crate::sink::{self, Sink};
use crate::source::{self, Source};

/// What a `type` value resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// Implemented here; the canonical name.
    Known(&'static str),
    /// A real Flume type that Sluice does not implement.
    Unsupported(&'static str),
    /// Not a Flume type (Flume: ClassNotFoundException).
    Unknown,
}

/// (canonical name, alias, class name, implemented)
type Row = (&'static str, Option<&'static str>, &'static str, bool);

const SOURCES: &[Row] = &[
    (
        "seq",
        Some("seq"),
        "org.apache.flume.source.SequenceGeneratorSource",
        true,
    ),
    (
        "netcat",
        Some("netcat"),
        "org.apache.flume.source.NetcatSource",
        true,
    ),
    (
        "netcatudp",
        Some("netcatudp"),
        "org.apache.flume.source.NetcatUdpSource",
        true,
    ),
    (
        "exec",
        Some("exec"),
        "org.apache.flume.source.ExecSource",
        true,
    ),
    (
        "avro",
        Some("avro"),
        "org.apache.flume.source.AvroSource",
        true,
    ),
    (
        "thrift",
        Some("thrift"),
        "org.apache.flume.source.ThriftSource",
        false,
    ),
    (
        "syslogtcp",
        Some("syslogtcp"),
        "org.apache.flume.source.SyslogTcpSource",
        true,
    ),
    (
        "multiport_syslogtcp",
        Some("multiport_syslogtcp"),
        "org.apache.flume.source.MultiportSyslogTCPSource",
        true,
    ),
    (
        "syslogudp",
        Some("syslogudp"),
        "org.apache.flume.source.SyslogUDPSource",
        true,
    ),
    (
        "spooldir",
        Some("spooldir"),
        "org.apache.flume.source.SpoolDirectorySource",
        true,
    ),
    (
        "http",
        Some("http"),
        "org.apache.flume.source.http.HTTPSource",
        true,
    ),
    (
        "jms",
        Some("jms"),
        "org.apache.flume.source.jms.JMSSource",
        false,
    ),
    (
        "taildir",
        Some("taildir"),
        "org.apache.flume.source.taildir.TaildirSource",
        true,
    ),
    (
        "kafka",
        None,
        "org.apache.flume.source.kafka.KafkaSource",
        true,
    ),
];

const CHANNELS: &[Row] = &[
    (
        "memory",
        Some("memory"),
        "org.apache.flume.channel.MemoryChannel",
        true,
    ),
    (
        "file",
        Some("file"),
        "org.apache.flume.channel.file.FileChannel",
        true,
    ),
    (
        "jdbc",
        Some("jdbc"),
        "org.apache.flume.channel.jdbc.JdbcChannel",
        false,
    ),
    (
        "spillablememory",
        Some("spillablememory"),
        "org.apache.flume.channel.SpillableMemoryChannel",
        false,
    ),
    (
        "kafka",
        None,
        "org.apache.flume.channel.kafka.KafkaChannel",
        true,
    ),
];

const SINKS: &[Row] = &[
    ("null", Some("null"), "org.apache.flume.sink.NullSink", true),
    (
        "logger",
        Some("logger"),
        "org.apache.flume.sink.LoggerSink",
        true,
    ),
    (
        "file_roll",
        Some("file_roll"),
        "org.apache.flume.sink.RollingFileSink",
        true,
    ),
    (
        "hdfs",
        Some("hdfs"),
        "org.apache.flume.sink.hdfs.HDFSEventSink",
        true,
    ),
    ("avro", Some("avro"), "org.apache.flume.sink.AvroSink", true),
    (
        "thrift",
        Some("thrift"),
        "org.apache.flume.sink.ThriftSink",
        false,
    ),
    (
        "irc",
        Some("irc"),
        "org.apache.flume.sink.irc.IRCSink",
        false,
    ),
    (
        "elasticsearch",
        Some("elasticsearch"),
        "org.apache.flume.sink.elasticsearch.ElasticSearchSink",
        false,
    ),
    (
        "hbase",
        Some("hbase"),
        "org.apache.flume.sink.hbase.HBaseSink",
        false,
    ),
    (
        "asynchbase",
        Some("asynchbase"),
        "org.apache.flume.sink.hbase.AsyncHBaseSink",
        false,
    ),
    (
        "morphline_solr",
        Some("morphline_solr"),
        "org.apache.flume.sink.solr.morphline.MorphlineSolrSink",
        false,
    ),
    (
        "hive",
        Some("hive"),
        "org.apache.flume.sink.hive.HiveSink",
        false,
    ),
    (
        "http",
        Some("http"),
        "org.apache.flume.sink.http.HttpSink",
        false,
    ),
    ("kafka", None, "org.apache.flume.sink.kafka.KafkaSink", true),
    (
        "spark",
        None,
        "org.apache.spark.streaming.flume.sink.SparkSink",
        true,
    ),
];

fn resolve(rows: &[Row], type_name: &str) -> Resolved {
    let t = type_name.trim();
    for &(canonical, alias, class, implemented) in rows {
        if alias.is_some_and(|a| a.eq_ignore_ascii_case(t)) || class == t {
            return if implemented {
                Resolved::Known(canonical)
            } else {
                Resolved::Unsupported(canonical)
            };
        }
    }
    Resolved::Unknown
}

/// Resolve a source `type`.
pub fn source_type(type_name: &str) -> Resolved {
    resolve(SOURCES, type_name)
}

/// Resolve a channel `type`.
pub fn channel_type(type_name: &str) -> Resolved {
    resolve(CHANNELS, type_name)
}

/// Resolve a sink `type`.
pub fn sink_type(type_name: &str) -> Resolved {
    resolve(SINKS, type_name)
}

/// Build a source of canonical type `kind`.
pub fn build_source(kind: &str, name: &str, ctx: &Context) -> Result<Box<dyn Source>, ConfigError> {
    match kind {
        "seq" => source::seq::build(name, ctx),
        "netcat" => source::netcat::build(name, ctx),
        "netcatudp" => source::netcat::build_udp(name, ctx),
        "exec" => source::exec::build(name, ctx),
        "avro" => source::avro::build(name, ctx),
        "syslogtcp" => source::syslog::build_tcp(name, ctx),
        "multiport_syslogtcp" => source::syslog::build_multiport(name, ctx),
        "syslogudp" => source::syslog::build_udp(name, ctx),
        "spooldir" => source::spooldir::build(name, ctx),
        "http" => source::http::build(name, ctx),
        "taildir" => source::taildir::build(name, ctx),
        "kafka" => source::kafka::build(name, ctx),
        other => Err(ctx.error("type", &format!("source type {other} is not implemented"))),
    }
}

/// Build a channel of canonical type `kind`.
pub fn build_channel(
    kind: &str,
    name: &str,
    ctx: &Context,
) -> Result<Arc<dyn Channel>, ConfigError> {
    match kind {
        "memory" => {
            let cfg = channel::memory::MemoryConfig::from_context(ctx)?;
            Ok(Arc::new(channel::memory::MemoryChannel::new(name, cfg)))
        }
        "file" => channel::file::build(name, ctx),
        "kafka" => channel::kafka::build(name, ctx),
        other => Err(ctx.error("type", &format!("channel type {other} is not implemented"))),
    }
}

/// Build a sink of canonical type `kind` on `channel`.
pub fn build_sink(
    kind: &str,
    name: &str,
    ctx: &Context,
    channel: Arc<dyn Channel>,
) -> Result<Box<dyn Sink>, ConfigError> {
    match kind {
        "null" => sink::null::build(name, ctx, channel),
        "logger" => sink::logger::build(name, ctx, channel),
        "file_roll" => sink::file_roll::build(name, ctx, channel),
        "hdfs" => sink::hdfs::build(name, ctx, channel),
        "avro" => sink::avro::build(name, ctx, channel),
        "kafka" => sink::kafka::build(name, ctx, channel),
        "spark" => sink::spark::build(name, ctx, channel),
        other => Err(ctx.error("type", &format!("sink type {other} is not implemented"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_case_insensitive_and_class_names_exact() {
        assert_eq!(source_type("NetCat"), Resolved::Known("netcat"));
        assert_eq!(source_type("TAILDIR"), Resolved::Known("taildir"));
        assert_eq!(
            source_type("org.apache.flume.source.kafka.KafkaSource"),
            Resolved::Known("kafka")
        );
        assert_eq!(source_type("kafka"), Resolved::Unknown);
        assert_eq!(
            sink_type("org.apache.spark.streaming.flume.sink.SparkSink"),
            Resolved::Known("spark")
        );
        assert_eq!(
            sink_type("org.apache.flume.sink.kafka.kafkasink"),
            Resolved::Unknown
        );
        assert_eq!(
            channel_type("org.apache.flume.channel.kafka.KafkaChannel"),
            Resolved::Known("kafka")
        );
        assert_eq!(channel_type("jdbc"), Resolved::Unsupported("jdbc"));
    }
}
