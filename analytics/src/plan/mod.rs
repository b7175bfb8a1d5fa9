//! Next week's plan (`patrol plan`): a roster for one local week and its directed hot-spot
//! visits, from the forecast hot spots of each patrol window and the unit list, under the
//! stations' rules; and the patrol minutes a roster is expected to put on given cells.
//!
//! Inputs: the week (a local Monday), the incidents before it, the forecast method per slot
//! (the backtest's choice saved in the store, else `[hotspots] method`), the unit list, the
//! zones, the patrol checkpoints, `[[windows]]`, `[levels]` and the roster the jurisdiction
//! already has (for the levels and the comparison).
//!
//! The forecast: [`forecast::next_week`] for each window's slot, trained on the
//! `training_weeks` before the planned week. A cell's *expected incidents* in a window are its
//! share of the slot's scores × the slot's mean incidents a week (as in [`crate::gaps`]); a
//! zone-window's on a given day are the zone's sum × that weekday's share of the window's
//! training incidents (smoothed: `(n + 1) / (N + 7)`, the day being the one the window
//! instance starts on). Its *hot cells* are the zone's cells in the slot's forecast hot spots
//! (the top share) with a positive score (a cell tied at the cut with no incident behind it
//! is no hot spot), by forecast score.
//!
//! The rules, each checked on the plan of the fixture county by `tests.rs`:
//! - *windows*: every shift is one `[[windows]]` entry, its times the window's;
//! - *one window a day*: a unit works at most one window per date, and at least
//!   [`MIN_REST_HOURS`] after its previous shift ended (a night ending at 05:00 is not
//!   followed by the 08:30 window);
//! - *sun*: a foot, bike or e-bike unit never works sun-exposed windows (those overlapping
//!   10:00-16:00, [`is_sun_exposed`]) on two dates running;
//! - *night bikes*: windows crossing midnight are staffed with bikes and e-bikes first, cars
//!   and foot patrols only once all of the station's bikes and e-bikes are out that night;
//! - *groups*: bike, e-bike and foot units go out with at least two officers. A unit whose
//!   crew is 1 is paired with another unit of its class (bikes and e-bikes, or foot; a unit
//!   of crew 1 first, else one of a larger crew) that shares its zone and window every shift;
//!   each entry's `crew` is then the group's officers. A unit left without a partner is not
//!   planned (and named). Cars pass alone;
//! - *levels*: the level of a zone on a day is the one the current roster gives the zone on
//!   that weekday (its most urgent if it gives several), else 3. Levels are a command
//!   decision on intelligence the incident forecast does not see (events, alerts, threats),
//!   and the fleet cannot staff every window of every zone even at level 3 with one window a
//!   unit a day (the fixture county's central station has 30 units for 4 zones × 4 windows ×
//!   2 patrols), so raising a level from the forecast would only leave other windows empty:
//!   the planner keeps the command's levels and puts its choices into where and when units
//!   go;
//! - *force*: a zone-window is staffed with at least the compliance job's required number
//!   ([`required_force`]) of units of the zone's station, or not at all. A station's
//!   zone-windows are staffed in order: first the night windows (patrol checkpoints' windows
//!   before the others), then the rest, each by expected incidents that day; a zone-window
//!   the units do not reach is left unstaffed and listed ([`Plan::unstaffed`]). Units left
//!   over join the staffed zone-windows with the most expected incidents per unit. Units of a
//!   station without a zone are not planned;
//! - *directed visits*: every group in a zone-window with forecast hot cells gets visits of
//!   [`VISIT_MAX_MIN`] minutes (the Koper curve's 10-15) spread evenly over its window, enough
//!   that no more than [`VISIT_EVERY_MIN`] minutes pass without one, and as many as
//!   `[hotspots] directed_share` of the window allows; each visit goes to one of the zone's
//!   hot cells, the groups of a zone-window taking turns down the list by score. Every stop
//!   is followed by [`TRAVEL_SLACK_MIN`] minutes to move on, and the stops and their slack
//!   never exceed the window;
//! - *checkpoints*: every patrol checkpoint inside a zone, or within [`NEAR_ZONE_M`] of one
//!   (a short ride out of it), gets a stop each night from one of the groups in that zone's
//!   window that overlaps the checkpoint's window longest, timed inside the checkpoint's
//!   window, of `max(10 minutes, its minimum dwell)`. Checkpoints farther from every zone are
//!   listed ([`Plan::unzoned_checkpoints`]): no zone patrol passes them.
//!
//! *Expected presence* ([`presence`]): a roster entry puts its visits' minutes on their cells,
//! and the rest of its shift evenly over its zone's cells (the zone share of an undirected
//! patrol). The *dosage on the forecast hot spots* is that presence summed over the cells and
//! windows, each weighted by the cell's forecast hot-spot weight in the window
//! ([`Plan::dosage_on_hot`]); the *dosage at the forecast incidents* weights it by the
//! incidents the forecast expects in the cell and window instance ([`Plan::dosage_on_forecast`]);
//! the *dosage on incidents* is the presence in each incident's
//! cell during the window instance it fell in, summed over the incidents
//! ([`dosage_on_incidents`]). Incidents outside every window meet no presence.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike};
use chrono_tz::Tz;
use geo::Contains;
use h3o::{CellIndex, LatLng, Resolution};
use model::jurisdiction::{
    Checkpoint, CheckpointKind, Jurisdiction, RosterEntry, Unit, UnitKind, Window,
};

use crate::AnalyticsError;
use crate::clock::{day_to_date, window_index_at};
use crate::compliance::required_force;
use crate::coverage::fence_cells;
use crate::distance::haversine_m;
use crate::forecast::{self, Choice, Events, ForecastInput, Grid, Method, Slot, Weeks};
use crate::gaps::{VISIT_MAX_MIN, VISIT_MIN_MIN};
use crate::hotspots::{IncidentPoint, StudyArea};

/// Longest stretch of a group's window without a hot-spot visit, minutes.
pub const VISIT_EVERY_MIN: u32 = 120;
/// Minutes left after every stop to reach the next place.
pub const TRAVEL_SLACK_MIN: u32 = 5;
/// A patrol checkpoint in no zone goes to the zone with a cell centre this close, metres.
pub const NEAR_ZONE_M: f64 = 3000.0;
/// Fewest hours between the end of a unit's shift and the start of its next.
pub const MIN_REST_HOURS: i64 = 8;

/// True when `w` overlaps 10:00-16:00 local time, the hours of strongest sun.
#[must_use]
pub fn is_sun_exposed(w: &Window) -> bool {
    let (from, to) = (hm(10, 0), hm(16, 0));
    if w.crosses_midnight() {
        w.start < to || w.end > from
    } else {
        w.start < to && w.end > from
    }
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default()
}

/// A window's length, minutes.
#[must_use]
pub fn window_minutes(w: &Window) -> u32 {
    shift_minutes(w.start, w.end)
}

/// Minutes from `start` to `end`, `end` on the next day when not after `start`.
fn shift_minutes(start: NaiveTime, end: NaiveTime) -> u32 {
    let m = |t: NaiveTime| t.hour() * 60 + t.minute();
    let (s, e) = (m(start), m(end));
    if e > s { e - s } else { e + 1440 - s }
}

/// What the planner reads.
#[derive(Debug, Clone, Copy)]
pub struct PlanInputs<'a> {
    /// The jurisdiction: units, zones, checkpoints, windows, levels and its current roster.
    pub jurisdiction: &'a Jurisdiction,
    /// Incidents; those before the planned week train the forecast.
    pub incidents: &'a [IncidentPoint],
    /// The forecast method per slot saved by the backtest, if any.
    pub choice: Option<&'a Choice>,
    /// The planned week's local Monday.
    pub monday: NaiveDate,
    /// The analysis grid.
    pub res: Resolution,
}

/// A directed stop: a hot-spot visit or a checkpoint stop.
#[derive(Debug, Clone, PartialEq)]
pub struct Visit {
    /// The shift's local date (as in `roster.csv`; a stop after midnight is on the next day).
    pub date: NaiveDate,
    /// Window name.
    pub window: String,
    /// Unit id.
    pub unit: String,
    /// Zone id.
    pub zone: String,
    /// H3 cell at the analysis resolution.
    pub cell: u64,
    /// Latitude of the cell's centre, or of the checkpoint.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
    /// Local start.
    pub start: NaiveTime,
    /// Minutes.
    pub minutes: u32,
    /// `hotspot`, or the checkpoint's id.
    pub target: String,
}

impl Visit {
    /// Minutes from the window's start to the stop's start.
    #[must_use]
    pub fn offset_minutes(&self, w: &Window) -> u32 {
        shift_minutes(w.start, self.start) % 1440
    }
}

/// The plan of one week.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The planned week's Monday.
    pub monday: NaiveDate,
    /// The roster, by date, window, zone and unit.
    pub roster: Vec<RosterEntry>,
    /// The directed stops, by date, window, unit and start.
    pub visits: Vec<Visit>,
    /// The forecast method per window.
    pub methods: BTreeMap<String, Method>,
    /// Zone-windows left without a patrol: date, window, zone.
    pub unstaffed: Vec<(NaiveDate, String, String)>,
    /// Units not planned, with why.
    pub idle: Vec<(String, String)>,
    /// Patrol checkpoints farther than [`NEAR_ZONE_M`] from every zone: not scheduled.
    pub unzoned_checkpoints: Vec<String>,
    /// The Monday of the current roster's week the levels come from, if it has one.
    pub reference: Option<NaiveDate>,
    /// Each zone's cells at the analysis resolution.
    pub zone_cells: BTreeMap<String, Vec<u64>>,
    /// Per window, the forecast hot-spot weight of each hot cell (positive score only).
    pub hot: BTreeMap<String, HashMap<u64, f64>>,
    /// Per window, the expected incidents of the week in each zone cell, and the share of
    /// them on each weekday (Monday first).
    pub expected: BTreeMap<String, (HashMap<u64, f64>, [f64; 7])>,
}

/// A group: units that patrol together, and its officers.
#[derive(Debug, Clone)]
struct Group {
    units: Vec<usize>,
    officers: u8,
    class: Class,
}

/// How a unit patrols, for the night and pairing rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    Bike,
    Foot,
    Car,
}

fn class(kind: UnitKind) -> Class {
    match kind {
        UnitKind::Bike | UnitKind::Ebike => Class::Bike,
        UnitKind::Foot => Class::Foot,
        UnitKind::Car => Class::Car,
    }
}

/// The groups of one station's units; units left out with why.
fn groups(units: &[Unit], members: &[usize]) -> (Vec<Group>, Vec<(String, String)>) {
    let mut out = Vec::new();
    let mut idle = Vec::new();
    let mut taken = HashSet::new();
    for &i in members {
        let u = &units[i];
        if taken.contains(&i) || u.crew >= 2 || u.kind == UnitKind::Car {
            continue;
        }
        let c = class(u.kind);
        let partner = |crew_one: bool| {
            members.iter().copied().find(|&k| {
                k != i
                    && !taken.contains(&k)
                    && class(units[k].kind) == c
                    && (units[k].crew == 1) == crew_one
            })
        };
        match partner(true).or_else(|| partner(false)) {
            Some(k) => {
                taken.extend([i, k]);
                out.push(Group {
                    units: vec![i, k],
                    officers: u.crew.saturating_add(units[k].crew),
                    class: c,
                });
            }
            None => {
                taken.insert(i);
                idle.push((
                    u.id.clone(),
                    "crew of 1 and no unit of its kind to pair with".into(),
                ));
            }
        }
    }
    for &i in members {
        if !taken.contains(&i) {
            out.push(Group {
                units: vec![i],
                officers: units[i].crew,
                class: class(units[i].kind),
            });
        }
    }
    (out, idle)
}

/// The planning state of one unit.
#[derive(Debug, Clone, Default)]
struct Duty {
    /// End of its last shift, local.
    last_end: Option<NaiveDateTime>,
    /// Dates it works a sun-exposed window.
    sun: BTreeSet<NaiveDate>,
    /// Dates it works.
    days: BTreeSet<NaiveDate>,
}

/// A zone-window of one date: its expected incidents and the groups staffing it.
#[derive(Debug, Clone)]
struct Post {
    zone: usize,
    window: usize,
    expected: f64,
    groups: Vec<usize>,
    units: u32,
}

/// The forecast of the planned week, per window and zone.
struct Outlook {
    /// The method per window.
    methods: BTreeMap<String, Method>,
    /// As [`Plan::hot`].
    hot: BTreeMap<String, HashMap<u64, f64>>,
    /// As [`Plan::expected`].
    expected: BTreeMap<String, (HashMap<u64, f64>, [f64; 7])>,
    /// `[window][zone]`: expected incidents a week.
    zone_weekly: Vec<Vec<f64>>,
    /// `[window][zone]`: hot cells by score.
    hot_cells: Vec<Vec<Vec<u64>>>,
    /// `[window][weekday]`: share of the window's incidents.
    weekday: Vec<[f64; 7]>,
}

/// Each window's forecast for the planned week from the incidents before it, and what the
/// planner reads of it per zone.
fn outlook(
    inputs: &PlanInputs<'_>,
    zone_cells: &BTreeMap<String, Vec<u64>>,
) -> Result<Outlook, AnalyticsError> {
    let j = inputs.jurisdiction;
    let (tz, settings) = (j.timezone(), j.settings());
    let windows = &settings.windows;
    let area = StudyArea::from_polygons(j.county(), inputs.res)?;
    let weeks = Weeks::new(tz);
    let start_ms = weeks.start(inputs.monday, 0);
    let grid = Grid::new(&area, ForecastInput::rings_needed(&settings.hotspots));
    let before: Vec<IncidentPoint> = inputs
        .incidents
        .iter()
        .filter(|p| p.t_ms < start_ms)
        .copied()
        .collect();
    let events = Events::place(&area, before.iter().map(|p| (p.t_ms, p.lat, p.lon)));
    let input = ForecastInput {
        grid: &grid,
        events: &events,
        weeks,
        settings: &settings.hotspots,
    };
    let slots: Vec<Slot> = Slot::all_and_windows(tz, windows)
        .into_iter()
        .skip(1)
        .collect();
    let forecasts = forecast::next_week(&input, &slots, inputs.choice, start_ms)?;
    let k = i64::from(settings.hotspots.training_weeks);
    let training: Vec<IncidentPoint> = before
        .into_iter()
        .filter(|p| p.t_ms >= weeks.start(inputs.monday, -k))
        .collect();
    let weekday = weekday_shares(tz, windows, &training);

    let mut out = Outlook {
        methods: BTreeMap::new(),
        hot: BTreeMap::new(),
        expected: BTreeMap::new(),
        zone_weekly: Vec::new(),
        hot_cells: Vec::new(),
        weekday: Vec::new(),
    };
    for (w, days) in windows.iter().zip(&weekday) {
        let f = forecasts
            .get(&("window".to_owned(), w.name.clone()))
            .ok_or_else(|| AnalyticsError::Invalid(format!("no forecast for window {}", w.name)))?;
        out.methods.insert(w.name.clone(), f.method);
        let expected_per_cell = f.expected();
        let mut weekly = Vec::new();
        let mut hot_cells = Vec::new();
        let mut expected = HashMap::new();
        for z in &j.catalog().zones {
            let mut sum = 0.0;
            let mut zone_hot = Vec::new();
            for &c in zone_cells.get(&z.id).map_or(&[][..], Vec::as_slice) {
                let Some(i) = area.position(c).filter(|&i| f.score[i] > 0.0) else {
                    continue;
                };
                let e = expected_per_cell[i];
                sum += e;
                expected.insert(c, e);
                if f.hot[i] > 0.0 {
                    zone_hot.push((f.score[i], c));
                }
            }
            zone_hot.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            weekly.push(sum);
            hot_cells.push(zone_hot.into_iter().map(|(_, c)| c).collect());
        }
        out.hot.insert(
            w.name.clone(),
            area.cells()
                .iter()
                .zip(f.hot.iter().zip(&f.score))
                .filter(|(_, (h, s))| **h > 0.0 && **s > 0.0)
                .map(|(c, (h, _))| (*c, *h))
                .collect(),
        );
        out.expected.insert(w.name.clone(), (expected, *days));
        out.zone_weekly.push(weekly);
        out.hot_cells.push(hot_cells);
    }
    out.weekday = weekday;
    Ok(out)
}

/// Plans the week.
///
/// # Errors
/// A forecast method that does not exist, a zone or county the H3 tiler refuses, or a window
/// too short for its checkpoint stops and visits.
pub fn plan(inputs: &PlanInputs<'_>) -> Result<Plan, AnalyticsError> {
    let j = inputs.jurisdiction;
    let settings = j.settings();
    let windows = &settings.windows;
    let zones = &j.catalog().zones;
    let zone_cells: BTreeMap<String, Vec<u64>> = fence_cells("zone", zones, inputs.res)?
        .into_iter()
        .map(|f| (f.id, f.cells))
        .collect();
    let outlook = outlook(inputs, &zone_cells)?;

    // The current roster: the planned week's, else its most recent week.
    let roster = j.roster();
    let end = inputs.monday + Duration::days(7);
    let reference = if roster
        .iter()
        .any(|e| e.date >= inputs.monday && e.date < end)
    {
        Some(inputs.monday)
    } else {
        roster
            .iter()
            .map(|e| e.date)
            .max()
            .map(|d| d - Duration::days(i64::from(d.weekday().num_days_from_monday())))
    };
    let level = |zone: &str, date: NaiveDate| -> u8 {
        let Some(r) = reference else { return 3 };
        let day = r + Duration::days(date.signed_duration_since(inputs.monday).num_days());
        roster
            .iter()
            .filter(|e| e.date == day && e.zone == zone)
            .map(|e| e.level)
            .min()
            .unwrap_or(3)
    };

    let units = j.units();
    let mut duty = vec![Duty::default(); units.len()];
    let mut idle = Vec::new();
    let mut planned_roster = Vec::new();
    let mut unstaffed = Vec::new();
    let mut staffed: Vec<(NaiveDate, Post)> = Vec::new();
    let stations: BTreeSet<&str> = units.iter().map(|u| u.station.as_str()).collect();
    let mut station_groups = Vec::new();
    for station in stations {
        let members: Vec<usize> = (0..units.len())
            .filter(|&i| units[i].station == station)
            .collect();
        let station_zones: Vec<usize> = (0..zones.len())
            .filter(|&z| zones[z].station == station)
            .collect();
        if station_zones.is_empty() {
            idle.extend(members.iter().map(|&i| {
                (
                    units[i].id.clone(),
                    format!("station {station} has no zone"),
                )
            }));
            continue;
        }
        let (g, left) = groups(units, &members);
        idle.extend(left);
        station_groups.push((station, members.len() as u32, station_zones, g));
    }

    let checkpoints = zone_checkpoints(j.checkpoints(), zones, &zone_cells, windows);
    for d in 0..7 {
        let date = inputs.monday + Duration::days(d);
        for (_, n_units, station_zones, groups) in &station_groups {
            let wd = date.weekday().num_days_from_monday() as usize;
            let required = |z: usize| {
                let share = settings
                    .levels
                    .share(level(&zones[z].id, date))
                    .unwrap_or(0.0);
                required_force(share, *n_units, station_zones.len() as u32)
            };
            let mut candidates: Vec<(bool, bool, Post)> = Vec::new();
            for &z in station_zones {
                for (w, win) in windows.iter().enumerate() {
                    let mandatory = checkpoints
                        .cps
                        .iter()
                        .any(|(cz, cw, _)| *cz == z && *cw == w);
                    candidates.push((
                        win.crosses_midnight(),
                        mandatory,
                        Post {
                            zone: z,
                            window: w,
                            expected: outlook.zone_weekly[w][z] * outlook.weekday[w][wd],
                            groups: Vec::new(),
                            units: 0,
                        },
                    ));
                }
            }
            candidates.sort_by(|a, b| {
                (b.0, b.1)
                    .cmp(&(a.0, a.1))
                    .then(b.2.expected.total_cmp(&a.2.expected))
                    .then((a.2.zone, a.2.window).cmp(&(b.2.zone, b.2.window)))
            });
            let mut day_slots = Vec::new();
            for (_, _, mut slot) in candidates {
                let win = &windows[slot.window];
                let need = required(slot.zone);
                let mut picked = Vec::new();
                let mut count = 0;
                for g in preference(groups, win, units, &duty) {
                    if count >= need {
                        break;
                    }
                    if eligible(&groups[g], win, date, units, &duty) {
                        picked.push(g);
                        count += groups[g].units.len() as u32;
                    }
                }
                if count < need {
                    unstaffed.push((date, win.name.clone(), zones[slot.zone].id.clone()));
                    continue;
                }
                for &g in &picked {
                    book(&groups[g], win, date, units, &mut duty);
                }
                slot.groups = picked;
                slot.units = count;
                day_slots.push(slot);
            }
            // Units left over join the zone-windows with the most expected incidents per unit;
            // bikes only at night, cars and foot only outside the night windows, so the night
            // rule holds.
            for (g, group) in groups.iter().enumerate() {
                let best = day_slots
                    .iter_mut()
                    .filter(|s| {
                        let win = &windows[s.window];
                        (group.class == Class::Bike) == win.crosses_midnight()
                            && eligible(group, win, date, units, &duty)
                    })
                    .max_by(|a, b| {
                        (a.expected / f64::from(a.units + 1))
                            .total_cmp(&(b.expected / f64::from(b.units + 1)))
                    });
                if let Some(s) = best {
                    book(group, &windows[s.window], date, units, &mut duty);
                    s.groups.push(g);
                    s.units += group.units.len() as u32;
                }
            }
            for slot in day_slots {
                let win = &windows[slot.window];
                let zone = &zones[slot.zone].id;
                for &g in &slot.groups {
                    for &u in &groups[g].units {
                        planned_roster.push(RosterEntry {
                            date,
                            unit: units[u].id.clone(),
                            zone: zone.clone(),
                            window: win.name.clone(),
                            start: win.start,
                            end: win.end,
                            crew: groups[g].officers,
                            level: level(zone, date),
                        });
                    }
                }
                staffed.push((date, slot));
            }
        }
    }

    let mut visits = Vec::new();
    for (date, slot) in &staffed {
        let win = &windows[slot.window];
        let zone = &zones[slot.zone].id;
        let groups = &station_groups
            .iter()
            .find(|(s, ..)| *s == zones[slot.zone].station)
            .map(|(.., g)| g)
            .ok_or_else(|| AnalyticsError::Invalid(format!("no groups for zone {zone}")))?;
        let cps: Vec<&Checkpoint> = checkpoints
            .cps
            .iter()
            .filter(|(z, w, _)| *z == slot.zone && *w == slot.window)
            .map(|(_, _, c)| *c)
            .collect();
        let n = slot.groups.len();
        for (k, &g) in slot.groups.iter().enumerate() {
            let mine: Vec<&Checkpoint> = cps.iter().skip(k).step_by(n).copied().collect();
            let stops = schedule(
                win,
                &outlook.hot_cells[slot.window][slot.zone],
                (k, n),
                &mine,
                settings.hotspots.directed_share,
                inputs.res,
            )
            .map_err(|why| {
                AnalyticsError::Invalid(format!("{date} {} in {zone}: {why}", win.name))
            })?;
            for &u in &groups[g].units {
                for s in &stops {
                    visits.push(Visit {
                        date: *date,
                        window: win.name.clone(),
                        unit: units[u].id.clone(),
                        zone: zone.clone(),
                        ..s.clone()
                    });
                }
            }
        }
    }

    // Windows in the order of `[[windows]]`, stops by their minute in the window.
    let order = |w: &str| windows.iter().position(|x| x.name == w).unwrap_or(0);
    planned_roster.sort_by_key(|e| (e.date, order(&e.window), e.zone.clone(), e.unit.clone()));
    visits.sort_by_cached_key(|v| {
        let w = order(&v.window);
        (v.date, w, v.unit.clone(), v.offset_minutes(&windows[w]))
    });
    Ok(Plan {
        monday: inputs.monday,
        roster: planned_roster,
        visits,
        methods: outlook.methods,
        unstaffed,
        idle,
        unzoned_checkpoints: checkpoints.unzoned,
        reference,
        zone_cells,
        hot: outlook.hot,
        expected: outlook.expected,
    })
}

/// Per window, the share of its incidents on each weekday (of the instance's start),
/// smoothed: `(n + 1) / (N + 7)`.
fn weekday_shares(tz: Tz, windows: &[Window], incidents: &[IncidentPoint]) -> Vec<[f64; 7]> {
    let mut counts = vec![[0.0; 7]; windows.len()];
    for p in incidents {
        if let Some((w, date)) = instance_of(tz, windows, p.t_ms) {
            counts[w][date.weekday().num_days_from_monday() as usize] += 1.0;
        }
    }
    counts
        .into_iter()
        .map(|c| {
            let total: f64 = c.iter().sum();
            c.map(|n| (n + 1.0) / (total + 7.0))
        })
        .collect()
}

/// The window (index) and the local date of the window instance holding `t_ms`.
fn instance_of(tz: Tz, windows: &[Window], t_ms: i64) -> Option<(usize, NaiveDate)> {
    let local = tz
        .timestamp_millis_opt(t_ms)
        .single()?
        .naive_local()
        .and_utc()
        .timestamp_millis();
    match window_index_at(windows, local) {
        (Some(w), day) => Some((w, day_to_date(day))),
        (None, _) => None,
    }
}

/// Patrol checkpoints by zone and window.
struct ZoneCheckpoints<'a> {
    /// Zone index, window index, checkpoint.
    cps: Vec<(usize, usize, &'a Checkpoint)>,
    /// Ids of the patrol checkpoints in no zone.
    unzoned: Vec<String>,
}

/// Each patrol checkpoint's zone (the first that contains it, else the zone with the nearest
/// cell centre within [`NEAR_ZONE_M`]) and the window overlapping its own window longest (any
/// window when it has none: the longest).
fn zone_checkpoints<'a>(
    checkpoints: &'a [Checkpoint],
    zones: &[model::fences::Fence],
    zone_cells: &BTreeMap<String, Vec<u64>>,
    windows: &[Window],
) -> ZoneCheckpoints<'a> {
    let mut out = ZoneCheckpoints {
        cps: Vec::new(),
        unzoned: Vec::new(),
    };
    for c in checkpoints
        .iter()
        .filter(|c| c.kind == CheckpointKind::Patrol)
    {
        let point = geo::Point::new(c.lon, c.lat);
        let nearest = || {
            zones
                .iter()
                .enumerate()
                .filter_map(|(i, z)| {
                    let d = zone_cells
                        .get(&z.id)?
                        .iter()
                        .filter_map(|&cell| CellIndex::try_from(cell).ok())
                        .map(|cell| {
                            let ll = LatLng::from(cell);
                            haversine_m(c.lat, c.lon, ll.lat(), ll.lng())
                        })
                        .fold(f64::INFINITY, f64::min);
                    (d <= NEAR_ZONE_M).then_some((i, d))
                })
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(i, _)| i)
        };
        let Some(z) = zones
            .iter()
            .position(|z| z.geometry.contains(&point))
            .or_else(nearest)
        else {
            out.unzoned.push(c.id.clone());
            continue;
        };
        let overlap = |w: &Window| {
            (0..1440)
                .map(|m| hm(m / 60, m % 60))
                .filter(|&t| w.contains(t) && in_checkpoint_window(c, t))
                .count()
        };
        if let Some((w, _)) = windows
            .iter()
            .enumerate()
            .map(|(i, w)| (i, overlap(w)))
            .filter(|(_, n)| *n > 0)
            .max_by_key(|&(i, n)| (n, std::cmp::Reverse(i)))
        {
            out.cps.push((z, w, c));
        } else {
            out.unzoned.push(c.id.clone());
        }
    }
    out
}

fn in_checkpoint_window(c: &Checkpoint, t: NaiveTime) -> bool {
    c.window.is_none_or(|(start, end)| {
        Window {
            name: String::new(),
            start,
            end,
        }
        .contains(t)
    })
}

/// The station's groups in the order a window takes them: at night bikes, then cars, then
/// foot; by day foot, then cars, then bikes; within a class the least worked first.
fn preference(groups: &[Group], win: &Window, units: &[Unit], duty: &[Duty]) -> Vec<usize> {
    let rank = |c: Class| match (win.crosses_midnight(), c) {
        (true, Class::Bike) | (false, Class::Foot) => 0,
        (_, Class::Car) => 1,
        (true, Class::Foot) | (false, Class::Bike) => 2,
    };
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_by_key(|&g| {
        let lead = groups[g].units[0];
        (
            rank(groups[g].class),
            duty[lead].days.len(),
            units[lead].id.as_str(),
        )
    });
    order
}

/// The local start and end of `win` on `date`.
fn shift_span(win: &Window, date: NaiveDate) -> (NaiveDateTime, NaiveDateTime) {
    let end_date = if win.crosses_midnight() {
        date + Duration::days(1)
    } else {
        date
    };
    (date.and_time(win.start), end_date.and_time(win.end))
}

/// True when every unit of `group` may work `win` on `date`: free that date, rested, and
/// not in the sun two dates running.
fn eligible(group: &Group, win: &Window, date: NaiveDate, units: &[Unit], duty: &[Duty]) -> bool {
    let (start, _) = shift_span(win, date);
    let sun = is_sun_exposed(win);
    group.units.iter().all(|&u| {
        let d = &duty[u];
        !d.days.contains(&date)
            && d.last_end
                .is_none_or(|end| end + Duration::hours(MIN_REST_HOURS) <= start)
            && !(sun
                && units[u].kind != UnitKind::Car
                && d.sun.contains(&(date - Duration::days(1))))
    })
}

fn book(group: &Group, win: &Window, date: NaiveDate, units: &[Unit], duty: &mut [Duty]) {
    let (_, end) = shift_span(win, date);
    for &u in &group.units {
        let d = &mut duty[u];
        d.days.insert(date);
        d.last_end = Some(end);
        if is_sun_exposed(win) && units[u].kind != UnitKind::Car {
            d.sun.insert(date);
        }
    }
}

/// One group's stops in one window instance (date, window, unit and zone left blank): hot
/// visits spread evenly, the `k`th of `n` groups taking every `n`th hot cell from its `k`th,
/// then its checkpoints at the first free times inside their windows.
fn schedule(
    win: &Window,
    hot: &[u64],
    (k, n): (usize, usize),
    cps: &[&Checkpoint],
    directed_share: f64,
    res: Resolution,
) -> Result<Vec<Visit>, String> {
    let w = window_minutes(win);
    let v = VISIT_MAX_MIN as u32;
    let cp_minutes = |c: &Checkpoint| c.min_dwell_s.div_ceil(60).max(VISIT_MIN_MIN as u32);
    let cp_total: u32 = cps.iter().map(|c| cp_minutes(c) + TRAVEL_SLACK_MIN).sum();
    let room = w.saturating_sub(cp_total) / (v + TRAVEL_SLACK_MIN);
    let starts = |n: u32| -> Vec<u32> {
        let slot = w / n.max(1);
        (0..n)
            .map(|i| i * w / n + slot.saturating_sub(v) / 2)
            .collect()
    };
    let longest_gap = |s: &[u32]| {
        let mut edges = vec![0];
        for &t in s {
            edges.push(t);
            edges.push(t + v);
        }
        edges.push(w);
        edges
            .chunks(2)
            .map(|p| p[1].saturating_sub(p[0]))
            .max()
            .unwrap_or(w)
    };
    let mut count = 0;
    if !hot.is_empty() {
        count =
            ((directed_share * f64::from(w) / f64::from(v)).floor() as u32).clamp(1, room.max(1));
        while longest_gap(&starts(count)) > VISIT_EVERY_MIN && count < room {
            count += 1;
        }
        if count > room || longest_gap(&starts(count)) > VISIT_EVERY_MIN {
            return Err(format!(
                "{w} minutes hold {room} visits besides the checkpoint stops, too few for one \
                 every {VISIT_EVERY_MIN} minutes"
            ));
        }
    }
    let centre = |cell: u64| {
        CellIndex::try_from(cell).map_or((0.0, 0.0), |c| {
            let ll = LatLng::from(c);
            (ll.lat(), ll.lng())
        })
    };
    let stop =
        |offset: u32, minutes: u32, cell: u64, (lat, lon): (f64, f64), target: String| Visit {
            date: NaiveDate::default(),
            window: String::new(),
            unit: String::new(),
            zone: String::new(),
            cell,
            lat,
            lon,
            start: win.start + Duration::minutes(i64::from(offset)),
            minutes,
            target,
        };
    let mut out = Vec::new();
    let mut busy = Vec::new();
    for (i, t) in starts(count).into_iter().enumerate() {
        let cell = hot[(i * n + k) % hot.len()];
        out.push(stop(t, v, cell, centre(cell), "hotspot".into()));
        busy.push((t, t + v + TRAVEL_SLACK_MIN));
    }
    for c in cps {
        let m = cp_minutes(c);
        let fits = |t: u32| {
            busy.iter()
                .all(|&(s, e)| t + m + TRAVEL_SLACK_MIN <= s || t >= e)
                && (t..t + m)
                    .all(|x| in_checkpoint_window(c, win.start + Duration::minutes(i64::from(x))))
        };
        let t = (0..=w.saturating_sub(m))
            .find(|&t| fits(t))
            .ok_or_else(|| format!("no room for checkpoint {}", c.id))?;
        busy.push((t, t + m + TRAVEL_SLACK_MIN));
        let cell = LatLng::new(c.lat, c.lon).map_or(0, |ll| u64::from(ll.to_cell(res)));
        out.push(stop(t, m, cell, (c.lat, c.lon), c.id.clone()));
    }
    Ok(out)
}

/// Expected patrol minutes per (shift date, window, cell): each entry's visits on their
/// cells, the rest of its shift spread evenly over its zone's cells.
#[must_use]
pub fn presence(
    roster: &[RosterEntry],
    visits: &[Visit],
    zone_cells: &BTreeMap<String, Vec<u64>>,
) -> HashMap<(NaiveDate, String, u64), f64> {
    let mut by_shift: HashMap<(NaiveDate, &str, &str), Vec<&Visit>> = HashMap::new();
    for v in visits {
        by_shift
            .entry((v.date, v.window.as_str(), v.unit.as_str()))
            .or_default()
            .push(v);
    }
    let mut out: HashMap<(NaiveDate, String, u64), f64> = HashMap::new();
    for e in roster {
        let mut rest = f64::from(shift_minutes(e.start, e.end));
        for v in by_shift
            .get(&(e.date, e.window.as_str(), e.unit.as_str()))
            .map_or(&[][..], Vec::as_slice)
        {
            *out.entry((e.date, e.window.clone(), v.cell)).or_default() += f64::from(v.minutes);
            rest -= f64::from(v.minutes);
        }
        let cells = zone_cells.get(&e.zone).map_or(&[][..], Vec::as_slice);
        let each = rest.max(0.0) / cells.len().max(1) as f64;
        for &c in cells {
            *out.entry((e.date, e.window.clone(), c)).or_default() += each;
        }
    }
    out
}

/// The presence in each incident's cell during the window instance it fell in, summed over
/// the incidents; incidents outside every window count 0.
#[must_use]
pub fn dosage_on_incidents(
    presence: &HashMap<(NaiveDate, String, u64), f64>,
    incidents: &[IncidentPoint],
    tz: Tz,
    windows: &[Window],
    res: Resolution,
) -> f64 {
    incidents
        .iter()
        .filter_map(|p| {
            let (w, date) = instance_of(tz, windows, p.t_ms)?;
            let cell = u64::from(LatLng::new(p.lat, p.lon).ok()?.to_cell(res));
            presence.get(&(date, windows[w].name.clone(), cell))
        })
        .sum()
}

impl Plan {
    /// The current roster's entries of its reference week, moved onto the planned week
    /// weekday by weekday (empty without a reference week).
    #[must_use]
    pub fn current_roster(&self, roster: &[RosterEntry]) -> Vec<RosterEntry> {
        let Some(r) = self.reference else {
            return Vec::new();
        };
        let shift = self.monday.signed_duration_since(r);
        roster
            .iter()
            .filter(|e| e.date >= r && e.date < r + Duration::days(7))
            .map(|e| RosterEntry {
                date: e.date + shift,
                ..e.clone()
            })
            .collect()
    }

    /// Expected patrol minutes of `roster` and `visits` on the forecast hot spots, each cell
    /// weighted by its hot-spot weight in the window.
    #[must_use]
    pub fn dosage_on_hot(&self, roster: &[RosterEntry], visits: &[Visit]) -> f64 {
        presence(roster, visits, &self.zone_cells)
            .iter()
            .filter_map(|((_, w, c), m)| Some(m * self.hot.get(w)?.get(c)?))
            .sum()
    }
}

impl Plan {
    /// Expected patrol minutes of `roster` and `visits` at the forecast incidents: the
    /// presence in each cell and window instance × the incidents the forecast expects there
    /// (the cell's week in the window × the weekday's share), summed. The forecast's
    /// counterpart of [`dosage_on_incidents`].
    #[must_use]
    pub fn dosage_on_forecast(&self, roster: &[RosterEntry], visits: &[Visit]) -> f64 {
        presence(roster, visits, &self.zone_cells)
            .iter()
            .filter_map(|((d, w, c), m)| {
                let (cells, days) = self.expected.get(w)?;
                Some(m * cells.get(c)? * days[d.weekday().num_days_from_monday() as usize])
            })
            .sum()
    }
}

/// `roster.csv` (the header [`model::jurisdiction::ROSTER_HEADER`]).
#[must_use]
pub fn roster_csv(roster: &[RosterEntry]) -> String {
    let mut out = model::jurisdiction::ROSTER_HEADER.join(",");
    out.push('\n');
    for e in roster {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{}",
            e.date,
            field(&e.unit),
            field(&e.zone),
            field(&e.window),
            e.start.format("%H:%M"),
            e.end.format("%H:%M"),
            e.crew,
            e.level
        );
    }
    out
}

/// The header of the visits file.
pub const VISITS_HEADER: [&str; 10] = [
    "date", "window", "unit", "zone", "start", "minutes", "cell", "lat", "lon", "target",
];

/// The visits file: one row per unit and stop, the cell as H3 hex.
#[must_use]
pub fn visits_csv(visits: &[Visit]) -> String {
    let mut out = VISITS_HEADER.join(",");
    out.push('\n');
    for v in visits {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{:x},{:.6},{:.6},{}",
            v.date,
            field(&v.window),
            field(&v.unit),
            field(&v.zone),
            v.start.format("%H:%M"),
            v.minutes,
            v.cell,
            v.lat,
            v.lon,
            field(&v.target)
        );
    }
    out
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests;
