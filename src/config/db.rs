//! The configuration database and the commands that change it.
//!
//! [`ConfigDb`] holds, per table path, the entries by key, each entry keeping only its
//! non-default values as canonical strings. It changes only through
//! [`ConfigDb::apply`], which every node runs on the same commands in the same order, so
//! `apply` is pure: it reads the command and the current content, checks everything again
//! (a command validated by one CLI session may meet a state another writer changed), and
//! either applies the whole command or returns a [`CommandError`] and leaves the database
//! exactly as it was.
//!
//! Single objects (`TableKind::Object`) are stored as one entry under the empty key and
//! written with [`ConfigCommand::SetEntry`] and `key: ""`; an object whose values are all
//! defaults is not stored at all, so "never set" and "set back to defaults" hash alike.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::CommandError;
use super::schema::{
    Lookup, Rule, TableKind, TableSchema, ValueError, fctems_for, parse_value, schema_for, schemas_for,
};
use crate::domain::Firmware;

/// One entry of a table (or the single object of an object path): its non-default values.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(transparent)]
pub struct Entry {
    values: BTreeMap<String, String>,
}

impl Entry {
    /// The stored value of `field`; `None` when the field holds its default.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.values.get(field).map(String::as_str)
    }

    /// Every stored (non-default) value, by field name.
    pub fn values(&self) -> &BTreeMap<String, String> {
        &self.values
    }
}

impl Lookup for Entry {
    fn lookup(&self, field: &str) -> Option<&str> {
        self.get(field)
    }
}

/// A change to the configuration, as replicated through the Raft log.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum ConfigCommand {
    /// Create or replace an entry. `values` are the complete non-default values of the entry
    /// after the edit; fields not listed hold their defaults. For a single object the key
    /// is `""`.
    SetEntry {
        /// The table path (`"endpoint-control fctems"`).
        table: String,
        /// The entry key; `""` for an object.
        key: String,
        /// Field name to value.
        values: BTreeMap<String, String>,
    },
    /// Remove one entry of a table.
    DeleteEntry {
        /// The table path.
        table: String,
        /// The entry key.
        key: String,
    },
    /// Remove every entry of a table.
    Purge {
        /// The table path.
        table: String,
    },
    /// Several changes that stand or fall together, as one revision: accepting an EMS
    /// certificate adds it to `vpn certificate remote` and names it in the fctems entry.
    Batch(Vec<ConfigCommand>),
}

/// What a successfully applied command did.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The database revision after the command.
    pub revision: u64,
}

/// A table: entry key -> entry. Entries are shared between copies too, so copying a table
/// to change it copies its keys, not every entry's values.
type Table = BTreeMap<String, Arc<Entry>>;

/// Table path -> the table's entries, by key.
type Tables = BTreeMap<String, Arc<Table>>;

/// The replicated configuration: every table's entries plus a revision counter, under
/// the schemas of one firmware.
///
/// The firmware is not stored with the content: it is the node's, set when the database is
/// made or loaded ([`ConfigDb::with_firmware`]), so a snapshot taken under one release and
/// read by a node of the same fabric is read under the same schemas.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct ConfigDb {
    revision: u64,
    /// Table path -> entry key -> entry. Tables without entries are not kept, so equal
    /// content has one representation. Shared between copies and copied on write: every
    /// node keeps, publishes and overlays a copy after each applied write, and a copy
    /// costs one count, a change the table list and one table (its keys, not its entries).
    tables: Arc<Tables>,
    #[serde(skip)]
    firmware: Firmware,
}

impl ConfigDb {
    /// An empty database at revision 0 under the default firmware.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty database at revision 0 under `firmware`'s schemas.
    pub fn for_firmware(firmware: Firmware) -> Self {
        Self {
            firmware,
            ..Self::default()
        }
    }

    /// This database read under `firmware`'s schemas (after loading it from disk or a
    /// snapshot, which do not carry it).
    pub fn with_firmware(mut self, firmware: Firmware) -> Self {
        self.firmware = firmware;
        self
    }

    /// The firmware whose schemas this database follows.
    pub fn firmware(&self) -> Firmware {
        self.firmware
    }

    /// The schemas this database follows: its firmware's.
    pub fn registry(&self) -> &'static [TableSchema] {
        schemas_for(self.firmware)
    }

    /// The fctems schema of this database's firmware.
    pub fn fctems(&self) -> &'static TableSchema {
        fctems_for(self.firmware)
    }

    /// How many commands were applied successfully; 0 for a new database.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Hex SHA-256 of the content (not the revision): two nodes with the same
    /// configuration report the same hash, however they got there.
    pub fn hash(&self) -> String {
        let mut hasher = Sha256::new();
        // Every string is length-prefixed, so no two different contents share a byte stream.
        let mut put = |text: &str| {
            hasher.update((text.len() as u64).to_le_bytes());
            hasher.update(text.as_bytes());
        };
        put("fabricsim-config-v1");
        for (path, entries) in self.tables.iter() {
            put(path);
            for (key, entry) in entries.iter() {
                put(key);
                for (field, value) in &entry.values {
                    put(field);
                    put(value);
                }
                put("");
            }
            put("");
        }
        hasher
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    /// This database with the tables `paths` taken from `local` instead: a node's view when
    /// some tables are its own. The revision stays this database's.
    pub fn overlay(&self, local: &ConfigDb, paths: &[&str]) -> ConfigDb {
        let mut merged = self.clone();
        let tables = Arc::make_mut(&mut merged.tables);
        for path in paths {
            match local.tables.get(*path) {
                Some(entries) => tables.insert((*path).to_owned(), entries.clone()),
                None => tables.remove(*path),
            };
        }
        merged
    }

    /// A database holding only the tables `paths` of this one, at revision 0: what a member
    /// copies when it starts keeping its own configuration.
    pub fn extract(&self, paths: &[&str]) -> ConfigDb {
        ConfigDb {
            revision: 0,
            firmware: self.firmware,
            tables: Arc::new(
                self.tables
                    .iter()
                    .filter(|(path, _)| paths.contains(&path.as_str()))
                    .map(|(path, entries)| (path.clone(), entries.clone()))
                    .collect(),
            ),
        }
    }

    /// Whether this FortiGate's `system csf` keeps its own copy of the synced tables
    /// (`configuration-sync local`).
    pub fn configuration_sync_local(&self) -> bool {
        self.value(crate::config::schema::SYSTEM_CSF.path, "", "configuration-sync")
            == crate::config::schema::CONFIGURATION_SYNC_LOCAL
    }

    /// The entries of `path`, sorted by key; nothing for an unknown or empty table.
    pub fn entries(&self, path: &str) -> impl Iterator<Item = (&str, &Entry)> {
        self.tables
            .get(path)
            .into_iter()
            .flat_map(|entries| entries.iter())
            .map(|(key, entry)| (key.as_str(), entry.as_ref()))
    }

    /// Whether table `path` holds the same entries here and in `other`: at once when one
    /// is a copy of the other and neither has changed the table since.
    pub fn same_table(&self, other: &ConfigDb, path: &str) -> bool {
        match (self.tables.get(path), other.tables.get(path)) {
            (Some(mine), Some(theirs)) => Arc::ptr_eq(mine, theirs) || mine == theirs,
            (mine, theirs) => mine.is_none() && theirs.is_none(),
        }
    }

    /// The entry `key` of `path`; for an object use `key = ""`.
    pub fn entry(&self, path: &str, key: &str) -> Option<&Entry> {
        self.tables.get(path)?.get(key).map(Arc::as_ref)
    }

    /// The value of `field` in entry `key` of `path`: the stored value, or the schema
    /// default when the entry does not store one. Empty when the table or field is unknown.
    pub fn value(&self, path: &str, key: &str, field: &str) -> String {
        if let Some(value) = self.entry(path, key).and_then(|entry| entry.get(field)) {
            return value.to_owned();
        }
        schema_for(self.firmware, path)
            .and_then(|table| table.field(field))
            .map(|spec| spec.default.to_owned())
            .unwrap_or_default()
    }

    /// Applies `cmd` against this database's firmware schemas, see [`ConfigDb::apply_with`].
    pub fn apply(&mut self, cmd: &ConfigCommand) -> Result<Applied, CommandError> {
        self.apply_with(self.registry(), cmd)
    }

    /// Checks `cmd` against `registry` and the current content, then applies it and
    /// advances the revision by one. On error nothing changes.
    pub fn apply_with(
        &mut self,
        registry: &[TableSchema],
        cmd: &ConfigCommand,
    ) -> Result<Applied, CommandError> {
        match cmd {
            ConfigCommand::Batch(commands) => {
                let mut next = self.clone();
                for command in commands {
                    next.change(registry, command)?;
                }
                *self = next;
            }
            command => self.change(registry, command)?,
        }
        self.revision += 1;
        Ok(Applied {
            revision: self.revision,
        })
    }

    /// Applies one change without advancing the revision; on error nothing changes.
    fn change(&mut self, registry: &[TableSchema], cmd: &ConfigCommand) -> Result<(), CommandError> {
        let path = match cmd {
            ConfigCommand::SetEntry { table, .. }
            | ConfigCommand::DeleteEntry { table, .. }
            | ConfigCommand::Purge { table } => table,
            ConfigCommand::Batch(commands) => {
                return commands
                    .iter()
                    .try_for_each(|command| self.change(registry, command));
            }
        };
        let table = registry
            .iter()
            .find(|table| table.path == path)
            .ok_or_else(|| CommandError::UnknownTable { table: path.clone() })?;
        match cmd {
            ConfigCommand::SetEntry { key, values, .. } => {
                let (key, entry) = self.check_set(table, key, values)?;
                let entries = Arc::make_mut(&mut self.tables)
                    .entry(table.path.to_owned())
                    .or_default();
                let entries = Arc::make_mut(entries);
                if table.kind == TableKind::Object && entry.values.is_empty() {
                    entries.remove(&key);
                } else {
                    entries.insert(key, Arc::new(entry));
                }
            }
            ConfigCommand::DeleteEntry { key, .. } => {
                require_table(table)?;
                if !self
                    .tables
                    .get(table.path)
                    .is_some_and(|entries| entries.contains_key(key))
                {
                    return Err(CommandError::EntryNotFound {
                        table: table.path.to_owned(),
                        key: key.clone(),
                    });
                }
                if let Some(entries) = Arc::make_mut(&mut self.tables).get_mut(table.path) {
                    Arc::make_mut(entries).remove(key);
                }
            }
            ConfigCommand::Purge { .. } => {
                require_table(table)?;
                if self.tables.contains_key(table.path) {
                    Arc::make_mut(&mut self.tables).remove(table.path);
                }
            }
            ConfigCommand::Batch(_) => unreachable!("batches are unpacked above"),
        }
        if self.tables.values().any(|entries| entries.is_empty()) {
            Arc::make_mut(&mut self.tables).retain(|_, entries| !entries.is_empty());
        }
        Ok(())
    }

    /// Validates a `SetEntry` without changing anything and returns the canonical key and
    /// entry.
    fn check_set(
        &self,
        table: &TableSchema,
        key: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<(String, Entry), CommandError> {
        let path = table.path.to_owned();
        let key = match table.key_field() {
            Some(_) if key.is_empty() => {
                return Err(CommandError::InvalidKey {
                    key: String::new(),
                    reason: ValueError::Empty,
                });
            }
            Some(key_field) => parse_value(key_field, key).map_err(|reason| CommandError::InvalidKey {
                key: key.to_owned(),
                reason,
            })?,
            None if !key.is_empty() => {
                return Err(CommandError::UnexpectedKey {
                    table: path,
                    key: key.to_owned(),
                });
            }
            None => String::new(),
        };

        let mut entry = Entry::default();
        for (name, raw) in values {
            let field = table.field(name).ok_or_else(|| CommandError::UnknownField {
                table: path.clone(),
                field: name.clone(),
            })?;
            if table.is_key(name) {
                return Err(CommandError::KeyField { field: name.clone() });
            }
            let value = parse_value(field, raw).map_err(|reason| CommandError::InvalidValue {
                field: name.clone(),
                value: raw.clone(),
                reason,
            })?;
            if value != field.default {
                entry.values.insert(name.clone(), value);
            }
        }

        for field in table.value_fields() {
            if entry.get(field.name).is_some() && !table.is_visible(&entry, field) {
                let (depends_on, required) = field.visible_if.unwrap_or_default();
                return Err(CommandError::HiddenField {
                    field: field.name.to_owned(),
                    depends_on: depends_on.to_owned(),
                    required: required.to_owned(),
                });
            }
        }

        if let TableKind::Table { max_entries, .. } = table.kind {
            let entries = self.tables.get(table.path);
            let exists = entries.is_some_and(|entries| entries.contains_key(&key));
            let count = entries.map_or(0, |entries| entries.len());
            if !exists && count >= max_entries {
                return Err(CommandError::TableFull {
                    table: path,
                    max: max_entries,
                });
            }
        }

        for rule in table.rules {
            self.check_rule(table, rule, &key, &entry)?;
        }
        Ok((key, entry))
    }

    fn check_rule(
        &self,
        table: &TableSchema,
        rule: &Rule,
        key: &str,
        entry: &Entry,
    ) -> Result<(), CommandError> {
        let value_of = |stored: &Entry, name: &str| -> String {
            table
                .field(name)
                .map(|field| field.value_in(stored).to_owned())
                .unwrap_or_default()
        };
        match *rule {
            Rule::AtMostOne { field, value, what } => {
                if value_of(entry, field) != value {
                    return Ok(());
                }
                let existing = self
                    .entries(table.path)
                    .find(|(other, stored)| *other != key && value_of(stored, field) == value);
                match existing {
                    Some((existing, _)) => Err(CommandError::AtMostOne {
                        field: field.to_owned(),
                        value: value.to_owned(),
                        what: what.to_owned(),
                        existing: existing.to_owned(),
                    }),
                    None => Ok(()),
                }
            }
            Rule::Unsupported { field, value, why } => {
                if value_of(entry, field) == value {
                    Err(CommandError::Unsupported {
                        field: field.to_owned(),
                        value: value.to_owned(),
                        why: why.to_owned(),
                    })
                } else {
                    Ok(())
                }
            }
            Rule::RequiredUnless {
                field,
                unless: (unless_field, unless_value),
                only_if,
            } => {
                let binds =
                    only_if.is_none_or(|(when_field, when_value)| value_of(entry, when_field) == when_value);
                if binds && value_of(entry, field).is_empty() && value_of(entry, unless_field) != unless_value
                {
                    Err(CommandError::Required {
                        key: key.to_owned(),
                        field: field.to_owned(),
                        unless_field: unless_field.to_owned(),
                        unless_value: unless_value.to_owned(),
                    })
                } else {
                    Ok(())
                }
            }
            Rule::Datasource { field, table: source } => {
                let value = value_of(entry, field);
                if value.is_empty() || self.entry(source, &value).is_some() {
                    Ok(())
                } else {
                    Err(CommandError::NotInDatasource {
                        field: field.to_owned(),
                        value,
                        table: source.to_owned(),
                    })
                }
            }
        }
    }
}

fn require_table(table: &TableSchema) -> Result<(), CommandError> {
    match table.kind {
        TableKind::Table { .. } => Ok(()),
        TableKind::Object => Err(CommandError::NotATable {
            table: table.path.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::{FCTEMS, FieldKind, FieldSpec, MAX_FCTEMS_ENTRIES, REMOTE_CERTIFICATES};

    const FCTEMS_PATH: &str = "endpoint-control fctems";

    fn set(key: &str, values: &[(&str, &str)]) -> ConfigCommand {
        ConfigCommand::SetEntry {
            table: FCTEMS_PATH.to_owned(),
            key: key.to_owned(),
            values: values
                .iter()
                .map(|(field, value)| ((*field).to_owned(), (*value).to_owned()))
                .collect(),
        }
    }

    fn delete(key: &str) -> ConfigCommand {
        ConfigCommand::DeleteEntry {
            table: FCTEMS_PATH.to_owned(),
            key: key.to_owned(),
        }
    }

    /// Applies `cmd`, expecting a refusal, and checks that nothing changed.
    fn refused(db: &mut ConfigDb, cmd: &ConfigCommand) -> CommandError {
        let before = db.clone();
        let hash = db.hash();
        let error = db.apply(cmd).expect_err("command must be refused");
        assert_eq!(*db, before);
        assert_eq!(db.hash(), hash);
        assert_eq!(db.revision(), before.revision());
        error
    }

    fn three_entries() -> ConfigDb {
        let mut db = ConfigDb::new();
        for (index, key) in ["ems1", "ems2", "ems3"].into_iter().enumerate() {
            let server = format!("10.0.0.{}", index + 1);
            db.apply(&set(key, &[("server", &server)])).expect("applies");
        }
        db
    }

    /// Copies share their tables until one of them changes: a change to one never shows
    /// in another, whichever of them changes and however.
    #[test]
    fn a_copy_keeps_its_content_whatever_happens_to_the_original() {
        let mut db = three_entries();
        let copy = db.clone();
        let (copy_hash, copy_entries) = (copy.hash(), copy.entries(FCTEMS_PATH).count());
        db.apply(&set("ems1", &[("server", "10.9.9.9")]))
            .expect("applies");
        db.apply(&delete("ems2")).expect("applies");
        db.apply(&set("ems4", &[("server", "10.0.0.4")]))
            .expect("applies");
        let mut other = copy.clone();
        other
            .apply(&ConfigCommand::Purge {
                table: FCTEMS_PATH.to_owned(),
            })
            .expect("applies");
        assert_eq!(copy.hash(), copy_hash);
        assert_eq!(copy.entries(FCTEMS_PATH).count(), copy_entries);
        assert_eq!(copy.value(FCTEMS_PATH, "ems1", "server"), "10.0.0.1");
        assert_eq!(db.value(FCTEMS_PATH, "ems1", "server"), "10.9.9.9");
        assert_eq!(db.entries(FCTEMS_PATH).count(), 3);
        assert_eq!(other.entries(FCTEMS_PATH).count(), 0);
        assert_ne!(db.hash(), copy_hash);
        assert!(copy.same_table(&copy.clone(), FCTEMS_PATH));
        assert!(!copy.same_table(&db, FCTEMS_PATH));
        assert!(!copy.same_table(&other, FCTEMS_PATH));
        assert!(other.same_table(&ConfigDb::new(), FCTEMS_PATH));
        // Equal content reached apart is the same table too.
        let mut again = three_entries();
        assert!(again.same_table(&copy, FCTEMS_PATH));
        again.apply(&delete("ems3")).expect("applies");
        assert!(!again.same_table(&copy, FCTEMS_PATH));
    }

    #[test]
    fn an_ems_id_table_holds_its_slots_and_binds_the_server_rule_to_enabled_ones() {
        let firmware = crate::domain::Firmware::parse("7.0.12").expect("known");
        let mut db = ConfigDb::for_firmware(firmware);
        for id in 1..=5 {
            db.apply(&set(&id.to_string(), &[("name", "spare")]))
                .expect("a disabled slot needs no server");
        }
        assert_eq!(db.entries(FCTEMS_PATH).count(), 5);
        assert!(matches!(
            db.apply(&set("6", &[])),
            Err(CommandError::InvalidKey { .. })
        ));
        assert!(matches!(
            db.apply(&set("ems1", &[])),
            Err(CommandError::InvalidKey { .. })
        ));
        assert!(matches!(
            db.apply(&set("1", &[("status", "enable")])),
            Err(CommandError::Required { .. })
        ));
        db.apply(&set("1", &[("status", "enable"), ("server", "10.0.0.1")]))
            .expect("an enabled slot with a server");
        assert_eq!(db.value(FCTEMS_PATH, "1", "status"), "enable");
        assert_eq!(db.value(FCTEMS_PATH, "2", "status"), "disable");
        assert_eq!(db.value(FCTEMS_PATH, "1", "https-port"), "443");
        assert_eq!(db.firmware(), firmware);
        let before = db.clone();
        assert!(db.apply(&set("1", &[("status", "on")])).is_err());
        assert_eq!(db, before, "a refused command changes nothing");
    }

    #[test]
    fn empty_database_is_revision_zero() {
        let db = ConfigDb::new();
        assert_eq!(db.revision(), 0);
        assert_eq!(db.entries(FCTEMS_PATH).count(), 0);
        assert_eq!(db.value(FCTEMS_PATH, "ems1", "https-port"), "443");
        assert_eq!(db.value("no such table", "ems1", "https-port"), "");
    }

    #[test]
    fn set_entry_stores_canonical_non_default_values() {
        let mut db = ConfigDb::new();
        let applied = db
            .apply(&set(
                "ems1",
                &[
                    ("server", "EMS.Example.com"),
                    ("https-port", "0443"),
                    ("pull-tags", "disable"),
                    ("capabilities", "websocket fabric-auth"),
                ],
            ))
            .expect("applies");
        assert_eq!(applied, Applied { revision: 1 });
        let entry = db.entry(FCTEMS_PATH, "ems1").expect("stored");
        assert_eq!(entry.get("server"), Some("ems.example.com"));
        assert_eq!(entry.get("https-port"), None, "443 is the default");
        assert_eq!(entry.get("pull-tags"), Some("disable"));
        assert_eq!(entry.get("capabilities"), Some("fabric-auth websocket"));
        assert_eq!(db.value(FCTEMS_PATH, "ems1", "https-port"), "443");
        assert_eq!(db.value(FCTEMS_PATH, "ems1", "server"), "ems.example.com");
    }

    #[test]
    fn set_entry_replaces_the_whole_entry() {
        let mut db = ConfigDb::new();
        db.apply(&set("ems1", &[("server", "10.0.0.1"), ("https-port", "8443")]))
            .expect("applies");
        db.apply(&set("ems1", &[("server", "10.0.0.2")]))
            .expect("applies");
        assert_eq!(db.value(FCTEMS_PATH, "ems1", "https-port"), "443");
        assert_eq!(db.value(FCTEMS_PATH, "ems1", "server"), "10.0.0.2");
        assert_eq!(db.revision(), 2);
    }

    #[test]
    fn every_successful_command_advances_the_revision() {
        let mut db = three_entries();
        assert_eq!(db.revision(), 3);
        assert_eq!(db.apply(&delete("ems2")), Ok(Applied { revision: 4 }));
        let purge = ConfigCommand::Purge {
            table: FCTEMS_PATH.to_owned(),
        };
        assert_eq!(db.apply(&purge), Ok(Applied { revision: 5 }));
        assert_eq!(db.entries(FCTEMS_PATH).count(), 0);
        assert_eq!(db.apply(&purge), Ok(Applied { revision: 6 }));
    }

    #[test]
    fn entries_are_sorted_by_key() {
        let mut db = ConfigDb::new();
        for key in ["zeta", "alpha", "mid"] {
            db.apply(&set(key, &[("server", "10.0.0.1")])).expect("applies");
        }
        let keys: Vec<&str> = db.entries(FCTEMS_PATH).map(|(key, _)| key).collect();
        assert_eq!(keys, ["alpha", "mid", "zeta"]);
    }

    #[test]
    fn unknown_table_and_field_are_refused() {
        let mut db = three_entries();
        let error = refused(
            &mut db,
            &ConfigCommand::Purge {
                table: "endpoint-control nonsense".to_owned(),
            },
        );
        assert!(matches!(error, CommandError::UnknownTable { .. }));
        let error = refused(&mut db, &set("ems1", &[("colour", "blue")]));
        assert_eq!(
            error,
            CommandError::UnknownField {
                table: FCTEMS_PATH.to_owned(),
                field: "colour".to_owned()
            }
        );
        let error = refused(&mut db, &set("ems1", &[("name", "other")]));
        assert!(matches!(error, CommandError::KeyField { .. }));
    }

    #[test]
    fn every_value_is_parsed_again() {
        let mut db = ConfigDb::new();
        for (field, value) in [
            ("https-port", "0"),
            ("server", "300.1.1.1"),
            ("source-ip", "10.0.0"),
            ("pull-tags", "maybe"),
            ("capabilities", "fabric-auth telepathy"),
            ("certificate", &"c".repeat(36)),
        ] {
            let error = refused(&mut db, &set("ems1", &[("server", "10.0.0.1"), (field, value)]));
            assert!(
                matches!(&error, CommandError::InvalidValue { field: f, .. } if f == field),
                "{field} {value}: {error:?}"
            );
        }
        assert_eq!(
            refused(&mut db, &set("ems1", &[("https-port", "0")])).cli_lines(),
            ["value parse error before '0'", "Command fail. Return code -1"]
        );
    }

    #[test]
    fn keys_are_validated() {
        let mut db = ConfigDb::new();
        let long = "k".repeat(36);
        let error = refused(&mut db, &set(&long, &[("server", "10.0.0.1")]));
        assert!(matches!(error, CommandError::InvalidKey { .. }));
        let error = refused(&mut db, &set("", &[("server", "10.0.0.1")]));
        assert!(matches!(
            error,
            CommandError::InvalidKey {
                reason: ValueError::Empty,
                ..
            }
        ));
        db.apply(&set(&"k".repeat(35), &[("server", "10.0.0.1")]))
            .expect("35 characters fit");
    }

    #[test]
    fn hidden_interface_is_refused() {
        let mut db = ConfigDb::new();
        let error = refused(
            &mut db,
            &set("ems1", &[("server", "10.0.0.1"), ("interface", "port1")]),
        );
        assert!(matches!(error, CommandError::HiddenField { .. }));
        assert_eq!(
            error.cli_lines(),
            [
                "command parse error before 'interface'",
                "Command fail. Return code -61"
            ]
        );
        db.apply(&set(
            "ems1",
            &[
                ("server", "10.0.0.1"),
                ("interface-select-method", "specify"),
                ("interface", "port1"),
            ],
        ))
        .expect("visible with specify");
        assert_eq!(db.value(FCTEMS_PATH, "ems1", "interface"), "port1");
    }

    #[test]
    fn fourth_entry_is_refused_but_existing_entries_stay_editable() {
        let mut db = three_entries();
        assert_eq!(MAX_FCTEMS_ENTRIES, 3);
        let error = refused(&mut db, &set("ems4", &[("server", "10.0.0.4")]));
        assert_eq!(
            error,
            CommandError::TableFull {
                table: FCTEMS_PATH.to_owned(),
                max: 3
            }
        );
        let lines = error.cli_lines();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1], "Command fail. Return code -4");
        db.apply(&set("ems2", &[("server", "10.0.0.22")]))
            .expect("editing an existing entry is not an addition");
    }

    #[test]
    fn second_cloud_entry_is_refused() {
        let mut db = ConfigDb::new();
        db.apply(&set("cloud1", &[("fortinetone-cloud-authentication", "enable")]))
            .expect("a cloud entry needs no server");
        db.apply(&set(
            "cloud1",
            &[
                ("fortinetone-cloud-authentication", "enable"),
                ("https-port", "8443"),
            ],
        ))
        .expect("the cloud entry may be edited");
        let error = refused(
            &mut db,
            &set("cloud2", &[("fortinetone-cloud-authentication", "enable")]),
        );
        assert_eq!(
            error.cli_lines(),
            [
                "Only one EMS Cloud entry is allowed: \"cloud1\" already has fortinetone-cloud-authentication enable.",
                "node_check_object fail! for fortinetone-cloud-authentication enable",
                "Command fail. Return code -1"
            ]
        );
    }

    #[test]
    fn server_is_required_unless_cloud() {
        let mut db = ConfigDb::new();
        let error = refused(&mut db, &set("ems1", &[("https-port", "8443")]));
        assert_eq!(
            error.cli_lines(),
            [
                "Entry \"ems1\" has no server; it is required unless fortinetone-cloud-authentication is set to enable.",
                "node_check_object fail! for server ",
                "Command fail. Return code -1"
            ]
        );
        let error = refused(&mut db, &set("ems1", &[("server", "")]));
        assert!(matches!(error, CommandError::Required { .. }));
    }

    #[test]
    fn deleting_a_missing_entry_is_refused() {
        let mut db = three_entries();
        let error = refused(&mut db, &delete("ems9"));
        assert_eq!(
            error.cli_lines(),
            ["entry not found in datasource", "Command fail. Return code -3"]
        );
        let mut empty = ConfigDb::new();
        refused(&mut empty, &delete("ems1"));
    }

    #[test]
    fn hash_ignores_revision_and_history() {
        let mut direct = ConfigDb::new();
        direct
            .apply(&set("ems1", &[("server", "10.0.0.1")]))
            .expect("applies");
        let mut roundabout = ConfigDb::new();
        roundabout
            .apply(&set("ems1", &[("server", "10.0.0.9"), ("https-port", "8443")]))
            .expect("applies");
        roundabout
            .apply(&set("ems2", &[("server", "10.0.0.2")]))
            .expect("applies");
        roundabout.apply(&delete("ems2")).expect("applies");
        roundabout
            .apply(&set("ems1", &[("server", "10.0.0.1")]))
            .expect("applies");
        assert_ne!(direct.revision(), roundabout.revision());
        assert_eq!(direct.hash(), roundabout.hash());

        let mut purged = three_entries();
        purged
            .apply(&ConfigCommand::Purge {
                table: FCTEMS_PATH.to_owned(),
            })
            .expect("applies");
        assert_eq!(purged.hash(), ConfigDb::new().hash());
    }

    #[test]
    fn hash_is_stable_and_tells_contents_apart() {
        let db = three_entries();
        assert_eq!(db.hash(), db.clone().hash());
        assert_eq!(db.hash().len(), 64);
        assert!(db.hash().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(db.hash(), ConfigDb::new().hash());

        let mut port = db.clone();
        port.apply(&set("ems1", &[("server", "10.0.0.1"), ("https-port", "8443")]))
            .expect("applies");
        assert_ne!(port.hash(), db.hash());

        // Moving a value from one field to another must change the hash.
        let mut a = ConfigDb::new();
        a.apply(&set("ems1", &[("server", "ab"), ("tenant-id", "c")]))
            .expect("applies");
        let mut b = ConfigDb::new();
        b.apply(&set("ems1", &[("server", "a"), ("tenant-id", "bc")]))
            .expect("applies");
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn database_round_trips_through_json() {
        let db = three_entries();
        let json = serde_json::to_string(&db).expect("serializes");
        let back: ConfigDb = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, db);
        assert_eq!(back.hash(), db.hash());

        let error = CommandError::TableFull {
            table: FCTEMS_PATH.to_owned(),
            max: 3,
        };
        let json = serde_json::to_string(&error).expect("serializes");
        assert_eq!(serde_json::from_str::<CommandError>(&json).ok(), Some(error));
    }

    const DEMO_OBJECT: TableSchema = TableSchema {
        path: "system demo",
        help: "Demo settings.",
        kind: TableKind::Object,
        synced: false,
        fields: &[FieldSpec {
            name: "level",
            kind: FieldKind::Integer { min: 1, max: 9 },
            default: "5",
            help: "Level.",
            visible_if: None,
        }],
        rules: &[],
    };
    const DEMO_REGISTRY: &[TableSchema] = &[FCTEMS, DEMO_OBJECT];

    #[test]
    fn objects_live_under_the_empty_key() {
        let mut db = ConfigDb::new();
        let write = |level: &str| ConfigCommand::SetEntry {
            table: "system demo".to_owned(),
            key: String::new(),
            values: BTreeMap::from([("level".to_owned(), level.to_owned())]),
        };
        db.apply_with(DEMO_REGISTRY, &write("7")).expect("applies");
        assert_eq!(
            db.entry("system demo", "").and_then(|e| e.get("level")),
            Some("7")
        );
        db.apply_with(DEMO_REGISTRY, &write("5")).expect("applies");
        assert_eq!(db.entry("system demo", ""), None);
        assert_eq!(db.hash(), ConfigDb::new().hash());

        let keyed = ConfigCommand::SetEntry {
            table: "system demo".to_owned(),
            key: "x".to_owned(),
            values: BTreeMap::new(),
        };
        let before = db.clone();
        assert!(matches!(
            db.apply_with(DEMO_REGISTRY, &keyed),
            Err(CommandError::UnexpectedKey { .. })
        ));
        let purge = ConfigCommand::Purge {
            table: "system demo".to_owned(),
        };
        assert!(matches!(
            db.apply_with(DEMO_REGISTRY, &purge),
            Err(CommandError::NotATable { .. })
        ));
        assert_eq!(db, before);
    }

    #[test]
    fn an_fctems_certificate_must_name_a_remote_certificate() {
        let mut db = ConfigDb::new();
        db.apply(&set("ems1", &[("server", "10.0.0.1")]))
            .expect("applies");
        let error = refused(
            &mut db,
            &set("ems1", &[("server", "10.0.0.1"), ("certificate", "nonexist")]),
        );
        assert_eq!(
            error.cli_lines(),
            [
                "entry not found in datasource",
                "value parse error before 'nonexist'",
                "Command fail. Return code -3"
            ]
        );
        // Added in the same batch, before the entry names it: accepted.
        let remote = ConfigCommand::SetEntry {
            table: REMOTE_CERTIFICATES.path.to_owned(),
            key: "REMOTE_Cert_1".to_owned(),
            values: BTreeMap::from([(
                "remote".to_owned(),
                "-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n".to_owned(),
            )]),
        };
        let named = set(
            "ems1",
            &[("server", "10.0.0.1"), ("certificate", "REMOTE_Cert_1")],
        );
        db.apply(&ConfigCommand::Batch(vec![remote, named]))
            .expect("the certificate exists");
        assert_eq!(db.value(FCTEMS_PATH, "ems1", "certificate"), "REMOTE_Cert_1");
    }
}
