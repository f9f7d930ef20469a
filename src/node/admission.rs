//! Which members the root lets into the fabric, and what a member knows of its own
//! admission (`docs/fortios.md`, "Member authorization").
//!
//! The root decides from its replicated `config system csf` / `config trusted-list` and
//! from the topology: an entry with `action deny` for the member's serial keeps it out, one
//! with `action accept` lets it in, and a serial that no entry names is let in only when
//! the topology pre-authorizes that member (`authorized`, default true). A member the root
//! turns away waits in the root's [`PendingBook`] (serial, name, address, first and last
//! time it asked) until an entry decides; `diagnose sys csf authorization pending-list`
//! prints the book.
//!
//! This file also holds the root's side of it on [`Node`]: the decision on a request
//! (`authorize`, called by [`Node::admit`]), and `keep_out_unauthorized`, the task that
//! removes from the Raft group every member the trusted-list stops authorizing.
//!
//! A member learns where it stands from the root's answers to its requests to join,
//! which it keeps sending ([`crate::server`]); its [`Admission`] is what `status` shows
//! for a member that is not in the group.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use openraft::ChangeMembers;
use tokio_util::sync::CancellationToken;

use super::{JoinError, Node, bounded_membership};
use crate::cli::PendingMember;
use crate::config::{ConfigDb, TrustDecision};
use crate::raft::NodeId;
use crate::topology::{NodeSpec, Role};

/// How often the root looks for members its trusted-list no longer lets in, besides
/// every change of the configuration (a removal that timed out is tried again).
const TRUST_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// A member's request to join, as it claimed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinClaim {
    /// The Raft node id it claims.
    pub id: u64,
    /// Its node name.
    pub name: String,
    /// The serial it claims (the transport's client certificate is to vouch for it).
    pub serial: String,
    /// Its gRPC address, as peers should dial it.
    pub addr: String,
}

/// What the root makes of one member's serial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let it in: accepted by the trusted-list, or pre-authorized and named by no entry.
    Admit,
    /// Keep it out and list it as pending: no entry names it and it is not pre-authorized.
    Pending,
    /// Keep it out: an entry denies it.
    Deny,
}

/// The root's verdict on the topology's member `spec` under the configuration `db`.
pub fn verdict(db: &ConfigDb, spec: &NodeSpec) -> Verdict {
    match db.trust_decision(&spec.serial) {
        Some(TrustDecision::Deny) => Verdict::Deny,
        Some(TrustDecision::Accept) => Verdict::Admit,
        None if spec.authorized => Verdict::Admit,
        None => Verdict::Pending,
    }
}

/// The topology's member with `claim`'s id and serial; `None` when no member has both.
pub fn member_spec<'t>(nodes: &'t [NodeSpec], claim: &JoinClaim) -> Option<&'t NodeSpec> {
    nodes
        .iter()
        .find(|spec| spec.id == claim.id && spec.serial == claim.serial && spec.role == Role::Member)
}

/// Where a member stands with the root, as its last answer said.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Admission {
    /// The root has not answered yet (or this node is the root).
    #[default]
    Unknown,
    /// The root admitted it.
    Admitted,
    /// The root waits for its trusted-list to accept this member's serial.
    Pending,
    /// The root's trusted-list denies this member's serial.
    Denied,
}

impl Admission {
    /// The word `status` shows in the Raft column of a member kept out of the group;
    /// `None` when the Raft state says it all.
    pub fn raft_word(&self) -> Option<&'static str> {
        match self {
            Admission::Pending => Some("pending"),
            Admission::Denied => Some("denied"),
            Admission::Unknown | Admission::Admitted => None,
        }
    }
}

/// The members the root turned away for want of a decision, by serial.
#[derive(Debug, Default)]
pub struct PendingBook {
    members: BTreeMap<String, PendingMember>,
}

impl PendingBook {
    /// Notes that `claim` asked at `now` (UNIX seconds): a new row, or a later last-seen
    /// time and the address it asked from this time.
    pub fn note(&mut self, claim: &JoinClaim, now: i64) {
        let member = self
            .members
            .entry(claim.serial.clone())
            .or_insert_with(|| PendingMember {
                serial: claim.serial.clone(),
                name: claim.name.clone(),
                addr: claim.addr.clone(),
                first_seen: now,
                last_seen: now,
            });
        member.name.clone_from(&claim.name);
        member.addr.clone_from(&claim.addr);
        member.last_seen = now;
    }

    /// Forgets `serial`: it was admitted or denied.
    pub fn forget(&mut self, serial: &str) {
        self.members.remove(serial);
    }

    /// The members still waiting under `db`: those that no trusted-list entry decides yet,
    /// by serial.
    pub fn waiting(&self, db: &ConfigDb) -> Vec<PendingMember> {
        self.members
            .values()
            .filter(|member| db.trust_decision(&member.serial).is_none())
            .cloned()
            .collect()
    }
}

impl Node {
    /// The root's decision on `claim`; a member left waiting is noted in the pending book.
    pub(super) fn authorize(&self, claim: &JoinClaim) -> Result<(), JoinError> {
        let spec =
            member_spec(&self.shared.config.fabric_nodes, claim).ok_or_else(|| JoinError::UnknownMember {
                id: claim.id,
                serial: claim.serial.clone(),
            })?;
        let db = self.shared.config_rx.borrow().clone();
        let mut book = self.shared.pending.lock().expect("pending lock");
        match verdict(&db, spec) {
            Verdict::Admit => Ok(()),
            Verdict::Pending => {
                book.note(
                    claim,
                    crate::calendar::Clock::unix_seconds(&crate::calendar::SystemClock),
                );
                Err(JoinError::Pending {
                    serial: claim.serial.clone(),
                })
            }
            Verdict::Deny => {
                book.forget(&claim.serial);
                Err(JoinError::Denied {
                    serial: claim.serial.clone(),
                })
            }
        }
    }

    /// The members in the root's Raft group that the trusted-list (or the topology) no
    /// longer lets in.
    fn unwelcome_members(&self) -> Vec<NodeId> {
        let metrics = self.shared.raft.metrics().borrow().clone();
        let db = self.shared.config_rx.borrow().clone();
        let membership = metrics.membership_config.membership();
        let in_group: BTreeSet<NodeId> = membership.nodes().map(|(id, _)| *id).collect();
        self.shared
            .config
            .fabric_nodes
            .iter()
            .filter(|spec| spec.role == Role::Member && in_group.contains(&spec.id))
            .filter(|spec| verdict(&db, spec) != Verdict::Admit)
            .map(|spec| spec.id)
            .collect()
    }

    /// Removes member `id` from the Raft group on the root: a voter through joint
    /// consensus (a quorum of the old and the new voters, the root among them, so the
    /// root keeps leading), a learner at once; bounded like every membership change.
    async fn remove_member(&self, id: NodeId) -> Result<(), JoinError> {
        let _guard = self.shared.join_lock.lock().await;
        let raft = &self.shared.raft;
        let metrics = raft.metrics().borrow().clone();
        if metrics.current_leader != Some(self.id()) || id == self.id() {
            return Err(JoinError::NotLeader);
        }
        let membership = metrics.membership_config.membership();
        let ids = BTreeSet::from([id]);
        let change = if membership.voter_ids().any(|voter| voter == id) {
            ChangeMembers::RemoveVoters(ids)
        } else if membership.get_node(&id).is_some() {
            ChangeMembers::RemoveNodes(ids)
        } else {
            return Ok(());
        };
        bounded_membership(raft.change_membership(change, false)).await?;
        tracing::info!(
            node = id,
            "member removed from the fabric: its serial is not authorized"
        );
        Ok(())
    }

    /// What the root last answered this member (`Unknown` on the root).
    pub fn admission(&self) -> Admission {
        self.shared.admission.lock().expect("admission lock").0.clone()
    }

    /// Records what the root answered this member's request to join.
    pub fn set_admission(&self, admission: Admission) {
        let applied = self
            .shared
            .raft
            .metrics()
            .borrow()
            .last_applied
            .map_or(0, |id| id.index);
        *self.shared.admission.lock().expect("admission lock") = (admission, applied);
    }

    /// The word `status` shows instead of the Raft state while the root keeps this member
    /// out: its last answer was a refusal and nothing was replicated to the node since
    /// (an accepted member catches up before the root's answer to it arrives).
    pub(super) fn kept_out(&self, applied: u64) -> Option<&'static str> {
        let (admission, applied_then) = &*self.shared.admission.lock().expect("admission lock");
        admission.raft_word().filter(|_| applied <= *applied_then)
    }
}

/// The root's guard of its trusted-list: after every change of the configuration (and
/// every [`TRUST_CHECK_INTERVAL`], to retry a removal that timed out) it removes from the
/// Raft group each member that is no longer authorized, so a denied member stops
/// receiving configuration.
pub(super) async fn keep_out_unauthorized(node: Node, shutdown: CancellationToken) {
    let mut config_rx = node.config_watch();
    let mut interval = tokio::time::interval(TRUST_CHECK_INTERVAL);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => {}
            changed = config_rx.changed() => if changed.is_err() { return },
        }
        config_rx.borrow_and_update();
        for id in node.unwelcome_members() {
            if let Err(error) = node.remove_member(id).await {
                tracing::debug!(node = id, %error, "removing an unauthorized member failed; trying again");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::ConfigCommand;
    use crate::config::schema::TRUSTED_LIST;

    fn spec(id: u64, serial: &str, authorized: bool) -> NodeSpec {
        let addr = "127.0.0.1:0".parse().unwrap();
        NodeSpec {
            id,
            name: format!("branch{id}"),
            serial: serial.to_owned(),
            role: Role::Member,
            listen: addr,
            hostname: format!("FGT-branch{id}"),
            upstream: None,
            https: addr,
            ssh: addr,
            authorized,
        }
    }

    fn trust(db: &mut ConfigDb, serial: &str, action: &str) {
        db.apply(&ConfigCommand::SetEntry {
            table: TRUSTED_LIST.path.to_owned(),
            key: serial.to_owned(),
            values: BTreeMap::from([
                ("serial".to_owned(), serial.to_owned()),
                ("action".to_owned(), action.to_owned()),
            ]),
        })
        .unwrap();
    }

    #[test]
    fn the_trusted_list_decides_and_the_topology_pre_authorizes() {
        let mut db = ConfigDb::new();
        let listed = spec(2, "FGVM01TM22000002", true);
        let unlisted = spec(3, "FGVM01TM22000003", false);
        assert_eq!(verdict(&db, &listed), Verdict::Admit);
        assert_eq!(verdict(&db, &unlisted), Verdict::Pending);
        trust(&mut db, &unlisted.serial, "accept");
        assert_eq!(verdict(&db, &unlisted), Verdict::Admit);
        trust(&mut db, &listed.serial, "deny");
        assert_eq!(verdict(&db, &listed), Verdict::Deny);
        let nodes = [listed.clone(), unlisted.clone()];
        let claim = |id, serial: &str| JoinClaim {
            id,
            name: "x".into(),
            serial: serial.into(),
            addr: "127.0.0.1:1".into(),
        };
        assert_eq!(member_spec(&nodes, &claim(2, &listed.serial)), Some(&listed));
        assert_eq!(member_spec(&nodes, &claim(2, &unlisted.serial)), None);
        assert_eq!(member_spec(&nodes, &claim(9, &listed.serial)), None);
    }

    #[test]
    fn the_book_keeps_first_and_last_sight_until_a_decision() {
        let mut book = PendingBook::default();
        let mut claim = JoinClaim {
            id: 3,
            name: "branch3".into(),
            serial: "FGVM01TM22000003".into(),
            addr: "127.0.0.13:8013".into(),
        };
        book.note(&claim, 100);
        claim.addr = "127.0.0.13:9013".into();
        book.note(&claim, 160);
        let mut db = ConfigDb::new();
        let waiting = book.waiting(&db);
        assert_eq!(waiting.len(), 1);
        assert_eq!((waiting[0].first_seen, waiting[0].last_seen), (100, 160));
        assert_eq!(waiting[0].addr, "127.0.0.13:9013");
        trust(&mut db, &claim.serial, "deny");
        assert!(book.waiting(&db).is_empty());
        book.forget(&claim.serial);
        assert!(book.waiting(&ConfigDb::new()).is_empty());
    }
}
