//! openraft's log store over a node's [`Store`], with group commit.
//!
//! `append` keeps the entries in memory, where every reader sees them at once, and queues
//! them for the node's log writer: one thread that takes everything queued (appends, the
//! vote, truncations, purges), writes it in one redb transaction with the latest committed
//! index and syncs it once, then tells openraft which appends are on disk. A write that
//! arrives while a sync is under way waits for the next one, with every other write that
//! arrived meanwhile. Writes reach the disk in the order openraft made them, and an append
//! is reported flushed only once its transaction is on disk, so an acknowledged entry
//! survives a crash as before.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, Entry, LogId, OptionalSend, RaftLogReader, StorageIOError, Vote};
use redb::WriteTransaction;

use super::store::{KEY_COMMITTED, KEY_LAST_PURGED, KEY_VOTE, LOG, META, Store, encode};
use super::{NodeId, StorageError, TypeConfig};

/// Entries appended and not yet on disk, by index.
type Unflushed = Arc<Mutex<BTreeMap<u64, Entry<TypeConfig>>>>;

/// One change of a write transaction.
type Change = Box<dyn FnOnce(&WriteTransaction) -> Result<(), redb::Error> + Send>;

/// One write queued for the log writer.
struct Write {
    change: Change,
    done: Done,
}

/// The latest committed index openraft reported, encoded, until a transaction takes it.
type Committed = Arc<Mutex<Option<Vec<u8>>>>;

/// Whom the writer tells that a write is done.
enum Done {
    /// openraft, for an append.
    Flushed {
        ids: Vec<LogId<NodeId>>,
        callback: LogFlushed<TypeConfig>,
    },
    /// A caller waiting for its write.
    Waiting(tokio::sync::oneshot::Sender<Result<(), String>>),
}

/// openraft's log store over [`Store`]. Cloning it shares the database and the writer;
/// the writer stops once every clone is gone.
#[derive(Clone)]
pub struct LogStore {
    store: Store,
    unflushed: Unflushed,
    committed: Committed,
    queue: mpsc::Sender<Write>,
    syncs: Arc<AtomicU64>,
}

impl LogStore {
    /// The log store of `store`, and its writer thread.
    pub fn new(store: Store) -> std::io::Result<LogStore> {
        let (queue, writes) = mpsc::channel();
        let unflushed = Unflushed::default();
        let committed = Committed::default();
        let syncs = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            store: store.clone(),
            unflushed: unflushed.clone(),
            committed: committed.clone(),
            syncs: syncs.clone(),
        };
        std::thread::Builder::new()
            .name("raft-log".to_owned())
            .spawn(move || writer.run(&writes))?;
        Ok(LogStore {
            store,
            unflushed,
            committed,
            queue,
            syncs,
        })
    }

    /// Counts the transactions the writer syncs to disk, for as long as anyone asks.
    pub fn syncs(&self) -> Syncs {
        Syncs(self.syncs.clone())
    }

    /// Queues `change` and waits until the writer has committed it.
    async fn write(&self, change: Change) -> Result<(), AnyError> {
        let (done, written) = tokio::sync::oneshot::channel();
        self.queue
            .send(Write {
                change,
                done: Done::Waiting(done),
            })
            .map_err(|_| writer_gone())?;
        match written.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(AnyError::error(e)),
            Err(_) => Err(writer_gone()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Entry<TypeConfig>>> {
        self.unflushed.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How many transactions a node's log writer has synced to disk (see [`LogStore::syncs`]).
#[derive(Clone, Debug, Default)]
pub struct Syncs(Arc<AtomicU64>);

impl Syncs {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

fn writer_gone() -> AnyError {
    AnyError::error("the Raft log writer has stopped")
}

/// The thread that writes a node's log.
struct Writer {
    store: Store,
    unflushed: Unflushed,
    committed: Committed,
    syncs: Arc<AtomicU64>,
}

impl Writer {
    /// Writes until every [`LogStore`] is gone: each turn, everything queued in one
    /// transaction.
    fn run(self, writes: &mpsc::Receiver<Write>) {
        while let Ok(first) = writes.recv() {
            let batch: Vec<Write> = std::iter::once(first).chain(writes.try_iter()).collect();
            let (changes, dones): (Vec<Change>, Vec<Done>) =
                batch.into_iter().map(|write| (write.change, write.done)).unzip();
            let result = self.commit(changes);
            if result.is_ok() {
                self.syncs.fetch_add(1, Ordering::Relaxed);
            }
            self.report(dones, result.map_err(|e| e.to_string()));
        }
        // A node that stops leaves its last committed index on disk too.
        if let Err(e) = self.commit(Vec::new()) {
            tracing::warn!(error = %e, "the Raft log's committed index could not be saved");
        }
    }

    /// Writes `changes` and the latest committed index in one durable transaction. (Every
    /// commit is durable: redb rolls a commit without a sync back after a kill, and the
    /// store refuses a file whose last commit would be rolled back.)
    fn commit(&self, changes: Vec<Change>) -> Result<(), redb::Error> {
        let committed = self
            .committed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if changes.is_empty() && committed.is_none() {
            return Ok(());
        }
        self.store.write(|txn| {
            changes.into_iter().try_for_each(|change| change(txn))?;
            if let Some(bytes) = &committed {
                txn.open_table(META)?.insert(KEY_COMMITTED, bytes.as_slice())?;
            }
            Ok(())
        })
    }

    /// Tells everyone in the batch how it went; flushed entries leave the memory.
    fn report(&self, dones: Vec<Done>, result: Result<(), String>) {
        for done in dones {
            match done {
                Done::Flushed { ids, callback } => {
                    if result.is_ok() {
                        let mut unflushed = self.unflushed.lock().unwrap_or_else(PoisonError::into_inner);
                        for id in ids {
                            // A later truncation may have put another entry at this index.
                            if unflushed.get(&id.index).is_some_and(|entry| entry.log_id == id) {
                                unflushed.remove(&id.index);
                            }
                        }
                    }
                    callback.log_io_completed(result.clone().map_err(std::io::Error::other));
                }
                Done::Waiting(reply) => {
                    let _ = reply.send(result.clone());
                }
            }
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError> {
        let range = (range.start_bound().cloned(), range.end_bound().cloned());
        // The memory first: an entry the writer moves to disk meanwhile is then read from
        // the disk, never missed.
        let unflushed: Vec<Entry<TypeConfig>> = self.lock().range(range).map(|(_, e)| e.clone()).collect();
        if unflushed.first().map(|entry| Bound::Included(entry.log_id.index)) == Some(range.0)
            && unflushed
                .windows(2)
                .all(|w| w[1].log_id.index == w[0].log_id.index + 1)
        {
            return Ok(unflushed);
        }
        let mut entries: BTreeMap<u64, Entry<TypeConfig>> = self
            .store
            .entries(range)
            .map_err(|e| StorageIOError::read_logs(AnyError::new(&e)))?
            .into_iter()
            .map(|entry| (entry.log_id.index, entry))
            .collect();
        entries.extend(unflushed.into_iter().map(|entry| (entry.log_id.index, entry)));
        Ok(entries.into_values().collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let unflushed = self.lock().last_key_value().map(|(_, entry)| entry.log_id);
        let read = || -> Result<_, redb::Error> {
            let last_purged: Option<LogId<NodeId>> = self.store.read_meta(KEY_LAST_PURGED)?;
            let on_disk = self.store.last_entry()?.map(|entry| entry.log_id);
            Ok(LogState {
                last_purged_log_id: last_purged,
                last_log_id: unflushed.or(on_disk).or(last_purged),
            })
        };
        read().map_err(|e| StorageIOError::read_logs(AnyError::new(&e)).into())
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let bytes = encode(vote);
        self.write(meta_change(KEY_VOTE, bytes))
            .await
            .map_err(|e| StorageIOError::write_vote(e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.store
            .read_meta(KEY_VOTE)
            .map_err(|e| StorageIOError::read_vote(AnyError::new(&e)).into())
    }

    /// The committed index is a hint for the next start (openraft applies up to it before
    /// it hears from the leader), not a promise: losing the latest one to a crash only means
    /// the leader commits those entries again. So it costs no sync of its own: the writer's
    /// next transaction, or its last one when the node stops, carries it to disk.
    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), StorageError> {
        *self.committed.lock().unwrap_or_else(PoisonError::into_inner) = Some(encode(&committed));
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError> {
        let unsaved = self
            .committed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(bytes) = unsaved {
            return serde_json::from_slice::<Option<LogId<NodeId>>>(&bytes)
                .map_err(|e| StorageIOError::read(AnyError::new(&e)).into());
        }
        self.store
            .read_meta::<Option<LogId<NodeId>>>(KEY_COMMITTED)
            .map(Option::flatten)
            .map_err(|e| StorageIOError::read(AnyError::new(&e)).into())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        let rows: Vec<(u64, Vec<u8>)> = entries
            .iter()
            .map(|entry| (entry.log_id.index, encode(entry)))
            .collect();
        let ids = entries.iter().map(|entry| entry.log_id).collect();
        self.lock()
            .extend(entries.into_iter().map(|entry| (entry.log_id.index, entry)));
        let change: Change = Box::new(move |txn| {
            let mut table = txn.open_table(LOG)?;
            for (index, bytes) in &rows {
                table.insert(*index, bytes.as_slice())?;
            }
            Ok(())
        });
        self.queue
            .send(Write {
                change,
                done: Done::Flushed { ids, callback },
            })
            .map_err(|_| StorageIOError::write_logs(writer_gone()).into())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        self.lock().split_off(&log_id.index);
        let change: Change = Box::new(move |txn| {
            txn.open_table(LOG)?.retain_in(log_id.index.., |_, _| false)?;
            Ok(())
        });
        self.write(change)
            .await
            .map_err(|e| StorageIOError::write_logs(e).into())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        self.lock().retain(|index, _| *index > log_id.index);
        let marker = encode(&log_id);
        let change: Change = Box::new(move |txn| {
            txn.open_table(META)?.insert(KEY_LAST_PURGED, marker.as_slice())?;
            txn.open_table(LOG)?.retain_in(..=log_id.index, |_, _| false)?;
            Ok(())
        });
        self.write(change)
            .await
            .map_err(|e| StorageIOError::write_logs(e).into())
    }
}

/// A change that sets `key` of the meta table to `bytes`.
fn meta_change(key: &'static str, bytes: Vec<u8>) -> Change {
    Box::new(move |txn| {
        txn.open_table(META)?.insert(key, bytes.as_slice())?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use openraft::testing::{StoreBuilder, Suite};

    use super::*;
    use crate::raft::state_machine::StateMachine;

    /// A log store and state machine in a new directory, which lives as long as they do.
    struct InTempDir;

    impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for InTempDir {
        async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError> {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let store = Store::open(dir.path()).expect("a new store opens");
            let (machine, _configs) = StateMachine::open(store.clone(), crate::domain::Firmware::default())
                .expect("a new state machine");
            let log = LogStore::new(store).expect("the writer starts");
            Ok((dir, log, machine))
        }
    }

    /// openraft's own conformance suite for log stores and state machines: appends
    /// readable at once, truncation, purging, votes, committed index, snapshots.
    #[test]
    fn the_log_store_passes_openraft_storage_suite() {
        Suite::test_all(InTempDir).expect("every check of the suite passes");
    }
}
