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
//! `[[forticloud.contract]]` entries), `[dns]`, `[checks]` and `[bootstrap]`;
//! `cluster-configs/default.toml` shows and explains most of them.
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
//!    file-layer structs (`FabricTable`, `RaftTable`, `NodeTable`, `EmsTable`,
//!    `ForticloudTable`, `ContractTable`, `ChecksTable`, `BootstrapTable`), whose fields
//!    keep their spans. `[dns]` is the one table whose keys are not a fixed set (they are
//!    the names it resolves), so `Reader::dns` walks it by hand. `[[forticloud.contract]]`
//!    is an array of tables inside `[forticloud]`: its `Section` names that parent, and
//!    `Reader::many` reads it from the parent table instead of the document.
//! 3. **Meaning.** Rules that span fields or tables: names, serials, hostnames and
//!    addresses well formed, exactly one root, no duplicates, every `upstream` chain ending
//!    at the root, Raft timings in a workable order, every serial an EMS authorizes or
//!    FortiCloud knows naming a node, contract dates that are dates, and every `[dns]` name
//!    of an EMS, of FortiCloud or of EMS Cloud pointing at that server. FortiCloud's and EMS
//!    Cloud's names resolve without a `[dns]` entry: they are added to [`Topology::dns`].
//!
//! Adding a table takes a file-layer struct, a `Section` constant listed in `SECTIONS`,
//! one call to `Reader::one` or `Reader::many`, and its rules.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::domain::{
    CONTRACT_TYPES, DEFAULT_EMS_SITE, EMS_CAPABILITIES, EMS_CLOUD_HOSTNAME, EMS_CLOUD_NAME, EMS_CLOUD_SERIAL,
    EMS_SERIAL_DIGITS, EMS_SERIAL_PREFIX, FABRIC_PORT, FCEM_CONTRACT, FORTICLOUD_HOSTNAME, MAX_ACCOUNT_LEN,
    MAX_DNS_LABEL_LEN, MAX_DNS_NAME_LEN, MAX_HOSTNAME_LEN, MAX_NAME_LEN, SERIAL_LEN, SERIAL_PREFIX,
    is_ems_serial, is_name_char, is_serial, parse_contract_date,
};

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
/// A node's hostname, when not given, is this prefix and the node name, as in `FGT-root`.
pub const DEFAULT_HOSTNAME_PREFIX: &str = "FGT-";
/// The [`Topology::source`] of a topology parsed from text that came from no file.
pub const MEMORY_SOURCE: &str = "<memory>";
/// The FortiCloud account when `[forticloud] account` is not given.
pub const DEFAULT_FORTICLOUD_ACCOUNT: &str = "admin@lab.example";
/// Serials this module suggests are this prefix and a six-digit number.
const SUGGESTED_SERIAL_PREFIX: &str = "FGVM01TM22";
/// Port this module suggests in EMS addresses: the one the example topologies use, since
/// the EMS default of 443 needs privileges to bind.
const SUGGESTED_EMS_PORT: u16 = 8443;
/// Address this module suggests for an EMS (and its `[dns]` names): the one the default
/// topology gives its EMS.
const SUGGESTED_EMS_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 31);
/// EMS serials this module suggests are this prefix and a six-digit number.
const SUGGESTED_EMS_SERIAL_PREFIX: &str = "FCTEMS8822";
/// The hostname this module suggests when nothing of the written one can be kept.
const SUGGESTED_EMS_HOSTNAME: &str = "ems.lab.example";
/// The site name this module suggests when nothing of the written one can be kept.
const SUGGESTED_SITE: &str = "SiteA";
/// Address this module suggests for the FortiCloud API: the one `[forticloud]` examples use.
const SUGGESTED_FORTICLOUD_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 35);
/// Address this module suggests for the EMS Cloud server.
const SUGGESTED_EMS_CLOUD_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 36);
/// The contract end date this module suggests.
const SUGGESTED_CONTRACT_DATE: &str = "2027-12-31";
/// Most node serials a fix lists, so that a fix stays one line in a large fabric.
const MAX_LISTED_SERIALS: usize = 5;
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
    /// Simulated FortiClient EMS servers: the `[[ems]]` tables, in file order.
    pub ems: Vec<EmsSpec>,
    /// The simulated FortiCloud account and its EMS Cloud server: the `[forticloud]`
    /// table, `None` when the file has none.
    pub forticloud: Option<ForticloudSpec>,
    /// The name table nodes consult before the system resolver: the `[dns]` table,
    /// lowercase FQDN to address, plus [`FORTICLOUD_HOSTNAME`] and [`EMS_CLOUD_HOSTNAME`]
    /// when `[forticloud]` is given.
    pub dns: BTreeMap<String, IpAddr>,
    /// How often and how the nodes check their EMS connectors: the `[checks]` table.
    pub checks: CheckSettings,
    /// CLI lines the root runs once, on the fabric's first start: `[bootstrap] root = [...]`.
    /// Questions (`(y/n)`) are answered with `y`.
    pub bootstrap: Vec<String>,
    /// The file the topology was read from, or [`MEMORY_SOURCE`].
    pub source: PathBuf,
}

/// One simulated FortiClient EMS server: an `[[ems]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmsSpec {
    /// Name used on the command line (`fabricsim ems NAME ...`); letters, digits, `-`, `_`.
    pub name: String,
    /// EMS serial number: `FCTEMS` followed by 10 digits, e.g. `FCTEMS8822001234`.
    pub serial: String,
    /// The EMS's own FQDN: its certificate's subject CN and SAN (and `*.<hostname>` for
    /// multitenant servers, whose sites are `<site>.<hostname>`).
    pub hostname: String,
    /// HTTPS address on loopback IPv4; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Which certificate the EMS presents.
    pub certificate: CertProfile,
    /// Multitenancy: the site names (`Default` is always one of them when any are given).
    /// Empty means a single-tenant EMS.
    pub sites: Vec<String>,
    /// FortiGate serials authorized under *Administration > Fabric Devices* from the start;
    /// others register as pending.
    pub authorized: Vec<String>,
    /// Capabilities the EMS reports; default all of them.
    pub capabilities: Vec<String>,
    /// False for an EMS that accepts TCP connections and never answers.
    pub respond: bool,
}

/// The FortiCloud account the fabric's FortiGates can be registered to, and the EMS Cloud
/// server that comes with it: the `[forticloud]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForticloudSpec {
    /// The account's email address; default [`DEFAULT_FORTICLOUD_ACCOUNT`].
    pub account: String,
    /// The FortiCloud API's HTTPS address on loopback IPv4 (named [`FORTICLOUD_HOSTNAME`]);
    /// port 0 picks a free port.
    pub listen: SocketAddr,
    /// The EMS Cloud server's HTTPS address on loopback IPv4 (named
    /// [`EMS_CLOUD_HOSTNAME`]); port 0 picks a free port.
    pub ems_listen: SocketAddr,
    /// Serials of the nodes registered to the account from the start, each once.
    pub registered: Vec<String>,
    /// Contracts held from the start, in file order; at most one per serial and type.
    pub contracts: Vec<ContractSpec>,
}

impl ForticloudSpec {
    /// The EMS Cloud server as an [`EmsSpec`]: named [`EMS_CLOUD_NAME`], serial
    /// [`EMS_CLOUD_SERIAL`], hostname [`EMS_CLOUD_HOSTNAME`], on `ems_listen`, with a
    /// [`CertProfile::Public`] certificate, single-tenant, every capability. Its
    /// `authorized` list is empty: FortiCloud decides which FortiGates it serves.
    pub fn ems_cloud(&self) -> EmsSpec {
        EmsSpec {
            name: EMS_CLOUD_NAME.to_owned(),
            serial: EMS_CLOUD_SERIAL.to_owned(),
            hostname: EMS_CLOUD_HOSTNAME.to_owned(),
            listen: self.ems_listen,
            certificate: CertProfile::Public,
            sites: Vec::new(),
            authorized: Vec::new(),
            capabilities: EMS_CAPABILITIES.iter().map(|c| (*c).to_owned()).collect(),
            respond: true,
        }
    }
}

/// A contract FortiCloud holds for one FortiGate: a `[[forticloud.contract]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractSpec {
    /// The FortiGate's serial; it names a node.
    pub serial: String,
    /// The contract type, one of [`CONTRACT_TYPES`] (the file's `type` key).
    pub kind: String,
    /// The last day of the contract, `YYYY-MM-DD`.
    pub expires: String,
}

/// The certificate a simulated EMS presents; [`CertProfile::Trusted`] when not given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertProfile {
    /// Signed by the fabric CA, which every node trusts.
    #[default]
    Trusted,
    /// Signed by a CA no node trusts (FortiOS: "certificate not trusted").
    Untrusted,
    /// Self-signed.
    SelfSigned,
    /// Signed by the fabric CA but past its validity.
    Expired,
    /// Signed by the fabric CA for another hostname.
    WrongHost,
    /// Signed by the public root CA every node trusts out of the box, as EMS Cloud's and
    /// FortiCloud's are.
    Public,
}

impl fmt::Display for CertProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CertProfile::Trusted => "trusted",
            CertProfile::Untrusted => "untrusted",
            CertProfile::SelfSigned => "self-signed",
            CertProfile::Expired => "expired",
            CertProfile::WrongHost => "wrong-host",
            CertProfile::Public => "public",
        })
    }
}

/// EMS reachability checks: the `[checks]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSettings {
    /// Seconds between two check rounds on each node (besides the rounds a configuration
    /// change or `diagnose endpoint fctems test-connectivity` starts).
    pub interval_secs: u64,
}

/// Default seconds between EMS check rounds.
pub const DEFAULT_CHECK_INTERVAL_SECS: u64 = 30;
/// Fewest seconds between EMS check rounds: zero would start one round after another
/// without pause.
pub const MIN_CHECK_INTERVAL_SECS: u64 = 1;

impl Default for CheckSettings {
    fn default() -> Self {
        CheckSettings {
            interval_secs: DEFAULT_CHECK_INTERVAL_SECS,
        }
    }
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

    /// The simulated EMS server called `name`, if there is one.
    pub fn ems_server(&self, name: &str) -> Option<&EmsSpec> {
        self.ems.iter().find(|ems| ems.name == name)
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
    /// The key of the table in its parent, e.g. `node` for `[[node]]`.
    key: &'static str,
    /// The table holding this one: `None` for the top level, `Some("forticloud")` for
    /// `[[forticloud.contract]]`.
    parent: Option<&'static str>,
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
    /// The table header as a person writes it: `[fabric]`, `[[node]]` or
    /// `[[forticloud.contract]]`.
    fn header(&self) -> String {
        let path = match self.parent {
            Some(parent) => format!("{parent}.{}", self.key),
            None => self.key.to_owned(),
        };
        if self.repeated {
            format!("[[{path}]]")
        } else {
            format!("[{path}]")
        }
    }
}

/// `[fabric]`: required, for the fabric name.
const FABRIC: Section = Section {
    key: "fabric",
    parent: None,
    repeated: false,
    required: true,
    keys: &[required("name", "\"default\""), optional("voters", "5")],
};

/// `[raft]`: optional, every key has a default.
const RAFT: Section = Section {
    key: "raft",
    parent: None,
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
    parent: None,
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

/// `[[ems]]`: one per simulated EMS server; a fabric may have none.
const EMS: Section = Section {
    key: "ems",
    parent: None,
    repeated: true,
    required: false,
    keys: &[
        required("name", "\"ems1\""),
        required("serial", "\"FCTEMS8822001234\""),
        required("hostname", "\"ems.lab.example\""),
        required("listen", "\"127.0.0.31:8443\""),
        optional("certificate", "\"trusted\""),
        optional("sites", "[\"Default\", \"SiteA\"]"),
        optional("authorized", "[\"FGVM01TM22000001\"]"),
        optional("capabilities", "[\"fabric-auth\", \"websocket\"]"),
        optional("respond", "true"),
    ],
};

/// `[forticloud]`: optional; the FortiCloud account and its EMS Cloud server. `contract`
/// is listed so the table accepts it; its entries are read through [`CONTRACT`].
const FORTICLOUD: Section = Section {
    key: "forticloud",
    parent: None,
    repeated: false,
    required: false,
    keys: &[
        optional("account", "\"admin@lab.example\""),
        required("listen", "\"127.0.0.35:0\""),
        required("ems_listen", "\"127.0.0.36:0\""),
        optional("registered", "[\"FGVM01TM22000001\"]"),
        optional(
            "contract",
            "[{ serial = \"FGVM01TM22000001\", type = \"FCEM\", expires = \"2027-12-31\" }]",
        ),
    ],
};

/// `[[forticloud.contract]]`: one per contract FortiCloud holds; none by default.
const CONTRACT: Section = Section {
    key: "contract",
    parent: Some("forticloud"),
    repeated: true,
    required: false,
    keys: &[
        required("serial", "\"FGVM01TM22000001\""),
        required("type", "\"FCEM\""),
        required("expires", "\"2027-12-31\""),
    ],
};

/// `[dns]`: optional. Its keys are the names it resolves, not a fixed set, so `keys` is
/// empty and `Reader::dns` reads it.
const DNS: Section = Section {
    key: "dns",
    parent: None,
    repeated: false,
    required: false,
    keys: &[],
};

/// `[checks]`: optional, every key has a default.
const CHECKS: Section = Section {
    key: "checks",
    parent: None,
    repeated: false,
    required: false,
    keys: &[optional("interval_secs", "30")],
};

/// `[bootstrap]`: optional, the CLI lines run on the fabric's first start.
const BOOTSTRAP: Section = Section {
    key: "bootstrap",
    parent: None,
    repeated: false,
    required: false,
    keys: &[optional(
        "root",
        "[\"config endpoint-control fctems\", \"edit ems1\", \"end\"]",
    )],
};

/// The arrays of tables that live inside a table of [`SECTIONS`].
const NESTED_SECTIONS: &[&Section] = &[&CONTRACT];

/// Every table the file may contain at the top level.
const SECTIONS: &[&Section] = &[
    &FABRIC,
    &RAFT,
    &NODE,
    &EMS,
    &FORTICLOUD,
    &DNS,
    &CHECKS,
    &BOOTSTRAP,
];

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

/// One `[[ems]]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmsTable {
    /// Name used on the command line (`fabricsim ems NAME`). Letters, digits, `-` and `_`,
    /// at most [`MAX_NAME_LEN`] characters, unique among the EMS servers. Required.
    name: Option<Spanned<String>>,
    /// EMS serial: [`EMS_SERIAL_PREFIX`] and [`EMS_SERIAL_DIGITS`] digits. Required.
    serial: Option<Spanned<String>>,
    /// The EMS's FQDN, its certificate's CN; kept in lowercase. Required.
    hostname: Option<Spanned<String>>,
    /// HTTPS address, `ip:port` on loopback IPv4, shared with no node and no other EMS;
    /// port 0 picks a free port. Required.
    listen: Option<Spanned<String>>,
    /// Which certificate the EMS presents. Default [`CertProfile::Trusted`].
    certificate: Option<Spanned<CertProfile>>,
    /// Site names of a multitenant EMS; [`DEFAULT_EMS_SITE`] is added first when missing.
    /// Default: none, a single-tenant EMS.
    sites: Option<Vec<Spanned<String>>>,
    /// Serials of the nodes the EMS authorizes from the start. Default: none.
    authorized: Option<Vec<Spanned<String>>>,
    /// Capabilities the EMS reports, out of [`EMS_CAPABILITIES`]. Default: all of them.
    capabilities: Option<Vec<Spanned<String>>>,
    /// `false` for an EMS that accepts connections and never answers. Default `true`.
    respond: Option<Spanned<bool>>,
}

/// `[forticloud]` as written; the whole table is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ForticloudTable {
    /// The account's email address, at most [`MAX_ACCOUNT_LEN`] characters. Default
    /// [`DEFAULT_FORTICLOUD_ACCOUNT`].
    account: Option<Spanned<String>>,
    /// The FortiCloud API's HTTPS address, `ip:port` on loopback IPv4, shared with no node,
    /// no EMS and not with `ems_listen`; port 0 picks a free port. Required.
    listen: Option<Spanned<String>>,
    /// The EMS Cloud server's HTTPS address, under the same rules as `listen`. Required.
    ems_listen: Option<Spanned<String>>,
    /// Serials of the nodes registered to the account from the start. Default: none.
    registered: Option<Vec<Spanned<String>>>,
    /// The `[[forticloud.contract]]` entries: accepted here whatever their shape and read
    /// as [`ContractTable`]s on their own, so that each entry's keys are checked like any
    /// table's.
    #[serde(rename = "contract")]
    _contract: Option<IgnoredAny>,
}

/// One `[[forticloud.contract]]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContractTable {
    /// Serial of the node the contract is for. Required.
    serial: Option<Spanned<String>>,
    /// The contract type, one of [`CONTRACT_TYPES`]. Required.
    #[serde(rename = "type")]
    kind: Option<Spanned<String>>,
    /// The contract's last day, `YYYY-MM-DD`, quoted or as a TOML date. Required.
    expires: Option<Spanned<WrittenDate>>,
}

/// A contract date as written: a string, or a TOML date (`expires = 2027-12-31`), which a
/// person writing TOML may well reach for.
#[derive(Debug)]
enum WrittenDate {
    /// `expires = "2027-12-31"`.
    Text(String),
    /// `expires = 2027-12-31`, or a date and time.
    Toml(toml::value::Datetime),
}

impl<'de> Deserialize<'de> for WrittenDate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DateVisitor;
        impl<'de> serde::de::Visitor<'de> for DateVisitor {
            type Value = WrittenDate;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a date written \"YYYY-MM-DD\"")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<WrittenDate, E> {
                Ok(WrittenDate::Text(text.to_owned()))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<WrittenDate, A::Error> {
                // TOML hands dates to serde as a one-entry map that `Datetime` reads.
                toml::value::Datetime::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(WrittenDate::Toml)
            }
        }
        deserializer.deserialize_any(DateVisitor)
    }
}

/// `[checks]` as written; the whole table is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChecksTable {
    /// Seconds between EMS check rounds on each node. Default
    /// [`DEFAULT_CHECK_INTERVAL_SECS`], at least [`MIN_CHECK_INTERVAL_SECS`].
    interval_secs: Option<Spanned<u64>>,
}

/// `[bootstrap]` as written; the whole table is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BootstrapTable {
    /// CLI lines the root runs once, on the fabric's first start, each a single line.
    /// Default: none.
    root: Option<Vec<Spanned<String>>>,
}

/// One `[dns]` entry as written: a name and the text of its address.
struct DnsEntry {
    /// The name as written (any case).
    name: Spanned<String>,
    /// The address as written.
    address: Spanned<String>,
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

/// One `[[ems]]` on its way to an [`EmsSpec`]: the table, where it is, and what its values
/// turned out to be.
struct EmsDraft {
    /// Line of the `[[ems]]` header.
    header_line: usize,
    table: EmsTable,
    /// The `listen` address, when it parsed.
    listen: Option<SocketAddr>,
    /// The hostname in lowercase, when it is a well-formed name.
    hostname: Option<String>,
    /// The well-formed sites, [`DEFAULT_EMS_SITE`] added when sites were given.
    sites: Vec<String>,
    /// The well-formed authorized serials, each once.
    authorized: Vec<String>,
    /// The known capabilities, in the order of [`EMS_CAPABILITIES`].
    capabilities: Vec<String>,
}

impl EmsDraft {
    fn name(&self) -> Option<&str> {
        self.table.name.as_ref().map(|name| name.get_ref().as_str())
    }

    /// How problems refer to this EMS: `EMS "ems1"`, or its header when it has no name.
    fn label(&self) -> String {
        match self.name() {
            Some(name) => format!("EMS \"{name}\""),
            None => format!("the [[ems]] at line {}", self.header_line),
        }
    }

    /// The finished EMS; `None` while a required value is missing or unusable.
    fn spec(&self) -> Option<EmsSpec> {
        Some(EmsSpec {
            name: self.name()?.to_string(),
            serial: self.table.serial.as_ref()?.get_ref().clone(),
            hostname: self.hostname.clone()?,
            listen: self.listen?,
            certificate: self
                .table
                .certificate
                .as_ref()
                .map_or_else(CertProfile::default, |certificate| *certificate.get_ref()),
            sites: self.sites.clone(),
            authorized: self.authorized.clone(),
            capabilities: self.capabilities.clone(),
            respond: self
                .table
                .respond
                .as_ref()
                .is_none_or(|respond| *respond.get_ref()),
        })
    }
}

/// How a key holding node serials speaks of them in problems.
struct SerialUse {
    /// The key, e.g. `authorized`.
    key: &'static str,
    /// What one serial is called in messages, e.g. "authorized serial".
    what: &'static str,
    /// Why the serial must name a node, said after a suggested one.
    why: &'static str,
}

/// `[[ems]] authorized`.
const AUTHORIZED_SERIALS: SerialUse = SerialUse {
    key: "authorized",
    what: "authorized serial",
    why: "an EMS authorizes nodes by serial",
};

/// `[forticloud] registered`.
const REGISTERED_SERIALS: SerialUse = SerialUse {
    key: "registered",
    what: "registered serial",
    why: "FortiCloud registers nodes by serial",
};

/// `[[forticloud.contract]] serial`.
const CONTRACT_SERIAL: SerialUse = SerialUse {
    key: "serial",
    what: "contract serial",
    why: "FortiCloud holds contracts for nodes by serial",
};

/// A server a `[dns]` name belongs to, as problems about that name describe it.
struct Served {
    /// `site "SiteA" of EMS "ems1"`, `the hostname of EMS "ems1"`, `the name of FortiCloud`.
    what: String,
    /// The address it listens on.
    ip: IpAddr,
    /// The line of its `listen` key.
    listen_line: usize,
}

/// `[forticloud]` on its way to a [`ForticloudSpec`]: what its values turned out to be.
struct ForticloudDraft {
    /// The API address as parsed, with the span of its value.
    listen: Option<(SocketAddr, Span)>,
    /// The EMS Cloud address as parsed, with the span of its value.
    ems_listen: Option<(SocketAddr, Span)>,
    /// The finished table; `None` while a value is missing or unusable (and reported).
    spec: Option<ForticloudSpec>,
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
            bootstrap,
            source: source.to_path_buf(),
        })
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
            let fix = if let Some(nested) = NESTED_SECTIONS.iter().find(|section| section.key == name) {
                format!("write the header {} instead", nested.header())
            } else if !owners.is_empty() {
                format!(
                    "\"{name}\" belongs in {}; move it below that table's header",
                    owners.join(" or ")
                )
            } else if name.contains('.') && fqdn_fault(name).is_none() {
                format!(
                    "names to resolve belong in {}; move the line below that header",
                    DNS.header()
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
        let (header, table) = self.section_table(document, section)?;
        Some(self.table(section, header, table))
    }

    /// The span and contents of a single table; `None` when it is absent (reported when the
    /// section is required) or not a table (reported).
    fn section_table<'d, 'i>(
        &mut self,
        document: &'d DeTable<'i>,
        section: &Section,
    ) -> Option<(Span, &'d DeTable<'i>)> {
        let Some((key, value)) = document.get_key_value(section.key) else {
            if section.required {
                self.missing_section(section);
            }
            return None;
        };
        match value.get_ref() {
            DeValue::Table(table) => Some((value.span(), table)),
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

    /// The entries of `[dns]` whose value is a string, in any order; none when the table is
    /// absent or not a table. A value of another type is reported, and so is a name that
    /// TOML split into nested tables because it was written without quotes.
    fn dns(&mut self, document: &DeTable<'_>) -> Vec<DnsEntry> {
        let Some((_, table)) = self.section_table(document, &DNS) else {
            return Vec::new();
        };
        let mut entries = Vec::new();
        for (key, value) in table.iter() {
            let name = key.get_ref().as_ref();
            match value.get_ref() {
                DeValue::String(address) => entries.push(DnsEntry {
                    name: Spanned::new(key.span(), name.to_string()),
                    address: Spanned::new(value.span(), address.to_string()),
                }),
                DeValue::Table(nested) => {
                    let mut leaves = Vec::new();
                    dotted_leaves(name, key.span(), nested, &mut leaves);
                    for (dotted, key_span, value_span) in leaves {
                        let written = value_span
                            .and_then(|span| self.text.get(span))
                            .map_or_else(|| format!("\"{SUGGESTED_EMS_IP}\""), str::to_string);
                        let start = self.first_on_line(key_span.start);
                        self.report(
                            &(start..start),
                            format!(
                                "the name {dotted} in {} is not quoted, so TOML reads it as \
                                 nested tables split at the dots",
                                DNS.header()
                            ),
                            format!("quote the name: \"{dotted}\" = {written}"),
                        );
                    }
                }
                other => self.report(
                    &value.span(),
                    format!(
                        "wrong value for \"{name}\" in {}: found {}, expected an IPv4 address \
                         as a string",
                        DNS.header(),
                        article(other.type_str())
                    ),
                    format!("write it like \"{name}\" = \"{SUGGESTED_EMS_IP}\""),
                ),
            }
        }
        entries
    }

    /// `[forticloud]` and its `[[forticloud.contract]]` entries; `None` when the table is
    /// absent or not a table (which is reported).
    fn forticloud(
        &mut self,
        document: &DeTable<'_>,
    ) -> Option<(Read<ForticloudTable>, Vec<Read<ContractTable>>)> {
        let (header, table) = self.section_table(document, &FORTICLOUD)?;
        let read = self.table::<ForticloudTable>(&FORTICLOUD, header, table);
        let contracts = self.many::<ContractTable>(table, &CONTRACT).unwrap_or_default();
        Some((read, contracts))
    }

    /// Byte offset of the first character on the line of `offset` that is not white space.
    fn first_on_line(&self, offset: usize) -> usize {
        let line = self.line(&(offset..offset));
        let start = self.line_starts[line - 1];
        let indent = self.text[start..]
            .chars()
            .take_while(|c| *c == ' ' || *c == '\t')
            .map(char::len_utf8)
            .sum::<usize>();
        start + indent
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

    /// Per-node rules; the nodes on their way to [`NodeSpec`]s, or `None` when there are
    /// none or `[[node]]` is not an array of tables.
    fn node_drafts(&mut self, nodes: Option<Vec<Read<NodeTable>>>) -> Option<Vec<NodeDraft>> {
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
        Some(drafts)
    }

    /// The rules between nodes; the nodes when all hold.
    fn nodes(&mut self, drafts: &[NodeDraft]) -> Option<Vec<NodeSpec>> {
        self.check_roots(drafts);
        self.check_duplicates(drafts);
        self.check_upstreams(drafts);
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
        let example = SocketAddr::from(([127, 0, 0, 12], FABRIC_PORT));
        node.listen
            .as_ref()
            .and_then(|listen| self.check_listen(listen, "nodes", example))
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
        let faults = serial_faults(value);
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

    /// Parses a `listen` address and holds it to loopback IPv4; `who` ("nodes") and
    /// `example` make the fixes fit the table.
    fn check_listen(
        &mut self,
        listen: &Spanned<String>,
        who: &str,
        example: SocketAddr,
    ) -> Option<SocketAddr> {
        self.check_address("listen", listen, who, example)
    }

    /// [`check_listen`](Self::check_listen) for an address under another key, such as
    /// `ems_listen`.
    fn check_address(
        &mut self,
        key: &str,
        listen: &Spanned<String>,
        who: &str,
        example: SocketAddr,
    ) -> Option<SocketAddr> {
        let value = listen.get_ref();
        let address = match value.parse::<SocketAddr>() {
            Ok(address) => address,
            Err(_) => {
                self.report(
                    &listen.span(),
                    format!("{key} \"{value}\" is not an IPv4 address and port"),
                    format!(
                        "write ip:port on loopback, e.g. {key} = \"{example}\" (port 0 picks a free port)"
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
                    format!("{key} \"{value}\" is not a loopback address"),
                    format!("{who} listen on 127.0.0.0/8 only; e.g. {key} = \"{suggestion}\""),
                );
                None
            }
            IpAddr::V6(_) => {
                self.report(
                    &listen.span(),
                    format!("{key} \"{value}\" is an IPv6 address"),
                    format!(
                        "{who} listen on loopback IPv4 (127.0.0.0/8); e.g. {key} = \"127.0.0.1:{}\"",
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
                            unused_name(
                                name.get_ref(),
                                &drafts.iter().filter_map(NodeDraft::name).collect::<Vec<_>>()
                            )
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

    /// Per-EMS rules, then the rules between EMS servers and nodes; the EMS servers on
    /// their way to [`EmsSpec`]s, or `None` when `[[ems]]` is not an array of tables.
    /// `nodes` is `None` when the nodes could not be read, which quiets the rules that
    /// compare with them.
    fn ems_drafts(
        &mut self,
        ems: Option<Vec<Read<EmsTable>>>,
        nodes: Option<&[NodeDraft]>,
    ) -> Option<Vec<EmsDraft>> {
        let ems = ems?;
        let serials: Vec<String> = ems
            .iter()
            .filter_map(|read| read.table.serial.as_ref())
            .map(|serial| serial.get_ref().clone())
            .collect();
        let serials: HashSet<&str> = serials.iter().map(String::as_str).collect();
        let node_serials: Option<Vec<&str>> = nodes.map(|drafts| {
            drafts
                .iter()
                .filter_map(|draft| draft.table.serial.as_ref())
                .map(|serial| serial.get_ref().as_str())
                .collect()
        });
        let example = SocketAddr::from((SUGGESTED_EMS_IP, SUGGESTED_EMS_PORT));
        let mut drafts = Vec::new();
        for read in ems {
            let table = read.table;
            if let Some(name) = &table.name {
                self.check_name("EMS name", "ems1", name);
            }
            if let Some(serial) = &table.serial {
                self.check_ems_serial(serial, &serials);
            }
            let hostname = table
                .hostname
                .as_ref()
                .and_then(|hostname| self.check_ems_hostname(hostname));
            let listen = table
                .listen
                .as_ref()
                .and_then(|listen| self.check_listen(listen, "EMS servers", example));
            let sites = table
                .sites
                .as_deref()
                .map_or_else(Vec::new, |sites| self.ems_sites(sites));
            let authorized = table.authorized.as_deref().map_or_else(Vec::new, |authorized| {
                self.node_serial_list(&AUTHORIZED_SERIALS, authorized, node_serials.as_deref())
            });
            let capabilities = match table.capabilities.as_deref() {
                Some(capabilities) => self.ems_capabilities(capabilities),
                None => EMS_CAPABILITIES.iter().map(|c| c.to_string()).collect(),
            };
            drafts.push(EmsDraft {
                header_line: self.line(&read.header),
                table,
                listen,
                hostname,
                sites,
                authorized,
                capabilities,
            });
        }
        self.check_ems_duplicates(&drafts, nodes.unwrap_or_default());
        Some(drafts)
    }

    fn check_ems_serial(&mut self, serial: &Spanned<String>, used: &HashSet<&str>) {
        let value = serial.get_ref();
        let length = value.chars().count();
        let needed = EMS_SERIAL_PREFIX.len() + EMS_SERIAL_DIGITS;
        let mut faults = Vec::new();
        if length != needed {
            faults.push(format!("has {length} characters ({needed} needed)"));
        }
        match value.strip_prefix(EMS_SERIAL_PREFIX) {
            None => faults.push(format!("does not start with \"{EMS_SERIAL_PREFIX}\"")),
            Some(rest) if !rest.chars().all(|c| c.is_ascii_digit()) => faults.push(format!(
                "has characters other than digits after \"{EMS_SERIAL_PREFIX}\""
            )),
            Some(_) => {}
        }
        if faults.is_empty() {
            return;
        }
        let upper = value.to_ascii_uppercase();
        let example = if is_ems_serial(&upper) && !used.contains(upper.as_str()) {
            upper
        } else {
            unused_ems_serial(used)
        };
        self.report(
            &serial.span(),
            format!("EMS serial \"{value}\" {}", faults.join(", ")),
            format!(
                "an EMS serial is \"{EMS_SERIAL_PREFIX}\" followed by {EMS_SERIAL_DIGITS} digits; \
                 e.g. serial = \"{example}\""
            ),
        );
    }

    /// The hostname in lowercase when it is a well-formed DNS name; reported otherwise.
    fn check_ems_hostname(&mut self, hostname: &Spanned<String>) -> Option<String> {
        let value = hostname.get_ref();
        match fqdn_fault(value) {
            None => Some(value.to_ascii_lowercase()),
            Some(fault) => {
                self.report(
                    &hostname.span(),
                    format!("EMS hostname \"{value}\" {fault}"),
                    format!(
                        "write a DNS name of {}, e.g. hostname = \"{}\"",
                        fqdn_rule(),
                        fqdn_suggestion(value)
                    ),
                );
                None
            }
        }
    }

    /// The well-formed sites, each once, with [`DEFAULT_EMS_SITE`] added first when it is
    /// missing; an empty list stays empty (a single-tenant EMS).
    fn ems_sites(&mut self, sites: &[Spanned<String>]) -> Vec<String> {
        let mut seen: HashMap<String, &Spanned<String>> = HashMap::new();
        let mut kept = Vec::new();
        for site in sites {
            let value = site.get_ref();
            let length = value.chars().count();
            let fault = if value.is_empty() {
                Some("is empty".to_string())
            } else if length > MAX_DNS_LABEL_LEN {
                Some(format!(
                    "has {length} characters (at most {MAX_DNS_LABEL_LEN}, as it is the first \
                     label of <site>.<hostname>)"
                ))
            } else if !value.chars().all(is_name_char) {
                Some("may only use letters, digits, \"-\" and \"_\"".to_string())
            } else {
                None
            };
            if let Some(fault) = fault {
                let cleaned: String = value
                    .chars()
                    .map(|c| if is_name_char(c) { c } else { '-' })
                    .take(MAX_DNS_LABEL_LEN)
                    .collect();
                let cleaned = cleaned.trim_matches('-');
                let suggestion = if cleaned.is_empty() {
                    SUGGESTED_SITE
                } else {
                    cleaned
                };
                self.report(
                    &site.span(),
                    format!("site name \"{value}\" {fault}"),
                    format!(
                        "write a site name of 1 to {MAX_DNS_LABEL_LEN} letters, digits, \"-\" and \
                         \"_\", e.g. \"{suggestion}\""
                    ),
                );
                continue;
            }
            let folded = value.to_ascii_lowercase();
            if let Some(first) = seen.get(&folded) {
                let first_line = self.line(&first.span());
                let message = if first.get_ref() == value {
                    format!(
                        "site \"{value}\" is listed twice: line {first_line} and line {}",
                        self.line(&site.span())
                    )
                } else {
                    format!(
                        "site \"{value}\" (line {}) repeats \"{}\" (line {first_line}); site names \
                         are case-insensitive",
                        self.line(&site.span()),
                        first.get_ref()
                    )
                };
                self.report(
                    &site.span(),
                    message,
                    format!("remove the second \"{value}\" from sites"),
                );
                continue;
            }
            seen.insert(folded, site);
            kept.push(value.clone());
        }
        if !kept.is_empty()
            && !kept
                .iter()
                .any(|site| site.eq_ignore_ascii_case(DEFAULT_EMS_SITE))
        {
            kept.insert(0, DEFAULT_EMS_SITE.to_string());
        }
        kept
    }

    /// The well-formed serials of a list such as `authorized`, each once. `nodes` holds the
    /// serials of the nodes in the file, or is `None` when the nodes could not be read.
    fn node_serial_list(
        &mut self,
        usage: &SerialUse,
        list: &[Spanned<String>],
        nodes: Option<&[&str]>,
    ) -> Vec<String> {
        let node_serials = nodes.unwrap_or_default();
        let mut seen: HashMap<&str, Span> = HashMap::new();
        let mut kept = Vec::new();
        for serial in list {
            let value = serial.get_ref();
            if !self.check_listed_serial(usage, serial, node_serials) {
                continue;
            }
            if let Some(first) = seen.get(value.as_str()) {
                let first_line = self.line(first);
                self.report(
                    &serial.span(),
                    format!(
                        "{} \"{value}\" is listed twice: line {first_line} and line {}",
                        usage.what,
                        self.line(&serial.span())
                    ),
                    format!("remove the second \"{value}\" from {}", usage.key),
                );
                continue;
            }
            seen.insert(value, serial.span());
            // Suggest a node the list does not hold yet.
            let unlisted = node_serials
                .iter()
                .copied()
                .filter(|node| !list.iter().any(|listed| listed.get_ref() == node));
            self.check_serial_names_node(usage, serial, nodes, unlisted);
            kept.push(value.clone());
        }
        kept
    }

    /// Reports `serial` when it is no FortiGate serial, suggesting the node serial it
    /// resembles; true when it is one. `node_serials` are those of the nodes in the file.
    fn check_listed_serial(
        &mut self,
        usage: &SerialUse,
        serial: &Spanned<String>,
        node_serials: &[&str],
    ) -> bool {
        let value = serial.get_ref();
        let faults = serial_faults(value);
        if faults.is_empty() {
            return true;
        }
        let upper = value.to_ascii_uppercase();
        let example = if node_serials.contains(&upper.as_str()) {
            upper
        } else {
            closest(&upper, node_serials.iter().copied())
                .or_else(|| node_serials.first().copied())
                .map_or_else(|| unused_serial(&HashSet::new()), str::to_string)
        };
        self.report(
            &serial.span(),
            format!("{} \"{value}\" {}", usage.what, faults.join(", ")),
            format!(
                "list FortiGate serials ({SERIAL_LEN} characters, A-Z and 0-9, starting with \
                 \"{SERIAL_PREFIX}\") of nodes in this file, e.g. \"{example}\""
            ),
        );
        false
    }

    /// Reports a well-formed `serial` that names no node, suggesting the closest of
    /// `candidates`. Quiet when the nodes could not be read (`nodes` is `None`).
    fn check_serial_names_node<'n>(
        &mut self,
        usage: &SerialUse,
        serial: &Spanned<String>,
        nodes: Option<&[&'n str]>,
        candidates: impl Iterator<Item = &'n str>,
    ) {
        let Some(node_serials) = nodes else {
            return;
        };
        let value = serial.get_ref();
        if node_serials.contains(&value.as_str()) {
            return;
        }
        let fix = match closest(value, candidates) {
            Some(close) => format!("did you mean \"{close}\"? {}", usage.why),
            None if node_serials.is_empty() => {
                format!("remove \"{value}\", or add a [[node]] with serial = \"{value}\"")
            }
            None => {
                let mut listed: Vec<String> = node_serials
                    .iter()
                    .take(MAX_LISTED_SERIALS)
                    .map(|serial| format!("\"{serial}\""))
                    .collect();
                if node_serials.len() > MAX_LISTED_SERIALS {
                    listed.push("...".to_string());
                }
                format!("list serials of nodes in this file: {}", listed.join(", "))
            }
        };
        self.report(
            &serial.span(),
            format!("{} \"{value}\" names no node in this file", usage.what),
            fix,
        );
    }

    /// The listed capabilities that are known, in the order of [`EMS_CAPABILITIES`].
    fn ems_capabilities(&mut self, capabilities: &[Spanned<String>]) -> Vec<String> {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for capability in capabilities {
            let value = capability.get_ref().as_str();
            if !EMS_CAPABILITIES.contains(&value) {
                let fix = match closest(value, EMS_CAPABILITIES.iter().copied()) {
                    Some(close) => format!("did you mean \"{close}\"?"),
                    None => format!("capabilities are: {}", EMS_CAPABILITIES.join(", ")),
                };
                self.report(&capability.span(), format!("unknown capability \"{value}\""), fix);
                continue;
            }
            match seen.get(value) {
                Some(first) => {
                    let first_line = self.line(first);
                    self.report(
                        &capability.span(),
                        format!(
                            "capability \"{value}\" is listed twice: line {first_line} and line {}",
                            self.line(&capability.span())
                        ),
                        format!("remove the second \"{value}\" from capabilities"),
                    );
                }
                None => {
                    seen.insert(value, capability.span());
                }
            }
        }
        EMS_CAPABILITIES
            .iter()
            .filter(|capability| seen.contains_key(*capability))
            .map(|capability| capability.to_string())
            .collect()
    }

    /// Names and serials unique among the EMS servers; addresses unique among the EMS
    /// servers and the nodes (port 0 picks a free port, so those never collide).
    fn check_ems_duplicates(&mut self, drafts: &[EmsDraft], nodes: &[NodeDraft]) {
        let names: Vec<&str> = drafts.iter().filter_map(EmsDraft::name).collect();
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for draft in drafts {
            let Some(name) = &draft.table.name else {
                continue;
            };
            match seen.get(name.get_ref().as_str()) {
                Some(first) => {
                    let first_line = self.line(first);
                    let line = self.line(&name.span());
                    self.report(
                        &name.span(),
                        format!(
                            "two EMS servers are named \"{}\": line {first_line} and line {line}",
                            name.get_ref()
                        ),
                        format!(
                            "EMS names are unique; rename the EMS on line {line}, e.g. name = \"{}\"",
                            unused_name(name.get_ref(), &names)
                        ),
                    );
                }
                None => {
                    seen.insert(name.get_ref(), name.span());
                }
            }
        }

        let serials: HashSet<&str> = drafts
            .iter()
            .filter_map(|d| d.table.serial.as_ref().map(|s| s.get_ref().as_str()))
            .collect();
        let mut seen: HashMap<&str, (&EmsDraft, Span)> = HashMap::new();
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
                            "two EMS servers have serial \"{}\": {} (line {first_line}) and {} (line {})",
                            serial.get_ref(),
                            first.label(),
                            draft.label(),
                            self.line(&serial.span())
                        ),
                        format!(
                            "every EMS has its own serial; e.g. serial = \"{}\" on {}",
                            unused_ems_serial(&serials),
                            draft.label()
                        ),
                    );
                }
                None => {
                    seen.insert(serial.get_ref(), (draft, serial.span()));
                }
            }
        }

        let mut used: HashSet<SocketAddr> = nodes.iter().filter_map(|d| d.listen).collect();
        used.extend(drafts.iter().filter_map(|d| d.listen));
        let mut seen: HashMap<SocketAddr, (String, Span)> = HashMap::new();
        for node in nodes {
            if let (Some(address), Some(listen)) = (node.listen, &node.table.listen) {
                let label = match node.name() {
                    Some(name) => format!("node \"{name}\""),
                    None => node.label(),
                };
                seen.entry(address).or_insert((label, listen.span()));
            }
        }
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
                            "{} listens on {address} (line {}), as does {first} (line {first_line})",
                            draft.label(),
                            self.line(&listen.span())
                        ),
                        format!(
                            "give {} its own address, e.g. listen = \"{}\", or port 0 to pick a free port",
                            draft.label(),
                            unused_address(address.port(), &used)
                        ),
                    );
                }
                None => {
                    seen.insert(address, (draft.label(), listen.span()));
                }
            }
        }
    }

    /// The rules of `[forticloud]` and its contracts, and those between it and the nodes
    /// and EMS servers. `nodes` is `None` when the nodes could not be read, which quiets the
    /// rules that compare with them.
    fn forticloud_draft(
        &mut self,
        read: Read<ForticloudTable>,
        contracts: Vec<Read<ContractTable>>,
        nodes: Option<&[NodeDraft]>,
        ems: &[EmsDraft],
    ) -> ForticloudDraft {
        let table = read.table;
        let node_serials: Option<Vec<&str>> = nodes.map(|drafts| {
            drafts
                .iter()
                .filter_map(|draft| draft.table.serial.as_ref())
                .map(|serial| serial.get_ref().as_str())
                .collect()
        });
        let account = match &table.account {
            Some(account) => self.check_account(account).then(|| account.get_ref().clone()),
            None => Some(DEFAULT_FORTICLOUD_ACCOUNT.to_owned()),
        };
        let who = "FortiCloud and EMS Cloud";
        let address = |this: &mut Self, key: &str, listen: &Option<Spanned<String>>, ip: Ipv4Addr| {
            let listen = listen.as_ref()?;
            let example = SocketAddr::from((ip, 0));
            this.check_address(key, listen, who, example)
                .map(|address| (address, listen.span()))
        };
        let listen = address(self, "listen", &table.listen, SUGGESTED_FORTICLOUD_IP);
        let ems_listen = address(self, "ems_listen", &table.ems_listen, SUGGESTED_EMS_CLOUD_IP);
        let registered = table.registered.as_deref().map_or_else(Vec::new, |registered| {
            self.node_serial_list(&REGISTERED_SERIALS, registered, node_serials.as_deref())
        });
        let contracts = self.contracts(contracts, node_serials.as_deref());
        self.check_cloud_addresses(
            listen.as_ref(),
            ems_listen.as_ref(),
            nodes.unwrap_or_default(),
            ems,
        );
        self.check_cloud_names(ems);
        let spec = match (account, &listen, &ems_listen, contracts) {
            (Some(account), Some((listen, _)), Some((ems_listen, _)), Some(contracts)) => {
                Some(ForticloudSpec {
                    account,
                    listen: *listen,
                    ems_listen: *ems_listen,
                    registered,
                    contracts,
                })
            }
            _ => None,
        };
        ForticloudDraft {
            listen,
            ems_listen,
            spec,
        }
    }

    /// Whether the account is an email address; reported when it is not.
    fn check_account(&mut self, account: &Spanned<String>) -> bool {
        let value = account.get_ref();
        let length = value.chars().count();
        let fault = if value.is_empty() {
            "is empty".to_owned()
        } else if length > MAX_ACCOUNT_LEN {
            format!("has {length} characters (at most {MAX_ACCOUNT_LEN})")
        } else {
            match value.split_once('@') {
                Some((local, domain))
                    if !local.is_empty()
                        && !domain.contains('@')
                        && !local.chars().any(|c| c.is_whitespace() || c.is_control()) =>
                {
                    match fqdn_fault(domain) {
                        None => return true,
                        Some(fault) => format!("has the domain \"{domain}\", which {fault}"),
                    }
                }
                _ => "is not an email address (name@domain)".to_owned(),
            }
        };
        self.report(
            &account.span(),
            format!("FortiCloud account \"{value}\" {fault}"),
            format!(
                "write the account's email address, e.g. account = \"{DEFAULT_FORTICLOUD_ACCOUNT}\", \
                 or remove the line to get that one"
            ),
        );
        false
    }

    /// The contracts when every one is usable; each problem is reported.
    fn contracts(
        &mut self,
        contracts: Vec<Read<ContractTable>>,
        nodes: Option<&[&str]>,
    ) -> Option<Vec<ContractSpec>> {
        let node_serials = nodes.unwrap_or_default();
        let mut seen: HashMap<(String, String), Span> = HashMap::new();
        let mut specs = Vec::new();
        let mut usable = true;
        for read in contracts {
            let table = read.table;
            let serial = table.serial.as_ref().filter(|serial| {
                let well_formed = self.check_listed_serial(&CONTRACT_SERIAL, serial, node_serials);
                if well_formed {
                    self.check_serial_names_node(
                        &CONTRACT_SERIAL,
                        serial,
                        nodes,
                        node_serials.iter().copied(),
                    );
                }
                well_formed
            });
            let kind = table.kind.as_ref().filter(|kind| self.check_contract_type(kind));
            let expires = table
                .expires
                .as_ref()
                .and_then(|expires| self.check_contract_date(expires));
            let (Some(serial), Some(kind), Some(expires)) = (serial, kind, expires) else {
                usable = false;
                continue;
            };
            let key = (serial.get_ref().clone(), kind.get_ref().clone());
            if let Some(first) = seen.get(&key) {
                let first_line = self.line(first);
                let line = self.line(&read.header);
                self.report(
                    &read.header,
                    format!(
                        "two {} contracts for \"{}\": line {first_line} and line {line}",
                        key.1, key.0
                    ),
                    format!(
                        "a FortiGate holds one contract of each type; remove the \
                         [[forticloud.contract]] on line {line}"
                    ),
                );
                usable = false;
                continue;
            }
            seen.insert(key, read.header.clone());
            specs.push(ContractSpec {
                serial: serial.get_ref().clone(),
                kind: kind.get_ref().clone(),
                expires,
            });
        }
        usable.then_some(specs)
    }

    /// Whether `kind` is one of [`CONTRACT_TYPES`]; reported when it is not.
    fn check_contract_type(&mut self, kind: &Spanned<String>) -> bool {
        let value = kind.get_ref();
        if CONTRACT_TYPES.contains(&value.as_str()) {
            return true;
        }
        let upper = value.to_ascii_uppercase();
        let fix = if CONTRACT_TYPES.contains(&upper.as_str()) {
            format!("write type = \"{upper}\"; contract types are written in capitals")
        } else if let Some(close) = closest(&upper, CONTRACT_TYPES.iter().copied()) {
            format!("did you mean \"{close}\"?")
        } else {
            format!(
                "contract types are: {}; {FCEM_CONTRACT} is the FortiClient EMS Cloud entitlement",
                CONTRACT_TYPES.join(", ")
            )
        };
        self.report(&kind.span(), format!("unknown contract type \"{value}\""), fix);
        false
    }

    /// Whether `expires` is a date written `YYYY-MM-DD`; reported when it is not.
    /// The date `YYYY-MM-DD` when `expires` is one (a string or a TOML date); reported
    /// otherwise.
    fn check_contract_date(&mut self, expires: &Spanned<WrittenDate>) -> Option<String> {
        let (value, fault) = match expires.get_ref() {
            WrittenDate::Text(text) => match parse_contract_date(text) {
                Ok(_) => return Some(text.clone()),
                Err(fault) => (text.clone(), fault),
            },
            WrittenDate::Toml(datetime) => match (datetime.date, datetime.time, datetime.offset) {
                (Some(date), None, None) => {
                    let text = format!("{:04}-{:02}-{:02}", date.year, date.month, date.day);
                    return Some(text);
                }
                (Some(_), ..) => (
                    datetime.to_string(),
                    "is a date and time; a contract ends on a whole day".to_owned(),
                ),
                (None, ..) => (datetime.to_string(), "is a time, not a date".to_owned()),
            },
        };
        self.report(
            &expires.span(),
            format!("expires \"{value}\" {fault}"),
            format!(
                "write the contract's last day as YYYY-MM-DD, e.g. expires = \"{}\"",
                date_suggestion(&value)
            ),
        );
        None
    }

    /// FortiCloud's and EMS Cloud's addresses unique among themselves, the nodes and the
    /// EMS servers (port 0 picks a free port, so those never collide).
    fn check_cloud_addresses(
        &mut self,
        listen: Option<&(SocketAddr, Span)>,
        ems_listen: Option<&(SocketAddr, Span)>,
        nodes: &[NodeDraft],
        ems: &[EmsDraft],
    ) {
        let mut used: HashSet<SocketAddr> = nodes.iter().filter_map(|d| d.listen).collect();
        used.extend(ems.iter().filter_map(|d| d.listen));
        used.extend(
            listen
                .iter()
                .chain(ems_listen.iter())
                .map(|(address, _)| *address),
        );
        let mut seen: HashMap<SocketAddr, (String, Span)> = HashMap::new();
        for node in nodes {
            if let (Some(address), Some(listen)) = (node.listen, &node.table.listen) {
                let label = match node.name() {
                    Some(name) => format!("node \"{name}\""),
                    None => node.label(),
                };
                seen.entry(address).or_insert((label, listen.span()));
            }
        }
        for draft in ems {
            if let (Some(address), Some(listen)) = (draft.listen, &draft.table.listen) {
                seen.entry(address).or_insert((draft.label(), listen.span()));
            }
        }
        for (who, key, at) in [
            ("FortiCloud", "listen", listen),
            ("EMS Cloud", "ems_listen", ems_listen),
        ] {
            let Some((address, span)) = at else {
                continue;
            };
            if address.port() == 0 {
                continue;
            }
            match seen.get(address) {
                Some((first, first_span)) => {
                    let first_line = self.line(first_span);
                    self.report(
                        span,
                        format!(
                            "{who} listens on {address} (line {}), as does {first} (line {first_line})",
                            self.line(span)
                        ),
                        format!(
                            "give {who} its own address, e.g. {key} = \"{}\", or port 0 to pick a free port",
                            unused_address(address.port(), &used)
                        ),
                    );
                }
                None => {
                    seen.insert(*address, (who.to_owned(), span.clone()));
                }
            }
        }
    }

    /// No `[[ems]]` takes the EMS Cloud server's name, serial or hostname, nor FortiCloud's
    /// hostname: `fabricsim ems`, the EMS Cloud certificate and `[dns]` could not tell them
    /// apart.
    fn check_cloud_names(&mut self, ems: &[EmsDraft]) {
        let names: Vec<&str> = ems
            .iter()
            .filter_map(EmsDraft::name)
            .chain([EMS_CLOUD_NAME])
            .collect();
        let serials: HashSet<&str> = ems
            .iter()
            .filter_map(|d| d.table.serial.as_ref().map(|s| s.get_ref().as_str()))
            .chain([EMS_CLOUD_SERIAL])
            .collect();
        for draft in ems {
            if let Some(name) = &draft.table.name
                && name.get_ref() == EMS_CLOUD_NAME
            {
                self.report(
                    &name.span(),
                    format!(
                        "EMS name \"{EMS_CLOUD_NAME}\" is the name of the EMS Cloud server of [forticloud]"
                    ),
                    format!(
                        "rename the EMS, e.g. name = \"{}\"",
                        unused_name(EMS_CLOUD_NAME, &names)
                    ),
                );
            }
            if let Some(serial) = &draft.table.serial
                && serial.get_ref() == EMS_CLOUD_SERIAL
            {
                self.report(
                    &serial.span(),
                    format!(
                        "EMS serial \"{EMS_CLOUD_SERIAL}\" of {} is the serial of the EMS Cloud server of \
                         [forticloud]",
                        draft.label()
                    ),
                    format!(
                        "every EMS has its own serial; e.g. serial = \"{}\"",
                        unused_ems_serial(&serials)
                    ),
                );
            }
            if let (Some(hostname), Some(written)) = (&draft.hostname, &draft.table.hostname) {
                let owner = if hostname == EMS_CLOUD_HOSTNAME {
                    "EMS Cloud"
                } else if hostname == FORTICLOUD_HOSTNAME {
                    "FortiCloud"
                } else {
                    continue;
                };
                self.report(
                    &written.span(),
                    format!(
                        "EMS hostname \"{hostname}\" of {} is the name of {owner}",
                        draft.label()
                    ),
                    format!("give the EMS its own name, e.g. hostname = \"{SUGGESTED_EMS_HOSTNAME}\""),
                );
            }
        }
    }

    /// The `[dns]` table, names in lowercase, when each entry is well formed; each name
    /// of an EMS (`<hostname>`, `<site>.<hostname>`) must point at that EMS, and
    /// FortiCloud's and EMS Cloud's names at them. Those two names are added when the file
    /// does not give them.
    fn dns_names(
        &mut self,
        mut entries: Vec<DnsEntry>,
        ems: &[EmsDraft],
        cloud: Option<&ForticloudDraft>,
    ) -> BTreeMap<String, IpAddr> {
        entries.sort_by_key(|entry| entry.name.span().start);
        // Every name a server answers to, and the servers behind it.
        let mut served: HashMap<String, Vec<Served>> = HashMap::new();
        for draft in ems {
            let (Some(hostname), Some(listen), Some(listen_at)) =
                (&draft.hostname, draft.listen, &draft.table.listen)
            else {
                continue;
            };
            let listen_line = self.line(&listen_at.span());
            served.entry(hostname.clone()).or_default().push(Served {
                what: format!("the hostname of {}", draft.label()),
                ip: listen.ip(),
                listen_line,
            });
            for site in &draft.sites {
                let name = format!("{}.{hostname}", site.to_ascii_lowercase());
                served.entry(name).or_default().push(Served {
                    what: format!("site \"{site}\" of {}", draft.label()),
                    ip: listen.ip(),
                    listen_line,
                });
            }
        }
        let cloud_names: Vec<(&str, &str, &(SocketAddr, Span))> = cloud
            .map(|draft| {
                [
                    (FORTICLOUD_HOSTNAME, "FortiCloud", draft.listen.as_ref()),
                    (EMS_CLOUD_HOSTNAME, "EMS Cloud", draft.ems_listen.as_ref()),
                ]
            })
            .into_iter()
            .flatten()
            .filter_map(|(name, who, at)| Some((name, who, at?)))
            .collect();
        for &(name, who, (listen, span)) in &cloud_names {
            let listen_line = self.line(span);
            served.entry(name.to_owned()).or_default().push(Served {
                what: format!("the name of {who}"),
                ip: listen.ip(),
                listen_line,
            });
        }
        let mut names = BTreeMap::new();
        let mut seen: HashMap<String, &DnsEntry> = HashMap::new();
        for entry in &entries {
            let written = entry.name.get_ref();
            let servers = served.get(&written.to_ascii_lowercase());
            let expected = servers
                .and_then(|servers| servers.first())
                .map(|server| server.ip);
            if let Some(fault) = fqdn_fault(written) {
                self.report(
                    &entry.name.span(),
                    format!("[dns] name \"{written}\" {fault}"),
                    format!(
                        "write a name of {}, e.g. \"{}\" = \"{}\"",
                        fqdn_rule(),
                        fqdn_suggestion(written),
                        entry.address.get_ref()
                    ),
                );
                continue;
            }
            let name = written.to_ascii_lowercase();
            if let Some(first) = seen.get(&name) {
                let first_line = self.line(&first.name.span());
                self.report(
                    &entry.name.span(),
                    format!(
                        "two [dns] entries are for \"{name}\": \"{}\" (line {first_line}) and \
                         \"{written}\" (line {}); names are case-insensitive",
                        first.name.get_ref(),
                        self.line(&entry.name.span())
                    ),
                    format!(
                        "remove line {}; one entry per name",
                        self.line(&entry.name.span())
                    ),
                );
                continue;
            }
            seen.insert(name.clone(), entry);
            let Some(address) = self.check_dns_address(entry, expected) else {
                continue;
            };
            if let Some(servers) = servers
                && !servers.iter().any(|server| server.ip == address)
                && let Some(server) = servers.first()
            {
                self.report(
                    &entry.address.span(),
                    format!(
                        "[dns] name \"{name}\" points at {address}, but it is {}, which listens on {} \
                         (line {})",
                        server.what, server.ip, server.listen_line
                    ),
                    format!("write \"{written}\" = \"{}\"", server.ip),
                );
            }
            names.insert(name, address);
        }
        for (name, _, (listen, _)) in cloud_names {
            names.entry(name.to_owned()).or_insert(listen.ip());
        }
        names
    }

    /// The address of a `[dns]` entry when it is IPv4; reported otherwise. `expected` is
    /// the address of the EMS the name belongs to, for the fix.
    fn check_dns_address(&mut self, entry: &DnsEntry, expected: Option<IpAddr>) -> Option<IpAddr> {
        let value = entry.address.get_ref();
        let name = entry.name.get_ref();
        let example = expected.unwrap_or(IpAddr::V4(SUGGESTED_EMS_IP));
        let fault = match value.parse::<IpAddr>() {
            Ok(address @ IpAddr::V4(_)) => return Some(address),
            Ok(IpAddr::V6(_)) => {
                format!("\"{value}\" is an IPv6 address; [dns] holds IPv4 addresses")
            }
            Err(_) => match value.parse::<SocketAddr>() {
                Ok(with_port) => {
                    let address = match with_port.ip() {
                        address @ IpAddr::V4(_) => expected.unwrap_or(address),
                        IpAddr::V6(_) => example,
                    };
                    self.report(
                        &entry.address.span(),
                        format!(
                            "\"{value}\" for \"{name}\" has a port; [dns] maps names to addresses \
                             (the port is the fctems https-port)"
                        ),
                        format!("write \"{name}\" = \"{address}\""),
                    );
                    return None;
                }
                Err(_) => format!("\"{value}\" is not an IPv4 address"),
            },
        };
        self.report(
            &entry.address.span(),
            format!("[dns] address {fault}"),
            format!("write an IPv4 address, e.g. \"{name}\" = \"{example}\""),
        );
        None
    }

    fn check_settings(&mut self, checks: Option<Read<ChecksTable>>) -> CheckSettings {
        let Some(checks) = checks else {
            return CheckSettings::default();
        };
        let interval = checks.table.interval_secs;
        if let Some(interval) = &interval
            && *interval.get_ref() < MIN_CHECK_INTERVAL_SECS
        {
            self.report(
                &interval.span(),
                format!(
                    "interval_secs = {} would start EMS check rounds without pause",
                    interval.get_ref()
                ),
                format!(
                    "write interval_secs = {DEFAULT_CHECK_INTERVAL_SECS} (at least \
                     {MIN_CHECK_INTERVAL_SECS})"
                ),
            );
        }
        CheckSettings {
            interval_secs: interval.map_or(DEFAULT_CHECK_INTERVAL_SECS, Spanned::into_inner),
        }
    }

    /// The root's bootstrap lines; each must be one CLI line.
    fn bootstrap_lines(&mut self, bootstrap: Option<Read<BootstrapTable>>) -> Vec<String> {
        let lines = bootstrap.and_then(|read| read.table.root).unwrap_or_default();
        for line in &lines {
            if line.get_ref().contains(['\n', '\r']) {
                let parts: Vec<String> = line
                    .get_ref()
                    .lines()
                    .map(str::trim)
                    .filter(|part| !part.is_empty())
                    .map(|part| format!("{part:?}"))
                    .collect();
                self.report(
                    &line.span(),
                    "a [bootstrap] line holds a line break",
                    format!(
                        "write each CLI line as its own string: root = [{}]",
                        parts.join(", ")
                    ),
                );
            }
        }
        lines.into_iter().map(Spanned::into_inner).collect()
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

/// What keeps `value` from being a FortiGate serial; empty when it is one.
fn serial_faults(value: &str) -> Vec<String> {
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
    faults
}

/// `text` as a `YYYY-MM-DD` date when it is one written another way (`2027-1-5`,
/// `2027/01/05`), else [`SUGGESTED_CONTRACT_DATE`].
fn date_suggestion(text: &str) -> String {
    let parts: Vec<&str> = text.trim().split(['-', '/', '.']).collect();
    if let [year, month, day] = parts[..]
        && year.len() == 4
        && let (Ok(year), Ok(month), Ok(day)) =
            (year.parse::<u32>(), month.parse::<u32>(), day.parse::<u32>())
    {
        let candidate = format!("{year:04}-{month:02}-{day:02}");
        if parse_contract_date(&candidate).is_ok() {
            return candidate;
        }
    }
    SUGGESTED_CONTRACT_DATE.to_owned()
}

/// How a DNS name is written, for fixes.
fn fqdn_rule() -> String {
    format!(
        "dot-separated labels of letters, digits and \"-\", each 1 to {MAX_DNS_LABEL_LEN} characters \
         and not starting or ending with \"-\""
    )
}

/// What keeps `name` from being a DNS name the nodes can resolve; `None` when it is one.
fn fqdn_fault(name: &str) -> Option<String> {
    let length = name.chars().count();
    if name.is_empty() {
        return Some("is empty".to_string());
    }
    if length > MAX_DNS_NAME_LEN {
        return Some(format!("has {length} characters (at most {MAX_DNS_NAME_LEN})"));
    }
    if name.parse::<Ipv4Addr>().is_ok() {
        return Some("is an IP address, not a name".to_string());
    }
    if name.ends_with('.') {
        return Some("ends with \".\"".to_string());
    }
    for label in name.split('.') {
        let length = label.chars().count();
        let fault = if label.is_empty() {
            return Some("has an empty label (a leading dot or two dots in a row)".to_string());
        } else if length > MAX_DNS_LABEL_LEN {
            format!("has {length} characters (at most {MAX_DNS_LABEL_LEN})")
        } else if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            "may only use letters, digits and \"-\"".to_string()
        } else if label.starts_with('-') || label.ends_with('-') {
            "starts or ends with \"-\"".to_string()
        } else {
            continue;
        };
        return Some(format!("has the label \"{label}\", which {fault}"));
    }
    None
}

/// `name` made into a DNS name: lowercase, other characters turned into `-`, empty labels
/// dropped; [`SUGGESTED_EMS_HOSTNAME`] when nothing usable is left.
fn fqdn_suggestion(name: &str) -> String {
    let labels: Vec<String> = name
        .split('.')
        .map(|label| {
            let cleaned: String = label
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '-'
                    }
                })
                .take(MAX_DNS_LABEL_LEN)
                .collect();
            cleaned.trim_matches('-').to_string()
        })
        .filter(|label| !label.is_empty())
        .collect();
    let suggestion = labels.join(".");
    if fqdn_fault(&suggestion).is_none() {
        suggestion
    } else {
        SUGGESTED_EMS_HOSTNAME.to_string()
    }
}

/// Every value below a `[dns]` key that holds a table, as `(dotted name, key span, value
/// span)`: what `ems.lab.example = "..."` written without quotes turns into. An empty
/// table yields its own name without a value span.
fn dotted_leaves(
    prefix: &str,
    span: Span,
    table: &DeTable<'_>,
    leaves: &mut Vec<(String, Span, Option<Span>)>,
) {
    if table.is_empty() {
        leaves.push((prefix.to_string(), span, None));
        return;
    }
    for (key, value) in table.iter() {
        let dotted = format!("{prefix}.{}", key.get_ref());
        match value.get_ref() {
            DeValue::Table(nested) => dotted_leaves(&dotted, key.span(), nested, leaves),
            _ => leaves.push((dotted, key.span(), Some(value.span()))),
        }
    }
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

/// `name` with the smallest numeric suffix that is not `taken`.
fn unused_name(name: &str, taken: &[&str]) -> String {
    let base: String = name.chars().take(MAX_NAME_LEN - 3).collect();
    (2u32..)
        .map(|n| format!("{base}-{n}"))
        .find(|candidate| !taken.contains(&candidate.as_str()))
        .unwrap_or_default()
}

/// An EMS serial no EMS in the file uses.
fn unused_ems_serial(used: &HashSet<&str>) -> String {
    (1u32..)
        .map(|n| format!("{SUGGESTED_EMS_SERIAL_PREFIX}{n:06}"))
        .find(|serial| !used.contains(serial.as_str()))
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
    const EMS_UNTRUSTED_TOML: &str = include_str!("../cluster-configs/ems-untrusted.toml");
    const EMS_UNAUTHORIZED_TOML: &str = include_str!("../cluster-configs/ems-unauthorized.toml");

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
                "ems" => drop(reader.many::<EmsTable>(&document, section)),
                "forticloud" => drop(reader.forticloud(&document)),
                "dns" => drop(reader.dns(&document)),
                "checks" => drop(reader.one::<ChecksTable>(&document, section)),
                "bootstrap" => drop(reader.one::<BootstrapTable>(&document, section)),
                other => panic!("section {other} has no test"),
            }
            assert!(reader.problems.is_empty(), "{text}{:#?}", reader.problems);
        }
        for section in NESTED_SECTIONS {
            let mut text = format!("{}\n", section.header());
            for key in section.keys {
                text.push_str(&format!("{} = {}\n", key.name, key.example));
            }
            let mut reader = Reader::new(&text);
            let document = DeTable::parse(&text).unwrap().into_inner();
            let Some(DeValue::Table(parent)) = section
                .parent
                .and_then(|parent| document.get(parent))
                .map(|value| value.get_ref())
            else {
                panic!("{} has no parent table", section.header());
            };
            match section.key {
                "contract" => assert_eq!(
                    reader.many::<ContractTable>(parent, section).map(|r| r.len()),
                    Some(1)
                ),
                other => panic!("section {other} has no test"),
            }
            assert!(reader.problems.is_empty(), "{text}{:#?}", reader.problems);
        }
    }

    /// [`SMALL`] and one valid EMS on lines 15 to 19; `extra` starts on line 20.
    fn with_ems(extra: &str) -> String {
        format!(
            "{SMALL}\n[[ems]]\nname = \"ems1\"\nserial = \"FCTEMS8822001234\"\nhostname = \"ems.lab.example\"\n\
             listen = \"127.0.0.31:8443\"\n{extra}"
        )
    }

    /// The fix of the one problem whose message contains `part`.
    fn fix_for(found: &[Problem], part: &str) -> String {
        let matching: Vec<&Problem> = found.iter().filter(|p| p.message.contains(part)).collect();
        assert_eq!(matching.len(), 1, "one problem about {part:?}: {found:#?}");
        matching[0].fix.clone()
    }

    fn all_capabilities() -> Vec<String> {
        EMS_CAPABILITIES.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn default_topology_has_an_ems_its_names_checks_and_a_bootstrap() {
        let topology = parse(DEFAULT_TOML).expect("default.toml is valid");
        assert_eq!(topology.checks, CheckSettings { interval_secs: 30 });
        let ip: IpAddr = "127.0.0.31".parse().unwrap();
        // The FortiCloud names are added to [dns] by [forticloud]; these are the EMS's.
        let dns: Vec<(&str, IpAddr)> = topology
            .dns
            .iter()
            .filter(|(name, _)| name.ends_with("ems.lab.example"))
            .map(|(name, ip)| (name.as_str(), *ip))
            .collect();
        assert_eq!(
            dns,
            [
                ("default.ems.lab.example", ip),
                ("ems.lab.example", ip),
                ("sitea.ems.lab.example", ip)
            ]
        );
        let serials: Vec<String> = topology.nodes.iter().map(|n| n.serial.clone()).collect();
        assert_eq!(topology.ems.len(), 1);
        assert_eq!(
            topology.ems_server("ems1"),
            Some(&EmsSpec {
                name: "ems1".to_string(),
                serial: "FCTEMS8822001234".to_string(),
                hostname: "ems.lab.example".to_string(),
                listen: "127.0.0.31:8443".parse().unwrap(),
                certificate: CertProfile::Trusted,
                sites: vec!["Default".to_string(), "SiteA".to_string()],
                authorized: serials,
                capabilities: all_capabilities(),
                respond: true,
            })
        );
        assert_eq!(topology.ems_server("ems2"), None);
        assert_eq!(
            topology.bootstrap,
            [
                "config endpoint-control fctems",
                "edit ems1",
                "set server default.ems.lab.example",
                "set https-port 8443",
                "end",
                "execute fctems verify ems1",
            ]
        );
    }

    #[test]
    fn example_topologies_parse_and_can_run_side_by_side() {
        let files = [
            ("default.toml", DEFAULT_TOML),
            ("ten-nodes.toml", TEN_NODES_TOML),
            ("ems-untrusted.toml", EMS_UNTRUSTED_TOML),
            ("ems-unauthorized.toml", EMS_UNAUTHORIZED_TOML),
        ];
        let mut owners: HashMap<IpAddr, &str> = HashMap::new();
        let mut fabrics = HashSet::new();
        for (file, text) in files {
            let topology = parse(text).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert!(
                fabrics.insert(topology.fabric.name.clone()),
                "{file}: fabric name repeats"
            );
            let ips = topology
                .nodes
                .iter()
                .map(|n| n.listen.ip())
                .chain(topology.ems.iter().map(|e| e.listen.ip()));
            for ip in ips {
                let owner = *owners.entry(ip).or_insert(file);
                assert_eq!(owner, file, "{ip} is used by {owner} and {file}");
            }
            let serials: HashSet<&str> = topology
                .nodes
                .iter()
                .map(|n| n.serial.as_str())
                .chain(topology.ems.iter().map(|e| e.serial.as_str()))
                .collect();
            assert_eq!(serials.len(), topology.nodes.len() + topology.ems.len(), "{file}");
        }

        let ten = parse(TEN_NODES_TOML).unwrap();
        assert!(ten.ems.is_empty() && ten.dns.is_empty() && ten.bootstrap.is_empty());

        let untrusted = parse(EMS_UNTRUSTED_TOML).unwrap();
        assert_eq!(untrusted.fabric.name, "untrusted");
        let listens: Vec<SocketAddr> = untrusted.nodes.iter().map(|n| n.listen).collect();
        let expected: Vec<SocketAddr> = (41..=43)
            .map(|last| SocketAddr::from(([127, 0, 0, last], 8013)))
            .collect();
        assert_eq!(listens, expected);
        let ems = untrusted.ems_server("ems1").expect("ems1");
        assert_eq!(ems.listen, "127.0.0.44:8443".parse().unwrap());
        assert_eq!(ems.certificate, CertProfile::Untrusted);
        let serials: Vec<&str> = untrusted.nodes.iter().map(|n| n.serial.as_str()).collect();
        assert_eq!(ems.authorized, serials);
        assert_eq!(untrusted.dns[&ems.hostname], ems.listen.ip());
        assert!(untrusted.bootstrap.contains(&"edit ems1".to_string()));
        assert!(
            !untrusted.bootstrap.iter().any(|line| line.contains("verify")),
            "verifying is left to the reader"
        );

        let unauthorized = parse(EMS_UNAUTHORIZED_TOML).unwrap();
        assert_eq!(unauthorized.fabric.name, "unauthorized");
        let listens: Vec<SocketAddr> = unauthorized.nodes.iter().map(|n| n.listen).collect();
        let expected: Vec<SocketAddr> = (51..=53)
            .map(|last| SocketAddr::from(([127, 0, 0, last], 8013)))
            .collect();
        assert_eq!(listens, expected);
        let ems = unauthorized.ems_server("ems1").expect("ems1");
        assert_eq!(ems.listen, "127.0.0.54:8443".parse().unwrap());
        assert_eq!(ems.certificate, CertProfile::Trusted);
        assert_eq!(ems.authorized, [unauthorized.root().serial.clone()]);
        assert_eq!(unauthorized.dns[&ems.hostname], ems.listen.ip());
        // The file's comments authorize branch1 by this serial.
        assert_eq!(unauthorized.node("branch1").unwrap().serial, "FGVM01TM22000502");
        assert_eq!(
            unauthorized.bootstrap.last().unwrap(),
            "execute fctems verify ems1"
        );
    }

    #[test]
    fn the_new_tables_default_when_absent() {
        let topology = parse(SMALL).expect("valid");
        assert!(topology.ems.is_empty());
        assert_eq!(topology.forticloud, None);
        assert!(topology.dns.is_empty());
        assert_eq!(topology.checks.interval_secs, DEFAULT_CHECK_INTERVAL_SECS);
        assert!(topology.bootstrap.is_empty());
        let empty = format!("{SMALL}\n[checks]\n\n[dns]\n\n[bootstrap]\n");
        let topology = parse(&empty).expect("valid");
        assert_eq!(topology.checks, CheckSettings::default());
        assert!(topology.dns.is_empty() && topology.bootstrap.is_empty());
    }

    #[test]
    fn ems_keys_default_one_by_one() {
        let topology = parse(&with_ems("")).expect("valid");
        assert_eq!(
            topology.ems,
            [EmsSpec {
                name: "ems1".to_string(),
                serial: "FCTEMS8822001234".to_string(),
                hostname: "ems.lab.example".to_string(),
                listen: "127.0.0.31:8443".parse().unwrap(),
                certificate: CertProfile::Trusted,
                sites: Vec::new(),
                authorized: Vec::new(),
                capabilities: all_capabilities(),
                respond: true,
            }]
        );
        let text = with_ems(
            "certificate = \"wrong-host\"\nsites = [\"SiteA\", \"b_2\"]\nauthorized = [\"FGVM01TM22000002\"]\n\
             capabilities = [\"websocket\", \"fabric-auth\"]\nrespond = false\n",
        )
        .replace("\"ems.lab.example\"", "\"EMS.Lab.Example\"")
        .replace("127.0.0.31:8443", "127.0.0.31:0");
        let ems = parse(&text).expect("valid").ems.remove(0);
        assert_eq!(ems.hostname, "ems.lab.example", "kept in lowercase");
        assert_eq!(ems.listen.port(), 0, "port 0 is kept");
        assert_eq!(ems.certificate, CertProfile::WrongHost);
        assert_eq!(ems.sites, ["Default", "SiteA", "b_2"]);
        assert_eq!(ems.authorized, ["FGVM01TM22000002"]);
        assert_eq!(ems.capabilities, ["fabric-auth", "websocket"], "in FortiOS order");
        assert!(!ems.respond);
    }

    #[test]
    fn sites_gain_default_unless_it_is_there_in_any_case() {
        let sites = |list: &str| {
            parse(&with_ems(&format!("sites = {list}\n")))
                .expect("valid")
                .ems
                .remove(0)
                .sites
        };
        assert_eq!(sites("[\"SiteB\"]"), ["Default", "SiteB"]);
        assert_eq!(sites("[\"SiteB\", \"default\"]"), ["SiteB", "default"]);
        assert_eq!(sites("[\"DEFAULT\"]"), ["DEFAULT"]);
        assert_eq!(sites("[]"), Vec::<String>::new(), "no sites: a single-tenant EMS");
    }

    #[test]
    fn every_certificate_profile_reads_as_it_displays() {
        for profile in [
            "trusted",
            "untrusted",
            "self-signed",
            "expired",
            "wrong-host",
            "public",
        ] {
            let text = with_ems(&format!("certificate = \"{profile}\"\n"));
            let ems = parse(&text).unwrap_or_else(|e| panic!("{e}")).ems.remove(0);
            assert_eq!(ems.certificate.to_string(), profile);
        }
        assert_eq!(CertProfile::default(), CertProfile::Trusted);
    }

    #[test]
    fn checks_dns_and_bootstrap_are_read() {
        let text = format!(
            "{SMALL}\n[checks]\ninterval_secs = 5\n\n[dns]\n\"Fabric.Example\" = \"10.1.2.3\"\n\
             localhost = \"127.0.0.1\"\n\n[bootstrap]\nroot = [\"config system global\", \"set hostname X\", \"end\"]\n"
        );
        let topology = parse(&text).expect("valid");
        assert_eq!(topology.checks.interval_secs, 5);
        let dns: Vec<(&str, String)> = topology
            .dns
            .iter()
            .map(|(name, ip)| (name.as_str(), ip.to_string()))
            .collect();
        assert_eq!(
            dns,
            [
                ("fabric.example", "10.1.2.3".to_string()),
                ("localhost", "127.0.0.1".to_string())
            ]
        );
        assert_eq!(
            topology.bootstrap,
            ["config system global", "set hostname X", "end"]
        );
    }

    #[test]
    fn every_problem_of_a_bad_ems_table_is_reported_on_its_line() {
        let text = format!(
            r#"{SMALL}
[[ems]]
name = "ems 1"
serial = "FCTEMS12345"
hostname = "ems_lab.example"
listen = "10.0.0.31:8443"
certificate = "trusty"
sites = ["SiteA", "sitea", "Site B"]
authorized = ["FGVM01TM22000001", "FGVM01TM22000009", "fgvm01tm22000002", "FGVM01TM22000001"]
capabilities = ["fabric_auth", "websocket", "websocket", "telepathy"]
respond = "yes"
colour = "blue"
"#
        );
        assert_problems(
            &text,
            &[
                (16, "EMS name \"ems 1\" may only use letters"),
                (17, "EMS serial \"FCTEMS12345\" has 11 characters (16 needed)"),
                (18, "EMS hostname \"ems_lab.example\" has the label \"ems_lab\""),
                (19, "listen \"10.0.0.31:8443\" is not a loopback address"),
                (
                    20,
                    "wrong value for \"certificate\" in [[ems]]: unknown variant `trusty`",
                ),
                (
                    21,
                    "site \"sitea\" (line 21) repeats \"SiteA\" (line 21); site names are case-insensitive",
                ),
                (21, "site name \"Site B\" may only use letters"),
                (
                    22,
                    "authorized serial \"FGVM01TM22000009\" names no node in this file",
                ),
                (
                    22,
                    "authorized serial \"fgvm01tm22000002\" may only use A-Z and 0-9",
                ),
                (22, "authorized serial \"FGVM01TM22000001\" is listed twice"),
                (23, "unknown capability \"fabric_auth\""),
                (23, "capability \"websocket\" is listed twice"),
                (23, "unknown capability \"telepathy\""),
                (24, "wrong value for \"respond\" in [[ems]]"),
                (25, "unknown key \"colour\" in [[ems]]"),
            ],
        );
        let found = problems(&text);
        assert_eq!(fix_for(&found, "\"ems 1\""), "write name = \"ems-1\"");
        assert_eq!(
            fix_for(&found, "FCTEMS12345"),
            "an EMS serial is \"FCTEMS\" followed by 10 digits; e.g. serial = \"FCTEMS8822000001\""
        );
        assert!(fix_for(&found, "ems_lab").ends_with("e.g. hostname = \"ems-lab.example\""));
        assert_eq!(
            fix_for(&found, "10.0.0.31"),
            "EMS servers listen on 127.0.0.0/8 only; e.g. listen = \"127.0.0.31:8443\""
        );
        assert_eq!(
            fix_for(&found, "certificate"),
            "write it like certificate = \"trusted\""
        );
        assert_eq!(
            fix_for(&found, "\"Site B\""),
            "write a site name of 1 to 63 letters, digits, \"-\" and \"_\", e.g. \"Site-B\""
        );
        assert_eq!(fix_for(&found, "fabric_auth"), "did you mean \"fabric-auth\"?");
        assert!(fix_for(&found, "telepathy").starts_with("capabilities are: fabric-auth, silent-approval"));
        assert_eq!(fix_for(&found, "respond"), "write it like respond = true");
        assert_eq!(
            fix_for(&found, "colour"),
            "valid keys in [[ems]]: name, serial, hostname, listen, certificate, sites, authorized, \
             capabilities, respond"
        );
    }

    #[test]
    fn ems_required_keys_and_wrong_shapes_are_explained() {
        let text =
            format!("{SMALL}\n[[ems]]\ncertificate = \"untrusted\"\nsites = \"Default\"\nrespond = 1\n");
        assert_problems(
            &text,
            &[
                (15, "missing key \"name\" in [[ems]]"),
                (15, "missing key \"serial\" in [[ems]]"),
                (15, "missing key \"hostname\" in [[ems]]"),
                (15, "missing key \"listen\" in [[ems]]"),
                (17, "wrong value for \"sites\" in [[ems]]"),
                (18, "wrong value for \"respond\" in [[ems]]"),
            ],
        );
        let found = problems(&text);
        assert_eq!(
            fix_for(&found, "\"hostname\""),
            "add hostname = \"ems.lab.example\""
        );
        assert_eq!(
            fix_for(&found, "\"sites\""),
            "write it like sites = [\"Default\", \"SiteA\"]"
        );

        assert_problems(
            &format!("ems = 1\ndns = 3\nchecks = 5\nbootstrap = []\n{SMALL}"),
            &[
                (1, "\"ems\" must be an array of tables, found an integer"),
                (2, "\"dns\" must be a table, found an integer"),
                (3, "\"checks\" must be a table, found an integer"),
                (4, "\"bootstrap\" must be a table, found an array"),
            ],
        );
        assert_problems(
            &format!("{SMALL}\n[ems]\nname = \"ems1\"\n"),
            &[(15, "\"ems\" must be an array of tables, found a table")],
        );
    }

    #[test]
    fn ems_names_serials_and_addresses_are_unique_and_port_zero_may_repeat() {
        let more = |name: &str, serial: &str, listen: &str| {
            format!(
                "\n[[ems]]\nname = \"{name}\"\nserial = \"{serial}\"\nhostname = \"{name}.lab.example\"\n\
                 listen = \"{listen}\"\n"
            )
        };
        let text = with_ems("")
            + &more("ems1", "FCTEMS8822001234", "127.0.0.31:8443")
            + &more("ems3", "FCTEMS8822000003", "127.0.0.12:8013")
            + &more("ems4", "FCTEMS8822000004", "127.0.0.12:0")
            + &more("ems5", "FCTEMS8822000005", "127.0.0.12:0");
        assert_problems(
            &text,
            &[
                (22, "two EMS servers are named \"ems1\": line 16 and line 22"),
                (
                    23,
                    "two EMS servers have serial \"FCTEMS8822001234\": EMS \"ems1\" (line 17) and \
                     EMS \"ems1\" (line 23)",
                ),
                (
                    25,
                    "EMS \"ems1\" listens on 127.0.0.31:8443 (line 25), as does EMS \"ems1\" (line 19)",
                ),
                (
                    31,
                    "EMS \"ems3\" listens on 127.0.0.12:8013 (line 31), as does node \"branch1\" (line 13)",
                ),
            ],
        );
        let found = problems(&text);
        assert!(fix_for(&found, "are named").ends_with("e.g. name = \"ems1-2\""));
        assert!(fix_for(&found, "have serial").contains("serial = \"FCTEMS8822000001\""));
        assert_eq!(
            fix_for(&found, "as does node"),
            "give EMS \"ems3\" its own address, e.g. listen = \"127.0.0.32:8013\", or port 0 to pick a free port"
        );
    }

    #[test]
    fn authorized_serials_are_well_formed_and_name_nodes() {
        let text =
            with_ems("authorized = [\"FGVM01TM22000003\", \"FGVM01TM22000777\", \"fgvm01tm22000002\"]\n");
        let found = problems(&text);
        assert_eq!(found.len(), 3, "{found:#?}");
        assert_eq!(
            fix_for(&found, "\"FGVM01TM22000003\""),
            "did you mean \"FGVM01TM22000001\"? an EMS authorizes nodes by serial"
        );
        assert_eq!(
            fix_for(&found, "\"FGVM01TM22000777\""),
            "list serials of nodes in this file: \"FGVM01TM22000001\", \"FGVM01TM22000002\""
        );
        assert!(
            fix_for(&found, "fgvm01tm22000002").ends_with("of nodes in this file, e.g. \"FGVM01TM22000002\"")
        );

        // Nodes that could not be read are not compared with.
        let text = with_ems("authorized = [\"FGVM01TM22000777\"]\n").replacen("[[node]]", "[[nodes]]", 2);
        let found = problems(&text);
        assert!(
            !found.iter().any(|p| p.message.contains("names no node")),
            "{found:#?}"
        );
    }

    #[test]
    fn dns_entries_are_names_with_ipv4_addresses() {
        let text = format!(
            r#"{SMALL}
[dns]
"ems_lab.example" = "127.0.0.31"
"a.example" = "::1"
"b.example" = "127.0.0.31:8443"
"c.example" = "somewhere"
"d.example" = 31
"E.example" = "127.0.0.5"
"e.example" = "127.0.0.6"
fabric.example = "127.0.0.7"
"-bad.example" = "127.0.0.8"
"127.0.0.9" = "127.0.0.9"
"x..example" = "127.0.0.10"
"#
        );
        assert_problems(
            &text,
            &[
                (
                    16,
                    "[dns] name \"ems_lab.example\" has the label \"ems_lab\", which may only use",
                ),
                (17, "[dns] address \"::1\" is an IPv6 address"),
                (18, "\"127.0.0.31:8443\" for \"b.example\" has a port"),
                (19, "[dns] address \"somewhere\" is not an IPv4 address"),
                (20, "wrong value for \"d.example\" in [dns]: found an integer"),
                (
                    22,
                    "two [dns] entries are for \"e.example\": \"E.example\" (line 21) and \"e.example\" (line 22)",
                ),
                (23, "the name fabric.example in [dns] is not quoted"),
                (24, "has the label \"-bad\", which starts or ends with \"-\""),
                (25, "[dns] name \"127.0.0.9\" is an IP address, not a name"),
                (26, "[dns] name \"x..example\" has an empty label"),
            ],
        );
        let found = problems(&text);
        assert!(fix_for(&found, "ems_lab").ends_with("e.g. \"ems-lab.example\" = \"127.0.0.31\""));
        assert_eq!(
            fix_for(&found, "has a port"),
            "write \"b.example\" = \"127.0.0.31\""
        );
        assert_eq!(
            fix_for(&found, "not quoted"),
            "quote the name: \"fabric.example\" = \"127.0.0.7\""
        );
        assert_eq!(
            fix_for(&found, "somewhere"),
            "write an IPv4 address, e.g. \"c.example\" = \"127.0.0.31\""
        );
        let unquoted = found.iter().find(|p| p.message.contains("not quoted")).unwrap();
        assert_eq!(unquoted.column, 1);
    }

    #[test]
    fn dns_names_of_an_ems_point_at_its_address() {
        let text = with_ems("sites = [\"SiteA\"]\n")
            + "\n[dns]\n\"EMS.lab.example\" = \"127.0.0.31\"\n\"default.ems.lab.example\" = \"127.0.0.99\"\n\
               \"sitea.ems.lab.example\" = \"127.0.0.31\"\n\"siteb.ems.lab.example\" = \"127.0.0.77\"\n\
               \"ems.lab.example.other\" = \"127.0.0.78\"\n";
        assert_problems(
            &text,
            &[(
                24,
                "[dns] name \"default.ems.lab.example\" points at 127.0.0.99, but it is site \"Default\" \
                 of EMS \"ems1\", which listens on 127.0.0.31 (line 19)",
            )],
        );
        let found = problems(&text);
        assert_eq!(found[0].fix, "write \"default.ems.lab.example\" = \"127.0.0.31\"");

        let text = with_ems("") + "\n[dns]\n\"ems.lab.example\" = \"127.0.0.32\"\n";
        assert_problems(
            &text,
            &[(
                22,
                "it is the hostname of EMS \"ems1\", which listens on 127.0.0.31 (line 19)",
            )],
        );

        // A site name that is not a site of the EMS may point anywhere; a good file keeps
        // the names lowercase.
        let text = with_ems("sites = [\"SiteA\"]\n")
            + "\n[dns]\n\"EMS.lab.example\" = \"127.0.0.31\"\n\"siteb.ems.lab.example\" = \"127.0.0.77\"\n";
        let dns = parse(&text).expect("valid").dns;
        assert_eq!(
            dns.keys().collect::<Vec<_>>(),
            ["ems.lab.example", "siteb.ems.lab.example"]
        );
    }

    #[test]
    fn checks_interval_and_bootstrap_lines_are_held_to_their_rules() {
        let text = format!(
            "{SMALL}\n[checks]\ninterval_secs = 0\ninterval = 5\n\n[bootstrap]\n\
             root = [\"config system global\", \"\"\"set hostname X\nend\"\"\"]\nbranch1 = []\n"
        );
        assert_problems(
            &text,
            &[
                (16, "interval_secs = 0 would start EMS check rounds without pause"),
                (17, "unknown key \"interval\" in [checks]"),
                (20, "a [bootstrap] line holds a line break"),
                (22, "unknown key \"branch1\" in [bootstrap]"),
            ],
        );
        let found = problems(&text);
        assert_eq!(
            fix_for(&found, "interval_secs = 0"),
            "write interval_secs = 30 (at least 1)"
        );
        assert_eq!(fix_for(&found, "\"interval\""), "did you mean \"interval_secs\"?");
        assert_eq!(
            fix_for(&found, "line break"),
            "write each CLI line as its own string: root = [\"set hostname X\", \"end\"]"
        );
        assert_eq!(fix_for(&found, "branch1"), "valid keys in [bootstrap]: root");

        let text = format!("{SMALL}\n[checks]\ninterval_secs = \"30\"\n");
        let found = problems(&text);
        assert_eq!(
            fix_for(&found, "interval_secs"),
            "write it like interval_secs = 30"
        );
    }

    #[test]
    fn a_name_above_the_tables_is_pointed_to_dns() {
        let text = format!("\"ems.lab.example\" = \"127.0.0.31\"\n{SMALL}");
        let found = problems(&text);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(
            found[0].message,
            "unknown key \"ems.lab.example\" at the top level"
        );
        assert_eq!(
            found[0].fix,
            "names to resolve belong in [dns]; move the line below that header"
        );
    }

    #[test]
    fn dns_names_follow_the_label_rules() {
        for good in [
            "ems.lab.example",
            "localhost",
            "a-1.B2.example",
            "xn--bcher-kva.example",
        ] {
            assert_eq!(fqdn_fault(good), None, "{good}");
        }
        let label = "a".repeat(MAX_DNS_LABEL_LEN);
        assert_eq!(fqdn_fault(&format!("{label}.example")), None);
        let fault = |name: &str| fqdn_fault(name).unwrap_or_else(|| panic!("{name} passed"));
        assert!(fault(&format!("{label}a.example")).contains("64 characters"));
        assert!(fault(&[label.as_str(); 4].join(".")).starts_with("has 255 characters (at most 253)"));
        assert_eq!(fault(""), "is empty");
        assert_eq!(fault("ems.lab.example."), "ends with \".\"");
        assert!(fault(".ems").contains("empty label"));
        assert!(fault("ems-.lab").contains("starts or ends with"));
        assert!(fault("ems lab").contains("may only use letters, digits and \"-\""));
        assert_eq!(fault("10.0.0.1"), "is an IP address, not a name");

        assert_eq!(fqdn_suggestion("EMS_Lab..Example."), "ems-lab.example");
        assert_eq!(fqdn_suggestion("___"), SUGGESTED_EMS_HOSTNAME);
        assert_eq!(fqdn_suggestion("10.0.0.1"), SUGGESTED_EMS_HOSTNAME);
    }

    #[test]
    fn ems_serials_are_fctems_and_ten_digits() {
        assert!(is_ems_serial("FCTEMS8822001234"));
        for bad in [
            "FCTEMS882200123",
            "FCTEMS88220012345",
            "fctems8822001234",
            "FCTEMS88220012AB",
            "FGVM01TM22000001",
        ] {
            assert!(!is_ems_serial(bad), "{bad}");
        }
        let found = problems(&with_ems("").replace("FCTEMS8822001234", "fctems8822001234"));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(
            found[0].message,
            "EMS serial \"fctems8822001234\" does not start with \"FCTEMS\""
        );
        assert!(
            found[0].fix.ends_with("e.g. serial = \"FCTEMS8822001234\""),
            "{found:#?}"
        );
    }

    #[test]
    fn a_bad_ems_table_renders_with_fixes_and_a_count() {
        let text = r#"[fabric]
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

[[ems]]
name = "ems1"
serial = "FCTEMS88220012"
hostname = "ems.lab.example"
listen = "127.0.0.12:8013"
certificate = "trustd"
sites = ["SiteA", "sitea"]
authorized = ["FGVM01TM22000001", "FGVM01TM22000003"]
capabilites = ["websocket"]

[dns]
"sitea.ems.lab.example" = "127.0.0.31"
"#;
        let error = Topology::parse(text, Path::new("cluster-configs/bad-ems.toml")).unwrap_err();
        let expected = r#"cluster-configs/bad-ems.toml:17:10: EMS serial "FCTEMS88220012" has 14 characters (16 needed)
    fix: an EMS serial is "FCTEMS" followed by 10 digits; e.g. serial = "FCTEMS8822000001"
cluster-configs/bad-ems.toml:19:10: EMS "ems1" listens on 127.0.0.12:8013 (line 19), as does node "branch1" (line 13)
    fix: give EMS "ems1" its own address, e.g. listen = "127.0.0.13:8013", or port 0 to pick a free port
cluster-configs/bad-ems.toml:20:15: wrong value for "certificate" in [[ems]]: unknown variant `trustd`, expected one of `trusted`, `untrusted`, `self-signed`, `expired`, `wrong-host`, `public`
    fix: write it like certificate = "trusted"
cluster-configs/bad-ems.toml:21:19: site "sitea" (line 21) repeats "SiteA" (line 21); site names are case-insensitive
    fix: remove the second "sitea" from sites
cluster-configs/bad-ems.toml:22:35: authorized serial "FGVM01TM22000003" names no node in this file
    fix: did you mean "FGVM01TM22000002"? an EMS authorizes nodes by serial
cluster-configs/bad-ems.toml:23:1: unknown key "capabilites" in [[ems]]
    fix: did you mean "capabilities"?
cluster-configs/bad-ems.toml:26:27: [dns] name "sitea.ems.lab.example" points at 127.0.0.31, but it is site "SiteA" of EMS "ems1", which listens on 127.0.0.12 (line 19)
    fix: write "sitea.ems.lab.example" = "127.0.0.12"
7 problems in cluster-configs/bad-ems.toml"#;
        assert_eq!(error.to_string(), expected);
    }

    /// [`SMALL`] and a minimal `[forticloud]` on lines 15 to 17; `extra` starts on line 18.
    fn with_cloud(extra: &str) -> String {
        format!("{SMALL}\n[forticloud]\nlisten = \"127.0.0.35:0\"\nems_listen = \"127.0.0.36:0\"\n{extra}")
    }

    #[test]
    fn forticloud_defaults_and_adds_its_names_to_dns() {
        let topology = parse(&with_cloud("")).expect("valid");
        let cloud = topology.forticloud.expect("[forticloud] is read");
        assert_eq!(
            cloud,
            ForticloudSpec {
                account: DEFAULT_FORTICLOUD_ACCOUNT.to_owned(),
                listen: "127.0.0.35:0".parse().unwrap(),
                ems_listen: "127.0.0.36:0".parse().unwrap(),
                registered: Vec::new(),
                contracts: Vec::new(),
            }
        );
        let dns: Vec<(&str, String)> = topology
            .dns
            .iter()
            .map(|(name, ip)| (name.as_str(), ip.to_string()))
            .collect();
        assert_eq!(
            dns,
            [
                (FORTICLOUD_HOSTNAME, "127.0.0.35".to_owned()),
                (EMS_CLOUD_HOSTNAME, "127.0.0.36".to_owned()),
            ]
        );
        assert_eq!(
            cloud.ems_cloud(),
            EmsSpec {
                name: "ems-cloud".to_owned(),
                serial: "FCTEMS0000000001".to_owned(),
                hostname: "fortigate.ems-cloud.example".to_owned(),
                listen: "127.0.0.36:0".parse().unwrap(),
                certificate: CertProfile::Public,
                sites: Vec::new(),
                authorized: Vec::new(),
                capabilities: all_capabilities(),
                respond: true,
            }
        );
    }

    #[test]
    fn forticloud_keys_and_contracts_are_read() {
        let text = with_cloud(
            "account = \"ops@fabric.example\"\nregistered = [\"FGVM01TM22000002\", \"FGVM01TM22000001\"]\n\n\
             [[forticloud.contract]]\nserial = \"FGVM01TM22000001\"\ntype = \"FCEM\"\nexpires = \"2027-12-31\"\n\n\
             [[forticloud.contract]]\nserial = \"FGVM01TM22000002\"\ntype = \"FCEM\"\nexpires = \"2024-02-29\"\n\n\
             [dns]\n\"FortiCloud.example\" = \"127.0.0.35\"\n",
        );
        let topology = parse(&text).expect("valid");
        let cloud = topology.forticloud.expect("[forticloud] is read");
        assert_eq!(cloud.account, "ops@fabric.example");
        assert_eq!(
            cloud.registered,
            ["FGVM01TM22000002", "FGVM01TM22000001"],
            "in file order"
        );
        let contract = |serial: &str, expires: &str| ContractSpec {
            serial: serial.to_owned(),
            kind: FCEM_CONTRACT.to_owned(),
            expires: expires.to_owned(),
        };
        assert_eq!(
            cloud.contracts,
            [
                contract("FGVM01TM22000001", "2027-12-31"),
                contract("FGVM01TM22000002", "2024-02-29")
            ]
        );
        assert_eq!(
            topology.dns.len(),
            2,
            "a written name is kept once: {:?}",
            topology.dns
        );

        // Contracts may also be written inline.
        let inline = with_cloud(
            "contract = [{ serial = \"FGVM01TM22000002\", type = \"FCEM\", expires = \"2030-01-01\" }]\n",
        );
        let cloud = parse(&inline).expect("valid").forticloud.unwrap();
        assert_eq!(cloud.contracts, [contract("FGVM01TM22000002", "2030-01-01")]);
    }

    #[test]
    fn every_problem_of_a_bad_forticloud_table_is_reported_on_its_line() {
        let text = format!(
            r#"{SMALL}
[forticloud]
account = "admin at lab"
listen = "10.0.0.35:443"
ems_listen = "ems-cloud:443"
registered = ["FGVM01TM22000001", "FGVM01TM22000001", "FGVM01TM22000003", "fgvm"]
regsitered = []

[[forticloud.contract]]
serial = "FGVM01TM22000009"
type = "fcem"
expires = "2027-02-30"

[[forticloud.contract]]
serial = "FGVM01TM22000001"
type = "FCXX"
expires = "31/12/2027"
expiry = "2027-12-31"

[[forticloud.contract]]
serial = "FGVM01TM22000002"
type = "FCEM"
expires = "2027-12-31"

[[forticloud.contract]]
serial = "FGVM01TM22000002"
type = "FCEM"
expires = "2028-12-31"
"#
        );
        assert_problems(
            &text,
            &[
                (16, "FortiCloud account \"admin at lab\" is not an email address"),
                (17, "listen \"10.0.0.35:443\" is not a loopback address"),
                (18, "ems_listen \"ems-cloud:443\" is not an IPv4 address and port"),
                (19, "registered serial \"FGVM01TM22000001\" is listed twice"),
                (
                    19,
                    "registered serial \"FGVM01TM22000003\" names no node in this file",
                ),
                (19, "registered serial \"fgvm\" has 4 characters"),
                (20, "unknown key \"regsitered\" in [forticloud]"),
                (
                    23,
                    "contract serial \"FGVM01TM22000009\" names no node in this file",
                ),
                (24, "unknown contract type \"fcem\""),
                (25, "expires \"2027-02-30\" has day 30, but 2027-02 has 28 days"),
                (29, "unknown contract type \"FCXX\""),
                (30, "expires \"31/12/2027\" is not a date written YYYY-MM-DD"),
                (31, "unknown key \"expiry\" in [[forticloud.contract]]"),
                (
                    38,
                    "two FCEM contracts for \"FGVM01TM22000002\": line 33 and line 38",
                ),
            ],
        );
        let found = problems(&text);
        assert_eq!(
            fix_for(&found, "account"),
            "write the account's email address, e.g. account = \"admin@lab.example\", or remove the \
             line to get that one"
        );
        assert_eq!(
            fix_for(&found, "10.0.0.35"),
            "FortiCloud and EMS Cloud listen on 127.0.0.0/8 only; e.g. listen = \"127.0.0.35:443\""
        );
        assert_eq!(
            fix_for(&found, "ems-cloud:443"),
            "write ip:port on loopback, e.g. ems_listen = \"127.0.0.36:0\" (port 0 picks a free port)"
        );
        assert_eq!(
            fix_for(&found, "\"FGVM01TM22000003\""),
            "did you mean \"FGVM01TM22000002\"? FortiCloud registers nodes by serial"
        );
        assert_eq!(
            fix_for(&found, "is listed twice"),
            "remove the second \"FGVM01TM22000001\" from registered"
        );
        assert_eq!(fix_for(&found, "regsitered"), "did you mean \"registered\"?");
        assert_eq!(
            fix_for(&found, "\"FGVM01TM22000009\""),
            "did you mean \"FGVM01TM22000001\"? FortiCloud holds contracts for nodes by serial"
        );
        assert_eq!(
            fix_for(&found, "\"fcem\""),
            "write type = \"FCEM\"; contract types are written in capitals"
        );
        assert_eq!(fix_for(&found, "\"FCXX\""), "did you mean \"FCEM\"?");
        assert_eq!(
            fix_for(&found, "2027-02-30"),
            "write the contract's last day as YYYY-MM-DD, e.g. expires = \"2027-12-31\""
        );
        assert_eq!(fix_for(&found, "expiry"), "did you mean \"expires\"?");
        assert_eq!(
            fix_for(&found, "two FCEM contracts"),
            "a FortiGate holds one contract of each type; remove the [[forticloud.contract]] on line 38"
        );
    }

    #[test]
    fn forticloud_required_keys_and_shapes_are_explained() {
        let text =
            format!("{SMALL}\n[forticloud]\naccount = 7\n\n[[forticloud.contract]]\ntype = \"FCEM\"\n");
        assert_problems(
            &text,
            &[
                (15, "missing key \"listen\" in [forticloud]"),
                (15, "missing key \"ems_listen\" in [forticloud]"),
                (16, "wrong value for \"account\" in [forticloud]"),
                (18, "missing key \"serial\" in [[forticloud.contract]]"),
                (18, "missing key \"expires\" in [[forticloud.contract]]"),
            ],
        );
        let found = problems(&text);
        assert_eq!(
            fix_for(&found, "\"ems_listen\""),
            "add ems_listen = \"127.0.0.36:0\""
        );
        assert_eq!(fix_for(&found, "\"expires\""), "add expires = \"2027-12-31\"");

        assert_problems(
            &format!("forticloud = 1\n{SMALL}"),
            &[(1, "\"forticloud\" must be a table, found an integer")],
        );
        let text = with_cloud("contract = \"FCEM\"\n");
        assert_problems(
            &text,
            &[(18, "\"contract\" must be an array of tables, found a string")],
        );
        assert_eq!(
            problems(&text)[0].fix,
            "write [[forticloud.contract]] above each entry (two brackets)"
        );
        let text = format!("{SMALL}\n[[contract]]\nserial = \"FGVM01TM22000001\"\n");
        assert_problems(&text, &[(15, "unknown key \"contract\" at the top level")]);
        assert_eq!(
            problems(&text)[0].fix,
            "write the header [[forticloud.contract]] instead"
        );
        let text = with_cloud("expires = \"2027-12-31\"\n");
        assert_problems(&text, &[(18, "unknown key \"expires\" in [forticloud]")]);
        let contract = |expires: &str| {
            with_cloud(&format!(
                "\n[[forticloud.contract]]\nserial = \"FGVM01TM22000001\"\ntype = \"FCEM\"\nexpires = {expires}\n"
            ))
        };
        assert_problems(
            &contract("20271231"),
            &[(22, "wrong value for \"expires\" in [[forticloud.contract]]")],
        );
        assert_eq!(
            problems(&contract("[2027, 12, 31]"))[0].fix,
            "write it like expires = \"2027-12-31\""
        );
        assert_problems(
            &contract("2027-12-31T23:59:59Z"),
            &[(
                22,
                "expires \"2027-12-31T23:59:59Z\" is a date and time; a contract ends on a whole day",
            )],
        );
        // A TOML date is read as the date it is.
        let cloud = parse(&contract("2027-12-31")).expect("valid").forticloud.unwrap();
        assert_eq!(cloud.contracts[0].expires, "2027-12-31");
    }

    #[test]
    fn forticloud_addresses_and_names_are_its_own() {
        let text =
            with_ems("") + "\n[forticloud]\nlisten = \"127.0.0.12:8013\"\nems_listen = \"127.0.0.31:8443\"\n";
        assert_problems(
            &text,
            &[
                (
                    22,
                    "FortiCloud listens on 127.0.0.12:8013 (line 22), as does node \"branch1\" (line 13)",
                ),
                (
                    23,
                    "EMS Cloud listens on 127.0.0.31:8443 (line 23), as does EMS \"ems1\" (line 19)",
                ),
            ],
        );
        let found = problems(&text);
        assert_eq!(
            fix_for(&found, "FortiCloud listens"),
            "give FortiCloud its own address, e.g. listen = \"127.0.0.32:8013\", or port 0 to pick a free port"
        );
        assert!(fix_for(&found, "EMS Cloud listens").contains("ems_listen = \"127.0.0.32:8443\""));

        let text = with_cloud("")
            .replace("127.0.0.36:0", "127.0.0.35:443")
            .replace("127.0.0.35:0", "127.0.0.35:443");
        assert_problems(
            &text,
            &[(
                17,
                "EMS Cloud listens on 127.0.0.35:443 (line 17), as does FortiCloud (line 16)",
            )],
        );
        let text = with_cloud("").replace("127.0.0.35:0", "127.0.0.12:0");
        assert!(parse(&text).is_ok(), "port 0 picks a free port, so it may repeat");

        let text = format!(
            "{SMALL}\n[[ems]]\nname = \"ems-cloud\"\nserial = \"FCTEMS0000000001\"\n\
             hostname = \"Fortigate.EMS-Cloud.example\"\nlisten = \"127.0.0.31:8443\"\n\n\
             [[ems]]\nname = \"ems2\"\nserial = \"FCTEMS8822000002\"\nhostname = \"forticloud.example\"\n\
             listen = \"127.0.0.32:8443\"\n"
        );
        assert!(parse(&text).is_ok(), "the names are free without [forticloud]");
        let text = text + "\n[forticloud]\nlisten = \"127.0.0.35:0\"\nems_listen = \"127.0.0.36:0\"\n";
        assert_problems(
            &text,
            &[
                (
                    16,
                    "EMS name \"ems-cloud\" is the name of the EMS Cloud server of [forticloud]",
                ),
                (
                    17,
                    "EMS serial \"FCTEMS0000000001\" of EMS \"ems-cloud\" is the serial of the EMS Cloud \
                     server",
                ),
                (
                    18,
                    "EMS hostname \"fortigate.ems-cloud.example\" of EMS \"ems-cloud\" is the name of EMS Cloud",
                ),
                (
                    24,
                    "EMS hostname \"forticloud.example\" of EMS \"ems2\" is the name of FortiCloud",
                ),
            ],
        );
        let found = problems(&text);
        assert_eq!(
            fix_for(&found, "EMS name"),
            "rename the EMS, e.g. name = \"ems-cloud-2\""
        );
        assert!(fix_for(&found, "EMS serial").ends_with("e.g. serial = \"FCTEMS8822000001\""));
    }

    #[test]
    fn dns_names_of_forticloud_point_at_it() {
        let text = with_cloud(
            "\n[dns]\n\"forticloud.example\" = \"127.0.0.99\"\n\"fortigate.ems-cloud.example\" = \"127.0.0.36\"\n",
        );
        assert_problems(
            &text,
            &[(
                20,
                "[dns] name \"forticloud.example\" points at 127.0.0.99, but it is the name of FortiCloud, \
                 which listens on 127.0.0.35 (line 16)",
            )],
        );
        assert_eq!(
            problems(&text)[0].fix,
            "write \"forticloud.example\" = \"127.0.0.35\""
        );
        let text = format!("{SMALL}\n[dns]\n\"forticloud.example\" = \"127.0.0.99\"\n");
        let dns = parse(&text)
            .expect("without [forticloud] the name is anyone's")
            .dns;
        assert_eq!(dns[FORTICLOUD_HOSTNAME], "127.0.0.99".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn contract_dates_are_real_days_written_yyyy_mm_dd() {
        assert_eq!(parse_contract_date("2027-12-31"), Ok((2027, 12, 31)));
        assert_eq!(parse_contract_date("2028-02-29"), Ok((2028, 2, 29)));
        assert_eq!(parse_contract_date("2000-02-29"), Ok((2000, 2, 29)));
        let fault = |text: &str| parse_contract_date(text).unwrap_err();
        assert_eq!(fault("2100-02-29"), "has day 29, but 2100-02 has 28 days");
        assert_eq!(fault("2027-13-01"), "has month 13; months are 01 to 12");
        assert_eq!(fault("2027-04-31"), "has day 31, but 2027-04 has 30 days");
        assert_eq!(fault("2027-01-00"), "has day 00, but 2027-01 has 31 days");
        for shape in [
            "2027-1-05",
            "27-01-05",
            "2027/01/05",
            "2027-01-05T00:00",
            "２０２７-01-05",
            "+027-01-05",
            "",
        ] {
            assert_eq!(fault(shape), "is not a date written YYYY-MM-DD", "{shape:?}");
        }
        assert_eq!(date_suggestion("2027-1-5"), "2027-01-05");
        assert_eq!(date_suggestion("2027/12/31"), "2027-12-31");
        assert_eq!(date_suggestion("31/12/2027"), SUGGESTED_CONTRACT_DATE);
        assert_eq!(date_suggestion("2027-02-30"), SUGGESTED_CONTRACT_DATE);
    }

    #[test]
    fn a_bad_forticloud_table_renders_with_fixes_and_a_count() {
        let text = with_cloud(
            "registered = [\"FGVM01TM22000003\"]\n\n[[forticloud.contract]]\nserial = \"FGVM01TM22000001\"\n\
             type = \"FCEM\"\nexpires = \"2027-12-32\"\n",
        );
        let error = Topology::parse(&text, Path::new("cluster-configs/bad-cloud.toml")).unwrap_err();
        let expected = r#"cluster-configs/bad-cloud.toml:18:15: registered serial "FGVM01TM22000003" names no node in this file
    fix: did you mean "FGVM01TM22000001"? FortiCloud registers nodes by serial
cluster-configs/bad-cloud.toml:23:11: expires "2027-12-32" has day 32, but 2027-12 has 31 days
    fix: write the contract's last day as YYYY-MM-DD, e.g. expires = "2027-12-31"
2 problems in cluster-configs/bad-cloud.toml"#;
        assert_eq!(error.to_string(), expected);
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
