//! Hand-made sequences through the engine; times in the `check` strings are seconds.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{NaiveDate, NaiveTime, TimeZone, Utc};
use geo::{MultiPolygon, Polygon, polygon};
use h3o::Resolution;
use model::jurisdiction::{Checkpoint, CheckpointKind, RosterEntry};

use super::*;
use crate::geofence::{Catalog, Fence, FenceKind, GeofenceIndex};
use crate::ping::{EpochMillis, Flags};

/// Three beats side by side (a, b, c west to east, 0.01° wide); zone Z1 covers a, Z2 covers b.
fn index() -> Arc<GeofenceIndex> {
    let square = |w: f64| -> Polygon<f64> {
        polygon![
            (x: w, y: 41.80), (x: w + 0.01, y: 41.80), (x: w + 0.01, y: 41.81), (x: w, y: 41.81),
        ]
    };
    let fence = |id: &str, kind, w| Fence {
        id: id.into(),
        name: id.into(),
        station: "S".into(),
        kind,
        geometry: MultiPolygon::new(vec![square(w)]),
    };
    let catalog = Catalog {
        version: 7,
        beats: vec![
            fence("a", FenceKind::Beat, -87.70),
            fence("b", FenceKind::Beat, -87.69),
            fence("c", FenceKind::Beat, -87.68),
        ],
        zones: vec![
            fence("Z1", FenceKind::Zone, -87.70),
            fence("Z2", FenceKind::Zone, -87.69),
        ],
        repairs: Vec::new(),
    };
    Arc::new(GeofenceIndex::build(&catalog, Resolution::Ten).unwrap())
}

type Pos = (f64, f64);
/// Deep inside a (and Z1), b (and Z2), c, and north of everything.
const A: Pos = (41.805, -87.695);
const B: Pos = (41.805, -87.685);
const C: Pos = (41.805, -87.675);
/// 40 m either side of the a/b edge.
const A_EDGE: Pos = (41.805, -87.6905);
const B_EDGE: Pos = (41.805, -87.6895);

/// 2026-11-02 08:00 UTC, an hour before the test shift.
fn t0() -> EpochMillis {
    Utc.with_ymd_and_hms(2026, 11, 2, 8, 0, 0)
        .unwrap()
        .timestamp_millis()
}

fn config(reorder_window_s: u32) -> EventConfig {
    EventConfig {
        enter_fixes: 3,
        dwell_s: 30,
        reorder_window_s,
        live_window_s: reorder_window_s,
        sparse_gap_s: 60,
        sparse_len_m: 300.0,
        max_interpolate_s: 600,
        sample_step_m: 25.0,
        out_of_zone_grace_s: 300,
        idle_after_s: 300,
        idle_radius_m: 50.0,
        offline_after_s: 180,
        min_crew: 2,
        timezone: chrono_tz::UTC,
    }
}

fn engine(config: EventConfig, checkpoints: &[Checkpoint], roster: &[RosterEntry]) -> EventEngine {
    EventEngine::new(index(), checkpoints, roster, config).unwrap()
}

fn fix(t_s: i64, pos: Pos, flags: Flags) -> FixInput<'static> {
    FixInput {
        unit: "U1",
        fix_time: t0() + t_s * 1000,
        lat: pos.0,
        lon: pos.1,
        flags,
        assignment: None,
    }
}

/// Pushes `fixes` (seconds after `t0`) in the given order, then drains.
fn run(engine: &mut EventEngine, fixes: &[(i64, Pos)]) -> Vec<Event> {
    let mut events = Vec::new();
    for &(t, pos) in fixes {
        let pushed = engine.push(&fix(t, pos, Flags::empty()));
        assert_eq!(pushed.disposition, Disposition::Buffered, "fix at {t}");
        events.extend(pushed.events);
    }
    events.extend(engine.drain());
    events
}

/// One line per event: seconds after `t0`, then the kind and its main fields.
fn summary(events: &[Event]) -> Vec<String> {
    let s = |ms: EpochMillis| (ms - t0()) as f64 / 1000.0;
    events
        .iter()
        .map(|e| {
            assert_eq!((e.unit.as_str(), e.catalog_version), ("U1", 7));
            let what = match &e.kind {
                EventKind::Enter { layer, fence, .. } => format!("enter {layer:?} {fence}"),
                EventKind::Exit { layer, fence, .. } => format!("exit {layer:?} {fence}"),
                EventKind::Crossing {
                    layer,
                    fence,
                    left_ms,
                    ..
                } => format!("crossing {layer:?} {fence} to {:.0}", s(*left_ms)),
                EventKind::CheckpointVisit {
                    checkpoint,
                    arrival_ms,
                    ..
                } => format!("visit {checkpoint} from {}", s(*arrival_ms)),
                EventKind::OutOfZone {
                    zone,
                    current,
                    since_ms,
                    ..
                } => format!("out of {zone} in {current:?} since {}", s(*since_ms)),
                EventKind::Idle { since_ms, .. } => format!("idle since {}", s(*since_ms)),
                EventKind::Offline {
                    since_ms,
                    last_fix_ms,
                    ..
                } => format!(
                    "offline since {} last {:?}",
                    s(*since_ms),
                    last_fix_ms.map(s)
                ),
                EventKind::CrewBelowMinimum { crew, .. } => format!("crew {crew}"),
            };
            format!("{:.0} {what}", s(e.time_ms))
        })
        .collect()
}

fn check(fixes: &[(i64, Pos)], expect: &[&str]) {
    let mut engine = engine(config(120), &[], &[]);
    assert_eq!(summary(&run(&mut engine, fixes)), expect);
}

/// `n` fixes from `start`, every `step` seconds, at `pos`.
fn every(start: i64, step: i64, n: i64, pos: Pos) -> Vec<(i64, Pos)> {
    (0..n).map(|i| (start + i * step, pos)).collect()
}

#[test]
fn boundary_jitter_produces_no_events() {
    let mut fixes = every(0, 10, 4, A_EDGE);
    // Single fixes across the edge, then pairs, then three that span only 10 s.
    for i in 0..10 {
        let pos = if i % 2 == 0 { B_EDGE } else { A_EDGE };
        fixes.push((40 + i * 10, pos));
    }
    for i in 0..5 {
        let t = 140 + i * 30;
        fixes.extend([(t, B_EDGE), (t + 10, B_EDGE), (t + 20, A_EDGE)]);
    }
    fixes.extend([(300, B_EDGE), (305, B_EDGE), (310, B_EDGE), (320, A_EDGE)]);
    check(&fixes, &["0 enter Beat a", "0 enter Zone Z1"]);
}

#[test]
fn clean_crossing_is_one_exit_and_one_enter() {
    let mut fixes = every(0, 10, 4, A_EDGE);
    fixes.extend(every(40, 10, 6, B_EDGE));
    check(
        &fixes,
        &[
            "0 enter Beat a",
            "0 enter Zone Z1",
            "40 exit Beat a",
            "40 enter Beat b",
            "40 exit Zone Z1",
            "40 enter Zone Z2",
        ],
    );
    let mut engine = engine(config(0), &[], &[]);
    let events = run(&mut engine, &fixes);
    // Confirmed at 70 s, the first fix in b to make a run spanning 30 s.
    assert!(
        matches!(events[3].kind, EventKind::Enter { confirmed_ms, .. } if confirmed_ms == t0() + 70_000)
    );
    assert_eq!(engine.confirmed("U1"), (Some("b"), Some("Z2")));
}

#[test]
fn exit_to_nowhere_then_enter() {
    let north = (41.815, -87.695);
    let mut fixes = every(0, 10, 4, A);
    fixes.extend(every(40, 10, 4, north));
    fixes.extend(every(80, 10, 4, A));
    check(
        &fixes,
        &[
            "0 enter Beat a",
            "0 enter Zone Z1",
            "40 exit Beat a",
            "40 exit Zone Z1",
            "80 enter Beat a",
            "80 enter Zone Z1",
        ],
    );
}

#[test]
fn flagged_fixes_do_not_move_state() {
    let mut engine = engine(config(0), &[], &[]);
    let mut events = run(&mut engine, &every(0, 10, 4, A_EDGE));
    // Five jump fixes in b and a low-accuracy one: nothing.
    for t in [40, 50, 60, 70, 80] {
        events.extend(engine.push(&fix(t, B_EDGE, Flags::JUMP)).events);
    }
    events.extend(engine.push(&fix(90, B, Flags::LOW_ACCURACY)).events);
    assert_eq!(summary(&events), ["0 enter Beat a", "0 enter Zone Z1"]);
    // A flagged fix in a does not break a run in b.
    for (t, pos, flags) in [
        (100, B_EDGE, Flags::empty()),
        (110, B_EDGE, Flags::empty()),
        (115, A_EDGE, Flags::LOW_ACCURACY),
        (120, B_EDGE, Flags::empty()),
        (130, B_EDGE, Flags::empty()),
    ] {
        let pushed = engine.push(&fix(t, pos, flags));
        assert_eq!(pushed.disposition, Disposition::Buffered);
        events.extend(pushed.events);
    }
    assert_eq!(
        summary(&events)[2..],
        [
            "100 exit Beat a",
            "100 enter Beat b",
            "100 exit Zone Z1",
            "100 enter Zone Z2"
        ]
    );
}

#[test]
fn out_of_order_fixes_within_the_window_are_sorted() {
    let mut sorted = every(0, 10, 4, A_EDGE);
    sorted.extend(every(40, 10, 6, B_EDGE));
    // Blocks of three reversed: at most 20 s out of order.
    let shuffled: Vec<_> = sorted
        .chunks(3)
        .flat_map(|c| c.iter().rev().copied())
        .collect();
    assert_ne!(shuffled, sorted);
    let mut a = engine(config(120), &[], &[]);
    let mut b = engine(config(120), &[], &[]);
    let (in_order, out_of_order) = (run(&mut a, &sorted), run(&mut b, &shuffled));
    assert_eq!(in_order, out_of_order);
    assert_eq!(in_order.len(), 6);
}

#[test]
fn buffered_fixes_wait_for_the_window_or_a_tick() {
    let mut engine = engine(config(120), &[], &[]);
    for (t, pos) in every(0, 10, 4, A) {
        assert!(engine.push(&fix(t, pos, Flags::empty())).events.is_empty());
    }
    assert!(engine.tick(t0() + 149_000).events.is_empty());
    assert_eq!(
        summary(&engine.tick(t0() + 150_000).events),
        ["0 enter Beat a", "0 enter Zone Z1"]
    );
    // A fix 120 s after the newest releases everything up to itself minus the window.
    let mut engine = self::engine(config(120), &[], &[]);
    let mut events = Vec::new();
    for (t, pos) in every(0, 10, 4, A) {
        events.extend(engine.push(&fix(t, pos, Flags::empty())).events);
    }
    events.extend(engine.push(&fix(149, A, Flags::empty())).events);
    assert!(events.is_empty());
    events.extend(engine.push(&fix(150, A, Flags::empty())).events);
    assert_eq!(summary(&events), ["0 enter Beat a", "0 enter Zone Z1"]);
}

#[test]
fn late_and_duplicate_fixes_produce_no_events() {
    let mut engine = engine(config(120), &[], &[]);
    let mut events = run(&mut engine, &every(0, 10, 4, A));
    events.extend(engine.push(&fix(300, A, Flags::empty())).events);
    // 121 s older than the newest fix: late, even though it would make b.
    for t in [179, 170, 160] {
        let pushed = engine.push(&fix(t, B, Flags::empty()));
        assert_eq!(pushed.disposition, Disposition::Late);
        assert!(pushed.events.is_empty());
    }
    // Older than what was already fed (after the drain above, 30 s): late too.
    assert_eq!(
        engine.push(&fix(20, B, Flags::empty())).disposition,
        Disposition::Late
    );
    // Within the window but flagged late upstream.
    assert_eq!(
        engine.push(&fix(290, B, Flags::LATE)).disposition,
        Disposition::Late
    );
    assert_eq!(
        engine.push(&fix(300, B, Flags::empty())).disposition,
        Disposition::Duplicate
    );
    for (t, pos) in [(310, A), (320, A)] {
        let pushed = engine.push(&fix(t, pos, Flags::empty()));
        assert_eq!(pushed.disposition, Disposition::Buffered);
        events.extend(pushed.events);
    }
    events.extend(engine.drain());
    assert_eq!(summary(&events), ["0 enter Beat a", "0 enter Zone Z1"]);
}

fn checkpoint(window: Option<(u32, u32)>) -> Checkpoint {
    let hm = |h| NaiveTime::from_hms_opt(h, 0, 0).unwrap();
    Checkpoint {
        id: "CP1".into(),
        name: "Bank".into(),
        kind: CheckpointKind::Patrol,
        lat: A.0,
        lon: A.1,
        radius_m: 30.0,
        min_dwell_s: 60,
        window: window.map(|(s, e)| (hm(s), hm(e))),
    }
}

#[test]
fn checkpoint_visit_with_arrival_and_departure() {
    // 100 m north of the checkpoint, then 20 m away, then inside for 80 s.
    let far = (A.0 + 0.0009, A.1);
    let near = (A.0 + 0.00018, A.1);
    let mut fixes = vec![(0, far), (10, near)];
    fixes.extend(every(20, 10, 8, A));
    fixes.extend([(100, far), (110, far)]);
    // A stay of 50 s: too short.
    fixes.extend(every(120, 10, 6, A));
    fixes.push((180, far));
    let mut engine = engine(config(120), &[checkpoint(None)], &[]);
    let events = run(&mut engine, &fixes);
    let visits: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::CheckpointVisit {
                arrival_ms,
                departure_ms,
                ..
            } => Some((arrival_ms - t0(), departure_ms - t0(), e.time_ms - t0())),
            _ => None,
        })
        .collect();
    assert_eq!(visits, [(10_000, 90_000, 90_000)]);
    // Windowed 23:00-05:00 UTC: a visit at 08:00 does not count; 07:00-09:00 does.
    let mut engine = self::engine(config(120), &[checkpoint(Some((23, 5)))], &[]);
    assert!(
        !summary(&run(&mut engine, &fixes))
            .iter()
            .any(|s| s.contains("visit"))
    );
    let mut engine = self::engine(config(120), &[checkpoint(Some((7, 9)))], &[]);
    let events = summary(&run(&mut engine, &fixes));
    assert!(
        events.contains(&"90 visit CP1 from 10".to_owned()),
        "{events:?}"
    );
}

#[test]
fn sparse_segment_reports_crossings_not_enters() {
    let mut fixes = every(0, 10, 4, A);
    fixes.extend(every(150, 10, 4, C));
    let mut engine = engine(config(120), &[], &[]);
    let events = run(&mut engine, &fixes);
    let crossings: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Crossing {
                layer,
                fence,
                entered_ms,
                left_ms,
            } => Some((*layer, fence.clone(), entered_ms - t0(), left_ms - t0())),
            _ => None,
        })
        .collect();
    assert_eq!(crossings.len(), 2, "{crossings:?}");
    // b spans the middle half of the 120 s segment from 30 s to 150 s: 60 s to 120 s.
    for (layer, fence, entered, left) in &crossings {
        assert!(
            matches!(
                (layer, fence.as_str()),
                (Layer::Beat, "b") | (Layer::Zone, "Z2")
            ),
            "{layer:?} {fence}"
        );
        assert!((entered - 60_000).abs() < 1_000 && (left - 120_000).abs() < 1_000);
    }
    assert_eq!(
        summary(&events)
            .into_iter()
            .filter(|s| !s.contains("crossing"))
            .collect::<Vec<_>>(),
        [
            "0 enter Beat a",
            "0 enter Zone Z1",
            "150 exit Beat a",
            "150 enter Beat c",
            "150 exit Zone Z1",
        ]
    );
    // Dense fixes across b (every 10 s, 75 m apart) give hysteresis, not crossings.
    let dense: Vec<_> = (0..30)
        .map(|i| (i * 10, (A.0, A.1 + 0.0009 * i as f64)))
        .collect();
    let events = summary(&run(&mut self::engine(config(120), &[], &[]), &dense));
    assert!(!events.iter().any(|s| s.contains("crossing")), "{events:?}");
    assert!(events.contains(&"60 enter Beat b".to_owned()), "{events:?}");
    // A gap longer than max_interpolate_s: the path is unknown, nothing is inferred.
    let mut gap = every(0, 10, 4, A);
    gap.extend(every(700, 10, 4, C));
    let events = summary(&run(&mut self::engine(config(120), &[], &[]), &gap));
    assert!(!events.iter().any(|s| s.contains("crossing")), "{events:?}");
}

/// U1 on the day window 09:00-11:00 UTC of 2026-11-02 (one hour after `t0`) in `zone`.
fn roster(zone: &str, crew: u8) -> Vec<RosterEntry> {
    let hm = |h| NaiveTime::from_hms_opt(h, 0, 0).unwrap();
    vec![RosterEntry {
        date: NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
        unit: "U1".into(),
        zone: zone.into(),
        window: "day".into(),
        start: hm(9),
        end: hm(11),
        crew,
        level: 3,
    }]
}

const SHIFT_START: i64 = 3600;
const SHIFT_END: i64 = 3 * 3600;

#[test]
fn roster_with_unknown_zone_is_refused() {
    let err = EventEngine::new(index(), &[], &roster("Z9", 2), config(0))
        .err()
        .unwrap();
    assert!(err.to_string().contains("Z9"), "{err}");
}

#[test]
fn crew_below_minimum_once_per_shift() {
    let mut engine = engine(config(0), &[], &roster("Z1", 1));
    let at = |s: i64| t0() + s * 1000;
    assert!(engine.tick(at(SHIFT_START - 1)).events.is_empty());
    let mut events = engine.tick(at(SHIFT_START)).events;
    events.extend(engine.tick(at(SHIFT_START + 10)).events);
    events.extend(
        engine
            .push(&fix(SHIFT_START + 20, A, Flags::empty()))
            .events,
    );
    assert_eq!(summary(&events), ["3600 crew 1"]);
    let mut full = self::engine(config(0), &[], &roster("Z1", 2));
    let events: Vec<_> = (0..10)
        .flat_map(|i| {
            full.push(&fix(SHIFT_START + i * 20, A, Flags::empty()))
                .events
        })
        .collect();
    assert!(!summary(&events).iter().any(|s| s.contains("crew")));
}

#[test]
fn offline_after_no_fix_during_the_shift() {
    let mut engine = engine(config(0), &[], &roster("Z1", 2));
    let at = |s: i64| t0() + s * 1000;
    // Never sent a fix: counted from the shift start.
    assert!(engine.tick(at(SHIFT_START - 600)).events.is_empty());
    assert!(engine.tick(at(SHIFT_START + 179)).events.is_empty());
    let events = engine.tick(at(SHIFT_START + 180)).events;
    assert_eq!(summary(&events), ["3780 offline since 3600 last None"]);
    assert!(engine.tick(at(SHIFT_START + 300)).events.is_empty());
    // A fix re-arms it, counted from that fix.
    engine.push(&fix(SHIFT_START + 400, A, Flags::empty()));
    assert!(engine.tick(at(SHIFT_START + 579)).events.is_empty());
    assert_eq!(
        summary(&engine.tick(at(SHIFT_START + 580)).events),
        ["4180 offline since 4000 last Some(4000.0)"]
    );
    // Past the shift end: nothing.
    let mut quiet = self::engine(config(0), &[], &roster("Z1", 2));
    assert!(quiet.tick(at(SHIFT_END + 1000)).events.is_empty());
}

#[test]
fn idle_only_without_movement_during_the_shift() {
    let mut engine = engine(config(0), &[], &roster("Z1", 2));
    // Parked in its zone from 10 minutes before the shift: idle 300 s into the shift.
    let events = run(&mut engine, &every(SHIFT_START - 600, 30, 40, A));
    let idle: Vec<_> = summary(&events)
        .into_iter()
        .filter(|s| s.contains("idle"))
        .collect();
    assert_eq!(idle, ["3900 idle since 3600"]);
    // Moving 60 m every 30 s: never idle.
    let mut moving = self::engine(config(0), &[], &roster("Z1", 2));
    let fixes: Vec<_> = (0..40)
        .map(|i| {
            let east = if i % 20 < 10 { i % 20 } else { 20 - i % 20 };
            (SHIFT_START + i * 30, (A.0, A.1 + 0.00072 * east as f64))
        })
        .collect();
    let events = summary(&run(&mut moving, &fixes));
    assert!(!events.iter().any(|s| s.contains("idle")), "{events:?}");
}

#[test]
fn out_of_zone_after_grace_during_the_shift() {
    // In b (zone Z2) while rostered to Z1, moving so that it is not idle.
    let wander = |i: i64| (B.0 + 0.001 * (i % 4) as f64, B.1);
    let fixes: Vec<_> = (0..30)
        .map(|i| (SHIFT_START - 120 + i * 30, wander(i)))
        .collect();
    let mut engine = engine(config(0), &[], &roster("Z1", 2));
    let events = summary(&run(&mut engine, &fixes));
    assert_eq!(
        events,
        [
            "3480 enter Beat b",
            "3480 enter Zone Z2",
            "3930 out of Z1 in Some(\"Z2\") since 3600"
        ]
    );
    assert!(engine.out_of_zone("U1"));
    // Back in Z1: the spell ends once hysteresis confirms the zone.
    let back = every(SHIFT_START - 120 + 30 * 30, 30, 3, A);
    let events = summary(&run(&mut engine, &back));
    assert_eq!(
        events,
        [
            "4380 exit Beat b",
            "4380 enter Beat a",
            "4380 exit Zone Z2",
            "4380 enter Zone Z1"
        ]
    );
    assert!(!engine.out_of_zone("U1"));
    assert!(!engine.out_of_zone("nobody"));
    // Rostered to Z2: no alert.
    let mut engine = self::engine(config(0), &[], &roster("Z2", 2));
    let events = summary(&run(&mut engine, &fixes));
    assert!(!events.iter().any(|s| s.contains("out of")), "{events:?}");
    // Back in Z1 in time: leaves at 3600, back at 3840, confirmed by hysteresis at 3900 when
    // the grace (more than 300 s) has not run out yet.
    let mut fixes: Vec<_> = every(SHIFT_START - 300, 30, 10, A);
    fixes.extend((0..8).map(|i| (SHIFT_START + i * 30, wander(i))));
    fixes.extend(every(SHIFT_START + 240, 30, 10, A));
    let mut engine = self::engine(config(0), &[], &roster("Z1", 2));
    let events = summary(&run(&mut engine, &fixes));
    assert!(!events.iter().any(|s| s.contains("out of")), "{events:?}");
}

#[test]
fn events_serialize_as_tagged_json() {
    let mut engine = engine(config(0), &[], &[]);
    let events = run(&mut engine, &every(0, 10, 4, A));
    let json = serde_json::to_value(&events[0]).unwrap();
    assert_eq!(json["type"], "enter");
    assert_eq!(json["layer"], "beat");
    assert_eq!(json["fence"], "a");
    assert_eq!(json["catalog_version"], 7);
    assert_eq!(json["time_ms"], t0());
    assert_eq!(json["confirmed_ms"], t0() + 30_000);
}

/// One input of the engine in a script.
#[derive(Debug, Clone, Copy)]
enum Step {
    Push(i64, Pos, Flags),
    Tick(i64),
}

/// Runs `steps` on `engine`; durable and provisional events in the order they came out.
fn play(engine: &mut EventEngine, steps: &[Step]) -> Vec<Event> {
    let mut out = Vec::new();
    for step in steps {
        match *step {
            Step::Push(t, pos, flags) => {
                let pushed = engine.push(&fix(t, pos, flags));
                out.extend(pushed.events);
                out.extend(pushed.provisional);
            }
            Step::Tick(t) => {
                let ticked = engine.tick(t0() + t * 1000);
                out.extend(ticked.events);
                out.extend(ticked.provisional);
            }
        }
    }
    out
}

/// Two hours of one rostered unit (crew below the minimum, rostered to Z1): stays at the
/// checkpoint, jitters on the a/b edge, crosses into b and c, sparse jumps, out-of-order,
/// untrusted and late fixes, a silence long enough to be offline, and ticks throughout.
fn script() -> Vec<Step> {
    let mut steps = Vec::new();
    let mut push = |t: i64, pos: Pos, flags: Flags| steps.push(Step::Push(t, pos, flags));
    for i in 0..12 {
        push(SHIFT_START - 200 + i * 20, A, Flags::empty());
    }
    for i in 0..16 {
        let pos = if i % 3 == 0 { A_EDGE } else { B_EDGE };
        push(SHIFT_START + 60 + i * 10, pos, Flags::empty());
    }
    // Out of order by 15 s, a jump and a low-accuracy fix, then the unit settles in b.
    push(SHIFT_START + 235, B_EDGE, Flags::empty());
    push(SHIFT_START + 220, B_EDGE, Flags::empty());
    push(SHIFT_START + 245, C, Flags::JUMP);
    push(SHIFT_START + 255, A, Flags::LOW_ACCURACY);
    for i in 0..30 {
        push(SHIFT_START + 260 + i * 30, B, Flags::empty());
    }
    // Sparse: b to c and back to a, 90 s apart; a late fix in between.
    push(SHIFT_START + 1250, C, Flags::empty());
    push(SHIFT_START + 1300, B, Flags::LATE);
    push(SHIFT_START + 1340, A, Flags::empty());
    for i in 0..10 {
        push(SHIFT_START + 1360 + i * 15, A, Flags::empty());
    }
    // Silent for 20 minutes, then back in b.
    for i in 0..8 {
        push(SHIFT_START + 2700 + i * 20, B, Flags::empty());
    }
    // Ticks every 50 s over the whole span, merged in time order (a tick sorts before a fix
    // of the same second).
    let time = |s: &Step| match *s {
        Step::Push(t, ..) => (t, 1),
        Step::Tick(t) => (t, 0),
    };
    steps.extend((0..70).map(|i| Step::Tick(SHIFT_START - 300 + i * 50)));
    steps.sort_by_key(time);
    steps
}

#[test]
fn a_restored_snapshot_continues_exactly_where_the_engine_stood() {
    let make = || {
        let mut c = config(60);
        c.live_window_s = 0;
        engine(c, &[checkpoint(None)], &roster("Z1", 1))
    };
    let steps = script();
    let mut whole = make();
    let expected = play(&mut whole, &steps);
    let kinds: std::collections::BTreeSet<_> = expected.iter().map(|e| e.kind.name()).collect();
    // The script must reach every kind of state, or the comparison below proves little.
    for kind in [
        "enter",
        "exit",
        "crossing",
        "checkpoint_visit",
        "out_of_zone",
        "idle",
        "offline",
        "crew_below_minimum",
    ] {
        assert!(kinds.contains(kind), "{kind} missing from {kinds:?}");
    }
    assert!(expected.iter().any(|e| e.provisional));
    let mut fresh_differs = 0;
    for k in 0..=steps.len() {
        let mut first = make();
        let mut events = play(&mut first, &steps[..k]);
        let mut second = make();
        second.restore(&first.snapshot()).unwrap();
        events.extend(play(&mut second, &steps[k..]));
        assert_eq!(events, expected, "split before step {k}");
        assert_eq!(second.snapshot(), whole.snapshot(), "split before step {k}");
        // Without the snapshot the continuation is wrong somewhere.
        let mut events = play(&mut make(), &steps[..k]);
        events.extend(play(&mut make(), &steps[k..]));
        fresh_differs += usize::from(events != expected);
    }
    assert!(fresh_differs > steps.len() / 2, "{fresh_differs}");
}

#[test]
fn snapshots_keep_fences_by_id_and_refuse_garbage() {
    let mut c = config(120);
    c.live_window_s = 0;
    let mut engine = engine(c.clone(), &[], &[]);
    run(&mut engine, &every(0, 10, 4, A));
    let bytes = engine.snapshot();
    let mut other = self::engine(c, &[], &[]);
    other.restore(&bytes).unwrap();
    assert_eq!(other.confirmed("U1"), (Some("a"), Some("Z1")));
    assert_eq!(
        other.restore(&bytes[..bytes.len() - 1]),
        Err(SnapshotError::Corrupt)
    );
    let mut extra = bytes.clone();
    extra.push(0);
    assert_eq!(other.restore(&extra), Err(SnapshotError::Corrupt));
    let mut future = bytes;
    future[0] = 99;
    assert_eq!(
        other.restore(&future),
        Err(SnapshotError::Format { found: 99 })
    );
    // A failed restore leaves the state alone.
    assert_eq!(other.confirmed("U1"), (Some("a"), Some("Z1")));
}

/// Pushes one fix every 10 s (four on the a side of the edge, then b) and records, for every
/// event, the number of fixes pushed when it came out and whether it was provisional.
fn arrivals(config: EventConfig) -> Vec<(usize, bool, String)> {
    let mut engine = engine(config, &[], &[]);
    let mut fixes = every(0, 10, 4, A_EDGE);
    fixes.extend(every(40, 10, 20, B_EDGE));
    let mut out = Vec::new();
    for (n, &(t, pos)) in fixes.iter().enumerate() {
        let pushed = engine.push(&fix(t, pos, Flags::empty()));
        for e in pushed.events.iter().chain(&pushed.provisional) {
            let line = summary(std::slice::from_ref(e)).remove(0);
            out.push((n + 1, e.provisional, line));
        }
    }
    out
}

#[test]
fn provisional_events_come_with_the_confirming_fix_not_after_the_window() {
    let mut c = config(120);
    c.live_window_s = 0;
    let got = arrivals(c.clone());
    let provisional: Vec<_> = got.iter().filter(|a| a.1).collect();
    let durable: Vec<_> = got.iter().filter(|a| !a.1).collect();
    // The 4th fix (30 s) confirms a; the 8th (70 s) confirms the move to b.
    assert_eq!(
        provisional
            .iter()
            .map(|(n, _, s)| (*n, s.as_str()))
            .collect::<Vec<_>>(),
        [
            (4, "0 enter Beat a"),
            (4, "0 enter Zone Z1"),
            (8, "40 exit Beat a"),
            (8, "40 enter Beat b"),
            (8, "40 exit Zone Z1"),
            (8, "40 enter Zone Z2"),
        ]
    );
    // The durable events are the same, each out only once the unit's newest fix is 120 s
    // past the confirming one: 12 fixes of 10 s later.
    assert_eq!(durable.len(), provisional.len());
    for (p, d) in provisional.iter().zip(&durable) {
        assert_eq!(p.2, d.2);
        assert_eq!(d.0, p.0 + 12, "{d:?} after {p:?}");
    }
    // With the live window as long as the reorder window there is no live path.
    c.live_window_s = 120;
    assert!(arrivals(c).iter().all(|a| !a.1));
}

#[test]
fn the_live_path_waits_its_own_window_and_out_of_order_fixes_change_only_the_durable_path() {
    let mut c = config(120);
    c.live_window_s = 20;
    let got = arrivals(c.clone());
    // Two fixes (20 s) after the confirming fix.
    assert!(got.contains(&(6, true, "0 enter Beat a".into())), "{got:?}");
    // With live window 0, a fix older than the unit's newest moves only the durable path:
    // one fix back in a between b fixes stops the durable exit from being confirmed at 70 s.
    c.live_window_s = 0;
    let mut engine = engine(c, &[], &[]);
    let mut provisional = Vec::new();
    let mut durable = Vec::new();
    let mut fixes = every(0, 10, 4, A_EDGE);
    fixes.extend([(40, B_EDGE), (50, B_EDGE), (70, B_EDGE), (60, A_EDGE)]);
    fixes.extend(every(80, 10, 20, B_EDGE));
    for (t, pos) in fixes {
        let pushed = engine.push(&fix(t, pos, Flags::empty()));
        provisional.extend(pushed.provisional);
        durable.extend(pushed.events);
    }
    durable.extend(engine.drain());
    let p = summary(&provisional);
    let d = summary(&durable);
    assert!(p.contains(&"40 exit Beat a".to_owned()), "{p:?}");
    assert!(d.contains(&"70 exit Beat a".to_owned()), "{d:?}");
    assert!(provisional.iter().all(|e| e.provisional));
    assert!(durable.iter().all(|e| !e.provisional));
}
