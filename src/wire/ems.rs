//! The HTTPS API of a FortiClient EMS, as a FortiGate calls it once TLS is up.
//!
//! | request | answer (`200`) |
//! |---|---|
//! | `GET` [`SERIAL_NUMBER_PATH`] | [`Envelope`] of [`SerialNumber`] |
//! | `GET` [`CAPABILITIES_PATH`] | [`Envelope`] of [`Capabilities`] |
//! | `POST` [`REGISTER_PATH`] (no body) | [`Envelope`] of [`Registration`] |
//! | `GET` [`MALWARE_HASHES_PATH`] | [`Envelope`] of [`MalwareHashes`], 403 unless authorized |
//!
//! Every request names the FortiGate with the [`SERIAL_HEADER`](super::SERIAL_HEADER) and
//! [`HOSTNAME_HEADER`] headers; every refusal is an [`ErrorBody`](super::ErrorBody), and a
//! 403 carries the text FortiOS shows for it (`Certificate user does not have access to
//! global.` on a multitenant EMS reached without a site, see `docs/fortios.md`).
//!
//! The client is [`crate::connector`] (the FortiGate's check and `execute fctems verify`),
//! the server [`crate::sim::ems`]; both read and write the bodies through these types.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Answers the EMS serial number.
pub const SERIAL_NUMBER_PATH: &str = "/api/v1/system/serial_number";
/// Lists what the EMS supports (the fctems `capabilities`), asked on verify.
pub const CAPABILITIES_PATH: &str = "/api/v1/system/capabilities";
/// Posted by a FortiGate to appear under *Administration > Fabric Devices*; the answer
/// says whether it is authorized.
pub const REGISTER_PATH: &str = "/api/v1/fabric/device/register";
/// The EMS threat feed (`pull-malware-hash`), for authorized FortiGates only.
pub const MALWARE_HASHES_PATH: &str = "/api/v1/malware/hashes";
/// Header carrying the calling FortiGate's hostname.
pub const HOSTNAME_HEADER: &str = "X-FortiGate-Hostname";

/// `{"data": ...}`: the envelope of every successful answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// The answer proper.
    pub data: T,
}

/// The answer to [`SERIAL_NUMBER_PATH`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SerialNumber {
    /// The EMS serial number (`FCTEMS...`).
    pub serial_number: String,
}

/// The answer to [`CAPABILITIES_PATH`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// What the EMS supports, in FortiOS words (`fabric-auth`, `websocket`, ...).
    pub capabilities: Vec<String>,
}

/// The answer to [`REGISTER_PATH`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// What the EMS administrator decided about the calling FortiGate.
    pub status: DeviceState,
}

/// The answer to [`MALWARE_HASHES_PATH`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MalwareHashes {
    /// SHA-256 hashes, lowercase hex.
    pub hashes: Vec<String>,
}

/// Whether an EMS administrator let a FortiGate in, under *Administration > Fabric Devices*.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceState {
    /// Authorized: the FortiGate may use the EMS.
    Authorized,
    /// Registered, awaiting a decision.
    Pending,
    /// Denied by the administrator.
    Denied,
}

impl fmt::Display for DeviceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceState::Authorized => "authorized",
            DeviceState::Pending => "pending",
            DeviceState::Denied => "denied",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_the_documented_shape() {
        let registration = Envelope {
            data: Registration {
                status: DeviceState::Pending,
            },
        };
        let json = serde_json::to_value(&registration).unwrap();
        assert_eq!(json, serde_json::json!({ "data": { "status": "pending" } }));
        assert_eq!(
            serde_json::from_value::<Envelope<Registration>>(json).unwrap(),
            registration
        );
        let serial = serde_json::to_value(SerialNumber {
            serial_number: "FCTEMS0000000001".to_owned(),
        })
        .unwrap();
        assert_eq!(serial["serial_number"], "FCTEMS0000000001");
        assert_eq!(DeviceState::Denied.to_string(), "denied");
    }
}
