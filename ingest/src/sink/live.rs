//! Live per-unit state for the command room: last fix, beat and zone, and a status.
//!
//! **Architecture Invariant:** live state never slows ingest. Updates go into a map behind a
//! short lock and out through a `broadcast` channel; a subscriber that falls behind skips ahead
//! (it sees `Lagged`) instead of holding the sender.

use std::collections::HashMap;
use std::sync::RwLock;

use serde::Serialize;
use tokio::sync::broadcast;

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
    /// Capacity of the broadcast channel; slower subscribers skip ahead.
    pub channel: usize,
}

impl LiveConfig {
    /// Thresholds from the jurisdiction's `[status]` settings, in seconds.
    pub fn new(idle_after_s: u32, offline_after_s: u32) -> Self {
        LiveConfig {
            moving_kmh: 3.0,
            idle_after_ms: i64::from(idle_after_s) * 1000,
            offline_after_ms: i64::from(offline_after_s) * 1000,
            channel: 4096,
        }
    }
}

/// The live map of units.
#[derive(Debug)]
pub struct LiveState {
    cfg: LiveConfig,
    units: RwLock<HashMap<String, UnitState>>,
    events: broadcast::Sender<LiveEvent>,
}

impl LiveState {
    /// An empty live state.
    pub fn new(cfg: LiveConfig) -> Self {
        let (events, _) = broadcast::channel(cfg.channel.max(16));
        LiveState {
            cfg,
            units: RwLock::new(HashMap::new()),
            events,
        }
    }

    /// Subscribes to live events.
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.events.subscribe()
    }

    /// Applies a stored ping. Older fixes than the one shown are ignored (late delivery), and
    /// untrusted fixes (poor accuracy, jumps) do not move the marker.
    pub fn update(&self, p: &StoredPing) {
        let ping = &p.ping;
        if ping.flags().is_untrusted() {
            return;
        }
        let speed = ping.extras().speed_kmh;
        let state = {
            let Ok(mut units) = self.units.write() else {
                return;
            };
            let prev = units.get(ping.unit());
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
            let status = if ping.fix_time() - last_moved >= self.cfg.idle_after_ms {
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
            units.insert(state.unit.clone(), state.clone());
            state
        };
        // No receivers is fine: nobody is watching.
        let _ = self.events.send(LiveEvent::Position(state));
    }

    /// Marks a unit offline (its last will arrived).
    pub fn offline(&self, station: &str, unit: &str, at: EpochMillis) {
        if let Ok(mut units) = self.units.write()
            && let Some(s) = units.get_mut(unit)
        {
            s.status = UnitStatus::Offline;
        }
        let _ = self.events.send(LiveEvent::Offline {
            unit: unit.to_owned(),
            station: station.to_owned(),
            at,
        });
    }

    /// Marks units silent for longer than the offline time as offline, as of `now`.
    /// Returns how many changed.
    pub fn sweep(&self, now: EpochMillis) -> usize {
        let mut gone = Vec::new();
        if let Ok(mut units) = self.units.write() {
            for s in units.values_mut() {
                if s.status != UnitStatus::Offline && now - s.fix_time > self.cfg.offline_after_ms {
                    s.status = UnitStatus::Offline;
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
            .map(|u| u.values().cloned().collect())
            .unwrap_or_default();
        v.sort_by(|a, b| a.unit.cmp(&b.unit));
        v
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
        live.update(&sp(0, 40.1, 20.0, Flags::empty()));
        assert_eq!(live.snapshot()[0].status, UnitStatus::Moving);
        live.update(&sp(200_000, 40.1, 0.0, Flags::empty()));
        assert_eq!(
            live.snapshot()[0].status,
            UnitStatus::Moving,
            "stopped 200 s: not idle yet"
        );
        live.update(&sp(301_000, 40.1, 0.0, Flags::empty()));
        assert_eq!(live.snapshot()[0].status, UnitStatus::Idle);
        // A late fix and a jump do not move the marker.
        live.update(&sp(100_000, 40.2, 10.0, Flags::empty()));
        live.update(&sp(400_000, 41.0, 10.0, Flags::JUMP));
        assert_eq!(live.snapshot()[0].fix_time, 301_000);
        assert_eq!(live.sweep(301_000 + 181_000), 1);
        assert_eq!(live.snapshot()[0].status, UnitStatus::Offline);
        let mut n = 0;
        while rx.try_recv().is_ok() {
            n += 1;
        }
        assert_eq!(n, 4, "three positions and one offline event");
    }
}
