//! The fabric's status as `fabricsim status` prints it: one report per node, gathered over
//! gRPC, with convergence judged against the root.
//!
//! A node has converged when it is reachable, belongs to the root's Raft group, is in
//! touch with it (a member heard from the root, the root from a quorum of voters, within
//! twice the longest election timeout), has applied the root's configuration revision
//! with the same content hash, and has finished one EMS check round against that
//! revision. The contact rule is what makes a member cut off from the root report itself
//! as not converged even when no write has happened since.
//!
//! Names follow one rule: a `*Status` is what one party says of itself (a node's
//! [`NodeStatus`], one fctems entry's [`EmsStatus`], a node's EMS
//! [`CheckerStatus`](crate::node::checker::CheckerStatus)); a `*Report` is what this
//! module assembles from those answers (the [`FabricReport`], each [`NodeReport`] line).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::connector::{CertificateState, Connection, DeviceState, EmsStatus};
use crate::node::NodeStatus;
use crate::rpc::client::{AdminConnection, Operator};
use crate::topology::{Role, Topology};

/// The whole fabric at one moment. Its JSON form is a contract: keep the keys stable.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FabricReport {
    pub fabric: String,
    /// The root's node name.
    pub root: String,
    /// The root's configuration revision, `null` when the root cannot be reached.
    pub revision: Option<u64>,
    /// True when every node has converged.
    pub converged: bool,
    pub nodes: Vec<NodeReport>,
    /// How long a node may go without hearing from its group (see the module docs):
    /// the topology's, not part of the JSON.
    #[serde(skip)]
    pub contact_limit_ms: u64,
}

/// One node's line of the status.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct NodeReport {
    pub name: String,
    pub serial: String,
    pub role: Role,
    pub raft: RaftReport,
    pub revision: Option<u64>,
    pub config_hash: Option<String>,
    pub converged: bool,
    /// "default", or "local" when the node keeps its own EMS tables.
    pub configuration_sync: String,
    /// The node's own EMS reachability results, one per fctems entry.
    pub ems: Vec<EmsStatus>,
    /// The configuration revision the node's last completed EMS check round covered.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub checked_revision: Option<u64>,
    /// The node's REST API address (`https://<this>/`), when it answered.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub https: Option<SocketAddr>,
    /// The node's SSH CLI address, when it answered.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ssh: Option<SocketAddr>,
    /// Milliseconds since the node last heard from its group (see
    /// [`NodeStatus::leader_contact_ms`]), when it has and answered.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub leader_contact_ms: Option<u64>,
    /// Why the node could not be asked, when it could not.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

impl NodeReport {
    /// Whether the root keeps this member out of the group by its trusted-list.
    pub fn awaits_administrator(&self) -> bool {
        self.error.is_none() && matches!(self.raft.state.as_str(), "pending" | "denied")
    }
}

/// The node's position in the Raft group.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RaftReport {
    /// "leader", "follower", "learner", "candidate", "shutdown", "unreachable", or for a
    /// member the root keeps out of the group, "pending" (waiting for the root's
    /// trusted-list) or "denied" (denied by it).
    pub state: String,
    pub term: Option<u64>,
    pub applied: Option<u64>,
}

/// The line of a node that could not be asked, and why.
fn unreachable_report(spec: &crate::topology::NodeSpec, error: String) -> NodeReport {
    NodeReport {
        name: spec.name.clone(),
        serial: spec.serial.clone(),
        role: spec.role,
        raft: RaftReport {
            state: "unreachable".to_owned(),
            term: None,
            applied: None,
        },
        revision: None,
        config_hash: None,
        converged: false,
        configuration_sync: "unknown".to_owned(),
        ems: Vec::new(),
        checked_revision: None,
        https: None,
        ssh: None,
        leader_contact_ms: None,
        error: Some(error),
    }
}

impl FabricReport {
    /// Whether every node has converged or waits on an administrator: a member the root
    /// keeps out of the group (pending or denied in its trusted-list) stays where it is
    /// until someone changes the list.
    pub fn settled(&self) -> bool {
        self.nodes
            .iter()
            .all(|node| node.converged || node.awaits_administrator())
    }

    /// The report of the node named `name`, if the topology has one.
    pub fn node(&self, name: &str) -> Option<&NodeReport> {
        self.nodes.iter().find(|node| node.name == name)
    }

    /// Judges convergence from what each node answered (or why it did not).
    pub fn assemble(
        topology: &Topology,
        answers: &BTreeMap<String, Result<NodeStatus, String>>,
    ) -> FabricReport {
        let root_spec = topology.root();
        let root = answers.get(&root_spec.name).and_then(|a| a.as_ref().ok());
        let root_group: Vec<u64> = root
            .map(|r| r.voters.iter().chain(&r.learners).copied().collect())
            .unwrap_or_default();
        let contact_limit = contact_limit_ms(topology);
        let nodes: Vec<NodeReport> = topology
            .nodes
            .iter()
            .map(|spec| {
                let answer = answers
                    .get(&spec.name)
                    .cloned()
                    .unwrap_or_else(|| Err("not asked".to_owned()));
                match answer {
                    Ok(state) => {
                        let in_group = root_group.contains(&state.id)
                            && state
                                .voters
                                .iter()
                                .chain(&state.learners)
                                .any(|id| *id == state.id);
                        let in_touch = state.leader_contact_ms.is_some_and(|ms| ms <= contact_limit);
                        let converged = root.is_some_and(|r| {
                            in_group
                                && in_touch
                                && state.revision == r.revision
                                && state.config_hash == r.config_hash
                                && state.checked_revision == Some(r.revision)
                        });
                        NodeReport {
                            name: spec.name.clone(),
                            serial: spec.serial.clone(),
                            role: spec.role,
                            raft: RaftReport {
                                state: state.raft_state,
                                term: Some(state.term),
                                applied: Some(state.applied),
                            },
                            revision: Some(state.revision),
                            config_hash: Some(state.config_hash),
                            converged,
                            configuration_sync: sync_word(state.sync_local),
                            ems: state.ems,
                            checked_revision: state.checked_revision,
                            https: Some(state.https),
                            ssh: Some(state.ssh),
                            leader_contact_ms: state.leader_contact_ms,
                            error: None,
                        }
                    }
                    Err(error) => unreachable_report(spec, error),
                }
            })
            .collect();
        FabricReport {
            fabric: topology.fabric.name.clone(),
            root: root_spec.name.clone(),
            revision: root.map(|r| r.revision),
            converged: nodes.iter().all(|n| n.converged),
            nodes,
            contact_limit_ms: contact_limit,
        }
    }

    /// The status as a table, one row per node.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let revision = self.revision.map_or("unknown".to_owned(), |r| r.to_string());
        let verdict = if self.converged {
            "converged"
        } else {
            "not converged"
        };
        let _ = writeln!(
            out,
            "fabric {}: root {}, revision {}, {}",
            self.fabric, self.root, revision, verdict
        );
        let header = [
            "NODE",
            "SERIAL",
            "ROLE",
            "RAFT",
            "TERM",
            "APPLIED",
            "REVISION",
            "HASH",
            "CONVERGED",
            "SYNC",
        ];
        let rows: Vec<[String; 10]> = self
            .nodes
            .iter()
            .map(|n| {
                let opt = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
                [
                    n.name.clone(),
                    n.serial.clone(),
                    n.role.to_string(),
                    n.raft.state.clone(),
                    opt(n.raft.term),
                    opt(n.raft.applied),
                    opt(n.revision),
                    n.config_hash
                        .as_deref()
                        .map_or("-".to_owned(), |h| h.chars().take(12).collect()),
                    if n.converged { "yes" } else { "no" }.to_owned(),
                    n.configuration_sync.clone(),
                ]
            })
            .collect();
        out.push_str(&columns(&header, &rows));
        out.push_str(&self.ems_table());
        out
    }

    /// Every node's EMS results, one row per node and entry, with the detail of each row
    /// that is not fully authorized; empty when no node has an entry.
    fn ems_table(&self) -> String {
        let rows: Vec<(&str, &EmsStatus)> = self
            .nodes
            .iter()
            .flat_map(|node| node.ems.iter().map(move |ems| (node.name.as_str(), ems)))
            .collect();
        if rows.is_empty() {
            return String::new();
        }
        let header = [
            "NODE",
            "EMS",
            "SERVER",
            "CONNECTION",
            "CERTIFICATE",
            "DEVICE",
            "EMS SERIAL",
            "CHECKED",
        ];
        let cells: Vec<[String; 8]> = rows
            .iter()
            .map(|(node, ems)| {
                [
                    (*node).to_owned(),
                    ems.name.clone(),
                    ems.server.clone(),
                    ems.connection.as_str().to_owned(),
                    ems.certificate.as_str().to_owned(),
                    ems.device.as_str().to_owned(),
                    ems.ems_serial.clone().unwrap_or_else(|| "-".to_owned()),
                    ems.checked_at.clone().unwrap_or_else(|| "-".to_owned()),
                ]
            })
            .collect();
        let mut out = format!("\n{}", columns(&header, &cells));
        for (node, ems) in rows {
            let healthy = ems.connection == Connection::Connected
                && ems.certificate == CertificateState::Authorized
                && ems.device == DeviceState::Authorized;
            if !healthy && !ems.detail.is_empty() {
                let _ = writeln!(out, "{node}/{}: {}", ems.name, ems.detail);
            }
        }
        out
    }

    /// For each node that has not converged, what it lacks; empty when all have.
    pub fn lag(&self) -> String {
        let mut out = String::new();
        let limit = self.contact_limit_ms;
        for node in self.nodes.iter().filter(|n| !n.converged) {
            let out_of_touch = node.error.is_none() && node.leader_contact_ms.is_none_or(|ms| ms > limit);
            let _ = match (&node.error, node.revision, self.revision) {
                (Some(error), _, _) => writeln!(out, "{}: unreachable: {error}", node.name),
                (None, _, _) if node.raft.state == "pending" => writeln!(
                    out,
                    "{}: waits for authorization on the root: accept serial {} in `config system csf` / `config trusted-list`",
                    node.name, node.serial
                ),
                (None, _, _) if node.raft.state == "denied" => writeln!(
                    out,
                    "{}: serial {} is denied by the root's `config system csf` / `config trusted-list`",
                    node.name, node.serial
                ),
                (None, _, _) if out_of_touch => writeln!(out, "{}: {}", node.name, contact_lag(node)),
                (None, Some(have), Some(want)) if have != want => writeln!(
                    out,
                    "{}: revision {have} of {want} ({} behind), applied index {}",
                    node.name,
                    want.saturating_sub(have),
                    node.raft.applied.unwrap_or(0)
                ),
                (None, _, None) => writeln!(out, "{}: the root cannot be reached", node.name),
                (None, Some(have), Some(_)) if node.checked_revision != Some(have) => writeln!(
                    out,
                    "{}: revision {have} applied, its EMS check round has not finished yet",
                    node.name
                ),
                (None, _, _) => writeln!(
                    out,
                    "{}: revision {} but not yet a member of the root's Raft group, or its content hash differs ({})",
                    node.name,
                    node.revision.unwrap_or(0),
                    node.config_hash.as_deref().unwrap_or("-")
                ),
            };
        }
        out
    }
}

/// How long a node may go without hearing from its group and still count as converged.
fn contact_limit_ms(topology: &Topology) -> u64 {
    topology.raft.election_timeout_max_ms.saturating_mul(2)
}

/// Why a node out of touch is: what it last heard, and from whom.
fn contact_lag(node: &NodeReport) -> String {
    let from = if node.role == Role::Root {
        "no quorum of voters has answered the root"
    } else {
        "the root has not reached it"
    };
    match node.leader_contact_ms {
        Some(ms) => format!("{from} for {ms} ms (cut off from the fabric?)"),
        None => format!("{from} yet"),
    }
}

fn sync_word(local: bool) -> String {
    if local { "local" } else { "default" }.to_owned()
}

/// Left-aligned columns two spaces apart, each as wide as its widest cell.
fn columns<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|i| {
            rows.iter()
                .map(|row| row[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    std::iter::once(line(header.to_vec()))
        .chain(
            rows.iter()
                .map(|row| line(row.iter().map(String::as_str).collect())),
        )
        .collect()
}

/// Asks every node of `topology` for its state, concurrently, each over a new
/// connection.
pub async fn collect(
    topology: &Topology,
    addrs: &BTreeMap<String, SocketAddr>,
    operator: &Operator,
) -> FabricReport {
    gather(topology, |spec| {
        let addr = addrs.get(&spec.name).copied().unwrap_or(spec.listen);
        async move { AdminConnection::connect(addr, operator).await }
    })
    .await
}

/// Asks every node of `topology` for its state, concurrently, over the connection
/// `connect` gives for it.
pub async fn gather<'t, F>(
    topology: &'t Topology,
    connect: impl Fn(&'t crate::topology::NodeSpec) -> F,
) -> FabricReport
where
    F: std::future::Future<Output = Result<AdminConnection, crate::rpc::client::ClientError>>,
{
    let asks = topology.nodes.iter().map(|spec| {
        let connection = connect(spec);
        async move {
            let answer = match connection.await {
                Ok(mut connection) => connection.status().await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            (spec.name.clone(), answer)
        }
    });
    let answers = futures::future::join_all(asks).await.into_iter().collect();
    FabricReport::assemble(topology, &answers)
}
