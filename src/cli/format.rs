//! Rendering configuration the way FortiOS prints it: `show` blocks, `get` field lists
//! and `get system status`.
//!
//! Everything here is a pure function of a schema, stored values and (for the status page)
//! the node identity and a UNIX time, returning output lines without line terminators.

use crate::calendar::{Date, SECONDS_PER_DAY, ctime, rfc3339};
use crate::config::ConfigDb;
use crate::config::schema::{FieldKind, FieldSpec, Lookup, TableKind, TableSchema, children_of, is_nested};
use crate::domain::Firmware;

use super::backend::{NodeIdentity, PendingMember};

/// `show` indents each nesting level by four spaces (`docs/fortios.md`, "CLI grammar and output").
const INDENT: &str = "    ";

/// `get` pads field names to 20 columns; longer names run straight into the colon, as on
/// a FortiGate.
const GET_NAME_WIDTH: usize = 20;

/// The firmware release the REST API reports in every reply: `version` and `build`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FirmwareRelease {
    /// `vMAJOR.MINOR.PATCH`, as clients parse it (`v7.0.12`).
    pub version: &'static str,
    /// The build number (`523`).
    pub build: u32,
}

/// The release `firmware` reports: the same version and build `get system status` prints
/// (`docs/fortios.md`, "Firmware profiles").
pub fn firmware_release(firmware: Firmware) -> FirmwareRelease {
    FirmwareRelease {
        version: firmware.version(),
        build: firmware.build(),
    }
}

/// `show` (or `show full-configuration`) of every table in `registry`, in registry order;
/// a nested table inside its object's block.
pub(crate) fn show_all(registry: &[TableSchema], db: &ConfigDb, full: bool) -> Vec<String> {
    registry
        .iter()
        .filter(|table| !is_nested(table.path))
        .flat_map(|table| show_table(table, db, full))
        .collect()
}

/// `show` of one table or object as stored in `db`.
pub(crate) fn show_table(table: &TableSchema, db: &ConfigDb, full: bool) -> Vec<String> {
    let mut lines = vec![format!("config {}", block_name(table))];
    match table.kind {
        TableKind::Table { .. } => {
            for (key, entry) in db.entries(table.path) {
                lines.extend(edit_block(table, key, entry, full));
            }
        }
        TableKind::Object => {
            let entry = db.entry(table.path, "").cloned().unwrap_or_default();
            lines.extend(set_lines(table, &entry, full, INDENT));
            lines.extend(nested_blocks(table, db, full));
        }
    }
    lines.push("end".to_owned());
    lines
}

/// `show` inside an entry or object: the `config` (and `edit`) wrapper around its
/// pending values; an object's nested tables as `db` holds them.
pub(crate) fn show_entry(
    table: &TableSchema,
    key: &str,
    values: &impl Lookup,
    db: &ConfigDb,
    full: bool,
) -> Vec<String> {
    let mut lines = vec![format!("config {}", block_name(table))];
    match table.kind {
        TableKind::Table { .. } => lines.extend(edit_block(table, key, values, full)),
        TableKind::Object => {
            lines.extend(set_lines(table, values, full, INDENT));
            lines.extend(nested_blocks(table, db, full));
        }
    }
    lines.push("end".to_owned());
    lines
}

/// The word after `config` in a block: the path, or for a nested table its own last word
/// (`config trusted-list` inside `config system csf`).
fn block_name(table: &TableSchema) -> &'static str {
    if is_nested(table.path) {
        table.context_name()
    } else {
        table.path
    }
}

/// The `config <nested> ... end` blocks of `object`'s nested tables, indented one level,
/// after the object's own values as FortiOS prints them. A nested table without entries
/// is left out, with `full-configuration` too (ours).
fn nested_blocks(object: &TableSchema, db: &ConfigDb, full: bool) -> Vec<String> {
    children_of(db.registry(), object.path)
        .filter(|nested| db.entries(nested.path).next().is_some())
        .flat_map(|nested| show_table(nested, db, full))
        .map(|line| format!("{INDENT}{line}"))
        .collect()
}

fn edit_block(table: &TableSchema, key: &str, values: &impl Lookup, full: bool) -> Vec<String> {
    // The key is written as its field's values are: a name quoted, an ems-id bare.
    let key = table
        .key_field()
        .map_or_else(|| quote(key), |field| show_value(field, key));
    let mut lines = vec![format!("{INDENT}edit {key}")];
    lines.extend(set_lines(table, values, full, &INDENT.repeat(2)));
    lines.push(format!("{INDENT}next"));
    lines
}

fn set_lines(table: &TableSchema, values: &impl Lookup, full: bool, indent: &str) -> Vec<String> {
    table
        .value_fields()
        .filter(|field| table.is_visible(values, field))
        .filter_map(|field| {
            let value = field.value_in(values);
            (full || value != field.default)
                .then(|| format!("{indent}set {} {}", field.name, show_value(field, value)))
        })
        .collect()
}

/// A value as `show` writes it: strings quoted, numbers, addresses and keywords bare,
/// empty values as `''`.
fn show_value(field: &FieldSpec, value: &str) -> String {
    if value.is_empty() {
        return "''".to_owned();
    }
    match field.kind {
        FieldKind::String { .. } | FieldKind::Ipv4OrFqdn { .. } | FieldKind::Pem { .. } => quote(value),
        FieldKind::Ipv4
        | FieldKind::Integer { .. }
        | FieldKind::EnableDisable
        | FieldKind::Option(_)
        | FieldKind::Set(_)
        | FieldKind::Secret { .. } => value.to_owned(),
    }
}

/// Double-quotes `text`, escaping backslashes and double quotes so the CLI reads it back.
pub(crate) fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// `get` of one entry (key given) or object (`key` is `None`): every visible field.
pub(crate) fn get_entry(table: &TableSchema, key: Option<&str>, values: &impl Lookup) -> Vec<String> {
    table
        .fields
        .iter()
        .filter_map(|field| {
            let value = if table.is_key(field.name) {
                key.unwrap_or_default()
            } else if table.is_visible(values, field) {
                field.value_in(values)
            } else {
                return None;
            };
            let line = format!("{:<width$}: {value}", field.name, width = GET_NAME_WIDTH);
            Some(line.trim_end().to_owned())
        })
        .collect()
}

/// `get` of a whole table (`== [ key ]` before each entry) or of an object.
pub(crate) fn get_table(table: &TableSchema, db: &ConfigDb) -> Vec<String> {
    match table.kind {
        TableKind::Table { .. } => db
            .entries(table.path)
            .flat_map(|(key, entry)| {
                std::iter::once(format!("== [ {key} ]")).chain(get_entry(table, Some(key), entry))
            })
            .collect(),
        TableKind::Object => {
            let entry = db.entry(table.path, "").cloned().unwrap_or_default();
            let mut lines = get_entry(table, None, &entry);
            lines.extend(get_nested(table, db));
            lines
        }
    }
}

/// What `get` of `object` adds for its nested tables: the table's name and a colon, then
/// each entry's `== [ key ]`, indented; nothing for a table without entries (ours).
pub(crate) fn get_nested(object: &TableSchema, db: &ConfigDb) -> Vec<String> {
    let mut lines = Vec::new();
    for nested in children_of(db.registry(), object.path) {
        let keys: Vec<String> = db
            .entries(nested.path)
            .map(|(key, _)| format!("{INDENT}== [ {key} ]"))
            .collect();
        if !keys.is_empty() {
            lines.push(format!("{}:", nested.context_name()));
            lines.extend(keys);
        }
    }
    lines
}

/// `get system status` for `identity` running `firmware`, at `unix_seconds` (UTC).
pub(crate) fn system_status(identity: &NodeIdentity, firmware: Firmware, unix_seconds: i64) -> Vec<String> {
    [
        format!("Version: {}", firmware.version_line()),
        "Security Level: 1".to_owned(),
        format!("Serial-Number: {}", identity.serial),
        "License Status: Valid".to_owned(),
        format!("Hostname: {}", identity.hostname),
        "Operation Mode: NAT".to_owned(),
        "Current virtual domain: root".to_owned(),
        "Max number of virtual domains: 1".to_owned(),
        "Virtual domain configuration: disable".to_owned(),
        "FIPS-CC mode: disable".to_owned(),
        "Current HA mode: standalone".to_owned(),
        format!("Branch point: {}", firmware.build_text()),
        "Release Version Information: GA".to_owned(),
        format!("System time: {}", ctime(unix_seconds)),
    ]
    .into()
}

/// The columns of `diagnose sys csf authorization pending-list`: FortiOS's four
/// (`Serial`, `IP Address`, `HA-Members`, `Path`, as the FortiOS Administration Guide's
/// "Security Fabric over IPsec VPN" transcript shows them), then the member's name and
/// when it first and last asked (ours), each column as wide as its widest cell.
const PENDING_COLUMNS: [&str; 7] = [
    "Serial",
    "IP Address",
    "HA-Members",
    "Path",
    "Name",
    "First-Seen",
    "Last-Seen",
];

/// `diagnose sys csf authorization pending-list` on the root whose serial is
/// `root_serial`: a header, a rule of dashes, one row per waiting member. The path is the
/// root's serial and the member's, joined by `:`; a simulated FortiGate has no HA members
/// (`docs/fortios.md`, "Member authorization").
pub(crate) fn pending_list(root_serial: &str, pending: &[PendingMember]) -> Vec<String> {
    let rows: Vec<[String; 7]> = pending
        .iter()
        .map(|member| {
            let ip = member
                .addr
                .parse::<std::net::SocketAddr>()
                .map_or_else(|_| member.addr.clone(), |addr| addr.ip().to_string());
            [
                member.serial.clone(),
                ip,
                String::new(),
                format!("{root_serial}:{}", member.serial),
                member.name.clone(),
                rfc3339(member.first_seen),
                rfc3339(member.last_seen),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..PENDING_COLUMNS.len())
        .map(|i| {
            rows.iter()
                .map(|row| row[i].len())
                .chain([PENDING_COLUMNS[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[&str]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let header = line(&PENDING_COLUMNS);
    let mut lines = vec![header.clone(), "-".repeat(header.len())];
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        lines.push(line(&cells));
    }
    lines
}

/// A `YYYY-MM-DD` date as FortiOS lists contracts (`Fri Dec 31 00:00:00 2027`); the text
/// as given when it is no such date.
pub(crate) fn contract_date(date: &str) -> String {
    match Date::parse(date) {
        Some(date) if date.year >= 1970 => ctime(date.days() * SECONDS_PER_DAY),
        _ => date.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::schema::FCTEMS;

    #[test]
    fn show_quotes_strings_but_not_numbers_or_keywords() {
        let values = BTreeMap::from([
            ("server".to_owned(), "10.0.0.1".to_owned()),
            ("https-port".to_owned(), "8443".to_owned()),
            ("source-ip".to_owned(), "10.9.9.9".to_owned()),
            ("certificate".to_owned(), "a \"b\"".to_owned()),
            ("capabilities".to_owned(), "fabric-auth websocket".to_owned()),
        ]);
        assert_eq!(
            show_entry(&FCTEMS, "ems1", &values, &ConfigDb::new(), false),
            [
                "config endpoint-control fctems",
                "    edit \"ems1\"",
                "        set server \"10.0.0.1\"",
                "        set https-port 8443",
                "        set source-ip 10.9.9.9",
                "        set certificate \"a \\\"b\\\"\"",
                "        set capabilities fabric-auth websocket",
                "    next",
                "end",
            ]
        );
    }

    #[test]
    fn get_pads_names_and_trims_empty_values() {
        let values = BTreeMap::from([("server".to_owned(), "ems.example.com".to_owned())]);
        let lines = get_entry(&FCTEMS, Some("ems1"), &values);
        assert_eq!(lines[0], "name                : ems1");
        assert_eq!(lines[1], "server              : ems.example.com");
        assert_eq!(lines[4], "certificate         :");
        assert_eq!(lines[5], "fortinetone-cloud-authentication: disable");
        assert!(!lines.iter().any(|line| line.starts_with("interface ")));
        assert_eq!(lines.len(), FCTEMS.fields.len() - 1);
    }

    #[test]
    fn system_status_names_the_node() {
        let identity = NodeIdentity {
            name: "root".into(),
            hostname: "FGT-root".into(),
            serial: "FGVM01TM22000001".into(),
            is_root: true,
        };
        let lines = system_status(&identity, Firmware::default(), 0);
        assert_eq!(lines[0], "Version: FortiGate-VM64 v7.0.5,build0304,220208 (GA)");
        assert!(lines.contains(&"Branch point: 0304".to_owned()));
        let later = system_status(&identity, Firmware::parse("7.0.12").unwrap(), 0);
        assert_eq!(
            later[0],
            "Version: FortiGate-VM64 v7.0.12,build0523,230612 (GA.M)"
        );
        assert!(later.contains(&"Branch point: 0523".to_owned()));
        assert_eq!(
            firmware_release(Firmware::parse("7.2.8").unwrap()),
            FirmwareRelease {
                version: "v7.2.8",
                build: 1639
            }
        );
        assert!(lines.contains(&"Serial-Number: FGVM01TM22000001".to_owned()));
        assert!(lines.contains(&"Hostname: FGT-root".to_owned()));
        assert_eq!(
            lines.last().map(String::as_str),
            Some("System time: Thu Jan  1 00:00:00 1970")
        );
    }
}

#[cfg(test)]
mod pending_tests {
    use super::*;

    #[test]
    fn the_pending_list_has_fortios_columns_then_ours() {
        let member = PendingMember {
            serial: "FGVM01TM22000003".into(),
            name: "branch2".into(),
            addr: "127.0.0.13:8013".into(),
            first_seen: 0,
            last_seen: 86_400,
        };
        let lines = pending_list("FGVM01TM22000001", &[member]);
        assert_eq!(
            lines[0],
            "Serial            IP Address  HA-Members  Path                               Name     First-Seen            Last-Seen"
        );
        assert_eq!(lines[1], "-".repeat(lines[0].len()));
        assert_eq!(
            lines[2],
            "FGVM01TM22000003  127.0.0.13              FGVM01TM22000001:FGVM01TM22000003  branch2  1970-01-01T00:00:00Z  1970-01-02T00:00:00Z"
        );
        assert_eq!(pending_list("FGVM01TM22000001", &[]).len(), 2);
    }
}
