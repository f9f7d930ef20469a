//! The replicated state machine: applies committed [`ConfigCommand`](crate::config::ConfigCommand)s to the node's
//! [`ConfigDb`] and publishes each new configuration on a watch channel.
//!
//! `ConfigDb::apply` is pure (no clock, no I/O), so every node that applies the same log
//! reaches the same revision and hash. Nothing but snapshots is written here: after a
//! restart the node loads the latest snapshot and openraft re-applies the committed log
//! entries that follow it.

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta, StorageIOError,
    StoredMembership,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::store::{KEY_SNAPSHOT, Store};
use super::{ApplyResult, NodeId, StorageError, TypeConfig};
use crate::config::{Applied, ConfigDb};
use crate::domain::Firmware;

/// What a snapshot holds: everything needed to resume applying after `last_applied`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct MachineState {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, openraft::BasicNode>,
    config: ConfigDb,
}

/// A snapshot as kept in the store: its meta and its serialized [`MachineState`].
#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, openraft::BasicNode>,
    data: Vec<u8>,
}

/// openraft's state machine for one node.
pub struct StateMachine {
    store: Store,
    state: MachineState,
    /// Counts snapshots built by this process, to keep snapshot ids unique.
    snapshots_built: u64,
    config_tx: watch::Sender<Arc<ConfigDb>>,
    /// The fabric's firmware: the schemas every configuration is read under. Snapshots do
    /// not carry it.
    firmware: Firmware,
}

impl StateMachine {
    /// Restores the state from the latest stored snapshot, if any, under `firmware`'s
    /// schemas. The returned receiver sees every configuration this machine applies.
    pub fn open(
        store: Store,
        firmware: Firmware,
    ) -> Result<(StateMachine, watch::Receiver<Arc<ConfigDb>>), redb::Error> {
        let mut state: MachineState = match store.read_meta::<StoredSnapshot>(KEY_SNAPSHOT)? {
            Some(snapshot) => serde_json::from_slice(&snapshot.data).map_err(|e| {
                redb::Error::Corrupted(format!(
                    "the stored snapshot's configuration is not what this version writes: {e}"
                ))
            })?,
            None => MachineState::default(),
        };
        state.config = state.config.with_firmware(firmware);
        let (config_tx, config_rx) = watch::channel(Arc::new(state.config.clone()));
        let machine = StateMachine {
            store,
            state,
            snapshots_built: 0,
            config_tx,
            firmware,
        };
        Ok((machine, config_rx))
    }

    fn publish(&self) {
        self.config_tx.send_replace(Arc::new(self.state.config.clone()));
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let data = serde_json::to_vec(&self.state).expect("machine state serializes to JSON");
        self.snapshots_built += 1;
        let snapshot_id = match &self.state.last_applied {
            Some(id) => format!("{}-{}-{}", id.leader_id, id.index, self.snapshots_built),
            None => format!("empty-{}", self.snapshots_built),
        };
        let meta = SnapshotMeta {
            last_log_id: self.state.last_applied,
            last_membership: self.state.membership.clone(),
            snapshot_id,
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        };
        self.store
            .write_meta(KEY_SNAPSHOT, &stored)
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), AnyError::new(&e)))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<
        (
            Option<LogId<NodeId>>,
            StoredMembership<NodeId, openraft::BasicNode>,
        ),
        StorageError,
    > {
        Ok((self.state.last_applied, self.state.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ApplyResult>, StorageError>
    where
        I: IntoIterator<Item = openraft::Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut results = Vec::new();
        let mut config_changed = false;
        for entry in entries {
            self.state.last_applied = Some(entry.log_id);
            let unchanged = Applied {
                revision: self.state.config.revision(),
            };
            let result = match entry.payload {
                EntryPayload::Blank => vec![Ok(unchanged)],
                EntryPayload::Normal(proposal) => {
                    let applied: ApplyResult = proposal
                        .commands()
                        .iter()
                        .map(|command| self.state.config.apply(command))
                        .collect();
                    config_changed |= applied.iter().any(Result::is_ok);
                    applied
                }
                EntryPayload::Membership(membership) => {
                    self.state.membership = StoredMembership::new(Some(entry.log_id), membership);
                    vec![Ok(unchanged)]
                }
            };
            results.push(result);
        }
        if config_changed {
            self.publish();
        }
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        StateMachine {
            store: self.store.clone(),
            state: self.state.clone(),
            snapshots_built: self.snapshots_built,
            config_tx: self.config_tx.clone(),
            firmware: self.firmware,
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let state: MachineState = serde_json::from_slice(&data)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), AnyError::new(&e)))?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        self.store
            .write_meta(KEY_SNAPSHOT, &stored)
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), AnyError::new(&e)))?;
        self.state = MachineState {
            config: state.config.with_firmware(self.firmware),
            ..state
        };
        self.publish();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let stored = self
            .store
            .read_meta::<StoredSnapshot>(KEY_SNAPSHOT)
            .map_err(|e| StorageIOError::read_snapshot(None, AnyError::new(&e)))?;
        Ok(stored.map(|stored| Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        }))
    }
}
