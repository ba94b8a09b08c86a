//! The tokens of a SASL authentication, as Kafka's `SaslClientAuthenticator` exchanges them
//! after ApiVersions: [`Conversation`] gives the first token for the mechanism and, for each
//! reply of the broker, the next one (one token for PLAIN, two for SCRAM, whose messages are
//! built in `scram.rs`). It does no I/O: `connection.rs` names the mechanism in SaslHandshake
//! and carries the tokens in SaslAuthenticate requests. A refusal is
//! [`Error::Authentication`]: not retriable, naming the mechanism and the user, never the
//! password.

use super::scram::ScramClient;
use super::{SaslConfig, SaslMechanism};
use crate::error::Error;

/// One authentication's progress.
pub(crate) struct Conversation<'a> {
    sasl: &'a SaslConfig,
    state: State,
}

enum State {
    /// Nothing sent yet.
    Start,
    /// PLAIN's only token sent.
    PlainSent,
    /// SCRAM's client-first sent.
    ScramFirstSent(ScramClient),
    /// SCRAM's client-final sent.
    ScramFinalSent(ScramClient),
    /// Authenticated, or failed.
    Over,
}

impl<'a> Conversation<'a> {
    /// A conversation for `sasl`'s mechanism and credentials.
    pub(crate) fn new(sasl: &'a SaslConfig) -> Self {
        Self {
            sasl,
            state: State::Start,
        }
    }

    /// The mechanism's IANA name, for SaslHandshake.
    pub(crate) fn mechanism(&self) -> &'static str {
        self.sasl.mechanism.name()
    }

    /// The first token.
    pub(crate) fn start(&mut self) -> Result<Vec<u8>, String> {
        let sasl = self.sasl;
        match sasl.mechanism {
            SaslMechanism::Plain => {
                // RFC 4616: authzid NUL authcid NUL passwd, with an empty authzid as Kafka's
                // PlainSaslClient sends it.
                let mut token = Vec::with_capacity(sasl.username.len() + sasl.password().len() + 2);
                token.push(0);
                token.extend_from_slice(sasl.username.as_bytes());
                token.push(0);
                token.extend_from_slice(sasl.password().as_bytes());
                self.state = State::PlainSent;
                Ok(token)
            }
            SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
                let nonce = ScramClient::random_nonce()?;
                let scram =
                    ScramClient::new(sasl.mechanism, &sasl.username, sasl.password(), nonce)?;
                let first = scram.client_first().into_bytes();
                self.state = State::ScramFirstSent(scram);
                Ok(first)
            }
        }
    }

    /// Takes the broker's reply (`auth_bytes` of a successful SaslAuthenticate) to the last
    /// token: the next token to send, or `None` once authenticated.
    pub(crate) fn reply(&mut self, auth_bytes: &[u8]) -> Result<Option<Vec<u8>>, String> {
        match std::mem::replace(&mut self.state, State::Over) {
            State::PlainSent => Ok(None),
            State::ScramFirstSent(mut scram) => {
                let client_final = scram.client_final(auth_bytes)?;
                self.state = State::ScramFinalSent(scram);
                Ok(Some(client_final.into_bytes()))
            }
            State::ScramFinalSent(scram) => scram.verify_server_final(auth_bytes).map(|()| None),
            State::Start | State::Over => Err("no token is awaiting a reply".to_owned()),
        }
    }

    /// The error for a refusal by the broker at `addr`, or a failure on our side.
    pub(crate) fn refused(&self, addr: &str, why: String) -> Error {
        Error::Authentication {
            addr: addr.to_owned(),
            message: format!(
                "SASL {} authentication as user {:?} failed: {why}",
                self.sasl.mechanism, self.sasl.username
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_is_one_token_then_done() {
        let cfg = SaslConfig::new(SaslMechanism::Plain, "alice", "s3cret");
        let mut c = Conversation::new(&cfg);
        assert_eq!(c.mechanism(), "PLAIN");
        assert_eq!(c.start().unwrap(), b"\0alice\0s3cret");
        assert_eq!(c.reply(b""), Ok(None));
        assert!(c.reply(b"").is_err(), "nothing more is awaited");
    }

    #[test]
    fn refusals_name_the_mechanism_and_user_never_the_password() {
        let cfg = SaslConfig::new(SaslMechanism::ScramSha256, "bob", "hunter2");
        let c = Conversation::new(&cfg);
        let e = c.refused("b:9092", "Invalid username or password".to_owned());
        let text = e.to_string();
        assert!(
            text.contains("SCRAM-SHA-256") && text.contains("\"bob\""),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
    }
}
