//! Share-group membership (KIP-932): members join, heartbeat and leave through
//! ShareGroupHeartbeat, and the broker assigns them partitions. There is no revocation
//! step: several members may read one partition at once, so an assignment simply replaces
//! the previous one.
//!
//! The assignment follows Kafka's share `SimpleAssignor` in spirit: the partitions of each
//! topic are spread over the members subscribed to it, and when there are fewer partitions
//! than members, every member still gets one (members share partitions).

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::group::consumer::Catalog;
use kafka_protocol::error::ResponseError as Code;

/// A member's partitions, by topic id then partition, sorted.
pub type Assignment = BTreeSet<(Uuid, i32)>;

/// One member of a share group.
#[derive(Debug, Clone)]
pub struct Member {
    /// Member id (chosen by the client).
    pub id: String,
    /// Member epoch: the group epoch of the assignment it last received.
    pub epoch: i32,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Rack id.
    pub rack_id: Option<String>,
    /// Subscribed topic names.
    pub topics: BTreeSet<String>,
    /// Current assignment.
    pub assignment: Assignment,
    /// Session deadline (ms since the epoch).
    pub deadline: i64,
}

/// A share group.
#[derive(Debug, Clone)]
pub struct ShareGroup {
    /// Group id.
    pub id: String,
    /// Group epoch: bumped whenever the target assignment changes.
    pub epoch: i32,
    /// Members, by id.
    pub members: BTreeMap<String, Member>,
}

/// One ShareGroupHeartbeat, decoded.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    /// Member id; empty asks the broker to choose one.
    pub member_id: String,
    /// 0 joins, -1 leaves, otherwise the member's epoch.
    pub epoch: i32,
    /// Rack id.
    pub rack_id: Option<String>,
    /// Subscribed topics, when they changed (always on a join).
    pub topics: Option<Vec<String>>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone)]
pub struct HeartbeatReply {
    /// The member id.
    pub member_id: String,
    /// The member's epoch (-1 after a leave).
    pub epoch: i32,
    /// The new assignment, when it changed.
    pub assignment: Option<Assignment>,
}

/// Kafka's `group.share.max.size` default: members per share group.
pub const MAX_MEMBERS: usize = 200;

impl ShareGroup {
    /// An empty group.
    pub fn new(id: &str) -> Self {
        ShareGroup {
            id: id.to_string(),
            epoch: 0,
            members: BTreeMap::new(),
        }
    }

    /// Kafka's share-group state name.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else {
            "Stable"
        }
    }

    /// Handle one heartbeat at `now`; `session_ms` is the group's session timeout.
    pub fn heartbeat(
        &mut self,
        hb: Heartbeat,
        catalog: &Catalog,
        now: i64,
        session_ms: i64,
    ) -> Result<HeartbeatReply, Code> {
        if hb.epoch == -1 {
            if self.members.remove(&hb.member_id).is_none() {
                return Err(Code::UnknownMemberId);
            }
            self.reassign(catalog);
            return Ok(HeartbeatReply {
                member_id: hb.member_id,
                epoch: -1,
                assignment: None,
            });
        }
        let member_id = if hb.member_id.is_empty() {
            Uuid::new_v4().simple().to_string()
        } else {
            hb.member_id.clone()
        };
        let joining = hb.epoch == 0;
        if joining {
            let Some(topics) = &hb.topics else {
                return Err(Code::InvalidRequest);
            };
            if !self.members.contains_key(&member_id) && self.members.len() >= MAX_MEMBERS {
                return Err(Code::GroupMaxSizeReached);
            }
            self.members.insert(
                member_id.clone(),
                Member {
                    id: member_id.clone(),
                    epoch: 0,
                    client_id: hb.client_id.clone(),
                    client_host: hb.client_host.clone(),
                    rack_id: hb.rack_id.clone(),
                    topics: topics.iter().cloned().collect(),
                    assignment: Assignment::new(),
                    deadline: now.saturating_add(session_ms),
                },
            );
        } else {
            let m = self
                .members
                .get_mut(&member_id)
                .ok_or(Code::UnknownMemberId)?;
            if m.epoch != hb.epoch {
                return Err(Code::FencedMemberEpoch);
            }
            m.deadline = now.saturating_add(session_ms);
            if let Some(topics) = &hb.topics {
                m.topics = topics.iter().cloned().collect();
            }
            if hb.rack_id.is_some() {
                m.rack_id = hb.rack_id.clone();
            }
        }
        self.reassign(catalog);
        let epoch = self.epoch;
        let m = self
            .members
            .get_mut(&member_id)
            .ok_or(Code::UnknownMemberId)?;
        let changed = m.epoch != epoch || joining;
        m.epoch = epoch;
        Ok(HeartbeatReply {
            member_id,
            epoch,
            assignment: changed.then(|| m.assignment.clone()),
        })
    }

    /// Recompute every member's assignment; bump the group epoch if any changed.
    pub fn reassign(&mut self, catalog: &Catalog) {
        let target = assign(&self.members, catalog);
        let mut changed = false;
        for (id, m) in self.members.iter_mut() {
            let t = target.get(id).cloned().unwrap_or_default();
            if t != m.assignment {
                m.assignment = t;
                changed = true;
            }
        }
        if changed || self.epoch == 0 {
            self.epoch = self.epoch.saturating_add(1);
        }
    }

    /// Remove the members whose session expired by `now`; their ids.
    pub fn expire(&mut self, now: i64) -> Vec<String> {
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.deadline <= now)
            .map(|m| m.id.clone())
            .collect();
        for id in &gone {
            self.members.remove(id);
        }
        gone
    }
}

/// The target assignment: per topic, its partitions spread round-robin over the members
/// subscribed to it (sorted by id); with fewer partitions than members, member `i` gets
/// partition `i mod n`, so every member reads and partitions are shared.
pub fn assign(
    members: &BTreeMap<String, Member>,
    catalog: &Catalog,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .keys()
        .map(|id| (id.clone(), Assignment::new()))
        .collect();
    let topics: BTreeSet<&String> = members.values().flat_map(|m| m.topics.iter()).collect();
    for topic in topics {
        let Some(info) = catalog.get(topic.as_str()) else {
            continue;
        };
        let subs: Vec<&String> = members
            .values()
            .filter(|m| m.topics.contains(topic))
            .map(|m| &m.id)
            .collect();
        let n = usize::try_from(info.partitions).unwrap_or(0);
        if n == 0 || subs.is_empty() {
            continue;
        }
        if n >= subs.len() {
            for p in 0..n {
                if let (Some(id), Ok(pi)) = (subs.get(p % subs.len()), i32::try_from(p)) {
                    if let Some(a) = out.get_mut(*id) {
                        a.insert((info.id, pi));
                    }
                }
            }
        } else {
            for (i, id) in subs.iter().enumerate() {
                if let (Some(a), Ok(pi)) = (out.get_mut(*id), i32::try_from(i % n)) {
                    a.insert((info.id, pi));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::consumer::TopicInfo;

    fn hb(id: &str, epoch: i32, topics: Option<&[&str]>) -> Heartbeat {
        Heartbeat {
            member_id: id.into(),
            epoch,
            rack_id: None,
            topics: topics.map(|t| t.iter().map(|s| s.to_string()).collect()),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
        }
    }

    #[test]
    fn members_share_a_single_partition_and_leave() {
        let t = Uuid::new_v4();
        let catalog: Catalog = [(
            "t".to_string(),
            TopicInfo {
                id: t,
                partitions: 1,
            },
        )]
        .into();
        let mut g = ShareGroup::new("g");
        let mut epochs = Vec::new();
        for m in ["a", "b", "c"] {
            let r = g
                .heartbeat(hb(m, 0, Some(&["t"])), &catalog, 0, 45_000)
                .unwrap();
            assert_eq!(r.assignment.unwrap(), [(t, 0)].into());
            epochs.push(r.epoch);
        }
        // a heartbeat with a stale epoch is fenced; the current one is accepted
        // a's epoch catches up with the group's (its assignment is sent again), then stays
        let r = g
            .heartbeat(hb("a", epochs[0], None), &catalog, 1, 45_000)
            .unwrap();
        assert_eq!(r.epoch, epochs[2]);
        let r = g
            .heartbeat(hb("a", r.epoch, None), &catalog, 1, 45_000)
            .unwrap();
        assert_eq!(r.assignment, None);
        assert_eq!(
            g.heartbeat(hb("a", 99, None), &catalog, 1, 45_000)
                .unwrap_err(),
            Code::FencedMemberEpoch
        );
        g.heartbeat(hb("b", -1, None), &catalog, 2, 45_000).unwrap();
        assert_eq!(g.members.len(), 2);
        assert_eq!(g.expire(45_000), vec!["c".to_string()]);
    }

    #[test]
    fn partitions_are_spread_when_there_are_enough() {
        let t = Uuid::new_v4();
        let catalog: Catalog = [(
            "t".to_string(),
            TopicInfo {
                id: t,
                partitions: 4,
            },
        )]
        .into();
        let mut g = ShareGroup::new("g");
        g.heartbeat(hb("a", 0, Some(&["t"])), &catalog, 0, 45_000)
            .unwrap();
        g.heartbeat(hb("b", 0, Some(&["t"])), &catalog, 0, 45_000)
            .unwrap();
        let a = &g.members["a"].assignment;
        let b = &g.members["b"].assignment;
        assert_eq!(a.len(), 2);
        assert_eq!(b.len(), 2);
        assert!(a.is_disjoint(b));
    }
}
