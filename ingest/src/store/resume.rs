//! Where the pipeline stage resumes after a restart: its last snapshot and the engine inputs
//! (pings and ticks) that followed it, kept in the WAL and, once the WAL segments holding them
//! are retired, in the file `wal/stage.state`.
//!
//! The file is written like a Parquet file (temporary name, sync, rename, directory sync)
//! before the segment it covers is deleted, so at every instant the WAL segments newer than
//! the file's `covered` segment plus the file itself hold the whole resume point: nothing the
//! stage had acknowledged is missing from it, and nothing in it is counted twice.
//!
//! Only what a running pipeline appended counts as an engine input: the store starts
//! collecting pings and ticks at a [`WalEntry::Snapshot`] that is not `closed` and stops at
//! a closed one. A new store instance starts not collecting (an import between two runs of
//! the pipeline feeds no engine), except when it recovers a segment that continues a
//! collecting run across a segment rotation, which the file records as `continues`.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use super::record::{Record, StoredPing, WalEntry};
use super::wal;
use crate::ping::EpochMillis;

/// One input of the event engine since the last snapshot, in the order the stage saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A ping the stage accepted and the store kept.
    Ping(StoredPing),
    /// A tick that changed the engine's state, at this wall-clock time.
    Tick(EpochMillis),
}

/// The stage's resume point: restore `snapshot`, then replay `inputs` in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resume {
    /// The stage's last snapshot, `None` when no pipeline with an event engine ever ran.
    pub snapshot: Option<Vec<u8>>,
    /// Engine inputs after the snapshot.
    pub inputs: Vec<Input>,
}

/// The resume point as the store keeps it while appending: the snapshot and the engine
/// inputs after it as WAL frames, so taking in a ping costs one encoding instead of a copy
/// of the ping, and a copy for a background flush is one `memcpy`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Log {
    snapshot: Option<Vec<u8>>,
    inputs: Vec<u8>,
}

impl Log {
    /// Takes in one WAL entry; `collecting` says whether pings and ticks are engine inputs
    /// and is updated by snapshots. Returns true when the resume point changed.
    pub(super) fn fold(&mut self, collecting: &mut bool, entry: &WalEntry) -> bool {
        match entry {
            WalEntry::Snapshot { closed, state } => {
                self.snapshot = Some(state.clone());
                self.inputs.clear();
                *collecting = !closed;
                true
            }
            WalEntry::Tick(_) | WalEntry::Record(Record::Ping(_)) if *collecting => {
                wal::frame(&mut self.inputs, entry);
                true
            }
            WalEntry::Tick(_) | WalEntry::Record(_) => false,
        }
    }

    /// Whether a snapshot was ever taken in.
    pub(super) fn has_snapshot(&self) -> bool {
        self.snapshot.is_some()
    }

    /// The resume point decoded.
    pub(super) fn decode(&self) -> Resume {
        let frames = wal::read_frames(self.inputs.as_slice()).unwrap_or_default();
        Resume {
            snapshot: self.snapshot.clone(),
            inputs: frames
                .into_iter()
                .filter_map(|e| match e {
                    WalEntry::Record(Record::Ping(p)) => Some(Input::Ping(p)),
                    WalEntry::Tick(t) => Some(Input::Tick(t)),
                    WalEntry::Record(_) | WalEntry::Snapshot { .. } => None,
                })
                .collect(),
        }
    }
}

/// The contents of `wal/stage.state`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct StateFile {
    /// The newest WAL segment whose entries `resume` already holds.
    pub(super) covered: u64,
    /// The segment that continues a collecting run (the one rotated to after `covered`).
    pub(super) continues: Option<u64>,
    pub(super) resume: Log,
}

const FILE: &str = "stage.state";

/// Writes a state file into `dir` atomically (nothing while there is no snapshot).
pub(super) fn write(
    dir: &Path,
    covered: u64,
    continues: Option<u64>,
    resume: &Log,
) -> io::Result<()> {
    let Some(snapshot) = &resume.snapshot else {
        return Ok(());
    };
    let mut buf = Vec::with_capacity(resume.inputs.len() + snapshot.len() + 64);
    buf.extend_from_slice(&covered.to_le_bytes());
    buf.extend_from_slice(&continues.unwrap_or(u64::MAX).to_le_bytes());
    let first = WalEntry::Snapshot {
        closed: false,
        state: snapshot.clone(),
    };
    wal::frame(&mut buf, &first);
    buf.extend_from_slice(&resume.inputs);
    let tmp = dir.join(format!("{FILE}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(&buf)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, dir.join(FILE))?;
    wal::sync_dir(dir)
}

/// Reads `dir/stage.state`; `None` when there is none.
pub(super) fn read(dir: &Path) -> io::Result<Option<StateFile>> {
    let mut f = match File::open(dir.join(FILE)) {
        Ok(f) => BufReader::new(f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut header = [0u8; 16];
    f.read_exact(&mut header)?;
    let [covered, continues] =
        [&header[..8], &header[8..]].map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
    let mut resume = Log::default();
    let mut collecting = true;
    for entry in wal::read_frames(f)? {
        resume.fold(&mut collecting, &entry);
    }
    Ok(Some(StateFile {
        covered,
        continues: (continues != u64::MAX).then_some(continues),
        resume,
    }))
}
