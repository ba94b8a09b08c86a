//! SCRAM key material (RFC 5802, RFC 7677): the two hashes, Kafka's iteration bounds, the key
//! derivations Kafka's `ScramFormatter` performs and the [`ScramCredential`] they produce.
//! The credential store creates credentials with them and the SASL exchange verifies a
//! client with them; this file depends on neither.

use ring::rand::SecureRandom;

/// Kafka's smallest accepted iteration count (`ScramMechanism.minIterations`, 4096 for both).
pub const MIN_ITERATIONS: i32 = 4096;
/// Kafka's largest accepted iteration count (`ScramControlManager.MAX_ITERATIONS`).
pub const MAX_ITERATIONS: i32 = 16384;

/// Which hash a SCRAM mechanism uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hash {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

impl Hash {
    fn digest_alg(self) -> &'static ring::digest::Algorithm {
        match self {
            Hash::Sha256 => &ring::digest::SHA256,
            Hash::Sha512 => &ring::digest::SHA512,
        }
    }

    /// `H(data)`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        ring::digest::digest(self.digest_alg(), data)
            .as_ref()
            .to_vec()
    }

    /// `HMAC(key, data)`.
    pub fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        let alg = match self {
            Hash::Sha256 => ring::hmac::HMAC_SHA256,
            Hash::Sha512 => ring::hmac::HMAC_SHA512,
        };
        ring::hmac::sign(&ring::hmac::Key::new(alg, key), data)
            .as_ref()
            .to_vec()
    }

    /// `Hi(password, salt, i)`: PBKDF2 with this HMAC, as RFC 5802 defines it. Zero
    /// iterations count as one (callers check Kafka's bounds first).
    pub fn hi(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let (alg, len) = match self {
            Hash::Sha256 => (ring::pbkdf2::PBKDF2_HMAC_SHA256, 32),
            Hash::Sha512 => (ring::pbkdf2::PBKDF2_HMAC_SHA512, 64),
        };
        let mut out = vec![0u8; len];
        let rounds = std::num::NonZeroU32::new(iterations).unwrap_or(std::num::NonZeroU32::MIN);
        ring::pbkdf2::derive(alg, rounds, salt, password, &mut out);
        out
    }

    /// The credential kept for a salted password: `StoredKey = H(HMAC(SaltedPassword,
    /// "Client Key"))`, `ServerKey = HMAC(SaltedPassword, "Server Key")`, as Kafka's
    /// controller derives them from an AlterUserScramCredentials upsertion.
    pub fn credential(
        self,
        salt: &[u8],
        salted_password: &[u8],
        iterations: i32,
    ) -> ScramCredential {
        let client_key = self.hmac(salted_password, b"Client Key");
        ScramCredential {
            salt: salt.to_vec(),
            stored_key: self.digest(&client_key),
            server_key: self.hmac(salted_password, b"Server Key"),
            iterations,
        }
    }
}

/// What is kept for one user and SCRAM mechanism.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    /// The salt the client chose.
    pub salt: Vec<u8>,
    /// `H(ClientKey)`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
    /// PBKDF2 iterations.
    pub iterations: i32,
}

impl std::fmt::Debug for ScramCredential {
    // Like Kafka's `ScramCredentialValue.toString`: keys are secrets, never logged.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScramCredential([hidden])")
    }
}

/// `N` bytes from the OS CSPRNG (None if the OS gives none).
pub fn random_bytes<const N: usize>() -> Option<[u8; N]> {
    let mut b = [0u8; N];
    ring::rand::SystemRandom::new().fill(&mut b).ok()?;
    Some(b)
}
