//! The classic group: members, generation, and the rebalance state machine
//! (Empty → PreparingRebalance → CompletingRebalance → Stable, and Dead), following Kafka's
//! `GroupMetadata` and `GroupCoordinator`. Pure state: no IO, no clocks of its own (times are
//! passed in), so transitions are unit-tested directly.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupResponse, SyncGroupResponse};
use tokio::sync::oneshot;

use kafka_protocol::error::ResponseError as Code;
use kafka_protocol::protocol::StrBytes;

/// Group states, named as DescribeGroups and ListGroups report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members (offsets may remain).
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Join done; waiting for the leader's assignment.
    CompletingRebalance,
    /// Assignment delivered.
    Stable,
    /// Deleted.
    Dead,
}

impl GroupState {
    /// Kafka's name of the state.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// One member of a classic group.
#[derive(Debug)]
pub struct Member {
    /// Member id given by the coordinator.
    pub id: String,
    /// Static membership id (KIP-345).
    pub instance_id: Option<String>,
    /// Client id from the request header.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// `session.timeout.ms`.
    pub session_timeout_ms: i64,
    /// `max.poll.interval.ms` as the rebalance timeout.
    pub rebalance_timeout_ms: i64,
    /// Protocols in preference order, with their metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// Assignment from the last SyncGroup.
    pub assignment: Bytes,
    /// Pending JoinGroup answer.
    pub join_waiter: Option<oneshot::Sender<JoinGroupResponse>>,
    /// Pending SyncGroup answer.
    pub sync_waiter: Option<oneshot::Sender<SyncGroupResponse>>,
    /// Last sign of life (ms).
    pub last_heartbeat_ms: i64,
    /// Joined during the current rebalance (Kafka's `isNew`): expires on session timeout
    /// even while waiting.
    pub is_new: bool,
}

impl Member {
    /// Metadata for a protocol.
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
    fn same_protocols(&self, other: &[(String, Bytes)]) -> bool {
        self.protocols == other
    }
}

/// A classic consumer (or connect) group.
#[derive(Debug)]
pub struct Group {
    /// Group id.
    pub id: String,
    /// Current state.
    pub state: GroupState,
    /// Generation, bumped at each completed join.
    pub generation: i32,
    /// `consumer`, `connect`, ...
    pub protocol_type: Option<String>,
    /// Selected protocol (assignor) of this generation.
    pub protocol: Option<String>,
    /// Leader member id.
    pub leader: Option<String>,
    /// Members by id.
    pub members: BTreeMap<String, Member>,
    /// Static instance id → member id.
    pub static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with the time they expire (ms).
    pub pending: HashMap<String, i64>,
    /// When the current join phase ends at the latest (ms).
    pub join_deadline_ms: Option<i64>,
    /// The first rebalance of a group that was Empty, while it waits for more members.
    pub initial_join: Option<InitialJoin>,
    /// When the group became Empty (for offset retention), ms.
    pub empty_since_ms: i64,
    /// Changed since it was last written to `__consumer_offsets`.
    pub dirty: bool,
}

/// Kafka's initial rebalance (`InitialDelayedJoin`): the join phase of a group that was
/// Empty is completed by the timer only, `group.initial.rebalance.delay.ms` after it began,
/// and again one delay later for as long as each wait saw a new member join.
///
/// Kafka 4.3 (`GroupMetadataManager.prepareRebalance` and
/// `tryCompleteInitialRebalanceElseSchedule`) does this at a delay of 0 too: the timer task is
/// scheduled with delay 0 and `maybeCompleteJoinPhase` refuses to complete an initial
/// rebalance inline, so a member whose JoinGroup is handled before the timer task runs is in
/// generation 1 with the first one. Kafka's timer wheel turns every millisecond; ours turns
/// every [`crate::group::TICK_MS`]. A wait is therefore never shorter than one whole tick
/// ([`MIN_INITIAL_WAIT_MS`]): at a delay of 0, consumers that join within a tick of each other
/// share generation 1, wherever in the tick the first one arrived. (On Kafka at delay 0, two
/// librdkafka consumers started one after the other share generation 1 in about half the runs;
/// otherwise the second one's JoinGroup usually lands before the first one's SyncGroup and
/// cuts generation 1 short, so the first sees no assignment of its own either. FINDINGS.md has
/// the figures.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitialJoin {
    /// When the timer looks at the group next (ms).
    pub check_at_ms: i64,
    /// `group.initial.rebalance.delay.ms`.
    pub configured_ms: i64,
    /// Length of the current wait (Kafka's `delayMs`).
    pub delay_ms: i64,
    /// How much longer the join may be put off after this wait (Kafka's `remainingMs`).
    pub remaining_ms: i64,
    /// A member joined during the current wait (Kafka's `newMemberAdded`).
    pub new_member_added: bool,
}

/// The shortest wait of an initial rebalance: one turn of the coordinator's timer
/// ([`crate::group::TICK_MS`]). Kafka's timer turns every millisecond.
pub const MIN_INITIAL_WAIT_MS: i64 = 100;

/// Kafka's `group.min.session.timeout.ms` and `group.max.session.timeout.ms` defaults.
pub const MIN_SESSION_TIMEOUT_MS: i32 = 6_000;
/// See [`MIN_SESSION_TIMEOUT_MS`].
pub const MAX_SESSION_TIMEOUT_MS: i32 = 1_800_000;

impl Group {
    /// A new empty group.
    pub fn new(id: &str, now: i64) -> Self {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending: HashMap::new(),
            join_deadline_ms: None,
            initial_join: None,
            empty_since_ms: now,
            dirty: false,
        }
    }

    /// The stored form of this group (Kafka's group metadata record).
    pub fn to_record(&self, now: i64) -> crate::group::offsets::GroupRecord {
        let protocol = self.protocol.clone().unwrap_or_default();
        crate::group::offsets::GroupRecord {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            timestamp: now,
            members: self
                .members
                .values()
                .map(|m| crate::group::offsets::MemberRecord {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: i32::try_from(m.rebalance_timeout_ms).unwrap_or(i32::MAX),
                    session_timeout_ms: i32::try_from(m.session_timeout_ms).unwrap_or(i32::MAX),
                    subscription: m.metadata(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// Rebuild a group loaded at start-up: Stable with its members if it had any (their
    /// sessions start now), Empty otherwise, as Kafka loads groups.
    pub fn from_record(id: &str, r: crate::group::offsets::GroupRecord, now: i64) -> Self {
        let mut g = Group::new(id, now);
        g.generation = r.generation;
        g.protocol_type = (!r.protocol_type.is_empty()).then_some(r.protocol_type);
        g.protocol = r.protocol.clone();
        g.leader = r.leader;
        let protocol = r.protocol.unwrap_or_default();
        for m in r.members {
            if let Some(iid) = &m.instance_id {
                g.static_members.insert(iid.clone(), m.member_id.clone());
            }
            g.members.insert(
                m.member_id.clone(),
                Member {
                    id: m.member_id,
                    instance_id: m.instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout_ms: i64::from(m.session_timeout_ms),
                    rebalance_timeout_ms: i64::from(m.rebalance_timeout_ms),
                    protocols: vec![(protocol.clone(), m.subscription)],
                    assignment: m.assignment,
                    join_waiter: None,
                    sync_waiter: None,
                    last_heartbeat_ms: now,
                    is_new: false,
                },
            );
        }
        g.state = if g.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        g
    }
}

/// What a JoinGroup asks for.
#[derive(Debug, Clone)]
pub struct JoinParams {
    /// Member id as sent (empty on first join).
    pub member_id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Client id of the connection.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Rebalance timeout (v1+; v0 uses the session timeout).
    pub rebalance_timeout_ms: i32,
    /// Protocol type.
    pub protocol_type: String,
    /// Protocols with metadata, in preference order.
    pub protocols: Vec<(String, Bytes)>,
    /// Whether the client understands MEMBER_ID_REQUIRED (v4+).
    pub require_known_member_id: bool,
}

/// An answer now, or one to wait for.
pub enum Reply<T> {
    /// Answer now.
    Ready(T),
    /// Answer when the rebalance step completes.
    Wait(oneshot::Receiver<T>),
}

/// A JoinGroup error answer.
pub fn join_error(code: Code, member_id: &str) -> JoinGroupResponse {
    JoinGroupResponse::default()
        .with_error_code(code.code())
        .with_generation_id(-1)
        .with_member_id(sb(member_id))
}

/// A SyncGroup error answer.
pub fn sync_error(code: Code) -> SyncGroupResponse {
    SyncGroupResponse::default().with_error_code(code.code())
}

fn new_member_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

/// Default rebalance timeout when no member gave one (Kafka's `max.poll.interval.ms`).
const DEFAULT_REBALANCE_TIMEOUT_MS: i64 = 300_000;

impl Group {
    /// Whether a join with this protocol type and protocols fits the group.
    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        protocols.iter().any(|(n, _)| {
            self.members
                .values()
                .all(|m| m.protocols.iter().any(|(mn, _)| mn == n))
        })
    }

    /// Pick the protocol every member supports, by vote of each member's preference.
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(mn, _)| mn == *n))
            })
            .collect();
        let mut votes: Vec<(&String, usize)> = candidates.iter().map(|c| (*c, 0)).collect();
        for m in self.members.values() {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(&n)) {
                if let Some(v) = votes.iter_mut().find(|(c, _)| *c == name) {
                    v.1 += 1;
                }
            }
        }
        let best = votes.iter().map(|(_, n)| *n).max()?;
        votes
            .into_iter()
            .find(|(_, n)| *n == best)
            .map(|(c, _)| c.clone())
    }

    fn rebalance_timeout(&self) -> i64 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(DEFAULT_REBALANCE_TIMEOUT_MS)
    }

    /// Start a rebalance: members must rejoin before the join completes.
    pub fn prepare_rebalance(&mut self, now: i64, initial_delay_ms: i64) {
        if self.state == GroupState::CompletingRebalance {
            for m in self.members.values_mut() {
                m.assignment = Bytes::new();
                if let Some(w) = m.sync_waiter.take() {
                    let _ = w.send(sync_error(Code::RebalanceInProgress));
                }
            }
        }
        let was_empty = self.state == GroupState::Empty;
        self.state = GroupState::PreparingRebalance;
        let timeout = self.rebalance_timeout();
        self.join_deadline_ms = Some(now + timeout);
        self.initial_join = was_empty.then(|| InitialJoin {
            check_at_ms: now + initial_delay_ms.max(MIN_INITIAL_WAIT_MS),
            configured_ms: initial_delay_ms,
            delay_ms: initial_delay_ms,
            remaining_ms: (timeout - initial_delay_ms).max(0),
            new_member_added: false,
        });
    }

    /// The timer's side of [`InitialJoin`]: once the wait is over, wait again if a member
    /// joined meanwhile and there is time left, else complete the join.
    fn initial_join_timer(&mut self, now: i64) {
        let Some(ij) = self.initial_join else {
            return;
        };
        if self.state != GroupState::PreparingRebalance {
            self.initial_join = None;
            return;
        }
        if now < ij.check_at_ms {
            return;
        }
        if ij.new_member_added && ij.remaining_ms != 0 {
            let delay_ms = ij.configured_ms.min(ij.remaining_ms);
            self.initial_join = Some(InitialJoin {
                check_at_ms: now + delay_ms.max(MIN_INITIAL_WAIT_MS),
                delay_ms,
                remaining_ms: (ij.remaining_ms - ij.delay_ms).max(0),
                new_member_added: false,
                ..ij
            });
            return;
        }
        self.initial_join = None;
        self.complete_join(now);
    }

    fn all_joined(&self) -> bool {
        self.pending.is_empty() && self.members.values().all(|m| m.join_waiter.is_some())
    }

    fn join_response(&self, member_id: &str) -> JoinGroupResponse {
        let protocol = self.protocol.clone().unwrap_or_default();
        let is_leader = self.leader.as_deref() == Some(member_id);
        let members = if is_leader {
            self.members
                .values()
                .map(|m| {
                    JoinGroupResponseMember::default()
                        .with_member_id(sb(m.id.clone()))
                        .with_group_instance_id(m.instance_id.clone().map(sb))
                        .with_metadata(m.metadata(&protocol))
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinGroupResponse::default()
            .with_generation_id(self.generation)
            .with_protocol_type(self.protocol_type.clone().map(sb))
            .with_protocol_name(self.protocol.clone().map(sb))
            .with_leader(sb(self.leader.clone().unwrap_or_default()))
            .with_member_id(sb(member_id))
            .with_members(members)
    }

    /// Complete the join phase if every member has rejoined, or the rebalance timeout has run
    /// out. An initial rebalance is left to the timer ([`InitialJoin`]).
    pub fn maybe_complete_join(&mut self, now: i64) {
        if self.state != GroupState::PreparingRebalance || self.initial_join.is_some() {
            return;
        }
        let expired = self.join_deadline_ms.is_some_and(|d| now >= d);
        if !self.all_joined() && !expired {
            return;
        }
        self.complete_join(now);
    }

    /// End the join phase: members that did not rejoin are out, the generation is bumped, and
    /// every waiting JoinGroup is answered. Ids handed out with MEMBER_ID_REQUIRED stay
    /// pending, as in Kafka: such a member joins with its id later (and starts the next
    /// rebalance) or expires.
    fn complete_join(&mut self, now: i64) {
        // Members that did not rejoin in time are out, as in Kafka.
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            self.drop_member(&id);
        }
        self.generation += 1;
        self.join_deadline_ms = None;
        self.initial_join = None;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol = None;
            self.leader = None;
            self.empty_since_ms = now;
            self.dirty = true;
            return;
        }
        self.protocol = self.select_protocol();
        self.state = GroupState::CompletingRebalance;
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let resp = self.join_response(&id);
            if let Some(m) = self.members.get_mut(&id) {
                m.is_new = false;
                m.last_heartbeat_ms = now;
                if let Some(w) = m.join_waiter.take() {
                    let _ = w.send(resp);
                }
            }
        }
    }

    fn drop_member(&mut self, id: &str) -> Option<Member> {
        let mut m = self.members.remove(id)?;
        if let Some(iid) = &m.instance_id {
            if self.static_members.get(iid).map(String::as_str) == Some(id) {
                self.static_members.remove(iid);
            }
        }
        if let Some(w) = m.join_waiter.take() {
            let _ = w.send(join_error(Code::UnknownMemberId, id));
        }
        if let Some(w) = m.sync_waiter.take() {
            let _ = w.send(sync_error(Code::UnknownMemberId));
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = None;
        }
        Some(m)
    }

    /// Remove a member (leave or expiry) and rebalance the rest.
    pub fn remove_member(&mut self, id: &str, now: i64) -> bool {
        if self.drop_member(id).is_none() {
            return false;
        }
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance(now, 0),
            _ => {}
        }
        self.maybe_complete_join(now);
        if self.members.is_empty() && self.state != GroupState::PreparingRebalance {
            self.state = GroupState::Empty;
            self.empty_since_ms = now;
            self.dirty = true;
        }
        true
    }

    /// Handle JoinGroup.
    pub fn join(
        &mut self,
        p: JoinParams,
        now: i64,
        initial_delay_ms: i64,
    ) -> Reply<JoinGroupResponse> {
        if self.state == GroupState::Dead {
            return Reply::Ready(join_error(Code::CoordinatorNotAvailable, &p.member_id));
        }
        if !self.supports(&p.protocol_type, &p.protocols) {
            return Reply::Ready(join_error(Code::InconsistentGroupProtocol, &p.member_id));
        }
        if p.member_id.is_empty() {
            if let Some(iid) = p.instance_id.clone() {
                if let Some(old_id) = self.static_members.get(&iid).cloned() {
                    return self.static_rejoin(p, &old_id, &iid, now, initial_delay_ms);
                }
                let id = new_member_id(&iid);
                self.static_members.insert(iid, id.clone());
                return self.add_member(id, p, now, initial_delay_ms);
            }
            let id = new_member_id(if p.client_id.is_empty() {
                "member"
            } else {
                &p.client_id
            });
            if p.require_known_member_id {
                // KIP-394: hand out the id and make the client come back with it.
                self.pending
                    .insert(id.clone(), now + i64::from(p.session_timeout_ms));
                return Reply::Ready(join_error(Code::MemberIdRequired, &id));
            }
            return self.add_member(id, p, now, initial_delay_ms);
        }
        if self.pending.remove(&p.member_id).is_some() {
            let id = p.member_id.clone();
            return self.add_member(id, p, now, initial_delay_ms);
        }
        if let Some(iid) = &p.instance_id {
            if self
                .static_members
                .get(iid)
                .is_some_and(|m| *m != p.member_id)
            {
                return Reply::Ready(join_error(Code::FencedInstanceId, &p.member_id));
            }
        }
        if !self.members.contains_key(&p.member_id) {
            return Reply::Ready(join_error(Code::UnknownMemberId, &p.member_id));
        }
        let id = p.member_id.clone();
        let is_leader = self.leader.as_deref() == Some(id.as_str());
        let same = self
            .members
            .get(&id)
            .is_some_and(|m| m.same_protocols(&p.protocols));
        match self.state {
            GroupState::CompletingRebalance if same => Reply::Ready(self.join_response(&id)),
            GroupState::Stable if same && !is_leader => {
                if let Some(m) = self.members.get_mut(&id) {
                    m.last_heartbeat_ms = now;
                }
                Reply::Ready(self.join_response(&id))
            }
            GroupState::Empty | GroupState::Dead => {
                Reply::Ready(join_error(Code::UnknownMemberId, &id))
            }
            _ => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = self.members.get_mut(&id) {
                    m.protocols = p.protocols;
                    m.session_timeout_ms = i64::from(p.session_timeout_ms);
                    m.rebalance_timeout_ms = i64::from(p.rebalance_timeout_ms);
                    m.last_heartbeat_ms = now;
                    if let Some(old) = m.join_waiter.replace(tx) {
                        let _ = old.send(join_error(Code::RebalanceInProgress, &id));
                    }
                }
                if self.state != GroupState::PreparingRebalance {
                    self.prepare_rebalance(now, 0);
                }
                self.maybe_complete_join(now);
                Reply::Wait(rx)
            }
        }
    }

    fn add_member(
        &mut self,
        id: String,
        p: JoinParams,
        now: i64,
        initial_delay_ms: i64,
    ) -> Reply<JoinGroupResponse> {
        let (tx, rx) = oneshot::channel();
        if self.members.is_empty() {
            self.protocol_type = Some(p.protocol_type.clone());
        }
        self.members.insert(
            id.clone(),
            Member {
                id: id.clone(),
                instance_id: p.instance_id,
                client_id: p.client_id,
                client_host: p.client_host,
                session_timeout_ms: i64::from(p.session_timeout_ms),
                rebalance_timeout_ms: i64::from(p.rebalance_timeout_ms),
                protocols: p.protocols,
                assignment: Bytes::new(),
                join_waiter: Some(tx),
                sync_waiter: None,
                last_heartbeat_ms: now,
                is_new: true,
            },
        );
        match (self.state, self.initial_join.as_mut()) {
            (GroupState::PreparingRebalance, Some(ij)) => ij.new_member_added = true,
            (GroupState::PreparingRebalance, None) => {}
            _ => self.prepare_rebalance(now, initial_delay_ms),
        }
        self.maybe_complete_join(now);
        Reply::Wait(rx)
    }

    /// A static member restarted (new member id, same instance id): it takes over the old
    /// member's place; with unchanged protocols in a stable group there is no rebalance.
    fn static_rejoin(
        &mut self,
        p: JoinParams,
        old_id: &str,
        iid: &str,
        now: i64,
        initial_delay_ms: i64,
    ) -> Reply<JoinGroupResponse> {
        let Some(mut old) = self.members.remove(old_id) else {
            self.static_members.remove(iid);
            let id = new_member_id(iid);
            self.static_members.insert(iid.to_string(), id.clone());
            return self.add_member(id, p, now, initial_delay_ms);
        };
        if let Some(w) = old.join_waiter.take() {
            let _ = w.send(join_error(Code::FencedInstanceId, old_id));
        }
        if let Some(w) = old.sync_waiter.take() {
            let _ = w.send(sync_error(Code::FencedInstanceId));
        }
        let new_id = new_member_id(iid);
        let same = old.protocols == p.protocols;
        let was_leader = self.leader.as_deref() == Some(old_id);
        old.id = new_id.clone();
        old.client_id = p.client_id.clone();
        old.client_host = p.client_host.clone();
        old.session_timeout_ms = i64::from(p.session_timeout_ms);
        old.rebalance_timeout_ms = i64::from(p.rebalance_timeout_ms);
        old.last_heartbeat_ms = now;
        self.static_members.insert(iid.to_string(), new_id.clone());
        if was_leader {
            self.leader = Some(new_id.clone());
        }
        if self.state == GroupState::Stable && same && !was_leader {
            self.dirty = true;
            self.members.insert(new_id.clone(), old);
            return Reply::Ready(self.join_response(&new_id));
        }
        let (tx, rx) = oneshot::channel();
        old.protocols = p.protocols;
        old.join_waiter = Some(tx);
        self.members.insert(new_id, old);
        if self.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(now, 0);
        }
        self.maybe_complete_join(now);
        Reply::Wait(rx)
    }

    fn check_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), Code> {
        if let Some(iid) = instance_id {
            if let Some(owner) = self.static_members.get(iid) {
                if owner != member_id {
                    return Err(Code::FencedInstanceId);
                }
            }
        }
        if self.members.contains_key(member_id) {
            Ok(())
        } else {
            Err(Code::UnknownMemberId)
        }
    }

    /// Handle SyncGroup.
    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        now: i64,
    ) -> Reply<SyncGroupResponse> {
        if self.state == GroupState::Dead {
            return Reply::Ready(sync_error(Code::CoordinatorNotAvailable));
        }
        if let Err(code) = self.check_member(member_id, instance_id) {
            return Reply::Ready(sync_error(code));
        }
        if generation != self.generation {
            return Reply::Ready(sync_error(Code::IllegalGeneration));
        }
        if protocol_type.is_some_and(|t| Some(t) != self.protocol_type.as_deref())
            || protocol_name.is_some_and(|n| Some(n) != self.protocol.as_deref())
        {
            return Reply::Ready(sync_error(Code::InconsistentGroupProtocol));
        }
        let ok = |assignment: Bytes, g: &Group| {
            SyncGroupResponse::default()
                .with_protocol_type(g.protocol_type.clone().map(sb))
                .with_protocol_name(g.protocol.clone().map(sb))
                .with_assignment(assignment)
        };
        match self.state {
            GroupState::Empty | GroupState::Dead => Reply::Ready(sync_error(Code::UnknownMemberId)),
            GroupState::PreparingRebalance => Reply::Ready(sync_error(Code::RebalanceInProgress)),
            GroupState::Stable => {
                let a = self
                    .members
                    .get(member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                Reply::Ready(ok(a, self))
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = self.members.get_mut(member_id) {
                    m.sync_waiter = Some(tx);
                    m.last_heartbeat_ms = now;
                }
                if self.leader.as_deref() == Some(member_id) {
                    let mut by_member: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for m in self.members.values_mut() {
                        m.assignment = by_member.remove(&m.id).unwrap_or_default();
                    }
                    self.state = GroupState::Stable;
                    self.dirty = true;
                    let replies: Vec<(String, SyncGroupResponse)> = self
                        .members
                        .values()
                        .map(|m| (m.id.clone(), ok(m.assignment.clone(), self)))
                        .collect();
                    for (id, r) in replies {
                        if let Some(w) =
                            self.members.get_mut(&id).and_then(|m| m.sync_waiter.take())
                        {
                            let _ = w.send(r);
                        }
                    }
                }
                Reply::Wait(rx)
            }
        }
    }

    /// Handle Heartbeat.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: i64,
    ) -> Result<(), Code> {
        if self.state == GroupState::Dead {
            return Err(Code::CoordinatorNotAvailable);
        }
        self.check_member(member_id, instance_id)?;
        if generation != self.generation {
            return Err(Code::IllegalGeneration);
        }
        if let Some(m) = self.members.get_mut(member_id) {
            m.last_heartbeat_ms = now;
        }
        match self.state {
            GroupState::PreparingRebalance => Err(Code::RebalanceInProgress),
            GroupState::Empty => Err(Code::UnknownMemberId),
            _ => Ok(()),
        }
    }

    /// Validate an OffsetCommit from a member (or a simple commit with generation -1).
    pub fn check_commit(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), Code> {
        if self.state == GroupState::Dead {
            return Err(Code::CoordinatorNotAvailable);
        }
        if generation < 0 && member_id.is_empty() {
            // A commit from outside any generation: Kafka accepts it only while the group
            // has no members.
            return if self.members.is_empty() {
                Ok(())
            } else {
                Err(Code::UnknownMemberId)
            };
        }
        self.check_member(member_id, instance_id)?;
        if generation != self.generation {
            return Err(Code::IllegalGeneration);
        }
        if self.state == GroupState::CompletingRebalance {
            return Err(Code::RebalanceInProgress);
        }
        Ok(())
    }

    /// Expire members and pending ids whose session ran out, and finish a join whose time
    /// is up. Called by the coordinator's timer.
    pub fn tick(&mut self, now: i64) {
        self.pending.retain(|_, until| *until > now);
        let dead: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                let alive = m.last_heartbeat_ms + m.session_timeout_ms > now;
                if m.join_waiter.is_some() {
                    m.is_new && !alive
                } else if m.sync_waiter.is_some() {
                    false
                } else {
                    !alive
                }
            })
            .map(|m| m.id.clone())
            .collect();
        for id in dead {
            tracing::info!(group = %self.id, member = %id, "member session expired");
            self.remove_member(&id, now);
        }
        self.initial_join_timer(now);
        self.maybe_complete_join(now);
    }
}

/// A `StrBytes` from a string.
fn sb(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}
