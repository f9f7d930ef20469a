//! The fabric's Raft group: openraft's type configuration and the three seams it needs.
//!
//! - [`wal`] keeps the log, the vote and the committed index in segment files under the
//!   node's data directory, and [`store`] the latest snapshot in a redb database, so a
//!   killed node restarts where it was; [`log`] is openraft's log store over the former,
//!   which syncs everything queued at once, its writers the threads that write the logs
//!   of one file system and share their syncs.
//! - [`state_machine`] applies [`ConfigCommand`]s to the node's [`ConfigDb`](crate::config::ConfigDb) and publishes
//!   every new configuration on a watch channel; it builds and installs snapshots.
//! - [`network`] carries openraft's RPCs to the peers: AppendEntries on a connection of
//!   its own per peer, in [`append`]'s frames, votes and snapshots over tonic.
//!
//! Commands enter through `Raft::client_write` on the root, one [`Proposal`] per log
//! entry; results leave as the [`ApplyResult`] of each entry and as the published
//! `ConfigDb`.

pub mod append;
pub mod log;
pub mod network;
pub mod state_machine;
pub mod store;
pub mod wal;

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::config::{Applied, CommandError, ConfigCommand};

/// The largest message a peer accepts: snapshots travel in one piece, and tonic's default
/// of 4 MiB would refuse a large configuration's snapshot.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// What one log entry carries: one configuration command, or several the root grouped
/// into one entry (writes that arrived together, see `node::proposer`). A group's
/// commands apply one after another, each standing or falling alone with its own
/// revision, exactly as if each had had its own entry. Written untagged: an entry of one
/// command reads as the command itself, as entries written before groups existed do.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(untagged)]
pub enum Proposal {
    One(ConfigCommand),
    Group(Vec<ConfigCommand>),
}

impl Proposal {
    /// The commands, in the order they apply.
    pub fn commands(&self) -> &[ConfigCommand] {
        match self {
            Proposal::One(command) => std::slice::from_ref(command),
            Proposal::Group(commands) => commands,
        }
    }
}

/// What applying one log entry produced, for each of its commands in order: the new
/// revision, or why the command was refused. An entry without commands (a blank or a
/// membership change) answers the revision it found.
pub type ApplyResult = Vec<Result<Applied, CommandError>>;

openraft::declare_raft_types!(
    /// openraft's types for a fabric: configuration commands in, apply results out.
    pub TypeConfig:
        D = Proposal,
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

/// When node `id` builds a snapshot: after `every` log entries since the last one, and up
/// to a tenth more, which differs from node to node. The logs of a fabric's nodes grow
/// together, and on one machine fifty snapshots at the same entry, each written and
/// synced, held every write up for 10-20 ms.
pub fn snapshot_policy(every: u64, id: NodeId) -> openraft::SnapshotPolicy {
    openraft::SnapshotPolicy::LogsSinceLast(match every / 10 {
        0 => every,
        spread => every + id % spread,
    })
}

#[cfg(test)]
mod tests {
    use openraft::SnapshotPolicy;

    use super::snapshot_policy;

    fn every(every: u64, id: u64) -> u64 {
        let SnapshotPolicy::LogsSinceLast(every) = snapshot_policy(every, id) else {
            unreachable!("a policy by entries")
        };
        every
    }

    #[test]
    fn nodes_snapshot_at_entries_of_their_own_up_to_a_tenth_apart() {
        let spread: Vec<u64> = (1..=50).map(|id| every(500, id)).collect();
        assert!(spread.iter().all(|n| (500..550).contains(n)), "{spread:?}");
        let distinct: std::collections::BTreeSet<_> = spread.iter().collect();
        assert_eq!(distinct.len(), 50);
        assert_eq!(every(5, 3), 5, "too few entries to spread");
    }
}
