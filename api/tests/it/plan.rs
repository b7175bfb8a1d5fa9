//! `patrol plan` end to end on the fixture county: the roster it writes loads with the
//! jurisdiction's loader in place of the county's, the visits file sits beside it, the
//! summary compares the plan with the current roster, and a forecast method saved in the
//! store is the one used. (The planner's rules are checked in `analytics::plan`'s tests.)

use std::path::Path;

use devkit::testkit::fixtures;
use model::jurisdiction::Jurisdiction;

use crate::support::patrol;

/// Runs `patrol plan` for 2026-W48 and returns its stdout.
fn plan(store: &Path, out: &Path) -> String {
    let o = patrol()
        .args(["plan", "--week", "2026-W48", "--store"])
        .arg(store)
        .arg("--fixtures")
        .arg(fixtures())
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "patrol plan: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn plan_writes_a_roster_the_jurisdiction_loads_and_its_visits() {
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("next.csv");
    let summary = plan(store.path(), &out);
    assert!(summary.contains("plan 2026-W48:"), "{summary}");
    assert!(
        summary.contains("on the forecast hot spots: plan ")
            && summary.contains("current roster (2026-W48"),
        "{summary}"
    );
    // The configured method until a backtest has saved one.
    assert!(summary.contains("night kde-cv"), "{summary}");

    let county = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(fixtures()).unwrap() {
        let f = f.unwrap();
        if f.file_type().unwrap().is_file() {
            std::fs::copy(f.path(), county.path().join(f.file_name())).unwrap();
        }
    }
    std::fs::copy(&out, county.path().join("roster.csv")).unwrap();
    let j = Jurisdiction::load(county.path()).unwrap();
    assert!(!j.roster().is_empty());
    let monday = chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
    assert!(
        j.roster()
            .iter()
            .all(|e| e.date >= monday && e.date < monday + chrono::Days::new(7))
    );

    let visits = std::fs::read_to_string(dir.path().join("next-visits.csv")).unwrap();
    let mut lines = visits.lines();
    assert_eq!(
        lines.next(),
        Some("date,window,unit,zone,start,minutes,cell,lat,lon,target")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert!(rows.iter().any(|r| r[9] == "hotspot"));
    for r in &rows {
        let minutes: u32 = r[5].parse().unwrap();
        assert!((10..=15).contains(&minutes), "{r:?}");
        assert!(h3o::CellIndex::try_from(u64::from_str_radix(r[6], 16).unwrap()).is_ok());
        assert!(
            j.roster()
                .iter()
                .any(|e| (e.date.to_string(), &e.window, &e.unit, &e.zone)
                    == (
                        r[0].to_owned(),
                        &r[1].to_owned(),
                        &r[2].to_owned(),
                        &r[3].to_owned()
                    )),
            "{r:?} has no shift"
        );
    }
}

#[test]
fn plan_uses_the_method_the_backtest_saved() {
    let store = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(store.path().join("forecast")).unwrap();
    std::fs::write(
        store.path().join("forecast/methods.toml"),
        "[methods]\nall = \"naive\"\nnight = \"recency\"\n",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let summary = plan(store.path(), &dir.path().join("roster.csv"));
    assert!(
        summary.contains("day naive") && summary.contains("night recency"),
        "{summary}"
    );
}

#[test]
fn plan_refuses_a_bad_week() {
    let store = tempfile::tempdir().unwrap();
    let o = patrol()
        .args(["plan", "--week", "2026-48", "--store"])
        .arg(store.path())
        .arg("--fixtures")
        .arg(fixtures())
        .arg("--out")
        .arg(store.path().join("r.csv"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--week 2026-48"));
}
