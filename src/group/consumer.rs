//! KIP-848 consumer groups (`group.protocol=consumer`): members heartbeat with their
//! subscriptions, the broker computes the target assignment with a server-side assignor
//! (`uniform` or `range`), and each member is reconciled towards it: partitions are first
//! revoked, and only handed to a new owner once the previous owner has let them go, so no
//! partition is ever owned twice.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use kafka_protocol::error::ResponseError as Code;

/// Kafka's `group.consumer.session.timeout.ms` default; a group's own
/// `consumer.session.timeout.ms` (group configs) is what [`ConsumerGroup::tick`] is given.
pub const SESSION_TIMEOUT_MS: i64 = 45_000;
/// Assignors offered, first is the default (Kafka: uniform).
pub const ASSIGNORS: &[&str] = &["uniform", "range"];

/// A topic as assignors see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic id.
    pub id: Uuid,
    /// Partition count.
    pub partitions: i32,
}

/// All topics by name, as the coordinator is told on each heartbeat.
pub type Catalog = BTreeMap<String, TopicInfo>;

/// A set of partitions: (topic id, partition).
pub type Partitions = BTreeSet<(Uuid, i32)>;

/// One member of a consumer group.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ConsumerMember {
    /// Member id (client-generated from v1).
    pub id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Rack id.
    pub rack_id: Option<String>,
    /// Current member epoch.
    pub epoch: i32,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Subscribed topic names.
    pub topics: Vec<String>,
    /// Subscribed regex.
    pub regex: Option<String>,
    /// With an authorizer: the topics the member's principal may DESCRIBE, as of its last
    /// heartbeat. Kafka resolves a regex only to topics the member may describe; `None`
    /// (no authorizer) matches every topic.
    #[serde(default)]
    pub regex_allowed: Option<BTreeSet<String>>,
    /// Assignor the member asked for.
    pub assignor: Option<String>,
    /// Rebalance timeout.
    pub rebalance_timeout_ms: i32,
    /// Partitions the member currently holds (as we told it).
    pub assigned: Partitions,
    /// Partitions it must give up before it advances.
    pub revoking: Partitions,
    /// The member epoch at which each partition of `assigned` and `revoking` was given to it
    /// (KIP-1251's assignment epochs), for OffsetCommits sent with an older epoch. Snapshots
    /// written before this field have none; a missing entry counts as the current epoch.
    #[serde(default, with = "epoch_list")]
    pub assigned_at: BTreeMap<(Uuid, i32), i32>,
    /// Last heartbeat (ms).
    pub last_seen_ms: i64,
    /// Assignment last sent; an unchanged assignment is not sent again (null on the wire).
    pub last_sent: Option<Partitions>,
}

/// A consumer group.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ConsumerGroup {
    /// Group id.
    pub id: String,
    /// Bumped when membership, subscriptions or partition counts change.
    pub epoch: i32,
    /// Epoch of the current target assignment.
    pub assignment_epoch: i32,
    /// Members by id.
    pub members: BTreeMap<String, ConsumerMember>,
    /// Target assignment per member.
    pub target: BTreeMap<String, Partitions>,
    /// Subscribed topics' partition counts when the target was computed.
    pub seen: BTreeMap<String, i32>,
    /// Assignor in use.
    pub assignor: String,
    /// Changed since it was last written to `__consumer_offsets`.
    #[serde(skip)]
    pub dirty: bool,
}

/// `assigned_at` in snapshots: a list of `[topic id, partition, epoch]`, as TOML keys must
/// be strings.
mod epoch_list {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};
    use uuid::Uuid;

    pub(super) fn serialize<S: Serializer>(
        m: &BTreeMap<(Uuid, i32), i32>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.iter().map(|((t, p), e)| (t, p, e)))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<(Uuid, i32), i32>, D::Error> {
        let v: Vec<(Uuid, i32, i32)> = Vec::deserialize(d)?;
        Ok(v.into_iter().map(|(t, p, e)| ((t, p), e)).collect())
    }
}

/// Which partitions an OffsetCommit from a member of a consumer group may write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitScope {
    /// Any partition: the member's current epoch, or a commit from outside the group while
    /// it has no members.
    All,
    /// Only `allowed`: the commit carries an older epoch than the member's.
    Only {
        /// The member's current epoch.
        member_epoch: i32,
        /// Partitions the member holds or is giving up, assigned at the commit's epoch or
        /// before.
        allowed: Partitions,
    },
}

/// What a heartbeat asks.
#[derive(Debug, Clone, Default)]
pub struct Heartbeat {
    /// Member id.
    pub member_id: String,
    /// Member epoch: 0 join, -1 leave, -2 static leave, else current.
    pub epoch: i32,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Rack id.
    pub rack_id: Option<String>,
    /// Rebalance timeout, -1 unchanged.
    pub rebalance_timeout_ms: i32,
    /// Subscribed names, `None` unchanged.
    pub topics: Option<Vec<String>>,
    /// Subscribed regex, `None` unchanged.
    pub regex: Option<String>,
    /// Topics the sender may DESCRIBE, when an authorizer is on (see
    /// [`ConsumerMember::regex_allowed`]).
    pub regex_allowed: Option<BTreeSet<String>>,
    /// Server assignor, `None` unchanged.
    pub assignor: Option<String>,
    /// Partitions the client owns, `None` unchanged.
    pub owned: Option<Partitions>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatReply {
    /// Member id.
    pub member_id: String,
    /// Member epoch after reconciliation.
    pub epoch: i32,
    /// The member's assignment, when it differs from the one last sent.
    pub assignment: Option<Partitions>,
}

/// States as ConsumerGroupDescribe and ListGroups name them.
pub fn state_name(g: &ConsumerGroup) -> &'static str {
    if g.members.is_empty() {
        "Empty"
    } else if g.assignment_epoch < g.epoch {
        "Assigning"
    } else if g
        .members
        .values()
        .any(|m| m.epoch != g.assignment_epoch || !m.revoking.is_empty())
    {
        "Reconciling"
    } else {
        "Stable"
    }
}

fn subscribed(m: &ConsumerMember, catalog: &Catalog) -> Vec<String> {
    let mut names: BTreeSet<String> = m
        .topics
        .iter()
        .filter(|t| catalog.contains_key(*t))
        .cloned()
        .collect();
    if let Some(re) = m
        .regex
        .as_ref()
        .and_then(|r| regex::Regex::new(&format!("^(?:{r})$")).ok())
    {
        names.extend(
            catalog
                .keys()
                // Kafka matches the regex against every topic, internal ones included
                // (franz-go's Test848RegexBrokerResolves subscribes `__consumer_offsets`).
                .filter(|t| re.is_match(t))
                .filter(|t| m.regex_allowed.as_ref().is_none_or(|a| a.contains(*t)))
                .cloned(),
        );
    }
    names.into_iter().collect()
}

/// Uniform assignor: balanced and sticky, like Kafka's `uniform` assignor.
///
/// Every member keeps the partitions its previous target gave it that it is still subscribed
/// to; partitions nobody holds go to the least-loaded subscribed member; then partitions
/// move, one at a time, from a member to a subscribed member that holds at least two fewer,
/// until no such move is left. With identical subscriptions that is Kafka's balance: every
/// member holds floor(partitions / members) or one more. Only partitions that must move for
/// that do. (Before, each member kept up to ceil(partitions / members) of its previous
/// partitions, so with 6 partitions the fourth member to join was left with none.)
fn assign_uniform(
    members: &BTreeMap<String, ConsumerMember>,
    previous: &BTreeMap<String, Partitions>,
    catalog: &Catalog,
) -> BTreeMap<String, Partitions> {
    let subs: BTreeMap<&String, Vec<String>> = members
        .iter()
        .map(|(id, m)| (id, subscribed(m, catalog)))
        .collect();
    // Topic of each subscribed partition, and who may own it.
    let mut topic_of: BTreeMap<(Uuid, i32), &String> = BTreeMap::new();
    let topics: BTreeSet<&String> = subs.values().flatten().collect();
    for t in topics {
        if let Some(info) = catalog.get(t) {
            for p in 0..info.partitions {
                topic_of.insert((info.id, p), t);
            }
        }
    }
    let eligible = |id: &String, t: &String| subs.get(id).is_some_and(|s| s.contains(t));
    let mut out: BTreeMap<String, Partitions> = members
        .keys()
        .map(|id| (id.clone(), Partitions::new()))
        .collect();
    let mut taken: BTreeSet<(Uuid, i32)> = BTreeSet::new();
    // Sticky: keep what the previous target gave.
    for (id, prev) in previous {
        let Some(mine) = out.get_mut(id) else {
            continue;
        };
        for tp in prev {
            if topic_of.get(tp).is_some_and(|t| eligible(id, t)) && taken.insert(*tp) {
                mine.insert(*tp);
            }
        }
    }
    // Free partitions to the least loaded (ties: lowest member id).
    for (tp, t) in &topic_of {
        if taken.contains(tp) {
            continue;
        }
        let best = out
            .iter()
            .filter(|(id, _)| eligible(id, t))
            .min_by_key(|(_, set)| set.len())
            .map(|(id, _)| id.clone());
        if let Some(id) = best {
            if let Some(set) = out.get_mut(&id) {
                set.insert(*tp);
                taken.insert(*tp);
            }
        }
    }
    // Balance: each move takes a partition from a member to one holding at least two fewer,
    // so the sum of squared loads falls and the loop ends; the bound is a safeguard.
    let mut moves_left = topic_of.len().saturating_mul(members.len().max(1));
    while moves_left > 0 {
        moves_left -= 1;
        let Some((from, tp, to)) = balancing_move(&out, &topic_of, &eligible) else {
            break;
        };
        if let Some(set) = out.get_mut(&from) {
            set.remove(&tp);
        }
        if let Some(set) = out.get_mut(&to) {
            set.insert(tp);
        }
    }
    out
}

/// A move that improves balance: from the most loaded member that has a partition some
/// subscribed member with at least two fewer could take (its highest such partition), to the
/// least loaded of those.
fn balancing_move(
    out: &BTreeMap<String, Partitions>,
    topic_of: &BTreeMap<(Uuid, i32), &String>,
    eligible: &impl Fn(&String, &String) -> bool,
) -> Option<(String, (Uuid, i32), String)> {
    let mut by_load: Vec<(&String, &Partitions)> = out.iter().collect();
    by_load.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    let lightest = by_load.last().map_or(0, |(_, s)| s.len());
    for (from, set) in &by_load {
        if set.len() < lightest + 2 {
            break;
        }
        for tp in set.iter().rev() {
            let Some(t) = topic_of.get(tp) else {
                continue;
            };
            let to = by_load
                .iter()
                .rev()
                .filter(|(id, _)| eligible(id, t))
                .find(|(_, s)| s.len() + 2 <= set.len());
            if let Some((to, _)) = to {
                return Some(((*from).clone(), *tp, (*to).clone()));
            }
        }
    }
    None
}

/// Range assignor: per topic, contiguous ranges of partitions to the members subscribed to
/// it, in member-id order.
fn assign_range(
    members: &BTreeMap<String, ConsumerMember>,
    catalog: &Catalog,
) -> BTreeMap<String, Partitions> {
    let mut out: BTreeMap<String, Partitions> = members
        .keys()
        .map(|id| (id.clone(), Partitions::new()))
        .collect();
    let mut by_topic: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, m) in members {
        for t in subscribed(m, catalog) {
            by_topic.entry(t).or_default().push(id.clone());
        }
    }
    for (t, ids) in by_topic {
        let Some(info) = catalog.get(&t) else {
            continue;
        };
        let n = usize::try_from(info.partitions).unwrap_or(0);
        let k = ids.len().max(1);
        let (base, extra) = (n / k, n % k);
        let mut next = 0usize;
        for (i, id) in ids.iter().enumerate() {
            let count = base + usize::from(i < extra);
            if let Some(set) = out.get_mut(id) {
                for p in next..next + count {
                    set.insert((info.id, i32::try_from(p).unwrap_or(0)));
                }
            }
            next += count;
        }
    }
    out
}

impl ConsumerGroup {
    /// A new, empty group.
    pub fn new(id: &str) -> Self {
        ConsumerGroup {
            id: id.to_string(),
            assignor: ASSIGNORS[0].to_string(),
            ..Default::default()
        }
    }

    fn owned_elsewhere(&self, me: &str) -> Partitions {
        self.members
            .iter()
            .filter(|(id, _)| id.as_str() != me)
            .flat_map(|(_, m)| m.assigned.iter().chain(m.revoking.iter()).copied())
            .collect()
    }

    fn recompute_if_needed(&mut self, catalog: &Catalog) {
        let seen: BTreeMap<String, i32> = self
            .members
            .values()
            .flat_map(|m| subscribed(m, catalog))
            .filter_map(|t| catalog.get(&t).map(|i| (t, i.partitions)))
            .collect();
        if seen != self.seen {
            self.seen = seen;
            self.epoch += 1;
        }
        if self.assignment_epoch < self.epoch {
            self.target = if self.assignor == "range" {
                assign_range(&self.members, catalog)
            } else {
                assign_uniform(&self.members, &self.target, catalog)
            };
            self.assignment_epoch = self.epoch;
        }
    }

    /// The stored form of the group (a TOML document: Sluice's own snapshot format).
    pub fn snapshot(&self) -> Option<bytes::Bytes> {
        toml::to_string(self).ok().map(bytes::Bytes::from)
    }

    /// Rebuild a group from its snapshot; member sessions start at `now`.
    pub fn restore(bytes: &[u8], now: i64) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut g: ConsumerGroup = toml::from_str(text).ok()?;
        for m in g.members.values_mut() {
            m.last_seen_ms = now;
        }
        Some(g)
    }

    /// Remove a member; its partitions become free.
    pub fn remove(&mut self, id: &str) -> bool {
        if self.members.remove(id).is_some() {
            self.target.remove(id);
            self.epoch += 1;
            self.dirty = true;
            true
        } else {
            false
        }
    }

    /// Handle one heartbeat at time `now`.
    pub fn heartbeat(
        &mut self,
        hb: Heartbeat,
        catalog: &Catalog,
        now: i64,
    ) -> Result<HeartbeatReply, Code> {
        if let Some(a) = &hb.assignor {
            if !ASSIGNORS.contains(&a.as_str()) {
                return Err(Code::UnsupportedAssignor);
            }
        }
        if hb.epoch == -1 || hb.epoch == -2 {
            let id = match &hb.instance_id {
                Some(iid) => self
                    .members
                    .values()
                    .find(|m| m.instance_id.as_deref() == Some(iid.as_str()))
                    .map(|m| m.id.clone())
                    .unwrap_or_else(|| hb.member_id.clone()),
                None => hb.member_id.clone(),
            };
            self.remove(&id);
            self.recompute_if_needed(catalog);
            return Ok(HeartbeatReply {
                member_id: hb.member_id,
                epoch: hb.epoch,
                assignment: None,
            });
        }
        let id = if hb.member_id.is_empty() {
            Uuid::new_v4().simple().to_string()
        } else {
            hb.member_id.clone()
        };
        if hb.epoch == 0 {
            // A static member coming back replaces its previous incarnation.
            if let Some(iid) = &hb.instance_id {
                let old = self
                    .members
                    .values()
                    .find(|m| m.instance_id.as_deref() == Some(iid.as_str()) && m.id != id)
                    .map(|m| m.id.clone());
                if let Some(old) = old {
                    if let Some(mut m) = self.members.remove(&old) {
                        let target = self.target.remove(&old).unwrap_or_default();
                        m.id = id.clone();
                        m.epoch = 0;
                        m.last_sent = None;
                        self.members.insert(id.clone(), m);
                        self.target.insert(id.clone(), target);
                    }
                }
            }
            if !self.members.contains_key(&id) {
                if hb.topics.is_none() && hb.regex.is_none() {
                    return Err(Code::InvalidRequest);
                }
                self.members.insert(
                    id.clone(),
                    ConsumerMember {
                        id: id.clone(),
                        instance_id: hb.instance_id.clone(),
                        rack_id: hb.rack_id.clone(),
                        epoch: 0,
                        client_id: hb.client_id.clone(),
                        client_host: hb.client_host.clone(),
                        topics: Vec::new(),
                        regex: None,
                        regex_allowed: None,
                        assignor: None,
                        rebalance_timeout_ms: hb.rebalance_timeout_ms,
                        assigned: Partitions::new(),
                        revoking: Partitions::new(),
                        assigned_at: BTreeMap::new(),
                        last_seen_ms: now,
                        last_sent: None,
                    },
                );
                self.epoch += 1;
            }
        }
        let group_epoch = self.epoch;
        let Some(m) = self.members.get_mut(&id) else {
            return Err(Code::UnknownMemberId);
        };
        if hb.epoch > 0 && hb.epoch != m.epoch {
            return Err(Code::FencedMemberEpoch);
        }
        m.last_seen_ms = now;
        let mut changed = false;
        if let Some(t) = hb.topics {
            changed |= t != m.topics;
            m.topics = t;
        }
        if hb.regex.is_some() {
            changed |= hb.regex != m.regex;
            m.regex = hb.regex.filter(|r| !r.is_empty());
        }
        // Keep only the allowed topics the regex matches: the snapshot stays small.
        let allowed = match (&m.regex, hb.regex_allowed) {
            (Some(r), Some(a)) => {
                let re = regex::Regex::new(&format!("^(?:{r})$")).ok();
                Some(
                    a.into_iter()
                        .filter(|t| re.as_ref().is_some_and(|re| re.is_match(t)))
                        .collect(),
                )
            }
            _ => None,
        };
        changed |= allowed != m.regex_allowed;
        m.regex_allowed = allowed;
        if let Some(a) = hb.assignor {
            m.assignor = Some(a);
        }
        if hb.rebalance_timeout_ms > 0 {
            m.rebalance_timeout_ms = hb.rebalance_timeout_ms;
        }
        if let Some(owned) = &hb.owned {
            // Whatever the client no longer owns has been revoked.
            m.revoking.retain(|tp| owned.contains(tp));
        }
        let preferred = m.assignor.clone();
        if changed {
            self.epoch = group_epoch + 1;
        }
        if let Some(a) = preferred {
            self.assignor = a;
        }
        self.recompute_if_needed(catalog);
        let target = self.target.get(&id).cloned().unwrap_or_default();
        let busy = self.owned_elsewhere(&id);
        let assignment_epoch = self.assignment_epoch;
        let Some(m) = self.members.get_mut(&id) else {
            return Err(Code::UnknownMemberId);
        };
        let before = (m.epoch, m.assigned.clone(), m.revoking.clone());
        let revoke: Partitions = m.assigned.difference(&target).copied().collect();
        if !revoke.is_empty() {
            m.assigned.retain(|tp| target.contains(tp));
            m.revoking.extend(revoke);
        }
        if m.revoking.is_empty() {
            m.epoch = assignment_epoch;
            for tp in target.difference(&m.assigned.clone()) {
                if !busy.contains(tp) {
                    m.assigned.insert(*tp);
                    m.assigned_at.insert(*tp, m.epoch);
                }
            }
        }
        let held: Partitions = m.assigned.union(&m.revoking).copied().collect();
        m.assigned_at.retain(|tp, _| held.contains(tp));
        if before != (m.epoch, m.assigned.clone(), m.revoking.clone()) || hb.epoch == 0 {
            self.dirty = true;
        }
        let Some(m) = self.members.get_mut(&id) else {
            return Err(Code::UnknownMemberId);
        };
        if hb.epoch == 0 {
            m.last_sent = None;
        }
        let assignment = (m.last_sent.as_ref() != Some(&m.assigned)).then(|| m.assigned.clone());
        if assignment.is_some() {
            m.last_sent = assignment.clone();
        }
        Ok(HeartbeatReply {
            member_id: id,
            epoch: m.epoch,
            assignment,
        })
    }

    /// Expire members not heard from for `session_timeout_ms`. Returns whether anything
    /// changed.
    pub fn tick(&mut self, now: i64, session_timeout_ms: i64) -> bool {
        let dead: Vec<String> = self
            .members
            .values()
            .filter(|m| now - m.last_seen_ms > session_timeout_ms)
            .map(|m| m.id.clone())
            .collect();
        for id in &dead {
            tracing::info!(group = %self.id, member = %id, "consumer group member session expired");
            self.remove(id);
        }
        !dead.is_empty()
    }

    /// Whether, and for which partitions, `member_id` at `epoch` may commit offsets.
    ///
    /// Kafka 4.3's rule for consumer-protocol members (KIP-1251, `ConsumerGroup
    /// .validateOffsetCommit`): the member's current epoch may commit anything; a newer epoch
    /// is STALE_MEMBER_EPOCH; an older epoch may commit the partitions the member still holds
    /// or is giving up that were assigned to it at that epoch or before, and each other
    /// partition gets STALE_MEMBER_EPOCH. A member that has just been moved to a new epoch
    /// (its heartbeat answered, the client not yet caught up) can thus still commit what it
    /// has read. As in Kafka, members must use OffsetCommit v9 or later. Refusals are logged
    /// at INFO.
    pub fn check_commit(
        &self,
        member_id: &str,
        epoch: i32,
        version: i16,
    ) -> Result<CommitScope, Code> {
        if epoch < 0 && self.members.is_empty() {
            return Ok(CommitScope::All);
        }
        let Some(m) = self.members.get(member_id) else {
            tracing::info!(group = %self.id, member = member_id, epoch, "offset commit refused: unknown member");
            return Err(Code::UnknownMemberId);
        };
        if version < 9 {
            tracing::info!(group = %self.id, member = member_id, version, "offset commit refused: members of consumer groups need OffsetCommit v9");
            return Err(Code::UnsupportedVersion);
        }
        if epoch == m.epoch {
            return Ok(CommitScope::All);
        }
        if epoch > m.epoch {
            tracing::info!(group = %self.id, member = member_id, epoch, member_epoch = m.epoch, "offset commit refused: epoch newer than the member's");
            return Err(Code::StaleMemberEpoch);
        }
        let allowed: Partitions = m
            .assigned
            .iter()
            .chain(&m.revoking)
            .filter(|tp| m.assigned_at.get(tp).copied().unwrap_or(m.epoch) <= epoch)
            .copied()
            .collect();
        Ok(CommitScope::Only {
            member_epoch: m.epoch,
            allowed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(parts: i32) -> Catalog {
        [(
            "t".to_string(),
            TopicInfo {
                id: Uuid::from_u128(1),
                partitions: parts,
            },
        )]
        .into()
    }

    fn join(g: &mut ConsumerGroup, id: &str, cat: &Catalog, now: i64) -> HeartbeatReply {
        g.heartbeat(
            Heartbeat {
                member_id: id.into(),
                epoch: 0,
                topics: Some(vec!["t".into()]),
                ..Default::default()
            },
            cat,
            now,
        )
        .unwrap()
    }

    fn beat(
        g: &mut ConsumerGroup,
        r: &HeartbeatReply,
        owned: &Partitions,
        cat: &Catalog,
    ) -> HeartbeatReply {
        g.heartbeat(
            Heartbeat {
                member_id: r.member_id.clone(),
                epoch: r.epoch,
                owned: Some(owned.clone()),
                ..Default::default()
            },
            cat,
            1,
        )
        .unwrap()
    }

    fn current(g: &ConsumerGroup, id: &str) -> Partitions {
        g.members[id].assigned.clone()
    }

    #[test]
    fn unchanged_assignment_is_not_resent() {
        let cat = catalog(2);
        let mut g = ConsumerGroup::new("g");
        let a = join(&mut g, "a", &cat, 0);
        assert_eq!(a.assignment.as_ref().unwrap().len(), 2);
        let owned = current(&g, "a");
        let a2 = beat(&mut g, &a, &owned, &cat);
        assert!(a2.assignment.is_none());
    }

    #[test]
    fn second_member_gets_partitions_only_after_revocation() {
        let cat = catalog(4);
        let mut g = ConsumerGroup::new("g");
        let a = join(&mut g, "a", &cat, 0);
        assert_eq!(a.assignment.as_ref().unwrap().len(), 4);
        let b = join(&mut g, "b", &cat, 0);
        // b's share is still owned by a: nothing yet.
        assert!(b.assignment.as_ref().unwrap().is_empty());
        let a_owned = a.assignment.clone().unwrap();
        let a2 = beat(&mut g, &a, &a_owned, &cat);
        assert_eq!(
            a2.assignment.as_ref().unwrap().len(),
            2,
            "a is told to give two up"
        );
        let b2 = beat(&mut g, &b, &Partitions::new(), &cat);
        assert!(current(&g, "b").is_empty(), "a has not revoked yet");
        let a3 = beat(&mut g, &a2, a2.assignment.as_ref().unwrap(), &cat);
        let b3 = beat(&mut g, &b2, &Partitions::new(), &cat);
        let (sa, sb) = (current(&g, "a"), current(&g, "b"));
        assert_eq!(sb.len(), 2);
        assert!(sa.is_disjoint(&sb));
        assert_eq!(state_name(&g), "Stable");
        assert_eq!(a3.epoch, b3.epoch);
    }

    #[test]
    fn range_assignor_splits_contiguously_and_leave_frees() {
        let cat = catalog(5);
        let mut g = ConsumerGroup::new("g");
        g.assignor = "range".into();
        let a = join(&mut g, "a", &cat, 0);
        let b = join(&mut g, "b", &cat, 0);
        let owned = current(&g, "a");
        let a = beat(&mut g, &a, &owned, &cat);
        let owned = current(&g, "a");
        beat(&mut g, &a, &owned, &cat);
        let parts: Vec<i32> = current(&g, "a").iter().map(|(_, p)| *p).collect();
        assert_eq!(parts, vec![0, 1, 2]);
        g.heartbeat(
            Heartbeat {
                member_id: "a".into(),
                epoch: -1,
                ..Default::default()
            },
            &cat,
            2,
        )
        .unwrap();
        beat(&mut g, &b, &Partitions::new(), &cat);
        assert_eq!(current(&g, "b").len(), 5);
    }

    #[test]
    fn snapshot_round_trips() {
        let cat = catalog(3);
        let mut g = ConsumerGroup::new("g");
        join(&mut g, "a", &cat, 0);
        join(&mut g, "b", &cat, 0);
        let snap = g.snapshot().unwrap();
        let back = ConsumerGroup::restore(&snap, 99).unwrap();
        assert_eq!(back.epoch, g.epoch);
        assert_eq!(back.members["a"].assigned, g.members["a"].assigned);
        assert_eq!(back.target, g.target);
        assert_eq!(back.members["b"].last_seen_ms, 99);
    }

    #[test]
    fn wrong_epoch_is_fenced_and_silence_expires() {
        let cat = catalog(1);
        let mut g = ConsumerGroup::new("g");
        let a = join(&mut g, "a", &cat, 0);
        let r = g.heartbeat(
            Heartbeat {
                member_id: "a".into(),
                epoch: a.epoch + 7,
                ..Default::default()
            },
            &cat,
            1,
        );
        assert_eq!(r, Err(Code::FencedMemberEpoch));
        assert!(g.tick(SESSION_TIMEOUT_MS + 1, SESSION_TIMEOUT_MS));
        assert!(g.members.is_empty());
    }

    /// A member subscribed to `topics`, for calling the assignors directly.
    fn subscriber(id: &str, topics: &[&str]) -> ConsumerMember {
        ConsumerMember {
            id: id.into(),
            instance_id: None,
            rack_id: None,
            epoch: 0,
            client_id: String::new(),
            client_host: String::new(),
            topics: topics.iter().map(|t| (*t).to_string()).collect(),
            regex: None,
            regex_allowed: None,
            assignor: None,
            rebalance_timeout_ms: 0,
            assigned: Partitions::new(),
            revoking: Partitions::new(),
            assigned_at: BTreeMap::new(),
            last_seen_ms: 0,
            last_sent: None,
        }
    }

    fn catalog_of(topics: &[(&str, i32)]) -> Catalog {
        topics
            .iter()
            .zip(1u128..)
            .map(|((name, parts), id)| {
                (
                    (*name).to_string(),
                    TopicInfo {
                        id: Uuid::from_u128(id),
                        partitions: *parts,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn a_regex_resolves_only_to_topics_the_member_may_describe() {
        let cat = catalog_of(&[("pay-a", 1), ("pay-secret", 1), ("other", 1)]);
        let mut g = ConsumerGroup::new("g");
        let hb = |allowed: Option<&[&str]>| Heartbeat {
            member_id: "m".into(),
            epoch: 0,
            regex: Some("pay-.*".into()),
            regex_allowed: allowed.map(|a| a.iter().map(|t| (*t).to_string()).collect()),
            ..Default::default()
        };
        let r = g.heartbeat(hb(Some(&["pay-a", "other"])), &cat, 0).unwrap();
        let pay_a = (cat["pay-a"].id, 0);
        assert_eq!(r.assignment, Some([pay_a].into()), "only pay-a: {r:?}");
        // Stored: the allowed topics the regex matches, not every describable topic.
        let m = &g.members["m"];
        assert_eq!(m.regex_allowed, Some(["pay-a".to_string()].into()));
        // Without an authorizer (None), the regex matches both pay- topics.
        let r = g
            .heartbeat(
                Heartbeat {
                    epoch: r.epoch,
                    ..hb(None)
                },
                &cat,
                1,
            )
            .unwrap();
        let both: Partitions = [pay_a, (cat["pay-secret"].id, 0)].into();
        assert_eq!(g.target["m"], both, "{r:?}");
    }

    /// Every partition of `cat` is in exactly one member's set.
    fn assert_covers_once(a: &BTreeMap<String, Partitions>, cat: &Catalog, what: &str) {
        let mut seen = Partitions::new();
        for set in a.values() {
            for tp in set {
                assert!(seen.insert(*tp), "{what}: {tp:?} assigned twice: {a:?}");
            }
        }
        let all: Partitions = cat
            .values()
            .flat_map(|t| (0..t.partitions).map(move |p| (t.id, p)))
            .collect();
        assert_eq!(seen, all, "{what}: not every partition is assigned: {a:?}");
    }

    fn loads(a: &BTreeMap<String, Partitions>) -> Vec<usize> {
        a.values().map(BTreeSet::len).collect()
    }

    /// Members join one by one to a 6-partition topic, then leave: every step is balanced
    /// (each holds floor or ceil of 6 / members) and members that stay lose only what they
    /// must and gain nothing while others join.
    #[test]
    fn uniform_assignor_is_balanced_and_sticky_as_members_come_and_go() {
        let cat = catalog(6);
        let mut members: BTreeMap<String, ConsumerMember> = BTreeMap::new();
        let mut target: BTreeMap<String, Partitions> = BTreeMap::new();
        for id in ["a", "b", "c", "d", "e", "f", "g"] {
            members.insert(id.into(), subscriber(id, &["t"]));
            let next = assign_uniform(&members, &target, &cat);
            assert_covers_once(&next, &cat, &format!("{id} joined"));
            let n = members.len();
            let (lo, hi) = (6 / n, 6_usize.div_ceil(n));
            assert!(
                loads(&next).iter().all(|l| (lo..=hi).contains(l)),
                "{id} joined: loads {:?} outside {lo}..={hi}: {next:?}",
                loads(&next)
            );
            for (m, before) in &target {
                assert!(
                    next[m].is_subset(before),
                    "{m} gained partitions when {id} joined: {before:?} -> {:?}",
                    next[m]
                );
                assert!(next[m].len() >= before.len().min(lo), "{m} lost too many");
            }
            target = next;
        }
        for id in ["a", "c", "e", "g", "b", "d"] {
            members.remove(id);
            target.remove(id);
            let next = assign_uniform(&members, &target, &cat);
            assert_covers_once(&next, &cat, &format!("{id} left"));
            let n = members.len();
            let (lo, hi) = (6 / n, 6_usize.div_ceil(n));
            assert!(
                loads(&next).iter().all(|l| (lo..=hi).contains(l)),
                "{id} left: loads {:?} outside {lo}..={hi}",
                loads(&next)
            );
            for (m, before) in &target {
                assert!(
                    next[m].is_superset(before),
                    "{m} lost partitions when {id} left"
                );
            }
            target = next;
        }
    }

    /// The same over many sizes and random join/leave orders (a fixed xorshift sequence):
    /// with identical subscriptions every target covers each partition once and is
    /// floor/ceil balanced, and a member keeps at least min(what it had, floor) of its
    /// partitions.
    #[test]
    fn uniform_assignor_balance_holds_for_random_membership_changes() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next_rand = move |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            usize::try_from(x % u64::try_from(n).unwrap()).unwrap()
        };
        for parts in [1, 2, 5, 6, 7, 12, 13] {
            let cat = catalog_of(&[("t", parts - parts / 2), ("u", parts / 2)]);
            let total = usize::try_from(parts).unwrap();
            let mut members: BTreeMap<String, ConsumerMember> = BTreeMap::new();
            let mut target: BTreeMap<String, Partitions> = BTreeMap::new();
            for step in 0..60 {
                if members.len() < 2 || (members.len() < 9 && next_rand(2) == 0) {
                    let id = format!("m{step}");
                    members.insert(id.clone(), subscriber(&id, &["t", "u"]));
                } else {
                    let gone = members
                        .keys()
                        .nth(next_rand(members.len()))
                        .cloned()
                        .unwrap();
                    members.remove(&gone);
                    target.remove(&gone);
                }
                let next = assign_uniform(&members, &target, &cat);
                let what = format!("{parts} partitions, step {step}");
                assert_covers_once(&next, &cat, &what);
                let n = members.len();
                let (lo, hi) = (total / n, total.div_ceil(n));
                assert!(
                    loads(&next).iter().all(|l| (lo..=hi).contains(l)),
                    "{what}: loads {:?}",
                    loads(&next)
                );
                for (m, before) in &target {
                    let kept = next[m].intersection(before).count();
                    assert!(
                        kept >= before.len().min(lo),
                        "{what}: {m} kept {kept} of {before:?}"
                    );
                }
                target = next;
            }
        }
    }

    /// Different subscriptions: a member of both topics takes the partitions only it can
    /// have, and the shared topic evens the loads out.
    #[test]
    fn uniform_assignor_balances_different_subscriptions() {
        let cat = catalog_of(&[("t", 4), ("u", 2)]);
        let members: BTreeMap<String, ConsumerMember> = [
            ("a".to_string(), subscriber("a", &["t"])),
            ("b".to_string(), subscriber("b", &["t", "u"])),
        ]
        .into();
        let a = assign_uniform(&members, &BTreeMap::new(), &cat);
        assert_covers_once(&a, &cat, "two subscriptions");
        assert_eq!(loads(&a), vec![3, 3]);
        let u = cat["u"].id;
        assert!(
            a["a"].iter().all(|(t, _)| *t != u),
            "a is not subscribed to u: {a:?}"
        );
    }

    fn check(g: &ConsumerGroup, id: &str, epoch: i32) -> Result<CommitScope, Code> {
        g.check_commit(id, epoch, 9)
    }

    /// KIP-1251: the member's epoch commits anything, a newer one nothing, an older one the
    /// partitions it still holds (or is revoking) that it had at that epoch.
    #[test]
    fn commit_with_an_older_epoch_covers_partitions_held_since_then() {
        let cat = catalog(4);
        let t = cat["t"].id;
        let mut g = ConsumerGroup::new("g");
        let a1 = join(&mut g, "a", &cat, 0);
        assert_eq!(current(&g, "a").len(), 4);
        let e1 = a1.epoch;
        assert_eq!(check(&g, "a", e1), Ok(CommitScope::All));
        assert_eq!(check(&g, "a", e1 + 1), Err(Code::StaleMemberEpoch));
        assert_eq!(check(&g, "nobody", e1), Err(Code::UnknownMemberId));
        assert_eq!(check(&g, "", -1), Err(Code::UnknownMemberId));
        assert_eq!(g.check_commit("a", e1, 8), Err(Code::UnsupportedVersion));

        // b joins: a gives up two partitions and, once it has, moves to the new epoch.
        let b = join(&mut g, "b", &cat, 0);
        let owned = current(&g, "a");
        let a2 = beat(&mut g, &a1, &owned, &cat);
        let kept = a2.assignment.clone().unwrap();
        assert_eq!(kept.len(), 2);
        let revoking: Partitions = owned.difference(&kept).copied().collect();
        assert_eq!(a2.epoch, e1, "a stays at its epoch while it revokes");
        match check(&g, "a", e1) {
            Ok(CommitScope::All) => {}
            other => panic!("a's own epoch while revoking: {other:?}"),
        }
        let a3 = beat(&mut g, &a2, &kept, &cat);
        assert!(a3.epoch > e1);
        let Ok(CommitScope::Only {
            member_epoch,
            allowed,
        }) = check(&g, "a", e1)
        else {
            panic!("an older epoch commits what a still holds");
        };
        assert_eq!(member_epoch, a3.epoch);
        assert_eq!(allowed, kept, "not {revoking:?}, which a gave up");

        // A partition given to b at its epoch is not b's at an older one.
        let b2 = beat(&mut g, &b, &Partitions::new(), &cat);
        let b_parts = current(&g, "b");
        assert_eq!(b_parts.len(), 2);
        let Ok(CommitScope::Only { allowed, .. }) = check(&g, "b", b2.epoch - 1) else {
            panic!("b at an older epoch");
        };
        assert!(allowed.is_empty(), "b had nothing before: {allowed:?}");
        assert!(b_parts.iter().all(|(id, _)| *id == t));
    }

    /// Assignment epochs survive a snapshot, and a snapshot written before they existed
    /// still loads (each partition then counts as assigned at the member's epoch).
    #[test]
    fn assignment_epochs_round_trip_and_old_snapshots_load() {
        let cat = catalog(2);
        let mut g = ConsumerGroup::new("g");
        let a = join(&mut g, "a", &cat, 0);
        let snap = g.snapshot().unwrap();
        let back = ConsumerGroup::restore(&snap, 5).unwrap();
        assert_eq!(back.members["a"].assigned_at, g.members["a"].assigned_at);
        assert_eq!(back.members["a"].assigned_at.len(), 2);

        let text = std::str::from_utf8(&snap).unwrap();
        let old: String = text
            .lines()
            .filter(|l| !l.starts_with("assigned_at"))
            .collect::<Vec<_>>()
            .join("\n");
        assert_ne!(old, text, "the snapshot has the field to remove");
        let back = ConsumerGroup::restore(old.as_bytes(), 5).unwrap();
        assert!(back.members["a"].assigned_at.is_empty());
        let Ok(CommitScope::Only { allowed, .. }) = check(&back, "a", a.epoch - 1) else {
            panic!("older epoch");
        };
        assert!(allowed.is_empty());
        assert_eq!(check(&back, "a", a.epoch), Ok(CommitScope::All));
    }
}
