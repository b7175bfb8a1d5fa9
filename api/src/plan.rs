//! `patrol plan --week YYYY-Www`: next week's roster (`--out`, the columns of `roster.csv`)
//! and its directed stops beside it (`<out>-visits.csv`), planned by [`analytics::plan`] from
//! the incidents before the week, the forecast method the backtest saved in the store (else
//! `[hotspots] method`) and the unit list. The summary goes to stdout: units and shifts
//! planned, stops, zone-windows left unstaffed, and the expected patrol minutes on the
//! forecast hot spots of the plan against the current roster's.

use std::path::{Path, PathBuf};

use analytics::forecast::Choice;
use analytics::hotspots::IncidentPoint;
use analytics::plan::{self, PlanInputs};
use anyhow::Context;
use chrono::NaiveDate;
use h3o::Resolution;
use model::jurisdiction::{Jurisdiction, load_incidents};

use crate::cli::PlanArgs;

/// The Monday of an ISO week written `2026-W47`.
fn monday(s: &str) -> anyhow::Result<NaiveDate> {
    let bad = || format!("--week {s}: expected an ISO week such as 2026-W47");
    let (year, week) = s.split_once("-W").with_context(bad)?;
    let year: i32 = year.parse().ok().with_context(bad)?;
    let week: u32 = week.parse().ok().with_context(bad)?;
    NaiveDate::from_isoywd_opt(year, week, chrono::Weekday::Mon)
        .with_context(|| format!("--week {s}: year {year} has no week {week}"))
}

/// `<out>-visits.csv` beside `out` (its extension dropped).
fn visits_path(out: &Path) -> PathBuf {
    let stem = out
        .file_stem()
        .map_or_else(|| "roster".into(), |s| s.to_string_lossy().into_owned());
    out.with_file_name(format!("{stem}-visits.csv"))
}

/// Plans the week and writes the two files.
///
/// # Errors
/// A bad `--week`, a missing store, unreadable jurisdiction or incident files, a failed plan,
/// or an unwritable `--out`.
pub fn run(a: &PlanArgs) -> anyhow::Result<()> {
    let monday = monday(&a.week)?;
    anyhow::ensure!(
        a.store.is_dir(),
        "--store {}: not a directory",
        a.store.display()
    );
    let j = Jurisdiction::load(&a.fixtures)
        .with_context(|| format!("--fixtures {}", a.fixtures.display()))?;
    let path = a.incidents.clone().unwrap_or_else(|| j.incidents_path());
    let incidents: Vec<IncidentPoint> = load_incidents(&path)
        .with_context(|| format!("incidents {}", path.display()))?
        .iter()
        .map(|i| IncidentPoint {
            t_ms: i.received.timestamp_millis(),
            lat: i.lat,
            lon: i.lon,
        })
        .collect();
    let choice = Choice::load(&a.store)?;
    let res = Resolution::try_from(j.settings().h3.analysis_res)
        .context("[h3] analysis_res is not an H3 resolution")?;
    let p = plan::plan(&PlanInputs {
        jurisdiction: &j,
        incidents: &incidents,
        choice: choice.as_ref(),
        monday,
        res,
    })
    .with_context(|| format!("planning {}", a.week))?;

    let visits = visits_path(&a.out);
    std::fs::write(&a.out, plan::roster_csv(&p.roster))
        .with_context(|| format!("--out {}", a.out.display()))?;
    std::fs::write(&visits, plan::visits_csv(&p.visits))
        .with_context(|| format!("writing {}", visits.display()))?;

    let units: std::collections::BTreeSet<&str> =
        p.roster.iter().map(|e| e.unit.as_str()).collect();
    let hot_visits = p.visits.iter().filter(|v| v.target == "hotspot").count();
    let methods: Vec<String> = p
        .methods
        .iter()
        .map(|(w, m)| format!("{w} {}", m.name()))
        .collect();
    println!(
        "plan {}: {} units in {} shifts; {} directed stops ({hot_visits} hot-spot visits, {} \
         checkpoint stops); forecast by window: {}",
        a.week,
        units.len(),
        p.roster.len(),
        p.visits.len(),
        p.visits.len() - hot_visits,
        methods.join(", ")
    );
    if !p.unstaffed.is_empty() {
        let by_window: Vec<String> = j
            .settings()
            .windows
            .iter()
            .map(|w| {
                let n = p.unstaffed.iter().filter(|(_, x, _)| *x == w.name).count();
                format!("{} {n}", w.name)
            })
            .collect();
        println!(
            "{} zone-windows left unstaffed, the units not reaching the force rule's number \
             at one window a day ({})",
            p.unstaffed.len(),
            by_window.join(", ")
        );
    }
    for (unit, why) in &p.idle {
        println!("not planned: {unit}: {why}");
    }
    for cp in &p.unzoned_checkpoints {
        println!(
            "checkpoint {cp}: more than {:.0} km from every zone, not scheduled",
            plan::NEAR_ZONE_M / 1000.0
        );
    }
    let current = p.current_roster(j.roster());
    let against = p.reference.map_or_else(
        || " (no current roster to compare)".to_owned(),
        |r| {
            format!(
                ", current roster ({}, {} shifts) ",
                analytics::forecast::week_name(r),
                current.len()
            )
        },
    );
    let figure = |planned: f64, current_figure: f64| {
        if p.reference.is_some() {
            format!("plan {planned:.0}{against}{current_figure:.0}")
        } else {
            format!("plan {planned:.0}{against}")
        }
    };
    println!(
        "expected patrol minutes on the forecast hot spots: {}",
        figure(
            p.dosage_on_hot(&p.roster, &p.visits),
            p.dosage_on_hot(&current, &[])
        )
    );
    println!(
        "expected patrol minutes at the forecast incidents (minutes × incidents): {}",
        figure(
            p.dosage_on_forecast(&p.roster, &p.visits),
            p.dosage_on_forecast(&current, &[])
        )
    );
    println!("wrote {} and {}", a.out.display(), visits.display());
    Ok(())
}
