use super::*;
use crate::ping::Flags;
use crate::validate::{JumpDetector, ValidateConfig, validate};

const SAMPLE_GPX: &str = include_str!("../../fixtures/tracks/sample.gpx");
const SAMPLE_CSV: &str = include_str!("../../fixtures/tracks/sample.csv");

/// 2026-11-02T08:00:00Z.
const T0: EpochMillis = 1_793_606_400_000;

fn backfill_cfg() -> ValidateConfig {
    ValidateConfig {
        max_acc_m: 50.0,
        future_tolerance_ms: 0,
        reorder_window_ms: i64::MAX,
        known_units: None,
        max_age_ms: None,
    }
}

fn problem<T: std::fmt::Debug>(r: Result<T, ImportError>) -> (usize, ImportProblem) {
    let e = r.unwrap_err();
    (e.line, e.problem)
}

#[test]
fn sample_gpx() {
    let points = parse_gpx(SAMPLE_GPX).unwrap();
    assert_eq!(points.len(), 12);
    assert_eq!(
        points[0],
        TrackPoint {
            unit: None,
            time_ms: T0,
            lat: 40.095,
            lon: -88.905,
            acc: None,
            speed_kmh: None,
            heading: None,
            alt: Some(215.0),
        }
    );
    assert_eq!(
        points[5].time_ms,
        T0 + 150_250,
        "fractional seconds are kept"
    );
    assert_eq!(points[11].time_ms, T0 + 330_000);
    assert_eq!((points[11].lat, points[11].lon), (40.111188, -88.887362));
    assert!(points.iter().all(|p| p.unit.is_none() && p.alt.is_some()));

    // Through the live path: every point is valid, none is a jump at patrol speeds.
    let mut jumps = JumpDetector::new();
    for p in points {
        let raw = p.into_raw("central", "U7");
        assert_eq!(raw.unit, "U7");
        let mut ping = validate(raw, T0 + 3_600_000, &backfill_cfg()).unwrap();
        jumps.check(&mut ping, 120.0);
        assert_eq!(ping.flags(), Flags::empty());
    }
}

#[test]
fn sample_csv() {
    let points = parse_csv(SAMPLE_CSV).unwrap();
    assert_eq!(points.len(), 12);
    assert_eq!(
        points[1],
        TrackPoint {
            unit: Some("B14".into()),
            time_ms: T0 + 3_600_000,
            lat: 40.1,
            lon: -88.9,
            acc: Some(6.0),
            speed_kmh: Some(9.5),
            heading: Some(135.0),
            alt: None,
        }
    );
    assert_eq!(points[7].acc, None, "an empty field is None");
    let b12 = points
        .iter()
        .filter(|p| p.unit.as_deref() == Some("B12"))
        .count();
    assert_eq!(b12, 6);

    let raw = points[1].clone().into_raw("central", "fallback");
    assert_eq!(
        (raw.unit.as_str(), raw.tst),
        ("B14", (T0 + 3_600_000) / 1000)
    );
    assert_eq!(
        (raw.acc, raw.vel, raw.cog),
        (Some(6.0), Some(9.5), Some(135.0))
    );
    for p in points {
        assert!(
            validate(
                p.into_raw("central", "fallback"),
                T0 + 7_200_000,
                &backfill_cfg()
            )
            .is_ok()
        );
    }
}

#[test]
fn csv_with_tst_and_quirks() {
    let csv = "\u{feff}LAT , lon,tst\n40.1,-88.9,1793606400\n\n 40.2 ,-88.8, 1793606400.5 \r\n";
    let points = parse_csv(csv).unwrap();
    assert_eq!(points.len(), 2);
    assert_eq!((points[1].lat, points[1].time_ms), (40.2, T0 + 500));
    assert_eq!(points[0].unit, None);
}

#[test]
fn csv_errors_name_the_line() {
    assert_eq!(problem(parse_csv("")), (1, ImportProblem::NoHeader));
    assert_eq!(
        problem(parse_csv("lat,time\n")),
        (1, ImportProblem::MissingColumn("lon"))
    );
    assert_eq!(
        problem(parse_csv("lat,lon\n40,-88\n")),
        (1, ImportProblem::MissingColumn("time or tst"))
    );
    let csv = "lat,lon,tst,acc\n40.1,-88.9,1793606400,5\n40.1,-88.9,1793606400\n";
    assert_eq!(
        problem(parse_csv(csv)),
        (
            3,
            ImportProblem::FieldCount {
                expected: 4,
                found: 3
            }
        )
    );
    let csv = "lat,lon,tst,acc\n40.1,-88.9,1793606400,5\n\n40.1,-88.9,1793606400,good\n";
    assert_eq!(
        problem(parse_csv(csv)),
        (
            4,
            ImportProblem::BadNumber {
                field: "acc",
                value: "good".into()
            }
        )
    );
    let csv = "time,lat,lon\r\n2026-11-02 08:00,40.1,-88.9\r\n";
    let err = parse_csv(csv).unwrap_err();
    assert_eq!(err.line, 2);
    assert_eq!(
        err.to_string(),
        "line 2: `time` is not a valid time: \"2026-11-02 08:00\""
    );
    assert_eq!(
        problem(parse_csv("lat,lon,tst\n40.1,-88.9,1e30\n")),
        (
            2,
            ImportProblem::BadTime {
                field: "tst",
                value: "1e30".into()
            }
        )
    );
}

#[test]
fn gpx_errors_name_the_line() {
    let wrap = |pts: &str| format!("<gpx>\n<trk><trkseg>\n{pts}\n</trkseg></trk>\n</gpx>\n");
    assert_eq!(
        problem(parse_gpx(&wrap(
            r#"<trkpt lon="1"><time>2026-11-02T08:00:00Z</time></trkpt>"#
        ))),
        (3, ImportProblem::MissingAttribute("lat"))
    );
    assert_eq!(
        problem(parse_gpx(&wrap(
            "<trkpt lat=\"40\" lon=\"-88\">\n<ele>1</ele>\n</trkpt>"
        ))),
        (3, ImportProblem::MissingTime)
    );
    assert_eq!(
        problem(parse_gpx(&wrap(r#"<trkpt lat="40" lon="-88"/>"#))),
        (3, ImportProblem::MissingTime)
    );
    assert_eq!(
        problem(parse_gpx(&wrap(r#"<trkpt lat="north" lon="-88"></trkpt>"#))),
        (
            3,
            ImportProblem::BadNumber {
                field: "lat",
                value: "north".into()
            }
        )
    );
    assert_eq!(
        problem(parse_gpx(&wrap(
            "<trkpt lat=\"40\" lon=\"-88\">\n\n<time>yesterday</time></trkpt>"
        ))),
        (
            5,
            ImportProblem::BadTime {
                field: "time",
                value: "yesterday".into()
            }
        )
    );
    let truncated =
        "<gpx><trk><trkseg>\n<trkpt lat=\"40\" lon=\"-88\"><time>2026-11-02T08:00:00Z</time>";
    assert_eq!(
        problem(parse_gpx(truncated)),
        (2, ImportProblem::Xml("the file ends inside a trkpt".into()))
    );
    let (line, p) = problem(parse_gpx(&wrap(r#"<trkpt lat="40" lon="-88"></trk>"#)));
    assert_eq!(line, 3);
    assert!(matches!(p, ImportProblem::Xml(_)), "{p:?}");
}

#[test]
fn gpx_namespaces_entities_and_nesting() {
    let gpx = r#"<g:gpx xmlns:g="http://www.topografix.com/GPX/1/1"><g:trk><g:trkseg>
      <g:trkpt lat="40.1" lon="-88.9">
        <g:time>2026-11-02T&#48;8:00:00Z</g:time>
        <g:extensions><g:time>not read</g:time><g:ele>x</g:ele></g:extensions>
        <g:ele> <![CDATA[21]]>9.5 </g:ele>
      </g:trkpt>
    </g:trkseg></g:trk>
    <g:wpt lat="1" lon="2"><g:time>ignored</g:time></g:wpt></g:gpx>"#;
    let points = parse_gpx(gpx).unwrap();
    assert_eq!(points.len(), 1);
    assert_eq!((points[0].time_ms, points[0].alt), (T0, Some(219.5)));
    assert_eq!(parse_gpx("<gpx/>").unwrap(), []);
}

#[test]
fn cabspotting_lines() {
    let text = "37.75153 -122.39447 0 1211033530\n\n37.75149 -122.39447 1 1211033614\n";
    let points = parse_cabspotting(text).unwrap();
    assert_eq!(points.len(), 2);
    assert_eq!(
        (points[1].lat, points[1].lon, points[1].time_ms),
        (37.75149, -122.39447, 1_211_033_614_000)
    );
    assert_eq!(
        problem(parse_cabspotting(
            "37.7 -122.3 0 1211033530\n37.7 -122.3 0\n"
        )),
        (
            2,
            ImportProblem::FieldCount {
                expected: 4,
                found: 3
            }
        )
    );
    assert_eq!(
        problem(parse_cabspotting("37.7 -122.3 0 12110335.5\n")),
        (
            1,
            ImportProblem::BadTime {
                field: "epoch",
                value: "12110335.5".into()
            }
        )
    );
}

#[test]
#[ignore = "needs ../shared/data"]
fn real_cabspotting_trace() {
    let dir = devkit::testkit::shared_data("sf-cabspotting-taxi-gps");
    let text = std::fs::read_to_string(dir.join("new_abboip.txt")).unwrap();
    let points = parse_cabspotting(&text).unwrap();
    assert_eq!(points.len(), 23_495, "SOURCE.md count");
    // 2008-05-17 14:12 .. 2008-06-10 07:58 UTC, ascending.
    assert!(points.windows(2).all(|w| w[0].time_ms <= w[1].time_ms));
    assert_eq!(points[0].time_ms / 60_000, 1_211_033_520_000 / 60_000);
    assert!(
        points
            .iter()
            .all(|p| (37.3..38.1).contains(&p.lat) && (-122.6..-121.9).contains(&p.lon))
    );

    // All of it passes validate as a backfill.
    let recv = points[points.len() - 1].time_ms;
    let valid = points
        .into_iter()
        .filter(|p| validate(p.clone().into_raw("sf", "abboip"), recv, &backfill_cfg()).is_ok())
        .count();
    assert_eq!(valid, 23_495);
}
