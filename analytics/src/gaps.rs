//! Job 4, gaps: where and when incidents outweigh patrol presence, and how much presence to add
//! next week, in visits of 10 to 15 minutes (the Koper curve), within what the force can give.
//!
//! Definitions, per study cell and patrol window over the span `[from, to)`:
//! - *incident share*: the cell-window's incidents / all incidents in the span inside the study
//!   area (including those outside every window);
//! - *dosage share*: the cell-window's dosage / all dosage of the span (all kinds, including
//!   time outside windows), dosage as in [`crate::dosage`];
//! - *gap* = incident share − dosage share; cell-windows with a positive gap are candidates;
//! - *patrol box*: neighbouring candidate cells (H3 neighbours) of one window; a box is listed
//!   only when its cells hold at least `[hotspots] gi_min_incidents` incidents in the span or
//!   one of them is a forecast hot spot: a lone incident is not a hot spot. Boxes are named
//!   `B1`, `B2`, ... in the order of their best row;
//! - *forecast*: the cell's incidents expected in the window next week, from the window slot's
//!   forecast ([`crate::forecast`], the method the backtest chose): the cell's share of the
//!   forecast scores × the slot's mean incidents a week over the training weeks; *forecast hot*
//!   when the cell is in the forecast's top share;
//! - *asked minutes* = incident share × total dosage − current dosage, the minutes a week that
//!   would bring the cell-window's dosage share up to its incident share with the rest
//!   unchanged (per week: span totals × 7 days / span length);
//! - *extra minutes*: the asked minutes, but at most (the smallest names the `cap`): `window`,
//!   the window's minutes a week less the presence already there; `visits`, one 15-minute
//!   visit per full hour of the window a week (19 for 2 h 50 min every day, 42 for 6 h); and
//!   `force`, what is left of the window's directed budget, `[hotspots] directed_share` of the
//!   rostered unit-minutes in the window a week. The budget goes to the cell-windows in order
//!   of forecast incidents per window minute, where a minute of presence meets the most;
//! - *prevented*: forecast incidents × extra minutes / window minutes a week: the incidents
//!   expected while the added patrols are there, which presence can deter at most; rows are
//!   ranked by it (ties: the larger gap, then cell id and window). A span without any dosage
//!   asks for no minutes (the shares have nothing to scale), and its boxes are still listed
//!   by their gap: incidents where no patrol was seen;
//! - *visits*: the extra minutes in visits of at most 15 minutes, `ceil(extra / 15)`, each of
//!   `max(10, extra / visits)` minutes (a visit shorter than 10 minutes has little lasting
//!   effect, so small gaps still get one 10-minute visit); `visits_capped` when the extra
//!   minutes are less than the asked ones.

use std::collections::{BTreeMap, HashMap};

use h3o::{CellIndex, LatLng};
use polars::prelude::*;

use crate::AnalyticsError;
use crate::clock::{DAY_MS, window_expr, window_instances};
use crate::context::JobContext;
use crate::coverage::FenceCells;
use crate::dosage::{DosageKey, spread_dosage};
use crate::forecast::SlotForecast;
use crate::hotspots::{IncidentPoint, StudyArea, incident_frame};
use model::jurisdiction::HotspotSettings;

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
fn visit_caps(window_min: &HashMap<String, f64>) -> HashMap<String, u32> {
    window_min
        .iter()
        .map(|(w, m)| (w.clone(), (m / 60.0).floor() as u32))
        .collect()
}

/// What gaps needs beyond the pings and the incidents: next week's forecasts and the
/// settings that bound the recommendations.
#[derive(Debug, Clone, Copy)]
pub struct GapAdvice<'a> {
    /// The window slots' forecasts, keyed as [`crate::forecast::next_week`] keys them.
    pub forecasts: &'a BTreeMap<(String, String), SlotForecast>,
    /// `[hotspots]`: `gi_min_incidents` and `directed_share`.
    pub settings: &'a HotspotSettings,
}

/// Runs the gaps job and returns the `top` gaps by incidents prevented. `beats` names the beat
/// of each cell (null when none). Columns: `rank`, `cell`, `lat`, `lon`, `beat`, `window`,
/// `box`, `box_cells`, `box_incidents`, `incidents`, `incident_share`, `forecast_week`,
/// `forecast_hot`, `dosage_minutes_week`, `dosage_share`, `gap`, `asked_minutes_week`,
/// `extra_minutes_week`, `visits_week`, `visit_minutes`, `visits_capped`, `cap`,
/// `prevented_week`.
///
/// # Errors
/// A polars error.
#[allow(
    clippy::too_many_arguments,
    reason = "the job's inputs, each from its own file"
)]
pub fn gaps(
    ctx: &JobContext,
    pings: LazyFrame,
    units: LazyFrame,
    area: &StudyArea,
    incidents: &[IncidentPoint],
    beats: &[FenceCells],
    top: usize,
    advice: GapAdvice<'_>,
) -> Result<DataFrame, AnalyticsError> {
    let dosage = spread_dosage(ctx, pings, &units)?;
    gaps_table(ctx, &dosage, area, incidents, beats, top, advice)
}

/// One cell-window of the gap list.
struct Gap {
    cell: u64,
    window: String,
    n: u32,
    inc_share: f64,
    dose_min: f64,
    dose_share: f64,
    box_id: usize,
    forecast: f64,
    hot: bool,
    asked: f64,
    extra: f64,
    cap: Option<&'static str>,
    prevented: f64,
}

/// Connected groups of `cells` (H3 neighbours), as an index per cell into the groups.
fn boxes(cells: &[u64]) -> Vec<usize> {
    let index: HashMap<u64, usize> = cells.iter().enumerate().map(|(i, c)| (*c, i)).collect();
    let mut group = vec![usize::MAX; cells.len()];
    let mut next = 0;
    for start in 0..cells.len() {
        if group[start] != usize::MAX {
            continue;
        }
        group[start] = next;
        let mut stack = vec![start];
        while let Some(i) = stack.pop() {
            let Ok(c) = CellIndex::try_from(cells[i]) else {
                continue;
            };
            for n in c.grid_disk::<Vec<_>>(1) {
                if let Some(&j) = index.get(&u64::from(n))
                    && group[j] == usize::MAX
                {
                    group[j] = next;
                    stack.push(j);
                }
            }
        }
        next += 1;
    }
    group
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
    advice: GapAdvice<'_>,
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
    let window_min = window_minutes(ctx, weeks);
    // Each window's expected incidents per cell, computed once for all its rows.
    let expected: HashMap<&str, (Vec<f64>, &SlotForecast)> = advice
        .forecasts
        .iter()
        .filter(|((kind, _), _)| kind == "window")
        .map(|((_, w), f)| (w.as_str(), (f.expected(), f)))
        .collect();
    let caps = visit_caps(&window_min);
    let list: Vec<Gap> = inc
        .into_iter()
        .map(|(cell, window, n)| {
            let dose_min = minutes
                .get(&(cell, Some(window.clone())))
                .copied()
                .unwrap_or(0.0);
            let inc_share = f64::from(n) / total_inc;
            let (forecast, hot) = expected
                .get(window.as_str())
                .zip(area.position(cell))
                .map_or((0.0, false), |((e, f), i)| (e[i], f.hot[i] > 0.0));
            Gap {
                cell,
                n,
                inc_share,
                dose_min,
                dose_share: if total_min > 0.0 {
                    dose_min / total_min
                } else {
                    0.0
                },
                box_id: 0,
                forecast,
                hot,
                asked: ((inc_share * total_min - dose_min) / weeks).max(0.0),
                extra: 0.0,
                cap: None,
                prevented: 0.0,
                window,
            }
        })
        .filter(|g| g.inc_share > g.dose_share)
        .collect();
    // Patrol boxes: neighbouring gap cells of one window; a box is kept when it holds enough
    // incidents to be a hot spot, or a forecast hot spot.
    let mut by_window: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, g) in list.iter().enumerate() {
        by_window.entry(g.window.clone()).or_default().push(i);
    }
    let mut box_of = vec![0usize; list.len()];
    let mut box_stats: Vec<(u32, u32, bool)> = Vec::new();
    for rows in by_window.values() {
        let cells: Vec<u64> = rows.iter().map(|&i| list[i].cell).collect();
        let groups = boxes(&cells);
        let base = box_stats.len();
        let count = groups.iter().max().map_or(0, |m| m + 1);
        box_stats.extend(std::iter::repeat_n((0, 0, false), count));
        for (&i, g) in rows.iter().zip(&groups) {
            box_of[i] = base + g;
            let st = &mut box_stats[base + g];
            st.0 += 1;
            st.1 += list[i].n;
            st.2 |= list[i].hot;
        }
    }
    let min_n = advice.settings.gi_min_incidents;
    let kept: Vec<bool> = box_stats
        .iter()
        .map(|(_, n, hot)| *n >= min_n || *hot)
        .collect();
    let mut list: Vec<Gap> = list
        .into_iter()
        .zip(&box_of)
        .filter(|(_, b)| kept[**b])
        .map(|(mut g, b)| {
            g.box_id = *b;
            g
        })
        .collect();
    // The force's directed minutes, given to the cell-windows where a minute of presence meets
    // the most forecast incidents; each also bounded by its window's length and visit cap.
    let duty = ctx.duty_minutes_by_window();
    let mut budget: HashMap<String, f64> = duty
        .iter()
        .map(|(w, m)| (w.clone(), m / weeks * advice.settings.directed_share))
        .collect();
    let density =
        |g: &Gap| g.forecast / window_min.get(&g.window).copied().unwrap_or(f64::INFINITY);
    list.sort_by(|a, b| {
        density(b)
            .total_cmp(&density(a))
            .then((b.inc_share - b.dose_share).total_cmp(&(a.inc_share - a.dose_share)))
            .then(a.cell.cmp(&b.cell))
            .then(a.window.cmp(&b.window))
    });
    for g in &mut list {
        let length = window_min.get(&g.window).copied().unwrap_or(0.0);
        let room = (length - g.dose_min / weeks).max(0.0);
        let visit_cap = f64::from(caps.get(&g.window).copied().unwrap_or(0)) * VISIT_MAX_MIN;
        let left = budget.get(&g.window).copied().unwrap_or(0.0);
        let (extra, cap) = [
            (g.asked, None),
            (room, Some("window")),
            (visit_cap, Some("visits")),
            (left, Some("force")),
        ]
        .into_iter()
        .fold((f64::INFINITY, None), |best, (m, why)| {
            if m < best.0 { (m, why) } else { best }
        });
        g.extra = extra.max(0.0);
        g.cap = cap;
        if let Some(b) = budget.get_mut(&g.window) {
            *b -= g.extra;
        }
        g.prevented = if length > 0.0 {
            g.forecast * g.extra / length
        } else {
            0.0
        };
    }
    list.sort_by(|a, b| {
        b.prevented
            .total_cmp(&a.prevented)
            .then((b.inc_share - b.dose_share).total_cmp(&(a.inc_share - a.dose_share)))
            .then(a.cell.cmp(&b.cell))
            .then(a.window.cmp(&b.window))
    });
    list.truncate(top);
    // Boxes named in rank order: the best gap's box is B1.
    let mut names: HashMap<usize, String> = HashMap::new();
    for g in &list {
        let k = names.len() + 1;
        names.entry(g.box_id).or_insert_with(|| format!("B{k}"));
    }
    gap_frame(&list, &names, &box_stats, &beat_of, weeks, &caps)
}

/// Each window's minutes a week over the span.
fn window_minutes(ctx: &JobContext, weeks: f64) -> HashMap<String, f64> {
    let mut out: HashMap<String, f64> = HashMap::new();
    for inst in window_instances(ctx.clock.tz(), &ctx.windows, ctx.from_ms, ctx.to_ms) {
        *out.entry(inst.window).or_default() += (inst.end_ms - inst.start_ms) as f64 / 60_000.0;
    }
    out.values_mut().for_each(|m| *m /= weeks);
    out
}

fn gap_frame(
    list: &[Gap],
    names: &HashMap<usize, String>,
    box_stats: &[(u32, u32, bool)],
    beat_of: &HashMap<u64, &str>,
    weeks: f64,
    caps: &HashMap<String, u32>,
) -> Result<DataFrame, AnalyticsError> {
    let f = |v: &dyn Fn(&Gap) -> f64| -> Vec<f64> { list.iter().map(v).collect() };
    let centre = |g: &Gap| CellIndex::try_from(g.cell).map(LatLng::from).ok();
    let visits: Vec<(u32, f64, bool)> = list
        .iter()
        .map(|g| {
            let (v, m, capped) = visits(g.extra, caps.get(&g.window).copied().unwrap_or(0));
            (v, m, capped || g.cap.is_some())
        })
        .collect();
    Ok(DataFrame::new_infer_height(vec![
        Column::new("rank".into(), (1..=list.len() as u32).collect::<Vec<u32>>()),
        Column::new(
            "cell".into(),
            list.iter().map(|g| g.cell).collect::<Vec<u64>>(),
        ),
        Column::new(
            "lat".into(),
            f(&|g| centre(g).map_or(f64::NAN, |c| c.lat())),
        ),
        Column::new(
            "lon".into(),
            f(&|g| centre(g).map_or(f64::NAN, |c| c.lng())),
        ),
        Column::new(
            "beat".into(),
            list.iter()
                .map(|g| beat_of.get(&g.cell).map(|b| (*b).to_owned()))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "window".into(),
            list.iter().map(|g| g.window.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "box".into(),
            list.iter()
                .map(|g| names[&g.box_id].clone())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "box_cells".into(),
            list.iter()
                .map(|g| box_stats[g.box_id].0)
                .collect::<Vec<u32>>(),
        ),
        Column::new(
            "box_incidents".into(),
            list.iter()
                .map(|g| box_stats[g.box_id].1)
                .collect::<Vec<u32>>(),
        ),
        Column::new(
            "incidents".into(),
            list.iter().map(|g| g.n).collect::<Vec<u32>>(),
        ),
        Column::new("incident_share".into(), f(&|g| g.inc_share)),
        Column::new("forecast_week".into(), f(&|g| g.forecast)),
        Column::new(
            "forecast_hot".into(),
            list.iter().map(|g| g.hot).collect::<Vec<_>>(),
        ),
        Column::new("dosage_minutes_week".into(), f(&|g| g.dose_min / weeks)),
        Column::new("dosage_share".into(), f(&|g| g.dose_share)),
        Column::new("gap".into(), f(&|g| g.inc_share - g.dose_share)),
        Column::new("asked_minutes_week".into(), f(&|g| g.asked)),
        Column::new("extra_minutes_week".into(), f(&|g| g.extra)),
        Column::new(
            "visits_week".into(),
            visits.iter().map(|v| v.0).collect::<Vec<u32>>(),
        ),
        Column::new(
            "visit_minutes".into(),
            visits.iter().map(|v| v.1).collect::<Vec<f64>>(),
        ),
        Column::new(
            "visits_capped".into(),
            visits.iter().map(|v| v.2).collect::<Vec<bool>>(),
        ),
        Column::new(
            "cap".into(),
            list.iter()
                .map(|g| g.cap.map(str::to_owned))
                .collect::<Vec<_>>(),
        ),
        Column::new("prevented_week".into(), f(&|g| g.prevented)),
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

    /// Monday 2026-11-02 in Chicago, C01 rostered for the day window.
    fn monday_with_c01_on_day_duty() -> JobContext {
        JobContext::new(
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
        .unwrap()
    }

    fn settings(gi_min_incidents: u32, directed_share: f64) -> HotspotSettings {
        HotspotSettings {
            gi_min_incidents,
            directed_share,
            ..HotspotSettings::default()
        }
    }

    fn advice<'a>(
        forecasts: &'a BTreeMap<(String, String), SlotForecast>,
        settings: &'a HotspotSettings,
    ) -> GapAdvice<'a> {
        GapAdvice {
            forecasts,
            settings,
        }
    }

    #[test]
    fn lone_incidents_are_left_out_and_the_force_bounds_the_minutes() {
        let (x, _, z) = cells9();
        let area = study_area(x);
        let d = |a: u64, b: u64| {
            CellIndex::try_from(a)
                .unwrap()
                .grid_distance(CellIndex::try_from(b).unwrap())
                .unwrap()
        };
        // y beside z, two rings from x; a far cell three rings out, not touching either.
        let y = *area
            .cells()
            .iter()
            .find(|c| d(**c, z) == 1 && d(**c, x) == 2)
            .unwrap();
        let far = *area
            .cells()
            .iter()
            .find(|c| d(**c, x) == 3 && d(**c, z) > 2 && d(**c, y) > 1)
            .unwrap();
        let start = ms("2026-11-02T14:30:00Z"); // Monday 08:30 CST
        let fixes: Vec<Fix> = (0..=170)
            .map(|m| Fix::at("C01", start + m * 60_000, x))
            .collect();
        // z: six incidents, two of them in y beside it (one box); far: one.
        let mut incidents: Vec<IncidentPoint> =
            (0..4).map(|m| incident_at(start + m * 60_000, z)).collect();
        incidents.push(incident_at(start, y));
        incidents.push(incident_at(start + 60_000, y));
        incidents.push(incident_at(start, far));
        let ctx = monday_with_c01_on_day_duty();
        // Next week's forecast puts three incidents in z, none elsewhere.
        let iz = area.position(z).unwrap();
        let mut score = vec![0.0; area.len()];
        score[iz] = 1.0;
        let mut hot = vec![0.0; area.len()];
        hot[iz] = 1.0;
        let forecasts: BTreeMap<(String, String), SlotForecast> = [(
            ("window".to_owned(), "day".to_owned()),
            SlotForecast {
                method: crate::forecast::Method::Naive,
                week: chrono::NaiveDate::from_ymd_opt(2026, 11, 9).unwrap(),
                score,
                hot,
                weekly: 3.0,
            },
        )]
        .into_iter()
        .collect();
        let df = gaps(
            &ctx,
            pings(&fixes),
            units(&[("C01", "car")]),
            &area,
            &incidents,
            &[],
            10,
            advice(&forecasts, &settings(5, 0.1)),
        )
        .unwrap();
        let cells: Vec<u64> = df
            .column("cell")
            .unwrap()
            .u64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        assert!(!cells.contains(&far), "a lone incident is listed");
        // z first: it meets the forecast; the directed budget is 10 % of 170 minutes a day,
        // 119 a week, all of it z's.
        assert_eq!(cells, [z, y]);
        let f = |c: &str, i: usize| df.column(c).unwrap().f64().unwrap().get(i).unwrap();
        assert!((f("forecast_week", 0) - 3.0).abs() < 1e-12);
        assert!((f("extra_minutes_week", 0) - 119.0).abs() < 1e-9);
        assert!((f("prevented_week", 0) - 3.0 * 119.0 / 1190.0).abs() < 1e-12);
        assert_eq!(f("extra_minutes_week", 1), 0.0);
        let cap = df.column("cap").unwrap().str().unwrap();
        assert_eq!((cap.get(0), cap.get(1)), (Some("force"), Some("force")));
        let boxes = df.column("box").unwrap().str().unwrap();
        assert_eq!((boxes.get(0), boxes.get(1)), (Some("B1"), Some("B1")));
        assert_eq!(
            df.column("box_incidents").unwrap().u32().unwrap().get(0),
            Some(6)
        );
        assert!(
            df.column("visits_capped")
                .unwrap()
                .bool()
                .unwrap()
                .get(0)
                .unwrap()
        );
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
        let ctx = monday_with_c01_on_day_duty();
        let df = gaps(
            &ctx,
            pings(&fixes),
            units(&[("C01", "car")]),
            &study_area(x),
            &incidents,
            &[],
            10,
            advice(&BTreeMap::new(), &settings(4, 1.0)),
        )
        .unwrap();
        // z holds 4/5 of the incidents and none of the 170 minutes: 0.8 × 170 = 136 minutes
        // in one day, 952 a week, 64 visits of 15 minutes; the day window lasts 170 minutes a
        // day, 19 h 50 min a week, so 19 visits of 15 minutes, 285 minutes.
        assert_eq!(df.height(), 1);
        let f = |c: &str| df.column(c).unwrap().f64().unwrap().get(0).unwrap();
        assert_eq!(df.column("cell").unwrap().u64().unwrap().get(0), Some(z));
        assert!((f("asked_minutes_week") - 952.0).abs() < 1e-9);
        assert!((f("extra_minutes_week") - 285.0).abs() < 1e-9);
        assert_eq!(
            df.column("cap").unwrap().str().unwrap().get(0),
            Some("visits")
        );
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
            advice(&BTreeMap::new(), &settings(2, 0.25)),
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
        assert_eq!(df.column("cap").unwrap().str().unwrap().get(0), None);
        assert_eq!(df.column("box").unwrap().str().unwrap().get(0), Some("B1"));
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
