//! The HTTPS API a FortiGate asks FortiCloud about itself.
//!
//! | request | answer |
//! |---|---|
//! | `GET` [`device_path`]`(serial)` | 200, a [`CloudRecord`] (an unknown serial: not registered, no contracts) |
//! | a serial that fails [`is_serial_field`](super::is_serial_field) | 400, an [`ErrorBody`](super::ErrorBody) |
//! | any other path or method | 404 or 405, an [`ErrorBody`](super::ErrorBody) |
//!
//! The request carries the asking FortiGate's serial in the
//! [`SERIAL_HEADER`](super::SERIAL_HEADER), as on every EMS call. The client is
//! [`crate::connector::forticloud`], the server [`crate::sim::forticloud`].

use serde::{Deserialize, Serialize};

use crate::domain::FCEM_CONTRACT;

/// Where FortiCloud answers for one device: this prefix and the serial.
pub const DEVICES_PATH: &str = "/api/v1/devices/";

/// The path that answers for `serial`.
pub fn device_path(serial: &str) -> String {
    format!("{DEVICES_PATH}{serial}")
}

/// What FortiCloud knows of one FortiGate: the answer to [`device_path`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudRecord {
    /// The FortiGate's serial number.
    pub serial: String,
    /// Whether the FortiGate is registered to a FortiCloud account.
    pub registered: bool,
    /// The account it is registered to; empty when it is not registered.
    pub account: String,
    /// Its contracts, sorted by type; expired ones included.
    pub contracts: Vec<CloudContract>,
}

/// One contract of a FortiGate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudContract {
    /// The contract type, e.g. [`FCEM_CONTRACT`].
    #[serde(rename = "type")]
    pub kind: String,
    /// The contract's last day, `YYYY-MM-DD`.
    pub expires: String,
    /// Whether that day has passed (UTC), as FortiCloud judged it when it answered. A date
    /// that cannot be read counts as passed: such a contract proves nothing.
    pub expired: bool,
}

impl CloudRecord {
    /// The EMS Cloud entitlement (the FCEM contract), expired or not, if there is one.
    pub fn ems_cloud(&self) -> Option<&CloudContract> {
        self.contracts
            .iter()
            .find(|contract| contract.kind.eq_ignore_ascii_case(FCEM_CONTRACT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract(kind: &str, expired: bool) -> CloudContract {
        CloudContract {
            kind: kind.to_owned(),
            expires: "2027-12-31".to_owned(),
            expired,
        }
    }

    #[test]
    fn a_record_reads_the_contract_type_as_type_and_finds_fcem() {
        let record = CloudRecord {
            serial: "FGVM01TM22000001".to_owned(),
            registered: true,
            account: "admin@lab.example".to_owned(),
            contracts: vec![contract("FMWR", false), contract("FCEM", true)],
        };
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["contracts"][1]["type"], "FCEM");
        assert_eq!(json["contracts"][1]["expired"], true);
        assert_eq!(serde_json::from_value::<CloudRecord>(json).unwrap(), record);
        assert_eq!(record.ems_cloud(), Some(&contract("FCEM", true)));

        let none = CloudRecord {
            contracts: vec![contract("FMWR", false)],
            ..record
        };
        assert_eq!(none.ems_cloud(), None);
        assert_eq!(device_path("FGVM01"), "/api/v1/devices/FGVM01");
    }
}
