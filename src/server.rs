//! A node with its sockets: the one place that composes a [`RunningNode`] with its
//! listeners.
//!
//! [`RunningServer::start`] takes the [`Listeners`] the caller bound (so the caller chooses
//! the ports, and a taken port is reported before anything starts), starts the node on
//! those addresses, serves [`crate::rpc`] on the gRPC listener and, for a member, asks the
//! root to admit it until the root answers. Stopping joins the server's tasks first, then
//! the node's.
//!
//! The server also serves the FortiOS REST API and GUI ([`crate::rest`]) on the HTTPS
//! listener, with the certificate the caller issued for the node, and the FortiOS CLI over
//! SSH ([`crate::ssh`]) on the SSH listener, with the node's host key from its data
//! directory. The REST API's view of the whole fabric ([`rest::FabricView`]) is composed
//! here: the node asks every node of the topology for its status over its own fabric
//! links, as `fabricsim status` does, and [`crate::status`] judges convergence.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::link::Protocol;
use crate::node::admission::Admission;
use crate::node::{Node, NodeAddrs, NodeConfig, NodeError, RunningNode};
use crate::rpc::client::{AdminConnection, Operator};
use crate::sim::ServerIdentity;
use crate::topology::Topology;
use crate::wire::proto::fabric::JoinRequest;
use crate::{rest, rpc, ssh, status};

/// How long a member waits before it asks the root again, at first; the wait doubles up to
/// [`JOIN_RETRY_MAX`].
const JOIN_RETRY: Duration = Duration::from_millis(300);
/// The longest wait between two requests to join: a root that comes up late is found
/// within this.
const JOIN_RETRY_MAX: Duration = Duration::from_secs(2);
/// How often an admitted member asks again, to learn that the root's trusted-list denied
/// it: within this of the denial it reports itself as denied.
const JOIN_RECHECK: Duration = Duration::from_secs(2);
/// How long a stopping server lets open calls finish before it drops them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a node and its server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("node {node}: cannot read its listener address: {source}")]
    Listener { node: String, source: std::io::Error },
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("node {node}: {source}")]
    HostKey {
        node: String,
        source: ssh::host_key::HostKeyError,
    },
    #[error("node {node}: {source}")]
    Tls {
        node: String,
        source: crate::link::TlsError,
    },
}

/// The sockets one node serves, bound by the caller.
pub struct Listeners {
    /// gRPC: admin CLI and status, member join, Raft.
    pub grpc: TcpListener,
    /// The FortiOS REST API.
    pub https: TcpListener,
    /// The FortiOS CLI over SSH.
    pub ssh: TcpListener,
}

impl Listeners {
    /// The addresses the listeners took.
    fn addrs(&self) -> std::io::Result<NodeAddrs> {
        Ok(NodeAddrs {
            grpc: self.grpc.local_addr()?,
            https: self.https.local_addr()?,
            ssh: self.ssh.local_addr()?,
        })
    }
}

/// A node serving gRPC, the REST API and SSH on its listeners.
pub struct RunningServer {
    node: RunningNode,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

impl RunningServer {
    /// Starts the node of `config`, one of `topology`'s, on `listeners`, presenting
    /// `https_identity` on the REST API. Returns once it serves gRPC; a member's admission
    /// continues in the background.
    pub async fn start(
        topology: &Topology,
        config: NodeConfig,
        listeners: Listeners,
        https_identity: ServerIdentity,
    ) -> Result<RunningServer, ServerError> {
        let addrs = listeners.addrs().map_err(|source| ServerError::Listener {
            node: config.name.clone(),
            source,
        })?;
        let host_key =
            ssh::host_key::load_or_create(&config.data_dir).map_err(|source| ServerError::HostKey {
                node: config.name.clone(),
                source,
            })?;
        let tls = config
            .credentials
            .server_config(&[Protocol::Grpc, Protocol::Raft])
            .map_err(|source| ServerError::Tls {
                node: config.name.clone(),
                source,
            })?;
        let node = RunningNode::start(config, addrs).await?;
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let Listeners { grpc, https, ssh } = listeners;
        // Every task runs in the caller's span: the node's (see `node::SPAN`).
        tasks.spawn(rpc::serve(node.node().clone(), grpc, tls, shutdown.clone()).in_current_span());
        let view = fabric_view(topology.clone(), node.node().clone());
        let rest = rest::serve(node.node().clone(), https, https_identity, view, shutdown.clone());
        tasks.spawn(
            async move {
                if let Err(error) = rest.await {
                    tracing::error!(%error, "REST API stopped");
                }
            }
            .in_current_span(),
        );
        tasks.spawn(ssh::serve(node.node().clone(), ssh, host_key, shutdown.clone()).in_current_span());
        if let Some(root) = node.node().root_addr() {
            tasks.spawn(join_fabric(node.node().clone(), root, shutdown.clone()).in_current_span());
        }
        tracing::info!(
            grpc = %addrs.grpc,
            https = %addrs.https,
            ssh = %addrs.ssh,
            "node started"
        );
        Ok(RunningServer {
            node,
            shutdown,
            tasks,
        })
    }

    pub fn node(&self) -> &Node {
        self.node.node()
    }

    /// Stops serving, then stops the node cleanly. Calls still open after
    /// five seconds (a peer that never hangs up) are dropped.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        let drained = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(DRAIN_TIMEOUT, drained).await.is_err() {
            tracing::warn!(
                node = self.node().name(),
                "open calls outlived the drain; dropped"
            );
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
        }
        let name = self.node().name().to_owned();
        self.node.shutdown().await;
        tracing::info!(node = name, "node stopped");
    }

    /// Stops as abruptly as a process kill (see [`RunningNode::kill`]).
    pub async fn kill(mut self) {
        self.shutdown.cancel();
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        self.node.kill().await;
    }
}

/// Runs a node of `topology` and its server until `shutdown` completes, then stops them
/// cleanly.
pub async fn run(
    topology: &Topology,
    config: NodeConfig,
    listeners: Listeners,
    https_identity: ServerIdentity,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let running = RunningServer::start(topology, config, listeners, https_identity).await?;
    shutdown.await;
    running.shutdown().await;
    Ok(())
}

/// The fabric as `node` sees it: every node's status, asked over the node's own links
/// (a cut link shows as an unreachable node) with the admin token, judged by
/// [`status::FabricReport::assemble`], plus each member's upstream for drawing the tree.
/// A node is asked at the address the Raft membership holds for it, else at the
/// topology's, over one connection per address kept from call to call: the GUI asks every
/// second.
fn fabric_view(topology: Topology, node: Node) -> rest::FabricView {
    let topology = Arc::new(topology);
    let operator = Operator::with_dialer(node.admin_token(), node.dialer().clone());
    let connections: Arc<Mutex<BTreeMap<SocketAddr, AdminConnection>>> = Arc::default();
    Arc::new(move || {
        let (topology, node, operator, connections) = (
            topology.clone(),
            node.clone(),
            operator.clone(),
            connections.clone(),
        );
        Box::pin(async move {
            let joined: BTreeMap<u64, String> = node
                .raft()
                .metrics()
                .borrow()
                .membership_config
                .nodes()
                .map(|(id, member)| (*id, member.addr.clone()))
                .collect();
            let report = status::gather(&topology, |spec| {
                let addr = joined
                    .get(&spec.id)
                    .and_then(|addr| addr.parse().ok())
                    .unwrap_or(spec.listen);
                let connection = connections
                    .lock()
                    .expect("connections lock")
                    .entry(addr)
                    .or_insert_with(|| AdminConnection::lazy(addr, &operator))
                    .clone();
                std::future::ready(Ok(connection))
            })
            .await;
            let upstream: serde_json::Map<String, serde_json::Value> = topology
                .members()
                .map(|spec| {
                    let upstream = spec
                        .upstream
                        .clone()
                        .unwrap_or_else(|| topology.root().name.clone());
                    (spec.name.clone(), serde_json::Value::String(upstream))
                })
                .collect();
            let mut view = serde_json::to_value(report).expect("a fabric report serializes");
            view["upstream"] = serde_json::Value::Object(upstream);
            view
        })
    })
}

/// A member's admission: asks the root to admit it until it does, then keeps asking every
/// [`JOIN_RECHECK`], so that a member the root's trusted-list later denies (and removes
/// from the group) learns it, and one accepted again is admitted again. What the root
/// answered is the node's [`Admission`]; an unreachable root changes nothing.
async fn join_fabric(node: Node, root: SocketAddr, shutdown: CancellationToken) {
    let mut backoff = JOIN_RETRY;
    let mut joiner = rpc::client::Joiner::new(node.dialer(), root);
    loop {
        let request = JoinRequest {
            node_id: node.id(),
            name: node.name().to_owned(),
            serial: node.serial().to_owned(),
            addr: node.addr().to_string(),
        };
        // Stopping must not wait on the root: it may be admitting this very node, which
        // no longer answers.
        let answer = tokio::select! {
            () = shutdown.cancelled() => return,
            answer = joiner.join(request) => answer,
        };
        let wait = match answer {
            Ok(voter) => {
                if node.admission() != Admission::Admitted {
                    tracing::info!(node = node.name(), voter, "admitted to the fabric");
                    node.set_admission(Admission::Admitted);
                }
                backoff = JOIN_RETRY;
                JOIN_RECHECK
            }
            Err(e) => {
                if let Some(refusal) = e.admission_refusal() {
                    node.set_admission(refusal);
                }
                tracing::debug!(node = node.name(), error = %e, "join: root did not admit yet");
                let wait = backoff;
                backoff = (backoff * 2).min(JOIN_RETRY_MAX);
                wait
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
