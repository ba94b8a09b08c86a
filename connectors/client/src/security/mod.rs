//! Connection security: which of Kafka's four `security.protocol`s a connection speaks, the
//! SASL credentials and the TLS settings, parsed from Kafka's (and librdkafka's) client keys.
//! TLS itself is `tls.rs` (rustls), the SASL tokens are `sasl.rs`, the SCRAM mechanism's
//! messages are `scram.rs` and Kafka's JAAS line is read by `jaas.rs`. Sockets, the order of
//! the steps (TCP, TLS, ApiVersions, SASL) and the SASL requests live in `connection.rs`;
//! nothing here depends on it.

mod jaas;
pub(crate) mod sasl;
mod scram;
mod tls;

use std::collections::HashMap;
use std::fmt;

pub use jaas::JaasConfig;
pub use tls::TlsConfig;

/// Every client key [`Security::from_properties`] reads, so callers that pass a whole
/// property set through can tell which keys took effect.
pub const SECURITY_KEYS: &[&str] = &[
    "security.protocol",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.jaas.config",
    "sasl.username",
    "sasl.password",
    "ssl.truststore.location",
    "ssl.truststore.type",
    "ssl.truststore.certificates",
    "ssl.truststore.password",
    "ssl.ca.location",
    "ssl.keystore.location",
    "ssl.keystore.type",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.keystore.password",
    "ssl.key.password",
    "ssl.key.location",
    "ssl.certificate.location",
    "ssl.endpoint.identification.algorithm",
];

/// A client setting that cannot be used, naming the key (never a secret value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    /// The Kafka client key.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(key: &str, message: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

/// Kafka's `security.protocol`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SecurityProtocol {
    /// No TLS, no authentication (Kafka's default).
    #[default]
    Plaintext,
    /// TLS, no SASL.
    Ssl,
    /// SASL over plain TCP.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Whether connections start with a TLS handshake.
    pub fn uses_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    /// Whether connections authenticate with SASL after negotiating versions.
    pub fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

impl std::str::FromStr for SecurityProtocol {
    type Err = String;

    /// Kafka's names, any case (Kafka upper-cases the value before looking it up).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Ok(Self::Plaintext),
            "SSL" => Ok(Self::Ssl),
            "SASL_PLAINTEXT" => Ok(Self::SaslPlaintext),
            "SASL_SSL" => Ok(Self::SaslSsl),
            other => Err(format!(
                "{other:?} is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
            )),
        }
    }
}

/// The SASL mechanisms this client implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// RFC 4616: user name and password in the clear (use it over TLS).
    Plain,
    /// RFC 5802/7677 SCRAM with SHA-256.
    ScramSha256,
    /// RFC 5802 SCRAM with SHA-512.
    ScramSha512,
}

impl SaslMechanism {
    /// The name sent in SaslHandshake, as Kafka spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

impl fmt::Display for SaslMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for SaslMechanism {
    type Err = String;

    /// Kafka's mechanism names. Mechanism names are case-sensitive in Kafka (they are
    /// compared with the broker's `sasl.enabled.mechanisms`), so they are matched exactly.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "PLAIN" => Ok(Self::Plain),
            "SCRAM-SHA-256" => Ok(Self::ScramSha256),
            "SCRAM-SHA-512" => Ok(Self::ScramSha512),
            "GSSAPI" | "OAUTHBEARER" => Err(format!(
                "{} is not supported by sluice-client (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)",
                s.trim()
            )),
            other => Err(format!(
                "{other:?} is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
            )),
        }
    }
}

/// SASL mechanism and credentials. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslConfig {
    /// The mechanism.
    pub mechanism: SaslMechanism,
    /// The user name.
    pub username: String,
    password: String,
}

impl SaslConfig {
    /// Credentials for `mechanism`.
    pub fn new(
        mechanism: SaslMechanism,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        Self {
            mechanism,
            username: username.into(),
            password: password.into(),
        }
    }

    /// The password (for the mechanisms only).
    pub(crate) fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for SaslConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslConfig")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// How connections are secured: protocol, SASL credentials (for `SASL_*`) and TLS settings
/// (for `SSL` and `SASL_SSL`). The default is Kafka's: PLAINTEXT.
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// Kafka's `security.protocol`.
    pub protocol: SecurityProtocol,
    /// Set exactly when `protocol` uses SASL.
    pub sasl: Option<SaslConfig>,
    /// Set exactly when `protocol` uses TLS.
    pub tls: Option<TlsConfig>,
}

impl Security {
    /// Reads Kafka's client security keys (see [`SECURITY_KEYS`]) from a property set,
    /// ignoring every other key, and loads the certificate files they name (as Kafka's
    /// client does when it is built, so a missing file fails at start, not at first send).
    ///
    /// - `security.protocol`: PLAINTEXT (default), SSL, SASL_PLAINTEXT, SASL_SSL.
    /// - `sasl.mechanism` (librdkafka: `sasl.mechanisms`): PLAIN, SCRAM-SHA-256 or
    ///   SCRAM-SHA-512. Kafka's default is GSSAPI, which this client lacks, so a SASL
    ///   protocol without a mechanism is an error rather than a silent change of mechanism.
    /// - `sasl.jaas.config` (a PlainLoginModule or ScramLoginModule line with `username`
    ///   and `password`), or librdkafka's `sasl.username` and `sasl.password`.
    /// - TLS: see [`TlsConfig::from_properties`].
    pub fn from_properties<K, V>(
        props: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, ConfigError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let props: HashMap<String, String> = props
            .into_iter()
            .map(|(k, v)| (k.as_ref().trim().to_owned(), v.as_ref().to_owned()))
            .collect();
        let get = |k: &str| props.get(k).map(String::as_str);
        let protocol = match get("security.protocol") {
            None => SecurityProtocol::Plaintext,
            Some(p) => p
                .parse()
                .map_err(|m| ConfigError::new("security.protocol", m))?,
        };
        let sasl = if protocol.uses_sasl() {
            Some(sasl_config(&get)?)
        } else {
            None
        };
        let tls = if protocol.uses_tls() {
            Some(TlsConfig::from_properties(&get)?)
        } else {
            None
        };
        Ok(Self {
            protocol,
            sasl,
            tls,
        })
    }
}

/// The mechanism and credentials of a SASL protocol.
fn sasl_config<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Result<SaslConfig, ConfigError> {
    let (key, value) = match (get("sasl.mechanism"), get("sasl.mechanisms")) {
        (Some(m), _) => ("sasl.mechanism", m),
        (None, Some(m)) => ("sasl.mechanisms", m),
        (None, None) => {
            return Err(ConfigError::new(
                "sasl.mechanism",
                "not set; Kafka's default, GSSAPI, is not supported by sluice-client \
                 (set PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)",
            ))
        }
    };
    let mechanism: SaslMechanism = value.parse().map_err(|m| ConfigError::new(key, m))?;
    // Kafka's `sasl.jaas.config` wins over librdkafka's pair when both are given.
    if let Some(line) = get("sasl.jaas.config").filter(|l| !l.trim().is_empty()) {
        let jaas = JaasConfig::parse(line).map_err(|m| ConfigError::new("sasl.jaas.config", m))?;
        let expected = match mechanism {
            SaslMechanism::Plain => "PlainLoginModule",
            SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => "ScramLoginModule",
        };
        if !jaas.login_module.ends_with(expected) {
            // Kafka's login modules only hand the options to the mechanism, so a mismatch
            // still authenticates there; say so, since it is usually a copy-paste slip.
            tracing::warn!(
                "sasl.jaas.config uses {} with sasl.mechanism {mechanism}; expected {expected}",
                jaas.login_module
            );
        }
        let username = jaas.option("username").ok_or_else(|| {
            ConfigError::new("sasl.jaas.config", "has no username=\"...\" option")
        })?;
        let password = jaas.option("password").ok_or_else(|| {
            ConfigError::new("sasl.jaas.config", "has no password=\"...\" option")
        })?;
        return Ok(SaslConfig::new(mechanism, username, password));
    }
    match (get("sasl.username"), get("sasl.password")) {
        (Some(u), Some(p)) => Ok(SaslConfig::new(mechanism, u, p)),
        (Some(_), None) => Err(ConfigError::new("sasl.password", "not set")),
        _ => Err(ConfigError::new(
            "sasl.jaas.config",
            format!(
                "not set (nor sasl.username and sasl.password): {mechanism} needs a user name \
                 and password"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Result<Security, ConfigError> {
        Security::from_properties(pairs.iter().copied())
    }

    #[test]
    fn default_is_plaintext() {
        let s = props(&[("acks", "all")]).unwrap();
        assert_eq!(s.protocol, SecurityProtocol::Plaintext);
        assert!(s.sasl.is_none() && s.tls.is_none());
    }

    #[test]
    fn sasl_plaintext_with_jaas_line() {
        let s = props(&[
            ("security.protocol", "sasl_plaintext"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.scram.ScramLoginModule required \
                 username=\"alice\" password=\"alice-secret\";",
            ),
        ])
        .unwrap();
        assert_eq!(s.protocol, SecurityProtocol::SaslPlaintext);
        let sasl = s.sasl.unwrap();
        assert_eq!(sasl.mechanism, SaslMechanism::ScramSha512);
        assert_eq!(sasl.username, "alice");
        assert_eq!(sasl.password(), "alice-secret");
        assert!(!format!("{sasl:?}").contains("alice-secret"));
    }

    #[test]
    fn librdkafka_names_work_too() {
        let s = props(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanisms", "PLAIN"),
            ("sasl.username", "bob"),
            ("sasl.password", "pw"),
        ])
        .unwrap();
        let sasl = s.sasl.unwrap();
        assert_eq!(
            (sasl.mechanism, sasl.username.as_str(), sasl.password()),
            (SaslMechanism::Plain, "bob", "pw")
        );
    }

    #[test]
    fn bad_values_name_the_key_and_not_the_secret() {
        let e = props(&[("security.protocol", "TLS")]).unwrap_err();
        assert_eq!(e.key, "security.protocol");
        let e = props(&[("security.protocol", "SASL_PLAINTEXT")]).unwrap_err();
        assert_eq!(e.key, "sasl.mechanism");
        assert!(e.message.contains("GSSAPI"), "{e}");
        let e = props(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "OAUTHBEARER"),
        ])
        .unwrap_err();
        assert!(e.message.contains("not supported"), "{e}");
        let e = props(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "PLAIN"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required password=\"s3cret\";",
            ),
        ])
        .unwrap_err();
        assert_eq!(e.key, "sasl.jaas.config");
        assert!(!e.to_string().contains("s3cret"), "{e}");
        let e = props(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "PLAIN"),
        ])
        .unwrap_err();
        assert_eq!(e.key, "sasl.jaas.config");
    }

    #[test]
    fn sasl_keys_are_ignored_without_a_sasl_protocol() {
        let s = props(&[("sasl.mechanism", "PLAIN"), ("sasl.username", "x")]).unwrap();
        assert!(s.sasl.is_none());
    }
}
