//! The Kafka client's own settings among a job's `kafkaParams` (`--conf KEY=VALUE`): the
//! security keys (`security.protocol`, `sasl.*`, `ssl.*`, see
//! [`sluice_client::SECURITY_KEYS`]) and `client.id` build the [`ClientConfig`] the stream
//! and the Kafka output connect with. Spark's DStream API takes them without a prefix, as
//! the Kafka consumer does; the `kafka.` prefix of Structured Streaming's options is
//! accepted too. Stream settings stay in [`StreamConfig`](crate::StreamConfig).

use sluice_client::{ClientConfig, Security, SECURITY_KEYS};

use crate::error::{Error, Result};

/// The client id when `client.id` is not given.
pub const DEFAULT_CLIENT_ID: &str = "sluice-spark";

/// `key` without Structured Streaming's `kafka.` prefix, if it is a client key.
fn client_key(key: &str) -> Option<&str> {
    let key = key.trim();
    let bare = key.strip_prefix("kafka.").unwrap_or(key);
    (bare == "client.id" || SECURITY_KEYS.contains(&bare)).then_some(bare)
}

/// Whether `key` belongs to the client config rather than the stream's.
pub fn is_client_key(key: &str) -> bool {
    client_key(key).is_some()
}

/// A client config for `bootstrap` from the client keys of `params` (other keys are
/// ignored). Certificate files are read here, so a wrong path fails at start.
pub fn client_config<K, V>(
    bootstrap: &str,
    params: impl IntoIterator<Item = (K, V)>,
) -> Result<ClientConfig>
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut client_id = DEFAULT_CLIENT_ID.to_owned();
    let mut security = Vec::new();
    for (k, v) in params {
        match client_key(k.as_ref()) {
            Some("client.id") => client_id = v.as_ref().trim().to_owned(),
            Some(key) => security.push((key.to_owned(), v.as_ref().to_owned())),
            None => {}
        }
    }
    let security = Security::from_properties(security)
        .map_err(|e| Error::Config(format!("kafka client setting {e}")))?;
    Ok(ClientConfig::from_bootstrap_list(bootstrap)
        .with_client_id(client_id)
        .with_security(security))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_client::{SaslMechanism, SecurityProtocol};

    #[test]
    fn security_params_reach_the_client_config() {
        let params = [
            ("group.id", "g"),
            ("security.protocol", "SASL_PLAINTEXT"),
            ("kafka.sasl.mechanism", "SCRAM-SHA-256"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.scram.ScramLoginModule required \
                 username=\"spark\" password=\"pw\";",
            ),
            ("client.id", "job-7"),
        ];
        assert!(params
            .iter()
            .all(|(k, _)| is_client_key(k) != (*k == "group.id")));
        let c = client_config("a:1,b:2", params).unwrap();
        assert_eq!(c.bootstrap_servers, ["a:1", "b:2"]);
        assert_eq!(c.client_id, "job-7");
        assert_eq!(c.security.protocol, SecurityProtocol::SaslPlaintext);
        let sasl = c.security.sasl.unwrap();
        assert_eq!(sasl.mechanism, SaslMechanism::ScramSha256);
        assert_eq!(sasl.username, "spark");

        let c = client_config("a:1", [("auto.offset.reset", "earliest")]).unwrap();
        assert_eq!(c.client_id, DEFAULT_CLIENT_ID);
        assert_eq!(c.security.protocol, SecurityProtocol::Plaintext);

        let e = client_config(
            "a:1",
            [
                ("security.protocol", "SSL"),
                ("ssl.truststore.location", "/nonexistent.pem"),
            ],
        )
        .unwrap_err();
        assert!(e.to_string().contains("ssl.truststore.location"), "{e}");
    }
}
