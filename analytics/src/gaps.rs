//! Job 4, gaps: where and when incidents outweigh patrol presence, and how much presence to add
//! next week, in visits of 10 to 15 minutes (the Koper curve).
//!
//! Definitions, per study cell and patrol window over the span `[from, to)`:
//! - *incident share*: the cell-window's incidents / all incidents in the span inside the study
//!   area (including those outside every window);
//! - *dosage share*: the cell-window's dosage / all dosage of the span (all kinds, including
//!   time outside windows), dosage as in [`crate::dosage`];
//! - *gap* = incident share − dosage share; rows with a positive gap are ranked by it
//!   (ties: more incidents first, then cell id);
//! - *recommended extra dosage* = incident share × total dosage − current dosage, the minutes
//!   that would bring the cell-window's dosage share up to its incident share with the rest
//!   unchanged; figures are per week (span totals × 7 days / span length);
//! - *visits*: the extra minutes in visits of at most 15 minutes, `ceil(extra / 15)`, each of
//!   `max(10, extra / visits)` minutes (a visit shorter than 10 minutes has little lasting
//!   effect, so small gaps still get one 10-minute visit).

use std::collections::HashMap;

use h3o::{CellIndex, LatLng};
use polars::prelude::*;

use crate::clock::{DAY_MS, window_expr};
use crate::context::JobContext;
use crate::coverage::FenceCells;
use crate::dosage::{dosage_plan, spread};
use crate::hotspots::{IncidentPoint, StudyArea, incident_frame};
use crate::{AnalyticsError, collect_all};

/// Longest recommended visit, minutes.
pub const VISIT_MAX_MIN: f64 = 15.0;
/// Shortest recommended visit, minutes.
pub const VISIT_MIN_MIN: f64 = 10.0;

/// Incidents per cell and window (null outside windows): columns `cell`, `window`, `n`.
pub fn incident_window_plan(ctx: &JobContext, incidents: LazyFrame) -> LazyFrame {
    let local = ctx.clock.local_ms_expr(col("t"));
    incidents
        .filter(
            col("t")
                .gt_eq(lit(ctx.from_ms))
                .and(col("t").lt(lit(ctx.to_ms)))
                .and(col("cell").is_not_null()),
        )
        .with_column(window_expr(&ctx.windows, local).alias("window"))
        .group_by([col("cell"), col("window")])
        .agg([col("t").count().cast(DataType::UInt32).alias("n")])
}

/// Visits recommended for `extra` minutes: (count, minutes each).
#[must_use]
pub fn visits(extra: f64) -> (u32, f64) {
    if extra <= 0.0 {
        return (0, 0.0);
    }
    let n = (extra / VISIT_MAX_MIN).ceil().max(1.0);
    (n as u32, (extra / n).max(VISIT_MIN_MIN))
}

/// Runs the gaps job and returns the `top` largest gaps. `beats` names the beat of each cell
/// (null when none). Columns: `rank`, `cell`, `lat`, `lon`, `beat`, `window`, `incidents`,
/// `incident_share`, `dosage_minutes_week`, `dosage_share`, `gap`, `extra_minutes_week`,
/// `visits_week`, `visit_minutes`.
///
/// # Errors
/// A polars error.
pub fn gaps(
    ctx: &JobContext,
    pings: LazyFrame,
    units: LazyFrame,
    area: &StudyArea,
    incidents: &[IncidentPoint],
    beats: &[FenceCells],
    top: usize,
) -> Result<DataFrame, AnalyticsError> {
    let mut frames = collect_all(vec![
        dosage_plan(ctx, pings, units),
        incident_window_plan(ctx, incident_frame(area, incidents)?.lazy()),
    ])?
    .into_iter();
    let (Some(dosage), Some(counts)) = (frames.next(), frames.next()) else {
        return Err(AnalyticsError::Invalid(
            "collect returned too few frames".into(),
        ));
    };
    let mut minutes: HashMap<(u64, Option<String>), f64> = HashMap::new();
    let mut total_min = 0.0;
    for ((_, window, _, cell), ms) in spread(&dosage)? {
        if let Some(c) = cell {
            let m = ms as f64 / 60_000.0;
            total_min += m;
            *minutes.entry((c, window)).or_default() += m;
        }
    }
    let cells = counts.column("cell")?.u64()?;
    let windows = counts.column("window")?.str()?;
    let ns = counts.column("n")?.u32()?;
    let mut inc: Vec<(u64, String, u32)> = Vec::new();
    let mut total_inc = 0.0;
    for i in 0..counts.height() {
        let (Some(c), Some(n)) = (cells.get(i), ns.get(i)) else {
            continue;
        };
        total_inc += f64::from(n);
        if let Some(w) = windows.get(i) {
            inc.push((c, w.to_owned(), n));
        }
    }
    let weeks = (ctx.to_ms - ctx.from_ms) as f64 / (7 * DAY_MS) as f64;
    let beat_of: HashMap<u64, &str> = beats
        .iter()
        .flat_map(|b| b.cells.iter().map(move |c| (*c, b.id.as_str())))
        .collect();
    struct Gap {
        cell: u64,
        window: String,
        n: u32,
        inc_share: f64,
        dose_min: f64,
        dose_share: f64,
    }
    let mut list: Vec<Gap> = inc
        .into_iter()
        .map(|(cell, window, n)| {
            let dose_min = minutes
                .get(&(cell, Some(window.clone())))
                .copied()
                .unwrap_or(0.0);
            Gap {
                cell,
                window,
                n,
                inc_share: f64::from(n) / total_inc,
                dose_min,
                dose_share: if total_min > 0.0 {
                    dose_min / total_min
                } else {
                    0.0
                },
            }
        })
        .filter(|g| g.inc_share > g.dose_share)
        .collect();
    list.sort_by(|a, b| {
        (b.inc_share - b.dose_share)
            .total_cmp(&(a.inc_share - a.dose_share))
            .then(b.n.cmp(&a.n))
            .then(a.cell.cmp(&b.cell))
            .then(a.window.cmp(&b.window))
    });
    list.truncate(top);
    let n = list.len();
    let mut rank = Vec::with_capacity(n);
    let (mut cell, mut lat, mut lon, mut beat, mut window) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut count, mut inc_share, mut dose_week, mut dose_share, mut gap) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut extra_week, mut visits_week, mut visit_min) = (Vec::new(), Vec::new(), Vec::new());
    for (i, g) in list.iter().enumerate() {
        let centre = CellIndex::try_from(g.cell).map(LatLng::from).ok();
        let extra = ((g.inc_share * total_min - g.dose_min) / weeks).max(0.0);
        let (v, m) = visits(extra);
        rank.push(i as u32 + 1);
        cell.push(g.cell);
        lat.push(centre.map_or(f64::NAN, |c| c.lat()));
        lon.push(centre.map_or(f64::NAN, |c| c.lng()));
        beat.push(beat_of.get(&g.cell).map(|b| (*b).to_owned()));
        window.push(g.window.clone());
        count.push(g.n);
        inc_share.push(g.inc_share);
        dose_week.push(g.dose_min / weeks);
        dose_share.push(g.dose_share);
        gap.push(g.inc_share - g.dose_share);
        extra_week.push(extra);
        visits_week.push(v);
        visit_min.push(m);
    }
    Ok(DataFrame::new_infer_height(vec![
        Column::new("rank".into(), rank),
        Column::new("cell".into(), cell),
        Column::new("lat".into(), lat),
        Column::new("lon".into(), lon),
        Column::new("beat".into(), beat),
        Column::new("window".into(), window),
        Column::new("incidents".into(), count),
        Column::new("incident_share".into(), inc_share),
        Column::new("dosage_minutes_week".into(), dose_week),
        Column::new("dosage_share".into(), dose_share),
        Column::new("gap".into(), gap),
        Column::new("extra_minutes_week".into(), extra_week),
        Column::new("visits_week".into(), visits_week),
        Column::new("visit_minutes".into(), visit_min),
    ])?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use crate::testing::{Fix, cells9, centre, ms, pings, units, windows};

    #[test]
    fn visit_rule() {
        assert_eq!(visits(0.0), (0, 0.0));
        assert_eq!(visits(1.6), (1, 10.0));
        assert_eq!(visits(15.0), (1, 15.0));
        assert_eq!(visits(40.0), (3, 40.0 / 3.0));
    }

    #[test]
    fn hand_computed_gap_list() {
        let (x, y, z) = cells9();
        let t0 = ms("2026-11-02T15:00:00Z"); // Monday 09:00 CST, day window
        let s = 1000;
        let fixes = vec![
            Fix::at("C01", t0, x),
            Fix::at("C01", t0 + 60 * s, x),
            Fix::at("C01", t0 + 120 * s, x),
            Fix::at("C01", t0 + 180 * s, y),
            Fix::at("C01", t0 + 240 * s, y),
        ];
        // Dosage: x 150 s, y 90 s, 4 minutes in all.
        let at = |t: i64, c: u64| IncidentPoint {
            t_ms: t,
            lat: centre(c).lat(),
            lon: centre(c).lng(),
        };
        let incidents = vec![
            at(t0 + 600 * s, x),
            at(t0 + 700 * s, x),
            at(t0 + 800 * s, z),
            at(t0 + 900 * s, z),
            at(ms("2026-11-03T13:00:00Z"), x), // 07:00 CST: outside every window
        ];
        let ctx = JobContext::new(
            chrono_tz::America::Chicago,
            windows(),
            (
                ms("2026-11-02T00:00:00-06:00"),
                ms("2026-11-09T00:00:00-06:00"),
            ),
            (9, 11),
            120,
        )
        .unwrap();
        let area = StudyArea::new(
            h3o::Resolution::Nine,
            CellIndex::try_from(x)
                .unwrap()
                .grid_disk::<Vec<_>>(3)
                .into_iter()
                .map(u64::from)
                .collect(),
        )
        .unwrap();
        let beats = [FenceCells {
            kind: "beat",
            id: "BT01".into(),
            cells: vec![z],
        }];
        let df = gaps(
            &ctx,
            pings(&fixes),
            units(&[("C01", "car")]),
            &area,
            &incidents,
            &beats,
            10,
        )
        .unwrap();
        // x holds 2/5 of the incidents and 150/240 of the dosage: no gap. z holds 2/5 and none.
        assert_eq!(df.height(), 1);
        let f = |c: &str| df.column(c).unwrap().f64().unwrap().get(0).unwrap();
        assert_eq!(df.column("cell").unwrap().u64().unwrap().get(0), Some(z));
        assert_eq!(
            df.column("beat").unwrap().str().unwrap().get(0),
            Some("BT01")
        );
        assert_eq!(
            df.column("window").unwrap().str().unwrap().get(0),
            Some("day")
        );
        assert_eq!(
            df.column("incidents").unwrap().u32().unwrap().get(0),
            Some(2)
        );
        assert_eq!(f("incident_share"), 0.4);
        assert_eq!(f("dosage_share"), 0.0);
        assert_eq!(f("gap"), 0.4);
        assert!((f("extra_minutes_week") - 1.6).abs() < 1e-12);
        assert_eq!(
            df.column("visits_week").unwrap().u32().unwrap().get(0),
            Some(1)
        );
        assert_eq!(f("visit_minutes"), 10.0);
    }
}
