//! Who is asking: API keys (`Authorization: Bearer`, `?access_token=`, and the literal
//! `access_token:` header Ansible sends once), and browser-style sessions opened with
//! `POST /logincheck` and closed with `/logout`, each with its CSRF token
//! (`docs/fortios.md`, "REST API").
//!
//! Passwords are checked by [`Node::check_password`], the one place the SSH server also
//! asks, so a lockout counts failures from both. `Authorization: Basic` is ignored: Ansible
//! sends it before it knows how to log in.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use axum::http::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::node::Node;
use crate::node::accounts::Login;

use super::forms::{cookies, lookup, unquote, urlencoded};

/// A session unused this long is closed: FortiOS's `admintimeout` default, 5 minutes (doc).
const SESSION_IDLE: Duration = Duration::from_secs(5 * 60);
/// Sessions kept at once (ours); opening one more closes the least recently used.
const MAX_SESSIONS: usize = 256;
/// Random bytes in a session id and in a CSRF token (hex-encoded, twice as many digits).
const TOKEN_BYTES: usize = 16;
/// The prefix of the session cookie's name, which ends in digits per device (doc).
const SESSION_COOKIE_PREFIX: &str = "APSCOOKIE_";
/// The CSRF cookie; its value is quoted (doc).
const CSRF_COOKIE: &str = "ccsrftoken";
/// The header carrying the CSRF token on a session's writes (doc).
const CSRF_HEADER: &str = "x-csrftoken";
/// A plain cookie beside the two: the Ansible plugin keeps the session only when it sees
/// one that is neither (`docs/fortios.md`, "REST API") [ours: its name].
const PLAIN_COOKIE: &str = "sid_seen=1; path=/";

/// Who a request comes from.
#[derive(Clone, Debug)]
pub(super) enum Caller {
    /// An API key.
    Token(Login),
    /// A `/logincheck` session and its CSRF token.
    Session { login: Login, csrf: String },
}

impl Caller {
    pub(super) fn login(&self) -> &Login {
        match self {
            Caller::Token(login) | Caller::Session { login, .. } => login,
        }
    }
}

struct Session {
    login: Login,
    csrf: String,
    last_used: Instant,
}

/// The open sessions of one node's REST API.
pub(super) struct Sessions {
    cookie: String,
    open: HashMap<String, Session>,
}

impl Sessions {
    /// No sessions; the cookie name's digits come from `serial`, so they stay put across
    /// restarts as a device's do.
    pub(super) fn new(serial: &str) -> Sessions {
        let digits = serial
            .bytes()
            .fold(5381u32, |hash, byte| hash.wrapping_mul(33) ^ u32::from(byte));
        Sessions {
            cookie: format!("{SESSION_COOKIE_PREFIX}{digits}"),
            open: HashMap::new(),
        }
    }

    fn open(&mut self, login: Login) -> Result<(String, String), StatusCode> {
        let now = Instant::now();
        self.open
            .retain(|_, session| now - session.last_used < SESSION_IDLE);
        if self.open.len() >= MAX_SESSIONS
            && let Some(oldest) = self
                .open
                .iter()
                .min_by_key(|(_, session)| session.last_used)
                .map(|(id, _)| id.clone())
        {
            self.open.remove(&oldest);
        }
        let id = random_hex()?;
        let csrf = random_hex()?;
        let session = Session {
            login,
            csrf: csrf.clone(),
            last_used: now,
        };
        self.open.insert(id.clone(), session);
        Ok((id, csrf))
    }

    fn find(&mut self, headers: &HeaderMap) -> Option<(String, &mut Session)> {
        let now = Instant::now();
        let values = headers.get_all(COOKIE).iter().filter_map(|v| v.to_str().ok());
        let id = cookies(values)
            .into_iter()
            .find(|(name, _)| *name == self.cookie)
            .map(|(_, value)| unquote(&value).to_owned())?;
        let fresh = self
            .open
            .get(&id)
            .is_some_and(|session| now - session.last_used < SESSION_IDLE);
        if !fresh {
            self.open.remove(&id);
            return None;
        }
        let session = self.open.get_mut(&id)?;
        session.last_used = now;
        Some((id, session))
    }
}

/// `TOKEN_BYTES` random bytes as lowercase hex.
fn random_hex() -> Result<String, StatusCode> {
    let mut bytes = [0u8; TOKEN_BYTES];
    crate::wire::crypto_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// The API key a request carries: `Authorization: Bearer`, else `?access_token=`, else
/// an `access_token` header.
fn api_key<'a>(headers: &'a HeaderMap, query: &'a [(String, String)]) -> Option<&'a str> {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    bearer
        .or_else(|| lookup(query, "access_token"))
        .or_else(|| headers.get("access_token").and_then(|value| value.to_str().ok()))
}

/// The caller of a request, or 401.
pub(super) fn authenticate(
    node: &Node,
    sessions: &std::sync::Mutex<Sessions>,
    headers: &HeaderMap,
    query: &[(String, String)],
) -> Result<Caller, StatusCode> {
    if let Some(key) = api_key(headers, query) {
        return node
            .check_api_key(key)
            .map(Caller::Token)
            .ok_or(StatusCode::UNAUTHORIZED);
    }
    let mut sessions = sessions.lock().expect("sessions lock");
    let (_, session) = sessions.find(headers).ok_or(StatusCode::UNAUTHORIZED)?;
    Ok(Caller::Session {
        login: session.login.clone(),
        csrf: session.csrf.clone(),
    })
}

/// Whether the request carries the cookie of an open session (the GUI's pages).
pub(super) fn has_session(sessions: &std::sync::Mutex<Sessions>, headers: &HeaderMap) -> bool {
    sessions.lock().expect("sessions lock").find(headers).is_some()
}

/// FortiOS's built-in read-only access profile (doc).
const READ_ONLY_PROFILE: &str = "super_admin_readonly";

/// A write by an account whose access profile is read-only is refused with 403 (doc:
/// "access profile permissions"); every other profile may write (ours).
pub(super) fn check_profile(caller: &Caller, method: &Method) -> Result<(), StatusCode> {
    if matches!(*method, Method::GET | Method::HEAD) || caller.login().accprofile != READ_ONLY_PROFILE {
        Ok(())
    } else {
        Err(StatusCode::FORBIDDEN)
    }
}

/// A session's write without its CSRF token is refused with 403 (doc); reads and API keys
/// need none.
pub(super) fn check_csrf(caller: &Caller, method: &Method, headers: &HeaderMap) -> Result<(), StatusCode> {
    let Caller::Session { csrf, .. } = caller else {
        return Ok(());
    };
    if matches!(*method, Method::GET | Method::HEAD) {
        return Ok(());
    }
    let sent = headers
        .get(CSRF_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(unquote);
    if sent == Some(csrf.as_str()) {
        Ok(())
    } else {
        Err(StatusCode::FORBIDDEN)
    }
}

/// `POST /logincheck`, form `username` and `secretkey`: body `1` and the session cookies
/// on success, body `0` and no cookie otherwise (also while the address is locked out).
pub(super) fn logincheck(
    node: &Node,
    sessions: &std::sync::Mutex<Sessions>,
    peer: IpAddr,
    body: &[u8],
) -> Response {
    let form = urlencoded(&String::from_utf8_lossy(body));
    let user = lookup(&form, "username").unwrap_or_default();
    let password = lookup(&form, "secretkey").unwrap_or_default();
    let login = match node.check_password(user, password, peer) {
        Ok(login) => login,
        Err(error) => {
            tracing::info!(node = node.name(), %peer, user, %error, "REST login refused");
            return (StatusCode::OK, "0").into_response();
        }
    };
    let mut sessions = sessions.lock().expect("sessions lock");
    let (id, csrf) = match sessions.open(login) {
        Ok(opened) => opened,
        Err(status) => return status.into_response(),
    };
    let set_cookies = [
        format!("{}={id}; path=/; HttpOnly", sessions.cookie),
        format!("{CSRF_COOKIE}=\"{csrf}\"; path=/"),
        PLAIN_COOKIE.to_owned(),
    ];
    let mut response = (StatusCode::OK, "1").into_response();
    for cookie in set_cookies {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(SET_COOKIE, value);
        }
    }
    response
}

/// `GET /logincheck`: Ansible's probe before a token login; `1` when the request carries
/// valid credentials, else `0` (clients ignore the answer).
pub(super) fn login_probe(
    node: &Node,
    sessions: &std::sync::Mutex<Sessions>,
    headers: &HeaderMap,
    query: &[(String, String)],
) -> Response {
    let known = authenticate(node, sessions, headers, query).is_ok();
    (StatusCode::OK, if known { "1" } else { "0" }).into_response()
}

/// `GET|POST /logout`: closes the request's session (if any) and expires its cookies.
pub(super) fn logout(sessions: &std::sync::Mutex<Sessions>, headers: &HeaderMap) -> Response {
    let mut sessions = sessions.lock().expect("sessions lock");
    let found = sessions.find(headers).map(|(id, _)| id);
    if let Some(id) = found {
        sessions.open.remove(&id);
    }
    let expired = [
        format!(
            "{}=; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT",
            sessions.cookie
        ),
        format!("{CSRF_COOKIE}=; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT"),
    ];
    let mut response = (StatusCode::OK, "").into_response();
    for cookie in expired {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(SET_COOKIE, value);
        }
    }
    response
}
