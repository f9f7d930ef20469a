//! `fabricsim up` (every node in this process) and `fabricsim node` (one node).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use tokio::net::TcpListener;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{Error, Fabric};
use crate::node::{NodeConfig, RunningNode};
use crate::rpc::client::AdminConnection;
use crate::sim::lab::Lab;
use crate::state_dir::NodeLock;
use crate::topology::{NodeSpec, Role};

/// How long `up` waits for every node to join and converge before it reports the lag.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How often `up` looks at the fabric while it comes up.
const READY_POLL: Duration = Duration::from_millis(100);

async fn bind(spec: &NodeSpec) -> Result<TcpListener, Error> {
    TcpListener::bind(spec.listen)
        .await
        .map_err(|source| Error::Listen {
            node: spec.name.clone(),
            addr: spec.listen,
            source,
        })
}

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
    let fabric = Fabric::open(path)?;
    let topology = &fabric.topology;
    let state = &fabric.state;
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

    // Bind every address before starting anything, so a taken port stops nothing halfway.
    let mut listeners = Vec::new();
    for spec in &topology.nodes {
        listeners.push((spec, bind(spec).await?));
    }
    listeners.sort_by_key(|(spec, _)| spec.role != Role::Root);

    let lab = Arc::new(Lab::start(topology, &state.pki_dir()).await?);
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
    let sim_shutdown = CancellationToken::new();
    let sim_listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(|source| Error::Io {
            context: "cannot listen for simulator control on 127.0.0.1".to_owned(),
            source,
        })?;
    state.write_sim_listen(sim_listener.local_addr().map_err(|source| Error::Io {
        context: "simulator control listener".to_owned(),
        source,
    })?)?;
    let sim_server = tokio::spawn(crate::rpc::serve_sim(
        lab.clone(),
        token.clone(),
        sim_listener,
        sim_shutdown.clone(),
    ));

    let mut running: Vec<RunningNode> = Vec::new();
    let mut root_addr = None;
    for (spec, listener) in listeners {
        let addr = listener.local_addr().map_err(|source| Error::Listen {
            node: spec.name.clone(),
            addr: spec.listen,
            source,
        })?;
        let config = NodeConfig::from_topology(
            topology,
            spec,
            state.node_dir(&spec.name),
            root_addr,
            &token,
            lab.trust_anchors(),
            lab.cloud_access(),
        );
        let node = match RunningNode::start(config, listener).await {
            Ok(node) => node,
            Err(e) => {
                stop_all(running).await;
                return Err(e.into());
            }
        };
        state.write_listen(&spec.name, addr)?;
        if spec.role == Role::Root {
            root_addr = Some(addr);
        }
        println!(
            "  started {:<12} {}  {:<6}  {addr}",
            spec.name, spec.serial, spec.role
        );
        running.push(node);
    }

    let ready = tokio::select! {
        ready = wait_ready(&fabric, &token) => ready,
        () = stop_signal() => None,
    };
    match ready {
        Some(mut status) => {
            if status.revision == Some(0) && !topology.bootstrap.is_empty() {
                status = tokio::select! {
                    status = bootstrap(&fabric, &token) => status?,
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
    println!("stopping {} nodes", running.len());
    stop_all(running).await;
    sim_shutdown.cancel();
    let _ = sim_server.await;
    state.clear_sim_listen();
    if let Ok(lab) = Arc::try_unwrap(lab) {
        lab.shutdown().await;
    }
    drop(locks);
    println!("fabric {} stopped", topology.fabric.name);
    Ok(ExitCode::SUCCESS)
}

/// Runs the topology's `[bootstrap]` lines on the root (questions answered `y`) and waits
/// for the fabric to converge on the result.
async fn bootstrap(fabric: &Fabric, token: &str) -> Result<Option<crate::status::FabricStatus>, Error> {
    let root = &fabric.topology.root().name;
    let addr = fabric.addr(root)?;
    println!(
        "bootstrap: running {} lines on {root}",
        fabric.topology.bootstrap.len()
    );
    let mut session = AdminConnection::connect(addr, token).await?.session().await?;
    let reply = session.script(&fabric.topology.bootstrap, "y").await?;
    if reply.failed {
        print!("{}", reply.output);
        println!("bootstrap: a line failed (above); the fabric runs with what was applied");
    }
    Ok(wait_ready(fabric, token).await)
}

/// Waits until every node has joined and applied the root's revision, printing progress;
/// gives up after [`READY_TIMEOUT`] with each node's lag.
async fn wait_ready(fabric: &Fabric, token: &str) -> Option<crate::status::FabricStatus> {
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    let total = fabric.topology.nodes.len();
    let mut shown = usize::MAX;
    loop {
        let status = crate::status::collect(&fabric.topology, &fabric.addrs(), token).await;
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

/// Members first, concurrently, then the root, so no member sees its root vanish first.
async fn stop_all(running: Vec<RunningNode>) {
    let (roots, members): (Vec<_>, Vec<_>) = running.into_iter().partition(|n| n.node().role() == Role::Root);
    futures::future::join_all(members.into_iter().map(RunningNode::shutdown)).await;
    futures::future::join_all(roots.into_iter().map(RunningNode::shutdown)).await;
}

pub(super) async fn single_node(path: &Path, name: &str) -> Result<ExitCode, Error> {
    let fabric = Fabric::open(path)?;
    fabric.addr(name)?;
    let topology = &fabric.topology;
    let spec = topology.node(name).expect("addr() checked the name");
    let state = &fabric.state;
    let _lock = state.lock_node(name)?;
    let token = state.ensure_token()?;
    let listener = bind(spec).await?;
    let addr = listener.local_addr().map_err(|source| Error::Listen {
        node: spec.name.clone(),
        addr: spec.listen,
        source,
    })?;
    let root = topology.root();
    let root_addr = state.read_listen(&root.name).unwrap_or(root.listen);
    let anchors = crate::sim::pki::Pki::open(&state.pki_dir())
        .map_err(crate::sim::lab::LabError::from)?
        .trust_anchors();
    // A lone node finds FortiCloud where the topology says; `up` runs it.
    let cloud = topology
        .forticloud
        .as_ref()
        .map(|spec| crate::node::checker::CloudAccess {
            api: spec.listen,
            ems: spec.ems_listen,
        });
    let config = NodeConfig::from_topology(
        topology,
        spec,
        state.node_dir(name),
        Some(root_addr),
        &token,
        anchors,
        cloud,
    );
    state.write_listen(name, addr)?;
    println!(
        "node {name} ({}, {}) listening on {addr}; Ctrl-C stops it",
        spec.serial, spec.role
    );
    crate::node::run(config, listener, stop_signal()).await?;
    println!("node {name} stopped");
    Ok(ExitCode::SUCCESS)
}
