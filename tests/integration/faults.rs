//! Kills and restarts: nothing acknowledged is lost, and a member that was away catches up.

use fabricsim::harness::{Fabric, generated_topology};

use crate::{CONVERGE, ems_entry, run_ok};

/// Rewrites entry `ems1`'s port `count` times, each write acknowledged.
async fn write_many(fabric: &Fabric, count: u16) {
    let mut session = fabric
        .connect("root")
        .await
        .expect("connect to root")
        .session()
        .await
        .expect("session");
    for line in [
        "config endpoint-control fctems",
        "edit ems1",
        "set server 127.0.100.11",
    ] {
        session.run(line).await.expect("line runs");
    }
    for port in 1..=count {
        let lines = [
            format!("set https-port {port}"),
            "next".to_owned(),
            "edit ems1".to_owned(),
        ];
        for reply in session.run_pasted(&lines).await.expect("lines run") {
            assert!(!reply.failed, "{}", reply.output);
        }
    }
    session.run("end").await.expect("end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_away_for_many_entries_catches_up_by_snapshot() {
    let mut topology = generated_topology("catchup", 3);
    topology.raft.snapshot_every = 20;
    topology.raft.keep_logs = 5;
    let mut fabric = Fabric::start(topology).await.expect("fabric starts");
    fabric.wait_converged(CONVERGE).await.expect("converges");

    fabric.kill("branch2").await.expect("kill");
    write_many(&fabric, 120).await;
    let root_applied = fabric
        .node("root")
        .unwrap()
        .raft()
        .metrics()
        .borrow()
        .last_applied
        .unwrap()
        .index;

    fabric.restart("branch2").await.expect("restart");
    let status = fabric.wait_converged(CONVERGE).await.expect("branch2 catches up");
    assert_eq!(status.revision, Some(120));

    let member = fabric.node("branch2").unwrap().raft().metrics().borrow().clone();
    let snapshot = member.snapshot.expect("branch2 received a snapshot");
    assert!(
        snapshot.index > 5,
        "branch2's snapshot ({snapshot}) should come from the root, past the entries it had"
    );
    let root_purged = fabric.node("root").unwrap().raft().metrics().borrow().purged;
    assert!(
        root_purged.is_some_and(|p| p.index > 5),
        "the root purged its log: {root_purged:?}"
    );
    assert!(member.last_applied.unwrap().index >= root_applied);
    fabric.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_restart_keeps_acknowledged_writes_and_leads_again() {
    let mut fabric = Fabric::start(generated_topology("rootrestart", 3))
        .await
        .expect("fabric starts");
    fabric.wait_converged(CONVERGE).await.expect("converges");
    let mut lines = ems_entry("ems1", "127.0.100.1", 8443);
    lines.extend(ems_entry("ems2", "127.0.100.2", 10443));
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    assert!(!fabric.exec("root", &lines).await.unwrap().failed);
    let before = fabric.wait_converged(CONVERGE).await.expect("converges");

    fabric.kill("root").await.expect("kill root");
    // The members keep serving what they applied while the root is away.
    let shown = fabric
        .exec("branch1", &["show endpoint-control fctems"])
        .await
        .unwrap();
    assert!(shown.output.contains("set https-port 10443"), "{}", shown.output);

    fabric.restart("root").await.expect("restart root");
    let after = fabric
        .wait_for("the root leads and every node converged", CONVERGE, |s| {
            s.converged && s.nodes[0].raft.state == "leader"
        })
        .await
        .expect("root leads again");
    assert_eq!(after.revision, before.revision);
    assert_eq!(after.nodes[0].config_hash, before.nodes[0].config_hash);

    // And it accepts writes again.
    let lines = ems_entry("ems3", "127.0.100.3", 443);
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    run_ok(&fabric, "root", &lines).await;
    let status = fabric.wait_converged(CONVERGE).await.expect("converges");
    assert_eq!(status.revision, before.revision.map(|r| r + 1));
    fabric.stop().await;
}

/// Stopping a fabric whose members are still being admitted (learner, then voter) ends:
/// no half-done membership change or open call holds a node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fabric_stops_while_members_are_joining() {
    for round in 0..5 {
        let fabric = Fabric::start(generated_topology("stopping", 3))
            .await
            .expect("fabric starts");
        let stop = tokio::time::timeout(CONVERGE, fabric.stop());
        assert!(
            stop.await.is_ok(),
            "round {round}: the fabric did not stop within {CONVERGE:?}"
        );
    }
}
