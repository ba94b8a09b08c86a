//! SASL/OAUTHBEARER (RFC 7628, Kafka's KIP-255), server side, with Kafka's development
//! validator `OAuthBearerUnsecuredValidatorCallbackHandler`: the token is an unsecured JWS
//! (`{"alg":"none"}` header, claims, empty signature); the principal is its `sub` claim
//! (or `unsecuredValidatorPrincipalClaimName`), `exp` is required and checked, `iat` may
//! not lie in the future, and `unsecuredValidatorRequiredScope` lists scopes the `scope`
//! claim must hold. Tokens are not signed: this is for development only, as in Kafka.
//!
//! A rejected token is answered, as Kafka does, with an RFC 7628 error challenge
//! (`{"status":"invalid_token"}`); the client acknowledges it with a lone `0x01` and the
//! exchange fails with that JSON as the message.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;

use super::{Failure, Progress};

/// The unsecured validator's options (the `unsecuredValidator*` JAAS options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validator {
    /// Claim holding the principal name (`sub`).
    pub principal_claim: String,
    /// Claim holding the scopes (`scope`).
    pub scope_claim: String,
    /// Scopes a token must hold.
    pub required_scope: Vec<String>,
    /// Clock skew allowed when checking `exp` and `iat`, ms.
    pub clock_skew_ms: i64,
}

impl Default for Validator {
    fn default() -> Self {
        Validator {
            principal_claim: "sub".into(),
            scope_claim: "scope".into(),
            required_scope: Vec::new(),
            clock_skew_ms: 0,
        }
    }
}

impl Validator {
    /// From a JAAS entry's options.
    pub fn from_options(o: &BTreeMap<String, String>) -> Result<Validator, String> {
        let mut v = Validator::default();
        if let Some(c) = o
            .get("unsecuredValidatorPrincipalClaimName")
            .filter(|c| !c.trim().is_empty())
        {
            v.principal_claim = c.trim().to_string();
        }
        if let Some(c) = o
            .get("unsecuredValidatorScopeClaimName")
            .filter(|c| !c.trim().is_empty())
        {
            v.scope_claim = c.trim().to_string();
        }
        if let Some(s) = o.get("unsecuredValidatorRequiredScope") {
            v.required_scope = s.split_whitespace().map(str::to_string).collect();
        }
        if let Some(ms) = o.get("unsecuredValidatorAllowableClockSkewMs") {
            v.clock_skew_ms = ms
                .trim()
                .parse()
                .ok()
                .filter(|ms: &i64| *ms >= 0)
                .ok_or_else(|| format!("unsecuredValidatorAllowableClockSkewMs '{ms}' is not a non-negative number"))?;
        }
        Ok(v)
    }

    /// Validate `token` at `now_ms`: the principal name and the expiry (epoch ms), or the
    /// RFC 7628 error status and scope.
    fn validate(
        &self,
        token: &str,
        now_ms: i64,
    ) -> Result<(String, i64), (&'static str, Option<String>)> {
        let invalid = ("invalid_token", None);
        let mut parts = token.split('.');
        let (Some(header), Some(claims), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid);
        };
        if !sig.is_empty() {
            return Err(invalid);
        }
        let json = |p: &str| -> Option<serde_json::Map<String, serde_json::Value>> {
            let bytes = B64URL.decode(p.trim_end_matches('=')).ok()?;
            match serde_json::from_slice(&bytes).ok()? {
                serde_json::Value::Object(m) => Some(m),
                _ => None,
            }
        };
        let header = json(header).ok_or(invalid.clone())?;
        if header.get("alg").and_then(|a| a.as_str()) != Some("none") {
            return Err(invalid);
        }
        let claims = json(claims).ok_or(invalid.clone())?;
        let principal = claims
            .get(&self.principal_claim)
            .and_then(|p| p.as_str())
            .filter(|p| !p.trim().is_empty())
            .ok_or(invalid.clone())?;
        // NumericDate: seconds, possibly fractional. Whole seconds convert with checked
        // arithmetic; fractional ones are rounded to the millisecond (through text, so no
        // lossy cast), and absurd values (beyond ±9·10¹⁵ ms) make the token invalid.
        let millis = |c: &str| -> Option<i64> {
            let v = claims.get(c)?;
            if let Some(s) = v.as_i64() {
                return s.checked_mul(1000);
            }
            let s = v.as_f64()?;
            let ms = (s * 1000.0).round();
            (ms.is_finite() && ms.abs() < 9.0e15).then(|| format!("{ms:.0}").parse().ok())?
        };
        let exp = millis("exp").ok_or(invalid.clone())?;
        if now_ms.saturating_sub(self.clock_skew_ms) >= exp {
            return Err(invalid);
        }
        if let Some(iat) = millis("iat") {
            if iat > now_ms.saturating_add(self.clock_skew_ms) {
                return Err(invalid);
            }
        }
        if !self.required_scope.is_empty() {
            let held: Vec<String> = match claims.get(&self.scope_claim) {
                Some(serde_json::Value::String(s)) => {
                    s.split_whitespace().map(str::to_string).collect()
                }
                Some(serde_json::Value::Array(a)) => a
                    .iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect(),
                _ => Vec::new(),
            };
            if self.required_scope.iter().any(|r| !held.contains(r)) {
                return Err(("insufficient_scope", Some(self.required_scope.join(" "))));
            }
        }
        Ok((principal.to_string(), exp))
    }
}

/// One OAUTHBEARER exchange.
#[derive(Debug, Default)]
pub struct Server {
    /// The error challenge sent, awaiting the client's `0x01`.
    error: Option<String>,
    user: Option<String>,
}

impl Server {
    /// The principal name of the token presented, once known.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Take the client's next message.
    pub fn step(&mut self, msg: &[u8], v: &Validator, now_ms: i64) -> Result<Progress, Failure> {
        if msg == [0x01] {
            if let Some(e) = self.error.take() {
                return Err(Failure {
                    reason: format!("token rejected: {e}"),
                    message: e,
                });
            }
        }
        self.error = None;
        let (authzid, token) = parse_initial(msg).ok_or_else(|| Failure {
            message: "Invalid OAUTHBEARER client first message".into(),
            reason: "malformed client initial response".into(),
        })?;
        match v.validate(&token, now_ms) {
            Ok((principal, exp)) => {
                self.user = Some(principal.clone());
                if !authzid.is_empty() && authzid != principal {
                    return Err(Failure {
                        message: format!("Authentication failed: Client requested an authorization id ({authzid}) that is different from the token's principal name ({principal})"),
                        reason: "authorization id differs from the principal".into(),
                    });
                }
                Ok(Progress::Done {
                    response: Vec::new(),
                    user: principal,
                    credential_expires_ms: Some(exp),
                })
            }
            Err((status, scope)) => {
                let mut e = format!("{{\"status\":\"{status}\"");
                if let Some(s) = scope {
                    e.push_str(&format!(", \"scope\":\"{s}\""));
                }
                e.push('}');
                self.error = Some(e.clone());
                Ok(Progress::Continue(e.into_bytes()))
            }
        }
    }
}

/// KIP-255's client initial response: `n,[a=authzid],` then `0x01`-separated `key=value`
/// pairs, `auth=Bearer <token>` among them, ended by `0x01 0x01`.
fn parse_initial(msg: &[u8]) -> Option<(String, String)> {
    let s = std::str::from_utf8(msg).ok()?;
    let rest = s.strip_prefix("n,")?;
    let (authzid, rest) = rest.split_once(',')?;
    let authzid = match authzid {
        "" => "",
        a => a.strip_prefix("a=")?,
    };
    let kvs = rest.strip_prefix('\u{1}')?.strip_suffix("\u{1}\u{1}")?;
    let mut token = None;
    for kv in kvs.split('\u{1}') {
        let (k, v) = kv.split_once('=')?;
        if k == "auth" {
            let (scheme, t) = v.split_once(' ')?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return None;
            }
            let t = t.trim_start();
            if t.is_empty()
                || !t
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return None;
            }
            token = Some(t.to_string());
        }
    }
    Some((authzid.to_string(), token?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(claims: &str) -> String {
        format!(
            "{}.{}.",
            B64URL.encode(br#"{"alg":"none"}"#),
            B64URL.encode(claims)
        )
    }

    fn initial(t: &str) -> Vec<u8> {
        format!("n,,\u{1}auth=Bearer {t}\u{1}\u{1}").into_bytes()
    }

    #[test]
    fn valid_and_expired_tokens() {
        let v = Validator::default();
        let now = 1_700_000_000_000;
        let mut s = Server::default();
        match s.step(
            &initial(&token(r#"{"sub":"admin","exp":1700000100}"#)),
            &v,
            now,
        ) {
            Ok(Progress::Done {
                user,
                credential_expires_ms,
                ..
            }) => {
                assert_eq!(user, "admin");
                assert_eq!(credential_expires_ms, Some(1_700_000_100_000));
            }
            _ => panic!("valid token refused"),
        }
        let mut s = Server::default();
        let Ok(Progress::Continue(c)) = s.step(
            &initial(&token(r#"{"sub":"admin","exp":1699999999}"#)),
            &v,
            now,
        ) else {
            panic!("expected an error challenge");
        };
        assert_eq!(c, br#"{"status":"invalid_token"}"#);
        let e = s.step(&[1], &v, now).unwrap_err();
        assert!(e.message.contains("invalid_token"));
    }

    #[test]
    fn fractional_and_absurd_expiry() {
        let v = Validator::default();
        let mut s = Server::default();
        match s.step(&initial(&token(r#"{"sub":"a","exp":2.5}"#)), &v, 1_000) {
            Ok(Progress::Done {
                credential_expires_ms,
                ..
            }) => {
                assert_eq!(credential_expires_ms, Some(2_500))
            }
            _ => panic!("fractional exp refused"),
        }
        for exp in ["1e300", "9223372036854775807", "\"soon\""] {
            let claims = format!(r#"{{"sub":"a","exp":{exp}}}"#);
            let r = Server::default().step(&initial(&token(&claims)), &v, 1_000);
            assert!(matches!(r, Ok(Progress::Continue(_))), "exp {exp} accepted");
        }
    }

    #[test]
    fn scope_and_shape() {
        let v = Validator {
            required_scope: vec!["write".into()],
            ..Validator::default()
        };
        let now = 1_000;
        let mut s = Server::default();
        let Ok(Progress::Continue(c)) = s.step(
            &initial(&token(r#"{"sub":"a","exp":10,"scope":"read"}"#)),
            &v,
            now,
        ) else {
            panic!("expected an error challenge");
        };
        assert!(String::from_utf8(c).unwrap().contains("insufficient_scope"));
        assert!(Server::default().step(b"garbage", &v, now).is_err());
        assert!(parse_initial(b"n,,\x01auth=Basic abc\x01\x01").is_none());
    }
}
