//! The HTTPS API of the simulated EMS: what a FortiGate calls once TLS is up.
//!
//! The paths, headers and bodies are the contract in [`crate::wire::ems`], the same types
//! the FortiGate side ([`crate::connector`]) reads. Requests enter through the axum
//! [`Router`] built by [`router`], one per server, wrapped
//! per connection with a [`Caller`] extension (the peer address and the site the TLS SNI
//! named). They leave as JSON bodies, errors as `{"error": "..."}`, and change the server's
//! *Fabric Devices* list (registration) and its record of who asked (`requests_from`).
//!
//! | request | answer |
//! |---|---|
//! | `GET /api/v1/system/serial_number` | `{"data":{"serial_number":"FCTEMS..."}}` |
//! | `GET /api/v1/system/capabilities` | `{"data":{"capabilities":[...]}}` |
//! | `POST /api/v1/fabric/device/register` | `{"data":{"status":"authorized"\|"pending"\|"denied"}}` |
//! | `GET /api/v1/malware/hashes` | `{"data":{"hashes":[...]}}`, 403 unless authorized |
//!
//! The FortiGate names itself with the `X-FortiGate-Serial` and `X-FortiGate-Hostname`
//! headers. On a multitenant EMS a connection that named no site gets 403
//! `Certificate user does not have access to global.` from every path (see
//! `docs/fortios.md`). Registration and the Fabric Devices list are per EMS, not per site: the
//! site a FortiGate last registered under is recorded in its row. When the server has an
//! authorizer (EMS Cloud), it decides the state registration answers and who gets the
//! threat feed.

use std::collections::btree_map::Entry;
use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use sha2::{Digest, Sha256};

use super::super::serve::{refusal, with_fallbacks};
use super::{FabricDevice, Shared};
use crate::calendar::{Clock, SystemClock};
use crate::domain::MAX_HOSTNAME_LEN;
use crate::topology::EmsSpec;
use crate::wire::ems::{
    CAPABILITIES_PATH, Capabilities, DeviceState, Envelope, HOSTNAME_HEADER, MALWARE_HASHES_PATH,
    MalwareHashes, REGISTER_PATH, Registration, SERIAL_NUMBER_PATH, SerialNumber,
};
use crate::wire::{SERIAL_HEADER, is_serial_field};

/// The site of a single-tenant EMS, and the site every multitenant EMS has.
pub const DEFAULT_SITE: &str = "Default";
/// The threat feed's hashes are SHA-256 of this prefix followed by 1, 2, ...
pub const MALWARE_SEED_PREFIX: &str = "fabricsim-malware-";
/// Hashes in the threat feed: enough to tell a real list from an empty one.
const MALWARE_FEED_LEN: usize = 5;
/// Rows the Fabric Devices list grows to through registration; a client registering
/// random serials gets 503 beyond it instead of growing the list without bound. Far above
/// any fabric the simulator runs.
const MAX_FABRIC_DEVICES: usize = 4096;

/// Who is calling, fixed per connection: inserted by the connection task.
#[derive(Clone, Debug)]
pub(super) struct Caller {
    /// The peer address of the TCP connection.
    pub(super) address: IpAddr,
    /// The site the SNI named, or `None` when it named none this EMS has.
    pub(super) site: Option<String>,
}

/// The site of an admitted request: inserted by [`admit`] for the handlers.
#[derive(Clone, Debug)]
struct Site(String);

/// The site a connection with this SNI reaches: always [`DEFAULT_SITE`] on a single-tenant
/// EMS; on a multitenant one the site whose name is the SNI's first label when the rest is
/// the EMS hostname, compared case-insensitively, and otherwise none.
pub(super) fn site_for(spec: &EmsSpec, sni: Option<&str>) -> Option<String> {
    if spec.sites.is_empty() {
        return Some(DEFAULT_SITE.to_owned());
    }
    let (label, rest) = sni?.split_once('.')?;
    if !rest.eq_ignore_ascii_case(&spec.hostname) {
        return None;
    }
    spec.sites
        .iter()
        .find(|site| site.eq_ignore_ascii_case(label))
        .cloned()
}

/// The threat feed: SHA-256 (lowercase hex) of `fabricsim-malware-1` to `-5`.
pub fn malware_hashes() -> Vec<String> {
    (1..=MALWARE_FEED_LEN)
        .map(|n| {
            Sha256::digest(format!("{MALWARE_SEED_PREFIX}{n}"))
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect()
        })
        .collect()
}

/// The API of one server.
pub(super) fn router(shared: Arc<Shared>) -> Router {
    let routes = Router::new()
        .route(SERIAL_NUMBER_PATH, get(serial_number))
        .route(CAPABILITIES_PATH, get(capabilities))
        .route(REGISTER_PATH, post(register))
        .route(MALWARE_HASHES_PATH, get(malware));
    with_fallbacks(routes)
        .layer(middleware::from_fn_with_state(shared.clone(), admit))
        .with_state(shared)
}

/// Why a request was refused; rendered as `{"error": "<message>"}`.
#[derive(Debug, thiserror::Error)]
enum ApiError {
    /// A multitenant EMS reached without a site.
    #[error("Certificate user does not have access to global.")]
    Global,
    /// The caller is not authorized under Fabric Devices.
    #[error("FortiGate {0} is not authorized")]
    NotAuthorized(String),
    /// A FortiGate header is missing or malformed (named lowercase, as HTTP/2 writes
    /// header names).
    #[error("missing or malformed {} header", .0.to_ascii_lowercase())]
    BadHeader(&'static str),
    /// The Fabric Devices list is full.
    #[error("the Fabric Devices list is full ({MAX_FABRIC_DEVICES} devices)")]
    DevicesFull,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self {
            ApiError::Global | ApiError::NotAuthorized(_) => StatusCode::FORBIDDEN,
            ApiError::BadHeader(_) => StatusCode::BAD_REQUEST,
            ApiError::DevicesFull => StatusCode::SERVICE_UNAVAILABLE,
        };
        refusal(status, self.to_string())
    }
}

/// The calling FortiGate, from its headers.
struct FortiGate {
    serial: String,
    hostname: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for FortiGate {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let serial = parts
            .headers
            .get(SERIAL_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
            .filter(|serial| is_serial_field(serial))
            .ok_or(ApiError::BadHeader(SERIAL_HEADER))?
            .to_owned();
        let hostname = match parts.headers.get(HOSTNAME_HEADER) {
            None => None,
            Some(value) => Some(
                value
                    .to_str()
                    .ok()
                    .map(str::trim)
                    .filter(|hostname| hostname.chars().count() <= MAX_HOSTNAME_LEN)
                    .ok_or(ApiError::BadHeader(HOSTNAME_HEADER))?
                    .to_owned(),
            ),
        };
        Ok(FortiGate { serial, hostname })
    }
}

/// Lets a request through only when its connection named a site, and records that its
/// source got an answer.
async fn admit(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    mut request: Request,
    next: Next,
) -> Response {
    let response = match caller.site {
        Some(site) => {
            request.extensions_mut().insert(Site(site));
            next.run(request).await
        }
        None => ApiError::Global.into_response(),
    };
    shared.record_request(caller.address);
    response
}

/// An answer in the `{"data": ...}` envelope.
fn data<T>(data: T) -> Json<Envelope<T>> {
    Json(Envelope { data })
}

async fn serial_number(State(shared): State<Arc<Shared>>) -> Json<Envelope<SerialNumber>> {
    data(SerialNumber {
        serial_number: shared.spec.serial.clone(),
    })
}

async fn capabilities(State(shared): State<Arc<Shared>>) -> Json<Envelope<Capabilities>> {
    data(Capabilities {
        capabilities: shared.spec.capabilities.clone(),
    })
}

async fn register(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Extension(Site(site)): Extension<Site>,
    fortigate: FortiGate,
) -> Result<Json<Envelope<Registration>>, ApiError> {
    let status = shared.register(&fortigate, &site, caller.address)?;
    Ok(data(Registration { status }))
}

async fn malware(
    State(shared): State<Arc<Shared>>,
    fortigate: FortiGate,
) -> Result<Json<Envelope<MalwareHashes>>, ApiError> {
    if shared.device_state(&fortigate.serial) != Some(DeviceState::Authorized) {
        return Err(ApiError::NotAuthorized(fortigate.serial));
    }
    Ok(data(MalwareHashes {
        hashes: malware_hashes(),
    }))
}

impl Shared {
    /// Records a registration: an unknown serial becomes a pending row; the row takes the
    /// caller's hostname, site, address and the time, and the authorizer's decision when
    /// there is one. Returns the row's state.
    fn register(&self, fortigate: &FortiGate, site: &str, address: IpAddr) -> Result<DeviceState, ApiError> {
        let decided = self.authorizer().map(|authorize| authorize(&fortigate.serial));
        let mut state = self.state();
        let rows = state.devices.len();
        let device = match state.devices.entry(fortigate.serial.clone()) {
            Entry::Occupied(row) => row.into_mut(),
            Entry::Vacant(_) if rows >= MAX_FABRIC_DEVICES => return Err(ApiError::DevicesFull),
            Entry::Vacant(row) => row.insert(FabricDevice::unseen(&fortigate.serial, DeviceState::Pending)),
        };
        if let Some(hostname) = &fortigate.hostname {
            device.hostname.clone_from(hostname);
        }
        site.clone_into(&mut device.site);
        if let Some(decided) = decided {
            device.state = decided;
        }
        device.last_address = Some(address);
        device.last_seen_unix = Some(SystemClock.unix_seconds());
        Ok(device.state)
    }

    /// The state of `serial`: the authorizer's decision when there is one, else its row's
    /// state, if it has a row.
    fn device_state(&self, serial: &str) -> Option<DeviceState> {
        if let Some(authorize) = self.authorizer() {
            return Some(authorize(serial));
        }
        self.state().devices.get(serial).map(|device| device.state)
    }
}
