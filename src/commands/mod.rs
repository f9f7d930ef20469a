//! The `fabricsim` commands: the command-line contract of `docs/architecture.md` ("Command
//! line"). `main` parses the command line into [`Command`] and calls [`run`]; every command
//! returns its exit status or an error that `main` prints once.

mod bench;
mod chaos;
mod check;
mod exec;
mod fault;
mod interactive;
pub mod logs;
mod rest_bench;
mod sim;
mod up;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::harness::HarnessError;
use crate::launcher::LaunchError;
use crate::rpc::client::{ClientError, Operator, SimCommand};
use crate::server::ServerError;
use crate::state_dir::{StateDir, StateError};
use crate::topology::{Topology, TopologyError};

/// The topology `fabricsim` runs when `-c` is not given.
pub const DEFAULT_CONFIG: &str = "cluster-configs/default.toml";

/// A simulator of the FortiGate Security Fabric: a root and members replicating the
/// FortiClient EMS connector settings over Raft, each with a FortiOS CLI.
#[derive(Debug, Parser)]
#[command(name = "fabricsim", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the whole fabric in this process; Ctrl-C stops it.
    Up {
        #[command(flatten)]
        topology: TopologyArg,
        /// Discard the fabric's persisted state and start from nothing.
        #[arg(long)]
        fresh: bool,
    },
    /// Show every node's role, Raft position, revision and hash.
    Status {
        #[command(flatten)]
        topology: TopologyArg,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Wait up to SECS for the fabric to be started, for the topology's bootstrap to be
        /// applied and for every node to apply the root's latest revision; exit 1 with each
        /// node's lag when time runs out.
        #[arg(long, value_name = "SECS")]
        wait: Option<f64>,
    },
    /// Run CLI lines (or standard input) on NODE; exit 1 if a command failed.
    ///
    /// A question such as `execute fctems verify`'s `(y/n)` is answered by the next line of
    /// standard input (the next line of the script when the lines come from standard
    /// input), or `y` with --yes.
    Exec {
        #[command(flatten)]
        topology: TopologyArg,
        /// Answer every question with `y`.
        #[arg(long, short = 'y')]
        yes: bool,
        /// The node to run the lines on.
        node: String,
        /// CLI lines, one per argument; read from standard input when none are given.
        lines: Vec<String>,
    },
    /// Interactive FortiOS CLI on NODE, with history, completion and `?` help.
    Cli {
        #[command(flatten)]
        topology: TopologyArg,
        node: String,
    },
    /// Run one node of the topology as its own process; the simulators run apart, in
    /// `fabricsim sim`.
    Node {
        #[command(flatten)]
        topology: TopologyArg,
        /// Recover a damaged member from the root: move its data aside (never deleted) so
        /// that it starts empty and catches up; run it at once when the root runs in another
        /// process, else at the next `fabricsim up`.
        #[arg(long)]
        repair: bool,
        node: String,
    },
    /// Run the topology's simulators (EMS servers, FortiCloud) on their own, for nodes
    /// started with `fabricsim node`; Ctrl-C stops them.
    Sim {
        #[command(flatten)]
        topology: TopologyArg,
    },
    /// Drive a simulated EMS of a running `fabricsim up` or `fabricsim sim`: authorize or deny a FortiGate
    /// under Fabric Devices, list them, or stop and start the server.
    Ems {
        #[command(flatten)]
        topology: TopologyArg,
        /// The EMS's name in the topology.
        ems: String,
        /// authorize | deny | list-devices | stop | start
        action: String,
        /// The FortiGate serial, for authorize and deny.
        serial: Option<String>,
    },
    /// Change the simulated FortiCloud of a running `fabricsim up` or `fabricsim sim`: register or unregister
    /// a FortiGate, give it the EMS Cloud entitlement (FCEM) or revoke it.
    Cloud {
        #[command(flatten)]
        topology: TopologyArg,
        /// register | unregister | entitle | revoke
        action: String,
        /// The FortiGate serial.
        serial: String,
    },
    /// Validate a topology file and explain every error.
    Check {
        #[command(flatten)]
        topology: TopologyArg,
    },
    /// Measure start-up, commit and convergence on an in-process fabric.
    Bench(bench::BenchArgs),
    /// Cut, slow or heal links between the nodes of a running fabric, or list the faults.
    Fault {
        #[command(flatten)]
        topology: TopologyArg,
        #[command(subcommand)]
        action: fault::FaultAction,
    },
    /// Play a seeded fault schedule on an in-process fabric of the topology, then check
    /// that nothing acknowledged was lost and every node agrees.
    Chaos(chaos::ChaosArgs),
}

#[derive(Debug, Args)]
pub struct TopologyArg {
    /// The topology file.
    #[arg(short = 'c', long = "config", value_name = "CONFIG", default_value = DEFAULT_CONFIG)]
    pub path: PathBuf,
}

/// Why a command could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Topology(#[from] TopologyError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Launch(#[from] LaunchError),
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Harness(#[from] HarnessError),
    #[error(transparent)]
    Lab(Box<crate::sim::lab::LabError>),
    #[error("no node named {node:?} in {path}; its nodes are: {known}")]
    UnknownNode {
        node: String,
        path: PathBuf,
        known: String,
    },
    #[error(
        "no simulators are running for fabric {fabric}: start them with `fabricsim sim -c {}` \
         (or run the whole fabric with `fabricsim up -c {}`)",
        .path.display(), .path.display()
    )]
    NoSimulators { fabric: String, path: PathBuf },
    #[error("bench: {0}")]
    Bench(String),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("the operator's fabric certificate in {dir}: {source}")]
    Operator {
        dir: PathBuf,
        source: crate::link::TlsError,
    },
}

/// Runs a parsed command line on a new multi-threaded runtime, until it is done.
///
/// The runtime and the command's future meet here, in the library, rather than in `main`:
/// the code that polls every command is then compiled once, with the library, instead of
/// again for the binary.
pub fn run_blocking(cli: Cli) -> Result<ExitCode, Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            context: "cannot start the async runtime".to_owned(),
            source,
        })?;
    runtime.block_on(run(cli))
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<ExitCode, Error> {
    match cli.command {
        Command::Up { topology, fresh } => up::up(&topology.path, fresh).await,
        Command::Status { topology, json, wait } => status(&topology.path, json, wait).await,
        Command::Exec {
            topology,
            yes,
            node,
            lines,
        } => exec::exec(&topology.path, &node, lines, yes).await,
        Command::Ems {
            topology,
            ems,
            action,
            serial,
        } => {
            let command = crate::wire::proto::fabric::EmsCommand {
                ems,
                action,
                serial: serial.unwrap_or_default(),
            };
            sim_command(&topology.path, SimCommand::Ems(command)).await
        }
        Command::Cloud {
            topology,
            action,
            serial,
        } => {
            let command = crate::wire::proto::fabric::CloudCommand { action, serial };
            sim_command(&topology.path, SimCommand::Cloud(command)).await
        }
        Command::Cli { topology, node } => interactive::cli(&topology.path, &node).await,
        Command::Node {
            topology,
            repair,
            node,
        } => up::single_node(&topology.path, &node, repair).await,
        Command::Sim { topology } => sim::sim(&topology.path).await,
        Command::Check { topology } => check::check(&topology.path),
        Command::Bench(args) => bench::bench(args).await,
        Command::Fault { topology, action } => fault::fault(&topology.path, action).await,
        Command::Chaos(args) => chaos::chaos(args).await,
    }
}

/// A topology file and its state directory in the current directory: what every command
/// but `check` and `bench` starts from.
struct FabricFiles {
    topology: Topology,
    state: StateDir,
}

impl FabricFiles {
    fn open(path: &Path) -> Result<FabricFiles, Error> {
        let topology = Topology::load(path)?;
        let cwd = std::env::current_dir().map_err(|source| Error::Io {
            context: "cannot read the current directory".to_owned(),
            source,
        })?;
        let state = StateDir::new(&cwd, &topology);
        Ok(FabricFiles { topology, state })
    }

    /// Each node's address: as the process running it recorded, else as the topology says.
    fn addrs(&self) -> BTreeMap<String, SocketAddr> {
        self.topology
            .nodes
            .iter()
            .map(|spec| (spec.name.clone(), self.listen(spec)))
            .collect()
    }

    fn listen(&self, spec: &crate::topology::NodeSpec) -> SocketAddr {
        self.state.read_listen(&spec.name).unwrap_or(spec.listen)
    }

    /// What the operator presents to the nodes: the state directory's admin token and the
    /// operator's certificate from its PKI.
    fn operator(&self) -> Result<Operator, Error> {
        self.operator_with(&self.state.token()?)
    }

    /// [`FabricFiles::operator`] with a token already read.
    fn operator_with(&self, token: &str) -> Result<Operator, Error> {
        let pki =
            crate::sim::pki::Pki::open(&self.state.pki_dir()).map_err(crate::sim::lab::LabError::from)?;
        let credentials = pki
            .operator_credentials()
            .map_err(crate::sim::lab::LabError::from)?;
        Operator::new(token, &credentials).map_err(|source| Error::Operator {
            dir: self.state.pki_dir(),
            source,
        })
    }

    /// The address of `node`, or an error naming the nodes there are.
    fn addr(&self, node: &str) -> Result<SocketAddr, Error> {
        let spec = self.topology.node(node).ok_or_else(|| Error::UnknownNode {
            node: node.to_owned(),
            path: self.topology.source.clone(),
            known: self
                .topology
                .nodes
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
        Ok(self.listen(spec))
    }
}

async fn sim_command(path: &Path, command: SimCommand) -> Result<ExitCode, Error> {
    let files = FabricFiles::open(path)?;
    let no_simulators = || Error::NoSimulators {
        fabric: files.topology.fabric.name.clone(),
        path: path.to_owned(),
    };
    let addr = files.state.read_sim_listen().ok_or_else(no_simulators)?;
    let operator = files.operator()?;
    // A `sim.listen` left by a process that was killed names a port nobody serves.
    let output = match crate::rpc::client::sim(addr, &operator, command).await {
        Err(ClientError::Connect { .. }) => return Err(no_simulators()),
        result => result?,
    };
    print!("{output}");
    Ok(ExitCode::SUCCESS)
}

/// How often `status --wait` asks again.
const STATUS_POLL: std::time::Duration = std::time::Duration::from_millis(200);

async fn status(path: &Path, json: bool, wait: Option<f64>) -> Result<ExitCode, Error> {
    let files = FabricFiles::open(path)?;
    let deadline =
        wait.map(|secs| tokio::time::Instant::now() + std::time::Duration::from_secs_f64(secs.max(0.0)));
    let waiting = || deadline.is_some_and(|deadline| tokio::time::Instant::now() < deadline);
    // With --wait, a fabric that `up` has not started yet is waited for.
    let token = loop {
        match files.state.token() {
            Err(StateError::NoToken { .. }) if waiting() => tokio::time::sleep(STATUS_POLL).await,
            token => break token?,
        }
    };
    let operator = files.operator_with(&token)?;
    let (status, bootstrapped) = loop {
        let status = crate::status::collect(&files.topology, &files.addrs(), &operator).await;
        let bootstrapped = bootstrap_applied(&files, &status);
        if !(status.converged && bootstrapped) && waiting() {
            tokio::time::sleep(STATUS_POLL).await;
        } else {
            break (status, bootstrapped);
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&status).expect("status serializes to JSON")
        );
    } else {
        print!("{}", status.table());
    }
    if wait.is_some() && !status.converged {
        eprint!("not converged:\n{}", status.lag());
        return Ok(ExitCode::FAILURE);
    }
    if wait.is_some() && !bootstrapped {
        eprintln!("the topology's bootstrap has not been applied yet (`fabricsim up` runs it)");
        return Ok(ExitCode::FAILURE);
    }
    // Without --wait the table is the answer; a node that cannot be asked still fails the
    // command, so scripts notice a fabric that is not running.
    if status.nodes.iter().any(|node| node.error.is_some()) {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether the fabric has the topology's bootstrap: there is none, or `up` recorded it as
/// applied and the root has reached that revision (a record from an earlier run does not
/// count for a fabric that starts again from nothing).
fn bootstrap_applied(files: &FabricFiles, status: &crate::status::FabricReport) -> bool {
    files.topology.bootstrap.is_empty()
        || files
            .state
            .read_bootstrapped()
            .is_some_and(|applied| status.revision.is_some_and(|revision| revision >= applied))
}

impl From<crate::sim::lab::LabError> for Error {
    fn from(error: crate::sim::lab::LabError) -> Self {
        Error::Lab(Box::new(error))
    }
}

/// Listens for Ctrl-C (SIGINT) and SIGTERM from the first moment of `up`, `node` and `sim`; the
/// token is cancelled by the first of them. Installing the handlers also replaces an
/// inherited "ignore SIGINT" (a shell script's background job), so no stop is lost.
fn listen_for_stop() -> Result<tokio_util::sync::CancellationToken, Error> {
    let stop = tokio_util::sync::CancellationToken::new();
    let cancel = stop.clone();
    let handler_error = |source| Error::Io {
        context: "cannot install the Ctrl-C and SIGTERM handlers".to_owned(),
        source,
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).map_err(handler_error)?;
        let mut terminate = signal(SignalKind::terminate()).map_err(handler_error)?;
        tokio::spawn(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            cancel.cancel();
        });
    }
    #[cfg(not(unix))]
    {
        let _ = handler_error;
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            cancel.cancel();
        });
    }
    Ok(stop)
}
