//! Every conversion between protobuf messages and the crate's own types, as `From` impls:
//! the services convert on the way out, the client on the way in.

use serde::de::DeserializeOwned;

use crate::cli::Reply;
use crate::connector::EmsStatus;
use crate::link::{LinkChange, LinkFault, LinkRule};
use crate::node::NodeStatus;
use crate::topology::Role;
use crate::wire::proto::fabric as pb;

/// The variant a word names, or `fallback` for a word this build does not know.
fn parse<T: DeserializeOwned>(word: &str, fallback: T) -> T {
    serde_json::from_value(serde_json::Value::String(word.to_owned())).unwrap_or(fallback)
}

impl From<&EmsStatus> for pb::EmsStatus {
    fn from(status: &EmsStatus) -> Self {
        pb::EmsStatus {
            name: status.name.clone(),
            server: status.server.clone(),
            connection: status.connection.as_str().to_owned(),
            certificate: status.certificate.as_str().to_owned(),
            device: status.device.as_str().to_owned(),
            detail: status.detail.clone(),
            ems_serial: status.ems_serial.clone(),
            checked_at: status.checked_at.clone(),
        }
    }
}

impl From<pb::EmsStatus> for EmsStatus {
    fn from(status: pb::EmsStatus) -> Self {
        let mut ems = EmsStatus::unknown(&status.name, &status.server);
        ems.connection = parse(&status.connection, ems.connection);
        ems.certificate = parse(&status.certificate, ems.certificate);
        ems.device = parse(&status.device, ems.device);
        ems.detail = status.detail;
        ems.ems_serial = status.ems_serial;
        ems.checked_at = status.checked_at;
        ems
    }
}

impl From<NodeStatus> for pb::NodeStatus {
    fn from(status: NodeStatus) -> Self {
        pb::NodeStatus {
            node_id: status.id,
            name: status.name,
            serial: status.serial,
            hostname: status.hostname,
            role: status.role.to_string(),
            raft_state: status.raft_state,
            term: status.term,
            applied: status.applied,
            revision: status.revision,
            config_hash: status.config_hash,
            leader: status.leader,
            voters: status.voters,
            learners: status.learners,
            ems: status.ems.iter().map(pb::EmsStatus::from).collect(),
            checked_revision: status.checked_revision,
            sync_local: status.sync_local,
            https: status.https.to_string(),
            ssh: status.ssh.to_string(),
            leader_contact_ms: status.leader_contact_ms,
        }
    }
}

impl From<pb::NodeStatus> for NodeStatus {
    fn from(status: pb::NodeStatus) -> Self {
        NodeStatus {
            id: status.node_id,
            name: status.name,
            serial: status.serial,
            hostname: status.hostname,
            role: if status.role == "root" {
                Role::Root
            } else {
                Role::Member
            },
            raft_state: status.raft_state,
            term: status.term,
            applied: status.applied,
            revision: status.revision,
            config_hash: status.config_hash,
            leader: status.leader,
            voters: status.voters,
            learners: status.learners,
            ems: status.ems.into_iter().map(EmsStatus::from).collect(),
            checked_revision: status.checked_revision,
            sync_local: status.sync_local,
            https: parse_addr(&status.https),
            ssh: parse_addr(&status.ssh),
            leader_contact_ms: status.leader_contact_ms,
        }
    }
}

/// A CLI reply as the client's caller sees it; the prompt and completions the reply also
/// carries are the session's business.
impl From<pb::CliReply> for Reply {
    fn from(reply: pb::CliReply) -> Self {
        Reply {
            output: reply.output,
            failed: reply.failed,
            awaiting_answer: reply.awaiting_answer,
            revision: (reply.revision > 0).then_some(reply.revision),
        }
    }
}

/// An address a node reported; the unspecified address when it sent none that parses (a
/// node of an older build), which `status` shows as `0.0.0.0:0`.
fn parse_addr(text: &str) -> std::net::SocketAddr {
    text.parse()
        .unwrap_or_else(|_| std::net::SocketAddr::from(([0, 0, 0, 0], 0)))
}

impl From<LinkChange> for pb::LinksRequest {
    fn from(change: LinkChange) -> Self {
        use pb::links_request::Action;
        let mut request = pb::LinksRequest::default();
        match change {
            LinkChange::List => request.set_action(Action::List),
            LinkChange::Set(rule) => {
                request.peer = rule.peer;
                request.addr = rule.addr.to_string();
                match rule.fault {
                    LinkFault::Cut => request.set_action(Action::Cut),
                    LinkFault::Delay(delay) => {
                        request.set_action(Action::Delay);
                        request.delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
                    }
                }
            }
            LinkChange::Heal(addr) => {
                request.set_action(Action::Heal);
                request.addr = addr.to_string();
            }
            LinkChange::HealAll => request.set_action(Action::HealAll),
        }
        request
    }
}

/// A request as the node takes it; the error says what is wrong with it.
impl TryFrom<pb::LinksRequest> for LinkChange {
    type Error = String;

    fn try_from(request: pb::LinksRequest) -> Result<Self, String> {
        use pb::links_request::Action;
        let action = Action::try_from(request.action)
            .map_err(|_| format!("unknown link action {}", request.action))?;
        let addr = || {
            request
                .addr
                .parse::<std::net::SocketAddr>()
                .map_err(|e| format!("peer address {:?}: {e}", request.addr))
        };
        let rule = |fault| -> Result<LinkChange, String> {
            Ok(LinkChange::Set(LinkRule {
                peer: request.peer.clone(),
                addr: addr()?,
                fault,
            }))
        };
        match action {
            Action::List => Ok(LinkChange::List),
            Action::Cut => rule(LinkFault::Cut),
            Action::Delay => match request.delay_ms {
                ms @ 1..=LinkFault::MAX_DELAY_MS => {
                    rule(LinkFault::Delay(std::time::Duration::from_millis(ms)))
                }
                ms => Err(format!(
                    "delay_ms {ms} is out of range (1 to {})",
                    LinkFault::MAX_DELAY_MS
                )),
            },
            Action::Heal => Ok(LinkChange::Heal(addr()?)),
            Action::HealAll => Ok(LinkChange::HealAll),
        }
    }
}

impl From<LinkRule> for pb::LinkRule {
    fn from(rule: LinkRule) -> Self {
        pb::LinkRule {
            peer: rule.peer,
            addr: rule.addr.to_string(),
            delay_ms: match rule.fault {
                LinkFault::Cut => None,
                LinkFault::Delay(delay) => Some(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)),
            },
        }
    }
}

impl From<pb::LinkRule> for LinkRule {
    fn from(rule: pb::LinkRule) -> Self {
        LinkRule {
            peer: rule.peer,
            addr: parse_addr(&rule.addr),
            fault: match rule.delay_ms {
                None => LinkFault::Cut,
                Some(ms) => LinkFault::Delay(std::time::Duration::from_millis(ms)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};

    use super::*;
    use crate::link::Links;

    /// A request as any client could send it: every action number, addresses good and
    /// bad, delays at the edges of their range.
    fn request() -> impl Strategy<Value = pb::LinksRequest> {
        let addr = prop_oneof![
            Just("127.0.0.12:8012".to_owned()),
            Just("[::1]:8012".to_owned()),
            Just("127.0.0.12".to_owned()),
            Just("127.0.0.12:99999".to_owned()),
            Just(String::new()),
            "\\PC{0,24}",
        ];
        let delay = prop_oneof![
            Just(0),
            Just(1),
            Just(LinkFault::MAX_DELAY_MS),
            Just(LinkFault::MAX_DELAY_MS + 1),
            Just(u64::MAX),
            any::<u64>(),
        ];
        (-2i32..8, "\\PC{0,12}", addr, delay).prop_map(|(action, peer, addr, delay_ms)| pb::LinksRequest {
            action,
            peer,
            addr,
            delay_ms,
        })
    }

    proptest! {
        #![proptest_config(Config {
            cases: 512,
            rng_seed: RngSeed::Fixed(0x0001_14b5),
            failure_persistence: None,
            ..Config::default()
        })]

        /// Any Links request is a change the node makes, and says the same when sent
        /// again, or is refused with the reason and changes no link.
        #[test]
        fn a_links_request_is_a_change_or_a_refusal_that_changes_nothing(request in request()) {
            let links = Links::default();
            links.set(LinkRule {
                peer: "branch1".to_owned(),
                addr: "127.0.0.12:8012".parse().unwrap(),
                fault: LinkFault::Cut,
            });
            let before = links.rules();
            match LinkChange::try_from(request.clone()) {
                Ok(change) => {
                    let again = LinkChange::try_from(pb::LinksRequest::from(change.clone()));
                    prop_assert_eq!(again.as_ref(), Ok(&change));
                    let in_range = |rule: &LinkRule| match rule.fault {
                        LinkFault::Cut => true,
                        LinkFault::Delay(delay) => {
                            (1..=u128::from(LinkFault::MAX_DELAY_MS)).contains(&delay.as_millis())
                        }
                    };
                    let rules = links.apply(change);
                    prop_assert!(rules.iter().all(in_range), "{:?}", rules);
                }
                Err(reason) => {
                    prop_assert!(!reason.is_empty());
                    prop_assert_eq!(links.rules(), before);
                }
            }
        }
    }
}
