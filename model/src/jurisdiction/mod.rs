//! The files that describe a jurisdiction, loaded and cross-checked by [`Jurisdiction::load`]
//! from one folder (the formats are documented in `fixtures/README.md`):
//!
//! - `jurisdiction.toml`: [`Settings`] (name, time zone, catalog version, tunables);
//! - `stations.geojson` and `checkpoints.geojson`: GeoJSON Points, [`Station`], [`Checkpoint`];
//! - `units.csv`: the fleet, [`Unit`];
//! - `roster.csv`: who patrols which zone in which window, [`RosterEntry`];
//! - `beats.geojson` and `zones.geojson` (optional): the fence [`Catalog`], invalid polygons
//!   repaired;
//! - `county.geojson`: the outline, repaired like the fences.
//!
//! Two files are data rather than description and have loaders of their own, since a job may
//! read another file in their format: `incidents.csv` ([`load_incidents`]) and the optional
//! `population.csv` ([`load_population`]). The road network is named
//! ([`Jurisdiction::roads_path`]) and read by analytics. CSV files are comma-separated text
//! (RFC 4180: a field may be quoted, to hold a comma, a line break or a doubled quote) with a
//! fixed header; fields are trimmed and blank lines skipped.
//!
//! Local dates and times become instants in one way, [`local_to_utc`], which refuses a local
//! time that does not exist rather than guessing one.

mod fleet;
mod places;
mod settings;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, Duration, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use geo::MultiPolygon;

use crate::fences::{Catalog, CatalogError, FenceKind, LoadedFences, load_boundary, load_fences};

pub use fleet::{
    DEVICE_COLUMNS, DeviceIds, ROSTER_HEADER, RosterEntry, UNITS_HEADER, Unit, UnitKind,
    UnknownUnitKind,
};
pub use places::{
    Checkpoint, CheckpointKind, INCIDENTS_HEADER, Incident, POPULATION_HEADER, Station,
    StationKind, load_incidents, load_population,
};
pub use settings::{
    DosageSettings, FORECAST_METHODS, H3Settings, HotspotSettings, HysteresisSettings, Levels,
    ROAD_SPEEDS_KMH, ResponseSettings, Settings, StatusSettings, ValidateSettings, Window,
};

/// Why a jurisdiction folder could not be loaded. Every variant names the file.
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
    /// A fence or outline file is malformed or holds geometry that cannot be repaired.
    #[error(transparent)]
    Fences(#[from] CatalogError),
}

/// A local time that names no instant in the zone (inside a daylight-saving gap that even
/// the hour after does not leave).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("local time {0} does not exist in the time zone")]
pub struct NonexistentLocalTime(pub NaiveDateTime);

/// The instant of a local date and time in `tz`. An ambiguous time (the repeated hour when
/// clocks go back) is the earlier instant; a time in a spring-forward gap is read one hour
/// later, as a clock not yet put forward shows it.
///
/// # Errors
/// [`NonexistentLocalTime`] when even the hour after does not exist (a zone that skipped a
/// whole day); there is no instant to stand in for it.
///
/// # Example
/// ```
/// use chrono::{NaiveDate, TimeZone, Utc};
/// let gap = NaiveDate::from_ymd_opt(2026, 3, 8).unwrap().and_hms_opt(2, 30, 0).unwrap();
/// let t = model::jurisdiction::local_to_utc(chrono_tz::America::Chicago, gap)?;
/// assert_eq!(t, Utc.with_ymd_and_hms(2026, 3, 8, 8, 30, 0).unwrap());
/// # Ok::<(), model::jurisdiction::NonexistentLocalTime>(())
/// ```
pub fn local_to_utc(tz: Tz, local: NaiveDateTime) -> Result<DateTime<Utc>, NonexistentLocalTime> {
    tz.from_local_datetime(&local)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(local + Duration::hours(1)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
        .ok_or(NonexistentLocalTime(local))
}

/// A jurisdiction's settings, fleet, roster, stations, checkpoints, fences and outline,
/// cross-checked: unit, roster and station references resolve, ids are unique, every shift
/// names real instants and every polygon is valid.
#[derive(Debug, Clone)]
pub struct Jurisdiction {
    dir: PathBuf,
    settings: Settings,
    timezone: Tz,
    units: Vec<Unit>,
    roster: Vec<RosterEntry>,
    stations: Vec<Station>,
    checkpoints: Vec<Checkpoint>,
    catalog: Catalog,
    county: MultiPolygon<f64>,
}

/// Road file names in the order [`Jurisdiction::roads_path`] looks for them.
pub const ROAD_FILES: [&str; 3] = ["roads.osm.pbf", "roads.osm", "roads.geojson"];

impl Jurisdiction {
    /// Loads and checks the jurisdiction in `dir`: the one validator of its files.
    ///
    /// # Errors
    /// A [`JurisdictionError`] naming the file (and the key, line or record) that is
    /// missing, malformed or inconsistent.
    ///
    /// # Example
    /// ```no_run
    /// let j = model::jurisdiction::Jurisdiction::load(std::path::Path::new("fixtures"))?;
    /// println!("{} has {} units", j.settings().name, j.units().len());
    /// # Ok::<(), model::jurisdiction::JurisdictionError>(())
    /// ```
    pub fn load(dir: &Path) -> Result<Jurisdiction, JurisdictionError> {
        let toml_path = dir.join("jurisdiction.toml");
        let (settings, timezone) = Settings::parse(&toml_path, &read(&toml_path)?)?;
        let stations = places::load_stations(&dir.join("stations.geojson"))?;
        let units = fleet::load_units(&dir.join("units.csv"), &stations)?;
        let roster = fleet::load_roster(&dir.join("roster.csv"), &units, &settings, timezone)?;
        let checkpoints = places::load_checkpoints(&dir.join("checkpoints.geojson"))?;
        let beats = load_fences(&dir.join("beats.geojson"), FenceKind::Beat)?;
        let zones_path = dir.join("zones.geojson");
        let zones = if zones_path.exists() {
            load_fences(&zones_path, FenceKind::Zone)?
        } else {
            LoadedFences::default()
        };
        let catalog = Catalog::from_parts(settings.version, beats, zones);
        let county = load_boundary(&dir.join("county.geojson"))?;
        Ok(Jurisdiction {
            dir: dir.to_owned(),
            settings,
            timezone,
            units,
            roster,
            stations,
            checkpoints,
            catalog,
            county,
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

    /// The parsed time zone of [`Settings::timezone`].
    #[must_use]
    pub const fn timezone(&self) -> Tz {
        self.timezone
    }

    /// Units in file order.
    #[must_use]
    pub fn units(&self) -> &[Unit] {
        &self.units
    }

    /// The unit with this id.
    #[must_use]
    pub fn unit(&self, id: &str) -> Option<&Unit> {
        self.units.iter().find(|u| u.id == id)
    }

    /// Roster rows in file order.
    #[must_use]
    pub fn roster(&self) -> &[RosterEntry] {
        &self.roster
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

    /// Checkpoints in file order.
    #[must_use]
    pub fn checkpoints(&self) -> &[Checkpoint] {
        &self.checkpoints
    }

    /// The beats and zones, repaired, with the catalog version of `jurisdiction.toml`.
    #[must_use]
    pub const fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// `county.geojson`: the jurisdiction's outline (`x` = lon, `y` = lat), repaired.
    #[must_use]
    pub const fn county(&self) -> &MultiPolygon<f64> {
        &self.county
    }

    /// The window with this name.
    #[must_use]
    pub fn window(&self, name: &str) -> Option<&Window> {
        self.settings.window(name)
    }

    /// `incidents.csv`: incidents with dispatch times ([`load_incidents`]).
    #[must_use]
    pub fn incidents_path(&self) -> PathBuf {
        self.dir.join("incidents.csv")
    }

    /// `population.csv`, if the jurisdiction has one (it is optional; [`load_population`]).
    #[must_use]
    pub fn population_path(&self) -> Option<PathBuf> {
        Some(self.dir.join("population.csv")).filter(|p| p.is_file())
    }

    /// The road network file: the first of [`ROAD_FILES`] that exists, or `None` when there
    /// is none.
    #[must_use]
    pub fn roads_path(&self) -> Option<PathBuf> {
        ROAD_FILES
            .iter()
            .map(|name| self.dir.join(name))
            .find(|p| p.is_file())
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

fn csv_error(path: &Path, line: usize, reason: String) -> JurisdictionError {
    JurisdictionError::Csv {
        path: path.to_owned(),
        line,
        reason,
    }
}

/// Parses a local `HH:MM` time.
fn parse_hh_mm(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s, "%H:%M").ok()
}

/// Rows of a headered CSV file as (1-based line where the row starts, fields), after checking
/// the header. Fields are trimmed and may be quoted; blank lines are skipped.
fn read_csv(path: &Path, header: &[&str]) -> Result<Vec<(usize, Vec<String>)>, JurisdictionError> {
    read_csv_optional(path, header, &[])
}

/// [`read_csv`] for a file whose header is `header` followed by any of `optional` (each at
/// most once, in any order): each row's fields come back in the order `header` then
/// `optional`, a column the file lacks as an empty field.
fn read_csv_optional(
    path: &Path,
    header: &[&str],
    optional: &[&str],
) -> Result<Vec<(usize, Vec<String>)>, JurisdictionError> {
    let text = read(path)?;
    // Flexible: a row of the wrong length is refused below, naming its line, rather than by
    // the reader.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut lines = LineCounter::new(&text);
    let mut record = csv::StringRecord::new();
    // The next record's line, or `None` at the end of the file.
    let mut next = |reader: &mut csv::Reader<&[u8]>, record: &mut csv::StringRecord| {
        let line = lines.line_at(usize::try_from(reader.position().byte()).unwrap_or(usize::MAX));
        match reader.read_record(record) {
            Ok(more) => Ok(more.then_some(line)),
            Err(e) => Err(csv_error(path, line, e.to_string())),
        }
    };
    let expected = || {
        let mut s = format!("expected header `{}`", header.join(","));
        if !optional.is_empty() {
            s.push_str(&format!(", then any of `{}`", optional.join("`, `")));
        }
        s
    };
    // Where each optional column is in the file's rows.
    let mut extra: Vec<Option<usize>> = vec![None; optional.len()];
    match next(&mut reader, &mut record)? {
        Some(_)
            if record.len() >= header.len()
                && record.iter().take(header.len()).eq(header.iter().copied()) =>
        {
            for (at, name) in record.iter().enumerate().skip(header.len()) {
                let slot = optional.iter().position(|o| *o == name);
                match slot.and_then(|k| extra.get_mut(k)) {
                    Some(place @ None) => *place = Some(at),
                    _ => {
                        return Err(csv_error(
                            path,
                            1,
                            format!("column `{name}`: {}", expected()),
                        ));
                    }
                }
            }
        }
        _ => return Err(csv_error(path, 1, expected())),
    }
    let width = header.len() + extra.iter().flatten().count();
    let mut rows = Vec::new();
    while let Some(line) = next(&mut reader, &mut record)? {
        // A line of blanks is one empty field.
        if record.len() == 1 && record[0].is_empty() {
            continue;
        }
        if record.len() != width {
            return Err(csv_error(
                path,
                line,
                format!("expected {} fields, found {}", width, record.len()),
            ));
        }
        let mut fields: Vec<String> = record
            .iter()
            .take(header.len())
            .map(str::to_owned)
            .collect();
        for at in &extra {
            fields.push(at.and_then(|a| record.get(a)).unwrap_or("").to_owned());
        }
        rows.push((line, fields));
    }
    Ok(rows)
}

/// The line numbers of a CSV text's records, for errors. The csv crate's own record positions
/// leave blank lines out of the count and miscount CRLF line ends, so they are counted here
/// from the byte at which the reader starts each record.
struct LineCounter<'a> {
    text: &'a str,
    /// Newlines before byte `counted`.
    newlines: usize,
    counted: usize,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        LineCounter {
            text,
            newlines: 0,
            counted: 0,
        }
    }

    /// The 1-based line of the record the reader starts reading at byte `from`: that of its
    /// first byte that ends no line (the reader skips line ends before a record).
    fn line_at(&mut self, from: usize) -> usize {
        let rest = self.text.get(from..).unwrap_or_default();
        let start = from + rest.find(|c| c != '\r' && c != '\n').unwrap_or(rest.len());
        if let Some(between) = self.text.as_bytes().get(self.counted..start) {
            self.newlines += between.iter().filter(|&&b| b == b'\n').count();
            self.counted = start;
        }
        self.newlines + 1
    }
}

/// Parses field `col` of a CSV row, naming the column on failure.
fn field<T: FromStr>(
    path: &Path,
    line: usize,
    header: &[&str],
    fields: &[String],
    col: usize,
) -> Result<T, JurisdictionError> {
    fields[col].parse().map_err(|_| {
        csv_error(
            path,
            line,
            format!("column `{}`: cannot parse `{}`", header[col], fields[col]),
        )
    })
}

/// Whether `(lat, lon)` is a WGS-84 position.
fn is_position(lat: f64, lon: f64) -> bool {
    lat.is_finite() && lon.is_finite() && lat.abs() <= 90.0 && lon.abs() <= 180.0
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
