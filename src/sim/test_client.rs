//! Test fixtures of the simulated servers: a PKI in a temporary directory, and a client
//! that speaks raw HTTP/1.1 over verified TLS, for the answers and faults the FortiGate
//! side never asks for. Nothing here is built outside tests.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::Pki;
use crate::wire::SERIAL_HEADER;
use crate::wire::ems::HOSTNAME_HEADER;

/// How long a client waits for a server to close a connection: a deadline to fail by.
const CLOSE_DEADLINE: Duration = Duration::from_secs(5);

/// A PKI in a temporary directory.
pub(super) struct Lab {
    _dir: tempfile::TempDir,
    pub(super) pki: Pki,
}

/// A fresh [`Lab`].
pub(super) fn lab() -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::open(dir.path()).unwrap();
    Lab { _dir: dir, pki }
}

/// A FortiGate's side of one connection: TLS verified against `anchors`, then HTTP/1.1
/// requests on the kept-alive connection.
pub(super) struct Client {
    tls: TlsStream<TcpStream>,
    /// The name the handshake verified, sent as `Host`.
    host: String,
    received: Vec<u8>,
}

/// One HTTP answer: status code and JSON body.
#[derive(Debug)]
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) body: Value,
}

impl Client {
    /// Connects from `source` (any loopback address when `None`) to `addr` and completes
    /// the handshake for `server_name` (a DNS name, or an IP address, which sends no SNI).
    pub(super) async fn connect(
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
        let provider = crate::wire::crypto_provider();
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from(server_name.to_owned()).unwrap();
        let tls = TlsConnector::from(Arc::new(config)).connect(name, stream).await?;
        Ok(Client {
            tls,
            host: server_name.to_owned(),
            received: Vec::new(),
        })
    }

    /// Sends a request as FortiGate `serial` (no identity headers when `None`) and reads
    /// the answer.
    pub(super) async fn call(&mut self, method: &str, path: &str, serial: Option<&str>) -> Answer {
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        if let Some(serial) = serial {
            request.push_str(&format!(
                "{SERIAL_HEADER}: {serial}\r\n{HOSTNAME_HEADER}: FGT-{serial}\r\n"
            ));
        }
        request.push_str("Content-Length: 0\r\n\r\n");
        self.tls.write_all(request.as_bytes()).await.unwrap();
        self.read_answer().await
    }

    async fn read_answer(&mut self) -> Answer {
        let head_end = loop {
            if let Some(end) = self.received.windows(4).position(|window| window == b"\r\n\r\n") {
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
        assert!(n > 0, "the server closed the connection mid-answer");
        self.received.extend_from_slice(&buffer[..n]);
    }

    /// Waits until the server closes the connection (end of stream or an error).
    pub(super) async fn closed_by_peer(&mut self) -> bool {
        let mut buffer = [0u8; 64];
        matches!(
            tokio::time::timeout(CLOSE_DEADLINE, self.tls.read(&mut buffer)).await,
            Ok(Ok(0) | Err(_))
        )
    }
}
