//! Kafka's key and trust stores, read with Kafka's property names: the broker's key and
//! certificate chain (`ssl.keystore.*`, `ssl.key.password`) and the certificates it trusts
//! for client authentication (`ssl.truststore.*`). PEM (inline or a file), PKCS12 and JKS.
//!
//! Kafka's default store type is JKS, and Java's keystores load PKCS12 files given as JKS
//! and the other way round (`keystore.type.compat`); so here the file's contents decide
//! between JKS, PKCS12 and PEM, and `ssl.*.type` only matters to say PEM for inline text.
//!
//! Every error names the Kafka key (the listener-scoped one when that is what was set)
//! and the file, so a broker refuses to start with a message its operator can act on.

use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use x509_parser::prelude::{FromDer, X509Certificate};

use super::jks;
use super::Props;

/// A TLS configuration error: the Kafka key at fault and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {msg}")]
pub struct ConfigError {
    /// The Kafka property (`ssl.keystore.location`, `listener.name.ssl.ssl.key.password`).
    pub key: String,
    /// What is wrong, with the file name where there is one.
    pub msg: String,
}

/// The broker's identity: its certificate chain (leaf first) and private key.
#[derive(Debug)]
pub struct Identity {
    /// DER certificates, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key.
    pub key: PrivateKeyDer<'static>,
}

/// Security properties as one listener sees them, remembering which key a value came
/// from for error messages.
#[derive(Debug, Clone, Copy)]
pub struct ListenerProps<'a> {
    props: &'a Props,
    listener: &'a str,
}

impl<'a> ListenerProps<'a> {
    /// The properties of `listener` (its `listener.name.<l>.` overrides first).
    pub fn new(props: &'a Props, listener: &'a str) -> Self {
        ListenerProps { props, listener }
    }

    /// The value of `key` and the name of the property that set it; blank values count
    /// as unset, as in Kafka's password and location checks.
    pub fn get(&self, key: &str) -> Option<(String, &'a str)> {
        let v = self.props.for_listener(self.listener, key)?;
        if v.trim().is_empty() {
            return None;
        }
        let scoped = format!("listener.name.{}.{key}", self.listener.to_ascii_lowercase());
        let name = if self.props.get(&scoped).is_some() {
            scoped
        } else {
            key.to_string()
        };
        Some((name, v))
    }

    /// The value of `key`, or `None`.
    pub fn value(&self, key: &str) -> Option<&'a str> {
        self.get(key).map(|(_, v)| v)
    }

    /// The name to blame for `key`: the scoped one if set, else the plain one.
    pub fn name(&self, key: &str) -> String {
        self.get(key).map_or_else(|| key.to_string(), |(k, _)| k)
    }

    fn err(&self, key: &str, msg: impl Into<String>) -> ConfigError {
        ConfigError {
            key: self.name(key),
            msg: msg.into(),
        }
    }
}

/// Read the keystore of a TLS listener.
pub fn load_identity(p: ListenerProps<'_>) -> Result<Identity, ConfigError> {
    let mut id = read_identity(p)?;
    if let (PrivateKeyDer::Pkcs8(key), Some(leaf)) = (&id.key, id.chain.first()) {
        if let Some(fixed) = with_ec_public_key(key.secret_pkcs8_der(), leaf.as_ref()) {
            id.key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(fixed));
        }
    }
    Ok(id)
}

/// DER of OID 1.2.840.10045.2.1, id-ecPublicKey.
const EC_PUBLIC_KEY_OID: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

/// Java (keytool, PKCS12 and JKS) writes an EC private key without its public key, which
/// the `ring` provider requires; the leaf certificate holds it. `Some`: the key rebuilt
/// with the public key in, as OpenSSL writes it. `None`: not such a key, left as it is.
fn with_ec_public_key(pkcs8: &[u8], leaf: &[u8]) -> Option<Vec<u8>> {
    let (tag, info, _) = jks::tlv(pkcs8)?;
    (tag == 0x30).then_some(())?;
    let (tag, version, rest) = jks::tlv(info)?;
    (tag == 0x02).then_some(())?;
    let alg_start = rest;
    let (tag, alg, rest) = jks::tlv(rest)?;
    (tag == 0x30).then_some(())?;
    let alg_der = alg_start.get(..alg_start.len() - rest.len())?;
    let (tag, oid, _) = jks::tlv(alg)?;
    (tag == 0x06 && oid == EC_PUBLIC_KEY_OID).then_some(())?;
    let (tag, ec_key, _) = jks::tlv(rest)?;
    (tag == 0x04).then_some(())?;
    let (tag, ec, _) = jks::tlv(ec_key)?;
    (tag == 0x30).then_some(())?;
    let (tag, ec_version, ec_rest) = jks::tlv(ec)?;
    (tag == 0x02).then_some(())?;
    let (tag, secret, mut fields) = jks::tlv(ec_rest)?;
    (tag == 0x04).then_some(())?;
    while !fields.is_empty() {
        let (tag, _, next) = jks::tlv(fields)?;
        if tag == 0xa1 {
            return None; // the public key is there already
        }
        fields = next;
    }
    let (_, cert) = X509Certificate::from_der(leaf).ok()?;
    let point = cert.public_key().subject_public_key.data.as_ref();
    let mut bits = vec![0u8];
    bits.extend_from_slice(point);
    let ec_new = der(
        0x30,
        &[
            der(0x02, ec_version),
            der(0x04, secret),
            der(0xa1, &der(0x03, &bits)),
        ]
        .concat(),
    );
    Some(der(
        0x30,
        &[der(0x02, version), alg_der.to_vec(), der(0x04, &ec_new)].concat(),
    ))
}

/// One DER element.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match u8::try_from(content.len()) {
        Ok(n) if n < 0x80 => out.push(n),
        _ => {
            let bytes = content.len().to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            let digits = &bytes[skip..];
            out.push(0x80 | u8::try_from(digits.len()).unwrap_or(8));
            out.extend_from_slice(digits);
        }
    }
    out.extend_from_slice(content);
    out
}

fn read_identity(p: ListenerProps<'_>) -> Result<Identity, ConfigError> {
    let key_password = p.value("ssl.key.password");
    let store_password = p.value("ssl.keystore.password");
    // Kafka's PEM keystore given inline: `ssl.keystore.certificate.chain` + `ssl.keystore.key`.
    let inline_chain = p.value("ssl.keystore.certificate.chain");
    let inline_key = p.value("ssl.keystore.key");
    if inline_chain.is_some() || inline_key.is_some() {
        let chain_text = inline_chain.ok_or_else(|| {
            p.err(
                "ssl.keystore.certificate.chain",
                "is required with ssl.keystore.key",
            )
        })?;
        let key_text = inline_key.ok_or_else(|| {
            p.err(
                "ssl.keystore.key",
                "is required with ssl.keystore.certificate.chain",
            )
        })?;
        let chain = pem_certs(chain_text.as_bytes())
            .map_err(|m| p.err("ssl.keystore.certificate.chain", m))?;
        if chain.is_empty() {
            return Err(p.err(
                "ssl.keystore.certificate.chain",
                "holds no PEM CERTIFICATE block",
            ));
        }
        let key =
            pem_key(key_text.as_bytes(), key_password).map_err(|m| p.err("ssl.keystore.key", m))?;
        return Ok(Identity { chain, key });
    }
    let Some((loc_key, location)) = p.get("ssl.keystore.location") else {
        return Err(ConfigError {
            key: p.name("ssl.keystore.location"),
            msg: format!(
                "listener {} uses TLS and needs a keystore: set ssl.keystore.location (JKS, PKCS12 or PEM file) or ssl.keystore.certificate.chain and ssl.keystore.key (PEM)",
                p.listener
            ),
        });
    };
    let data = read_file(&loc_key, location)?;
    let where_ = |m: String| ConfigError {
        key: loc_key.clone(),
        msg: format!("{location}: {m}"),
    };
    if jks::is_jks(&data) {
        // Java loads a JKS store without a password (skipping the integrity check); its
        // key still needs one.
        let store = jks::parse(&data, store_password)
            .map_err(|m| p.err("ssl.keystore.password", format!("{location}: {m}")))?;
        let entry = match store.keys.as_slice() {
            [one] => one,
            [] => return Err(where_("holds no private key entry".into())),
            _ => {
                return Err(where_(format!(
                    "holds {} private key entries; Sluice reads a keystore with one key",
                    store.keys.len()
                )))
            }
        };
        // Kafka uses the store password when ssl.key.password is not set.
        let pw = key_password.or(store_password).ok_or_else(|| {
            p.err(
                "ssl.keystore.password",
                format!("is required to read the key in the JKS keystore {location}"),
            )
        })?;
        let key = jks::decrypt_key(entry, pw).map_err(|m| {
            p.err(
                if key_password.is_some() {
                    "ssl.key.password"
                } else {
                    "ssl.keystore.password"
                },
                format!("{location}: {m}"),
            )
        })?;
        return Ok(Identity {
            chain: entry
                .chain
                .iter()
                .map(|c| CertificateDer::from(c.clone()))
                .collect(),
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        });
    }
    if looks_like_pem(&data) {
        let chain = pem_certs(&data).map_err(where_)?;
        if chain.is_empty() {
            return Err(where_("holds no PEM CERTIFICATE block".into()));
        }
        let key = pem_key(&data, key_password).map_err(|m| {
            if key_password.is_some() && m.contains("password") {
                p.err("ssl.key.password", format!("{location}: {m}"))
            } else {
                where_(m)
            }
        })?;
        return Ok(Identity { chain, key });
    }
    // PKCS12 (a DER SEQUENCE).
    let store_pw = store_password.unwrap_or("");
    let ks = read_pkcs12(&data, store_pw, key_password)
        .map_err(|m| p.err("ssl.keystore.password", format!("{location}: {m}")))?;
    let Some((_, chain)) = ks.private_key_chain() else {
        return Err(where_("holds no private key entry".into()));
    };
    let certs = chain
        .certs()
        .iter()
        .map(|c| CertificateDer::from(c.as_der().to_vec()))
        .collect::<Vec<_>>();
    if certs.is_empty() {
        return Err(where_("its private key has no certificate".into()));
    }
    Ok(Identity {
        chain: certs,
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec())),
    })
}

/// Read the truststore of a TLS listener: `None` when none is configured.
pub fn load_trusted(
    p: ListenerProps<'_>,
) -> Result<Option<Vec<CertificateDer<'static>>>, ConfigError> {
    if let Some(text) = p.value("ssl.truststore.certificates") {
        let certs =
            pem_certs(text.as_bytes()).map_err(|m| p.err("ssl.truststore.certificates", m))?;
        if certs.is_empty() {
            return Err(p.err(
                "ssl.truststore.certificates",
                "holds no PEM CERTIFICATE block",
            ));
        }
        return Ok(Some(certs));
    }
    let Some((loc_key, location)) = p.get("ssl.truststore.location") else {
        return Ok(None);
    };
    let data = read_file(&loc_key, location)?;
    let password = p.value("ssl.truststore.password");
    let where_ = |m: String| ConfigError {
        key: loc_key.clone(),
        msg: format!("{location}: {m}"),
    };
    let certs: Vec<CertificateDer<'static>> = if jks::is_jks(&data) {
        // Java loads a truststore without a password, skipping the integrity check.
        let store = jks::parse(&data, password)
            .map_err(|m| p.err("ssl.truststore.password", format!("{location}: {m}")))?;
        store
            .trusted
            .into_iter()
            .map(CertificateDer::from)
            .collect()
    } else if looks_like_pem(&data) {
        pem_certs(&data).map_err(where_)?
    } else {
        let ks = p12_keystore::KeyStore::from_pkcs12(
            &data,
            password.unwrap_or(""),
            p12_keystore::Pkcs12ImportPolicy::Relaxed,
        )
        .map_err(|e| {
            p.err(
                "ssl.truststore.password",
                format!("{location}: not a readable PKCS12 truststore with this password ({e})"),
            )
        })?;
        ks.entries()
            .filter_map(|(_, e)| match e {
                p12_keystore::KeyStoreEntry::Certificate(c) => {
                    Some(CertificateDer::from(c.as_der().to_vec()))
                }
                _ => None,
            })
            .collect()
    };
    if certs.is_empty() {
        return Err(where_("holds no trusted certificate".into()));
    }
    Ok(Some(certs))
}

fn read_pkcs12(
    data: &[u8],
    store_pw: &str,
    key_pw: Option<&str>,
) -> Result<p12_keystore::KeyStore, String> {
    let policy = p12_keystore::Pkcs12ImportPolicy::Strict;
    match p12_keystore::KeyStore::from_pkcs12(data, store_pw, policy) {
        Ok(ks) => Ok(ks),
        // A store whose key bag has its own password (keytool -keypass with -storetype
        // PKCS12 makes them equal, openssl may not).
        Err(e) => match key_pw.filter(|k| *k != store_pw) {
            Some(k) => p12_keystore::KeyStore::from_pkcs12(data, k, policy)
                .map_err(|_| format!("not a readable PKCS12 keystore with this password ({e})")),
            None => Err(format!(
                "not a readable PKCS12 keystore with this password ({e})"
            )),
        },
    }
}

fn read_file(key: &str, location: &str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(Path::new(location)).map_err(|e| ConfigError {
        key: key.to_string(),
        msg: format!("cannot read {location}: {e}"),
    })
}

fn looks_like_pem(data: &[u8]) -> bool {
    data.windows(11).any(|w| w == b"-----BEGIN ")
}

/// PEM text rewritten with one block per line group: Kafka's PEM values may come from a
/// properties file whose `\` continuations joined the lines with spaces, and Kafka's own
/// parser accepts any whitespace inside a block.
fn normalize_pem(pem: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(pem);
    let Ok(re) =
        regex::Regex::new(r"(?s)-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END ([A-Z0-9 ]+)-----")
    else {
        return pem.to_vec();
    };
    let mut out = String::with_capacity(pem.len() + 64);
    for c in re.captures_iter(&text) {
        let body: String = c[2].chars().filter(|ch| !ch.is_whitespace()).collect();
        out.push_str(&format!("-----BEGIN {}-----\n", &c[1]));
        for line in body.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(line));
            out.push('\n');
        }
        out.push_str(&format!("-----END {}-----\n", &c[3]));
    }
    out.into_bytes()
}

/// Every `CERTIFICATE` block in `pem`.
pub fn pem_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = normalize_pem(pem);
    CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad PEM certificate: {e}"))
}

/// The private key in `pem`: PKCS#8 (`PRIVATE KEY`, or `ENCRYPTED PRIVATE KEY` with
/// `ssl.key.password`), PKCS#1 or SEC1.
fn pem_key(pem: &[u8], password: Option<&str>) -> Result<PrivateKeyDer<'static>, String> {
    let pem = &normalize_pem(pem)[..];
    if let Some(block) = pem_block(pem, "ENCRYPTED PRIVATE KEY") {
        let Some(pw) = password else {
            return Err("the private key is encrypted; set ssl.key.password".into());
        };
        let (_, der) = pkcs8::der::pem::decode_vec(block)
            .map_err(|e| format!("bad ENCRYPTED PRIVATE KEY block: {e}"))?;
        let info = pkcs8::EncryptedPrivateKeyInfoRef::try_from(der.as_slice())
            .map_err(|e| format!("bad ENCRYPTED PRIVATE KEY: {e}"))?;
        let doc = info.decrypt(pw).map_err(|e| {
            format!("cannot decrypt the private key (is ssl.key.password right?): {e}")
        })?;
        return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            doc.as_bytes().to_vec(),
        )));
    }
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => "holds no PEM private key block".to_string(),
        e => format!("bad PEM private key: {e}"),
    })
}

/// The text of the first `-----BEGIN <label>-----` ... `-----END <label>-----` block.
fn pem_block<'a>(pem: &'a [u8], label: &str) -> Option<&'a [u8]> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem
        .windows(begin.len())
        .position(|w| w == begin.as_bytes())?;
    let rest = &pem[start..];
    let stop = rest.windows(end.len()).position(|w| w == end.as_bytes())?;
    rest.get(..stop + end.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_joined_onto_one_line_still_parses() {
        // What a properties file's `\` continuations make of a PEM value.
        let joined = "-----BEGIN CERTIFICATE----- TUlJQg== -----END CERTIFICATE----- \
                      -----BEGIN CERTIFICATE----- TUlJQw== -----END CERTIFICATE-----";
        let certs = pem_certs(joined.as_bytes()).unwrap();
        assert_eq!(certs.len(), 2);
        assert_eq!(certs[0].as_ref(), b"MIIB");
    }

    #[test]
    fn a_missing_store_names_the_listener_scoped_key_and_file() {
        let mut props = Props::default();
        props.set(
            "listener.name.secure.ssl.keystore.location",
            "/nonexistent/k.p12",
        );
        let e = load_identity(ListenerProps::new(&props, "SECURE")).unwrap_err();
        assert_eq!(e.key, "listener.name.secure.ssl.keystore.location");
        assert!(e.msg.contains("/nonexistent/k.p12"), "{e}");
        let e = load_identity(ListenerProps::new(&Props::default(), "SSL")).unwrap_err();
        assert_eq!(e.key, "ssl.keystore.location");
    }

    #[test]
    fn der_lengths_encode_long_form() {
        assert_eq!(der(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        let long = der(0x04, &[0; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }
}
