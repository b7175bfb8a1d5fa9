//! Property fuzz of decode + validate and of `Stages::message`, the live path's per-message
//! work, over the fixture county with its live settings (unit list, maximum age, event
//! engine).
//!
//! Inputs are arbitrary bytes and topics, and OwnTracks-shaped objects with extreme numbers
//! (`NaN`, `1e400`, the `i64` and `u64` extremes for `tst`, numbers as strings), unicode
//! and shuffled fields. Every input must end as a ping that keeps the documented rules, an
//! offline notice, or a rejection whose reason the WAL can read back; nothing panics.
//!
//! The number of cases comes from `PATROL_FUZZ_CASES` (default 2,000, a few seconds); CI
//! runs a bounded volume with a larger value.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ingest::decode::{self, DecodeConfig, MAX_LEVEL_BYTES, Message};
use ingest::events::EventConfig;
use ingest::geofence::index::GeofenceIndex;
use ingest::ping::{EpochMillis, Ping, RejectReason, Rejection};
use ingest::pipeline::{Outcome, Stages};
use ingest::store::record::reason_from_str;
use ingest::validate::{self, MIN_FIX_TIME, ValidateConfig};
use model::jurisdiction::Jurisdiction;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// 2026-11-02T08:01:00Z, on the first day of the fixture roster.
const RECV: EpochMillis = 1_793_606_460_000;

/// A year: the spread of the receive times that also go through the stage, whose clock is
/// the wall clock (decode and validate alone also get any `i64`).
const YEAR_MS: i64 = 365 * 24 * 3600 * 1000;

fn cases() -> u32 {
    match std::env::var("PATROL_FUZZ_CASES") {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("PATROL_FUZZ_CASES={v:?} is not a case count")),
        Err(_) => 2_000,
    }
}

/// The fixture county as `patrol serve` sets it up, with the live path's maximum age.
fn live_stages(j: &Jurisdiction) -> Stages {
    let s = j.settings();
    let catalog = j.catalog();
    let res = h3o::Resolution::try_from(s.h3.fence_res).unwrap();
    let index = GeofenceIndex::build(catalog, res).unwrap();
    let units = j
        .units()
        .iter()
        .map(|u| (u.id.clone(), u.station.clone()))
        .collect();
    Stages::new(
        DecodeConfig {
            max_payload_bytes: s.validate.max_payload_bytes,
        },
        ValidateConfig::live(&s.validate, Some(units)),
        Arc::new(index),
        catalog.version,
        h3o::Resolution::try_from(s.h3.store_res).unwrap(),
    )
    .with_events(
        j.checkpoints(),
        j.roster(),
        EventConfig::from_settings(s, j.timezone()),
    )
    .unwrap()
}

/// A level of a topic: real ids, and the characters and lengths the rule refuses.
fn level() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "owntracks",
            "ST1",
            "ST4",
            "C01",
            "B05",
            "",
            "+",
            "#",
            "B 12",
            "É",
            "\u{0}",
            "$SYS",
            "C01-2",
            "a.b_c",
        ])
        .prop_map(str::to_owned),
        Just("x".repeat(MAX_LEVEL_BYTES)),
        Just("x".repeat(MAX_LEVEL_BYTES + 1)),
        "[A-Za-z0-9._-]{1,8}",
        ".{0,6}",
    ]
}

fn topic(units: Vec<(String, String)>, stations: Vec<String>) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(units.clone())
            .prop_map(|(unit, station)| format!("owntracks/{station}/{unit}")),
        2 => (prop::sample::select(units), prop::sample::select(stations))
            .prop_map(|((unit, _), station)| format!("owntracks/{station}/{unit}")),
        2 => prop::collection::vec(level(), 0..6).prop_map(|levels| levels.join("/")),
        1 => ".{0,40}",
    ]
}

/// JSON number text, valid or not, and values of other types.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<f64>().prop_map(|v| v.to_string()),
        any::<i64>().prop_map(|v| v.to_string()),
        any::<u64>().prop_map(|v| v.to_string()),
        prop::sample::select(vec![
            "NaN",
            "\"NaN\"",
            "Infinity",
            "1e400",
            "-1e400",
            "1e-400",
            "1.7976931348623157e308",
            "-0",
            "0",
            "0.0",
            "1.5",
            "9007199254740993",
            "9000000000000000",
            "-9000000000000001",
            "\"40.1\"",
            "null",
            "true",
            "[]",
            "{}",
        ])
        .prop_map(str::to_owned),
    ]
}

/// A `tst`: mostly near the receive time, around the floor and the maximum age, or anything.
fn tst() -> impl Strategy<Value = String> {
    let recv_s = RECV / 1000;
    prop_oneof![
        5 => (recv_s - 8 * 24 * 3600..recv_s + 600).prop_map(|t| t.to_string()),
        1 => (MIN_FIX_TIME / 1000 - 5..MIN_FIX_TIME / 1000 + 5).prop_map(|t| t.to_string()),
        1 => prop::sample::select(vec!["0", "1", "-2019686400", "1.7936064e9"]).prop_map(str::to_owned),
        2 => number(),
    ]
}

fn coordinate(lo: f64, hi: f64) -> impl Strategy<Value = String> {
    prop_oneof![5 => (lo..hi).prop_map(|v| v.to_string()), 1 => number()]
}

/// An OwnTracks-shaped object: a `_type`, some of the fields in any order, odd values.
fn owntracks() -> impl Strategy<Value = String> {
    let ty = prop::sample::select(vec![
        "\"location\"",
        "\"location\"",
        "\"location\"",
        "\"location\"",
        "\"lwt\"",
        "\"lwt\"",
        "\"transition\"",
        "\"\\u006cocation\"",
        "\"Location\"",
        "5",
        "null",
    ]);
    let field = |name: &'static str, value: BoxedStrategy<String>| {
        prop::option::weighted(0.9, value).prop_map(move |v| v.map(|v| format!("\"{name}\":{v}")))
    };
    let tid = ".{0,8}".prop_map(|s| serde_json::to_string(&s).unwrap());
    (
        prop::option::weighted(0.95, ty),
        field("lat", coordinate(39.8, 40.4).boxed()),
        field("lon", coordinate(-89.3, -88.5).boxed()),
        field("tst", tst().boxed()),
        (
            field("acc", number().boxed()),
            field("vel", number().boxed()),
            field("cog", number().boxed()),
            field("batt", number().boxed()),
            field("tid", tid.boxed()),
        ),
    )
        .prop_flat_map(|(ty, lat, lon, tst, (acc, vel, cog, batt, tid))| {
            let ty = ty.map(|t| format!("\"_type\":{t}"));
            let fields: Vec<String> = [ty, lat, lon, tst, acc, vel, cog, batt, tid]
                .into_iter()
                .flatten()
                .collect();
            Just(fields).prop_shuffle()
        })
        .prop_map(|fields| format!("{{{}}}", fields.join(",")))
}

/// Glued JSON tokens: deeper into the parser than random bytes.
fn jsonish() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        "\"",
        "\\",
        "\"_type\"",
        "\"location\"",
        "\"lat\"",
        "\"tst\"",
        "40.1",
        "-88.9",
        "1793606400",
        "1e400",
        "null",
        "\"\\ud800\"",
        " ",
    ]);
    prop::collection::vec(token, 0..40).prop_map(|tokens| tokens.concat())
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        12 => owntracks().prop_map(String::into_bytes),
        2 => jsonish().prop_map(String::into_bytes),
        2 => prop::collection::vec(any::<u8>(), 0..600),
        1 => Just(vec![b' '; 4097]),
    ]
}

fn recv_time() -> impl Strategy<Value = EpochMillis> {
    prop_oneof![
        4 => RECV..RECV + 600_000,
        1 => RECV - YEAR_MS..RECV + YEAR_MS,
        1 => any::<i64>(),
    ]
}

/// The topic rule, written out again: three levels of 1 to 64 ASCII letters, digits, '-',
/// '_' and '.'.
fn well_formed(topic: &str) -> bool {
    let levels: Vec<&str> = topic.split('/').collect();
    levels.len() == 3
        && levels.iter().all(|l| {
            (1..=MAX_LEVEL_BYTES).contains(&l.len())
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
}

/// What decode and validate alone make of a message: the accepted ping or the rejection.
fn reference(
    topic: &str,
    payload: &[u8],
    recv: EpochMillis,
    d: &DecodeConfig,
    v: &ValidateConfig,
) -> Result<Option<Ping>, Rejection> {
    match decode::decode(topic, payload, d) {
        Err(e) => {
            let r = e.to_rejection(topic, payload, recv);
            if payload.len() <= d.max_payload_bytes {
                assert_eq!(
                    r.reason == RejectReason::BadTopic,
                    !well_formed(topic),
                    "{topic:?}"
                );
            }
            Err(r)
        }
        Ok(Message::Location(raw)) => {
            assert!(well_formed(topic), "{topic:?}");
            validate::validate(raw, recv, v)
                .map(Some)
                .map_err(|e| e.to_rejection(topic, payload, recv))
        }
        Ok(Message::Offline { .. } | Message::Ignored { .. }) => {
            assert!(well_formed(topic), "{topic:?}");
            Ok(None)
        }
    }
}

/// The documented rules of an accepted ping.
fn check_ping(
    p: &Ping,
    topic: &str,
    recv: EpochMillis,
    v: &ValidateConfig,
    units: &HashMap<String, String>,
) -> Result<(), TestCaseError> {
    prop_assert!((-90.0..=90.0).contains(&p.lat()) && (-180.0..=180.0).contains(&p.lon()));
    prop_assert!(p.lat() != 0.0 || p.lon() != 0.0);
    prop_assert!(p.fix_time() >= MIN_FIX_TIME, "{}", p.fix_time());
    let ahead = i128::from(p.fix_time()) - i128::from(recv);
    prop_assert!(ahead <= i128::from(v.future_tolerance_ms));
    let max_age = v.max_age_ms.unwrap_or(i64::MAX);
    prop_assert!(-ahead <= i128::from(max_age), "{} ms old", -ahead);
    prop_assert_eq!(units.get(p.unit()).map(String::as_str), Some(p.station()));
    let levels: Vec<&str> = topic.split('/').collect();
    prop_assert_eq!(&levels[1..], &[p.station(), p.unit()]);
    Ok(())
}

fn check_rejection(r: &Rejection, topic: &str, payload: &[u8], recv: EpochMillis, max: usize) {
    assert_eq!((r.topic.as_str(), r.recv_time), (topic, recv));
    let kept = &payload[..payload.len().min(max)];
    assert_eq!(
        r.payload,
        if r.reason == RejectReason::Oversize {
            kept
        } else {
            payload
        }
    );
    assert!(!r.detail.is_empty(), "{r:?}");
    assert_eq!(
        reason_from_str(r.reason.as_str()),
        Some(r.reason),
        "the WAL cannot read {} back",
        r.reason
    );
}

#[test]
fn decode_validate_and_stage_keep_their_rules() {
    let j = Jurisdiction::load(&devkit::testkit::fixtures()).unwrap();
    let stages = RefCell::new(live_stages(&j));
    let (d, v) = {
        let s = stages.borrow();
        (s.decode.clone(), s.validate.clone())
    };
    let units = v.known_units.clone().unwrap();
    let mut stations: Vec<String> = units.values().cloned().collect();
    stations.sort();
    stations.dedup();
    let mut pairs: Vec<(String, String)> = units.clone().into_iter().collect();
    pairs.sort();

    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (topic(pairs, stations), payload(), recv_time());
    // Outcomes by kind ("ping", "offline", or the reason), so a run shows what it reached.
    let tally = RefCell::new(BTreeMap::<&'static str, u64>::new());
    let started = std::time::Instant::now();
    runner
        .run(&strategy, |(topic, payload, recv)| {
            let expected = reference(&topic, &payload, recv, &d, &v);
            let kind = match &expected {
                Ok(Some(_)) => "ping",
                Ok(None) => "offline or ignored",
                Err(r) => r.reason.as_str(),
            };
            *tally.borrow_mut().entry(kind).or_default() += 1;
            match &expected {
                Ok(Some(p)) => check_ping(p, &topic, recv, &v, &units)?,
                Ok(None) => {}
                Err(r) => check_rejection(r, &topic, &payload, recv, d.max_payload_bytes),
            }
            if (recv - RECV).abs() > YEAR_MS {
                return Ok(());
            }
            let outcome = stages.borrow_mut().message(&topic, &payload, recv);
            match (outcome, expected) {
                (Outcome::Ping { ping, .. }, Ok(Some(p))) => {
                    // The stage adds the jump check's flag; everything else is validate's.
                    let mut same = p.clone();
                    same.flag(ping.ping.flags());
                    prop_assert_eq!(&ping.ping, &same);
                }
                (Outcome::Offline { station, unit }, Ok(None)) => {
                    let levels: Vec<&str> = topic.split('/').collect();
                    prop_assert_eq!(&levels[1..], &[station.as_str(), unit.as_str()]);
                }
                (Outcome::Reject(r), Ok(None)) => {
                    prop_assert_eq!(r.reason, RejectReason::IgnoredType);
                    check_rejection(&r, &topic, &payload, recv, d.max_payload_bytes);
                }
                (Outcome::Reject(r), Err(want)) => prop_assert_eq!(r, want),
                (outcome, expected) => {
                    return Err(TestCaseError::fail(format!(
                        "stage gave {outcome:?}, decode + validate {expected:?}"
                    )));
                }
            }
            Ok(())
        })
        .unwrap();
    let tally = tally.into_inner();
    eprintln!(
        "fuzz: {} cases in {:.1} s: {tally:?}",
        cases(),
        started.elapsed().as_secs_f64()
    );
    for kind in [
        "ping",
        "bad_topic",
        "bad_timestamp",
        "too_old",
        "station_mismatch",
    ] {
        assert!(
            cases() < 1_000 || tally.contains_key(kind),
            "no case reached {kind}: {tally:?}"
        );
    }
}
