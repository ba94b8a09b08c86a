//! TLS under the Netty framing: what Flume's avro source and sink do with `ssl = true`
//! (Netty's `SslHandler` between the socket and Avro's frame codec). [`ServerTls`] is built
//! from a keystore, [`ClientTls`] from a truststore or `trust-all-certs`; both with Flume's
//! protocol and cipher-suite filters.
//!
//! rustls speaks TLSv1.2 and TLSv1.3 — what Java 11+ enables by default too (TLSv1 and
//! TLSv1.1 are in its `jdk.tls.disabledAlgorithms`). Protocol and suite names are Java's
//! (`TLSv1.3`, `TLS_AES_128_GCM_SHA256`, `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`).
//!
//! Server certificates are checked as Flume's `NettyAvroRpcClient` checks them: the chain
//! must lead to a certificate of the truststore, and the host name is **not** compared with
//! the certificate (Flume creates its `SSLEngine` without a peer host and with no endpoint
//! identification), so configs that work with Flume work here.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme, SupportedProtocolVersion};

use crate::keystore;

/// The protocol and cipher-suite filters Flume applies to the JVM's enabled lists: a name is
/// kept when `include` is empty or holds it, and `exclude` does not. Flume's default
/// `exclude-protocols` is `SSLv3`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFilters {
    /// `include-protocols`.
    pub include_protocols: Vec<String>,
    /// `exclude-protocols`.
    pub exclude_protocols: Vec<String>,
    /// `include-cipher-suites`.
    pub include_cipher_suites: Vec<String>,
    /// `exclude-cipher-suites`.
    pub exclude_cipher_suites: Vec<String>,
}

/// A store file and its password, as the `keystore*` / `truststore*` keys give them.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreFile {
    /// The file.
    pub path: PathBuf,
    /// Its password (`None`: a truststore read without checking its integrity, as Java does).
    pub password: Option<String>,
}

impl fmt::Debug for StoreFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreFile")
            .field("path", &self.path)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Which server certificates a client accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// `trust-all-certs = true`: any certificate (the handshake is still checked against the
    /// key the certificate carries).
    All,
    /// `truststore`: chains that lead to one of its certificates.
    Store(StoreFile),
    /// Neither: the system's CA certificates (Java uses its own `cacerts` here).
    System,
}

/// Why TLS settings could not be built. The messages name the file or the filter.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The keystore or truststore could not be read.
    #[error(transparent)]
    Keystore(#[from] keystore::KeystoreError),
    /// The store was read but does not hold what is needed.
    #[error("{path}: {message}")]
    Store {
        /// The file.
        path: PathBuf,
        /// What is missing or wrong.
        message: String,
    },
    /// The filters leave nothing, or rustls refused the combination.
    #[error("{0}")]
    Settings(String),
}

/// A server's TLS settings (cheap to clone).
#[derive(Clone)]
pub struct ServerTls(pub(crate) Arc<rustls::ServerConfig>);

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerTls")
    }
}

/// A client's TLS settings (cheap to clone).
#[derive(Clone)]
pub struct ClientTls(pub(crate) Arc<rustls::ClientConfig>);

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientTls")
    }
}

impl ServerTls {
    /// Reads `store` (JKS or PKCS12, told by its content) and serves its first private key
    /// entry (by alias) with its chain. Flume uses the store password for the key too.
    pub fn from_keystore(store: &StoreFile, filters: &TlsFilters) -> Result<ServerTls, TlsError> {
        let ks = keystore::load(&store.path, store.password.as_deref())?;
        let mut keys = ks.keys;
        keys.sort_by(|a, b| a.alias.cmp(&b.alias));
        let Some(entry) = keys.into_iter().next() else {
            return Err(TlsError::Store {
                path: store.path.clone(),
                message: "holds no private key entry (a keystore for a TLS server needs one)"
                    .into(),
            });
        };
        if entry.chain.is_empty() {
            return Err(TlsError::Store {
                path: store.path.clone(),
                message: format!("key entry {:?} has no certificate", entry.alias),
            });
        }
        let (provider, versions) = filtered(filters)?;
        let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&versions)
            .map_err(|e| TlsError::Settings(format!("TLS protocols and cipher suites: {e}")))?
            .with_no_client_auth()
            .with_single_cert(entry.chain, entry.key)
            .map_err(|e| TlsError::Store {
                path: store.path.clone(),
                message: format!("key entry {:?} is not usable for TLS: {e}", entry.alias),
            })?;
        Ok(ServerTls(Arc::new(cfg)))
    }
}

impl ClientTls {
    /// Client settings trusting as `trust` says.
    pub fn new(trust: &Trust, filters: &TlsFilters) -> Result<ClientTls, TlsError> {
        let (provider, versions) = filtered(filters)?;
        let algs = provider.signature_verification_algorithms;
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&versions)
            .map_err(|e| TlsError::Settings(format!("TLS protocols and cipher suites: {e}")))?;
        let roots = match trust {
            Trust::All => None,
            Trust::Store(store) => {
                let ks = keystore::load(&store.path, store.password.as_deref())?;
                let mut roots = RootCertStore::empty();
                // Java's TrustManagerFactory trusts the trusted-certificate entries and the
                // certificates of key entries alike.
                let certs = ks.trusted.into_iter().chain(
                    ks.keys
                        .into_iter()
                        .flat_map(|k| k.chain.into_iter().take(1)),
                );
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(TlsError::Store {
                        path: store.path.clone(),
                        message: "holds no certificate to trust".into(),
                    });
                }
                Some(roots)
            }
            Trust::System => {
                let found = rustls_native_certs::load_native_certs();
                let mut roots = RootCertStore::empty();
                let (added, _) = roots.add_parsable_certificates(found.certs);
                if added == 0 {
                    return Err(TlsError::Settings(
                        "no truststore is set and no system CA certificates were found \
                         (set truststore, or trust-all-certs = true)"
                            .into(),
                    ));
                }
                Some(roots)
            }
        };
        let verifier = Arc::new(ChainOnlyVerifier {
            roots: roots.map(Arc::new),
            algs,
        });
        let cfg = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(ClientTls(Arc::new(cfg)))
    }

    /// The name the client sends and rustls needs: the host as a DNS name or IP address
    /// (not compared with the certificate; see the module comment).
    pub(crate) fn server_name(host: &str) -> ServerName<'static> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        // A host rustls will not take as a DNS name (an underscore, say) still resolves and
        // connects; since the name is never checked, an IP-address name (which sends no SNI,
        // like Flume's SSLEngine without a peer host) stands in for it.
        ServerName::try_from(host.to_string())
            .unwrap_or_else(|_| ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()))
    }
}

/// Java's name for a rustls suite: TLS 1.3 suites drop rustls' `TLS13_` prefix.
fn java_suite_name(suite: &rustls::SupportedCipherSuite) -> String {
    let name = suite
        .suite()
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{:?}", suite.suite()));
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name,
    }
}

fn kept(name: &str, include: &[String], exclude: &[String]) -> bool {
    (include.is_empty() || include.iter().any(|i| i == name)) && !exclude.iter().any(|e| e == name)
}

/// rustls' ring provider. Deprecated since rustls 0.23.48 only because ring has no
/// post-quantum key exchange; Java 17 peers offer none either, and the alternative provider
/// (aws-lc-rs) needs cmake to build.
#[allow(deprecated)]
fn ring_provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The ring provider with Flume's suite filter applied, and the protocol versions left.
fn filtered(
    f: &TlsFilters,
) -> Result<(CryptoProvider, Vec<&'static SupportedProtocolVersion>), TlsError> {
    let versions: Vec<&'static SupportedProtocolVersion> = [
        ("TLSv1.3", &rustls::version::TLS13),
        ("TLSv1.2", &rustls::version::TLS12),
    ]
    .into_iter()
    .filter(|(name, _)| kept(name, &f.include_protocols, &f.exclude_protocols))
    .map(|(_, v)| v)
    .collect();
    if versions.is_empty() {
        return Err(TlsError::Settings(format!(
            "include-protocols {:?} / exclude-protocols {:?} leave no protocol \
             (sluice-flume offers TLSv1.3 and TLSv1.2)",
            f.include_protocols, f.exclude_protocols
        )));
    }
    let mut provider = ring_provider();
    let all: Vec<String> = provider.cipher_suites.iter().map(java_suite_name).collect();
    provider.cipher_suites.retain(|s| {
        kept(
            &java_suite_name(s),
            &f.include_cipher_suites,
            &f.exclude_cipher_suites,
        )
    });
    if provider.cipher_suites.is_empty() {
        return Err(TlsError::Settings(format!(
            "include-cipher-suites {:?} / exclude-cipher-suites {:?} leave no cipher suite \
             (sluice-flume offers {})",
            f.include_cipher_suites,
            f.exclude_cipher_suites,
            all.join(" ")
        )));
    }
    Ok((provider, versions))
}

/// Checks the chain against the roots (or nothing, for `trust-all-certs`) and the handshake
/// signatures, but not the host name: see the module comment.
#[derive(Debug)]
struct ChainOnlyVerifier {
    roots: Option<Arc<RootCertStore>>,
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ChainOnlyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.algs.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suite_names_are_javas() {
        let names: Vec<String> = ring_provider()
            .cipher_suites
            .iter()
            .map(java_suite_name)
            .collect();
        assert!(
            names.contains(&"TLS_AES_128_GCM_SHA256".to_string()),
            "{names:?}"
        );
        assert!(
            names.contains(&"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".to_string()),
            "{names:?}"
        );
    }

    #[test]
    fn filters_follow_flume() {
        let only12 = TlsFilters {
            include_protocols: vec!["TLSv1.2".into()],
            exclude_protocols: vec!["SSLv3".into()],
            ..TlsFilters::default()
        };
        let (_, v) = filtered(&only12).unwrap();
        assert_eq!(v.len(), 1);
        let none = TlsFilters {
            exclude_protocols: vec!["TLSv1.2".into(), "TLSv1.3".into()],
            ..TlsFilters::default()
        };
        let e = filtered(&none).unwrap_err().to_string();
        assert!(e.contains("exclude-protocols"), "{e}");
        let suites = TlsFilters {
            include_cipher_suites: vec!["TLS_RSA_WITH_NULL_SHA".into()],
            ..TlsFilters::default()
        };
        let e = filtered(&suites).unwrap_err().to_string();
        assert!(e.contains("TLS_AES_256_GCM_SHA384"), "{e}");
    }
}
