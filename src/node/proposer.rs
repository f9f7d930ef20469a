//! Group commit of the root's writes: writes that arrive together share one log entry.
//!
//! Every change the root commits ([`Node::propose`]: a CLI `next` or `end`, a REST write,
//! an accepted certificate) is queued here. One task takes what is queued, everything
//! that arrived while the previous entry was in flight up to [`MAX_GROUP`] commands, and
//! writes it as one log entry: a lone command as itself, several as a
//! [`Proposal::Group`], whose commands apply one after another, each standing or falling
//! alone with its own revision. N writers then cost one entry, one log sync per node and
//! one AppendEntries per follower instead of N, and a write waits at most for the entry
//! in flight before its own. A write is still answered only once its entry is committed
//! (on a quorum of voters' disks) and applied.

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::Node;
use crate::cli::CommitError;
use crate::config::{Applied, ConfigCommand};
use crate::raft::Proposal;

/// The most commands one entry carries (ours): enough for every client of a busy fabric,
/// while an entry stays a few tens of kilobytes.
const MAX_GROUP: usize = 256;
/// Writes that may wait in the queue; a writer past this waits for room.
const QUEUE_DEPTH: usize = 4096;

/// One write waiting for its entry, and where its result goes.
pub(super) struct Queued {
    command: ConfigCommand,
    reply: oneshot::Sender<Result<Applied, CommitError>>,
}

/// The writers' end of the queue.
pub(super) type Queue = mpsc::Sender<Queued>;

/// A new queue: the writers' end and the proposer's.
pub(super) fn queue() -> (Queue, mpsc::Receiver<Queued>) {
    mpsc::channel(QUEUE_DEPTH)
}

/// Queues `command` and waits for what its entry did with it.
pub(super) async fn propose(queue: &Queue, command: ConfigCommand) -> Result<Applied, CommitError> {
    let stopping =
        || CommitError::Unavailable("the fabric root is stopping; the change is not applied".to_owned());
    let (reply, result) = oneshot::channel();
    queue
        .send(Queued { command, reply })
        .await
        .map_err(|_| stopping())?;
    result.await.unwrap_or_else(|_| Err(stopping()))
}

/// Writes the queued commands of `node`, a group per entry, until `shutdown`.
pub(super) async fn run(node: Node, mut queued: mpsc::Receiver<Queued>, shutdown: CancellationToken) {
    loop {
        let first = tokio::select! {
            () = shutdown.cancelled() => return,
            first = queued.recv() => match first {
                Some(first) => first,
                None => return,
            },
        };
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queued.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let (commands, replies): (Vec<ConfigCommand>, Vec<_>) = group
            .into_iter()
            .map(|queued| (queued.command, queued.reply))
            .unzip();
        let proposal = match <[ConfigCommand; 1]>::try_from(commands) {
            Ok([command]) => Proposal::One(command),
            Err(commands) => Proposal::Group(commands),
        };
        let written = tokio::select! {
            () = shutdown.cancelled() => return,
            written = node.write_entry(proposal) => written,
        };
        match written {
            Ok(results) => {
                debug_assert_eq!(results.len(), replies.len(), "one result per command");
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result.map_err(CommitError::Refused));
                }
            }
            Err(error) => {
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
}
