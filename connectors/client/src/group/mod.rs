//! Consumer group membership with Kafka's classic protocol (JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup) and the eager range assignor, computed by the leader on the
//! client side.
//!
//! The caller drives rebalances: a background task heartbeats, and when the coordinator
//! says the group is rebalancing (or has forgotten this member) it raises a flag. The
//! caller sees it through [`GroupMember::needs_rejoin`] or
//! [`GroupMember::rebalance_needed`], commits what it has processed, and calls
//! [`GroupMember::poll`], which rejoins and reports the partitions revoked and assigned.
//! With the eager protocol every partition is revoked on each rebalance.
//!
//! Not here: static membership, cooperative rebalancing, the KIP-848 `consumer` protocol.

pub mod assignor;
pub mod protocol;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    GroupId, HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::{millis_i32, Client};
use crate::error::{At, Error, Result};
use crate::offsets::{CommitOffset, Generation};
use assignor::{range_assign, Assignment, MemberSubscription};

/// Kafka's consumer `session.timeout.ms` default since 3.0.
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(45);
/// Kafka's consumer `max.poll.interval.ms` default, which it sends as the rebalance timeout.
pub const DEFAULT_REBALANCE_TIMEOUT: Duration = Duration::from_secs(300);
/// Kafka's consumer `heartbeat.interval.ms` default.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(3);

/// Settings of one group member.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// The group (Kafka's `group.id`).
    pub group_id: String,
    /// Topics to subscribe to. Matching a pattern against [`Client::topics`] is the
    /// caller's business; change the list with [`GroupMember::set_topics`].
    pub topics: Vec<String>,
    /// The coordinator drops a member that has not heartbeated for this long.
    pub session_timeout: Duration,
    /// How long the coordinator waits for members to rejoin during a rebalance.
    pub rebalance_timeout: Duration,
    /// Time between heartbeats; must be below `session_timeout`.
    pub heartbeat_interval: Duration,
}

impl GroupConfig {
    /// A member of `group_id` subscribed to `topics`, with Kafka's default timeouts.
    pub fn new<I, S>(group_id: impl Into<String>, topics: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            group_id: group_id.into(),
            topics: topics.into_iter().map(Into::into).collect(),
            session_timeout: DEFAULT_SESSION_TIMEOUT,
            rebalance_timeout: DEFAULT_REBALANCE_TIMEOUT,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
        }
    }
}

/// What a rebalance changed, from [`GroupMember::poll`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebalance {
    /// The new generation.
    pub generation_id: i32,
    /// Partitions held before the rebalance (all revoked: the protocol is eager).
    pub revoked: Assignment,
    /// Partitions held now.
    pub assigned: Assignment,
}

/// What the heartbeat task has learnt, in increasing order of severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Signal {
    Stable,
    /// The group is rebalancing (or the member asked to): rejoin with the same member id.
    Rejoin,
    /// The coordinator no longer knows this member id: rejoin as a new member.
    RejoinAsNew,
}

fn raise(tx: &watch::Sender<Signal>, to: Signal) {
    tx.send_if_modified(|s| {
        if *s < to {
            *s = to;
            true
        } else {
            false
        }
    });
}

/// A joined member of a consumer group. Dropping it stops heartbeats without leaving the
/// group (the coordinator expires it after the session timeout); call
/// [`leave`](Self::leave) to hand its partitions over at once.
#[derive(Debug)]
pub struct GroupMember {
    client: Client,
    config: GroupConfig,
    member_id: String,
    generation_id: i32,
    leader_id: String,
    assignment: Assignment,
    signal: Arc<watch::Sender<Signal>>,
    signal_rx: watch::Receiver<Signal>,
    heartbeat: Option<JoinHandle<()>>,
}

impl Drop for GroupMember {
    fn drop(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }
}

impl Client {
    /// Joins a consumer group and waits for the first assignment.
    pub async fn join_group(&self, config: GroupConfig) -> Result<GroupMember> {
        if config.group_id.is_empty() {
            return Err(Error::InvalidArgument("group id is empty".to_owned()));
        }
        if config.heartbeat_interval >= config.session_timeout {
            return Err(Error::InvalidArgument(format!(
                "heartbeat interval {:?} must be below the session timeout {:?}",
                config.heartbeat_interval, config.session_timeout
            )));
        }
        let (tx, rx) = watch::channel(Signal::Rejoin);
        let mut member = GroupMember {
            client: self.clone(),
            config,
            member_id: String::new(),
            generation_id: -1,
            leader_id: String::new(),
            assignment: Assignment::new(),
            signal: Arc::new(tx),
            signal_rx: rx,
            heartbeat: None,
        };
        member.join_and_sync().await?;
        Ok(member)
    }
}

impl GroupMember {
    /// The group id.
    pub fn group_id(&self) -> &str {
        &self.config.group_id
    }

    /// The member id the coordinator gave this member.
    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    /// Generation and member id, for committing offsets.
    pub fn generation(&self) -> Generation {
        Generation {
            generation_id: self.generation_id,
            member_id: self.member_id.clone(),
        }
    }

    /// Whether this member computed the assignment of the current generation.
    pub fn is_leader(&self) -> bool {
        !self.member_id.is_empty() && self.leader_id == self.member_id
    }

    /// The partitions this member holds in the current generation.
    pub fn assignment(&self) -> &Assignment {
        &self.assignment
    }

    /// The subscribed topics.
    pub fn topics(&self) -> &[String] {
        &self.config.topics
    }

    /// Whether the member must rejoin (call [`poll`](Self::poll)). Until it does, its
    /// assignment may already belong to someone else once the rebalance completes.
    pub fn needs_rejoin(&self) -> bool {
        *self.signal_rx.borrow() != Signal::Stable
    }

    /// Resolves when the member must rejoin. Cancel-safe, for use in `select!`.
    pub async fn rebalance_needed(&mut self) {
        // The sender lives in `self`, so `wait_for` cannot fail while we wait.
        let _closed = self.signal_rx.wait_for(|s| *s != Signal::Stable).await;
    }

    /// Asks for a rebalance at the next [`poll`](Self::poll) (after the topic list or a
    /// topic's partition count changed).
    pub fn request_rejoin(&self) {
        raise(&self.signal, Signal::Rejoin);
    }

    /// Replaces the subscription; takes effect at the next [`poll`](Self::poll).
    pub fn set_topics(&mut self, topics: Vec<String>) {
        if topics != self.config.topics {
            self.config.topics = topics;
            self.request_rejoin();
        }
    }

    /// Rejoins the group if a rebalance is needed and returns what changed; `None` when
    /// the member is stable. Commit processed offsets *before* calling this: afterwards
    /// the old generation is gone.
    pub async fn poll(&mut self) -> Result<Option<Rebalance>> {
        if !self.needs_rejoin() {
            return Ok(None);
        }
        let revoked = std::mem::take(&mut self.assignment);
        self.join_and_sync().await?;
        Ok(Some(Rebalance {
            generation_id: self.generation_id,
            revoked,
            assigned: self.assignment.clone(),
        }))
    }

    /// Commits offsets as this member. A commit refused because the group moved on
    /// (REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID) also flags a rejoin.
    pub async fn commit(&self, offsets: &[CommitOffset]) -> Result<()> {
        let result = self
            .client
            .commit_offsets(&self.config.group_id, &self.generation(), offsets)
            .await;
        if let Err(e) = &result {
            match e.kafka_error() {
                Some(ResponseError::UnknownMemberId) => raise(&self.signal, Signal::RejoinAsNew),
                Some(ResponseError::RebalanceInProgress | ResponseError::IllegalGeneration) => {
                    raise(&self.signal, Signal::Rejoin);
                }
                _ => {}
            }
        }
        result
    }

    /// Leaves the group so that its partitions are reassigned at once.
    pub async fn leave(mut self) -> Result<()> {
        self.stop_heartbeat();
        if self.member_id.is_empty() {
            return Ok(());
        }
        let group = self.config.group_id.clone();
        let member_id = self.member_id.clone();
        let client = self.client.clone();
        let resp = client
            .with_coordinator(&group, |addr| {
                let (client, group, member_id) = (&client, &group, &member_id);
                async move {
                    let (_, resp) = client
                        .call_at(&addr, Duration::ZERO, |v| {
                            LeaveGroupRequest::default()
                                .with_group_id(group_id(group))
                                .with_members(vec![MemberIdentity::default()
                                    .with_member_id(StrBytes::from_string(member_id.clone()))
                                    .with_reason((v >= 5).then(|| {
                                        StrBytes::from_static_str("the consumer is being closed")
                                    }))])
                        })
                        .await?;
                    coordinator_error("leave group", group, resp.error_code)?;
                    Ok(resp)
                }
            })
            .await?;
        // A member the coordinator already forgot has left, as far as anyone can tell.
        let failed = resp.members.iter().find_map(|m| {
            ResponseError::try_from_code(m.error_code)
                .filter(|e| *e != ResponseError::UnknownMemberId)
        });
        match ResponseError::try_from_code(resp.error_code)
            .filter(|e| *e != ResponseError::UnknownMemberId)
            .or(failed)
        {
            Some(error) => Err(Error::kafka("leave group", At::group(&group), error)),
            None => {
                self.member_id.clear();
                Ok(())
            }
        }
    }

    fn stop_heartbeat(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }

    /// JoinGroup then SyncGroup until a generation is complete, then restart heartbeats.
    /// On failure the member stays flagged for a rejoin, with no assignment.
    async fn join_and_sync(&mut self) -> Result<()> {
        let result = self.try_join_and_sync().await;
        if result.is_err() {
            self.assignment.clear();
            raise(&self.signal, Signal::Rejoin);
        }
        result
    }

    async fn try_join_and_sync(&mut self) -> Result<()> {
        self.stop_heartbeat();
        if *self.signal_rx.borrow() == Signal::RejoinAsNew {
            self.member_id.clear();
        }
        // Clear the flag before joining: a rebalance that starts while we join must raise
        // it again, not be swallowed.
        self.signal.send_replace(Signal::Stable);
        let group = self.config.group_id.clone();
        let limit = self
            .config
            .rebalance_timeout
            .saturating_add(self.config.session_timeout);
        let deadline = Instant::now() + limit;
        let mut attempt = 0u32;
        loop {
            if Instant::now() >= deadline {
                return Err(Error::GroupTimeout {
                    group,
                    what: "join",
                    after: limit,
                });
            }
            let join = self.send_join().await?;
            match ResponseError::try_from_code(join.error_code) {
                None => {}
                Some(ResponseError::MemberIdRequired) => {
                    // KIP-394: the coordinator hands out the id; join again with it.
                    self.member_id = join.member_id.to_string();
                    continue;
                }
                Some(ResponseError::UnknownMemberId) => {
                    self.member_id.clear();
                    self.pause(&mut attempt).await;
                    continue;
                }
                Some(ResponseError::RebalanceInProgress) => {
                    self.pause(&mut attempt).await;
                    continue;
                }
                Some(error) => {
                    return Err(Error::kafka("join group", At::group(&group), error));
                }
            }
            if let Some(name) = &join.protocol_name {
                if name.as_str() != protocol::RANGE {
                    return Err(Error::Protocol {
                        addr: String::new(),
                        message: format!(
                            "group {group} chose assignor {name}; this client only implements {}",
                            protocol::RANGE
                        ),
                    });
                }
            }
            self.member_id = join.member_id.to_string();
            self.generation_id = join.generation_id;
            self.leader_id = join.leader.to_string();
            let assignments = if self.is_leader() {
                self.assign(&join).await?
            } else {
                Vec::new()
            };
            let sync = self.send_sync(assignments).await?;
            match ResponseError::try_from_code(sync.error_code) {
                None => {}
                Some(ResponseError::RebalanceInProgress | ResponseError::IllegalGeneration) => {
                    self.pause(&mut attempt).await;
                    continue;
                }
                Some(ResponseError::UnknownMemberId) => {
                    self.member_id.clear();
                    self.pause(&mut attempt).await;
                    continue;
                }
                Some(error) => {
                    return Err(Error::kafka("sync group", At::group(&group), error));
                }
            }
            self.assignment =
                protocol::decode_assignment(sync.assignment).map_err(|m| Error::Protocol {
                    addr: String::new(),
                    message: format!("group {group}: {m}"),
                })?;
            tracing::debug!(
                group,
                generation = self.generation_id,
                member = self.member_id,
                leader = self.is_leader(),
                assignment = ?self.assignment,
                "joined group"
            );
            self.start_heartbeat();
            return Ok(());
        }
    }

    async fn pause(&self, attempt: &mut u32) {
        tokio::time::sleep(self.client.config().backoff(*attempt)).await;
        *attempt = attempt.saturating_add(1);
    }

    /// One JoinGroup round trip. Coordinator errors are returned as `Err` (and retried by
    /// `with_coordinator`); membership errors come back in the response.
    async fn send_join(&self) -> Result<JoinGroupResponse> {
        let group = self.config.group_id.as_str();
        let metadata = protocol::encode_subscription(
            &self.config.topics,
            &self.assignment,
            self.generation_id,
        )
        .map_err(|message| Error::Protocol {
            addr: String::new(),
            message,
        })?;
        let member_id = self.member_id.as_str();
        let config = &self.config;
        let client = &self.client;
        client
            .with_coordinator(group, |addr| {
                let metadata = metadata.clone();
                async move {
                    let (_, resp) = client
                        .call_at(&addr, config.rebalance_timeout, |_| {
                            JoinGroupRequest::default()
                                .with_group_id(group_id(group))
                                .with_session_timeout_ms(millis_i32(config.session_timeout))
                                .with_rebalance_timeout_ms(millis_i32(config.rebalance_timeout))
                                .with_member_id(StrBytes::from_string(member_id.to_owned()))
                                .with_protocol_type(StrBytes::from_static_str(
                                    protocol::PROTOCOL_TYPE,
                                ))
                                .with_protocols(vec![JoinGroupRequestProtocol::default()
                                    .with_name(StrBytes::from_static_str(protocol::RANGE))
                                    .with_metadata(metadata)])
                        })
                        .await?;
                    coordinator_error("join group", group, resp.error_code)?;
                    Ok(resp)
                }
            })
            .await
    }

    /// The leader's job: decode every member's subscription, look up the partitions of
    /// the subscribed topics, and compute a range assignment.
    async fn assign(&self, join: &JoinGroupResponse) -> Result<Vec<SyncGroupRequestAssignment>> {
        let group = &self.config.group_id;
        let mut members = Vec::with_capacity(join.members.len());
        for m in &join.members {
            let topics = protocol::decode_subscription(m.metadata.clone()).map_err(|message| {
                Error::Protocol {
                    addr: String::new(),
                    message: format!("group {group} member {}: {message}", m.member_id),
                }
            })?;
            members.push(MemberSubscription {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.as_ref().map(ToString::to_string),
                topics,
            });
        }
        let mut wanted: Vec<&String> = members.iter().flat_map(|m| m.topics.iter()).collect();
        wanted.sort();
        wanted.dedup();
        let mut partitions: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for topic in wanted {
            match self.client.partitions(topic).await {
                Ok(p) => {
                    partitions.insert(topic.clone(), p);
                }
                Err(e) if e.kafka_error() == Some(ResponseError::UnknownTopicOrPartition) => {
                    tracing::debug!(group, topic, "subscribed topic does not exist; skipped");
                }
                Err(e) => return Err(e),
            }
        }
        let plan = range_assign(&members, &partitions);
        plan.iter()
            .map(|(member_id, a)| {
                let bytes: Bytes =
                    protocol::encode_assignment(a).map_err(|message| Error::Protocol {
                        addr: String::new(),
                        message,
                    })?;
                Ok(SyncGroupRequestAssignment::default()
                    .with_member_id(StrBytes::from_string(member_id.clone()))
                    .with_assignment(bytes))
            })
            .collect()
    }

    async fn send_sync(
        &self,
        assignments: Vec<SyncGroupRequestAssignment>,
    ) -> Result<SyncGroupResponse> {
        let group = self.config.group_id.as_str();
        let member_id = self.member_id.as_str();
        let generation_id = self.generation_id;
        let client = &self.client;
        let wait = self.config.rebalance_timeout;
        client
            .with_coordinator(group, |addr| {
                let assignments = assignments.clone();
                async move {
                    let (_, resp) = client
                        .call_at(&addr, wait, |v| {
                            SyncGroupRequest::default()
                                .with_group_id(group_id(group))
                                .with_generation_id(generation_id)
                                .with_member_id(StrBytes::from_string(member_id.to_owned()))
                                .with_protocol_type(
                                    (v >= 5).then(|| {
                                        StrBytes::from_static_str(protocol::PROTOCOL_TYPE)
                                    }),
                                )
                                .with_protocol_name(
                                    (v >= 5).then(|| StrBytes::from_static_str(protocol::RANGE)),
                                )
                                .with_assignments(assignments)
                        })
                        .await?;
                    coordinator_error("sync group", group, resp.error_code)?;
                    Ok(resp)
                }
            })
            .await
    }

    fn start_heartbeat(&mut self) {
        let beat = Heartbeat {
            client: self.client.clone(),
            group: self.config.group_id.clone(),
            generation_id: self.generation_id,
            member_id: self.member_id.clone(),
            interval: self.config.heartbeat_interval,
            session_timeout: self.config.session_timeout,
            signal: Arc::clone(&self.signal),
        };
        self.heartbeat = Some(tokio::spawn(beat.run()));
    }
}

/// Coordinator-level codes become `Err`, so `with_coordinator` looks the coordinator up
/// again and retries; everything else is left for the caller to read.
fn coordinator_error(op: &'static str, group: &str, code: i16) -> Result<()> {
    match ResponseError::try_from_code(code) {
        Some(
            e @ (ResponseError::NotCoordinator
            | ResponseError::CoordinatorNotAvailable
            | ResponseError::CoordinatorLoadInProgress),
        ) => Err(Error::kafka(op, At::group(group), e)),
        _ => Ok(()),
    }
}

fn group_id(group: &str) -> GroupId {
    GroupId(StrBytes::from_string(group.to_owned()))
}

/// The background heartbeat of one generation.
struct Heartbeat {
    client: Client,
    group: String,
    generation_id: i32,
    member_id: String,
    interval: Duration,
    session_timeout: Duration,
    signal: Arc<watch::Sender<Signal>>,
}

impl Heartbeat {
    async fn run(self) {
        let mut last_ok = Instant::now();
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await; // the first tick is immediate; the join just proved liveness
        loop {
            ticker.tick().await;
            match self.beat().await {
                Ok(None) => last_ok = Instant::now(),
                Ok(Some(ResponseError::RebalanceInProgress)) => {
                    // Keep heartbeating until the caller rejoins, so the session stays alive.
                    last_ok = Instant::now();
                    raise(&self.signal, Signal::Rejoin);
                }
                Ok(Some(ResponseError::UnknownMemberId | ResponseError::FencedInstanceId)) => {
                    raise(&self.signal, Signal::RejoinAsNew);
                    return;
                }
                Ok(Some(error)) => {
                    tracing::debug!(group = self.group, %error, "heartbeat refused; rejoining");
                    raise(&self.signal, Signal::Rejoin);
                    return;
                }
                Err(e) => {
                    tracing::debug!(group = self.group, "heartbeat failed: {e}");
                    if e.needs_coordinator_lookup() {
                        self.client.invalidate_coordinator(&self.group);
                    }
                    if last_ok.elapsed() >= self.session_timeout {
                        raise(&self.signal, Signal::Rejoin);
                        return;
                    }
                }
            }
        }
    }

    /// One heartbeat; `Ok(Some(error))` for a membership error from the coordinator.
    async fn beat(&self) -> Result<Option<ResponseError>> {
        let addr = self.client.coordinator_addr(&self.group).await?;
        let (_, resp) = self
            .client
            .call_at(&addr, Duration::ZERO, |_| {
                HeartbeatRequest::default()
                    .with_group_id(group_id(&self.group))
                    .with_generation_id(self.generation_id)
                    .with_member_id(StrBytes::from_string(self.member_id.clone()))
            })
            .await?;
        coordinator_error("heartbeat", &self.group, resp.error_code)?;
        Ok(ResponseError::try_from_code(resp.error_code))
    }
}
