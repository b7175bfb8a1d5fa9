//! Job 3, hot spots: incidents per H3 cell and time slot, their kernel density, Getis-Ord Gi*
//! z-scores with Benjamini-Hochberg correction, and the Predictive Accuracy Index.
//!
//! Definitions:
//! - *study area*: a fixed set of cells at the run's resolution (the county outline's cells,
//!   or the cells of the incidents' bounding box); incidents outside it are left out and the
//!   statistics treat every study cell, with or without incidents, as one observation;
//! - *slots*: `all` (the whole span), `window` (each `[[windows]]` entry, incidents in its
//!   local time span, crossing midnight as in [`crate::clock`]), `hour` (`00`..`23` local) and
//!   `dow` (`mon`..`sun` local); incidents are counted by received time in `[from, to)`;
//! - *kde*: a quartic kernel over H3 rings: cell i gets Σ x_j (1 − (d_ij / h)²)² over cells j at
//!   grid distance d_ij < h, with h = `kde_rings` + 1, in incidents (x_j = count in j);
//! - *Gi\**: Getis-Ord with binary weights over the `gi_rings` disk including the cell itself,
//!   restricted to the study area: z_i = (Σ_j x_j − x̄ W_i) / (S √((n W_i − W_i²) / (n − 1)))
//!   with n study cells, W_i neighbours in the area, x̄ and S the mean and (population)
//!   standard deviation of the counts; z = 0 where S = 0 (a constant field);
//! - *p*: two-sided normal; *q*: Benjamini-Hochberg over the n cells of the slot; *bin*:
//!   ±3 for q ≤ 0.01, ±2 for q ≤ 0.05, ±1 for q ≤ 0.10 (hot +, cold −), else 0;
//! - rows are written for cells with an incident in the slot or a non-zero bin;
//! - *PAI* = (n/N) / (a/A) for the top share of study cells ranked by kde of a training span
//!   (ties: count, then cell id), with n of the N test incidents inside and a of the area A
//!   (km², from H3 cell areas); *PEI* = PAI / PAI*, PAI* that of the same number of cells chosen
//!   with hindsight (most test incidents).

use std::collections::HashMap;

use geo::{BoundingRect, Coord, Rect};
use h3o::geom::{ContainmentMode, TilerBuilder};
use h3o::{CellIndex, LatLng, Resolution};
use polars::prelude::*;

use crate::AnalyticsError;
use crate::clock::{DAY_MS, window_expr};
use crate::context::JobContext;

/// An incident as the statistics see it: when and where.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IncidentPoint {
    /// Received time, UTC epoch ms.
    pub t_ms: i64,
    /// WGS-84 latitude.
    pub lat: f64,
    /// WGS-84 longitude.
    pub lon: f64,
}

/// The cells the statistics run over.
#[derive(Debug, Clone)]
pub struct StudyArea {
    res: Resolution,
    cells: Vec<u64>,
    index: HashMap<u64, usize>,
}

impl StudyArea {
    /// The cells of `cells` (deduplicated, sorted).
    ///
    /// # Errors
    /// [`AnalyticsError::Invalid`] when `cells` is empty.
    pub fn new(res: Resolution, mut cells: Vec<u64>) -> Result<Self, AnalyticsError> {
        cells.sort_unstable();
        cells.dedup();
        if cells.is_empty() {
            return Err(AnalyticsError::Invalid("the study area has no cell".into()));
        }
        let index = cells.iter().enumerate().map(|(i, c)| (*c, i)).collect();
        Ok(Self { res, cells, index })
    }

    /// The cells whose centre lies in `area`.
    ///
    /// # Errors
    /// [`AnalyticsError::H3`] for a polygon the tiler refuses; [`AnalyticsError::Invalid`]
    /// when no cell centre lies inside.
    pub fn from_polygons(
        area: &geo::MultiPolygon<f64>,
        res: Resolution,
    ) -> Result<Self, AnalyticsError> {
        let mut tiler = TilerBuilder::new(res)
            .containment_mode(ContainmentMode::ContainsCentroid)
            .build();
        tiler
            .add_batch(area.0.iter().cloned())
            .map_err(|e| AnalyticsError::H3(e.to_string()))?;
        Self::new(res, tiler.into_coverage().map(u64::from).collect())
    }

    /// The cells of the bounding box of `points`.
    ///
    /// # Errors
    /// As [`StudyArea::from_polygons`]; also when `points` is empty.
    pub fn bounding_box(points: &[IncidentPoint], res: Resolution) -> Result<Self, AnalyticsError> {
        let coords: Vec<Coord<f64>> = points
            .iter()
            .map(|p| Coord { x: p.lon, y: p.lat })
            .collect();
        let rect: Rect<f64> = geo::MultiPoint::from(coords)
            .bounding_rect()
            .ok_or_else(|| AnalyticsError::Invalid("no incidents to bound".into()))?;
        Self::from_polygons(&geo::MultiPolygon(vec![rect.to_polygon()]), res)
    }

    /// Number of cells.
    #[must_use]
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// Always false: an area has at least one cell.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// The cells, sorted.
    #[must_use]
    pub fn cells(&self) -> &[u64] {
        &self.cells
    }

    /// The study cell holding a point, if any.
    #[must_use]
    pub fn cell_of(&self, lat: f64, lon: f64) -> Option<u64> {
        let c = u64::from(LatLng::new(lat, lon).ok()?.to_cell(self.res));
        self.index.contains_key(&c).then_some(c)
    }

    /// Cells of the area within `k` rings of `cell`, with their grid distance.
    fn disk(&self, cell: u64, k: u32) -> Vec<(usize, u32)> {
        let Ok(c) = CellIndex::try_from(cell) else {
            return Vec::new();
        };
        let ring: Vec<(CellIndex, u32)> = c.grid_disk_distances(k);
        ring.into_iter()
            .filter_map(|(n, d)| self.index.get(&u64::from(n)).map(|i| (*i, d)))
            .collect()
    }

    fn area_km2(&self, i: usize) -> f64 {
        CellIndex::try_from(self.cells[i]).map_or(0.0, CellIndex::area_km2)
    }
}

/// Counts per study cell (index into [`StudyArea::cells`]).
fn counts_vec(area: &StudyArea, counts: &HashMap<u64, f64>) -> Vec<f64> {
    let mut x = vec![0.0; area.len()];
    for (c, n) in counts {
        if let Some(i) = area.index.get(c) {
            x[*i] += n;
        }
    }
    x
}

/// Quartic-kernel density per study cell (see the module doc).
#[must_use]
pub fn kde(area: &StudyArea, counts: &HashMap<u64, f64>, rings: u32) -> Vec<f64> {
    let x = counts_vec(area, counts);
    let h = f64::from(rings + 1);
    let mut out = vec![0.0; area.len()];
    for (j, &xj) in x.iter().enumerate() {
        if xj == 0.0 {
            continue;
        }
        for (i, d) in area.disk(area.cells[j], rings) {
            let u = f64::from(d) / h;
            out[i] += xj * (1.0 - u * u).powi(2);
        }
    }
    out
}

/// Getis-Ord Gi* z-score per study cell (see the module doc).
#[must_use]
pub fn gi_star(area: &StudyArea, counts: &HashMap<u64, f64>, rings: u32) -> Vec<f64> {
    let x = counts_vec(area, counts);
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let s = (x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
    let mut local = vec![0.0; x.len()];
    for (j, &xj) in x.iter().enumerate() {
        if xj != 0.0 {
            for (i, _) in area.disk(area.cells[j], rings) {
                local[i] += xj;
            }
        }
    }
    (0..x.len())
        .map(|i| {
            let w = area.disk(area.cells[i], rings).len() as f64;
            let den = s * ((n * w - w * w) / (n - 1.0)).max(0.0).sqrt();
            // A constant field (S = 0) or a single cell has no deviation to score.
            if s <= 1e-9 * mean.abs().max(1.0) || den <= 0.0 || n < 2.0 {
                0.0
            } else {
                (local[i] - mean * w) / den
            }
        })
        .collect()
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

/// Ring widths of the statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HotspotParams {
    /// Gi* neighbourhood: cells within this many rings (1 = the cell and its 6 neighbours).
    pub gi_rings: u32,
    /// Kernel bandwidth minus one, rings.
    pub kde_rings: u32,
}

impl Default for HotspotParams {
    fn default() -> Self {
        Self {
            gi_rings: 1,
            kde_rings: 3,
        }
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

/// Runs the hot spot job. Columns: `slot_kind`, `slot`, `cell`, `lat`, `lon` (cell centre),
/// `incidents`, `kde`, `gi_z`, `p`, `q`, `bin`, sorted by slot, then z descending.
///
/// # Errors
/// A polars error.
pub fn hotspots(
    ctx: &JobContext,
    area: &StudyArea,
    incidents: &[IncidentPoint],
    params: HotspotParams,
) -> Result<DataFrame, AnalyticsError> {
    let counts = slot_counts_plan(ctx, incident_frame(area, incidents)?.lazy())?.collect()?;
    let kinds = counts.column("slot_kind")?.str()?;
    let slots = counts.column("slot")?.str()?;
    let cells = counts.column("cell")?.u64()?;
    let ns = counts.column("n")?.u32()?;
    let mut per_slot: std::collections::BTreeMap<(String, String), HashMap<u64, f64>> =
        std::collections::BTreeMap::new();
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
        let density = kde(area, counts, params.kde_rings);
        let z = gi_star(area, counts, params.gi_rings);
        let p: Vec<f64> = z.iter().map(|z| p_two_sided(*z)).collect();
        let q = bh_qvalues(&p);
        let mut picked: Vec<usize> = (0..area.len())
            .filter(|&i| x[i] > 0.0 || bin(z[i], q[i]) != 0)
            .collect();
        picked.sort_by(|a, b| {
            z[*b]
                .total_cmp(&z[*a])
                .then(area.cells[*a].cmp(&area.cells[*b]))
        });
        for i in picked {
            let centre = CellIndex::try_from(area.cells[i]).map(LatLng::from).ok();
            rows.slot_kind.push(kind.clone());
            rows.slot.push(slot.clone());
            rows.cell.push(area.cells[i]);
            rows.lat.push(centre.map_or(f64::NAN, |c| c.lat()));
            rows.lon.push(centre.map_or(f64::NAN, |c| c.lng()));
            rows.incidents.push(x[i] as u32);
            rows.kde.push(density[i]);
            rows.z.push(z[i]);
            rows.p.push(p[i]);
            rows.q.push(q[i]);
            rows.bin.push(bin(z[i], q[i]));
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
    let z = gi_star(area, &counts, params.gi_rings);
    let q = bh_qvalues(&z.iter().map(|z| p_two_sided(*z)).collect::<Vec<_>>());
    let mut hot: Vec<usize> = (0..area.len())
        .filter(|&i| bin(z[i], q[i]) >= min_bin)
        .collect();
    hot.sort_by(|a, b| {
        z[*b]
            .total_cmp(&z[*a])
            .then(area.cells[*a].cmp(&area.cells[*b]))
    });
    hot.into_iter().map(|i| area.cells[i]).collect()
}

/// A PAI / PEI evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaiScore {
    /// Share of study cells flagged.
    pub top_share: f64,
    /// Cells flagged.
    pub cells: usize,
    /// Test incidents inside the study area (N).
    pub test_incidents: usize,
    /// Test incidents in the flagged cells (n).
    pub captured: usize,
    /// a / A.
    pub area_share: f64,
    /// (n / N) / (a / A).
    pub pai: f64,
    /// PAI / PAI* (hindsight).
    pub pei: f64,
}

/// Scores the hot spots of `train` (ranked by kde) on `test`, flagging the top `top_share`
/// of the study cells (at least one).
#[must_use]
pub fn pai(
    area: &StudyArea,
    train: &[IncidentPoint],
    test: &[IncidentPoint],
    kde_rings: u32,
    top_share: f64,
) -> PaiScore {
    let tally = |pts: &[IncidentPoint]| {
        let mut m: HashMap<u64, f64> = HashMap::new();
        for p in pts {
            if let Some(c) = area.cell_of(p.lat, p.lon) {
                *m.entry(c).or_default() += 1.0;
            }
        }
        m
    };
    let (train_counts, test_counts) = (tally(train), tally(test));
    let density = kde(area, &train_counts, kde_rings);
    let xtrain = counts_vec(area, &train_counts);
    let xtest = counts_vec(area, &test_counts);
    let k = ((top_share * area.len() as f64).ceil() as usize).clamp(1, area.len());
    let mut order: Vec<usize> = (0..area.len()).collect();
    order.sort_by(|a, b| {
        density[*b]
            .total_cmp(&density[*a])
            .then(xtrain[*b].total_cmp(&xtrain[*a]))
            .then(area.cells[*a].cmp(&area.cells[*b]))
    });
    let total_area: f64 = (0..area.len()).map(|i| area.area_km2(i)).sum();
    let n_test: f64 = xtest.iter().sum();
    let score = |chosen: &[usize]| {
        let n: f64 = chosen.iter().map(|&i| xtest[i]).sum();
        let a: f64 = chosen.iter().map(|&i| area.area_km2(i)).sum::<f64>() / total_area;
        (
            n,
            a,
            if n_test > 0.0 && a > 0.0 {
                (n / n_test) / a
            } else {
                0.0
            },
        )
    };
    let (captured, area_share, pai) = score(&order[..k]);
    let mut best: Vec<usize> = (0..area.len()).collect();
    best.sort_by(|a, b| {
        xtest[*b]
            .total_cmp(&xtest[*a])
            .then(area.cells[*a].cmp(&area.cells[*b]))
    });
    let (_, _, pai_max) = score(&best[..k]);
    PaiScore {
        top_share,
        cells: k,
        test_incidents: n_test as usize,
        captured: captured as usize,
        area_share,
        pai,
        pei: if pai_max > 0.0 { pai / pai_max } else { 0.0 },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::{cells9, centre, ms, windows};

    fn disk(x: u64, k: u32) -> StudyArea {
        let cells = CellIndex::try_from(x).unwrap().grid_disk::<Vec<_>>(k);
        StudyArea::new(Resolution::Nine, cells.into_iter().map(u64::from).collect()).unwrap()
    }

    #[test]
    fn hand_computed_gi_star_and_kde() {
        let (x, y, _) = cells9();
        let area = disk(x, 2);
        let counts: HashMap<u64, f64> = [(x, 10.0)].into_iter().collect();
        let z = gi_star(&area, &counts, 1);
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
        let density = kde(&area, &counts, 1);
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
        let ctx = JobContext::new(
            chrono_tz::America::Chicago,
            windows(),
            (ms("2026-11-02T06:00:00Z"), ms("2026-11-09T06:00:00Z")),
            (9, 11),
            120,
        )
        .unwrap();
        let df = hotspots(&ctx, &area, &incidents, HotspotParams::default()).unwrap();
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
    fn hand_computed_pai() {
        let (x, _, z) = cells9();
        let area = disk(x, 2);
        let (cx, cz) = (centre(x), centre(z));
        let p = |c: h3o::LatLng| IncidentPoint {
            t_ms: 0,
            lat: c.lat(),
            lon: c.lng(),
        };
        let train = vec![p(cx); 5];
        let test = vec![p(cx), p(cx), p(cx), p(cz)];
        let s = pai(&area, &train, &test, 1, 1.0 / 19.0);
        let total: f64 = area
            .cells()
            .iter()
            .map(|c| CellIndex::try_from(*c).unwrap().area_km2())
            .sum();
        let a = CellIndex::try_from(x).unwrap().area_km2() / total;
        assert_eq!((s.cells, s.captured, s.test_incidents), (1, 3, 4));
        assert_eq!(s.area_share, a);
        assert_eq!(s.pai, 0.75 / a);
        assert_eq!(s.pei, 1.0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn gi_star_of_a_constant_field_is_zero(k in 0u32..4, rings in 1u32..3, c in 0.0f64..50.0) {
            let (x, _, _) = cells9();
            let area = disk(x, k);
            let counts: HashMap<u64, f64> = area.cells().iter().map(|cell| (*cell, c)).collect();
            for z in gi_star(&area, &counts, rings) {
                prop_assert_eq!(z, 0.0);
            }
        }
    }
}
