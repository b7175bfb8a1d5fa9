//! Places and events on the map: `stations.geojson` ([`Station`]), `checkpoints.geojson`
//! ([`Checkpoint`]), `incidents.csv` ([`Incident`]) and the optional `population.csv`.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, NaiveTime, Utc};
use serde::Deserialize;

use super::{JurisdictionError, csv_error, invalid, is_position, parse_hh_mm, read, read_csv};

/// Kind of a station.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StationKind {
    /// The headquarters.
    Central,
    /// A substation.
    Rural,
}

/// A feature of `stations.geojson`.
#[derive(Debug, Clone, PartialEq)]
pub struct Station {
    /// Station id, referenced by units, beats and zones.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Kind.
    pub kind: StationKind,
    /// WGS-84 latitude, degrees.
    pub lat: f64,
    /// WGS-84 longitude, degrees.
    pub lon: f64,
}

/// Kind of a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckpointKind {
    /// Must be visited (within its window).
    Patrol,
    /// Entry/exit point at the jurisdiction's edge.
    Entry,
}

/// A feature of `checkpoints.geojson`.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Checkpoint id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Kind.
    pub kind: CheckpointKind,
    /// WGS-84 latitude, degrees.
    pub lat: f64,
    /// WGS-84 longitude, degrees.
    pub lon: f64,
    /// A unit within this many metres is at the checkpoint.
    pub radius_m: f64,
    /// Seconds a unit must stay within the radius for a visit to count.
    pub min_dwell_s: u32,
    /// Local window (start, end) in which visits count; it ends the next day when
    /// `end <= start`. `None` means at any time.
    pub window: Option<(NaiveTime, NaiveTime)>,
}

/// A GeoJSON FeatureCollection of Points with properties `Pr`; other members are ignored.
#[derive(Deserialize)]
struct PointCollection<Pr> {
    features: Vec<PointFeature<Pr>>,
}

#[derive(Deserialize)]
struct PointFeature<Pr> {
    properties: Pr,
    geometry: PointGeometry,
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum PointGeometry {
    Point { coordinates: Vec<f64> },
}

#[derive(Deserialize)]
struct StationProps {
    id: String,
    name: String,
    kind: StationKind,
}

#[derive(Deserialize)]
struct CheckpointProps {
    id: String,
    name: String,
    kind: CheckpointKind,
    radius_m: f64,
    min_dwell_s: u32,
    #[serde(default)]
    window: Option<String>,
}

/// Features of a Points file as (lat, lon, properties), with ids unique and coordinates in
/// range.
fn read_points<Pr: serde::de::DeserializeOwned>(
    path: &Path,
    id: impl Fn(&Pr) -> &str,
) -> Result<Vec<(f64, f64, Pr)>, JurisdictionError> {
    let text = read(path)?;
    let fc: PointCollection<Pr> =
        serde_json::from_str(&text).map_err(|e| JurisdictionError::Json {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    let mut ids = BTreeSet::new();
    let mut out = Vec::new();
    for (i, feature) in fc.features.into_iter().enumerate() {
        let PointGeometry::Point { coordinates } = feature.geometry;
        let fid = id(&feature.properties).to_owned();
        let (lon, lat) = match coordinates[..] {
            [lon, lat, ..] if is_position(lat, lon) => (lon, lat),
            _ => {
                return Err(invalid(
                    path,
                    format!("feature {i} ({fid})"),
                    "coordinates must be [lon, lat] in range",
                ));
            }
        };
        if fid.is_empty() || !ids.insert(fid.clone()) {
            return Err(invalid(
                path,
                format!("feature {i}"),
                format!("id `{fid}` is empty or repeated"),
            ));
        }
        out.push((lat, lon, feature.properties));
    }
    Ok(out)
}

pub(super) fn load_stations(path: &Path) -> Result<Vec<Station>, JurisdictionError> {
    Ok(read_points(path, |p: &StationProps| &p.id)?
        .into_iter()
        .map(|(lat, lon, p)| Station {
            id: p.id,
            name: p.name,
            kind: p.kind,
            lat,
            lon,
        })
        .collect())
}

pub(super) fn load_checkpoints(path: &Path) -> Result<Vec<Checkpoint>, JurisdictionError> {
    read_points(path, |p: &CheckpointProps| &p.id)?
        .into_iter()
        .map(|(lat, lon, p)| {
            if !(p.radius_m.is_finite() && p.radius_m > 0.0) {
                return Err(invalid(
                    path,
                    format!("{}.radius_m", p.id),
                    "must be positive",
                ));
            }
            let window = match p.window.as_deref() {
                None => None,
                Some(w) => {
                    let parsed = w
                        .split_once('-')
                        .and_then(|(a, b)| Some((parse_hh_mm(a)?, parse_hh_mm(b)?)));
                    Some(parsed.ok_or_else(|| {
                        invalid(
                            path,
                            format!("{}.window", p.id),
                            format!("`{w}` is not HH:MM-HH:MM"),
                        )
                    })?)
                }
            };
            Ok(Checkpoint {
                id: p.id,
                name: p.name,
                kind: p.kind,
                lat,
                lon,
                radius_m: p.radius_m,
                min_dwell_s: p.min_dwell_s,
                window,
            })
        })
        .collect()
}

/// A row of `incidents.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// Incident id.
    pub id: String,
    /// When the call was received.
    pub received: DateTime<Utc>,
    /// WGS-84 latitude, degrees.
    pub lat: f64,
    /// WGS-84 longitude, degrees.
    pub lon: f64,
    /// Category, such as `theft`.
    pub category: String,
    /// Priority, 1 (urgent) to 3.
    pub priority: u8,
    /// The responding unit, if one was sent.
    pub unit: Option<String>,
    /// When the unit was dispatched.
    pub dispatched: Option<DateTime<Utc>>,
    /// When it arrived.
    pub arrived: Option<DateTime<Utc>>,
}

/// The header `incidents.csv` starts with.
pub const INCIDENTS_HEADER: [&str; 9] = [
    "id",
    "received",
    "lat",
    "lon",
    "category",
    "priority",
    "unit",
    "dispatched",
    "arrived",
];

/// Loads a file in the format of `incidents.csv` (header [`INCIDENTS_HEADER`], fields may be
/// quoted; times RFC 3339 with an offset; `unit`, `dispatched`, `arrived` may be empty).
///
/// # Errors
/// [`JurisdictionError::Io`] or [`JurisdictionError::Csv`] naming the line and column, or
/// [`JurisdictionError::Invalid`] for a position out of range.
pub fn load_incidents(path: &Path) -> Result<Vec<Incident>, JurisdictionError> {
    let h = &INCIDENTS_HEADER;
    let mut out = Vec::new();
    for (n, f) in read_csv(path, h)? {
        let bad = |col: usize| {
            csv_error(
                path,
                n,
                format!("column `{}`: cannot parse `{}`", h[col], f[col]),
            )
        };
        let time = |col: usize| {
            DateTime::parse_from_rfc3339(&f[col])
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| bad(col))
        };
        let optional_time = |col: usize| {
            if f[col].is_empty() {
                Ok(None)
            } else {
                time(col).map(Some)
            }
        };
        let lat: f64 = f[2].parse().map_err(|_| bad(2))?;
        let lon: f64 = f[3].parse().map_err(|_| bad(3))?;
        if !is_position(lat, lon) {
            return Err(invalid(
                path,
                f[0].as_str(),
                format!("({lat}, {lon}) is not a WGS-84 position"),
            ));
        }
        out.push(Incident {
            id: f[0].clone(),
            received: time(1)?,
            lat,
            lon,
            category: f[4].clone(),
            priority: f[5].parse().map_err(|_| bad(5))?,
            unit: (!f[6].is_empty()).then(|| f[6].clone()),
            dispatched: optional_time(7)?,
            arrived: optional_time(8)?,
        });
    }
    Ok(out)
}

/// The header of the optional `population.csv`: one row per populated point (a census block
/// centroid, an address), `population` people there.
pub const POPULATION_HEADER: [&str; 3] = ["lat", "lon", "population"];

/// Loads a population file (header [`POPULATION_HEADER`]) as `(lat, lon, people)`.
///
/// # Errors
/// [`JurisdictionError::Io`] or [`JurisdictionError::Csv`] naming the line and column; a
/// position out of range or a negative or non-finite population is refused.
pub fn load_population(path: &Path) -> Result<Vec<(f64, f64, f64)>, JurisdictionError> {
    let h = &POPULATION_HEADER;
    let mut out = Vec::new();
    for (n, f) in read_csv(path, h)? {
        let mut v = [0.0; 3];
        for (col, slot) in v.iter_mut().enumerate() {
            *slot = f[col]
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| {
                    csv_error(
                        path,
                        n,
                        format!("column `{}`: cannot parse `{}`", h[col], f[col]),
                    )
                })?;
        }
        if !is_position(v[0], v[1]) {
            return Err(invalid(
                path,
                format!("line {n}"),
                format!("({}, {}) is not a WGS-84 position", v[0], v[1]),
            ));
        }
        if v[2] < 0.0 {
            return Err(csv_error(
                path,
                n,
                "column `population`: must not be negative".into(),
            ));
        }
        out.push((v[0], v[1], v[2]));
    }
    Ok(out)
}
