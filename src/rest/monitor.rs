//! `/api/v2/monitor/…`: what the node reports rather than stores: `system/status`, the
//! EMS connectors' state (`endpoint-control/ems/status`, `ems/status-summary`,
//! `ems/cert-status`), a check now (`ems/test-connectivity`, the GUI's Refresh), accepting
//! or forgetting an EMS certificate (`ems/verify-cert`, `ems/unverify-cert`, through the
//! steps of `execute fctems verify|unverify`), a new API key
//! (`system/api-user/generate-key`), FortiCloud's view of this FortiGate
//! (`license/status`), and the fabric: the members, their serials and whether they hold
//! the root's configuration (`system/csf`), and every node's own report
//! (`system/csf/topology`) (`docs/fortios.md`, "REST API").

use axum::http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::cli::Backend;
use crate::cli::api;
use crate::config::schema::{FCTEMS, REMOTE_CERTIFICATES};
use crate::config::{RC_INVALID_VALUE, fail_line};
use crate::connector::{CertificateOffer, CertificateState, Connection, DeviceState, EmsStatus};
use crate::node::Node;
use crate::topology::Role;

use super::FabricView;
use super::cmdb::{Outcome, refused};
use super::envelope::{Envelope, Failure};

/// Runs one monitor request: `route` is the path after `/api/v2/monitor/`.
pub(super) async fn handle(
    node: &Node,
    fabric_view: &FabricView,
    route: &str,
    method: &Method,
    envelope: &Envelope,
    query: &[(String, String)],
    body: &[u8],
) -> Outcome {
    let wanted = match route {
        "system/status"
        | "system/csf"
        | "system/csf/topology"
        | "license/status"
        | "endpoint-control/ems/status"
        | "endpoint-control/ems/status-summary"
        | "endpoint-control/ems/cert-status" => Method::GET,
        "endpoint-control/ems/verify-cert"
        | "endpoint-control/ems/unverify-cert"
        | "endpoint-control/ems/test-connectivity"
        | "system/api-user/generate-key" => Method::POST,
        _ => return Err(Failure::status(StatusCode::NOT_FOUND)),
    };
    if *method != wanted {
        return Err(Failure::status(StatusCode::METHOD_NOT_ALLOWED));
    }
    match route {
        "system/status" => Ok(system_status(node, envelope)),
        "system/csf" => Ok(envelope.results(fabric(node), None)),
        "system/csf/topology" => Ok(envelope.results(fabric_view().await, None)),
        "license/status" => Ok(license_status(node, envelope).await),
        "endpoint-control/ems/status" => ems_status(node, envelope, query),
        "endpoint-control/ems/status-summary" => Ok(status_summary(node, envelope)),
        "endpoint-control/ems/cert-status" => cert_status(node, envelope, query).await,
        "endpoint-control/ems/verify-cert" => verify_cert(node, envelope, body).await,
        "endpoint-control/ems/test-connectivity" => test_connectivity(node, envelope, body).await,
        "system/api-user/generate-key" => generate_key(node, envelope, query).await,
        _ => unverify_cert(node, envelope, body).await,
    }
}

/// CLIENTS' shape: the model and hostname under `results`, the release at the top.
fn system_status(node: &Node, envelope: &Envelope) -> Map<String, Value> {
    let results = json!({
        "model_name": "FortiGate",
        "model_number": "VM64",
        "model": "FGVM64",
        "hostname": node.identity().hostname,
    });
    let mut body = envelope.results(results, None);
    body.insert("action".to_owned(), json!(""));
    body
}

/// FortiOS's `ems_status_id` and `ems_status` for one entry's state [doc words; the
/// mapping is ours].
fn fortios_status(status: &EmsStatus) -> (i32, &'static str) {
    match (status.connection, status.certificate, status.device) {
        (Connection::Unknown, ..) => (0, "auth_pending"),
        (Connection::Failed | Connection::Timeout, CertificateState::Unknown, _) => (-1, "not_reachable"),
        (_, CertificateState::Untrusted | CertificateState::Expired, _) => (-4, "cert_untrusted"),
        (_, CertificateState::NameMismatch, _) => (-5, "cert_unauthorized"),
        (Connection::Connected, CertificateState::Authorized, DeviceState::Authorized) => (1, "success"),
        (_, _, DeviceState::Pending) => (0, "auth_pending"),
        (_, _, DeviceState::Denied) => (-3, "auth_failed"),
        (Connection::Failed | Connection::Timeout, ..) => (-1, "not_reachable"),
        _ => (-9999, "other"),
    }
}

/// Every fctems entry in use, by key, with this node's last check of it (reported under
/// the entry's label, its name or its ems-id; an unchecked entry as unknown).
fn entry_statuses(node: &Node) -> Vec<(String, EmsStatus)> {
    let reported = node.status().ems;
    let db = node.config();
    db.fctems_in_use()
        .into_iter()
        .map(|key| {
            let label = db.fctems_label(&key);
            let status = reported
                .iter()
                .find(|status| status.name == label)
                .cloned()
                .unwrap_or_else(|| EmsStatus::unknown(&label, &db.value(FCTEMS.path, &key, "server")));
            (key, status)
        })
        .collect()
}

/// Whether a query's `ems_name` or `ems_id` names entry `key` reported as `status`.
fn names(wanted: &str, key: &str, status: &EmsStatus) -> bool {
    wanted == key || wanted == status.name
}

fn ems_status(node: &Node, envelope: &Envelope, query: &[(String, String)]) -> Outcome {
    let wanted = super::forms::lookup(query, "ems_name").or_else(|| super::forms::lookup(query, "ems_id"));
    let statuses: Vec<Value> = entry_statuses(node)
        .iter()
        .filter(|(key, status)| wanted.is_none_or(|wanted| names(wanted, key, status)))
        .map(|(_, status)| status_json(status))
        .collect();
    if wanted.is_some() && statuses.is_empty() {
        return Err(Failure::status(StatusCode::NOT_FOUND));
    }
    Ok(envelope.results(Value::Array(statuses), None))
}

/// One entry's state as `ems/status` lists it: FortiOS's id and word, this node's words
/// for each step, and the labels the GUI shows (`Successful`, `Authorized`).
fn status_json(status: &EmsStatus) -> Value {
    let (id, word) = fortios_status(status);
    json!({
        "ems_name": status.name,
        "ems_status_id": id,
        "ems_status": word,
        "server": status.server,
        "connection": status.connection.to_string(),
        "certificate": status.certificate.to_string(),
        "authorization": status.device.to_string(),
        "connection_label": status.connection.label(),
        "certificate_label": status.certificate.label(),
        "authorization_label": status.device.label(),
        "ems_serial": status.ems_serial.clone().unwrap_or_default(),
        "last_check": status.checked_at.clone().unwrap_or_default(),
        "detail": status.detail,
    })
}

/// `POST ems/test-connectivity {"ems_name"}` [ours: the GUI's Refresh]: checks the entry
/// now from this node, as `diagnose endpoint fctems test-connectivity` does, and answers
/// what `ems/status` lists for it.
async fn test_connectivity(node: &Node, envelope: &Envelope, body: &[u8]) -> Outcome {
    let (name, _) = named_entry(body)?;
    let status = api::test_connectivity(node, &name).await.map_err(refused)?;
    Ok(envelope.results(status_json(&status), None))
}

/// `GET license/status`: what FortiCloud knows of this FortiGate, in FortiOS's keys
/// (`forticare` for the registration, `fortiems_cloud` for the FCEM entitlement), and
/// whether EMS Cloud may be configured here, with the CLI's reason when not [ours].
async fn license_status(node: &Node, envelope: &Envelope) -> Map<String, Value> {
    let record = node.forticloud().await;
    let refusal = api::ems_cloud_refusal(node.serial(), &record);
    let (registered, account, ems_cloud) = match &record {
        Ok(record) => (
            record.registered,
            record.account.clone(),
            record.ems_cloud().cloned(),
        ),
        Err(_) => (false, String::new(), None),
    };
    let ems_cloud_status = match &ems_cloud {
        Some(contract) if contract.expired => "expired",
        Some(_) => "licensed",
        None => "no_license",
    };
    let registration = if registered { "registered" } else { "unregistered" };
    let results = json!({
        "forticare": {
            "status": registration,
            "registration_status": registration,
            "account": account,
            "type": "cloud_service_status",
        },
        "fortiems_cloud": {
            "entitlement": crate::domain::FCEM_CONTRACT,
            "status": ems_cloud_status,
            "expires": ems_cloud.map(|contract| contract.expires).unwrap_or_default(),
            "type": "account_level_live_cloud_service",
            "configurable": refusal.is_none(),
            "reason": refusal.map(|refusal| refusal.reason()).unwrap_or_default(),
        },
    });
    envelope.results(results, None)
}

fn status_summary(node: &Node, envelope: &Envelope) -> Map<String, Value> {
    let summary: Vec<Value> = entry_statuses(node)
        .iter()
        .map(|(_, status)| {
            let (id, word) = fortios_status(status);
            json!({
                "name": status.name,
                "ems_status_id": id,
                "ems_status": word,
                "cert_status": { "status": status.certificate.to_string() },
            })
        })
        .collect();
    envelope.results(Value::Array(summary), None)
}

/// `GET ems/cert-status?ems_name=<n>[&with_cert=true]` (doc): the certificate verdict of
/// this node's last check, whether the entry is verified, and with `with_cert=true` the
/// certificate the EMS presents now.
async fn cert_status(node: &Node, envelope: &Envelope, query: &[(String, String)]) -> Outcome {
    let name = super::forms::lookup(query, "ems_name").ok_or(Failure::status(StatusCode::BAD_REQUEST))?;
    let (key, status) = entry_statuses(node)
        .into_iter()
        .find(|(key, status)| names(name, key, status))
        .ok_or(Failure::status(StatusCode::NOT_FOUND))?;
    let db = node.config();
    let certificate = db.value(FCTEMS.path, &key, "certificate");
    let verified = !certificate.is_empty() && db.entry(REMOTE_CERTIFICATES.path, &certificate).is_some();
    let mut results = json!({
        "ems_name": name,
        "cert_status": { "status": status.certificate.to_string() },
        "verified": verified,
        "certificate": certificate,
    });
    if super::forms::lookup(query, "with_cert") == Some("true") {
        let offer = node.fetch_certificate(&key).await.map_err(|reason| {
            let lines = vec![reason, fail_line(RC_INVALID_VALUE)];
            Failure::cli(StatusCode::INTERNAL_SERVER_ERROR, RC_INVALID_VALUE, &lines)
        })?;
        results["cert"] = certificate_details(&offer);
    }
    Ok(envelope.results(results, None))
}

/// The entry a monitor POST names: `ems_name`, or `ems_id` with the name-keyed table.
fn named_entry(body: &[u8]) -> Result<(String, Map<String, Value>), Failure> {
    let members: Map<String, Value> =
        serde_json::from_slice(body).map_err(|_| Failure::status(StatusCode::BAD_REQUEST))?;
    let name = ["ems_name", "ems_id"]
        .iter()
        .find_map(|key| match members.get(*key) {
            Some(Value::String(name)) => Some(name.clone()),
            Some(Value::Number(id)) => Some(id.to_string()),
            _ => None,
        })
        .ok_or(Failure::status(StatusCode::BAD_REQUEST))?;
    Ok((name, members))
}

/// `POST ems/verify-cert {"ems_name", "fingerprint"}`: the certificate the EMS presents;
/// with the matching fingerprint it is also trusted fabric-wide, as answering `y` to
/// `execute fctems verify` does.
async fn verify_cert(node: &Node, envelope: &Envelope, body: &[u8]) -> Outcome {
    let (name, members) = named_entry(body)?;
    let offer = api::fetch_offer(node, &name).await.map_err(refused)?;
    let details = certificate_details(&offer);
    let confirmed = match members.get("fingerprint") {
        Some(Value::String(given)) => {
            if normalized(given) != normalized(&offer.fingerprint) {
                return Err(Failure::status(StatusCode::FORBIDDEN));
            }
            api::trust_offer(node, &name, offer).await.map_err(refused)?;
            true
        }
        _ => false,
    };
    let mut results = json!({ "ems_name": name, "status": if confirmed { "success" } else { "unverified" } });
    results["certificate"] = details;
    Ok(envelope.results(results, None))
}

/// A fingerprint compared without separators and case.
fn normalized(fingerprint: &str) -> String {
    fingerprint
        .chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn certificate_details(offer: &CertificateOffer) -> Value {
    let parsed = offer
        .chain
        .first()
        .and_then(|leaf| x509_parser::parse_x509_certificate(leaf).ok());
    let mut details = json!({
        "fingerprint": offer.fingerprint,
        "trusted_by_ca": offer.trusted_by_ca,
        "state": offer.state.to_string(),
        "ems_serial": offer.ems_serial.clone().unwrap_or_default(),
    });
    if let Some((_, leaf)) = parsed {
        details["subject"] = json!(leaf.subject().to_string());
        details["issuer"] = json!(leaf.issuer().to_string());
        details["valid_from"] = json!(leaf.validity().not_before.to_string());
        details["valid_to"] = json!(leaf.validity().not_after.to_string());
        details["serial_number"] = json!(leaf.raw_serial_as_string());
    }
    details
}

/// `POST system/api-user/generate-key?api-user=<name>`: `execute api-user generate-key`;
/// the new key is `results.access_token` (doc path; the reply's field is ours).
async fn generate_key(node: &Node, envelope: &Envelope, query: &[(String, String)]) -> Outcome {
    let name = super::forms::lookup(query, "api-user").ok_or(Failure::status(StatusCode::BAD_REQUEST))?;
    let key = api::generate_key(node, name).await.map_err(refused)?;
    Ok(envelope.results(json!({ "access_token": key }), None))
}

/// `POST ems/unverify-cert {"ems_name"}`: `execute fctems unverify`.
async fn unverify_cert(node: &Node, envelope: &Envelope, body: &[u8]) -> Outcome {
    let (name, _) = named_entry(body)?;
    let printed = api::unverify(node, &name).await.map_err(refused)?;
    let status = if printed.is_empty() {
        "success"
    } else {
        "not_verified"
    };
    Ok(envelope.results(json!({ "ems_name": name, "status": status }), None))
}

/// The fabric as this node knows it: each FortiGate of the topology, its Raft role, and
/// whether it holds this node's last log entry (on the root, the fabric's sync state).
fn fabric(node: &Node) -> Value {
    let metrics = node.raft().metrics().borrow().clone();
    let membership = metrics.membership_config.membership();
    let last = metrics.last_log_index.unwrap_or(0);
    let replication = metrics.replication.clone().unwrap_or_default();
    let members: Vec<Value> = node
        .fabric_nodes()
        .iter()
        .map(|spec| {
            let voter = membership.voter_ids().any(|id| id == spec.id);
            let learner = membership.learner_ids().any(|id| id == spec.id);
            let matched = if spec.id == node.id() {
                metrics.last_applied.map(|log| log.index)
            } else {
                replication.get(&spec.id).and_then(|log| log.map(|log| log.index))
            };
            let joined = voter || learner;
            let known = node.role() == Role::Root || spec.id == node.id();
            json!({
                "name": spec.name,
                "serial": spec.serial,
                "hostname": spec.hostname,
                "role": spec.role.to_string(),
                "raft": if voter { "voter" } else if learner { "learner" } else { "none" },
                "matched_index": matched,
                "in_sync": known && joined && matched == Some(last),
            })
        })
        .collect();
    Value::Array(members)
}
