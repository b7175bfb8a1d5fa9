//! The fleet and its shifts: `units.csv` ([`Unit`]) and `roster.csv` ([`RosterEntry`]).

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;

use super::{
    JurisdictionError, NonexistentLocalTime, Settings, Station, csv_error, field, local_to_utc,
    parse_hh_mm, read_csv, read_csv_optional,
};

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
    #[must_use]
    pub const fn max_speed_kmh(self) -> f64 {
        match self {
            UnitKind::Car => 200.0,
            UnitKind::Bike => 45.0,
            UnitKind::Ebike => 60.0,
            UnitKind::Foot => 25.0,
        }
    }

    /// The name used in `units.csv`.
    #[must_use]
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
    /// The identities its devices report with.
    pub devices: DeviceIds,
}

/// The identities a unit's devices report with: the optional columns of `units.csv`
/// ([`DEVICE_COLUMNS`]), each unique across the fleet. Device gateways map a device to its
/// unit through them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceIds {
    /// `device`: the id an OsmAnd/Traccar client or an NMEA feed sends, or a JT/T 808
    /// terminal's phone number; 1-64 ASCII letters, digits, `-`, `_` and `.`.
    pub device: Option<String>,
    /// `imei`: a GT06 or Teltonika tracker's IMEI, 15 digits.
    pub imei: Option<String>,
    /// `issi`: a TETRA radio's individual short subscriber identity, 1-8 digits below
    /// 2^24.
    pub issi: Option<String>,
}

/// The optional columns of `units.csv` after [`UNITS_HEADER`], in any order.
pub const DEVICE_COLUMNS: [&str; 3] = ["device", "imei", "issi"];

impl DeviceIds {
    /// Checks each identity's form; returns the column and why.
    fn check(&self) -> Result<(), (&'static str, String)> {
        if let Some(d) = &self.device
            && (d.len() > 64
                || !d
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')))
        {
            return Err((
                "device",
                format!("`{d}` is not 1-64 ASCII letters, digits, `-`, `_` or `.`"),
            ));
        }
        if let Some(i) = &self.imei
            && (i.len() != 15 || !i.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(("imei", format!("`{i}` is not 15 digits")));
        }
        if let Some(i) = &self.issi
            && !(i.len() <= 8
                && i.bytes().all(|b| b.is_ascii_digit())
                && i.parse::<u32>().is_ok_and(|n| n < 1 << 24))
        {
            return Err(("issi", format!("`{i}` is not a number below 2^24")));
        }
        Ok(())
    }
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
    /// Window name (a `[[windows]]` entry).
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
    /// The shift as a UTC interval, reading `date`, `start` and `end` in `tz` with
    /// [`local_to_utc`]. An end not after the start is on the next day.
    ///
    /// # Errors
    /// [`NonexistentLocalTime`] when the start or end names no instant in `tz`.
    /// [`Jurisdiction::load`](super::Jurisdiction::load) refuses such a row, so a roster it
    /// loaded converts in the jurisdiction's zone.
    ///
    /// # Example
    /// ```
    /// use chrono::{NaiveDate, NaiveTime, TimeZone, Utc};
    /// let e = model::jurisdiction::RosterEntry {
    ///     date: NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
    ///     unit: "B01".into(), zone: "Z1".into(), window: "night".into(),
    ///     start: NaiveTime::from_hms_opt(23, 0, 0).unwrap(),
    ///     end: NaiveTime::from_hms_opt(5, 0, 0).unwrap(),
    ///     crew: 2, level: 3,
    /// };
    /// let (from, to) = e.utc_interval(chrono_tz::America::Chicago)?;
    /// assert_eq!(from, Utc.with_ymd_and_hms(2026, 11, 3, 5, 0, 0).unwrap());
    /// assert_eq!(to, Utc.with_ymd_and_hms(2026, 11, 3, 11, 0, 0).unwrap());
    /// # Ok::<(), model::jurisdiction::NonexistentLocalTime>(())
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
            local_to_utc(tz, self.date.and_time(self.start))?,
            local_to_utc(tz, end_date.and_time(self.end))?,
        ))
    }

    /// [`RosterEntry::utc_interval`] as epoch milliseconds `[start, end)`.
    ///
    /// # Errors
    /// As [`RosterEntry::utc_interval`].
    pub fn utc_ms(&self, tz: Tz) -> Result<(i64, i64), NonexistentLocalTime> {
        let (from, to) = self.utc_interval(tz)?;
        Ok((from.timestamp_millis(), to.timestamp_millis()))
    }
}

/// The header `units.csv` starts with.
pub const UNITS_HEADER: [&str; 4] = ["unit", "kind", "station", "crew"];

/// `units.csv`: ids unique and non-empty, crews of at least one, stations that exist, device
/// identities well formed and unique.
pub(super) fn load_units(
    path: &Path,
    stations: &[Station],
) -> Result<Vec<Unit>, JurisdictionError> {
    let h = &UNITS_HEADER;
    let mut units: Vec<Unit> = Vec::new();
    let mut ids = BTreeSet::new();
    let mut device_ids: [BTreeSet<String>; 3] = Default::default();
    for (line, f) in read_csv_optional(path, h, &DEVICE_COLUMNS)? {
        let id = |k: usize| f.get(k).filter(|v| !v.is_empty()).cloned();
        let unit = Unit {
            id: f[0].clone(),
            kind: field(path, line, h, &f, 1)?,
            station: f[2].clone(),
            crew: field(path, line, h, &f, 3)?,
            devices: DeviceIds {
                device: id(4),
                imei: id(5),
                issi: id(6),
            },
        };
        let csv_err = |reason: String| csv_error(path, line, reason);
        unit.devices
            .check()
            .map_err(|(column, why)| csv_err(format!("column `{column}`: {why}")))?;
        let d = &unit.devices;
        for ((seen, value), column) in device_ids
            .iter_mut()
            .zip([&d.device, &d.imei, &d.issi])
            .zip(DEVICE_COLUMNS)
        {
            if let Some(v) = value
                && !seen.insert(v.clone())
            {
                return Err(csv_err(format!("column `{column}`: `{v}` is repeated")));
            }
        }
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

/// The header `roster.csv` starts with.
pub const ROSTER_HEADER: [&str; 8] = [
    "date", "unit", "zone", "window", "start", "end", "crew", "level",
];

/// `roster.csv`: units from `units.csv`, windows from the settings, levels 1-3, and start
/// and end times that exist in `tz`.
pub(super) fn load_roster(
    path: &Path,
    units: &[Unit],
    settings: &Settings,
    tz: Tz,
) -> Result<Vec<RosterEntry>, JurisdictionError> {
    let h = &ROSTER_HEADER;
    let mut out = Vec::new();
    for (line, f) in read_csv(path, h)? {
        let csv_err = |reason: String| csv_error(path, line, reason);
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
        if settings.window(&entry.window).is_none() {
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
        if let Err(NonexistentLocalTime(t)) = entry.utc_interval(tz) {
            let col = if t.time() == entry.start && t.date() == entry.date {
                "start"
            } else {
                "end"
            };
            return Err(csv_err(format!(
                "column `{col}`: local time {t} does not exist in {}",
                settings.timezone
            )));
        }
        out.push(entry);
    }
    Ok(out)
}
