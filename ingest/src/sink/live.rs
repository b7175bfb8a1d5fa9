//! Live per-unit state for the command room: last fix, beat and zone, a status, and the
//! event engine's events as they happen.
//!
//! **Architecture Invariant:** live state never slows ingest. Updates go into a map behind a
//! short lock and out through a `broadcast` channel; a subscriber that falls behind skips ahead
//! (it sees `Lagged`) instead of holding the sender.
//!
//! Every change to a unit's state bumps a version number, and each unit remembers the version
//! of its last change, so a reader that keeps its own copy (the API's `/api/units` answer,
//! kept serialised) can ask only for what changed since it last looked
//! ([`LiveState::changed_since`]).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::channels::ChannelConfig;
use crate::events::{Event, EventKind};
use crate::ping::EpochMillis;
use crate::store::StoredPing;

/// What a unit is doing, as the map colours it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitStatus {
    /// Moving faster than the idle threshold.
    Moving,
    /// Reporting but not moving for longer than the idle time.
    Idle,
    /// During its shift, outside its rostered zone for longer than the grace period, as the
    /// event engine confirmed ([`EventKind::OutOfZone`]); shown instead of moving or idle
    /// until the engine sees the unit back in its zone.
    OutOfZone,
    /// No fix for longer than the offline time, or the broker published its last will.
    Offline,
}

/// The latest state of one unit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitState {
    /// Unit id.
    pub unit: String,
    /// Station id.
    pub station: String,
    /// Time of the last fix.
    pub fix_time: EpochMillis,
    /// Latitude of the last fix.
    pub lat: f64,
    /// Longitude of the last fix.
    pub lon: f64,
    /// Speed in km/h, when reported.
    pub speed_kmh: Option<f32>,
    /// Heading in degrees, when reported.
    pub heading: Option<f32>,
    /// Beat of the last fix.
    pub beat: Option<String>,
    /// Zone of the last fix.
    pub zone: Option<String>,
    /// Status at the time of the last update.
    pub status: UnitStatus,
    /// Time of the last fix that moved (for idle detection).
    pub last_moved: EpochMillis,
}

/// A change broadcast to live subscribers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    /// A new position of a unit.
    Position(UnitState),
    /// A unit went offline (last will or silence).
    Offline {
        /// Unit id.
        unit: String,
        /// Station id.
        station: String,
        /// When it was noticed.
        at: EpochMillis,
    },
    /// A geofence or duty event of the event engine, sent as the event's own JSON object,
    /// tagged by its kind (`enter`, `exit`, `crossing`, `checkpoint_visit`, `out_of_zone`,
    /// `idle`, `offline`, `crew_below_minimum`; see [`Event`]). An engine `offline` (a rostered
    /// unit silent during its shift) has `time_ms` and `window` where the variant above has
    /// `at` and `station`.
    #[serde(untagged)]
    Event(Event),
}

/// Thresholds for [`UnitStatus`].
#[derive(Debug, Clone, Copy)]
pub struct LiveConfig {
    /// Below this speed a unit counts as stationary (km/h).
    pub moving_kmh: f32,
    /// Stationary for this long means idle (ms).
    pub idle_after_ms: i64,
    /// No fix for this long means offline (ms).
    pub offline_after_ms: i64,
    /// Capacity of the broadcast channel; slower subscribers skip ahead
    /// ([`ChannelConfig::LIVE_WHEN_FULL`]).
    pub channel: usize,
}

impl LiveConfig {
    /// Thresholds from the jurisdiction's `[status]` settings, in seconds.
    pub fn new(idle_after_s: u32, offline_after_s: u32) -> Self {
        LiveConfig {
            moving_kmh: 3.0,
            idle_after_ms: i64::from(idle_after_s) * 1000,
            offline_after_ms: i64::from(offline_after_s) * 1000,
            channel: ChannelConfig::DEFAULT.live,
        }
    }
}

/// The units and the version of the last change.
#[derive(Debug, Default)]
struct Units {
    /// Each unit's state and the version of its last change.
    map: HashMap<String, (UnitState, u64)>,
    /// Bumped by every change.
    version: u64,
}

impl Units {
    /// The state of `unit`, for a change: bumps the version and stamps the unit with it.
    fn change(&mut self, unit: &str) -> Option<&mut UnitState> {
        let (state, changed) = self.map.get_mut(unit)?;
        self.version += 1;
        *changed = self.version;
        Some(state)
    }
}

/// The live map of units.
#[derive(Debug)]
pub struct LiveState {
    cfg: LiveConfig,
    units: RwLock<Units>,
    events: broadcast::Sender<LiveEvent>,
}

impl LiveState {
    /// An empty live state.
    pub fn new(cfg: LiveConfig) -> Self {
        let (events, _) = broadcast::channel(cfg.channel.max(16));
        LiveState {
            cfg,
            units: RwLock::new(Units::default()),
            events,
        }
    }

    /// Subscribes to live events.
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.events.subscribe()
    }

    /// Applies a stored ping. Older fixes than the one shown are ignored (late delivery), and
    /// untrusted fixes (poor accuracy, jumps) do not move the marker. `out_of_zone` is the
    /// event engine's verdict for the unit
    /// ([`EventEngine::out_of_zone`](crate::events::EventEngine::out_of_zone)).
    pub fn update(&self, p: &StoredPing, out_of_zone: bool) {
        let ping = &p.ping;
        if ping.flags().is_untrusted() {
            return;
        }
        let speed = ping.extras().speed_kmh;
        let state = {
            let Ok(mut units) = self.units.write() else {
                return;
            };
            let prev = units.map.get(ping.unit()).map(|(s, _)| s);
            if prev.is_some_and(|s| s.fix_time >= ping.fix_time()) {
                return;
            }
            let moving = speed.is_some_and(|v| v >= self.cfg.moving_kmh)
                || prev.is_none_or(|s| {
                    crate::validate::haversine_m(s.lat, s.lon, ping.lat(), ping.lon()) > 25.0
                });
            let last_moved = if moving {
                ping.fix_time()
            } else {
                prev.map_or(ping.fix_time(), |s| s.last_moved)
            };
            let status = if out_of_zone {
                UnitStatus::OutOfZone
            } else if ping.fix_time() - last_moved >= self.cfg.idle_after_ms {
                UnitStatus::Idle
            } else {
                UnitStatus::Moving
            };
            let state = UnitState {
                unit: ping.unit().to_owned(),
                station: ping.station().to_owned(),
                fix_time: ping.fix_time(),
                lat: ping.lat(),
                lon: ping.lon(),
                speed_kmh: speed,
                heading: ping.extras().heading,
                beat: p.beat.clone(),
                zone: p.zone.clone(),
                status,
                last_moved,
            };
            units.version += 1;
            let version = units.version;
            units
                .map
                .insert(state.unit.clone(), (state.clone(), version));
            state
        };
        // No receivers is fine: nobody is watching.
        let _ = self.events.send(LiveEvent::Position(state));
    }

    /// Marks a unit offline (its last will arrived).
    pub fn offline(&self, station: &str, unit: &str, at: EpochMillis) {
        if let Ok(mut units) = self.units.write()
            && let Some(s) = units.change(unit)
        {
            s.status = UnitStatus::Offline;
        }
        let _ = self.events.send(LiveEvent::Offline {
            unit: unit.to_owned(),
            station: station.to_owned(),
            at,
        });
    }

    /// Broadcasts an engine event. An [`EventKind::OutOfZone`] also turns the unit's status to
    /// [`UnitStatus::OutOfZone`] (unless it is offline) without waiting for its next fix.
    pub fn publish(&self, event: &Event) {
        if matches!(event.kind, EventKind::OutOfZone { .. })
            && let Ok(mut units) = self.units.write()
            && units
                .map
                .get(&event.unit)
                .is_some_and(|(s, _)| s.status != UnitStatus::Offline)
            && let Some(s) = units.change(&event.unit)
        {
            s.status = UnitStatus::OutOfZone;
        }
        let _ = self.events.send(LiveEvent::Event(event.clone()));
    }

    /// Marks units silent for longer than the offline time as offline, as of `now`.
    /// Returns how many changed.
    pub fn sweep(&self, now: EpochMillis) -> usize {
        let mut gone = Vec::new();
        if let Ok(mut units) = self.units.write() {
            let Units { map, version } = &mut *units;
            for (s, changed) in map.values_mut() {
                if s.status != UnitStatus::Offline && now - s.fix_time > self.cfg.offline_after_ms {
                    s.status = UnitStatus::Offline;
                    *version += 1;
                    *changed = *version;
                    gone.push((s.unit.clone(), s.station.clone()));
                }
            }
        }
        for (unit, station) in &gone {
            let _ = self.events.send(LiveEvent::Offline {
                unit: unit.clone(),
                station: station.clone(),
                at: now,
            });
        }
        gone.len()
    }

    /// A snapshot of every unit, sorted by unit id.
    pub fn snapshot(&self) -> Vec<UnitState> {
        let mut v: Vec<UnitState> = self
            .units
            .read()
            .map(|u| u.map.values().map(|(s, _)| s.clone()).collect())
            .unwrap_or_default();
        v.sort_by(|a, b| a.unit.cmp(&b.unit));
        v
    }

    /// The version of the last change (0 before any).
    pub fn version(&self) -> u64 {
        self.units.read().map_or(0, |u| u.version)
    }

    /// The current version and the units that changed after `version`, in no order. Units
    /// are never removed, so a copy that applies these changes matches [`snapshot`] as of the
    /// returned version.
    ///
    /// [`snapshot`]: LiveState::snapshot
    pub fn changed_since(&self, version: u64) -> (u64, Vec<UnitState>) {
        self.units.read().map_or((version, Vec::new()), |u| {
            let changed = u
                .map
                .values()
                .filter(|(_, v)| *v > version)
                .map(|(s, _)| s.clone())
                .collect();
            (u.version, changed)
        })
    }
}

/// How often [`OfflineSweep`] looks for silent units by default: an offline notice comes at
/// most this long after the offline time has passed.
pub const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// The task that marks units offline when they fall silent ([`LiveState::sweep`] with the
/// wall clock): a unit that stops reporting sends nothing that would tell the stage.
#[derive(Debug)]
pub struct OfflineSweep {
    live: Arc<LiveState>,
    every: Duration,
}

impl OfflineSweep {
    /// A sweep of `live` every `every`.
    ///
    /// # Panics
    /// [`OfflineSweep::run`] panics when `every` is zero (the serve config refuses 0).
    pub fn new(live: Arc<LiveState>, every: Duration) -> Self {
        OfflineSweep { live, every }
    }

    /// Sweeps at once and then every interval, until `stop` fires.
    pub async fn run(self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.every);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => {
                    self.live.sweep(model::now_ms());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ping::{Extras, Flags, Ping};

    fn sp(t: i64, lat: f64, speed: f32, flags: Flags) -> StoredPing {
        let extras = Extras {
            speed_kmh: Some(speed),
            ..Extras::default()
        };
        StoredPing {
            ping: Ping::new("B01", "north", t, t, lat, -88.9, extras, flags).unwrap(),
            cell: 0,
            beat: Some("B3".into()),
            zone: None,
            fence_version: 1,
        }
    }

    #[test]
    fn status_moves_idles_and_goes_offline() {
        let live = LiveState::new(LiveConfig::new(300, 180));
        let mut rx = live.subscribe();
        live.update(&sp(0, 40.1, 20.0, Flags::empty()), false);
        assert_eq!(live.snapshot()[0].status, UnitStatus::Moving);
        live.update(&sp(200_000, 40.1, 0.0, Flags::empty()), false);
        assert_eq!(
            live.snapshot()[0].status,
            UnitStatus::Moving,
            "stopped 200 s: not idle yet"
        );
        live.update(&sp(301_000, 40.1, 0.0, Flags::empty()), false);
        assert_eq!(live.snapshot()[0].status, UnitStatus::Idle);
        // A late fix and a jump do not move the marker.
        live.update(&sp(100_000, 40.2, 10.0, Flags::empty()), false);
        live.update(&sp(400_000, 41.0, 10.0, Flags::JUMP), false);
        assert_eq!(live.snapshot()[0].fix_time, 301_000);
        assert_eq!(live.sweep(301_000 + 181_000), 1);
        assert_eq!(live.snapshot()[0].status, UnitStatus::Offline);
        let mut n = 0;
        while rx.try_recv().is_ok() {
            n += 1;
        }
        assert_eq!(n, 4, "three positions and one offline event");
    }

    #[test]
    fn changes_are_versioned_per_unit() {
        let live = LiveState::new(LiveConfig::new(300, 180));
        assert_eq!(live.changed_since(0), (0, Vec::new()));
        live.update(&sp(0, 40.1, 20.0, Flags::empty()), false);
        let mut other = sp(0, 40.2, 20.0, Flags::empty());
        other.ping = Ping::new(
            "B02",
            "north",
            0,
            0,
            40.2,
            -88.9,
            Extras::default(),
            Flags::empty(),
        )
        .unwrap();
        live.update(&other, false);
        let (v, all) = live.changed_since(0);
        assert_eq!((v, all.len()), (2, 2));
        // Nothing changed: nothing to fetch, and ignored updates change nothing.
        live.update(&sp(0, 40.3, 20.0, Flags::empty()), false);
        assert_eq!(live.changed_since(v), (v, Vec::new()));
        // A new fix, a last will and the offline sweep each show up as a change of that unit.
        live.update(&sp(10_000, 40.1, 20.0, Flags::empty()), false);
        let (v2, changed) = live.changed_since(v);
        assert_eq!((v2, changed.len(), changed[0].unit.as_str()), (3, 1, "B01"));
        live.offline("north", "B02", 11_000);
        let (v3, changed) = live.changed_since(v2);
        assert_eq!(changed.len(), 1);
        assert_eq!(
            (changed[0].unit.as_str(), changed[0].status),
            ("B02", UnitStatus::Offline)
        );
        live.offline("north", "NOBODY", 11_000);
        assert_eq!(live.version(), v3, "an unknown unit's will changes nothing");
        assert_eq!(live.sweep(10_000 + 181_000), 1);
        let (v4, changed) = live.changed_since(v3);
        assert_eq!((v4, changed[0].status), (v3 + 1, UnitStatus::Offline));
        let snapshot = live.snapshot();
        let (_, mut all) = live.changed_since(0);
        all.sort_by(|a, b| a.unit.cmp(&b.unit));
        assert_eq!(all, snapshot);
    }

    #[test]
    fn events_are_broadcast_and_out_of_zone_shows_in_the_status() {
        use crate::events::Layer;
        let live = LiveState::new(LiveConfig::new(300, 180));
        let mut rx = live.subscribe();
        live.update(&sp(0, 40.1, 20.0, Flags::empty()), false);
        let event = |kind| Event {
            unit: "B01".into(),
            time_ms: 1_000,
            catalog_version: 2,
            provisional: false,
            kind,
        };
        let enter = event(EventKind::Enter {
            layer: Layer::Beat,
            fence: "B3".into(),
            confirmed_ms: 31_000,
        });
        live.publish(&enter);
        assert_eq!(live.snapshot()[0].status, UnitStatus::Moving);
        live.publish(&event(EventKind::OutOfZone {
            zone: "Z1".into(),
            current: None,
            window: "day".into(),
            since_ms: 0,
        }));
        assert_eq!(live.snapshot()[0].status, UnitStatus::OutOfZone);
        // The engine's verdict on the next fix decides, both ways.
        live.update(&sp(10_000, 40.1, 20.0, Flags::empty()), true);
        assert_eq!(live.snapshot()[0].status, UnitStatus::OutOfZone);
        live.update(&sp(20_000, 40.1, 20.0, Flags::empty()), false);
        assert_eq!(live.snapshot()[0].status, UnitStatus::Moving);
        let _ = rx.try_recv(); // the first position
        let got = rx.try_recv().unwrap();
        let json = serde_json::to_value(&got).unwrap();
        assert_eq!(got, LiveEvent::Event(enter.clone()));
        assert_eq!(json, serde_json::to_value(&enter).unwrap());
        assert_eq!(json["type"], "enter");
        assert_eq!(
            (json["unit"].as_str(), json["fence"].as_str()),
            (Some("B01"), Some("B3"))
        );
        assert_eq!(json["catalog_version"], 2);
        let position = serde_json::to_value(LiveEvent::Position(live.snapshot()[0].clone()));
        assert_eq!(position.unwrap()["type"], "position");
    }
}
