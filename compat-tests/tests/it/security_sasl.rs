//! SASL on a SASL_PLAINTEXT listener, judged by clients we did not write: Kafka 4.3.1's Java
//! tools (kafka-configs creating and describing SCRAM users, kafka-topics, console producer
//! and consumer) with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512; librdkafka on each mechanism;
//! franz-go's own SCRAM and OAUTHBEARER tests, with the broker set up as franz-go's CI sets
//! up Kafka; SCRAM credentials across a restart; and KIP-368 re-authentication of a Java
//! consumer over several session lifetimes.
//!
//! Each broker has two listeners, as in Kafka's docker examples and franz-go's CI: the
//! harness's PLAINTEXT one (`addr`) and `SASL_PLAINTEXT://127.0.0.1:PORT`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientContext, TopicPartitionList};
use sluice_testkit::{free_port, Broker};

use crate::harness::{
    assert_success, class, compat_dir, java_tool, run_with_timeout, spawn_java_tool, unique_topic,
};

/// `bin/kafka-configs.sh`.
const CONFIGS: &str = "kafka.admin.ConfigCommand";

/// PLAIN users, as Kafka's documentation writes them.
const PLAIN_JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";"#;

/// How long a test waits for the broker or a client to get somewhere.
const DEADLINE: Duration = Duration::from_secs(60);

/// A broker with a PLAINTEXT listener (`addr()`) and a SASL_PLAINTEXT one.
fn start(env: &[(&str, &str)]) -> (Broker, String) {
    let sasl = format!("127.0.0.1:{}", free_port());
    let mut b = Broker::builder()
        .temp_prefix("sluice-sasl-")
        .default_rust_log("info,sluice::security=debug")
        .arg("--listen")
        .arg(&format!("SASL_PLAINTEXT://{sasl}"));
    for (k, v) in env {
        b = b.env(k, v);
    }
    (b.start(), sasl)
}

/// The JAAS login module class of a mechanism, client side.
fn login_module(mechanism: &str) -> &'static str {
    match mechanism {
        "PLAIN" => "org.apache.kafka.common.security.plain.PlainLoginModule",
        _ => "org.apache.kafka.common.security.scram.ScramLoginModule",
    }
}

/// A Java client properties file for `user` with `mechanism`.
fn client_props(dir: &Path, mechanism: &str, user: &str, password: &str) -> PathBuf {
    let p = dir.join(format!("client-{mechanism}-{user}-{password}.properties"));
    std::fs::write(
        &p,
        format!(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism={mechanism}\n\
             sasl.jaas.config={} required username=\"{user}\" password=\"{password}\";\n",
            login_module(mechanism)
        ),
    )
    .unwrap();
    p
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `kafka-configs --alter --add-config ... --entity-type users --entity-name user`.
fn add_scram_user(bootstrap: &str, command_config: Option<&Path>, user: &str, config: &str) {
    let mut args = vec!["--bootstrap-server", bootstrap];
    let cc;
    if let Some(c) = command_config {
        cc = c.display().to_string();
        args.extend(["--command-config", &cc]);
    }
    args.extend([
        "--alter",
        "--add-config",
        config,
        "--entity-type",
        "users",
        "--entity-name",
        user,
    ]);
    let out = java_tool(CONFIGS, &args, None);
    assert_success(&out, "kafka-configs --alter (SCRAM user)");
    assert!(
        text(&out).contains(&format!("Completed updating config for user {user}.")),
        "{}",
        text(&out)
    );
}

#[test]
fn java_tools_over_plain_and_scram() {
    let (broker, sasl) = start(&[(
        "KAFKA_LISTENER_NAME_SASL__PLAINTEXT_PLAIN_SASL_JAAS_CONFIG",
        PLAIN_JAAS,
    )]);
    let dir = broker.dir().to_path_buf();
    let admin = client_props(&dir, "PLAIN", "admin", "admin-secret");
    let admin_s = admin.display().to_string();

    // SCRAM users are made over SASL itself, by a PLAIN-authenticated admin; one mechanism
    // per request, since Kafka (KRaft) refuses a user twice in one request.
    add_scram_user(
        &sasl,
        Some(&admin),
        "alice",
        "SCRAM-SHA-256=[iterations=8192,password=alice-secret]",
    );
    add_scram_user(
        &sasl,
        Some(&admin),
        "alice",
        "SCRAM-SHA-512=[password=alice-secret]",
    );
    let out = java_tool(
        CONFIGS,
        &[
            "--bootstrap-server",
            &sasl,
            "--command-config",
            &admin_s,
            "--describe",
            "--entity-type",
            "users",
            "--entity-name",
            "alice",
        ],
        None,
    );
    assert_success(&out, "kafka-configs --describe");
    assert!(
        text(&out).contains(
            "SCRAM credential configs for user-principal 'alice' are SCRAM-SHA-256=iterations=8192, SCRAM-SHA-512=iterations=4096"
        ),
        "{}",
        text(&out)
    );

    for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let props = client_props(&dir, mechanism, "alice", "alice-secret");
        let props_s = props.display().to_string();
        let topic = unique_topic(&format!("sasl-{}", mechanism.to_lowercase()));
        let out = java_tool(
            class::TOPICS,
            &[
                "--bootstrap-server",
                &sasl,
                "--command-config",
                &props_s,
                "--create",
                "--topic",
                &topic,
                "--partitions",
                "1",
                "--replication-factor",
                "1",
            ],
            None,
        );
        assert_success(&out, &format!("kafka-topics --create ({mechanism})"));
        let out = java_tool(
            class::TOPICS,
            &[
                "--bootstrap-server",
                &sasl,
                "--command-config",
                &props_s,
                "--list",
            ],
            None,
        );
        assert_success(&out, &format!("kafka-topics --list ({mechanism})"));
        assert!(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.trim() == topic),
            "{}",
            text(&out)
        );
        let lines = format!("{mechanism}-1\n{mechanism}-2\n{mechanism}-3\n");
        let out = java_tool(
            class::CONSOLE_PRODUCER,
            &[
                "--bootstrap-server",
                &sasl,
                "--topic",
                &topic,
                "--command-config",
                &props_s,
            ],
            Some(lines.clone().into_bytes()),
        );
        assert_success(&out, &format!("console producer ({mechanism})"));
        let out = java_tool(
            class::CONSOLE_CONSUMER,
            &[
                "--bootstrap-server",
                &sasl,
                "--topic",
                &topic,
                "--from-beginning",
                "--max-messages",
                "3",
                "--timeout-ms",
                "30000",
                "--command-config",
                &props_s,
            ],
            None,
        );
        assert_success(&out, &format!("console consumer ({mechanism})"));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            lines,
            "{}",
            text(&out)
        );
    }

    // Wrong passwords fail with Kafka's messages.
    for (mechanism, expect) in [
        ("PLAIN", "Authentication failed: Invalid username or password"),
        (
            "SCRAM-SHA-256",
            "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256",
        ),
        (
            "SCRAM-SHA-512",
            "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512",
        ),
    ] {
        let props = client_props(&dir, mechanism, "alice", "wrong");
        let out = java_tool(
            class::TOPICS,
            &[
                "--bootstrap-server",
                &sasl,
                "--command-config",
                &props.display().to_string(),
                "--list",
            ],
            None,
        );
        assert!(
            !out.status.success(),
            "{mechanism} with a wrong password succeeded"
        );
        assert!(text(&out).contains(expect), "{mechanism}: {}", text(&out));
    }
    // A mechanism the listener does not enable: the client is told which ones it does.
    let oauth = dir.join("client-oauth.properties");
    std::fs::write(
        &oauth,
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=OAUTHBEARER\n\
         sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub=\"alice\";\n",
    )
    .unwrap();
    let out = java_tool(
        class::TOPICS,
        &[
            "--bootstrap-server",
            &sasl,
            "--command-config",
            &oauth.display().to_string(),
            "--list",
        ],
        None,
    );
    assert!(
        !out.status.success(),
        "OAUTHBEARER accepted though not enabled"
    );
    assert!(
        text(&out).contains("Client SASL mechanism 'OAUTHBEARER' not enabled in the server, enabled mechanisms are [PLAIN, SCRAM-SHA-256, SCRAM-SHA-512]"),
        "{}",
        text(&out)
    );

    let log = broker.all_stderr();
    assert!(
        log.contains("SASL authentication failed") && log.contains("user=\"alice\""),
        "no failure log line: {log}"
    );
    assert!(!log.contains("alice-secret"), "a password was logged");
}

/// Client errors librdkafka reports through its error callback.
#[derive(Clone, Default)]
struct Errors(Arc<Mutex<Vec<String>>>);

impl ClientContext for Errors {
    fn error(&self, error: KafkaError, reason: &str) {
        self.0.lock().unwrap().push(format!("{error}: {reason}"));
    }
}

impl rdkafka::consumer::ConsumerContext for Errors {}

fn rk_config(bootstrap: &str, mechanism: &str, user: &str, password: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanisms", mechanism)
        .set("sasl.username", user)
        .set("sasl.password", password)
        .set("broker.address.family", "v4");
    c
}

/// Produce three records to a new topic and read them back, both with `mechanism`.
fn rk_round_trip(sasl: &str, mechanism: &str) {
    rk_round_trip_as(sasl, mechanism, "alice", "alice-secret");
}

/// [`rk_round_trip`] as `user`.
fn rk_round_trip_as(sasl: &str, mechanism: &str, user: &str, password: &str) {
    let topic = unique_topic(&format!("rk-sasl-{}", mechanism.to_lowercase()));
    let producer: BaseProducer = rk_config(sasl, mechanism, user, password).create().unwrap();
    let values: Vec<String> = (0..3).map(|i| format!("{mechanism}-{i}")).collect();
    for v in &values {
        producer
            .send(BaseRecord::<(), str>::to(&topic).payload(v.as_str()))
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer
        .flush(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{mechanism}: flush: {e}"));
    let consumer: BaseConsumer = rk_config(sasl, mechanism, user, password)
        .set("group.id", unique_topic("rk-sasl-group"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, rdkafka::Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while got.len() < values.len() && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) {
            got.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
    }
    assert_eq!(got, values, "{mechanism}: records read back");
}

/// A client with a wrong password reports Kafka's authentication failure.
fn rk_wrong_password(sasl: &str, mechanism: &str, expect: &str) {
    let errors = Errors::default();
    let consumer: BaseConsumer<Errors> = rk_config(sasl, mechanism, "alice", "wrong")
        .set("group.id", unique_topic("rk-sasl-wrong"))
        .create_with_context(errors.clone())
        .unwrap();
    let deadline = Instant::now() + DEADLINE;
    let mut metadata_ok = false;
    while Instant::now() < deadline {
        metadata_ok |= consumer
            .fetch_metadata(None, Duration::from_secs(2))
            .is_ok();
        // Errors reach the callback (or come back) only while the client is polled.
        if let Some(Err(e)) = consumer.poll(Duration::from_millis(200)) {
            errors.0.lock().unwrap().push(e.to_string());
        }
        if errors.0.lock().unwrap().iter().any(|e| e.contains(expect)) {
            break;
        }
    }
    let seen = errors.0.lock().unwrap().clone();
    assert!(
        seen.iter().any(|e| e.contains(expect)),
        "{mechanism}: no '{expect}' among {seen:?}"
    );
    assert!(
        !metadata_ok,
        "{mechanism}: metadata served to a wrong password"
    );
}

#[test]
fn librdkafka_on_each_mechanism_and_scram_users_survive_a_restart() {
    let (mut broker, sasl) = start(&[
        (
            "KAFKA_LISTENER_NAME_SASL__PLAINTEXT_PLAIN_SASL_JAAS_CONFIG",
            PLAIN_JAAS,
        ),
        // A user seeded at start-up, as `kafka-storage format --add-scram` does for Kafka.
        (
            "KAFKA_SLUICE_ADD_SCRAM",
            "SCRAM-SHA-512=[name=seeded,password=seeded-secret]",
        ),
    ]);
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
        add_scram_user(
            broker.addr(),
            None,
            "alice",
            &format!("{mechanism}=[password=alice-secret]"),
        );
    }
    for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
        rk_round_trip(&sasl, mechanism);
    }
    rk_wrong_password(&sasl, "PLAIN", "Invalid username or password");
    rk_wrong_password(
        &sasl,
        "SCRAM-SHA-256",
        "invalid credentials with SASL mechanism SCRAM-SHA-256",
    );
    rk_wrong_password(
        &sasl,
        "SCRAM-SHA-512",
        "invalid credentials with SASL mechanism SCRAM-SHA-512",
    );

    // Credentials are on disk, hashed: no password in the file, and they survive a restart.
    let file = std::fs::read_to_string(broker.data_dir().join("scram-credentials")).unwrap();
    assert!(!file.contains("alice-secret"));
    broker.restart();
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
        rk_round_trip(&sasl, mechanism);
    }
    rk_round_trip_as(&sasl, "SCRAM-SHA-512", "seeded", "seeded-secret");
    assert!(
        !broker.all_stderr().contains("seeded-secret"),
        "a password was logged"
    );
}

#[test]
fn franz_go_scram_and_oauthbearer_tests() {
    let bin = compat_dir().join(".cache/franz-go/kgo.test");
    let src = compat_dir().join(".cache/franz-go/src/pkg/kgo");
    assert!(
        bin.exists() && src.exists(),
        "{} missing: run compat-tests/scripts/install-go.sh",
        bin.display()
    );
    // franz-go's CI: SCRAM users from a JAAS file named in KAFKA_OPTS, OAUTHBEARER with
    // the unsecured validator configured per listener, and the user made with kafka-configs
    // over the PLAINTEXT listener.
    let jaas_dir = tempfile::tempdir().unwrap();
    let jaas = jaas_dir.path().join("jaas.conf");
    std::fs::write(
        &jaas,
        "KafkaServer {\n    org.apache.kafka.common.security.scram.ScramLoginModule required;\n};\n",
    )
    .unwrap();
    let opts = format!("-Djava.security.auth.login.config={}", jaas.display());
    let (broker, sasl) = start(&[
        ("KAFKA_SASL_ENABLED_MECHANISMS", "SCRAM-SHA-256,OAUTHBEARER"),
        (
            "KAFKA_LISTENER_NAME_SASL__PLAINTEXT_OAUTHBEARER_SASL_JAAS_CONFIG",
            r#"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="admin";"#,
        ),
        ("KAFKA_OPTS", &opts),
    ]);
    add_scram_user(
        broker.addr(),
        None,
        "testuser",
        "SCRAM-SHA-256=[iterations=4096,password=testpass]",
    );
    let mut cmd = Command::new(bin);
    cmd.args([
        "-test.run",
        "^(TestSCRAMAuth|TestSCRAMAuthBadCredentials|TestOAuthAuth)$",
        "-test.v",
        "-test.timeout",
        "120s",
    ])
    .current_dir(&src)
    .env("KGO_SEEDS", broker.addr())
    .env("KGO_TEST_RF", "1")
    .env("KGO_TEST_SCRAM_SEEDS", &sasl)
    .env("KGO_TEST_SCRAM", "testuser:testpass")
    .env("KGO_TEST_OAUTH_SEEDS", &sasl);
    let out = run_with_timeout(cmd, None, Duration::from_secs(150));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The per-test result lines, for whoever reads the log.
    for line in stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("--- "))
    {
        eprintln!("{line}");
    }
    for t in [
        "TestSCRAMAuth",
        "TestSCRAMAuthBadCredentials",
        "TestOAuthAuth",
    ] {
        assert!(
            stdout.contains(&format!("--- PASS: {t} ")),
            "{t} did not pass:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn java_consumer_reauthenticates_across_session_lifetimes() {
    let (broker, sasl) = start(&[
        (
            "KAFKA_LISTENER_NAME_SASL__PLAINTEXT_PLAIN_SASL_JAAS_CONFIG",
            PLAIN_JAAS,
        ),
        ("KAFKA_CONNECTIONS_MAX_REAUTH_MS", "2000"),
    ]);
    let props = client_props(broker.dir(), "PLAIN", "alice", "alice-secret");
    let topic = unique_topic("sasl-reauth");
    let out = java_tool(
        class::TOPICS,
        &[
            "--bootstrap-server",
            broker.addr(),
            "--create",
            "--topic",
            &topic,
            "--partitions",
            "1",
            "--replication-factor",
            "1",
        ],
        None,
    );
    assert_success(&out, "kafka-topics --create");
    let consumer = spawn_java_tool(
        class::CONSOLE_CONSUMER,
        &[
            "--bootstrap-server",
            &sasl,
            "--topic",
            &topic,
            "--from-beginning",
            "--command-config",
            &props.display().to_string(),
        ],
    );
    // Records go in over the PLAINTEXT listener while the consumer's sessions expire and
    // are renewed; the consumer must see every one, and the broker must log at least three
    // re-authentications (the client re-authenticates before each lifetime ends).
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.addr())
        .set("broker.address.family", "v4")
        .create()
        .unwrap();
    let reauths = |log: &str| log.matches("SASL re-authentication complete").count();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut sent = 0;
    while reauths(&broker.all_stderr()) < 3 && Instant::now() < deadline {
        let v = format!("r{sent}");
        producer
            .send(BaseRecord::<(), str>::to(&topic).payload(v.as_str()))
            .map_err(|(e, _)| e)
            .unwrap();
        producer.flush(Duration::from_secs(10)).unwrap();
        sent += 1;
        // Each record is read before the next is sent, so reads span the lifetimes.
        assert!(
            sluice_testkit::wait_until(Duration::from_secs(30), || {
                consumer.stdout().lines().count() >= sent
            }),
            "consumer stuck at {} of {sent} records\n{}\n{}",
            consumer.stdout().lines().count(),
            consumer.stderr(),
            broker.all_stderr()
        );
    }
    let log = broker.all_stderr();
    assert!(
        reauths(&log) >= 3,
        "fewer than 3 re-authentications:\n{log}"
    );
    assert!(
        !log.contains("expired (connections.max.reauth.ms)"),
        "a session expired:\n{log}"
    );
    let want: Vec<String> = (0..sent).map(|i| format!("r{i}")).collect();
    assert!(
        sluice_testkit::wait_until(DEADLINE, || {
            consumer
                .stdout()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
                == want
        }),
        "consumer read {:?}, expected {want:?}\n{}",
        consumer.stdout(),
        consumer.stderr()
    );
    let _ = consumer.terminate(Duration::from_secs(10));
}
