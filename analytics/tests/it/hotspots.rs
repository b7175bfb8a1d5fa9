//! Hot-spot forecasts on real incident data: every method scored week by week, rolling the
//! origin, against the naive baseline.

use std::collections::HashSet;
use std::path::PathBuf;

use analytics::forecast::{Backtest, Events, ForecastInput, Grid, Method, Slot, Weeks, backtest};
use analytics::hotspots::{IncidentPoint, StudyArea};
use chrono::{NaiveDateTime, TimeZone};
use devkit::testkit::shared_data;
use h3o::Resolution;
use model::jurisdiction::{HotspotSettings, Window};

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

/// The station windows of the guide, as `[[windows]]` would give them.
fn windows() -> Vec<Window> {
    let t = |h, m| chrono::NaiveTime::from_hms_opt(h, m, 0).unwrap();
    [
        ("day", t(8, 30), t(11, 20)),
        ("afternoon", t(13, 0), t(17, 30)),
        ("evening", t(20, 0), t(22, 30)),
        ("night", t(23, 0), t(5, 0)),
    ]
    .into_iter()
    .map(|(name, start, end)| Window {
        name: name.into(),
        start,
        end,
    })
    .collect()
}

/// Runs the backtest over every whole local week of `points` and prints its summary as a
/// Markdown table (the one BENCHMARKS.md shows).
fn run(
    name: &str,
    points: &[IncidentPoint],
    res: Resolution,
    tz: chrono_tz::Tz,
    settings: &HotspotSettings,
) -> Backtest {
    let area = StudyArea::bounding_box(points, res).unwrap();
    let grid = Grid::new(&area, ForecastInput::rings_needed(settings));
    let events = Events::place(&area, points.iter().map(|p| (p.t_ms, p.lat, p.lon)));
    let input = ForecastInput {
        grid: &grid,
        events: &events,
        weeks: Weeks::new(tz),
        settings,
    };
    let slots = Slot::all_and_windows(tz, &windows());
    let (first, last) = (
        points.iter().map(|p| p.t_ms).min().unwrap(),
        points.iter().map(|p| p.t_ms).max().unwrap(),
    );
    let b = backtest(&input, &slots, first, last + 1);
    eprintln!(
        "\n{name}: {} incidents, {} study cells at res {}, top {:.0}%, {} training weeks\n",
        points.len(),
        area.len(),
        u8::from(res),
        settings.top_share * 100.0,
        settings.training_weeks
    );
    eprintln!(
        "| slot | method | weeks | mean PAI | mean PEI | mean RRI | above naive | equal | chosen |"
    );
    eprintln!("|---|---|---:|---:|---:|---:|---:|---:|---|");
    let f = |v: Option<f64>| v.map_or_else(|| "undefined".to_owned(), |v| format!("{v:.2}"));
    for s in &b.summary {
        eprintln!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.slot,
            s.method.name(),
            s.weeks,
            f(s.mean_pai),
            f(s.mean_pei),
            f(s.mean_rri),
            s.beats_naive,
            s.ties_naive,
            if s.chosen { "yes" } else { "" }
        );
    }
    b
}

/// The goal: per slot, the chosen method's PAI is above naive's in most weeks, or
/// naive itself is chosen (the backtest then says the baseline is the best there is).
fn chosen_beats_naive_in_most_weeks(b: &Backtest, slot: &str) {
    let chosen = b
        .summary
        .iter()
        .find(|s| s.slot == slot && s.chosen)
        .unwrap();
    assert!(chosen.weeks > 0, "{slot}: no week scored");
    assert_ne!(
        chosen.method,
        Method::Naive,
        "{slot}: naive was the best method"
    );
    assert!(
        2 * chosen.beats_naive > chosen.weeks,
        "{slot}: `{}` above naive in {} of {} weeks",
        chosen.method.name(),
        chosen.beats_naive,
        chosen.weeks
    );
}

#[test]
#[ignore = "needs ../shared/data"]
fn sf_december_2013_backtest() {
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
    // One month holds three whole local weeks after a first one: train on one week.
    let settings = HotspotSettings {
        training_weeks: 1,
        ..HotspotSettings::default()
    };
    let b = run(
        "San Francisco, December 2013",
        &points,
        Resolution::Nine,
        tz,
        &settings,
    );
    // The study area is the cells whose centre lies in the incidents' bounding box: incidents
    // in the edge cells whose centre lies outside are counted, not scored.
    assert!(b.outside > 0 && b.outside < 20, "{} outside", b.outside);
    let weeks: HashSet<_> = b.weeks.iter().map(|w| w.week).collect();
    assert_eq!(weeks.len(), 3, "{weeks:?}");
    for w in &b.weeks {
        if let Some(pei) = w.score.pei {
            assert!((0.0..=1.0 + 1e-9).contains(&pei), "{w:?}");
        }
    }
    chosen_beats_naive_in_most_weeks(&b, "all");
}

#[test]
#[ignore = "needs ../shared/data"]
fn englewood_2017_2018_backtest() {
    let dir = shared_data("chicago-incidents-englewood");
    let tz = chrono_tz::America::Chicago;
    let mut points = Vec::new();
    for file in ["crimes2017.csv", "crimes2018.csv"] {
        points.extend(read(
            dir.join(file),
            "case_number",
            "latitude",
            "longitude",
            tz,
            |f, col| f[col("date")].clone(),
            "%Y-%m-%dT%H:%M:%S%.3f",
        ));
    }
    assert!(points.len() > 20_000, "{}", points.len());
    let b = run(
        "Chicago Englewood, 2017 to November 2018",
        &points,
        Resolution::Ten,
        tz,
        &HotspotSettings::default(),
    );
    let weeks: HashSet<_> = b.weeks.iter().map(|w| w.week).collect();
    assert!(weeks.len() > 80, "{} weeks", weeks.len());
    chosen_beats_naive_in_most_weeks(&b, "all");
}
