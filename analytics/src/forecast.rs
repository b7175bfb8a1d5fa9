//! Hot-spot forecasts and their rolling-origin backtest: which cells will hold next week's
//! incidents, and how well each way of saying so did on the weeks already seen.
//!
//! A *forecast* scores every study cell for the local week after an *origin* (a local Monday
//! 00:00) from the incidents before it; the [`top_share`](HotspotSettings::top_share) of the
//! cells with the highest scores are the week's forecast hot spots. The methods
//! ([`Method`]), with `K` = `training_weeks`:
//! - `naive`: incidents per cell in the `K` local weeks before the origin: the baseline every
//!   other method must beat;
//! - `recency`: incidents of the `3K` weeks before the origin, each weighted
//!   `2^(−age / half_life_days)`;
//! - `kde`: the quartic kernel of [`Grid::kde`] over the naive counts, `kde_rings` wide;
//! - `kde-cv`: the same, its bandwidth (0 to [`CV_MAX_RINGS`] rings; 0 is the counts
//!   themselves) chosen afresh at every origin by leave-one-week-out cross-validation over
//!   the `K` training weeks: each week in turn is predicted from the other `K − 1`, and the
//!   bandwidth with the highest mean PAI at the top share wins (ties: the narrower);
//! - `recency-kde`: the recency-weighted counts under a kernel chosen the same way;
//! - `gi`: the Gi* z-score of the naive counts (`gi_rings`), counting only cells with at least
//!   `gi_min_incidents` in their neighbourhood; the other cells follow by their counts.
//!
//! Scoring one week (`n` of the week's `N` incidents in the flagged cells, `a` their share of
//! the study area's km²):
//! - cells tied at the cut (many cells hold one incident, or none) share the remaining places
//!   equally, so a score is what a random choice among the tied cells would capture on
//!   average, never the luck of a cell id;
//! - *PAI* = `(n / N) / a`, undefined (not 0) when the week has no incident;
//! - *PEI* = PAI / PAI\*, PAI\* that of the same number of cells chosen with hindsight;
//! - *RRI*, the recapture rate index, = `(n / N) / (n' / N')` with `n'` of the `N'` training
//!   incidents in the flagged cells: near 1 when the hot spots hold their share.
//!
//! The *backtest* scores every method on every local week wholly inside the span whose `K`
//! training weeks follow the first incident, for the slot `all` and each patrol window (incidents by
//! their local time of day). Per slot the method with the highest mean PAI at the top share
//! is *chosen*, naive included: the backtest never claims a method beats the baseline when it
//! did not. `patrol analyze backtest` writes the choice to the store ([`Choice`]); the hot
//! spot and gap jobs read it back, and fall back to `[hotspots] method` without it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chrono::{Datelike, Duration, NaiveDate, TimeZone};
use chrono_tz::Tz;
use geo::{BoundingRect, Coord, Rect};
use h3o::geom::{ContainmentMode, TilerBuilder};
use h3o::{CellIndex, LatLng, Resolution};
use model::jurisdiction::{FORECAST_METHODS, HotspotSettings, Window};
use serde::{Deserialize, Serialize};

use crate::AnalyticsError;

/// Widest kernel the cross-validated methods try, rings.
pub const CV_MAX_RINGS: u32 = 4;

/// A forecast method (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// Counts of the training weeks.
    Naive,
    /// Exponentially weighted counts.
    Recency,
    /// Kernel density of the counts, fixed bandwidth.
    Kde,
    /// Kernel density, cross-validated bandwidth.
    KdeCv,
    /// Kernel density of the weighted counts, cross-validated bandwidth.
    RecencyKde,
    /// Gi* with a minimum count.
    Gi,
}

impl Method {
    /// Every method, the baseline first.
    pub const ALL: [Method; 6] = [
        Method::Naive,
        Method::Recency,
        Method::Kde,
        Method::KdeCv,
        Method::RecencyKde,
        Method::Gi,
    ];

    /// The method's name in `jurisdiction.toml` and the tables.
    #[must_use]
    pub const fn name(self) -> &'static str {
        FORECAST_METHODS[self as usize]
    }

    /// The method called `name`.
    ///
    /// # Errors
    /// [`AnalyticsError::Invalid`] naming the methods.
    pub fn parse(name: &str) -> Result<Self, AnalyticsError> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| {
                AnalyticsError::Invalid(format!(
                    "`{name}` is not a forecast method (one of {})",
                    FORECAST_METHODS.join(", ")
                ))
            })
    }
}

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

/// The cells the statistics and forecasts run over (re-exported as
/// `hotspots::StudyArea`).
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

    /// The index of `cell` in [`StudyArea::cells`].
    #[must_use]
    pub fn position(&self, cell: u64) -> Option<usize> {
        self.index.get(&cell).copied()
    }

    /// Cells of the area within `k` rings of `cell`, with their grid distance.
    pub(crate) fn disk(&self, cell: u64, k: u32) -> Vec<(usize, u32)> {
        let Ok(c) = CellIndex::try_from(cell) else {
            return Vec::new();
        };
        let ring: Vec<(CellIndex, u32)> = c.grid_disk_distances(k);
        ring.into_iter()
            .filter_map(|(n, d)| self.index.get(&u64::from(n)).map(|i| (*i, d)))
            .collect()
    }
}

/// The study area with each cell's neighbours to a fixed ring, for the kernel and Gi*.
#[derive(Debug, Clone)]
pub struct Grid<'a> {
    area: &'a StudyArea,
    /// Per cell, the study cells within `rings` and their grid distance.
    disks: Vec<Vec<(u32, u32)>>,
    rings: u32,
    km2: Vec<f64>,
    total_km2: f64,
}

impl<'a> Grid<'a> {
    /// The neighbours of every cell of `area` to `rings`.
    #[must_use]
    pub fn new(area: &'a StudyArea, rings: u32) -> Self {
        let disks: Vec<Vec<(u32, u32)>> = area
            .cells()
            .iter()
            .map(|&c| {
                area.disk(c, rings)
                    .into_iter()
                    .map(|(i, d)| (i as u32, d))
                    .collect()
            })
            .collect();
        let km2: Vec<f64> = area
            .cells()
            .iter()
            .map(|c| CellIndex::try_from(*c).map_or(0.0, CellIndex::area_km2))
            .collect();
        let total_km2 = km2.iter().sum();
        Self {
            area,
            disks,
            rings,
            km2,
            total_km2,
        }
    }

    /// The study area.
    #[must_use]
    pub const fn area(&self) -> &StudyArea {
        self.area
    }

    /// Number of cells.
    #[must_use]
    pub fn len(&self) -> usize {
        self.disks.len()
    }

    /// Always false: a study area has a cell.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.disks.is_empty()
    }

    fn within(&self, i: usize, rings: u32) -> impl Iterator<Item = (usize, u32)> + '_ {
        assert!(rings <= self.rings, "grid built for {} rings", self.rings);
        self.disks[i]
            .iter()
            .filter(move |(_, d)| *d <= rings)
            .map(|&(j, d)| (j as usize, d))
    }

    /// Quartic kernel density: cell i gets Σ x_j (1 − (d_ij / h)²)² over the cells j within
    /// `rings` (grid distance d_ij), h = `rings` + 1; 0 rings gives `x` back.
    ///
    /// # Panics
    /// When `rings` exceeds the grid's.
    #[must_use]
    pub fn kde(&self, x: &[f64], rings: u32) -> Vec<f64> {
        let h = f64::from(rings + 1);
        let mut out = vec![0.0; x.len()];
        for (j, &xj) in x.iter().enumerate() {
            if xj == 0.0 {
                continue;
            }
            for (i, d) in self.within(j, rings) {
                let u = f64::from(d) / h;
                out[i] += xj * (1.0 - u * u).powi(2);
            }
        }
        out
    }

    /// Sum of `x` over each cell's neighbourhood of `rings`, and its number of study cells.
    ///
    /// # Panics
    /// When `rings` exceeds the grid's.
    #[must_use]
    pub fn disk_sums(&self, x: &[f64], rings: u32) -> Vec<(f64, usize)> {
        (0..x.len())
            .map(|i| {
                self.within(i, rings)
                    .fold((0.0, 0), |(s, w), (j, _)| (s + x[j], w + 1))
            })
            .collect()
    }

    /// Getis-Ord Gi* z-score per cell, binary weights over the `rings` neighbourhood (see
    /// [`crate::hotspots`]); 0 for a constant field.
    ///
    /// # Panics
    /// When `rings` exceeds the grid's.
    #[must_use]
    pub fn gi_star(&self, x: &[f64], rings: u32) -> Vec<f64> {
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let s = (x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
        self.disk_sums(x, rings)
            .into_iter()
            .map(|(local, w)| {
                let w = w as f64;
                let den = s * ((n * w - w * w) / (n - 1.0)).max(0.0).sqrt();
                // A constant field (S = 0) or a single cell has no deviation to score.
                if s <= 1e-9 * mean.abs().max(1.0) || den <= 0.0 || n < 2.0 {
                    0.0
                } else {
                    (local - mean * w) / den
                }
            })
            .collect()
    }
}

/// An incident on the grid: UTC ms and study cell index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// UTC epoch ms.
    pub t_ms: i64,
    /// Index into [`StudyArea::cells`].
    pub cell: u32,
}

/// The incidents on a grid, with the count of those outside it.
#[derive(Debug, Clone)]
pub struct Events {
    /// Inside the study area, by time.
    pub inside: Vec<Event>,
    /// Outside the study area: counted and reported, never scored.
    pub outside: usize,
}

impl Events {
    /// Places `points` (UTC ms, lat, lon) on the area.
    #[must_use]
    pub fn place(area: &StudyArea, points: impl IntoIterator<Item = (i64, f64, f64)>) -> Self {
        let mut inside = Vec::new();
        let mut outside = 0;
        for (t_ms, lat, lon) in points {
            match area.cell_of(lat, lon).and_then(|c| area.position(c)) {
                Some(i) => inside.push(Event {
                    t_ms,
                    cell: i as u32,
                }),
                None => outside += 1,
            }
        }
        inside.sort_by_key(|e| e.t_ms);
        Self { inside, outside }
    }

    /// Counts per cell of the events in `[from, to)` passing `keep`, each weighted by
    /// `weight(t)`.
    fn counts(
        &self,
        n: usize,
        (from, to): (i64, i64),
        keep: &dyn Fn(i64) -> bool,
        weight: &dyn Fn(i64) -> f64,
    ) -> Vec<f64> {
        let mut x = vec![0.0; n];
        let start = self.inside.partition_point(|e| e.t_ms < from);
        for e in self.inside[start..].iter().take_while(|e| e.t_ms < to) {
            if keep(e.t_ms) {
                x[e.cell as usize] += weight(e.t_ms);
            }
        }
        x
    }
}

/// Local weeks: Monday 00:00 in the jurisdiction's zone, as UTC ms.
#[derive(Debug, Clone, Copy)]
pub struct Weeks {
    tz: Tz,
}

impl Weeks {
    /// Weeks in `tz`.
    #[must_use]
    pub const fn new(tz: Tz) -> Self {
        Self { tz }
    }

    fn midnight(&self, day: NaiveDate) -> i64 {
        let local = day.and_hms_opt(0, 0, 0).unwrap_or_default();
        // Midnight falls in a spring-forward gap in a few zones: the week then starts at the
        // first instant after it.
        self.tz
            .from_local_datetime(&local)
            .earliest()
            .or_else(|| {
                self.tz
                    .from_local_datetime(&(local + Duration::hours(1)))
                    .earliest()
            })
            .map_or(0, |t| t.timestamp_millis())
    }

    /// The local Monday of the week holding `t_ms`.
    #[must_use]
    pub fn monday_of(&self, t_ms: i64) -> NaiveDate {
        let day = self
            .tz
            .timestamp_millis_opt(t_ms)
            .single()
            .map_or(NaiveDate::MIN, |t| t.date_naive());
        day - Duration::days(i64::from(day.weekday().num_days_from_monday()))
    }

    /// The start (UTC ms) of the local week `weeks` after the one starting on `monday`.
    #[must_use]
    pub fn start(&self, monday: NaiveDate, weeks: i64) -> i64 {
        self.midnight(monday + Duration::weeks(weeks))
    }

    /// The local weeks wholly inside `[from_ms, to_ms)`: their Mondays.
    #[must_use]
    pub fn within(&self, from_ms: i64, to_ms: i64) -> Vec<NaiveDate> {
        let mut monday = self.monday_of(from_ms);
        if self.start(monday, 0) < from_ms {
            monday += Duration::weeks(1);
        }
        let mut out = Vec::new();
        while self.start(monday, 1) <= to_ms {
            out.push(monday);
            monday += Duration::weeks(1);
        }
        out
    }
}

/// The ISO week name of a Monday, `2026-W45`.
#[must_use]
pub fn week_name(monday: NaiveDate) -> String {
    let w = monday.iso_week();
    format!("{}-W{:02}", w.year(), w.week())
}

/// A time slot: every incident, or those whose local time of day falls in a window.
#[derive(Debug, Clone)]
pub struct Slot {
    /// `all` or the window's name.
    pub name: String,
    window: Option<Window>,
    tz: Tz,
}

impl Slot {
    /// `all` and one slot per window.
    #[must_use]
    pub fn all_and_windows(tz: Tz, windows: &[Window]) -> Vec<Slot> {
        std::iter::once(Slot {
            name: "all".into(),
            window: None,
            tz,
        })
        .chain(windows.iter().map(|w| Slot {
            name: w.name.clone(),
            window: Some(w.clone()),
            tz,
        }))
        .collect()
    }

    /// True when an incident at `t_ms` belongs to the slot.
    #[must_use]
    pub fn holds(&self, t_ms: i64) -> bool {
        self.window.as_ref().is_none_or(|w| {
            self.tz
                .timestamp_millis_opt(t_ms)
                .single()
                .is_some_and(|t| w.contains(t.time()))
        })
    }
}

/// What a forecast needs besides the events.
#[derive(Debug, Clone, Copy)]
pub struct ForecastInput<'g, 'a> {
    /// The grid (built for at least [`CV_MAX_RINGS`], `kde_rings` and `gi_rings`).
    pub grid: &'g Grid<'a>,
    /// The incidents.
    pub events: &'g Events,
    /// Local weeks.
    pub weeks: Weeks,
    /// `[hotspots]`.
    pub settings: &'g HotspotSettings,
}

/// A forecast: a score per study cell and the bandwidth it used.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    /// Per study cell, in the order of [`StudyArea::cells`].
    pub score: Vec<f64>,
    /// Kernel rings used (0 for methods without a kernel).
    pub rings: u32,
}

impl ForecastInput<'_, '_> {
    /// The grid rings a forecast with these settings needs.
    #[must_use]
    pub fn rings_needed(settings: &HotspotSettings) -> u32 {
        CV_MAX_RINGS.max(settings.kde_rings).max(settings.gi_rings)
    }

    fn training(&self, origin: NaiveDate, slot: &Slot, weeks: (i64, i64)) -> Vec<f64> {
        let span = (
            self.weeks.start(origin, -weeks.0),
            self.weeks.start(origin, -weeks.1),
        );
        self.events
            .counts(self.grid.len(), span, &|t| slot.holds(t), &|_| 1.0)
    }

    fn recency(&self, origin: NaiveDate, slot: &Slot) -> Vec<f64> {
        let k = i64::from(self.settings.training_weeks);
        let end = self.weeks.start(origin, 0);
        let half_life_ms = self.settings.half_life_days * 86_400_000.0;
        self.events.counts(
            self.grid.len(),
            (self.weeks.start(origin, -3 * k), end),
            &|t| slot.holds(t),
            &|t| (-((end - t) as f64) / half_life_ms).exp2(),
        )
    }

    /// The training weeks one by one, oldest first.
    fn weekly(&self, origin: NaiveDate, slot: &Slot) -> Vec<Vec<f64>> {
        let k = i64::from(self.settings.training_weeks);
        (0..k)
            .map(|w| self.training(origin, slot, (k - w, k - w - 1)))
            .collect()
    }

    /// The kernel width with the best mean leave-one-week-out PAI at the top share: each
    /// training week predicted from the counts of the others.
    fn cross_validated(&self, weekly: &[Vec<f64>]) -> u32 {
        let k = weekly.len();
        if k < 2 {
            return self.settings.kde_rings.min(CV_MAX_RINGS);
        }
        let total: Vec<f64> = (0..self.grid.len())
            .map(|i| weekly.iter().map(|w| w[i]).sum())
            .collect();
        let mut best = (f64::NEG_INFINITY, 0);
        for rings in 0..=CV_MAX_RINGS {
            let mut sum = 0.0;
            let mut scored = 0;
            for held in weekly {
                let rest: Vec<f64> = total.iter().zip(held).map(|(t, h)| t - h).collect();
                let score = self.grid.kde(&rest, rings);
                if let Some(pai) =
                    evaluate(self.grid, &score, held, &rest, self.settings.top_share).pai
                {
                    sum += pai;
                    scored += 1;
                }
            }
            let mean = if scored == 0 {
                0.0
            } else {
                sum / f64::from(scored)
            };
            if mean > best.0 {
                best = (mean, rings);
            }
        }
        best.1
    }

    /// The forecast of `method` for the week starting on `origin`, from the incidents of
    /// `slot` before it.
    #[must_use]
    pub fn forecast(&self, method: Method, origin: NaiveDate, slot: &Slot) -> Forecast {
        self.forecast_sharing(method, origin, slot, &mut None)
    }

    /// [`ForecastInput::forecast`], the cross-validated width kept in `cv` for the other
    /// kernel method of the same origin and slot (both choose it on the same weeks).
    fn forecast_sharing(
        &self,
        method: Method,
        origin: NaiveDate,
        slot: &Slot,
        cv: &mut Option<u32>,
    ) -> Forecast {
        let k = i64::from(self.settings.training_weeks);
        let s = self.settings;
        match method {
            Method::Naive => Forecast {
                score: self.training(origin, slot, (k, 0)),
                rings: 0,
            },
            Method::Recency => Forecast {
                score: self.recency(origin, slot),
                rings: 0,
            },
            Method::Kde => Forecast {
                score: self
                    .grid
                    .kde(&self.training(origin, slot, (k, 0)), s.kde_rings),
                rings: s.kde_rings,
            },
            Method::KdeCv | Method::RecencyKde => {
                let rings =
                    *cv.get_or_insert_with(|| self.cross_validated(&self.weekly(origin, slot)));
                let base = if method == Method::KdeCv {
                    self.training(origin, slot, (k, 0))
                } else {
                    self.recency(origin, slot)
                };
                Forecast {
                    score: self.grid.kde(&base, rings),
                    rings,
                }
            }
            Method::Gi => {
                let x = self.training(origin, slot, (k, 0));
                let z = self.grid.gi_star(&x, s.gi_rings);
                let sums = self.grid.disk_sums(&x, s.gi_rings);
                // Cells short of the minimum rank after every qualifying cell, by count.
                let floor = z.iter().copied().fold(0.0f64, f64::min) - 1.0;
                let top = x.iter().copied().fold(0.0f64, f64::max) + 1.0;
                let score = z
                    .iter()
                    .zip(&sums)
                    .zip(&x)
                    .map(|((z, (local, _)), xi)| {
                        if *local >= f64::from(s.gi_min_incidents) {
                            *z
                        } else {
                            floor - 1.0 - (top - xi) / top
                        }
                    })
                    .collect();
                Forecast {
                    score,
                    rings: s.gi_rings,
                }
            }
        }
    }
}

/// One week's score of one forecast (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// Cells flagged (the top share, at least one).
    pub cells: usize,
    /// Incidents of the week in the study area (N).
    pub incidents: f64,
    /// Of them in the flagged cells, expected over the choice among tied cells (n).
    pub captured: f64,
    /// Share of the study area flagged (a).
    pub area_share: f64,
    /// `(n / N) / a`; `None` when the week has no incident.
    pub pai: Option<f64>,
    /// PAI / PAI* (hindsight); `None` with PAI.
    pub pei: Option<f64>,
    /// Recapture rate index; `None` without training incidents in the flagged cells.
    pub rri: Option<f64>,
}

/// Inclusion weight per cell of the top `share` of cells by `score`: 1 above the cut, the
/// remaining places shared among the cells tied at the cut, 0 below.
#[must_use]
pub fn top_weights(score: &[f64], share: f64) -> Vec<f64> {
    let n = score.len();
    if n == 0 {
        return Vec::new();
    }
    let k = ((share * n as f64).ceil() as usize).clamp(1, n);
    let mut order = score.to_vec();
    let (_, cut, _) = order.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    let cut = *cut;
    let above = score.iter().filter(|s| **s > cut).count();
    let tied = score.iter().filter(|s| **s == cut).count();
    let part = (k - above) as f64 / tied as f64;
    score
        .iter()
        .map(|s| {
            if *s > cut {
                1.0
            } else if *s == cut {
                part
            } else {
                0.0
            }
        })
        .collect()
}

/// Scores `score` on the week's counts `test`, `train` being what it learnt from.
#[must_use]
pub fn evaluate(grid: &Grid<'_>, score: &[f64], test: &[f64], train: &[f64], share: f64) -> Score {
    let w = top_weights(score, share);
    let cells = ((share * grid.len() as f64).ceil() as usize).clamp(1, grid.len().max(1));
    let dot = |v: &[f64]| -> f64 { w.iter().zip(v).map(|(a, b)| a * b).sum() };
    let n_test: f64 = test.iter().sum();
    let n_train: f64 = train.iter().sum();
    let captured = dot(test);
    let area_share = dot(&grid.km2) / grid.total_km2;
    let pai = (n_test > 0.0 && area_share > 0.0).then(|| (captured / n_test) / area_share);
    // Hindsight: the same number of cells holding the most incidents of the week.
    let mut best: Vec<usize> = (0..test.len()).collect();
    best.select_nth_unstable_by(cells - 1, |a, b| test[*b].total_cmp(&test[*a]));
    let (n_best, a_best) = best[..cells]
        .iter()
        .fold((0.0, 0.0), |(n, a), &i| (n + test[i], a + grid.km2[i]));
    let pai_best =
        (n_test > 0.0 && a_best > 0.0).then(|| (n_best / n_test) / (a_best / grid.total_km2));
    let train_in = dot(train);
    Score {
        cells,
        incidents: n_test,
        captured,
        area_share,
        pai,
        pei: pai
            .zip(pai_best)
            .map(|(p, b)| if b > 0.0 { p / b } else { 0.0 }),
        rri: (n_test > 0.0 && n_train > 0.0 && train_in > 0.0)
            .then(|| (captured / n_test) / (train_in / n_train)),
    }
}

/// One method's score on one week and slot.
#[derive(Debug, Clone, PartialEq)]
pub struct WeekScore {
    /// Slot name.
    pub slot: String,
    /// The method.
    pub method: Method,
    /// The week's Monday.
    pub week: NaiveDate,
    /// Kernel rings used.
    pub rings: u32,
    /// Training incidents (naive counts of the `K` weeks).
    pub train_incidents: f64,
    /// The score at the top share.
    pub score: Score,
}

/// One method over the backtest's weeks of one slot.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodSummary {
    /// Slot name.
    pub slot: String,
    /// The method.
    pub method: Method,
    /// Weeks with a defined PAI.
    pub weeks: usize,
    /// Mean PAI over them.
    pub mean_pai: Option<f64>,
    /// Mean PEI.
    pub mean_pei: Option<f64>,
    /// Mean RRI over the weeks where it is defined.
    pub mean_rri: Option<f64>,
    /// Weeks its PAI was above naive's, and equal to it.
    pub beats_naive: usize,
    /// Weeks its PAI equalled naive's.
    pub ties_naive: usize,
    /// Chosen for the slot.
    pub chosen: bool,
}

/// The backtest's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Backtest {
    /// Every week, slot and method.
    pub weeks: Vec<WeekScore>,
    /// Per slot and method.
    pub summary: Vec<MethodSummary>,
    /// Weeks in the span skipped because their training weeks hold no incident.
    pub skipped: Vec<NaiveDate>,
    /// Incidents outside the study area.
    pub outside: usize,
}

impl Backtest {
    /// The chosen method per slot.
    #[must_use]
    pub fn choice(&self) -> Choice {
        Choice {
            methods: self
                .summary
                .iter()
                .filter(|s| s.chosen)
                .map(|s| (s.slot.clone(), s.method.name().to_owned()))
                .collect(),
        }
    }
}

/// Runs the backtest over the local weeks wholly inside `[from_ms, to_ms)`.
#[must_use]
pub fn backtest(
    input: &ForecastInput<'_, '_>,
    slots: &[Slot],
    from_ms: i64,
    to_ms: i64,
) -> Backtest {
    let k = i64::from(input.settings.training_weeks);
    let first = input.events.inside.first().map(|e| e.t_ms);
    let mut weeks = Vec::new();
    let mut skipped = Vec::new();
    for monday in input.weeks.within(from_ms, to_ms) {
        if first.is_none_or(|t| t >= input.weeks.start(monday, -k)) {
            skipped.push(monday);
            continue;
        }
        for slot in slots {
            let train = input.training(monday, slot, (k, 0));
            let test = input.training(monday, slot, (0, -1));
            let mut cv = None;
            for method in Method::ALL {
                let f = input.forecast_sharing(method, monday, slot, &mut cv);
                weeks.push(WeekScore {
                    slot: slot.name.clone(),
                    method,
                    week: monday,
                    rings: f.rings,
                    train_incidents: train.iter().sum(),
                    score: evaluate(
                        input.grid,
                        &f.score,
                        &test,
                        &train,
                        input.settings.top_share,
                    ),
                });
            }
        }
    }
    let summary = summarise(slots, &weeks);
    Backtest {
        weeks,
        summary,
        skipped,
        outside: input.events.outside,
    }
}

fn mean(v: impl Iterator<Item = f64>) -> Option<f64> {
    let (s, n) = v.fold((0.0, 0u32), |(s, n), x| (s + x, n + 1));
    (n > 0).then(|| s / f64::from(n))
}

fn summarise(slots: &[Slot], weeks: &[WeekScore]) -> Vec<MethodSummary> {
    let mut out = Vec::new();
    for slot in slots {
        let naive: BTreeMap<NaiveDate, f64> = weeks
            .iter()
            .filter(|w| w.slot == slot.name && w.method == Method::Naive)
            .filter_map(|w| w.score.pai.map(|p| (w.week, p)))
            .collect();
        let first = out.len();
        for method in Method::ALL {
            let mine: Vec<&WeekScore> = weeks
                .iter()
                .filter(|w| w.slot == slot.name && w.method == method && w.score.pai.is_some())
                .collect();
            let versus = |cmp: fn(f64, f64) -> bool| {
                mine.iter()
                    .filter(|w| {
                        naive
                            .get(&w.week)
                            .zip(w.score.pai)
                            .is_some_and(|(n, p)| cmp(p, *n))
                    })
                    .count()
            };
            out.push(MethodSummary {
                slot: slot.name.clone(),
                method,
                weeks: mine.len(),
                mean_pai: mean(mine.iter().filter_map(|w| w.score.pai)),
                mean_pei: mean(mine.iter().filter_map(|w| w.score.pei)),
                mean_rri: mean(mine.iter().filter_map(|w| w.score.rri)),
                beats_naive: versus(|p, n| p > n + 1e-9),
                ties_naive: versus(|p, n| (p - n).abs() <= 1e-9),
                chosen: false,
            });
        }
        // The best mean PAI; ties go to the earlier (simpler) method, naive first.
        let best = out[first..]
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.mean_pai.map(|p| (i, p)))
            .fold(None, |best: Option<(usize, f64)>, (i, p)| match best {
                Some((_, b)) if b >= p - 1e-12 => best,
                _ => Some((i, p)),
            });
        if let Some((i, _)) = best {
            out[first + i].chosen = true;
        }
    }
    out
}

/// The forecast method chosen per slot, as `patrol analyze backtest` writes it to the store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    /// Slot name to method name.
    pub methods: BTreeMap<String, String>,
}

impl Choice {
    /// Where the choice lives in a store.
    #[must_use]
    pub fn path(store: &Path) -> PathBuf {
        store.join("forecast").join("methods.toml")
    }

    /// The choice saved in `store`, if any.
    ///
    /// # Errors
    /// [`AnalyticsError::Invalid`] for a file that cannot be read or names an unknown method.
    pub fn load(store: &Path) -> Result<Option<Self>, AnalyticsError> {
        let path = Self::path(store);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(AnalyticsError::Invalid(format!("{}: {e}", path.display())));
            }
        };
        let choice: Self = toml::from_str(&text)
            .map_err(|e| AnalyticsError::Invalid(format!("{}: {e}", path.display())))?;
        for m in choice.methods.values() {
            Method::parse(m)?;
        }
        Ok(Some(choice))
    }

    /// Writes the choice to `store` (through a temporary file and a rename).
    ///
    /// # Errors
    /// [`AnalyticsError::Invalid`] naming the file that could not be written.
    pub fn save(&self, store: &Path) -> Result<PathBuf, AnalyticsError> {
        let path = Self::path(store);
        let io = |e: std::io::Error| AnalyticsError::Invalid(format!("{}: {e}", path.display()));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let text = format!(
            "# Written by `patrol analyze backtest`: the forecast method per slot.\n{}",
            toml::to_string(self).map_err(|e| AnalyticsError::Invalid(e.to_string()))?
        );
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        Ok(path)
    }

    /// The method for `slot`: the saved one, else `all`'s, else the settings' default.
    ///
    /// # Errors
    /// [`AnalyticsError::Invalid`] for a method name no method has.
    pub fn method(
        choice: Option<&Self>,
        slot: &str,
        settings: &HotspotSettings,
    ) -> Result<Method, AnalyticsError> {
        let saved = choice.and_then(|c| c.methods.get(slot).or_else(|| c.methods.get("all")));
        Method::parse(saved.map_or(settings.method.as_str(), String::as_str))
    }
}

/// A slot's forecast for the week after a span, as the hot spot and gap jobs use it.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotForecast {
    /// The method that made it.
    pub method: Method,
    /// Monday of the week forecast.
    pub week: NaiveDate,
    /// Score per study cell.
    pub score: Vec<f64>,
    /// Inclusion weight per cell in the top share ([`top_weights`]), 0 where the score is 0:
    /// the forecast hot spots.
    pub hot: Vec<f64>,
    /// The slot's mean incidents a week over the training weeks.
    pub weekly: f64,
}

impl SlotForecast {
    /// Incidents expected per cell next week: the cell's share of the positive scores (Gi*
    /// scores can be negative) × the slot's mean incidents a week; 0 elsewhere.
    #[must_use]
    pub fn expected(&self) -> Vec<f64> {
        let total: f64 = self.score.iter().filter(|s| **s > 0.0).sum();
        self.score
            .iter()
            .map(|s| {
                if *s > 0.0 {
                    s / total * self.weekly
                } else {
                    0.0
                }
            })
            .collect()
    }
}

/// The forecasts of `slots` for the first local week starting at or after `to_ms`, keyed as
/// the hot spot table names its slots: (`all`, `all`) and (`window`, window name). The
/// events must end before `to_ms`.
///
/// # Errors
/// [`AnalyticsError::Invalid`] for a saved or configured method that does not exist.
pub fn next_week(
    input: &ForecastInput<'_, '_>,
    slots: &[Slot],
    choice: Option<&Choice>,
    to_ms: i64,
) -> Result<BTreeMap<(String, String), SlotForecast>, AnalyticsError> {
    let mut week = input.weeks.monday_of(to_ms);
    if input.weeks.start(week, 0) < to_ms {
        week += Duration::weeks(1);
    }
    let mut out = BTreeMap::new();
    for slot in slots {
        let method = Choice::method(choice, &slot.name, input.settings)?;
        let f = input.forecast(method, week, slot);
        let k = input.settings.training_weeks;
        let weekly = input
            .training(week, slot, (i64::from(k), 0))
            .iter()
            .sum::<f64>()
            / f64::from(k);
        let kind = if slot.window.is_some() {
            "window"
        } else {
            "all"
        };
        // A cell with no score is no hot spot, however the cut falls among the tied ones.
        let hot = top_weights(&f.score, input.settings.top_share)
            .into_iter()
            .zip(&f.score)
            .map(|(w, s)| if *s > 0.0 { w } else { 0.0 })
            .collect();
        out.insert(
            (kind.to_owned(), slot.name.clone()),
            SlotForecast {
                method,
                week,
                hot,
                score: f.score,
                weekly,
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use h3o::Resolution;

    use super::*;
    use crate::testing::{cells9, ms, windows};

    fn disk(rings: u32) -> StudyArea {
        let (x, _, _) = cells9();
        let cells = CellIndex::try_from(x).unwrap().grid_disk::<Vec<_>>(rings);
        StudyArea::new(Resolution::Nine, cells.into_iter().map(u64::from).collect()).unwrap()
    }

    #[test]
    fn ties_at_the_cut_share_the_places() {
        assert_eq!(
            top_weights(&[3.0, 1.0, 1.0, 1.0, 0.0], 0.4),
            vec![1.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0, 0.0]
        );
        // The top share is at least one cell.
        assert_eq!(top_weights(&[0.0, 2.0], 0.01), vec![0.0, 1.0]);
    }

    #[test]
    fn hand_computed_scores() {
        let area = disk(1);
        let grid = Grid::new(&area, 1);
        // 7 cells of near-equal area; flag 2 (share 0.25 → ceil 1.75).
        let score = [5.0, 4.0, 4.0, 0.0, 0.0, 0.0, 0.0];
        let test = [2.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0];
        let train = [5.0, 4.0, 4.0, 0.0, 0.0, 0.0, 0.0];
        let s = evaluate(&grid, &score, &test, &train, 0.25);
        assert_eq!(s.cells, 2);
        // Cell 0, and half of cells 1 and 2 (tied at the cut).
        assert_eq!(s.captured, 2.5);
        let a = (grid.km2[0] + 0.5 * (grid.km2[1] + grid.km2[2])) / grid.total_km2;
        assert!((s.area_share - a).abs() < 1e-15);
        assert!((s.pai.unwrap() - (2.5 / 4.0) / a).abs() < 1e-12);
        // Hindsight flags cells 0 and one of 1 or 3: 3 of 4.
        let best = (3.0 / 4.0) / ((grid.km2[0] + grid.km2[1]) / grid.total_km2);
        assert!((s.pei.unwrap() - s.pai.unwrap() / best).abs() < 1e-3);
        // Training: 9 of 13 in the flagged share; test 2.5 of 4.
        assert!((s.rri.unwrap() - (2.5 / 4.0) / (9.0 / 13.0)).abs() < 1e-12);
        // A week without incidents has no PAI, not a PAI of 0.
        let none = evaluate(&grid, &score, &[0.0; 7], &train, 0.25);
        assert_eq!((none.pai, none.pei, none.rri), (None, None, None));
    }

    #[test]
    fn weeks_are_local_across_daylight_saving() {
        let weeks = Weeks::new(chrono_tz::America::Chicago);
        // 2026-11-01 is the Sunday clocks go back: the week of 2026-10-26 is 169 hours long.
        let mondays = weeks.within(ms("2026-10-19T05:00:00Z"), ms("2026-11-09T06:00:00Z"));
        let names: Vec<String> = mondays.iter().map(|m| week_name(*m)).collect();
        assert_eq!(names, ["2026-W43", "2026-W44", "2026-W45"]);
        let monday = mondays[1];
        assert_eq!(weeks.start(monday, 0), ms("2026-10-26T05:00:00Z"));
        assert_eq!(weeks.start(monday, 1), ms("2026-11-02T06:00:00Z"));
        // A span ending mid-week holds only the weeks before.
        assert_eq!(
            weeks
                .within(ms("2026-10-19T05:00:00Z"), ms("2026-11-05T06:00:00Z"))
                .len(),
            2
        );
        assert_eq!(weeks.monday_of(ms("2026-11-02T05:59:00Z")), monday);
    }

    fn at(area: &StudyArea, i: usize, t: &str) -> (i64, f64, f64) {
        let c = h3o::LatLng::from(CellIndex::try_from(area.cells()[i]).unwrap());
        (ms(t), c.lat(), c.lng())
    }

    /// Week after week, incidents fall on one cell and, each week, on a neighbour of it
    /// that changes: the counts of the training weeks miss the neighbour, the kernel does not.
    fn drifting_weeks(area: &StudyArea, weeks: usize) -> Vec<(i64, f64, f64)> {
        let (x, _, _) = cells9();
        let centre = area.position(x).unwrap();
        let ring: Vec<usize> = area
            .disk(x, 1)
            .into_iter()
            .filter(|(_, d)| *d == 1)
            .map(|(i, _)| i)
            .collect();
        let mut out = Vec::new();
        for w in 0..weeks {
            // Tuesdays from 2026-09-01 at 17:45 UTC: 12:45 or 11:45 in Chicago, in no window.
            let day = NaiveDate::from_ymd_opt(2026, 9, 1).unwrap() + Duration::weeks(w as i64);
            let t = format!("{day}T17:45:00Z");
            for _ in 0..3 {
                out.push(at(area, centre, &t));
            }
            out.push(at(area, ring[w % ring.len()], &t));
            out.push(at(area, ring[w % ring.len()], &t));
        }
        out
    }

    #[test]
    fn the_backtest_scores_every_method_and_chooses_a_kernel_where_it_helps() {
        let area = disk(3);
        let settings = HotspotSettings {
            top_share: 0.18,
            ..HotspotSettings::default()
        };
        let grid = Grid::new(&area, ForecastInput::rings_needed(&settings));
        let mut points = drifting_weeks(&area, 10);
        // One incident outside the area is counted, not scored.
        points.push((ms("2026-09-02T17:00:00Z"), 10.0, 10.0));
        let events = Events::place(&area, points);
        assert_eq!(events.outside, 1);
        let input = ForecastInput {
            grid: &grid,
            events: &events,
            weeks: Weeks::new(chrono_tz::America::Chicago),
            settings: &settings,
        };
        let slots = Slot::all_and_windows(chrono_tz::America::Chicago, &windows());
        let b = backtest(
            &input,
            &slots,
            ms("2026-08-31T05:00:00Z"),
            ms("2026-11-09T06:00:00Z"),
        );
        // Ten weeks from 2026-08-31: the incidents start on its Tuesday, so the first five
        // have training weeks from before the first incident.
        assert_eq!(b.skipped.len(), 5);
        let all: Vec<&WeekScore> = b.weeks.iter().filter(|w| w.slot == "all").collect();
        assert_eq!(all.len(), 5 * Method::ALL.len());
        // Noon is in no window: those slots have no incident and no PAI.
        assert!(
            b.weeks
                .iter()
                .filter(|w| w.slot != "all")
                .all(|w| w.score.pai.is_none())
        );
        let naive = b
            .summary
            .iter()
            .find(|s| s.slot == "all" && s.method == Method::Naive)
            .unwrap();
        let chosen = b
            .summary
            .iter()
            .find(|s| s.slot == "all" && s.chosen)
            .unwrap();
        // The disk of seven cells holds every incident: a one-ring kernel flags it all.
        assert!(matches!(
            chosen.method,
            Method::Kde | Method::KdeCv | Method::RecencyKde
        ));
        assert!(chosen.mean_pai.unwrap() > naive.mean_pai.unwrap());
        assert_eq!(chosen.beats_naive, 5);
        assert_eq!(b.choice().methods.get("all").unwrap(), chosen.method.name());
        // Cross-validation found the one-ring kernel.
        assert!(
            all.iter()
                .filter(|w| w.method == Method::KdeCv)
                .all(|w| w.rings == 1),
            "{all:?}"
        );
    }

    #[test]
    fn the_choice_round_trips_through_the_store() {
        let store = tempfile::tempdir().unwrap();
        assert_eq!(Choice::load(store.path()).unwrap(), None);
        let settings = HotspotSettings::default();
        assert_eq!(
            Choice::method(None, "night", &settings).unwrap(),
            Method::KdeCv
        );
        let choice = Choice {
            methods: [("all".to_owned(), "recency".to_owned())]
                .into_iter()
                .collect(),
        };
        choice.save(store.path()).unwrap();
        let back = Choice::load(store.path()).unwrap().unwrap();
        assert_eq!(back, choice);
        // A slot the backtest did not see takes `all`'s method.
        assert_eq!(
            Choice::method(Some(&back), "night", &settings).unwrap(),
            Method::Recency
        );
        std::fs::write(
            Choice::path(store.path()),
            "[methods]\nall = \"crystal-ball\"\n",
        )
        .unwrap();
        let err = Choice::load(store.path()).unwrap_err().to_string();
        assert!(err.contains("crystal-ball"), "{err}");
    }
}
