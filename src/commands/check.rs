//! `fabricsim check`: validate a topology file and explain every problem.

use std::path::Path;
use std::process::ExitCode;

use super::Error;
use crate::topology::{Topology, TopologyError};

pub(super) fn check(path: &Path) -> Result<ExitCode, Error> {
    match Topology::load(path) {
        Ok(topology) => {
            println!(
                "{}: fabric {:?}, {} nodes (root {}, {} voters), no problems",
                path.display(),
                topology.fabric.name,
                topology.nodes.len(),
                topology.root().name,
                topology.fabric.voters.min(topology.nodes.len()),
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ TopologyError::Invalid { .. }) => {
            print!("{e}");
            if !e.to_string().ends_with('\n') {
                println!();
            }
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}
