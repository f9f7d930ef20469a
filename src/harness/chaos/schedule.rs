//! A fault schedule drawn from a seed: the same seed and length give the same steps.

use std::fmt;

use crate::topology::{Role, Topology};

/// One step of a schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Client N writes its next value (on its own; the schedule goes on at once).
    Write(usize),
    /// Wait this many milliseconds.
    Pause(u64),
    Kill(String),
    Restart(String),
    Partition(String, String),
    Isolate(String),
    /// Slow the link between two nodes by this many milliseconds each way.
    Delay(String, String, u64),
    Heal,
    EmsStop,
    EmsStart,
    /// Deny a FortiGate on the EMS.
    Deny(String),
    /// Authorize a FortiGate on the EMS.
    Authorize(String),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Write(client) => write!(f, "write by client {client}"),
            Step::Pause(ms) => write!(f, "pause {ms} ms"),
            Step::Kill(node) => write!(f, "kill {node}"),
            Step::Restart(node) => write!(f, "restart {node}"),
            Step::Partition(a, b) => write!(f, "partition {a} {b}"),
            Step::Isolate(node) => write!(f, "isolate {node}"),
            Step::Delay(a, b, ms) => write!(f, "delay {a} {b} {ms} ms"),
            Step::Heal => f.write_str("heal"),
            Step::EmsStop => f.write_str("ems stop"),
            Step::EmsStart => f.write_str("ems start"),
            Step::Deny(serial) => write!(f, "ems deny {serial}"),
            Step::Authorize(serial) => write!(f, "ems authorize {serial}"),
        }
    }
}

/// The steps a seed gives, and how many clients write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub seed: u64,
    pub clients: usize,
    pub steps: Vec<Step>,
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {} ({} clients, {} steps):",
            self.seed,
            self.clients,
            self.steps.len()
        )?;
        for (i, step) in self.steps.iter().enumerate() {
            writeln!(f, "  {:>3}. {step}", i + 1)?;
        }
        Ok(())
    }
}

/// SplitMix64: small, fast, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[usize::try_from(self.below(items.len() as u64)).expect("an index fits usize")]
    }
}

impl Schedule {
    /// Draws `steps` steps for the nodes of `topology` with `clients` writers.
    pub fn draw(seed: u64, steps: usize, clients: usize, topology: &Topology) -> Schedule {
        let mut rng = Rng(seed);
        let names: Vec<String> = topology.nodes.iter().map(|n| n.name.clone()).collect();
        let serials: Vec<String> = topology.nodes.iter().map(|n| n.serial.clone()).collect();
        let root = topology
            .nodes
            .iter()
            .find(|n| n.role == Role::Root)
            .map(|n| n.name.clone())
            .unwrap_or_default();
        let mut killed: Vec<String> = Vec::new();
        let mut drawn = Vec::with_capacity(steps);
        while drawn.len() < steps {
            let roll = rng.below(100);
            let step = match roll {
                0..40 => Step::Write(usize::try_from(rng.below(clients.max(1) as u64)).unwrap_or(0)),
                40..55 => Step::Pause(20 + rng.below(180)),
                55..62 => {
                    let (a, b) = two(&mut rng, &names);
                    Step::Partition(a, b)
                }
                62..66 => Step::Isolate(rng.pick(&names).clone()),
                66..74 => Step::Heal,
                74..79 => {
                    let (a, b) = two(&mut rng, &names);
                    Step::Delay(a, b, 5 + rng.below(60))
                }
                79..85 => {
                    // The root goes down one time in three; a member the other times.
                    let node = if rng.below(3) == 0 {
                        root.clone()
                    } else {
                        rng.pick(&names).clone()
                    };
                    if killed.contains(&node) {
                        continue;
                    }
                    killed.push(node.clone());
                    Step::Kill(node)
                }
                85..92 => {
                    if killed.is_empty() {
                        continue;
                    }
                    let i = usize::try_from(rng.below(killed.len() as u64)).unwrap_or(0);
                    Step::Restart(killed.swap_remove(i))
                }
                92..94 => Step::EmsStop,
                94..96 => Step::EmsStart,
                96..98 => Step::Deny(rng.pick(&serials).clone()),
                _ => Step::Authorize(rng.pick(&serials).clone()),
            };
            drawn.push(step);
        }
        Schedule {
            seed,
            clients,
            steps: drawn,
        }
    }
}

/// Two different names (the same one twice when there is only one).
fn two(rng: &mut Rng, names: &[String]) -> (String, String) {
    let a = rng.pick(names).clone();
    let others: Vec<String> = names.iter().filter(|n| **n != a).cloned().collect();
    let b = if others.is_empty() {
        a.clone()
    } else {
        rng.pick(&others).clone()
    };
    (a, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::generated_topology;

    #[test]
    fn a_seed_gives_the_same_schedule_every_time() {
        let topology = generated_topology("seeded", 3);
        let first = Schedule::draw(42, 50, 3, &topology);
        assert_eq!(first, Schedule::draw(42, 50, 3, &topology));
        assert_ne!(first, Schedule::draw(43, 50, 3, &topology));
        assert_eq!(first.steps.len(), 50);
    }

    #[test]
    fn restarts_follow_kills_and_kills_do_not_repeat() {
        let topology = generated_topology("seeded", 3);
        for seed in 0..200 {
            let mut down = Vec::new();
            for step in Schedule::draw(seed, 40, 3, &topology).steps {
                match step {
                    Step::Kill(node) => {
                        assert!(!down.contains(&node), "seed {seed}: {node} killed twice");
                        down.push(node);
                    }
                    Step::Restart(node) => {
                        assert!(down.contains(&node), "seed {seed}: {node} restarted while up");
                        down.retain(|n| *n != node);
                    }
                    Step::Partition(a, b) | Step::Delay(a, b, _) => assert_ne!(a, b),
                    _ => {}
                }
            }
        }
    }
}
