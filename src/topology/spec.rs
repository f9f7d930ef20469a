//! The validated topology and what a failed read reports: the types the rest of the crate
//! works with ([`Topology`], [`NodeSpec`], [`EmsSpec`], [`ForticloudSpec`], ...), the
//! defaults the file may leave out, and [`TopologyError`] with its [`Problem`]s. Nothing
//! here reads text; the reader of `super` builds these values once every rule holds.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::domain::{EMS_CAPABILITIES, EMS_CLOUD_HOSTNAME, EMS_CLOUD_NAME, EMS_CLOUD_SERIAL, Firmware};

/// Raft voters, the root included, when `[fabric] voters` is not given. Five voters keep
/// committing with two of them down; more voters only make each commit wait for more disks.
pub const DEFAULT_VOTERS: usize = 5;
/// Fewest voters a fabric can run with: the root alone.
pub const MIN_VOTERS: usize = 1;
/// Most voters: every commit waits for a majority of the voters' disks, so beyond 15 (a
/// quorum of 8) a write only gets slower; the other members join as learners (ours).
pub const MAX_VOTERS: usize = 15;
/// Interval between leader heartbeats when `[raft] heartbeat_ms` is not given.
pub const DEFAULT_HEARTBEAT_MS: u64 = 250;
/// Shortest heartbeat interval accepted: zero would make the leader send without pause.
pub const MIN_HEARTBEAT_MS: u64 = 1;
/// Longest heartbeat interval accepted: 30 seconds, so a lost leader is noticed within a
/// minute or two, as a FortiGate notices a lost Fabric upstream (ours).
pub const MAX_HEARTBEAT_MS: u64 = 30_000;
/// Longest election timeout accepted (either bound): two minutes, four of the longest
/// heartbeats (ours).
pub const MAX_ELECTION_TIMEOUT_MS: u64 = 120_000;
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
/// Largest `snapshot_every`: a million entries, far more than a fabric's configuration
/// changes in its life; beyond, the log would only grow (ours).
pub const MAX_SNAPSHOT_EVERY: u64 = 1_000_000;
/// Largest `keep_logs`, for the same reason as [`MAX_SNAPSHOT_EVERY`] (ours).
pub const MAX_KEEP_LOGS: u64 = 1_000_000;
/// Smallest node id: ids count from 1, as the default (the position in the file) does.
pub const MIN_NODE_ID: u64 = 1;
/// Largest node id: 65535, room for any fabric while every id stays a small number in
/// logs and status (ours).
pub const MAX_NODE_ID: u64 = 65_535;
/// Log entries kept behind a snapshot when not given, so a member that lags a little catches
/// up from the log instead of receiving a whole snapshot.
pub const DEFAULT_KEEP_LOGS: u64 = 100;
/// A node's hostname, when not given, is this prefix and the node name, as in `FGT-root`.
pub const DEFAULT_HOSTNAME_PREFIX: &str = "FGT-";
/// The [`Topology::source`] of a topology parsed from text that came from no file.
pub const MEMORY_SOURCE: &str = "<memory>";
/// The FortiCloud account when `[forticloud] account` is not given.
pub const DEFAULT_FORTICLOUD_ACCOUNT: &str = "admin@lab.example";

/// A node's REST API (HTTPS) port when `https` is not given: FortiOS serves its admin
/// HTTPS on 443; fabricsim's nodes share loopback with the user's own programs, so it uses
/// an unprivileged port (ours).
pub const DEFAULT_HTTPS_PORT: u16 = 10443;
/// A node's SSH CLI port when `ssh` is not given: FortiOS uses 22; unprivileged here, as
/// [`DEFAULT_HTTPS_PORT`].
pub const DEFAULT_SSH_PORT: u16 = 10022;
/// The administrator when `[admin] user` is not given: FortiOS's factory account.
pub const DEFAULT_ADMIN_USER: &str = "admin";
/// The administrator's password when `[admin] password` is not given: FortiOS ships with an
/// empty one.
pub const DEFAULT_ADMIN_PASSWORD: &str = "";
/// An API user's access profile when `[[api_user]] accprofile` is not given.
pub const DEFAULT_ACCPROFILE: &str = "super_admin";

/// A byte range of the file, as toml reports where a key or value was written.
pub(super) type Span = Range<usize>;

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
    /// lowercase FQDN to address, plus [`FORTICLOUD_HOSTNAME`](crate::domain::FORTICLOUD_HOSTNAME) and [`EMS_CLOUD_HOSTNAME`]
    /// when `[forticloud]` is given.
    pub dns: BTreeMap<String, IpAddr>,
    /// How often and how the nodes check their EMS connectors: the `[checks]` table.
    pub checks: CheckSettings,
    /// The administrator every node knows: the `[admin]` table.
    pub admin: AdminSpec,
    /// REST API users every node knows: the `[[api_user]]` tables, in file order.
    pub api_users: Vec<ApiUserSpec>,
    /// CLI lines the root runs once, on the fabric's first start: `[bootstrap] root = [...]`.
    /// Questions (`(y/n)`) are answered with `y`.
    pub bootstrap: Vec<String>,
    /// The file the topology was read from, or [`MEMORY_SOURCE`].
    pub source: PathBuf,
}

/// The administrator account of every node: the `[admin]` table. Like a FortiGate's
/// factory `admin`, it is written into each node's own `config system admin` at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSpec {
    /// Login name; default [`DEFAULT_ADMIN_USER`].
    pub user: String,
    /// Password; default [`DEFAULT_ADMIN_PASSWORD`] (empty, as FortiOS ships).
    pub password: String,
}

impl Default for AdminSpec {
    fn default() -> Self {
        AdminSpec {
            user: DEFAULT_ADMIN_USER.to_owned(),
            password: DEFAULT_ADMIN_PASSWORD.to_owned(),
        }
    }
}

/// A REST API user of every node: an `[[api_user]]` table, written into each node's own
/// `config system api-user` at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiUserSpec {
    /// The api-user name.
    pub name: String,
    /// A fixed API key, so that tests and scripts need no `execute api-user generate-key`;
    /// `None` leaves the user without a key until one is generated.
    pub key: Option<String>,
    /// The access profile; default [`DEFAULT_ACCPROFILE`].
    pub accprofile: String,
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
    /// The FortiCloud API's HTTPS address on loopback IPv4 (named [`FORTICLOUD_HOSTNAME`](crate::domain::FORTICLOUD_HOSTNAME));
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
    /// The contract type, one of [`CONTRACT_TYPES`](crate::domain::CONTRACT_TYPES) (the file's `type` key).
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
/// Most seconds between EMS check rounds: an hour, the longest a FortiGate waits before
/// it polls its EMS again (ours: FortiOS polls every few minutes at most).
pub const MAX_CHECK_INTERVAL_SECS: u64 = 3600;

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
    /// The FortiOS release every node runs: the version it reports and the shape of its
    /// fctems table (`docs/fortios.md`, "Firmware profiles").
    pub firmware: Firmware,
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
    /// REST API (HTTPS) address on loopback IPv4; port 0 picks a free port.
    pub https: SocketAddr,
    /// SSH CLI address on loopback IPv4; port 0 picks a free port.
    pub ssh: SocketAddr,
    /// Members: pre-authorized, admitted by the root without a trusted-list entry (an
    /// entry with `action deny` still keeps it out). Always `true` for the root.
    pub authorized: bool,
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
