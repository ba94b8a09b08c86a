//! Configuration from the environment, as the apache/kafka container image reads it:
//! `KAFKA_` + the property name upper-cased with `.`→`_`, `_`→`__`, `-`→`___`
//! (`KAFKA_LOG_RETENTION_MS` is `log.retention.ms`). Precedence is flags > environment >
//! config file > defaults; `main` applies them in that order.
//!
//! KRaft and cluster properties that mean nothing on a single node are accepted and
//! reported as ignored; a bad value names the variable.

use super::{parse_listener, Config, Error};

/// Properties a single node has no use for; accepted and reported once as ignored.
const IGNORED: &[&str] = &[
    "node.id",
    "broker.id",
    "process.roles",
    "controller.quorum.voters",
    "controller.quorum.bootstrap.servers",
    "controller.listener.names",
    "inter.broker.listener.name",
    "security.inter.broker.protocol",
    "broker.rack",
    "log.cleaner.enable",
    "unclean.leader.election.enable",
    // Sluice keeps `__transaction_state` in one partition, as it does `__consumer_offsets`.
    "transaction.state.log.num.partitions",
    "transaction.state.log.segment.bytes",
    "confluent.support.metrics.enable",
];

/// Variables of the container image's JVM launcher, not broker properties.
const LAUNCHER_VARS: &[&str] = &[
    "KAFKA_HEAP_OPTS",
    "KAFKA_JVM_PERFORMANCE_OPTS",
    "KAFKA_OPTS",
    "KAFKA_LOG4J_OPTS",
    "KAFKA_GC_LOG_OPTS",
    "KAFKA_JMX_OPTS",
    "KAFKA_DEBUG",
    "KAFKA_HOME",
    "KAFKA_VERSION",
];

/// Turn `KAFKA_LOG_RETENTION_MS` into `log.retention.ms`, undoing the image's escaping.
pub fn property_name(var: &str) -> Option<String> {
    let rest = var.strip_prefix("KAFKA_")?;
    let name = rest
        .replace("___", "\u{1}")
        .replace("__", "\u{2}")
        .replace('_', ".")
        .replace('\u{1}', "-")
        .replace('\u{2}', "_")
        .to_lowercase();
    Some(name)
}

/// What applying the environment did, for the start-up report.
#[derive(Debug, Default)]
pub struct EnvReport {
    /// (variable, property, value) applied.
    pub applied: Vec<(String, String, String)>,
    /// Variables accepted and ignored (single-node or launcher settings).
    pub ignored: Vec<String>,
    /// Variables naming properties Sluice does not know.
    pub unknown: Vec<String>,
}

fn bad(var: &str, msg: impl std::fmt::Display) -> Error {
    Error::Invalid {
        path: "environment".into(),
        key: var.to_string(),
        msg: msg.to_string(),
    }
}

fn num<T: std::str::FromStr>(var: &str, v: &str) -> Result<T, Error> {
    v.trim()
        .parse()
        .map_err(|_| bad(var, format!("'{v}' is not a valid number")))
}

fn boolean(var: &str, v: &str) -> Result<bool, Error> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad(var, format!("'{v}' is not true or false"))),
    }
}

/// A named listener list (`NAME://HOST:PORT,...`) as (name, HOST:PORT) pairs.
fn listener_list(var: &str, v: &str) -> Result<Vec<(String, String)>, Error> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|l| {
            let (name, host, port) = parse_listener(l).map_err(|m| bad(var, m))?;
            Ok((
                name.unwrap_or_else(|| "PLAINTEXT".into()),
                format!("{host}:{port}"),
            ))
        })
        .collect()
}

/// Apply `KAFKA_*` variables to `config`.
pub fn apply(
    config: &mut Config,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<EnvReport, Error> {
    let mut report = EnvReport::default();
    let mut vars: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(k, _)| k.starts_with("KAFKA_") || k == "CLUSTER_ID")
        .collect();
    vars.sort();
    let mut listeners: Option<(String, Vec<(String, String)>)> = None;
    let mut advertised: Option<(String, Vec<(String, String)>)> = None;
    let mut protocols: Option<(String, String)> = None;
    let mut controller_names = vec!["CONTROLLER".to_string()];
    for (var, value) in &vars {
        // The image's JVM options may name a JAAS file (SASL users), as Kafka's
        // docker examples do: `-Djava.security.auth.login.config=/etc/kafka/jaas.conf`.
        if var == "KAFKA_OPTS" {
            if let Some(path) = value
                .split_whitespace()
                .find_map(|o| o.strip_prefix("-Djava.security.auth.login.config="))
            {
                config
                    .security
                    .set("java.security.auth.login.config", path.trim_matches('"'));
                report.applied.push((
                    var.clone(),
                    "java.security.auth.login.config".into(),
                    path.to_string(),
                ));
                continue;
            }
        }
        // CLUSTER_ID formats KRaft storage in the image; meta.properties has our own id.
        if LAUNCHER_VARS.contains(&var.as_str()) || var == "CLUSTER_ID" {
            report.ignored.push(var.clone());
            continue;
        }
        let Some(prop) = property_name(var) else {
            continue;
        };
        let v = value.as_str();
        let mut applied = true;
        match prop.as_str() {
            "listeners" => listeners = Some((var.clone(), listener_list(var, v)?)),
            "advertised.listeners" => advertised = Some((var.clone(), listener_list(var, v)?)),
            "listener.security.protocol.map" => {
                protocols = Some((var.clone(), v.to_string()));
                config.security.set(prop.clone(), v);
            }
            "controller.listener.names" => {
                controller_names = v.split(',').map(|s| s.trim().to_string()).collect();
                report.ignored.push(var.clone());
                applied = false;
            }
            "log.dirs" | "log.dir" => {
                let first = v.split(',').next().unwrap_or("").trim();
                if first.is_empty() {
                    return Err(bad(var, "no directory given"));
                }
                config.data_dir = first.into();
            }
            "num.partitions" => {
                config.num_partitions = num(var, v)?;
                if config.num_partitions < 1 {
                    return Err(bad(var, "must be at least 1"));
                }
            }
            "auto.create.topics.enable" => config.auto_create_topics = boolean(var, v)?,
            "default.replication.factor" => {
                let rf: i16 = num(var, v)?;
                if rf < 1 {
                    return Err(bad(var, "must be at least 1"));
                }
                // Compose files for one broker set 1; anything else is a cluster setting.
                if rf > 1 {
                    report.ignored.push(var.clone());
                    applied = false;
                }
            }
            "message.max.bytes" => config.log.max_message_bytes = num(var, v)?,
            "socket.request.max.bytes" => config.request_max_bytes = num(var, v)?,
            "max.connections" => config.max_connections = num(var, v)?,
            "log.segment.bytes" => config.log.segment_bytes = num(var, v)?,
            "log.roll.ms" => config.log.segment_ms = num(var, v)?,
            "log.roll.hours" => {
                config.log.segment_ms = num::<i64>(var, v)?.saturating_mul(3_600_000)
            }
            "log.retention.ms" => config.log.retention_ms = num(var, v)?,
            "log.retention.minutes" => {
                config.log.retention_ms = num::<i64>(var, v)?.saturating_mul(60_000)
            }
            "log.retention.hours" => {
                config.log.retention_ms = num::<i64>(var, v)?.saturating_mul(3_600_000)
            }
            "log.retention.bytes" => config.log.retention_bytes = num(var, v)?,
            "log.retention.check.interval.ms" => config.retention_check_interval_ms = num(var, v)?,
            "log.cleaner.backoff.ms" => config.cleaner_backoff_ms = num(var, v)?,
            "log.cleaner.delete.retention.ms" => config.log.delete_retention_ms = num(var, v)?,
            "log.cleaner.min.cleanable.ratio" => {
                config.log.min_cleanable_dirty_ratio = num(var, v)?
            }
            "log.cleaner.min.compaction.lag.ms" => config.log.min_compaction_lag_ms = num(var, v)?,
            "log.flush.interval.messages" => {
                config.log.flush_messages = num(var, v)?;
                if config.log.flush_messages < 1 {
                    return Err(bad(var, "must be at least 1"));
                }
            }
            "log.flush.interval.ms" => config.log.flush_ms = num(var, v)?,
            "log.index.interval.bytes" => config.log.index_interval_bytes = num(var, v)?,
            "log.index.size.max.bytes" => config.log.segment_index_bytes = num(var, v)?,
            "log.cleanup.policy" => {
                for p in v.split(',') {
                    if !matches!(p.trim(), "delete" | "compact") {
                        return Err(bad(var, format!("'{p}' is not delete or compact")));
                    }
                }
                config.log.cleanup_policy = v.to_string();
            }
            "log.message.timestamp.type" => {
                config.log.timestamp_type = match v {
                    "CreateTime" => crate::log::TimestampType::CreateTime,
                    "LogAppendTime" => crate::log::TimestampType::LogAppendTime,
                    _ => {
                        return Err(bad(
                            var,
                            format!("'{v}' is not CreateTime or LogAppendTime"),
                        ))
                    }
                }
            }
            "group.initial.rebalance.delay.ms" => {
                config.group_initial_rebalance_delay_ms = num(var, v)?;
                config.group.initial_rebalance_delay_ms = config.group_initial_rebalance_delay_ms;
            }
            p if config.group.int_mut(p).is_some() => {
                let n: i32 = num(var, v)?;
                if n < 1 {
                    return Err(bad(var, "must be at least 1"));
                }
                if let Some(field) = config.group.int_mut(p) {
                    *field = n;
                }
                config.consumer_heartbeat_interval_ms = config.group.consumer_heartbeat_interval_ms;
            }
            "offsets.retention.minutes" => {
                config.offsets_retention_ms = num::<i64>(var, v)?.saturating_mul(60_000);
            }
            "transaction.max.timeout.ms" => config.txn.max_timeout_ms = num(var, v)?,
            "transaction.abort.timed.out.transaction.cleanup.interval.ms" => {
                config.txn.abort_interval_ms = num::<u64>(var, v)?.max(1)
            }
            "transactional.id.expiration.ms" => config.txn.id_expiration_ms = num(var, v)?,
            "max.incremental.fetch.session.cache.slots" => {
                config.fetch_session_cache_slots = num(var, v)?
            }
            "min.incremental.fetch.session.eviction.ms" => {
                config.fetch_session_eviction_ms = num(var, v)?
            }
            p if crate::security::is_security_key(p) => config.security.set(p, v),
            p if IGNORED.contains(&p)
                || p.ends_with(".replication.factor")
                || p.ends_with(".min.isr") =>
            {
                report.ignored.push(var.clone());
                applied = false;
            }
            _ => {
                report.unknown.push(var.clone());
                applied = false;
            }
        }
        if applied {
            report.applied.push((var.clone(), prop, value.clone()));
        }
    }
    // Named listeners: bind the non-controller ones; each advertises its own address.
    let protocol_of = |name: &str| -> Option<String> {
        protocols.as_ref().and_then(|(_, map)| {
            map.split(',')
                .filter_map(|e| e.split_once(':'))
                .find(|(n, _)| n.trim() == name)
                .map(|(_, p)| p.trim().to_string())
        })
    };
    let advertised_list = advertised.as_ref().map(|(_, l)| l.clone());
    let listener_list = match (&listeners, &advertised_list) {
        (Some((_, l)), _) => Some(l.clone()),
        // The image derives listeners from the advertised ones, binding all interfaces.
        (None, Some(adv)) => Some(
            adv.iter()
                .map(|(n, a)| {
                    let port = a.rsplit_once(':').map_or("9092", |(_, p)| p);
                    (n.clone(), format!(":{port}"))
                })
                .collect(),
        ),
        (None, None) => None,
    };
    if let Some(list) = listener_list {
        let var = listeners.as_ref().map_or_else(
            || "KAFKA_ADVERTISED_LISTENERS".to_string(),
            |(v, _)| v.clone(),
        );
        let mut binds = Vec::new();
        let mut adv = Vec::new();
        for (name, addr) in list {
            if controller_names.contains(&name) {
                continue;
            }
            let protocol = protocol_of(&name).unwrap_or_else(|| name.clone());
            if crate::security::Protocol::parse(&protocol).is_none() {
                return Err(bad(
                    protocols.as_ref().map_or(var.as_str(), |(v, _)| v.as_str()),
                    format!("listener {name} has no known security protocol ('{protocol}')"),
                ));
            }
            let advertised_addr = advertised_list
                .as_ref()
                .and_then(|a| a.iter().find(|(n, _)| *n == name))
                .map(|(_, a)| a.clone());
            binds.push(format!("{name}://{addr}"));
            adv.push(advertised_addr.unwrap_or_default());
        }
        if binds.is_empty() {
            return Err(bad(
                &var,
                "no broker listener left once controller listeners are set aside",
            ));
        }
        config.listeners = binds;
        config.advertised_listeners = if adv.iter().all(String::is_empty) {
            Vec::new()
        } else {
            adv
        };
    }
    if let Err((key, msg)) = config.group.check() {
        return Err(bad(&key, msg));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn sasl_plaintext_block_with_a_jaas_file_in_kafka_opts() {
        // Kafka's docker SASL examples: listeners mapped to SASL_PLAINTEXT, mechanisms, and
        // a JAAS file named in the JVM options.
        let mut c = Config::default();
        apply(
            &mut c,
            env(&[
                (
                    "KAFKA_LISTENERS",
                    "SASL_PLAINTEXT://:9092,CONTROLLER://:9093",
                ),
                (
                    "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
                    "CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
                ),
                ("KAFKA_SASL_ENABLED_MECHANISMS", "PLAIN"),
                ("KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL", "PLAIN"),
                (
                    "KAFKA_OPTS",
                    "-Xms1g -Djava.security.auth.login.config=/etc/kafka/kafka_server_jaas.conf",
                ),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.security.get("java.security.auth.login.config"),
            Some("/etc/kafka/kafka_server_jaas.conf")
        );
        assert_eq!(c.security.get("sasl.enabled.mechanisms"), Some("PLAIN"));
    }

    #[test]
    fn group_keys_set_the_group_config_defaults_and_bounds() {
        let mut c = Config::default();
        apply(
            &mut c,
            env(&[
                ("KAFKA_GROUP_CONSUMER_SESSION_TIMEOUT_MS", "50000"),
                ("KAFKA_GROUP_SHARE_MIN_RECORD_LOCK_DURATION_MS", "1000"),
                ("KAFKA_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS", "500"),
            ]),
        )
        .unwrap();
        assert_eq!(c.group.consumer_session_timeout_ms, 50_000);
        assert_eq!(c.group.share_min_record_lock_duration_ms, 1_000);
        assert_eq!(c.consumer_heartbeat_interval_ms, 500);
        let mut c = Config::default();
        let e = apply(
            &mut c,
            env(&[("KAFKA_GROUP_SHARE_MIN_DELIVERY_COUNT_LIMIT", "20")]),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("group.share.min.delivery.count.limit"),
            "{e}"
        );
    }

    #[test]
    fn names_are_unescaped_like_the_image() {
        assert_eq!(
            property_name("KAFKA_LOG_RETENTION_MS").unwrap(),
            "log.retention.ms"
        );
        assert_eq!(property_name("KAFKA_A__B").unwrap(), "a_b");
        assert_eq!(property_name("KAFKA_A___B_C").unwrap(), "a-b.c");
        assert!(property_name("CLUSTER_ID").is_none());
    }

    #[test]
    fn apache_kafka_single_node_plaintext_block() {
        let mut c = Config::default();
        let r = apply(
            &mut c,
            env(&[
                ("KAFKA_NODE_ID", "1"),
                (
                    "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
                    "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT",
                ),
                (
                    "KAFKA_ADVERTISED_LISTENERS",
                    "PLAINTEXT_HOST://localhost:9092,PLAINTEXT://broker:19092",
                ),
                ("KAFKA_PROCESS_ROLES", "broker,controller"),
                ("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@broker:29093"),
                (
                    "KAFKA_LISTENERS",
                    "CONTROLLER://:29093,PLAINTEXT_HOST://:9092,PLAINTEXT://:19092",
                ),
                ("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT"),
                ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER"),
                ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1"),
                ("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0"),
                ("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1"),
                ("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1"),
                ("KAFKA_LOG_DIRS", "/tmp/kraft-combined-logs"),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.listeners,
            vec!["PLAINTEXT_HOST://:9092", "PLAINTEXT://:19092"]
        );
        assert_eq!(
            c.advertised_listeners,
            vec!["localhost:9092", "broker:19092"]
        );
        assert_eq!(c.group_initial_rebalance_delay_ms, 0);
        assert_eq!(
            c.data_dir,
            std::path::PathBuf::from("/tmp/kraft-combined-logs")
        );
        assert!(r.ignored.contains(&"KAFKA_NODE_ID".to_string()));
        assert!(r.unknown.is_empty(), "{:?}", r.unknown);
    }

    #[test]
    fn listeners_derive_from_advertised_and_bad_values_name_the_variable() {
        let mut c = Config::default();
        apply(
            &mut c,
            env(&[("KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT://localhost:9093")]),
        )
        .unwrap();
        assert_eq!(c.listeners, vec!["PLAINTEXT://:9093"]);
        let e = apply(
            &mut Config::default(),
            env(&[("KAFKA_NUM_PARTITIONS", "many")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("KAFKA_NUM_PARTITIONS"), "{e}");
        let e = apply(
            &mut Config::default(),
            env(&[
                ("KAFKA_LISTENERS", "CLIENT://:9093"),
                ("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "CLIENT:SSH"),
            ]),
        )
        .unwrap_err();
        let e = e.to_string();
        assert!(e.contains("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"), "{e}");
        assert!(e.contains("no known security protocol"), "{e}");
    }
}
