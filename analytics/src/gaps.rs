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
//!   effect, so small gaps still get one 10-minute visit), but never more than one visit per
//!   hour of the window in a week (`floor(window hours per week)`: 19 for a window of 2 h 50
//!   min every day, 42 for 6 h), which is what a station can schedule in one cell; a capped row
//!   gets that many 15-minute visits and `visits_capped` is true, its `extra_minutes_week`
//!   still saying what the shares alone would ask for. Window hours per week are the lengths
//!   of the window's instances starting in the span, × 7 days / span length.

use std::collections::{BTreeMap, HashMap};

use h3o::{CellIndex, LatLng};
use polars::prelude::*;

use crate::AnalyticsError;
use crate::clock::{DAY_MS, window_expr, window_instances};
use crate::context::JobContext;
use crate::coverage::FenceCells;
use crate::dosage::{DosageKey, spread_dosage};
use crate::hotspots::{IncidentPoint, StudyArea, incident_frame};

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

/// Visits recommended for `extra` minutes, at most `cap`: (count, minutes each, capped).
#[must_use]
pub fn visits(extra: f64, cap: u32) -> (u32, f64, bool) {
    if extra <= 0.0 || cap == 0 {
        return (0, 0.0, extra > 0.0);
    }
    let n = (extra / VISIT_MAX_MIN).ceil().max(1.0);
    if n > f64::from(cap) {
        return (cap, VISIT_MAX_MIN, true);
    }
    (n as u32, (extra / n).max(VISIT_MIN_MIN), false)
}

/// The most visits a week of `window` allows: one per full hour of the window per week.
fn visit_caps(ctx: &JobContext, weeks: f64) -> HashMap<String, u32> {
    let mut hours: HashMap<String, f64> = HashMap::new();
    for inst in window_instances(ctx.clock.tz(), &ctx.windows, ctx.from_ms, ctx.to_ms) {
        *hours.entry(inst.window).or_default() += (inst.end_ms - inst.start_ms) as f64 / 3.6e6;
    }
    hours
        .into_iter()
        .map(|(w, h)| (w, (h / weeks).floor() as u32))
        .collect()
}

/// Runs the gaps job and returns the `top` largest gaps. `beats` names the beat of each cell
/// (null when none). Columns: `rank`, `cell`, `lat`, `lon`, `beat`, `window`, `incidents`,
/// `incident_share`, `dosage_minutes_week`, `dosage_share`, `gap`, `extra_minutes_week`,
/// `visits_week`, `visit_minutes`, `visits_capped`.
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
    let dosage = spread_dosage(ctx, pings, &units)?;
    gaps_table(ctx, &dosage, area, incidents, beats, top)
}

/// The gaps table of [`gaps`] from the dosage spread along the grid paths.
///
/// # Errors
/// A polars error.
pub(crate) fn gaps_table(
    ctx: &JobContext,
    dosage: &BTreeMap<DosageKey, i64>,
    area: &StudyArea,
    incidents: &[IncidentPoint],
    beats: &[FenceCells],
    top: usize,
) -> Result<DataFrame, AnalyticsError> {
    let counts = incident_window_plan(ctx, incident_frame(area, incidents)?.lazy()).collect()?;
    let mut minutes: HashMap<(u64, Option<String>), f64> = HashMap::new();
    let mut total_min = 0.0;
    for ((_, window, _, cell), ms) in dosage {
        if let Some(c) = cell {
            let m = *ms as f64 / 60_000.0;
            total_min += m;
            *minutes.entry((*c, window.clone())).or_default() += m;
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
    let (mut extra_week, mut visits_week, mut visit_min, mut capped) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let caps = visit_caps(ctx, weeks);
    for (i, g) in list.iter().enumerate() {
        let centre = CellIndex::try_from(g.cell).map(LatLng::from).ok();
        let extra = ((g.inc_share * total_min - g.dose_min) / weeks).max(0.0);
        let (v, m, c) = visits(extra, caps.get(&g.window).copied().unwrap_or(0));
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
        capped.push(c);
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
        Column::new("visits_capped".into(), capped),
    ])?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use crate::testing::{Fix, cells9, centre, ms, pings, shift, units, windows};

    #[test]
    fn visit_rule() {
        assert_eq!(visits(0.0, 19), (0, 0.0, false));
        assert_eq!(visits(1.6, 19), (1, 10.0, false));
        assert_eq!(visits(15.0, 19), (1, 15.0, false));
        assert_eq!(visits(40.0, 19), (3, 40.0 / 3.0, false));
        // 19 visits of 15 minutes is 285 minutes: 280 fits, 286 does not.
        assert_eq!(visits(280.0, 19), (19, 280.0 / 19.0, false));
        assert_eq!(visits(286.0, 19), (19, 15.0, true));
        assert_eq!(visits(5.0, 0), (0, 0.0, true));
    }

    fn study_area(x: u64) -> StudyArea {
        StudyArea::new(
            h3o::Resolution::Nine,
            CellIndex::try_from(x)
                .unwrap()
                .grid_disk::<Vec<_>>(3)
                .into_iter()
                .map(u64::from)
                .collect(),
        )
        .unwrap()
    }

    fn incident_at(t_ms: i64, cell: u64) -> IncidentPoint {
        IncidentPoint {
            t_ms,
            lat: centre(cell).lat(),
            lon: centre(cell).lng(),
        }
    }

    #[test]
    fn visits_are_capped_at_one_per_window_hour() {
        let (x, _, z) = cells9();
        // One local day; C01 spends the whole day window (08:30-11:20 CST) in x.
        let start = ms("2026-11-02T14:30:00Z");
        let fixes: Vec<Fix> = (0..=170)
            .map(|m| Fix::at("C01", start + m * 60_000, x))
            .collect();
        let incidents: Vec<IncidentPoint> = [(0, x), (10, z), (20, z), (30, z), (40, z)]
            .iter()
            .map(|&(m, c)| incident_at(start + m * 60_000, c))
            .collect();
        let ctx = JobContext::new(
            chrono_tz::America::Chicago,
            windows(),
            (
                ms("2026-11-02T00:00:00-06:00"),
                ms("2026-11-03T00:00:00-06:00"),
            ),
            (9, 11),
            120,
        )
        .unwrap()
        .with_roster(&[shift("C01", "2026-11-02", (8, 30), (11, 20))])
        .unwrap();
        let df = gaps(
            &ctx,
            pings(&fixes),
            units(&[("C01", "car")]),
            &study_area(x),
            &incidents,
            &[],
            10,
        )
        .unwrap();
        // z holds 4/5 of the incidents and none of the 170 minutes: 0.8 × 170 = 136 minutes
        // in one day, 952 a week, 64 visits of 15 minutes; the day window lasts 170 minutes a
        // day, 19 h 50 min a week, so 19 visits.
        assert_eq!(df.height(), 1);
        let f = |c: &str| df.column(c).unwrap().f64().unwrap().get(0).unwrap();
        assert_eq!(df.column("cell").unwrap().u64().unwrap().get(0), Some(z));
        assert!((f("extra_minutes_week") - 952.0).abs() < 1e-9);
        assert!((f("dosage_minutes_week")).abs() < 1e-12);
        assert_eq!(
            df.column("visits_week").unwrap().u32().unwrap().get(0),
            Some(19)
        );
        assert_eq!(f("visit_minutes"), 15.0);
        assert_eq!(
            df.column("visits_capped").unwrap().bool().unwrap().get(0),
            Some(true)
        );
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
        // Dosage: x 150 s, y 90 s, 4 minutes in all; C09 is off duty and adds none.
        let fixes = [
            fixes,
            vec![Fix::at("C09", t0, z), Fix::at("C09", t0 + 60 * s, z)],
        ]
        .concat();
        let at = incident_at;
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
        .unwrap()
        .with_roster(&[shift("C01", "2026-11-02", (8, 30), (11, 20))])
        .unwrap();
        let area = study_area(x);
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
        assert_eq!(
            df.column("visits_capped").unwrap().bool().unwrap().get(0),
            Some(false)
        );
    }
}
