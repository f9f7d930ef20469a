//! The fabric settings around the connector: `system settings` (replicated) and each
//! node's own `system csf`, whose `configuration-sync local` lets a member keep its own
//! EMS table.

use fabricsim::harness::{Fabric, generated_topology};

use crate::{CONVERGE, ems_entry, run_ok};

/// `show endpoint-control fctems` on `node`.
async fn show_fctems(fabric: &Fabric, node: &str) -> String {
    fabric
        .exec(node, &["show endpoint-control fctems"])
        .await
        .unwrap()
        .output
}

fn lines(lines: &[String]) -> Vec<&str> {
    lines.iter().map(String::as_str).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gui_endpoint_control_is_replicated() {
    let fabric = Fabric::start(generated_topology("settings", 3)).await.unwrap();
    fabric.wait_converged(CONVERGE).await.unwrap();
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
    fabric.wait_converged(CONVERGE).await.unwrap();
    let shown = fabric.exec("branch2", &["show system settings"]).await.unwrap();
    assert_eq!(
        shown.output,
        "config system settings\n    set gui-endpoint-control disable\nend\n"
    );
    let refused = fabric
        .exec(
            "branch2",
            &["config system settings", "set gui-endpoint-control enable", "end"],
        )
        .await
        .unwrap();
    assert!(
        refused.output.contains("Modification not allowed"),
        "{}",
        refused.output
    );
    fabric.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_sync_local_keeps_a_members_own_table_until_default() {
    let fabric = Fabric::start(generated_topology("csflocal", 3)).await.unwrap();
    fabric.wait_converged(CONVERGE).await.unwrap();
    assert!(
        !fabric
            .exec("root", &lines(&ems_entry("ems1", "127.0.100.1", 443)))
            .await
            .unwrap()
            .failed
    );
    fabric.wait_converged(CONVERGE).await.unwrap();

    // branch1 goes local and edits its own copy.
    run_ok(
        &fabric,
        "branch1",
        &[
            "config system csf",
            "set status enable",
            "set configuration-sync local",
            "end",
            "config endpoint-control fctems",
            "edit ems1",
            "set server 127.0.100.99",
            "end",
        ],
    )
    .await;
    let status = fabric.wait_converged(CONVERGE).await.unwrap();
    let sync: Vec<&str> = status
        .nodes
        .iter()
        .map(|n| n.configuration_sync.as_str())
        .collect();
    assert_eq!(sync, ["default", "local", "default"]);
    assert!(status.table().contains("local"));

    // The root changes its table: branch2 follows, branch1 keeps its own.
    assert!(
        !fabric
            .exec("root", &lines(&ems_entry("ems1", "127.0.100.2", 443)))
            .await
            .unwrap()
            .failed
    );
    fabric.wait_converged(CONVERGE).await.unwrap();
    assert!(
        show_fctems(&fabric, "branch1")
            .await
            .contains("set server \"127.0.100.99\"")
    );
    assert!(
        show_fctems(&fabric, "branch2")
            .await
            .contains("set server \"127.0.100.2\"")
    );

    // branch1's own setting survives its restart (and the root's).
    let mut fabric = fabric;
    fabric.kill("branch1").await.unwrap();
    fabric.restart("branch1").await.unwrap();
    fabric.kill("root").await.unwrap();
    fabric.restart("root").await.unwrap();
    fabric.wait_converged(CONVERGE).await.unwrap();
    let shown = show_fctems(&fabric, "branch1").await;
    assert!(shown.contains("set server \"127.0.100.99\""), "{shown}");

    // Back to default: branch1 adopts the root's table again.
    run_ok(
        &fabric,
        "branch1",
        &["config system csf", "set configuration-sync default", "end"],
    )
    .await;
    let shown = show_fctems(&fabric, "branch1").await;
    assert!(shown.contains("set server \"127.0.100.2\""), "{shown}");
    let refused = fabric
        .exec(
            "branch1",
            &[
                "config endpoint-control fctems",
                "edit ems1",
                "set server 127.0.100.88",
                "end",
            ],
        )
        .await
        .unwrap();
    assert!(
        refused.output.contains("Modification not allowed"),
        "{}",
        refused.output
    );
    fabric.stop().await;
}
