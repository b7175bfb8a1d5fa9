//! `patrol analyze response` end to end: a day of tracks written by `patrol generate` (the
//! real ingest stages and store), then the job's outputs and its what-if flags.

use std::path::Path;
use std::process::Output;

use chrono::NaiveDate;
use chrono_tz::America::Chicago;
use devkit::testkit::fixtures;
use model::jurisdiction::load_incidents;

use crate::support::patrol;

fn analyze(store: &Path, out: &Path, extra: &[&str]) -> Output {
    patrol()
        .args(["analyze", "response", "--store"])
        .arg(store)
        .arg("--fixtures")
        .arg(fixtures())
        .args([
            "--from",
            "2026-11-02",
            "--to",
            "2026-11-03",
            "--res",
            "8",
            "--out",
        ])
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn analyze_response_on_a_generated_day() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let generated = patrol()
        .args(["generate", "--fixtures"])
        .arg(fixtures())
        .arg("--store")
        .arg(&store)
        .args(["--days", "1"])
        .output()
        .unwrap();
    assert!(generated.status.success(), "{generated:?}");

    let summary_path = dir.path().join("summary.json");
    let run = analyze(&store, &summary_path, &[]);
    assert!(run.status.success(), "{run:?}");
    let s = json(&summary_path);
    let share = s["static"]["passing_area_share"].as_f64().unwrap();
    assert!((0.9..0.98).contains(&share), "{share}");
    assert_eq!(s["dynamic"]["hours"], 24);
    assert!(s["dynamic"]["units_seen"].as_u64().unwrap() > 10);
    // Monday 2 November, local: every hour of Monday has one sample and some units.
    let week = s["dynamic"]["week"].as_array().unwrap();
    assert_eq!(week.len(), 168);
    for w in week {
        let monday = w["weekday"] == 0;
        assert_eq!(w["samples"], u64::from(monday), "{w}");
        if monday {
            assert!(w["mean_units"].as_f64().unwrap() > 0.0);
            assert!(w["mean_share"].as_f64().unwrap() > 0.0);
        }
    }
    // Every incident received that day, each with the drive from a unit on the road.
    let monday = NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
    let day = load_incidents(&fixtures().join("incidents.csv"))
        .unwrap()
        .iter()
        .filter(|i| i.received.with_timezone(&Chicago).date_naive() == monday)
        .count();
    assert!(day > 0);
    assert_eq!(s["incidents"]["received"], day);
    assert!(s["incidents"]["with_unit_available"].as_u64().unwrap() > 0);

    let map_path = dir.path().join("map.geojson");
    assert!(analyze(&store, &map_path, &[]).status.success());
    let map = json(&map_path);
    let features = map["features"].as_array().unwrap();
    let cells = features
        .iter()
        .filter(|f| f["properties"]["kind"] == "cell")
        .count();
    let areas = features
        .iter()
        .filter(|f| f["properties"]["kind"] == "failing_area")
        .count();
    assert_eq!(cells as u64, s["static"]["cells"].as_u64().unwrap());
    assert_eq!(
        areas,
        s["static"]["failing_areas"].as_array().unwrap().len()
    );
    assert!(areas > 0);

    let csv_path = dir.path().join("cells.csv");
    assert!(analyze(&store, &csv_path, &[]).status.success());
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    assert_eq!(
        csv.lines().count() as u64,
        s["static"]["cells"].as_u64().unwrap() + 1
    );

    // What-if: a station in Harlan (north, without one) raises the passing share; a unit
    // posted there too adds one more source.
    let whatif_path = dir.path().join("whatif.json");
    let harlan = "40.2619,-88.9822";
    let run = analyze(
        &store,
        &whatif_path,
        &[
            "--add-station",
            harlan,
            "--post-unit",
            "39.95,-89.2",
            "--move-station",
            "ST2=40.10,-89.10",
        ],
    );
    assert!(run.status.success(), "{run:?}");
    let w = json(&whatif_path);
    let ids: Vec<&str> = w["static"]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ST1", "ST2", "ST3", "ST4", "NEW1", "POST1"]);
    assert_eq!(w["static"]["sources"][1]["lon"], -89.10);
    assert!(w["static"]["passing_area_share"].as_f64().unwrap() > share);

    let bad = analyze(&store, &whatif_path, &["--move-station", "ST9=40.1,-88.9"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("ST9"),
        "{bad:?}"
    );
    let bad = analyze(&store, &whatif_path, &["--add-station", "north"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--add-station"));
}

#[test]
fn analyze_names_the_known_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let out = patrol()
        .args(["analyze", "nonsense", "--store"])
        .arg(dir.path())
        .arg("--fixtures")
        .arg(fixtures())
        .args(["--from", "2026-11-02", "--to", "2026-11-03", "--out"])
        .arg(dir.path().join("x.json"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nonsense") && err.contains("response"),
        "{err}"
    );
}
