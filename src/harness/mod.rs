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

pub mod chaos;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::launcher::{Fault, LaunchError, Plan, Ports, RunningFabric};
use crate::node::Node;
use crate::rpc::client::{AdminConnection, CliSession, ClientError};
use crate::sim::lab::Lab;
use crate::status::{self, FabricReport};
use crate::topology::Topology;

/// The serial of the root of [`generated_topology`]; members count up from it.
pub const ROOT_SERIAL: &str = "FGVM01TM22000001";

/// The admin token of every harness fabric.
const TOKEN: &str = "harness-token";

/// How often `wait_*` polls the nodes.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How long one CLI line, or opening a session, may take: a write waits for its commit,
/// which the node itself bounds well below this.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a harness operation failed.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("cannot create the fabric's data directory: {0}")]
    TempDir(std::io::Error),
    #[error(transparent)]
    Launch(#[from] LaunchError),
    #[error("the topology's bootstrap failed:\n{0}")]
    Bootstrap(String),
    #[error("REST API: {0}")]
    Rest(String),
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

/// A running fabric of in-process nodes, with the simulated EMS servers of its topology,
/// its data in a temporary directory.
pub struct Fabric {
    fabric: RunningFabric,
    data: tempfile::TempDir,
}

impl Fabric {
    /// Starts every node of `topology` on ephemeral ports, the root first, and runs the
    /// topology's bootstrap lines.
    pub async fn start(topology: Topology) -> Result<Fabric, HarnessError> {
        log_to_stderr();
        let data = tempfile::Builder::new()
            .prefix("fabricsim-")
            .tempdir()
            .map_err(HarnessError::TempDir)?;
        let plan = Plan::under(data.path(), TOKEN, Ports::Ephemeral);
        let fabric = Fabric {
            fabric: RunningFabric::start(topology, plan).await?,
            data,
        };
        match fabric.fabric.bootstrap().await {
            Ok(Some(reply)) if reply.failed => {
                fabric.stop().await;
                Err(HarnessError::Bootstrap(reply.output))
            }
            Ok(_) => Ok(fabric),
            Err(e) => {
                fabric.stop().await;
                Err(e.into())
            }
        }
    }

    /// The simulated EMS servers.
    pub fn lab(&self) -> &Lab {
        self.fabric.lab()
    }

    pub fn topology(&self) -> &Topology {
        self.fabric.topology()
    }

    /// Where a node keeps its Raft database; it survives kill and restart.
    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.fabric.plan().data_dir(name)
    }

    /// The directory holding every node's data.
    pub fn data_root(&self) -> &Path {
        self.data.path()
    }

    /// The admin token the nodes require.
    pub fn token(&self) -> &str {
        &self.fabric.plan().token
    }

    /// Every node's gRPC address.
    pub fn addrs(&self) -> BTreeMap<String, SocketAddr> {
        self.fabric.addrs()
    }

    /// Every address node `name` serves: gRPC, REST API (HTTPS), SSH.
    pub fn node_addrs(&self, name: &str) -> Result<crate::node::NodeAddrs, HarnessError> {
        Ok(self.fabric.node_addrs(name)?)
    }

    /// A REST API client connected to node `name`, trusting the fabric's CAs.
    pub async fn rest(&self, name: &str) -> Result<crate::rest::client::RestClient, HarnessError> {
        let addr = self.node_addrs(name)?.https;
        crate::rest::client::RestClient::connect(addr, &self.lab().trust_anchors())
            .await
            .map_err(|e| HarnessError::Rest(e.to_string()))
    }

    /// The in-process handle of a running node.
    pub fn node(&self, name: &str) -> Result<&Node, HarnessError> {
        Ok(self.fabric.node(name)?)
    }

    /// Runs CLI lines on a node in one session, as `fabricsim exec` does. A question
    /// (`(y/n)`) is answered by the next line.
    pub async fn exec(&self, name: &str, lines: &[&str]) -> Result<ExecOutput, HarnessError> {
        let mut session = self.session(name).await?;
        let mut result = ExecOutput::default();
        for line in lines {
            let reply = within(format!("{name}: {line}"), session.run(line)).await?;
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
        let mut session = self.session(name).await?;
        let mut text = String::new();
        for line in lines {
            text.push_str(session.prompt());
            text.push_str(line);
            text.push('\n');
            let reply = within(format!("{name}: {line}"), session.run(line)).await?;
            text.push_str(&reply.output);
        }
        Ok(text)
    }

    /// A CLI session on node `name`, opened within [`CALL_TIMEOUT`].
    async fn session(&self, name: &str) -> Result<CliSession, HarnessError> {
        let open = async {
            self.connect(name)
                .await?
                .session()
                .await
                .map_err(HarnessError::from)
        };
        match tokio::time::timeout(CALL_TIMEOUT, open).await {
            Ok(session) => session,
            Err(_) => Err(call_timeout(format!("{name}: opening a CLI session"))),
        }
    }

    /// An admin connection to a node.
    pub async fn connect(&self, name: &str) -> Result<AdminConnection, HarnessError> {
        Ok(self.fabric.connect(name).await?)
    }

    /// A future that connects to a node's admin service where it runs: the connection's
    /// I/O stays on the runtime that ran it (a client on threads of its own, as a
    /// separate process's would be).
    pub fn connector(
        &self,
        name: &str,
    ) -> Result<impl Future<Output = Result<AdminConnection, ClientError>> + Send + 'static, HarnessError>
    {
        Ok(self.fabric.connector(name)?)
    }

    /// Asks every node for its state.
    pub async fn status(&self) -> FabricReport {
        status::collect(self.topology(), &self.addrs(), self.fabric.operator()).await
    }

    /// Waits until every node has applied the root's revision; on timeout the error shows
    /// every node's revision and lag.
    pub async fn wait_converged(&self, timeout: Duration) -> Result<FabricReport, HarnessError> {
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
        condition: impl Fn(&FabricReport) -> bool,
    ) -> Result<FabricReport, HarnessError> {
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
        condition: impl Fn(&FabricReport) -> bool,
    ) -> Result<FabricReport, FabricReport> {
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
        Ok(self.fabric.kill(name).await?)
    }

    /// Starts a killed node again on the same address with the same data directory.
    pub async fn restart(&mut self, name: &str) -> Result<(), HarnessError> {
        Ok(self.fabric.restart(name).await?)
    }

    /// Cuts the link between nodes `a` and `b`, both ways, until [`Fabric::heal`]: the
    /// bytes stop on the sockets, calls time out as on a cut network. Survives restarts.
    pub fn partition(&self, a: &str, b: &str) -> Result<(), HarnessError> {
        Ok(self
            .fabric
            .inject(&Fault::Partition(a.to_owned(), b.to_owned()))?)
    }

    /// Cuts every link of `node`; it still answers the operator (status, CLI).
    pub fn isolate(&self, node: &str) -> Result<(), HarnessError> {
        Ok(self.fabric.inject(&Fault::Isolate(node.to_owned()))?)
    }

    /// Slows the link between `a` and `b` by `delay` each way.
    pub fn delay(&self, a: &str, b: &str, delay: Duration) -> Result<(), HarnessError> {
        Ok(self
            .fabric
            .inject(&Fault::Delay(a.to_owned(), b.to_owned(), delay))?)
    }

    /// Heals every link of every node.
    pub fn heal(&self) -> Result<(), HarnessError> {
        Ok(self.fabric.inject(&Fault::Heal)?)
    }

    /// Recovers a stopped member from the root: its data is moved aside and it starts
    /// empty. Returns where the damaged files went.
    pub async fn repair(&mut self, name: &str) -> Result<Vec<PathBuf>, HarnessError> {
        Ok(self.fabric.repair(name).await?)
    }

    /// Stops every node cleanly, members first, then the simulated servers.
    pub async fn stop(self) {
        self.fabric.stop().await;
    }
}

/// With `FABRICSIM_LOG` set (as for `fabricsim`, e.g. `debug,openraft=info`), the first
/// fabric of a test process sends the nodes' logs to standard error, which `cargo test --
/// --nocapture` shows.
fn log_to_stderr() {
    use tracing_subscriber::prelude::*;
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Some(filter) = std::env::var("FABRICSIM_LOG")
            .ok()
            .and_then(|text| text.parse::<tracing_subscriber::filter::Targets>().ok())
        else {
            return;
        };
        let _ = tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .with(filter)
            .try_init();
    });
}

/// `call`, failed as a [`HarnessError::Timeout`] naming `what` once [`CALL_TIMEOUT`] has
/// passed.
async fn within<T>(
    what: String,
    call: impl std::future::Future<Output = Result<T, ClientError>>,
) -> Result<T, HarnessError> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(call_timeout(what)),
    }
}

fn call_timeout(what: String) -> HarnessError {
    HarnessError::Timeout {
        timeout: CALL_TIMEOUT,
        what,
        last: "no answer\n".to_owned(),
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
