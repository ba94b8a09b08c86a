//! SASL/PLAIN (RFC 4616), server side, checked against the `user_<name>="<password>"`
//! options of Kafka's `PlainLoginModule` JAAS entry, with the messages Kafka's
//! `PlainSaslServer` fails with.

use std::collections::BTreeMap;

use super::{Failure, Progress};

/// Check one PLAIN message, `authzid NUL user NUL password`, against `users`.
/// `user` receives the name the client gave (for the failure log line).
pub fn authenticate(
    msg: &[u8],
    users: &BTreeMap<String, String>,
    user: &mut Option<String>,
) -> Result<Progress, Failure> {
    let fail = |m: &str| Failure {
        message: m.to_string(),
        reason: m.to_string(),
    };
    let text = String::from_utf8_lossy(msg);
    // Kafka splits on NUL keeping trailing empty tokens, and wants exactly three. Like
    // Kafka's `extractTokens`, stop at the fourth: a message of NULs must not size a
    // vector, and Kafka reports "got 4" for any more.
    let parts: Vec<&str> = text.split('\u{0}').take(4).collect();
    let [authzid, username, password] = parts[..] else {
        return Err(fail(&format!(
            "Invalid SASL/PLAIN response: expected 3 tokens, got {}",
            parts.len()
        )));
    };
    if username.is_empty() {
        return Err(fail("Authentication failed: username not specified"));
    }
    *user = Some(username.to_string());
    if password.is_empty() {
        return Err(fail("Authentication failed: password not specified"));
    }
    let ok = users
        .get(username)
        .is_some_and(|expected| super::same(expected.as_bytes(), password.as_bytes()));
    if !ok {
        return Err(fail("Authentication failed: Invalid username or password"));
    }
    if !authzid.is_empty() && authzid != username {
        return Err(fail(
            "Authentication failed: Client requested an authorization id that is different from username",
        ));
    }
    Ok(Progress::Done {
        response: Vec::new(),
        user: username.to_string(),
        credential_expires_ms: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> BTreeMap<String, String> {
        [("alice".to_string(), "alice-secret".to_string())].into()
    }

    #[test]
    fn good_and_bad_passwords() {
        let mut u = None;
        match authenticate(b"\0alice\0alice-secret", &users(), &mut u) {
            Ok(Progress::Done { user, .. }) => assert_eq!(user, "alice"),
            _ => panic!("alice refused"),
        }
        let e = authenticate(b"\0alice\0nope", &users(), &mut u).unwrap_err();
        assert_eq!(
            e.message,
            "Authentication failed: Invalid username or password"
        );
        let e = authenticate(b"\0bob\0alice-secret", &users(), &mut u).unwrap_err();
        assert_eq!(
            e.message,
            "Authentication failed: Invalid username or password"
        );
        assert_eq!(u.as_deref(), Some("bob"));
        let e = authenticate(b"bob\0alice\0alice-secret", &users(), &mut u).unwrap_err();
        assert!(e.message.contains("authorization id"), "{}", e.message);
        let e = authenticate(b"alice\0alice-secret", &users(), &mut u).unwrap_err();
        assert_eq!(
            e.message,
            "Invalid SASL/PLAIN response: expected 3 tokens, got 2"
        );
        let e = authenticate(&[0; 1000], &users(), &mut u).unwrap_err();
        assert_eq!(
            e.message,
            "Invalid SASL/PLAIN response: expected 3 tokens, got 4"
        );
    }
}
