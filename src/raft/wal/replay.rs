//! Reading a log back: its segments in order, their frames checked, their records
//! replayed (the rules are in the parent module's docs).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::{Entry, LogId};

use super::{
    BATCH, COMMITTED, ENTRY, ENTRY_PREFIX, HEADER, Location, MAGIC, PURGED, Segment, State, TRUNCATE, VOTE,
    io_error,
};
use crate::raft::store::OpenError;
use crate::raft::{NodeId, TypeConfig};

/// What replaying a log directory gives.
pub(super) struct Replayed {
    pub(super) state: State,
    pub(super) segments: Vec<Segment>,
    /// Where the newest segment's records end.
    pub(super) end: u64,
    /// Where a write cut short by a crash starts: the newest segment used, and the offset.
    pub(super) torn: Option<(usize, u64)>,
}

fn damaged(path: &Path, what: String) -> OpenError {
    OpenError::LogDamaged {
        path: path.to_owned(),
        what,
    }
}

/// The segments of `dir`, by number.
fn segment_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>, OpenError> {
    let mut names = Vec::new();
    for item in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let path = item.map_err(io_error(dir))?.path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("wal") => {
                let seq = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .and_then(|s| u64::from_str_radix(s, 16).ok())
                    .ok_or_else(|| damaged(&path, "a segment's name is not its number".to_owned()))?;
                names.push((seq, path));
            }
            // A segment a crash left half made: the next rotation makes it again.
            Some("new") => {}
            _ => return Err(damaged(&path, "it is not a segment of the log".to_owned())),
        }
    }
    names.sort();
    if names.is_empty() {
        return Err(damaged(dir, "it has no segment".to_owned()));
    }
    Ok(names)
}

/// Opens the segment at `path` (for writing too: the newest takes the next records) and
/// reads what it holds: the file, its bytes up to the last that is not zero, its length.
fn read_segment(path: &Path) -> Result<(Arc<File>, Vec<u8>, u64), OpenError> {
    let file = File::options()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_error(path))?;
    let (bytes, len) = read_used(&file).map_err(io_error(path))?;
    if !bytes.starts_with(MAGIC) {
        return Err(damaged(
            path,
            "it does not start as a segment of the log".to_owned(),
        ));
    }
    Ok((Arc::new(file), bytes, len))
}

/// Reads every segment of `dir` in order and replays its records.
pub(super) fn replay(dir: &Path) -> Result<Replayed, OpenError> {
    let mut read = Vec::new();
    for (seq, path) in segment_files(dir)? {
        let (file, bytes, len) = read_segment(&path)?;
        read.push((seq, path, file, bytes, len));
    }
    // The segments after the newest that holds anything were made ahead and not used yet.
    let newest_used = read
        .iter()
        .rposition(|(.., bytes, _)| bytes.len() > MAGIC.len())
        .unwrap_or(0);
    let mut replay = Replay::default();
    let mut replayed = Replayed {
        state: State::default(),
        segments: Vec::new(),
        end: 0,
        torn: None,
    };
    for (i, (seq, path, file, bytes, len)) in read.into_iter().enumerate() {
        if i < newest_used && bytes.len() == MAGIC.len() {
            return Err(damaged(
                &path,
                "it holds no batch, and a later segment does".to_owned(),
            ));
        }
        let scanned = replay
            .segment(bytes, len, &file)
            .map_err(|what| damaged(&path, what))?;
        if let Some(torn) = scanned.torn {
            if i != newest_used {
                return Err(damaged(
                    &path,
                    format!("the batch at offset {torn} does not match its checksum"),
                ));
            }
            // A segment's first batch carries the preamble, with the batch it came with;
            // a crash may cut it short, but the first segment's is synced as it is made.
            if i == 0 && torn == MAGIC.len() as u64 {
                return Err(damaged(
                    &path,
                    format!(
                        "the batch at offset {torn} does not match its checksum, and the log's \
                         first batch is on disk before the log is used"
                    ),
                ));
            }
            replayed.torn = Some((i, torn));
        }
        replayed.end = scanned.end;
        replayed.segments.push(Segment {
            seq,
            path,
            file,
            len,
            last_index: scanned.last_index,
        });
    }
    replay.finish().map_err(|what| damaged(dir, what))?;
    replayed.state = replay.state;
    Ok(replayed)
}

/// The body of the frame or record at `at` in `bytes`, if one of `kinds` is there whole
/// and matches its checksum.
fn framed(bytes: &[u8], at: usize, kinds: std::ops::RangeInclusive<u8>) -> Option<&[u8]> {
    let header = bytes.get(at..at + HEADER)?;
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    let body = bytes.get(at + HEADER..at.checked_add(HEADER + len)?)?;
    (!body.is_empty() && crc32fast::hash(body) == crc && kinds.contains(&body[0])).then_some(body)
}

/// Where the frame at `at` in `bytes` ends, by the length its header gives.
fn declared_end(bytes: &[u8], at: usize) -> Option<usize> {
    let len = bytes.get(at..at + 4)?;
    let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
    at.checked_add(HEADER + len)
}

/// The body of the batch frame at `at` in `bytes`, if one is there whole and matches its
/// checksum.
fn batch_body(bytes: &[u8], at: usize) -> Option<&[u8]> {
    framed(bytes, at, BATCH..=BATCH)
}

/// A segment's bytes up to its last one that is not zero (the rest is room no batch has
/// used, which is most of a segment), and the file's length. The zeros are read in small
/// pieces from the end, so opening a node reads and holds only what it wrote.
pub(super) fn read_used(file: &File) -> std::io::Result<(Vec<u8>, u64)> {
    const PIECE: u64 = 64 * 1024;
    let len = file.metadata()?.len();
    let mut buffer = vec![0; PIECE as usize];
    let mut used = len;
    while used > 0 {
        let start = used.saturating_sub(PIECE);
        let piece = &mut buffer[..(used - start) as usize];
        file.read_exact_at(piece, start)?;
        match piece.iter().rposition(|b| *b != 0) {
            Some(last) => {
                used = start + last as u64 + 1;
                break;
            }
            None => used = start,
        }
    }
    let mut bytes = vec![0; usize::try_from(used).map_err(std::io::Error::other)?];
    file.read_exact_at(&mut bytes, 0)?;
    Ok((bytes, len))
}

/// The state of a replay so far.
#[derive(Default)]
struct Replay {
    state: State,
}

/// What one segment's scan found.
struct Scanned {
    end: u64,
    torn: Option<u64>,
    last_index: Option<u64>,
}

impl Replay {
    /// Replays the records of one segment, up to the first that is zero or does not check
    /// out (its offset is `torn`). `bytes` are the segment's up to its last that is not
    /// zero, of the `len` in the file.
    fn segment(&mut self, mut bytes: Vec<u8>, len: u64, file: &Arc<File>) -> Result<Scanned, String> {
        let mut at = MAGIC.len();
        let mut scanned = Scanned {
            end: at as u64,
            torn: None,
            last_index: None,
        };
        // Anything left after the sound batches is a batch that does not check out.
        let used = bytes.len();
        while at < used {
            // A batch may end in zeros (a truncation's index), where the bytes read stop
            // short of it: the file holds those zeros, so the bytes take them too.
            if let Some(end) = declared_end(&bytes, at).filter(|end| *end > bytes.len() && *end as u64 <= len)
            {
                bytes.resize(end, 0);
            }
            let Some(batch) = batch_body(&bytes, at) else {
                scanned.torn = Some(at as u64);
                break;
            };
            let last = self.batch(batch, at + HEADER, file)?;
            scanned.last_index = scanned.last_index.max(last);
            at += HEADER + batch.len();
            scanned.end = at as u64;
        }
        if let Some(torn) = scanned.torn
            && let Some(after) = (torn as usize + 1..bytes.len()).find(|at| batch_body(&bytes, *at).is_some())
        {
            return Err(format!(
                "the batch at offset {torn} does not match its checksum, and a sound one follows at offset {after}"
            ));
        }
        Ok(scanned)
    }

    /// Replays the records of one batch, whose body starts at `offset` in the file;
    /// answers the highest index of an entry in it. A batch that matched its checksum
    /// holds only sound records, or it is damaged.
    fn batch(&mut self, batch: &[u8], offset: usize, file: &Arc<File>) -> Result<Option<u64>, String> {
        let mut last = None;
        let mut at = 1;
        while at < batch.len() {
            let body = framed(batch, at, ENTRY..=COMMITTED).ok_or_else(|| {
                format!(
                    "the batch at offset {} holds a record that does not decode",
                    offset - HEADER
                )
            })?;
            let index = self.record(body, (offset + at + HEADER) as u64, file)?;
            last = last.max(index);
            at += HEADER + body.len();
        }
        Ok(last)
    }

    /// Replays one record whose body starts at `offset`; answers an entry's index.
    fn record(&mut self, body: &[u8], offset: u64, file: &Arc<File>) -> Result<Option<u64>, String> {
        let at = |what: &str| format!("the {what} at offset {offset} does not decode");
        let index_of = |bytes: &[u8]| {
            bytes
                .get(..8)
                .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        };
        let state = &mut self.state;
        match body[0] {
            ENTRY => {
                let index = index_of(&body[1..]).ok_or_else(|| at("entry"))?;
                let json = &body[ENTRY_PREFIX..];
                let entry: Entry<TypeConfig> = serde_json::from_slice(json)
                    .map_err(|e| format!("log entry {index} at offset {offset} does not decode: {e}"))?;
                if entry.log_id.index != index {
                    return Err(format!("log entry {index} holds entry {}", entry.log_id.index));
                }
                if let Some(last) = state.entries.keys().next_back().filter(|last| **last >= index) {
                    return Err(format!(
                        "log entry {index} follows entry {last} without a truncation"
                    ));
                }
                state.entries.insert(
                    index,
                    Location {
                        log_id: entry.log_id,
                        file: file.clone(),
                        offset: offset + ENTRY_PREFIX as u64,
                        len: json.len(),
                    },
                );
                return Ok(Some(index));
            }
            TRUNCATE => {
                let index = index_of(&body[1..]).ok_or_else(|| at("truncation"))?;
                state.entries.split_off(&index);
            }
            PURGED => {
                let id: LogId<NodeId> = serde_json::from_slice(&body[1..]).map_err(|_| at("purge"))?;
                state.purged = state.purged.max(Some(id));
                state.entries.retain(|index, _| *index > id.index);
            }
            VOTE => state.vote = Some(serde_json::from_slice(&body[1..]).map_err(|_| at("vote"))?),
            COMMITTED => {
                state.committed = serde_json::from_slice(&body[1..]).map_err(|_| at("committed index"))?
            }
            kind => {
                return Err(format!(
                    "the record at offset {offset} is of no known kind ({kind})"
                ));
            }
        }
        Ok(None)
    }

    /// Checks that the entries left are one run of indices right after the purged ones.
    fn finish(&self) -> Result<(), String> {
        let mut expected = self.state.purged.map(|id| id.index + 1);
        for index in self.state.entries.keys() {
            match expected {
                Some(next) if *index != next => {
                    return Err(format!("log entries {next} to {} are missing", index - 1));
                }
                _ => expected = Some(index + 1),
            }
        }
        Ok(())
    }
}
