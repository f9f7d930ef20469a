//! The FortiGate side of the FortiClient EMS connector: how one node checks one
//! `config endpoint-control fctems` entry, and what it shows for `execute fctems verify`.
//!
//! A check is a short conversation with the EMS over HTTPS, the way a FortiGate has it:
//!
//! 1. resolve the entry's `server` (the node's own name table first, then the system
//!    resolver);
//! 2. open a TCP connection from the entry's `source-ip` to `server:https-port`;
//! 3. run the TLS handshake with the server name as SNI, and judge the certificate the EMS
//!    presents against what this node trusts: the CA certificates it has installed and the
//!    EMS certificates a user accepted with `execute fctems verify`;
//! 4. only with an authorized certificate, ask the EMS for its serial number and register
//!    this FortiGate, which tells whether the EMS administrator authorized it under
//!    *Administration > Fabric Devices*.
//!
//! Every step is bounded by the entry's `call-timeout`. The answer is an [`EmsStatus`]:
//! an unreachable or distrusted EMS is a status to report, never an error. Only
//! [`fetch_offer`], which a CLI command drives, returns a [`ProbeFailure`] for the command to
//! print.
//!
//! Data enters as a [`ProbeTarget`] (built by the node from the replicated fctems entry and
//! its own identity), a [`TrustStore`] and a [`Resolver`]; it leaves as an [`EmsStatus`]
//! (whose JSON form other nodes and `fabricsim status` read) or a [`CertificateOffer`].
//! On the socket it speaks the contracts of [`crate::wire::ems`] and
//! [`crate::wire::forticloud`]: paths, headers and bodies are never written here, so the
//! simulated servers in [`crate::sim`] answer exactly what this side asks. "Now" is read
//! through [`crate::calendar`]. This module is the only place on the FortiGate side that
//! knows rustls; it imports nothing above [`crate::wire`].
//!
//! | file | owns |
//! |---|---|
//! | `probe.rs` | the check itself: connect, handshake, EMS API calls, the resulting status |
//! | `trust.rs` | the certificate verdict: expired, pinned, chained to an installed CA, name |
//! | `http.rs` | a minimal HTTP/1.1 client over one TLS stream, several requests per connection |
//! | `render.rs` | certificate text as `execute fctems verify` prints it, fingerprints, dates |
//! | `forticloud.rs` | asking FortiCloud for this FortiGate's registration and contracts |

pub mod forticloud;
mod http;
mod probe;
mod render;
mod trust;

#[cfg(test)]
mod test_ems;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use serde::{Deserialize, Serialize};

pub use probe::{
    CertificateOffer, DETAIL_AUTHORIZED, DETAIL_DENIED, DETAIL_PENDING, DETAIL_UNTRUSTED, ProbeFailure,
    fetch_offer, probe,
};
pub use render::{certificate_pem, fingerprint, render_certificate};

/// Where and how one fctems entry is checked from one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeTarget {
    /// The fctems entry's name (its key in the table).
    pub entry: String,
    /// The entry's `server`: an IPv4 address or an FQDN. It is also the TLS server name.
    pub server: String,
    /// The entry's `https-port`.
    pub port: u16,
    /// The address the TCP socket binds to: the entry's `source-ip`, or the node's own
    /// address when that is `0.0.0.0`.
    pub source: IpAddr,
    /// The entry's `call-timeout`, applied to each step on its own (connect, handshake,
    /// each HTTP call).
    pub timeout: Duration,
    /// This FortiGate's serial number, sent as `X-FortiGate-Serial`.
    pub fortigate_serial: String,
    /// This FortiGate's hostname, sent as `X-FortiGate-Hostname`.
    pub fortigate_hostname: String,
}

/// Names the node resolves before the system resolver (lowercase FQDN -> IP), so that a
/// simulated fabric can give EMS servers names without touching the host's DNS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolver {
    /// Lowercase FQDN, without a trailing dot, to address.
    pub table: BTreeMap<String, IpAddr>,
}

impl Resolver {
    /// Resolves `name`: an IP literal is itself; then the table (case-insensitive, a
    /// trailing dot ignored); then the system resolver, preferring an IPv4 address because
    /// a FortiGate's `source-ip` is IPv4.
    pub async fn resolve(&self, name: &str) -> Result<IpAddr, String> {
        let name = name.trim();
        if let Ok(ip) = name.parse::<IpAddr>() {
            return Ok(ip);
        }
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        if key.is_empty() {
            return Err("empty server name".to_owned());
        }
        if let Some(ip) = self.table.get(&key) {
            return Ok(*ip);
        }
        let addresses: Vec<IpAddr> = tokio::net::lookup_host((key.as_str(), 0))
            .await
            .map_err(|e| e.to_string())?
            .map(|a| a.ip())
            .collect();
        addresses
            .iter()
            .find(|ip| ip.is_ipv4())
            .or_else(|| addresses.first())
            .copied()
            .ok_or_else(|| "no address found".to_owned())
    }
}

/// What the node trusts when it judges an EMS certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustStore {
    /// Installed CA certificates (DER): a chain to one of them, valid for the server name,
    /// is authorized.
    pub anchors: Vec<CertificateDer<'static>>,
    /// EMS leaf certificates (DER) accepted with `execute fctems verify`: such a leaf is
    /// authorized whatever its issuer or names, but an expired one stays expired.
    pub pinned: Vec<CertificateDer<'static>>,
}

/// Whether the node could talk to the EMS at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Connection {
    /// TCP and TLS came up (the certificate verdict is separate).
    Connected,
    /// Name resolution, TCP, TLS or the HTTP exchange failed.
    Failed,
    /// A step got no answer within `call-timeout`.
    Timeout,
    /// Not checked yet.
    Unknown,
}

/// The node's verdict on the certificate the EMS presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertificateState {
    /// Chains to an installed CA and names the server, or was accepted with
    /// `execute fctems verify`.
    Authorized,
    /// Chains to no installed CA (unknown issuer, self-signed, bad signature).
    Untrusted,
    /// Past its validity period.
    Expired,
    /// Chains to an installed CA but does not name the configured server.
    NameMismatch,
    /// No certificate was seen.
    Unknown,
}

/// What the EMS decided about this FortiGate under *Administration > Fabric Devices*.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceState {
    /// The EMS administrator authorized this FortiGate.
    Authorized,
    /// Registered and waiting for the EMS administrator.
    Pending,
    /// Refused, by the EMS administrator or because the request reached no site.
    Denied,
    /// The node did not get as far as asking.
    Unknown,
}

/// Two words per state: the kebab-case word of the JSON form and status tables, and the
/// label FortiOS shows for it (`diagnose endpoint fctems test-connectivity`, the GUI's
/// *FortiClient EMS Status*; `docs/fortios.md#connector-status`).
macro_rules! state_words {
    ($kind:ty { $($variant:ident => $text:literal, $label:literal),* $(,)? }) => {
        impl $kind {
            /// The word used in JSON and in status tables.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),*
                }
            }

            /// The word FortiOS shows a person for this state.
            pub fn label(self) -> &'static str {
                match self {
                    $(Self::$variant => $label),*
                }
            }
        }

        impl fmt::Display for $kind {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

state_words!(Connection {
    Connected => "connected", "Successful",
    Failed => "failed", "Failed",
    Timeout => "timeout", "Timed out",
    Unknown => "unknown", "Unknown",
});
state_words!(CertificateState {
    Authorized => "authorized", "Authorized",
    Untrusted => "untrusted", "Not trusted",
    Expired => "expired", "Expired",
    NameMismatch => "name-mismatch", "Name mismatch",
    Unknown => "unknown", "Unknown",
});
state_words!(DeviceState {
    Authorized => "authorized", "Authorized",
    Pending => "pending", "Not authorized (pending)",
    Denied => "denied", "Denied",
    Unknown => "unknown", "Unknown",
});

/// One entry's result as one node saw it. Its JSON keys are a contract:
/// `name, server, connection, certificate, device, detail, ems_serial, checked_at`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmsStatus {
    /// The fctems entry's name.
    pub name: String,
    /// The entry's `server` as configured.
    pub server: String,
    pub connection: Connection,
    pub certificate: CertificateState,
    pub device: DeviceState,
    /// One line for a person: the FortiOS message for the state, or why the check failed.
    pub detail: String,
    /// The EMS serial number, when the EMS told it.
    pub ems_serial: Option<String>,
    /// When the check finished, RFC 3339 UTC (`2026-11-25T17:30:00Z`); `None` if never.
    pub checked_at: Option<String>,
}

impl EmsStatus {
    /// The status of an entry nobody has checked yet.
    pub fn unknown(name: &str, server: &str) -> EmsStatus {
        EmsStatus {
            name: name.to_owned(),
            server: server.to_owned(),
            connection: Connection::Unknown,
            certificate: CertificateState::Unknown,
            device: DeviceState::Unknown,
            detail: "Not checked yet.".to_owned(),
            ems_serial: None,
            checked_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_json_has_exactly_the_contract_keys() {
        let mut status = EmsStatus::unknown("ems1", "ems.lab.example");
        status.certificate = CertificateState::NameMismatch;
        status.ems_serial = Some("FCTEMS0000000001".to_owned());
        status.checked_at = Some("2026-11-25T17:30:00Z".to_owned());
        let json = serde_json::to_value(&status).expect("serializes");
        let object = json.as_object().expect("an object");
        let keys: Vec<&str> = object.keys().map(String::as_str).collect();
        let mut expected = vec![
            "name",
            "server",
            "connection",
            "certificate",
            "device",
            "detail",
            "ems_serial",
            "checked_at",
        ];
        expected.sort_unstable();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, expected);
        assert_eq!(object["certificate"], "name-mismatch");
        assert_eq!(object["connection"], "unknown");
        assert_eq!(object["device"], "unknown");
        let back: EmsStatus = serde_json::from_value(json).expect("round trip");
        assert_eq!(back, status);
    }

    #[test]
    fn unknown_status_serializes_nulls() {
        let json = serde_json::to_value(EmsStatus::unknown("ems1", "10.0.0.5")).expect("serializes");
        assert!(json["ems_serial"].is_null());
        assert!(json["checked_at"].is_null());
    }

    #[test]
    fn display_matches_json_words() {
        for state in [
            CertificateState::Authorized,
            CertificateState::Untrusted,
            CertificateState::Expired,
            CertificateState::NameMismatch,
            CertificateState::Unknown,
        ] {
            let json = serde_json::to_value(state).expect("serializes");
            assert_eq!(json, state.to_string());
        }
        assert_eq!(Connection::Timeout.to_string(), "timeout");
        assert_eq!(DeviceState::Pending.to_string(), "pending");
    }

    #[tokio::test]
    async fn resolver_prefers_literals_then_table() {
        let mut resolver = Resolver::default();
        resolver.table.insert(
            "default.ems.lab.example".to_owned(),
            "127.0.0.31".parse().expect("ip"),
        );
        assert_eq!(
            resolver.resolve("127.0.0.9").await,
            Ok("127.0.0.9".parse().expect("ip"))
        );
        assert_eq!(
            resolver.resolve("Default.EMS.lab.example.").await,
            Ok("127.0.0.31".parse().expect("ip"))
        );
        assert!(resolver.resolve("").await.is_err());
    }
}
