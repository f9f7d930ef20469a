//! The web GUI of a node: the FortiOS pages that configure the FortiClient EMS connector
//! (`docs/fortios.md#web-gui`), served from the binary on the REST API's listener.
//!
//! The pages are static HTML with one script; everything they show or change goes
//! through the same REST API that Ansible and fortigate-api use, with the session that
//! `POST /logincheck` opens (its cookie, and its CSRF token on every write). So a form
//! is checked by the CLI's rules and refused with the CLI's words, and the browser and
//! automation always see the same facts.
//!
//! - `/login`: the login form.
//! - `/`: to `/ng/` with a session, else to `/login`.
//! - `/ng/…`: the application (every page is the same document; the script renders the
//!   page the path names), or to `/login` without a session.
//! - `/static/<file>`: the script and the style sheet, readable without a session, as a
//!   login page needs them.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The login page.
const LOGIN_HTML: &str = include_str!("login.html");
/// The application's document: the frame the script fills.
const APP_HTML: &str = include_str!("app.html");
/// The application: pages, the REST calls behind them, polling.
const APP_JS: &str = include_str!("app.js");
/// The look of both documents.
const APP_CSS: &str = include_str!("app.css");

/// Where a logged-in browser lands.
const HOME: &str = "/ng/";
/// Where a browser without a session is sent.
const LOGIN: &str = "/login";

/// The page for `path` (`/`, `/login`, `/ng/…`) for a browser that is `logged_in` or not.
pub(super) fn page(path: &str, logged_in: bool) -> Response {
    match (path, logged_in) {
        (LOGIN, _) => document("text/html; charset=utf-8", LOGIN_HTML),
        ("/", true) => redirect(HOME),
        (_, false) => redirect(LOGIN),
        (_, true) => document("text/html; charset=utf-8", APP_HTML),
    }
}

/// `/static/<file>`: the script or the style sheet.
pub(super) async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    match file.as_str() {
        "app.js" => document("text/javascript; charset=utf-8", APP_JS),
        "app.css" => document("text/css; charset=utf-8", APP_CSS),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `body` as `content_type`, never cached: a restarted node may serve another release.
fn document(content_type: &'static str, body: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A `302 Found` to `to`.
fn redirect(to: &'static str) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    response
        .headers_mut()
        .insert(LOCATION, HeaderValue::from_static(to));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_need_a_session_and_the_root_lands_on_the_application() {
        let location = |response: &Response| response.headers().get(LOCATION).cloned();
        assert_eq!(page("/", false).status(), StatusCode::FOUND);
        assert_eq!(location(&page("/", false)).unwrap(), LOGIN);
        assert_eq!(location(&page("/", true)).unwrap(), HOME);
        assert_eq!(location(&page("/ng/fabric/connectors", false)).unwrap(), LOGIN);
        assert_eq!(page("/ng/fabric/connectors", true).status(), StatusCode::OK);
        assert_eq!(page(LOGIN, false).status(), StatusCode::OK);
    }

    #[test]
    fn every_asset_the_documents_load_is_served() {
        for document in [LOGIN_HTML, APP_HTML] {
            for rest in document.split("/static/").skip(1) {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
                    .collect();
                assert!(
                    ["app.js", "app.css"].contains(&name.as_str()),
                    "a document loads /static/{name}, which is not served"
                );
            }
        }
    }
}
