//! The topology file: which FortiGates make up a fabric, where they listen, and how the
//! fabric's Raft group is tuned.
//!
//! This module owns the TOML format of `cluster-configs/*.toml` and its validation. Text
//! enters through [`Topology::load`] (a path) or [`Topology::parse`] (a string) and leaves
//! either as a [`Topology`], in which every default is filled in and every rule holds, or
//! as a [`TopologyError`] that lists *every* problem found, each with its line, column,
//! what is wrong and what to write instead. `fabricsim check` prints that error as it is.
//!
//! Reading happens in three passes over one parse of the text:
//!
//! 1. **Syntax.** toml's span-keeping document parser reads the text with error recovery,
//!    so several syntax errors are reported at once. Nothing else is checked until the
//!    syntax is right, because a broken document would only produce follow-up noise.
//! 2. **Shape.** A small schema (`Section` and `Key`) walks the document: unknown keys
//!    are reported with the closest valid key, each known key is deserialized on its own so
//!    that every wrongly typed value is reported (serde alone stops at the first), and
//!    missing required keys are named. The surviving keys are deserialized into the
//!    file-layer structs (`FabricTable`, `RaftTable`, `NodeTable`), whose fields keep
//!    their spans.
//! 3. **Meaning.** Rules that span fields or nodes: names, serials and addresses well
//!    formed, exactly one root, no duplicates, every `upstream` chain ending at the root,
//!    and Raft timings in a workable order.
//!
//! Adding a table (say `[[ems]]`) takes a file-layer struct, a `Section` constant listed
//! in `SECTIONS`, one call to `Reader::one` or `Reader::many`, and its rules.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

/// Raft voters, the root included, when `[fabric] voters` is not given. Five voters keep
/// committing with two of them down; more voters only make each commit wait for more disks.
pub const DEFAULT_VOTERS: usize = 5;
/// Fewest voters a fabric can run with: the root alone.
pub const MIN_VOTERS: usize = 1;
/// Interval between leader heartbeats when `[raft] heartbeat_ms` is not given.
pub const DEFAULT_HEARTBEAT_MS: u64 = 250;
/// Shortest heartbeat interval accepted: zero would make the leader send without pause.
pub const MIN_HEARTBEAT_MS: u64 = 1;
/// Lower bound of the randomized election timeout when not given: four heartbeats, so a
/// follower does not start an election because one or two heartbeats were late.
pub const DEFAULT_ELECTION_TIMEOUT_MIN_MS: u64 = 1000;
/// Upper bound of the randomized election timeout when not given: twice the lower bound,
/// which spreads candidates apart enough that split votes are rare.
pub const DEFAULT_ELECTION_TIMEOUT_MAX_MS: u64 = 2000;
/// Log entries since the last snapshot after which a new snapshot is built, when not given.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 500;
/// Smallest `snapshot_every`: a snapshot needs at least one new entry to be worth building.
pub const MIN_SNAPSHOT_EVERY: u64 = 1;
/// Log entries kept behind a snapshot when not given, so a member that lags a little catches
/// up from the log instead of receiving a whole snapshot.
pub const DEFAULT_KEEP_LOGS: u64 = 100;
/// Longest fabric or node name. FortiOS object names are at most 35 characters (the same
/// bound as an `fctems` entry name), and node names end up in hostnames and prompts.
pub const MAX_NAME_LEN: usize = 35;
/// Length of a FortiGate serial number, e.g. `FGVM01TM22000001` (DOMAIN.md section 1).
pub const SERIAL_LEN: usize = 16;
/// Every FortiGate serial number starts with these letters (`FGT60F…`, `FGVM01…`).
pub const SERIAL_PREFIX: &str = "FG";
/// Longest hostname: FortiOS `config system global` / `set hostname` takes at most 35
/// characters.
pub const MAX_HOSTNAME_LEN: usize = 35;
/// A node's hostname, when not given, is this prefix and the node name, as in `FGT-root`.
pub const DEFAULT_HOSTNAME_PREFIX: &str = "FGT-";
/// The [`Topology::source`] of a topology parsed from text that came from no file.
pub const MEMORY_SOURCE: &str = "<memory>";
/// TCP port FortiGates use for fabric connections by default (DOMAIN.md section 1); used in
/// the addresses this module suggests.
const FABRIC_PORT: u16 = 8013;
/// Serials this module suggests are this prefix and a six-digit number.
const SUGGESTED_SERIAL_PREFIX: &str = "FGVM01TM22";
/// Longest edit distance at which an unknown key is taken for a misspelling of a valid one.
const MAX_TYPO_DISTANCE: usize = 2;
/// Shortest unknown key taken for a shortening of a valid key it starts (or that starts it);
/// shorter ones match too much by chance.
const MIN_PREFIX_LEN: usize = 3;

type Span = Range<usize>;

// ---------------------------------------------------------------------------------------
// The validated topology
// ---------------------------------------------------------------------------------------

/// A validated fabric topology: every default filled in, every rule of the file format met.
#[derive(Debug, Clone)]
pub struct Topology {
    /// Fabric-wide settings from `[fabric]`.
    pub fabric: FabricSettings,
    /// Raft tuning from `[raft]`, defaults where the table or a key is absent.
    pub raft: RaftSettings,
    /// The nodes in the order the file lists them; exactly one has [`Role::Root`].
    pub nodes: Vec<NodeSpec>,
    /// The file the topology was read from, or [`MEMORY_SOURCE`].
    pub source: PathBuf,
}

/// Fabric-wide settings: the `[fabric]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FabricSettings {
    /// Fabric name; the state directory is `.fabricsim/<name>/`.
    pub name: String,
    /// Raft voters including the root (at least [`MIN_VOTERS`]); members beyond this
    /// number join as learners.
    pub voters: usize,
}

/// Raft tuning: the `[raft]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftSettings {
    /// Interval between leader heartbeats, in milliseconds.
    pub heartbeat_ms: u64,
    /// Lower bound of the randomized election timeout, in milliseconds; above `heartbeat_ms`.
    pub election_timeout_min_ms: u64,
    /// Upper bound of the randomized election timeout, in milliseconds; above the lower one.
    pub election_timeout_max_ms: u64,
    /// Log entries since the last snapshot after which a new snapshot is built.
    pub snapshot_every: u64,
    /// Log entries kept behind a snapshot.
    pub keep_logs: u64,
}

impl Default for RaftSettings {
    fn default() -> Self {
        RaftSettings {
            heartbeat_ms: DEFAULT_HEARTBEAT_MS,
            election_timeout_min_ms: DEFAULT_ELECTION_TIMEOUT_MIN_MS,
            election_timeout_max_ms: DEFAULT_ELECTION_TIMEOUT_MAX_MS,
            snapshot_every: DEFAULT_SNAPSHOT_EVERY,
            keep_logs: DEFAULT_KEEP_LOGS,
        }
    }
}

/// One FortiGate of the fabric: a `[[node]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// Raft node id: as written, or the node's 1-based position in the file.
    pub id: u64,
    /// Name used on the command line (`fabricsim exec NODE`).
    pub name: String,
    /// FortiGate serial number, e.g. `FGVM01TM22000001`.
    pub serial: String,
    /// Root or member.
    pub role: Role,
    /// gRPC address on loopback IPv4; port 0 means "pick a free port".
    pub listen: SocketAddr,
    /// FortiOS hostname shown in prompts and `get system status`.
    pub hostname: String,
    /// Members only: the node this member connects upstream to; `None` means the root.
    pub upstream: Option<String>,
}

/// The place of a FortiGate in the fabric tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The one FortiGate that holds the fabric-wide configuration.
    Root,
    /// A downstream FortiGate that receives the configuration.
    Member,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Root => "root",
            Role::Member => "member",
        })
    }
}

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
        let topology = reader.read();
        let mut problems = reader.problems;
        match topology {
            Some((fabric, raft, nodes)) if problems.is_empty() => Ok(Topology {
                fabric,
                raft,
                nodes,
                source: source.to_path_buf(),
            }),
            _ => {
                problems.sort_by_key(|problem| (problem.line, problem.column));
                Err(TopologyError::Invalid {
                    path: source.to_path_buf(),
                    problems,
                })
            }
        }
    }

    /// The root node.
    ///
    /// # Panics
    /// If the topology has no root, which validation rules out; only a `Topology` built by
    /// hand can lack one.
    pub fn root(&self) -> &NodeSpec {
        self.nodes
            .iter()
            .find(|node| node.role == Role::Root)
            .expect("a validated topology has exactly one root")
    }

    /// The node called `name`, if there is one.
    pub fn node(&self, name: &str) -> Option<&NodeSpec> {
        self.nodes.iter().find(|node| node.name == name)
    }

    /// The members (every node but the root), in file order.
    pub fn members(&self) -> impl Iterator<Item = &NodeSpec> {
        self.nodes.iter().filter(|node| node.role == Role::Member)
    }
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Why a topology could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// The file could not be read.
    #[error("cannot read topology file {}: {source}", path.display())]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file was read but breaks the format; every problem found is listed, by line.
    #[error("{}", render_problems(path, problems))]
    Invalid {
        /// The file (or [`MEMORY_SOURCE`]) the problems are in.
        path: PathBuf,
        /// Every problem, sorted by line and column.
        problems: Vec<Problem>,
    },
}

/// One thing wrong in a topology file, and how to put it right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line of the offending text.
    pub line: usize,
    /// 1-based column (in characters) of the offending text.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// What to write instead.
    pub fix: String,
}

/// `path:line:col: message`, the fix indented below it, and a count at the end.
fn render_problems(path: &Path, problems: &[Problem]) -> String {
    let mut out = String::new();
    for problem in problems {
        out.push_str(&format!(
            "{}:{}:{}: {}\n    fix: {}\n",
            path.display(),
            problem.line,
            problem.column,
            problem.message,
            problem.fix
        ));
    }
    let noun = if problems.len() == 1 {
        "problem"
    } else {
        "problems"
    };
    out.push_str(&format!("{} {noun} in {}", problems.len(), path.display()));
    out
}

// ---------------------------------------------------------------------------------------
// The file as written
// ---------------------------------------------------------------------------------------

/// A key one table accepts.
struct Key {
    /// The key as written in the file.
    name: &'static str,
    /// Whether the table is incomplete without it.
    required: bool,
    /// A valid value, as TOML, for fixes that show what to write.
    example: &'static str,
}

/// A table of the file and the keys it accepts.
struct Section {
    /// The top-level key, e.g. `node` for `[[node]]`.
    key: &'static str,
    /// `true` for an array of tables (`[[node]]`), `false` for one table (`[fabric]`).
    repeated: bool,
    /// Whether the file is incomplete without it.
    required: bool,
    /// The keys inside the table.
    keys: &'static [Key],
}

/// A key the table cannot do without; `example` is a valid value written as TOML.
const fn required(name: &'static str, example: &'static str) -> Key {
    Key {
        name,
        required: true,
        example,
    }
}

/// A key with a default; `example` is a valid value written as TOML.
const fn optional(name: &'static str, example: &'static str) -> Key {
    Key {
        name,
        required: false,
        example,
    }
}

impl Section {
    /// The table header as a person writes it: `[fabric]` or `[[node]]`.
    fn header(&self) -> String {
        if self.repeated {
            format!("[[{}]]", self.key)
        } else {
            format!("[{}]", self.key)
        }
    }
}

/// `[fabric]`: required, for the fabric name.
const FABRIC: Section = Section {
    key: "fabric",
    repeated: false,
    required: true,
    keys: &[required("name", "\"default\""), optional("voters", "5")],
};

/// `[raft]`: optional, every key has a default.
const RAFT: Section = Section {
    key: "raft",
    repeated: false,
    required: false,
    keys: &[
        optional("heartbeat_ms", "250"),
        optional("election_timeout_min_ms", "1000"),
        optional("election_timeout_max_ms", "2000"),
        optional("snapshot_every", "500"),
        optional("keep_logs", "100"),
    ],
};

/// `[[node]]`: one per FortiGate; an empty list is reported with the rules between nodes.
const NODE: Section = Section {
    key: "node",
    repeated: true,
    required: false,
    keys: &[
        required("name", "\"branch1\""),
        required("serial", "\"FGVM01TM22000002\""),
        optional("role", "\"member\""),
        required("listen", "\"127.0.0.12:8013\""),
        optional("hostname", "\"FGT-branch1\""),
        optional("id", "2"),
        optional("upstream", "\"root\""),
    ],
};

/// Every table the file may contain.
const SECTIONS: &[&Section] = &[&FABRIC, &RAFT, &NODE];

/// `[fabric]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FabricTable {
    /// Fabric name; the state directory is `.fabricsim/<name>/`. Letters, digits, `-` and
    /// `_`, at most [`MAX_NAME_LEN`] characters. Required.
    name: Option<Spanned<String>>,
    /// Raft voters including the root; further members join as learners. Default
    /// [`DEFAULT_VOTERS`], at least [`MIN_VOTERS`].
    voters: Option<Spanned<usize>>,
}

/// `[raft]` as written; the whole table is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RaftTable {
    /// Leader heartbeat interval in milliseconds. Default [`DEFAULT_HEARTBEAT_MS`].
    heartbeat_ms: Option<Spanned<u64>>,
    /// Election timeout lower bound in milliseconds, above `heartbeat_ms`. Default
    /// [`DEFAULT_ELECTION_TIMEOUT_MIN_MS`].
    election_timeout_min_ms: Option<Spanned<u64>>,
    /// Election timeout upper bound in milliseconds, above the lower bound. Default
    /// [`DEFAULT_ELECTION_TIMEOUT_MAX_MS`].
    election_timeout_max_ms: Option<Spanned<u64>>,
    /// Build a snapshot after this many log entries since the last one. Default
    /// [`DEFAULT_SNAPSHOT_EVERY`], at least [`MIN_SNAPSHOT_EVERY`].
    snapshot_every: Option<Spanned<u64>>,
    /// Log entries kept behind a snapshot. Default [`DEFAULT_KEEP_LOGS`].
    keep_logs: Option<Spanned<u64>>,
}

/// One `[[node]]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeTable {
    /// Node name used on the command line. Letters, digits, `-` and `_`, at most
    /// [`MAX_NAME_LEN`] characters. Required.
    name: Option<Spanned<String>>,
    /// FortiGate serial: [`SERIAL_LEN`] characters, `A-Z` and `0-9`, starting with
    /// [`SERIAL_PREFIX`]. Required.
    serial: Option<Spanned<String>>,
    /// `"root"` or `"member"`. Default `"member"`; exactly one node is the root.
    role: Option<Spanned<Role>>,
    /// gRPC address, `ip:port` on loopback IPv4 (127.0.0.0/8); port 0 picks a free port.
    /// Required.
    listen: Option<Spanned<String>>,
    /// FortiOS hostname. Default [`DEFAULT_HOSTNAME_PREFIX`] followed by the name.
    hostname: Option<Spanned<String>>,
    /// Raft node id. Default: the node's 1-based position in the file.
    id: Option<Spanned<u64>>,
    /// Members only: the node this member connects upstream to. Default: the root.
    upstream: Option<Spanned<String>>,
}

/// A table read from the file, with the span of its header.
struct Read<T> {
    header: Span,
    table: T,
    /// Keys that were present but held a value of the wrong type; they read as absent in
    /// `table`, so rules that would take them for absent stay quiet.
    rejected: Vec<&'static str>,
}

/// One `[[node]]` on its way to a [`NodeSpec`]: the table, where it is, and what its
/// values turned out to be.
struct NodeDraft {
    /// 1-based position in the file, the default id.
    position: usize,
    /// Span of the `[[node]]` header.
    header: Span,
    /// Line of the `[[node]]` header.
    header_line: usize,
    table: NodeTable,
    /// Keys whose values were rejected as wrongly typed.
    rejected: Vec<&'static str>,
    /// The `listen` address, when it parsed.
    listen: Option<SocketAddr>,
}

impl NodeDraft {
    fn role(&self) -> Role {
        self.table
            .role
            .as_ref()
            .map_or(Role::Member, |role| *role.get_ref())
    }

    fn id(&self) -> u64 {
        self.table
            .id
            .as_ref()
            .map_or(self.position as u64, |id| *id.get_ref())
    }

    fn name(&self) -> Option<&str> {
        self.table.name.as_ref().map(|name| name.get_ref().as_str())
    }

    /// How problems refer to this node: its name, or its header when it has none.
    fn label(&self) -> String {
        match self.name() {
            Some(name) => format!("\"{name}\""),
            None => format!("the [[node]] at line {}", self.header_line),
        }
    }

    /// The finished node; `None` while a required value is missing or unusable.
    fn spec(&self) -> Option<NodeSpec> {
        let name = self.name()?.to_string();
        let hostname = match &self.table.hostname {
            Some(hostname) => hostname.get_ref().clone(),
            None => format!("{DEFAULT_HOSTNAME_PREFIX}{name}"),
        };
        Some(NodeSpec {
            id: self.id(),
            serial: self.table.serial.as_ref()?.get_ref().clone(),
            role: self.role(),
            listen: self.listen?,
            hostname,
            upstream: self.table.upstream.as_ref().map(|up| up.get_ref().clone()),
            name,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Reading and validating
// ---------------------------------------------------------------------------------------

/// Walks one document and collects its problems.
struct Reader<'t> {
    text: &'t str,
    /// Byte offset at which each line starts.
    line_starts: Vec<usize>,
    problems: Vec<Problem>,
}

impl<'t> Reader<'t> {
    fn new(text: &'t str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(at, _)| at + 1))
            .collect();
        Reader {
            text,
            line_starts,
            problems: Vec::new(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self.line_starts[line - 1];
        let column = self
            .text
            .get(start..offset)
            .map_or(1, |before| before.chars().count() + 1);
        (line, column)
    }

    fn line(&self, span: &Span) -> usize {
        self.position(span.start).0
    }

    fn report(&mut self, span: &Span, message: impl Into<String>, fix: impl Into<String>) {
        let (line, column) = self.position(span.start);
        self.problems.push(Problem {
            line,
            column,
            message: message.into(),
            fix: fix.into(),
        });
    }

    /// All three passes; the result is complete only when no problem was reported.
    fn read(&mut self) -> Option<(FabricSettings, RaftSettings, Vec<NodeSpec>)> {
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

        let fabric = self.fabric_settings(fabric);
        let raft = self.raft_settings(raft);
        let nodes = self.nodes(nodes);
        Some((fabric?, raft, nodes?))
    }

    // --- pass 2: shape ---

    fn top_level_keys(&mut self, document: &DeTable<'_>) {
        for key in document.keys() {
            let name = key.get_ref().as_ref();
            if SECTIONS.iter().any(|section| section.key == name) {
                continue;
            }
            let headers: Vec<String> = SECTIONS.iter().map(|section| section.header()).collect();
            let owners: Vec<String> = SECTIONS
                .iter()
                .filter(|section| section.keys.iter().any(|k| k.name == name))
                .map(|section| section.header())
                .collect();
            let fix = if !owners.is_empty() {
                format!(
                    "\"{name}\" belongs in {}; move it below that table's header",
                    owners.join(" or ")
                )
            } else if let Some(section) = closest(name, SECTIONS.iter().map(|s| s.key))
                .and_then(|key| SECTIONS.iter().find(|s| s.key == key))
            {
                format!("did you mean {}?", section.header())
            } else {
                format!("the top level holds only the tables {}", headers.join(", "))
            };
            self.report(
                &key.span(),
                format!("unknown key \"{name}\" at the top level"),
                fix,
            );
        }
    }

    /// A single table such as `[fabric]`; `None` when it is absent or not a table.
    fn one<T: DeserializeOwned + Default>(
        &mut self,
        document: &DeTable<'_>,
        section: &Section,
    ) -> Option<Read<T>> {
        let Some((key, value)) = document.get_key_value(section.key) else {
            if section.required {
                self.missing_section(section);
            }
            return None;
        };
        match value.get_ref() {
            DeValue::Table(table) => Some(self.table(section, value.span(), table)),
            other => {
                self.report(
                    &key.span(),
                    format!(
                        "\"{}\" must be a table, found {}",
                        section.key,
                        article(other.type_str())
                    ),
                    format!("write the header {} and its keys below it", section.header()),
                );
                None
            }
        }
    }

    /// An array of tables such as `[[node]]`: empty when it is absent, `None` when it is
    /// not an array of tables (which is reported).
    fn many<T: DeserializeOwned + Default>(
        &mut self,
        document: &DeTable<'_>,
        section: &Section,
    ) -> Option<Vec<Read<T>>> {
        let Some((key, value)) = document.get_key_value(section.key) else {
            if section.required {
                self.missing_section(section);
            }
            return Some(Vec::new());
        };
        let wrong_shape = |found: &DeValue<'_>| {
            (
                format!(
                    "\"{}\" must be an array of tables, found {}",
                    section.key,
                    article(found.type_str())
                ),
                format!("write {} above each entry (two brackets)", section.header()),
            )
        };
        let DeValue::Array(items) = value.get_ref() else {
            let (message, fix) = wrong_shape(value.get_ref());
            self.report(&key.span(), message, fix);
            return None;
        };
        let mut read = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::Table(table) => read.push(self.table(section, item.span(), table)),
                other => {
                    let (message, fix) = wrong_shape(other);
                    let span = if item.span().is_empty() {
                        key.span()
                    } else {
                        item.span()
                    };
                    self.report(&span, message, fix);
                }
            }
        }
        Some(read)
    }

    fn missing_section(&mut self, section: &Section) {
        let keys: Vec<String> = section
            .keys
            .iter()
            .filter(|key| key.required)
            .map(|key| format!("{} = {}", key.name, key.example))
            .collect();
        self.report(
            &(0..0),
            format!("missing table {}", section.header()),
            format!(
                "add the header {} with {} below it",
                section.header(),
                keys.join(" and ")
            ),
        );
    }

    /// Reads one table into `T`: unknown keys, wrongly typed values and missing required
    /// keys are each reported, and `T` holds every key that was fine.
    fn table<T: DeserializeOwned + Default>(
        &mut self,
        section: &Section,
        header: Span,
        table: &DeTable<'_>,
    ) -> Read<T> {
        let mut accepted = DeTable::new();
        let mut rejected = Vec::new();
        for (key, value) in table.iter() {
            let name = key.get_ref().as_ref();
            let Some(spec) = section.keys.iter().find(|k| k.name == name) else {
                let fix = match closest(name, section.keys.iter().map(|k| k.name)) {
                    Some(closest) => format!("did you mean \"{closest}\"?"),
                    None => format!(
                        "valid keys in {}: {}",
                        section.header(),
                        section.keys.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
                    ),
                };
                self.report(
                    &key.span(),
                    format!("unknown key \"{name}\" in {}", section.header()),
                    fix,
                );
                continue;
            };
            let alone: DeTable<'_> = std::iter::once((key.clone(), value.clone())).collect();
            match deserialize_table::<T>(alone, header.clone()) {
                Ok(_) => {
                    accepted.insert(key.clone(), value.clone());
                }
                Err(error) => {
                    rejected.push(spec.name);
                    self.report(
                        &value.span(),
                        format!(
                            "wrong value for \"{name}\" in {}: {}",
                            section.header(),
                            error.message()
                        ),
                        format!("write it like {} = {}", spec.name, spec.example),
                    );
                }
            }
        }
        for key in section.keys.iter().filter(|key| key.required) {
            if !table.contains_key(key.name) {
                self.report(
                    &header,
                    format!("missing key \"{}\" in {}", key.name, section.header()),
                    format!("add {} = {}", key.name, key.example),
                );
            }
        }
        let table = match deserialize_table::<T>(accepted, header.clone()) {
            Ok(table) => table,
            Err(error) => {
                self.report(
                    &header,
                    format!("cannot read {}: {}", section.header(), error.message()),
                    "check the values in this table",
                );
                T::default()
            }
        };
        Read {
            header,
            table,
            rejected,
        }
    }

    // --- pass 3: meaning ---

    fn fabric_settings(&mut self, fabric: Option<Read<FabricTable>>) -> Option<FabricSettings> {
        let fabric = fabric?.table;
        if let Some(name) = &fabric.name {
            self.check_name("fabric name", "lab", name);
        }
        if let Some(voters) = &fabric.voters
            && *voters.get_ref() < MIN_VOTERS
        {
            self.report(
                &voters.span(),
                format!("voters = {} leaves the fabric without a voter", voters.get_ref()),
                format!("write voters = {MIN_VOTERS} or more (the root counts); {DEFAULT_VOTERS} is usual"),
            );
        }
        Some(FabricSettings {
            name: fabric.name?.into_inner(),
            voters: fabric.voters.map_or(DEFAULT_VOTERS, |voters| voters.into_inner()),
        })
    }

    fn raft_settings(&mut self, raft: Option<Read<RaftTable>>) -> RaftSettings {
        let Some(Read {
            header,
            table,
            rejected,
        }) = raft
        else {
            return RaftSettings::default();
        };
        // A rule is checked only when none of its keys was rejected as wrongly typed: the
        // default standing in for a rejected key would make the rule misfire.
        let usable = |keys: &[&str]| keys.iter().all(|key| !rejected.contains(key));
        let value = |field: &Option<Spanned<u64>>, default: u64| {
            field.as_ref().map_or(default, |value| *value.get_ref())
        };
        let settings = RaftSettings {
            heartbeat_ms: value(&table.heartbeat_ms, DEFAULT_HEARTBEAT_MS),
            election_timeout_min_ms: value(&table.election_timeout_min_ms, DEFAULT_ELECTION_TIMEOUT_MIN_MS),
            election_timeout_max_ms: value(&table.election_timeout_max_ms, DEFAULT_ELECTION_TIMEOUT_MAX_MS),
            snapshot_every: value(&table.snapshot_every, DEFAULT_SNAPSHOT_EVERY),
            keep_logs: value(&table.keep_logs, DEFAULT_KEEP_LOGS),
        };
        // A rule between two keys is reported at the later of them that is written.
        let at = |fields: [&Option<Spanned<u64>>; 2]| {
            fields
                .into_iter()
                .flatten()
                .map(|field| field.span())
                .max_by_key(|span| span.start)
                .unwrap_or_else(|| header.clone())
        };
        if settings.heartbeat_ms < MIN_HEARTBEAT_MS {
            self.report(
                &at([&table.heartbeat_ms, &None]),
                "heartbeat_ms = 0 would send heartbeats without pause",
                format!("write heartbeat_ms = {DEFAULT_HEARTBEAT_MS}"),
            );
        } else if settings.election_timeout_min_ms <= settings.heartbeat_ms
            && usable(&["heartbeat_ms", "election_timeout_min_ms"])
        {
            self.report(
                &at([&table.heartbeat_ms, &table.election_timeout_min_ms]),
                format!(
                    "election_timeout_min_ms ({}) must be greater than heartbeat_ms ({}), or \
                     followers start elections between heartbeats",
                    settings.election_timeout_min_ms, settings.heartbeat_ms
                ),
                format!(
                    "write election_timeout_min_ms = {} (four heartbeats) or lower heartbeat_ms",
                    settings.heartbeat_ms.saturating_mul(4)
                ),
            );
        }
        if settings.election_timeout_max_ms <= settings.election_timeout_min_ms
            && usable(&["election_timeout_min_ms", "election_timeout_max_ms"])
        {
            self.report(
                &at([&table.election_timeout_min_ms, &table.election_timeout_max_ms]),
                format!(
                    "election_timeout_max_ms ({}) must be greater than election_timeout_min_ms ({})",
                    settings.election_timeout_max_ms, settings.election_timeout_min_ms
                ),
                format!(
                    "write election_timeout_max_ms = {} (twice the lower bound)",
                    settings.election_timeout_min_ms.saturating_mul(2)
                ),
            );
        }
        if settings.snapshot_every < MIN_SNAPSHOT_EVERY {
            self.report(
                &at([&table.snapshot_every, &None]),
                "snapshot_every = 0 would build a snapshot for every entry and none at all",
                format!("write snapshot_every = {DEFAULT_SNAPSHOT_EVERY} (at least {MIN_SNAPSHOT_EVERY})"),
            );
        }
        settings
    }

    /// Per-node rules, then the rules between nodes; the nodes when all hold.
    fn nodes(&mut self, nodes: Option<Vec<Read<NodeTable>>>) -> Option<Vec<NodeSpec>> {
        let nodes = nodes?;
        if nodes.is_empty() {
            self.report(
                &(0..0),
                "the file defines no [[node]]",
                "add a root: [[node]] with name = \"root\", serial = \"FGVM01TM22000001\", \
                 role = \"root\", listen = \"127.0.0.11:8013\"",
            );
            return None;
        }
        let serials: Vec<String> = nodes
            .iter()
            .filter_map(|read| read.table.serial.as_ref())
            .map(|serial| serial.get_ref().clone())
            .collect();
        let serials: HashSet<&str> = serials.iter().map(String::as_str).collect();
        let drafts: Vec<NodeDraft> = nodes
            .into_iter()
            .enumerate()
            .map(|(index, read)| {
                let listen = self.check_node_fields(&read.table, &serials);
                NodeDraft {
                    position: index + 1,
                    header_line: self.line(&read.header),
                    header: read.header,
                    table: read.table,
                    rejected: read.rejected,
                    listen,
                }
            })
            .collect();
        self.check_roots(&drafts);
        self.check_duplicates(&drafts);
        self.check_upstreams(&drafts);
        drafts.iter().map(NodeDraft::spec).collect()
    }

    /// Rules within one node; returns the parsed `listen` address when it is usable.
    /// `serials` are those of every node in the file, so that a suggested serial is free.
    fn check_node_fields(&mut self, node: &NodeTable, serials: &HashSet<&str>) -> Option<SocketAddr> {
        if let Some(name) = &node.name {
            self.check_name("node name", "node1", name);
        }
        if let Some(serial) = &node.serial {
            self.check_serial(serial, serials);
        }
        if let Some(hostname) = &node.hostname {
            self.check_hostname(hostname);
        }
        node.listen.as_ref().and_then(|listen| self.check_listen(listen))
    }

    fn check_name(&mut self, what: &str, fallback: &str, name: &Spanned<String>) {
        let value = name.get_ref();
        let length = value.chars().count();
        let mut faults = Vec::new();
        if value.is_empty() {
            faults.push("is empty".to_string());
        }
        if length > MAX_NAME_LEN {
            faults.push(format!("has {length} characters (at most {MAX_NAME_LEN})"));
        }
        if !value.chars().all(is_name_char) {
            faults.push("may only use letters, digits, \"-\" and \"_\"".to_string());
        }
        if faults.is_empty() {
            return;
        }
        let mut suggestion: String = value
            .chars()
            .map(|c| if is_name_char(c) { c } else { '-' })
            .take(MAX_NAME_LEN)
            .collect();
        if suggestion.trim_matches('-').is_empty() {
            suggestion = fallback.to_string();
        }
        self.report(
            &name.span(),
            format!("{what} \"{value}\" {}", faults.join(" and ")),
            format!("write name = \"{suggestion}\""),
        );
    }

    fn check_serial(&mut self, serial: &Spanned<String>, used: &HashSet<&str>) {
        let value = serial.get_ref();
        let length = value.chars().count();
        let mut faults = Vec::new();
        if length != SERIAL_LEN {
            faults.push(format!("has {length} characters ({SERIAL_LEN} needed)"));
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        {
            faults.push("may only use A-Z and 0-9".to_string());
        }
        if !value.starts_with(SERIAL_PREFIX) {
            faults.push(format!("does not start with \"{SERIAL_PREFIX}\""));
        }
        if faults.is_empty() {
            return;
        }
        let upper = value.to_ascii_uppercase();
        let example = if is_serial(&upper) && !used.contains(upper.as_str()) {
            upper
        } else {
            unused_serial(used)
        };
        self.report(
            &serial.span(),
            format!("serial \"{value}\" {}", faults.join(", ")),
            format!(
                "a FortiGate serial is {SERIAL_LEN} characters, A-Z and 0-9, starting with \
                 \"{SERIAL_PREFIX}\"; e.g. serial = \"{example}\""
            ),
        );
    }

    fn check_hostname(&mut self, hostname: &Spanned<String>) {
        let value = hostname.get_ref();
        let length = value.chars().count();
        let fault = if value.is_empty() {
            "is empty".to_string()
        } else if length > MAX_HOSTNAME_LEN {
            format!("has {length} characters (FortiOS allows {MAX_HOSTNAME_LEN})")
        } else if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            "contains spaces or control characters".to_string()
        } else {
            return;
        };
        self.report(
            &hostname.span(),
            format!("hostname \"{value}\" {fault}"),
            format!(
                "write a hostname of 1 to {MAX_HOSTNAME_LEN} characters without spaces, e.g. \
                 hostname = \"FGT-branch1\", or remove the line to get \"{DEFAULT_HOSTNAME_PREFIX}<name>\""
            ),
        );
    }

    fn check_listen(&mut self, listen: &Spanned<String>) -> Option<SocketAddr> {
        let value = listen.get_ref();
        let example = format!("127.0.0.12:{FABRIC_PORT}");
        let address = match value.parse::<SocketAddr>() {
            Ok(address) => address,
            Err(_) => {
                self.report(
                    &listen.span(),
                    format!("listen \"{value}\" is not an IPv4 address and port"),
                    format!(
                        "write ip:port on loopback, e.g. listen = \"{example}\" (port 0 picks a free port)"
                    ),
                );
                return None;
            }
        };
        match address.ip() {
            IpAddr::V4(ip) if ip.is_loopback() => Some(address),
            IpAddr::V4(ip) => {
                let [.., last] = ip.octets();
                let suggestion =
                    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last.max(1))), address.port());
                self.report(
                    &listen.span(),
                    format!("listen \"{value}\" is not a loopback address"),
                    format!("nodes listen on 127.0.0.0/8 only; e.g. listen = \"{suggestion}\""),
                );
                None
            }
            IpAddr::V6(_) => {
                self.report(
                    &listen.span(),
                    format!("listen \"{value}\" is an IPv6 address"),
                    format!(
                        "nodes listen on loopback IPv4 (127.0.0.0/8); e.g. listen = \"127.0.0.1:{}\"",
                        address.port()
                    ),
                );
                None
            }
        }
    }

    fn check_roots(&mut self, drafts: &[NodeDraft]) {
        let roots: Vec<&NodeDraft> = drafts.iter().filter(|d| d.role() == Role::Root).collect();
        let Some(first) = roots.first() else {
            // A root whose role was mistyped is already reported; do not also say "no root".
            if drafts.iter().any(|d| d.rejected.contains(&"role")) {
                return;
            }
            let candidate = drafts
                .iter()
                .find(|d| d.name() == Some("root"))
                .unwrap_or(&drafts[0]);
            self.report(
                &drafts[0].header,
                "no node has role \"root\"",
                format!(
                    "a fabric has exactly one root; add role = \"root\" to the node the others \
                     connect to, e.g. {} (line {})",
                    candidate.label(),
                    self.line(&candidate.header)
                ),
            );
            return;
        };
        let role_span = |draft: &NodeDraft| {
            draft
                .table
                .role
                .as_ref()
                .map_or(draft.header.clone(), |role| role.span())
        };
        for extra in &roots[1..] {
            let first_line = self.line(&role_span(first));
            let extra_span = role_span(extra);
            self.report(
                &extra_span,
                format!(
                    "two nodes have role \"root\": {} (line {}) and {} (line {})",
                    first.label(),
                    first_line,
                    extra.label(),
                    self.line(&extra_span)
                ),
                format!(
                    "a fabric has exactly one root; set role = \"member\" on {}",
                    extra.label()
                ),
            );
        }
    }

    fn check_duplicates(&mut self, drafts: &[NodeDraft]) {
        let used_serials: HashSet<&str> = drafts
            .iter()
            .filter_map(|d| d.table.serial.as_ref().map(|s| s.get_ref().as_str()))
            .collect();
        let used_ids: HashSet<u64> = drafts.iter().map(NodeDraft::id).collect();
        let used_addresses: HashSet<SocketAddr> = drafts.iter().filter_map(|d| d.listen).collect();

        // name
        let mut seen: HashMap<&str, (&NodeDraft, Span)> = HashMap::new();
        for draft in drafts {
            let Some(name) = &draft.table.name else {
                continue;
            };
            match seen.get(name.get_ref().as_str()) {
                Some((_, first)) => {
                    let first_line = self.line(first);
                    let line = self.line(&name.span());
                    self.report(
                        &name.span(),
                        format!(
                            "two nodes are named \"{}\": line {first_line} and line {line}",
                            name.get_ref()
                        ),
                        format!(
                            "node names are unique; rename the node on line {line}, e.g. name = \"{}\"",
                            unused_name(name.get_ref(), drafts)
                        ),
                    );
                }
                None => {
                    seen.insert(name.get_ref(), (draft, name.span()));
                }
            }
        }

        // serial
        let mut seen: HashMap<&str, (&NodeDraft, Span)> = HashMap::new();
        for draft in drafts {
            let Some(serial) = &draft.table.serial else {
                continue;
            };
            match seen.get(serial.get_ref().as_str()) {
                Some((first, span)) => {
                    let first_line = self.line(span);
                    self.report(
                        &serial.span(),
                        format!(
                            "two nodes have serial \"{}\": {} (line {first_line}) and {} (line {})",
                            serial.get_ref(),
                            first.label(),
                            draft.label(),
                            self.line(&serial.span())
                        ),
                        format!(
                            "every FortiGate has its own serial; e.g. serial = \"{}\" on {}",
                            unused_serial(&used_serials),
                            draft.label()
                        ),
                    );
                }
                None => {
                    seen.insert(serial.get_ref(), (draft, serial.span()));
                }
            }
        }

        // id (written, or the position in the file)
        let id_span = |draft: &NodeDraft| {
            draft
                .table
                .id
                .as_ref()
                .map_or(draft.header.clone(), |id| id.span())
        };
        let id_note = |draft: &NodeDraft| {
            if draft.table.id.is_some() {
                String::new()
            } else {
                ", by position".to_string()
            }
        };
        let mut seen: HashMap<u64, &NodeDraft> = HashMap::new();
        for draft in drafts {
            match seen.get(&draft.id()) {
                Some(first) => {
                    let span = id_span(draft);
                    let first_line = self.line(&id_span(first));
                    let next_id = used_ids.iter().max().map_or(1, |max| max.saturating_add(1));
                    // One of the two has a written id; that is the one to change.
                    let change = if draft.table.id.is_some() { draft } else { first };
                    self.report(
                        &span,
                        format!(
                            "two nodes have id {}: {} (line {first_line}{}) and {} (line {}{})",
                            draft.id(),
                            first.label(),
                            id_note(first),
                            draft.label(),
                            self.line(&span),
                            id_note(draft)
                        ),
                        format!(
                            "ids default to the node's position in the file; set id = {next_id} \
                             on {} or remove its id line",
                            change.label()
                        ),
                    );
                }
                None => {
                    seen.insert(draft.id(), draft);
                }
            }
        }

        // listen (port 0 asks for a free port, so those never collide)
        let mut seen: HashMap<SocketAddr, (&NodeDraft, Span)> = HashMap::new();
        for draft in drafts {
            let (Some(address), Some(listen)) = (draft.listen, &draft.table.listen) else {
                continue;
            };
            if address.port() == 0 {
                continue;
            }
            match seen.get(&address) {
                Some((first, span)) => {
                    let first_line = self.line(span);
                    self.report(
                        &listen.span(),
                        format!(
                            "two nodes listen on {address}: {} (line {first_line}) and {} (line {})",
                            first.label(),
                            draft.label(),
                            self.line(&listen.span())
                        ),
                        format!(
                            "give {} its own address, e.g. listen = \"{}\", or port 0 to pick a free port",
                            draft.label(),
                            unused_address(address.port(), &used_addresses)
                        ),
                    );
                }
                None => {
                    seen.insert(address, (draft, listen.span()));
                }
            }
        }
    }

    fn check_upstreams(&mut self, drafts: &[NodeDraft]) {
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (at, draft) in drafts.iter().enumerate() {
            if let Some(name) = draft.name() {
                index.entry(name).or_insert(at);
            }
        }
        let all_named = drafts.iter().all(|draft| draft.name().is_some());
        let root_name = drafts
            .iter()
            .find(|d| d.role() == Role::Root)
            .and_then(NodeDraft::name)
            .unwrap_or("root");

        // Where each node connects: Some(i) for a named upstream, None for the root or when
        // the upstream is unusable (reported here).
        let mut next: Vec<Option<usize>> = vec![None; drafts.len()];
        for (at, draft) in drafts.iter().enumerate() {
            let Some(upstream) = &draft.table.upstream else {
                continue;
            };
            if draft.role() == Role::Root {
                self.report(
                    &upstream.span(),
                    format!(
                        "the root {} has upstream = \"{}\"; the root connects to no one",
                        draft.label(),
                        upstream.get_ref()
                    ),
                    "remove the upstream line from the root",
                );
                continue;
            }
            match index.get(upstream.get_ref().as_str()) {
                Some(&target) => next[at] = Some(target),
                None if all_named => {
                    let fix = match closest(upstream.get_ref(), index.keys().copied()) {
                        Some(name) => format!("did you mean \"{name}\"?"),
                        None => format!(
                            "write the name of a node in this file, e.g. upstream = \"{root_name}\", \
                             or remove the line to connect to the root"
                        ),
                    };
                    self.report(
                        &upstream.span(),
                        format!(
                            "unreachable upstream \"{}\" of {}: no node has that name",
                            upstream.get_ref(),
                            draft.label()
                        ),
                        fix,
                    );
                }
                None => {}
            }
        }

        // Follow every chain; one that comes back to a node on its own path is a cycle.
        // A node whose chain was followed once is not followed again, so each cycle is found
        // once and reported at its node that comes first in the file.
        let mut followed = vec![false; drafts.len()];
        for start in 0..drafts.len() {
            let mut path: Vec<usize> = Vec::new();
            let mut on_path: HashMap<usize, usize> = HashMap::new();
            let mut at = start;
            while !followed[at] {
                if let Some(&loop_start) = on_path.get(&at) {
                    let cycle = &path[loop_start..];
                    if let Some(&first) = cycle.iter().min() {
                        self.report_cycle(drafts, cycle, first, root_name);
                    }
                    break;
                }
                on_path.insert(at, path.len());
                path.push(at);
                match next[at] {
                    Some(up) => at = up,
                    None => break,
                }
            }
            for &node in &path {
                followed[node] = true;
            }
        }
    }

    fn report_cycle(&mut self, drafts: &[NodeDraft], cycle: &[usize], first: usize, root: &str) {
        let offset = cycle.iter().position(|&at| at == first).unwrap_or(0);
        let mut chain: Vec<String> = cycle[offset..]
            .iter()
            .chain(&cycle[..offset])
            .map(|&at| drafts[at].label())
            .collect();
        chain.push(drafts[first].label());
        let draft = &drafts[first];
        let span = draft
            .table
            .upstream
            .as_ref()
            .map_or(draft.header.clone(), |up| up.span());
        let message = if cycle.len() == 1 {
            format!(
                "{} names itself as upstream, so it never reaches the root",
                draft.label()
            )
        } else {
            format!(
                "upstream chain {} is a cycle that never reaches the root",
                chain.join(" -> ")
            )
        };
        self.report(
            &span,
            message,
            format!(
                "set upstream = \"{root}\" on {}, or remove its upstream line to connect to the root",
                draft.label()
            ),
        );
    }
}

/// Deserializes a table, keeping the spans of its values.
fn deserialize_table<T: DeserializeOwned>(table: DeTable<'_>, span: Span) -> Result<T, toml::de::Error> {
    T::deserialize(ValueDeserializer::from(Spanned::new(span, DeValue::Table(table))))
}

/// "a string", "an integer": a TOML type name with its article.
fn article(type_name: &str) -> String {
    match type_name.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => format!("an {type_name}"),
        _ => format!("a {type_name}"),
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

fn is_serial(value: &str) -> bool {
    value.len() == SERIAL_LEN
        && value.starts_with(SERIAL_PREFIX)
        && value
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// The valid key closest to `unknown`, if it is close enough to be a misspelling or a
/// shortening (`heartbeat` for `heartbeat_ms`).
fn closest<'a>(unknown: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let shortened = |candidate: &str| {
        unknown.len() >= MIN_PREFIX_LEN && (candidate.starts_with(unknown) || unknown.starts_with(candidate))
    };
    candidates
        .map(|candidate| (edit_distance(unknown, candidate), candidate))
        .filter(|&(distance, candidate)| distance <= MAX_TYPO_DISTANCE || shortened(candidate))
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// A serial no node in the file uses.
fn unused_serial(used: &HashSet<&str>) -> String {
    (1u32..)
        .map(|n| format!("{SUGGESTED_SERIAL_PREFIX}{n:06}"))
        .find(|serial| !used.contains(serial.as_str()))
        .unwrap_or_default()
}

/// `name` with the smallest numeric suffix no node in the file uses.
fn unused_name(name: &str, drafts: &[NodeDraft]) -> String {
    let base: String = name.chars().take(MAX_NAME_LEN - 3).collect();
    (2u32..)
        .map(|n| format!("{base}-{n}"))
        .find(|candidate| drafts.iter().all(|d| d.name() != Some(candidate.as_str())))
        .unwrap_or_default()
}

/// A loopback address on `port` that no node in the file uses: the one just above the
/// highest in use, as a person numbering nodes would pick, or else the lowest free one.
fn unused_address(port: u16, used: &HashSet<SocketAddr>) -> SocketAddr {
    let last_octet = |address: &SocketAddr| match address.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => Some(ip.octets()[3]),
        _ => None,
    };
    let highest = used.iter().filter_map(last_octet).max().unwrap_or(1);
    let loopback = |last: u8| SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)), port);
    (highest.saturating_add(1)..u8::MAX)
        .chain(2..highest)
        .map(loopback)
        .find(|address| !used.contains(address))
        .unwrap_or_else(|| loopback(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT_TOML: &str = include_str!("../cluster-configs/default.toml");
    const TEN_NODES_TOML: &str = include_str!("../cluster-configs/ten-nodes.toml");

    fn parse(text: &str) -> Result<Topology, TopologyError> {
        Topology::parse(text, Path::new(MEMORY_SOURCE))
    }

    fn problems(text: &str) -> Vec<Problem> {
        match parse(text) {
            Ok(topology) => panic!("expected problems, got {topology:#?}"),
            Err(TopologyError::Invalid { problems, .. }) => problems,
            Err(other) => panic!("expected Invalid, got {other:?}"),
        }
    }

    /// Asserts that exactly the expected problems were found: one per `(line, text)`, where
    /// `text` is part of the message, in line order.
    fn assert_problems(text: &str, expected: &[(usize, &str)]) {
        let found = problems(text);
        let listing = found
            .iter()
            .map(|p| format!("  {}:{}: {} (fix: {})", p.line, p.column, p.message, p.fix))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(
            found.len(),
            expected.len(),
            "wrong number of problems:\n{listing}"
        );
        for (problem, (line, part)) in found.iter().zip(expected) {
            assert_eq!(problem.line, *line, "wrong line for {part:?}:\n{listing}");
            assert!(
                problem.message.contains(part),
                "expected {part:?} on line {line}:\n{listing}"
            );
        }
    }

    /// A valid two-node fabric; tests append to it or replace parts of it.
    const SMALL: &str = r#"[fabric]
name = "lab"

[[node]]
name = "root"
serial = "FGVM01TM22000001"
role = "root"
listen = "127.0.0.11:8013"

[[node]]
name = "branch1"
serial = "FGVM01TM22000002"
listen = "127.0.0.12:8013"
"#;

    #[test]
    fn default_topology_parses() {
        let topology = parse(DEFAULT_TOML).expect("default.toml is valid");
        assert_eq!(topology.fabric.name, "default");
        assert_eq!(topology.fabric.voters, 5);
        assert_eq!(topology.raft, RaftSettings::default());
        let names: Vec<&str> = topology.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["root", "branch1", "branch2"]);
        let root = topology.root();
        assert_eq!(root.name, "root");
        assert_eq!(root.id, 1);
        assert_eq!(root.serial, "FGVM01TM22000001");
        assert_eq!(root.listen, "127.0.0.11:8013".parse().unwrap());
        assert_eq!(root.hostname, "FGT-root");
        let branch2 = topology.node("branch2").expect("branch2 exists");
        assert_eq!(branch2.id, 3);
        assert_eq!(branch2.role, Role::Member);
        assert_eq!(branch2.serial, "FGVM01TM22000003");
        assert_eq!(branch2.listen, "127.0.0.13:8013".parse().unwrap());
        assert_eq!(branch2.hostname, "FGT-branch2");
        assert_eq!(branch2.upstream, None);
        let members: Vec<&str> = topology.members().map(|n| n.name.as_str()).collect();
        assert_eq!(members, ["branch1", "branch2"]);
    }

    #[test]
    fn ten_node_topology_parses_as_a_tree() {
        let topology = parse(TEN_NODES_TOML).expect("ten-nodes.toml is valid");
        assert_eq!(topology.fabric.name, "ten");
        assert_eq!(topology.fabric.voters, 5);
        assert_eq!(topology.nodes.len(), 10);
        assert_eq!(topology.members().count(), 9);
        for (index, node) in topology.nodes.iter().enumerate() {
            assert_eq!(node.id, index as u64 + 1);
            let expected = SocketAddr::from(([127, 0, 0, 21 + index as u8], 8013));
            assert_eq!(node.listen, expected, "{}", node.name);
        }
        // Some member connects through another member, and every chain ends at the root.
        let through_members = topology
            .members()
            .filter(|m| m.upstream.as_deref().is_some_and(|up| up != "root"))
            .count();
        assert!(through_members >= 2, "the example should be a tree");
        for member in topology.members() {
            let mut at = member;
            for _ in 0..topology.nodes.len() {
                match &at.upstream {
                    Some(up) => at = topology.node(up).expect("upstream exists"),
                    None => break,
                }
            }
            assert!(
                at.role == Role::Root || at.upstream.is_none(),
                "{} does not reach the root",
                member.name
            );
        }
    }

    #[test]
    fn defaults_fill_what_the_file_leaves_out() {
        let text = r#"
[fabric]
name = "mini"

[[node]]
name = "a"
serial = "FGVM01TM22000001"
role = "root"
listen = "127.0.0.1:0"

[[node]]
name = "b"
serial = "FGVM01TM22000002"
listen = "127.0.0.2:0"
id = 10
hostname = "edge"

[[node]]
name = "c"
serial = "FGVM01TM22000003"
listen = "127.0.0.3:0"
upstream = "b"
"#;
        let topology = parse(text).expect("valid");
        assert_eq!(topology.source, Path::new(MEMORY_SOURCE));
        assert_eq!(topology.fabric.voters, DEFAULT_VOTERS);
        assert_eq!(topology.raft, RaftSettings::default());
        let ids: Vec<u64> = topology.nodes.iter().map(|n| n.id).collect();
        assert_eq!(ids, [1, 10, 3], "ids by position unless written");
        let hostnames: Vec<&str> = topology.nodes.iter().map(|n| n.hostname.as_str()).collect();
        assert_eq!(hostnames, ["FGT-a", "edge", "FGT-c"]);
        assert_eq!(topology.nodes[1].role, Role::Member, "role defaults to member");
        assert_eq!(topology.nodes[2].upstream.as_deref(), Some("b"));
        assert_eq!(topology.nodes[0].listen.port(), 0, "port 0 is kept");
    }

    #[test]
    fn raft_keys_override_defaults_one_by_one() {
        let text = format!("{SMALL}\n[raft]\nheartbeat_ms = 100\nkeep_logs = 7\n");
        let raft = parse(&text).expect("valid").raft;
        assert_eq!(
            raft,
            RaftSettings {
                heartbeat_ms: 100,
                keep_logs: 7,
                ..RaftSettings::default()
            }
        );
    }

    #[test]
    fn every_problem_of_a_bad_file_is_reported_on_its_line() {
        let text = r#"[fabric]
name = "my fabric"
voters = 0
colour = "red"

[raft]
heartbeat_ms = 1500
election_timeout_max_ms = 900
snapshot_every = 0

[[node]]
name = "root"
serial = "FGVM01TM22000001"
role = "root"
lisen = "127.0.0.11:8013"

[[node]]
name = "branch1"
serial = "fgvm01tm2200002"
role = "root"
listen = "10.0.0.12:8013"
upstream = "root"

[[node]]
name = "branch1"
serial = "FGVM01TM22000001"
listen = 8013
id = 2
upstream = "brnch2"

[[node]]
name = "a"
serial = "FGVM01TM22000004"
listen = "127.0.0.14:8013"
upstream = "b"

[[node]]
name = "b"
serial = "FGVM01TM22000005"
listen = "127.0.0.14:8013"
upstream = "a"

[[node]]
name = "c"
serial = "FGVM01TM22000006"
listen = "[::1]:8013"
upstream = "c"
hostname = "my host"

[[node]]
name = "d"
serial = "FGVM01TM22000007"
listen = "127.0.0.17:0"
rol = "member"

[[node]]
name = "e"
serial = "FGVM01TM22000008"
listen = "127.0.0.17:0"
flavour = 1
"#;
        assert_problems(
            text,
            &[
                (2, "fabric name \"my fabric\" may only use letters"),
                (3, "voters = 0"),
                (4, "unknown key \"colour\" in [fabric]"),
                (
                    7,
                    "election_timeout_min_ms (1000) must be greater than heartbeat_ms (1500)",
                ),
                (8, "election_timeout_max_ms (900) must be greater than"),
                (9, "snapshot_every = 0"),
                (11, "missing key \"listen\" in [[node]]"),
                (15, "unknown key \"lisen\" in [[node]]"),
                (19, "serial \"fgvm01tm2200002\" has 15 characters"),
                (
                    20,
                    "two nodes have role \"root\": \"root\" (line 14) and \"branch1\" (line 20)",
                ),
                (21, "listen \"10.0.0.12:8013\" is not a loopback address"),
                (22, "the root \"branch1\" has upstream"),
                (25, "two nodes are named \"branch1\": line 18 and line 25"),
                (
                    26,
                    "two nodes have serial \"FGVM01TM22000001\": \"root\" (line 13)",
                ),
                (
                    27,
                    "wrong value for \"listen\" in [[node]]: invalid type: integer",
                ),
                (28, "two nodes have id 2"),
                (29, "unreachable upstream \"brnch2\""),
                (35, "upstream chain \"a\" -> \"b\" -> \"a\" is a cycle"),
                (
                    40,
                    "two nodes listen on 127.0.0.14:8013: \"a\" (line 34) and \"b\" (line 40)",
                ),
                (46, "listen \"[::1]:8013\" is an IPv6 address"),
                (47, "\"c\" names itself as upstream"),
                (48, "hostname \"my host\" contains spaces"),
                (54, "unknown key \"rol\" in [[node]]"),
                (60, "unknown key \"flavour\" in [[node]]"),
            ],
        );
    }

    #[test]
    fn four_problems_render_with_fixes_and_a_count() {
        let text = r#"[fabric]
name = "lab"

[[node]]
name = "root"
serial = "FGVM01TM22000001"
role = "root"
listen = "127.0.0.11:8013"

[[node]]
name = "branch1"
serial = "FGVM01TM2200002"
role = "root"
lisen = "127.0.0.12:8013"
"#;
        let error = Topology::parse(text, Path::new("cluster-configs/bad.toml")).unwrap_err();
        let expected = r#"cluster-configs/bad.toml:10:1: missing key "listen" in [[node]]
    fix: add listen = "127.0.0.12:8013"
cluster-configs/bad.toml:12:10: serial "FGVM01TM2200002" has 15 characters (16 needed)
    fix: a FortiGate serial is 16 characters, A-Z and 0-9, starting with "FG"; e.g. serial = "FGVM01TM22000002"
cluster-configs/bad.toml:13:8: two nodes have role "root": "root" (line 7) and "branch1" (line 13)
    fix: a fabric has exactly one root; set role = "member" on "branch1"
cluster-configs/bad.toml:14:1: unknown key "lisen" in [[node]]
    fix: did you mean "listen"?
4 problems in cluster-configs/bad.toml"#;
        assert_eq!(error.to_string(), expected);
    }

    #[test]
    fn one_problem_is_counted_in_the_singular() {
        let text = SMALL.replace("role = \"root\"\n", "");
        let error = parse(&text).unwrap_err().to_string();
        assert!(error.ends_with("\n1 problem in <memory>"), "{error}");
        assert!(
            error.contains("<memory>:4:1: no node has role \"root\""),
            "{error}"
        );
        assert!(error.contains("e.g. \"root\" (line 4)"), "{error}");
    }

    #[test]
    fn syntax_errors_carry_their_position() {
        let text = "[fabric\nname = \"x\"\n[[node]]\nname = \"a\" \"b\"\n";
        let found = problems(text);
        assert_eq!(found.len(), 2, "{found:#?}");
        assert_eq!((found[0].line, found[0].column), (1, 8));
        assert_eq!((found[1].line, found[1].column), (4, 12));
        assert!(found.iter().all(|p| p.fix == "check the TOML syntax near here"));
    }

    #[test]
    fn unknown_keys_suggest_the_closest_or_list_the_valid_ones() {
        let text = SMALL.replace("listen = \"127.0.0.12", "lisen = \"127.0.0.12")
            + "wibble = 1\n\n[raft]\nheartbeat = 100\n\n[fabrik]\n";
        let found = problems(&text);
        let fix_for = |part: &str| {
            found
                .iter()
                .find(|p| p.message.contains(part))
                .map(|p| p.fix.clone())
                .unwrap_or_else(|| panic!("no problem about {part}: {found:#?}"))
        };
        assert_eq!(fix_for("\"lisen\""), "did you mean \"listen\"?");
        assert_eq!(
            fix_for("\"wibble\""),
            "valid keys in [[node]]: name, serial, role, listen, hostname, id, upstream"
        );
        assert_eq!(fix_for("\"heartbeat\""), "did you mean \"heartbeat_ms\"?");
        assert_eq!(fix_for("\"fabrik\" at the top level"), "did you mean [fabric]?");
    }

    #[test]
    fn a_key_at_the_top_level_is_pointed_to_its_table() {
        let text = format!("voters = 3\n{SMALL}");
        let found = problems(&text);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].line, 1);
        assert_eq!(found[0].message, "unknown key \"voters\" at the top level");
        assert!(found[0].fix.contains("belongs in [fabric]"), "{found:#?}");
    }

    #[test]
    fn missing_tables_and_wrong_shapes_are_explained() {
        assert_problems("", &[(1, "missing table [fabric]"), (1, "defines no [[node]]")]);
        assert_problems(
            "fabric = \"x\"\nnode = 3\n",
            &[
                (1, "\"fabric\" must be a table, found a string"),
                (2, "\"node\" must be an array of tables, found an integer"),
            ],
        );
        assert_problems(
            "[fabric]\nname = \"x\"\n[node]\nname = \"a\"\n",
            &[(3, "\"node\" must be an array of tables, found a table")],
        );
    }

    #[test]
    fn wrong_types_are_each_reported_with_an_example() {
        let text = SMALL
            .replace("name = \"lab\"", "name = \"lab\"\nvoters = \"five\"")
            .replace("role = \"root\"", "role = \"boss\"\nid = -1")
            + "hostname = 7\n";
        let found = problems(&text);
        let summary: Vec<(usize, &str)> = found.iter().map(|p| (p.line, p.fix.as_str())).collect();
        assert_eq!(
            summary,
            [
                (3, "write it like voters = 5"),
                (8, "write it like role = \"member\""),
                (9, "write it like id = 2"),
                (16, "write it like hostname = \"FGT-branch1\""),
            ],
            "{found:#?}"
        );
        // The root's role was rejected, so "no root" would only repeat that problem.
        assert!(!found.iter().any(|p| p.message.contains("no node has role")));
    }

    #[test]
    fn missing_required_keys_are_named_at_the_table_header() {
        let text = "[fabric]\nvoters = 3\n\n[[node]]\nrole = \"root\"\n";
        assert_problems(
            text,
            &[
                (1, "missing key \"name\" in [fabric]"),
                (4, "missing key \"name\" in [[node]]"),
                (4, "missing key \"serial\" in [[node]]"),
                (4, "missing key \"listen\" in [[node]]"),
            ],
        );
    }

    #[test]
    fn duplicate_ids_name_both_lines_and_port_zero_may_repeat() {
        let text = SMALL.replace("127.0.0.11:8013", "127.0.0.12:0").replace(
            "listen = \"127.0.0.12:8013\"",
            "listen = \"127.0.0.12:0\"\nid = 1",
        );
        let found = problems(&text);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].line, 14);
        assert_eq!(
            found[0].message,
            "two nodes have id 1: \"root\" (line 4, by position) and \"branch1\" (line 14)"
        );
        assert!(found[0].fix.contains("set id = 2 on \"branch1\""), "{found:#?}");
    }

    #[test]
    fn duplicate_listen_addresses_get_a_free_one_suggested() {
        let text = SMALL.replace("127.0.0.12:8013", "127.0.0.11:8013");
        let found = problems(&text);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(
            found[0].message,
            "two nodes listen on 127.0.0.11:8013: \"root\" (line 8) and \"branch1\" (line 13)"
        );
        assert!(
            found[0].fix.contains("listen = \"127.0.0.12:8013\""),
            "{found:#?}"
        );
    }

    #[test]
    fn upstream_chains_through_members_are_accepted() {
        let text = format!(
            "{SMALL}upstream = \"root\"\n\n[[node]]\nname = \"shop\"\nserial = \"FGVM01TM22000003\"\n\
             listen = \"127.0.0.13:8013\"\nupstream = \"branch1\"\n"
        );
        let topology = parse(&text).expect("valid");
        assert_eq!(
            topology.node("shop").unwrap().upstream.as_deref(),
            Some("branch1")
        );
    }

    #[test]
    fn an_unknown_upstream_without_a_close_name_suggests_the_root() {
        let text = format!("{SMALL}upstream = \"warehouse\"\n");
        let found = problems(&text);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].line, 14);
        assert!(found[0].message.starts_with("unreachable upstream \"warehouse\""));
        assert!(found[0].fix.contains("upstream = \"root\""), "{found:#?}");
    }

    #[test]
    fn a_cycle_is_reported_once_even_when_chains_lead_into_it() {
        let text = format!(
            "{SMALL}upstream = \"x\"\n\n[[node]]\nname = \"x\"\nserial = \"FGVM01TM22000003\"\n\
             listen = \"127.0.0.13:8013\"\nupstream = \"branch1\"\n\n[[node]]\nname = \"y\"\n\
             serial = \"FGVM01TM22000004\"\nlisten = \"127.0.0.14:8013\"\nupstream = \"x\"\n"
        );
        assert_problems(
            &text,
            &[(
                14,
                "upstream chain \"branch1\" -> \"x\" -> \"branch1\" is a cycle",
            )],
        );
    }

    #[test]
    fn load_reads_a_file_and_reports_one_it_cannot_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fabric.toml");
        std::fs::write(&path, SMALL).unwrap();
        let topology = Topology::load(&path).expect("valid");
        assert_eq!(topology.source, path);
        assert_eq!(topology.nodes.len(), 2);

        let missing = dir.path().join("absent.toml");
        match Topology::load(&missing) {
            Err(TopologyError::Read { path, source }) => {
                assert_eq!(path, missing);
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("expected a read error, got {other:?}"),
        }
    }

    #[test]
    fn schema_examples_are_values_the_tables_accept() {
        for section in SECTIONS {
            let mut text = format!("{}\n", section.header());
            for key in section.keys {
                text.push_str(&format!("{} = {}\n", key.name, key.example));
            }
            let mut reader = Reader::new(&text);
            let document = DeTable::parse(&text).unwrap().into_inner();
            match section.key {
                "fabric" => drop(reader.one::<FabricTable>(&document, section)),
                "raft" => drop(reader.one::<RaftTable>(&document, section)),
                "node" => drop(reader.many::<NodeTable>(&document, section)),
                other => panic!("section {other} has no test"),
            }
            assert!(reader.problems.is_empty(), "{text}{:#?}", reader.problems);
        }
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let reader = Reader::new("é = 1\n  ü = 2\n");
        assert_eq!(reader.position(0), (1, 1));
        assert_eq!(reader.position("é = 1\n  ".len()), (2, 3));
        assert_eq!(reader.position("é = 1\n  ü".len()), (2, 4));
    }

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(edit_distance("lisen", "listen"), 1);
        assert_eq!(edit_distance("listen", "listen"), 0);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("serail", "serial"), 2);
    }

    #[test]
    fn role_displays_as_written_in_the_file() {
        assert_eq!(Role::Root.to_string(), "root");
        assert_eq!(Role::Member.to_string(), "member");
    }
}
