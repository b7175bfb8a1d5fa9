//! `patrol report`: the weekly intelligence report, one self-contained HTML file.
//!
//! The report runs the same jobs as `patrol analyze` over the ISO week and the week before it
//! (`presence` for dosage and gaps, `hotspots`, `compliance` and `response`), through the same
//! entry point, [`analytics::jobs::run`], and reads their tables as typed rows ([`rows`]). So
//! every figure in the report is a figure a job writes; [`Figures`] are only sums and shares of
//! job rows, and the report embeds them as JSON (`<script id="figures">`) so a test can hold
//! them against the jobs.
//!
//! The week is local: Monday 00:00 to the next Monday 00:00 in the jurisdiction's time zone.
//!
//! Missing data is reported, never counted as a failure of the patrols: compliance marks each
//! roster entry's data (`data`: complete, partial, no data from the unit, no data from any
//! unit, after the end of the data) and each checkpoint-night's status (not rostered and no
//! data apart from missed), and the report's "Data completeness" section lists the days
//! without data, the units that sent nothing and the shifts past the end of the data, while
//! its compliance rates and counts are over the patrols with complete data only.
//!
//! Maps are SVG drawn by [`svg`] over the roads and places of the jurisdiction's road file
//! ([`basemap`]), inlined as `data:` images so the file needs no network, no script and no
//! fonts beyond the browser's own; it prints on A4 landscape.

mod basemap;
pub(crate) mod html;
mod rows;
mod svg;
mod week;

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::Utc;
use model::jurisdiction::Jurisdiction;

use crate::cli::ReportArgs;
use basemap::Basemap;
use week::{IsoWeek, Setting, WeekData};

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
    // The maps' roads and places; a jurisdiction without a road file gets maps without them.
    let basemap = match j.roads_path() {
        Some(path) => Basemap::load(&path)?,
        None => Basemap::default(),
    };
    let ctx = Setting {
        name: j.settings().name.clone(),
        windows: j.settings().windows.clone(),
        outline: j.county().clone(),
        beats,
        checkpoints: j.checkpoints().to_vec(),
        basemap,
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
    let check = week::forecast_check(a, &j, week)?;
    let page = html::page(&ctx, &this, before.as_ref(), &check);
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
