//! Validation: a decoded [`RawPing`] becomes a [`Ping`] or a rejection, and quality flags are set.
//!
//! Pure: no IO, no clock. The caller passes the receive time.
//!
//! - [`validate`] checks one fix on its own: unit list and the unit's station, coordinates,
//!   the fix time (not before [`MIN_FIX_TIME`], not in the future, on the live path not older
//!   than a maximum age), and sets [`Flags::LOW_ACCURACY`] and [`Flags::LATE`].
//! - [`JumpDetector`] needs the previous fix of the unit, so it is a separate small state
//!   machine that sets [`Flags::JUMP`].
//! - [`haversine_m`] is ingest's great-circle distance, geo's haversine in (lat, lon) order.

use std::collections::HashMap;
use std::f64::consts::PI;

use geo::{Distance, Haversine, Point};

use crate::decode::RawPing;
use crate::ping::{EpochMillis, Extras, Flags, Ping, RejectReason, Rejection};

/// 2000-01-01T00:00:00Z. No patrol tracker reports a real fix before it, while receivers
/// without a time or with a broken clock send 0 (1970) or dates such as 1906; such a fix
/// would be stored in a day partition of its own decades back. Fixed rather than
/// configured, so it holds for imports and the live path alike.
pub const MIN_FIX_TIME: EpochMillis = 946_684_800_000;

/// Settings for [`validate`].
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateConfig {
    /// Fixes with a larger accuracy radius (metres) get [`Flags::LOW_ACCURACY`].
    pub max_acc_m: f64,
    /// How far (ms) a fix time may be ahead of the receive time before it is refused.
    pub future_tolerance_ms: i64,
    /// Fixes older than the receive time minus this window (ms) get [`Flags::LATE`].
    pub reorder_window_ms: i64,
    /// When set, the units accepted, each with its station (`units.csv`): another unit is
    /// refused as `unknown_unit`, and a fix whose topic names another station than the
    /// unit's as `station_mismatch`, so a unit's pings are never filed under a station it
    /// does not belong to.
    #[serde(default)]
    pub known_units: Option<HashMap<String, String>>,
    /// When set, fixes older than the receive time minus this age (ms) are refused as
    /// `too_old`. Meant for the live path, where the receive time is now and a fix that old
    /// is a clock fault (a GPS week-number rollover puts fixes 19.6 years back); `None` for
    /// imports, whose receive time is the import's and whose fixes are history on purpose.
    #[serde(default)]
    pub max_age_ms: Option<i64>,
}

impl ValidateConfig {
    /// The `[validate]` settings of `jurisdiction.toml` as the import path uses them: no
    /// maximum age (history is backfilled on purpose). `known_units` maps each unit to its
    /// station; `None` accepts any unit.
    pub fn from_settings(
        s: &model::jurisdiction::ValidateSettings,
        known_units: Option<HashMap<String, String>>,
    ) -> Self {
        ValidateConfig {
            max_acc_m: s.max_acc_m,
            future_tolerance_ms: i64::from(s.future_tolerance_s) * 1000,
            reorder_window_ms: i64::from(s.reorder_window_s) * 1000,
            known_units,
            max_age_ms: None,
        }
    }

    /// [`ValidateConfig::from_settings`] for the live path, where `max_age_s` applies.
    pub fn live(
        s: &model::jurisdiction::ValidateSettings,
        known_units: Option<HashMap<String, String>>,
    ) -> Self {
        ValidateConfig {
            max_age_ms: Some(i64::from(s.max_age_s) * 1000),
            ..ValidateConfig::from_settings(s, known_units)
        }
    }
}

/// Why [`validate`] refused a fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct ValidateError {
    /// Machine-readable reason.
    pub reason: RejectReason,
    /// Human-readable detail.
    pub detail: String,
}

impl ValidateError {
    /// Builds the rejection record; the caller still holds the topic and payload.
    pub fn to_rejection(&self, topic: &str, payload: &[u8], recv_time: EpochMillis) -> Rejection {
        Rejection {
            recv_time,
            topic: topic.to_owned(),
            reason: self.reason,
            detail: self.detail.clone(),
            payload: payload.to_vec(),
        }
    }
}

/// Validates one decoded fix received at `received_at`.
///
/// Sets [`Flags::LOW_ACCURACY`] when `acc > max_acc_m`, and [`Flags::LATE`] when the fix is
/// older than `received_at - reorder_window_ms`. A battery value is kept only when it is a
/// percentage in 0..=100 (rounded); `tid` is dropped.
///
/// # Errors
/// [`ValidateError`] with the first reason that applies, in this order: `UnknownUnit` and
/// `StationMismatch` (only with a unit list), `BadCoordinates` (see [`Ping::new`]),
/// `BadTimestamp` (before [`MIN_FIX_TIME`]), `FutureTimestamp`, `TooOld` (only with a
/// maximum age).
///
/// # Example
/// ```
/// use ingest::decode::RawPing;
/// use ingest::ping::{Flags, RejectReason};
/// use ingest::validate::{validate, ValidateConfig};
/// let cfg = ValidateConfig {
///     max_acc_m: 50.0, future_tolerance_ms: 5_000, reorder_window_ms: 60_000,
///     known_units: Some([("B12".to_owned(), "central".to_owned())].into()),
///     max_age_ms: None,
/// };
/// let raw = RawPing {
///     station: "central".into(), unit: "B12".into(), lat: 40.1, lon: -88.9, tst: 1_700_000_000,
///     acc: Some(80.0), vel: None, cog: None, alt: None, batt: None, tid: None,
/// };
/// let ping = validate(raw.clone(), 1_700_000_002_000, &cfg).unwrap();
/// assert_eq!(ping.fix_time(), 1_700_000_000_000);
/// assert!(ping.flags().contains(Flags::LOW_ACCURACY));
/// let elsewhere = RawPing { station: "north".into(), ..raw };
/// let err = validate(elsewhere, 1_700_000_002_000, &cfg).unwrap_err();
/// assert_eq!(err.reason, RejectReason::StationMismatch);
/// ```
pub fn validate(
    raw: RawPing,
    received_at: EpochMillis,
    cfg: &ValidateConfig,
) -> Result<Ping, ValidateError> {
    if let Some(known) = &cfg.known_units {
        let Some(station) = known.get(&raw.unit) else {
            return Err(ValidateError {
                reason: RejectReason::UnknownUnit,
                detail: format!("unit {:?} is not in the unit list", raw.unit),
            });
        };
        if *station != raw.station {
            return Err(ValidateError {
                reason: RejectReason::StationMismatch,
                detail: format!(
                    "unit {:?} belongs to station {station:?}, not {:?}",
                    raw.unit, raw.station
                ),
            });
        }
    }
    let fix_time = raw.tst.saturating_mul(1000);
    let extras = Extras {
        acc: raw.acc.map(|v| v as f32),
        speed_kmh: raw.vel.map(|v| v as f32),
        heading: raw.cog.map(|v| v as f32),
        alt: raw.alt.map(|v| v as f32),
        batt: raw
            .batt
            .filter(|b| (0.0..=100.0).contains(b))
            .map(|b| b.round() as u8),
    };
    let mut ping = Ping::new(
        &raw.unit,
        &raw.station,
        fix_time,
        received_at,
        raw.lat,
        raw.lon,
        extras,
        Flags::empty(),
    )
    .map_err(|e| ValidateError {
        reason: RejectReason::BadCoordinates(e),
        detail: format!("{e} (lat {}, lon {})", raw.lat, raw.lon),
    })?;
    if fix_time < MIN_FIX_TIME {
        return Err(ValidateError {
            reason: RejectReason::BadTimestamp,
            detail: format!("tst {} is before 2000-01-01T00:00:00Z", raw.tst),
        });
    }
    let ahead = fix_time.saturating_sub(received_at);
    if ahead > cfg.future_tolerance_ms {
        return Err(ValidateError {
            reason: RejectReason::FutureTimestamp,
            detail: format!(
                "fix is {ahead} ms ahead of receive time (tolerance {} ms)",
                cfg.future_tolerance_ms
            ),
        });
    }
    let behind = received_at.saturating_sub(fix_time);
    if let Some(max_age) = cfg.max_age_ms
        && behind > max_age
    {
        return Err(ValidateError {
            reason: RejectReason::TooOld,
            detail: format!("fix is {behind} ms before receive time (maximum age {max_age} ms)"),
        });
    }
    if ping
        .extras()
        .acc
        .is_some_and(|a| f64::from(a) > cfg.max_acc_m)
    {
        ping.flag(Flags::LOW_ACCURACY);
    }
    if behind > cfg.reorder_window_ms {
        ping.flag(Flags::LATE);
    }
    Ok(ping)
}

/// Great-circle distance in metres between two WGS-84 points (degrees), on geo's
/// [`Haversine`] sphere of the mean Earth radius (6,371,008.8 m). Good to about 0.5 %, plenty
/// for speed checks.
///
/// geo leaves the arcsine unclamped, so nearly antipodal points can come out NaN by rounding;
/// the minimum with half the circumference gives those (and NaN input) half the
/// circumference, so a jump across the globe is still a jump.
///
/// # Example
/// ```
/// // One degree of latitude is about 111.2 km.
/// let d = ingest::validate::haversine_m(40.0, -88.9, 41.0, -88.9);
/// assert!((d - 111_195.0).abs() < 10.0);
/// ```
pub fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    Haversine
        .distance(Point::new(lon1, lat1), Point::new(lon2, lat2))
        .min(PI * Haversine.radius())
}

/// The last trusted fix of a unit.
#[derive(Debug, Clone, Copy)]
struct Reference {
    time: EpochMillis,
    lat: f64,
    lon: f64,
}

/// Flags fixes that imply an impossible speed since the unit's last trusted fix.
///
/// Keeps one reference fix per unit. A fix that is flagged (by this check, or already
/// untrusted from [`validate`]) never becomes the reference, so one wild fix does not make
/// the next good one look like a jump back. A fix older than the reference is not compared.
/// Fixes less than one second after the reference count as one second apart, since
/// OwnTracks times have one-second resolution.
#[derive(Debug, Default)]
pub struct JumpDetector {
    last: HashMap<String, Reference>,
}

impl JumpDetector {
    /// An empty detector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`Flags::JUMP`] on `ping` when the speed from the unit's last trusted fix is above
    /// `max_speed_kmh`, and updates the reference when the ping stays trusted.
    ///
    /// # Example
    /// ```
    /// use ingest::ping::{Extras, Flags, Ping};
    /// use ingest::validate::JumpDetector;
    /// let at = |t, lat| Ping::new("B12", "c", t, t, lat, -88.9, Extras::default(), Flags::empty()).unwrap();
    /// let mut jumps = JumpDetector::new();
    /// let (mut a, mut b) = (at(0, 40.0), at(60_000, 41.0)); // 111 km in a minute
    /// jumps.check(&mut a, 200.0);
    /// jumps.check(&mut b, 200.0);
    /// assert!(!a.flags().contains(Flags::JUMP) && b.flags().contains(Flags::JUMP));
    /// ```
    pub fn check(&mut self, ping: &mut Ping, max_speed_kmh: f64) {
        let here = Reference {
            time: ping.fix_time(),
            lat: ping.lat(),
            lon: ping.lon(),
        };
        if let Some(prev) = self.last.get(ping.unit()) {
            if here.time < prev.time {
                return;
            }
            let dt_s = ((here.time - prev.time) as f64 / 1000.0).max(1.0);
            let speed_kmh = haversine_m(prev.lat, prev.lon, here.lat, here.lon) / dt_s * 3.6;
            if speed_kmh > max_speed_kmh {
                ping.flag(Flags::JUMP);
            }
        }
        if !ping.flags().is_untrusted() {
            match self.last.get_mut(ping.unit()) {
                Some(reference) => *reference = here,
                None => {
                    self.last.insert(ping.unit().to_owned(), here);
                }
            }
        }
    }

    /// Every unit's reference fix as `(unit, fix time, lat, lon)`, sorted by unit (to save
    /// the detector's state across a restart).
    #[must_use]
    pub fn references(&self) -> Vec<(&str, EpochMillis, f64, f64)> {
        let mut out: Vec<_> = self
            .last
            .iter()
            .map(|(u, r)| (u.as_str(), r.time, r.lat, r.lon))
            .collect();
        out.sort_unstable_by(|a, b| a.0.cmp(b.0));
        out
    }

    /// Sets a unit's reference fix, as [`JumpDetector::references`] listed it.
    pub fn set_reference(&mut self, unit: &str, time: EpochMillis, lat: f64, lon: f64) {
        self.last
            .insert(unit.to_owned(), Reference { time, lat, lon });
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
