//! The fleet's motion model: pure and deterministic for a seed. No IO, no clock.
//!
//! A unit on shift leaves its station, drives (or rides, or walks) along the road network to
//! random places in its patrol zone, lingers there, and at night bikes and foot patrols visit
//! the zone's checkpoints and stay their minimum dwell. Cars that are off shift stay parked at
//! their station and keep reporting slowly, as vehicle trackers do; bikes and radios are off.

use std::collections::HashMap;

use analytics::roads::{NodeId, RoadNetwork, Route};
use model::jurisdiction::{DeviceIds, UnitKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Cruising speed cap in km/h (`None`: the road's speed).
fn cap_kmh(kind: UnitKind) -> Option<f64> {
    match kind {
        UnitKind::Car => None,
        UnitKind::Bike => Some(16.0),
        UnitKind::Ebike => Some(22.0),
        UnitKind::Foot => Some(5.0),
    }
}

/// Seconds between reports while on shift: cars 5-10 s, bikes 10-15 s, e-bikes 10 s, radios 30 s.
fn interval_s(kind: UnitKind, rng: &mut ChaCha8Rng) -> f64 {
    match kind {
        UnitKind::Car => rng.random_range(5.0..10.0),
        UnitKind::Bike => rng.random_range(10.0..15.0),
        UnitKind::Ebike => 10.0,
        UnitKind::Foot => 30.0,
    }
}

/// One position report, before it becomes an OwnTracks payload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fix {
    /// Fix time, ms since the epoch.
    pub t_ms: i64,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
    /// Accuracy radius, m.
    pub acc: f64,
    /// Speed, km/h.
    pub vel: f64,
    /// Course, degrees.
    pub cog: f64,
    /// Battery, percent.
    pub batt: u8,
}

impl Fix {
    /// The OwnTracks `location` JSON for this fix.
    pub fn to_owntracks(&self, tid: &str) -> Vec<u8> {
        format!(
            r#"{{"_type":"location","lat":{:.6},"lon":{:.6},"tst":{},"acc":{:.0},"vel":{:.0},"cog":{:.0},"batt":{},"tid":"{}"}}"#,
            self.lat,
            self.lon,
            self.t_ms.div_euclid(1000),
            self.acc,
            self.vel,
            self.cog,
            self.batt,
            tid
        )
        .into_bytes()
    }
}

/// A unit's rostered patrol: zone and UTC interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Shift {
    /// Zone id.
    pub zone: String,
    /// Start, ms.
    pub start_ms: i64,
    /// End, ms.
    pub end_ms: i64,
}

/// The static world the units move in.
#[derive(Debug)]
pub struct World {
    /// The road graph.
    pub roads: RoadNetwork,
    /// Road nodes inside each zone.
    pub zone_nodes: HashMap<String, Vec<NodeId>>,
    /// Patrol checkpoints per zone: node and minimum dwell (s).
    pub zone_checkpoints: HashMap<String, Vec<(NodeId, f64)>>,
    /// Nearest road node of each station.
    pub station_nodes: HashMap<String, NodeId>,
}

/// What a unit is doing.
#[derive(Debug, Clone)]
enum Activity {
    /// Parked or lingering at a point until a time.
    Stay { node: NodeId, until_ms: i64 },
    /// Moving along a route that started at a time, at a speed factor.
    Move {
        route: Route,
        start_ms: i64,
        speed: Speed,
    },
}

#[derive(Debug, Clone, Copy)]
enum Speed {
    Road,
    Fixed(f64),
}

/// One simulated unit.
#[derive(Debug, Clone)]
pub struct UnitModel {
    /// Unit id.
    pub unit: String,
    /// Station id.
    pub station: String,
    /// Kind.
    pub kind: UnitKind,
    /// Its shifts, sorted by start.
    pub shifts: Vec<Shift>,
    /// The identities its devices report with (`units.csv`).
    pub devices: DeviceIds,
    rng: ChaCha8Rng,
    activity: Activity,
    next_ms: i64,
    batt: f64,
    checkpoint_cursor: usize,
}

const NIGHT_START_H: u32 = 23;
const NIGHT_END_H: u32 = 5;

impl UnitModel {
    /// A unit parked at its station at `start_ms`. Returns `None` if the station has no node.
    pub fn new(
        world: &World,
        unit: &str,
        station: &str,
        kind: UnitKind,
        shifts: Vec<Shift>,
        seed: u64,
        start_ms: i64,
    ) -> Option<UnitModel> {
        let node = *world.station_nodes.get(station)?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let first = start_ms + rng.random_range(0..10_000);
        Some(UnitModel {
            unit: unit.to_owned(),
            station: station.to_owned(),
            kind,
            shifts,
            devices: DeviceIds::default(),
            rng,
            activity: Activity::Stay {
                node,
                until_ms: start_ms,
            },
            next_ms: first,
            batt: 100.0,
            checkpoint_cursor: 0,
        })
    }

    /// Time of the next report.
    pub fn next_report_ms(&self) -> i64 {
        self.next_ms
    }

    fn shift_at(&self, t: i64) -> Option<&Shift> {
        self.shifts.iter().find(|s| s.start_ms <= t && t < s.end_ms)
    }

    /// True if the unit reports at time `t` (on shift, or a car parked off shift).
    pub fn reporting_at(&self, t: i64) -> bool {
        self.kind == UnitKind::Car || self.shift_at(t).is_some()
    }

    /// Advances to the next report time and returns the fix, or `None` when the unit is off
    /// (it then skips ahead to its next shift).
    pub fn step(&mut self, world: &World, local_hour: impl Fn(i64) -> u32) -> Option<Fix> {
        let t = self.next_ms;
        let on_shift = self.shift_at(t).cloned();
        if on_shift.is_none() && self.kind != UnitKind::Car {
            self.next_ms = self
                .shifts
                .iter()
                .map(|s| s.start_ms)
                .find(|s| *s > t)
                .unwrap_or(i64::MAX);
            self.activity = Activity::Stay {
                node: world.station_nodes.get(&self.station).copied()?,
                until_ms: self.next_ms,
            };
            return None;
        }
        self.plan(world, t, on_shift.as_ref(), local_hour(t));
        let (lat, lon, cog, vel) = self.position(world, t);
        let interval = if on_shift.is_some() {
            interval_s(self.kind, &mut self.rng)
        } else {
            60.0
        };
        self.next_ms = t + (interval * 1000.0) as i64;
        self.batt = if on_shift.is_some() {
            (self.batt - interval / 900.0).max(5.0)
        } else {
            100.0
        };
        Some(Fix {
            t_ms: t,
            lat,
            lon,
            acc: self.rng.random_range(4.0..15.0),
            vel,
            cog,
            batt: self.batt as u8,
        })
    }

    fn position(&self, world: &World, t: i64) -> (f64, f64, f64, f64) {
        match &self.activity {
            Activity::Stay { node, .. } => {
                let (lat, lon) = world.roads.coord(*node).unwrap_or((f64::NAN, f64::NAN));
                (lat, lon, 0.0, 0.0)
            }
            Activity::Move {
                route,
                start_ms,
                speed,
            } => {
                let el = (t - start_ms) as f64 / 1000.0;
                let (along, kmh) = match speed {
                    Speed::Road => {
                        let (lat, lon, hd) = route.position_at(el);
                        let v = if route.time_s() > 0.0 {
                            route.length_m() / route.time_s() * 3.6
                        } else {
                            0.0
                        };
                        return (lat, lon, hd, v);
                    }
                    Speed::Fixed(kmh) => (el * kmh / 3.6, *kmh),
                };
                // Walk the route by distance: map distance to the equivalent road time.
                let cd = route.cum_dist_m();
                let ct = route.cum_time_s();
                let i = cd.partition_point(|d| *d < along).clamp(1, cd.len().max(1));
                if i >= cd.len() {
                    let (lat, lon, hd) = route.position_at(route.time_s());
                    return (lat, lon, hd, 0.0);
                }
                let span = cd[i] - cd[i - 1];
                let f = if span > 0.0 {
                    (along - cd[i - 1]) / span
                } else {
                    1.0
                };
                let (lat, lon, hd) = route.position_at(ct[i - 1] + f * (ct[i] - ct[i - 1]));
                (lat, lon, hd, kmh)
            }
        }
    }

    fn route_end_ms(&self, route: &Route, start: i64, speed: Speed) -> i64 {
        let secs = match speed {
            Speed::Road => route.time_s(),
            Speed::Fixed(kmh) => route.length_m() / (kmh / 3.6),
        };
        start + (secs * 1000.0) as i64
    }

    /// Chooses the next activity when the current one is over.
    fn plan(&mut self, world: &World, t: i64, shift: Option<&Shift>, hour: u32) {
        let home = world.station_nodes.get(&self.station).copied();
        let here = match &self.activity {
            Activity::Stay { until_ms, .. } if *until_ms > t => return,
            Activity::Stay { node, .. } => Some(*node),
            Activity::Move {
                route,
                start_ms,
                speed,
            } => {
                if self.route_end_ms(route, *start_ms, *speed) > t {
                    return;
                }
                route.nodes().last().copied()
            }
        };
        let Some(here) = here.or(home) else { return };
        let station = home.unwrap_or(here);
        let Some(shift) = shift else {
            // Off shift: go home and park.
            self.go(world, here, station, t, 30 * 60_000);
            return;
        };
        let night = !(NIGHT_END_H..NIGHT_START_H).contains(&hour);
        let checkpoints = world
            .zone_checkpoints
            .get(&shift.zone)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if night && self.kind != UnitKind::Car && !checkpoints.is_empty() {
            let (node, dwell) = checkpoints[self.checkpoint_cursor % checkpoints.len()];
            if here == node {
                self.checkpoint_cursor += 1;
                let stay = (dwell + self.rng.random_range(30.0..240.0)) * 1000.0;
                self.activity = Activity::Stay {
                    node,
                    until_ms: t + stay as i64,
                };
            } else {
                self.go(world, here, node, t, 0);
            }
            return;
        }
        let nodes = world
            .zone_nodes
            .get(&shift.zone)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let lingering = matches!(self.activity, Activity::Move { .. }) && self.rng.random_bool(0.5);
        if lingering {
            // Koper-style stops: stay 2-15 minutes where the unit arrived.
            let stay = self.rng.random_range(120_000..900_000);
            self.activity = Activity::Stay {
                node: here,
                until_ms: t + stay,
            };
            return;
        }
        let dest = if nodes.is_empty() {
            station
        } else {
            nodes[self.rng.random_range(0..nodes.len())]
        };
        self.go(world, here, dest, t, 60_000);
    }

    fn go(&mut self, world: &World, from: NodeId, to: NodeId, t: i64, stay_if_there_ms: i64) {
        if from == to {
            self.activity = Activity::Stay {
                node: to,
                until_ms: t + stay_if_there_ms.max(10_000),
            };
            return;
        }
        let speed = match cap_kmh(self.kind) {
            None => Speed::Road,
            Some(cap) => Speed::Fixed(cap * self.rng.random_range(0.7..1.0)),
        };
        match world.roads.shortest_path(from, to) {
            Some(route) => {
                self.activity = Activity::Move {
                    route,
                    start_ms: t,
                    speed,
                }
            }
            None => {
                self.activity = Activity::Stay {
                    node: from,
                    until_ms: t + 60_000,
                }
            }
        }
    }
}
