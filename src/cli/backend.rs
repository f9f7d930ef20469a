//! The seam between the CLI and the node it runs on.
//!
//! The CLI asks the node for four things through [`Backend`]: who it is, its applied
//! configuration, the time, and work only the node can do (commit a command, reach an EMS
//! or FortiCloud). Data enters the CLI through these methods and leaves it only as the
//! [`ConfigCommand`]s passed to [`Backend::commit`]. This file also holds the one rule of
//! who may change what ([`may_modify`]), which every changing command asks.

use std::future::Future;
use std::sync::Arc;

use crate::calendar::Clock;
use crate::config::schema::LOCAL_SYNC_TABLES;
use crate::config::{
    Applied, CommandError, ConfigCommand, ConfigDb, RC_INVALID_VALUE, TableSchema, fail_line,
};
use crate::connector::forticloud::CloudRecord;
use crate::connector::{CertificateOffer, EmsStatus};

/// Who this node is, as the CLI shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIdentity {
    /// The node's name in the topology (`root`, `branch1`).
    pub name: String,
    /// The FortiGate hostname, shown in the prompt (`FGT-root`).
    pub hostname: String,
    /// The FortiGate serial number (`FGVM01TM22000001`).
    pub serial: String,
    /// Whether this node is the fabric root, which owns the synced tables.
    pub is_root: bool,
}

/// A member that asked the root to join and is waiting for authorization
/// (`diagnose sys csf authorization pending-list`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingMember {
    /// The serial the member claimed.
    pub serial: String,
    /// Its node name in the topology.
    pub name: String,
    /// The address it asked from (its gRPC address, `ip:port`).
    pub addr: String,
    /// When it first asked, UNIX seconds.
    pub first_seen: i64,
    /// When it last asked, UNIX seconds.
    pub last_seen: i64,
}

/// Why a configuration change was not committed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitError {
    /// `ConfigDb::apply` refused the command; nothing changed.
    #[error(transparent)]
    Refused(CommandError),
    /// The change could not be proposed now (for example, the fabric root is not leading
    /// yet); the text says why and is printed as is.
    #[error("{0}")]
    Unavailable(String),
}

impl CommitError {
    /// The lines a FortiGate prints for this failure.
    pub fn cli_lines(&self) -> Vec<String> {
        match self {
            Self::Refused(error) => error.cli_lines(),
            Self::Unavailable(reason) => vec![reason.clone(), fail_line(RC_INVALID_VALUE)],
        }
    }
}

/// The node as the CLI sees it: identity, applied configuration, and the way to change it.
pub trait Backend: Send + Sync {
    /// This node's identity.
    fn identity(&self) -> &NodeIdentity;
    /// This node's current applied configuration.
    fn config(&self) -> Arc<ConfigDb>;
    /// Where "now" comes from (`get system status`); the CLI reads no other clock.
    fn clock(&self) -> &dyn Clock;
    /// Proposes `cmd` and resolves once it was applied or refused.
    fn commit(&self, cmd: ConfigCommand) -> impl Future<Output = Result<Applied, CommitError>> + Send;

    /// Connects to the EMS of fctems entry `entry` from this node and returns the
    /// certificate it presents, for `execute fctems verify`; the error is one printable line.
    fn fetch_certificate(&self, entry: &str)
    -> impl Future<Output = Result<CertificateOffer, String>> + Send;

    /// Checks fctems entry `entry` now, records the result as this node's status for it,
    /// and returns it (`diagnose endpoint fctems test-connectivity`).
    fn test_connectivity(&self, entry: &str) -> impl Future<Output = Result<EmsStatus, String>> + Send;

    /// What FortiCloud knows of this FortiGate: registration and contracts
    /// (`diagnose test update info`, and the EMS Cloud prerequisites).
    fn forticloud(&self) -> impl Future<Output = Result<CloudRecord, String>> + Send;

    /// The members waiting for authorization, by serial; only the fabric root has any.
    fn pending_members(&self) -> Vec<PendingMember> {
        Vec::new()
    }
}

/// The FortiOS refusal printed when a member tries to change a synced table.
pub const MODIFICATION_NOT_ALLOWED: &str =
    "Modification not allowed unless 'configuration-sync' is set to 'local'";

/// Whether this node may change `table` under its configuration `db`: the root may change
/// everything; a member the tables that are not synchronized from the root, and the EMS
/// tables too once its `system csf` says `configuration-sync local` (`docs/fortios.md`).
pub fn may_modify(identity: &NodeIdentity, table: &TableSchema, db: &ConfigDb) -> bool {
    identity.is_root
        || !table.synced
        || (db.configuration_sync_local() && LOCAL_SYNC_TABLES.contains(&table.path))
}
