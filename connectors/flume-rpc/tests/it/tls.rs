//! TLS: keystores and truststores made by the JDK's `keytool` (JKS and PKCS12) read by the
//! `keystore` module; our client against our server with a truststore and with
//! `trust-all-certs`; a client trusting another certificate is refused; a plaintext client
//! against a TLS server is closed and the server keeps serving.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sluice_flume_rpc::keystore;
use sluice_flume_rpc::{
    AvroSourceClient, ClientOptions, ClientTls, Compression, Event, RpcError, Server,
    ServerOptions, ServerTls, Status, StoreFile, TlsFilters, Trust,
};

use crate::support::{init_tracing, Collector};

pub const STORE_PASSWORD: &str = "changeit-42";
pub const TRUST_PASSWORD: &str = "trust-pw-7";

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

/// Stores made by keytool in one directory: a server keystore (`alias`, RSA 2048, self-signed
/// for localhost and 127.0.0.1) and a truststore holding its certificate.
pub struct Stores {
    pub keystore: PathBuf,
    pub truststore: PathBuf,
}

/// Makes `<name>.<ext>` keystore of `store_type` and `<name>-trust.<ext>` truststore.
pub fn make_stores(dir: &Path, name: &str, store_type: &str) -> Stores {
    let ext = if store_type == "JKS" { "jks" } else { "p12" };
    let keystore = dir.join(format!("{name}.{ext}"));
    let truststore = dir.join(format!("{name}-trust.{ext}"));
    let cert = dir.join(format!("{name}.crt"));
    let ks = keystore.to_str().unwrap();
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
        &format!("CN={name}"),
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
        cert.to_str().unwrap(),
    ]);
    keytool(&[
        "-importcert",
        "-noprompt",
        "-alias",
        name,
        "-file",
        cert.to_str().unwrap(),
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

fn store(path: &Path, password: &str) -> StoreFile {
    StoreFile {
        path: path.to_path_buf(),
        password: Some(password.to_string()),
    }
}

#[test]
fn keytool_jks_and_pkcs12_stores_are_read() {
    let dir = tempfile::tempdir().unwrap();
    for t in ["JKS", "PKCS12"] {
        let s = make_stores(dir.path(), &format!("srv{t}"), t);
        let ks = keystore::load(&s.keystore, Some(STORE_PASSWORD)).unwrap();
        assert_eq!(ks.keys.len(), 1, "{t}");
        assert_eq!(ks.keys[0].chain.len(), 1, "{t}");
        let ts = keystore::load(&s.truststore, Some(TRUST_PASSWORD)).unwrap();
        assert_eq!((ts.keys.len(), ts.trusted.len()), (0, 1), "{t}");
        assert_eq!(ts.trusted[0], ks.keys[0].chain[0], "{t}");
        // A wrong password is an error naming the file.
        let e = keystore::load(&s.keystore, Some("wrong")).unwrap_err();
        assert!(
            e.to_string().contains(s.keystore.to_str().unwrap()),
            "{t}: {e}"
        );
        assert!(e.to_string().contains("password"), "{t}: {e}");
        // Both build a server.
        ServerTls::from_keystore(&store(&s.keystore, STORE_PASSWORD), &TlsFilters::default())
            .unwrap();
    }
    // A JKS truststore read without a password (Java skips the integrity check then).
    let s = make_stores(dir.path(), "nopw", "JKS");
    let ts = keystore::load(&s.truststore, None).unwrap();
    assert_eq!(ts.trusted.len(), 1);
}

async fn tls_server(
    stores: &Stores,
    collector: std::sync::Arc<Collector>,
    compression: Compression,
) -> Server {
    let tls = ServerTls::from_keystore(
        &store(&stores.keystore, STORE_PASSWORD),
        &TlsFilters::default(),
    )
    .unwrap();
    Server::avro_source(
        "127.0.0.1:0",
        collector,
        ServerOptions {
            tls: Some(tls),
            compression,
            ..ServerOptions::default()
        },
    )
    .await
    .unwrap()
}

fn tls_client(trust: Trust) -> ClientOptions {
    ClientOptions {
        tls: Some(ClientTls::new(&trust, &TlsFilters::default()).unwrap()),
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        ..ClientOptions::default()
    }
}

fn events(tag: &str, n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| Event::new(format!("{tag} body {i}")).with_header("k", format!("{tag}-{i}")))
        .collect()
}

#[tokio::test]
async fn our_client_and_server_over_tls_with_a_truststore_and_trusting_all() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let s = make_stores(dir.path(), "server", "PKCS12");
    let other = make_stores(dir.path(), "other", "JKS");
    let collector = Collector::new();
    let server = tls_server(&s, collector.clone(), Compression::None).await;
    let addr = server.local_addr().to_string();

    let mut sent = Vec::new();
    for (i, trust) in [
        Trust::Store(store(&s.truststore, TRUST_PASSWORD)),
        Trust::All,
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = AvroSourceClient::connect(&addr, tls_client(trust))
            .await
            .unwrap();
        let batch = events(&format!("c{i}"), 5);
        assert_eq!(c.append_batch(&batch).await.unwrap(), Status::Ok);
        assert_eq!(c.append(&batch[0]).await.unwrap(), Status::Ok);
        sent.extend(batch.iter().cloned());
        sent.push(batch[0].clone());
    }
    assert_eq!(collector.events(), sent);

    // A client trusting only another certificate fails the handshake, naming the server.
    let wrong = Trust::Store(store(&other.truststore, TRUST_PASSWORD));
    let e = AvroSourceClient::connect(&addr, tls_client(wrong))
        .await
        .unwrap_err();
    assert!(matches!(e, RpcError::Io(_)), "{e}");
    assert!(e.to_string().contains(&addr), "{e}");

    // A plaintext client is closed; the server keeps serving TLS clients.
    let mut plain = AvroSourceClient::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    assert!(plain.append(&events("plain", 1)[0]).await.is_err());
    let mut c = AvroSourceClient::connect(&addr, tls_client(Trust::All))
        .await
        .unwrap();
    assert_eq!(
        c.append_batch(&events("after", 3)).await.unwrap(),
        Status::Ok
    );
    assert_eq!(collector.events().len(), sent.len() + 3);
    server.shutdown().await;
}

#[tokio::test]
async fn tls_over_deflate_as_flume_layers_it() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let s = make_stores(dir.path(), "zipped", "JKS");
    let collector = Collector::new();
    let deflate = Compression::Deflate { level: 6 };
    let server = tls_server(&s, collector.clone(), deflate).await;
    let addr = server.local_addr().to_string();
    let opts = ClientOptions {
        compression: Compression::Deflate { level: 9 },
        ..tls_client(Trust::Store(store(&s.truststore, TRUST_PASSWORD)))
    };
    let mut c = AvroSourceClient::connect(&addr, opts).await.unwrap();
    let batch = events("z", 50);
    assert_eq!(c.append_batch(&batch).await.unwrap(), Status::Ok);
    assert_eq!(c.append_batch(&batch[..2]).await.unwrap(), Status::Ok);
    assert_eq!(collector.events().len(), 52);
    assert_eq!(collector.events()[..50], batch[..]);
    // TLS without deflate against this server fails (its bytes are not zlib).
    let mut plain_tls = AvroSourceClient::connect(&addr, tls_client(Trust::All)).await;
    if let Ok(c) = plain_tls.as_mut() {
        assert!(c.append(&batch[0]).await.is_err());
    }
    server.shutdown().await;
}
