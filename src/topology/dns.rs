//! Rules of `[dns]`: names well formed and each given once, addresses IPv4, and every
//! name of an EMS, of FortiCloud or of EMS Cloud pointing at that server. FortiCloud's and
//! EMS Cloud's names are added when the file leaves them out.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};

use crate::domain::{EMS_CLOUD_HOSTNAME, FORTICLOUD_HOSTNAME};

use super::ems::EmsDraft;
use super::file::DnsEntry;
use super::forticloud::ForticloudDraft;
use super::names::{fqdn_fault, fqdn_rule};
use super::reader::Reader;
use super::seen::FirstSeen;
use super::spec::Span;
use super::suggest::{SUGGESTED_EMS_IP, fqdn_suggestion};

/// A server a `[dns]` name belongs to, as problems about that name describe it.
pub(super) struct Served {
    /// `site "SiteA" of EMS "ems1"`, `the hostname of EMS "ems1"`, `the name of FortiCloud`.
    pub(super) what: String,
    /// The address it listens on.
    pub(super) ip: IpAddr,
    /// The line of its `listen` key.
    pub(super) listen_line: usize,
}

impl Reader<'_> {
    /// The `[dns]` table, names in lowercase, when each entry is well formed; each name
    /// of an EMS (`<hostname>`, `<site>.<hostname>`) must point at that EMS, and
    /// FortiCloud's and EMS Cloud's names at them. Those two names are added when the file
    /// does not give them.
    pub(super) fn dns_names(
        &mut self,
        mut entries: Vec<DnsEntry>,
        ems: &[EmsDraft],
        cloud: Option<&ForticloudDraft>,
    ) -> BTreeMap<String, IpAddr> {
        entries.sort_by_key(|entry| entry.name.span().start);
        let cloud_names = cloud_names(cloud);
        let served = self.served(ems, &cloud_names);
        let mut names = BTreeMap::new();
        let mut seen = FirstSeen::new();
        for entry in &entries {
            let written = entry.name.get_ref();
            let servers = served.get(&written.to_ascii_lowercase());
            let expected = servers
                .and_then(|servers| servers.first())
                .map(|server| server.ip);
            if let Some(fault) = fqdn_fault(written) {
                self.report(
                    &entry.name.span(),
                    format!("[dns] name \"{written}\" {fault}"),
                    format!(
                        "write a name of {}, e.g. \"{}\" = \"{}\"",
                        fqdn_rule(),
                        fqdn_suggestion(written),
                        entry.address.get_ref()
                    ),
                );
                continue;
            }
            let name = written.to_ascii_lowercase();
            if let Some(first) = seen.repeat(name.clone(), entry) {
                let first_line = self.line(&first.name.span());
                self.report(
                    &entry.name.span(),
                    format!(
                        "two [dns] entries are for \"{name}\": \"{}\" (line {first_line}) and \
                         \"{written}\" (line {}); names are case-insensitive",
                        first.name.get_ref(),
                        self.line(&entry.name.span())
                    ),
                    format!(
                        "remove line {}; one entry per name",
                        self.line(&entry.name.span())
                    ),
                );
                continue;
            }
            let Some(address) = self.check_dns_address(entry, expected) else {
                continue;
            };
            if let Some(servers) = servers
                && !servers.iter().any(|server| server.ip == address)
                && let Some(server) = servers.first()
            {
                self.report(
                    &entry.address.span(),
                    format!(
                        "[dns] name \"{name}\" points at {address}, but it is {}, which listens on {} \
                         (line {})",
                        server.what, server.ip, server.listen_line
                    ),
                    format!("write \"{written}\" = \"{}\"", server.ip),
                );
            }
            names.insert(name, address);
        }
        for (name, _, (listen, _)) in cloud_names {
            names.entry(name.to_owned()).or_insert(listen.ip());
        }
        names
    }

    /// Every name a server answers to, and the servers behind it: each EMS's hostname and
    /// `<site>.<hostname>` names, and FortiCloud's and EMS Cloud's names.
    fn served(
        &self,
        ems: &[EmsDraft],
        cloud_names: &[(&str, &str, &(SocketAddr, Span))],
    ) -> HashMap<String, Vec<Served>> {
        let mut served: HashMap<String, Vec<Served>> = HashMap::new();
        for draft in ems {
            let (Some(hostname), Some(listen), Some(listen_at)) =
                (&draft.hostname, draft.listen, &draft.table.listen)
            else {
                continue;
            };
            let listen_line = self.line(&listen_at.span());
            served.entry(hostname.clone()).or_default().push(Served {
                what: format!("the hostname of {}", draft.label()),
                ip: listen.ip(),
                listen_line,
            });
            for site in &draft.sites {
                let name = format!("{}.{hostname}", site.to_ascii_lowercase());
                served.entry(name).or_default().push(Served {
                    what: format!("site \"{site}\" of {}", draft.label()),
                    ip: listen.ip(),
                    listen_line,
                });
            }
        }
        for &(name, who, (listen, span)) in cloud_names {
            let listen_line = self.line(span);
            served.entry(name.to_owned()).or_default().push(Served {
                what: format!("the name of {who}"),
                ip: listen.ip(),
                listen_line,
            });
        }
        served
    }

    /// The address of a `[dns]` entry when it is IPv4; reported otherwise. `expected` is
    /// the address of the EMS the name belongs to, for the fix.
    pub(super) fn check_dns_address(&mut self, entry: &DnsEntry, expected: Option<IpAddr>) -> Option<IpAddr> {
        let value = entry.address.get_ref();
        let name = entry.name.get_ref();
        let example = expected.unwrap_or(IpAddr::V4(SUGGESTED_EMS_IP));
        let fault = match value.parse::<IpAddr>() {
            Ok(address @ IpAddr::V4(_)) => return Some(address),
            Ok(IpAddr::V6(_)) => {
                format!("\"{value}\" is an IPv6 address; [dns] holds IPv4 addresses")
            }
            Err(_) => match value.parse::<SocketAddr>() {
                Ok(with_port) => {
                    let address = match with_port.ip() {
                        address @ IpAddr::V4(_) => expected.unwrap_or(address),
                        IpAddr::V6(_) => example,
                    };
                    self.report(
                        &entry.address.span(),
                        format!(
                            "\"{value}\" for \"{name}\" has a port; [dns] maps names to addresses \
                             (the port is the fctems https-port)"
                        ),
                        format!("write \"{name}\" = \"{address}\""),
                    );
                    return None;
                }
                Err(_) => format!("\"{value}\" is not an IPv4 address"),
            },
        };
        self.report(
            &entry.address.span(),
            format!("[dns] address {fault}"),
            format!("write an IPv4 address, e.g. \"{name}\" = \"{example}\""),
        );
        None
    }
}

/// FortiCloud's and EMS Cloud's names, each with who answers to it and its parsed
/// address; only those whose address parsed.
fn cloud_names(cloud: Option<&ForticloudDraft>) -> Vec<(&'static str, &'static str, &(SocketAddr, Span))> {
    cloud
        .map(|draft| {
            [
                (FORTICLOUD_HOSTNAME, "FortiCloud", draft.listen.as_ref()),
                (EMS_CLOUD_HOSTNAME, "EMS Cloud", draft.ems_listen.as_ref()),
            ]
        })
        .into_iter()
        .flatten()
        .filter_map(|(name, who, at)| Some((name, who, at?)))
        .collect()
}
