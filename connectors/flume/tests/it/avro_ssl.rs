//! Tests: the avro source and sink with `ssl = true`, stores made by the JDK's `keytool` in
//! the test (JKS and PKCS12): real Flume 1.11's avro sink → our avro source; our avro sink
//! (truststore, then `trust-all-certs`) → real Flume's avro source, both also with deflate
//! (zlib under TLS, as Flume layers them); ours → ours; a plaintext
//! client against our TLS source is closed with one warning and the source keeps serving;
//! a missing keystore or a wrong password is reported at start naming the key and the file.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sluice_flume_rpc::{AvroSourceClient, ClientOptions, ClientTls, Event, TlsFilters, Trust};

use crate::harness::{free_port, poll_until, Agent};
use crate::interop::RealFlume;
use crate::sinks::{files_under, WAIT};

const STORE_PASSWORD: &str = "changeit-42";
const TRUST_PASSWORD: &str = "trust-pw-7";

fn keytool(args: &[&str]) {
    let out = Command::new("keytool")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running keytool (the JDK's; is it on PATH?): {e}"));
    assert!(
        out.status.success(),
        "keytool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A server keystore `<name>.<ext>` (RSA 2048, self-signed, SAN localhost and 127.0.0.1) of
/// `store_type`, and `<name>-trust.<ext>` holding its certificate.
struct Stores {
    keystore: PathBuf,
    truststore: PathBuf,
}

fn make_stores(dir: &Path, name: &str, store_type: &str) -> Stores {
    let ext = if store_type == "JKS" { "jks" } else { "p12" };
    let keystore = dir.join(format!("{name}.{ext}"));
    let truststore = dir.join(format!("{name}-trust.{ext}"));
    let cert = dir.join(format!("{name}.crt"));
    let (ks, crt) = (keystore.to_str().unwrap(), cert.to_str().unwrap());
    let dname = format!("CN={name}");
    keytool(&[
        "-genkeypair",
        "-alias",
        name,
        "-keyalg",
        "RSA",
        "-keysize",
        "2048",
        "-validity",
        "3650",
        "-dname",
        &dname,
        "-ext",
        "SAN=dns:localhost,ip:127.0.0.1",
        "-storetype",
        store_type,
        "-keystore",
        ks,
        "-storepass",
        STORE_PASSWORD,
        "-keypass",
        STORE_PASSWORD,
    ]);
    keytool(&[
        "-exportcert",
        "-alias",
        name,
        "-keystore",
        ks,
        "-storepass",
        STORE_PASSWORD,
        "-file",
        crt,
    ]);
    keytool(&[
        "-importcert",
        "-noprompt",
        "-alias",
        name,
        "-file",
        crt,
        "-storetype",
        store_type,
        "-keystore",
        truststore.to_str().unwrap(),
        "-storepass",
        TRUST_PASSWORD,
    ]);
    Stores {
        keystore,
        truststore,
    }
}

/// The lines `0`..`n` each followed by a newline (what a `seq` source sends).
fn counter_lines(n: usize) -> String {
    (0..n).map(|i| format!("{i}\n")).collect()
}

/// Everything the file_roll sink wrote under `dir`.
fn rolled(dir: &Path) -> String {
    files_under(dir)
        .iter()
        .map(|p| fs::read_to_string(p).unwrap())
        .collect()
}

/// Agent `a1`: avro source `r1` on `port` with `ssl_lines` → memory → file_roll into `out`.
fn avro_source_to_file_roll(port: u16, ssl_lines: &str, out: &Path) -> String {
    format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = avro\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {port}\n\
         a1.sources.r1.channels = c1\n\
         {ssl_lines}\
         a1.channels.c1.type = memory\n\
         a1.channels.c1.capacity = 1000\n\
         a1.sinks.k1.type = file_roll\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.sink.directory = {}\n\
         a1.sinks.k1.sink.rollInterval = 0\n",
        out.display()
    )
}

/// Agent `a1`: seq source (`n` events) → memory → avro sink `k1` to `port` with `ssl_lines`.
fn seq_to_avro_sink(n: usize, port: u16, ssl_lines: &str) -> String {
    format!(
        "a1.sources = s1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.s1.type = seq\n\
         a1.sources.s1.totalEvents = {n}\n\
         a1.sources.s1.batchSize = 10\n\
         a1.sources.s1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c1.capacity = 1000\n\
         a1.sinks.k1.type = avro\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.hostname = 127.0.0.1\n\
         a1.sinks.k1.port = {port}\n\
         a1.sinks.k1.batch-size = 7\n\
         {ssl_lines}"
    )
}

fn source_ssl(prefix: &str, keystore: &Path, store_type: &str) -> String {
    format!(
        "{prefix}.ssl = true\n\
         {prefix}.keystore = {}\n\
         {prefix}.keystore-password = {STORE_PASSWORD}\n\
         {prefix}.keystore-type = {store_type}\n",
        keystore.display()
    )
}

fn sink_ssl_truststore(prefix: &str, truststore: &Path, store_type: &str) -> String {
    format!(
        "{prefix}.ssl = true\n\
         {prefix}.truststore = {}\n\
         {prefix}.truststore-password = {TRUST_PASSWORD}\n\
         {prefix}.truststore-type = {store_type}\n",
        truststore.display()
    )
}

/// `compression-type = deflate` lines for `prefix` (zlib under TLS, as Flume layers them).
fn deflate_lines(prefix: &str, deflate: bool) -> String {
    if deflate {
        format!("{prefix}.compression-type = deflate\n")
    } else {
        String::new()
    }
}

#[test]
fn real_flume_avro_sink_with_ssl_to_our_avro_source_with_a_jks_keystore() {
    let stores_dir = tempfile::tempdir().unwrap();
    let s = make_stores(stores_dir.path(), "ours", "JKS");
    for deflate in [false, true] {
        let port = free_port();
        let out = tempfile::tempdir().unwrap();
        let ours = avro_source_to_file_roll(
            port,
            &(source_ssl("a1.sources.r1", &s.keystore, "JKS")
                + &deflate_lines("a1.sources.r1", deflate)),
            out.path(),
        );
        let mut agent = Agent::start(&ours, "a1", &[]);
        agent.wait_for_log("Avro source r1 started", WAIT);
        assert!(agent.log().contains("(ssl)"), "{}", agent.log());
        let real = seq_to_avro_sink(
            50,
            port,
            &(sink_ssl_truststore("a1.sinks.k1", &s.truststore, "JKS")
                + &deflate_lines("a1.sinks.k1", deflate)),
        );
        let _flume = RealFlume::start(&real);
        let want = counter_lines(50);
        poll_until(
            Duration::from_secs(90),
            &format!("real Flume's 50 events over TLS (deflate {deflate}) in our file_roll output"),
            || (rolled(out.path()) == want).then_some(()),
        );
        assert!(
            !agent.log().contains("TLS handshake failed"),
            "{}",
            agent.log()
        );
    }
}

#[test]
fn our_avro_sink_with_ssl_to_real_flume_avro_source_with_a_pkcs12_keystore() {
    let stores_dir = tempfile::tempdir().unwrap();
    let s = make_stores(stores_dir.path(), "flume", "PKCS12");
    for deflate in [false, true] {
        let port = free_port();
        let out = tempfile::tempdir().unwrap();
        let real = avro_source_to_file_roll(
            port,
            &(source_ssl("a1.sources.r1", &s.keystore, "PKCS12")
                + &deflate_lines("a1.sources.r1", deflate)),
            out.path(),
        );
        let mut flume = RealFlume::start(&real);
        flume.wait_for_log("Avro source r1 started");
        // With the truststore, then trusting every certificate: 50 events each, in order.
        let mut want = String::new();
        for ssl in [
            sink_ssl_truststore("a1.sinks.k1", &s.truststore, "PKCS12"),
            "a1.sinks.k1.ssl = true\na1.sinks.k1.trust-all-certs = true\n".to_string(),
        ] {
            let ssl = ssl + &deflate_lines("a1.sinks.k1", deflate);
            let mut agent = Agent::start(&seq_to_avro_sink(50, port, &ssl), "a1", &[]);
            agent.wait_for_log(&format!("connected to 127.0.0.1:{port}"), WAIT);
            want.push_str(&counter_lines(50));
            poll_until(
                Duration::from_secs(60),
                &format!(
                    "our 50 events over TLS (deflate {deflate}) in real Flume's file_roll output"
                ),
                || (rolled(out.path()) == want).then_some(()),
            );
            agent.kill9();
        }
    }
}

#[test]
fn our_avro_sink_to_our_avro_source_over_tls_and_a_plaintext_client_is_refused() {
    let stores_dir = tempfile::tempdir().unwrap();
    let s = make_stores(stores_dir.path(), "pair", "PKCS12");
    let port = free_port();
    let out = tempfile::tempdir().unwrap();
    let rx_cfg = avro_source_to_file_roll(
        port,
        &source_ssl("a1.sources.r1", &s.keystore, "PKCS12"),
        out.path(),
    );
    let mut rx = Agent::start(&rx_cfg, "a1", &[]);
    rx.wait_for_log("Avro source r1 started", WAIT);

    // A plaintext client: its call fails, the source logs one warning naming it.
    let addr = format!("127.0.0.1:{port}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut plain = AvroSourceClient::connect(&addr, ClientOptions::default())
            .await
            .unwrap();
        let e = plain
            .append_batch(&[Event::new("plaintext")])
            .await
            .unwrap_err();
        assert!(e.to_string().contains(&addr), "{e}");
    });
    rx.wait_for_log("TLS handshake failed", WAIT);
    assert_eq!(
        rx.log().matches("TLS handshake failed").count(),
        1,
        "{}",
        rx.log()
    );

    // The source keeps serving: our avro sink with the truststore delivers 50 events...
    let tx_cfg = seq_to_avro_sink(
        50,
        port,
        &sink_ssl_truststore("a1.sinks.k1", &s.truststore, "PKCS12"),
    );
    let mut tx = Agent::start(&tx_cfg, "a1", &[]);
    tx.wait_for_log(&format!("connected to {addr}"), WAIT);
    let mut want = counter_lines(50);
    poll_until(
        Duration::from_secs(60),
        "50 events from our sink over TLS in the file_roll output",
        || (rolled(out.path()) == want).then_some(()),
    );
    tx.kill9();
    // ...and a TLS client's batch, with headers, lands too.
    rt.block_on(async {
        let opts = ClientOptions {
            tls: Some(ClientTls::new(&Trust::All, &TlsFilters::default()).unwrap()),
            ..ClientOptions::default()
        };
        let mut c = AvroSourceClient::connect(&addr, opts).await.unwrap();
        let batch: Vec<Event> = (0..3)
            .map(|i| Event::new(format!("tls {i}")).with_header("h", "v"))
            .collect();
        let st = c.append_batch(&batch).await.unwrap();
        assert_eq!(st, sluice_flume_rpc::Status::Ok);
    });
    want.push_str("tls 0\ntls 1\ntls 2\n");
    poll_until(
        Duration::from_secs(30),
        "the TLS client's 3 events after the plaintext one",
        || (rolled(out.path()) == want).then_some(()),
    );
}

#[test]
fn a_missing_keystore_or_a_wrong_password_names_the_component_key_and_file() {
    let stores_dir = tempfile::tempdir().unwrap();
    let s = make_stores(stores_dir.path(), "bad", "JKS");
    let missing = stores_dir.path().join("absent.jks");
    let out = tempfile::tempdir().unwrap();
    for (keystore, password, why) in [
        (&missing, STORE_PASSWORD, "cannot read"),
        (&s.keystore, "wrong-password", "password was incorrect"),
    ] {
        let ssl = format!(
            "a1.sources.r1.ssl = true\n\
             a1.sources.r1.keystore = {}\n\
             a1.sources.r1.keystore-password = {password}\n",
            keystore.display()
        );
        let cfg = avro_source_to_file_roll(free_port(), &ssl, out.path());
        let mut a = Agent::start(&cfg, "a1", &["--strict"]);
        let (status, log) = a.wait_exit(WAIT);
        assert_eq!(status.code(), Some(2), "{log}");
        let line = log
            .lines()
            .find(|l| l.contains("a1.sources.r1.keystore:"))
            .unwrap_or_else(|| panic!("no line naming a1.sources.r1.keystore:\n{log}"));
        assert!(line.contains("Source r1"), "{line}");
        assert!(line.contains(keystore.to_str().unwrap()), "{line}");
        assert!(line.contains(why), "{line}");
    }
    // The sink's truststore, likewise.
    let ssl = format!(
        "a1.sinks.k1.ssl = true\n\
         a1.sinks.k1.truststore = {}\n\
         a1.sinks.k1.truststore-password = nope\n",
        s.truststore.display()
    );
    let mut a = Agent::start(&seq_to_avro_sink(1, free_port(), &ssl), "a1", &["--strict"]);
    let (status, log) = a.wait_exit(WAIT);
    assert_eq!(status.code(), Some(2), "{log}");
    let line = log
        .lines()
        .find(|l| l.contains("a1.sinks.k1.truststore:"))
        .unwrap_or_else(|| panic!("no line naming a1.sinks.k1.truststore:\n{log}"));
    assert!(line.contains("Sink k1"), "{line}");
    assert!(line.contains(s.truststore.to_str().unwrap()), "{line}");
}

#[test]
fn global_keystore_and_truststore_from_system_properties() {
    // Flume 1.9+: unset keys fall back to -Djavax.net.ssl.* (here every store key is unset).
    let stores_dir = tempfile::tempdir().unwrap();
    let s = make_stores(stores_dir.path(), "global", "PKCS12");
    let port = free_port();
    let out = tempfile::tempdir().unwrap();
    let rx_cfg = avro_source_to_file_roll(port, "a1.sources.r1.ssl = true\n", out.path());
    let ks = format!("-Djavax.net.ssl.keyStore={}", s.keystore.display());
    let ks_pw = format!("-Djavax.net.ssl.keyStorePassword={STORE_PASSWORD}");
    let mut rx = Agent::start(
        &rx_cfg,
        "a1",
        &[&ks, &ks_pw, "-Djavax.net.ssl.keyStoreType=PKCS12"],
    );
    rx.wait_for_log("Avro source r1 started", WAIT);
    assert!(rx.log().contains("(ssl)"), "{}", rx.log());
    let tx_cfg = seq_to_avro_sink(20, port, "a1.sinks.k1.ssl = true\n");
    let ts = format!("-Djavax.net.ssl.trustStore={}", s.truststore.display());
    let ts_pw = format!("-Djavax.net.ssl.trustStorePassword={TRUST_PASSWORD}");
    let _tx = Agent::start(&tx_cfg, "a1", &[&ts, &ts_pw]);
    let want = counter_lines(20);
    poll_until(
        Duration::from_secs(60),
        "20 events over TLS set up by system properties",
        || (rolled(out.path()) == want).then_some(()),
    );
}
