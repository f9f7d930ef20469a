//! The tables nested inside `config system csf`: the root's `config trusted-list`, which
//! decides which Security Fabric members the root admits (`docs/fortios.md`,
//! "Member authorization").
//!
//! A nested table is stored like any other, under a path that extends its parent's
//! (`system csf trusted-list`); the CLI enters it only from inside its parent
//! (`config system csf`, then `config trusted-list`), and `show`/`get` of the parent
//! print it inside the parent's block. [`NESTED_TABLES`] is the one list of those pairs.

use super::{Choice, FieldKind, FieldSpec, Rule, TableKind, TableSchema, field};

/// Most trusted-list entries the root keeps (ours): FortiOS's CLI reference gives no
/// limit; this bounds a runaway script and stays above any fabric a topology describes.
pub const MAX_TRUSTED_LIST_ENTRIES: usize = 1024;

/// Longest `serial` of a trusted-list entry: FortiOS's field is a string of at most 19
/// characters.
const TRUSTED_SERIAL_MAX: usize = 19;

/// Longest certificate of a `certificate` entry: FortiOS's `var-string` of 32767.
const CERTIFICATE_MAX: usize = 32_767;

/// `authorization-type` that matches a member by its serial number.
pub const AUTHORIZATION_BY_SERIAL: &str = "serial";
/// `authorization-type` that pins a member's certificate; not simulated (see
/// `docs/fortios.md`, "Member authorization").
pub const AUTHORIZATION_BY_CERTIFICATE: &str = "certificate";
/// `action` that admits the member.
pub const ACTION_ACCEPT: &str = "accept";
/// `action` that keeps the member out.
pub const ACTION_DENY: &str = "deny";

const AUTHORIZATION_TYPES: &[Choice] = &[
    Choice {
        name: AUTHORIZATION_BY_SERIAL,
        help: "Verify downstream by serial number.",
    },
    Choice {
        name: AUTHORIZATION_BY_CERTIFICATE,
        help: "Verify downstream by certificate.",
    },
];

const ACTIONS: &[Choice] = &[
    Choice {
        name: ACTION_ACCEPT,
        help: "Accept authorization request.",
    },
    Choice {
        name: ACTION_DENY,
        help: "Deny authorization request.",
    },
];

/// `config system csf` / `config trusted-list`: "Pre-authorized and blocked security
/// fabric nodes." Keyed by name (the GUI names an entry after the serial); replicated
/// from the root like the EMS tables, so a member may read it but never edit it.
pub const TRUSTED_LIST: TableSchema = TableSchema {
    path: "system csf trusted-list",
    help: "Pre-authorized and blocked security fabric nodes.",
    kind: TableKind::Table {
        key: "name",
        max_entries: MAX_TRUSTED_LIST_ENTRIES,
    },
    synced: true,
    fields: &[
        field("name", FieldKind::String { max: 35 }, "", "Name."),
        field(
            "authorization-type",
            FieldKind::Option(AUTHORIZATION_TYPES),
            AUTHORIZATION_BY_SERIAL,
            "Authorization type.",
        ),
        field(
            "serial",
            FieldKind::String {
                max: TRUSTED_SERIAL_MAX,
            },
            "",
            "Serial.",
        ),
        FieldSpec {
            visible_if: Some(("authorization-type", AUTHORIZATION_BY_CERTIFICATE)),
            ..field(
                "certificate",
                FieldKind::Pem { max: CERTIFICATE_MAX },
                "",
                "Certificate.",
            )
        },
        field(
            "action",
            FieldKind::Option(ACTIONS),
            ACTION_ACCEPT,
            "Security fabric authorization action.",
        ),
    ],
    rules: &[
        Rule::Unsupported {
            field: "authorization-type",
            value: AUTHORIZATION_BY_CERTIFICATE,
            why: "fabricsim authorizes Security Fabric members by serial number only",
        },
        Rule::RequiredUnless {
            field: "serial",
            unless: ("authorization-type", AUTHORIZATION_BY_CERTIFICATE),
            only_if: None,
        },
    ],
};

/// A table that lives inside a single object's `config` block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nesting {
    /// The object's path (`system csf`).
    pub parent: &'static str,
    /// The nested table's path (`system csf trusted-list`); its last word is what
    /// `config` takes inside the parent.
    pub child: &'static str,
}

/// Every nested table, by parent.
pub const NESTED_TABLES: &[Nesting] = &[Nesting {
    parent: super::SYSTEM_CSF.path,
    child: TRUSTED_LIST.path,
}];

/// Whether `path` is a table reached only from inside its parent.
pub fn is_nested(path: &str) -> bool {
    NESTED_TABLES.iter().any(|nesting| nesting.child == path)
}

/// The tables of `registry` nested inside `parent`, in registry order.
pub fn children_of<'r>(
    registry: &'r [TableSchema],
    parent: &'r str,
) -> impl Iterator<Item = &'r TableSchema> {
    registry.iter().filter(move |table| {
        NESTED_TABLES
            .iter()
            .any(|nesting| nesting.parent == parent && nesting.child == table.path)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::{SYSTEM_CSF, schema, schemas};

    #[test]
    fn the_trusted_list_is_synced_nested_in_system_csf_and_keyed_by_name() {
        assert_eq!(schema("system csf trusted-list"), Some(&TRUSTED_LIST));
        let synced = |path: &str| schema(path).map(|table| table.synced);
        assert_eq!(synced(TRUSTED_LIST.path), Some(true));
        assert_eq!(synced(SYSTEM_CSF.path), Some(false));
        assert!(is_nested(TRUSTED_LIST.path));
        assert!(!is_nested(SYSTEM_CSF.path));
        let children: Vec<&str> = children_of(schemas(), SYSTEM_CSF.path).map(|t| t.path).collect();
        assert_eq!(children, [TRUSTED_LIST.path]);
        assert_eq!(TRUSTED_LIST.context_name(), "trusted-list");
        assert_eq!(TRUSTED_LIST.key_field().map(|f| f.name), Some("name"));
        let names: Vec<&str> = TRUSTED_LIST.fields.iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            ["name", "authorization-type", "serial", "certificate", "action"]
        );
        let default = |name: &str| TRUSTED_LIST.field(name).map(|f| f.default);
        assert_eq!(default("authorization-type"), Some("serial"));
        assert_eq!(default("action"), Some("accept"));
        let serial = TRUSTED_LIST.field("serial").unwrap();
        assert!(super::super::parse_value(serial, &"F".repeat(19)).is_ok());
        assert!(super::super::parse_value(serial, &"F".repeat(20)).is_err());
    }
}
