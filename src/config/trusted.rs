//! Reading the root's trusted-list: what it decides about one member's serial
//! (`docs/fortios.md`, "Member authorization").
//!
//! Only entries of `authorization-type serial` decide anything (certificate entries are
//! refused by `apply`). When several entries name one serial, `deny` wins: a member the
//! administrator blocked anywhere stays out.

use super::db::ConfigDb;
use super::schema::{ACTION_DENY, AUTHORIZATION_BY_SERIAL, TRUSTED_LIST};

/// What the trusted-list says of one serial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustDecision {
    /// An entry with `action accept` names it, and none with `action deny`.
    Accept,
    /// An entry with `action deny` names it.
    Deny,
}

impl ConfigDb {
    /// The trusted-list's decision for `serial`; `None` when no entry names it.
    pub fn trust_decision(&self, serial: &str) -> Option<TrustDecision> {
        let path = TRUSTED_LIST.path;
        let mut decision = None;
        for (key, _) in self.entries(path) {
            let by_serial = self.value(path, key, "authorization-type") == AUTHORIZATION_BY_SERIAL;
            if !by_serial || self.value(path, key, "serial") != serial {
                continue;
            }
            if self.value(path, key, "action") == ACTION_DENY {
                return Some(TrustDecision::Deny);
            }
            decision = Some(TrustDecision::Accept);
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::{CommandError, ConfigCommand};

    fn entry(name: &str, values: &[(&str, &str)]) -> ConfigCommand {
        ConfigCommand::SetEntry {
            table: TRUSTED_LIST.path.to_owned(),
            key: name.to_owned(),
            values: values
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn an_entry_accepts_by_default_and_deny_wins() {
        let mut db = ConfigDb::new();
        assert_eq!(db.trust_decision("FGVM01TM22000002"), None);
        db.apply(&entry("branch", &[("serial", "FGVM01TM22000002")]))
            .unwrap();
        assert_eq!(db.trust_decision("FGVM01TM22000002"), Some(TrustDecision::Accept));
        assert_eq!(db.trust_decision("FGVM01TM22000003"), None);
        db.apply(&entry(
            "blocked",
            &[("serial", "FGVM01TM22000002"), ("action", "deny")],
        ))
        .unwrap();
        assert_eq!(db.trust_decision("FGVM01TM22000002"), Some(TrustDecision::Deny));
    }

    #[test]
    fn bad_entries_are_refused_with_fortios_text_and_change_nothing() {
        let mut db = ConfigDb::new();
        let before = db.clone();
        let no_serial = db.apply(&entry("x", &[])).unwrap_err();
        assert_eq!(
            no_serial.cli_lines(),
            [
                "Entry \"x\" has no serial; it is required unless authorization-type is set to certificate.",
                "node_check_object fail! for serial ",
                "Command fail. Return code -1"
            ]
        );
        let certificate = db
            .apply(&entry("x", &[("authorization-type", "certificate")]))
            .unwrap_err();
        assert!(matches!(certificate, CommandError::Unsupported { .. }));
        assert_eq!(
            certificate.cli_lines(),
            [
                "authorization-type certificate is not simulated: fabricsim authorizes Security Fabric members by serial number only.",
                "node_check_object fail! for authorization-type certificate",
                "Command fail. Return code -1"
            ]
        );
        for (field, value) in [
            ("action", "maybe"),
            ("serial", "FGVM01TM2200000000002"),
            ("authorization-type", "psk"),
        ] {
            let refused = db
                .apply(&entry("x", &[("serial", "FGVM01TM22000002"), (field, value)]))
                .unwrap_err();
            assert_eq!(
                refused.cli_lines(),
                [
                    format!("value parse error before '{value}'"),
                    "Command fail. Return code -1".to_owned()
                ],
                "{field}"
            );
        }
        assert_eq!(db, before);
    }
}
