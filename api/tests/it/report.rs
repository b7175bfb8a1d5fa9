//! `patrol report` end to end: two weeks generated from the fixture, the report of the second
//! built, its figures held against `patrol analyze` run separately on the same week, and (with
//! Chromium, in CI's extended step) the page rendered in headless Chromium: every section
//! present, every image decoded, a PNG saved under `target/report-test/`, and the `--pdf`
//! print beside it.

use std::path::Path;

use devkit::testkit::{artifacts, fixtures};
use serde_json::{Map, Value, json};

use crate::cdp::{Browser, base64_decode, chromium};
use crate::support::patrol;

const WEEK: &str = "2026-W47";
const FROM: &str = "2026-11-16";
const TO: &str = "2026-11-23";

fn run(args: &[&str], paths: &[(&str, &Path)]) {
    let mut cmd = patrol();
    cmd.args(args);
    for (flag, p) in paths {
        cmd.arg(flag).arg(p);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "patrol {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `patrol analyze JOB` over the week into `dir/JOB.json` and returns its rows.
fn analyze(job: &str, store: &Path, dir: &Path, extra: &[&str]) -> Value {
    let out = dir.join(format!("{job}.json"));
    let mut args = vec!["analyze", job, "--from", FROM, "--to", TO];
    args.extend(extra);
    run(
        &args,
        &[
            ("--store", store),
            ("--fixtures", &fixtures()),
            ("--out", &out),
        ],
    );
    serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
}

fn rows(v: &Value) -> Vec<&Map<String, Value>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_object().unwrap())
        .collect()
}

fn sum(rows: &[&Map<String, Value>], key: &str, keep: impl Fn(&Map<String, Value>) -> bool) -> f64 {
    rows.iter()
        .filter(|r| keep(r))
        .filter_map(|r| r[key].as_f64())
        .sum()
}

fn close(what: &str, got: &Value, want: f64) {
    let got = got
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: not a number: {got}"));
    assert!(
        (got - want).abs() <= 1e-6 * want.abs().max(1.0),
        "{what}: the report says {got}, the job {want}"
    );
}

/// JSON equality where numbers compare by value (the browser writes 1.0 as 1).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w))
        }
        _ => a == b,
    }
}

/// The `<script id="figures">` JSON of a report.
/// The response rule's `.json` summary over the week.
fn response_summary(store: &Path, dir: &Path) -> Value {
    let out = dir.join("response.json");
    run(
        &["analyze", "response", "--from", FROM, "--to", TO],
        &[
            ("--store", store),
            ("--fixtures", &fixtures()),
            ("--out", &out),
        ],
    );
    serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
}

fn figures(html: &str) -> Value {
    let start = html
        .find("<script type=\"application/json\" id=\"figures\">")
        .expect("the report embeds its figures");
    let rest = &html[start..];
    let body = &rest[rest.find('>').unwrap() + 1..rest.find("</script>").unwrap()];
    serde_json::from_str(body).unwrap()
}

/// Generates `days` days of the fixture county from `start` into `store`, a fix every 30 s.
fn generate(store: &Path, start: &str, days: u32) {
    run(
        &[
            "generate",
            "--days",
            &days.to_string(),
            "--start",
            start,
            "--interval",
            "30",
        ],
        &[("--fixtures", &fixtures()), ("--store", store)],
    );
}

/// Generates weeks 46 and 47 of the fixture into `store` (the report compares the one with the
/// other) and writes the report of week 47 to `report`, printed to `pdf` too when given.
fn build_report(store: &Path, report: &Path, pdf: Option<&Path>) {
    generate(store, "2026-11-09", 14);
    let fx = fixtures();
    let mut paths: Vec<(&str, &Path)> =
        vec![("--store", store), ("--fixtures", &fx), ("--out", report)];
    if let Some(pdf) = pdf {
        let _ = std::fs::remove_file(pdf);
        paths.push(("--pdf", pdf));
    }
    run(&["report", "--week", WEEK], &paths);
}

#[test]
fn weekly_report_matches_the_jobs() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let report = tmp.path().join("report.html");
    build_report(&store, &report, None);
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the report loads nothing from the network"
    );
    let figs = figures(&html);
    let (now, before) = (&figs["this"], &figs["before"]);
    assert_eq!(now["week"], WEEK);
    assert_eq!(before["week"], "2026-W46");

    // The same jobs, run on their own.
    let dir = tmp.path().join("jobs");
    std::fs::create_dir_all(&dir).unwrap();
    let dosage = analyze("dosage", &store, &dir, &[]);
    let dosage = rows(&dosage);
    let has_cell = |r: &Map<String, Value>| !r["cell"].is_null();
    close(
        "patrol hours",
        &now["patrol_hours"],
        sum(&dosage, "minutes", has_cell) / 60.0,
    );
    close(
        "patrol hours in windows",
        &now["patrol_hours_in_windows"],
        sum(&dosage, "minutes", |r| {
            has_cell(r) && !r["window"].is_null()
        }) / 60.0,
    );
    close(
        "no-data hours",
        &now["no_data_hours"],
        sum(&dosage, "minutes", |r| !has_cell(r)) / 60.0,
    );
    assert!(now["patrol_hours"].as_f64().unwrap() > 100.0, "{now}");

    let hot = analyze("hotspots", &store, &dir, &[]);
    let hot = rows(&hot);
    let incidents = sum(&hot, "incidents", |r| r["slot_kind"] == "all");
    close("incidents", &now["incidents"], incidents);
    assert!(incidents > 10.0, "the fixture has incidents in {WEEK}");

    let top = analyze("gaps", &store, &dir, &["--top", "10"]);
    let top = rows(&top);
    assert_eq!(top.len(), 10, "the fixture week has at least 10 gaps");
    close(
        "incident share of the top gaps",
        &now["top_gaps_incident_share"],
        sum(&top, "incident_share", |_| true),
    );
    let listed: Vec<String> = html
        .split("data-gap-cell=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].to_owned())
        .collect();
    let want: Vec<String> = top.iter().map(|r| r["cell"].to_string()).collect();
    assert_eq!(
        listed, want,
        "the report lists the job's top 10 gaps in order"
    );

    let patrols = analyze("compliance", &store, &dir, &[]);
    let patrols = rows(&patrols);
    let checkpoints: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("compliance-checkpoints.json")).unwrap(),
    )
    .unwrap();
    let checkpoints = rows(&checkpoints);
    let status = |s: &str| checkpoints.iter().filter(|r| r["status"] == s).count();
    assert_eq!(now["checkpoints_missed"], json!(status("missed")));
    assert_eq!(
        now["checkpoint_nights"],
        json!(status("visited") + status("missed"))
    );
    assert_eq!(
        now["checkpoints_not_rostered"],
        json!(status("not_rostered"))
    );
    assert!(
        !checkpoints.is_empty(),
        "checkpoints are checked every night"
    );
    assert_eq!(now["patrols"], json!(patrols.len()));
    let under = patrols.iter().filter(|r| r["group_ok"] == false).count();
    assert_eq!(now["groups_under_two"], json!(under));

    let resp = response_summary(&store, &dir);
    close(
        "30/30 area share",
        &now["response_area_share"],
        resp["static"]["passing_area_share"].as_f64().unwrap(),
    );
    close(
        "30/30 incident share",
        &now["response_incident_share"],
        resp["static"]["incidents"]["passing_share"]
            .as_f64()
            .unwrap(),
    );
    assert_eq!(
        now["failing_areas"],
        json!(resp["static"]["failing_areas"].as_array().unwrap().len())
    );
}

/// A week whose store lost a day: the report says which, and its compliance figures count
/// only the patrols with data (none of the lost day's is cut short or a missed checkpoint).
#[test]
fn a_week_with_a_day_without_pings_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    generate(&store, FROM, 7);
    // The store's UTC days 18 and 19 November: all of the local 18th, the evenings around it.
    for day in ["2026-11-18", "2026-11-19"] {
        std::fs::remove_dir_all(store.join("pings").join(format!("date={day}"))).unwrap();
    }
    let report = tmp.path().join("report.html");
    run(
        &["report", "--week", WEEK],
        &[
            ("--store", &store),
            ("--fixtures", &fixtures()),
            ("--out", &report),
        ],
    );
    let html = std::fs::read_to_string(&report).unwrap();
    let now = &figures(&html)["this"];
    assert_eq!(now["days_without_data"], json!(["2026-11-18"]), "{now}");
    assert!(html.contains("data-warning=\"incomplete\""));
    assert!(html.contains("<span data-days-without-data>2026-11-18</span>"));
    assert!(!html.contains("-0.0"), "no negative zero in the report");

    let dir = tmp.path().join("jobs");
    std::fs::create_dir_all(&dir).unwrap();
    let patrols = analyze("compliance", &store, &dir, &[]);
    let patrols = rows(&patrols);
    let data = |s: &str| patrols.iter().filter(|r| r["data"] == s).count();
    let lost: Vec<_> = patrols
        .iter()
        .filter(|r| r["date"] == "2026-11-18")
        .collect();
    assert!(!lost.is_empty());
    for r in &lost {
        assert_eq!(r["data"], "no_store_data", "{r:?}");
        assert!(
            r["cut_short"].is_null() && r["on_patrol"].is_null(),
            "{r:?}"
        );
    }
    let cut_short = patrols.iter().filter(|r| r["cut_short"] == true).count();
    assert!(
        patrols
            .iter()
            .filter(|r| r["cut_short"] == true)
            .all(|r| r["data"] == "complete")
    );
    assert_eq!(now["cut_short"], json!(cut_short));
    assert_eq!(now["patrols_with_data"], json!(data("complete")));
    assert_eq!(now["no_store_data"], json!(data("no_store_data")));
    assert_eq!(now["after_data_end"], json!(data("after_data_end")));
    assert!(data("no_store_data") >= lost.len());
    assert!(data("complete") > lost.len(), "the other days are judged");

    let checkpoints: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("compliance-checkpoints.json")).unwrap(),
    )
    .unwrap();
    let lost_nights: Vec<_> = rows(&checkpoints)
        .into_iter()
        .filter(|r| r["date"] == "2026-11-18")
        .collect();
    assert!(!lost_nights.is_empty());
    assert!(
        lost_nights.iter().all(|r| r["status"] != "missed"),
        "{lost_nights:?}"
    );

    // The hours of the lost Wednesday without any unit's fix are missing data, not hours
    // without coverage: the mean hour from the units on duty leaves them out.
    let resp = response_summary(&store, &dir);
    let week = resp["dynamic"]["week"].as_array().unwrap();
    let lost_hour = |h: &Value| h["weekday"] == 2 && h["mean_units"] == 0.0;
    assert!(
        week.iter().any(lost_hour),
        "the 18th has hours without fixes"
    );
    let kept: Vec<f64> = week
        .iter()
        .filter(|h| !lost_hour(h))
        .filter_map(|h| h["mean_share"].as_f64())
        .collect();
    close(
        "mean hour from the units on duty",
        &now["dynamic_area_share"],
        kept.iter().sum::<f64>() / kept.len() as f64,
    );
}

/// The report in a real browser, and its `--pdf` print.
#[test]
#[ignore = "needs chromium"]
fn weekly_report_renders_in_chromium() {
    let chrome = chromium();
    let tmp = tempfile::tempdir().unwrap();
    let out = artifacts("report-test");
    let (report, pdf_path) = (out.join("report.html"), out.join("report.pdf"));
    build_report(&tmp.path().join("store"), &report, Some(&pdf_path));
    let figs = figures(&std::fs::read_to_string(&report).unwrap());
    let mut browser = Browser::launch(&chrome, 1600, 1000);
    let page = &mut browser.page;
    let url = format!("file://{}", report.canonicalize().unwrap().display());
    let nav = page.call("Page.navigate", json!({"url": url}));
    assert!(nav.get("errorText").is_none(), "{nav}");
    page.wait(
        "the report to load",
        "document.readyState === 'complete'",
        std::time::Duration::from_secs(60),
    );
    for id in [
        "headline",
        "heatmaps",
        "gaps",
        "compliance",
        "response",
        "method",
    ] {
        assert_eq!(
            page.eval(&format!("!!document.getElementById('{id}')")),
            Value::Bool(true),
            "section {id}"
        );
    }
    // Every image decodes to a picture with a size.
    let images = page.eval(
        "(async () => { const imgs = [...document.images]; \
          const ok = await Promise.all(imgs.map(i => i.decode().then(() => i.naturalWidth > 0 && i.naturalHeight > 0, () => false))); \
          return {n: imgs.length, decoded: ok.filter(x => x).length}; })()",
    );
    let n = images["n"].as_u64().unwrap();
    // Three layers of five maps over the county at least, the failing areas and the week grid.
    assert!(n >= 17, "{images}");
    assert_eq!(images["decoded"], json!(n), "every image decodes");
    for layer in ["incidents", "dosage", "gaps"] {
        let maps = page.eval(&format!(
            "document.querySelectorAll('[data-layer={layer}][data-view=county] img').length"
        ));
        assert_eq!(maps, json!(5), "{layer}: all hours and the four windows");
    }
    let shown = page.eval("JSON.parse(document.getElementById('figures').textContent)");
    assert!(
        same(&shown, &figs),
        "the page's figures are the file's: {shown} against {figs}"
    );
    let shot = page.call(
        "Page.captureScreenshot",
        json!({"format": "png", "captureBeyondViewport": true}),
    );
    let png = base64_decode(shot["data"].as_str().unwrap());
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(out.join("report.png"), png).unwrap();
    page.eval("true");
    assert!(page.errors.is_empty(), "console errors: {:#?}", page.errors);
    let pdf = std::fs::read(&pdf_path).unwrap();
    assert!(pdf.starts_with(b"%PDF"), "a PDF");
    let count = |pat: &[u8]| pdf.windows(pat.len()).filter(|w| *w == pat).count();
    let pages = count(b"/Type /Page") - count(b"/Type /Pages");
    assert!(
        pages >= 4,
        "the print layout breaks sections onto pages: {pages}"
    );
}

/// The SVG documents inlined in `html`, each with the `data-layer` and `data-view` of its row
/// of maps (empty for the figures outside the heatmap rows).
fn svgs(html: &str) -> Vec<(String, String, String)> {
    const SRC: &str = "src=\"data:image/svg+xml;base64,";
    html.match_indices(SRC)
        .map(|(at, _)| {
            let before = &html[..at];
            let row = before
                .rfind("<div class=\"maps\"")
                .filter(|r| before.rfind("</div>").is_none_or(|end| end < *r));
            let value = |name: &str| {
                row.map(|r| {
                    let s = &before[r..];
                    let from = s.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                    s[from..from + s[from..].find('"').unwrap()].to_owned()
                })
                .unwrap_or_default()
            };
            let data = &html[at + SRC.len()..];
            let svg = String::from_utf8(base64_decode(&data[..data.find('"').unwrap()])).unwrap();
            (value("data-layer"), value("data-view"), svg)
        })
        .collect()
}

/// The texts of the elements of class `class` in `svg`.
fn texts<'a>(svg: &'a str, class: &str) -> Vec<&'a str> {
    svg.split(&format!("<text class=\"{class}\""))
        .skip(1)
        .map(|s| &s[s.find('>').unwrap() + 1..s.find('<').unwrap()])
        .collect()
}

/// The names of the fixture road file's `place` nodes.
fn fixture_places() -> Vec<String> {
    let osm = std::fs::read_to_string(fixtures().join("roads.osm")).unwrap();
    osm.split("<tag k=\"place\"")
        .skip(1)
        .filter_map(|s| {
            let node = &s[..s.find("</node>")?];
            let from = node.find("<tag k=\"name\" v=\"")? + 17;
            Some(node[from..from + node[from..].find('"')?].to_owned())
        })
        .collect()
}

/// The maps carry context from the fixture's road file (roads, place names), beat labels, a
/// scale bar and a north arrow, and legends of at least three classes with their units; the
/// page's print rules keep headings with what follows them.
#[test]
fn report_maps_have_context() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, report) = (tmp.path().join("store"), tmp.path().join("report.html"));
    let fx = fixtures();
    generate(&store, FROM, 7);
    run(
        &["report", "--week", WEEK],
        &[("--store", &store), ("--fixtures", &fx), ("--out", &report)],
    );
    let html = std::fs::read_to_string(&report).unwrap();
    for rule in [
        "h2{break-before:page} #headline{break-before:auto}",
        "h1,h2,h3,.meta{break-after:avoid}",
        "figure,.maps,tr{break-inside:avoid}",
    ] {
        assert!(html.contains(rule), "print rule {rule}");
    }
    let places = fixture_places();
    assert!(places.contains(&"Ashford".to_owned()), "{places:?}");
    let maps = svgs(&html);
    // Three layers of five windows over the county, the failing areas, the week grid.
    assert!(maps.len() >= 17, "{} images", maps.len());
    // Every map (the week grid is no map) has a scale bar and a north arrow.
    let geographic: Vec<_> = maps.iter().filter(|m| m.2.contains("clipPath")).collect();
    assert_eq!(
        geographic.len(),
        maps.len() - 1,
        "all but the week grid are maps"
    );
    for (layer, view, svg) in geographic {
        assert!(
            svg.contains("class=\"scale-bar\""),
            "{layer} {view}: scale bar"
        );
        assert!(
            svg.contains("class=\"north-arrow\""),
            "{layer} {view}: north arrow"
        );
    }
    for layer in ["incidents", "dosage", "gaps"] {
        let county: Vec<&String> = maps
            .iter()
            .filter(|(l, v, _)| l == layer && v == "county")
            .map(|(_, _, svg)| svg)
            .collect();
        assert_eq!(county.len(), 5, "{layer}");
        let all_hours = county[0];
        assert!(all_hours.contains("class=\"road major\""), "{layer}: roads");
        let named = texts(all_hours, "place");
        assert!(
            named.iter().any(|n| places.iter().any(|p| p == n)),
            "{layer}: a place of the road file is named: {named:?}"
        );
        assert!(!texts(all_hours, "beat").is_empty(), "{layer}: beat labels");
        assert!(
            !texts(all_hours, "road-name").is_empty(),
            "{layer}: road names"
        );
        let classes = all_hours.matches("class=\"legend-class\"").count();
        assert!(classes >= 3, "{layer}: {classes} classes in the legend");
        let measure = texts(all_hours, "legend-measure");
        assert!(
            measure[0].contains("per cell per week") || measure[0].contains("% points"),
            "{layer}: {measure:?}"
        );
    }
    // The busiest beats' maps, when the week has them, show roads too.
    for (layer, _, svg) in maps.iter().filter(|(_, v, _)| v == "core") {
        assert!(
            svg.contains("class=\"road "),
            "{layer}: roads on the busiest beats"
        );
    }
}
