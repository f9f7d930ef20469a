//! Seeded fault schedules on the default topology: every invariant holds for a few fixed
//! seeds (`fabricsim chaos --seed N --seeds K` runs many more).

use std::path::Path;

use fabricsim::harness::chaos;
use fabricsim::topology::Topology;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_seeds_keep_every_invariant() {
    let topology = Topology::load(Path::new("cluster-configs/default.toml")).expect("the default topology");
    play(&topology, &[1, 2, 3]).await;
}

/// Plays 30 steps of each seed on `topology`; fails with the first failure's report.
async fn play(topology: &Topology, seeds: &[u64]) {
    for &seed in seeds {
        match chaos::run(topology, seed, 30).await {
            Ok(report) => assert_eq!(report.steps, 30),
            Err(failure) => panic!("{failure}"),
        }
    }
}

#[test]
fn a_seed_replays_the_same_schedule() {
    let topology = Topology::load(Path::new("cluster-configs/default.toml")).expect("the default topology");
    let topology = chaos::chaos_topology(&topology);
    let first = chaos::Schedule::draw(7, 30, chaos::CLIENTS, &topology);
    assert_eq!(first, chaos::Schedule::draw(7, 30, chaos::CLIENTS, &topology));
    assert!(first.to_string().starts_with("seed 7 (3 clients, 30 steps):\n"));
}

/// Ten nodes, five of them learners. Seed 806 once left every learner behind for good: the
/// root was cut off while a write waited for its commit, and a learner, which is sent
/// entries only once they are committed, saw that commit only while backing off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_seeds_keep_every_invariant_with_learners() {
    let default = Topology::load(Path::new("cluster-configs/default.toml")).expect("the default topology");
    let mut topology =
        Topology::load(Path::new("cluster-configs/ten-nodes.toml")).expect("the ten-node topology");
    let mut ems = default.ems[0].clone();
    ems.authorized = topology.nodes.iter().map(|node| node.serial.clone()).collect();
    topology.ems = vec![ems];
    play(&topology, &[806]).await;
}
