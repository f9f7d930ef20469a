//! What each verb does: one handler per context, matching on the actions of that
//! context's verb table in [`super::grammar`].
//!
//! A handler reads the applied configuration from the backend, changes the pending entry,
//! or commits one [`ConfigCommand`]; it returns the output lines and, when the command
//! moves the session, the next context ([`Done`]). A failed command returns a
//! [`CliError`] and leaves the context and the pending values exactly as they were.

use std::collections::BTreeMap;

use crate::config::schema::{FieldKind, FieldSpec, TableKind, TableSchema};
use crate::config::{ConfigCommand, parse_value};

use super::backend::Backend;
use super::commit::{commit, commit_pending, require_modify};
use super::context::{Context, Pending};
use super::error::CliError;
use super::execute::{self, Printed};
use super::format;
use super::grammar::{
    EditAction, SYSTEM_STATUS, TableAction, TopAction, Verb, find_nested, find_table, full_flag, get_paths,
    no_args, one_arg, resolve_path, split_full,
};

/// A successful command: its output, where the session goes next, and the configuration
/// revision its commit produced, if it committed a change.
pub(super) struct Done {
    pub(super) printed: Printed,
    pub(super) next: Next,
    pub(super) revision: Option<u64>,
}

/// Where a command moves the session.
pub(super) enum Next {
    /// It stays where it is.
    Stay,
    /// To this context.
    Goto(Context),
    /// Out of the innermost `config` block: to the object it is nested in, or to the top
    /// level.
    Leave,
    /// Into a table nested in the object being edited, which waits, pending values and
    /// all, until the nested table is left.
    Descend(&'static TableSchema),
}

impl Done {
    fn print(lines: Vec<String>) -> Self {
        Self {
            printed: Printed::print(lines),
            next: Next::Stay,
            revision: None,
        }
    }

    fn quiet() -> Self {
        Self::print(Vec::new())
    }

    fn goto(next: Next) -> Self {
        Self {
            printed: Printed::print(Vec::new()),
            next,
            revision: None,
        }
    }
}

type Outcome = Result<Done, CliError>;

/// Runs a top-level `verb`.
pub(super) async fn at_top<B: Backend>(
    registry: &'static [TableSchema],
    backend: &B,
    verb: &Verb<TopAction>,
    args: &[String],
) -> Outcome {
    match verb.action {
        TopAction::Config => {
            let table = find_table(registry, args)?;
            Ok(Done::goto(Next::Goto(enter(table, backend))))
        }
        TopAction::Show => {
            let (full, path) = split_full(args);
            let db = backend.config();
            if path.is_empty() {
                return Ok(Done::print(format::show_all(registry, &db, full)));
            }
            let table = find_table(registry, path)?;
            Ok(Done::print(format::show_table(table, &db, full)))
        }
        TopAction::Get => {
            if resolve_path(&get_paths(registry), args)? == SYSTEM_STATUS {
                let now = backend.clock().unix_seconds();
                let firmware = backend.config().firmware();
                return Ok(Done::print(format::system_status(
                    backend.identity(),
                    firmware,
                    now,
                )));
            }
            let table = find_table(registry, args)?;
            Ok(Done::print(format::get_table(table, &backend.config())))
        }
        TopAction::Exit => no_args(args).map(|()| Done::quiet()),
        TopAction::Run => {
            let printed = execute::run(backend, verb.subcommands(), args).await?;
            Ok(Done {
                printed,
                next: Next::Stay,
                revision: None,
            })
        }
    }
}

/// Runs `action` inside `table`.
pub(super) async fn in_table<B: Backend>(
    table: &'static TableSchema,
    backend: &B,
    action: TableAction,
    args: &[String],
) -> Outcome {
    match action {
        TableAction::Edit => edit(table, backend, one_arg(args)?),
        TableAction::Delete => {
            let key = one_arg(args)?.to_owned();
            require_modify(backend, table)?;
            let table = table.path.to_owned();
            commit(backend, ConfigCommand::DeleteEntry { table, key }).await?;
            Ok(Done::quiet())
        }
        TableAction::Purge => {
            no_args(args)?;
            require_modify(backend, table)?;
            let table = table.path.to_owned();
            commit(backend, ConfigCommand::Purge { table }).await?;
            Ok(Done::quiet())
        }
        TableAction::Show => {
            let full = full_flag(args)?;
            Ok(Done::print(format::show_table(table, &backend.config(), full)))
        }
        TableAction::Get => {
            no_args(args)?;
            Ok(Done::print(format::get_table(table, &backend.config())))
        }
        TableAction::End | TableAction::Abort => no_args(args).map(|()| Done::goto(Next::Leave)),
    }
}

/// `edit <key>`: the stored entry, or a new one when this node may add it.
fn edit<B: Backend>(table: &'static TableSchema, backend: &B, raw: &str) -> Outcome {
    let key = entry_key(table, raw)?;
    if let Some(entry) = backend.config().entry(table.path, &key) {
        let values = entry.values().clone();
        return Ok(Done::goto(Next::Goto(Context::Edit(Pending {
            table,
            key,
            values,
        }))));
    }
    require_modify(backend, table)?;
    let added = vec![format!("new entry '{key}' added")];
    let values = BTreeMap::new();
    Ok(Done {
        next: Next::Goto(Context::Edit(Pending { table, key, values })),
        ..Done::print(added)
    })
}

/// Runs `action` on the entry or object being edited.
pub(super) async fn in_edit<B: Backend>(
    registry: &'static [TableSchema],
    pending: &mut Pending,
    backend: &B,
    action: EditAction,
    args: &[String],
) -> Outcome {
    // Leaving an entry returns to its table; leaving an object leaves its `config` block.
    let parent = || {
        if pending.is_entry() {
            Next::Goto(Context::Table(pending.table))
        } else {
            Next::Leave
        }
    };
    match action {
        EditAction::Set => {
            let (name, words) = args.split_first().ok_or(CliError::Incomplete)?;
            let field = pending.settable(name)?;
            let value = set_value(field, words)?;
            in_datasource(backend, pending.table, field, &value)?;
            require_modify(backend, pending.table)?;
            pending.assign(field, value);
            Ok(Done::quiet())
        }
        EditAction::Unset => {
            let field = pending.settable(one_arg(args)?)?;
            require_modify(backend, pending.table)?;
            pending.assign(field, field.default.to_owned());
            Ok(Done::quiet())
        }
        EditAction::Config => {
            let nested = find_nested(registry, pending.table, args)?;
            Ok(Done::goto(Next::Descend(nested)))
        }
        EditAction::Get => {
            no_args(args)?;
            let key = pending.is_entry().then_some(pending.key.as_str());
            let mut lines = format::get_entry(pending.table, key, &pending.values);
            lines.extend(format::get_nested(pending.table, &backend.config()));
            Ok(Done::print(lines))
        }
        EditAction::Show => {
            let full = full_flag(args)?;
            let (table, key) = (pending.table, &pending.key);
            let db = backend.config();
            Ok(Done::print(format::show_entry(
                table,
                key,
                &pending.values,
                &db,
                full,
            )))
        }
        EditAction::Next | EditAction::End => {
            no_args(args)?;
            let applied = commit_pending(backend, pending).await?;
            let next = if action == EditAction::Next {
                parent()
            } else {
                Next::Leave
            };
            Ok(Done {
                revision: applied.map(|applied| applied.revision),
                ..Done::goto(next)
            })
        }
        EditAction::Abort => no_args(args).map(|()| Done::goto(parent())),
    }
}

/// The context `config <path>` enters: a table, or the stored object ready for editing.
fn enter<B: Backend>(table: &'static TableSchema, backend: &B) -> Context {
    match table.kind {
        TableKind::Table { .. } => Context::Table(table),
        TableKind::Object => {
            let values = backend
                .config()
                .entry(table.path, "")
                .map(|entry| entry.values().clone())
                .unwrap_or_default();
            Context::Edit(Pending {
                table,
                key: String::new(),
                values,
            })
        }
    }
}

/// The canonical value of `set <field> <words...>`; several words only for sets.
pub(super) fn set_value(field: &FieldSpec, words: &[String]) -> Result<String, CliError> {
    let Some(first) = words.first() else {
        return Err(CliError::Incomplete);
    };
    let raw = match field.kind {
        FieldKind::Set(_) => {
            // Name the first word that is no member, as FortiOS does.
            if let Some(bad) = words.iter().find(|word| parse_value(field, word).is_err()) {
                return Err(CliError::Value(bad.clone()));
            }
            words.join(" ")
        }
        _ => {
            if let Some(extra) = words.get(1) {
                return Err(CliError::Parse(extra.clone()));
            }
            first.clone()
        }
    };
    parse_value(field, &raw).map_err(|_| CliError::Value(raw))
}

/// Refuses a `value` of `field` that names no entry of the table the field refers to
/// (`set certificate` names a `vpn certificate remote` entry), as FortiOS does at `set`.
pub(super) fn in_datasource<B: Backend>(
    backend: &B,
    table: &TableSchema,
    field: &FieldSpec,
    value: &str,
) -> Result<(), CliError> {
    match table.datasource(field.name) {
        Some(source) if !value.is_empty() && backend.config().entry(source, value).is_none() => {
            Err(CliError::NotInDatasource(value.to_owned()))
        }
        _ => Ok(()),
    }
}

/// The canonical key of `edit <key>`, checked against the table's key field.
pub(super) fn entry_key(table: &TableSchema, raw: &str) -> Result<String, CliError> {
    let key_field = table.key_field().ok_or_else(|| CliError::Parse(raw.to_owned()))?;
    if raw.is_empty() {
        return Err(CliError::Value(String::new()));
    }
    parse_value(key_field, raw).map_err(|_| CliError::Value(raw.to_owned()))
}
