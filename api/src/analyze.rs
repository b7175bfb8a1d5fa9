//! `patrol analyze JOB`: the jurisdiction and the store in, the job's tables out (Parquet, CSV
//! or JSON by `--out`'s extension; a job's further tables beside it as `<out>-<table>`, e.g.
//! `week-force.csv`; the response rule also writes `.geojson` maps and a `.json` summary; the
//! backtest saves its chosen forecast methods in the store).
//! Progress goes to stderr. The job itself is [`analytics::jobs::run`], as for the HTTP routes
//! and the report.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use analytics::jobs::{self, Job, Request};
use analytics::response::{Change, Scenario};
use anyhow::Context;
use model::jurisdiction::Jurisdiction;

use crate::cli::AnalyzeArgs;

/// Prints the elapsed time to stderr every few seconds until dropped.
struct Ticker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    fn start(what: String) -> Self {
        let (tx, rx) = mpsc::channel::<()>();
        let started = Instant::now();
        let thread = std::thread::spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(Duration::from_secs(5)) {
                eprintln!("{what}: running, {:.0} s", started.elapsed().as_secs_f64());
            }
        });
        Self {
            stop: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Parses `--from`/`--to`: RFC 3339, or a date (`YYYY-MM-DD`) meaning local midnight.
fn parse_time(flag: &str, s: &str, tz: chrono_tz::Tz) -> anyhow::Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    let day = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .with_context(|| format!("{flag} {s}: not an RFC 3339 time or a YYYY-MM-DD date"))?;
    day.and_hms_opt(0, 0, 0)
        .and_then(|d| d.and_local_timezone(tz).earliest())
        .map(|d| d.timestamp_millis())
        .with_context(|| format!("{flag} {s}: local midnight does not exist"))
}

/// `LAT,LON` in degrees.
fn point(flag: &str, s: &str) -> anyhow::Result<(f64, f64)> {
    let parsed = s.split_once(',').and_then(|(lat, lon)| {
        let (lat, lon) = (
            lat.trim().parse::<f64>().ok()?,
            lon.trim().parse::<f64>().ok()?,
        );
        (lat.abs() <= 90.0 && lon.abs() <= 180.0).then_some((lat, lon))
    });
    parsed.with_context(|| format!("{flag} {s}: expected LAT,LON in degrees"))
}

/// The response rule's what-if: `--add-station`, `--move-station`, `--post-unit`.
fn scenario(a: &AnalyzeArgs) -> anyhow::Result<Scenario> {
    let mut changes = Vec::new();
    for s in &a.add_station {
        let (lat, lon) = point("--add-station", s)?;
        changes.push(Change::AddStation { lat, lon });
    }
    for s in &a.move_station {
        let (id, at) = s
            .split_once('=')
            .with_context(|| format!("--move-station {s}: expected ID=LAT,LON"))?;
        let (lat, lon) = point("--move-station", at)?;
        changes.push(Change::MoveStation {
            id: id.trim().to_owned(),
            lat,
            lon,
        });
    }
    for s in &a.post_unit {
        let (lat, lon) = point("--post-unit", s)?;
        changes.push(Change::PostUnit { lat, lon });
    }
    anyhow::ensure!(
        changes.is_empty() || a.job == Job::Response,
        "--add-station, --move-station and --post-unit are for the response job"
    );
    Ok(Scenario { changes })
}

/// The extensions `--out` may have for `job`.
fn check_out(job: Job, out: &Path) -> anyhow::Result<()> {
    let ext = out
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let ok = match ext.as_deref() {
        Some("parquet" | "csv" | "json") => true,
        Some("geojson") => job == Job::Response,
        _ => false,
    };
    anyhow::ensure!(
        ok,
        "--out {}: the output must end in .parquet, .csv or .json{}",
        out.display(),
        if job == Job::Response {
            " (or .geojson for the maps)"
        } else {
            ""
        }
    );
    Ok(())
}

/// Runs the job `a.job` and writes its tables.
///
/// # Errors
/// Bad flags, unreadable files, or a failed query, with context.
pub fn run(a: &AnalyzeArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    check_out(a.job, &a.out)?;
    let j = Jurisdiction::load(&a.fixtures)
        .with_context(|| format!("loading jurisdiction {}", a.fixtures.display()))?;
    let tz = j.timezone();
    let mut req = Request::new(
        a.job,
        parse_time("--from", &a.from, tz)?,
        parse_time("--to", &a.to, tz)?,
    );
    anyhow::ensure!(
        req.from_ms < req.to_ms,
        "--from must be before --to ({} is not before {})",
        a.from,
        a.to
    );
    anyhow::ensure!(a.pass_fixes > 0, "--pass-fixes must be positive");
    req.res = a.res;
    req.top = a.top;
    req.pass_fixes = a.pass_fixes;
    req.incidents.clone_from(&a.incidents);
    req.scenario = scenario(a)?;
    eprintln!("analyze {}: {} .. {}", a.job, a.from, a.to);
    let mut out = {
        let _ticker = Ticker::start(format!("analyze {}", a.job));
        jobs::run(&j, &a.store, &req).with_context(|| format!("patrol analyze {}", a.job))?
    };
    for note in &out.notes {
        eprintln!("analyze {}: {note}", a.job);
    }
    if let Some(report) = &out.response {
        report
            .write(&a.out)
            .with_context(|| format!("--out {}", a.out.display()))?;
        let s = &report.summary;
        println!(
            "response: {} cells at res {}, {:.1}% of the area passes from {} sources ({} \
             failing areas, worst {:.1} min); {} hours from units on duty; wrote {}",
            s.cells,
            report.res,
            s.passing_area_share * 100.0,
            report.sources.len(),
            s.failing_areas.len(),
            s.worst_time_s / 60.0,
            report.hours.len(),
            a.out.display()
        );
        return Ok(());
    }
    for (i, t) in out.tables.iter_mut().enumerate() {
        let path = if i == 0 {
            a.out.clone()
        } else {
            sibling(&a.out, t.kind.name())
        };
        analytics::output::write_table(&mut t.frame, &path)?;
        eprintln!(
            "analyze {}: wrote {} rows to {}",
            a.job,
            t.frame.height(),
            path.display()
        );
    }
    if let Some(choice) = &out.choice {
        let path = choice
            .save(&a.store)
            .context("saving the chosen forecast methods")?;
        eprintln!(
            "analyze {}: hotspots and gaps will forecast with the chosen methods, saved in {}",
            a.job,
            path.display()
        );
    }
    eprintln!(
        "analyze {}: done in {:.1} s",
        a.job,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `out` with `-<suffix>` before its extension: `week.csv` → `week-force.csv`.
fn sibling(out: &Path, suffix: &str) -> PathBuf {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = out
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.with_file_name(format!("{stem}-{suffix}.{ext}"))
}
