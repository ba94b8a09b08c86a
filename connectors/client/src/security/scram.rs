//! The client side of SCRAM (RFC 5802, with SHA-256 as RFC 7677 and SHA-512 as Kafka adds):
//! the three messages the client writes and the check of the server's signature. These are
//! SASL mechanism payloads carried inside SaslAuthenticate, not Kafka messages. Hashing,
//! HMAC and PBKDF2 come from `ring`, the crypto provider rustls already uses here.
//!
//! No channel binding (`n,,`), no authorization id, no extensions: Kafka's `ScramSaslClient`
//! sends the same (its token extension is for delegation tokens, which this client lacks).

use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ring::{digest, hmac, pbkdf2};

use super::SaslMechanism;

/// Kafka's `ScramMechanism` minimum iteration count for both SHA-256 and SHA-512; its
/// client refuses a server-first message that asks for fewer.
const MIN_ITERATIONS: u32 = 4096;
/// Upper bound on the iteration count a server may ask for, so a hostile broker cannot make
/// the client spin in PBKDF2. Kafka's broker accepts at most 16384 when credentials are set.
const MAX_ITERATIONS: u32 = 1_000_000;
/// GS2 header: no channel binding, no authorization id.
const GS2_HEADER: &str = "n,,";

/// The hash family of a SCRAM mechanism.
#[derive(Clone, Copy)]
struct Algorithms {
    pbkdf2: pbkdf2::Algorithm,
    hmac: hmac::Algorithm,
    digest: &'static digest::Algorithm,
}

impl Algorithms {
    fn of(mechanism: SaslMechanism) -> Option<Self> {
        match mechanism {
            SaslMechanism::ScramSha256 => Some(Self {
                pbkdf2: pbkdf2::PBKDF2_HMAC_SHA256,
                hmac: hmac::HMAC_SHA256,
                digest: &digest::SHA256,
            }),
            SaslMechanism::ScramSha512 => Some(Self {
                pbkdf2: pbkdf2::PBKDF2_HMAC_SHA512,
                hmac: hmac::HMAC_SHA512,
                digest: &digest::SHA512,
            }),
            SaslMechanism::Plain => None,
        }
    }
}

/// One SCRAM exchange, client side.
pub(crate) struct ScramClient {
    algs: Algorithms,
    password: String,
    client_nonce: String,
    client_first_bare: String,
    /// Set by [`client_final`](Self::client_final): the key and message the server's
    /// signature must match.
    expected: Option<(hmac::Key, String)>,
}

impl ScramClient {
    /// A new exchange for `mechanism` (a SCRAM one) with the given client nonce (printable
    /// ASCII without `,`).
    pub(crate) fn new(
        mechanism: SaslMechanism,
        username: &str,
        password: &str,
        client_nonce: String,
    ) -> Result<Self, String> {
        let algs = Algorithms::of(mechanism).ok_or_else(|| format!("{mechanism} is not SCRAM"))?;
        let client_first_bare = format!("n={},r={client_nonce}", sasl_name(username));
        Ok(Self {
            algs,
            password: password.to_owned(),
            client_nonce,
            client_first_bare,
            expected: None,
        })
    }

    /// A fresh random nonce: 32 random bytes, base64 (Kafka's client uses 32 too).
    pub(crate) fn random_nonce() -> Result<String, String> {
        use ring::rand::SecureRandom as _;
        let mut bytes = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| "no randomness for the SCRAM nonce".to_owned())?;
        Ok(BASE64.encode(bytes))
    }

    /// The client-first message.
    pub(crate) fn client_first(&self) -> String {
        format!("{GS2_HEADER}{}", self.client_first_bare)
    }

    /// Reads the server-first message and returns the client-final message (with the proof).
    pub(crate) fn client_final(&mut self, server_first: &[u8]) -> Result<String, String> {
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| "server-first message is not UTF-8".to_owned())?;
        let attrs = attributes(server_first);
        if let Some(e) = attr(&attrs, 'e') {
            return Err(format!("server error {e}"));
        }
        if attrs.first().is_some_and(|(k, _)| *k == 'm') {
            return Err("server-first message asks for an unknown mandatory extension".into());
        }
        let nonce = attr(&attrs, 'r').ok_or("server-first message has no nonce")?;
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err("server nonce does not extend the client nonce".into());
        }
        let salt = attr(&attrs, 's')
            .and_then(|s| BASE64.decode(s).ok())
            .ok_or("server-first message has no valid salt")?;
        let iterations: u32 = attr(&attrs, 'i')
            .and_then(|i| i.parse().ok())
            .ok_or("server-first message has no valid iteration count")?;
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(format!(
                "server asks for {iterations} iterations (allowed {MIN_ITERATIONS}..={MAX_ITERATIONS})"
            ));
        }
        let iterations = NonZeroU32::new(iterations).ok_or("zero iterations")?;

        let len = self.algs.digest.output_len();
        let mut salted = vec![0u8; len];
        pbkdf2::derive(
            self.algs.pbkdf2,
            iterations,
            &salt,
            self.password.as_bytes(),
            &mut salted,
        );
        let salted_key = hmac::Key::new(self.algs.hmac, &salted);
        let client_key = hmac::sign(&salted_key, b"Client Key");
        let stored_key = digest::digest(self.algs.digest, client_key.as_ref());
        let without_proof = format!("c={},r={nonce}", BASE64.encode(GS2_HEADER));
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_signature = hmac::sign(
            &hmac::Key::new(self.algs.hmac, stored_key.as_ref()),
            auth_message.as_bytes(),
        );
        let proof: Vec<u8> = client_key
            .as_ref()
            .iter()
            .zip(client_signature.as_ref())
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = hmac::sign(&salted_key, b"Server Key");
        self.expected = Some((
            hmac::Key::new(self.algs.hmac, server_key.as_ref()),
            auth_message,
        ));
        Ok(format!("{without_proof},p={}", BASE64.encode(proof)))
    }

    /// Checks the server-final message: the server proves it knows the credentials too
    /// (RFC 5802 section 3, "ServerSignature"), so a man in the middle cannot fake success.
    pub(crate) fn verify_server_final(&self, server_final: &[u8]) -> Result<(), String> {
        let (key, auth_message) = self
            .expected
            .as_ref()
            .ok_or("server-final message before client-final")?;
        let text = std::str::from_utf8(server_final)
            .map_err(|_| "server-final message is not UTF-8".to_owned())?;
        let attrs = attributes(text);
        if let Some(e) = attr(&attrs, 'e') {
            return Err(format!("server error {e}"));
        }
        let signature = attr(&attrs, 'v')
            .and_then(|v| BASE64.decode(v).ok())
            .ok_or("server-final message has no valid signature")?;
        hmac::verify(key, auth_message.as_bytes(), &signature).map_err(|_| {
            "server signature does not match: the broker does not know the credentials".to_owned()
        })
    }
}

/// RFC 5802's `saslname`: `=` and `,` escaped as `=3D` and `=2C`.
fn sasl_name(username: &str) -> String {
    username.replace('=', "=3D").replace(',', "=2C")
}

/// `k=v` attributes of a SCRAM message, in order. Values may themselves contain `=`.
fn attributes(message: &str) -> Vec<(char, &str)> {
    message
        .split(',')
        .filter_map(|part| {
            let mut chars = part.chars();
            let key = chars.next()?;
            let value = part.get(key.len_utf8()..)?.strip_prefix('=')?;
            Some((key, value))
        })
        .collect()
}

fn attr<'a>(attrs: &[(char, &'a str)], key: char) -> Option<&'a str> {
    attrs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3's SCRAM-SHA-256 example.
    #[test]
    fn rfc7677_sha256_test_vector() {
        let mut c = ScramClient::new(
            SaslMechanism::ScramSha256,
            "user",
            "pencil",
            "rOprNGfwEbeRWgbNEkqO".to_owned(),
        )
        .unwrap();
        assert_eq!(c.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                            s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        assert_eq!(
            c.client_final(server_first.as_bytes()).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        c.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        let e = c
            .verify_server_final(b"v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        let e = c.verify_server_final(b"e=invalid-proof").unwrap_err();
        assert!(e.contains("invalid-proof"), "{e}");
    }

    #[test]
    fn sha512_proof_has_the_sha512_length() {
        let mut c =
            ScramClient::new(SaslMechanism::ScramSha512, "a,b=c", "pw", "abc".to_owned()).unwrap();
        assert_eq!(c.client_first(), "n,,n=a=2Cb=3Dc,r=abc");
        let last = c.client_final(b"r=abcdef,s=c2FsdA==,i=4096").unwrap();
        let proof = last.rsplit_once(",p=").unwrap().1;
        assert_eq!(BASE64.decode(proof).unwrap().len(), 64);
    }

    #[test]
    fn server_first_is_checked() {
        let bad: &[(&str, &str)] = &[
            ("r=xyz1,s=c2FsdA==,i=4096", "does not extend"),
            ("r=abc,s=c2FsdA==,i=4096", "does not extend"),
            ("r=abcd,s=c2FsdA==,i=1000", "iterations"),
            ("r=abcd,i=4096", "salt"),
            ("m=ext,r=abcd,s=c2FsdA==,i=4096", "mandatory"),
            ("e=other-error", "other-error"),
        ];
        for (msg, want) in bad {
            let mut c =
                ScramClient::new(SaslMechanism::ScramSha256, "u", "p", "abc".to_owned()).unwrap();
            let e = c.client_final(msg.as_bytes()).unwrap_err();
            assert!(e.contains(want), "{msg}: {e}");
        }
    }

    #[test]
    fn nonces_are_random_and_comma_free() {
        let a = ScramClient::random_nonce().unwrap();
        let b = ScramClient::random_nonce().unwrap();
        assert_ne!(a, b);
        assert!(!a.contains(','));
    }
}
