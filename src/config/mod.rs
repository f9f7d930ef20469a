//! The replicated configuration database.
//!
//! Every node keeps one [`ConfigDb`]: the FortiOS configuration tables that the fabric
//! root owns and replicates (today `endpoint-control fctems`). It is a schema-driven model
//! in the manner of FortiOS's cmdb:
//!
//! - [`mod@schema`] describes each path, its fields, types, defaults and consistency rules;
//!   [`parse_value`] turns a raw word into the canonical string the database stores.
//! - [`ConfigCommand`] is the unit of change that travels through the Raft log. The CLI
//!   builds one on `next`, `end`, `delete` or `purge`; the state machine hands it to
//!   [`ConfigDb::apply`].
//! - [`ConfigDb::apply`] is pure and deterministic: it validates the command against the
//!   current content (limits such as [`MAX_FCTEMS_ENTRIES`], one EMS Cloud entry, required
//!   server) and either applies all of it, advancing the revision, or returns a
//!   [`CommandError`] whose [`CommandError::cli_lines`] is the FortiOS error text.
//! - [`ConfigDb::revision`] and [`ConfigDb::hash`] let nodes compare what they applied.
//! - A database follows the schemas of one [`crate::domain::Firmware`]: the fctems table
//!   is keyed by name or by ems-id, built from one field list (`schema::fctems`), and
//!   `fctems.rs` reads both shapes alike (which entries are in use, their names).
//! - `trusted.rs` reads the root's `config trusted-list` (nested in `system csf`, see
//!   `schema/csf.rs`): what it decides about a member's serial.

mod db;
mod error;
mod fctems;
pub mod schema;
mod trusted;

pub use db::{Applied, ConfigCommand, ConfigDb, Entry};
pub use error::{
    CommandError, RC_INCOMPLETE, RC_INVALID_VALUE, RC_NOT_FOUND, RC_PARSE_ERROR, RC_TABLE_FULL,
    datasource_error_lines, fail_line, parse_error_lines, value_error_lines,
};
pub use schema::{
    FieldKind, FieldSpec, MAX_FCTEMS_ENTRIES, TableKind, TableSchema, ValueError, fctems_for, hash_secret,
    parse_value, schema, schema_for, schemas, schemas_for, secret_matches,
};
pub use trusted::TrustDecision;
