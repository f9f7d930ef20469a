//! Rules of `[[node]]`: each node's fields, then the rules between nodes: exactly one
//! root, unique names, serials, ids and addresses, and every `upstream` chain ending at
//! the root. A node travels as a [`NodeDraft`] until every rule has been checked.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use crate::domain::FABRIC_PORT;

use super::file::{NodeTable, Read};
use super::reader::{Reader, written};
use super::seen::FirstSeen;
use super::spec::{DEFAULT_HOSTNAME_PREFIX, DEFAULT_HTTPS_PORT, DEFAULT_SSH_PORT, NodeSpec, Role, Span};
use super::suggest::{closest, unused_address, unused_serial};

/// One `[[node]]` on its way to a [`NodeSpec`]: the table, where it is, and what its
/// values turned out to be.
pub(super) struct NodeDraft {
    /// 1-based position in the file, the default id.
    pub(super) position: usize,
    /// Span of the `[[node]]` header.
    pub(super) header: Span,
    /// Line of the `[[node]]` header.
    pub(super) header_line: usize,
    pub(super) table: NodeTable,
    /// Keys whose values were rejected as wrongly typed.
    pub(super) rejected: Vec<&'static str>,
    /// The `listen` address, when it parsed.
    pub(super) listen: Option<SocketAddr>,
    /// The `https` address, written or derived from `listen`, when it is known.
    pub(super) https: Option<ServiceAddress>,
    /// The `ssh` address, written or derived from `listen`, when it is known.
    pub(super) ssh: Option<ServiceAddress>,
}

/// A node's HTTPS or SSH address and where it came from.
#[derive(Clone)]
pub(super) struct ServiceAddress {
    pub(super) addr: SocketAddr,
    /// The span of the written value; `None` when it is the default, derived from `listen`.
    pub(super) written: Option<Span>,
}

/// The addresses one node's fields parsed to.
struct NodeAddresses {
    listen: Option<SocketAddr>,
    https: Option<ServiceAddress>,
    ssh: Option<ServiceAddress>,
}

/// The node's services besides gRPC, by key, with their default ports.
const SERVICES: [(&str, u16); 2] = [("https", DEFAULT_HTTPS_PORT), ("ssh", DEFAULT_SSH_PORT)];

impl NodeDraft {
    pub(super) fn role(&self) -> Role {
        self.table
            .role
            .as_ref()
            .map_or(Role::Member, |role| *role.get_ref())
    }

    pub(super) fn id(&self) -> u64 {
        self.table
            .id
            .as_ref()
            .map_or(self.position as u64, |id| *id.get_ref())
    }

    pub(super) fn name(&self) -> Option<&str> {
        self.table.name.as_ref().map(|name| name.get_ref().as_str())
    }

    /// The serials the nodes were given, in file order.
    pub(super) fn serials(drafts: &[NodeDraft]) -> Vec<&str> {
        written(drafts.iter().map(|draft| &draft.table.serial))
    }

    /// Where each node listens, for the rules that keep other servers off those
    /// addresses: the first node on each address, as `node "name"`, and its `listen` span.
    pub(super) fn addresses(drafts: &[NodeDraft]) -> FirstSeen<SocketAddr, (String, Span)> {
        let mut seen = FirstSeen::new();
        for node in drafts {
            let Some(listen) = &node.table.listen else {
                continue;
            };
            let label = match node.name() {
                Some(name) => format!("node \"{name}\""),
                None => node.label(),
            };
            if let Some(address) = node.listen {
                seen.note(address, (label.clone(), listen.span()));
            }
            for (key, service) in node.services() {
                let span = service.written.clone().unwrap_or_else(|| listen.span());
                seen.note(service.addr, (format!("{label} ({key})"), span));
            }
        }
        seen
    }

    /// The node's HTTPS and SSH addresses that are known, by key.
    fn services(&self) -> impl Iterator<Item = (&'static str, &ServiceAddress)> {
        [("https", &self.https), ("ssh", &self.ssh)]
            .into_iter()
            .filter_map(|(key, service)| Some((key, service.as_ref()?)))
    }

    /// Every address of the file's nodes: `listen`, `https` and `ssh`.
    pub(super) fn all_addresses(drafts: &[NodeDraft]) -> HashSet<SocketAddr> {
        let mut used: HashSet<SocketAddr> = drafts.iter().filter_map(|d| d.listen).collect();
        used.extend(drafts.iter().flat_map(|d| d.services().map(|(_, s)| s.addr)));
        used
    }

    /// How problems refer to this node: its name, or its header when it has none.
    pub(super) fn label(&self) -> String {
        match self.name() {
            Some(name) => format!("\"{name}\""),
            None => format!("the [[node]] at line {}", self.header_line),
        }
    }

    /// The finished node; `None` while a required value is missing or unusable.
    pub(super) fn spec(&self) -> Option<NodeSpec> {
        let name = self.name()?.to_string();
        let hostname = match &self.table.hostname {
            Some(hostname) => hostname.get_ref().clone(),
            None => format!("{DEFAULT_HOSTNAME_PREFIX}{name}"),
        };
        Some(NodeSpec {
            id: self.id(),
            serial: self.table.serial.as_ref()?.get_ref().clone(),
            role: self.role(),
            listen: self.listen?,
            https: self.https.as_ref()?.addr,
            ssh: self.ssh.as_ref()?.addr,
            hostname,
            upstream: self.table.upstream.as_ref().map(|up| up.get_ref().clone()),
            authorized: self.table.authorized.as_ref().is_none_or(|a| *a.get_ref()),
            name,
        })
    }
}

impl Reader<'_> {
    /// Per-node rules; the nodes on their way to [`NodeSpec`]s, or `None` when there are
    /// none or `[[node]]` is not an array of tables.
    pub(super) fn node_drafts(&mut self, nodes: Option<Vec<Read<NodeTable>>>) -> Option<Vec<NodeDraft>> {
        let nodes = nodes?;
        if nodes.is_empty() {
            self.report(
                &(0..0),
                "the file defines no [[node]]",
                "add a root: [[node]] with name = \"root\", serial = \"FGVM01TM22000001\", \
                 role = \"root\", listen = \"127.0.0.11:8013\"",
            );
            return None;
        }
        let serials: Vec<String> = nodes
            .iter()
            .filter_map(|read| read.table.serial.as_ref())
            .map(|serial| serial.get_ref().clone())
            .collect();
        let serials: HashSet<&str> = serials.iter().map(String::as_str).collect();
        let drafts: Vec<NodeDraft> = nodes
            .into_iter()
            .enumerate()
            .map(|(index, read)| {
                let addresses = self.check_node_fields(&read.table, &serials);
                NodeDraft {
                    position: index + 1,
                    header_line: self.line(&read.header),
                    header: read.header,
                    table: read.table,
                    rejected: read.rejected,
                    listen: addresses.listen,
                    https: addresses.https,
                    ssh: addresses.ssh,
                }
            })
            .collect();
        Some(drafts)
    }

    /// The rules between nodes; the nodes when all hold.
    pub(super) fn nodes(&mut self, drafts: &[NodeDraft]) -> Option<Vec<NodeSpec>> {
        self.check_roots(drafts);
        self.check_root_authorization(drafts);
        self.check_duplicates(drafts);
        self.check_upstreams(drafts);
        drafts.iter().map(NodeDraft::spec).collect()
    }

    /// Rules within one node; returns the addresses that are usable. `serials` are those of
    /// every node in the file, so that a suggested serial is free.
    fn check_node_fields(&mut self, node: &NodeTable, serials: &HashSet<&str>) -> NodeAddresses {
        if let Some(name) = &node.name {
            self.check_name("node name", "node1", name);
        }
        if let Some(serial) = &node.serial {
            self.check_serial(serial, serials);
        }
        if let Some(hostname) = &node.hostname {
            self.check_hostname(hostname);
        }
        let example = SocketAddr::from(([127, 0, 0, 12], FABRIC_PORT));
        let listen = node
            .listen
            .as_ref()
            .and_then(|listen| self.check_listen(listen, "nodes", example));
        let [https, ssh] = SERVICES.map(|(key, port)| {
            let written = if key == "https" { &node.https } else { &node.ssh };
            self.service_address(key, port, written.as_ref(), listen)
        });
        NodeAddresses { listen, https, ssh }
    }

    /// The node's `key` address (`https`, `ssh`): as written, held to loopback IPv4 like
    /// `listen`, or `listen`'s IP with `default_port` (port 0 when `listen` asks for 0).
    fn service_address(
        &mut self,
        key: &str,
        default_port: u16,
        written: Option<&toml::Spanned<String>>,
        listen: Option<SocketAddr>,
    ) -> Option<ServiceAddress> {
        match written {
            Some(value) => {
                let example = SocketAddr::from(([127, 0, 0, 12], default_port));
                let addr = self.check_address(key, value, "nodes", example)?;
                Some(ServiceAddress {
                    addr,
                    written: Some(value.span()),
                })
            }
            None => {
                let listen = listen?;
                let port = if listen.port() == 0 { 0 } else { default_port };
                Some(ServiceAddress {
                    addr: SocketAddr::new(listen.ip(), port),
                    written: None,
                })
            }
        }
    }

    /// `authorized` is a member's: the root authorizes the others and is never pending
    /// itself, so `authorized = false` on it would mean nothing.
    fn check_root_authorization(&mut self, drafts: &[NodeDraft]) {
        for draft in drafts.iter().filter(|d| d.role() == Role::Root) {
            if let Some(authorized) = &draft.table.authorized
                && !*authorized.get_ref()
            {
                self.report(
                    &authorized.span(),
                    format!(
                        "the root {} cannot wait for authorization: it is the node that authorizes the members",
                        draft.label()
                    ),
                    "remove `authorized = false` from the root; set it on a member to leave that member pending",
                );
            }
        }
    }

    pub(super) fn check_roots(&mut self, drafts: &[NodeDraft]) {
        let roots: Vec<&NodeDraft> = drafts.iter().filter(|d| d.role() == Role::Root).collect();
        let Some(first) = roots.first() else {
            // A root whose role was mistyped is already reported; do not also say "no root".
            if drafts.iter().any(|d| d.rejected.contains(&"role")) {
                return;
            }
            let candidate = drafts
                .iter()
                .find(|d| d.name() == Some("root"))
                .unwrap_or(&drafts[0]);
            self.report(
                &drafts[0].header,
                "no node has role \"root\"",
                format!(
                    "a fabric has exactly one root; add role = \"root\" to the node the others \
                     connect to, e.g. {} (line {})",
                    candidate.label(),
                    self.line(&candidate.header)
                ),
            );
            return;
        };
        let role_span = |draft: &NodeDraft| {
            draft
                .table
                .role
                .as_ref()
                .map_or(draft.header.clone(), |role| role.span())
        };
        for extra in &roots[1..] {
            let first_line = self.line(&role_span(first));
            let extra_span = role_span(extra);
            self.report(
                &extra_span,
                format!(
                    "two nodes have role \"root\": {} (line {}) and {} (line {})",
                    first.label(),
                    first_line,
                    extra.label(),
                    self.line(&extra_span)
                ),
                format!(
                    "a fabric has exactly one root; set role = \"member\" on {}",
                    extra.label()
                ),
            );
        }
    }

    /// Names, serials, ids and addresses unique among the nodes.
    pub(super) fn check_duplicates(&mut self, drafts: &[NodeDraft]) {
        let names: Vec<&str> = drafts.iter().filter_map(NodeDraft::name).collect();
        let written = drafts.iter().filter_map(|draft| draft.table.name.as_ref());
        self.check_unique_names(written, &names, "nodes", "node");
        let free = unused_serial(&NodeDraft::serials(drafts).into_iter().collect());
        let serials = drafts
            .iter()
            .filter_map(|draft| Some((draft.label(), draft.table.serial.as_ref()?)));
        self.check_unique_serials(serials, "nodes", "FortiGate", &free);
        self.check_unique_ids(drafts);
        self.check_unique_listens(drafts);
        self.check_service_addresses(drafts);
    }

    /// Each node's `https` and `ssh` addresses taken by no other address of a node (its
    /// own `listen` included). A default one that collides is reported at `listen`, where
    /// it comes from.
    fn check_service_addresses(&mut self, drafts: &[NodeDraft]) {
        let used = NodeDraft::all_addresses(drafts);
        let mut seen = FirstSeen::new();
        for draft in drafts {
            if let (Some(address), Some(listen)) = (draft.listen, &draft.table.listen) {
                seen.note(address, (draft.label(), listen.span()));
            }
        }
        let mut listens = HashSet::new();
        for draft in drafts {
            let Some(listen) = &draft.table.listen else {
                continue;
            };
            // A repeated `listen` is reported already; its defaults follow it when it moves.
            let listen_repeated = draft
                .listen
                .is_some_and(|addr| addr.port() != 0 && !listens.insert(addr));
            for (key, service) in draft.services() {
                if listen_repeated && service.written.is_none() {
                    continue;
                }
                let (who, span) = match &service.written {
                    Some(span) => (format!("the {key} address of {}", draft.label()), span.clone()),
                    None => (
                        format!(
                            "the {key} address of {} (by default, from its listen)",
                            draft.label()
                        ),
                        listen.span(),
                    ),
                };
                self.check_own_address(&mut seen, who, key, (service.addr, &span), &used);
            }
        }
    }

    /// Ids unique, whether written or the position in the file.
    fn check_unique_ids(&mut self, drafts: &[NodeDraft]) {
        let used_ids: HashSet<u64> = drafts.iter().map(NodeDraft::id).collect();
        let id_span = |draft: &NodeDraft| {
            draft
                .table
                .id
                .as_ref()
                .map_or(draft.header.clone(), |id| id.span())
        };
        let id_note = |draft: &NodeDraft| {
            if draft.table.id.is_some() {
                String::new()
            } else {
                ", by position".to_string()
            }
        };
        let mut seen = FirstSeen::new();
        for draft in drafts {
            let Some(&first) = seen.repeat(draft.id(), draft) else {
                continue;
            };
            let span = id_span(draft);
            let first_line = self.line(&id_span(first));
            let next_id = used_ids.iter().max().map_or(1, |max| max.saturating_add(1));
            // One of the two has a written id; that is the one to change.
            let change = if draft.table.id.is_some() { draft } else { first };
            self.report(
                &span,
                format!(
                    "two nodes have id {}: {} (line {first_line}{}) and {} (line {}{})",
                    draft.id(),
                    first.label(),
                    id_note(first),
                    draft.label(),
                    self.line(&span),
                    id_note(draft)
                ),
                format!(
                    "ids default to the node's position in the file; set id = {next_id} \
                     on {} or remove its id line",
                    change.label()
                ),
            );
        }
    }

    /// Addresses unique; port 0 asks for a free port, so those never collide.
    fn check_unique_listens(&mut self, drafts: &[NodeDraft]) {
        let used_addresses: HashSet<SocketAddr> = drafts.iter().filter_map(|d| d.listen).collect();
        let mut seen = FirstSeen::new();
        for draft in drafts {
            let (Some(address), Some(listen)) = (draft.listen, &draft.table.listen) else {
                continue;
            };
            if address.port() == 0 {
                continue;
            }
            let Some((first, span)) = seen.repeat(address, (draft, listen.span())) else {
                continue;
            };
            let first_line = self.line(span);
            self.report(
                &listen.span(),
                format!(
                    "two nodes listen on {address}: {} (line {first_line}) and {} (line {})",
                    first.label(),
                    draft.label(),
                    self.line(&listen.span())
                ),
                format!(
                    "give {} its own address, e.g. listen = \"{}\", or port 0 to pick a free port",
                    draft.label(),
                    unused_address(address.port(), &used_addresses)
                ),
            );
        }
    }

    pub(super) fn check_upstreams(&mut self, drafts: &[NodeDraft]) {
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (at, draft) in drafts.iter().enumerate() {
            if let Some(name) = draft.name() {
                index.entry(name).or_insert(at);
            }
        }
        let all_named = drafts.iter().all(|draft| draft.name().is_some());
        let root_name = drafts
            .iter()
            .find(|d| d.role() == Role::Root)
            .and_then(NodeDraft::name)
            .unwrap_or("root");

        // Where each node connects: Some(i) for a named upstream, None for the root or when
        // the upstream is unusable (reported here).
        let mut next: Vec<Option<usize>> = vec![None; drafts.len()];
        for (at, draft) in drafts.iter().enumerate() {
            let Some(upstream) = &draft.table.upstream else {
                continue;
            };
            if draft.role() == Role::Root {
                self.report(
                    &upstream.span(),
                    format!(
                        "the root {} has upstream = \"{}\"; the root connects to no one",
                        draft.label(),
                        upstream.get_ref()
                    ),
                    "remove the upstream line from the root",
                );
                continue;
            }
            match index.get(upstream.get_ref().as_str()) {
                Some(&target) => next[at] = Some(target),
                None if all_named => {
                    let fix = match closest(upstream.get_ref(), index.keys().copied()) {
                        Some(name) => format!("did you mean \"{name}\"?"),
                        None => format!(
                            "write the name of a node in this file, e.g. upstream = \"{root_name}\", \
                             or remove the line to connect to the root"
                        ),
                    };
                    self.report(
                        &upstream.span(),
                        format!(
                            "unreachable upstream \"{}\" of {}: no node has that name",
                            upstream.get_ref(),
                            draft.label()
                        ),
                        fix,
                    );
                }
                None => {}
            }
        }

        self.check_cycles(drafts, &next, root_name);
    }

    /// Follows every chain of `next` (where each node connects, `None` for the root or an
    /// unusable upstream); one that comes back to a node on its own path is a cycle.
    fn check_cycles(&mut self, drafts: &[NodeDraft], next: &[Option<usize>], root_name: &str) {
        // A node whose chain was followed once is not followed again, so each cycle is found
        // once and reported at its node that comes first in the file.
        let mut followed = vec![false; drafts.len()];
        for start in 0..drafts.len() {
            let mut path: Vec<usize> = Vec::new();
            let mut on_path: HashMap<usize, usize> = HashMap::new();
            let mut at = start;
            while !followed[at] {
                if let Some(&loop_start) = on_path.get(&at) {
                    let cycle = &path[loop_start..];
                    if let Some(&first) = cycle.iter().min() {
                        self.report_cycle(drafts, cycle, first, root_name);
                    }
                    break;
                }
                on_path.insert(at, path.len());
                path.push(at);
                match next[at] {
                    Some(up) => at = up,
                    None => break,
                }
            }
            for &node in &path {
                followed[node] = true;
            }
        }
    }

    pub(super) fn report_cycle(&mut self, drafts: &[NodeDraft], cycle: &[usize], first: usize, root: &str) {
        let offset = cycle.iter().position(|&at| at == first).unwrap_or(0);
        let mut chain: Vec<String> = cycle[offset..]
            .iter()
            .chain(&cycle[..offset])
            .map(|&at| drafts[at].label())
            .collect();
        chain.push(drafts[first].label());
        let draft = &drafts[first];
        let span = draft
            .table
            .upstream
            .as_ref()
            .map_or(draft.header.clone(), |up| up.span());
        let message = if cycle.len() == 1 {
            format!(
                "{} names itself as upstream, so it never reaches the root",
                draft.label()
            )
        } else {
            format!(
                "upstream chain {} is a cycle that never reaches the root",
                chain.join(" -> ")
            )
        };
        self.report(
            &span,
            message,
            format!(
                "set upstream = \"{root}\" on {}, or remove its upstream line to connect to the root",
                draft.label()
            ),
        );
    }
}
