//! What `?` prints and what Tab completes.
//!
//! Both start from the same list of suggestions for the word under the cursor, read from
//! the verb tables of [`super::grammar`]: the verbs a context lists, then, after a verb,
//! what its [`Args`] admit (table path words, field names, option values, entry names and
//! subcommand words, filtered by what was typed), plus placeholders such as `<integer>`
//! and `<Enter>`. [`help_text`] prints them in FortiOS's two columns; [`completions`]
//! returns the literal words.

use crate::config::ConfigDb;
use crate::config::schema::{Choice, ENABLE_DISABLE, FieldKind, FieldSpec, TableSchema};

use super::context::{Context, Pending};
use super::error::CliError;
use super::format::quote;
use super::grammar::{
    Args, FULL_CONFIGURATION, FULL_CONFIGURATION_HELP, Path, Subcommand, TABLE_VERBS, TOP_VERBS, Verb,
    check_prefix, edit_verbs, find_verb, full_flag, get_paths, nested_paths, no_args, one_arg,
    resolve_subcommand, split_full, starts_with_words, subcommand_paths, table_paths,
};
use super::tokenize::split_partial;

/// Help prints names and descriptions with at least this many spaces between the columns.
const COLUMN_GAP: usize = 4;

const ENTER: &str = "<Enter>";

/// Where help is asked: the session's place and the configuration it sees.
pub(super) struct Place<'a> {
    pub(super) registry: &'static [TableSchema],
    pub(super) context: &'a Context,
    pub(super) db: &'a ConfigDb,
}

/// What FortiOS prints when `?` is typed after `partial`: the possible next words with
/// their descriptions, or the parse error of an earlier word.
pub(super) fn help_text(place: &Place<'_>, partial: &str) -> String {
    let lines = match suggestions(place, partial) {
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

/// Candidates for the last word of `partial`, quoted where they contain spaces or quotes.
pub(super) fn completions(place: &Place<'_>, partial: &str) -> Vec<String> {
    suggestions(place, partial)
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

type Suggestions = Result<Vec<Suggestion>, CliError>;

fn suggestions(place: &Place<'_>, partial: &str) -> Suggestions {
    let partial = split_partial(partial);
    let words: Vec<String> = partial.words.iter().map(|word| word.text.clone()).collect();
    let pipe = partial
        .words
        .iter()
        .position(|word| word.text == "|" && !word.quoted);
    let mut items = match (pipe, place.context) {
        (Some(index), _) => pipe_suggestions(&words[index + 1..])?,
        (None, Context::Top) => verb_suggestions(TOP_VERBS, place, &words)?,
        (None, Context::Table(_)) => verb_suggestions(TABLE_VERBS, place, &words)?,
        (None, Context::Edit(pending)) => verb_suggestions(edit_verbs(pending.table), place, &words)?,
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

/// The listed verbs of `verbs`, or what may follow the verb `words` start with.
fn verb_suggestions<A>(verbs: &[Verb<A>], place: &Place<'_>, words: &[String]) -> Suggestions {
    let Some((word, args)) = words.split_first() else {
        return Ok(verbs
            .iter()
            .filter(|verb| verb.listed)
            .map(|verb| Suggestion::literal(verb.word, verb.help))
            .collect());
    };
    let verb = find_verb(verbs, word).ok_or_else(|| CliError::Parse(word.clone()))?;
    args_suggestions(verb.args, place, args)
}

fn args_suggestions(shape: Args, place: &Place<'_>, args: &[String]) -> Suggestions {
    match shape {
        Args::Nothing => enter_only(args),
        Args::TablePath => path_then_enter(&table_paths(place.registry), args),
        Args::GetPath => path_then_enter(&get_paths(place.registry), args),
        Args::ShowPath => show_path_suggestions(&table_paths(place.registry), args),
        Args::ShowFlag => {
            let mut items = Vec::new();
            if !full_flag(args)? {
                items.push(Suggestion::literal(FULL_CONFIGURATION, FULL_CONFIGURATION_HELP));
            }
            items.push(Suggestion::enter());
            Ok(items)
        }
        Args::EntryKey => match place.context {
            Context::Table(table) => key_suggestions(table, place.db, args),
            _ => unreachable!("only table verbs take an entry key"),
        },
        Args::Field | Args::FieldValue => match place.context {
            Context::Edit(pending) => field_suggestions(pending, matches!(shape, Args::FieldValue), args),
            _ => unreachable!("only edit verbs take a field"),
        },
        Args::NestedTable => match place.context {
            Context::Edit(pending) => path_then_enter(&nested_paths(place.registry, pending.table), args),
            _ => unreachable!("only an object's edit verbs enter a nested table"),
        },
        Args::Subcommands(subcommands) => subcommand_suggestions(subcommands, place.db, args),
    }
}

/// The next path words after `typed`, then `<Enter>` once `typed` names a whole path.
fn path_then_enter(candidates: &[Path], typed: &[String]) -> Suggestions {
    let (mut items, complete) = path_suggestions(candidates, typed)?;
    if complete {
        items.push(Suggestion::enter());
    }
    Ok(items)
}

/// `show` at the top level: `full-configuration` unless given, the path words, `<Enter>`.
fn show_path_suggestions(candidates: &[Path], args: &[String]) -> Suggestions {
    let (full, path) = split_full(args);
    let (mut items, complete) = path_suggestions(candidates, path)?;
    let mut result = Vec::new();
    if !full && (path.is_empty() || complete) {
        result.push(Suggestion::literal(FULL_CONFIGURATION, FULL_CONFIGURATION_HELP));
    }
    result.append(&mut items);
    if path.is_empty() || complete {
        result.push(Suggestion::enter());
    }
    Ok(result)
}

/// The next path words after `typed`, and whether `typed` already names a whole path.
fn path_suggestions(candidates: &[Path], typed: &[String]) -> Result<(Vec<Suggestion>, bool), CliError> {
    check_prefix(candidates, typed)?;
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

/// The subcommand words after `execute` or `diagnose`, then what the subcommand takes.
fn subcommand_suggestions(subcommands: &'static [Subcommand], db: &ConfigDb, args: &[String]) -> Suggestions {
    match resolve_subcommand(subcommands, args) {
        Ok((command, rest)) => match command.entry_of {
            // The subcommand names the table; the firmware decides its key.
            Some(table) => key_suggestions(
                crate::config::schema_for(db.firmware(), table.path).unwrap_or(table),
                db,
                rest,
            ),
            None => enter_only(rest),
        },
        Err(CliError::Incomplete) => Ok(path_suggestions(&subcommand_paths(subcommands), args)?.0),
        Err(error) => Err(error),
    }
}

/// What may follow a verb taking an entry key of `table`: the key placeholder and the
/// stored entries, then `<Enter>`.
fn key_suggestions(table: &TableSchema, db: &ConfigDb, args: &[String]) -> Suggestions {
    if !args.is_empty() {
        return one_arg(args).map(|_| vec![Suggestion::enter()]);
    }
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

/// What may follow `set` (`with_value`) or `unset`: the visible fields, then the value.
fn field_suggestions(pending: &Pending, with_value: bool, args: &[String]) -> Suggestions {
    let Some((name, values)) = args.split_first() else {
        return Ok(pending
            .visible_fields()
            .map(|field| Suggestion::literal(field.name, field.help))
            .collect());
    };
    let field = pending.settable(name)?;
    if with_value {
        value_suggestions(field, values)
    } else {
        enter_only(values)
    }
}

/// What may follow `set <field>` when `given` words were typed already.
fn value_suggestions(field: &FieldSpec, given: &[String]) -> Suggestions {
    let choices = |list: &[Choice]| {
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
    if !given.is_empty() {
        return one_arg(given).map(|_| vec![Suggestion::enter()]);
    }
    let string = |max: usize| format!("Please input string value (max {max} chars).");
    Ok(match field.kind {
        FieldKind::EnableDisable => choices(ENABLE_DISABLE),
        FieldKind::Option(list) | FieldKind::Set(list) => choices(list),
        FieldKind::Integer { min, max } => vec![Suggestion::placeholder(
            "<integer>",
            format!("Please input integer value ({min} - {max})."),
        )],
        FieldKind::String { max } | FieldKind::Pem { max } => {
            vec![Suggestion::placeholder("<string>", string(max))]
        }
        FieldKind::Secret { max } => vec![Suggestion::placeholder(
            "<passwd>",
            format!("Please input admin password (max {max} chars)."),
        )],
        FieldKind::Ipv4 => vec![Suggestion::placeholder(
            "<ipv4-address>",
            "Please input IPv4 address.".to_owned(),
        )],
        FieldKind::Ipv4OrFqdn { max } => vec![Suggestion::placeholder(
            "<string>",
            format!("Please input IPv4 address or FQDN (max {max} chars)."),
        )],
    })
}

fn pipe_suggestions(after: &[String]) -> Suggestions {
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

fn enter_only(args: &[String]) -> Suggestions {
    no_args(args).map(|()| vec![Suggestion::enter()])
}

#[cfg(test)]
mod tests {
    use crate::cli::Session;
    use crate::cli::grammar::{ENTRY_VERBS, TABLE_VERBS, TOP_VERBS};
    use crate::cli::test_backend::MemoryBackend;
    use crate::cli::tokenize::help_request;

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
            ["admin", "api-user", "console", "csf", "settings", "status"]
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
        for command in TOP_VERBS.iter().map(|verb| verb.word) {
            let mut session = Session::new();
            let reply = session.execute(&backend, command).await;
            assert!(!reply.output.starts_with("Unknown action"), "{command}");
        }
        for command in TABLE_VERBS.iter().map(|verb| verb.word) {
            let mut session = session_in(&backend, &["config endpoint-control fctems"]).await;
            let reply = session.execute(&backend, command).await;
            assert!(
                !reply.output.contains(&format!("before '{command}'")),
                "{command}"
            );
        }
        for command in ENTRY_VERBS.iter().map(|verb| verb.word) {
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
                .execute(&backend, "set tenant-id \"why?\"")
                .await
                .output
                .is_empty()
        );
        assert_eq!(
            session.execute(&backend, "get").await.output.lines().nth(7),
            Some("tenant-id           : why?")
        );
    }

    #[tokio::test]
    async fn subcommands_come_from_the_grammar() {
        let backend = MemoryBackend::root();
        let session = session_in(
            &backend,
            &[
                "config endpoint-control fctems",
                "edit ems1",
                "set server 10.0.0.1",
                "end",
            ],
        )
        .await;
        assert_eq!(session.complete(&backend, "execute "), ["api-user", "fctems"]);
        assert_eq!(
            session.complete(&backend, "execute fctems "),
            ["is-verified", "unverify", "verify"]
        );
        assert_eq!(
            session.help(&backend, "execute fctems verify "),
            "<name>    FortiClient Enterprise Management Server (EMS) name.\nems1\n"
        );
        assert_eq!(session.help(&backend, "diagnose test update info "), "<Enter>\n");
        assert_eq!(
            session.help(&backend, "diagnose sys csf authorization "),
            "pending-list    Security Fabric members waiting for authorization.\n"
        );
        assert_eq!(session.help(&backend, "config system csf "), "<Enter>\n");
        assert_eq!(
            session.complete(&backend, "config system csf t"),
            Vec::<String>::new(),
            "the trusted-list is entered from inside system csf"
        );
        assert_eq!(
            session.help(&backend, "diagnose nonsense "),
            "command parse error before 'nonsense'\nCommand fail. Return code -61\n"
        );
    }

    #[test]
    fn pipe_help() {
        assert_eq!(help_request("show | grep ?"), Some("show | grep "));
        assert_eq!(help_request("set x \"a?\""), None);
        assert_eq!(help_request("set x \"a?"), None);
    }
}
