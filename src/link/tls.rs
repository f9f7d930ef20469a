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
/// What a fabric connection speaks inside TLS, agreed by ALPN in the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// gRPC over HTTP/2: every service of a node and of the simulator.
    Grpc,
    /// Raft's AppendEntries from a leader to one peer, in frames of its own
    /// ([`crate::raft::append`]).
    Raft,
}

impl Protocol {
    fn alpn(self) -> &'static [u8] {
        match self {
            Protocol::Grpc => b"h2",
            Protocol::Raft => b"fabricsim-raft/1",
        }
    }

    /// The protocol a finished handshake agreed on. A client that offered none speaks
    /// HTTP/2, as gRPC clients outside the fabric may.
    fn agreed(alpn: Option<&[u8]>) -> Protocol {
        match alpn {
            Some(alpn) if alpn == Protocol::Raft.alpn() => Protocol::Raft,
            _ => Protocol::Grpc,
        }
    }
}

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

    /// The client side: presents this party's certificate, trusts only the fabric CA, and
    /// speaks `protocol`.
    pub fn client_config(&self, protocol: Protocol) -> Result<Arc<ClientConfig>, TlsError> {
        let mut config = ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Identity)?
            .with_root_certificates(self.roots()?)
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
            .map_err(TlsError::Identity)?;
        config.alpn_protocols = vec![protocol.alpn().to_vec()];
        Ok(Arc::new(config))
    }

    /// The server side: presents this party's certificate, requires a client certificate
    /// that chains to the fabric CA, and speaks any of `protocols`.
    pub fn server_config(&self, protocols: &[Protocol]) -> Result<Arc<ServerConfig>, TlsError> {
        let verifier = WebPkiClientVerifier::builder_with_provider(self.roots()?, crypto_provider())
            .build()
            .map_err(|e| TlsError::Ca(e.to_string()))?;
        let mut config = ServerConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Identity)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(TlsError::Identity)?;
        config.alpn_protocols = protocols
            .iter()
            .map(|protocol| protocol.alpn().to_vec())
            .collect();
        Ok(Arc::new(config))
    }
}

/// A connection a [`Dialer`] opened: TLS over TCP under the link's faults.
pub type FabricStream = tokio_rustls::client::TlsStream<LinkStream<TcpStream>>;

/// Opens connections to fabric parties over TLS and the dialing node's [`Links`]: gRPC
/// channels, and Raft streams.
#[derive(Clone)]
pub struct Dialer {
    grpc: TlsConnector,
    raft: TlsConnector,
    links: Links,
}

impl Dialer {
    pub fn new(credentials: &Credentials, links: Links) -> Result<Dialer, TlsError> {
        Ok(Dialer {
            grpc: TlsConnector::from(credentials.client_config(Protocol::Grpc)?),
            raft: TlsConnector::from(credentials.client_config(Protocol::Raft)?),
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

    /// A connection to `addr` speaking [`Protocol::Raft`], or why there is none within
    /// `connect_timeout` (a cut link, a peer that is down).
    pub async fn open_raft(&self, addr: SocketAddr, connect_timeout: Duration) -> io::Result<FabricStream> {
        let connecting = self.open(&self.raft, addr);
        tokio::time::timeout(connect_timeout, connecting)
            .await
            .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "no connection in time")))
    }

    async fn open(&self, tls: &TlsConnector, addr: SocketAddr) -> io::Result<FabricStream> {
        let link = self.links.watch(addr);
        // A cut link loses the SYN: nothing happens until it heals or the caller's connect
        // timeout gives up.
        link.healed().await;
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        // The peer's certificate must name the address dialed.
        let name = ServerName::IpAddress(addr.ip().into());
        tls.connect(name, LinkStream::new(tcp, link)).await
    }

    async fn dial(self, uri: Uri) -> io::Result<TokioIo<FabricStream>> {
        let addr: SocketAddr = uri
            .authority()
            .and_then(|authority| authority.as_str().parse().ok())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{uri} names no socket address"),
                )
            })?;
        Ok(TokioIo::new(self.open(&self.grpc, addr).await?))
    }
}

impl tower_service::Service<Uri> for Dialer {
    type Response = TokioIo<FabricStream>;
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
    protocol: Protocol,
}

impl TlsConnection {
    pub fn peer(&self) -> &PeerIdentity {
        &self.peer
    }

    pub fn protocol(&self) -> Protocol {
        self.protocol
    }
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
    let protocol = Protocol::agreed(stream.get_ref().1.alpn_protocol());
    Ok(TlsConnection {
        stream,
        peer: PeerIdentity { addr, common_name },
        protocol,
    })
}

fn common_name_of(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}
