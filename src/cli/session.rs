//! One CLI session: the context stack, the pending edit, and every command.
//!
//! A session is at the top level, inside a table (`config endpoint-control fctems`), or
//! editing one entry or object. Editing works on a private copy of the entry's values;
//! nothing reaches the backend until `next` or `end` (or immediately for `delete` and
//! `purge`, as on FortiOS). Each command handler returns its output lines and, when the
//! command moves the session, the next context; a failed command keeps the context and
//! the pending values exactly as they were.

use std::collections::BTreeMap;

use crate::config::schema::{FieldKind, FieldSpec, TableKind, TableSchema};
use crate::config::{
    ConfigCommand, RC_INCOMPLETE, RC_INVALID_VALUE, RC_NOT_FOUND, fail_line, parse_error_lines, parse_value,
    schemas, value_error_lines,
};

use super::execute::{self, Question};
use super::tokenize::{TokenizeError, parse_line};
use super::{Backend, CommitError, MODIFICATION_NOT_ALLOWED, NodeIdentity, Reply, format, help};

/// The pseudo-path of `get system status`, offered and resolved beside the tables.
pub(super) const SYSTEM_STATUS: &str = "system status";

/// The option word of `show` that prints default values too.
pub(super) const FULL_CONFIGURATION: &str = "full-configuration";

/// A FortiOS CLI session: where the administrator is and what they are editing.
#[derive(Debug, Clone)]
pub struct Session {
    pub(super) registry: &'static [TableSchema],
    pub(super) context: Context,
    /// A question (`(y/n)`) the next line answers.
    question: Option<Question>,
}

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
    /// The visible, settable field called `name`, as `set` and `unset` accept it.
    pub(super) fn settable(&self, name: &str) -> Result<&'static FieldSpec, CliError> {
        self.table
            .field(name)
            .filter(|field| !self.table.is_key(field.name))
            .filter(|field| self.table.is_visible(&self.values, field))
            .ok_or_else(|| CliError::Parse(name.to_owned()))
    }

    /// Gives `field` the canonical `value`, then drops values of fields the change hid.
    fn assign(&mut self, field: &FieldSpec, value: String) {
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

/// Why a command failed, as the session reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum CliError {
    /// The command stopped before a required word.
    #[error("incomplete command")]
    Incomplete,
    /// A word was not expected where it stands.
    #[error("unexpected word {0:?}")]
    Parse(String),
    /// A value does not fit its field.
    #[error("invalid value {0:?}")]
    Value(String),
    /// The first word of a top-level command is not a command.
    #[error("unknown command")]
    UnknownAction,
    /// A member tried to change a table synced from the root.
    #[error("{MODIFICATION_NOT_ALLOWED}")]
    NotAllowed,
    /// The backend did not commit the change.
    #[error(transparent)]
    Commit(#[from] CommitError),
    /// An `execute` or `diagnose` command could not do its work; the text says why.
    #[error("{0}")]
    Failed(String),
    /// A command names an entry that does not exist.
    #[error("no entry {0:?}")]
    NotFound(String),
    /// A commit refused before it was proposed, with FortiOS's `node_check_object` line.
    #[error("{reason}")]
    Check {
        reason: String,
        field: &'static str,
        value: &'static str,
    },
}

impl CliError {
    /// The lines FortiOS prints for this failure.
    pub(super) fn lines(&self) -> Vec<String> {
        match self {
            Self::Incomplete => vec![
                "incomplete command in the end".to_owned(),
                fail_line(RC_INCOMPLETE),
            ],
            Self::Parse(word) => parse_error_lines(word),
            Self::Value(value) => value_error_lines(value),
            Self::UnknownAction => vec!["Unknown action 0".to_owned()],
            Self::NotAllowed => vec![MODIFICATION_NOT_ALLOWED.to_owned(), fail_line(RC_INVALID_VALUE)],
            Self::Commit(error) => error.cli_lines(),
            Self::Failed(reason) => vec![reason.clone(), fail_line(RC_INVALID_VALUE)],
            Self::NotFound(_) => vec![
                "entry not found in datasource".to_owned(),
                fail_line(RC_NOT_FOUND),
            ],
            Self::Check { reason, field, value } => vec![
                reason.clone(),
                format!("node_check_object fail! for {field} {value}"),
                fail_line(RC_INVALID_VALUE),
            ],
        }
    }
}

impl From<TokenizeError> for CliError {
    fn from(error: TokenizeError) -> Self {
        match error {
            TokenizeError::UnterminatedQuote
            | TokenizeError::TrailingBackslash
            | TokenizeError::MissingPattern => Self::Incomplete,
            TokenizeError::UnknownFilter(word) => Self::Parse(word),
        }
    }
}

/// A successful command: its output and, if it moves the session, where to.
struct Done {
    lines: Vec<String>,
    next: Option<Context>,
    question: Option<Question>,
}

impl Done {
    fn print(lines: Vec<String>) -> Self {
        Self {
            lines,
            next: None,
            question: None,
        }
    }

    fn quiet() -> Self {
        Self::print(Vec::new())
    }

    fn goto(next: Context) -> Self {
        Self {
            lines: Vec::new(),
            next: Some(next),
            question: None,
        }
    }
}

type Outcome = Result<Done, CliError>;

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

impl Session {
    /// A session at the top level over the built-in schemas.
    pub fn new() -> Self {
        Self::with_registry(schemas())
    }

    /// A session at the top level over `registry` instead of the built-in schemas.
    pub fn with_registry(registry: &'static [TableSchema]) -> Self {
        Self {
            registry,
            context: Context::Top,
            question: None,
        }
    }

    /// The prompt FortiOS shows in the current context: `FGT-root # `,
    /// `FGT-root (fctems) # `, `FGT-root (ems1) # `.
    pub fn prompt(&self, identity: &NodeIdentity) -> String {
        if self.question.is_some() {
            // The question itself, ending in `(y/n)`, is the prompt.
            return String::new();
        }
        let hostname = &identity.hostname;
        match &self.context {
            Context::Top => format!("{hostname} # "),
            Context::Table(table) => format!("{hostname} ({}) # ", table.context_name()),
            Context::Edit(pending) => match pending.table.kind {
                TableKind::Table { .. } => format!("{hostname} ({}) # ", pending.key),
                TableKind::Object => format!("{hostname} ({}) # ", pending.table.context_name()),
            },
        }
    }

    /// Runs one command line and returns what FortiOS would print. A line ending in an
    /// unquoted `?` prints help for the text before it instead.
    pub async fn execute<B: Backend>(&mut self, backend: &B, line: &str) -> Reply {
        if let Some(question) = self.question.take() {
            let (lines, failed) = match execute::answer(backend, question, line).await {
                Ok(lines) => (lines, false),
                Err(error) => (error.lines(), true),
            };
            return Reply {
                output: lines.iter().map(|line| format!("{line}\n")).collect(),
                failed,
                awaiting_answer: false,
            };
        }
        if let Some(partial) = help::help_request(line) {
            return Reply {
                output: self.help(backend, partial),
                failed: false,
                awaiting_answer: false,
            };
        }
        let (lines, failed) = match parse_line(line) {
            Err(error) => (CliError::from(error).lines(), true),
            Ok(command) => match self.run(backend, &command.words).await {
                Ok(lines) => {
                    let kept = lines
                        .into_iter()
                        .filter(|line| command.filters.iter().all(|grep| grep.keeps(line)))
                        .collect();
                    (kept, false)
                }
                Err(error) => (error.lines(), true),
            },
        };
        Reply {
            output: lines.iter().map(|line| format!("{line}\n")).collect(),
            failed,
            awaiting_answer: self.question.is_some(),
        }
    }

    async fn run<B: Backend>(&mut self, backend: &B, words: &[String]) -> Result<Vec<String>, CliError> {
        let Some((verb, args)) = words.split_first() else {
            return Ok(Vec::new());
        };
        let registry = self.registry;
        let done = match &mut self.context {
            Context::Top => at_top(registry, backend, verb, args).await?,
            Context::Table(table) => in_table(table, backend, verb, args).await?,
            Context::Edit(pending) => in_edit(pending, backend, verb, args).await?,
        };
        if let Some(next) = done.next {
            self.context = next;
        }
        self.question = done.question;
        Ok(done.lines)
    }
}

async fn at_top<B: Backend>(
    registry: &'static [TableSchema],
    backend: &B,
    verb: &str,
    args: &[String],
) -> Outcome {
    match verb {
        "config" => {
            let table = find_table(registry, args)?;
            Ok(Done::goto(enter(table, backend)))
        }
        "show" => {
            let (full, path) = split_full(args);
            let db = backend.config();
            if path.is_empty() {
                return Ok(Done::print(format::show_all(registry, &db, full)));
            }
            let table = find_table(registry, path)?;
            Ok(Done::print(format::show_table(table, &db, full)))
        }
        "get" => {
            let mut candidates: Vec<&str> = registry.iter().map(|table| table.path).collect();
            candidates.push(SYSTEM_STATUS);
            let path = resolve_path(&candidates, args)?;
            if path == SYSTEM_STATUS {
                let now = backend.clock().unix_seconds();
                return Ok(Done::print(format::system_status(backend.identity(), now)));
            }
            let table = find_table(registry, args)?;
            Ok(Done::print(format::get_table(table, &backend.config())))
        }
        "exit" | "end" => no_args(args).map(|()| Done::quiet()),
        "execute" => {
            let executed = execute::execute(backend, args).await?;
            Ok(Done {
                lines: executed.lines,
                next: None,
                question: executed.question,
            })
        }
        "diagnose" => execute::diagnose(backend, args).await.map(Done::print),
        _ => Err(CliError::UnknownAction),
    }
}

async fn in_table<B: Backend>(
    table: &'static TableSchema,
    backend: &B,
    verb: &str,
    args: &[String],
) -> Outcome {
    match verb {
        "edit" => {
            let key = entry_key(table, one_arg(args)?)?;
            let db = backend.config();
            let values = match db.entry(table.path, &key) {
                Some(entry) => entry.values().clone(),
                None => {
                    require_modify(backend, table)?;
                    return Ok(Done {
                        lines: vec![format!("new entry '{key}' added")],
                        next: Some(Context::Edit(Pending {
                            table,
                            key,
                            values: BTreeMap::new(),
                        })),
                        question: None,
                    });
                }
            };
            Ok(Done::goto(Context::Edit(Pending { table, key, values })))
        }
        "delete" => {
            let key = one_arg(args)?.to_owned();
            require_modify(backend, table)?;
            commit(
                backend,
                ConfigCommand::DeleteEntry {
                    table: table.path.to_owned(),
                    key,
                },
            )
            .await?;
            Ok(Done::quiet())
        }
        "purge" => {
            no_args(args)?;
            require_modify(backend, table)?;
            commit(
                backend,
                ConfigCommand::Purge {
                    table: table.path.to_owned(),
                },
            )
            .await?;
            Ok(Done::quiet())
        }
        "show" => {
            let full = full_flag(args)?;
            Ok(Done::print(format::show_table(table, &backend.config(), full)))
        }
        "get" => {
            no_args(args)?;
            Ok(Done::print(format::get_table(table, &backend.config())))
        }
        "end" | "abort" => no_args(args).map(|()| Done::goto(Context::Top)),
        _ => Err(CliError::Parse(verb.to_owned())),
    }
}

async fn in_edit<B: Backend>(pending: &mut Pending, backend: &B, verb: &str, args: &[String]) -> Outcome {
    let is_table = matches!(pending.table.kind, TableKind::Table { .. });
    // Leaving an entry returns to its table; leaving an object returns to the top level.
    let parent = if is_table {
        Context::Table(pending.table)
    } else {
        Context::Top
    };
    match verb {
        "set" => {
            let (name, words) = args.split_first().ok_or(CliError::Incomplete)?;
            let field = pending.settable(name)?;
            let value = set_value(field, words)?;
            require_modify(backend, pending.table)?;
            pending.assign(field, value);
            Ok(Done::quiet())
        }
        "unset" => {
            let field = pending.settable(one_arg(args)?)?;
            require_modify(backend, pending.table)?;
            pending.assign(field, field.default.to_owned());
            Ok(Done::quiet())
        }
        "get" => {
            no_args(args)?;
            let key = is_table.then_some(pending.key.as_str());
            Ok(Done::print(format::get_entry(
                pending.table,
                key,
                &pending.values,
            )))
        }
        "show" => {
            let full = full_flag(args)?;
            Ok(Done::print(format::show_entry(
                pending.table,
                &pending.key,
                &pending.values,
                full,
            )))
        }
        "next" if is_table => {
            no_args(args)?;
            commit_pending(backend, pending).await?;
            Ok(Done::goto(parent))
        }
        "end" => {
            no_args(args)?;
            commit_pending(backend, pending).await?;
            Ok(Done::goto(Context::Top))
        }
        "abort" => no_args(args).map(|()| Done::goto(parent)),
        _ => Err(CliError::Parse(verb.to_owned())),
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
fn set_value(field: &FieldSpec, words: &[String]) -> Result<String, CliError> {
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

/// The canonical key of `edit <key>`, checked against the table's key field.
fn entry_key(table: &TableSchema, raw: &str) -> Result<String, CliError> {
    let key_field = table.key_field().ok_or_else(|| CliError::Parse(raw.to_owned()))?;
    if raw.is_empty() {
        return Err(CliError::Value(String::new()));
    }
    parse_value(key_field, raw).map_err(|_| CliError::Value(raw.to_owned()))
}

/// Refuses a change this node may not make (see [`super::may_modify`]).
fn require_modify<B: Backend>(backend: &B, table: &TableSchema) -> Result<(), CliError> {
    if super::may_modify(backend.identity(), table, &backend.config()) {
        Ok(())
    } else {
        Err(CliError::NotAllowed)
    }
}

/// Commits the pending entry if it differs from what the node has applied.
async fn commit_pending<B: Backend>(backend: &B, pending: &Pending) -> Result<(), CliError> {
    let unchanged = {
        let db = backend.config();
        match db.entry(pending.table.path, &pending.key) {
            Some(stored) => *stored.values() == pending.values,
            // An object never written equals one with only defaults.
            None => pending.table.kind == TableKind::Object && pending.values.is_empty(),
        }
    };
    if unchanged {
        return Ok(());
    }
    require_modify(backend, pending.table)?;
    if execute::enables_ems_cloud(&backend.config(), pending) {
        execute::require_ems_cloud(backend).await?;
    }
    commit(
        backend,
        ConfigCommand::SetEntry {
            table: pending.table.path.to_owned(),
            key: pending.key.clone(),
            values: pending.values.clone(),
        },
    )
    .await
}

async fn commit<B: Backend>(backend: &B, command: ConfigCommand) -> Result<(), CliError> {
    backend
        .commit(command)
        .await
        .map(|_applied| ())
        .map_err(CliError::Commit)
}

fn find_table(registry: &'static [TableSchema], words: &[String]) -> Result<&'static TableSchema, CliError> {
    let paths: Vec<&str> = registry.iter().map(|table| table.path).collect();
    let path = resolve_path(&paths, words)?;
    registry
        .iter()
        .find(|table| table.path == path)
        .ok_or_else(|| CliError::Parse(path.to_owned()))
}

/// Matches `words` against multi-word `candidates`: the first word that no candidate
/// continues with is a parse error; a proper prefix of a candidate is incomplete.
pub(super) fn resolve_path<'a>(candidates: &[&'a str], words: &[String]) -> Result<&'a str, CliError> {
    for (index, word) in words.iter().enumerate() {
        let continued = candidates
            .iter()
            .any(|candidate| starts_with_words(candidate, &words[..=index]));
        if !continued {
            return Err(CliError::Parse(word.clone()));
        }
    }
    candidates
        .iter()
        .find(|candidate| candidate.split(' ').eq(words.iter().map(String::as_str)))
        .copied()
        .ok_or(CliError::Incomplete)
}

/// Whether the path `candidate` begins with the words `prefix`.
pub(super) fn starts_with_words(candidate: &str, prefix: &[String]) -> bool {
    let mut words = candidate.split(' ');
    prefix.iter().all(|word| words.next() == Some(word.as_str()))
}

/// Splits `show` arguments into the `full-configuration` flag (first or last) and a path.
pub(super) fn split_full(args: &[String]) -> (bool, &[String]) {
    if let Some((first, rest)) = args.split_first()
        && first == FULL_CONFIGURATION
    {
        return (true, rest);
    }
    if let Some((last, rest)) = args.split_last()
        && last == FULL_CONFIGURATION
    {
        return (true, rest);
    }
    (false, args)
}

fn full_flag(args: &[String]) -> Result<bool, CliError> {
    match args {
        [] => Ok(false),
        [flag] if flag == FULL_CONFIGURATION => Ok(true),
        [flag, extra, ..] if flag == FULL_CONFIGURATION => Err(CliError::Parse(extra.clone())),
        [other, ..] => Err(CliError::Parse(other.clone())),
    }
}

fn no_args(args: &[String]) -> Result<(), CliError> {
    match args.first() {
        None => Ok(()),
        Some(extra) => Err(CliError::Parse(extra.clone())),
    }
}

fn one_arg(args: &[String]) -> Result<&str, CliError> {
    match args {
        [] => Err(CliError::Incomplete),
        [only] => Ok(only),
        [_, extra, ..] => Err(CliError::Parse(extra.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::test_backend::MemoryBackend;
    use crate::config::schema::FCTEMS;
    use crate::config::{ConfigDb, FieldKind, FieldSpec};

    async fn run(session: &mut Session, backend: &MemoryBackend, line: &str) -> Reply {
        session.execute(backend, line).await
    }

    async fn run_all(session: &mut Session, backend: &MemoryBackend, lines: &[&str]) {
        for line in lines {
            let reply = run(session, backend, line).await;
            assert!(!reply.failed, "{line}: {}", reply.output);
        }
    }

    #[test]
    fn execute_can_run_on_any_runtime_thread() {
        fn assert_send<T: Send>(_: &T) {}
        let backend = MemoryBackend::root();
        let mut session = Session::new();
        let future = session.execute(&backend, "show");
        assert_send(&future);
    }

    #[tokio::test]
    async fn prompts_follow_the_context() {
        let backend = MemoryBackend::root();
        let identity = backend.identity().clone();
        let mut session = Session::new();
        assert_eq!(session.prompt(&identity), "FGT-root # ");
        run_all(&mut session, &backend, &["config endpoint-control fctems"]).await;
        assert_eq!(session.prompt(&identity), "FGT-root (fctems) # ");
        run_all(&mut session, &backend, &["edit ems1"]).await;
        assert_eq!(session.prompt(&identity), "FGT-root (ems1) # ");
        run_all(&mut session, &backend, &["abort"]).await;
        assert_eq!(session.prompt(&identity), "FGT-root (fctems) # ");
        run_all(&mut session, &backend, &["end"]).await;
        assert_eq!(session.prompt(&identity), "FGT-root # ");
    }

    #[tokio::test]
    async fn nothing_is_written_before_next() {
        let backend = MemoryBackend::root();
        let mut session = Session::new();
        run_all(
            &mut session,
            &backend,
            &[
                "config endpoint-control fctems",
                "edit ems1",
                "set server 10.0.0.1",
            ],
        )
        .await;
        assert_eq!(backend.config().revision(), 0);
        run_all(&mut session, &backend, &["next"]).await;
        assert_eq!(backend.config().revision(), 1);
        // An unchanged entry is not committed again.
        run_all(&mut session, &backend, &["edit ems1", "next", "edit ems1", "end"]).await;
        assert_eq!(backend.config().revision(), 1);
        assert_eq!(backend.config().value(FCTEMS.path, "ems1", "server"), "10.0.0.1");
    }

    #[tokio::test]
    async fn refused_commit_keeps_the_pending_entry() {
        let backend = MemoryBackend::root();
        let mut session = Session::new();
        run_all(
            &mut session,
            &backend,
            &[
                "config endpoint-control fctems",
                "edit ems1",
                "set https-port 8443",
            ],
        )
        .await;
        let reply = run(&mut session, &backend, "next").await;
        assert!(reply.failed);
        assert!(reply.output.contains("node_check_object fail! for server \n"));
        assert_eq!(session.prompt(backend.identity()), "FGT-root (ems1) # ");
        assert_eq!(backend.config().revision(), 0);
        run_all(&mut session, &backend, &["set server ems.example.com", "next"]).await;
        assert_eq!(backend.config().value(FCTEMS.path, "ems1", "https-port"), "8443");
    }

    #[tokio::test]
    async fn unavailable_backend_is_reported() {
        let mut backend = MemoryBackend::root();
        backend.unavailable = Some("the fabric root is not leading yet".to_owned());
        let mut session = Session::new();
        run_all(
            &mut session,
            &backend,
            &[
                "config endpoint-control fctems",
                "edit ems1",
                "set server 10.0.0.1",
            ],
        )
        .await;
        let reply = run(&mut session, &backend, "end").await;
        assert!(reply.failed);
        assert_eq!(
            reply.output,
            "the fabric root is not leading yet\nCommand fail. Return code -1\n"
        );
        assert_eq!(session.prompt(backend.identity()), "FGT-root (ems1) # ");
    }

    #[tokio::test]
    async fn member_may_browse_but_not_modify() {
        let root = MemoryBackend::root();
        let mut session = Session::new();
        run_all(
            &mut session,
            &root,
            &[
                "config endpoint-control fctems",
                "edit ems1",
                "set server 10.0.0.1",
                "end",
            ],
        )
        .await;
        let member = MemoryBackend::branch1();
        member.replace(ConfigDb::clone(&root.config()));
        let before = member.config();
        let mut session = Session::new();
        run_all(
            &mut session,
            &member,
            &["config endpoint-control fctems", "edit ems1", "get", "show"],
        )
        .await;
        for line in ["set server 10.0.0.2", "unset server"] {
            let reply = run(&mut session, &member, line).await;
            assert!(reply.failed, "{line}");
            assert_eq!(
                reply.output,
                "Modification not allowed unless 'configuration-sync' is set to 'local'\nCommand fail. Return code -1\n"
            );
        }
        run_all(&mut session, &member, &["next"]).await;
        for line in ["edit ems2", "delete ems1", "purge"] {
            let reply = run(&mut session, &member, line).await;
            assert!(reply.failed, "{line}");
            assert!(reply.output.starts_with("Modification not allowed"));
        }
        assert_eq!(session.prompt(member.identity()), "FGT-branch1 (fctems) # ");
        assert_eq!(*member.config(), *before);
    }

    #[tokio::test]
    async fn changing_the_method_drops_the_hidden_interface() {
        let backend = MemoryBackend::root();
        let mut session = Session::new();
        run_all(
            &mut session,
            &backend,
            &[
                "config endpoint-control fctems",
                "edit ems1",
                "set server 10.0.0.1",
                "set interface-select-method specify",
                "set interface port1",
                "set interface-select-method auto",
                "next",
            ],
        )
        .await;
        let stored = backend.config();
        let entry = stored.entry(FCTEMS.path, "ems1").expect("stored");
        assert_eq!(entry.get("interface"), None);
        let reply = run(&mut session, &backend, "edit ems1").await;
        assert!(!reply.failed);
        let reply = run(&mut session, &backend, "set interface port1").await;
        assert_eq!(
            reply.output,
            "command parse error before 'interface'\nCommand fail. Return code -61\n"
        );
    }

    #[tokio::test]
    async fn grep_filters_output() {
        let backend = MemoryBackend::root();
        let mut session = Session::new();
        let reply = run(&mut session, &backend, "get system status | grep Virtual").await;
        assert_eq!(reply.output, "Virtual domain configuration: disable\n");
        let reply = run(&mut session, &backend, "get system status | grep -i virtual").await;
        assert_eq!(reply.output.lines().count(), 3);
        let reply = run(&mut session, &backend, "get system status | grep -v :").await;
        assert_eq!(reply.output, "");
        let reply = run(&mut session, &backend, "get system status | more").await;
        assert!(reply.failed);
        let reply = run(&mut session, &backend, "get system status | grep Hostname").await;
        assert_eq!(reply.output, "Hostname: FGT-root\n");
    }

    #[tokio::test]
    async fn system_time_comes_from_the_backend_clock() {
        let backend = MemoryBackend::root();
        let mut session = Session::new();
        let reply = run(&mut session, &backend, "get system status | grep time").await;
        assert_eq!(reply.output, "System time: Wed Nov 25 17:30:00 2026\n");
    }

    #[tokio::test]
    async fn top_level_errors() {
        let backend = MemoryBackend::root();
        let mut session = Session::new();
        let cases = [
            ("frobnicate", "Unknown action 0\n"),
            (
                "config",
                "incomplete command in the end\nCommand fail. Return code -160\n",
            ),
            (
                "config endpoint-control",
                "incomplete command in the end\nCommand fail. Return code -160\n",
            ),
            (
                "config endpoint-control fctems extra",
                "command parse error before 'extra'\nCommand fail. Return code -61\n",
            ),
            (
                "get system nonsense",
                "command parse error before 'nonsense'\nCommand fail. Return code -61\n",
            ),
            (
                "show \"unterminated",
                "incomplete command in the end\nCommand fail. Return code -160\n",
            ),
        ];
        for (line, output) in cases {
            let reply = run(&mut session, &backend, line).await;
            assert!(reply.failed, "{line}");
            assert_eq!(reply.output, output, "{line}");
        }
        for line in ["", "   ", "exit", "end"] {
            let reply = run(&mut session, &backend, line).await;
            assert_eq!(reply, Reply::default(), "{line:?}");
        }
    }

    #[tokio::test]
    async fn show_accepts_full_configuration_before_or_after_the_path() {
        let backend = MemoryBackend::root();
        let mut session = Session::new();
        let after = run(
            &mut session,
            &backend,
            "show endpoint-control fctems full-configuration",
        )
        .await;
        let before = run(
            &mut session,
            &backend,
            "show full-configuration endpoint-control fctems",
        )
        .await;
        assert_eq!(after, before);
        let bare = run(&mut session, &backend, "show").await;
        assert_eq!(
            bare.output,
            "config endpoint-control fctems\nend\nconfig system csf\nend\nconfig system settings\nend\nconfig vpn certificate remote\nend\n"
        );
    }

    const DEMO_OBJECT: TableSchema = TableSchema {
        path: "system demo",
        help: "Demo settings.",
        kind: TableKind::Object,
        synced: true,
        fields: &[FieldSpec {
            name: "level",
            kind: FieldKind::Integer { min: 1, max: 9 },
            default: "5",
            help: "Level.",
            visible_if: None,
        }],
        rules: &[],
    };
    static DEMO_REGISTRY: &[TableSchema] = &[DEMO_OBJECT];

    #[tokio::test]
    async fn objects_are_edited_in_place() {
        let backend = RegistryBackend::new();
        let mut session = Session::with_registry(DEMO_REGISTRY);
        let identity = backend.inner.identity().clone();
        let lines = ["config system demo", "set level 7"];
        for line in lines {
            assert!(!session.execute(&backend, line).await.failed, "{line}");
        }
        assert_eq!(session.prompt(&identity), "FGT-root (demo) # ");
        let reply = session.execute(&backend, "next").await;
        assert!(reply.failed, "objects have no next");
        let reply = session.execute(&backend, "show").await;
        assert_eq!(reply.output, "config system demo\n    set level 7\nend\n");
        let reply = session.execute(&backend, "get").await;
        assert_eq!(reply.output, "level               : 7\n");
        assert!(!session.execute(&backend, "end").await.failed);
        assert_eq!(session.prompt(&identity), "FGT-root # ");
        let reply = session.execute(&backend, "show system demo").await;
        assert_eq!(reply.output, "config system demo\n    set level 7\nend\n");
        let reply = session.execute(&backend, "get system demo").await;
        assert_eq!(reply.output, "level               : 7\n");
        assert!(!session.execute(&backend, "config system demo").await.failed);
        assert!(!session.execute(&backend, "unset level").await.failed);
        assert!(!session.execute(&backend, "end").await.failed);
        assert_eq!(backend.inner.config().entry("system demo", ""), None);
    }

    /// Applies commands against [`DEMO_REGISTRY`] instead of the built-in schemas.
    struct RegistryBackend {
        inner: MemoryBackend,
    }

    impl RegistryBackend {
        fn new() -> Self {
            Self {
                inner: MemoryBackend::root(),
            }
        }
    }

    impl Backend for RegistryBackend {
        fn identity(&self) -> &NodeIdentity {
            self.inner.identity()
        }

        fn config(&self) -> std::sync::Arc<ConfigDb> {
            self.inner.config()
        }

        fn clock(&self) -> &dyn crate::calendar::Clock {
            self.inner.clock()
        }

        async fn commit(&self, cmd: ConfigCommand) -> Result<crate::config::Applied, CommitError> {
            let mut next = ConfigDb::clone(&self.inner.config());
            let applied = next
                .apply_with(DEMO_REGISTRY, &cmd)
                .map_err(CommitError::Refused)?;
            self.inner.replace(next);
            Ok(applied)
        }

        async fn fetch_certificate(&self, entry: &str) -> Result<crate::cli::CertificateOffer, String> {
            Err(format!("no EMS behind {entry}"))
        }

        async fn test_connectivity(&self, entry: &str) -> Result<crate::connector::EmsStatus, String> {
            Err(format!("no EMS behind {entry}"))
        }

        async fn forticloud(&self) -> Result<crate::connector::forticloud::CloudRecord, String> {
            Err("no FortiCloud in this test".to_owned())
        }
    }
}
