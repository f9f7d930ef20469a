//! Conversions between protobuf messages and the crate's own types, in one place.

use serde::de::DeserializeOwned;

use crate::connector::EmsStatus;
use crate::wire::proto::fabric as pb;

/// The variant a word names, or `fallback` for a word this build does not know.
fn parse<T: DeserializeOwned>(word: &str, fallback: T) -> T {
    serde_json::from_value(serde_json::Value::String(word.to_owned())).unwrap_or(fallback)
}

pub(super) fn ems_to_proto(status: &EmsStatus) -> pb::EmsStatus {
    pb::EmsStatus {
        name: status.name.clone(),
        server: status.server.clone(),
        connection: status.connection.as_str().to_owned(),
        certificate: status.certificate.as_str().to_owned(),
        device: status.device.as_str().to_owned(),
        detail: status.detail.clone(),
        ems_serial: status.ems_serial.clone(),
        checked_at: status.checked_at.clone(),
    }
}

pub(super) fn ems_from_proto(status: pb::EmsStatus) -> EmsStatus {
    let mut ems = EmsStatus::unknown(&status.name, &status.server);
    ems.connection = parse(&status.connection, ems.connection);
    ems.certificate = parse(&status.certificate, ems.certificate);
    ems.device = parse(&status.device, ems.device);
    ems.detail = status.detail;
    ems.ems_serial = status.ems_serial;
    ems.checked_at = status.checked_at;
    ems
}
