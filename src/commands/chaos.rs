//! `fabricsim chaos`: seeded fault schedules on an in-process fabric of the topology, each
//! followed by the invariant checks of [`crate::harness::chaos`].

use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use futures::StreamExt as _;

use super::{Error, TopologyArg};
use crate::harness::chaos;
use crate::topology::Topology;

#[derive(Debug, Args)]
pub struct ChaosArgs {
    #[command(flatten)]
    topology: TopologyArg,
    /// The seed of the schedule (the first one, with --seeds).
    #[arg(long)]
    seed: u64,
    /// Steps per schedule.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    steps: u64,
    /// Run this many seeds, from --seed on.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    seeds: u64,
    /// Run this many seeds at once, each its own fabric.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    jobs: u64,
}

pub(super) async fn chaos(args: ChaosArgs) -> Result<ExitCode, Error> {
    let topology = Topology::load(&args.topology.path)?;
    let steps = usize::try_from(args.steps).expect("at most 10000 steps");
    let started = Instant::now();
    let seeds = args.seed..args.seed.saturating_add(args.seeds);
    let runs = futures::stream::iter(seeds)
        .map(|seed| {
            let topology = &topology;
            async move { chaos::run(topology, seed, steps).await }
        })
        .buffer_unordered(usize::try_from(args.jobs).expect("at most 64 jobs"));
    let mut runs = std::pin::pin!(runs);
    let (mut passed, mut failed) = (0_u64, Vec::new());
    while let Some(result) = runs.next().await {
        match result {
            Ok(report) => {
                passed += 1;
                println!("{report}");
            }
            Err(failure) => {
                println!("{failure}");
                failed.push(failure.schedule.seed);
            }
        }
    }
    failed.sort_unstable();
    println!(
        "{} seeds in {:.1} s: {passed} passed, {} failed{}",
        args.seeds,
        started.elapsed().as_secs_f64(),
        failed.len(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(" (seeds {failed:?})")
        }
    );
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
