//! Geofence and duty events: a pure per-unit state machine ([`EventEngine`]) fed with fixes.
//!
//! Per unit, a fix goes through:
//! 1. a reorder buffer ([`Disposition`]): fixes wait until the unit's newest fix (or a tick's
//!    `now`) is [`EventConfig::reorder_window_s`] ahead and leave in fix-time order; older
//!    fixes are late and produce no events (the store keeps them regardless);
//! 2. untrusted fixes ([`Flags::is_untrusted`](crate::ping::Flags::is_untrusted)) stop here:
//!    they move no fence, checkpoint or idle state (they still count as signs of life);
//! 3. sparse crossings: between consecutive trusted fixes more than
//!    [`EventConfig::sparse_gap_s`] apart or [`EventConfig::sparse_len_m`] long (but at most
//!    [`EventConfig::max_interpolate_s`] apart), fences entered and left on the straight
//!    segment are found by sampling it every [`EventConfig::sample_step_m`] with
//!    [`GeofenceIndex::assign`](crate::geofence::GeofenceIndex::assign) and reported as
//!    [`EventKind::Crossing`]; sampling (rather than intersecting boundaries) keeps the index's
//!    boundary and overlap rules;
//! 4. hysteresis per layer (beats, zones): enter after [`EventConfig::enter_fixes`]
//!    consecutive fixes inside spanning [`EventConfig::dwell_s`], exit after as many fixes
//!    elsewhere spanning as long ([`EventKind::Enter`], [`EventKind::Exit`], backdated to the
//!    first fix of the confirming run);
//! 5. checkpoint visits, then idle and out-of-zone alerts against the roster.
//!
//! [`EventEngine::tick`] flushes the buffers and raises offline and crew alerts. Nothing here
//! reads a clock or does IO. Every event carries the catalog version of the index.
//!
//! The live path: while [`EventConfig::live_window_s`] is shorter than the reorder window, a
//! second pair of hysteresis trackers per unit sees the fixes within that window of the unit's
//! newest and reports its enters and exits at once as provisional events
//! ([`Pushed::provisional`], [`Ticked::provisional`]), for live subscribers only.
//!
//! [`EventEngine::snapshot`] and [`EventEngine::restore`] carry the whole per-unit state
//! across a restart: the pipeline keeps snapshots and the inputs after them in the WAL.

mod config;
mod duty;
mod engine;
mod event;
mod hysteresis;
mod reorder;
mod segment;
pub(crate) mod snapshot;

pub use config::EventConfig;
pub use duty::EventsError;
pub use engine::{EventEngine, FixInput, Pushed, Ticked};
pub use event::{Event, EventKind, Layer};
pub use reorder::Disposition;
pub use snapshot::SnapshotError;

#[cfg(test)]
mod tests;
