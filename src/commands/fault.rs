//! `fabricsim fault`: cut, slow or heal the links between the nodes of a running fabric.
//!
//! Each node holds the faults of the connections it dials, so a fault between two nodes
//! is set on both; the command asks every node it touches over its admin service, which
//! works for `fabricsim up` and for nodes run as `fabricsim node` alike.

use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;

use super::{Error, FabricFiles};
use crate::launcher::Fault;
use crate::link::{LinkChange, LinkFault, LinkRule};
use crate::rpc::client::AdminConnection;

#[derive(Debug, Subcommand)]
pub enum FaultAction {
    /// Cut the link between nodes A and B, both ways: calls between them time out.
    Partition { a: String, b: String },
    /// Cut every link of NODE; its operator still reaches it.
    Isolate { node: String },
    /// Slow the link between A and B by MS milliseconds each way.
    Delay {
        a: String,
        b: String,
        #[arg(value_parser = clap::value_parser!(u64).range(1..=LinkFault::MAX_DELAY_MS))]
        ms: u64,
    },
    /// Heal every link of every node.
    Heal,
    /// List every node's faulty links.
    List,
}

pub(super) async fn fault(path: &std::path::Path, action: FaultAction) -> Result<ExitCode, Error> {
    let files = FabricFiles::open(path)?;
    let operator = files.operator()?;
    let fault = match action {
        FaultAction::Partition { a, b } => Fault::Partition(a, b),
        FaultAction::Isolate { node } => Fault::Isolate(node),
        FaultAction::Delay { a, b, ms } => Fault::Delay(a, b, Duration::from_millis(ms)),
        FaultAction::Heal => Fault::Heal,
        FaultAction::List => return list(&files, &operator).await,
    };
    for node in fault_nodes(&fault) {
        files.addr(node)?;
    }
    let addrs = files.addrs();
    for (node, change) in fault.changes(&addrs)? {
        let mut connection = AdminConnection::connect(addrs[&node], &operator).await?;
        connection.links(change).await?;
    }
    println!("{}", describe(&fault));
    list(&files, &operator).await
}

/// The nodes a fault names, to check against the topology first.
fn fault_nodes(fault: &Fault) -> Vec<&str> {
    match fault {
        Fault::Partition(a, b) | Fault::Delay(a, b, _) => vec![a, b],
        Fault::Isolate(node) => vec![node],
        Fault::Heal => Vec::new(),
    }
}

fn describe(fault: &Fault) -> String {
    match fault {
        Fault::Partition(a, b) => format!("cut the link between {a} and {b}"),
        Fault::Isolate(node) => format!("cut every link of {node}"),
        Fault::Delay(a, b, delay) => format!(
            "slowed the link between {a} and {b} by {} ms each way",
            delay.as_millis()
        ),
        Fault::Heal => "healed every link".to_owned(),
    }
}

/// Prints every node's faulty links, one line each.
async fn list(files: &FabricFiles, operator: &crate::rpc::client::Operator) -> Result<ExitCode, Error> {
    let mut lines = Vec::new();
    for (node, addr) in files.addrs() {
        let mut connection = AdminConnection::connect(addr, operator).await?;
        for LinkRule { peer, addr, fault } in connection.links(LinkChange::List).await? {
            let fault = match fault {
                LinkFault::Cut => "cut".to_owned(),
                LinkFault::Delay(delay) => format!("delay {} ms", delay.as_millis()),
            };
            lines.push(format!("{node:<12} -> {peer:<12} {addr:<21} {fault}"));
        }
    }
    if lines.is_empty() {
        println!("no faulty links");
    } else {
        println!("{:<12}    {:<12} {:<21} fault", "node", "peer", "address");
        for line in lines {
            println!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
