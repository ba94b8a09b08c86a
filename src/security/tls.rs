//! TLS for SSL and SASL_SSL listeners, with rustls (the `ring` provider). One
//! [`TlsAcceptor`] per listener, built at start-up from Kafka's properties as that
//! listener sees them ([`Props::for_listener`]):
//!
//! - `ssl.keystore.type/location/password`, `ssl.key.password`,
//!   `ssl.keystore.certificate.chain`, `ssl.keystore.key` (see [`super::keystore`]);
//! - `ssl.truststore.type/location/password`, `ssl.truststore.certificates`;
//! - `ssl.client.auth` (`none`, Kafka's default; `requested`; `required`);
//! - `ssl.enabled.protocols` (`TLSv1.2`, `TLSv1.3`) and `ssl.cipher.suites`;
//! - `ssl.principal.mapping.rules` (see [`super::ssl_principal`]).
//!
//! The server owns the sockets: it calls [`TlsAcceptor::handshake`] on each accepted
//! connection, then [`TlsAcceptor::principal`].

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::keystore::{self, ConfigError, ListenerProps};
use super::ssl_principal::{self, PrincipalMapper};
use super::{Principal, Props, Protocol};

/// How long a client gets to finish the TLS handshake. Kafka bounds it with
/// `connections.max.idle.ms` (10 minutes); a shorter bound keeps a connection slot from
/// being held by a client that never speaks TLS.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for (Kafka's default).
    None,
    /// A certificate is asked for; a client without one is `User:ANONYMOUS`.
    Requested,
    /// A client without a trusted certificate fails the handshake.
    Required,
}

/// A TLS listener's handshake settings and principal mapping.
pub struct TlsAcceptor {
    acceptor: tokio_rustls::TlsAcceptor,
    mapper: PrincipalMapper,
    client_auth: ClientAuth,
}

impl std::fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("client_auth", &self.client_auth)
            .finish_non_exhaustive()
    }
}

impl TlsAcceptor {
    /// Build the acceptor of `listener` from Kafka's properties. Fails with the key at
    /// fault (and the file) when a store is missing, unreadable or the password is wrong.
    ///
    /// On a SASL_SSL listener, as in Kafka, only the listener-prefixed
    /// `listener.name.<l>.ssl.client.auth` asks for client certificates; the broker-wide
    /// key applies to SSL listeners alone.
    pub fn build(
        props: &Props,
        listener: &str,
        protocol: Protocol,
    ) -> Result<TlsAcceptor, ConfigError> {
        let p = ListenerProps::new(props, listener);
        let scoped_auth = format!(
            "listener.name.{}.ssl.client.auth",
            listener.to_ascii_lowercase()
        );
        let client_auth = if protocol == Protocol::SaslSsl && props.get(&scoped_auth).is_none() {
            if props
                .get("ssl.client.auth")
                .is_some_and(|v| !v.trim().eq_ignore_ascii_case("none"))
            {
                tracing::warn!(
                    listener,
                    "ssl.client.auth applies only to SSL listeners; set {scoped_auth} to ask SASL_SSL clients for certificates (Kafka does the same)"
                );
            }
            None
        } else {
            p.value("ssl.client.auth")
        };
        let client_auth = match client_auth.map(|v| v.trim().to_ascii_lowercase()) {
            None => ClientAuth::None,
            Some(v) => match v.as_str() {
                "none" => ClientAuth::None,
                "requested" => ClientAuth::Requested,
                "required" => ClientAuth::Required,
                _ => {
                    return Err(ConfigError {
                        key: p.name("ssl.client.auth"),
                        msg: format!("'{v}' is not required, requested or none"),
                    })
                }
            },
        };
        let mapper =
            PrincipalMapper::parse(p.value("ssl.principal.mapping.rules")).map_err(|msg| {
                ConfigError {
                    key: p.name("ssl.principal.mapping.rules"),
                    msg,
                }
            })?;
        let identity = keystore::load_identity(p)?;
        let trusted = keystore::load_trusted(p)?;
        let provider = Arc::new(provider(p)?);
        let versions = versions(p)?;
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&versions)
            .map_err(|e| ConfigError {
                key: p.name("ssl.enabled.protocols"),
                msg: e.to_string(),
            })?;
        let builder = if client_auth == ClientAuth::None {
            builder.with_no_client_auth()
        } else {
            let Some(certs) = trusted else {
                return Err(ConfigError {
                    key: p.name("ssl.truststore.location"),
                    msg: format!(
                        "ssl.client.auth={} needs a truststore: set ssl.truststore.location or ssl.truststore.certificates",
                        if client_auth == ClientAuth::Required { "required" } else { "requested" }
                    ),
                });
            };
            let mut roots = RootCertStore::empty();
            for c in certs {
                roots.add(c).map_err(|e| ConfigError {
                    key: p.name("ssl.truststore.location"),
                    msg: format!("unusable trusted certificate: {e}"),
                })?;
            }
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let v = if client_auth == ClientAuth::Requested {
                v.allow_unauthenticated()
            } else {
                v
            };
            let verifier = v.build().map_err(|e| ConfigError {
                key: p.name("ssl.truststore.location"),
                msg: format!("cannot verify clients with this truststore: {e}"),
            })?;
            builder.with_client_cert_verifier(verifier)
        };
        let config = builder
            .with_single_cert(identity.chain, identity.key)
            .map_err(|e| ConfigError {
                key: key_source(p),
                msg: format!("the key and certificate chain are not usable: {e}"),
            })?;
        Ok(TlsAcceptor {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            mapper,
            client_auth,
        })
    }

    /// The listener's `ssl.client.auth`.
    pub fn client_auth(&self) -> ClientAuth {
        self.client_auth
    }

    /// Run the server side of the handshake, bounded by [`HANDSHAKE_TIMEOUT`].
    pub async fn handshake(&self, tcp: TcpStream) -> io::Result<TlsStream<TcpStream>> {
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(tcp)).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no TLS handshake within {} s", HANDSHAKE_TIMEOUT.as_secs()),
            )),
        }
    }

    /// The principal of a connection after the handshake: from the client certificate's
    /// subject DN through `ssl.principal.mapping.rules`, or `User:ANONYMOUS` without one,
    /// as Kafka's `DefaultKafkaPrincipalBuilder` does. `Err`: no mapping rule applies
    /// (Kafka fails the authentication).
    pub fn principal(&self, stream: &TlsStream<TcpStream>) -> Result<Principal, String> {
        let (_, conn) = stream.get_ref();
        match conn.peer_certificates().and_then(|c| c.first()) {
            None => Ok(Principal::anonymous()),
            Some(leaf) => {
                let dn = ssl_principal::subject_dn(leaf.as_ref())?;
                Ok(Principal::user(self.mapper.name(&dn)?))
            }
        }
    }
}

/// The key to blame for an unusable key or chain.
fn key_source(p: ListenerProps<'_>) -> String {
    if p.value("ssl.keystore.key").is_some() {
        p.name("ssl.keystore.key")
    } else {
        p.name("ssl.keystore.location")
    }
}

/// `ssl.enabled.protocols`: Kafka's default is TLSv1.2 and TLSv1.3; older versions are
/// not offered by rustls and are skipped with a warning.
fn versions(
    p: ListenerProps<'_>,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, ConfigError> {
    let Some(list) = p.value("ssl.enabled.protocols") else {
        return Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12]);
    };
    let mut out = Vec::new();
    for v in list.split(',').map(str::trim).filter(|v| !v.is_empty()) {
        match v {
            "TLSv1.3" => out.push(&rustls::version::TLS13),
            "TLSv1.2" => out.push(&rustls::version::TLS12),
            other => tracing::warn!(
                key = %p.name("ssl.enabled.protocols"),
                "TLS version {other} is not supported; skipped"
            ),
        }
    }
    if out.is_empty() {
        return Err(ConfigError {
            key: p.name("ssl.enabled.protocols"),
            msg: format!("'{list}' names no supported TLS version (TLSv1.2, TLSv1.3)"),
        });
    }
    Ok(out)
}

/// The `ring` provider, with its cipher suites cut down to `ssl.cipher.suites` when set.
/// Suites go by their IANA names, as Java names them (`TLS_AES_128_GCM_SHA256`,
/// `TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384`).
fn provider(p: ListenerProps<'_>) -> Result<rustls::crypto::CryptoProvider, ConfigError> {
    // rustls 0.23.48 deprecates the ring provider for lacking post-quantum key exchange;
    // aws-lc-rs, which has it, needs cmake to build. Classical ECDHE is what Kafka's Java
    // clients negotiate today.
    #[allow(deprecated)]
    let mut provider = rustls::crypto::ring::default_provider();
    let Some(list) = p.value("ssl.cipher.suites") else {
        return Ok(provider);
    };
    let wanted: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let name = |s: &rustls::SupportedCipherSuite| {
        let n = s.suite().as_str().unwrap_or_default();
        n.strip_prefix("TLS13_")
            .map_or_else(|| n.to_string(), |rest| format!("TLS_{rest}"))
    };
    for w in &wanted {
        if !provider.cipher_suites.iter().any(|s| name(s) == *w) {
            tracing::warn!(key = %p.name("ssl.cipher.suites"), "cipher suite {w} is not supported; skipped");
        }
    }
    provider
        .cipher_suites
        .retain(|s| wanted.contains(&name(s).as_str()));
    if provider.cipher_suites.is_empty() {
        return Err(ConfigError {
            key: p.name("ssl.cipher.suites"),
            msg: format!("'{list}' names no supported cipher suite"),
        });
    }
    Ok(provider)
}
