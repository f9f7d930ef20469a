//! The JSON envelope of every REST reply, as FortiOS sends it and clients read it
//! (`docs/fortios.md`, "REST API"): the request's `http_method`, `path` and `name`, the
//! `vdom`, `status` (`success`|`error`) and `http_status`, and the device's `serial`,
//! `version` and `build`; then `results` (always a list on CMDB reads), the `mkey` of
//! one entry, the `revision`s of a write, or the `error` code and `cli_error` text of a
//! refusal.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::cli::FirmwareRelease;

/// What every reply to one request repeats.
#[derive(Clone, Debug)]
pub(super) struct Envelope {
    /// `GET`, `POST`, `PUT`, `DELETE`.
    pub(super) method: String,
    /// The first part of the API path (`endpoint-control`).
    pub(super) path: String,
    /// The second part (`fctems`).
    pub(super) name: String,
    /// The virtual domain answered for.
    pub(super) vdom: String,
    /// The device's serial number.
    pub(super) serial: String,
    /// The firmware the device runs (`version`, `build`).
    pub(super) release: FirmwareRelease,
    /// The entry the request named, if any.
    pub(super) mkey: Option<String>,
}

/// A refusal: HTTP status and, for a refused change, FortiOS's code and CLI text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Failure {
    pub(super) status: StatusCode,
    /// The negative FortiOS code (`-5`, `-61`).
    pub(super) code: Option<i32>,
    /// The lines the CLI prints for the same refusal, joined by newlines.
    pub(super) cli_error: Option<String>,
}

impl Failure {
    /// A refusal that carries only its HTTP status.
    pub(super) fn status(status: StatusCode) -> Failure {
        Failure {
            status,
            code: None,
            cli_error: None,
        }
    }

    /// A refused change: `lines` as the CLI prints them, ending with `code`.
    pub(super) fn cli(status: StatusCode, code: i32, lines: &[String]) -> Failure {
        Failure {
            status,
            code: Some(code),
            cli_error: Some(lines.join("\n")),
        }
    }
}

impl Envelope {
    /// The fields every reply has, with `status` and `http_status`.
    fn base(&self, status: StatusCode) -> Map<String, Value> {
        let release = self.release;
        let success = status.is_success();
        let mut body = Map::new();
        body.insert("http_method".into(), json!(self.method));
        body.insert("status".into(), json!(if success { "success" } else { "error" }));
        body.insert("http_status".into(), json!(status.as_u16()));
        body.insert("vdom".into(), json!(self.vdom));
        body.insert("path".into(), json!(self.path));
        body.insert("name".into(), json!(self.name));
        if let Some(mkey) = &self.mkey {
            body.insert("mkey".into(), json!(mkey));
        }
        body.insert("serial".into(), json!(self.serial));
        body.insert("version".into(), json!(release.version));
        body.insert("build".into(), json!(release.build));
        body
    }

    /// A read: `results` and the configuration `revision`.
    pub(super) fn results(&self, results: Value, revision: Option<u64>) -> Map<String, Value> {
        let mut body = self.base(StatusCode::OK);
        body.insert("results".into(), results);
        if let Some(revision) = revision {
            body.insert("revision".into(), json!(revision.to_string()));
        }
        body
    }

    /// A write: the revision before and after, and whether it changed.
    pub(super) fn written(&self, old_revision: u64, revision: u64, changed: bool) -> Map<String, Value> {
        let mut body = self.base(StatusCode::OK);
        body.insert("revision".into(), json!(revision.to_string()));
        body.insert("revision_changed".into(), json!(changed));
        body.insert("old_revision".into(), json!(old_revision.to_string()));
        body
    }

    /// A refusal.
    pub(super) fn failed(&self, failure: &Failure) -> Map<String, Value> {
        let mut body = self.base(failure.status);
        if let Some(code) = failure.code {
            body.insert("error".into(), json!(code));
        }
        if let Some(text) = &failure.cli_error {
            body.insert("cli_error".into(), json!(text));
        }
        body
    }
}

/// `body` with its `http_status` as the HTTP status.
pub(super) fn reply(body: Map<String, Value>) -> Response {
    let status = body
        .get("http_status")
        .and_then(Value::as_u64)
        .and_then(|code| u16::try_from(code).ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(Value::Object(body))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::firmware_release;
    use crate::domain::Firmware;

    fn envelope(mkey: Option<&str>) -> Envelope {
        Envelope {
            method: "GET".to_owned(),
            path: "endpoint-control".to_owned(),
            name: "fctems".to_owned(),
            vdom: "root".to_owned(),
            serial: "FGVM01TM22000001".to_owned(),
            release: firmware_release(Firmware::parse("7.0.12").unwrap()),
            mkey: mkey.map(str::to_owned),
        }
    }

    #[test]
    fn reads_carry_results_as_a_list_and_the_device() {
        let body = envelope(Some("ems1")).results(json!([{"name": "ems1", "https-port": 443}]), Some(7));
        let release = envelope(None).release;
        assert_eq!(
            Value::Object(body),
            json!({
                "http_method": "GET", "status": "success", "http_status": 200, "vdom": "root",
                "path": "endpoint-control", "name": "fctems", "mkey": "ems1",
                "serial": "FGVM01TM22000001", "version": release.version, "build": release.build,
                "results": [{"name": "ems1", "https-port": 443}], "revision": "7",
            })
        );
    }

    #[test]
    fn writes_and_refusals_have_fortios_fields() {
        let mut post = envelope(Some("ems1"));
        post.method = "POST".to_owned();
        let body = post.written(33, 34, true);
        assert_eq!(body["revision"], json!("34"));
        assert_eq!(body["old_revision"], json!("33"));
        assert_eq!(body["revision_changed"], json!(true));
        assert!(!body.contains_key("results"));

        let lines = [
            "command parse error before 'colour'".to_owned(),
            "Command fail. Return code -61".to_owned(),
        ];
        let failure = Failure::cli(StatusCode::INTERNAL_SERVER_ERROR, -61, &lines);
        let body = post.failed(&failure);
        assert_eq!(body["status"], json!("error"));
        assert_eq!(body["http_status"], json!(500));
        assert_eq!(body["error"], json!(-61));
        assert_eq!(body["cli_error"], json!(lines.join("\n")));
        assert_eq!(reply(body).status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
