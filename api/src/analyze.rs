//! `patrol analyze dosage | coverage | hotspots | gaps | koper | compliance | incidents |
//! presence`: the jurisdiction and the store in, one table out (Parquet, CSV or JSON by
//! extension; `compliance` also writes `<out>-force` and `<out>-checkpoints` beside it,
//! `presence` `<out>-coverage` and `<out>-gaps`). Progress goes to stderr.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use analytics::compliance::ComplianceInputs;
use analytics::coverage::{FenceCells, fence_cells};
use analytics::hotspots::{HotspotParams, IncidentPoint, StudyArea, pai};
use analytics::presence::{GapInputs, patrol_tables};
use analytics::{JobContext, dosage, output, store};
use anyhow::Context;
use model::fences::Fence;
use model::jurisdiction::{Jurisdiction, load_incidents};

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

fn incidents(a: &AnalyzeArgs, j: &Jurisdiction) -> anyhow::Result<Vec<IncidentPoint>> {
    let path = a.incidents.clone().unwrap_or_else(|| j.incidents_path());
    let rows = load_incidents(&path).with_context(|| format!("incidents {}", path.display()))?;
    Ok(rows
        .iter()
        .map(|i| IncidentPoint {
            t_ms: i.received.timestamp_millis(),
            lat: i.lat,
            lon: i.lon,
        })
        .collect())
}

fn fences(
    j: &Jurisdiction,
    kind: &'static str,
    list: &[Fence],
    ctx: &JobContext,
) -> anyhow::Result<Vec<FenceCells>> {
    fence_cells(kind, list, ctx.res).with_context(|| format!("{kind}s of {}", j.dir().display()))
}

/// Runs one of the patrol jobs named by `a.job`.
///
/// # Errors
/// Bad flags, unreadable files, or a failed query, with context.
pub fn run(a: &AnalyzeArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    output::format_of(&a.out)?;
    let j = Jurisdiction::load(&a.fixtures)
        .with_context(|| format!("loading jurisdiction {}", a.fixtures.display()))?;
    let tz = j.timezone();
    let from = parse_time("--from", &a.from, tz)?;
    let to = parse_time("--to", &a.to, tz)?;
    let mut ctx =
        JobContext::for_jurisdiction(&j, from, to, a.res).context("analysis parameters")?;
    if a.pass_fixes == 0 {
        anyhow::bail!("--pass-fixes must be positive");
    }
    ctx.pass_fixes = a.pass_fixes;
    let units = dosage::units_table(j.units())?;
    let pings =
        || store::scan_pings(&a.store).with_context(|| format!("store {}", a.store.display()));
    let area = || -> anyhow::Result<StudyArea> {
        StudyArea::from_polygons(j.county(), ctx.res).context("county cells")
    };
    let beats_and_zones = || -> anyhow::Result<Vec<FenceCells>> {
        let mut all = fences(&j, "beat", &j.catalog().beats, &ctx)?;
        all.extend(fences(&j, "zone", &j.catalog().zones, &ctx)?);
        Ok(all)
    };
    eprintln!(
        "analyze {}: {} .. {} at H3 resolution {}",
        a.job,
        a.from,
        a.to,
        u8::from(ctx.res)
    );
    let mut table = {
        let _ticker = Ticker::start(format!("analyze {}", a.job));
        match a.job.as_str() {
            "dosage" => dosage::dosage(&ctx, pings()?, units)?,
            "coverage" => {
                analytics::coverage::coverage(&ctx, pings()?, units, &beats_and_zones()?)?
            }
            "presence" => {
                let all = beats_and_zones()?;
                let area = area()?;
                let points = incidents(a, &j)?;
                let gaps = GapInputs {
                    area: &area,
                    incidents: &points,
                    top: a.top,
                };
                let mut t = patrol_tables(&ctx, pings()?, &units, &all, &gaps)?;
                write_siblings(
                    "presence",
                    &a.out,
                    [("coverage", &mut t.coverage), ("gaps", &mut t.gaps)],
                )?;
                t.dosage
            }
            "hotspots" => {
                let area = area()?;
                let points = incidents(a, &j)?;
                print_pai(&area, &points, to);
                analytics::hotspots::hotspots(&ctx, &area, &points, HotspotParams::default())?
            }
            "gaps" => {
                let area = area()?;
                let beats = fences(&j, "beat", &j.catalog().beats, &ctx)?;
                analytics::gaps::gaps(
                    &ctx,
                    pings()?,
                    units,
                    &area,
                    &incidents(a, &j)?,
                    &beats,
                    a.top,
                )?
            }
            "koper" => {
                let area = area()?;
                let points = incidents(a, &j)?;
                let hot = analytics::hotspots::hot_cells(
                    &ctx,
                    &area,
                    &points,
                    HotspotParams::default(),
                    2,
                );
                eprintln!(
                    "analyze koper: {} hot-spot cells (Gi* hot at 95 %)",
                    hot.len()
                );
                analytics::koper::koper(&ctx, pings()?, &hot)?
            }
            "incidents" => {
                let path = a.incidents.clone().unwrap_or_else(|| j.incidents_path());
                let rows = load_incidents(&path)
                    .with_context(|| format!("incidents {}", path.display()))?;
                analytics::incidents::incident_response(&ctx, pings()?, &rows, j.roster())?
            }
            "compliance" => {
                let inputs = ComplianceInputs {
                    roster: j.roster(),
                    units: j.units(),
                    zones: &j.catalog().zones,
                    checkpoints: j.checkpoints(),
                    levels: j.settings().levels,
                };
                let mut c = analytics::compliance::compliance(&ctx, pings()?, inputs)?;
                write_siblings(
                    "compliance",
                    &a.out,
                    [("force", &mut c.force), ("checkpoints", &mut c.checkpoints)],
                )?;
                c.patrols
            }
            other => anyhow::bail!("patrol analyze {other}: not a patrol job"),
        }
    };
    output::write_table(&mut table, &a.out)?;
    eprintln!(
        "analyze {}: wrote {} rows to {} in {:.1} s",
        a.job,
        table.height(),
        a.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Runs `patrol analyze JOB` through the same command-line definition, writing `out`; `args`
/// are the job's other flags (`--from`, `--to`, `--top`, ...). The HTTP analytics routes and
/// `patrol report` answer with exactly what the command writes.
///
/// # Errors
/// Flags the command line refuses, or whatever the job reports.
pub(crate) fn run_into(
    job: &str,
    store: &Path,
    fixtures: &Path,
    out: &Path,
    args: &[String],
) -> anyhow::Result<()> {
    let mut argv: Vec<String> = vec!["patrol".into(), "analyze".into(), job.into()];
    argv.extend(["--store".into(), store.display().to_string()]);
    argv.extend(["--fixtures".into(), fixtures.display().to_string()]);
    argv.extend(["--out".into(), out.display().to_string()]);
    argv.extend(args.iter().cloned());
    let cli = <crate::cli::Cli as clap::Parser>::try_parse_from(&argv)
        .with_context(|| format!("arguments of patrol analyze {job}"))?;
    anyhow::ensure!(
        matches!(cli.command, crate::cli::Command::Analyze(_)),
        "not an analyze command"
    );
    crate::commands::run(cli.command)
}

/// Writes the tables a job gives besides its main one, each to `<out>-<suffix>`.
fn write_siblings(
    job: &str,
    out: &Path,
    tables: [(&str, &mut output::DataFrame); 2],
) -> anyhow::Result<()> {
    for (suffix, table) in tables {
        let path = sibling(out, suffix);
        output::write_table(table, &path)?;
        eprintln!(
            "analyze {job}: wrote {} rows to {}",
            table.height(),
            path.display()
        );
    }
    Ok(())
}

/// `out` with `-<suffix>` before its extension: `week.csv` → `week-force.csv`.
fn sibling(out: &Path, suffix: &str) -> std::path::PathBuf {
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

/// Prints the honest evaluation of the hot spots: those of the four weeks before the last
/// week of the span, scored on that week.
fn print_pai(area: &StudyArea, points: &[IncidentPoint], to: i64) {
    const WEEK: i64 = 7 * 86_400_000;
    let in_span = |a: i64, b: i64| -> Vec<IncidentPoint> {
        points
            .iter()
            .filter(|p| p.t_ms >= a && p.t_ms < b)
            .copied()
            .collect()
    };
    let test = in_span(to - WEEK, to);
    let train = in_span(to - 5 * WEEK, to - WEEK);
    for share in [0.01, 0.05] {
        let s = pai(
            area,
            &train,
            &test,
            HotspotParams::default().kde_rings,
            share,
        );
        eprintln!(
            "hot spots of the 4 weeks before the last week, top {:.0}% of {} cells: {} of {} \
             incidents of the last week on {:.2}% of the area: PAI {:.2}, PEI {:.2}",
            share * 100.0,
            area.len(),
            s.captured,
            s.test_incidents,
            s.area_share * 100.0,
            s.pai,
            s.pei
        );
    }
}
