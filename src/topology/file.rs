//! The file as written: the schema of each table (`Section` and its `Key`s, with a valid
//! example for every key) and the serde structs the reader fills from it, every value
//! kept with its span so that a rule can report the line it breaks.

use std::fmt;

use serde::Deserialize;
use serde::de::IgnoredAny;
use toml::Spanned;

use super::spec::{
    MAX_CHECK_INTERVAL_SECS, MAX_ELECTION_TIMEOUT_MS, MAX_HEARTBEAT_MS, MAX_KEEP_LOGS, MAX_NODE_ID,
    MAX_SNAPSHOT_EVERY, MAX_VOTERS, MIN_CHECK_INTERVAL_SECS, MIN_HEARTBEAT_MS, MIN_NODE_ID,
    MIN_SNAPSHOT_EVERY, MIN_VOTERS,
};

/// A key one table accepts.
pub(super) struct Key {
    /// The key as written in the file.
    pub(super) name: &'static str,
    /// Whether the table is incomplete without it.
    pub(super) required: bool,
    /// A valid value, as TOML, for fixes that show what to write.
    pub(super) example: &'static str,
    /// For a number: the smallest and largest value accepted.
    pub(super) range: Option<(u64, u64)>,
}

/// A table of the file and the keys it accepts.
pub(super) struct Section {
    /// The key of the table in its parent, e.g. `node` for `[[node]]`.
    pub(super) key: &'static str,
    /// The table holding this one: `None` for the top level, `Some("forticloud")` for
    /// `[[forticloud.contract]]`.
    pub(super) parent: Option<&'static str>,
    /// `true` for an array of tables (`[[node]]`), `false` for one table (`[fabric]`).
    pub(super) repeated: bool,
    /// Whether the file is incomplete without it.
    pub(super) required: bool,
    /// The keys inside the table.
    pub(super) keys: &'static [Key],
}

/// A key the table cannot do without; `example` is a valid value written as TOML.
pub(super) const fn required(name: &'static str, example: &'static str) -> Key {
    Key {
        name,
        required: true,
        example,
        range: None,
    }
}

/// A key with a default; `example` is a valid value written as TOML.
pub(super) const fn optional(name: &'static str, example: &'static str) -> Key {
    Key {
        name,
        required: false,
        example,
        range: None,
    }
}

/// A number with a default, accepted from `min` to `max`; `example` is a valid value.
pub(super) const fn number(name: &'static str, example: &'static str, min: u64, max: u64) -> Key {
    Key {
        name,
        required: false,
        example,
        range: Some((min, max)),
    }
}

impl Section {
    /// The table header as a person writes it: `[fabric]`, `[[node]]` or
    /// `[[forticloud.contract]]`.
    pub(super) fn header(&self) -> String {
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
pub(super) const FABRIC: Section = Section {
    key: "fabric",
    parent: None,
    repeated: false,
    required: true,
    keys: &[
        required("name", "\"default\""),
        number("voters", "5", MIN_VOTERS as u64, MAX_VOTERS as u64),
        optional("firmware", "\"7.0.12\""),
    ],
};

/// `[raft]`: optional, every key has a default.
pub(super) const RAFT: Section = Section {
    key: "raft",
    parent: None,
    repeated: false,
    required: false,
    keys: &[
        number("heartbeat_ms", "250", MIN_HEARTBEAT_MS, MAX_HEARTBEAT_MS),
        number(
            "election_timeout_min_ms",
            "1000",
            MIN_HEARTBEAT_MS,
            MAX_ELECTION_TIMEOUT_MS,
        ),
        number(
            "election_timeout_max_ms",
            "2000",
            MIN_HEARTBEAT_MS,
            MAX_ELECTION_TIMEOUT_MS,
        ),
        number("snapshot_every", "500", MIN_SNAPSHOT_EVERY, MAX_SNAPSHOT_EVERY),
        number("keep_logs", "100", 0, MAX_KEEP_LOGS),
    ],
};

/// `[[node]]`: one per FortiGate; an empty list is reported with the rules between nodes.
pub(super) const NODE: Section = Section {
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
        number("id", "2", MIN_NODE_ID, MAX_NODE_ID),
        optional("upstream", "\"root\""),
        optional("https", "\"127.0.0.12:10443\""),
        optional("ssh", "\"127.0.0.12:10022\""),
        optional("authorized", "true"),
    ],
};

/// `[[ems]]`: one per simulated EMS server; a fabric may have none.
pub(super) const EMS: Section = Section {
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
pub(super) const FORTICLOUD: Section = Section {
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
pub(super) const CONTRACT: Section = Section {
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
pub(super) const DNS: Section = Section {
    key: "dns",
    parent: None,
    repeated: false,
    required: false,
    keys: &[],
};

/// `[checks]`: optional, every key has a default.
pub(super) const CHECKS: Section = Section {
    key: "checks",
    parent: None,
    repeated: false,
    required: false,
    keys: &[number(
        "interval_secs",
        "30",
        MIN_CHECK_INTERVAL_SECS,
        MAX_CHECK_INTERVAL_SECS,
    )],
};

/// `[admin]`: optional; the administrator every node knows.
pub(super) const ADMIN: Section = Section {
    key: "admin",
    parent: None,
    repeated: false,
    required: false,
    keys: &[
        optional("user", "\"admin\""),
        optional("password", "\"fortinet\""),
    ],
};

/// `[[api_user]]`: one per REST API user every node knows; none by default.
pub(super) const API_USER: Section = Section {
    key: "api_user",
    parent: None,
    repeated: true,
    required: false,
    keys: &[
        required("name", "\"automation\""),
        optional("key", "\"r7Qm2vXk9sLp4tWz8nBc3hJd6fGy1a\""),
        optional("accprofile", "\"super_admin\""),
    ],
};

/// `[bootstrap]`: optional, the CLI lines run on the fabric's first start.
pub(super) const BOOTSTRAP: Section = Section {
    key: "bootstrap",
    parent: None,
    repeated: false,
    required: false,
    keys: &[optional(
        "root",
        "[\"config endpoint-control fctems\", \"edit ems1\", \"end\"]",
    )],
};
use super::spec::{CertProfile, Role, Span};

/// The arrays of tables that live inside a table of [`SECTIONS`].
pub(super) const NESTED_SECTIONS: &[&Section] = &[&CONTRACT];

/// Every table the file may contain at the top level.
pub(super) const SECTIONS: &[&Section] = &[
    &FABRIC,
    &RAFT,
    &NODE,
    &EMS,
    &FORTICLOUD,
    &DNS,
    &CHECKS,
    &ADMIN,
    &API_USER,
    &BOOTSTRAP,
];

/// `[fabric]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FabricTable {
    /// Fabric name; the state directory is `.fabricsim/<name>/`. Letters, digits, `-` and
    /// `_`, at most [`MAX_NAME_LEN`] characters. Required.
    pub(super) name: Option<Spanned<String>>,
    /// Raft voters including the root; further members join as learners. Default
    /// [`DEFAULT_VOTERS`], at least [`MIN_VOTERS`].
    pub(super) voters: Option<Spanned<usize>>,
    /// The FortiOS release every node presents (`"7.0.12"`), one of
    /// [`crate::domain::Firmware::all`]. Default: FortiOS 7.0.5, keyed by name.
    pub(super) firmware: Option<Spanned<String>>,
}

/// `[raft]` as written; the whole table is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RaftTable {
    /// Leader heartbeat interval in milliseconds. Default [`DEFAULT_HEARTBEAT_MS`].
    pub(super) heartbeat_ms: Option<Spanned<u64>>,
    /// Election timeout lower bound in milliseconds, above `heartbeat_ms`. Default
    /// [`DEFAULT_ELECTION_TIMEOUT_MIN_MS`].
    pub(super) election_timeout_min_ms: Option<Spanned<u64>>,
    /// Election timeout upper bound in milliseconds, above the lower bound. Default
    /// [`DEFAULT_ELECTION_TIMEOUT_MAX_MS`].
    pub(super) election_timeout_max_ms: Option<Spanned<u64>>,
    /// Build a snapshot after this many log entries since the last one. Default
    /// [`DEFAULT_SNAPSHOT_EVERY`], at least [`MIN_SNAPSHOT_EVERY`].
    pub(super) snapshot_every: Option<Spanned<u64>>,
    /// Log entries kept behind a snapshot. Default [`DEFAULT_KEEP_LOGS`].
    pub(super) keep_logs: Option<Spanned<u64>>,
}

/// One `[[node]]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NodeTable {
    /// Node name used on the command line. Letters, digits, `-` and `_`, at most
    /// [`MAX_NAME_LEN`] characters. Required.
    pub(super) name: Option<Spanned<String>>,
    /// FortiGate serial: [`SERIAL_LEN`] characters, `A-Z` and `0-9`, starting with
    /// [`SERIAL_PREFIX`]. Required.
    pub(super) serial: Option<Spanned<String>>,
    /// `"root"` or `"member"`. Default `"member"`; exactly one node is the root.
    pub(super) role: Option<Spanned<Role>>,
    /// gRPC address, `ip:port` on loopback IPv4 (127.0.0.0/8); port 0 picks a free port.
    /// Required.
    pub(super) listen: Option<Spanned<String>>,
    /// FortiOS hostname. Default [`DEFAULT_HOSTNAME_PREFIX`] followed by the name.
    pub(super) hostname: Option<Spanned<String>>,
    /// Raft node id. Default: the node's 1-based position in the file.
    pub(super) id: Option<Spanned<u64>>,
    /// Members only: the node this member connects upstream to. Default: the root.
    pub(super) upstream: Option<Spanned<String>>,
    /// REST API (HTTPS) address, `ip:port` on loopback IPv4. Default: the `listen` IP and
    /// [`DEFAULT_HTTPS_PORT`] (port 0 when `listen` asks for port 0).
    pub(super) https: Option<Spanned<String>>,
    /// SSH CLI address, `ip:port` on loopback IPv4. Default: the `listen` IP and
    /// [`DEFAULT_SSH_PORT`] (port 0 when `listen` asks for port 0).
    pub(super) ssh: Option<Spanned<String>>,
    /// Members only: whether the root admits this member without a trusted-list entry
    /// (pre-authorized). Default `true`; `false` leaves it pending until the root's
    /// `config system csf` / `config trusted-list` accepts its serial.
    pub(super) authorized: Option<Spanned<bool>>,
}

/// One `[[ems]]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EmsTable {
    /// Name used on the command line (`fabricsim ems NAME`). Letters, digits, `-` and `_`,
    /// at most [`MAX_NAME_LEN`] characters, unique among the EMS servers. Required.
    pub(super) name: Option<Spanned<String>>,
    /// EMS serial: [`EMS_SERIAL_PREFIX`] and [`EMS_SERIAL_DIGITS`] digits. Required.
    pub(super) serial: Option<Spanned<String>>,
    /// The EMS's FQDN, its certificate's CN; kept in lowercase. Required.
    pub(super) hostname: Option<Spanned<String>>,
    /// HTTPS address, `ip:port` on loopback IPv4, shared with no node and no other EMS;
    /// port 0 picks a free port. Required.
    pub(super) listen: Option<Spanned<String>>,
    /// Which certificate the EMS presents. Default [`CertProfile::Trusted`].
    pub(super) certificate: Option<Spanned<CertProfile>>,
    /// Site names of a multitenant EMS; [`DEFAULT_EMS_SITE`] is added first when missing.
    /// Default: none, a single-tenant EMS.
    pub(super) sites: Option<Vec<Spanned<String>>>,
    /// Serials of the nodes the EMS authorizes from the start. Default: none.
    pub(super) authorized: Option<Vec<Spanned<String>>>,
    /// Capabilities the EMS reports, out of [`EMS_CAPABILITIES`]. Default: all of them.
    pub(super) capabilities: Option<Vec<Spanned<String>>>,
    /// `false` for an EMS that accepts connections and never answers. Default `true`.
    pub(super) respond: Option<Spanned<bool>>,
}

/// `[forticloud]` as written; the whole table is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ForticloudTable {
    /// The account's email address, at most [`MAX_ACCOUNT_LEN`] characters. Default
    /// [`DEFAULT_FORTICLOUD_ACCOUNT`].
    pub(super) account: Option<Spanned<String>>,
    /// The FortiCloud API's HTTPS address, `ip:port` on loopback IPv4, shared with no node,
    /// no EMS and not with `ems_listen`; port 0 picks a free port. Required.
    pub(super) listen: Option<Spanned<String>>,
    /// The EMS Cloud server's HTTPS address, under the same rules as `listen`. Required.
    pub(super) ems_listen: Option<Spanned<String>>,
    /// Serials of the nodes registered to the account from the start. Default: none.
    pub(super) registered: Option<Vec<Spanned<String>>>,
    /// The `[[forticloud.contract]]` entries: accepted here whatever their shape and read
    /// as [`ContractTable`]s on their own, so that each entry's keys are checked like any
    /// table's.
    #[serde(rename = "contract")]
    pub(super) _contract: Option<IgnoredAny>,
}

/// One `[[forticloud.contract]]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ContractTable {
    /// Serial of the node the contract is for. Required.
    pub(super) serial: Option<Spanned<String>>,
    /// The contract type, one of [`CONTRACT_TYPES`]. Required.
    #[serde(rename = "type")]
    pub(super) kind: Option<Spanned<String>>,
    /// The contract's last day, `YYYY-MM-DD`, quoted or as a TOML date. Required.
    pub(super) expires: Option<Spanned<WrittenDate>>,
}

/// A contract date as written: a string, or a TOML date (`expires = 2027-12-31`), which a
/// person writing TOML may well reach for.
#[derive(Debug)]
pub(super) enum WrittenDate {
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
pub(super) struct ChecksTable {
    /// Seconds between EMS check rounds on each node. Default
    /// [`DEFAULT_CHECK_INTERVAL_SECS`], at least [`MIN_CHECK_INTERVAL_SECS`].
    pub(super) interval_secs: Option<Spanned<u64>>,
}

/// `[admin]` as written; the whole table is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AdminTable {
    /// Login name, at most [`MAX_ACCOUNT_NAME_LEN`] characters. Default
    /// [`DEFAULT_ADMIN_USER`].
    pub(super) user: Option<Spanned<String>>,
    /// Password, at most [`MAX_PASSWORD_LEN`] characters. Default empty, as FortiOS ships.
    pub(super) password: Option<Spanned<String>>,
}

/// One `[[api_user]]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ApiUserTable {
    /// The api-user name, unique among the API users. Required.
    pub(super) name: Option<Spanned<String>>,
    /// A fixed API key: letters and digits, [`MIN_API_KEY_LEN`] to [`MAX_API_KEY_LEN`]
    /// characters. Default: none, until `execute api-user generate-key`.
    pub(super) key: Option<Spanned<String>>,
    /// The access profile. Default [`DEFAULT_ACCPROFILE`].
    pub(super) accprofile: Option<Spanned<String>>,
}

/// `[bootstrap]` as written; the whole table is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BootstrapTable {
    /// CLI lines the root runs once, on the fabric's first start, each a single line.
    /// Default: none.
    pub(super) root: Option<Vec<Spanned<String>>>,
}

/// One `[dns]` entry as written: a name and the text of its address.
pub(super) struct DnsEntry {
    /// The name as written (any case).
    pub(super) name: Spanned<String>,
    /// The address as written.
    pub(super) address: Spanned<String>,
}

/// A table read from the file, with the span of its header.
pub(super) struct Read<T> {
    pub(super) header: Span,
    pub(super) table: T,
    /// Keys that were present but held a value of the wrong type; they read as absent in
    /// `table`, so rules that would take them for absent stay quiet.
    pub(super) rejected: Vec<&'static str>,
}
