//! A simulated FortiClient EMS server: TLS on a real socket, the HTTPS API a FortiGate
//! calls, its *Administration > Fabric Devices* list, and the faults a test injects.
//!
//! # What is simulated
//!
//! An [`EmsServer`] listens on the address it was given and presents the certificate chain
//! [`Pki::server_identity`](super::Pki::server_identity) issued for its profile. Over
//! HTTP/1.1 it answers the API in `api` (serial number, capabilities, fabric device
//! registration, malware hash threat feed). A FortiGate that registers is listed as
//! *pending* until [`EmsServer::authorize`] (or `fabricsim ems NAME authorize SERIAL`)
//! approves it, as an administrator does on a real EMS; serials in the topology's
//! `authorized` list start authorized. A multitenant EMS (one with `sites`) serves the
//! site named by the first label of the TLS SNI (`sitea.ems.example.com`); a connection to
//! its bare hostname or IP address gets FortiOS's "Certificate user does not have access
//! to global." on every call.
//!
//! EMS Cloud decides differently: it serves the FortiGates registered to the FortiCloud
//! account with an EMS Cloud entitlement. [`EmsServer::set_authorizer`] hands that decision
//! to a function (the simulated FortiCloud's), which then answers for every registration
//! and threat feed request instead of the Fabric Devices list.
//!
//! # Faults
//!
//! | call | what a FortiGate sees |
//! |---|---|
//! | [`EmsServer::stop`] | its connections dropped, then "connection refused" |
//! | [`EmsServer::start_again`] | the EMS back on the same address, devices kept |
//! | [`EmsServer::set_respond`]`(false)` | TCP accepted, no byte ever sent: the TLS handshake times out |
//! | [`EmsServer::block_source`]`(ip)` | connections from `ip` closed at once: the handshake fails |
//!
//! # How it runs
//!
//! Each running period (from start or `start_again` to `stop`) has a cancellation token
//! and one accept loop task that owns the listener and a `JoinSet` of connection tasks.
//! Every connection gets a child token of the period's token, kept in a table with its
//! peer address, so that stopping ends them all, blocking a source ends that source's,
//! and switching `respond` ends those opened under the other mode (a FortiGate reusing a
//! kept-alive connection then reconnects and meets the new behaviour). `stop` cancels the
//! period and awaits the accept loop, which drops the listener and joins every connection
//! task before it returns, so when `stop` returns the port refuses connections.
//!
//! Devices and flags live in one `std::sync::Mutex`: nothing awaits while it is held, and
//! every critical section is a few map operations. Starting and stopping are serialized by
//! a `tokio::sync::Mutex`, because stopping awaits the accept loop.

mod api;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::{Extension, Router};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::pki::ServerIdentity;
use super::serve::{self, tls_acceptor};
use crate::topology::EmsSpec;

pub use api::{
    CAPABILITIES_PATH, DEFAULT_SITE, HOSTNAME_HEADER, MALWARE_HASHES_PATH, MALWARE_SEED_PREFIX,
    REGISTER_PATH, SERIAL_HEADER, SERIAL_NUMBER_PATH, malware_hashes,
};

/// How often `start_again` tries to bind its old address while the system still holds it
/// (a socket that has not finished closing): 50 tries 20 ms apart, one second in all.
const REBIND_ATTEMPTS: u32 = 50;
/// Pause between two attempts to bind the old address again.
const REBIND_PAUSE: Duration = Duration::from_millis(20);
/// Bytes read at a time from a connection the EMS does not answer.
const DISCARD_BUFFER_LEN: usize = 4096;
/// Listen backlog of the re-bound socket: more than enough for a simulated fabric's probes.
const LISTEN_BACKLOG: u32 = 1024;

/// Decides a FortiGate's state by its serial in place of the Fabric Devices list: how EMS
/// Cloud follows FortiCloud. Called without any lock of the EMS held.
pub type Authorizer = Arc<dyn Fn(&str) -> DeviceState + Send + Sync>;

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

/// One row of the EMS's *Fabric Devices* list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FabricDevice {
    /// The FortiGate's serial number.
    pub serial: String,
    /// The hostname it sent when it last registered; empty until it registers.
    pub hostname: String,
    /// The site it registered under (`Default` on a single-tenant EMS); empty until it
    /// registers.
    pub site: String,
    /// The administrator's decision.
    pub state: DeviceState,
    /// The source address of its last registration.
    pub last_address: Option<IpAddr>,
    /// When it last registered, in seconds since the Unix epoch.
    pub last_seen_unix: Option<u64>,
}

impl FabricDevice {
    /// A row for a FortiGate that has not registered yet.
    fn unseen(serial: &str, state: DeviceState) -> Self {
        FabricDevice {
            serial: serial.to_owned(),
            hostname: String::new(),
            site: String::new(),
            state,
            last_address: None,
            last_seen_unix: None,
        }
    }
}

/// What [`SimError`] calls an EMS server.
pub(super) const EMS_SERVER: &str = "EMS";

/// A simulated server (an EMS, or FortiCloud) could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The listener given to the server has no local address.
    #[error("{server} {name}: the listener has no local address: {source}")]
    LocalAddr {
        /// What kind of server: "EMS" or "FortiCloud".
        server: &'static str,
        /// The EMS's name, or FortiCloud's account.
        name: String,
        /// What the system said.
        source: io::Error,
    },
    /// rustls rejected the certificate chain or key.
    #[error(
        "{server} {name}: the TLS server cannot use its certificate: {source}; delete its \
         certificate files in the PKI directory so they are issued again"
    )]
    Tls {
        /// What kind of server: "EMS" or "FortiCloud".
        server: &'static str,
        /// The EMS's name, or FortiCloud's account.
        name: String,
        /// rustls's reason.
        source: rustls::Error,
    },
    /// The old address could not be bound again.
    #[error("{server} {name}: cannot listen on {addr} again: {source}; is another program using the port?")]
    Bind {
        /// What kind of server: "EMS" or "FortiCloud".
        server: &'static str,
        /// The EMS's name, or FortiCloud's account.
        name: String,
        /// The address it listened on.
        addr: SocketAddr,
        /// What the system said on the last attempt.
        source: io::Error,
    },
}

/// A running (or stopped) simulated EMS. Clones are handles to the same server.
#[derive(Clone)]
pub struct EmsServer {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: Arc<Endpoint>,
    addr: SocketAddr,
    /// The current running period, `None` while stopped.
    period: tokio::sync::Mutex<Option<Period>>,
}

/// What every accept loop and connection task of one server shares.
struct Endpoint {
    shared: Arc<Shared>,
    acceptor: TlsAcceptor,
    router: Router,
}

/// What the connection tasks and the API handlers share.
struct Shared {
    /// The spec, with `listen` set to the address actually bound.
    spec: EmsSpec,
    state: Mutex<State>,
}

/// Devices and flags; see the module docs for why a std mutex.
struct State {
    devices: BTreeMap<String, FabricDevice>,
    /// Decides device states in place of `devices` when set.
    authorizer: Option<Authorizer>,
    respond: bool,
    running: bool,
    blocked: HashSet<IpAddr>,
    requesters: Vec<IpAddr>,
    connections: HashMap<u64, OpenConnection>,
    next_connection: u64,
}

/// A connection in progress, as the fault switches see it.
struct OpenConnection {
    peer: IpAddr,
    /// Opened while the EMS answered (`respond = true`).
    answering: bool,
    /// Cancelled to drop the connection.
    cut: CancellationToken,
}

/// One running period: from start (or `start_again`) to `stop`.
struct Period {
    token: CancellationToken,
    accept_loop: JoinHandle<()>,
}

impl EmsServer {
    /// Starts serving `spec` on `listener` with the certificate chain and key `identity`.
    pub async fn start(
        spec: EmsSpec,
        identity: ServerIdentity,
        listener: TcpListener,
    ) -> Result<EmsServer, SimError> {
        let addr = listener.local_addr().map_err(|source| SimError::LocalAddr {
            server: EMS_SERVER,
            name: spec.name.clone(),
            source,
        })?;
        let acceptor = tls_acceptor(EMS_SERVER, &spec.name, identity)?;
        let devices = spec
            .authorized
            .iter()
            .map(|serial| {
                let device = FabricDevice::unseen(serial, DeviceState::Authorized);
                (serial.clone(), device)
            })
            .collect();
        let mut spec = spec;
        spec.listen = addr;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                devices,
                authorizer: None,
                respond: spec.respond,
                running: false,
                blocked: HashSet::new(),
                requesters: Vec::new(),
                connections: HashMap::new(),
                next_connection: 0,
            }),
            spec,
        });
        let endpoint = Arc::new(Endpoint {
            router: api::router(shared.clone()),
            shared,
            acceptor,
        });
        let period = Period::begin(&endpoint, listener);
        tracing::info!(ems = %endpoint.shared.spec.name, %addr, "EMS listening");
        Ok(EmsServer {
            inner: Arc::new(Inner {
                endpoint,
                addr,
                period: tokio::sync::Mutex::new(Some(period)),
            }),
        })
    }

    /// The EMS's name in the topology.
    pub fn name(&self) -> &str {
        &self.spec().name
    }

    /// The address it listens on (also while stopped: `start_again` binds it again).
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// Its topology entry, with `listen` set to the address actually bound.
    pub fn spec(&self) -> &EmsSpec {
        &self.inner.endpoint.shared.spec
    }

    /// The *Fabric Devices* list, sorted by serial; pre-authorized serials are listed even
    /// before they register.
    pub fn devices(&self) -> Vec<FabricDevice> {
        self.shared().state().devices.values().cloned().collect()
    }

    /// Authorizes a FortiGate, creating its row if it has not registered yet.
    pub fn authorize(&self, serial: &str) {
        self.shared().decide(serial, DeviceState::Authorized);
    }

    /// Denies a FortiGate, creating its row if it has not registered yet.
    pub fn deny(&self, serial: &str) {
        self.shared().decide(serial, DeviceState::Denied);
    }

    /// Lets `authorizer` decide every FortiGate's state from now on, as EMS Cloud lets
    /// FortiCloud decide: a registration answers what it returns (and its row records
    /// that answer), and the threat feed serves whom it authorizes. The Fabric Devices
    /// list still records who registered, from where and when. Replaces an earlier one.
    pub fn set_authorizer(&self, authorizer: Arc<dyn Fn(&str) -> DeviceState + Send + Sync>) {
        self.shared().state().authorizer = Some(authorizer);
    }

    /// Closes the listener and drops every open connection; returns when the port refuses
    /// connections. Stopping a stopped EMS does nothing.
    pub async fn stop(&self) {
        let mut period = self.inner.period.lock().await;
        if let Some(running) = period.take() {
            running.end().await;
            self.shared().state().running = false;
            tracing::info!(ems = %self.name(), "EMS stopped");
        }
    }

    /// Listens on the same address again after [`stop`](Self::stop), keeping the device
    /// list and the fault switches. Starting a running EMS does nothing.
    pub async fn start_again(&self) -> Result<(), SimError> {
        let mut period = self.inner.period.lock().await;
        if period.is_some() {
            return Ok(());
        }
        let listener = self.rebind().await?;
        *period = Some(Period::begin(&self.inner.endpoint, listener));
        tracing::info!(ems = %self.name(), addr = %self.inner.addr, "EMS started again");
        Ok(())
    }

    /// Whether the EMS is listening.
    pub fn is_running(&self) -> bool {
        self.shared().state().running
    }

    /// `false` makes the EMS accept TCP connections and never send a byte; `true` makes it
    /// answer again. Connections opened under the other setting are dropped.
    pub fn set_respond(&self, respond: bool) {
        let mut state = self.shared().state();
        state.respond = respond;
        for connection in state.connections.values() {
            if connection.answering != respond {
                connection.cut.cancel();
            }
        }
    }

    /// Cuts a FortiGate off by its source address: its open connections are dropped and
    /// new ones are closed as soon as they are accepted.
    pub fn block_source(&self, ip: IpAddr) {
        let mut state = self.shared().state();
        state.blocked.insert(ip);
        for connection in state.connections.values() {
            if connection.peer == ip {
                connection.cut.cancel();
            }
        }
    }

    /// Lets connections from `ip` in again.
    pub fn unblock_source(&self, ip: IpAddr) {
        self.shared().state().blocked.remove(&ip);
    }

    /// The distinct source addresses that got an answer to an API request, in the order
    /// they were first seen.
    pub fn requests_from(&self) -> Vec<IpAddr> {
        self.shared().state().requesters.clone()
    }

    /// Stops the EMS and waits for every task it spawned.
    pub async fn shutdown(self) {
        self.stop().await;
    }

    fn shared(&self) -> &Shared {
        &self.inner.endpoint.shared
    }

    /// Binds the old address, retrying while the system still holds it.
    async fn rebind(&self) -> Result<TcpListener, SimError> {
        let addr = self.inner.addr;
        let mut attempt = 1;
        loop {
            match bind(addr) {
                Ok(listener) => return Ok(listener),
                Err(error) if error.kind() == io::ErrorKind::AddrInUse && attempt < REBIND_ATTEMPTS => {
                    attempt += 1;
                    tokio::time::sleep(REBIND_PAUSE).await;
                }
                Err(source) => {
                    return Err(SimError::Bind {
                        server: EMS_SERVER,
                        name: self.name().to_owned(),
                        addr,
                        source,
                    });
                }
            }
        }
    }
}

impl fmt::Debug for EmsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmsServer")
            .field("name", &self.name())
            .field("addr", &self.addr())
            .field("running", &self.is_running())
            .finish_non_exhaustive()
    }
}

impl Drop for Inner {
    /// The last handle gone without `stop`: end the period so its tasks exit on their own.
    fn drop(&mut self) {
        if let Some(period) = self.period.get_mut().take() {
            period.token.cancel();
        }
    }
}

/// A listening socket on `addr` that may take over an address in TIME_WAIT.
fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

impl Period {
    /// Starts the accept loop of a new running period.
    fn begin(endpoint: &Arc<Endpoint>, listener: TcpListener) -> Period {
        endpoint.shared.state().running = true;
        let token = CancellationToken::new();
        let (serving, period) = (endpoint.clone(), token.clone());
        let accept_loop = tokio::spawn(serve::accept_loop(
            "EMS",
            listener,
            token.clone(),
            move |stream, peer| serve_connection(serving.clone(), stream, peer, period.clone()),
        ));
        Period { token, accept_loop }
    }

    /// Ends the period: the listener is closed and every connection task joined when this
    /// returns.
    async fn end(self) {
        self.token.cancel();
        if let Err(error) = self.accept_loop.await {
            tracing::error!(%error, "EMS accept loop failed");
        }
    }
}

/// One accepted connection: closed at once from a blocked source, held silently while the
/// EMS does not respond, otherwise TLS and HTTP/1.1 until the client leaves or the
/// connection is cut.
async fn serve_connection(
    endpoint: Arc<Endpoint>,
    stream: TcpStream,
    peer: SocketAddr,
    period: CancellationToken,
) {
    let Some(guard) = endpoint.shared.admit(peer.ip(), &period) else {
        return;
    };
    if guard.answering {
        answer(&endpoint, stream, peer.ip(), &guard.cut).await;
    } else {
        hold(stream, &guard.cut).await;
    }
}

/// Reads and discards until the client closes or the connection is cut; never writes.
async fn hold(mut stream: TcpStream, cut: &CancellationToken) {
    let mut buffer = [0u8; DISCARD_BUFFER_LEN];
    loop {
        tokio::select! {
            () = cut.cancelled() => return,
            read = stream.read(&mut buffer) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
        }
    }
}

/// Completes the TLS handshake, resolves the site from the SNI and serves the API.
async fn answer(endpoint: &Endpoint, stream: TcpStream, peer: IpAddr, cut: &CancellationToken) {
    serve::serve_https(EMS_SERVER, &endpoint.acceptor, stream, peer, cut, |sni| {
        let caller = api::Caller {
            address: peer,
            site: api::site_for(&endpoint.shared.spec, sni),
        };
        endpoint.router.clone().layer(Extension(caller))
    })
    .await;
}

/// Removes a connection from the table when its task ends.
struct ConnectionGuard {
    shared: Arc<Shared>,
    id: u64,
    answering: bool,
    cut: CancellationToken,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.shared.state().connections.remove(&self.id);
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lists a new connection from `peer`, or refuses it (`None`) when the source is
    /// blocked. Checked and listed under one lock, so a concurrent `block_source` either
    /// refuses it here or cuts it from the table.
    fn admit(self: &Arc<Self>, peer: IpAddr, period: &CancellationToken) -> Option<ConnectionGuard> {
        let mut state = self.state();
        if state.blocked.contains(&peer) {
            return None;
        }
        let id = state.next_connection;
        state.next_connection += 1;
        let answering = state.respond;
        let cut = period.child_token();
        state.connections.insert(
            id,
            OpenConnection {
                peer,
                answering,
                cut: cut.clone(),
            },
        );
        Some(ConnectionGuard {
            shared: self.clone(),
            id,
            answering,
            cut,
        })
    }

    /// The authorizer, if one is set; cloned so that it is called without the lock.
    fn authorizer(&self) -> Option<Authorizer> {
        self.state().authorizer.clone()
    }

    /// The administrator's decision on `serial`.
    fn decide(&self, serial: &str, decision: DeviceState) {
        self.state()
            .devices
            .entry(serial.to_owned())
            .and_modify(|device| device.state = decision)
            .or_insert_with(|| FabricDevice::unseen(serial, decision));
    }

    /// Notes that `peer` got an answer to an API request.
    fn record_request(&self, peer: IpAddr) {
        let mut state = self.state();
        if !state.requesters.contains(&peer) {
            state.requesters.push(peer);
        }
    }
}

/// Seconds since the Unix epoch (0 for a clock before it).
fn unix_now() -> u64 {
    u64::try_from(crate::calendar::unix_now()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use rustls::pki_types::{CertificateDer, ServerName};
    use rustls::{CertificateError, ClientConfig, RootCertStore};
    use serde_json::Value;
    use tokio::io::AsyncWriteExt;
    use tokio_rustls::TlsConnector;
    use tokio_rustls::client::TlsStream;

    use super::*;
    use crate::sim::Pki;
    use crate::topology::CertProfile;

    const HOSTNAME: &str = "ems.lab.example";
    const EMS_SERIAL: &str = "FCTEMS8822001234";
    const PRE_AUTHORIZED: &str = "FGVM01TM22000009";
    const ROOT_SERIAL: &str = "FGVM01TM22000001";
    const MEMBER_SERIAL: &str = "FGVM01TM22000002";
    const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    /// How long a test waits for something that must happen promptly (a connection being
    /// cut); a deadline to fail by, not a pause.
    const DEADLINE: Duration = Duration::from_secs(5);
    /// How long a handshake with a silent EMS is given before it counts as timed out.
    const SILENT_HANDSHAKE: Duration = Duration::from_millis(300);

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

    fn spec(certificate: CertProfile) -> EmsSpec {
        EmsSpec {
            name: "ems1".to_owned(),
            serial: EMS_SERIAL.to_owned(),
            hostname: HOSTNAME.to_owned(),
            listen: SocketAddr::new(LOCALHOST, 0),
            certificate,
            sites: Vec::new(),
            authorized: vec![PRE_AUTHORIZED.to_owned()],
            capabilities: vec!["fabric-auth".to_owned(), "websocket".to_owned()],
            respond: true,
        }
    }

    fn multitenant() -> EmsSpec {
        EmsSpec {
            sites: vec!["Default".to_owned(), "SiteA".to_owned()],
            ..spec(CertProfile::Trusted)
        }
    }

    async fn start(lab: &Lab, spec: EmsSpec) -> EmsServer {
        let listener = TcpListener::bind(spec.listen).await.unwrap();
        let ip = listener.local_addr().unwrap().ip();
        let identity = lab
            .pki
            .server_identity(&spec.name, &spec.hostname, Some(ip), spec.certificate)
            .unwrap();
        EmsServer::start(spec, identity, listener).await.unwrap()
    }

    /// A FortiGate's side of one connection: TLS verified against `anchors`, then
    /// HTTP/1.1 requests on the kept-alive connection.
    struct Client {
        tls: TlsStream<TcpStream>,
        received: Vec<u8>,
    }

    /// One HTTP answer: status code and JSON body.
    #[derive(Debug)]
    struct Answer {
        status: u16,
        body: Value,
    }

    impl Client {
        /// Connects from `source` (any loopback address when `None`) to `addr` and
        /// completes the handshake for `server_name` (a DNS name, or an IP address, which
        /// sends no SNI).
        async fn connect(
            addr: SocketAddr,
            server_name: &str,
            anchors: &[CertificateDer<'static>],
            source: Option<IpAddr>,
        ) -> io::Result<Client> {
            let socket = TcpSocket::new_v4()?;
            if let Some(source) = source {
                socket.bind(SocketAddr::new(source, 0))?;
            }
            let stream = socket.connect(addr).await?;
            let mut roots = RootCertStore::empty();
            for anchor in anchors {
                roots.add(anchor.clone()).unwrap();
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
            let name = ServerName::try_from(server_name.to_owned()).unwrap();
            let tls = TlsConnector::from(Arc::new(config)).connect(name, stream).await?;
            Ok(Client {
                tls,
                received: Vec::new(),
            })
        }

        /// Sends a request as FortiGate `serial` (no identity headers when `None`) and
        /// reads the answer.
        async fn call(&mut self, method: &str, path: &str, serial: Option<&str>) -> Answer {
            let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {HOSTNAME}\r\n");
            if let Some(serial) = serial {
                request.push_str(&format!(
                    "X-FortiGate-Serial: {serial}\r\nX-FortiGate-Hostname: FGT-{serial}\r\n"
                ));
            }
            request.push_str("Content-Length: 0\r\n\r\n");
            self.tls.write_all(request.as_bytes()).await.unwrap();
            self.read_answer().await
        }

        async fn read_answer(&mut self) -> Answer {
            let head_end = loop {
                if let Some(end) = find(&self.received, b"\r\n\r\n") {
                    break end;
                }
                self.fill().await;
            };
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
            let body_start = head_end + 4;
            while self.received.len() < body_start + length {
                self.fill().await;
            }
            let body = serde_json::from_slice(&self.received[body_start..body_start + length])
                .expect("every body is JSON");
            self.received.drain(..body_start + length);
            Answer { status, body }
        }

        async fn fill(&mut self) {
            let mut buffer = [0u8; 4096];
            let n = self.tls.read(&mut buffer).await.unwrap();
            assert!(n > 0, "the EMS closed the connection mid-answer");
            self.received.extend_from_slice(&buffer[..n]);
        }

        /// Waits until the EMS closes the connection (end of stream or an error).
        async fn closed_by_peer(&mut self) -> bool {
            let mut buffer = [0u8; 64];
            matches!(
                tokio::time::timeout(DEADLINE, self.tls.read(&mut buffer)).await,
                Ok(Ok(0) | Err(_))
            )
        }
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|window| window == needle)
    }

    /// The certificate verdict inside a failed handshake, if it was one.
    fn certificate_error(error: &io::Error) -> Option<CertificateError> {
        match error.get_ref()?.downcast_ref::<rustls::Error>()? {
            rustls::Error::InvalidCertificate(error) => Some(error.clone()),
            _ => None,
        }
    }

    async fn connect(ems: &EmsServer, lab: &Lab, server_name: &str) -> io::Result<Client> {
        Client::connect(ems.addr(), server_name, &lab.pki.trust_anchors(), None).await
    }

    async fn register(client: &mut Client, serial: &str) -> Answer {
        client.call("POST", REGISTER_PATH, Some(serial)).await
    }

    fn status_of(answer: &Answer) -> &str {
        answer.body["data"]["status"].as_str().unwrap()
    }

    #[tokio::test]
    async fn a_trusted_ems_verifies_by_hostname_and_address_and_answers() {
        let lab = lab();
        let ems = start(&lab, spec(CertProfile::Trusted)).await;
        for server_name in [HOSTNAME, "127.0.0.1"] {
            let mut client = connect(&ems, &lab, server_name).await.unwrap();
            let answer = client.call("GET", SERIAL_NUMBER_PATH, Some(ROOT_SERIAL)).await;
            assert_eq!(answer.status, 200);
            assert_eq!(answer.body["data"]["serial_number"], EMS_SERIAL);
            let answer = client.call("GET", CAPABILITIES_PATH, Some(ROOT_SERIAL)).await;
            assert_eq!(
                answer.body["data"]["capabilities"],
                serde_json::json!(["fabric-auth", "websocket"])
            );
        }
        assert_eq!(ems.spec().listen, ems.addr());
        assert_ne!(ems.addr().port(), 0);
        ems.shutdown().await;
    }

    #[tokio::test]
    async fn untrusted_and_self_signed_certificates_fail_verification() {
        let lab = lab();
        for profile in [CertProfile::Untrusted, CertProfile::SelfSigned] {
            let ems = start(&lab, spec(profile)).await;
            let error = connect(&ems, &lab, HOSTNAME).await.err().unwrap();
            assert_eq!(
                certificate_error(&error),
                Some(CertificateError::UnknownIssuer),
                "{profile}: {error}"
            );
            ems.shutdown().await;
        }
    }

    #[tokio::test]
    async fn an_expired_certificate_is_rejected_as_expired() {
        let lab = lab();
        let ems = start(&lab, spec(CertProfile::Expired)).await;
        let error = connect(&ems, &lab, HOSTNAME).await.err().unwrap();
        assert!(
            matches!(
                certificate_error(&error),
                Some(CertificateError::Expired | CertificateError::ExpiredContext { .. })
            ),
            "{error}"
        );
        ems.shutdown().await;
    }

    #[tokio::test]
    async fn a_wrong_host_certificate_fails_name_verification() {
        let lab = lab();
        let ems = start(&lab, spec(CertProfile::WrongHost)).await;
        for server_name in [HOSTNAME, "127.0.0.1"] {
            let error = connect(&ems, &lab, server_name).await.err().unwrap();
            assert!(
                matches!(
                    certificate_error(&error),
                    Some(CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. })
                ),
                "{server_name}: {error}"
            );
        }
        ems.shutdown().await;
    }

    #[tokio::test]
    async fn a_fortigate_registers_as_pending_until_authorized_or_denied() {
        let lab = lab();
        let ems = start(&lab, spec(CertProfile::Trusted)).await;
        let mut client = connect(&ems, &lab, HOSTNAME).await.unwrap();

        let answer = register(&mut client, MEMBER_SERIAL).await;
        assert_eq!((answer.status, status_of(&answer)), (200, "pending"));
        let refused = client.call("GET", MALWARE_HASHES_PATH, Some(MEMBER_SERIAL)).await;
        assert_eq!(refused.status, 403);
        assert_eq!(
            refused.body["error"],
            format!("FortiGate {MEMBER_SERIAL} is not authorized")
        );

        let devices = ems.devices();
        let row = devices.iter().find(|d| d.serial == MEMBER_SERIAL).unwrap();
        assert_eq!(row.state, DeviceState::Pending);
        assert_eq!(row.hostname, format!("FGT-{MEMBER_SERIAL}"));
        assert_eq!(row.site, DEFAULT_SITE);
        assert_eq!(row.last_address, Some(LOCALHOST));
        assert!(row.last_seen_unix.is_some());

        ems.authorize(MEMBER_SERIAL);
        let answer = register(&mut client, MEMBER_SERIAL).await;
        assert_eq!(status_of(&answer), "authorized");
        let feed = client.call("GET", MALWARE_HASHES_PATH, Some(MEMBER_SERIAL)).await;
        assert_eq!(feed.status, 200);
        assert_eq!(feed.body["data"]["hashes"], serde_json::json!(malware_hashes()));

        ems.deny(MEMBER_SERIAL);
        let answer = register(&mut client, MEMBER_SERIAL).await;
        assert_eq!(status_of(&answer), "denied");
        ems.shutdown().await;
    }

    #[tokio::test]
    async fn an_authorizer_decides_in_place_of_the_fabric_devices_list() {
        let lab = lab();
        let ems = start(&lab, spec(CertProfile::Trusted)).await;
        let entitled = Arc::new(Mutex::new(HashSet::from([MEMBER_SERIAL.to_owned()])));
        let asked = entitled.clone();
        ems.set_authorizer(Arc::new(move |serial: &str| {
            if asked.lock().unwrap().contains(serial) {
                DeviceState::Authorized
            } else {
                DeviceState::Denied
            }
        }));
        let mut client = connect(&ems, &lab, HOSTNAME).await.unwrap();

        let answer = register(&mut client, MEMBER_SERIAL).await;
        assert_eq!((answer.status, status_of(&answer)), (200, "authorized"));
        let feed = client.call("GET", MALWARE_HASHES_PATH, Some(MEMBER_SERIAL)).await;
        assert_eq!(feed.status, 200);
        let row = ems
            .devices()
            .into_iter()
            .find(|d| d.serial == MEMBER_SERIAL)
            .unwrap();
        assert_eq!(row.state, DeviceState::Authorized);
        assert_eq!(row.hostname, format!("FGT-{MEMBER_SERIAL}"));
        assert_eq!(row.last_address, Some(LOCALHOST));

        // The list authorizes this one, and an administrator authorizes it again: the
        // authorizer still has the last word.
        ems.authorize(PRE_AUTHORIZED);
        let answer = register(&mut client, PRE_AUTHORIZED).await;
        assert_eq!(status_of(&answer), "denied");
        let refused = client
            .call("GET", MALWARE_HASHES_PATH, Some(PRE_AUTHORIZED))
            .await;
        assert_eq!(refused.status, 403);
        assert_eq!(
            refused.body["error"],
            format!("FortiGate {PRE_AUTHORIZED} is not authorized")
        );

        entitled.lock().unwrap().clear();
        let answer = register(&mut client, MEMBER_SERIAL).await;
        assert_eq!(status_of(&answer), "denied");
        let refused = client.call("GET", MALWARE_HASHES_PATH, Some(MEMBER_SERIAL)).await;
        assert_eq!(refused.status, 403);
        let row = ems
            .devices()
            .into_iter()
            .find(|d| d.serial == MEMBER_SERIAL)
            .unwrap();
        assert_eq!(row.state, DeviceState::Denied, "the row records the last answer");
        ems.shutdown().await;
    }

    #[tokio::test]
    async fn pre_authorized_and_admin_created_rows_are_listed_sorted() {
        let lab = lab();
        let ems = start(&lab, spec(CertProfile::Trusted)).await;
        ems.deny(ROOT_SERIAL);
        let devices = ems.devices();
        let listed: Vec<(&str, DeviceState)> = devices.iter().map(|d| (d.serial.as_str(), d.state)).collect();
        assert_eq!(
            listed,
            [
                (ROOT_SERIAL, DeviceState::Denied),
                (PRE_AUTHORIZED, DeviceState::Authorized)
            ]
        );
        assert_eq!(devices[1].last_address, None);

        let mut client = connect(&ems, &lab, HOSTNAME).await.unwrap();
        let answer = register(&mut client, PRE_AUTHORIZED).await;
        assert_eq!(status_of(&answer), "authorized");
        assert_eq!(ems.devices()[1].last_address, Some(LOCALHOST));
        ems.shutdown().await;
    }

    #[tokio::test]
    async fn a_multitenant_ems_serves_the_site_its_sni_names() {
        let lab = lab();
        let ems = start(&lab, multitenant()).await;
        for (server_name, site) in [
            ("sitea.ems.lab.example", "SiteA"),
            ("DEFAULT.ems.lab.example", "Default"),
        ] {
            let mut client = connect(&ems, &lab, server_name).await.unwrap();
            let answer = register(&mut client, MEMBER_SERIAL).await;
            assert_eq!(answer.status, 200, "{server_name}: {answer:?}");
            let row = ems.devices().into_iter().find(|d| d.serial == MEMBER_SERIAL);
            assert_eq!(row.unwrap().site, site);
        }
        ems.shutdown().await;
    }

    #[tokio::test]
    async fn a_multitenant_ems_refuses_global_access() {
        let lab = lab();
        let ems = start(&lab, multitenant()).await;
        for server_name in ["127.0.0.1", HOSTNAME, "siteb.ems.lab.example"] {
            let mut client = connect(&ems, &lab, server_name).await.unwrap();
            for (method, path) in [("GET", SERIAL_NUMBER_PATH), ("POST", REGISTER_PATH)] {
                let answer = client.call(method, path, Some(ROOT_SERIAL)).await;
                assert_eq!(answer.status, 403, "{server_name} {path}");
                assert_eq!(
                    answer.body["error"],
                    "Certificate user does not have access to global."
                );
            }
        }
        assert!(ems.devices().iter().all(|d| d.serial != ROOT_SERIAL));
        ems.shutdown().await;
    }

    #[tokio::test]
    async fn bad_requests_get_json_errors() {
        let lab = lab();
        let ems = start(&lab, spec(CertProfile::Trusted)).await;
        let mut client = connect(&ems, &lab, HOSTNAME).await.unwrap();
        let missing = client.call("POST", REGISTER_PATH, None).await;
        assert_eq!(missing.status, 400);
        assert_eq!(
            missing.body["error"],
            "missing or malformed x-fortigate-serial header"
        );
        let unknown = client.call("GET", "/api/v1/nothing", Some(ROOT_SERIAL)).await;
        assert_eq!(unknown.status, 404);
        assert_eq!(unknown.body["error"], "no such API: GET /api/v1/nothing");
        let wrong_method = client.call("GET", REGISTER_PATH, Some(ROOT_SERIAL)).await;
        assert_eq!(wrong_method.status, 405);
        assert!(wrong_method.body["error"].is_string());
        ems.shutdown().await;
    }

    #[tokio::test]
    async fn a_stopped_ems_refuses_connections_until_started_again() {
        let lab = lab();
        let ems = start(&lab, spec(CertProfile::Trusted)).await;
        let mut open = connect(&ems, &lab, HOSTNAME).await.unwrap();
        register(&mut open, MEMBER_SERIAL).await;

        ems.stop().await;
        assert!(!ems.is_running());
        assert!(open.closed_by_peer().await, "open connection survived stop");
        let error = TcpStream::connect(ems.addr()).await.err().unwrap();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
        ems.stop().await;

        ems.start_again().await.unwrap();
        assert!(ems.is_running());
        ems.start_again().await.unwrap();
        let mut client = connect(&ems, &lab, HOSTNAME).await.unwrap();
        let answer = register(&mut client, MEMBER_SERIAL).await;
        assert_eq!(status_of(&answer), "pending", "devices are kept across restarts");
        ems.shutdown().await;
    }

    #[tokio::test]
    async fn a_silent_ems_accepts_tcp_but_never_completes_the_handshake() {
        let lab = lab();
        let ems = start(&lab, spec(CertProfile::Trusted)).await;
        let mut kept_alive = connect(&ems, &lab, HOSTNAME).await.unwrap();
        register(&mut kept_alive, MEMBER_SERIAL).await;

        ems.set_respond(false);
        assert!(
            kept_alive.closed_by_peer().await,
            "kept-alive connection survived"
        );
        let attempt = tokio::time::timeout(SILENT_HANDSHAKE, connect(&ems, &lab, HOSTNAME)).await;
        assert!(
            attempt.is_err(),
            "the handshake finished: {:?}",
            attempt.map(|r| r.is_ok())
        );

        ems.set_respond(true);
        let mut client = connect(&ems, &lab, HOSTNAME).await.unwrap();
        assert_eq!(register(&mut client, MEMBER_SERIAL).await.status, 200);
        ems.shutdown().await;
    }

    #[tokio::test]
    async fn a_blocked_source_is_closed_at_once() {
        let lab = lab();
        let ems = start(&lab, spec(CertProfile::Trusted)).await;
        let mut kept_alive = connect(&ems, &lab, HOSTNAME).await.unwrap();
        register(&mut kept_alive, MEMBER_SERIAL).await;

        ems.block_source(LOCALHOST);
        assert!(kept_alive.closed_by_peer().await, "blocked connection survived");
        let error = connect(&ems, &lab, HOSTNAME).await.err().unwrap();
        assert_eq!(certificate_error(&error), None, "{error}");

        let other = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9));
        let anchors = lab.pki.trust_anchors();
        let mut client = Client::connect(ems.addr(), HOSTNAME, &anchors, Some(other))
            .await
            .unwrap();
        assert_eq!(register(&mut client, ROOT_SERIAL).await.status, 200);

        ems.unblock_source(LOCALHOST);
        let mut client = connect(&ems, &lab, HOSTNAME).await.unwrap();
        assert_eq!(register(&mut client, MEMBER_SERIAL).await.status, 200);
        ems.shutdown().await;
    }

    #[tokio::test]
    async fn requests_are_recorded_by_source_address_in_first_seen_order() {
        let lab = lab();
        let ems = start(&lab, spec(CertProfile::Trusted)).await;
        let anchors = lab.pki.trust_anchors();
        let sources = [
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 7)),
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 8)),
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 7)),
        ];
        for source in sources {
            let mut client = Client::connect(ems.addr(), HOSTNAME, &anchors, Some(source))
                .await
                .unwrap();
            client.call("GET", SERIAL_NUMBER_PATH, Some(ROOT_SERIAL)).await;
        }
        // A handshake without a request is not an API request.
        let silent = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10));
        drop(Client::connect(ems.addr(), HOSTNAME, &anchors, Some(silent)).await);
        assert_eq!(ems.requests_from(), sources[..2]);
        ems.shutdown().await;
    }

    #[test]
    fn the_threat_feed_is_the_sha256_of_five_fixed_names() {
        let hashes = malware_hashes();
        assert_eq!(hashes.len(), 5);
        assert_eq!(
            hashes[0],
            "b1cc81a4c8a96502cd44dace402fd152dee7426ee1770993eb0208630e7705ab"
        );
        assert_eq!(
            hashes[4],
            "15da68eca54a09caf7aee6db2446529c94e9ffdb2a42a879550e07b962ae4f36"
        );
    }

    #[test]
    fn device_states_serialize_in_lowercase() {
        assert_eq!(
            serde_json::to_string(&DeviceState::Authorized).unwrap(),
            "\"authorized\""
        );
        assert_eq!(DeviceState::Pending.to_string(), "pending");
    }
}
