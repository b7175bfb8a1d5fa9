//! Builds the simulated fleet from a jurisdiction directory: the road graph, the road nodes of
//! each zone, checkpoints and stations snapped to roads, and each unit's shifts.
//!
//! The roster covers a span of days; dates outside it reuse it cyclically (day `d` uses roster
//! day `first + (d - first) mod span`), so the demo has a roster whatever today is.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use analytics::roads::{RoadNetwork, SpeedTable};
use anyhow::Context;
use chrono::{NaiveDate, TimeZone, Timelike};
use chrono_tz::Tz;
use geo::{Contains, Point};
use model::jurisdiction::{CheckpointKind, Jurisdiction, RosterEntry};

use super::model::{Shift, UnitModel, World};

/// Everything the simulator needs.
#[derive(Debug)]
pub struct Fleet {
    /// Roads, zones, checkpoints, stations.
    pub world: World,
    /// One model per unit.
    pub units: Vec<UnitModel>,
    /// Simulation start, ms.
    pub start_ms: i64,
    /// The jurisdiction's time zone (patrol windows are local time).
    pub tz: Tz,
}

/// Local hour of a UTC time in `tz`.
pub fn local_hour(tz: Tz, t_ms: i64) -> u32 {
    tz.timestamp_millis_opt(t_ms)
        .single()
        .map_or(0, |d| d.hour())
}

/// Loads the jurisdiction in `dir` and builds the fleet for `[start_ms, end_ms)`.
/// `extra_units` adds clones of the fleet (same kinds, stations and shifts) for load tests.
///
/// # Errors
/// When a jurisdiction file is missing or invalid, with the file named.
pub fn build(
    dir: &Path,
    start_ms: i64,
    end_ms: i64,
    total_units: Option<usize>,
    seed: u64,
) -> anyhow::Result<Fleet> {
    let j = Jurisdiction::load(dir)
        .with_context(|| format!("loading jurisdiction {}", dir.display()))?;
    let tz = j.timezone();
    let speeds =
        SpeedTable::for_settings(j.settings()).context("jurisdiction.toml [speeds_kmh]")?;
    let roads_path = j
        .roads_path()
        .with_context(|| format!("{}: no road network", dir.display()))?;
    let roads = RoadNetwork::load(&roads_path, &speeds)
        .with_context(|| format!("loading roads {}", roads_path.display()))?;
    let catalog = j.catalog();

    let mut zone_nodes: HashMap<String, Vec<_>> = HashMap::new();
    for node in roads.nodes() {
        let Some((lat, lon)) = roads.coord(node) else {
            continue;
        };
        let p = Point::new(lon, lat);
        if let Some(z) = catalog.zones.iter().find(|z| z.geometry.contains(&p)) {
            zone_nodes.entry(z.id.clone()).or_default().push(node);
        }
    }
    let mut zone_checkpoints: HashMap<String, Vec<_>> = HashMap::new();
    for c in j
        .checkpoints()
        .iter()
        .filter(|c| c.kind == CheckpointKind::Patrol)
    {
        let p = Point::new(c.lon, c.lat);
        let (Some(z), Some((node, _))) = (
            catalog.zones.iter().find(|z| z.geometry.contains(&p)),
            roads.nearest_node(c.lat, c.lon),
        ) else {
            continue;
        };
        zone_checkpoints
            .entry(z.id.clone())
            .or_default()
            .push((node, f64::from(c.min_dwell_s)));
    }
    let station_nodes = j
        .stations()
        .iter()
        .filter_map(|s| {
            roads
                .nearest_node(s.lat, s.lon)
                .map(|(n, _)| (s.id.clone(), n))
        })
        .collect();
    let world = World {
        roads,
        zone_nodes,
        zone_checkpoints,
        station_nodes,
    };

    let shifts = shifts_by_unit(j.roster(), tz, start_ms, end_ms);
    let fleet_units = j.units();
    anyhow::ensure!(
        !fleet_units.is_empty(),
        "units.csv in {} lists no units",
        dir.display()
    );
    let total = total_units.unwrap_or(fleet_units.len()).max(1);
    let mut units = Vec::with_capacity(total);
    for i in 0..total {
        let base = &fleet_units[i % fleet_units.len()];
        let id = if i < fleet_units.len() {
            base.id.clone()
        } else {
            format!("{}-{:04}", base.id, i / fleet_units.len())
        };
        let unit_shifts = shifts.get(&base.id).cloned().unwrap_or_default();
        let mut model = UnitModel::new(
            &world,
            &id,
            &base.station,
            base.kind,
            unit_shifts,
            seed ^ (i as u64).wrapping_mul(0x5851_f42d),
            start_ms,
        )
        .with_context(|| {
            format!(
                "station {} of unit {} is not near any road",
                base.station, base.id
            )
        })?;
        // Clones carry no devices of their own: they report over MQTT only.
        if i < fleet_units.len() {
            model.devices = base.devices.clone();
        }
        units.push(model);
    }
    Ok(Fleet {
        world,
        units,
        start_ms,
        tz,
    })
}

/// Each unit's shifts that overlap `[start_ms, end_ms)`, with the roster reused cyclically.
fn shifts_by_unit(
    roster: &[RosterEntry],
    tz: Tz,
    start_ms: i64,
    end_ms: i64,
) -> HashMap<String, Vec<Shift>> {
    let mut out: HashMap<String, Vec<Shift>> = HashMap::new();
    let dates: BTreeSet<NaiveDate> = roster.iter().map(|e| e.date).collect();
    let (Some(first), Some(last)) = (dates.first().copied(), dates.last().copied()) else {
        return out;
    };
    let span = (last - first).num_days() + 1;
    let local_date = |ms: i64| tz.timestamp_millis_opt(ms).single().map(|d| d.date_naive());
    let (Some(from), Some(to)) = (local_date(start_ms), local_date(end_ms)) else {
        return out;
    };
    // One day earlier so that a night shift that began yesterday is included.
    let mut day = from - chrono::Duration::days(1);
    while day <= to {
        let offset = (day - first).num_days().rem_euclid(span);
        let roster_day = first + chrono::Duration::days(offset);
        for e in roster.iter().filter(|e| e.date == roster_day) {
            let shifted = RosterEntry {
                date: day,
                ..e.clone()
            };
            let Ok((a, b)) = shifted.utc_interval(tz) else {
                continue;
            };
            let (a, b) = (a.timestamp_millis(), b.timestamp_millis());
            if b > start_ms && a < end_ms {
                out.entry(e.unit.clone()).or_default().push(Shift {
                    zone: e.zone.clone(),
                    start_ms: a,
                    end_ms: b,
                });
            }
        }
        day += chrono::Duration::days(1);
    }
    for v in out.values_mut() {
        v.sort_by_key(|s| s.start_ms);
    }
    out
}
