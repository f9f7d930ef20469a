//! A test double for [`Backend`]: a `ConfigDb` behind a mutex whose `commit` calls `apply`,
//! and a clock that always reads [`TEST_NOW`].

use std::sync::{Arc, Mutex};

use crate::calendar::{Clock, FixedClock};

use super::backend::{Backend, CommitError, NodeIdentity};
use crate::config::{Applied, ConfigCommand, ConfigDb};
use crate::connector::CertificateOffer;
use crate::connector::EmsStatus;
use crate::connector::forticloud::CloudRecord;

/// The second every test backend's clock reads: Wed Nov 25 17:30:00 2026 UTC.
pub(crate) const TEST_NOW: i64 = 1_795_627_800;

/// An in-memory node: commits apply directly, or fail with `unavailable` when it is set.
/// Its EMS is whatever the test puts in `offer` and `status`.
pub(crate) struct MemoryBackend {
    identity: NodeIdentity,
    db: Mutex<Arc<ConfigDb>>,
    clock: FixedClock,
    pub(crate) unavailable: Option<String>,
    /// The certificate `execute fctems verify` is shown; `None`: the EMS cannot be reached.
    pub(crate) offer: Option<CertificateOffer>,
    /// What `diagnose endpoint fctems test-connectivity` reports.
    pub(crate) status: Option<EmsStatus>,
    /// What FortiCloud answers; `None`: it cannot be reached.
    pub(crate) cloud: Option<CloudRecord>,
}

impl MemoryBackend {
    /// The fabric root of the golden transcripts.
    pub(crate) fn root() -> Self {
        Self::new(NodeIdentity {
            name: "root".to_owned(),
            hostname: "FGT-root".to_owned(),
            serial: "FGVM01TM22000001".to_owned(),
            is_root: true,
        })
    }

    /// The member `branch1` of the golden transcripts.
    pub(crate) fn branch1() -> Self {
        Self::new(NodeIdentity {
            name: "branch1".to_owned(),
            hostname: "FGT-branch1".to_owned(),
            serial: "FGVM01TM22000002".to_owned(),
            is_root: false,
        })
    }

    /// The node named in a transcript's `#! node:` header.
    pub(crate) fn named(name: &str) -> Option<Self> {
        match name {
            "root" => Some(Self::root()),
            "branch1" => Some(Self::branch1()),
            _ => None,
        }
    }

    fn new(identity: NodeIdentity) -> Self {
        Self {
            identity,
            db: Mutex::new(Arc::new(ConfigDb::new())),
            clock: FixedClock(TEST_NOW),
            unavailable: None,
            offer: None,
            status: None,
            cloud: None,
        }
    }

    /// Replaces the configuration, as replication from the root would.
    pub(crate) fn replace(&self, db: ConfigDb) {
        *self.db.lock().expect("test mutex") = Arc::new(db);
    }
}

impl Backend for MemoryBackend {
    fn identity(&self) -> &NodeIdentity {
        &self.identity
    }

    fn config(&self) -> Arc<ConfigDb> {
        Arc::clone(&self.db.lock().expect("test mutex"))
    }

    fn clock(&self) -> &dyn Clock {
        &self.clock
    }

    async fn commit(&self, cmd: ConfigCommand) -> Result<Applied, CommitError> {
        if let Some(reason) = &self.unavailable {
            return Err(CommitError::Unavailable(reason.clone()));
        }
        let mut guard = self.db.lock().expect("test mutex");
        let mut next = ConfigDb::clone(&guard);
        let applied = next.apply(&cmd).map_err(CommitError::Refused)?;
        *guard = Arc::new(next);
        Ok(applied)
    }

    async fn fetch_certificate(&self, entry: &str) -> Result<CertificateOffer, String> {
        self.offer
            .clone()
            .ok_or_else(|| format!("cannot connect to the EMS of {entry}: connection refused"))
    }

    async fn test_connectivity(&self, entry: &str) -> Result<EmsStatus, String> {
        self.status
            .clone()
            .ok_or_else(|| format!("no EMS status for {entry}"))
    }

    async fn forticloud(&self) -> Result<CloudRecord, String> {
        self.cloud
            .clone()
            .ok_or_else(|| "no FortiCloud in this test".to_owned())
    }
}
