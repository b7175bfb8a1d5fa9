//! Job 3, hot spots: incidents per H3 cell and time slot, their kernel density, Getis-Ord Gi*
//! z-scores with an exact Poisson test and Benjamini-Hochberg correction, and next week's
//! forecast hot spots ([`crate::forecast`]).
//!
//! Definitions (the widths and thresholds are `[hotspots]` settings):
//! - *study area*: a fixed set of cells at the run's resolution (the county outline's cells,
//!   or the cells of the incidents' bounding box); incidents outside it are counted in the
//!   job's notes and left out, and the statistics treat every study cell, with or without
//!   incidents, as one observation;
//! - *slots*: `all` (the whole span), `window` (each `[[windows]]` entry, incidents in its
//!   local time span, crossing midnight as in [`crate::clock`]), `hour` (`00`..`23` local) and
//!   `dow` (`mon`..`sun` local); incidents are counted by received time in `[from, to)`;
//! - *kde*: a quartic kernel over H3 rings: cell i gets Σ x_j (1 − (d_ij / h)²)² over cells j at
//!   grid distance d_ij < h, with h = `kde_rings` + 1, in incidents (x_j = count in j);
//! - *Gi\**: Getis-Ord with binary weights over the `gi_rings` disk including the cell itself,
//!   restricted to the study area: z_i = (Σ_j x_j − x̄ W_i) / (S √((n W_i − W_i²) / (n − 1)))
//!   with n study cells, W_i neighbours in the area, x̄ and S the mean and (population)
//!   standard deviation of the counts; z = 0 where S = 0 (a constant field);
//! - *p*: the exact two-sided Poisson test of the disk's count Σ_j x_j against x̄ W_i (the
//!   normal approximation of z calls a lone incident in a quiet slot significant: with a
//!   mean of 0.01 per cell one incident is 10 standard deviations); *q*: Benjamini-Hochberg
//!   over the n cells of the slot; *bin*: ±3 for q ≤ 0.01, ±2 for q ≤ 0.05, ±1 for q ≤ 0.10
//!   (hot +, cold −), else 0, and never hot with fewer than `gi_min_incidents` in the disk;
//! - *forecast*, *forecast_hot*: for the `all` and `window` slots, the score of the slot's
//!   forecast method for the week after the span and whether the cell is among its top share
//!   (null for `hour` and `dow`);
//! - rows are written for cells with an incident in the slot, a non-zero bin or a forecast
//!   hot spot.

use std::collections::{BTreeMap, HashMap};

use h3o::{CellIndex, LatLng};
use polars::prelude::*;

use model::jurisdiction::HotspotSettings;

use crate::AnalyticsError;
use crate::clock::{DAY_MS, window_expr};
use crate::context::JobContext;
use crate::forecast::{Grid, SlotForecast};
pub use crate::forecast::{IncidentPoint, StudyArea};

/// Counts per study cell (index into [`StudyArea::cells`]).
fn counts_vec(area: &StudyArea, counts: &HashMap<u64, f64>) -> Vec<f64> {
    let mut x = vec![0.0; area.len()];
    for (c, n) in counts {
        if let Some(i) = area.position(*c) {
            x[i] += n;
        }
    }
    x
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, nine coefficients; relative error near 1e-15).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection keeps the series in its accurate range.
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let sum = G[1..]
        .iter()
        .enumerate()
        .fold(G[0], |s, (i, g)| s + g / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// P(X = k) for X ~ Poisson(λ), λ > 0.
fn poisson_pmf(k: f64, lambda: f64) -> f64 {
    (k * lambda.ln() - lambda - ln_gamma(k + 1.0)).exp()
}

/// Sum of the Poisson(λ) probabilities from `k` outward (`step` +1 or −1), stopping at 0 or
/// when the terms no longer matter.
fn poisson_tail(k: f64, lambda: f64, step: f64) -> f64 {
    let mut sum = 0.0;
    let mut k = k;
    while k >= 0.0 {
        let term = poisson_pmf(k, lambda);
        sum += term;
        // Past the mode the terms only shrink; one that underflowed ends the sum too.
        if (k - lambda) * step > 0.0 && (term == 0.0 || term < 1e-18 * sum) {
            break;
        }
        k += step;
    }
    sum.min(1.0)
}

/// Two-sided exact Poisson p-value of observing `k` (rounded) where λ is expected: twice the
/// smaller tail, at most 1. With λ = 0 nothing can be observed and p is 1.
#[must_use]
pub fn poisson_p_two_sided(k: f64, lambda: f64) -> f64 {
    if lambda <= 0.0 {
        return 1.0;
    }
    let k = k.round().max(0.0);
    // Each tail summed from the side where its terms fall away from the mode.
    let upper = if k > lambda {
        poisson_tail(k, lambda, 1.0)
    } else {
        1.0 - if k >= 1.0 {
            poisson_tail(k - 1.0, lambda, -1.0)
        } else {
            0.0
        }
    };
    let lower = if k < lambda {
        poisson_tail(k, lambda, -1.0)
    } else {
        1.0 - poisson_tail(k + 1.0, lambda, 1.0)
    };
    (2.0 * upper.min(lower)).clamp(0.0, 1.0)
}

/// Complementary error function (W. J. Cody's rational Chebyshev fit as given in Numerical
/// Recipes' `erfcc`; fractional error below 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// Two-sided p-value of a standard normal z-score.
#[must_use]
pub fn p_two_sided(z: f64) -> f64 {
    erfc(z.abs() / std::f64::consts::SQRT_2).min(1.0)
}

/// Benjamini-Hochberg adjusted p-values (q-values), in the input order.
#[must_use]
pub fn bh_qvalues(p: &[f64]) -> Vec<f64> {
    let m = p.len() as f64;
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|a, b| p[*a].total_cmp(&p[*b]));
    let mut q = vec![1.0; p.len()];
    let mut running = 1.0f64;
    for (rank, &i) in order.iter().enumerate().rev() {
        running = running.min(p[i] * m / (rank as f64 + 1.0));
        q[i] = running.min(1.0);
    }
    q
}

/// The hot (+) / cold (−) confidence bin of a z-score with its q-value.
#[must_use]
pub fn bin(z: f64, q: f64) -> i8 {
    let level = if q <= 0.01 {
        3
    } else if q <= 0.05 {
        2
    } else if q <= 0.10 {
        1
    } else {
        0
    };
    if z > 0.0 {
        level
    } else if z < 0.0 {
        -level
    } else {
        0
    }
}

/// The settings of the statistics, from `[hotspots]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HotspotParams {
    /// Gi* neighbourhood: cells within this many rings (1 = the cell and its 6 neighbours).
    pub gi_rings: u32,
    /// Fewest incidents in a Gi* neighbourhood for a hot spot.
    pub gi_min_incidents: u32,
    /// Kernel bandwidth minus one, rings.
    pub kde_rings: u32,
}

impl From<&HotspotSettings> for HotspotParams {
    fn from(s: &HotspotSettings) -> Self {
        Self {
            gi_rings: s.gi_rings,
            gi_min_incidents: s.gi_min_incidents,
            kde_rings: s.kde_rings,
        }
    }
}

impl Default for HotspotParams {
    fn default() -> Self {
        Self::from(&HotspotSettings::default())
    }
}

/// Gi* of one slot's counts: z, the exact Poisson p of each neighbourhood's count, its
/// Benjamini-Hochberg q and the bin, hot bins only where the neighbourhood holds at least
/// `gi_min_incidents`.
struct Significance {
    z: Vec<f64>,
    p: Vec<f64>,
    q: Vec<f64>,
    bin: Vec<i8>,
}

impl Significance {
    fn of(grid: &Grid<'_>, x: &[f64], params: HotspotParams) -> Self {
        let z = grid.gi_star(x, params.gi_rings);
        let mean = x.iter().sum::<f64>() / x.len().max(1) as f64;
        let sums = grid.disk_sums(x, params.gi_rings);
        let p: Vec<f64> = sums
            .iter()
            .map(|(local, w)| poisson_p_two_sided(*local, mean * *w as f64))
            .collect();
        let q = bh_qvalues(&p);
        let bin = (0..x.len())
            .map(|i| {
                let b = bin(z[i], q[i]);
                if b > 0 && sums[i].0 < f64::from(params.gi_min_incidents) {
                    0
                } else {
                    b
                }
            })
            .collect();
        Self { z, p, q, bin }
    }
}

/// The incidents as a frame: `t` (i64 ms) and `cell` (u64, null outside the area).
///
/// # Errors
/// A polars error.
pub fn incident_frame(
    area: &StudyArea,
    incidents: &[IncidentPoint],
) -> Result<DataFrame, AnalyticsError> {
    let t: Vec<i64> = incidents.iter().map(|p| p.t_ms).collect();
    let cell: Vec<Option<u64>> = incidents
        .iter()
        .map(|p| area.cell_of(p.lat, p.lon))
        .collect();
    Ok(DataFrame::new_infer_height(vec![
        Column::new("t".into(), t),
        Column::new("cell".into(), cell),
    ])?)
}

const DOW: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Counts per slot and cell: columns `slot_kind`, `slot`, `cell`, `n` (u32), from a frame of
/// [`incident_frame`] columns.
///
/// # Errors
/// A polars error while building the union.
pub fn slot_counts_plan(
    ctx: &JobContext,
    incidents: LazyFrame,
) -> Result<LazyFrame, AnalyticsError> {
    let local = ctx.clock.local_ms_expr(col("t"));
    let base = incidents
        .filter(
            col("t")
                .gt_eq(lit(ctx.from_ms))
                .and(col("t").lt(lit(ctx.to_ms)))
                .and(col("cell").is_not_null()),
        )
        .with_columns([
            window_expr(&ctx.windows, local.clone()).alias("window"),
            ((local.clone() % lit(DAY_MS)) / lit(3_600_000i64)).alias("hour"),
            ((local / lit(DAY_MS) + lit(3i64)) % lit(7i64)).alias("dow"),
        ]);
    let mut dow = lit(NULL).cast(DataType::String);
    for (i, name) in DOW.iter().enumerate().rev() {
        dow = when(col("dow").eq(lit(i as i64)))
            .then(lit(*name))
            .otherwise(dow);
    }
    let count = |kind: &str, slot: Expr| {
        base.clone()
            .with_column(slot.alias("slot"))
            .filter(col("slot").is_not_null())
            .group_by([col("slot"), col("cell")])
            .agg([col("t").count().cast(DataType::UInt32).alias("n")])
            .select([
                lit(kind).alias("slot_kind"),
                col("slot"),
                col("cell"),
                col("n"),
            ])
    };
    let mut hour = lit(NULL).cast(DataType::String);
    for h in (0..24i64).rev() {
        hour = when(col("hour").eq(lit(h)))
            .then(lit(format!("{h:02}")))
            .otherwise(hour);
    }
    Ok(concat(
        [
            count("all", lit("all")),
            count("window", col("window")),
            count("hour", hour),
            count("dow", dow),
        ],
        UnionArgs::default(),
    )?)
}

/// Runs the hot spot job over `grid` (built for `gi_rings` and `kde_rings`). Columns: `slot_kind`, `slot`, `cell`, `lat`, `lon` (cell centre),
/// `incidents`, `kde`, `gi_z`, `p`, `q`, `bin`, `forecast`, `forecast_hot`, sorted by slot,
/// then z descending. `forecasts` holds the slots' forecasts ([`crate::forecast::next_week`]).
///
/// # Errors
/// A polars error.
pub fn hotspots(
    ctx: &JobContext,
    grid: &Grid<'_>,
    incidents: &[IncidentPoint],
    params: HotspotParams,
    forecasts: &BTreeMap<(String, String), SlotForecast>,
) -> Result<DataFrame, AnalyticsError> {
    let area = grid.area();
    let counts = slot_counts_plan(ctx, incident_frame(area, incidents)?.lazy())?.collect()?;
    let kinds = counts.column("slot_kind")?.str()?;
    let slots = counts.column("slot")?.str()?;
    let cells = counts.column("cell")?.u64()?;
    let ns = counts.column("n")?.u32()?;
    let mut per_slot: BTreeMap<(String, String), HashMap<u64, f64>> = BTreeMap::new();
    for i in 0..counts.height() {
        if let (Some(k), Some(s), Some(c), Some(n)) =
            (kinds.get(i), slots.get(i), cells.get(i), ns.get(i))
        {
            per_slot
                .entry((k.to_owned(), s.to_owned()))
                .or_default()
                .insert(c, f64::from(n));
        }
    }
    let mut rows = HotspotRows::default();
    for ((kind, slot), counts) in &per_slot {
        let x = counts_vec(area, counts);
        let density = grid.kde(&x, params.kde_rings);
        let Significance { z, p, q, bin } = Significance::of(grid, &x, params);
        let outlook = forecasts.get(&(kind.clone(), slot.clone()));
        let mut picked: Vec<usize> = (0..area.len())
            .filter(|&i| x[i] > 0.0 || bin[i] != 0 || outlook.is_some_and(|f| f.hot[i] > 0.0))
            .collect();
        picked.sort_by(|a, b| {
            z[*b]
                .total_cmp(&z[*a])
                .then(area.cells()[*a].cmp(&area.cells()[*b]))
        });
        for i in picked {
            let centre = CellIndex::try_from(area.cells()[i]).map(LatLng::from).ok();
            rows.slot_kind.push(kind.clone());
            rows.slot.push(slot.clone());
            rows.cell.push(area.cells()[i]);
            rows.lat.push(centre.map_or(f64::NAN, |c| c.lat()));
            rows.lon.push(centre.map_or(f64::NAN, |c| c.lng()));
            rows.incidents.push(x[i] as u32);
            rows.kde.push(density[i]);
            rows.z.push(z[i]);
            rows.p.push(p[i]);
            rows.q.push(q[i]);
            rows.bin.push(bin[i]);
            rows.forecast.push(outlook.map(|f| f.score[i]));
            rows.forecast_hot.push(outlook.map(|f| f.hot[i] > 0.0));
        }
    }
    rows.into_frame()
}

#[derive(Default)]
struct HotspotRows {
    slot_kind: Vec<String>,
    slot: Vec<String>,
    cell: Vec<u64>,
    lat: Vec<f64>,
    lon: Vec<f64>,
    incidents: Vec<u32>,
    kde: Vec<f64>,
    z: Vec<f64>,
    p: Vec<f64>,
    q: Vec<f64>,
    bin: Vec<i8>,
    forecast: Vec<Option<f64>>,
    forecast_hot: Vec<Option<bool>>,
}

impl HotspotRows {
    fn into_frame(self) -> Result<DataFrame, AnalyticsError> {
        Ok(DataFrame::new_infer_height(vec![
            Column::new("slot_kind".into(), self.slot_kind),
            Column::new("slot".into(), self.slot),
            Column::new("cell".into(), self.cell),
            Column::new("lat".into(), self.lat),
            Column::new("lon".into(), self.lon),
            Column::new("incidents".into(), self.incidents),
            Column::new("kde".into(), self.kde),
            Column::new("gi_z".into(), self.z),
            Column::new("p".into(), self.p),
            Column::new("q".into(), self.q),
            Column::new("bin".into(), self.bin),
            Column::new("forecast".into(), self.forecast),
            Column::new("forecast_hot".into(), self.forecast_hot),
        ])?)
    }
}

/// The hot spots of the span: study cells whose Gi* bin over all incidents received in
/// `[from, to)` is at least `min_bin` (2 = hot at 95 %), hottest first.
#[must_use]
pub fn hot_cells(
    ctx: &JobContext,
    area: &StudyArea,
    incidents: &[IncidentPoint],
    params: HotspotParams,
    min_bin: i8,
) -> Vec<u64> {
    let mut counts: HashMap<u64, f64> = HashMap::new();
    for p in incidents {
        if (ctx.from_ms..ctx.to_ms).contains(&p.t_ms)
            && let Some(c) = area.cell_of(p.lat, p.lon)
        {
            *counts.entry(c).or_default() += 1.0;
        }
    }
    let grid = Grid::new(area, params.gi_rings);
    let Significance { z, bin, .. } = Significance::of(&grid, &counts_vec(area, &counts), params);
    let mut hot: Vec<usize> = (0..area.len()).filter(|&i| bin[i] >= min_bin).collect();
    hot.sort_by(|a, b| {
        z[*b]
            .total_cmp(&z[*a])
            .then(area.cells()[*a].cmp(&area.cells()[*b]))
    });
    hot.into_iter().map(|i| area.cells()[i]).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use h3o::Resolution;
    use proptest::prelude::*;

    use super::*;
    use crate::testing::{cells9, centre, ms, windows};

    /// The local week from Monday 2026-11-02 in Chicago.
    fn week_of_2026_11_02() -> JobContext {
        JobContext::new(
            chrono_tz::America::Chicago,
            windows(),
            (ms("2026-11-02T06:00:00Z"), ms("2026-11-09T06:00:00Z")),
            (9, 11),
            120,
        )
        .unwrap()
    }

    fn disk(x: u64, k: u32) -> StudyArea {
        let cells = CellIndex::try_from(x).unwrap().grid_disk::<Vec<_>>(k);
        StudyArea::new(Resolution::Nine, cells.into_iter().map(u64::from).collect()).unwrap()
    }

    #[test]
    fn hand_computed_gi_star_and_kde() {
        let (x, y, _) = cells9();
        let area = disk(x, 2);
        let counts: HashMap<u64, f64> = [(x, 10.0)].into_iter().collect();
        let z = Grid::new(&area, 1).gi_star(&counts_vec(&area, &counts), 1);
        // n = 19, x̄ = 10/19, S = √1800/19; at x and its neighbours W = 7 and Σx = 10, so
        // z = (10 − 70/19) / (√1800/19 · √(84/18)) = 120/√8400. A ring-2 cell with W = 4 or 5
        // neighbours in the area has z = −40/√6000 or −50/√7000.
        for (i, &c) in area.cells().iter().enumerate() {
            let d = CellIndex::try_from(x)
                .unwrap()
                .grid_distance(CellIndex::try_from(c).unwrap())
                .unwrap();
            let want: &[f64] = if d <= 1 {
                &[120.0 / 8400f64.sqrt()]
            } else {
                &[-40.0 / 6000f64.sqrt(), -50.0 / 7000f64.sqrt()]
            };
            assert!(
                want.iter().any(|w| (z[i] - w).abs() < 1e-12),
                "cell at {d}: {}",
                z[i]
            );
        }
        let density = Grid::new(&area, 1).kde(&counts_vec(&area, &counts), 1);
        let iy = area.cells().iter().position(|c| *c == y).unwrap();
        let ix = area.cells().iter().position(|c| *c == x).unwrap();
        assert_eq!(density[ix], 10.0);
        assert_eq!(density[iy], 10.0 * 0.5625);
        assert_eq!(density.iter().filter(|d| **d == 0.0).count(), 12);
    }

    #[test]
    fn bh_and_p_values() {
        let q = bh_qvalues(&[0.01, 0.04, 0.03, 0.2]);
        let want = [0.04, 0.16 / 3.0, 0.16 / 3.0, 0.2];
        for (a, b) in q.iter().zip(want) {
            assert!((a - b).abs() < 1e-15, "{q:?}");
        }
        assert!((p_two_sided(1.959_963_984_540_054) - 0.05).abs() < 1e-7);
        assert!((p_two_sided(-2.575_829_303_548_9) - 0.01).abs() < 1e-7);
        assert_eq!(p_two_sided(0.0), 1.0);
        assert_eq!(
            (
                bin(3.0, 0.009),
                bin(-3.0, 0.04),
                bin(2.0, 0.09),
                bin(2.0, 0.2)
            ),
            (3, -2, 1, 0)
        );
    }

    #[test]
    fn slots_and_the_hot_spot_table() {
        let (x, y, _) = cells9();
        let area = disk(x, 3);
        let (cx, cy) = (centre(x), centre(y));
        let at = |t: &str, c: h3o::LatLng| IncidentPoint {
            t_ms: ms(t),
            lat: c.lat(),
            lon: c.lng(),
        };
        // Monday 2026-11-02: 21:00 CST (evening), 01:00 CST Tuesday (Monday's night window by
        // its start, but Tuesday by the clock), 07:00 CST (no window).
        let incidents = vec![
            at("2026-11-03T03:00:00Z", cx),
            at("2026-11-03T03:10:00Z", cx),
            at("2026-11-03T07:00:00Z", cx),
            at("2026-11-02T13:00:00Z", cy),
            at("2026-11-10T13:00:00Z", cy), // after the span
        ];
        let ctx = week_of_2026_11_02();
        let df = hotspots(
            &ctx,
            &Grid::new(&area, 3),
            &incidents,
            HotspotParams::default(),
            &BTreeMap::new(),
        )
        .unwrap();
        let kinds = df.column("slot_kind").unwrap().str().unwrap();
        let slots = df.column("slot").unwrap().str().unwrap();
        let cells = df.column("cell").unwrap().u64().unwrap();
        let n = df.column("incidents").unwrap().u32().unwrap();
        let mut got: Vec<(String, String, u64, u32)> = (0..df.height())
            .filter(|&i| n.get(i).unwrap() > 0)
            .map(|i| {
                (
                    kinds.get(i).unwrap().into(),
                    slots.get(i).unwrap().into(),
                    cells.get(i).unwrap(),
                    n.get(i).unwrap(),
                )
            })
            .collect();
        got.sort();
        let r = |k: &str, s: &str, c: u64, n: u32| (k.to_owned(), s.to_owned(), c, n);
        let mut want = vec![
            r("all", "all", x, 3),
            r("all", "all", y, 1),
            r("dow", "mon", x, 2),
            r("dow", "tue", x, 1),
            r("dow", "mon", y, 1),
            r("hour", "21", x, 2),
            r("hour", "01", x, 1),
            r("hour", "07", y, 1),
            r("window", "evening", x, 2),
            r("window", "night", x, 1),
        ];
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn exact_poisson_p_values() {
        // λ = 1: P(X ≥ 3) = 1 − e⁻¹ (1 + 1 + 1/2), P(X ≤ 0) = e⁻¹.
        let e = (-1.0f64).exp();
        let upper = 1.0 - e * 2.5;
        assert!((poisson_p_two_sided(3.0, 1.0) - 2.0 * upper).abs() < 1e-12);
        assert!((poisson_p_two_sided(0.0, 1.0) - 2.0 * e).abs() < 1e-12);
        assert_eq!(poisson_p_two_sided(1.0, 1.0), 1.0);
        assert_eq!(poisson_p_two_sided(4.0, 0.0), 1.0);
        // A lone incident where 0.07 are expected is not significant; eight are.
        assert!(poisson_p_two_sided(1.0, 0.07) > 0.1);
        assert!(poisson_p_two_sided(8.0, 0.07) < 1e-10);
        // Far tails stay finite and ordered.
        let (a, b) = (
            poisson_p_two_sided(300.0, 100.0),
            poisson_p_two_sided(200.0, 100.0),
        );
        assert!(a > 0.0 && a < b && b < 1e-15, "{a} {b}");
    }

    #[test]
    fn a_lone_incident_is_no_hot_spot() {
        let (x, _, _) = cells9();
        let area = disk(x, 6);
        let at = |c: u64| {
            let ll = centre(c);
            IncidentPoint {
                t_ms: ms("2026-11-03T03:00:00Z"),
                lat: ll.lat(),
                lon: ll.lng(),
            }
        };
        let ctx = week_of_2026_11_02();
        let hot = |incidents: &[IncidentPoint]| {
            hot_cells(&ctx, &area, incidents, HotspotParams::default(), 2)
        };
        // Under the normal approximation this one incident in 127 cells is z = 4.3.
        assert!(hot(&[at(x)]).is_empty());
        assert!(hot(&[at(x); 6]).contains(&x));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn gi_star_of_a_constant_field_is_zero(k in 0u32..4, rings in 1u32..3, c in 0.0f64..50.0) {
            let (x, _, _) = cells9();
            let area = disk(x, k);
            let counts: HashMap<u64, f64> = area.cells().iter().map(|cell| (*cell, c)).collect();
            for z in Grid::new(&area, rings).gi_star(&counts_vec(&area, &counts), rings) {
                prop_assert_eq!(z, 0.0);
            }
        }
    }
}
