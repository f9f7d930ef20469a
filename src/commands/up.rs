//! `fabricsim up` (every node in this process) and `fabricsim node` (one node).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use tokio::net::TcpListener;

use super::{Error, FabricFiles};
use crate::launcher::{self, Plan, Ports, RunningFabric};
use crate::state_dir::{NodeLock, StateDir};
use crate::status::FabricReport;
use crate::topology::Role;
use crate::wire::CloudAccess;

/// How long `up` waits for every node to join and converge before it reports the lag.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How often `up` looks at the fabric while it comes up.
const READY_POLL: Duration = Duration::from_millis(100);

/// Resolves when the process receives Ctrl-C or SIGTERM.
async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler succeeds on Unix");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

pub(super) async fn up(path: &Path, fresh: bool) -> Result<ExitCode, Error> {
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
    }
    let token = state.ensure_token()?;
    println!(
        "fabric {}: {} nodes from {}, state in {}{}",
        topology.fabric.name,
        topology.nodes.len(),
        path.display(),
        state.path().display(),
        if fresh { " (fresh)" } else { "" }
    );
    let plan = state_plan(state, &token);
    let mut fabric = RunningFabric::start(topology.clone(), plan).await?;
    print_started(&fabric);
    if let Err(e) = record_addresses(&mut fabric, state).await {
        fabric.stop().await;
        return Err(e);
    }

    let ready = tokio::select! {
        ready = wait_ready(&fabric) => ready,
        () = stop_signal() => None,
    };
    match ready {
        Some(mut status) => {
            if status.revision == Some(0) && !topology.bootstrap.is_empty() {
                status = tokio::select! {
                    status = bootstrap(&fabric) => status?,
                    () = stop_signal() => None,
                }
                .unwrap_or(status);
            }
            print!("{}", status.table());
            println!("fabric {} is up; Ctrl-C stops it", topology.fabric.name);
            stop_signal().await;
        }
        None => println!("stopping before the fabric was ready"),
    }
    println!("stopping {} nodes", topology.nodes.len());
    fabric.stop().await;
    state.clear_sim_listen();
    drop(locks);
    println!("fabric {} stopped", topology.fabric.name);
    Ok(ExitCode::SUCCESS)
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
    let lab = fabric.lab();
    for server in lab.servers() {
        println!(
            "  started EMS {:<8} {}  {:<11}  {}",
            server.name(),
            server.spec().serial,
            server.spec().certificate.to_string(),
            server.addr()
        );
    }
    if let Some(access) = lab.cloud_access() {
        println!("  started FortiCloud {}, EMS Cloud {}", access.api, access.ems);
    }
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
    let control = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(|source| Error::Io {
            context: "cannot listen for simulator control on 127.0.0.1".to_owned(),
            source,
        })?;
    state.write_sim_listen(control.local_addr().map_err(|source| Error::Io {
        context: "simulator control listener".to_owned(),
        source,
    })?)?;
    fabric.serve_control(control)?;
    Ok(())
}

/// Runs the topology's `[bootstrap]` lines on the root (questions answered `y`) and waits
/// for the fabric to converge on the result.
async fn bootstrap(fabric: &RunningFabric) -> Result<Option<FabricReport>, Error> {
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

/// Waits until every node has joined and applied the root's revision, printing progress;
/// gives up after [`READY_TIMEOUT`] with each node's lag.
async fn wait_ready(fabric: &RunningFabric) -> Option<FabricReport> {
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
            return Some(status);
        }
        if tokio::time::Instant::now() >= deadline {
            print!("{}", status.table());
            println!(
                "the fabric did not converge within {READY_TIMEOUT:?}:\n{}",
                status.lag()
            );
            return Some(status);
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

pub(super) async fn single_node(path: &Path, name: &str) -> Result<ExitCode, Error> {
    let files = FabricFiles::open(path)?;
    files.addr(name)?;
    let topology = &files.topology;
    let spec = topology.node(name).expect("addr() checked the name");
    let state = &files.state;
    let _lock = state.lock_node(name)?;
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
    crate::server::run(config, listeners, identity, stop_signal()).await?;
    println!("node {name} stopped");
    Ok(ExitCode::SUCCESS)
}
