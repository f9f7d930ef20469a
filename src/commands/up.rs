//! `fabricsim up` (every node in this process) and `fabricsim node` (one node).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::{Error, FabricFiles, listen_for_stop};
use crate::launcher::{self, LaunchError, Plan, Ports, RunningFabric};
use crate::state_dir::{NodeLock, StateDir, StateError};
use crate::status::FabricReport;
use crate::topology::Role;
use crate::wire::CloudAccess;

/// How long `up` waits for every node to join and converge before it reports the lag.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How often `up` looks at the fabric while it comes up.
const READY_POLL: Duration = Duration::from_millis(100);

/// `work`, or `None` when a stop comes first.
async fn until_stopped<T>(stop: &CancellationToken, work: impl Future<Output = T>) -> Option<T> {
    tokio::select! {
        biased;
        () = stop.cancelled() => None,
        out = work => Some(out),
    }
}

pub(super) async fn up(path: &Path, fresh: bool) -> Result<ExitCode, Error> {
    let stop = listen_for_stop()?;
    let files = FabricFiles::open(path)?;
    let topology = &files.topology;
    let state = &files.state;
    let locks: Vec<NodeLock> = topology
        .nodes
        .iter()
        .map(|spec| state.lock_node(&spec.name))
        .collect::<Result<_, _>>()?;
    if fresh {
        for (spec, lock) in topology.nodes.iter().zip(&locks) {
            state.clear_node(&spec.name, lock)?;
        }
        state.clear_bootstrapped();
    }
    let had_token = state.token().is_ok();
    let token = state.ensure_token()?;
    let logs = super::logs::write_under(state);
    println!(
        "fabric {}: {} nodes from {}, state in {}{}",
        topology.fabric.name,
        topology.nodes.len(),
        path.display(),
        state.path().display(),
        if fresh { " (fresh)" } else { "" }
    );
    println!("  logs in {logs}");
    let started = run_fabric(&files, &token, &stop).await;
    state.clear_sim_listen();
    // A token made for a fabric that never started is not left behind.
    if !matches!(started, Ok(true)) && !had_token {
        state.remove_token();
    }
    drop(locks);
    started.map(|_| ExitCode::SUCCESS)
}

/// Starts the fabric, brings it up and keeps it up until a stop. Whether it started: a
/// stop during the start-up is not an error.
async fn run_fabric(files: &FabricFiles, token: &str, stop: &CancellationToken) -> Result<bool, Error> {
    let (topology, state) = (&files.topology, &files.state);
    let plan = state_plan(state, token);
    let mut fabric = match RunningFabric::start_until(topology.clone(), plan, stop).await {
        Ok(fabric) => fabric,
        Err(LaunchError::Cancelled) => {
            println!("fabric {} stopped before it had started", topology.fabric.name);
            return Ok(false);
        }
        Err(e) => return Err(e.into()),
    };
    print_started(&fabric);
    let ready = match record_addresses(&mut fabric, state).await {
        Ok(()) => come_up(&fabric, state, stop).await,
        Err(e) => Err(e),
    };
    match &ready {
        Ok(Some(status)) => {
            print!("{}", status.table());
            println!("fabric {} is up; Ctrl-C stops it", topology.fabric.name);
            stop.cancelled().await;
        }
        Ok(None) => println!("stopping before the fabric was ready"),
        Err(_) => {}
    }
    println!("stopping {} nodes", topology.nodes.len());
    fabric.stop().await;
    println!("fabric {} stopped", topology.fabric.name);
    ready.map(|_| true)
}

/// Waits until every node has joined and converged, and on a new fabric runs the
/// topology's bootstrap, recording in the state directory when it has been applied (what
/// `status --wait` waits for). `None` when a stop came first.
async fn come_up(
    fabric: &RunningFabric,
    state: &StateDir,
    stop: &CancellationToken,
) -> Result<Option<FabricReport>, Error> {
    let Some(mut status) = until_stopped(stop, wait_ready(fabric)).await else {
        return Ok(None);
    };
    if fabric.topology().bootstrap.is_empty() {
        return Ok(Some(status));
    }
    // A bootstrap runs on a new fabric, and again when a stop interrupted it.
    if status.revision == Some(0) || state.bootstrap_interrupted() {
        state.mark_bootstrap_started()?;
        match until_stopped(stop, bootstrap(fabric)).await {
            Some(done) => status = done?,
            None => return Ok(None),
        }
    }
    if let Some(revision) = status.revision {
        state.write_bootstrapped(revision)?;
    }
    Ok(Some(status))
}

/// Where `up` and `node` keep a fabric: the state directory's layout (node data in
/// `<state>/<node>`, the PKI in its `pki_dir`), on the topology's ports.
fn state_plan(state: &StateDir, token: &str) -> Plan {
    Plan {
        data_root: state.path().to_owned(),
        pki_dir: state.pki_dir(),
        token: token.to_owned(),
        ports: Ports::Topology,
    }
}

/// Prints what the fabric started: its simulated servers, then its nodes.
fn print_started(fabric: &RunningFabric) {
    super::sim::print_lab(fabric.lab());
    let mut nodes: Vec<_> = fabric.topology().nodes.iter().collect();
    nodes.sort_by_key(|spec| spec.role != Role::Root);
    for spec in nodes {
        let Ok(addrs) = fabric.node_addrs(&spec.name) else {
            continue;
        };
        println!(
            "  started {:<12} {}  {:<6}  {}  https://{}/  ssh {}",
            spec.name, spec.serial, spec.role, addrs.grpc, addrs.https, addrs.ssh
        );
    }
}

/// Records every node's address and the simulators' control address in the state
/// directory, where the other commands look for them, and serves the control service.
async fn record_addresses(fabric: &mut RunningFabric, state: &StateDir) -> Result<(), Error> {
    for (name, addr) in fabric.addrs() {
        state.write_listen(&name, addr)?;
    }
    let control = super::sim::bind_control(state).await?;
    fabric.serve_control(control)?;
    Ok(())
}

/// Runs the topology's `[bootstrap]` lines on the root (questions answered `y`) and waits
/// for the fabric to converge on the result.
async fn bootstrap(fabric: &RunningFabric) -> Result<FabricReport, Error> {
    println!(
        "bootstrap: running {} lines on {}",
        fabric.topology().bootstrap.len(),
        fabric.topology().root().name
    );
    if let Some(reply) = fabric.bootstrap().await?
        && reply.failed
    {
        print!("{}", reply.output);
        println!("bootstrap: a line failed (above); the fabric runs with what was applied");
    }
    Ok(wait_ready(fabric).await)
}

/// Waits until every node has joined and applied the root's revision, printing progress,
/// or until those that have not wait for an administrator (see
/// [`FabricReport::settled`]); gives up after [`READY_TIMEOUT`] with each node's lag.
async fn wait_ready(fabric: &RunningFabric) -> FabricReport {
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    let total = fabric.topology().nodes.len();
    let mut shown = usize::MAX;
    loop {
        let status = crate::status::collect(fabric.topology(), &fabric.addrs(), fabric.operator()).await;
        let converged = status.nodes.iter().filter(|n| n.converged).count();
        if converged != shown {
            println!("  {converged}/{total} nodes converged");
            shown = converged;
        }
        if status.converged {
            return status;
        }
        if status.settled() {
            println!("  the others wait for the root's trusted-list:");
            for line in status.lag().lines() {
                println!("    {line}");
            }
            return status;
        }
        if tokio::time::Instant::now() >= deadline {
            print!("{}", status.table());
            println!(
                "the fabric did not converge within {READY_TIMEOUT:?}:\n{}",
                status.lag()
            );
            return status;
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

pub(super) async fn single_node(path: &Path, name: &str, repair: bool) -> Result<ExitCode, Error> {
    let stop = listen_for_stop()?;
    let files = FabricFiles::open(path)?;
    files.addr(name)?;
    let topology = &files.topology;
    let spec = topology.node(name).expect("addr() checked the name");
    let state = &files.state;
    let _lock = state.lock_node(name)?;
    let logs = super::logs::write_under(state);
    if repair && !repair_node(&files, spec)? {
        return Ok(ExitCode::SUCCESS);
    }
    launcher::check_node_data(topology, spec, &state.node_dir(name))?;
    let token = state.ensure_token()?;
    let (listeners, addrs) = launcher::bind_node(spec, Ports::Topology).await?;
    let addr = addrs.grpc;
    let root = topology.root();
    let root_addr = state.read_listen(&root.name).unwrap_or(root.listen);
    let plan = state_plan(state, &token);
    let pki = crate::sim::pki::Pki::open(&plan.pki_dir).map_err(crate::sim::lab::LabError::from)?;
    let anchors = pki.trust_anchors();
    let identity = pki
        .node_identity(name, &spec.hostname, addrs.https.ip())
        .map_err(crate::sim::lab::LabError::from)?;
    // A lone node finds FortiCloud where the topology says; `up` runs it.
    let cloud = topology.forticloud.as_ref().map(|spec| CloudAccess {
        api: spec.listen,
        ems: spec.ems_listen,
    });
    let credentials = pki
        .csf_credentials(name, &spec.serial, addr.ip())
        .map_err(crate::sim::lab::LabError::from)?;
    let provision = crate::node::Provision {
        data_dir: plan.data_dir(name),
        root_addr: Some(root_addr),
        admin_token: token.clone(),
        trust_anchors: anchors,
        cloud,
        credentials,
        // `fabricsim fault` changes them through the admin service.
        links: crate::link::Links::default(),
    };
    let config = crate::node::NodeConfig::from_topology(topology, spec, provision);
    state.write_listen(name, addr)?;
    println!(
        "node {name} ({}, {}) listening on {addr}, https://{}/, ssh {}; Ctrl-C stops it",
        spec.serial, spec.role, addrs.https, addrs.ssh
    );
    println!("  logs in {logs}");
    if let Some(note) = super::sim::node_runs_no_simulators(topology) {
        println!("{note}");
    }
    crate::server::run(topology, config, listeners, identity, stop.cancelled())
        .instrument(crate::node::span(name))
        .await?;
    println!("node {name} stopped");
    Ok(ExitCode::SUCCESS)
}

/// `node --repair`: moves a stopped member's data aside so that it starts empty and
/// catches up from the root. Returns whether to run the node now: when the root runs in
/// another process (`fabricsim node ROOT`); under `up`, the next `up` starts it.
fn repair_node(files: &FabricFiles, spec: &crate::topology::NodeSpec) -> Result<bool, Error> {
    if spec.role == Role::Root {
        return Err(LaunchError::RepairRoot.into());
    }
    let data_dir = files.state.node_dir(&spec.name);
    let moved = crate::node::set_aside_data(&data_dir, files.topology.fabric.firmware).map_err(|source| {
        LaunchError::SetAside {
            node: spec.name.clone(),
            source,
        }
    })?;
    if moved.is_empty() {
        println!("node {} has no Raft data to move aside", spec.name);
    }
    for aside in &moved {
        println!("node {}: moved aside to {}", spec.name, aside.display());
    }
    let root = &files.topology.root().name;
    match files.state.lock_node(root) {
        Ok(free) => {
            drop(free);
            println!(
                "node {} starts empty and catches up from the root at the next `fabricsim up`",
                spec.name
            );
            Ok(false)
        }
        Err(StateError::Locked { .. }) => {
            println!(
                "node {} starts empty and catches up from the running root",
                spec.name
            );
            Ok(true)
        }
        Err(e) => Err(e.into()),
    }
}
