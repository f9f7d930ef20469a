//! Integration tests: whole fabrics through `fabricsim::harness`, and the `fabricsim`
//! binary as a user runs it. One test crate, so the suite links once.

mod authorization;
mod binary;
mod browser;
mod chaos;
mod cloud;
mod contracts;
mod convergence;
mod disk;
mod ems;
mod fabric_settings;
mod faults;
mod golden;
mod gui;
mod layers;
mod lifecycle;
mod partitions;
mod refusals;
mod rest;
mod ssh;
mod topology_check;
mod trust;

use std::time::Duration;

/// Generous deadlines: the suite runs in debug builds on two shared cores.
pub const CONVERGE: Duration = Duration::from_secs(30);

/// The CLI lines of one complete fctems entry.
pub fn ems_entry(name: &str, server: &str, port: u16) -> Vec<String> {
    vec![
        "config endpoint-control fctems".to_owned(),
        format!("edit {name}"),
        format!("set server {server}"),
        format!("set https-port {port}"),
        "end".to_owned(),
    ]
}

/// `show endpoint-control fctems` on every node of the fabric.
pub async fn show_everywhere(fabric: &fabricsim::harness::Fabric) -> Vec<(String, String)> {
    let mut shown = Vec::new();
    for spec in &fabric.topology().nodes {
        let out = fabric
            .exec(&spec.name, &["show endpoint-control fctems"])
            .await
            .expect("show runs on every node");
        assert!(!out.failed, "show failed on {}: {}", spec.name, out.output);
        shown.push((spec.name.clone(), out.output));
    }
    shown
}

/// Runs `lines` on `node` in one session, as `fabricsim exec` does, and returns what they
/// printed; fails the test with that output when one of them failed.
pub async fn run_ok(fabric: &fabricsim::harness::Fabric, node: &str, lines: &[&str]) -> String {
    let out = fabric
        .exec(node, lines)
        .await
        .unwrap_or_else(|e| panic!("{node}: {e}"));
    assert!(!out.failed, "{}", out.output);
    out.output
}
