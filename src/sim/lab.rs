//! The lab around a fabric: every simulated EMS server of a topology and, when the topology
//! has a FortiCloud account, the simulated FortiCloud with its EMS Cloud server, started
//! together on one PKI and driven by name (`fabricsim ems EMS authorize SERIAL`,
//! `fabricsim cloud entitle SERIAL`, the harness).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;

use super::SimError as EmsError;
use super::ems::{DeviceState, EmsServer};
use super::forticloud::Forticloud;
use super::pki::{Pki, PkiError};
use crate::domain::{EMS_CAPABILITIES, EMS_CLOUD_HOSTNAME, EMS_CLOUD_SERIAL, FORTICLOUD_HOSTNAME};
use crate::topology::{CertProfile, EmsSpec, ForticloudSpec, SerialList, Topology, Unlisted};
use crate::wire::CloudAccess;

/// Why the lab could not start or do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error("EMS {ems} cannot listen on {addr}: {source}")]
    Listen {
        ems: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("EMS {ems}: {source}")]
    Ems { ems: String, source: Box<EmsError> },
    #[error("no EMS named {ems:?}; this topology has: {known}")]
    UnknownEms { ems: String, known: String },
    #[error("unknown action {action:?}; use authorize SERIAL, deny SERIAL, list-devices, stop or start")]
    UnknownAction { action: String },
    #[error("{action} needs a FortiGate serial number")]
    MissingSerial { action: String },
    #[error("{serial:?} is not a FortiGate serial number (16 characters, A-Z and 0-9, starting with FG)")]
    BadSerial { serial: String },
    #[error("unknown action {action:?}; use register, unregister, entitle or revoke, then a serial")]
    UnknownCloudAction { action: String },
    #[error("this topology has no [forticloud] account")]
    NoForticloud,
    /// The serial names no node of the topology, which `check` refuses in the file too.
    #[error("{}\n    fix: {}", .0.what, .0.fix)]
    Unlisted(Unlisted),
}

/// The running simulators of one topology.
pub struct Lab {
    /// The topology the lab was started from: the nodes whose serials it may be given.
    topology: Topology,
    pki: Pki,
    ems: BTreeMap<String, EmsServer>,
    cloud: Option<CloudLab>,
}

/// FortiCloud and the EMS Cloud server that asks it whom to authorize.
struct CloudLab {
    forticloud: Forticloud,
    ems: EmsServer,
}

/// The name `fabricsim ems` and the status use for the EMS Cloud server.
pub const EMS_CLOUD_NAME: &str = "ems-cloud";

impl Lab {
    /// Opens the PKI in `pki_dir` and starts every EMS of `topology` on its `listen`
    /// address (port 0: a free port; [`EmsServer::addr`] tells which).
    pub async fn start(topology: &Topology, pki_dir: &Path) -> Result<Lab, LabError> {
        let pki = Pki::open(pki_dir)?;
        let mut lab = Lab {
            topology: topology.clone(),
            pki,
            ems: BTreeMap::new(),
            cloud: None,
        };
        for spec in &topology.ems {
            let wanted = spec.listen;
            let listener = match TcpListener::bind(wanted).await {
                Ok(listener) => listener,
                Err(source) => {
                    lab.shutdown().await;
                    return Err(LabError::Listen {
                        ems: spec.name.clone(),
                        addr: wanted,
                        source,
                    });
                }
            };
            let identity = lab.pki.server_identity(
                &spec.name,
                &spec.hostname,
                Some(spec.listen.ip()),
                spec.certificate,
            )?;
            let server = EmsServer::start(spec.clone(), identity, listener)
                .await
                .map_err(|source| LabError::Ems {
                    ems: spec.name.clone(),
                    source: Box::new(source),
                })?;
            lab.ems.insert(spec.name.clone(), server);
        }
        if let Some(spec) = &topology.forticloud {
            match lab.start_cloud(spec).await {
                Ok(cloud) => lab.cloud = Some(cloud),
                Err(e) => {
                    lab.shutdown().await;
                    return Err(e);
                }
            }
        }
        Ok(lab)
    }

    async fn start_cloud(&self, spec: &ForticloudSpec) -> Result<CloudLab, LabError> {
        let bind = |name: &str, addr: SocketAddr| {
            let name = name.to_owned();
            async move {
                TcpListener::bind(addr).await.map_err(|source| LabError::Listen {
                    ems: name,
                    addr,
                    source,
                })
            }
        };
        let identity = self.pki.server_identity(
            "forticloud",
            FORTICLOUD_HOSTNAME,
            Some(spec.listen.ip()),
            CertProfile::Public,
        )?;
        let forticloud = Forticloud::start(spec, identity, bind("forticloud", spec.listen).await?)
            .await
            .map_err(|source| LabError::Ems {
                ems: "forticloud".to_owned(),
                source: Box::new(source),
            })?;
        let ems_spec = EmsSpec {
            name: EMS_CLOUD_NAME.to_owned(),
            serial: EMS_CLOUD_SERIAL.to_owned(),
            hostname: EMS_CLOUD_HOSTNAME.to_owned(),
            listen: spec.ems_listen,
            certificate: CertProfile::Public,
            sites: Vec::new(),
            authorized: Vec::new(),
            capabilities: EMS_CAPABILITIES.iter().map(|c| (*c).to_owned()).collect(),
            respond: true,
        };
        let identity = self.pki.server_identity(
            EMS_CLOUD_NAME,
            EMS_CLOUD_HOSTNAME,
            Some(spec.ems_listen.ip()),
            CertProfile::Public,
        )?;
        let ems = EmsServer::start(ems_spec, identity, bind(EMS_CLOUD_NAME, spec.ems_listen).await?)
            .await
            .map_err(|source| LabError::Ems {
                ems: EMS_CLOUD_NAME.to_owned(),
                source: Box::new(source),
            })?;
        let account = forticloud.clone();
        ems.set_authorizer(Arc::new(move |serial: &str| account.ems_cloud_state(serial)));
        Ok(CloudLab { forticloud, ems })
    }

    /// The simulated FortiCloud.
    pub fn forticloud(&self) -> Result<&Forticloud, LabError> {
        self.cloud
            .as_ref()
            .map(|cloud| &cloud.forticloud)
            .ok_or(LabError::NoForticloud)
    }

    /// Where nodes reach FortiCloud and EMS Cloud; `None` without a FortiCloud account.
    pub fn cloud_access(&self) -> Option<CloudAccess> {
        self.cloud.as_ref().map(|cloud| CloudAccess {
            api: cloud.forticloud.addr(),
            ems: cloud.ems.addr(),
        })
    }

    /// Runs one `fabricsim cloud` action and returns what to print.
    pub fn cloud_command(&self, action: &str, serial: &str) -> Result<String, LabError> {
        let forticloud = self.forticloud()?;
        checked_serial(action, serial)?;
        match action {
            "register" => self.node_serial(SerialList::Registered, serial).map(drop)?,
            "entitle" => self.node_serial(SerialList::Contract, serial).map(drop)?,
            _ => {}
        }
        match action {
            "register" => forticloud.register(serial),
            "unregister" => forticloud.unregister(serial),
            "entitle" => forticloud.entitle(serial, None),
            "revoke" => forticloud.revoke(serial),
            other => {
                return Err(LabError::UnknownCloudAction {
                    action: other.to_owned(),
                });
            }
        }
        let record = forticloud.record(serial);
        let contracts: Vec<String> = record
            .contracts
            .iter()
            .map(|c| {
                format!(
                    "{} until {}{}",
                    c.kind,
                    c.expires,
                    if c.expired { " (expired)" } else { "" }
                )
            })
            .collect();
        Ok(format!(
            "forticloud: {serial} {}; contracts: {}\n",
            if record.registered {
                "registered"
            } else {
                "not registered"
            },
            if contracts.is_empty() {
                "none".to_owned()
            } else {
                contracts.join(", ")
            }
        ))
    }

    /// The chain and key node `name` presents on its REST API (see [`Pki::node_identity`]).
    pub fn node_identity(
        &self,
        name: &str,
        hostname: &str,
        ip: std::net::IpAddr,
    ) -> Result<super::ServerIdentity, LabError> {
        Ok(self.pki.node_identity(name, hostname, ip)?)
    }

    /// What node `name` presents on the fabric's own connections (see
    /// [`Pki::csf_identity`]), with the fabric CA it requires of peers.
    pub fn csf_credentials(
        &self,
        name: &str,
        serial: &str,
        ip: std::net::IpAddr,
    ) -> Result<crate::link::Credentials, LabError> {
        Ok(self.pki.csf_credentials(name, serial, ip)?)
    }

    /// What the operator's commands present to the nodes (see [`Pki::operator_identity`]).
    pub fn operator_credentials(&self) -> Result<crate::link::Credentials, LabError> {
        Ok(self.pki.operator_credentials()?)
    }

    /// What every node trusts out of the box.
    pub fn trust_anchors(&self) -> Vec<rustls::pki_types::CertificateDer<'static>> {
        self.pki.trust_anchors()
    }

    /// The EMS called `name` (`ems-cloud` is the EMS Cloud server).
    pub fn ems(&self, name: &str) -> Result<&EmsServer, LabError> {
        if let Some(cloud) = self.cloud.as_ref().filter(|_| name == EMS_CLOUD_NAME) {
            return Ok(&cloud.ems);
        }
        self.ems.get(name).ok_or_else(|| LabError::UnknownEms {
            ems: name.to_owned(),
            known: if self.ems.is_empty() {
                "none".to_owned()
            } else {
                self.ems.keys().cloned().collect::<Vec<_>>().join(", ")
            },
        })
    }

    /// Every EMS, by name.
    pub fn servers(&self) -> impl Iterator<Item = &EmsServer> {
        self.ems.values()
    }

    /// Runs one `fabricsim ems` action and returns what to print.
    pub async fn command(&self, ems: &str, action: &str, serial: &str) -> Result<String, LabError> {
        let server = self.ems(ems)?;
        let need_serial = || checked_serial(action, serial);
        let mut out = String::new();
        match action {
            "authorize" => {
                server.authorize(self.node_serial(SerialList::Authorized, need_serial()?)?);
                let _ = writeln!(out, "{ems}: {serial} authorized");
            }
            "deny" => {
                server.deny(need_serial()?);
                let _ = writeln!(out, "{ems}: {serial} denied");
            }
            "stop" => {
                server.stop().await;
                let _ = writeln!(out, "{ems}: stopped; {} refuses connections", server.addr());
            }
            "start" => {
                server.start_again().await.map_err(|source| LabError::Ems {
                    ems: ems.to_owned(),
                    source: Box::new(source),
                })?;
                let _ = writeln!(out, "{ems}: listening on {}", server.addr());
            }
            "list-devices" => out.push_str(&devices_table(server)),
            other => {
                return Err(LabError::UnknownAction {
                    action: other.to_owned(),
                });
            }
        }
        Ok(out)
    }

    /// `serial` when a node of the topology has it; otherwise the problem `check` reports
    /// for the same serial written into `list` in the file.
    fn node_serial<'s>(&self, list: SerialList, serial: &'s str) -> Result<&'s str, LabError> {
        match self.topology.unlisted_serial(list, serial) {
            None => Ok(serial),
            Some(problem) => Err(LabError::Unlisted(problem)),
        }
    }

    /// Stops every simulator and joins their tasks.
    pub async fn shutdown(self) {
        futures::future::join_all(self.ems.into_values().map(EmsServer::shutdown)).await;
        if let Some(cloud) = self.cloud {
            cloud.ems.shutdown().await;
            cloud.forticloud.shutdown().await;
        }
    }
}

/// `serial` if it is a FortiGate serial number.
fn checked_serial<'s>(action: &str, serial: &'s str) -> Result<&'s str, LabError> {
    if serial.is_empty() {
        Err(LabError::MissingSerial {
            action: action.to_owned(),
        })
    } else if !crate::domain::is_serial(serial) {
        Err(LabError::BadSerial {
            serial: serial.to_owned(),
        })
    } else {
        Ok(serial)
    }
}

/// *Administration > Fabric Devices* as a table.
fn devices_table(server: &EmsServer) -> String {
    let mut out = format!(
        "{} ({}, {}) fabric devices:\n{:<18}{:<16}{:<10}{:<12}{}\n",
        server.name(),
        server.spec().serial,
        server.addr(),
        "SERIAL",
        "HOSTNAME",
        "SITE",
        "STATE",
        "LAST ADDRESS"
    );
    for device in server.devices() {
        let state = match device.state {
            DeviceState::Authorized => "authorized",
            DeviceState::Pending => "pending",
            DeviceState::Denied => "denied",
        };
        let address = device.last_address.map_or("-".to_owned(), |ip| ip.to_string());
        let _ = writeln!(
            out,
            "{:<18}{:<16}{:<10}{:<12}{}",
            device.serial, device.hostname, device.site, state, address
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const ONE_EMS: &str = r#"[fabric]
name = "lab"

[[node]]
name = "root"
serial = "FGVM01TM22000001"
role = "root"
listen = "127.0.0.11:8013"

[[ems]]
name = "ems1"
serial = "FCTEMS8822001234"
hostname = "ems.lab.example"
listen = "127.0.0.1:0"
"#;

    #[tokio::test]
    async fn a_serial_no_node_has_is_refused_as_the_topology_refuses_it() {
        let topology = Topology::parse(ONE_EMS, Path::new("lab.toml")).expect("valid");
        let pki = tempfile::tempdir().expect("temporary directory");
        let lab = Lab::start(&topology, pki.path()).await.expect("lab starts");
        let before = lab.command("ems1", "list-devices", "").await.expect("lists");
        let error = lab
            .command("ems1", "authorize", "FGVM01TM99999999")
            .await
            .expect_err("no node has that serial");
        assert_eq!(
            error.to_string(),
            "authorized serial \"FGVM01TM99999999\" names no node in lab.toml\n    \
             fix: use a serial of a node in lab.toml: \"FGVM01TM22000001\""
        );
        assert_eq!(
            lab.command("ems1", "list-devices", "").await.expect("lists"),
            before
        );
        let output = lab
            .command("ems1", "authorize", "FGVM01TM22000001")
            .await
            .expect("a node's serial");
        assert_eq!(output, "ems1: FGVM01TM22000001 authorized\n");
        lab.shutdown().await;
    }
}
