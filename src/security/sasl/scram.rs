//! SASL/SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), server side: the two-round
//! exchange Kafka's `ScramSaslServer` runs (client-first → server-first, client-final →
//! server-final).
//!
//! Not here: the key derivations (`security::scram_keys`), where credentials are kept
//! (`security::credentials`).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use super::{Failure, Progress};
use crate::security::credentials::ScramStore;
use crate::security::mechanism::Mechanism;
use crate::security::scram_keys::{random_bytes, Hash, ScramCredential, MIN_ITERATIONS};

/// RFC 5802 `saslname`: `=2C` is `,` and `=3D` is `=`; any other `=` is malformed.
fn decode_saslname(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(rest.get(..i)?);
        match rest.get(i..i + 3)? {
            "=2C" => out.push(','),
            "=3D" => out.push('='),
            _ => return None,
        }
        rest = rest.get(i + 3..)?;
    }
    out.push_str(rest);
    Some(out)
}

/// A fresh server nonce: 24 random bytes, base64 (printable, no commas).
fn server_nonce() -> Option<String> {
    random_bytes::<24>().map(|b| B64.encode(b))
}

enum State {
    First,
    Final {
        user: String,
        cred: ScramCredential,
        client_first_bare: String,
        server_first: String,
        nonce: String,
    },
    Done,
}

/// One SCRAM exchange on one connection.
pub struct Server {
    mechanism: Mechanism,
    hash: Hash,
    state: State,
    user: Option<String>,
}

impl Server {
    /// A new exchange for `mechanism` (a SCRAM one).
    pub fn new(mechanism: Mechanism, hash: Hash) -> Server {
        Server {
            mechanism,
            hash,
            state: State::First,
            user: None,
        }
    }

    /// The user name the client gave, once it has.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Kafka answers every SCRAM failure but the authorization-id one with this text, so a
    /// client cannot tell an unknown user from a wrong password.
    fn invalid(&self, why: impl Into<String>) -> Failure {
        Failure {
            message: format!(
                "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
                self.mechanism.name()
            ),
            reason: why.into(),
        }
    }

    /// Take the client's next message.
    pub fn step(&mut self, msg: &[u8], store: &ScramStore) -> Result<Progress, Failure> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::First => self.first(msg, store),
            State::Final {
                user,
                cred,
                client_first_bare,
                server_first,
                nonce,
            } => {
                let out = self.last(msg, &cred, &client_first_bare, &server_first, &nonce)?;
                Ok(Progress::Done {
                    response: out,
                    user,
                    credential_expires_ms: None,
                })
            }
            State::Done => Err(self.invalid("message after the exchange completed")),
        }
    }

    fn first(&mut self, msg: &[u8], store: &ScramStore) -> Result<Progress, Failure> {
        let msg =
            std::str::from_utf8(msg).map_err(|_| self.invalid("client-first is not UTF-8"))?;
        // gs2-header: channel-binding flag, then an optional authzid.
        let (cbind, rest) = msg
            .split_once(',')
            .ok_or_else(|| self.invalid("client-first has no gs2 header"))?;
        if cbind != "n" && cbind != "y" {
            return Err(self.invalid("channel binding is not supported"));
        }
        let (authzid, bare) = rest
            .split_once(',')
            .ok_or_else(|| self.invalid("client-first has no gs2 header"))?;
        let authzid = match authzid {
            "" => None,
            a => Some(
                a.strip_prefix("a=")
                    .and_then(decode_saslname)
                    .ok_or_else(|| self.invalid("malformed authzid"))?,
            ),
        };
        let mut attrs = bare.split(',');
        let user = attrs
            .next()
            .and_then(|a| a.strip_prefix("n="))
            .and_then(decode_saslname)
            .ok_or_else(|| self.invalid("client-first has no user name"))?;
        let client_nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .filter(|n| !n.is_empty())
            .ok_or_else(|| self.invalid("client-first has no nonce"))?;
        // Anything after is an extension (Kafka's `tokenauth=true`); delegation tokens are
        // not implemented, so extensions are ignored.
        self.user = Some(user.clone());
        // Kafka's `ScramSaslServer` looks the credential up first, so an unknown user gets
        // the invalid-credentials text whatever authorization id it asked for.
        let cred = store
            .get(&user, self.mechanism)
            .ok_or_else(|| self.invalid("no credential for this user and mechanism"))?;
        if let Some(a) = authzid.filter(|a| *a != user) {
            return Err(Failure {
                message: "Authentication failed: Client requested an authorization id that is different from username".into(),
                reason: format!("authorization id {a} differs from the user name"),
            });
        }
        if cred.iterations < MIN_ITERATIONS {
            return Err(self.invalid("stored credential has too few iterations"));
        }
        let nonce = format!(
            "{client_nonce}{}",
            server_nonce().ok_or_else(|| self.invalid("no random nonce"))?
        );
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&cred.salt),
            cred.iterations
        );
        self.state = State::Final {
            user,
            cred,
            client_first_bare: bare.to_string(),
            server_first: server_first.clone(),
            nonce,
        };
        Ok(Progress::Continue(server_first.into_bytes()))
    }

    fn last(
        &self,
        msg: &[u8],
        cred: &ScramCredential,
        client_first_bare: &str,
        server_first: &str,
        nonce: &str,
    ) -> Result<Vec<u8>, Failure> {
        let msg =
            std::str::from_utf8(msg).map_err(|_| self.invalid("client-final is not UTF-8"))?;
        let (without_proof, proof) = msg
            .rsplit_once(",p=")
            .ok_or_else(|| self.invalid("client-final has no proof"))?;
        let mut attrs = without_proof.split(',');
        if !attrs.next().is_some_and(|c| c.starts_with("c=")) {
            return Err(self.invalid("client-final has no channel binding"));
        }
        // Exact equality, as Kafka 4.x's `ScramSaslServer` checks (RFC 5802 section 5.1).
        // librdkafka before 2.6.1 sends `r=` + client nonce + the full nonce (the client
        // nonce twice, librdkafka PR 4895); Kafka 3.8.1 to 3.9 let that through with
        // `endsWith`, but 4.x refuses it with this message, and so do we.
        if attrs.next().and_then(|r| r.strip_prefix("r=")) != Some(nonce) {
            return Err(self.invalid("Invalid client nonce in the final client message."));
        }
        let proof = B64
            .decode(proof)
            .map_err(|_| self.invalid("proof is not base64"))?;
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = self.hash.hmac(&cred.stored_key, auth_message.as_bytes());
        if proof.len() != signature.len() {
            return Err(self.invalid("proof has the wrong length"));
        }
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
        if !super::same(&self.hash.digest(&client_key), &cred.stored_key) {
            return Err(self.invalid("wrong password"));
        }
        let server_signature = self.hash.hmac(&cred.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)).into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client side, enough to run the exchange in tests.
    pub(crate) fn client_final(
        hash: Hash,
        password: &str,
        client_first_bare: &str,
        server_first: &str,
    ) -> (String, Vec<u8>) {
        let attrs: Vec<&str> = server_first.split(',').collect();
        let nonce = attrs[0].strip_prefix("r=").unwrap();
        let salt = B64.decode(attrs[1].strip_prefix("s=").unwrap()).unwrap();
        let iterations: u32 = attrs[2].strip_prefix("i=").unwrap().parse().unwrap();
        let salted = hash.hi(password.as_bytes(), &salt, iterations);
        let client_key = hash.hmac(&salted, b"Client Key");
        let stored_key = hash.digest(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth = format!("{client_first_bare},{server_first},{without_proof}");
        let sig = hash.hmac(&stored_key, auth.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        let server_key = hash.hmac(&salted, b"Server Key");
        let expect = hash.hmac(&server_key, auth.as_bytes());
        (format!("{without_proof},p={}", B64.encode(proof)), expect)
    }

    #[test]
    fn rfc7677_vector() {
        // RFC 7677 section 3: user "user", password "pencil".
        let h = Hash::Sha256;
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = h.hi(b"pencil", &salt, 4096);
        let bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
        let server_first =
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let (final_msg, server_sig) = client_final(h, "pencil", bare, server_first);
        assert_eq!(
            final_msg,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert_eq!(
            B64.encode(server_sig),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        let cred = h.credential(&salt, &salted, 4096);
        assert_eq!(cred.stored_key, h.digest(&h.hmac(&salted, b"Client Key")));
    }

    #[test]
    fn exchange_against_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = ScramStore::open(dir.path()).unwrap();
        for (mech, h) in [
            (Mechanism::ScramSha256, Hash::Sha256),
            (Mechanism::ScramSha512, Hash::Sha512),
        ] {
            let salt = b"saltsaltsalt";
            let salted = h.hi(b"alice-secret", salt, 4096);
            store
                .upsert("alice", mech, h.credential(salt, &salted, 4096))
                .unwrap();
            let mut s = Server::new(mech, h);
            let bare = "n=alice,r=abc";
            let Progress::Continue(sf) = s.step(format!("n,,{bare}").as_bytes(), &store).unwrap()
            else {
                panic!("expected server-first");
            };
            let sf = String::from_utf8(sf).unwrap();
            let (cf, expect) = client_final(h, "alice-secret", bare, &sf);
            match s.step(cf.as_bytes(), &store).unwrap() {
                Progress::Done { response, user, .. } => {
                    assert_eq!(user, "alice");
                    assert_eq!(response, format!("v={}", B64.encode(expect)).into_bytes());
                }
                Progress::Continue(_) => panic!("expected the end"),
            }
            // A wrong password fails with Kafka's message.
            let mut s = Server::new(mech, h);
            let Progress::Continue(sf) = s.step(format!("n,,{bare}").as_bytes(), &store).unwrap()
            else {
                panic!("expected server-first");
            };
            let (cf, _) = client_final(h, "nope", bare, &String::from_utf8(sf).unwrap());
            let Err(e) = s.step(cf.as_bytes(), &store) else {
                panic!("wrong password accepted");
            };
            assert_eq!(
                e.message,
                format!("Authentication failed during authentication due to invalid credentials with SASL mechanism {}", mech.name())
            );
        }
        // Unknown users fail at the first message.
        let mut s = Server::new(Mechanism::ScramSha256, Hash::Sha256);
        assert!(s.step(b"n,,n=bob,r=x", &store).is_err());
        assert_eq!(s.user(), Some("bob"));
        // With Kafka's invalid-credentials text, even when the authorization id differs.
        let mut s = Server::new(Mechanism::ScramSha256, Hash::Sha256);
        let Err(e) = s.step(b"n,a=eve,n=bob,r=x", &store) else {
            panic!("unknown user accepted");
        };
        assert!(e.message.contains("invalid credentials"), "{}", e.message);
        // A known user asking for another authorization id gets Kafka's own text.
        let mut s = Server::new(Mechanism::ScramSha256, Hash::Sha256);
        let Err(e) = s.step(b"n,a=eve,n=alice,r=x", &store) else {
            panic!("authorization id accepted");
        };
        assert!(e.message.contains("authorization id"), "{}", e.message);
    }

    /// librdkafka before 2.6.1 (Debian's kcat links 2.0.2) repeats its client nonce in the
    /// client-final message, with a proof that is right for what it sent. Kafka 4.3.1
    /// compares the nonce with `equals` and fails the exchange before the proof, with
    /// Kafka's invalid-credentials text; Sluice must do the same, not accept a suffix
    /// match as Kafka 3.8.1 to 3.9 did.
    #[test]
    fn a_repeated_client_nonce_is_refused_as_kafka_4_does() {
        let dir = tempfile::tempdir().unwrap();
        let store = ScramStore::open(dir.path()).unwrap();
        let h = Hash::Sha512;
        let salted = h.hi(b"alice-secret", b"saltsaltsalt", 4096);
        store
            .upsert(
                "alice",
                Mechanism::ScramSha512,
                h.credential(b"saltsaltsalt", &salted, 4096),
            )
            .unwrap();
        let mut s = Server::new(Mechanism::ScramSha512, h);
        let cnonce = "LlLaX_g_1}L4>qkHxpf@OcLR?F?AY2_l";
        let bare = format!("n=alice,r={cnonce}");
        let Progress::Continue(sf) = s.step(format!("n,,{bare}").as_bytes(), &store).unwrap()
        else {
            panic!("expected server-first");
        };
        let sf = String::from_utf8(sf).unwrap();
        let nonce = sf.split(',').next().unwrap().strip_prefix("r=").unwrap();
        assert!(nonce.starts_with(cnonce) && nonce.len() > cnonce.len());
        // The client-final librdkafka 2.0.2 builds: `r=` + cnonce + the full nonce, with
        // a proof over exactly that text (so only the nonce check can refuse it).
        let without_proof = format!("c=biws,r={cnonce}{nonce}");
        let auth = format!("{bare},{sf},{without_proof}");
        let client_key = h.hmac(&salted, b"Client Key");
        let sig = h.hmac(&h.digest(&client_key), auth.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        let cf = format!("{without_proof},p={}", B64.encode(proof));
        let Err(e) = s.step(cf.as_bytes(), &store) else {
            panic!("a repeated client nonce was accepted");
        };
        assert_eq!(
            e.reason,
            "Invalid client nonce in the final client message."
        );
        assert!(e
            .message
            .contains("invalid credentials with SASL mechanism SCRAM-SHA-512"));
    }

    #[test]
    fn saslnames_decode() {
        assert_eq!(decode_saslname("a=2Cb=3D").as_deref(), Some("a,b="));
        assert_eq!(decode_saslname("a=b"), None);
        assert_eq!(decode_saslname("a=2").as_deref(), None);
    }
}
