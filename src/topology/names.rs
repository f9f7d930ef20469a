//! The shape rules a written value is held to, as the faults a problem names: what keeps
//! a string from being a FortiGate serial or a DNS name. The bounds themselves are
//! [`crate::domain`] facts.

use std::net::Ipv4Addr;

use crate::domain::{MAX_DNS_LABEL_LEN, MAX_DNS_NAME_LEN, SERIAL_LEN, SERIAL_PREFIX};

/// What keeps `value` from being a FortiGate serial; empty when it is one.
pub(super) fn serial_faults(value: &str) -> Vec<String> {
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

/// How a DNS name is written, for fixes.
pub(super) fn fqdn_rule() -> String {
    format!(
        "dot-separated labels of letters, digits and \"-\", each 1 to {MAX_DNS_LABEL_LEN} characters \
         and not starting or ending with \"-\""
    )
}

/// What keeps `name` from being a DNS name the nodes can resolve; `None` when it is one.
pub(super) fn fqdn_fault(name: &str) -> Option<String> {
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
