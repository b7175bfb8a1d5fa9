//! Job 2, coverage: per beat and per zone and per patrol window instance, how much of the
//! fence the patrols reached and how visible they were.
//!
//! Definitions (intervals, flags, gaps, windows and time on duty as in [`crate::context`]; like
//! dosage, coverage counts only on-duty intervals):
//! - *fence cells*: the H3 cells at the run's resolution whose centre lies inside the fence
//!   polygon (h3o tiler, `ContainsCentroid`); a fence smaller than one cell gets the cell of
//!   its centroid;
//! - *visited*: a fence cell with at least one minute of dosage (all unit kinds together) in
//!   the window instance, dosage as in [`crate::dosage`]; `coverage` = visited / fence cells,
//!   in 0..=1;
//! - *patrol minutes* and *distance*: tracked on-duty intervals whose first fix was stored in
//!   the fence (the `beat`/`zone` column ingest assigned) and lies in the window instance;
//!   minutes are their on-duty length, distance the equirectangular length of each interval's
//!   segment at its mean latitude (within 0.01 % of the great-circle length for segments under
//!   10 km), whole even when the shift ends before its second fix;
//! - *units*: distinct units with such an interval;
//! - *visible minutes*: minutes of the clock (UTC minute buckets) in which such an interval
//!   starts, i.e. in which some unit reported from inside the fence; `visibility` = visible
//!   minutes / window minutes, in 0..=1 (the "police visibility" rate);
//! - every fence gets a row for every window instance starting in `[from, to)`, with zeros
//!   where no unit came.

use std::collections::{BTreeMap, HashMap, HashSet};

use geo::Centroid;
use h3o::geom::{ContainmentMode, TilerBuilder};
use h3o::{LatLng, Resolution};
use model::fences::Fence;
use polars::prelude::*;

use crate::AnalyticsError;
use crate::clock::{NO_WINDOW, window_instances};
use crate::context::JobContext;
use crate::dosage::{DosageKey, PairKey, PairSums, spread};
use crate::duty::{NO_FENCE, Tally, Walk};

/// A fence and its cells at the analysis resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceCells {
    /// `beat` or `zone`.
    pub kind: &'static str,
    /// Fence id.
    pub id: String,
    /// Cells whose centre is inside, sorted.
    pub cells: Vec<u64>,
}

/// The cells of each fence at `res`.
///
/// # Errors
/// [`AnalyticsError::H3`] when a polygon is not valid for the tiler.
pub fn fence_cells(
    kind: &'static str,
    fences: &[Fence],
    res: Resolution,
) -> Result<Vec<FenceCells>, AnalyticsError> {
    let mut out = Vec::with_capacity(fences.len());
    for f in fences {
        let mut tiler = TilerBuilder::new(res)
            .containment_mode(ContainmentMode::ContainsCentroid)
            .build();
        tiler
            .add_batch(f.geometry.0.iter().cloned())
            .map_err(|e| AnalyticsError::H3(format!("{kind} {}: {e}", f.id)))?;
        let mut cells: Vec<u64> = tiler.into_coverage().map(u64::from).collect();
        if cells.is_empty()
            && let Some(c) = f.geometry.centroid()
            && let Ok(ll) = LatLng::new(c.y(), c.x())
        {
            cells.push(u64::from(ll.to_cell(res)));
        }
        cells.sort_unstable();
        cells.dedup();
        out.push(FenceCells {
            kind,
            id: f.id.clone(),
            cells,
        });
    }
    Ok(out)
}

/// A fence (its index in the walk's names), day, window index.
type FenceCode = (u32, i64, u8);

/// The fence kinds, in the order [`presence`] keeps their sums.
const FENCE_KINDS: [&str; 2] = ["beat", "zone"];

/// Minutes of a day: the minutes of one window instance (shorter than a day, or a whole day)
/// are distinct modulo this.
const DAY_MINUTES: usize = 1440;

/// A fence's sums over one window instance as the walk adds them up.
#[derive(Default)]
struct FenceSums {
    ms: i64,
    distance_m: f64,
    units: u32,
    /// The last unit counted, one more than its number (0: none yet); the walk hands over one
    /// unit's intervals after another.
    last_unit: u32,
    /// The visible minutes, by UTC minute modulo [`DAY_MINUTES`].
    minutes: [u64; DAY_MINUTES.div_ceil(64)],
}

/// What one read of the pings gives the coverage job: the dosage by end-cell pair
/// ([`PairSums`]), the beat and zone statistics with their visible minutes. Dosage and gaps need
/// only the pairs, so one [`presence`] serves all three.
pub(crate) struct Presence {
    /// Dosage by end-cell pair, before the grid-path split ([`spread`]).
    pub(crate) pairs: BTreeMap<PairKey, i64>,
    stats: HashMap<StatsKey, FenceStats>,
}

/// Walks the on-duty intervals of `pings` once per pass and aggregates them as [`Presence`].
///
/// # Errors
/// A polars error from the scan.
pub(crate) fn presence(
    ctx: &JobContext,
    pings: LazyFrame,
    units: &LazyFrame,
) -> Result<Presence, AnalyticsError> {
    let mut walk = Walk::new(ctx, units)?;
    let mut pairs = PairSums::default();
    let mut sums: [Tally<FenceCode, FenceSums>; 2] = Default::default();
    walk.passes(ctx.passes(pings)?, |i| {
        pairs.add(i);
        if !i.tracked || i.window == NO_WINDOW {
            return;
        }
        let minute = i.t.div_euclid(60_000).rem_euclid(DAY_MINUTES as i64) as usize;
        for (sums, fence) in sums.iter_mut().zip([i.beat, i.zone]) {
            if fence == NO_FENCE {
                continue;
            }
            let s = sums.get((fence, i.day, i.window));
            s.ms += i.ms;
            s.distance_m += i.distance_m;
            if s.last_unit != i.unit + 1 {
                s.units += 1;
                s.last_unit = i.unit + 1;
            }
            s.minutes[minute / 64] |= 1 << (minute % 64);
        }
    })?;
    let names = [&walk.beats.names, &walk.zones.names];
    let mut stats = HashMap::new();
    for (k, sums) in sums.into_iter().enumerate() {
        for ((fence, day, window), s) in sums.into_iter() {
            let key = (
                FENCE_KINDS[k],
                names[k][fence as usize].clone(),
                day,
                ctx.window_name(window).unwrap_or_default().to_owned(),
            );
            let minutes = s.minutes.iter().map(|w| w.count_ones()).sum();
            stats.insert(key, (s.ms, s.distance_m, s.units, minutes));
        }
    }
    Ok(Presence {
        pairs: pairs.finish(ctx, &walk),
        stats,
    })
}

/// Runs the coverage job over `beats` and `zones` (their cells from [`fence_cells`]).
/// Columns: `fence_kind`, `fence`, `date`, `window`, `window_minutes`, `cells`,
/// `cells_visited`, `coverage`, `patrol_minutes`, `distance_km`, `units`, `visible_minutes`,
/// `visibility`.
///
/// # Errors
/// A polars error from the scan or the plans.
pub fn coverage(
    ctx: &JobContext,
    pings: LazyFrame,
    units: LazyFrame,
    fences: &[FenceCells],
) -> Result<DataFrame, AnalyticsError> {
    let mut p = presence(ctx, pings, &units)?;
    let dosage = spread(std::mem::take(&mut p.pairs));
    coverage_table(ctx, &p, &dosage, fences)
}

/// The coverage table of `fences` from a [`presence`] and its dosage spread along the grid
/// paths (see [`coverage`]).
///
/// # Errors
/// A polars error building the table.
pub(crate) fn coverage_table(
    ctx: &JobContext,
    presence: &Presence,
    dosage: &BTreeMap<DosageKey, i64>,
    fences: &[FenceCells],
) -> Result<DataFrame, AnalyticsError> {
    let stats = &presence.stats;
    // Dosage per (day, window, cell), all kinds together.
    let mut per_cell: HashMap<(i64, String, u64), i64> = HashMap::new();
    for ((day, window, _, cell), ms) in dosage {
        if let (Some(w), Some(c)) = (window, cell) {
            *per_cell.entry((*day, w.clone(), *c)).or_default() += ms;
        }
    }
    let instances = window_instances(ctx.clock.tz(), &ctx.windows, ctx.from_ms, ctx.to_ms);
    let mut rows = CoverageRows::default();
    for f in fences {
        let cells: HashSet<u64> = f.cells.iter().copied().collect();
        for inst in &instances {
            let visited = cells
                .iter()
                .filter(|c| {
                    per_cell
                        .get(&(inst.day, inst.window.clone(), **c))
                        .is_some_and(|&ms| ms >= 60_000)
                })
                .count();
            let key = (f.kind, f.id.clone(), inst.day, inst.window.clone());
            let (ms, dist, n_units, visible) = stats.get(&key).copied().unwrap_or_default();
            let window_minutes = (inst.end_ms - inst.start_ms) as f64 / 60_000.0;
            rows.fence_kind.push(f.kind);
            rows.fence.push(f.id.clone());
            rows.date.push(i32::try_from(inst.day).unwrap_or(i32::MAX));
            rows.window.push(inst.window.clone());
            rows.window_minutes.push(window_minutes);
            rows.cells.push(cells.len() as u32);
            rows.visited.push(visited as u32);
            rows.coverage.push(if cells.is_empty() {
                0.0
            } else {
                visited as f64 / cells.len() as f64
            });
            rows.patrol_minutes.push(ms as f64 / 60_000.0);
            rows.distance_km.push(dist / 1000.0);
            rows.units.push(n_units);
            rows.visible.push(visible);
            rows.visibility
                .push((f64::from(visible) / window_minutes.max(1.0)).min(1.0));
        }
    }
    rows.into_frame()
}

/// Fence kind, fence id, local day, window.
type StatsKey = (&'static str, String, i64, String);
/// Tracked ms, distance m, units, visible minutes.
type FenceStats = (i64, f64, u32, u32);

#[derive(Default)]
struct CoverageRows {
    fence_kind: Vec<&'static str>,
    fence: Vec<String>,
    date: Vec<i32>,
    window: Vec<String>,
    window_minutes: Vec<f64>,
    cells: Vec<u32>,
    visited: Vec<u32>,
    coverage: Vec<f64>,
    patrol_minutes: Vec<f64>,
    distance_km: Vec<f64>,
    units: Vec<u32>,
    visible: Vec<u32>,
    visibility: Vec<f64>,
}

impl CoverageRows {
    fn into_frame(self) -> Result<DataFrame, AnalyticsError> {
        Ok(DataFrame::new_infer_height(vec![
            Column::new("fence_kind".into(), self.fence_kind),
            Column::new("fence".into(), self.fence),
            Column::new("date".into(), self.date).cast(&DataType::Date)?,
            Column::new("window".into(), self.window),
            Column::new("window_minutes".into(), self.window_minutes),
            Column::new("cells".into(), self.cells),
            Column::new("cells_visited".into(), self.visited),
            Column::new("coverage".into(), self.coverage),
            Column::new("patrol_minutes".into(), self.patrol_minutes),
            Column::new("distance_km".into(), self.distance_km),
            Column::new("units".into(), self.units),
            Column::new("visible_minutes".into(), self.visible),
            Column::new("visibility".into(), self.visibility),
        ])?)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use proptest::prelude::*;

    use h3o::CellIndex;

    use super::*;
    use crate::distance::haversine_m;
    use crate::testing::{Fix, cells9, centre, ms, pings, shift, units, windows};

    /// C01 and F01 are on duty for Monday's day window; nobody else is.
    fn ctx() -> JobContext {
        JobContext::new(
            chrono_tz::America::Chicago,
            windows(),
            (ms("2026-11-02T14:00:00Z"), ms("2026-11-02T18:00:00Z")),
            (9, 11),
            120,
        )
        .unwrap()
        .with_roster(&[
            shift("C01", "2026-11-02", (8, 30), (11, 20)),
            shift("F01", "2026-11-02", (8, 30), (11, 20)),
        ])
        .unwrap()
    }

    #[test]
    fn hand_computed_coverage() {
        let (x, y, z) = cells9();
        let t0 = ms("2026-11-02T15:00:00Z");
        let s = 1000;
        let fixes = vec![
            Fix::at("C01", t0, x).beat("B1"),
            Fix::at("C01", t0 + 60 * s, x).beat("B1"),
            Fix::at("C01", t0 + 120 * s, y).beat("B1"),
            Fix::at("C01", t0 + 400 * s, y).beat("B1"),
            Fix::at("C01", t0 + 420 * s, y).beat("B1"),
            Fix::at("F01", t0 + 30 * s, x).beat("B1"),
            Fix::at("F01", t0 + 50 * s, x),
            // C09 is off duty: it adds no dosage, minutes or unit.
            Fix::at("C09", t0, x).beat("B1"),
            Fix::at("C09", t0 + 60 * s, x).beat("B1"),
            Fix::at("C09", t0 + 120 * s, y).beat("B1"),
        ];
        let fence = FenceCells {
            kind: "beat",
            id: "B1".into(),
            cells: vec![x, y, z],
        };
        let df = coverage(&ctx(), pings(&fixes), units(&[("C01", "car")]), &[fence]).unwrap();
        // One window instance starts in the span: Monday's day window, 170 minutes.
        assert_eq!(df.height(), 1);
        let get = |c: &str| df.column(c).unwrap().get(0).unwrap().to_string();
        assert_eq!(get("window"), "\"day\"");
        assert_eq!(get("window_minutes"), "170.0");
        // x: 60 s + 30 s + 20 s (F01); y: 30 s + 20 s; only x reaches a minute.
        assert_eq!(get("cells"), "3");
        assert_eq!(get("cells_visited"), "1");
        let f = |c: &str| df.column(c).unwrap().f64().unwrap().get(0).unwrap();
        assert_eq!(f("coverage"), 1.0 / 3.0);
        // Tracked intervals starting in B1: 60 + 60 + 20 (C01) + 20 (F01) seconds.
        assert_eq!(f("patrol_minutes"), 160.0 / 60.0);
        assert_eq!(get("units"), "2");
        // Minute buckets 15:00, 15:01, 15:06.
        assert_eq!(get("visible_minutes"), "3");
        assert_eq!(f("visibility"), 3.0 / 170.0);
        let (a, b) = (centre(x), centre(y));
        let want_km = haversine_m(a.lat(), a.lng(), b.lat(), b.lng()) / 1000.0;
        assert!(
            (f("distance_km") - want_km).abs() < 1e-6 * want_km,
            "{} vs {want_km}",
            f("distance_km")
        );
    }

    #[test]
    fn fixture_fences_have_cells() {
        let j = model::jurisdiction::Jurisdiction::load(&devkit::testkit::fixtures()).unwrap();
        let cells = fence_cells("zone", &j.catalog().zones, Resolution::Nine).unwrap();
        assert!(cells.iter().all(|f| !f.cells.is_empty()));
        // Zones do not overlap, and centre containment assigns each cell once.
        let mut all: Vec<u64> = cells.iter().flat_map(|f| f.cells.clone()).collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]

        #[test]
        fn coverage_and_visibility_lie_in_0_1(
            steps in proptest::collection::vec((1i64..200, -2i32..=2, -2i32..=2, any::<bool>()), 2..40)
        ) {
            let (x, _, _) = cells9();
            let area: Vec<u64> = CellIndex::try_from(x).unwrap().grid_disk::<Vec<_>>(2).into_iter().map(u64::from).collect();
            let mut t = ms("2026-11-02T14:25:00Z");
            let (mut lat, mut lon) = (40.10, -88.90);
            let mut fixes = Vec::new();
            for (dt, dlat, dlon, inside) in steps {
                t += dt * 1000;
                lat += f64::from(dlat) * 0.001;
                lon += f64::from(dlon) * 0.001;
                let cell = u64::from(h3o::LatLng::new(lat, lon).unwrap().to_cell(Resolution::Eleven));
                let fix = Fix::at("C01", t, cell);
                fixes.push(if inside { fix.beat("B1") } else { fix });
            }
            let fence = FenceCells { kind: "beat", id: "B1".into(), cells: area };
            let df = coverage(&ctx(), pings(&fixes), units(&[]), &[fence]).unwrap();
            for c in ["coverage", "visibility"] {
                for v in df.column(c).unwrap().f64().unwrap().into_no_null_iter() {
                    prop_assert!((0.0..=1.0).contains(&v), "{} = {}", c, v);
                }
            }
        }
    }
}
