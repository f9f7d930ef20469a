//! The schema of `config endpoint-control fctems` in both of its shapes: keyed by name
//! (FortiOS 6.4 to 7.0.7) and keyed by ems-id (7.0.8 and later), built from one list of
//! the fields they share (`docs/fortios.md`, "fctems table" and "Firmware profiles").

use super::{Choice, FieldKind, FieldSpec, Rule, TableKind, TableSchema, field};
use super::{FCTEMS_NAME_MAX, MAX_FCTEMS_ENTRIES, SERVER_MAX};
use crate::domain::FctemsKey;

const INTERFACE_SELECT_METHODS: &[Choice] = &[
    Choice {
        name: "auto",
        help: "Set outgoing interface automatically.",
    },
    Choice {
        name: "sdwan",
        help: "Set outgoing interface by SD-WAN or policy routing rules.",
    },
    Choice {
        name: "specify",
        help: "Set outgoing interface manually.",
    },
];

pub(super) const EMS_CAPABILITIES: &[Choice] = &[
    Choice {
        name: "fabric-auth",
        help: "Allow this FortiGate unit to load the authentication page provided by EMS to authenticate itself with EMS.",
    },
    Choice {
        name: "silent-approval",
        help: "Allow silent approval of non-root or FortiGate HA clusters on EMS in the Security Fabric.",
    },
    Choice {
        name: "websocket",
        help: "Enable/disable websockets for this FortiGate unit.",
    },
    Choice {
        name: "websocket-malware",
        help: "Allow this FortiGate unit to request malware hash notifications over websocket.",
    },
    Choice {
        name: "push-ca-certs",
        help: "Enable/disable pushing FortiGate CA certificates to EMS.",
    },
    Choice {
        name: "common-tags-api",
        help: "Can recognize /api/v1/report/fct/tags API.",
    },
];

/// The fctems fields both table shapes share, in the order FortiOS prints them after the
/// key (and, keyed by ems-id, after `status` and `name`).
const FCTEMS_COMMON: [FieldSpec; 18] = [
    field(
        "server",
        FieldKind::Ipv4OrFqdn { max: SERVER_MAX },
        "",
        "FortiClient EMS FQDN or IPv4 address.",
    ),
    field(
        "https-port",
        FieldKind::Integer { min: 1, max: 65535 },
        "443",
        "FortiClient EMS HTTPS access port number.",
    ),
    field(
        "source-ip",
        FieldKind::Ipv4,
        "0.0.0.0",
        "REST API call source IP.",
    ),
    field(
        "certificate",
        FieldKind::String { max: 35 },
        "",
        "FortiClient EMS certificate.",
    ),
    field(
        "fortinetone-cloud-authentication",
        FieldKind::EnableDisable,
        "disable",
        "Enable/disable authentication of FortiClient EMS Cloud through FortiCloud account.",
    ),
    field(
        "serial-number",
        FieldKind::String { max: 16 },
        "",
        "FortiClient EMS serial number.",
    ),
    field("tenant-id", FieldKind::String { max: 32 }, "", "EMS tenant ID."),
    field(
        "pull-sysinfo",
        FieldKind::EnableDisable,
        "enable",
        "Enable/disable pulling SysInfo from EMS.",
    ),
    field(
        "pull-vulnerabilities",
        FieldKind::EnableDisable,
        "enable",
        "Enable/disable pulling vulnerabilities from EMS.",
    ),
    field(
        "pull-avatars",
        FieldKind::EnableDisable,
        "enable",
        "Enable/disable pulling avatars from EMS.",
    ),
    field(
        "pull-tags",
        FieldKind::EnableDisable,
        "enable",
        "Enable/disable pulling FortiClient user tags from EMS.",
    ),
    field(
        "pull-malware-hash",
        FieldKind::EnableDisable,
        "enable",
        "Enable/disable pulling FortiClient malware hash from EMS.",
    ),
    field(
        "capabilities",
        FieldKind::Set(EMS_CAPABILITIES),
        "",
        "List of EMS capabilities.",
    ),
    field(
        "call-timeout",
        FieldKind::Integer { min: 1, max: 180 },
        "30",
        "FortiClient EMS call timeout in seconds.",
    ),
    field(
        "websocket-override",
        FieldKind::EnableDisable,
        "disable",
        "Enable/disable override behavior for how this FortiGate unit connects to EMS using a WebSocket connection.",
    ),
    field(
        "preserve-ssl-session",
        FieldKind::EnableDisable,
        "disable",
        "Enable/disable preservation of EMS SSL session connection.",
    ),
    field(
        "interface-select-method",
        FieldKind::Option(INTERFACE_SELECT_METHODS),
        "auto",
        "Specify how to select outgoing interface to reach server.",
    ),
    FieldSpec {
        name: "interface",
        kind: FieldKind::String { max: 15 },
        default: "",
        help: "Specify outgoing interface to reach server.",
        visible_if: Some(("interface-select-method", "specify")),
    },
];

/// `name`: the key of the name-keyed table, an ordinary field of the ems-id one.
const FCTEMS_NAME: FieldSpec = field(
    "name",
    FieldKind::String { max: FCTEMS_NAME_MAX },
    "",
    "FortiClient Enterprise Management Server (EMS) name.",
);

/// `status` of an ems-id slot; a disabled slot is kept but not used (`docs/fortios.md`,
/// "Firmware profiles").
const FCTEMS_STATUS: FieldSpec = field(
    "status",
    FieldKind::EnableDisable,
    "disable",
    "Enable or disable this EMS configuration.",
);

/// `ems-id`, the key of the table from FortiOS 7.0.8, numbered 1 to `max_id`.
const fn fctems_ems_id(max_id: u64) -> FieldSpec {
    field(
        "ems-id",
        FieldKind::Integer { min: 1, max: max_id },
        "",
        "EMS ID in order.",
    )
}

/// `head` followed by [`FCTEMS_COMMON`]: the fields of one table shape.
const fn fctems_fields<const N: usize>(head: &[FieldSpec]) -> [FieldSpec; N] {
    assert!(
        head.len() + FCTEMS_COMMON.len() == N,
        "N counts the head and the common fields"
    );
    let mut fields = [FCTEMS_NAME; N];
    let mut i = 0;
    while i < head.len() {
        fields[i] = head[i];
        i += 1;
    }
    let mut j = 0;
    while j < FCTEMS_COMMON.len() {
        fields[head.len() + j] = FCTEMS_COMMON[j];
        j += 1;
    }
    fields
}

static FCTEMS_BY_NAME_FIELDS: [FieldSpec; 19] = fctems_fields(&[FCTEMS_NAME]);
static FCTEMS_BY_ID5_FIELDS: [FieldSpec; 21] = fctems_fields(&[fctems_ems_id(5), FCTEMS_STATUS, FCTEMS_NAME]);
static FCTEMS_BY_ID7_FIELDS: [FieldSpec; 21] = fctems_fields(&[fctems_ems_id(7), FCTEMS_STATUS, FCTEMS_NAME]);

/// The `endpoint-control fctems` schema for a firmware's key: keyed by name (FortiOS 6.4
/// to 7.0.7) or by ems-id (7.0.8 and later; `docs/fortios.md`, "Firmware profiles").
/// Both shapes share every field but the key, and the same rules; keyed by ems-id, the
/// server rule binds only enabled slots.
const fn fctems(key: FctemsKey) -> TableSchema {
    let (kind, fields, only_if): (TableKind, &'static [FieldSpec], _) = match key {
        FctemsKey::Name => (
            TableKind::Table {
                key: "name",
                max_entries: MAX_FCTEMS_ENTRIES,
            },
            &FCTEMS_BY_NAME_FIELDS,
            None,
        ),
        FctemsKey::EmsId { max_id } => (
            TableKind::Table {
                key: "ems-id",
                max_entries: max_id as usize,
            },
            if max_id == 5 {
                &FCTEMS_BY_ID5_FIELDS
            } else {
                &FCTEMS_BY_ID7_FIELDS
            },
            Some(("status", "enable")),
        ),
    };
    TableSchema {
        path: "endpoint-control fctems",
        help: "Configure FortiClient Enterprise Management Server (EMS) entries.",
        kind,
        synced: true,
        fields,
        rules: match only_if {
            None => FCTEMS_RULES_BY_NAME,
            Some(_) => FCTEMS_RULES_BY_ID,
        },
    }
}

/// At most one EMS Cloud entry.
const AT_MOST_ONE_CLOUD: Rule = Rule::AtMostOne {
    field: "fortinetone-cloud-authentication",
    value: "enable",
    what: "EMS Cloud entry",
};

/// `server` is required unless the entry is EMS Cloud; with ems-id slots, only for an
/// enabled slot.
const fn server_required(only_if: Option<(&'static str, &'static str)>) -> Rule {
    Rule::RequiredUnless {
        field: "server",
        unless: ("fortinetone-cloud-authentication", "enable"),
        only_if,
    }
}

/// `certificate` names an accepted remote certificate (`vpn certificate remote`).
const CERTIFICATE_DATASOURCE: Rule = Rule::Datasource {
    field: "certificate",
    table: "vpn certificate remote",
};

const FCTEMS_RULES_BY_NAME: &[Rule] = &[AT_MOST_ONE_CLOUD, server_required(None), CERTIFICATE_DATASOURCE];
const FCTEMS_RULES_BY_ID: &[Rule] = &[
    AT_MOST_ONE_CLOUD,
    server_required(Some(("status", "enable"))),
    CERTIFICATE_DATASOURCE,
];

/// `config endpoint-control fctems`: the FortiClient EMS connectors, in the FortiOS
/// 6.4 - 7.0.7 form keyed by name (`docs/fortios.md`, "fctems table"), synchronized
/// fabric-wide. The default firmware's shape.
pub const FCTEMS: TableSchema = fctems(FctemsKey::Name);

/// The fctems table keyed by ems-id 1 to 5 (FortiOS 7.0.8 - 7.0.x, 7.2.1 - 7.2.3).
pub const FCTEMS_BY_ID5: TableSchema = fctems(FctemsKey::EmsId { max_id: 5 });

/// The fctems table keyed by ems-id 1 to 7 (FortiOS 7.2.4 and later).
pub const FCTEMS_BY_ID7: TableSchema = fctems(FctemsKey::EmsId { max_id: 7 });
