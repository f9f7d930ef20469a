//! A node's own configuration: the tables that are not replicated.
//!
//! Every FortiGate keeps its `system csf`, its `system console` and its accounts (`system admin`,
//! `system api-user`) to itself. A member whose `system csf` says
//! `configuration-sync local` also keeps its own copy of the EMS tables
//! ([`LOCAL_SYNC_TABLES`]): switching to `local` copies what the root last replicated,
//! the root's later changes no longer reach the node's view, and switching back to
//! `default` drops the copy so the replicated tables show again.
//!
//! The local tables live in a [`ConfigDb`] of their own, written to `local.json` in the
//! node's data directory (a temporary file renamed into place, so a crash leaves the old
//! or the new file, never half of one). What the CLI and the EMS checker see is the
//! replicated configuration overlaid with the local tables ([`LocalConfig::effective`]).

use std::path::{Path, PathBuf};

use crate::config::schema::{LOCAL_SYNC_TABLES, SYSTEM_ADMIN, SYSTEM_API_USER, SYSTEM_CONSOLE, SYSTEM_CSF};
use crate::config::{Applied, CommandError, ConfigCommand, ConfigDb};
use crate::domain::Firmware;

/// The file of the node's own tables inside its data directory.
pub const LOCAL_FILE: &str = "local.json";

/// The tables every node keeps to itself, whatever `configuration-sync` says: its Security
/// Fabric settings and its accounts (`docs/fortios.md`, "Accounts").
pub const NODE_TABLES: &[&str] = &[
    SYSTEM_CSF.path,
    SYSTEM_ADMIN.path,
    SYSTEM_API_USER.path,
    SYSTEM_CONSOLE.path,
];

/// Why the local configuration could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error(
        "{path} is not a configuration this version can read ({source}); it is left as it is: \
         move it away to start this node's own settings afresh"
    )]
    Corrupted {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// The node's own tables, in memory and on disk.
pub struct LocalConfig {
    path: PathBuf,
    db: ConfigDb,
}

impl LocalConfig {
    /// Reads `local.json` from `data_dir`, or starts empty when there is none, under
    /// `firmware`'s schemas.
    pub fn open(data_dir: &Path, firmware: Firmware) -> Result<LocalConfig, LocalError> {
        let path = data_dir.join(LOCAL_FILE);
        let db = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<ConfigDb>(&bytes)
                .map_err(|source| LocalError::Corrupted {
                    path: path.clone(),
                    source,
                })?
                .with_firmware(firmware),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ConfigDb::for_firmware(firmware),
            Err(source) => return Err(LocalError::Read { path, source }),
        };
        Ok(LocalConfig { path, db })
    }

    /// Whether `command` changes only tables this node keeps itself under `self`'s current
    /// settings; `None` when it mixes local and replicated tables.
    pub fn owns(&self, command: &ConfigCommand) -> Option<bool> {
        let mut tables = Vec::new();
        collect_tables(command, &mut tables);
        let local: Vec<bool> = tables.iter().map(|table| self.is_local(table)).collect();
        if local.iter().all(|l| *l) {
            Some(true)
        } else if local.iter().all(|l| !l) {
            Some(false)
        } else {
            None
        }
    }

    fn is_local(&self, table: &str) -> bool {
        NODE_TABLES.contains(&table)
            || (self.db.configuration_sync_local() && LOCAL_SYNC_TABLES.contains(&table))
    }

    /// Applies a command to the local tables and writes them to disk. Turning
    /// `configuration-sync` to `local` copies the EMS tables from `replicated`; turning it
    /// back drops the copy.
    pub fn apply(
        &mut self,
        command: &ConfigCommand,
        replicated: &ConfigDb,
    ) -> Result<Applied, LocalApplyError> {
        let mut next = self.db.clone();
        let applied = next.apply(command).map_err(LocalApplyError::Refused)?;
        match (
            self.db.configuration_sync_local(),
            next.configuration_sync_local(),
        ) {
            (false, true) => next = next.overlay(&replicated.extract(LOCAL_SYNC_TABLES), LOCAL_SYNC_TABLES),
            (true, false) => next = next.overlay(&ConfigDb::for_firmware(next.firmware()), LOCAL_SYNC_TABLES),
            _ => {}
        }
        self.write(&next).map_err(LocalApplyError::Write)?;
        self.db = next;
        Ok(applied)
    }

    fn write(&self, db: &ConfigDb) -> Result<(), LocalError> {
        let bytes = serde_json::to_vec_pretty(db).expect("a configuration serializes to JSON");
        let temp = self.path.with_extension("json.tmp");
        let write = |source| LocalError::Write {
            path: self.path.clone(),
            source,
        };
        std::fs::write(&temp, bytes).map_err(write)?;
        std::fs::rename(&temp, &self.path).map_err(write)
    }

    /// The node's view: `replicated` with the local tables laid over it.
    pub fn effective(&self, replicated: &ConfigDb) -> ConfigDb {
        let mut tables = NODE_TABLES.to_vec();
        if self.db.configuration_sync_local() {
            tables.extend(LOCAL_SYNC_TABLES);
        }
        replicated.overlay(&self.db, &tables)
    }

    /// Whether this node keeps its own EMS tables.
    pub fn sync_local(&self) -> bool {
        self.db.configuration_sync_local()
    }
}

/// Why a local change was not made.
#[derive(Debug, thiserror::Error)]
pub enum LocalApplyError {
    #[error(transparent)]
    Refused(CommandError),
    #[error(transparent)]
    Write(LocalError),
}

fn collect_tables<'c>(command: &'c ConfigCommand, tables: &mut Vec<&'c str>) {
    match command {
        ConfigCommand::SetEntry { table, .. }
        | ConfigCommand::DeleteEntry { table, .. }
        | ConfigCommand::Purge { table } => tables.push(table),
        ConfigCommand::Batch(commands) => commands.iter().for_each(|c| collect_tables(c, tables)),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::schema::FCTEMS;

    fn set(table: &str, key: &str, values: &[(&str, &str)]) -> ConfigCommand {
        ConfigCommand::SetEntry {
            table: table.to_owned(),
            key: key.to_owned(),
            values: values
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn local_sync_keeps_ems_id_slots_under_the_fabric_firmware() {
        let firmware = Firmware::parse("7.0.12").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut replicated = ConfigDb::for_firmware(firmware);
        let slot = [("status", "enable"), ("name", "ems1"), ("server", "10.0.0.1")];
        replicated.apply(&set(FCTEMS.path, "1", &slot)).unwrap();
        let mut local = LocalConfig::open(dir.path(), firmware).unwrap();
        let to_local = set(SYSTEM_CSF.path, "", &[("configuration-sync", "local")]);
        local.apply(&to_local, &replicated).unwrap();
        // The copy is read under the ems-id schema: a disabled slot needs no server, an
        // ems-id past 5 is refused.
        local
            .apply(&set(FCTEMS.path, "2", &[("name", "spare")]), &replicated)
            .unwrap();
        assert!(local.apply(&set(FCTEMS.path, "6", &[]), &replicated).is_err());
        let reopened = LocalConfig::open(dir.path(), firmware).unwrap();
        let view = reopened.effective(&replicated);
        assert_eq!(view.firmware(), firmware);
        assert_eq!(view.fctems_in_use(), ["1"]);
        assert_eq!(view.fctems_label("1"), "ems1");
        assert_eq!(view.value(FCTEMS.path, "2", "status"), "disable");
    }

    #[test]
    fn local_sync_copies_then_keeps_then_drops_the_ems_tables() {
        let dir = tempfile::tempdir().unwrap();
        let mut replicated = ConfigDb::new();
        replicated
            .apply(&set(FCTEMS.path, "ems1", &[("server", "10.0.0.1")]))
            .unwrap();
        let mut local = LocalConfig::open(dir.path(), Firmware::default()).unwrap();
        assert_eq!(local.owns(&set(FCTEMS.path, "ems1", &[])), Some(false));

        local
            .apply(
                &set(SYSTEM_CSF.path, "", &[("configuration-sync", "local")]),
                &replicated,
            )
            .unwrap();
        assert!(local.sync_local());
        assert_eq!(local.owns(&set(FCTEMS.path, "ems1", &[])), Some(true));
        local
            .apply(&set(FCTEMS.path, "ems1", &[("server", "10.9.9.9")]), &replicated)
            .unwrap();

        // The root changes its table; the local view keeps its own.
        replicated
            .apply(&set(FCTEMS.path, "ems1", &[("server", "10.0.0.2")]))
            .unwrap();
        let view = local.effective(&replicated);
        assert_eq!(view.value(FCTEMS.path, "ems1", "server"), "10.9.9.9");
        assert_eq!(view.revision(), replicated.revision());

        // It survives a restart.
        let reopened = LocalConfig::open(dir.path(), Firmware::default()).unwrap();
        assert_eq!(
            reopened
                .effective(&replicated)
                .value(FCTEMS.path, "ems1", "server"),
            "10.9.9.9"
        );

        local
            .apply(
                &set(SYSTEM_CSF.path, "", &[("configuration-sync", "default")]),
                &replicated,
            )
            .unwrap();
        assert_eq!(
            local.effective(&replicated).value(FCTEMS.path, "ems1", "server"),
            "10.0.0.2"
        );
    }

    #[test]
    fn a_damaged_file_is_reported_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOCAL_FILE), b"{not json").unwrap();
        let error = LocalConfig::open(dir.path(), Firmware::default())
            .err()
            .expect("refused");
        assert!(matches!(error, LocalError::Corrupted { .. }), "{error}");
        assert_eq!(std::fs::read(dir.path().join(LOCAL_FILE)).unwrap(), b"{not json");
    }
}
