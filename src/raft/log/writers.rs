//! The threads that write the nodes' Raft logs, shared by every log on one file system.
//!
//! A log's batch is acknowledged only once a sync has put it on disk. Where many nodes run
//! in one process their logs share a file system, and one `syncfs` makes every write on
//! it durable that ended before the sync started: it writes back the file system's dirty
//! pages and flushes the disk's cache, as `fdatasync` does for one file, and reports a
//! write-back that failed anywhere on the file system. So a few threads write every log
//! of a file system. Each turn a thread takes every log with writes queued, writes each
//! one's batch through the page cache, syncs them together (`fdatasync` when it took one
//! log, `syncfs` when it took more), then tells each log's openraft, or the waiting
//! caller, how it went. A log in a turn is in no other thread's, so its batches reach the
//! disk in order, each synced before the next is written; a sync that fails fails every
//! log of its turn, which then takes no more writes.
//!
//! With a thread and an `fdatasync` per log, a 50-node fabric's write cost fifty syncs
//! and a hundred thread wake-ups; now its learners' batches, which arrive together, share
//! a few. Direct writes (`O_DIRECT`), which the logs used before, would each wait for
//! the disk in turn inside a turn, so batches go through the page cache and the sync
//! writes them back together.
//!
//! The first log on a file system starts its first thread, which stays. Another is
//! started when a log is queued and none is waiting for work, up to [`THREADS`], so a
//! voter's write that arrives while a thread syncs learners' batches is taken by
//! another; those end after [`IDLE`] with nothing to write.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use super::Writer;
use crate::raft::wal::SyncScope;

/// The most threads that write one file system's logs. Two wrote a 50-node fabric's
/// logs with less CPU than four or eight, and no slower at 3 or 10 nodes.
const THREADS: usize = 2;

/// How long a thread with nothing to write stays.
const IDLE: Duration = Duration::from_secs(10);

/// The writers of one file system's logs.
#[derive(Default)]
pub struct Writers {
    state: Mutex<State>,
    work: Condvar,
}

#[derive(Default)]
struct State {
    /// The logs with writes queued, oldest first.
    ready: VecDeque<Arc<Writer>>,
    threads: usize,
    idle: usize,
}

/// The syncs the writers of this process ran, of files and of file systems.
static SYNCS_RAN: AtomicU64 = AtomicU64::new(0);

/// How many syncs the writers of this process have run: one per turn, however many logs
/// it covered.
pub fn syncs_ran() -> u64 {
    SYNCS_RAN.load(Ordering::Relaxed)
}

/// The writers of every file system with a log open, by device number.
static FILE_SYSTEMS: LazyLock<Mutex<HashMap<u64, Weak<Writers>>>> = LazyLock::new(Mutex::default);

impl Writers {
    /// The writers of the logs on the file system with device number `device`; the
    /// first log there starts their first thread, which stays.
    pub fn of(device: u64) -> std::io::Result<Arc<Writers>> {
        let mut file_systems = FILE_SYSTEMS.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(writers) = file_systems.get(&device).and_then(Weak::upgrade) {
            return Ok(writers);
        }
        file_systems.retain(|_, writers| writers.strong_count() > 0);
        let writers = Arc::new(Writers::default());
        writers.start(&mut writers.lock())?;
        file_systems.insert(device, Arc::downgrade(&writers));
        Ok(writers)
    }

    /// Queues `log` for the next thread free, starting one if none is and there is room.
    pub(super) fn schedule(self: &Arc<Writers>, log: Arc<Writer>) {
        let mut state = self.lock();
        state.ready.push_back(log);
        self.wake_or_start(&mut state);
    }

    /// Wakes a thread waiting for work, or starts one if none is and there is room.
    fn wake_or_start(self: &Arc<Writers>, state: &mut State) {
        if state.idle > 0 {
            self.work.notify_one();
        } else if state.threads < THREADS
            && let Err(e) = self.start(state)
        {
            // The threads there are take the log once they are free.
            tracing::warn!(error = %e, "no more threads could be started to write the Raft logs");
        }
    }

    fn start(self: &Arc<Writers>, state: &mut State) -> std::io::Result<()> {
        let writers = self.clone();
        std::thread::Builder::new()
            .name("raft-log".to_owned())
            .spawn(move || writers.run())?;
        state.threads += 1;
        Ok(())
    }

    /// Writes the queued logs, turn after turn, until nothing came for [`IDLE`].
    fn run(self: Arc<Writers>) {
        let panicking = Panicking(self.clone());
        while let Some(logs) = self.next_turn() {
            turn(logs);
        }
        std::mem::forget(panicking);
    }

    /// Every log queued, once there is one; `None` when none came for [`IDLE`] and
    /// another thread stays.
    fn next_turn(&self) -> Option<Vec<Arc<Writer>>> {
        let mut state = self.lock();
        while state.ready.is_empty() {
            state.idle += 1;
            let (woken, waited) = self
                .work
                .wait_timeout(state, IDLE)
                .unwrap_or_else(PoisonError::into_inner);
            state = woken;
            state.idle -= 1;
            if waited.timed_out() && state.ready.is_empty() && state.threads > 1 {
                state.threads -= 1;
                return None;
            }
        }
        Some(state.ready.drain(..).collect())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A writer thread that a panic ends gives up its place to another. (The logs of its
/// turn wait forever: what their batches left on disk is unknown.)
struct Panicking(Arc<Writers>);

impl Drop for Panicking {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.threads -= 1;
        if let Err(e) = self.0.start(&mut state) {
            tracing::error!(error = %e, "no thread could be started to write the Raft logs");
        }
    }
}

/// Writes every log's batch, syncs them together, and tells each log how it went.
pub(super) fn turn(logs: Vec<Arc<Writer>>) {
    let batches: Vec<_> = logs.iter().map(|log| log.write()).collect();
    let unsynced: Vec<&Arc<Writer>> = logs
        .iter()
        .zip(&batches)
        .filter(|(_, batch)| batch.unsynced())
        .map(|(log, _)| log)
        .collect();
    if !unsynced.is_empty() {
        SYNCS_RAN.fetch_add(1, Ordering::Relaxed);
    }
    let synced = match unsynced.as_slice() {
        [] => Ok(()),
        [log] => log.sync(SyncScope::File),
        [first, rest @ ..] => {
            let synced = first.sync(SyncScope::FileSystem);
            for log in rest {
                log.covered(&synced);
            }
            synced
        }
    };
    for (log, batch) in logs.iter().zip(batches) {
        log.finish(batch, synced.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_share_the_writers_of_their_file_system_only() {
        // Device numbers no file system here has.
        let writers = Writers::of(u64::MAX).unwrap();
        assert!(Arc::ptr_eq(&writers, &Writers::of(u64::MAX).unwrap()));
        assert!(!Arc::ptr_eq(&writers, &Writers::of(u64::MAX - 1).unwrap()));
    }
}
