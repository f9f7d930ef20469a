//! Rules of `[forticloud]` and its `[[forticloud.contract]]` entries: the account,
//! the two addresses (unique among every server of the file), the registered serials,
//! the contracts, and no `[[ems]]` that takes the EMS Cloud server's name, serial or
//! hostname.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};

use toml::Spanned;

use crate::domain::{
    CONTRACT_TYPES, EMS_CLOUD_HOSTNAME, EMS_CLOUD_NAME, EMS_CLOUD_SERIAL, FCEM_CONTRACT, FORTICLOUD_HOSTNAME,
    MAX_ACCOUNT_LEN, parse_contract_date,
};

use super::ems::EmsDraft;
use super::fields::{CONTRACT_SERIAL, REGISTERED_SERIALS};
use super::file::{ContractTable, ForticloudTable, Read, WrittenDate};
use super::names::fqdn_fault;
use super::nodes::NodeDraft;
use super::reader::Reader;
use super::seen::FirstSeen;
use super::spec::{ContractSpec, DEFAULT_FORTICLOUD_ACCOUNT, ForticloudSpec, Span};
use super::suggest::{
    SUGGESTED_EMS_CLOUD_IP, SUGGESTED_EMS_HOSTNAME, SUGGESTED_FORTICLOUD_IP, closest, date_suggestion,
    unused_ems_serial, unused_name,
};

/// `[forticloud]` on its way to a [`ForticloudSpec`]: what its values turned out to be.
pub(super) struct ForticloudDraft {
    /// The API address as parsed, with the span of its value.
    pub(super) listen: Option<(SocketAddr, Span)>,
    /// The EMS Cloud address as parsed, with the span of its value.
    pub(super) ems_listen: Option<(SocketAddr, Span)>,
    /// The finished table; `None` while a value is missing or unusable (and reported).
    pub(super) spec: Option<ForticloudSpec>,
}

impl Reader<'_> {
    /// The rules of `[forticloud]` and its contracts, and those between it and the nodes
    /// and EMS servers. `nodes` is `None` when the nodes could not be read, which quiets the
    /// rules that compare with them.
    pub(super) fn forticloud_draft(
        &mut self,
        read: Read<ForticloudTable>,
        contracts: Vec<Read<ContractTable>>,
        nodes: Option<&[NodeDraft]>,
        ems: &[EmsDraft],
    ) -> ForticloudDraft {
        let table = read.table;
        let node_serials = nodes.map(NodeDraft::serials);
        let account = match &table.account {
            Some(account) => self.check_account(account).then(|| account.get_ref().clone()),
            None => Some(DEFAULT_FORTICLOUD_ACCOUNT.to_owned()),
        };
        let who = "FortiCloud and EMS Cloud";
        let address = |this: &mut Self, key: &str, listen: &Option<Spanned<String>>, ip: Ipv4Addr| {
            let listen = listen.as_ref()?;
            let example = SocketAddr::from((ip, 0));
            this.check_address(key, listen, who, example)
                .map(|address| (address, listen.span()))
        };
        let listen = address(self, "listen", &table.listen, SUGGESTED_FORTICLOUD_IP);
        let ems_listen = address(self, "ems_listen", &table.ems_listen, SUGGESTED_EMS_CLOUD_IP);
        let registered = table.registered.as_deref().map_or_else(Vec::new, |registered| {
            self.node_serial_list(&REGISTERED_SERIALS, registered, node_serials.as_deref())
        });
        let contracts = self.contracts(contracts, node_serials.as_deref());
        self.check_cloud_addresses(
            listen.as_ref(),
            ems_listen.as_ref(),
            nodes.unwrap_or_default(),
            ems,
        );
        self.check_cloud_names(ems);
        let spec = match (account, &listen, &ems_listen, contracts) {
            (Some(account), Some((listen, _)), Some((ems_listen, _)), Some(contracts)) => {
                Some(ForticloudSpec {
                    account,
                    listen: *listen,
                    ems_listen: *ems_listen,
                    registered,
                    contracts,
                })
            }
            _ => None,
        };
        ForticloudDraft {
            listen,
            ems_listen,
            spec,
        }
    }

    /// Whether the account is an email address; reported when it is not.
    pub(super) fn check_account(&mut self, account: &Spanned<String>) -> bool {
        let value = account.get_ref();
        let length = value.chars().count();
        let fault = if value.is_empty() {
            "is empty".to_owned()
        } else if length > MAX_ACCOUNT_LEN {
            format!("has {length} characters (at most {MAX_ACCOUNT_LEN})")
        } else {
            match value.split_once('@') {
                Some((local, domain))
                    if !local.is_empty()
                        && !domain.contains('@')
                        && !local.chars().any(|c| c.is_whitespace() || c.is_control()) =>
                {
                    match fqdn_fault(domain) {
                        None => return true,
                        Some(fault) => format!("has the domain \"{domain}\", which {fault}"),
                    }
                }
                _ => "is not an email address (name@domain)".to_owned(),
            }
        };
        self.report(
            &account.span(),
            format!("FortiCloud account \"{value}\" {fault}"),
            format!(
                "write the account's email address, e.g. account = \"{DEFAULT_FORTICLOUD_ACCOUNT}\", \
                 or remove the line to get that one"
            ),
        );
        false
    }

    /// The contracts when every one is usable; each problem is reported.
    pub(super) fn contracts(
        &mut self,
        contracts: Vec<Read<ContractTable>>,
        nodes: Option<&[&str]>,
    ) -> Option<Vec<ContractSpec>> {
        let node_serials = nodes.unwrap_or_default();
        let mut seen = FirstSeen::new();
        let mut specs = Vec::new();
        let mut usable = true;
        for read in contracts {
            let table = read.table;
            let serial = table.serial.as_ref().filter(|serial| {
                let well_formed = self.check_listed_serial(&CONTRACT_SERIAL, serial, node_serials);
                if well_formed {
                    self.check_serial_names_node(
                        &CONTRACT_SERIAL,
                        serial,
                        nodes,
                        node_serials.iter().copied(),
                    );
                }
                well_formed
            });
            let kind = table.kind.as_ref().filter(|kind| self.check_contract_type(kind));
            let expires = table
                .expires
                .as_ref()
                .and_then(|expires| self.check_contract_date(expires));
            let (Some(serial), Some(kind), Some(expires)) = (serial, kind, expires) else {
                usable = false;
                continue;
            };
            let key = (serial.get_ref().clone(), kind.get_ref().clone());
            if let Some(first) = seen.repeat(key.clone(), read.header.clone()) {
                let first_line = self.line(first);
                let line = self.line(&read.header);
                self.report(
                    &read.header,
                    format!(
                        "two {} contracts for \"{}\": line {first_line} and line {line}",
                        key.1, key.0
                    ),
                    format!(
                        "a FortiGate holds one contract of each type; remove the \
                         [[forticloud.contract]] on line {line}"
                    ),
                );
                usable = false;
                continue;
            }
            specs.push(ContractSpec {
                serial: serial.get_ref().clone(),
                kind: kind.get_ref().clone(),
                expires,
            });
        }
        usable.then_some(specs)
    }

    /// Whether `kind` is one of [`CONTRACT_TYPES`]; reported when it is not.
    pub(super) fn check_contract_type(&mut self, kind: &Spanned<String>) -> bool {
        let value = kind.get_ref();
        if CONTRACT_TYPES.contains(&value.as_str()) {
            return true;
        }
        let upper = value.to_ascii_uppercase();
        let fix = if CONTRACT_TYPES.contains(&upper.as_str()) {
            format!("write type = \"{upper}\"; contract types are written in capitals")
        } else if let Some(close) = closest(&upper, CONTRACT_TYPES.iter().copied()) {
            format!("did you mean \"{close}\"?")
        } else {
            format!(
                "contract types are: {}; {FCEM_CONTRACT} is the FortiClient EMS Cloud entitlement",
                CONTRACT_TYPES.join(", ")
            )
        };
        self.report(&kind.span(), format!("unknown contract type \"{value}\""), fix);
        false
    }

    /// Whether `expires` is a date written `YYYY-MM-DD`; reported when it is not.
    /// The date `YYYY-MM-DD` when `expires` is one (a string or a TOML date); reported
    /// otherwise.
    pub(super) fn check_contract_date(&mut self, expires: &Spanned<WrittenDate>) -> Option<String> {
        let (value, fault) = match expires.get_ref() {
            WrittenDate::Text(text) => match parse_contract_date(text) {
                Ok(_) => return Some(text.clone()),
                Err(fault) => (text.clone(), fault),
            },
            WrittenDate::Toml(datetime) => match (datetime.date, datetime.time, datetime.offset) {
                (Some(date), None, None) => {
                    let text = format!("{:04}-{:02}-{:02}", date.year, date.month, date.day);
                    return Some(text);
                }
                (Some(_), ..) => (
                    datetime.to_string(),
                    "is a date and time; a contract ends on a whole day".to_owned(),
                ),
                (None, ..) => (datetime.to_string(), "is a time, not a date".to_owned()),
            },
        };
        self.report(
            &expires.span(),
            format!("expires \"{value}\" {fault}"),
            format!(
                "write the contract's last day as YYYY-MM-DD, e.g. expires = \"{}\"",
                date_suggestion(&value)
            ),
        );
        None
    }

    /// FortiCloud's and EMS Cloud's addresses unique among themselves, the nodes and the
    /// EMS servers (port 0 picks a free port, so those never collide).
    pub(super) fn check_cloud_addresses(
        &mut self,
        listen: Option<&(SocketAddr, Span)>,
        ems_listen: Option<&(SocketAddr, Span)>,
        nodes: &[NodeDraft],
        ems: &[EmsDraft],
    ) {
        let mut used: HashSet<SocketAddr> = NodeDraft::all_addresses(nodes);
        used.extend(ems.iter().filter_map(|d| d.listen));
        used.extend(
            listen
                .iter()
                .chain(ems_listen.iter())
                .map(|(address, _)| *address),
        );
        let mut seen = NodeDraft::addresses(nodes);
        for draft in ems {
            if let (Some(address), Some(listen)) = (draft.listen, &draft.table.listen) {
                seen.note(address, (draft.label(), listen.span()));
            }
        }
        for (who, key, at) in [
            ("FortiCloud", "listen", listen),
            ("EMS Cloud", "ems_listen", ems_listen),
        ] {
            if let Some((address, span)) = at {
                self.check_own_address(&mut seen, who.to_owned(), key, (*address, span), &used);
            }
        }
    }

    /// No `[[ems]]` takes the EMS Cloud server's name, serial or hostname, nor FortiCloud's
    /// hostname: `fabricsim ems`, the EMS Cloud certificate and `[dns]` could not tell them
    /// apart.
    pub(super) fn check_cloud_names(&mut self, ems: &[EmsDraft]) {
        let names: Vec<&str> = ems
            .iter()
            .filter_map(EmsDraft::name)
            .chain([EMS_CLOUD_NAME])
            .collect();
        let serials: HashSet<&str> = ems
            .iter()
            .filter_map(|d| d.table.serial.as_ref().map(|s| s.get_ref().as_str()))
            .chain([EMS_CLOUD_SERIAL])
            .collect();
        for draft in ems {
            if let Some(name) = &draft.table.name
                && name.get_ref() == EMS_CLOUD_NAME
            {
                self.report(
                    &name.span(),
                    format!(
                        "EMS name \"{EMS_CLOUD_NAME}\" is the name of the EMS Cloud server of [forticloud]"
                    ),
                    format!(
                        "rename the EMS, e.g. name = \"{}\"",
                        unused_name(EMS_CLOUD_NAME, &names)
                    ),
                );
            }
            if let Some(serial) = &draft.table.serial
                && serial.get_ref() == EMS_CLOUD_SERIAL
            {
                self.report(
                    &serial.span(),
                    format!(
                        "EMS serial \"{EMS_CLOUD_SERIAL}\" of {} is the serial of the EMS Cloud server of \
                         [forticloud]",
                        draft.label()
                    ),
                    format!(
                        "every EMS has its own serial; e.g. serial = \"{}\"",
                        unused_ems_serial(&serials)
                    ),
                );
            }
            if let (Some(hostname), Some(written)) = (&draft.hostname, &draft.table.hostname) {
                let owner = if hostname == EMS_CLOUD_HOSTNAME {
                    "EMS Cloud"
                } else if hostname == FORTICLOUD_HOSTNAME {
                    "FortiCloud"
                } else {
                    continue;
                };
                self.report(
                    &written.span(),
                    format!(
                        "EMS hostname \"{hostname}\" of {} is the name of {owner}",
                        draft.label()
                    ),
                    format!("give the EMS its own name, e.g. hostname = \"{SUGGESTED_EMS_HOSTNAME}\""),
                );
            }
        }
    }
}
