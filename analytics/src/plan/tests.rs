//! The planner on the fixture county: every rule of the module doc checked on its plan (each
//! check shown to fail on a plan broken for it), and its plan against the county's roster on
//! the incidents that really came.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::OnceLock;

use chrono::{Datelike, Duration, NaiveDate};
use h3o::Resolution;
use model::jurisdiction::{CheckpointKind, Jurisdiction, RosterEntry, UnitKind, load_incidents};

use super::*;

fn jurisdiction() -> &'static Jurisdiction {
    static J: OnceLock<Jurisdiction> = OnceLock::new();
    J.get_or_init(|| Jurisdiction::load(&devkit::testkit::fixtures()).unwrap())
}

fn incidents() -> &'static [IncidentPoint] {
    static I: OnceLock<Vec<IncidentPoint>> = OnceLock::new();
    I.get_or_init(|| {
        load_incidents(&jurisdiction().incidents_path())
            .unwrap()
            .iter()
            .map(|i| IncidentPoint {
                t_ms: i.received.timestamp_millis(),
                lat: i.lat,
                lon: i.lon,
            })
            .collect()
    })
}

fn res() -> Resolution {
    Resolution::try_from(jurisdiction().settings().h3.analysis_res).unwrap()
}

fn plan_of(monday: NaiveDate) -> Plan {
    plan(&PlanInputs {
        jurisdiction: jurisdiction(),
        incidents: incidents(),
        choice: None,
        monday,
        res: res(),
    })
    .unwrap()
}

/// 2026-W47, a week the county's roster covers.
fn w47() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 16).unwrap()
}

fn the_plan() -> &'static Plan {
    static P: OnceLock<Plan> = OnceLock::new();
    P.get_or_init(|| plan_of(w47()))
}

fn window<'a>(j: &'a Jurisdiction, name: &str) -> &'a Window {
    j.window(name).unwrap()
}

fn kind(j: &Jurisdiction, unit: &str) -> UnitKind {
    j.unit(unit).unwrap().kind
}

/// Every shift is a `[[windows]]` entry with its times, inside the planned week.
fn check_windows(j: &Jurisdiction, p: &Plan) -> Vec<String> {
    p.roster
        .iter()
        .filter(|e| {
            j.window(&e.window)
                .is_none_or(|w| w.start != e.start || w.end != e.end)
                || e.date < p.monday
                || e.date >= p.monday + Duration::days(7)
        })
        .map(|e| format!("windows: {e:?}"))
        .collect()
}

/// One window per unit and date, and the rest between shifts.
fn check_one_window_a_day(j: &Jurisdiction, p: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    let mut shifts: BTreeMap<&str, Vec<&RosterEntry>> = BTreeMap::new();
    for e in &p.roster {
        shifts.entry(&e.unit).or_default().push(e);
    }
    for (unit, mut list) in shifts {
        list.sort_by_key(|e| (e.date, e.start));
        for pair in list.windows(2) {
            let (_, end) = shift_span(window(j, &pair[0].window), pair[0].date);
            let (start, _) = shift_span(window(j, &pair[1].window), pair[1].date);
            if pair[0].date == pair[1].date {
                out.push(format!(
                    "one window a day: {unit} twice on {}",
                    pair[0].date
                ));
            } else if end + Duration::hours(MIN_REST_HOURS) > start {
                out.push(format!("rest: {unit} from {end} to {start}"));
            }
        }
    }
    out
}

/// No foot, bike or e-bike unit in sun-exposed windows on two dates running.
fn check_sun(j: &Jurisdiction, p: &Plan) -> Vec<String> {
    let sun: HashSet<(&str, NaiveDate)> = p
        .roster
        .iter()
        .filter(|e| kind(j, &e.unit) != UnitKind::Car && is_sun_exposed(window(j, &e.window)))
        .map(|e| (e.unit.as_str(), e.date))
        .collect();
    sun.iter()
        .filter(|(u, d)| sun.contains(&(*u, *d + Duration::days(1))))
        .map(|(u, d)| format!("sun: {u} on {d} and the day after"))
        .collect()
}

/// A car or foot unit at night only when all the station's planned bikes and e-bikes are out
/// that night.
fn check_night_bikes(j: &Jurisdiction, p: &Plan) -> Vec<String> {
    let planned: HashSet<&str> = p.roster.iter().map(|e| e.unit.as_str()).collect();
    let night = |e: &&RosterEntry| window(j, &e.window).crosses_midnight();
    let mut out = Vec::new();
    for e in p.roster.iter().filter(night) {
        if matches!(kind(j, &e.unit), UnitKind::Bike | UnitKind::Ebike) {
            continue;
        }
        let station = &j.unit(&e.unit).unwrap().station;
        for b in j.units().iter().filter(|u| {
            &u.station == station
                && matches!(u.kind, UnitKind::Bike | UnitKind::Ebike)
                && planned.contains(u.id.as_str())
        }) {
            if !p
                .roster
                .iter()
                .filter(night)
                .any(|x| x.unit == b.id && x.date == e.date)
            {
                out.push(format!(
                    "night bikes: {} out at night on {} while {} is not",
                    e.unit, e.date, b.id
                ));
            }
        }
    }
    out
}

/// Bike, e-bike and foot entries carry at least two officers, and a unit of crew 1 has a
/// partner of its class in the same zone-window.
fn check_groups(j: &Jurisdiction, p: &Plan) -> Vec<String> {
    let class_of = |u: &str| class(kind(j, u));
    let mut out = Vec::new();
    for e in &p.roster {
        let u = j.unit(&e.unit).unwrap();
        if u.kind == UnitKind::Car {
            continue;
        }
        if e.crew < 2 {
            out.push(format!("groups: {} with {} officer", e.unit, e.crew));
        }
        if u.crew == 1
            && !p.roster.iter().any(|x| {
                x.unit != e.unit
                    && (x.date, &x.window, &x.zone) == (e.date, &e.window, &e.zone)
                    && class_of(&x.unit) == class(u.kind)
            })
        {
            out.push(format!(
                "groups: {} (crew 1) has no partner on {}",
                e.unit, e.date
            ));
        }
    }
    out
}

/// Each staffed zone-window holds the compliance job's required number; levels are the
/// current roster's for the zone and weekday (its most urgent), else 3.
fn check_force(j: &Jurisdiction, p: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    let mut count: BTreeMap<(NaiveDate, &str, &str), (u8, u32)> = BTreeMap::new();
    for e in &p.roster {
        count
            .entry((e.date, e.window.as_str(), e.zone.as_str()))
            .or_insert((e.level, 0))
            .1 += 1;
    }
    let zones = &j.catalog().zones;
    for ((date, w, zone), (level, n)) in count {
        let station = &zones.iter().find(|z| z.id == zone).unwrap().station;
        let units = j.units().iter().filter(|u| &u.station == station).count() as u32;
        let n_zones = zones.iter().filter(|z| &z.station == station).count() as u32;
        let share = j.settings().levels.share(level).unwrap();
        if n < required_force(share, units, n_zones) {
            out.push(format!("force: {date} {w} {zone}: {n} at level {level}"));
        }
        let day =
            p.reference.unwrap() + Duration::days(i64::from(date.weekday().num_days_from_monday()));
        let current = j
            .roster()
            .iter()
            .filter(|e| e.date == day && e.zone == zone)
            .map(|e| e.level)
            .min()
            .unwrap_or(3);
        if level != current {
            out.push(format!(
                "levels: {date} {zone} at {level}, the roster's is {current}"
            ));
        }
    }
    out
}

/// Hot-spot visits of 10-15 minutes on the zone's forecast hot cells, in the unit's shift,
/// no more than 2 hours apart (window edges included) wherever the zone has hot cells, the
/// stops and their slack within the window.
fn check_visits(j: &Jurisdiction, p: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    let mut by_shift: HashMap<(NaiveDate, &str, &str), Vec<&Visit>> = HashMap::new();
    for v in &p.visits {
        by_shift
            .entry((v.date, v.window.as_str(), v.unit.as_str()))
            .or_default()
            .push(v);
        if !p
            .roster
            .iter()
            .any(|e| (e.date, &e.window, &e.unit, &e.zone) == (v.date, &v.window, &v.unit, &v.zone))
        {
            out.push(format!("visits: {v:?} outside the unit's shifts"));
        }
        if !(10..=15).contains(&v.minutes) {
            out.push(format!("visits: {} minutes at {}", v.minutes, v.start));
        }
    }
    for e in &p.roster {
        let w = window(j, &e.window);
        let total = window_minutes(w);
        let stops = by_shift
            .get(&(e.date, e.window.as_str(), e.unit.as_str()))
            .cloned()
            .unwrap_or_default();
        let used: u32 = stops.iter().map(|v| v.minutes + TRAVEL_SLACK_MIN).sum();
        if used > total {
            out.push(format!(
                "visits: {used} minutes of stops in {total} ({e:?})"
            ));
        }
        let zone_cells: HashSet<u64> = p.zone_cells[&e.zone].iter().copied().collect();
        let hot = &p.hot[&e.window];
        let mut spans = Vec::new();
        for v in stops.iter().filter(|v| v.target == "hotspot") {
            if !zone_cells.contains(&v.cell) || !hot.contains_key(&v.cell) {
                out.push(format!(
                    "visits: {:x} is not a hot cell of {}",
                    v.cell, e.zone
                ));
            }
            let from = v.offset_minutes(w);
            spans.push((from, from + v.minutes));
        }
        if stops
            .iter()
            .any(|v| v.offset_minutes(w) + v.minutes > total)
        {
            out.push(format!("visits: a stop ends after the window ({e:?})"));
        }
        if zone_cells.iter().any(|c| hot.contains_key(c)) {
            spans.sort_unstable();
            let mut edge = 0;
            for (from, to) in spans.iter().copied().chain([(total, total)]) {
                if from.saturating_sub(edge) > VISIT_EVERY_MIN {
                    out.push(format!(
                        "visits: {} minutes without a visit ({e:?})",
                        from - edge
                    ));
                }
                edge = edge.max(to);
            }
        }
    }
    out
}

/// Every patrol checkpoint gets a stop every night of the week, inside its window, at least
/// its minimum dwell long, from a unit of its zone when it lies in one; or it is listed as
/// unzoned and lies more than [`NEAR_ZONE_M`] from every zone cell.
fn check_checkpoints(j: &Jurisdiction, p: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    let zones = &j.catalog().zones;
    for c in j
        .checkpoints()
        .iter()
        .filter(|c| c.kind == CheckpointKind::Patrol)
    {
        if p.unzoned_checkpoints.contains(&c.id) {
            let near = p.zone_cells.values().flatten().any(|&cell| {
                let ll = LatLng::from(CellIndex::try_from(cell).unwrap());
                haversine_m(c.lat, c.lon, ll.lat(), ll.lng()) <= NEAR_ZONE_M
            });
            if near {
                out.push(format!(
                    "checkpoints: {} is near a zone but not scheduled",
                    c.id
                ));
            }
            continue;
        }
        let point = geo::Point::new(c.lon, c.lat);
        let zone = zones.iter().find(|z| z.geometry.contains(&point));
        for d in 0..7 {
            let date = p.monday + Duration::days(d);
            let ok = p.visits.iter().any(|v| {
                let w = window(j, &v.window);
                v.target == c.id
                    && v.date == date
                    && zone.is_none_or(|z| v.zone == z.id)
                    && v.minutes * 60 >= c.min_dwell_s
                    && (v.offset_minutes(w)..v.offset_minutes(w) + v.minutes)
                        .all(|m| in_checkpoint_window(c, w.start + Duration::minutes(i64::from(m))))
            });
            if !ok {
                out.push(format!("checkpoints: {} not scheduled on {date}", c.id));
            }
        }
    }
    out
}

fn violations(j: &Jurisdiction, p: &Plan) -> Vec<String> {
    [
        check_windows,
        check_one_window_a_day,
        check_sun,
        check_night_bikes,
        check_groups,
        check_force,
        check_visits,
        check_checkpoints,
    ]
    .iter()
    .flat_map(|check| check(j, p))
    .collect()
}

#[test]
fn the_plan_keeps_every_rule() {
    let (j, p) = (jurisdiction(), the_plan());
    assert!(p.roster.len() > 100, "{} entries", p.roster.len());
    assert!(p.visits.iter().any(|v| v.target == "hotspot"));
    let broken = violations(j, p);
    assert!(broken.is_empty(), "{broken:#?}");
}

/// Breaks the plan with `edit` and expects a violation starting with `rule`.
fn breaks(rule: &str, edit: impl FnOnce(&mut Plan)) {
    let mut p = the_plan().clone();
    edit(&mut p);
    let found = violations(jurisdiction(), &p);
    assert!(
        found.iter().any(|v| v.starts_with(rule)),
        "{rule} not caught: {found:#?}"
    );
}

fn entry_where(p: &mut Plan, keep: impl Fn(&RosterEntry) -> bool) -> &mut RosterEntry {
    p.roster.iter_mut().find(|e| keep(e)).unwrap()
}

#[test]
fn each_check_catches_its_rule_broken() {
    let j = jurisdiction();
    let is = |k: UnitKind| move |e: &RosterEntry| j.unit(&e.unit).unwrap().kind == k;
    breaks("windows", |p| entry_where(p, |_| true).end = hm(12, 0));
    breaks("one window a day", |p| {
        // The same unit again in another window of the same date.
        let e = p.roster[0].clone();
        let other = j
            .settings()
            .windows
            .iter()
            .find(|w| w.name != e.window)
            .unwrap();
        p.roster.push(RosterEntry {
            window: other.name.clone(),
            start: other.start,
            end: other.end,
            ..e
        });
    });
    breaks("rest", |p| {
        // A night followed by the next morning's window.
        let night = p
            .roster
            .iter()
            .find(|e| window(j, &e.window).crosses_midnight())
            .unwrap()
            .clone();
        let day = &j.settings().windows[0];
        p.roster
            .retain(|e| !(e.unit == night.unit && e.date == night.date + Duration::days(1)));
        p.roster.push(RosterEntry {
            date: night.date + Duration::days(1),
            window: day.name.clone(),
            start: day.start,
            end: day.end,
            ..night
        });
    });
    breaks("sun", |p| {
        let e = p
            .roster
            .iter()
            .find(|e| is(UnitKind::Foot)(e) && is_sun_exposed(window(j, &e.window)))
            .unwrap()
            .clone();
        p.roster
            .retain(|x| !(x.unit == e.unit && x.date == e.date + Duration::days(1)));
        p.roster.push(RosterEntry {
            date: e.date + Duration::days(1),
            ..e
        });
    });
    breaks("night bikes", |p| {
        let bike = entry_where(p, |e| {
            is(UnitKind::Bike)(e) && window(j, &e.window).crosses_midnight()
        })
        .clone();
        let station = &j.unit(&bike.unit).unwrap().station;
        let car = entry_where(p, |e| {
            is(UnitKind::Car)(e)
                && e.date == bike.date
                && &j.unit(&e.unit).unwrap().station == station
        })
        .unit
        .clone();
        p.roster.retain(|e| !(e.unit == car && e.date == bike.date));
        p.roster
            .retain(|e| !(e.unit == bike.unit && e.date == bike.date));
        p.roster.push(RosterEntry { unit: car, ..bike });
    });
    breaks("groups", |p| entry_where(p, is(UnitKind::Foot)).crew = 1);
    breaks("force", |p| {
        let first = p.roster[0].clone();
        p.roster.retain(|e| {
            (e.date, &e.window, &e.zone) != (first.date, &first.window, &first.zone)
                || e.unit == first.unit
        });
    });
    breaks("levels", |p| {
        let e = entry_where(p, |_| true);
        e.level = if e.level == 1 { 2 } else { e.level - 1 };
    });
    breaks("visits", |p| {
        p.visits
            .iter_mut()
            .find(|v| v.target == "hotspot")
            .unwrap()
            .minutes = 20;
    });
    breaks("visits", |p| {
        // Drop one shift's hot-spot visits after its first: a gap of more than 2 hours.
        let v = p
            .visits
            .iter()
            .find(|v| v.target == "hotspot" && window_minutes(window(j, &v.window)) > 300)
            .unwrap()
            .clone();
        let mut kept = false;
        p.visits.retain(|x| {
            let same = (x.date, &x.window, &x.unit) == (v.date, &v.window, &v.unit)
                && x.target == "hotspot";
            let keep = !same || !kept;
            kept |= same;
            keep
        });
    });
    breaks("visits", |p| {
        let zone = p.visits[0].zone.clone();
        let outside = p
            .zone_cells
            .iter()
            .find(|(z, _)| **z != zone)
            .map(|(_, c)| c[0])
            .unwrap();
        p.visits
            .iter_mut()
            .find(|v| v.target == "hotspot")
            .unwrap()
            .cell = outside;
    });
    breaks("visits", |p| {
        // A stop that starts 5 minutes before its window ends.
        let v = p
            .visits
            .iter_mut()
            .find(|v| !window(j, &v.window).crosses_midnight())
            .unwrap();
        v.start = window(j, &v.window).end - Duration::minutes(5);
    });
    breaks("checkpoints", |p| {
        // A checkpoint a zone reaches, listed as unzoned instead.
        let cp = p
            .visits
            .iter()
            .find(|v| v.target != "hotspot")
            .unwrap()
            .target
            .clone();
        p.visits.retain(|v| v.target != cp);
        p.unzoned_checkpoints.push(cp);
    });
    breaks("checkpoints", |p| {
        let cp = p
            .visits
            .iter()
            .find(|v| v.target != "hotspot")
            .unwrap()
            .clone();
        p.visits
            .retain(|v| !(v.target == cp.target && v.date == cp.date));
    });
}

/// The plan's roster loads with the model's loader, in a copy of the fixture county.
#[test]
fn the_plans_roster_loads() {
    let dir = tempfile::tempdir().unwrap();
    let src = devkit::testkit::fixtures();
    for f in std::fs::read_dir(&src).unwrap() {
        let f = f.unwrap();
        if f.file_type().unwrap().is_file() {
            std::fs::copy(f.path(), dir.path().join(f.file_name())).unwrap();
        }
    }
    std::fs::write(
        dir.path().join("roster.csv"),
        roster_csv(&the_plan().roster),
    )
    .unwrap();
    let loaded = Jurisdiction::load(dir.path()).unwrap();
    assert_eq!(loaded.roster(), the_plan().roster.as_slice());
}

/// Plans weeks the county's roster covers from the weeks before them, and puts more
/// expected patrol minutes than that roster where and when each week's incidents came.
#[test]
fn the_plan_meets_more_of_next_weeks_incidents_than_the_roster() {
    let j = jurisdiction();
    let tz = j.timezone();
    let windows = &j.settings().windows;
    let weeks = Weeks::new(tz);
    let mut totals = (0.0, 0.0);
    for monday in [
        NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
        NaiveDate::from_ymd_opt(2026, 11, 9).unwrap(),
        w47(),
    ] {
        let p = if monday == w47() {
            the_plan().clone()
        } else {
            plan_of(monday)
        };
        let (from, to) = (weeks.start(monday, 0), weeks.start(monday, 1));
        let came: Vec<IncidentPoint> = incidents()
            .iter()
            .filter(|i| (from..to).contains(&i.t_ms))
            .copied()
            .collect();
        let roster: Vec<RosterEntry> = j
            .roster()
            .iter()
            .filter(|e| e.date >= monday && e.date < monday + Duration::days(7))
            .cloned()
            .collect();
        assert!(!came.is_empty() && !roster.is_empty());
        let planned = dosage_on_incidents(
            &presence(&p.roster, &p.visits, &p.zone_cells),
            &came,
            tz,
            windows,
            res(),
        );
        let current = dosage_on_incidents(
            &presence(&roster, &[], &p.zone_cells),
            &came,
            tz,
            windows,
            res(),
        );
        println!(
            "{}: {} incidents; patrol minutes where and when they came: plan {planned:.1}, \
             roster {current:.1} ({} vs {} shifts)",
            forecast::week_name(monday),
            came.len(),
            p.roster.len(),
            roster.len()
        );
        totals.0 += planned;
        totals.1 += current;
        assert!(planned > current, "{planned} <= {current}");
    }
    println!("three weeks: plan {:.1}, roster {:.1}", totals.0, totals.1);
}
