//! The configuration schema: which tables exist, which fields they have, and how a typed
//! value becomes the canonical string that the database stores.
//!
//! The schema is static data, as FortiOS's cmdb is: a [`TableSchema`] names a path such as
//! `endpoint-control fctems`, says whether it is a keyed table or a single object, and lists
//! its fields in the order FortiOS prints them. Adding a table means writing one more
//! schema constant and one more line in the registry behind [`schemas`]; the database, `apply` and the CLI
//! read everything else from here.
//!
//! The fctems table, in its two firmware shapes, is in `schema/fctems.rs`; the tables
//! nested in `config system csf` (the root's trusted-list) in `schema/csf.rs`.
//!
//! Values enter as raw CLI words and leave through [`parse_value`] as canonical strings
//! (lowercase host names, integers without leading zeros, set members in schema order), so
//! two equal configurations always store equal text and hash alike.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::domain::{FctemsKey, Firmware};

/// Most EMS connector entries one FortiGate holds: FortiOS 6.4 to 7.0.7 allow three EMS
/// servers, at most one of them EMS Cloud (`docs/fortios.md`, "fctems rules").
pub const MAX_FCTEMS_ENTRIES: usize = 3;

/// Longest entry name FortiOS accepts for `endpoint-control fctems` (`name`, max 35).
const FCTEMS_NAME_MAX: usize = 35;

/// Longest `server` value: a DNS name is at most 255 characters.
const SERVER_MAX: usize = 255;

/// A DNS label holds 1 to 63 characters (RFC 1035).
const DNS_LABEL_MAX: usize = 63;

/// One allowed word of an [`FieldKind::Option`] or [`FieldKind::Set`] field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    /// The word typed in the CLI and stored in the database.
    pub name: &'static str,
    /// The description shown by `?`.
    pub help: &'static str,
}

/// The type of a field, which decides how a value is parsed, printed and completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Free text of at most `max` characters.
    String {
        /// Longest accepted value, in characters.
        max: usize,
    },
    /// A dotted-quad IPv4 address.
    Ipv4,
    /// A PEM-encoded X.509 certificate, several lines, of at most `max` characters.
    Pem {
        /// Longest accepted value, in characters.
        max: usize,
    },
    /// An IPv4 address or a host name of at most `max` characters, stored lowercase.
    Ipv4OrFqdn {
        /// Longest accepted value, in characters.
        max: usize,
    },
    /// A decimal integer in `min..=max`.
    Integer {
        /// Smallest accepted value.
        min: u64,
        /// Largest accepted value.
        max: u64,
    },
    /// `enable` or `disable`.
    EnableDisable,
    /// Exactly one of the listed words.
    Option(&'static [Choice]),
    /// A space-separated subset of the listed words; empty means unset.
    Set(&'static [Choice]),
    /// A password or API key of at most `max` characters, stored only as its hash
    /// ([`hash_secret`]); empty means none.
    Secret {
        /// Longest accepted secret, in characters.
        max: usize,
    },
}

/// One field of a table or object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    /// The FortiOS field name, hyphenated (`https-port`).
    pub name: &'static str,
    /// How values are parsed and printed.
    pub kind: FieldKind,
    /// The canonical value an entry has when the field was never set.
    pub default: &'static str,
    /// The description shown by `?`.
    pub help: &'static str,
    /// `Some((field, value))`: the field exists only while `field` holds `value`; otherwise
    /// `get`, `show` and completion hide it and `set` refuses it.
    pub visible_if: Option<(&'static str, &'static str)>,
}

impl FieldSpec {
    /// The value of this field in an entry whose stored (non-default) values are `stored`.
    pub fn value_in<'a>(&self, stored: &'a impl Lookup) -> &'a str {
        stored.lookup(self.name).unwrap_or(self.default)
    }
}

/// Whether a path holds keyed entries or exactly one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// Entries keyed by the field `key`, at most `max_entries` of them.
    Table {
        /// The key field, listed first in [`TableSchema::fields`].
        key: &'static str,
        /// Most entries the table accepts.
        max_entries: usize,
    },
    /// A single settings block (`config system settings`), stored under the empty key.
    Object,
}

/// A consistency rule that `apply` checks on the entry being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// At most one entry of the table may hold `value` in `field`; `what` names such an
    /// entry in the refusal ("EMS Cloud entry").
    AtMostOne {
        /// The field compared across entries.
        field: &'static str,
        /// The value only one entry may hold.
        value: &'static str,
        /// A noun phrase for an entry holding the value.
        what: &'static str,
    },
    /// `field` must not be empty unless the field `unless.0` holds `unless.1`. With
    /// `only_if`, the rule binds only entries whose field `only_if.0` holds `only_if.1`
    /// (a disabled ems-id slot may stay empty).
    RequiredUnless {
        /// The field that must be set.
        field: &'static str,
        /// The exemption: field name and value.
        unless: (&'static str, &'static str),
        /// When set, the rule applies only to entries holding this field value.
        only_if: Option<(&'static str, &'static str)>,
    },
    /// FortiOS accepts `field` holding `value`, the simulator does not model it: a commit
    /// of an entry holding it is refused with `why`.
    Unsupported {
        /// The field.
        field: &'static str,
        /// The value the simulator refuses.
        value: &'static str,
        /// Why, as the refusal's first line says it.
        why: &'static str,
    },
    /// A non-empty `field` names an entry of the table `table` (FortiOS's datasource:
    /// fctems `certificate` names a `vpn certificate remote` entry, `docs/fortios.md`,
    /// "CLI errors and return codes").
    Datasource {
        /// The field holding the name.
        field: &'static str,
        /// The path of the table the name must be a key of.
        table: &'static str,
    },
}

/// The schema of one configuration path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSchema {
    /// The path as typed after `config`, words separated by one space.
    pub path: &'static str,
    /// The description `?` shows for the last path word.
    pub help: &'static str,
    /// Keyed table or single object.
    pub kind: TableKind,
    /// Whether the table is replicated from the fabric root; members may not edit it.
    pub synced: bool,
    /// Every field in FortiOS order; for a table the key field comes first.
    pub fields: &'static [FieldSpec],
    /// Rules checked on every write, in order.
    pub rules: &'static [Rule],
}

impl TableSchema {
    /// The field called `name`, visible or not.
    pub fn field(&self, name: &str) -> Option<&'static FieldSpec> {
        self.fields.iter().find(|field| field.name == name)
    }

    /// The key field of a table; `None` for an object.
    pub fn key_field(&self) -> Option<&'static FieldSpec> {
        match self.kind {
            TableKind::Table { key, .. } => self.field(key),
            TableKind::Object => None,
        }
    }

    /// Whether `name` is the key field of this table.
    pub fn is_key(&self, name: &str) -> bool {
        matches!(self.kind, TableKind::Table { key, .. } if key == name)
    }

    /// The fields an entry holds values for: every field except the key.
    pub fn value_fields(&self) -> impl Iterator<Item = &'static FieldSpec> + '_ {
        self.fields.iter().filter(|field| !self.is_key(field.name))
    }

    /// Whether `field` is visible in an entry whose stored values are `stored`.
    pub fn is_visible(&self, stored: &impl Lookup, field: &FieldSpec) -> bool {
        match field.visible_if {
            None => true,
            Some((other, required)) => {
                let current = stored
                    .lookup(other)
                    .or_else(|| self.field(other).map(|spec| spec.default));
                current == Some(required)
            }
        }
    }

    /// The table whose keys `field` must name, when a [`Rule::Datasource`] says so.
    pub fn datasource(&self, field: &str) -> Option<&'static str> {
        self.rules.iter().find_map(|rule| match *rule {
            Rule::Datasource { field: name, table } if name == field => Some(table),
            _ => None,
        })
    }

    /// The word the CLI prompt shows inside this path: its last word (`fctems`).
    pub fn context_name(&self) -> &'static str {
        self.path.rsplit(' ').next().unwrap_or(self.path)
    }
}

/// Read access to stored field values, implemented by the database entry and the CLI's
/// pending edit alike.
pub trait Lookup {
    /// The stored value of `field`, `None` when it holds its default.
    fn lookup(&self, field: &str) -> Option<&str>;
}

impl Lookup for std::collections::BTreeMap<String, String> {
    fn lookup(&self, field: &str) -> Option<&str> {
        self.get(field).map(String::as_str)
    }
}

/// Why a raw value does not fit a field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ValueError {
    /// The value is empty where the field needs one.
    #[error("a value is required")]
    Empty,
    /// The value has more characters than the field allows.
    #[error("{value:?} is longer than {max} characters")]
    TooLong {
        /// The refused value.
        value: String,
        /// The limit.
        max: usize,
    },
    /// The value contains a control character.
    #[error("{value:?} contains a control character")]
    ControlCharacter {
        /// The refused value.
        value: String,
    },
    /// The value is not one PEM certificate.
    #[error("the value is not a PEM certificate")]
    NotPem {
        /// The refused value.
        value: String,
    },
    /// The value is not a dotted-quad IPv4 address.
    #[error("{value:?} is not an IPv4 address")]
    NotIpv4 {
        /// The refused value.
        value: String,
    },
    /// The value is neither an IPv4 address nor a valid host name.
    #[error("{value:?} is neither an IPv4 address nor a host name")]
    NotHost {
        /// The refused value.
        value: String,
    },
    /// The value is not a decimal integer.
    #[error("{value:?} is not an integer")]
    NotInteger {
        /// The refused value.
        value: String,
    },
    /// The integer lies outside the field's range.
    #[error("{value} is outside {min} - {max}")]
    OutOfRange {
        /// The refused value.
        value: String,
        /// Smallest accepted value.
        min: u64,
        /// Largest accepted value.
        max: u64,
    },
    /// The word is not one of the field's choices.
    #[error("{value:?} is not one of: {allowed}")]
    NotAChoice {
        /// The refused word.
        value: String,
        /// The accepted words, space-separated.
        allowed: String,
    },
}

/// Parses `raw` as a value of `field` and returns its canonical form.
///
/// Canonical forms: IPv4 addresses as Rust prints them (no leading zeros), host names in
/// lowercase, integers in plain decimal, set members deduplicated in schema order and
/// joined by one space. An empty string is accepted where the field's default is empty
/// (strings, servers, sets) and means "unset".
pub fn parse_value(field: &FieldSpec, raw: &str) -> Result<String, ValueError> {
    match field.kind {
        FieldKind::String { max } => parse_string(raw, max),
        FieldKind::Ipv4 => parse_ipv4(raw),
        FieldKind::Pem { max } => parse_pem(raw, max),
        FieldKind::Ipv4OrFqdn { max } => parse_host(raw, max),
        FieldKind::Integer { min, max } => parse_integer(raw, min, max),
        FieldKind::EnableDisable => parse_choice(raw, ENABLE_DISABLE),
        FieldKind::Option(choices) => parse_choice(raw, choices),
        FieldKind::Set(choices) => parse_set(raw, choices),
        FieldKind::Secret { max } => parse_secret(raw, max),
    }
}

/// How a stored secret begins: FortiOS shows hashed passwords as `ENC SH2…` (doc).
const SECRET_PREFIX: &str = "ENC SH2";
/// Hex digits of a SHA-256 hash.
const SHA256_HEX_LEN: usize = 64;

/// The stored form of `secret`: `ENC SH2` and the hex SHA-256 of its text. The
/// hash is unsalted, so that `apply` stays pure and every node stores the same text for
/// one password (`docs/fortios.md`, "Accounts").
pub fn hash_secret(secret: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(secret.as_bytes());
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{SECRET_PREFIX}{hex}")
}

/// Whether `given` is the secret whose stored form is `stored`; an empty `stored` matches
/// only the empty secret.
pub fn secret_matches(stored: &str, given: &str) -> bool {
    if stored.is_empty() {
        return given.is_empty();
    }
    let expected = hash_secret(given);
    // Compared in full whatever the first difference, so timing tells nothing.
    stored.len() == expected.len()
        && stored
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

/// A secret typed in clear is hashed; one already in its stored form is kept, so stored
/// values pass `apply` again unchanged.
fn parse_secret(raw: &str, max: usize) -> Result<String, ValueError> {
    if raw.is_empty() {
        return Ok(String::new());
    }
    if let Some(hex) = raw.strip_prefix(SECRET_PREFIX)
        && hex.len() == SHA256_HEX_LEN
        && hex
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    {
        return Ok(raw.to_owned());
    }
    parse_string(raw, max).map(|secret| hash_secret(&secret))
}

fn parse_string(raw: &str, max: usize) -> Result<String, ValueError> {
    if raw.chars().any(char::is_control) {
        return Err(ValueError::ControlCharacter {
            value: raw.to_owned(),
        });
    }
    if raw.chars().count() > max {
        return Err(ValueError::TooLong {
            value: raw.to_owned(),
            max,
        });
    }
    Ok(raw.to_owned())
}

fn parse_pem(raw: &str, max: usize) -> Result<String, ValueError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    if raw.is_empty() {
        return Ok(String::new());
    }
    let text = raw.trim().replace("\r\n", "\n");
    let body = text
        .strip_prefix(BEGIN)
        .and_then(|rest| rest.strip_suffix(END))
        .ok_or_else(|| ValueError::NotPem {
            value: raw.to_owned(),
        })?;
    let base64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '\n');
    if body.trim().is_empty() || !body.chars().all(base64) {
        return Err(ValueError::NotPem {
            value: raw.to_owned(),
        });
    }
    if text.chars().count() > max {
        return Err(ValueError::TooLong {
            value: raw.to_owned(),
            max,
        });
    }
    Ok(format!("{text}\n"))
}

fn parse_ipv4(raw: &str) -> Result<String, ValueError> {
    raw.parse::<Ipv4Addr>()
        .map(|address| address.to_string())
        .map_err(|_| ValueError::NotIpv4 {
            value: raw.to_owned(),
        })
}

fn parse_host(raw: &str, max: usize) -> Result<String, ValueError> {
    if raw.is_empty() {
        return Ok(String::new());
    }
    let all_numeric = raw
        .split('.')
        .all(|label| !label.is_empty() && label.bytes().all(|b| b.is_ascii_digit()));
    if all_numeric {
        return parse_ipv4(raw).map_err(|_| ValueError::NotHost {
            value: raw.to_owned(),
        });
    }
    if raw.len() > max {
        return Err(ValueError::TooLong {
            value: raw.to_owned(),
            max,
        });
    }
    let valid_label = |label: &str| {
        (1..=DNS_LABEL_MAX).contains(&label.len())
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if raw.split('.').all(valid_label) {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(ValueError::NotHost {
            value: raw.to_owned(),
        })
    }
}

fn parse_integer(raw: &str, min: u64, max: u64) -> Result<String, ValueError> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValueError::NotInteger {
            value: raw.to_owned(),
        });
    }
    // All digits: the only parse failure left is overflow, which is out of range too.
    match raw.parse::<u64>() {
        Ok(number) if (min..=max).contains(&number) => Ok(number.to_string()),
        _ => Err(ValueError::OutOfRange {
            value: raw.to_owned(),
            min,
            max,
        }),
    }
}

fn parse_choice(raw: &str, choices: &[Choice]) -> Result<String, ValueError> {
    choices
        .iter()
        .find(|choice| choice.name == raw)
        .map(|choice| choice.name.to_owned())
        .ok_or_else(|| ValueError::NotAChoice {
            value: raw.to_owned(),
            allowed: choice_names(choices),
        })
}

fn parse_set(raw: &str, choices: &[Choice]) -> Result<String, ValueError> {
    let words: Vec<&str> = raw.split_whitespace().collect();
    if let Some(unknown) = words
        .iter()
        .find(|word| !choices.iter().any(|choice| choice.name == **word))
    {
        return Err(ValueError::NotAChoice {
            value: (*unknown).to_owned(),
            allowed: choice_names(choices),
        });
    }
    let members: Vec<&str> = choices
        .iter()
        .map(|choice| choice.name)
        .filter(|name| words.contains(name))
        .collect();
    Ok(members.join(" "))
}

fn choice_names(choices: &[Choice]) -> String {
    choices
        .iter()
        .map(|choice| choice.name)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The two words of [`FieldKind::EnableDisable`], with FortiOS's descriptions.
pub const ENABLE_DISABLE: &[Choice] = &[
    Choice {
        name: "enable",
        help: "Enable setting.",
    },
    Choice {
        name: "disable",
        help: "Disable setting.",
    },
];

const fn field(name: &'static str, kind: FieldKind, default: &'static str, help: &'static str) -> FieldSpec {
    FieldSpec {
        name,
        kind,
        default,
        help,
        visible_if: None,
    }
}

mod csf;
mod fctems;

pub use csf::{
    ACTION_ACCEPT, ACTION_DENY, AUTHORIZATION_BY_CERTIFICATE, AUTHORIZATION_BY_SERIAL,
    MAX_TRUSTED_LIST_ENTRIES, NESTED_TABLES, Nesting, TRUSTED_LIST, children_of, is_nested,
};
pub use fctems::{FCTEMS, FCTEMS_BY_ID5, FCTEMS_BY_ID7};

/// Most remote certificates the fabric keeps; FortiOS's own limit depends on the model,
/// this one only bounds what a runaway script can add.
pub const MAX_REMOTE_CERTIFICATES: usize = 256;

/// Longest PEM certificate accepted: a 4096-bit RSA certificate with extensions fits well.
const PEM_MAX: usize = 16_384;

const CERTIFICATE_RANGES: &[Choice] = &[
    Choice {
        name: "global",
        help: "Global range.",
    },
    Choice {
        name: "vdom",
        help: "VDOM IP address range.",
    },
];

const CERTIFICATE_SOURCES: &[Choice] = &[
    Choice {
        name: "factory",
        help: "Factory installed certificate.",
    },
    Choice {
        name: "user",
        help: "User generated certificate.",
    },
    Choice {
        name: "bundle",
        help: "Bundle file certificate.",
    },
];

/// `config vpn certificate remote`: server certificates accepted by the administrator,
/// such as an EMS certificate confirmed with `execute fctems verify` (named
/// `REMOTE_Cert_<n>`). Synced, so the whole fabric trusts what the root accepted.
pub const REMOTE_CERTIFICATES: TableSchema = TableSchema {
    path: "vpn certificate remote",
    help: "Remote certificate as a PEM file.",
    kind: TableKind::Table {
        key: "name",
        max_entries: MAX_REMOTE_CERTIFICATES,
    },
    synced: true,
    fields: &[
        field("name", FieldKind::String { max: 35 }, "", "Name."),
        field(
            "remote",
            FieldKind::Pem { max: PEM_MAX },
            "",
            "Remote certificate.",
        ),
        field(
            "range",
            FieldKind::Option(CERTIFICATE_RANGES),
            "global",
            "Either the global or VDOM IP address range for the remote certificate.",
        ),
        field(
            "source",
            FieldKind::Option(CERTIFICATE_SOURCES),
            "user",
            "Remote certificate source type.",
        ),
    ],
    rules: &[],
};

/// The fabric port FortiGates connect upstream on (`docs/fortios.md`, "Security Fabric").
pub const CSF_UPSTREAM_PORT: &str = "8013";

/// `configuration-sync` word that keeps a member's own copy of the synced tables.
pub const CONFIGURATION_SYNC_LOCAL: &str = "local";

const CONFIGURATION_SYNC: &[Choice] = &[
    Choice {
        name: "default",
        help: "Synchronize configuration for IPAM, FortiAnalyzer, FortiSandbox, and Central Management to root node.",
    },
    Choice {
        name: "local",
        help: "Do not synchronize configuration with root node.",
    },
];

/// `config system settings`: only what the EMS connector needs, Feature Visibility's
/// *Endpoint Control* card. Synced from the root.
pub const SYSTEM_SETTINGS: TableSchema = TableSchema {
    path: "system settings",
    help: "Configure VDOM settings.",
    kind: TableKind::Object,
    synced: true,
    fields: &[field(
        "gui-endpoint-control",
        FieldKind::EnableDisable,
        "enable",
        "Enable/disable endpoint control on the GUI.",
    )],
    rules: &[],
};

/// `config system csf`: this FortiGate's own Security Fabric settings. Never synced: every
/// FortiGate has its own, and a member's `configuration-sync local` keeps its own copy of
/// the synced tables. Its nested `config trusted-list` ([`TRUSTED_LIST`]) is the root's
/// and synced.
pub const SYSTEM_CSF: TableSchema = TableSchema {
    path: "system csf",
    help: "Add this FortiGate to a Security Fabric or set up a new Security Fabric on this FortiGate.",
    kind: TableKind::Object,
    synced: false,
    fields: &[
        field(
            "status",
            FieldKind::EnableDisable,
            "disable",
            "Enable/disable Security Fabric.",
        ),
        field(
            "group-name",
            FieldKind::String { max: 35 },
            "",
            "Security Fabric group name.",
        ),
        field(
            "upstream",
            FieldKind::Ipv4OrFqdn { max: SERVER_MAX },
            "",
            "IP/FQDN of the FortiGate upstream from this FortiGate in the Security Fabric.",
        ),
        field(
            "upstream-port",
            FieldKind::Integer { min: 1, max: 65535 },
            CSF_UPSTREAM_PORT,
            "The port number to use to communicate with the FortiGate upstream from this FortiGate in the Security Fabric (default = 8013).",
        ),
        field(
            "configuration-sync",
            FieldKind::Option(CONFIGURATION_SYNC),
            "default",
            "Configuration sync mode.",
        ),
    ],
    rules: &[],
};

/// `output` of `config system console` when the CLI pages long output.
pub const CONSOLE_OUTPUT_MORE: &str = "more";

const CONSOLE_OUTPUT: &[Choice] = &[
    Choice {
        name: "standard",
        help: "Standard output.",
    },
    Choice {
        name: "more",
        help: "More page output.",
    },
];

/// `config system console`: how this FortiGate's CLI prints long output over SSH
/// (`docs/fortios.md`, "SSH"). Never synced: a console setting belongs to the device.
pub const SYSTEM_CONSOLE: TableSchema = TableSchema {
    path: "system console",
    help: "Configure console.",
    kind: TableKind::Object,
    synced: false,
    fields: &[field(
        "output",
        FieldKind::Option(CONSOLE_OUTPUT),
        CONSOLE_OUTPUT_MORE,
        "Console output mode.",
    )],
    rules: &[],
};

/// Most administrator accounts one FortiGate holds (ours): FortiOS's limit depends on the
/// model; this one only bounds a runaway script.
pub const MAX_ADMINS: usize = 500;
/// Most REST API users one FortiGate holds (ours), for the same reason.
pub const MAX_API_USERS: usize = 500;

/// `config system admin`: the administrator accounts of this FortiGate. Never synced:
/// accounts are per device (`docs/fortios.md`, "Accounts").
pub const SYSTEM_ADMIN: TableSchema = TableSchema {
    path: "system admin",
    help: "Configure admin users.",
    kind: TableKind::Table {
        key: "name",
        max_entries: MAX_ADMINS,
    },
    synced: false,
    fields: &[
        field("name", FieldKind::String { max: 64 }, "", "User name."),
        field(
            "accprofile",
            FieldKind::String { max: 35 },
            "prof_admin",
            "Access profile for this administrator.",
        ),
        field(
            "vdom",
            FieldKind::String { max: 79 },
            "root",
            "Virtual domain(s) that the administrator can access.",
        ),
        field(
            "password",
            FieldKind::Secret { max: 128 },
            "",
            "Admin user password.",
        ),
    ],
    rules: &[],
};

/// `config system api-user`: the REST API users of this FortiGate. Never synced.
pub const SYSTEM_API_USER: TableSchema = TableSchema {
    path: "system api-user",
    help: "Configure API users.",
    kind: TableKind::Table {
        key: "name",
        max_entries: MAX_API_USERS,
    },
    synced: false,
    fields: &[
        field("name", FieldKind::String { max: 35 }, "", "User name."),
        field(
            "api-key",
            FieldKind::Secret { max: 128 },
            "",
            "Admin user password.",
        ),
        field(
            "accprofile",
            FieldKind::String { max: 35 },
            "",
            "Admin user access profile.",
        ),
        field("vdom", FieldKind::String { max: 79 }, "root", "Virtual domains."),
    ],
    rules: &[],
};

/// The synced tables a member keeps its own copy of while its `system csf` has
/// `configuration-sync local`.
pub const LOCAL_SYNC_TABLES: &[&str] = &[FCTEMS.path, REMOTE_CERTIFICATES.path];

/// Every configuration path of the default firmware, in the order a bare `show` prints
/// them; the registries of the other firmware differ only in the fctems shape.
static REGISTRY: &[TableSchema] = &[
    FCTEMS,
    SYSTEM_CSF,
    TRUSTED_LIST,
    SYSTEM_SETTINGS,
    REMOTE_CERTIFICATES,
    SYSTEM_ADMIN,
    SYSTEM_API_USER,
    SYSTEM_CONSOLE,
];
static REGISTRY_BY_ID5: &[TableSchema] = &[
    FCTEMS_BY_ID5,
    SYSTEM_CSF,
    TRUSTED_LIST,
    SYSTEM_SETTINGS,
    REMOTE_CERTIFICATES,
    SYSTEM_ADMIN,
    SYSTEM_API_USER,
    SYSTEM_CONSOLE,
];
static REGISTRY_BY_ID7: &[TableSchema] = &[
    FCTEMS_BY_ID7,
    SYSTEM_CSF,
    TRUSTED_LIST,
    SYSTEM_SETTINGS,
    REMOTE_CERTIFICATES,
    SYSTEM_ADMIN,
    SYSTEM_API_USER,
    SYSTEM_CONSOLE,
];

/// Every table and object schema of the default firmware.
pub fn schemas() -> &'static [TableSchema] {
    REGISTRY
}

/// Every table and object schema of `firmware`.
pub fn schemas_for(firmware: Firmware) -> &'static [TableSchema] {
    match firmware.fctems_key() {
        FctemsKey::Name => REGISTRY,
        FctemsKey::EmsId { max_id: 5 } => REGISTRY_BY_ID5,
        FctemsKey::EmsId { max_id: 7 } => REGISTRY_BY_ID7,
        FctemsKey::EmsId { max_id } => panic!("no fctems schema keyed by ems-id 1 to {max_id}"),
    }
}

/// The schema of `path` (`"endpoint-control fctems"`) under the default firmware.
pub fn schema(path: &str) -> Option<&'static TableSchema> {
    schema_for(Firmware::default(), path)
}

/// The schema of `path` under `firmware`, if it exists.
pub fn schema_for(firmware: Firmware, path: &str) -> Option<&'static TableSchema> {
    schemas_for(firmware).iter().find(|table| table.path == path)
}

/// The fctems schema of `firmware`.
pub fn fctems_for(firmware: Firmware) -> &'static TableSchema {
    schema_for(firmware, FCTEMS.path).expect("every registry holds the fctems table")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fctems_field(name: &str) -> &'static FieldSpec {
        FCTEMS.field(name).expect("field exists")
    }

    #[test]
    fn fctems_lists_every_field_in_fortios_order() {
        let names: Vec<&str> = FCTEMS.fields.iter().map(|field| field.name).collect();
        assert_eq!(
            names,
            [
                "name",
                "server",
                "https-port",
                "source-ip",
                "certificate",
                "fortinetone-cloud-authentication",
                "serial-number",
                "tenant-id",
                "pull-sysinfo",
                "pull-vulnerabilities",
                "pull-avatars",
                "pull-tags",
                "pull-malware-hash",
                "capabilities",
                "call-timeout",
                "websocket-override",
                "preserve-ssl-session",
                "interface-select-method",
                "interface",
            ]
        );
    }

    #[test]
    fn every_default_parses_to_itself() {
        for table in schemas() {
            for field in table.value_fields() {
                assert_eq!(
                    parse_value(field, field.default).as_deref(),
                    Ok(field.default),
                    "{} {}",
                    table.path,
                    field.name
                );
            }
        }
    }

    #[test]
    fn both_fctems_shapes_share_every_field_but_the_key() {
        let by_id = fctems_for(Firmware::parse("7.0.12").unwrap());
        assert_eq!(by_id, &FCTEMS_BY_ID5);
        assert_eq!(fctems_for(Firmware::parse("7.2.8").unwrap()), &FCTEMS_BY_ID7);
        assert_eq!(fctems_for(Firmware::default()), &FCTEMS);
        assert_eq!(by_id.key_field().map(|field| field.name), Some("ems-id"));
        assert_eq!(
            by_id.kind,
            TableKind::Table {
                key: "ems-id",
                max_entries: 5
            }
        );
        let names: Vec<&str> = by_id.fields.iter().map(|field| field.name).collect();
        assert_eq!(names[..3], ["ems-id", "status", "name"]);
        assert_eq!(by_id.fields[3..], FCTEMS.fields[1..]);
        assert_eq!(by_id.field("status").map(|field| field.default), Some("disable"));
        assert_eq!(by_id.field("name").map(|field| field.default), Some(""));
        let id7 = FCTEMS_BY_ID7.key_field().unwrap();
        assert!(parse_value(id7, "7").is_ok());
        assert!(parse_value(id7, "8").is_err());
        assert!(parse_value(by_id.key_field().unwrap(), "6").is_err());
        assert!(parse_value(by_id.key_field().unwrap(), "0").is_err());
        for firmware in Firmware::all() {
            let paths: Vec<&str> = schemas_for(firmware).iter().map(|table| table.path).collect();
            let default_paths: Vec<&str> = schemas().iter().map(|table| table.path).collect();
            assert_eq!(paths, default_paths, "{firmware}");
        }
    }

    #[test]
    fn registry_finds_fctems() {
        assert_eq!(schema("endpoint-control fctems"), Some(&FCTEMS));
        assert_eq!(schema("endpoint-control"), None);
        assert_eq!(FCTEMS.context_name(), "fctems");
        assert_eq!(FCTEMS.key_field().map(|field| field.name), Some("name"));
    }

    #[test]
    fn ipv4_is_canonical_dotted_quad() {
        let source = fctems_field("source-ip");
        assert_eq!(parse_value(source, "10.0.0.1").as_deref(), Ok("10.0.0.1"));
        assert!(parse_value(source, "10.0.0").is_err());
        assert!(parse_value(source, "256.0.0.1").is_err());
        assert!(parse_value(source, "ems.example.com").is_err());
        assert!(parse_value(source, "").is_err());
    }

    #[test]
    fn server_takes_ipv4_or_lowercased_fqdn() {
        let server = fctems_field("server");
        assert_eq!(parse_value(server, "10.1.2.3").as_deref(), Ok("10.1.2.3"));
        assert_eq!(
            parse_value(server, "Default.EMS.example.com").as_deref(),
            Ok("default.ems.example.com")
        );
        assert_eq!(parse_value(server, "ems").as_deref(), Ok("ems"));
        assert_eq!(parse_value(server, "").as_deref(), Ok(""));
        for bad in [
            "300.1.1.1",
            "1.2.3",
            "-ems.example.com",
            "ems-.example.com",
            "ems..example.com",
            "ems.example.com.",
            "ems_1.example.com",
            "ems example",
        ] {
            assert!(parse_value(server, bad).is_err(), "{bad}");
        }
        let long_label = format!("{}.example.com", "a".repeat(64));
        assert!(parse_value(server, &long_label).is_err());
        let long_name = vec!["a".repeat(63); 5].join(".");
        assert!(matches!(
            parse_value(server, &long_name),
            Err(ValueError::TooLong { max: 255, .. })
        ));
    }

    #[test]
    fn integers_respect_range_and_drop_leading_zeros() {
        let port = fctems_field("https-port");
        assert_eq!(parse_value(port, "8443").as_deref(), Ok("8443"));
        assert_eq!(parse_value(port, "0443").as_deref(), Ok("443"));
        assert_eq!(
            parse_value(port, "0"),
            Err(ValueError::OutOfRange {
                value: "0".into(),
                min: 1,
                max: 65535
            })
        );
        assert!(parse_value(port, "65536").is_err());
        assert!(parse_value(port, "99999999999999999999999").is_err());
        assert!(parse_value(port, "-1").is_err());
        assert!(parse_value(port, "port").is_err());
        let timeout = fctems_field("call-timeout");
        assert!(parse_value(timeout, "181").is_err());
        assert_eq!(parse_value(timeout, "180").as_deref(), Ok("180"));
    }

    #[test]
    fn choices_are_exact_words() {
        let tags = fctems_field("pull-tags");
        assert_eq!(parse_value(tags, "disable").as_deref(), Ok("disable"));
        assert!(parse_value(tags, "Disable").is_err());
        assert!(parse_value(tags, "off").is_err());
        let method = fctems_field("interface-select-method");
        assert_eq!(parse_value(method, "sdwan").as_deref(), Ok("sdwan"));
        assert!(parse_value(method, "manual").is_err());
    }

    #[test]
    fn sets_are_deduplicated_in_schema_order() {
        let capabilities = fctems_field("capabilities");
        assert_eq!(
            parse_value(capabilities, "websocket fabric-auth websocket").as_deref(),
            Ok("fabric-auth websocket")
        );
        assert_eq!(parse_value(capabilities, "").as_deref(), Ok(""));
        assert_eq!(
            parse_value(capabilities, "fabric-auth telepathy"),
            Err(ValueError::NotAChoice {
                value: "telepathy".into(),
                allowed: choice_names(fctems::EMS_CAPABILITIES)
            })
        );
    }

    #[test]
    fn strings_respect_max_length() {
        let name = fctems_field("name");
        assert!(parse_value(name, &"n".repeat(35)).is_ok());
        assert!(parse_value(name, &"n".repeat(36)).is_err());
        assert!(parse_value(name, "bad\nname").is_err());
        assert_eq!(parse_value(name, "my ems").as_deref(), Ok("my ems"));
    }

    #[test]
    fn interface_is_visible_only_with_specify() {
        let interface = fctems_field("interface");
        let mut values = std::collections::BTreeMap::new();
        assert!(!FCTEMS.is_visible(&values, interface));
        values.insert("interface-select-method".to_owned(), "specify".to_owned());
        assert!(FCTEMS.is_visible(&values, interface));
        values.insert("interface-select-method".to_owned(), "sdwan".to_owned());
        assert!(!FCTEMS.is_visible(&values, interface));
    }
}
