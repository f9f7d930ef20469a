//! Every node checks its EMS connectors itself, against simulated EMS servers over real
//! TLS: certificates, Fabric Devices authorization, multitenancy, outages and cut-offs.

use std::collections::BTreeMap;
use std::path::Path;

use fabricsim::connector::{CertificateState, Connection, DeviceState, EmsStatus};
use fabricsim::harness::Fabric;
use fabricsim::topology::Topology;

use crate::{CONVERGE, run_ok};

/// The FQDN of every test EMS.
const EMS_HOST: &str = "ems.lab.example";

/// A topology on its own loopback network `127.0.<net>.0/24`: `nodes` FortiGates at
/// `.11`, `.12`, ... and one EMS `ems1` at `.100` with `ems_extra` TOML lines, checks every
/// second.
fn topology(net: u8, nodes: usize, ems_extra: &str) -> Topology {
    let ems_ip = format!("127.0.{net}.100");
    let mut text = format!(
        "[fabric]\nname = \"ems{net}\"\n\n[raft]\nheartbeat_ms = 100\nelection_timeout_min_ms = 400\n\
         election_timeout_max_ms = 800\n\n[checks]\ninterval_secs = 1\n\n[dns]\n\
         \"{EMS_HOST}\" = \"{ems_ip}\"\n\"default.{EMS_HOST}\" = \"{ems_ip}\"\n\
         \"sitea.{EMS_HOST}\" = \"{ems_ip}\"\n\"nosuch.{EMS_HOST}\" = \"{ems_ip}\"\n"
    );
    let serials: Vec<String> = (1..=nodes).map(|i| format!("FGVM01TM22{net:03}{i:03}")).collect();
    text.push_str(&format!(
        "\n[[ems]]\nname = \"ems1\"\nserial = \"FCTEMS8822001234\"\nhostname = \"{EMS_HOST}\"\n\
         listen = \"{ems_ip}:0\"\n{ems_extra}\n"
    ));
    for (i, serial) in serials.iter().enumerate() {
        let (name, role) = if i == 0 {
            ("root".to_owned(), "root")
        } else {
            (format!("branch{i}"), "member")
        };
        text.push_str(&format!(
            "\n[[node]]\nname = \"{name}\"\nserial = \"{serial}\"\nrole = \"{role}\"\nlisten = \"127.0.{net}.{}:0\"\n",
            11 + i
        ));
    }
    Topology::parse(&text, Path::new("<test>")).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// `authorized = [every node's serial]`.
fn all_authorized(net: u8, nodes: usize) -> String {
    let serials: Vec<String> = (1..=nodes)
        .map(|i| format!("\"FGVM01TM22{net:03}{i:03}\""))
        .collect();
    format!("authorized = [{}]", serials.join(", "))
}

/// Configures `ems1` on the root, pointing at the lab's EMS through `server`.
async fn configure(fabric: &Fabric, server: &str, extra: &[&str]) {
    let port = fabric.lab().ems("ems1").unwrap().addr().port();
    let mut lines = vec![
        "config endpoint-control fctems".to_owned(),
        "edit ems1".to_owned(),
        format!("set server {server}"),
        format!("set https-port {port}"),
    ];
    lines.extend(extra.iter().map(|line| (*line).to_owned()));
    lines.push("end".to_owned());
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    run_ok(fabric, "root", &lines).await;
}

/// Waits until every node reports `ems1` as `check` accepts it.
async fn wait_all(
    fabric: &Fabric,
    what: &str,
    check: impl Fn(&str, &EmsStatus) -> bool,
) -> BTreeMap<String, EmsStatus> {
    let nodes = fabric.topology().nodes.len();
    fabric
        .wait_for(what, CONVERGE, |status| {
            status.nodes.len() == nodes
                && status.nodes.iter().all(|node| {
                    node.ems
                        .iter()
                        .find(|ems| ems.name == "ems1")
                        .is_some_and(|ems| check(&node.name, ems))
                })
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    fabric.ems_status("ems1").await
}

fn healthy(ems: &EmsStatus) -> bool {
    ems.connection == Connection::Connected
        && ems.certificate == CertificateState::Authorized
        && ems.device == DeviceState::Authorized
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_topology_bootstraps_to_authorized_everywhere() {
    let mut topology =
        Topology::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster-configs/default.toml"))
            .expect("default.toml loads");
    // Everything on free ports, so a `fabricsim up` of the default fabric on this machine
    // does not collide with the test; the bootstrap names the EMS port it gets.
    for node in &mut topology.nodes {
        node.listen.set_port(0);
    }
    if let Some(cloud) = &mut topology.forticloud {
        cloud.listen.set_port(0);
        cloud.ems_listen.set_port(0);
    }
    let ems = &mut topology.ems[0];
    let port = std::net::TcpListener::bind((ems.listen.ip(), 0))
        .and_then(|probe| probe.local_addr())
        .expect("a free port")
        .port();
    ems.listen.set_port(port);
    for line in &mut topology.bootstrap {
        if line.starts_with("set https-port") {
            *line = format!("set https-port {port}");
        }
    }
    topology.checks.interval_secs = 1;
    let fabric = Fabric::start(topology).await.expect("the default fabric starts");
    let seen = wait_all(&fabric, "every node connected/authorized/authorized", |_, ems| {
        healthy(ems)
    })
    .await;
    assert_eq!(seen.len(), 3);
    for ems in seen.values() {
        assert_eq!(ems.ems_serial.as_deref(), Some("FCTEMS8822001234"));
        assert!(ems.checked_at.is_some());
    }
    let shown = fabric
        .exec("branch2", &["show endpoint-control fctems"])
        .await
        .unwrap();
    assert!(
        shown.output.contains("set certificate \"REMOTE_Cert_1\""),
        "{}",
        shown.output
    );
    assert!(
        shown.output.contains("set serial-number \"FCTEMS8822001234\""),
        "{}",
        shown.output
    );
    // FortiOS 7.0.12: the entry is slot 1, reported everywhere by its name.
    assert!(
        shown
            .output
            .contains("    edit 1\n        set status enable\n        set name \"ems1\"\n"),
        "{}",
        shown.output
    );
    let version = fabric
        .exec("branch1", &["get system status | grep Version"])
        .await
        .unwrap();
    assert!(
        version
            .output
            .starts_with("Version: FortiGate-VM64 v7.0.12,build0523,")
    );

    // A disabled slot replicates like any entry but no node checks it.
    let spare = fabric
        .exec(
            "root",
            &[
                "config endpoint-control fctems",
                "edit 2",
                "set name spare",
                "set server default.ems.lab.example",
                "end",
            ],
        )
        .await
        .unwrap();
    assert!(!spare.failed, "{}", spare.output);
    let report = fabric
        .wait_converged(CONVERGE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for node in &report.nodes {
        let names: Vec<&str> = node.ems.iter().map(|ems| ems.name.as_str()).collect();
        assert_eq!(names, ["ems1"], "{} checks only the enabled slot", node.name);
    }
    let shown = fabric
        .exec("branch2", &["show endpoint-control fctems"])
        .await
        .unwrap();
    assert!(
        shown.output.contains("    edit 2\n        set name \"spare\"\n"),
        "{}",
        shown.output
    );
    fabric.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_certificate_becomes_authorized_after_verify() {
    let fabric = Fabric::start(topology(
        61,
        3,
        &format!("certificate = \"untrusted\"\n{}", all_authorized(61, 3)),
    ))
    .await
    .unwrap();
    configure(&fabric, EMS_HOST, &[]).await;
    wait_all(&fabric, "every node sees an untrusted certificate", |_, ems| {
        ems.connection == Connection::Connected && ems.certificate == CertificateState::Untrusted
    })
    .await;

    let out = fabric
        .exec("root", &["execute fctems verify ems1", "y"])
        .await
        .unwrap();
    assert!(!out.failed, "{}", out.output);
    for expected in [
        "Server certificate:",
        "CN = ems.lab.example",
        "Root CA:",
        "certificate not configured/verified: 2 Could not verify server certificate based on current certificate authorities. Error 1--5208",
        "Do you wish to add the above certificate to trusted remote certificates? (y/n)",
    ] {
        assert!(
            out.output.contains(expected),
            "{expected:?} missing from:\n{}",
            out.output
        );
    }
    wait_all(&fabric, "every node authorized after verify", |_, ems| {
        healthy(ems)
    })
    .await;
    let again = fabric
        .exec("root", &["execute fctems verify ems1"])
        .await
        .unwrap();
    assert_eq!(again.output, "EMS already verified.\n");
    let verified = fabric
        .exec("branch1", &["execute fctems is-verified ems1"])
        .await
        .unwrap();
    assert_eq!(verified.output, "EMS ems1 is verified.\n");
    fabric.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declining_verify_changes_nothing() {
    let fabric = Fabric::start(topology(62, 2, "certificate = \"self-signed\""))
        .await
        .unwrap();
    configure(&fabric, EMS_HOST, &[]).await;
    let before = fabric.wait_converged(CONVERGE).await.unwrap().revision;
    let out = fabric
        .exec("root", &["execute fctems verify ems1", "n"])
        .await
        .unwrap();
    assert!(out.output.contains("Root CA:     Yes"), "{}", out.output);
    let after = fabric.wait_converged(CONVERGE).await.unwrap().revision;
    assert_eq!(before, after);
    fabric.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_device_is_pending_until_the_ems_authorizes_it() {
    let fabric = Fabric::start(topology(63, 3, "authorized = [\"FGVM01TM22063001\"]"))
        .await
        .unwrap();
    configure(&fabric, EMS_HOST, &[]).await;
    let seen = wait_all(&fabric, "members pending, root authorized", |node, ems| {
        ems.certificate == CertificateState::Authorized
            && if node == "root" {
                ems.device == DeviceState::Authorized
            } else {
                ems.device == DeviceState::Pending
            }
    })
    .await;
    assert!(
        seen["branch1"].detail.contains("Administration > Fabric Devices"),
        "{}",
        seen["branch1"].detail
    );
    let ems = fabric.lab().ems("ems1").unwrap();
    ems.authorize("FGVM01TM22063002");
    ems.deny("FGVM01TM22063003");
    wait_all(
        &fabric,
        "branch1 authorized, branch2 denied",
        |node, ems| match node {
            "branch2" => ems.device == DeviceState::Denied,
            _ => ems.device == DeviceState::Authorized,
        },
    )
    .await;
    fabric.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_ems_fails_everywhere_and_recovers() {
    let fabric = Fabric::start(topology(64, 3, &all_authorized(64, 3)))
        .await
        .unwrap();
    configure(&fabric, EMS_HOST, &[]).await;
    wait_all(&fabric, "healthy", |_, ems| healthy(ems)).await;
    let ems = fabric.lab().ems("ems1").unwrap();
    ems.stop().await;
    wait_all(&fabric, "failed everywhere", |_, ems| {
        ems.connection == Connection::Failed
    })
    .await;
    ems.start_again().await.unwrap();
    wait_all(&fabric, "healthy again", |_, ems| healthy(ems)).await;
    fabric.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cut_off_by_source_address_fails_alone() {
    let fabric = Fabric::start(topology(65, 3, &all_authorized(65, 3)))
        .await
        .unwrap();
    configure(&fabric, EMS_HOST, &[]).await;
    wait_all(&fabric, "healthy", |_, ems| healthy(ems)).await;
    let cut = fabric.node("branch2").unwrap().addr().ip();
    fabric.lab().ems("ems1").unwrap().block_source(cut);
    wait_all(&fabric, "branch2 failed, the others connected", |node, ems| {
        if node == "branch2" {
            ems.connection == Connection::Failed
        } else {
            healthy(ems)
        }
    })
    .await;
    fabric.lab().ems("ems1").unwrap().unblock_source(cut);
    wait_all(&fabric, "healthy again", |_, ems| healthy(ems)).await;
    fabric.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_wrong_host_certificates_are_reported() {
    for (net, profile, state, words) in [
        (66, "expired", CertificateState::Expired, "expired"),
        (67, "wrong-host", CertificateState::NameMismatch, "not valid for"),
    ] {
        let fabric = Fabric::start(topology(
            net,
            2,
            &format!("certificate = \"{profile}\"\n{}", all_authorized(net, 2)),
        ))
        .await
        .unwrap();
        configure(&fabric, EMS_HOST, &[]).await;
        let seen = wait_all(&fabric, profile, |_, ems| ems.certificate == state).await;
        for ems in seen.values() {
            assert_eq!(ems.device, DeviceState::Unknown, "{ems:?}");
            assert!(ems.detail.contains(words), "{profile}: {}", ems.detail);
        }
        fabric.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multitenant_site_by_fqdn_and_refusal_of_unknown_sites() {
    let extra = format!("sites = [\"Default\", \"SiteA\"]\n{}", all_authorized(68, 2));
    let fabric = Fabric::start(topology(68, 2, &extra)).await.unwrap();
    configure(&fabric, &format!("SiteA.{EMS_HOST}"), &[]).await;
    wait_all(&fabric, "site A authorized", |_, ems| healthy(ems)).await;
    let devices = fabric.lab().ems("ems1").unwrap().devices();
    assert!(devices.iter().any(|d| d.site == "SiteA"), "{devices:?}");

    for server in [format!("nosuch.{EMS_HOST}"), EMS_HOST.to_owned()] {
        configure(&fabric, &server, &[]).await;
        let seen = wait_all(&fabric, "global refused", |_, ems| {
            ems.device == DeviceState::Denied && ems.server == server.to_lowercase()
        })
        .await;
        for ems in seen.values() {
            assert_eq!(ems.detail, "Certificate user does not have access to global.");
        }
    }
    fabric.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_ip_is_honoured() {
    let fabric = Fabric::start(topology(69, 2, &all_authorized(69, 2)))
        .await
        .unwrap();
    configure(&fabric, EMS_HOST, &["set source-ip 127.0.69.99"]).await;
    wait_all(&fabric, "healthy", |_, ems| healthy(ems)).await;
    let seen = fabric.lab().ems("ems1").unwrap().requests_from();
    assert_eq!(seen, vec!["127.0.69.99".parse::<std::net::IpAddr>().unwrap()]);
    fabric.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_ems_never_blocks_raft_or_the_cli() {
    let fabric = Fabric::start(topology(70, 10, "respond = false")).await.unwrap();
    fabric.wait_converged(CONVERGE).await.unwrap();
    let port = fabric.lab().ems("ems1").unwrap().addr().port();
    let mut lines = vec!["config endpoint-control fctems".to_owned()];
    for name in ["ems1", "ems2", "ems3"] {
        lines.extend([
            format!("edit {name}"),
            format!("set server {EMS_HOST}"),
            format!("set https-port {port}"),
            "set call-timeout 3".to_owned(),
            "next".to_owned(),
        ]);
    }
    lines.push("end".to_owned());
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    assert!(!fabric.exec("root", &lines).await.unwrap().failed);
    // While 30 probes hang, the CLI answers and writes replicate.
    let out = fabric
        .exec(
            "root",
            &[
                "config endpoint-control fctems",
                "edit ems2",
                "set https-port 1",
                "end",
            ],
        )
        .await
        .unwrap();
    assert!(!out.failed, "{}", out.output);
    let status = fabric
        .wait_for("every node applied the last write", CONVERGE, |s| {
            s.nodes
                .iter()
                .all(|n| n.revision == s.revision && n.config_hash == s.nodes[0].config_hash)
        })
        .await
        .unwrap();
    assert_eq!(status.revision, Some(4), "three entries, then one change");
    let shown = fabric
        .exec("branch9", &["show endpoint-control fctems"])
        .await
        .unwrap();
    assert!(shown.output.contains("set https-port 1\n"), "{}", shown.output);
    wait_all(&fabric, "ems1 times out everywhere", |_, ems| {
        ems.connection == Connection::Timeout
    })
    .await;
    fabric.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_connectivity_checks_now() {
    let fabric = Fabric::start(topology(71, 2, &all_authorized(71, 2)))
        .await
        .unwrap();
    configure(&fabric, EMS_HOST, &[]).await;
    fabric.wait_converged(CONVERGE).await.unwrap();
    let out = fabric
        .exec("branch1", &["diagnose endpoint fctems test-connectivity ems1"])
        .await
        .unwrap();
    assert!(!out.failed, "{}", out.output);
    assert!(out.output.contains("Connection: Successful"), "{}", out.output);
    assert!(
        out.output.contains("EMS serial: FCTEMS8822001234"),
        "{}",
        out.output
    );
    let missing = fabric
        .exec("branch1", &["diagnose endpoint fctems test-connectivity nosuch"])
        .await
        .unwrap();
    assert!(missing.failed);
    fabric.stop().await;
}
