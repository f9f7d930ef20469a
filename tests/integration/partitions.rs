//! Cut and slow links: an isolated member serves what it had and catches up, a root cut
//! off from its voters acknowledges nothing, a minority heals without divergence, and no
//! node's revision ever goes backwards.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fabricsim::harness::{ExecOutput, Fabric, generated_topology};
use fabricsim::status::{FabricReport, NodeReport};

use crate::{CONVERGE, ems_entry, show_everywhere};

/// The report of `name`, a node the test's topology has.
fn node<'r>(status: &'r FabricReport, name: &str) -> &'r NodeReport {
    status.node(name).expect("the node is in the topology")
}

async fn write(fabric: &Fabric, lines: &[String]) -> ExecOutput {
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    fabric.exec("root", &lines).await.expect("the root answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_member_serves_its_configuration_and_catches_up_after_heal() {
    let fabric = Fabric::start(generated_topology("isolated", 3))
        .await
        .expect("fabric starts");
    assert!(
        !write(&fabric, &ems_entry("ems1", "127.0.100.1", 8443))
            .await
            .failed
    );
    let before = fabric.wait_converged(CONVERGE).await.expect("converges");

    fabric.isolate("branch2").expect("isolate");
    let cut_off = fabric
        .wait_for("branch2 reports itself as not converged", CONVERGE, |status| {
            !node(status, "branch2").converged && node(status, "branch1").converged
        })
        .await
        .expect("branch2 notices");
    assert!(
        cut_off.lag().contains("branch2: the root has not reached it"),
        "{}",
        cut_off.lag()
    );
    assert!(
        !cut_off.settled(),
        "a cut link is a fault, not a state to wait in"
    );

    // It keeps serving the configuration it applied.
    let shown = fabric
        .exec("branch2", &["show endpoint-control fctems"])
        .await
        .expect("branch2 answers its operator");
    assert!(shown.output.contains("edit \"ems1\""), "{}", shown.output);

    // The root and branch1 are a quorum of the three voters: writes go on without it.
    let added = write(&fabric, &ems_entry("ems2", "127.0.100.2", 8443)).await;
    assert!(!added.failed, "{}", added.output);
    let status = fabric.status().await;
    assert_eq!(node(&status, "branch2").revision, before.revision);

    fabric.heal().expect("heal");
    let healed = fabric.wait_converged(CONVERGE).await.expect("branch2 catches up");
    assert_eq!(healed.revision, status.revision);
    let shown = show_everywhere(&fabric).await;
    assert!(shown.iter().all(|(_, out)| *out == shown[0].1), "{shown:?}");
    fabric.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_cut_off_from_every_voter_acknowledges_nothing() {
    // Seven nodes: five voters and two learners, which are sent entries only once they
    // are committed, so they too must get the entry the cut left waiting.
    let fabric = Fabric::start(generated_topology("rootcut", 7))
        .await
        .expect("fabric starts");
    fabric.wait_converged(CONVERGE).await.expect("converges");

    fabric.isolate("root").expect("isolate");
    // At once, before the root can know: the write waits for a commit that cannot come.
    let early = write(&fabric, &ems_entry("early", "127.0.100.3", 8443)).await;
    assert!(early.failed, "{}", early.output);
    assert!(early.output.contains("not"), "{}", early.output);
    // Once the silence is longer than an election timeout, it is refused at once.
    fabric
        .wait_for("the root notices it has no quorum", CONVERGE, |status| {
            !node(status, "root").converged
        })
        .await
        .expect("the root notices");
    let late = write(&fabric, &ems_entry("late", "127.0.100.4", 8443)).await;
    assert!(late.failed, "{}", late.output);
    assert!(
        late.output
            .contains("no quorum of voters has answered the fabric root"),
        "{}",
        late.output
    );

    fabric.heal().expect("heal");
    fabric
        .wait_converged(CONVERGE)
        .await
        .expect("converges after heal");
    let shown = show_everywhere(&fabric).await;
    assert!(shown.iter().all(|(_, out)| *out == shown[0].1), "{shown:?}");
    assert!(
        !shown[0].1.contains("\"late\""),
        "a refused write applied: {}",
        shown[0].1
    );
    // Writes commit again.
    assert!(
        !write(&fabric, &ems_entry("after", "127.0.100.5", 8443))
            .await
            .failed
    );
    fabric.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minority_partition_heals_without_divergence_and_revisions_never_go_backwards() {
    let fabric = Arc::new(
        Fabric::start(generated_topology("minority", 5))
            .await
            .expect("fabric starts"),
    );
    fabric.wait_converged(CONVERGE).await.expect("converges");

    // Watch every node's revision while the faults come and go.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (fabric, stop) = (fabric.clone(), stop.clone());
        tokio::spawn(async move {
            let mut seen: BTreeMap<String, u64> = BTreeMap::new();
            let mut backwards = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                for n in fabric.status().await.nodes {
                    let Some(revision) = n.revision else { continue };
                    let last = seen.entry(n.name.clone()).or_insert(revision);
                    if revision < *last {
                        backwards.push(format!("{}: {revision} after {last}", n.name));
                    }
                    *last = revision.max(*last);
                }
            }
            backwards
        })
    };

    for minority in ["branch3", "branch4"] {
        for majority in ["root", "branch1", "branch2"] {
            fabric.partition(minority, majority).expect("partition");
        }
    }
    fabric
        .delay("root", "branch1", Duration::from_millis(20))
        .expect("delay");
    for (i, port) in (8441..8444).enumerate() {
        let out = write(&fabric, &ems_entry(&format!("ems{i}"), "127.0.100.9", port)).await;
        assert!(!out.failed, "the majority commits: {}", out.output);
    }
    let status = fabric.status().await;
    assert_ne!(node(&status, "branch3").revision, status.revision);
    assert_ne!(node(&status, "branch4").revision, status.revision);

    fabric.heal().expect("heal");
    let healed = fabric
        .wait_converged(CONVERGE)
        .await
        .expect("the minority catches up");
    let hashes: Vec<_> = healed.nodes.iter().map(|n| n.config_hash.clone()).collect();
    assert!(hashes.iter().all(|h| *h == hashes[0]), "{}", healed.table());

    stop.store(true, Ordering::Relaxed);
    let backwards = watcher.await.expect("the watcher ends");
    assert!(backwards.is_empty(), "revisions went backwards: {backwards:?}");
    Arc::into_inner(fabric).expect("the watcher let go").stop().await;
}
