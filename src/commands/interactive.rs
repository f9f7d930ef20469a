//! `fabricsim cli NODE`: an interactive FortiOS CLI with line editing, history, tab
//! completion and `?` help, the way an SSH session to a FortiGate feels.
//!
//! The line editor is synchronous, so it runs on a blocking thread and reaches the node's
//! session (async gRPC) through the runtime handle. Completion and help are answered by
//! the node, which knows the context and the configuration.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{
    Cmd, ConditionalEventHandler, Editor, Event, EventContext, EventHandler, Helper, KeyCode, KeyEvent,
    Modifiers, RepeatCount,
};
use tokio::runtime::Handle;
use tokio::sync::Mutex;

use super::{Error, FabricFiles};
use crate::rpc::client::{AdminConnection, CliSession};

/// The editor's view of the node: completion asks the node's session.
struct NodeHelper {
    session: Arc<Mutex<CliSession>>,
    runtime: Handle,
}

impl Completer for NodeHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let before = &line[..pos];
        let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let candidates = self
            .runtime
            .block_on(async { self.session.lock().await.complete(before).await })
            .unwrap_or_default();
        let candidates = candidates.into_iter().map(|c| format!("{c} ")).collect();
        Ok((start, candidates))
    }
}

impl Hinter for NodeHelper {
    type Hint = String;
}
impl Highlighter for NodeHelper {}
impl Validator for NodeHelper {}
impl Helper for NodeHelper {}

/// `?` asks for help at once, as on a FortiGate: it ends the line without running it.
struct HelpKey {
    asked: Arc<AtomicBool>,
}

impl ConditionalEventHandler for HelpKey {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, _: &EventContext) -> Option<Cmd> {
        self.asked.store(true, Ordering::SeqCst);
        Some(Cmd::AcceptLine)
    }
}

pub(super) async fn cli(path: &Path, node: &str) -> Result<ExitCode, Error> {
    let files = FabricFiles::open(path)?;
    let addr = files.addr(node)?;
    let operator = files.operator()?;
    let session = AdminConnection::connect(addr, &operator).await?.session().await?;
    let session = Arc::new(Mutex::new(session));
    let runtime = Handle::current();
    let history = files.state.path().join(format!("{node}.history"));
    tokio::task::spawn_blocking(move || edit_loop(session, runtime, &history))
        .await
        .map_err(|e| Error::Io {
            context: "the CLI stopped".to_owned(),
            source: std::io::Error::other(e.to_string()),
        })?
}

fn edit_loop(session: Arc<Mutex<CliSession>>, runtime: Handle, history: &Path) -> Result<ExitCode, Error> {
    let io_error = |e: ReadlineError| Error::Io {
        context: "terminal".to_owned(),
        source: std::io::Error::other(e.to_string()),
    };
    let mut editor: Editor<NodeHelper, rustyline::history::DefaultHistory> =
        Editor::new().map_err(io_error)?;
    editor.set_helper(Some(NodeHelper {
        session: session.clone(),
        runtime: runtime.clone(),
    }));
    let asked = Arc::new(AtomicBool::new(false));
    editor.bind_sequence(
        KeyEvent(KeyCode::Char('?'), Modifiers::NONE),
        EventHandler::Conditional(Box::new(HelpKey { asked: asked.clone() })),
    );
    let _ = editor.load_history(history);
    let mut initial = String::new();
    loop {
        let prompt = runtime.block_on(async { session.lock().await.prompt().to_owned() });
        let line = match editor.readline_with_initial(&prompt, (&initial, "")) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                initial.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(io_error(e)),
        };
        initial.clear();
        if asked.swap(false, Ordering::SeqCst) {
            let help = runtime.block_on(async { session.lock().await.help(&line).await })?;
            print!("{help}");
            initial = line;
            continue;
        }
        let top_level = !prompt.contains('(');
        if top_level && matches!(line.trim(), "exit" | "quit" | "logout") {
            break;
        }
        if !line.trim().is_empty() {
            let _ = editor.add_history_entry(line.as_str());
        }
        let reply = runtime.block_on(async { session.lock().await.run(&line).await })?;
        print!("{}", reply.output);
    }
    let _ = editor.save_history(history);
    Ok(ExitCode::SUCCESS)
}
