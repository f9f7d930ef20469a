//! The node's EMS checker: every node checks each of its fctems entries itself, from its
//! own address, and keeps the results.
//!
//! A round probes every entry concurrently (see [`crate::ems::probe`]); rounds start at the
//! configured interval, at once when the configuration changes (a round in progress is
//! abandoned for a fresh one), and on demand. Probes are plain async tasks with the entry's
//! `call-timeout`: a silent EMS costs a round its timeout, never a Raft heartbeat or a CLI
//! command. Results leave through a watch channel as an [`EmsReport`].

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::config::ConfigDb;
use crate::config::schema::{FCTEMS, REMOTE_CERTIFICATES};
use crate::ems::{self, EmsStatus, ProbeTarget, Resolver, TrustStore};

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
}

/// The value `source-ip` has when the administrator did not set one.
const ANY_SOURCE: &str = "0.0.0.0";

impl CheckerSetup {
    /// How entry `name` of `db` is probed from this node; `None` for an entry without a
    /// server to dial (an EMS Cloud entry).
    pub fn target(&self, db: &ConfigDb, name: &str) -> Option<ProbeTarget> {
        let value = |field: &str| db.value(FCTEMS.path, name, field);
        let server = value("server");
        if server.is_empty() {
            return None;
        }
        let source = match value("source-ip").as_str() {
            ANY_SOURCE | "" => self.own_ip,
            ip => ip.parse::<Ipv4Addr>().map_or(self.own_ip, IpAddr::V4),
        };
        Some(ProbeTarget {
            entry: name.to_owned(),
            server,
            port: value("https-port").parse().unwrap_or(443),
            source,
            timeout: Duration::from_secs(value("call-timeout").parse().unwrap_or(30)),
            fortigate_serial: self.serial.clone(),
            fortigate_hostname: self.hostname.clone(),
        })
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

    /// Checks entry `name` of `db` once.
    pub async fn check(&self, db: &ConfigDb, name: &str) -> EmsStatus {
        let server = db.value(FCTEMS.path, name, "server");
        match self.target(db, name) {
            Some(target) => ems::probe(&target, &self.trust(db), &self.resolver).await,
            None => {
                let mut status = EmsStatus::unknown(name, &server);
                status.connection = ems::Connection::Failed;
                status.detail =
                    "EMS Cloud: this FortiGate has no FortiCloud account to reach it through.".to_owned();
                status
            }
        }
    }

    /// Checks every entry of `db` concurrently.
    async fn round(&self, db: &ConfigDb) -> BTreeMap<String, EmsStatus> {
        let names: Vec<String> = db.entries(FCTEMS.path).map(|(name, _)| name.to_owned()).collect();
        let checks = names.iter().map(|name| self.check(db, name));
        let results = futures::future::join_all(checks).await;
        names.into_iter().zip(results).collect()
    }
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
