//! The Raft log on disk: an append-only write-ahead log of preallocated segments, as
//! etcd's WAL is, in the node's `raft-log/` directory.
//!
//! Everything the log store must keep goes in as records, one after another: entries,
//! truncations, purges, the vote and the committed index. A batch of records is one
//! frame, written with one positioned write and then synced: with `fdatasync`, or with
//! `syncfs` when the logs on one file system share a sync ([`super::log::writers`]). A
//! segment is allocated whole when it is created (`posix_fallocate`), so a sync never
//! changes the file's size, which is what makes it cheap. Once the active segment is half
//! full, the next one is made ahead on a thread of its own, as etcd's WAL does: allocated
//! and synced under a staging name, renamed into place and the directory synced. A batch
//! that does not fit then moves on to it without a sync of its own (every node of a
//! fabric fills its segment at about the same entry, and making fifty at once, one after
//! another on the log writers, stalled every write for tens of milliseconds). A segment's
//! first batch starts with the state so far (vote, committed, purged), and the segments
//! before it go once that batch is on disk and every entry in them is purged.
//!
//! A frame and a record are each a length (4 bytes), the CRC-32 of the body (4 bytes) and
//! the body. A frame's body is a kind byte and its records; a record's body is a kind
//! byte, then for an entry its index (8 bytes) and its JSON, for a truncation the first
//! index dropped, and for the rest their JSON. Replaying the records in order gives the
//! log back; segments after the newest one used, made ahead, hold no frame. A frame that
//! does not check out at the end of the newest segment used, with no sound frame after
//! it and not the log's very first (which is synced before the log is used), is a batch
//! a crash cut short (its pages may reach the disk in any order until its sync returns,
//! and the next batch waits for that sync): it was never acknowledged, so it is dropped
//! and zeroed. Anywhere else it is damage, reported with the file and offset, and
//! nothing is changed. After a failed write or sync the log takes no more writes: what
//! the failed batch left in the file is unknown.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::{Entry, LogId, Vote};

use super::store::OpenError;
use super::{NodeId, TypeConfig};

mod replay;

use replay::replay;

/// The log's directory inside a node's data directory.
pub const LOG_DIR: &str = "raft-log";

/// The first bytes of every segment.
const MAGIC: &[u8; 8] = b"fsimwal1";

/// The size of a new segment, unless one batch needs more.
const SEGMENT_BYTES: u64 = 1 << 20;

/// A record's length and CRC.
const HEADER: usize = 8;

/// What comes before an entry's JSON in its record's body: the kind and the index.
const ENTRY_PREFIX: usize = 9;

const ENTRY: u8 = 1;
const TRUNCATE: u8 = 2;
const PURGED: u8 = 3;
const VOTE: u8 = 4;
const COMMITTED: u8 = 5;
/// A frame: the records of one batch.
const BATCH: u8 = 6;

/// One record to write.
#[derive(Clone, Debug)]
pub enum Op {
    /// An entry, as JSON.
    Entry {
        log_id: LogId<NodeId>,
        json: Vec<u8>,
    },
    /// Drops the entries from this index on.
    Truncate(u64),
    /// Drops the entries up to this one.
    Purged(LogId<NodeId>),
    Vote(Vote<NodeId>),
    Committed(Option<LogId<NodeId>>),
}

impl Op {
    /// The record: length, CRC, body.
    fn encode(&self, out: &mut Vec<u8>) {
        let body: Vec<u8> = match self {
            Op::Entry { log_id, json } => [&[ENTRY][..], &log_id.index.to_le_bytes(), json].concat(),
            Op::Truncate(index) => [&[TRUNCATE][..], &index.to_le_bytes()].concat(),
            Op::Purged(id) => [vec![PURGED], json(id)].concat(),
            Op::Vote(vote) => [vec![VOTE], json(vote)].concat(),
            Op::Committed(id) => [vec![COMMITTED], json(id)].concat(),
        };
        let len = u32::try_from(body.len()).expect("a Raft log record is under 4 GiB");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        out.extend_from_slice(&body);
    }
}

/// Where an entry's JSON is in a frame: its log id, offset and length.
type Placed = (LogId<NodeId>, usize, usize);

/// The frame of a batch of `ops`, and where each entry's JSON is in it.
fn frame(ops: &[Op]) -> (Vec<u8>, Vec<Placed>) {
    let mut body = vec![BATCH];
    let mut entries = Vec::new();
    for op in ops {
        if let Op::Entry { log_id, json } = op {
            // The JSON starts after the frame's header, the record's header, kind and index.
            entries.push((*log_id, HEADER + body.len() + HEADER + ENTRY_PREFIX, json.len()));
        }
        op.encode(&mut body);
    }
    let len = u32::try_from(body.len()).expect("a batch of the Raft log is under 4 GiB");
    let mut bytes = Vec::with_capacity(HEADER + body.len());
    bytes.extend_from_slice(&len.to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    bytes.extend_from_slice(&body);
    (bytes, entries)
}

fn json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("Raft values always serialize to JSON")
}

/// Where a flushed entry's JSON is.
#[derive(Clone, Debug)]
pub struct Location {
    pub log_id: LogId<NodeId>,
    file: Arc<File>,
    offset: u64,
    len: usize,
}

impl Location {
    /// Reads the entry back.
    pub fn read(&self) -> std::io::Result<Entry<TypeConfig>> {
        let mut json = vec![0; self.len];
        self.file.read_exact_at(&mut json, self.offset)?;
        serde_json::from_slice(&json).map_err(std::io::Error::other)
    }
}

/// What the log holds, as its records replay.
#[derive(Clone, Debug, Default)]
pub struct State {
    pub vote: Option<Vote<NodeId>>,
    pub committed: Option<LogId<NodeId>>,
    pub purged: Option<LogId<NodeId>>,
    /// The entries after `purged`, one run of indices.
    pub entries: BTreeMap<u64, Location>,
}

/// One segment file.
struct Segment {
    seq: u64,
    path: PathBuf,
    file: Arc<File>,
    len: u64,
    /// The highest index of an entry written to it.
    last_index: Option<u64>,
}

/// The log's files, open for appending.
pub struct Wal {
    dir: PathBuf,
    /// Oldest first; the last one is written to.
    segments: Vec<Segment>,
    /// Where the next record goes in the last segment.
    offset: u64,
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
    purged: Option<LogId<NodeId>>,
    /// Why a write or sync failed, after which the log takes no more writes.
    failed: Option<String>,
    /// Whether the last batch waits for its sync.
    unsynced: bool,
    /// The next segment, being made ready once the active one is half full.
    next: Option<NextSegment>,
}

/// A segment made ready ahead of need, on a thread of its own: its blocks allocated, and
/// its file and name synced. Answers its length.
struct NextSegment {
    seq: u64,
    path: PathBuf,
    made: std::thread::JoinHandle<std::io::Result<u64>>,
}

/// How a batch is made durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncScope {
    /// `fdatasync` of the segment.
    File,
    /// `syncfs` of the segment's file system: every write on it that ended before the
    /// sync started is on disk once it returns, other logs' as well.
    FileSystem,
}

/// What one [`Wal::write_unsynced`] did.
pub struct Written {
    /// Where each entry of the batch went, in order.
    pub locations: Vec<Location>,
    /// How many syncs it takes: the batch's own, to come, and when it moved on to a new
    /// segment, the two that made it (ahead of time, or then).
    pub syncs: u64,
}

impl Wal {
    /// Opens the log in `data_dir`, or `None` when there is none yet. A write cut short
    /// by a crash at the end is zeroed; damage anywhere else is refused.
    pub fn open(data_dir: &Path) -> Result<Option<(Wal, State)>, OpenError> {
        let dir = data_dir.join(LOG_DIR);
        if !dir.exists() {
            return Ok(None);
        }
        let replayed = replay(&dir)?;
        let segments: Vec<Segment> = replayed.segments;
        if let Some((i, torn)) = replayed.torn {
            let cut = &segments[i];
            tracing::warn!(
                file = %cut.path.display(),
                offset = torn,
                "the Raft log ends in a write a crash cut short; it was never acknowledged and is dropped"
            );
            let zeros = vec![0; usize::try_from(cut.len - torn).expect("a segment fits in memory")];
            let io = io_error(&cut.path);
            cut.file.write_all_at(&zeros, torn).map_err(&io)?;
            cut.file.sync_data().map_err(&io)?;
        }
        let state = replayed.state;
        let wal = Wal {
            dir,
            segments,
            offset: replayed.end,
            vote: state.vote,
            committed: state.committed,
            purged: state.purged,
            failed: None,
            unsynced: false,
            next: None,
        };
        Ok(Some((wal, state)))
    }

    /// Reads the log in `data_dir`, if any, and reports damage without changing anything.
    pub fn check(data_dir: &Path) -> Result<(), OpenError> {
        let dir = data_dir.join(LOG_DIR);
        if dir.exists() {
            replay(&dir)?;
        }
        Ok(())
    }

    /// Creates the log in `data_dir` holding `ops`: written in a directory of its own,
    /// synced, then renamed into place, so a crash leaves either no log or this one.
    pub fn create(data_dir: &Path, ops: &[Op]) -> Result<(Wal, State), OpenError> {
        let dir = data_dir.join(LOG_DIR);
        let staging = data_dir.join(format!("{LOG_DIR}.new"));
        let io = io_error(&staging);
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(&io)?;
        }
        std::fs::create_dir(&staging).map_err(&io)?;
        let path = staging.join(segment_name(1));
        allocate_segment(&path, &frame(ops).0, 0).map_err(&io)?;
        sync_dir(&staging).map_err(&io)?;
        std::fs::rename(&staging, &dir).map_err(&io)?;
        sync_dir(data_dir).map_err(io_error(data_dir))?;
        Wal::open(data_dir)?.ok_or_else(|| OpenError::LogDamaged {
            path: dir,
            what: "it vanished as it was created".to_owned(),
        })
    }

    /// Writes `ops` in order as one batch and syncs it: on disk when this returns. (The
    /// log's writers sync a turn's batches together, [`super::log::writers`].)
    #[cfg(test)]
    pub fn write(&mut self, ops: &[Op]) -> std::io::Result<Written> {
        let written = self.write_unsynced(ops)?;
        self.sync(SyncScope::File)?;
        Ok(written)
    }

    /// Writes `ops` in order as one batch, which is on disk once [`Wal::sync`] returns;
    /// the next batch waits for that. After a failed write or sync every later one
    /// fails too.
    pub fn write_unsynced(&mut self, ops: &[Op]) -> std::io::Result<Written> {
        self.refuse_after_failure()?;
        debug_assert!(!self.unsynced, "a batch waits for the last one's sync");
        let written = self.write_batch(ops);
        match &written {
            Ok(_) => self.unsynced = true,
            Err(e) => self.failed = Some(e.to_string()),
        }
        written
    }

    /// Makes the last batch durable, with `how`'s sync.
    pub fn sync(&mut self, how: SyncScope) -> std::io::Result<()> {
        self.refuse_after_failure()?;
        let file = &self.active().file;
        let synced = match how {
            SyncScope::File => file.sync_data(),
            SyncScope::FileSystem => syncfs(file),
        };
        match &synced {
            Ok(()) => self.synced(),
            Err(e) => self.failed = Some(e.to_string()),
        }
        synced
    }

    /// The device number of the file system the log is on.
    pub fn device(&self) -> std::io::Result<u64> {
        Ok(std::os::unix::fs::MetadataExt::dev(
            &self.active().file.metadata()?,
        ))
    }

    /// The last batch was covered by a sync of the file system that another log ran
    /// after it was written, which ended `synced`; after a failure the log takes no
    /// more writes.
    pub fn covered(&mut self, synced: &Result<(), String>) {
        match synced {
            Ok(()) => self.synced(),
            Err(why) => {
                self.failed.get_or_insert_with(|| why.clone());
            }
        }
    }

    /// Everything written is on disk: the active segment's preamble too, so the segments
    /// before it that hold only purged entries can go.
    fn synced(&mut self) {
        self.unsynced = false;
        self.remove_purged_segments();
    }

    fn refuse_after_failure(&self) -> std::io::Result<()> {
        match &self.failed {
            Some(failed) => Err(std::io::Error::other(format!(
                "the Raft log takes no more writes after an earlier one failed: {failed}"
            ))),
            None => Ok(()),
        }
    }

    fn write_batch(&mut self, ops: &[Op]) -> std::io::Result<Written> {
        let mut syncs = 0;
        let (mut bytes, mut entries) = self.frame_here(ops);
        if self.offset + bytes.len() as u64 > self.active().len {
            // The next segment's first batch, which carries the preamble too.
            let first = frame(&self.behind_preamble(ops));
            syncs += self.rotate(first.0.len() as u64)?;
            (bytes, entries) = first;
        }
        let start = self.offset;
        let active = self.segments.last_mut().expect("an active segment");
        active.file.write_all_at(&bytes, start)?;
        syncs += 1;
        self.offset += bytes.len() as u64;
        let mut locations = Vec::with_capacity(entries.len());
        for (log_id, at, len) in entries {
            active.last_index = active.last_index.max(Some(log_id.index));
            locations.push(Location {
                log_id,
                file: active.file.clone(),
                offset: start + at as u64,
                len,
            });
        }
        for op in ops {
            match op {
                Op::Vote(vote) => self.vote = Some(*vote),
                Op::Committed(id) => self.committed = *id,
                Op::Purged(id) => self.purged = self.purged.max(Some(*id)),
                Op::Entry { .. } | Op::Truncate(_) => {}
            }
        }
        if self.next.is_none() && self.offset > self.active().len / 2 {
            self.make_next_segment();
        }
        Ok(Written { locations, syncs })
    }

    /// The frame of `ops` where the next batch goes: a segment's first batch starts with
    /// its preamble.
    fn frame_here(&self, ops: &[Op]) -> (Vec<u8>, Vec<Placed>) {
        if self.offset == MAGIC.len() as u64 {
            frame(&self.behind_preamble(ops))
        } else {
            frame(ops)
        }
    }

    /// `ops` after the records that carry the log's state but its entries (vote, purged,
    /// committed), as a segment begins: the segments before it may then go once their
    /// entries are purged.
    fn behind_preamble(&self, ops: &[Op]) -> Vec<Op> {
        let mut all: Vec<Op> = self.vote.map(Op::Vote).into_iter().collect();
        all.extend(self.purged.map(Op::Purged));
        all.push(Op::Committed(self.committed));
        all.extend_from_slice(ops);
        all
    }

    fn active(&self) -> &Segment {
        self.segments.last().expect("an active segment")
    }

    /// Moves on to the next segment, which takes a first batch of `need` bytes: the one
    /// made ready ahead if it is and has the room, else one made now. Returns the syncs
    /// that making it took (ahead or now).
    fn rotate(&mut self, need: u64) -> std::io::Result<u64> {
        let seq = self.active().seq + 1;
        let path = self.dir.join(segment_name(seq));
        let ready = self.next.take().and_then(|next| {
            debug_assert_eq!(next.seq, seq, "the segment made ahead is the next one");
            match next.made.join() {
                Ok(Ok(len)) => Some(len),
                Ok(Err(e)) => {
                    tracing::warn!(file = %next.path.display(), error = %e, "the next Raft log segment could not be made ahead; it is made now");
                    None
                }
                // The thread panicked.
                Err(_) => None,
            }
        });
        let len = match ready {
            Some(len) if MAGIC.len() as u64 + need <= len => len,
            // A segment made ahead that is too small is replaced whole.
            _ => make_segment(&self.dir, &path, need)?,
        };
        let file = File::options().read(true).write(true).open(&path)?;
        self.segments.push(Segment {
            seq,
            path,
            file: Arc::new(file),
            len,
            last_index: None,
        });
        self.offset = MAGIC.len() as u64;
        Ok(2)
    }

    /// Starts making the segment after the active one on a thread of its own, so that
    /// moving on to it costs the writes no allocation and no syncs of their own.
    fn make_next_segment(&mut self) {
        let seq = self.active().seq + 1;
        let (dir, path) = (self.dir.clone(), self.dir.join(segment_name(seq)));
        let made = std::thread::Builder::new()
            .name("raft-log-segment".to_owned())
            .spawn({
                let path = path.clone();
                move || make_segment(&dir, &path, 0)
            });
        match made {
            Ok(made) => self.next = Some(NextSegment { seq, path, made }),
            // The segment is made when it is needed.
            Err(e) => {
                tracing::warn!(error = %e, "no thread could be started to make the next Raft log segment")
            }
        }
    }

    /// Deletes the segments before the active one whose entries are all purged: a newer
    /// segment's preamble holds their state.
    fn remove_purged_segments(&mut self) {
        let purged = self.purged.map(|id| id.index);
        while self.segments.len() > 1
            && self.segments[0]
                .last_index
                .is_none_or(|last| Some(last) <= purged)
        {
            if let Err(e) = std::fs::remove_file(&self.segments[0].path) {
                // Kept, and tried again after the next purge.
                tracing::warn!(file = %self.segments[0].path.display(), error = %e, "a purged Raft log segment could not be deleted");
                return;
            }
            self.segments.remove(0);
        }
    }
}

impl Drop for Wal {
    /// Waits for the next segment being made: nothing is left writing in the directory.
    fn drop(&mut self) {
        if let Some(next) = self.next.take() {
            let _ = next.made.join();
        }
    }
}

/// Makes the empty segment `path` in `dir`, with room for `room` bytes after its magic
/// (at least [`SEGMENT_BYTES`] in all): allocated and synced under a staging name, then
/// renamed into place and the directory synced, so a segment under its own name is whole.
fn make_segment(dir: &Path, path: &Path, room: u64) -> std::io::Result<u64> {
    let staging = path.with_extension("new");
    // One a crash left half made.
    if staging.exists() {
        std::fs::remove_file(&staging)?;
    }
    let len = allocate_segment(&staging, &[], room)?;
    std::fs::rename(&staging, path)?;
    sync_dir(dir)?;
    Ok(len)
}

fn segment_name(seq: u64) -> String {
    format!("{seq:016x}.wal")
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> OpenError + '_ {
    move |source| OpenError::LogIo {
        path: path.to_owned(),
        source,
    }
}

/// Creates a segment at `path` holding `records` with room for `room` more bytes (at
/// least [`SEGMENT_BYTES`] in all), its blocks allocated, and syncs it with its size.
fn allocate_segment(path: &Path, records: &[u8], room: u64) -> std::io::Result<u64> {
    let len = SEGMENT_BYTES.max((MAGIC.len() + records.len()) as u64 + room);
    let mut file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)?;
    let size = libc::off_t::try_from(len).map_err(std::io::Error::other)?;
    // SAFETY: the file descriptor is open for writing for the whole call.
    let allocated = unsafe { libc::posix_fallocate(std::os::fd::AsRawFd::as_raw_fd(&file), 0, size) };
    if allocated != 0 {
        return Err(std::io::Error::from_raw_os_error(allocated));
    }
    file.write_all(MAGIC)?;
    file.write_all(records)?;
    file.sync_all()?;
    Ok(len)
}

/// Writes back and flushes the whole file system `file` is on.
fn syncfs(file: &File) -> std::io::Result<()> {
    // SAFETY: the file descriptor stays open for the whole call.
    if unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(file)) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;

    fn id(index: u64) -> LogId<NodeId> {
        LogId::new(CommittedLeaderId::new(1, 1), index)
    }

    fn entry(index: u64) -> Op {
        let entry = Entry::<TypeConfig> {
            log_id: id(index),
            payload: EntryPayload::Blank,
        };
        Op::Entry {
            log_id: entry.log_id,
            json: json(&entry),
        }
    }

    fn entries(range: std::ops::RangeInclusive<u64>) -> Vec<Op> {
        range.map(entry).collect()
    }

    fn indices(state: &State) -> Vec<u64> {
        state.entries.keys().copied().collect()
    }

    fn segments(dir: &Path) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir.join(LOG_DIR))
            .unwrap()
            .map(|item| item.unwrap().path())
            .collect();
        found.sort();
        found
    }

    #[test]
    fn records_replay_to_the_same_log_after_truncation_and_purge() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, state) = Wal::create(dir.path(), &entries(0..=2)).unwrap();
        assert_eq!(indices(&state), [0, 1, 2]);
        let vote = Vote::new(3, 1);
        wal.write(&[Op::Vote(vote), Op::Truncate(2)]).unwrap();
        wal.write(&[entry(2), entry(3), Op::Committed(Some(id(3))), Op::Purged(id(0))])
            .unwrap();
        drop(wal);
        let (_, state) = Wal::open(dir.path()).unwrap().expect("a log");
        assert_eq!(indices(&state), [1, 2, 3]);
        assert_eq!(state.vote, Some(vote));
        assert_eq!(state.committed, Some(id(3)));
        assert_eq!(state.purged, Some(id(0)));
        assert_eq!(state.entries[&3].read().unwrap().log_id, id(3));
    }

    /// Entries whose JSON is `size` bytes long, give or take: batches of any length.
    fn sized_entry(index: u64, size: usize) -> Op {
        let mut json = json(&Entry::<TypeConfig> {
            log_id: id(index),
            payload: EntryPayload::Blank,
        });
        // JSON allows spaces after the object.
        json.resize(json.len().max(size), b' ');
        Op::Entry {
            log_id: id(index),
            json,
        }
    }

    /// Batches that start and end anywhere in a page, span pages and roll over into a
    /// new segment all read back, before and after reopening.
    #[test]
    fn batches_of_every_length_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::create(dir.path(), &[Op::Vote(Vote::new(2, 1))]).unwrap();
        let sizes = [1, 300, 4096, 3000, 9000, 17, 70_000, 5000];
        let mut written = Vec::new();
        for index in 0..400 {
            let op = sized_entry(index, sizes[index as usize % sizes.len()]);
            wal.write(std::slice::from_ref(&op)).unwrap();
            written.push(op);
        }
        assert!(
            segments(dir.path()).len() > 1,
            "the batches fill more than a segment"
        );
        drop(wal);
        let (mut wal, state) = Wal::open(dir.path()).unwrap().expect("a log");
        let more = sized_entry(400, 100);
        wal.write(std::slice::from_ref(&more)).unwrap();
        written.push(more);
        drop(wal);
        let (_, state_after) = Wal::open(dir.path()).unwrap().expect("a log");
        assert_eq!(state.entries.len(), 400);
        for op in &written {
            let Op::Entry { log_id, json } = op else {
                unreachable!()
            };
            let location = &state_after.entries[&log_id.index];
            let mut read = vec![0; location.len];
            location.file.read_exact_at(&mut read, location.offset).unwrap();
            assert_eq!(&read, json, "entry {}", log_id.index);
        }
    }

    /// A truncation's record ends in its index's high bytes, zeros: a batch that is only a
    /// truncation ends in zeros, and the last batch of a segment still replays whole.
    #[test]
    fn a_truncation_written_last_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::create(dir.path(), &entries(0..=5)).unwrap();
        wal.write(&[Op::Truncate(3)]).unwrap();
        drop(wal);
        let (mut wal, state) = Wal::open(dir.path()).unwrap().expect("a log");
        assert_eq!(indices(&state), [0, 1, 2]);
        wal.write(&[Op::Truncate(0)]).unwrap();
        drop(wal);
        let (_, state) = Wal::open(dir.path()).unwrap().expect("a log");
        assert_eq!(indices(&state), Vec::<u64>::new());
    }

    #[test]
    fn a_full_segment_rolls_over_and_purged_segments_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::create(dir.path(), &[Op::Vote(Vote::new(2, 1))]).unwrap();
        // A segment a crash left half made is made again.
        std::fs::write(
            dir.path()
                .join(LOG_DIR)
                .join(segment_name(2))
                .with_extension("new"),
            b"half",
        )
        .unwrap();
        // About 0.6 MiB a batch: past half the segment, the next one is made ahead; the
        // second batch moves on to it.
        wal.write(&entries(0..=7999)).unwrap();
        assert!(wal.next.is_some(), "the next segment is being made");
        let written = wal.write(&entries(8000..=15999)).unwrap();
        assert_eq!(
            written.syncs, 3,
            "the next segment's file and directory, then the batch"
        );
        assert_eq!(wal.segments.len(), 2);
        let first = wal.segments[0].path.clone();
        wal.write_unsynced(&[Op::Purged(id(8000))]).unwrap();
        assert!(first.exists(), "kept until the purge is on disk");
        wal.sync(SyncScope::File).unwrap();
        assert!(!first.exists(), "the first segment held only purged entries");
        drop(wal);
        let (_, state) = Wal::open(dir.path()).unwrap().expect("a log");
        assert_eq!(
            state.vote,
            Some(Vote::new(2, 1)),
            "carried by the new segment's preamble"
        );
        assert_eq!(state.entries.len(), 7999);
        assert_eq!(state.entries[&15999].read().unwrap().log_id, id(15999));
    }

    #[test]
    fn a_write_cut_short_at_the_end_is_dropped_and_zeroed() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::create(dir.path(), &entries(0..=1)).unwrap();
        let end = wal.offset;
        let mut torn = Vec::new();
        entry(2).encode(&mut torn);
        wal.active()
            .file
            .write_all_at(&torn[..torn.len() / 2], end)
            .unwrap();
        drop(wal);
        let (mut wal, state) = Wal::open(dir.path()).unwrap().expect("a log");
        assert_eq!(indices(&state), [0, 1]);
        wal.write(&entries(2..=2)).unwrap();
        drop(wal);
        let (_, state) = Wal::open(dir.path()).unwrap().expect("a log");
        assert_eq!(indices(&state), [0, 1, 2]);
    }

    /// Until its sync returns, a batch's pages reach the disk in any order: one whose
    /// middle page is lost, with its last page written, is still a batch cut short.
    #[test]
    fn a_batch_with_a_page_lost_in_its_middle_is_dropped_as_cut_short() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::create(dir.path(), &entries(0..=1)).unwrap();
        let end = wal.offset as usize;
        let (mut torn, _) = frame(&entries(2..=400));
        assert!(torn.len() > 3 * 4096, "the batch spans several pages");
        let page_after = (end / 4096 + 1) * 4096;
        torn[page_after - end..page_after - end + 4096].fill(0);
        wal.active().file.write_all_at(&torn, end as u64).unwrap();
        drop(wal);
        let (_, state) = Wal::open(dir.path()).unwrap().expect("a log");
        assert_eq!(indices(&state), [0, 1]);
    }

    /// A log of three batches, its segment and where its second batch starts.
    fn three_batches(dir: &Path) -> (PathBuf, usize) {
        let (mut wal, _) = Wal::create(dir, &entries(0..=1)).unwrap();
        let second = wal.offset as usize;
        wal.write(&entries(2..=3)).unwrap();
        wal.write(&entries(4..=5)).unwrap();
        (segments(dir).remove(0), second)
    }

    /// Flips a bit `at` in `path`; answers the bytes as they are now.
    fn flip(path: &Path, at: usize) -> Vec<u8> {
        let mut bytes = std::fs::read(path).unwrap();
        bytes[at] ^= 0x40;
        std::fs::write(path, &bytes).unwrap();
        bytes
    }

    #[test]
    fn damage_before_sound_records_is_reported_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (path, second) = three_batches(dir.path());
        let bytes = flip(&path, second + HEADER + 20);
        let error = Wal::open(dir.path()).err().expect("refused").to_string();
        assert!(error.contains(&path.display().to_string()), "{error}");
        let expected =
            format!("the batch at offset {second} does not match its checksum, and a sound one follows");
        assert!(error.contains(&expected), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing was changed");
        assert!(Wal::check(dir.path()).is_err());
    }

    #[test]
    fn damage_to_the_logs_first_batch_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        drop(Wal::create(dir.path(), &entries(0..=1)).unwrap());
        flip(&segments(dir.path())[0], MAGIC.len() + HEADER + 20);
        let error = Wal::open(dir.path()).err().expect("refused").to_string();
        assert!(
            error.contains("the batch at offset 8 does not match its checksum, and the log's first batch"),
            "{error}"
        );
    }

    /// A log whose first segment is past half full, with the vote in its first batch: the
    /// second segment is made ahead and not used yet. Answers the first segment's end.
    fn made_ahead(dir: &Path) -> u64 {
        let (mut wal, _) = Wal::create(dir, &[Op::Vote(Vote::new(2, 1))]).unwrap();
        wal.write(&entries(0..=7999)).unwrap();
        let end = wal.offset;
        drop(wal);
        let files = segments(dir);
        assert_eq!(files.len(), 2, "{files:?}");
        assert_eq!(std::fs::metadata(&files[1]).unwrap().len(), SEGMENT_BYTES);
        end
    }

    #[test]
    fn a_segment_made_ahead_takes_the_next_batch_behind_a_preamble() {
        let dir = tempfile::tempdir().unwrap();
        made_ahead(dir.path());
        let (mut wal, state) = Wal::open(dir.path()).unwrap().expect("a log");
        assert_eq!(state.entries.len(), 8000);
        assert_eq!(wal.segments.len(), 2, "the one made ahead is the active one");
        wal.write(&entries(8000..=8001)).unwrap();
        wal.write(&[Op::Purged(id(8000))]).unwrap();
        assert_eq!(segments(dir.path()).len(), 1);
        drop(wal);
        let (_, state) = Wal::open(dir.path()).unwrap().expect("a log");
        assert_eq!(state.vote, Some(Vote::new(2, 1)), "carried by the preamble");
        assert_eq!(indices(&state), [8001]);
    }

    #[test]
    fn a_segments_first_batch_cut_short_is_dropped_and_the_log_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        made_ahead(dir.path());
        let second = segments(dir.path()).remove(1);
        let (torn, _) = frame(&[Op::Vote(Vote::new(2, 1)), entry(8000)]);
        let file = File::options().write(true).open(&second).unwrap();
        file.write_all_at(&torn[..torn.len() / 2], MAGIC.len() as u64)
            .unwrap();
        drop(file);
        let (mut wal, state) = Wal::open(dir.path()).unwrap().expect("a log");
        assert_eq!(state.entries.len(), 8000);
        wal.write(&entries(8000..=8000)).unwrap();
        drop(wal);
        let (_, state) = Wal::open(dir.path()).unwrap().expect("a log");
        assert_eq!(state.entries.len(), 8001);
    }

    #[test]
    fn a_write_cut_short_before_a_segment_made_ahead_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let end = made_ahead(dir.path());
        let first = segments(dir.path()).remove(0);
        let mut torn = Vec::new();
        entry(8000).encode(&mut torn);
        let file = File::options().write(true).open(&first).unwrap();
        file.write_all_at(&torn[..torn.len() / 2], end).unwrap();
        drop(file);
        let (_, state) = Wal::open(dir.path()).unwrap().expect("a log");
        assert_eq!(state.entries.len(), 8000);
        let (bytes, _) = replay::read_used(&File::open(&first).unwrap()).unwrap();
        assert_eq!(bytes.len() as u64, end, "the write cut short is zeroed");
    }

    #[test]
    fn an_empty_segment_before_a_used_one_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        made_ahead(dir.path());
        let (mut wal, _) = Wal::open(dir.path()).unwrap().expect("a log");
        wal.write(&entries(8000..=8000)).unwrap();
        drop(wal);
        let second = segments(dir.path()).remove(1);
        std::fs::rename(&second, dir.path().join(LOG_DIR).join(segment_name(3))).unwrap();
        allocate_segment(&second, &[], 0).unwrap();
        let error = Wal::open(dir.path()).err().expect("refused").to_string();
        assert!(
            error.contains("it holds no batch, and a later segment does"),
            "{error}"
        );
    }

    #[test]
    fn a_gap_in_the_entries_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let ops = [entry(1), entry(2), Op::Purged(id(0)), entry(4)];
        let error = Wal::create(dir.path(), &ops).err().expect("refused").to_string();
        assert!(error.contains("log entries 3 to 3 are missing"), "{error}");
    }
}
