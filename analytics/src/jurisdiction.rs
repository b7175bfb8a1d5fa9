//! The jurisdiction's files, as the analytics jobs read them.
//!
//! `analytics` cannot use `ingest::jurisdiction`, so this module reads the same folder on its
//! own terms (the formats are documented in `fixtures/README.md`):
//!
//! - `jurisdiction.toml`: [`Settings`] (time zone, `[h3]`, `[response]`, `[dosage]`,
//!   `[[windows]]`, `[levels]`, `[speeds_kmh]`). Keys this module does not know are left to
//!   other readers (ingest reads `[validate]`, `[status]`, ...), so they are accepted;
//! - `stations.geojson`: [`Station`] points;
//! - `county.geojson`: the outline, as a `geo` [`MultiPolygon`] ([`load_county`]);
//! - `incidents.csv`: [`Incident`] rows ([`load_incidents`]);
//! - `population.csv` (optional): people at points ([`load_population`]);
//! - the road network: whichever of `roads.osm.pbf`, `roads.osm`, `roads.geojson` exists
//!   ([`Jurisdiction::roads_path`]).
//!
//! Each file has its own loader so a job reads only what it needs; [`Jurisdiction::load`]
//! reads the settings and the stations, which every job uses.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use geo::{MultiPolygon, Polygon};
use serde::Deserialize;

use crate::roads::{SpeedTable, SpeedTableError};

/// Why a jurisdiction file could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum JurisdictionError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The TOML is malformed or lacks a key this module needs.
    #[error("{}:{line}: {message}", path.display())]
    Toml {
        /// The file.
        path: PathBuf,
        /// 1-based line of the offending key or value (0 when unknown).
        line: usize,
        /// The parser's message; it names the key.
        message: String,
    },
    /// A GeoJSON file does not parse, or has the wrong geometry.
    #[error("{}: {message}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A CSV row or header is wrong.
    #[error("{}:{line}: {reason}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong, naming the column.
        reason: String,
    },
    /// A value parses but is not acceptable (range, duplicate, unknown name).
    #[error("{}: {key}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key, property or record concerned.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// `jurisdiction.toml`, the parts analytics uses. Unknown keys are ignored (they belong to
/// other readers). `[speeds_kmh]` and `[[windows]]` may be absent (empty); every other table
/// named here is required.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Settings {
    /// Display name.
    pub name: String,
    /// IANA time zone of local dates and times; parsed in [`Jurisdiction::timezone`].
    pub timezone: String,
    /// H3 resolutions.
    pub h3: H3Settings,
    /// The response rule.
    pub response: ResponseSettings,
    /// Dosage accounting.
    pub dosage: DosageSettings,
    /// Speed (km/h) per OSM `highway` class for ways without `maxspeed`.
    #[serde(default)]
    pub speeds_kmh: BTreeMap<String, f64>,
    /// Patrol windows in local time.
    #[serde(default)]
    pub windows: Vec<Window>,
    /// Share of the force out per patrol level.
    pub levels: Levels,
}

impl Settings {
    /// Reads and checks `jurisdiction.toml` at `path`.
    ///
    /// # Errors
    /// [`JurisdictionError::Io`], [`JurisdictionError::Toml`] (naming the key and line), or
    /// [`JurisdictionError::Invalid`] for a bad time zone, resolution, speed, limit, level or
    /// a window defined twice.
    pub fn load(path: &Path) -> Result<Self, JurisdictionError> {
        let text = read(path)?;
        Self::parse(path, &text).map(|(s, _)| s)
    }

    /// Parses the text of `path`, returning the settings and the parsed time zone.
    fn parse(path: &Path, text: &str) -> Result<(Self, Tz), JurisdictionError> {
        let settings: Settings = toml::from_str(text).map_err(|e| JurisdictionError::Toml {
            path: path.to_owned(),
            line: e.span().map_or(0, |s| {
                text[..s.start.min(text.len())].matches('\n').count() + 1
            }),
            message: e.message().trim().to_owned(),
        })?;
        let tz: Tz = settings.timezone.parse().map_err(|_| {
            invalid(
                path,
                "timezone",
                format!("`{}` is not an IANA time zone", settings.timezone),
            )
        })?;
        let h3 = settings.h3;
        for (key, res) in [
            ("store_res", h3.store_res),
            ("fence_res", h3.fence_res),
            ("analysis_res", h3.analysis_res),
        ] {
            if res > 15 {
                return Err(invalid(path, format!("h3.{key}"), "must be 0..=15"));
            }
        }
        let r = settings.response;
        for (key, v) in [
            ("max_minutes", r.max_minutes),
            ("max_km", r.max_km),
            ("offroad_kmh", r.offroad_kmh),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(invalid(path, format!("response.{key}"), "must be positive"));
            }
        }
        let l = settings.levels;
        for (i, share) in [l.level1, l.level2, l.level3].into_iter().enumerate() {
            if !(share > 0.0 && share <= 1.0) {
                return Err(invalid(
                    path,
                    format!("levels.level{}", i + 1),
                    "must be in (0, 1]",
                ));
            }
        }
        settings
            .speed_table()
            .map_err(|e| invalid(path, "speeds_kmh", e.to_string()))?;
        let mut names = BTreeSet::new();
        for w in &settings.windows {
            if !names.insert(w.name.as_str()) {
                return Err(invalid(
                    path,
                    "windows",
                    format!("window `{}` is defined twice", w.name),
                ));
            }
        }
        Ok((settings, tz))
    }

    /// The road speed table: the defaults of [`SpeedTable`] overridden by `[speeds_kmh]`.
    ///
    /// # Errors
    /// [`SpeedTableError`] for a class that is not drivable or a speed that is not positive.
    pub fn speed_table(&self) -> Result<SpeedTable, SpeedTableError> {
        SpeedTable::new(self.speeds_kmh.iter().map(|(k, v)| (k.as_str(), *v)))
    }

    /// The window with this name.
    #[must_use]
    pub fn window(&self, name: &str) -> Option<&Window> {
        self.windows.iter().find(|w| w.name == name)
    }
}

/// `[h3]`: H3 resolutions (0..=15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct H3Settings {
    /// Resolution of the cell stored with every fix.
    pub store_res: u8,
    /// Resolution of the geofence prefilter.
    pub fence_res: u8,
    /// Resolution of the analytics grid.
    pub analysis_res: u8,
}

/// `[response]`: a place passes when it is reached within both limits.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct ResponseSettings {
    /// Maximum drive time, minutes.
    pub max_minutes: f64,
    /// Maximum road distance, km.
    pub max_km: f64,
    /// Speed of the stretch between the place and its nearest road node, km/h.
    pub offroad_kmh: f64,
}

/// `[dosage]`: time accounting inside cells and zones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct DosageSettings {
    /// A gap between two fixes counts at most this many seconds.
    pub gap_cap_s: u32,
}

/// `[levels]`: share of a station's force out on patrol at each level (level 3 is normal).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Levels {
    /// Level 1 (highest alert).
    pub level1: f64,
    /// Level 2.
    pub level2: f64,
    /// Level 3 (normal).
    pub level3: f64,
}

impl Levels {
    /// The share for level 1, 2 or 3; `None` for any other level.
    #[must_use]
    pub const fn share(&self, level: u8) -> Option<f64> {
        match level {
            1 => Some(self.level1),
            2 => Some(self.level2),
            3 => Some(self.level3),
            _ => None,
        }
    }
}

/// A `[[windows]]` entry: a named span of local time that ends the next day when
/// `end <= start`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Window {
    /// Name, as the roster uses it.
    pub name: String,
    /// Local start (`HH:MM` in the file).
    #[serde(deserialize_with = "hh_mm")]
    pub start: NaiveTime,
    /// Local end (`HH:MM` in the file).
    #[serde(deserialize_with = "hh_mm")]
    pub end: NaiveTime,
}

impl Window {
    /// True when the window ends on the day after it starts.
    #[must_use]
    pub fn crosses_midnight(&self) -> bool {
        self.end <= self.start
    }

    /// True when a local time of day falls in the window (start included, end excluded).
    #[must_use]
    pub fn contains(&self, t: NaiveTime) -> bool {
        if self.crosses_midnight() {
            t >= self.start || t < self.end
        } else {
            t >= self.start && t < self.end
        }
    }
}

fn hh_mm<'de, D: serde::Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
    let s = String::deserialize(d)?;
    parse_hh_mm(&s).ok_or_else(|| serde::de::Error::custom(format!("`{s}` is not a HH:MM time")))
}

/// Parses a local `HH:MM` time.
fn parse_hh_mm(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M").ok()
}

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
    /// Station id.
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

/// The settings and stations of a jurisdiction folder, and the paths of its other files.
#[derive(Debug, Clone)]
pub struct Jurisdiction {
    dir: PathBuf,
    settings: Settings,
    timezone: Tz,
    stations: Vec<Station>,
}

impl Jurisdiction {
    /// Loads `jurisdiction.toml` and `stations.geojson` from `dir`.
    ///
    /// # Errors
    /// A [`JurisdictionError`] naming the file (and key or record) at fault.
    pub fn load(dir: &Path) -> Result<Self, JurisdictionError> {
        let path = dir.join("jurisdiction.toml");
        let (settings, timezone) = Settings::parse(&path, &read(&path)?)?;
        let stations = load_stations(&dir.join("stations.geojson"))?;
        Ok(Self {
            dir: dir.to_owned(),
            settings,
            timezone,
            stations,
        })
    }

    /// The folder it was loaded from.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `jurisdiction.toml`.
    #[must_use]
    pub const fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The parsed [`Settings::timezone`].
    #[must_use]
    pub const fn timezone(&self) -> Tz {
        self.timezone
    }

    /// Stations in file order.
    #[must_use]
    pub fn stations(&self) -> &[Station] {
        &self.stations
    }

    /// The station with this id.
    #[must_use]
    pub fn station(&self, id: &str) -> Option<&Station> {
        self.stations.iter().find(|s| s.id == id)
    }

    /// `county.geojson`: the jurisdiction outline.
    #[must_use]
    pub fn county_path(&self) -> PathBuf {
        self.dir.join("county.geojson")
    }

    /// `incidents.csv`.
    #[must_use]
    pub fn incidents_path(&self) -> PathBuf {
        self.dir.join("incidents.csv")
    }

    /// The road network file: the first of `roads.osm.pbf`, `roads.osm` and `roads.geojson`
    /// that exists, or `None` when there is none.
    #[must_use]
    pub fn roads_path(&self) -> Option<PathBuf> {
        ROAD_FILES
            .iter()
            .map(|name| self.dir.join(name))
            .find(|p| p.is_file())
    }
}

/// Road file names in the order [`Jurisdiction::roads_path`] looks for them.
pub const ROAD_FILES: [&str; 3] = ["roads.osm.pbf", "roads.osm", "roads.geojson"];

/// A [`JurisdictionError::Csv`] at `line` of `path`.
fn csv_error(path: &Path, line: usize, reason: String) -> JurisdictionError {
    JurisdictionError::Csv {
        path: path.to_owned(),
        line,
        reason,
    }
}

/// The data rows of a jurisdiction CSV file read into `text`: the first line must be `header`,
/// and every further non-empty line must have as many comma-separated fields (trimmed).
/// Returns each row with its 1-based line number.
fn csv_rows<'t>(
    path: &Path,
    text: &'t str,
    header: &[&str],
) -> Result<Vec<(usize, Vec<&'t str>)>, JurisdictionError> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim_end()));
    match lines.next() {
        Some((_, first)) if first.split(',').map(str::trim).eq(header.iter().copied()) => {}
        _ => {
            return Err(csv_error(
                path,
                1,
                format!("expected header `{}`", header.join(",")),
            ));
        }
    }
    lines
        .filter(|(_, l)| !l.is_empty())
        .map(|(n, line)| {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            if f.len() == header.len() {
                Ok((n, f))
            } else {
                Err(csv_error(
                    path,
                    n,
                    format!("expected {} fields, found {}", header.len(), f.len()),
                ))
            }
        })
        .collect()
}

fn read(path: &Path) -> Result<String, JurisdictionError> {
    std::fs::read_to_string(path).map_err(|source| JurisdictionError::Io {
        path: path.to_owned(),
        source,
    })
}

fn invalid(path: &Path, key: impl Into<String>, reason: impl Into<String>) -> JurisdictionError {
    JurisdictionError::Invalid {
        path: path.to_owned(),
        key: key.into(),
        reason: reason.into(),
    }
}

fn json_err(path: &Path, message: impl Into<String>) -> JurisdictionError {
    JurisdictionError::Json {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// The features of a GeoJSON `FeatureCollection` file.
fn read_features(path: &Path) -> Result<Vec<geojson::Feature>, JurisdictionError> {
    let text = read(path)?;
    let fc: geojson::FeatureCollection = text
        .parse()
        .map_err(|e: geojson::Error| json_err(path, e.to_string()))?;
    Ok(fc.features)
}

/// A string property of a feature, or an error naming it.
fn string_prop(
    path: &Path,
    feature: &geojson::Feature,
    i: usize,
    key: &str,
) -> Result<String, JurisdictionError> {
    feature
        .property(key)
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| invalid(path, format!("feature {i}"), format!("no string `{key}`")))
}

/// Loads `stations.geojson`: Points with `id`, `name` and `kind` (`central` | `rural`); ids
/// are unique.
///
/// # Errors
/// [`JurisdictionError::Json`] or [`JurisdictionError::Invalid`] naming the feature.
pub fn load_stations(path: &Path) -> Result<Vec<Station>, JurisdictionError> {
    let mut ids = BTreeSet::new();
    let mut out = Vec::new();
    for (i, f) in read_features(path)?.iter().enumerate() {
        let id = string_prop(path, f, i, "id")?;
        let name = string_prop(path, f, i, "name")?;
        let kind = match string_prop(path, f, i, "kind")?.as_str() {
            "central" => StationKind::Central,
            "rural" => StationKind::Rural,
            other => {
                return Err(invalid(
                    path,
                    format!("{id}.kind"),
                    format!("`{other}` is not central or rural"),
                ));
            }
        };
        let (lat, lon) = match f.geometry.as_ref().map(|g| &g.value) {
            Some(geojson::GeometryValue::Point { coordinates: p }) if p.len() >= 2 => (p[1], p[0]),
            _ => return Err(invalid(path, id, "geometry is not a Point")),
        };
        check_lat_lon(path, &id, lat, lon)?;
        if !ids.insert(id.clone()) {
            return Err(invalid(path, id, "id is repeated"));
        }
        out.push(Station {
            id,
            name,
            kind,
            lat,
            lon,
        });
    }
    Ok(out)
}

fn check_lat_lon(path: &Path, key: &str, lat: f64, lon: f64) -> Result<(), JurisdictionError> {
    if lat.is_finite() && lon.is_finite() && lat.abs() <= 90.0 && lon.abs() <= 180.0 {
        Ok(())
    } else {
        Err(invalid(
            path,
            key,
            format!("({lat}, {lon}) is not a WGS-84 position"),
        ))
    }
}

/// Loads an outline file such as `county.geojson`: the union of the `Polygon` and
/// `MultiPolygon` features, as one [`MultiPolygon`] (`x` = lon, `y` = lat). Other geometry
/// types are refused.
///
/// # Errors
/// [`JurisdictionError::Json`] for a file that does not parse, holds another geometry type,
/// or holds no polygon.
pub fn load_county(path: &Path) -> Result<MultiPolygon<f64>, JurisdictionError> {
    let mut polygons: Vec<Polygon<f64>> = Vec::new();
    for (i, f) in read_features(path)?.into_iter().enumerate() {
        let Some(geometry) = f.geometry else {
            return Err(json_err(path, format!("feature {i} has no geometry")));
        };
        match geo::Geometry::<f64>::try_from(&geometry.value)
            .map_err(|e| json_err(path, format!("feature {i}: {e}")))?
        {
            geo::Geometry::Polygon(p) => polygons.push(p),
            geo::Geometry::MultiPolygon(mp) => polygons.extend(mp.0),
            _ => {
                return Err(json_err(
                    path,
                    format!("feature {i} is not a Polygon or MultiPolygon"),
                ));
            }
        }
    }
    if polygons.is_empty() {
        return Err(json_err(path, "no polygon"));
    }
    Ok(MultiPolygon(polygons))
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

/// Loads `incidents.csv` (header [`INCIDENTS_HEADER`], no quoting; times RFC 3339 with an
/// offset; `unit`, `dispatched`, `arrived` may be empty).
///
/// # Errors
/// [`JurisdictionError::Io`] or [`JurisdictionError::Csv`] naming the line and column.
pub fn load_incidents(path: &Path) -> Result<Vec<Incident>, JurisdictionError> {
    let text = read(path)?;
    let csv_err = |line: usize, reason: String| csv_error(path, line, reason);
    let mut out = Vec::new();
    for (n, f) in csv_rows(path, &text, &INCIDENTS_HEADER)? {
        let bad = |col: usize| {
            csv_err(
                n,
                format!(
                    "column `{}`: cannot parse `{}`",
                    INCIDENTS_HEADER[col], f[col]
                ),
            )
        };
        let time = |col: usize| {
            DateTime::parse_from_rfc3339(f[col])
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
        check_lat_lon(path, f[0], lat, lon)?;
        out.push(Incident {
            id: f[0].to_owned(),
            received: time(1)?,
            lat,
            lon,
            category: f[4].to_owned(),
            priority: f[5].parse().map_err(|_| bad(5))?,
            unit: (!f[6].is_empty()).then(|| f[6].to_owned()),
            dispatched: optional_time(7)?,
            arrived: optional_time(8)?,
        });
    }
    Ok(out)
}

/// A row of `units.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// Unit id.
    pub id: String,
    /// `car`, `bike`, `ebike` or `foot`.
    pub kind: String,
    /// Home station.
    pub station: String,
    /// Officers in the unit.
    pub crew: u8,
}

/// The header `units.csv` starts with.
pub const UNITS_HEADER: [&str; 4] = ["unit", "kind", "station", "crew"];

/// Loads `units.csv` (header [`UNITS_HEADER`]); ids are unique and kinds are `car`, `bike`,
/// `ebike` or `foot`.
///
/// # Errors
/// [`JurisdictionError::Io`] or [`JurisdictionError::Csv`] naming the line and column.
pub fn load_units(path: &Path) -> Result<Vec<Unit>, JurisdictionError> {
    let text = read(path)?;
    let csv_err = |line: usize, reason: String| csv_error(path, line, reason);
    let mut ids = BTreeSet::new();
    let mut out = Vec::new();
    for (n, f) in csv_rows(path, &text, &UNITS_HEADER)? {
        if !matches!(f[1], "car" | "bike" | "ebike" | "foot") {
            return Err(csv_err(
                n,
                format!("column `kind`: `{}` is not car, bike, ebike or foot", f[1]),
            ));
        }
        let crew = f[3]
            .parse()
            .map_err(|_| csv_err(n, format!("column `crew`: cannot parse `{}`", f[3])))?;
        if !ids.insert(f[0].to_owned()) {
            return Err(csv_err(n, format!("unit `{}` is listed twice", f[0])));
        }
        out.push(Unit {
            id: f[0].to_owned(),
            kind: f[1].to_owned(),
            station: f[2].to_owned(),
            crew,
        });
    }
    Ok(out)
}

/// A feature of `beats.geojson` or `zones.geojson`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fence {
    /// Fence id (`BT01`, `Z1`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Station in charge.
    pub station: String,
    /// Outline (`x` = lon, `y` = lat).
    pub area: MultiPolygon<f64>,
}

/// Loads a fence file (`beats.geojson`, `zones.geojson`): `Polygon` or `MultiPolygon`
/// features with string properties `id`, `name` and `station`; ids are unique.
///
/// # Errors
/// [`JurisdictionError::Json`] or [`JurisdictionError::Invalid`] naming the feature.
pub fn load_fences(path: &Path) -> Result<Vec<Fence>, JurisdictionError> {
    let mut ids = BTreeSet::new();
    let mut out = Vec::new();
    for (i, f) in read_features(path)?.into_iter().enumerate() {
        let id = string_prop(path, &f, i, "id")?;
        let name = string_prop(path, &f, i, "name")?;
        let station = string_prop(path, &f, i, "station")?;
        let Some(geometry) = f.geometry else {
            return Err(invalid(path, id, "no geometry"));
        };
        let area = match geo::Geometry::<f64>::try_from(geometry.value)
            .map_err(|e| json_err(path, format!("feature {i}: {e}")))?
        {
            geo::Geometry::Polygon(p) => MultiPolygon(vec![p]),
            geo::Geometry::MultiPolygon(mp) => mp,
            _ => {
                return Err(invalid(
                    path,
                    id,
                    "geometry is not a Polygon or MultiPolygon",
                ));
            }
        };
        if !ids.insert(id.clone()) {
            return Err(invalid(path, id, "id is repeated"));
        }
        out.push(Fence {
            id,
            name,
            station,
            area,
        });
    }
    Ok(out)
}

impl Jurisdiction {
    /// `units.csv`.
    #[must_use]
    pub fn units_path(&self) -> PathBuf {
        self.dir.join("units.csv")
    }

    /// `beats.geojson`.
    #[must_use]
    pub fn beats_path(&self) -> PathBuf {
        self.dir.join("beats.geojson")
    }

    /// `zones.geojson`.
    #[must_use]
    pub fn zones_path(&self) -> PathBuf {
        self.dir.join("zones.geojson")
    }
}

/// The header of the optional `population.csv`: one row per populated point (a census block
/// centroid, an address), `population` people there.
pub const POPULATION_HEADER: [&str; 3] = ["lat", "lon", "population"];

impl Jurisdiction {
    /// `population.csv`, if the jurisdiction has one (it is optional).
    #[must_use]
    pub fn population_path(&self) -> Option<PathBuf> {
        Some(self.dir.join("population.csv")).filter(|p| p.is_file())
    }
}

/// Loads a population file (header [`POPULATION_HEADER`]) as `(lat, lon, people)`.
///
/// # Errors
/// [`JurisdictionError::Io`] or [`JurisdictionError::Csv`] naming the line and column; a
/// negative or non-finite population is refused.
pub fn load_population(path: &Path) -> Result<Vec<(f64, f64, f64)>, JurisdictionError> {
    let text = read(path)?;
    let csv_err = |line: usize, reason: String| csv_error(path, line, reason);
    let mut out = Vec::new();
    for (n, f) in csv_rows(path, &text, &POPULATION_HEADER)? {
        let mut v = [0.0; 3];
        for (col, slot) in v.iter_mut().enumerate() {
            *slot = f[col]
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| {
                    csv_err(
                        n,
                        format!(
                            "column `{}`: cannot parse `{}`",
                            POPULATION_HEADER[col], f[col]
                        ),
                    )
                })?;
        }
        check_lat_lon(path, &format!("line {n}"), v[0], v[1])?;
        if v[2] < 0.0 {
            return Err(csv_err(
                n,
                "column `population`: must not be negative".into(),
            ));
        }
        out.push((v[0], v[1], v[2]));
    }
    Ok(out)
}

/// A row of `roster.csv`: one unit in one zone for one window instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEntry {
    /// Local date the shift starts.
    pub date: chrono::NaiveDate,
    /// Unit id.
    pub unit: String,
    /// Zone id.
    pub zone: String,
    /// Window name (a `[[windows]]` entry).
    pub window: String,
    /// Local start.
    pub start: NaiveTime,
    /// Local end; not after `start` means the next day.
    pub end: NaiveTime,
    /// Officers in the unit for this shift.
    pub crew: u8,
    /// The zone's patrol level that day (1..=3).
    pub level: u8,
}

impl RosterEntry {
    /// The shift as UTC epoch ms `[start, end)`; a local time in a spring-forward gap is read
    /// as the hour after it.
    #[must_use]
    pub fn utc_ms(&self, tz: Tz) -> (i64, i64) {
        use chrono::TimeZone as _;
        let end_date = if self.end <= self.start {
            self.date + chrono::Duration::days(1)
        } else {
            self.date
        };
        let utc = |local: chrono::NaiveDateTime| {
            tz.from_local_datetime(&local)
                .earliest()
                .or_else(|| {
                    tz.from_local_datetime(&(local + chrono::Duration::hours(1)))
                        .earliest()
                })
                .map_or(0, |t| t.timestamp_millis())
        };
        (
            utc(self.date.and_time(self.start)),
            utc(end_date.and_time(self.end)),
        )
    }
}

/// The header `roster.csv` starts with.
pub const ROSTER_HEADER: [&str; 8] = [
    "date", "unit", "zone", "window", "start", "end", "crew", "level",
];

/// Loads `roster.csv` (header [`ROSTER_HEADER`]; dates `YYYY-MM-DD`, times `HH:MM` local).
///
/// # Errors
/// [`JurisdictionError::Io`] or [`JurisdictionError::Csv`] naming the line and column.
pub fn load_roster(path: &Path) -> Result<Vec<RosterEntry>, JurisdictionError> {
    let text = read(path)?;
    let csv_err = |line: usize, reason: String| csv_error(path, line, reason);
    let mut out = Vec::new();
    for (n, f) in csv_rows(path, &text, &ROSTER_HEADER)? {
        let bad = |col: usize| {
            csv_err(
                n,
                format!("column `{}`: cannot parse `{}`", ROSTER_HEADER[col], f[col]),
            )
        };
        out.push(RosterEntry {
            date: chrono::NaiveDate::parse_from_str(f[0], "%Y-%m-%d").map_err(|_| bad(0))?,
            unit: f[1].to_owned(),
            zone: f[2].to_owned(),
            window: f[3].to_owned(),
            start: parse_hh_mm(f[4]).ok_or_else(|| bad(4))?,
            end: parse_hh_mm(f[5]).ok_or_else(|| bad(5))?,
            crew: f[6].parse().map_err(|_| bad(6))?,
            level: f[7].parse().map_err(|_| bad(7))?,
        });
    }
    Ok(out)
}

/// A feature of `checkpoints.geojson`.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Checkpoint id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// `patrol` (visited every night in its window) or `entry`.
    pub kind: String,
    /// WGS-84 latitude.
    pub lat: f64,
    /// WGS-84 longitude.
    pub lon: f64,
    /// A unit within this distance (m) is at the checkpoint.
    pub radius_m: f64,
    /// Seconds a unit must stay within the radius.
    pub min_dwell_s: u32,
    /// Local window (`HH:MM-HH:MM`, may cross midnight) of a patrol checkpoint.
    pub window: Option<Window>,
}

/// Loads `checkpoints.geojson`: Points with `id`, `name`, `kind`, `radius_m`, `min_dwell_s`
/// and, optionally, `window` (`HH:MM-HH:MM`).
///
/// # Errors
/// [`JurisdictionError::Json`] or [`JurisdictionError::Invalid`] naming the feature.
pub fn load_checkpoints(path: &Path) -> Result<Vec<Checkpoint>, JurisdictionError> {
    let mut out = Vec::new();
    for (i, f) in read_features(path)?.iter().enumerate() {
        let id = string_prop(path, f, i, "id")?;
        let number = |key: &str| {
            f.property(key)
                .and_then(serde_json::Value::as_f64)
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| invalid(path, format!("{id}.{key}"), "not a non-negative number"))
        };
        let window = match f.property("window").and_then(serde_json::Value::as_str) {
            None => None,
            Some(w) => {
                let (a, b) = w.split_once('-').ok_or_else(|| {
                    invalid(
                        path,
                        format!("{id}.window"),
                        format!("`{w}` is not HH:MM-HH:MM"),
                    )
                })?;
                let (Some(start), Some(end)) = (parse_hh_mm(a), parse_hh_mm(b)) else {
                    return Err(invalid(
                        path,
                        format!("{id}.window"),
                        format!("`{w}` is not HH:MM-HH:MM"),
                    ));
                };
                Some(Window {
                    name: id.clone(),
                    start,
                    end,
                })
            }
        };
        let (lat, lon) = match f.geometry.as_ref().map(|g| &g.value) {
            Some(geojson::GeometryValue::Point { coordinates: p }) if p.len() >= 2 => (p[1], p[0]),
            _ => return Err(invalid(path, id, "geometry is not a Point")),
        };
        check_lat_lon(path, &id, lat, lon)?;
        out.push(Checkpoint {
            name: string_prop(path, f, i, "name")?,
            kind: string_prop(path, f, i, "kind")?,
            lat,
            lon,
            radius_m: number("radius_m")?,
            min_dwell_s: number("min_dwell_s")? as u32,
            window,
            id,
        });
    }
    Ok(out)
}

impl Jurisdiction {
    /// `roster.csv`.
    #[must_use]
    pub fn roster_path(&self) -> PathBuf {
        self.dir.join("roster.csv")
    }

    /// `checkpoints.geojson`.
    #[must_use]
    pub fn checkpoints_path(&self) -> PathBuf {
        self.dir.join("checkpoints.geojson")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests panic on bad fixtures")]
mod tests {
    use super::*;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
    }

    #[test]
    fn loads_the_fixture_jurisdiction() {
        let j = Jurisdiction::load(&fixtures()).unwrap();
        let s = j.settings();
        assert_eq!(j.timezone(), chrono_tz::America::Chicago);
        assert_eq!(s.h3.analysis_res, 9);
        assert_eq!(
            s.response,
            ResponseSettings {
                max_minutes: 30.0,
                max_km: 30.0,
                offroad_kmh: 15.0
            }
        );
        assert_eq!(s.dosage.gap_cap_s, 120);
        assert_eq!(s.levels.share(2), Some(0.5));
        assert!(s.window("night").unwrap().crosses_midnight());
        assert_eq!(s.speed_table().unwrap().kmh("residential"), Some(40.0));
        let ids: Vec<_> = j.stations().iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["ST1", "ST2", "ST3", "ST4"]);
        assert_eq!(j.station("ST1").unwrap().kind, StationKind::Central);
        assert_eq!(j.roads_path(), Some(fixtures().join("roads.osm")));
    }

    #[test]
    fn county_and_incidents_load() {
        let county = load_county(&fixtures().join("county.geojson")).unwrap();
        assert_eq!(county.0.len(), 1);
        let incidents = load_incidents(&fixtures().join("incidents.csv")).unwrap();
        assert_eq!(incidents.len(), 6000);
        let first = &incidents[0];
        assert_eq!(first.id, "IN00001");
        assert_eq!(first.received.to_rfc3339(), "2025-11-23T06:21:15+00:00");
        assert!(
            incidents
                .iter()
                .any(|i| i.unit.is_some() && i.arrived.is_some())
        );
    }

    #[test]
    fn unknown_keys_are_left_to_other_readers_but_bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jurisdiction.toml");
        let base = std::fs::read_to_string(fixtures().join("jurisdiction.toml")).unwrap();
        std::fs::write(&path, format!("{base}\n[someone_else]\nkey = 1\n")).unwrap();
        assert!(Settings::load(&path).is_ok());
        let bad = base.replace("offroad_kmh = 15", "offroad_kmh = 0");
        std::fs::write(&path, bad).unwrap();
        let err = Settings::load(&path).unwrap_err().to_string();
        assert!(err.contains("response.offroad_kmh"), "{err}");
        let bad = base.replace("residential = 40", "footpath = 5");
        std::fs::write(&path, bad).unwrap();
        let err = Settings::load(&path).unwrap_err().to_string();
        assert!(err.contains("footpath"), "{err}");
    }
    #[test]
    fn units_and_fences_load() {
        let units = load_units(&fixtures().join("units.csv")).unwrap();
        assert_eq!(units.len(), 44);
        assert_eq!(units[0].id, "C01");
        assert_eq!(units[0].kind, "car");
        let beats = load_fences(&fixtures().join("beats.geojson")).unwrap();
        assert_eq!(beats.len(), 12);
        // BT05 is a MultiPolygon; BT02 has a hole.
        assert_eq!(beats[4].area.0.len(), 2);
        assert_eq!(beats[1].area.0[0].interiors().len(), 1);
        let zones = load_fences(&fixtures().join("zones.geojson")).unwrap();
        assert_eq!(
            zones.iter().map(|z| z.id.as_str()).collect::<Vec<_>>(),
            ["Z1", "Z2", "Z3", "Z4", "Z5", "Z6"]
        );
    }
    #[test]
    fn roster_and_checkpoints_load() {
        let roster = load_roster(&fixtures().join("roster.csv")).unwrap();
        assert_eq!(roster.len(), 1572);
        let night = roster.iter().find(|e| e.window == "night").unwrap();
        let (start, end) = night.utc_ms(chrono_tz::America::Chicago);
        assert_eq!(end - start, 6 * 3_600_000);
        let cps = load_checkpoints(&fixtures().join("checkpoints.geojson")).unwrap();
        assert_eq!(cps.len(), 17);
        assert_eq!(cps.iter().filter(|c| c.kind == "patrol").count(), 13);
        let cp01 = &cps[0];
        assert_eq!(
            (cp01.id.as_str(), cp01.radius_m, cp01.min_dwell_s),
            ("CP01", 50.0, 210)
        );
        assert!(cp01.window.as_ref().unwrap().crosses_midnight());
        assert!(
            cps.iter()
                .filter(|c| c.kind == "entry")
                .all(|c| c.window.is_none())
        );
    }
}
