//! TLS settings from Kafka's `ssl.*` client keys (and librdkafka's names for the same
//! things), built into a rustls client config once, when the settings are read. Certificates
//! and keys are PEM; Java's JKS and PKCS12 stores are refused with a hint to convert them.
//! The handshake itself happens in `connection.rs` through `tokio-rustls`.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use super::ConfigError;

/// TLS settings of a client: trusted roots, an optional client certificate, and whether the
/// broker's host name is checked. Cheap to clone.
#[derive(Clone)]
pub struct TlsConfig {
    config: Arc<rustls::ClientConfig>,
    verify_hostname: bool,
    client_auth: bool,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("verify_hostname", &self.verify_hostname)
            .field("client_auth", &self.client_auth)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Reads the TLS keys:
    ///
    /// - Trusted certificates: `ssl.truststore.certificates` (inline PEM), or
    ///   `ssl.truststore.location` (`ssl.truststore.type` PEM), or librdkafka's
    ///   `ssl.ca.location` (a PEM file or a directory of them); with none of them, the
    ///   system's roots, as Java falls back to the JVM's `cacerts`.
    /// - Client certificate (for brokers with `ssl.client.auth=required`):
    ///   `ssl.keystore.certificate.chain` + `ssl.keystore.key` (inline PEM), or
    ///   `ssl.keystore.location` (`ssl.keystore.type` PEM: key and chain in one file), or
    ///   librdkafka's `ssl.certificate.location` + `ssl.key.location`.
    /// - `ssl.endpoint.identification.algorithm`: `https` (Kafka's default) checks that the
    ///   broker's certificate names the host connected to; an empty value skips that check
    ///   (the chain is still verified), as Kafka does.
    pub(crate) fn from_properties<'a>(
        get: &impl Fn(&str) -> Option<&'a str>,
    ) -> Result<Self, ConfigError> {
        let provider = Arc::new(ring_provider());
        let roots = Arc::new(root_store(get)?);
        let verify_hostname = match get("ssl.endpoint.identification.algorithm").map(str::trim) {
            None => true,
            Some(a) if a.eq_ignore_ascii_case("https") => true,
            Some("") => false,
            Some(other) => {
                return Err(ConfigError::new(
                    "ssl.endpoint.identification.algorithm",
                    format!("{other:?} is not https or empty"),
                ))
            }
        };
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(&provider))
            .build()
            .map_err(|e| ConfigError::new("ssl.truststore.location", e.to_string()))?;
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| ConfigError::new("ssl.protocol", e.to_string()))?;
        let builder = if verify_hostname {
            builder.with_webpki_verifier(webpki)
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki)))
        };
        let identity = client_identity(get)?;
        let client_auth = identity.is_some();
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some((key_name, chain, key)) => builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| ConfigError::new(key_name, e.to_string()))?,
        };
        Ok(Self {
            config: Arc::new(config),
            verify_hostname,
            client_auth,
        })
    }

    /// The rustls config connections use.
    pub(crate) fn rustls(&self) -> Arc<rustls::ClientConfig> {
        Arc::clone(&self.config)
    }

    /// Whether the broker's certificate must name the host connected to.
    pub fn verifies_hostname(&self) -> bool {
        self.verify_hostname
    }

    /// Whether the client presents a certificate.
    pub fn has_client_certificate(&self) -> bool {
        self.client_auth
    }
}

/// rustls' `ring` provider. rustls 0.23.48 deprecated it because it lacks the post-quantum
/// key exchange (X25519MLKEM768) that aws-lc-rs offers; aws-lc-rs needs cmake and a C
/// toolchain setup to build, and Kafka's JVM brokers offer only classic groups (x25519,
/// secp256r1, ...) by default, which ring has.
#[allow(deprecated)]
fn ring_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// Refuses store types other than PEM; with no type given, accepts a file that is PEM
/// (Kafka's default type is JKS, so an untyped PEM file is taken at its word).
fn check_store_type<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
    type_key: &str,
    location_key: &str,
    bytes: &[u8],
) -> Result<(), ConfigError> {
    let is_pem = bytes.windows(11).any(|w| w == b"-----BEGIN ");
    match get(type_key).map(str::trim) {
        Some(t) if t.eq_ignore_ascii_case("PEM") => Ok(()),
        Some(t) if !t.is_empty() => Err(ConfigError::new(
            type_key,
            format!(
                "{t} stores are not supported by sluice-client; convert the store to PEM \
                 (keytool -exportcert -rfc, or openssl pkcs12 -nodes) and set {type_key}=PEM"
            ),
        )),
        _ if is_pem => Ok(()),
        _ => Err(ConfigError::new(
            location_key,
            format!(
                "is not a PEM file (JKS and PKCS12 stores are not supported by \
                 sluice-client; convert it to PEM and set {type_key}=PEM)"
            ),
        )),
    }
}

fn read_file(key: &str, path: &str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path.trim())
        .map_err(|e| ConfigError::new(key, format!("cannot read {path}: {e}")))
}

fn pem_certs(key: &str, bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError::new(key, format!("bad PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(ConfigError::new(key, "holds no PEM certificate"));
    }
    Ok(certs)
}

fn pem_key(key: &str, bytes: &[u8]) -> Result<PrivateKeyDer<'static>, ConfigError> {
    PrivateKeyDer::from_pem_slice(bytes).map_err(|e| {
        ConfigError::new(
            key,
            format!(
                "no usable PEM private key ({e}); encrypted keys are not supported by \
                 sluice-client, store the key unencrypted (PKCS#8, PKCS#1 or SEC1)"
            ),
        )
    })
}

/// The trusted roots.
fn root_store<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Result<RootCertStore, ConfigError> {
    let nonempty = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    let (key, certs) = if let Some(pem) = nonempty("ssl.truststore.certificates") {
        let key = "ssl.truststore.certificates";
        (key, pem_certs(key, pem.as_bytes())?)
    } else if let Some(path) = nonempty("ssl.truststore.location") {
        let key = "ssl.truststore.location";
        let bytes = read_file(key, path)?;
        check_store_type(get, "ssl.truststore.type", key, &bytes)?;
        (key, pem_certs(key, &bytes)?)
    } else if let Some(path) = nonempty("ssl.ca.location") {
        let key = "ssl.ca.location";
        (key, ca_location(key, Path::new(path.trim()))?)
    } else {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::debug!("system certificate store: {e}");
        }
        let mut roots = RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(found.certs);
        tracing::debug!(added, "using the system's trusted certificates");
        return Ok(roots);
    };
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| ConfigError::new(key, format!("unusable CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// librdkafka's `ssl.ca.location`: a PEM file, or a directory whose PEM files are read.
fn ca_location(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    if !path.is_dir() {
        return pem_certs(key, &read_file(key, &path.to_string_lossy())?);
    }
    let entries = std::fs::read_dir(path)
        .map_err(|e| ConfigError::new(key, format!("cannot list {}: {e}", path.display())))?;
    let mut certs = Vec::new();
    for entry in entries.flatten() {
        let p = entry.path();
        if p.is_file() {
            if let Ok(bytes) = std::fs::read(&p) {
                certs.extend(CertificateDer::pem_slice_iter(&bytes).flatten());
            }
        }
    }
    if certs.is_empty() {
        return Err(ConfigError::new(
            key,
            format!("no PEM certificate in {}", path.display()),
        ));
    }
    Ok(certs)
}

/// A certificate chain and key, with the key they came from.
type Identity = (
    &'static str,
    Vec<CertificateDer<'static>>,
    PrivateKeyDer<'static>,
);

/// The client certificate and key, if configured.
fn client_identity<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
) -> Result<Option<Identity>, ConfigError> {
    let nonempty = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    if nonempty("ssl.key.password").is_some() {
        tracing::warn!(
            "ssl.key.password is ignored: sluice-client reads unencrypted PEM keys only"
        );
    }
    if let Some(chain) = nonempty("ssl.keystore.certificate.chain") {
        let key_pem = nonempty("ssl.keystore.key").ok_or_else(|| {
            ConfigError::new(
                "ssl.keystore.key",
                "not set, but ssl.keystore.certificate.chain is",
            )
        })?;
        let chain = pem_certs("ssl.keystore.certificate.chain", chain.as_bytes())?;
        let key = pem_key("ssl.keystore.key", key_pem.as_bytes())?;
        return Ok(Some(("ssl.keystore.key", chain, key)));
    }
    if let Some(path) = nonempty("ssl.keystore.location") {
        let k = "ssl.keystore.location";
        let bytes = read_file(k, path)?;
        check_store_type(get, "ssl.keystore.type", k, &bytes)?;
        return Ok(Some((k, pem_certs(k, &bytes)?, pem_key(k, &bytes)?)));
    }
    match (
        nonempty("ssl.certificate.location"),
        nonempty("ssl.key.location"),
    ) {
        (Some(cert), Some(key)) => {
            let chain = pem_certs(
                "ssl.certificate.location",
                &read_file("ssl.certificate.location", cert)?,
            )?;
            let key = pem_key("ssl.key.location", &read_file("ssl.key.location", key)?)?;
            Ok(Some(("ssl.key.location", chain, key)))
        }
        (Some(_), None) => Err(ConfigError::new(
            "ssl.key.location",
            "not set, but ssl.certificate.location is",
        )),
        (None, Some(_)) => Err(ConfigError::new(
            "ssl.certificate.location",
            "not set, but ssl.key.location is",
        )),
        (None, None) => Ok(None),
    }
}

/// Verifies the broker's chain against the trusted roots but accepts a certificate that
/// does not name the host: Kafka's `ssl.endpoint.identification.algorithm=` (empty).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain (and its validity dates) before the name, so a name
        // error means everything else passed.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn build(pairs: &[(&str, &str)]) -> Result<TlsConfig, ConfigError> {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        TlsConfig::from_properties(&|k: &str| map.get(k).copied())
    }

    fn ca_and_client() -> (String, String, String) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["client".to_owned()])
            .unwrap()
            .signed_by(&key, &rcgen::Issuer::new(params, &ca_key))
            .unwrap();
        (ca.pem(), leaf.pem(), key.serialize_pem())
    }

    #[test]
    fn pem_truststore_and_keystore_files_load() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = ca_and_client();
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, &ca).unwrap();
        let ks_path = dir.path().join("client.pem");
        std::fs::write(&ks_path, format!("{key}{cert}")).unwrap();
        let ca_s = ca_path.to_str().unwrap();
        let ks_s = ks_path.to_str().unwrap();

        let t = build(&[
            ("ssl.truststore.location", ca_s),
            ("ssl.truststore.type", "PEM"),
        ])
        .unwrap();
        assert!(t.verifies_hostname() && !t.has_client_certificate());

        let t = build(&[
            ("ssl.ca.location", ca_s),
            ("ssl.keystore.location", ks_s),
            ("ssl.endpoint.identification.algorithm", ""),
        ])
        .unwrap();
        assert!(!t.verifies_hostname() && t.has_client_certificate());

        let t = build(&[
            ("ssl.truststore.certificates", &ca),
            ("ssl.keystore.certificate.chain", &cert),
            ("ssl.keystore.key", &key),
        ])
        .unwrap();
        assert!(t.has_client_certificate());

        let cert_path = dir.path().join("cert.pem");
        std::fs::write(&cert_path, &cert).unwrap();
        let key_path = dir.path().join("key.pem");
        std::fs::write(&key_path, &key).unwrap();
        let t = build(&[
            ("ssl.ca.location", dir.path().to_str().unwrap()),
            ("ssl.certificate.location", cert_path.to_str().unwrap()),
            ("ssl.key.location", key_path.to_str().unwrap()),
        ])
        .unwrap();
        assert!(t.has_client_certificate());
    }

    #[test]
    fn unsupported_stores_and_missing_files_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let jks = dir.path().join("store.jks");
        std::fs::write(&jks, [0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2]).unwrap();
        let jks = jks.to_str().unwrap();
        let e = build(&[("ssl.truststore.location", jks)]).unwrap_err();
        assert_eq!(e.key, "ssl.truststore.location");
        assert!(e.message.contains("PEM"), "{e}");
        let e = build(&[
            ("ssl.truststore.location", jks),
            ("ssl.truststore.type", "JKS"),
        ])
        .unwrap_err();
        assert_eq!(e.key, "ssl.truststore.type");
        let e = build(&[("ssl.truststore.location", "/nonexistent/ca.pem")]).unwrap_err();
        assert!(e.message.contains("cannot read"), "{e}");
        let e = build(&[("ssl.endpoint.identification.algorithm", "ldap")]).unwrap_err();
        assert_eq!(e.key, "ssl.endpoint.identification.algorithm");
        let e = build(&[("ssl.certificate.location", jks)]).unwrap_err();
        assert_eq!(e.key, "ssl.key.location");
    }
}
