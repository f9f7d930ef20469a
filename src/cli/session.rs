//! One CLI session: where the administrator is, and how one line becomes a [`Reply`].
//!
//! A line first answers an open question (`execute fctems verify` asks one), or, ending in
//! an unquoted `?`, asks for help; otherwise the tokenizer splits it into words and
//! `| grep` filters. The first word is looked up in the verb table of the current context
//! ([`super::grammar`]) and its action runs in [`super::dispatch`]; the output lines pass
//! the filters and leave as a [`Reply`]. A command that moves the session replaces the
//! context; a failed one keeps it.

use crate::config::ConfigDb;
use crate::config::schema::TableSchema;

use super::backend::{Backend, NodeIdentity};
use super::context::{Context, Pending};
use super::dispatch::{self, Done, Next};
use super::error::CliError;
use super::execute::{self, Question};
use super::grammar::{TABLE_VERBS, TOP_VERBS, edit_verbs, find_verb};
use super::help::{self, Place};
use super::tokenize::{help_request, parse_line};

/// A FortiOS CLI session: where the administrator is and what they are editing.
#[derive(Debug, Clone)]
pub struct Session {
    /// The schemas to use; `None` follows the node's configuration, whose firmware picks
    /// them (the fctems shape).
    registry: Option<&'static [TableSchema]>,
    context: Context,
    /// The objects whose nested tables the session is in, outermost first: `config
    /// system csf` then `config trusted-list` keeps the csf object here, pending values
    /// and all, until `end` leaves the trusted-list.
    parents: Vec<Pending>,
    /// A question (`(y/n)`) the next line answers.
    question: Option<Question>,
}

/// What one command line printed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reply {
    /// The complete output, every line ending in `"\n"`; empty when nothing was printed.
    pub output: String,
    /// Whether the command failed (`fabricsim exec` exits 1 when any line failed).
    pub failed: bool,
    /// Whether the output ends in a question (`(y/n)`) that the next line answers.
    pub awaiting_answer: bool,
    /// The configuration revision the line's commit produced (`next` or `end` of a
    /// changed entry); `None` when it committed nothing.
    pub revision: Option<u64>,
}

impl Reply {
    /// The reply printing `lines`, each ended by a newline.
    fn lines(lines: &[String], failed: bool, awaiting_answer: bool) -> Self {
        Self {
            output: lines.iter().map(|line| format!("{line}\n")).collect(),
            failed,
            awaiting_answer,
            revision: None,
        }
    }
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

impl Session {
    /// A session at the top level over the schemas of the node's firmware.
    pub fn new() -> Self {
        Self {
            registry: None,
            context: Context::Top,
            parents: Vec::new(),
            question: None,
        }
    }

    /// A session at the top level over `registry` instead of the firmware's schemas.
    pub fn with_registry(registry: &'static [TableSchema]) -> Self {
        Self {
            registry: Some(registry),
            context: Context::Top,
            parents: Vec::new(),
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
        match self.context.prompt_name() {
            None => format!("{hostname} # "),
            Some(name) => format!("{hostname} ({name}) # "),
        }
    }

    /// Whether the session is at the top level with no question open: where `exit`
    /// ends an SSH login (`docs/fortios.md`, "SSH").
    pub fn at_top(&self) -> bool {
        matches!(self.context, Context::Top) && self.question.is_none()
    }

    /// Runs one command line and returns what FortiOS would print. A line ending in an
    /// unquoted `?` prints help for the text before it instead.
    pub async fn execute<B: Backend>(&mut self, backend: &B, line: &str) -> Reply {
        if let Some(question) = self.question.take() {
            return match execute::answer(backend, question, line).await {
                Ok(lines) => Reply::lines(&lines, false, false),
                Err(error) => Reply::lines(&error.lines(), true, false),
            };
        }
        if let Some(partial) = help_request(line) {
            return Reply {
                output: self.help(backend, partial),
                ..Reply::default()
            };
        }
        let (lines, failed, revision) = match parse_line(line) {
            Err(error) => (CliError::from(error).lines(), true, None),
            Ok(command) => match self.run(backend, &command.words).await {
                Ok((lines, revision)) => {
                    let kept: Vec<String> = lines
                        .into_iter()
                        .filter(|line| command.filters.iter().all(|grep| grep.keeps(line)))
                        .collect();
                    (kept, false, revision)
                }
                Err(error) => (error.lines(), true, None),
            },
        };
        Reply {
            revision,
            ..Reply::lines(&lines, failed, self.question.is_some())
        }
    }

    /// What FortiOS prints when `?` is typed after `partial`: the possible next words with
    /// their descriptions, or the parse error of an earlier word.
    pub fn help<B: Backend>(&self, backend: &B, partial: &str) -> String {
        help::help_text(&self.place(&backend.config()), partial)
    }

    /// Candidates for the last word of `partial` (commands, table path words, field names,
    /// option values, entry names), quoted where they contain spaces.
    pub fn complete<B: Backend>(&self, backend: &B, partial: &str) -> Vec<String> {
        help::completions(&self.place(&backend.config()), partial)
    }

    /// The schemas this session reads `db` with.
    fn registry(&self, db: &ConfigDb) -> &'static [TableSchema] {
        self.registry.unwrap_or_else(|| db.registry())
    }

    fn place<'a>(&'a self, db: &'a ConfigDb) -> Place<'a> {
        Place {
            registry: self.registry(db),
            context: &self.context,
            db,
        }
    }

    /// Looks the first of `words` up in the current context's verb table and runs it:
    /// what it printed, and the revision its commit produced.
    async fn run<B: Backend>(
        &mut self,
        backend: &B,
        words: &[String],
    ) -> Result<(Vec<String>, Option<u64>), CliError> {
        let Some((word, args)) = words.split_first() else {
            return Ok((Vec::new(), None));
        };
        let unknown = || CliError::Parse(word.clone());
        let registry = self.registry(&backend.config());
        let done: Done = match &mut self.context {
            Context::Top => {
                let verb = find_verb(TOP_VERBS, word).ok_or(CliError::UnknownAction)?;
                dispatch::at_top(registry, backend, verb, args).await?
            }
            Context::Table(table) => {
                let verb = find_verb(TABLE_VERBS, word).ok_or_else(unknown)?;
                dispatch::in_table(table, backend, verb.action, args).await?
            }
            Context::Edit(pending) => {
                let verb = find_verb(edit_verbs(pending.table), word).ok_or_else(unknown)?;
                dispatch::in_edit(registry, pending, backend, verb.action, args).await?
            }
        };
        match done.next {
            Next::Stay => {}
            Next::Goto(next) => self.context = next,
            Next::Leave => self.context = self.parents.pop().map_or(Context::Top, Context::Edit),
            Next::Descend(table) => {
                if let Context::Edit(parent) = std::mem::replace(&mut self.context, Context::Table(table)) {
                    self.parents.push(parent);
                }
            }
        }
        self.question = done.printed.question;
        Ok((done.printed.lines, done.revision))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::backend::CommitError;
    use crate::cli::test_backend::MemoryBackend;
    use crate::config::schema::{FCTEMS, TableKind};
    use crate::config::{ConfigCommand, ConfigDb, FieldKind, FieldSpec};
    use crate::connector::CertificateOffer;

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
    async fn a_nested_table_returns_to_its_object_with_the_pending_values() {
        let backend = MemoryBackend::root();
        let identity = backend.identity().clone();
        let mut session = Session::new();
        run_all(
            &mut session,
            &backend,
            &["config system csf", "set status enable"],
        )
        .await;
        run_all(&mut session, &backend, &["config trusted-list"]).await;
        assert_eq!(session.prompt(&identity), "FGT-root (trusted-list) # ");
        run_all(&mut session, &backend, &["edit FGVM01TM22000002"]).await;
        assert_eq!(session.prompt(&identity), "FGT-root (FGVM01TM22000002) # ");
        run_all(&mut session, &backend, &["set serial FGVM01TM22000002", "end"]).await;
        assert_eq!(
            session.prompt(&identity),
            "FGT-root (csf) # ",
            "end leaves the nested table"
        );
        let trusted = crate::config::schema::TRUSTED_LIST.path;
        assert_eq!(
            backend.config().value(trusted, "FGVM01TM22000002", "serial"),
            "FGVM01TM22000002",
            "the entry committed on its own end"
        );
        assert_eq!(backend.config().value("system csf", "", "status"), "disable");
        run_all(&mut session, &backend, &["config trusted-list", "abort"]).await;
        assert_eq!(session.prompt(&identity), "FGT-root (csf) # ");
        let reply = run(&mut session, &backend, "get").await;
        assert!(
            reply.output.starts_with("status              : enable\n"),
            "{}",
            reply.output
        );
        let reply = run(&mut session, &backend, "config fctems").await;
        assert_eq!(
            reply.output,
            "command parse error before 'fctems'\nCommand fail. Return code -61\n"
        );
        run_all(&mut session, &backend, &["end"]).await;
        assert!(session.at_top());
        assert_eq!(backend.config().value("system csf", "", "status"), "enable");
        let reply = run(&mut session, &backend, "config system settings").await;
        assert!(!reply.failed);
        let reply = run(&mut session, &backend, "config trusted-list").await;
        assert!(reply.failed, "only system csf holds the trusted-list");
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
    async fn a_certificate_that_names_no_remote_certificate_is_refused_at_set() {
        let backend = MemoryBackend::root();
        let mut session = Session::new();
        run_all(
            &mut session,
            &backend,
            &[
                "config endpoint-control fctems",
                "edit ems1",
                "set server 10.0.0.1",
                "next",
            ],
        )
        .await;
        let (revision, hash) = (backend.config().revision(), backend.config().hash());
        run_all(&mut session, &backend, &["edit ems1"]).await;
        let reply = run(&mut session, &backend, "set certificate nonexist").await;
        assert!(reply.failed);
        assert_eq!(
            reply.output,
            "entry not found in datasource\nvalue parse error before 'nonexist'\nCommand fail. Return code -3\n"
        );
        run_all(&mut session, &backend, &["set certificate ''", "end"]).await;
        assert_eq!(
            (backend.config().revision(), backend.config().hash()),
            (revision, hash)
        );
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
            "config endpoint-control fctems\nend\nconfig system csf\nend\nconfig system settings\nend\nconfig vpn certificate remote\nend\nconfig system admin\nend\nconfig system api-user\nend\nconfig system console\nend\n"
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

        async fn fetch_certificate(&self, entry: &str) -> Result<CertificateOffer, String> {
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
