//! [`Event`]: what the engine reports, serialized as flat JSON objects tagged by `type`.

use serde::Serialize;

use crate::ping::EpochMillis;

/// Which fence layer of the catalog an event concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// Patrol beats ([`Catalog::beats`](crate::geofence::Catalog::beats)).
    Beat,
    /// Zones ([`Catalog::zones`](crate::geofence::Catalog::zones)).
    Zone,
}

impl Layer {
    /// The name used in JSON and in the store (`beat`, `zone`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Layer::Beat => "beat",
            Layer::Zone => "zone",
        }
    }
}

/// One event of one unit.
///
/// # Example
/// ```
/// use ingest::events::{Event, EventKind, Layer};
/// let e = Event {
///     unit: "B12".into(),
///     time_ms: 1_000,
///     catalog_version: 3,
///     provisional: false,
///     kind: EventKind::Enter { layer: Layer::Beat, fence: "0711".into(), confirmed_ms: 31_000 },
/// };
/// assert_eq!(
///     serde_json::to_string(&e).unwrap(),
///     r#"{"unit":"B12","time_ms":1000,"catalog_version":3,"type":"enter","layer":"beat","fence":"0711","confirmed_ms":31000}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Unit id.
    pub unit: String,
    /// When it happened, ms since the epoch; each [`EventKind`] variant says which instant.
    pub time_ms: EpochMillis,
    /// Version of the fence and checkpoint catalog the event was computed against.
    pub catalog_version: u32,
    /// True for a provisional enter or exit from the engine's live path (see
    /// [`EventConfig::live_window_s`](super::EventConfig::live_window_s)): sent to live
    /// subscribers as soon as the in-order fixes confirm it, never stored. The durable event
    /// with the same unit, type, layer, fence and `time_ms` follows once the reorder window
    /// has passed, unless late fixes changed the outcome. Left out of the JSON when false, so
    /// stored events look as they always did.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub provisional: bool,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened, with its own fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// The unit entered `fence` (hysteresis confirmed). `time_ms` is the first fix inside.
    Enter {
        /// Layer of the fence.
        layer: Layer,
        /// Fence id.
        fence: String,
        /// Fix time of the fix that confirmed it.
        confirmed_ms: EpochMillis,
    },
    /// The unit left `fence` (hysteresis confirmed). `time_ms` is the first fix away from it.
    Exit {
        /// Layer of the fence.
        layer: Layer,
        /// Fence id.
        fence: String,
        /// Fix time of the fix that confirmed it.
        confirmed_ms: EpochMillis,
    },
    /// Between two sparse fixes, the straight segment joining them entered and left `fence`.
    /// `time_ms` equals `entered_ms`; both times are interpolated along the segment.
    Crossing {
        /// Layer of the fence.
        layer: Layer,
        /// Fence id.
        fence: String,
        /// Estimated entry time.
        entered_ms: EpochMillis,
        /// Estimated exit time.
        left_ms: EpochMillis,
    },
    /// The unit stayed within a checkpoint's radius for at least its minimum dwell.
    /// `time_ms` equals `departure_ms`.
    CheckpointVisit {
        /// Checkpoint id.
        checkpoint: String,
        /// First fix within the radius.
        arrival_ms: EpochMillis,
        /// Last fix within the radius.
        departure_ms: EpochMillis,
    },
    /// During its shift the unit has been outside its rostered zone for more than the grace
    /// period. `time_ms` is the fix that showed it.
    OutOfZone {
        /// Rostered zone id.
        zone: String,
        /// The zone the unit is in, if any.
        current: Option<String>,
        /// Roster window name.
        window: String,
        /// Since when (not before the shift start).
        since_ms: EpochMillis,
    },
    /// During its shift the unit has not moved for the idle threshold. `time_ms` is the fix
    /// that showed it.
    Idle {
        /// Roster window name.
        window: String,
        /// Since when (not before the shift start).
        since_ms: EpochMillis,
        /// Where it stopped, WGS-84 degrees.
        lat: f64,
        /// Where it stopped, WGS-84 degrees.
        lon: f64,
    },
    /// During its shift the unit has sent no fix for the offline threshold. `time_ms` is the
    /// `now` of the [`EventEngine::tick`](super::EventEngine::tick) that found it.
    Offline {
        /// Roster window name.
        window: String,
        /// Newest fix time of the unit, if it ever sent one.
        last_fix_ms: Option<EpochMillis>,
        /// Since when (the last fix, or the shift start if later).
        since_ms: EpochMillis,
    },
    /// The unit's shift has a crew below the minimum. `time_ms` is the shift start.
    CrewBelowMinimum {
        /// Rostered zone id.
        zone: String,
        /// Roster window name.
        window: String,
        /// Crew on the roster.
        crew: u8,
        /// Required minimum.
        min_crew: u8,
    },
}

impl EventKind {
    /// The `type` tag of the kind in JSON, also the `kind` column of the store.
    ///
    /// # Example
    /// ```
    /// use ingest::events::{EventKind, Layer};
    /// let k = EventKind::Exit { layer: Layer::Zone, fence: "Z1".into(), confirmed_ms: 0 };
    /// assert_eq!(k.name(), "exit");
    /// ```
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            EventKind::Enter { .. } => "enter",
            EventKind::Exit { .. } => "exit",
            EventKind::Crossing { .. } => "crossing",
            EventKind::CheckpointVisit { .. } => "checkpoint_visit",
            EventKind::OutOfZone { .. } => "out_of_zone",
            EventKind::Idle { .. } => "idle",
            EventKind::Offline { .. } => "offline",
            EventKind::CrewBelowMinimum { .. } => "crew_below_minimum",
        }
    }

    /// The fence layer and the fence, checkpoint or zone id the event is about, as the
    /// store's `layer` and `fence` columns hold them.
    #[must_use]
    pub fn subject(&self) -> (Option<Layer>, Option<&str>) {
        match self {
            EventKind::Enter { layer, fence, .. }
            | EventKind::Exit { layer, fence, .. }
            | EventKind::Crossing { layer, fence, .. } => (Some(*layer), Some(fence)),
            EventKind::CheckpointVisit { checkpoint, .. } => (None, Some(checkpoint)),
            EventKind::OutOfZone { zone, .. } | EventKind::CrewBelowMinimum { zone, .. } => {
                (None, Some(zone))
            }
            EventKind::Idle { .. } | EventKind::Offline { .. } => (None, None),
        }
    }
}
