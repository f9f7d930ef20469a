//! One start-up sequence for a whole fabric, used by `fabricsim up`, `fabricsim node` and
//! the test harness.
//!
//! [`RunningFabric::start`] first reads every node's stored data and reports every
//! damaged node at once ([`LaunchError::Damaged`]), then binds every node's listeners
//! (gRPC, HTTPS, SSH) before it starts anything (so a taken port stops nothing halfway),
//! starts the simulated world of
//! the topology (its [`Lab`]: PKI, EMS servers, FortiCloud), then starts the nodes, the
//! root first because members ask it to admit them. [`RunningFabric::bootstrap`] runs the
//! topology's `[bootstrap]` lines on the root. Nodes can be killed and restarted on the
//! same addresses and data directory; [`RunningFabric::stop`] stops the members, then the
//! root, then the lab. [`RunningFabric::start_until`] gives the start-up up at a stop
//! (Ctrl-C), and [`RunningFabric::repair`] recovers a damaged member from the root.
//!
//! Where the nodes keep their data, where the PKI lives, which token the admin service
//! requires and which ports the nodes take is the caller's [`Plan`]: `up` uses the state
//! directory and the topology's ports, the harness a temporary directory and ephemeral
//! ports.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::cli::Reply;
use crate::link::{LinkChange, LinkFault, LinkRule, Links, Protocol, TlsError};
use crate::node::{Node, NodeAddrs, NodeConfig, Provision};
use crate::rpc::client::{AdminConnection, ClientError, Operator};
use crate::server::{Listeners, RunningServer, ServerError};
use crate::sim::lab::{Lab, LabError};
use crate::topology::{NodeSpec, Role, Topology};

/// A port a killed node held may linger for a moment; binding it again retries this long.
const REBIND_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a lingering port is tried again.
const REBIND_POLL: Duration = Duration::from_millis(50);

/// Which port each node listens on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ports {
    /// The topology's `listen` address, as `fabricsim up` does.
    Topology,
    /// Port 0 on the topology's address: the system picks a free port (tests).
    Ephemeral,
}

/// Where a fabric keeps what it writes, and how its nodes are reached.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Node `N` keeps its Raft database and local tables in `data_root/N`.
    pub data_root: PathBuf,
    /// Where the fabric's PKI (CA, server and node certificates) lives.
    pub pki_dir: PathBuf,
    /// The bearer token every node's admin service requires.
    pub token: String,
    pub ports: Ports,
}

impl Plan {
    /// A plan keeping everything below `root`: node data in `root/<node>`, the PKI in
    /// `root/pki`.
    pub fn under(root: &Path, token: &str, ports: Ports) -> Plan {
        Plan {
            data_root: root.to_owned(),
            pki_dir: root.join("pki"),
            token: token.to_owned(),
            ports,
        }
    }

    /// Where node `name` keeps its data.
    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.data_root.join(name)
    }
}

/// Why a fabric, or one of its nodes, could not be started or reached.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("no node named {0:?} in this fabric")]
    UnknownNode(String),
    #[error("node {0} is not running")]
    NotRunning(String),
    #[error("node {0} is already running")]
    AlreadyRunning(String),
    #[error(
        "node {node} cannot listen on {addr}: {source}{hint}",
        hint = if .source.kind() == std::io::ErrorKind::AddrInUse {
            " (another fabricsim, or another program, uses that address; stop it or change the node's `listen`, `https` or `ssh` in the topology)"
        } else { "" }
    )]
    Listen {
        node: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{}", damaged_text(.0))]
    Damaged(Vec<DamagedNode>),
    #[error("stopped before the fabric had started")]
    Cancelled,
    #[error("{}", REPAIR_ROOT)]
    RepairRoot,
    #[error("cannot move node {node}'s data aside: {source}")]
    SetAside { node: String, source: std::io::Error },
    #[error(transparent)]
    Lab(Box<LabError>),
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("the operator's fabric certificate: {0}")]
    Operator(TlsError),
    #[error("{0}")]
    Fault(String),
}

impl From<LabError> for LaunchError {
    fn from(error: LabError) -> Self {
        LaunchError::Lab(Box::new(error))
    }
}

/// A node whose stored data cannot be read, found before anything started.
#[derive(Debug)]
pub struct DamagedNode {
    pub name: String,
    pub role: Role,
    pub problem: crate::node::NodeError,
}

/// Why the root is never repaired, and what to do instead.
const REPAIR_ROOT: &str = "the root's data is the fabric's and cannot be fetched from a member: \
     restore its directory from a copy, or start again with `fabricsim up --fresh`";

/// Every damaged node, each with what to do about it, like `fabricsim check`'s report.
fn damaged_text(nodes: &[DamagedNode]) -> String {
    let mut text = format!(
        "the stored data of {} is damaged; nothing was started:",
        match nodes.len() {
            1 => "1 node".to_owned(),
            n => format!("{n} nodes"),
        }
    );
    for node in nodes {
        text.push_str(&format!("\n  {}", node.problem));
        text.push_str(&match node.role {
            Role::Member => format!(
                "\n    fix: `fabricsim node --repair {}` moves its data aside and has it catch up from the root",
                node.name
            ),
            Role::Root => format!("\n    fix: {REPAIR_ROOT}"),
        });
    }
    text
}

/// Reads every node's stored data before anything starts (see [`crate::node::check_data`])
/// and reports every damaged node, not only the first.
pub fn check_stored_data(topology: &Topology, plan: &Plan) -> Result<(), LaunchError> {
    let damaged: Vec<DamagedNode> = topology
        .nodes
        .iter()
        .filter_map(|spec| damage(topology, spec, &plan.data_dir(&spec.name)))
        .collect();
    if damaged.is_empty() {
        Ok(())
    } else {
        Err(LaunchError::Damaged(damaged))
    }
}

/// [`check_stored_data`] for one node, kept in `data_dir` (`fabricsim node`).
pub fn check_node_data(topology: &Topology, spec: &NodeSpec, data_dir: &Path) -> Result<(), LaunchError> {
    match damage(topology, spec, data_dir) {
        Some(damaged) => Err(LaunchError::Damaged(vec![damaged])),
        None => Ok(()),
    }
}

fn damage(topology: &Topology, spec: &NodeSpec, data_dir: &Path) -> Option<DamagedNode> {
    crate::node::check_data(&spec.name, data_dir, topology.fabric.firmware)
        .err()
        .map(|problem| DamagedNode {
            name: spec.name.clone(),
            role: spec.role,
            problem,
        })
}

/// One node's place in the fabric: its addresses and the faults on its links outlive
/// kills and restarts.
struct Slot {
    addrs: NodeAddrs,
    links: Links,
    running: Option<RunningServer>,
}

/// A fabric running in this process: its lab and its nodes.
pub struct RunningFabric {
    topology: Topology,
    plan: Plan,
    lab: Arc<Lab>,
    slots: BTreeMap<String, Slot>,
    /// What the fabric's own calls to its nodes present (bootstrap, status).
    operator: Operator,
    /// The simulators' control service, when [`RunningFabric::serve_control`] started it.
    control: Option<(CancellationToken, JoinHandle<()>)>,
}

impl RunningFabric {
    /// Checks every node's stored data, binds every node's listeners, starts the lab, then
    /// the nodes, the root first. A node that fails to start stops the ones started before
    /// it.
    pub async fn start(topology: Topology, plan: Plan) -> Result<RunningFabric, LaunchError> {
        RunningFabric::start_until(topology, plan, &CancellationToken::new()).await
    }

    /// [`RunningFabric::start`], given up as soon as `cancel` is cancelled: between two
    /// steps (the lab, each node), what has started is stopped again and the answer is
    /// [`LaunchError::Cancelled`].
    pub async fn start_until(
        topology: Topology,
        plan: Plan,
        cancel: &CancellationToken,
    ) -> Result<RunningFabric, LaunchError> {
        check_stored_data(&topology, &plan)?;
        tracing::info!(
            fabric = topology.fabric.name,
            nodes = topology.nodes.len(),
            "starting the fabric"
        );
        let mut listeners = Vec::new();
        for spec in &topology.nodes {
            let (bound, addrs) = bind_node(spec, plan.ports).await?;
            listeners.push((spec.name.clone(), bound, addrs));
        }
        // The root first: it must exist before members ask to join.
        listeners.sort_by_key(|(name, _, _)| topology.node(name).map(|spec| spec.role != Role::Root));
        if cancel.is_cancelled() {
            return Err(LaunchError::Cancelled);
        }
        let lab = Lab::start(&topology, &plan.pki_dir).await?;
        let operator = match lab.operator_credentials() {
            Ok(credentials) => Operator::new(&plan.token, &credentials).map_err(LaunchError::Operator),
            Err(e) => Err(e.into()),
        };
        let operator = match operator {
            Ok(operator) => operator,
            Err(e) => {
                lab.shutdown().await;
                return Err(e);
            }
        };
        let mut fabric = RunningFabric {
            topology,
            plan,
            lab: Arc::new(lab),
            slots: BTreeMap::new(),
            operator,
            control: None,
        };
        for (name, listener, addrs) in listeners {
            let slot = Slot {
                addrs,
                links: Links::default(),
                running: None,
            };
            fabric.slots.insert(name.clone(), slot);
            let launched = if cancel.is_cancelled() {
                Err(LaunchError::Cancelled)
            } else {
                fabric.launch(&name, listener).await
            };
            if let Err(e) = launched {
                fabric.stop().await;
                return Err(e);
            }
        }
        Ok(fabric)
    }

    async fn launch(&mut self, name: &str, listeners: Listeners) -> Result<(), LaunchError> {
        let spec = self
            .topology
            .node(name)
            .ok_or_else(|| LaunchError::UnknownNode(name.to_owned()))?;
        let root_addr = self
            .slots
            .get(&self.topology.root().name)
            .map(|slot| slot.addrs.grpc);
        let lab = self.lab();
        let slot = self.slot(name)?;
        let addrs = slot.addrs;
        let provision = Provision {
            data_dir: self.plan.data_dir(&spec.name),
            root_addr,
            admin_token: self.plan.token.clone(),
            trust_anchors: lab.trust_anchors(),
            cloud: lab.cloud_access(),
            credentials: lab.csf_credentials(&spec.name, &spec.serial, addrs.grpc.ip())?,
            links: slot.links.clone(),
        };
        let config = NodeConfig::from_topology(&self.topology, spec, provision);
        let identity = lab.node_identity(&spec.name, &spec.hostname, addrs.https.ip())?;
        let running = RunningServer::start(&self.topology, config, listeners, identity)
            .instrument(crate::node::span(name))
            .await?;
        self.slots.get_mut(name).expect("every node has a slot").running = Some(running);
        Ok(())
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The simulated world around the fabric.
    pub fn lab(&self) -> &Lab {
        &self.lab
    }

    /// Serves the lab's control service (`fabricsim ems`, `fabricsim cloud`) on `listener`,
    /// behind the plan's token, until the fabric stops.
    pub fn serve_control(&mut self, listener: TcpListener) -> Result<(), LaunchError> {
        let tls = self
            .lab
            .operator_credentials()?
            .server_config(&[Protocol::Grpc])
            .map_err(LaunchError::Operator)?;
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(crate::rpc::serve_sim(
            self.lab.clone(),
            self.plan.token.clone(),
            listener,
            tls,
            shutdown.clone(),
        ));
        self.control = Some((shutdown, server));
        Ok(())
    }

    /// What the fabric's own calls to its nodes present.
    pub fn operator(&self) -> &Operator {
        &self.operator
    }

    /// The faults on node `name`'s links.
    pub fn links(&self, name: &str) -> Result<&Links, LaunchError> {
        self.slot(name).map(|slot| &slot.links)
    }

    /// Applies `fault` to the links of the nodes it touches, running or not.
    pub fn inject(&self, fault: &Fault) -> Result<(), LaunchError> {
        for (node, change) in fault.changes(&self.addrs())? {
            tracing::info!(node, ?change, "link faults changed");
            self.links(&node)?.apply(change);
        }
        Ok(())
    }

    /// Every node's gRPC address.
    pub fn addrs(&self) -> BTreeMap<String, SocketAddr> {
        self.slots
            .iter()
            .map(|(name, slot)| (name.clone(), slot.addrs.grpc))
            .collect()
    }

    /// The gRPC address of node `name`.
    pub fn addr(&self, name: &str) -> Result<SocketAddr, LaunchError> {
        self.slot(name).map(|slot| slot.addrs.grpc)
    }

    /// Every address node `name` serves: gRPC, REST API, SSH.
    pub fn node_addrs(&self, name: &str) -> Result<NodeAddrs, LaunchError> {
        self.slot(name).map(|slot| slot.addrs)
    }

    fn slot(&self, name: &str) -> Result<&Slot, LaunchError> {
        self.slots
            .get(name)
            .ok_or_else(|| LaunchError::UnknownNode(name.to_owned()))
    }

    /// The in-process handle of a running node.
    pub fn node(&self, name: &str) -> Result<&Node, LaunchError> {
        self.slot(name)?
            .running
            .as_ref()
            .map(RunningServer::node)
            .ok_or_else(|| LaunchError::NotRunning(name.to_owned()))
    }

    /// An admin connection to node `name`.
    pub async fn connect(&self, name: &str) -> Result<AdminConnection, LaunchError> {
        Ok(self.connector(name)?.await?)
    }

    /// A future that makes an admin connection to node `name` where it runs: the
    /// connection's I/O stays on the runtime that ran it.
    pub fn connector(
        &self,
        name: &str,
    ) -> Result<impl Future<Output = Result<AdminConnection, ClientError>> + Send + 'static, LaunchError>
    {
        let addr = self.addr(name)?;
        let operator = self.operator.clone();
        Ok(async move { AdminConnection::connect(addr, &operator).await })
    }

    /// Runs the topology's `[bootstrap]` lines on the root in one session, answering every
    /// question `y`; `None` when the topology has none.
    pub async fn bootstrap(&self) -> Result<Option<Reply>, LaunchError> {
        if self.topology.bootstrap.is_empty() {
            return Ok(None);
        }
        let root = &self.topology.root().name;
        let mut session = self.connect(root).await?.session().await?;
        Ok(Some(session.script(&self.topology.bootstrap, "y").await?))
    }

    /// Stops a node abruptly; its address and data directory stay.
    pub async fn kill(&mut self, name: &str) -> Result<(), LaunchError> {
        let running = self
            .slots
            .get_mut(name)
            .ok_or_else(|| LaunchError::UnknownNode(name.to_owned()))?
            .running
            .take()
            .ok_or_else(|| LaunchError::NotRunning(name.to_owned()))?;
        running.kill().await;
        Ok(())
    }

    /// Starts a killed node again on the same address with the same data directory.
    pub async fn restart(&mut self, name: &str) -> Result<(), LaunchError> {
        let slot = self.slot(name)?;
        if slot.running.is_some() {
            return Err(LaunchError::AlreadyRunning(name.to_owned()));
        }
        let addrs = slot.addrs;
        let listeners = Listeners {
            grpc: rebind(name, addrs.grpc).await?,
            https: rebind(name, addrs.https).await?,
            ssh: rebind(name, addrs.ssh).await?,
        };
        self.launch(name, listeners).await
    }

    /// Recovers a stopped member from the root: moves its data aside (see
    /// [`crate::node::set_aside_data`]) and starts it again, empty, so it catches up by log
    /// or snapshot. Returns where the damaged files went. The root is refused.
    pub async fn repair(&mut self, name: &str) -> Result<Vec<PathBuf>, LaunchError> {
        let spec = self
            .topology
            .node(name)
            .ok_or_else(|| LaunchError::UnknownNode(name.to_owned()))?;
        if spec.role == Role::Root {
            return Err(LaunchError::RepairRoot);
        }
        if self.slot(name)?.running.is_some() {
            return Err(LaunchError::AlreadyRunning(name.to_owned()));
        }
        let moved = crate::node::set_aside_data(&self.plan.data_dir(name), self.topology.fabric.firmware)
            .map_err(|source| LaunchError::SetAside {
                node: name.to_owned(),
                source,
            })?;
        self.restart(name).await?;
        Ok(moved)
    }

    /// Stops every node cleanly, the members concurrently and then the root (so no member
    /// sees its root vanish first), then the control service and the lab.
    pub async fn stop(mut self) {
        let root = self.topology.root().name.clone();
        let members: Vec<RunningServer> = self
            .slots
            .iter_mut()
            .filter(|(name, _)| **name != root)
            .filter_map(|(_, slot)| slot.running.take())
            .collect();
        futures::future::join_all(members.into_iter().map(RunningServer::shutdown)).await;
        if let Some(running) = self.slots.get_mut(&root).and_then(|slot| slot.running.take()) {
            running.shutdown().await;
        }
        if let Some((shutdown, server)) = self.control.take() {
            shutdown.cancel();
            let _ = server.await;
        }
        match Arc::try_unwrap(self.lab) {
            Ok(lab) => lab.shutdown().await,
            Err(_) => unreachable!("only the control service shares the lab, and it has stopped"),
        }
        tracing::info!(fabric = self.topology.fabric.name, "fabric stopped");
    }
}

/// A fault on the links between nodes, as `fabricsim fault` and the harness name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Cut the link between two nodes, both ways.
    Partition(String, String),
    /// Cut every link of one node.
    Isolate(String),
    /// Slow the link between two nodes by this much each way.
    Delay(String, String, Duration),
    /// Heal every link of every node.
    Heal,
}

impl Fault {
    /// What each node's links must do for the fault, given every node's gRPC address:
    /// both ends of every link it touches, since each end holds the connections it dials.
    pub fn changes(
        &self,
        addrs: &BTreeMap<String, SocketAddr>,
    ) -> Result<Vec<(String, LinkChange)>, LaunchError> {
        let addr = |name: &str| {
            addrs
                .get(name)
                .copied()
                .ok_or_else(|| LaunchError::UnknownNode(name.to_owned()))
        };
        let both_ways =
            |a: &str, b: &str, fault: LinkFault| -> Result<Vec<(String, LinkChange)>, LaunchError> {
                if a == b {
                    return Err(LaunchError::Fault(format!(
                        "{a} and {b} are the same node; name two nodes"
                    )));
                }
                let rule = |peer: &str| -> Result<LinkChange, LaunchError> {
                    Ok(LinkChange::Set(LinkRule {
                        peer: peer.to_owned(),
                        addr: addr(peer)?,
                        fault,
                    }))
                };
                Ok(vec![(a.to_owned(), rule(b)?), (b.to_owned(), rule(a)?)])
            };
        match self {
            Fault::Partition(a, b) => both_ways(a, b, LinkFault::Cut),
            Fault::Delay(a, b, delay) => both_ways(a, b, LinkFault::Delay(*delay)),
            Fault::Isolate(node) => {
                addr(node)?;
                let mut changes = Vec::new();
                for peer in addrs.keys().filter(|peer| *peer != node) {
                    changes.extend(both_ways(node, peer, LinkFault::Cut)?);
                }
                Ok(changes)
            }
            Fault::Heal => Ok(addrs
                .keys()
                .map(|name| (name.clone(), LinkChange::HealAll))
                .collect()),
        }
    }
}

/// Binds node `node`'s listener on `addr`, and returns it with the address it took (the
/// real port when `addr` asked for port 0).
pub async fn bind(node: &str, addr: SocketAddr) -> Result<(TcpListener, SocketAddr), LaunchError> {
    let listen_error = |source| LaunchError::Listen {
        node: node.to_owned(),
        addr,
        source,
    };
    let listener = TcpListener::bind(addr).await.map_err(listen_error)?;
    let taken = listener.local_addr().map_err(listen_error)?;
    Ok((listener, taken))
}

/// Binds node `spec`'s gRPC, HTTPS and SSH listeners: the topology's addresses, or port 0
/// on their IPs with [`Ports::Ephemeral`]. Returns them with the addresses they took.
pub async fn bind_node(spec: &NodeSpec, ports: Ports) -> Result<(Listeners, NodeAddrs), LaunchError> {
    let wanted = |addr: SocketAddr| match ports {
        Ports::Topology => addr,
        Ports::Ephemeral => SocketAddr::new(addr.ip(), 0),
    };
    let (grpc, grpc_addr) = bind(&spec.name, wanted(spec.listen)).await?;
    let (https, https_addr) = bind(&spec.name, wanted(spec.https)).await?;
    let (ssh, ssh_addr) = bind(&spec.name, wanted(spec.ssh)).await?;
    let addrs = NodeAddrs {
        grpc: grpc_addr,
        https: https_addr,
        ssh: ssh_addr,
    };
    Ok((Listeners { grpc, https, ssh }, addrs))
}

/// Binds `addr` again after a kill: "in use" is retried for [`REBIND_TIMEOUT`].
async fn rebind(node: &str, addr: SocketAddr) -> Result<TcpListener, LaunchError> {
    let deadline = tokio::time::Instant::now() + REBIND_TIMEOUT;
    loop {
        match bind(node, addr).await {
            Err(LaunchError::Listen { source, .. })
                if source.kind() == std::io::ErrorKind::AddrInUse
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(REBIND_POLL).await;
            }
            result => return result.map(|(listener, _)| listener),
        }
    }
}
