//! `fabricsim sim`: the simulated world of a topology (its [`Lab`]: EMS servers,
//! FortiCloud and its EMS Cloud server) with its control service, on their own, for a
//! fabric whose nodes run as separate `fabricsim node` processes. `up` runs the same lab
//! inside its own process; `node` runs none.
//!
//! The lab keeps its PKI in the state directory, where every `fabricsim node` reads the
//! fabric's trust anchors, and records the control service's address in `sim.listen`,
//! where `fabricsim ems` and `fabricsim cloud` find it.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{Error, FabricFiles};
use crate::link::Protocol;
use crate::sim::lab::Lab;
use crate::state_dir::StateDir;
use crate::topology::Topology;

/// Runs the simulators of the topology at `path` until Ctrl-C or SIGTERM.
pub(super) async fn sim(path: &Path) -> Result<ExitCode, Error> {
    let stop = super::listen_for_stop()?;
    let files = FabricFiles::open(path)?;
    let (topology, state) = (&files.topology, &files.state);
    let token = state.ensure_token()?;
    let lab = Arc::new(Lab::start(topology, &state.pki_dir()).await?);
    println!(
        "simulators of fabric {} from {}, PKI in {}",
        topology.fabric.name,
        path.display(),
        state.pki_dir().display()
    );
    print_lab(&lab);
    if !has_simulators(topology) {
        println!("  this topology has no [[ems]] and no [forticloud]: nothing to simulate");
    }
    let control = async {
        let tls = control_tls(&lab, state)?;
        Ok::<_, Error>((bind_control(state).await?, tls))
    };
    let (control, tls) = match control.await {
        Ok(control) => control,
        Err(e) => {
            stop_lab(lab).await;
            return Err(e);
        }
    };
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(crate::rpc::serve_sim(
        lab.clone(),
        token,
        control,
        tls,
        shutdown.clone(),
    ));
    println!(
        "simulators of fabric {} are running; `fabricsim ems` and `fabricsim cloud` drive \
         them; Ctrl-C stops them",
        topology.fabric.name
    );
    stop.cancelled().await;
    shutdown.cancel();
    let _ = server.await;
    state.clear_sim_listen();
    stop_lab(lab).await;
    println!("simulators of fabric {} stopped", topology.fabric.name);
    Ok(ExitCode::SUCCESS)
}

/// Stops the lab once the control service, its only other holder, has stopped.
async fn stop_lab(lab: Arc<Lab>) {
    match Arc::try_unwrap(lab) {
        Ok(lab) => lab.shutdown().await,
        Err(_) => unreachable!("only the control service shares the lab, and it has stopped"),
    }
}

/// Whether the topology has anything for `fabricsim sim` to run.
pub(super) fn has_simulators(topology: &Topology) -> bool {
    !topology.ems.is_empty() || topology.forticloud.is_some()
}

/// What `fabricsim node` prints: it runs one node, not the simulators.
pub(super) fn node_runs_no_simulators(topology: &Topology) -> Option<String> {
    has_simulators(topology).then(|| {
        format!(
            "this process runs no simulators (EMS servers, FortiCloud); start them with \
             `fabricsim sim -c {}`",
            topology.source.display()
        )
    })
}

/// Prints the simulators the lab started, one line each.
pub(super) fn print_lab(lab: &Lab) {
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
}

/// The TLS the control service presents: the operator's certificate, which `ems` and
/// `cloud` verify by the fabric CA.
fn control_tls(lab: &Lab, state: &StateDir) -> Result<Arc<rustls::ServerConfig>, Error> {
    lab.operator_credentials()?
        .server_config(&[Protocol::Grpc])
        .map_err(|source| Error::Operator {
            dir: state.pki_dir(),
            source,
        })
}

/// Binds the simulators' control service on loopback and records its address in
/// `sim.listen`, where `ems` and `cloud` look for it.
pub(super) async fn bind_control(state: &StateDir) -> Result<TcpListener, Error> {
    let control = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(|source| Error::Io {
            context: "cannot listen for simulator control on 127.0.0.1".to_owned(),
            source,
        })?;
    let addr = control.local_addr().map_err(|source| Error::Io {
        context: "simulator control listener".to_owned(),
        source,
    })?;
    state.write_sim_listen(addr)?;
    Ok(control)
}
