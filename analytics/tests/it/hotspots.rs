//! Hot spots on real incident data: those of four weeks, scored on the week after.

use std::collections::HashSet;
use std::path::PathBuf;

use analytics::hotspots::{IncidentPoint, PaiScore, StudyArea, pai};
use chrono::{NaiveDateTime, TimeZone};
use devkit::testkit::shared_data;
use h3o::Resolution;

/// Incidents of a CSV file: one per distinct `key`, local time parsed from `when(row)`.
fn read(
    path: PathBuf,
    key: &str,
    lat: &str,
    lon: &str,
    tz: chrono_tz::Tz,
    when: impl Fn(&[String], &dyn Fn(&str) -> usize) -> String,
    format: &str,
) -> Vec<IncidentPoint> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header = reader.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (k, la, lo) = (col(key), col(lat), col(lon));
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for record in reader.records() {
        let f: Vec<String> = record.unwrap().iter().map(str::to_owned).collect();
        let (Ok(lat), Ok(lon)) = (f[la].parse::<f64>(), f[lo].parse::<f64>()) else {
            continue;
        };
        if !seen.insert(f[k].clone()) {
            continue;
        }
        let stamp = when(&f, &col);
        let local = NaiveDateTime::parse_from_str(&stamp, format)
            .unwrap_or_else(|e| panic!("`{stamp}`: {e}"));
        // A time in the spring-forward gap is read as the hour after it.
        let t = tz
            .from_local_datetime(&local)
            .earliest()
            .or_else(|| {
                tz.from_local_datetime(&(local + chrono::Duration::hours(1)))
                    .earliest()
            })
            .unwrap();
        out.push(IncidentPoint {
            t_ms: t.timestamp_millis(),
            lat,
            lon,
        });
    }
    out
}

fn span(points: &[IncidentPoint], from: &str, to: &str, tz: chrono_tz::Tz) -> Vec<IncidentPoint> {
    let ms = |d: &str| {
        let day = chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
        tz.from_local_datetime(&day.and_hms_opt(0, 0, 0).unwrap())
            .earliest()
            .unwrap()
            .timestamp_millis()
    };
    let (a, b) = (ms(from), ms(to));
    points
        .iter()
        .filter(|p| p.t_ms >= a && p.t_ms < b)
        .copied()
        .collect()
}

fn report(name: &str, s: &PaiScore) {
    eprintln!(
        "{name}: top {:.0}% = {} cells hold {} of {} held-out incidents on {:.2}% of the area: PAI {:.2}, PEI {:.2}",
        s.top_share * 100.0,
        s.cells,
        s.captured,
        s.test_incidents,
        s.area_share * 100.0,
        s.pai,
        s.pei
    );
}

#[test]
#[ignore = "needs ../shared/data"]
fn sf_december_2013_hot_spots_predict_the_last_week() {
    let dir = shared_data("sf-incidents-2013-12");
    let tz = chrono_tz::America::Los_Angeles;
    let points = read(
        dir.join("sf_incidents_2013-12.csv"),
        "IncidntNum",
        "lat",
        "lng",
        tz,
        |f, col| format!("{} {}", f[col("Date")], f[col("Time")]),
        "%m/%d/%Y %H:%M",
    );
    assert_eq!(points.len(), 7365, "distinct IncidntNum per SOURCE.md");
    let area = StudyArea::bounding_box(&points, Resolution::Nine).unwrap();
    // The month has no fifth week after four: train on 1-24 December, score 25-31 December.
    let train = span(&points, "2013-12-01", "2013-12-25", tz);
    let test = span(&points, "2013-12-25", "2014-01-01", tz);
    assert!(test.len() > 1000, "{}", test.len());
    let s = pai(&area, &train, &test, 3, 0.05);
    report("SF", &s);
    assert!(s.pai > 4.0, "PAI {}", s.pai);
    assert!(s.pei > 0.5 && s.pei <= 1.0, "PEI {}", s.pei);
}

#[test]
#[ignore = "needs ../shared/data"]
fn englewood_2017_hot_spots_predict_each_next_week() {
    let dir = shared_data("chicago-incidents-englewood");
    let tz = chrono_tz::America::Chicago;
    let points = read(
        dir.join("crimes2017.csv"),
        "case_number",
        "latitude",
        "longitude",
        tz,
        |f, col| f[col("date")].clone(),
        "%Y-%m-%dT%H:%M:%S%.3f",
    );
    assert!(points.len() > 11_500, "{}", points.len());
    let area = StudyArea::bounding_box(&points, Resolution::Ten).unwrap();
    // Four training weeks, then the held-out week, in four seasons.
    for (train_from, test_from, test_to) in [
        ("2017-01-02", "2017-01-30", "2017-02-06"),
        ("2017-04-03", "2017-05-01", "2017-05-08"),
        ("2017-07-03", "2017-07-31", "2017-08-07"),
        ("2017-10-02", "2017-10-30", "2017-11-06"),
    ] {
        let train = span(&points, train_from, test_from, tz);
        let test = span(&points, test_from, test_to, tz);
        let s = pai(&area, &train, &test, 3, 0.05);
        report(&format!("Englewood week of {test_from}"), &s);
        assert!(s.pai > 2.0, "week of {test_from}: PAI {}", s.pai);
    }
}
