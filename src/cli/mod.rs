//! The FortiOS command line of one node.
//!
//! # Contexts
//!
//! A [`Session`] is one administrator's terminal. It is always in one context, which the
//! prompt shows:
//!
//! - the top level, `FGT-root # `: `config`, `show`, `get`, `execute`, `diagnose`, `exit`;
//! - inside a keyed table, `FGT-root (fctems) # ` after `config endpoint-control fctems`:
//!   `edit`, `delete`, `purge`, `get`, `show`, `end`, `abort`;
//! - editing one entry, `FGT-root (ems1) # ` after `edit "ems1"`, or one object,
//!   `FGT-root (csf) # ` after `config system csf`: `set`, `unset`, `get`, `show`, `next`
//!   (entries only), `abort`, `end`; and `config` in an object that holds nested tables.
//!
//! A table nested in an object (`config trusted-list` inside `config system csf`) is a
//! context like any table; the object waits on the session's stack of parents, its
//! pending values kept, and `end` or `abort` in the nested table (or `end` in one of its
//! entries) returns to it, as FortiOS's nested `config` blocks end into their parent.
//!
//! Editing works on a private copy of the entry's values; nothing is written until `next`
//! or `end` (or at once for `delete` and `purge`, as on FortiOS), and a refused commit
//! leaves the session in the entry with its pending values.
//!
//! # The verb table
//!
//! `grammar` holds one table of verbs per context, and the `execute` and `diagnose`
//! subcommands: each row is the word, its `?` description, the shape of its arguments and
//! the action it runs. Running a line, `?` help and Tab completion all read these tables,
//! so a verb exists in a context exactly when its table lists it.
//!
//! # How a line flows
//!
//! 1. [`Session::execute`] takes the line. If a question is open (`execute fctems verify`
//!    asks `(y/n)`), the line is its answer. If it ends in an unquoted `?`, the text before
//!    it goes to help instead ([`Session::help`]; Tab is [`Session::complete`]).
//! 2. [`tokenize`] splits it into words and `| grep` filters.
//! 3. The session looks the first word up in its context's verb table; `dispatch` runs
//!    the verb's action against the [`Backend`], `execute` the `execute` and `diagnose`
//!    subcommands, `format` renders `show` and `get`.
//! 4. A change leaves as one [`ConfigCommand`](crate::config::ConfigCommand) per
//!    `next`/`end` of a changed entry, per `delete` and per `purge`, through
//!    [`Backend::commit`] (`commit`), which on the root proposes it to Raft and returns
//!    what `ConfigDb::apply` said.
//! 5. The output lines pass the filters and leave as a [`Reply`]: the exact text a
//!    FortiGate prints (`docs/fortios.md`) and whether the command failed. A failure is an
//!    `error::CliError`, rendered in one place.
//!
//! The CLI reads the node only through [`Backend`]: its identity, a snapshot of its
//! `ConfigDb`, and its clock ([`Backend::clock`]), so the same lines print the same text.
//! [`transcript`] replays terminal transcripts for golden tests.
//!
//! # Files
//!
//! `backend` (the seam to the node), `context` (the context stack and pending entry),
//! `error` (failures and their FortiOS text), `grammar` (the verb tables and word matching),
//! `session` (a line to a reply), `dispatch` (what each verb does), `commit` (permission
//! and commits), `execute` (`execute`/`diagnose` subcommands), `ems_cloud` (the EMS Cloud
//! prerequisites), `format` (`show`, `get`, `get system status`), `help` (`?` and Tab),
//! [`tokenize`] (words, quotes, `| grep`), [`transcript`] (golden transcripts). Each file
//! imports only files listed before it in this dependency order: `tokenize`, `backend`,
//! `error`, `context`, `grammar`, `format`, `ems_cloud`, `commit`, `execute`, `dispatch`,
//! `api`, `help`, `session`, `transcript`. `api` is the CLI's rules for programs: the REST
//! API edits entries through it, so both surfaces share one set of checks and texts.

pub mod api;
mod backend;
mod commit;
mod context;
mod dispatch;
mod ems_cloud;
mod error;
mod execute;
mod format;
mod grammar;
mod help;
mod session;
pub mod tokenize;
pub mod transcript;

#[cfg(test)]
mod props;
#[cfg(test)]
pub(crate) mod test_backend;

pub use backend::{Backend, CommitError, MODIFICATION_NOT_ALLOWED, NodeIdentity, PendingMember, may_modify};
pub use format::{FirmwareRelease, firmware_release};
pub use session::{Reply, Session};
