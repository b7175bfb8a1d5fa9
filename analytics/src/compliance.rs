//! Job 6, compliance with the roster: were the rostered patrols out, in their zone, in groups,
//! at full strength, for the whole window, and were the patrol checkpoints visited?
//!
//! Definitions (intervals, flags and gaps as in [`crate::context`]):
//! - a roster entry's *shift* is its local `start`..`end` on its `date` (ending the next day
//!   when `end` is not after `start`); entries whose shift starts in `[from, to)` are checked,
//!   and pings are read to the end of the last such shift;
//! - *in zone*: the unit's tracked intervals whose first fix lies in the shift and was stored
//!   in the rostered zone (ingest's `zone` column); `in_zone_share` = their length / shift
//!   length; *on patrol* when that share is at least [`ON_PATROL_SHARE`];
//! - *cut short*: the last in-zone interval ends more than [`CUT_SHORT_MIN`] minutes before the
//!   shift ends (or there is none);
//! - *data*: whether the store holds what it takes to judge an entry, the `data` column
//!   ([`DataStatus`]). The store's *data end* is its last fix at or after the span start, of
//!   any unit (flagged fixes too), and the store *has data* in a UTC hour when some unit sent a
//!   fix in it. An entry is, in this order of precedence:
//!   `after_data_end` when the data end comes more than [`CUT_SHORT_MIN`] minutes before the
//!   shift ends (a night shift still running when the data stops, or a shift after it);
//!   `no_store_data` when no unit sent a fix in any hour of the shift (a feed or ingest outage,
//!   or data never loaded); `no_unit_data` when other units reported but this one sent no fix
//!   during its shift (a device off, or a unit that did not go out: a finding, but not a
//!   patrol that can be measured); `partial` when the unit reported but some hour of the shift
//!   has no fix of any unit; `complete` otherwise. Only complete entries are judged:
//!   `on_patrol`, `cut_short` and `minutes_short` are null for the others (the minutes and
//!   `in_zone_share` still give what was measured), so rates are taken over complete entries
//!   and the others are counted apart;
//! - *group*: bikes, e-bikes and foot patrols go in groups of at least two officers: the
//!   entry's `crew` is at least 2 (cars always pass);
//! - *force*: per local date, window and zone, the entries on patrol against the required
//!   number `max(1, round(level share × units of the zone's station / zones of that
//!   station))`, `[levels]` giving the share. Entries that are not complete count in
//!   `without_data`, never as missing force: `ok` is true when the entries on patrol reach the
//!   required number, false when they would fall short even if every entry without data had
//!   been on patrol, and null in between (the data cannot tell);
//! - *checkpoints*: a patrol checkpoint is visited in a window instance (its `window`, crossing
//!   midnight as in [`crate::clock`]) when one unit stays within `radius_m` of it for at least
//!   `min_dwell_s`: consecutive tracked intervals with both fixes inside, the dwell being
//!   their total length and counted for the instance its first fix falls in. A checkpoint
//!   belongs to the station of the beat it lies in (else of the zone it lies in; one in
//!   neither belongs to every station), and the entries *rostered for* an instance are the
//!   entries of a zone of that station whose shift overlaps it. The `status` column
//!   ([`CheckpointStatus`]): `visited`; else `not_rostered` when no entry is rostered for the
//!   instance; else `no_data` when none of those entries is complete; else `missed`. So
//!   `visited = false` rows are the missing list only where `status` is `missed`.

use std::collections::{BTreeMap, HashMap, HashSet};

use geo::{Contains, Point};
use model::fences::Fence;
use model::jurisdiction::{Checkpoint, CheckpointKind, Levels, RosterEntry, Unit, Window};
use polars::prelude::*;

use crate::clock::{day_to_date, window_instances};
use crate::context::JobContext;
use crate::distance::distance_m_expr;
use crate::store::{FIX_TIME, LAT, LON, UNIT, ZONE};
use crate::{AnalyticsError, collect_all};

/// Share of the shift in zone for a unit to count as on patrol.
pub const ON_PATROL_SHARE: f64 = 0.5;
/// A patrol that leaves its zone for good this many minutes before the end is cut short.
pub const CUT_SHORT_MIN: i64 = 15;

/// The store's data is looked for hour by hour (UTC hours, as the epoch ms they start at).
const HOUR_MS: i64 = 3_600_000;

/// Whether the store holds the data to judge a roster entry: the `patrols` table's `data`
/// column (the module doc gives the rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataStatus {
    /// The unit reported and the store has data over the whole shift.
    Complete,
    /// The unit reported, but some hour of the shift has no fix of any unit.
    Partial,
    /// Other units reported during the shift, this one sent nothing.
    NoUnitData,
    /// No unit at all sent a fix during the shift.
    NoStoreData,
    /// The store's data ends before the shift does.
    AfterDataEnd,
}

impl DataStatus {
    /// The name in the `data` column.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            DataStatus::Complete => "complete",
            DataStatus::Partial => "partial",
            DataStatus::NoUnitData => "no_unit_data",
            DataStatus::NoStoreData => "no_store_data",
            DataStatus::AfterDataEnd => "after_data_end",
        }
    }
}

/// What became of a patrol checkpoint in a window instance: the `checkpoints` table's `status`
/// column (the module doc gives the rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckpointStatus {
    /// A unit stayed long enough.
    Visited,
    /// Rostered, with complete data, and no unit stayed long enough.
    Missed,
    /// No roster entry of the checkpoint's station covers the instance.
    NotRostered,
    /// Rostered, but none of the entries rostered for it is complete.
    NoData,
}

impl CheckpointStatus {
    /// The name in the `status` column.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            CheckpointStatus::Visited => "visited",
            CheckpointStatus::Missed => "missed",
            CheckpointStatus::NotRostered => "not_rostered",
            CheckpointStatus::NoData => "no_data",
        }
    }
}

/// The three compliance tables.
#[derive(Debug, Clone)]
pub struct Compliance {
    /// One row per roster entry.
    pub patrols: DataFrame,
    /// One row per date, window and zone.
    pub force: DataFrame,
    /// One row per patrol checkpoint and window instance; `status = "missed"` rows are the
    /// missing list.
    pub checkpoints: DataFrame,
}

/// The jurisdiction files compliance reads.
#[derive(Debug, Clone, Copy)]
pub struct ComplianceInputs<'a> {
    /// `roster.csv`.
    pub roster: &'a [RosterEntry],
    /// `units.csv`.
    pub units: &'a [Unit],
    /// `zones.geojson`.
    pub zones: &'a [Fence],
    /// `beats.geojson`: a checkpoint belongs to the station of the beat it lies in.
    pub beats: &'a [Fence],
    /// `checkpoints.geojson`.
    pub checkpoints: &'a [Checkpoint],
    /// `[levels]`.
    pub levels: Levels,
}

/// Which checkpoint (index into `checkpoints`) a position is at, null when none; the first
/// listed wins where radii overlap.
fn checkpoint_expr(checkpoints: &[Checkpoint], lat: &str, lon: &str) -> Expr {
    let mut out = lit(NULL).cast(DataType::UInt32);
    for (i, c) in checkpoints.iter().enumerate().rev() {
        let d = distance_m_expr(col(lat), col(lon), lit(c.lat), lit(c.lon));
        out = when(d.lt_eq(lit(c.radius_m)))
            .then(lit(i as u32))
            .otherwise(out);
    }
    out
}

/// The force rule's required number of patrols in a zone and window: `max(1, round(share ×
/// units of the zone's station / zones of that station))`, `share` the level's from
/// `[levels]`.
///
/// # Example
/// ```
/// // Level 2 (half the force) at a station of 30 units and 4 zones: 3.75, so 4 patrols.
/// assert_eq!(analytics::compliance::required_force(0.5, 30, 4), 4);
/// ```
#[must_use]
pub fn required_force(share: f64, station_units: u32, station_zones: u32) -> u32 {
    let per_zone = share * f64::from(station_units) / f64::from(station_zones.max(1));
    (per_zone.round() as u32).max(1)
}

/// Runs the compliance job.
///
/// # Errors
/// A polars error.
pub fn compliance(
    ctx: &JobContext,
    pings: LazyFrame,
    inputs: ComplianceInputs<'_>,
) -> Result<Compliance, AnalyticsError> {
    let tz = ctx.clock.tz();
    let spans = inputs
        .roster
        .iter()
        .map(|e| e.utc_ms(tz).map(|span| (e, span)))
        .collect::<Result<Vec<_>, _>>()?;
    let entries: Vec<(usize, &RosterEntry, (i64, i64))> = spans
        .into_iter()
        .filter(|(_, (s, _))| (ctx.from_ms..ctx.to_ms).contains(s))
        .enumerate()
        .map(|(i, (e, span))| (i, e, span))
        .collect();
    let mut wide = ctx.clone();
    wide.to_ms = entries
        .iter()
        .map(|(_, _, (_, e))| *e)
        .fold(ctx.to_ms, i64::max);
    let roster = DataFrame::new_infer_height(vec![
        Column::new(
            "entry".into(),
            entries
                .iter()
                .map(|(i, _, _)| *i as u32)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            UNIT.into(),
            entries
                .iter()
                .map(|(_, e, _)| e.unit.clone())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "zone_r".into(),
            entries
                .iter()
                .map(|(_, e, _)| e.zone.clone())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "s".into(),
            entries.iter().map(|(_, _, (s, _))| *s).collect::<Vec<_>>(),
        ),
        Column::new(
            "e".into(),
            entries.iter().map(|(_, _, (_, e))| *e).collect::<Vec<_>>(),
        ),
    ])?
    .lazy();
    let in_zone = col(ZONE).eq(col("zone_r"));
    let patrol_plan = wide
        .intervals(pings.clone())
        .filter(col("tracked"))
        .select([col(UNIT), col("t"), col("dt"), col(ZONE)])
        .inner_join(roster.clone(), col(UNIT), col(UNIT))
        .filter(col("t").gt_eq(col("s")).and(col("t").lt(col("e"))))
        .group_by([col("entry")])
        .agg([
            col("dt").sum().alias("tracked_ms"),
            col("dt").filter(in_zone.clone()).sum().alias("in_zone_ms"),
            (col("t") + col("dt"))
                .filter(in_zone)
                .max()
                .alias("last_in_zone"),
        ]);
    let cp_plan = wide
        .intervals(pings.clone())
        .filter(col("tracked"))
        .with_columns([
            checkpoint_expr(inputs.checkpoints, LAT, LON).alias("cp_a"),
            checkpoint_expr(inputs.checkpoints, "lat_b", "lon_b").alias("cp_b"),
        ])
        .filter(col("cp_a").is_not_null().and(col("cp_a").eq(col("cp_b"))))
        .select([col(UNIT), col("t"), col("dt"), col("cp_a")])
        .sort([UNIT, "t"], SortMultipleOptions::default());
    // What data the store holds, every fix counted (flagged ones too): the entries whose unit
    // sent a fix in the shift, the hours with a fix of any unit, and the last fix.
    let t = col(FIX_TIME).cast(DataType::Int64);
    let in_wide = t
        .clone()
        .gt_eq(lit(wide.from_ms))
        .and(t.clone().lt(lit(wide.to_ms)));
    let seen_plan = pings
        .clone()
        .filter(in_wide.clone())
        .select([col(UNIT), t.clone().alias("t")])
        .inner_join(roster, col(UNIT), col(UNIT))
        .filter(col("t").gt_eq(col("s")).and(col("t").lt(col("e"))))
        .select([col("entry")])
        .unique(None, UniqueKeepStrategy::Any);
    let hours_plan = pings
        .clone()
        .filter(in_wide)
        .select([(t.clone() - t.clone() % lit(HOUR_MS)).alias("hour")])
        .unique(None, UniqueKeepStrategy::Any);
    let end_plan = pings
        .filter(t.clone().gt_eq(lit(ctx.from_ms)))
        .select([t.max().alias("end")]);
    let mut frames =
        collect_all(vec![patrol_plan, cp_plan, seen_plan, hours_plan, end_plan])?.into_iter();
    let (Some(per_entry), Some(at_cp), Some(seen), Some(hours), Some(end)) = (
        frames.next(),
        frames.next(),
        frames.next(),
        frames.next(),
        frames.next(),
    ) else {
        return Err(AnalyticsError::Invalid(
            "collect returned too few frames".into(),
        ));
    };

    // Per entry: (tracked ms, in-zone ms, last in-zone end).
    let mut stats: HashMap<u32, (i64, i64, Option<i64>)> = HashMap::new();
    {
        let entry = per_entry.column("entry")?.u32()?;
        let tracked = per_entry.column("tracked_ms")?.i64()?;
        let inz = per_entry.column("in_zone_ms")?.i64()?;
        let last = per_entry.column("last_in_zone")?.i64()?;
        for i in 0..per_entry.height() {
            if let Some(e) = entry.get(i) {
                stats.insert(
                    e,
                    (
                        tracked.get(i).unwrap_or(0),
                        inz.get(i).unwrap_or(0),
                        last.get(i),
                    ),
                );
            }
        }
    }
    let (seen, hours) = (seen.column("entry")?.u32()?, hours.column("hour")?.i64()?);
    let store = StoreData {
        reported: (0..seen.len()).filter_map(|i| seen.get(i)).collect(),
        hours: (0..hours.len()).filter_map(|i| hours.get(i)).collect(),
        end_ms: end.column("end")?.i64()?.get(0),
    };
    let kind_of: HashMap<&str, &str> = inputs
        .units
        .iter()
        .map(|u| (u.id.as_str(), u.kind.as_str()))
        .collect();
    let mut p = PatrolRows::default();
    let mut force: BTreeMap<(chrono::NaiveDate, String, String), ForceTally> = BTreeMap::new();
    // Per entry, in order: its shift, zone and whether its data is complete (for checkpoints).
    let mut judged: Vec<(i64, i64, &str, bool)> = Vec::with_capacity(entries.len());
    for (i, e, (s, end)) in &entries {
        let (tracked, inz, last) = stats.get(&(*i as u32)).copied().unwrap_or_default();
        let data = store.status(*i as u32, *s, *end);
        let complete = data == DataStatus::Complete;
        let shift = (end - s).max(1);
        let share = inz as f64 / shift as f64;
        let on_patrol = complete.then_some(share >= ON_PATROL_SHARE);
        let cut_short = complete.then_some(last.is_none_or(|l| l < end - CUT_SHORT_MIN * 60_000));
        let kind = kind_of.get(e.unit.as_str()).copied().unwrap_or("unknown");
        let group_ok = kind == "car" || e.crew >= 2;
        let f = force
            .entry((e.date, e.window.clone(), e.zone.clone()))
            .or_insert(ForceTally {
                level: e.level,
                ..ForceTally::default()
            });
        f.rostered += 1;
        f.on_patrol += u32::from(on_patrol == Some(true));
        f.without_data += u32::from(!complete);
        judged.push((*s, *end, e.zone.as_str(), complete));
        p.date.push(e.date.to_string());
        p.unit.push(e.unit.clone());
        p.kind.push(kind.to_owned());
        p.zone.push(e.zone.clone());
        p.window.push(e.window.clone());
        p.shift_minutes.push(shift as f64 / 60_000.0);
        p.tracked_minutes.push(tracked as f64 / 60_000.0);
        p.in_zone_minutes.push(inz as f64 / 60_000.0);
        p.in_zone_share.push(share);
        p.on_patrol.push(on_patrol);
        p.minutes_short.push(
            complete.then(|| last.map_or(shift as f64, |l| (end - l).max(0) as f64) / 60_000.0),
        );
        p.cut_short.push(cut_short);
        p.crew.push(u32::from(e.crew));
        p.group_ok.push(group_ok);
        p.data.push(data.name());
    }

    let station_of: HashMap<&str, &str> = inputs
        .zones
        .iter()
        .map(|z| (z.id.as_str(), z.station.as_str()))
        .collect();
    let mut zones_per_station: HashMap<&str, u32> = HashMap::new();
    for z in inputs.zones {
        *zones_per_station.entry(z.station.as_str()).or_default() += 1;
    }
    let mut units_per_station: HashMap<&str, u32> = HashMap::new();
    for u in inputs.units {
        *units_per_station.entry(u.station.as_str()).or_default() += 1;
    }
    let mut fr = ForceRows::default();
    for ((date, window, zone), tally) in force {
        let ForceTally {
            level,
            rostered,
            on_patrol,
            without_data,
        } = tally;
        let station = station_of.get(zone.as_str()).copied().unwrap_or("");
        let share = inputs.levels.share(level).unwrap_or(0.0);
        let required = required_force(
            share,
            units_per_station.get(station).copied().unwrap_or(0),
            zones_per_station.get(station).copied().unwrap_or(1),
        );
        let ok = if on_patrol >= required {
            Some(true)
        } else if on_patrol + without_data < required {
            Some(false)
        } else {
            None
        };
        fr.date.push(date.to_string());
        fr.window.push(window);
        fr.zone.push(zone);
        fr.level.push(u32::from(level));
        fr.level_share.push(share);
        fr.required.push(required);
        fr.rostered.push(rostered);
        fr.on_patrol.push(on_patrol);
        fr.ok.push(ok);
        fr.without_data.push(without_data);
    }

    // Each roster entry as the checkpoints see it: its shift, its station, complete or not.
    let rostered: Vec<Rostered<'_>> = judged
        .into_iter()
        .map(|(start_ms, end_ms, zone, complete)| Rostered {
            start_ms,
            end_ms,
            station: station_of.get(zone).copied().unwrap_or(""),
            complete,
        })
        .collect();
    let checkpoints = checkpoint_visits(ctx, &inputs, &rostered, &at_cp)?;
    Ok(Compliance {
        patrols: p.into_frame()?,
        force: fr.into_frame()?,
        checkpoints,
    })
}

/// The entries of one date, window and zone, as the force table counts them.
#[derive(Default)]
struct ForceTally {
    /// The zone's patrol level that day.
    level: u8,
    rostered: u32,
    /// Entries with complete data on patrol.
    on_patrol: u32,
    /// Entries without complete data.
    without_data: u32,
}

/// What the store holds for the roster: the entries whose unit sent a fix in its shift, the
/// UTC hours with a fix of any unit (their start, epoch ms), and the last fix at or after the
/// span start.
struct StoreData {
    reported: HashSet<u32>,
    hours: HashSet<i64>,
    end_ms: Option<i64>,
}

impl StoreData {
    /// The data status of entry `entry`, shift `[s, e)`.
    fn status(&self, entry: u32, s: i64, e: i64) -> DataStatus {
        let judged_to = e - CUT_SHORT_MIN * 60_000;
        if self.end_ms.is_none_or(|end| end < judged_to) {
            return DataStatus::AfterDataEnd;
        }
        let hours = s.div_euclid(HOUR_MS)..=(e - 1).div_euclid(HOUR_MS);
        let with_data = hours
            .clone()
            .filter(|h| self.hours.contains(&(h * HOUR_MS)))
            .count();
        if with_data == 0 {
            DataStatus::NoStoreData
        } else if !self.reported.contains(&entry) {
            DataStatus::NoUnitData
        } else if with_data < hours.count() {
            DataStatus::Partial
        } else {
            DataStatus::Complete
        }
    }
}

/// A roster entry as the checkpoints see it.
struct Rostered<'a> {
    start_ms: i64,
    end_ms: i64,
    /// The station of its zone.
    station: &'a str,
    /// Its data status is complete.
    complete: bool,
}

/// The station of the beat `c` lies in, else of the zone it lies in; `None` in neither.
fn checkpoint_station<'a>(c: &Checkpoint, inputs: &ComplianceInputs<'a>) -> Option<&'a str> {
    let at = Point::new(c.lon, c.lat);
    inputs
        .beats
        .iter()
        .chain(inputs.zones)
        .find(|f| f.geometry.contains(&at))
        .map(|f| f.station.as_str())
}

/// A dwell: unit, start, length (ms), checkpoint index.
type Dwell = (String, i64, i64, u32);

fn checkpoint_visits(
    ctx: &JobContext,
    inputs: &ComplianceInputs<'_>,
    rostered: &[Rostered<'_>],
    at_cp: &DataFrame,
) -> Result<DataFrame, AnalyticsError> {
    let unit = at_cp.column(UNIT)?.str()?;
    let t = at_cp.column("t")?.i64()?;
    let dt = at_cp.column("dt")?.i64()?;
    let cp = at_cp.column("cp_a")?.u32()?;
    let mut dwells: Vec<Dwell> = Vec::new();
    for i in 0..at_cp.height() {
        let (Some(u), Some(t), Some(dt), Some(c)) = (unit.get(i), t.get(i), dt.get(i), cp.get(i))
        else {
            continue;
        };
        match dwells.last_mut() {
            Some(last) if last.0 == u && last.3 == c && last.1 + last.2 == t => last.2 += dt,
            _ => dwells.push((u.to_owned(), t, dt, c)),
        }
    }
    let tz = ctx.clock.tz();
    let mut rows = CheckpointRows::default();
    for (ci, c) in inputs.checkpoints.iter().enumerate() {
        let Some((start, end)) = c.window.filter(|_| c.kind == CheckpointKind::Patrol) else {
            continue;
        };
        let station = checkpoint_station(c, inputs);
        let window = &Window {
            name: c.id.clone(),
            start,
            end,
        };
        let need = i64::from(c.min_dwell_s) * 1000;
        for inst in window_instances(tz, std::slice::from_ref(window), ctx.from_ms, ctx.to_ms) {
            let best = dwells
                .iter()
                .filter(|d| d.3 as usize == ci && (inst.start_ms..inst.end_ms).contains(&d.1))
                .max_by_key(|d| (d.2, std::cmp::Reverse(d.1)));
            let first_ok = dwells
                .iter()
                .filter(|d| {
                    d.3 as usize == ci && (inst.start_ms..inst.end_ms).contains(&d.1) && d.2 >= need
                })
                .min_by_key(|d| d.1);
            let covering: Vec<&Rostered<'_>> = rostered
                .iter()
                .filter(|r| {
                    r.start_ms < inst.end_ms
                        && inst.start_ms < r.end_ms
                        && station.is_none_or(|s| s == r.station)
                })
                .collect();
            let status = if first_ok.is_some() {
                CheckpointStatus::Visited
            } else if covering.is_empty() {
                CheckpointStatus::NotRostered
            } else if covering.iter().any(|r| r.complete) {
                CheckpointStatus::Missed
            } else {
                CheckpointStatus::NoData
            };
            rows.date.push(day_to_date(inst.day).to_string());
            rows.checkpoint.push(c.id.clone());
            rows.name.push(c.name.clone());
            rows.window.push(format!(
                "{}-{}",
                window.start.format("%H:%M"),
                window.end.format("%H:%M")
            ));
            rows.visited.push(first_ok.is_some());
            rows.unit.push(first_ok.map(|d| d.0.clone()));
            rows.first_visit.push(first_ok.and_then(|d| {
                chrono::DateTime::<chrono::Utc>::from_timestamp_millis(d.1).map(|t| t.to_rfc3339())
            }));
            rows.longest_dwell_s
                .push(best.map_or(0.0, |d| d.2 as f64 / 1000.0));
            rows.min_dwell_s.push(c.min_dwell_s);
            rows.status.push(status.name());
        }
    }
    rows.into_frame()
}

#[derive(Default)]
struct PatrolRows {
    date: Vec<String>,
    unit: Vec<String>,
    kind: Vec<String>,
    zone: Vec<String>,
    window: Vec<String>,
    shift_minutes: Vec<f64>,
    tracked_minutes: Vec<f64>,
    in_zone_minutes: Vec<f64>,
    in_zone_share: Vec<f64>,
    on_patrol: Vec<Option<bool>>,
    minutes_short: Vec<Option<f64>>,
    cut_short: Vec<Option<bool>>,
    crew: Vec<u32>,
    group_ok: Vec<bool>,
    data: Vec<&'static str>,
}

impl PatrolRows {
    fn into_frame(self) -> Result<DataFrame, AnalyticsError> {
        Ok(DataFrame::new_infer_height(vec![
            Column::new("date".into(), self.date),
            Column::new("unit".into(), self.unit),
            Column::new("kind".into(), self.kind),
            Column::new("zone".into(), self.zone),
            Column::new("window".into(), self.window),
            Column::new("shift_minutes".into(), self.shift_minutes),
            Column::new("tracked_minutes".into(), self.tracked_minutes),
            Column::new("in_zone_minutes".into(), self.in_zone_minutes),
            Column::new("in_zone_share".into(), self.in_zone_share),
            Column::new("on_patrol".into(), self.on_patrol),
            Column::new("minutes_short".into(), self.minutes_short),
            Column::new("cut_short".into(), self.cut_short),
            Column::new("crew".into(), self.crew),
            Column::new("group_ok".into(), self.group_ok),
            Column::new("data".into(), self.data),
        ])?)
    }
}

#[derive(Default)]
struct ForceRows {
    date: Vec<String>,
    window: Vec<String>,
    zone: Vec<String>,
    level: Vec<u32>,
    level_share: Vec<f64>,
    required: Vec<u32>,
    rostered: Vec<u32>,
    on_patrol: Vec<u32>,
    ok: Vec<Option<bool>>,
    without_data: Vec<u32>,
}

impl ForceRows {
    fn into_frame(self) -> Result<DataFrame, AnalyticsError> {
        Ok(DataFrame::new_infer_height(vec![
            Column::new("date".into(), self.date),
            Column::new("window".into(), self.window),
            Column::new("zone".into(), self.zone),
            Column::new("level".into(), self.level),
            Column::new("level_share".into(), self.level_share),
            Column::new("required".into(), self.required),
            Column::new("rostered".into(), self.rostered),
            Column::new("on_patrol".into(), self.on_patrol),
            Column::new("ok".into(), self.ok),
            Column::new("without_data".into(), self.without_data),
        ])?)
    }
}

#[derive(Default)]
struct CheckpointRows {
    date: Vec<String>,
    checkpoint: Vec<String>,
    name: Vec<String>,
    window: Vec<String>,
    visited: Vec<bool>,
    unit: Vec<Option<String>>,
    first_visit: Vec<Option<String>>,
    longest_dwell_s: Vec<f64>,
    min_dwell_s: Vec<u32>,
    status: Vec<&'static str>,
}

impl CheckpointRows {
    fn into_frame(self) -> Result<DataFrame, AnalyticsError> {
        Ok(DataFrame::new_infer_height(vec![
            Column::new("date".into(), self.date),
            Column::new("checkpoint".into(), self.checkpoint),
            Column::new("name".into(), self.name),
            Column::new("window".into(), self.window),
            Column::new("visited".into(), self.visited),
            Column::new("unit".into(), self.unit),
            Column::new("first_visit".into(), self.first_visit),
            Column::new("longest_dwell_s".into(), self.longest_dwell_s),
            Column::new("min_dwell_s".into(), self.min_dwell_s),
            Column::new("status".into(), self.status),
        ])?)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use chrono::{NaiveDate, NaiveTime};

    use super::*;
    use crate::testing::{Fix, cells9, centre, ms, pings, windows};

    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn entry(unit: &str, zone: &str, crew: u8, level: u8) -> RosterEntry {
        RosterEntry {
            date: NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
            unit: unit.into(),
            zone: zone.into(),
            window: "day".into(),
            start: hm(8, 30),
            end: hm(11, 20),
            crew,
            level,
        }
    }

    fn unit(id: &str, kind: &str) -> Unit {
        Unit {
            id: id.into(),
            kind: kind.parse().unwrap(),
            station: "ST1".into(),
            crew: 1,
            devices: Default::default(),
        }
    }

    fn zone(id: &str) -> Fence {
        Fence {
            id: id.into(),
            name: id.into(),
            station: "ST1".into(),
            kind: model::fences::FenceKind::Zone,
            geometry: geo::MultiPolygon(vec![]),
        }
    }

    /// A beat of `station`: a square of about 200 m around the centre of `cell`.
    fn beat(id: &str, station: &str, cell: u64) -> Fence {
        let c = centre(cell);
        let d = 0.001;
        let square = geo::Rect::new(
            geo::coord! { x: c.lng() - d, y: c.lat() - d },
            geo::coord! { x: c.lng() + d, y: c.lat() + d },
        );
        Fence {
            id: id.into(),
            name: id.into(),
            station: station.into(),
            kind: model::fences::FenceKind::Beat,
            geometry: geo::MultiPolygon(vec![square.to_polygon()]),
        }
    }

    fn levels() -> Levels {
        Levels {
            level1: 0.6667,
            level2: 0.5,
            level3: 0.3333,
        }
    }

    /// The compliance of `fixes` from 2026-11-02 00:00 to 2026-11-04 00:00 Chicago time.
    fn run(fixes: &[Fix], inputs: ComplianceInputs<'_>) -> Compliance {
        let ctx = JobContext::new(
            chrono_tz::America::Chicago,
            windows(),
            (ms("2026-11-02T06:00:00Z"), ms("2026-11-04T06:00:00Z")),
            (9, 11),
            120,
        )
        .unwrap();
        compliance(&ctx, pings(fixes), inputs).unwrap()
    }

    /// `unit` reporting from `zone` at `cell` every minute of `[from, to)`.
    fn every_minute(
        unit: &'static str,
        zone: &'static str,
        cell: u64,
        from: i64,
        to: i64,
    ) -> Vec<Fix> {
        (from..to)
            .step_by(60_000)
            .map(|t| Fix::at(unit, t, cell).zone(zone))
            .collect()
    }

    fn texts(df: &DataFrame, name: &str) -> Vec<String> {
        let c = df.column(name).unwrap().str().unwrap();
        (0..c.len()).map(|i| c.get(i).unwrap().to_owned()).collect()
    }

    fn opt_bools(df: &DataFrame, name: &str) -> Vec<Option<bool>> {
        let c = df.column(name).unwrap().bool().unwrap();
        (0..c.len()).map(|i| c.get(i)).collect()
    }

    fn checkpoint(id: &str, cell: u64, dwell: u32) -> Checkpoint {
        let c = centre(cell);
        Checkpoint {
            id: id.into(),
            name: id.into(),
            kind: CheckpointKind::Patrol,
            lat: c.lat(),
            lon: c.lng(),
            radius_m: 50.0,
            min_dwell_s: dwell,
            window: Some((hm(23, 0), hm(5, 0))),
        }
    }

    #[test]
    fn hand_computed_compliance() {
        let (x, _, z) = cells9();
        let shift = ms("2026-11-02T14:30:00Z"); // 08:30 CST
        let night = ms("2026-11-03T05:10:00Z"); // 23:10 CST on the 2nd
        let mut fixes = Vec::new();
        // F01 the whole shift in Z1, every minute; B07 the first 85 minutes.
        for m in 0..=170 {
            fixes.push(Fix::at("F01", shift + m * 60_000, x).zone("Z1"));
        }
        for m in 0..=85 {
            fixes.push(Fix::at("B07", shift + m * 60_000, x).zone("Z1"));
        }
        // N01 stays 240 s at CPA (needs 210 s) and 120 s at CPB (needs 300 s).
        for k in 0..=8 {
            fixes.push(Fix::at("N01", night + k * 30_000, x));
        }
        for k in 0..=4 {
            fixes.push(Fix::at("N01", night + 600_000 + k * 30_000, z));
        }
        let roster = [
            entry("F01", "Z1", 2, 3),
            entry("B07", "Z1", 1, 3),
            entry("C01", "Z2", 1, 1),
        ];
        let units = [unit("F01", "foot"), unit("B07", "bike"), unit("C01", "car")];
        let zones = [zone("Z1"), zone("Z2")];
        let cps = [checkpoint("CPA", x, 210), checkpoint("CPB", z, 300)];
        let ctx = JobContext::new(
            chrono_tz::America::Chicago,
            windows(),
            (ms("2026-11-02T06:00:00Z"), ms("2026-11-03T06:00:00Z")),
            (9, 11),
            120,
        )
        .unwrap();
        let inputs = ComplianceInputs {
            roster: &roster,
            units: &units,
            zones: &zones,
            beats: &[],
            checkpoints: &cps,
            levels: levels(),
        };
        let c = compliance(&ctx, pings(&fixes), inputs).unwrap();
        let p = &c.patrols;
        let f64s = |df: &DataFrame, name: &str| -> Vec<f64> {
            df.column(name)
                .unwrap()
                .f64()
                .unwrap()
                .into_no_null_iter()
                .collect()
        };
        let bools = |df: &DataFrame, name: &str| -> Vec<bool> {
            let c = df.column(name).unwrap().bool().unwrap();
            (0..c.len()).map(|i| c.get(i).unwrap()).collect()
        };
        let u32s = |df: &DataFrame, name: &str| -> Vec<u32> {
            df.column(name)
                .unwrap()
                .u32()
                .unwrap()
                .into_no_null_iter()
                .collect()
        };
        assert_eq!(f64s(p, "shift_minutes"), [170.0, 170.0, 170.0]);
        assert_eq!(f64s(p, "in_zone_minutes"), [170.0, 85.0, 0.0]);
        assert_eq!(f64s(p, "in_zone_share"), [1.0, 0.5, 0.0]);
        // C01 sent nothing while the others reported: no data from the unit, not judged.
        assert_eq!(texts(p, "data"), ["complete", "complete", "no_unit_data"]);
        assert_eq!(opt_bools(p, "on_patrol"), [Some(true), Some(true), None]);
        let short = p.column("minutes_short").unwrap().f64().unwrap();
        let short: Vec<Option<f64>> = (0..short.len()).map(|i| short.get(i)).collect();
        assert_eq!(short, [Some(0.0), Some(85.0), None]);
        assert_eq!(opt_bools(p, "cut_short"), [Some(false), Some(true), None]);
        assert_eq!(bools(p, "group_ok"), [true, false, true]);
        // Z1 at level 3: round(0.3333 × 3 units / 2 zones) = 0, at least 1; Z2 at level 1:
        // round(0.6667 × 3 / 2) = 1, and its one entry has no data, so the data cannot tell.
        let force = &c.force;
        assert_eq!(u32s(force, "required"), [1, 1]);
        assert_eq!(u32s(force, "rostered"), [2, 1]);
        assert_eq!(u32s(force, "on_patrol"), [2, 0]);
        assert_eq!(u32s(force, "without_data"), [0, 1]);
        assert_eq!(opt_bools(force, "ok"), [Some(true), None]);
        // Nobody is rostered at night: CPA was visited all the same, CPB is not missed.
        let cp = &c.checkpoints;
        assert_eq!(cp.height(), 2);
        assert_eq!(bools(cp, "visited"), [true, false]);
        assert_eq!(texts(cp, "status"), ["visited", "not_rostered"]);
        assert_eq!(f64s(cp, "longest_dwell_s"), [240.0, 120.0]);
        let first = cp
            .column("first_visit")
            .unwrap()
            .str()
            .unwrap()
            .get(0)
            .unwrap()
            .to_owned();
        assert_eq!(first, "2026-11-03T05:10:00+00:00");
        assert_eq!(
            cp.column("date").unwrap().str().unwrap().get(0),
            Some("2026-11-02")
        );
    }

    /// The store has no fix at all on 2 November: its entries are no data from the store,
    /// none cut short or off patrol, while those of the 3rd are judged.
    #[test]
    fn a_day_without_pings_is_no_data_not_cut_short() {
        let (x, _, _) = cells9();
        let on_3rd = ms("2026-11-03T14:30:00Z"); // 08:30 CST
        let mut fixes = every_minute("F01", "Z1", x, on_3rd, on_3rd + 170 * 60_000);
        fixes.extend(every_minute("B07", "Z1", x, on_3rd, on_3rd + 60 * 60_000));
        let day = |unit: &str, date: &str| RosterEntry {
            date: date.parse().unwrap(),
            ..entry(unit, "Z1", 2, 3)
        };
        let roster = [
            day("F01", "2026-11-02"),
            day("B07", "2026-11-02"),
            day("F01", "2026-11-03"),
            day("B07", "2026-11-03"),
        ];
        let units = [unit("F01", "foot"), unit("B07", "bike")];
        let c = run(
            &fixes,
            ComplianceInputs {
                roster: &roster,
                units: &units,
                zones: &[zone("Z1")],
                beats: &[],
                checkpoints: &[],
                levels: levels(),
            },
        );
        let p = &c.patrols;
        assert_eq!(
            texts(p, "data"),
            ["no_store_data", "no_store_data", "complete", "complete"]
        );
        assert_eq!(
            opt_bools(p, "cut_short"),
            [None, None, Some(false), Some(true)]
        );
        assert_eq!(
            opt_bools(p, "on_patrol"),
            [None, None, Some(true), Some(false)]
        );
        // The 2nd's force is not missing: the data cannot tell.
        assert_eq!(opt_bools(&c.force, "ok"), [None, Some(true)]);
        assert_eq!(
            c.force
                .column("without_data")
                .unwrap()
                .u32()
                .unwrap()
                .get(0),
            Some(2)
        );
    }

    /// A night shift still running when the data ends is after the data end, not cut short.
    #[test]
    fn a_night_shift_past_the_data_end_is_not_cut_short() {
        let (x, _, _) = cells9();
        let night = ms("2026-11-03T05:00:00Z"); // 23:00 CST on the 2nd
        // In zone from 23:00 to 02:00, when the store's data ends.
        let fixes = every_minute("N01", "Z1", x, night, night + 180 * 60_000 + 1);
        let roster = [RosterEntry {
            window: "night".into(),
            start: hm(23, 0),
            end: hm(5, 0),
            ..entry("N01", "Z1", 2, 3)
        }];
        let c = run(
            &fixes,
            ComplianceInputs {
                roster: &roster,
                units: &[unit("N01", "car")],
                zones: &[zone("Z1")],
                beats: &[],
                checkpoints: &[],
                levels: levels(),
            },
        );
        let p = &c.patrols;
        assert_eq!(texts(p, "data"), ["after_data_end"]);
        assert_eq!(opt_bools(p, "cut_short"), [None]);
        assert_eq!(opt_bools(p, "on_patrol"), [None]);
        assert_eq!(
            p.column("in_zone_minutes").unwrap().f64().unwrap().get(0),
            Some(180.0)
        );
    }

    /// CPA lies in a beat of ST1, CPB in one of ST2, and only ST1's zone is rostered at
    /// night: CPB is never missed. On the first night N01 reports away from CPA (missed); on
    /// the second it sends nothing while another unit reports (no data).
    #[test]
    fn checkpoints_are_missed_only_when_rostered_with_data() {
        let (x, y, z) = cells9();
        let night = |d: &str| ms(&format!("2026-11-{d}T05:00:00Z")); // 23:00 CST the day before
        let mut fixes = every_minute("N01", "Z1", y, night("03"), night("03") + 360 * 60_000);
        fixes.extend(every_minute(
            "X01",
            "Z1",
            y,
            night("04"),
            night("04") + 360 * 60_000,
        ));
        let at_night = |date: &str| RosterEntry {
            date: date.parse().unwrap(),
            window: "night".into(),
            start: hm(23, 0),
            end: hm(5, 0),
            ..entry("N01", "Z1", 2, 3)
        };
        let roster = [at_night("2026-11-02"), at_night("2026-11-03")];
        let mut z2 = zone("Z2");
        z2.station = "ST2".into();
        let c = run(
            &fixes,
            ComplianceInputs {
                roster: &roster,
                units: &[unit("N01", "car"), unit("X01", "car")],
                zones: &[zone("Z1"), z2],
                beats: &[beat("BA", "ST1", x), beat("BB", "ST2", z)],
                checkpoints: &[checkpoint("CPA", x, 210), checkpoint("CPB", z, 210)],
                levels: levels(),
            },
        );
        assert_eq!(texts(&c.patrols, "data"), ["complete", "no_unit_data"]);
        let cp = &c.checkpoints;
        assert_eq!(
            texts(cp, "status"),
            ["missed", "no_data", "not_rostered", "not_rostered"]
        );
        assert_eq!(
            texts(cp, "date"),
            ["2026-11-02", "2026-11-03", "2026-11-02", "2026-11-03"]
        );
        assert_eq!(opt_bools(cp, "visited"), [Some(false); 4]);
    }
}
