//! Flume's SSL keys for the avro source and sink, turned into `sluice-flume-rpc`'s TLS
//! settings. Kafka's `kafka.*ssl*` keys are not here: they go to the Kafka client as is.
//!
//! Source (Flume's `SslContextAwareAbstractSource`): `ssl` false, `keystore`,
//! `keystore-password`, `keystore-type` JKS, `exclude-protocols` SSLv3, `include-protocols`,
//! `exclude-cipher-suites`, `include-cipher-suites`.
//! Sink (Flume's `SSLContextAwareAbstractRpcClient`): `ssl` false, `trust-all-certs` false,
//! `truststore`, `truststore-password`, `truststore-type` JKS, and the same four filters.
//! Lists are space-separated, as Flume splits them.
//!
//! As in Flume 1.9+, a key that is not set falls back to a global setting: the system
//! property (`-Djavax.net.ssl.keyStore`, `keyStorePassword`, `keyStoreType`, `trustStore`,
//! `trustStorePassword`, `trustStoreType`, `-Dflume.ssl.include.protocols`,
//! `exclude.protocols`, `include.cipherSuites`, `exclude.cipherSuites`, comma-separated),
//! else the environment variable Flume's start script maps to it (`FLUME_SSL_KEYSTORE_PATH`,
//! `FLUME_SSL_KEYSTORE_PASSWORD`, `FLUME_SSL_KEYSTORE_TYPE`, `FLUME_SSL_TRUSTSTORE_PATH`,
//! `..._PASSWORD`, `..._TYPE`, `FLUME_SSL_INCLUDE_PROTOCOLS`, `FLUME_SSL_EXCLUDE_PROTOCOLS`,
//! `FLUME_SSL_INCLUDE_CIPHERSUITES`, `FLUME_SSL_EXCLUDE_CIPHERSUITES`).
//!
//! Keystores are read when the agent builds the component, so a missing or unreadable file
//! or a wrong password stops the agent at start with an error naming the component's key and
//! the file (Flume throws `FlumeException` "configured with invalid keystore" there too).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use sluice_flume_rpc::keystore::StoreType;
use sluice_flume_rpc::{ClientTls, ServerTls, StoreFile, TlsError, TlsFilters, Trust};

use crate::conf::{ConfigError, Context};

/// The agent's `-D` system properties, set once by `main` before components are built.
static SYSTEM_PROPERTIES: OnceLock<BTreeMap<String, String>> = OnceLock::new();

/// Records the agent's `-Dkey=value` properties for the global SSL defaults. Only the first
/// call counts (the agent has one set of system properties).
pub fn set_system_properties(props: BTreeMap<String, String>) {
    let _ = SYSTEM_PROPERTIES.set(props);
}

/// A global default: the system property, else the environment variable (Flume's
/// `SSLUtil.initGlobalSSLParameters` copies the variable into the property).
fn global(property: &str, env: &str) -> Option<String> {
    SYSTEM_PROPERTIES
        .get()
        .and_then(|p| p.get(property).cloned())
        .or_else(|| std::env::var(env).ok())
}

/// A key's value, else the global default.
fn value(ctx: &Context, key: &str, property: &str, env: &str) -> Option<String> {
    ctx.get(key)
        .map(str::to_string)
        .or_else(|| global(property, env))
}

/// A space-separated list key, else the comma-separated global default.
fn list(ctx: &Context, key: &str, property: &str, env: &str) -> Vec<String> {
    match ctx.get(key) {
        Some(v) => v.split_whitespace().map(str::to_string).collect(),
        None => global(property, env)
            .map(|v| {
                v.split([',', ' '])
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn filters(ctx: &Context) -> TlsFilters {
    let mut exclude_protocols = vec!["SSLv3".to_string()];
    exclude_protocols.extend(list(
        ctx,
        "exclude-protocols",
        "flume.ssl.exclude.protocols",
        "FLUME_SSL_EXCLUDE_PROTOCOLS",
    ));
    TlsFilters {
        include_protocols: list(
            ctx,
            "include-protocols",
            "flume.ssl.include.protocols",
            "FLUME_SSL_INCLUDE_PROTOCOLS",
        ),
        exclude_protocols,
        include_cipher_suites: list(
            ctx,
            "include-cipher-suites",
            "flume.ssl.include.cipherSuites",
            "FLUME_SSL_INCLUDE_CIPHERSUITES",
        ),
        exclude_cipher_suites: list(
            ctx,
            "exclude-cipher-suites",
            "flume.ssl.exclude.cipherSuites",
            "FLUME_SSL_EXCLUDE_CIPHERSUITES",
        ),
    }
}

/// `keystore-type` / `truststore-type`: JKS or PKCS12 (the file's content decides between
/// the two, as Java 9+ does); anything else is refused, naming the key.
fn store_type(ctx: &Context, key: &str, property: &str, env: &str) -> Result<(), ConfigError> {
    let t = value(ctx, key, property, env).unwrap_or_else(|| "JKS".into());
    match StoreType::parse(&t) {
        Some(_) => Ok(()),
        None => Err(ctx.error(
            key,
            &format!("{t:?} is not supported (JKS or PKCS12; convert others with keytool -importkeystore)"),
        )),
    }
}

/// The `ssl` key.
fn enabled(ctx: &Context) -> Result<bool, ConfigError> {
    ctx.bool("ssl", false)
}

/// The avro source's TLS settings, or `None` without `ssl = true`. `what` names the
/// component in messages ("Source r1").
pub fn server(ctx: &Context, what: &str) -> Result<Option<ServerTls>, ConfigError> {
    if !enabled(ctx)? {
        return Ok(None);
    }
    let Some(path) = value(
        ctx,
        "keystore",
        "javax.net.ssl.keyStore",
        "FLUME_SSL_KEYSTORE_PATH",
    ) else {
        return Err(ctx.error("keystore", "must be specified when SSL is enabled"));
    };
    let Some(password) = value(
        ctx,
        "keystore-password",
        "javax.net.ssl.keyStorePassword",
        "FLUME_SSL_KEYSTORE_PASSWORD",
    ) else {
        return Err(ctx.error("keystore-password", "must be specified when SSL is enabled"));
    };
    store_type(
        ctx,
        "keystore-type",
        "javax.net.ssl.keyStoreType",
        "FLUME_SSL_KEYSTORE_TYPE",
    )?;
    let store = StoreFile {
        path: PathBuf::from(path),
        password: Some(password),
    };
    ServerTls::from_keystore(&store, &filters(ctx))
        .map(Some)
        .map_err(|e| match e {
            TlsError::Settings(_) => ctx.error("ssl", &format!("{what}: {e}")),
            _ => ctx.error(
                "keystore",
                &format!("{what} configured with invalid keystore: {e}"),
            ),
        })
}

/// The avro sink's TLS settings, or `None` without `ssl = true`.
pub fn client(ctx: &Context, what: &str) -> Result<Option<ClientTls>, ConfigError> {
    if !enabled(ctx)? {
        return Ok(None);
    }
    let trust = if ctx.bool("trust-all-certs", false)? {
        // Flume logs this too ("setting TrustManager to accept all server certificates").
        tracing::warn!("{what}: trust-all-certs = true: the server's certificate is not checked");
        Trust::All
    } else {
        match value(
            ctx,
            "truststore",
            "javax.net.ssl.trustStore",
            "FLUME_SSL_TRUSTSTORE_PATH",
        ) {
            Some(path) => {
                store_type(
                    ctx,
                    "truststore-type",
                    "javax.net.ssl.trustStoreType",
                    "FLUME_SSL_TRUSTSTORE_TYPE",
                )?;
                Trust::Store(StoreFile {
                    path: PathBuf::from(path),
                    password: value(
                        ctx,
                        "truststore-password",
                        "javax.net.ssl.trustStorePassword",
                        "FLUME_SSL_TRUSTSTORE_PASSWORD",
                    ),
                })
            }
            None => Trust::System,
        }
    };
    ClientTls::new(&trust, &filters(ctx))
        .map(Some)
        .map_err(|e| match (&e, &trust) {
            (TlsError::Settings(_), _) | (_, Trust::All | Trust::System) => {
                ctx.error("ssl", &format!("{what}: {e}"))
            }
            (_, Trust::Store(_)) => ctx.error(
                "truststore",
                &format!("{what} configured with invalid truststore: {e}"),
            ),
        })
}
