use proptest::prelude::*;

use super::*;
use crate::ping::InvalidPing;

/// The radius of [`haversine_m`]'s sphere.
const EARTH_RADIUS_M: f64 = Haversine.radius();

const RECV: EpochMillis = 1_793_606_460_000;

fn cfg() -> ValidateConfig {
    ValidateConfig {
        max_acc_m: 50.0,
        future_tolerance_ms: 5_000,
        reorder_window_ms: 300_000,
        known_units: None,
        max_age_ms: None,
    }
}

/// 1906-01-01T00:00:00Z, a date seen from a device with a broken clock.
const TST_1906: i64 = -2_019_686_400;

fn raw(unit: &str, lat: f64, lon: f64, tst: i64) -> RawPing {
    RawPing {
        station: "central".into(),
        unit: unit.into(),
        lat,
        lon,
        tst,
        acc: None,
        vel: None,
        cog: None,
        alt: None,
        batt: None,
        tid: None,
    }
}

fn reason(r: Result<Ping, ValidateError>) -> Option<RejectReason> {
    r.err().map(|e| e.reason)
}

#[test]
fn future_tolerance_boundary() {
    let at = RECV / 1000 + 5;
    assert!(validate(raw("B12", 40.1, -88.9, at), RECV, &cfg()).is_ok());
    assert_eq!(
        reason(validate(raw("B12", 40.1, -88.9, at + 1), RECV, &cfg())),
        Some(RejectReason::FutureTimestamp)
    );
}

#[test]
fn late_and_low_accuracy_boundaries() {
    let edge = (RECV - 300_000) / 1000;
    let on_edge = validate(raw("B12", 40.1, -88.9, edge), RECV, &cfg()).unwrap();
    assert_eq!(on_edge.flags(), Flags::empty());
    let late = validate(raw("B12", 40.1, -88.9, edge - 1), RECV, &cfg()).unwrap();
    assert_eq!(late.flags(), Flags::LATE);

    let with_acc = |acc| {
        let mut r = raw("B12", 40.1, -88.9, RECV / 1000);
        r.acc = Some(acc);
        validate(r, RECV, &cfg()).unwrap().flags()
    };
    assert_eq!(with_acc(50.0), Flags::empty());
    assert_eq!(with_acc(50.5), Flags::LOW_ACCURACY);
    assert_eq!(
        with_acc(-3.0),
        Flags::empty(),
        "negative accuracy is dropped, not flagged"
    );
}

/// A unit list: B12 of station `central`.
fn with_units() -> ValidateConfig {
    ValidateConfig {
        known_units: Some([("B12".to_owned(), "central".to_owned())].into()),
        ..cfg()
    }
}

#[test]
fn unknown_unit_only_with_a_list() {
    assert!(validate(raw("X9", 40.1, -88.9, RECV / 1000), RECV, &cfg()).is_ok());
    let c = with_units();
    assert!(validate(raw("B12", 40.1, -88.9, RECV / 1000), RECV, &c).is_ok());
    let err = validate(raw("X9", 40.1, -88.9, RECV / 1000), RECV, &c).unwrap_err();
    assert_eq!(err.reason, RejectReason::UnknownUnit);
    assert_eq!(err.detail, "unit \"X9\" is not in the unit list");
    let r = err.to_rejection("owntracks/central/X9", b"{}", RECV);
    assert_eq!(
        (r.reason, r.payload.as_slice()),
        (RejectReason::UnknownUnit, b"{}".as_slice())
    );
}

#[test]
fn station_must_be_the_units_own() {
    let mut elsewhere = raw("B12", 40.1, -88.9, RECV / 1000);
    elsewhere.station = "north".into();
    assert!(
        validate(elsewhere.clone(), RECV, &cfg()).is_ok(),
        "no unit list, no station check"
    );
    let err = validate(elsewhere.clone(), RECV, &with_units()).unwrap_err();
    assert_eq!(err.reason, RejectReason::StationMismatch);
    assert_eq!(err.reason.as_str(), "station_mismatch");
    assert_eq!(
        err.detail,
        "unit \"B12\" belongs to station \"central\", not \"north\""
    );
    // Station ids are compared exactly, as units.csv spells them.
    elsewhere.station = "Central".into();
    assert_eq!(
        reason(validate(elsewhere, RECV, &with_units())),
        Some(RejectReason::StationMismatch)
    );
}

#[test]
fn bad_unit_and_non_finite() {
    let long = "u".repeat(65);
    assert_eq!(
        reason(validate(raw(&long, 40.1, -88.9, RECV / 1000), RECV, &cfg())),
        Some(RejectReason::BadCoordinates(InvalidPing::BadUnit))
    );
    assert_eq!(
        reason(validate(
            raw("B12", f64::NAN, -88.9, RECV / 1000),
            RECV,
            &cfg()
        )),
        Some(RejectReason::BadCoordinates(InvalidPing::NonFinite))
    );
}

#[test]
fn extras_are_carried_and_battery_checked() {
    let mut r = raw("B12", 40.1, -88.9, RECV / 1000);
    (r.acc, r.vel, r.cog, r.alt, r.batt) =
        (Some(8.0), Some(35.5), Some(270.0), Some(221.0), Some(86.6));
    let e = validate(r.clone(), RECV, &cfg()).unwrap().extras();
    assert_eq!(
        (e.acc, e.speed_kmh, e.heading, e.alt, e.batt),
        (Some(8.0), Some(35.5), Some(270.0), Some(221.0), Some(87))
    );
    r.batt = Some(101.0);
    assert_eq!(
        validate(r.clone(), RECV, &cfg()).unwrap().extras().batt,
        None
    );
    r.batt = Some(-1.0);
    assert_eq!(validate(r, RECV, &cfg()).unwrap().extras().batt, None);
}

#[test]
fn fix_times_before_2000_are_refused() {
    let floor_s = MIN_FIX_TIME / 1000;
    assert_eq!(floor_s, 946_684_800, "2000-01-01T00:00:00Z");
    for tst in [0, 1, 86_400, TST_1906, floor_s - 1, i64::MIN] {
        let err = validate(raw("B12", 40.1, -88.9, tst), RECV, &cfg()).unwrap_err();
        assert_eq!(err.reason, RejectReason::BadTimestamp, "tst {tst}");
    }
    let err = validate(raw("B12", 40.1, -88.9, 0), RECV, &cfg()).unwrap_err();
    assert_eq!(err.detail, "tst 0 is before 2000-01-01T00:00:00Z");
    assert_eq!(err.reason.as_str(), "bad_timestamp");
    // The floor itself is a time like any other: old, so late, but stored.
    let on_floor = validate(raw("B12", 40.1, -88.9, floor_s), RECV, &cfg()).unwrap();
    assert_eq!(
        (on_floor.fix_time(), on_floor.flags()),
        (MIN_FIX_TIME, Flags::LATE)
    );
}

#[test]
fn the_floor_holds_whatever_the_receive_time() {
    // An import's receive time is its own; a fix of 1970 is refused there too, and so is one
    // received "in 1970" (a receiver whose own clock was never set).
    assert_eq!(
        reason(validate(raw("B12", 40.1, -88.9, 0), 0, &cfg())),
        Some(RejectReason::BadTimestamp)
    );
    let mut c = cfg();
    c.reorder_window_ms = i64::MAX;
    assert_eq!(
        reason(validate(raw("B12", 40.1, -88.9, TST_1906), RECV, &c)),
        Some(RejectReason::BadTimestamp)
    );
}

#[test]
fn max_age_refuses_only_when_set() {
    const WEEK_MS: i64 = 7 * 24 * 3600 * 1000;
    let live = ValidateConfig {
        max_age_ms: Some(WEEK_MS),
        ..cfg()
    };
    let edge = (RECV - WEEK_MS) / 1000;
    let on_edge = validate(raw("B12", 40.1, -88.9, edge), RECV, &live).unwrap();
    assert_eq!(
        on_edge.flags(),
        Flags::LATE,
        "a week old: kept, flagged late"
    );
    let err = validate(raw("B12", 40.1, -88.9, edge - 1), RECV, &live).unwrap_err();
    assert_eq!(err.reason, RejectReason::TooOld);
    assert_eq!(err.reason.as_str(), "too_old");
    assert_eq!(
        err.detail,
        "fix is 604801000 ms before receive time (maximum age 604800000 ms)"
    );
    // A GPS week-number rollover: 1024 weeks back, after the floor.
    let rolled = RECV / 1000 - 1024 * 7 * 24 * 3600;
    assert!(rolled * 1000 > MIN_FIX_TIME);
    assert_eq!(
        reason(validate(raw("B12", 40.1, -88.9, rolled), RECV, &live)),
        Some(RejectReason::TooOld)
    );
    // Without a maximum age (imports), history is history.
    let old = validate(raw("B12", 40.1, -88.9, rolled), RECV, &cfg()).unwrap();
    assert_eq!(old.flags(), Flags::LATE);
}

#[test]
fn first_failing_check_names_the_reason() {
    let live = ValidateConfig {
        max_age_ms: Some(60_000),
        ..with_units()
    };
    let mut r = raw("B12", 91.0, -88.9, 0);
    r.station = "north".into();
    assert_eq!(
        reason(validate(r.clone(), RECV, &live)),
        Some(RejectReason::StationMismatch)
    );
    r.station = "central".into();
    assert_eq!(
        reason(validate(r.clone(), RECV, &live)),
        Some(RejectReason::BadCoordinates(InvalidPing::OutOfRange))
    );
    r.lat = 40.1;
    assert_eq!(
        reason(validate(r, RECV, &live)),
        Some(RejectReason::BadTimestamp),
        "before the floor, not merely too old"
    );
}

#[test]
fn extreme_times_saturate() {
    assert_eq!(
        reason(validate(raw("B12", 40.1, -88.9, i64::MAX), RECV, &cfg())),
        Some(RejectReason::FutureTimestamp)
    );
    let live = ValidateConfig {
        max_age_ms: Some(i64::MAX),
        ..cfg()
    };
    let p = validate(raw("B12", 40.1, -88.9, RECV / 1000), i64::MAX, &live).unwrap();
    assert_eq!(p.flags(), Flags::LATE);
}

#[test]
fn haversine_known_distances() {
    assert_eq!(haversine_m(40.1, -88.9, 40.1, -88.9), 0.0);
    // A quarter meridian.
    let quarter = haversine_m(0.0, 10.0, 90.0, 10.0);
    assert!((quarter - EARTH_RADIUS_M * std::f64::consts::FRAC_PI_2).abs() < 1e-6);
    // Antipodes, across the antimeridian. Haversine is ill-conditioned there: metres, not mm.
    let half = haversine_m(10.0, 179.0, -10.0, -1.0);
    assert!(
        (half - EARTH_RADIUS_M * std::f64::consts::PI).abs() < 1.0,
        "{half}"
    );
    // One degree of longitude on the equator.
    let degree = haversine_m(0.0, -88.5, 0.0, -89.5);
    assert!((degree - 111_195.08).abs() < 0.01, "{degree}");
    assert_eq!(
        haversine_m(1.0, 2.0, 3.0, 4.0),
        haversine_m(3.0, 4.0, 1.0, 2.0)
    );
}

fn ping(unit: &str, t: EpochMillis, lat: f64, lon: f64, flags: Flags) -> Ping {
    Ping::new(unit, "central", t, t, lat, lon, Extras::default(), flags).unwrap()
}

/// Runs the fixes through one detector and returns which were flagged JUMP.
fn jumps(fixes: &[(&str, EpochMillis, f64, Flags)]) -> Vec<bool> {
    let mut d = JumpDetector::new();
    fixes
        .iter()
        .map(|&(unit, t, lat, flags)| {
            let mut p = ping(unit, t, lat, -88.9, flags);
            d.check(&mut p, 120.0);
            p.flags().contains(Flags::JUMP)
        })
        .collect()
}

// 0.01 degree of latitude is 1112 m: 40 km/h over 100 s, 400 km/h over 10 s.
const E: Flags = Flags::empty();

#[test]
fn jump_does_not_move_the_reference() {
    let flagged = jumps(&[
        ("B12", 0, 40.00, E),
        ("B12", 10_000, 40.01, E),  // 400 km/h: jump
        ("B12", 100_000, 40.01, E), // 40 km/h from the first fix, not from the jump
        ("B12", 110_000, 40.00, E), // back 1112 m in 10 s: jump
    ]);
    assert_eq!(flagged, [false, true, false, true]);
}

#[test]
fn older_fixes_are_not_compared_and_units_are_separate() {
    let flagged = jumps(&[
        ("B12", 100_000, 40.00, E),
        ("B12", 50_000, 45.00, E),  // older than the reference
        ("B14", 101_000, 41.00, E), // another unit: no reference yet
        ("B12", 200_000, 40.01, E),
    ]);
    assert_eq!(flagged, [false, false, false, false]);
}

#[test]
fn untrusted_fixes_are_checked_but_never_the_reference() {
    let flagged = jumps(&[
        ("B12", 0, 40.00, E),
        ("B12", 100_000, 40.50, Flags::LOW_ACCURACY), // far: flagged JUMP too
        ("B12", 200_000, 40.02, Flags::LOW_ACCURACY), // 40 km/h: fine, but not a new reference
        ("B12", 210_000, 40.00, E), // back at the first fix; 800 km/h from the third
    ]);
    assert_eq!(flagged, [false, true, false, false]);
}

#[test]
fn same_second_counts_as_one_second() {
    // 20 m in "0 s" is 72 km/h at the one-second floor: fine; 50 m is 180 km/h: jump.
    let flagged = jumps(&[
        ("B12", 0, 40.0, E),
        ("B12", 0, 40.00018, E),
        ("B12", 0, 40.00063, E),
    ]);
    assert_eq!(flagged, [false, false, true]);
}

/// The point `dist_m` from (lat, lon) along `bearing_deg`, on the haversine sphere.
fn destination(lat: f64, lon: f64, bearing_deg: f64, dist_m: f64) -> (f64, f64) {
    let (phi1, lambda1, theta) = (lat.to_radians(), lon.to_radians(), bearing_deg.to_radians());
    let delta = dist_m / EARTH_RADIUS_M;
    let phi2 = (phi1.sin() * delta.cos() + phi1.cos() * delta.sin() * theta.cos()).asin();
    let lambda2 = lambda1
        + (theta.sin() * delta.sin() * phi1.cos()).atan2(delta.cos() - phi1.sin() * phi2.sin());
    let lon2 = (lambda2.to_degrees() + 540.0).rem_euclid(360.0) - 180.0;
    (phi2.to_degrees(), lon2)
}

proptest! {
    #[test]
    fn accepted_fixes_keep_the_rules(
        tst in prop_oneof![any::<i64>(), -3_000_000_000i64..3_000_000_000, (RECV / 1000 - 900_000)..(RECV / 1000 + 60)],
        recv_s in prop_oneof![Just(RECV / 1000), any::<i64>().prop_map(|v| v / 1000)],
        station in prop_oneof![Just("central"), Just("north")],
        max_age_ms in proptest::option::of(0i64..1_000_000_000),
    ) {
        let c = ValidateConfig { max_age_ms, ..with_units() };
        let mut r = raw("B12", 40.1, -88.9, tst);
        r.station = station.into();
        let recv = recv_s * 1000;
        let Ok(p) = validate(r, recv, &c) else { return Ok(()) };
        prop_assert!(p.fix_time() >= MIN_FIX_TIME);
        let ahead = i128::from(p.fix_time()) - i128::from(recv);
        prop_assert!(ahead <= i128::from(c.future_tolerance_ms));
        prop_assert_eq!(p.station(), "central");
        if let Some(max) = max_age_ms {
            prop_assert!(-ahead <= i128::from(max));
        }
    }

    #[test]
    fn in_range_coordinates_validate(lat in -90.0f64..=90.0, lon in -180.0f64..=180.0) {
        prop_assume!(lat != 0.0 || lon != 0.0);
        let p = validate(raw("B12", lat, lon, RECV / 1000), RECV, &cfg());
        prop_assert!(p.is_ok(), "{:?}", p);
        let p = p.unwrap();
        prop_assert_eq!((p.lat(), p.lon()), (lat, lon));
    }

    #[test]
    fn out_of_range_coordinates_are_rejected(
        bad_lat in prop_oneof![-1e9f64..-90.000_000_1, 90.000_000_1f64..1e9],
        bad_lon in prop_oneof![-1e9f64..-180.000_000_1, 180.000_000_1f64..1e9],
        lat in -90.0f64..=90.0,
        lon in -180.0f64..=180.0,
    ) {
        let out = Some(RejectReason::BadCoordinates(InvalidPing::OutOfRange));
        for (la, lo) in [(bad_lat, lon), (lat, bad_lon), (bad_lat, bad_lon)] {
            prop_assert_eq!(reason(validate(raw("B12", la, lo, RECV / 1000), RECV, &cfg())), out);
        }
    }

    #[test]
    fn no_jump_at_or_below_max_speed(
        start in (-60.0f64..60.0, -180.0f64..180.0),
        max_kmh in 5.0f64..300.0,
        steps in proptest::collection::vec((1i64..900, 0.0f64..0.999, 0.0f64..360.0), 1..30),
    ) {
        let mut d = JumpDetector::new();
        let (mut lat, mut lon, mut t) = (start.0, start.1, 0i64);
        let mut first = ping("B12", t, lat, lon, E);
        d.check(&mut first, max_kmh);
        for (dt_s, frac, bearing) in steps {
            (lat, lon) = destination(lat, lon, bearing, max_kmh * frac / 3.6 * dt_s as f64);
            t += dt_s * 1000;
            let mut p = ping("B12", t, lat, lon, E);
            d.check(&mut p, max_kmh);
            prop_assert!(!p.flags().contains(Flags::JUMP), "flagged at t={} ({}, {})", t, lat, lon);
        }
    }
}
