//! Reading Java's JKS keystores (keytool `-storetype JKS`, the format of Kafka's docs and
//! of the apache/kafka image's examples). Read only: private-key entries (the key and its
//! chain) and trusted-certificate entries.
//!
//! The format: magic `FEEDFEED`, version 1 or 2, an entry count, the entries, and a SHA-1
//! over the store password (UTF-16BE), the words "Mighty Aphrodite" and everything before
//! it. A private key is a PKCS#8 `EncryptedPrivateKeyInfo` under Sun's own algorithm
//! (OID 1.3.6.1.4.1.42.2.17.1.1): salt, the key XORed with a SHA-1 chain seeded by the
//! salt, and a SHA-1 check of the plain key.
//!
//! No count from the file sizes an allocation: every length is checked against the bytes
//! left in the file first.

use ring::digest::{Context, SHA1_FOR_LEGACY_USE_ONLY};

const MAGIC: u32 = 0xFEED_FEED;
const JCEKS_MAGIC: u32 = 0xCECE_CECE;
const SHA1_LEN: usize = 20;
/// DER of OID 1.3.6.1.4.1.42.2.17.1.1, Sun's JKS key protection.
const KEY_PROTECTOR_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x2a, 0x02, 0x11, 0x01, 0x01];

/// A private-key entry: the encrypted key and the certificate chain (leaf first).
#[derive(Debug, Clone)]
pub struct KeyEntry {
    /// The entry's alias.
    pub alias: String,
    /// The `EncryptedPrivateKeyInfo` as stored.
    pub encrypted_key: Vec<u8>,
    /// DER certificates, leaf first.
    pub chain: Vec<Vec<u8>>,
}

/// A parsed JKS keystore.
#[derive(Debug, Clone, Default)]
pub struct KeyStore {
    /// Private-key entries, in file order.
    pub keys: Vec<KeyEntry>,
    /// Trusted certificates (DER), in file order.
    pub trusted: Vec<Vec<u8>>,
}

/// Whether `data` starts like a JKS (or JCEKS) keystore.
pub fn is_jks(data: &[u8]) -> bool {
    matches!(data.get(..4), Some(m) if m == MAGIC.to_be_bytes() || m == JCEKS_MAGIC.to_be_bytes())
}

/// Parse `data` and check its integrity with `password` (`None`: skip the check, as Java
/// does for a keystore loaded without a password).
pub fn parse(data: &[u8], password: Option<&str>) -> Result<KeyStore, String> {
    if data.len() < SHA1_LEN {
        return Err("file too short for a JKS keystore".into());
    }
    let (body, digest) = data.split_at(data.len() - SHA1_LEN);
    if let Some(pw) = password {
        let mut ctx = Context::new(&SHA1_FOR_LEGACY_USE_ONLY);
        ctx.update(&utf16be(pw));
        ctx.update(b"Mighty Aphrodite");
        ctx.update(body);
        if ctx.finish().as_ref() != digest {
            return Err("keystore password was incorrect (integrity check failed)".into());
        }
    }
    let mut r = Reader { data: body };
    let magic = r.u32()?;
    if magic == JCEKS_MAGIC {
        return Err("JCEKS keystores are not supported; use JKS, PKCS12 or PEM".into());
    }
    if magic != MAGIC {
        return Err("not a JKS keystore".into());
    }
    let version = r.u32()?;
    if version != 1 && version != 2 {
        return Err(format!("unknown JKS version {version}"));
    }
    let count = r.u32()?;
    let mut store = KeyStore::default();
    for _ in 0..count {
        let tag = r.u32()?;
        let alias = r.utf()?;
        let _timestamp = r.bytes(8)?;
        match tag {
            1 => {
                let len = r.len32()?;
                let encrypted_key = r.bytes(len)?.to_vec();
                let n = r.u32()?;
                let mut chain = Vec::new();
                for _ in 0..n {
                    chain.push(r.cert(version)?);
                }
                store.keys.push(KeyEntry {
                    alias,
                    encrypted_key,
                    chain,
                });
            }
            2 => store.trusted.push(r.cert(version)?),
            t => return Err(format!("entry '{alias}' has unknown type {t}")),
        }
    }
    Ok(store)
}

/// Decrypt a private-key entry with `password`: the PKCS#8 `PrivateKeyInfo` DER.
pub fn decrypt_key(entry: &KeyEntry, password: &str) -> Result<Vec<u8>, String> {
    let protected = protected_data(&entry.encrypted_key)
        .ok_or_else(|| format!("key '{}' is not protected the JKS way", entry.alias))?;
    if protected.len() < 2 * SHA1_LEN {
        return Err(format!("key '{}' is truncated", entry.alias));
    }
    let (salt, rest) = protected.split_at(SHA1_LEN);
    let (cipher, check) = rest.split_at(rest.len() - SHA1_LEN);
    let pw = utf16be(password);
    let mut plain = Vec::with_capacity(cipher.len());
    let mut block = salt.to_vec();
    for chunk in cipher.chunks(SHA1_LEN) {
        let mut ctx = Context::new(&SHA1_FOR_LEGACY_USE_ONLY);
        ctx.update(&pw);
        ctx.update(&block);
        block = ctx.finish().as_ref().to_vec();
        plain.extend(chunk.iter().zip(&block).map(|(c, k)| c ^ k));
    }
    let mut ctx = Context::new(&SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(&pw);
    ctx.update(&plain);
    if ctx.finish().as_ref() != check {
        return Err(format!(
            "key '{}': the key password was incorrect",
            entry.alias
        ));
    }
    Ok(plain)
}

/// The encrypted data of an `EncryptedPrivateKeyInfo` under Sun's key protector:
/// SEQUENCE { SEQUENCE { OID, params }, OCTET STRING }.
fn protected_data(der: &[u8]) -> Option<&[u8]> {
    let (tag, outer, _) = tlv(der)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, alg, rest) = tlv(outer)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, oid, _) = tlv(alg)?;
    if tag != 0x06 || oid != KEY_PROTECTOR_OID {
        return None;
    }
    let (tag, data, _) = tlv(rest)?;
    (tag == 0x04).then_some(data)
}

/// One DER element: (tag, content, what follows).
pub(crate) fn tlv(d: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *d.first()?;
    let first = *d.get(1)?;
    let (len, start) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for b in d.get(2..2 + n)? {
            len = (len << 8) | usize::from(*b);
        }
        (len, 2 + n)
    };
    let end = start.checked_add(len)?;
    Some((tag, d.get(start..end)?, d.get(end..)?))
}

fn utf16be(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.data.len() {
            return Err("keystore file is truncated".into());
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn len32(&mut self) -> Result<usize, String> {
        usize::try_from(self.u32()?).map_err(|_| "length does not fit".to_string())
    }

    /// Java's `DataInput.readUTF`: a u16 length and modified UTF-8 (read leniently).
    fn utf(&mut self) -> Result<String, String> {
        let b = self.bytes(2)?;
        let n = usize::from(u16::from_be_bytes([b[0], b[1]]));
        Ok(String::from_utf8_lossy(self.bytes(n)?).into_owned())
    }

    fn cert(&mut self, version: u32) -> Result<Vec<u8>, String> {
        if version == 2 {
            let kind = self.utf()?;
            if kind != "X.509" {
                return Err(format!("certificate of type {kind}, not X.509"));
            }
        }
        let len = self.len32()?;
        Ok(self.bytes(len)?.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_without_panicking() {
        assert!(parse(b"", Some("x")).is_err());
        assert!(parse(&[0xfe; 64], None).is_err());
        let mut d = MAGIC.to_be_bytes().to_vec();
        d.extend_from_slice(&2u32.to_be_bytes());
        d.extend_from_slice(&u32::MAX.to_be_bytes());
        d.extend_from_slice(&[0; 20]);
        assert!(parse(&d, None).is_err());
    }

    #[test]
    fn der_lengths_are_bounded() {
        assert!(tlv(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_none());
        assert!(tlv(&[0x30, 0x81]).is_none());
        assert_eq!(
            tlv(&[0x04, 0x01, 0xaa, 0x05]),
            Some((0x04, &[0xaa][..], &[0x05][..]))
        );
    }
}
