//! Job 7, response per incident (straight line): which rostered unit was nearest when the
//! call came in, and, where the incident names its dispatched unit, the response times its
//! track shows.
//!
//! Definitions (flags as in [`crate::context`]):
//! - *on duty*: the unit has a roster entry whose shift covers the received time;
//! - a unit's *position* at an instant is its last trusted fix at or before it, if that fix is
//!   at most the gap cap older; distances are great-circle (haversine, mean earth radius);
//! - *nearest*: the on-duty unit with a position nearest the incident (`units_on_duty` counts
//!   those with a position);
//! - for the dispatched unit: `received_to_dispatched_s` from the file; *arrival* is its first
//!   trusted fix within [`ARRIVAL_M`] of the incident after `dispatched` (looked for up to
//!   [`LOOK_AHEAD_MIN`] minutes); *on scene* runs from arrival to the last fix of the run of
//!   consecutive fixes within [`ARRIVAL_M`] that are at most the gap cap apart;
//!   `track_minus_reported_s` compares the track's arrival with the file's `arrived`.
//!   Road travel times are another job's (`response`); this one is straight line only.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use model::jurisdiction::{Incident, RosterEntry};
use polars::prelude::*;

use crate::AnalyticsError;
use crate::context::JobContext;
use crate::distance::haversine_m;
use crate::store::{FIX_TIME, FLAG_JUMP, FLAG_LOW_ACCURACY, FLAGS, LAT, LON, UNIT};

/// A unit within this distance (m) of the incident has arrived.
pub const ARRIVAL_M: f64 = 100.0;
/// How long after dispatch the track is searched for the arrival, minutes.
pub const LOOK_AHEAD_MIN: i64 = 120;

/// A fix: time, lat, lon.
type Track = Vec<(i64, f64, f64)>;

/// The trusted fixes around the incidents: for each incident, from a gap cap before it was
/// received to [`LOOK_AHEAD_MIN`] after it was dispatched (or received). Columns `unit`, `t`,
/// `lat`, `lon`, sorted by unit and time.
pub fn track_plan(ctx: &JobContext, pings: LazyFrame, incidents: &[&Incident]) -> LazyFrame {
    let mut spans: Vec<(i64, i64)> = incidents
        .iter()
        .map(|i| {
            let r = i.received.timestamp_millis();
            let d = i.dispatched.map_or(r, |d| d.timestamp_millis());
            (r - ctx.gap_cap_ms, d.max(r) + LOOK_AHEAD_MIN * 60_000)
        })
        .collect();
    spans.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::new();
    for (s, e) in spans {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    let t = col(FIX_TIME).cast(DataType::Int64);
    let inside = merged.iter().fold(lit(false), |acc, (s, e)| {
        acc.or(t.clone().gt_eq(lit(*s)).and(t.clone().lt_eq(lit(*e))))
    });
    let trusted = (col(FLAGS) % lit(FLAG_LOW_ACCURACY + FLAG_JUMP + 1)).eq(lit(0));
    pings
        .filter(inside.and(trusted))
        .select([col(UNIT), t.alias("t"), col(LAT), col(LON)])
        .sort([UNIT, "t"], SortMultipleOptions::default())
}

/// The position of a track at `at`: its last fix at or before, at most `cap` ms older.
fn position(track: &Track, at: i64, cap: i64) -> Option<(f64, f64)> {
    let i = track.partition_point(|f| f.0 <= at);
    let f = track.get(i.checked_sub(1)?)?;
    (at - f.0 <= cap).then_some((f.1, f.2))
}

/// Runs the job for the incidents received in `[from, to)`. Columns: `id`, `received`,
/// `category`, `priority`, `units_on_duty`, `nearest_unit`, `nearest_km`, `unit`,
/// `unit_km`, `received_to_dispatched_s`, `dispatched_to_arrived_s`, `arrived_track`,
/// `on_scene_minutes`, `track_minus_reported_s`.
///
/// # Errors
/// A polars error.
pub fn incident_response(
    ctx: &JobContext,
    pings: LazyFrame,
    incidents: &[Incident],
    roster: &[RosterEntry],
) -> Result<DataFrame, AnalyticsError> {
    let chosen: Vec<&Incident> = incidents
        .iter()
        .filter(|i| (ctx.from_ms..ctx.to_ms).contains(&i.received.timestamp_millis()))
        .collect();
    let df = track_plan(ctx, pings, &chosen).collect()?;
    let mut tracks: HashMap<String, Track> = HashMap::new();
    {
        let unit = df.column(UNIT)?.str()?;
        let t = df.column("t")?.i64()?;
        let lat = df.column(LAT)?.f64()?;
        let lon = df.column(LON)?.f64()?;
        for k in 0..df.height() {
            if let (Some(u), Some(t), Some(la), Some(lo)) =
                (unit.get(k), t.get(k), lat.get(k), lon.get(k))
            {
                tracks.entry(u.to_owned()).or_default().push((t, la, lo));
            }
        }
    }
    let tz = ctx.clock.tz();
    let shifts = roster
        .iter()
        .map(|e| {
            let (s, end) = e.utc_ms(tz)?;
            Ok((e.unit.as_str(), s, end))
        })
        .collect::<Result<Vec<(&str, i64, i64)>, AnalyticsError>>()?;
    let cap = ctx.gap_cap_ms;
    let stamp = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms).map(|t| t.to_rfc3339());
    let mut rows = Rows::default();
    for inc in chosen {
        let r = inc.received.timestamp_millis();
        let mut on_duty: Vec<&str> = shifts
            .iter()
            .filter(|(_, s, e)| (*s..*e).contains(&r))
            .map(|(u, _, _)| *u)
            .collect();
        on_duty.sort_unstable();
        on_duty.dedup();
        let mut nearest: Option<(f64, &str)> = None;
        let mut with_position = 0u32;
        for u in on_duty {
            if let Some((la, lo)) = tracks.get(u).and_then(|t| position(t, r, cap)) {
                with_position += 1;
                let d = haversine_m(la, lo, inc.lat, inc.lon);
                if nearest.is_none_or(|(best, _)| d < best) {
                    nearest = Some((d, u));
                }
            }
        }
        let track = inc.unit.as_deref().and_then(|u| tracks.get(u));
        let unit_km = track
            .and_then(|t| position(t, r, cap))
            .map(|(la, lo)| haversine_m(la, lo, inc.lat, inc.lon) / 1000.0);
        let dispatched = inc.dispatched.map(|d| d.timestamp_millis());
        // Arrival and the on-scene run.
        let mut arrival: Option<i64> = None;
        let mut scene_end: Option<i64> = None;
        if let (Some(track), Some(d)) = (track, dispatched) {
            let near = |f: &(i64, f64, f64)| haversine_m(f.1, f.2, inc.lat, inc.lon) <= ARRIVAL_M;
            let start = track.partition_point(|f| f.0 < d);
            let limit = d + LOOK_AHEAD_MIN * 60_000;
            if let Some(first) = (start..track.len())
                .take_while(|&k| track[k].0 <= limit)
                .find(|&k| near(&track[k]))
            {
                arrival = Some(track[first].0);
                let mut last = first;
                while last + 1 < track.len()
                    && near(&track[last + 1])
                    && track[last + 1].0 - track[last].0 <= cap
                {
                    last += 1;
                }
                scene_end = Some(track[last].0);
            }
        }
        rows.id.push(inc.id.clone());
        rows.received.push(inc.received.to_rfc3339());
        rows.category.push(inc.category.clone());
        rows.priority.push(u32::from(inc.priority));
        rows.on_duty.push(with_position);
        rows.nearest_unit.push(nearest.map(|(_, u)| u.to_owned()));
        rows.nearest_km.push(nearest.map(|(d, _)| d / 1000.0));
        rows.unit.push(inc.unit.clone());
        rows.unit_km.push(unit_km);
        rows.to_dispatch
            .push(dispatched.map(|d| (d - r) as f64 / 1000.0));
        rows.to_arrive.push(
            arrival
                .zip(dispatched)
                .map(|(a, d)| (a - d) as f64 / 1000.0),
        );
        rows.arrived.push(arrival.and_then(stamp));
        rows.on_scene.push(
            arrival
                .zip(scene_end)
                .map(|(a, e)| (e - a) as f64 / 60_000.0),
        );
        rows.vs_reported.push(
            arrival
                .zip(inc.arrived)
                .map(|(a, rep)| (a - rep.timestamp_millis()) as f64 / 1000.0),
        );
    }
    rows.into_frame()
}

#[derive(Default)]
struct Rows {
    id: Vec<String>,
    received: Vec<String>,
    category: Vec<String>,
    priority: Vec<u32>,
    on_duty: Vec<u32>,
    nearest_unit: Vec<Option<String>>,
    nearest_km: Vec<Option<f64>>,
    unit: Vec<Option<String>>,
    unit_km: Vec<Option<f64>>,
    to_dispatch: Vec<Option<f64>>,
    to_arrive: Vec<Option<f64>>,
    arrived: Vec<Option<String>>,
    on_scene: Vec<Option<f64>>,
    vs_reported: Vec<Option<f64>>,
}

impl Rows {
    fn into_frame(self) -> Result<DataFrame, AnalyticsError> {
        Ok(DataFrame::new_infer_height(vec![
            Column::new("id".into(), self.id),
            Column::new("received".into(), self.received),
            Column::new("category".into(), self.category),
            Column::new("priority".into(), self.priority),
            Column::new("units_on_duty".into(), self.on_duty),
            Column::new("nearest_unit".into(), self.nearest_unit),
            Column::new("nearest_km".into(), self.nearest_km),
            Column::new("unit".into(), self.unit),
            Column::new("unit_km".into(), self.unit_km),
            Column::new("received_to_dispatched_s".into(), self.to_dispatch),
            Column::new("dispatched_to_arrived_s".into(), self.to_arrive),
            Column::new("arrived_track".into(), self.arrived),
            Column::new("on_scene_minutes".into(), self.on_scene),
            Column::new("track_minus_reported_s".into(), self.vs_reported),
        ])?)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use chrono::{NaiveDate, NaiveTime};

    use super::*;
    use crate::testing::{Fix, cells9, centre, ms, pings, windows};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn hand_computed_response() {
        let (x, y, z) = cells9();
        let t0 = ms("2026-11-02T15:00:00Z");
        let s = 1000;
        let cx = centre(x);
        let mut fixes = Vec::new();
        // C01 waits at y, then drives to x (arrives at +300 s) and stays to +900 s.
        for k in 0..10 {
            fixes.push(Fix::at("C01", t0 - 60 * s + k * 30 * s, y));
        }
        for k in 0..=20 {
            fixes.push(Fix::at("C01", t0 + 300 * s + k * 30 * s, x));
        }
        fixes.push(Fix::at("C01", t0 + 960 * s, z));
        // C02 sits at z (farther), C03 at x but off duty.
        fixes.push(Fix::at("C02", t0 - 30 * s, z));
        fixes.push(Fix::at("C03", t0 - 30 * s, x));
        let roster: Vec<RosterEntry> = ["C01", "C02"]
            .iter()
            .map(|u| RosterEntry {
                date: NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
                unit: (*u).into(),
                zone: "Z1".into(),
                window: "day".into(),
                start: NaiveTime::from_hms_opt(8, 30, 0).unwrap(),
                end: NaiveTime::from_hms_opt(11, 20, 0).unwrap(),
                crew: 1,
                level: 3,
            })
            .collect();
        let incident = Incident {
            id: "IN1".into(),
            received: at("2026-11-02T15:00:00Z"),
            lat: cx.lat(),
            lon: cx.lng(),
            category: "theft".into(),
            priority: 1,
            unit: Some("C01".into()),
            dispatched: Some(at("2026-11-02T15:01:00Z")),
            arrived: Some(at("2026-11-02T15:04:30Z")),
        };
        let ctx = JobContext::new(
            chrono_tz::America::Chicago,
            windows(),
            (ms("2026-11-02T06:00:00Z"), ms("2026-11-03T06:00:00Z")),
            (9, 11),
            120,
        )
        .unwrap();
        let df = incident_response(&ctx, pings(&fixes), &[incident], &roster).unwrap();
        let f = |c: &str| df.column(c).unwrap().f64().unwrap().get(0);
        let st = |c: &str| {
            df.column(c)
                .unwrap()
                .str()
                .unwrap()
                .get(0)
                .map(str::to_owned)
        };
        let cy = centre(y);
        assert_eq!(
            df.column("units_on_duty").unwrap().u32().unwrap().get(0),
            Some(2)
        );
        assert_eq!(st("nearest_unit").as_deref(), Some("C01"));
        let want_km = haversine_m(cy.lat(), cy.lng(), cx.lat(), cx.lng()) / 1000.0;
        assert_eq!(f("nearest_km"), Some(want_km));
        assert_eq!(f("unit_km"), Some(want_km));
        assert_eq!(f("received_to_dispatched_s"), Some(60.0));
        assert_eq!(f("dispatched_to_arrived_s"), Some(240.0));
        assert_eq!(
            st("arrived_track").as_deref(),
            Some("2026-11-02T15:05:00+00:00")
        );
        assert_eq!(f("on_scene_minutes"), Some(10.0));
        assert_eq!(f("track_minus_reported_s"), Some(30.0));
    }
}
