//! [`Mechanism`]: the SASL mechanisms Sluice implements, with their IANA names, the SCRAM
//! hash and wire code of the SCRAM ones (the credential APIs), and the JAAS login module
//! that configures each. Shared by the SASL exchange, the credential store, the credential
//! APIs and the console's login.

use super::scram_keys::Hash;

/// A SASL mechanism Sluice implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mechanism {
    /// PLAIN (RFC 4616).
    Plain,
    /// SCRAM-SHA-256 (RFC 7677).
    ScramSha256,
    /// SCRAM-SHA-512.
    ScramSha512,
    /// OAUTHBEARER (RFC 7628) with Kafka's unsecured token validator.
    OAuthBearer,
}

impl Mechanism {
    /// Parse the IANA name Kafka uses.
    pub fn parse(s: &str) -> Option<Mechanism> {
        match s.trim() {
            "PLAIN" => Some(Mechanism::Plain),
            "SCRAM-SHA-256" => Some(Mechanism::ScramSha256),
            "SCRAM-SHA-512" => Some(Mechanism::ScramSha512),
            "OAUTHBEARER" => Some(Mechanism::OAuthBearer),
            _ => None,
        }
    }

    /// The IANA name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// The hash of a SCRAM mechanism.
    pub fn scram(self) -> Option<Hash> {
        match self {
            Mechanism::ScramSha256 => Some(Hash::Sha256),
            Mechanism::ScramSha512 => Some(Hash::Sha512),
            _ => None,
        }
    }

    /// The wire code of a SCRAM mechanism in the credential APIs (Kafka's `ScramMechanism`).
    pub fn scram_code(self) -> Option<i8> {
        match self {
            Mechanism::ScramSha256 => Some(1),
            Mechanism::ScramSha512 => Some(2),
            _ => None,
        }
    }

    /// The SCRAM mechanism with wire code `c`.
    pub fn from_scram_code(c: i8) -> Option<Mechanism> {
        match c {
            1 => Some(Mechanism::ScramSha256),
            2 => Some(Mechanism::ScramSha512),
            _ => None,
        }
    }

    /// The JAAS login module class (simple name) that configures it.
    pub(crate) fn login_module(self) -> &'static str {
        match self {
            Mechanism::Plain => "PlainLoginModule",
            Mechanism::ScramSha256 | Mechanism::ScramSha512 => "ScramLoginModule",
            Mechanism::OAuthBearer => "OAuthBearerLoginModule",
        }
    }
}
