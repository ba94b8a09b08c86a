//! SASL authentication on SASL_PLAINTEXT and SASL_SSL listeners, as Kafka's
//! `SaslServerAuthenticator` runs it: before a connection has authenticated, only
//! ApiVersions, SaslHandshake and SaslAuthenticate are served and anything else closes it;
//! SaslHandshake picks a mechanism among the listener's enabled ones (else
//! UNSUPPORTED_SASL_MECHANISM with the enabled list, and a close); SaslAuthenticate carries
//! the mechanism's messages (SaslHandshake v0 clients send them raw, length-prefixed, and
//! get raw answers); a failure answers SASL_AUTHENTICATION_FAILED with Kafka's message and
//! closes. Re-authentication (KIP-368): with `connections.max.reauth.ms` (or a token's
//! expiry) a session has a lifetime, sent in SaslAuthenticate v1+; past it, anything but
//! the three SASL-phase requests closes the connection, and a new SaslHandshake +
//! SaslAuthenticate on the live connection renews it, with the same mechanism and principal.
//!
//! - this file: mechanisms, per-listener settings (from Kafka's properties and JAAS
//!   configuration), and the per-connection [`Authenticator`] the server consults before
//!   dispatching each frame.
//! - [`plain`], [`scram`], [`oauthbearer`]: the mechanisms' server sides.
//! - [`jaas`]: Kafka's JAAS configuration syntax.
//!
//! Not here: the SCRAM credential store (`security::credentials`), the admin APIs
//! (`api::security`), sockets (`server::connection`).

pub mod jaas;
pub mod oauthbearer;
pub mod plain;
pub mod scram;

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, RequestHeader, ResponseKind, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use tracing::{debug, info, warn};

use super::credentials::ScramStore;
use super::mechanism::Mechanism;
use super::scram_keys::Hash;
use super::{Principal, Props, Protocol, Session};

/// Kafka's default `sasl.server.max.receive.size`: the largest frame read from a client that
/// has not authenticated yet.
pub const DEFAULT_MAX_RECEIVE: usize = 524_288;

/// What a mechanism step produced.
#[derive(Debug)]
pub enum Progress {
    /// Send this challenge and wait for the client's next message.
    Continue(Vec<u8>),
    /// Authenticated.
    Done {
        /// The last message to the client (may be empty).
        response: Vec<u8>,
        /// The authenticated name (the principal is `User:<name>`).
        user: String,
        /// When the credential expires (OAUTHBEARER's `exp`), epoch ms.
        credential_expires_ms: Option<i64>,
    },
}

/// A failed authentication.
#[derive(Debug)]
pub struct Failure {
    /// What the client is told (Kafka's text).
    pub message: String,
    /// What the log says.
    pub reason: String,
}

/// One SASL listener's settings.
#[derive(Clone)]
pub struct ListenerSasl {
    /// `sasl.enabled.mechanisms`, in the order given.
    pub enabled: Vec<Mechanism>,
    /// PLAIN users and passwords (`user_<name>` options of the `PlainLoginModule` entry).
    pub plain_users: BTreeMap<String, String>,
    /// OAUTHBEARER's unsecured validator options.
    pub oauth: oauthbearer::Validator,
    /// `connections.max.reauth.ms` by mechanism; 0: sessions do not expire.
    pub max_reauth_ms: BTreeMap<Mechanism, i64>,
    /// `sasl.server.max.receive.size`.
    pub max_receive: usize,
}

impl std::fmt::Debug for ListenerSasl {
    // PLAIN passwords never reach a log: users are listed by name only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerSasl")
            .field("enabled", &self.enabled)
            .field("plain_users", &self.plain_users.keys().collect::<Vec<_>>())
            .field("oauth", &self.oauth)
            .field("max_reauth_ms", &self.max_reauth_ms)
            .field("max_receive", &self.max_receive)
            .finish()
    }
}

/// Every SASL listener's settings, by lower-case listener name.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    listeners: BTreeMap<String, ListenerSasl>,
}

/// The JAAS file named by `java.security.auth.login.config`, parsed once.
type JaasFile = BTreeMap<String, Vec<jaas::Entry>>;

impl Settings {
    /// Build the settings of every SASL listener in `listeners` (`(name, protocol)`) from
    /// Kafka's properties, reading the JAAS file if one is named.
    pub fn from_props(props: &Props, listeners: &[(String, Protocol)]) -> Result<Settings, String> {
        let file = match props.get("java.security.auth.login.config") {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    format!("java.security.auth.login.config: cannot read {path}: {e}")
                })?;
                Some(
                    jaas::parse_file(&text)
                        .map_err(|e| format!("java.security.auth.login.config: {path}: {e}"))?,
                )
            }
            None => None,
        };
        let mut out = Settings::default();
        for (name, protocol) in listeners {
            if protocol.sasl() {
                let l = listener_settings(props, file.as_ref(), name)?;
                out.listeners.insert(name.to_ascii_lowercase(), l);
            }
        }
        Ok(out)
    }

    /// The settings of listener `name`, if it is a SASL listener.
    pub fn listener(&self, name: &str) -> Option<&ListenerSasl> {
        self.listeners.get(&name.to_ascii_lowercase())
    }

    /// Every PLAIN user of every SASL listener, as (listener, user, password). The web
    /// console checks HTTP Basic credentials against these (`crate::http::console`).
    pub fn plain_users(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.listeners.iter().flat_map(|(l, s)| {
            s.plain_users
                .iter()
                .map(move |(u, p)| (l.as_str(), u.as_str(), p.as_str()))
        })
    }
}

fn listener_settings(
    props: &Props,
    file: Option<&JaasFile>,
    name: &str,
) -> Result<ListenerSasl, String> {
    let l = name.to_ascii_lowercase();
    let enabled = match props.for_listener(name, "sasl.enabled.mechanisms") {
        Some(list) => {
            let mut enabled = Vec::new();
            for m in list.split(',').map(str::trim).filter(|m| !m.is_empty()) {
                match Mechanism::parse(m) {
                    Some(m) if !enabled.contains(&m) => enabled.push(m),
                    Some(_) => {}
                    None => warn!(
                        listener = name,
                        mechanism = m,
                        "sasl.enabled.mechanisms: {m} is not implemented (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER are); not offered"
                    ),
                }
            }
            if enabled.is_empty() {
                return Err(format!(
                    "listener {name}: sasl.enabled.mechanisms '{list}' names no mechanism Sluice implements (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER)"
                ));
            }
            enabled
        }
        None => {
            // Kafka's default is GSSAPI (Kerberos), which Sluice does not implement; the
            // mechanisms that need no external service are enabled instead.
            info!(
                listener = name,
                "sasl.enabled.mechanisms not set: enabling PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (Kafka's default, GSSAPI, is not implemented)"
            );
            vec![
                Mechanism::Plain,
                Mechanism::ScramSha256,
                Mechanism::ScramSha512,
            ]
        }
    };
    let mut l_settings = ListenerSasl {
        enabled: enabled.clone(),
        plain_users: BTreeMap::new(),
        oauth: oauthbearer::Validator::default(),
        max_reauth_ms: BTreeMap::new(),
        max_receive: DEFAULT_MAX_RECEIVE,
    };
    if let Some(v) = props.for_listener(name, "sasl.server.max.receive.size") {
        l_settings.max_receive = v
            .trim()
            .parse()
            .map_err(|_| format!("sasl.server.max.receive.size '{v}' is not a number"))?;
    }
    for m in enabled {
        let mech = m.name().to_ascii_lowercase();
        let scoped = |key: &str| {
            props
                .get(&format!("listener.name.{l}.{mech}.{key}"))
                .or_else(|| props.for_listener(name, key))
        };
        // Only Kafka's own callback handlers are what Sluice implements; accepting a
        // custom one (say, a JWKS-verifying OAUTHBEARER validator) and then checking
        // nothing would let anyone in.
        if let Some(class) = scoped("sasl.server.callback.handler.class") {
            if !class.ends_with("OAuthBearerUnsecuredValidatorCallbackHandler") {
                return Err(format!(
                    "listener {name}: {} sasl.server.callback.handler.class {class} is not implemented by Sluice",
                    m.name()
                ));
            }
        }
        if let Some(v) = scoped("connections.max.reauth.ms") {
            let ms: i64 = v
                .trim()
                .parse()
                .map_err(|_| format!("connections.max.reauth.ms '{v}' is not a number"))?;
            l_settings.max_reauth_ms.insert(m, ms.max(0));
        }
        let entry = jaas_entry(props, file, &l, m)?;
        match m {
            Mechanism::Plain => {
                if let Some(e) = &entry {
                    l_settings.plain_users = e
                        .options
                        .iter()
                        .filter_map(|(k, v)| {
                            Some((k.strip_prefix("user_")?.to_string(), v.clone()))
                        })
                        .collect();
                }
                if l_settings.plain_users.is_empty() {
                    warn!(listener = name, "PLAIN is enabled but no JAAS PlainLoginModule entry defines users (user_<name>=\"<password>\"): every PLAIN login will fail");
                }
            }
            Mechanism::OAuthBearer => {
                if let Some(e) = &entry {
                    l_settings.oauth = oauthbearer::Validator::from_options(&e.options)
                        .map_err(|e| format!("listener {name}: OAUTHBEARER: {e}"))?;
                }
                warn!(listener = name, "OAUTHBEARER uses Kafka's unsecured token validator (unsigned tokens): for development only");
            }
            Mechanism::ScramSha256 | Mechanism::ScramSha512 => {}
        }
    }
    Ok(l_settings)
}

/// The JAAS entry configuring mechanism `m` on listener `l`, looked up as Kafka does
/// (`listener.name.<l>.<mechanism>.sasl.jaas.config`, then the JAAS file's
/// `<l>.KafkaServer` and `KafkaServer` sections), and also in
/// `listener.name.<l>.sasl.jaas.config` and `sasl.jaas.config`.
fn jaas_entry(
    props: &Props,
    file: Option<&JaasFile>,
    l: &str,
    m: Mechanism,
) -> Result<Option<jaas::Entry>, String> {
    let mech = m.name().to_ascii_lowercase();
    for key in [
        format!("listener.name.{l}.{mech}.sasl.jaas.config"),
        format!("listener.name.{l}.sasl.jaas.config"),
        "sasl.jaas.config".to_string(),
    ] {
        if let Some(v) = props.get(&key) {
            let entries = jaas::parse_entries(v).map_err(|e| format!("{key}: {e}"))?;
            if let Some(e) = entries.into_iter().find(|e| e.is(m.login_module())) {
                return Ok(Some(e));
            }
        }
    }
    if let Some(file) = file {
        for section in [format!("{l}.KafkaServer"), "KafkaServer".to_string()] {
            if let Some(e) = file
                .get(&section)
                .and_then(|es| es.iter().find(|e| e.is(m.login_module())))
            {
                return Ok(Some(e.clone()));
            }
        }
    }
    Ok(None)
}

/// What the server should do with a frame, after the authenticator has seen it.
#[derive(Debug)]
pub enum Step {
    /// Serve it as usual.
    Pass,
    /// Send this response (at the request's version and correlation id); then close if
    /// `close`.
    Reply {
        /// The request's key.
        key: ApiKey,
        /// The request's version.
        version: i16,
        /// The request's correlation id.
        correlation_id: i32,
        /// The answer (boxed: a ResponseKind is large and most steps are `Pass`).
        body: Box<ResponseKind>,
        /// Close the connection after sending it.
        close: bool,
    },
    /// Send these bytes, length-prefixed (SaslHandshake v0's raw tokens).
    Raw(Vec<u8>),
    /// Close the connection now; the reason is for the log.
    Close(String),
}

enum Exchange {
    Plain(Option<String>),
    Scram(scram::Server),
    OAuth(oauthbearer::Server),
}

impl Exchange {
    fn new(m: Mechanism) -> Exchange {
        match m {
            Mechanism::Plain => Exchange::Plain(None),
            Mechanism::ScramSha256 => Exchange::Scram(scram::Server::new(m, Hash::Sha256)),
            Mechanism::ScramSha512 => Exchange::Scram(scram::Server::new(m, Hash::Sha512)),
            Mechanism::OAuthBearer => Exchange::OAuth(oauthbearer::Server::default()),
        }
    }

    fn user(&self) -> Option<&str> {
        match self {
            Exchange::Plain(u) => u.as_deref(),
            Exchange::Scram(s) => s.user(),
            Exchange::OAuth(s) => s.user(),
        }
    }

    fn step(
        &mut self,
        msg: &[u8],
        cfg: &ListenerSasl,
        store: &ScramStore,
    ) -> Result<Progress, Failure> {
        match self {
            Exchange::Plain(u) => plain::authenticate(msg, &cfg.plain_users, u),
            Exchange::Scram(s) => s.step(msg, store),
            Exchange::OAuth(s) => s.step(msg, &cfg.oauth, now_ms()),
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for ApiVersions or SaslHandshake.
    Handshake,
    /// Mechanism chosen; SaslAuthenticate requests carry its messages.
    Authenticate,
    /// Mechanism chosen with SaslHandshake v0: the next frames are raw mechanism messages.
    Raw,
    /// Authenticated.
    Done,
}

/// One connection's SASL state.
pub struct Authenticator {
    phase: Phase,
    mechanism: Option<Mechanism>,
    exchange: Option<Exchange>,
    /// The principal and mechanism of the last successful authentication.
    authenticated: Option<(Principal, Mechanism)>,
    /// Set when a re-authentication asked for another mechanism: the next SaslAuthenticate
    /// fails with this message, as in Kafka.
    bad_mechanism: Option<String>,
    /// When the session ends (KIP-368), if it does.
    expires: Option<Instant>,
    /// The client used SaslAuthenticate v1+ (Kafka's `connectedClientSupportsReauthentication`).
    reauth_capable: bool,
    /// Which (API, version) pairs the broker serves; the server passes its table in, so
    /// this module does not reach up into the API layer.
    supported: fn(ApiKey, i16) -> bool,
}

/// The codec's own range: what [`Authenticator::new`] assumes until the server says.
fn codec_range(key: ApiKey, version: i16) -> bool {
    let r = key.valid_versions();
    r.min <= version && version <= r.max
}

impl Authenticator {
    /// A connection that has yet to authenticate.
    pub fn new() -> Authenticator {
        Authenticator {
            phase: Phase::Handshake,
            mechanism: None,
            exchange: None,
            authenticated: None,
            bad_mechanism: None,
            expires: None,
            reauth_capable: false,
            supported: codec_range,
        }
    }

    /// The broker's table of supported (API, version) pairs, for the SASL requests.
    pub fn with_supported(mut self, supported: fn(ApiKey, i16) -> bool) -> Authenticator {
        self.supported = supported;
        self
    }

    /// Whether the connection is between handshake and authentication (frames are capped
    /// at `sasl.server.max.receive.size` then).
    pub fn authenticating(&self) -> bool {
        self.phase != Phase::Done
    }

    /// See `frame` before it is served. `session` gets the principal once authenticated.
    pub fn intercept(
        &mut self,
        cfg: &ListenerSasl,
        store: &ScramStore,
        session: &mut Session,
        frame: &Bytes,
    ) -> Step {
        if self.phase == Phase::Raw {
            return self.raw_token(cfg, store, session, frame);
        }
        // Before authentication, a frame the authenticator cannot place closes the
        // connection here (Kafka's `SaslServerAuthenticator` fails it too), rather than
        // relying on the request path to refuse it.
        let unplaceable = |what: &str| {
            if self.phase == Phase::Done {
                Step::Pass
            } else {
                Step::Close(format!("{what} during SASL authentication"))
            }
        };
        let Some(b) = frame.get(..8) else {
            return unplaceable("frame shorter than a request header");
        };
        let key = i16::from_be_bytes([b[0], b[1]]);
        let version = i16::from_be_bytes([b[2], b[3]]);
        let Ok(key) = ApiKey::try_from(key) else {
            return unplaceable("unknown api key");
        };
        match key {
            // Once a mechanism is chosen, Kafka's `handleSaslToken` takes only
            // SaslAuthenticate: ApiVersions or another SaslHandshake fails the connection
            // (ILLEGAL_SASL_STATE, "Unexpected Kafka request ... during SASL
            // authentication"), so an exchange cannot be restarted mid-way.
            ApiKey::ApiVersions if self.phase != Phase::Authenticate => Step::Pass,
            ApiKey::SaslHandshake
                if self.phase == Phase::Handshake
                    || (self.phase == Phase::Done && self.reauth_capable) =>
            {
                self.handshake(cfg, session, frame, version)
            }
            ApiKey::SaslAuthenticate if self.phase == Phase::Authenticate => {
                self.authenticate(cfg, store, session, frame, version)
            }
            // After authentication, the API handlers answer ILLEGAL_SASL_STATE.
            ApiKey::SaslHandshake | ApiKey::SaslAuthenticate if self.phase == Phase::Done => Step::Pass,
            _ if self.phase != Phase::Done => Step::Close(format!(
                "unexpected {key:?} request during SASL {}",
                if self.phase == Phase::Handshake { "handshake" } else { "authentication" }
            )),
            _ => match self.expires {
                Some(t) if Instant::now() >= t => Step::Close(format!(
                    "SASL session of {} expired (connections.max.reauth.ms) and was not re-authenticated",
                    session.principal
                )),
                _ => Step::Pass,
            },
        }
    }

    /// Decode a SASL-phase request with the guard in front, as the server does for the rest.
    fn decode<T: Decodable>(
        &self,
        frame: &Bytes,
        key: ApiKey,
        version: i16,
    ) -> Result<(RequestHeader, T), String> {
        if !(self.supported)(key, version) {
            return Err(format!("unsupported version {version} of {key:?}"));
        }
        let hv = key.request_header_version(version);
        crate::guard::check(frame, hv)
            .map_err(|e| format!("malformed {key:?} v{version} request: {e}"))?;
        let mut body = frame.clone();
        let header = RequestHeader::decode(&mut body, hv)
            .map_err(|e| format!("malformed {key:?} header: {e}"))?;
        let req = T::decode(&mut body, version)
            .map_err(|e| format!("malformed {key:?} v{version} request: {e}"))?;
        Ok((header, req))
    }

    fn handshake(
        &mut self,
        cfg: &ListenerSasl,
        session: &Session,
        frame: &Bytes,
        version: i16,
    ) -> Step {
        let (header, req) =
            match self.decode::<SaslHandshakeRequest>(frame, ApiKey::SaslHandshake, version) {
                Ok(d) => d,
                Err(e) => return Step::Close(e),
            };
        let enabled: Vec<StrBytes> = cfg
            .enabled
            .iter()
            .map(|m| StrBytes::from_static_str(m.name()))
            .collect();
        let reply = |code: i16, close: bool| Step::Reply {
            key: ApiKey::SaslHandshake,
            version,
            correlation_id: header.correlation_id,
            body: Box::new(ResponseKind::SaslHandshake(
                SaslHandshakeResponse::default()
                    .with_error_code(code)
                    .with_mechanisms(enabled.clone()),
            )),
            close,
        };
        let asked = req.mechanism.as_str();
        let Some(m) = Mechanism::parse(asked).filter(|m| cfg.enabled.contains(m)) else {
            info!(
                peer = %session.peer,
                listener = %session.listener,
                mechanism = asked,
                "SASL handshake refused: mechanism not enabled"
            );
            return reply(ResponseError::UnsupportedSaslMechanism.code(), true);
        };
        self.bad_mechanism = match &self.authenticated {
            Some((_, prev)) if *prev != m => Some(format!(
                "SASL mechanism '{}' requested by client is not supported for re-authentication of mechanism '{}'",
                m.name(),
                prev.name()
            )),
            _ => None,
        };
        self.mechanism = Some(m);
        self.exchange = Some(Exchange::new(m));
        self.phase = if version >= 1 {
            Phase::Authenticate
        } else {
            Phase::Raw
        };
        debug!(peer = %session.peer, mechanism = m.name(), reauth = self.authenticated.is_some(), "SASL handshake");
        reply(0, false)
    }

    fn authenticate(
        &mut self,
        cfg: &ListenerSasl,
        store: &ScramStore,
        session: &mut Session,
        frame: &Bytes,
        version: i16,
    ) -> Step {
        let (header, req) = match self.decode::<SaslAuthenticateRequest>(
            frame,
            ApiKey::SaslAuthenticate,
            version,
        ) {
            Ok(d) => d,
            Err(e) => return Step::Close(e),
        };
        if self.authenticated.is_none() && version > 0 {
            self.reauth_capable = true;
        }
        let reply = |resp: SaslAuthenticateResponse, close: bool| Step::Reply {
            key: ApiKey::SaslAuthenticate,
            version,
            correlation_id: header.correlation_id,
            body: Box::new(ResponseKind::SaslAuthenticate(resp)),
            close,
        };
        match self.evaluate(cfg, store, session, &req.auth_bytes) {
            Ok((bytes, lifetime_ms)) => reply(
                SaslAuthenticateResponse::default()
                    .with_auth_bytes(Bytes::from(bytes))
                    .with_session_lifetime_ms(lifetime_ms),
                false,
            ),
            Err(message) => reply(
                SaslAuthenticateResponse::default()
                    .with_error_code(ResponseError::SaslAuthenticationFailed.code())
                    .with_error_message(Some(StrBytes::from_string(message))),
                true,
            ),
        }
    }

    fn raw_token(
        &mut self,
        cfg: &ListenerSasl,
        store: &ScramStore,
        session: &mut Session,
        frame: &Bytes,
    ) -> Step {
        match self.evaluate(cfg, store, session, frame) {
            Ok((bytes, _)) => Step::Raw(bytes),
            // Without SaslAuthenticate framing there is no way to say why: Kafka closes.
            Err(m) => Step::Close(format!("SASL authentication failed: {m}")),
        }
    }

    /// Run one mechanism step. `Ok`: the bytes for the client and the session lifetime (0
    /// until done, or when sessions do not expire). `Err`: the message for the client; the
    /// failure has been logged.
    fn evaluate(
        &mut self,
        cfg: &ListenerSasl,
        store: &ScramStore,
        session: &mut Session,
        msg: &[u8],
    ) -> Result<(Vec<u8>, i64), String> {
        let (Some(m), Some(ex)) = (self.mechanism, self.exchange.as_mut()) else {
            return Err("SASL authentication without a handshake".into());
        };
        let what = if self.authenticated.is_some() {
            "re-authentication"
        } else {
            "authentication"
        };
        let fail = |reason: &str, user: Option<&str>, message: String| {
            info!(
                peer = %session.peer,
                listener = %session.listener,
                mechanism = m.name(),
                user = user.unwrap_or("-"),
                "SASL {what} failed: {reason}"
            );
            Err(message)
        };
        if let Some(msg) = self.bad_mechanism.take() {
            return fail(&msg, None, msg.clone());
        }
        let progress = match ex.step(msg, cfg, store) {
            Ok(p) => p,
            Err(f) => {
                let user = ex.user().map(str::to_string);
                self.phase = Phase::Handshake;
                return fail(&f.reason, user.as_deref(), f.message);
            }
        };
        let (response, user, expiry) = match progress {
            Progress::Continue(c) => return Ok((c, 0)),
            Progress::Done {
                response,
                user,
                credential_expires_ms,
            } => (response, user, credential_expires_ms),
        };
        let principal = Principal::user(&user);
        if let Some((prev, _)) = &self.authenticated {
            if *prev != principal {
                let message = format!(
                    "Cannot change principals during re-authentication from {}.{}: {}.{}",
                    prev.kind, prev.name, principal.kind, principal.name
                );
                return fail(&message, Some(&user), message.clone());
            }
        }
        // Kafka's `calcCompletionTimesAndReturnSessionLifetimeMs`: the shorter of the
        // credential's remaining life and connections.max.reauth.ms, when either is set.
        let max = cfg.max_reauth_ms.get(&m).copied().filter(|ms| *ms > 0);
        let remaining = expiry.map(|e| e.saturating_sub(now_ms()).max(0));
        let lifetime = match (remaining, max) {
            (None, None) => None,
            (Some(r), None) => Some(r),
            (None, Some(x)) => Some(x),
            (Some(r), Some(x)) => Some(r.min(x)),
        };
        // A token expiry too far ahead to represent is no expiry (checked_add, not `+`,
        // which would panic).
        self.expires = lifetime.and_then(|ms| {
            Instant::now().checked_add(Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
        });
        debug!(
            peer = %session.peer,
            listener = %session.listener,
            mechanism = m.name(),
            principal = %principal,
            session_lifetime_ms = lifetime.unwrap_or(0),
            "SASL {what} complete"
        );
        session.principal = principal.clone();
        self.authenticated = Some((principal, m));
        self.exchange = None;
        self.phase = Phase::Done;
        Ok((response, lifetime.unwrap_or(0)))
    }
}

impl Default for Authenticator {
    fn default() -> Self {
        Authenticator::new()
    }
}

/// Compare secrets (PLAIN passwords, SCRAM proofs) in constant time, so timing says nothing
/// of the stored value.
fn same(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::{MetadataRequest, SaslAuthenticateRequest};
    use kafka_protocol::protocol::Encodable;

    fn frame<T: Encodable>(key: ApiKey, version: i16, body: &T) -> Bytes {
        let mut b = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(7)
            .with_client_id(Some(StrBytes::from_static_str("t")))
            .encode(&mut b, key.request_header_version(version))
            .unwrap();
        body.encode(&mut b, version).unwrap();
        b.freeze()
    }

    fn handshake(m: &str, version: i16) -> Bytes {
        frame(
            ApiKey::SaslHandshake,
            version,
            &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_string(m.into())),
        )
    }

    fn plain(user: &str, password: &str) -> Bytes {
        frame(
            ApiKey::SaslAuthenticate,
            2,
            &SaslAuthenticateRequest::default()
                .with_auth_bytes(Bytes::from(format!("\0{user}\0{password}"))),
        )
    }

    fn metadata() -> Bytes {
        frame(ApiKey::Metadata, 12, &MetadataRequest::default())
    }

    struct Fixture {
        cfg: ListenerSasl,
        store: ScramStore,
        session: Session,
        _dir: tempfile::TempDir,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        Fixture {
            cfg: ListenerSasl {
                enabled: vec![Mechanism::Plain, Mechanism::ScramSha256],
                plain_users: [
                    ("alice".to_string(), "a".to_string()),
                    ("bob".to_string(), "b".to_string()),
                ]
                .into(),
                oauth: oauthbearer::Validator::default(),
                max_reauth_ms: [(Mechanism::Plain, 60_000)].into(),
                max_receive: DEFAULT_MAX_RECEIVE,
            },
            store: ScramStore::open(dir.path()).unwrap(),
            session: Session::new(
                "127.0.0.1:1".parse().unwrap(),
                "SASL_PLAINTEXT".into(),
                Protocol::SaslPlaintext,
            ),
            _dir: dir,
        }
    }

    impl Fixture {
        fn step(&mut self, a: &mut Authenticator, f: &Bytes) -> Step {
            a.intercept(&self.cfg, &self.store, &mut self.session, f)
        }
    }

    fn authenticate_reply(s: Step) -> (SaslAuthenticateResponse, bool) {
        match s {
            Step::Reply { body, close, .. } => match *body {
                ResponseKind::SaslAuthenticate(r) => (r, close),
                other => panic!("unexpected {other:?}"),
            },
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn only_sasl_requests_before_authentication() {
        let mut f = fixture();
        let mut a = Authenticator::new();
        let av = frame(
            ApiKey::ApiVersions,
            3,
            &kafka_protocol::messages::ApiVersionsRequest::default(),
        );
        assert!(matches!(f.step(&mut a, &av), Step::Pass));
        assert!(matches!(f.step(&mut a, &metadata()), Step::Close(_)));
        // So do frames the authenticator cannot read: an unknown key, a short frame.
        let mut unknown = metadata().to_vec();
        unknown[..2].copy_from_slice(&999i16.to_be_bytes());
        assert!(matches!(
            f.step(&mut a, &Bytes::from(unknown)),
            Step::Close(_)
        ));
        assert!(matches!(
            f.step(&mut a, &Bytes::from_static(&[0, 3, 0])),
            Step::Close(_)
        ));
        // SaslAuthenticate before SaslHandshake closes too.
        assert!(matches!(
            f.step(&mut a, &plain("alice", "a")),
            Step::Close(_)
        ));
    }

    #[test]
    fn only_sasl_authenticate_once_a_mechanism_is_chosen() {
        let av = frame(
            ApiKey::ApiVersions,
            3,
            &kafka_protocol::messages::ApiVersionsRequest::default(),
        );
        for next in [av, handshake("PLAIN", 1)] {
            let mut f = fixture();
            let mut a = Authenticator::new();
            assert!(matches!(
                f.step(&mut a, &handshake("PLAIN", 1)),
                Step::Reply { close: false, .. }
            ));
            assert!(matches!(f.step(&mut a, &next), Step::Close(_)));
        }
    }

    #[test]
    fn unknown_mechanism_lists_the_enabled_ones_and_closes() {
        let mut f = fixture();
        let mut a = Authenticator::new();
        match f.step(&mut a, &handshake("GSSAPI", 1)) {
            Step::Reply { body, close, .. } => {
                let ResponseKind::SaslHandshake(r) = *body else {
                    panic!("not a handshake response");
                };
                assert_eq!(r.error_code, ResponseError::UnsupportedSaslMechanism.code());
                let names: Vec<&str> = r.mechanisms.iter().map(|m| m.as_str()).collect();
                assert_eq!(names, ["PLAIN", "SCRAM-SHA-256"]);
                assert!(close);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn plain_success_failure_and_reauthentication() {
        let mut f = fixture();
        let mut a = Authenticator::new();
        assert!(matches!(
            f.step(&mut a, &handshake("PLAIN", 1)),
            Step::Reply { close: false, .. }
        ));
        let (r, close) = authenticate_reply(f.step(&mut a, &plain("alice", "a")));
        assert_eq!(r.error_code, 0);
        assert_eq!(r.session_lifetime_ms, 60_000);
        assert!(!close);
        assert_eq!(f.session.principal, Principal::user("alice"));
        assert!(matches!(f.step(&mut a, &metadata()), Step::Pass));
        // A SaslAuthenticate after authentication goes to the API handler.
        assert!(matches!(f.step(&mut a, &plain("alice", "a")), Step::Pass));

        // Past the session's end, anything but the SASL requests closes.
        a.expires = Some(Instant::now());
        assert!(matches!(f.step(&mut a, &metadata()), Step::Close(_)));
        // Re-authenticating as the same user renews the session.
        assert!(matches!(
            f.step(&mut a, &handshake("PLAIN", 1)),
            Step::Reply { close: false, .. }
        ));
        let (r, _) = authenticate_reply(f.step(&mut a, &plain("alice", "a")));
        assert_eq!(r.error_code, 0);
        assert!(matches!(f.step(&mut a, &metadata()), Step::Pass));
        // Another principal is refused, as Kafka does.
        f.step(&mut a, &handshake("PLAIN", 1));
        let (r, close) = authenticate_reply(f.step(&mut a, &plain("bob", "b")));
        assert_eq!(r.error_code, ResponseError::SaslAuthenticationFailed.code());
        assert!(r
            .error_message
            .unwrap()
            .contains("Cannot change principals"));
        assert!(close);
        // So is another mechanism.
        let mut a2 = Authenticator::new();
        f.step(&mut a2, &handshake("PLAIN", 1));
        f.step(&mut a2, &plain("alice", "a"));
        f.step(&mut a2, &handshake("SCRAM-SHA-256", 1));
        let (r, _) = authenticate_reply(f.step(&mut a2, &plain("alice", "a")));
        assert!(r
            .error_message
            .unwrap()
            .contains("not supported for re-authentication"));
    }

    #[test]
    fn wrong_password_fails_with_kafkas_message() {
        let mut f = fixture();
        let mut a = Authenticator::new();
        f.step(&mut a, &handshake("PLAIN", 1));
        let (r, close) = authenticate_reply(f.step(&mut a, &plain("alice", "nope")));
        assert_eq!(r.error_code, ResponseError::SaslAuthenticationFailed.code());
        assert_eq!(
            r.error_message.as_deref(),
            Some("Authentication failed: Invalid username or password")
        );
        assert!(close);
        assert_eq!(f.session.principal, Principal::anonymous());
    }

    #[test]
    fn handshake_v0_takes_raw_tokens() {
        let mut f = fixture();
        let mut a = Authenticator::new();
        assert!(matches!(
            f.step(&mut a, &handshake("PLAIN", 0)),
            Step::Reply { close: false, .. }
        ));
        match f.step(&mut a, &Bytes::from_static(b"\0alice\0a")) {
            Step::Raw(t) => assert!(t.is_empty()),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(f.session.principal, Principal::user("alice"));
        assert!(matches!(f.step(&mut a, &metadata()), Step::Pass));
    }
}
