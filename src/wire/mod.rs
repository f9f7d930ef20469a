//! The wire contracts: what crosses a socket, written once for both ends.
//!
//! - [`proto`]: the generated protobuf messages and gRPC stubs of `proto/*.proto` (the
//!   fabric's admin, member and simulator services, and the Raft transport).
//!
//! Nothing here opens a socket: the ends that do ([`crate::rpc`], [`crate::raft`]) import
//! these types, so a field renamed on one side is renamed on the other.

pub mod proto;
