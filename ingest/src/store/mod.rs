//! The durable store: a write-ahead log in front of Hive-partitioned Parquet files.
//!
//! [`Store::append`] deduplicates a batch, writes it to the WAL and syncs it: when it returns,
//! the batch survives a crash, and only then may the caller acknowledge the messages.
//! [`Store::flush`] moves what the current WAL segment holds into Parquet and retires the
//! segment; [`Store::start_flush`] does the same on a thread of its own, so appends and their
//! syncs go on while the Parquet files are written (at most one such flush runs; the next
//! waits for it, so at most two segments' records are in memory). [`Store::open`] replays any
//! segment left by a crash before anything else happens.
//!
//! **Architecture Invariant:** a WAL segment is deleted only after the Parquet files named after
//! it are renamed into place and their directory synced, and replaying a segment rewrites
//! exactly those files. So a crash at any point loses nothing that was acknowledged and
//! duplicates nothing.

mod files;
pub mod record;
mod resume;
pub mod schema;
mod wal;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::ping::Rejection;
use files::{day_of, partition_dir};
pub use record::{Record, StoredEvent, StoredPing, WalEntry};
pub use resume::{Input, Resume};
use schema::{EVENTS, PINGS, REJECTS};

/// Where and how the store keeps its data.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Root directory; created if missing.
    pub root: PathBuf,
    /// Flush the WAL segment to Parquet once it holds this many records.
    pub flush_records: usize,
    /// Merge a partition once it has this many data files.
    pub compact_min_files: usize,
    /// How many partitions' dedupe keys to keep in memory.
    pub dedupe_days: usize,
}

impl StoreConfig {
    /// Defaults suited to a county-size fleet: flush every 200k records, merge at 16 files,
    /// keep 8 days of dedupe keys.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StoreConfig {
            root: root.into(),
            flush_records: 200_000,
            compact_min_files: 16,
            dedupe_days: 8,
        }
    }
}

/// Infrastructure failures of the store. Bad pings are never errors here.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Parquet encoding or decoding failed.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Arrow array construction failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A data file does not have the expected schema.
    #[error("{path}: {detail}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
}

impl StoreError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// What [`Store::append`] did with a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    /// New pings written.
    pub pings: usize,
    /// New rejections written.
    pub rejects: usize,
    /// New events written.
    pub events: usize,
    /// Records already in the store (same unit and fix time, same topic and payload, or the
    /// same event of the same unit).
    pub duplicates: usize,
}

/// 64-bit FNV-1a: a stable hash for reject keys (std's hasher may change between releases).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.iter().chain(&[0xff]) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Dedupe keys per day, loaded from Parquet the first time a day is touched.
#[derive(Debug, Default)]
struct Seen {
    units: HashMap<String, u32>,
    pings: HashMap<i64, HashSet<(u32, i64)>>,
    rejects: HashMap<i64, HashSet<u64>>,
    events: HashMap<i64, HashSet<u64>>,
    /// Days in order of last use, most recent last; bounds memory.
    recent: Vec<i64>,
}

impl Seen {
    fn unit_id(&mut self, unit: &str) -> u32 {
        let next = u32::try_from(self.units.len()).unwrap_or(u32::MAX);
        *self.units.entry(unit.to_owned()).or_insert(next)
    }

    fn touch(&mut self, day: i64) {
        self.recent.retain(|d| *d != day);
        self.recent.push(day);
    }

    fn ping_set(&mut self, root: &Path, day: i64) -> Result<&mut HashSet<(u32, i64)>, StoreError> {
        self.touch(day);
        if !self.pings.contains_key(&day) {
            let mut set = HashSet::new();
            let mut keys = Vec::new();
            files::ping_keys(&partition_dir(root, PINGS, day), |u, t| {
                keys.push((u.to_owned(), t));
            })?;
            for (u, t) in keys {
                let id = self.unit_id(&u);
                set.insert((id, t));
            }
            self.pings.insert(day, set);
        }
        Ok(self.pings.entry(day).or_default())
    }

    fn reject_set(&mut self, root: &Path, day: i64) -> Result<&mut HashSet<u64>, StoreError> {
        match self.rejects.entry(day) {
            std::collections::hash_map::Entry::Occupied(e) => Ok(e.into_mut()),
            std::collections::hash_map::Entry::Vacant(e) => {
                let mut set = HashSet::new();
                files::reject_keys(&partition_dir(root, REJECTS, day), |t, p| {
                    set.insert(fnv1a(&[t.as_bytes(), p]));
                })?;
                Ok(e.insert(set))
            }
        }
    }

    fn event_set(&mut self, root: &Path, day: i64) -> Result<&mut HashSet<u64>, StoreError> {
        match self.events.entry(day) {
            std::collections::hash_map::Entry::Occupied(e) => Ok(e.into_mut()),
            std::collections::hash_map::Entry::Vacant(e) => {
                let mut set = HashSet::new();
                files::event_keys(&partition_dir(root, EVENTS, day), |u, d| {
                    set.insert(fnv1a(&[u.as_bytes(), d.as_bytes()]));
                })?;
                Ok(e.insert(set))
            }
        }
    }

    /// Forgets the least recently used days beyond `keep`, but none of `pinned`. Only
    /// called right after a flush, when every key in memory but those of `pinned` days is
    /// also on disk and can be reloaded.
    fn evict(&mut self, keep: usize, pinned: &HashSet<i64>) {
        let mut excess = self.recent.len().saturating_sub(keep);
        let mut kept = Vec::with_capacity(self.recent.len());
        for day in std::mem::take(&mut self.recent) {
            if excess > 0 && !pinned.contains(&day) {
                excess -= 1;
                self.pings.remove(&day);
                self.rejects.remove(&day);
                self.events.remove(&day);
            } else {
                kept.push(day);
            }
        }
        self.recent = kept;
    }
}

/// The store. Owned by one thread (the store sink); every method blocks on disk IO.
#[derive(Debug)]
pub struct Store {
    cfg: StoreConfig,
    wal: wal::WalWriter,
    pending: Vec<Record>,
    seen: Seen,
    /// The pipeline stage's resume point, up to the last entry appended.
    resume: resume::Log,
    /// Whether pings and ticks appended now are engine inputs (see `resume.rs`).
    collecting: bool,
    /// The resume point changed since `wal/stage.state` was last written.
    resume_dirty: bool,
    /// The flush running in the background, if any ([`Store::start_flush`]).
    flushing: Option<std::thread::JoinHandle<Result<(), StoreError>>>,
}

/// What retiring a segment leaves to do: write its records to Parquet and the resume point
/// to `wal/stage.state`, then delete the segment. Needs nothing of the store but paths, so it
/// can run on another thread.
struct Retired {
    root: PathBuf,
    segment: u64,
    records: Vec<Record>,
    /// The resume point as of the segment's end, and the segment that continues it.
    resume: Option<(Option<u64>, resume::Log)>,
    compact_min_files: usize,
}

impl Retired {
    fn finish(self) -> Result<(), StoreError> {
        let wal_dir = self.root.join("wal");
        let touched = write_segment(&self.root, self.segment, &self.records)?;
        if let Some((continues, log)) = &self.resume {
            resume::write(&wal_dir, self.segment, *continues, log)
                .map_err(|e| StoreError::io(&wal_dir, e))?;
        }
        let path = wal::segment_path(&wal_dir, self.segment);
        fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
        wal::sync_dir(&wal_dir).map_err(|e| StoreError::io(&wal_dir, e))?;
        for dir in touched {
            files::compact_partition(&dir, self.compact_min_files)?;
        }
        Ok(())
    }
}

impl Drop for Store {
    /// Waits for a background flush, so a store reopened on the same directory never races
    /// it (its error, if any, is the next open's to find: the segment is still there).
    fn drop(&mut self) {
        if let Some(handle) = self.flushing.take() {
            let _ = handle.join();
        }
    }
}

impl Store {
    /// Opens the store, replaying any WAL segments a crash left behind.
    ///
    /// # Errors
    /// [`StoreError`] when the directory cannot be created or a file cannot be read or written.
    pub fn open(cfg: StoreConfig) -> Result<Store, StoreError> {
        let wal_dir = cfg.root.join("wal");
        fs::create_dir_all(&wal_dir).map_err(|e| StoreError::io(&wal_dir, e))?;
        let segments = wal::list_segments(&wal_dir).map_err(|e| StoreError::io(&wal_dir, e))?;
        let mut state = resume::read(&wal_dir)
            .map_err(|e| StoreError::io(&wal_dir, e))?
            .unwrap_or_default();
        let had_state = state.resume.has_snapshot();
        let mut next = 0;
        for seg in &segments {
            let path = wal::segment_path(&wal_dir, *seg);
            let entries = wal::read_segment(&path).map_err(|e| StoreError::io(&path, e))?;
            let records: Vec<Record> = entries
                .iter()
                .filter_map(|e| match e {
                    WalEntry::Record(r) => Some(r.clone()),
                    WalEntry::Tick(_) | WalEntry::Snapshot { .. } => None,
                })
                .collect();
            if !records.is_empty() {
                tracing::info!(
                    segment = seg,
                    records = records.len(),
                    "Replaying WAL segment"
                );
                write_segment(&cfg.root, *seg, &records)?;
            }
            // Segments up to `covered` are already in the state file (a crash came between
            // writing it and deleting them).
            if !had_state || *seg > state.covered {
                let mut collecting = state.continues == Some(*seg);
                let mut changed = false;
                for entry in &entries {
                    changed |= state.resume.fold(&mut collecting, entry);
                }
                state.covered = *seg;
                state.continues = collecting.then_some(seg + 1);
                if changed {
                    resume::write(&wal_dir, state.covered, state.continues, &state.resume)
                        .map_err(|e| StoreError::io(&wal_dir, e))?;
                }
            }
            fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
            next = seg + 1;
        }
        // This instance appends to a new segment and collects nothing until the stage says so.
        if state.continues.take().is_some() {
            resume::write(&wal_dir, state.covered, None, &state.resume)
                .map_err(|e| StoreError::io(&wal_dir, e))?;
        }
        // Parquet files may name segments newer than any WAL left (all retired): skip past them.
        for table in [PINGS, REJECTS, EVENTS] {
            for day in files::partitions(&cfg.root, table)? {
                let dir = partition_dir(&cfg.root, table, day);
                files::remove_covered(&dir)?;
                for (_, (_, last)) in files::data_files(&dir)? {
                    next = next.max(last + 1);
                }
            }
        }
        wal::sync_dir(&wal_dir).map_err(|e| StoreError::io(&wal_dir, e))?;
        let wal =
            wal::WalWriter::create(&wal_dir, next).map_err(|e| StoreError::io(&wal_dir, e))?;
        Ok(Store {
            cfg,
            wal,
            pending: Vec::new(),
            seen: Seen::default(),
            resume: state.resume,
            collecting: false,
            resume_dirty: false,
            flushing: None,
        })
    }

    /// Where the pipeline stage resumes: its last snapshot and the engine inputs appended
    /// after it, as recovered at open and updated by every append since (decoded on each
    /// call; the stage asks once, at start).
    pub fn resume(&self) -> Resume {
        self.resume.decode()
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.cfg.root
    }

    /// Deduplicates `records`, appends the new ones to the WAL and syncs it. On `Ok` the whole
    /// batch is durable (or was already stored). Flushes to Parquet when the segment is full.
    ///
    /// # Errors
    /// [`StoreError`] on IO failure; nothing of the batch may be acknowledged then.
    pub fn append(&mut self, records: Vec<Record>) -> Result<AppendOutcome, StoreError> {
        self.append_entries(records.into_iter().map(WalEntry::Record).collect())
    }

    /// [`Store::append`] for WAL entries: records are deduplicated and stored as there, ticks
    /// and snapshots go into the WAL and the resume point ([`Store::resume`]), committed in
    /// the same sync as the records around them.
    ///
    /// # Errors
    /// [`StoreError`] on IO failure; nothing of the batch may be acknowledged then.
    pub fn append_entries(&mut self, entries: Vec<WalEntry>) -> Result<AppendOutcome, StoreError> {
        if self.flushing.as_ref().is_some_and(|h| h.is_finished()) {
            self.wait_flush()?;
        }
        let mut out = AppendOutcome::default();
        for entry in entries {
            let rec = match entry {
                WalEntry::Record(rec) => rec,
                WalEntry::Tick(_) | WalEntry::Snapshot { .. } => {
                    self.resume_dirty |= self.resume.fold(&mut self.collecting, &entry);
                    self.wal.stage(&entry);
                    continue;
                }
            };
            let fresh = match &rec {
                Record::Ping(p) => {
                    let id = self.seen.unit_id(p.ping.unit());
                    let day = day_of(p.ping.fix_time());
                    let t = p.ping.fix_time();
                    self.seen.ping_set(&self.cfg.root, day)?.insert((id, t))
                }
                Record::Reject(r) => {
                    let key = fnv1a(&[r.topic.as_bytes(), &r.payload]);
                    self.seen
                        .reject_set(&self.cfg.root, day_of(r.recv_time))?
                        .insert(key)
                }
                Record::Event(e) => {
                    let key = fnv1a(&[e.unit.as_bytes(), e.detail.as_bytes()]);
                    self.seen
                        .event_set(&self.cfg.root, day_of(e.time_ms))?
                        .insert(key)
                }
            };
            if !fresh {
                out.duplicates += 1;
                continue;
            }
            match rec {
                Record::Ping(_) => out.pings += 1,
                Record::Reject(_) => out.rejects += 1,
                Record::Event(_) => out.events += 1,
            }
            let entry = WalEntry::Record(rec);
            self.resume_dirty |= self.resume.fold(&mut self.collecting, &entry);
            self.wal.stage(&entry);
            if let WalEntry::Record(rec) = entry {
                self.pending.push(rec);
            }
        }
        let wal_dir = self.cfg.root.join("wal");
        self.wal.commit().map_err(|e| StoreError::io(&wal_dir, e))?;
        if self.pending.len() >= self.cfg.flush_records {
            self.start_flush()?;
        }
        Ok(out)
    }

    /// Number of durable records not yet in Parquet.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Writes the current segment's records to Parquet and the stage's resume point to
    /// `wal/stage.state`, starts a new segment and deletes the old one. Then merges
    /// partitions that have too many files. Waits for a background flush first.
    ///
    /// # Errors
    /// [`StoreError`] on IO failure (here or in the background flush); the WAL still holds
    /// everything, so a restart recovers.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        self.wait_flush()?;
        if let Some(retired) = self.retire()? {
            retired.finish()?;
            self.evict();
        }
        Ok(())
    }

    /// [`Store::flush`] on a thread of its own: starts a new WAL segment now and leaves the
    /// Parquet files, the resume point and the old segment's deletion to the thread, so the
    /// caller can go on appending (and acknowledging) at once. Waits for the previous
    /// background flush first. Its failure is returned by the next append or flush.
    ///
    /// # Errors
    /// [`StoreError`] when the previous background flush failed or the new segment cannot be
    /// created.
    pub fn start_flush(&mut self) -> Result<(), StoreError> {
        self.wait_flush()?;
        if let Some(retired) = self.retire()? {
            let handle = std::thread::Builder::new()
                .name("store-flush".into())
                .spawn(move || retired.finish())
                .map_err(|e| StoreError::io(&self.cfg.root, e))?;
            self.flushing = Some(handle);
        }
        Ok(())
    }

    /// Waits for the background flush, if one runs, and returns its outcome.
    fn wait_flush(&mut self) -> Result<(), StoreError> {
        let Some(handle) = self.flushing.take() else {
            return Ok(());
        };
        let result = handle.join().unwrap_or_else(|_| {
            Err(StoreError::io(
                &self.cfg.root,
                std::io::Error::other("the background flush panicked"),
            ))
        });
        if result.is_ok() {
            self.evict();
        }
        result
    }

    /// Commits and closes the current segment, starts the next and hands back what is left
    /// to do with the old one; `None` when there is nothing to flush.
    fn retire(&mut self) -> Result<Option<Retired>, StoreError> {
        if self.pending.is_empty() && !self.resume_dirty {
            return Ok(None);
        }
        let wal_dir = self.cfg.root.join("wal");
        let resume = (self.resume_dirty || self.collecting).then(|| {
            let continues = self.collecting.then_some(self.wal.segment() + 1);
            (continues, self.resume.clone())
        });
        self.resume_dirty = false;
        let segment = self.wal.rotate().map_err(|e| StoreError::io(&wal_dir, e))?;
        Ok(Some(Retired {
            root: self.cfg.root.clone(),
            segment,
            records: std::mem::take(&mut self.pending),
            resume,
            compact_min_files: self.cfg.compact_min_files,
        }))
    }

    /// Forgets dedupe keys of days beyond the configured number, except days that records
    /// not yet in Parquet belong to (their keys could not be reloaded from disk).
    fn evict(&mut self) {
        let keep: HashSet<i64> = self.pending.iter().map(key_day).collect();
        self.seen.evict(self.cfg.dedupe_days, &keep);
    }

    /// True when the store holds no pings at all (on disk or pending).
    ///
    /// # Errors
    /// [`StoreError`] when the store directory cannot be read.
    pub fn has_no_pings(&mut self) -> Result<bool, StoreError> {
        self.wait_flush()?;
        let pending = self.pending.iter().any(|r| matches!(r, Record::Ping(_)));
        Ok(!pending && files::partitions(&self.cfg.root, PINGS)?.is_empty())
    }

    /// Bulk load for generated or imported history: writes `records` straight to Parquet as
    /// one new segment's files, without the WAL and without deduplication. Only for data that
    /// nobody acknowledged (a crash just loses the unfinished load) and that is known to be
    /// unique, e.g. `patrol generate` into an empty store.
    ///
    /// # Errors
    /// [`StoreError`] on IO failure.
    pub fn write_bulk(&mut self, records: &[Record]) -> Result<(), StoreError> {
        self.flush()?;
        let wal_dir = self.cfg.root.join("wal");
        let segment = self.wal.segment();
        write_segment(&self.cfg.root, segment, records)?;
        let old = self.wal.rotate().map_err(|e| StoreError::io(&wal_dir, e))?;
        let path = wal::segment_path(&wal_dir, old);
        fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))
    }

    /// Merges every partition that has more than one data file (for example before a
    /// benchmark or an export). Returns the number of files merged.
    ///
    /// # Errors
    /// [`StoreError`] on IO failure.
    pub fn compact_all(&mut self) -> Result<usize, StoreError> {
        self.flush()?;
        let mut merged = 0;
        for table in [PINGS, REJECTS, EVENTS] {
            for day in files::partitions(&self.cfg.root, table)? {
                merged += files::compact_partition(&partition_dir(&self.cfg.root, table, day), 2)?;
            }
        }
        Ok(merged)
    }

    /// Deletes every partition (pings, rejects and events) whose day is before `cutoff_ms`'s UTC day:
    /// the retention rule for sensitive location data. Returns the partitions removed.
    ///
    /// # Errors
    /// [`StoreError`] on IO failure.
    pub fn purge_before(&mut self, cutoff_ms: i64) -> Result<usize, StoreError> {
        self.flush()?;
        let cutoff = day_of(cutoff_ms);
        let mut removed = 0;
        for table in [PINGS, REJECTS, EVENTS] {
            for day in files::partitions(&self.cfg.root, table)? {
                if day < cutoff {
                    let dir = partition_dir(&self.cfg.root, table, day);
                    fs::remove_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
                    self.seen.pings.remove(&day);
                    self.seen.rejects.remove(&day);
                    self.seen.events.remove(&day);
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// Every `(unit, fix_time)` key in the store's Parquet files, sorted (for audits and tests;
/// reads every pings file).
///
/// # Errors
/// [`StoreError`] when a file cannot be read.
pub fn scan_ping_keys(root: &Path) -> Result<Vec<(String, i64)>, StoreError> {
    let mut out = Vec::new();
    for day in files::partitions(root, PINGS)? {
        files::ping_keys(&partition_dir(root, PINGS, day), |u, t| {
            out.push((u.to_owned(), t))
        })?;
    }
    out.sort();
    Ok(out)
}

/// Every `(topic, payload)` in the store's rejects files, sorted.
///
/// # Errors
/// [`StoreError`] when a file cannot be read.
pub fn scan_reject_keys(root: &Path) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let mut out = Vec::new();
    for day in files::partitions(root, REJECTS)? {
        files::reject_keys(&partition_dir(root, REJECTS, day), |t, p| {
            out.push((t.to_owned(), p.to_vec()))
        })?;
    }
    out.sort();
    Ok(out)
}

/// Every row of the `events` table whose time is in `[from_ms, to_ms)`, sorted by time, then
/// unit (reads only the day partitions of that range).
///
/// # Errors
/// [`StoreError`] when a file cannot be read.
pub fn scan_events(root: &Path, from_ms: i64, to_ms: i64) -> Result<Vec<StoredEvent>, StoreError> {
    let mut out = Vec::new();
    let (first, last) = (day_of(from_ms), day_of(to_ms.saturating_sub(1)));
    for day in files::partitions(root, EVENTS)? {
        if (first..=last).contains(&day) {
            files::event_rows(&partition_dir(root, EVENTS, day), &mut out)?;
        }
    }
    out.retain(|e| (from_ms..to_ms).contains(&e.time_ms));
    out.sort_by(|a, b| (a.time_ms, &a.unit).cmp(&(b.time_ms, &b.unit)));
    Ok(out)
}

/// The day partition whose dedupe keys hold a record's key.
fn key_day(rec: &Record) -> i64 {
    match rec {
        Record::Ping(p) => day_of(p.ping.fix_time()),
        Record::Reject(r) => day_of(r.recv_time),
        Record::Event(e) => day_of(e.time_ms),
    }
}

/// Writes one segment's records as `part-<segment>.parquet` in each partition they touch.
/// Returns the partition directories written.
fn write_segment(
    root: &Path,
    segment: u64,
    records: &[Record],
) -> Result<Vec<PathBuf>, StoreError> {
    let mut pings: HashMap<i64, Vec<&StoredPing>> = HashMap::new();
    let mut rejects: HashMap<i64, Vec<&Rejection>> = HashMap::new();
    let mut events: HashMap<i64, Vec<&StoredEvent>> = HashMap::new();
    for rec in records {
        let day = key_day(rec);
        match rec {
            Record::Ping(p) => pings.entry(day).or_default().push(p),
            Record::Reject(r) => rejects.entry(day).or_default().push(r),
            Record::Event(e) => events.entry(day).or_default().push(e),
        }
    }
    let name = format!("part-{segment:010}.parquet");
    let mut dirs = Vec::new();
    for (day, mut rows) in pings {
        let dir = partition_dir(root, PINGS, day);
        files::write_atomic(&dir, &name, &files::pings_batch(&mut rows)?)?;
        dirs.push(dir);
    }
    for (day, rows) in rejects {
        let dir = partition_dir(root, REJECTS, day);
        files::write_atomic(&dir, &name, &files::rejects_batch(&rows)?)?;
        dirs.push(dir);
    }
    for (day, mut rows) in events {
        let dir = partition_dir(root, EVENTS, day);
        files::write_atomic(&dir, &name, &files::events_batch(&mut rows)?)?;
        dirs.push(dir);
    }
    dirs.sort();
    Ok(dirs)
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
