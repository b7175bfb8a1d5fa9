//! The one entry point of the analytics jobs: a [`Job`], a typed [`Request`], and [`run`], which
//! answers with typed tables ([`Output`]). `patrol analyze`, the HTTP analytics routes and the
//! weekly report all call [`run`]; none of them parses flags twice or reads a job's answer back
//! from a file.
//!
//! Every table a job returns has a declared schema ([`TableKind::columns`]: names, order and
//! polars types), and [`run`] checks each table against it before answering. A job that renames
//! or retypes a column fails there, and the tests run every job over the fixture county, so
//! a reader (the report, a notebook) that names a column never reads one that is not there.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, Utc};
use model::jurisdiction::{HotspotSettings, Jurisdiction, load_incidents};
use polars::prelude::{Column, DataFrame, DataType};

use crate::compliance::ComplianceInputs;
use crate::coverage::{FenceCells, fence_cells};
use crate::forecast::{
    self, Choice, Events, ForecastInput, Grid, Method, Slot, SlotForecast, Weeks,
};
use crate::gaps::GapAdvice;
use crate::hotspots::{HotspotParams, IncidentPoint, StudyArea};
use crate::presence::{GapInputs, patrol_tables};
use crate::response::{ResponseJob, ResponseReport, Scenario};
use crate::{AnalyticsError, JobContext, dosage, store};

/// An analytics job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Job {
    /// Patrol minutes per cell, window and unit.
    Dosage,
    /// Share of each beat and zone patrolled per window.
    Coverage,
    /// Dosage, coverage and gaps from one read of the pings.
    Presence,
    /// Incident hot spots (Gi*, KDE) per time slot.
    Hotspots,
    /// Hot cells that patrols rarely reach, ranked.
    Gaps,
    /// Patrol visits to the hot spots and their lengths (the Koper curve).
    Koper,
    /// Response to each incident by the nearest tracked unit, straight line.
    Incidents,
    /// Roster, force level and checkpoint compliance.
    Compliance,
    /// The 30 km / 30 minute response rule on the road network.
    Response,
    /// Hot-spot forecast methods scored week by week against the naive baseline.
    Backtest,
}

impl Job {
    /// Every job, in the order the command line lists them.
    pub const ALL: [Job; 10] = [
        Job::Dosage,
        Job::Coverage,
        Job::Presence,
        Job::Hotspots,
        Job::Gaps,
        Job::Koper,
        Job::Incidents,
        Job::Compliance,
        Job::Response,
        Job::Backtest,
    ];

    /// The job's name on the command line and in the routes.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Job::Dosage => "dosage",
            Job::Coverage => "coverage",
            Job::Presence => "presence",
            Job::Hotspots => "hotspots",
            Job::Gaps => "gaps",
            Job::Koper => "koper",
            Job::Incidents => "incidents",
            Job::Compliance => "compliance",
            Job::Response => "response",
            Job::Backtest => "backtest",
        }
    }

    /// The tables the job answers with, its main one first.
    #[must_use]
    pub const fn tables(self) -> &'static [TableKind] {
        match self {
            Job::Dosage => &[TableKind::Dosage],
            Job::Coverage => &[TableKind::Coverage],
            Job::Presence => &[TableKind::Dosage, TableKind::Coverage, TableKind::Gaps],
            Job::Hotspots => &[TableKind::Hotspots],
            Job::Gaps => &[TableKind::Gaps],
            Job::Koper => &[TableKind::Koper],
            Job::Incidents => &[TableKind::Incidents],
            Job::Compliance => &[TableKind::Patrols, TableKind::Force, TableKind::Checkpoints],
            Job::Response => &[TableKind::ResponseCells],
            Job::Backtest => &[TableKind::BacktestWeeks, TableKind::BacktestSummary],
        }
    }
}

impl fmt::Display for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A job name that names no job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}: not an analytics job (one of {names})", names = Job::ALL.map(Job::name).join(", "))]
pub struct UnknownJob(pub String);

impl FromStr for Job {
    type Err = UnknownJob;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Job::ALL
            .into_iter()
            .find(|j| j.name() == s)
            .ok_or_else(|| UnknownJob(s.to_owned()))
    }
}

/// The polars type of a declared column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// `Boolean`.
    Bool,
    /// `UInt32`.
    U32,
    /// `UInt64` (H3 cells as integers).
    U64,
    /// `Int8`.
    I8,
    /// `Int64`.
    I64,
    /// `Float64`.
    F64,
    /// `String`.
    Text,
    /// `Date`.
    Date,
}

impl ColumnType {
    fn dtype(self) -> DataType {
        match self {
            ColumnType::Bool => DataType::Boolean,
            ColumnType::U32 => DataType::UInt32,
            ColumnType::U64 => DataType::UInt64,
            ColumnType::I8 => DataType::Int8,
            ColumnType::I64 => DataType::Int64,
            ColumnType::F64 => DataType::Float64,
            ColumnType::Text => DataType::String,
            ColumnType::Date => DataType::Date,
        }
    }
}

/// A table a job answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableKind {
    /// [`crate::dosage::dosage`].
    Dosage,
    /// [`crate::coverage::coverage`].
    Coverage,
    /// [`crate::gaps::gaps`].
    Gaps,
    /// [`crate::hotspots::hotspots`].
    Hotspots,
    /// [`crate::koper::koper`].
    Koper,
    /// [`crate::incidents::incident_response`].
    Incidents,
    /// Compliance: one row per roster entry.
    Patrols,
    /// Compliance: force per date, window and zone.
    Force,
    /// Compliance: checkpoint visits per night.
    Checkpoints,
    /// The response rule per cell ([`ResponseReport::cell_table`]).
    ResponseCells,
    /// Backtest: one row per week, slot and method.
    BacktestWeeks,
    /// Backtest: one row per slot and method, the chosen one marked.
    BacktestSummary,
}

impl TableKind {
    /// The table's name: the suffix of its file beside the main one (`week-gaps.csv`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            TableKind::Dosage => "dosage",
            TableKind::Coverage => "coverage",
            TableKind::Gaps => "gaps",
            TableKind::Hotspots => "hotspots",
            TableKind::Koper => "koper",
            TableKind::Incidents => "incidents",
            TableKind::Patrols => "patrols",
            TableKind::Force => "force",
            TableKind::Checkpoints => "checkpoints",
            TableKind::ResponseCells => "cells",
            TableKind::BacktestWeeks => "weeks",
            TableKind::BacktestSummary => "summary",
        }
    }

    /// The table's columns in order, with their types.
    #[must_use]
    pub const fn columns(self) -> &'static [(&'static str, ColumnType)] {
        use ColumnType::{Bool, Date, F64, I8, I64, Text, U32, U64};
        match self {
            TableKind::Dosage => &[
                ("date", Date),
                ("window", Text),
                ("kind", Text),
                ("cell", U64),
                ("ms", I64),
                ("minutes", F64),
            ],
            TableKind::Coverage => &[
                ("fence_kind", Text),
                ("fence", Text),
                ("date", Date),
                ("window", Text),
                ("window_minutes", F64),
                ("cells", U32),
                ("cells_visited", U32),
                ("coverage", F64),
                ("patrol_minutes", F64),
                ("distance_km", F64),
                ("units", U32),
                ("visible_minutes", U32),
                ("visibility", F64),
            ],
            TableKind::Gaps => &[
                ("rank", U32),
                ("cell", U64),
                ("lat", F64),
                ("lon", F64),
                ("beat", Text),
                ("window", Text),
                ("box", Text),
                ("box_cells", U32),
                ("box_incidents", U32),
                ("incidents", U32),
                ("incident_share", F64),
                ("forecast_week", F64),
                ("forecast_hot", Bool),
                ("dosage_minutes_week", F64),
                ("dosage_share", F64),
                ("gap", F64),
                ("asked_minutes_week", F64),
                ("extra_minutes_week", F64),
                ("visits_week", U32),
                ("visit_minutes", F64),
                ("visits_capped", Bool),
                ("cap", Text),
                ("prevented_week", F64),
            ],
            TableKind::Hotspots => &[
                ("slot_kind", Text),
                ("slot", Text),
                ("cell", U64),
                ("lat", F64),
                ("lon", F64),
                ("incidents", U32),
                ("kde", F64),
                ("gi_z", F64),
                ("p", F64),
                ("q", F64),
                ("bin", I8),
                ("forecast", F64),
                ("forecast_hot", Bool),
            ],
            TableKind::Koper => &[
                ("cell", U64),
                ("lat", F64),
                ("lon", F64),
                ("visits", U32),
                ("minutes", F64),
                ("mean_minutes", F64),
                ("median_minutes", F64),
                ("max_minutes", F64),
                ("share_10_15", F64),
                ("lt2", U32),
                ("m2_5", U32),
                ("m5_10", U32),
                ("m10_15", U32),
                ("gt15", U32),
                ("longest_gap_minutes", F64),
            ],
            TableKind::Incidents => &[
                ("id", Text),
                ("received", Text),
                ("category", Text),
                ("priority", U32),
                ("units_on_duty", U32),
                ("nearest_unit", Text),
                ("nearest_km", F64),
                ("unit", Text),
                ("unit_km", F64),
                ("received_to_dispatched_s", F64),
                ("dispatched_to_arrived_s", F64),
                ("arrived_track", Text),
                ("on_scene_minutes", F64),
                ("track_minus_reported_s", F64),
            ],
            TableKind::Patrols => &[
                ("date", Text),
                ("unit", Text),
                ("kind", Text),
                ("zone", Text),
                ("window", Text),
                ("shift_minutes", F64),
                ("tracked_minutes", F64),
                ("in_zone_minutes", F64),
                ("in_zone_share", F64),
                ("on_patrol", Bool),
                ("minutes_short", F64),
                ("cut_short", Bool),
                ("crew", U32),
                ("group_ok", Bool),
                ("data", Text),
            ],
            TableKind::Force => &[
                ("date", Text),
                ("window", Text),
                ("zone", Text),
                ("level", U32),
                ("level_share", F64),
                ("required", U32),
                ("rostered", U32),
                ("on_patrol", U32),
                ("ok", Bool),
                ("without_data", U32),
            ],
            TableKind::Checkpoints => &[
                ("date", Text),
                ("checkpoint", Text),
                ("name", Text),
                ("window", Text),
                ("visited", Bool),
                ("unit", Text),
                ("first_visit", Text),
                ("longest_dwell_s", F64),
                ("min_dwell_s", U32),
                ("status", Text),
            ],
            TableKind::ResponseCells => &[
                ("cell", Text),
                ("lat", F64),
                ("lon", F64),
                ("area_km2", F64),
                ("offroad_m", F64),
                ("time_min", F64),
                ("dist_km", F64),
                ("source", Text),
                ("pass", Bool),
            ],
            TableKind::BacktestWeeks => &[
                ("slot", Text),
                ("method", Text),
                ("week", Text),
                ("rings", U32),
                ("train_incidents", F64),
                ("test_incidents", F64),
                ("cells", U32),
                ("captured", F64),
                ("area_share", F64),
                ("pai", F64),
                ("pei", F64),
                ("rri", F64),
            ],
            TableKind::BacktestSummary => &[
                ("slot", Text),
                ("method", Text),
                ("weeks", U32),
                ("mean_pai", F64),
                ("mean_pei", F64),
                ("mean_rri", F64),
                ("beats_naive", U32),
                ("ties_naive", U32),
                ("chosen", Bool),
            ],
        }
    }

    /// Checks `frame` against [`TableKind::columns`].
    ///
    /// # Errors
    /// [`AnalyticsError::Schema`] naming the first difference.
    pub fn check(self, frame: &DataFrame) -> Result<(), AnalyticsError> {
        let declared = self.columns();
        let found: Vec<(String, DataType)> = frame
            .columns()
            .iter()
            .map(|c| (c.name().to_string(), c.dtype().clone()))
            .collect();
        let differs = found.len() != declared.len()
            || found
                .iter()
                .zip(declared)
                .any(|((name, dtype), (want, kind))| name != want || *dtype != kind.dtype());
        if differs {
            let show = |cols: Vec<String>| cols.join(", ");
            return Err(AnalyticsError::Schema(format!(
                "the {} table has columns [{}], declared [{}]",
                self.name(),
                show(found.iter().map(|(n, t)| format!("{n}: {t}")).collect()),
                show(
                    declared
                        .iter()
                        .map(|(n, k)| format!("{n}: {}", k.dtype()))
                        .collect()
                ),
            )));
        }
        Ok(())
    }
}

/// What a job is asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The job.
    pub job: Job,
    /// Span start, UTC epoch ms (included).
    pub from_ms: i64,
    /// Span end, UTC epoch ms (excluded).
    pub to_ms: i64,
    /// H3 resolution of the analysis; `None` takes `[h3] analysis_res`.
    pub res: Option<u8>,
    /// gaps, presence: how many gaps to list.
    pub top: usize,
    /// dosage, coverage, gaps, presence: most fixes read in one pass.
    pub pass_fixes: u64,
    /// Incidents in the columns of `incidents.csv`; `None` takes the jurisdiction's.
    pub incidents: Option<PathBuf>,
    /// response: what-if changes to the stations.
    pub scenario: Scenario,
}

/// Default of [`Request::top`].
pub const DEFAULT_TOP: usize = 25;

impl Request {
    /// `job` over `[from_ms, to_ms)` with the defaults of `patrol analyze`.
    #[must_use]
    pub fn new(job: Job, from_ms: i64, to_ms: i64) -> Self {
        Self {
            job,
            from_ms,
            to_ms,
            res: None,
            top: DEFAULT_TOP,
            pass_fixes: crate::context::DEFAULT_PASS_FIXES,
            incidents: None,
            scenario: Scenario::default(),
        }
    }
}

/// One table of an answer.
#[derive(Debug, Clone)]
pub struct Table {
    /// Which table.
    pub kind: TableKind,
    /// Its rows, in the declared schema.
    pub frame: DataFrame,
}

/// A job's answer.
#[derive(Debug, Clone)]
pub struct Output {
    /// The job that answered.
    pub job: Job,
    /// Its tables in the order of [`Job::tables`].
    pub tables: Vec<Table>,
    /// response: everything the rule found (maps, summary, hours), beyond its cell table.
    pub response: Option<Box<ResponseReport>>,
    /// Findings worth a line on the console (the hot spots' out-of-sample score, ...).
    pub notes: Vec<String>,
    /// backtest: the method it chose per slot, for `patrol analyze backtest` to save.
    pub choice: Option<Choice>,
}

impl Output {
    /// The job's main table.
    #[must_use]
    pub fn main(&self) -> &DataFrame {
        &self.tables[0].frame
    }

    /// The table of `kind`.
    ///
    /// # Errors
    /// [`AnalyticsError::Invalid`] when the job does not answer with that table.
    pub fn table(&self, kind: TableKind) -> Result<&DataFrame, AnalyticsError> {
        self.tables
            .iter()
            .find(|t| t.kind == kind)
            .map(|t| &t.frame)
            .ok_or_else(|| {
                AnalyticsError::Invalid(format!(
                    "the {} job has no {} table",
                    self.job,
                    kind.name()
                ))
            })
    }
}

fn incident_points(j: &Jurisdiction, req: &Request) -> Result<Vec<IncidentPoint>, AnalyticsError> {
    let path = req.incidents.clone().unwrap_or_else(|| j.incidents_path());
    Ok(load_incidents(&path)?
        .iter()
        .map(|i| IncidentPoint {
            t_ms: i.received.timestamp_millis(),
            lat: i.lat,
            lon: i.lon,
        })
        .collect())
}

fn utc(ms: i64) -> Result<DateTime<Utc>, AnalyticsError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| AnalyticsError::Invalid(format!("time {ms} ms is out of range")))
}

/// Runs `req` over the jurisdiction `j` and the store at `store`.
///
/// # Errors
/// A bad parameter, an unreadable file, a failed query, or a table that differs from its
/// declared schema.
pub fn run(j: &Jurisdiction, store: &Path, req: &Request) -> Result<Output, AnalyticsError> {
    if req.pass_fixes == 0 {
        return Err(AnalyticsError::Invalid(
            "the pass size (fixes per pass) must be positive".into(),
        ));
    }
    let mut notes = Vec::new();
    let mut response = None;
    let mut choice = None;
    let tables = if req.job == Job::Response {
        let mut job = ResponseJob::new(j.dir(), store, utc(req.from_ms)?, utc(req.to_ms)?);
        job.res = req.res;
        job.scenario = req.scenario.clone();
        job.incidents.clone_from(&req.incidents);
        let report = job
            .run_on(j)
            .map_err(|e| AnalyticsError::Response(Box::new(e)))?;
        let cells = report.cell_table()?;
        response = Some(Box::new(report));
        vec![cells]
    } else {
        let mut ctx = JobContext::for_jurisdiction(j, req.from_ms, req.to_ms, req.res)?;
        ctx.pass_fixes = req.pass_fixes;
        if req.job == Job::Backtest {
            let b = backtest_job(j, req, &ctx)?;
            notes.extend(b.notes());
            choice = Some(b.backtest.choice());
            b.tables()?
        } else {
            patrol_job(j, store, req, &ctx, &mut notes)?
        }
    };
    let tables = req
        .job
        .tables()
        .iter()
        .zip(tables)
        .map(|(&kind, frame)| {
            kind.check(&frame)?;
            Ok(Table { kind, frame })
        })
        .collect::<Result<Vec<_>, AnalyticsError>>()?;
    Ok(Output {
        job: req.job,
        tables,
        response,
        notes,
        choice,
    })
}

/// The patrol jobs (all but response): their tables in the order of [`Job::tables`].
fn patrol_job(
    j: &Jurisdiction,
    store: &Path,
    req: &Request,
    ctx: &JobContext,
    notes: &mut Vec<String>,
) -> Result<Vec<DataFrame>, AnalyticsError> {
    let units = || dosage::units_table(j.units());
    let pings = || store::scan_pings(store);
    let area = || StudyArea::from_polygons(j.county(), ctx.res);
    let beats = || fence_cells("beat", &j.catalog().beats, ctx.res);
    let beats_and_zones = || -> Result<Vec<FenceCells>, AnalyticsError> {
        let mut all = beats()?;
        all.extend(fence_cells("zone", &j.catalog().zones, ctx.res)?);
        Ok(all)
    };
    Ok(match req.job {
        Job::Dosage => vec![dosage::dosage(ctx, pings()?, units()?)?],
        Job::Coverage => vec![crate::coverage::coverage(
            ctx,
            pings()?,
            units()?,
            &beats_and_zones()?,
        )?],
        Job::Presence => {
            let area = area()?;
            let points = incident_points(j, req)?;
            let outlook = Outlook::new(j, &area, &points, req.to_ms).with_saved_choice(store)?;
            let forecasts = outlook.next_week(req.to_ms)?;
            let gaps = GapInputs {
                area: &area,
                incidents: &points,
                top: req.top,
                advice: GapAdvice {
                    forecasts: &forecasts,
                    settings: outlook.settings,
                },
            };
            let t = patrol_tables(ctx, pings()?, &units()?, &beats_and_zones()?, &gaps)?;
            vec![t.dosage, t.coverage, t.gaps]
        }
        Job::Hotspots => {
            let area = area()?;
            let points = incident_points(j, req)?;
            let outlook = Outlook::new(j, &area, &points, req.to_ms).with_saved_choice(store)?;
            notes.extend(outlook.notes(ctx)?);
            let forecasts = outlook.next_week(req.to_ms)?;
            vec![crate::hotspots::hotspots(
                ctx,
                &outlook.grid,
                &points,
                HotspotParams::from(outlook.settings),
                &forecasts,
            )?]
        }
        Job::Gaps => {
            let area = area()?;
            let points = incident_points(j, req)?;
            let outlook = Outlook::new(j, &area, &points, req.to_ms).with_saved_choice(store)?;
            let forecasts = outlook.next_week(req.to_ms)?;
            vec![crate::gaps::gaps(
                ctx,
                pings()?,
                units()?,
                &area,
                &points,
                &beats()?,
                req.top,
                GapAdvice {
                    forecasts: &forecasts,
                    settings: outlook.settings,
                },
            )?]
        }
        Job::Koper => {
            let area = area()?;
            let points = incident_points(j, req)?;
            let params = HotspotParams::from(&j.settings().hotspots);
            let hot = crate::hotspots::hot_cells(ctx, &area, &points, params, 2);
            notes.push(format!("{} hot-spot cells (Gi* hot at 95 %)", hot.len()));
            vec![crate::koper::koper(ctx, pings()?, &hot)?]
        }
        Job::Incidents => {
            let path = req.incidents.clone().unwrap_or_else(|| j.incidents_path());
            let rows = load_incidents(&path)?;
            vec![crate::incidents::incident_response(
                ctx,
                pings()?,
                &rows,
                j.roster(),
            )?]
        }
        Job::Compliance => {
            let inputs = ComplianceInputs {
                roster: j.roster(),
                units: j.units(),
                zones: &j.catalog().zones,
                beats: &j.catalog().beats,
                checkpoints: j.checkpoints(),
                levels: j.settings().levels,
            };
            let c = crate::compliance::compliance(ctx, pings()?, inputs)?;
            vec![c.patrols, c.force, c.checkpoints]
        }
        Job::Response | Job::Backtest => {
            return Err(AnalyticsError::Invalid(format!(
                "{} is not a patrol job",
                req.job
            )));
        }
    })
}

/// The incidents before a span's end on its study area, with what forecasts need.
struct Outlook<'a> {
    grid: Grid<'a>,
    events: Events,
    weeks: Weeks,
    slots: Vec<Slot>,
    settings: &'a HotspotSettings,
    /// The methods `patrol analyze backtest` saved in the store, read once.
    saved: Option<Choice>,
}

impl<'a> Outlook<'a> {
    fn new(j: &'a Jurisdiction, area: &'a StudyArea, points: &[IncidentPoint], to_ms: i64) -> Self {
        let settings = &j.settings().hotspots;
        let before = points
            .iter()
            .filter(|p| p.t_ms < to_ms)
            .map(|p| (p.t_ms, p.lat, p.lon));
        Self {
            grid: Grid::new(area, ForecastInput::rings_needed(settings)),
            events: Events::place(area, before),
            weeks: Weeks::new(j.timezone()),
            slots: Slot::all_and_windows(j.timezone(), &j.settings().windows),
            settings,
            saved: None,
        }
    }

    /// The outlook with the methods saved in `store`.
    fn with_saved_choice(mut self, store: &Path) -> Result<Self, AnalyticsError> {
        self.saved = Choice::load(store)?;
        Ok(self)
    }

    /// Next week's forecasts with the saved methods (or the settings' default).
    fn next_week(
        &self,
        to_ms: i64,
    ) -> Result<BTreeMap<(String, String), SlotForecast>, AnalyticsError> {
        forecast::next_week(&self.input(), &self.slots, self.saved.as_ref(), to_ms)
    }

    fn input(&self) -> ForecastInput<'_, 'a> {
        ForecastInput {
            grid: &self.grid,
            events: &self.events,
            weeks: self.weeks,
            settings: self.settings,
        }
    }

    /// The incidents left out, and the forecast of the span's last whole local week scored
    /// against the naive one: the honest check of the hot spots the table shows.
    fn notes(&self, ctx: &JobContext) -> Result<Vec<String>, AnalyticsError> {
        let mut notes = vec![outside_note(&self.events)];
        let Some(week) = self.weeks.within(ctx.from_ms, ctx.to_ms).last().copied() else {
            notes.push("no whole local week in the span to score a forecast on".into());
            return Ok(notes);
        };
        let all = &self.slots[..1];
        let method = Choice::method(self.saved.as_ref(), "all", self.settings)?;
        let b = forecast::backtest(
            &self.input(),
            all,
            self.weeks.start(week, 0),
            self.weeks.start(week, 1),
        );
        let score = |m: Method| b.weeks.iter().find(|w| w.method == m).map(|w| w.score);
        let name = forecast::week_name(week);
        match (score(method), score(Method::Naive)) {
            (Some(s), Some(naive)) => notes.push(format!(
                "forecast of {name} by `{}` from the {} weeks before it, top {:.0}% of {} cells: \
                 {:.1} of {} incidents: PAI {}, PEI {} (naive counts: PAI {})",
                method.name(),
                self.settings.training_weeks,
                self.settings.top_share * 100.0,
                self.grid.len(),
                s.captured,
                s.incidents,
                fmt_opt(s.pai),
                fmt_opt(s.pei),
                fmt_opt(naive.pai),
            )),
            _ => notes.push(format!(
                "{name} not scored: its {} training weeks start before the first incident",
                self.settings.training_weeks
            )),
        }
        Ok(notes)
    }
}

/// A figure, or "undefined" (PAI of a week without incidents).
fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "undefined".into(), |v| format!("{v:.2}"))
}

fn outside_note(events: &Events) -> String {
    format!(
        "{} of {} incidents lie outside the study area and are not counted",
        events.outside,
        events.outside + events.inside.len()
    )
}

/// The backtest over the request's span, with its notes and tables.
struct BacktestRun {
    backtest: forecast::Backtest,
    training_weeks: u32,
    top_share: f64,
}

fn backtest_job(
    j: &Jurisdiction,
    req: &Request,
    ctx: &JobContext,
) -> Result<BacktestRun, AnalyticsError> {
    let area = StudyArea::from_polygons(j.county(), ctx.res)?;
    let points = incident_points(j, req)?;
    let outlook = Outlook::new(j, &area, &points, req.to_ms);
    Ok(BacktestRun {
        backtest: forecast::backtest(&outlook.input(), &outlook.slots, req.from_ms, req.to_ms),
        training_weeks: outlook.settings.training_weeks,
        top_share: outlook.settings.top_share,
    })
}

impl BacktestRun {
    fn notes(&self) -> Vec<String> {
        let b = &self.backtest;
        let mut notes = vec![format!(
            "{} incidents outside the study area are not counted",
            b.outside
        )];
        if !b.skipped.is_empty() {
            notes.push(format!(
                "{} weeks skipped: their {} training weeks start before the first incident",
                b.skipped.len(),
                self.training_weeks
            ));
        }
        for s in b.summary.iter().filter(|s| s.chosen) {
            let naive = b
                .summary
                .iter()
                .find(|n| n.slot == s.slot && n.method == Method::Naive);
            notes.push(format!(
                "{}: `{}` chosen, mean PAI {} at the top {:.0}% over {} weeks (naive {}); above \
                 naive in {} of them, equal in {}",
                s.slot,
                s.method.name(),
                fmt_opt(s.mean_pai),
                self.top_share * 100.0,
                s.weeks,
                fmt_opt(naive.and_then(|n| n.mean_pai)),
                s.beats_naive,
                s.ties_naive,
            ));
        }
        notes
    }

    fn tables(&self) -> Result<Vec<DataFrame>, AnalyticsError> {
        let b = &self.backtest;
        let w = &b.weeks;
        let text = |f: &dyn Fn(&forecast::WeekScore) -> String| -> Vec<String> {
            w.iter().map(f).collect()
        };
        let num =
            |f: &dyn Fn(&forecast::WeekScore) -> f64| -> Vec<f64> { w.iter().map(f).collect() };
        let opt = |f: &dyn Fn(&forecast::WeekScore) -> Option<f64>| -> Vec<Option<f64>> {
            w.iter().map(f).collect()
        };
        let weeks = DataFrame::new_infer_height(vec![
            Column::new("slot".into(), text(&|r| r.slot.clone())),
            Column::new("method".into(), text(&|r| r.method.name().to_owned())),
            Column::new("week".into(), text(&|r| forecast::week_name(r.week))),
            Column::new(
                "rings".into(),
                w.iter().map(|r| r.rings).collect::<Vec<u32>>(),
            ),
            Column::new("train_incidents".into(), num(&|r| r.train_incidents)),
            Column::new("test_incidents".into(), num(&|r| r.score.incidents)),
            Column::new(
                "cells".into(),
                w.iter().map(|r| r.score.cells as u32).collect::<Vec<u32>>(),
            ),
            Column::new("captured".into(), num(&|r| r.score.captured)),
            Column::new("area_share".into(), num(&|r| r.score.area_share)),
            Column::new("pai".into(), opt(&|r| r.score.pai)),
            Column::new("pei".into(), opt(&|r| r.score.pei)),
            Column::new("rri".into(), opt(&|r| r.score.rri)),
        ])?;
        let s = &b.summary;
        let count = |f: &dyn Fn(&forecast::MethodSummary) -> usize| -> Vec<u32> {
            s.iter().map(|r| f(r) as u32).collect()
        };
        let mean = |f: &dyn Fn(&forecast::MethodSummary) -> Option<f64>| -> Vec<Option<f64>> {
            s.iter().map(f).collect()
        };
        let summary = DataFrame::new_infer_height(vec![
            Column::new(
                "slot".into(),
                s.iter().map(|r| r.slot.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "method".into(),
                s.iter().map(|r| r.method.name()).collect::<Vec<_>>(),
            ),
            Column::new("weeks".into(), count(&|r| r.weeks)),
            Column::new("mean_pai".into(), mean(&|r| r.mean_pai)),
            Column::new("mean_pei".into(), mean(&|r| r.mean_pei)),
            Column::new("mean_rri".into(), mean(&|r| r.mean_rri)),
            Column::new("beats_naive".into(), count(&|r| r.beats_naive)),
            Column::new("ties_naive".into(), count(&|r| r.ties_naive)),
            Column::new(
                "chosen".into(),
                s.iter().map(|r| r.chosen).collect::<Vec<_>>(),
            ),
        ])?;
        Ok(vec![weeks, summary])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use crate::testing::{Fix, pings};
    use h3o::{LatLng, Resolution};
    use polars::prelude::{ParquetWriter, PlSmallStr};

    fn fixtures() -> Jurisdiction {
        Jurisdiction::load(&devkit::testkit::fixtures()).unwrap()
    }

    /// A store holding one local day of the fixture roster: every unit on duty that day
    /// reports once a minute through its shift, circling its station.
    fn one_day_store(j: &Jurisdiction, day: &str) -> tempfile::TempDir {
        let mut fixes = Vec::new();
        for entry in j.roster().iter().filter(|e| e.date.to_string() == day) {
            let (start, end) = entry.utc_ms(j.timezone()).unwrap();
            let station = j
                .units()
                .iter()
                .find(|u| u.id == entry.unit)
                .and_then(|u| j.stations().iter().find(|s| s.id == u.station))
                .unwrap();
            let unit: &'static str = Box::leak(entry.unit.clone().into_boxed_str());
            for (k, t) in (start..end).step_by(60_000).enumerate() {
                let a = k as f64 / 20.0;
                let at = LatLng::new(station.lat + 0.01 * a.sin(), station.lon + 0.01 * a.cos())
                    .unwrap();
                fixes.push(Fix::at(unit, t, u64::from(at.to_cell(Resolution::Eleven))));
            }
        }
        assert!(fixes.len() > 1000, "{} fixes", fixes.len());
        let store = tempfile::tempdir().unwrap();
        let dir = store.path().join(crate::store::PINGS).join(day);
        std::fs::create_dir_all(&dir).unwrap();
        let mut frame = pings(&fixes).collect().unwrap();
        let file = std::fs::File::create(dir.join("part-0-test.parquet")).unwrap();
        ParquetWriter::new(file).finish(&mut frame).unwrap();
        store
    }

    /// Every job runs over a day of the fixture county, and each of its tables has the
    /// declared columns (`run` refuses one that does not) and rows.
    #[test]
    fn every_job_answers_with_its_declared_tables() {
        let j = fixtures();
        let store = one_day_store(&j, "2026-11-09");
        let from = DateTime::parse_from_rfc3339("2026-11-09T00:00:00-06:00").unwrap();
        let from = from.timestamp_millis();
        for job in Job::ALL {
            // The backtest scores whole local weeks, each after four weeks of training.
            let span = if job == Job::Backtest { 42 } else { 1 };
            let mut req = Request::new(job, from - (span - 1) * 86_400_000, from + 86_400_000);
            req.res = Some(8);
            let out = run(&j, store.path(), &req).unwrap_or_else(|e| panic!("{job}: {e}"));
            let kinds: Vec<TableKind> = out.tables.iter().map(|t| t.kind).collect();
            assert_eq!(kinds, job.tables(), "{job}");
            for t in &out.tables {
                assert!(
                    t.frame.height() > 0,
                    "{job}: the {} table is empty",
                    t.kind.name()
                );
            }
            assert_eq!(out.response.is_some(), job == Job::Response, "{job}");
        }
    }

    #[test]
    fn a_table_that_differs_from_its_schema_is_refused() {
        use polars::prelude::{Column, DataType as D, IntoColumn, NamedFrom, Series};
        let col = |name: &str, dtype: D| -> Column {
            Series::new(PlSmallStr::from(name), [0i64])
                .cast(&dtype)
                .unwrap()
                .into_column()
        };
        let frame = || {
            let columns = TableKind::Dosage
                .columns()
                .iter()
                .map(|(name, kind)| col(name, kind.dtype()))
                .collect();
            DataFrame::new_infer_height(columns).unwrap()
        };
        TableKind::Dosage.check(&frame()).unwrap();
        let mut renamed = frame();
        renamed.rename("minutes", PlSmallStr::from("mins")).unwrap();
        let err = TableKind::Dosage.check(&renamed).unwrap_err().to_string();
        assert!(
            err.contains("the dosage table has columns") && err.contains("mins: f64"),
            "{err}"
        );
        let mut retyped = frame();
        retyped.with_column(col("cell", D::Int64)).unwrap();
        let err = TableKind::Dosage.check(&retyped).unwrap_err().to_string();
        assert!(err.contains("cell: i64"), "{err}");
        let mut extra = frame();
        extra.with_column(col("unit", D::String)).unwrap();
        assert!(TableKind::Dosage.check(&extra).is_err());
    }

    #[test]
    fn job_names_round_trip_and_a_wrong_one_lists_them() {
        for job in Job::ALL {
            assert_eq!(job.name().parse::<Job>().unwrap(), job);
        }
        let err = "heat".parse::<Job>().unwrap_err().to_string();
        assert!(
            err.starts_with("heat: not an analytics job") && err.contains("koper"),
            "{err}"
        );
    }
}
