//! Settings written on the root reach every member, identical.

use fabricsim::harness::{Fabric, generated_topology};

use crate::{CONVERGE, ems_entry, run_ok, show_everywhere};

async fn converges(nodes: usize) {
    let fabric = Fabric::start(generated_topology(&format!("conv{nodes}"), nodes))
        .await
        .expect("fabric starts");
    let status = fabric.wait_converged(CONVERGE).await.expect("every member joins");
    assert_eq!(status.nodes.len(), nodes);

    let mut lines = ems_entry("ems1", "127.0.100.1", 8443);
    lines.extend(ems_entry("ems2", "ems.example.com", 443));
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    run_ok(&fabric, "root", &lines).await;

    let status = fabric
        .wait_converged(CONVERGE)
        .await
        .expect("the writes converge");
    let revision = status.revision.expect("root answers");
    assert_eq!(revision, 2, "two entries, two revisions");
    let root_hash = status.nodes[0].config_hash.clone();
    for node in &status.nodes {
        assert_eq!(node.revision, Some(revision), "{}", node.name);
        assert_eq!(node.config_hash, root_hash, "{}", node.name);
    }
    let voters = status.nodes.iter().filter(|n| n.raft.state == "follower").count();
    let learners = status.nodes.iter().filter(|n| n.raft.state == "learner").count();
    assert_eq!(voters, 4.min(nodes - 1), "up to five voters, root included");
    assert_eq!(learners, nodes.saturating_sub(5));

    let shown = show_everywhere(&fabric).await;
    let (_, root_show) = &shown[0];
    assert!(
        root_show.contains("edit \"ems1\"") && root_show.contains("set https-port 8443"),
        "{root_show}"
    );
    for (name, show) in &shown {
        assert_eq!(show, root_show, "{name} shows a different table");
    }
    fabric.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_converge() {
    converges(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_nodes_converge_with_learners() {
    converges(10).await;
}
