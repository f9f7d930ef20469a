//! Where a session is: the context stack and the entry being edited.
//!
//! A session is at the top level, inside a keyed table, or editing one entry or object
//! ([`Context`]). Editing works on a [`Pending`] copy of the entry's non-default values;
//! the session commits it on `next` or `end`, so nothing here talks to the backend.

use std::collections::BTreeMap;

use crate::config::schema::{FieldSpec, TableKind, TableSchema};

use super::error::CliError;

/// Where a session is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Context {
    /// The top level: `FGT-root # `.
    Top,
    /// Inside a keyed table: `FGT-root (fctems) # `.
    Table(&'static TableSchema),
    /// Editing an entry of a table, or a single object.
    Edit(Pending),
}

impl Context {
    /// The word a prompt shows in parentheses; `None` at the top level.
    pub(super) fn prompt_name(&self) -> Option<&str> {
        match self {
            Self::Top => None,
            Self::Table(table) => Some(table.context_name()),
            Self::Edit(pending) => Some(match pending.table.kind {
                TableKind::Table { .. } => &pending.key,
                TableKind::Object => pending.table.context_name(),
            }),
        }
    }
}

/// An entry or object being edited: a private copy of its non-default values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pending {
    pub(super) table: &'static TableSchema,
    /// The entry key; empty for an object.
    pub(super) key: String,
    /// Non-default canonical values, the same shape `ConfigDb` stores.
    pub(super) values: BTreeMap<String, String>,
}

impl Pending {
    /// Whether this is an entry of a keyed table rather than a single object.
    pub(super) fn is_entry(&self) -> bool {
        matches!(self.table.kind, TableKind::Table { .. })
    }

    /// The visible, settable field called `name`, as `set` and `unset` accept it.
    pub(super) fn settable(&self, name: &str) -> Result<&'static FieldSpec, CliError> {
        self.table
            .field(name)
            .filter(|field| !self.table.is_key(field.name))
            .filter(|field| self.table.is_visible(&self.values, field))
            .ok_or_else(|| CliError::Parse(name.to_owned()))
    }

    /// The fields `set` and `unset` offer now, in schema order.
    pub(super) fn visible_fields(&self) -> impl Iterator<Item = &'static FieldSpec> + '_ {
        self.table
            .value_fields()
            .filter(|field| self.table.is_visible(&self.values, field))
    }

    /// Gives `field` the canonical `value`, then drops values of fields the change hid.
    pub(super) fn assign(&mut self, field: &FieldSpec, value: String) {
        if value == field.default {
            self.values.remove(field.name);
        } else {
            self.values.insert(field.name.to_owned(), value);
        }
        let hidden: Vec<&str> = self
            .table
            .value_fields()
            .filter(|spec| !self.table.is_visible(&self.values, spec))
            .map(|spec| spec.name)
            .collect();
        for name in hidden {
            self.values.remove(name);
        }
    }
}
