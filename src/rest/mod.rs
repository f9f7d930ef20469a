//! The FortiOS REST API of one node, over HTTPS: what Ansible's `fortinet.fortios`,
//! `fortigate-api` and `fortiosapi` send and read (`docs/fortios.md`, "REST API").
//!
//! [`serve`] answers on the node's `https` listener with the node's certificate (issued
//! by the fabric CA for its hostname and IP) until its shutdown token is cancelled, then
//! joins every connection. Requests enter through one router:
//!
//! - `POST /logincheck`, `GET /logincheck`, `GET|POST /logout`: sessions (`auth`);
//!   `/api/v2/authentication` answers 404, so Ansible falls back to `/logincheck`.
//! - `/api/v2/cmdb/<path>/<name>[/<mkey>]`: the configuration (`cmdb`), changed only
//!   through [`crate::cli::api`], the CLI's own rules and commit path.
//! - `/api/v2/monitor/<…>`: state (`monitor`).
//! - `/`, `/login`, `/ng/…` and `/static/…`: the web GUI (`gui`), pages that log in with
//!   `/logincheck` and then read and change the node through this same API.
//!
//! Every API request is authenticated first (API key or session; 401 otherwise), a
//! session's write must carry its CSRF token (403), `vdom` must be `root` (or `global=1`),
//! and the reply is FortiOS's envelope (`envelope`). Files, in dependency order: `forms`
//! (query strings, forms, cookies), `envelope`, `auth`, `cmdb`, `monitor`, `gui`, this
//! one.
//!
//! A node cannot reach the other nodes from this layer, so the fabric's status that
//! `monitor/system/csf/topology` answers comes from a [`FabricView`] the caller composes
//! (`crate::server` gathers it over gRPC, as `fabricsim status` does).

mod auth;
pub mod client;
mod cmdb;
mod envelope;
mod forms;
mod gui;
mod monitor;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::node::Node;
use crate::sim::ServerIdentity;
use crate::sim::serve::{accept_loop, serve_https, tls_acceptor};

use auth::Sessions;
use envelope::{Envelope, Failure, reply};

/// Largest request body read (ours): a CMDB entry is a few hundred bytes; anything near
/// this is not one.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The only virtual domain a simulated FortiGate has.
const ROOT_VDOM: &str = "root";

/// Why the REST API could not start.
#[derive(Debug, thiserror::Error)]
#[error("node {node}: cannot serve HTTPS: {reason}")]
pub struct RestError {
    node: String,
    reason: String,
}

/// Every node's report of the fabric, as `fabricsim status --json` prints it, gathered
/// when asked: what `monitor/system/csf/topology` and the GUI's topology view show.
pub type FabricView = Arc<dyn Fn() -> BoxFuture<'static, serde_json::Value> + Send + Sync>;

/// What every connection of one node's API shares.
struct Api {
    node: Node,
    sessions: Mutex<Sessions>,
    fabric_view: FabricView,
}

/// One connection's view: the API and the client's address (for the login lockout).
#[derive(Clone)]
struct Ctx {
    api: Arc<Api>,
    peer: IpAddr,
}

/// Serves the REST API and GUI of `node` on `listener` with `identity` until `shutdown`
/// is cancelled; returns once every connection has ended.
pub async fn serve(
    node: Node,
    listener: TcpListener,
    identity: ServerIdentity,
    fabric_view: FabricView,
    shutdown: CancellationToken,
) -> Result<(), RestError> {
    let acceptor = tls_acceptor("REST API", node.name(), identity).map_err(|e| RestError {
        node: node.name().to_owned(),
        reason: e.to_string(),
    })?;
    let api = Arc::new(Api {
        sessions: Mutex::new(Sessions::new(node.serial())),
        fabric_view,
        node,
    });
    let cut = shutdown.clone();
    accept_loop("REST API", listener, shutdown, move |stream, peer: SocketAddr| {
        let (acceptor, api, cut) = (acceptor.clone(), api.clone(), cut.clone());
        async move {
            let ctx = Ctx { api, peer: peer.ip() };
            serve_https("REST API", &acceptor, stream, peer.ip(), &cut, |_| router(ctx)).await;
        }
    })
    .await;
    Ok(())
}

fn router(ctx: Ctx) -> Router {
    Router::new()
        .route("/logincheck", get(login_probe).post(logincheck))
        .route("/logout", get(logout).post(logout))
        .route("/api/v2/authentication", any(|| async { StatusCode::NOT_FOUND }))
        .route("/api/v2/cmdb/{*rest}", any(api_request))
        .route("/api/v2/monitor/{*rest}", any(api_request))
        .route("/", get(gui_page))
        .route("/login", get(gui_page))
        .route("/ng", get(gui_page))
        .route("/ng/", get(gui_page))
        .route("/ng/{*page}", get(gui_page))
        .route("/static/{file}", get(gui::asset))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .with_state(ctx)
}

async fn logincheck(State(ctx): State<Ctx>, body: Body) -> Response {
    match read_body(body).await {
        Ok(bytes) => auth::logincheck(&ctx.api.node, &ctx.api.sessions, ctx.peer, &bytes),
        Err(status) => status.into_response(),
    }
}

async fn login_probe(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap) -> Response {
    let query = forms::urlencoded(uri.query().unwrap_or_default());
    auth::login_probe(&ctx.api.node, &ctx.api.sessions, &headers, &query)
}

/// A page of the GUI: the login page, or the application for a logged-in session.
async fn gui_page(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap) -> Response {
    let logged_in = auth::has_session(&ctx.api.sessions, &headers);
    gui::page(uri.path(), logged_in)
}

async fn logout(State(ctx): State<Ctx>, headers: HeaderMap) -> Response {
    auth::logout(&ctx.api.sessions, &headers)
}

/// The body, or 413 when it is larger than [`MAX_BODY_BYTES`].
async fn read_body(body: Body) -> Result<axum::body::Bytes, StatusCode> {
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| StatusCode::PAYLOAD_TOO_LARGE)
}

/// A CMDB or monitor request: authentication, CSRF, vdom, then the handler.
async fn api_request(
    State(ctx): State<Ctx>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let node = &ctx.api.node;
    let query = forms::urlencoded(uri.query().unwrap_or_default());
    let caller = match auth::authenticate(node, &ctx.api.sessions, &headers, &query) {
        Ok(caller) => caller,
        Err(status) => return status.into_response(),
    };
    let permitted =
        auth::check_csrf(&caller, &method, &headers).and_then(|()| auth::check_profile(&caller, &method));
    if let Err(status) = permitted {
        return status.into_response();
    }
    tracing::debug!(node = node.name(), user = caller.login().user, %method, path = uri.path(), "REST request");
    let (monitor, route) = match uri.path().strip_prefix("/api/v2/cmdb/") {
        Some(route) => (false, route),
        None => (
            true,
            uri.path().strip_prefix("/api/v2/monitor/").unwrap_or_default(),
        ),
    };
    let segments: Vec<String> = route.split('/').map(forms::urlencoded_value).collect();
    let mut envelope = Envelope {
        method: method.to_string(),
        path: segments.first().cloned().unwrap_or_default(),
        name: segments.get(1).cloned().unwrap_or_default(),
        vdom: ROOT_VDOM.to_owned(),
        serial: node.serial().to_owned(),
        release: crate::cli::firmware_release(crate::cli::Backend::config(node).firmware()),
        mkey: None,
    };
    let outcome = match (vdom(&query), read_body(body).await) {
        (Err(failure), _) => Err(failure),
        (_, Err(status)) => Err(Failure::status(status)),
        (Ok(()), Ok(bytes)) if monitor => {
            let route = segments.join("/");
            monitor::handle(
                node,
                &ctx.api.fabric_view,
                &route,
                &method,
                &envelope,
                &query,
                &bytes,
            )
            .await
        }
        (Ok(()), Ok(bytes)) => {
            envelope.mkey = segments.get(2).filter(|key| !key.is_empty()).cloned();
            match (segments.len(), cmdb::resource(&envelope.path, &envelope.name)) {
                (2 | 3, Some(resource)) => {
                    let action = forms::lookup(&query, "action");
                    cmdb::handle(node, resource, &method, &envelope, action, &bytes).await
                }
                _ => Err(Failure::status(StatusCode::NOT_FOUND)),
            }
        }
    };
    reply(outcome.unwrap_or_else(|failure| envelope.failed(&failure)))
}

/// `?vdom=root` (or none, or `global=1`); another virtual domain does not exist here.
fn vdom(query: &[(String, String)]) -> Result<(), Failure> {
    match forms::lookup(query, "vdom") {
        None => Ok(()),
        Some(vdom) if vdom == ROOT_VDOM => Ok(()),
        Some(_) => Err(Failure::status(StatusCode::NOT_FOUND)),
    }
}
