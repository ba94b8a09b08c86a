//! ACLs (Kafka's StandardAuthorizer) judged by Kafka's own `kafka-acls` tool and librdkafka:
//! the same scenarios run against Sluice and, in the same test, against Apache Kafka 4.3.1, both
//! with `allow.everyone.if.no.acl.found=true` (Kafka's controller link needs it without
//! super users), and assert the same outcomes: an add/list/remove round trip, a READ ACL
//! for another principal refusing a consume with TOPIC_AUTHORIZATION_FAILED (and the
//! produce), a group ACL for another principal refusing the group with
//! GROUP_AUTHORIZATION_FAILED, a prefixed ALLOW with a literal DENY, and a full Metadata
//! hiding a topic the client may not describe, and a transactional-id ACL for another
//! principal refusing InitProducerId. Sluice's ACLs also survive a restart.
//!
//! The client's identity is a parameter ([`Identity`]): PLAINTEXT clients are all
//! `User:ANONYMOUS`; `acls_apply_to_a_sasl_user` runs the same scenarios for `User:alice`
//! authenticated with SASL/PLAIN. Topic,
//! group and transactional-id names are fixed (each run has its own broker), so the two
//! brokers' `kafka-acls --list` outputs compare equal.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::types::RDKafkaErrorCode;

use crate::harness::{java_tool, poll_until, unique_topic, Broker};
use crate::kafka::Kafka;
use crate::rk::{self, Rec};

const ACLS: &str = "org.apache.kafka.tools.AclCommand";

/// How long an ACL change may take to reach Kafka's broker-side authorizer (it follows the
/// metadata log), and how long a client is given to hit the refusal.
const DEADLINE: Duration = Duration::from_secs(30);

/// The authorizer settings both brokers run with.
const KAFKA_PROPS: &str =
    "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\n\
    allow.everyone.if.no.acl.found=true\n";
const SLUICE_TOML: &str = "[security]\n\
    \"authorizer.class.name\" = \"org.apache.kafka.metadata.authorizer.StandardAuthorizer\"\n\
    \"allow.everyone.if.no.acl.found\" = \"true\"\n";

/// Who the clients are: the principal the broker sees, and the client settings that make
/// it so (none for PLAINTEXT's `User:ANONYMOUS`; `security.protocol`, `sasl.*` for a SASL
/// user). The `kafka-acls` tool runs with `admin_config` (a `--command-config` file's
/// lines), also empty on PLAINTEXT.
pub(crate) struct Identity {
    /// `User:name`, as ACLs name it.
    pub(crate) principal: String,
    /// librdkafka settings.
    pub(crate) client: Vec<(String, String)>,
    /// Java client properties for the admin tool (`key=value` lines), if any.
    pub(crate) admin_config: Option<String>,
}

impl Identity {
    /// A PLAINTEXT client.
    pub(crate) fn anonymous() -> Identity {
        Identity {
            principal: "User:ANONYMOUS".into(),
            client: Vec::new(),
            admin_config: None,
        }
    }

    fn client(&self) -> Vec<(&str, &str)> {
        self.client
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

/// Runs `kafka-acls --bootstrap-server addr <args>` (4.3.1's tool) as `who`; returns
/// (success, stdout + stderr).
fn kafka_acls(addr: &str, who: &Identity, args: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let props = dir.path().join("admin.properties");
    let mut all = vec!["--bootstrap-server", addr];
    if let Some(cfg) = &who.admin_config {
        std::fs::write(&props, cfg).unwrap();
        all.extend_from_slice(&["--command-config", props.to_str().unwrap()]);
    }
    all.extend_from_slice(args);
    let out = java_tool(ACLS, &all, None);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn acls_ok(addr: &str, who: &Identity, args: &[&str]) -> String {
    let (ok, text) = kafka_acls(addr, who, args);
    assert!(ok, "kafka-acls {args:?} failed:\n{text}");
    text
}

/// The ACL lines `kafka-acls --list` printed, as a set of
/// `ResourcePattern(...) (principal=..., host=..., operation=..., permissionType=...)`.
fn listed(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut resource = String::new();
    for line in text.lines() {
        if let Some(start) = line.find("ResourcePattern(") {
            let rest = &line[start..];
            resource = rest[..rest.find(')').map_or(rest.len(), |i| i + 1)].to_string();
        } else if line.trim_start().starts_with("(principal=") {
            out.insert(format!("{resource} {}", line.trim()));
        }
    }
    out
}

/// Produces one record to `topic` as `who`: the delivery result's error code, if any.
fn produce(addr: &str, who: &Identity, topic: &str) -> Option<RDKafkaErrorCode> {
    let mut extra = who.client();
    extra.push(("message.timeout.ms", "20000"));
    let p = rk::producer(addr, &extra);
    let r = rk::produce_all(&p, topic, &[Rec::kv("k", "v")]);
    match r.into_iter().next() {
        Some(Ok(_)) => None,
        Some(Err(e)) => Some(e.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail)),
        None => Some(RDKafkaErrorCode::Fail),
    }
}

/// Reads `topic` from the start as `who`, subscribed in consumer group `group` (a fresh
/// group without ACLs when `None`; librdkafka reports a subscribed topic's authorization
/// error, where an assigned one just waits): `Ok` once a record arrives, or the first
/// authorization error the client reports. Panics if neither happens in time.
fn consume(
    addr: &str,
    who: &Identity,
    topic: &str,
    group: Option<&str>,
) -> Result<(), RDKafkaErrorCode> {
    let mut extra = who.client();
    let fresh = unique_topic("acl-reader");
    extra.push(("group.id", group.unwrap_or(&fresh)));
    let c: BaseConsumer = rk::consumer(addr, &extra);
    c.subscribe(&[topic]).unwrap();
    let end = Instant::now() + DEADLINE;
    let mut last = None;
    while Instant::now() < end {
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(_)) => return Ok(()),
            Some(Err(e)) => {
                let code = e.rdkafka_error_code();
                if matches!(
                    code,
                    Some(
                        RDKafkaErrorCode::TopicAuthorizationFailed
                            | RDKafkaErrorCode::GroupAuthorizationFailed
                    )
                ) {
                    return Err(code.unwrap_or(RDKafkaErrorCode::Fail));
                }
                last = Some(e);
            }
            None => {}
        }
    }
    panic!("consume {topic} (group {group:?}): no record and no authorization error; last error {last:?}");
}

/// CreateTopics (one partition) through librdkafka's admin client as `who`.
fn create_topic(addr: &str, who: &Identity, topic: &str) {
    let admin: AdminClient<DefaultClientContext> =
        rk::config(addr, &who.client()).create().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let res = rt
        .block_on(admin.create_topics(
            &[NewTopic::new(topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(20))),
        ))
        .expect("CreateTopics request");
    for r in res {
        r.unwrap_or_else(|(t, e)| panic!("CreateTopics {t}: {e:?}"));
    }
}

/// `init_transactions` for `id` as `who`: the error code, if it failed.
fn init_transactions(addr: &str, who: &Identity, id: &str) -> Option<RDKafkaErrorCode> {
    let mut extra = who.client();
    extra.push(("transactional.id", id));
    let p: BaseProducer = rk::config(addr, &extra).create().unwrap();
    p.init_transactions(Duration::from_secs(20))
        .err()
        .map(|e| e.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail))
}

/// The topics a full Metadata request shows `who`.
fn all_topics(addr: &str, who: &Identity) -> BTreeSet<String> {
    let c: BaseConsumer = rk::config(addr, &who.client()).create().unwrap();
    let md = c
        .fetch_metadata(None, Duration::from_secs(20))
        .expect("metadata");
    md.topics().iter().map(|t| t.name().to_string()).collect()
}

/// `consume` until it gives `want` (Kafka applies ACL changes asynchronously).
fn consume_until(
    addr: &str,
    who: &Identity,
    topic: &str,
    group: Option<&str>,
    want: Result<(), RDKafkaErrorCode>,
) {
    let mut got = None;
    let reached = poll_until(DEADLINE * 2, || {
        let r = consume(addr, who, topic, group);
        let done = r == want;
        got = Some(r);
        done
    });
    assert!(
        reached,
        "consume {topic} (group {group:?}): want {want:?}, got {got:?}"
    );
}

/// What the scenarios observed, for comparing two brokers.
#[derive(Debug, PartialEq, Eq)]
struct Observed {
    listed_after_add: BTreeSet<String>,
    listed_after_remove: BTreeSet<String>,
    final_acls: BTreeSet<String>,
}

/// Every scenario against the broker at `addr`, as `who`; asserts Kafka's outcomes and
/// returns what the ACL tool listed.
fn scenarios(addr: &str, who: &Identity) -> Observed {
    let me = who.principal.as_str();
    for t in [
        "acl-t",
        "acl-free",
        "pay-orders",
        "pay-secret",
        "acl-vis",
        "acl-hid",
    ] {
        create_topic(addr, who, t);
        assert_eq!(produce(addr, who, t), None, "produce to {t} before any ACL");
    }

    // 1. Round trip: add (literal and prefixed), list, remove, list.
    acls_ok(
        addr,
        who,
        &[
            "--add",
            "--allow-principal",
            "User:bob",
            "--operation",
            "Read",
            "--topic",
            "rt",
        ],
    );
    acls_ok(
        addr,
        who,
        &[
            "--add",
            "--deny-principal",
            "User:eve",
            "--deny-host",
            "10.9.8.7",
            "--operation",
            "Write",
            "--topic",
            "rt-",
            "--resource-pattern-type",
            "prefixed",
        ],
    );
    let listed_after_add = listed(&acls_ok(addr, who, &["--list"]));
    assert_eq!(listed_after_add.len(), 2, "{listed_after_add:?}");
    acls_ok(
        addr,
        who,
        &[
            "--remove",
            "--force",
            "--topic",
            "rt-",
            "--resource-pattern-type",
            "prefixed",
        ],
    );
    acls_ok(addr, who, &["--remove", "--force", "--topic", "rt"]);
    let listed_after_remove = listed(&acls_ok(addr, who, &["--list"]));
    assert!(listed_after_remove.is_empty(), "{listed_after_remove:?}");

    // 2. A READ for bob on acl-t: the resource has an ACL, none for us, so the default
    //    (allow everyone) no longer applies: consume and produce are refused; a topic
    //    without ACLs stays open.
    acls_ok(
        addr,
        who,
        &[
            "--add",
            "--allow-principal",
            "User:bob",
            "--operation",
            "Read",
            "--topic",
            "acl-t",
        ],
    );
    consume_until(
        addr,
        who,
        "acl-t",
        None,
        Err(RDKafkaErrorCode::TopicAuthorizationFailed),
    );
    assert_eq!(
        produce(addr, who, "acl-t"),
        Some(RDKafkaErrorCode::TopicAuthorizationFailed)
    );
    assert_eq!(consume(addr, who, "acl-free", None), Ok(()));

    // 3. A group ACL for bob: our consumer in that group gets GROUP_AUTHORIZATION_FAILED.
    acls_ok(
        addr,
        who,
        &[
            "--add",
            "--allow-principal",
            "User:bob",
            "--operation",
            "Read",
            "--group",
            "acl-g",
        ],
    );
    consume_until(
        addr,
        who,
        "acl-free",
        Some("acl-g"),
        Err(RDKafkaErrorCode::GroupAuthorizationFailed),
    );

    // 4. Prefixed ALLOW (all operations) on pay- with a literal DENY of READ on pay-secret.
    acls_ok(
        addr,
        who,
        &[
            "--add",
            "--allow-principal",
            me,
            "--operation",
            "All",
            "--topic",
            "pay-",
            "--resource-pattern-type",
            "prefixed",
        ],
    );
    acls_ok(
        addr,
        who,
        &[
            "--add",
            "--deny-principal",
            me,
            "--operation",
            "Read",
            "--topic",
            "pay-secret",
        ],
    );
    consume_until(
        addr,
        who,
        "pay-secret",
        None,
        Err(RDKafkaErrorCode::TopicAuthorizationFailed),
    );
    assert_eq!(consume(addr, who, "pay-orders", None), Ok(()));
    // WRITE on pay-secret comes from the prefix; the DENY is for READ only.
    assert_eq!(produce(addr, who, "pay-secret"), None);
    assert_eq!(produce(addr, who, "pay-orders"), None);

    // 5. Full Metadata hides a topic we may not describe (bob's READ on acl-hid).
    acls_ok(
        addr,
        who,
        &[
            "--add",
            "--allow-principal",
            "User:bob",
            "--operation",
            "Read",
            "--topic",
            "acl-hid",
        ],
    );
    let mut topics = BTreeSet::new();
    let hidden = poll_until(DEADLINE, || {
        topics = all_topics(addr, who);
        !topics.contains("acl-hid")
    });
    assert!(hidden, "acl-hid still listed: {topics:?}");
    assert!(topics.contains("acl-vis"), "{topics:?}");
    assert!(!topics.contains("acl-t"), "{topics:?}");
    assert!(topics.contains("pay-secret"), "{topics:?}");

    // 6. A WRITE on a transactional id for bob: our InitProducerId for it is refused.
    acls_ok(
        addr,
        who,
        &[
            "--add",
            "--allow-principal",
            "User:bob",
            "--operation",
            "Write",
            "--transactional-id",
            "acl-tx",
        ],
    );
    let mut code = None;
    let refused = poll_until(DEADLINE, || {
        code = init_transactions(addr, who, "acl-tx");
        code == Some(RDKafkaErrorCode::TransactionalIdAuthorizationFailed)
    });
    assert!(refused, "init_transactions(acl-tx): {code:?}");
    assert_eq!(init_transactions(addr, who, "acl-tx-free"), None);

    let final_acls = listed(&acls_ok(addr, who, &["--list"]));
    assert_eq!(final_acls.len(), 6, "{final_acls:?}");
    Observed {
        listed_after_add,
        listed_after_remove,
        final_acls,
    }
}

#[test]
fn acls_behave_as_kafkas_and_survive_a_restart() {
    let who = Identity::anonymous();
    let mut broker = Broker::start_with_config(SLUICE_TOML);
    let addr = broker.addr().to_string();
    let seen = scenarios(&addr, &who);

    broker.restart();
    let addr = broker.addr().to_string();
    let after = listed(&acls_ok(&addr, &who, &["--list"]));
    assert_eq!(after, seen.final_acls, "ACLs after a restart");
    assert_eq!(
        consume(&addr, &who, "acl-t", None),
        Err(RDKafkaErrorCode::TopicAuthorizationFailed)
    );
    assert_eq!(consume(&addr, &who, "pay-orders", None), Ok(()));
}

/// PLAIN users of the SASL variant (Kafka's documented JAAS form).
const PLAIN_JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";"#;

#[test]
fn acls_apply_to_a_sasl_user() {
    // The same scenarios for `User:alice`, authenticated with PLAIN on a SASL_PLAINTEXT
    // listener (the harness's PLAINTEXT one is unused).
    let sasl = format!("127.0.0.1:{}", sluice_testkit::free_port());
    let broker = sluice_testkit::Broker::builder()
        .temp_prefix("sluice-acl-sasl-")
        .arg("--listen")
        .arg(&format!("SASL_PLAINTEXT://{sasl}"))
        .env(
            "KAFKA_LISTENER_NAME_SASL__PLAINTEXT_PLAIN_SASL_JAAS_CONFIG",
            PLAIN_JAAS,
        )
        .env(
            "KAFKA_AUTHORIZER_CLASS_NAME",
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        )
        .env("KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND", "true")
        .start();
    let alice = Identity {
        principal: "User:alice".into(),
        client: [
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanisms", "PLAIN"),
            ("sasl.username", "alice"),
            ("sasl.password", "alice-secret"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        admin_config: Some(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n\
             sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \
             username=\"alice\" password=\"alice-secret\";\n"
                .to_string(),
        ),
    };
    scenarios(&sasl, &alice);
    drop(broker);
}

#[test]
fn without_an_authorizer_the_acl_apis_are_disabled() {
    let broker = Broker::start();
    let (ok, text) = kafka_acls(
        broker.addr(),
        &Identity::anonymous(),
        &[
            "--add",
            "--allow-principal",
            "User:bob",
            "--operation",
            "Read",
            "--topic",
            "t",
        ],
    );
    assert!(!ok, "{text}");
    assert!(text.contains("SecurityDisabledException"), "{text}");
}

/// The spec: Kafka 4.3.1 with StandardAuthorizer, then Sluice, the same scenarios, the same
/// outcomes. Runs in the suite (about a minute), since Kafka's behaviour is what the other
/// ACL tests assume.
#[test]
fn acls_on_kafka_match_sluice() {
    let who = Identity::anonymous();
    let kafka = Kafka::start(KAFKA_PROPS);
    let on_kafka = scenarios(kafka.addr(), &who);
    drop(kafka);
    let broker = Broker::start_with_config(SLUICE_TOML);
    let on_sluice = scenarios(broker.addr(), &who);
    assert_eq!(on_kafka, on_sluice);
}
