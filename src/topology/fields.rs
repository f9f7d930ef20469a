//! Rules for single values that several tables share: names, FortiGate serials,
//! hostnames, loopback `listen` addresses, and lists of node serials (`authorized`,
//! `registered`, a contract's `serial`) that must each name a node of the file.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use toml::Spanned;

use crate::domain::{MAX_HOSTNAME_LEN, MAX_NAME_LEN, SERIAL_LEN, SERIAL_PREFIX, is_name_char, is_serial};

use super::seen::FirstSeen;

/// How a key holding node serials speaks of them in problems.
pub(super) struct SerialUse {
    /// The key, e.g. `authorized`.
    pub(super) key: &'static str,
    /// What one serial is called in messages, e.g. "authorized serial".
    pub(super) what: &'static str,
    /// Why the serial must name a node, said after a suggested one.
    pub(super) why: &'static str,
}

/// `[[ems]] authorized`.
pub(super) const AUTHORIZED_SERIALS: SerialUse = SerialUse {
    key: "authorized",
    what: "authorized serial",
    why: "an EMS authorizes nodes by serial",
};

/// `[forticloud] registered`.
pub(super) const REGISTERED_SERIALS: SerialUse = SerialUse {
    key: "registered",
    what: "registered serial",
    why: "FortiCloud registers nodes by serial",
};

/// `[[forticloud.contract]] serial`.
pub(super) const CONTRACT_SERIAL: SerialUse = SerialUse {
    key: "serial",
    what: "contract serial",
    why: "FortiCloud holds contracts for nodes by serial",
};
use super::names::serial_faults;
use super::reader::Reader;
use super::spec::{DEFAULT_HOSTNAME_PREFIX, Span, Topology};
use super::suggest::{
    MAX_LISTED_SERIALS, closest, serial_suggestion, unused_address, unused_name, unused_serial,
};

/// A serial given where a node's serial belongs that names no node: what is wrong and
/// what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unlisted {
    /// `authorized serial "…" names no node in <place>`.
    pub what: String,
    /// The closest node serial, or the node serials there are.
    pub fix: String,
}

/// Which list of node serials a serial is written into, outside the file: `fabricsim ems
/// EMS authorize` adds to an EMS's `authorized`, `fabricsim cloud register` to
/// `registered`, `fabricsim cloud entitle` to the contracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerialList {
    /// `[[ems]] authorized`.
    Authorized,
    /// `[forticloud] registered`.
    Registered,
    /// `[[forticloud.contract]] serial`.
    Contract,
}

impl Topology {
    /// The problem `check` reports for `serial` written into `list`, when no node of this
    /// topology has that serial; `None` when one has. The rule and wording are the file's,
    /// the place is the topology file's path.
    pub fn unlisted_serial(&self, list: SerialList, serial: &str) -> Option<Unlisted> {
        let usage = match list {
            SerialList::Authorized => &AUTHORIZED_SERIALS,
            SerialList::Registered => &REGISTERED_SERIALS,
            SerialList::Contract => &CONTRACT_SERIAL,
        };
        let serials: Vec<&str> = self.nodes.iter().map(|node| node.serial.as_str()).collect();
        let place = self.source.display().to_string();
        names_no_node(usage, serial, &serials, serials.iter().copied(), &place)
    }
}

/// The rule behind every list of node serials (`authorized`, `registered`, a contract's
/// `serial`): `value` must be one of `node_serials`. `None` when it is; otherwise the
/// problem, suggesting the closest of `candidates`. `place` says where the nodes are
/// ("this file").
pub(super) fn names_no_node<'n>(
    usage: &SerialUse,
    value: &str,
    node_serials: &[&'n str],
    candidates: impl Iterator<Item = &'n str>,
    place: &str,
) -> Option<Unlisted> {
    if node_serials.contains(&value) {
        return None;
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
            format!("use a serial of a node in {place}: {}", listed.join(", "))
        }
    };
    Some(Unlisted {
        what: format!("{} \"{value}\" names no node in {place}", usage.what),
        fix,
    })
}

impl Reader<'_> {
    pub(super) fn check_name(&mut self, what: &str, fallback: &str, name: &Spanned<String>) {
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

    pub(super) fn check_serial(&mut self, serial: &Spanned<String>, used: &HashSet<&str>) {
        let value = serial.get_ref();
        let faults = serial_faults(value);
        if faults.is_empty() {
            return;
        }
        let example = serial_suggestion(value, used, is_serial, unused_serial);
        self.report(
            &serial.span(),
            format!("serial \"{value}\" {}", faults.join(", ")),
            format!(
                "a FortiGate serial is {SERIAL_LEN} characters, A-Z and 0-9, starting with \
                 \"{SERIAL_PREFIX}\"; e.g. serial = \"{example}\""
            ),
        );
    }

    pub(super) fn check_hostname(&mut self, hostname: &Spanned<String>) {
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
    pub(super) fn check_listen(
        &mut self,
        listen: &Spanned<String>,
        who: &str,
        example: SocketAddr,
    ) -> Option<SocketAddr> {
        self.check_address("listen", listen, who, example)
    }

    /// [`check_listen`](Self::check_listen) for an address under another key, such as
    /// `ems_listen`.
    pub(super) fn check_address(
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

    /// The well-formed serials of a list such as `authorized`, each once. `nodes` holds the
    /// serials of the nodes in the file, or is `None` when the nodes could not be read.
    pub(super) fn node_serial_list(
        &mut self,
        usage: &SerialUse,
        list: &[Spanned<String>],
        nodes: Option<&[&str]>,
    ) -> Vec<String> {
        let node_serials = nodes.unwrap_or_default();
        let mut seen = FirstSeen::new();
        let mut kept = Vec::new();
        for serial in list {
            let value = serial.get_ref();
            if !self.check_listed_serial(usage, serial, node_serials) {
                continue;
            }
            if let Some(first) = seen.repeat(value.as_str(), serial.span()) {
                self.report_listed_twice(usage.what, usage.key, value, first, &serial.span());
                continue;
            }
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
    pub(super) fn check_listed_serial(
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
    pub(super) fn check_serial_names_node<'n>(
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
        if let Some(problem) = names_no_node(usage, value, node_serials, candidates, "this file") {
            self.report(&serial.span(), problem.what, problem.fix);
        }
    }

    /// Reports a value written a second time in a list such as `sites` (`key`), where
    /// `what` names one value in messages ("site", "capability").
    pub(super) fn report_listed_twice(
        &mut self,
        what: &str,
        key: &str,
        value: &str,
        first: &Span,
        again: &Span,
    ) {
        let first_line = self.line(first);
        self.report(
            again,
            format!(
                "{what} \"{value}\" is listed twice: line {first_line} and line {}",
                self.line(again)
            ),
            format!("remove the second \"{value}\" from {key}"),
        );
    }

    /// Names unique among the `[[node]]`s or `[[ems]]`s: `plural` ("nodes") and `kind`
    /// ("node") make the messages fit; `taken` are every name of those tables.
    pub(super) fn check_unique_names<'a>(
        &mut self,
        names: impl Iterator<Item = &'a Spanned<String>>,
        taken: &[&str],
        plural: &str,
        kind: &str,
    ) {
        let mut seen = FirstSeen::new();
        for name in names {
            let Some(first) = seen.repeat(name.get_ref().as_str(), name.span()) else {
                continue;
            };
            let first_line = self.line(first);
            let line = self.line(&name.span());
            self.report(
                &name.span(),
                format!(
                    "two {plural} are named \"{}\": line {first_line} and line {line}",
                    name.get_ref()
                ),
                format!(
                    "{kind} names are unique; rename the {kind} on line {line}, e.g. name = \"{}\"",
                    unused_name(name.get_ref(), taken)
                ),
            );
        }
    }

    /// Serials unique among the `[[node]]`s or `[[ems]]`s, each given with the label of
    /// its table: `plural` ("nodes") and `owner` ("FortiGate") make the messages fit, and
    /// `free` is a serial no table uses.
    pub(super) fn check_unique_serials<'a>(
        &mut self,
        serials: impl Iterator<Item = (String, &'a Spanned<String>)>,
        plural: &str,
        owner: &str,
        free: &str,
    ) {
        let mut seen = FirstSeen::new();
        for (label, serial) in serials {
            let span = serial.span();
            let Some((first, first_span)) =
                seen.repeat(serial.get_ref().as_str(), (label.clone(), span.clone()))
            else {
                continue;
            };
            let first_line = self.line(first_span);
            self.report(
                &span,
                format!(
                    "two {plural} have serial \"{}\": {first} (line {first_line}) and {label} (line {})",
                    serial.get_ref(),
                    self.line(&span)
                ),
                format!("every {owner} has its own serial; e.g. serial = \"{free}\" on {label}"),
            );
        }
    }

    /// Reports `who` listening on `address` (written at `span` under `key`) when a server
    /// in `seen` already does, and remembers it otherwise. Port 0 picks a free port, so it
    /// never collides; `used` holds every address of the file, for the suggested one.
    pub(super) fn check_own_address(
        &mut self,
        seen: &mut FirstSeen<SocketAddr, (String, Span)>,
        who: String,
        key: &str,
        (address, span): (SocketAddr, &Span),
        used: &HashSet<SocketAddr>,
    ) {
        if address.port() == 0 {
            return;
        }
        let Some((first, first_span)) = seen.repeat(address, (who.clone(), span.clone())) else {
            return;
        };
        let first_line = self.line(first_span);
        self.report(
            span,
            format!(
                "{who} listens on {address} (line {}), as does {first} (line {first_line})",
                self.line(span)
            ),
            format!(
                "give {who} its own address, e.g. {key} = \"{}\", or port 0 to pick a free port",
                unused_address(address.port(), used)
            ),
        );
    }
}
