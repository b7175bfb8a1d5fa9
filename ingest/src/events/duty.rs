//! Roster entries resolved into UTC [`Shift`]s per unit.

use std::collections::HashMap;

use chrono_tz::Tz;
use model::jurisdiction::{NonexistentLocalTime, RosterEntry};

use crate::geofence::GeofenceIndex;
use crate::ping::EpochMillis;

/// Why the engine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// A roster row names a zone the fence catalog does not have.
    #[error("roster row of unit {unit} on {date}: zone `{zone}` is not in the fence catalog")]
    UnknownZone {
        /// Unit id.
        unit: String,
        /// Local date of the row.
        date: chrono::NaiveDate,
        /// The zone id.
        zone: String,
    },
    /// A roster row's local time does not exist in the time zone.
    #[error("roster row of unit {unit}")]
    Time {
        /// Unit id.
        unit: String,
        /// The cause.
        #[source]
        source: NonexistentLocalTime,
    },
}

/// One roster row as a UTC interval `[start_ms, end_ms)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Shift {
    pub(super) start_ms: EpochMillis,
    pub(super) end_ms: EpochMillis,
    pub(super) zone: String,
    pub(super) window: String,
    pub(super) crew: u8,
}

/// Shifts per unit, sorted by start.
pub(super) fn shifts_by_unit(
    roster: &[RosterEntry],
    tz: Tz,
    index: &GeofenceIndex,
) -> Result<HashMap<String, Vec<Shift>>, EventsError> {
    let mut out: HashMap<String, Vec<Shift>> = HashMap::new();
    for entry in roster {
        if !index.catalog().zones.iter().any(|z| z.id == entry.zone) {
            return Err(EventsError::UnknownZone {
                unit: entry.unit.clone(),
                date: entry.date,
                zone: entry.zone.clone(),
            });
        }
        let (start, end) = entry.utc_interval(tz).map_err(|source| EventsError::Time {
            unit: entry.unit.clone(),
            source,
        })?;
        out.entry(entry.unit.clone()).or_default().push(Shift {
            start_ms: start.timestamp_millis(),
            end_ms: end.timestamp_millis(),
            zone: entry.zone.clone(),
            window: entry.window.clone(),
            crew: entry.crew,
        });
    }
    for shifts in out.values_mut() {
        shifts.sort_by_key(|s| s.start_ms);
    }
    Ok(out)
}

/// The first shift (by start) whose interval holds `t`, with its position.
pub(super) fn shift_at(shifts: &[Shift], t: EpochMillis) -> Option<(usize, &Shift)> {
    shifts
        .iter()
        .enumerate()
        .find(|(_, s)| s.start_ms <= t && t < s.end_ms)
}
