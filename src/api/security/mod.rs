//! Security APIs: SaslHandshake and SaslAuthenticate once a connection is past
//! authentication (or on a listener without SASL), and the SCRAM credential APIs.
//! Authentication itself runs before dispatch, in `security::sasl`.

pub mod sasl;
pub mod scram_credentials;
