//! One SSH session channel: the pty size, then a FortiOS CLI [`Session`] driven by what
//! the client types, its replies paged as `config system console` says.

use russh::ChannelMsg;
use russh::server::Msg;
use tokio_util::sync::CancellationToken;

use crate::cli::{Backend, Session};
use crate::config::schema::{CONSOLE_OUTPUT_MORE, SYSTEM_CONSOLE};
use crate::node::Node;

use super::terminal::{Key, LineEditor, Pager, crlf};

/// The terminal height assumed when the client asked for no pty.
const DEFAULT_HEIGHT: u32 = 25;

/// Whether the shell goes on after a line or a key.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    /// The administrator logged out: exit status 0, then the channel closes.
    Logout,
}

/// The state of one shell.
struct Shell {
    node: Node,
    session: Session,
    editor: LineEditor,
    pager: Option<Pager>,
    height: u32,
}

/// Serves `channel` until the client closes it, logs out, or `shutdown` fires.
pub(super) async fn run(node: Node, mut channel: russh::Channel<Msg>, shutdown: CancellationToken) {
    let mut shell = Shell {
        node,
        session: Session::new(),
        editor: LineEditor::default(),
        pager: None,
        height: DEFAULT_HEIGHT,
    };
    let mut started = false;
    loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => break,
            message = channel.wait() => message,
        };
        let Some(message) = message else { return };
        let out = match message {
            ChannelMsg::RequestPty { row_height, .. } | ChannelMsg::WindowChange { row_height, .. } => {
                if row_height > 0 {
                    shell.height = row_height;
                }
                continue;
            }
            ChannelMsg::RequestShell { .. } if !started => {
                started = true;
                // The prompt comes unasked: netmiko waits for it before typing anything.
                (shell.prompt(), Flow::Continue)
            }
            ChannelMsg::Data { data } if started => shell.typed(&data).await,
            ChannelMsg::Eof | ChannelMsg::Close => break,
            _ => continue,
        };
        let (text, flow) = out;
        if !text.is_empty() && channel.data(text.as_bytes()).await.is_err() {
            return;
        }
        if flow == Flow::Logout {
            let _ = channel.exit_status(0).await;
            break;
        }
    }
    let _ = channel.eof().await;
    let _ = channel.close().await;
}

impl Shell {
    fn prompt(&self) -> String {
        self.session.prompt(self.node.identity())
    }

    /// What the client's bytes print, and whether the shell goes on.
    async fn typed(&mut self, data: &[u8]) -> (String, Flow) {
        let mut out = String::new();
        for &byte in data {
            if self.editor.swallow_lf(byte) {
                continue;
            }
            if let Some(pager) = &mut self.pager {
                let paged = pager.key(byte);
                out.push_str(&paged.text);
                if paged.done {
                    self.pager = None;
                    out.push_str(&self.prompt());
                }
                continue;
            }
            match self.editor.key(byte) {
                Key::Echo(echo) => out.push_str(&String::from_utf8_lossy(&echo)),
                Key::EndOfInput => {
                    out.push_str("\r\n");
                    return (out, Flow::Logout);
                }
                Key::Enter(line) => {
                    out.push_str("\r\n");
                    if self.logs_out(&line) {
                        return (out, Flow::Logout);
                    }
                    out.push_str(&self.enter(&line).await);
                }
            }
        }
        (out, Flow::Continue)
    }

    /// `exit` or `logout` at the top level ends the login.
    fn logs_out(&self, line: &str) -> bool {
        let words: Vec<&str> = line.split_whitespace().collect();
        self.session.at_top() && matches!(words.as_slice(), ["exit"] | ["logout"])
    }

    /// Runs `line`; returns its output (a page of it when it is long) and the prompt.
    async fn enter(&mut self, line: &str) -> String {
        let reply = self.session.execute(&self.node, line).await;
        let mut output = reply.output;
        if reply.awaiting_answer {
            // The question waits on its own line for the answer: no line end after `(y/n)`.
            if output.ends_with('\n') {
                output.pop();
            }
            return crlf(&output);
        }
        let (pager, mut text) = if self.pages() {
            Pager::start(&output, self.height)
        } else {
            (None, crlf(&output))
        };
        self.pager = pager;
        if self.pager.is_none() {
            text.push_str(&self.prompt());
        }
        text
    }

    /// Whether `config system console` asks for `--More--` paging.
    fn pages(&self) -> bool {
        self.node.config().value(SYSTEM_CONSOLE.path, "", "output") == CONSOLE_OUTPUT_MORE
    }
}
