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
//! A member learns where it stands from the root's answers to its requests to join,
//! which it keeps sending ([`crate::server`]); its [`Admission`] is what `status` shows
//! for a member that is not in the group.

use std::collections::BTreeMap;

use crate::cli::PendingMember;
use crate::config::{ConfigDb, TrustDecision};
use crate::topology::{NodeSpec, Role};

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
