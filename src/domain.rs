//! Facts of the simulated world that several modules rely on and that belong to no file
//! format: what a FortiGate or EMS serial looks like, how long names and hostnames may be,
//! the well-known names of FortiCloud and its EMS Cloud server, the capabilities an EMS
//! reports and the contract types FortiCloud holds. See `docs/fortios.md` for the FortiOS
//! behaviour behind each one.
//!
//! Nothing enters this module at run time: it holds constants and pure functions over
//! strings. It imports only [`crate::calendar`] (for the length of a month), so every other
//! module can depend on it.
//!
//! [`Firmware`] (in `domain/firmware.rs`) is the FortiOS release a fabric runs: its
//! version and build, the `get system status` Version line and the fctems key.

mod firmware;

pub use firmware::{FctemsKey, Firmware, FirmwareError, MODEL};

/// Longest fabric or node name. FortiOS object names are at most 35 characters (the same
/// bound as an `fctems` entry name), and node names end up in hostnames and prompts.
pub const MAX_NAME_LEN: usize = 35;

/// Length of a FortiGate serial number, e.g. `FGVM01TM22000001` (docs/fortios.md).
pub const SERIAL_LEN: usize = 16;

/// Every FortiGate serial number starts with these letters (`FGT60F…`, `FGVM01…`).
pub const SERIAL_PREFIX: &str = "FG";

/// Longest hostname: FortiOS `config system global` / `set hostname` takes at most 35
/// characters.
pub const MAX_HOSTNAME_LEN: usize = 35;

/// Every FortiClient EMS serial number starts with these letters, as in `FCTEMS8822001234`.
pub const EMS_SERIAL_PREFIX: &str = "FCTEMS";

/// Digits after [`EMS_SERIAL_PREFIX`] in an EMS serial: 16 characters in all, the length of
/// the `serial-number` field of an `fctems` entry (docs/fortios.md).
pub const EMS_SERIAL_DIGITS: usize = 10;

/// The site every multitenant EMS has; it is added first to `sites` when the file leaves
/// it out, because FortiOS reaches it as `default.<hostname>` (docs/fortios.md).
pub const DEFAULT_EMS_SITE: &str = "Default";

/// The capabilities an EMS can report, in the order FortiOS lists them: the values of the
/// `capabilities` set of an `fctems` entry (docs/fortios.md). An EMS reports all of
/// them unless its `[[ems]]` table lists fewer.
pub const EMS_CAPABILITIES: &[&str] = &[
    "fabric-auth",
    "silent-approval",
    "websocket",
    "websocket-malware",
    "push-ca-certs",
    "common-tags-api",
];

/// Longest label of a DNS name (RFC 1035 section 2.3.4). A site name becomes the first
/// label of `<site>.<hostname>`, so it is held to the same bound.
pub const MAX_DNS_LABEL_LEN: usize = 63;

/// Longest DNS name as written: 255 octets on the wire (RFC 1035 section 2.3.4) less the
/// length octet of the first label and the closing empty label.
pub const MAX_DNS_NAME_LEN: usize = 253;

/// The EMS Cloud server's name: its certificate's CN and the SNI a FortiGate sends it.
/// `.example` is reserved (RFC 2606), so the simulator never reaches a real service.
pub const EMS_CLOUD_HOSTNAME: &str = "fortigate.ems-cloud.example";

/// The FortiCloud API's name: its certificate's CN and the SNI a FortiGate sends it.
pub const FORTICLOUD_HOSTNAME: &str = "forticloud.example";

/// The EMS Cloud server's serial number; no `[[ems]]` may use it while `[forticloud]` is
/// given.
pub const EMS_CLOUD_SERIAL: &str = "FCTEMS0000000001";

/// The name the EMS Cloud server is driven by (`fabricsim ems ems-cloud ...`); no
/// `[[ems]]` may use it while `[forticloud]` is given.
pub const EMS_CLOUD_NAME: &str = "ems-cloud";

/// Contract type of the FortiClient EMS Cloud entitlement: `diagnose test update info`
/// lists it as an FCEM contract under `Account contracts:` (docs/fortios.md).
pub const FCEM_CONTRACT: &str = "FCEM";

/// Contract types a `[[forticloud.contract]]` may name: only the EMS Cloud entitlement is
/// simulated, because it is the only contract the EMS connector depends on.
pub const CONTRACT_TYPES: &[&str] = &[FCEM_CONTRACT];

/// Longest FortiCloud account, an email address: RFC 5321 section 4.5.3.1.3 bounds a
/// path to 256 octets, which leaves 254 for the address between its angle brackets.
pub const MAX_ACCOUNT_LEN: usize = 254;

/// Longest administrator or API user name FortiOS accepts (`config system admin`,
/// `config system api-user`: `edit` names of up to 64 characters).
pub const MAX_ACCOUNT_NAME_LEN: usize = 64;
/// Longest password FortiOS accepts for an administrator (`set password`, 128 characters).
pub const MAX_PASSWORD_LEN: usize = 128;
/// Length of the API keys `execute api-user generate-key` makes: 30 letters and digits.
pub const API_KEY_LEN: usize = 30;
/// Shortest fixed API key the topology accepts (ours): long enough not to be guessed.
pub const MIN_API_KEY_LEN: usize = 16;
/// Longest fixed API key the topology accepts (ours).
pub const MAX_API_KEY_LEN: usize = 128;

/// Whether `key` can be an API key: [`MIN_API_KEY_LEN`] to [`MAX_API_KEY_LEN`] ASCII
/// letters and digits.
pub fn is_api_key(key: &str) -> bool {
    (MIN_API_KEY_LEN..=MAX_API_KEY_LEN).contains(&key.len()) && key.chars().all(|c| c.is_ascii_alphanumeric())
}

/// TCP port FortiGates use for fabric connections by default (docs/fortios.md).
pub const FABRIC_PORT: u16 = 8013;

/// Whether `c` may appear in a fabric, node, EMS or site name: ASCII letters, digits, `-`
/// and `_`.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// Whether `value` is a FortiGate serial number: 16 characters, `A-Z` and `0-9`, starting with `FG`.
pub fn is_serial(value: &str) -> bool {
    value.len() == SERIAL_LEN
        && value.starts_with(SERIAL_PREFIX)
        && value
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// Whether `value` is a FortiClient EMS serial number: [`EMS_SERIAL_PREFIX`] followed by
/// [`EMS_SERIAL_DIGITS`] digits.
pub fn is_ems_serial(value: &str) -> bool {
    value.len() == EMS_SERIAL_PREFIX.len() + EMS_SERIAL_DIGITS
        && value
            .strip_prefix(EMS_SERIAL_PREFIX)
            .is_some_and(|digits| digits.chars().all(|c| c.is_ascii_digit()))
}

/// A contract date written `YYYY-MM-DD`, as `(year, month, day)`; the error says what
/// keeps `text` from being one (its shape, or a month or day that does not exist).
pub fn parse_contract_date(text: &str) -> Result<(i32, u32, u32), String> {
    let shape = || "is not a date written YYYY-MM-DD".to_owned();
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        let part = text.get(range)?;
        if part.bytes().all(|b| b.is_ascii_digit()) {
            part.parse::<u32>().ok()
        } else {
            None
        }
    };
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return Err(shape());
    }
    let (Some(year), Some(month), Some(day)) = (digits(0..4), digits(5..7), digits(8..10)) else {
        return Err(shape());
    };
    if !(1..=12).contains(&month) {
        return Err(format!("has month {month:02}; months are 01 to 12"));
    }
    let year = i32::try_from(year).map_err(|_| shape())?;
    let length = crate::calendar::days_in_month(i64::from(year), month);
    if !(1..=length).contains(&day) {
        return Err(format!(
            "has day {day:02}, but {year:04}-{month:02} has {length} days"
        ));
    }
    Ok((year, month, day))
}
