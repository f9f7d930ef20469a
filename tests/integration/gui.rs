//! The web GUI in a real browser (headless Chromium over WebDriver), step by step as the
//! FortiOS EMS connector page describes it: log in, turn on Endpoint Control under
//! Feature Visibility, add an EMS on the root from the Fabric Connectors card, refuse
//! then accept its certificate in the verification window, see Successful / Authorized on
//! the root and on a member, find the member's form read-only with FortiOS's reason, see
//! EMS Cloud refused on a root not registered to FortiCloud, watch the fabric converge in
//! the topology view, stop the EMS and press Refresh to see the failure, log out.
//!
//! Skipped, with a line saying so, where no Chromium and chromedriver are installed
//! (`browser`); `.ci/run` installs them. A failing step leaves a screenshot under
//! `target/gui-screenshots/`.

use std::path::Path;
use std::time::Duration;

use fabricsim::harness::Fabric;
use fabricsim::topology::Topology;

use crate::browser::{Browser, OrFail as _};
use crate::{CONVERGE, run_ok};

/// The administrator's password in this test's topology.
const PASSWORD: &str = "fabricsim-gui";
/// The EMS's name in `[dns]` and on its certificate.
const EMS_HOST: &str = "ems.lab.example";
/// How long a page may take to show what a step waits for.
const STEP: Duration = Duration::from_secs(20);

/// A root and one member on `127.0.240.0/24`, one EMS whose certificate no installed CA
/// signed (the verification window must say so) and which authorizes both FortiGates,
/// and a FortiCloud account the root is not registered to.
fn topology() -> Topology {
    let text = format!(
        "[fabric]\nname = \"gui\"\n\n[raft]\nheartbeat_ms = 100\nelection_timeout_min_ms = 400\n\
         election_timeout_max_ms = 800\n\n[checks]\ninterval_secs = 1\n\n[dns]\n\
         \"{EMS_HOST}\" = \"127.0.240.100\"\n\n[[ems]]\nname = \"ems1\"\nserial = \"FCTEMS8822002401\"\n\
         hostname = \"{EMS_HOST}\"\nlisten = \"127.0.240.100:0\"\ncertificate = \"untrusted\"\n\
         authorized = [\"FGVM01TM22240001\", \"FGVM01TM22240002\"]\n\n[forticloud]\n\
         listen = \"127.0.240.35:0\"\nems_listen = \"127.0.240.36:0\"\nregistered = []\n\n\
         [[node]]\nname = \"root\"\nserial = \"FGVM01TM22240001\"\nrole = \"root\"\n\
         listen = \"127.0.240.11:0\"\n\n[[node]]\nname = \"branch1\"\nserial = \"FGVM01TM22240002\"\n\
         listen = \"127.0.240.12:0\"\n"
    );
    let mut topology =
        Topology::parse(&text, Path::new("<gui test>")).unwrap_or_else(|e| panic!("{e}\n{text}"));
    topology.admin.password = PASSWORD.to_owned();
    topology
}

/// The GUI's address on `node`.
fn gui(fabric: &Fabric, node: &str) -> String {
    let https = fabric.node_addrs(node).expect("the node runs").https;
    format!("https://{https}")
}

/// Logs in on the GUI at `base` and waits for the application.
async fn log_in(browser: &Browser, base: &str, step: &str) {
    browser
        .open(&format!("{base}/"))
        .await
        .or_fail(browser, step)
        .await;
    browser
        .fill("#username", "admin", STEP)
        .await
        .or_fail(browser, step)
        .await;
    browser
        .fill("#secretkey", PASSWORD, STEP)
        .await
        .or_fail(browser, step)
        .await;
    browser
        .click("#login-button", STEP)
        .await
        .or_fail(browser, step)
        .await;
    browser
        .element("#content #topology", STEP)
        .await
        .or_fail(browser, step)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ems_connector_pages_work_as_on_a_fortigate() {
    let Some(browser) = Browser::launch("gui").await else {
        return;
    };
    let fabric = Fabric::start(topology()).await.expect("fabric starts");
    fabric.wait_converged(CONVERGE).await.expect("fabric converges");
    let b = &browser;
    let root = gui(&fabric, "root");
    let ems_port = fabric.lab().ems("ems1").unwrap().addr().port();

    // The page is hidden until Endpoint Control is visible.
    run_ok(
        &fabric,
        "root",
        &[
            "config system settings",
            "set gui-endpoint-control disable",
            "end",
        ],
    )
    .await;

    // Without a session every page leads to the login page; a wrong password is refused.
    b.open(&format!("{root}/ng/fabric/connectors"))
        .await
        .or_fail(b, "open")
        .await;
    b.fill("#username", "admin", STEP)
        .await
        .or_fail(b, "login page")
        .await;
    b.fill("#secretkey", "wrong", STEP)
        .await
        .or_fail(b, "login page")
        .await;
    b.click("#login-button", STEP)
        .await
        .or_fail(b, "wrong password")
        .await;
    b.wait_text("#login-error", |t| t == "Authentication failure.", STEP)
        .await
        .or_fail(b, "wrong password")
        .await;
    log_in(b, &root, "log in on the root").await;

    // Security Fabric > Fabric Connectors: no EMS card while Endpoint Control is off.
    b.click("#nav-connectors", STEP)
        .await
        .or_fail(b, "connectors")
        .await;
    b.element("#endpoint-control-hidden", STEP)
        .await
        .or_fail(b, "EMS card hidden")
        .await;
    assert!(
        b.find("#card-fctems").await.unwrap().is_none(),
        "the EMS card shows while Endpoint Control is off"
    );

    // System > Feature Visibility > Endpoint Control, Apply.
    b.click("#nav-featurevisibility", STEP)
        .await
        .or_fail(b, "feature visibility")
        .await;
    b.click("#feature-endpoint-control", STEP)
        .await
        .or_fail(b, "switch")
        .await;
    b.click("#apply", STEP).await.or_fail(b, "apply").await;
    b.wait_text("#message", |t| t == "Configuration saved.", STEP)
        .await
        .or_fail(b, "apply")
        .await;
    fabric
        .wait_for("the member has Endpoint Control on", CONVERGE, |report| {
            report.converged && report.revision >= Some(2)
        })
        .await
        .expect("the setting replicates");

    // The EMS card opens the connector with a double-click.
    b.click("#nav-connectors", STEP)
        .await
        .or_fail(b, "connectors")
        .await;
    b.wait_text("#card-fctems", |t| t.contains("Not configured"), STEP)
        .await
        .or_fail(b, "EMS card")
        .await;
    b.double_click("#card-fctems", STEP)
        .await
        .or_fail(b, "open the EMS card")
        .await;
    b.wait_text("h1", |t| t == "New Fabric Connector", STEP)
        .await
        .or_fail(b, "new connector")
        .await;

    // EMS Cloud is not selectable on a root not registered to FortiCloud, and says why.
    let cloud_enabled = b.enabled("#type-cloud", STEP).await.or_fail(b, "EMS Cloud").await;
    assert!(!cloud_enabled, "EMS Cloud is selectable on an unregistered root");
    b.wait_text(
        "#cloud-reason",
        |t| t.contains("is not registered to FortiCloud"),
        STEP,
    )
    .await
    .or_fail(b, "EMS Cloud reason")
    .await;

    // A bad value is refused with the CLI's words and nothing is saved.
    b.fill("#field-name", "ems1", STEP).await.or_fail(b, "form").await;
    b.fill("#field-server", EMS_HOST, STEP)
        .await
        .or_fail(b, "form")
        .await;
    b.fill("#field-https-port", "70000", STEP)
        .await
        .or_fail(b, "form")
        .await;
    b.click("#ok", STEP).await.or_fail(b, "bad port").await;
    b.wait_text(
        "#form-error",
        |t| t.contains("value parse error before '70000'"),
        STEP,
    )
    .await
    .or_fail(b, "bad port refused")
    .await;
    let shown = fabric
        .exec("root", &["show endpoint-control fctems"])
        .await
        .unwrap();
    assert!(
        !shown.output.contains("edit \"ems1\""),
        "a refused form saved: {}",
        shown.output
    );

    // OK saves; the window shows the certificate, which no installed CA signed. Deny
    // changes nothing.
    b.fill("#field-https-port", &ems_port.to_string(), STEP)
        .await
        .or_fail(b, "form")
        .await;
    b.click("#ok", STEP).await.or_fail(b, "save").await;
    b.wait_text(
        "#cert-warning",
        |t| t.contains("cannot be authenticated with installed CA certificates"),
        STEP,
    )
    .await
    .or_fail(b, "certificate window")
    .await;
    let subject = b
        .text("#cert-subject", STEP)
        .await
        .or_fail(b, "certificate window")
        .await;
    assert!(subject.contains(EMS_HOST), "subject {subject:?}");
    let fingerprint = b
        .text("#cert-fingerprint", STEP)
        .await
        .or_fail(b, "certificate window")
        .await;
    assert_eq!(fingerprint.split(':').count(), 32, "fingerprint {fingerprint:?}");
    b.click("#cert-deny", STEP).await.or_fail(b, "deny").await;
    b.wait_gone("#cert-dialog", STEP).await.or_fail(b, "deny").await;
    b.wait_text("#status-certificate", |t| t == "Not trusted", CONVERGE)
        .await
        .or_fail(b, "untrusted after deny")
        .await;
    let verified = fabric
        .exec("root", &["execute fctems is-verified ems1"])
        .await
        .unwrap();
    assert!(verified.output.contains("is not verified"), "{}", verified.output);

    // Authorize shows the window again; Accept trusts the certificate fabric-wide.
    b.click("#authorize", STEP).await.or_fail(b, "authorize").await;
    b.click("#cert-accept", STEP).await.or_fail(b, "accept").await;
    b.wait_gone("#cert-dialog", STEP).await.or_fail(b, "accept").await;
    b.wait_text("#status-connection", |t| t == "Successful", CONVERGE)
        .await
        .or_fail(b, "connection on the root")
        .await;
    b.wait_text("#status-certificate", |t| t == "Authorized", CONVERGE)
        .await
        .or_fail(b, "certificate on the root")
        .await;
    b.wait_text("#status-authorization", |t| t == "Authorized", CONVERGE)
        .await
        .or_fail(b, "authorization on the root")
        .await;

    // The topology view shows both FortiGates converged.
    b.click("#nav-topology", STEP).await.or_fail(b, "topology").await;
    b.wait_text("#fabric-summary", |t| t.ends_with(": converged"), CONVERGE)
        .await
        .or_fail(b, "topology converged")
        .await;
    b.wait_text(
        "#node-branch1",
        |t| t.contains("FGVM01TM22240002") && t.contains("ems1: connected / authorized"),
        CONVERGE,
    )
    .await
    .or_fail(b, "member in the topology")
    .await;

    // On the member: the same status, and the form read-only with FortiOS's reason.
    let member = gui(&fabric, "branch1");
    log_in(b, &member, "log in on the member").await;
    b.open(&format!("{member}/ng/fabric/connectors/fctems"))
        .await
        .or_fail(b, "member connector")
        .await;
    b.wait_text(
        "#readonly-reason",
        |t| t == "Modification not allowed unless 'configuration-sync' is set to 'local'",
        STEP,
    )
    .await
    .or_fail(b, "member read-only")
    .await;
    for field in ["#field-name", "#field-server", "#ok"] {
        let enabled = b.enabled(field, STEP).await.or_fail(b, "member read-only").await;
        assert!(!enabled, "{field} is editable on a member");
    }
    b.wait_text("#status-connection", |t| t == "Successful", CONVERGE)
        .await
        .or_fail(b, "connection on the member")
        .await;
    b.wait_text("#status-certificate", |t| t == "Authorized", CONVERGE)
        .await
        .or_fail(b, "certificate on the member")
        .await;

    // The EMS stops: Refresh checks now and shows the failure.
    fabric.lab().ems("ems1").unwrap().stop().await;
    b.click("#refresh", STEP).await.or_fail(b, "refresh").await;
    b.wait_text("#status-connection", |t| t == "Failed", STEP)
        .await
        .or_fail(b, "refresh shows the failure")
        .await;
    let detail = b
        .text("#status-detail", STEP)
        .await
        .or_fail(b, "failure detail")
        .await;
    assert!(!detail.is_empty(), "a failed connection gives no reason");

    b.click("#logout", STEP).await.or_fail(b, "logout").await;
    b.element("#login-form", STEP).await.or_fail(b, "logout").await;
    drop(browser);
    fabric.stop().await;
}

/// On FortiOS 7.0.12 the fctems table is keyed by ems-id: the form (built from the
/// table's schema) shows Status, a new connector takes the first free slot, and EMS Cloud
/// is selectable on a root registered with the FCEM entitlement. An EMS that cannot be
/// reached leaves the verification window with the reason and nothing to accept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ems_id_table_takes_new_connectors_in_free_slots() {
    let Some(browser) = Browser::launch("gui-ems-id").await else {
        return;
    };
    let mut topology = fabricsim::harness::generated_topology("gui-ems-id", 2);
    topology.fabric.firmware = fabricsim::domain::Firmware::V7_0_12;
    topology.admin.password = PASSWORD.to_owned();
    let fabric = Fabric::start(topology).await.expect("fabric starts");
    fabric.wait_converged(CONVERGE).await.expect("fabric converges");
    let b = &browser;
    let root = gui(&fabric, "root");
    log_in(b, &root, "log in").await;

    for (slot, name) in [(1, "ems-a"), (2, "ems-b")] {
        let step = format!("connector {name}");
        b.open(&format!("{root}/ng/fabric/connectors/fctems?entry=new"))
            .await
            .or_fail(b, &step)
            .await;
        b.wait_text("h1", |t| t == "New Fabric Connector", STEP)
            .await
            .or_fail(b, &step)
            .await;
        let cloud = b.enabled("#type-cloud", STEP).await.or_fail(b, &step).await;
        assert!(
            cloud,
            "EMS Cloud is not selectable on a registered, entitled root"
        );
        b.element("#field-status", STEP).await.or_fail(b, &step).await;
        b.fill("#field-name", name, STEP).await.or_fail(b, &step).await;
        b.fill("#field-server", "127.0.100.9", STEP)
            .await
            .or_fail(b, &step)
            .await;
        b.fill("#field-https-port", "8443", STEP)
            .await
            .or_fail(b, &step)
            .await;
        b.click("#ok", STEP).await.or_fail(b, &step).await;
        b.wait_text("#cert-error", |t| !t.is_empty(), CONVERGE)
            .await
            .or_fail(b, &step)
            .await;
        assert!(
            b.find("#cert-accept").await.unwrap().is_none(),
            "a window without a certificate offers Accept"
        );
        b.click("#cert-close", STEP).await.or_fail(b, &step).await;
        // A new connector starts enabled, so this node checks it, and finds nothing there.
        b.wait_text("#status-connection", |t| t == "Failed", CONVERGE)
            .await
            .or_fail(b, &step)
            .await;
        fabric
            .wait_converged(CONVERGE)
            .await
            .expect("the entry replicates");
        let shown = fabric
            .exec("branch1", &["show endpoint-control fctems"])
            .await
            .unwrap();
        let block = shown
            .output
            .split(&format!("edit {slot}\n"))
            .nth(1)
            .and_then(|rest| rest.split("next").next())
            .unwrap_or_default();
        assert!(
            block.contains("set status enable") && block.contains(&format!("set name \"{name}\"")),
            "slot {slot} is not {name} on the member:\n{}",
            shown.output
        );
    }
    // A disabled slot is kept but not checked: no window, and the status says so.
    let step = "disable slot 2";
    b.open(&format!("{root}/ng/fabric/connectors/fctems?entry=2"))
        .await
        .or_fail(b, step)
        .await;
    b.click("#field-status", STEP).await.or_fail(b, step).await;
    b.click("#ok", STEP).await.or_fail(b, step).await;
    b.wait_text(
        "#status-detail",
        |t| t == "This FortiGate does not check a disabled EMS entry.",
        CONVERGE,
    )
    .await
    .or_fail(b, step)
    .await;
    assert!(
        b.find("#cert-dialog").await.unwrap().is_none(),
        "a disabled slot opened the certificate window"
    );
    drop(browser);
    fabric.stop().await;
}
