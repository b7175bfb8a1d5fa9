//! Geofences: checks of the beat and zone catalog, and the H3-indexed [`GeofenceIndex`].
//!
//! - [`check`]: overlaps and gaps for `patrol fences check` ([`check_catalog`]).
//! - [`index`]: point assignment ([`GeofenceIndex::assign`]) and its boundary rule.
//!
//! The catalog itself (GeoJSON loading with repair or refusal of bad geometry) is
//! `model::fences`, shared with analytics; its types are re-exported here because the index is
//! built from them. Nothing here reads files or is async, and `GeofenceIndex::assign` is pure.

pub mod check;
mod faceplane;
pub mod index;

pub use check::{CheckReport, GapScope, Gaps, Overlap, SLIVER_TOLERANCE_M2, check_catalog};
pub use index::{Assignment, FenceIdx, GeofenceError, GeofenceIndex};
pub use model::fences::{
    Catalog, CatalogError, Fence, FenceKind, LoadedFences, Problem, PropertyMap, Refusal, Repair,
    parse_fences,
};
