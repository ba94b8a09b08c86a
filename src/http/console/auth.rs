//! Who may use the web console, judged by the address the HTTP listener is bound to:
//!
//! - bound to a loopback address: open, as `User:ANONYMOUS` (a development broker). HTTP
//!   Basic credentials, if the browser sends them, are still checked and then used.
//! - bound beyond loopback, with SASL users (PLAIN users of any SASL listener's JAAS
//!   configuration, or SCRAM credentials): HTTP Basic is required and checked against them;
//!   the console then acts as `User:<name>`, and the authorizer judges every call.
//! - bound beyond loopback with no SASL users: 403 with a page saying why and how to enable
//!   it, unless `http.console_anonymous = true` (unsafe: anyone who reaches the port acts as
//!   `User:ANONYMOUS`).
//!
//! PLAIN passwords are compared in constant time. A SCRAM password is checked the way a
//! SCRAM client proves it: `SaltedPassword = Hi(password, salt, i)`, `StoredKey =
//! H(HMAC(SaltedPassword, "Client Key"))`, compared in constant time with the stored key. The
//! derivation (PBKDF2, thousands of rounds) runs on the blocking pool, and a successful one
//! is remembered for a few minutes (keyed by a keyed hash of user and password, and dropped
//! when the stored credential changes) so that the page's polling does not repeat it. Every
//! failed login is one INFO line with the peer and the user name; passwords never reach a
//! log.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use subtle::ConstantTimeEq;

use super::{Console, ConsoleError, Identity};
use crate::api::Broker;
use crate::security::mechanism::Mechanism;
use crate::security::Principal;

/// The realm the browser shows in its login prompt.
const REALM: &str = "Basic realm=\"Sluice console\", charset=\"UTF-8\"";
/// Longest `Authorization` header read (a Basic header is short; anything longer is refused
/// before decoding).
const MAX_AUTHORIZATION_BYTES: usize = 4096;
/// How long a verified SCRAM login is remembered.
const LOGIN_TTL: Duration = Duration::from_secs(300);
/// Most logins remembered at once; the cache is emptied when full.
const MAX_REMEMBERED_LOGINS: usize = 256;

/// Why a request may not use the console.
#[derive(Debug)]
pub enum Refusal {
    /// No or wrong credentials: 401 with a Basic challenge.
    Unauthenticated(&'static str),
    /// The console is off on this listener: 403 with the reason.
    Disabled,
}

impl Refusal {
    /// The answer: JSON for the API, a page for the rest.
    pub fn response(&self, api: bool) -> Response {
        match self {
            Refusal::Unauthenticated(why) => {
                let mut r =
                    ConsoleError::new(StatusCode::UNAUTHORIZED, "SASL_AUTHENTICATION_FAILED", *why)
                        .into_response();
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(REALM));
                r
            }
            Refusal::Disabled if api => {
                ConsoleError::new(StatusCode::FORBIDDEN, "CONSOLE_DISABLED", DISABLED_TEXT)
                    .into_response()
            }
            Refusal::Disabled => (
                StatusCode::FORBIDDEN,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                DISABLED_PAGE,
            )
                .into_response(),
        }
    }
}

const DISABLED_TEXT: &str = "the web console is disabled: the HTTP listener is bound beyond \
    localhost and the broker has no SASL users to log in with";

const DISABLED_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sluice console: disabled</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:760px;margin:40px auto;padding:0 20px;color:#1d2430}
code,pre{background:#f3f4f6;padding:1px 4px;border-radius:4px}pre{padding:10px}</style></head>
<body>
<h1>The web console is disabled on this address</h1>
<p>The HTTP listener is bound beyond localhost, and the broker has no SASL users, so there
is no way to tell who is asking. The console would let anyone who reaches this port read
every message and delete topics, so it is off. <code>/metrics</code> stays available.</p>
<h2>To enable it</h2>
<ul>
<li>Bind the HTTP listener to loopback (<code>--http 127.0.0.1:8080</code>, the default) and
reach it through an SSH tunnel; or</li>
<li>give the broker SASL users: PLAIN users in a SASL listener's JAAS configuration
(<code>user_alice="alice-secret"</code>) or SCRAM credentials
(<code>kafka-configs --alter --add-config 'SCRAM-SHA-256=[password=...]' --entity-type users
--entity-name alice</code>, or <code>sluice.add.scram</code>). The console then asks for a
user name and password (HTTP Basic), and the ACLs of <code>User:&lt;name&gt;</code> apply to
everything it does. Use TLS in front of it: Basic sends the password with every request.</li>
<li>Or, knowing that anyone who reaches the port gets the console as
<code>User:ANONYMOUS</code>, set <code>[http] console_anonymous = true</code>.</li>
</ul>
</body></html>
"#;

/// Decide who a request is (see the module comment).
pub async fn decide(
    console: &Console,
    peer: SocketAddr,
    authorization: Option<&HeaderValue>,
) -> Result<Identity, Refusal> {
    let broker = &console.broker;
    let open = console.bound.ip().to_canonical().is_loopback();
    let mode = if open {
        "open"
    } else if has_users(broker) {
        "authenticated"
    } else if broker.config.http_console_anonymous {
        "anonymous"
    } else {
        return Err(Refusal::Disabled);
    };
    let credentials = match authorization {
        Some(h) => Some(parse_basic(h).ok_or(Refusal::Unauthenticated(
            "the Authorization header is not HTTP Basic",
        ))?),
        None => None,
    };
    let Some((user, password)) = credentials else {
        return match mode {
            "authenticated" => Err(Refusal::Unauthenticated(
                "log in with a SASL user name and password",
            )),
            _ => Ok(Identity {
                principal: Principal::anonymous(),
                peer,
                mode,
            }),
        };
    };
    if verify(console, &user, &password).await {
        Ok(Identity {
            principal: Principal::user(user),
            peer,
            mode: "authenticated",
        })
    } else {
        // Kafka logs failed SASL logins at INFO too; the password is never logged.
        tracing::info!(%peer, user = %user, "web console: failed authentication: invalid username or password");
        Err(Refusal::Unauthenticated("invalid username or password"))
    }
}

/// Whether the broker has any SASL user to log in with.
pub fn has_users(broker: &Broker) -> bool {
    broker.sasl.plain_users().next().is_some() || !broker.scram.is_empty()
}

/// `Basic base64(user:password)` → (user, password).
pub fn parse_basic(h: &HeaderValue) -> Option<(String, String)> {
    let bytes = h.as_bytes();
    if bytes.len() > MAX_AUTHORIZATION_BYTES {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let (scheme, rest) = text.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = B64.decode(rest.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    if user.is_empty() {
        return None;
    }
    Some((user.to_string(), password.to_string()))
}

fn same(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}

/// Check `password` for `user`: any listener's PLAIN password, else a SCRAM credential.
async fn verify(console: &Console, user: &str, password: &str) -> bool {
    let broker = &console.broker;
    let mut plain_ok = false;
    for (_, u, p) in broker.sasl.plain_users() {
        if u == user {
            plain_ok |= same(p.as_bytes(), password.as_bytes());
        }
    }
    if plain_ok {
        return true;
    }
    let key = console.logins.key(user, password);
    let creds: Vec<_> = [Mechanism::ScramSha256, Mechanism::ScramSha512]
        .into_iter()
        .filter_map(|m| Some((m, broker.scram.get(user, m)?)))
        .collect();
    if creds.is_empty() {
        return false;
    }
    if let Some(remembered) = console.logins.get(&key) {
        if creds.iter().any(|(_, c)| same(&c.stored_key, &remembered)) {
            return true;
        }
    }
    let password = password.to_string();
    let verified = tokio::task::spawn_blocking(move || {
        creds.into_iter().find_map(|(m, c)| {
            let hash = m.scram()?;
            let iterations = u32::try_from(c.iterations).ok()?;
            let salted = hash.hi(password.as_bytes(), &c.salt, iterations);
            let client_key = hash.hmac(&salted, b"Client Key");
            let stored = hash.digest(&client_key);
            same(&stored, &c.stored_key).then_some(c.stored_key)
        })
    })
    .await
    .ok()
    .flatten();
    match verified {
        Some(stored_key) => {
            console.logins.put(key, stored_key);
            true
        }
        None => false,
    }
}

/// SCRAM logins verified lately: a keyed hash of (user, password) → the stored key it
/// matched, and when. A hit counts only while that stored key is still the user's.
#[derive(Debug)]
pub struct LoginCache {
    secret: [u8; 32],
    entries: Mutex<HashMap<[u8; 32], Remembered>>,
}

/// The stored key a login matched, and when.
type Remembered = (Vec<u8>, Instant);

impl Default for LoginCache {
    fn default() -> Self {
        LoginCache {
            // With no randomness from the OS the cache never matches anything of value:
            // a zero key only makes the keyed hash a plain one.
            secret: crate::security::scram_keys::random_bytes::<32>().unwrap_or([0; 32]),
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl LoginCache {
    fn key(&self, user: &str, password: &str) -> [u8; 32] {
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.secret);
        let mut ctx = ring::hmac::Context::with_key(&k);
        ctx.update(user.as_bytes());
        ctx.update(&[0]);
        ctx.update(password.as_bytes());
        let tag = ctx.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    fn get(&self, key: &[u8; 32]) -> Option<Vec<u8>> {
        let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (stored, at) = map.get(key)?;
        (at.elapsed() < LOGIN_TTL).then(|| stored.clone())
    }

    fn put(&self, key: [u8; 32], stored_key: Vec<u8>) {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_REMEMBERED_LOGINS {
            map.retain(|_, (_, at)| at.elapsed() < LOGIN_TTL);
            if map.len() >= MAX_REMEMBERED_LOGINS {
                map.clear();
            }
        }
        map.insert(key, (stored_key, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_headers_parse() {
        let h = HeaderValue::from_static("Basic YWxpY2U6czNjcjp0");
        assert_eq!(parse_basic(&h), Some(("alice".into(), "s3cr:t".into())));
        assert_eq!(parse_basic(&HeaderValue::from_static("Bearer abc")), None);
        assert_eq!(parse_basic(&HeaderValue::from_static("Basic !!!")), None);
        // ":pw": no user name.
        assert_eq!(parse_basic(&HeaderValue::from_static("Basic OnB3")), None);
    }

    #[test]
    fn the_login_cache_is_keyed_by_user_and_password() {
        let c = LoginCache::default();
        let k = c.key("alice", "pw");
        assert_ne!(k, c.key("alice", "pw2"));
        assert_ne!(k, c.key("alic", "epw"));
        assert!(c.get(&k).is_none());
        c.put(k, vec![1, 2, 3]);
        assert_eq!(c.get(&k), Some(vec![1, 2, 3]));
    }
}
