//! The group coordinator: classic consumer groups (JoinGroup/SyncGroup/Heartbeat/LeaveGroup)
//! with Kafka's rebalance state machine, static membership, and committed offsets stored
//! durably in `__consumer_offsets`. Wire formats live in `api::group`; this module holds
//! state and rules.

pub mod configs;
pub mod consumer;
pub mod offsets;
pub mod state;

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use kafka_protocol::messages::{JoinGroupResponse, SyncGroupResponse};

use crate::log::partition::now_ms;
use crate::log::LogManager;
use consumer::{Catalog, CommitScope, ConsumerGroup, Heartbeat, HeartbeatReply};
use kafka_protocol::error::ResponseError as Code;
use offsets::{CommittedOffset, OffsetStore};
use state::{Group, GroupState, JoinParams, Reply};

/// How often the coordinator's timer checks sessions and join deadlines.
pub const TICK_MS: u64 = 100;
/// Kafka's `offsets.retention.minutes` default: 7 days.
pub const DEFAULT_OFFSETS_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone)]
pub struct GroupView {
    /// State name.
    pub state: GroupState,
    /// Protocol type.
    pub protocol_type: String,
    /// Selected protocol.
    pub protocol: String,
    /// Members: (id, instance id, client id, host, metadata, assignment).
    pub members: Vec<MemberView>,
}

/// One member as DescribeGroups shows it.
#[derive(Debug, Clone)]
pub struct MemberView {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Metadata of the selected protocol.
    pub metadata: Bytes,
    /// Current assignment.
    pub assignment: Bytes,
}

/// The coordinator of every group on this broker.
pub struct Coordinator {
    groups: Mutex<HashMap<String, Group>>,
    consumer_groups: Mutex<HashMap<String, ConsumerGroup>>,
    /// Committed offsets.
    pub offsets: OffsetStore,
    /// Per-group configs (resource type GROUP) and their effective values.
    pub configs: configs::GroupConfigs,
    initial_delay_ms: i64,
    offsets_retention_ms: i64,
}

impl Coordinator {
    /// Open the offsets log and replay it.
    pub fn open(
        logs: &LogManager,
        initial_delay_ms: u64,
        offsets_retention_ms: i64,
    ) -> Result<Self, offsets::Error> {
        let offsets = OffsetStore::open(logs)?;
        let configs = configs::GroupConfigs::open(logs.dir()).map_err(offsets::Error::Load)?;
        let now = now_ms();
        // Groups come back as they were stored, so members that outlive a broker restart
        // carry on without a rebalance, as with Kafka.
        let groups: HashMap<String, Group> = offsets
            .take_loaded_groups()
            .into_iter()
            .map(|(id, r)| {
                let g = Group::from_record(&id, r, now);
                (id, g)
            })
            .collect();
        let consumer_groups: HashMap<String, ConsumerGroup> = offsets
            .take_loaded_consumer_groups()
            .into_iter()
            .filter_map(|(id, snap)| match ConsumerGroup::restore(&snap, now) {
                Some(g) => Some((id, g)),
                None => {
                    tracing::warn!(group = %id, "skipping an unreadable consumer group snapshot");
                    None
                }
            })
            .collect();
        tracing::info!(
            classic = groups.len(),
            consumer = consumer_groups.len(),
            "loaded groups"
        );
        Ok(Coordinator {
            groups: Mutex::new(groups),
            consumer_groups: Mutex::new(consumer_groups),
            offsets,
            configs,
            initial_delay_ms: i64::try_from(initial_delay_ms).unwrap_or(i64::MAX),
            offsets_retention_ms,
        })
    }

    /// Write every group that changed since its last write to `__consumer_offsets`.
    /// Blocking: called from the blocking pool after rebalance steps and timer ticks.
    pub fn persist_dirty(&self) {
        let now = now_ms();
        let classic: Vec<(String, offsets::GroupRecord)> = self
            .lock()
            .values_mut()
            .filter(|g| g.dirty)
            .map(|g| {
                g.dirty = false;
                (g.id.clone(), g.to_record(now))
            })
            .collect();
        let consumer: Vec<(String, Option<Bytes>)> = self
            .consumers()
            .values_mut()
            .filter(|g| g.dirty)
            .map(|g| {
                g.dirty = false;
                (g.id.clone(), g.snapshot())
            })
            .collect();
        for (id, r) in classic {
            if let Err(e) = self.offsets.store_group(&id, Some(&r)) {
                tracing::error!(group = %id, error = %e, "storing group metadata failed");
            }
        }
        for (id, snap) in consumer {
            if let Err(e) = self.offsets.store_consumer_group(&id, snap) {
                tracing::error!(group = %id, error = %e, "storing consumer group failed");
            }
        }
    }

    /// Whether some group changed since its last write.
    pub fn has_dirty(&self) -> bool {
        self.lock().values().any(|g| g.dirty) || self.consumers().values().any(|g| g.dirty)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Group>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn consumers(&self) -> MutexGuard<'_, HashMap<String, ConsumerGroup>> {
        self.consumer_groups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// ConsumerGroupHeartbeat (KIP-848). A group id used by a classic group with members
    /// is refused, as Kafka refuses it without online migration.
    pub fn consumer_heartbeat(
        &self,
        group_id: &str,
        hb: Heartbeat,
        catalog: &Catalog,
    ) -> Result<HeartbeatReply, Code> {
        if self
            .lock()
            .get(group_id)
            .is_some_and(|g| !g.members.is_empty())
        {
            return Err(Code::GroupIdNotFound);
        }
        let mut groups = self.consumers();
        if hb.epoch != 0 && !groups.contains_key(group_id) {
            return Err(Code::UnknownMemberId);
        }
        let g = groups
            .entry(group_id.to_string())
            .or_insert_with(|| ConsumerGroup::new(group_id));
        g.heartbeat(hb, catalog, now_ms())
    }

    /// Run `f` on a consumer group, if there is one.
    pub fn with_consumer_group<T>(
        &self,
        group_id: &str,
        f: impl FnOnce(&ConsumerGroup) -> T,
    ) -> Option<T> {
        self.consumers().get(group_id).map(f)
    }

    /// JoinGroup. Unknown groups are created by a first join with an empty member id.
    pub fn join(&self, group_id: &str, p: JoinParams) -> Reply<JoinGroupResponse> {
        let now = now_ms();
        if self
            .consumers()
            .get(group_id)
            .is_some_and(|g| !g.members.is_empty())
        {
            return Reply::Ready(state::join_error(
                Code::InconsistentGroupProtocol,
                &p.member_id,
            ));
        }
        let mut groups = self.lock();
        if !groups.contains_key(group_id) && !p.member_id.is_empty() {
            return Reply::Ready(state::join_error(Code::UnknownMemberId, &p.member_id));
        }
        let g = groups
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(group_id, now));
        g.join(p, now, self.initial_delay_ms)
    }

    /// SyncGroup.
    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
    ) -> Reply<SyncGroupResponse> {
        let now = now_ms();
        match self.lock().get_mut(group_id) {
            Some(g) => g.sync(
                member_id,
                instance_id,
                generation,
                protocol_type,
                protocol_name,
                assignments,
                now,
            ),
            None => Reply::Ready(state::sync_error(Code::UnknownMemberId)),
        }
    }

    /// Heartbeat.
    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), Code> {
        match self.lock().get_mut(group_id) {
            Some(g) => g.heartbeat(member_id, instance_id, generation, now_ms()),
            None => Err(Code::UnknownMemberId),
        }
    }

    /// LeaveGroup for several members; per-member results.
    pub fn leave(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<Result<(), Code>>, Code> {
        let now = now_ms();
        let mut groups = self.lock();
        let Some(g) = groups.get_mut(group_id) else {
            return Err(Code::UnknownMemberId);
        };
        Ok(members
            .iter()
            .map(|(member_id, instance_id)| {
                let id = match instance_id {
                    Some(iid) => match g.static_members.get(iid) {
                        Some(owner) if member_id.is_empty() || owner == member_id => owner.clone(),
                        Some(_) => return Err(Code::FencedInstanceId),
                        None => return Err(Code::UnknownMemberId),
                    },
                    None => member_id.clone(),
                };
                if g.pending.remove(&id).is_some() {
                    g.maybe_complete_join(now);
                    return Ok(());
                }
                if g.remove_member(&id, now) {
                    Ok(())
                } else {
                    Err(Code::UnknownMemberId)
                }
            })
            .collect())
    }

    /// Validate an OffsetCommit: which partitions it may write, or why none. A commit to a
    /// group that does not exist creates it empty. Refusals are logged at INFO.
    pub fn check_commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        version: i16,
    ) -> Result<CommitScope, Code> {
        if let Some(r) = self
            .consumers()
            .get(group_id)
            .map(|g| g.check_commit(member_id, generation, version))
        {
            return r;
        }
        let now = now_ms();
        let mut groups = self.lock();
        let r = match groups.get(group_id) {
            Some(g) => g
                .check_commit(member_id, instance_id, generation)
                .inspect_err(|code| {
                    tracing::info!(
                        group = group_id,
                        member = member_id,
                        generation,
                        group_generation = g.generation,
                        state = g.state.name(),
                        error = %code,
                        "offset commit refused"
                    );
                }),
            None if generation < 0 && member_id.is_empty() => {
                groups.insert(group_id.to_string(), Group::new(group_id, now));
                Ok(())
            }
            // A group known by its offsets only is an empty group: members are unknown.
            None if !self.offsets.group(group_id).is_empty() => Err(Code::UnknownMemberId),
            // Kafka: GROUP_ID_NOT_FOUND from OffsetCommit v9, ILLEGAL_GENERATION before.
            None if version >= 9 => Err(Code::GroupIdNotFound),
            None => Err(Code::IllegalGeneration),
        };
        r.map(|()| CommitScope::All)
    }

    /// Validate a TxnOffsetCommit: as OffsetCommit, except that a KIP-848 member may use
    /// any version (Kafka's `validateOffsetCommit` asks consumer-protocol members for
    /// OffsetCommit v9 only when the commit is not transactional).
    pub fn check_txn_commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<CommitScope, Code> {
        if let Some(r) = self
            .consumers()
            .get(group_id)
            .map(|g| g.check_commit(member_id, generation, 9))
        {
            return r;
        }
        self.check_commit(group_id, member_id, instance_id, generation, 8)
    }

    /// Store commits durably. Blocking.
    pub fn commit(
        &self,
        group_id: &str,
        entries: Vec<((String, i32), CommittedOffset)>,
    ) -> Result<(), offsets::Error> {
        self.offsets.commit(group_id, entries)
    }

    /// Every known group: (id, protocol type, state). Groups known only by their offsets are
    /// Empty, as after a Kafka restart.
    pub fn list(&self) -> Vec<(String, String, GroupState)> {
        let groups = self.lock();
        let mut out: Vec<_> = groups
            .values()
            .filter(|g| g.state != GroupState::Dead)
            .map(|g| {
                (
                    g.id.clone(),
                    g.protocol_type.clone().unwrap_or_default(),
                    g.state,
                )
            })
            .collect();
        for id in self.offsets.groups() {
            if !groups.contains_key(&id) && !self.consumers().contains_key(&id) {
                out.push((id, "consumer".to_string(), GroupState::Empty));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// KIP-848 groups: (id, state name).
    pub fn list_consumer_groups(&self) -> Vec<(String, &'static str)> {
        let mut v: Vec<_> = self
            .consumers()
            .values()
            .map(|g| (g.id.clone(), consumer::state_name(g)))
            .collect();
        v.sort();
        v
    }

    /// A group's description, or `None` if it does not exist.
    pub fn describe(&self, group_id: &str) -> Option<GroupView> {
        let groups = self.lock();
        match groups.get(group_id) {
            Some(g) if g.state != GroupState::Dead => {
                let protocol = g.protocol.clone().unwrap_or_default();
                Some(GroupView {
                    state: g.state,
                    protocol_type: g.protocol_type.clone().unwrap_or_default(),
                    protocol: if g.state == GroupState::Stable {
                        protocol.clone()
                    } else {
                        String::new()
                    },
                    members: g
                        .members
                        .values()
                        .map(|m| MemberView {
                            member_id: m.id.clone(),
                            instance_id: m.instance_id.clone(),
                            client_id: m.client_id.clone(),
                            client_host: m.client_host.clone(),
                            metadata: m.metadata(&protocol),
                            assignment: if g.state == GroupState::Stable {
                                m.assignment.clone()
                            } else {
                                Bytes::new()
                            },
                        })
                        .collect(),
                })
            }
            _ if !self.offsets.group(group_id).is_empty() => Some(GroupView {
                state: GroupState::Empty,
                protocol_type: "consumer".into(),
                protocol: String::new(),
                members: Vec::new(),
            }),
            _ => None,
        }
    }

    /// Whether a group has members subscribed (per its current assignment) to `topic`.
    pub fn is_subscribed(&self, group_id: &str, topic: &str) -> bool {
        use kafka_protocol::messages::ConsumerProtocolSubscription;
        use kafka_protocol::protocol::Decodable;
        let groups = self.lock();
        let Some(g) = groups.get(group_id) else {
            return false;
        };
        if g.protocol_type.as_deref() != Some("consumer") {
            return !g.members.is_empty();
        }
        let protocol = g.protocol.clone().unwrap_or_default();
        g.members.values().any(|m| {
            let mut md = m.metadata(&protocol);
            if md.len() < 2 {
                return false;
            }
            let version = i16::from_be_bytes([md[0], md[1]]);
            let _ = bytes::Buf::get_i16(&mut md);
            // A member's metadata is the client's bytes: checked like a request first.
            if crate::guard::check_embedded(&md, "ConsumerProtocolSubscription", version).is_err() {
                return false;
            }
            ConsumerProtocolSubscription::decode(&mut md, version)
                .map(|s| s.topics.iter().any(|t| t.as_str() == topic))
                .unwrap_or(false)
        })
    }

    /// Delete a group that has no members, with its offsets. Blocking.
    pub fn delete(&self, group_id: &str) -> Result<(), Code> {
        {
            let mut consumers = self.consumers();
            if let Some(g) = consumers.get(group_id) {
                if !g.members.is_empty() {
                    return Err(Code::NonEmptyGroup);
                }
                consumers.remove(group_id);
            }
        }
        {
            let mut groups = self.lock();
            match groups.get(group_id) {
                Some(g)
                    if g.state != GroupState::Dead
                        && (!g.members.is_empty() || g.state != GroupState::Empty) =>
                {
                    return Err(Code::NonEmptyGroup);
                }
                Some(_) => {}
                None if self.offsets.group(group_id).is_empty() => {
                    return Err(Code::GroupIdNotFound)
                }
                None => {}
            }
            groups.remove(group_id);
        }
        self.offsets.delete(group_id, None).map_err(|e| {
            tracing::error!(group = group_id, error = %e, "deleting offsets failed");
            Code::KafkaStorageError
        })?;
        self.offsets
            .store_group(group_id, None)
            .and_then(|()| self.offsets.store_consumer_group(group_id, None))
            .map_err(|e| {
                tracing::error!(group = group_id, error = %e, "deleting group metadata failed");
                Code::KafkaStorageError
            })?;
        Ok(())
    }

    /// Timer work: session expiry, join deadlines. Called every [`TICK_MS`].
    pub fn tick(&self) {
        let now = now_ms();
        for g in self.lock().values_mut() {
            g.tick(now);
        }
        for (id, g) in self.consumers().iter_mut() {
            // `consumer.session.timeout.ms` of the group, else the broker's default.
            let session = i64::from(self.configs.consumer(id).session_timeout_ms);
            g.tick(now, session);
        }
    }

    /// Offset retention (`offsets.retention.minutes`): offsets of groups that have been
    /// empty for the whole period, and offsets of member-less groups committed longer ago,
    /// are deleted, as Kafka 2.1+ does. Blocking.
    pub fn expire_offsets(&self) {
        let now = now_ms();
        let cutoff = now.saturating_sub(self.offsets_retention_ms);
        let candidates = self.offsets.older_than(cutoff);
        for (group, parts) in candidates {
            let expire = {
                let groups = self.lock();
                let consumer_active = self
                    .consumers()
                    .get(&group)
                    .is_some_and(|g| !g.members.is_empty());
                !consumer_active
                    && match groups.get(&group) {
                        Some(g) => g.members.is_empty() && g.empty_since_ms < cutoff,
                        None => true,
                    }
            };
            if expire {
                match self.offsets.delete(&group, Some(&parts)) {
                    Ok(n) => tracing::info!(group, expired = n, "expired committed offsets"),
                    Err(e) => tracing::error!(group, error = %e, "expiring offsets failed"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
