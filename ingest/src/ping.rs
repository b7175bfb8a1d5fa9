//! Domain types shared by every stage: the validated [`Ping`], its [`Flags`], and the
//! [`Rejection`] record that keeps a refused payload with its reason.
//!
//! A `Ping` is always valid: its fields are private and [`Ping::new`] checks them, so code
//! that holds a `Ping` never re-checks coordinates or times.

use std::fmt;

use model::schema;

/// Milliseconds since the Unix epoch, UTC. The store keeps every time in this unit.
pub type EpochMillis = i64;

/// Quality flags set by `validate`. A flagged ping is stored; later stages decide what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u8);

impl Flags {
    /// The reported accuracy radius is above the configured threshold.
    pub const LOW_ACCURACY: Flags = Flags(schema::FLAG_LOW_ACCURACY);
    /// The speed implied by the previous fix of the same unit is above the kind's maximum.
    pub const JUMP: Flags = Flags(schema::FLAG_JUMP);
    /// The fix arrived later than the reorder window allows.
    pub const LATE: Flags = Flags(schema::FLAG_LATE);

    /// No flag set.
    pub const fn empty() -> Self {
        Flags(0)
    }

    /// Rebuilds flags from their stored bits; unknown bits are dropped.
    pub const fn from_bits(bits: u8) -> Self {
        Flags(bits & 0b111)
    }

    /// The bits as stored in the `flags` column.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// True when every flag of `other` is set in `self`.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Sets the flags of `other`.
    pub fn insert(&mut self, other: Flags) {
        self.0 |= other.0;
    }

    /// True when the fix should not move geofence state (poor accuracy or an implausible jump).
    pub const fn is_untrusted(self) -> bool {
        self.0 & (Self::LOW_ACCURACY.0 | Self::JUMP.0) != 0
    }
}

/// Why a ping could not be built. Also the reasons recorded in the `rejects` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum InvalidPing {
    /// Latitude or longitude is NaN or infinite.
    #[error("coordinate is not a finite number")]
    NonFinite,
    /// Latitude outside -90..=90 or longitude outside -180..=180.
    #[error("coordinate out of range")]
    OutOfRange,
    /// Exactly (0, 0): the usual value of a receiver with no fix.
    #[error("null island (0, 0)")]
    NullIsland,
    /// The unit id is empty or longer than 64 bytes.
    #[error("unit id empty or too long")]
    BadUnit,
}

/// A validated position fix of one unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Ping {
    unit: String,
    station: String,
    fix_time: EpochMillis,
    recv_time: EpochMillis,
    lat: f64,
    lon: f64,
    acc: Option<f32>,
    speed_kmh: Option<f32>,
    heading: Option<f32>,
    alt: Option<f32>,
    batt: Option<u8>,
    flags: Flags,
}

/// The optional measurements that come with a fix. Values that make no sense
/// (negative accuracy, heading outside 0..360) are dropped to `None` by [`Ping::new`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Extras {
    /// Accuracy radius in metres.
    pub acc: Option<f32>,
    /// Speed over ground in km/h.
    pub speed_kmh: Option<f32>,
    /// Course over ground in degrees from north.
    pub heading: Option<f32>,
    /// Altitude in metres.
    pub alt: Option<f32>,
    /// Battery level in percent.
    pub batt: Option<u8>,
}

impl Ping {
    /// Builds a ping, checking identity and coordinates.
    ///
    /// # Errors
    /// [`InvalidPing`] when the unit id is empty or over 64 bytes, or the coordinates are
    /// not finite, out of range, or exactly (0, 0).
    ///
    /// # Example
    /// ```
    /// use ingest::ping::{Extras, Flags, Ping};
    /// let p = Ping::new("B12", "central", 1_000, 2_000, 51.5, -0.1, Extras::default(), Flags::empty()).unwrap();
    /// assert_eq!(p.unit(), "B12");
    /// assert!(Ping::new("B12", "central", 0, 0, 91.0, 0.0, Extras::default(), Flags::empty()).is_err());
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        unit: &str,
        station: &str,
        fix_time: EpochMillis,
        recv_time: EpochMillis,
        lat: f64,
        lon: f64,
        extras: Extras,
        flags: Flags,
    ) -> Result<Self, InvalidPing> {
        if unit.is_empty() || unit.len() > 64 {
            return Err(InvalidPing::BadUnit);
        }
        if !lat.is_finite() || !lon.is_finite() {
            return Err(InvalidPing::NonFinite);
        }
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
            return Err(InvalidPing::OutOfRange);
        }
        if lat == 0.0 && lon == 0.0 {
            return Err(InvalidPing::NullIsland);
        }
        let finite = |v: Option<f32>| v.filter(|x| x.is_finite());
        Ok(Ping {
            unit: unit.to_owned(),
            station: station.to_owned(),
            fix_time,
            recv_time,
            lat,
            lon,
            acc: finite(extras.acc).filter(|a| *a >= 0.0),
            speed_kmh: finite(extras.speed_kmh).filter(|s| *s >= 0.0),
            heading: finite(extras.heading).filter(|h| (0.0..=360.0).contains(h)),
            alt: finite(extras.alt),
            batt: extras.batt.filter(|b| *b <= 100),
            flags,
        })
    }

    /// Unit id (the last topic level).
    pub fn unit(&self) -> &str {
        &self.unit
    }
    /// Station id (the middle topic level).
    pub fn station(&self) -> &str {
        &self.station
    }
    /// Time of the fix, from the device.
    pub fn fix_time(&self) -> EpochMillis {
        self.fix_time
    }
    /// Time the system received it.
    pub fn recv_time(&self) -> EpochMillis {
        self.recv_time
    }
    /// Latitude, WGS-84 degrees.
    pub fn lat(&self) -> f64 {
        self.lat
    }
    /// Longitude, WGS-84 degrees.
    pub fn lon(&self) -> f64 {
        self.lon
    }
    /// Optional measurements.
    pub fn extras(&self) -> Extras {
        Extras {
            acc: self.acc,
            speed_kmh: self.speed_kmh,
            heading: self.heading,
            alt: self.alt,
            batt: self.batt,
        }
    }
    /// Quality flags.
    pub fn flags(&self) -> Flags {
        self.flags
    }
    /// Adds quality flags (validate and the reorder stage set them).
    pub fn flag(&mut self, f: Flags) {
        self.flags.insert(f);
    }
}

/// Why a message was refused. The string form is what the `rejects.reason` column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The payload is not valid JSON or not an object.
    MalformedJson,
    /// A required field is missing or has the wrong type.
    MissingField,
    /// The topic is not `<prefix>/<station>/<unit>`.
    BadTopic,
    /// Coordinates failed [`Ping::new`].
    BadCoordinates(InvalidPing),
    /// The fix time is before [`MIN_FIX_TIME`](crate::validate::MIN_FIX_TIME): a receiver
    /// without time, or a clock reset to 1970 or earlier.
    BadTimestamp,
    /// The fix time is further in the future than allowed.
    FutureTimestamp,
    /// The fix time is further in the past than the live path's maximum age allows.
    TooOld,
    /// The payload is larger than the size limit.
    Oversize,
    /// A unit list is configured and this unit is not on it.
    UnknownUnit,
    /// A unit list is configured and the topic names another station than the unit's.
    StationMismatch,
    /// Well-formed, but a message type the pipeline does not use (kept for the record).
    IgnoredType,
    /// The store already holds a fix of this unit at this time at another position; the first
    /// one stored stands (found by the store, not by validation).
    ConflictingFix,
    /// A device gateway's frame that is not valid in its protocol (checksum, length, escaping,
    /// syntax, a field out of range).
    BadFrame,
    /// A device gateway's well-formed position whose device says it has no valid fix.
    NoFix,
    /// A device gateway's frame from a device that no unit in `units.csv` carries, or a
    /// position before the device identified itself.
    UnknownDevice,
}

impl RejectReason {
    /// Stable machine-readable name, used as the `reason` column and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::MalformedJson => "malformed_json",
            RejectReason::MissingField => "missing_field",
            RejectReason::BadTopic => "bad_topic",
            RejectReason::BadCoordinates(InvalidPing::NonFinite) => "non_finite",
            RejectReason::BadCoordinates(InvalidPing::OutOfRange) => "out_of_range",
            RejectReason::BadCoordinates(InvalidPing::NullIsland) => "null_island",
            RejectReason::BadCoordinates(InvalidPing::BadUnit) => "bad_unit",
            RejectReason::BadTimestamp => "bad_timestamp",
            RejectReason::FutureTimestamp => "future_timestamp",
            RejectReason::TooOld => "too_old",
            RejectReason::Oversize => "oversize",
            RejectReason::UnknownUnit => "unknown_unit",
            RejectReason::StationMismatch => "station_mismatch",
            RejectReason::IgnoredType => "ignored_type",
            RejectReason::ConflictingFix => "conflicting_fix",
            RejectReason::BadFrame => "bad_frame",
            RejectReason::NoFix => "no_fix",
            RejectReason::UnknownDevice => "unknown_device",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused message, kept with everything an operator needs to see why.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// Time the system received the message.
    pub recv_time: EpochMillis,
    /// MQTT topic, `file:<path>` for imports, or `<protocol>/<peer or device>` for a device
    /// gateway's frame.
    pub topic: String,
    /// Machine-readable reason.
    pub reason: RejectReason,
    /// Human-readable detail (for example the JSON parser's message).
    pub detail: String,
    /// The payload (a gateway's frame) exactly as received.
    pub payload: Vec<u8>,
}
