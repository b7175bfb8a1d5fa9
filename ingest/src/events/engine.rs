//! [`EventEngine`]: per-unit reorder buffer, hysteresis, sparse crossings, checkpoint visits and
//! duty alerts.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveTime};
use chrono_tz::Tz;
use model::jurisdiction::{Checkpoint, RosterEntry};

use crate::geofence::{Assignment, FenceIdx, GeofenceIndex};
use crate::ping::{EpochMillis, Flags, Ping};
use crate::validate::haversine_m;

use super::config::{EventConfig, ms};
use super::duty::{EventsError, Shift, shift_at, shifts_by_unit};
use super::event::{Event, EventKind, Layer};
use super::hysteresis::{Tracker, Transition};
use super::reorder::{Disposition, Reorder};
use super::segment::{self, End};
use super::snapshot::{FORMAT, Reader, SnapshotError, Writer};

/// One fix as the engine needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FixInput<'a> {
    /// Unit id.
    pub unit: &'a str,
    /// Fix time, ms since the epoch.
    pub fix_time: EpochMillis,
    /// WGS-84 latitude, degrees.
    pub lat: f64,
    /// WGS-84 longitude, degrees.
    pub lon: f64,
    /// Quality flags: untrusted fixes (low accuracy, jump) move no state; `LATE` ones are late.
    pub flags: Flags,
    /// Beat and zone from the same [`GeofenceIndex`] the engine holds, when the caller has
    /// already assigned the fix; `None` makes the engine assign it.
    pub assignment: Option<Assignment>,
}

impl<'a> FixInput<'a> {
    /// The fix of a validated ping, with its assignment if the caller has one.
    #[must_use]
    pub fn from_ping(ping: &'a Ping, assignment: Option<Assignment>) -> Self {
        Self {
            unit: ping.unit(),
            fix_time: ping.fix_time(),
            lat: ping.lat(),
            lon: ping.lon(),
            flags: ping.flags(),
            assignment,
        }
    }
}

/// The result of [`EventEngine::push`].
#[derive(Debug, Clone, PartialEq)]
pub struct Pushed {
    /// What happened to the fix itself.
    pub disposition: Disposition,
    /// Events of the unit's fixes that left the reorder buffer (empty unless buffered).
    pub events: Vec<Event>,
    /// Provisional enters and exits of the live path, for live subscribers only (empty
    /// unless [`EventConfig::live_window_s`] is shorter than the reorder window).
    pub provisional: Vec<Event>,
}

/// The result of [`EventEngine::tick`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ticked {
    /// Durable events: of the fixes the tick released, and offline and crew alerts.
    pub events: Vec<Event>,
    /// Provisional enters and exits of the live path.
    pub provisional: Vec<Event>,
    /// False when the tick left every unit's state as it was (it released no fix and raised
    /// no alert), so replaying the inputs may skip it.
    pub changed: bool,
}

/// A fix waiting in, or released from, the reorder buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Fix {
    end: End,
    flags: Flags,
}

/// An open stay within a checkpoint's radius.
#[derive(Debug, Clone, Copy)]
struct Visit {
    arrival_ms: EpochMillis,
    last_ms: EpochMillis,
}

/// Where a unit stopped.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    time_ms: EpochMillis,
    lat: f64,
    lon: f64,
}

/// An out-of-zone spell within one shift.
#[derive(Debug, Clone, Copy)]
struct OutOfZone {
    shift: usize,
    since_ms: EpochMillis,
    alerted: bool,
}

/// The live path of one unit: a short reorder buffer and its own hysteresis trackers.
#[derive(Debug, Default)]
struct LivePath {
    reorder: Reorder<Fix>,
    beat: Tracker,
    zone: Tracker,
}

#[derive(Debug, Default)]
struct UnitState {
    reorder: Reorder<Fix>,
    /// Newest fix time pushed, late or not (a sign of life).
    last_seen_ms: Option<EpochMillis>,
    beat: Tracker,
    zone: Tracker,
    /// Last trusted fix fed to the machine.
    prev: Option<End>,
    /// Open checkpoint stays by checkpoint position.
    visits: HashMap<usize, Visit>,
    idle_anchor: Option<Anchor>,
    /// (shift, anchor time) of the last idle alert.
    idle_alerted: Option<(usize, EpochMillis)>,
    out_of_zone: Option<OutOfZone>,
    /// (shift, last fix time) of the last offline alert.
    offline_alerted: Option<(usize, Option<EpochMillis>)>,
    /// Shifts already alerted for their crew.
    crew_alerted: Vec<usize>,
    /// Provisional enters and exits (unused unless the live path runs).
    live: LivePath,
}

/// What the per-unit logic reads: everything but the unit map.
struct Ctx<'a> {
    unit: &'a str,
    index: &'a GeofenceIndex,
    checkpoints: &'a [Checkpoint],
    shifts: &'a [Shift],
    config: &'a EventConfig,
}

/// The per-unit event state machine. Pure: no IO and no clock; time comes from fix times and
/// the `now` of [`EventEngine::tick`].
///
/// Fixes go through a per-unit reorder buffer and reach the machine in fix-time order once the
/// unit's newest fix is [`EventConfig::reorder_window_s`] ahead (or a tick's `now` is).
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use geo::{MultiPolygon, polygon};
/// use h3o::Resolution;
/// use ingest::events::{Disposition, EventConfig, EventEngine, EventKind, FixInput};
/// use ingest::geofence::{Catalog, Fence, FenceKind, GeofenceIndex};
/// use ingest::ping::Flags;
///
/// let square = polygon![
///     (x: -87.70, y: 41.80), (x: -87.69, y: 41.80), (x: -87.69, y: 41.81), (x: -87.70, y: 41.81),
/// ];
/// let beat = Fence {
///     id: "0711".into(), name: "Beat 711".into(), station: "007".into(),
///     kind: FenceKind::Beat, geometry: MultiPolygon::new(vec![square]),
/// };
/// let catalog = Catalog { version: 1, beats: vec![beat], zones: vec![], repairs: vec![] };
/// let index = Arc::new(GeofenceIndex::build(&catalog, Resolution::Ten)?);
/// let config = EventConfig {
///     enter_fixes: 3, dwell_s: 30, reorder_window_s: 0, live_window_s: 0, sparse_gap_s: 60,
///     sparse_len_m: 300.0,
///     max_interpolate_s: 600, sample_step_m: 25.0, out_of_zone_grace_s: 300, idle_after_s: 300,
///     idle_radius_m: 50.0, offline_after_s: 180, min_crew: 2, timezone: chrono_tz::UTC,
/// };
/// let mut engine = EventEngine::new(index, &[], &[], config)?;
/// let mut events = Vec::new();
/// for t in [0, 15_000, 30_000] {
///     let fix = FixInput {
///         unit: "B12", fix_time: t, lat: 41.805, lon: -87.695, flags: Flags::empty(), assignment: None,
///     };
///     let pushed = engine.push(&fix);
///     assert_eq!(pushed.disposition, Disposition::Buffered);
///     events.extend(pushed.events);
/// }
/// assert_eq!(events.len(), 1);
/// assert!(matches!(&events[0].kind, EventKind::Enter { fence, .. } if fence == "0711"));
/// assert_eq!(events[0].time_ms, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct EventEngine {
    index: Arc<GeofenceIndex>,
    checkpoints: Vec<Checkpoint>,
    shifts: HashMap<String, Vec<Shift>>,
    config: EventConfig,
    units: HashMap<String, UnitState>,
}

impl EventEngine {
    /// An engine over `index` (whose catalog version the events carry), the jurisdiction's
    /// checkpoints and roster.
    ///
    /// # Errors
    /// [`EventsError::UnknownZone`] when a roster row names a zone the catalog lacks,
    /// [`EventsError::Time`] when its local times do not exist in [`EventConfig::timezone`].
    pub fn new(
        index: Arc<GeofenceIndex>,
        checkpoints: &[Checkpoint],
        roster: &[RosterEntry],
        config: EventConfig,
    ) -> Result<Self, EventsError> {
        let shifts = shifts_by_unit(roster, config.timezone, &index)?;
        Ok(Self {
            index,
            checkpoints: checkpoints.to_vec(),
            shifts,
            config,
            units: HashMap::new(),
        })
    }

    /// Takes one fix of any unit, in arrival order. Returns what became of it and the events
    /// of the unit's fixes that left the reorder buffer because of it.
    pub fn push(&mut self, fix: &FixInput<'_>) -> Pushed {
        let assignment = fix
            .assignment
            .unwrap_or_else(|| self.index.assign(fix.lat, fix.lon));
        let state = match self.units.get_mut(fix.unit) {
            Some(state) => state,
            None => self.units.entry(fix.unit.to_owned()).or_default(),
        };
        state.last_seen_ms = Some(
            state
                .last_seen_ms
                .map_or(fix.fix_time, |t| t.max(fix.fix_time)),
        );
        let mut pushed = Pushed {
            disposition: Disposition::Late,
            events: Vec::new(),
            provisional: Vec::new(),
        };
        if fix.flags.contains(Flags::LATE) {
            return pushed;
        }
        let buffered = Fix {
            end: End {
                time_ms: fix.fix_time,
                lat: fix.lat,
                lon: fix.lon,
                beat: assignment.beat,
                zone: assignment.zone,
            },
            flags: fix.flags,
        };
        let ctx = Ctx {
            unit: fix.unit,
            index: &self.index,
            checkpoints: &self.checkpoints,
            shifts: self.shifts.get(fix.unit).map_or(&[], Vec::as_slice),
            config: &self.config,
        };
        if let Some(live_ms) = self.config.live_window_ms() {
            let live = &mut state.live;
            if live.reorder.admit(fix.fix_time, buffered, live_ms) == Disposition::Buffered
                && let Some(newest) = live.reorder.newest()
            {
                for f in live.reorder.release(newest.saturating_sub(live_ms)) {
                    feed_live(&ctx, live, f, &mut pushed.provisional);
                }
            }
        }
        let window_ms = ms(self.config.reorder_window_s);
        pushed.disposition = state.reorder.admit(fix.fix_time, buffered, window_ms);
        if pushed.disposition == Disposition::Buffered
            && let Some(newest) = state.reorder.newest()
        {
            for f in state.reorder.release(newest.saturating_sub(window_ms)) {
                feed(&ctx, state, f, &mut pushed.events);
            }
        }
        pushed
    }

    /// Advances wall time to `now`: feeds every buffered fix at least a reorder window older
    /// than `now` (and, on the live path, a live window older), then raises the duty alerts
    /// that need no fix (offline, crew). Units are visited in id order.
    pub fn tick(&mut self, now: EpochMillis) -> Ticked {
        let upto = now.saturating_sub(ms(self.config.reorder_window_s));
        let live_upto = self.config.live_window_ms().map(|w| now.saturating_sub(w));
        let mut provisional = Vec::new();
        let mut released = false;
        let events = self.each_unit(|ctx, state, out| {
            let ready = state.reorder.release(upto);
            released |= !ready.is_empty();
            for f in ready {
                feed(ctx, state, f, out);
            }
            if let Some(live_upto) = live_upto {
                let ready = state.live.reorder.release(live_upto);
                released |= !ready.is_empty();
                for f in ready {
                    feed_live(ctx, &mut state.live, f, &mut provisional);
                }
            }
            crew_check(ctx, state, now, out);
            offline_check(ctx, state, now, out);
        });
        Ticked {
            changed: released || !events.is_empty(),
            events,
            provisional,
        }
    }

    /// The state of every unit as bytes: buffered fixes, hysteresis, open visits and stops,
    /// alerts already raised, and the live path. [`EventEngine::restore`] on an engine built
    /// with the same configuration continues exactly where this one stood: the same later
    /// inputs give the same events, none repeated and none lost.
    #[must_use]
    pub fn snapshot(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(FORMAT);
        let mut ids: Vec<&String> = self.units.keys().collect();
        ids.sort_unstable();
        w.len(ids.len());
        for unit in ids {
            let Some(state) = self.units.get(unit) else {
                continue;
            };
            w.str(unit);
            encode_unit(&self.ctx(unit), state, &mut w);
        }
        w.into_bytes()
    }

    /// Replaces every unit's state with the one in `bytes` (from [`EventEngine::snapshot`]).
    /// Fences, checkpoints and shifts are matched by id; ones the catalog or roster no longer
    /// has are dropped, and buffered fixes are assigned again with this engine's index.
    ///
    /// # Errors
    /// [`SnapshotError`] when `bytes` is not a whole snapshot of this format; the state is
    /// then left as it was.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let mut r = Reader::new(bytes);
        let found = r.u8().ok_or(SnapshotError::Corrupt)?;
        if found != FORMAT {
            return Err(SnapshotError::Format { found });
        }
        let mut units = HashMap::new();
        for _ in 0..r.len().ok_or(SnapshotError::Corrupt)? {
            let unit = r.str().ok_or(SnapshotError::Corrupt)?;
            let state = decode_unit(&self.ctx(unit), &mut r).ok_or(SnapshotError::Corrupt)?;
            units.insert(unit.to_owned(), state);
        }
        if !r.is_empty() {
            return Err(SnapshotError::Corrupt);
        }
        self.units = units;
        Ok(())
    }

    fn ctx<'a>(&'a self, unit: &'a str) -> Ctx<'a> {
        Ctx {
            unit,
            index: &self.index,
            checkpoints: &self.checkpoints,
            shifts: self.shifts.get(unit).map_or(&[], Vec::as_slice),
            config: &self.config,
        }
    }

    /// Feeds every buffered fix of every unit, whatever its age (the end of a replay or an
    /// import, or shutdown). Units are visited in id order.
    pub fn drain(&mut self) -> Vec<Event> {
        self.each_unit(|ctx, state, out| {
            for f in state.reorder.release_all() {
                feed(ctx, state, f, out);
            }
        })
    }

    /// The fences a unit is confirmed in (beat, zone), by fence id.
    #[must_use]
    pub fn confirmed(&self, unit: &str) -> (Option<&str>, Option<&str>) {
        let Some(state) = self.units.get(unit) else {
            return (None, None);
        };
        let id = |layer, idx| fence_id(&self.index, layer, idx);
        (
            state.beat.current().and_then(|b| id(Layer::Beat, b)),
            state.zone.current().and_then(|z| id(Layer::Zone, z)),
        )
    }

    /// True while the unit has an open out-of-zone spell that was alerted
    /// ([`EventKind::OutOfZone`]): it has not yet been confirmed back in its rostered zone,
    /// and its shift has not ended.
    #[must_use]
    pub fn out_of_zone(&self, unit: &str) -> bool {
        self.units
            .get(unit)
            .and_then(|s| s.out_of_zone)
            .is_some_and(|s| s.alerted)
    }

    /// Runs `f` for every unit that has state or a roster entry, in id order.
    fn each_unit(
        &mut self,
        mut f: impl FnMut(&Ctx<'_>, &mut UnitState, &mut Vec<Event>),
    ) -> Vec<Event> {
        for unit in self.shifts.keys() {
            if !self.units.contains_key(unit) {
                self.units.insert(unit.clone(), UnitState::default());
            }
        }
        let mut ids: Vec<&String> = self.units.keys().collect();
        ids.sort_unstable();
        let ids: Vec<String> = ids.into_iter().cloned().collect();
        let mut out = Vec::new();
        for unit in &ids {
            let Some(state) = self.units.get_mut(unit) else {
                continue;
            };
            let ctx = Ctx {
                unit,
                index: &self.index,
                checkpoints: &self.checkpoints,
                shifts: self.shifts.get(unit).map_or(&[], Vec::as_slice),
                config: &self.config,
            };
            f(&ctx, state, &mut out);
        }
        out
    }
}

impl Ctx<'_> {
    fn event(&self, time_ms: EpochMillis, kind: EventKind) -> Event {
        Event {
            unit: self.unit.to_owned(),
            time_ms,
            catalog_version: self.index.catalog().version,
            provisional: false,
            kind,
        }
    }
}

fn fence_id(index: &GeofenceIndex, layer: Layer, idx: FenceIdx) -> Option<&str> {
    match layer {
        Layer::Beat => index.beat(idx),
        Layer::Zone => index.zone(idx),
    }
    .map(|f| f.id.as_str())
}

/// One fix, in fix-time order, through the machine.
fn feed(ctx: &Ctx<'_>, state: &mut UnitState, fix: Fix, out: &mut Vec<Event>) {
    let t = fix.end.time_ms;
    crew_check(ctx, state, t, out);
    if fix.flags.is_untrusted() {
        return;
    }
    if let Some(prev) = state.prev
        && is_sparse(ctx.config, &prev, &fix.end)
    {
        for c in segment::crossings(ctx.index, &prev, &fix.end, ctx.config.sample_step_m) {
            if let Some(id) = fence_id(ctx.index, c.layer, c.fence) {
                let kind = EventKind::Crossing {
                    layer: c.layer,
                    fence: id.to_owned(),
                    entered_ms: c.entered_ms,
                    left_ms: c.left_ms,
                };
                out.push(ctx.event(c.entered_ms, kind));
            }
        }
    }
    enter_exit(ctx, [&mut state.beat, &mut state.zone], &fix.end, out);
    checkpoint_visits(ctx, state, &fix.end, out);
    idle_check(ctx, state, &fix.end, out);
    out_of_zone_check(ctx, state, t, out);
    state.prev = Some(fix.end);
}

/// One fix, in fix-time order within the live window, through the live path's trackers; its
/// enters and exits are provisional.
fn feed_live(ctx: &Ctx<'_>, live: &mut LivePath, fix: Fix, out: &mut Vec<Event>) {
    if fix.flags.is_untrusted() {
        return;
    }
    let start = out.len();
    enter_exit(ctx, [&mut live.beat, &mut live.zone], &fix.end, out);
    for e in &mut out[start..] {
        e.provisional = true;
    }
}

/// Hysteresis of both layers (beat and zone trackers) for one trusted fix: the enters and
/// exits it confirms, an exit before the enter it makes room for.
fn enter_exit(ctx: &Ctx<'_>, trackers: [&mut Tracker; 2], at: &End, out: &mut Vec<Event>) {
    let rule = ctx.config.rule();
    let t = at.time_ms;
    let [beat, zone] = trackers;
    let mut changes = Vec::new();
    for (layer, tracker, fence) in [(Layer::Beat, beat, at.beat), (Layer::Zone, zone, at.zone)] {
        changes.clear();
        tracker.observe(fence, t, rule, &mut changes);
        for change in &changes {
            let (fence, at_ms, enter) = match *change {
                Transition::Exit { fence, at_ms } => (fence, at_ms, false),
                Transition::Enter { fence, at_ms } => (fence, at_ms, true),
            };
            let Some(id) = fence_id(ctx.index, layer, fence) else {
                continue;
            };
            let (fence, confirmed_ms) = (id.to_owned(), t);
            let kind = if enter {
                EventKind::Enter {
                    layer,
                    fence,
                    confirmed_ms,
                }
            } else {
                EventKind::Exit {
                    layer,
                    fence,
                    confirmed_ms,
                }
            };
            out.push(ctx.event(at_ms, kind));
        }
    }
}

/// A segment is sparse when its ends are far apart in time or space, yet close enough in time
/// for the straight line to stand for the path.
fn is_sparse(config: &EventConfig, a: &End, b: &End) -> bool {
    let gap = b.time_ms - a.time_ms;
    gap <= ms(config.max_interpolate_s)
        && (gap > ms(config.sparse_gap_s)
            || haversine_m(a.lat, a.lon, b.lat, b.lon) > config.sparse_len_m)
}

/// Arrival is the first fix within the radius, departure the last; the visit is reported at
/// the first fix outside, if it lasted the checkpoint's minimum dwell and its arrival or
/// departure falls in the checkpoint's window.
fn checkpoint_visits(ctx: &Ctx<'_>, state: &mut UnitState, at: &End, out: &mut Vec<Event>) {
    for (i, cp) in ctx.checkpoints.iter().enumerate() {
        if haversine_m(at.lat, at.lon, cp.lat, cp.lon) <= cp.radius_m {
            state
                .visits
                .entry(i)
                .and_modify(|v| v.last_ms = at.time_ms)
                .or_insert(Visit {
                    arrival_ms: at.time_ms,
                    last_ms: at.time_ms,
                });
        } else if let Some(v) = state.visits.remove(&i)
            && v.last_ms - v.arrival_ms >= ms(cp.min_dwell_s)
            && in_window(cp.window, ctx.config.timezone, v.arrival_ms, v.last_ms)
        {
            let kind = EventKind::CheckpointVisit {
                checkpoint: cp.id.clone(),
                arrival_ms: v.arrival_ms,
                departure_ms: v.last_ms,
            };
            out.push(ctx.event(v.last_ms, kind));
        }
    }
}

/// True when there is no window, or the local time of day of `a` or `b` is in it (start
/// included, end excluded; the window ends the next day when `end <= start`).
fn in_window(
    window: Option<(NaiveTime, NaiveTime)>,
    tz: Tz,
    a: EpochMillis,
    b: EpochMillis,
) -> bool {
    let Some((start, end)) = window else {
        return true;
    };
    let inside = |t: EpochMillis| {
        DateTime::from_timestamp_millis(t).is_some_and(|utc| {
            let local = utc.with_timezone(&tz).time();
            if end <= start {
                local >= start || local < end
            } else {
                local >= start && local < end
            }
        })
    };
    inside(a) || inside(b)
}

/// Idle: within `idle_radius_m` of where the unit stopped for `idle_after_s` (counted from the
/// shift start at the earliest), once per stop and shift.
fn idle_check(ctx: &Ctx<'_>, state: &mut UnitState, at: &End, out: &mut Vec<Event>) {
    let anchor = match state.idle_anchor {
        Some(a) if haversine_m(a.lat, a.lon, at.lat, at.lon) <= ctx.config.idle_radius_m => a,
        _ => *state.idle_anchor.insert(Anchor {
            time_ms: at.time_ms,
            lat: at.lat,
            lon: at.lon,
        }),
    };
    let Some((i, shift)) = shift_at(ctx.shifts, at.time_ms) else {
        return;
    };
    let since_ms = anchor.time_ms.max(shift.start_ms);
    if at.time_ms - since_ms >= ms(ctx.config.idle_after_s)
        && state.idle_alerted != Some((i, anchor.time_ms))
    {
        state.idle_alerted = Some((i, anchor.time_ms));
        let kind = EventKind::Idle {
            window: shift.window.clone(),
            since_ms,
            lat: anchor.lat,
            lon: anchor.lon,
        };
        out.push(ctx.event(at.time_ms, kind));
    }
}

/// Out of zone: the confirmed zone (after hysteresis) is not the rostered one for more than
/// the grace period of a shift; once per spell, and a spell ends back in the zone.
fn out_of_zone_check(ctx: &Ctx<'_>, state: &mut UnitState, t: EpochMillis, out: &mut Vec<Event>) {
    let Some((i, shift)) = shift_at(ctx.shifts, t) else {
        state.out_of_zone = None;
        return;
    };
    let current = state
        .zone
        .current()
        .and_then(|z| fence_id(ctx.index, Layer::Zone, z));
    if current == Some(shift.zone.as_str()) {
        state.out_of_zone = None;
        return;
    }
    let spell = match state.out_of_zone {
        Some(s) if s.shift == i => s,
        _ => OutOfZone {
            shift: i,
            since_ms: state.zone.since_ms().unwrap_or(t).max(shift.start_ms),
            alerted: false,
        },
    };
    let alert = !spell.alerted && t - spell.since_ms > ms(ctx.config.out_of_zone_grace_s);
    state.out_of_zone = Some(OutOfZone {
        alerted: spell.alerted || alert,
        ..spell
    });
    if alert {
        let kind = EventKind::OutOfZone {
            zone: shift.zone.clone(),
            current: current.map(str::to_owned),
            window: shift.window.clone(),
            since_ms: spell.since_ms,
        };
        out.push(ctx.event(t, kind));
    }
}

/// Offline: no fix for `offline_after_s` (counted from the shift start at the earliest) at a
/// tick inside a shift; once per last fix and shift.
fn offline_check(ctx: &Ctx<'_>, state: &mut UnitState, now: EpochMillis, out: &mut Vec<Event>) {
    let Some((i, shift)) = shift_at(ctx.shifts, now) else {
        return;
    };
    let since_ms = state
        .last_seen_ms
        .map_or(shift.start_ms, |t| t.max(shift.start_ms));
    let key = (i, state.last_seen_ms);
    if now - since_ms >= ms(ctx.config.offline_after_s) && state.offline_alerted != Some(key) {
        state.offline_alerted = Some(key);
        let kind = EventKind::Offline {
            window: shift.window.clone(),
            last_fix_ms: state.last_seen_ms,
            since_ms,
        };
        out.push(ctx.event(now, kind));
    }
}

/// Crew below the minimum: once per shift, at the first fix or tick inside it.
fn crew_check(ctx: &Ctx<'_>, state: &mut UnitState, t: EpochMillis, out: &mut Vec<Event>) {
    let Some((i, shift)) = shift_at(ctx.shifts, t) else {
        return;
    };
    if shift.crew < ctx.config.min_crew && !state.crew_alerted.contains(&i) {
        state.crew_alerted.push(i);
        let kind = EventKind::CrewBelowMinimum {
            zone: shift.zone.clone(),
            window: shift.window.clone(),
            crew: shift.crew,
            min_crew: ctx.config.min_crew,
        };
        out.push(ctx.event(shift.start_ms, kind));
    }
}

/// Writes a buffered fix: time, position and flags (its fences are assigned again on restore).
fn encode_fix(w: &mut Writer, fix: &Fix) {
    encode_end(w, &fix.end);
    w.u8(fix.flags.bits());
}

fn decode_fix(ctx: &Ctx<'_>, r: &mut Reader<'_>) -> Option<Fix> {
    let end = decode_end(ctx, r)?;
    let flags = Flags::from_bits(r.u8()?);
    Some(Fix { end, flags })
}

fn encode_end(w: &mut Writer, end: &End) {
    w.i64(end.time_ms);
    w.f64(end.lat);
    w.f64(end.lon);
}

fn decode_end(ctx: &Ctx<'_>, r: &mut Reader<'_>) -> Option<End> {
    let (time_ms, lat, lon) = (r.i64()?, r.f64()?, r.f64()?);
    let a = ctx.index.assign(lat, lon);
    Some(End {
        time_ms,
        lat,
        lon,
        beat: a.beat,
        zone: a.zone,
    })
}

/// The start of the unit's `i`-th shift: how a shift is named in a snapshot.
fn shift_start(ctx: &Ctx<'_>, i: usize) -> Option<EpochMillis> {
    ctx.shifts.get(i).map(|s| s.start_ms)
}

/// The position of the unit's shift starting at `start_ms`.
fn shift_named(ctx: &Ctx<'_>, start_ms: EpochMillis) -> Option<usize> {
    ctx.shifts.iter().position(|s| s.start_ms == start_ms)
}

fn encode_trackers(ctx: &Ctx<'_>, w: &mut Writer, beat: &Tracker, zone: &Tracker) {
    let id = |layer| move |f| fence_id(ctx.index, layer, f).map(str::to_owned);
    beat.encode(w, id(Layer::Beat));
    zone.encode(w, id(Layer::Zone));
}

fn decode_trackers(ctx: &Ctx<'_>, r: &mut Reader<'_>) -> Option<(Tracker, Tracker)> {
    let beat = Tracker::decode(r, |id| ctx.index.beat_idx(id))?;
    let zone = Tracker::decode(r, |id| ctx.index.zone_idx(id))?;
    Some((beat, zone))
}

/// Writes one unit's state; [`decode_unit`] reads it back in the same order.
fn encode_unit(ctx: &Ctx<'_>, s: &UnitState, w: &mut Writer) {
    s.reorder.encode(w, encode_fix);
    w.opt(s.last_seen_ms, Writer::i64);
    encode_trackers(ctx, w, &s.beat, &s.zone);
    w.opt(s.prev, |w, end| encode_end(w, &end));
    let mut visits: Vec<(&str, &Visit)> = s
        .visits
        .iter()
        .filter_map(|(i, v)| Some((ctx.checkpoints.get(*i)?.id.as_str(), v)))
        .collect();
    visits.sort_unstable_by_key(|(id, _)| *id);
    w.len(visits.len());
    for (id, v) in visits {
        w.str(id);
        w.i64(v.arrival_ms);
        w.i64(v.last_ms);
    }
    w.opt(s.idle_anchor, |w, a| {
        w.i64(a.time_ms);
        w.f64(a.lat);
        w.f64(a.lon);
    });
    let named = |i| shift_start(ctx, i);
    w.opt(
        s.idle_alerted.and_then(|(i, t)| Some((named(i)?, t))),
        |w, (shift, t)| {
            w.i64(shift);
            w.i64(t);
        },
    );
    w.opt(
        s.out_of_zone.and_then(|o| Some((named(o.shift)?, o))),
        |w, (shift, o)| {
            w.i64(shift);
            w.i64(o.since_ms);
            w.bool(o.alerted);
        },
    );
    w.opt(
        s.offline_alerted.and_then(|(i, t)| Some((named(i)?, t))),
        |w, (shift, t)| {
            w.i64(shift);
            w.opt(t, Writer::i64);
        },
    );
    let crew: Vec<EpochMillis> = s.crew_alerted.iter().filter_map(|i| named(*i)).collect();
    w.len(crew.len());
    for shift in crew {
        w.i64(shift);
    }
    s.live.reorder.encode(w, encode_fix);
    encode_trackers(ctx, w, &s.live.beat, &s.live.zone);
}

fn decode_unit(ctx: &Ctx<'_>, r: &mut Reader<'_>) -> Option<UnitState> {
    let reorder = Reorder::decode(r, |r| decode_fix(ctx, r))?;
    let last_seen_ms = r.opt(Reader::i64)?;
    let (beat, zone) = decode_trackers(ctx, r)?;
    let prev = r.opt(|r| decode_end(ctx, r))?;
    let mut visits = HashMap::new();
    for _ in 0..r.len()? {
        let id = r.str()?;
        let visit = Visit {
            arrival_ms: r.i64()?,
            last_ms: r.i64()?,
        };
        if let Some(i) = ctx.checkpoints.iter().position(|c| c.id == id) {
            visits.insert(i, visit);
        }
    }
    let idle_anchor = r.opt(|r| {
        Some(Anchor {
            time_ms: r.i64()?,
            lat: r.f64()?,
            lon: r.f64()?,
        })
    })?;
    let idle_alerted = r
        .opt(|r| Some((r.i64()?, r.i64()?)))?
        .and_then(|(shift, t)| Some((shift_named(ctx, shift)?, t)));
    let out_of_zone =
        r.opt(|r| Some((r.i64()?, r.i64()?, r.bool()?)))?
            .and_then(|(shift, since_ms, alerted)| {
                Some(OutOfZone {
                    shift: shift_named(ctx, shift)?,
                    since_ms,
                    alerted,
                })
            });
    let offline_alerted = r
        .opt(|r| Some((r.i64()?, r.opt(Reader::i64)?)))?
        .and_then(|(shift, t)| Some((shift_named(ctx, shift)?, t)));
    let mut crew_alerted = Vec::new();
    for _ in 0..r.len()? {
        if let Some(i) = shift_named(ctx, r.i64()?) {
            crew_alerted.push(i);
        }
    }
    let live_reorder = Reorder::decode(r, |r| decode_fix(ctx, r))?;
    let (live_beat, live_zone) = decode_trackers(ctx, r)?;
    Some(UnitState {
        reorder,
        last_seen_ms,
        beat,
        zone,
        prev,
        visits,
        idle_anchor,
        idle_alerted,
        out_of_zone,
        offline_alerted,
        crew_alerted,
        live: LivePath {
            reorder: live_reorder,
            beat: live_beat,
            zone: live_zone,
        },
    })
}
