//! ACLs with the semantics of Kafka's `StandardAuthorizer`: the vocabulary (resource
//! types, pattern types, operations, permissions, bindings and filters, by Kafka's wire
//! codes), the pure decision function, and the [`Authorizer`] that holds the broker's ACLs
//! and keeps them in a file in the data directory.
//!
//! The rules, as `StandardAuthorizerData` applies them:
//! - super users (`super.users`, `;`-separated principals) may do anything;
//! - the ACLs that apply to a resource are the LITERAL ones with its exact name, the
//!   PREFIXED ones whose name starts it, and the LITERAL wildcard `*`;
//! - an ACL matches a request when its principal is the session's or `User:*`, its host
//!   is `*` or the client's address, and its operation is the one asked, ALL, or (ALLOW
//!   only) one that implies it: READ, WRITE, DELETE and ALTER imply DESCRIBE; ALTER_CONFIGS
//!   implies DESCRIBE_CONFIGS;
//! - a matching DENY wins over any ALLOW; a matching ALLOW allows;
//! - nothing matches: denied if the resource has any ACL at all, else the default,
//!   `allow.everyone.if.no.acl.found` (false unless set).
//!
//! What does not live here: the ACL APIs (`crate::api::security`) and the checks each API
//! makes (its handler).

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use serde::{Deserialize, Serialize};

use super::{Principal, Props, Session};

/// The name of the cluster resource, the only one Kafka accepts for CLUSTER ACLs.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// The resource name (and host) that matches any.
pub const WILDCARD: &str = "*";

/// The principal that matches any.
pub const WILDCARD_PRINCIPAL: &str = "User:*";

/// The file in the data directory that holds the ACLs.
const ACL_FILE: &str = "acls.toml";

/// `authorizer.class.name` values that turn the authorizer on: Kafka's KRaft authorizer,
/// and the ZooKeeper-era one that configurations migrated from older clusters still name.
const KNOWN_AUTHORIZERS: &[&str] = &[
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "kafka.security.authorizer.AclAuthorizer",
];

/// Failures to configure the authorizer or to read or write its file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A security property has a value Sluice cannot use.
    #[error("{key}: {msg}")]
    Config {
        /// The Kafka property.
        key: &'static str,
        /// What is wrong with it.
        msg: String,
    },
    /// Reading or writing the ACL file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The ACL file cannot be parsed.
    #[error("{path}: {msg}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
}

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Defines a Kafka enum by its wire codes, with a parser that refuses every other code.
macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $code:literal, $text:literal;)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name {
            $($(#[$vm])* $v,)*
        }

        impl $name {
            /// The value with wire code `code`, if it is one of these.
            pub fn from_code(code: i8) -> Option<$name> {
                match code {
                    $($code => Some($name::$v),)*
                    _ => None,
                }
            }

            /// The wire code.
            pub fn code(self) -> i8 {
                match self {
                    $($name::$v => $code,)*
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self {
                    $($name::$v => $text,)*
                })
            }
        }
    };
}

wire_enum!(
    /// A kind of resource ACLs protect (Kafka's `ResourceType`, without UNKNOWN and ANY).
    ResourceType {
        /// A topic.
        Topic = 2, "TOPIC";
        /// A consumer or share group.
        Group = 3, "GROUP";
        /// The cluster (name `kafka-cluster`).
        Cluster = 4, "CLUSTER";
        /// A producer's transactional id.
        TransactionalId = 5, "TRANSACTIONAL_ID";
        /// A delegation token.
        DelegationToken = 6, "DELEGATION_TOKEN";
        /// A user (token creation on its behalf).
        User = 7, "USER";
    }
);

wire_enum!(
    /// How an ACL's resource name matches (Kafka's `PatternType`, bindings only).
    PatternType {
        /// The name exactly, or every name when it is `*`.
        Literal = 3, "LITERAL";
        /// Every name that starts with it.
        Prefixed = 4, "PREFIXED";
    }
);

wire_enum!(
    /// An operation on a resource (Kafka's `AclOperation`, without UNKNOWN and ANY).
    Operation {
        /// Every operation.
        All = 2, "ALL";
        /// Read.
        Read = 3, "READ";
        /// Write.
        Write = 4, "WRITE";
        /// Create.
        Create = 5, "CREATE";
        /// Delete.
        Delete = 6, "DELETE";
        /// Alter.
        Alter = 7, "ALTER";
        /// Describe.
        Describe = 8, "DESCRIBE";
        /// Inter-broker actions.
        ClusterAction = 9, "CLUSTER_ACTION";
        /// Describe configs.
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        /// Alter configs.
        AlterConfigs = 11, "ALTER_CONFIGS";
        /// Idempotent produce.
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
        /// Create delegation tokens.
        CreateTokens = 13, "CREATE_TOKENS";
        /// Describe delegation tokens.
        DescribeTokens = 14, "DESCRIBE_TOKENS";
        /// Two-phase commit transactions (KIP-939).
        TwoPhaseCommit = 15, "TWO_PHASE_COMMIT";
    }
);

wire_enum!(
    /// Whether an ACL allows or denies.
    Permission {
        /// Deny; wins over any ALLOW.
        Deny = 2, "DENY";
        /// Allow.
        Allow = 3, "ALLOW";
    }
);

/// The wire code of ANY in Kafka's ACL enums (filters only).
pub const ANY_CODE: i8 = 1;
/// The wire code of MATCH in `PatternType` (filters only).
pub const MATCH_CODE: i8 = 2;

/// One ACL binding: a resource pattern and an access control entry. Ordered so that the
/// set of ACLs holds each binding once, as Kafka's does.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Acl {
    /// The kind of resource.
    pub resource_type: ResourceType,
    /// The resource name or prefix (`*`, LITERAL, for all).
    pub name: String,
    /// How `name` matches.
    pub pattern: PatternType,
    /// `Type:name`, or `User:*` for everyone.
    pub principal: String,
    /// The client's IP address as Java prints it, or `*`.
    pub host: String,
    /// The operation.
    pub operation: Operation,
    /// ALLOW or DENY.
    pub permission: Permission,
}

impl Acl {
    /// Build a binding from wire values, refusing what Kafka's controller refuses
    /// (`AclControlManager.validateNewAcl`, and `AclApis` for the cluster name) with its
    /// message; Kafka answers these with INVALID_REQUEST.
    #[allow(clippy::too_many_arguments)]
    pub fn from_wire(
        resource_type: i8,
        name: &str,
        pattern: i8,
        principal: &str,
        host: &str,
        operation: i8,
        permission: i8,
    ) -> Result<Acl, String> {
        let resource_type = ResourceType::from_code(resource_type)
            .ok_or_else(|| format!("Invalid resourceType {}", code_name(resource_type)))?;
        let pattern = PatternType::from_code(pattern)
            .ok_or_else(|| format!("Invalid patternType {}", pattern_code_name(pattern)))?;
        let operation = Operation::from_code(operation)
            .ok_or_else(|| format!("Invalid operation {}", code_name(operation)))?;
        let permission = Permission::from_code(permission)
            .ok_or_else(|| format!("Invalid permissionType {}", code_name(permission)))?;
        if resource_type == ResourceType::Cluster && name != CLUSTER_NAME {
            return Err(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
            ));
        }
        if name.is_empty() {
            return Err("Resource name should not be empty".into());
        }
        if Principal::parse(principal).is_none() {
            return Err(format!("Invalid principal {principal}"));
        }
        Ok(Acl {
            resource_type,
            name: name.to_string(),
            pattern,
            principal: principal.to_string(),
            host: host.to_string(),
            operation,
            permission,
        })
    }

    /// Whether this ACL applies to the resource `name` (of its type): Kafka's LITERAL
    /// match, LITERAL `*`, or PREFIXED.
    fn covers(&self, name: &str) -> bool {
        match self.pattern {
            PatternType::Literal => self.name == name || self.name == WILDCARD,
            PatternType::Prefixed => name.starts_with(self.name.as_str()),
        }
    }
}

fn code_name(code: i8) -> &'static str {
    match code {
        ANY_CODE => "ANY",
        _ => "UNKNOWN",
    }
}

fn pattern_code_name(code: i8) -> &'static str {
    match code {
        ANY_CODE => "ANY",
        MATCH_CODE => "MATCH",
        _ => "UNKNOWN",
    }
}

/// How a filter matches resource pattern types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternFilter {
    /// Any pattern type; the name (if given) must be equal.
    Any,
    /// Every ACL that would apply to the named resource: LITERAL equal or `*`, PREFIXED
    /// a prefix of it.
    Match,
    /// This pattern type exactly, name equal.
    Exact(PatternType),
}

/// An ACL filter (DescribeAcls, DeleteAcls): `None` fields match anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    /// The resource type, or any.
    pub resource_type: Option<ResourceType>,
    /// The resource name, or any.
    pub name: Option<String>,
    /// How the pattern type (and name) match.
    pub pattern: PatternFilter,
    /// The principal, or any.
    pub principal: Option<String>,
    /// The host, or any.
    pub host: Option<String>,
    /// The operation, or any.
    pub operation: Option<Operation>,
    /// The permission, or any.
    pub permission: Option<Permission>,
}

impl AclFilter {
    /// A filter that matches every ACL.
    pub fn any() -> AclFilter {
        AclFilter {
            resource_type: None,
            name: None,
            pattern: PatternFilter::Any,
            principal: None,
            host: None,
            operation: None,
            permission: None,
        }
    }

    /// Build a filter from wire values. UNKNOWN (or a code Kafka does not define) in any
    /// enum is refused, as Kafka's request classes refuse it; the caller answers
    /// INVALID_REQUEST.
    #[allow(clippy::too_many_arguments)]
    pub fn from_wire(
        resource_type: i8,
        name: Option<&str>,
        pattern: i8,
        principal: Option<&str>,
        host: Option<&str>,
        operation: i8,
        permission: i8,
    ) -> Result<AclFilter, String> {
        let resource_type = match resource_type {
            ANY_CODE => None,
            c => Some(ResourceType::from_code(c).ok_or("Unknown patternFilter.")?),
        };
        let pattern = match pattern {
            ANY_CODE => PatternFilter::Any,
            MATCH_CODE => PatternFilter::Match,
            c => PatternFilter::Exact(PatternType::from_code(c).ok_or("Unknown patternFilter.")?),
        };
        let operation = match operation {
            ANY_CODE => None,
            c => Some(Operation::from_code(c).ok_or("Unknown entryFilter.")?),
        };
        let permission = match permission {
            ANY_CODE => None,
            c => Some(Permission::from_code(c).ok_or("Unknown entryFilter.")?),
        };
        Ok(AclFilter {
            resource_type,
            name: name.map(str::to_string),
            pattern,
            principal: principal.map(str::to_string),
            host: host.map(str::to_string),
            operation,
            permission,
        })
    }

    /// Whether `acl` passes this filter (Kafka's `AclBindingFilter.matches`).
    pub fn matches(&self, acl: &Acl) -> bool {
        if self.resource_type.is_some_and(|t| t != acl.resource_type) {
            return false;
        }
        if let PatternFilter::Exact(p) = self.pattern {
            if p != acl.pattern {
                return false;
            }
        }
        if let Some(name) = &self.name {
            let ok = match self.pattern {
                PatternFilter::Any | PatternFilter::Exact(_) => *name == acl.name,
                PatternFilter::Match => acl.covers(name),
            };
            if !ok {
                return false;
            }
        }
        if self.principal.as_ref().is_some_and(|p| *p != acl.principal) {
            return false;
        }
        if self.host.as_ref().is_some_and(|h| *h != acl.host) {
            return false;
        }
        if self.operation.is_some_and(|o| o != acl.operation) {
            return false;
        }
        self.permission.is_none_or(|p| p == acl.permission)
    }
}

/// The authorizer's settings, from Kafka's properties.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// `super.users`, as `Type:name` strings.
    pub super_users: BTreeSet<String>,
    /// `allow.everyone.if.no.acl.found`.
    pub allow_if_no_acl: bool,
}

/// Who asks, from where: what the decision needs of a session.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    /// `Type:name`.
    pub principal: &'a str,
    /// The client's address as Java's `InetAddress.getHostAddress` prints it.
    pub host: &'a str,
}

/// Whether an ALLOW ACL for `granted` permits `asked` (ALL, equal, or implied).
fn allow_covers(granted: Operation, asked: Operation) -> bool {
    use Operation::*;
    granted == All
        || granted == asked
        || match asked {
            Describe => matches!(granted, Read | Write | Delete | Alter),
            DescribeConfigs => granted == AlterConfigs,
            _ => false,
        }
}

/// Decide whether `who` may perform `op` on the resource `(resource_type, name)`, given
/// every ACL of the broker. Pure: Kafka's `StandardAuthorizerData.authorize` (see the
/// module comment for the rules).
pub fn decide<'a>(
    settings: &Settings,
    acls: impl IntoIterator<Item = &'a Acl>,
    who: Requester<'_>,
    op: Operation,
    resource_type: ResourceType,
    name: &str,
) -> bool {
    if settings.super_users.contains(who.principal) {
        return true;
    }
    let mut has_resource_acls = false;
    let mut allowed = false;
    for acl in acls {
        if acl.resource_type != resource_type || !acl.covers(name) {
            continue;
        }
        has_resource_acls = true;
        if acl.principal != who.principal && acl.principal != WILDCARD_PRINCIPAL {
            continue;
        }
        if acl.host != WILDCARD && acl.host != who.host {
            continue;
        }
        match acl.permission {
            // Implication is for ALLOW only: a DENY for READ does not deny DESCRIBE.
            Permission::Deny if acl.operation == Operation::All || acl.operation == op => {
                return false
            }
            Permission::Allow if allow_covers(acl.operation, op) => allowed = true,
            _ => {}
        }
    }
    allowed || (!has_resource_acls && settings.allow_if_no_acl)
}

/// Whether `who` may perform `op` on at least one resource of `resource_type` (Kafka's
/// `Authorizer.authorizeByResourceType`; InitProducerId uses it for WRITE on topics). A
/// resource no ACL names answers for the default; otherwise some ALLOW must not be shadowed
/// by a DENY for an equal literal or a prefix of it.
pub fn decide_any<'a>(
    settings: &Settings,
    acls: impl IntoIterator<Item = &'a Acl> + Clone,
    who: Requester<'_>,
    op: Operation,
    resource_type: ResourceType,
) -> bool {
    // Kafka first asks about a made-up name, so that super users (and the default, where
    // no ACL applies) are honoured.
    if decide(settings, acls.clone(), who, op, resource_type, "hardcode") {
        return true;
    }
    let mut deny_literal = BTreeSet::new();
    let mut deny_prefix = BTreeSet::new();
    let mut allows = Vec::new();
    // A wildcard ALLOW answers only once every binding is seen: a wildcard DENY met later
    // still wins, as in Kafka's `Authorizer.authorizeByResourceType`.
    let mut wildcard_allow = false;
    for acl in acls {
        if acl.resource_type != resource_type
            || (acl.host != WILDCARD && acl.host != who.host)
            || (acl.principal != who.principal && acl.principal != WILDCARD_PRINCIPAL)
            || (acl.operation != op && acl.operation != Operation::All)
        {
            continue;
        }
        match (acl.permission, acl.pattern) {
            (Permission::Deny, PatternType::Literal) if acl.name == WILDCARD => return false,
            (Permission::Deny, PatternType::Literal) => {
                deny_literal.insert(acl.name.as_str());
            }
            (Permission::Deny, PatternType::Prefixed) => {
                deny_prefix.insert(acl.name.as_str());
            }
            (Permission::Allow, PatternType::Literal) if acl.name == WILDCARD => {
                wildcard_allow = true;
            }
            (Permission::Allow, p) => allows.push((p, acl.name.as_str())),
        }
    }
    if wildcard_allow {
        return true;
    }
    allows.iter().any(|(p, name)| {
        if *p == PatternType::Literal && deny_literal.contains(name) {
            return false;
        }
        !name
            .char_indices()
            .map(|(i, c)| &name[..i + c.len_utf8()])
            .any(|prefix| deny_prefix.contains(prefix))
    })
}

/// The client's address as Java's `InetAddress.getHostAddress` prints it, which is what
/// Kafka compares an ACL's host with: IPv4-mapped IPv6 as plain IPv4, other IPv6 as eight
/// uncompressed hex groups (`0:0:0:0:0:0:0:1`).
pub fn java_host_address(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => v6
            .segments()
            .iter()
            .map(|s| format!("{s:x}"))
            .collect::<Vec<_>>()
            .join(":"),
    }
}

/// Parse Kafka's authorizer settings. `Ok(None)`: no authorizer (`authorizer.class.name`
/// unset or empty), so every request is allowed and the ACL APIs answer SECURITY_DISABLED.
pub fn settings_from(props: &Props) -> Result<Option<Settings>, Error> {
    let class = props.get("authorizer.class.name").unwrap_or("").trim();
    if class.is_empty() {
        return Ok(None);
    }
    if !KNOWN_AUTHORIZERS.contains(&class) {
        return Err(Error::Config {
            key: "authorizer.class.name",
            msg: format!(
                "unknown authorizer class '{class}'; Sluice implements {}",
                KNOWN_AUTHORIZERS.join(" and ")
            ),
        });
    }
    let mut super_users = BTreeSet::new();
    for u in props.get("super.users").unwrap_or("").split(';') {
        let u = u.trim();
        if u.is_empty() {
            continue;
        }
        let p = Principal::parse(u).ok_or_else(|| Error::Config {
            key: "super.users",
            msg: format!("'{u}' is not a principal (expected Type:name, e.g. User:admin)"),
        })?;
        super_users.insert(p.to_string());
    }
    // Kafka's Boolean.parseBoolean: "true" in any case is true, anything else false.
    let allow_if_no_acl = props
        .get("allow.everyone.if.no.acl.found")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    Ok(Some(Settings {
        super_users,
        allow_if_no_acl,
    }))
}

/// The on-disk form of the ACL file.
#[derive(Debug, Default, Serialize, Deserialize)]
struct AclFile {
    #[serde(default)]
    acl: Vec<Acl>,
}

/// The broker's authorizer: off (every check passes) unless `authorizer.class.name` is set;
/// when on, the ACLs in memory and in `acls.toml` in the data directory.
#[derive(Debug)]
pub struct Authorizer {
    settings: Option<Settings>,
    acls: RwLock<BTreeSet<Acl>>,
    path: PathBuf,
    /// Serialises changes so that file writes happen in the order of the changes.
    write: Mutex<()>,
}

impl Authorizer {
    /// An authorizer that allows everything (no `authorizer.class.name`).
    pub fn disabled() -> Authorizer {
        Authorizer {
            settings: None,
            acls: RwLock::new(BTreeSet::new()),
            path: PathBuf::new(),
            write: Mutex::new(()),
        }
    }

    /// Configure from Kafka's properties and load the ACLs kept in `data_dir`.
    pub fn open(props: &Props, data_dir: &Path) -> Result<Authorizer, Error> {
        let path = data_dir.join(ACL_FILE);
        let acls = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let file: AclFile = toml::from_str(&text).map_err(|e| Error::Corrupt {
                    path: path.clone(),
                    msg: e.to_string(),
                })?;
                file.acl.into_iter().collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeSet::new(),
            Err(e) => return Err(io(&path, e)),
        };
        Ok(Authorizer {
            settings: settings_from(props)?,
            acls: RwLock::new(acls),
            path,
            write: Mutex::new(()),
        })
    }

    /// Whether an authorizer is configured.
    pub fn enabled(&self) -> bool {
        self.settings.is_some()
    }

    /// Whether `session` may perform `op` on `(resource_type, name)`. Always true, without
    /// taking a lock or allocating, when no authorizer is configured.
    pub fn authorize(
        &self,
        session: &Session,
        op: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        let Some(settings) = &self.settings else {
            return true;
        };
        let principal = session.principal.to_string();
        let host = java_host_address(session.peer.ip());
        let acls = self.acls.read().unwrap_or_else(|p| p.into_inner());
        decide(
            settings,
            acls.iter(),
            Requester {
                principal: &principal,
                host: &host,
            },
            op,
            resource_type,
            name,
        )
    }

    /// Whether `session` may perform `op` on some resource of `resource_type`
    /// ([`decide_any`]). Always true when no authorizer is configured.
    pub fn authorize_any(
        &self,
        session: &Session,
        op: Operation,
        resource_type: ResourceType,
    ) -> bool {
        let Some(settings) = &self.settings else {
            return true;
        };
        let principal = session.principal.to_string();
        let host = java_host_address(session.peer.ip());
        let acls = self.acls.read().unwrap_or_else(|p| p.into_inner());
        decide_any(
            settings,
            acls.iter(),
            Requester {
                principal: &principal,
                host: &host,
            },
            op,
            resource_type,
        )
    }

    /// The ACLs that pass `filter`.
    pub fn list(&self, filter: &AclFilter) -> Vec<Acl> {
        let acls = self.acls.read().unwrap_or_else(|p| p.into_inner());
        acls.iter().filter(|a| filter.matches(a)).cloned().collect()
    }

    /// Add `new` (bindings already present are kept once) and write the file before
    /// answering, so that an acknowledged ACL survives a crash.
    pub fn create(&self, new: &[Acl]) -> Result<(), Error> {
        let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = self.acls.read().unwrap_or_else(|p| p.into_inner()).clone();
        next.extend(new.iter().cloned());
        self.persist(&next)?;
        *self.acls.write().unwrap_or_else(|p| p.into_inner()) = next;
        Ok(())
    }

    /// Remove the ACLs each filter matches; returns them, filter by filter (an ACL two
    /// filters match is reported under both, as Kafka's controller does).
    pub fn delete(&self, filters: &[AclFilter]) -> Result<Vec<Vec<Acl>>, Error> {
        let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = self.acls.read().unwrap_or_else(|p| p.into_inner()).clone();
        let removed: Vec<Vec<Acl>> = filters
            .iter()
            .map(|f| next.iter().filter(|a| f.matches(a)).cloned().collect())
            .collect();
        if removed.iter().all(Vec::is_empty) {
            return Ok(removed);
        }
        next.retain(|a| !filters.iter().any(|f| f.matches(a)));
        self.persist(&next)?;
        *self.acls.write().unwrap_or_else(|p| p.into_inner()) = next;
        Ok(removed)
    }

    /// Write `acls` to the file atomically: a temporary file, fsynced, renamed over the
    /// old one, and the directory fsynced so the rename itself survives a power loss.
    fn persist(&self, acls: &BTreeSet<Acl>) -> Result<(), Error> {
        let file = AclFile {
            acl: acls.iter().cloned().collect(),
        };
        let text = toml::to_string(&file).map_err(|e| Error::Corrupt {
            path: self.path.clone(),
            msg: format!("cannot encode ACLs: {e}"),
        })?;
        crate::log::write_atomic(&self.path, &text).map_err(|e| Error::Io {
            path: self.path.clone(),
            source: std::io::Error::other(e.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Operation::*;
    use Permission::*;
    use ResourceType::*;

    fn acl(
        rt: ResourceType,
        name: &str,
        pattern: PatternType,
        principal: &str,
        host: &str,
        op: Operation,
        perm: Permission,
    ) -> Acl {
        Acl {
            resource_type: rt,
            name: name.into(),
            pattern,
            principal: principal.into(),
            host: host.into(),
            operation: op,
            permission: perm,
        }
    }

    fn topic(name: &str, pattern: PatternType, who: &str, op: Operation, p: Permission) -> Acl {
        acl(Topic, name, pattern, who, "*", op, p)
    }

    const ALICE: Requester<'static> = Requester {
        principal: "User:alice",
        host: "10.0.0.1",
    };

    fn strict() -> Settings {
        Settings::default()
    }

    fn check(s: &Settings, acls: &[Acl], who: Requester<'_>, op: Operation, name: &str) -> bool {
        decide(s, acls, who, op, Topic, name)
    }

    #[test]
    fn no_acls_uses_the_default() {
        assert!(!check(&strict(), &[], ALICE, Read, "t"));
        let open = Settings {
            allow_if_no_acl: true,
            ..Settings::default()
        };
        assert!(check(&open, &[], ALICE, Read, "t"));
        // An ACL for another principal on the resource means the default no longer applies.
        let bob = [topic("t", PatternType::Literal, "User:bob", Read, Allow)];
        assert!(!check(&open, &bob, ALICE, Read, "t"));
        // ... but one on another resource (or type) leaves it alone.
        assert!(check(&open, &bob, ALICE, Read, "u"));
        assert!(decide(&open, &bob, ALICE, Read, Group, "t"));
    }

    #[test]
    fn literal_allow_and_principal_wildcard() {
        let acls = [topic("t", PatternType::Literal, "User:alice", Read, Allow)];
        assert!(check(&strict(), &acls, ALICE, Read, "t"));
        assert!(!check(&strict(), &acls, ALICE, Write, "t"));
        assert!(!check(&strict(), &acls, ALICE, Read, "t2"));
        let bob = Requester {
            principal: "User:bob",
            host: "10.0.0.1",
        };
        assert!(!check(&strict(), &acls, bob, Read, "t"));
        let everyone = [topic(
            "t",
            PatternType::Literal,
            WILDCARD_PRINCIPAL,
            Read,
            Allow,
        )];
        assert!(check(&strict(), &everyone, bob, Read, "t"));
    }

    #[test]
    fn prefixed_allow_with_literal_deny() {
        let acls = [
            topic("pay-", PatternType::Prefixed, "User:alice", All, Allow),
            topic("pay-secret", PatternType::Literal, "User:alice", Read, Deny),
        ];
        assert!(check(&strict(), &acls, ALICE, Read, "pay-orders"));
        assert!(check(&strict(), &acls, ALICE, Write, "pay-secret"));
        assert!(!check(&strict(), &acls, ALICE, Read, "pay-secret"));
        // A literal name is not a prefix: "pay-secret2" is not denied.
        assert!(check(&strict(), &acls, ALICE, Read, "pay-secret2"));
        // The prefix itself is covered; a shorter name is not.
        assert!(check(&strict(), &acls, ALICE, Read, "pay-"));
        assert!(!check(&strict(), &acls, ALICE, Read, "pay"));
    }

    #[test]
    fn deny_wins_whatever_the_order_and_pattern() {
        let acls = [
            topic("*", PatternType::Literal, WILDCARD_PRINCIPAL, All, Deny),
            topic("t", PatternType::Literal, "User:alice", Read, Allow),
        ];
        assert!(!check(&strict(), &acls, ALICE, Read, "t"));
        let acls = [
            topic("t", PatternType::Literal, "User:alice", Read, Allow),
            topic("", PatternType::Prefixed, "User:alice", Read, Deny),
        ];
        assert!(!check(&strict(), &acls, ALICE, Read, "t"));
    }

    #[test]
    fn wildcard_resource_applies_to_every_name_of_its_type() {
        let acls = [topic("*", PatternType::Literal, "User:alice", Write, Allow)];
        assert!(check(&strict(), &acls, ALICE, Write, "anything"));
        assert!(!decide(&strict(), &acls, ALICE, Write, Group, "anything"));
        // A PREFIXED "*" is a prefix like any other, not a wildcard.
        let acls = [topic(
            "*",
            PatternType::Prefixed,
            "User:alice",
            Write,
            Allow,
        )];
        assert!(!check(&strict(), &acls, ALICE, Write, "anything"));
        assert!(check(&strict(), &acls, ALICE, Write, "*x"));
    }

    #[test]
    fn implied_operations_are_for_allow_only() {
        for op in [Read, Write, Delete, Alter, Describe] {
            let acls = [topic("t", PatternType::Literal, "User:alice", op, Allow)];
            assert!(check(&strict(), &acls, ALICE, Describe, "t"), "{op}");
        }
        for op in [Create, AlterConfigs, DescribeConfigs, ClusterAction] {
            let acls = [topic("t", PatternType::Literal, "User:alice", op, Allow)];
            assert!(!check(&strict(), &acls, ALICE, Describe, "t"), "{op}");
        }
        let acls = [topic(
            "t",
            PatternType::Literal,
            "User:alice",
            AlterConfigs,
            Allow,
        )];
        assert!(check(&strict(), &acls, ALICE, DescribeConfigs, "t"));
        assert!(!check(&strict(), &acls, ALICE, Alter, "t"));
        // DESCRIBE does not imply READ.
        let acls = [topic(
            "t",
            PatternType::Literal,
            "User:alice",
            Describe,
            Allow,
        )];
        assert!(!check(&strict(), &acls, ALICE, Read, "t"));
        // A DENY for READ does not deny DESCRIBE that a WRITE allows.
        let acls = [
            topic("t", PatternType::Literal, "User:alice", Write, Allow),
            topic("t", PatternType::Literal, "User:alice", Read, Deny),
        ];
        assert!(check(&strict(), &acls, ALICE, Describe, "t"));
        assert!(!check(&strict(), &acls, ALICE, Read, "t"));
        // ALL allows and denies everything.
        let acls = [topic("t", PatternType::Literal, "User:alice", All, Allow)];
        assert!(check(&strict(), &acls, ALICE, IdempotentWrite, "t"));
        let acls = [
            topic("t", PatternType::Literal, "User:alice", All, Allow),
            topic("t", PatternType::Literal, "User:alice", All, Deny),
        ];
        assert!(!check(&strict(), &acls, ALICE, Describe, "t"));
    }

    #[test]
    fn host_is_star_or_exact() {
        let acls = [acl(
            Topic,
            "t",
            PatternType::Literal,
            "User:alice",
            "10.0.0.1",
            Read,
            Allow,
        )];
        assert!(check(&strict(), &acls, ALICE, Read, "t"));
        let elsewhere = Requester {
            principal: "User:alice",
            host: "10.0.0.2",
        };
        assert!(!check(&strict(), &acls, elsewhere, Read, "t"));
        let deny_there = [
            topic("t", PatternType::Literal, "User:alice", Read, Allow),
            acl(
                Topic,
                "t",
                PatternType::Literal,
                "User:alice",
                "10.0.0.2",
                Read,
                Deny,
            ),
        ];
        assert!(check(&strict(), &deny_there, ALICE, Read, "t"));
        assert!(!check(&strict(), &deny_there, elsewhere, Read, "t"));
    }

    #[test]
    fn super_users_pass_even_a_deny() {
        let s = Settings {
            super_users: ["User:admin".to_string()].into(),
            allow_if_no_acl: false,
        };
        let acls = [topic("t", PatternType::Literal, "User:admin", All, Deny)];
        let admin = Requester {
            principal: "User:admin",
            host: "1.2.3.4",
        };
        assert!(check(&s, &acls, admin, Read, "t"));
        assert!(decide(&s, &acls, admin, Alter, Cluster, CLUSTER_NAME));
        assert!(!check(&s, &acls, ALICE, Read, "t"));
    }

    #[test]
    fn any_resource_of_a_type() {
        let s = strict();
        assert!(!decide_any(&s, &[], ALICE, Write, Topic));
        let acls = [topic("a", PatternType::Literal, "User:alice", Write, Allow)];
        assert!(decide_any(&s, &acls, ALICE, Write, Topic));
        assert!(!decide_any(&s, &acls, ALICE, Write, Group));
        // Shadowed by a literal deny of the same name, or a prefix deny.
        let acls = [
            topic("ab", PatternType::Prefixed, "User:alice", Write, Allow),
            topic("a", PatternType::Prefixed, "User:alice", Write, Deny),
        ];
        assert!(!decide_any(&s, &acls, ALICE, Write, Topic));
        let acls = [
            topic("ab", PatternType::Literal, "User:alice", Write, Allow),
            topic("ab", PatternType::Literal, "User:alice", Write, Deny),
        ];
        assert!(!decide_any(&s, &acls, ALICE, Write, Topic));
        let open = Settings {
            allow_if_no_acl: true,
            ..Settings::default()
        };
        assert!(decide_any(&open, &[], ALICE, Write, Topic));
    }

    /// Kafka's `authorizeByResourceType` honours a wildcard ALLOW only after every binding
    /// has been seen, so a wildcard DENY wins whichever comes first (in `acls.toml`'s
    /// order `User:*` sorts before `User:alice`).
    #[test]
    fn any_resource_wildcard_deny_beats_a_wildcard_allow_seen_first() {
        let acls = [
            topic("*", PatternType::Literal, WILDCARD_PRINCIPAL, Write, Allow),
            topic("*", PatternType::Literal, "User:alice", Write, Deny),
        ];
        assert!(!decide_any(&strict(), &acls, ALICE, Write, Topic));
    }

    #[test]
    fn filters_match_as_kafka() {
        let lit = topic("pay-x", PatternType::Literal, "User:alice", Read, Allow);
        let pre = topic("pay-", PatternType::Prefixed, "User:alice", Read, Allow);
        let star = topic("*", PatternType::Literal, "User:bob", Write, Deny);
        let all = [&lit, &pre, &star];
        let f = |name: Option<&str>, pattern| AclFilter {
            name: name.map(str::to_string),
            pattern,
            ..AclFilter::any()
        };
        let hits = |f: &AclFilter| all.iter().filter(|a| f.matches(a)).count();
        assert_eq!(hits(&AclFilter::any()), 3);
        assert_eq!(hits(&f(Some("pay-x"), PatternFilter::Match)), 3);
        assert_eq!(hits(&f(Some("pay-x"), PatternFilter::Any)), 1);
        assert_eq!(hits(&f(Some("pay-"), PatternFilter::Any)), 1);
        assert_eq!(
            hits(&f(None, PatternFilter::Exact(PatternType::Prefixed))),
            1
        );
        assert_eq!(
            hits(&f(Some("pay-"), PatternFilter::Exact(PatternType::Literal))),
            0
        );
        let by_entry = AclFilter {
            principal: Some("User:bob".into()),
            permission: Some(Deny),
            ..AclFilter::any()
        };
        assert_eq!(hits(&by_entry), 1);
        // UNKNOWN (0) in a filter is refused; ANY (1) and MATCH (2) are fine.
        assert!(AclFilter::from_wire(0, None, 1, None, None, 1, 1).is_err());
        assert!(AclFilter::from_wire(1, None, 0, None, None, 1, 1).is_err());
        assert!(AclFilter::from_wire(1, None, 2, None, None, 1, 9).is_err());
        assert!(AclFilter::from_wire(1, None, 2, None, None, 1, 1).is_ok());
    }

    #[test]
    fn bindings_refuse_any_unknown_and_bad_names() {
        let ok = |rt, name, pat, op, perm| {
            Acl::from_wire(rt, name, pat, "User:alice", "*", op, perm).map(|_| ())
        };
        assert!(ok(2, "t", 3, 3, 3).is_ok());
        assert!(ok(1, "t", 3, 3, 3)
            .unwrap_err()
            .contains("Invalid resourceType ANY"));
        assert!(ok(2, "t", 2, 3, 3).unwrap_err().contains("MATCH"));
        assert!(ok(2, "t", 1, 3, 3).unwrap_err().contains("ANY"));
        assert!(ok(2, "t", 3, 1, 3).unwrap_err().contains("operation"));
        assert!(ok(2, "t", 3, 3, 1).unwrap_err().contains("permissionType"));
        assert!(ok(2, "", 3, 3, 3).unwrap_err().contains("empty"));
        assert!(ok(4, "c", 3, 3, 3).unwrap_err().contains(CLUSTER_NAME));
        assert!(ok(4, CLUSTER_NAME, 3, 7, 3).is_ok());
        assert!(Acl::from_wire(2, "t", 3, "alice", "*", 3, 3).is_err());
    }

    #[test]
    fn hosts_print_as_java_does() {
        assert_eq!(java_host_address("10.1.2.3".parse().unwrap()), "10.1.2.3");
        assert_eq!(java_host_address("::1".parse().unwrap()), "0:0:0:0:0:0:0:1");
        assert_eq!(
            java_host_address("::ffff:10.1.2.3".parse().unwrap()),
            "10.1.2.3"
        );
    }

    #[test]
    fn settings_parse_kafka_properties() {
        let mut p = Props::default();
        assert_eq!(settings_from(&p).unwrap(), None);
        p.set("authorizer.class.name", "com.example.Mine");
        let e = settings_from(&p).unwrap_err().to_string();
        assert!(e.contains("authorizer.class.name"), "{e}");
        for class in KNOWN_AUTHORIZERS {
            p.set("authorizer.class.name", *class);
            assert!(settings_from(&p).unwrap().is_some());
        }
        p.set("super.users", "User:admin; User:ops;");
        p.set("allow.everyone.if.no.acl.found", "TRUE");
        let s = settings_from(&p).unwrap().unwrap();
        assert_eq!(s.super_users.len(), 2);
        assert!(s.super_users.contains("User:ops"));
        assert!(s.allow_if_no_acl);
        p.set("super.users", "admin");
        assert!(settings_from(&p)
            .unwrap_err()
            .to_string()
            .contains("super.users"));
    }

    #[test]
    fn acls_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = Props::default();
        p.set("authorizer.class.name", KNOWN_AUTHORIZERS[0]);
        let a = Authorizer::open(&p, dir.path()).unwrap();
        let x = topic("t", PatternType::Literal, "User:alice", Read, Allow);
        let y = topic("p-", PatternType::Prefixed, WILDCARD_PRINCIPAL, All, Deny);
        a.create(&[x.clone(), y.clone(), x.clone()]).unwrap();
        assert_eq!(a.list(&AclFilter::any()).len(), 2);
        drop(a);
        let a = Authorizer::open(&p, dir.path()).unwrap();
        assert_eq!(a.list(&AclFilter::any()), vec![y.clone(), x.clone()]);
        let gone = a
            .delete(&[AclFilter {
                permission: Some(Deny),
                ..AclFilter::any()
            }])
            .unwrap();
        assert_eq!(gone, vec![vec![y]]);
        drop(a);
        let a = Authorizer::open(&p, dir.path()).unwrap();
        assert_eq!(a.list(&AclFilter::any()), vec![x]);
    }

    #[test]
    fn disabled_allows_everything() {
        let a = Authorizer::disabled();
        assert!(!a.enabled());
        let s = Session::new(
            "127.0.0.1:1".parse().unwrap(),
            "PLAINTEXT".into(),
            super::super::Protocol::Plaintext,
        );
        assert!(a.authorize(&s, Read, Topic, "t"));
        assert!(a.authorize_any(&s, Write, Topic));
    }
}
