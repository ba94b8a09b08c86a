//! TLS and SASL against a real Apache Kafka 4.3.1 (the jars `compat-tests/scripts/
//! install-java.sh` caches). One broker is started with five listeners: PLAINTEXT (inter-broker,
//! and to wait for the broker on), SSL (client certificates required), SASL_PLAINTEXT,
//! SASL_SSL and the KRaft controller; SASL offers PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512,
//! with SCRAM credentials written by `kafka-storage format --add-scram`. Certificates are
//! made here with rcgen. All scenarios run in one test, against that one broker, so its
//! start (a few seconds) is paid once and the JVM is killed when the test ends.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use sluice_client::{Client, ClientConfig, Error, ProduceOptions, ProduceRecord, Security};
use sluice_testkit::{eventually, free_port, kafka_home, kafka_java, kafka_quiet_log_config};
use tempfile::TempDir;

use crate::harness::{test_config, unique};

const USER: &str = "alice";
const PASSWORD: &str = "alice-secret";
/// Kafka's quickstart cluster id.
const CLUSTER_ID: &str = "MkU3OEVBNTcwNTJENDM2Qk";

/// PEM files of a CA, a broker certificate for 127.0.0.1 and a client certificate.
struct Pki {
    ca: PathBuf,
    server: PathBuf,
    client: PathBuf,
    other_ca: PathBuf,
}

fn ca(name: &str) -> (rcgen::CertificateParams, rcgen::KeyPair, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let pem = params.self_signed(&key).unwrap().pem();
    (params, key, pem)
}

/// A leaf certificate signed by the CA, as one PEM file holding key and certificate (the
/// layout of Kafka's `ssl.keystore.type=PEM` file).
fn leaf(
    dir: &Path,
    file: &str,
    names: &[&str],
    issuer: &rcgen::Issuer<'_, rcgen::KeyPair>,
) -> PathBuf {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, names[0]);
    let cert = params.signed_by(&key, issuer).unwrap();
    let path = dir.join(file);
    fs::write(&path, format!("{}{}", key.serialize_pem(), cert.pem())).unwrap();
    path
}

fn make_pki(dir: &Path) -> Pki {
    let (params, key, ca_pem) = ca("sluice-it-ca");
    let ca_path = dir.join("ca.pem");
    fs::write(&ca_path, ca_pem).unwrap();
    let issuer = rcgen::Issuer::new(params, key);
    // An IP SAN only: the client checks the host it connected to, 127.0.0.1, so a
    // connection to "localhost" fails the name check.
    let server = leaf(dir, "server.pem", &["127.0.0.1"], &issuer);
    let client = leaf(dir, "client.pem", &["sluice-it-client"], &issuer);
    let (_, _, other) = ca("some-other-ca");
    let other_ca = dir.join("other-ca.pem");
    fs::write(&other_ca, other).unwrap();
    Pki {
        ca: ca_path,
        server,
        client,
        other_ca,
    }
}

/// A Kafka broker with one listener per security protocol. Killed on drop.
struct SecureKafka {
    child: Option<Child>,
    tmp: TempDir,
    pki: Pki,
    plain: String,
    ssl: String,
    sasl_plaintext: String,
    sasl_ssl: String,
}

impl SecureKafka {
    fn start() -> SecureKafka {
        assert!(
            kafka_home().join(".installed").exists(),
            "Kafka jars missing at {}: run compat-tests/scripts/install-java.sh",
            kafka_home().display()
        );
        let tmp = tempfile::Builder::new()
            .prefix("sluice-client-it-kafka-sec-")
            .tempdir()
            .unwrap();
        let pki = make_pki(tmp.path());
        let [plain, ssl, sasl_pt, sasl_ssl, ctl] = [(); 5].map(|_| free_port());
        let jaas_plain = format!(
            "org.apache.kafka.common.security.plain.PlainLoginModule required \
             user_{USER}=\"{PASSWORD}\";"
        );
        let jaas_scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;";
        let mut sasl_lines = String::new();
        for listener in ["sasl_plaintext", "sasl_ssl"] {
            sasl_lines.push_str(&format!(
                "listener.name.{listener}.plain.sasl.jaas.config={jaas_plain}\n\
                 listener.name.{listener}.scram-sha-256.sasl.jaas.config={jaas_scram}\n\
                 listener.name.{listener}.scram-sha-512.sasl.jaas.config={jaas_scram}\n"
            ));
        }
        let props = format!(
            "process.roles=broker,controller\n\
             node.id=1\n\
             controller.quorum.bootstrap.servers=127.0.0.1:{ctl}\n\
             listeners=PLAINTEXT://127.0.0.1:{plain},SSL://127.0.0.1:{ssl},\
             SASL_PLAINTEXT://127.0.0.1:{sasl_pt},SASL_SSL://127.0.0.1:{sasl_ssl},\
             CONTROLLER://127.0.0.1:{ctl}\n\
             advertised.listeners=PLAINTEXT://127.0.0.1:{plain},SSL://127.0.0.1:{ssl},\
             SASL_PLAINTEXT://127.0.0.1:{sasl_pt},SASL_SSL://127.0.0.1:{sasl_ssl},\
             CONTROLLER://127.0.0.1:{ctl}\n\
             inter.broker.listener.name=PLAINTEXT\n\
             controller.listener.names=CONTROLLER\n\
             listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,\
             SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL\n\
             log.dirs={logs}\n\
             num.partitions=1\n\
             offsets.topic.replication.factor=1\n\
             share.coordinator.state.topic.replication.factor=1\n\
             share.coordinator.state.topic.min.isr=1\n\
             transaction.state.log.replication.factor=1\n\
             transaction.state.log.min.isr=1\n\
             ssl.keystore.type=PEM\n\
             ssl.keystore.location={server}\n\
             ssl.truststore.type=PEM\n\
             ssl.truststore.location={ca}\n\
             listener.name.ssl.ssl.client.auth=required\n\
             sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512\n\
             {sasl_lines}",
            logs = tmp.path().join("logs").display(),
            server = pki.server.display(),
            ca = pki.ca.display(),
        );
        let cfg = tmp.path().join("server.properties");
        fs::write(&cfg, props).unwrap();
        let log_config = kafka_quiet_log_config();
        let format = kafka_java("-Xmx256m", &log_config)
            .arg("kafka.tools.StorageTool")
            .args(["format", "--standalone", "-t", CLUSTER_ID, "-c"])
            .arg(&cfg)
            .args([
                "--add-scram",
                &format!("SCRAM-SHA-256=[name={USER},password={PASSWORD}]"),
                "--add-scram",
                &format!("SCRAM-SHA-512=[name={USER},password={PASSWORD}]"),
            ])
            .output()
            .expect("run java (is it on PATH? compat-tests/scripts/install-java.sh)");
        assert!(
            format.status.success(),
            "kafka-storage format failed:\n{}{}",
            String::from_utf8_lossy(&format.stdout),
            String::from_utf8_lossy(&format.stderr)
        );
        let log = File::create(tmp.path().join("kafka.log")).unwrap();
        let child = kafka_java("-Xmx768m", &log_config)
            .arg("kafka.Kafka")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn kafka");
        let addr = |p: u16| format!("127.0.0.1:{p}");
        SecureKafka {
            child: Some(child),
            tmp,
            pki,
            plain: addr(plain),
            ssl: addr(ssl),
            sasl_plaintext: addr(sasl_pt),
            sasl_ssl: addr(sasl_ssl),
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.tmp.path().join("kafka.log")).unwrap_or_default()
    }

    /// Waits until the PLAINTEXT listener answers metadata, so every listener is up.
    async fn wait_ready(&mut self) {
        let addr = self.plain.clone();
        eventually(Duration::from_secs(60), "kafka to start", || {
            let addr = addr.clone();
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().unwrap())
                .map(|s| s.to_string());
            async move {
                if let Some(status) = exited {
                    panic!("kafka exited: {status}");
                }
                Client::connect(test_config(&addr)).await.ok()
            }
        })
        .await;
    }
}

impl Drop for SecureKafka {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("----- kafka log -----\n{}", self.log());
        }
    }
}

fn config(addr: &str, props: &[(&str, &str)]) -> ClientConfig {
    let mut c =
        test_config(addr).with_security(Security::from_properties(props.iter().copied()).unwrap());
    c.connect_timeout = Duration::from_secs(10);
    c
}

/// Creates a topic, produces three records and reads them back, through `config`.
async fn round_trip(config: ClientConfig) -> Result<(), String> {
    let client = Client::connect(config)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let topic = unique("sec");
    client
        .create_topic(&topic, 1, 1, &[])
        .await
        .map_err(|e| format!("create topic: {e}"))?;
    let records: Vec<ProduceRecord> = (0..3)
        .map(|i| ProduceRecord::new(format!("v{i}")).with_key(format!("k{i}")))
        .collect();
    // The partition leader may take a moment after creation; produce retries that itself.
    let base = client
        .produce(&topic, 0, &records, &ProduceOptions::default())
        .await
        .map_err(|e| format!("produce: {e}"))?;
    let fetched = client
        .fetch(&topic, 0, base, 1 << 20, Duration::from_millis(500))
        .await
        .map_err(|e| format!("fetch: {e}"))?;
    let values: Vec<_> = fetched.records.iter().map(|r| r.value.clone()).collect();
    let want: Vec<_> = records.iter().map(|r| r.value.clone()).collect();
    if values != want {
        return Err(format!("fetched {values:?}, produced {want:?}"));
    }
    Ok(())
}

/// Connecting must fail with [`Error::Authentication`] whose message has every one of
/// `wanted` and none of `secrets`.
async fn refused(config: ClientConfig, wanted: &[&str], secrets: &[&str]) -> Result<(), String> {
    match Client::connect(config).await {
        Ok(_) => Err("connected, but should have been refused".to_owned()),
        Err(e @ Error::Authentication { .. }) => {
            let text = e.to_string();
            if e.is_retriable() {
                return Err(format!("authentication error is retriable: {text}"));
            }
            if let Some(w) = wanted.iter().find(|w| !text.contains(*w)) {
                return Err(format!("error lacks {w:?}: {text}"));
            }
            if let Some(s) = secrets.iter().find(|s| text.contains(*s)) {
                return Err(format!("error shows the secret {s:?}: {text}"));
            }
            eprintln!("  refused as expected: {text}");
            Ok(())
        }
        Err(e) => Err(format!("expected an authentication error, got: {e}")),
    }
}

type Props = Vec<(&'static str, &'static str)>;

/// `base` with `extra` appended (a later key wins).
fn with(base: &Props, extra: &[(&'static str, &'static str)]) -> Props {
    let mut v = base.clone();
    v.extend_from_slice(extra);
    v
}

fn jaas(module: &str, password: &str) -> String {
    format!(
        "org.apache.kafka.common.security.{module} required username=\"{USER}\" \
         password=\"{password}\";"
    )
}

#[tokio::test]
async fn tls_and_sasl_against_apache_kafka() {
    let mut kafka = SecureKafka::start();
    kafka.wait_ready().await;
    // Leaked, so the property lists can all be `&'static str` pairs.
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let ca = leak(kafka.pki.ca.display().to_string());
    let other_ca = leak(kafka.pki.other_ca.display().to_string());
    let client_pem = leak(kafka.pki.client.display().to_string());
    let plain_jaas = leak(jaas("plain.PlainLoginModule", PASSWORD));
    let scram_jaas = leak(jaas("scram.ScramLoginModule", PASSWORD));
    let wrong_plain = leak(jaas("plain.PlainLoginModule", "not-the-password"));
    let wrong_scram = leak(jaas("scram.ScramLoginModule", "not-the-password"));
    let localhost_ssl = kafka.ssl.replace("127.0.0.1", "localhost");
    let ssl_client: Props = vec![
        ("security.protocol", "SSL"),
        ("ssl.truststore.type", "PEM"),
        ("ssl.truststore.location", ca),
        ("ssl.keystore.type", "PEM"),
        ("ssl.keystore.location", client_pem),
    ];
    let sasl = |mechanism: &'static str, jaas: &'static str| -> Props {
        vec![
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", mechanism),
            ("sasl.jaas.config", jaas),
        ]
    };

    let mut failures = Vec::new();
    let mut check = |name: &str, r: Result<(), String>| {
        eprintln!("{name}: {}", if r.is_ok() { "ok" } else { "FAILED" });
        if let Err(e) = r {
            failures.push(format!("{name}: {e}"));
        }
    };

    check(
        "SSL with a client certificate",
        round_trip(config(&kafka.ssl, &ssl_client)).await,
    );
    check(
        "SSL with librdkafka's key names",
        round_trip(config(
            &kafka.ssl,
            &[
                ("security.protocol", "ssl"),
                ("ssl.ca.location", ca),
                ("ssl.certificate.location", client_pem),
                ("ssl.key.location", client_pem),
            ],
        ))
        .await,
    );
    check(
        "SSL without the client certificate the broker requires",
        refused(
            config(
                &kafka.ssl,
                &[
                    ("security.protocol", "SSL"),
                    ("ssl.truststore.location", ca),
                ],
            ),
            &["TLS"],
            &[],
        )
        .await,
    );
    check(
        "SSL with an untrusted broker certificate",
        refused(
            config(
                &kafka.ssl,
                &with(&ssl_client, &[("ssl.truststore.location", other_ca)]),
            ),
            &["TLS", "UnknownIssuer"],
            &[],
        )
        .await,
    );
    check(
        "SSL to a host name the certificate lacks",
        refused(
            config(&localhost_ssl, &ssl_client),
            &["TLS", "not valid for name"],
            &[],
        )
        .await,
    );
    check(
        "SSL without the host name check",
        round_trip(config(
            &localhost_ssl,
            &with(
                &ssl_client,
                &[("ssl.endpoint.identification.algorithm", "")],
            ),
        ))
        .await,
    );
    for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let good = if mechanism == "PLAIN" {
            plain_jaas
        } else {
            scram_jaas
        };
        let bad = if mechanism == "PLAIN" {
            wrong_plain
        } else {
            wrong_scram
        };
        check(
            &format!("SASL_PLAINTEXT {mechanism}"),
            round_trip(config(&kafka.sasl_plaintext, &sasl(mechanism, good))).await,
        );
        check(
            &format!("SASL_PLAINTEXT {mechanism} with a wrong password"),
            refused(
                config(&kafka.sasl_plaintext, &sasl(mechanism, bad)),
                &[mechanism, USER],
                &["not-the-password"],
            )
            .await,
        );
    }
    check(
        "SASL_PLAINTEXT with librdkafka's user name and password keys",
        round_trip(config(
            &kafka.sasl_plaintext,
            &[
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanisms", "SCRAM-SHA-256"),
                ("sasl.username", USER),
                ("sasl.password", PASSWORD),
            ],
        ))
        .await,
    );
    for (mechanism, jaas) in [("PLAIN", plain_jaas), ("SCRAM-SHA-512", scram_jaas)] {
        check(
            &format!("SASL_SSL {mechanism}"),
            round_trip(config(
                &kafka.sasl_ssl,
                &[
                    ("security.protocol", "SASL_SSL"),
                    ("sasl.mechanism", mechanism),
                    ("sasl.jaas.config", jaas),
                    ("ssl.truststore.location", ca),
                ],
            ))
            .await,
        );
    }
    check(
        "SASL_SSL with a wrong password",
        refused(
            config(
                &kafka.sasl_ssl,
                &[
                    ("security.protocol", "SASL_SSL"),
                    ("sasl.mechanism", "SCRAM-SHA-256"),
                    ("sasl.jaas.config", wrong_scram),
                    ("ssl.truststore.location", ca),
                ],
            ),
            &["SCRAM-SHA-256", USER],
            &["not-the-password"],
        )
        .await,
    );
    check("SCRAM for a user without credentials", {
        // SCRAM for a user that has no SCRAM credentials fails like a wrong password.
        let mut v = sasl("SCRAM-SHA-256", scram_jaas);
        v.retain(|(k, _)| *k != "sasl.jaas.config");
        v.push(("sasl.username", "nobody"));
        v.push(("sasl.password", "x"));
        refused(config(&kafka.sasl_plaintext, &v), &["nobody"], &[]).await
    });
    assert!(
        failures.is_empty(),
        "{} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
