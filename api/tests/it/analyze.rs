//! `patrol analyze` end to end on a store the real ingest path wrote (`patrol generate`): the
//! analytics crate's mirror of the store schema is checked against it, and each patrol job
//! writes a table that is read back.

use std::path::Path;
use std::process::Output;

use chrono::NaiveDate;
use chrono_tz::America::Chicago;
use devkit::testkit::fixtures;
use model::jurisdiction::{Jurisdiction, load_incidents};

use crate::support::patrol;

fn generate(store: &Path) {
    let out = patrol()
        .args(["generate", "--days", "1", "--units", "3", "--fixtures"])
        .arg(fixtures())
        .arg("--store")
        .arg(store)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn analyze(job: &str, store: &Path, out: &Path, from: &str, to: &str) -> Output {
    analyze_with(job, store, out, (from, to), &[])
}

fn analyze_with(job: &str, store: &Path, out: &Path, span: (&str, &str), extra: &[&str]) -> Output {
    patrol()
        .args(["analyze", job, "--from", span.0, "--to", span.1])
        .args(extra)
        .arg("--fixtures")
        .arg(fixtures())
        .arg("--store")
        .arg(store)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

/// A CSV file as a header and rows.
fn csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let fields = |r: &csv::StringRecord| r.iter().map(str::to_owned).collect();
    let header = fields(reader.headers().unwrap());
    let rows = reader.records().map(|r| fields(&r.unwrap())).collect();
    (header, rows)
}

/// The fixture county's incidents received on local day `day`.
fn incidents_on(day: NaiveDate) -> usize {
    load_incidents(&fixtures().join("incidents.csv"))
        .unwrap()
        .iter()
        .filter(|i| i.received.with_timezone(&Chicago).date_naive() == day)
        .count()
}

fn col(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

#[test]
fn patrol_jobs_run_on_a_generated_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    generate(&store);

    // The mirror of the store schema in analytics matches what ingest wrote.
    let mut scan = analytics::store::scan_pings(&store).unwrap();
    analytics::store::check_pings_schema(&mut scan).unwrap();

    let (from, to) = ("2026-11-02", "2026-11-03");
    let out = dir.path().join("dosage.csv");
    let run = analyze("dosage", &store, &out, from, to);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let (h, rows) = csv(&out);
    assert!(!rows.is_empty());
    let (kind, ms, minutes, cell) = (
        col(&h, "kind"),
        col(&h, "ms"),
        col(&h, "minutes"),
        col(&h, "cell"),
    );
    let mut total = 0i64;
    for r in &rows {
        // The first three units of the fleet are cars.
        assert_eq!(r[kind], "car");
        let v: i64 = r[ms].parse().unwrap();
        assert_eq!(r[minutes].parse::<f64>().unwrap(), v as f64 / 60_000.0);
        assert!(r[cell].is_empty() || r[cell].parse::<u64>().is_ok());
        total += v;
    }
    // Three units, one local day plus the night before it started: at most 3 × 29 hours.
    assert!(total > 0 && total <= 3 * 29 * 3_600_000, "{total}");

    let out = dir.path().join("coverage.csv");
    let run = analyze("coverage", &store, &out, from, to);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let (h, rows) = csv(&out);
    // 12 beats and 6 zones, 4 window instances starting on 2 November.
    assert_eq!(rows.len(), 18 * 4);
    for name in ["coverage", "visibility"] {
        let c = col(&h, name);
        assert!(
            rows.iter()
                .all(|r| (0.0..=1.0).contains(&r[c].parse::<f64>().unwrap()))
        );
    }
    let units = col(&h, "units");
    assert!(
        rows.iter().any(|r| r[units] != "0"),
        "no unit seen in any fence"
    );

    let out = dir.path().join("gaps.json");
    let run = analyze("gaps", &store, &out, from, to);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let gaps: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let gaps = gaps.as_array().unwrap();
    assert!(!gaps.is_empty() && gaps.len() <= 25);
    let g: Vec<f64> = gaps.iter().map(|r| r["gap"].as_f64().unwrap()).collect();
    assert!(
        g.windows(2).all(|w| w[0] >= w[1]) && g.iter().all(|x| *x > 0.0),
        "{g:?}"
    );
    assert_eq!(gaps[0]["rank"], 1);

    let out = dir.path().join("koper.csv");
    let run = analyze("koper", &store, &out, from, to);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let (h, rows) = csv(&out);
    let share = col(&h, "share_10_15");
    assert!(
        rows.iter()
            .all(|r| (0.0..=1.0).contains(&r[share].parse::<f64>().unwrap()))
    );

    let out = dir.path().join("compliance.csv");
    let run = analyze("compliance", &store, &out, from, to);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let (h, rows) = csv(&out);
    let day = NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
    let rostered = Jurisdiction::load(&fixtures())
        .unwrap()
        .roster()
        .iter()
        .filter(|r| r.date == day)
        .count();
    assert_eq!(rows.len(), rostered);
    let share = col(&h, "in_zone_share");
    assert!(
        rows.iter()
            .all(|r| (0.0..=1.0).contains(&r[share].parse::<f64>().unwrap()))
    );
    let (_, force) = csv(&dir.path().join("compliance-force.csv"));
    assert!(!force.is_empty());
    let (_, checkpoints) = csv(&dir.path().join("compliance-checkpoints.csv"));
    // 13 patrol checkpoints, one night each.
    assert_eq!(checkpoints.len(), 13);

    let out = dir.path().join("incidents.csv");
    let run = analyze("incidents", &store, &out, from, to);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let (_, rows) = csv(&out);
    assert_eq!(rows.len(), incidents_on(day));
}

/// Two tables of one job as the same rows, numbers equal to 1e-9 relative (sums of floats
/// may round differently when added up in other groups).
fn assert_same_table(one: &Path, many: &Path) {
    let ((h1, r1), (h2, r2)) = (csv(one), csv(many));
    assert_eq!(h1, h2);
    assert_eq!(r1.len(), r2.len(), "{}", many.display());
    for (a, b) in r1.iter().zip(&r2) {
        for (x, y) in a.iter().zip(b) {
            match (x.parse::<f64>(), y.parse::<f64>()) {
                (Ok(x), Ok(y)) => assert!(
                    (x - y).abs() <= 1e-9 * x.abs().max(1.0),
                    "{} row {a:?} against {b:?}",
                    many.display()
                ),
                _ => assert_eq!(x, y, "{} row {a:?} against {b:?}", many.display()),
            }
        }
    }
}

#[test]
fn dosage_coverage_and_gaps_in_passes_and_in_one_read_equal_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    generate(&store);
    let span = ("2026-11-02", "2026-11-03");
    for job in ["dosage", "coverage", "gaps"] {
        let one = dir.path().join(format!("{job}-one.csv"));
        let run = analyze_with(job, &store, &one, span, &[]);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        // A budget of one fix: a pass per unit, three in all.
        let many = dir.path().join(format!("{job}-many.csv"));
        let run = analyze_with(job, &store, &many, span, &["--pass-fixes", "1"]);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(csv(&one).1.len() > 1, "{job}: too few rows to compare");
        assert_same_table(&one, &many);
    }
    // The three tables from one read of the pings, in passes too, are the jobs' own.
    let all = dir.path().join("presence.csv");
    let run = analyze_with("presence", &store, &all, span, &["--pass-fixes", "1"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_same_table(&dir.path().join("dosage-one.csv"), &all);
    for job in ["coverage", "gaps"] {
        assert_same_table(
            &dir.path().join(format!("{job}-one.csv")),
            &dir.path().join(format!("presence-{job}.csv")),
        );
    }
    let run = analyze_with(
        "dosage",
        &store,
        &dir.path().join("x.csv"),
        span,
        &["--pass-fixes", "0"],
    );
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("--pass-fixes must be positive"));
}

#[test]
fn hot_spots_of_the_fixture_incidents_are_scored_on_a_held_out_week() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hot.parquet");
    // Hot spots need no pings; the store may be empty.
    let run = analyze("hotspots", dir.path(), &out, "2026-10-18", "2026-11-22");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(out.metadata().unwrap().len() > 0);
    let line = stderr.lines().find(|l| l.contains("top 5%")).unwrap();
    let pai: f64 = line
        .split("PAI ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(pai > 5.0, "{line}");
}

#[test]
fn a_bad_output_extension_and_span_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let run = analyze(
        "hotspots",
        dir.path(),
        &dir.path().join("x.xlsx"),
        "2026-10-18",
        "2026-11-22",
    );
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains(".parquet, .csv or .json"));
    let run = analyze(
        "dosage",
        dir.path(),
        &dir.path().join("x.csv"),
        "2026-11-03",
        "2026-11-02",
    );
    assert!(String::from_utf8_lossy(&run.stderr).contains("--from must be before --to"));
}
