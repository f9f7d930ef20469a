//! openraft's log store over the node's write-ahead log ([`super::wal`]).
//!
//! `append` keeps the entries in memory, where every reader sees them at once, and queues
//! them for the log's writer ([`writers`], threads shared by the logs on one file
//! system), which takes everything queued (appends, the vote, truncations, purges) and the
//! latest committed index, writes it as one batch and syncs it once, then tells openraft
//! which appends are on disk. (openraft 0.9 waits for
//! each append, vote, truncation and purge to be on disk before it makes the next, so a
//! batch holds one of them and the committed index; writes share a sync because the
//! root groups them into one entry, `node::proposer`.) Writes reach the disk in the order
//! openraft made them, and an append is reported flushed only once its batch is on disk,
//! so an acknowledged entry survives a crash. The newest entries stay in memory after
//! they are flushed, so replication reads them without touching the disk; older ones are
//! read back from the log's files.

pub mod writers;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, Entry, LogId, OptionalSend, RaftLogReader, StorageIOError, Vote};

use super::store::{KEY_COMMITTED, KEY_LAST_PURGED, KEY_VOTE, OpenError, Store, encode};
use super::wal::{Location, Op, State, SyncScope, Wal, Written};
use super::{NodeId, StorageError, TypeConfig};
use writers::Writers;

/// How many flushed entries stay in memory for readers: replication reads an entry just
/// after it is flushed; a follower that lags reads older ones from disk.
const FLUSHED_KEPT: usize = 32;

/// What readers see of the log: the entries in memory and where the others are on disk.
#[derive(Default)]
struct Tail {
    /// Entries appended and not yet on disk, and the newest flushed ones.
    memory: BTreeMap<u64, Entry<TypeConfig>>,
    /// Where each flushed entry is.
    disk: BTreeMap<u64, Location>,
    purged: Option<LogId<NodeId>>,
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
}

impl Tail {
    fn last_log_id(&self) -> Option<LogId<NodeId>> {
        let in_memory = self.memory.last_key_value().map(|(_, entry)| entry.log_id);
        let on_disk = self.disk.last_key_value().map(|(_, location)| location.log_id);
        in_memory.max(on_disk).or(self.purged)
    }

    /// Records where the writer put `location`'s entry, unless a truncation has dropped
    /// it meanwhile, then lets the oldest flushed entries leave the memory.
    fn flushed(&mut self, locations: Vec<Location>) {
        for location in locations {
            let index = location.log_id.index;
            if self
                .memory
                .get(&index)
                .is_some_and(|entry| entry.log_id == location.log_id)
            {
                self.disk.insert(index, location);
            }
        }
        while self.memory.len() > FLUSHED_KEPT {
            let Some((index, entry)) = self.memory.first_key_value() else {
                break;
            };
            if self
                .disk
                .get(index)
                .is_none_or(|location| location.log_id != entry.log_id)
            {
                break;
            }
            self.memory.pop_first();
        }
    }
}

type Shared = Arc<Mutex<Tail>>;

/// One write queued for the log writer.
struct Write {
    ops: Vec<Op>,
    done: Done,
}

/// The latest committed index openraft reported, until a batch takes it.
type Committed = Arc<Mutex<Option<Option<LogId<NodeId>>>>>;

/// Whom the writer tells that a write is done.
enum Done {
    /// openraft, for an append.
    Flushed(LogFlushed<TypeConfig>),
    /// A caller waiting for its write.
    Waiting(tokio::sync::oneshot::Sender<Result<(), String>>),
}

/// openraft's log store. Cloning it shares the log and the writer; the writer stops once
/// every clone is gone.
#[derive(Clone)]
pub struct LogStore {
    tail: Shared,
    committed: Committed,
    writer: Arc<Closer>,
    syncs: Arc<AtomicU64>,
}

impl LogStore {
    /// Opens the log in `store`'s directory and starts its writer. A directory whose log
    /// is still in `store`'s database, as older versions kept it, has it moved into a
    /// write-ahead log first.
    pub fn open(store: &Store) -> Result<LogStore, OpenError> {
        let data_dir = store.dir();
        let (wal, state) = match Wal::open(data_dir)? {
            Some(found) => found,
            None => {
                let corrupted = |source| OpenError::Corrupted {
                    path: store.path().to_owned(),
                    source,
                };
                let created = Wal::create(data_dir, &kept_log(store).map_err(corrupted)?)?;
                store.forget_kept_log().map_err(corrupted)?;
                created
            }
        };
        let State {
            vote,
            committed,
            purged,
            entries,
        } = state;
        let tail = Arc::new(Mutex::new(Tail {
            memory: BTreeMap::new(),
            disk: entries,
            purged,
            vote,
            committed,
        }));
        let pending = Committed::default();
        let syncs = Arc::new(AtomicU64::new(0));
        let writers = wal
            .device()
            .and_then(Writers::of)
            .map_err(|source| OpenError::LogIo {
                path: data_dir.join(super::wal::LOG_DIR),
                source,
            })?;
        let writer = Writer {
            wal: Mutex::new(Some(wal)),
            queue: Mutex::default(),
            store: Mutex::new(Some(store.clone())),
            tail: tail.clone(),
            committed: pending.clone(),
            syncs: syncs.clone(),
            writers,
        };
        Ok(LogStore {
            tail,
            committed: pending,
            writer: Arc::new(Closer(Arc::new(writer))),
            syncs,
        })
    }

    /// Counts the batches (and new segments) the writer syncs to disk, for as long as
    /// anyone asks.
    pub fn syncs(&self) -> Syncs {
        Syncs(self.syncs.clone())
    }

    /// Queues `op` and waits until the writer has synced it.
    async fn write(&self, op: Op) -> Result<(), AnyError> {
        let (done, written) = tokio::sync::oneshot::channel();
        self.writer.0.submit(Write {
            ops: vec![op],
            done: Done::Waiting(done),
        })?;
        match written.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(AnyError::error(e)),
            Err(_) => Err(writer_gone()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tail> {
        self.tail.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The log `store` kept before the write-ahead log existed, as its records: the vote,
/// the purged and committed ids, then the entries.
fn kept_log(store: &Store) -> Result<Vec<Op>, redb::Error> {
    let mut ops: Vec<Op> = store
        .read_meta::<Vote<NodeId>>(KEY_VOTE)?
        .map(Op::Vote)
        .into_iter()
        .collect();
    ops.extend(store.read_meta::<LogId<NodeId>>(KEY_LAST_PURGED)?.map(Op::Purged));
    let committed = store.read_meta::<Option<LogId<NodeId>>>(KEY_COMMITTED)?.flatten();
    ops.push(Op::Committed(committed));
    for entry in store.entries((Bound::Unbounded, Bound::Unbounded))? {
        ops.push(Op::Entry {
            log_id: entry.log_id,
            json: encode(&entry),
        });
    }
    Ok(ops)
}

/// How many syncs a node's log writer has made (see [`LogStore::syncs`]).
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

/// A node's log as the shared writers ([`writers`]) see it: the queue its
/// [`LogStore`]s fill, and the log a writer empties it into.
pub(super) struct Writer {
    /// `None` once the last write is done.
    wal: Mutex<Option<Wal>>,
    queue: Mutex<Queue>,
    tail: Shared,
    committed: Committed,
    syncs: Arc<AtomicU64>,
    /// Held until the log's last write: the data directory counts as open (and locked
    /// against a second node in it) until then, see `Store::watch_closed`.
    store: Mutex<Option<Store>>,
    writers: Arc<Writers>,
}

#[derive(Default)]
struct Queue {
    writes: Vec<Write>,
    /// Queued with the writers or in one of their turns: no one else takes it.
    scheduled: bool,
    /// Every [`LogStore`] is gone: once the queue is written, a last batch saves the
    /// committed index and the log closes.
    closing: bool,
}

/// One log's part of a writers' turn: the batch it wrote and whom to tell.
pub(super) struct Batch {
    dones: Vec<Done>,
    written: Result<Option<Written>, String>,
    last: bool,
}

impl Batch {
    /// Whether the batch waits for a sync.
    pub(super) fn unsynced(&self) -> bool {
        matches!(self.written, Ok(Some(_)))
    }
}

impl Writer {
    /// Queues `write`, and the log with the writers unless it is already.
    fn submit(self: &Arc<Writer>, write: Write) -> Result<(), AnyError> {
        let mut queue = self.lock_queue();
        if queue.closing {
            return Err(writer_gone());
        }
        queue.writes.push(write);
        self.schedule(queue);
        Ok(())
    }

    /// Every [`LogStore`] is gone: the log closes after its queue.
    fn close(self: &Arc<Writer>) {
        let mut queue = self.lock_queue();
        queue.closing = true;
        self.schedule(queue);
    }

    fn schedule(self: &Arc<Writer>, mut queue: MutexGuard<'_, Queue>) {
        if !queue.scheduled {
            queue.scheduled = true;
            drop(queue);
            self.writers.schedule(self.clone());
        }
    }

    /// Writes everything queued as one batch, without syncing it. The committed index
    /// goes first: every entry it covers was queued before it was saved, so this batch
    /// or an earlier one holds it.
    pub(super) fn write(&self) -> Batch {
        let mut ops = self.take_committed();
        let (writes, last) = {
            let mut queue = self.lock_queue();
            (std::mem::take(&mut queue.writes), queue.closing)
        };
        let mut dones = Vec::with_capacity(writes.len());
        for write in writes {
            ops.extend(write.ops);
            dones.push(write.done);
        }
        let written = match self.lock_wal().as_mut() {
            _ if ops.is_empty() => Ok(None),
            Some(wal) => wal.write_unsynced(&ops).map(Some).map_err(|e| e.to_string()),
            None => Err(writer_gone().to_string()),
        };
        Batch { dones, written, last }
    }

    /// Syncs the batch [`Writer::write`] wrote, `how`.
    pub(super) fn sync(&self, how: SyncScope) -> Result<(), String> {
        match self.lock_wal().as_mut() {
            Some(wal) => wal.sync(how).map_err(|e| e.to_string()),
            None => Err(writer_gone().to_string()),
        }
    }

    /// The batch [`Writer::write`] wrote was covered by another log's sync of the file
    /// system, which ended `synced`.
    pub(super) fn covered(&self, synced: &Result<(), String>) {
        if let Some(wal) = self.lock_wal().as_mut() {
            wal.covered(synced);
        }
    }

    /// Ends `batch` once its sync ended `synced`: shows readers where its entries went,
    /// tells everyone in it, and queues the log again if more came meanwhile.
    pub(super) fn finish(self: &Arc<Writer>, batch: Batch, synced: Result<(), String>) {
        let Batch { dones, written, last } = batch;
        let result = written.and_then(|written| {
            if let Some(written) = written {
                synced?;
                self.syncs.fetch_add(written.syncs, Ordering::Relaxed);
                self.tail
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .flushed(written.locations);
            }
            Ok(())
        });
        if last && let Err(e) = &result {
            tracing::warn!(error = %e, "the Raft log's committed index could not be saved");
        }
        for done in dones {
            match done {
                Done::Flushed(callback) => {
                    callback.log_io_completed(result.clone().map_err(std::io::Error::other));
                }
                Done::Waiting(reply) => {
                    let _ = reply.send(result.clone());
                }
            }
        }
        if last {
            // The files first, then the directory's lock.
            drop(self.lock_wal().take());
            drop(self.store.lock().unwrap_or_else(PoisonError::into_inner).take());
            return;
        }
        let mut queue = self.lock_queue();
        if queue.writes.is_empty() && !queue.closing {
            queue.scheduled = false;
        } else {
            drop(queue);
            self.writers.schedule(self.clone());
        }
    }

    /// The committed index openraft saved since the last batch, as a record.
    fn take_committed(&self) -> Vec<Op> {
        let committed = self
            .committed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        committed.map(Op::Committed).into_iter().collect()
    }

    fn lock_queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_wal(&self) -> MutexGuard<'_, Option<Wal>> {
        self.wal.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Closes the log once the last [`LogStore`] holding it is gone.
struct Closer(Arc<Writer>);

impl Drop for Closer {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError> {
        let range = (range.start_bound().cloned(), range.end_bound().cloned());
        let mut found: BTreeMap<u64, Result<Entry<TypeConfig>, Location>> = BTreeMap::new();
        {
            let tail = self.lock();
            found.extend(
                tail.disk
                    .range(range)
                    .map(|(index, location)| (*index, Err(location.clone()))),
            );
            found.extend(
                tail.memory
                    .range(range)
                    .map(|(index, entry)| (*index, Ok(entry.clone()))),
            );
        }
        found
            .into_values()
            .map(|entry| entry.or_else(|location| location.read()))
            .collect::<Result<_, _>>()
            .map_err(|e| StorageIOError::read_logs(AnyError::new(&e)).into())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let tail = self.lock();
        Ok(LogState {
            last_purged_log_id: tail.purged,
            last_log_id: tail.last_log_id(),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        self.write(Op::Vote(*vote))
            .await
            .map_err(|e| StorageError::from(StorageIOError::write_vote(e)))?;
        self.lock().vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        Ok(self.lock().vote)
    }

    /// The committed index is a hint for the next start (openraft applies up to it before
    /// it hears from the leader), not a promise: losing the latest one to a crash only means
    /// the leader commits those entries again. So it costs no sync of its own: the writer's
    /// next batch, or its last one when the node stops, carries it to disk.
    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), StorageError> {
        *self.committed.lock().unwrap_or_else(PoisonError::into_inner) = Some(committed);
        self.lock().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError> {
        Ok(self.lock().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        let ops = entries
            .iter()
            .map(|entry| Op::Entry {
                log_id: entry.log_id,
                json: encode(entry),
            })
            .collect();
        self.lock()
            .memory
            .extend(entries.into_iter().map(|entry| (entry.log_id.index, entry)));
        self.writer
            .0
            .submit(Write {
                ops,
                done: Done::Flushed(callback),
            })
            .map_err(|e| StorageIOError::write_logs(e).into())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        {
            let mut tail = self.lock();
            tail.memory.split_off(&log_id.index);
            tail.disk.split_off(&log_id.index);
        }
        self.write(Op::Truncate(log_id.index))
            .await
            .map_err(|e| StorageIOError::write_logs(e).into())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        {
            let mut tail = self.lock();
            tail.memory.retain(|index, _| *index > log_id.index);
            tail.disk.retain(|index, _| *index > log_id.index);
            tail.purged = Some(log_id);
        }
        self.write(Op::Purged(log_id))
            .await
            .map_err(|e| StorageIOError::write_logs(e).into())
    }
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
            let log = LogStore::open(&store).expect("the log opens");
            Ok((dir, log, machine))
        }
    }

    /// A directory from before the write-ahead log: its log moves there, and the database
    /// keeps only the snapshot.
    #[tokio::test]
    async fn a_log_kept_in_the_database_moves_to_the_write_ahead_log() {
        use super::super::store::{LOG, META};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let entry = |index| Entry::<TypeConfig> {
            log_id: LogId::new(openraft::CommittedLeaderId::new(1, 1), index),
            payload: openraft::EntryPayload::Blank,
        };
        let vote = Vote::new(4, 1);
        store
            .write(move |txn| {
                let mut log = txn.open_table(LOG)?;
                for index in 0..3 {
                    log.insert(index, encode(&entry(index)).as_slice())?;
                }
                txn.open_table(META)?.insert(KEY_VOTE, encode(&vote).as_slice())?;
                Ok(())
            })
            .unwrap();
        let mut log = LogStore::open(&store).expect("the log moves");
        assert_eq!(log.read_vote().await.unwrap(), Some(vote));
        assert_eq!(
            log.get_log_state().await.unwrap().last_log_id,
            Some(entry(2).log_id)
        );
        assert_eq!(log.try_get_log_entries(0..3).await.unwrap().len(), 3);
        assert!(
            kept_log(&store)
                .unwrap()
                .iter()
                .all(|op| matches!(op, Op::Committed(None)))
        );
        drop(log);
        let mut log = LogStore::open(&store).expect("the moved log opens");
        assert_eq!(log.try_get_log_entries(1..).await.unwrap().len(), 2);
    }

    /// A node that stops saves its committed index, and its directory counts as closed
    /// only after that: a node restarted at once reads it, and never writes beside it.
    #[tokio::test]
    async fn the_log_is_written_out_when_the_store_closes() {
        let dir = tempfile::tempdir().unwrap();
        let committed = Some(LogId::new(openraft::CommittedLeaderId::new(2, 1), 7));
        let store = Store::open(dir.path()).unwrap();
        let mut log = LogStore::open(&store).unwrap();
        // A batch that keeps the writer busy for a while (about 2 MiB and a new segment).
        let ops = (0..30_000)
            .map(|index| Op::Entry {
                log_id: LogId::new(openraft::CommittedLeaderId::new(2, 1), index),
                json: encode(&Entry::<TypeConfig> {
                    log_id: LogId::new(openraft::CommittedLeaderId::new(2, 1), index),
                    payload: openraft::EntryPayload::Blank,
                }),
            })
            .collect();
        let (done, _written) = tokio::sync::oneshot::channel();
        log.writer
            .0
            .submit(Write {
                ops,
                done: Done::Waiting(done),
            })
            .unwrap();
        log.save_committed(committed).await.unwrap();
        let closed = store.watch_closed();
        drop((log, store));
        closed.wait().await;
        let (_, state) = Wal::open(dir.path()).unwrap().expect("the log");
        assert_eq!((state.entries.len(), state.committed), (30_000, committed));
    }

    /// Logs written in one turn share one sync of their file system: each hears that its
    /// batch is on disk, takes the next batch, and has them all, read back after the log
    /// closes.
    #[tokio::test]
    async fn logs_in_one_turn_share_a_sync_and_each_batch_is_on_disk() {
        let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let stores: Vec<_> = dirs.iter().map(|dir| Store::open(dir.path()).unwrap()).collect();
        let logs: Vec<_> = stores
            .iter()
            .map(|store| LogStore::open(store).unwrap())
            .collect();
        let writers: Vec<Arc<Writer>> = logs.iter().map(|log| log.writer.0.clone()).collect();
        let vote = |turn: u64, n: usize| Vote::new(turn * 10 + n as u64, 1);
        for turn in 1..=2 {
            let mut answers = Vec::new();
            for (n, writer) in writers.iter().enumerate() {
                let (done, answer) = tokio::sync::oneshot::channel();
                let mut queue = writer.lock_queue();
                // Queued by hand, so no writer thread takes it before the turn below does.
                queue.scheduled = true;
                queue.writes.push(Write {
                    ops: vec![Op::Vote(vote(turn, n))],
                    done: Done::Waiting(done),
                });
                answers.push(answer);
            }
            writers::turn(writers.clone());
            for answer in answers {
                assert_eq!(answer.await.unwrap(), Ok(()));
            }
            assert!(writers.iter().all(|writer| !writer.lock_queue().scheduled));
        }
        drop((writers, logs));
        for (n, (dir, store)) in dirs.iter().zip(stores).enumerate() {
            let closed = store.watch_closed();
            drop(store);
            closed.wait().await;
            let (_, state) = Wal::open(dir.path()).unwrap().expect("the log");
            assert_eq!(state.vote, Some(vote(2, n)));
        }
    }

    /// openraft's own conformance suite for log stores and state machines: appends
    /// readable at once, truncation, purging, votes, committed index, snapshots.
    #[test]
    fn the_log_store_passes_openraft_storage_suite() {
        Suite::test_all(InTempDir).expect("every check of the suite passes");
    }
}
