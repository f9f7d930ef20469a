//! One node's link faults: a table from peer address to fault, watched by every open
//! connection to that peer.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// What a link does to traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkFault {
    /// No byte moves either way until the link heals.
    Cut,
    /// Traffic takes this much longer each way: a call across the link comes back twice
    /// this later.
    Delay(Duration),
}

impl LinkFault {
    /// The longest delay a link takes, in milliseconds: a minute each way is already far
    /// past every Raft and EMS timeout, so a longer one would only look like a cut.
    pub const MAX_DELAY_MS: u64 = 60_000;
}

impl fmt::Display for LinkFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkFault::Cut => f.write_str("cut"),
            LinkFault::Delay(delay) => write!(f, "delay {} ms", delay.as_millis()),
        }
    }
}

/// The fault on the link to one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkRule {
    /// The peer's name, for listing.
    pub peer: String,
    pub addr: SocketAddr,
    pub fault: LinkFault,
}

/// A change to one node's link faults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkChange {
    /// No change: what `fault list` asks.
    List,
    Set(LinkRule),
    Heal(SocketAddr),
    HealAll,
}

/// One node's links. Cheap to clone; clones share the table. It outlives the node it is
/// given to, the way a network outlives a reboot: a restarted node is still cut off.
#[derive(Clone)]
pub struct Links {
    table: Arc<watch::Sender<BTreeMap<SocketAddr, LinkRule>>>,
}

impl fmt::Debug for Links {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.table.borrow().values()).finish()
    }
}

impl Default for Links {
    fn default() -> Self {
        Links {
            table: Arc::new(watch::channel(BTreeMap::new()).0),
        }
    }
}

impl Links {
    /// Sets the fault on the link to `rule.addr`, replacing any other.
    pub fn set(&self, rule: LinkRule) {
        self.table.send_modify(|table| {
            table.insert(rule.addr, rule);
        });
    }

    /// Heals the link to `addr`.
    pub fn heal(&self, addr: SocketAddr) {
        self.table.send_if_modified(|table| table.remove(&addr).is_some());
    }

    /// Heals every link.
    pub fn heal_all(&self) {
        self.table.send_if_modified(|table| {
            let had = !table.is_empty();
            table.clear();
            had
        });
    }

    /// Makes `change`; answers the faulty links after it.
    pub fn apply(&self, change: LinkChange) -> Vec<LinkRule> {
        match change {
            LinkChange::List => {}
            LinkChange::Set(rule) => self.set(rule),
            LinkChange::Heal(addr) => self.heal(addr),
            LinkChange::HealAll => self.heal_all(),
        }
        self.rules()
    }

    /// Every faulty link, by address.
    pub fn rules(&self) -> Vec<LinkRule> {
        self.table.borrow().values().cloned().collect()
    }

    /// The fault on the link to `addr` now.
    pub fn fault(&self, addr: SocketAddr) -> Option<LinkFault> {
        self.table.borrow().get(&addr).map(|rule| rule.fault)
    }

    /// A view of the link to `addr` that follows every change.
    pub(super) fn watch(&self, addr: SocketAddr) -> LinkWatch {
        LinkWatch {
            addr,
            table: self.table.subscribe(),
        }
    }
}

/// The link to one peer, as an open connection sees it.
pub(super) struct LinkWatch {
    addr: SocketAddr,
    table: watch::Receiver<BTreeMap<SocketAddr, LinkRule>>,
}

impl LinkWatch {
    pub(super) fn fault(&self) -> Option<LinkFault> {
        self.table.borrow().get(&self.addr).map(|rule| rule.fault)
    }

    /// Resolves once the link is not cut (at once when it is not). Also resolves when the
    /// table is gone, which ends the node.
    pub(super) fn healed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut table = self.table.clone();
        let addr = self.addr;
        async move {
            let _ = table
                .wait_for(|table| table.get(&addr).map(|rule| rule.fault) != Some(LinkFault::Cut))
                .await;
        }
    }
}
