//! EMS Cloud through the simulated FortiCloud: who may enable it, who can reach it, and
//! what a revoked entitlement does.

use std::path::Path;

use fabricsim::connector::{CertificateState, Connection, DeviceState};
use fabricsim::harness::Fabric;
use fabricsim::topology::Topology;

use crate::{CONVERGE, run_ok};

const ROOT: &str = "FGVM01TM22080001";
const BRANCH1: &str = "FGVM01TM22080002";
const BRANCH2: &str = "FGVM01TM22080003";

/// Three nodes on 127.0.80.0/24 and a FortiCloud account where only branch1 is registered
/// and entitled; the root and branch2 start unregistered.
fn topology() -> Topology {
    let mut text = String::from(
        "[fabric]\nname = \"cloud\"\n\n[raft]\nheartbeat_ms = 100\nelection_timeout_min_ms = 400\n\
         election_timeout_max_ms = 800\n\n[checks]\ninterval_secs = 1\n\n[forticloud]\n\
         listen = \"127.0.80.35:0\"\nems_listen = \"127.0.80.36:0\"\n",
    );
    text.push_str(&format!(
        "registered = [\"{BRANCH1}\"]\n\n[[forticloud.contract]]\nserial = \"{BRANCH1}\"\ntype = \"FCEM\"\nexpires = \"2099-12-31\"\n"
    ));
    for (i, (name, serial)) in [("root", ROOT), ("branch1", BRANCH1), ("branch2", BRANCH2)]
        .iter()
        .enumerate()
    {
        let role = if i == 0 { "root" } else { "member" };
        text.push_str(&format!(
            "\n[[node]]\nname = \"{name}\"\nserial = \"{serial}\"\nrole = \"{role}\"\nlisten = \"127.0.80.{}:0\"\n",
            11 + i
        ));
    }
    Topology::parse(&text, Path::new("<test>")).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

const ENABLE_CLOUD: &[&str] = &[
    "config endpoint-control fctems",
    "edit cloud",
    "set fortinetone-cloud-authentication enable",
    "end",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ems_cloud_needs_registration_and_entitlement_and_each_node_checks_its_own() {
    let fabric = Fabric::start(topology()).await.unwrap();
    let before = fabric.wait_converged(CONVERGE).await.unwrap().revision;
    let forticloud = fabric.lab().forticloud().unwrap();

    // Unregistered root: refused, saying so, and nothing replicated.
    let out = fabric.exec("root", ENABLE_CLOUD).await.unwrap();
    assert!(out.failed);
    assert!(
        out.output.contains("is not registered to FortiCloud"),
        "{}",
        out.output
    );
    assert!(
        out.output
            .contains("node_check_object fail! for fortinetone-cloud-authentication enable")
    );
    assert_eq!(fabric.wait_converged(CONVERGE).await.unwrap().revision, before);

    // Registered without the entitlement: refused with its own message.
    forticloud.register(ROOT);
    let out = fabric.exec("root", ENABLE_CLOUD).await.unwrap();
    assert!(out.failed);
    assert!(
        out.output.contains("no FortiClient EMS Cloud entitlement (FCEM)"),
        "{}",
        out.output
    );
    assert_eq!(fabric.wait_converged(CONVERGE).await.unwrap().revision, before);

    let info = fabric.exec("root", &["diagnose test update info"]).await.unwrap();
    assert!(
        info.output.contains("Registration: registered"),
        "{}",
        info.output
    );
    assert!(!info.output.contains("FCEM"), "{}", info.output);

    // Both hold: accepted and replicated.
    forticloud.entitle(ROOT, Some("2099-12-31"));
    let info = fabric.exec("root", &["diagnose test update info"]).await.unwrap();
    assert!(
        info.output
            .contains("Account contracts:\n\tFCEM,Thu Dec 31 00:00:00 2099\n"),
        "{}",
        info.output
    );
    run_ok(&fabric, "root", ENABLE_CLOUD).await;
    fabric.wait_converged(CONVERGE).await.unwrap();

    // Registered members connect; the unregistered one fails with the reason.
    let status = fabric
        .wait_for("root and branch1 authorized, branch2 refused", CONVERGE, |s| {
            s.nodes.iter().all(|n| {
                n.ems.iter().any(|ems| {
                    ems.name == "cloud"
                        && if n.name == "branch2" {
                            ems.connection == Connection::Failed
                        } else {
                            ems.connection == Connection::Connected
                                && ems.certificate == CertificateState::Authorized
                                && ems.device == DeviceState::Authorized
                        }
                })
            })
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let branch2 = &status.nodes[2].ems[0];
    assert_eq!(branch2.detail, "This FortiGate is not registered to FortiCloud.");

    // `execute fctems verify` works for the cloud entry as for on-premise ones.
    let out = fabric
        .exec("root", &["execute fctems verify cloud", "y"])
        .await
        .unwrap();
    assert!(
        out.output.contains("CN = fortigate.ems-cloud.example"),
        "{}",
        out.output
    );
    assert!(
        !out.output.contains("Could not verify server certificate"),
        "{}",
        out.output
    );
    let again = fabric
        .exec("root", &["execute fctems verify cloud"])
        .await
        .unwrap();
    assert_eq!(again.output, "EMS already verified.\n");

    // Revoking branch1's entitlement turns its next check into "License expired.".
    forticloud.revoke(BRANCH1);
    fabric
        .wait_for("branch1 license expired", CONVERGE, |s| {
            s.nodes[1]
                .ems
                .iter()
                .any(|ems| ems.connection == Connection::Failed && ems.detail == "License expired.")
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let info = fabric
        .exec("branch1", &["diagnose test update info"])
        .await
        .unwrap();
    assert!(info.output.contains("(expired)"), "{}", info.output);
    fabric.stop().await;
}
