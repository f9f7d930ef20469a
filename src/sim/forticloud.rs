//! The simulated FortiCloud: the account a fabric's FortiGates are registered to, the
//! contracts it holds for them, and the HTTPS API a FortiGate asks about itself.
//!
//! # What is simulated
//!
//! One account ([`ForticloudSpec::account`]), a set of registered serials and, per serial,
//! contracts by type. Only the FortiClient EMS Cloud entitlement ([`FCEM_CONTRACT`])
//! matters to the fabric: EMS Cloud serves a FortiGate when FortiCloud has it registered
//! and holds an FCEM contract for it that has not expired ([`Forticloud::ems_cloud_state`],
//! which the EMS Cloud server uses as its authorizer, see
//! [`EmsServer::set_authorizer`](super::EmsServer::set_authorizer)). The topology's
//! `[forticloud]` table sets the first state; [`Forticloud::register`],
//! [`Forticloud::unregister`], [`Forticloud::entitle`] and [`Forticloud::revoke`] (and
//! `fabricsim cloud ...`) change it, as an administrator would on the FortiCloud portal.
//!
//! A contract ends at the end of its `expires` day, UTC: it reads as expired from the day
//! after. Dates are plain `YYYY-MM-DD` strings, compared with today's date whenever a
//! record is read, so a lab left running sees a contract expire at midnight.
//!
//! # API
//!
//! | request | answer |
//! |---|---|
//! | `GET /api/v1/devices/<serial>` | 200, a [`CloudRecord`] (unknown serial: not registered, no contracts) |
//! | a serial that is not 1 to 32 letters and digits | 400 `{"error": "..."}` |
//! | any other path or method | 404 or 405 `{"error": "..."}` |
//!
//! # How it runs
//!
//! Like an EMS server ([`EmsServer`](super::EmsServer)): real TLS on a real socket
//! (tokio-rustls, then hyper serving an axum router over HTTP/1.1), with the certificate
//! [`Pki::server_identity`](super::Pki::server_identity) issues for
//! [`CertProfile::Public`](crate::topology::CertProfile::Public). One accept loop task owns
//! the listener and a `JoinSet` of connection tasks; [`Forticloud::shutdown`] cancels them
//! all and waits for every one. The account's state lives in a `std::sync::Mutex`: nothing
//! awaits while it is held, and every critical section is a few map operations.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Json;
use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State as AxumState};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::ems::{Authorizer, DeviceState, SimError};
use super::pki::ServerIdentity;
use super::serve::{self, refusal, tls_acceptor, with_fallbacks};
use crate::calendar::{Clock, Date, SystemClock};
use crate::domain::{FCEM_CONTRACT, parse_contract_date};
use crate::topology::ForticloudSpec;
use crate::wire::forticloud::{CloudContract, CloudRecord, DEVICES_PATH};
use crate::wire::{MAX_SERIAL_FIELD_LEN, is_serial_field};

/// What [`SimError`] calls this server.
const SERVER: &str = "FortiCloud";

/// A running (or shut down) simulated FortiCloud. Clones are handles to the same one.
#[derive(Clone)]
pub struct Forticloud {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    addr: SocketAddr,
    token: CancellationToken,
    /// The accept loop, taken by the shutdown that awaits it.
    accept_loop: Mutex<Option<JoinHandle<()>>>,
}

/// What the API handlers and the handles share.
struct Shared {
    account: String,
    state: Mutex<Account>,
}

/// Registrations and contracts; see the module docs for why a std mutex.
#[derive(Default)]
struct Account {
    registered: BTreeSet<String>,
    /// Per serial, contract type to last day.
    contracts: BTreeMap<String, BTreeMap<String, String>>,
}

impl Forticloud {
    /// Starts serving the account `spec` describes on `listener`, presenting `identity`.
    pub async fn start(
        spec: &ForticloudSpec,
        identity: ServerIdentity,
        listener: TcpListener,
    ) -> Result<Forticloud, SimError> {
        let addr = listener.local_addr().map_err(|source| SimError::LocalAddr {
            server: SERVER,
            name: spec.account.clone(),
            source,
        })?;
        let acceptor = tls_acceptor(SERVER, &spec.account, identity)?;
        let mut account = Account {
            registered: spec.registered.iter().cloned().collect(),
            contracts: BTreeMap::new(),
        };
        for contract in &spec.contracts {
            account
                .contracts
                .entry(contract.serial.clone())
                .or_default()
                .insert(contract.kind.clone(), contract.expires.clone());
        }
        let shared = Arc::new(Shared {
            account: spec.account.clone(),
            state: Mutex::new(account),
        });
        let token = CancellationToken::new();
        let router = router(shared.clone());
        let cut = token.clone();
        let accept_loop = tokio::spawn(serve::accept_loop(
            SERVER,
            listener,
            token.clone(),
            move |stream, peer| {
                let (acceptor, router, cut) = (acceptor.clone(), router.clone(), cut.clone());
                async move { serve::serve_https(SERVER, &acceptor, stream, peer.ip(), &cut, |_| router).await }
            },
        ));
        tracing::info!(account = %spec.account, %addr, "FortiCloud listening");
        Ok(Forticloud {
            inner: Arc::new(Inner {
                shared,
                addr,
                token,
                accept_loop: Mutex::new(Some(accept_loop)),
            }),
        })
    }

    /// The address the API listens on.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The account's email address.
    pub fn account(&self) -> &str {
        &self.inner.shared.account
    }

    /// What the API answers for `serial` now: an unknown serial is not registered and has
    /// no contracts.
    pub fn record(&self, serial: &str) -> CloudRecord {
        self.inner.shared.record(serial, SystemClock.today())
    }

    /// Registers `serial` to the account.
    pub fn register(&self, serial: &str) {
        self.inner.shared.state().registered.insert(serial.to_owned());
    }

    /// Removes `serial` from the account; its contracts stay with the device.
    pub fn unregister(&self, serial: &str) {
        self.inner.shared.state().registered.remove(serial);
    }

    /// Gives `serial` the EMS Cloud entitlement (an FCEM contract) until `expires`
    /// (`YYYY-MM-DD`, the last day), or for one year from today; replaces an FCEM contract
    /// it had. A date that cannot be read is kept as written and reads as expired.
    pub fn entitle(&self, serial: &str, expires: Option<&str>) {
        let expires = match expires {
            Some(date) => {
                if let Err(fault) = parse_contract_date(date) {
                    tracing::warn!(
                        serial,
                        date,
                        "the FCEM contract's end {fault}; it reads as expired"
                    );
                }
                date.to_owned()
            }
            None => SystemClock.today().one_year_later().to_string(),
        };
        self.inner
            .shared
            .state()
            .contracts
            .entry(serial.to_owned())
            .or_default()
            .insert(FCEM_CONTRACT.to_owned(), expires);
    }

    /// Ends the EMS Cloud entitlement of `serial`: its FCEM contract's last day becomes
    /// yesterday, so it reads as expired. A serial without one is left as it is.
    pub fn revoke(&self, serial: &str) {
        let yesterday = SystemClock.today().day_before().to_string();
        if let Some(expires) = self
            .inner
            .shared
            .state()
            .contracts
            .get_mut(serial)
            .and_then(|contracts| contracts.get_mut(FCEM_CONTRACT))
        {
            *expires = yesterday;
        }
    }

    /// What EMS Cloud makes of `serial`: authorized while it is registered and holds an
    /// FCEM contract that has not expired, denied otherwise.
    pub fn ems_cloud_state(&self, serial: &str) -> DeviceState {
        self.inner.shared.ems_cloud_state(serial)
    }

    /// [`ems_cloud_state`](Self::ems_cloud_state) as an authorizer for the EMS Cloud
    /// server. It holds the account's state, not the server, so it neither keeps the API
    /// running nor stops answering when the API is shut down.
    pub fn authorizer(&self) -> Authorizer {
        let shared = self.inner.shared.clone();
        Arc::new(move |serial: &str| shared.ems_cloud_state(serial))
    }

    /// Closes the listener, drops every connection and waits for every task. The account's
    /// state stays readable through other handles.
    pub async fn shutdown(self) {
        self.inner.token.cancel();
        let accept_loop = self
            .inner
            .accept_loop
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(accept_loop) = accept_loop {
            if let Err(error) = accept_loop.await {
                tracing::error!(%error, "FortiCloud accept loop failed");
            }
            tracing::info!(account = %self.account(), "FortiCloud stopped");
        }
    }
}

impl fmt::Debug for Forticloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Forticloud")
            .field("account", &self.account())
            .field("addr", &self.addr())
            .finish_non_exhaustive()
    }
}

impl Drop for Inner {
    /// The last handle gone without `shutdown`: cancel, so the tasks exit on their own.
    fn drop(&mut self) {
        self.token.cancel();
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, Account> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The record of `serial` as of `today`.
    fn record(&self, serial: &str, today: Date) -> CloudRecord {
        let state = self.state();
        let registered = state.registered.contains(serial);
        let contracts = state
            .contracts
            .get(serial)
            .map(|contracts| {
                contracts
                    .iter()
                    .map(|(kind, expires)| CloudContract {
                        kind: kind.clone(),
                        expires: expires.clone(),
                        expired: Date::parse(expires).is_none_or(|last_day| last_day < today),
                    })
                    .collect()
            })
            .unwrap_or_default();
        CloudRecord {
            serial: serial.to_owned(),
            registered,
            account: if registered {
                self.account.clone()
            } else {
                String::new()
            },
            contracts,
        }
    }

    fn ems_cloud_state(&self, serial: &str) -> DeviceState {
        let record = self.record(serial, SystemClock.today());
        let entitled = record.ems_cloud().is_some_and(|contract| !contract.expired);
        if record.registered && entitled {
            DeviceState::Authorized
        } else {
            DeviceState::Denied
        }
    }
}

/// The API.
fn router(shared: Arc<Shared>) -> Router {
    with_fallbacks(Router::new().route(&format!("{DEVICES_PATH}{{serial}}"), get(device))).with_state(shared)
}

/// Why a request was refused; rendered as `{"error": "<message>"}`.
#[derive(Debug, thiserror::Error)]
enum ApiError {
    /// The serial in the path cannot be one.
    #[error("{0:?} is not a serial number (1 to {MAX_SERIAL_FIELD_LEN} letters and digits)")]
    BadSerial(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self {
            ApiError::BadSerial(_) => StatusCode::BAD_REQUEST,
        };
        refusal(status, self.to_string())
    }
}

async fn device(
    AxumState(shared): AxumState<Arc<Shared>>,
    serial: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Json<CloudRecord>, ApiError> {
    let serial = match serial {
        Ok(Path(serial)) => serial,
        Err(_) => {
            let written = uri.path().strip_prefix(DEVICES_PATH).unwrap_or_default();
            return Err(ApiError::BadSerial(written.to_owned()));
        }
    };
    if !is_serial_field(&serial) {
        return Err(ApiError::BadSerial(serial));
    }
    Ok(Json(shared.record(&serial, SystemClock.today())))
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::net::{IpAddr, Ipv4Addr};

    use tokio::net::TcpStream;

    use super::*;
    use crate::domain::FORTICLOUD_HOSTNAME;
    use crate::sim::test_client::{Client, Lab, lab};
    use crate::topology::{CertProfile, ContractSpec};
    use crate::wire::forticloud::device_path;

    const ACCOUNT: &str = "admin@lab.example";
    const ROOT: &str = "FGVM01TM22000001";
    const MEMBER: &str = "FGVM01TM22000002";
    const STRANGER: &str = "FGVM01TM22000099";
    const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    /// The root registered with an FCEM contract, the member registered without one.
    fn spec() -> ForticloudSpec {
        ForticloudSpec {
            account: ACCOUNT.to_owned(),
            listen: SocketAddr::new(LOCALHOST, 0),
            ems_listen: SocketAddr::new(LOCALHOST, 0),
            registered: vec![ROOT.to_owned(), MEMBER.to_owned()],
            contracts: vec![ContractSpec {
                serial: ROOT.to_owned(),
                kind: FCEM_CONTRACT.to_owned(),
                expires: "2999-12-31".to_owned(),
            }],
        }
    }

    async fn start(lab: &Lab, spec: &ForticloudSpec) -> Forticloud {
        let listener = TcpListener::bind(spec.listen).await.unwrap();
        let ip = listener.local_addr().unwrap().ip();
        let identity = lab
            .pki
            .server_identity("forticloud", FORTICLOUD_HOSTNAME, Some(ip), CertProfile::Public)
            .unwrap();
        Forticloud::start(spec, identity, listener).await.unwrap()
    }

    /// What a client trusting what every node trusts reads over HTTPS.
    async fn ask(cloud: &Forticloud, lab: &Lab, serial: &str) -> CloudRecord {
        let answer = connect(cloud, lab)
            .await
            .call("GET", &device_path(serial), None)
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        serde_json::from_value(answer.body).unwrap()
    }

    async fn connect(cloud: &Forticloud, lab: &Lab) -> Client {
        Client::connect(cloud.addr(), FORTICLOUD_HOSTNAME, &lab.pki.trust_anchors(), None)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_api_answers_what_the_account_holds_from_the_topology() {
        let lab = lab();
        let cloud = start(&lab, &spec()).await;
        assert_ne!(cloud.addr().port(), 0);
        assert_eq!(cloud.account(), ACCOUNT);

        let root = ask(&cloud, &lab, ROOT).await;
        assert!(root.registered);
        assert_eq!(root.account, ACCOUNT);
        assert_eq!(
            root.ems_cloud(),
            Some(&CloudContract {
                kind: "FCEM".to_owned(),
                expires: "2999-12-31".to_owned(),
                expired: false,
            })
        );
        assert_eq!(cloud.record(ROOT), root);

        let member = ask(&cloud, &lab, MEMBER).await;
        assert!(member.registered && member.contracts.is_empty());

        let stranger = ask(&cloud, &lab, STRANGER).await;
        assert_eq!(
            stranger,
            CloudRecord {
                serial: STRANGER.to_owned(),
                registered: false,
                account: String::new(),
                contracts: Vec::new(),
            }
        );
        cloud.shutdown().await;
    }

    #[tokio::test]
    async fn registration_and_entitlement_changes_show_in_records_and_over_https() {
        let lab = lab();
        let cloud = start(&lab, &spec()).await;

        cloud.unregister(ROOT);
        let root = ask(&cloud, &lab, ROOT).await;
        assert!(!root.registered);
        assert_eq!(root.account, "");
        assert!(root.ems_cloud().is_some(), "contracts stay with the device");
        cloud.register(ROOT);
        assert!(ask(&cloud, &lab, ROOT).await.registered);

        cloud.entitle(MEMBER, None);
        let member = ask(&cloud, &lab, MEMBER).await;
        let fcem = member.ems_cloud().expect("entitled").clone();
        assert!(!fcem.expired);
        let today = SystemClock.today();
        assert_eq!(fcem.expires, today.one_year_later().to_string());
        assert_eq!(cloud.record(MEMBER), member);

        cloud.revoke(MEMBER);
        let member = ask(&cloud, &lab, MEMBER).await;
        let fcem = member.ems_cloud().expect("a revoked contract is still listed");
        assert!(fcem.expired);
        assert_eq!(fcem.expires, today.day_before().to_string());
        assert_eq!(member.contracts.len(), 1);

        cloud.entitle(MEMBER, Some("2030-06-30"));
        let fcem = cloud.record(MEMBER).contracts.remove(0);
        assert_eq!((fcem.expires.as_str(), fcem.expired), ("2030-06-30", false));
        cloud.entitle(MEMBER, Some("2020-06-30"));
        assert!(ask(&cloud, &lab, MEMBER).await.ems_cloud().unwrap().expired);
        cloud.entitle(MEMBER, Some("someday"));
        let fcem = cloud.record(MEMBER).contracts.remove(0);
        assert_eq!((fcem.expires.as_str(), fcem.expired), ("someday", true));

        cloud.revoke(STRANGER);
        assert!(cloud.record(STRANGER).contracts.is_empty(), "nothing to end");
        cloud.shutdown().await;
    }

    #[tokio::test]
    async fn ems_cloud_serves_registered_fortigates_with_a_live_fcem_contract() {
        let lab = lab();
        let cloud = start(&lab, &spec()).await;
        assert_eq!(cloud.ems_cloud_state(ROOT), DeviceState::Authorized);
        assert_eq!(cloud.ems_cloud_state(MEMBER), DeviceState::Denied, "no contract");
        assert_eq!(cloud.ems_cloud_state(STRANGER), DeviceState::Denied);

        cloud.entitle(STRANGER, None);
        assert_eq!(
            cloud.ems_cloud_state(STRANGER),
            DeviceState::Denied,
            "not registered"
        );
        cloud.register(STRANGER);
        assert_eq!(cloud.ems_cloud_state(STRANGER), DeviceState::Authorized);
        cloud.revoke(STRANGER);
        assert_eq!(cloud.ems_cloud_state(STRANGER), DeviceState::Denied, "expired");
        cloud.unregister(ROOT);
        assert_eq!(cloud.ems_cloud_state(ROOT), DeviceState::Denied);

        let authorizer = cloud.authorizer();
        cloud.register(ROOT);
        assert_eq!(authorizer(ROOT), DeviceState::Authorized);
        cloud.clone().shutdown().await;
        assert_eq!(
            authorizer(ROOT),
            DeviceState::Authorized,
            "the account outlives the API"
        );
    }

    #[tokio::test]
    async fn bad_requests_get_json_errors() {
        let lab = lab();
        let cloud = start(&lab, &spec()).await;
        let mut client = connect(&cloud, &lab).await;
        for (method, path, status, error) in [
            (
                "GET",
                "/api/v1/devices/FG%20VM",
                400,
                "\"FG VM\" is not a serial number (1 to 32 letters and digits)",
            ),
            ("GET", "/api/v1/nothing", 404, "no such API: GET /api/v1/nothing"),
            (
                "POST",
                "/api/v1/devices/FGVM01TM22000001",
                405,
                "method POST is not allowed on /api/v1/devices/FGVM01TM22000001",
            ),
        ] {
            let answer = client.call(method, path, None).await;
            assert_eq!(answer.status, status, "{method} {path}");
            assert_eq!(answer.body["error"], error, "{method} {path}");
        }
        cloud.shutdown().await;
    }

    #[tokio::test]
    async fn shutdown_closes_the_port_and_open_connections() {
        let lab = lab();
        let cloud = start(&lab, &spec()).await;
        let mut open = connect(&cloud, &lab).await;
        assert_eq!(open.call("GET", &device_path(ROOT), None).await.status, 200);
        let addr = cloud.addr();
        cloud.clone().shutdown().await;
        assert!(
            open.closed_by_peer().await,
            "an open connection survived shutdown"
        );
        let error = TcpStream::connect(addr).await.err().unwrap();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
        assert!(cloud.record(ROOT).registered, "the account is still readable");
        cloud.shutdown().await;
    }
}
