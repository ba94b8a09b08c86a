//! SCRAM credentials: what AlterUserScramCredentials creates and DescribeUserScramCredentials
//! lists, and what SCRAM authentication checks against. As in Kafka's metadata log
//! (`UserScramCredentialRecord`), only salt, StoredKey, ServerKey and iterations are kept,
//! never a password nor the salted password.
//!
//! Kept in `scram-credentials` in the data directory, one line per (user, mechanism), each
//! field base64 so user names may hold any character:
//! `USER MECHANISM ITERATIONS SALT STORED_KEY SERVER_KEY`. Every change rewrites the file
//! atomically (temp file, fsync, rename, directory fsync), so a crash leaves the old or the
//! new set whole.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use super::mechanism::Mechanism;
use super::scram_keys::{random_bytes, ScramCredential, MAX_ITERATIONS, MIN_ITERATIONS};

/// File name in the data directory.
pub const FILE: &str = "scram-credentials";

/// The first line of the file, naming its format.
const HEADER: &str = "# sluice scram credentials v1";

/// A failure to read or write the credentials file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line is not in the file's format.
    #[error("{path}: line {line}: {what}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        what: String,
    },
}

type Map = BTreeMap<String, BTreeMap<Mechanism, ScramCredential>>;

/// The credentials, in memory and on disk.
#[derive(Debug)]
pub struct ScramStore {
    path: PathBuf,
    users: Mutex<Map>,
}

/// One change of an AlterUserScramCredentials request, validated.
#[derive(Debug, Clone)]
pub enum Change {
    /// Remove `user`'s credential for a mechanism.
    Delete(String, Mechanism),
    /// Set `user`'s credential for a mechanism.
    Upsert(String, Mechanism, ScramCredential),
}

impl ScramStore {
    /// Load `scram-credentials` from `data_dir` (none yet: no users).
    pub fn open(data_dir: &Path) -> Result<ScramStore, Error> {
        let path = data_dir.join(FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => return Err(Error::Io { path, source }),
        };
        let users = parse(&text).map_err(|(line, what)| Error::Corrupt {
            path: path.clone(),
            line,
            what,
        })?;
        Ok(ScramStore {
            path,
            users: Mutex::new(users),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Map> {
        // A panic while holding the lock left the map as it was before the change (changes
        // are applied to a copy first), so the data is still good.
        self.users.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether no user has a SCRAM credential.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// `user`'s credential for `mechanism`.
    pub fn get(&self, user: &str, mechanism: Mechanism) -> Option<ScramCredential> {
        self.lock().get(user)?.get(&mechanism).cloned()
    }

    /// Every user with at least one credential, with (mechanism, iterations) of each.
    pub fn describe_all(&self) -> Vec<(String, Vec<(Mechanism, i32)>)> {
        self.lock()
            .iter()
            .map(|(u, m)| {
                (
                    u.clone(),
                    m.iter().map(|(k, c)| (*k, c.iterations)).collect(),
                )
            })
            .collect()
    }

    /// `user`'s (mechanism, iterations), `None` if it has no credential.
    pub fn describe(&self, user: &str) -> Option<Vec<(Mechanism, i32)>> {
        let g = self.lock();
        let m = g.get(user)?;
        Some(m.iter().map(|(k, c)| (*k, c.iterations)).collect())
    }

    /// Whether `user` has a credential for `mechanism`.
    pub fn contains(&self, user: &str, mechanism: Mechanism) -> bool {
        self.lock()
            .get(user)
            .is_some_and(|m| m.contains_key(&mechanism))
    }

    /// Set one credential (tests and seeding).
    pub fn upsert(
        &self,
        user: &str,
        mechanism: Mechanism,
        cred: ScramCredential,
    ) -> Result<(), Error> {
        self.apply(vec![Change::Upsert(user.to_string(), mechanism, cred)])
    }

    /// Apply `changes` together, durably; on a write error nothing changes. Deleting what
    /// does not exist is a no-op here (the handler has checked).
    pub fn apply(&self, changes: Vec<Change>) -> Result<(), Error> {
        let mut g = self.lock();
        let mut next = g.clone();
        for c in changes {
            match c {
                Change::Delete(u, m) => {
                    if let Some(ms) = next.get_mut(&u) {
                        ms.remove(&m);
                        if ms.is_empty() {
                            next.remove(&u);
                        }
                    }
                }
                Change::Upsert(u, m, cred) => {
                    next.entry(u).or_default().insert(m, cred);
                }
            }
        }
        crate::log::write_atomic(&self.path, &render(&next)).map_err(|e| Error::Io {
            path: self.path.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        *g = next;
        Ok(())
    }
}

/// Parse Sluice's `sluice.add.scram` setting, the equivalent of Kafka's
/// `kafka-storage format --add-scram`: entries `MECHANISM=[name=USER,password=PASS]` (with
/// optional `iterations=N`), separated by `;` or whitespace. Returns (user, mechanism,
/// password, iterations).
pub fn parse_seed(spec: &str) -> Result<Vec<(String, Mechanism, String, i32)>, String> {
    let mut out = Vec::new();
    let mut rest = spec.trim();
    while !rest.is_empty() {
        // Messages name the entry, never quote its text: it holds a password, and
        // sluice.add.scram is a secret setting (security::is_secret_key).
        let entry = out.len() + 1;
        let (mech, after) = rest
            .split_once("=[")
            .ok_or_else(|| format!("entry {entry} is not MECHANISM=[name=...,password=...]"))?;
        let mech = mech.trim_matches(|c: char| c == ';' || c == ',' || c.is_whitespace());
        let m = Mechanism::parse(mech)
            .filter(|m| m.scram().is_some())
            .ok_or_else(|| format!("'{mech}' is not SCRAM-SHA-256 or SCRAM-SHA-512"))?;
        let (body, after) = after
            .split_once(']')
            .ok_or_else(|| format!("'{mech}=[' is not closed with ']'"))?;
        let (mut name, mut password, mut iterations) = (None, None, 4096);
        for kv in body.split(',') {
            let (k, v) = kv.split_once('=').ok_or_else(|| {
                format!("entry {entry}: a field is not key=value (a password cannot hold ',')")
            })?;
            let v = v.trim().trim_matches('"').to_string();
            match k.trim() {
                "name" => name = Some(v),
                "password" => password = Some(v),
                "iterations" => {
                    iterations = v
                        .parse()
                        .ok()
                        .filter(|i| (MIN_ITERATIONS..=MAX_ITERATIONS).contains(i))
                        .ok_or_else(|| {
                            format!(
                                "iterations '{v}' is not from {MIN_ITERATIONS} to {MAX_ITERATIONS}"
                            )
                        })?
                }
                _ => {
                    return Err(format!(
                        "entry {entry}: unknown key (name, password, iterations are known)"
                    ))
                }
            }
        }
        let name = name
            .filter(|n| !n.is_empty())
            .ok_or("an entry has no name")?;
        let password = password
            .filter(|p| !p.is_empty())
            .ok_or("an entry has no password")?;
        out.push((name, m, password, iterations));
        rest = after.trim_start_matches(|c: char| c == ';' || c == ',' || c.is_whitespace());
    }
    Ok(out)
}

impl ScramStore {
    /// Create the credentials `spec` (see [`parse_seed`]) lists that do not exist yet, with a
    /// fresh random salt; existing ones are kept, so changes made with
    /// AlterUserScramCredentials survive restarts. Returns the (user, mechanism) created.
    pub fn seed(&self, spec: &str) -> Result<Vec<(String, Mechanism)>, String> {
        let mut created = Vec::new();
        let mut changes = Vec::new();
        for (user, m, password, iterations) in parse_seed(spec)? {
            let Some(hash) = m.scram() else { continue };
            if self.contains(&user, m) {
                continue;
            }
            let salt = random_bytes::<16>().ok_or("no random salt")?;
            let rounds = u32::try_from(iterations).map_err(|e| e.to_string())?;
            let salted = hash.hi(password.as_bytes(), &salt, rounds);
            changes.push(Change::Upsert(
                user.clone(),
                m,
                hash.credential(&salt, &salted, iterations),
            ));
            created.push((user, m));
        }
        if !changes.is_empty() {
            self.apply(changes).map_err(|e| e.to_string())?;
        }
        Ok(created)
    }
}

fn render(users: &Map) -> String {
    let mut s = format!("{HEADER}\n");
    for (u, ms) in users {
        for (m, c) in ms {
            s.push_str(&format!(
                "{} {} {} {} {} {}\n",
                B64.encode(u),
                m.name(),
                c.iterations,
                B64.encode(&c.salt),
                B64.encode(&c.stored_key),
                B64.encode(&c.server_key)
            ));
        }
    }
    s
}

fn parse(text: &str) -> Result<Map, (usize, String)> {
    let mut users = Map::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split(' ').collect();
        let [user, mech, iterations, salt, stored, server] = f[..] else {
            return Err((n, format!("expected 6 fields, found {}", f.len())));
        };
        let b = |what: &str, v: &str| B64.decode(v).map_err(|e| (n, format!("{what}: {e}")));
        let user =
            String::from_utf8(b("user", user)?).map_err(|_| (n, "user is not UTF-8".into()))?;
        let mech = Mechanism::parse(mech)
            .filter(|m| m.scram().is_some())
            .ok_or_else(|| (n, format!("unknown SCRAM mechanism {mech}")))?;
        let iterations: i32 = iterations
            .parse()
            .map_err(|_| (n, format!("iterations '{iterations}' is not a number")))?;
        let cred = ScramCredential {
            salt: b("salt", salt)?,
            stored_key: b("stored key", stored)?,
            server_key: b("server key", server)?,
            iterations,
        };
        users.entry(user).or_default().insert(mech, cred);
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(i: i32) -> ScramCredential {
        ScramCredential {
            salt: b"s".to_vec(),
            stored_key: vec![1, 2, 3],
            server_key: vec![4, 5],
            iterations: i,
        }
    }

    #[test]
    fn survives_reopen_and_keeps_no_password() {
        let dir = tempfile::tempdir().unwrap();
        let s = ScramStore::open(dir.path()).unwrap();
        s.upsert("al ice", Mechanism::ScramSha256, cred(4096))
            .unwrap();
        s.upsert("al ice", Mechanism::ScramSha512, cred(8192))
            .unwrap();
        s.upsert("bob", Mechanism::ScramSha256, cred(5000)).unwrap();
        s.apply(vec![Change::Delete("bob".into(), Mechanism::ScramSha256)])
            .unwrap();
        let s = ScramStore::open(dir.path()).unwrap();
        assert_eq!(
            s.describe("al ice"),
            Some(vec![
                (Mechanism::ScramSha256, 4096),
                (Mechanism::ScramSha512, 8192)
            ])
        );
        assert_eq!(s.describe("bob"), None);
        assert_eq!(s.get("al ice", Mechanism::ScramSha512), Some(cred(8192)));
    }

    #[test]
    fn seeds_only_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let s = ScramStore::open(dir.path()).unwrap();
        let spec = "SCRAM-SHA-256=[name=alice,password=a-secret]; SCRAM-SHA-512=[name=alice,iterations=8192,password=\"b\"]";
        assert_eq!(s.seed(spec).unwrap().len(), 2);
        assert_eq!(
            s.describe("alice"),
            Some(vec![
                (Mechanism::ScramSha256, 4096),
                (Mechanism::ScramSha512, 8192)
            ])
        );
        assert!(s.seed(spec).unwrap().is_empty());
        assert!(parse_seed("SCRAM-SHA-1=[name=a,password=b]").is_err());
        assert!(parse_seed("SCRAM-SHA-256=[name=a,password=b,iterations=100]").is_err());
        assert!(parse_seed("SCRAM-SHA-256=[name=a]").is_err());
    }

    #[test]
    fn seed_errors_never_quote_a_password() {
        for spec in [
            "SCRAM-SHA-256 [name=alice,password=hunter2]",
            "SCRAM-SHA-256=[name=alice,password=hunt,er2]",
            "SCRAM-SHA-256=[name=alice,password=hunt,er2=x]",
        ] {
            let e = parse_seed(spec).unwrap_err();
            assert!(!e.contains("hunt") && !e.contains("er2"), "{e}");
        }
    }

    #[test]
    fn corrupt_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), "YQ== SCRAM-SHA-1 1 a b c\n").unwrap();
        assert!(ScramStore::open(dir.path()).is_err());
    }
}
