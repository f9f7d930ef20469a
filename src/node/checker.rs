//! The node's EMS checker: every node checks each of its fctems entries itself, from its
//! own address, and keeps the results.
//!
//! A round probes every entry concurrently (see [`crate::connector::probe`]); rounds start at the
//! configured interval, at once when the configuration changes (a round in progress is
//! abandoned for a fresh one), and on demand. Probes are plain async tasks with the entry's
//! `call-timeout`: a silent EMS costs a round its timeout, never a Raft heartbeat or a CLI
//! command. Results leave through a watch channel as an [`EmsReport`].

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::config::ConfigDb;
use crate::config::schema::{FCTEMS, REMOTE_CERTIFICATES};
use crate::connector::forticloud::{self, CloudRecord};
use crate::connector::{self, EmsStatus, ProbeTarget, Resolver, TrustStore};
use crate::domain::{EMS_CLOUD_HOSTNAME, FORTICLOUD_HOSTNAME};

/// What a node knows about its EMS connectors.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EmsReport {
    /// The latest result per entry name.
    pub results: BTreeMap<String, EmsStatus>,
    /// The configuration revision the last completed round checked, if a round completed.
    pub checked_revision: Option<u64>,
}

/// What the checker needs from its node, fixed at start.
#[derive(Clone)]
pub struct CheckerSetup {
    /// This node's own address: the source of probes whose entry has no `source-ip`.
    pub own_ip: IpAddr,
    pub serial: String,
    pub hostname: String,
    /// The CA certificates every node trusts out of the box.
    pub anchors: Vec<CertificateDer<'static>>,
    pub resolver: Resolver,
    pub interval: Duration,
    /// Where FortiCloud and EMS Cloud are; `None` when the fabric has no FortiCloud account.
    pub cloud: Option<CloudAccess>,
}

/// The addresses of the simulated FortiCloud API and EMS Cloud server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloudAccess {
    pub api: SocketAddr,
    pub ems: SocketAddr,
}

/// How long a FortiCloud query may take.
const FORTICLOUD_TIMEOUT: Duration = Duration::from_secs(5);

/// FortiOS's words when a FortiGate's EMS Cloud entitlement is missing or has run out
/// (DOMAIN.md section 2).
pub const LICENSE_EXPIRED: &str = "License expired.";

/// The value `source-ip` has when the administrator did not set one.
const ANY_SOURCE: &str = "0.0.0.0";

impl CheckerSetup {
    /// How entry `name` of `db` is probed from this node. An EMS Cloud entry dials the EMS
    /// Cloud server of the fabric's FortiCloud; `None` when there is none, or when an
    /// on-premise entry has no server.
    pub fn target(&self, db: &ConfigDb, name: &str) -> Option<ProbeTarget> {
        let value = |field: &str| db.value(FCTEMS.path, name, field);
        let (server, port) = if is_cloud(db, name) {
            (EMS_CLOUD_HOSTNAME.to_owned(), self.cloud?.ems.port())
        } else {
            (value("server"), value("https-port").parse().unwrap_or(443))
        };
        if server.is_empty() {
            return None;
        }
        Some(ProbeTarget {
            entry: name.to_owned(),
            server,
            port,
            source: self.source(db, name),
            timeout: Duration::from_secs(value("call-timeout").parse().unwrap_or(30)),
            fortigate_serial: self.serial.clone(),
            fortigate_hostname: self.hostname.clone(),
        })
    }

    fn source(&self, db: &ConfigDb, name: &str) -> IpAddr {
        match db.value(FCTEMS.path, name, "source-ip").as_str() {
            ANY_SOURCE | "" => self.own_ip,
            ip => ip.parse::<Ipv4Addr>().map_or(self.own_ip, IpAddr::V4),
        }
    }

    /// What FortiCloud knows of this FortiGate.
    pub async fn forticloud(&self) -> Result<CloudRecord, String> {
        let cloud = self
            .cloud
            .ok_or_else(|| "this fabric has no FortiCloud account".to_owned())?;
        forticloud::query(
            cloud.api,
            FORTICLOUD_HOSTNAME,
            &self.serial,
            self.own_ip,
            &self.anchors,
            FORTICLOUD_TIMEOUT,
        )
        .await
    }

    /// The node's trust store under `db`: the CA anchors plus every certificate accepted
    /// into `vpn certificate remote`.
    pub fn trust(&self, db: &ConfigDb) -> TrustStore {
        let pinned = db
            .entries(REMOTE_CERTIFICATES.path)
            .filter_map(|(_, cert)| cert.get("remote"))
            .filter_map(|pem| CertificateDer::from_pem_slice(pem.as_bytes()).ok())
            .collect();
        TrustStore {
            anchors: self.anchors.clone(),
            pinned,
        }
    }

    /// Checks entry `name` of `db` once. For an EMS Cloud entry the FortiGate first asks
    /// FortiCloud for its own registration and entitlement, as a real one learns them.
    pub async fn check(&self, db: &ConfigDb, name: &str) -> EmsStatus {
        let cloud = is_cloud(db, name);
        let server = if cloud {
            EMS_CLOUD_HOSTNAME.to_owned()
        } else {
            db.value(FCTEMS.path, name, "server")
        };
        let failed = |detail: String| {
            let mut status = EmsStatus::unknown(name, &server);
            status.connection = connector::Connection::Failed;
            status.detail = detail;
            status.checked_at = Some(connector::now_rfc3339());
            status
        };
        if cloud {
            match self.forticloud().await {
                Err(why) => return failed(format!("FortiCloud cannot be reached: {why}.")),
                Ok(record) if !record.registered => {
                    return failed("This FortiGate is not registered to FortiCloud.".to_owned());
                }
                Ok(record) if record.ems_cloud().is_none_or(|contract| contract.expired) => {
                    return failed(LICENSE_EXPIRED.to_owned());
                }
                Ok(_) => {}
            }
        }
        let Some(target) = self.target(db, name) else {
            return failed(format!("EMS {name} has no server to connect to."));
        };
        let mut resolver = self.resolver.clone();
        if let Some(access) = self.cloud.filter(|_| cloud) {
            resolver
                .table
                .insert(EMS_CLOUD_HOSTNAME.to_owned(), access.ems.ip());
        }
        connector::probe(&target, &self.trust(db), &resolver).await
    }

    /// Checks every entry of `db` concurrently.
    async fn round(&self, db: &ConfigDb) -> BTreeMap<String, EmsStatus> {
        let names: Vec<String> = db.entries(FCTEMS.path).map(|(name, _)| name.to_owned()).collect();
        let checks = names.iter().map(|name| self.check(db, name));
        let results = futures::future::join_all(checks).await;
        names.into_iter().zip(results).collect()
    }
}

/// Whether entry `name` is an EMS Cloud entry.
fn is_cloud(db: &ConfigDb, name: &str) -> bool {
    db.value(FCTEMS.path, name, "fortinetone-cloud-authentication") == "enable"
}

/// Runs check rounds until `shutdown`: at start, every `interval`, whenever the
/// configuration changes, and whenever `wake` is notified.
pub async fn run(
    setup: CheckerSetup,
    mut config_rx: watch::Receiver<Arc<ConfigDb>>,
    report_tx: watch::Sender<EmsReport>,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    loop {
        let db = config_rx.borrow_and_update().clone();
        let round = setup.round(&db);
        tokio::select! {
            () = shutdown.cancelled() => return,
            // A newer configuration makes this round moot: start over with it.
            changed = config_rx.changed() => {
                if changed.is_err() { return; }
                continue;
            }
            results = round => {
                report_tx.send_modify(|report| {
                    report.results = results;
                    report.checked_revision = Some(db.revision());
                });
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = config_rx.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(setup.interval) => {}
            () = wake.notified() => {}
        }
    }
}
