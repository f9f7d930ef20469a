//! The check itself: from a [`ProbeTarget`] to an [`EmsStatus`] (the periodic check and
//! `diagnose endpoint fctems test-connectivity`) or to a [`CertificateOffer`]
//! (`execute fctems verify`).
//!
//! Both open a session the same way (resolve, bind the source address, connect, TLS
//! handshake with the certificate verdict) and then talk to the EMS API over that one
//! connection. Each step gets the whole `call-timeout` to itself; a step that runs out
//! of it makes the connection `timeout`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls::client::Resumption;
use rustls::pki_types::{CertificateDer, ServerName};
use serde::de::DeserializeOwned;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::http::{HttpClient, Response};
use super::render::{certificate_pem, fingerprint, render_certificate};
use super::trust::{ClassifyingVerifier, Verdict, VerdictSlot, take_verdict};
use super::{CertificateState, Connection, DeviceState, EmsStatus, ProbeTarget, Resolver, TrustStore};
use crate::calendar::{self, Clock, SystemClock};
use crate::wire::ems::{
    self, CAPABILITIES_PATH, Capabilities, Envelope, HOSTNAME_HEADER, REGISTER_PATH, Registration,
    SERIAL_NUMBER_PATH, SerialNumber,
};
use crate::wire::{ErrorBody, SERIAL_HEADER};

/// Detail for a certificate that chains to no installed CA (the FortiOS GUI text).
pub const DETAIL_UNTRUSTED: &str = "The server certificate cannot be authenticated with installed CA \
                                    certificates. Please install its CA certificates on this FortiGate.";
/// Detail when the EMS authorized this FortiGate.
pub const DETAIL_AUTHORIZED: &str = "Connected; EMS authorized this FortiGate.";
/// Detail while the EMS administrator has not decided (the FortiOS hint).
pub const DETAIL_PENDING: &str = "Not authorized by EMS: log in to the FortiClient EMS to authorize the \
                                  FortiGate under Administration > Fabric Devices";
/// Detail when the EMS administrator denied this FortiGate.
pub const DETAIL_DENIED: &str = "Denied by EMS under Administration > Fabric Devices.";

/// What the EMS presented, fetched for the user to confirm with `execute fctems verify`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateOffer {
    /// The chain as sent, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The verdict, as [`probe`] would report it.
    pub state: CertificateState,
    /// True when the chain verifies against the installed CAs for the server name: the
    /// CLI then has nothing for the user to accept.
    pub trusted_by_ca: bool,
    /// SHA-256 of the leaf DER, uppercase hex pairs joined by `:`.
    pub fingerprint: String,
    /// The leaf in the `execute fctems verify` layout.
    pub rendered: String,
    /// The leaf as PEM, what `vpn certificate remote` stores when the user accepts it.
    pub pem: String,
    /// The EMS serial number; `None` when the EMS refused to tell (HTTP 403).
    pub ems_serial: Option<String>,
    /// The EMS capabilities; empty when the EMS refused to tell (HTTP 403).
    pub capabilities: Vec<String>,
}

/// Why a session with the EMS could not be completed. `Display` is one line a CLI can
/// print after the FortiOS error header.
#[derive(Debug, thiserror::Error)]
pub enum ProbeFailure {
    /// The server name resolves to no address.
    #[error("cannot resolve {server}: {reason}")]
    Resolve { server: String, reason: String },
    /// The configured server is neither an IP address nor a DNS name TLS accepts.
    #[error("{server} is not a valid TLS server name")]
    ServerName { server: String },
    /// The source address cannot be bound (not on this host, wrong address family).
    #[error("cannot use source address {from}: {reason}")]
    Bind { from: IpAddr, reason: String },
    /// The TCP connection was refused, reset or unreachable.
    #[error("cannot connect to {addr} from {from}: {reason}")]
    Connect {
        from: IpAddr,
        addr: SocketAddr,
        reason: String,
    },
    /// TLS failed for a reason other than trust (the peer hung up, spoke no TLS, or
    /// failed to prove it holds the certificate's key).
    #[error("TLS handshake with {addr} failed: {reason}")]
    Handshake { addr: SocketAddr, reason: String },
    /// A step got no answer within `call-timeout`.
    #[error("timed out after {}: {during}", show_duration(*after))]
    Timeout { during: String, after: Duration },
    /// This FortiGate's serial or hostname cannot be sent as an HTTP header.
    #[error("cannot send this FortiGate's identity: {reason}")]
    Identity { reason: String },
    /// The HTTP exchange broke (connection lost, malformed or oversized answer).
    #[error("{method} {path} on {addr} failed: {reason}")]
    Http {
        method: &'static str,
        path: &'static str,
        addr: SocketAddr,
        reason: String,
    },
    /// The EMS answered something the contract does not allow.
    #[error("unexpected answer to {method} {path} from {addr}: {reason}")]
    Api {
        method: &'static str,
        path: &'static str,
        addr: SocketAddr,
        reason: String,
    },
    /// The presented certificate cannot be parsed for display.
    #[error("the EMS certificate cannot be shown: {reason}")]
    Certificate { reason: String },
}

impl ProbeFailure {
    /// How the failure shows in the connection column.
    pub fn connection(&self) -> Connection {
        match self {
            ProbeFailure::Timeout { .. } => Connection::Timeout,
            _ => Connection::Failed,
        }
    }

    /// The status detail: FortiOS words for a refused or reset connection
    /// (`Connection refused from 127.0.0.12 to 127.0.0.31:8443`), the CLI line otherwise.
    pub fn detail(&self) -> String {
        match self {
            ProbeFailure::Connect { from, addr, reason } => {
                let mut chars = reason.chars();
                let reason = chars
                    .next()
                    .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                    .unwrap_or_default();
                format!("{reason} from {from} to {addr}")
            }
            other => other.to_string(),
        }
    }
}

/// Checks one fctems entry from this node. Never fails: every outcome is a status, with
/// `checked_at` set to when the check ended.
pub async fn probe(target: &ProbeTarget, trust: &TrustStore, resolver: &Resolver) -> EmsStatus {
    let mut status = EmsStatus::unknown(&target.entry, &target.server);
    if let Err(failure) = check(target, trust, resolver, &mut status).await {
        status.connection = failure.connection();
        status.detail = failure.detail();
    }
    status.checked_at = Some(SystemClock.now_rfc3339());
    tracing::debug!(
        entry = %status.name,
        server = %status.server,
        connection = %status.connection,
        certificate = %status.certificate,
        device = %status.device,
        detail = %status.detail,
        "EMS checked"
    );
    status
}

/// Connects as [`probe`] does and fetches what `execute fctems verify` shows: the chain,
/// its verdict and rendering, the EMS serial and capabilities. The API calls are made
/// whatever the verdict, because the user is about to decide whether to trust it.
pub async fn fetch_offer(
    target: &ProbeTarget,
    trust: &TrustStore,
    resolver: &Resolver,
) -> Result<CertificateOffer, ProbeFailure> {
    let session = Session::open(target, trust, resolver).await?;
    let leaf = session
        .chain
        .first()
        .cloned()
        .ok_or_else(|| ProbeFailure::Handshake {
            addr: session.addr,
            reason: "the server presented no certificate".to_owned(),
        })?;
    let rendered = render_certificate(&leaf).map_err(|reason| ProbeFailure::Certificate { reason })?;
    let (addr, verdict, chain) = (session.addr, session.verdict.clone(), session.chain.clone());
    let mut api = session.api(target)?;
    let ems_serial = match api.call::<SerialNumber>("GET", SERIAL_NUMBER_PATH).await? {
        ApiAnswer::Data(data) => Some(data.serial_number),
        ApiAnswer::Refused(_) => None,
    };
    let capabilities = match api.call::<Capabilities>("GET", CAPABILITIES_PATH).await? {
        ApiAnswer::Data(data) => data.capabilities,
        ApiAnswer::Refused(_) => Vec::new(),
    };
    api.close().await;
    tracing::debug!(%addr, state = %verdict.state, "EMS certificate fetched for verification");
    Ok(CertificateOffer {
        fingerprint: fingerprint(&leaf),
        pem: certificate_pem(&leaf),
        chain,
        state: verdict.state,
        trusted_by_ca: verdict.trusted_by_ca,
        rendered,
        ems_serial,
        capabilities,
    })
}

/// The body of [`probe`]: fills `status` as far as it gets; an `Err` says why it stopped.
async fn check(
    target: &ProbeTarget,
    trust: &TrustStore,
    resolver: &Resolver,
    status: &mut EmsStatus,
) -> Result<(), ProbeFailure> {
    let session = Session::open(target, trust, resolver).await?;
    status.connection = Connection::Connected;
    status.certificate = session.verdict.state;
    let certificate_problem = match session.verdict.state {
        CertificateState::Authorized => None,
        CertificateState::Expired => Some(match session.verdict.not_after {
            Some(not_after) => format!(
                "The server certificate has expired (valid to {} GMT).",
                calendar::date_time(not_after)
            ),
            None => "The server certificate has expired.".to_owned(),
        }),
        CertificateState::NameMismatch => Some(format!(
            "The server certificate is not valid for {}.",
            target.server
        )),
        CertificateState::Untrusted | CertificateState::Unknown => Some(DETAIL_UNTRUSTED.to_owned()),
    };
    if let Some(detail) = certificate_problem {
        status.detail = detail;
        close_tls(session.tls, target.timeout).await;
        return Ok(());
    }

    let mut api = session.api(target)?;
    match api.call::<SerialNumber>("GET", SERIAL_NUMBER_PATH).await? {
        ApiAnswer::Data(data) => status.ems_serial = Some(data.serial_number),
        ApiAnswer::Refused(reason) => {
            status.device = DeviceState::Denied;
            status.detail = reason;
            api.close().await;
            return Ok(());
        }
    }
    let (device, detail) = match api.call::<Registration>("POST", REGISTER_PATH).await? {
        ApiAnswer::Refused(reason) => (DeviceState::Denied, reason),
        ApiAnswer::Data(data) => match data.status {
            ems::DeviceState::Authorized => (DeviceState::Authorized, DETAIL_AUTHORIZED.to_owned()),
            ems::DeviceState::Pending => (DeviceState::Pending, DETAIL_PENDING.to_owned()),
            ems::DeviceState::Denied => (DeviceState::Denied, DETAIL_DENIED.to_owned()),
        },
    };
    status.device = device;
    status.detail = detail;
    api.close().await;
    Ok(())
}

/// An established TLS session with its certificate verdict.
struct Session {
    tls: TlsStream<TcpStream>,
    addr: SocketAddr,
    verdict: Verdict,
    chain: Vec<CertificateDer<'static>>,
}

impl Session {
    /// Resolve, bind, connect and handshake, each within `target.timeout`.
    async fn open(
        target: &ProbeTarget,
        trust: &TrustStore,
        resolver: &Resolver,
    ) -> Result<Session, ProbeFailure> {
        let server = target.server.trim();
        let ip = within(
            target.timeout,
            || format!("resolving {server}"),
            resolver.resolve(server),
        )
        .await?
        .map_err(|reason| ProbeFailure::Resolve {
            server: server.to_owned(),
            reason,
        })?;
        let addr = SocketAddr::new(ip, target.port);
        let server_name = ServerName::try_from(server.to_owned()).map_err(|_| ProbeFailure::ServerName {
            server: server.to_owned(),
        })?;

        let socket = bound_socket(target.source, ip)?;
        let tcp = within(
            target.timeout,
            || format!("connecting to {addr} from {}", target.source),
            socket.connect(addr),
        )
        .await?
        .map_err(|e| ProbeFailure::Connect {
            from: target.source,
            addr,
            reason: describe_io(&e),
        })?;
        // Small request/response exchanges: do not wait to coalesce segments.
        let _ = tcp.set_nodelay(true);

        let slot = VerdictSlot::default();
        let config =
            client_config(trust, slot.clone()).map_err(|reason| ProbeFailure::Handshake { addr, reason })?;
        let connector = TlsConnector::from(Arc::new(config));
        let tls = within(
            target.timeout,
            || format!("TLS handshake with {addr}"),
            connector.connect(server_name, tcp),
        )
        .await?
        .map_err(|e| ProbeFailure::Handshake {
            addr,
            reason: describe_io(&e),
        })?;
        let verdict = take_verdict(&slot).ok_or_else(|| ProbeFailure::Handshake {
            addr,
            reason: "the server certificate was never examined".to_owned(),
        })?;
        let chain = tls
            .get_ref()
            .1
            .peer_certificates()
            .map(|certs| certs.iter().map(|c| c.clone().into_owned()).collect())
            .unwrap_or_default();
        Ok(Session {
            tls,
            addr,
            verdict,
            chain,
        })
    }

    /// Turns the session into an EMS API client identifying this FortiGate.
    fn api(self, target: &ProbeTarget) -> Result<EmsApi, ProbeFailure> {
        let host = host_header(target.server.trim(), target.port);
        let http = HttpClient::new(
            self.tls,
            &host,
            &[
                (SERIAL_HEADER, target.fortigate_serial.as_str()),
                (HOSTNAME_HEADER, target.fortigate_hostname.as_str()),
            ],
        )
        .map_err(|e| ProbeFailure::Identity {
            reason: e.to_string(),
        })?;
        Ok(EmsApi {
            http,
            addr: self.addr,
            timeout: target.timeout,
        })
    }
}

/// The EMS API over one session.
struct EmsApi {
    http: HttpClient<TlsStream<TcpStream>>,
    addr: SocketAddr,
    timeout: Duration,
}

/// What an API call gave: the `data` object, or the EMS's refusal text (HTTP 403).
enum ApiAnswer<T> {
    Data(T),
    Refused(String),
}

impl EmsApi {
    /// One request within the timeout; 200 gives the `data`, 403 the refusal text.
    async fn call<T: DeserializeOwned>(
        &mut self,
        method: &'static str,
        path: &'static str,
    ) -> Result<ApiAnswer<T>, ProbeFailure> {
        let addr = self.addr;
        let response: Response = within(
            self.timeout,
            || format!("{method} {path} on {addr}"),
            self.http.request(method, path),
        )
        .await?
        .map_err(|e| ProbeFailure::Http {
            method,
            path,
            addr,
            reason: e.to_string(),
        })?;
        match response.status {
            200 => serde_json::from_slice::<Envelope<T>>(&response.body)
                .map(|envelope| ApiAnswer::Data(envelope.data))
                .map_err(|e| self.unexpected(method, path, format!("body does not parse: {e}"))),
            403 => Ok(ApiAnswer::Refused(
                match serde_json::from_slice::<ErrorBody>(&response.body) {
                    Ok(body) => body.error,
                    Err(_) => format!("The EMS refused {method} {path} (HTTP 403)."),
                },
            )),
            other => {
                let reason = match serde_json::from_slice::<ErrorBody>(&response.body) {
                    Ok(body) => format!("HTTP {other}: {}", body.error),
                    Err(_) => format!("HTTP {other}"),
                };
                Err(self.unexpected(method, path, reason))
            }
        }
    }

    fn unexpected(&self, method: &'static str, path: &'static str, reason: String) -> ProbeFailure {
        ProbeFailure::Api {
            method,
            path,
            addr: self.addr,
            reason,
        }
    }

    /// Ends the session politely (TLS close_notify), without waiting past the timeout.
    async fn close(self) {
        close_tls(self.http.into_inner(), self.timeout).await;
    }
}

/// Sends close_notify and shuts the TCP connection down; failures are of no interest
/// once the answers are in.
pub(super) async fn close_tls(mut tls: TlsStream<TcpStream>, timeout: Duration) {
    let _ = tokio::time::timeout(timeout, tls.shutdown()).await;
}

/// A rustls client config for one session: aws-lc-rs, safe protocol versions, the
/// classifying verifier, no client certificate, and no resumption so that every
/// handshake shows (and judges) the certificate.
fn client_config(trust: &TrustStore, slot: VerdictSlot) -> Result<ClientConfig, String> {
    let provider = crate::wire::crypto_provider();
    let verifier = Arc::new(ClassifyingVerifier::new(provider.clone(), trust, slot));
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.resumption = Resumption::disabled();
    Ok(config)
}

/// A TCP socket bound to `source` (an ephemeral port), ready to connect to `server`.
pub(super) fn bound_socket(source: IpAddr, server: IpAddr) -> Result<TcpSocket, ProbeFailure> {
    let bind_ip = bind_address(source, server)?;
    let bind_failure = |e: std::io::Error| ProbeFailure::Bind {
        from: source,
        reason: describe_io(&e),
    };
    let socket = match server {
        IpAddr::V4(_) => TcpSocket::new_v4(),
        IpAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(bind_failure)?;
    socket.bind(SocketAddr::new(bind_ip, 0)).map_err(bind_failure)?;
    Ok(socket)
}

/// The address to bind: the source, or "any" of the server's family when the source is
/// `0.0.0.0`. A specific IPv4 source cannot reach an IPv6 server and the other way round.
fn bind_address(source: IpAddr, server: IpAddr) -> Result<IpAddr, ProbeFailure> {
    match (source, server) {
        (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => Ok(source),
        (s, IpAddr::V6(_)) if s.is_unspecified() => Ok(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
        (s, IpAddr::V4(_)) if s.is_unspecified() => Ok(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        (_, server) => Err(ProbeFailure::Bind {
            from: source,
            reason: format!("it cannot reach {server}, an address of the other family"),
        }),
    }
}

/// `Host` header value: the server name, with the port unless it is the HTTPS default.
pub(super) fn host_header(server: &str, port: u16) -> String {
    /// HTTPS default port: browsers and FortiOS leave it out of `Host`.
    const HTTPS_PORT: u16 = 443;
    match (port, server.parse::<Ipv6Addr>()) {
        (HTTPS_PORT, Ok(_)) => format!("[{server}]"),
        (HTTPS_PORT, Err(_)) => server.to_owned(),
        (_, Ok(_)) => format!("[{server}]:{port}"),
        (_, Err(_)) => format!("{server}:{port}"),
    }
}

/// Runs `step` within `limit`; running out is a [`ProbeFailure::Timeout`] naming the step.
async fn within<T>(
    limit: Duration,
    during: impl FnOnce() -> String,
    step: impl Future<Output = T>,
) -> Result<T, ProbeFailure> {
    tokio::time::timeout(limit, step)
        .await
        .map_err(|_| ProbeFailure::Timeout {
            during: during(),
            after: limit,
        })
}

/// Short words for the socket errors an EMS check meets, the OS text otherwise.
pub(super) fn describe_io(error: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        ErrorKind::ConnectionReset => "connection reset".to_owned(),
        ErrorKind::ConnectionAborted => "connection aborted".to_owned(),
        ErrorKind::UnexpectedEof => "connection closed by peer".to_owned(),
        ErrorKind::AddrNotAvailable => "address not available on this host".to_owned(),
        ErrorKind::AddrInUse => "address in use".to_owned(),
        ErrorKind::HostUnreachable => "host unreachable".to_owned(),
        ErrorKind::NetworkUnreachable => "network unreachable".to_owned(),
        // Linux answers a connect from a loopback source to another network with EINVAL:
        // nothing leaves the host.
        ErrorKind::InvalidInput => {
            "unreachable from this source address (a loopback source reaches only loopback addresses)"
                .to_owned()
        }
        _ => error.to_string(),
    }
}

/// `300 ms`, `30 s`, `1500 ms`.
pub(super) fn show_duration(duration: Duration) -> String {
    if duration.subsec_millis() == 0 && duration.as_secs() > 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{} ms", duration.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::connector::test_ems::{EmsScript, TestEms, TestPki, silent_listener, unused_port};

    const SERVER: &str = "ems.lab.example";
    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn target(port: u16, server: &str) -> ProbeTarget {
        ProbeTarget {
            entry: "ems1".to_owned(),
            server: server.to_owned(),
            port,
            source: LOCAL,
            timeout: Duration::from_secs(5),
            fortigate_serial: "FGVM01TM22000001".to_owned(),
            fortigate_hostname: "FGT-root".to_owned(),
        }
    }

    fn resolver() -> Resolver {
        let mut resolver = Resolver::default();
        for name in [SERVER, "default.ems.lab.example", "nosuchsite.ems.lab.example"] {
            resolver.table.insert(name.to_owned(), LOCAL);
        }
        resolver
    }

    fn trust(pki: &TestPki) -> TrustStore {
        TrustStore {
            anchors: vec![pki.ca_der().clone()],
            pinned: vec![],
        }
    }

    #[tokio::test]
    async fn authorized_certificate_and_device() {
        let pki = TestPki::new();
        let ems = TestEms::start(pki.trusted_leaf(), EmsScript::device("authorized")).await;
        let status = probe(&target(ems.port(), SERVER), &trust(&pki), &resolver()).await;
        assert_eq!(status.name, "ems1");
        assert_eq!(status.server, SERVER);
        assert_eq!(status.connection, Connection::Connected);
        assert_eq!(status.certificate, CertificateState::Authorized);
        assert_eq!(status.device, DeviceState::Authorized);
        assert_eq!(status.detail, DETAIL_AUTHORIZED);
        assert_eq!(status.ems_serial.as_deref(), Some("FCTEMS8823000001"));
        let checked_at = status.checked_at.expect("checked");
        assert!(
            checked_at.ends_with('Z') && checked_at.len() == 20,
            "{checked_at}"
        );

        let connections = ems.connections();
        assert_eq!(connections.len(), 1, "both calls share one connection");
        let connection = &connections[0];
        assert_eq!(connection.sni.as_deref(), Some(SERVER));
        let lines: Vec<String> = connection.requests.iter().map(|r| r.line.clone()).collect();
        assert_eq!(
            lines,
            [
                format!("GET {SERIAL_NUMBER_PATH}"),
                format!("POST {REGISTER_PATH}")
            ]
        );
        for request in &connection.requests {
            assert_eq!(request.header("x-fortigate-serial"), Some("FGVM01TM22000001"));
            assert_eq!(request.header("x-fortigate-hostname"), Some("FGT-root"));
            assert_eq!(
                request.header("host"),
                Some(format!("{SERVER}:{}", ems.port()).as_str())
            );
            assert_eq!(request.header("connection"), Some("keep-alive"));
        }
    }

    #[tokio::test]
    async fn pending_and_denied_devices() {
        let pki = TestPki::new();
        for (answer, device, detail) in [
            ("pending", DeviceState::Pending, DETAIL_PENDING),
            ("denied", DeviceState::Denied, DETAIL_DENIED),
        ] {
            let ems = TestEms::start(pki.trusted_leaf(), EmsScript::device(answer)).await;
            let status = probe(&target(ems.port(), SERVER), &trust(&pki), &resolver()).await;
            assert_eq!(
                (status.connection, status.certificate, status.device),
                (Connection::Connected, CertificateState::Authorized, device)
            );
            assert_eq!(status.detail, detail);
            assert_eq!(status.ems_serial.as_deref(), Some("FCTEMS8823000001"));
        }
    }

    #[tokio::test]
    async fn untrusted_certificate_stops_before_the_api() {
        let pki = TestPki::new();
        let ems = TestEms::start(pki.self_signed_leaf(), EmsScript::device("authorized")).await;
        let status = probe(&target(ems.port(), SERVER), &trust(&pki), &resolver()).await;
        assert_eq!(status.connection, Connection::Connected);
        assert_eq!(status.certificate, CertificateState::Untrusted);
        assert_eq!(status.device, DeviceState::Unknown);
        assert_eq!(status.detail, DETAIL_UNTRUSTED);
        assert_eq!(status.ems_serial, None);
        assert!(ems.connections().iter().all(|c| c.requests.is_empty()));
    }

    #[tokio::test]
    async fn pinned_certificate_is_authorized_without_its_ca() {
        let pki = TestPki::new();
        let leaf = pki.self_signed_leaf();
        let pinned = TrustStore {
            anchors: vec![pki.ca_der().clone()],
            pinned: vec![leaf.der().clone()],
        };
        let ems = TestEms::start(leaf, EmsScript::device("authorized")).await;
        let status = probe(&target(ems.port(), SERVER), &pinned, &resolver()).await;
        assert_eq!(status.certificate, CertificateState::Authorized);
        assert_eq!(status.device, DeviceState::Authorized);
    }

    #[tokio::test]
    async fn expired_certificate_even_when_pinned() {
        let pki = TestPki::new();
        let leaf = pki.expired_leaf();
        let pinned = TrustStore {
            anchors: vec![pki.ca_der().clone()],
            pinned: vec![leaf.der().clone()],
        };
        let ems = TestEms::start(leaf, EmsScript::device("authorized")).await;
        for store in [trust(&pki), pinned] {
            let status = probe(&target(ems.port(), SERVER), &store, &resolver()).await;
            assert_eq!(status.certificate, CertificateState::Expired);
            assert_eq!(status.device, DeviceState::Unknown);
            assert_eq!(
                status.detail,
                "The server certificate has expired (valid to 2021-01-01 00:00:00 GMT)."
            );
        }
    }

    #[tokio::test]
    async fn certificate_for_another_name() {
        let pki = TestPki::new();
        let ems = TestEms::start(pki.wrong_name_leaf(), EmsScript::device("authorized")).await;
        let status = probe(&target(ems.port(), SERVER), &trust(&pki), &resolver()).await;
        assert_eq!(status.certificate, CertificateState::NameMismatch);
        assert_eq!(
            status.detail,
            "The server certificate is not valid for ems.lab.example."
        );
    }

    #[tokio::test]
    async fn refused_port_fails() {
        let port = unused_port().await;
        let status = probe(&target(port, SERVER), &TrustStore::default(), &resolver()).await;
        assert_eq!(status.connection, Connection::Failed);
        assert_eq!(status.certificate, CertificateState::Unknown);
        assert_eq!(
            status.detail,
            format!("Connection refused from 127.0.0.1 to 127.0.0.1:{port}")
        );
        assert!(status.checked_at.is_some());
    }

    #[tokio::test]
    async fn silent_listener_times_out() {
        let (port, _listener) = silent_listener().await;
        let mut target = target(port, SERVER);
        target.timeout = Duration::from_millis(300);
        let status = probe(&target, &TrustStore::default(), &resolver()).await;
        assert_eq!(status.connection, Connection::Timeout);
        assert_eq!(
            status.detail,
            format!("timed out after 300 ms: TLS handshake with 127.0.0.1:{port}")
        );
    }

    #[tokio::test]
    async fn silent_ems_times_out_and_closed_connection_fails() {
        let pki = TestPki::new();
        let silent = TestEms::start(
            pki.trusted_leaf(),
            EmsScript {
                respond: false,
                ..EmsScript::device("authorized")
            },
        )
        .await;
        let mut quick = target(silent.port(), SERVER);
        quick.timeout = Duration::from_millis(300);
        let status = probe(&quick, &trust(&pki), &resolver()).await;
        assert_eq!(status.connection, Connection::Timeout);

        let blocked = TestEms::start(
            pki.trusted_leaf(),
            EmsScript {
                close_at_once: true,
                ..EmsScript::device("authorized")
            },
        )
        .await;
        let status = probe(&target(blocked.port(), SERVER), &trust(&pki), &resolver()).await;
        assert_eq!(status.connection, Connection::Failed);
        assert!(
            status.detail.starts_with("TLS handshake with 127.0.0.1:"),
            "{}",
            status.detail
        );
    }

    #[tokio::test]
    async fn multitenant_ems_refuses_global_requests() {
        let pki = TestPki::new();
        let script = EmsScript {
            sites: vec!["Default".to_owned()],
            ..EmsScript::device("authorized")
        };
        let ems = TestEms::start(pki.trusted_leaf(), script).await;
        for server in ["127.0.0.1", SERVER, "nosuchsite.ems.lab.example"] {
            let status = probe(&target(ems.port(), server), &trust(&pki), &resolver()).await;
            assert_eq!(status.certificate, CertificateState::Authorized, "{server}");
            assert_eq!(status.device, DeviceState::Denied, "{server}");
            assert_eq!(status.detail, "Certificate user does not have access to global.");
            assert_eq!(status.ems_serial, None);
        }
        let status = probe(
            &target(ems.port(), "Default.ems.lab.example"),
            &trust(&pki),
            &resolver(),
        )
        .await;
        assert_eq!(status.device, DeviceState::Authorized, "{}", status.detail);
        let snis: Vec<Option<String>> = ems.connections().into_iter().map(|c| c.sni).collect();
        assert_eq!(snis[0], None, "an IP server sends no SNI");
        assert_eq!(snis[3].as_deref(), Some("default.ems.lab.example"));
    }

    #[tokio::test]
    async fn source_address_is_honoured() {
        let pki = TestPki::new();
        let ems = TestEms::start(pki.trusted_leaf(), EmsScript::device("authorized")).await;
        let mut target = target(ems.port(), SERVER);
        target.source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 12));
        let status = probe(&target, &trust(&pki), &resolver()).await;
        assert_eq!(status.device, DeviceState::Authorized, "{}", status.detail);
        assert_eq!(ems.connections()[0].peer.ip(), target.source);

        let port = unused_port().await;
        let refused = probe(&ProbeTarget { port, ..target }, &trust(&pki), &resolver()).await;
        assert_eq!(
            refused.detail,
            format!("Connection refused from 127.0.0.12 to 127.0.0.1:{port}")
        );
    }

    #[tokio::test]
    async fn names_resolve_through_the_table_or_fail() {
        let pki = TestPki::new();
        let ems = TestEms::start(pki.trusted_leaf(), EmsScript::device("authorized")).await;
        let status = probe(&target(ems.port(), "EMS.Lab.Example"), &trust(&pki), &resolver()).await;
        assert_eq!(status.device, DeviceState::Authorized, "{}", status.detail);

        let status = probe(
            &target(ems.port(), "unknown-ems.invalid"),
            &trust(&pki),
            &resolver(),
        )
        .await;
        assert_eq!(status.connection, Connection::Failed);
        assert!(
            status.detail.starts_with("cannot resolve unknown-ems.invalid: "),
            "{}",
            status.detail
        );
    }

    #[tokio::test]
    async fn offer_shows_an_untrusted_certificate_and_the_ems_identity() {
        let pki = TestPki::new();
        let leaf = pki.self_signed_leaf();
        let leaf_der = leaf.der().clone();
        let ems = TestEms::start(leaf, EmsScript::device("pending")).await;
        let offer = fetch_offer(&target(ems.port(), SERVER), &trust(&pki), &resolver())
            .await
            .expect("offer");
        assert_eq!(offer.state, CertificateState::Untrusted);
        assert!(!offer.trusted_by_ca);
        assert_eq!(offer.chain, vec![leaf_der.clone()]);
        assert_eq!(offer.fingerprint, fingerprint(&leaf_der));
        assert!(
            offer
                .rendered
                .contains(&format!("\tFingerprint: {}\n", offer.fingerprint))
        );
        assert!(offer.rendered.contains("\tRoot CA:     Yes\n"));
        assert_eq!(offer.ems_serial.as_deref(), Some("FCTEMS8823000001"));
        assert_eq!(
            offer.capabilities,
            ["fabric-auth", "silent-approval", "websocket"]
        );
        let lines: Vec<String> = ems.connections()[0]
            .requests
            .iter()
            .map(|r| r.line.clone())
            .collect();
        assert_eq!(
            lines,
            [
                format!("GET {SERIAL_NUMBER_PATH}"),
                format!("GET {CAPABILITIES_PATH}")
            ]
        );
    }

    #[tokio::test]
    async fn offer_from_a_trusted_ems_and_a_refusing_one() {
        let pki = TestPki::new();
        let ems = TestEms::start(pki.trusted_leaf(), EmsScript::device("authorized")).await;
        let offer = fetch_offer(&target(ems.port(), SERVER), &trust(&pki), &resolver())
            .await
            .expect("offer");
        assert_eq!(offer.state, CertificateState::Authorized);
        assert!(offer.trusted_by_ca);
        assert_eq!(offer.chain.len(), 2);

        let script = EmsScript {
            sites: vec!["Default".to_owned()],
            ..EmsScript::device("authorized")
        };
        let ems = TestEms::start(pki.trusted_leaf(), script).await;
        let offer = fetch_offer(&target(ems.port(), "127.0.0.1"), &trust(&pki), &resolver())
            .await
            .expect("offer");
        assert_eq!(offer.ems_serial, None);
        assert!(offer.capabilities.is_empty());
    }

    #[tokio::test]
    async fn offer_failures_read_as_one_line() {
        let port = unused_port().await;
        let failure = fetch_offer(&target(port, "127.0.0.1"), &TrustStore::default(), &resolver())
            .await
            .expect_err("refused");
        assert_eq!(
            failure.to_string(),
            format!("cannot connect to 127.0.0.1:{port} from 127.0.0.1: connection refused")
        );
        assert_eq!(failure.connection(), Connection::Failed);
    }

    #[test]
    fn host_header_and_durations() {
        assert_eq!(host_header("ems.lab.example", 443), "ems.lab.example");
        assert_eq!(host_header("10.0.0.5", 8013), "10.0.0.5:8013");
        assert_eq!(host_header("::1", 8443), "[::1]:8443");
        assert_eq!(show_duration(Duration::from_secs(30)), "30 s");
        assert_eq!(show_duration(Duration::from_millis(300)), "300 ms");
        assert_eq!(show_duration(Duration::from_millis(1500)), "1500 ms");
    }

    #[test]
    fn ipv4_source_cannot_reach_ipv6() {
        let v6: IpAddr = "::1".parse().expect("ip");
        assert!(bind_address(LOCAL, v6).is_err());
        assert_eq!(
            bind_address(IpAddr::V4(Ipv4Addr::UNSPECIFIED), v6).ok(),
            Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED))
        );
        assert_eq!(bind_address(LOCAL, LOCAL).ok(), Some(LOCAL));
    }
}
