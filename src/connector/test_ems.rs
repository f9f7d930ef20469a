//! Test fixtures: a small PKI made with rcgen and a tiny EMS that speaks the contract's
//! HTTPS API on an ephemeral loopback port, recording what each connection sent.
//!
//! The EMS here is deliberately small and scripted (one fixed device answer per server,
//! bodies written out as JSON text so that the client's parsing of the `wire` types is
//! tested against something the types did not produce); the full simulated EMS lives in
//! `sim`. It exists so the checker's tests use real sockets and real TLS.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SerialNumber, date_time_ymd,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::wire::ems::{CAPABILITIES_PATH, REGISTER_PATH, SERIAL_NUMBER_PATH};

/// The name every test EMS certificate is issued for.
pub(crate) const EMS_HOSTNAME: &str = "ems.lab.example";

/// A fabric CA and the EMS certificates of each profile the checker must tell apart.
pub(crate) struct TestPki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// An EMS certificate with its key and the chain its server sends.
pub(crate) struct Leaf {
    pub cert: Certificate,
    pub key: KeyPair,
    pub chain: Vec<CertificateDer<'static>>,
}

impl Leaf {
    pub(crate) fn der(&self) -> &CertificateDer<'static> {
        self.cert.der()
    }
}

impl TestPki {
    pub(crate) fn new() -> TestPki {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "fabricsim Fabric CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        let key = KeyPair::generate().expect("CA key");
        TestPki {
            ca: CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
        }
    }

    pub(crate) fn ca_der(&self) -> &CertificateDer<'static> {
        self.ca.der()
    }

    /// Signed by the fabric CA for the EMS name, its sites and 127.0.0.1.
    pub(crate) fn trusted_leaf(&self) -> Leaf {
        let names = [
            EMS_HOSTNAME.to_owned(),
            format!("*.{EMS_HOSTNAME}"),
            "127.0.0.1".to_owned(),
        ];
        self.signed(ems_params(&names, (2025, 1, 1), (2099, 12, 31)))
    }

    /// Issued by nobody the node knows.
    pub(crate) fn self_signed_leaf(&self) -> Leaf {
        let names = [EMS_HOSTNAME.to_owned(), "127.0.0.1".to_owned()];
        let mut params = ems_params(&names, (2025, 1, 1), (2099, 12, 31));
        params.use_authority_key_identifier_extension = false;
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.self_signed(&key).expect("self-signed leaf");
        let chain = vec![cert.der().clone()];
        Leaf { cert, key, chain }
    }

    /// Signed by the fabric CA, valid 2020-01-01 to 2021-01-01.
    pub(crate) fn expired_leaf(&self) -> Leaf {
        let names = [EMS_HOSTNAME.to_owned(), "127.0.0.1".to_owned()];
        self.signed(ems_params(&names, (2020, 1, 1), (2021, 1, 1)))
    }

    /// Signed by the fabric CA for another host only.
    pub(crate) fn wrong_name_leaf(&self) -> Leaf {
        self.signed(ems_params(
            &["other-host.invalid".to_owned()],
            (2025, 1, 1),
            (2099, 12, 31),
        ))
    }

    fn signed(&self, params: CertificateParams) -> Leaf {
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.ca).expect("signed leaf");
        let chain = vec![cert.der().clone(), self.ca.der().clone()];
        Leaf { cert, key, chain }
    }
}

/// EMS certificate parameters as the contract describes them.
fn ems_params(names: &[String], from: (i32, u8, u8), to: (i32, u8, u8)) -> CertificateParams {
    let mut params = CertificateParams::new(names.to_vec()).expect("leaf params");
    params.distinguished_name = DistinguishedName::new();
    let dn = &mut params.distinguished_name;
    dn.push(DnType::CountryName, "US");
    dn.push(DnType::StateOrProvinceName, "California");
    dn.push(DnType::LocalityName, "Sunnyvale");
    dn.push(DnType::OrganizationName, "Fortinet");
    dn.push(DnType::OrganizationalUnitName, "FortiClientEMS");
    dn.push(DnType::CommonName, names[0].as_str());
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.is_ca = IsCa::ExplicitNoCa;
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(SerialNumber::from_slice(&[0x4a, 0x1f, 0x00, 0x01]));
    params.not_before = date_time_ymd(from.0, from.1, from.2);
    params.not_after = date_time_ymd(to.0, to.1, to.2);
    params
}

/// How the test EMS behaves.
#[derive(Clone, Debug)]
pub(crate) struct EmsScript {
    pub serial: String,
    /// The `status` every register call answers.
    pub device: &'static str,
    pub capabilities: Vec<String>,
    /// Site names; non-empty makes the EMS multitenant.
    pub sites: Vec<String>,
    /// False: accept TCP, read and discard, never write.
    pub respond: bool,
    /// True: accept TCP and close at once (a blocked source).
    pub close_at_once: bool,
}

impl EmsScript {
    /// A single-tenant EMS answering `device` to every registration.
    pub(crate) fn device(device: &'static str) -> EmsScript {
        EmsScript {
            serial: "FCTEMS8823000001".to_owned(),
            device,
            capabilities: ["fabric-auth", "silent-approval", "websocket"]
                .map(str::to_owned)
                .to_vec(),
            sites: Vec::new(),
            respond: true,
            close_at_once: false,
        }
    }
}

/// What one accepted connection showed.
#[derive(Clone, Debug)]
pub(crate) struct SeenConnection {
    pub peer: SocketAddr,
    pub sni: Option<String>,
    pub requests: Vec<SeenRequest>,
}

/// One request: `METHOD /path` and its headers (names lowercase).
#[derive(Clone, Debug)]
pub(crate) struct SeenRequest {
    pub line: String,
    pub headers: Vec<(String, String)>,
}

impl SeenRequest {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Aborts a background task when the fixture goes out of scope.
pub(crate) struct TaskGuard(JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

type Log = Arc<Mutex<Vec<SeenConnection>>>;

/// A running test EMS.
pub(crate) struct TestEms {
    addr: SocketAddr,
    log: Log,
    _task: TaskGuard,
}

impl TestEms {
    /// Serves `leaf` on 127.0.0.1 at an ephemeral port.
    pub(crate) async fn start(leaf: Leaf, script: EmsScript) -> TestEms {
        let provider = crate::wire::crypto_provider();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key.serialize_der()));
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(leaf.chain.clone(), key)
            .expect("server certificate");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let log = Log::default();
        let script = Arc::new(script);
        let task_log = log.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, peer)) = listener.accept().await {
                let index = {
                    let mut log = task_log.lock().unwrap_or_else(PoisonError::into_inner);
                    log.push(SeenConnection {
                        peer,
                        sni: None,
                        requests: Vec::new(),
                    });
                    log.len() - 1
                };
                tokio::spawn(serve(
                    tcp,
                    acceptor.clone(),
                    script.clone(),
                    task_log.clone(),
                    index,
                ));
            }
        });
        TestEms {
            addr,
            log,
            _task: TaskGuard(task),
        }
    }

    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every connection so far, in accept order.
    pub(crate) fn connections(&self) -> Vec<SeenConnection> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

async fn serve(mut tcp: TcpStream, acceptor: TlsAcceptor, script: Arc<EmsScript>, log: Log, index: usize) {
    if script.close_at_once {
        return;
    }
    if !script.respond {
        let mut sink = [0u8; 1024];
        while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
        return;
    }
    let Ok(tls) = acceptor.accept(tcp).await else {
        return;
    };
    let sni = tls.get_ref().1.server_name().map(str::to_owned);
    log.lock().unwrap_or_else(PoisonError::into_inner)[index].sni = sni.clone();
    let site = site_of(&script, sni.as_deref());
    let mut stream = BufReader::new(tls);
    loop {
        let mut request_line = String::new();
        if !matches!(stream.read_line(&mut request_line).await, Ok(n) if n > 0) {
            return;
        }
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if !matches!(stream.read_line(&mut line).await, Ok(n) if n > 0) {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        let mut words = request_line.split_whitespace();
        let (method, path) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
        let line = format!("{method} {path}");
        log.lock().unwrap_or_else(PoisonError::into_inner)[index]
            .requests
            .push(SeenRequest {
                line: line.clone(),
                headers,
            });
        let (code, body) = answer(&script, site.is_some(), &line);
        let reason = match code {
            200 => "OK",
            403 => "Forbidden",
            _ => "Not Found",
        };
        let response = format!(
            "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: keep-alive\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(response.as_bytes()).await.is_err() || stream.flush().await.is_err() {
            return;
        }
    }
}

/// The request's site, as the contract defines it; single-tenant EMS: always `Default`.
fn site_of(script: &EmsScript, sni: Option<&str>) -> Option<String> {
    if script.sites.is_empty() {
        return Some("Default".to_owned());
    }
    let (label, rest) = sni?.split_once('.')?;
    if !rest.eq_ignore_ascii_case(EMS_HOSTNAME) {
        return None;
    }
    script
        .sites
        .iter()
        .find(|s| s.eq_ignore_ascii_case(label))
        .cloned()
}

fn answer(script: &EmsScript, has_site: bool, line: &str) -> (u16, String) {
    if !has_site {
        return (
            403,
            r#"{"error":"Certificate user does not have access to global."}"#.to_owned(),
        );
    }
    let data = match line.split_once(' ') {
        Some(("GET", SERIAL_NUMBER_PATH)) => serde_json::json!({ "serial_number": script.serial }),
        Some(("GET", CAPABILITIES_PATH)) => serde_json::json!({ "capabilities": script.capabilities }),
        Some(("POST", REGISTER_PATH)) => serde_json::json!({ "status": script.device }),
        _ => return (404, r#"{"error":"not found"}"#.to_owned()),
    };
    (200, serde_json::json!({ "data": data }).to_string())
}

/// A port nothing listens on (bound, then released).
pub(crate) async fn unused_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("address").port()
}

/// A plain TCP listener that accepts connections and never writes to them.
pub(crate) async fn silent_listener() -> (u16, TaskGuard) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    (port, TaskGuard(task))
}
