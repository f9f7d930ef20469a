//! A small HTTPS client of the REST API, for the benchmark and the tests: one TLS
//! connection (verified against the fabric's CAs, for the node's IP), HTTP/1.1 requests
//! one at a time on it, and the cookies the API set kept for the next request, as a
//! browser or `requests.Session` would.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Largest reply read: the biggest envelope is a few kilobytes.
const MAX_REPLY_BYTES: usize = 1024 * 1024;

/// Why a request could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS with {addr} failed: {reason}")]
    Tls { addr: SocketAddr, reason: String },
    #[error("HTTP exchange failed: {0}")]
    Http(String),
}

/// One reply.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: StatusCode,
    /// Every `Set-Cookie` value, as sent.
    pub set_cookies: Vec<String>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON (`Null` when it is none).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A connection to one node's REST API.
pub struct RestClient {
    sender: SendRequest<Body>,
    host: String,
    /// `name=value` of every cookie set so far, sent back on each request.
    cookies: Vec<(String, String)>,
    _connection: tokio::task::JoinHandle<()>,
}

impl RestClient {
    /// Connects to `addr`, trusting `anchors` for a certificate naming `addr`'s IP.
    pub async fn connect(
        addr: SocketAddr,
        anchors: &[CertificateDer<'static>],
    ) -> Result<RestClient, ClientError> {
        let mut roots = rustls::RootCertStore::empty();
        for anchor in anchors {
            roots.add(anchor.clone()).map_err(|e| ClientError::Tls {
                addr,
                reason: e.to_string(),
            })?;
        }
        let config = rustls::ClientConfig::builder_with_provider(crate::wire::crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Tls {
                addr,
                reason: e.to_string(),
            })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|source| ClientError::Connect { addr, source })?;
        let tls = TlsConnector::from(Arc::new(config))
            .connect(ServerName::IpAddress(addr.ip().into()), tcp)
            .await
            .map_err(|e| ClientError::Tls {
                addr,
                reason: e.to_string(),
            })?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let connection = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(RestClient {
            sender,
            host: addr.to_string(),
            cookies: Vec::new(),
            _connection: connection,
        })
    }

    /// Sends `method path` with `headers` and `body`; the reply's cookies are kept.
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Reply, ClientError> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host);
        if !self.cookies.is_empty() {
            let cookie: Vec<String> = self.cookies.iter().map(|(n, v)| format!("{n}={v}")).collect();
            request = request.header("cookie", cookie.join("; "));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Body::from(body.to_vec()))
            .map_err(|e| ClientError::Http(e.to_string()))?;
        self.sender
            .ready()
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let status = response.status();
        let set_cookies: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|value| value.to_str().ok().map(str::to_owned))
            .collect();
        for cookie in &set_cookies {
            self.keep_cookie(cookie);
        }
        let body = axum::body::to_bytes(Body::new(response.into_body()), MAX_REPLY_BYTES)
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        Ok(Reply {
            status,
            set_cookies,
            body: body.to_vec(),
        })
    }

    /// The value of the cookie `name` the API set, if any.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.as_str())
    }

    fn keep_cookie(&mut self, set_cookie: &str) {
        let Some((name, value)) = set_cookie.split(';').next().and_then(|pair| pair.split_once('=')) else {
            return;
        };
        let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
        self.cookies.retain(|(n, _)| *n != name);
        if !value.is_empty() {
            self.cookies.push((name, value));
        }
    }
}
