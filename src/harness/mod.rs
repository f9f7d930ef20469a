//! `Fabric`: a whole fabric in the test's process, for integration tests and the benchmark.
//!
//! Every node listens on an ephemeral port of its own loopback address and keeps its data
//! in a temporary directory that outlives kills and restarts. Tests talk to the nodes the
//! way `fabricsim exec` and `fabricsim status` do, over gRPC with the admin token, and wait
//! on conditions with deadlines:
//!
//! ```no_run
//! # async fn demo() -> Result<(), fabricsim::harness::HarnessError> {
//! use std::time::Duration;
//! use fabricsim::harness::{Fabric, generated_topology};
//!
//! let mut fabric = Fabric::start(generated_topology("demo", 3)).await?;
//! fabric.wait_converged(Duration::from_secs(10)).await?;
//! let out = fabric.exec("root", &["config endpoint-control fctems", "edit ems1",
//!                                  "set server 127.0.100.1", "end"]).await?;
//! assert!(!out.failed);
//! fabric.wait_converged(Duration::from_secs(10)).await?;
//! fabric.kill("branch1").await?;
//! fabric.restart("branch1").await?;
//! fabric.stop().await;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::TcpListener;

use crate::node::{Node, NodeConfig, NodeError, RunningNode};
use crate::rpc::client::{AdminConnection, ClientError};
use crate::sim::lab::{Lab, LabError};
use crate::status::{self, FabricStatus};
use crate::topology::{Role, Topology};

/// The serial of the root of [`generated_topology`]; members count up from it.
pub const ROOT_SERIAL: &str = "FGVM01TM22000001";

/// How often `wait_*` polls the nodes.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Why a harness operation failed.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("no node named {0:?} in this fabric")]
    UnknownNode(String),
    #[error("node {0} is not running")]
    NotRunning(String),
    #[error("node {0} is already running")]
    AlreadyRunning(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot create the fabric's data directory: {0}")]
    TempDir(std::io::Error),
    #[error(transparent)]
    Lab(Box<LabError>),
    #[error("the topology's bootstrap failed:\n{0}")]
    Bootstrap(String),
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("the fabric did not converge within {timeout:?}:\n{table}{lag}")]
    NotConverged {
        timeout: Duration,
        table: String,
        lag: String,
    },
    #[error("condition not met within {timeout:?}: {what}; last seen:\n{last}")]
    Timeout {
        timeout: Duration,
        what: String,
        last: String,
    },
}

/// What running CLI lines on a node printed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExecOutput {
    /// Every line's output, concatenated.
    pub output: String,
    /// True when any line failed.
    pub failed: bool,
}

struct Slot {
    addr: SocketAddr,
    running: Option<RunningNode>,
}

/// A running fabric of in-process nodes, with the simulated EMS servers of its topology.
pub struct Fabric {
    topology: Topology,
    data: tempfile::TempDir,
    token: String,
    slots: BTreeMap<String, Slot>,
    lab: Option<Lab>,
}

impl Fabric {
    /// Starts every node of `topology` on ephemeral ports, the root first.
    pub async fn start(topology: Topology) -> Result<Fabric, HarnessError> {
        let data = tempfile::Builder::new()
            .prefix("fabricsim-")
            .tempdir()
            .map_err(HarnessError::TempDir)?;
        let lab = Lab::start(&topology, &data.path().join("pki")).await?;
        let mut fabric = Fabric {
            topology,
            data,
            token: "harness-token".to_owned(),
            slots: BTreeMap::new(),
            lab: Some(lab),
        };
        let mut listeners = Vec::new();
        for spec in &fabric.topology.nodes {
            let wanted = SocketAddr::new(spec.listen.ip(), 0);
            let listener = bind(wanted).await?;
            let addr = listener
                .local_addr()
                .map_err(|source| HarnessError::Bind { addr: wanted, source })?;
            fabric
                .slots
                .insert(spec.name.clone(), Slot { addr, running: None });
            listeners.push((spec.name.clone(), listener));
        }
        // The root first: it must exist before members ask to join.
        listeners.sort_by_key(|(name, _)| fabric.topology.node(name).map(|s| s.role != Role::Root));
        for (name, listener) in listeners {
            fabric.launch(&name, listener).await?;
        }
        if !fabric.topology.bootstrap.is_empty() {
            let root = fabric.topology.root().name.clone();
            let lines = fabric.topology.bootstrap.clone();
            let reply = fabric
                .connect(&root)
                .await?
                .session()
                .await?
                .script(&lines, "y")
                .await?;
            if reply.failed {
                return Err(HarnessError::Bootstrap(reply.output));
            }
        }
        Ok(fabric)
    }

    /// The simulated EMS servers.
    pub fn lab(&self) -> &Lab {
        self.lab.as_ref().expect("the lab runs until the fabric stops")
    }

    async fn launch(&mut self, name: &str, listener: TcpListener) -> Result<(), HarnessError> {
        let spec = self
            .topology
            .node(name)
            .ok_or_else(|| HarnessError::UnknownNode(name.to_owned()))?;
        let root_addr = self.slots.get(&self.topology.root().name).map(|s| s.addr);
        let config = NodeConfig::from_topology(
            &self.topology,
            spec,
            self.data_dir(name),
            root_addr,
            &self.token,
            self.lab().trust_anchors(),
            self.lab().cloud_access(),
        );
        let running = RunningNode::start(config, listener).await?;
        self.slots.get_mut(name).expect("every node has a slot").running = Some(running);
        Ok(())
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Where a node keeps its Raft database; it survives kill and restart.
    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.data.path().join(name)
    }

    /// The directory holding every node's data.
    pub fn data_root(&self) -> &Path {
        self.data.path()
    }

    /// The admin token the nodes require.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Every node's gRPC address.
    pub fn addrs(&self) -> BTreeMap<String, SocketAddr> {
        self.slots
            .iter()
            .map(|(name, slot)| (name.clone(), slot.addr))
            .collect()
    }

    fn slot(&self, name: &str) -> Result<&Slot, HarnessError> {
        self.slots
            .get(name)
            .ok_or_else(|| HarnessError::UnknownNode(name.to_owned()))
    }

    /// The in-process handle of a running node.
    pub fn node(&self, name: &str) -> Result<&Node, HarnessError> {
        self.slot(name)?
            .running
            .as_ref()
            .map(RunningNode::node)
            .ok_or_else(|| HarnessError::NotRunning(name.to_owned()))
    }

    /// Runs CLI lines on a node in one session, as `fabricsim exec` does. A question
    /// (`(y/n)`) is answered by the next line.
    pub async fn exec(&self, name: &str, lines: &[&str]) -> Result<ExecOutput, HarnessError> {
        let mut session = self.connect(name).await?.session().await?;
        let mut result = ExecOutput::default();
        for line in lines {
            let reply = session.run(line).await?;
            result.output.push_str(&reply.output);
            result.failed |= reply.failed;
        }
        Ok(result)
    }

    /// Every node's report of its EMS entry `entry`, by node name; a node without a result
    /// for it is left out.
    pub async fn ems_status(&self, entry: &str) -> BTreeMap<String, crate::connector::EmsStatus> {
        self.status()
            .await
            .nodes
            .into_iter()
            .filter_map(|node| {
                let found = node.ems.into_iter().find(|ems| ems.name == entry)?;
                Some((node.name, found))
            })
            .collect()
    }

    /// Runs CLI lines on a node and renders the session as a terminal shows it: each line
    /// after its prompt, then its output (the format of `tests/cli/*.txt`).
    pub async fn transcript(&self, name: &str, lines: &[String]) -> Result<String, HarnessError> {
        let mut session = self.connect(name).await?.session().await?;
        let mut text = String::new();
        for line in lines {
            text.push_str(session.prompt());
            text.push_str(line);
            text.push('\n');
            text.push_str(&session.run(line).await?.output);
        }
        Ok(text)
    }

    /// An admin connection to a node.
    pub async fn connect(&self, name: &str) -> Result<AdminConnection, HarnessError> {
        let addr = self.slot(name)?.addr;
        Ok(AdminConnection::connect(addr, &self.token).await?)
    }

    /// Asks every node for its state.
    pub async fn status(&self) -> FabricStatus {
        status::collect(&self.topology, &self.addrs(), &self.token).await
    }

    /// Waits until every node has applied the root's revision; on timeout the error shows
    /// every node's revision and lag.
    pub async fn wait_converged(&self, timeout: Duration) -> Result<FabricStatus, HarnessError> {
        self.poll(timeout, |status| status.converged)
            .await
            .map_err(|status| HarnessError::NotConverged {
                timeout,
                table: status.table(),
                lag: status.lag(),
            })
    }

    /// Waits until `condition` holds for the fabric's status.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        condition: impl Fn(&FabricStatus) -> bool,
    ) -> Result<FabricStatus, HarnessError> {
        self.poll(timeout, condition)
            .await
            .map_err(|status| HarnessError::Timeout {
                timeout,
                what: what.to_owned(),
                last: status.table(),
            })
    }

    /// Asks the nodes until `condition` holds, or returns the last status seen once
    /// `timeout` has passed.
    async fn poll(
        &self,
        timeout: Duration,
        condition: impl Fn(&FabricStatus) -> bool,
    ) -> Result<FabricStatus, FabricStatus> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let status = self.status().await;
            if condition(&status) {
                return Ok(status);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(status);
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Stops a node abruptly; its data directory stays.
    pub async fn kill(&mut self, name: &str) -> Result<(), HarnessError> {
        let slot = self
            .slots
            .get_mut(name)
            .ok_or_else(|| HarnessError::UnknownNode(name.to_owned()))?;
        let running = slot
            .running
            .take()
            .ok_or_else(|| HarnessError::NotRunning(name.to_owned()))?;
        running.kill().await;
        Ok(())
    }

    /// Starts a killed node again on the same address with the same data directory.
    pub async fn restart(&mut self, name: &str) -> Result<(), HarnessError> {
        let slot = self.slot(name)?;
        if slot.running.is_some() {
            return Err(HarnessError::AlreadyRunning(name.to_owned()));
        }
        let listener = bind(slot.addr).await?;
        self.launch(name, listener).await
    }

    /// Stops every node cleanly, members first.
    pub async fn stop(mut self) {
        let root = self.topology.root().name.clone();
        let members: Vec<RunningNode> = self
            .slots
            .iter_mut()
            .filter(|(name, _)| **name != root)
            .filter_map(|(_, slot)| slot.running.take())
            .collect();
        futures::future::join_all(members.into_iter().map(RunningNode::shutdown)).await;
        if let Some(running) = self.slots.get_mut(&root).and_then(|s| s.running.take()) {
            running.shutdown().await;
        }
        if let Some(lab) = self.lab.take() {
            lab.shutdown().await;
        }
    }
}

/// Binds a listener; a port just released by a killed node may linger briefly, so binding
/// the same address again retries for a moment.
async fn bind(addr: SocketAddr) -> Result<TcpListener, HarnessError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => return Ok(listener),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(POLL_INTERVAL).await;
            }
            Err(source) => return Err(HarnessError::Bind { addr, source }),
        }
    }
}

/// A topology of one root and `nodes - 1` members named `branch1`, `branch2`, …, every
/// node on 127.0.0.1 and port 0, with Raft timings short enough for tests, and a FortiCloud
/// account to which the root is registered with an EMS Cloud entitlement (so an EMS Cloud
/// entry may be configured).
pub fn generated_topology(fabric: &str, nodes: usize) -> Topology {
    let mut text = format!(
        "[fabric]\nname = \"{fabric}\"\n\n[raft]\nheartbeat_ms = 100\n\
         election_timeout_min_ms = 400\nelection_timeout_max_ms = 800\n"
    );
    text.push_str(&format!(
        "\n[forticloud]\nlisten = \"127.0.0.1:0\"\nems_listen = \"127.0.0.1:0\"\n\
         registered = [\"{ROOT_SERIAL}\"]\n\n[[forticloud.contract]]\nserial = \"{ROOT_SERIAL}\"\n\
         type = \"FCEM\"\nexpires = \"2099-12-31\"\n"
    ));
    for i in 0..nodes.max(1) {
        let (name, role) = if i == 0 {
            ("root".to_owned(), "root")
        } else {
            (format!("branch{i}"), "member")
        };
        text.push_str(&format!(
            "\n[[node]]\nname = \"{name}\"\nserial = \"FGVM01TM{:08}\"\nrole = \"{role}\"\nlisten = \"127.0.0.1:0\"\n",
            22_000_001 + i
        ));
    }
    Topology::parse(&text, Path::new("<generated>")).expect("generated topologies are valid")
}

impl From<LabError> for HarnessError {
    fn from(error: LabError) -> Self {
        HarnessError::Lab(Box::new(error))
    }
}
