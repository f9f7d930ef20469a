//! Rules of `[[ems]]`: each EMS server's serial, hostname, sites, authorized serials
//! and capabilities, then names, serials and addresses unique among the EMS servers and
//! the nodes. An EMS travels as an [`EmsDraft`] until every rule has been checked.

use std::collections::HashSet;
use std::net::SocketAddr;

use toml::Spanned;

use crate::domain::{
    DEFAULT_EMS_SITE, EMS_CAPABILITIES, EMS_SERIAL_DIGITS, EMS_SERIAL_PREFIX, MAX_DNS_LABEL_LEN,
    is_ems_serial, is_name_char,
};

use super::fields::AUTHORIZED_SERIALS;
use super::file::{EmsTable, Read};
use super::names::{fqdn_fault, fqdn_rule};
use super::nodes::NodeDraft;
use super::reader::{Reader, written};
use super::seen::FirstSeen;
use super::spec::{CertProfile, EmsSpec};
use super::suggest::{
    SUGGESTED_EMS_IP, SUGGESTED_EMS_PORT, SUGGESTED_SITE, closest, fqdn_suggestion, serial_suggestion,
    unused_ems_serial,
};

/// One `[[ems]]` on its way to an [`EmsSpec`]: the table, where it is, and what its values
/// turned out to be.
pub(super) struct EmsDraft {
    /// Line of the `[[ems]]` header.
    pub(super) header_line: usize,
    pub(super) table: EmsTable,
    /// The `listen` address, when it parsed.
    pub(super) listen: Option<SocketAddr>,
    /// The hostname in lowercase, when it is a well-formed name.
    pub(super) hostname: Option<String>,
    /// The well-formed sites, [`DEFAULT_EMS_SITE`] added when sites were given.
    pub(super) sites: Vec<String>,
    /// The well-formed authorized serials, each once.
    pub(super) authorized: Vec<String>,
    /// The known capabilities, in the order of [`EMS_CAPABILITIES`].
    pub(super) capabilities: Vec<String>,
}

impl EmsDraft {
    pub(super) fn name(&self) -> Option<&str> {
        self.table.name.as_ref().map(|name| name.get_ref().as_str())
    }

    /// The serials the EMS servers were given, in file order.
    pub(super) fn serials(drafts: &[EmsDraft]) -> Vec<&str> {
        written(drafts.iter().map(|draft| &draft.table.serial))
    }

    /// How problems refer to this EMS: `EMS "ems1"`, or its header when it has no name.
    pub(super) fn label(&self) -> String {
        match self.name() {
            Some(name) => format!("EMS \"{name}\""),
            None => format!("the [[ems]] at line {}", self.header_line),
        }
    }

    /// The finished EMS; `None` while a required value is missing or unusable.
    pub(super) fn spec(&self) -> Option<EmsSpec> {
        Some(EmsSpec {
            name: self.name()?.to_string(),
            serial: self.table.serial.as_ref()?.get_ref().clone(),
            hostname: self.hostname.clone()?,
            listen: self.listen?,
            certificate: self
                .table
                .certificate
                .as_ref()
                .map_or_else(CertProfile::default, |certificate| *certificate.get_ref()),
            sites: self.sites.clone(),
            authorized: self.authorized.clone(),
            capabilities: self.capabilities.clone(),
            respond: self
                .table
                .respond
                .as_ref()
                .is_none_or(|respond| *respond.get_ref()),
        })
    }
}

impl Reader<'_> {
    /// Per-EMS rules, then the rules between EMS servers and nodes; the EMS servers on
    /// their way to [`EmsSpec`]s, or `None` when `[[ems]]` is not an array of tables.
    /// `nodes` is `None` when the nodes could not be read, which quiets the rules that
    /// compare with them.
    pub(super) fn ems_drafts(
        &mut self,
        ems: Option<Vec<Read<EmsTable>>>,
        nodes: Option<&[NodeDraft]>,
    ) -> Option<Vec<EmsDraft>> {
        let ems = ems?;
        let serials: Vec<String> = ems
            .iter()
            .filter_map(|read| read.table.serial.as_ref())
            .map(|serial| serial.get_ref().clone())
            .collect();
        let serials: HashSet<&str> = serials.iter().map(String::as_str).collect();
        let node_serials = nodes.map(NodeDraft::serials);
        let example = SocketAddr::from((SUGGESTED_EMS_IP, SUGGESTED_EMS_PORT));
        let mut drafts = Vec::new();
        for read in ems {
            let table = read.table;
            if let Some(name) = &table.name {
                self.check_name("EMS name", "ems1", name);
            }
            if let Some(serial) = &table.serial {
                self.check_ems_serial(serial, &serials);
            }
            let hostname = table
                .hostname
                .as_ref()
                .and_then(|hostname| self.check_ems_hostname(hostname));
            let listen = table
                .listen
                .as_ref()
                .and_then(|listen| self.check_listen(listen, "EMS servers", example));
            let sites = table
                .sites
                .as_deref()
                .map_or_else(Vec::new, |sites| self.ems_sites(sites));
            let authorized = table.authorized.as_deref().map_or_else(Vec::new, |authorized| {
                self.node_serial_list(&AUTHORIZED_SERIALS, authorized, node_serials.as_deref())
            });
            let capabilities = match table.capabilities.as_deref() {
                Some(capabilities) => self.ems_capabilities(capabilities),
                None => EMS_CAPABILITIES.iter().map(|c| c.to_string()).collect(),
            };
            drafts.push(EmsDraft {
                header_line: self.line(&read.header),
                table,
                listen,
                hostname,
                sites,
                authorized,
                capabilities,
            });
        }
        self.check_ems_duplicates(&drafts, nodes.unwrap_or_default());
        Some(drafts)
    }

    pub(super) fn check_ems_serial(&mut self, serial: &Spanned<String>, used: &HashSet<&str>) {
        let value = serial.get_ref();
        let length = value.chars().count();
        let needed = EMS_SERIAL_PREFIX.len() + EMS_SERIAL_DIGITS;
        let mut faults = Vec::new();
        if length != needed {
            faults.push(format!("has {length} characters ({needed} needed)"));
        }
        match value.strip_prefix(EMS_SERIAL_PREFIX) {
            None => faults.push(format!("does not start with \"{EMS_SERIAL_PREFIX}\"")),
            Some(rest) if !rest.chars().all(|c| c.is_ascii_digit()) => faults.push(format!(
                "has characters other than digits after \"{EMS_SERIAL_PREFIX}\""
            )),
            Some(_) => {}
        }
        if faults.is_empty() {
            return;
        }
        let example = serial_suggestion(value, used, is_ems_serial, unused_ems_serial);
        self.report(
            &serial.span(),
            format!("EMS serial \"{value}\" {}", faults.join(", ")),
            format!(
                "an EMS serial is \"{EMS_SERIAL_PREFIX}\" followed by {EMS_SERIAL_DIGITS} digits; \
                 e.g. serial = \"{example}\""
            ),
        );
    }

    /// The hostname in lowercase when it is a well-formed DNS name; reported otherwise.
    pub(super) fn check_ems_hostname(&mut self, hostname: &Spanned<String>) -> Option<String> {
        let value = hostname.get_ref();
        match fqdn_fault(value) {
            None => Some(value.to_ascii_lowercase()),
            Some(fault) => {
                self.report(
                    &hostname.span(),
                    format!("EMS hostname \"{value}\" {fault}"),
                    format!(
                        "write a DNS name of {}, e.g. hostname = \"{}\"",
                        fqdn_rule(),
                        fqdn_suggestion(value)
                    ),
                );
                None
            }
        }
    }

    /// The well-formed sites, each once, with [`DEFAULT_EMS_SITE`] added first when it is
    /// missing; an empty list stays empty (a single-tenant EMS).
    pub(super) fn ems_sites(&mut self, sites: &[Spanned<String>]) -> Vec<String> {
        let mut seen = FirstSeen::new();
        let mut kept = Vec::new();
        for site in sites {
            let value = site.get_ref();
            let length = value.chars().count();
            let fault = if value.is_empty() {
                Some("is empty".to_string())
            } else if length > MAX_DNS_LABEL_LEN {
                Some(format!(
                    "has {length} characters (at most {MAX_DNS_LABEL_LEN}, as it is the first \
                     label of <site>.<hostname>)"
                ))
            } else if !value.chars().all(is_name_char) {
                Some("may only use letters, digits, \"-\" and \"_\"".to_string())
            } else {
                None
            };
            if let Some(fault) = fault {
                let cleaned: String = value
                    .chars()
                    .map(|c| if is_name_char(c) { c } else { '-' })
                    .take(MAX_DNS_LABEL_LEN)
                    .collect();
                let cleaned = cleaned.trim_matches('-');
                let suggestion = if cleaned.is_empty() {
                    SUGGESTED_SITE
                } else {
                    cleaned
                };
                self.report(
                    &site.span(),
                    format!("site name \"{value}\" {fault}"),
                    format!(
                        "write a site name of 1 to {MAX_DNS_LABEL_LEN} letters, digits, \"-\" and \
                         \"_\", e.g. \"{suggestion}\""
                    ),
                );
                continue;
            }
            if let Some(&first) = seen.repeat(value.to_ascii_lowercase(), site) {
                if first.get_ref() == value {
                    self.report_listed_twice("site", "sites", value, &first.span(), &site.span());
                } else {
                    let first_line = self.line(&first.span());
                    self.report(
                        &site.span(),
                        format!(
                            "site \"{value}\" (line {}) repeats \"{}\" (line {first_line}); site \
                             names are case-insensitive",
                            self.line(&site.span()),
                            first.get_ref()
                        ),
                        format!("remove the second \"{value}\" from sites"),
                    );
                }
                continue;
            }
            kept.push(value.clone());
        }
        if !kept.is_empty()
            && !kept
                .iter()
                .any(|site| site.eq_ignore_ascii_case(DEFAULT_EMS_SITE))
        {
            kept.insert(0, DEFAULT_EMS_SITE.to_string());
        }
        kept
    }

    /// The listed capabilities that are known, in the order of [`EMS_CAPABILITIES`].
    pub(super) fn ems_capabilities(&mut self, capabilities: &[Spanned<String>]) -> Vec<String> {
        let mut seen = FirstSeen::new();
        for capability in capabilities {
            let value = capability.get_ref().as_str();
            if !EMS_CAPABILITIES.contains(&value) {
                let fix = match closest(value, EMS_CAPABILITIES.iter().copied()) {
                    Some(close) => format!("did you mean \"{close}\"?"),
                    None => format!("capabilities are: {}", EMS_CAPABILITIES.join(", ")),
                };
                self.report(&capability.span(), format!("unknown capability \"{value}\""), fix);
                continue;
            }
            if let Some(first) = seen.repeat(value, capability.span()) {
                self.report_listed_twice("capability", "capabilities", value, first, &capability.span());
            }
        }
        EMS_CAPABILITIES
            .iter()
            .filter(|capability| seen.contains(capability))
            .map(|capability| capability.to_string())
            .collect()
    }

    /// Names and serials unique among the EMS servers; addresses unique among the EMS
    /// servers and the nodes (port 0 picks a free port, so those never collide).
    pub(super) fn check_ems_duplicates(&mut self, drafts: &[EmsDraft], nodes: &[NodeDraft]) {
        let names: Vec<&str> = drafts.iter().filter_map(EmsDraft::name).collect();
        let written = drafts.iter().filter_map(|draft| draft.table.name.as_ref());
        self.check_unique_names(written, &names, "EMS servers", "EMS");
        let free = unused_ems_serial(&EmsDraft::serials(drafts).into_iter().collect());
        let serials = drafts
            .iter()
            .filter_map(|draft| Some((draft.label(), draft.table.serial.as_ref()?)));
        self.check_unique_serials(serials, "EMS servers", "EMS", &free);

        let mut used: HashSet<SocketAddr> = NodeDraft::all_addresses(nodes);
        used.extend(drafts.iter().filter_map(|d| d.listen));
        let mut seen = NodeDraft::addresses(nodes);
        for draft in drafts {
            if let (Some(address), Some(listen)) = (draft.listen, &draft.table.listen) {
                let at = (address, &listen.span());
                self.check_own_address(&mut seen, draft.label(), "listen", at, &used);
            }
        }
    }
}
