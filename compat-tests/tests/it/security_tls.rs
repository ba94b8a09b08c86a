//! TLS listeners (SSL) against real clients: Kafka 4.3.1's Java tools, librdkafka (through
//! `rdkafka`) and kcat. Each test makes its own CA, broker and client certificates with
//! `openssl` and the JDK's `keytool` (both on a machine where install-all.sh ran), and
//! stores the broker's key as JKS, PKCS12 and PEM (plain and encrypted), as Kafka's
//! `ssl.keystore.*` keys describe them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::Offset;

use crate::harness::{
    assert_success, class, java_tool, kcat, poll_until, run_with_timeout, unique_topic,
    TOOL_TIMEOUT,
};
use crate::rk::{self, Rec};

pub(crate) const PASSWORD: &str = "changeit";

/// Certificates and stores in a temp dir. Made by `openssl` (keys, certificates, PKCS12,
/// PEM) and `keytool` (JKS, and keytool's own PKCS12 truststore).
pub(crate) struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    pub(crate) fn new() -> Certs {
        let dir = tempfile::Builder::new()
            .prefix("sluice-tls-")
            .tempdir()
            .unwrap();
        let script = format!(
            r#"set -euo pipefail
PW={PASSWORD}
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 30 \
  -subj "/CN=Sluice Test CA" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
sign() {{ # name subject extensions
  openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
  printf '%b' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
}}
sign server "/O=Sluice/OU=broker/CN=localhost" \
  "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
sign client "/O=Acme/OU=eng/CN=alice" \
  "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"
# PEM keystores: key then chain; and one with the key encrypted (PKCS#8, PBES2).
cat server.key server.crt ca.pem > server-keystore.pem
openssl pkcs8 -topk8 -v2 aes-256-cbc -in server.key -passout pass:$PW -out server-enc.key
cat server-enc.key server.crt ca.pem > server-keystore-enc.pem
cat server.crt ca.pem > server-chain.pem
openssl pkcs12 -export -in server.crt -inkey server.key -certfile ca.pem -name broker \
  -out server.p12 -passout pass:$PW
openssl pkcs12 -export -in client.crt -inkey client.key -certfile ca.pem -name alice \
  -out client.p12 -passout pass:$PW
keytool -importkeystore -noprompt -srckeystore server.p12 -srcstoretype PKCS12 \
  -srcstorepass $PW -destkeystore server.jks -deststoretype JKS -deststorepass $PW 2>/dev/null
keytool -importcert -noprompt -alias ca -file ca.pem -keystore truststore.jks \
  -storetype JKS -storepass $PW >/dev/null 2>&1
keytool -importcert -noprompt -alias ca -file ca.pem -keystore truststore.p12 \
  -storetype PKCS12 -storepass $PW >/dev/null 2>&1
# keytool's own EC key (PKCS#8 without the public key, as Java writes it), self-signed.
keytool -genkeypair -alias broker -keyalg EC -groupname secp256r1 -dname CN=localhost \
  -ext san=dns:localhost,ip:127.0.0.1 -validity 30 -keystore server-ec.jks -storetype JKS \
  -storepass $PW -keypass $PW >/dev/null 2>&1
keytool -exportcert -rfc -alias broker -keystore server-ec.jks -storepass $PW \
  -file server-ec.pem >/dev/null 2>&1
"#
        );
        let mut cmd = Command::new("bash");
        cmd.arg("-c").arg(script).current_dir(dir.path());
        let out = run_with_timeout(cmd, None, TOOL_TIMEOUT);
        assert_success(&out, "making certificates with openssl and keytool");
        Certs { dir }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    fn text(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap()
    }

    /// A Java client properties file for SSL with `lines` added.
    fn java_props(&self, name: &str, lines: &[String]) -> String {
        let mut text = String::from("security.protocol=SSL\n");
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }
}

/// A TOML `[security]` table from Kafka keys.
pub(crate) fn security_toml(pairs: &[(&str, &str)]) -> String {
    let mut t = String::from("[security]\n");
    for (k, v) in pairs {
        t.push_str(&format!("{k:?} = {v:?}\n"));
    }
    t
}

/// A broker whose one listener is `SSL://127.0.0.1:0`.
fn ssl_broker(toml: &str, env: &[(&str, &str)], rust_log: &str) -> sluice_testkit::Broker {
    let mut b = sluice_testkit::Broker::builder()
        .bin(sluice_testkit::sluice_bin_beside_test_exe())
        .temp_prefix("sluice-tls-")
        .listen("SSL://127.0.0.1:0")
        .default_rust_log(rust_log)
        .config(toml);
    for (k, v) in env {
        b = b.env(k, v);
    }
    b.start()
}

/// librdkafka settings for SSL with the test CA.
fn rk_ssl(certs: &Certs) -> Vec<(&'static str, String)> {
    vec![
        ("security.protocol", "ssl".to_string()),
        ("ssl.ca.location", certs.p("ca.pem")),
    ]
}

fn as_refs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Records large enough that a fetch carries several file chunks through TLS.
fn records(n: usize, tag: &str) -> Vec<Rec> {
    (0..n)
        .map(|i| {
            let noise = rk::noise(2048, i as u64 + 1);
            let mut v = format!("{tag}-{i}-").into_bytes();
            v.extend_from_slice(&noise);
            Rec {
                key: Some(format!("k{i}").into_bytes()),
                value: Some(v),
                ..Rec::kv("", "")
            }
        })
        .collect()
}

/// Produce over SSL with librdkafka and read everything back (Fetch through TLS, whose
/// file regions are copied rather than sent with sendfile).
fn rdkafka_round_trip(addr: &str, extra: &[(&str, &str)], n: usize) {
    let topic = unique_topic("tls-rk");
    let recs = records(n, &topic);
    rk::produce_ok(addr, &topic, &recs, extra);
    let c = rk::consumer(addr, extra);
    let got = rk::consume_with(&c, &topic, 0, Offset::Beginning, recs.len());
    for (i, (g, want)) in got.iter().zip(&recs).enumerate() {
        assert_eq!(g.rec.value, want.value, "record {i} came back different");
    }
}

/// Whether a metadata request over these settings succeeds.
fn metadata_ok(addr: &str, extra: &[(&str, &str)]) -> Result<(), String> {
    let p: BaseProducer = rk::config(addr, extra)
        .create()
        .map_err(|e| e.to_string())?;
    p.client()
        .fetch_metadata(None, Duration::from_secs(8))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Java's topics tool, console producer and console consumer over SSL with `props`.
fn java_round_trip(addr: &str, props: &str) {
    let topic = unique_topic("tls-java");
    let out = java_tool(
        class::TOPICS,
        &[
            "--bootstrap-server",
            addr,
            "--command-config",
            props,
            "--create",
            "--topic",
            &topic,
            "--partitions",
            "1",
        ],
        None,
    );
    assert_success(&out, "kafka-topics --create over SSL");
    let lines: Vec<String> = (0..50).map(|i| format!("tls line {i}")).collect();
    let input = lines.join("\n") + "\n";
    let out = java_tool(
        class::CONSOLE_PRODUCER,
        &[
            "--bootstrap-server",
            addr,
            "--command-config",
            props,
            "--topic",
            &topic,
        ],
        Some(input.into_bytes()),
    );
    assert_success(&out, "kafka-console-producer over SSL");
    let out = java_tool(
        class::CONSOLE_CONSUMER,
        &[
            "--bootstrap-server",
            addr,
            "--command-config",
            props,
            "--topic",
            &topic,
            "--from-beginning",
            "--max-messages",
            "50",
            "--timeout-ms",
            "30000",
        ],
        None,
    );
    assert_success(&out, "kafka-console-consumer over SSL");
    let got: Vec<String> = stdout(&out).lines().map(|l| l.trim().to_string()).collect();
    assert_eq!(got, lines, "console consumer output");
    let out = java_tool(
        class::TOPICS,
        &[
            "--bootstrap-server",
            addr,
            "--command-config",
            props,
            "--list",
        ],
        None,
    );
    assert_success(&out, "kafka-topics --list over SSL");
    assert!(
        stdout(&out).lines().any(|l| l.trim() == topic),
        "--list lacks {topic}: {}",
        stdout(&out)
    );
}

#[test]
fn java_tools_over_ssl_with_a_jks_keystore() {
    let certs = Certs::new();
    let broker = ssl_broker(
        &security_toml(&[
            ("ssl.keystore.type", "JKS"),
            ("ssl.keystore.location", &certs.p("server.jks")),
            ("ssl.keystore.password", PASSWORD),
            ("ssl.key.password", PASSWORD),
        ]),
        &[],
        "info",
    );
    let props = certs.java_props(
        "client-jks.properties",
        &[
            format!("ssl.truststore.location={}", certs.p("truststore.jks")),
            format!("ssl.truststore.password={PASSWORD}"),
        ],
    );
    java_round_trip(broker.addr(), &props);
}

#[test]
fn java_tools_over_ssl_with_an_inline_pem_keystore() {
    let certs = Certs::new();
    // Kafka's PEM keystore given inline, the key encrypted under ssl.key.password.
    let broker = ssl_broker(
        &security_toml(&[
            ("ssl.keystore.type", "PEM"),
            (
                "ssl.keystore.certificate.chain",
                &certs.text("server-chain.pem"),
            ),
            ("ssl.keystore.key", &certs.text("server-enc.key")),
            ("ssl.key.password", PASSWORD),
        ]),
        &[],
        "info",
    );
    // The Java client trusts the CA through a PEM truststore this time.
    let props = certs.java_props(
        "client-pem.properties",
        &[
            "ssl.truststore.type=PEM".to_string(),
            format!("ssl.truststore.location={}", certs.p("ca.pem")),
        ],
    );
    java_round_trip(broker.addr(), &props);
}

#[test]
fn rdkafka_over_ssl_with_a_pkcs12_keystore_and_required_client_certificates() {
    let certs = Certs::new();
    let broker = ssl_broker(
        &security_toml(&[
            ("ssl.keystore.type", "PKCS12"),
            ("ssl.keystore.location", &certs.p("server.p12")),
            ("ssl.keystore.password", PASSWORD),
            ("ssl.truststore.type", "PKCS12"),
            ("ssl.truststore.location", &certs.p("truststore.p12")),
            ("ssl.truststore.password", PASSWORD),
            ("ssl.client.auth", "required"),
            (
                "ssl.principal.mapping.rules",
                "RULE:^CN=([a-z]+),OU=eng,.*$/$1-engineer/U,DEFAULT",
            ),
        ]),
        &[],
        "info,sluice::server::connection=debug",
    );
    let mut with_cert = rk_ssl(&certs);
    with_cert.push(("ssl.certificate.location", certs.p("client.crt")));
    with_cert.push(("ssl.key.location", certs.p("client.key")));
    rdkafka_round_trip(broker.addr(), &as_refs(&with_cert), 300);
    // The certificate named the session, through the mapping rule.
    assert!(
        poll_until(Duration::from_secs(10), || broker
            .stderr()
            .contains("principal=User:ALICE-ENGINEER")),
        "no session for User:ALICE-ENGINEER in the log:\n{}",
        broker.stderr()
    );
    // Without a client certificate the handshake fails.
    let err = metadata_ok(broker.addr(), &as_refs(&rk_ssl(&certs)));
    assert!(
        err.is_err(),
        "metadata without a client certificate succeeded"
    );
    assert!(
        poll_until(Duration::from_secs(10), || broker
            .stderr()
            .contains("TLS handshake failed")),
        "no handshake failure logged:\n{}",
        broker.stderr()
    );
    // The container's health check, given only the configuration, still sees it serving.
    let out = health(&broker);
    assert_success(&out, "sluice health on a TLS listener with client auth");
    assert!(
        stdout(&out).contains("requires a client certificate"),
        "{}",
        stdout(&out)
    );
}

/// `sluice health` with the broker's own configuration and listener.
fn health(broker: &sluice_testkit::Broker) -> std::process::Output {
    let mut cmd = Command::new(sluice_testkit::sluice_bin_beside_test_exe());
    cmd.arg("--listen")
        .arg(format!("SSL://{}", broker.addr()))
        .arg("--config")
        .arg(broker.dir().join("sluice.toml"))
        .arg("health");
    run_with_timeout(cmd, None, TOOL_TIMEOUT)
}

#[test]
fn rdkafka_over_ssl_with_a_pem_file_and_an_encrypted_key_requested_client_auth() {
    let certs = Certs::new();
    let broker = ssl_broker(
        &security_toml(&[
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.location", &certs.p("server-keystore-enc.pem")),
            ("ssl.key.password", PASSWORD),
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.location", &certs.p("ca.pem")),
            ("ssl.client.auth", "requested"),
            ("ssl.enabled.protocols", "TLSv1.3"),
        ]),
        &[],
        "info,sluice::server::connection=debug",
    );
    // `requested`: a client without a certificate gets in, as User:ANONYMOUS.
    rdkafka_round_trip(broker.addr(), &as_refs(&rk_ssl(&certs)), 50);
    assert!(
        poll_until(Duration::from_secs(10), || broker
            .stderr()
            .contains("principal=User:ANONYMOUS")),
        "no anonymous session in the log:\n{}",
        broker.stderr()
    );
    // And one with a certificate is named by its subject DN (Kafka's DEFAULT rule).
    let mut with_cert = rk_ssl(&certs);
    with_cert.push(("ssl.certificate.location", certs.p("client.crt")));
    with_cert.push(("ssl.key.location", certs.p("client.key")));
    metadata_ok(broker.addr(), &as_refs(&with_cert)).unwrap();
    assert!(
        poll_until(Duration::from_secs(10), || broker
            .stderr()
            .contains("principal=User:CN=alice,OU=eng,O=Acme")),
        "no session for the certificate's DN in the log:\n{}",
        broker.stderr()
    );
    // A TLS 1.2 client is refused: the listener enables TLSv1.3 alone.
    let s_client = |version: &str| {
        let mut cmd = Command::new("openssl");
        cmd.args(["s_client", "-connect", broker.addr(), version, "-CAfile"])
            .arg(certs.path("ca.pem"));
        run_with_timeout(cmd, Some(Vec::new()), TOOL_TIMEOUT)
            .status
            .success()
    };
    assert!(s_client("-tls1_3"), "openssl s_client -tls1_3 failed");
    assert!(!s_client("-tls1_2"), "a TLS 1.2 handshake succeeded");
}

#[test]
fn rdkafka_over_ssl_with_keytools_own_ec_keystore() {
    let certs = Certs::new();
    let broker = ssl_broker(
        &security_toml(&[
            ("ssl.keystore.location", &certs.p("server-ec.jks")),
            ("ssl.keystore.password", PASSWORD),
        ]),
        &[],
        "info",
    );
    let ssl = [
        ("security.protocol", "ssl".to_string()),
        ("ssl.ca.location", certs.p("server-ec.pem")),
    ];
    rdkafka_round_trip(broker.addr(), &as_refs(&ssl), 20);
}

/// A broker whose one listener is `SASL_SSL://127.0.0.1:0`, SCRAM-SHA-512 user `alice`.
fn sasl_ssl_broker(certs: &Certs, extra: &[(&str, &str)]) -> sluice_testkit::Broker {
    let keystore = certs.p("server-keystore.pem");
    let mut keys = vec![
        ("ssl.keystore.location", keystore.as_str()),
        ("sasl.enabled.mechanisms", "SCRAM-SHA-512"),
        (
            "sluice.add.scram",
            "SCRAM-SHA-512=[name=alice,password=alice-secret]",
        ),
    ];
    keys.extend_from_slice(extra);
    sluice_testkit::Broker::builder()
        .bin(sluice_testkit::sluice_bin_beside_test_exe())
        .temp_prefix("sluice-tls-")
        .listen("SASL_SSL://127.0.0.1:0")
        .default_rust_log("info")
        .config(&security_toml(&keys))
        .start()
}

#[test]
fn rdkafka_scram_over_sasl_ssl_and_client_auth_only_from_the_listener_prefix() {
    let certs = Certs::new();
    let mut scram = rk_ssl(&certs);
    scram[0].1 = "sasl_ssl".to_string();
    scram.push(("sasl.mechanisms", "SCRAM-SHA-512".to_string()));
    scram.push(("sasl.username", "alice".to_string()));
    scram.push(("sasl.password", "alice-secret".to_string()));
    // Broker-wide ssl.client.auth=required applies to SSL listeners only, as in Kafka.
    let broker = sasl_ssl_broker(&certs, &[("ssl.client.auth", "required")]);
    rdkafka_round_trip(broker.addr(), &as_refs(&scram), 50);
    drop(broker);
    // The listener-prefixed key does apply: no certificate, no connection.
    let truststore = certs.p("truststore.jks");
    let broker = sasl_ssl_broker(
        &certs,
        &[
            ("listener.name.sasl_ssl.ssl.client.auth", "required"),
            ("ssl.truststore.location", &truststore),
            ("ssl.truststore.password", PASSWORD),
        ],
    );
    assert!(metadata_ok(broker.addr(), &as_refs(&scram)).is_err());
    let mut with_cert = scram.clone();
    with_cert.push(("ssl.certificate.location", certs.p("client.crt")));
    with_cert.push(("ssl.key.location", certs.p("client.key")));
    rdkafka_round_trip(broker.addr(), &as_refs(&with_cert), 5);
}

#[test]
fn a_certificate_principal_is_what_the_authorizer_sees() {
    let certs = Certs::new();
    let start = |super_user: &str| {
        let keystore = certs.p("server-keystore.pem");
        let ca = certs.p("ca.pem");
        ssl_broker(
            &security_toml(&[
                ("ssl.keystore.location", &keystore),
                ("ssl.client.auth", "required"),
                ("ssl.truststore.location", &ca),
                ("ssl.principal.mapping.rules", "RULE:^CN=([a-z]+),.*$/$1/"),
                (
                    "authorizer.class.name",
                    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                ),
                ("super.users", super_user),
            ]),
            &[],
            "info",
        )
    };
    let mut alice = rk_ssl(&certs);
    alice.push(("ssl.certificate.location", certs.p("client.crt")));
    alice.push(("ssl.key.location", certs.p("client.key")));
    // CN=alice,OU=eng,O=Acme maps to User:alice, a super user: everything is allowed.
    let broker = start("User:alice");
    rdkafka_round_trip(broker.addr(), &as_refs(&alice), 5);
    drop(broker);
    // Another super user and no ACLs: alice may not write.
    let broker = start("User:bob");
    let topic = unique_topic("tls-acl");
    let p = rk::producer(broker.addr(), &as_refs(&alice));
    let reports = rk::produce_all(&p, &topic, &records(1, "denied"));
    let err = reports[0].as_ref().unwrap_err().to_string();
    assert!(
        err.contains("authorization"),
        "expected an authorization error: {err}"
    );
}

#[test]
fn apache_kafka_image_ssl_variables() {
    // The apache/kafka image's single-node SSL example: keystore and truststore file names
    // and password files in the secrets directory, client certificates required.
    let certs = Certs::new();
    std::fs::write(certs.path("kafka_keystore_creds"), format!("{PASSWORD}\n")).unwrap();
    std::fs::write(certs.path("kafka_ssl_key_creds"), format!("{PASSWORD}\n")).unwrap();
    std::fs::write(
        certs.path("kafka_truststore_creds"),
        format!("{PASSWORD}\n"),
    )
    .unwrap();
    let secrets = certs.p("");
    let broker = ssl_broker(
        "",
        &[
            ("SLUICE_KAFKA_SECRETS_DIR", secrets.as_str()),
            (
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
                "SSL:SSL,CONTROLLER:PLAINTEXT,SSL-INTERNAL:SSL",
            ),
            ("KAFKA_SSL_KEYSTORE_FILENAME", "server.jks"),
            ("KAFKA_SSL_KEYSTORE_CREDENTIALS", "kafka_keystore_creds"),
            ("KAFKA_SSL_KEY_CREDENTIALS", "kafka_ssl_key_creds"),
            ("KAFKA_SSL_TRUSTSTORE_FILENAME", "truststore.jks"),
            ("KAFKA_SSL_TRUSTSTORE_CREDENTIALS", "kafka_truststore_creds"),
            ("KAFKA_SSL_CLIENT_AUTH", "required"),
            ("KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM", ""),
        ],
        "info",
    );
    let mut with_cert = rk_ssl(&certs);
    with_cert.push(("ssl.certificate.location", certs.p("client.crt")));
    with_cert.push(("ssl.key.location", certs.p("client.key")));
    metadata_ok(broker.addr(), &as_refs(&with_cert)).unwrap();
    assert!(metadata_ok(broker.addr(), &as_refs(&rk_ssl(&certs))).is_err());
    // Passwords stay out of the start-up report.
    assert!(
        !broker.stderr().contains(&format!("= {PASSWORD}")),
        "a password was logged:\n{}",
        broker.stderr()
    );
}

#[test]
fn kcat_over_ssl() {
    let certs = Certs::new();
    let broker = ssl_broker(
        &security_toml(&[
            ("ssl.keystore.location", &certs.p("server-keystore.pem")),
            ("ssl.keystore.type", "PEM"),
        ]),
        &[],
        "info",
    );
    let topic = unique_topic("tls-kcat");
    let ca = certs.p("ca.pem");
    let ssl = [
        "-X",
        "security.protocol=ssl",
        "-X",
        &format!("ssl.ca.location={ca}"),
    ]
    .map(String::from);
    let ssl: Vec<&str> = ssl.iter().map(String::as_str).collect();
    let mut args = vec!["-b", broker.addr(), "-P", "-t", &topic];
    args.extend(&ssl);
    let out = kcat(&args, Some(b"one\ntwo\nthree\n".to_vec()));
    assert_success(&out, "kcat -P over SSL");
    let mut args = vec![
        "-b",
        broker.addr(),
        "-C",
        "-t",
        &topic,
        "-o",
        "beginning",
        "-e",
        "-q",
    ];
    args.extend(&ssl);
    let out = kcat(&args, None);
    assert_success(&out, "kcat -C over SSL");
    assert_eq!(stdout(&out), "one\ntwo\nthree\n");
    let mut args = vec!["-b", broker.addr(), "-L"];
    args.extend(&ssl);
    let out = kcat(&args, None);
    assert_success(&out, "kcat -L over SSL");
    assert!(
        stdout(&out).contains(&format!("topic \"{topic}\"")),
        "{}",
        stdout(&out)
    );
}

#[test]
fn garbage_on_a_tls_port_is_one_log_line_and_the_broker_keeps_serving() {
    let certs = Certs::new();
    let broker = ssl_broker(
        &security_toml(&[
            ("ssl.keystore.location", &certs.p("server.p12")),
            ("ssl.keystore.password", PASSWORD),
        ]),
        &[],
        "info",
    );
    // A plaintext Kafka request (ApiVersions v0 header) on the TLS port.
    let mut s = TcpStream::connect(broker.addr()).unwrap();
    let local = s.local_addr().unwrap().to_string();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(&[0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0, 0])
        .unwrap();
    s.write_all(&[0xde; 300]).unwrap();
    let mut buf = Vec::new();
    // The broker answers with a TLS alert at most, then closes.
    let _ = s.read_to_end(&mut buf);
    assert!(
        poll_until(Duration::from_secs(10), || broker.stderr().contains(&local)),
        "no log line names the peer {local}:\n{}",
        broker.stderr()
    );
    let lines = broker
        .stderr()
        .lines()
        .filter(|l| l.contains(&local))
        .count();
    assert_eq!(
        lines,
        1,
        "one line per failed handshake:\n{}",
        broker.stderr()
    );
    rdkafka_round_trip(broker.addr(), &as_refs(&rk_ssl(&certs)), 5);
}

/// Runs the broker binary with a config and waits for it to exit; it must not get ready.
fn start_must_fail(toml: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sluice.toml");
    std::fs::write(&cfg, toml).unwrap();
    let mut cmd = Command::new(sluice_testkit::sluice_bin_beside_test_exe());
    cmd.arg("--listen")
        .arg("SSL://127.0.0.1:0")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&cfg);
    let start = Instant::now();
    let out = run_with_timeout(cmd, None, Duration::from_secs(30));
    assert!(start.elapsed() < Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("listening on"),
        "broker got ready: {stdout}"
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_missing_or_locked_keystore_stops_start_up_with_the_key_and_file() {
    let certs = Certs::new();
    let missing = certs.p("no-such.jks");
    let (code, err) = start_must_fail(&security_toml(&[
        ("ssl.keystore.location", &missing),
        ("ssl.keystore.password", PASSWORD),
    ]));
    assert_ne!(code, 0);
    assert!(
        err.contains("ssl.keystore.location") && err.contains(&missing),
        "error does not name the key and file: {err}"
    );
    let jks = certs.p("server.jks");
    let (code, err) = start_must_fail(&security_toml(&[
        ("listener.name.ssl.ssl.keystore.location", &jks),
        ("ssl.keystore.password", "wrong"),
    ]));
    assert_ne!(code, 0);
    assert!(
        err.contains("ssl.keystore.password") && err.contains(&jks),
        "error does not name the password key and file: {err}"
    );
    let (code, err) = start_must_fail("");
    assert_ne!(code, 0);
    assert!(err.contains("ssl.keystore.location"), "{err}");
}
