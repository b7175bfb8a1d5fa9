//! The model both pipelines share: what a jurisdiction is and what the store holds.
//!
//! - [`jurisdiction`]: the jurisdiction's files (`jurisdiction.toml`, units, roster, stations,
//!   checkpoints, incidents, population) as one set of types, checked by one validator,
//!   [`jurisdiction::Jurisdiction::load`]; local times become instants in one way
//!   ([`jurisdiction::local_to_utc`]).
//! - [`fences`]: beats, zones and the county outline read from GeoJSON, with invalid polygons
//!   repaired or refused ([`fences::Catalog`]).
//! - [`schema`]: the store's tables, column names and Arrow types, written by ingest and read
//!   by analytics and the HTTP API.
//!
//! - [`now_ms`]: the wall clock, in the store's unit.
//!
//! `ingest` and `analytics` both depend on this crate and on nothing of each other. It does
//! no IO beyond reading files and knows nothing of tokio or polars.

pub mod fences;
pub mod jurisdiction;
pub mod schema;

/// Wall-clock time in milliseconds since the epoch (0 for a clock set before 1970).
#[must_use]
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
