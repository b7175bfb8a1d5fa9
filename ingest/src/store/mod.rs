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
mod wal;

use model::schema::{EVENTS, PINGS, REJECTS};
use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::ping::Rejection;
pub use files::projected_reader;
use files::{day_of, partition_dir};
pub use record::{Record, StoredEvent, StoredPing, WalEntry};
pub use resume::{Input, Resume};

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
    /// This node's name, part of every data file it writes (`part-<segment>-<node>.parquet`),
    /// so the stores of several nodes can be merged into one tree without two files sharing a
    /// name. Letters, digits and `_` only ([`valid_node`]).
    pub node: String,
}

impl StoreConfig {
    /// Defaults suited to a county-size fleet: flush every 200k records, merge at 16 files,
    /// keep 8 days of dedupe keys; the node is named after the host ([`default_node`]).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StoreConfig {
            root: root.into(),
            flush_records: 200_000,
            compact_min_files: 16,
            dedupe_days: 8,
            node: default_node(),
        }
    }
}

/// Whether `node` can name a node: 1 to 64 ASCII letters, digits or `_` (the file names use
/// `-` and `.` as separators).
pub fn valid_node(node: &str) -> bool {
    (1..=64).contains(&node.len()) && node.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The host name with every character a node name may not have replaced by `_`, or `node`
/// when the host name cannot be read: distinct machines get distinct names without setting
/// one, and several nodes on one machine must be given theirs.
pub fn default_node() -> String {
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name: String = host
        .trim()
        .chars()
        .take(64)
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if valid_node(&name) {
        name
    } else {
        "node".to_owned()
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
    /// Another process holds the store's lock.
    #[error(
        "store {root} is in use by another process ({holder}); run one ingest per store directory, or give each node a store of its own"
    )]
    Locked {
        /// The store's root directory.
        root: PathBuf,
        /// What the lock file says of its holder.
        holder: String,
    },
    /// The node name cannot be part of a file name.
    #[error("node name {0:?} must be 1 to 64 letters, digits or _")]
    BadNode(String),
    /// The WAL segment being written is no longer in the store directory (deleted, or the
    /// directory replaced or unmounted): nothing written to it can be kept, and waiting does
    /// not bring it back.
    #[error("the store's WAL vanished: {0}")]
    Vanished(String),
}

impl StoreError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.to_owned(),
            source,
        }
    }

    /// A failed WAL commit: [`StoreError::Vanished`] when the segment file is gone (the only
    /// way a write to an open file reports `NotFound`), else [`StoreError::Io`].
    fn commit(path: &Path, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::NotFound {
            StoreError::Vanished(source.to_string())
        } else {
            StoreError::io(path, source)
        }
    }

    /// True for failures that waiting cannot cure ([`StoreError::Vanished`]); the others (a
    /// full disk, a read-only file system, an IO error) may pass, so ingest pauses and retries.
    pub fn is_permanent(&self) -> bool {
        matches!(self, StoreError::Vanished(_))
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
    /// Pings refused because their unit already has a fix at that time at another position,
    /// stored as `conflicting_fix` rejections (counted in `rejects` too).
    pub conflicts: usize,
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

/// The bits of a position, to tell a redelivered fix (the same position) from a conflicting
/// one (another position at the same unit and time).
fn position_bits(lat: f64, lon: f64) -> (u64, u64) {
    (lat.to_bits(), lon.to_bits())
}

/// The dedupe key of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    /// Unit id and fix time, in a day.
    Ping(i64, u32, i64),
    /// Hash of topic and payload, in a day.
    Reject(i64, u64),
    /// Hash of unit and detail, in a day.
    Event(i64, u64),
}

/// What the store already holds under a record's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    /// Nothing: the record is new.
    Nothing,
    /// The same record.
    Same,
    /// A ping of the same unit and time at another position.
    OtherPosition,
}

/// The stored `(unit id, fix time)` keys of a day, with the bits of each one's position.
type Positions = HashMap<(u32, i64), (u64, u64)>;

/// Dedupe keys per day, loaded from Parquet the first time a day is touched.
#[derive(Debug, Default)]
struct Seen {
    units: HashMap<String, u32>,
    /// Per day, each stored `(unit, fix time)` with the bits of its position.
    pings: HashMap<i64, Positions>,
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

    /// The key of `rec`, loading its day's keys from disk first if need be.
    fn key(&mut self, root: &Path, rec: &Record) -> Result<Key, StoreError> {
        Ok(match rec {
            Record::Ping(p) => {
                let id = self.unit_id(p.ping.unit());
                let t = p.ping.fix_time();
                let day = day_of(t);
                self.ping_set(root, day)?;
                Key::Ping(day, id, t)
            }
            Record::Reject(r) => {
                let day = day_of(r.recv_time);
                self.reject_set(root, day)?;
                Key::Reject(day, fnv1a(&[r.topic.as_bytes(), &r.payload]))
            }
            Record::Event(e) => {
                let day = day_of(e.time_ms);
                self.event_set(root, day)?;
                Key::Event(day, fnv1a(&[e.unit.as_bytes(), e.detail.as_bytes()]))
            }
        })
    }

    /// What is held under `key` (whose day [`Seen::key`] loaded); `position` is a ping's.
    fn held(&self, key: Key, position: Option<(u64, u64)>) -> Held {
        let found = match key {
            Key::Ping(day, id, t) => match self.pings.get(&day).and_then(|m| m.get(&(id, t))) {
                Some(bits) if Some(*bits) == position => return Held::Same,
                Some(_) => return Held::OtherPosition,
                None => false,
            },
            Key::Reject(day, k) => self.rejects.get(&day).is_some_and(|s| s.contains(&k)),
            Key::Event(day, k) => self.events.get(&day).is_some_and(|s| s.contains(&k)),
        };
        if found { Held::Same } else { Held::Nothing }
    }

    /// Records `key` as held (its day is loaded).
    fn insert(&mut self, key: Key, position: Option<(u64, u64)>) {
        match key {
            Key::Ping(day, id, t) => {
                self.pings
                    .entry(day)
                    .or_default()
                    .insert((id, t), position.unwrap_or_default());
            }
            Key::Reject(day, k) => {
                self.rejects.entry(day).or_default().insert(k);
            }
            Key::Event(day, k) => {
                self.events.entry(day).or_default().insert(k);
            }
        }
    }

    fn ping_set(&mut self, root: &Path, day: i64) -> Result<&mut Positions, StoreError> {
        self.touch(day);
        if !self.pings.contains_key(&day) {
            let mut set = HashMap::new();
            let mut keys = Vec::new();
            files::ping_keys(&partition_dir(root, PINGS, day), |u, t, lat, lon| {
                keys.push((u.to_owned(), t, position_bits(lat, lon)));
            })?;
            for (u, t, bits) in keys {
                let id = self.unit_id(&u);
                set.entry((id, t)).or_insert(bits);
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
    /// The flush running in the background, if any ([`Store::start_flush`]); it hands its
    /// work back with the outcome, so a failed one can be retried.
    flushing: Option<std::thread::JoinHandle<(Retired, Result<(), StoreError>)>>,
    /// A retired segment whose flush failed, to finish before any other ([`Store::heal`]).
    unfinished: Option<Retired>,
    /// The open lock file; the lock lasts as long as the store.
    _lock: fs::File,
}

/// What retiring a segment leaves to do: write its records to Parquet and the resume point
/// to `wal/stage.state`, then delete the segment. Needs nothing of the store but paths, so it
/// can run on another thread; every step can be done again, so a failed one is retried whole.
#[derive(Debug)]
struct Retired {
    root: PathBuf,
    node: String,
    segment: u64,
    records: Vec<Record>,
    /// The resume point as of the segment's end, and the segment that continues it.
    resume: Option<(Option<u64>, resume::Log)>,
    compact_min_files: usize,
}

impl Retired {
    fn finish(&self) -> Result<(), StoreError> {
        let wal_dir = self.root.join("wal");
        let touched = write_segment(&self.root, &self.node, self.segment, &self.records)?;
        if let Some((continues, log)) = &self.resume {
            resume::write(&wal_dir, self.segment, *continues, log)
                .map_err(|e| StoreError::io(&wal_dir, e))?;
        }
        let path = wal::segment_path(&wal_dir, self.segment);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(StoreError::io(&path, e));
            }
            _ => {}
        }
        wal::sync_dir(&wal_dir).map_err(|e| StoreError::io(&wal_dir, e))?;
        for dir in touched {
            files::compact_partition(&dir, &self.node, self.compact_min_files)?;
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

/// Takes the store's lock file (`<root>/LOCK`) for this process, or names its holder.
fn lock(root: &Path) -> Result<fs::File, StoreError> {
    use std::io::Write;
    let path = root.join("LOCK");
    let mut file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let holder = fs::read_to_string(&path).unwrap_or_default();
            let holder = holder.trim();
            return Err(StoreError::Locked {
                root: root.to_owned(),
                holder: if holder.is_empty() {
                    format!("lock {} held", path.display())
                } else {
                    format!("{holder}, lock {}", path.display())
                },
            });
        }
        Err(fs::TryLockError::Error(e)) => return Err(StoreError::io(&path, e)),
    }
    // Who holds it, for the next process's error message; the lock is what counts.
    let _ = file
        .set_len(0)
        .and_then(|()| writeln!(file, "pid {}", std::process::id()));
    Ok(file)
}

impl Store {
    /// Opens the store, replaying any WAL segments a crash left behind. Holds the store's
    /// lock until dropped: two processes appending to one WAL would replay and delete each
    /// other's segments.
    ///
    /// # Errors
    /// [`StoreError::Locked`] when another process has the store open,
    /// [`StoreError::BadNode`] for a node name that cannot be part of a file name, else
    /// [`StoreError`] when the directory cannot be created or a file cannot be read or written.
    pub fn open(cfg: StoreConfig) -> Result<Store, StoreError> {
        if !valid_node(&cfg.node) {
            return Err(StoreError::BadNode(cfg.node));
        }
        let wal_dir = cfg.root.join("wal");
        fs::create_dir_all(&wal_dir).map_err(|e| StoreError::io(&wal_dir, e))?;
        let lock = lock(&cfg.root)?;
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
                write_segment(&cfg.root, &cfg.node, *seg, &records)?;
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
                files::remove_covered(&dir, &cfg.node)?;
                for (_, (_, last)) in files::node_files(&dir, &cfg.node)? {
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
            unfinished: None,
            _lock: lock,
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
        let mut entries = records.into_iter().map(WalEntry::Record).collect();
        self.append_entries(&mut entries)
    }

    /// [`Store::append`] for WAL entries: records are deduplicated and stored as there, ticks
    /// and snapshots go into the WAL and the resume point ([`Store::resume`]), committed in
    /// the same sync as the records around them. On `Ok`, `entries` has been taken (left
    /// empty).
    ///
    /// A ping whose unit already has a fix at the same time at another position is stored as
    /// a `conflicting_fix` rejection instead (the first fix stands), so it is kept with its
    /// reason rather than dropped as a copy.
    ///
    /// # Errors
    /// [`StoreError`] on IO failure. Nothing of the batch may be acknowledged then, and the
    /// store is as before the call, with `entries` untouched: the caller may append the same
    /// entries again once the cause has passed (a full disk freed, a file system remounted
    /// read-write), as if the failed call had never been made.
    pub fn append_entries(
        &mut self,
        entries: &mut Vec<WalEntry>,
    ) -> Result<AppendOutcome, StoreError> {
        self.heal()?;
        // What is new, decided before anything changes; the batch may repeat itself.
        let mut verdicts = Vec::with_capacity(entries.len());
        let mut batch: HashMap<Key, Option<(u64, u64)>> = HashMap::new();
        for entry in entries.iter() {
            let WalEntry::Record(rec) = entry else {
                verdicts.push(None);
                continue;
            };
            let key = self.seen.key(&self.cfg.root, rec)?;
            let position = match rec {
                Record::Ping(p) => Some(position_bits(p.ping.lat(), p.ping.lon())),
                _ => None,
            };
            let held = match batch.get(&key) {
                Some(bits) if *bits == position => Held::Same,
                Some(_) => Held::OtherPosition,
                None => self.seen.held(key, position),
            };
            if held == Held::Nothing {
                batch.insert(key, position);
            }
            verdicts.push(Some((key, position, held)));
        }
        // The conflicts become rejections, which have keys (and copies) of their own.
        let mut conflicts = Vec::new();
        for (entry, verdict) in entries.iter().zip(&verdicts) {
            if let (WalEntry::Record(Record::Ping(p)), Some((_, _, Held::OtherPosition))) =
                (entry, verdict)
            {
                let r = Record::Reject(conflict(p));
                let key = self.seen.key(&self.cfg.root, &r)?;
                if self.seen.held(key, None) == Held::Nothing && batch.insert(key, None).is_none() {
                    conflicts.push((key, r));
                }
            }
        }
        // Stage and sync; a failure leaves the WAL as it was.
        for (entry, verdict) in entries.iter().zip(&verdicts) {
            if verdict.is_none_or(|(_, _, held)| held == Held::Nothing) {
                self.wal.stage(entry);
            }
        }
        for (_, r) in &conflicts {
            self.wal.stage(&WalEntry::Record(r.clone()));
        }
        let wal_dir = self.cfg.root.join("wal");
        self.wal
            .commit()
            .map_err(|e| StoreError::commit(&wal_dir, e))?;
        // Durable: take the batch in.
        let mut out = AppendOutcome::default();
        for (entry, verdict) in entries.drain(..).zip(verdicts) {
            match verdict {
                None => {
                    self.resume_dirty |= self.resume.fold(&mut self.collecting, &entry);
                }
                Some((_, _, Held::Same)) => out.duplicates += 1,
                Some((_, _, Held::OtherPosition)) => out.conflicts += 1,
                Some((key, position, Held::Nothing)) => {
                    self.seen.insert(key, position);
                    self.resume_dirty |= self.resume.fold(&mut self.collecting, &entry);
                    if let WalEntry::Record(rec) = entry {
                        match rec {
                            Record::Ping(_) => out.pings += 1,
                            Record::Reject(_) => out.rejects += 1,
                            Record::Event(_) => out.events += 1,
                        }
                        self.pending.push(rec);
                    }
                }
            }
        }
        for (key, r) in conflicts {
            self.seen.insert(key, None);
            out.rejects += 1;
            self.pending.push(r);
        }
        if self.pending.len() >= self.cfg.flush_records
            && let Err(error) = self.start_flush()
        {
            // The batch is durable all the same; the next flush or append tries again.
            tracing::warn!(%error, "Starting a Parquet flush failed");
        }
        Ok(out)
    }

    /// Finishes a flush that failed before ([`Store::start_flush`] hands a failed background
    /// flush back), and collects a background flush that has ended. Appends and flushes call
    /// it first, so segments reach Parquet in order.
    ///
    /// # Errors
    /// [`StoreError`] when the unfinished flush fails again; it stays unfinished.
    pub fn heal(&mut self) -> Result<(), StoreError> {
        if self.flushing.as_ref().is_some_and(|h| h.is_finished()) {
            self.wait_flush()?;
        }
        if let Some(retired) = self.unfinished.take() {
            if let Err(error) = retired.finish() {
                self.unfinished = Some(retired);
                return Err(error);
            }
            self.evict();
        }
        Ok(())
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
        self.heal()?;
        if let Some(retired) = self.retire()? {
            if let Err(error) = retired.finish() {
                self.unfinished = Some(retired);
                return Err(error);
            }
            self.evict();
        }
        Ok(())
    }

    /// [`Store::flush`] on a thread of its own: starts a new WAL segment now and leaves the
    /// Parquet files, the resume point and the old segment's deletion to the thread, so the
    /// caller can go on appending (and acknowledging) at once. Waits for the previous
    /// background flush first. Its failure is returned by the next append or flush, which
    /// retry it.
    ///
    /// # Errors
    /// [`StoreError`] when the previous background flush failed or the new segment cannot be
    /// created.
    pub fn start_flush(&mut self) -> Result<(), StoreError> {
        self.wait_flush()?;
        self.heal()?;
        if let Some(retired) = self.retire()? {
            let handle = std::thread::Builder::new()
                .name("store-flush".into())
                .spawn(move || {
                    let outcome = retired.finish();
                    (retired, outcome)
                });
            match handle {
                Ok(handle) => self.flushing = Some(handle),
                Err(e) => return Err(StoreError::io(&self.cfg.root, e)),
            }
        }
        Ok(())
    }

    /// Waits for the background flush, if one runs, and returns its outcome; a failed one is
    /// kept to be retried ([`Store::heal`]).
    fn wait_flush(&mut self) -> Result<(), StoreError> {
        let Some(handle) = self.flushing.take() else {
            return Ok(());
        };
        match handle.join() {
            Ok((_, Ok(()))) => {
                self.evict();
                Ok(())
            }
            Ok((retired, Err(error))) => {
                self.unfinished = Some(retired);
                Err(error)
            }
            // Its records are still in the segment, which a restart replays.
            Err(_) => Err(StoreError::io(
                &self.cfg.root,
                std::io::Error::other("the background flush panicked"),
            )),
        }
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
        let segment = self
            .wal
            .rotate()
            .map_err(|e| StoreError::commit(&wal_dir, e))?;
        self.resume_dirty = false;
        Ok(Some(Retired {
            root: self.cfg.root.clone(),
            node: self.cfg.node.clone(),
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
        write_segment(&self.cfg.root, &self.cfg.node, segment, records)?;
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
                let dir = partition_dir(&self.cfg.root, table, day);
                merged += files::compact_partition(&dir, &self.cfg.node, 2)?;
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
        files::ping_keys(&partition_dir(root, PINGS, day), |u, t, _, _| {
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

/// The rejection kept for a ping whose unit already has a fix at its time elsewhere. The
/// message's own bytes are not carried this far, so the payload is the fix as OwnTracks JSON
/// and the topic names the station and unit.
fn conflict(p: &StoredPing) -> Rejection {
    let ping = &p.ping;
    let payload = serde_json::json!({
        "_type": "location",
        "tst": ping.fix_time().div_euclid(1000),
        "lat": ping.lat(),
        "lon": ping.lon(),
    });
    Rejection {
        recv_time: ping.recv_time(),
        topic: format!("{}/{}", ping.station(), ping.unit()),
        reason: crate::ping::RejectReason::ConflictingFix,
        detail: format!(
            "unit {} already has a fix at {} ms at another position; the first one stands",
            ping.unit(),
            ping.fix_time()
        ),
        payload: payload.to_string().into_bytes(),
    }
}

/// The day partition whose dedupe keys hold a record's key.
fn key_day(rec: &Record) -> i64 {
    match rec {
        Record::Ping(p) => day_of(p.ping.fix_time()),
        Record::Reject(r) => day_of(r.recv_time),
        Record::Event(e) => day_of(e.time_ms),
    }
}

/// Writes one segment's records as `part-<segment>-<node>.parquet` in each partition they
/// touch. Returns the partition directories written.
fn write_segment(
    root: &Path,
    node: &str,
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
    let name = files::file_name(node, segment, segment);
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
