//! Mutual TLS under the fabric CA: the configurations, the dialer and the accepting side.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_stream::Stream;
use tonic::transport::server::Connected;
use tonic::transport::{Channel, Endpoint, Uri};

use super::faults::Links;
use super::stream::LinkStream;
use crate::wire::crypto_provider;

/// How long a connection may take to complete its TLS handshake before it is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// The protocol every fabric connection speaks inside TLS.
const ALPN_H2: &[u8] = b"h2";

/// Why a party's certificate cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("the fabric CA certificate cannot be used: {0}")]
    Ca(String),
    #[error("the fabric certificate or its key cannot be used: {0}")]
    Identity(rustls::Error),
}

/// One party's certificate chain and key, and the fabric CA it trusts. Cheap to clone.
#[derive(Clone)]
pub struct Credentials {
    ca: CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").finish_non_exhaustive()
    }
}

impl Credentials {
    pub fn new(
        ca: CertificateDer<'static>,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Credentials {
        Credentials {
            ca,
            chain,
            key: Arc::new(key),
        }
    }

    fn roots(&self) -> Result<Arc<RootCertStore>, TlsError> {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.ca.clone())
            .map_err(|e| TlsError::Ca(e.to_string()))?;
        Ok(Arc::new(roots))
    }

    /// The client side: presents this party's certificate, trusts only the fabric CA.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, TlsError> {
        let mut config = ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Identity)?
            .with_root_certificates(self.roots()?)
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
            .map_err(TlsError::Identity)?;
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(Arc::new(config))
    }

    /// The server side: presents this party's certificate and requires a client
    /// certificate that chains to the fabric CA.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let verifier = WebPkiClientVerifier::builder_with_provider(self.roots()?, crypto_provider())
            .build()
            .map_err(|e| TlsError::Ca(e.to_string()))?;
        let mut config = ServerConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Identity)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(TlsError::Identity)?;
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(Arc::new(config))
    }
}

/// Opens channels to fabric parties over TLS and the dialing node's [`Links`].
#[derive(Clone)]
pub struct Dialer {
    tls: TlsConnector,
    links: Links,
}

impl Dialer {
    pub fn new(credentials: &Credentials, links: Links) -> Result<Dialer, TlsError> {
        Ok(Dialer {
            tls: TlsConnector::from(credentials.client_config()?),
            links,
        })
    }

    fn endpoint(addr: SocketAddr, connect_timeout: Duration) -> Endpoint {
        Endpoint::from_shared(format!("http://{addr}"))
            .expect("a socket address makes a valid URI")
            .connect_timeout(connect_timeout)
    }

    /// A channel to `addr` that connects on first use and again after a failure.
    pub fn channel(&self, addr: SocketAddr, connect_timeout: Duration) -> Channel {
        Self::endpoint(addr, connect_timeout).connect_with_connector_lazy(self.clone())
    }

    /// A channel to `addr`, connected now.
    pub async fn connect(
        &self,
        addr: SocketAddr,
        connect_timeout: Duration,
    ) -> Result<Channel, tonic::transport::Error> {
        Self::endpoint(addr, connect_timeout)
            .connect_with_connector(self.clone())
            .await
    }

    async fn dial(
        self,
        uri: Uri,
    ) -> io::Result<TokioIo<tokio_rustls::client::TlsStream<LinkStream<TcpStream>>>> {
        let addr: SocketAddr = uri
            .authority()
            .and_then(|authority| authority.as_str().parse().ok())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{uri} names no socket address"),
                )
            })?;
        let link = self.links.watch(addr);
        // A cut link loses the SYN: nothing happens until it heals or the caller's connect
        // timeout gives up.
        link.healed().await;
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        // The peer's certificate must name the address dialed.
        let name = ServerName::IpAddress(addr.ip().into());
        let tls = self.tls.connect(name, LinkStream::new(tcp, link)).await?;
        Ok(TokioIo::new(tls))
    }
}

impl tower_service::Service<Uri> for Dialer {
    type Response = TokioIo<tokio_rustls::client::TlsStream<LinkStream<TcpStream>>>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(self.clone().dial(uri))
    }
}

/// Who is on the other end of an accepted connection: its address and the common name of
/// the certificate it presented (verified to chain to the fabric CA).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity {
    pub addr: SocketAddr,
    pub common_name: String,
}

/// An accepted, verified connection.
pub struct TlsConnection {
    stream: tokio_rustls::server::TlsStream<TcpStream>,
    peer: PeerIdentity,
}

impl Connected for TlsConnection {
    type ConnectInfo = PeerIdentity;

    fn connect_info(&self) -> PeerIdentity {
        self.peer.clone()
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// The connections of `listener` that complete a mutual TLS handshake under `config`, for
/// tonic's `serve_with_incoming`. A refused handshake (plaintext, a certificate of another
/// CA, none at all) is logged with its reason under `server`'s name and dropped.
/// Handshakes run concurrently; those still running end with the stream.
pub fn serve_tls(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    server: String,
) -> impl Stream<Item = Result<TlsConnection, io::Error>> + Send {
    struct Accepting {
        listener: TcpListener,
        acceptor: TlsAcceptor,
        handshakes: JoinSet<Result<TlsConnection, Refusal>>,
        server: String,
    }
    let state = Accepting {
        listener,
        acceptor: TlsAcceptor::from(config),
        handshakes: JoinSet::new(),
        server,
    };
    futures::stream::unfold(state, |mut state| async move {
        loop {
            tokio::select! {
                accepted = state.listener.accept() => match accepted {
                    Ok((tcp, addr)) => {
                        state.handshakes.spawn(handshake(state.acceptor.clone(), tcp, addr));
                    }
                    Err(error) => tracing::warn!(server = state.server, %error, "accepting a connection failed"),
                },
                Some(done) = state.handshakes.join_next(), if !state.handshakes.is_empty() => match done {
                    Ok(Ok(connection)) => return Some((Ok(connection), state)),
                    Ok(Err(Refusal { peer, reason, hung_up: false })) => tracing::warn!(
                        server = state.server, %peer, reason, "refused a fabric connection"
                    ),
                    Ok(Err(Refusal { peer, reason, hung_up: true })) => tracing::debug!(
                        server = state.server, %peer, reason, "a connection closed during its TLS handshake"
                    ),
                    Err(error) => tracing::warn!(server = state.server, %error, "a TLS handshake task failed"),
                },
            }
        }
    })
}

/// A connection that did not become a verified TLS connection.
struct Refusal {
    peer: SocketAddr,
    reason: String,
    /// The peer went away (a restart, a dropped dial) rather than being turned away.
    hung_up: bool,
}

async fn handshake(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    addr: SocketAddr,
) -> Result<TlsConnection, Refusal> {
    let refused = |reason: String| Refusal {
        peer: addr,
        reason,
        hung_up: false,
    };
    tcp.set_nodelay(true).map_err(|e| refused(e.to_string()))?;
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            let hung_up = matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
            );
            return Err(Refusal {
                hung_up,
                ..refused(format!("TLS handshake failed: {e}"))
            });
        }
        Err(_) => return Err(refused("no TLS handshake within 5 s".to_owned())),
    };
    let common_name = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|leaf| common_name_of(leaf))
        .ok_or_else(|| refused("the client certificate has no common name".to_owned()))?;
    Ok(TlsConnection {
        stream,
        peer: PeerIdentity { addr, common_name },
    })
}

fn common_name_of(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}
