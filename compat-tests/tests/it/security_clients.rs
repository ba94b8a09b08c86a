//! Every secured listener against every client family, on ONE broker: listeners PLAINTEXT
//! (the kit's), SSL, SASL_PLAINTEXT and SASL_SSL; PLAIN users from a JAAS line, SCRAM-SHA-256
//! and SCRAM-SHA-512 users seeded with `sluice.add.scram`; Kafka's StandardAuthorizer with
//! `allow.everyone.if.no.acl.found=true`, so the ACL tool has an authorizer to talk to.
//!
//! For each (protocol, mechanism) in SSL, SASL_PLAINTEXT × {PLAIN, SCRAM-SHA-256,
//! SCRAM-SHA-512} and SASL_SSL × {PLAIN, SCRAM-SHA-256, SCRAM-SHA-512}:
//! - kcat (`-X` keys) produces and consumes three records;
//! - confluent-kafka (the venv's, with its bundled librdkafka) does the same;
//! - a wrong password fails with an authentication error in both.
//!
//! Kafka 4.3.1's Java console producer and consumer (`--producer.config`,
//! `--consumer.config`) run on SSL, on SASL_PLAINTEXT with all three mechanisms and on
//! SASL_SSL with SCRAM-SHA-512; `kafka-topics --list`, `kafka-acls --list` and
//! `kafka-configs --describe --entity-type users` (`--command-config`) run once per
//! protocol; a wrong password fails them. The `rdkafka` crate covers SASL_SSL with PLAIN and
//! SCRAM-SHA-256 (security_tls.rs has SCRAM-SHA-512).
//!
//! kcat and SCRAM: librdkafka before 2.6.1 (Debian's kcat links 2.0.2) repeats its client
//! nonce in the SCRAM client-final message. Kafka 4.x compares the nonce exactly and refuses
//! the login ("invalid credentials"), and so does Sluice; with such a kcat the SCRAM rows
//! assert that refusal instead of a round trip. `kcat_scram_on_kafka` (opt-in) shows Kafka
//! 4.3.1 doing the same.

use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{ClientContext, Offset};

use crate::harness::{assert_success, class, java_tool, kcat, python, unique_topic};
use crate::rk::{self, Rec};
use crate::security_tls::{security_toml, Certs};

/// `bin/kafka-acls.sh`.
const ACLS: &str = "org.apache.kafka.tools.AclCommand";
/// `bin/kafka-configs.sh`.
const CONFIGS: &str = "kafka.admin.ConfigCommand";

/// PLAIN users, as Kafka's documentation writes them; alice has one password for every
/// mechanism.
const PLAIN_JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";"#;
const USER: &str = "alice";
const SECRET: &str = "alice-secret";

/// One secured way in: a listener's protocol, a SASL mechanism (None on SSL) and its address.
#[derive(Clone)]
struct Way {
    protocol: &'static str,
    mechanism: Option<&'static str>,
    addr: String,
    ca: String,
}

impl Way {
    fn name(&self) -> String {
        match self.mechanism {
            Some(m) => format!("{}/{m}", self.protocol),
            None => self.protocol.to_string(),
        }
    }

    fn is_scram(&self) -> bool {
        self.mechanism.is_some_and(|m| m.starts_with("SCRAM"))
    }

    /// librdkafka settings (kcat `-X`, confluent-kafka, `rdkafka`) with `password`.
    fn librdkafka(&self, password: &str) -> Vec<(&'static str, String)> {
        let mut v = vec![("security.protocol", self.protocol.to_lowercase())];
        if self.protocol.contains("SSL") {
            v.push(("ssl.ca.location", self.ca.clone()));
        }
        if let Some(m) = self.mechanism {
            v.push(("sasl.mechanisms", m.to_string()));
            v.push(("sasl.username", USER.to_string()));
            v.push(("sasl.password", password.to_string()));
        }
        v
    }

    /// A Java client properties file with `password`, in `dir`.
    fn java_props(&self, dir: &std::path::Path, password: &str) -> String {
        let mut text = format!("security.protocol={}\n", self.protocol);
        if self.protocol.contains("SSL") {
            text.push_str(&format!(
                "ssl.truststore.type=PEM\nssl.truststore.location={}\n",
                self.ca
            ));
        }
        if let Some(m) = self.mechanism {
            let module = if m == "PLAIN" {
                "org.apache.kafka.common.security.plain.PlainLoginModule"
            } else {
                "org.apache.kafka.common.security.scram.ScramLoginModule"
            };
            text.push_str(&format!(
                "sasl.mechanism={m}\nsasl.jaas.config={module} required username=\"{USER}\" password=\"{password}\";\n"
            ));
        }
        let p = dir.join(format!(
            "{}-{password}.properties",
            self.name().replace('/', "-")
        ));
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether kcat's librdkafka sends a correct SCRAM client-final (2.6.1 and later).
fn kcat_scram_fixed() -> bool {
    let out = kcat(&["-V"], None);
    let t = text(&out);
    let version = t
        .split("librdkafka ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no librdkafka version in kcat -V: {t}"));
    let n: Vec<u32> = version.split('.').map(|p| p.parse().unwrap_or(0)).collect();
    n >= vec![2, 6, 1]
}

/// kcat's `-X` arguments for `settings`.
fn kcat_x(settings: &[(&str, String)]) -> Vec<String> {
    settings
        .iter()
        .flat_map(|(k, v)| ["-X".to_string(), format!("{k}={v}")])
        .collect()
}

fn kcat_with(way: &Way, password: &str, args: &[&str], stdin: Option<Vec<u8>>) -> Output {
    let x = kcat_x(&way.librdkafka(password));
    let mut all: Vec<&str> = vec!["-b", &way.addr];
    all.extend_from_slice(args);
    all.extend(x.iter().map(String::as_str));
    kcat(&all, stdin)
}

/// kcat produces three records and reads them back; a wrong password is refused.
fn kcat_client(way: &Way, scram_fixed: bool, log: &dyn Fn() -> String) -> &'static str {
    if way.mechanism.is_some() {
        let wrong = kcat_with(way, "wrong", &["-L", "-m", "3"], None);
        assert!(
            !wrong.status.success(),
            "{}: kcat -L with a wrong password succeeded",
            way.name()
        );
        assert!(
            text(&wrong)
                .to_lowercase()
                .contains("authentication failed"),
            "{}: kcat wrong password: {}",
            way.name(),
            text(&wrong)
        );
    }
    if way.is_scram() && !scram_fixed {
        // Kafka 4.3.1 refuses this client the same way (see the module comment).
        let out = kcat_with(way, SECRET, &["-L", "-m", "3"], None);
        assert!(!out.status.success(), "{}: old kcat got in", way.name());
        let m = way.mechanism.unwrap_or_default();
        assert!(
            text(&out).contains(&format!(
                "Authentication failed during authentication due to invalid credentials with SASL mechanism {m}"
            )),
            "{}: {}",
            way.name(),
            text(&out)
        );
        assert!(
            log().contains("Invalid client nonce in the final client message."),
            "{}: no nonce refusal in the broker log",
            way.name()
        );
        return "refused (librdkafka < 2.6.1 nonce bug; Kafka 4.3.1 refuses it too)";
    }
    let topic = unique_topic("sec-kcat");
    let out = kcat_with(
        way,
        SECRET,
        &["-P", "-t", &topic],
        Some(b"k-one\nk-two\nk-three\n".to_vec()),
    );
    assert_success(&out, &format!("{}: kcat -P", way.name()));
    let out = kcat_with(
        way,
        SECRET,
        &["-C", "-t", &topic, "-o", "beginning", "-e", "-q"],
        None,
    );
    assert_success(&out, &format!("{}: kcat -C", way.name()));
    assert_eq!(stdout(&out), "k-one\nk-two\nk-three\n", "{}", way.name());
    "ok"
}

/// confluent-kafka's round trip and wrong password.
fn python_client(way: &Way) -> &'static str {
    // Rust's `{:?}` quoting is JSON's for these ASCII keys, names and paths.
    let json = |password: &str| {
        let fields: Vec<String> = way
            .librdkafka(password)
            .iter()
            .map(|(k, v)| format!("{k:?}: {v:?}"))
            .collect();
        format!("{{{}}}", fields.join(", "))
    };
    let topic = unique_topic("sec-py");
    let out = python(
        "secure_roundtrip.py",
        &[&way.addr, &topic, &json(SECRET), "roundtrip"],
    );
    assert_success(&out, &format!("{}: confluent-kafka round trip", way.name()));
    let want: Vec<String> = (0..3).map(|i| format!("{topic}-{i}")).collect();
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        want,
        "{}",
        way.name()
    );
    if way.mechanism.is_some() {
        let out = python(
            "secure_roundtrip.py",
            &[&way.addr, &topic, &json("wrong"), "wrong-password"],
        );
        assert_success(
            &out,
            &format!("{}: confluent-kafka wrong password", way.name()),
        );
        assert!(
            stdout(&out)
                .to_lowercase()
                .contains("authentication failed"),
            "{}: confluent-kafka wrong password: {}",
            way.name(),
            text(&out)
        );
    }
    "ok"
}

/// Errors librdkafka reports through its error callback.
#[derive(Clone, Default)]
struct Errors(Arc<Mutex<Vec<String>>>);

impl ClientContext for Errors {
    fn error(&self, error: KafkaError, reason: &str) {
        self.0.lock().unwrap().push(format!("{error}: {reason}"));
    }
}

impl rdkafka::consumer::ConsumerContext for Errors {}

/// The `rdkafka` crate's round trip and wrong password.
fn rdkafka_client(way: &Way) -> &'static str {
    let good = way.librdkafka(SECRET);
    let good: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let topic = unique_topic("sec-rk");
    let recs: Vec<Rec> = (0..3)
        .map(|i| Rec::kv(&format!("k{i}"), &format!("rk-{i}")))
        .collect();
    rk::produce_ok(&way.addr, &topic, &recs, &good);
    let got = rk::consume_with(
        &rk::consumer(&way.addr, &good),
        &topic,
        0,
        Offset::Beginning,
        3,
    );
    for (g, want) in got.iter().zip(&recs) {
        assert_eq!(g.rec.value, want.value, "{}", way.name());
    }
    let bad = way.librdkafka("wrong");
    let bad: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let errors = Errors::default();
    let c: BaseConsumer<Errors> = rk::config(&way.addr, &bad)
        .set("group.id", "sec-rk-wrong")
        .create_with_context(errors.clone())
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let refused = |e: &Errors| {
        e.0.lock()
            .unwrap()
            .iter()
            .any(|s| s.to_lowercase().contains("authentication failed"))
    };
    let mut metadata_ok = false;
    while !refused(&errors) && Instant::now() < deadline {
        metadata_ok |= c.fetch_metadata(None, Duration::from_secs(2)).is_ok();
        // Errors reach the callback only while the client is polled.
        if let Some(Err(e)) = c.poll(Duration::from_millis(100)) {
            errors.0.lock().unwrap().push(e.to_string());
        }
    }
    assert!(
        refused(&errors),
        "{}: rdkafka wrong password: {:?}",
        way.name(),
        errors.0.lock().unwrap()
    );
    assert!(
        !metadata_ok,
        "{}: metadata served to a wrong password",
        way.name()
    );
    "ok"
}

/// The Java console producer and consumer with `--producer.config`/`--consumer.config`.
fn java_clients(way: &Way, dir: &std::path::Path) -> String {
    let props = way.java_props(dir, SECRET);
    let topic = unique_topic("sec-java");
    let lines = "j-one\nj-two\nj-three\n";
    let out = java_tool(
        class::CONSOLE_PRODUCER,
        &[
            "--bootstrap-server",
            &way.addr,
            "--topic",
            &topic,
            "--producer.config",
            &props,
        ],
        Some(lines.as_bytes().to_vec()),
    );
    assert_success(&out, &format!("{}: console producer", way.name()));
    let out = java_tool(
        class::CONSOLE_CONSUMER,
        &[
            "--bootstrap-server",
            &way.addr,
            "--topic",
            &topic,
            "--from-beginning",
            "--max-messages",
            "3",
            "--timeout-ms",
            "30000",
            "--consumer.config",
            &props,
        ],
        None,
    );
    assert_success(&out, &format!("{}: console consumer", way.name()));
    // The tool prints its deprecation notice for --consumer.config on stdout too.
    let printed = stdout(&out);
    let got: Vec<&str> = printed.lines().filter(|l| l.starts_with("j-")).collect();
    assert_eq!(
        got,
        lines.lines().collect::<Vec<_>>(),
        "{}: {}",
        way.name(),
        text(&out)
    );
    topic
}

/// kafka-topics, kafka-acls and kafka-configs with `--command-config`; a wrong password
/// fails kafka-topics.
fn java_admin(way: &Way, dir: &std::path::Path, topic: &str) {
    let props = way.java_props(dir, SECRET);
    let common = [
        "--bootstrap-server",
        way.addr.as_str(),
        "--command-config",
        &props,
    ];
    let run = |class: &str, args: &[&str]| {
        let mut all = common.to_vec();
        all.extend_from_slice(args);
        java_tool(class, &all, None)
    };
    let out = run(class::TOPICS, &["--list"]);
    assert_success(&out, &format!("{}: kafka-topics --list", way.name()));
    assert!(
        stdout(&out).lines().any(|l| l.trim() == topic),
        "{}: --list lacks {topic}: {}",
        way.name(),
        text(&out)
    );
    let out = run(ACLS, &["--list", "--topic", "sec-acl"]);
    assert_success(&out, &format!("{}: kafka-acls --list", way.name()));
    assert!(
        stdout(&out).contains("principal=User:alice, host=*, operation=READ, permissionType=ALLOW"),
        "{}: kafka-acls --list: {}",
        way.name(),
        text(&out)
    );
    let out = run(CONFIGS, &["--describe", "--entity-type", "users"]);
    assert_success(&out, &format!("{}: kafka-configs --describe", way.name()));
    assert!(
        stdout(&out).contains(
            "SCRAM credential configs for user-principal 'alice' are SCRAM-SHA-256=iterations=4096, SCRAM-SHA-512=iterations=4096"
        ),
        "{}: kafka-configs --describe: {}",
        way.name(),
        text(&out)
    );
    if way.mechanism.is_some() {
        let wrong = way.java_props(dir, "wrong");
        let out = java_tool(
            class::TOPICS,
            &[
                "--bootstrap-server",
                &way.addr,
                "--command-config",
                &wrong,
                "--list",
            ],
            None,
        );
        assert!(
            !out.status.success(),
            "{}: Java wrong password succeeded",
            way.name()
        );
        assert!(
            text(&out).contains("Authentication failed"),
            "{}: Java wrong password: {}",
            way.name(),
            text(&out)
        );
    }
}

#[test]
fn every_client_on_every_secured_listener() {
    let started = Instant::now();
    let certs = Certs::new();
    let ca = certs.p("ca.pem");
    let keystore = certs.p("server-keystore.pem");
    let toml = security_toml(&[
        ("ssl.keystore.type", "PEM"),
        ("ssl.keystore.location", &keystore),
        ("listener.name.sasl_plaintext.plain.sasl.jaas.config", PLAIN_JAAS),
        ("listener.name.sasl_ssl.plain.sasl.jaas.config", PLAIN_JAAS),
        (
            "sluice.add.scram",
            "SCRAM-SHA-256=[name=alice,password=alice-secret];SCRAM-SHA-512=[name=alice,password=alice-secret]",
        ),
        (
            "authorizer.class.name",
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        ),
        ("allow.everyone.if.no.acl.found", "true"),
        ("super.users", "User:admin"),
    ]);
    let broker = sluice_testkit::Broker::builder()
        .bin(sluice_testkit::sluice_bin_beside_test_exe())
        .temp_prefix("sluice-sec-clients-")
        .default_rust_log("info,sluice::security=debug")
        .arg("--listen")
        .arg("SSL://127.0.0.1:0")
        .arg("--listen")
        .arg("SASL_PLAINTEXT://127.0.0.1:0")
        .arg("--listen")
        .arg("SASL_SSL://127.0.0.1:0")
        .config(&toml)
        .start();
    let addrs = broker.addrs().to_vec();
    assert_eq!(addrs.len(), 4, "listeners: {addrs:?}");
    let way = |protocol: &'static str, mechanism: Option<&'static str>| {
        let addr = match protocol {
            "SSL" => addrs[1].clone(),
            "SASL_PLAINTEXT" => addrs[2].clone(),
            _ => addrs[3].clone(),
        };
        Way {
            protocol,
            mechanism,
            addr,
            ca: ca.clone(),
        }
    };
    let mut ways = vec![way("SSL", None)];
    for p in ["SASL_PLAINTEXT", "SASL_SSL"] {
        for m in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
            ways.push(way(p, Some(m)));
        }
    }
    let dir = broker.dir().to_path_buf();
    let log = || broker.all_stderr();
    let scram_fixed = kcat_scram_fixed();

    // One ACL for kafka-acls --list to find, added over the PLAINTEXT listener.
    let out = java_tool(
        ACLS,
        &[
            "--bootstrap-server",
            broker.addr(),
            "--add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Read",
            "--topic",
            "sec-acl",
        ],
        None,
    );
    assert_success(&out, "kafka-acls --add");

    let results: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let note = |s: String| results.lock().unwrap().push(s);
    std::thread::scope(|s| {
        // kcat, confluent-kafka (then rdkafka) and the JVMs side by side.
        s.spawn(|| {
            for w in &ways {
                note(format!(
                    "{:<28} kcat            {}",
                    w.name(),
                    kcat_client(w, scram_fixed, &log)
                ));
            }
        });
        s.spawn(|| {
            for w in &ways {
                note(format!(
                    "{:<28} confluent-kafka {}",
                    w.name(),
                    python_client(w)
                ));
            }
            for m in ["PLAIN", "SCRAM-SHA-256"] {
                let w = way("SASL_SSL", Some(m));
                note(format!(
                    "{:<28} rdkafka         {}",
                    w.name(),
                    rdkafka_client(&w)
                ));
            }
        });
        s.spawn(|| {
            for w in &ways {
                let java = match (w.protocol, w.mechanism) {
                    ("SSL", _) | ("SASL_PLAINTEXT", _) => true,
                    (_, m) => m == Some("SCRAM-SHA-512"),
                };
                if !java {
                    continue;
                }
                let topic = java_clients(w, &dir);
                // The admin tools once per protocol.
                let admin = matches!(
                    (w.protocol, w.mechanism),
                    ("SSL", None)
                        | ("SASL_PLAINTEXT", Some("SCRAM-SHA-256"))
                        | ("SASL_SSL", Some("SCRAM-SHA-512"))
                );
                if admin {
                    java_admin(w, &dir, &topic);
                }
                note(format!(
                    "{:<28} java            ok (console producer/consumer{})",
                    w.name(),
                    match (admin, w.mechanism) {
                        (true, Some(_)) => ", topics/acls/configs, wrong password",
                        (true, None) => ", topics/acls/configs",
                        _ => "",
                    }
                ));
            }
        });
    });
    let mut results = results.into_inner().unwrap();
    results.sort();
    eprintln!(
        "security client matrix ({:?}):\n{}",
        started.elapsed(),
        results.join("\n")
    );
    assert!(
        !broker.all_stderr().contains(SECRET),
        "a password was logged"
    );
}

/// The spec for the kcat SCRAM rows: Apache Kafka 4.3.1 with its one listener turned
/// SASL_PLAINTEXT and alice's SCRAM users made at format time. rdkafka (librdkafka 2.12)
/// logs in with both mechanisms; kcat does too if its librdkafka is 2.6.1 or later, and is
/// refused with the same text as on Sluice if it is older.
#[test]
#[ignore = "opt-in: starts Apache Kafka 4.3.1"]
fn kcat_scram_on_kafka() {
    let jaas = |m: &str| {
        format!(
            "listener.name.plaintext.{m}.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{USER}\" password=\"{SECRET}\";\n"
        )
    };
    // Properties files keep the last value of a key, so this remaps the kit's listener.
    let extra = format!(
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:SASL_PLAINTEXT\n\
         sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512\n\
         sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512\n{}{}",
        jaas("scram-sha-256"),
        jaas("scram-sha-512")
    );
    let mut kafka = sluice_testkit::Kafka::spawn_formatted(
        "sluice-sec-clients-kafka-",
        &extra,
        None,
        &[
            "--add-scram",
            "SCRAM-SHA-256=[name=alice,password=alice-secret]",
            "--add-scram",
            "SCRAM-SHA-512=[name=alice,password=alice-secret]",
        ],
    );
    let addr = kafka.addr().to_string();
    let way = |m: &'static str| Way {
        protocol: "SASL_PLAINTEXT",
        mechanism: Some(m),
        addr: addr.clone(),
        ca: String::new(),
    };
    let settings = way("SCRAM-SHA-512").librdkafka(SECRET);
    let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let probe: BaseConsumer = rk::config(&addr, &settings).create().unwrap();
    let mut exited = None;
    let up = sluice_testkit::wait_until(Duration::from_secs(120), || {
        exited = kafka.exited();
        exited.is_some()
            || probe
                .fetch_metadata(None, Duration::from_secs(2))
                .is_ok_and(|m| !m.brokers().is_empty())
    });
    assert!(
        up && exited.is_none(),
        "kafka did not start ({exited:?}):\n{}",
        kafka.log()
    );
    let fixed = kcat_scram_fixed();
    for m in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let w = way(m);
        assert_eq!(rdkafka_client(&w), "ok");
        let out = kcat_with(&w, SECRET, &["-L", "-m", "5"], None);
        if fixed {
            assert_success(&out, &format!("{m}: kcat -L on Kafka"));
        } else {
            assert!(!out.status.success(), "{m}: old kcat got into Kafka");
            assert!(
                text(&out).contains(&format!(
                    "Authentication failed during authentication due to invalid credentials with SASL mechanism {m}"
                )),
                "{m}: {}",
                text(&out)
            );
        }
    }
}
