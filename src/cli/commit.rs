//! How a command changes the configuration: the permission check, the commit of one
//! [`ConfigCommand`], and the commit of a pending entry on `next` or `end`.
//!
//! Changes leave the CLI only through [`Backend::commit`], which on the root proposes the
//! command to Raft and returns what `ConfigDb::apply` said; a refusal comes back as
//! [`CliError::Commit`].

use crate::config::schema::{TableKind, TableSchema};
use crate::config::{Applied, ConfigCommand};

use super::backend::{Backend, may_modify};
use super::context::Pending;
use super::ems_cloud;
use super::error::CliError;

/// Refuses a change this node may not make (see [`may_modify`]).
pub(super) fn require_modify<B: Backend>(backend: &B, table: &TableSchema) -> Result<(), CliError> {
    if may_modify(backend.identity(), table, &backend.config()) {
        Ok(())
    } else {
        Err(CliError::NotAllowed)
    }
}

/// Commits the pending entry if it differs from what the node has applied; `None` when
/// it does not.
pub(super) async fn commit_pending<B: Backend>(
    backend: &B,
    pending: &Pending,
) -> Result<Option<Applied>, CliError> {
    let unchanged = {
        let db = backend.config();
        match db.entry(pending.table.path, &pending.key) {
            Some(stored) => *stored.values() == pending.values,
            // An object never written equals one with only defaults.
            None => pending.table.kind == TableKind::Object && pending.values.is_empty(),
        }
    };
    if unchanged {
        return Ok(None);
    }
    require_modify(backend, pending.table)?;
    if ems_cloud::enables_ems_cloud(&backend.config(), pending) {
        ems_cloud::require_ems_cloud(backend).await?;
    }
    commit(
        backend,
        ConfigCommand::SetEntry {
            table: pending.table.path.to_owned(),
            key: pending.key.clone(),
            values: pending.values.clone(),
        },
    )
    .await
    .map(Some)
}

/// Commits `command`; what `ConfigDb::apply` reported, or why it was refused.
pub(super) async fn commit<B: Backend>(backend: &B, command: ConfigCommand) -> Result<Applied, CliError> {
    backend.commit(command).await.map_err(CliError::Commit)
}
