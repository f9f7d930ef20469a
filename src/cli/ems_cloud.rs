//! The EMS Cloud prerequisites: an fctems entry may turn on
//! `fortinetone-cloud-authentication` only on a FortiGate registered to FortiCloud with a
//! valid EMS Cloud entitlement. The check asks the backend what FortiCloud knows
//! ([`Backend::forticloud`]) and refuses with FortiOS's `node_check_object` line.

use crate::config::ConfigDb;
use crate::config::schema::FCTEMS;
use crate::connector::forticloud::CloudRecord;

use super::backend::Backend;
use super::context::Pending;
use super::error::CliError;

/// The field and value that make an fctems entry an EMS Cloud entry.
const CLOUD_FIELD: &str = "fortinetone-cloud-authentication";
const CLOUD_ON: &str = "enable";

/// Whether committing `pending` turns an fctems entry into an EMS Cloud entry.
pub(super) fn enables_ems_cloud(db: &ConfigDb, pending: &Pending) -> bool {
    pending.table.path == FCTEMS.path
        && pending.values.get(CLOUD_FIELD).map(String::as_str) == Some(CLOUD_ON)
        && db
            .entry(FCTEMS.path, &pending.key)
            .and_then(|entry| entry.get(CLOUD_FIELD))
            != Some(CLOUD_ON)
}

/// EMS Cloud may be enabled only on a FortiGate registered to FortiCloud with a valid EMS
/// Cloud entitlement (`docs/fortios.md`); the refusal says which one is missing.
pub(super) async fn require_ems_cloud<B: Backend>(backend: &B) -> Result<(), CliError> {
    ems_cloud_allowed(&backend.identity().serial, &backend.forticloud().await)
}

/// The rule of [`require_ems_cloud`] on what FortiCloud answered about FortiGate `serial`
/// (or why it could not be asked).
pub(super) fn ems_cloud_allowed(serial: &str, record: &Result<CloudRecord, String>) -> Result<(), CliError> {
    let refuse = |reason: String| CliError::Check {
        reason,
        field: CLOUD_FIELD,
        value: CLOUD_ON,
    };
    let record = record.as_ref().map_err(|why| {
        refuse(format!(
            "FortiCloud cannot be reached ({why}); EMS Cloud needs a FortiGate registered to FortiCloud."
        ))
    })?;
    if !record.registered {
        return Err(refuse(format!(
            "This FortiGate ({serial}) is not registered to FortiCloud; EMS Cloud needs a registered FortiGate."
        )));
    }
    match record.ems_cloud() {
        None => Err(refuse(format!(
            "This FortiGate ({serial}) has no FortiClient EMS Cloud entitlement (FCEM) on FortiCloud account {}.",
            record.account
        ))),
        Some(contract) if contract.expired => Err(refuse(format!(
            "The FortiClient EMS Cloud entitlement (FCEM) of this FortiGate ({serial}) expired on {}.",
            contract.expires
        ))),
        Some(_) => Ok(()),
    }
}
