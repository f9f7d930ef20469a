//! The node's EMS checker: every node checks each of its fctems entries itself, from its
//! own address, and keeps the results.
//!
//! A round probes every entry concurrently (see [`crate::connector::probe`]). Rounds start
//! at the configured interval, on demand, and when the configuration changes what a round
//! checks (a round in progress is abandoned for a fresh one, at most every 200 ms); any
//! other change is checked by the results that stand. Probes are plain async tasks with
//! the entry's `call-timeout`: a silent EMS costs a round its timeout, never a Raft
//! heartbeat or a CLI command. Results leave through a watch channel as a
//! [`CheckerStatus`].

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::calendar::{Clock, SystemClock};
use crate::config::ConfigDb;
use crate::config::schema::{FCTEMS, REMOTE_CERTIFICATES};
use crate::connector::forticloud::{self, CloudRecord};
use crate::connector::{self, EmsStatus, ProbeTarget, Resolver, TrustStore};
use crate::domain::{EMS_CLOUD_HOSTNAME, FORTICLOUD_HOSTNAME};
use crate::wire::CloudAccess;

/// What a node knows about its EMS connectors.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckerStatus {
    /// The latest result per entry, by the name FortiOS shows for it (keyed by ems-id,
    /// the entry's `name` field).
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

/// How long a FortiCloud query may take.
const FORTICLOUD_TIMEOUT: Duration = Duration::from_secs(5);

/// FortiOS's words when a FortiGate's EMS Cloud entitlement is missing or has run out
/// (`docs/fortios.md`).
pub const LICENSE_EXPIRED: &str = "License expired.";

impl CheckerSetup {
    /// How entry `name` (its key) of `db` is probed from this node. An EMS Cloud entry
    /// dials the EMS Cloud server of the fabric's FortiCloud; `None` when there is none, or
    /// when an on-premise entry has no server.
    pub fn target(&self, db: &ConfigDb, name: &str) -> Option<ProbeTarget> {
        let (server, port) = if is_cloud(db, name) {
            (EMS_CLOUD_HOSTNAME.to_owned(), self.cloud?.ems.port())
        } else {
            (
                db.value(FCTEMS.path, name, "server"),
                fctems_value(db, name, "https-port"),
            )
        };
        if server.is_empty() {
            return None;
        }
        Some(ProbeTarget {
            entry: db.fctems_label(name),
            server,
            port,
            source: self.source(db, name),
            timeout: Duration::from_secs(fctems_value(db, name, "call-timeout")),
            fortigate_serial: self.serial.clone(),
            fortigate_hostname: self.hostname.clone(),
        })
    }

    /// The entry's `source-ip`, or this node's own address when it is `0.0.0.0` (unset).
    fn source(&self, db: &ConfigDb, name: &str) -> IpAddr {
        let source: Ipv4Addr = fctems_value(db, name, "source-ip");
        if source.is_unspecified() {
            self.own_ip
        } else {
            IpAddr::V4(source)
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
        let label = db.fctems_label(name);
        let failed = |detail: String| {
            let mut status = EmsStatus::unknown(&label, &server);
            status.connection = connector::Connection::Failed;
            status.detail = detail;
            status.checked_at = Some(SystemClock.now_rfc3339());
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
            return failed(format!("EMS {label} has no server to connect to."));
        };
        let mut resolver = self.resolver.clone();
        if let Some(access) = self.cloud.filter(|_| cloud) {
            resolver
                .table
                .insert(EMS_CLOUD_HOSTNAME.to_owned(), access.ems.ip());
        }
        connector::probe(&target, &self.trust(db), &resolver).await
    }

    /// Checks every entry of `db` in use concurrently (keyed by ems-id, a disabled slot is
    /// not checked), and gives each result under the entry's name.
    async fn round(&self, db: &ConfigDb) -> BTreeMap<String, EmsStatus> {
        let keys = db.fctems_in_use();
        let checks = keys.iter().map(|key| self.check(db, key));
        let results = futures::future::join_all(checks).await;
        keys.iter().map(|key| db.fctems_label(key)).zip(results).collect()
    }
}

/// The value of `field` in fctems entry `name`, typed. `set` checked it against the
/// field's kind in the schema, so only a state edited by hand fails to parse; it then
/// reads as the schema default, as an entry that never set the field does.
fn fctems_value<T: FromStr>(db: &ConfigDb, name: &str, field: &str) -> T {
    let spec = db
        .fctems()
        .field(field)
        .unwrap_or_else(|| panic!("the fctems schema has no {field} field"));
    db.value(FCTEMS.path, name, field)
        .parse()
        .or_else(|_| spec.default.parse())
        .unwrap_or_else(|_| panic!("the schema default of fctems {field} does not parse"))
}

/// Whether entry `name` is an EMS Cloud entry.
fn is_cloud(db: &ConfigDb, name: &str) -> bool {
    db.value(FCTEMS.path, name, "fortinetone-cloud-authentication") == "enable"
}

/// The least time between the starts of two rounds when changes keep coming: a stream of
/// writes to the fctems table restarts the round at most this often.
const ROUND_RESTART_MIN: Duration = Duration::from_millis(200);

/// Whether a round over `a` and one over `b` would check the same things: the fctems
/// entries and the accepted remote certificates are all a round reads of the
/// configuration. A change elsewhere leaves the last results standing for the new revision.
fn checks_the_same(a: &ConfigDb, b: &ConfigDb) -> bool {
    a.firmware() == b.firmware()
        && [FCTEMS.path, REMOTE_CERTIFICATES.path]
            .iter()
            .all(|path| a.same_table(b, path))
}

/// Runs check rounds until `shutdown`: at start, every `interval`, whenever `wake` is
/// notified, and when the configuration changes what a round checks (a round in progress
/// is then abandoned for a fresh one, at most every 200 ms). A change that leaves the
/// checks alone moves the checked revision on without a round.
pub async fn run(
    setup: CheckerSetup,
    mut config_rx: watch::Receiver<Arc<ConfigDb>>,
    report_tx: watch::Sender<CheckerStatus>,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let checked_up_to = |revision: u64| {
        report_tx.send_modify(|report| report.checked_revision = Some(revision));
    };
    loop {
        let db = config_rx.borrow_and_update().clone();
        let started = tokio::time::Instant::now();
        let mut revision = db.revision();
        let round = setup.round(&db);
        tokio::pin!(round);
        let results = loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                changed = config_rx.changed() => {
                    if changed.is_err() { return; }
                    let latest = config_rx.borrow_and_update().clone();
                    if !checks_the_same(&db, &latest) { break None; }
                    revision = latest.revision();
                }
                results = &mut round => break Some(results),
            }
        };
        let Some(results) = results else {
            // A newer configuration makes this round moot: start over with it, soon.
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep_until(started + ROUND_RESTART_MIN) => continue,
            }
        };
        report_tx.send_modify(|report| {
            report.results = results;
            report.checked_revision = Some(revision);
        });
        let next_round = tokio::time::Instant::now() + setup.interval;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                changed = config_rx.changed() => {
                    if changed.is_err() { return; }
                    let latest = config_rx.borrow_and_update().clone();
                    if !checks_the_same(&db, &latest) { break; }
                    checked_up_to(latest.revision());
                }
                () = tokio::time::sleep_until(next_round) => break,
                () = wake.notified() => break,
            }
        }
        // Rounds that follow a change keep the same pace as restarted ones.
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep_until(started + ROUND_RESTART_MIN) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigCommand;

    fn setup() -> CheckerSetup {
        CheckerSetup {
            own_ip: "10.0.0.1".parse().unwrap(),
            serial: "FGVM01TM22000001".to_owned(),
            hostname: "FGT-root".to_owned(),
            anchors: Vec::new(),
            resolver: Resolver::default(),
            interval: Duration::from_secs(60),
            cloud: None,
        }
    }

    fn db_with(values: &[(&str, &str)]) -> ConfigDb {
        let mut db = ConfigDb::new();
        db.apply(&ConfigCommand::SetEntry {
            table: FCTEMS.path.to_owned(),
            key: "ems1".to_owned(),
            values: values
                .iter()
                .map(|(field, value)| ((*field).to_owned(), (*value).to_owned()))
                .collect(),
        })
        .unwrap();
        db
    }

    #[test]
    fn a_target_reads_typed_fields_and_the_schema_defaults() {
        let db = db_with(&[("server", "ems.lab.example")]);
        let target = setup().target(&db, "ems1").unwrap();
        assert_eq!(target.port, 443);
        assert_eq!(target.timeout, Duration::from_secs(30));
        assert_eq!(target.source, setup().own_ip, "0.0.0.0 is this node's address");

        let db = db_with(&[
            ("server", "10.0.0.5"),
            ("https-port", "8013"),
            ("call-timeout", "7"),
            ("source-ip", "10.0.0.9"),
        ]);
        let target = setup().target(&db, "ems1").unwrap();
        assert_eq!((target.port, target.timeout), (8013, Duration::from_secs(7)));
        assert_eq!(target.source, "10.0.0.9".parse::<IpAddr>().unwrap());
    }

    /// Applies `command` to a copy of `db`: the next revision.
    fn next(db: &ConfigDb, command: ConfigCommand) -> Arc<ConfigDb> {
        let mut next = db.clone();
        next.apply(&command).unwrap();
        Arc::new(next)
    }

    /// Waits until the checker reports `revision` as checked.
    async fn checked(report_rx: &mut watch::Receiver<CheckerStatus>, revision: u64) {
        tokio::time::timeout(
            Duration::from_secs(10),
            report_rx.wait_for(|report| report.checked_revision == Some(revision)),
        )
        .await
        .unwrap_or_else(|_| panic!("revision {revision} was not checked"))
        .unwrap();
    }

    /// A round dials every entry; a change outside what a round reads is checked without
    /// dialing again, and a change to an entry dials again.
    #[tokio::test]
    async fn only_a_change_to_what_a_round_checks_starts_a_round() {
        let ems = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = ems.local_addr().unwrap().port().to_string();
        let dials = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = dials.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = ems.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(socket);
            }
        });
        let mut setup = setup();
        setup.own_ip = "127.0.0.1".parse().unwrap();
        let db = Arc::new(db_with(&[("server", "127.0.0.1"), ("https-port", &port)]));
        let (config_tx, config_rx) = watch::channel(db.clone());
        let (report_tx, mut report_rx) = watch::channel(CheckerStatus::default());
        let shutdown = CancellationToken::new();
        let checker = tokio::spawn(run(
            setup,
            config_rx,
            report_tx,
            Arc::new(Notify::new()),
            shutdown.clone(),
        ));
        let dialed = || dials.load(std::sync::atomic::Ordering::SeqCst);

        checked(&mut report_rx, 1).await;
        assert_eq!(dialed(), 1);

        let elsewhere = next(
            &db,
            ConfigCommand::SetEntry {
                table: crate::config::schema::SYSTEM_SETTINGS.path.to_owned(),
                key: String::new(),
                values: [("gui-endpoint-control".to_owned(), "disable".to_owned())].into(),
            },
        );
        config_tx.send_replace(elsewhere.clone());
        checked(&mut report_rx, 2).await;
        assert_eq!(dialed(), 1, "nothing a round reads changed");

        let entry = next(
            &elsewhere,
            ConfigCommand::SetEntry {
                table: FCTEMS.path.to_owned(),
                key: "ems1".to_owned(),
                values: [
                    ("server".to_owned(), "127.0.0.1".to_owned()),
                    ("https-port".to_owned(), port.clone()),
                    ("call-timeout".to_owned(), "7".to_owned()),
                ]
                .into(),
            },
        );
        config_tx.send_replace(entry);
        checked(&mut report_rx, 3).await;
        assert_eq!(dialed(), 2, "the entry changed");
        shutdown.cancel();
        checker.await.unwrap();
    }
}
