//! What a fix suggests writing instead: the valid key or name closest to a misspelt one,
//! and serials, names, addresses, hostnames and dates that no entry of the file uses yet.
//! Pure functions over strings and sets; the rule files call them while they report.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::domain::{MAX_DNS_LABEL_LEN, MAX_NAME_LEN, parse_contract_date};

use super::names::fqdn_fault;

/// Serials this module suggests are this prefix and a six-digit number.
pub(super) const SUGGESTED_SERIAL_PREFIX: &str = "FGVM01TM22";

/// Port this module suggests in EMS addresses: the one the example topologies use, since
/// the EMS default of 443 needs privileges to bind.
pub(super) const SUGGESTED_EMS_PORT: u16 = 8443;

/// Address this module suggests for an EMS (and its `[dns]` names): the one the default
/// topology gives its EMS.
pub(super) const SUGGESTED_EMS_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 31);

/// EMS serials this module suggests are this prefix and a six-digit number.
pub(super) const SUGGESTED_EMS_SERIAL_PREFIX: &str = "FCTEMS8822";

/// The hostname this module suggests when nothing of the written one can be kept.
pub(super) const SUGGESTED_EMS_HOSTNAME: &str = "ems.lab.example";

/// The site name this module suggests when nothing of the written one can be kept.
pub(super) const SUGGESTED_SITE: &str = "SiteA";

/// Address this module suggests for the FortiCloud API: the one `[forticloud]` examples use.
pub(super) const SUGGESTED_FORTICLOUD_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 35);

/// Address this module suggests for the EMS Cloud server.
pub(super) const SUGGESTED_EMS_CLOUD_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 36);

/// The contract end date this module suggests.
pub(super) const SUGGESTED_CONTRACT_DATE: &str = "2027-12-31";

/// Most node serials a fix lists, so that a fix stays one line in a large fabric.
pub(super) const MAX_LISTED_SERIALS: usize = 5;

/// Longest edit distance at which an unknown key is taken for a misspelling of a valid one.
pub(super) const MAX_TYPO_DISTANCE: usize = 2;

/// Shortest unknown key taken for a shortening of a valid key it starts (or that starts it);
/// shorter ones match too much by chance.
pub(super) const MIN_PREFIX_LEN: usize = 3;

/// The valid key closest to `unknown`, if it is close enough to be a misspelling or a
/// shortening (`heartbeat` for `heartbeat_ms`).
pub(super) fn closest<'a>(unknown: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
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
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
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
pub(super) fn unused_serial(used: &HashSet<&str>) -> String {
    (1u32..)
        .map(|n| format!("{SUGGESTED_SERIAL_PREFIX}{n:06}"))
        .find(|serial| !used.contains(serial.as_str()))
        .unwrap_or_default()
}

/// `name` with the smallest numeric suffix that is not `taken`.
pub(super) fn unused_name(name: &str, taken: &[&str]) -> String {
    let base: String = name.chars().take(MAX_NAME_LEN - 3).collect();
    (2u32..)
        .map(|n| format!("{base}-{n}"))
        .find(|candidate| !taken.contains(&candidate.as_str()))
        .unwrap_or_default()
}

/// An EMS serial no EMS in the file uses.
pub(super) fn unused_ems_serial(used: &HashSet<&str>) -> String {
    (1u32..)
        .map(|n| format!("{SUGGESTED_EMS_SERIAL_PREFIX}{n:06}"))
        .find(|serial| !used.contains(serial.as_str()))
        .unwrap_or_default()
}

/// A loopback address on `port` that no node in the file uses: the one just above the
/// highest in use, as a person numbering nodes would pick, or else the lowest free one.
pub(super) fn unused_address(port: u16, used: &HashSet<SocketAddr>) -> SocketAddr {
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

/// `text` as a `YYYY-MM-DD` date when it is one written another way (`2027-1-5`,
/// `2027/01/05`), else [`SUGGESTED_CONTRACT_DATE`].
pub(super) fn date_suggestion(text: &str) -> String {
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

/// `name` made into a DNS name: lowercase, other characters turned into `-`, empty labels
/// dropped; [`SUGGESTED_EMS_HOSTNAME`] when nothing usable is left.
pub(super) fn fqdn_suggestion(name: &str) -> String {
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

/// `value` in capitals when that makes it a `valid` serial no table uses yet (a serial
/// typed in lowercase), else a serial from `unused`.
pub(super) fn serial_suggestion(
    value: &str,
    used: &HashSet<&str>,
    valid: fn(&str) -> bool,
    unused: fn(&HashSet<&str>) -> String,
) -> String {
    let upper = value.to_ascii_uppercase();
    if valid(&upper) && !used.contains(upper.as_str()) {
        upper
    } else {
        unused(used)
    }
}
