//! Why `apply` refuses a command, and the FortiOS text for each refusal.
//!
//! A [`CommandError`] is produced inside the replicated state machine and travels back to
//! the writer inside a Raft response, so it is plain data (serde, `Clone`, `PartialEq`).
//! [`CommandError::cli_lines`] is the one place that turns it into the lines a FortiGate
//! prints; the return codes are shared with the CLI's own parse errors.

use serde::{Deserialize, Serialize};

use super::schema::ValueError;

/// Return code of a command FortiOS could not parse (unknown word).
pub const RC_PARSE_ERROR: i32 = -61;
/// Return code of a value that does not fit its field, and of a refused commit.
pub const RC_INVALID_VALUE: i32 = -1;
/// Return code of a reference to an entry that does not exist.
pub const RC_NOT_FOUND: i32 = -3;
/// Return code of a table that already holds its maximum number of entries.
pub const RC_TABLE_FULL: i32 = -4;
/// Return code of a command that ended before its last argument.
pub const RC_INCOMPLETE: i32 = -160;

/// The closing line FortiOS prints after every failed command.
pub fn fail_line(code: i32) -> String {
    format!("Command fail. Return code {code}")
}

/// `command parse error before '<word>'`: FortiOS did not expect `word` there.
pub fn parse_error_lines(word: &str) -> Vec<String> {
    vec![
        format!("command parse error before '{word}'"),
        fail_line(RC_PARSE_ERROR),
    ]
}

/// `value parse error before '<value>'`: `value` does not fit the field.
pub fn value_error_lines(value: &str) -> Vec<String> {
    vec![
        format!("value parse error before '{value}'"),
        fail_line(RC_INVALID_VALUE),
    ]
}

/// `entry not found in datasource` then `value parse error before '<value>'`: `value`
/// names no entry of the table the field refers to.
pub fn datasource_error_lines(value: &str) -> Vec<String> {
    vec![
        "entry not found in datasource".to_owned(),
        format!("value parse error before '{value}'"),
        fail_line(RC_NOT_FOUND),
    ]
}

/// Why `ConfigDb::apply` refused a command. A refused command changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum CommandError {
    /// No schema has this path.
    #[error("unknown configuration path {table:?}")]
    UnknownTable {
        /// The path named by the command.
        table: String,
    },
    /// Delete or purge was sent to a single object, which has no entries.
    #[error("{table} is a single object without entries")]
    NotATable {
        /// The object's path.
        table: String,
    },
    /// A single object is stored under the empty key, and the command named another.
    #[error("{table} is a single object; its key must be empty, not {key:?}")]
    UnexpectedKey {
        /// The object's path.
        table: String,
        /// The key the command carried.
        key: String,
    },
    /// The entry key does not fit the table's key field.
    #[error("invalid entry name {key:?}: {reason}")]
    InvalidKey {
        /// The refused key.
        key: String,
        /// What is wrong with it.
        reason: ValueError,
    },
    /// The table has no such field.
    #[error("{table} has no field {field:?}")]
    UnknownField {
        /// The table path.
        table: String,
        /// The unknown field name.
        field: String,
    },
    /// The key field was given as a value; it is the entry's key, not a setting.
    #[error("{field} is the entry key and cannot be set as a value")]
    KeyField {
        /// The key field's name.
        field: String,
    },
    /// A value does not fit its field.
    #[error("invalid value {value:?} for {field}: {reason}")]
    InvalidValue {
        /// The field name.
        field: String,
        /// The refused value.
        value: String,
        /// What is wrong with it.
        reason: ValueError,
    },
    /// A field was given a value while the field it depends on hides it.
    #[error("{field} applies only when {depends_on} is {required}")]
    HiddenField {
        /// The hidden field.
        field: String,
        /// The field that decides visibility.
        depends_on: String,
        /// The value that makes the field visible.
        required: String,
    },
    /// Adding the entry would exceed the table's maximum.
    #[error("{table} already holds its maximum of {max} entries")]
    TableFull {
        /// The table path.
        table: String,
        /// The maximum number of entries.
        max: usize,
    },
    /// Another entry already holds a value only one entry may hold.
    #[error("only one {what} is allowed; {existing:?} already has {field} {value}")]
    AtMostOne {
        /// The field compared across entries.
        field: String,
        /// The value only one entry may hold.
        value: String,
        /// A noun phrase for such an entry.
        what: String,
        /// The entry that already holds the value.
        existing: String,
    },
    /// A required field is empty.
    #[error("{field} is required in entry {key:?} unless {unless_field} is {unless_value}")]
    Required {
        /// The entry being written.
        key: String,
        /// The empty field.
        field: String,
        /// The field whose value would exempt the entry.
        unless_field: String,
        /// The exempting value.
        unless_value: String,
    },
    /// The entry holds a value FortiOS accepts and the simulator does not model.
    #[error("{field} {value} is not simulated: {why}")]
    Unsupported {
        /// The field.
        field: String,
        /// The value.
        value: String,
        /// Why the simulator refuses it.
        why: String,
    },
    /// A field names an entry of another table that does not exist (FortiOS's datasource).
    #[error("{field} {value:?} names no entry of {table}")]
    NotInDatasource {
        /// The field holding the name.
        field: String,
        /// The name that was not found.
        value: String,
        /// The table the name must be a key of.
        table: String,
    },
    /// Delete named an entry that does not exist.
    #[error("{table} has no entry {key:?}")]
    EntryNotFound {
        /// The table path.
        table: String,
        /// The missing key.
        key: String,
    },
}

impl CommandError {
    /// The lines a FortiGate prints for this refusal, the last one always
    /// `Command fail. Return code <n>`.
    pub fn cli_lines(&self) -> Vec<String> {
        match self {
            Self::UnknownTable { table } => {
                parse_error_lines(table.split(' ').next().unwrap_or(table.as_str()))
            }
            Self::NotATable { table } => vec![
                format!("{table} is a single object without entries."),
                fail_line(RC_PARSE_ERROR),
            ],
            Self::UnexpectedKey { key, .. } => parse_error_lines(key),
            Self::UnknownField { field, .. }
            | Self::KeyField { field, .. }
            | Self::HiddenField { field, .. } => parse_error_lines(field),
            Self::InvalidKey { key, .. } => value_error_lines(key),
            Self::InvalidValue { value, .. } => value_error_lines(value),
            Self::TableFull { table, max } => vec![
                format!("The table {table} is full: it holds at most {max} entries."),
                fail_line(RC_TABLE_FULL),
            ],
            Self::AtMostOne {
                field,
                value,
                what,
                existing,
                ..
            } => vec![
                format!("Only one {what} is allowed: \"{existing}\" already has {field} {value}."),
                format!("node_check_object fail! for {field} {value}"),
                fail_line(RC_INVALID_VALUE),
            ],
            Self::Required {
                key,
                field,
                unless_field,
                unless_value,
                ..
            } => vec![
                format!(
                    "Entry \"{key}\" has no {field}; it is required unless {unless_field} is set to {unless_value}."
                ),
                format!("node_check_object fail! for {field} "),
                fail_line(RC_INVALID_VALUE),
            ],
            Self::Unsupported { field, value, why } => vec![
                format!("{field} {value} is not simulated: {why}."),
                format!("node_check_object fail! for {field} {value}"),
                fail_line(RC_INVALID_VALUE),
            ],
            Self::NotInDatasource { value, .. } => datasource_error_lines(value),
            Self::EntryNotFound { .. } => vec![
                "entry not found in datasource".to_owned(),
                fail_line(RC_NOT_FOUND),
            ],
        }
    }
}
