//! Reading the fctems table the same way under both of its shapes.
//!
//! Keyed by name (FortiOS 6.4 to 7.0.7) an entry's key is its name and every entry is in
//! use. Keyed by ems-id (7.0.8 and later) the key is a number, the name is a field, and
//! only slots with `status enable` are used (`docs/fortios.md`, "Firmware profiles"). The
//! checker, `execute fctems ...` and the status report ask these questions instead of
//! reading the key as a name.

use super::db::ConfigDb;

/// The field that switches an ems-id slot on.
const STATUS: &str = "status";

impl ConfigDb {
    /// Whether the fctems table of this database is keyed by ems-id.
    pub fn fctems_by_id(&self) -> bool {
        self.fctems().field(STATUS).is_some()
    }

    /// The name FortiOS shows for fctems entry `key`: the key itself when the table is
    /// keyed by name; the entry's `name` field when keyed by ems-id, or the ems-id when
    /// the slot has no name.
    pub fn fctems_label(&self, key: &str) -> String {
        if !self.fctems_by_id() {
            return key.to_owned();
        }
        let name = self.value(self.fctems().path, key, "name");
        if name.is_empty() { key.to_owned() } else { name }
    }

    /// Whether fctems entry `key` is in use: every entry keyed by name, an ems-id slot
    /// only while its `status` is `enable`.
    pub fn fctems_enabled(&self, key: &str) -> bool {
        !self.fctems_by_id() || self.value(self.fctems().path, key, STATUS) == "enable"
    }

    /// The keys of the fctems entries in use, in key order: what a FortiGate checks.
    pub fn fctems_in_use(&self) -> Vec<String> {
        self.entries(self.fctems().path)
            .map(|(key, _)| key.to_owned())
            .filter(|key| self.fctems_enabled(key))
            .collect()
    }

    /// The key of the fctems entry that `word` names, as typed after
    /// `execute fctems verify`: a key (a name, or an ems-id), else, keyed by ems-id, the
    /// first slot (by id) whose `name` is `word`.
    pub fn fctems_key_of(&self, word: &str) -> Option<String> {
        let path = self.fctems().path;
        if self.entry(path, word).is_some() {
            return Some(word.to_owned());
        }
        if !self.fctems_by_id() {
            return None;
        }
        self.entries(path)
            .find(|(key, _)| self.value(path, key, "name") == word)
            .map(|(key, _)| key.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::config::ConfigCommand;
    use crate::config::schema::FCTEMS;
    use crate::domain::Firmware;

    use super::*;

    fn set(db: &mut ConfigDb, key: &str, values: &[(&str, &str)]) {
        db.apply(&ConfigCommand::SetEntry {
            table: FCTEMS.path.to_owned(),
            key: key.to_owned(),
            values: values
                .iter()
                .map(|(field, value)| ((*field).to_owned(), (*value).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        })
        .expect("applies");
    }

    #[test]
    fn keyed_by_name_every_entry_is_in_use_under_its_key() {
        let mut db = ConfigDb::new();
        set(&mut db, "ems1", &[("server", "10.0.0.1")]);
        assert!(!db.fctems_by_id());
        assert_eq!(db.fctems_in_use(), ["ems1"]);
        assert_eq!(db.fctems_label("ems1"), "ems1");
        assert_eq!(db.fctems_key_of("ems1").as_deref(), Some("ems1"));
        assert_eq!(db.fctems_key_of("1"), None);
    }

    #[test]
    fn keyed_by_ems_id_only_enabled_slots_are_in_use_and_names_find_them() {
        let mut db = ConfigDb::for_firmware(Firmware::parse("7.0.12").unwrap());
        set(
            &mut db,
            "1",
            &[("status", "enable"), ("name", "ems1"), ("server", "10.0.0.1")],
        );
        set(&mut db, "2", &[("name", "spare")]);
        set(&mut db, "3", &[("status", "enable"), ("server", "10.0.0.3")]);
        assert!(db.fctems_by_id());
        assert_eq!(db.fctems_in_use(), ["1", "3"]);
        assert_eq!(db.fctems_label("1"), "ems1");
        assert_eq!(db.fctems_label("3"), "3", "a slot without a name shows its id");
        assert_eq!(db.fctems_key_of("ems1").as_deref(), Some("1"));
        assert_eq!(db.fctems_key_of("2").as_deref(), Some("2"));
        assert_eq!(db.fctems_key_of("spare").as_deref(), Some("2"));
        assert_eq!(db.fctems_key_of("nosuch"), None);
    }
}
