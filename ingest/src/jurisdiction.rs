//! The files that describe a jurisdiction, loaded by [`Jurisdiction::load`] from one folder:
//!
//! - `jurisdiction.toml`: [`Settings`] (name, time zone, catalog version, tunables);
//! - `units.csv`: the fleet, [`Unit`];
//! - `roster.csv`: who patrols which zone in which window, [`RosterEntry`];
//! - `stations.geojson` and `checkpoints.geojson`: GeoJSON Points, [`Station`], [`Checkpoint`].
//!
//! Beats, zones, the county outline and roads are read by the modules that use them; this
//! module only names their paths ([`Jurisdiction::beats_path`] and friends). Nothing here is
//! specific to one jurisdiction. CSV files are plain comma-separated text with a fixed header
//! and no quoting.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

/// Why a jurisdiction folder could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum JurisdictionError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key, or lacks one.
    #[error("{}:{line}: {message}", path.display())]
    Toml {
        /// The file.
        path: PathBuf,
        /// 1-based line of the offending key or value (0 when unknown).
        line: usize,
        /// The parser's message; it names the key.
        message: String,
    },
    /// A JSON file does not parse as a GeoJSON FeatureCollection of Points.
    #[error("{}: {message}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
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
    /// A value parses but is not acceptable (range, reference, duplicate).
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

/// A local time that names no instant in the zone (inside a daylight-saving gap that even
/// the hour after does not leave).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("local time {0} does not exist in the time zone")]
pub struct NonexistentLocalTime(pub NaiveDateTime);

/// `jurisdiction.toml`. Every key is required and unknown keys are rejected.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Display name.
    pub name: String,
    /// IANA time zone of local dates and times (windows, roster); see [`Jurisdiction::timezone`].
    pub timezone: String,
    /// Catalog version, bumped when beats, zones or checkpoints change.
    pub version: u32,
    /// H3 resolutions.
    pub h3: H3Settings,
    /// Response rule.
    pub response: ResponseSettings,
    /// Dosage accounting.
    pub dosage: DosageSettings,
    /// Geofence enter/exit hysteresis.
    pub hysteresis: HysteresisSettings,
    /// Validation thresholds for incoming fixes.
    pub validate: ValidateSettings,
    /// Live status thresholds.
    pub status: StatusSettings,
    /// Default speed (km/h) per OSM `highway` class, used when a way has no `maxspeed`.
    pub speeds_kmh: std::collections::BTreeMap<String, f64>,
    /// Patrol windows in local time.
    pub windows: Vec<Window>,
    /// Share of the force out per patrol level.
    pub levels: Levels,
}

/// `[h3]`: H3 resolutions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct H3Settings {
    /// Resolution of the cell stored with every fix.
    pub store_res: u8,
    /// Resolution of the geofence prefilter.
    pub fence_res: u8,
    /// Resolution of the analytics grid.
    pub analysis_res: u8,
}

/// `[response]`: a place is covered when a station reaches it within both limits.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseSettings {
    /// Maximum drive time, minutes.
    pub max_minutes: f64,
    /// Maximum drive distance, km.
    pub max_km: f64,
    /// Speed from the nearest road to the place, km/h.
    pub offroad_kmh: f64,
}

/// `[dosage]`: time accounting inside cells and zones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DosageSettings {
    /// A gap between two fixes counts at most this many seconds.
    pub gap_cap_s: u32,
}

/// `[hysteresis]`: when a unit counts as inside a fence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HysteresisSettings {
    /// Consecutive fixes inside needed to enter.
    pub enter_fixes: u32,
    /// Seconds those fixes must span.
    pub dwell_s: u32,
}

/// `[validate]`: thresholds for incoming fixes.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateSettings {
    /// Fixes less accurate than this (metres) are flagged.
    pub max_acc_m: f64,
    /// Fixes further in the future than this are rejected.
    pub future_tolerance_s: u32,
    /// Fixes older than the unit's latest by more than this are flagged late.
    pub reorder_window_s: u32,
    /// Live enter and exit alerts wait at most this long for out-of-order fixes (optional,
    /// default 0: only in-order fixes move them). While it is shorter than
    /// `reorder_window_s`, the event engine sends provisional live events ahead of the durable
    /// ones (see `EventConfig::live_window_s`).
    #[serde(default)]
    pub live_window_s: u32,
    /// Live fixes older than this when they arrive are rejected as `too_old` (optional,
    /// default a week: a device's offline queue of some days still lands, flagged late, while
    /// a clock fault such as a GPS week-number rollover, 19.6 years back, does not open a day
    /// partition of its own). Imports of historic tracks are not held to it.
    #[serde(default = "default_max_age_s")]
    pub max_age_s: u32,
    /// Larger payloads are rejected.
    pub max_payload_bytes: usize,
}

const fn default_max_age_s() -> u32 {
    7 * 24 * 3600
}

/// `[status]`: live status thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusSettings {
    /// No movement for this long means idle.
    pub idle_after_s: u32,
    /// No fix for this long means offline.
    pub offline_after_s: u32,
}

/// `[levels]`: share of a station's force out on patrol at each level (level 3 is normal).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
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
    ///
    /// # Example
    /// ```
    /// let levels = ingest::jurisdiction::Levels { level1: 0.6667, level2: 0.5, level3: 0.3333 };
    /// assert_eq!(levels.share(2), Some(0.5));
    /// assert_eq!(levels.share(4), None);
    /// ```
    pub const fn share(&self, level: u8) -> Option<f64> {
        match level {
            1 => Some(self.level1),
            2 => Some(self.level2),
            3 => Some(self.level3),
            _ => None,
        }
    }
}

/// A `[[windows]]` entry: a named span of local time; it ends the next day when
/// `end <= start`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Name used by the roster.
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
    pub fn crosses_midnight(&self) -> bool {
        self.end <= self.start
    }

    /// True when the local time of day falls in the window (start included, end excluded).
    ///
    /// # Example
    /// ```
    /// use chrono::NaiveTime;
    /// let t = |h| NaiveTime::from_hms_opt(h, 0, 0).unwrap();
    /// let night = ingest::jurisdiction::Window { name: "night".into(), start: t(23), end: t(5) };
    /// assert!(night.contains(t(2)) && !night.contains(t(12)));
    /// ```
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

fn parse_hh_mm(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s, "%H:%M").ok()
}

/// Kind of a unit, which bounds its plausible speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnitKind {
    /// Patrol car.
    Car,
    /// Bicycle patrol.
    Bike,
    /// E-bike patrol.
    Ebike,
    /// Foot patrol with a hand-held radio.
    Foot,
}

impl UnitKind {
    /// Fastest plausible speed, km/h; a faster implied speed between two fixes is a jump.
    pub const fn max_speed_kmh(self) -> f64 {
        match self {
            UnitKind::Car => 200.0,
            UnitKind::Bike => 45.0,
            UnitKind::Ebike => 60.0,
            UnitKind::Foot => 25.0,
        }
    }

    /// The name used in `units.csv`.
    pub const fn as_str(self) -> &'static str {
        match self {
            UnitKind::Car => "car",
            UnitKind::Bike => "bike",
            UnitKind::Ebike => "ebike",
            UnitKind::Foot => "foot",
        }
    }
}

impl fmt::Display for UnitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A unit kind name that is not `car`, `bike`, `ebike` or `foot`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown unit kind `{0}` (expected car, bike, ebike or foot)")]
pub struct UnknownUnitKind(pub String);

impl FromStr for UnitKind {
    type Err = UnknownUnitKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "car" => Ok(UnitKind::Car),
            "bike" => Ok(UnitKind::Bike),
            "ebike" => Ok(UnitKind::Ebike),
            "foot" => Ok(UnitKind::Foot),
            other => Err(UnknownUnitKind(other.to_owned())),
        }
    }
}

/// A row of `units.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// Unit id, as sent by its tracker.
    pub id: String,
    /// Kind.
    pub kind: UnitKind,
    /// Id of its home station.
    pub station: String,
    /// Officers in the unit.
    pub crew: u8,
}

/// A row of `roster.csv`: one unit assigned to one zone for one window of one local date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEntry {
    /// Local date the shift starts.
    pub date: NaiveDate,
    /// Unit id.
    pub unit: String,
    /// Zone id.
    pub zone: String,
    /// Window name.
    pub window: String,
    /// Local start.
    pub start: NaiveTime,
    /// Local end; on the next day when not after `start`.
    pub end: NaiveTime,
    /// Officers.
    pub crew: u8,
    /// Patrol level of the zone that day (1-3).
    pub level: u8,
}

impl RosterEntry {
    /// The shift as a UTC interval, reading `date`, `start` and `end` in `tz`. An end not
    /// after the start is on the next day. An ambiguous local time (the repeated hour when
    /// clocks go back) takes the earlier instant; a time in the spring-forward gap is read
    /// one hour later.
    ///
    /// # Errors
    /// [`NonexistentLocalTime`] when even the hour after a gap time does not exist.
    ///
    /// # Example
    /// ```
    /// use chrono::{NaiveDate, NaiveTime, TimeZone, Utc};
    /// let e = ingest::jurisdiction::RosterEntry {
    ///     date: NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
    ///     unit: "B01".into(), zone: "Z1".into(), window: "night".into(),
    ///     start: NaiveTime::from_hms_opt(23, 0, 0).unwrap(),
    ///     end: NaiveTime::from_hms_opt(5, 0, 0).unwrap(),
    ///     crew: 2, level: 3,
    /// };
    /// let (from, to) = e.utc_interval(chrono_tz::America::Chicago)?;
    /// assert_eq!(from, Utc.with_ymd_and_hms(2026, 11, 3, 5, 0, 0).unwrap());
    /// assert_eq!(to, Utc.with_ymd_and_hms(2026, 11, 3, 11, 0, 0).unwrap());
    /// # Ok::<(), ingest::jurisdiction::NonexistentLocalTime>(())
    /// ```
    pub fn utc_interval(
        &self,
        tz: Tz,
    ) -> Result<(DateTime<Utc>, DateTime<Utc>), NonexistentLocalTime> {
        let end_date = if self.end <= self.start {
            self.date + Duration::days(1)
        } else {
            self.date
        };
        Ok((
            to_utc(tz, self.date.and_time(self.start))?,
            to_utc(tz, end_date.and_time(self.end))?,
        ))
    }
}

fn to_utc(tz: Tz, local: NaiveDateTime) -> Result<DateTime<Utc>, NonexistentLocalTime> {
    tz.from_local_datetime(&local)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(local + Duration::hours(1)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
        .ok_or(NonexistentLocalTime(local))
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

/// A jurisdiction's settings, fleet, roster, stations and checkpoints, cross-checked:
/// unit, roster and station references resolve and ids are unique.
#[derive(Debug, Clone)]
pub struct Jurisdiction {
    dir: PathBuf,
    settings: Settings,
    timezone: Tz,
    units: Vec<Unit>,
    roster: Vec<RosterEntry>,
    stations: Vec<Station>,
    checkpoints: Vec<Checkpoint>,
}

impl Jurisdiction {
    /// Loads the jurisdiction in `dir`.
    ///
    /// # Errors
    /// A [`JurisdictionError`] naming the file (and the key, line or record) that is
    /// missing, malformed or inconsistent.
    ///
    /// # Example
    /// ```no_run
    /// let j = ingest::jurisdiction::Jurisdiction::load(std::path::Path::new("fixtures"))?;
    /// println!("{} has {} units", j.settings().name, j.units().len());
    /// # Ok::<(), ingest::jurisdiction::JurisdictionError>(())
    /// ```
    pub fn load(dir: &Path) -> Result<Jurisdiction, JurisdictionError> {
        let (settings, timezone) = load_settings(&dir.join("jurisdiction.toml"))?;
        let stations = load_stations(&dir.join("stations.geojson"))?;
        let units = load_units(&dir.join("units.csv"), &stations)?;
        let roster = load_roster(&dir.join("roster.csv"), &units, &settings)?;
        let checkpoints = load_checkpoints(&dir.join("checkpoints.geojson"))?;
        Ok(Jurisdiction {
            dir: dir.to_owned(),
            settings,
            timezone,
            units,
            roster,
            stations,
            checkpoints,
        })
    }

    /// The folder it was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `jurisdiction.toml`.
    pub const fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The parsed time zone of [`Settings::timezone`].
    pub const fn timezone(&self) -> Tz {
        self.timezone
    }

    /// Units in file order.
    pub fn units(&self) -> &[Unit] {
        &self.units
    }

    /// The unit with this id.
    pub fn unit(&self, id: &str) -> Option<&Unit> {
        self.units.iter().find(|u| u.id == id)
    }

    /// Roster rows in file order.
    pub fn roster(&self) -> &[RosterEntry] {
        &self.roster
    }

    /// Stations in file order.
    pub fn stations(&self) -> &[Station] {
        &self.stations
    }

    /// Checkpoints in file order.
    pub fn checkpoints(&self) -> &[Checkpoint] {
        &self.checkpoints
    }

    /// The window with this name.
    pub fn window(&self, name: &str) -> Option<&Window> {
        self.settings.windows.iter().find(|w| w.name == name)
    }

    /// `beats.geojson`: beat (Multi)Polygons with `id`, `name`, `station`.
    pub fn beats_path(&self) -> PathBuf {
        self.dir.join("beats.geojson")
    }

    /// `zones.geojson`: patrol zone Polygons with `id`, `name`, `station`, `groups`.
    pub fn zones_path(&self) -> PathBuf {
        self.dir.join("zones.geojson")
    }

    /// `county.geojson`: the jurisdiction outline.
    pub fn county_path(&self) -> PathBuf {
        self.dir.join("county.geojson")
    }

    /// `roads.osm`: the road network, OSM XML 0.6.
    pub fn roads_path(&self) -> PathBuf {
        self.dir.join("roads.osm")
    }

    /// `incidents.csv`: incidents with dispatch times.
    pub fn incidents_path(&self) -> PathBuf {
        self.dir.join("incidents.csv")
    }
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

fn load_settings(path: &Path) -> Result<(Settings, Tz), JurisdictionError> {
    let text = read(path)?;
    let settings: Settings = toml::from_str(&text).map_err(|e| JurisdictionError::Toml {
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
    for (i, level) in [
        settings.levels.level1,
        settings.levels.level2,
        settings.levels.level3,
    ]
    .iter()
    .enumerate()
    {
        if !(*level > 0.0 && *level <= 1.0) {
            return Err(invalid(
                path,
                format!("levels.level{}", i + 1),
                "must be in (0, 1]",
            ));
        }
    }
    for (class, kmh) in &settings.speeds_kmh {
        if !(kmh.is_finite() && *kmh > 0.0) {
            return Err(invalid(
                path,
                format!("speeds_kmh.{class}"),
                "must be a positive speed",
            ));
        }
    }
    let r = &settings.response;
    for (key, v) in [
        ("max_minutes", r.max_minutes),
        ("max_km", r.max_km),
        ("offroad_kmh", r.offroad_kmh),
    ] {
        if !(v.is_finite() && v > 0.0) {
            return Err(invalid(path, format!("response.{key}"), "must be positive"));
        }
    }
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

/// Rows of a headered CSV file as (1-based line, fields), after checking the header.
fn read_csv(path: &Path, header: &[&str]) -> Result<Vec<(usize, Vec<String>)>, JurisdictionError> {
    let text = read(path)?;
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')));
    let csv_err = |line, reason: String| JurisdictionError::Csv {
        path: path.to_owned(),
        line,
        reason,
    };
    match lines.next() {
        Some((_, first)) if first.split(',').map(str::trim).eq(header.iter().copied()) => {}
        _ => {
            return Err(csv_err(
                1,
                format!("expected header `{}`", header.join(",")),
            ));
        }
    }
    let mut rows = Vec::new();
    for (n, line) in lines.filter(|(_, l)| !l.trim().is_empty()) {
        if line.contains('"') {
            return Err(csv_err(n, "quoted fields are not supported".into()));
        }
        let fields: Vec<String> = line.split(',').map(|f| f.trim().to_owned()).collect();
        if fields.len() != header.len() {
            return Err(csv_err(
                n,
                format!("expected {} fields, found {}", header.len(), fields.len()),
            ));
        }
        rows.push((n, fields));
    }
    Ok(rows)
}

/// Parses field `col` of a CSV row, naming the column on failure.
fn field<T: FromStr>(
    path: &Path,
    line: usize,
    header: &[&str],
    fields: &[String],
    col: usize,
) -> Result<T, JurisdictionError> {
    fields[col].parse().map_err(|_| JurisdictionError::Csv {
        path: path.to_owned(),
        line,
        reason: format!("column `{}`: cannot parse `{}`", header[col], fields[col]),
    })
}

const UNITS_HEADER: [&str; 4] = ["unit", "kind", "station", "crew"];

fn load_units(path: &Path, stations: &[Station]) -> Result<Vec<Unit>, JurisdictionError> {
    let h = &UNITS_HEADER;
    let mut units: Vec<Unit> = Vec::new();
    let mut ids = BTreeSet::new();
    for (line, f) in read_csv(path, h)? {
        let unit = Unit {
            id: f[0].clone(),
            kind: field(path, line, h, &f, 1)?,
            station: f[2].clone(),
            crew: field(path, line, h, &f, 3)?,
        };
        let csv_err = |reason: String| JurisdictionError::Csv {
            path: path.to_owned(),
            line,
            reason,
        };
        if unit.id.is_empty() || !ids.insert(unit.id.clone()) {
            return Err(csv_err(format!(
                "column `unit`: `{}` is empty or repeated",
                unit.id
            )));
        }
        if unit.crew == 0 {
            return Err(csv_err("column `crew`: must be at least 1".into()));
        }
        if !stations.iter().any(|s| s.id == unit.station) {
            return Err(csv_err(format!(
                "column `station`: no station `{}`",
                unit.station
            )));
        }
        units.push(unit);
    }
    Ok(units)
}

const ROSTER_HEADER: [&str; 8] = [
    "date", "unit", "zone", "window", "start", "end", "crew", "level",
];

fn load_roster(
    path: &Path,
    units: &[Unit],
    settings: &Settings,
) -> Result<Vec<RosterEntry>, JurisdictionError> {
    let h = &ROSTER_HEADER;
    let mut out = Vec::new();
    for (line, f) in read_csv(path, h)? {
        let csv_err = |reason: String| JurisdictionError::Csv {
            path: path.to_owned(),
            line,
            reason,
        };
        let time = |col: usize| {
            parse_hh_mm(&f[col])
                .ok_or_else(|| csv_err(format!("column `{}`: `{}` is not HH:MM", h[col], f[col])))
        };
        let entry = RosterEntry {
            date: field(path, line, h, &f, 0)?,
            unit: f[1].clone(),
            zone: f[2].clone(),
            window: f[3].clone(),
            start: time(4)?,
            end: time(5)?,
            crew: field(path, line, h, &f, 6)?,
            level: field(path, line, h, &f, 7)?,
        };
        if !units.iter().any(|u| u.id == entry.unit) {
            return Err(csv_err(format!(
                "column `unit`: no unit `{}` in units.csv",
                entry.unit
            )));
        }
        if !settings.windows.iter().any(|w| w.name == entry.window) {
            return Err(csv_err(format!(
                "column `window`: no window `{}` in jurisdiction.toml",
                entry.window
            )));
        }
        if settings.levels.share(entry.level).is_none() {
            return Err(csv_err(format!(
                "column `level`: `{}` is not 1, 2 or 3",
                entry.level
            )));
        }
        out.push(entry);
    }
    Ok(out)
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

/// Features of a Points file as (id, lat, lon, properties), with ids unique and
/// coordinates in range.
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
            [lon, lat, ..]
                if lon.is_finite()
                    && lat.is_finite()
                    && lon.abs() <= 180.0
                    && lat.abs() <= 90.0 =>
            {
                (lon, lat)
            }
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

fn load_stations(path: &Path) -> Result<Vec<Station>, JurisdictionError> {
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

fn load_checkpoints(path: &Path) -> Result<Vec<Checkpoint>, JurisdictionError> {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono_tz::America::Chicago;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
    }

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn entry(date: (i32, u32, u32), start: NaiveTime, end: NaiveTime) -> RosterEntry {
        RosterEntry {
            date: NaiveDate::from_ymd_opt(date.0, date.1, date.2).unwrap(),
            unit: "B01".into(),
            zone: "Z1".into(),
            window: "night".into(),
            start,
            end,
            crew: 2,
            level: 3,
        }
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    /// Copies the committed fixtures into a temporary folder for editing.
    fn fixture_copy() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "jurisdiction.toml",
            "units.csv",
            "roster.csv",
            "stations.geojson",
            "checkpoints.geojson",
        ] {
            std::fs::copy(fixtures().join(name), dir.path().join(name)).unwrap();
        }
        dir
    }

    #[test]
    fn loads_committed_fixtures() {
        let j = Jurisdiction::load(&fixtures()).unwrap();
        let s = j.settings();
        assert_eq!(j.timezone(), Chicago);
        assert_eq!(
            (s.h3.store_res, s.h3.fence_res, s.h3.analysis_res),
            (11, 9, 9)
        );
        assert_eq!(s.response.max_km, 30.0);
        assert_eq!(
            s.validate.max_age_s,
            7 * 24 * 3600,
            "the default, the key is absent"
        );
        assert_eq!(s.speeds_kmh.get("residential"), Some(&40.0));
        assert_eq!(s.windows.len(), 4);
        assert!(j.window("night").unwrap().crosses_midnight());
        assert!(!j.window("day").unwrap().crosses_midnight());

        assert_eq!(j.stations().len(), 4);
        assert_eq!(
            j.stations()
                .iter()
                .filter(|s| s.kind == StationKind::Central)
                .count(),
            1
        );
        let cps = j.checkpoints();
        assert_eq!(cps.len(), 17);
        let patrol: Vec<_> = cps
            .iter()
            .filter(|c| c.kind == CheckpointKind::Patrol)
            .collect();
        assert_eq!(patrol.len(), 13);
        assert!(patrol.iter().all(|c| c.window == Some((t(23, 0), t(5, 0)))));
        assert!(
            cps.iter()
                .filter(|c| c.kind == CheckpointKind::Entry)
                .all(|c| c.window.is_none())
        );

        let units = j.units();
        assert!((38..=50).contains(&units.len()), "{} units", units.len());
        assert_eq!(j.unit("C01").map(|u| u.kind), Some(UnitKind::Car));
        assert!(
            units
                .iter()
                .any(|u| u.kind == UnitKind::Foot && u.crew == 1)
        );

        let roster_lines = std::fs::read_to_string(fixtures().join("roster.csv"))
            .unwrap()
            .lines()
            .count()
            - 1;
        assert_eq!(j.roster().len(), roster_lines);
        assert!(roster_lines > 500);
        let first = j.roster().first().unwrap();
        assert_eq!(first.date, NaiveDate::from_ymd_opt(2026, 11, 2).unwrap());
        assert!(j.roster().iter().all(|r| {
            j.window(&r.window)
                .is_some_and(|w| (w.start, w.end) == (r.start, r.end))
        }));
        assert!(j.beats_path().ends_with("beats.geojson") && j.beats_path().exists());
        assert!(j.zones_path().exists() && j.roads_path().exists() && j.county_path().exists());
    }

    #[test]
    fn validate_max_age_is_read() {
        let dir = fixture_copy();
        let path = dir.path().join("jurisdiction.toml");
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("live_window_s = 0", "live_window_s = 0\nmax_age_s = 3600");
        std::fs::write(&path, text).unwrap();
        let j = Jurisdiction::load(dir.path()).unwrap();
        assert_eq!(j.settings().validate.max_age_s, 3600);
    }

    #[test]
    fn unknown_toml_key_is_named_with_file_and_line() {
        let dir = fixture_copy();
        let path = dir.path().join("jurisdiction.toml");
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("gap_cap_s = 120", "gap_cap_s = 120\ngap_cap_seconds = 5");
        std::fs::write(&path, &text).unwrap();
        let err = Jurisdiction::load(dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, JurisdictionError::Toml { .. }), "{msg}");
        assert!(
            msg.contains("jurisdiction.toml") && msg.contains("gap_cap_seconds"),
            "{msg}"
        );
        let line = text
            .lines()
            .position(|l| l.starts_with("gap_cap_seconds"))
            .unwrap()
            + 1;
        assert!(msg.contains(&format!(":{line}:")), "{msg}");
    }

    #[test]
    fn missing_toml_key_is_named() {
        let dir = fixture_copy();
        let path = dir.path().join("jurisdiction.toml");
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("offline_after_s = 180\n", "");
        std::fs::write(&path, text).unwrap();
        let msg = Jurisdiction::load(dir.path()).unwrap_err().to_string();
        assert!(msg.contains("offline_after_s"), "{msg}");
    }

    #[test]
    fn bad_timezone_and_csv_errors_name_file_and_column() {
        let dir = fixture_copy();
        let toml_path = dir.path().join("jurisdiction.toml");
        let good = std::fs::read_to_string(&toml_path).unwrap();
        std::fs::write(
            &toml_path,
            good.replace("America/Chicago", "America/Ashford"),
        )
        .unwrap();
        let msg = Jurisdiction::load(dir.path()).unwrap_err().to_string();
        assert!(
            msg.contains("timezone") && msg.contains("America/Ashford"),
            "{msg}"
        );
        std::fs::write(&toml_path, good).unwrap();

        let units = dir.path().join("units.csv");
        let text = std::fs::read_to_string(&units).unwrap();
        std::fs::write(&units, text.replacen(",car,", ",tank,", 1)).unwrap();
        let msg = Jurisdiction::load(dir.path()).unwrap_err().to_string();
        assert!(
            msg.contains("units.csv:2:") && msg.contains("`kind`") && msg.contains("tank"),
            "{msg}"
        );
    }

    #[test]
    fn roster_row_with_unknown_unit_is_rejected() {
        let dir = fixture_copy();
        let path = dir.path().join("roster.csv");
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines.push("2026-11-03,X99,Z1,day,08:30,11:20,2,3");
        std::fs::write(&path, lines.join("\n")).unwrap();
        let msg = Jurisdiction::load(dir.path()).unwrap_err().to_string();
        assert!(msg.contains("roster.csv") && msg.contains("X99"), "{msg}");
    }

    #[test]
    fn night_shift_crosses_midnight() {
        let (from, to) = entry((2026, 11, 2), t(23, 0), t(5, 0))
            .utc_interval(Chicago)
            .unwrap();
        assert_eq!(
            (from, to),
            (utc(2026, 11, 3, 5, 0), utc(2026, 11, 3, 11, 0))
        );
        let (from, to) = entry((2026, 11, 2), t(8, 30), t(11, 20))
            .utc_interval(Chicago)
            .unwrap();
        assert_eq!(
            (from, to),
            (utc(2026, 11, 2, 14, 30), utc(2026, 11, 2, 17, 20))
        );
    }

    #[test]
    fn night_shift_over_daylight_saving_changes() {
        // Spring forward at 02:00 on 2026-03-08: 23:00 CST to 05:00 CDT is five hours.
        let (from, to) = entry((2026, 3, 7), t(23, 0), t(5, 0))
            .utc_interval(Chicago)
            .unwrap();
        assert_eq!((from, to), (utc(2026, 3, 8, 5, 0), utc(2026, 3, 8, 10, 0)));
        // Fall back at 02:00 on 2026-11-01: 23:00 CDT to 05:00 CST is seven hours.
        let (from, to) = entry((2026, 10, 31), t(23, 0), t(5, 0))
            .utc_interval(Chicago)
            .unwrap();
        assert_eq!(
            (from, to),
            (utc(2026, 11, 1, 4, 0), utc(2026, 11, 1, 11, 0))
        );
        // 02:30 does not exist on 2026-03-08 and is read as 03:30 CDT.
        let (from, _) = entry((2026, 3, 8), t(2, 30), t(4, 0))
            .utc_interval(Chicago)
            .unwrap();
        assert_eq!(from, utc(2026, 3, 8, 8, 30));
    }

    #[test]
    fn unit_kinds_round_trip_and_bound_speed() {
        for kind in [
            UnitKind::Car,
            UnitKind::Bike,
            UnitKind::Ebike,
            UnitKind::Foot,
        ] {
            assert_eq!(kind.as_str().parse::<UnitKind>(), Ok(kind));
        }
        assert_eq!(UnitKind::Car.max_speed_kmh(), 200.0);
        assert_eq!(UnitKind::Foot.max_speed_kmh(), 25.0);
        assert!("horse".parse::<UnitKind>().is_err());
    }
}
