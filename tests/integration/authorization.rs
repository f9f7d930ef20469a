//! Member authorization on the root: a member the topology does not pre-authorize waits
//! in the root's pending list and receives no configuration until the root's
//! `config system csf` / `config trusted-list` accepts its serial; denying an admitted
//! member removes it from the Raft group.

use axum::http::{Method, StatusCode};
use fabricsim::harness::{Fabric, generated_topology};
use fabricsim::status::{FabricReport, NodeReport};
use fabricsim::topology::ApiUserSpec;

use crate::{CONVERGE, ems_entry};

/// The serial of `branch2` in a generated topology.
const BRANCH2: &str = "FGVM01TM22000003";
/// The serial of `branch1` in a generated topology.
const BRANCH1: &str = "FGVM01TM22000002";
/// The REST API key of the test's API user.
const KEY: &str = "authzTestKey0123456789abcdefghi";

/// The report of `name`, a node the test's topology has.
fn node<'r>(status: &'r FabricReport, name: &str) -> &'r NodeReport {
    status.node(name).expect("the node is in the topology")
}

/// Whether node id `id` is in the root's Raft group, as the root itself sees it.
fn in_root_group(fabric: &Fabric, id: u64) -> bool {
    let root = fabric.node("root").expect("the root runs").status();
    root.voters
        .iter()
        .chain(&root.learners)
        .any(|member| *member == id)
}

/// The lines that accept (or deny) `serial` in the root's trusted-list.
fn trust(serial: &str, action: &str) -> Vec<String> {
    [
        "config system csf",
        "config trusted-list",
        &format!("edit {serial}"),
        &format!("set serial {serial}"),
        &format!("set action {action}"),
        "end",
        "end",
    ]
    .map(str::to_owned)
    .to_vec()
}

async fn run(fabric: &Fabric, name: &str, lines: &[String]) -> String {
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let out = fabric.exec(name, &lines).await.expect("the lines run");
    assert!(!out.failed, "{name}: {}", out.output);
    out.output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_admits_members_its_trusted_list_accepts_and_removes_those_it_denies() {
    let mut topology = generated_topology("authorization", 3);
    topology.nodes[2].authorized = false;
    topology.api_users.push(ApiUserSpec {
        name: "automation".to_owned(),
        key: Some(KEY.to_owned()),
        accprofile: "super_admin".to_owned(),
    });
    let fabric = Fabric::start(topology).await.expect("fabric starts");

    // branch2 asks, is refused, and waits; the others converge without it.
    let status = fabric
        .wait_for(
            "branch2 pending, root and branch1 converged",
            CONVERGE,
            |status| {
                node(status, "branch2").raft.state == "pending"
                    && node(status, "branch1").converged
                    && node(status, "root").converged
            },
        )
        .await
        .expect("branch2 waits for authorization");
    assert!(!node(&status, "branch2").converged);
    assert!(
        !status.converged && status.settled(),
        "waiting on the trusted-list is settled, not converged"
    );
    assert!(
        status.lag().contains(&format!("accept serial {BRANCH2}")),
        "{}",
        status.lag()
    );
    assert!(!in_root_group(&fabric, 3));
    run(&fabric, "root", &ems_entry("ems1", "127.0.100.1", 443)).await;
    let status = fabric
        .wait_for("branch1 has the write", CONVERGE, |status| {
            node(status, "branch1").converged
        })
        .await
        .expect("branch1 converges");
    assert!(node(&status, "root").revision >= Some(1));
    assert_eq!(
        node(&status, "branch2").revision,
        Some(0),
        "no configuration reaches it"
    );
    let listed = run(
        &fabric,
        "root",
        &["diagnose sys csf authorization pending-list".to_owned()],
    )
    .await;
    let row = listed
        .lines()
        .find(|line| line.starts_with(BRANCH2))
        .unwrap_or_else(|| panic!("branch2 is listed:\n{listed}"));
    assert!(row.contains("127.0.0.1"), "{row}");
    assert!(row.contains(&format!("FGVM01TM22000001:{BRANCH2}")), "{row}");
    assert!(row.contains("branch2"), "{row}");
    assert!(
        !listed.contains(BRANCH1),
        "a pre-authorized member is not pending:\n{listed}"
    );

    // A member may read the trusted-list but not change it; bad values change nothing.
    let before = fabric.exec("root", &["show system csf"]).await.unwrap().output;
    let refused = fabric
        .exec(
            "branch1",
            &trust(BRANCH2, "accept")
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    assert!(refused.failed);
    assert!(
        refused
            .output
            .contains("Modification not allowed unless 'configuration-sync' is set to 'local'"),
        "{}",
        refused.output
    );
    let bad = fabric
        .exec(
            "root",
            &[
                "config system csf",
                "config trusted-list",
                &format!("edit {BRANCH2}"),
                "set action maybe",
                "set serial FGVM01TM2200000000003",
                "set authorization-type certificate",
                "end",
                "abort",
                "abort",
            ],
        )
        .await
        .unwrap();
    assert!(bad.failed);
    assert!(
        bad.output.contains("value parse error before 'maybe'"),
        "{}",
        bad.output
    );
    assert!(
        bad.output
            .contains("node_check_object fail! for authorization-type certificate"),
        "{}",
        bad.output
    );
    assert_eq!(
        fabric.exec("root", &["show system csf"]).await.unwrap().output,
        before
    );
    assert!(!in_root_group(&fabric, 3));

    // Accepting the serial on the root lets branch2 in at its next request.
    run(&fabric, "root", &trust(BRANCH2, "accept")).await;
    fabric
        .wait_converged(CONVERGE)
        .await
        .expect("branch2 joins and converges");
    assert!(in_root_group(&fabric, 3));
    let listed = run(
        &fabric,
        "root",
        &["diagnose sys csf authorization pending-list".to_owned()],
    )
    .await;
    assert!(!listed.contains(BRANCH2), "{listed}");
    let shown = run(&fabric, "branch2", &["show system csf".to_owned()]).await;
    assert!(
        shown.contains(&format!("set serial \"{BRANCH2}\"")),
        "replicated:\n{shown}"
    );
    let mut rest = fabric.rest("root").await.expect("the REST API answers");
    let bearer = format!("Bearer {KEY}");
    let csf = rest
        .request(
            Method::GET,
            "/api/v2/cmdb/system/csf",
            &[("authorization", &bearer)],
            &[],
        )
        .await
        .expect("GET system/csf");
    assert_eq!(csf.status, StatusCode::OK, "{}", csf.text());
    let listed = &csf.json()["results"][0]["trusted-list"];
    assert_eq!(listed[0]["name"], BRANCH2, "{listed}");
    assert_eq!(listed[0]["serial"], BRANCH2, "{listed}");
    assert_eq!(listed[0]["action"], "accept", "{listed}");
    assert_eq!(listed[0]["authorization-type"], "serial", "{listed}");

    // Denying branch1 removes it from the group; later writes reach branch2, not branch1.
    run(&fabric, "root", &trust(BRANCH1, "deny")).await;
    fabric
        .wait_for("branch1 denied and out of the root's group", CONVERGE, |status| {
            node(status, "branch1").raft.state == "denied" && !in_root_group(&fabric, 2)
        })
        .await
        .expect("branch1 is removed");
    run(&fabric, "root", &ems_entry("ems2", "127.0.100.2", 443)).await;
    let status = fabric
        .wait_for("branch2 has the write", CONVERGE, |status| {
            node(status, "branch2").converged
        })
        .await
        .expect("branch2 converges");
    let root_revision = node(&status, "root").revision;
    assert!(
        node(&status, "branch1").revision < root_revision,
        "branch1 gets no more writes"
    );
    assert!(!node(&status, "branch1").converged);
    assert!(!status.converged);
    assert_eq!(
        fabric.node("root").unwrap().status().leader,
        Some(1),
        "the root keeps leading"
    );

    // Accepted again, branch1 rejoins and catches up on what it missed.
    run(&fabric, "root", &trust(BRANCH1, "accept")).await;
    fabric
        .wait_converged(CONVERGE)
        .await
        .expect("branch1 rejoins and converges");
    assert!(in_root_group(&fabric, 2));
    fabric.stop().await;
}
