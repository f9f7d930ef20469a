//! The wire contracts: what crosses a socket, written once for both ends.
//!
//! - [`proto`]: the generated protobuf messages and gRPC stubs of `proto/*.proto` (the
//!   fabric's admin, member and simulator services, and the Raft transport).
//! - [`CloudAccess`]: where a FortiGate finds FortiCloud and EMS Cloud.
//!
//! Nothing here opens a socket: the ends that do ([`crate::rpc`], [`crate::raft`]) import
//! these types, so a field renamed on one side is renamed on the other.

pub mod proto;

use std::net::SocketAddr;

/// The addresses of FortiCloud's API and of the EMS Cloud server: the simulated world
/// listens there ([`crate::sim::lab::Lab::cloud_access`]) and every node dials them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloudAccess {
    pub api: SocketAddr,
    pub ems: SocketAddr,
}
