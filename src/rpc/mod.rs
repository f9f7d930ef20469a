//! The gRPC edge of a node: the services it serves and the client the commands use.
//!
//! - `Raft` (peers only): openraft's votes and snapshots, handed to the node's `Raft`.
//!   AppendEntries arrives on connections of its own ([`crate::raft::append`]), which
//!   the node's listener tells apart by ALPN and hands to the same checks.
//! - `Member`: a member asks the root to admit it.
//! - `Admin`: a CLI session and the node's status, behind the state directory's token.
//!
//! Every connection is mutual TLS under the fabric CA ([`crate::link`]). `Raft` and
//! `Member` calls are also held to the serial their certificate carries: a Raft request
//! from node N, or a join request for serial S, is refused unless the caller's
//! certificate CN is the serial the topology gives N, or S.
//!
//! Also `Sim`, the lab's control service (`fabricsim ems`, `fabricsim cloud`), behind the
//! same token.
//!
//! The messages are [`crate::wire::proto`]'s; `convert` turns them into the crate's own
//! types and back (`From` impls, one file), so the callers of [`client`] see
//! [`crate::node::NodeStatus`] and [`crate::cli::Reply`], never protobuf.

pub mod client;
mod convert;
mod services;

use std::sync::{Arc, Mutex};

use futures::StreamExt as _;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::link::{Protocol, serve_tls};
use crate::node::Node;

/// The metadata key that carries the admin token.
pub const AUTHORIZATION: &str = "authorization";

/// The metadata key in which the root says why it refused a member's request to join
/// (a `PERMISSION_DENIED` status): [`ADMISSION_PENDING`] or [`ADMISSION_DENIED`].
const ADMISSION: &str = "fabricsim-admission";
/// The member waits for the root's trusted-list to decide.
const ADMISSION_PENDING: &str = "pending";
/// The root's trusted-list denies the member.
const ADMISSION_DENIED: &str = "denied";

/// Serves the lab's `Sim` service on `listener`, over mutual TLS under `tls`, until
/// `shutdown` is cancelled.
pub async fn serve_sim(
    lab: Arc<crate::sim::lab::Lab>,
    token: String,
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    shutdown: CancellationToken,
) {
    let incoming = serve_tls(listener, tls, "simulator control".to_owned());
    let result = tonic::transport::Server::builder()
        .add_service(services::sim_server(lab, &token))
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "simulator control server stopped");
    }
}

/// Serves every service of `node` on `listener`, over mutual TLS under `tls`, until
/// `shutdown` is cancelled.
pub async fn serve(node: Node, listener: TcpListener, tls: Arc<ServerConfig>, shutdown: CancellationToken) {
    let name = node.name().to_owned();
    // Raft connections go to tasks of their own, which end with the shutdown or, when
    // this future is dropped (a kill), with the set; the rest are tonic's.
    let raft_connections: Arc<Mutex<JoinSet<()>>> = Arc::default();
    let (raft_node, raft_shutdown, connections) = (node.clone(), shutdown.clone(), raft_connections.clone());
    let incoming = serve_tls(listener, tls, name.clone()).filter_map(move |connection| {
        let grpc = match connection {
            Ok(connection) if connection.protocol() == Protocol::Raft => {
                let serving = services::serve_append(raft_node.clone(), connection, raft_shutdown.clone());
                let mut connections = connections.lock().expect("Raft connections lock poisoned");
                while connections.try_join_next().is_some() {}
                connections.spawn(serving.in_current_span());
                None
            }
            connection => Some(connection),
        };
        std::future::ready(grpc)
    });
    let result = tonic::transport::Server::builder()
        .add_service(services::raft_server(node.clone()))
        .add_service(services::member_server(node.clone()))
        .add_service(services::admin_server(node))
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await;
    if let Err(e) = result {
        tracing::error!(node = name, error = %e, "gRPC server stopped");
    }
    let mut connections =
        std::mem::take(&mut *raft_connections.lock().expect("Raft connections lock poisoned"));
    while connections.join_next().await.is_some() {}
}
