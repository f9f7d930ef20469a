//! `fabricsim exec NODE [LINE...]`: run CLI lines on a node, as a script would.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use super::{Error, FabricFiles};
use crate::rpc::client::AdminConnection;

pub(super) async fn exec(path: &Path, node: &str, lines: Vec<String>, yes: bool) -> Result<ExitCode, Error> {
    let files = FabricFiles::open(path)?;
    let addr = files.addr(node)?;
    let operator = files.operator()?;
    let read_stdin = |source| Error::Io {
        context: "cannot read from standard input".to_owned(),
        source,
    };
    let from_args = !lines.is_empty();
    let mut lines: Box<dyn Iterator<Item = std::io::Result<String>>> = if from_args {
        Box::new(lines.into_iter().map(Ok))
    } else {
        Box::new(std::io::stdin().lines())
    };
    let mut session = AdminConnection::connect(addr, &operator).await?.session().await?;
    let mut failed = false;
    let mut stdout = std::io::stdout();
    while let Some(line) = lines.next() {
        let mut reply = session.run(&line.map_err(read_stdin)?).await?;
        while reply.awaiting_answer {
            let _ = stdout.write_all(reply.output.as_bytes());
            let _ = stdout.flush();
            // The answer: `y` with --yes, else the script's next line, else (lines given as
            // arguments) a line typed on standard input. No answer at all declines.
            let answer = if yes {
                Some("y".to_owned())
            } else {
                match lines.next().transpose().map_err(read_stdin)? {
                    Some(line) => Some(line),
                    None if from_args => std::io::stdin().lines().next().transpose().map_err(read_stdin)?,
                    None => None,
                }
            };
            let answer = answer.unwrap_or_else(|| "n".to_owned());
            let _ = writeln!(stdout, "{answer}");
            reply = session.run(&answer).await?;
        }
        failed |= reply.failed;
        let _ = stdout.write_all(reply.output.as_bytes());
    }
    let _ = stdout.flush();
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
