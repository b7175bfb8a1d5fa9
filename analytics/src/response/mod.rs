//! The response rule: every place of the jurisdiction within `[response] max_minutes` of
//! driving **and** `max_km` of road from a source (a station, or a unit on duty).
//!
//! # Model
//! - The jurisdiction is covered by the H3 cells whose centre lies inside its outline
//!   ([`Grid`]; resolution from `[h3] analysis_res`, 9 by default).
//! - Each cell centre is snapped to its nearest road node; the straight stretch between them
//!   is driven at `[response] offroad_kmh` (15 km/h in the fixture county) and counts towards
//!   both the time and the distance. A source is snapped the same way, so its stretch to the
//!   road is paid at the start.
//! - One forward multi-source Dijkstra over the road graph (one-way streets honoured) gives,
//!   for every node, the least drive time from the quickest source and the road distance
//!   **along that fastest route** ([`crate::roads::Reach`]).
//! - A cell passes when that time is at most `max_minutes` and that distance at most
//!   `max_km` ([`Rule::passes`]). The distance is the one of the route a dispatcher would
//!   send (the quickest source, the quickest route), not the shortest road distance: a place
//!   whose quickest route runs 32 km on a motorway fails even if a slower 28 km route exists.
//!   This is the rule as the fixture generator checks it (`fixtures/README.md`).
//! - The road graph is the largest strongly connected component of the drivable roads (see
//!   [`crate::roads`]), so a road island is not part of it: cells on an island snap to the
//!   nearest node of the main network and pay the off-road stretch to it.
//!
//! # Layout
//! - this module: [`Rule`], [`Source`], [`Grid`], [`evaluate`], [`Summary`], [`Scenario`];
//! - `dynamic`: unit positions from the store, the hour-by-hour rule and incident reach;
//! - `job`: the `patrol analyze response` job and its output files.

mod dynamic;
mod job;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use geo::MultiPolygon;
use h3o::geom::{ContainmentMode, SolventBuilder, TilerBuilder};
use h3o::{CellIndex, LatLng, Resolution};
use model::jurisdiction::{ResponseSettings, Station};

use crate::roads::{NodeId, RoadNetwork, RouteError};

pub use dynamic::{
    HourCoverage, IncidentReach, T_MS, Tracks, WeekHour, hourly_coverage, incident_reach,
    unit_minutes, week_profile,
};
pub use job::{DEFAULT_MAX_FIX_AGE_S, IncidentFigures, JobError, ResponseJob, ResponseReport};

/// Why the response rule could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    /// The H3 resolution is not 0..=15.
    #[error("H3 resolution {0} is not in 0..=15")]
    Resolution(u8),
    /// The outline is not a valid geometry for H3 tiling.
    #[error("the jurisdiction outline cannot be tiled: {0}")]
    Outline(#[from] h3o::error::InvalidGeometry),
    /// No H3 cell centre lies inside the outline at this resolution.
    #[error("no H3 cell of resolution {0} has its centre inside the outline")]
    EmptyGrid(u8),
    /// A grid was asked for with no cells.
    #[error("no cells given for the grid")]
    NoCells,
    /// A source or a cell has coordinates that are not finite.
    #[error("{what} has no valid position ({lat}, {lon})")]
    BadPosition {
        /// What it is (a source id, a cell).
        what: String,
        /// Latitude given.
        lat: f64,
        /// Longitude given.
        lon: f64,
    },
    /// There is no source to measure from.
    #[error("no source (station or unit) to measure from")]
    NoSources,
    /// A scenario moves a station that does not exist.
    #[error("no station `{0}` to move")]
    UnknownStation(String),
    /// The failing cells could not be dissolved into polygons.
    #[error("cannot outline the failing cells: {0}")]
    Dissolve(#[from] h3o::error::DissolutionError),
    /// The road search refused its input.
    #[error(transparent)]
    Route(#[from] RouteError),
}

/// The two limits and the off-road speed, in SI units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    /// Longest acceptable drive, seconds.
    pub max_time_s: f64,
    /// Longest acceptable road distance, metres.
    pub max_dist_m: f64,
    /// Speed between a place and its nearest road node, metres per second.
    pub offroad_mps: f64,
}

impl Rule {
    /// The rule of a jurisdiction's `[response]` table.
    #[must_use]
    pub fn from_settings(s: &ResponseSettings) -> Self {
        Self {
            max_time_s: s.max_minutes * 60.0,
            max_dist_m: s.max_km * 1000.0,
            offroad_mps: s.offroad_kmh / 3.6,
        }
    }

    /// True when both the time and the distance are within the limits.
    #[must_use]
    pub fn passes(&self, time_s: f64, dist_m: f64) -> bool {
        time_s <= self.max_time_s && dist_m <= self.max_dist_m
    }
}

/// A place help starts from: a station, a posted unit, a unit on duty.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// Id shown in the output (station or unit id).
    pub id: String,
    /// WGS-84 latitude, degrees.
    pub lat: f64,
    /// WGS-84 longitude, degrees.
    pub lon: f64,
}

impl Source {
    /// The source at a station.
    #[must_use]
    pub fn station(s: &Station) -> Self {
        Self {
            id: s.id.clone(),
            lat: s.lat,
            lon: s.lon,
        }
    }
}

/// One cell of a [`Grid`]: its centre, area and the road node it is reached through.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GridCell {
    /// The H3 cell.
    pub cell: CellIndex,
    /// Latitude of the centre, degrees.
    pub lat: f64,
    /// Longitude of the centre, degrees.
    pub lon: f64,
    /// Area, km².
    pub area_km2: f64,
    /// Nearest road node to the centre.
    pub node: NodeId,
    /// Straight-line distance from the centre to that node, metres.
    pub offroad_m: f64,
}

/// The cells of a jurisdiction at one resolution, each snapped to the road network.
#[derive(Debug, Clone)]
pub struct Grid {
    res: Resolution,
    cells: Vec<GridCell>,
    position: HashMap<CellIndex, usize>,
}

impl Grid {
    /// The cells of resolution `res` whose centre lies inside `outline` (`x` = lon,
    /// `y` = lat), in cell index order.
    ///
    /// # Errors
    /// [`ResponseError::Resolution`], [`ResponseError::Outline`] or
    /// [`ResponseError::EmptyGrid`].
    pub fn new(
        net: &RoadNetwork,
        outline: &MultiPolygon<f64>,
        res: u8,
    ) -> Result<Self, ResponseError> {
        let resolution = resolution(res)?;
        let mut tiler = TilerBuilder::new(resolution)
            .containment_mode(ContainmentMode::ContainsCentroid)
            .build();
        for polygon in &outline.0 {
            tiler.add(polygon.clone())?;
        }
        let cells: Vec<CellIndex> = tiler.into_coverage().collect();
        if cells.is_empty() {
            return Err(ResponseError::EmptyGrid(res));
        }
        Self::from_cells(net, cells)
    }

    /// A grid of exactly these cells (duplicates dropped), snapped to `net`. All cells should
    /// have one resolution; the first one's is taken.
    ///
    /// # Errors
    /// [`ResponseError::NoCells`] when `cells` is empty.
    pub fn from_cells(
        net: &RoadNetwork,
        cells: impl IntoIterator<Item = CellIndex>,
    ) -> Result<Self, ResponseError> {
        let mut cells: Vec<CellIndex> = cells.into_iter().collect();
        cells.sort_unstable();
        cells.dedup();
        let Some(first) = cells.first() else {
            return Err(ResponseError::NoCells);
        };
        let res = first.resolution();
        let mut out = Vec::with_capacity(cells.len());
        for cell in cells {
            let centre = LatLng::from(cell);
            let (lat, lon) = (centre.lat(), centre.lng());
            let (node, offroad_m) = nearest(net, || format!("cell {cell}"), lat, lon)?;
            out.push(GridCell {
                cell,
                lat,
                lon,
                area_km2: cell.area_km2(),
                node,
                offroad_m,
            });
        }
        let position = out.iter().enumerate().map(|(i, c)| (c.cell, i)).collect();
        Ok(Self {
            res,
            cells: out,
            position,
        })
    }

    /// The resolution of the cells.
    #[must_use]
    pub fn resolution(&self) -> Resolution {
        self.res
    }

    /// The cells, in index order.
    #[must_use]
    pub fn cells(&self) -> &[GridCell] {
        &self.cells
    }

    /// Index in [`Grid::cells`] of the cell containing a point, if that cell is in the grid.
    #[must_use]
    pub fn locate(&self, lat: f64, lon: f64) -> Option<usize> {
        let cell = LatLng::new(lat, lon).ok()?.to_cell(self.res);
        self.position.get(&cell).copied()
    }

    /// Total area, km².
    #[must_use]
    pub fn area_km2(&self) -> f64 {
        self.cells.iter().map(|c| c.area_km2).sum()
    }
}

fn resolution(res: u8) -> Result<Resolution, ResponseError> {
    Resolution::try_from(res).map_err(|_| ResponseError::Resolution(res))
}

/// The rule's verdict on one cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CellReach {
    /// Least time from a source, seconds (both off-road stretches included).
    pub time_s: f64,
    /// Distance along that fastest route, metres (both off-road stretches included).
    pub dist_m: f64,
    /// Index into the sources of the quickest one.
    pub source: usize,
    /// Whether [`Rule::passes`] holds.
    pub pass: bool,
}

/// The road node nearest to a place and the straight distance to it, metres; `what` names
/// the place in the error when there is none (a non-finite position or an empty network).
pub(crate) fn nearest(
    net: &RoadNetwork,
    what: impl FnOnce() -> String,
    lat: f64,
    lon: f64,
) -> Result<(NodeId, f64), ResponseError> {
    net.nearest_node(lat, lon)
        .ok_or_else(|| ResponseError::BadPosition {
            what: what(),
            lat,
            lon,
        })
}

/// Sources snapped to the network: their nodes, start times and start distances.
#[derive(Debug, Clone)]
struct Snapped {
    starts: Vec<(NodeId, f64)>,
    start_m: Vec<f64>,
}

fn snap(net: &RoadNetwork, sources: &[Source], rule: &Rule) -> Result<Snapped, ResponseError> {
    if sources.is_empty() {
        return Err(ResponseError::NoSources);
    }
    let mut starts = Vec::with_capacity(sources.len());
    let mut start_m = Vec::with_capacity(sources.len());
    for s in sources {
        let (node, offroad_m) = nearest(net, || format!("source {}", s.id), s.lat, s.lon)?;
        starts.push((node, offroad_m / rule.offroad_mps));
        start_m.push(offroad_m);
    }
    Ok(Snapped { starts, start_m })
}

/// Evaluates the rule on every cell of `grid` from the quickest of `sources`. The result is
/// parallel to [`Grid::cells`].
///
/// # Errors
/// [`ResponseError::NoSources`], or [`ResponseError::BadPosition`] for a source whose
/// coordinates are not finite.
pub fn evaluate(
    net: &RoadNetwork,
    grid: &Grid,
    sources: &[Source],
    rule: &Rule,
) -> Result<Vec<CellReach>, ResponseError> {
    let snapped = snap(net, sources, rule)?;
    let reach = net.multi_source(&snapped.starts)?;
    Ok(grid
        .cells
        .iter()
        .map(|c| {
            let r = reach[c.node.index()];
            let time_s = r.time_s + c.offroad_m / rule.offroad_mps;
            let dist_m = r.dist_m + snapped.start_m[r.source] + c.offroad_m;
            CellReach {
                time_s,
                dist_m,
                source: r.source,
                pass: rule.passes(time_s, dist_m),
            }
        })
        .collect())
}

/// Share of the grid's area whose cells pass.
#[must_use]
pub fn passing_area_share(grid: &Grid, reach: &[CellReach]) -> f64 {
    let (mut pass, mut all) = (0.0, 0.0);
    for (c, r) in grid.cells.iter().zip(reach) {
        all += c.area_km2;
        if r.pass {
            pass += c.area_km2;
        }
    }
    if all > 0.0 { pass / all } else { 0.0 }
}

/// A cluster of adjacent failing cells.
#[derive(Debug, Clone, PartialEq)]
pub struct FailingArea {
    /// Its cells, in index order.
    pub cells: Vec<CellIndex>,
    /// Area, km².
    pub area_km2: f64,
    /// The longest time of its cells, seconds.
    pub worst_time_s: f64,
    /// The cell with that time.
    pub worst_cell: CellIndex,
    /// The outline of the cells (`x` = lon, `y` = lat).
    pub outline: MultiPolygon<f64>,
}

/// Share of some weight (incidents, people) that lies in passing cells.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeightShare {
    /// Weight inside the grid.
    pub total: f64,
    /// Weight in passing cells.
    pub passing: f64,
    /// Weight outside the grid (not counted in either).
    pub outside: f64,
}

impl WeightShare {
    /// `passing / total`, or `None` when nothing is inside the grid.
    #[must_use]
    pub fn share(&self) -> Option<f64> {
        (self.total > 0.0).then(|| self.passing / self.total)
    }
}

/// Adds weighted points (`lat`, `lon`, weight) up by the verdict of their cell.
#[must_use]
pub fn weight_share(
    grid: &Grid,
    reach: &[CellReach],
    points: impl IntoIterator<Item = (f64, f64, f64)>,
) -> WeightShare {
    let mut out = WeightShare {
        total: 0.0,
        passing: 0.0,
        outside: 0.0,
    };
    for (lat, lon, w) in points {
        match grid.locate(lat, lon) {
            Some(i) => {
                out.total += w;
                if reach[i].pass {
                    out.passing += w;
                }
            }
            None => out.outside += w,
        }
    }
    out
}

/// The static verdict in numbers: cells, area, incidents, population, failing areas.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Cells in the grid.
    pub cells: usize,
    /// Cells that pass.
    pub passing_cells: usize,
    /// Area of the grid, km².
    pub area_km2: f64,
    /// Share of that area that passes.
    pub passing_area_share: f64,
    /// Incidents by the verdict of their cell.
    pub incidents: WeightShare,
    /// People by the verdict of their cell, when a population was given.
    pub population: Option<WeightShare>,
    /// The longest time of any cell, seconds.
    pub worst_time_s: f64,
    /// Clusters of adjacent failing cells, largest first.
    pub failing_areas: Vec<FailingArea>,
}

/// Summarises a verdict: shares of area, of `incidents` (`lat`, `lon`) and of `population`
/// (`lat`, `lon`, people), and the failing areas.
///
/// # Errors
/// [`ResponseError::Dissolve`] if H3 cannot outline a failing cluster.
pub fn summarize(
    grid: &Grid,
    reach: &[CellReach],
    incidents: impl IntoIterator<Item = (f64, f64)>,
    population: Option<&[(f64, f64, f64)]>,
) -> Result<Summary, ResponseError> {
    Ok(Summary {
        cells: grid.cells.len(),
        passing_cells: reach.iter().filter(|r| r.pass).count(),
        area_km2: grid.area_km2(),
        passing_area_share: passing_area_share(grid, reach),
        incidents: weight_share(grid, reach, incidents.into_iter().map(|(a, b)| (a, b, 1.0))),
        population: population.map(|p| weight_share(grid, reach, p.iter().copied())),
        worst_time_s: reach.iter().map(|r| r.time_s).fold(0.0, f64::max),
        failing_areas: failing_areas(grid, reach)?,
    })
}

/// Groups failing cells into clusters of neighbours (sharing an edge) and outlines each.
/// Largest area first; ties by first cell.
///
/// # Errors
/// [`ResponseError::Dissolve`] if H3 cannot outline a cluster.
pub fn failing_areas(grid: &Grid, reach: &[CellReach]) -> Result<Vec<FailingArea>, ResponseError> {
    let failing = |i: usize| reach.get(i).is_some_and(|r| !r.pass);
    let mut seen = vec![false; grid.cells.len()];
    let mut areas = Vec::new();
    for start in 0..grid.cells.len() {
        if seen[start] || !failing(start) {
            continue;
        }
        seen[start] = true;
        let mut stack = vec![start];
        let mut members = Vec::new();
        while let Some(i) = stack.pop() {
            members.push(i);
            for n in grid.cells[i].cell.grid_disk::<Vec<_>>(1) {
                if let Some(&j) = grid.position.get(&n)
                    && !seen[j]
                    && failing(j)
                {
                    seen[j] = true;
                    stack.push(j);
                }
            }
        }
        members.sort_unstable();
        let worst = members
            .iter()
            .copied()
            .max_by(|&a, &b| reach[a].time_s.total_cmp(&reach[b].time_s))
            .unwrap_or(start);
        let cells: Vec<CellIndex> = members.iter().map(|&i| grid.cells[i].cell).collect();
        let outline = SolventBuilder::new()
            .build()
            .dissolve(cells.iter().copied())?;
        areas.push(FailingArea {
            area_km2: members.iter().map(|&i| grid.cells[i].area_km2).sum(),
            worst_time_s: reach[worst].time_s,
            worst_cell: grid.cells[worst].cell,
            cells,
            outline,
        });
    }
    areas.sort_by(|a, b| {
        b.area_km2
            .total_cmp(&a.area_km2)
            .then_with(|| a.cells.cmp(&b.cells))
    });
    Ok(areas)
}

/// One planning change.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A new station at a point.
    AddStation {
        /// Latitude, degrees.
        lat: f64,
        /// Longitude, degrees.
        lon: f64,
    },
    /// An existing station moved to a point.
    MoveStation {
        /// The station's id.
        id: String,
        /// New latitude, degrees.
        lat: f64,
        /// New longitude, degrees.
        lon: f64,
    },
    /// A unit posted (parked, on call) at a point.
    PostUnit {
        /// Latitude, degrees.
        lat: f64,
        /// Longitude, degrees.
        lon: f64,
    },
}

/// A what-if: changes applied to the stations before the rule is evaluated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scenario {
    /// The changes, applied in order.
    pub changes: Vec<Change>,
}

impl Scenario {
    /// The sources under this scenario: every station (moved where a change says so), then
    /// new stations `NEW1`, `NEW2`, ... and posted units `POST1`, `POST2`, ... in the order
    /// given.
    ///
    /// # Errors
    /// [`ResponseError::UnknownStation`] for a move of a station that does not exist.
    pub fn sources(&self, stations: &[Station]) -> Result<Vec<Source>, ResponseError> {
        let mut sources: Vec<Source> = stations.iter().map(Source::station).collect();
        let (mut added, mut posted) = (0, 0);
        for change in &self.changes {
            match change {
                Change::AddStation { lat, lon } => {
                    added += 1;
                    sources.push(Source {
                        id: format!("NEW{added}"),
                        lat: *lat,
                        lon: *lon,
                    });
                }
                Change::PostUnit { lat, lon } => {
                    posted += 1;
                    sources.push(Source {
                        id: format!("POST{posted}"),
                        lat: *lat,
                        lon: *lon,
                    });
                }
                Change::MoveStation { id, lat, lon } => {
                    let s = sources
                        .iter_mut()
                        .take(stations.len())
                        .find(|s| s.id == *id)
                        .ok_or_else(|| ResponseError::UnknownStation(id.clone()))?;
                    (s.lat, s.lon) = (*lat, *lon);
                }
            }
        }
        Ok(sources)
    }
}
