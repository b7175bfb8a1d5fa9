//! `patrol report`: the weekly intelligence report, one self-contained HTML file.
//!
//! The report runs the same jobs as `patrol analyze` over the ISO week and the week before it:
//! `dosage`, `hotspots`, `gaps` and `compliance` through the `analyze` command itself (into
//! JSON files in a temporary folder, read back here), and the response rule through the same
//! [`ResponseJob`] `patrol analyze response` runs. So every figure in the report is a figure a
//! job writes; [`Figures`] are only sums and shares of job rows, and the report embeds them as
//! JSON (`<script id="figures">`) so a test can hold them against the jobs.
//!
//! The week is local: Monday 00:00 to the next Monday 00:00 in the jurisdiction's time zone.
//!
//! Maps are SVG drawn by [`svg`], inlined as `data:` images so the file needs no network, no
//! script and no fonts beyond the browser's own; it prints on A4 landscape.

pub(crate) mod html;
mod svg;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use analytics::response::ResponseJob;
use anyhow::Context;
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use geo::MultiPolygon;
use h3o::{CellIndex, LatLng, Resolution};
use model::jurisdiction::{Checkpoint, Jurisdiction, Window};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::cli::ReportArgs;

/// Gaps listed in the report.
pub(crate) const TOP_GAPS: usize = 10;

/// A local ISO week.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IsoWeek {
    /// Its Monday.
    pub(crate) monday: NaiveDate,
}

impl IsoWeek {
    /// Parses `2026-W47`.
    pub(crate) fn parse(s: &str) -> anyhow::Result<Self> {
        let bad = || format!("--week {s}: expected an ISO week such as 2026-W47");
        let (year, week) = s.split_once("-W").with_context(bad)?;
        let year: i32 = year.parse().ok().with_context(bad)?;
        let week: u32 = week.parse().ok().with_context(bad)?;
        let monday = NaiveDate::from_isoywd_opt(year, week, chrono::Weekday::Mon)
            .with_context(|| format!("--week {s}: year {year} has no week {week}"))?;
        Ok(Self { monday })
    }

    /// The week before.
    pub(crate) fn previous(self) -> Self {
        Self {
            monday: self.monday - chrono::Days::new(7),
        }
    }

    /// The Monday after.
    pub(crate) fn end(self) -> NaiveDate {
        self.monday + chrono::Days::new(7)
    }

    /// `2026-W47`.
    pub(crate) fn label(self) -> String {
        let w = self.monday.iso_week();
        format!("{}-W{:02}", w.year(), w.week())
    }
}

/// The rows of a job's JSON output.
type Rows = Vec<Map<String, Value>>;

fn num(row: &Map<String, Value>, key: &str) -> Option<f64> {
    row.get(key).and_then(Value::as_f64)
}

fn text(row: &Map<String, Value>, key: &str) -> Option<String> {
    match row.get(key)? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn flag(row: &Map<String, Value>, key: &str) -> bool {
    row.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn cell(row: &Map<String, Value>) -> Option<CellIndex> {
    match row.get("cell")? {
        Value::Number(n) => n.as_u64().and_then(|c| CellIndex::try_from(c).ok()),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Runs `patrol analyze JOB` for the week into `dir/JOB.json` and returns that path
/// (`compliance` also writes its `-force` and `-checkpoints` siblings there).
fn analyze(
    a: &ReportArgs,
    week: IsoWeek,
    job: &str,
    extra: &[&str],
    dir: &Path,
) -> anyhow::Result<PathBuf> {
    let out = dir.join(format!("{job}.json"));
    let mut args: Vec<String> = vec![
        "--from".into(),
        week.monday.to_string(),
        "--to".into(),
        week.end().to_string(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    crate::analyze::run_into(job, &a.store, &a.fixtures, &out, &args)
        .with_context(|| format!("patrol analyze {job} for {}", week.label()))?;
    Ok(out)
}

fn read_rows(path: &Path) -> anyhow::Result<Rows> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let rows: Vec<Value> =
        serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
    Ok(rows
        .into_iter()
        .filter_map(|r| match r {
            Value::Object(o) => Some(o),
            _ => None,
        })
        .collect())
}

/// What the jobs answered for one week.
#[derive(Debug)]
pub(crate) struct WeekData {
    week: IsoWeek,
    dosage: Rows,
    hotspots: Rows,
    gaps: Rows,
    patrols: Rows,
    force: Rows,
    checkpoints: Rows,
    response: Value,
    failing: Vec<MultiPolygon<f64>>,
    sources: Vec<(String, f64, f64)>,
    week_hours: [[Option<f64>; 24]; 7],
}

impl WeekData {
    fn compute(a: &ReportArgs, j: &Jurisdiction, week: IsoWeek) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("temporary folder for the jobs' answers")?;
        let d = dir.path();
        // Dosage and gaps from one read of the pings; every positive gap, for the maps (the
        // table shows the first TOP_GAPS).
        let presence = analyze(a, week, "presence", &["--top", "1000000"], d)?;
        let dosage = read_rows(&presence)?;
        let gaps = read_rows(&d.join("presence-gaps.json"))?;
        let hotspots = read_rows(&analyze(a, week, "hotspots", &[], d)?)?;
        let compliance = analyze(a, week, "compliance", &[], d)?;
        let patrols = read_rows(&compliance)?;
        let force = read_rows(&d.join("compliance-force.json"))?;
        let checkpoints = read_rows(&d.join("compliance-checkpoints.json"))?;

        let tz = j.timezone();
        let utc = |day: NaiveDate| -> anyhow::Result<DateTime<Utc>> {
            tz.from_local_datetime(&day.and_time(chrono::NaiveTime::MIN))
                .earliest()
                .map(|t| t.with_timezone(&Utc))
                .with_context(|| format!("local midnight of {day}"))
        };
        let job = ResponseJob::new(&a.fixtures, &a.store, utc(week.monday)?, utc(week.end())?);
        let report = job
            .run()
            .with_context(|| format!("the response rule for {}", week.label()))?;
        let mut week_hours = [[None; 24]; 7];
        for h in &report.week {
            if let Some(row) = week_hours.get_mut(usize::from(h.weekday))
                && let Some(slot) = row.get_mut(usize::from(h.hour))
            {
                *slot = h.mean_share;
            }
        }
        Ok(Self {
            week,
            dosage,
            hotspots,
            gaps,
            patrols,
            force,
            checkpoints,
            response: report.summary_json(),
            failing: report
                .summary
                .failing_areas
                .iter()
                .map(|f| f.outline.clone())
                .collect(),
            sources: report
                .sources
                .iter()
                .map(|s| (s.id.clone(), s.lat, s.lon))
                .collect(),
            week_hours,
        })
    }
}

/// The headline figures of a week: sums and shares of the jobs' rows, `None` where the week
/// has nothing to divide by.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Figures {
    /// `2026-W47`.
    pub(crate) week: String,
    /// Incidents in the study area (hotspots, slot `all`).
    pub(crate) incidents: f64,
    /// Of those, inside a patrol window (hotspots, slot kind `window`).
    pub(crate) incidents_in_windows: f64,
    /// Patrol hours placed on the grid (dosage rows with a cell).
    pub(crate) patrol_hours: f64,
    /// Of those, inside a patrol window.
    pub(crate) patrol_hours_in_windows: f64,
    /// Hours between fixes too far apart to bridge (dosage rows without a cell).
    pub(crate) no_data_hours: f64,
    /// Cell-windows whose incident share exceeds their dosage share (gaps rows).
    pub(crate) gaps: usize,
    /// Incident share held by the top gaps.
    pub(crate) top_gaps_incident_share: f64,
    /// Visits a week the top gaps call for.
    pub(crate) top_gaps_visits: f64,
    /// Checkpoint-nights checked and missed.
    pub(crate) checkpoint_nights: usize,
    /// Checkpoint-nights with no qualifying visit.
    pub(crate) checkpoints_missed: usize,
    /// Roster entries checked.
    pub(crate) patrols: usize,
    /// Share of them on patrol in their zone.
    pub(crate) on_patrol_share: Option<f64>,
    /// Patrols cut short.
    pub(crate) cut_short: usize,
    /// Patrols rostered with fewer than two officers where two are required.
    pub(crate) groups_under_two: usize,
    /// Share of zone-window instances with the force their patrol level requires.
    pub(crate) force_ok_share: Option<f64>,
    /// Share of the area passing the response rule from the stations.
    pub(crate) response_area_share: Option<f64>,
    /// Share of incidents in passing cells.
    pub(crate) response_incident_share: Option<f64>,
    /// Mean over the week's hours of the area share passing from units on duty.
    pub(crate) dynamic_area_share: Option<f64>,
    /// Failing areas.
    pub(crate) failing_areas: usize,
}

impl Figures {
    fn of(w: &WeekData) -> Self {
        let sum_incidents = |kind: &str| -> f64 {
            w.hotspots
                .iter()
                .filter(|r| r.get("slot_kind").and_then(Value::as_str) == Some(kind))
                .filter_map(|r| num(r, "incidents"))
                .sum()
        };
        let hours = |pick: &dyn Fn(&Map<String, Value>) -> bool| -> f64 {
            w.dosage
                .iter()
                .filter(|r| pick(r))
                .filter_map(|r| num(r, "minutes"))
                .sum::<f64>()
                / 60.0
        };
        let has_cell = |r: &Map<String, Value>| r.get("cell").is_some_and(|c| !c.is_null());
        let in_window = |r: &Map<String, Value>| r.get("window").is_some_and(|c| !c.is_null());
        let top = &w.gaps[..w.gaps.len().min(TOP_GAPS)];
        let share = |n: usize, of: usize| (of > 0).then(|| n as f64 / of as f64);
        let count = |rows: &Rows, key: &str| rows.iter().filter(|r| flag(r, key)).count();
        let s = &w.response["static"];
        let dynamic: Vec<f64> = w.week_hours.iter().flatten().flatten().copied().collect();
        Self {
            week: w.week.label(),
            incidents: sum_incidents("all"),
            incidents_in_windows: sum_incidents("window"),
            patrol_hours: hours(&has_cell),
            patrol_hours_in_windows: hours(&|r| has_cell(r) && in_window(r)),
            no_data_hours: hours(&|r| !has_cell(r)),
            gaps: w.gaps.len(),
            top_gaps_incident_share: top.iter().filter_map(|r| num(r, "incident_share")).sum(),
            top_gaps_visits: top.iter().filter_map(|r| num(r, "visits_week")).sum(),
            checkpoint_nights: w.checkpoints.len(),
            checkpoints_missed: w.checkpoints.len() - count(&w.checkpoints, "visited"),
            patrols: w.patrols.len(),
            on_patrol_share: share(count(&w.patrols, "on_patrol"), w.patrols.len()),
            cut_short: count(&w.patrols, "cut_short"),
            groups_under_two: w.patrols.len() - count(&w.patrols, "group_ok"),
            force_ok_share: share(count(&w.force, "ok"), w.force.len()),
            response_area_share: s["passing_area_share"].as_f64(),
            response_incident_share: s["incidents"]["passing_share"].as_f64(),
            dynamic_area_share: (!dynamic.is_empty())
                .then(|| dynamic.iter().sum::<f64>() / dynamic.len() as f64),
            failing_areas: s["failing_areas"].as_array().map_or(0, Vec::len),
        }
    }
}

/// Values per display cell of one layer: per window name, and overall (key `None`).
type Layer = BTreeMap<Option<String>, HashMap<CellIndex, f64>>;

/// Adds `v` to the parent of `c` at `res` in `layer[window]`.
fn add(layer: &mut Layer, window: Option<String>, c: CellIndex, res: Resolution, v: f64) {
    let c = c.parent(res).unwrap_or(c);
    *layer.entry(window).or_default().entry(c).or_default() += v;
}

/// The three heatmap layers at display resolution `res`: incidents, patrol minutes and gap
/// (incident share minus dosage share, in percentage points), each per window and overall.
fn layers(w: &WeekData, res: Resolution) -> [Layer; 3] {
    let (mut inc, mut dose, mut gap) = (Layer::new(), Layer::new(), Layer::new());
    for r in &w.hotspots {
        let (Some(c), Some(n)) = (cell(r), num(r, "incidents")) else {
            continue;
        };
        match r.get("slot_kind").and_then(Value::as_str) {
            Some("all") => add(&mut inc, None, c, res, n),
            Some("window") => add(&mut inc, text(r, "slot"), c, res, n),
            _ => {}
        }
    }
    for r in &w.dosage {
        let (Some(c), Some(m)) = (cell(r), num(r, "minutes")) else {
            continue;
        };
        add(&mut dose, None, c, res, m);
        if let Some(window) = text(r, "window") {
            add(&mut dose, Some(window), c, res, m);
        }
    }
    for r in &w.gaps {
        let (Some(c), Some(g)) = (cell(r), num(r, "gap")) else {
            continue;
        };
        // In percentage points, as the legend reads.
        add(&mut gap, None, c, res, g * 100.0);
        add(&mut gap, text(r, "window"), c, res, g * 100.0);
    }
    [inc, dose, gap]
}

/// The nearest checkpoint to a point: its name and distance in metres.
fn nearest_checkpoint(checkpoints: &[Checkpoint], lat: f64, lon: f64) -> Option<(String, f64)> {
    let here = LatLng::new(lat, lon).ok()?;
    checkpoints
        .iter()
        .filter_map(|c| {
            let there = LatLng::new(c.lat, c.lon).ok()?;
            Some((c.name.clone(), here.distance_m(there)))
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
}

/// Everything the page needs besides the weeks' data.
#[derive(Debug)]
pub(crate) struct Setting {
    /// Jurisdiction name.
    pub(crate) name: String,
    /// Its patrol windows.
    pub(crate) windows: Vec<Window>,
    /// Outline.
    pub(crate) outline: MultiPolygon<f64>,
    /// Beats with their ids.
    pub(crate) beats: Vec<(String, MultiPolygon<f64>)>,
    /// Patrol checkpoints.
    pub(crate) checkpoints: Vec<Checkpoint>,
    /// When the report was made.
    pub(crate) made: DateTime<Utc>,
}

/// Builds the report.
///
/// # Errors
/// A bad `--week`, unreadable jurisdiction files, a failed job, or an unwritable `--out`.
pub fn run(a: &ReportArgs) -> anyhow::Result<()> {
    let week = IsoWeek::parse(&a.week)?;
    let j = Jurisdiction::load(&a.fixtures)
        .with_context(|| format!("--fixtures {}", a.fixtures.display()))?;
    let beats = j
        .catalog()
        .beats
        .iter()
        .map(|f| (f.id.clone(), f.geometry.clone()))
        .collect();
    let ctx = Setting {
        name: j.settings().name.clone(),
        windows: j.settings().windows.clone(),
        outline: j.county().clone(),
        beats,
        checkpoints: j.checkpoints().to_vec(),
        made: Utc::now(),
    };
    let this = WeekData::compute(a, &j, week)?;
    // The week before is for comparison only: without it the report still stands.
    let before = WeekData::compute(a, &j, week.previous())
        .inspect_err(|e| {
            eprintln!(
                "report {}: no figures for the week before: {e:#}",
                week.label()
            );
        })
        .ok();
    let page = html::page(&ctx, &this, before.as_ref());
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("--out {}", a.out.display()))?;
    }
    std::fs::write(&a.out, &page).with_context(|| format!("--out {}", a.out.display()))?;
    eprintln!(
        "report {}: wrote {} ({:.1} MB)",
        week.label(),
        a.out.display(),
        page.len() as f64 / 1e6
    );
    if let Some(pdf) = &a.pdf {
        print_pdf(&a.out, pdf)?;
        eprintln!("report {}: printed {}", week.label(), pdf.display());
    }
    Ok(())
}

/// Chromium's binary: `PATROL_CHROMIUM`, else the first of the usual names on the PATH.
#[must_use]
pub fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PATROL_CHROMIUM") {
        return Some(p.into());
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|n| std::env::split_paths(&path).map(move |d| d.join(n)))
        .find(|p| p.is_file())
}

/// Prints the HTML report at `html` to `pdf` with headless Chromium (the page's print styles
/// give A4 landscape with a page per section).
fn print_pdf(html: &Path, pdf: &Path) -> anyhow::Result<()> {
    let chrome = chromium().context(
        "--pdf: no Chromium found (install chromium, or set PATROL_CHROMIUM to its binary)",
    )?;
    let html = std::fs::canonicalize(html).with_context(|| format!("{}", html.display()))?;
    let profile = tempfile::tempdir().context("a Chromium profile folder")?;
    let out = std::process::Command::new(&chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-pdf-header-footer",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .with_context(|| format!("running {}", chrome.display()))?;
    let ok = std::fs::read(pdf).is_ok_and(|b| b.starts_with(b"%PDF"));
    anyhow::ensure!(
        out.status.success() && ok,
        "--pdf {}: Chromium did not print the report ({}): {}",
        pdf.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_weeks_parse_to_their_monday() {
        let w = IsoWeek::parse("2026-W47").unwrap();
        assert_eq!(w.monday, NaiveDate::from_ymd_opt(2026, 11, 16).unwrap());
        assert_eq!(w.end(), NaiveDate::from_ymd_opt(2026, 11, 23).unwrap());
        assert_eq!(w.previous().label(), "2026-W46");
        // Week 1 of 2026 starts in 2025; week 53 exists in 2026 only.
        assert_eq!(
            IsoWeek::parse("2026-W01").unwrap().monday,
            NaiveDate::from_ymd_opt(2025, 12, 29).unwrap()
        );
        assert_eq!(
            IsoWeek::parse("2026-W01").unwrap().previous().label(),
            "2025-W52"
        );
        assert!(IsoWeek::parse("2026-W53").is_ok());
        let e = IsoWeek::parse("2025-W53").unwrap_err().to_string();
        assert!(e.contains("no week 53"), "{e}");
        let e = IsoWeek::parse("2026-47").unwrap_err().to_string();
        assert!(e.contains("--week 2026-47"), "{e}");
    }

    #[test]
    fn nearest_checkpoint_is_the_closest() {
        let cp = |name: &str, lat: f64, lon: f64| Checkpoint {
            id: name.into(),
            name: name.into(),
            kind: model::jurisdiction::CheckpointKind::Patrol,
            lat,
            lon,
            radius_m: 50.0,
            min_dwell_s: 60,
            window: None,
        };
        let list = [cp("far", 40.2, -88.9), cp("near", 40.101, -88.9)];
        let (name, d) = nearest_checkpoint(&list, 40.1, -88.9).unwrap();
        assert_eq!(name, "near");
        assert!((d - 111.2).abs() < 1.0, "{d}");
        assert!(nearest_checkpoint(&[], 40.1, -88.9).is_none());
    }
}
