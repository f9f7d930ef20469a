//! `fabricsim exec NODE [LINE...]`: run CLI lines on a node, as a script would.

use std::io::{BufRead as _, Write as _};
use std::path::Path;
use std::process::ExitCode;

use super::{Error, Fabric};
use crate::api::client::AdminConnection;

pub(super) async fn exec(path: &Path, node: &str, lines: Vec<String>) -> Result<ExitCode, Error> {
    let fabric = Fabric::open(path)?;
    let addr = fabric.addr(node)?;
    let token = fabric.state.token()?;
    let lines = if lines.is_empty() {
        std::io::stdin()
            .lock()
            .lines()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| Error::Io {
                context: "cannot read CLI lines from standard input".to_owned(),
                source,
            })?
    } else {
        lines
    };
    let mut session = AdminConnection::connect(addr, &token).await?.session().await?;
    let mut failed = false;
    let mut stdout = std::io::stdout().lock();
    for line in &lines {
        let reply = session.run(line).await?;
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
