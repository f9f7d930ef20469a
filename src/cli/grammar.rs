//! The CLI grammar: which verbs each context accepts, what may follow each verb, and the
//! `execute` and `diagnose` subcommands.
//!
//! Every verb is one [`Verb`] row in the table of its context ([`TOP_VERBS`],
//! [`TABLE_VERBS`], [`ENTRY_VERBS`], [`OBJECT_VERBS`]): the word, its `?` description, the
//! shape of its arguments ([`Args`]) and the action the session runs. The session looks a
//! typed verb up here before it runs it; `?` and Tab list the same rows and describe what
//! may follow from the same [`Args`]. A verb missing from a context's table is a parse
//! error there, for the session and for help alike.
//!
//! The rest of the file holds the word-matching rules both sides share: multi-word paths
//! (`config endpoint-control fctems`, `execute fctems verify`), the `full-configuration`
//! flag of `show`, and argument counts.

use crate::config::schema::{
    FCTEMS, NESTED_TABLES, SYSTEM_API_USER, TableKind, TableSchema, children_of, is_nested,
};

use super::error::CliError;

/// The pseudo-path of `get system status`, offered and resolved beside the tables.
pub(super) const SYSTEM_STATUS: &str = "system status";

/// The `?` description of [`SYSTEM_STATUS`].
const SYSTEM_STATUS_HELP: &str = "System status.";

/// The option word of `show` that prints default values too.
pub(super) const FULL_CONFIGURATION: &str = "full-configuration";

/// The `?` description of [`FULL_CONFIGURATION`].
pub(super) const FULL_CONFIGURATION_HELP: &str = "Show full configuration.";

/// One verb of one context.
#[derive(Debug)]
pub(super) struct Verb<A: 'static> {
    /// What the administrator types.
    pub(super) word: &'static str,
    /// What `?` prints beside it.
    pub(super) help: &'static str,
    /// Whether `?` and Tab offer it; FortiOS accepts `end` at the top level unlisted.
    pub(super) listed: bool,
    /// What may follow it.
    pub(super) args: Args,
    /// What the session does.
    pub(super) action: A,
}

impl<A> Verb<A> {
    /// The subcommands of a verb whose arguments are [`Args::Subcommands`]; none otherwise.
    pub(super) fn subcommands(&self) -> &'static [Subcommand] {
        match self.args {
            Args::Subcommands(list) => list,
            _ => &[],
        }
    }
}

/// What may follow a verb.
#[derive(Debug, Clone, Copy)]
pub(super) enum Args {
    /// Nothing.
    Nothing,
    /// A table path (`config endpoint-control fctems`).
    TablePath,
    /// A table path or none, with `full-configuration` before or after it (`show` at the
    /// top level).
    ShowPath,
    /// A table path or `system status` (`get` at the top level).
    GetPath,
    /// `full-configuration` or nothing (`show` inside a table or entry).
    ShowFlag,
    /// The key of an entry of the current table (`edit`, `delete`).
    EntryKey,
    /// A settable field of the entry being edited (`unset`).
    Field,
    /// A settable field and its value (`set`).
    FieldValue,
    /// A table nested in the object being edited (`config trusted-list` inside
    /// `config system csf`).
    NestedTable,
    /// One of these subcommands and its argument (`execute`, `diagnose`).
    Subcommands(&'static [Subcommand]),
}

/// Verbs of the top level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TopAction {
    Config,
    Get,
    Show,
    /// Runs one of the verb's [`Subcommand`]s.
    Run,
    Exit,
}

/// Verbs inside a keyed table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TableAction {
    Edit,
    Delete,
    Purge,
    Get,
    Show,
    End,
    Abort,
}

/// Verbs inside an entry or object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EditAction {
    Set,
    Unset,
    /// Enters a table nested in the object being edited.
    Config,
    Get,
    Show,
    Next,
    Abort,
    End,
}

const fn verb<A>(word: &'static str, help: &'static str, args: Args, action: A) -> Verb<A> {
    Verb {
        word,
        help,
        listed: true,
        args,
        action,
    }
}

const GET_HELP: &str = "Get dynamic and system information.";
const SHOW_HELP: &str = "Show configuration.";
const END_HELP: &str = "End and save last config.";
const ABORT_HELP: &str = "End and discard last config.";
const SET_HELP: &str = "Modify value.";
const UNSET_HELP: &str = "Set to default value.";

/// The top level, in the order FortiOS lists it.
pub(super) const TOP_VERBS: &[Verb<TopAction>] = &[
    verb("config", "Configure object.", Args::TablePath, TopAction::Config),
    verb("get", GET_HELP, Args::GetPath, TopAction::Get),
    verb("show", SHOW_HELP, Args::ShowPath, TopAction::Show),
    verb(
        "execute",
        "Execute static commands.",
        Args::Subcommands(EXECUTE),
        TopAction::Run,
    ),
    verb(
        "diagnose",
        "Diagnose facility.",
        Args::Subcommands(DIAGNOSE),
        TopAction::Run,
    ),
    verb("exit", "Exit the CLI.", Args::Nothing, TopAction::Exit),
    Verb {
        listed: false,
        ..verb("end", END_HELP, Args::Nothing, TopAction::Exit)
    },
];

/// Inside a keyed table (`config endpoint-control fctems`).
pub(super) const TABLE_VERBS: &[Verb<TableAction>] = &[
    verb("edit", "Add/edit table value.", Args::EntryKey, TableAction::Edit),
    verb(
        "delete",
        "Delete table value.",
        Args::EntryKey,
        TableAction::Delete,
    ),
    verb(
        "purge",
        "Clear all table value.",
        Args::Nothing,
        TableAction::Purge,
    ),
    verb("get", GET_HELP, Args::Nothing, TableAction::Get),
    verb("show", SHOW_HELP, Args::ShowFlag, TableAction::Show),
    verb("end", END_HELP, Args::Nothing, TableAction::End),
    verb("abort", ABORT_HELP, Args::Nothing, TableAction::Abort),
];

const SET: Verb<EditAction> = verb("set", SET_HELP, Args::FieldValue, EditAction::Set);
const UNSET: Verb<EditAction> = verb("unset", UNSET_HELP, Args::Field, EditAction::Unset);
const EDIT_GET: Verb<EditAction> = verb("get", GET_HELP, Args::Nothing, EditAction::Get);
const EDIT_SHOW: Verb<EditAction> = verb("show", SHOW_HELP, Args::ShowFlag, EditAction::Show);
const NEXT: Verb<EditAction> = verb(
    "next",
    "Configure next table entry.",
    Args::Nothing,
    EditAction::Next,
);
const EDIT_ABORT: Verb<EditAction> = verb("abort", ABORT_HELP, Args::Nothing, EditAction::Abort);
const EDIT_END: Verb<EditAction> = verb("end", END_HELP, Args::Nothing, EditAction::End);

/// Inside an entry of a table (`edit "ems1"`).
pub(super) const ENTRY_VERBS: &[Verb<EditAction>] =
    &[SET, UNSET, EDIT_GET, EDIT_SHOW, NEXT, EDIT_ABORT, EDIT_END];

/// Inside a single object (`config system settings`): an entry's verbs without `next`.
pub(super) const OBJECT_VERBS: &[Verb<EditAction>] = &[SET, UNSET, EDIT_GET, EDIT_SHOW, EDIT_ABORT, EDIT_END];

/// `config <table>` inside an object that holds nested tables.
const NESTED_CONFIG: Verb<EditAction> = verb(
    "config",
    "Configure object.",
    Args::NestedTable,
    EditAction::Config,
);

/// Inside a single object that holds nested tables (`config system csf`, which holds
/// `config trusted-list`): the object's verbs and `config`.
pub(super) const PARENT_OBJECT_VERBS: &[Verb<EditAction>] = &[
    SET,
    UNSET,
    NESTED_CONFIG,
    EDIT_GET,
    EDIT_SHOW,
    EDIT_ABORT,
    EDIT_END,
];

/// The verbs for editing an entry or object of `table`.
pub(super) fn edit_verbs(table: &TableSchema) -> &'static [Verb<EditAction>] {
    match table.kind {
        TableKind::Table { .. } => ENTRY_VERBS,
        TableKind::Object if NESTED_TABLES.iter().any(|n| n.parent == table.path) => PARENT_OBJECT_VERBS,
        TableKind::Object => OBJECT_VERBS,
    }
}

/// The words `config` takes inside an object of `parent`: its nested tables' last path
/// words (`trusted-list`), with their descriptions.
pub(super) fn nested_paths(registry: &'static [TableSchema], parent: &TableSchema) -> Vec<Path> {
    children_of(registry, parent.path)
        .map(|table| (table.context_name(), table.help))
        .collect()
}

/// The nested table of `parent` that `words` name (`config trusted-list`).
pub(super) fn find_nested(
    registry: &'static [TableSchema],
    parent: &TableSchema,
    words: &[String],
) -> Result<&'static TableSchema, CliError> {
    let word = resolve_path(&nested_paths(registry, parent), words)?;
    children_of(registry, parent.path)
        .find(|table| table.context_name() == word)
        .ok_or_else(|| CliError::Parse(word.to_owned()))
}

/// The row of `verbs` for the typed `word`, listed or not.
pub(super) fn find_verb<'a, A>(verbs: &'a [Verb<A>], word: &str) -> Option<&'a Verb<A>> {
    verbs.iter().find(|verb| verb.word == word)
}

/// One `execute` or `diagnose` subcommand.
#[derive(Debug)]
pub(super) struct Subcommand {
    /// Its words after the verb (`fctems verify`).
    pub(super) path: &'static str,
    /// What `?` prints beside its last word.
    pub(super) help: &'static str,
    /// The table whose entry name follows it; `None` when nothing does.
    pub(super) entry_of: Option<&'static TableSchema>,
    /// What it does.
    pub(super) task: Task,
}

/// What an `execute` or `diagnose` subcommand does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Task {
    Verify,
    Unverify,
    IsVerified,
    GenerateKey,
    UpdateInfo,
    TestConnectivity,
    PendingList,
}

/// `execute` subcommands.
pub(super) const EXECUTE: &[Subcommand] = &[
    Subcommand {
        path: "fctems verify",
        help: "Verify the EMS server certificate.",
        entry_of: Some(&FCTEMS),
        task: Task::Verify,
    },
    Subcommand {
        path: "fctems unverify",
        help: "Forget the verified EMS server certificate.",
        entry_of: Some(&FCTEMS),
        task: Task::Unverify,
    },
    Subcommand {
        path: "fctems is-verified",
        help: "Whether the EMS server certificate is verified.",
        entry_of: Some(&FCTEMS),
        task: Task::IsVerified,
    },
    Subcommand {
        path: "api-user generate-key",
        help: "Generate key for API users.",
        entry_of: Some(&SYSTEM_API_USER),
        task: Task::GenerateKey,
    },
];

/// `diagnose` subcommands.
pub(super) const DIAGNOSE: &[Subcommand] = &[
    Subcommand {
        path: "sys csf authorization pending-list",
        help: "Security Fabric members waiting for authorization.",
        entry_of: None,
        task: Task::PendingList,
    },
    Subcommand {
        path: "test update info",
        help: "FortiCloud registration and contracts.",
        entry_of: None,
        task: Task::UpdateInfo,
    },
    Subcommand {
        path: "endpoint fctems test-connectivity",
        help: "Check the connection to an EMS now.",
        entry_of: Some(&FCTEMS),
        task: Task::TestConnectivity,
    },
];

/// A multi-word path and its `?` description.
pub(super) type Path = (&'static str, &'static str);

/// The paths `config` and `show` accept: every table of `registry` but those nested in
/// an object, which are reached from inside it.
pub(super) fn table_paths(registry: &'static [TableSchema]) -> Vec<Path> {
    registry
        .iter()
        .filter(|table| !is_nested(table.path))
        .map(|table| (table.path, table.help))
        .collect()
}

/// The paths `get` accepts: every table of `registry`, then `system status`.
pub(super) fn get_paths(registry: &'static [TableSchema]) -> Vec<Path> {
    let mut paths = table_paths(registry);
    paths.push((SYSTEM_STATUS, SYSTEM_STATUS_HELP));
    paths
}

/// The paths of `subcommands`.
pub(super) fn subcommand_paths(subcommands: &'static [Subcommand]) -> Vec<Path> {
    subcommands
        .iter()
        .map(|command| (command.path, command.help))
        .collect()
}

/// The table of `registry` that `words` name.
pub(super) fn find_table(
    registry: &'static [TableSchema],
    words: &[String],
) -> Result<&'static TableSchema, CliError> {
    let path = resolve_path(&table_paths(registry), words)?;
    registry
        .iter()
        .find(|table| table.path == path)
        .ok_or_else(|| CliError::Parse(path.to_owned()))
}

/// Matches `words` against multi-word `candidates`: the first word that no candidate
/// continues with is a parse error; a proper prefix of a candidate is incomplete.
pub(super) fn resolve_path(candidates: &[Path], words: &[String]) -> Result<&'static str, CliError> {
    check_prefix(candidates, words)?;
    candidates
        .iter()
        .map(|(path, _)| *path)
        .find(|path| path.split(' ').eq(words.iter().map(String::as_str)))
        .ok_or(CliError::Incomplete)
}

/// The subcommand `words` begin with, and the words after it; as [`resolve_path`] when
/// they name none.
pub(super) fn resolve_subcommand<'w>(
    subcommands: &'static [Subcommand],
    words: &'w [String],
) -> Result<(&'static Subcommand, &'w [String]), CliError> {
    for command in subcommands {
        let length = command.path.split(' ').count();
        if words.len() >= length && starts_with_words(command.path, &words[..length]) {
            return Ok((command, &words[length..]));
        }
    }
    check_prefix(&subcommand_paths(subcommands), words)?;
    Err(CliError::Incomplete)
}

/// Refuses the first of `words` that no candidate continues with.
pub(super) fn check_prefix(candidates: &[Path], words: &[String]) -> Result<(), CliError> {
    for (index, word) in words.iter().enumerate() {
        let continued = candidates
            .iter()
            .any(|(path, _)| starts_with_words(path, &words[..=index]));
        if !continued {
            return Err(CliError::Parse(word.clone()));
        }
    }
    Ok(())
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

/// Whether [`Args::ShowFlag`] arguments ask for the full configuration.
pub(super) fn full_flag(args: &[String]) -> Result<bool, CliError> {
    match args {
        [] => Ok(false),
        [flag] if flag == FULL_CONFIGURATION => Ok(true),
        [flag, extra, ..] if flag == FULL_CONFIGURATION => Err(CliError::Parse(extra.clone())),
        [other, ..] => Err(CliError::Parse(other.clone())),
    }
}

/// Refuses any argument.
pub(super) fn no_args(args: &[String]) -> Result<(), CliError> {
    match args.first() {
        None => Ok(()),
        Some(extra) => Err(CliError::Parse(extra.clone())),
    }
}

/// Exactly one argument.
pub(super) fn one_arg(args: &[String]) -> Result<&str, CliError> {
    match args {
        [] => Err(CliError::Incomplete),
        [only] => Ok(only),
        [_, extra, ..] => Err(CliError::Parse(extra.clone())),
    }
}
