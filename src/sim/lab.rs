//! The lab around a fabric: every simulated EMS server of a topology, started together on
//! one PKI, and driven by name (`fabricsim ems EMS authorize SERIAL`, the harness).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;

use tokio::net::TcpListener;

use super::SimError as EmsError;
use super::ems::{DeviceState, EmsServer};
use super::pki::{Pki, PkiError};
use crate::topology::Topology;

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
    Ems { ems: String, source: EmsError },
    #[error("no EMS named {ems:?}; this topology has: {known}")]
    UnknownEms { ems: String, known: String },
    #[error("unknown action {action:?}; use authorize SERIAL, deny SERIAL, list-devices, stop or start")]
    UnknownAction { action: String },
    #[error("{action} needs a FortiGate serial number")]
    MissingSerial { action: String },
}

/// The running simulators of one topology.
pub struct Lab {
    pki: Pki,
    ems: BTreeMap<String, EmsServer>,
}

impl Lab {
    /// Opens the PKI in `pki_dir` and starts every EMS of `topology` on its `listen`
    /// address (port 0: a free port; [`EmsServer::addr`] tells which).
    pub async fn start(topology: &Topology, pki_dir: &Path) -> Result<Lab, LabError> {
        let pki = Pki::open(pki_dir)?;
        let mut lab = Lab {
            pki,
            ems: BTreeMap::new(),
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
                    source,
                })?;
            lab.ems.insert(spec.name.clone(), server);
        }
        Ok(lab)
    }

    /// What every node trusts out of the box.
    pub fn trust_anchors(&self) -> Vec<rustls::pki_types::CertificateDer<'static>> {
        self.pki.trust_anchors()
    }

    /// The EMS called `name`.
    pub fn ems(&self, name: &str) -> Result<&EmsServer, LabError> {
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
        let need_serial = || {
            if serial.is_empty() {
                Err(LabError::MissingSerial {
                    action: action.to_owned(),
                })
            } else {
                Ok(serial)
            }
        };
        let mut out = String::new();
        match action {
            "authorize" => {
                server.authorize(need_serial()?);
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
                    source,
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

    /// Stops every EMS and joins their tasks.
    pub async fn shutdown(self) {
        futures::future::join_all(self.ems.into_values().map(EmsServer::shutdown)).await;
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
