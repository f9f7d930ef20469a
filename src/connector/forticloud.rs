//! The FortiGate side of FortiCloud: asking what FortiCloud knows of this FortiGate, its
//! registration to an account and its contracts, as `diagnose test update info` shows them
//! and as the EMS Cloud rule needs them (`docs/fortios.md`: a FortiGate may configure
//! EMS Cloud only when it is registered to FortiCloud and holds the EMS Cloud entitlement,
//! an FCEM contract).
//!
//! [`query`] is one short HTTPS conversation: bind the source address, connect to the
//! FortiCloud API, complete a TLS handshake that must verify against the anchors the node
//! trusts out of the box for FortiCloud's name, then `GET /api/v1/devices/<serial>` and
//! read a [`CloudRecord`]. The path, the header and the record are the contract in
//! [`crate::wire::forticloud`], which the simulated FortiCloud serves. Unlike an EMS certificate, a FortiCloud certificate that does
//! not verify is simply a failure: there is nothing for a user to accept.
//!
//! Data enters as the API address, the server name, this FortiGate's serial and source
//! address, the trust anchors and a time limit for the whole conversation; it leaves as a
//! [`CloudRecord`] or one line saying why there is none. Binding the source address,
//! connecting and the HTTP/1.1 client are shared with the EMS checker (`probe.rs`,
//! `http.rs`).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::ProbeFailure;
use super::http::HttpClient;
use super::probe::{bound_socket, close_tls, describe_io, host_header, show_duration};
use crate::wire::forticloud::device_path;
use crate::wire::{ErrorBody, MAX_SERIAL_FIELD_LEN, SERIAL_HEADER, is_serial_field};

pub use crate::wire::forticloud::{CloudContract, CloudRecord};

/// Asks FortiCloud what it knows of this FortiGate. Verifies the server against `anchors`
/// with the name `server_name` (FortiCloud's hostname), binds `source`, and gives up when
/// the whole conversation takes longer than `timeout`. The error is one line for a person.
pub async fn query(
    api: SocketAddr,
    server_name: &str,
    serial: &str,
    source: IpAddr,
    anchors: &[CertificateDer<'static>],
    timeout: Duration,
) -> Result<CloudRecord, String> {
    let deadline = Deadline {
        at: Instant::now() + timeout,
        limit: timeout,
    };
    let record = ask(api, server_name, serial, source, anchors, deadline)
        .await
        .map_err(|error| error.to_string());
    match &record {
        Ok(record) => tracing::debug!(
            %api,
            serial,
            registered = record.registered,
            contracts = record.contracts.len(),
            "FortiCloud answered"
        ),
        Err(error) => tracing::debug!(%api, serial, %error, "FortiCloud query failed"),
    }
    record
}

/// Why FortiCloud could not be asked or did not answer usefully.
#[derive(Debug, thiserror::Error)]
enum QueryError {
    /// The serial cannot be put into the request path.
    #[error("cannot ask FortiCloud about {0:?}: a serial is 1 to {MAX_SERIAL_FIELD_LEN} letters and digits")]
    Serial(String),
    /// The server name is neither a DNS name nor an IP address.
    #[error("{0} is not a valid TLS server name")]
    ServerName(String),
    /// The source address could not be bound or the TCP connection failed.
    #[error(transparent)]
    Connection(#[from] ProbeFailure),
    /// The whole conversation took longer than the time limit.
    #[error("timed out after {}: {during}", show_duration(*after))]
    Timeout {
        /// The step that was running.
        during: String,
        /// The time limit.
        after: Duration,
    },
    /// TLS failed: the certificate did not verify, or the peer hung up or spoke no TLS.
    #[error("TLS handshake with FortiCloud at {addr} failed: {reason}")]
    Handshake {
        /// The API address.
        addr: SocketAddr,
        /// What went wrong, in a few words.
        reason: String,
    },
    /// This FortiGate's serial or the server name cannot be sent as a header.
    #[error("cannot send the request: {0}")]
    Request(String),
    /// The HTTP exchange broke.
    #[error("GET {path} on {addr} failed: {reason}")]
    Http {
        /// The request path.
        path: String,
        /// The API address.
        addr: SocketAddr,
        /// What the HTTP client said.
        reason: String,
    },
    /// FortiCloud answered with another status than 200.
    #[error("FortiCloud at {addr} answered HTTP {status} to GET {path}{detail}")]
    Status {
        /// The request path.
        path: String,
        /// The API address.
        addr: SocketAddr,
        /// The HTTP status.
        status: u16,
        /// `: <the error it gave>`, or nothing.
        detail: String,
    },
    /// The answer is not a device record.
    #[error("FortiCloud at {addr} sent a device record that does not parse: {reason}")]
    Body {
        /// The API address.
        addr: SocketAddr,
        /// What serde said.
        reason: String,
    },
    /// The answer is about another device.
    #[error("FortiCloud at {addr} answered about {answered} when asked about {asked}")]
    OtherDevice {
        /// The API address.
        addr: SocketAddr,
        /// The serial asked about.
        asked: String,
        /// The serial in the answer.
        answered: String,
    },
}

/// The end of the time the whole conversation may take.
#[derive(Clone, Copy)]
struct Deadline {
    at: Instant,
    /// The whole time limit, for the message.
    limit: Duration,
}

impl Deadline {
    /// Runs `step` until the deadline; running out names the step.
    async fn run<T>(
        self,
        during: impl FnOnce() -> String,
        step: impl Future<Output = T>,
    ) -> Result<T, QueryError> {
        tokio::time::timeout_at(self.at, step)
            .await
            .map_err(|_| QueryError::Timeout {
                during: during(),
                after: self.limit,
            })
    }

    /// Time left, for the polite close after the answer.
    fn remaining(self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }
}

/// The body of [`query`]: a verified session, then the one request.
async fn ask(
    api: SocketAddr,
    server_name: &str,
    serial: &str,
    source: IpAddr,
    anchors: &[CertificateDer<'static>],
    deadline: Deadline,
) -> Result<CloudRecord, QueryError> {
    if !is_serial_field(serial) {
        return Err(QueryError::Serial(serial.to_owned()));
    }
    let tls = connect(api, server_name, source, anchors, deadline).await?;
    let path = device_path(serial);
    let mut http = HttpClient::new(
        tls,
        &host_header(server_name, api.port()),
        &[(SERIAL_HEADER, serial)],
    )
    .map_err(|e| QueryError::Request(e.to_string()))?;
    let response = deadline
        .run(|| format!("GET {path} on {api}"), http.request("GET", &path))
        .await?
        .map_err(|e| QueryError::Http {
            path: path.clone(),
            addr: api,
            reason: e.to_string(),
        })?;
    close_tls(http.into_inner(), deadline.remaining()).await;

    if response.status != 200 {
        let detail = serde_json::from_slice::<ErrorBody>(&response.body)
            .map(|body| format!(": {}", body.error))
            .unwrap_or_default();
        return Err(QueryError::Status {
            path,
            addr: api,
            status: response.status,
            detail,
        });
    }
    let record: CloudRecord = serde_json::from_slice(&response.body).map_err(|e| QueryError::Body {
        addr: api,
        reason: e.to_string(),
    })?;
    if record.serial != serial {
        return Err(QueryError::OtherDevice {
            addr: api,
            asked: serial.to_owned(),
            answered: record.serial,
        });
    }
    Ok(record)
}

/// Binds `source`, connects to `api` and completes a TLS handshake that verifies
/// `server_name` against `anchors`, all before the deadline.
async fn connect(
    api: SocketAddr,
    server_name: &str,
    source: IpAddr,
    anchors: &[CertificateDer<'static>],
    deadline: Deadline,
) -> Result<TlsStream<TcpStream>, QueryError> {
    let name = ServerName::try_from(server_name.to_owned())
        .map_err(|_| QueryError::ServerName(server_name.to_owned()))?;
    let socket = bound_socket(source, api.ip())?;
    let tcp = deadline
        .run(
            || format!("connecting to FortiCloud at {api} from {source}"),
            socket.connect(api),
        )
        .await?
        .map_err(|e| ProbeFailure::Connect {
            from: source,
            addr: api,
            reason: describe_io(&e),
        })?;
    let _ = tcp.set_nodelay(true);

    let connector = TlsConnector::from(Arc::new(client_config(anchors)?));
    deadline
        .run(
            || format!("TLS handshake with FortiCloud at {api}"),
            connector.connect(name, tcp),
        )
        .await?
        .map_err(|e| QueryError::Handshake {
            addr: api,
            reason: handshake_reason(&e, server_name),
        })
}

/// A rustls client config that verifies FortiCloud strictly against `anchors`: aws-lc-rs,
/// safe protocol versions, HTTP/1.1 over ALPN, no client certificate. Anchors that do not
/// parse are left out; with none left every handshake fails as an unknown issuer.
fn client_config(anchors: &[CertificateDer<'static>]) -> Result<ClientConfig, QueryError> {
    let mut roots = RootCertStore::empty();
    let (_added, ignored) = roots.add_parsable_certificates(anchors.iter().cloned());
    if ignored > 0 {
        tracing::warn!(ignored, "trust anchors that do not parse are left out");
    }
    let provider = crate::wire::crypto_provider();
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| QueryError::Request(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A failed handshake in a few words: the certificate's fault when it was one.
fn handshake_reason(error: &io::Error, server_name: &str) -> String {
    let certificate = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .and_then(|error| match error {
            rustls::Error::InvalidCertificate(certificate) => Some(certificate),
            _ => None,
        });
    match certificate {
        Some(CertificateError::UnknownIssuer | CertificateError::BadSignature) => {
            "the server certificate is not signed by any trusted CA".to_owned()
        }
        Some(CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }) => {
            format!("the server certificate is not valid for {server_name}")
        }
        Some(CertificateError::Expired | CertificateError::ExpiredContext { .. }) => {
            "the server certificate has expired".to_owned()
        }
        Some(other) => format!("the server certificate was refused: {other}"),
        None => describe_io(error),
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::connector::test_ems::{
        EMS_HOSTNAME, EmsScript, TestEms, TestPki, silent_listener, unused_port,
    };

    const SERIAL: &str = "FGVM01TM22000001";
    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    /// Time limit of a query that is expected to get an answer or a refusal at once.
    const PROMPT: Duration = Duration::from_secs(5);

    fn at(port: u16) -> SocketAddr {
        SocketAddr::new(LOCAL, port)
    }

    #[tokio::test]
    async fn a_serial_that_cannot_go_into_a_path_is_refused_before_connecting() {
        for serial in ["", "FGVM/../x", "FG VM", &"F".repeat(MAX_SERIAL_FIELD_LEN + 1)] {
            let error = query(at(1), "forticloud.example", serial, LOCAL, &[], PROMPT)
                .await
                .unwrap_err();
            assert!(error.starts_with("cannot ask FortiCloud about"), "{error}");
        }
    }

    #[tokio::test]
    async fn a_refused_connection_and_a_silent_server_are_told_apart() {
        let port = unused_port().await;
        let error = query(at(port), "forticloud.example", SERIAL, LOCAL, &[], PROMPT)
            .await
            .unwrap_err();
        assert_eq!(
            error,
            format!("cannot connect to 127.0.0.1:{port} from 127.0.0.1: connection refused")
        );

        let (port, _listener) = silent_listener().await;
        let limit = Duration::from_millis(300);
        let error = query(at(port), "forticloud.example", SERIAL, LOCAL, &[], limit)
            .await
            .unwrap_err();
        assert_eq!(
            error,
            format!("timed out after 300 ms: TLS handshake with FortiCloud at 127.0.0.1:{port}")
        );
    }

    #[tokio::test]
    async fn a_certificate_that_does_not_verify_is_a_failure() {
        let pki = TestPki::new();
        let ems = TestEms::start(pki.trusted_leaf(), EmsScript::device("authorized")).await;
        let anchors = [pki.ca_der().clone()];

        let error = query(at(ems.port()), EMS_HOSTNAME, SERIAL, LOCAL, &[], PROMPT)
            .await
            .unwrap_err();
        assert!(
            error.ends_with("failed: the server certificate is not signed by any trusted CA"),
            "{error}"
        );
        let error = query(
            at(ems.port()),
            "forticloud.example",
            SERIAL,
            LOCAL,
            &anchors,
            PROMPT,
        )
        .await
        .unwrap_err();
        assert!(
            error.ends_with("the server certificate is not valid for forticloud.example"),
            "{error}"
        );
        assert!(
            ems.connections().iter().all(|c| c.requests.is_empty()),
            "nothing is asked of a server that did not verify"
        );
    }

    #[tokio::test]
    async fn a_server_that_is_not_forticloud_answers_with_an_error_status() {
        let pki = TestPki::new();
        let ems = TestEms::start(pki.trusted_leaf(), EmsScript::device("authorized")).await;
        let anchors = [pki.ca_der().clone()];
        let error = query(at(ems.port()), EMS_HOSTNAME, SERIAL, LOCAL, &anchors, PROMPT)
            .await
            .unwrap_err();
        assert!(
            error.starts_with(&format!(
                "FortiCloud at 127.0.0.1:{} answered HTTP 404 to GET /api/v1/devices/{SERIAL}",
                ems.port()
            )),
            "{error}"
        );
        let connection = &ems.connections()[0];
        assert_eq!(
            connection.requests[0].line,
            format!("GET {}", device_path(SERIAL))
        );
        assert_eq!(connection.requests[0].header("x-fortigate-serial"), Some(SERIAL));
        assert_eq!(connection.sni.as_deref(), Some(EMS_HOSTNAME));
    }
}
