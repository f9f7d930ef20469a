//! What `?` prints and what Tab completes.
//!
//! Both start from the same list of suggestions for the word under the cursor: command
//! names, table path words, field names, option values and entry names (literal words,
//! filtered by what was typed), plus placeholders such as `<integer>` and `<Enter>`.
//! [`Session::help`] prints them in FortiOS's two columns; [`Session::complete`] returns
//! the literal words.

use crate::config::ConfigDb;
use crate::config::schema::{ENABLE_DISABLE, FieldKind, FieldSpec, TableKind, TableSchema};

use super::Backend;
use super::format::quote;
use super::session::{
    CliError, Context, FULL_CONFIGURATION, Pending, SYSTEM_STATUS, Session, split_full, starts_with_words,
};
use super::tokenize::split_partial;

/// Commands at the top level, in the order FortiOS lists them.
pub(super) const TOP_COMMANDS: &[(&str, &str)] = &[
    ("config", "Configure object."),
    ("get", "Get dynamic and system information."),
    ("show", "Show configuration."),
    ("execute", "Execute static commands."),
    ("diagnose", "Diagnose facility."),
    ("exit", "Exit the CLI."),
];

/// Commands inside a table.
pub(super) const TABLE_COMMANDS: &[(&str, &str)] = &[
    ("edit", "Add/edit table value."),
    ("delete", "Delete table value."),
    ("purge", "Clear all table value."),
    ("get", "Get dynamic and system information."),
    ("show", "Show configuration."),
    ("end", "End and save last config."),
    ("abort", "End and discard last config."),
];

/// Commands inside a table entry.
pub(super) const ENTRY_COMMANDS: &[(&str, &str)] = &[
    ("set", "Modify value."),
    ("unset", "Set to default value."),
    ("get", "Get dynamic and system information."),
    ("show", "Show configuration."),
    ("next", "Configure next table entry."),
    ("abort", "End and discard last config."),
    ("end", "End and save last config."),
];

/// Commands inside a single object: an entry's commands without `next`.
pub(super) const OBJECT_COMMANDS: &[(&str, &str)] = &[
    ("set", "Modify value."),
    ("unset", "Set to default value."),
    ("get", "Get dynamic and system information."),
    ("show", "Show configuration."),
    ("abort", "End and discard last config."),
    ("end", "End and save last config."),
];

/// Help prints names and descriptions with at least this many spaces between the columns.
const COLUMN_GAP: usize = 4;

const ENTER: &str = "<Enter>";

/// One line of help.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Suggestion {
    word: String,
    help: String,
    kind: SuggestionKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SuggestionKind {
    /// A word that can be typed (and completed).
    Literal,
    /// A description of what to type, such as `<integer>`.
    Placeholder,
    /// The command is complete here.
    Enter,
}

impl Suggestion {
    fn literal(word: impl Into<String>, help: impl Into<String>) -> Self {
        Self {
            word: word.into(),
            help: help.into(),
            kind: SuggestionKind::Literal,
        }
    }

    fn placeholder(word: &str, help: String) -> Self {
        Self {
            word: word.to_owned(),
            help,
            kind: SuggestionKind::Placeholder,
        }
    }

    fn enter() -> Self {
        Self {
            word: ENTER.to_owned(),
            help: String::new(),
            kind: SuggestionKind::Enter,
        }
    }
}

fn commands(list: &[(&str, &str)]) -> Vec<Suggestion> {
    list.iter()
        .map(|(word, help)| Suggestion::literal(*word, *help))
        .collect()
}

/// The text before a trailing `?` when `line` asks for help rather than running a command;
/// a `?` inside quotes or after a backslash is part of a value.
pub(super) fn help_request(line: &str) -> Option<&str> {
    let partial = line.trim_end().strip_suffix('?')?;
    (!split_partial(partial).open).then_some(partial)
}

impl Session {
    /// What FortiOS prints when `?` is typed after `partial`: the possible next words with
    /// their descriptions, or the parse error of an earlier word.
    pub fn help<B: Backend>(&self, backend: &B, partial: &str) -> String {
        let lines = match self.suggestions(backend, partial) {
            Err(error) => error.lines(),
            Ok(items) => {
                let width = items.iter().map(|item| item.word.len()).max().unwrap_or(0) + COLUMN_GAP;
                items
                    .iter()
                    .map(|item| {
                        format!("{:<width$}{}", item.word, item.help)
                            .trim_end()
                            .to_owned()
                    })
                    .collect()
            }
        };
        lines.iter().map(|line| format!("{line}\n")).collect()
    }

    /// Candidates for the last word of `partial` (commands, table path words, field names,
    /// option values, entry names), quoted where they contain spaces.
    pub fn complete<B: Backend>(&self, backend: &B, partial: &str) -> Vec<String> {
        self.suggestions(backend, partial)
            .unwrap_or_default()
            .into_iter()
            .filter(|item| item.kind == SuggestionKind::Literal)
            .map(|item| {
                if item.word.contains(char::is_whitespace) || item.word.contains(['"', '\'']) {
                    quote(&item.word)
                } else {
                    item.word
                }
            })
            .collect()
    }

    fn suggestions<B: Backend>(&self, backend: &B, partial: &str) -> Result<Vec<Suggestion>, CliError> {
        let partial = split_partial(partial);
        let words: Vec<String> = partial.words.iter().map(|word| word.text.clone()).collect();
        let pipe = partial
            .words
            .iter()
            .position(|word| word.text == "|" && !word.quoted);
        let mut items = match pipe {
            Some(index) => pipe_suggestions(&words[index + 1..])?,
            None => {
                let db = backend.config();
                match &self.context {
                    Context::Top => top_suggestions(self.registry, &words)?,
                    Context::Table(table) => table_suggestions(table, &db, &words)?,
                    Context::Edit(pending) => edit_suggestions(pending, &words)?,
                }
            }
        };
        let current = partial.current;
        items.retain(|item| match item.kind {
            SuggestionKind::Literal => item.word.starts_with(&current),
            SuggestionKind::Placeholder => true,
            SuggestionKind::Enter => current.is_empty(),
        });
        if items.is_empty() && !current.is_empty() {
            return Err(CliError::Parse(current));
        }
        Ok(items)
    }
}

fn top_suggestions(registry: &[TableSchema], words: &[String]) -> Result<Vec<Suggestion>, CliError> {
    let Some((verb, args)) = words.split_first() else {
        return Ok(commands(TOP_COMMANDS));
    };
    let paths: Vec<(&str, &str)> = registry.iter().map(|table| (table.path, table.help)).collect();
    match verb.as_str() {
        "config" => {
            let (mut items, complete) = path_suggestions(&paths, args)?;
            if complete {
                items.push(Suggestion::enter());
            }
            Ok(items)
        }
        "show" => {
            let (full, path) = split_full(args);
            let (mut items, complete) = path_suggestions(&paths, path)?;
            let mut result = Vec::new();
            if !full && (path.is_empty() || complete) {
                result.push(Suggestion::literal(
                    FULL_CONFIGURATION,
                    "Show full configuration.",
                ));
            }
            result.append(&mut items);
            if path.is_empty() || complete {
                result.push(Suggestion::enter());
            }
            Ok(result)
        }
        "get" => {
            let mut candidates = paths;
            candidates.push((SYSTEM_STATUS, "System status."));
            let (mut items, complete) = path_suggestions(&candidates, args)?;
            if complete {
                items.push(Suggestion::enter());
            }
            Ok(items)
        }
        "exit" | "end" => enter_only(args),
        "execute" | "diagnose" => match args.first() {
            None => Ok(Vec::new()),
            Some(word) => Err(CliError::Parse(word.clone())),
        },
        _ => Err(CliError::Parse(verb.clone())),
    }
}

/// The next path words after `typed`, and whether `typed` already names a whole path.
fn path_suggestions(
    candidates: &[(&str, &str)],
    typed: &[String],
) -> Result<(Vec<Suggestion>, bool), CliError> {
    for (index, word) in typed.iter().enumerate() {
        if !candidates
            .iter()
            .any(|(path, _)| starts_with_words(path, &typed[..=index]))
        {
            return Err(CliError::Parse(word.clone()));
        }
    }
    let mut next = std::collections::BTreeMap::new();
    let mut complete = false;
    for (path, help) in candidates {
        if !starts_with_words(path, typed) {
            continue;
        }
        let words: Vec<&str> = path.split(' ').collect();
        match words.get(typed.len()) {
            None => complete = true,
            // The last word of a path carries the table's description; an inner word names
            // a group of tables and describes itself, as FortiOS does.
            Some(word) if typed.len() + 1 == words.len() => {
                next.insert(*word, *help);
            }
            Some(word) => {
                next.entry(*word).or_insert(*word);
            }
        }
    }
    let items = next
        .into_iter()
        .map(|(word, help)| Suggestion::literal(word, help))
        .collect();
    Ok((items, complete))
}

fn table_suggestions(
    table: &TableSchema,
    db: &ConfigDb,
    words: &[String],
) -> Result<Vec<Suggestion>, CliError> {
    let Some((verb, args)) = words.split_first() else {
        return Ok(commands(TABLE_COMMANDS));
    };
    match verb.as_str() {
        "edit" | "delete" => match args {
            [] => {
                let mut items = Vec::new();
                if let Some(key) = table.key_field() {
                    items.push(Suggestion::placeholder(
                        &format!("<{}>", key.name),
                        key.help.to_owned(),
                    ));
                }
                items.extend(
                    db.entries(table.path)
                        .map(|(key, _)| Suggestion::literal(key, "")),
                );
                Ok(items)
            }
            [_] => Ok(vec![Suggestion::enter()]),
            [_, extra, ..] => Err(CliError::Parse(extra.clone())),
        },
        "show" => show_suggestions(args),
        "purge" | "get" | "end" | "abort" => enter_only(args),
        _ => Err(CliError::Parse(verb.clone())),
    }
}

fn edit_suggestions(pending: &Pending, words: &[String]) -> Result<Vec<Suggestion>, CliError> {
    let is_table = matches!(pending.table.kind, TableKind::Table { .. });
    let Some((verb, args)) = words.split_first() else {
        return Ok(commands(if is_table { ENTRY_COMMANDS } else { OBJECT_COMMANDS }));
    };
    match verb.as_str() {
        "set" | "unset" => {
            let Some((name, values)) = args.split_first() else {
                return Ok(pending
                    .table
                    .value_fields()
                    .filter(|field| pending.table.is_visible(&pending.values, field))
                    .map(|field| Suggestion::literal(field.name, field.help))
                    .collect());
            };
            let field = pending.settable(name)?;
            if verb == "unset" {
                return enter_only(values);
            }
            value_suggestions(field, values)
        }
        "show" => show_suggestions(args),
        "next" if is_table => enter_only(args),
        "get" | "end" | "abort" => enter_only(args),
        _ => Err(CliError::Parse(verb.clone())),
    }
}

/// What may follow `set <field>` when `given` words were typed already.
fn value_suggestions(field: &FieldSpec, given: &[String]) -> Result<Vec<Suggestion>, CliError> {
    let choices = |list: &[crate::config::schema::Choice]| {
        list.iter()
            .map(|choice| Suggestion::literal(choice.name, choice.help))
            .collect::<Vec<_>>()
    };
    if let FieldKind::Set(members) = field.kind {
        let mut items: Vec<Suggestion> = choices(members)
            .into_iter()
            .filter(|item| !given.contains(&item.word))
            .collect();
        if !given.is_empty() {
            items.push(Suggestion::enter());
        }
        return Ok(items);
    }
    match given {
        [] => Ok(match field.kind {
            FieldKind::EnableDisable => choices(ENABLE_DISABLE),
            FieldKind::Option(list) | FieldKind::Set(list) => choices(list),
            FieldKind::Integer { min, max } => vec![Suggestion::placeholder(
                "<integer>",
                format!("Please input integer value ({min} - {max})."),
            )],
            FieldKind::String { max } => vec![Suggestion::placeholder(
                "<string>",
                format!("Please input string value (max {max} chars)."),
            )],
            FieldKind::Pem { max } => vec![Suggestion::placeholder(
                "<string>",
                format!("Please input string value (max {max} chars)."),
            )],
            FieldKind::Ipv4 => vec![Suggestion::placeholder(
                "<ipv4-address>",
                "Please input IPv4 address.".to_owned(),
            )],
            FieldKind::Ipv4OrFqdn { max } => vec![Suggestion::placeholder(
                "<string>",
                format!("Please input IPv4 address or FQDN (max {max} chars)."),
            )],
        }),
        [_] => Ok(vec![Suggestion::enter()]),
        [_, extra, ..] => Err(CliError::Parse(extra.clone())),
    }
}

fn show_suggestions(args: &[String]) -> Result<Vec<Suggestion>, CliError> {
    match args {
        [] => Ok(vec![
            Suggestion::literal(FULL_CONFIGURATION, "Show full configuration."),
            Suggestion::enter(),
        ]),
        [flag] if flag == FULL_CONFIGURATION => Ok(vec![Suggestion::enter()]),
        [flag, extra, ..] if flag == FULL_CONFIGURATION => Err(CliError::Parse(extra.clone())),
        [other, ..] => Err(CliError::Parse(other.clone())),
    }
}

fn pipe_suggestions(after: &[String]) -> Result<Vec<Suggestion>, CliError> {
    match after {
        [] => Ok(vec![Suggestion::literal(
            "grep",
            "Print lines matching a pattern.",
        )]),
        [name, flags @ ..] if name == "grep" => {
            let mut items: Vec<Suggestion> = [
                ("-i", "Ignore case distinctions."),
                ("-v", "Select non-matching lines."),
            ]
            .into_iter()
            .filter(|(flag, _)| !flags.iter().any(|given| given == flag))
            .map(|(flag, help)| Suggestion::literal(flag, help))
            .collect();
            items.push(Suggestion::placeholder(
                "<pattern>",
                "Text to look for.".to_owned(),
            ));
            Ok(items)
        }
        [other, ..] => Err(CliError::Parse(other.clone())),
    }
}

fn enter_only(args: &[String]) -> Result<Vec<Suggestion>, CliError> {
    match args.first() {
        None => Ok(vec![Suggestion::enter()]),
        Some(extra) => Err(CliError::Parse(extra.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::test_backend::MemoryBackend;

    async fn session_in(backend: &MemoryBackend, lines: &[&str]) -> Session {
        let mut session = Session::new();
        for line in lines {
            let reply = session.execute(backend, line).await;
            assert!(!reply.failed, "{line}: {}", reply.output);
        }
        session
    }

    #[tokio::test]
    async fn top_level_help_matches_fortios() {
        let backend = MemoryBackend::root();
        let session = Session::new();
        assert_eq!(
            session.help(&backend, ""),
            "config      Configure object.\n\
             get         Get dynamic and system information.\n\
             show        Show configuration.\n\
             execute     Execute static commands.\n\
             diagnose    Diagnose facility.\n\
             exit        Exit the CLI.\n"
        );
        assert_eq!(session.help(&backend, "con"), "config    Configure object.\n");
        assert_eq!(
            session.help(&backend, "config "),
            "endpoint-control    endpoint-control\nsystem              system\nvpn                 vpn\n"
        );
        assert_eq!(
            session.help(&backend, "config endpoint-control "),
            "fctems    Configure FortiClient Enterprise Management Server (EMS) entries.\n"
        );
        assert_eq!(
            session.help(&backend, "config endpoint-control fctems "),
            "<Enter>\n"
        );
        assert_eq!(
            session.help(&backend, "config nonsense "),
            "command parse error before 'nonsense'\nCommand fail. Return code -61\n"
        );
    }

    #[tokio::test]
    async fn value_help_describes_the_type() {
        let backend = MemoryBackend::root();
        let session = session_in(&backend, &["config endpoint-control fctems", "edit ems1"]).await;
        assert_eq!(
            session.help(&backend, "set https-port "),
            "<integer>    Please input integer value (1 - 65535).\n"
        );
        assert_eq!(
            session.help(&backend, "set pull-tags "),
            "enable     Enable setting.\ndisable    Disable setting.\n"
        );
        assert_eq!(session.help(&backend, "set server 10.0.0.1 "), "<Enter>\n");
        let fields = session.help(&backend, "set ");
        assert!(
            fields.starts_with("server                              FortiClient EMS FQDN or IPv4 address.\n")
        );
        assert!(!fields.contains("\ninterface "));
        assert!(!fields.contains("\nname "));
    }

    #[tokio::test]
    async fn completion_offers_the_words_that_fit() {
        let backend = MemoryBackend::root();
        let top = Session::new();
        assert_eq!(top.complete(&backend, "c"), ["config"]);
        assert_eq!(top.complete(&backend, "config end"), ["endpoint-control"]);
        assert_eq!(top.complete(&backend, "config endpoint-control "), ["fctems"]);
        assert_eq!(
            top.complete(&backend, "show "),
            ["full-configuration", "endpoint-control", "system", "vpn"]
        );
        assert_eq!(top.complete(&backend, "get sys"), ["system"]);
        assert_eq!(
            top.complete(&backend, "get system "),
            ["csf", "settings", "status"]
        );
        assert!(top.complete(&backend, "nonsense ").is_empty());

        let mut session = session_in(
            &backend,
            &[
                "config endpoint-control fctems",
                "edit \"my ems\"",
                "set server 10.0.0.1",
                "next",
                "edit ems1",
            ],
        )
        .await;
        assert_eq!(session.complete(&backend, "set pull-t"), ["pull-tags"]);
        assert_eq!(
            session.complete(&backend, "set pull-tags "),
            ["enable", "disable"]
        );
        assert_eq!(
            session.complete(&backend, "set interface-select-method s"),
            ["sdwan", "specify"]
        );
        assert!(session.complete(&backend, "set https-port ").is_empty());
        assert_eq!(
            session.complete(&backend, "set capabilities fabric-auth websocket-"),
            ["websocket-malware"]
        );
        assert!(
            session
                .complete(&backend, "set inter")
                .contains(&"interface-select-method".to_owned())
        );
        assert!(
            !session
                .complete(&backend, "set inter")
                .contains(&"interface".to_owned())
        );
        assert!(
            !session
                .execute(&backend, "set interface-select-method specify")
                .await
                .failed
        );
        assert!(
            session
                .complete(&backend, "set inter")
                .contains(&"interface".to_owned())
        );
        assert!(!session.execute(&backend, "abort").await.failed);
        assert_eq!(session.complete(&backend, "edit "), ["\"my ems\""]);
        assert_eq!(session.complete(&backend, "e"), ["edit", "end"]);
    }

    #[tokio::test]
    async fn every_listed_command_is_understood() {
        let backend = MemoryBackend::root();
        for (command, _) in TOP_COMMANDS {
            let mut session = Session::new();
            let reply = session.execute(&backend, command).await;
            assert!(!reply.output.starts_with("Unknown action"), "{command}");
        }
        for (command, _) in TABLE_COMMANDS {
            let mut session = session_in(&backend, &["config endpoint-control fctems"]).await;
            let reply = session.execute(&backend, command).await;
            assert!(
                !reply.output.contains(&format!("before '{command}'")),
                "{command}"
            );
        }
        for (command, _) in ENTRY_COMMANDS {
            let mut session = session_in(&backend, &["config endpoint-control fctems", "edit e"]).await;
            let reply = session.execute(&backend, command).await;
            assert!(
                !reply.output.contains(&format!("before '{command}'")),
                "{command}"
            );
        }
    }

    #[tokio::test]
    async fn question_mark_in_execute_prints_help() {
        let backend = MemoryBackend::root();
        let mut session = session_in(&backend, &["config endpoint-control fctems", "edit ems1"]).await;
        let reply = session.execute(&backend, "set pull-tags ?").await;
        assert!(!reply.failed);
        assert_eq!(
            reply.output,
            "enable     Enable setting.\ndisable    Disable setting.\n"
        );
        assert!(
            session
                .execute(&backend, "set certificate \"why?\"")
                .await
                .output
                .is_empty()
        );
        assert_eq!(
            session.execute(&backend, "get").await.output.lines().nth(4),
            Some("certificate         : why?")
        );
    }

    #[test]
    fn pipe_help() {
        assert_eq!(help_request("show | grep ?"), Some("show | grep "));
        assert_eq!(help_request("set x \"a?\""), None);
        assert_eq!(help_request("set x \"a?"), None);
    }
}
