//! `jurisdiction.toml`: [`Settings`], every section ingest and analytics read, parsed and
//! checked in one place ([`Settings::parse`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::NaiveTime;
use chrono_tz::Tz;
use serde::Deserialize;

use super::{JurisdictionError, invalid, parse_hh_mm};

/// Drivable OSM `highway` classes and their default speeds in km/h; `[speeds_kmh]` may
/// override a speed but name no other class.
///
/// The defaults are typical urban travel speeds, not legal limits: motorway 100, trunk 80,
/// primary 60, secondary 50, tertiary 40, unclassified 40, residential 30, service 20,
/// living_street 10, road 30; motorway_link 60, trunk_link 50, primary_link 40,
/// secondary_link 40, tertiary_link 30.
pub const ROAD_SPEEDS_KMH: [(&str, f64); 15] = [
    ("motorway", 100.0),
    ("trunk", 80.0),
    ("primary", 60.0),
    ("secondary", 50.0),
    ("tertiary", 40.0),
    ("unclassified", 40.0),
    ("residential", 30.0),
    ("service", 20.0),
    ("living_street", 10.0),
    ("road", 30.0),
    ("motorway_link", 60.0),
    ("trunk_link", 50.0),
    ("primary_link", 40.0),
    ("secondary_link", 40.0),
    ("tertiary_link", 30.0),
];

/// `jurisdiction.toml`. Every key is required unless its doc says otherwise, and unknown keys
/// are refused, whichever crate reads the file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Display name.
    pub name: String,
    /// IANA time zone of local dates and times (windows, roster); see
    /// [`Jurisdiction::timezone`](super::Jurisdiction::timezone).
    pub timezone: String,
    /// Catalog version, bumped when beats, zones or checkpoints change; stored with every ping
    /// and event. Required: a version that defaulted could not tell two catalogs apart.
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
    /// Speed (km/h) per OSM `highway` class (one of [`ROAD_SPEEDS_KMH`]), used when a way has
    /// no `maxspeed`.
    pub speeds_kmh: BTreeMap<String, f64>,
    /// Patrol windows in local time.
    pub windows: Vec<Window>,
    /// Share of the force out per patrol level.
    pub levels: Levels,
    /// Hot-spot statistics and forecasts (optional: every key has a default).
    #[serde(default)]
    pub hotspots: HotspotSettings,
}

impl Settings {
    /// Parses and checks the text of `jurisdiction.toml` read from `path` (which only names
    /// the file in errors); returns the settings and their time zone.
    ///
    /// # Errors
    /// [`JurisdictionError::Toml`] naming the line and key that is malformed, unknown or
    /// missing; [`JurisdictionError::Invalid`] for a time zone, resolution, limit, speed or
    /// level out of range, or a window defined twice.
    pub fn parse(path: &Path, text: &str) -> Result<(Self, Tz), JurisdictionError> {
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
        settings.hotspots.check(path)?;
        for (class, kmh) in &settings.speeds_kmh {
            if !ROAD_SPEEDS_KMH.iter().any(|(c, _)| c == class) {
                return Err(invalid(
                    path,
                    format!("speeds_kmh.{class}"),
                    "not a drivable road class",
                ));
            }
            if !(kmh.is_finite() && *kmh > 0.0) {
                return Err(invalid(
                    path,
                    format!("speeds_kmh.{class}"),
                    "must be a positive speed",
                ));
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

    /// The window with this name.
    #[must_use]
    pub fn window(&self, name: &str) -> Option<&Window> {
        self.windows.iter().find(|w| w.name == name)
    }
}

/// `[h3]`: H3 resolutions (0..=15).
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
    /// Speed of the stretch between the place and its nearest road node, km/h.
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
    /// `reorder_window_s`, ingest's event engine sends provisional live events ahead of the
    /// durable ones.
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

/// Hot-spot forecast methods, by their names in `[hotspots] method` and in the backtest.
pub const FORECAST_METHODS: [&str; 6] = ["naive", "recency", "kde", "kde-cv", "recency-kde", "gi"];

/// `[hotspots]`: the statistics of the hot-spot job and the forecasts of the backtest, gaps
/// and planner. Every key is optional.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HotspotSettings {
    /// Quartic kernel bandwidth of `kde`, in H3 rings beyond the cell (0 = the counts
    /// themselves; default 1).
    pub kde_rings: u32,
    /// Gi* neighbourhood: the cell and this many rings around it (default 1).
    pub gi_rings: u32,
    /// A cell is a Gi* hot spot only with at least this many incidents in its neighbourhood
    /// (default 5): one incident is not a hot spot, however quiet the rest of the area.
    pub gi_min_incidents: u32,
    /// Local weeks of incidents a forecast learns from (default 4).
    pub training_weeks: u32,
    /// Half-life of the recency weighting, days (default 14).
    pub half_life_days: f64,
    /// Share of the study cells a forecast flags as hot (default 0.05).
    pub top_share: f64,
    /// Forecast method used when no backtest has chosen one (one of [`FORECAST_METHODS`];
    /// default `kde-cv`).
    pub method: String,
    /// Share of the rostered patrol minutes of a window that the gap list may direct to hot
    /// spots (default 0.25); the rest is the patrols' own beat work.
    pub directed_share: f64,
}

impl Default for HotspotSettings {
    fn default() -> Self {
        Self {
            kde_rings: 1,
            gi_rings: 1,
            gi_min_incidents: 5,
            training_weeks: 4,
            half_life_days: 14.0,
            top_share: 0.05,
            method: "kde-cv".into(),
            directed_share: 0.25,
        }
    }
}

impl HotspotSettings {
    /// Widest kernel or neighbourhood accepted, rings.
    pub const MAX_RINGS: u32 = 8;

    fn check(&self, path: &Path) -> Result<(), JurisdictionError> {
        let key = |k: &str| format!("hotspots.{k}");
        if self.kde_rings > Self::MAX_RINGS {
            return Err(invalid(path, key("kde_rings"), "must be 0..=8"));
        }
        if !(1..=Self::MAX_RINGS).contains(&self.gi_rings) {
            return Err(invalid(path, key("gi_rings"), "must be 1..=8"));
        }
        if !(1..=52).contains(&self.training_weeks) {
            return Err(invalid(path, key("training_weeks"), "must be 1..=52"));
        }
        if !(self.half_life_days.is_finite() && self.half_life_days > 0.0) {
            return Err(invalid(path, key("half_life_days"), "must be positive"));
        }
        if !(self.top_share > 0.0 && self.top_share <= 0.5) {
            return Err(invalid(path, key("top_share"), "must be in (0, 0.5]"));
        }
        if !(self.directed_share > 0.0 && self.directed_share <= 1.0) {
            return Err(invalid(path, key("directed_share"), "must be in (0, 1]"));
        }
        if !FORECAST_METHODS.contains(&self.method.as_str()) {
            return Err(invalid(
                path,
                key("method"),
                format!(
                    "`{}` is not a forecast method (one of {})",
                    self.method,
                    FORECAST_METHODS.join(", ")
                ),
            ));
        }
        Ok(())
    }
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
    /// let levels = model::jurisdiction::Levels { level1: 0.6667, level2: 0.5, level3: 0.3333 };
    /// assert_eq!(levels.share(2), Some(0.5));
    /// assert_eq!(levels.share(4), None);
    /// ```
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
    #[must_use]
    pub fn crosses_midnight(&self) -> bool {
        self.end <= self.start
    }

    /// True when the local time of day falls in the window (start included, end excluded).
    ///
    /// # Example
    /// ```
    /// use chrono::NaiveTime;
    /// let t = |h| NaiveTime::from_hms_opt(h, 0, 0).unwrap();
    /// let night = model::jurisdiction::Window { name: "night".into(), start: t(23), end: t(5) };
    /// assert!(night.contains(t(2)) && !night.contains(t(12)));
    /// ```
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
