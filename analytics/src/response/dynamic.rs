//! The rule from units on duty rather than stations.
//!
//! - [`unit_minutes`] (a polars plan) thins the pings to one fix per unit and minute.
//! - [`Tracks`] holds those fixes per unit and answers "where was each unit" questions.
//! - [`hourly_coverage`]: for each clock hour of a span, the units seen in that hour (each
//!   placed at its fix nearest the middle of the hour) are the sources, and the passing
//!   share of the area is recorded. An hour without any unit has share 0.
//! - [`week_profile`]: those hours folded onto the 168 local hours of a week (Monday 00:00 to
//!   Sunday 23:00 in the jurisdiction's zone; in a zone whose offset is not whole hours an
//!   hour is labelled by the local hour its start falls in).
//! - [`incident_reach`]: for each incident, the quickest drive from a unit *available* when
//!   the call came in: a unit whose latest fix is at most `max_fix_age_s` old at that
//!   moment, taken to still be there. Whether a unit was busy with another call is not
//!   known from the pings and is not considered.

use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use model::jurisdiction::Incident;
use polars::prelude::*;

use super::{Grid, ResponseError, Rule, Source, evaluate, nearest, passing_area_share, snap};
use crate::roads::RoadNetwork;
use crate::store::{FIX_TIME, LAT, LON, UNIT};

/// Column of [`unit_minutes`]: fix time as UTC epoch milliseconds.
pub const T_MS: &str = "t_ms";

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;

/// A plan over the pings table: for each unit and UTC minute in `[from_ms, to_ms)`, its last
/// fix, as columns `unit`, `t_ms` (epoch ms), `lat`, `lon`, sorted by unit and time.
pub fn unit_minutes(pings: LazyFrame, from_ms: i64, to_ms: i64) -> LazyFrame {
    pings
        .select([
            col(UNIT),
            col(FIX_TIME)
                .dt()
                .timestamp(TimeUnit::Milliseconds)
                .alias(T_MS),
            col(LAT),
            col(LON),
        ])
        .filter(col(T_MS).gt_eq(lit(from_ms)).and(col(T_MS).lt(lit(to_ms))))
        // `t - t % minute` rather than a floor division, which needs another polars feature.
        .group_by([
            col(UNIT),
            (col(T_MS) - col(T_MS) % lit(MINUTE_MS)).alias("minute"),
        ])
        .agg([
            col(LAT)
                .sort_by([col(T_MS)], SortMultipleOptions::default())
                .last(),
            col(LON)
                .sort_by([col(T_MS)], SortMultipleOptions::default())
                .last(),
            col(T_MS).max(),
        ])
        .select([col(UNIT), col(T_MS), col(LAT), col(LON)])
        .sort([UNIT, T_MS], SortMultipleOptions::default())
}

/// Fixes per unit, sorted by time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tracks {
    units: Vec<String>,
    /// Per unit: (epoch ms, lat, lon), ascending in time.
    fixes: Vec<Vec<(i64, f64, f64)>>,
}

impl Tracks {
    /// Tracks from `(unit, epoch ms, lat, lon)` fixes in any order. Units are kept in order of
    /// first appearance.
    #[must_use]
    pub fn from_fixes(fixes: impl IntoIterator<Item = (String, i64, f64, f64)>) -> Self {
        let mut tracks = Self::default();
        let mut slot = std::collections::HashMap::new();
        for (unit, t, lat, lon) in fixes {
            let i = *slot.entry(unit.clone()).or_insert_with(|| {
                tracks.units.push(unit);
                tracks.fixes.push(Vec::new());
                tracks.units.len() - 1
            });
            tracks.fixes[i].push((t, lat, lon));
        }
        for f in &mut tracks.fixes {
            f.sort_by_key(|&(t, _, _)| t);
        }
        tracks
    }

    /// Tracks from a frame shaped like [`unit_minutes`]'s output; rows with a null are
    /// skipped.
    ///
    /// # Errors
    /// A polars error if a column is missing or has another type.
    pub fn from_frame(df: &DataFrame) -> PolarsResult<Self> {
        let unit = df.column(UNIT)?.str()?;
        let t = df.column(T_MS)?.i64()?;
        let lat = df.column(LAT)?.f64()?;
        let lon = df.column(LON)?.f64()?;
        let rows = unit
            .iter()
            .zip(t.iter())
            .zip(lat.iter().zip(lon.iter()))
            .filter_map(|((u, t), (la, lo))| Some((u?.to_owned(), t?, la?, lo?)));
        Ok(Self::from_fixes(rows))
    }

    /// Unit ids, in order of first appearance.
    #[must_use]
    pub fn units(&self) -> &[String] {
        &self.units
    }

    /// Number of fixes kept.
    #[must_use]
    pub fn fix_count(&self) -> usize {
        self.fixes.iter().map(Vec::len).sum()
    }

    /// The units with a fix in `[from_ms, to_ms)`, each at its fix nearest the middle of that
    /// span (the earlier one on a tie).
    #[must_use]
    pub fn on_duty(&self, from_ms: i64, to_ms: i64) -> Vec<Source> {
        let mid = from_ms + (to_ms - from_ms) / 2;
        let mut out = Vec::new();
        for (unit, fixes) in self.units.iter().zip(&self.fixes) {
            let lo = fixes.partition_point(|f| f.0 < from_ms);
            let hi = fixes.partition_point(|f| f.0 < to_ms);
            let best = fixes[lo..hi].iter().min_by_key(|f| (f.0 - mid).abs());
            if let Some(&(_, lat, lon)) = best {
                out.push(Source {
                    id: unit.clone(),
                    lat,
                    lon,
                });
            }
        }
        out
    }

    /// The units whose latest fix at or before `t_ms` is at most `max_age_ms` old, each at
    /// that fix.
    #[must_use]
    pub fn available_at(&self, t_ms: i64, max_age_ms: i64) -> Vec<Source> {
        let mut out = Vec::new();
        for (unit, fixes) in self.units.iter().zip(&self.fixes) {
            let upto = fixes.partition_point(|f| f.0 <= t_ms);
            if let Some(&(ft, lat, lon)) = upto.checked_sub(1).map(|i| &fixes[i])
                && t_ms - ft <= max_age_ms
            {
                out.push(Source {
                    id: unit.clone(),
                    lat,
                    lon,
                });
            }
        }
        out
    }
}

/// The rule from the units on duty during one clock hour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HourCoverage {
    /// Start of the hour.
    pub start: DateTime<Utc>,
    /// Units seen in the hour.
    pub units: usize,
    /// Share of the grid's area that passes (0 without units).
    pub passing_area_share: f64,
}

/// Evaluates the rule for every whole UTC hour starting in `[from, to)` (the first at `from`
/// rounded up to the hour), with the units on duty in that hour as sources.
///
/// # Errors
/// [`ResponseError::BadPosition`] for a fix with coordinates that are not finite.
pub fn hourly_coverage(
    net: &RoadNetwork,
    grid: &Grid,
    rule: &Rule,
    tracks: &Tracks,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<HourCoverage>, ResponseError> {
    let mut out = Vec::new();
    let mut h = from.timestamp_millis().div_euclid(HOUR_MS) * HOUR_MS;
    if h < from.timestamp_millis() {
        h += HOUR_MS;
    }
    while h < to.timestamp_millis() {
        let sources = tracks.on_duty(h, h + HOUR_MS);
        let share = if sources.is_empty() {
            0.0
        } else {
            passing_area_share(grid, &evaluate(net, grid, &sources, rule)?)
        };
        out.push(HourCoverage {
            start: DateTime::from_timestamp_millis(h).unwrap_or_default(),
            units: sources.len(),
            passing_area_share: share,
        });
        h += HOUR_MS;
    }
    Ok(out)
}

/// One of the 168 local hours of a week, over every week in the span.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeekHour {
    /// Day of the week, 0 = Monday .. 6 = Sunday.
    pub weekday: u8,
    /// Local hour, 0..=23.
    pub hour: u8,
    /// Hours of the span that fell here.
    pub samples: usize,
    /// Mean passing share over those hours (`None` without samples).
    pub mean_share: Option<f64>,
    /// Worst passing share over those hours.
    pub min_share: Option<f64>,
    /// Mean number of units on duty.
    pub mean_units: Option<f64>,
}

/// Folds hourly results onto the local hours of a week in `tz`: 168 entries, Monday 00:00
/// first.
#[must_use]
pub fn week_profile(hours: &[HourCoverage], tz: Tz) -> Vec<WeekHour> {
    let mut sums = vec![(0usize, 0.0f64, f64::INFINITY, 0usize); 168];
    for h in hours {
        let local = tz.from_utc_datetime(&h.start.naive_utc());
        let slot = local.weekday().num_days_from_monday() as usize * 24 + local.hour() as usize;
        let s = &mut sums[slot];
        s.0 += 1;
        s.1 += h.passing_area_share;
        s.2 = s.2.min(h.passing_area_share);
        s.3 += h.units;
    }
    sums.iter()
        .enumerate()
        .map(|(slot, &(n, sum, min, units))| {
            let n_f = n as f64;
            WeekHour {
                weekday: (slot / 24) as u8,
                hour: (slot % 24) as u8,
                samples: n,
                mean_share: (n > 0).then(|| sum / n_f),
                min_share: (n > 0).then_some(min),
                mean_units: (n > 0).then(|| units as f64 / n_f),
            }
        })
        .collect()
}

/// The estimated response to one incident from the nearest available unit.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentReach {
    /// Incident id.
    pub id: String,
    /// When the call came in.
    pub received: DateTime<Utc>,
    /// Units available at that moment.
    pub available: usize,
    /// The quickest of them, if any.
    pub unit: Option<String>,
    /// Its drive time, seconds (off-road stretches included).
    pub time_s: Option<f64>,
    /// Distance along that route, metres.
    pub dist_m: Option<f64>,
    /// Whether the rule holds for that drive.
    pub pass: Option<bool>,
}

/// For each incident, the quickest drive from a unit whose latest fix is at most
/// `max_fix_age_s` old when the call is received.
///
/// # Errors
/// [`ResponseError::BadPosition`] for an incident or fix that is not a valid position.
pub fn incident_reach(
    net: &RoadNetwork,
    rule: &Rule,
    tracks: &Tracks,
    incidents: &[Incident],
    max_fix_age_s: f64,
) -> Result<Vec<IncidentReach>, ResponseError> {
    let max_age_ms = (max_fix_age_s * 1000.0) as i64;
    let mut out = Vec::with_capacity(incidents.len());
    for inc in incidents {
        let units = tracks.available_at(inc.received.timestamp_millis(), max_age_ms);
        let mut row = IncidentReach {
            id: inc.id.clone(),
            received: inc.received,
            available: units.len(),
            unit: None,
            time_s: None,
            dist_m: None,
            pass: None,
        };
        if !units.is_empty() {
            let snapped = snap(net, &units, rule)?;
            let (node, offroad_m) =
                nearest(net, || format!("incident {}", inc.id), inc.lat, inc.lon)?;
            let r = net.multi_source_to(&snapped.starts, node)?;
            let time_s = r.time_s + offroad_m / rule.offroad_mps;
            let dist_m = r.dist_m + snapped.start_m[r.source] + offroad_m;
            row.unit = Some(units[r.source].id.clone());
            row.time_s = Some(time_s);
            row.dist_m = Some(dist_m);
            row.pass = Some(rule.passes(time_s, dist_m));
        }
        out.push(row);
    }
    Ok(out)
}
