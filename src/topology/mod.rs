//! The topology file: which FortiGates make up a fabric, where they listen, how the
//! fabric's Raft group is tuned, and the world around it: simulated FortiClient EMS
//! servers, the simulated FortiCloud account with its EMS Cloud server, the names the
//! nodes resolve, how often they check their EMS connectors and what the root runs on the
//! fabric's first start.
//!
//! This module owns the TOML format of `cluster-configs/*.toml` and its validation. Text
//! enters through [`Topology::load`] (a path) or [`Topology::parse`] (a string) and leaves
//! either as a [`Topology`], in which every default is filled in and every rule holds, or
//! as a [`TopologyError`] that lists *every* problem found, each with its line, column,
//! what is wrong and what to write instead. `fabricsim check` prints that error as it is.
//!
//! The file holds the tables `[fabric]` (required), `[raft]`, `[[node]]` (one per
//! FortiGate), `[[ems]]` (one per simulated EMS server), `[forticloud]` (with its
//! `[[forticloud.contract]]` entries), `[dns]`, `[checks]`, `[admin]`, `[[api_user]]` and
//! `[bootstrap]`;
//! `cluster-configs/default.toml` shows and explains most of them.
//!
//! A file becomes a [`Topology`] in three passes over one parse of the text, each problem
//! recorded with its line and column, what is wrong and what to write instead:
//!
//! 1. **Syntax.** toml's span-keeping document parser reads the text with error recovery,
//!    so several syntax errors are reported at once. Nothing else is checked until the
//!    syntax is right, because a broken document would only produce follow-up noise.
//! 2. **Shape** (`reader.rs`, against the schema of `file.rs`). Each table is walked against
//!    its `Section` and `Key`s: unknown keys are reported with the closest valid key, each
//!    known key is deserialized on its own so that every wrongly typed value is reported
//!    (serde alone stops at the first), and missing required keys and tables are named.
//!    The surviving keys fill the file-layer structs (`FabricTable`, `NodeTable`,
//!    `EmsTable`, ...), whose values keep their spans. `[dns]` is the one table whose keys
//!    are not a fixed set (they are the names it resolves), so `Reader::dns` walks it by
//!    hand; `[[forticloud.contract]]` is an array of tables inside `[forticloud]`, read from
//!    that table instead of the document.
//! 3. **Meaning.** Rules that span fields or tables, one file per section: `settings.rs`
//!    (`[fabric]`, `[raft]` timings in a workable order, `[checks]`, `[bootstrap]`),
//!    `nodes.rs` (exactly one root, unique names, serials, ids and addresses, every
//!    `upstream` chain ending at the root, `authorized = false` on members only), `ems.rs` (serials, hostnames, sites, authorized
//!    serials, capabilities, nothing shared with the nodes), `forticloud.rs` (the account,
//!    contracts that are dates, no `[[ems]]` taking EMS Cloud's name, serial or hostname)
//!    `accounts.rs` (`[admin]` and `[[api_user]]`: account names, password length,
//!    unique API users and keys) and `dns.rs` (every name of an EMS, of FortiCloud or of EMS Cloud pointing at that
//!    server). Rules for single values that several tables share (names, serials,
//!    hostnames, loopback addresses, lists of node serials, unique names and serials)
//!    live in `fields.rs`; every "given twice" rule goes through the one check of
//!    `seen.rs`. FortiCloud's and EMS Cloud's names resolve without a `[dns]` entry: they
//!    are added to [`Topology::dns`].
//!
//! A value is held to its shape in `names.rs` (what keeps a string from being a serial or
//! a DNS name), and what a fix suggests instead comes from `suggest.rs` (the closest valid
//! key, an unused serial, name or address). The bounds and well-known names behind the
//! rules are facts of [`crate::domain`]. A draft (`NodeDraft`, `EmsDraft`) carries a table
//! between the passes; the validated types of `spec.rs` (re-exported here, so they are
//! `crate::topology::Topology` and so on) are built only when no problem was found.
//!
//! Adding a table takes a file-layer struct and a `Section` listed in `SECTIONS`
//! (`file.rs`), one call to `Reader::one` or `Reader::many` in `Reader::read` (below), and
//! a rule file. The problem reports `fabricsim check` prints are kept as golden files in
//! `tests/topology/` (a `NAME.toml` beside its `NAME.txt`).

mod accounts;
mod dns;
mod ems;
mod fields;
mod file;
mod forticloud;
mod names;
mod nodes;
mod reader;
mod seen;
mod settings;
mod spec;
mod suggest;
#[cfg(test)]
mod tests;

use std::path::Path;

use toml::de::DeTable;

use ems::EmsDraft;
pub use fields::{SerialList, Unlisted};
use file::{
    ADMIN, API_USER, AdminTable, ApiUserTable, BOOTSTRAP, BootstrapTable, CHECKS, ChecksTable, EMS, EmsTable,
    FABRIC, FabricTable, NODE, NodeTable, RAFT, RaftTable,
};
use reader::Reader;
pub use spec::{
    AdminSpec, ApiUserSpec, CertProfile, CheckSettings, ContractSpec, DEFAULT_ACCPROFILE,
    DEFAULT_ADMIN_PASSWORD, DEFAULT_ADMIN_USER, DEFAULT_CHECK_INTERVAL_SECS, DEFAULT_ELECTION_TIMEOUT_MAX_MS,
    DEFAULT_ELECTION_TIMEOUT_MIN_MS, DEFAULT_FORTICLOUD_ACCOUNT, DEFAULT_HEARTBEAT_MS,
    DEFAULT_HOSTNAME_PREFIX, DEFAULT_HTTPS_PORT, DEFAULT_KEEP_LOGS, DEFAULT_SNAPSHOT_EVERY, DEFAULT_SSH_PORT,
    DEFAULT_VOTERS, EmsSpec, FabricSettings, ForticloudSpec, MEMORY_SOURCE, MIN_CHECK_INTERVAL_SECS,
    MIN_HEARTBEAT_MS, MIN_SNAPSHOT_EVERY, MIN_VOTERS, NodeSpec, Problem, RaftSettings, Role, Topology,
    TopologyError,
};

impl Topology {
    /// Reads, parses and validates the topology file at `path`.
    pub fn load(path: &Path) -> Result<Topology, TopologyError> {
        let text = std::fs::read_to_string(path).map_err(|source| TopologyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Topology::parse(&text, path)
    }

    /// Parses and validates topology text; `source` names it in problems and in
    /// [`Topology::source`] (pass `Path::new(MEMORY_SOURCE)` for text from no file).
    pub fn parse(text: &str, source: &Path) -> Result<Topology, TopologyError> {
        let mut reader = Reader::new(text);
        let topology = reader.read(source);
        let mut problems = reader.problems;
        match topology {
            Some(topology) if problems.is_empty() => Ok(topology),
            _ => {
                problems.sort_by_key(|problem| (problem.line, problem.column));
                Err(TopologyError::Invalid {
                    path: source.to_path_buf(),
                    problems,
                })
            }
        }
    }
}

impl Reader<'_> {
    /// All three passes; the result is complete only when no problem was reported.
    fn read(&mut self, source: &Path) -> Option<Topology> {
        let text = self.text;
        let (document, errors) = DeTable::parse_recoverable(text);
        if !errors.is_empty() {
            for error in errors {
                let span = error.span().unwrap_or(0..0);
                self.report(&span, error.message(), "check the TOML syntax near here");
            }
            return None;
        }
        let document = document.into_inner();

        self.top_level_keys(&document);
        let fabric = self.one::<FabricTable>(&document, &FABRIC);
        let raft = self.one::<RaftTable>(&document, &RAFT);
        let nodes = self.many::<NodeTable>(&document, &NODE);
        let ems = self.many::<EmsTable>(&document, &EMS);
        let forticloud = self.forticloud(&document);
        let dns = self.dns(&document);
        let checks = self.one::<ChecksTable>(&document, &CHECKS);
        let admin = self.one::<AdminTable>(&document, &ADMIN);
        let api_users = self.many::<ApiUserTable>(&document, &API_USER);
        let bootstrap = self.one::<BootstrapTable>(&document, &BOOTSTRAP);

        let fabric = self.fabric_settings(fabric);
        let raft = self.raft_settings(raft);
        let node_drafts = self.node_drafts(nodes);
        let nodes = node_drafts.as_deref().and_then(|drafts| self.nodes(drafts));
        let ems_drafts = self.ems_drafts(ems, node_drafts.as_deref());
        let forticloud = forticloud.map(|(read, contracts)| {
            self.forticloud_draft(
                read,
                contracts,
                node_drafts.as_deref(),
                ems_drafts.as_deref().unwrap_or_default(),
            )
        });
        let dns = self.dns_names(
            dns,
            ems_drafts.as_deref().unwrap_or_default(),
            forticloud.as_ref(),
        );
        let checks = self.check_settings(checks);
        let bootstrap = self.bootstrap_lines(bootstrap);
        let admin = self.admin_spec(admin);
        let api_users = self.api_user_specs(api_users);
        let ems = ems_drafts?
            .iter()
            .map(EmsDraft::spec)
            .collect::<Option<Vec<EmsSpec>>>()?;
        let forticloud = match forticloud {
            Some(draft) => Some(draft.spec?),
            None => None,
        };
        Some(Topology {
            fabric: fabric?,
            raft,
            nodes: nodes?,
            ems,
            forticloud,
            dns,
            checks,
            admin,
            api_users: api_users?,
            bootstrap,
            source: source.to_path_buf(),
        })
    }
}
