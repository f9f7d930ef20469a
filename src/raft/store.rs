//! Durable Raft storage: the log, the vote, the committed index and the latest snapshot,
//! all in one redb database (`raft.redb`) in the node's data directory.
//!
//! Every append, truncation, purge and vote is one redb write transaction committed with
//! immediate durability before openraft is told it happened, so an acknowledged entry is
//! on disk. Writes run on tokio's blocking pool: an fsync never stalls the node's other
//! tasks. Values are stored as JSON, the same encoding the transport uses.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, Entry, LogId, OptionalSend, RaftLogReader, StorageIOError, Vote};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{NodeId, StorageError, TypeConfig};

/// Log entries by index.
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// Single values by name: see the `KEY_*` constants.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const KEY_VOTE: &str = "vote";
const KEY_COMMITTED: &str = "committed";
const KEY_LAST_PURGED: &str = "last_purged";
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
        "the Raft database {path} cannot be read ({source}); it is left as it is: \
         move the directory away to keep it, or start the fabric with --fresh to discard it"
    )]
    Corrupted { path: PathBuf, source: redb::Error },
}

/// The redb database shared by the log store and the state machine of one node.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
}

impl Store {
    /// Opens (or creates) the database in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Store, OpenError> {
        std::fs::create_dir_all(data_dir).map_err(|source| OpenError::CreateDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let path = data_dir.join(DATABASE_FILE);
        let db = match Database::create(&path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => return Err(OpenError::InUse { path }),
            Err(e) => {
                return Err(OpenError::Corrupted {
                    path,
                    source: e.into(),
                });
            }
        };
        let store = Store { db: Arc::new(db) };
        // Create both tables up front so readers never meet a missing table, and read the
        // stored values once so that a damaged file is reported now, not mid-election.
        store
            .write(|txn| {
                txn.open_table(LOG)?;
                txn.open_table(META)?;
                Ok(())
            })
            .and_then(|()| store.check_readable())
            .map_err(|source| OpenError::Corrupted { path, source })?;
        Ok(store)
    }

    /// A weak reference to the database: it dangles once every task that used the store
    /// has let go, which is when the file can be opened again.
    pub fn watch_closed(&self) -> std::sync::Weak<Database> {
        Arc::downgrade(&self.db)
    }

    fn check_readable(&self) -> Result<(), redb::Error> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        for row in meta.iter()? {
            let (key, value) = row?;
            if serde_json::from_slice::<serde_json::Value>(value.value()).is_err() {
                return Err(redb::Error::Corrupted(format!(
                    "meta value {:?} is not valid JSON",
                    key.value()
                )));
            }
        }
        Ok(())
    }

    fn write(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>,
    ) -> Result<(), redb::Error> {
        let txn = self.db.begin_write()?;
        f(&txn)?;
        txn.commit()?;
        Ok(())
    }

    /// Runs a write transaction on the blocking pool and waits for its commit.
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
        let txn = self.db.begin_read()?;
        let table = txn.open_table(META)?;
        let Some(value) = table.get(key)? else {
            return Ok(None);
        };
        serde_json::from_slice(value.value())
            .map(Some)
            .map_err(|e| redb::Error::Corrupted(format!("meta value {key:?}: {e}")))
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

    fn last_entry(&self) -> Result<Option<Entry<TypeConfig>>, redb::Error> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(LOG)?;
        let Some((_, value)) = table.last()? else {
            return Ok(None);
        };
        decode_entry(value.value()).map(Some)
    }

    fn entries(&self, range: (Bound<u64>, Bound<u64>)) -> Result<Vec<Entry<TypeConfig>>, redb::Error> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(LOG)?;
        table
            .range::<u64>(range)?
            .map(|row| decode_entry(row?.1.value()))
            .collect()
    }
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("Raft values always serialize to JSON")
}

fn decode_entry(bytes: &[u8]) -> Result<Entry<TypeConfig>, redb::Error> {
    serde_json::from_slice(bytes).map_err(|e| redb::Error::Corrupted(format!("log entry: {e}")))
}

fn io_error(e: redb::Error) -> AnyError {
    AnyError::new(&e)
}

/// openraft's log store over [`Store`]. Cloning it shares the database.
#[derive(Clone)]
pub struct LogStore {
    store: Store,
}

impl LogStore {
    pub fn new(store: Store) -> LogStore {
        LogStore { store }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError> {
        let range = (range.start_bound().cloned(), range.end_bound().cloned());
        self.store
            .entries(range)
            .map_err(|e| StorageIOError::read_logs(io_error(e)).into())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let read = || -> Result<_, redb::Error> {
            let last_purged: Option<LogId<NodeId>> = self.store.read_meta(KEY_LAST_PURGED)?;
            let last = self.store.last_entry()?.map(|entry| entry.log_id);
            Ok(LogState {
                last_purged_log_id: last_purged,
                last_log_id: last.or(last_purged),
            })
        };
        read().map_err(|e| StorageIOError::read_logs(io_error(e)).into())
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        self.store
            .write_meta(KEY_VOTE, vote)
            .await
            .map_err(|e| StorageIOError::write_vote(io_error(e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.store
            .read_meta(KEY_VOTE)
            .map_err(|e| StorageIOError::read_vote(io_error(e)).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), StorageError> {
        self.store
            .write_meta(KEY_COMMITTED, &committed)
            .await
            .map_err(|e| StorageIOError::write(io_error(e)).into())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError> {
        self.store
            .read_meta::<Option<LogId<NodeId>>>(KEY_COMMITTED)
            .map(Option::flatten)
            .map_err(|e| StorageIOError::read(io_error(e)).into())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let rows: Vec<(u64, Vec<u8>)> = entries
            .into_iter()
            .map(|entry| (entry.log_id.index, encode(&entry)))
            .collect();
        let result = self
            .store
            .write_blocking(move |txn| {
                let mut table = txn.open_table(LOG)?;
                for (index, bytes) in &rows {
                    table.insert(*index, bytes.as_slice())?;
                }
                Ok(())
            })
            .await;
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(StorageIOError::write_logs(io_error(e)).into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        self.store
            .write_blocking(move |txn| {
                txn.open_table(LOG)?.retain_in(log_id.index.., |_, _| false)?;
                Ok(())
            })
            .await
            .map_err(|e| StorageIOError::write_logs(io_error(e)).into())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        let marker = encode(&log_id);
        self.store
            .write_blocking(move |txn| {
                txn.open_table(META)?.insert(KEY_LAST_PURGED, marker.as_slice())?;
                txn.open_table(LOG)?.retain_in(..=log_id.index, |_, _| false)?;
                Ok(())
            })
            .await
            .map_err(|e| StorageIOError::write_logs(io_error(e)).into())
    }
}
