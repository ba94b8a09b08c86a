//! DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554), with the checks and
//! messages of Kafka's `ScramControlManager` and `ScramImage`: a user named twice in one
//! request gets DUPLICATE_RESOURCE, fewer than 4096 or more than 16384 iterations
//! UNACCEPTABLE_CREDENTIAL, deleting or describing what does not exist RESOURCE_NOT_FOUND.
//! Upsertions carry the salt and salted password the client computed; only StoredKey and
//! ServerKey are kept (`security::credentials`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse, RequestHeader,
};
use kafka_protocol::protocol::StrBytes;
use tracing::{error, info};

use crate::api::{blocking, sb, ApiError, Code, Ctx};
use crate::security::acl::Operation;
use crate::security::credentials::Change;
use crate::security::mechanism::Mechanism;
use crate::security::scram_keys::{MAX_ITERATIONS, MIN_ITERATIONS};

/// Handle DescribeUserScramCredentials.
pub(crate) async fn describe(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: DescribeUserScramCredentialsRequest,
) -> Result<DescribeUserScramCredentialsResponse, ApiError> {
    // Kafka: DESCRIBE on the cluster, else CLUSTER_AUTHORIZATION_FAILED for the request.
    if !ctx.authorize_cluster(Operation::Describe) {
        return Ok(DescribeUserScramCredentialsResponse::default()
            .with_error_code(Code::ClusterAuthorizationFailed.code()));
    }
    let store = &ctx.broker.scram;
    let infos = |creds: Vec<(Mechanism, i32)>| -> Vec<CredentialInfo> {
        creds
            .into_iter()
            .filter_map(|(m, i)| {
                Some(
                    CredentialInfo::default()
                        .with_mechanism(m.scram_code()?)
                        .with_iterations(i),
                )
            })
            .collect()
    };
    let results = match req.users.filter(|u| !u.is_empty()) {
        // Null or empty: every user with a credential.
        None => store
            .describe_all()
            .into_iter()
            .map(|(u, creds)| {
                DescribeUserScramCredentialsResult::default()
                    .with_user(sb(u))
                    .with_credential_infos(infos(creds))
            })
            .collect(),
        Some(users) => {
            let mut count: BTreeMap<&str, usize> = BTreeMap::new();
            for u in &users {
                *count.entry(u.name.as_str()).or_default() += 1;
            }
            let mut seen = BTreeSet::new();
            let mut out = Vec::new();
            for u in &users {
                let name = u.name.as_str();
                if !seen.insert(name) {
                    continue;
                }
                let r = DescribeUserScramCredentialsResult::default().with_user(u.name.clone());
                out.push(if count.get(name).copied().unwrap_or(0) > 1 {
                    r.with_error_code(Code::DuplicateResource.code()).with_error_message(Some(sb(
                        format!("Cannot describe SCRAM credentials for the same user twice in a single request: {name}"),
                    )))
                } else {
                    match store.describe(name) {
                        Some(creds) => r.with_credential_infos(infos(creds)),
                        None => r.with_error_code(Code::ResourceNotFound.code()).with_error_message(Some(sb(
                            format!("Attempt to describe a user credential that does not exist: {name}"),
                        ))),
                    }
                });
            }
            out
        }
    };
    Ok(DescribeUserScramCredentialsResponse::default().with_results(results))
}

fn result(user: &StrBytes, code: Code, message: &str) -> AlterUserScramCredentialsResult {
    AlterUserScramCredentialsResult::default()
        .with_user(user.clone())
        .with_error_code(code.code())
        .with_error_message(Some(sb(message)))
}

/// Kafka's `validateScramUsernameAndMechanism`.
fn check_user_and_mechanism(name: &str, mechanism: i8) -> Result<Mechanism, (Code, &'static str)> {
    if name.is_empty() {
        return Err((Code::UnacceptableCredential, "Username must not be empty"));
    }
    Mechanism::from_scram_code(mechanism)
        .ok_or((Code::UnsupportedSaslMechanism, "Unknown SCRAM mechanism"))
}

/// Handle AlterUserScramCredentials.
pub(crate) async fn alter(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: AlterUserScramCredentialsRequest,
) -> Result<AlterUserScramCredentialsResponse, ApiError> {
    // Kafka: ALTER on the cluster, else CLUSTER_AUTHORIZATION_FAILED for every user named.
    if !ctx.authorize_cluster(Operation::Alter) {
        let results = req
            .deletions
            .iter()
            .map(|d| &d.name)
            .chain(req.upsertions.iter().map(|u| &u.name))
            .map(|n| {
                AlterUserScramCredentialsResult::default()
                    .with_user(n.clone())
                    .with_error_code(Code::ClusterAuthorizationFailed.code())
            })
            .collect();
        return Ok(AlterUserScramCredentialsResponse::default().with_results(results));
    }
    let store = &ctx.broker.scram;
    // Kafka keys the request by user name: a user in two changes (two mechanisms, or a
    // deletion and an upsertion) is refused whole with DUPLICATE_RESOURCE.
    let mut errors: Vec<(StrBytes, Code, String)> = Vec::new();
    let mut failed: BTreeSet<String> = BTreeSet::new();
    let mut deletions: BTreeMap<String, (StrBytes, Mechanism)> = BTreeMap::new();
    let mut upserts: BTreeMap<String, (StrBytes, Mechanism, i32, bytes::Bytes, bytes::Bytes)> =
        BTreeMap::new();
    let duplicate = "A user credential cannot be altered twice in the same request";
    for d in &req.deletions {
        let name = d.name.to_string();
        if failed.contains(&name) {
            continue;
        }
        if deletions.remove(&name).is_some() {
            failed.insert(name);
            errors.push((d.name.clone(), Code::DuplicateResource, duplicate.into()));
            continue;
        }
        let checked = check_user_and_mechanism(&name, d.mechanism).and_then(|m| {
            if store.contains(&name, m) {
                Ok(m)
            } else {
                Err((
                    Code::ResourceNotFound,
                    "Attempt to delete a user credential that does not exist",
                ))
            }
        });
        match checked {
            Ok(m) => {
                deletions.insert(name, (d.name.clone(), m));
            }
            Err((code, msg)) => {
                failed.insert(name);
                errors.push((d.name.clone(), code, msg.into()));
            }
        }
    }
    for u in &req.upsertions {
        let name = u.name.to_string();
        if failed.contains(&name) {
            continue;
        }
        if deletions.remove(&name).is_some() || upserts.remove(&name).is_some() {
            failed.insert(name);
            errors.push((u.name.clone(), Code::DuplicateResource, duplicate.into()));
            continue;
        }
        let checked = check_user_and_mechanism(&name, u.mechanism).and_then(|m| {
            if u.iterations < MIN_ITERATIONS {
                Err((Code::UnacceptableCredential, "Too few iterations"))
            } else if u.iterations > MAX_ITERATIONS {
                Err((Code::UnacceptableCredential, "Too many iterations"))
            } else {
                Ok(m)
            }
        });
        match checked {
            Ok(m) => {
                upserts.insert(
                    name,
                    (
                        u.name.clone(),
                        m,
                        u.iterations,
                        u.salt.clone(),
                        u.salted_password.clone(),
                    ),
                );
            }
            Err((code, msg)) => {
                failed.insert(name);
                errors.push((u.name.clone(), code, msg.into()));
            }
        }
    }
    let mut changes = Vec::new();
    let mut results = Vec::new();
    for (name, (user, m)) in &deletions {
        changes.push(Change::Delete(name.clone(), *m));
        results.push(AlterUserScramCredentialsResult::default().with_user(user.clone()));
    }
    for (name, (user, m, iterations, salt, salted)) in &upserts {
        let Some(hash) = m.scram() else { continue };
        changes.push(Change::Upsert(
            name.clone(),
            *m,
            hash.credential(salt, salted, *iterations),
        ));
        results.push(AlterUserScramCredentialsResult::default().with_user(user.clone()));
    }
    if !changes.is_empty() {
        let broker = Arc::clone(ctx.broker);
        let written = blocking(move || broker.scram.apply(changes)).await?;
        if let Err(e) = written {
            error!(error = %e, "cannot write SCRAM credentials");
            results = results
                .iter()
                .map(|r| {
                    result(
                        &r.user,
                        Code::UnknownServerError,
                        "cannot store the credentials",
                    )
                })
                .collect();
        } else {
            info!(
                principal = %ctx.session.principal,
                deleted = ?deletions.keys().collect::<Vec<_>>(),
                upserted = ?upserts.keys().collect::<Vec<_>>(),
                "SCRAM credentials altered"
            );
        }
    }
    results.extend(errors.iter().map(|(u, c, m)| result(u, *c, m)));
    Ok(AlterUserScramCredentialsResponse::default().with_results(results))
}
