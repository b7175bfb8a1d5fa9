//! `patrol analyze response`: the static rule from the stations (with an optional what-if),
//! the hour-by-hour rule from units on duty, and incident reach, over one span, written by
//! the output file's extension:
//!
//! - `.geojson`: a `FeatureCollection` a map can draw: one Polygon per cell (`kind` `cell`,
//!   `cell`, `time_min`, `dist_km`, `source`, `pass`) and one MultiPolygon per failing area
//!   (`kind` `failing_area`, `cells`, `area_km2`, `worst_time_min`, `worst_cell`);
//! - `.csv`, `.parquet`: the per-cell table ([`ResponseReport::cell_table`]);
//! - `.json`: the summary ([`ResponseReport::summary_json`]).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use model::jurisdiction::{self, Jurisdiction, JurisdictionError};
use polars::prelude::*;
use serde_json::{Value, json};

use super::dynamic::{HourCoverage, IncidentReach, Tracks, WeekHour, unit_minutes};
use super::{
    CellReach, Grid, ResponseError, Rule, Scenario, Source, Summary, evaluate, hourly_coverage,
    incident_reach, summarize, week_profile,
};
use crate::AnalyticsError;
use crate::roads::{LoadReport, RoadNetwork, RoadsError, SpeedTable, SpeedTableError};

/// Default for [`ResponseJob::max_fix_age_s`]: a unit counts as available for a call when its
/// latest fix is at most five minutes old.
pub const DEFAULT_MAX_FIX_AGE_S: f64 = 300.0;

/// Why the response job failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// A jurisdiction file could not be loaded.
    #[error(transparent)]
    Jurisdiction(#[from] JurisdictionError),
    /// The jurisdiction folder has no road file.
    #[error("{}: no road network (expected one of {})", .0.display(), jurisdiction::ROAD_FILES.join(", "))]
    NoRoadFile(PathBuf),
    /// `[speeds_kmh]` is not a valid speed table.
    #[error("jurisdiction.toml [speeds_kmh]: {0}")]
    Speeds(#[from] SpeedTableError),
    /// The road network could not be loaded.
    #[error("{}: {source}", path.display())]
    Roads {
        /// The road file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: RoadsError,
    },
    /// The rule could not be evaluated.
    #[error(transparent)]
    Response(#[from] ResponseError),
    /// Reading the store or writing a table failed.
    #[error(transparent)]
    Analytics(#[from] AnalyticsError),
    /// Polars failed while reading the pings.
    #[error("polars: {0}")]
    Polars(#[from] PolarsError),
    /// `from` is not before `to`.
    #[error("the span is empty: from {from} is not before to {to}")]
    EmptySpan {
        /// Start.
        from: DateTime<Utc>,
        /// End.
        to: DateTime<Utc>,
    },
    /// Writing the output failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The output's extension is not one this job writes.
    #[error("{}: the output must end in .geojson, .csv, .parquet or .json", .0.display())]
    OutputFormat(PathBuf),
}

/// The parameters of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseJob {
    /// Jurisdiction folder.
    pub fixtures: PathBuf,
    /// Store folder (its `pings` table gives the units on duty; absent or empty means none).
    pub store: PathBuf,
    /// Start of the span (inclusive).
    pub from: DateTime<Utc>,
    /// End of the span (exclusive).
    pub to: DateTime<Utc>,
    /// H3 resolution; `None` takes `[h3] analysis_res`.
    pub res: Option<u8>,
    /// What-if changes to the stations.
    pub scenario: Scenario,
    /// Incidents file in the columns of `incidents.csv`; `None` takes the jurisdiction's.
    pub incidents: Option<PathBuf>,
    /// Oldest fix, in seconds, that makes a unit available for an incident.
    pub max_fix_age_s: f64,
}

impl ResponseJob {
    /// A run over `[from, to)` with the jurisdiction's resolution, no what-if and
    /// [`DEFAULT_MAX_FIX_AGE_S`].
    #[must_use]
    pub fn new(fixtures: &Path, store: &Path, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        Self {
            fixtures: fixtures.to_owned(),
            store: store.to_owned(),
            from,
            to,
            res: None,
            scenario: Scenario::default(),
            incidents: None,
            max_fix_age_s: DEFAULT_MAX_FIX_AGE_S,
        }
    }

    /// Loads the inputs, evaluates everything and returns the report.
    ///
    /// # Errors
    /// A [`JobError`] naming the file or step that failed.
    pub fn run(&self) -> Result<ResponseReport, JobError> {
        self.run_on(&Jurisdiction::load(&self.fixtures)?)
    }

    /// As [`ResponseJob::run`], on a jurisdiction already loaded from `fixtures`.
    ///
    /// # Errors
    /// A [`JobError`] naming the file or step that failed.
    pub fn run_on(&self, j: &Jurisdiction) -> Result<ResponseReport, JobError> {
        if self.from >= self.to {
            return Err(JobError::EmptySpan {
                from: self.from,
                to: self.to,
            });
        }
        let settings = j.settings();
        let roads = j
            .roads_path()
            .ok_or_else(|| JobError::NoRoadFile(self.fixtures.clone()))?;
        let net =
            RoadNetwork::load(&roads, &SpeedTable::for_settings(settings)?).map_err(|source| {
                JobError::Roads {
                    path: roads.clone(),
                    source,
                }
            })?;
        let res = self.res.unwrap_or(settings.h3.analysis_res);
        let grid = Grid::new(&net, j.county(), res)?;
        let rule = Rule::from_settings(&settings.response);

        let sources = self.scenario.sources(j.stations())?;
        let cells = evaluate(&net, &grid, &sources, &rule)?;
        let incidents_path = self.incidents.clone().unwrap_or_else(|| j.incidents_path());
        let incidents: Vec<_> = jurisdiction::load_incidents(&incidents_path)?
            .into_iter()
            .filter(|i| i.received >= self.from && i.received < self.to)
            .collect();
        let population = match j.population_path() {
            Some(p) => Some(jurisdiction::load_population(&p)?),
            None => None,
        };
        let summary = summarize(
            &grid,
            &cells,
            incidents.iter().map(|i| (i.lat, i.lon)),
            population.as_deref(),
        )?;

        let tracks = self.tracks()?;
        let hours = hourly_coverage(&net, &grid, &rule, &tracks, self.from, self.to)?;
        let week = week_profile(&hours, j.timezone());
        let reach = incident_reach(&net, &rule, &tracks, &incidents, self.max_fix_age_s)?;
        Ok(ResponseReport {
            jurisdiction: settings.name.clone(),
            roads,
            load: net.report().clone(),
            rule,
            from: self.from,
            to: self.to,
            res,
            sources,
            grid,
            cells,
            summary,
            units_seen: tracks.units().len(),
            hours,
            week,
            incidents: reach,
        })
    }

    /// The units' fixes in the span, thinned to one a minute; empty when the store has no
    /// pings.
    fn tracks(&self) -> Result<Tracks, JobError> {
        let pings = match crate::store::scan_pings(&self.store) {
            Ok(lf) => lf,
            Err(AnalyticsError::NoPings(_)) => return Ok(Tracks::default()),
            Err(e) => return Err(e.into()),
        };
        let df = unit_minutes(
            pings,
            self.from.timestamp_millis(),
            self.to.timestamp_millis(),
        )
        .collect()?;
        Ok(Tracks::from_frame(&df)?)
    }
}

/// How a span's incidents were reached by the units on duty.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IncidentFigures {
    /// Incidents received in the span.
    pub received: usize,
    /// Of those, with a unit available (a fix at most [`ResponseJob::max_fix_age_s`] old).
    pub with_unit_available: usize,
    /// Median minutes from the nearest available unit.
    pub median_time_min: Option<f64>,
    /// Incidents whose nearest available unit was within the rule.
    pub passing: usize,
    /// `passing` over `with_unit_available`.
    pub passing_share: Option<f64>,
}

/// Everything one run found.
#[derive(Debug, Clone)]
pub struct ResponseReport {
    /// Jurisdiction name.
    pub jurisdiction: String,
    /// The road file read.
    pub roads: PathBuf,
    /// What loading it kept.
    pub load: LoadReport,
    /// The rule applied.
    pub rule: Rule,
    /// Start of the span.
    pub from: DateTime<Utc>,
    /// End of the span.
    pub to: DateTime<Utc>,
    /// H3 resolution of the grid.
    pub res: u8,
    /// The static sources: stations after the what-if.
    pub sources: Vec<Source>,
    /// The cells.
    pub grid: Grid,
    /// The static verdict, parallel to the grid's cells.
    pub cells: Vec<CellReach>,
    /// Its summary.
    pub summary: Summary,
    /// Units with at least one fix in the span.
    pub units_seen: usize,
    /// The rule from units on duty, hour by hour.
    pub hours: Vec<HourCoverage>,
    /// The same folded onto the 168 hours of a week.
    pub week: Vec<WeekHour>,
    /// Incidents received in the span and the nearest available unit.
    pub incidents: Vec<IncidentReach>,
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

impl ResponseReport {
    /// The per-cell table: `cell` (H3 hex), `lat`, `lon`, `area_km2`, `offroad_m`,
    /// `time_min`, `dist_km`, `source` (id), `pass`.
    ///
    /// # Errors
    /// A polars error if the frame cannot be built.
    pub fn cell_table(&self) -> PolarsResult<DataFrame> {
        let g = self.grid.cells();
        df!(
            "cell" => g.iter().map(|c| c.cell.to_string()).collect::<Vec<_>>(),
            "lat" => g.iter().map(|c| c.lat).collect::<Vec<_>>(),
            "lon" => g.iter().map(|c| c.lon).collect::<Vec<_>>(),
            "area_km2" => g.iter().map(|c| c.area_km2).collect::<Vec<_>>(),
            "offroad_m" => g.iter().map(|c| c.offroad_m).collect::<Vec<_>>(),
            "time_min" => self.cells.iter().map(|r| r.time_s / 60.0).collect::<Vec<_>>(),
            "dist_km" => self.cells.iter().map(|r| r.dist_m / 1000.0).collect::<Vec<_>>(),
            "source" => self
                .cells
                .iter()
                .map(|r| self.sources[r.source].id.clone())
                .collect::<Vec<_>>(),
            "pass" => self.cells.iter().map(|r| r.pass).collect::<Vec<_>>(),
        )
    }

    /// The summary as JSON: the rule, the static verdict (shares of area, incidents and
    /// population; failing areas with their worst time), the week profile from units on duty
    /// and the incident reach figures.
    #[must_use]
    pub fn summary_json(&self) -> Value {
        let s = &self.summary;
        let share = |w: &super::WeightShare| {
            json!({
                "inside": w.total, "passing": w.passing, "outside": w.outside,
                "passing_share": w.share(),
            })
        };
        let areas: Vec<Value> = s
            .failing_areas
            .iter()
            .map(|a| {
                json!({
                    "cells": a.cells.len(),
                    "area_km2": round(a.area_km2, 3),
                    "worst_time_min": round(a.worst_time_s / 60.0, 2),
                    "worst_cell": a.worst_cell.to_string(),
                })
            })
            .collect();
        let week: Vec<Value> = self
            .week
            .iter()
            .map(|w| {
                json!({
                    "weekday": w.weekday, "hour": w.hour, "samples": w.samples,
                    "mean_share": w.mean_share, "min_share": w.min_share,
                    "mean_units": w.mean_units,
                })
            })
            .collect();
        let inc = self.incident_figures();
        json!({
            "job": "response",
            "jurisdiction": self.jurisdiction,
            "from": self.from.to_rfc3339(),
            "to": self.to.to_rfc3339(),
            "res": self.res,
            "rule": {
                "max_minutes": self.rule.max_time_s / 60.0,
                "max_km": self.rule.max_dist_m / 1000.0,
                "offroad_kmh": self.rule.offroad_mps * 3.6,
            },
            "roads": {
                "file": self.roads.display().to_string(),
                "nodes": self.load.nodes, "edges": self.load.edges,
                "dropped_nodes": self.load.dropped_nodes,
            },
            "static": {
                "sources": self.sources.iter().map(|s| json!({"id": s.id, "lat": s.lat, "lon": s.lon})).collect::<Vec<_>>(),
                "cells": s.cells,
                "passing_cells": s.passing_cells,
                "area_km2": round(s.area_km2, 3),
                "passing_area_share": s.passing_area_share,
                "incidents": share(&s.incidents),
                "population": s.population.as_ref().map(share),
                "worst_time_min": round(s.worst_time_s / 60.0, 2),
                "failing_areas": areas,
            },
            "dynamic": {
                "units_seen": self.units_seen,
                "hours": self.hours.len(),
                "week": week,
            },
            "incidents": {
                "received": inc.received,
                "with_unit_available": inc.with_unit_available,
                "median_time_min": inc.median_time_min,
                "passing": inc.passing,
                "passing_share": inc.passing_share,
            },
        })
    }

    /// How the span's incidents were reached by the units on duty.
    #[must_use]
    pub fn incident_figures(&self) -> IncidentFigures {
        let mut times: Vec<f64> = self.incidents.iter().filter_map(|i| i.time_s).collect();
        times.sort_by(f64::total_cmp);
        let with_unit_available = times.len();
        let passing = self
            .incidents
            .iter()
            .filter(|i| i.pass == Some(true))
            .count();
        IncidentFigures {
            received: self.incidents.len(),
            with_unit_available,
            median_time_min: times
                .get(with_unit_available / 2)
                .map(|t| round(t / 60.0, 2)),
            passing,
            passing_share: (with_unit_available > 0)
                .then(|| passing as f64 / with_unit_available as f64),
        }
    }

    /// The map: cell Polygons and failing-area MultiPolygons with their properties.
    #[must_use]
    pub fn geojson(&self) -> Value {
        let mut features = Vec::with_capacity(self.cells.len() + self.summary.failing_areas.len());
        for (c, r) in self.grid.cells().iter().zip(&self.cells) {
            let outline = geo::MultiPolygon::from(c.cell);
            features.push(json!({
                "type": "Feature",
                "properties": {
                    "kind": "cell",
                    "cell": c.cell.to_string(),
                    "time_min": round(r.time_s / 60.0, 2),
                    "dist_km": round(r.dist_m / 1000.0, 3),
                    "source": self.sources[r.source].id,
                    "pass": r.pass,
                },
                "geometry": geojson::Geometry::from(&outline),
            }));
        }
        for a in &self.summary.failing_areas {
            features.push(json!({
                "type": "Feature",
                "properties": {
                    "kind": "failing_area",
                    "cells": a.cells.len(),
                    "area_km2": round(a.area_km2, 3),
                    "worst_time_min": round(a.worst_time_s / 60.0, 2),
                    "worst_cell": a.worst_cell.to_string(),
                },
                "geometry": geojson::Geometry::from(&a.outline),
            }));
        }
        json!({"type": "FeatureCollection", "features": features})
    }

    /// Writes the report by the extension of `path` (see the module docs).
    ///
    /// # Errors
    /// [`JobError::OutputFormat`] for another extension, or the write error.
    pub fn write(&self, path: &Path) -> Result<(), JobError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let value = match ext.as_deref() {
            Some("csv" | "parquet") => {
                crate::output::write_table(&mut self.cell_table()?, path)?;
                return Ok(());
            }
            Some("geojson") => self.geojson(),
            Some("json") => self.summary_json(),
            _ => return Err(JobError::OutputFormat(path.to_owned())),
        };
        let io = |source| JobError::Io {
            path: path.to_owned(),
            source,
        };
        let mut w = BufWriter::new(File::create(path).map_err(io)?);
        serde_json::to_writer(&mut w, &value).map_err(|e| io(e.into()))?;
        w.write_all(b"\n").map_err(io)?;
        w.flush().map_err(io)
    }
}
