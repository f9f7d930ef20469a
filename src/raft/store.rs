//! Durable Raft storage beside the log: the latest snapshot, in a redb database
//! (`raft.redb`) in the node's data directory. The log, the vote and the committed index
//! are in the write-ahead log next to it ([`super::wal`]); versions before it kept them
//! in this database too, and the log store moves them out when it first opens such a
//! directory (`log::kept_log`).
//!
//! The snapshot is written on tokio's blocking pool, durably. Values are stored as JSON,
//! the same encoding the transport uses.
//!
//! A damaged file is reported when the store opens, with its path and what is wrong, and
//! never reset (`docs/architecture.md`, "Storage"): redb checks every page, the store
//! decodes every value and checks that the log is one run of indices. A last commit that
//! does not verify is refused rather than rolled back. Every read is guarded: a panic
//! inside redb is an error, not the end of the process.

use std::fmt::Debug;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::{Entry, LogId, Vote};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{NodeId, TypeConfig};

/// Log entries by index (only in directories older versions wrote).
pub(super) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// Single values by name: see the `KEY_*` constants.
pub(super) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

pub(super) const KEY_VOTE: &str = "vote";
pub(super) const KEY_COMMITTED: &str = "committed";
pub(super) const KEY_LAST_PURGED: &str = "last_purged";
/// The latest snapshot, meta and data together (see `state_machine::StoredSnapshot`).
pub(crate) const KEY_SNAPSHOT: &str = "snapshot";

/// The file name of the database inside a node's data directory.
pub const DATABASE_FILE: &str = "raft.redb";

/// Why a node's data directory could not be opened. Never answered by resetting it.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create the data directory {path}: {source}")]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("the Raft database {path} is already open in another process")]
    InUse { path: PathBuf },
    #[error(
        "the Raft database {path} is damaged: {source}; the node does not start, and the file is left as it is"
    )]
    Corrupted { path: PathBuf, source: redb::Error },
    #[error(
        "the Raft log {path} is damaged: {what}; the node does not start, and the files are left as they are"
    )]
    LogDamaged { path: PathBuf, what: String },
    #[error("cannot read or write the Raft log {path}: {source}")]
    LogIo { path: PathBuf, source: std::io::Error },
}

/// The redb database shared by the log store and the state machine of one node.
#[derive(Clone)]
pub struct Store {
    db: Arc<OpenDatabase>,
    path: PathBuf,
}

/// The open file, shared by every clone of a [`Store`].
struct OpenDatabase {
    db: Database,
    /// Dropped after `db` (fields drop in the order they are declared), so a [`Closed`]
    /// hears of the close only once redb has closed the file and released its lock.
    _closing: tokio::sync::watch::Sender<()>,
}

impl std::ops::Deref for OpenDatabase {
    type Target = Database;

    fn deref(&self) -> &Database {
        &self.db
    }
}

/// Tells when every clone of a [`Store`] is gone and its file closed, so that it can be
/// opened again.
pub struct Closed(tokio::sync::watch::Receiver<()>);

impl Closed {
    /// Waits until the file is closed.
    pub async fn wait(&self) {
        let mut closing = self.0.clone();
        while closing.changed().await.is_ok() {}
    }
}

impl Store {
    /// Opens (or creates) the database in `data_dir`, and checks all of it: every page's
    /// checksum (redb's integrity check) and every stored value, so that a damaged file is
    /// reported now, with its path, and not by a panic mid-election.
    pub fn open(data_dir: &Path) -> Result<Store, OpenError> {
        std::fs::create_dir_all(data_dir).map_err(|source| OpenError::CreateDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let path = data_dir.join(DATABASE_FILE);
        let corrupted = |source: redb::Error| OpenError::Corrupted {
            path: path.clone(),
            source,
        };
        let db = match open_database(&path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => return Err(OpenError::InUse { path }),
            Err(e) => return Err(corrupted(describe_open_error(e))),
        };
        let store = Store {
            db: Arc::new(OpenDatabase {
                db,
                _closing: tokio::sync::watch::channel(()).0,
            }),
            path: path.clone(),
        };
        // Create both tables up front so readers never meet a missing table.
        store
            .write(|txn| {
                txn.open_table(LOG)?;
                txn.open_table(META)?;
                Ok(())
            })
            .and_then(|()| store.check_values())
            .map_err(corrupted)?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The node's data directory.
    pub fn dir(&self) -> &Path {
        self.path
            .parent()
            .expect("the database is inside the data directory")
    }

    /// Drops the log kept in this database, once the write-ahead log holds it.
    pub(super) fn forget_kept_log(&self) -> Result<(), redb::Error> {
        self.write(|txn| {
            txn.open_table(LOG)?.retain(|_, _| false)?;
            let mut meta = txn.open_table(META)?;
            for key in [KEY_VOTE, KEY_LAST_PURGED, KEY_COMMITTED] {
                meta.remove(key)?;
            }
            Ok(())
        })
    }

    /// Tells when every task that used the store has let go of it and the file is closed,
    /// which is when it can be opened again.
    pub fn watch_closed(&self) -> Closed {
        Closed(self.db._closing.subscribe())
    }

    /// Decodes every stored value as what it should be, and checks that the log is one
    /// run of indices after the purged ones, each entry under its own index. (The snapshot's
    /// contents are the state machine's to check: `StateMachine::open`.)
    fn check_values(&self) -> Result<(), redb::Error> {
        guarded("checking the stored values", || {
            self.read_meta::<Vote<NodeId>>(KEY_VOTE)?;
            self.read_meta::<Option<LogId<NodeId>>>(KEY_COMMITTED)?;
            let purged = self.read_meta::<LogId<NodeId>>(KEY_LAST_PURGED)?;
            self.read_meta::<serde_json::Value>(KEY_SNAPSHOT)?;
            let txn = self.db.begin_read()?;
            let log = txn.open_table(LOG)?;
            let mut expected = None;
            for row in log.iter()? {
                let (key, value) = row?;
                let index = key.value();
                let entry = decode_entry(value.value())
                    .map_err(|e| redb::Error::Corrupted(format!("log entry {index}: {e}")))?;
                if entry.log_id.index != index {
                    return Err(corrupt(format!(
                        "log entry {index} holds entry {}",
                        entry.log_id.index
                    )));
                }
                match (expected, purged) {
                    (Some(next), _) if index != next => {
                        return Err(corrupt(format!(
                            "log entries {next} to {} are missing",
                            index - 1
                        )));
                    }
                    (None, Some(purged)) if index <= purged.index => {
                        return Err(corrupt(format!(
                            "log entry {index} is kept although entries up to {} were purged",
                            purged.index
                        )));
                    }
                    _ => {}
                }
                expected = Some(index + 1);
            }
            Ok(())
        })
    }

    /// Runs a write transaction that is on disk when this returns.
    pub(super) fn write(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>,
    ) -> Result<(), redb::Error> {
        guarded("writing", || {
            let txn = self.db.begin_write()?;
            f(&txn)?;
            txn.commit()?;
            Ok(())
        })
    }

    /// Runs a durable write transaction on the blocking pool and waits for its commit.
    async fn write_blocking(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error> + Send + 'static,
    ) -> Result<(), redb::Error> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.write(f))
            .await
            .unwrap_or_else(|join| Err(redb::Error::Corrupted(format!("storage task failed: {join}"))))
    }

    pub(crate) fn read_meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, redb::Error> {
        guarded("reading", || {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(META)?;
            let Some(value) = table.get(key)? else {
                return Ok(None);
            };
            serde_json::from_slice(value.value())
                .map(Some)
                .map_err(|e| corrupt(format!("the stored {key} is not what this version writes: {e}")))
        })
    }

    pub(crate) async fn write_meta<T: Serialize>(
        &self,
        key: &'static str,
        value: &T,
    ) -> Result<(), redb::Error> {
        let bytes = encode(value);
        self.write_blocking(move |txn| {
            txn.open_table(META)?.insert(key, bytes.as_slice())?;
            Ok(())
        })
        .await
    }

    pub(super) fn entries(
        &self,
        range: (Bound<u64>, Bound<u64>),
    ) -> Result<Vec<Entry<TypeConfig>>, redb::Error> {
        guarded("reading the log", || {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(LOG)?;
            table
                .range::<u64>(range)?
                .map(|row| decode_entry(row?.1.value()))
                .collect()
        })
    }
}

pub(super) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("Raft values always serialize to JSON")
}

fn decode_entry(bytes: &[u8]) -> Result<Entry<TypeConfig>, redb::Error> {
    serde_json::from_slice(bytes)
        .map_err(|e| corrupt(format!("a log entry is not what this version writes: {e}")))
}

fn corrupt(what: String) -> redb::Error {
    redb::Error::Corrupted(what)
}

/// Opens the database file, or creates it when there is none. An existing file is checked
/// page by page (redb's integrity check on open) and never re-initialized: an empty file,
/// which redb would take for a new database, is a truncated one.
///
/// A last commit that does not verify is never rolled back: redb would fall back to the
/// commit before it, and lose what that commit acknowledged (a vote, an entry), so the
/// repair is aborted at that step and the file reported. A process that is killed leaves
/// a last commit that verifies (redb writes the commit's header after its pages, and the
/// kernel keeps every write a killed process made), so only a change made outside
/// fabricsim, or a machine that lost power mid-commit, meets this. Two-phase commits
/// would tell those two apart, at the cost of a second fsync per write (half the
/// throughput in `fabricsim bench`); for a simulator, refusing after a power loss is the
/// better trade.
fn open_database(path: &Path) -> Result<Database, redb::DatabaseError> {
    let mut builder = redb::Builder::new();
    builder
        .set_check_integrity_on_open(true)
        .set_repair_callback(|session| {
            if session.progress() > 0.0 && session.progress() < ROLLBACK_PROGRESS_END {
                session.abort();
            }
        });
    match std::fs::metadata(path) {
        Ok(meta) if meta.len() == 0 => Err(redb::DatabaseError::Storage(redb::StorageError::Corrupted(
            "the file is empty (truncated)".to_owned(),
        ))),
        Ok(_) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| builder.open(path)))
            .unwrap_or_else(|panic| {
                Err(redb::DatabaseError::Storage(redb::StorageError::Corrupted(
                    format!("redb failed reading it ({})", panic_text(&panic)),
                )))
            }),
        Err(_) => builder.create(path),
    }
}

/// redb's repair reports a progress of 0.3 when it is about to roll back the last commit
/// (`Database::do_repair`, redb 4.6) and 0.6 once past that step.
const ROLLBACK_PROGRESS_END: f64 = 0.5;

/// What went wrong opening the file, in words for the user.
fn describe_open_error(error: redb::DatabaseError) -> redb::Error {
    match error {
        redb::DatabaseError::RepairAborted => corrupt(
            "its last commit does not verify, so it was changed outside fabricsim or the \
             machine lost power mid-commit (opening it would roll back to the commit before \
             and lose what that commit acknowledged)"
                .to_owned(),
        ),
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(what))
            if what.starts_with("Primary is corrupted") =>
        {
            corrupt(format!(
                "a page of its last commit does not match its checksum, so it was changed \
                 outside fabricsim (redb: {what})"
            ))
        }
        other => other.into(),
    }
}

/// Runs a redb call, turning a panic inside redb (which it may raise on a page that
/// does not decode) into an error naming `what` the store was doing.
fn guarded<T>(what: &str, call: impl FnOnce() -> Result<T, redb::Error>) -> Result<T, redb::Error> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(call))
        .unwrap_or_else(|panic| Err(corrupt(format!("redb failed {what} ({})", panic_text(&panic)))))
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "a panic".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store in a new directory with `rows` written into its log and `meta` values.
    fn damaged(rows: &[(u64, &[u8])], meta: &[(&'static str, &[u8])]) -> (tempfile::TempDir, OpenError) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).expect("a new store opens");
        let rows: Vec<(u64, Vec<u8>)> = rows.iter().map(|(i, v)| (*i, v.to_vec())).collect();
        let meta: Vec<(&str, Vec<u8>)> = meta.iter().map(|(k, v)| (*k, v.to_vec())).collect();
        store
            .write(move |txn| {
                let mut log = txn.open_table(LOG)?;
                for (index, bytes) in &rows {
                    log.insert(*index, bytes.as_slice())?;
                }
                let mut table = txn.open_table(META)?;
                for (key, bytes) in &meta {
                    table.insert(*key, bytes.as_slice())?;
                }
                Ok(())
            })
            .unwrap();
        drop(store);
        let error = Store::open(dir.path())
            .err()
            .expect("the damaged store is refused");
        (dir, error)
    }

    fn blank(index: u64) -> Vec<u8> {
        encode(&Entry::<TypeConfig> {
            log_id: LogId::new(openraft::CommittedLeaderId::new(1, 1), index),
            payload: openraft::EntryPayload::Blank,
        })
    }

    #[test]
    fn a_log_entry_that_does_not_decode_is_reported_with_its_index() {
        let (dir, error) = damaged(&[(1, &blank(1)), (2, b"{\"log_id\": 3")], &[]);
        let text = error.to_string();
        assert!(text.contains("log entry 2"), "{text}");
        assert!(
            text.contains(&dir.path().join(DATABASE_FILE).display().to_string()),
            "{text}"
        );
    }

    #[test]
    fn a_gap_or_a_misplaced_entry_in_the_log_is_reported() {
        let (_dir, error) = damaged(&[(1, &blank(1)), (3, &blank(3))], &[]);
        assert!(
            error.to_string().contains("log entries 2 to 2 are missing"),
            "{error}"
        );
        let (_dir, error) = damaged(&[(4, &blank(5))], &[]);
        assert!(error.to_string().contains("log entry 4 holds entry 5"), "{error}");
        let purged = encode(&LogId::new(openraft::CommittedLeaderId::new(1, 1), 6));
        let (_dir, error) = damaged(&[(4, &blank(4))], &[(KEY_LAST_PURGED, &purged)]);
        assert!(
            error.to_string().contains("entries up to 6 were purged"),
            "{error}"
        );
    }

    #[test]
    fn a_vote_or_committed_index_that_does_not_decode_is_reported() {
        let (_dir, error) = damaged(&[], &[(KEY_VOTE, b"{\"term\": \"x\"}")]);
        assert!(error.to_string().contains("the stored vote"), "{error}");
        let (_dir, error) = damaged(&[], &[(KEY_COMMITTED, b"[")]);
        assert!(error.to_string().contains("the stored committed"), "{error}");
    }

    #[test]
    fn a_panic_inside_a_read_becomes_an_error() {
        let result: Result<(), redb::Error> =
            guarded("reading the log", || panic!("Invalid page type byte 7"));
        let text = result.unwrap_err().to_string();
        assert!(
            text.contains("redb failed reading the log (Invalid page type byte 7)"),
            "{text}"
        );
    }

    #[test]
    fn an_empty_file_is_a_truncated_database_not_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DATABASE_FILE), b"").unwrap();
        let error = Store::open(dir.path()).err().expect("refused");
        assert!(error.to_string().contains("empty (truncated)"), "{error}");
        assert_eq!(
            std::fs::metadata(dir.path().join(DATABASE_FILE)).unwrap().len(),
            0
        );
    }

    #[test]
    fn a_store_written_and_closed_opens_again_with_its_entries() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let rows = vec![(1, blank(1)), (2, blank(2))];
        store
            .write(move |txn| {
                let mut log = txn.open_table(LOG)?;
                for (index, bytes) in &rows {
                    log.insert(*index, bytes.as_slice())?;
                }
                Ok(())
            })
            .unwrap();
        drop(store);
        let store = Store::open(dir.path()).expect("a sound store opens");
        let entries = store.entries((Bound::Unbounded, Bound::Unbounded)).unwrap();
        assert_eq!(entries.len(), 2);
    }

    /// A node restarted in the same process opens its file as soon as the old one's
    /// tasks are told it is closed; the last clone going on another thread is the race.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_closed_store_opens_again_at_once() {
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..20 {
            let store = Store::open(dir.path()).unwrap();
            let closed = store.watch_closed();
            let last = store.clone();
            drop(store);
            let holder = std::thread::spawn(move || drop(last));
            closed.wait().await;
            Store::open(dir.path()).expect("the file was closed when the store said so");
            holder.join().unwrap();
        }
    }
}
