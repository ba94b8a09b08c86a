//! Java keystores and truststores, as Flume's `keystore`/`truststore` keys name them: JKS
//! (Flume's default `keystore-type`) and PKCS12 (keytool's default since Java 9).
//!
//! The format is told by the file's first bytes, not by the declared type, as Java 9+ does
//! with `keystore.type.compat = true` (a `JKS` keystore loads a PKCS12 file and the other way
//! round). JCEKS and anything else is an error naming the file.
//!
//! JKS is read here (OpenJDK's `JavaKeyStore` layout and Sun's `KeyProtector`); PKCS12 by
//! `p12-keystore`. Nothing here turns keys into TLS settings: see `tls`.

use std::fmt;
use std::path::{Path, PathBuf};

use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Largest keystore file read (a keystore holds a few certificates; Java has no limit).
const MAX_KEYSTORE_BYTES: u64 = 16 * 1024 * 1024;

/// JKS magic (`0xFEEDFEED`), and JCEKS' (`0xCECECECE`), which is refused.
const JKS_MAGIC: u32 = 0xFEED_FEED;
const JCEKS_MAGIC: u32 = 0xCECE_CECE;

/// Salted into the JKS integrity digest after the password (OpenJDK's `JavaKeyStore`).
const JKS_WHITENER: &[u8] = b"Mighty Aphrodite";

/// OID 1.3.6.1.4.1.42.2.17.1.1, Sun's proprietary key protection, DER-encoded.
const SUN_KEY_PROTECTOR_OID: &[u8] = &[0x2B, 0x06, 0x01, 0x04, 0x01, 0x2A, 0x02, 0x11, 0x01, 0x01];

/// SHA-1's output length: the JKS digest and key-protector salt and block size.
const SHA1_LEN: usize = 20;

/// The type a configuration declares (`keystore-type`, `truststore-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    /// `JKS`, Flume's default.
    Jks,
    /// `PKCS12`.
    Pkcs12,
}

impl StoreType {
    /// `JKS` or `PKCS12` (any case); anything else (`JCEKS`, `PKCS11`...) is `None`.
    pub fn parse(s: &str) -> Option<StoreType> {
        match s.trim().to_ascii_uppercase().as_str() {
            "JKS" => Some(StoreType::Jks),
            "PKCS12" | "P12" => Some(StoreType::Pkcs12),
            _ => None,
        }
    }
}

impl fmt::Display for StoreType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreType::Jks => "JKS",
            StoreType::Pkcs12 => "PKCS12",
        })
    }
}

/// A private key and its certificate chain (leaf first).
#[derive(Debug)]
pub struct KeyEntry {
    /// The entry's alias.
    pub alias: String,
    /// The key, PKCS#8.
    pub key: PrivateKeyDer<'static>,
    /// The chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
}

/// What a keystore file holds.
#[derive(Debug, Default)]
pub struct KeyStore {
    /// Private key entries.
    pub keys: Vec<KeyEntry>,
    /// Trusted certificate entries.
    pub trusted: Vec<CertificateDer<'static>>,
}

/// Why a keystore could not be read; every message names the file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct KeystoreError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub message: String,
}

/// Reads the keystore at `path`. With `password = None` (a truststore without
/// `truststore-password`) a JKS file's integrity digest is not checked, as Java skips it.
pub fn load(path: &Path, password: Option<&str>) -> Result<KeyStore, KeystoreError> {
    let err = |message: String| KeystoreError {
        path: path.to_path_buf(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot read: {e}")))?;
    if meta.len() > MAX_KEYSTORE_BYTES {
        return Err(err(format!(
            "{} bytes is larger than the {MAX_KEYSTORE_BYTES} bytes a keystore may have",
            meta.len()
        )));
    }
    let data = std::fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let magic = data
        .get(..4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_be_bytes);
    match magic {
        Some(JKS_MAGIC) => read_jks(&data, password).map_err(err),
        Some(JCEKS_MAGIC) => Err(err("JCEKS keystores are not supported; \
             convert it with keytool -importkeystore -deststoretype PKCS12"
            .into())),
        _ if data.first() == Some(&0x30) => read_pkcs12(&data, password).map_err(err),
        _ => Err(err("neither a JKS nor a PKCS12 keystore".into())),
    }
}

fn read_pkcs12(data: &[u8], password: Option<&str>) -> Result<KeyStore, String> {
    let ks = p12_keystore::KeyStore::from_pkcs12(
        data,
        password.unwrap_or(""),
        p12_keystore::Pkcs12ImportPolicy::Relaxed,
    )
    .map_err(|e| {
        format!("cannot open the PKCS12 keystore (wrong password, or a damaged file): {e}")
    })?;
    let mut out = KeyStore::default();
    for (alias, entry) in ks.entries() {
        match entry {
            p12_keystore::KeyStoreEntry::PrivateKeyChain(chain) => out.keys.push(KeyEntry {
                alias: alias.clone(),
                key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec())),
                chain: chain
                    .certs()
                    .iter()
                    .map(|c| CertificateDer::from(c.as_der().to_vec()))
                    .collect(),
            }),
            p12_keystore::KeyStoreEntry::Certificate(c) => {
                out.trusted.push(CertificateDer::from(c.as_der().to_vec()))
            }
            p12_keystore::KeyStoreEntry::Secret(_) => {}
        }
    }
    Ok(out)
}

/// A bounds-checked reader over the JKS bytes.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| format!("truncated JKS keystore reading {what}"))?;
        let out = self.data.get(self.pos..end).unwrap_or_default();
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        <[u8; N]>::try_from(self.take(N, what)?)
            .map_err(|_| format!("truncated JKS keystore reading {what}"))
    }

    fn u16(&mut self, what: &str) -> Result<u16, String> {
        self.array(what).map(u16::from_be_bytes)
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        self.array(what).map(u32::from_be_bytes)
    }

    /// Java's `readInt` length: a negative one is refused.
    fn len(&mut self, what: &str) -> Result<usize, String> {
        let n = self.u32(what)?;
        i32::try_from(n)
            .ok()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| format!("negative length reading {what}"))
    }

    /// Java's `readUTF` (modified UTF-8; aliases and certificate types are ASCII in practice).
    fn utf(&mut self, what: &str) -> Result<String, String> {
        let n = usize::from(self.u16(what)?);
        Ok(String::from_utf8_lossy(self.take(n, what)?).into_owned())
    }
}

/// The password as Java's `char[]`, each UTF-16 unit big-endian.
fn password_bytes(password: &str) -> Vec<u8> {
    password.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

fn sha1(parts: &[&[u8]]) -> ring::digest::Digest {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    for p in parts {
        ctx.update(p);
    }
    ctx.finish()
}

fn read_jks(data: &[u8], password: Option<&str>) -> Result<KeyStore, String> {
    let mut c = Cursor { data, pos: 0 };
    c.u32("magic")?;
    let version = c.u32("version")?;
    if version != 1 && version != 2 {
        return Err(format!("unsupported JKS version {version}"));
    }
    let count = c.u32("entry count")?;
    let mut protected = Vec::new();
    let mut out = KeyStore::default();
    for _ in 0..count {
        match c.u32("entry tag")? {
            1 => {
                let alias = c.utf("alias")?;
                c.take(8, "entry date")?;
                let n = c.len("protected key length")?;
                let key = c.take(n, "protected key")?;
                let certs = c.len("chain length")?;
                let mut chain = Vec::new();
                for _ in 0..certs {
                    chain.push(read_jks_cert(&mut c, version)?);
                }
                protected.push((alias, key, chain));
            }
            2 => {
                c.utf("alias")?;
                c.take(8, "entry date")?;
                out.trusted.push(read_jks_cert(&mut c, version)?);
            }
            3 => return Err("secret key entries (JCEKS) are not supported".into()),
            t => return Err(format!("unknown JKS entry tag {t}")),
        }
    }
    let body = data.get(..c.pos).unwrap_or_default();
    let stored = c.take(SHA1_LEN, "integrity digest")?;
    if let Some(pw) = password {
        let pw = password_bytes(pw);
        if sha1(&[&pw, JKS_WHITENER, body]).as_ref() != stored {
            // Java's words: "Keystore was tampered with, or password was incorrect".
            return Err("keystore was tampered with, or password was incorrect".into());
        }
        for (alias, key, chain) in protected {
            let key = recover_key(key, &pw).map_err(|e| format!("key entry {alias:?}: {e}"))?;
            out.keys.push(KeyEntry {
                alias,
                key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
                chain,
            });
        }
    } else if !protected.is_empty() {
        return Err("a password is needed to read its private keys".into());
    }
    Ok(out)
}

fn read_jks_cert(c: &mut Cursor<'_>, version: u32) -> Result<CertificateDer<'static>, String> {
    if version == 2 {
        let kind = c.utf("certificate type")?;
        if kind != "X.509" {
            return Err(format!("unsupported certificate type {kind:?}"));
        }
    }
    let n = c.len("certificate length")?;
    Ok(CertificateDer::from(c.take(n, "certificate")?.to_vec()))
}

/// One DER TLV: the tag and the contents, and what follows.
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, rest) = (rest.get(..n)?, rest.get(n..)?);
        let len = bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, rest)
    };
    Some((tag, rest.get(..len)?, rest.get(len..)?))
}

/// Undoes Sun's `KeyProtector`: the `EncryptedPrivateKeyInfo` holds salt (20 bytes), the key
/// XORed with a SHA-1 chain over password and salt, then SHA-1(password, key) to check it.
fn recover_key(encoded: &[u8], pw: &[u8]) -> Result<Vec<u8>, String> {
    let bad = || "not a Sun-protected private key".to_string();
    let (0x30, epki, _) = der_tlv(encoded).ok_or_else(bad)? else {
        return Err(bad());
    };
    let (0x30, alg, rest) = der_tlv(epki).ok_or_else(bad)? else {
        return Err(bad());
    };
    let (0x06, oid, _) = der_tlv(alg).ok_or_else(bad)? else {
        return Err(bad());
    };
    if oid != SUN_KEY_PROTECTOR_OID {
        return Err("protected with an algorithm other than Sun's JKS key protector".into());
    }
    let (0x04, protected, _) = der_tlv(rest).ok_or_else(bad)? else {
        return Err(bad());
    };
    if protected.len() < 2 * SHA1_LEN {
        return Err(bad());
    }
    let (salt, rest) = protected.split_at(SHA1_LEN);
    let (encrypted, check) = rest.split_at(rest.len() - SHA1_LEN);
    let mut key = Vec::with_capacity(encrypted.len());
    let mut block = salt.to_vec();
    for chunk in encrypted.chunks(SHA1_LEN) {
        block = sha1(&[pw, &block]).as_ref().to_vec();
        key.extend(chunk.iter().zip(&block).map(|(a, b)| a ^ b));
    }
    if sha1(&[pw, &key]).as_ref() != check {
        // Java: UnrecoverableKeyException "Cannot recover key" (a key password that differs
        // from the store's; Flume uses the store password for both).
        return Err("cannot recover the key with the keystore password".into());
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_types() {
        assert_eq!(StoreType::parse("jks"), Some(StoreType::Jks));
        assert_eq!(StoreType::parse("PKCS12"), Some(StoreType::Pkcs12));
        assert_eq!(StoreType::parse("JCEKS"), None);
    }

    #[test]
    fn truncated_and_foreign_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in [
            ("empty", &b""[..]),
            (
                "jks-head",
                &[0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2, 0, 0, 0, 9][..],
            ),
            ("jceks", &[0xCE, 0xCE, 0xCE, 0xCE][..]),
            ("text", &b"hello"[..]),
            ("der-junk", &[0x30, 0x03, 1, 2, 3][..]),
        ] {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            let e = load(&p, Some("secret")).unwrap_err();
            assert!(e.to_string().contains(name), "{e}");
        }
        let e = load(&dir.path().join("absent"), None).unwrap_err();
        assert!(e.to_string().contains("cannot read"), "{e}");
    }

    #[test]
    fn der_lengths_are_bounded_by_the_input() {
        assert!(der_tlv(&[0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]).is_none());
        assert!(der_tlv(&[0x30, 0x85, 0, 0, 0, 0, 1]).is_none());
        assert_eq!(
            der_tlv(&[0x04, 0x01, 7, 9]),
            Some((0x04, &[7u8][..], &[9u8][..]))
        );
    }
}
