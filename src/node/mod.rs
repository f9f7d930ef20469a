//! One FortiGate of the fabric: its identity, its Raft group membership and the tasks that
//! keep it in the fabric.
//!
//! [`RunningNode::start`] opens the node's data directory, starts openraft and the node's
//! EMS checker, and on the **root** initializes the Raft group on first boot and keeps the
//! leadership: when it is not the leader it calls `trigger().elect()` until it is. The root
//! admits members through [`Node::admit`], only those its trusted-list or the topology
//! authorizes ([`admission`]): as voters while the fabric has fewer than `voters`, as
//! learners after that. A member the trusted-list stops authorizing is removed from the
//! group by the root's `keep_out_unauthorized` task.
//!
//! A node has no sockets of its own: [`crate::server`] binds its gRPC listener, serves
//! [`crate::rpc`] on it and, for a member, asks the root to admit it. Raft's own traffic
//! goes through [`crate::raft::network`].
//!
//! Members never start elections. Only the root accepts configuration writes, so a member
//! leading the group while the root is away would have nothing to commit; the members keep
//! serving their last applied configuration and the root, back, leads again without
//! having to take the leadership from anyone.
//!
//! [`RunningNode::shutdown`] and [`RunningNode::kill`] join every task the node spawned
//! before they return.
//!
//! [`check_data`] reads everything a node keeps without starting it, so that the launcher
//! reports every damaged node before it starts any; [`set_aside_data`] moves a damaged
//! member's files aside so that it starts empty and catches up from the root.

pub mod accounts;
pub mod admission;
pub mod checker;
pub mod local;
mod proposer;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers, ServerState};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use self::admission::{Admission, JoinClaim, PendingBook};
use self::checker::{CheckerSetup, CheckerStatus};
use self::local::{LocalApplyError, LocalConfig, LocalError};
use crate::cli::{Backend, CommitError, NodeIdentity, PendingMember};
use crate::config::{Applied, ConfigCommand, ConfigDb};
use crate::connector::{self, CertificateOffer, EmsStatus, Resolver};
use crate::domain::Firmware;
use crate::link::{Credentials, Dialer, Links, TlsError};
use crate::raft::log::LogStore;
use crate::raft::network::Network;
use crate::raft::state_machine::StateMachine;
use crate::raft::store::{OpenError, Store};
use crate::raft::wal::Wal;
use crate::raft::{ApplyResult, NodeId, Proposal, Raft};
use crate::topology::{AdminSpec, ApiUserSpec, NodeSpec, RaftSettings, Role};
use crate::wire::CloudAccess;

/// How long the root waits for its own leadership before refusing a write.
const LEADERSHIP_WAIT: Duration = Duration::from_secs(5);
/// How often the root checks that it leads.
const KEEPER_INTERVAL: Duration = Duration::from_millis(300);
/// How long the root waits for a new learner to catch up before it makes it a voter;
/// past this the member asks again rather than holding the root's join lock forever.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(10);
/// A membership change waits for a quorum of the old and the new voters; past this the
/// member asks again, so a member that left meanwhile never holds the root's join lock.
const MEMBERSHIP_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a write waits for a quorum of voters before the CLI reports it as not
/// acknowledged; shorter Raft timings wait less (see [`commit_timeout`]).
const COMMIT_TIMEOUT: Duration = Duration::from_secs(15);
/// The shortest such wait.
const MIN_COMMIT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a write waits for its commit: five of the longest election timeouts, within
/// [`MIN_COMMIT_TIMEOUT`] and [`COMMIT_TIMEOUT`].
fn commit_timeout(raft: &RaftSettings) -> Duration {
    Duration::from_millis(raft.election_timeout_max_ms.saturating_mul(5))
        .clamp(MIN_COMMIT_TIMEOUT, COMMIT_TIMEOUT)
}
/// How long a stopping node waits for openraft's core, then for its own tasks.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The name of the tracing span every event of a node happens in (its field `name` is
/// the node's name): the launcher wraps each node's start in [`span`], and the node's
/// tasks, its server's and openraft's inherit it. The log files are routed by it.
pub const SPAN: &str = "node";

/// The span of node `name`'s events.
pub fn span(name: &str) -> tracing::Span {
    tracing::info_span!(SPAN, name = name)
}

/// How long a stopping node waits for openraft's tasks to release its storage.
const STORAGE_CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything a node needs to start, resolved from the topology and the state directory.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub id: NodeId,
    pub name: String,
    pub serial: String,
    pub hostname: String,
    pub role: Role,
    /// The fabric name; doubles as openraft's cluster name.
    pub fabric: String,
    /// Where the Raft database lives.
    pub data_dir: PathBuf,
    /// For members: the root's gRPC address, to ask for admission.
    pub root_addr: Option<SocketAddr>,
    /// Raft voters including the root; members past this join as learners.
    pub voters: usize,
    pub raft: RaftSettings,
    /// The bearer token the admin service requires.
    pub admin_token: String,
    /// CA certificates the node trusts out of the box (the fabric's bundle).
    pub trust_anchors: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// Names resolved before the system resolver (the topology's `[dns]`).
    pub dns: BTreeMap<String, IpAddr>,
    /// Time between two EMS check rounds.
    pub check_interval: Duration,
    /// Where FortiCloud and EMS Cloud are, when the topology has a FortiCloud account.
    pub cloud: Option<CloudAccess>,
    /// The FortiOS release the fabric runs (`[fabric] firmware`): the schemas, the
    /// version `get system status` reports.
    pub firmware: Firmware,
    /// The administrator the topology gives every node.
    pub admin: AdminSpec,
    /// The REST API users the topology gives every node.
    pub api_users: Vec<ApiUserSpec>,
    /// Every FortiGate of the fabric as the topology lists it, this one included: the
    /// names and serials the fabric monitor shows beside the Raft ids.
    pub fabric_nodes: Vec<NodeSpec>,
    /// The node's certificate on the fabric's own connections (CN = its serial), with
    /// the fabric CA it requires of its peers.
    pub credentials: Credentials,
    /// The faults on the node's links; they outlive the node, as a network outlives a
    /// reboot.
    pub links: Links,
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("node {node}: {source}")]
    Storage { node: String, source: Box<OpenError> },
    #[error(
        "node {node}: cannot restore its state from {path}: {source}; the node does not start, and the file is left as it is"
    )]
    Restore {
        node: String,
        path: PathBuf,
        source: Box<redb::Error>,
    },
    #[error("node {node}: invalid Raft settings: {message}")]
    RaftConfig { node: String, message: String },
    #[error("node {node}: Raft failed: {message}")]
    Raft { node: String, message: String },
    #[error("node {node} is a member but no root address was given")]
    NoRoot { node: String },
    #[error("node {node}: {source}")]
    Local { node: String, source: LocalError },
    #[error("node {node}: cannot write the topology's accounts: {message}")]
    Accounts { node: String, message: String },
    #[error("node {node}: {source}")]
    Tls { node: String, source: TlsError },
}

/// Why the root refused to admit a member.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("only the fabric root admits members")]
    NotRoot,
    #[error("the fabric root is not leading yet; ask again")]
    NotLeader,
    #[error("membership change failed: {0}")]
    Membership(String),
    #[error(
        "{serial} is not authorized yet: it waits in the root's pending list until \
         `config system csf` / `config trusted-list` accepts it"
    )]
    Pending { serial: String },
    #[error("{serial} is denied by the root's `config system csf` / `config trusted-list`")]
    Denied { serial: String },
    #[error("no member of this fabric's topology has node id {id} and serial {serial}")]
    UnknownMember { id: NodeId, serial: String },
}

/// A handle on a started node, cheap to clone; what the gRPC services and the harness use.
#[derive(Clone)]
pub struct Node {
    shared: Arc<Shared>,
}

/// Where a node is reached: the addresses its server listens on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeAddrs {
    /// The gRPC admin, join and Raft service.
    pub grpc: SocketAddr,
    /// The FortiOS REST API.
    pub https: SocketAddr,
    /// The FortiOS CLI over SSH.
    pub ssh: SocketAddr,
}

struct Shared {
    config: NodeConfig,
    identity: NodeIdentity,
    addrs: NodeAddrs,
    raft: Raft,
    /// How many times the Raft log has synced to disk.
    log_syncs: crate::raft::log::Syncs,
    config_rx: watch::Receiver<Arc<ConfigDb>>,
    /// Serializes membership changes on the root: openraft allows one at a time.
    join_lock: tokio::sync::Mutex<()>,
    /// On the root: members waiting to be added as learners by the next membership
    /// change, with where to say how it went. A std Mutex: nothing awaits while it is held.
    joining: std::sync::Mutex<Vec<Joining>>,
    checker: CheckerSetup,
    ems_tx: watch::Sender<CheckerStatus>,
    /// The tables this node keeps itself. A std Mutex: nothing awaits while it is held.
    local: std::sync::Mutex<LocalConfig>,
    /// What the CLI and the checker see: the replicated configuration with the local
    /// tables over it.
    effective_tx: watch::Sender<Arc<ConfigDb>>,
    /// Starts a check round now.
    ems_wake: Arc<tokio::sync::Notify>,
    /// Failed logins per address, for the lockout. A std Mutex: nothing awaits while it
    /// is held.
    throttle: std::sync::Mutex<accounts::LoginThrottle>,
    /// Opens the node's connections to its peers.
    dialer: Dialer,
    /// When the leader last reached this node (appended or sent a heartbeat). A std
    /// Mutex: nothing awaits while it is held.
    leader_contact: std::sync::Mutex<Option<Instant>>,
    /// On the root: the members turned away for want of a trusted-list decision. A std
    /// Mutex: nothing awaits while it is held.
    pending: std::sync::Mutex<PendingBook>,
    /// On a member: what the root last answered to its request to join, and the index the
    /// node had applied then.
    admission: std::sync::Mutex<(Admission, u64)>,
    /// On the root: writes waiting for the proposer to put them in the log.
    proposals: proposer::Queue,
}

/// A point-in-time view of one node, as `fabricsim status` shows it.
#[derive(Clone, Debug)]
pub struct NodeStatus {
    pub id: NodeId,
    pub name: String,
    pub serial: String,
    pub hostname: String,
    pub role: Role,
    pub raft_state: String,
    pub term: u64,
    pub applied: u64,
    pub revision: u64,
    pub config_hash: String,
    pub leader: Option<NodeId>,
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
    /// The node's own EMS results, one per fctems entry, by name.
    pub ems: Vec<EmsStatus>,
    /// The configuration revision the node's last completed EMS check round covered.
    pub checked_revision: Option<u64>,
    /// Whether the node keeps its own EMS tables (`configuration-sync local`).
    pub sync_local: bool,
    /// The REST API address the node serves.
    pub https: SocketAddr,
    /// The SSH CLI address the node serves.
    pub ssh: SocketAddr,
    /// How long ago this node last heard from its group: for the leader, since a quorum
    /// of voters last answered it; for the others, since the leader last reached them.
    /// `None` before the first time.
    pub leader_contact_ms: Option<u64>,
}

impl Node {
    pub fn id(&self) -> NodeId {
        self.shared.config.id
    }

    pub fn name(&self) -> &str {
        &self.shared.config.name
    }

    pub fn role(&self) -> Role {
        self.shared.config.role
    }

    pub fn serial(&self) -> &str {
        &self.shared.config.serial
    }

    /// The address the node's gRPC server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addrs.grpc
    }

    /// Every address the node's server listens on.
    pub fn addrs(&self) -> NodeAddrs {
        self.shared.addrs
    }

    /// For a member: the root's gRPC address, where it asks to be admitted.
    pub fn root_addr(&self) -> Option<SocketAddr> {
        self.shared.config.root_addr
    }

    pub fn raft(&self) -> &Raft {
        &self.shared.raft
    }

    /// How many times this node's Raft log has synced to disk since it started.
    pub fn log_syncs(&self) -> u64 {
        self.shared.log_syncs.get()
    }

    /// Every FortiGate of the fabric, as the topology lists them.
    pub fn fabric_nodes(&self) -> &[NodeSpec] {
        &self.shared.config.fabric_nodes
    }

    pub fn admin_token(&self) -> &str {
        &self.shared.config.admin_token
    }

    /// A receiver that sees every configuration this node applies.
    pub fn config_watch(&self) -> watch::Receiver<Arc<ConfigDb>> {
        self.shared.config_rx.clone()
    }

    pub fn status(&self) -> NodeStatus {
        let metrics = self.shared.raft.metrics().borrow().clone();
        let config = self.shared.config_rx.borrow().clone();
        let report = self.shared.ems_tx.borrow().clone();
        let membership = metrics.membership_config.membership();
        NodeStatus {
            id: self.id(),
            name: self.shared.config.name.clone(),
            serial: self.shared.config.serial.clone(),
            hostname: self.shared.config.hostname.clone(),
            role: self.shared.config.role,
            raft_state: self
                .kept_out(metrics.last_applied.map_or(0, |id| id.index))
                .map_or_else(
                    || server_state_name(metrics.state, membership.learner_ids().any(|id| id == self.id())),
                    str::to_owned,
                ),
            term: metrics.current_term,
            applied: metrics.last_applied.map_or(0, |id| id.index),
            revision: config.revision(),
            config_hash: config.hash(),
            leader: metrics.current_leader,
            voters: membership.voter_ids().collect(),
            learners: membership.learner_ids().collect(),
            ems: report.results.into_values().collect(),
            checked_revision: report.checked_revision,
            sync_local: self.sync_local(),
            https: self.shared.addrs.https,
            ssh: self.shared.addrs.ssh,
            leader_contact_ms: self.leader_contact_ms(&metrics),
        }
    }

    fn leader_contact_ms(&self, metrics: &openraft::RaftMetrics<NodeId, BasicNode>) -> Option<u64> {
        if metrics.current_leader == Some(self.id()) {
            return metrics.millis_since_quorum_ack;
        }
        let contact = *self.shared.leader_contact.lock().expect("leader contact lock");
        contact.map(|at| u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    /// On a leading root with other voters: how long no quorum of them has answered, when
    /// that is longer than twice the longest election timeout. A write now would wait for
    /// a commit that cannot come.
    fn quorum_silence_ms(&self) -> Option<u64> {
        let metrics = self.shared.raft.metrics().borrow().clone();
        if metrics.current_leader != Some(self.id()) || metrics.membership_config.voter_ids().count() < 2 {
            return None;
        }
        let limit = self.shared.config.raft.election_timeout_max_ms.saturating_mul(2);
        metrics.millis_since_quorum_ack.filter(|ms| *ms > limit)
    }

    /// Records that the leader reached this node just now.
    pub fn heard_from_leader(&self) {
        *self.shared.leader_contact.lock().expect("leader contact lock") = Some(Instant::now());
    }

    /// Opens this node's connections to its peers (mutual TLS over its links).
    pub fn dialer(&self) -> &Dialer {
        &self.shared.dialer
    }

    /// The faults on this node's links.
    pub fn links(&self) -> &Links {
        &self.shared.config.links
    }

    /// The node's certificate and the CA it requires of peers.
    pub fn credentials(&self) -> &Credentials {
        &self.shared.config.credentials
    }

    /// Applies a change to this node's own tables and publishes the new view; `None` when
    /// the change is the fabric's, to propose. Deciding and applying under one lock keeps a
    /// concurrent `configuration-sync` switch from landing between them.
    fn apply_local(&self, command: &ConfigCommand) -> Option<Result<Applied, CommitError>> {
        let replicated = self.shared.config_rx.borrow().clone();
        let mut local = self.shared.local.lock().expect("local config lock");
        match local.owns(command) {
            Some(true) => {}
            Some(false) => return None,
            None => {
                return Some(Err(CommitError::Unavailable(
                    "this change mixes the node's own tables with the fabric's; make them one at a time"
                        .to_owned(),
                )));
            }
        }
        let applied = local.apply(command, &replicated).map_err(|e| match e {
            LocalApplyError::Refused(refused) => CommitError::Refused(refused),
            LocalApplyError::Write(write) => CommitError::Unavailable(write.to_string()),
        });
        if applied.is_ok() {
            self.shared
                .effective_tx
                .send_replace(Arc::new(local.effective(&replicated)));
        }
        Some(applied)
    }

    /// Whether this node keeps its own EMS tables (`configuration-sync local`).
    pub fn sync_local(&self) -> bool {
        self.shared.local.lock().expect("local config lock").sync_local()
    }

    /// A receiver that sees every change of this node's EMS results.
    pub fn ems_watch(&self) -> watch::Receiver<CheckerStatus> {
        self.shared.ems_tx.subscribe()
    }

    /// Starts an EMS check round now.
    pub fn check_ems_now(&self) {
        self.shared.ems_wake.notify_one();
    }

    /// Proposes a configuration command. Only the root proposes; it waits a bounded time
    /// for its own leadership (after a restart it may not lead yet).
    pub async fn propose(&self, command: ConfigCommand) -> Result<Applied, CommitError> {
        if self.role() != Role::Root {
            return Err(CommitError::Unavailable(
                "configuration changes are made on the fabric root".to_owned(),
            ));
        }
        if let Some(silent_ms) = self.quorum_silence_ms() {
            return Err(CommitError::Unavailable(format!(
                "no quorum of voters has answered the fabric root for {silent_ms} ms (is it cut off?): \
                 the change is not applied; try again once the voters answer"
            )));
        }
        proposer::propose(&self.shared.proposals, command).await
    }

    /// Writes `proposal` as one log entry and waits for it to be committed and applied:
    /// what each of its commands did. Waits a bounded time for the root's own leadership
    /// (after a restart it may not lead yet) and for a quorum.
    async fn write_entry(&self, proposal: Proposal) -> Result<ApplyResult, CommitError> {
        let deadline = tokio::time::Instant::now() + LEADERSHIP_WAIT;
        let timeout = commit_timeout(&self.shared.config.raft);
        loop {
            let write = self.shared.raft.client_write(proposal.clone());
            let Ok(written) = tokio::time::timeout(timeout, write).await else {
                return Err(CommitError::Unavailable(format!(
                    "the fabric did not commit the change within {} ms: too few voters answer \
                     the root. It is not acknowledged; `show` tells whether it applied later.",
                    timeout.as_millis()
                )));
            };
            match written {
                Ok(response) => return Ok(response.data),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))
                    if tokio::time::Instant::now() < deadline =>
                {
                    let _ = self.shared.raft.trigger().elect().await;
                    tokio::time::sleep(KEEPER_INTERVAL).await;
                }
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                    return Err(CommitError::Unavailable(
                        "the fabric root has not regained the Raft leadership yet; try again".to_owned(),
                    ));
                }
                Err(e) => {
                    return Err(CommitError::Unavailable(format!(
                        "the Raft log refused the change: {e}"
                    )));
                }
            }
        }
    }

    /// Admits a member on the root once its serial is authorized (see [`admission`]): as
    /// a learner first, then as a voter while the fabric has fewer voters than configured.
    /// Asking again is harmless; a member not authorized is noted as pending.
    pub async fn admit(&self, claim: JoinClaim) -> Result<bool, JoinError> {
        if self.role() != Role::Root {
            return Err(JoinError::NotRoot);
        }
        self.authorize(&claim)?;
        let (id, node) = (
            claim.id,
            BasicNode {
                addr: claim.addr.clone(),
            },
        );
        let raft = &self.shared.raft;
        if self
            .membership_while_leading()?
            .membership()
            .get_node(&id)
            .is_none()
        {
            self.add_learner(id, node.clone()).await?;
            tracing::info!(serial = claim.serial, name = claim.name, "member admitted");
        }
        let _guard = self.shared.join_lock.lock().await;
        let membership = self.membership_while_leading()?;
        if membership
            .membership()
            .get_node(&id)
            .is_some_and(|known| known.addr != node.addr)
        {
            let nodes = BTreeMap::from([(id, node)]);
            bounded_membership(raft.change_membership(ChangeMembers::SetNodes(nodes), false)).await?;
        }
        self.shared
            .pending
            .lock()
            .expect("pending lock")
            .forget(&claim.serial);
        // A changed address leaves the voters as they were.
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        if voters.contains(&id) {
            return Ok(true);
        }
        if voters.len() >= self.shared.config.voters {
            return Ok(false);
        }
        self.caught_up(id).await?;
        bounded_membership(raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false))
            .await?;
        Ok(true)
    }

    /// The Raft membership, or [`JoinError::NotLeader`] when this node does not lead.
    fn membership_while_leading(
        &self,
    ) -> Result<Arc<openraft::StoredMembership<NodeId, BasicNode>>, JoinError> {
        let metrics = self.shared.raft.metrics();
        let metrics = metrics.borrow();
        if metrics.current_leader != Some(self.id()) {
            return Err(JoinError::NotLeader);
        }
        Ok(metrics.membership_config.clone())
    }

    /// Adds `id` as a learner, in one membership change with every member that asked to
    /// join meanwhile: a hundred members starting together cost a few changes, not a
    /// hundred one after another (each rebuilds the root's replication to every node).
    async fn add_learner(&self, id: NodeId, node: BasicNode) -> Result<(), JoinError> {
        let (reply, added) = tokio::sync::oneshot::channel();
        self.shared
            .joining
            .lock()
            .expect("joining lock")
            .push(Joining { id, node, reply });
        {
            let _guard = self.shared.join_lock.lock().await;
            let batch = std::mem::take(&mut *self.shared.joining.lock().expect("joining lock"));
            if !batch.is_empty() {
                let (nodes, replies): (BTreeMap<NodeId, BasicNode>, Vec<_>) = batch
                    .into_iter()
                    .map(|joining| ((joining.id, joining.node), joining.reply))
                    .unzip();
                let change = self
                    .shared
                    .raft
                    .change_membership(ChangeMembers::AddNodes(nodes), false);
                let result = bounded_membership(change)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string());
                for reply in replies {
                    let _ = reply.send(result.clone());
                }
            }
        }
        match added.await {
            Ok(result) => result.map_err(JoinError::Membership),
            Err(_) => Err(JoinError::Membership(
                "the membership change that carried this member stopped; ask again".to_owned(),
            )),
        }
    }

    /// Waits until the root has replicated its whole log to learner `id`, as a voter must
    /// have it before it counts towards a quorum.
    async fn caught_up(&self, id: NodeId) -> Result<(), JoinError> {
        let raft = &self.shared.raft;
        let last = raft.metrics().borrow().last_log_index;
        raft.wait(Some(CATCH_UP_TIMEOUT))
            .metrics(
                |metrics| {
                    let matched = metrics
                        .replication
                        .as_ref()
                        .and_then(|replication| replication.get(&id).cloned().flatten());
                    matched.map(|log_id| log_id.index) >= last
                },
                "the learner catches up",
            )
            .await
            .map(|_| ())
            .map_err(|_| {
                JoinError::Membership(format!(
                    "node {id} is a learner but has not caught up yet; ask again"
                ))
            })
    }
}

/// A member waiting to be added as a learner, and where to say how it went.
struct Joining {
    id: NodeId,
    node: BasicNode,
    reply: tokio::sync::oneshot::Sender<Result<(), String>>,
}

/// A membership change, given up after [`MEMBERSHIP_TIMEOUT`] (the member asks again).
async fn bounded_membership<T, E: std::fmt::Display>(
    change: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, JoinError> {
    match tokio::time::timeout(MEMBERSHIP_TIMEOUT, change).await {
        Ok(result) => result.map_err(|e| JoinError::Membership(e.to_string())),
        Err(_) => Err(JoinError::Membership(
            "the membership change did not commit in time; ask again".to_owned(),
        )),
    }
}

fn server_state_name(state: ServerState, is_learner: bool) -> String {
    match state {
        ServerState::Leader => "leader",
        ServerState::Candidate => "candidate",
        ServerState::Shutdown => "shutdown",
        ServerState::Learner => "learner",
        ServerState::Follower if is_learner => "learner",
        ServerState::Follower => "follower",
    }
    .to_owned()
}

impl Backend for Node {
    fn identity(&self) -> &NodeIdentity {
        &self.shared.identity
    }

    fn config(&self) -> Arc<ConfigDb> {
        self.shared.effective_tx.borrow().clone()
    }

    fn clock(&self) -> &dyn crate::calendar::Clock {
        &crate::calendar::SystemClock
    }

    async fn commit(&self, command: ConfigCommand) -> Result<Applied, CommitError> {
        match self.apply_local(&command) {
            Some(applied) => applied,
            None => self.propose(command).await,
        }
    }

    async fn fetch_certificate(&self, entry: &str) -> Result<CertificateOffer, String> {
        let checker = &self.shared.checker;
        let db = Backend::config(self);
        let target = checker
            .target(&db, entry)
            .ok_or_else(|| format!("EMS {} has no server to connect to.", db.fctems_label(entry)))?;
        let mut offer = connector::fetch_offer(&target, &checker.trust(&db), &checker.resolver)
            .await
            .map_err(|e| e.to_string())?;
        let remote = crate::config::schema::REMOTE_CERTIFICATES
            .field("remote")
            .expect("the remote certificate table has a remote field");
        offer.pem = crate::config::parse_value(remote, &offer.pem).map_err(|e| {
            let label = db.fctems_label(entry);
            format!("EMS {label} presented a certificate that cannot be stored: {e}")
        })?;
        Ok(offer)
    }

    async fn forticloud(&self) -> Result<connector::forticloud::CloudRecord, String> {
        self.shared.checker.forticloud().await
    }

    fn pending_members(&self) -> Vec<PendingMember> {
        let db = self.shared.config_rx.borrow().clone();
        self.shared.pending.lock().expect("pending lock").waiting(&db)
    }

    async fn test_connectivity(&self, entry: &str) -> Result<EmsStatus, String> {
        let db = Backend::config(self);
        let status = self.shared.checker.check(&db, entry).await;
        self.shared.ems_tx.send_modify(|report| {
            report.results.insert(db.fctems_label(entry), status.clone());
        });
        Ok(status)
    }
}

/// A node with its tasks running.
pub struct RunningNode {
    node: Node,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    /// Tells when openraft's tasks have all dropped the node's database and it is closed.
    database: crate::raft::store::Closed,
}

/// The node's tasks: following the replicated configuration, the EMS checker, and on the
/// root keeping the leadership, writing the queued proposals and keeping unauthorized
/// members out. Each ends when `shutdown` is cancelled.
fn spawn_tasks(
    node: &Node,
    queued: tokio::sync::mpsc::Receiver<proposer::Queued>,
    shutdown: &CancellationToken,
) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    tasks.spawn(follow_replicated(node.clone(), shutdown.clone()).in_current_span());
    tasks.spawn(
        checker::run(
            node.shared.checker.clone(),
            node.shared.effective_tx.subscribe(),
            node.shared.ems_tx.clone(),
            node.shared.ems_wake.clone(),
            shutdown.clone(),
        )
        .in_current_span(),
    );
    if node.role() == Role::Root {
        tasks.spawn(keep_leadership(node.clone(), shutdown.clone()).in_current_span());
        tasks.spawn(proposer::run(node.clone(), queued, shutdown.clone()).in_current_span());
        tasks.spawn(admission::keep_out_unauthorized(node.clone(), shutdown.clone()).in_current_span());
    }
    tasks
}

impl RunningNode {
    /// Starts a node whose server listens on `addrs` (the caller serves them). Returns
    /// once Raft runs.
    pub async fn start(config: NodeConfig, addrs: NodeAddrs) -> Result<RunningNode, NodeError> {
        let name = config.name.clone();
        if config.role == Role::Member && config.root_addr.is_none() {
            return Err(NodeError::NoRoot { node: name });
        }
        let dialer =
            Dialer::new(&config.credentials, config.links.clone()).map_err(|source| NodeError::Tls {
                node: name.clone(),
                source,
            })?;
        let OpenRaft {
            raft,
            config_rx,
            database,
            log_syncs,
        } = open_raft(&config, dialer.clone()).await?;
        let checker = checker_setup(&config, &addrs);
        let (ems_tx, _) = watch::channel(CheckerStatus::default());
        let mut local =
            LocalConfig::open(&config.data_dir, config.firmware).map_err(|source| NodeError::Local {
                node: name.clone(),
                source,
            })?;
        seed_accounts(&mut local, &config, &config_rx.borrow()).map_err(|message| NodeError::Accounts {
            node: name.clone(),
            message,
        })?;
        let (effective_tx, _) = watch::channel(Arc::new(local.effective(&config_rx.borrow())));
        let (proposals, queued) = proposer::queue();
        let identity = NodeIdentity {
            name: config.name.clone(),
            hostname: config.hostname.clone(),
            serial: config.serial.clone(),
            is_root: config.role == Role::Root,
        };
        let node = Node {
            shared: Arc::new(Shared {
                config,
                identity,
                addrs,
                raft,
                log_syncs,
                config_rx,
                join_lock: tokio::sync::Mutex::new(()),
                joining: std::sync::Mutex::new(Vec::new()),
                checker,
                ems_tx,
                ems_wake: Arc::new(tokio::sync::Notify::new()),
                local: std::sync::Mutex::new(local),
                effective_tx,
                throttle: std::sync::Mutex::new(accounts::LoginThrottle::default()),
                dialer,
                leader_contact: std::sync::Mutex::new(None),
                pending: std::sync::Mutex::new(PendingBook::default()),
                admission: std::sync::Mutex::new((Admission::default(), 0)),
                proposals,
            }),
        };
        let shutdown = CancellationToken::new();
        if node.role() == Role::Root {
            initialize_once(&node).await?;
        }
        let tasks = spawn_tasks(&node, queued, &shutdown);
        Ok(RunningNode {
            node,
            shutdown,
            tasks,
            database,
        })
    }

    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Stops serving, shuts Raft down and joins every task.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        self.stop_raft().await;
        if tokio::time::timeout(STOP_TIMEOUT, join_all(&mut self.tasks))
            .await
            .is_err()
        {
            tracing::warn!(
                node = self.node.name(),
                "node tasks still running after shutdown; aborted"
            );
            self.tasks.abort_all();
            join_all(&mut self.tasks).await;
        }
        self.wait_storage_closed().await;
    }

    /// Stops the node as abruptly as a process kill: tasks are aborted, not asked. What is
    /// on disk is what an acknowledged write left there.
    pub async fn kill(mut self) {
        self.shutdown.cancel();
        self.tasks.abort_all();
        self.stop_raft().await;
        join_all(&mut self.tasks).await;
        self.wait_storage_closed().await;
    }

    /// Stops openraft's core, waiting at most [`STOP_TIMEOUT`].
    async fn stop_raft(&self) {
        let stop = self.node.shared.raft.shutdown();
        if tokio::time::timeout(STOP_TIMEOUT, stop).await.is_err() {
            tracing::warn!(node = self.node.name(), "Raft core did not stop in time");
        }
    }

    /// openraft's replication and snapshot tasks end shortly after its core; the node is
    /// gone, and its database can be opened again, only once they have.
    async fn wait_storage_closed(&self) {
        if tokio::time::timeout(STORAGE_CLOSE_TIMEOUT, self.database.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                node = self.node.name(),
                "Raft storage still in use after shutdown"
            );
        }
    }
}

/// What the node's EMS checker needs of its configuration.
fn checker_setup(config: &NodeConfig, addrs: &NodeAddrs) -> CheckerSetup {
    CheckerSetup {
        own_ip: addrs.grpc.ip(),
        serial: config.serial.clone(),
        hostname: config.hostname.clone(),
        anchors: config.trust_anchors.clone(),
        resolver: Resolver {
            table: config.dns.clone(),
        },
        interval: config.check_interval,
        cloud: config.cloud,
    }
}

/// Waits for every task of `tasks` to end.
async fn join_all(tasks: &mut JoinSet<()>) {
    while tasks.join_next().await.is_some() {}
}

/// What [`open_raft`] started.
struct OpenRaft {
    raft: Raft,
    /// Every configuration the node applies.
    config_rx: watch::Receiver<Arc<ConfigDb>>,
    /// Tells when openraft has let go of the database.
    database: crate::raft::store::Closed,
    log_syncs: crate::raft::log::Syncs,
}

/// Opens the node's database and starts openraft on it.
async fn open_raft(config: &NodeConfig, dialer: Dialer) -> Result<OpenRaft, NodeError> {
    let node = || config.name.clone();
    let store = open_store(&config.data_dir)
        .await
        .map_err(|source| NodeError::Storage {
            node: node(),
            source: Box::new(source),
        })?;
    let database = store.watch_closed();
    let (state_machine, config_rx) =
        StateMachine::open(store.clone(), config.firmware).map_err(|source| NodeError::Restore {
            node: node(),
            path: store.path().to_owned(),
            source: Box::new(source),
        })?;
    let raft_config = raft_config(config).map_err(|e| NodeError::RaftConfig {
        node: node(),
        message: e.to_string(),
    })?;
    let log = LogStore::open(&store).map_err(|source| NodeError::Storage {
        node: node(),
        source: Box::new(source),
    })?;
    let log_syncs = log.syncs();
    let raft = Raft::new(
        config.id,
        Arc::new(raft_config),
        Network::new(dialer),
        log,
        state_machine,
    )
    .await
    .map_err(|e| NodeError::Raft {
        node: node(),
        message: e.to_string(),
    })?;
    Ok(OpenRaft {
        raft,
        config_rx,
        database,
        log_syncs,
    })
}

/// Reads everything node `name` keeps in `data_dir` (its Raft database, down to every
/// stored value and the snapshot's configuration, and its own tables) without starting it,
/// so that a fabric can report every damaged node before it starts any. A node that has
/// kept nothing yet passes; nothing is created.
pub fn check_data(name: &str, data_dir: &std::path::Path, firmware: Firmware) -> Result<(), NodeError> {
    if data_dir.join(crate::raft::store::DATABASE_FILE).exists() {
        let store = Store::open(data_dir).map_err(|source| NodeError::Storage {
            node: name.to_owned(),
            source: Box::new(source),
        })?;
        StateMachine::open(store.clone(), firmware).map_err(|source| NodeError::Restore {
            node: name.to_owned(),
            path: store.path().to_owned(),
            source: Box::new(source),
        })?;
    }
    Wal::check(data_dir).map_err(|source| NodeError::Storage {
        node: name.to_owned(),
        source: Box::new(source),
    })?;
    LocalConfig::open(data_dir, firmware).map_err(|source| NodeError::Local {
        node: name.to_owned(),
        source,
    })?;
    Ok(())
}

/// Moves a member's Raft database and log aside (`raft.redb.damaged-<time>`,
/// `raft-log.damaged-<time>`), and its own tables
/// too when they cannot be read, so that it starts empty and catches up from the root;
/// nothing is deleted. Returns where each file went. Only with the node stopped.
pub fn set_aside_data(data_dir: &std::path::Path, firmware: Firmware) -> std::io::Result<Vec<PathBuf>> {
    let stamp = crate::calendar::rfc3339(crate::calendar::unix_now());
    let mut moved = Vec::new();
    let mut files = vec![
        data_dir.join(crate::raft::store::DATABASE_FILE),
        data_dir.join(crate::raft::wal::LOG_DIR),
    ];
    if LocalConfig::open(data_dir, firmware).is_err() {
        files.push(data_dir.join(local::LOCAL_FILE));
    }
    for file in files.into_iter().filter(|file| file.exists()) {
        let mut aside = PathBuf::from(format!("{}.damaged-{stamp}", file.display()));
        let mut n = 1;
        while aside.exists() {
            n += 1;
            aside = PathBuf::from(format!("{}.damaged-{stamp}-{n}", file.display()));
        }
        std::fs::rename(&file, &aside)?;
        moved.push(aside);
    }
    Ok(moved)
}

/// Opens the node's database. Within one process a node stopped a moment ago may still be
/// closing it (the last handle's drop runs after its tasks are gone), so "in use" is asked
/// again for a short while before it is believed.
async fn open_store(data_dir: &std::path::Path) -> Result<Store, OpenError> {
    let deadline = tokio::time::Instant::now() + STORAGE_CLOSE_TIMEOUT;
    loop {
        match Store::open(data_dir) {
            Err(OpenError::InUse { .. }) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            result => return result,
        }
    }
}

fn raft_config(config: &NodeConfig) -> Result<openraft::Config, Box<openraft::ConfigError>> {
    let settings = &config.raft;
    openraft::Config {
        cluster_name: config.fabric.clone(),
        heartbeat_interval: settings.heartbeat_ms,
        election_timeout_min: settings.election_timeout_min_ms,
        election_timeout_max: settings.election_timeout_max_ms,
        // See the module docs: members never start elections.
        enable_elect: config.role == Role::Root,
        snapshot_policy: crate::raft::snapshot_policy(settings.snapshot_every, config.id),
        max_in_snapshot_log_to_keep: settings.keep_logs,
        // A snapshot of the configuration is small: send it in one message.
        snapshot_max_chunk_size: (crate::raft::MAX_MESSAGE_BYTES / 2) as u64,
        install_snapshot_timeout: 10_000,
        ..Default::default()
    }
    .validate()
    .map_err(Box::new)
}

/// Writes the topology's administrator and API users into the node's own tables.
fn seed_accounts(local: &mut LocalConfig, config: &NodeConfig, replicated: &ConfigDb) -> Result<(), String> {
    let command = accounts::seed_command(&local.effective(replicated), &config.admin, &config.api_users);
    local
        .apply(&command, replicated)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Recomputes the node's view whenever the replicated configuration changes.
async fn follow_replicated(node: Node, shutdown: CancellationToken) {
    let mut config_rx = node.config_watch();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = config_rx.changed() => if changed.is_err() { return },
        }
        let replicated = config_rx.borrow_and_update().clone();
        let view = node
            .shared
            .local
            .lock()
            .expect("local config lock")
            .effective(&replicated);
        node.shared.effective_tx.send_replace(Arc::new(view));
    }
}

/// On the root's first boot, creates the Raft group with the root as its only voter.
async fn initialize_once(node: &Node) -> Result<(), NodeError> {
    let raft = node.raft();
    let raft_error = |message: String| NodeError::Raft {
        node: node.name().to_owned(),
        message,
    };
    if raft
        .is_initialized()
        .await
        .map_err(|e| raft_error(e.to_string()))?
    {
        return Ok(());
    }
    let members = BTreeMap::from([(
        node.id(),
        BasicNode {
            addr: node.addr().to_string(),
        },
    )]);
    raft.initialize(members)
        .await
        .map_err(|e| raft_error(e.to_string()))
}

/// The root's leadership keeper: elects itself when it does not lead, and keeps its own
/// address current in the membership (it changes when the root restarts on port 0).
async fn keep_leadership(node: Node, shutdown: CancellationToken) {
    let raft = node.raft().clone();
    let mut interval = tokio::time::interval(KEEPER_INTERVAL);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        let metrics = raft.metrics().borrow().clone();
        match metrics.state {
            ServerState::Leader => {
                let addr = node.addr().to_string();
                let known = metrics
                    .membership_config
                    .membership()
                    .get_node(&node.id())
                    .map(|n| n.addr.clone());
                // Only while a quorum answers: a change that cannot commit would hold up
                // the members' own address changes, and so the quorum, for good (all of
                // them move when the whole fabric restarts on port 0).
                let quorum_answers = metrics
                    .millis_since_quorum_ack
                    .is_some_and(|ms| ms <= node.shared.config.raft.election_timeout_min_ms);
                if quorum_answers && known.is_some_and(|known| known != addr) {
                    let nodes = BTreeMap::from([(node.id(), BasicNode { addr })]);
                    let _ = raft
                        .change_membership(ChangeMembers::SetNodes(nodes), false)
                        .await;
                }
            }
            ServerState::Follower => {
                let _ = raft.trigger().elect().await;
            }
            ServerState::Candidate | ServerState::Learner | ServerState::Shutdown => {}
        }
    }
}

/// What a node gets from whoever starts it, beside its topology: where its data is, how
/// to reach the root, what it trusts and presents.
pub struct Provision {
    pub data_dir: PathBuf,
    /// For members: the root's gRPC address.
    pub root_addr: Option<SocketAddr>,
    pub admin_token: String,
    pub trust_anchors: Vec<rustls::pki_types::CertificateDer<'static>>,
    pub cloud: Option<CloudAccess>,
    pub credentials: Credentials,
    pub links: Links,
}

impl NodeConfig {
    /// The configuration of `spec`'s node in `topology`, placed as `provision` says.
    pub fn from_topology(
        topology: &crate::topology::Topology,
        spec: &crate::topology::NodeSpec,
        provision: Provision,
    ) -> NodeConfig {
        NodeConfig {
            id: spec.id,
            name: spec.name.clone(),
            serial: spec.serial.clone(),
            hostname: spec.hostname.clone(),
            role: spec.role,
            fabric: topology.fabric.name.clone(),
            data_dir: provision.data_dir,
            root_addr: if spec.role == Role::Root {
                None
            } else {
                provision.root_addr
            },
            voters: topology.fabric.voters,
            raft: topology.raft.clone(),
            admin_token: provision.admin_token,
            trust_anchors: provision.trust_anchors,
            dns: topology.dns.clone(),
            check_interval: Duration::from_secs(topology.checks.interval_secs),
            cloud: provision.cloud,
            firmware: topology.fabric.firmware,
            admin: topology.admin.clone(),
            api_users: topology.api_users.clone(),
            fabric_nodes: topology.nodes.clone(),
            credentials: provision.credentials,
            links: provision.links,
        }
    }
}
