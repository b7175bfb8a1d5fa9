//! Geofences: the beat and zone catalog, its checks, and the H3-indexed [`GeofenceIndex`].
//!
//! - [`catalog`]: GeoJSON loading with repair or refusal of bad geometry ([`Catalog`]).
//! - [`check`]: overlaps and gaps for `patrol fences check` ([`check_catalog`]).
//! - [`index`]: point assignment ([`GeofenceIndex::assign`]) and its boundary rule.
//!
//! Only `Catalog::load_dir`, `load_boundary` and `check_dir` read files; nothing is async, and
//! `GeofenceIndex::assign` is pure.

pub mod catalog;
pub mod check;
mod faceplane;
pub mod index;

pub use catalog::{
    Catalog, CatalogError, Fence, FenceKind, LoadedFences, Problem, PropertyMap, Refusal, Repair,
    load_boundary, parse_fences,
};
pub use check::{
    CheckReport, GapScope, Gaps, Overlap, SLIVER_TOLERANCE_M2, check_catalog, check_dir,
};
pub use index::{Assignment, FenceIdx, GeofenceError, GeofenceIndex};
