//! Seeded fault schedules on the default topology: every invariant holds for a few fixed
//! seeds (`fabricsim chaos --seed N --seeds K` runs many more).

use std::path::Path;

use fabricsim::harness::chaos;
use fabricsim::topology::Topology;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_seeds_keep_every_invariant() {
    let topology = Topology::load(Path::new("cluster-configs/default.toml")).expect("the default topology");
    for seed in [1, 2, 3] {
        match chaos::run(&topology, seed, 30).await {
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
