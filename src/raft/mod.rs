//! The fabric's Raft group: openraft's type configuration and the three seams it needs.
//!
//! - [`store`] keeps the log, the vote, the committed index and the latest snapshot in one
//!   redb database under the node's data directory, so a killed node restarts where it was;
//!   [`log`] is openraft's log store over it, which syncs everything queued at once.
//! - [`state_machine`] applies [`ConfigCommand`]s to the node's [`ConfigDb`](crate::config::ConfigDb) and publishes
//!   every new configuration on a watch channel; it builds and installs snapshots.
//! - [`network`] carries openraft's RPCs over tonic, one cached channel per peer.
//!
//! Commands enter through `Raft::client_write` on the root; results leave as the
//! [`ApplyResult`] of each entry and as the published `ConfigDb`.

pub mod log;
pub mod network;
pub mod state_machine;
pub mod store;

use std::io::Cursor;

use crate::config::{Applied, CommandError, ConfigCommand};

/// What applying one log entry produced: the new revision, or why the command was refused.
pub type ApplyResult = Result<Applied, CommandError>;

openraft::declare_raft_types!(
    /// openraft's types for a fabric: configuration commands in, apply results out.
    pub TypeConfig:
        D = ConfigCommand,
        R = ApplyResult,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A node's Raft id, as given by the topology.
pub type NodeId = u64;

/// The Raft handle of one node.
pub type Raft = openraft::Raft<TypeConfig>;

/// openraft's storage error for this type configuration.
pub type StorageError = openraft::StorageError<NodeId>;
