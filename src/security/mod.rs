//! Security: who a connection is, and what it may do. Off by default (PLAINTEXT, no
//! authorizer, everything allowed), configured with Kafka's own property names.
//!
//! Map:
//! - this file: the shared vocabulary — [`Protocol`] (a listener's security protocol),
//!   [`Principal`] (who a connection is, `User:name`), [`Session`] (one connection's
//!   identity, as handlers see it) and [`Props`] (Kafka's `ssl.*`, `sasl.*`,
//!   `listener.name.<l>.*`, authorizer keys, as given in the TOML `[security]` table or as
//!   `KAFKA_*` variables).
//! - [`acl`]: ACLs and the authorizer (Kafka's `StandardAuthorizer` semantics).
//! - [`tls`]: TLS for SSL and SASL_SSL listeners (rustls), reading [`keystore`] (PEM,
//!   PKCS12, and JKS through [`jks`]) and naming clients by certificate
//!   ([`ssl_principal`]).
//! - [`sasl`]: SASL authentication (PLAIN, SCRAM-SHA-256/512, OAUTHBEARER) on SASL listeners.
//! - [`credentials`]: the SCRAM credential store.
//! - [`mechanism`]: the SASL mechanisms; [`scram_keys`]: SCRAM's hashes and key
//!   derivations. Both sit below `sasl` and `credentials`, which use them.
//!
//! The server (`crate::server`) owns the sockets and asks this module how to secure them;
//! API handlers (`crate::api`) read the [`Session`] to authorize. Nothing here depends on
//! either.

pub mod acl;
pub mod credentials;
pub mod jks;
pub mod keystore;
pub mod mechanism;
pub mod sasl;
pub mod scram_keys;
pub mod ssl_principal;
pub mod tls;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

/// A listener's security protocol, as Kafka names them in `listener.security.protocol.map`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// No TLS, no authentication.
    #[default]
    Plaintext,
    /// TLS; the principal comes from the client certificate, if one is asked for.
    Ssl,
    /// SASL authentication over plain TCP.
    SaslPlaintext,
    /// SASL authentication over TLS.
    SaslSsl,
}

impl Protocol {
    /// Parse Kafka's name (`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`, `SASL_SSL`).
    pub fn parse(s: &str) -> Option<Protocol> {
        match s.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(Protocol::Plaintext),
            "SSL" => Some(Protocol::Ssl),
            "SASL_PLAINTEXT" => Some(Protocol::SaslPlaintext),
            "SASL_SSL" => Some(Protocol::SaslSsl),
            _ => None,
        }
    }

    /// Kafka's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Plaintext => "PLAINTEXT",
            Protocol::Ssl => "SSL",
            Protocol::SaslPlaintext => "SASL_PLAINTEXT",
            Protocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Whether connections start with a TLS handshake.
    pub fn tls(self) -> bool {
        matches!(self, Protocol::Ssl | Protocol::SaslSsl)
    }

    /// Whether connections must authenticate with SASL before anything else.
    pub fn sasl(self) -> bool {
        matches!(self, Protocol::SaslPlaintext | Protocol::SaslSsl)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Who a connection is: Kafka's `KafkaPrincipal`, written `Type:name` (`User:alice`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principal {
    /// The principal type; Kafka's authenticators all produce `User`.
    pub kind: String,
    /// The name within that type.
    pub name: String,
}

impl Principal {
    /// A `User:name` principal.
    pub fn user(name: impl Into<String>) -> Principal {
        Principal {
            kind: "User".into(),
            name: name.into(),
        }
    }

    /// `User:ANONYMOUS`, what Kafka calls an unauthenticated connection.
    pub fn anonymous() -> Principal {
        Principal::user("ANONYMOUS")
    }

    /// Parse `Type:name` (the type is required, as in Kafka's `SecurityUtils.parseKafkaPrincipal`).
    pub fn parse(s: &str) -> Option<Principal> {
        let (kind, name) = s.split_once(':')?;
        if kind.is_empty() || name.is_empty() {
            return None;
        }
        Some(Principal {
            kind: kind.to_string(),
            name: name.to_string(),
        })
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.name)
    }
}

/// One connection's identity as handlers see it. The server sets the principal once TLS
/// or SASL has established it; until then it is `User:ANONYMOUS`.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who the connection is.
    pub principal: Principal,
    /// The client's address (ACLs match on its host).
    pub peer: SocketAddr,
    /// The listener's name (`PLAINTEXT`, `SASL_SSL`, `CLIENT`, ...).
    pub listener: String,
    /// The listener's security protocol.
    pub protocol: Protocol,
}

impl Session {
    /// An unauthenticated session on `listener`.
    pub fn new(peer: SocketAddr, listener: String, protocol: Protocol) -> Session {
        Session {
            principal: Principal::anonymous(),
            peer,
            listener,
            protocol,
        }
    }
}

/// Whether a Kafka property belongs to security, and so goes into [`Props`] as it is.
pub fn is_security_key(key: &str) -> bool {
    const EXACT: &[&str] = &[
        "listener.security.protocol.map",
        "security.inter.broker.protocol",
        "authorizer.class.name",
        "super.users",
        "allow.everyone.if.no.acl.found",
        "connections.max.reauth.ms",
        "principal.builder.class",
        // A JAAS file, as the JVM's `-Djava.security.auth.login.config` names it (also
        // taken from KAFKA_OPTS).
        "java.security.auth.login.config",
        // Sluice's own: SCRAM users to create at start-up if missing, like Kafka's
        // `kafka-storage format --add-scram` (security::credentials::parse_seed).
        "sluice.add.scram",
    ];
    EXACT.contains(&key)
        || key.starts_with("ssl.")
        || key.starts_with("sasl.")
        || key.starts_with("listener.name.")
}

/// Whether a property's value is a secret (Kafka's `Password`-typed settings: `*.password`,
/// `sasl.jaas.config` in all its prefixed forms, `ssl.key.password`, ...), never to be logged.
pub fn is_secret_key(key: &str) -> bool {
    key.ends_with("password")
        || key.ends_with("sasl.jaas.config")
        || key.ends_with("ssl.keystore.key")
        || key.ends_with("secret")
        || key.ends_with("sluice.add.scram")
}

/// Kafka's security properties by their Kafka names (`ssl.keystore.location`,
/// `listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config`, `super.users`, ...), from the
/// TOML `[security]` table and the `KAFKA_*` environment.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Props(pub BTreeMap<String, String>);

impl fmt::Debug for Props {
    // A Config printed with {:?} must not show passwords: secret values are `[hidden]`, as
    // Kafka prints its Password-typed settings.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| {
                let v: &str = if is_secret_key(k) { "[hidden]" } else { v };
                (k, v)
            }))
            .finish()
    }
}

impl Props {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Set `key`.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.0.insert(key.into(), value.into());
    }

    /// `key` for `listener`: Kafka's `listener.name.<listener>.<key>` override first, then
    /// the broker-wide `key`. Listener names are matched in lower case, as Kafka does.
    pub fn for_listener(&self, listener: &str, key: &str) -> Option<&str> {
        let scoped = format!("listener.name.{}.{key}", listener.to_ascii_lowercase());
        self.get(&scoped).or_else(|| self.get(key))
    }

    /// The security protocol of listener `name`: `listener.security.protocol.map` if it
    /// names it, else the name itself when it is a protocol name (Kafka's default map),
    /// else PLAINTEXT for an unnamed listener. `None`: a named listener with no protocol.
    pub fn protocol_of(&self, name: Option<&str>) -> Option<Protocol> {
        let Some(name) = name else {
            return Some(Protocol::Plaintext);
        };
        if let Some(map) = self.get("listener.security.protocol.map") {
            let found = map
                .split(',')
                .filter_map(|e| e.split_once(':'))
                .find(|(n, _)| n.trim().eq_ignore_ascii_case(name));
            if let Some((_, p)) = found {
                return Protocol::parse(p);
            }
        }
        Protocol::parse(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_come_from_the_map_or_the_name() {
        let mut p = Props::default();
        assert_eq!(p.protocol_of(None), Some(Protocol::Plaintext));
        assert_eq!(p.protocol_of(Some("SASL_SSL")), Some(Protocol::SaslSsl));
        assert_eq!(p.protocol_of(Some("CLIENT")), None);
        p.set(
            "listener.security.protocol.map",
            "CLIENT:SASL_PLAINTEXT, CONTROLLER:PLAINTEXT",
        );
        assert_eq!(p.protocol_of(Some("CLIENT")), Some(Protocol::SaslPlaintext));
        assert_eq!(p.protocol_of(Some("client")), Some(Protocol::SaslPlaintext));
    }

    #[test]
    fn listener_scoped_keys_win() {
        let mut p = Props::default();
        p.set("ssl.keystore.location", "/all.p12");
        assert_eq!(
            p.for_listener("SSL", "ssl.keystore.location"),
            Some("/all.p12")
        );
        p.set("listener.name.ssl.ssl.keystore.location", "/ssl.p12");
        assert_eq!(
            p.for_listener("SSL", "ssl.keystore.location"),
            Some("/ssl.p12")
        );
    }

    #[test]
    fn debug_output_hides_secrets() {
        let mut p = Props::default();
        p.set("ssl.keystore.password", "hunter2");
        p.set(
            "listener.name.sasl_ssl.plain.sasl.jaas.config",
            "user_a=\"hunter2\"",
        );
        p.set("ssl.keystore.location", "/k.p12");
        let text = format!("{p:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("/k.p12"), "{text}");
    }

    #[test]
    fn principals_print_and_parse() {
        assert_eq!(Principal::anonymous().to_string(), "User:ANONYMOUS");
        assert_eq!(
            Principal::parse("User:alice"),
            Some(Principal::user("alice"))
        );
        assert_eq!(Principal::parse("alice"), None);
    }
}
