//! One week of the report: the jobs' answers as typed rows ([`WeekData`]), the headline
//! figures ([`Figures`]) and the heatmap layers drawn from them.

use std::collections::{BTreeMap, HashMap};

use analytics::compliance::{CheckpointStatus, DataStatus};
use analytics::jobs::{self, Job, Output, Request, TableKind};
use analytics::response::{HourCoverage, week_profile};
use anyhow::Context;
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use geo::MultiPolygon;
use h3o::{CellIndex, LatLng, Resolution};
use model::jurisdiction::{Checkpoint, Jurisdiction, Window};
use serde::Serialize;

use super::basemap::Basemap;
use super::rows;
use crate::cli::ReportArgs;

/// Gaps listed in the report.
pub(crate) const TOP_GAPS: usize = 10;

/// A local ISO week.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IsoWeek {
    /// Its Monday.
    pub(crate) monday: NaiveDate,
}

impl IsoWeek {
    /// Parses `2026-W47`.
    pub(crate) fn parse(s: &str) -> anyhow::Result<Self> {
        let bad = || format!("--week {s}: expected an ISO week such as 2026-W47");
        let (year, week) = s.split_once("-W").with_context(bad)?;
        let year: i32 = year.parse().ok().with_context(bad)?;
        let week: u32 = week.parse().ok().with_context(bad)?;
        let monday = NaiveDate::from_isoywd_opt(year, week, chrono::Weekday::Mon)
            .with_context(|| format!("--week {s}: year {year} has no week {week}"))?;
        Ok(Self { monday })
    }

    /// The week before.
    pub(crate) fn previous(self) -> Self {
        Self {
            monday: self.monday - chrono::Days::new(7),
        }
    }

    /// The Monday after.
    pub(crate) fn end(self) -> NaiveDate {
        self.monday + chrono::Days::new(7)
    }

    /// `2026-W47`.
    pub(crate) fn label(self) -> String {
        let w = self.monday.iso_week();
        format!("{}-W{:02}", w.year(), w.week())
    }
}

/// The response rule's figures the report shows.
#[derive(Debug, Clone)]
pub(crate) struct ResponseFigures {
    /// Cells of the grid.
    pub(crate) cells: usize,
    /// Of those, passing from the stations.
    pub(crate) passing_cells: usize,
    /// Share of the area passing.
    pub(crate) passing_area_share: f64,
    /// Share of the week's incidents in passing cells.
    pub(crate) incident_share: Option<f64>,
    /// Minutes to the worst place.
    pub(crate) worst_time_min: f64,
    /// Failing areas.
    pub(crate) failing_areas: usize,
    /// Incidents received, with a unit available, and the share of those within the rule.
    pub(crate) incidents: analytics::response::IncidentFigures,
}

/// What the jobs answered for one week.
#[derive(Debug)]
pub(crate) struct WeekData {
    pub(crate) week: IsoWeek,
    pub(crate) dosage: Vec<rows::Dosage>,
    pub(crate) hotspots: Vec<rows::Hotspot>,
    pub(crate) gaps: Vec<rows::Gap>,
    pub(crate) patrols: Vec<rows::Patrol>,
    pub(crate) force: Vec<rows::Force>,
    pub(crate) checkpoints: Vec<rows::Checkpoint>,
    pub(crate) response: ResponseFigures,
    pub(crate) failing: Vec<MultiPolygon<f64>>,
    pub(crate) sources: Vec<(String, f64, f64)>,
    /// The area share passing from the units on duty per local weekday and hour; `None` for
    /// an hour without any unit's fix on a day without data (see [`days_without_data`]).
    pub(crate) week_hours: [[Option<f64>; 24]; 7],
    /// Local dates on which no roster entry had any data from the store.
    pub(crate) days_without_data: Vec<String>,
}

/// Local midnight of `day` in `tz`, UTC epoch ms.
fn local_midnight(tz: chrono_tz::Tz, day: NaiveDate) -> anyhow::Result<i64> {
    tz.from_local_datetime(&day.and_time(chrono::NaiveTime::MIN))
        .earliest()
        .map(|t| t.timestamp_millis())
        .with_context(|| format!("local midnight of {day}"))
}

/// Weeks of forecasts the report scores.
pub(crate) const CHECK_WEEKS: u64 = 8;

/// The forecast methods scored on the [`CHECK_WEEKS`] weeks up to the end of `week`
/// (`patrol analyze backtest`), with the job's notes.
pub(crate) fn forecast_check(
    a: &ReportArgs,
    j: &Jurisdiction,
    week: IsoWeek,
) -> anyhow::Result<(Vec<rows::ForecastCheck>, Vec<String>)> {
    let ms = |day: NaiveDate| local_midnight(j.timezone(), day);
    let from = week.end() - chrono::Days::new(7 * CHECK_WEEKS);
    let req = Request::new(Job::Backtest, ms(from)?, ms(week.end())?);
    let out = jobs::run(j, &a.store, &req)
        .with_context(|| format!("patrol analyze backtest up to {}", week.label()))?;
    Ok((rows::rows(&out, TableKind::BacktestSummary)?, out.notes))
}

impl WeekData {
    pub(crate) fn compute(a: &ReportArgs, j: &Jurisdiction, week: IsoWeek) -> anyhow::Result<Self> {
        let tz = j.timezone();
        let ms = |day: NaiveDate| local_midnight(tz, day);
        let (from, to) = (ms(week.monday)?, ms(week.end())?);
        let job = |job: Job, top: usize| -> anyhow::Result<Output> {
            let mut req = Request::new(job, from, to);
            req.top = top;
            jobs::run(j, &a.store, &req)
                .with_context(|| format!("patrol analyze {job} for {}", week.label()))
        };
        // Dosage and gaps from one read of the pings; every positive gap, for the maps (the
        // table shows the first TOP_GAPS).
        let presence = job(Job::Presence, usize::MAX)?;
        let hotspots = job(Job::Hotspots, jobs::DEFAULT_TOP)?;
        let compliance = job(Job::Compliance, jobs::DEFAULT_TOP)?;
        let response = job(Job::Response, jobs::DEFAULT_TOP)?;
        let report = response
            .response
            .context("the response job answered without its report")?;
        let patrols: Vec<rows::Patrol> = rows::rows(&compliance, TableKind::Patrols)?;
        let days_without_data = days_without_data(&patrols);
        // An hour in which no unit sent a fix, on a day the store lost, is missing data rather
        // than an hour without coverage: it is left out of the profile.
        let hours: Vec<HourCoverage> = report
            .hours
            .iter()
            .filter(|h| {
                let day = h.start.with_timezone(&tz).date_naive().to_string();
                h.units > 0 || !days_without_data.contains(&day)
            })
            .copied()
            .collect();
        let mut week_hours = [[None; 24]; 7];
        for h in &week_profile(&hours, tz) {
            if let Some(row) = week_hours.get_mut(usize::from(h.weekday))
                && let Some(slot) = row.get_mut(usize::from(h.hour))
            {
                *slot = h.mean_share;
            }
        }
        let s = &report.summary;
        Ok(Self {
            week,
            dosage: rows::rows(&presence, TableKind::Dosage)?,
            gaps: rows::rows(&presence, TableKind::Gaps)?,
            hotspots: rows::rows(&hotspots, TableKind::Hotspots)?,
            patrols,
            force: rows::rows(&compliance, TableKind::Force)?,
            checkpoints: rows::rows(&compliance, TableKind::Checkpoints)?,
            response: ResponseFigures {
                cells: s.cells,
                passing_cells: s.passing_cells,
                passing_area_share: s.passing_area_share,
                incident_share: s.incidents.share(),
                worst_time_min: s.worst_time_s / 60.0,
                failing_areas: s.failing_areas.len(),
                incidents: report.incident_figures(),
            },
            failing: s.failing_areas.iter().map(|f| f.outline.clone()).collect(),
            sources: report
                .sources
                .iter()
                .map(|s| (s.id.clone(), s.lat, s.lon))
                .collect(),
            week_hours,
            days_without_data,
        })
    }
}

/// The headline figures of a week: sums and shares of the jobs' rows, `None` where the week
/// has nothing to divide by.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Figures {
    /// `2026-W47`.
    pub(crate) week: String,
    /// Incidents in the study area (hotspots, slot `all`).
    pub(crate) incidents: f64,
    /// Of those, inside a patrol window (hotspots, slot kind `window`).
    pub(crate) incidents_in_windows: f64,
    /// Patrol hours placed on the grid (dosage rows with a cell).
    pub(crate) patrol_hours: f64,
    /// Of those, inside a patrol window.
    pub(crate) patrol_hours_in_windows: f64,
    /// Hours between fixes too far apart to bridge (dosage rows without a cell).
    pub(crate) no_data_hours: f64,
    /// Cell-windows whose incident share exceeds their dosage share (gaps rows).
    pub(crate) gaps: usize,
    /// Incident share held by the top gaps.
    pub(crate) top_gaps_incident_share: f64,
    /// Visits a week the top gaps call for.
    pub(crate) top_gaps_visits: f64,
    /// Checkpoint-nights checked: rostered, with data (visited or missed).
    pub(crate) checkpoint_nights: usize,
    /// Of those, with no qualifying visit.
    pub(crate) checkpoints_missed: usize,
    /// Checkpoint-nights no roster entry of the checkpoint's station covered.
    pub(crate) checkpoints_not_rostered: usize,
    /// Checkpoint-nights rostered, but without complete data from any entry rostered for them.
    pub(crate) checkpoints_no_data: usize,
    /// Roster entries.
    pub(crate) patrols: usize,
    /// Of those, with complete data: the entries the patrol rates are taken over.
    pub(crate) patrols_with_data: usize,
    /// Share of the entries with data on patrol in their zone.
    pub(crate) on_patrol_share: Option<f64>,
    /// Entries with data cut short.
    pub(crate) cut_short: usize,
    /// Entries during which no unit at all sent a fix (a feed outage).
    pub(crate) no_store_data: usize,
    /// Entries whose unit sent nothing while others reported.
    pub(crate) no_unit_data: usize,
    /// Entries with an hour in which no unit sent a fix.
    pub(crate) partial_data: usize,
    /// Entries still running when the store's data ends.
    pub(crate) after_data_end: usize,
    /// Local dates on which no roster entry had any data from the store.
    pub(crate) days_without_data: Vec<String>,
    /// Patrols rostered with fewer than two officers where two are required.
    pub(crate) groups_under_two: usize,
    /// Share of the zone-window instances the data can tell about with the force their
    /// patrol level requires.
    pub(crate) force_ok_share: Option<f64>,
    /// Share of the area passing the response rule from the stations.
    pub(crate) response_area_share: Option<f64>,
    /// Share of incidents in passing cells.
    pub(crate) response_incident_share: Option<f64>,
    /// Mean over the week's hours of the area share passing from units on duty (the hours
    /// [`WeekData::week_hours`] leaves out as missing data not counted).
    pub(crate) dynamic_area_share: Option<f64>,
    /// Failing areas.
    pub(crate) failing_areas: usize,
}

impl Figures {
    pub(crate) fn of(w: &WeekData) -> Self {
        let sum_incidents = |kind: &str| -> f64 {
            w.hotspots
                .iter()
                .filter(|r| r.slot_kind == kind)
                .map(|r| r.incidents)
                .sum()
        };
        // Adding 0.0 turns the -0.0 of an empty sum into 0.0.
        let hours = |pick: &dyn Fn(&rows::Dosage) -> bool| -> f64 {
            w.dosage
                .iter()
                .filter(|r| pick(r))
                .map(|r| r.minutes)
                .sum::<f64>()
                / 60.0
                + 0.0
        };
        let has_cell = |r: &rows::Dosage| r.cell.is_some();
        let top = &w.gaps[..w.gaps.len().min(TOP_GAPS)];
        let share = |n: usize, of: usize| (of > 0).then(|| n as f64 / of as f64);
        let count = |flags: &mut dyn Iterator<Item = bool>| flags.filter(|f| *f).count();
        let dynamic: Vec<f64> = w.week_hours.iter().flatten().flatten().copied().collect();
        let with_data = w.patrols.iter().filter(|r| r.complete()).count();
        let on_patrol = count(&mut w.patrols.iter().map(|r| r.on_patrol == Some(true)));
        let group_ok = count(&mut w.patrols.iter().map(|r| r.group_ok));
        let data =
            |status: DataStatus| count(&mut w.patrols.iter().map(|r| r.data == status.name()));
        let checkpoints = |status: CheckpointStatus| {
            count(&mut w.checkpoints.iter().map(|r| r.status == status.name()))
        };
        let missed = checkpoints(CheckpointStatus::Missed);
        let force_told: Vec<bool> = w.force.iter().filter_map(|r| r.ok).collect();
        Self {
            week: w.week.label(),
            incidents: sum_incidents("all"),
            incidents_in_windows: sum_incidents("window"),
            patrol_hours: hours(&has_cell),
            patrol_hours_in_windows: hours(&|r| has_cell(r) && r.window.is_some()),
            no_data_hours: hours(&|r| !has_cell(r)),
            gaps: w.gaps.len(),
            // Folded from +0.0: an empty f64 sum is −0.0, which the page would print.
            top_gaps_incident_share: top.iter().fold(0.0, |s, r| s + r.incident_share),
            top_gaps_visits: top.iter().fold(0.0, |s, r| s + r.visits_week),
            checkpoint_nights: checkpoints(CheckpointStatus::Visited) + missed,
            checkpoints_missed: missed,
            checkpoints_not_rostered: checkpoints(CheckpointStatus::NotRostered),
            checkpoints_no_data: checkpoints(CheckpointStatus::NoData),
            patrols: w.patrols.len(),
            patrols_with_data: with_data,
            on_patrol_share: share(on_patrol, with_data),
            cut_short: count(&mut w.patrols.iter().map(|r| r.cut_short == Some(true))),
            no_store_data: data(DataStatus::NoStoreData),
            no_unit_data: data(DataStatus::NoUnitData),
            partial_data: data(DataStatus::Partial),
            after_data_end: data(DataStatus::AfterDataEnd),
            days_without_data: w.days_without_data.clone(),
            groups_under_two: w.patrols.len() - group_ok,
            force_ok_share: share(count(&mut force_told.iter().copied()), force_told.len()),
            response_area_share: Some(w.response.passing_area_share),
            response_incident_share: w.response.incident_share,
            dynamic_area_share: (!dynamic.is_empty())
                .then(|| dynamic.iter().sum::<f64>() / dynamic.len() as f64),
            failing_areas: w.response.failing_areas,
        }
    }
}

/// The local dates whose roster entries all had no data from the store (no unit sent a fix
/// during any of them), in order.
fn days_without_data(patrols: &[rows::Patrol]) -> Vec<String> {
    let mut days: BTreeMap<&str, bool> = BTreeMap::new();
    for r in patrols {
        let none = r.data == DataStatus::NoStoreData.name();
        *days.entry(r.date.as_str()).or_insert(true) &= none;
    }
    days.into_iter()
        .filter(|(_, none)| *none)
        .map(|(d, _)| d.to_owned())
        .collect()
}

/// An H3 cell from a job's `cell` column.
pub(crate) fn cell(c: u64) -> Option<CellIndex> {
    CellIndex::try_from(c).ok()
}

/// Values per display cell of one layer: per window name, and overall (key `None`).
pub(crate) type Layer = BTreeMap<Option<String>, HashMap<CellIndex, f64>>;

/// Adds `v` to the parent of `c` at `res` in `layer[window]`.
fn add(layer: &mut Layer, window: Option<String>, c: CellIndex, res: Resolution, v: f64) {
    let c = c.parent(res).unwrap_or(c);
    *layer.entry(window).or_default().entry(c).or_default() += v;
}

/// The three heatmap layers at display resolution `res`: incidents, patrol minutes and gap
/// (incident share minus dosage share, in percentage points), each per window and overall.
pub(crate) fn layers(w: &WeekData, res: Resolution) -> [Layer; 3] {
    let (mut inc, mut dose, mut gap) = (Layer::new(), Layer::new(), Layer::new());
    for r in &w.hotspots {
        let Some(c) = cell(r.cell) else {
            continue;
        };
        match r.slot_kind.as_str() {
            "all" => add(&mut inc, None, c, res, r.incidents),
            "window" => add(&mut inc, r.slot.clone(), c, res, r.incidents),
            _ => {}
        }
    }
    for r in &w.dosage {
        let Some(c) = r.cell.and_then(cell) else {
            continue;
        };
        add(&mut dose, None, c, res, r.minutes);
        if let Some(window) = &r.window {
            add(&mut dose, Some(window.clone()), c, res, r.minutes);
        }
    }
    for r in &w.gaps {
        let Some(c) = cell(r.cell) else {
            continue;
        };
        // In percentage points, as the legend reads.
        add(&mut gap, None, c, res, r.gap * 100.0);
        add(&mut gap, r.window.clone(), c, res, r.gap * 100.0);
    }
    [inc, dose, gap]
}

/// The nearest checkpoint to a point: its name and distance in metres.
pub(crate) fn nearest_checkpoint(
    checkpoints: &[Checkpoint],
    lat: f64,
    lon: f64,
) -> Option<(String, f64)> {
    let here = LatLng::new(lat, lon).ok()?;
    checkpoints
        .iter()
        .filter_map(|c| {
            let there = LatLng::new(c.lat, c.lon).ok()?;
            Some((c.name.clone(), here.distance_m(there)))
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
}

/// Everything the page needs besides the weeks' data.
#[derive(Debug)]
pub(crate) struct Setting {
    /// Jurisdiction name.
    pub(crate) name: String,
    /// Its patrol windows.
    pub(crate) windows: Vec<Window>,
    /// Outline.
    pub(crate) outline: MultiPolygon<f64>,
    /// Beats with their ids.
    pub(crate) beats: Vec<(String, MultiPolygon<f64>)>,
    /// Patrol checkpoints.
    pub(crate) checkpoints: Vec<Checkpoint>,
    /// The maps' roads and places.
    pub(crate) basemap: Basemap,
    /// When the report was made.
    pub(crate) made: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_weeks_parse_to_their_monday() {
        let w = IsoWeek::parse("2026-W47").unwrap();
        assert_eq!(w.monday, NaiveDate::from_ymd_opt(2026, 11, 16).unwrap());
        assert_eq!(w.end(), NaiveDate::from_ymd_opt(2026, 11, 23).unwrap());
        assert_eq!(w.previous().label(), "2026-W46");
        // Week 1 of 2026 starts in 2025; week 53 exists in 2026 only.
        assert_eq!(
            IsoWeek::parse("2026-W01").unwrap().monday,
            NaiveDate::from_ymd_opt(2025, 12, 29).unwrap()
        );
        assert_eq!(
            IsoWeek::parse("2026-W01").unwrap().previous().label(),
            "2025-W52"
        );
        assert!(IsoWeek::parse("2026-W53").is_ok());
        let e = IsoWeek::parse("2025-W53").unwrap_err().to_string();
        assert!(e.contains("no week 53"), "{e}");
        let e = IsoWeek::parse("2026-47").unwrap_err().to_string();
        assert!(e.contains("--week 2026-47"), "{e}");
    }

    #[test]
    fn nearest_checkpoint_is_the_closest() {
        let cp = |name: &str, lat: f64, lon: f64| Checkpoint {
            id: name.into(),
            name: name.into(),
            kind: model::jurisdiction::CheckpointKind::Patrol,
            lat,
            lon,
            radius_m: 50.0,
            min_dwell_s: 60,
            window: None,
        };
        let list = [cp("far", 40.2, -88.9), cp("near", 40.101, -88.9)];
        let (name, d) = nearest_checkpoint(&list, 40.1, -88.9).unwrap();
        assert_eq!(name, "near");
        assert!((d - 111.2).abs() < 1.0, "{d}");
        assert!(nearest_checkpoint(&[], 40.1, -88.9).is_none());
    }
}
