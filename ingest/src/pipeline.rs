//! Wiring: source → stage (decode, validate, jump check, geofence, events) → store thread →
//! acks, with live state fed from the stage.
//!
//! ```text
//! sources --intake(Delivery)--> stage --mpsc(Batch)--> store thread --watch(seq)--> source acks
//!                                    \--> sink::live (broadcast, never blocks)
//! ```
//! The stage feeds accepted pings to the [`EventEngine`] (when [`Stages::with_events`] gave it
//! one) and ticks the engine every [`TICK_EVERY`] with the wall clock, the one clock read of
//! the stage. Events go to live state and, as [`Record::Event`]s in the same batches as the
//! pings, through the WAL into the `events` table: the events a message released are durable
//! before the message is acknowledged. Provisional events of the engine's live path go to live
//! state only.
//!
//! The stage's state (event engine and jump detector) survives restarts and crashes. The WAL
//! holds, besides the records, every engine input in order (the pings are records already;
//! ticks that changed the engine are [`WalEntry::Tick`]s) and, every [`SNAPSHOT_EVERY`] and
//! at shutdown, a [`WalEntry::Snapshot`] of the stage. On start the stage restores the last
//! snapshot and replays the inputs after it ([`Store::resume`]): the replay gives exactly the
//! events it gave the first time, which the store already holds and drops as duplicates, plus
//! those a crash kept from being stored (they go to the store, not to live state, which had
//! them). So no unit re-enters its fences after a restart and no crossing is lost or repeated.
//! Only fixes still in the reorder buffer when the process stops for good never give events.
//!
//! Shutdown: only the source watches the token. It returns and drops its sender; the stage sees
//! the channel close, hands on its last batch with a closing snapshot (fixes still waiting in
//! the reorder buffer stay there, to leave it after the restart as they would have without
//! one) and returns; the store thread flushes and exits.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use h3o::Resolution;
use model::jurisdiction::{Checkpoint, RosterEntry};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::decode::{self, DecodeConfig, Message, RawPing};
use crate::events::snapshot::{Reader, Writer};
use crate::events::{
    Event, EventConfig, EventEngine, EventsError, FixInput, SnapshotError, Ticked,
};
use crate::geofence::index::{Assignment, GeofenceIndex};
use crate::ping::{EpochMillis, RejectReason, Rejection};
use crate::sink::live::{LiveState, OfflineSweep};
use crate::source::intake::{Body, Delivery};
use crate::store::{Input, Record, Store, StoreConfig, StoredEvent, StoredPing, WalEntry};
use crate::validate::{self, JumpDetector, ValidateConfig};

pub use crate::channels::{ChannelConfig, WhenFull};

/// Counters for `/metrics` and the demo's log.
#[derive(Debug, Default)]
pub struct IngestStats {
    /// Messages taken from the source.
    pub received: AtomicU64,
    /// Pings newly stored.
    pub stored: AtomicU64,
    /// Records dropped as already stored.
    pub duplicates: AtomicU64,
    /// Geofence and duty events newly stored.
    pub events: AtomicU64,
    /// Last-will (offline) messages.
    pub offline: AtomicU64,
    /// Highest durable sequence number.
    pub durable_seq: AtomicU64,
    /// Records durable in the WAL but not yet in Parquet.
    pub wal_pending: AtomicU64,
    /// Day partitions removed by the retention purge.
    pub purged_partitions: AtomicU64,
    /// Rejections by reason.
    pub rejected: Mutex<BTreeMap<&'static str, u64>>,
    /// Pings refused by the store because their unit has a fix at that time elsewhere.
    pub conflicts: AtomicU64,
    /// True while the store refuses writes and ingest waits for it (nothing is acknowledged
    /// meanwhile); see [`STORE_RETRY_MAX`].
    pub store_paused: AtomicBool,
    /// Times the store refused a write and ingest paused.
    pub store_pauses: AtomicU64,
    /// The store's last error while paused, for `/ready`.
    pub store_error: Mutex<Option<String>>,
    /// Why ingest stopped for good, if it did: the process must exit with a failure.
    pub fatal: Mutex<Option<String>>,
}

impl IngestStats {
    fn reject(&self, reason: RejectReason) {
        if let Ok(mut m) = self.rejected.lock() {
            *m.entry(reason.as_str()).or_default() += 1;
        }
    }

    /// Total rejections.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.lock().map(|m| m.values().sum()).unwrap_or(0)
    }

    /// Records why ingest stops for good (the first reason given wins).
    pub fn fail(&self, reason: String) {
        if let Ok(mut f) = self.fatal.lock()
            && f.is_none()
        {
            *f = Some(reason);
        }
    }

    /// Why ingest stopped for good, if it did.
    pub fn failure(&self) -> Option<String> {
        self.fatal.lock().ok().and_then(|f| f.clone())
    }

    /// The store's error while ingest is paused on it.
    pub fn store_error(&self) -> Option<String> {
        self.store_error.lock().ok().and_then(|e| e.clone())
    }

    fn set_store_error(&self, error: Option<String>) {
        self.store_paused.store(error.is_some(), Relaxed);
        if let Ok(mut e) = self.store_error.lock() {
            *e = error;
        }
    }
}

/// The pure per-message work, shared by the MQTT path and imports. Like decode, validate and
/// the geofence index it uses, it does no IO and reads no clock.
pub struct Stages {
    /// Decode settings.
    pub decode: DecodeConfig,
    /// Validate settings.
    pub validate: ValidateConfig,
    /// Fence index (beats and zones).
    pub fences: Arc<GeofenceIndex>,
    /// Catalog version recorded with each ping.
    pub fence_version: u32,
    /// H3 resolution of the stored `cell` column.
    pub store_res: Resolution,
    /// Maximum plausible speed per unit (km/h); others use `default_max_kmh`.
    pub max_kmh: HashMap<String, f64>,
    /// Maximum plausible speed for units not in `max_kmh`.
    pub default_max_kmh: f64,
    jumps: JumpDetector,
    /// Fed by [`Stages::message`] only (imports through [`Stages::location`] make no events).
    events: Option<EventEngine>,
}

/// What one message turned into.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// An accepted ping, with what the event engine made of it.
    Ping {
        /// The ping to store.
        ping: StoredPing,
        /// Events of the unit's fixes that left the engine's reorder buffer.
        events: Vec<Event>,
        /// Provisional events of the engine's live path, for live state only.
        provisional: Vec<Event>,
        /// The engine's out-of-zone verdict for the unit
        /// ([`EventEngine::out_of_zone`]); false without an engine.
        out_of_zone: bool,
    },
    /// A refused message, to store.
    Reject(Rejection),
    /// The unit's last will.
    Offline {
        /// Station id.
        station: String,
        /// Unit id.
        unit: String,
    },
}

impl Stages {
    /// Builds the stages.
    pub fn new(
        decode: DecodeConfig,
        validate: ValidateConfig,
        fences: Arc<GeofenceIndex>,
        fence_version: u32,
        store_res: Resolution,
    ) -> Self {
        Stages {
            decode,
            validate,
            fences,
            fence_version,
            store_res,
            max_kmh: HashMap::new(),
            default_max_kmh: 200.0,
            jumps: JumpDetector::new(),
            events: None,
        }
    }

    /// Adds an [`EventEngine`] over the stages' own fence index, fed by
    /// [`Stages::message`].
    ///
    /// # Errors
    /// [`EventsError`] when the roster does not fit the catalog or the time zone.
    pub fn with_events(
        mut self,
        checkpoints: &[Checkpoint],
        roster: &[RosterEntry],
        config: EventConfig,
    ) -> Result<Self, EventsError> {
        let engine = EventEngine::new(self.fences.clone(), checkpoints, roster, config)?;
        self.events = Some(engine);
        Ok(self)
    }

    /// Processes one input of the intake: an MQTT message is decoded, a gateway's fix goes
    /// straight to validation, a gateway's refusal is kept.
    pub fn input(&mut self, body: Body, recv_time: EpochMillis) -> Outcome {
        match body {
            Body::Mqtt { topic, payload } => self.message(&topic, &payload, recv_time),
            Body::Fix { raw, origin, frame } => self.fix(*raw, &origin, &frame, recv_time),
            Body::Reject(r) => Outcome::Reject(r),
        }
    }

    /// Validates one decoded fix (`topic` and `payload` are kept if it is refused); an
    /// accepted ping also goes through the event engine, if there is one.
    pub fn fix(
        &mut self,
        raw: RawPing,
        topic: &str,
        payload: &[u8],
        recv_time: EpochMillis,
    ) -> Outcome {
        match self.accept(raw, topic, payload, recv_time) {
            Ok((ping, assignment)) => {
                let (pushed, out_of_zone) = match &mut self.events {
                    Some(engine) => {
                        let fix = FixInput::from_ping(&ping.ping, Some(assignment));
                        let pushed = engine.push(&fix);
                        (Some(pushed), engine.out_of_zone(ping.ping.unit()))
                    }
                    None => (None, false),
                };
                let (events, provisional) =
                    pushed.map_or_else(Default::default, |p| (p.events, p.provisional));
                Outcome::Ping {
                    ping,
                    events,
                    provisional,
                    out_of_zone,
                }
            }
            Err(r) => Outcome::Reject(r),
        }
    }

    /// Decodes and processes one MQTT message; an accepted ping also goes through the event
    /// engine, if there is one.
    pub fn message(&mut self, topic: &str, payload: &[u8], recv_time: EpochMillis) -> Outcome {
        match decode::decode(topic, payload, &self.decode) {
            Ok(Message::Location(raw)) => self.fix(raw, topic, payload, recv_time),
            Ok(Message::Offline { station, unit, .. }) => Outcome::Offline { station, unit },
            Ok(Message::Ignored { kind, .. }) => Outcome::Reject(Rejection {
                recv_time,
                topic: topic.to_owned(),
                reason: RejectReason::IgnoredType,
                detail: format!("_type {kind:?} is not a location"),
                payload: payload.to_vec(),
            }),
            Err(e) => Outcome::Reject(e.to_rejection(topic, payload, recv_time)),
        }
    }

    /// Advances the event engine to `now` ([`EventEngine::tick`]); empty without an engine.
    pub fn tick(&mut self, now: EpochMillis) -> Ticked {
        self.events
            .as_mut()
            .map(|e| e.tick(now))
            .unwrap_or_default()
    }

    /// The state that the next messages depend on, the event engine's and the jump
    /// detector's, as bytes for [`Stages::restore`]; `None` without an engine (the stage then
    /// has nothing worth keeping).
    #[must_use]
    pub fn snapshot(&self) -> Option<Vec<u8>> {
        let engine = self.events.as_ref()?;
        let mut w = Writer::default();
        w.bytes(&engine.snapshot());
        let refs = self.jumps.references();
        w.len(refs.len());
        for (unit, time, lat, lon) in refs {
            w.str(unit);
            w.i64(time);
            w.f64(lat);
            w.f64(lon);
        }
        Some(w.into_bytes())
    }

    /// Restores a [`Stages::snapshot`] (into stages built with the same jurisdiction);
    /// without an engine there is nothing to restore.
    ///
    /// # Errors
    /// [`SnapshotError`] when `bytes` is not a whole snapshot; the stages are then left as
    /// they were.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let Some(engine) = &mut self.events else {
            return Ok(());
        };
        let mut r = Reader::new(bytes);
        let corrupt = SnapshotError::Corrupt;
        let engine_state = r.bytes().ok_or(corrupt.clone())?;
        let mut jumps = JumpDetector::new();
        for _ in 0..r.len().ok_or(corrupt.clone())? {
            let unit = r.str().ok_or(corrupt.clone())?;
            let (time, lat, lon) = (r.i64(), r.f64(), r.f64());
            let (Some(time), Some(lat), Some(lon)) = (time, lat, lon) else {
                return Err(corrupt);
            };
            jumps.set_reference(unit, time, lat, lon);
        }
        if !r.is_empty() {
            return Err(corrupt);
        }
        engine.restore(engine_state)?;
        self.jumps = jumps;
        Ok(())
    }

    /// Feeds a stored ping through the jump detector and the event engine again, as
    /// [`Stages::message`] did when it arrived (its flags are the stored ones); the replay of
    /// a resume. Returns the durable events.
    pub fn replay(&mut self, stored: &StoredPing) -> Vec<Event> {
        let max = self.max_kmh_of(stored.ping.unit());
        self.jumps.check(&mut stored.ping.clone(), max);
        self.events
            .as_mut()
            .map(|e| e.push(&FixInput::from_ping(&stored.ping, None)).events)
            .unwrap_or_default()
    }

    fn max_kmh_of(&self, unit: &str) -> f64 {
        self.max_kmh
            .get(unit)
            .copied()
            .unwrap_or(self.default_max_kmh)
    }

    /// Validates, checks for jumps and assigns fences to one decoded fix. `topic` and
    /// `payload` are only kept if it is refused.
    pub fn location(
        &mut self,
        raw: RawPing,
        topic: &str,
        payload: &[u8],
        recv_time: EpochMillis,
    ) -> Record {
        match self.accept(raw, topic, payload, recv_time) {
            Ok((ping, _)) => Record::Ping(ping),
            Err(r) => Record::Reject(r),
        }
    }

    /// [`Stages::location`] with the fence indices of the assignment.
    fn accept(
        &mut self,
        raw: RawPing,
        topic: &str,
        payload: &[u8],
        recv_time: EpochMillis,
    ) -> Result<(StoredPing, Assignment), Rejection> {
        let mut ping = validate::validate(raw, recv_time, &self.validate)
            .map_err(|e| e.to_rejection(topic, payload, recv_time))?;
        let max = self.max_kmh_of(ping.unit());
        self.jumps.check(&mut ping, max);
        let a = self
            .fences
            .assign_with_cell(ping.lat(), ping.lon(), self.store_res);
        let id = |f: Option<&crate::geofence::Fence>| f.map(|f| f.id.clone());
        let stored = StoredPing {
            cell: a.cell.map_or(0, u64::from),
            beat: id(a.beat.and_then(|b| self.fences.beat(b))),
            zone: id(a.zone.and_then(|z| self.fences.zone(z))),
            fence_version: self.fence_version,
            ping,
        };
        Ok((stored, a))
    }
}

/// A batch for the store sink: WAL entries and the last sequence number they cover.
#[derive(Debug)]
struct Batch {
    upto: u64,
    entries: Vec<WalEntry>,
}

/// Channel sizes and timing of the pipeline.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Store settings.
    pub store: StoreConfig,
    /// Channel capacities.
    pub channels: ChannelConfig,
    /// Flush the WAL to Parquet at least this often.
    pub flush_interval: Duration,
    /// Keep pings and rejections this long (by UTC day), purging older partitions at start and
    /// every hour; `None` keeps everything.
    pub retention: Option<Duration>,
    /// How often live state marks silent units offline ([`OfflineSweep`]).
    pub sweep_every: Duration,
}

/// How often the retention purge runs.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// First wait before retrying a write the store refused; it doubles up to
/// [`STORE_RETRY_MAX`].
const STORE_RETRY_FIRST: Duration = Duration::from_millis(200);

/// Longest wait between retries of a refused write: how long ingest may stay paused after
/// the cause (a full disk, a read-only file system) has passed.
pub const STORE_RETRY_MAX: Duration = Duration::from_secs(2);

/// How often the stage ticks the event engine with the wall clock: the resolution of offline
/// alerts and of releasing fixes from the reorder buffer when a unit goes quiet.
pub const TICK_EVERY: Duration = Duration::from_secs(1);

/// How often (at most) the stage writes a snapshot of its state into the WAL, when the
/// engine changed: a restart replays at most this much of the inputs. A snapshot is about
/// 1 KB per unit.
pub const SNAPSHOT_EVERY: Duration = Duration::from_secs(10);

/// A running pipeline.
#[derive(Debug)]
pub struct Ingest {
    /// Counters.
    pub stats: Arc<IngestStats>,
    /// Live state fed by the stage.
    pub live: Arc<LiveState>,
}

/// Starts the [`Stage`] task, the [`StoreSink`] thread and the [`OfflineSweep`] of `live`.
/// Messages come from `input`; the highest durable sequence number goes to `durable`. All
/// three end when `input` closes. A store failure cancels `fatal` so the process stops before
/// acknowledging anything it could not keep.
///
/// # Errors
/// [`crate::store::StoreError`] when the store cannot be opened (recovery failed).
pub fn spawn(
    cfg: PipelineConfig,
    mut stages: Stages,
    live: Arc<LiveState>,
    input: mpsc::Receiver<Delivery>,
    durable: watch::Sender<u64>,
    tracker: &TaskTracker,
    fatal: CancellationToken,
) -> Result<Ingest, crate::store::StoreError> {
    let stats = Arc::new(IngestStats::default());
    let mut store = Store::open(cfg.store.clone())?;
    let recovered = resume(&mut stages, &mut store)?;
    stats.events.fetch_add(recovered as u64, Relaxed);
    let (batches, queued) = mpsc::channel::<Batch>(cfg.channels.store_queue.max(1));
    let stage = Stage {
        stages,
        live: live.clone(),
        stats: stats.clone(),
        input,
        batch: cfg.channels.batch.max(1),
        store: batches,
        upto: 0,
        unsaved: false,
        saved_at: Instant::now(),
    };
    let sink = StoreSink {
        store,
        stats: stats.clone(),
        input: queued,
        durable,
        fatal,
        flush_every: cfg.flush_interval,
        retention: cfg.retention,
        flushed_at: Instant::now(),
        purged_at: None,
    };
    // The sweep stops with the stage, so it too ends when the source does.
    let stage_done = CancellationToken::new();
    tracker.spawn(OfflineSweep::new(live.clone(), cfg.sweep_every).run(stage_done.clone()));
    tracker.spawn(async move {
        let _done = stage_done.drop_guard();
        stage.run().await;
    });
    let handle = tokio::runtime::Handle::current();
    drop(tracker.spawn_blocking(move || sink.run(&handle)));
    Ok(Ingest { stats, live })
}

/// The stage task: runs the source's messages through [`Stages`] in batches, feeds live
/// state, and hands WAL entries to the [`StoreSink`]; ticks the event engine every
/// [`TICK_EVERY`] and snapshots it every [`SNAPSHOT_EVERY`] and when its input closes.
struct Stage {
    stages: Stages,
    live: Arc<LiveState>,
    stats: Arc<IngestStats>,
    input: mpsc::Receiver<Delivery>,
    /// Most messages taken from `input` at once.
    batch: usize,
    /// To the store sink; bounded, so a slow store slows the stage
    /// ([`ChannelConfig::STORE_WHEN_FULL`]).
    store: mpsc::Sender<Batch>,
    /// The highest sequence number handed on; batches of tick events repeat it.
    upto: u64,
    /// Engine inputs arrived since the last snapshot.
    unsaved: bool,
    /// When the last snapshot was taken.
    saved_at: Instant,
}

impl Stage {
    /// Runs until `input` closes, then hands on a closing snapshot and returns; returns
    /// early if the store sink has gone (it recorded why).
    async fn run(mut self) {
        let mut buf = Vec::with_capacity(self.batch);
        let mut tick = tokio::time::interval(TICK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let entries = tokio::select! {
                // Cancel safe: when the tick wins, no message was taken.
                n = self.input.recv_many(&mut buf, self.batch) => {
                    if n == 0 {
                        self.close().await;
                        return;
                    }
                    self.messages(&mut buf)
                }
                _ = tick.tick() => {
                    let entries = self.tick(model::now_ms());
                    if entries.is_empty() {
                        continue;
                    }
                    entries
                }
            };
            let batch = Batch {
                upto: self.upto,
                entries,
            };
            if self.store.send(batch).await.is_err() {
                return;
            }
        }
    }

    /// Processes (and empties) `buf`: live state is fed at once, the records and the events
    /// they released are returned for the store.
    fn messages(&mut self, buf: &mut Vec<Delivery>) -> Vec<WalEntry> {
        let mut entries = Vec::with_capacity(buf.len());
        for d in buf.drain(..) {
            self.upto = d.seq;
            self.stats.received.fetch_add(1, Relaxed);
            match self.stages.input(d.body, d.recv_time) {
                Outcome::Ping {
                    ping,
                    events,
                    provisional,
                    out_of_zone,
                } => {
                    self.live.update(&ping, out_of_zone);
                    for event in &provisional {
                        self.live.publish(event);
                    }
                    entries.push(WalEntry::Record(Record::Ping(ping)));
                    publish(&self.live, events, &mut entries);
                    self.unsaved = true;
                }
                Outcome::Reject(r) => {
                    self.stats.reject(r.reason);
                    entries.push(WalEntry::Record(Record::Reject(r)));
                }
                Outcome::Offline { station, unit } => {
                    self.stats.offline.fetch_add(1, Relaxed);
                    self.live.offline(&station, &unit, d.recv_time);
                }
            }
        }
        entries
    }

    /// Ticks the engine at `now`: its events, the tick itself if it changed the engine, and
    /// a snapshot when one is due.
    fn tick(&mut self, now: EpochMillis) -> Vec<WalEntry> {
        let mut entries = Vec::new();
        let ticked = self.stages.tick(now);
        for event in &ticked.provisional {
            self.live.publish(event);
        }
        if ticked.changed {
            entries.push(WalEntry::Tick(now));
            self.unsaved = true;
        }
        publish(&self.live, ticked.events, &mut entries);
        if self.unsaved
            && self.saved_at.elapsed() >= SNAPSHOT_EVERY
            && let Some(state) = self.stages.snapshot()
        {
            entries.push(WalEntry::Snapshot {
                closed: false,
                state,
            });
            (self.unsaved, self.saved_at) = (false, Instant::now());
        }
        entries
    }

    /// Hands on the closing snapshot. Fixes still in the reorder buffer stay there, to leave
    /// it after the restart.
    async fn close(self) {
        if let Some(state) = self.stages.snapshot() {
            let entries = vec![WalEntry::Snapshot {
                closed: true,
                state,
            }];
            let _ = self
                .store
                .send(Batch {
                    upto: self.upto,
                    entries,
                })
                .await;
        }
    }
}

/// The store thread: makes the stage's batches durable in the WAL and reports how far to the
/// source, flushes the WAL to Parquet every `flush_every` and runs the retention purge.
struct StoreSink {
    store: Store,
    stats: Arc<IngestStats>,
    input: mpsc::Receiver<Batch>,
    /// The highest durable sequence number, for the source's acks; `send_replace` never
    /// waits, so the store never depends on the source.
    durable: watch::Sender<u64>,
    /// Cancelled when ingest must stop for good (see [`StoreSink::append`]).
    fatal: CancellationToken,
    flush_every: Duration,
    retention: Option<Duration>,
    flushed_at: Instant,
    purged_at: Option<Instant>,
}

impl StoreSink {
    /// Runs on a blocking thread until the stage's channel closes, then flushes and returns;
    /// or stops ingest when a batch cannot be stored.
    fn run(mut self, handle: &tokio::runtime::Handle) {
        loop {
            match handle.block_on(tokio::time::timeout(self.flush_every, self.input.recv())) {
                Ok(Some(batch)) => {
                    if let Err(reason) = self.append(batch) {
                        tracing::error!("{reason}");
                        self.stats.fail(reason);
                        self.fatal.cancel();
                        return;
                    }
                }
                Ok(None) => {
                    if let Err(error) = self.store.flush() {
                        tracing::error!(%error, "Final flush failed; the WAL keeps the data");
                    }
                    return;
                }
                Err(_) => {}
            }
            // Failures here are retried: an append finishes an unfinished flush before it
            // goes on, and pauses while it cannot.
            if self.flushed_at.elapsed() >= self.flush_every {
                self.flushed_at = Instant::now();
                if let Err(error) = self.store.start_flush() {
                    tracing::warn!(%error, "Parquet flush failed; the WAL keeps the data");
                }
            }
            self.purge();
            self.stats
                .wal_pending
                .store(self.store.pending() as u64, Relaxed);
        }
    }

    /// Makes one batch durable and reports it to the source for acknowledgement.
    ///
    /// A write the store refuses for a passing cause (a full disk, a file system remounted
    /// read-only, an IO error) pauses ingest: the same batch is tried again, with a growing
    /// wait up to [`STORE_RETRY_MAX`], until it goes through. Meanwhile nothing is
    /// acknowledged, the stage waits on the full store queue, and the broker keeps the
    /// messages (its receive maximum stops it sending more), so nothing is lost and ingest
    /// resumes by itself when the cause is gone. Returns why ingest must stop instead: the
    /// store's WAL vanished, or shutdown came while paused (the broker and the WAL keep what
    /// was not stored; the next start takes it).
    fn append(&mut self, mut batch: Batch) -> Result<(), String> {
        let st = &self.stats;
        let mut wait = STORE_RETRY_FIRST;
        loop {
            match self.store.append_entries(&mut batch.entries) {
                Ok(out) => {
                    if st.store_paused.load(Relaxed) {
                        tracing::info!("The store takes writes again; ingest resumes");
                        st.set_store_error(None);
                    }
                    st.stored.fetch_add(out.pings as u64, Relaxed);
                    st.events.fetch_add(out.events as u64, Relaxed);
                    st.duplicates.fetch_add(out.duplicates as u64, Relaxed);
                    if out.conflicts > 0 {
                        st.conflicts.fetch_add(out.conflicts as u64, Relaxed);
                        st.reject(RejectReason::ConflictingFix);
                    }
                    st.durable_seq.store(batch.upto, Relaxed);
                    if batch.upto > 0 {
                        self.durable.send_replace(batch.upto);
                    }
                    return Ok(());
                }
                Err(error) if error.is_permanent() => {
                    return Err(format!("Store failed; ingest stops: {error}"));
                }
                Err(error) => {
                    if !st.store_paused.load(Relaxed) {
                        st.store_pauses.fetch_add(1, Relaxed);
                        tracing::error!(
                            %error,
                            "The store refuses writes; ingest pauses (nothing is acknowledged, the broker keeps the messages) and retries"
                        );
                    }
                    st.set_store_error(Some(error.to_string()));
                    if self.fatal.is_cancelled() {
                        return Err(format!(
                            "Stopped while the store refused writes ({error}); unacknowledged messages stay with the broker"
                        ));
                    }
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(STORE_RETRY_MAX);
                }
            }
        }
    }

    /// Removes the day partitions older than the retention, at start and every
    /// [`PURGE_EVERY`]; a failure waits for the next round.
    fn purge(&mut self) {
        let Some(keep) = self.retention else { return };
        if self.purged_at.is_some_and(|t| t.elapsed() < PURGE_EVERY) {
            return;
        }
        self.purged_at = Some(Instant::now());
        let cutoff = model::now_ms() - keep.as_millis() as i64;
        match self.store.purge_before(cutoff) {
            Ok(removed) => {
                self.stats
                    .purged_partitions
                    .fetch_add(removed as u64, Relaxed);
                if removed > 0 {
                    tracing::info!(removed, "Retention purge removed old partitions");
                }
            }
            Err(error) => tracing::warn!(%error, "Retention purge failed; next hour again"),
        }
    }
}

/// Sends `events` to live state and appends them to `entries` for the store.
fn publish(live: &LiveState, events: Vec<Event>, entries: &mut Vec<WalEntry>) {
    for event in events {
        live.publish(&event);
        entries.push(event_entry(&event));
    }
}

fn event_entry(event: &Event) -> WalEntry {
    WalEntry::Record(Record::Event(StoredEvent::from_event(event)))
}

/// Restores the stage from the store's resume point and replays the engine inputs after it.
/// The replay's events go to the store only: it drops those it already holds and keeps the
/// ones a crash lost between the engine and the WAL; live state had them all before. Then
/// opens the new run with a snapshot. Returns the events newly stored.
fn resume(stages: &mut Stages, store: &mut Store) -> Result<usize, crate::store::StoreError> {
    if stages.snapshot().is_none() {
        return Ok(0);
    }
    let point = store.resume();
    let mut entries = Vec::new();
    if let Some(state) = &point.snapshot {
        match stages.restore(state) {
            Ok(()) => {
                for input in &point.inputs {
                    let events = match input {
                        Input::Ping(p) => stages.replay(p),
                        Input::Tick(now) => stages.tick(*now).events,
                    };
                    entries.extend(events.iter().map(event_entry));
                }
                tracing::info!(
                    inputs = point.inputs.len(),
                    "Event engine state restored and the inputs after it replayed"
                );
            }
            Err(error) => {
                tracing::warn!(%error, "Event engine state unreadable; starting empty");
            }
        }
    }
    if let Some(state) = stages.snapshot() {
        entries.push(WalEntry::Snapshot {
            closed: false,
            state,
        });
    }
    Ok(store.append_entries(&mut entries)?.events)
}
