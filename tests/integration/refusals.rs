//! Bad input gets the FortiOS error text and changes nothing, on any node.

use fabricsim::harness::{Fabric, generated_topology};
use fabricsim::status::FabricReport;

use crate::{CONVERGE, ems_entry, run_ok};

/// Every node's (revision, hash).
fn fingerprint(status: &FabricReport) -> Vec<(Option<u64>, Option<String>)> {
    status
        .nodes
        .iter()
        .map(|n| (n.revision, n.config_hash.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_commands_print_fortios_errors_and_change_nothing() {
    let fabric = Fabric::start(generated_topology("refusals", 3))
        .await
        .expect("fabric starts");
    fabric.wait_converged(CONVERGE).await.expect("converges");
    let mut setup = ems_entry("ems1", "127.0.100.1", 443);
    setup.extend(ems_entry("ems2", "127.0.100.2", 443));
    setup.extend([
        "config endpoint-control fctems".to_owned(),
        "edit cloud1".to_owned(),
        "set fortinetone-cloud-authentication enable".to_owned(),
        "end".to_owned(),
    ]);
    let setup: Vec<&str> = setup.iter().map(String::as_str).collect();
    run_ok(&fabric, "root", &setup).await;
    let before = fingerprint(&fabric.wait_converged(CONVERGE).await.unwrap());

    let cases: &[(&str, &[&str], &str)] = &[
        (
            "branch1",
            &[
                "config endpoint-control fctems",
                "edit ems1",
                "set https-port 8443",
                "end",
            ],
            "Modification not allowed unless 'configuration-sync' is set to 'local'",
        ),
        (
            "branch2",
            &["config endpoint-control fctems", "delete ems1", "end"],
            "Modification not allowed unless 'configuration-sync' is set to 'local'",
        ),
        (
            "root",
            &[
                "config endpoint-control fctems",
                "edit ems4",
                "set server 127.0.100.4",
                "end",
            ],
            "Command fail. Return code -4",
        ),
        (
            "root",
            &[
                "config endpoint-control fctems",
                "edit ems2",
                "set fortinetone-cloud-authentication enable",
                "end",
            ],
            "node_check_object fail! for fortinetone-cloud-authentication enable",
        ),
        (
            "root",
            &[
                "config endpoint-control fctems",
                "edit ems1",
                "set https-port 0",
                "end",
            ],
            "value parse error before '0'",
        ),
        (
            "root",
            &[
                "config endpoint-control fctems",
                "edit ems1",
                "set server 300.1.1.1",
                "end",
            ],
            "value parse error before '300.1.1.1'",
        ),
        (
            "root",
            &[
                "config endpoint-control fctems",
                "edit ems1",
                "set no-such-field 1",
                "end",
            ],
            "command parse error before 'no-such-field'",
        ),
        (
            "root",
            &["config endpoint-control fctems", "edit ems1", "set server", "end"],
            "incomplete command in the end",
        ),
    ];
    for (node, lines, expected) in cases {
        let out = fabric.exec(node, lines).await.unwrap();
        assert!(out.failed, "{lines:?} on {node} should fail:\n{}", out.output);
        assert!(
            out.output.contains(expected),
            "{lines:?} on {node}: expected {expected:?} in:\n{}",
            out.output
        );
        let now = fingerprint(&fabric.wait_converged(CONVERGE).await.unwrap());
        assert_eq!(now, before, "{lines:?} on {node} changed the configuration");
    }
    fabric.stop().await;
}

/// A pasted block is answered line by line, in order, and a refused line in it is refused
/// alone, as on a FortiGate's console: the lines around it still take effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pasted_block_is_answered_line_by_line() {
    let fabric = Fabric::start(generated_topology("pasted", 3))
        .await
        .expect("fabric starts");
    fabric.wait_converged(CONVERGE).await.expect("converges");
    let mut session = fabric.connect("root").await.unwrap().session().await.unwrap();
    let lines = [
        "config endpoint-control fctems",
        "edit ems1",
        "set server 127.0.100.1",
        "set https-port nonsense",
        "set https-port 8443",
        "end",
    ]
    .map(str::to_owned);

    let replies = session.run_pasted(&lines).await.expect("the block runs");

    let failed: Vec<bool> = replies.iter().map(|reply| reply.failed).collect();
    assert_eq!(failed, [false, false, false, true, false, false], "{replies:#?}");
    assert!(
        replies[3].output.contains("value parse error before 'nonsense'"),
        "{}",
        replies[3].output
    );
    assert!(replies[5].revision.is_some(), "`end` committed: {replies:#?}");
    fabric.wait_converged(CONVERGE).await.expect("converges");
    let shown = run_ok(&fabric, "branch2", &["show endpoint-control fctems"]).await;
    assert!(shown.contains("set https-port 8443"), "{shown}");
}
