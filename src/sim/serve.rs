//! What every simulated HTTPS server shares: the TLS acceptor, the accept loop that joins
//! its connections on shutdown, one connection's TLS handshake followed by HTTP/1.1, and
//! how an API refuses a request (an [`ErrorBody`], also for unknown paths and methods).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::SimError;
use super::pki::ServerIdentity;
use crate::wire::ErrorBody;

/// How long a client may take to complete the TLS handshake before the server gives up on
/// the connection; a real server's bound on half-open handshakes.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed `accept` (e.g. out of file descriptors) before the next one, so
/// the loop does not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// A refusal: `status` with `{"error": "<error>"}`.
pub(super) fn refusal(status: StatusCode, error: String) -> Response {
    (status, Json(ErrorBody { error })).into_response()
}

/// `router` answering an unknown path with 404 and a known path asked with another method
/// with 405, each with an [`ErrorBody`] naming the request.
pub(super) fn with_fallbacks<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router
        .fallback(|method: Method, uri: Uri| async move {
            refusal(
                StatusCode::NOT_FOUND,
                format!("no such API: {method} {}", uri.path()),
            )
        })
        .method_not_allowed_fallback(|method: Method, uri: Uri| async move {
            refusal(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("method {method} is not allowed on {}", uri.path()),
            )
        })
}

/// The TLS side of a server: the identity's chain and key, HTTP/1.1 over ALPN. `server`
/// and `name` say whose it is in errors.
pub fn tls_acceptor(
    server: &'static str,
    name: &str,
    identity: ServerIdentity,
) -> Result<TlsAcceptor, SimError> {
    let tls_error = |source| SimError::Tls {
        server,
        name: name.to_owned(),
        source,
    };
    let provider = crate::wire::crypto_provider();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_no_client_auth()
        .with_single_cert(identity.chain, identity.key)
        .map_err(tls_error)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accepts connections until `token` is cancelled, running `serve` for each in a task of
/// its own; then drops the listener and joins every connection task. `server` names the
/// server in logs.
pub async fn accept_loop<F, Fut>(
    server: &'static str,
    listener: TcpListener,
    token: CancellationToken,
    serve: F,
) where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = token.cancelled() => break,
            Some(joined) = connections.join_next(), if !connections.is_empty() => {
                if let Err(error) = joined {
                    tracing::error!(%error, server, "connection task failed");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(serve(stream, peer));
                }
                Err(error) => {
                    tracing::warn!(%error, server, "accept failed");
                    tokio::select! {
                        () = token.cancelled() => break,
                        () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => {}
                    }
                }
            },
        }
    }
    drop(listener);
    while let Some(joined) = connections.join_next().await {
        if let Err(error) = joined {
            tracing::error!(%error, server, "connection task failed");
        }
    }
}

/// One accepted connection: the TLS handshake, then HTTP/1.1 with the router `route`
/// builds from the SNI name the client sent, until the client leaves or `cut` is
/// cancelled.
pub async fn serve_https(
    server: &'static str,
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    peer: IpAddr,
    cut: &CancellationToken,
    route: impl FnOnce(Option<&str>) -> Router,
) {
    let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream));
    let tls = tokio::select! {
        () = cut.cancelled() => return,
        result = handshake => match result {
            Ok(Ok(tls)) => tls,
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, server, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, server, "TLS handshake timed out");
                return;
            }
        },
    };
    let router = route(tls.get_ref().1.server_name());
    let service = TowerToHyperService::new(router);
    let connection = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), service);
    tokio::select! {
        () = cut.cancelled() => {}
        result = connection => {
            if let Err(error) = result {
                tracing::debug!(%peer, %error, server, "connection ended with an error");
            }
        }
    }
}
