//! The generated protobuf and gRPC code (`build.rs` compiles `proto/` with protox).

/// `proto/fabric.proto`: admin, member and simulator services.
pub mod fabric {
    tonic::include_proto!("fabricsim.fabric");
}

/// `proto/raft.proto`: openraft's RPCs between peers.
pub mod raft {
    tonic::include_proto!("fabricsim.raft");
}
