use proptest::prelude::*;

use super::*;
use crate::validate::{ValidateConfig, validate};

/// 2026-11-02T08:01:00Z; the payloads' `tst` 1793606400 is one minute earlier.
const RECV: EpochMillis = 1_793_606_460_000;

fn cfg() -> DecodeConfig {
    DecodeConfig {
        max_payload_bytes: 256,
    }
}

/// Decodes, validates locations, and renders the outcome on one line.
fn render(topic: &str, payload: &[u8]) -> String {
    let validate_cfg = ValidateConfig {
        max_acc_m: 50.0,
        future_tolerance_ms: 5_000,
        reorder_window_ms: 300_000,
        known_units: None,
        max_age_ms: None,
    };
    match decode(topic, payload, &cfg()) {
        Err(e) => format!("reject {}: {e}", e.reason()),
        Ok(Message::Offline { station, unit, tst }) => {
            format!("offline {station}/{unit} tst={tst}")
        }
        Ok(Message::Ignored {
            station,
            unit,
            kind,
        }) => format!("ignored {station}/{unit} kind={kind}"),
        Ok(Message::Location(raw)) => {
            let head = format!(
                "location {}/{} {},{} tst={} acc={:?} vel={:?} cog={:?} alt={:?} batt={:?} tid={:?}",
                raw.station,
                raw.unit,
                raw.lat,
                raw.lon,
                raw.tst,
                raw.acc,
                raw.vel,
                raw.cog,
                raw.alt,
                raw.batt,
                raw.tid
            );
            match validate(raw, RECV, &validate_cfg) {
                Ok(p) => format!("{head} => ping flags={}", p.flags().bits()),
                Err(e) => format!("{head} => reject {e}"),
            }
        }
    }
}

fn check(topic: &str, payload: &str, expect: &str) {
    assert_eq!(
        render(topic, payload.as_bytes()),
        expect,
        "topic {topic:?} payload {payload}"
    );
}

const T: &str = "owntracks/central/B12";

#[test]
fn valid_location() {
    check(
        T,
        r#"{"_type":"location","lat":40.1,"lon":-88.9,"tst":1793606400,"acc":8,"vel":35,"cog":270,"alt":221.5,"batt":87,"tid":"12","created_at":1793606401}"#,
        "location central/B12 40.1,-88.9 tst=1793606400 acc=Some(8.0) vel=Some(35.0) cog=Some(270.0) alt=Some(221.5) batt=Some(87.0) tid=Some(\"12\") => ping flags=0",
    );
}

#[test]
fn minimal_location_with_integer_coordinates_and_float_tst() {
    check(
        T,
        r#"{"lon":-89,"tst":1.7936064e9,"lat":40,"_type":"location"}"#,
        "location central/B12 40,-89 tst=1793606400 acc=None vel=None cog=None alt=None batt=None tid=None => ping flags=0",
    );
}

#[test]
fn other_message_types() {
    check(
        T,
        r#"{"_type":"lwt","tst":1793600000}"#,
        "offline central/B12 tst=1793600000",
    );
    check(
        T,
        r#"{"_type":"lwt"}"#,
        "reject missing_field: field `tst` is missing",
    );
    check(
        T,
        r#"{"_type":"transition","event":"enter","lat":"x"}"#,
        "ignored central/B12 kind=transition",
    );
    check(
        T,
        r#"{"_type":"card","name":"Unit 12"}"#,
        "ignored central/B12 kind=card",
    );
    check(
        T,
        r#"{"lat":40.1}"#,
        "reject missing_field: field `_type` is missing",
    );
    check(
        T,
        r#"{"_type":5}"#,
        "reject missing_field: field `_type` is a number, expected a string",
    );
}

#[test]
fn missing_and_mistyped_required_fields() {
    check(
        T,
        r#"{"_type":"location","lon":-88.9,"tst":1793606400}"#,
        "reject missing_field: field `lat` is missing",
    );
    check(
        T,
        r#"{"_type":"location","lat":40.1,"tst":1793606400}"#,
        "reject missing_field: field `lon` is missing",
    );
    check(
        T,
        r#"{"_type":"location","lat":40.1,"lon":-88.9}"#,
        "reject missing_field: field `tst` is missing",
    );
    check(
        T,
        r#"{"_type":"location","lat":null,"lon":-88.9,"tst":1793606400}"#,
        "reject missing_field: field `lat` is missing",
    );
    check(
        T,
        r#"{"_type":"location","lat":"40.1","lon":-88.9,"tst":1793606400}"#,
        "reject missing_field: field `lat` is a string, expected a number",
    );
    check(
        T,
        r#"{"_type":"location","lat":40.1,"lon":[1,{"a":2}],"tst":1793606400}"#,
        "reject missing_field: field `lon` is a array, expected a number",
    );
    check(
        T,
        r#"{"_type":"location","lat":40.1,"lon":-88.9,"tst":true}"#,
        "reject missing_field: field `tst` is a boolean, expected a number",
    );
    check(
        T,
        r#"{"_type":"location","lat":40.1,"lon":-88.9,"tst":1793606400.5}"#,
        "reject missing_field: field `tst` is not a whole number of unix seconds in range",
    );
    check(
        T,
        r#"{"_type":"location","lat":40.1,"lon":-88.9,"tst":1e300}"#,
        "reject missing_field: field `tst` is not a whole number of unix seconds in range",
    );
}

#[test]
fn mistyped_optional_fields_are_dropped() {
    check(
        T,
        r#"{"_type":"location","lat":40.1,"lon":-88.9,"tst":1793606400,"acc":"8","batt":{},"tid":7}"#,
        "location central/B12 40.1,-88.9 tst=1793606400 acc=None vel=None cog=None alt=None batt=None tid=None => ping flags=0",
    );
}

#[test]
fn malformed_json() {
    check(
        T,
        r#"{"_type":"location","lat":40.1"#,
        "reject malformed_json: EOF while parsing an object at line 1 column 30",
    );
    check(
        T,
        r#"{"_type":"location","lat":1e400,"lon":-88.9,"tst":1793606400}"#,
        "reject malformed_json: number out of range at line 1 column 31",
    );
    check(
        T,
        "[1,2]",
        "reject malformed_json: payload is not a JSON object",
    );
    // serde would read a struct from an array of its fields; that is refused too.
    check(
        T,
        r#" ["location",40.1,-88.9,1793606400,null,null,null,null,null,null]"#,
        "reject malformed_json: payload is not a JSON object",
    );
    check(
        T,
        "\n\t {\"_type\":\"lwt\",\"tst\":1}",
        "offline central/B12 tst=1",
    );
    check(
        T,
        "",
        "reject malformed_json: EOF while parsing a value at line 1 column 0",
    );
    check(
        T,
        r#"{"_type":"location","lat":1,"lat":2}"#,
        "reject malformed_json: duplicate field `lat` at line 1 column 33",
    );
}

#[test]
fn coordinates_are_checked_by_validate() {
    check(
        T,
        r#"{"_type":"location","lat":90.5,"lon":-88.9,"tst":1793606400}"#,
        "location central/B12 90.5,-88.9 tst=1793606400 acc=None vel=None cog=None alt=None batt=None tid=None => reject out_of_range: coordinate out of range (lat 90.5, lon -88.9)",
    );
    check(
        T,
        r#"{"_type":"location","lat":40.1,"lon":-180.01,"tst":1793606400}"#,
        "location central/B12 40.1,-180.01 tst=1793606400 acc=None vel=None cog=None alt=None batt=None tid=None => reject out_of_range: coordinate out of range (lat 40.1, lon -180.01)",
    );
    check(
        T,
        r#"{"_type":"location","lat":0,"lon":0.0,"tst":1793606400}"#,
        "location central/B12 0,0 tst=1793606400 acc=None vel=None cog=None alt=None batt=None tid=None => reject null_island: null island (0, 0) (lat 0, lon 0)",
    );
    check(
        T,
        r#"{"_type":"location","lat":40.1,"lon":-88.9,"tst":1793606466}"#,
        "location central/B12 40.1,-88.9 tst=1793606466 acc=None vel=None cog=None alt=None batt=None tid=None => reject future_timestamp: fix is 6000 ms ahead of receive time (tolerance 5000 ms)",
    );
    check(
        T,
        r#"{"_type":"location","lat":40.1,"lon":-88.9,"tst":1793606000,"acc":51}"#,
        "location central/B12 40.1,-88.9 tst=1793606000 acc=Some(51.0) vel=None cog=None alt=None batt=None tid=None => ping flags=5",
    );
}

#[test]
fn topics() {
    let p = r#"{"_type":"lwt","tst":1}"#;
    let bad = |topic: &str, problem: &str| {
        check(
            topic,
            p,
            &format!("reject bad_topic: topic is not <prefix>/<station>/<unit>: {problem}"),
        );
    };
    let levels = "expected exactly 3 levels";
    bad("owntracks/central", levels);
    bad("owntracks/central/B12/extra", levels);
    bad("owntracks/central/B12/event", levels);
    bad("owntracks/central/B12/", levels);
    bad("owntracks", levels);
    bad("", levels);
    bad("/", levels);
    bad("owntracks/central/", "empty unit level");
    bad("owntracks//B12", "empty station level");
    bad("/north/B7", "empty prefix level");
    bad("//", "empty prefix level");
    let chars = "level has a character other than A-Z, a-z, 0-9, '-', '_' and '.'";
    bad("owntracks/central/B 12", &format!("unit {chars}"));
    bad("owntracks/central/+", &format!("unit {chars}"));
    bad("owntracks/#/B12", &format!("station {chars}"));
    bad("owntracks/cen\ttral/B12", &format!("station {chars}"));
    bad("owntracks/central/B12\u{0}", &format!("unit {chars}"));
    bad("owntracks/central/B\u{0130}2", &format!("unit {chars}"));
    bad("own tracks/central/B12", &format!("prefix {chars}"));
    bad("$SYS/central/B12", &format!("prefix {chars}"));
    let long = "u".repeat(65);
    bad(
        &format!("owntracks/central/{long}"),
        "unit level is over 64 bytes",
    );
    bad(
        &format!("owntracks/{long}/B12"),
        "station level is over 64 bytes",
    );
    // The prefix's value is not checked; ids may carry '-', '_' and '.'.
    check("fleet/north/B7", p, "offline north/B7 tst=1");
    check(
        &format!("x/ST_1.a/C01-2{}", "9".repeat(59)),
        p,
        &format!("offline ST_1.a/C01-2{} tst=1", "9".repeat(59)),
    );
}

#[test]
fn bad_topics_are_refused_for_every_message_type() {
    for payload in [
        r#"{"_type":"location","lat":40.1,"lon":-88.9,"tst":1793606400}"#,
        r#"{"_type":"transition","event":"enter"}"#,
        "not json",
    ] {
        let err = decode("owntracks/central/B12/event", payload.as_bytes(), &cfg()).unwrap_err();
        let r = err.to_rejection("owntracks/central/B12/event", payload.as_bytes(), RECV);
        assert_eq!(
            (r.reason, r.reason.as_str(), r.payload.as_slice()),
            (RejectReason::BadTopic, "bad_topic", payload.as_bytes())
        );
    }
}

#[test]
fn unknown_fields_are_ignored_and_strings_unescaped() {
    check(
        T,
        r#"{"_type":"location","inregions":["home"],"BSSID":"x","lat":40.1,"lon":-88.9,"tst":1793606400,"m":{"deep":[null,{"acc":"no"}]},"tid":"B\"\u00e91\\"}"#,
        "location central/B12 40.1,-88.9 tst=1793606400 acc=None vel=None cog=None alt=None batt=None tid=Some(\"B\\\"é1\\\\\") => ping flags=0",
    );
}

#[test]
fn oversize_is_refused_before_parsing() {
    let head = r#"{"_type":"lwt","tst":1,"pad":""#;
    let exactly = format!("{head}{}\"}}", "x".repeat(256 - head.len() - 2));
    assert_eq!(exactly.len(), 256);
    check(T, &exactly, "offline central/B12 tst=1");
    let over = format!("{exactly} ");
    check(
        T,
        &over,
        "reject oversize: payload of 257 bytes is over the 256-byte limit",
    );
    // Oversize wins even over a bad topic and garbage.
    check(
        "bad",
        &"\u{0}".repeat(300),
        "reject oversize: payload of 300 bytes is over the 256-byte limit",
    );
}

#[test]
fn rejection_records() {
    let payload = "x".repeat(300);
    let err = decode(T, payload.as_bytes(), &cfg()).unwrap_err();
    let r = err.to_rejection(T, payload.as_bytes(), RECV);
    assert_eq!(r.reason, RejectReason::Oversize);
    assert_eq!(r.payload.len(), 256, "oversize payload is cut to the limit");
    assert_eq!((r.topic.as_str(), r.recv_time), (T, RECV));

    let payload = br#"{"_type":"location"}"#;
    let err = decode(T, payload, &cfg()).unwrap_err();
    let r = err.to_rejection(T, payload, RECV);
    assert_eq!(r.reason, RejectReason::MissingField);
    assert_eq!(r.detail, "field `lat` is missing");
    assert_eq!(r.payload, payload);
}

#[test]
fn default_config_limit() {
    assert_eq!(DecodeConfig::default().max_payload_bytes, 4096);
    let parsed: DecodeConfig = toml::from_str("").unwrap();
    assert_eq!(parsed, DecodeConfig::default());
    assert!(toml::from_str::<DecodeConfig>("max_payload = 1").is_err());
}

/// Pieces of JSON that, glued at random, reach deeper into the parser than random bytes.
const TOKENS: &[&str] = &[
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
    "\"lwt\"",
    "\"lat\"",
    "\"lon\"",
    "\"tst\"",
    "\"acc\"",
    "\"batt\"",
    "\"tid\"",
    "40.1",
    "-88.9",
    "1793606400",
    "0",
    "-0",
    "1e400",
    "1.5",
    "-1e-400",
    "null",
    "true",
    "\"\\u00e9\"",
    "\"\\ud800\"",
    "\"x\"",
    " ",
];

fn jsonish() -> impl Strategy<Value = String> {
    let token = proptest::sample::select(TOKENS);
    (any::<bool>(), proptest::collection::vec(token, 0..40)).prop_map(|(prefixed, tokens)| {
        let body = tokens.concat();
        if prefixed {
            format!("{{\"_type\":\"location\",{body}")
        } else {
            body
        }
    })
}

proptest! {
    #[test]
    fn decode_never_panics_on_bytes(topic in ".{0,40}", payload in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode(&topic, &payload, &cfg());
    }

    #[test]
    fn decode_never_panics_on_jsonish(payload in jsonish()) {
        let _ = render(T, payload.as_bytes());
    }

    #[test]
    fn decoded_numbers_round_trip(lat in -1e6f64..1e6, lon in any::<f64>().prop_filter("finite", |v| v.is_finite()), tst in -1_000_000_000_000i64..1_000_000_000_000) {
        let payload = serde_json::json!({"_type": "location", "lat": lat, "lon": lon, "tst": tst}).to_string();
        let msg = decode(T, payload.as_bytes(), &cfg());
        let Ok(Message::Location(raw)) = msg else {
            return Err(TestCaseError::fail(format!("{msg:?}")));
        };
        // serde_json's default float parser may be one ulp off.
        let close = |a: f64, b: f64| (a - b).abs() <= a.abs() * 1e-15;
        prop_assert!(close(raw.lat, lat) && close(raw.lon, lon), "{} {} vs {} {}", raw.lat, raw.lon, lat, lon);
        prop_assert_eq!(raw.tst, tst);
    }
}
