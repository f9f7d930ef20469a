//! The FortiOS REST API on every node, driven over HTTPS as Ansible, fortigate-api and
//! fortiosapi drive it: token and session logins, CSRF, the CMDB envelope and refusals,
//! replication of a REST write, the member refusal, the monitor endpoints, the lockout.

use std::path::Path;

use axum::http::{Method, StatusCode};
use fabricsim::harness::{Fabric, generated_topology};
use fabricsim::rest::client::{Reply, RestClient};
use fabricsim::topology::{ApiUserSpec, Topology};
use serde_json::{Value, json};

use crate::CONVERGE;

/// The fixed API key the tests' topologies give `automation`.
const KEY: &str = "restTestKey0123456789abcdefghij";
/// The key of a read-only API user.
const READER_KEY: &str = "restReaderKey0123456789abcdefgh";
/// The administrator password of the tests' topologies.
const PASSWORD: &str = "fabricsim-test";

/// `topology` with the tests' administrator password and API user.
fn with_accounts(mut topology: Topology) -> Topology {
    topology.admin.password = PASSWORD.to_owned();
    topology.api_users.push(ApiUserSpec {
        name: "automation".to_owned(),
        key: Some(KEY.to_owned()),
        accprofile: "super_admin".to_owned(),
    });
    topology
}

fn bearer() -> (&'static str, String) {
    ("authorization", format!("Bearer {KEY}"))
}

async fn call(
    client: &mut RestClient,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    client
        .request(method.clone(), path, headers, body)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// A request with the API key.
async fn token(client: &mut RestClient, method: Method, path: &str, body: Value) -> Reply {
    let (name, value) = bearer();
    let body = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    call(client, method, path, &[(name, &value)], &body).await
}

const FCTEMS: &str = "/api/v2/cmdb/endpoint-control/fctems";
/// How often a wait on a REST answer asks again.
const POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// A request that must be refused: method, path, body, HTTP status, FortiOS code.
type Refused = (Method, String, Vec<u8>, StatusCode, Option<i64>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_cookies_csrf_and_logout_follow_fortios() {
    let fabric = Fabric::start(with_accounts(generated_topology("rest-auth", 1)))
        .await
        .expect("fabric starts");
    let mut client = fabric
        .rest("root")
        .await
        .expect("connects over TLS to the fabric CA's certificate");
    let status = "/api/v2/monitor/system/status";

    // No or wrong credentials: 401. Basic is not a login.
    assert_eq!(
        call(&mut client, Method::GET, status, &[], b"").await.status,
        StatusCode::UNAUTHORIZED
    );
    let wrong = [("authorization", "Bearer notthekey0000000000000000")];
    assert_eq!(
        call(&mut client, Method::GET, status, &wrong, b"").await.status,
        StatusCode::UNAUTHORIZED
    );
    let basic = [("authorization", "Basic YWRtaW46ZmFicmljc2lt")];
    assert_eq!(
        call(&mut client, Method::GET, status, &basic, b"").await.status,
        StatusCode::UNAUTHORIZED
    );

    // The key, three ways.
    let reply = token(&mut client, Method::GET, status, Value::Null).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["status"], "success");
    assert_eq!(body["serial"], "FGVM01TM22000001");
    assert_eq!(body["results"]["hostname"], "FGT-root");
    assert!(body["version"].as_str().unwrap().starts_with('v'), "{body}");
    assert!(body["build"].is_u64(), "{body}");
    let by_query = format!("{status}?access_token={KEY}");
    assert_eq!(
        call(&mut client, Method::GET, &by_query, &[], b"").await.status,
        StatusCode::OK
    );
    let header = [("access_token", KEY)];
    assert_eq!(
        call(&mut client, Method::GET, status, &header, b"").await.status,
        StatusCode::OK
    );
    let (name, value) = bearer();
    let probe = call(&mut client, Method::GET, "/logincheck", &[(name, &value)], b"").await;
    assert_eq!(probe.status, StatusCode::OK);
    let auth = call(&mut client, Method::POST, "/api/v2/authentication", &basic, b"{}").await;
    assert_eq!(auth.status, StatusCode::NOT_FOUND);

    // A wrong password: body 0, no CSRF cookie.
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let bad = call(
        &mut client,
        Method::POST,
        "/logincheck",
        &form,
        b"username=admin&secretkey=nope&ajax=1",
    )
    .await;
    assert_eq!((bad.status, bad.text().as_str()), (StatusCode::OK, "0"));
    assert!(
        bad.set_cookies.iter().all(|c| !c.starts_with("ccsrftoken")),
        "{:?}",
        bad.set_cookies
    );

    // The right one: body 1, APSCOOKIE_<n>, a quoted ccsrftoken and one plain cookie.
    let login = format!("username=admin&secretkey={PASSWORD}&ajax=1");
    let good = call(&mut client, Method::POST, "/logincheck", &basic, login.as_bytes()).await;
    assert!(good.text().starts_with('1'), "{}", good.text());
    assert!(
        good.set_cookies.iter().any(|c| c.starts_with("APSCOOKIE_")),
        "{:?}",
        good.set_cookies
    );
    let csrf = client.cookie("ccsrftoken").expect("a CSRF cookie").to_owned();
    assert!(csrf.starts_with('"') && csrf.ends_with('"'), "{csrf}");
    assert!(
        good.set_cookies.iter().any(|c| c.starts_with("sid_seen=")),
        "{:?}",
        good.set_cookies
    );

    // The session reads; its writes need the token, quoted or not.
    assert_eq!(
        call(&mut client, Method::GET, FCTEMS, &[], b"").await.status,
        StatusCode::OK
    );
    let entry = json!({"name": "ems1", "server": "127.0.50.1"}).to_string();
    let no_csrf = call(&mut client, Method::POST, FCTEMS, &[], entry.as_bytes()).await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    let forged = call(
        &mut client,
        Method::POST,
        FCTEMS,
        &[("X-CSRFTOKEN", "forged")],
        entry.as_bytes(),
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let written = call(
        &mut client,
        Method::POST,
        FCTEMS,
        &[("x-csrftoken", &csrf)],
        entry.as_bytes(),
    )
    .await;
    assert_eq!(written.status, StatusCode::OK, "{}", written.text());
    let unquoted = csrf.trim_matches('"').to_owned();
    let path = format!("{FCTEMS}/ems1");
    let put = json!({"https-port": 8443}).to_string();
    let updated = call(
        &mut client,
        Method::PUT,
        &path,
        &[("X-CSRFTOKEN", &unquoted)],
        put.as_bytes(),
    )
    .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text());

    // Logout ends the session.
    assert_eq!(
        call(&mut client, Method::POST, "/logout", &[], b"").await.status,
        StatusCode::OK
    );
    assert_eq!(
        call(&mut client, Method::GET, FCTEMS, &[], b"").await.status,
        StatusCode::UNAUTHORIZED
    );
    fabric.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_wrong_passwords_lock_the_address_out() {
    let mut topology = with_accounts(generated_topology("rest-lockout", 1));
    topology.api_users.push(ApiUserSpec {
        name: "reader".to_owned(),
        key: Some(READER_KEY.to_owned()),
        accprofile: "super_admin_readonly".to_owned(),
    });
    let fabric = Fabric::start(topology).await.expect("fabric starts");
    let mut client = fabric.rest("root").await.unwrap();
    // An administrator added with the CLI logs in with the password it was given.
    let added = fabric
        .exec(
            "root",
            &[
                "config system admin",
                "edit ops",
                "set password s3cret-ops",
                "end",
            ],
        )
        .await
        .unwrap();
    assert!(!added.failed, "{}", added.output);
    let ops = call(
        &mut client,
        Method::POST,
        "/logincheck",
        &[],
        b"username=ops&secretkey=s3cret-ops",
    )
    .await;
    assert_eq!(ops.text(), "1");
    let shown = fabric.exec("root", &["show system admin"]).await.unwrap();
    assert!(!shown.output.contains("s3cret"), "{}", shown.output);
    for _ in 0..3 {
        let reply = call(
            &mut client,
            Method::POST,
            "/logincheck",
            &[],
            b"username=admin&secretkey=wrong",
        )
        .await;
        assert_eq!(reply.text(), "0");
    }
    let login = format!("username=admin&secretkey={PASSWORD}");
    let locked = call(&mut client, Method::POST, "/logincheck", &[], login.as_bytes()).await;
    assert_eq!(locked.text(), "0", "locked out even with the right password");
    let node = fabric.node("root").unwrap();
    let peer = "127.0.0.1".parse().unwrap();
    assert!(
        node.check_password("admin", PASSWORD, peer).is_err(),
        "the SSH side sees the same lockout"
    );
    let elsewhere = "127.0.0.9".parse().unwrap();
    assert!(node.check_password("admin", PASSWORD, elsewhere).is_ok());

    // A generated key works at once; the old fixed one no longer does.
    let out = fabric
        .exec("root", &["execute api-user generate-key automation"])
        .await
        .unwrap();
    assert!(!out.failed, "{}", out.output);
    let key = out
        .output
        .lines()
        .find_map(|line| line.strip_prefix("New API key: "))
        .expect("the key is printed")
        .to_owned();
    assert_eq!(key.len(), 30);
    assert!(
        out.output.contains("assigned to the api-user automation."),
        "{}",
        out.output
    );
    let status = "/api/v2/monitor/system/status";
    let new = format!("Bearer {key}");
    assert_eq!(
        call(&mut client, Method::GET, status, &[("authorization", &new)], b"")
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        token(&mut client, Method::GET, status, Value::Null).await.status,
        StatusCode::UNAUTHORIZED
    );
    let shown = fabric.exec("root", &["show system api-user"]).await.unwrap();
    assert!(
        shown.output.contains("set api-key ENC SH2") && !shown.output.contains(&key),
        "{}",
        shown.output
    );

    // The REST form of generate-key, and a read-only profile that may read only.
    let generate = "/api/v2/monitor/system/api-user/generate-key?api-user=automation";
    let reply = call(
        &mut client,
        Method::POST,
        generate,
        &[("authorization", &new)],
        b"",
    )
    .await;
    let fresh = reply.json()["results"]["access_token"]
        .as_str()
        .expect("a key")
        .to_owned();
    let fresh = format!("Bearer {fresh}");
    assert_eq!(
        call(
            &mut client,
            Method::GET,
            status,
            &[("authorization", &fresh)],
            b""
        )
        .await
        .status,
        StatusCode::OK
    );
    let reader = format!("Bearer {READER_KEY}");
    let read = call(
        &mut client,
        Method::GET,
        FCTEMS,
        &[("authorization", &reader)],
        b"",
    )
    .await;
    assert_eq!(read.status, StatusCode::OK);
    let entry = json!({"name": "ems1", "server": "127.0.50.1"}).to_string();
    let write = call(
        &mut client,
        Method::POST,
        FCTEMS,
        &[("authorization", &reader)],
        entry.as_bytes(),
    )
    .await;
    assert_eq!(write.status, StatusCode::FORBIDDEN);
    fabric.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cmdb_writes_replicate_and_refusals_change_nothing() {
    let fabric = Fabric::start(with_accounts(generated_topology("rest-cmdb", 3)))
        .await
        .expect("fabric starts");
    fabric.wait_converged(CONVERGE).await.expect("converges");
    let mut root = fabric.rest("root").await.unwrap();

    let created = token(
        &mut root,
        Method::POST,
        &format!("{FCTEMS}?vdom=root"),
        json!({"name": "ems1", "server": "127.0.60.1", "https-port": 8443}),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text());
    let body = created.json();
    assert_eq!(
        (body["http_method"].clone(), body["mkey"].clone()),
        (json!("POST"), json!("ems1"))
    );
    assert_eq!(body["revision_changed"], true);
    let revision: u64 = body["revision"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        body["old_revision"].as_str().unwrap().parse::<u64>().unwrap() + 1,
        revision
    );

    fabric
        .wait_converged(CONVERGE)
        .await
        .expect("the REST write converges on every member");
    let mut member = fabric.rest("branch2").await.unwrap();
    let read = token(
        &mut member,
        Method::GET,
        &format!("{FCTEMS}/ems1?vdom=root"),
        Value::Null,
    )
    .await;
    let body = read.json();
    assert_eq!(body["results"].as_array().map(Vec::len), Some(1), "{body}");
    let entry = &body["results"][0];
    assert_eq!(
        (entry["name"].clone(), entry["q_origin_key"].clone()),
        (json!("ems1"), json!("ems1"))
    );
    assert_eq!(
        (entry["server"].clone(), entry["https-port"].clone()),
        (json!("127.0.60.1"), json!(8443))
    );
    assert_eq!(body["mkey"], "ems1");

    // The member refuses writes with FortiOS's reason.
    let refused = token(
        &mut member,
        Method::PUT,
        &format!("{FCTEMS}/ems1"),
        json!({"https-port": 443}),
    )
    .await;
    assert_eq!(refused.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        refused.json()["cli_error"]
            .as_str()
            .unwrap()
            .contains("'configuration-sync' is set to 'local'"),
        "{}",
        refused.text()
    );
    // Under configuration-sync local a member edits its own copy.
    let mut local = fabric.rest("branch1").await.unwrap();
    let csf = json!({"configuration-sync": "local"});
    let switched = token(&mut local, Method::PUT, "/api/v2/cmdb/system/csf", csf).await;
    assert_eq!(switched.status, StatusCode::OK, "{}", switched.text());
    let own = json!({"https-port": 9443});
    let edited = token(&mut local, Method::PUT, &format!("{FCTEMS}/ems1"), own).await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.text());

    let before = fabric.status().await;
    let cases: Vec<Refused> = vec![
        (
            Method::POST,
            FCTEMS.to_owned(),
            br#"{"name": "ems1", "server": "127.0.60.2"}"#.to_vec(),
            StatusCode::INTERNAL_SERVER_ERROR,
            Some(-5),
        ),
        (
            Method::PUT,
            format!("{FCTEMS}/ems1"),
            br#"{"colour": "blue"}"#.to_vec(),
            StatusCode::INTERNAL_SERVER_ERROR,
            Some(-61),
        ),
        (
            Method::PUT,
            format!("{FCTEMS}/ems1"),
            br#"{"https-port": 70000}"#.to_vec(),
            StatusCode::INTERNAL_SERVER_ERROR,
            Some(-1),
        ),
        (
            Method::PUT,
            format!("{FCTEMS}/ems1"),
            br#"{"https-port": true}"#.to_vec(),
            StatusCode::INTERNAL_SERVER_ERROR,
            Some(-1),
        ),
        (
            Method::PUT,
            format!("{FCTEMS}/ems1"),
            b"{not json".to_vec(),
            StatusCode::BAD_REQUEST,
            Some(-1),
        ),
        (
            Method::PUT,
            format!("{FCTEMS}/ems1"),
            vec![b' '; 70 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
        ),
        (
            Method::PUT,
            format!("{FCTEMS}/nope"),
            b"{}".to_vec(),
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            Method::DELETE,
            format!("{FCTEMS}/nope"),
            Vec::new(),
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            Method::GET,
            format!("{FCTEMS}/nope"),
            Vec::new(),
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            Method::GET,
            format!("{FCTEMS}?vdom=other"),
            Vec::new(),
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            Method::PUT,
            FCTEMS.to_owned(),
            b"{}".to_vec(),
            StatusCode::METHOD_NOT_ALLOWED,
            None,
        ),
        (
            Method::GET,
            "/api/v2/cmdb/system/nothing".to_owned(),
            Vec::new(),
            StatusCode::NOT_FOUND,
            None,
        ),
    ];
    let (name, value) = bearer();
    for (method, path, body, status, code) in cases {
        let reply = call(&mut root, method.clone(), &path, &[(name, &value)], &body).await;
        assert_eq!(reply.status, status, "{method} {path}: {}", reply.text());
        let json = reply.json();
        assert_eq!(json["status"], "error", "{method} {path}: {json}");
        assert_eq!(json["http_status"], status.as_u16(), "{method} {path}: {json}");
        assert_eq!(json["error"].as_i64(), code, "{method} {path}: {json}");
    }
    let after = fabric.status().await;
    assert_eq!(
        before.nodes[0].revision, after.nodes[0].revision,
        "refusals changed nothing"
    );

    // The other tables and the monitors.
    for path in [
        "/api/v2/cmdb/system/csf",
        "/api/v2/cmdb/system/settings",
        "/api/v2/cmdb/system/api-user",
    ] {
        let reply = token(&mut root, Method::GET, path, Value::Null).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text());
        assert!(reply.json()["results"].is_array(), "{path}");
    }
    let users = token(
        &mut root,
        Method::GET,
        "/api/v2/cmdb/system/api-user",
        Value::Null,
    )
    .await
    .json();
    assert!(
        users["results"][0]["api-key"]
            .as_str()
            .unwrap()
            .starts_with("ENC SH2"),
        "{users}"
    );
    let schema = format!("{FCTEMS}?vdom=root&action=schema");
    let schema = token(&mut root, Method::GET, &schema, Value::Null).await.json();
    assert_eq!(schema["results"]["mkey"], "name", "{schema}");
    assert_eq!(
        schema["results"]["children"]["https-port"]["type"], "integer",
        "{schema}"
    );
    let https = fabric.node_addrs("branch1").unwrap().https;
    let listed = fabric.status().await;
    assert_eq!(
        listed.nodes[1].https,
        Some(https),
        "status lists each node's REST address"
    );
    let global = token(&mut root, Method::GET, "/api/v2/cmdb/system/global", Value::Null)
        .await
        .json();
    assert_eq!(global["results"][0]["hostname"], "FGT-root");
    let settings = token(
        &mut root,
        Method::PUT,
        "/api/v2/cmdb/system/settings",
        json!({"gui-endpoint-control": "disable"}),
    )
    .await;
    assert_eq!(settings.status, StatusCode::OK, "{}", settings.text());
    let csf = token(&mut root, Method::GET, "/api/v2/monitor/system/csf", Value::Null)
        .await
        .json();
    let members = csf["results"].as_array().unwrap();
    assert_eq!(members.len(), 3, "{csf}");
    assert!(members.iter().any(|m| m["serial"] == "FGVM01TM22000003"), "{csf}");
    let status = token(
        &mut root,
        Method::GET,
        "/api/v2/monitor/endpoint-control/ems/status?ems_name=ems1",
        Value::Null,
    )
    .await
    .json();
    let ems = &status["results"][0];
    assert_eq!(ems["ems_name"], "ems1", "{status}");
    assert!(
        ems["ems_status_id"].is_i64() && ems["ems_status"].is_string(),
        "{status}"
    );
    let summary = token(
        &mut root,
        Method::GET,
        "/api/v2/monitor/endpoint-control/ems/status-summary",
        Value::Null,
    )
    .await
    .json();
    assert_eq!(summary["results"][0]["name"], "ems1", "{summary}");

    let deleted = token(&mut root, Method::DELETE, &format!("{FCTEMS}/ems1"), Value::Null).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text());
    fabric
        .wait_converged(CONVERGE)
        .await
        .expect("the delete converges");
    let gone = token(&mut member, Method::GET, FCTEMS, Value::Null).await.json();
    assert_eq!(gone["results"], json!([]));
    fabric.stop().await;
}

/// One root and an EMS whose certificate no node trusts, on `127.0.210.0/24`.
fn untrusted_ems_topology() -> Topology {
    let text = "[fabric]\nname = \"rest-verify\"\n\n[raft]\nheartbeat_ms = 100\nelection_timeout_min_ms = 400\n\
                election_timeout_max_ms = 800\n\n[dns]\n\"ems.lab.example\" = \"127.0.210.100\"\n\n\
                [[ems]]\nname = \"ems1\"\nserial = \"FCTEMS8822001234\"\nhostname = \"ems.lab.example\"\n\
                listen = \"127.0.210.100:0\"\ncertificate = \"untrusted\"\n\n\
                [[node]]\nname = \"root\"\nserial = \"FGVM01TM22210001\"\nrole = \"root\"\nlisten = \"127.0.210.11:0\"\n";
    with_accounts(Topology::parse(text, Path::new("<test>")).expect("valid"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_cert_shows_then_trusts_the_certificate_fabric_wide() {
    let fabric = Fabric::start(untrusted_ems_topology())
        .await
        .expect("fabric starts");
    let port = fabric.lab().ems("ems1").unwrap().addr().port();
    let mut root = fabric.rest("root").await.unwrap();
    let entry = json!({"name": "ems1", "server": "ems.lab.example", "https-port": port});
    assert_eq!(
        token(&mut root, Method::POST, FCTEMS, entry).await.status,
        StatusCode::OK
    );

    let verify = "/api/v2/monitor/endpoint-control/ems/verify-cert";
    let shown = token(&mut root, Method::POST, verify, json!({"ems_name": "ems1"})).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.text());
    let details = shown.json()["results"].clone();
    assert_eq!(details["status"], "unverified", "{details}");
    let fingerprint = details["certificate"]["fingerprint"].as_str().unwrap().to_owned();
    assert!(
        details["certificate"]["subject"]
            .as_str()
            .unwrap()
            .contains("ems.lab.example"),
        "{details}"
    );
    let wrong = token(
        &mut root,
        Method::POST,
        verify,
        json!({"ems_name": "ems1", "fingerprint": "00:11"}),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let cert = "/api/v2/monitor/endpoint-control/ems/cert-status?ems_name=ems1&with_cert=true";
    let cert = token(&mut root, Method::GET, cert, Value::Null).await.json();
    assert_eq!(cert["results"]["verified"], false, "{cert}");
    assert_eq!(
        cert["results"]["cert"]["fingerprint"],
        fingerprint.as_str(),
        "{cert}"
    );

    let trusted = token(
        &mut root,
        Method::POST,
        verify,
        json!({"ems_name": "ems1", "fingerprint": fingerprint}),
    )
    .await;
    assert_eq!(
        trusted.json()["results"]["status"],
        "success",
        "{}",
        trusted.text()
    );
    let out = fabric
        .exec("root", &["execute fctems is-verified ems1"])
        .await
        .unwrap();
    assert!(out.output.contains("EMS ems1 is verified."), "{}", out.output);
    let missing = token(&mut root, Method::POST, verify, json!({"ems_name": "nosuch"})).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.text());

    let unverify = "/api/v2/monitor/endpoint-control/ems/unverify-cert";
    let undone = token(&mut root, Method::POST, unverify, json!({"ems_name": "ems1"})).await;
    assert_eq!(undone.json()["results"]["status"], "success", "{}", undone.text());
    let out = fabric
        .exec("root", &["execute fctems is-verified ems1"])
        .await
        .unwrap();
    assert!(out.output.contains("is not verified"), "{}", out.output);
    assert_eq!(
        token(&mut root, Method::GET, verify, Value::Null).await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    fabric.stop().await;
}

/// What the Ansible module sends against FortiOS 7.0.12, whose fctems table is keyed by
/// `ems-id`: its POST carries the key twice (`ems-id` and `ems_id`), a second run PUTs the
/// same values and changes nothing, `state: absent` deletes by id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ems_id_table_takes_what_ansible_sends() {
    let mut topology = with_accounts(generated_topology("rest-ems-id", 2));
    topology.fabric.firmware = fabricsim::domain::Firmware::parse("7.0.12").unwrap();
    let fabric = Fabric::start(topology).await.expect("fabric starts");
    fabric.wait_converged(CONVERGE).await.expect("converges");
    let mut root = fabric.rest("root").await.expect("root over TLS");
    let entry = json!({"ems-id": 2, "ems_id": 2, "name": "ems-ansible", "server": "127.0.100.2",
                       "https-port": 8443, "status": "enable"});
    let one = format!("{FCTEMS}/2?vdom=root");

    assert_eq!(
        token(&mut root, Method::GET, &one, Value::Null).await.status,
        StatusCode::NOT_FOUND
    );
    let created = token(
        &mut root,
        Method::POST,
        &format!("{FCTEMS}?vdom=root"),
        entry.clone(),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.json());
    assert_eq!(created.json()["mkey"], json!("2"));
    let read = token(&mut root, Method::GET, &one, Value::Null).await.json();
    assert_eq!(
        read["results"][0]["ems-id"],
        json!(2),
        "an integer key is a JSON number"
    );
    assert_eq!(read["results"][0]["name"], json!("ems-ansible"));

    let mut again = entry.clone();
    again.as_object_mut().unwrap().remove("ems_id");
    let unchanged = token(&mut root, Method::PUT, &one, again).await.json();
    assert_eq!(unchanged["revision_changed"], json!(false), "{unchanged}");

    let disagree = json!({"ems-id": 3, "ems_id": 4, "server": "127.0.100.3"});
    let refused = token(&mut root, Method::POST, &format!("{FCTEMS}?vdom=root"), disagree).await;
    assert_eq!(refused.status, StatusCode::INTERNAL_SERVER_ERROR);

    fabric.wait_converged(CONVERGE).await.expect("converges");
    let shown = fabric
        .exec("branch1", &["show endpoint-control fctems"])
        .await
        .unwrap();
    assert!(
        shown.output.contains("edit 2") && shown.output.contains("ems-ansible"),
        "{}",
        shown.output
    );
    assert!(!shown.output.contains("127.0.100.3"), "{}", shown.output);

    // The monitor reports the slot under its name, found by its id or its name.
    for query in ["ems_id=2", "ems_name=ems-ansible"] {
        let path = format!("/api/v2/monitor/endpoint-control/ems/status?{query}");
        let status = token(&mut root, Method::GET, &path, Value::Null).await;
        assert_eq!(status.status, StatusCode::OK, "{query}: {}", status.json());
        assert_eq!(
            status.json()["results"][0]["ems_name"],
            json!("ems-ansible"),
            "{query}"
        );
    }

    assert_eq!(
        token(&mut root, Method::DELETE, &one, Value::Null).await.status,
        StatusCode::OK
    );
    assert_eq!(
        token(&mut root, Method::GET, &one, Value::Null).await.status,
        StatusCode::NOT_FOUND
    );
    fabric.wait_converged(CONVERGE).await.expect("converges");
    let shown = fabric
        .exec("branch1", &["show endpoint-control fctems"])
        .await
        .unwrap();
    assert!(!shown.output.contains("ems-ansible"), "{}", shown.output);
    fabric.stop().await;
}

/// `monitor/system/csf/topology` (the GUI's topology view): every node's own report as
/// the asked node gathers it over its links, with each member's upstream; a member cut
/// off shows as not converged, and again as converged once the links heal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_topology_monitor_reports_every_node_as_the_root_reaches_it() {
    const TOPOLOGY: &str = "/api/v2/monitor/system/csf/topology";
    let fabric = Fabric::start(with_accounts(generated_topology("rest-topology", 3)))
        .await
        .expect("fabric starts");
    fabric.wait_converged(CONVERGE).await.expect("fabric converges");
    let mut client = fabric.rest("root").await.expect("connects");
    let view = token(&mut client, Method::GET, TOPOLOGY, Value::Null)
        .await
        .json();
    let results = &view["results"];
    assert_eq!(results["converged"], true, "{view}");
    assert_eq!(results["root"], "root");
    assert_eq!(results["upstream"]["branch2"], "root");
    let names: Vec<&str> = results["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| node["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["root", "branch1", "branch2"]);

    fabric.isolate("branch2").unwrap();
    topology_shows(&mut client, false).await;
    fabric.heal().unwrap();
    topology_shows(&mut client, true).await;
}

/// Waits until the root's `monitor/system/csf/topology` reports branch2 and the fabric as
/// `converged`.
async fn topology_shows(client: &mut RestClient, converged: bool) {
    let deadline = std::time::Instant::now() + CONVERGE;
    loop {
        let view = token(
            client,
            Method::GET,
            "/api/v2/monitor/system/csf/topology",
            Value::Null,
        )
        .await
        .json();
        let branch2 = view["results"]["nodes"]
            .as_array()
            .and_then(|nodes| nodes.iter().find(|node| node["name"] == "branch2"))
            .map(|node| node["converged"] == converged);
        if branch2 == Some(true) && view["results"]["converged"] == converged {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not converged={converged}: {view}"
        );
        tokio::time::sleep(POLL).await;
    }
}
