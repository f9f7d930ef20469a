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
//! | `GET /api/v1/devices/<serial>` | 200, a [`DeviceRecord`] (unknown serial: not registered, no contracts) |
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
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::ems::{Authorizer, DeviceState, SimError};
use super::pki::ServerIdentity;
use super::serve::{self, tls_acceptor};
use crate::calendar::Date;
use crate::topology::{FCEM_CONTRACT, ForticloudSpec, parse_contract_date};

/// The API path that answers for one device: this prefix and the serial.
pub const DEVICES_PATH: &str = "/api/v1/devices/";
/// What [`SimError`] calls this server.
const SERVER: &str = "FortiCloud";
/// Longest serial the API looks up: twice a FortiGate serial's 16 characters, room for
/// any product's format while bounding what a request makes the server handle.
const MAX_SERIAL_LEN: usize = 32;

/// A contract as FortiCloud lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contract {
    /// The contract type, e.g. [`FCEM_CONTRACT`].
    #[serde(rename = "type")]
    pub kind: String,
    /// The contract's last day, `YYYY-MM-DD`.
    pub expires: String,
    /// Whether that day has passed (UTC) when the record was read. A date that cannot be
    /// read counts as passed: such a contract proves nothing.
    pub expired: bool,
}

/// What FortiCloud knows of one FortiGate: the API's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// The FortiGate's serial number.
    pub serial: String,
    /// Whether it is registered to the account.
    pub registered: bool,
    /// The account when it is registered, else empty.
    pub account: String,
    /// Its contracts, sorted by type; expired ones included.
    pub contracts: Vec<Contract>,
}

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
    pub fn record(&self, serial: &str) -> DeviceRecord {
        self.inner.shared.record(serial, Date::today())
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
            None => Date::today().one_year_later().to_string(),
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
        let yesterday = Date::today().day_before().to_string();
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
    fn record(&self, serial: &str, today: Date) -> DeviceRecord {
        let state = self.state();
        let registered = state.registered.contains(serial);
        let contracts = state
            .contracts
            .get(serial)
            .map(|contracts| {
                contracts
                    .iter()
                    .map(|(kind, expires)| Contract {
                        kind: kind.clone(),
                        expires: expires.clone(),
                        expired: Date::parse(expires).is_none_or(|last_day| last_day < today),
                    })
                    .collect()
            })
            .unwrap_or_default();
        DeviceRecord {
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
        let record = self.record(serial, Date::today());
        let entitled = record
            .contracts
            .iter()
            .any(|contract| contract.kind == FCEM_CONTRACT && !contract.expired);
        if record.registered && entitled {
            DeviceState::Authorized
        } else {
            DeviceState::Denied
        }
    }
}

/// The API.
fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(&format!("{DEVICES_PATH}{{serial}}"), get(device))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(shared)
}

/// Why a request was refused; rendered as `{"error": "<message>"}`.
#[derive(Debug, thiserror::Error)]
enum ApiError {
    /// The serial in the path cannot be one.
    #[error("{0:?} is not a serial number (1 to {MAX_SERIAL_LEN} letters and digits)")]
    BadSerial(String),
    /// No such API path.
    #[error("no such API: {0} {1}")]
    NotFound(Method, String),
    /// The path exists, the method does not.
    #[error("method {0} is not allowed on {1}")]
    MethodNotAllowed(Method, String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self {
            ApiError::BadSerial(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(..) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(..) => StatusCode::METHOD_NOT_ALLOWED,
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

async fn device(
    AxumState(shared): AxumState<Arc<Shared>>,
    serial: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Json<DeviceRecord>, ApiError> {
    let serial = match serial {
        Ok(Path(serial)) => serial,
        Err(_) => {
            let written = uri.path().strip_prefix(DEVICES_PATH).unwrap_or_default();
            return Err(ApiError::BadSerial(written.to_owned()));
        }
    };
    if serial.is_empty()
        || serial.len() > MAX_SERIAL_LEN
        || !serial.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err(ApiError::BadSerial(serial));
    }
    Ok(Json(shared.record(&serial, Date::today())))
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound(method, uri.path().to_owned())
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed(method, uri.path().to_owned())
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    use tokio::net::TcpStream;

    use super::*;
    use crate::connector::forticloud::{CloudContract, CloudRecord, query};
    use crate::sim::{EmsServer, Pki};
    use crate::topology::{CertProfile, ContractSpec, FORTICLOUD_HOSTNAME};

    const ACCOUNT: &str = "admin@lab.example";
    const ROOT: &str = "FGVM01TM22000001";
    const MEMBER: &str = "FGVM01TM22000002";
    const STRANGER: &str = "FGVM01TM22000099";
    const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    /// Time limit of a query to a server that answers at once: a deadline to fail by.
    const DEADLINE: Duration = Duration::from_secs(5);

    /// A PKI in a temporary directory.
    struct Lab {
        _dir: tempfile::TempDir,
        pki: Pki,
    }

    fn lab() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::open(dir.path()).unwrap();
        Lab { _dir: dir, pki }
    }

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

    /// What a FortiGate trusting what every node trusts learns over HTTPS.
    async fn ask(cloud: &Forticloud, lab: &Lab, serial: &str) -> CloudRecord {
        query(
            cloud.addr(),
            FORTICLOUD_HOSTNAME,
            serial,
            LOCALHOST,
            &lab.pki.trust_anchors(),
            DEADLINE,
        )
        .await
        .unwrap()
    }

    /// The record as the node side reads it, to compare with [`Forticloud::record`].
    fn as_cloud_record(record: DeviceRecord) -> CloudRecord {
        CloudRecord {
            serial: record.serial,
            registered: record.registered,
            account: record.account,
            contracts: record
                .contracts
                .into_iter()
                .map(|contract| CloudContract {
                    kind: contract.kind,
                    expires: contract.expires,
                    expired: contract.expired,
                })
                .collect(),
        }
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
        assert_eq!(as_cloud_record(cloud.record(ROOT)), root);

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
        let today = Date::today();
        assert_eq!(fcem.expires, today.one_year_later().to_string());
        assert_eq!(as_cloud_record(cloud.record(MEMBER)), member);

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
    async fn an_ems_cloud_server_registers_fortigates_as_forticloud_decides() {
        let lab = lab();
        let cloud = start(&lab, &spec()).await;
        let ems_spec = spec().ems_cloud();
        let listener = TcpListener::bind(ems_spec.listen).await.unwrap();
        let ip = listener.local_addr().unwrap().ip();
        let identity = lab
            .pki
            .server_identity(&ems_spec.name, &ems_spec.hostname, Some(ip), ems_spec.certificate)
            .unwrap();
        let ems = EmsServer::start(ems_spec, identity, listener).await.unwrap();
        ems.set_authorizer(cloud.authorizer());

        let register = |serial: &'static str| {
            let target = crate::connector::ProbeTarget {
                entry: "cloud".to_owned(),
                server: crate::topology::EMS_CLOUD_HOSTNAME.to_owned(),
                port: ems.addr().port(),
                source: LOCALHOST,
                timeout: DEADLINE,
                fortigate_serial: serial.to_owned(),
                fortigate_hostname: format!("FGT-{serial}"),
            };
            let trust = crate::connector::TrustStore {
                anchors: lab.pki.trust_anchors(),
                pinned: Vec::new(),
            };
            let mut resolver = crate::connector::Resolver::default();
            resolver
                .table
                .insert(crate::topology::EMS_CLOUD_HOSTNAME.to_owned(), ip);
            async move { crate::connector::probe(&target, &trust, &resolver).await }
        };
        let root = register(ROOT).await;
        assert_eq!(root.certificate, crate::connector::CertificateState::Authorized);
        assert_eq!(
            root.device,
            crate::connector::DeviceState::Authorized,
            "{}",
            root.detail
        );
        assert_eq!(
            root.ems_serial.as_deref(),
            Some(crate::topology::EMS_CLOUD_SERIAL)
        );
        let member = register(MEMBER).await;
        assert_eq!(
            member.device,
            crate::connector::DeviceState::Denied,
            "{}",
            member.detail
        );
        cloud.entitle(MEMBER, None);
        assert_eq!(
            register(MEMBER).await.device,
            crate::connector::DeviceState::Authorized
        );

        ems.shutdown().await;
        cloud.shutdown().await;
    }

    #[tokio::test]
    async fn bad_requests_get_json_errors() {
        let lab = lab();
        let cloud = start(&lab, &spec()).await;
        let mut client = RawClient::connect(&cloud, &lab).await;
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
            let (answered, body) = client.call(method, path).await;
            assert_eq!(answered, status, "{method} {path}");
            assert_eq!(body["error"], error, "{method} {path}");
        }
        cloud.shutdown().await;
    }

    #[tokio::test]
    async fn shutdown_closes_the_port_and_open_connections() {
        let lab = lab();
        let cloud = start(&lab, &spec()).await;
        let mut open = RawClient::connect(&cloud, &lab).await;
        assert_eq!(open.call("GET", &format!("{DEVICES_PATH}{ROOT}")).await.0, 200);
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

    #[test]
    fn dates_convert_both_ways_across_leap_days_and_eras() {
        for (days, text) in [
            (0, "1970-01-01"),
            (-1, "1969-12-31"),
            (59, "1970-03-01"),
            (11_016, "2000-02-29"),
            (19_782, "2024-02-29"),
            (20_819, "2027-01-01"),
        ] {
            let date = Date::from_days(days);
            assert_eq!(date.to_string(), text);
            assert_eq!(date.days(), days, "{text}");
            assert_eq!(Date::parse(text), Some(date));
        }
        let leap = Date::parse("2028-02-29").unwrap();
        assert_eq!(leap.one_year_later().to_string(), "2029-02-28");
        assert_eq!(
            Date::parse("2027-03-01").unwrap().day_before().to_string(),
            "2027-02-28"
        );
        assert_eq!(Date::parse("2027-02-29"), None);
        assert!(Date::parse("2027-12-31").unwrap() < Date::parse("2028-01-01").unwrap());
    }

    /// A client speaking raw HTTP/1.1 over verified TLS, for answers the node-side client
    /// does not ask for.
    struct RawClient {
        tls: tokio_rustls::client::TlsStream<TcpStream>,
        received: Vec<u8>,
    }

    impl RawClient {
        async fn connect(cloud: &Forticloud, lab: &Lab) -> RawClient {
            let mut roots = rustls::RootCertStore::empty();
            for anchor in lab.pki.trust_anchors() {
                roots.add(anchor).unwrap();
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
            let stream = TcpStream::connect(cloud.addr()).await.unwrap();
            let name = rustls::pki_types::ServerName::try_from(FORTICLOUD_HOSTNAME).unwrap();
            let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(name, stream)
                .await
                .unwrap();
            RawClient {
                tls,
                received: Vec::new(),
            }
        }

        /// Sends one request and reads the status and JSON body of the answer.
        async fn call(&mut self, method: &str, path: &str) -> (u16, serde_json::Value) {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let request = format!(
                "{method} {path} HTTP/1.1\r\nHost: {FORTICLOUD_HOSTNAME}\r\nContent-Length: 0\r\n\r\n"
            );
            self.tls.write_all(request.as_bytes()).await.unwrap();
            loop {
                if let Some(head_end) = self.received.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8(self.received[..head_end].to_vec()).unwrap();
                    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                    let length: usize = head
                        .lines()
                        .find_map(|line| {
                            let (name, value) = line.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().parse().unwrap())
                        })
                        .expect("every answer has a Content-Length");
                    let end = head_end + 4 + length;
                    if self.received.len() >= end {
                        let body = serde_json::from_slice(&self.received[head_end + 4..end]).unwrap();
                        self.received.drain(..end);
                        return (status, body);
                    }
                }
                let mut buffer = [0u8; 4096];
                let n = self.tls.read(&mut buffer).await.unwrap();
                assert!(n > 0, "FortiCloud closed the connection mid-answer");
                self.received.extend_from_slice(&buffer[..n]);
            }
        }

        /// Waits until the server closes the connection (end of stream or an error).
        async fn closed_by_peer(&mut self) -> bool {
            use tokio::io::AsyncReadExt;
            let mut buffer = [0u8; 64];
            matches!(
                tokio::time::timeout(DEADLINE, self.tls.read(&mut buffer)).await,
                Ok(Ok(0) | Err(_))
            )
        }
    }
}
